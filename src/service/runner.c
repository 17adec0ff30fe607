/* SPDX-License-Identifier: MIT */
/* The runner: the one thread that calls the executor. It keeps the jobs in progress in memory
 * and feeds the executor small batches: a batch of synchronous /process requests, then a batch of
 * up to `svc->batch` images of one job, chosen so that users take turns (the user served longest
 * ago goes next, a user's jobs in order). One user's 1000-image job therefore delays another
 * user's single image by one batch, not by the whole job, and /process goes through the executor
 * (so through the cluster under mpirun). Each item's result is stored as a blob and committed with
 * one transaction keyed by (job, item), so a job resumed after a crash skips what is done and
 * never records a result twice; items computed before are served from the result cache. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "dip/image.h"
#include "dip/pipeline.h"
#include "service/internal.h"

#define MAX_ACTIVE DIP__MAX_ACTIVE

const double dip__lat_bounds[DIP__LAT_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                  0.5,   1,    2.5,   5,    10,  30};

void dip__metrics_latency(dip_service *s, double seconds)
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

/* ---- State ---- */

struct dip__proc {
    struct dip__proc *next;
    struct dip_process_req *req;
    void (*done)(void *ud);
    void *ud;
};

int dip__runner_live(dip_service *svc, const char *id, struct dip_progress *live, double *started,
                     uint64_t *px_skip)
{
    int found = 0;

    pthread_mutex_lock(&svc->lock);
    for (size_t i = 0; i < svc->n_active; i++) {
        const struct dip__active *a = &svc->active[i];
        if (strcmp(a->job->id, id) != 0)
            continue;
        *live = a->live;
        if (a->in_flight && live->pixels_done > a->live_px_reported)
            live->pixels_done -= a->live_px_reported;
        else
            live->pixels_done = 0;
        if (!a->in_flight)
            live->tasks_total = live->tasks_done = 0;
        *started = a->started;
        *px_skip = a->px_skip;
        found = 1;
        break;
    }
    pthread_mutex_unlock(&svc->lock);
    return found;
}

size_t dip__runner_running(dip_service *svc, const char *id, struct dip__run_item *out, size_t max)
{
    size_t n = 0;

    pthread_mutex_lock(&svc->lock);
    for (size_t i = 0; i < svc->n_active; i++) {
        const struct dip__active *a = &svc->active[i];
        if (strcmp(a->job->id, id) != 0 || a->run == NULL)
            continue;
        for (size_t k = 0; k < a->n_run; k++) {
            if (!a->run[k].started || a->run[k].finished)
                continue;
            if (n < max)
                out[n] = a->run[k];
            n++;
        }
    }
    pthread_mutex_unlock(&svc->lock);
    return n;
}

int dip__runner_in_flight(dip_service *svc, const char *id)
{
    int busy = 0;

    pthread_mutex_lock(&svc->lock);
    for (size_t i = 0; i < svc->n_active; i++)
        if (strcmp(svc->active[i].job->id, id) == 0)
            busy = svc->active[i].in_flight;
    pthread_mutex_unlock(&svc->lock);
    return busy;
}

static void changed(dip_service *svc)
{
    pthread_mutex_lock(&svc->lock);
    dip__service_bump(svc);
    pthread_mutex_unlock(&svc->lock);
    dip__service_notify(svc);
}

/* A stop request from the caller's flag (set by a signal handler) becomes the service's stopping
 * and cancel flags, which the executor polls between tiles. */
