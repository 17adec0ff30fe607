/* SPDX-License-Identifier: MIT */
/* Running a compiled plan on the OpenCL device: the image is uploaded once, every op of every
 * TILED step runs as kernel launches over the whole intermediate image, which stays in device
 * memory from step to step; a statistic is reduced on the device (256-bin histogram) and
 * finished on the host with the op's own stat_finish; a GLOBAL step (canny's hysteresis) runs on
 * the host between an download and an upload. Borders are read in the kernels exactly as the
 * planner pads them, so the bytes equal the CPU path's for any tiling. An op without a kernel or
 * any device error returns an error with the reason: the executor then runs the CPU path.
 * The tables the kernels need are either rebuilt here from the op's parameters with the same
 * formulas as src/ops, or, for point ops that act per value, read back from the op's own CPU
 * code run on a 256-value ramp (so they cannot drift from it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "internal.h"

#define MAX_EVENTS 512

struct run {
    struct ocl_dev *d;
    struct ocl_slot *s;
    cl_event ev[MAX_EVENTS];
    int evkind[MAX_EVENTS]; /* 0 upload, 1 kernel, 2 download */
    int nev;
    char *why;
    size_t whylen;
    int no_memory; /* plan_supported: the image does not fit the device */
};

#ifdef DIP_OCL_TEST_HOOKS
static int g_fail_launches;
static pthread_mutex_t g_hook_mu = PTHREAD_MUTEX_INITIALIZER;

void dip__ocl_fail_launches(int n)
{
    pthread_mutex_lock(&g_hook_mu);
    g_fail_launches = n;
    pthread_mutex_unlock(&g_hook_mu);
}

/* The same from the environment, for tests of the dip command: DIP_TEST_OPENCL_FAIL_LAUNCHES=N. */
static pthread_once_t g_hook_once = PTHREAD_ONCE_INIT;

static void hook_env(void)
{
    const char *v = getenv("DIP_TEST_OPENCL_FAIL_LAUNCHES");

    if (v != NULL && *v)
        g_fail_launches = (int)strtol(v, NULL, 10);
}

static int hook_fail(void)
{
    int f;
    pthread_once(&g_hook_once, hook_env);
    pthread_mutex_lock(&g_hook_mu);
    f = g_fail_launches > 0;
    g_fail_launches -= f;
    pthread_mutex_unlock(&g_hook_mu);
    return f;
}
#else
static int hook_fail(void)
{
    return 0;
}
#endif

static int fail(struct run *r, cl_int e, const char *what)
{
    snprintf(r->why, r->whylen, "%s: %s (%d)", what, dip__ocl_errname(e), (int)e);
    return e == CL_MEM_OBJECT_ALLOCATION_FAILURE || e == CL_OUT_OF_HOST_MEMORY ? DIP_ENOMEM
                                                                               : DIP_EIO;
}

static cl_event *ev_slot(struct run *r, int kind)
{
    if (r->nev == MAX_EVENTS)
        return NULL;
    r->evkind[r->nev] = kind;
    return &r->ev[r->nev++];
}

static cl_kernel kern(struct run *r, enum ocl_kernel k)
{
    cl_int e = CL_SUCCESS;

    if (r->s->k[k] == NULL) {
        r->s->k[k] = clCreateKernel(r->d->prog, dip__ocl_kernel_names[k], &e);
        if (e != CL_SUCCESS) {
            fail(r, e, dip__ocl_kernel_names[k]);
            r->s->k[k] = NULL;
        }
    }
    return r->s->k[k];
}

static int buf_new(struct run *r, size_t bytes, cl_mem *out)
{
    cl_int e = CL_SUCCESS;

    *out = NULL;
    if (bytes == 0)
        bytes = 1;
    if (bytes > r->d->max_alloc)
        return fail(r, CL_MEM_OBJECT_ALLOCATION_FAILURE, "buffer larger than the device allows");
    *out = clCreateBuffer(r->d->ctx, CL_MEM_READ_WRITE, bytes, NULL, &e);
    return e == CL_SUCCESS ? 0 : fail(r, e, "clCreateBuffer");
}

static int buf_const(struct run *r, const void *data, size_t bytes, cl_mem *out)
{
    cl_int e = CL_SUCCESS;

    *out = clCreateBuffer(r->d->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes,
                          (void *)(uintptr_t)data, &e);
    return e == CL_SUCCESS ? 0 : fail(r, e, "clCreateBuffer");
}

static void rel(cl_mem *m)
{
    if (*m)
        clReleaseMemObject(*m);
    *m = NULL;
}

/* Kernel arguments: a list of (size, pointer) set in order. */
struct karg {
    size_t size;
    const void *p;
};
#define KA(x)                                                                                      \
    {                                                                                              \
        sizeof(x), &(x)                                                                            \
    }

static int launch(struct run *r, enum ocl_kernel k, const struct karg *args, size_t nargs, int dims,
                  size_t gx, size_t gy)
{
    cl_kernel kk = kern(r, k);
    size_t g[2] = {gx ? gx : 1, gy ? gy : 1};
    cl_int e;

    if (kk == NULL)
        return DIP_EIO;
    for (size_t i = 0; i < nargs; i++) {
        e = clSetKernelArg(kk, (cl_uint)i, args[i].size, args[i].p);
        if (e != CL_SUCCESS)
            return fail(r, e, dip__ocl_kernel_names[k]);
    }
    if (hook_fail())
        return fail(r, CL_OUT_OF_RESOURCES, "forced kernel failure (test hook)");
    if (dims == 1) {
        e = clEnqueueNDRangeKernel(r->s->q, kk, 1, NULL, g, NULL, 0, NULL, ev_slot(r, 1));
        return e == CL_SUCCESS ? 0 : fail(r, e, dip__ocl_kernel_names[k]);
    }
    /* 2-D kernels run as launches over bands of rows (tiles of the image, about 4 M work items
     * each), so that no single launch of a large image runs into a display driver's watchdog;
     * kernels see absolute coordinates (the global offset). */
    {
        size_t band = DIP_MAX((size_t)1, ((size_t)1 << 22) / g[0]);
        for (size_t y0 = 0; y0 < g[1]; y0 += band) {
            size_t off[2] = {0, y0}, gg[2] = {g[0], DIP_MIN(band, g[1] - y0)};
            e = clEnqueueNDRangeKernel(r->s->q, kk, 2, off, gg, NULL, 0, NULL, ev_slot(r, 1));
            if (e != CL_SUCCESS)
                return fail(r, e, dip__ocl_kernel_names[k]);
        }
    }
    return 0;
}

