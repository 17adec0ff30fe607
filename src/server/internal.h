/* SPDX-License-Identifier: MIT */
/* Internals shared by the files of src/server: a capped growable text/byte buffer with JSON
 * helpers, the multipart/form-data parser, the zip writer's pieces, and the server struct that the
 * HTTP handlers and the job runner share. Not installed; <microhttpd.h> stays out of this header
 * so the pieces can be unit-tested without a daemon. */
#ifndef DIP_SERVER_INTERNAL_H
#define DIP_SERVER_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "dip/exec.h"
#include "dip/server.h"
#include "dip/store.h"

/* ---- Buffers (sbuf.c) ---- */

/** A growable buffer that refuses to grow past `cap` (curl's dynbuf). `failed` sticks after the
 * first error (DIP_ENOMEM or DIP_ELIMIT), so a sequence of appends is checked once at the end. */
struct dip__sbuf {
    char *data; /* always NUL-terminated when len > 0 */
    size_t len, size, cap;
    int failed;
};
void dip__sbuf_init(struct dip__sbuf *b, size_t cap);
void dip__sbuf_free(struct dip__sbuf *b);
void dip__sbuf_reset(struct dip__sbuf *b);
int dip__sbuf_add(struct dip__sbuf *b, const void *p, size_t n);
/** Makes room for `n` bytes in all (a Content-Length known in advance), so large bodies are not
 * grown by doubling. */
int dip__sbuf_reserve(struct dip__sbuf *b, size_t n);
int dip__sbuf_str(struct dip__sbuf *b, const char *s);
int dip__sbuf_printf(struct dip__sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** Appends `s` as a JSON string literal (quotes included); NULL appends null. */
int dip__sbuf_json_str(struct dip__sbuf *b, const char *s);
/** Appends a JSON number (finite; NaN and infinities become null). */
int dip__sbuf_json_num(struct dip__sbuf *b, double v);

/* ---- multipart/form-data (multipart.c) ---- */

struct dip__part {
    char name[64];
    char filename[256]; /* as sent (sanitise before use) */
    int has_filename;
    const uint8_t *data; /* borrowed from the body */
    size_t len;
};

/** Finds the boundary in a Content-Type header value ("multipart/form-data; boundary=x").
 * Returns 0 or DIP_EINVAL (err says why). */
int dip__multipart_boundary(const char *content_type, char *out, size_t out_len,
                            struct dip_err *err);
/** Splits `body` into at most `max_parts` parts (borrowing from body). Returns 0, DIP_EINVAL for
 * malformed bodies, DIP_ELIMIT for too many parts; err says which. *parts is dip_malloc'ed. */
int dip__multipart_parse(const uint8_t *body, size_t len, const char *boundary, size_t max_parts,
                         struct dip__part **parts, size_t *n, struct dip_err *err);
/** A safe file name from a client's: the last path component, printable ASCII without quotes,
 * backslashes or control characters, at most 200 bytes; `fallback` when nothing is left. */
void dip__sanitize_name(const char *in, const char *fallback, char *out, size_t out_len);

/* ---- zip (zip.c) ---- */

uint32_t dip__crc32(uint32_t crc, const void *data, size_t len);
/** Appends a stored entry's local header for `name` (len bytes, crc). */
int dip__zip_local_header(struct dip__sbuf *b, const char *name, uint32_t crc, uint32_t len);
/** Appends the central directory record of an entry whose local header is at `offset`. */
int dip__zip_central(struct dip__sbuf *b, const char *name, uint32_t crc, uint32_t len,
                     uint32_t offset);
/** Appends the end-of-central-directory record. */
int dip__zip_end(struct dip__sbuf *b, uint16_t entries, uint32_t cd_size, uint32_t cd_offset);

/* ---- The server (server.c, runner.c) ---- */

#define DIP__LAT_BUCKETS 12

struct dip_server {
    struct dip_server_opts o;
    char *listen, *data_dir, *web_dir;
    int port;
    int loopback;
    dip_store *store;
    dip_executor *ex;
    int own_ex;
    void *mhd; /* struct MHD_Daemon */
    char *tls_cert_pem, *tls_key_pem;
    int lock_fd; /* flock on DATA/serve.lock: one server per data folder */

    pthread_mutex_t lock; /* everything below */
    pthread_cond_t cond;  /* runner wake-ups and event-stream updates */
    int stopping;
    uint64_t wake;                    /* bumped when a job is queued */
    uint64_t version;                 /* bumped on every progress or state change */
    volatile sig_atomic_t *stop_flag; /* the caller's, while dip_server_run runs */

    /* The running job. */
    char running_id[DIP_STORE_ID_LEN];
    volatile int cancel;
    struct dip_progress live;
    uint64_t base_tasks; /* items already finished when this run started */
    uint64_t base_pixels;
    double run_started;

    /* /process admission (a ticket queue; process_cond is its own wake-up). */
    pthread_cond_t process_cond;
    uint64_t process_next, process_done; /* tickets taken and finished */

    /* Metrics. */
    uint64_t m_requests, m_tasks, m_items_done, m_items_failed, m_cache_hits;
    uint64_t m_bytes_in, m_bytes_out, m_process;
    uint64_t lat_count[DIP__LAT_BUCKETS + 1];
    double lat_sum;
    uint64_t lat_n;
};

extern const double dip__lat_bounds[DIP__LAT_BUCKETS];

/** Wakes the runner (a job was queued). */
void dip__runner_wake(dip_server *s);
/** Records one task's latency for /metrics (locks). */
void dip__metrics_latency(dip_server *s, double seconds);
/** The cache key of one item: sha256 over input sha, canonical pipeline, format, quality. */
void dip__cache_key(const char *in_sha, const char *canon, const char *format, int quality,
                    char key[65]);

/** Appends the job object (see docs/api.md). `items`: include the items array. */
int dip__job_json(dip_server *s, const struct dip_store_job *job, int items, struct dip__sbuf *b);
/** The download name of item i of `job` (unique within the job). */
void dip__result_name(const struct dip_store_job *job, size_t i, char *out, size_t len);
/** 1 when state is final (done, failed, cancelled). */
int dip__state_final(const char *state);

#endif