static int check_stop(dip_service *svc)
{
    int stop;

    int began = 0;
    double grace = svc->o.shutdown_grace_s;

    pthread_mutex_lock(&svc->lock);
    if (svc->stop_flag != NULL && *svc->stop_flag && !svc->stopping) {
        /* The running batch may finish within the grace period; past it, it is interrupted
         * between tiles and what did not finish resumes on the next start. */
        if (svc->drain_until <= 0) {
            svc->drain_until = dip__now() + (grace > 0 ? grace : 0);
            began = 1;
        }
        if (grace <= 0 || dip__now() >= svc->drain_until) {
            svc->stopping = 1;
            svc->cancel = 1;
        }
        pthread_cond_broadcast(&svc->cond);
    }
    stop = svc->stopping;
    pthread_mutex_unlock(&svc->lock);
    if (began) {
        char g[32];
        snprintf(g, sizeof(g), "%g", grace > 0 ? grace : 0);
        dip__log_event(svc, 0, "shutdown", "#grace_s", g, NULL);
    }
    return stop;
}

/* ---- The jobs in progress ---- */

/* Loads queued and running jobs that are not active yet, oldest first, while there is room. */
static void refill(dip_service *svc)
{
    char(*ids)[DIP_STORE_ID_LEN] = NULL;
    size_t n = 0;

    if (svc->n_active >= MAX_ACTIVE)
        return;
    ids = dip_calloc(MAX_ACTIVE * 2, sizeof(*ids));
    if (ids == NULL || dip_store_job_pending(svc->store, ids, MAX_ACTIVE * 2, &n, NULL) != 0)
        n = 0;
    for (size_t k = 0; k < n && svc->n_active < MAX_ACTIVE; k++) {
        struct dip_store_job *job = NULL;
        struct dip__active *a;
        int known = 0;
        for (size_t i = 0; i < svc->n_active && !known; i++)
            known = strcmp(svc->active[i].job->id, ids[k]) == 0;
        if (known || dip_store_job_get(svc->store, ids[k], 1, &job, NULL) != 0)
            continue;
        dip_store_job_start(svc->store, job->id, NULL);
        pthread_mutex_lock(&svc->lock);
        a = &svc->active[svc->n_active++];
        memset(a, 0, sizeof(*a));
        a->job = job;
        a->started = dip__now();
        for (size_t i = 0; i < job->n_items; i++)
            if (dip_job_state_final(job->items[i].state))
                a->px_skip += (uint64_t)job->items[i].width * (uint64_t)job->items[i].height;
        /* A user's new job shares that user's turn, even when the user's earlier jobs are
         * finished already. */
        for (size_t i = 0; i < DIP_COUNTOF(svc->served); i++)
            if (strcmp(svc->served[i].owner, job->owner) == 0)
                a->turn = svc->served[i].turn;
        pthread_mutex_unlock(&svc->lock);
        {
            char items[32], pending[32];
            size_t left = 0;
            for (size_t i = 0; i < job->n_items; i++)
                left += dip_job_state_is(job->items[i].state, DIP_JOB_QUEUED) ||
                        dip_job_state_is(job->items[i].state, DIP_JOB_RUNNING);
            snprintf(items, sizeof(items), "%zu", job->n_items);
            snprintf(pending, sizeof(pending), "%zu", left);
            dip__log_event(svc, 0, "job_started", "job", job->id, "user", job->owner, "#items",
                           items, "#pending", pending, "pipeline", job->pipeline, NULL);
        }
    }
    dip_free(ids);
}

static void drop(dip_service *svc, size_t i)
{
    struct dip_store_job *job;

    pthread_mutex_lock(&svc->lock);
    job = svc->active[i].job;
    svc->active[i] = svc->active[--svc->n_active];
    dip__service_bump(svc);
    pthread_mutex_unlock(&svc->lock);
    dip__service_notify(svc);
    dip_store_job_free(job);
}

