/* SPDX-License-Identifier: MIT */
/* The SQLite job store and the content-addressed blob folder (see include/dip/store.h). One
 * connection guarded by one mutex: transactions span several statements, and the server's load is
 * a few writes per item, far below what one connection sustains. sqlite3 result codes are mapped
 * to DIP_E* here and nowhere else. Durability: WAL with synchronous=FULL, and blobs are fsynced
 * and renamed into place before the rows that name them are committed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "blobs.h"
#include "dip/image.h"
#include "dip/store.h"
#include "store/usage.h"

struct dip_store {
    pthread_mutex_t lock;
    sqlite3 *db;
    char *dir;
    struct dip__blobs *blobs;
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS jobs ("
    " id TEXT PRIMARY KEY, owner TEXT NOT NULL, state TEXT NOT NULL, pipeline TEXT NOT NULL,"
    " canon TEXT NOT NULL, format TEXT NOT NULL, quality INTEGER NOT NULL,"
    " created REAL NOT NULL, finished REAL NOT NULL DEFAULT 0, n_items INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, created);"
    "CREATE INDEX IF NOT EXISTS jobs_owner ON jobs(owner, created);"
    "CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(finished);"
    "CREATE TABLE IF NOT EXISTS items ("
    " job TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL, sha TEXT NOT NULL,"
    " bytes_in INTEGER NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,"
    " state TEXT NOT NULL, error TEXT, PRIMARY KEY (job, idx));"
    "CREATE TABLE IF NOT EXISTS results ("
    " job TEXT NOT NULL, idx INTEGER NOT NULL, sha TEXT NOT NULL, format TEXT NOT NULL,"
    " width INTEGER NOT NULL, height INTEGER NOT NULL, bytes INTEGER NOT NULL,"
    " cached INTEGER NOT NULL, versions TEXT NOT NULL, created REAL NOT NULL,"
    " PRIMARY KEY (job, idx));"
    "CREATE TABLE IF NOT EXISTS cache ("
    " key TEXT PRIMARY KEY, sha TEXT NOT NULL, format TEXT NOT NULL, width INTEGER NOT NULL,"
    " height INTEGER NOT NULL, bytes INTEGER NOT NULL, versions TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS items_sha ON items(sha);"
    "CREATE INDEX IF NOT EXISTS results_sha ON results(sha);"
    "CREATE INDEX IF NOT EXISTS cache_sha ON cache(sha);"
    "CREATE TABLE IF NOT EXISTS tokens ("
    " name TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, admin INTEGER NOT NULL,"
    " created REAL NOT NULL);"
    /* A job's optional name, in a table of its own so that stores made before it need no
     * migration (a job without a row has no name). */
    "CREATE TABLE IF NOT EXISTS job_names (job TEXT PRIMARY KEY, name TEXT NOT NULL);";

static double wall_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int db_err(dip_store *st, struct dip_err *err, int src, const char *what)
{
    int code = DIP_EIO;

    if (src == SQLITE_NOMEM)
        code = DIP_ENOMEM;
    else if (src == SQLITE_BUSY || src == SQLITE_LOCKED)
        code = DIP_EBUSY;
    else if (src == SQLITE_FULL)
        code = DIP_ENOSPC;
    return dip_err_set(err, code, "store: %s: %s", what, st ? sqlite3_errmsg(st->db) : "?");
}

static void copy_str(char *dst, size_t cap, const unsigned char *src)
{
    snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

static int prep(dip_store *st, const char *sql, sqlite3_stmt **stmt, struct dip_err *err)
{
    int src = sqlite3_prepare_v2(st->db, sql, -1, stmt, NULL);

    if (src != SQLITE_OK)
        return db_err(st, err, src, "prepare");
    return 0;
}

/* Runs a statement that returns no rows. */
static int exec_sql(dip_store *st, const char *sql, struct dip_err *err)
{
    char *msg = NULL;
    int rc = 0, src = sqlite3_exec(st->db, sql, NULL, NULL, &msg);

    if (src != SQLITE_OK)
        rc = dip_err_set(err, src == SQLITE_NOMEM ? DIP_ENOMEM : DIP_EIO, "store: %s",
                         msg ? msg : sqlite3_errstr(src));
    sqlite3_free(msg);
    return rc;
}

static int step_done(dip_store *st, sqlite3_stmt *stmt, struct dip_err *err)
{
    int src = sqlite3_step(stmt);

    if (src != SQLITE_DONE && src != SQLITE_ROW)
        return db_err(st, err, src, "step");
    return 0;
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST)
                return -1;
            buf[i] = c;
        }
    }
    return 0;
}

void dip_store_sweep(dip_store *st)
{
    dip__blobs_sweep(st->blobs);
}

int dip_store_open(const char *dir, dip_store **out, struct dip_err *err)
{
    return dip_store_open_blobs(dir, NULL, out, err);
}

int dip_store_open_blobs(const char *dir, const struct dip_store_blob_opts *bo, dip_store **out,
                         struct dip_err *err)
{
    dip_store *st = NULL;
    char path[4096];
    int rc = 0, src;

