/* SPDX-License-Identifier: MIT */
/* The planner: compiles a pipeline, for one input size and channel count, into steps that can be
 * cut into tiles. A TILED step fuses runs of point, stencil and geometric operations (their halos
 * and region maps compose) and may end by collecting a statistic for a STAT op; the STAT op's map
 * then opens the next step. A GLOBAL step runs one op on the whole intermediate image. Computing a
 * tile is a pure function of (step, input pixels of need(out rect), out rect): the local executor
 * and the MPI workers both call dip_plan_tile(), which is what makes results independent of tile
 * size, thread count and rank count. */
#ifndef DIP_PLAN_H
#define DIP_PLAN_H

#include <stddef.h>

#include "error.h"
#include "image.h"
#include "limits.h"
#include "pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dip_plan dip_plan;

enum dip_step_kind {
    DIP_STEP_TILED,
    DIP_STEP_GLOBAL,
};

struct dip_step_info {
    enum dip_step_kind kind;
    int in_w, in_h, in_channels;
    int out_w, out_h, out_channels;
    size_t n_ops;          /* operations fused in this step */
    size_t stat_size;      /* TILED: bytes of the statistic collected over its output (0: none) */
    struct dip_halo reach; /* TILED: how far the step reaches past an output rect (composed) */
};

/** Compiles `p` for a w x h x channels input. Calls each op's prepare(). Returns 0, DIP_EINVAL
 * (e.g. crop outside the image, channel count an op refuses), DIP_ENOMEM. Free with
 * dip_plan_free(). A plan holds per-image state (finished statistics): use one per image. */
int dip_plan_compile(const dip_pipeline *p, int w, int h, int channels, dip_plan **out,
                     struct dip_err *err);
void dip_plan_free(dip_plan *plan);
/** Checks every op's output size against lim's max_width, max_height and max_pixels, before any
 * pixel is allocated. Returns 0 or DIP_ETOOBIG (422) naming the op and the limit. */
int dip_plan_check_limits(const dip_plan *plan, const struct dip_limits *lim, struct dip_err *err);
size_t dip_plan_steps(const dip_plan *plan);
void dip_plan_step_info(const dip_plan *plan, size_t s, struct dip_step_info *info);
/** Output size and channels of the whole plan. */
void dip_plan_output(const dip_plan *plan, int *w, int *h, int *channels);

/** TILED: the rectangle of the step's input (inside the input image) needed for output `out`. */
struct dip_rect dip_plan_need(const dip_plan *plan, size_t s, struct dip_rect out);

/** TILED: computes output rect `out_rect` of step `s` into `out` (out_rect's size, the step's
 * output channels) from `in`, which holds the step's input at `in_rect` =
 * dip_plan_need(plan, s, out_rect). When the step collects a statistic and `stat` is not NULL,
 * adds the statistic of the produced tile to `stat` (stat_size bytes, zeroed by the caller before
 * the first tile). Thread-safe for distinct calls on the same plan. Returns 0 or DIP_ENOMEM. */
int dip_plan_tile(const dip_plan *plan, size_t s, const struct dip_view *in,
                  struct dip_rect in_rect, struct dip_rect out_rect, const struct dip_view *out,
                  void *stat);
/** TILED: acc += partial for step s's statistic. */
void dip_plan_stat_merge(const dip_plan *plan, size_t s, void *acc, const void *partial);
/** TILED with a statistic: binds the reduced statistic `acc` into the next step (its first op is
 * the STAT op's map). Call once, after every tile of step s, before any tile of step s + 1. */
int dip_plan_stat_finish(dip_plan *plan, size_t s, const void *acc);

/** One operation of a TILED step as the plan prepared it, for device backends (src/exec/opencl)
 * that run the step's ops one by one on whole images instead of calling dip_plan_tile(). */
struct dip_plan_op {
    const struct dip_op *op;
    const void *args;      /* after prepare(); a STAT map's after dip_plan_stat_finish() */
    enum dip_op_kind kind; /* how it is tiled: POINT (a STAT map too), STENCIL (a GLOBAL op's
                              tiled pre-pass too) or GEOMETRIC */
    int is_map;            /* 1: the point map of a STAT op */
    struct dip_halo halo;
    enum dip_edge edge;
    int in_w, in_h, in_ch, out_w, out_h, out_ch;
};
/** TILED: op i (0 <= i < n_ops) of step s. Borrowed; valid until dip_plan_free(). */
void dip_plan_step_op(const dip_plan *plan, size_t s, size_t i, struct dip_plan_op *out);
/** TILED: the STAT op collecting a statistic over step s's output (NULL: none); its args in
 * *args. GLOBAL: the step's op. */
const struct dip_op *dip_plan_step_stat(const dip_plan *plan, size_t s, const void **args);

/** GLOBAL: runs the step on the whole input view into the whole output view. */
int dip_plan_global(const dip_plan *plan, size_t s, const struct dip_view *in,
                    const struct dip_view *out);

#ifdef __cplusplus
}
#endif
#endif