/* ---- Parameters and tables, from the op's public parameter table ---- */

static double param(const struct dip_op *op, const void *args, const char *name)
{
    const struct dip_param *p = dip_op_param(op, name);
    const char *b = (const char *)args;
    double dv;
    int iv;

    if (p == NULL)
        return 0;
    if (p->type == DIP_PARAM_DOUBLE) {
        memcpy(&dv, b + p->offset, sizeof(dv));
        return dv;
    }
    memcpy(&iv, b + p->offset, sizeof(iv));
    return iv;
}

/* blur.c's gauss_kernel_make and gauss_size_for (OpenCV's getGaussianKernelBitExact): the same
 * double operations in the same order. Returns the kernel size, 0 when none. */
static int gauss_make(int size, double sigma, int *k)
{
    static const int small[4][7] = {
        {256}, {64, 128, 64}, {16, 64, 96, 64, 16}, {8, 28, 56, 72, 56, 28, 8}};
    int n = size > 0 ? size : (int)nearbyint(sigma * 3 * 2 + 1) | 1, n2 = (n - 1) / 2;
    double vals[128], sum = 0, mul1, err = 0, s, scale2;
    int isum = 0;

    if (n < 1 || n > 121 || n % 2 == 0)
        return 0;
    if (sigma <= 0 && n <= 7) {
        memcpy(k, small[n / 2], (size_t)n * sizeof(int));
        return n;
    }
    s = sigma > 0 ? sigma : fma((double)n, 0.15, 0.35);
    scale2 = -0.125 / (s * s);
    for (int i = 0, x = 1 - n; i < n2; i++, x += 2) {
        vals[i] = exp((double)(x * x) * scale2);
        sum += vals[i];
    }
    sum = sum * 2 + 1;
    mul1 = 1 / sum;
    for (int i = 0; i < n2; i++) {
        double adj = vals[i] * mul1 * 256 + err;
        double v = nearbyint(adj);
        err = adj - v;
        if (v < 0 || v > 128)
            return 0;
        k[i] = k[n - 1 - i] = (int)v;
        isum += (int)v;
    }
    if (2 * isum > 256)
        return 0;
    k[n2] = 256 - 2 * isum;
    return n;
}

/* The op's own CPU code on a ramp: pixel v has every channel v. Returns the output pixels
 * (256 x out_ch) in `out`. */
static int ramp(const struct dip_plan_op *po, uint8_t *out)
{
    uint8_t in[256 * DIP_MAX_CHANNELS];
    struct dip_tile t;

    for (int v = 0; v < 256; v++)
        for (int c = 0; c < po->in_ch; c++)
            in[v * po->in_ch + c] = (uint8_t)v;
    t = (struct dip_tile){.in = {in, 256, 1, po->in_ch, (size_t)256 * (size_t)po->in_ch},
                          .out = {out, 256, 1, po->out_ch, (size_t)256 * (size_t)po->out_ch},
                          .in_rect = {0, 0, 256, 1},
                          .out_rect = {0, 0, 256, 1},
                          .in_width = po->in_w,
                          .in_height = po->in_h,
                          .out_width = po->out_w,
                          .out_height = po->out_h};
    return po->op->tile(po->args, &t);
}

/* ---- Which op runs how ---- */

enum how {
    H_NONE,
    H_LUT,      /* per-channel table from the ramp */
    H_GRAY_LUT, /* table of the gray value from the ramp */
    H_YCC_LUT,  /* equalize on colour */
    H_HSV,
    H_SEP, /* box, gaussian, sharpen */
    H_SOBEL,
    H_MEDIAN,
    H_BILATERAL,
    H_QMAP,  /* crop, flip, rotate */
    H_CANNY, /* canny's tiled pass (its hysteresis is a GLOBAL step, on the host) */
    H_RESIZE_HALF,
    H_RESIZE_INTERP,
    H_RESIZE_AREA_FAST,
    H_RESIZE_AREA,
};

/* ---- resize: geometry.c's choice of path and its interpolation tables ---- */

enum { FILTER_AREA, FILTER_LINEAR, FILTER_CUBIC }; /* geometry.c's resize_filters order */

static int area_int_factor(int in, int out)
{
    double scale = 1. / ((double)out / in);
    double is = floor(scale + 0.5);

    return fabs(scale - is) < 2.220446049250313e-16 ? (int)is : 0;
}

static enum how resize_how(const struct dip_plan_op *po, int filter)
{
    int fx2 = area_int_factor(po->in_w, po->out_w), fy2 = area_int_factor(po->in_h, po->out_h);

    if ((filter == FILTER_LINEAR || filter == FILTER_AREA) && fx2 == 2 && fy2 == 2)
        return H_RESIZE_HALF;
    if (filter == FILTER_AREA && po->out_w <= po->in_w && po->out_h <= po->in_h)
        return area_int_factor(po->in_w, po->out_w) && area_int_factor(po->in_h, po->out_h)
                   ? H_RESIZE_AREA_FAST
                   : H_RESIZE_AREA;
    return H_RESIZE_INTERP;
}