/* Every item dispatched: the job ends done, or failed when an item did not succeed. */
static void finish(dip_service *svc, const char *id, double started)
{
    struct dip_store_job *fin = NULL;
    enum dip_job_state state = DIP_JOB_DONE;
    char reason[1024] = "", owner[64] = "", n_done[32], n_failed[32], secs[32];
    size_t done = 0, failed = 0;
    double took = 0;

    if (dip_store_job_get(svc->store, id, 1, &fin, NULL) == 0) {
        if (dip_job_state_final(fin->state)) {
            dip_store_job_free(fin);
            return; /* cancelled meanwhile */
        }
        snprintf(owner, sizeof(owner), "%s", fin->owner);
        for (size_t i = 0; i < fin->n_items; i++) {
            if (dip_job_state_is(fin->items[i].state, DIP_JOB_DONE)) {
                done++;
                continue;
            }
            state = DIP_JOB_FAILED;
            failed++;
            if (reason[0] == '\0')
                snprintf(reason, sizeof(reason), "%s: %s", fin->items[i].name,
                         fin->items[i].error[0] ? fin->items[i].error
                                                : "no result from the executor");
        }
    }
    dip_store_job_free(fin);
    /* An item the executor never reported is a failure, not a forever-running job. */
    dip_store_job_finish(svc->store, id, dip_job_state_name(state),
                         dip_job_state_name(DIP_JOB_FAILED), "no result from the executor", NULL);
    snprintf(n_done, sizeof(n_done), "%zu", done);
    snprintf(n_failed, sizeof(n_failed), "%zu", failed);
    took = DIP_MAX(0.0, dip__now() - started);
    snprintf(secs, sizeof(secs), "%.3f", took);
    if (state == DIP_JOB_DONE)
        dip__log_event(svc, 0, "job_finished", "job", id, "user", owner, "#items_done", n_done,
                       "#items_failed", n_failed, "#seconds", secs, NULL);
    else
        dip__log_event(svc, 0, "job_failed", "job", id, "user", owner, "#items_done", n_done,
                       "#items_failed", n_failed, "#seconds", secs, "reason", reason, NULL);
}

/* The next job to serve: the one whose owner was served longest ago; a user's oldest job first
 * (the active array is filled oldest first, but swaps on removal, so compare creation times). */
static int pick(dip_service *svc)
{
    int best = -1;

    for (size_t i = 0; i < svc->n_active; i++) {
        const struct dip__active *a = &svc->active[i], *b;
        if (best < 0) {
            best = (int)i;
            continue;
        }
        b = &svc->active[best];
        if (a->turn < b->turn || (a->turn == b->turn && a->job->created < b->job->created))
            best = (int)i;
    }
    return best;
}

/* Records that `owner` is served now; called with the lock held. */
static void served(dip_service *svc, const char *owner)
{
    size_t slot = 0;
    uint64_t turn = ++svc->turns;

    for (size_t i = 0; i < DIP_COUNTOF(svc->served); i++) {
        if (strcmp(svc->served[i].owner, owner) == 0) {
            slot = i;
            break;
        }
        if (svc->served[i].turn < svc->served[slot].turn)
            slot = i; /* the least recently served makes room */
    }
    snprintf(svc->served[slot].owner, sizeof(svc->served[slot].owner), "%s", owner);
    svc->served[slot].turn = turn;
    for (size_t i = 0; i < svc->n_active; i++)
        if (strcmp(svc->active[i].job->owner, owner) == 0)
            svc->active[i].turn = turn;
}

/* ---- One batch of a job ---- */

struct batch {
    dip_service *svc;
    struct dip__active *a; /* stable while the batch runs: only the runner changes the array */
    size_t *map;           /* batch index -> item index */
    uint8_t **bufs;
    int *reported;
    struct dip__run_item *run; /* published as a->run while the batch runs */
    size_t n;
};

static int io_load(void *ud, size_t i, const uint8_t **data, size_t *len, struct dip_err *err)
{
    struct batch *b = ud;
    const struct dip_store_item *it = &b->a->job->items[b->map[i]];
    uint8_t *buf = NULL;
    int rc;

    /* The executor starts the item now: from here on the API calls it running. */
    pthread_mutex_lock(&b->svc->lock);
    b->run[i].started = 1;
    dip__service_bump(b->svc);
    pthread_mutex_unlock(&b->svc->lock);
    dip__service_notify(b->svc);
    rc = dip_store_blob_get(b->svc->store, it->sha, b->svc->o.limits.max_input_bytes, &buf, len,
                            err);
    if (rc == 0) {
        b->bufs[i] = buf;
        *data = buf;
    }
    return rc;
}

