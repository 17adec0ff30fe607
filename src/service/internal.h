/* SPDX-License-Identifier: MIT */
/* Internals of src/service shared with the HTTP layer: the capped growable buffer with its JSON
 * helpers (every response body and event is built in one), the service struct that the runner,
 * intake and metrics files share, and the JSON forms of jobs, metrics and limits. No HTTP here. */
#ifndef DIP_SERVICE_INTERNAL_H
#define DIP_SERVICE_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "service/service.h"

/* ---- Buffers (core/buf.h) ---- */

/* The service's and the server's buffers are core's one capped buffer; the dip__sbuf names are
 * kept so that the handlers read as before (a plain rename to dip__buf_* may follow). */
#define dip__sbuf          dip__buf
#define dip__sbuf_init     dip__buf_init
#define dip__sbuf_free     dip__buf_free
#define dip__sbuf_reset    dip__buf_reset
#define dip__sbuf_add      dip__buf_add
#define dip__sbuf_reserve  dip__buf_reserve
#define dip__sbuf_str      dip__buf_str
#define dip__sbuf_printf   dip__buf_printf
#define dip__sbuf_json_str dip__buf_json_str
#define dip__sbuf_json_num dip__buf_json_num

#define DIP__JSON_CAP ((size_t)64 << 20)

/* ---- The service ---- */

#define DIP__LAT_BUCKETS 12
extern const double dip__lat_bounds[DIP__LAT_BUCKETS];

struct dip__proc; /* one waiting synchronous request (runner.c) */

#define DIP__MAX_ACTIVE 64 /* jobs the runner holds in memory at once; more wait in the store */

/** One job the runner is working through. */
/* The ETA is null ("estimating") until the job has run this long since it (re)started and
 * computed at least 2 % of what it computes. */
#define DIP__ETA_MIN_S 2.0

struct dip__active {
    struct dip_store_job *job; /* with items, as loaded */
    size_t next;               /* items before this one are dispatched or were final */
    uint64_t turn;             /* when its owner was last served */
    double started;
    struct dip_progress live; /* the batch in flight, when it is this job's */
    uint64_t live_px_reported;
    uint64_t px_skip; /* pixels final when loaded, or served from the cache: not computed here */
    int in_flight;
    /* The items of the batch in flight (NULL between batches): which ones the executor has
     * started, so the API tells queued images from running ones, with their tiles. */
    struct dip__run_item *run;
    size_t n_run;
};

struct dip__run_item {
    size_t item; /* index into job->items */
    int started, finished;
    uint64_t tiles_done, tiles_total;
};

/* Copies the items of job `id` that run now (started, not finished) into out[max]; returns how
 * many there are. */
size_t dip__runner_running(dip_service *svc, const char *id, struct dip__run_item *out, size_t max);

struct dip_service {
    struct dip_service_opts o;
    char *data_dir;
    dip_store *store;
    dip_executor *ex;
    int own_ex;
    int lock_fd; /* flock on DATA/serve.lock */
    int batch;   /* items per executor call: small, so users take turns often */

    /* Blob writers (uploads, results, cache hits) hold it shared from writing a blob until a row
     * refers to it; deleting jobs and collecting blobs hold it exclusively. */
    pthread_rwlock_t blobs;

    pthread_mutex_t lock; /* everything below */
    pthread_cond_t cond;  /* runner wake-ups and change waiters */
    int stopping;
    double drain_until; /* > 0: a stop was requested; the running batch may finish until then */
    uint64_t wake;      /* bumped when work arrives */
    uint64_t version;   /* bumped on every progress or state change */
    volatile sig_atomic_t *stop_flag;
    volatile int cancel; /* the current executor call's cancel flag */
    void (*on_change)(void *ud);
    void *on_change_ud;

    /* Jobs in progress (runner.c); guarded by lock for readers of their live counters. */
    struct dip__active active[DIP__MAX_ACTIVE];
    size_t n_active;
    char running_id[DIP_STORE_ID_LEN]; /* the job of the batch in flight */
    struct {
        char owner[64];
        uint64_t turn;
    } served[DIP__MAX_ACTIVE]; /* when each recent user was last served: users take turns */
    uint64_t turns;