/* geometry.c's area_taps and area_max_taps (cv2.resize's INTER_AREA table). */
static int area_taps(int in, int out, int d, int *idx, float *w, int max)
{
    double scale = 1. / ((double)out / in);
    double fsx1 = d * scale, fsx2 = fsx1 + scale;
    double cell = scale < in - fsx1 ? scale : in - fsx1;
    int sx1 = (int)ceil(fsx1), sx2 = (int)floor(fsx2), n = 0;

    sx2 = sx2 < in - 1 ? sx2 : in - 1;
    sx1 = sx1 < sx2 ? sx1 : sx2;
    if (sx1 - fsx1 > 1e-3 && n < max) {
        idx[n] = sx1 - 1;
        w[n++] = (float)((sx1 - fsx1) / cell);
    }
    for (int sx = sx1; sx < sx2 && n < max; sx++) {
        idx[n] = sx;
        w[n++] = (float)(1.0 / cell);
    }
    if (fsx2 - sx2 > 1e-3 && n < max) {
        double part = fsx2 - sx2 < 1. ? fsx2 - sx2 : 1.;
        idx[n] = sx2;
        w[n++] = (float)((part < cell ? part : cell) / cell);
    }
    return n;
}

static int area_max_taps(int in, int out)
{
    return (int)ceil((double)in / out) + 2;
}

static int is(const struct dip_op *op, const char *name)
{
    return strcmp(op->name, name) == 0;
}

static enum how how_of(const struct ocl_dev *d, const struct dip_plan_op *po)
{
    const struct dip_op *op = po->op;

    if (po->kind == DIP_OP_POINT) {
        if (is(op, "gray") || is(op, "threshold") || is(op, "otsu"))
            return H_GRAY_LUT;
        if ((is(op, "hsv") || is(op, "equalize")) && po->in_ch >= 3)
            return is(op, "hsv") ? H_HSV : H_YCC_LUT;
        if ((is(op, "invert") || is(op, "linear") || is(op, "brightness") || is(op, "stretch") ||
             is(op, "hsv") || is(op, "equalize")) &&
            po->in_ch == po->out_ch)
            return H_LUT;
        return H_NONE;
    }
    if (po->kind == DIP_OP_STENCIL && op->kind == DIP_OP_STENCIL) {
        if (is(op, "box") || is(op, "gaussian") || is(op, "sharpen"))
            return H_SEP;
        if (is(op, "sobel"))
            return H_SOBEL;
        if (is(op, "median"))
            return H_MEDIAN;
        if (is(op, "bilateral") && d->exact_div)
            return H_BILATERAL;
    }
    if (po->kind == DIP_OP_STENCIL && op->kind == DIP_OP_GLOBAL && is(op, "canny"))
        return H_CANNY;
    if (po->kind == DIP_OP_GEOMETRIC && is(op, "resize"))
        return resize_how(po, (int)param(op, po->args, "filter"));
    if (po->kind == DIP_OP_GEOMETRIC && (is(op, "crop") || is(op, "flip") || is(op, "rotate")))
        return H_QMAP;
    return H_NONE;
}

/* Histogram mode of a STAT op (kernel hist), -1: none. */
static int hist_mode(const struct dip_op *op)
{
    if (op->stat_size != 256 * sizeof(uint64_t))
        return -1;
    return is(op, "otsu") ? 0 : is(op, "equalize") ? 1 : is(op, "stretch") ? 2 : -1;
}

/* ---- One op: `in` (in_w x in_h x in_ch) to a new buffer *out ---- */

static int run_lut(struct run *r, enum ocl_kernel k, const uint8_t *lut, size_t lutlen, cl_mem in,
                   cl_mem out, int ch, int n)
{
    cl_mem t = NULL;
    int rc = buf_const(r, lut, lutlen, &t);

    if (rc == 0) {
        struct karg a[] = {KA(in), KA(out), KA(t), KA(ch), KA(n)};
        rc = launch(r, k, a, DIP_COUNTOF(a), 1, (size_t)n, 1);
    }
    rel(&t);
    return rc;
}

static int run_point(struct run *r, const struct dip_plan_op *po, enum how how, cl_mem in,
                     cl_mem out)
{
    uint8_t ramped[256 * DIP_MAX_CHANNELS], lut[256 * DIP_MAX_CHANNELS];
    int npix = po->in_w * po->in_h, ch = po->in_ch, rc;

    if (how == H_HSV) {
        int sdiv[256], hdiv[256];
        int dh = (int)param(po->op, po->args, "h"), ds = (int)param(po->op, po->args, "s");
        int dv = (int)param(po->op, po->args, "v");
        cl_mem bs = NULL, bh = NULL;
        /* color.c's hsv_prepare: OpenCV's RGB2HSV_b tables. */
        sdiv[0] = hdiv[0] = 0;
        for (int i = 1; i < 256; i++) {
            sdiv[i] = (int)lrint((255 << 12) / (1. * i));
            hdiv[i] = (int)lrint((180 << 12) / (6. * i));
        }
        rc = buf_const(r, sdiv, sizeof(sdiv), &bs);
        if (rc == 0)
            rc = buf_const(r, hdiv, sizeof(hdiv), &bh);
        if (rc == 0) {
            struct karg a[] = {KA(in),   KA(out), KA(bs), KA(bh), KA(ch),
                               KA(npix), KA(dh),  KA(ds), KA(dv)};
            rc = launch(r, K_HSV, a, DIP_COUNTOF(a), 1, (size_t)npix, 1);
        }
        rel(&bs);
        rel(&bh);
        return rc;
    }
    rc = ramp(po, ramped);
    if (rc) {
        snprintf(r->why, r->whylen, "%s: out of memory building its table", po->op->name);
        return rc;
    }
    for (int c = 0; c < po->out_ch; c++)
        for (int v = 0; v < 256; v++)
            lut[c * 256 + v] = ramped[v * po->out_ch + c];
    switch (how) {
    case H_LUT:
        return run_lut(r, K_LUT_CH, lut, (size_t)256 * (size_t)ch, in, out, ch, npix * ch);
    case H_GRAY_LUT:
        return run_lut(r, K_GRAY_LUT, lut, 256, in, out, ch, npix);
    default:
        return run_lut(r, K_YCC_LUT, lut, 256, in, out, ch, npix);
    }
}