static void io_release(void *ud, size_t i)
{
    struct batch *b = ud;

    dip_free(b->bufs[i]);
    b->bufs[i] = NULL;
}

static const char *io_name(void *ud, size_t i)
{
    struct batch *b = ud;

    return b->a->job->items[b->map[i]].name;
}

static void io_result(void *ud, const struct dip_item_result *res)
{
    struct batch *b = ud;
    dip_service *svc = b->svc;
    struct dip_store_job *job = b->a->job;
    struct dip_store_item *it;
    struct dip_err err = {0};
    int rc, stopping, cancelled;

    if (res->index >= b->n)
        return;
    (void)check_stop(svc);
    b->reported[res->index] = 1;
    it = &job->items[b->map[res->index]];
    pthread_mutex_lock(&svc->lock);
    stopping = svc->stopping;
    cancelled = svc->cancel;
    b->a->live_px_reported += (uint64_t)it->width * (uint64_t)it->height;
    b->run[res->index].finished = 1;
    pthread_mutex_unlock(&svc->lock);
    if (res->rc == 0) {
        struct dip_store_item out = {0};
        char key[65];
        double cpu0 = dip_thread_cpu_seconds();

        pthread_rwlock_rdlock(&svc->blobs);
        rc = dip_store_blob_put(svc->store, res->data, res->len, out.out_sha, &err);
        if (rc == 0) {
            out.index = it->index;
            snprintf(out.out_format, sizeof(out.out_format), "%s", dip_format_name(res->format));
            out.out_width = res->width;
            out.out_height = res->height;
            out.bytes_out = res->len;
            out.versions = job->canon;
            dip__cache_key(it->sha, job->canon, job->format, job->quality, key);
            /* The user's CPU: the executor's threads on the item, and this thread hashing and
             * writing its result (the commit's own small share is not counted). */
            out.cpu_s = res->cpu_s + (dip_thread_cpu_seconds() - cpu0);
            rc = dip_store_result_put(svc->store, job->id, &out, key, &err);
        }
        pthread_rwlock_unlock(&svc->blobs);
        if (rc != 0) {
            static const char full[] = "cannot store the result: the server's storage is full";
            static const char broken[] = "cannot store the result: a storage error (see the log)";
            /* The log keeps the path; the item's error names none. */
            dip__log(svc, "job %s item %d: cannot store the result: %s", job->id, it->index,
                     dip_err_text(&err, rc));
            if (!stopping)
                dip_store_item_set_state(svc->store, job->id, it->index,
                                         dip_job_state_name(DIP_JOB_FAILED),
                                         rc == DIP_ENOSPC ? full : broken, NULL);
        }
        pthread_mutex_lock(&svc->lock);
        if (rc == 0) {
            svc->m_items_done++;
            svc->m_bytes_out += res->len;
        } else {
            svc->m_items_failed++;
        }
        svc->m_tasks++;
        pthread_mutex_unlock(&svc->lock);
        dip__metrics_latency(svc, res->seconds);
    } else if (res->rc == DIP_ECANCELED && (stopping || cancelled)) {
        /* Shutdown: leave the item for the restart. Cancel: the cancel already marked it. */
        if (!stopping)
            dip_store_item_set_state(svc->store, job->id, it->index,
                                     dip_job_state_name(DIP_JOB_CANCELLED), NULL, NULL);
    } else {
        const char *msg = res->error && res->error[0] ? res->error : dip_strerror(res->rc);
        struct dip_store_usage spent = {.cpu_s = res->cpu_s};
        dip_store_item_set_state(svc->store, job->id, it->index, dip_job_state_name(DIP_JOB_FAILED),
                                 msg, NULL);
        /* An item that failed still cost its owner the CPU it took (a bad image is no free
         * lunch); it makes no result, so it counts as no item. */
        if (res->cpu_s > 0)
            dip_store_usage_add(svc->store, job->owner, &spent, NULL);
        pthread_mutex_lock(&svc->lock);
        svc->m_items_failed++;
        svc->m_tasks++;
        pthread_mutex_unlock(&svc->lock);
    }
    changed(svc);
}

