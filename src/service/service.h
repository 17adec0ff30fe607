/* SPDX-License-Identifier: MIT */
/* The job service behind `dip serve`, without HTTP: job intake and validation
 * (dip_service_submit), the runner that feeds queued jobs to the executor, quotas, progress and
 * ETA, synchronous one-image processing through the executor, retention, and metrics. The HTTP
 * layer (src/server) is a thin translation of requests into these calls; the tests in
 * tests/service drive them directly. One service per data folder (a lock file enforces it). */
#ifndef DIP_SERVICE_H
#define DIP_SERVICE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "dip/error.h"
#include "dip/exec.h"
#include "dip/limits.h"
#include "dip/store.h"

struct dip_s3_config;

/* ---- Job states: the one table ---- */

/* XX(enum suffix, name in the store and the API, final) */
#define DIP_JOB_STATE_MAP(XX)                                                                      \
    XX(QUEUED, "queued", 0)                                                                        \
    XX(RUNNING, "running", 0)                                                                      \
    XX(DONE, "done", 1)                                                                            \
    XX(FAILED, "failed", 1)                                                                        \
    XX(CANCELLED, "cancelled", 1)

enum dip_job_state {
#define DIP__STATE_ENUM(e, name, final) DIP_JOB_##e,
    DIP_JOB_STATE_MAP(DIP__STATE_ENUM)
#undef DIP__STATE_ENUM
        DIP_JOB_NSTATES
};

/** "queued", ...; never NULL ("unknown" past the end). Also the item states. */
const char *dip_job_state_name(enum dip_job_state st);
/** The state called `name`, or DIP_JOB_NSTATES when none is. */
enum dip_job_state dip_job_state_parse(const char *name);
/** 1 for done, failed and cancelled (by name, as stored); 0 otherwise. */
int dip_job_state_final(const char *name);
/** 1 when state `name` is `st`. */
int dip_job_state_is(const char *name, enum dip_job_state st);

/* ---- The service ---- */

struct dip_service_opts {
    const char *data_dir;     /* DIR/dip.db, DIR/blobs/; default "./var" */
    int threads;              /* compute threads of the local executor (0 = cores) */
    struct dip_limits limits; /* per image, and max_request_bytes per upload */
    int max_images_per_job;   /* default 1000 */
    int max_active_per_user;  /* queued + running jobs per user; default 100 */
    int max_queue;            /* queued + running jobs in all; default 10000 */
    dip_executor *executor;   /* borrowed; NULL = a local executor owned by the service */
    int quiet;                /* 1: no log lines on stderr */
    double keep_s; /* finished jobs are deleted this long after; 0: kept; default 7 days */
    /* Where blobs live (docs/storage.md): NULL: DATA/blobs; "s3://bucket/prefix" */
    const char *blobs;
    const char *encrypt_key;        /* key file: blobs encrypted at rest; NULL: plain */
    const struct dip_s3_config *s3; /* object storage endpoint; NULL: the environment */
    int log_level;                  /* 0: job events only; 1 (default): also one line per request */
    int log_json;                   /* 1: log lines are JSON objects */
    /* On a stop request the running batch may finish for this long before it is interrupted;
     * 0: interrupt at once. Default 20 s (under Kubernetes' 30 s). */
    double shutdown_grace_s;
    uint64_t ready_min_free; /* /readyz fails below this many free bytes on the data disk;
                                default 256 MiB */
    double cost_cpu_hour, cost_gb_month; /* price list of GET /api/v1/usage; 0: no price */
};
void dip_service_opts_default(struct dip_service_opts *o);

typedef struct dip_service dip_service;

/** Opens the store of o->data_dir (taking its lock: one service per folder), deletes what a crash
 * left half-written, puts interrupted jobs back in the queue, and starts the local executor
 * unless one is given. Returns 0, DIP_EINVAL, DIP_EBUSY (folder in use), DIP_EIO. */
int dip_service_new(const struct dip_service_opts *o, dip_service **out, struct dip_err *err);
/** Stops and frees; a running job stays `running` in the store and resumes on the next start.
 * NULL is a no-op. The caller must have stopped calling into the service. */