static int run_sep(struct run *r, const struct dip_plan_op *po, cl_mem in, cl_mem out)
{
    int wt[256], k = 0, mode, area = 1, amount_q = 0, thr = 0, rc;
    int w = po->in_w, h = po->in_h, ch = po->in_ch, edge = (int)po->edge;
    cl_mem v = NULL, bw = NULL;

    if (is(po->op, "box")) {
        k = (int)param(po->op, po->args, "size");
        for (int i = 0; i < k; i++)
            wt[i] = 1;
        mode = 1;
        area = k * k;
    } else {
        k = gauss_make((int)param(po->op, po->args, "size"), param(po->op, po->args, "sigma"), wt);
        mode = 0;
        if (is(po->op, "sharpen")) {
            mode = 2;
            amount_q = (int)nearbyint(param(po->op, po->args, "amount") * 256);
            thr = (int)param(po->op, po->args, "threshold");
        }
    }
    if (k < 1 || k > 255 || po->halo.left != k / 2) {
        snprintf(r->why, r->whylen, "%s: kernel tables disagree with the CPU op", po->op->name);
        return DIP_EINTERNAL;
    }
    rc = buf_new(r, (size_t)w * (size_t)h * (size_t)ch * sizeof(cl_uint), &v);
    if (rc == 0)
        rc = buf_const(r, wt, (size_t)k * sizeof(int), &bw);
    if (rc == 0) {
        struct karg a[] = {KA(in), KA(v), KA(bw), KA(k), KA(w), KA(h), KA(ch), KA(edge)};
        rc = launch(r, K_VSUM, a, DIP_COUNTOF(a), 2, (size_t)w * (size_t)ch, (size_t)h);
    }
    if (rc == 0) {
        struct karg a[] = {KA(v),  KA(in),   KA(out),  KA(bw),   KA(k),        KA(w),  KA(h),
                           KA(ch), KA(edge), KA(mode), KA(area), KA(amount_q), KA(thr)};
        rc = launch(r, K_HSUM, a, DIP_COUNTOF(a), 2, (size_t)w, (size_t)h);
    }
    rel(&v);
    rel(&bw);
    return rc;
}

static int run_sobel(struct run *r, const struct dip_plan_op *po, cl_mem in, cl_mem out)
{
    static const int smooth[4][7] = {
        {0, 1, 0}, {1, 2, 1}, {1, 4, 6, 4, 1}, {1, 6, 15, 20, 15, 6, 1}};
    static const int deriv[4][7] = {
        {-1, 0, 1}, {-1, 0, 1}, {-1, -2, 0, 2, 1}, {-1, -4, -5, 0, 5, 4, 1}};
    int size = (int)param(po->op, po->args, "size"), k = size == 1 ? 3 : size;
    int w = po->in_w, h = po->in_h, ch = po->in_ch, npix = w * h, rc = 0;
    cl_mem g = in, bs = NULL, bd = NULL;

    if (size < 1 || size > 7 || size % 2 == 0 || po->halo.left != k / 2) {
        snprintf(r->why, r->whylen, "sobel: kernel tables disagree with the CPU op");
        return DIP_EINTERNAL;
    }
    if (ch > 1) {
        rc = buf_new(r, (size_t)npix, &g);
        if (rc == 0) {
            struct karg a[] = {KA(in), KA(g), KA(ch), KA(npix)};
            rc = launch(r, K_GRAY_PLANE, a, DIP_COUNTOF(a), 1, (size_t)npix, 1);
        }
    }
    if (rc == 0)
        rc = buf_const(r, smooth[size / 2], sizeof(smooth[0]), &bs);
    if (rc == 0)
        rc = buf_const(r, deriv[size / 2], sizeof(deriv[0]), &bd);
    if (rc == 0) {
        struct karg a[] = {KA(g), KA(out), KA(bs), KA(bd), KA(k), KA(w), KA(h)};
        rc = launch(r, K_SOBEL, a, DIP_COUNTOF(a), 2, (size_t)w, (size_t)h);
    }
    if (g != in)
        rel(&g);
    rel(&bs);
    rel(&bd);
    return rc;
}

static int run_median(struct run *r, const struct dip_plan_op *po, cl_mem in, cl_mem out)
{
    int k = (int)param(po->op, po->args, "size"), w = po->in_w, h = po->in_h, ch = po->in_ch;
    struct karg a[] = {KA(in), KA(out), KA(k), KA(w), KA(h), KA(ch)};

    if (po->halo.left != k / 2) {
        snprintf(r->why, r->whylen, "median: size disagrees with the CPU op");
        return DIP_EINTERNAL;
    }
    return launch(r, K_MEDIAN, a, DIP_COUNTOF(a), 2, (size_t)w, (size_t)h);
}

#define BILAT_TAPS 625

