/* SPDX-License-Identifier: MIT */
/* The planner: compiles a pipeline into steps and computes any output tile of a step from the
 * step's input pixels. Stencil halos and geometric region maps are composed backwards from the
 * requested output rect (need), then the ops run forwards through per-tile buffers; image borders
 * are padded here, per op, exactly as if the whole image were one tile. This file is what makes
 * results independent of tile size, thread count and rank count. It knows nothing of threads. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "dip/plan.h"

#define MAX_OPS 128

enum pop_role {
    ROLE_TILE, /* point, stencil, geometric, or a GLOBAL op's tiled pre-pass */
    ROLE_MAP,  /* a STAT op's point map (args finished by dip_plan_stat_finish) */
};

/* One operation instance in the plan, with the sizes it sees. */
struct pop {
    const struct dip_op *op;
    void *args;
    enum pop_role role;
    enum dip_op_kind kind; /* how it is tiled: POINT, STENCIL or GEOMETRIC */
    struct dip_halo halo;
    enum dip_edge edge;
    int in_w, in_h, in_ch;
    int out_w, out_h, out_ch;
};

struct step {
    enum dip_step_kind kind;
    size_t first, n;    /* TILED: ops [first, first + n) of plan->ops */
    struct pop *stat;   /* TILED: STAT op collecting over this step's output, or NULL */
    struct pop *global; /* GLOBAL: the op */
    int in_w, in_h, in_ch, out_w, out_h, out_ch;
};

struct dip_plan {
    size_t nops, nsteps;
    struct pop ops[MAX_OPS];
    struct step steps[MAX_OPS];
    struct pop globals[MAX_OPS]; /* storage for GLOBAL and STAT-collector pops */
    size_t nglobals;
    void *owned[MAX_OPS]; /* every args copy, freed with the plan (pops share them) */
    size_t nowned;
    int in_w, in_h, in_ch;
};

/* ---- Compilation ---- */

static struct step *open_tiled(dip_plan *pl, int w, int h, int ch)
{
    struct step *s;

    /* Fuse into the last step unless it is global or ends by collecting a statistic (ops are
     * only ever appended to the last step, whose output is the current w x h x ch). */
    if (pl->nsteps > 0) {
        s = &pl->steps[pl->nsteps - 1];
        if (s->kind == DIP_STEP_TILED && s->stat == NULL)
            return s;
    }
    s = &pl->steps[pl->nsteps++];
    memset(s, 0, sizeof(*s));
    s->kind = DIP_STEP_TILED;
    s->first = pl->nops;
    s->in_w = s->out_w = w;
    s->in_h = s->out_h = h;
    s->in_ch = s->out_ch = ch;
    return s;
}

static int add_pop(dip_plan *pl, struct step *s, const struct dip_op *op, void *args,
                   enum pop_role role, enum dip_op_kind kind, int *w, int *h, int *ch,
                   struct dip_err *err)
{
    struct pop *p;
    int ow = *w, oh = *h, och = *ch;
    int rc;

    if (pl->nops == MAX_OPS)
        return dip_err_set(err, DIP_ELIMIT, "pipeline: too many operations");
    p = &pl->ops[pl->nops];
    memset(p, 0, sizeof(*p));
    p->op = op;
    p->args = args;
    p->role = role;
    p->kind = kind;
    p->in_w = *w;
    p->in_h = *h;
    p->in_ch = *ch;
    if (kind == DIP_OP_STENCIL) {
        op->halo(args, &p->halo);
        p->edge = op->edge;
        if (p->halo.left < 0 || p->halo.right < 0 || p->halo.top < 0 || p->halo.bottom < 0)
            return dip_err_set(err, DIP_EINTERNAL, "%s: negative halo", op->name);
    }
    if (kind == DIP_OP_GEOMETRIC) {
        rc = op->out_size(args, *w, *h, &ow, &oh, err);
        if (rc)
            return rc;
        if (ow <= 0 || oh <= 0 || ow > 1 << 20 || oh > 1 << 20)
            return dip_err_set(err, DIP_EINVAL, "%s: output size %dx%d is out of range", op->name,
                               ow, oh);
    }
    if (op->kind == DIP_OP_GLOBAL && role == ROLE_TILE)
        och = op->pre_channels ? op->pre_channels(args, *ch) : *ch;
    else if (op->out_channels)
        och = op->out_channels(args, *ch);
    if (och < 1 || och > DIP_MAX_CHANNELS)
        return dip_err_set(err, DIP_EINVAL, "%s: cannot take %d-channel input", op->name, *ch);
    p->out_w = ow;
    p->out_h = oh;
    p->out_ch = och;
    pl->nops++;
    s->n++;
    s->out_w = ow;
    s->out_h = oh;
    s->out_ch = och;
    *w = ow;
    *h = oh;
    *ch = och;
    return 0;
}

