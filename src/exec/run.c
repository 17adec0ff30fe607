/* SPDX-License-Identifier: MIT */
/* Running a plan on one image: each TILED step is cut into tiles run on the pool, a statistic is
 * reduced from per-thread partials, GLOBAL steps run on the whole intermediate. At most two whole
 * images (a step's input and output) are alive at once, whatever the number of steps. Also the
 * per-item unit of work shared by every executor: decode, run, encode. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "dip/exec.h"
#include "dip/plan.h"
#include "exec/opencl/ocl.h"

/* Tile grid of a w x h output: T x T squares when asked, else full-width strips of about 256 K
 * pixels (cache-sized), at least two per thread when the image is tall enough. */
struct grid {
    int w, h, tw, th, nx, ny;
};

static void grid_init(struct grid *g, int w, int h, int tile, int threads)
{
    g->w = w;
    g->h = h;
    if (tile > 0) {
        g->tw = DIP_MIN(tile, w);
        g->th = DIP_MIN(tile, h);
    } else {
        int rows = DIP_CLAMP(262144 / w, 16, 256);
        int want = 2 * threads;
        if (h / rows < want)
            rows = DIP_MAX(8, h / want);
        g->tw = w;
        g->th = DIP_MAX(1, DIP_MIN(rows, h));
    }
    g->nx = (w + g->tw - 1) / g->tw;
    g->ny = (h + g->th - 1) / g->th;
}

static struct dip_rect grid_rect(const struct grid *g, size_t i)
{
    int gx = (int)(i % (size_t)g->nx), gy = (int)(i / (size_t)g->nx);
    int x = gx * g->tw, y = gy * g->th;

    return (struct dip_rect){x, y, DIP_MIN(g->tw, g->w - x), DIP_MIN(g->th, g->h - y)};
}

struct step_ctx {
    const dip_plan *plan;
    size_t step;
    struct grid grid;
    struct dip_view in, out;
    uint8_t *stats; /* one partial per thread */
    size_t stat_size;
    const struct dip_run_opts *o;
    pthread_mutex_t *mu;
    uint64_t *done, total;
};

static int tile_task(void *ud, size_t i, int thread)
{
    struct step_ctx *c = ud;
    struct dip_rect r = grid_rect(&c->grid, i);
    struct dip_rect need = dip_plan_need(c->plan, c->step, r);
    struct dip_view in = dip_view_sub(&c->in, need);
    struct dip_view out = dip_view_sub(&c->out, r);
    void *stat = c->stats ? c->stats + (size_t)thread * c->stat_size : NULL;
    int rc;

    if (c->o->cancel && *c->o->cancel)
        return DIP_ECANCELED;
    rc = dip_plan_tile(c->plan, c->step, &in, need, r, &out, stat);
    if (rc == 0 && c->o->progress) {
        pthread_mutex_lock(c->mu);
        (*c->done)++;
        c->o->progress(c->o->progress_ud, *c->done, c->total);
        pthread_mutex_unlock(c->mu);
    }
    return rc;
}

/* One warning per image that falls back from the device to the CPU; what lasts for the process
 * (an op without a kernel, no usable device) is said once (a batch would repeat it for every
 * image). */
static void warn_fallback(const char *why, int rc)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static char said[16][96];
    static int nsaid;
    int repeat = 0;

    pthread_mutex_lock(&mu);
    if (rc == DIP_EINVAL || rc == DIP_ENOTFOUND) {
        for (int i = 0; i < nsaid && !repeat; i++)
            repeat = strncmp(said[i], why, sizeof(said[i]) - 1) == 0;
        if (!repeat && nsaid < 16) {
            size_t l = strlen(why) < sizeof(said[0]) - 1 ? strlen(why) : sizeof(said[0]) - 1;
            memcpy(said[nsaid], why, l);
            said[nsaid++][l] = '\0';
        }
    }
    if (!repeat)
        fprintf(stderr, "dip: warning: opencl: %s; %s on the CPU\n", why,
                rc == DIP_EINVAL || rc == DIP_ENOTFOUND ? "such images run" : "this image runs");
    pthread_mutex_unlock(&mu);
}