static int run_bilateral(struct run *r, const struct dip_plan_op *po, cl_mem in, cl_mem out)
{
    const struct dip_op *op = po->op;
    double sc0 = param(op, po->args, "sigma_color"), ss0 = param(op, po->args, "sigma_space");
    double sc = sc0 > 0 ? sc0 : 1, ss = ss0 > 0 ? ss0 : 1;
    double gc = -0.5 / (sc * sc), gs = -0.5 / (ss * ss);
    int dd = (int)param(op, po->args, "d"), rad = dd > 0 ? dd / 2 : (int)nearbyint(ss * 1.5);
    int w = po->in_w, h = po->in_h, ch = po->in_ch, n = 0, rc;
    int *tdx = NULL, *tdy = NULL;
    float *tw = NULL, cw[256 * 3];
    cl_mem bx = NULL, by = NULL, bw = NULL, bc = NULL;

    if (rad < 1)
        rad = 1;
    if (rad > 12 || po->halo.left != rad) {
        snprintf(r->why, r->whylen, "bilateral: radius disagrees with the CPU op");
        return DIP_EINTERNAL;
    }
    tdx = malloc(BILAT_TAPS * sizeof(int));
    tdy = malloc(BILAT_TAPS * sizeof(int));
    tw = malloc(BILAT_TAPS * sizeof(float));
    if (!tdx || !tdy || !tw) {
        rc = DIP_ENOMEM;
        snprintf(r->why, r->whylen, "out of memory");
        goto out;
    }
    /* blur.c's bilateral_prepare and bilat_taps_make. */
    for (int i = 0; i < 256 * 3; i++)
        cw[i] = (float)exp((double)(i * i) * gc);
    for (int i = -rad; i <= rad; i++)
        for (int j = -rad; j <= rad; j++)
            if (i * i + j * j <= rad * rad) {
                double rr = sqrt((double)(i * i + j * j));
                tdy[n] = i;
                tdx[n] = j;
                tw[n] = (float)exp(rr * rr * gs);
                n++;
            }
    rc = buf_const(r, tdx, (size_t)n * sizeof(int), &bx);
    if (rc == 0)
        rc = buf_const(r, tdy, (size_t)n * sizeof(int), &by);
    if (rc == 0)
        rc = buf_const(r, tw, (size_t)n * sizeof(float), &bw);
    if (rc == 0)
        rc = buf_const(r, cw, sizeof(cw), &bc);
    if (rc == 0) {
        struct karg a[] = {KA(in), KA(out), KA(bx), KA(by), KA(bw),
                           KA(bc), KA(n),   KA(w),  KA(h),  KA(ch)};
        rc = launch(r, K_BILATERAL, a, DIP_COUNTOF(a), 2, (size_t)w, (size_t)h);
    }
out:
    rel(&bx);
    rel(&by);
    rel(&bw);
    rel(&bc);
    free(tdx);
    free(tdy);
    free(tw);
    return rc;
}

/* crop, flip and rotate move pixels by an affine map of integers; the map comes from the op's
 * own need() on single pixels, and is checked on the four corners of the output. */
static int run_qmap(struct run *r, const struct dip_plan_op *po, cl_mem in, cl_mem out)
{
    struct dip_rect p00, p10, p01;
    int iw = po->in_w, ow = po->out_w, oh = po->out_h, ch = po->in_ch;
    int ax, bx, cx, ay, by, cy;

    po->op->need(po->args, po->in_w, po->in_h, (struct dip_rect){0, 0, 1, 1}, &p00);
    po->op->need(po->args, po->in_w, po->in_h, (struct dip_rect){1, 0, 1, 1}, &p10);
    po->op->need(po->args, po->in_w, po->in_h, (struct dip_rect){0, 1, 1, 1}, &p01);
    ax = p10.x - p00.x;
    ay = p10.y - p00.y;
    bx = p01.x - p00.x;
    by = p01.y - p00.y;
    cx = p00.x;
    cy = p00.y;
    for (int k = 0; k < 4; k++) {
        int x = k & 1 ? ow - 1 : 0, y = k & 2 ? oh - 1 : 0;
        struct dip_rect q;
        po->op->need(po->args, po->in_w, po->in_h, (struct dip_rect){x, y, 1, 1}, &q);
        if (q.w != 1 || q.h != 1 || q.x != ax * x + bx * y + cx || q.y != ay * x + by * y + cy ||
            q.x < 0 || q.y < 0 || q.x >= po->in_w || q.y >= po->in_h) {
            snprintf(r->why, r->whylen, "%s: not a pixel map the kernel knows", po->op->name);
            return DIP_EINVAL;
        }
    }
    {
        struct karg a[] = {KA(in), KA(out), KA(iw), KA(ow), KA(oh), KA(ch),
                           KA(ax), KA(bx),  KA(cx), KA(ay), KA(by), KA(cy)};
        return launch(r, K_QMAP, a, DIP_COUNTOF(a), 2, (size_t)ow, (size_t)oh);
    }
}

static int run_canny(struct run *r, const struct dip_plan_op *po, cl_mem in, cl_mem out)
{
    double lo = param(po->op, po->args, "low"), hi = param(po->op, po->args, "high");
    int low = (int)(lo < hi ? lo : hi), high = (int)(lo < hi ? hi : lo); /* canny_prepare */
    int w = po->in_w, h = po->in_h, ch = po->in_ch, rc;
    size_t plane = (size_t)w * (size_t)h * sizeof(cl_int);
    cl_mem gx = NULL, gy = NULL, gm = NULL;

    if (po->halo.left != 2 || po->edge != DIP_EDGE_REPLICATE || po->out_ch != 1) {
        snprintf(r->why, r->whylen, "canny: its tiled pass disagrees with the kernel");
        return DIP_EINTERNAL;
    }
    rc = buf_new(r, plane, &gx);
    if (rc == 0)
        rc = buf_new(r, plane, &gy);
    if (rc == 0)
        rc = buf_new(r, plane, &gm);
    if (rc == 0) {
        struct karg a[] = {KA(in), KA(gx), KA(gy), KA(gm), KA(w), KA(h), KA(ch)};
        rc = launch(r, K_CANNY_GRAD, a, DIP_COUNTOF(a), 2, (size_t)w, (size_t)h);
    }
    if (rc == 0) {
        struct karg a[] = {KA(gx), KA(gy), KA(gm), KA(out), KA(w), KA(h), KA(low), KA(high)};
        rc = launch(r, K_CANNY_NMS, a, DIP_COUNTOF(a), 2, (size_t)w, (size_t)h);
    }
    rel(&gx);
    rel(&gy);
    rel(&gm);
    return rc;
}