    *out = NULL;
    if (strlen(dir) > 3000)
        return dip_err_set(err, DIP_EINVAL, "store: data folder path too long");
    snprintf(path, sizeof(path), "%s/blobs", dir);
    if (mkdir_p(path) != 0) {
        rc = dip_err_set(err, DIP_EIO, "store: cannot create %s: %s", path, strerror(errno));
        goto out;
    }
    st = dip_calloc(1, sizeof(*st));
    if (st == NULL || (st->dir = dip_strdup(dir)) == NULL) {
        rc = DIP_ENOMEM;
        goto out;
    }
    pthread_mutex_init(&st->lock, NULL);
    rc = dip__blobs_open(dir, bo, &st->blobs, err);
    if (rc != 0)
        goto out;
    snprintf(path, sizeof(path), "%s/dip.db", dir);
    /* The database holds token hashes and every user's jobs: private like the blobs. SQLite gives
     * its -wal and -shm files the database file's mode, so creating (or fixing) it 0600 first
     * covers them too, whatever the umask or an older version left. */
    {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || fchmod(fd, 0600) != 0) {
            rc = dip_err_set(err, DIP_EIO, "store: cannot open %s: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            goto out;
        }
        close(fd);
        snprintf(path, sizeof(path), "%s/dip.db-wal", dir);
        (void)chmod(path, 0600);
        snprintf(path, sizeof(path), "%s/dip.db-shm", dir);
        (void)chmod(path, 0600);
        snprintf(path, sizeof(path), "%s/dip.db", dir);
    }
    src = sqlite3_open_v2(path, &st->db,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        rc = dip_err_set(err, DIP_EIO, "store: cannot open %s: %s", path,
                         st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(src));
        goto out;
    }
    sqlite3_busy_timeout(st->db, 10000);
    rc = exec_sql(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", err);
    if (rc == 0)
        rc = exec_sql(st, schema, err);
    if (rc == 0 && (src = dip__usage_schema(st->db)) != SQLITE_OK)
        rc = db_err(st, err, src, "usage tables");
    if (rc != 0)
        goto out;
    *out = st;
    st = NULL;
out:
    dip_store_close(st);
    return rc;
}

void dip_store_close(dip_store *st)
{
    if (st == NULL)
        return;
    if (st->db != NULL)
        sqlite3_close(st->db);
    dip__blobs_close(st->blobs);
    if (st->dir != NULL)
        pthread_mutex_destroy(&st->lock);
    dip_free(st->dir);
    dip_free(st);
}

/* ---- Blobs (blobs.c) ---- */

int dip_store_blob_put(dip_store *st, const void *data, size_t len, char sha[65],
                       struct dip_err *err)
{
    dip_sha256_hex(data, len, sha);
    return dip__blobs_put(st->blobs, sha, data, len, err);
}

int dip_store_blob_open(dip_store *st, const char *sha, int *fd_out, uint64_t *size,
                        struct dip_err *err)
{
    return dip__blobs_open_read(st->blobs, sha, fd_out, size, err);
}

int dip_store_blob_presign(dip_store *st, const char *sha, unsigned expires_s, char **url,
                           struct dip_err *err)
{
    return dip__blobs_presign(st->blobs, sha, expires_s, url, err);
}

int dip_store_blob_get(dip_store *st, const char *sha, size_t max_bytes, uint8_t **out, size_t *len,
                       struct dip_err *err)
{
    return dip__blobs_get(st->blobs, sha, max_bytes, out, len, err);
}

const char *dip_store_blobs_describe(const dip_store *st)
{
    return dip__blobs_describe(st->blobs);
}

int dip_store_random(void *buf, size_t len, struct dip_err *err)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t r = getrandom(p, len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return dip_err_set(err, DIP_EIO, "store: getrandom: %s", strerror(errno));
        p += r, len -= (size_t)r;
    }
    return 0;
}

/* ---- Jobs ---- */

void dip_store_job_free(struct dip_store_job *job)
{
    if (job == NULL)
        return;
    dip_store_jobs_free(job, 1);
}

void dip_store_jobs_free(struct dip_store_job *jobs, size_t n)
{
    if (jobs == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        dip_free(jobs[i].pipeline);
        dip_free(jobs[i].canon);
        for (size_t k = 0; jobs[i].items != NULL && k < jobs[i].n_items; k++)
            dip_free(jobs[i].items[k].versions);
        dip_free(jobs[i].items);
    }
    dip_free(jobs);
}

/* COUNT(*) of `sql` (one optional text argument) inside the caller's transaction. */
static int count_locked(dip_store *st, const char *sql, const char *arg, uint64_t *n,
                        struct dip_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, src;

    *n = 0;
    rc = prep(st, sql, &s, err);
    if (rc != 0)
        return rc;
    if (arg)
        sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
    src = sqlite3_step(s);
    if (src == SQLITE_ROW)
        *n = (uint64_t)sqlite3_column_int64(s, 0);
    else
        rc = db_err(st, err, src, "count");
    sqlite3_finalize(s);
    return rc;
}

int dip_store_job_create(dip_store *st, const struct dip_store_job *job, struct dip_err *err)
{
    return dip_store_job_create_capped(st, job, 0, 0, err);
}