/* The device path: 0 with *out, DIP_ECANCELED, or nonzero after a warning (run the CPU). */
static int run_device(const dip_pipeline *p, const dip_image *in, const struct dip_run_opts *o,
                      dip_image **out, struct dip_err *err)
{
    dip_plan *plan = NULL;
    char why[512];
    int rc;

    rc = dip_plan_compile(p, dip_image_width(in), dip_image_height(in), dip_image_channels(in),
                          &plan, err);
    if (rc)
        return rc; /* the CPU path reports the same error */
    rc = dip__ocl_run(plan, in, o->cancel, out, why, sizeof(why));
    dip_plan_free(plan);
    if (rc == 0 && o->progress)
        o->progress(o->progress_ud, 1, 1);
    if (rc && rc != DIP_ECANCELED)
        warn_fallback(why, rc);
    return rc;
}

int dip_run_image(const dip_pipeline *p, const dip_image *in, const struct dip_run_opts *o,
                  dip_image **out, struct dip_err *err)
{
    static const struct dip_run_opts defaults;
    dip_plan *plan = NULL;
    dip_image *cur = NULL, *next = NULL;
    uint8_t *stats = NULL;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    uint64_t done = 0, total = 0;
    int threads, rc;

    *out = NULL;
    if (o == NULL)
        o = &defaults;
    /* A conversion (no operation) has no pixel work to move to a device. */
    if (dip_pipeline_length(p) > 0 &&
        dip_device_resolve((enum dip_device)o->device) == DIP_DEVICE_OPENCL) {
        rc = run_device(p, in, o, out, err);
        if (rc == 0 || rc == DIP_ECANCELED)
            return rc == DIP_ECANCELED ? dip_err_set(err, rc, "cancelled") : 0;
    }
    threads = dip_pool_threads(o->pool);
    rc = dip_plan_compile(p, dip_image_width(in), dip_image_height(in), dip_image_channels(in),
                          &plan, err);
    if (rc)
        goto out;
    /* Count tasks for progress. */
    for (size_t s = 0; s < dip_plan_steps(plan); s++) {
        struct dip_step_info si;
        struct grid g;
        dip_plan_step_info(plan, s, &si);
        grid_init(&g, si.out_w, si.out_h, o->tile, threads);
        total += si.kind == DIP_STEP_TILED ? (uint64_t)g.nx * (uint64_t)g.ny : 1;
    }
    cur = dip_image_ref((dip_image *)(uintptr_t)in);
    for (size_t s = 0; s < dip_plan_steps(plan); s++) {
        struct dip_step_info si;
        struct dip_view vin, vout;

        if (o->cancel && *o->cancel) {
            rc = DIP_ECANCELED;
            goto out;
        }
        dip_plan_step_info(plan, s, &si);
        vin = dip_image_view(cur);
        if (si.kind == DIP_STEP_TILED && si.n_ops == 0) {
            /* A step that only collects a statistic (a STAT op first, or right after a global
             * op) reads its input in place: its output is its input. */
            next = dip_image_ref(cur);
        } else {
            rc = dip_image_new(si.out_w, si.out_h, si.out_channels, &next);
            if (rc)
                goto out;
        }
        vout = dip_image_view(next);
        if (si.kind == DIP_STEP_TILED) {
            struct step_ctx c = {.plan = plan,
                                 .step = s,
                                 .in = vin,
                                 .out = vout,
                                 .o = o,
                                 .mu = &mu,
                                 .done = &done,
                                 .total = total};
            grid_init(&c.grid, si.out_w, si.out_h, o->tile, threads);
            if (si.stat_size) {
                stats = dip_calloc((size_t)threads, si.stat_size);
                if (stats == NULL) {
                    rc = DIP_ENOMEM;
                    goto out;
                }
                c.stats = stats;
                c.stat_size = si.stat_size;
            }
            rc = dip_pool_for(o->pool, (size_t)c.grid.nx * (size_t)c.grid.ny, tile_task, &c);
            if (rc)
                goto out;
            if (stats) {
                /* Integer sums: the order of the merge cannot change the result. */
                for (int t = 1; t < threads; t++)
                    dip_plan_stat_merge(plan, s, stats, stats + (size_t)t * si.stat_size);
                rc = dip_plan_stat_finish(plan, s, stats);
                dip_free(stats);
                stats = NULL;
                if (rc)
                    goto out;
            }
        } else {
            rc = dip_plan_global(plan, s, &vin, &vout);
            if (rc)
                goto out;
            if (o->progress)
                o->progress(o->progress_ud, ++done, total);
        }
        dip_image_unref(cur);
        cur = next;
        next = NULL;
    }
    *out = cur;
    cur = NULL;
out:
    if (rc == DIP_ENOMEM)
        dip_err_set(err, rc, "out of memory running the pipeline");
    else if (rc == DIP_ECANCELED)
        dip_err_set(err, rc, "cancelled");
    dip_free(stats);
    dip_image_unref(next);
    dip_image_unref(cur);
    dip_plan_free(plan);
    return rc;
}