static void io_item_progress(void *ud, size_t i, uint64_t tiles_done, uint64_t tiles_total)
{
    struct batch *b = ud;

    if (i >= b->n)
        return;
    pthread_mutex_lock(&b->svc->lock);
    b->run[i].tiles_done = tiles_done;
    b->run[i].tiles_total = tiles_total;
    pthread_mutex_unlock(&b->svc->lock); /* io_progress, throttled, tells the watchers */
}

static void io_progress(void *ud, const struct dip_progress *p)
{
    struct batch *b = ud;

    (void)check_stop(b->svc);
    pthread_mutex_lock(&b->svc->lock);
    b->a->live = *p;
    dip__service_bump(b->svc);
    pthread_mutex_unlock(&b->svc->lock);
    dip__service_notify(b->svc);
}

/* Serves item i from the cache when it was computed before; 1 when it was. */
static int from_cache(dip_service *svc, struct dip_store_job *job, size_t i)
{
    struct dip_store_item *it = &job->items[i];
    struct dip_store_item hit = {0};
    char key[65];
    int ok = 0;

    dip__cache_key(it->sha, job->canon, job->format, job->quality, key);
    pthread_rwlock_rdlock(&svc->blobs);
    if (dip_store_cache_get(svc->store, key, &hit, NULL) == 0) {
        hit.index = it->index;
        hit.cached = 1;
        if (dip_store_result_put(svc->store, job->id, &hit, NULL, NULL) == 0) {
            pthread_mutex_lock(&svc->lock);
            for (size_t k = 0; k < svc->n_active; k++) /* cached: no work, no ETA figure */
                if (svc->active[k].job == job)
                    svc->active[k].px_skip += (uint64_t)it->width * (uint64_t)it->height;
            svc->m_cache_hits++;
            svc->m_items_done++;
            svc->m_bytes_out += hit.bytes_out;
            pthread_mutex_unlock(&svc->lock);
            ok = 1;
        }
        dip_free(hit.versions);
    }
    pthread_rwlock_unlock(&svc->blobs);
    return ok;
}

/* Runs the next batch of active job k; drops it from the active set when it is finished or was
 * cancelled. */
