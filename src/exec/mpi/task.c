/* SPDX-License-Identifier: MIT */
/* Runs one task of the cluster executor: an item (decode, run the pipeline, encode, via
 * dip_process_bytes) or a tile of one step of a compiled plan (dip_plan_tile). Workers call this
 * for every TASK message; the coordinator calls it too when no worker is left, so both give the
 * same bytes. The plan of the last tiled image is cached with the statistics already bound. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "dip/image.h"
#include "internal.h"

#ifdef DIP_TEST_HOOKS
/* Test-only fault hooks (compiled into test builds only, -DDIP_TEST_HOOKS=ON): nonzero when env
 * `var` is set and occurs in the bytes. */
int dip__mpi_test_marked(const char *var, const uint8_t *p, size_t n)
{
    const char *mark = getenv(var);

    if (!mark || !*mark || !p)
        return 0;
    return memmem(p, n, mark, strlen(mark)) != NULL;
}
#endif

void dip__runner_init(struct dip__runner *rn)
{
    memset(rn, 0, sizeof *rn);
    pthread_rwlock_init(&rn->plan_lock, NULL);
}

void dip__runner_destroy(struct dip__runner *rn)
{
    pthread_rwlock_destroy(&rn->plan_lock);
}

void dip__runner_cleanup(struct dip__runner *rn)
{
    if (rn->obj && rn->objects)
        rn->objects->close(rn->obj);
    rn->obj = NULL;
    memset(&rn->obj_err, 0, sizeof rn->obj_err);
    dip_plan_free(rn->plan);
    rn->plan = NULL;
    dip_pipeline_free(rn->pipe);
    rn->pipe = NULL;
    dip_free(rn->pipeline_text);
    rn->pipeline_text = NULL;
}

int dip__runner_job(struct dip__runner *rn, struct dip__rbuf *r, struct dip_err *err)
{
    uint64_t job = dip__rbuf_u64(r);
    struct dip_job_spec spec;
    char *text = NULL, *conf = NULL;
    dip_pipeline *pipe = NULL;
    int rc = 0;

    dip__wire_read_spec(r, &spec);
    text = dip__rbuf_str(r, 1 << 20);
    if (r->bad || !text) {
        rc = dip_err_set(err, r->bad ? DIP_EPEER : DIP_ENOMEM, "mpi: malformed job message");
        goto out;
    }
    /* The object storage configuration (it may hold credentials: wiped, never logged). */
    conf = r->left ? dip__rbuf_str(r, 1 << 16) : NULL;
    if (r->bad) {
        rc = dip_err_set(err, DIP_EPEER, "mpi: malformed job message");
        goto out;
    }
    rc = dip_pipeline_parse(text, &pipe, err);
    if (rc)
        goto out;
    dip__runner_cleanup(rn);
    rn->job = job;
    rn->spec = spec;
    rn->pipeline_text = text;
    rn->spec.pipeline = text;
    rn->pipe = pipe;
    text = NULL;
    pipe = NULL;
    if (conf && *conf) {
        if (!rn->objects)
            dip_err_set(&rn->obj_err, DIP_EINVAL,
                        "this rank has no object storage (built without it, or not started by "
                        "dip process)");
        else if (rn->objects->open(rn->objects->ud, conf, &rn->obj, &rn->obj_err) != 0 &&
                 !rn->obj_err.code)
            rn->obj_err.code = DIP_EIO;
        if (rn->obj_err.code)
            rn->obj = NULL;
    }
out:
    if (conf)
        explicit_bzero(conf, strlen(conf));
    dip_free(conf);
    dip_free(text);
    dip_pipeline_free(pipe);
    return rc;
}

/* Writes a little-endian double into a message already built (a field known only at the end). */
static void put_f64le(uint8_t *p, double v)
{
    uint64_t u;

    memcpy(&u, &v, sizeof u);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (8 * i));
}