static int run_resize_area(struct run *r, const struct dip_plan_op *po, cl_mem in, cl_mem out)
{
    int iw = po->in_w, ow = po->out_w, oh = po->out_h, ch = po->in_ch, rc = 0;
    int mx = area_max_taps(po->in_w, ow), my = area_max_taps(po->in_h, oh);
    int *xofs = calloc((size_t)ow * (size_t)mx, sizeof(int));
    int *yofs = calloc((size_t)oh * (size_t)my, sizeof(int));
    int *xn = calloc((size_t)ow, sizeof(int)), *yn = calloc((size_t)oh, sizeof(int));
    float *xw = calloc((size_t)ow * (size_t)mx, sizeof(float));
    float *yw = calloc((size_t)oh * (size_t)my, sizeof(float));
    cl_mem b[6] = {NULL, NULL, NULL, NULL, NULL, NULL};

    if (!xofs || !yofs || !xn || !yn || !xw || !yw) {
        snprintf(r->why, r->whylen, "out of memory");
        rc = DIP_ENOMEM;
        goto out;
    }
    for (int x = 0; x < ow; x++)
        xn[x] = area_taps(po->in_w, ow, x, xofs + (size_t)x * (size_t)mx,
                          xw + (size_t)x * (size_t)mx, mx);
    for (int y = 0; y < oh; y++)
        yn[y] = area_taps(po->in_h, oh, y, yofs + (size_t)y * (size_t)my,
                          yw + (size_t)y * (size_t)my, my);
    rc = buf_const(r, xofs, (size_t)ow * (size_t)mx * sizeof(int), &b[0]);
    if (rc == 0)
        rc = buf_const(r, xw, (size_t)ow * (size_t)mx * sizeof(float), &b[1]);
    if (rc == 0)
        rc = buf_const(r, xn, (size_t)ow * sizeof(int), &b[2]);
    if (rc == 0)
        rc = buf_const(r, yofs, (size_t)oh * (size_t)my * sizeof(int), &b[3]);
    if (rc == 0)
        rc = buf_const(r, yw, (size_t)oh * (size_t)my * sizeof(float), &b[4]);
    if (rc == 0)
        rc = buf_const(r, yn, (size_t)oh * sizeof(int), &b[5]);
    if (rc == 0) {
        struct karg a[] = {KA(in),   KA(out), KA(b[0]), KA(b[1]), KA(b[2]), KA(b[3]), KA(b[4]),
                           KA(b[5]), KA(iw),  KA(ow),   KA(oh),   KA(ch),   KA(mx),   KA(my)};
        rc = launch(r, K_RESIZE_AREA, a, DIP_COUNTOF(a), 2, (size_t)ow, (size_t)oh);
    }
out:
    for (int i = 0; i < 6; i++)
        rel(&b[i]);
    free(xofs);
    free(yofs);
    free(xn);
    free(yn);
    free(xw);
    free(yw);
    return rc;
}

static int run_resize(struct run *r, const struct dip_plan_op *po, enum how how, cl_mem in,
                      cl_mem out)
{
    int iw = po->in_w, ow = po->out_w, oh = po->out_h, ch = po->in_ch, rc = 0, k = 2;
    int filter = (int)param(po->op, po->args, "filter");
    int *xofs = NULL, *yofs = NULL;
    short *xw = NULL, *yw = NULL;
    cl_mem b[4] = {NULL, NULL, NULL, NULL};

    if (how == H_RESIZE_HALF) {
        struct karg a[] = {KA(in), KA(out), KA(iw), KA(ow), KA(oh), KA(ch)};
        return launch(r, K_RESIZE_HALF, a, DIP_COUNTOF(a), 2, (size_t)ow, (size_t)oh);
    }
    if (how == H_RESIZE_AREA_FAST) {
        int fx = area_int_factor(po->in_w, ow), fy = area_int_factor(po->in_h, oh);
        float inv = 1.f / (float)(fx * fy);
        struct karg a[] = {KA(in), KA(out), KA(iw), KA(ow), KA(oh),
                           KA(ch), KA(fx),  KA(fy), KA(inv)};
        return launch(r, K_RESIZE_AREA_FAST, a, DIP_COUNTOF(a), 2, (size_t)ow, (size_t)oh);
    }
    if (how == H_RESIZE_AREA)
        return run_resize_area(r, po, in, out);
    xofs = calloc((size_t)ow * 4, sizeof(int));
    xw = calloc((size_t)ow * 4, sizeof(short));
    yofs = calloc((size_t)oh * 4, sizeof(int));
    yw = calloc((size_t)oh * 4, sizeof(short));
    if (!xofs || !xw || !yofs || !yw) {
        snprintf(r->why, r->whylen, "out of memory");
        rc = DIP_ENOMEM;
        goto out;
    }
    for (int x = 0; x < ow; x++)
        k = dip_resize_taps(filter, po->in_w, ow, x, xofs + 4 * x, xw + 4 * x);
    for (int y = 0; y < oh; y++)
        dip_resize_taps(filter, po->in_h, oh, y, yofs + 4 * y, yw + 4 * y);
    rc = buf_const(r, xofs, (size_t)ow * 4 * sizeof(int), &b[0]);
    if (rc == 0)
        rc = buf_const(r, xw, (size_t)ow * 4 * sizeof(short), &b[1]);
    if (rc == 0)
        rc = buf_const(r, yofs, (size_t)oh * 4 * sizeof(int), &b[2]);
    if (rc == 0)
        rc = buf_const(r, yw, (size_t)oh * 4 * sizeof(short), &b[3]);
    if (rc == 0) {
        struct karg a[] = {KA(in), KA(out), KA(b[0]), KA(b[1]), KA(b[2]), KA(b[3]),
                           KA(iw), KA(ow),  KA(oh),   KA(ch),   KA(k)};
        rc = launch(r, K_RESIZE_INTERP, a, DIP_COUNTOF(a), 2, (size_t)ow, (size_t)oh);
    }
out:
    for (int i = 0; i < 4; i++)
        rel(&b[i]);
    free(xofs);
    free(xw);
    free(yofs);
    free(yw);
    return rc;
}