int dip_store_job_create_capped(dip_store *st, const struct dip_store_job *job, uint64_t max_owner,
                                uint64_t max_all, struct dip_err *err)
{
    sqlite3_stmt *js = NULL, *is = NULL;
    int rc = 0, began = 0, src;
    uint64_t n = 0;

    pthread_mutex_lock(&st->lock);
    rc = exec_sql(st, "BEGIN IMMEDIATE", err);
    if (rc != 0)
        goto out;
    began = 1;
    /* The quotas are checked inside the transaction that creates the job, so concurrent
     * submissions cannot all pass the check before any of them is recorded. */
    if (max_owner > 0) {
        rc = count_locked(st,
                          "SELECT COUNT(*) FROM jobs WHERE owner = ?"
                          " AND state IN ('queued', 'running')",
                          job->owner, &n, err);
        if (rc == 0 && n >= max_owner)
            rc = dip_err_set(err, DIP_EBUSY, "user %s has %llu unfinished jobs (limit %llu)",
                             job->owner, (unsigned long long)n, (unsigned long long)max_owner);
        if (rc != 0)
            goto out;
    }
    if (max_all > 0) {
        rc = count_locked(st, "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')",
                          NULL, &n, err);
        if (rc == 0 && n >= max_all)
            rc =
                dip_err_set(err, DIP_EBUSY, "the queue is full (%llu jobs)", (unsigned long long)n);
        if (rc != 0)
            goto out;
    }
    rc = prep(st,
              "INSERT INTO jobs (id, owner, state, pipeline, canon, format, quality, created,"
              " n_items) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
              &js, err);
    if (rc != 0)
        goto out;
    sqlite3_bind_text(js, 1, job->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(js, 2, job->owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(js, 3, job->pipeline ? job->pipeline : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(js, 4, job->canon ? job->canon : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(js, 5, job->format, -1, SQLITE_STATIC);
    sqlite3_bind_int(js, 6, job->quality);
    sqlite3_bind_double(js, 7, job->created);
    sqlite3_bind_int64(js, 8, (sqlite3_int64)job->n_items);
    rc = step_done(st, js, err);
    if (rc == 0 && job->name[0] != '\0') {
        sqlite3_finalize(js);
        js = NULL;
        rc = prep(st, "INSERT INTO job_names (job, name) VALUES (?, ?)", &js, err);
        if (rc == 0) {
            sqlite3_bind_text(js, 1, job->id, -1, SQLITE_STATIC);
            sqlite3_bind_text(js, 2, job->name, -1, SQLITE_STATIC);
            rc = step_done(st, js, err);
        }
    }
    if (rc != 0)
        goto out;
    rc = prep(st,
              "INSERT INTO items (job, idx, name, sha, bytes_in, width, height, state)"
              " VALUES (?, ?, ?, ?, ?, ?, ?, 'queued')",
              &is, err);
    for (size_t i = 0; rc == 0 && i < job->n_items; i++) {
        const struct dip_store_item *it = &job->items[i];
        sqlite3_reset(is);
        sqlite3_bind_text(is, 1, job->id, -1, SQLITE_STATIC);
        sqlite3_bind_int(is, 2, it->index);
        sqlite3_bind_text(is, 3, it->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(is, 4, it->sha, -1, SQLITE_STATIC);
        sqlite3_bind_int64(is, 5, (sqlite3_int64)it->bytes_in);
        sqlite3_bind_int(is, 6, it->width);
        sqlite3_bind_int(is, 7, it->height);
        rc = step_done(st, is, err);
    }
    if (rc == 0 && (src = dip__usage_job_created(st->db, job)) != SQLITE_OK)
        rc = db_err(st, err, src, "usage");
    if (rc == 0)
        rc = exec_sql(st, "COMMIT", err);
    if (rc == 0)
        began = 0;
out:
    sqlite3_finalize(js);
    sqlite3_finalize(is);
    if (began)
        (void)exec_sql(st, "ROLLBACK", NULL);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

#define JOB_COLS                                                                                   \
    "id, owner, state, pipeline, canon, format, quality, created, finished, n_items,"              \
    " (SELECT name FROM job_names WHERE job_names.job = jobs.id)"

static int read_job(sqlite3_stmt *s, struct dip_store_job *job)
{
    copy_str(job->id, sizeof(job->id), sqlite3_column_text(s, 0));
    copy_str(job->owner, sizeof(job->owner), sqlite3_column_text(s, 1));
    copy_str(job->state, sizeof(job->state), sqlite3_column_text(s, 2));
    job->pipeline = dip_strdup((const char *)sqlite3_column_text(s, 3));
    job->canon = dip_strdup((const char *)sqlite3_column_text(s, 4));
    copy_str(job->format, sizeof(job->format), sqlite3_column_text(s, 5));
    job->quality = sqlite3_column_int(s, 6);
    job->created = sqlite3_column_double(s, 7);
    job->finished = sqlite3_column_double(s, 8);
    job->n_items = (size_t)sqlite3_column_int64(s, 9);
    copy_str(job->name, sizeof(job->name), sqlite3_column_text(s, 10));
    return job->pipeline && job->canon ? 0 : DIP_ENOMEM;
}

static int read_items(dip_store *st, struct dip_store_job *job, struct dip_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc = 0, src;
    size_t n = 0;

    if (job->n_items > 100000)
        return dip_err_set(err, DIP_EIO, "store: job %s has too many items", job->id);
    job->items = dip_calloc(job->n_items ? job->n_items : 1, sizeof(*job->items));
    if (job->items == NULL)
        return DIP_ENOMEM;
    rc = prep(st,
              "SELECT i.idx, i.name, i.sha, i.bytes_in, i.width, i.height, i.state, i.error,"
              " r.sha, r.format, r.width, r.height, r.bytes, r.cached, r.versions"
              " FROM items i LEFT JOIN results r ON r.job = i.job AND r.idx = i.idx"
              " WHERE i.job = ? ORDER BY i.idx",
              &s, err);
    if (rc != 0)
        goto out;
    sqlite3_bind_text(s, 1, job->id, -1, SQLITE_STATIC);
    while ((src = sqlite3_step(s)) == SQLITE_ROW && n < job->n_items) {
        struct dip_store_item *it = &job->items[n++];
        it->index = sqlite3_column_int(s, 0);
        copy_str(it->name, sizeof(it->name), sqlite3_column_text(s, 1));
        copy_str(it->sha, sizeof(it->sha), sqlite3_column_text(s, 2));
        it->bytes_in = (uint64_t)sqlite3_column_int64(s, 3);
        it->width = sqlite3_column_int(s, 4);
        it->height = sqlite3_column_int(s, 5);
        copy_str(it->state, sizeof(it->state), sqlite3_column_text(s, 6));
        copy_str(it->error, sizeof(it->error), sqlite3_column_text(s, 7));
        if (sqlite3_column_type(s, 8) != SQLITE_NULL) {
            copy_str(it->out_sha, sizeof(it->out_sha), sqlite3_column_text(s, 8));
            copy_str(it->out_format, sizeof(it->out_format), sqlite3_column_text(s, 9));
            it->out_width = sqlite3_column_int(s, 10);
            it->out_height = sqlite3_column_int(s, 11);
            it->bytes_out = (uint64_t)sqlite3_column_int64(s, 12);
            it->cached = sqlite3_column_int(s, 13);
            it->versions = dip_strdup((const char *)sqlite3_column_text(s, 14));
            if (it->versions == NULL) {
                rc = DIP_ENOMEM;
                goto out;
            }
        }
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        rc = db_err(st, err, src, "read items");
    job->n_items = n;
out:
    sqlite3_finalize(s);
    return rc;
}

int dip_store_job_get(dip_store *st, const char *id, int items, struct dip_store_job **out,
                      struct dip_err *err)
{
    struct dip_store_job *job = NULL;
    sqlite3_stmt *s = NULL;
    int rc, src;

    *out = NULL;
    pthread_mutex_lock(&st->lock);
    rc = prep(st, "SELECT " JOB_COLS " FROM jobs WHERE id = ?", &s, err);
    if (rc != 0)
        goto out;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    src = sqlite3_step(s);
    if (src == SQLITE_DONE) {
        rc = dip_err_set(err, DIP_ENOTFOUND, "no job %s", id);
        goto out;
    }
    if (src != SQLITE_ROW) {
        rc = db_err(st, err, src, "read job");
        goto out;
    }
    job = dip_calloc(1, sizeof(*job));
    if (job == NULL) {
        rc = DIP_ENOMEM;
        goto out;
    }
    rc = read_job(s, job);
    if (rc == 0 && items)
        rc = read_items(st, job, err);
    if (rc != 0)
        goto out;
    *out = job;
    job = NULL;
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    dip_store_job_free(job);
    return rc;
}

int dip_store_job_list(dip_store *st, const char *owner, int items, size_t max,
                       struct dip_store_job **out, size_t *n, struct dip_err *err)
{
    struct dip_store_job *jobs = NULL;
    sqlite3_stmt *s = NULL;
    size_t cnt = 0;
    int rc, src;

    *out = NULL;
    *n = 0;
    if (max == 0)
        max = 1;
    jobs = dip_calloc(max, sizeof(*jobs));
    if (jobs == NULL)
        return DIP_ENOMEM;
    pthread_mutex_lock(&st->lock);
    rc = prep(st,
              owner ? "SELECT " JOB_COLS " FROM jobs WHERE owner = ?"
                      " ORDER BY created DESC, rowid DESC LIMIT ?"
                    : "SELECT " JOB_COLS " FROM jobs WHERE ?1 IS NULL"
                      " ORDER BY created DESC, rowid DESC LIMIT ?",
              &s, err);
    if (rc != 0)
        goto out;
    if (owner)
        sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
    while (rc == 0 && cnt < max && (src = sqlite3_step(s)) == SQLITE_ROW) {
        rc = read_job(s, &jobs[cnt]);
        cnt++;
        if (rc == 0 && items)
            rc = read_items(st, &jobs[cnt - 1], err);
    }
    if (rc != 0)
        goto out;
    *out = jobs;
    *n = cnt;
    jobs = NULL;
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    dip_store_jobs_free(jobs, cnt);
    return rc;
}

static int is_final(const char *state)
{
    return strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 ||
           strcmp(state, "cancelled") == 0;
}

int dip_store_job_set_state(dip_store *st, const char *id, const char *state, int force,
                            struct dip_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc;

    pthread_mutex_lock(&st->lock);
    rc = prep(st,
              force ? "UPDATE jobs SET state = ?2, finished = ?3 WHERE id = ?1"
                    : "UPDATE jobs SET state = ?2, finished = ?3 WHERE id = ?1"
                      " AND state NOT IN ('done', 'failed', 'cancelled')",
              &s, err);
    if (rc != 0)
        goto out;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 3, is_final(state) ? wall_now() : 0.0);
    rc = step_done(st, s, err);
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int dip_store_job_next(dip_store *st, const char *last_owner, char id[DIP_STORE_ID_LEN],
                       struct dip_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, src;

    pthread_mutex_lock(&st->lock);
    rc = prep(st,
              "SELECT id FROM jobs WHERE state = 'queued'"
              " ORDER BY owner = ?1, created, rowid LIMIT 1",
              &s, err);
    if (rc != 0)
        goto out;
    sqlite3_bind_text(s, 1, last_owner ? last_owner : "", -1, SQLITE_STATIC);
    src = sqlite3_step(s);
    if (src == SQLITE_ROW)
        copy_str(id, DIP_STORE_ID_LEN, sqlite3_column_text(s, 0));
    else if (src == SQLITE_DONE)
        rc = DIP_ENOTFOUND;
    else
        rc = db_err(st, err, src, "next job");
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int dip_store_job_pending(dip_store *st, char (*ids)[DIP_STORE_ID_LEN], size_t max, size_t *n,
                          struct dip_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, src = SQLITE_DONE;

    *n = 0;
    pthread_mutex_lock(&st->lock);
    rc = prep(st,
              "SELECT id FROM jobs WHERE state IN ('queued', 'running')"
              " ORDER BY created, rowid LIMIT ?",
              &s, err);
    if (rc != 0)
        goto out;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)max);
    while (*n < max && (src = sqlite3_step(s)) == SQLITE_ROW)
        copy_str(ids[(*n)++], DIP_STORE_ID_LEN, sqlite3_column_text(s, 0));
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        rc = db_err(st, err, src, "pending jobs");
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

static int count_query(dip_store *st, const char *sql, const char *arg, uint64_t *n,
                       struct dip_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, src;

    *n = 0;
    pthread_mutex_lock(&st->lock);
    rc = prep(st, sql, &s, err);
    if (rc != 0)
        goto out;
    if (arg)
        sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
    src = sqlite3_step(s);
    if (src == SQLITE_ROW)
        *n = (uint64_t)sqlite3_column_int64(s, 0);
    else
        rc = db_err(st, err, src, "count");
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int dip_store_job_active(dip_store *st, const char *owner, uint64_t *n, struct dip_err *err)
{
    if (owner)
        return count_query(st,
                           "SELECT COUNT(*) FROM jobs WHERE owner = ?"
                           " AND state IN ('queued', 'running')",
                           owner, n, err);
    return count_query(st, "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')", NULL,
                       n, err);
}

int dip_store_job_counts(dip_store *st, uint64_t counts[5], struct dip_err *err)
{
    static const char *const names[5] = {"queued", "running", "done", "failed", "cancelled"};
    int rc = 0;

    for (int i = 0; rc == 0 && i < 5; i++)
        rc =
            count_query(st, "SELECT COUNT(*) FROM jobs WHERE state = ?", names[i], &counts[i], err);
    return rc;
}

int dip_store_recover(dip_store *st, struct dip_err *err)
{
    int rc;

    pthread_mutex_lock(&st->lock);
    rc = exec_sql(st,
                  "BEGIN IMMEDIATE;"
                  "UPDATE jobs SET state = 'queued' WHERE state = 'running';"
                  "UPDATE items SET state = 'queued' WHERE state = 'running';"
                  "COMMIT;",
                  err);
    if (rc != 0)
        (void)exec_sql(st, "ROLLBACK", NULL);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int dip_store_item_set_state(dip_store *st, const char *id, int index, const char *state,
                             const char *error, struct dip_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc;

    pthread_mutex_lock(&st->lock);
    rc = prep(st,
              "UPDATE items SET state = ?3, error = ?4 WHERE job = ?1 AND idx = ?2"
              " AND state != 'done'",
              &s, err);
    if (rc != 0)
        goto out;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, index);
    sqlite3_bind_text(s, 3, state, -1, SQLITE_STATIC);
    if (error)
        sqlite3_bind_text(s, 4, error, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 4);
    rc = step_done(st, s, err);
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int dip_store_items_finish(dip_store *st, const char *id, const char *state, const char *error,
                           struct dip_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc;

    pthread_mutex_lock(&st->lock);
    rc = prep(st,
              "UPDATE items SET state = ?2, error = ?3 WHERE job = ?1"
              " AND state IN ('queued', 'running')",
              &s, err);
    if (rc != 0)
        goto out;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, state, -1, SQLITE_STATIC);
    if (error)
        sqlite3_bind_text(s, 3, error, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 3);
    rc = step_done(st, s, err);
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

/* Runs the statements of `sql` (with ?1 = id, ?2 = state, ?3 = item state, ?4 = error,
 * ?5 = finished) in one transaction. */
static int job_txn(dip_store *st, const char *const *sql, size_t n, const char *id,
                   const char *state, const char *item_state, const char *error,
                   struct dip_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, began = 0;

    pthread_mutex_lock(&st->lock);
    rc = exec_sql(st, "BEGIN IMMEDIATE", err);
    if (rc != 0)
        goto out;
    began = 1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = prep(st, sql[i], &s, err);
        if (rc != 0)
            goto out;
        /* Each statement uses some of the five parameters; binding past its highest one would
         * only return SQLITE_RANGE. */
        int np = sqlite3_bind_parameter_count(s);
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        if (np >= 2)
            sqlite3_bind_text(s, 2, state, -1, SQLITE_STATIC);
        if (np >= 3)
            sqlite3_bind_text(s, 3, item_state, -1, SQLITE_STATIC);
        if (np >= 4 && error)
            sqlite3_bind_text(s, 4, error, -1, SQLITE_STATIC);
        if (np >= 5)
            sqlite3_bind_double(s, 5, is_final(state) ? wall_now() : 0.0);
        rc = step_done(st, s, err);
        sqlite3_finalize(s);
        s = NULL;
    }
    if (rc == 0)
        rc = exec_sql(st, "COMMIT", err);
    if (rc == 0)
        began = 0;
out:
    sqlite3_finalize(s);
    if (began)
        (void)exec_sql(st, "ROLLBACK", NULL);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int dip_store_job_start(dip_store *st, const char *id, struct dip_err *err)
{
    static const char *const sql[] = {
        "UPDATE jobs SET state = ?2 WHERE id = ?1 AND state NOT IN ('done', 'failed', 'cancelled')",
        "UPDATE items SET state = ?3 WHERE job = ?1 AND state IN ('queued', 'running')",
    };

    return job_txn(st, sql, 2, id, "running", "running", NULL, err);
}

int dip_store_job_finish(dip_store *st, const char *id, const char *state, const char *item_state,
                         const char *error, struct dip_err *err)
{
    static const char *const sql[] = {
        "UPDATE items SET state = ?3, error = ?4 WHERE job = ?1 AND state IN ('queued', 'running')",
        "UPDATE jobs SET state = ?2, finished = ?5 WHERE id = ?1"
        " AND state NOT IN ('done', 'failed', 'cancelled')",
    };

    return job_txn(st, sql, 2, id, state, item_state, error, err);
}

int dip_store_result_put(dip_store *st, const char *id, const struct dip_store_item *r,
                         const char *cache_key, struct dip_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, began = 0;
    const char *versions = r->versions ? r->versions : "";

    pthread_mutex_lock(&st->lock);
    rc = exec_sql(st, "BEGIN IMMEDIATE", err);
    if (rc != 0)
        goto out;
    began = 1;
    rc = prep(st,
              "INSERT OR IGNORE INTO results (job, idx, sha, format, width, height, bytes,"
              " cached, versions, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
              &s, err);
    if (rc != 0)
        goto out;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, r->index);
    sqlite3_bind_text(s, 3, r->out_sha, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, r->out_format, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, r->out_width);
    sqlite3_bind_int(s, 6, r->out_height);
    sqlite3_bind_int64(s, 7, (sqlite3_int64)r->bytes_out);
    sqlite3_bind_int(s, 8, r->cached);
    sqlite3_bind_text(s, 9, versions, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 10, wall_now());
    rc = step_done(st, s, err);
    sqlite3_finalize(s);
    s = NULL;
    /* Counted only when the row is new: a resumed job's result is never counted twice. */
    if (rc == 0 && sqlite3_changes(st->db) > 0) {
        int src = dip__usage_result(st->db, id, r, wall_now());
        if (src != SQLITE_OK)
            rc = db_err(st, err, src, "usage");
    }
    if (rc != 0)
        goto out;
    rc = prep(st, "UPDATE items SET state = 'done', error = NULL WHERE job = ? AND idx = ?", &s,
              err);
    if (rc != 0)
        goto out;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, r->index);
    rc = step_done(st, s, err);
    sqlite3_finalize(s);
    s = NULL;
    if (rc != 0)
        goto out;
    if (cache_key != NULL) {
        rc = prep(st,
                  "INSERT OR REPLACE INTO cache (key, sha, format, width, height, bytes, versions)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?)",
                  &s, err);
        if (rc != 0)
            goto out;
        sqlite3_bind_text(s, 1, cache_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, r->out_sha, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, r->out_format, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 4, r->out_width);
        sqlite3_bind_int(s, 5, r->out_height);
        sqlite3_bind_int64(s, 6, (sqlite3_int64)r->bytes_out);
        sqlite3_bind_text(s, 7, versions, -1, SQLITE_STATIC);
        rc = step_done(st, s, err);
        if (rc != 0)
            goto out;
    }
    rc = exec_sql(st, "COMMIT", err);
    if (rc == 0)
        began = 0;
out:
    sqlite3_finalize(s);
    if (began)
        (void)exec_sql(st, "ROLLBACK", NULL);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int dip_store_cache_get(dip_store *st, const char *cache_key, struct dip_store_item *out,
                        struct dip_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, src;

    pthread_mutex_lock(&st->lock);
    rc = prep(st, "SELECT sha, format, width, height, bytes, versions FROM cache WHERE key = ?", &s,
              err);
    if (rc != 0)
        goto out;
    sqlite3_bind_text(s, 1, cache_key, -1, SQLITE_STATIC);
    src = sqlite3_step(s);
    if (src == SQLITE_DONE) {
        rc = DIP_ENOTFOUND;
        goto out;
    }
    if (src != SQLITE_ROW) {
        rc = db_err(st, err, src, "cache");
        goto out;
    }
    copy_str(out->out_sha, sizeof(out->out_sha), sqlite3_column_text(s, 0));
    copy_str(out->out_format, sizeof(out->out_format), sqlite3_column_text(s, 1));
    out->out_width = sqlite3_column_int(s, 2);
    out->out_height = sqlite3_column_int(s, 3);
    out->bytes_out = (uint64_t)sqlite3_column_int64(s, 4);
    out->versions = dip_strdup((const char *)sqlite3_column_text(s, 5));
    if (out->versions == NULL) {
        rc = DIP_ENOMEM;
        goto out;
    }
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    /* Outside the lock: with object storage this is a round trip. */
    if (rc == 0 && !dip__blobs_has(st->blobs, out->out_sha, out->bytes_out)) {
        dip_free(out->versions);
        out->versions = NULL;
        rc = DIP_ENOTFOUND;
    }
    return rc;
}

/* ---- Usage (usage.c) ---- */

int dip_store_usage_add(dip_store *st, const char *owner, const struct dip_store_usage *delta,
                        struct dip_err *err)
{
    int rc = 0, src;

    pthread_mutex_lock(&st->lock);
    src = dip__usage_add(st->db, owner, wall_now(), delta);
    if (src != SQLITE_OK)
        rc = db_err(st, err, src, "usage");
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int dip_store_usage_query(dip_store *st, const char *owner, double since, double until,
                          struct dip_store_usage **out, size_t *n, struct dip_err *err)
{
    int rc = 0, src;

    pthread_mutex_lock(&st->lock);
    src = dip__usage_query(st->db, owner, since, until, out, n);
    if (src != SQLITE_OK)
        rc = db_err(st, err, src, "usage");
    pthread_mutex_unlock(&st->lock);
    return rc;
}

/* ---- Tokens ---- */

static int name_ok(const char *name)
{
    size_t i;

    for (i = 0; name[i] != '\0'; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return i > 0 && i < 64;
}

int dip_store_token_create(dip_store *st, const char *name, int admin, char token[80],
                           struct dip_err *err)
{
    static const char digits[] = "0123456789abcdef";
    sqlite3_stmt *s = NULL;
    uint8_t rnd[32];
    char hash[65];
    int rc, src;

    token[0] = '\0';
    if (!name_ok(name))
        return dip_err_set(err, DIP_EINVAL,
                           "token: bad user name '%.64s' (use 1-63 letters, digits, . _ -)", name);
    rc = dip_store_random(rnd, sizeof(rnd), err);
    if (rc != 0)
        return rc;
    memcpy(token, "dip_", 4);
    for (int i = 0; i < 32; i++) {
        token[4 + 2 * i] = digits[rnd[i] >> 4];
        token[5 + 2 * i] = digits[rnd[i] & 15];
    }
    token[68] = '\0';
    dip_sha256_hex(token, strlen(token), hash);
    pthread_mutex_lock(&st->lock);
    rc = prep(st, "INSERT INTO tokens (name, hash, admin, created) VALUES (?, ?, ?, ?)", &s, err);
    if (rc != 0)
        goto out;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, admin ? 1 : 0);
    sqlite3_bind_double(s, 4, wall_now());
    src = sqlite3_step(s);
    if (src == SQLITE_CONSTRAINT)
        rc = dip_err_set(err, DIP_EINVAL, "token: user '%s' exists (revoke it first)", name);
    else if (src != SQLITE_DONE)
        rc = db_err(st, err, src, "token");
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    if (rc != 0)
        token[0] = '\0';
    return rc;
}

int dip_store_token_list(dip_store *st,
                         void (*fn)(void *ud, const char *name, int admin, double created),
                         void *ud, struct dip_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, src;

    pthread_mutex_lock(&st->lock);
    rc = prep(st, "SELECT name, admin, created FROM tokens ORDER BY name", &s, err);
    if (rc != 0)
        goto out;
    while ((src = sqlite3_step(s)) == SQLITE_ROW)
        fn(ud, (const char *)sqlite3_column_text(s, 0), sqlite3_column_int(s, 1),
           sqlite3_column_double(s, 2));
    if (src != SQLITE_DONE)
        rc = db_err(st, err, src, "tokens");
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int dip_store_token_revoke(dip_store *st, const char *name, struct dip_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc;

    pthread_mutex_lock(&st->lock);
    rc = prep(st, "DELETE FROM tokens WHERE name = ?", &s, err);
    if (rc != 0)
        goto out;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    rc = step_done(st, s, err);
    if (rc == 0 && sqlite3_changes(st->db) == 0)
        rc = dip_err_set(err, DIP_ENOTFOUND, "token: no user '%.64s'", name);
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int dip_store_token_check(dip_store *st, const char *token, char name[64], int *admin,
                          struct dip_err *err)
{
    sqlite3_stmt *s = NULL;
    char hash[65];
    int rc, src;

    name[0] = '\0';
    *admin = 0;
    dip_sha256_hex(token, strlen(token), hash);
    pthread_mutex_lock(&st->lock);
    rc = prep(st, "SELECT name, admin FROM tokens WHERE hash = ?", &s, err);
    if (rc != 0)
        goto out;
    sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
    src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        copy_str(name, 64, sqlite3_column_text(s, 0));
        *admin = sqlite3_column_int(s, 1);
    } else if (src == SQLITE_DONE) {
        rc = dip_err_set(err, DIP_EAUTH, "invalid token");
    } else {
        rc = db_err(st, err, src, "token");
    }
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int dip_store_token_count(dip_store *st, uint64_t *n, struct dip_err *err)
{
    return count_query(st, "SELECT COUNT(*) FROM tokens", NULL, n, err);
}

/* ---- Backup ---- */

int dip_store_backup(dip_store *st, const char *path, struct dip_err *err)
{
    sqlite3 *dst = NULL;
    sqlite3_backup *b = NULL;
    int rc = 0, src;

    src = sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (src != SQLITE_OK) {
        rc = dip_err_set(err, DIP_EIO, "backup: cannot open %s: %s", path,
                         dst ? sqlite3_errmsg(dst) : sqlite3_errstr(src));
        goto out;
    }
    /* The copy runs in steps; the lock is held only per step so the server keeps serving. */
    pthread_mutex_lock(&st->lock);
    b = sqlite3_backup_init(dst, "main", st->db, "main");
    pthread_mutex_unlock(&st->lock);
    if (b == NULL) {
        rc = dip_err_set(err, DIP_EIO, "backup: %s", sqlite3_errmsg(dst));
        goto out;
    }
    do {
        pthread_mutex_lock(&st->lock);
        src = sqlite3_backup_step(b, 256);
        pthread_mutex_unlock(&st->lock);
        if (src == SQLITE_BUSY || src == SQLITE_LOCKED)
            usleep(10000);
    } while (src == SQLITE_OK || src == SQLITE_BUSY || src == SQLITE_LOCKED);
    if (src != SQLITE_DONE)
        rc = dip_err_set(err, DIP_EIO, "backup: %s", sqlite3_errstr(src));
out:
    if (b != NULL) {
        pthread_mutex_lock(&st->lock);
        src = sqlite3_backup_finish(b);
        pthread_mutex_unlock(&st->lock);
        if (rc == 0 && src != SQLITE_OK)
            rc = dip_err_set(err, DIP_EIO, "backup: %s", sqlite3_errstr(src));
    }
    sqlite3_close(dst);
    return rc;
}

const char *dip_store_version(void)
{
    static char buf[48];

    if (buf[0] == '\0')
        snprintf(buf, sizeof(buf), "SQLite %s", sqlite3_libversion());
    return buf;
}

/* ---- Retention: deleting jobs and the blobs nothing uses any more ---- */

/* 1 when a row still refers to blob `sha`; called with st->lock held. */
static int blob_used(dip_store *st, const char *sha)
{
    sqlite3_stmt *s = NULL;
    int used = 1; /* on any doubt, keep the file */

    if (prep(st,
             "SELECT 1 FROM items WHERE sha = ?1 UNION ALL SELECT 1 FROM results WHERE sha = ?1"
             " UNION ALL SELECT 1 FROM cache WHERE sha = ?1 LIMIT 1",
             &s, NULL) != 0)
        return 1;
    sqlite3_bind_text(s, 1, sha, -1, SQLITE_STATIC);
    switch (sqlite3_step(s)) {
    case SQLITE_ROW:
        used = 1;
        break;
    case SQLITE_DONE:
        used = 0;
        break;
    default:
        used = 1;
    }
    sqlite3_finalize(s);
    return used;
}

/* Deletes blob `sha` (file or object) unless a row refers to it; adds its size to *bytes when it
 * goes. Called with st->lock held, so no row can start referring to it meanwhile through this
 * store. */
static int blob_drop_unused(dip_store *st, const char *sha, uint64_t *bytes)
{
    if (!dip__sha_ok(sha) || blob_used(st, sha))
        return 0;
    return dip__blobs_delete(st->blobs, sha, bytes);
}

int dip_store_job_delete(dip_store *st, const char *id, int free_blobs, uint64_t *files,
                         uint64_t *bytes, struct dip_err *err)
{
    static const char *const del[] = {
        "DELETE FROM cache WHERE sha IN (SELECT sha FROM results WHERE job = ?1)"
        " AND sha NOT IN (SELECT sha FROM results WHERE job != ?1)",
        "DELETE FROM results WHERE job = ?1",
        "DELETE FROM items WHERE job = ?1",
        "DELETE FROM job_names WHERE job = ?1",
        "DELETE FROM jobs WHERE id = ?1",
    };
    sqlite3_stmt *s = NULL;
    char(*shas)[65] = NULL;
    size_t n = 0, cap = 0;
    int rc, src, began = 0;

    if (files)
        *files = 0;
    if (bytes)
        *bytes = 0;
    pthread_mutex_lock(&st->lock);
    rc = exec_sql(st, "BEGIN IMMEDIATE", err);
    if (rc != 0)
        goto out;
    began = 1;
    /* The blobs it refers to, to look at once its rows are gone. */
    rc = prep(st,
              "SELECT sha FROM items WHERE job = ?1 UNION SELECT sha FROM results WHERE job = ?1",
              &s, err);
    if (rc != 0)
        goto out;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char(*g)[65] = dip_realloc(shas, nc * sizeof(*shas));
            if (g == NULL) {
                rc = DIP_ENOMEM;
                goto out;
            }
            shas = g;
            cap = nc;
        }
        copy_str(shas[n++], 65, sqlite3_column_text(s, 0));
    }
    if (src != SQLITE_DONE) {
        rc = db_err(st, err, src, "job blobs");
        goto out;
    }
    sqlite3_finalize(s);
    s = NULL;
    src = dip__usage_job_deleted(st->db, id, wall_now());
    if (src != SQLITE_OK)
        rc = db_err(st, err, src, "usage");
    for (size_t i = 0; rc == 0 && i < sizeof(del) / sizeof(del[0]); i++) {
        rc = prep(st, del[i], &s, err);
        if (rc != 0)
            break;
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        rc = step_done(st, s, err);
        sqlite3_finalize(s);
        s = NULL;
    }
    if (rc == 0 && sqlite3_changes(st->db) == 0)
        rc = dip_err_set(err, DIP_ENOTFOUND, "no job %s", id);
    if (rc == 0)
        rc = exec_sql(st, "COMMIT", err);
    if (rc == 0)
        began = 0;
    for (size_t i = 0; rc == 0 && free_blobs && i < n; i++) {
        int gone = blob_drop_unused(st, shas[i], bytes);
        if (files)
            *files += (uint64_t)gone;
    }
out:
    sqlite3_finalize(s);
    if (began)
        (void)exec_sql(st, "ROLLBACK", NULL);
    pthread_mutex_unlock(&st->lock);
    dip_free(shas);
    return rc;
}

int dip_store_jobs_before(dip_store *st, const char *owner, double before,
                          char (*ids)[DIP_STORE_ID_LEN], size_t max, size_t *n, struct dip_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, src = SQLITE_DONE;

    *n = 0;
    pthread_mutex_lock(&st->lock);
    if (owner != NULL)
        rc = prep(st, "SELECT id FROM jobs WHERE owner = ?2 LIMIT ?3", &s, err);
    else
        rc = prep(st,
                  "SELECT id FROM jobs WHERE state IN ('done', 'failed', 'cancelled')"
                  " AND finished > 0 AND finished < ?1 ORDER BY finished LIMIT ?3",
                  &s, err);
    if (rc != 0)
        goto out;
    sqlite3_bind_double(s, 1, before);
    sqlite3_bind_text(s, 2, owner ? owner : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)max);
    while (*n < max && (src = sqlite3_step(s)) == SQLITE_ROW)
        copy_str(ids[(*n)++], DIP_STORE_ID_LEN, sqlite3_column_text(s, 0));
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        rc = db_err(st, err, src, "jobs to delete");
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

struct collect {
    dip_store *st;
    double older_than;
    uint64_t *files, *bytes, *kept_files, *kept_bytes;
};

static int collect_one(void *ud, const char *sha, uint64_t size, double mtime)
{
    struct collect *c = ud;

    pthread_mutex_lock(&c->st->lock);
    /* A young blob may belong to an upload whose job is not recorded yet. */
    if (mtime < c->older_than && blob_drop_unused(c->st, sha, c->bytes)) {
        (*c->files)++;
    } else {
        (*c->kept_files)++;
        *c->kept_bytes += size;
    }
    pthread_mutex_unlock(&c->st->lock);
    return 0;
}

int dip_store_blob_collect(dip_store *st, double older_than, uint64_t *files, uint64_t *bytes,
                           uint64_t *kept_files, uint64_t *kept_bytes)
{
    struct collect c = {st, older_than, files, bytes, kept_files, kept_bytes};

    *files = *bytes = *kept_files = *kept_bytes = 0;
    /* The local folder is walked; object storage is listed under its prefix (LastModified is
     * the age). A listing that fails leaves everything in place until the next round. */
    return dip__blobs_list(st->blobs, collect_one, &c, NULL) == 0 ? 0 : -1;
}