static void result_head(struct dip__buf *res, uint64_t id, uint64_t job, uint8_t kind, int rc,
                        double busy_s, double mpix, const char *msg)
{
    dip__buf_u64le(res, id);
    dip__buf_u64le(res, job);
    dip__buf_u8(res, kind);
    dip__buf_u32le(res, (uint32_t)rc);
    dip__buf_f64le(res, busy_s);
    dip__buf_f64le(res, mpix);
    dip__wire_str(res, rc ? msg : "");
}

static int run_item(struct dip__runner *rn, struct dip__rbuf *r, int flags, uint64_t id,
                    uint64_t job, struct dip__buf *res)
{
    uint64_t len = dip__rbuf_u64(r);
    const uint8_t *in = len <= r->left ? dip__rbuf_bytes(r, (size_t)len) : NULL;
    struct dip_run_opts ro = {.tile = rn->spec.tile,
                              .pool = (flags & DIP__RUN_POOL) ? rn->pool : NULL};
    struct dip_image_info info;
    struct dip_err err = {0};
    uint8_t *out = NULL;
    size_t out_len = 0;
    dip_format fmt = DIP_FORMAT_UNKNOWN;
    int w = 0, h = 0, rc;
    double t0 = dip__now();
    /* CPU, not wall time, for usage accounting: this thread's clock, plus the pool's threads'
     * when the item has the pool to itself. */
    double cpu0 = dip_thread_cpu_seconds();
    double pool0 = ro.pool ? dip_pool_cpu_seconds(ro.pool) : 0;

    if (!in)
        return DIP_EPEER;
#ifdef DIP_TEST_HOOKS
    if ((flags & DIP__RUN_HOOKS) && dip__mpi_test_marked("DIP_TEST_POISON", in, (size_t)len))
        abort(); /* test-only: a worker that crashes on this input */
    while ((flags & DIP__RUN_HOOKS) && dip__mpi_test_marked("DIP_TEST_HANG", in, (size_t)len))
        sleep(1); /* test-only: a task that never ends (its worker still sends heartbeats) */
    if (flags & DIP__RUN_HOOKS)
        dip__test_item_sleep();
#endif
    memset(&info, 0, sizeof info);
    rc = dip_process_bytes(&rn->spec, rn->pipe, in, (size_t)len, &ro, &out, &out_len, &fmt, &info,
                           &w, &h, &err);
    if (!rc) /* one allocation of the whole result (and room to seal it in place) */
        dip__buf_reserve(res, 256 + out_len);
    result_head(res, id, job, DIP__TASK_ITEM, rc, dip__now() - t0,
                (double)info.width * info.height / 1e6, dip_err_text(&err, rc));
    dip__buf_u32le(res, (uint32_t)w);
    dip__buf_u32le(res, (uint32_t)h);
    dip__buf_u32le(res, (uint32_t)fmt);
    dip__buf_u64le(res, rc ? 0 : out_len);
    if (!rc)
        dip__buf_add(res, out, out_len);
    /* Last, so older fields keep their offsets: the item's CPU seconds. */
    dip__buf_f64le(res, dip_thread_cpu_seconds() - cpu0 +
                            (ro.pool ? dip_pool_cpu_seconds(ro.pool) - pool0 : 0));
    dip_free(out);
    return res->failed ? DIP_ENOMEM : 0;
}

/* An item whose input and output are objects: get, decode, run, encode, put, here. The result
 * carries the output's size and hash, never its bytes. A worker killed before its put completed
 * leaves no object (puts are all or nothing), and the coordinator gives the task to another. */
