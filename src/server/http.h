/* SPDX-License-Identifier: MIT */
/* Private to src/server: the server struct, the per-request state, the route table's row and the
 * response helpers that the handler files share. The only header besides the .c files that sees
 * <microhttpd.h>; the job service behind it is src/service. */
#ifndef DIP_SERVER_HTTP_H
#define DIP_SERVER_HTTP_H

#include <pthread.h>
#include <stdint.h>

#include <microhttpd.h>

#include "dip/server.h"
#include "server/internal.h"
#include "service/internal.h"

#define MAX_PATH_SEG 128

struct dip_server {
    struct dip_server_opts o;
    char *listen, *web_dir, *public_host;
    int port;
    int loopback;
    dip_service *svc;
    struct MHD_Daemon *mhd;
    char *tls_cert_pem, *tls_key_pem;

    pthread_t ticker; /* header deadlines and event-stream wake-ups */
    int has_ticker;

    pthread_mutex_t lock; /* everything below */
    int stopping;
    struct dip__sse *streams; /* open event streams */
    size_t n_streams;
    struct sockinfo *socks; /* open connections (header deadlines) */
    struct {
        char user[64];
        uint64_t bytes;
    } uploads[64];                   /* bytes of request bodies in flight, per user */
    struct dip__intake *intake_head; /* submissions waiting for an intake thread (h-jobs.c) */
    int intake_stop;
    pthread_cond_t intake_cond;
    int has_intake_cond;
    pthread_t intake[2];
    size_t n_intake;
};

/** One open connection, for the header deadline (guard.c). */
struct sockinfo {
    struct sockinfo *next;
    int fd;
    double since;   /* the current request's start (or the previous one's end) */
    int in_request; /* headers complete */
    int cut;
};

struct ctx;
typedef enum MHD_Result (*dip__handler_fn)(struct ctx *c);

enum who { ANYONE, USER, ADMIN };

/** One row of the route table (server.c). */
struct route {
    const char *method;
    const char *pattern; /* {id}, {n}: path parameters */
    enum who who;
    int body;    /* takes a request body */
    int changes; /* changes state: refused when the Origin is foreign */
    dip__handler_fn fn;
};

/** Per-request state, freed in the completed callback. */
struct req {
    dip_server *s;
    const struct route *route;
    char id[MAX_PATH_SEG];
    char n[MAX_PATH_SEG];
    struct dip__sbuf body;
    int too_big;
    int responded;
    int early_checked; /* POST /jobs: the pipeline field was looked at while uploading */
    int early_rc;      /* nonzero: the options are refused; the rest is discarded */
    struct dip_err early_err;
    char boundary[80];
    uint64_t counted; /* bytes of this body counted in the user's uploads in flight */
    char user[64];
    int admin;
    char method[12];
    double t0;
    int status;    /* the status queued (the request log line) */
    int64_t bytes; /* the body's length; -1: streamed, unknown when queued */
    void *state;   /* a handler's own (e.g. a /process request in flight) */
    void (*state_free)(void *state);
};

struct ctx {
    dip_server *s;
    dip_service *svc;
    struct MHD_Connection *conn;
    struct req *r;
    const char *url;
    const char *user; /* r->user */
    int admin;
};

/* ---- Guards (guard.c) ---- */

/** Authenticates from the headers (r->user, r->admin); answers 401 and returns -1 when the route
 * needs a user and none is given. */
/** Fills the service's options from the server's (opts.c). */
void dip__service_opts(const struct dip_server_opts *o, struct dip_service_opts *so);
int dip__auth(struct ctx *c, enum who who);
/** 1 when a Host header names this server. */
int dip__host_ok(const dip_server *s, const char *host);
/** 1 when Origin is absent, the origin of `host` itself, or names --public-host. */
int dip__origin_ok(const dip_server *s, const char *origin, const char *host);
/** 0 when the request has two Content-Length headers, or one and a Transfer-Encoding. */
int dip__one_length(struct MHD_Connection *conn);
struct sockinfo *dip__sock_of(struct MHD_Connection *conn);
void dip__on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                        enum MHD_ConnectionNotificationCode toe);
void *dip__ticker(void *server);

