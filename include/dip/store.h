/* SPDX-License-Identifier: MIT */
/* The job store of `dip serve`: a SQLite database (WAL) holding jobs, their items, their results,
 * the result cache and the API tokens, next to a content-addressed blob folder (sha256, files at
 * blobs/ab/cdef...). Every write that the API acknowledges is committed before the call returns,
 * so a job survives kill -9; results are keyed by (job, item) and written once, so a resumed job
 * never produces a result twice. All calls are thread-safe (one lock per store). */
#ifndef DIP_STORE_H
#define DIP_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- SHA-256 (FIPS 180-4) ---- */

struct dip_sha256 {
    uint32_t h[8];
    uint64_t len; /* bytes hashed so far */
    uint8_t buf[64];
    size_t n; /* bytes waiting in buf */
};
void dip_sha256_init(struct dip_sha256 *s);
void dip_sha256_update(struct dip_sha256 *s, const void *data, size_t len);
void dip_sha256_final(struct dip_sha256 *s, uint8_t digest[32]);
/** Hex digest (64 lower-case characters and a NUL) of `len` bytes. */
void dip_sha256_hex(const void *data, size_t len, char hex[65]);

/* ---- The store ---- */

typedef struct dip_store dip_store;

/** Opens (creating when missing) the store in folder `dir`: DIR/dip.db and DIR/blobs/. Returns 0,
 * DIP_EIO (err names the path and the reason). Close with dip_store_close(). */
/** "SQLite 3.40.1": the linked library's version (static string). */
const char *dip_store_version(void);

int dip_store_open(const char *dir, dip_store **out, struct dip_err *err);
struct dip_s3_config;
/** Where the blobs live and whether they are encrypted at rest. */
struct dip_store_blob_opts {
    const char *url;         /* NULL or "": DIR/blobs; "s3://bucket[/prefix]": object storage */
    const char *encrypt_key; /* key file (dip key create): seal every blob; NULL: plain */
    const struct dip_s3_config *s3; /* endpoint and credentials; NULL: from the environment */
};
/** dip_store_open with the blobs where `bo` says (NULL: as dip_store_open). The database stays
 * DIR/dip.db. With a key, every blob is sealed (AES-256-GCM, a random nonce per blob, its name as
 * associated data) before it leaves the process; a blob that fails authentication is
 * DIP_EINTEGRITY naming the blob. DIP_EINVAL for a bad URL or key file, DIP_EAUTH/DIP_ENOTFOUND
 * when the bucket cannot be listed. */
int dip_store_open_blobs(const char *dir, const struct dip_store_blob_opts *bo, dip_store **out,
                         struct dip_err *err);
/** "var/blobs" or "s3://bucket/prefix", plus ", encrypted (key id ...)" (valid until close). */
const char *dip_store_blobs_describe(const dip_store *st);
/** NULL is a no-op. */
void dip_store_close(dip_store *st);
/** Deletes blob temporaries that a crash left between write and rename. Only for the one process
 * that writes blobs (the server, holding its lock): another writer's temporaries would go too. */
void dip_store_sweep(dip_store *st);

/** Stores `len` bytes under their sha256 (hex into `sha`); a blob already present is not written
 * again. The file is fsynced and renamed into place before the call returns. */
int dip_store_blob_put(dip_store *st, const void *data, size_t len, char sha[65],
                       struct dip_err *err);
/** Reads blob `sha` into a dip_malloc'ed buffer (dip_free). DIP_ENOTFOUND when absent, DIP_ELIMIT
 * when over `max_bytes`, DIP_EIO, DIP_EINTEGRITY when an encrypted blob fails authentication
 * (wrong key, altered) or is read without a key. */
int dip_store_blob_get(dip_store *st, const char *sha, size_t max_bytes, uint8_t **out, size_t *len,
                       struct dip_err *err);

/** Opens blob `sha` for reading in chunks (downloads stream from it): *fd (close it) and its size.
 * DIP_ENOTFOUND when absent, DIP_EIO. */
int dip_store_blob_open(dip_store *st, const char *sha, int *fd, uint64_t *size,
                        struct dip_err *err);

/** A presigned GET URL (dip_malloc'ed) for blob `sha`, valid `expires_s` seconds, when the blobs
 * are in object storage and not encrypted; DIP_ENOTFOUND (err untouched) otherwise: stream it. */
int dip_store_blob_presign(dip_store *st, const char *sha, unsigned expires_s, char **url,
                           struct dip_err *err);

/* ---- Jobs ---- */

#define DIP_STORE_ID_LEN 40