static int run_object(struct dip__runner *rn, struct dip__rbuf *r, int flags, uint64_t id,
                      uint64_t job, struct dip__buf *res)
{
    char *in_ref = dip__rbuf_str(r, 4096), *out_ref = dip__rbuf_str(r, 4096);
    struct dip_run_opts ro = {.tile = rn->spec.tile,
                              .pool = (flags & DIP__RUN_POOL) ? rn->pool : NULL};
    struct dip_image_info info;
    struct dip_err err = {0};
    uint8_t *in = NULL, *out = NULL;
    size_t in_len = 0, out_len = 0;
    dip_format fmt = DIP_FORMAT_UNKNOWN;
    char sha[65] = "";
    int w = 0, h = 0, rc;
    double t0 = dip__now();
    double cpu0 = dip_thread_cpu_seconds(); /* usage: CPU of get, decode, run, encode, put */
    double pool0 = ro.pool ? dip_pool_cpu_seconds(ro.pool) : 0;

    memset(&info, 0, sizeof info);
    if (r->bad || !in_ref || !out_ref) {
        rc = r->bad ? DIP_EPEER : DIP_ENOMEM;
        goto out;
    }
    if (!rn->obj) {
        rc = rn->obj_err.code ? rn->obj_err.code : DIP_EINVAL;
        dip_err_set(&err, rc, "%s: object storage: %s", in_ref,
                    rn->obj_err.code ? rn->obj_err.msg : "no configuration shipped with the job");
        goto out;
    }
    rc = rn->objects->get(rn->obj, in_ref, rn->spec.limits.max_input_bytes, &in, &in_len, &err);
    if (rc)
        goto out;
    if (rn->sized) {
        /* fetched: its deadline starts now, and grows with its size (1e-6: not an image we can
         * size; the decoder will say so) */
        double mpix = 1e-6;

        if (dip_codec_probe(in, in_len, &rn->spec.limits, &info, NULL) == 0 && info.width > 0)
            mpix = (double)info.width * info.height / 1e6;
        rn->sized(rn->sized_ud, id, mpix);
    }
#ifdef DIP_TEST_HOOKS
    if ((flags & DIP__RUN_HOOKS) && dip__mpi_test_marked("DIP_TEST_POISON", in, in_len))
        abort(); /* test-only: a worker that crashes on this input */
    while ((flags & DIP__RUN_HOOKS) && dip__mpi_test_marked("DIP_TEST_HANG", in, in_len))
        sleep(1); /* test-only: a task that never ends (its worker still sends heartbeats) */
    if (flags & DIP__RUN_HOOKS)
        dip__test_item_sleep();
#endif
    rc = dip_process_bytes(&rn->spec, rn->pipe, in, in_len, &ro, &out, &out_len, &fmt, &info, &w,
                           &h, &err);
    dip_free(in);
    in = NULL;
    if (rc == 0)
        rc = rn->objects->put(rn->obj, out_ref, out, out_len, sha, &err);
out:
    result_head(res, id, job, DIP__TASK_OBJECT, rc, dip__now() - t0,
                (double)info.width * info.height / 1e6, dip_err_text(&err, rc));
    dip__buf_u32le(res, (uint32_t)w);
    dip__buf_u32le(res, (uint32_t)h);
    dip__buf_u32le(res, (uint32_t)fmt);
    dip__buf_u64le(res, rc ? 0 : out_len);
    dip__wire_str(res, rc ? "" : sha);
    dip__buf_f64le(res, dip_thread_cpu_seconds() - cpu0 +
                            (ro.pool ? dip_pool_cpu_seconds(ro.pool) - pool0 : 0));
    dip_free(in);
    dip_free(out);
    dip_free(in_ref);
    dip_free(out_ref);
    return res->failed ? DIP_ENOMEM : 0;
}

static struct dip_rect read_rect(struct dip__rbuf *r)
{
    struct dip_rect rect;

    rect.x = dip__rbuf_i32(r);
    rect.y = dip__rbuf_i32(r);
    rect.w = dip__rbuf_i32(r);
    rect.h = dip__rbuf_i32(r);
    return rect;
}

/* Makes rn->plan the plan of (job, item) at w x h x ch with the statistics of every step before
 * `step` bound from `stats` (the reduced statistics of those steps, in step order). */
