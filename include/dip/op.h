/* SPDX-License-Identifier: MIT */
/* The operation table. Every operation is one `const struct dip_op` in one file per family under
 * src/ops/, listed once in src/ops/ops.def. An entry declares its parameters (typed, with ranges
 * and defaults), what input region it needs for an output region, and its kernels. Operations see
 * tiles only: they know nothing of threads, files, MPI or HTTP. The planner (src/plan) cuts
 * images into tiles from these declarations so that any tiling gives byte-identical results. */
#ifndef DIP_OP_H
#define DIP_OP_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "image.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DIP_COUNTOF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Parameters ---- */

enum dip_param_type {
    DIP_PARAM_INT,    /* int field */
    DIP_PARAM_DOUBLE, /* double field */
    DIP_PARAM_BOOL,   /* int field, 0 or 1; text accepts true/false/1/0/yes/no */
    DIP_PARAM_ENUM,   /* int field holding the index into `choices` */
};

struct dip_param {
    const char *name;
    enum dip_param_type type;
    size_t offset; /* into the op's args struct */
    double min, max, def;
    const char *const *choices; /* DIP_PARAM_ENUM: NULL-terminated names */
    const char *help;
    unsigned flags; /* DIP_PARAM_ODD: declared constraints a client can check (GET /api/v1/ops) */
};

/* Odd values only; 0 too where 0 is the minimum (there it means "automatic"). */
#define DIP_PARAM_ODD 1u

#define DIP_PARAM_INT(S, f, lo, hi, d, h)                                                          \
    {                                                                                              \
#f, DIP_PARAM_INT, offsetof(S, f), (lo), (hi), (d), NULL, (h), 0                           \
    }
#define DIP_PARAM_INT_ODD(S, f, lo, hi, d, h)                                                      \
    {                                                                                              \
#f, DIP_PARAM_INT, offsetof(S, f), (lo), (hi), (d), NULL, (h), DIP_PARAM_ODD               \
    }
#define DIP_PARAM_DOUBLE(S, f, lo, hi, d, h)                                                       \
    {                                                                                              \
#f, DIP_PARAM_DOUBLE, offsetof(S, f), (lo), (hi), (d), NULL, (h), 0                        \
    }
#define DIP_PARAM_BOOL(S, f, d, h)                                                                 \
    {                                                                                              \
#f, DIP_PARAM_BOOL, offsetof(S, f), 0, 1, (d), NULL, (h), 0                                \
    }
#define DIP_PARAM_ENUM(S, f, names, d, h)                                                          \
    {                                                                                              \
#f, DIP_PARAM_ENUM, offsetof(S, f), 0, 0, (d), (names), (h), 0                             \
    }

/* ---- Regions ---- */

/** How far a stencil reaches past its output rectangle on each side. */
struct dip_halo {
    int left, right, top, bottom;
};

/** What the executor puts outside the image for stencils (OpenCV's border names). */
enum dip_edge {
    DIP_EDGE_REFLECT101 = 0, /* gfedcb|abcdefgh|gfedcba (OpenCV BORDER_REFLECT_101, default) */
    DIP_EDGE_REPLICATE,      /* aaaaaa|abcdefgh|hhhhhhh (OpenCV BORDER_REPLICATE) */
};

enum dip_op_kind {
    DIP_OP_POINT,     /* output pixel from the same input pixel; any tiling, no halo */
    DIP_OP_STENCIL,   /* output pixel from a neighbourhood (halo); executor pads borders */
    DIP_OP_STAT,      /* a statistic of the whole input, then a point map (two-pass reduce) */
    DIP_OP_GLOBAL,    /* needs the whole input image at once */
    DIP_OP_GEOMETRIC, /* output rect maps to an input rect (need()); may change size */
};

/** One tile of work handed to an op's `tile` kernel.
 * - POINT: `in` and `out` have the same size and cover the same rect (`out_rect`); they may be the
 *   same memory (in-place) when in and out channel counts are equal, so read a pixel before
 *   writing it.
 * - STENCIL: `in` covers out_rect grown by the halo; pixel (0,0) of `out` sits at
 *   (halo.left, halo.top) of `in`. Pixels outside the image are already padded per `.edge`.
 * - GEOMETRIC: `in` covers `in_rect` (= need(out_rect), inside the input image); the op maps
 *   output coordinates (out_rect.x + i, ...) to input coordinates itself.
 * - STAT: the map pass is a point tile; `args` then holds the finished statistic. */
struct dip_tile {
    struct dip_view in;
    struct dip_view out;
    struct dip_rect in_rect;  /* where `in` lies in the op's input image (may pass its edges) */
    struct dip_rect out_rect; /* where `out` lies in the op's output image */
    int in_width, in_height;  /* size of the whole input image */
    int out_width, out_height;
};

struct dip_op {
    const char *name;    /* lower-case identifier used in pipelines */
    int version;         /* bump when output bytes change; part of result-cache keys */
    const char *summary; /* one line */
    const char *doc;     /* longer text for docs/ops.md: formula, OpenCV equivalent, borders */
    enum dip_op_kind kind;
    size_t args_size; /* sizeof the args struct: POD, no pointers (it travels over MPI) */
    const struct dip_param *params;
    size_t n_params;
    enum dip_edge edge; /* STENCIL only */