static int run_op(struct run *r, const struct dip_plan_op *po, cl_mem in, cl_mem *out)
{
    enum how how = how_of(r->d, po);
    int rc;

    rc = buf_new(r, (size_t)po->out_w * (size_t)po->out_h * (size_t)po->out_ch, out);
    if (rc)
        return rc;
    switch (how) {
    case H_LUT:
    case H_GRAY_LUT:
    case H_YCC_LUT:
    case H_HSV:
        return run_point(r, po, how, in, *out);
    case H_SEP:
        return run_sep(r, po, in, *out);
    case H_SOBEL:
        return run_sobel(r, po, in, *out);
    case H_MEDIAN:
        return run_median(r, po, in, *out);
    case H_BILATERAL:
        return run_bilateral(r, po, in, *out);
    case H_QMAP:
        return run_qmap(r, po, in, *out);
    case H_CANNY:
        return run_canny(r, po, in, *out);
    case H_RESIZE_HALF:
    case H_RESIZE_INTERP:
    case H_RESIZE_AREA_FAST:
    case H_RESIZE_AREA:
        return run_resize(r, po, how, in, *out);
    default:
        snprintf(r->why, r->whylen, "%s has no OpenCL kernel", po->op->name);
        return DIP_EINVAL;
    }
}

/* The statistic of step s over `cur` (w x h x ch), finished into the plan. */
static int run_stat(struct run *r, dip_plan *plan, size_t s, const struct dip_op *op, cl_mem cur,
                    int w, int h, int ch)
{
    cl_uint counts[256] = {0};
    uint64_t acc[256];
    int npix = w * h, mode = hist_mode(op), rc;
    cl_mem bh = NULL;
    cl_int e;

    rc = buf_const(r, counts, sizeof(counts), &bh);
    if (rc == 0) {
        struct karg a[] = {KA(cur), KA(bh), KA(ch), KA(npix), KA(mode)};
        /* Up to 1024 work-groups of 64, each counting in local memory about 1024 pixels or
         * more, so that a GPU has enough groups in flight and the global adds stay few. */
        size_t groups = (size_t)DIP_CLAMP((npix + 1023) / 1024, 1, 1024);
        cl_kernel kk = kern(r, K_HIST);
        size_t g = groups * 64, l = 64;
        rc = kk ? 0 : DIP_EIO;
        for (size_t i = 0; rc == 0 && i < DIP_COUNTOF(a); i++) {
            e = clSetKernelArg(kk, (cl_uint)i, a[i].size, a[i].p);
            if (e != CL_SUCCESS)
                rc = fail(r, e, "hist");
        }
        if (rc == 0 && hook_fail())
            rc = fail(r, CL_OUT_OF_RESOURCES, "forced kernel failure (test hook)");
        if (rc == 0) {
            e = clEnqueueNDRangeKernel(r->s->q, kk, 1, NULL, &g, &l, 0, NULL, ev_slot(r, 1));
            if (e != CL_SUCCESS)
                rc = fail(r, e, "hist");
        }
    }
    if (rc == 0) {
        e = clEnqueueReadBuffer(r->s->q, bh, CL_TRUE, 0, sizeof(counts), counts, 0, NULL,
                                ev_slot(r, 2));
        if (e != CL_SUCCESS)
            rc = fail(r, e, "reading the histogram");
    }
    rel(&bh);
    if (rc)
        return rc;
    for (int i = 0; i < 256; i++)
        acc[i] = counts[i];
    rc = dip_plan_stat_finish(plan, s, acc);
    if (rc)
        snprintf(r->why, r->whylen, "%s: finishing the statistic failed", op->name);
    return rc;
}

/* Every op of the plan has a kernel (or runs on the host: GLOBAL steps); else why says which. */
static int plan_supported(struct run *r, const dip_plan *plan)
{
    for (size_t s = 0; s < dip_plan_steps(plan); s++) {
        struct dip_step_info si;
        const void *sargs;
        const struct dip_op *sop;
        dip_plan_step_info(plan, s, &si);
        if (si.kind != DIP_STEP_TILED)
            continue;
        for (size_t i = 0; i < si.n_ops; i++) {
            struct dip_plan_op po;
            dip_plan_step_op(plan, s, i, &po);
            /* Kernels index bytes with 32-bit ints. */
            if ((uint64_t)po.in_w * (uint64_t)po.in_h * (uint64_t)po.in_ch > INT32_MAX ||
                (uint64_t)po.out_w * (uint64_t)po.out_h * (uint64_t)po.out_ch > INT32_MAX) {
                snprintf(r->why, r->whylen, "%s: image too large for the kernels", po.op->name);
                return 0;
            }
            /* Device memory at the op's peak: its input, its output and its scratch (a 32-bit
             * plane per value for the separable passes, three for canny). */
            {
                uint64_t in = (uint64_t)po.in_w * (uint64_t)po.in_h * (uint64_t)po.in_ch;
                uint64_t out = (uint64_t)po.out_w * (uint64_t)po.out_h * (uint64_t)po.out_ch;
                uint64_t scratch = 4 * in * (uint64_t)(is(po.op, "canny") ? 3 : 1);
                if (in + out + scratch > r->d->global_mem) {
                    snprintf(r->why, r->whylen,
                             "%s: the image needs %llu MiB of device memory, the device has "
                             "%llu MiB",
                             po.op->name, (unsigned long long)((in + out + scratch) >> 20),
                             (unsigned long long)(r->d->global_mem >> 20));
                    r->no_memory = 1;
                    return 0;
                }
            }
            if (how_of(r->d, &po) == H_NONE) {
                snprintf(r->why, r->whylen, "%s%s has no OpenCL kernel%s", po.op->name,
                         po.op->kind == DIP_OP_GLOBAL ? "'s tiled pass" : "",
                         is(po.op, "bilateral") ? " on a device without correctly rounded "
                                                  "division"
                                                : "");
                return 0;
            }
        }
        sop = dip_plan_step_stat(plan, s, &sargs);
        if (sop && hist_mode(sop) < 0) {
            snprintf(r->why, r->whylen, "%s's statistic has no OpenCL kernel", sop->name);
            return 0;
        }
    }
    return 1;
}