static int bind_plan(struct dip__runner *rn, uint64_t job, uint64_t item, int w, int h, int ch,
                     size_t step, const uint8_t *stats, size_t stats_len, struct dip_err *err)
{
    size_t off = 0;
    int rc = 0;

    if (!rn->plan || rn->plan_job != job || rn->plan_item != item || rn->plan_w != w ||
        rn->plan_h != h || rn->plan_ch != ch || rn->plan_finished > step) {
        dip_plan_free(rn->plan);
        rn->plan = NULL;
        rc = dip_plan_compile(rn->pipe, w, h, ch, &rn->plan, err);
        if (rc)
            return rc;
        rn->plan_job = job;
        rn->plan_item = item;
        rn->plan_w = w;
        rn->plan_h = h;
        rn->plan_ch = ch;
        rn->plan_finished = 0;
    }
    if (step >= dip_plan_steps(rn->plan))
        return dip_err_set(err, DIP_EPEER, "mpi: task for step %zu of a %zu-step plan", step,
                           dip_plan_steps(rn->plan));
    for (size_t s = 0; s < step; s++) {
        struct dip_step_info si;

        dip_plan_step_info(rn->plan, s, &si);
        if (si.kind != DIP_STEP_TILED || si.stat_size == 0)
            continue;
        if (si.stat_size > stats_len - off)
            return dip_err_set(err, DIP_EPEER, "mpi: task lacks the statistic of step %zu", s);
        if (s >= rn->plan_finished) {
            /* The message holds it unaligned: bind an aligned copy of the integer array. */
            uint64_t *aligned = dip_malloc(si.stat_size);

            if (!aligned)
                return DIP_ENOMEM;
            memcpy(aligned, stats + off, si.stat_size);
            rc = dip_plan_stat_finish(rn->plan, s, aligned);
            dip_free(aligned);
            if (rc)
                return dip_err_set(err, rc, "mpi: binding the statistic of step %zu", s);
        }
        off += si.stat_size;
    }
    if (rn->plan_finished < step)
        rn->plan_finished = step;
    return 0;
}