static void *copy_args(const struct dip_op *op, const void *args)
{
    void *a = dip_malloc(op->args_size ? op->args_size : 1);

    if (a != NULL)
        memcpy(a, args, op->args_size);
    return a;
}

int dip_plan_compile(const dip_pipeline *p, int w, int h, int ch, dip_plan **out,
                     struct dip_err *err)
{
    dip_plan *pl;
    int rc = 0;

    *out = NULL;
    if (w <= 0 || h <= 0 || ch < 1 || ch > DIP_MAX_CHANNELS)
        return dip_err_set(err, DIP_EINVAL, "plan: bad input %dx%dx%d", w, h, ch);
    pl = dip_calloc(1, sizeof(*pl));
    if (pl == NULL)
        return DIP_ENOMEM;
    pl->in_w = w;
    pl->in_h = h;
    pl->in_ch = ch;
    for (size_t i = 0; i < dip_pipeline_length(p); i++) {
        const struct dip_op *op = dip_pipeline_op(p, i);
        void *args = copy_args(op, dip_pipeline_args(p, i));
        struct step *s;

        if (args == NULL || pl->nowned == MAX_OPS) {
            dip_free(args);
            rc = args ? dip_err_set(err, DIP_ELIMIT, "pipeline: too many operations") : DIP_ENOMEM;
            goto out;
        }
        pl->owned[pl->nowned++] = args;
        if (op->prepare) {
            rc = op->prepare(args, ch, err);
            if (rc)
                goto out;
        }
        switch (op->kind) {
        case DIP_OP_POINT:
        case DIP_OP_STENCIL:
        case DIP_OP_GEOMETRIC:
            s = open_tiled(pl, w, h, ch);
            rc = add_pop(pl, s, op, args, ROLE_TILE, op->kind, &w, &h, &ch, err);
            break;
        case DIP_OP_STAT: {
            struct pop *g;
            s = open_tiled(pl, w, h, ch);
            g = &pl->globals[pl->nglobals++];
            memset(g, 0, sizeof(*g));
            g->op = op;
            g->args = args;
            g->in_w = g->out_w = w;
            g->in_h = g->out_h = h;
            g->in_ch = ch;
            s->stat = g;
            /* The map opens the next step; it owns args (freed from the ops array). */
            s = &pl->steps[pl->nsteps++];
            memset(s, 0, sizeof(*s));
            s->kind = DIP_STEP_TILED;
            s->first = pl->nops;
            s->in_w = s->out_w = w;
            s->in_h = s->out_h = h;
            s->in_ch = s->out_ch = ch;
            rc = add_pop(pl, s, op, args, ROLE_MAP, DIP_OP_POINT, &w, &h, &ch, err);
            g->out_ch = ch;
            break;
        }
        case DIP_OP_GLOBAL: {
            struct pop *g;
            int gin_ch;
            if (op->tile != NULL) {
                /* The tiled pre-pass (e.g. gradients and non-maximum suppression) fuses with
                 * the ops before it; the global part runs on its output. */
                s = open_tiled(pl, w, h, ch);
                rc = add_pop(pl, s, op, args, ROLE_TILE, DIP_OP_STENCIL, &w, &h, &ch, err);
                if (rc)
                    goto out;
            }
            gin_ch = ch;
            g = &pl->globals[pl->nglobals++];
            memset(g, 0, sizeof(*g));
            g->op = op;
            g->args = args;
            g->in_w = g->out_w = w;
            g->in_h = g->out_h = h;
            g->in_ch = gin_ch;
            g->out_ch = op->out_channels ? op->out_channels(args, gin_ch) : gin_ch;
            if (g->out_ch < 1 || g->out_ch > DIP_MAX_CHANNELS) {
                rc = dip_err_set(err, DIP_EINVAL, "%s: cannot take %d-channel input", op->name,
                                 gin_ch);
                goto out;
            }
            s = &pl->steps[pl->nsteps++];
            memset(s, 0, sizeof(*s));
            s->kind = DIP_STEP_GLOBAL;
            s->global = g;
            s->in_w = s->out_w = w;
            s->in_h = s->out_h = h;
            s->in_ch = gin_ch;
            s->out_ch = ch = g->out_ch;
            break;
        }
        }
        if (rc)
            goto out;
    }
out:
    if (rc) {
        dip_plan_free(pl);
        return rc;
    }
    *out = pl;
    return 0;
}

