/* SPDX-License-Identifier: MIT */
/* The service's lifetime and its small shared pieces: the job state table, options, opening the
 * store under the data folder's lock, change notification (the version counter that event
 * streams wait on), jobs seen through their owner, unique result names, and counters. Intake is
 * in submit.c, the runner in runner.c, JSON in json.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "dip/codec.h"
#include "service/internal.h"

/* ---- Job states ---- */

static const struct {
    const char *name;
    int final;
} states[DIP_JOB_NSTATES] = {
#define DIP__STATE_ROW(e, name, final) {name, final},
    DIP_JOB_STATE_MAP(DIP__STATE_ROW)
#undef DIP__STATE_ROW
};

const char *dip_job_state_name(enum dip_job_state st)
{
    return (unsigned)st < DIP_JOB_NSTATES ? states[st].name : "unknown";
}

enum dip_job_state dip_job_state_parse(const char *name)
{
    for (int i = 0; name != NULL && i < DIP_JOB_NSTATES; i++)
        if (strcmp(states[i].name, name) == 0)
            return (enum dip_job_state)i;
    return DIP_JOB_NSTATES;
}

int dip_job_state_final(const char *name)
{
    enum dip_job_state st = dip_job_state_parse(name);

    return st != DIP_JOB_NSTATES && states[st].final;
}

int dip_job_state_is(const char *name, enum dip_job_state st)
{
    return dip_job_state_parse(name) == st;
}

/* ---- Options and lifetime ---- */

void dip_service_opts_default(struct dip_service_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->data_dir = "./var";
    dip_limits_default(&o->limits);
    o->max_images_per_job = 1000;
    o->max_active_per_user = 100;
    o->max_queue = 10000;
    o->keep_s = 7 * 86400.0;
    o->log_level = 1;
    o->shutdown_grace_s = 20.0;
    o->ready_min_free = 256ull << 20;
}