/** One input image of a job and, once done, its result. */
struct dip_store_item {
    int index;
    char name[256]; /* the uploaded file name */
    char sha[65];   /* input blob */
    uint64_t bytes_in;
    int width, height; /* from the header */
    char state[12];    /* queued | running | done | failed | cancelled */
    char error[512];   /* when failed */
    /* The result (state done). */
    char out_sha[65];
    char out_format[8];
    int out_width, out_height;
    uint64_t bytes_out;
    int cached;
    double cpu_s;   /* CPU seconds spent making the result (counted as the owner's usage) */
    char *versions; /* the canonical pipeline with op versions that made it (dip_free'd by
                       dip_store_job_free) */
};

struct dip_store_job {
    char id[DIP_STORE_ID_LEN];
    char owner[64];
    char state[12]; /* queued | running | done | failed | cancelled */
    char *pipeline; /* as submitted */
    char *canon;    /* canonical text with versions: part of the cache key */
    char format[8]; /* requested output format; "" = same as input */
    int quality;
    double created, finished; /* unix seconds; finished 0 while unfinished */
    char name[128];           /* the user's name for the job; "" when none */
    size_t n_items;
    struct dip_store_item *items; /* n_items entries, or NULL when listed without items */
    double cpu_s; /* dip_store_job_create: CPU spent taking it in, counted as the owner's usage */
};

/** Frees a job read from the store (and its items). NULL is a no-op. */
void dip_store_job_free(struct dip_store_job *job);
/** Frees an array from dip_store_job_list. */
void dip_store_jobs_free(struct dip_store_job *jobs, size_t n);

/** Records a new job and its items (state queued) in one transaction. The items' blobs must be
 * stored already. */
int dip_store_job_create(dip_store *st, const struct dip_store_job *job, struct dip_err *err);
/** As dip_store_job_create, refusing with DIP_EBUSY (err says which) when `owner` already has
 * `max_owner` queued or running jobs, or everybody `max_all` (0: no cap); checked and created in
 * one transaction. */
int dip_store_job_create_capped(dip_store *st, const struct dip_store_job *job, uint64_t max_owner,
                                uint64_t max_all, struct dip_err *err);
/** Reads job `id` (with its items when `items`). DIP_ENOTFOUND when absent. The caller frees *out
 * with dip_store_job_free. */
int dip_store_job_get(dip_store *st, const char *id, int items, struct dip_store_job **out,
                      struct dip_err *err);
/** Jobs of `owner` (NULL: everybody's), newest first, at most `max`; an array of *n jobs
 * (dip_store_jobs_free). */
int dip_store_job_list(dip_store *st, const char *owner, int items, size_t max,
                       struct dip_store_job **out, size_t *n, struct dip_err *err);
/** Sets the job's state (and `finished` when final). Unless `force`, a final state
 * (done, failed, cancelled) is never changed. */
int dip_store_job_set_state(dip_store *st, const char *id, const char *state, int force,
                            struct dip_err *err);
/** The next queued job's id: the oldest of an owner other than `last_owner` (NULL or "": any),
 * else the oldest; users take turns while several wait. DIP_ENOTFOUND when none is queued. */
int dip_store_job_next(dip_store *st, const char *last_owner, char id[DIP_STORE_ID_LEN],
                       struct dip_err *err);
/** The ids of up to `max` queued or running jobs, oldest first, into ids[0..*n). */
int dip_store_job_pending(dip_store *st, char (*ids)[DIP_STORE_ID_LEN], size_t max, size_t *n,
                          struct dip_err *err);
/** Counts the jobs of `owner` (NULL: all) that are queued or running. */
int dip_store_job_active(dip_store *st, const char *owner, uint64_t *n, struct dip_err *err);
/** Job counts by state for /metrics: queued, running, done, failed, cancelled. */
int dip_store_job_counts(dip_store *st, uint64_t counts[5], struct dip_err *err);
/** After a restart: running jobs and items go back to queued. */
int dip_store_recover(dip_store *st, struct dip_err *err);

/** Sets an item's state and error (NULL for none). A done item is never changed. */
int dip_store_item_set_state(dip_store *st, const char *id, int index, const char *state,
                             const char *error, struct dip_err *err);
/** Sets every queued or running item of job `id` to `state` (e.g. cancelled). */
int dip_store_items_finish(dip_store *st, const char *id, const char *state, const char *error,
                           struct dip_err *err);

/** Starts job `id` in one transaction: the job (unless final) and its queued items become
 * running. */
int dip_store_job_start(dip_store *st, const char *id, struct dip_err *err);
/** Ends job `id` in one transaction: its queued or running items become `item_state` (with
 * `error`, may be NULL), and the job becomes `state` unless it is final already. */
int dip_store_job_finish(dip_store *st, const char *id, const char *state, const char *item_state,
                         const char *error, struct dip_err *err);