    /* Synchronous requests waiting for the runner, first come first served. */
    struct dip__proc *proc_head, *proc_tail;
    size_t proc_waiting;

    /* Metrics. */
    uint64_t m_requests, m_tasks, m_items_done, m_items_failed, m_cache_hits;
    uint64_t m_bytes_in, m_bytes_out, m_process;
    uint64_t m_deleted_jobs, m_freed_bytes;
    uint64_t disk_files, disk_bytes; /* blobs, at the last retention pass */
    double last_retention;
    uint64_t lat_count[DIP__LAT_BUCKETS + 1];
    double lat_sum;
    uint64_t lat_n;
};

/** Bumps the version and wakes waiters; call with svc->lock held. The change listener is called
 * by dip__service_notify() after unlocking. */
void dip__service_bump(dip_service *svc);
void dip__service_notify(dip_service *svc);
/** Answers every waiting synchronous request with DIP_EBUSY (stopping). */
void dip__runner_drain(dip_service *svc);
/** A safe file name from a client's (last path component, printable ASCII), or `fallback`. */
void dip__sanitize_name(const char *in, const char *fallback, char *out, size_t out_len);
/** Wakes the runner (work was queued). */
void dip__runner_wake(dip_service *svc);
/** Records one task's latency for /metrics (locks). */
void dip__metrics_latency(dip_service *svc, double seconds);
/** The cache key of one item: sha256 over input sha, canonical pipeline, format, quality. */
void dip__cache_key(const char *in_sha, const char *canon, const char *format, int quality,
                    char key[65]);
/** Live counters of job `id` while the runner works on it: 1 when it is active. */
/* *px_skip: pixels this run of the job did not compute (final when it was loaded, or cached). */
int dip__runner_live(dip_service *svc, const char *id, struct dip_progress *live, double *started,
                     uint64_t *px_skip);
/* Whether the runner holds a batch of job `id` in the executor now. */
int dip__runner_in_flight(dip_service *svc, const char *id);
void dip__log(dip_service *svc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** One operator log line (log.c): `event` then NULL-terminated key, value string pairs (a key
 * starting with '#' holds a number). `request`: a per-request line (none at log level 0). */
void dip__log_event(dip_service *svc, int request, const char *event, ...)
    __attribute__((sentinel));

/** Quality "" -> 90; -1 when not an integer in 1..100. */
int dip__parse_quality(const char *q, int *out);
/** "" or an encodable format name; -1 otherwise. */
int dip__parse_format(const char *f, dip_format *out);

/** Every item's download name, unique within the job: an array of job->n_items (dip_free), or
 * NULL when out of memory. */
char (*dip__result_names(const struct dip_store_job *job))[300];

/* ---- JSON (json.c) ---- */

/** Appends the job object (see docs/api.md). `items`: include the items array. */
int dip__job_json(dip_service *svc, const struct dip_store_job *job, int items,
                  struct dip__sbuf *b);
/** The same with only items [offset, offset + limit) listed ("items_next" says where the next
 * page starts; the progress still counts every item). */
int dip__job_json_page(dip_service *svc, const struct dip_store_job *job, int items, size_t offset,
                       size_t limit, struct dip__sbuf *b);
/** Appends the Prometheus text of /metrics. */
int dip__metrics_text(dip_service *svc, struct dip__sbuf *b);
/** Appends {"ops":[...]} from the op table. */
int dip__ops_json(struct dip__sbuf *b);
/** Appends the usage JSON (GET /api/v1/usage; see dip_usage_report). */
int dip__usage_json(dip_store *st, const char *owner, double since, double until,
                    const struct dip_usage_prices *p, struct dip__sbuf *b, struct dip_err *err);
/** Appends the per-user series of /metrics (usage.c). */
int dip__usage_metrics(dip_service *svc, struct dip__sbuf *b);
/** Appends the limits a client checks before uploading (GET /api/v1/limits). */
int dip__limits_json(dip_service *svc, struct dip__sbuf *b);

#endif