/* ---- One item: decode, run, encode ---- */

void dip_job_spec_default(struct dip_job_spec *spec)
{
    memset(spec, 0, sizeof(*spec));
    spec->pipeline = "";
    dip_encode_opts_default(&spec->encode);
    dip_decode_opts_default(&spec->decode);
    dip_limits_default(&spec->limits);
}

int dip_check_output(const struct dip_job_spec *spec, const dip_pipeline *p, const uint8_t *in,
                     size_t in_len, struct dip_err *err)
{
    struct dip_image_info info;
    dip_plan *plan = NULL;
    int rc, w, h;

    memset(&info, 0, sizeof(info));
    rc = dip_codec_probe(in, in_len, &spec->limits, &info, err);
    if (rc)
        return rc;
    w = info.width;
    h = info.height;
    if (spec->decode.autorotate && info.orientation >= 5) {
        w = info.height; /* EXIF orientations 5..8 turn the image a quarter */
        h = info.width;
    }
    rc = dip_plan_compile(p, w, h, info.channels, &plan, err);
    if (rc == 0)
        rc = dip_plan_check_limits(plan, &spec->limits, err);
    dip_plan_free(plan);
    return rc;
}

int dip_process_bytes(const struct dip_job_spec *spec, const dip_pipeline *p, const uint8_t *in,
                      size_t in_len, const struct dip_run_opts *o, uint8_t **out, size_t *out_len,
                      dip_format *out_format, struct dip_image_info *info, int *out_w, int *out_h,
                      struct dip_err *err)
{
    struct dip_image_info local;
    struct dip_encode_opts enc = spec->encode;
    struct dip_decode_opts dec = spec->decode;
    dip_image *img = NULL, *res = NULL;
    int rc;

    /* The codecs may cut their work over the same pool as the tiles (fixed pieces: the bytes do
     * not depend on it). NULL when this image runs on one thread beside others. */
    enc.pool = o ? o->pool : NULL;
    dec.pool = enc.pool;
    *out = NULL;
    *out_len = 0;
    if (info == NULL)
        info = &local;
    /* Every step's output is checked against the limits from the header, before the input or
     * any intermediate is allocated (the same check as the service's at submission). */
    rc = dip_check_output(spec, p, in, in_len, err);
    if (rc)
        goto out;
    rc = dip_codec_decode(in, in_len, &spec->limits, &dec, &img, info, err);
    if (rc)
        goto out;
    rc = dip_run_image(p, img, o, &res, err);
    if (rc)
        goto out;
    if (enc.format == DIP_FORMAT_UNKNOWN)
        enc.format = dip_format_can_encode(info->format) ? info->format : DIP_FORMAT_PNG;
    rc = dip_codec_encode(res, &enc, out, out_len, err);
    if (rc)
        goto out;
    if (out_format)
        *out_format = enc.format;
    if (out_w)
        *out_w = dip_image_width(res);
    if (out_h)
        *out_h = dip_image_height(res);
out:
    dip_image_unref(res);
    dip_image_unref(img);
    return rc;
}
