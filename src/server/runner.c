/* SPDX-License-Identifier: MIT */
/* The job runner: one thread that takes the oldest queued job from the store and feeds it to the
 * executor, so no job ever runs inside an HTTP handler thread. Each item's result is stored as a
 * blob and committed with one transaction keyed by (job, item), so a job resumed after a crash
 * skips what is done and never records a result twice. Items whose (input, pipeline with op
 * versions, output options) were computed before are served from the result cache. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "dip/image.h"
#include "server/internal.h"

const double dip__lat_bounds[DIP__LAT_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                  0.5,   1,    2.5,   5,    10,  30};

void dip__metrics_latency(dip_server *s, double seconds)
{
    int b = 0;

    while (b < DIP__LAT_BUCKETS && seconds > dip__lat_bounds[b])
        b++;
    pthread_mutex_lock(&s->lock);
    s->lat_count[b]++;
    s->lat_sum += seconds;
    s->lat_n++;
    pthread_mutex_unlock(&s->lock);
}

void dip__cache_key(const char *in_sha, const char *canon, const char *format, int quality,
                    char key[65])
{
    struct dip_sha256 h;
    uint8_t d[32];
    char q[16];
    static const char digits[] = "0123456789abcdef";

    snprintf(q, sizeof(q), "%d", quality);
    dip_sha256_init(&h);
    dip_sha256_update(&h, in_sha, strlen(in_sha));
    dip_sha256_update(&h, "\n", 1);
    dip_sha256_update(&h, canon, strlen(canon));
    dip_sha256_update(&h, "\n", 1);
    dip_sha256_update(&h, format, strlen(format));
    dip_sha256_update(&h, "\n", 1);
    dip_sha256_update(&h, q, strlen(q));
    dip_sha256_final(&h, d);
    for (int i = 0; i < 32; i++) {
        key[2 * i] = digits[d[i] >> 4];
        key[2 * i + 1] = digits[d[i] & 15];
    }
    key[64] = '\0';
}

static void log_line(dip_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(dip_server *s, const char *fmt, ...)
{
    va_list ap;

    if (s->o.quiet)
        return;
    va_start(ap, fmt);
    fputs("dip serve: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void bump(dip_server *s)
{
    s->version++;
    pthread_cond_broadcast(&s->cond);
}

static int check_stop(dip_server *s);

/* ---- One job ---- */

struct run {
    dip_server *s;
    struct dip_store_job *job;
    size_t *map; /* executor index -> job item index */
    size_t n;
    uint8_t **bufs; /* loaded inputs, per executor index */
};

static int io_load(void *ud, size_t i, const uint8_t **data, size_t *len, struct dip_err *err)
{
    struct run *r = ud;
    const struct dip_store_item *it = &r->job->items[r->map[i]];
    uint8_t *buf = NULL;
    int rc;

    rc = dip_store_blob_get(r->s->store, it->sha, r->s->o.limits.max_input_bytes, &buf, len, err);
    if (rc == 0) {
        r->bufs[i] = buf;
        *data = buf;
    }
    return rc;
}

static void io_release(void *ud, size_t i)
{
    struct run *r = ud;

    dip_free(r->bufs[i]);
    r->bufs[i] = NULL;
}

static const char *io_name(void *ud, size_t i)
{
    struct run *r = ud;

    return r->job->items[r->map[i]].name;
}