    /** Cross-parameter checks and precomputation into `args` (kernel tables, LUTs), after the
     * parameters were parsed and range-checked. `in_channels` is the channel count the op will
     * receive. Optional. Returns 0 or DIP_EINVAL with err naming the parameter. */
    int (*prepare)(void *args, int in_channels, struct dip_err *err);
    /** Channels out for `in_channels` in. NULL: the same. */
    int (*out_channels)(const void *args, int in_channels);
    /** STENCIL (and GLOBAL ops with a tiled pre-pass): reach of the kernel. */
    void (*halo)(const void *args, struct dip_halo *halo);
    /** GEOMETRIC: output size for an input size. Returns 0 or DIP_EINVAL (e.g. crop outside). */
    int (*out_size)(const void *args, int in_w, int in_h, int *out_w, int *out_h,
                    struct dip_err *err);
    /** GEOMETRIC: the input rect (inside the input image) needed for output rect `out`. */
    void (*need)(const void *args, int in_w, int in_h, struct dip_rect out, struct dip_rect *in);
    /** POINT, STENCIL, GEOMETRIC, and the map pass of STAT: compute `t->out`. Must give the same
     * bytes for a pixel whatever the tile it is computed in. Returns 0 or DIP_ENOMEM. */
    int (*tile)(const void *args, const struct dip_tile *t);

    /** STAT: size of one partial statistic (fixed-width integers, so it can be summed anywhere). */
    size_t stat_size;
    /** STAT: adds the statistic of the pixels in `in` to `partial` (zeroed by the executor). */
    void (*stat_tile)(const void *args, const struct dip_view *in, void *partial);
    /** STAT: acc += partial. Must be commutative and associative (integer sums). */
    void (*stat_merge)(const void *args, void *acc, const void *partial);
    /** STAT: turns the reduced statistic into map parameters stored in `args` (e.g. a LUT). */
    int (*stat_finish)(void *args, const void *acc, int in_w, int in_h, int in_channels);

    /** GLOBAL: whole image in, whole image out (sizes equal; channels per out_channels). When the
     * op also has `tile` and `halo`, the planner runs `tile` first as a stencil (fused with the
     * ops before it) and `global` on its output; `pre_channels` is the channel count of that
     * intermediate. */
    int (*global)(const void *args, const struct dip_view *in, const struct dip_view *out);
    int (*pre_channels)(const void *args, int in_channels);
};

/* ---- The registry (src/ops/registry.c, generated from src/ops/ops.def) ---- */

/** Number of registered operations. */
size_t dip_op_count(void);
/** The i-th operation in table order (0 <= i < dip_op_count()). */
const struct dip_op *dip_op_at(size_t i);
/** Operation by exact name, or NULL. */
const struct dip_op *dip_op_find(const char *name);
/** Up to `max` registered names closest to `name` (edit distance), for "did you mean". */
size_t dip_op_suggest(const char *name, const char **out, size_t max);

/** Test-only: appends `n` operations to the table. Call once before any other use. */
void dip__ops_set_extra(const struct dip_op *const *ops, size_t n);

/** Fills `args` (op->args_size bytes) with every parameter's default. */
void dip_op_args_default(const struct dip_op *op, void *args);
/** Parses `text` as the value of parameter `p` into `args`, range-checked. The error names the
 * operation, the parameter and its range. */
int dip_op_args_set(const struct dip_op *op, const struct dip_param *p, void *args,
                    const char *text, struct dip_err *err);
/** Finds parameter `name` of `op`, or NULL. */
const struct dip_param *dip_op_param(const struct dip_op *op, const char *name);
/** Formats parameter `p`'s value in `args` into buf (the form the parser reads back). */
void dip_op_param_format(const struct dip_param *p, const void *args, char *buf, size_t len);
/** resize's taps of output coordinate d along an axis of `in` -> `out` pixels: up to 4 clamped
 * input indices in idx and fixed-point weights (x2048) in w, as cv2.resize computes them;
 * `filter` is resize's filter index (0 area, 1 linear, 2 cubic). Returns the number of taps. */
int dip_resize_taps(int filter, int in, int out, int d, int *idx, short *w);
/** "point", "stencil", "stat", "global", "geometric" (the API's and docs' names). */
const char *dip_op_kind_name(enum dip_op_kind k);
/** "int", "double", "bool", "enum". */
const char *dip_param_type_name(enum dip_param_type t);
/** The whole table as one JSON document, {"ops": [...]}: each op's name, version, summary, doc,
 * kind and params (name, type, min, max, default, choices, help, odd; min and max are null for
 * enum and bool). `dip ops --json` and GET /api/v1/ops both print exactly this. *out is
 * NUL-terminated and dip_malloc'ed (the caller dip_frees it); *len excludes the NUL. Returns 0
 * or DIP_ENOMEM. */
int dip_op_table_json(char **out, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