static void run_batch(dip_service *svc, size_t k)
{
    struct dip__active *a = &svc->active[k];
    struct dip_store_job *job = a->job, *now = NULL;
    struct batch b = {0};
    struct dip_job_spec spec;
    struct dip_job_io io = {0};
    struct dip_err err = {0};
    int rc, cancelled = 0, stopping;

    /* A job cancelled (or deleted) since it was loaded is dropped. */
    if (dip_store_job_get(svc->store, job->id, 0, &now, NULL) != 0 ||
        dip_job_state_final(now->state))
        cancelled = 1;
    dip_store_job_free(now);
    if (cancelled) {
        drop(svc, k);
        return;
    }
    b.svc = svc;
    b.a = a;
    b.map = dip_calloc((size_t)svc->batch, sizeof(*b.map));
    b.bufs = dip_calloc((size_t)svc->batch, sizeof(*b.bufs));
    b.reported = dip_calloc((size_t)svc->batch, sizeof(*b.reported));
    b.run = dip_calloc((size_t)svc->batch, sizeof(*b.run));
    if (b.map == NULL || b.bufs == NULL || b.reported == NULL || b.run == NULL) {
        dip__log(svc, "job %s: out of memory", job->id);
        goto out;
    }
    while (a->next < job->n_items && b.n < (size_t)svc->batch) {
        size_t i = a->next++;
        const char *st = job->items[i].state;
        if (!dip_job_state_is(st, DIP_JOB_QUEUED) && !dip_job_state_is(st, DIP_JOB_RUNNING))
            continue;
        if (from_cache(svc, job, i)) {
            changed(svc);
            continue;
        }
        b.map[b.n++] = i;
    }
    pthread_mutex_lock(&svc->lock);
    served(svc, job->owner);
    svc->cancel = svc->stopping;
    snprintf(svc->running_id, sizeof(svc->running_id), "%s", job->id);
    memset(&a->live, 0, sizeof(a->live));
    a->live_px_reported = 0;
    a->in_flight = b.n > 0;
    for (size_t i = 0; i < b.n; i++)
        b.run[i].item = b.map[i];
    a->run = b.run;
    a->n_run = b.n;
    pthread_mutex_unlock(&svc->lock);
    if (b.n > 0) {
        dip_job_spec_default(&spec);
        spec.pipeline = job->pipeline;
        spec.encode.format = dip_format_from_name(job->format);
        spec.encode.quality = job->quality;
        spec.limits = svc->o.limits;
        spec.threads = svc->o.threads;
        io.n_items = b.n;
        io.load = io_load;
        io.release = io_release;
        io.name = io_name;
        io.result = io_result;
        io.progress = io_progress;
        io.item_progress = io_item_progress;
        io.ud = &b;
        io.cancel = &svc->cancel;
        rc = dip_executor_run(svc->ex, &spec, &io, &err);
        pthread_mutex_lock(&svc->lock);
        stopping = svc->stopping;
        pthread_mutex_unlock(&svc->lock);
        if (rc != 0) {
            dip__log(svc, "job %s: %s", job->id, dip_err_text(&err, rc));
            for (size_t i = 0; !stopping && i < b.n; i++)
                if (!b.reported[i])
                    dip_store_item_set_state(svc->store, job->id, job->items[b.map[i]].index,
                                             dip_job_state_name(DIP_JOB_FAILED),
                                             dip_err_text(&err, rc), NULL);
        }
        if (stopping)
            a->next = 0; /* not finished: the restart resumes it */
    }
out:
    pthread_mutex_lock(&svc->lock);
    a->in_flight = 0;
    a->run = NULL;
    a->n_run = 0;
    svc->running_id[0] = '\0';
    stopping = svc->stopping;
    pthread_mutex_unlock(&svc->lock);
    for (size_t i = 0; b.bufs != NULL && i < b.n; i++)
        dip_free(b.bufs[i]);
    dip_free(b.bufs);
    dip_free(b.map);
    dip_free(b.reported);
    dip_free(b.run);
    if (!stopping && a->next >= job->n_items) {
        finish(svc, job->id, a->started);
        drop(svc, k);
    } else {
        changed(svc);
    }
}

/* ---- Synchronous requests ---- */

struct pbatch {
    dip_service *svc;
    struct dip__proc *p[64];
    size_t n;
};

static int p_load(void *ud, size_t i, const uint8_t **data, size_t *len, struct dip_err *err)
{
    struct pbatch *b = ud;

    (void)err;
    *data = b->p[i]->req->in;
    *len = b->p[i]->req->in_len;
    return 0;
}

static void p_result(void *ud, const struct dip_item_result *res)
{
    struct pbatch *b = ud;
    struct dip_process_req *r;

    if (res->index >= b->n)
        return;
    r = b->p[res->index]->req;
    r->rc = res->rc;
    if (r->owner != NULL && r->owner[0]) {
        /* A synchronous image is an item of its user's too, with no job and nothing stored. */
        struct dip_store_usage u = {.items = res->rc == 0,
                                    .bytes_in = r->in_len,
                                    .bytes_out = res->rc == 0 ? res->len : 0,
                                    .cpu_s = res->cpu_s};
        dip_store_usage_add(b->svc->store, r->owner, &u, NULL);
    }
    if (res->rc == 0) {
        r->out = dip_malloc(res->len ? res->len : 1);
        if (r->out == NULL) {
            r->rc = dip_err_set(&r->err, DIP_ENOMEM, "out of memory for the result");
        } else {
            memcpy(r->out, res->data, res->len);
            r->out_len = res->len;
            r->out_format = res->format;
        }
        dip__metrics_latency(b->svc, res->seconds);
    } else {
        dip_err_set(&r->err, res->rc, "%s",
                    res->error && res->error[0] ? res->error : dip_strerror(res->rc));
    }
    r->reported = 1;
}