void dip__log(dip_service *svc, const char *fmt, ...)
{
    va_list ap;

    if (svc->o.quiet)
        return;
    va_start(ap, fmt);
    fputs("dip serve: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int dip_service_new(const struct dip_service_opts *o, dip_service **out, struct dip_err *err)
{
    dip_service *svc;
    char lock[4200];
    int rc = 0;

    *out = NULL;
    if (o->max_images_per_job <= 0 || o->max_active_per_user <= 0 || o->max_queue <= 0)
        return dip_err_set(err, DIP_EINVAL, "serve: limits must be positive");
    svc = dip_calloc(1, sizeof(*svc));
    if (svc == NULL)
        return DIP_ENOMEM;
    pthread_mutex_init(&svc->lock, NULL);
    pthread_cond_init(&svc->cond, NULL);
    pthread_rwlock_init(&svc->blobs, NULL);
    svc->lock_fd = -1;
    svc->o = *o;
    svc->data_dir = dip_strdup(o->data_dir ? o->data_dir : "./var");
    if (svc->data_dir == NULL) {
        rc = DIP_ENOMEM;
        goto out;
    }
    svc->o.data_dir = svc->data_dir;
    {
        struct dip_store_blob_opts bo = {
            .url = o->blobs, .encrypt_key = o->encrypt_key, .s3 = o->s3};
        rc = dip_store_open_blobs(svc->data_dir, &bo, &svc->store, err);
    }
    if (rc != 0)
        goto out;
    /* One service per data folder: two runners would compute the same jobs twice. */
    snprintf(lock, sizeof(lock), "%s/serve.lock", svc->data_dir);
    svc->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (svc->lock_fd < 0 || flock(svc->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = dip_err_set(err, DIP_EBUSY,
                         "serve: another dip serve is using %s (%s); stop it or use another "
                         "--data folder",
                         svc->data_dir, svc->lock_fd < 0 ? strerror(errno) : "locked");
        goto out;
    }
    dip_store_sweep(svc->store);
    rc = dip_store_recover(svc->store, err);
    if (rc != 0)
        goto out;
    /* Nothing is being uploaded yet: every blob no row refers to is an interrupted upload's or a
     * deleted job's, and goes now. Then the jobs past --keep. */
    dip_service_retention(svc, -1);
    if (o->executor != NULL) {
        svc->ex = o->executor;
    } else {
        rc = dip_executor_local_new(o->threads, &svc->ex);
        if (rc != 0) {
            dip_err_set(err, rc, "serve: cannot start the local executor");
            goto out;
        }
        svc->own_ex = 1;
    }
    {
        /* Items per executor call: enough to keep every worker busy, few enough that users
         * take turns often. */
        struct dip_worker_stat ws[1];
        size_t nw = dip_executor_workers(svc->ex, ws, 1);
        int threads = o->threads > 0 ? o->threads : dip_cpu_count();
        int slots = (int)DIP_MAX(nw, (size_t)threads);
        svc->batch = DIP_MAX(4, 2 * slots);
    }
    *out = svc;
    svc = NULL;
out:
    dip_service_free(svc);
    return rc;
}

void dip_service_stop(dip_service *svc)
{
    pthread_mutex_lock(&svc->lock);
    svc->stopping = 1;
    svc->cancel = 1;
    dip__service_bump(svc);
    pthread_mutex_unlock(&svc->lock);
    dip__service_notify(svc);
}

void dip_service_free(dip_service *svc)
{
    if (svc == NULL)
        return;
    if (svc->own_ex)
        dip_executor_free(svc->ex);
    dip_store_close(svc->store);
    if (svc->lock_fd >= 0)
        close(svc->lock_fd); /* releases the lock */
    pthread_cond_destroy(&svc->cond);
    pthread_mutex_destroy(&svc->lock);
    pthread_rwlock_destroy(&svc->blobs);
    dip_free(svc->data_dir);
    dip_free(svc);
}

dip_store *dip_service_store(dip_service *svc)
{
    return svc->store;
}

dip_executor *dip_service_executor(dip_service *svc)
{
    return svc->ex;
}

const struct dip_service_opts *dip_service_options(const dip_service *svc)
{
    return &svc->o;
}

/* ---- Changes ---- */

void dip__service_bump(dip_service *svc)
{
    svc->version++;
    pthread_cond_broadcast(&svc->cond);
}

void dip__service_notify(dip_service *svc)
{
    void (*fn)(void *);
    void *ud;

    pthread_mutex_lock(&svc->lock);
    fn = svc->on_change;
    ud = svc->on_change_ud;
    pthread_mutex_unlock(&svc->lock);
    if (fn != NULL)
        fn(ud);
}

void dip_service_on_change(dip_service *svc, void (*fn)(void *ud), void *ud)
{
    pthread_mutex_lock(&svc->lock);
    svc->on_change = fn;
    svc->on_change_ud = ud;
    pthread_mutex_unlock(&svc->lock);
}

uint64_t dip_service_version(dip_service *svc)
{
    uint64_t v;

    pthread_mutex_lock(&svc->lock);
    v = svc->version;
    pthread_mutex_unlock(&svc->lock);
    return v;
}

int dip_service_stopping(dip_service *svc)
{
    int s;

    pthread_mutex_lock(&svc->lock);
    s = svc->stopping;
    pthread_mutex_unlock(&svc->lock);
    return s;
}

int dip_service_draining(dip_service *svc)
{
    int d;

    pthread_mutex_lock(&svc->lock);
    d = svc->stopping || svc->drain_until > 0 || (svc->stop_flag != NULL && *svc->stop_flag);
    pthread_mutex_unlock(&svc->lock);
    return d;
}

int dip_service_ready(dip_service *svc, char *why, size_t why_len)
{
    struct dip_worker_stat ws[64];
    struct statvfs vfs;
    uint64_t ntok = 0, avail;
    size_t n, alive = 0;

    if (dip_service_draining(svc)) {
        snprintf(why, why_len, "shutting down");
        return 1;
    }
    if (dip_store_token_count(svc->store, &ntok, NULL) != 0) {
        snprintf(why, why_len, "the job store does not answer");
        return 1;
    }
    n = dip_executor_workers(svc->ex, ws, DIP_COUNTOF(ws));
    for (size_t i = 0; i < DIP_MIN(n, DIP_COUNTOF(ws)); i++)
        alive += ws[i].alive != 0;
    if (n > 0 && alive == 0) {
        snprintf(why, why_len, "no executor worker is alive");
        return 1;
    }
    if (statvfs(svc->data_dir, &vfs) != 0) {
        snprintf(why, why_len, "cannot read the data disk's free space: %s", strerror(errno));
        return 1;
    }
    avail = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
    if (avail < svc->o.ready_min_free) {
        snprintf(why, why_len, "data disk has %llu bytes free, under the floor of %llu",
                 (unsigned long long)avail, (unsigned long long)svc->o.ready_min_free);
        return 1;
    }
    return 0;
}

uint64_t dip_service_wait(dip_service *svc, uint64_t seen, double timeout_s)
{
    double end = dip__now() + timeout_s;
    uint64_t v;

    pthread_mutex_lock(&svc->lock);
    while (svc->version == seen && !svc->stopping && dip__now() < end) {
        struct timespec ts;
        double left = end - dip__now();
        clock_gettime(CLOCK_REALTIME, &ts);
        left = DIP_MIN(left, 1.0);
        ts.tv_nsec += (long)(left * 1e9);
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&svc->cond, &svc->lock, &ts);
    }
    v = svc->version;
    pthread_mutex_unlock(&svc->lock);
    return v;
}

void dip__runner_wake(dip_service *svc)
{
    pthread_mutex_lock(&svc->lock);
    svc->wake++;
    pthread_cond_broadcast(&svc->cond);
    pthread_mutex_unlock(&svc->lock);
}

/* ---- Jobs through their owner ---- */

int dip_service_job_get(dip_service *svc, const char *id, const char *user, int admin, int items,
                        struct dip_store_job **out, struct dip_err *err)
{
    int rc;

    *out = NULL;
    rc = dip_store_job_get(svc->store, id, items, out, err);
    if (rc == 0 && !admin && strcmp((*out)->owner, user) != 0) {
        dip_store_job_free(*out);
        *out = NULL;
        rc = DIP_ENOTFOUND;
    }
    if (rc == DIP_ENOTFOUND)
        dip_err_set(err, DIP_ENOTFOUND, "no job %.64s", id);
    return rc;
}

int dip_service_cancel(dip_service *svc, const char *id, const char *user, int admin,
                       struct dip_err *err)
{
    struct dip_store_job *job = NULL;
    const char *cancelled = dip_job_state_name(DIP_JOB_CANCELLED);
    int rc;

    rc = dip_service_job_get(svc, id, user, admin, 0, &job, err);
    if (rc != 0)
        return rc;
    if (!dip_job_state_final(job->state)) {
        dip_store_job_set_state(svc->store, job->id, cancelled, 0, NULL);
        dip_store_items_finish(svc->store, job->id, cancelled, NULL, NULL);
        pthread_mutex_lock(&svc->lock);
        if (strcmp(svc->running_id, job->id) == 0)
            svc->cancel = 1;    /* stops the batch in flight between tiles */
        dip__service_bump(svc); /* the runner drops it at its next batch */
        svc->wake++;
        pthread_mutex_unlock(&svc->lock);
        dip__service_notify(svc);
    }
    dip_store_job_free(job);
    return 0;
}

int dip_service_delete(dip_service *svc, const char *id, const char *user, int admin,
                       uint64_t *freed, struct dip_err *err)
{
    struct dip_store_job *job = NULL;
    uint64_t files = 0, bytes = 0;
    int rc;

    if (freed)
        *freed = 0;
    rc = dip_service_job_get(svc, id, user, admin, 0, &job, err);
    if (rc != 0)
        return rc;
    if (!dip_job_state_final(job->state)) {
        dip_store_job_free(job);
        return dip_err_set(err, DIP_EBUSY, "job %s is %s: cancel it first", id, job->state);
    }
    dip_store_job_free(job);
    pthread_rwlock_wrlock(&svc->blobs);
    rc = dip_store_job_delete(svc->store, id, 1, &files, &bytes, err);
    pthread_rwlock_unlock(&svc->blobs);
    if (rc == 0) {
        pthread_mutex_lock(&svc->lock);
        svc->m_deleted_jobs++;
        svc->m_freed_bytes += bytes;
        if (svc->disk_bytes >= bytes && svc->disk_files >= files) {
            svc->disk_bytes -= bytes;
            svc->disk_files -= files;
        }
        dip__service_bump(svc);
        pthread_mutex_unlock(&svc->lock);
        dip__service_notify(svc);
        dip__log(svc, "job %s: deleted (%llu blob(s), %llu bytes freed)", id,
                 (unsigned long long)files, (unsigned long long)bytes);
        if (freed)
            *freed = bytes;
    }
    return rc;
}

void dip_service_retention(dip_service *svc, double grace_s)
{
    char(*ids)[DIP_STORE_ID_LEN] = NULL;
    uint64_t files = 0, bytes = 0, kept_files = 0, kept_bytes = 0, deleted = 0, freed = 0;
    struct timespec ts;
    double now; /* wall clock, as the store's times and file times are */
    size_t n = 0;

    clock_gettime(CLOCK_REALTIME, &ts);
    now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    if (svc->o.keep_s > 0 && (ids = dip_calloc(256, sizeof(*ids))) != NULL) {
        do {
            n = 0;
            if (dip_store_jobs_before(svc->store, NULL, now - svc->o.keep_s, ids, 256, &n, NULL) !=
                0)
                break;
            for (size_t i = 0; i < n; i++) {
                uint64_t f = 0, b = 0;
                pthread_rwlock_wrlock(&svc->blobs);
                if (dip_store_job_delete(svc->store, ids[i], 1, &f, &b, NULL) == 0) {
                    deleted++;
                    freed += b;
                }
                pthread_rwlock_unlock(&svc->blobs);
            }
        } while (n == 256);
        dip_free(ids);
    }
    /* Uploads wait while the folder is walked: one of them could otherwise start referring to an
     * old unreferenced blob (an identical image) just before it goes. */
    pthread_rwlock_wrlock(&svc->blobs);
    dip_store_blob_collect(svc->store, grace_s < 0 ? now + 1 : now - grace_s, &files, &bytes,
                           &kept_files, &kept_bytes);
    pthread_rwlock_unlock(&svc->blobs);
    pthread_mutex_lock(&svc->lock);
    svc->m_deleted_jobs += deleted;
    svc->m_freed_bytes += freed + bytes;
    svc->disk_files = kept_files;
    svc->disk_bytes = kept_bytes;
    svc->last_retention = dip__now();
    if (deleted > 0)
        dip__service_bump(svc);
    pthread_mutex_unlock(&svc->lock);
    if (deleted > 0 || files > 0)
        dip__log(svc, "retention: %llu job(s) deleted, %llu unused blob(s) (%llu bytes) freed",
                 (unsigned long long)deleted, (unsigned long long)files,
                 (unsigned long long)(freed + bytes));
}

/* ---- Result names ---- */

/* The extension item i's result will have: its output format once done, else the job's. */
static const char *result_ext(const struct dip_store_job *job, size_t i)
{
    const struct dip_store_item *it = &job->items[i];
    dip_format f = dip_format_from_name(it->out_format[0] ? it->out_format : job->format);

    if (f != DIP_FORMAT_UNKNOWN)
        return dip_format_ext(f);
    {
        /* Same as the input: the extension the client gave, when it names a format. */
        const char *dot = strrchr(it->name, '.');
        f = dot ? dip_format_from_name(dot + 1) : DIP_FORMAT_UNKNOWN;
        return f != DIP_FORMAT_UNKNOWN ? dip_format_ext(f) : "bin";
    }
}

static void candidate(const struct dip_store_job *job, size_t i, int attempt, char *out, size_t len)
{
    char stem[256];
    char *dot;

    snprintf(stem, sizeof(stem), "%s", job->items[i].name);
    dot = strrchr(stem, '.');
    if (dot != NULL && dot != stem)
        *dot = '\0';
    if (attempt == 0)
        snprintf(out, len, "%s.%s", stem, result_ext(job, i));
    else if (attempt == 1)
        snprintf(out, len, "%s-%d.%s", stem, job->items[i].index, result_ext(job, i));
    else
        snprintf(out, len, "%s-%d-%d.%s", stem, job->items[i].index, attempt, result_ext(job, i));
}

char (*dip__result_names(const struct dip_store_job *job))[300]
{
    char(*names)[300] = dip_calloc(job->n_items + 1, sizeof(*names));

    if (names == NULL)
        return NULL;
    /* Item i takes the first candidate no earlier item took: names are unique in the job and in
     * its zip, and an item's name depends only on the items before it. */
    for (size_t i = 0; i < job->n_items; i++) {
        for (int attempt = 0;; attempt++) {
            int taken = 0;
            candidate(job, i, attempt, names[i], sizeof(names[i]));
            for (size_t k = 0; k < i && !taken; k++)
                taken = strcmp(names[k], names[i]) == 0;
            if (!taken)
                break;
        }
    }
    return names;
}

void dip_service_result_name(const struct dip_store_job *job, size_t i, char *out, size_t len)
{
    char(*names)[300] = dip__result_names(job);

    if (names == NULL || i >= job->n_items)
        candidate(job, i < job->n_items ? i : 0, 1, out, len);
    else
        snprintf(out, len, "%s", names[i]);
    dip_free(names);
}

/* ---- Parsing and counters ---- */

int dip__parse_quality(const char *q, int *out)
{
    char *end;
    long v;

    *out = 90;
    if (q == NULL || q[0] == '\0')
        return 0;
    errno = 0;
    v = strtol(q, &end, 10);
    if (errno != 0 || *end != '\0' || v < 1 || v > 100)
        return -1;
    *out = (int)v;
    return 0;
}

int dip__parse_format(const char *f, dip_format *out)
{
    *out = DIP_FORMAT_UNKNOWN;
    if (f == NULL || f[0] == '\0')
        return 0;
    *out = dip_format_from_name(f);
    if (*out == DIP_FORMAT_UNKNOWN || !dip_format_can_encode(*out) || strchr(f, '.') != NULL)
        return -1;
    return 0;
}

void dip_service_count_in(dip_service *svc, uint64_t bytes)
{
    pthread_mutex_lock(&svc->lock);
    svc->m_bytes_in += bytes;
    pthread_mutex_unlock(&svc->lock);
}

void dip_service_count_request(dip_service *svc)
{
    pthread_mutex_lock(&svc->lock);
    svc->m_requests++;
    pthread_mutex_unlock(&svc->lock);
}
