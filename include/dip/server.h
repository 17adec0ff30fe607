/* SPDX-License-Identifier: MIT */
/* `dip serve`: the HTTP API (libmicrohttpd) in front of the job service (src/service), whose
 * runner runs on the caller's thread (dip_server_run) and feeds the executor, and the web page's
 * static files. The executor is borrowed (local or MPI). Routes come from one table, which
 * `dip serve --routes` prints and docs/openapi.yaml must match. */
#ifndef DIP_SERVER_H
#define DIP_SERVER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "exec.h"
#include "limits.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dip_s3_config;

struct dip_server_opts {
    const char *listen;   /* "HOST:PORT"; default "127.0.0.1:8080"; port 0 picks a free one */
    const char *data_dir; /* default "./var" */
    const char *web_dir;  /* static files; default the compile-time DIP_WEB_DIR */
    const char *tls_cert; /* PEM files; both or neither */
    const char *tls_key;
    int threads;              /* compute threads of /process and the local executor (0 = cores) */
    struct dip_limits limits; /* per image (header checks) and max_request_bytes (uploads) */
    int max_images_per_job;   /* default 1000 */
    int max_active_per_user;  /* queued + running jobs per user; default 100 */
    int max_queue;            /* queued + running jobs in all; default 10000 */
    int max_connections;      /* default 512 */
    int connection_timeout_s; /* idle connection timeout; default 30 */
    size_t connection_memory; /* per-connection header memory; default 64 KiB */
    int sse_max_s;            /* longest one event stream stays open; default 600 */
    dip_executor *executor;   /* borrowed; NULL = a local executor owned by the server */
    int quiet;                /* 1: no log lines on stderr */
    /* Exposure to untrusted clients (docs/api.md, "Hostile clients"). */
    const char *public_host;  /* the name clients use (Host and Origin checks); NULL: none */
    int http_threads;         /* HTTP worker threads (epoll each); default 4 */
    int max_per_ip;           /* connections from one address; default 128 */
    int header_timeout_s;     /* a request's headers must arrive within this; default 10 */
    int max_streams;          /* event streams in all; default 256 */
    int max_streams_per_user; /* event streams per user; default 8 */
    double keep_s;            /* finished jobs are deleted after this; 0: never; default 7 days */
    const char *blobs;        /* NULL: DATA/blobs; "s3://bucket/prefix": object storage */
    const char *encrypt_key;  /* key file: blobs encrypted at rest; NULL: plain */
    const struct dip_s3_config *s3; /* object storage endpoint/credentials; NULL: environment */
    /* Operation (docs/deploy.md): logs, shutdown, readiness. */
    int log_level;           /* 0: job events only; 1 (default): also one line per request */
    int log_json;            /* 1: log lines are JSON objects */
    double shutdown_grace_s; /* running work may finish this long after a stop; default 20 */
    uint64_t ready_min_free; /* /readyz fails below this many free bytes; default 256 MiB */

    /* Prices of GET /api/v1/usage (docs/deploy.md, "Cost monitoring"); 0: no price. */
    double cost_cpu_hour; /* per CPU hour */
    double cost_gb_month; /* per 10^9 bytes stored for 30 days */
};

/** Defaults as documented above. */
void dip_server_opts_default(struct dip_server_opts *o);

typedef struct dip_server dip_server;

/** Opens the store, recovers unfinished jobs and starts the HTTP daemon. Refuses
 * (DIP_EINVAL, err says why) to listen on a non-loopback address when no token exists. Returns 0,
 * DIP_EINVAL, DIP_EIO (e.g. the port is taken). Stop with dip_server_free(). */
int dip_server_start(const struct dip_server_opts *o, dip_server **out, struct dip_err *err);
/** Runs the job runner on the calling thread until `*stop` becomes nonzero (a signal handler may
 * set it): takes queued jobs oldest first and feeds them to the executor. A job running when
 * `*stop` is set is interrupted between tiles and stays `running` in the store, to resume on the
 * next start. Running jobs on the caller's thread keeps every executor call on one thread, which
 * the MPI executor needs (MPI_THREAD_FUNNELED). Returns 0. */
int dip_server_run(dip_server *s, volatile sig_atomic_t *stop);
/** The port the daemon listens on (useful with port 0). */
int dip_server_port(const dip_server *s);
/** 1 when the API is open (loopback, no tokens). */
int dip_server_open_mode(const dip_server *s);
/** Stops the daemon (a running job is left `running` in the store and resumes on
 * the next start), closes the store. NULL is a no-op. */
void dip_server_free(dip_server *s);

/** The route table: method and path pattern ({id}, {n} for parameters) of route i; returns 0
 * past the end. */
int dip_server_route(size_t i, const char **method, const char **pattern);

/** "libmicrohttpd 0.9.75": the linked library's version (static string). */
const char *dip_server_version(void);

#ifdef __cplusplus
}
#endif
#endif