static void io_result(void *ud, const struct dip_item_result *res)
{
    struct run *r = ud;
    dip_server *s = r->s;
    struct dip_store_item *it;
    struct dip_err err = {0};
    int rc, stopping, cancelled;

    if (res->index >= r->n)
        return;
    (void)check_stop(s);
    it = &r->job->items[r->map[res->index]];
    pthread_mutex_lock(&s->lock);
    stopping = s->stopping;
    cancelled = s->cancel;
    pthread_mutex_unlock(&s->lock);
    if (res->rc == 0) {
        struct dip_store_item out = {0};
        char key[65];

        rc = dip_store_blob_put(s->store, res->data, res->len, out.out_sha, &err);
        if (rc == 0) {
            out.index = it->index;
            snprintf(out.out_format, sizeof(out.out_format), "%s", dip_format_name(res->format));
            out.out_width = res->width;
            out.out_height = res->height;
            out.bytes_out = res->len;
            out.versions = r->job->canon;
            dip__cache_key(it->sha, r->job->canon, r->job->format, r->job->quality, key);
            rc = dip_store_result_put(s->store, r->job->id, &out, key, &err);
        }
        if (rc != 0) {
            log_line(s, "job %s item %d: cannot store the result: %s", r->job->id, it->index,
                     dip_err_text(&err, rc));
            if (!stopping)
                dip_store_item_set_state(s->store, r->job->id, it->index, "failed",
                                         dip_err_text(&err, rc), NULL);
        }
        pthread_mutex_lock(&s->lock);
        if (rc == 0) {
            s->m_items_done++;
            s->m_bytes_out += res->len;
        } else {
            s->m_items_failed++;
        }
        s->m_tasks++;
        pthread_mutex_unlock(&s->lock);
        dip__metrics_latency(s, res->seconds);
    } else if (res->rc == DIP_ECANCELED && (stopping || cancelled)) {
        /* Shutdown: leave the item for the restart. Cancel: the DELETE handler marked it. */
        if (!stopping)
            dip_store_item_set_state(s->store, r->job->id, it->index, "cancelled", NULL, NULL);
    } else {
        const char *msg = res->error && res->error[0] ? res->error : dip_strerror(res->rc);
        dip_store_item_set_state(s->store, r->job->id, it->index, "failed", msg, NULL);
        pthread_mutex_lock(&s->lock);
        s->m_items_failed++;
        s->m_tasks++;
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_lock(&s->lock);
    bump(s);
    pthread_mutex_unlock(&s->lock);
}

static void io_progress(void *ud, const struct dip_progress *p)
{
    struct run *r = ud;

    (void)check_stop(r->s);

    pthread_mutex_lock(&r->s->lock);
    r->s->live = *p;
    bump(r->s);
    pthread_mutex_unlock(&r->s->lock);
}

/* Serves what the cache has; returns the number of items still to compute, listed in r->map. */
static int plan_items(struct run *r)
{
    dip_server *s = r->s;
    struct dip_store_job *job = r->job;
    uint64_t base_pixels = 0, base_tasks = 0;

    r->n = 0;
    for (size_t i = 0; i < job->n_items; i++) {
        struct dip_store_item *it = &job->items[i];
        struct dip_store_item hit = {0};
        char key[65];

        if (strcmp(it->state, "queued") != 0 && strcmp(it->state, "running") != 0) {
            base_tasks++;
            base_pixels += (uint64_t)it->width * (uint64_t)it->height;
            continue;
        }
        dip__cache_key(it->sha, job->canon, job->format, job->quality, key);
        if (dip_store_cache_get(s->store, key, &hit, NULL) == 0) {
            hit.index = it->index;
            hit.cached = 1;
            if (dip_store_result_put(s->store, job->id, &hit, NULL, NULL) == 0) {
                pthread_mutex_lock(&s->lock);
                s->m_cache_hits++;
                s->m_items_done++;
                s->m_bytes_out += hit.bytes_out;
                pthread_mutex_unlock(&s->lock);
                base_tasks++;
                base_pixels += (uint64_t)it->width * (uint64_t)it->height;
                dip_free(hit.versions);
                continue;
            }
            dip_free(hit.versions);
        }
        r->map[r->n++] = i;
    }
    pthread_mutex_lock(&s->lock);
    s->base_tasks = base_tasks;
    s->base_pixels = base_pixels;
    pthread_mutex_unlock(&s->lock);
    return (int)r->n;
}

static void run_job(dip_server *s, const char *id, char last_owner[64])
{
    struct run r = {0};
    struct dip_job_spec spec;
    struct dip_job_io io = {0};
    struct dip_err err = {0};
    int rc, stopping, cancelled;

    r.s = s;
    rc = dip_store_job_get(s->store, id, 1, &r.job, &err);
    if (rc != 0) {
        log_line(s, "job %s: cannot read: %s", id, dip_err_text(&err, rc));
        /* Leave it queued unless it is gone; avoid a hot loop on a broken row. */
        if (rc != DIP_ENOTFOUND)
            dip_store_job_set_state(s->store, id, "failed", 0, NULL);
        goto out;
    }
    snprintf(last_owner, 64, "%s", r.job->owner);
    r.map = dip_calloc(r.job->n_items + 1, sizeof(*r.map));
    r.bufs = dip_calloc(r.job->n_items + 1, sizeof(*r.bufs));
    if (r.map == NULL || r.bufs == NULL) {
        log_line(s, "job %s: out of memory", id);
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    snprintf(s->running_id, sizeof(s->running_id), "%s", id);
    s->cancel = 0;
    memset(&s->live, 0, sizeof(s->live));
    s->run_started = dip__now();
    bump(s);
    pthread_mutex_unlock(&s->lock);
    dip_store_job_start(s->store, id, NULL);
    log_line(s, "job %s: %zu item(s), pipeline '%s'", id, r.job->n_items, r.job->pipeline);

    if (plan_items(&r) > 0) {
        dip_job_spec_default(&spec);
        spec.pipeline = r.job->pipeline;
        spec.encode.format = dip_format_from_name(r.job->format);
        spec.encode.quality = r.job->quality;
        spec.limits = s->o.limits;
        spec.threads = s->o.threads;
        io.n_items = r.n;
        io.load = io_load;
        io.release = io_release;
        io.name = io_name;
        io.result = io_result;
        io.progress = io_progress;
        io.ud = &r;
        io.cancel = &s->cancel;
        rc = dip_executor_run(s->ex, &spec, &io, &err);
        if (rc != 0) {
            log_line(s, "job %s: %s", id, dip_err_text(&err, rc));
            pthread_mutex_lock(&s->lock);
            stopping = s->stopping;
            pthread_mutex_unlock(&s->lock);
            if (!stopping)
                dip_store_items_finish(s->store, id, "failed", dip_err_text(&err, rc), NULL);
        }
    }

    pthread_mutex_lock(&s->lock);
    stopping = s->stopping;
    cancelled = s->cancel;
    pthread_mutex_unlock(&s->lock);
    if (!stopping) {
        struct dip_store_job *fin = NULL;
        const char *state = "done";

        if (cancelled) {
            dip_store_job_finish(s->store, id, "cancelled", "cancelled", NULL, NULL);
            state = "cancelled";
        } else {
            if (dip_store_job_get(s->store, id, 1, &fin, NULL) == 0) {
                for (size_t i = 0; i < fin->n_items; i++) {
                    if (strcmp(fin->items[i].state, "done") != 0)
                        state = "failed";
                }
            }
            /* An item the executor never reported is a failure, not a forever-running job. */
            dip_store_job_finish(s->store, id, state, "failed", "no result from the executor",
                                 NULL);
        }
        dip_store_job_free(fin);
        log_line(s, "job %s: %s", id, state);
    }
out:
    pthread_mutex_lock(&s->lock);
    s->running_id[0] = '\0';
    s->cancel = 0;
    bump(s);
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; r.bufs != NULL && i < r.n; i++)
        dip_free(r.bufs[i]);
    dip_free(r.bufs);
    dip_free(r.map);
    dip_store_job_free(r.job);
}

/* ---- The loop ---- */

/* A stop request from the caller's flag (set by a signal handler) becomes the server's stopping
 * and cancel flags, which the executor polls between tiles. */
static int check_stop(dip_server *s)
{
    int stop;

    pthread_mutex_lock(&s->lock);
    if (s->stop_flag != NULL && *s->stop_flag) {
        s->stopping = 1;
        s->cancel = 1;
        pthread_cond_broadcast(&s->cond);
    }
    stop = s->stopping;
    pthread_mutex_unlock(&s->lock);
    return stop;
}

int dip_server_run(dip_server *s, volatile sig_atomic_t *stop)
{
    uint64_t seen = (uint64_t)-1; /* look at the store at once */
    char last_owner[64] = "";     /* users take turns */

    pthread_mutex_lock(&s->lock);
    s->stop_flag = stop;
    pthread_mutex_unlock(&s->lock);
    for (;;) {
        char id[DIP_STORE_ID_LEN];

        if (check_stop(s))
            break;
        pthread_mutex_lock(&s->lock);
        if (s->wake == seen && !s->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000000L; /* also notices the stop flag */
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        }
        seen = s->wake;
        pthread_mutex_unlock(&s->lock);
        while (!check_stop(s) && dip_store_job_next(s->store, last_owner, id, NULL) == 0)
            run_job(s, id, last_owner);
    }
    pthread_mutex_lock(&s->lock);
    s->stop_flag = NULL;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void dip__runner_wake(dip_server *s)
{
    pthread_mutex_lock(&s->lock);
    s->wake++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}