int dip_plan_check_limits(const dip_plan *pl, const struct dip_limits *lim, struct dip_err *err)
{
    /* Ops in pipeline order are the tiled pops; a global op's output has its input's size. Each
     * op's output is checked, so a resize that grows and a crop that shrinks again still meets
     * the limit at its largest. */
    for (size_t i = 0; i < pl->nops; i++) {
        const struct pop *p = &pl->ops[i];
        struct dip_err e = {0};
        char what[96];

        snprintf(what, sizeof(what), "%s output", p->op->name);
        if (dip_limits_check_dims(lim, what, p->out_w, p->out_h, &e) != 0)
            return dip_err_set(err, DIP_ETOOBIG, "%s", e.msg);
    }
    return 0;
}

void dip_plan_free(dip_plan *pl)
{
    if (pl == NULL)
        return;
    for (size_t i = 0; i < pl->nowned; i++)
        dip_free(pl->owned[i]);
    dip_free(pl);
}

size_t dip_plan_steps(const dip_plan *pl)
{
    return pl->nsteps;
}

void dip_plan_step_info(const dip_plan *pl, size_t si, struct dip_step_info *info)
{
    const struct step *s = &pl->steps[si];

    memset(info, 0, sizeof(*info));
    info->kind = s->kind;
    info->in_w = s->in_w;
    info->in_h = s->in_h;
    info->in_channels = s->in_ch;
    info->out_w = s->out_w;
    info->out_h = s->out_h;
    info->out_channels = s->out_ch;
    info->n_ops = s->kind == DIP_STEP_TILED ? s->n : 1;
    info->stat_size = s->stat ? s->stat->op->stat_size : 0;
    for (size_t i = 0; s->kind == DIP_STEP_TILED && i < s->n; i++) {
        const struct pop *p = &pl->ops[s->first + i];
        info->reach.left += p->halo.left;
        info->reach.right += p->halo.right;
        info->reach.top += p->halo.top;
        info->reach.bottom += p->halo.bottom;
    }
}

void dip_plan_output(const dip_plan *pl, int *w, int *h, int *ch)
{
    if (pl->nsteps == 0) {
        *w = pl->in_w;
        *h = pl->in_h;
        *ch = pl->in_ch;
        return;
    }
    *w = pl->steps[pl->nsteps - 1].out_w;
    *h = pl->steps[pl->nsteps - 1].out_h;
    *ch = pl->steps[pl->nsteps - 1].out_ch;
}

/* ---- Regions ---- */