static int run_tile(struct dip__runner *rn, struct dip__rbuf *r, uint64_t id, uint64_t job,
                    uint64_t item, struct dip__buf *res)
{
    int w = dip__rbuf_i32(r), h = dip__rbuf_i32(r), ch = dip__rbuf_i32(r);
    size_t step = dip__rbuf_u32(r);
    struct dip_rect out_rect = read_rect(r), in_rect = read_rect(r);
    uint64_t stats_len = dip__rbuf_u64(r);
    const uint8_t *stats = stats_len <= r->left ? dip__rbuf_bytes(r, (size_t)stats_len) : NULL;
    uint64_t pix_len = dip__rbuf_u64(r);
    const uint8_t *pix = pix_len <= r->left ? dip__rbuf_bytes(r, (size_t)pix_len) : NULL;
    struct dip_err err = {0};
    struct dip_step_info si;
    struct dip_rect need;
    struct dip_view in, out;
    uint8_t *stat = NULL, *opix;
    size_t out_bytes = 0;
    double t0 = dip__now(), cpu0 = dip_thread_cpu_seconds();
    int rc;

    if (r->bad || !pix || (stats_len && !stats) || w <= 0 || h <= 0 || ch < 1 ||
        ch > DIP_MAX_CHANNELS)
        return DIP_EPEER;
    /* Tiles of one step share the bound plan (read lock); the first tile of another step or
     * image rebinds it (write lock), then reads again. */
    for (;;) {
        pthread_rwlock_rdlock(&rn->plan_lock);
        if (rn->plan && rn->plan_job == job && rn->plan_item == item && rn->plan_w == w &&
            rn->plan_h == h && rn->plan_ch == ch && rn->plan_finished == step)
            break;
        pthread_rwlock_unlock(&rn->plan_lock);
        pthread_rwlock_wrlock(&rn->plan_lock);
        rc = bind_plan(rn, job, item, w, h, ch, step, stats, (size_t)stats_len, &err);
        pthread_rwlock_unlock(&rn->plan_lock);
        if (rc) {
            pthread_rwlock_rdlock(&rn->plan_lock); /* fail: unlocks */
            goto fail;
        }
    }
    dip_plan_step_info(rn->plan, step, &si);
    need = dip_plan_need(rn->plan, step, out_rect);
    if (si.kind != DIP_STEP_TILED || out_rect.w <= 0 || out_rect.h <= 0 ||
        !dip_rect_contains((struct dip_rect){0, 0, si.out_w, si.out_h}, out_rect) ||
        memcmp(&need, &in_rect, sizeof need) != 0 ||
        pix_len != (uint64_t)in_rect.w * (uint64_t)in_rect.h * (uint64_t)si.in_channels) {
        rc = dip_err_set(&err, DIP_EPEER, "mpi: tile task does not match the plan");
        goto fail;
    }
    if (si.stat_size) {
        stat = dip_calloc(1, si.stat_size);
        if (!stat) {
            rc = DIP_ENOMEM;
            goto fail;
        }
    }
    out_bytes = (size_t)out_rect.w * (size_t)out_rect.h * (size_t)si.out_channels;
    in = (struct dip_view){(uint8_t *)(uintptr_t)pix, in_rect.w, in_rect.h, si.in_channels,
                           (size_t)in_rect.w * (size_t)si.in_channels};
    /* The result message is built around the output pixels, so they are written in place, in
     * one allocation (with room to seal it). */
    dip__buf_reserve(res, 256 + si.stat_size + out_bytes);
    result_head(res, id, job, DIP__TASK_TILE, 0, 0.0, (double)out_rect.w * out_rect.h / 1e6, "");
    {
        size_t at = res->len; /* busy_s sits 21 bytes into the head: patched below */

        dip__buf_u64le(res, si.stat_size);
        dip__buf_grow(res, si.stat_size);
        dip__buf_u64le(res, out_bytes);
        opix = dip__buf_grow(res, out_bytes);
        if (res->failed) {
            rc = DIP_ENOMEM;
            goto fail;
        }
        out = (struct dip_view){opix, out_rect.w, out_rect.h, si.out_channels,
                                (size_t)out_rect.w * (size_t)si.out_channels};
        rc = dip_plan_tile(rn->plan, step, &in, in_rect, out_rect, &out, stat);
        if (rc)
            goto fail;
        if (si.stat_size)
            memcpy(res->bytes + at + 8, stat, si.stat_size);
        put_f64le(res->bytes + 8 + 8 + 1 + 4, dip__now() - t0);
    }
    pthread_rwlock_unlock(&rn->plan_lock);
    dip_free(stat);
    /* Last, so older fields keep their offsets: the tile's CPU seconds (usage accounting). */
    dip__buf_f64le(res, dip_thread_cpu_seconds() - cpu0);
    return res->failed ? DIP_ENOMEM : 0;
fail:
    pthread_rwlock_unlock(&rn->plan_lock);
    dip_free(stat);
    dip__buf_free(res); /* empty, failure cleared */
    result_head(res, id, job, DIP__TASK_TILE, rc, dip__now() - t0, 0.0, dip_err_text(&err, rc));
    dip__buf_u64le(res, 0);
    dip__buf_u64le(res, 0);
    return res->failed ? DIP_ENOMEM : 0;
}

int dip__runner_task(struct dip__runner *rn, const uint8_t *msg, size_t len, int flags,
                     uint64_t *task_id, struct dip__buf *res)
{
    struct dip__rbuf r = {msg, len, 0};
    uint64_t id = dip__rbuf_u64(&r), job = dip__rbuf_u64(&r);
    uint8_t kind = dip__rbuf_u8(&r);
    uint64_t item = dip__rbuf_u64(&r);

    (void)dip__rbuf_u32(&r); /* attempt: for logs only */
    *task_id = id;
    dip__buf_reset(res);
    if (r.bad)
        return DIP_EPEER;
    if (!rn->pipe || job != rn->job) {
        result_head(res, id, job, kind, DIP_EPEER, 0.0, 0.0, "mpi: task for an unknown job");
        dip__buf_u64le(res, 0);
        dip__buf_u64le(res, 0);
        dip__buf_u32le(res, 0);
        return 0;
    }
    if (kind == DIP__TASK_ITEM)
        return run_item(rn, &r, flags, id, job, res);
    if (kind == DIP__TASK_TILE)
        return run_tile(rn, &r, id, job, item, res);
    if (kind == DIP__TASK_OBJECT)
        return run_object(rn, &r, flags, id, job, res);
    return DIP_EPEER;
}