void dip_service_free(dip_service *svc);
/** Marks the service as stopping: the runner returns, waiters wake. Thread-safe. */
void dip_service_stop(dip_service *svc);

/** Borrowed until dip_service_free(). */
dip_store *dip_service_store(dip_service *svc);
dip_executor *dip_service_executor(dip_service *svc);
const struct dip_service_opts *dip_service_options(const dip_service *svc);

/** Runs queued jobs on the calling thread until `*stop` becomes nonzero (a signal handler may set
 * it) or dip_service_stop(). Every executor call happens on this thread (MPI_THREAD_FUNNELED).
 * Returns 0. */
int dip_service_run(dip_service *svc, volatile sig_atomic_t *stop);
/** 1 while the service is shutting down (a stop was requested, the grace period may still run). */
int dip_service_draining(dip_service *svc);
/** Readiness: 0 when the store answers and the executor takes work, else nonzero with `why`. */
int dip_service_ready(dip_service *svc, char *why, size_t why_len);

/* ---- Intake ---- */

/** One uploaded image, borrowed for the call. */
struct dip_submit_file {
    const char *name; /* as the client sent it (sanitised by the service) */
    const uint8_t *data;
    size_t len;
};

/** A job as submitted. Text fields as sent; NULL or "" for the defaults. */
struct dip_submit {
    const char *owner; /* the authenticated user */
    const char *pipeline;
    const char *format;  /* "" keeps the input's format */
    const char *quality; /* "" = 90 */
    const struct dip_submit_file *files;
    size_t n_files;
    const char *name; /* the user's name for the job (at most 100 bytes, no control characters);
                         NULL or "" for none */
};

/** Checks the options of a job before any image is read: the pipeline parses and its parameters
 * are valid, format and quality are known. `canon` (optional) receives the canonical pipeline with
 * op versions (dip_malloc'ed). Returns 0 or DIP_EINVAL (err says what, in the CLI's words). */
int dip_service_check_options(dip_service *svc, const char *pipeline, const char *format,
                              const char *quality, char **canon, struct dip_err *err);

/** Checks quotas, validates every image from its header (limits, and every step's output against
 * max_width/max_height/max_pixels), stores the inputs and records the job (queued) in one go: all
 * or nothing. Writes the new job's id. Errors: DIP_EINVAL (bad field, no file), DIP_ELIMIT (too
 * many images, an input or an output over a limit), DIP_EFORMAT/DIP_ECORRUPT (an unreadable
 * image, err names the file), DIP_EBUSY (a quota), DIP_ENOSPC-like storage failures as DIP_EIO
 * with a message that names no path. */
int dip_service_submit(dip_service *svc, const struct dip_submit *req, char id[DIP_STORE_ID_LEN],
                       struct dip_err *err);

/** Retries the failed and cancelled images of final job `id` as a new job (queued) with the same
 * pipeline, format and quality, from the inputs the store kept: nothing is uploaded again. The
 * new job belongs to the old one's owner and is named after it ("retry of ..."). Writes its id.
 * Errors: DIP_ENOTFOUND (no such job for `user`), DIP_EBUSY (the job is unfinished or still
 * finishing images in flight, or a quota), DIP_EINVAL (no failed or cancelled image). */
int dip_service_retry(dip_service *svc, const char *id, const char *user, int admin,
                      char new_id[DIP_STORE_ID_LEN], struct dip_err *err);

/* ---- Jobs ---- */

/** Reads job `id` when `user` may see it (admin: every job). DIP_ENOTFOUND otherwise. The caller
 * frees *out with dip_store_job_free. */
int dip_service_job_get(dip_service *svc, const char *id, const char *user, int admin, int items,
                        struct dip_store_job **out, struct dip_err *err);
/** Cancels job `id` unless it is final (its queued items become cancelled, a running one stops
 * between tiles). Returns 0 or DIP_ENOTFOUND. */
int dip_service_cancel(dip_service *svc, const char *id, const char *user, int admin,
                       struct dip_err *err);
/** Deletes final job `id` with its results, cache entries and the blobs no other job uses
 * (*freed, optional: bytes freed). DIP_ENOTFOUND, DIP_EBUSY while it is unfinished (cancel it
 * first). */