/* OpenCV's borderInterpolate: where pixel p (outside [0, len)) reads from. */
static int border_index(int p, int len, enum dip_edge edge)
{
    if (p >= 0 && p < len)
        return p;
    if (edge == DIP_EDGE_REPLICATE)
        return p < 0 ? 0 : len - 1;
    if (len == 1)
        return 0;
    do {
        if (p < 0)
            p = -p;
        else
            p = 2 * (len - 1) - p;
    } while (p < 0 || p >= len);
    return p;
}

/* The input interval [*lo, *hi) that padded interval [a, b) reads from an axis of length len. */
static void axis_need(int a, int b, int len, enum dip_edge edge, int *lo, int *hi)
{
    int mn = DIP_MAX(a, 0), mx = DIP_MIN(b, len); /* the part inside the image */

    if (mx <= mn) { /* wholly outside: start from the first mapped pixel */
        mn = border_index(a, len, edge);
        mx = mn + 1;
    }
    for (int p = a; p < 0 && p < b; p++) {
        int q = border_index(p, len, edge);
        mn = DIP_MIN(mn, q);
        mx = DIP_MAX(mx, q + 1);
    }
    for (int p = DIP_MAX(a, len); p < b; p++) {
        int q = border_index(p, len, edge);
        mn = DIP_MIN(mn, q);
        mx = DIP_MAX(mx, q + 1);
    }
    *lo = mn;
    *hi = mx;
}

/* For op p and its output rect r: the rect it reads (pad, may pass the edges) and the rect of
 * its input image that must be computed (need, inside the image). */
static void op_need(const struct pop *p, struct dip_rect r, struct dip_rect *pad,
                    struct dip_rect *need)
{
    int x0, x1, y0, y1;

    switch (p->kind) {
    case DIP_OP_STENCIL:
        *pad = (struct dip_rect){r.x - p->halo.left, r.y - p->halo.top,
                                 r.w + p->halo.left + p->halo.right,
                                 r.h + p->halo.top + p->halo.bottom};
        axis_need(pad->x, pad->x + pad->w, p->in_w, p->edge, &x0, &x1);
        axis_need(pad->y, pad->y + pad->h, p->in_h, p->edge, &y0, &y1);
        *need = (struct dip_rect){x0, y0, x1 - x0, y1 - y0};
        break;
    case DIP_OP_GEOMETRIC:
        p->op->need(p->args, p->in_w, p->in_h, r, need);
        *need = dip_rect_intersect(*need, (struct dip_rect){0, 0, p->in_w, p->in_h});
        if (need->w <= 0 || need->h <= 0) /* an op that needs nothing still gets one pixel */
            *need = (struct dip_rect){DIP_MIN(need->x, p->in_w - 1), DIP_MIN(need->y, p->in_h - 1),
                                      1, 1};
        *pad = *need;
        break;
    default:
        *pad = *need = r;
        break;
    }
}

struct dip_rect dip_plan_need(const dip_plan *pl, size_t si, struct dip_rect out)
{
    const struct step *s = &pl->steps[si];
    struct dip_rect r = out, pad, need;

    for (size_t i = s->n; i-- > 0;) {
        op_need(&pl->ops[s->first + i], r, &pad, &need);
        r = need;
    }
    return r;
}

/* ---- Tiles ---- */

/* Fills the pixels of `buf` (covering rect `pad` of an image w x h) that lie outside the image,
 * from the pixels inside `have` (already computed), per `edge`. */