static void proc_done(dip_service *svc, struct dip__proc *p)
{
    void (*done)(void *) = p->done;
    void *ud = p->ud;

    pthread_mutex_lock(&svc->lock);
    if (p->req->rc == 0) {
        svc->m_bytes_out += p->req->out_len;
        svc->m_process++;
    }
    p->req->finished = 1;
    pthread_cond_broadcast(&svc->cond);
    pthread_mutex_unlock(&svc->lock);
    dip_free(p);
    if (done != NULL)
        done(ud);
}

static int same_spec(const struct dip_process_req *a, const struct dip_process_req *b)
{
    return strcmp(a->pipeline, b->pipeline) == 0 && a->format == b->format &&
           a->quality == b->quality;
}

/* Runs the waiting requests that share the first one's options, up to a batch. */
static void run_proc_batch(dip_service *svc)
{
    struct pbatch b = {0};
    struct dip__proc **pp;
    struct dip_job_spec spec;
    struct dip_job_io io = {0};
    struct dip_err err = {0};
    size_t max = DIP_MIN((size_t)svc->batch, DIP_COUNTOF(b.p));
    int rc;

    b.svc = svc;
    pthread_mutex_lock(&svc->lock);
    pp = &svc->proc_head;
    while (*pp != NULL && b.n < max) {
        struct dip__proc *p = *pp;
        if (b.n > 0 && !same_spec(b.p[0]->req, p->req)) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        b.p[b.n++] = p;
        svc->proc_waiting--;
    }
    svc->proc_tail = NULL;
    for (struct dip__proc *p = svc->proc_head; p != NULL; p = p->next)
        svc->proc_tail = p;
    svc->cancel = svc->stopping;
    pthread_mutex_unlock(&svc->lock);
    if (b.n == 0)
        return;
    dip_job_spec_default(&spec);
    spec.pipeline = b.p[0]->req->pipeline;
    spec.encode.format = b.p[0]->req->format;
    spec.encode.quality = b.p[0]->req->quality;
    spec.limits = svc->o.limits;
    spec.threads = svc->o.threads;
    io.n_items = b.n;
    io.load = p_load;
    io.result = p_result;
    io.ud = &b;
    io.cancel = &svc->cancel;
    rc = dip_executor_run(svc->ex, &spec, &io, &err);
    for (size_t i = 0; i < b.n; i++) {
        struct dip_process_req *r = b.p[i]->req;
        if (!r->reported) {
            r->rc = rc ? rc : DIP_EINTERNAL;
            dip_err_set(&r->err, r->rc, "%s", rc ? dip_err_text(&err, rc) : "no result");
        }
        proc_done(svc, b.p[i]);
    }
}

int dip_service_process_start(dip_service *svc, struct dip_process_req *r, void (*done)(void *ud),
                              void *ud, struct dip_err *err)
{
    struct dip__proc *p;
    dip_pipeline *pl = NULL;
    size_t cap = (size_t)svc->batch * 16 + 256;
    int rc;

    r->rc = 0;
    r->out = NULL;
    r->out_len = 0;
    r->reported = r->finished = 0;
    rc = dip_pipeline_parse(r->pipeline, &pl, err);
    dip_pipeline_free(pl);
    if (rc != 0)
        return rc;
    p = dip_calloc(1, sizeof(*p));
    if (p == NULL)
        return DIP_ENOMEM;
    p->req = r;
    p->done = done;
    p->ud = ud;
    pthread_mutex_lock(&svc->lock);
    if (svc->stopping || svc->proc_waiting >= cap) {
        pthread_mutex_unlock(&svc->lock);
        dip_free(p);
        return dip_err_set(err, DIP_EBUSY, "too many synchronous requests; retry later");
    }
    if (svc->proc_tail != NULL)
        svc->proc_tail->next = p;
    else
        svc->proc_head = p;
    svc->proc_tail = p;
    svc->proc_waiting++;
    svc->m_bytes_in += r->in_len;
    svc->wake++;
    pthread_cond_broadcast(&svc->cond);
    pthread_mutex_unlock(&svc->lock);
    return 0;
}