int dip_service_delete(dip_service *svc, const char *id, const char *user, int admin,
                       uint64_t *freed, struct dip_err *err);
/** Deletes the jobs finished more than keep_s ago, then blobs nothing refers to that are older
 * than `grace_s` (younger ones may belong to an upload in flight); updates the disk-use figures.
 * The runner calls it every minute. */
void dip_service_retention(dip_service *svc, double grace_s);

/** The download name of item i of `job`: unique within the job. */
void dip_service_result_name(const struct dip_store_job *job, size_t i, char *out, size_t len);

/** Progress of a job, from its items and, while it runs, the executor's live counters. */
struct dip_job_progress {
    uint64_t items_total, items_done, items_failed, items_cancelled; /* done: ran (failed too) */
    uint64_t tasks_total, tasks_done;
    uint64_t pixels_total, pixels_done;
    double percent; /* 0..100 */
    double eta_s;   /* < 0: unknown */
    int in_flight;  /* the runner still holds images of this job (e.g. finishing after a cancel) */
};
void dip_service_progress(dip_service *svc, const struct dip_store_job *job,
                          struct dip_job_progress *p);

/** A change counter: bumped on every job state or progress change. */
uint64_t dip_service_version(dip_service *svc);
/** Waits until the version differs from `seen`, the service stops, or `timeout_s` passes;
 * returns the current version. */
uint64_t dip_service_wait(dip_service *svc, uint64_t seen, double timeout_s);
/** Registers fn, called (from any thread, without locks held) after each version bump; one
 * listener (the HTTP layer's event streams). */
void dip_service_on_change(dip_service *svc, void (*fn)(void *ud), void *ud);
/** 1 once stopping. */
int dip_service_stopping(dip_service *svc);

/* ---- Synchronous processing ---- */

/** One synchronous request: one image through the pipeline. The caller fills the inputs (borrowed
 * until it is finished) and reads the outputs once it is. */
struct dip_process_req {
    const char *pipeline; /* parsed again by the service */
    dip_format format;    /* DIP_FORMAT_UNKNOWN: keep the input's */
    int quality;
    const uint8_t *in;
    size_t in_len;
    const char *owner; /* the user whose usage it counts to; NULL: nobody's */
    /* Outputs. */
    int rc;
    struct dip_err err;
    uint8_t *out; /* dip_malloc'ed; the caller frees it */
    size_t out_len;
    dip_format out_format;
    int reported, finished; /* the service's */
};

/** Queues `r` for the runner, which runs it through the executor (so through the cluster under
 * mpirun), first come first served, batched with waiting requests of the same options. `done(ud)`
 * is called once r is finished (from the runner's thread, or from dip_service_stop's caller).
 * DIP_EINVAL for a bad pipeline, DIP_EBUSY when too many wait or the service stops. */
int dip_service_process_start(dip_service *svc, struct dip_process_req *r, void (*done)(void *ud),
                              void *ud, struct dip_err *err);
/** The same, waiting for the result. Needs dip_service_run() on another thread. */
int dip_service_process(dip_service *svc, struct dip_process_req *r, struct dip_err *err);

/* ---- Usage and cost (usage.c) ---- */

/** A price list: per CPU hour and per GB (10^9 bytes) stored for a month (30 days). */
struct dip_usage_prices {
    double cpu_hour, gb_month;
};
/** Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS][Z]" (UTC) or unix seconds. DIP_EINVAL otherwise. */
int dip_usage_parse_time(const char *text, double *out, struct dip_err *err);
/** Usage per user in [since, until) (of `owner` only when not NULL) as the JSON of
 * GET /api/v1/usage, or as a table for a terminal: a dip_malloc'ed string in *out (dip_free).
 * `p` may be NULL (no prices). Opens nothing: works on any open store (dip usage reads the store
 * while dip serve runs). */
int dip_usage_report(dip_store *st, const char *owner, double since, double until,
                     const struct dip_usage_prices *p, int json, char **out, struct dip_err *err);

/* ---- Metrics ---- */

/** Counts bytes received from clients (images) for /metrics. */
void dip_service_count_in(dip_service *svc, uint64_t bytes);
/** Counts one answered HTTP request. */
void dip_service_count_request(dip_service *svc);

#endif
