/* SPDX-License-Identifier: MIT */
/* The local executor: runs a job on one machine's thread pool. With at least as many images as
 * threads, whole images run in parallel (one thread each); otherwise images run one after the
 * other with their tiles spread over the pool. Results and progress go to the job's callbacks,
 * serialised by one mutex. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "dip/exec.h"

struct local {
    struct dip_executor base;
    dip_pool *pool;
    pthread_mutex_t mu;
    struct dip_worker_stat stat;
};

struct job {
    struct local *ex;
    const struct dip_job_spec *spec;
    const struct dip_job_io *io;
    const dip_pipeline *p;
    struct dip_progress prog;
    double t0, last_report;
    int per_item_pool; /* 1: tiles of each image use the pool */
    size_t item;       /* the image running, when per_item_pool (one at a time) */
};

static void report(struct job *j, int force)
{
    double now = dip__now();

    j->prog.elapsed_s = now - j->t0;
    if (j->io->progress && (force || now - j->last_report >= 0.1)) {
        j->last_report = now;
        j->io->progress(j->io->ud, &j->prog);
    }
}

static void tile_progress(void *ud, uint64_t done, uint64_t total)
{
    struct job *j = ud;

    /* dip_run_image serialises these calls per image; `done` restarts at 1 for each image, when
     * its tile count joins the job's total. */
    pthread_mutex_lock(&j->ex->mu);
    if (done == 1)
        j->prog.tasks_total += total;
    j->prog.tasks_done++;
    if (j->io->item_progress)
        j->io->item_progress(j->io->ud, j->item, done, total);
    report(j, 0);
    pthread_mutex_unlock(&j->ex->mu);
}

static int item_task(void *ud, size_t i, int thread)
{
    struct job *j = ud;
    const struct dip_job_io *io = j->io;
    struct dip_err err = {0};
    struct dip_item_result r = {.index = i, .attempts = 1};
    struct dip_image_info info = {0};
    const uint8_t *data = NULL;
    uint8_t *outb = NULL;
    size_t len = 0, outlen = 0;
    struct dip_run_opts o = {.tile = j->spec->tile, .cancel = io->cancel};
    double t0 = dip__now();
    /* CPU, not wall time: this thread's clock, plus the pool threads' when the item's tiles are
     * spread over the pool (then this is the only item running, so their time is its time). */
    double cpu0 = dip_thread_cpu_seconds();
    double pool0 = j->per_item_pool ? dip_pool_cpu_seconds(j->ex->pool) : 0;
    int rc;

    (void)thread;
    if (j->per_item_pool) {
        j->item = i;
        o.pool = j->ex->pool;
        o.progress = tile_progress;
        o.progress_ud = j;
    }
    if (io->cancel && *io->cancel) {
        rc = dip_err_set(&err, DIP_ECANCELED, "cancelled");
        goto done;
    }
    rc = io->load(io->ud, i, &data, &len, &err);
    if (rc)
        goto done;
#ifdef DIP_TEST_HOOKS
    dip__test_item_sleep();
#endif
    rc = dip_process_bytes(j->spec, j->p, data, len, &o, &outb, &outlen, &r.format, &info, &r.width,
                           &r.height, &err);
    if (io->release)
        io->release(io->ud, i);
done:
    r.rc = rc;
    r.error = rc ? dip_err_text(&err, rc) : NULL;
    r.data = outb;
    r.len = outlen;
    r.seconds = dip__now() - t0;
    r.cpu_s = dip_thread_cpu_seconds() - cpu0;
    if (j->per_item_pool)
        r.cpu_s += dip_pool_cpu_seconds(j->ex->pool) - pool0;
    pthread_mutex_lock(&j->ex->mu);
    io->result(io->ud, &r);
    j->prog.items_done++;
    if (rc)
        j->prog.items_failed++;
    if (!j->per_item_pool)
        j->prog.tasks_done++;
    j->prog.pixels_done += (uint64_t)info.width * (uint64_t)info.height;
    j->ex->stat.tasks++;
    j->ex->stat.failures += rc != 0;
    j->ex->stat.megapixels += (double)info.width * (double)info.height / 1e6;
    j->ex->stat.busy_s += r.seconds;
    report(j, 0);
    pthread_mutex_unlock(&j->ex->mu);
    dip_free(outb);
    return 0; /* one item's failure never stops the others */
}