static double ev_seconds(cl_event e)
{
    cl_ulong a = 0, b = 0;

    if (clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_START, sizeof(a), &a, NULL) != CL_SUCCESS ||
        clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_END, sizeof(b), &b, NULL) != CL_SUCCESS)
        return 0;
    return b > a ? (double)(b - a) * 1e-9 : 0;
}

int dip__ocl_run(dip_plan *plan, const dip_image *in, volatile int *cancel, dip_image **out,
                 char *why, size_t whylen)
{
    struct run r = {.why = why, .whylen = whylen};
    dip_image *res = NULL, *host = NULL, *host2 = NULL;
    cl_mem cur = NULL, next = NULL;
    int w = dip_image_width(in), h = dip_image_height(in), ch = dip_image_channels(in);
    double t[3] = {0, 0, 0};
    int rc = 0;
    cl_int e;

    *out = NULL;
    why[0] = '\0';
    r.d = dip__ocl_dev(1, why, whylen);
    if (r.d == NULL || !plan_supported(&r, plan)) {
        dip__ocl_times_add(0, 0, 0, 1);
        return r.d == NULL ? DIP_ENOTFOUND : r.no_memory ? DIP_ENOMEM : DIP_EINVAL;
    }
    r.s = dip__ocl_slot_get(r.d);
    /* Upload (non-blocking: the queue orders it before the first kernel). */
    {
        struct dip_view v = dip_image_view(in);
        size_t bytes = (size_t)w * (size_t)h * (size_t)ch;
        rc = buf_new(&r, bytes, &cur);
        if (rc == 0) {
            e = clEnqueueWriteBuffer(r.s->q, cur, CL_FALSE, 0, bytes, v.data, 0, NULL,
                                     ev_slot(&r, 0));
            if (e != CL_SUCCESS)
                rc = fail(&r, e, "uploading the image");
        }
    }
    for (size_t s = 0; rc == 0 && s < dip_plan_steps(plan); s++) {
        struct dip_step_info si;
        const void *sargs;
        const struct dip_op *sop;

        if (cancel && *cancel) {
            rc = DIP_ECANCELED;
            break;
        }
        dip_plan_step_info(plan, s, &si);
        if (si.kind == DIP_STEP_GLOBAL) {
            /* On the host: download, run, upload. */
            struct dip_view vi, vo;
            size_t ib = (size_t)si.in_w * (size_t)si.in_h * (size_t)si.in_channels;
            size_t ob = (size_t)si.out_w * (size_t)si.out_h * (size_t)si.out_channels;
            rc = dip_image_new(si.in_w, si.in_h, si.in_channels, &host);
            if (rc == 0)
                rc = dip_image_new(si.out_w, si.out_h, si.out_channels, &host2);
            if (rc) {
                snprintf(why, whylen, "out of memory");
                break;
            }
            vi = dip_image_view(host);
            vo = dip_image_view(host2);
            e = clEnqueueReadBuffer(r.s->q, cur, CL_TRUE, 0, ib, vi.data, 0, NULL, ev_slot(&r, 2));
            if (e != CL_SUCCESS) {
                rc = fail(&r, e, "downloading for a host step");
                break;
            }
            rc = dip_plan_global(plan, s, &vi, &vo);
            if (rc) {
                snprintf(why, whylen, "host step failed");
                break;
            }
            rc = buf_new(&r, ob, &next);
            if (rc)
                break;
            e = clEnqueueWriteBuffer(r.s->q, next, CL_TRUE, 0, ob, vo.data, 0, NULL,
                                     ev_slot(&r, 0));
            if (e != CL_SUCCESS) {
                rc = fail(&r, e, "uploading after a host step");
                break;
            }
            dip_image_unref(host);
            dip_image_unref(host2);
            host = host2 = NULL;
            rel(&cur);
            cur = next;
            next = NULL;
            continue;
        }
        for (size_t i = 0; rc == 0 && i < si.n_ops; i++) {
            struct dip_plan_op po;
            dip_plan_step_op(plan, s, i, &po);
            rc = run_op(&r, &po, cur, &next);
            if (rc == 0) {
                rel(&cur);
                cur = next;
                next = NULL;
            }
        }
        sop = dip_plan_step_stat(plan, s, &sargs);
        if (rc == 0 && sop)
            rc = run_stat(&r, plan, s, sop, cur, si.out_w, si.out_h, si.out_channels);
    }
    if (rc == 0) {
        int ow, oh, och;
        dip_plan_output(plan, &ow, &oh, &och);
        rc = dip_image_new(ow, oh, och, &res);
        if (rc) {
            snprintf(why, whylen, "out of memory");
        } else {
            struct dip_view v = dip_image_view(res);
            e = clEnqueueReadBuffer(r.s->q, cur, CL_TRUE, 0, (size_t)ow * (size_t)oh * (size_t)och,
                                    v.data, 0, NULL, ev_slot(&r, 2));
            if (e != CL_SUCCESS)
                rc = fail(&r, e, "downloading the result");
        }
    }
    /* Wait for everything (also on failure: no buffer is released under a running kernel). */
    e = clFinish(r.s->q);
    if (rc == 0 && e != CL_SUCCESS)
        rc = fail(&r, e, "running the kernels");
    for (int i = 0; i < r.nev; i++) {
        if (r.ev[i] == NULL)
            continue;
        t[r.evkind[i]] += ev_seconds(r.ev[i]);
        clReleaseEvent(r.ev[i]);
    }
    dip__ocl_times_add(t[0], t[1], t[2], rc != 0 && rc != DIP_ECANCELED);
    rel(&cur);
    rel(&next);
    dip__ocl_slot_put(r.d, r.s);
    dip_image_unref(host);
    dip_image_unref(host2);
    if (rc) {
        dip_image_unref(res);
        return rc;
    }
    *out = res;
    return 0;
}