/** Records item `index`'s result (its blob stored already) in one transaction: the result row
 * (unique per job and item: a second call changes nothing), the item's state and, when
 * `cache_key` is not NULL, the cache entry. */
int dip_store_result_put(dip_store *st, const char *id, const struct dip_store_item *result,
                         const char *cache_key, struct dip_err *err);
/** The cached result for `cache_key` into out_sha/out_format/out_width/out_height/bytes_out/
 * versions of `out` (versions dip_malloc'ed). DIP_ENOTFOUND when none or when its blob is gone. */
int dip_store_cache_get(dip_store *st, const char *cache_key, struct dip_store_item *out,
                        struct dip_err *err);

/* ---- Usage ---- */

/** One user's usage over a window (or a change to it, for dip_store_usage_add). Jobs, bytes in
 * and stored bytes are counted when a job is recorded, items, bytes out and CPU when a result is
 * (once per result, however often a job resumes). */
struct dip_store_usage {
    char user[64];
    uint64_t jobs, items;         /* items: results stored (cache hits too) */
    uint64_t bytes_in, bytes_out; /* uploaded inputs; results */
    double cpu_s;                 /* thread CPU seconds spent on the user's items */
    uint64_t bytes_stored;        /* inputs and results the user's jobs hold now (not windowed) */
    double stored_byte_s;         /* bytes stored integrated over the window: byte-seconds */
    int64_t stored_delta;         /* dip_store_usage_add only: change of the bytes stored */
};
/** Records a change to `owner`'s usage at the current time (e.g. CPU spent on an item that
 * failed, or on checking an upload). */
int dip_store_usage_add(dip_store *st, const char *owner, const struct dip_store_usage *delta,
                        struct dip_err *err);
/** Usage per user within [since, until) (unix seconds), of `owner` only when not NULL, biggest
 * CPU users first: an array of *n (dip_free; NULL when none). Users without usage are absent.
 * since < 0: all time from running totals (one row read per user; stored_byte_s is 0 then). */
int dip_store_usage_query(dip_store *st, const char *owner, double since, double until,
                          struct dip_store_usage **out, size_t *n, struct dip_err *err);

/* ---- Tokens ---- */

/** Creates user `name` (letters, digits, . _ -; up to 63) with a new random token written to
 * `token` (only its hash is stored). DIP_EINVAL for a bad or taken name. */
int dip_store_token_create(dip_store *st, const char *name, int admin, char token[80],
                           struct dip_err *err);
/** Calls fn for every user. */
int dip_store_token_list(dip_store *st,
                         void (*fn)(void *ud, const char *name, int admin, double created),
                         void *ud, struct dip_err *err);
/** Deletes user `name`'s token; DIP_ENOTFOUND when none. */
int dip_store_token_revoke(dip_store *st, const char *name, struct dip_err *err);
/** Looks up a presented token: 0 with the user's name and admin flag, DIP_EAUTH when unknown. */
int dip_store_token_check(dip_store *st, const char *token, char name[64], int *admin,
                          struct dip_err *err);
/** Number of tokens. */
int dip_store_token_count(dip_store *st, uint64_t *n, struct dip_err *err);

/* ---- Retention ---- */

/** Deletes job `id` (its items, results, and cache entries no other job's results share) in one
 * transaction, then, with `free_blobs`, the blob files no row refers to any more; *files and
 * *bytes (optional) count what was freed. Only the process that writes blobs (the server, holding
 * its lock) may free them. DIP_ENOTFOUND when there is no such job. */
int dip_store_job_delete(dip_store *st, const char *id, int free_blobs, uint64_t *files,
                         uint64_t *bytes, struct dip_err *err);
/** Ids of up to `max` jobs: every job of `owner` when it is not NULL, else the final jobs that
 * finished before `before` (unix seconds), oldest first. */
int dip_store_jobs_before(dip_store *st, const char *owner, double before,
                          char (*ids)[DIP_STORE_ID_LEN], size_t max, size_t *n,
                          struct dip_err *err);
/** Deletes blob files that no row refers to and whose mtime is before `older_than` (younger ones
 * may belong to an upload in flight): interrupted uploads' and deleted jobs' leftovers. Counts
 * what went (*files, *bytes) and what stays (*kept_files, *kept_bytes: the disk use). */
int dip_store_blob_collect(dip_store *st, double older_than, uint64_t *files, uint64_t *bytes,
                           uint64_t *kept_files, uint64_t *kept_bytes);

/** Writes a consistent copy of the database to `path` (sqlite3 online backup), while the store
 * stays in use. */
int dip_store_backup(dip_store *st, const char *path, struct dip_err *err);

/** Fills `buf` with `len` random bytes from the OS. */
int dip_store_random(void *buf, size_t len, struct dip_err *err);

#ifdef __cplusplus
}
#endif
#endif