static int local_run(dip_executor *base, const struct dip_job_spec *spec,
                     const struct dip_job_io *io, struct dip_err *err)
{
    struct local *ex = (struct local *)base;
    dip_pipeline *p = NULL;
    struct job j = {.ex = ex, .spec = spec, .io = io};
    int threads = dip_pool_threads(ex->pool);
    int rc;

    rc = dip_pipeline_parse(spec->pipeline, &p, err);
    if (rc)
        return rc;
    j.p = p;
    j.t0 = dip__now();
    j.prog.items_total = io->n_items;
    /* On an OpenCL device, images always run side by side (the device takes two at a time), so
     * that one image's decode and upload overlap another's kernels. */
    j.per_item_pool = io->n_items < (size_t)threads &&
                      !(io->n_items > 1 && spec->pipeline && *spec->pipeline &&
                        dip_device_resolve(DIP_DEVICE_DEFAULT) == DIP_DEVICE_OPENCL);
    j.prog.tasks_total = io->n_items;
    if (j.per_item_pool)
        j.prog.tasks_total = 0; /* tiles: each image adds its count when it starts */
    report(&j, 1);
    if (j.per_item_pool) {
        for (size_t i = 0; i < io->n_items; i++)
            item_task(&j, i, 0);
    } else {
        dip_pool_for(ex->pool, io->n_items, item_task, &j);
    }
    pthread_mutex_lock(&ex->mu);
    if (j.prog.tasks_total < j.prog.tasks_done)
        j.prog.tasks_total = j.prog.tasks_done;
    report(&j, 1);
    pthread_mutex_unlock(&ex->mu);
    dip_pipeline_free(p);
    return 0;
}

static size_t local_workers(dip_executor *base, struct dip_worker_stat *out, size_t max)
{
    struct local *ex = (struct local *)base;

    if (max < 1)
        return 1;
    pthread_mutex_lock(&ex->mu);
    out[0] = ex->stat;
    pthread_mutex_unlock(&ex->mu);
    return 1;
}

static void local_free(dip_executor *base)
{
    struct local *ex = (struct local *)base;

    dip_pool_free(ex->pool);
    pthread_mutex_destroy(&ex->mu);
    dip_free(ex);
}

static const struct dip_executor_vtable local_vt = {
    .name = "local",
    .run = local_run,
    .workers = local_workers,
    .free = local_free,
};

int dip_executor_local_new(int threads, dip_executor **out)
{
    struct local *ex = dip_calloc(1, sizeof(*ex));
    int rc;

    *out = NULL;
    if (ex == NULL)
        return DIP_ENOMEM;
    rc = dip_pool_new(threads, &ex->pool);
    if (rc) {
        dip_free(ex);
        return rc;
    }
    ex->base.vt = &local_vt;
    pthread_mutex_init(&ex->mu, NULL);
    ex->stat.id = 0;
    ex->stat.alive = 1;
    if (gethostname(ex->stat.host, sizeof(ex->stat.host) - 1) != 0)
        ex->stat.host[0] = '\0';
    *out = &ex->base;
    return 0;
}

int dip_executor_run(dip_executor *ex, const struct dip_job_spec *spec, const struct dip_job_io *io,
                     struct dip_err *err)
{
    return ex->vt->run(ex, spec, io, err);
}

size_t dip_executor_workers(dip_executor *ex, struct dip_worker_stat *out, size_t max)
{
    return ex->vt->workers ? ex->vt->workers(ex, out, max) : 0;
}

void dip_executor_free(dip_executor *ex)
{
    if (ex != NULL)
        ex->vt->free(ex);
}