/** Looks at the start of a POST /jobs body as it arrives: once the `pipeline` field (sent before
 * the files) is complete, checks the options, so that a refused job is not uploaded in full. */
void dip__early_check(struct ctx *c);
/** Counts `n` more body bytes of the request's user; 0, or -1 when the user's uploads in flight
 * would pass the cap. */
int dip__uploads_add(struct ctx *c, uint64_t n);
/** Uncounts the request's bytes (completed). */
void dip__uploads_done(dip_server *s, struct req *r);

/** Writes the request's log line (access-log.c). */
void dip__log_request(dip_server *s, struct MHD_Connection *conn, const struct req *r,
                      enum MHD_RequestTerminationCode toe);

/* ---- Responses (respond.c) ---- */

enum MHD_Result dip__queue(struct ctx *c, int status, struct MHD_Response *resp);
/** Sends b's bytes (ownership moves to the response). */
enum MHD_Result dip__send_sbuf(struct ctx *c, int status, const char *type, struct dip__sbuf *b);
enum MHD_Result dip__send_json(struct ctx *c, int status, struct dip__sbuf *b);
enum MHD_Result dip__send_error(struct ctx *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** An error from a DIP_E* code with the detail in err. */
enum MHD_Result dip__send_dip_error(struct ctx *c, int rc, const struct dip_err *err);
/** Loads job c->r->id if the caller may see it; else sends 404 and returns nonzero. */
int dip__load_job(struct ctx *c, int items, struct dip_store_job **job);
const char *dip__mime_of(dip_format f);
/** A query argument, or NULL. */
const char *dip__arg(struct ctx *c, const char *name);

/* ---- Handlers: one file per resource ---- */

/* h-info.c */
enum MHD_Result dip__h_health(struct ctx *c);
enum MHD_Result dip__h_ready(struct ctx *c);
enum MHD_Result dip__h_metrics(struct ctx *c);
enum MHD_Result dip__h_ops(struct ctx *c);
enum MHD_Result dip__h_limits(struct ctx *c);
enum MHD_Result dip__h_whoami(struct ctx *c);
enum MHD_Result dip__h_cluster(struct ctx *c);
/* h-jobs.c */
enum MHD_Result dip__h_jobs_list(struct ctx *c);
enum MHD_Result dip__h_jobs_post(struct ctx *c);
enum MHD_Result dip__h_job_get(struct ctx *c);
enum MHD_Result dip__h_job_delete(struct ctx *c);
enum MHD_Result dip__h_job_cancel(struct ctx *c);
/** Starts and stops the intake threads that run submissions off the HTTP threads. */
int dip__intake_start(dip_server *s);
void dip__intake_stop(dip_server *s);
/* h-results.c */
enum MHD_Result dip__h_result(struct ctx *c);
enum MHD_Result dip__h_archive(struct ctx *c);
/* h-items.c */
enum MHD_Result dip__h_input(struct ctx *c);
enum MHD_Result dip__h_retry(struct ctx *c);
/* h-events.c */
enum MHD_Result dip__h_events(struct ctx *c);
/** Wakes every suspended event stream (a service change). */
void dip__events_wake(void *server);
/* h-process.c */
enum MHD_Result dip__h_process(struct ctx *c);
/* h-docs.c */
enum MHD_Result dip__h_openapi(struct ctx *c);
enum MHD_Result dip__h_docs(struct ctx *c);
enum MHD_Result dip__h_docs_js(struct ctx *c);
/* h-usage.c */
enum MHD_Result dip__h_usage(struct ctx *c);
/* h-static.c */
enum MHD_Result dip__serve_static(struct ctx *c, const char *url);

#endif