int dip_service_process(dip_service *svc, struct dip_process_req *r, struct dip_err *err)
{
    int rc = dip_service_process_start(svc, r, NULL, NULL, err);

    if (rc != 0)
        return rc;
    pthread_mutex_lock(&svc->lock);
    while (!r->finished)
        pthread_cond_wait(&svc->cond, &svc->lock);
    pthread_mutex_unlock(&svc->lock);
    if (r->rc != 0 && err != NULL)
        *err = r->err;
    return r->rc;
}

/* Answers every waiting request with DIP_EBUSY (the service is stopping). */
static void fail_waiting(dip_service *svc)
{
    for (;;) {
        struct dip__proc *p;
        pthread_mutex_lock(&svc->lock);
        p = svc->proc_head;
        if (p != NULL) {
            svc->proc_head = p->next;
            svc->proc_waiting--;
        }
        if (svc->proc_head == NULL)
            svc->proc_tail = NULL;
        pthread_mutex_unlock(&svc->lock);
        if (p == NULL)
            break;
        p->req->rc = dip_err_set(&p->req->err, DIP_EBUSY, "the server is stopping");
        proc_done(svc, p);
    }
}

void dip__runner_drain(dip_service *svc)
{
    fail_waiting(svc);
}

/* ---- The loop ---- */

int dip_service_run(dip_service *svc, volatile sig_atomic_t *stop)
{
    uint64_t seen = (uint64_t)-1; /* look at the store at once */
    int proc_turn = 1;

    pthread_mutex_lock(&svc->lock);
    svc->stop_flag = stop;
    pthread_mutex_unlock(&svc->lock);
    for (;;) {
        int has_proc, did = 0;
        uint64_t wake;

        if (check_stop(svc) || dip_service_draining(svc))
            break; /* stopped, or draining with no batch in flight */
        pthread_mutex_lock(&svc->lock);
        wake = svc->wake;
        has_proc = svc->proc_head != NULL;
        pthread_mutex_unlock(&svc->lock);
        if (wake != seen) {
            seen = wake;
            refill(svc);
        }
        /* Retention every minute (more often with a short --keep). */
        if (dip__now() - svc->last_retention >
            (svc->o.keep_s > 0 ? DIP_MAX(1.0, DIP_MIN(60.0, svc->o.keep_s / 2)) : 60.0))
            dip_service_retention(svc, 3600.0);
        /* Synchronous requests and job batches alternate, so neither starves the other. */
        if (has_proc && (proc_turn || svc->n_active == 0)) {
            run_proc_batch(svc);
            did = 1;
        } else if (svc->n_active > 0) {
            int k = pick(svc);
            run_batch(svc, (size_t)k);
            if (svc->n_active < MAX_ACTIVE)
                refill(svc);
            did = 1;
        }
        proc_turn = !proc_turn;
        if (did)
            continue;
        pthread_mutex_lock(&svc->lock);
        if (svc->wake == seen && !svc->stopping && svc->proc_head == NULL) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000000L; /* also notices the stop flag */
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&svc->cond, &svc->lock, &ts);
        }
        pthread_mutex_unlock(&svc->lock);
    }
    fail_waiting(svc);
    pthread_mutex_lock(&svc->lock);
    svc->stop_flag = NULL;
    while (svc->n_active > 0) {
        struct dip_store_job *job = svc->active[--svc->n_active].job;
        dip_store_job_free(job);
    }
    pthread_mutex_unlock(&svc->lock);
    return 0;
}