static void pad_buffer(const struct dip_view *buf, struct dip_rect pad, struct dip_rect have, int w,
                       int h, enum dip_edge edge)
{
    size_t ch = (size_t)buf->channels;
    int hx0 = have.x - pad.x, hx1 = hx0 + have.w; /* buffer columns already valid */

    /* Rows that hold computed pixels: fill the columns left and right of them. */
    for (int y = have.y; y < have.y + have.h; y++) {
        uint8_t *row = buf->data + (size_t)(y - pad.y) * buf->stride;
        /* Only the columns outside [hx0, hx1): a full-width strip has a handful. */
        for (int bx = 0; bx < buf->width; bx++) {
            int x;
            if (bx == DIP_MAX(hx0, 0) && hx1 > bx)
                bx = hx1; /* skip the computed columns */
            if (bx >= buf->width)
                break;
            x = border_index(pad.x + bx, w, edge) - pad.x;
            memcpy(row + (size_t)bx * ch, row + (size_t)x * ch, ch);
        }
    }
    /* Other rows: copy whole rows from the row they reflect to. */
    for (int by = 0; by < buf->height; by++) {
        int y = pad.y + by, sy;
        if (y >= have.y && y < have.y + have.h)
            continue;
        sy = border_index(y, h, edge) - pad.y;
        memcpy(buf->data + (size_t)by * buf->stride, buf->data + (size_t)sy * buf->stride,
               (size_t)buf->width * ch);
    }
}

static struct dip_rect rect_union(struct dip_rect a, struct dip_rect b)
{
    int x0 = DIP_MIN(a.x, b.x), y0 = DIP_MIN(a.y, b.y);
    int x1 = DIP_MAX(a.x + a.w, b.x + b.w), y1 = DIP_MAX(a.y + a.h, b.y + b.h);

    return (struct dip_rect){x0, y0, x1 - x0, y1 - y0};
}

static uint8_t *alloc_view(struct dip_rect r, int ch, struct dip_view *v)
{
    size_t stride = (size_t)r.w * (size_t)ch;
    uint8_t *mem = dip_malloc(stride * (size_t)r.h);

    *v = (struct dip_view){mem, r.w, r.h, ch, stride};
    return mem;
}

int dip_plan_tile(const dip_plan *pl, size_t si, const struct dip_view *in, struct dip_rect in_rect,
                  struct dip_rect out_rect, const struct dip_view *out, void *stat)
{
    const struct step *s = &pl->steps[si];
    struct dip_rect pads[MAX_OPS], needs[MAX_OPS], outs[MAX_OPS];
    uint8_t *mem[MAX_OPS] = {0};
    struct dip_view src, dst;
    struct dip_rect src_rect;
    int rc = 0;

    if (s->n == 0) {
        /* A step that only collects a statistic: the output is the input. */
        struct dip_view sub =
            dip_view_sub(in, (struct dip_rect){out_rect.x - in_rect.x, out_rect.y - in_rect.y,
                                               out_rect.w, out_rect.h});
        if (sub.data != out->data) /* the executor may pass the input itself as output */
            dip_view_copy(&sub, out);
        goto collect;
    }
    /* Backwards: what each op produces (outs), reads (pads) and needs computed (needs). */
    {
        struct dip_rect r = out_rect;
        for (size_t i = s->n; i-- > 0;) {
            outs[i] = r;
            op_need(&pl->ops[s->first + i], r, &pads[i], &needs[i]);
            r = needs[i];
        }
        if (!DIP_ALWAYS(r.x == in_rect.x && r.y == in_rect.y && r.w == in_rect.w &&
                        r.h == in_rect.h))
            return DIP_EINTERNAL;
    }
    /* Forwards. src is the input of op i, covering src_rect (== pads[i] once prepared). */
    src = *in;
    src_rect = in_rect;
    for (size_t i = 0; i < s->n; i++) {
        const struct pop *p = &pl->ops[s->first + i];
        struct dip_tile t;

        /* Make src cover pads[i]: a sub-view when it already does, else a padded copy. */
        if (dip_rect_contains(src_rect, pads[i])) {
            src =
                dip_view_sub(&src, (struct dip_rect){pads[i].x - src_rect.x, pads[i].y - src_rect.y,
                                                     pads[i].w, pads[i].h});
        } else {
            /* The buffer covers the window read (pads) and the pixels it reflects to (needs):
             * with unequal halos a reflection can land outside the window. */
            struct dip_rect u = rect_union(pads[i], needs[i]);
            struct dip_view pv, interior, from;
            uint8_t *m = alloc_view(u, p->in_ch, &pv);
            if (m == NULL) {
                rc = DIP_ENOMEM;
                goto out;
            }
            interior = dip_view_sub(
                &pv, (struct dip_rect){needs[i].x - u.x, needs[i].y - u.y, needs[i].w, needs[i].h});
            from = dip_view_sub(&src,
                                (struct dip_rect){needs[i].x - src_rect.x, needs[i].y - src_rect.y,
                                                  needs[i].w, needs[i].h});
            dip_view_copy(&from, &interior);
            pad_buffer(&pv, u, needs[i], p->in_w, p->in_h, p->edge);
            dip_free(mem[i]);
            mem[i] = m;
            src = dip_view_sub(
                &pv, (struct dip_rect){pads[i].x - u.x, pads[i].y - u.y, pads[i].w, pads[i].h});
        }
        src_rect = pads[i];
        /* The output of the last op goes straight to the caller's view. */
        if (i + 1 == s->n) {
            dst = *out;
        } else {
            dip_free(mem[i + 1]);
            mem[i + 1] = alloc_view(outs[i], p->out_ch, &dst);
            if (mem[i + 1] == NULL) {
                rc = DIP_ENOMEM;
                goto out;
            }
        }
        t = (struct dip_tile){.in = src,
                              .out = dst,
                              .in_rect = src_rect,
                              .out_rect = outs[i],
                              .in_width = p->in_w,
                              .in_height = p->in_h,
                              .out_width = p->out_w,
                              .out_height = p->out_h};
        rc = p->op->tile(p->args, &t);
        if (rc)
            goto out;
        /* The input buffer of op i is no longer needed. */
        dip_free(mem[i]);
        mem[i] = NULL;
        src = dst;
        src_rect = outs[i];
    }
collect:
    if (stat != NULL && s->stat != NULL)
        s->stat->op->stat_tile(s->stat->args, out, stat);
out:
    for (size_t i = 0; i < s->n + 1 && i < MAX_OPS; i++)
        dip_free(mem[i]);
    return rc;
}

void dip_plan_stat_merge(const dip_plan *pl, size_t si, void *acc, const void *partial)
{
    const struct pop *g = pl->steps[si].stat;

    g->op->stat_merge(g->args, acc, partial);
}

int dip_plan_stat_finish(dip_plan *pl, size_t si, const void *acc)
{
    struct pop *g = pl->steps[si].stat;

    /* g->args is shared with the map op that opens step si + 1. */
    return g->op->stat_finish(g->args, acc, g->in_w, g->in_h, g->in_ch);
}

int dip_plan_global(const dip_plan *pl, size_t si, const struct dip_view *in,
                    const struct dip_view *out)
{
    const struct pop *g = pl->steps[si].global;

    return g->op->global(g->args, in, out);
}

void dip_plan_step_op(const dip_plan *pl, size_t si, size_t i, struct dip_plan_op *out)
{
    const struct pop *p = &pl->ops[pl->steps[si].first + i];

    *out = (struct dip_plan_op){.op = p->op,
                                .args = p->args,
                                .kind = p->kind,
                                .is_map = p->role == ROLE_MAP,
                                .halo = p->halo,
                                .edge = p->edge,
                                .in_w = p->in_w,
                                .in_h = p->in_h,
                                .in_ch = p->in_ch,
                                .out_w = p->out_w,
                                .out_h = p->out_h,
                                .out_ch = p->out_ch};
}

const struct dip_op *dip_plan_step_stat(const dip_plan *pl, size_t si, const void **args)
{
    const struct step *s = &pl->steps[si];
    const struct pop *g = s->kind == DIP_STEP_TILED ? s->stat : s->global;

    *args = g ? g->args : NULL;
    return g ? g->op : NULL;
}
