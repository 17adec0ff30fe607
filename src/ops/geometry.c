/* SPDX-License-Identifier: MIT */
/* Geometric operations: crop, flip, rotate by quarter turns, and resize (area, bilinear,
 * bicubic). Each declares the input rectangle an output rectangle needs (need()), and computes an
 * output pixel from the output coordinate alone: resize's taps and weights are functions of the
 * output coordinate and the two image sizes, never of the tile, so any tiling gives the same
 * bytes. Resize follows OpenCV's cv2.resize coefficient formulas and fixed-point arithmetic. */
#include <math.h>
#include <string.h>

#include "kernel.h"

/* Copies `w` pixels of `ch` channels from s (stepping `step` bytes per pixel) to d. */
static void copy_strided(uint8_t *d, const uint8_t *s, ptrdiff_t step, int w, int ch)
{
    switch (ch) {
    case 1:
        for (int i = 0; i < w; i++, s += step)
            d[i] = s[0];
        break;
    case 2:
        for (int i = 0; i < w; i++, s += step)
            memcpy(d + 2 * i, s, 2);
        break;
    case 3:
        for (int i = 0; i < w; i++, s += step)
            memcpy(d + 3 * i, s, 3);
        break;
    default:
        for (int i = 0; i < w; i++, s += step)
            memcpy(d + 4 * i, s, 4);
        break;
    }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(DIP_NO_CLONES)
#include <immintrin.h>
#define HAVE_GEOMETRY_AVX2 1

/* A mirrored row: output pixel i is the pixel `s - i * ch` (s is the rightmost input pixel of
 * the run), for as many pixels as full vectors allow without touching a byte outside the w
 * input and output pixels. Byte shuffles only: the same bytes as copy_strided. Returns how many
 * pixels were done. */
__attribute__((target("avx2"))) static int mirror_avx2(uint8_t *d, const uint8_t *s, int w, int ch)
{
    const uint8_t *first = s - (ptrdiff_t)(w - 1) * ch; /* leftmost input pixel */
    int x = 0;

    if (ch == 3) {
        /* 5 pixels (15 bytes) a round, loaded from the byte before them and stored as 16 bytes:
         * stop while 6 pixels remain. */
        const __m128i rev3 = _mm_setr_epi8(13, 14, 15, 10, 11, 12, 7, 8, 9, 4, 5, 6, 1, 2, 3, -1);
        for (; x + 6 <= w; x += 5) {
            __m128i v = _mm_loadu_si128(
                (const __m128i *)(const void *)(first + (ptrdiff_t)(w - 5 - x) * 3 - 1));
            _mm_storeu_si128((__m128i *)(void *)(d + (size_t)x * 3), _mm_shuffle_epi8(v, rev3));
        }
        return x;
    }
    {
        const __m256i rev1 = _mm256_setr_epi8(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
                                              15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        const __m256i rev2 = _mm256_setr_epi8(14, 15, 12, 13, 10, 11, 8, 9, 6, 7, 4, 5, 2, 3, 0, 1,
                                              14, 15, 12, 13, 10, 11, 8, 9, 6, 7, 4, 5, 2, 3, 0, 1);
        const __m256i rev4 = _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0);
        int per = 32 / ch; /* pixels a round */
        for (; x + per <= w; x += per) {
            __m256i v = _mm256_loadu_si256(
                (const __m256i *)(const void *)(first + (ptrdiff_t)(w - per - x) * ch));
            if (ch == 4) {
                v = _mm256_permutevar8x32_epi32(v, rev4);
            } else {
                v = _mm256_shuffle_epi8(v, ch == 1 ? rev1 : rev2);
                v = _mm256_permute2x128_si256(v, v, 0x01);
            }
            _mm256_storeu_si256((__m256i *)(void *)(d + (size_t)x * (size_t)ch), v);
        }
    }
    return x;
}
#endif

/* Output (ox, oy) takes input (ix, iy) = (ax*ox + bx*oy + cx, ay*ox + by*oy + cy), with each of
 * ax, bx, ay, by in {-1, 0, 1}: flips and quarter turns. Blocked so that transposes stay in
 * cache. */
struct qmap {
    int ax, bx, cx, ay, by, cy;
};

static int qmap_tile(const struct qmap *m, const struct dip_tile *t)
{
    int ch = t->out.channels;
    ptrdiff_t step = (ptrdiff_t)m->ax * ch + (ptrdiff_t)m->ay * (ptrdiff_t)t->in.stride;
    int bh = m->ax == 0 ? 16 : t->out.height; /* transposes: 16-row bands */

    for (int y0 = 0; y0 < t->out.height; y0 += bh) {
        int y1 = y0 + bh < t->out.height ? y0 + bh : t->out.height;
        int bw = m->ax == 0 ? 256 : t->out.width;
        for (int x0 = 0; x0 < t->out.width; x0 += bw) {
            int n = x0 + bw < t->out.width ? bw : t->out.width - x0;
            for (int y = y0; y < y1; y++) {
                int ox = t->out_rect.x + x0, oy = t->out_rect.y + y;
                int ix = m->ax * ox + m->bx * oy + m->cx - t->in_rect.x;
                int iy = m->ay * ox + m->by * oy + m->cy - t->in_rect.y;
                const uint8_t *s = t->in.data + (size_t)iy * t->in.stride + (size_t)ix * (size_t)ch;
                uint8_t *d = t->out.data + (size_t)y * t->out.stride + (size_t)x0 * (size_t)ch;
                if (step == ch) { /* crop, vertical flip: whole rows */
                    memcpy(d, s, (size_t)n * (size_t)ch);
                } else {
                    int done = 0;
#ifdef HAVE_GEOMETRY_AVX2
                    /* horizontal flip, rotate 180: a mirrored row */
                    if (step == -ch && __builtin_cpu_supports("avx2"))
                        done = mirror_avx2(d, s, n, ch);
#endif
                    copy_strided(d + (size_t)done * (size_t)ch, s + step * done, step, n - done,
                                 ch);
                }
            }
        }
    }
    return 0;
}

/* The input rect covering qmap(out), from its two corners. */
static void qmap_need(const struct qmap *m, struct dip_rect out, struct dip_rect *in)
{
    int x0 = m->ax * out.x + m->bx * out.y + m->cx;
    int y0 = m->ay * out.x + m->by * out.y + m->cy;
    int x1 = m->ax * (out.x + out.w - 1) + m->bx * (out.y + out.h - 1) + m->cx;
    int y1 = m->ay * (out.x + out.w - 1) + m->by * (out.y + out.h - 1) + m->cy;

    in->x = x0 < x1 ? x0 : x1;
    in->y = y0 < y1 ? y0 : y1;
    in->w = (x0 < x1 ? x1 - x0 : x0 - x1) + 1;
    in->h = (y0 < y1 ? y1 - y0 : y0 - y1) + 1;
}

/* ---- crop ---- */

struct crop_args {
    int x, y, width, height;
};

static const struct dip_param crop_params[] = {
    DIP_PARAM_INT(struct crop_args, x, 0, 1000000, 0, "Left edge of the kept rectangle"),
    DIP_PARAM_INT(struct crop_args, y, 0, 1000000, 0, "Top edge of the kept rectangle"),
    DIP_PARAM_INT(struct crop_args, width, 0, 1000000, 0, "Width kept; 0 = to the right edge"),
    DIP_PARAM_INT(struct crop_args, height, 0, 1000000, 0, "Height kept; 0 = to the bottom edge"),
};

static int crop_out_size(const void *args, int in_w, int in_h, int *out_w, int *out_h,
                         struct dip_err *err)
{
    const struct crop_args *a = args;

    if (a->x >= in_w)
        return dip_err_set(err, DIP_EINVAL, "crop: x=%d is outside the image (width %d)", a->x,
                           in_w);
    if (a->y >= in_h)
        return dip_err_set(err, DIP_EINVAL, "crop: y=%d is outside the image (height %d)", a->y,
                           in_h);
    if (a->width > in_w - a->x)
        return dip_err_set(err, DIP_EINVAL,
                           "crop: width=%d at x=%d passes the right edge (image width %d)",
                           a->width, a->x, in_w);
    if (a->height > in_h - a->y)
        return dip_err_set(err, DIP_EINVAL,
                           "crop: height=%d at y=%d passes the bottom edge (image height %d)",
                           a->height, a->y, in_h);
    *out_w = a->width ? a->width : in_w - a->x;
    *out_h = a->height ? a->height : in_h - a->y;
    return 0;
}

static void crop_need(const void *args, int in_w, int in_h, struct dip_rect out,
                      struct dip_rect *in)
{
    const struct crop_args *a = args;

    (void)in_w;
    (void)in_h;
    *in = (struct dip_rect){out.x + a->x, out.y + a->y, out.w, out.h};
}

static int crop_tile(const void *args, const struct dip_tile *t)
{
    const struct crop_args *a = args;
    struct qmap m = {1, 0, a->x, 0, 1, a->y};

    return qmap_tile(&m, t);
}

const struct dip_op dip_op_crop = {
    .name = "crop",
    .version = 1,
    .summary = "Keep a rectangle: x, y, width, height (0 = to the edge)",
    .doc = "out = in[y:y+height, x:x+width] (numpy slicing; identical). width or height 0 "
           "extends to the right or bottom edge. A rectangle not inside the image is an error "
           "naming the field (DIP_EINVAL), never a silent clip.",
    .kind = DIP_OP_GEOMETRIC,
    .args_size = sizeof(struct crop_args),
    .params = crop_params,
    .n_params = DIP_COUNTOF(crop_params),
    .out_size = crop_out_size,
    .need = crop_need,
    .tile = crop_tile,
};

/* ---- flip ---- */

static const char *const flip_axes[] = {"h", "v", "both", NULL};

struct flip_args {
    int axis;
};

static const struct dip_param flip_params[] = {
    DIP_PARAM_ENUM(struct flip_args, axis, flip_axes, 0,
                   "h: mirror left-right; v: upside down; both: both (a half turn)"),
};

static int same_size(const void *args, int in_w, int in_h, int *out_w, int *out_h,
                     struct dip_err *err)
{
    (void)args;
    (void)err;
    *out_w = in_w;
    *out_h = in_h;
    return 0;
}

static struct qmap flip_map(const struct flip_args *a, int w, int h)
{
    struct qmap m = {1, 0, 0, 0, 1, 0};

    if (a->axis != 1) /* h or both */
        m = (struct qmap){-1, 0, w - 1, 0, m.by, m.cy};
    if (a->axis != 0) /* v or both */
        m = (struct qmap){m.ax, 0, m.cx, 0, -1, h - 1};
    return m;
}

static void flip_need(const void *args, int in_w, int in_h, struct dip_rect out,
                      struct dip_rect *in)
{
    struct qmap m = flip_map(args, in_w, in_h);

    qmap_need(&m, out, in);
}

static int flip_tile(const void *args, const struct dip_tile *t)
{
    struct qmap m = flip_map(args, t->in_width, t->in_height);

    return qmap_tile(&m, t);
}

const struct dip_op dip_op_flip = {
    .name = "flip",
    .version = 1,
    .summary = "Mirror the image: h (left-right), v (upside down) or both",
    .doc = "axis=h is cv2.flip(img, 1), axis=v is cv2.flip(img, 0), axis=both is "
           "cv2.flip(img, -1): identical.",
    .kind = DIP_OP_GEOMETRIC,
    .args_size = sizeof(struct flip_args),
    .params = flip_params,
    .n_params = DIP_COUNTOF(flip_params),
    .out_size = same_size,
    .need = flip_need,
    .tile = flip_tile,
};

/* ---- rotate ---- */

static const char *const rotate_angles[] = {"90", "180", "270", NULL};

struct rotate_args {
    int angle;
};

static const struct dip_param rotate_params[] = {
    DIP_PARAM_ENUM(struct rotate_args, angle, rotate_angles, 0, "Clockwise quarter turns"),
};

static int rotate_out_size(const void *args, int in_w, int in_h, int *out_w, int *out_h,
                           struct dip_err *err)
{
    const struct rotate_args *a = args;

    (void)err;
    *out_w = a->angle == 1 ? in_w : in_h;
    *out_h = a->angle == 1 ? in_h : in_w;
    return 0;
}

static struct qmap rotate_map(const struct rotate_args *a, int w, int h)
{
    switch (a->angle) {
    case 0: /* 90 clockwise: out(x, y) = in(y, h-1-x) */
        return (struct qmap){0, 1, 0, -1, 0, h - 1};
    case 1:
        return (struct qmap){-1, 0, w - 1, 0, -1, h - 1};
    default: /* 270 clockwise: out(x, y) = in(w-1-y, x) */
        return (struct qmap){0, -1, w - 1, 1, 0, 0};
    }
}

static void rotate_need(const void *args, int in_w, int in_h, struct dip_rect out,
                        struct dip_rect *in)
{
    struct qmap m = rotate_map(args, in_w, in_h);

    qmap_need(&m, out, in);
}

static int rotate_tile(const void *args, const struct dip_tile *t)
{
    struct qmap m = rotate_map(args, t->in_width, t->in_height);

    return qmap_tile(&m, t);
}

const struct dip_op dip_op_rotate = {
    .name = "rotate",
    .version = 1,
    .summary = "Rotate clockwise by 90, 180 or 270 degrees",
    .doc = "angle=90 is cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE), 180 is cv2.ROTATE_180, 270 is "
           "cv2.ROTATE_90_COUNTERCLOCKWISE: identical.",
    .kind = DIP_OP_GEOMETRIC,
    .args_size = sizeof(struct rotate_args),
    .params = rotate_params,
    .n_params = DIP_COUNTOF(rotate_params),
    .out_size = rotate_out_size,
    .need = rotate_need,
    .tile = rotate_tile,
};

/* ---- resize ---- */

enum { FILTER_AREA, FILTER_LINEAR, FILTER_CUBIC };
static const char *const resize_filters[] = {"area", "linear", "cubic", NULL};

struct resize_args {
    int width, height;
    double scale;
    int filter;
};

static const struct dip_param resize_params[] = {
    DIP_PARAM_INT(struct resize_args, width, 0, 1000000, 0,
                  "Output width; 0 = from height (keeping the aspect) or scale"),
    DIP_PARAM_INT(struct resize_args, height, 0, 1000000, 0,
                  "Output height; 0 = from width (keeping the aspect) or scale"),
    DIP_PARAM_DOUBLE(struct resize_args, scale, 0, 64, 0.5,
                     "Factor for both sides, used when width and height are both 0"),
    DIP_PARAM_ENUM(struct resize_args, filter, resize_filters, FILTER_LINEAR,
                   "area (best for shrinking), linear (bilinear) or cubic (bicubic)"),
};

static int resize_prepare(void *args, int in_channels, struct dip_err *err)
{
    const struct resize_args *a = args;

    (void)in_channels;
    if (a->width == 0 && a->height == 0 && a->scale == 0)
        return dip_err_set(err, DIP_EINVAL, "resize: scale=0 needs width or height");
    return 0;
}

#define RESIZE_MAX_SIDE 1000000

static int resize_out_size(const void *args, int in_w, int in_h, int *out_w, int *out_h,
                           struct dip_err *err)
{
    const struct resize_args *a = args;
    double w, h;

    if (a->width == 0 && a->height == 0) {
        w = floor(in_w * a->scale + 0.5);
        h = floor(in_h * a->scale + 0.5);
    } else {
        w = a->width ? a->width : floor((double)in_w * a->height / in_h + 0.5);
        h = a->height ? a->height : floor((double)in_h * a->width / in_w + 0.5);
    }
    /* A derived side never rounds to nothing. */
    w = w < 1 ? 1 : w;
    h = h < 1 ? 1 : h;
    if (w > RESIZE_MAX_SIDE || h > RESIZE_MAX_SIDE)
        return dip_err_set(err, DIP_EINVAL, "resize: output %.0fx%.0f is larger than %d a side", w,
                           h, RESIZE_MAX_SIDE);
    *out_w = (int)w;
    *out_h = (int)h;
    return 0;
}

/* Which path an axis pair takes, as cv2.resize decides it. */
static int area_downscale(int filter, int in_w, int in_h, int out_w, int out_h)
{
    return filter == FILTER_AREA && out_w <= in_w && out_h <= in_h;
}

#define COEF_BITS  11
#define COEF_SCALE (1 << COEF_BITS)
#define MAX_TAPS   4

static short round_coef(float c)
{
    long r = lrintf(c * COEF_SCALE);
    return (short)(r < -32768 ? -32768 : r > 32767 ? 32767 : r);
}

/* Taps and fixed-point weights of output coordinate d along an axis of `in` -> `out` pixels, for
 * linear, cubic, and area when upscaling (cv2.resize's generic path). Indices clamped inside.
 * Also the OpenCL backend's (dip_resize_taps), so both compute the same coefficients. */
int dip_resize_taps(int filter, int in, int out, int d, int *idx, short *w)
{
    double inv_scale = (double)out / in, scale = 1. / inv_scale;
    float fx, cbuf[MAX_TAPS];
    int sx, k = filter == FILTER_CUBIC ? 4 : 2;

    if (filter != FILTER_AREA) {
        fx = (float)((d + 0.5) * scale - 0.5);
        sx = (int)floorf(fx);
        fx -= (float)sx;
    } else {
        sx = (int)floor(d * scale);
        fx = (float)((d + 1) - (sx + 1) * inv_scale);
        fx = fx <= 0 ? 0.f : fx - floorf(fx);
    }
    if (filter != FILTER_CUBIC) {
        if (sx < 0)
            fx = 0, sx = 0;
        if (sx >= in - 1)
            fx = 0, sx = in - 1;
        cbuf[0] = 1.f - fx;
        cbuf[1] = fx;
    } else {
        const float A = -0.75f;
        float x = fx;
        cbuf[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
        cbuf[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
        cbuf[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
        cbuf[3] = 1.f - cbuf[0] - cbuf[1] - cbuf[2];
        sx -= 1;
    }
    for (int j = 0; j < k; j++) {
        int s = sx + j;
        idx[j] = s < 0 ? 0 : s >= in ? in - 1 : s;
        w[j] = round_coef(cbuf[j]);
    }
    return k;
}

/* Area (downscaling) taps of output coordinate d: the input cells [d*scale, (d+1)*scale) covers,
 * with the fraction of each, as cv2.resize's INTER_AREA table. Returns the tap count. */
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

/* The input range [lo, hi] an output range [d0, d1] touches along one axis. */
static void axis_need(int filter, int area, int in, int out, int d0, int d1, int *lo, int *hi)
{
    int idx[MAX_TAPS + 64];
    short w[MAX_TAPS];

    if (area) {
        int m = area_max_taps(in, out), n;
        float fw[MAX_TAPS + 64];
        if (m > MAX_TAPS + 64) {
            /* Very large reductions: the covered cells, computed directly. */
            double scale = (double)in / out;
            *lo = (int)floor(d0 * scale);
            *hi = (int)ceil((d1 + 1) * scale);
            *lo = *lo < 0 ? 0 : *lo;
            *hi = *hi > in - 1 ? in - 1 : *hi;
            return;
        }
        n = area_taps(in, out, d0, idx, fw, m);
        *lo = idx[0];
        n = area_taps(in, out, d1, idx, fw, m);
        *hi = idx[n - 1];
        return;
    }
    int k = dip_resize_taps(filter, in, out, d0, idx, w);
    *lo = idx[0];
    k = dip_resize_taps(filter, in, out, d1, idx, w);
    *hi = idx[k - 1];
}

static void resize_need(const void *args, int in_w, int in_h, struct dip_rect out,
                        struct dip_rect *in)
{
    const struct resize_args *a = args;
    int out_w = 1, out_h = 1, x0, x1, y0, y1;

    if (resize_out_size(args, in_w, in_h, &out_w, &out_h, NULL) != 0) {
        *in = (struct dip_rect){0, 0, in_w, in_h};
        return;
    }
    int area = area_downscale(a->filter, in_w, in_h, out_w, out_h);
    axis_need(a->filter, area, in_w, out_w, out.x, out.x + out.w - 1, &x0, &x1);
    axis_need(a->filter, area, in_h, out_h, out.y, out.y + out.h - 1, &y0, &y1);
    *in = (struct dip_rect){x0, y0, x1 - x0 + 1, y1 - y0 + 1};
}

/* Fixed-point separable interpolation (linear, cubic): horizontal pass into int rows (11-bit
 * weights), vertical pass (11-bit weights) rounded with a 22-bit shift, as OpenCV's scalar
 * path. Horizontal rows are cached by source row. */
static inline __attribute__((always_inline)) void
hpass_body(const uint8_t *s, int *dst, int w, int ch, int k, const int *xofs, const short *xw)
{
    for (int x = 0; x < w; x++) {
        const int *o = xofs + (size_t)x * MAX_TAPS;
        const short *c = xw + (size_t)x * MAX_TAPS;
        for (int cc = 0; cc < ch; cc++) {
            int sum = 0;
            for (int j = 0; j < k; j++)
                sum += s[o[j] + cc] * c[j];
            dst[x * ch + cc] = sum;
        }
    }
}

/* One specialisation per tap count and channel count, so that the inner loops unroll. */
#define HPASS(K, CH)                                                                               \
    static void hpass_##K##_##CH(const uint8_t *s, int *dst, int w, const int *xofs,               \
                                 const short *xw)                                                  \
    {                                                                                              \
        hpass_body(s, dst, w, CH, K, xofs, xw);                                                    \
    }
HPASS(2, 1)
HPASS(2, 2)
HPASS(2, 3)
HPASS(2, 4)
HPASS(4, 1)
HPASS(4, 2)
HPASS(4, 3)
HPASS(4, 4)
#undef HPASS

static void hpass_fixed(const uint8_t *s, int *dst, int w, int ch, int k, const int *xofs,
                        const short *xw)
{
    static void (*const fn[2][4])(const uint8_t *, int *, int, const int *, const short *) = {
        {hpass_2_1, hpass_2_2, hpass_2_3, hpass_2_4},
        {hpass_4_1, hpass_4_2, hpass_4_3, hpass_4_4},
    };

    fn[k == 4][ch - 1](s, dst, w, xofs, xw);
}

/* Bilinear's vertical pass as OpenCV's vector path computes it (16-bit products, high halves),
 * which is what cv2.resize returns for all but the last few pixels of a row. */
DIP_HOT static void vpass_linear(const int *r0, const int *r1, int b0, int b1, uint8_t *d, int n)
{
    for (int i = 0; i < n; i++) {
        int v = (((r0[i] >> 4) * b0 >> 16) + ((r1[i] >> 4) * b1 >> 16) + 2) >> 2;
        d[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

/* Bicubic's vertical pass. 32 bits suffice: |row| <= 255 * 2048 * 1.25 and the four weights'
 * magnitudes sum to at most 2048 * 1.25 + 4, so |sum| < 1.7e9. */
DIP_HOT static void vpass_cubic(const int *r0, const int *r1, const int *r2, const int *r3,
                                const short *b, uint8_t *d, int n)
{
    int b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];

    for (int i = 0; i < n; i++) {
        int sum = (1 << (2 * COEF_BITS - 1)) + r0[i] * b0 + r1[i] * b1 + r2[i] * b2 + r3[i] * b3;
        int v = sum >> (2 * COEF_BITS);
        d[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

static int resize_interp_tile(const struct resize_args *a, const struct dip_tile *t)
{
    int ch = t->out.channels, ow = t->out.width, k = a->filter == FILTER_CUBIC ? 4 : 2;
    int filter = a->filter;
    int *xofs = NULL, *buf = NULL, rowid[MAX_TAPS + 1], rc = DIP_ENOMEM;
    short *xw = NULL;
    size_t rowlen = (size_t)ow * (size_t)ch;

    xofs = dip_malloc((size_t)ow * MAX_TAPS * sizeof(int));
    xw = dip_malloc((size_t)ow * MAX_TAPS * sizeof(short));
    buf = dip_malloc((MAX_TAPS + 1) * rowlen * sizeof(int));
    if (xofs == NULL || xw == NULL || buf == NULL)
        goto out;
    for (int x = 0; x < ow; x++) {
        int idx[MAX_TAPS];
        dip_resize_taps(filter, t->in_width, t->out_width, t->out_rect.x + x, idx,
                        xw + (size_t)x * MAX_TAPS);
        for (int j = 0; j < k; j++)
            xofs[(size_t)x * MAX_TAPS + j] = (idx[j] - t->in_rect.x) * ch;
    }
    for (int j = 0; j <= MAX_TAPS; j++)
        rowid[j] = -1;
    for (int y = 0; y < t->out.height; y++) {
        int idx[MAX_TAPS];
        short yw[MAX_TAPS];
        int *rows[MAX_TAPS];
        dip_resize_taps(filter, t->in_height, t->out_height, t->out_rect.y + y, idx, yw);
        for (int j = 0; j < k; j++) {
            int sy = idx[j] - t->in_rect.y, slot = -1;
            for (int q = 0; q <= MAX_TAPS; q++)
                if (rowid[q] == sy)
                    slot = q;
            if (slot < 0) {
                /* Evict a slot not used by this output row. */
                for (int q = 0; q <= MAX_TAPS && slot < 0; q++) {
                    int used = 0;
                    for (int jj = 0; jj < k; jj++)
                        used |= rowid[q] == idx[jj] - t->in_rect.y;
                    if (!used)
                        slot = q;
                }
                rowid[slot] = sy;
                hpass_fixed(t->in.data + (size_t)sy * t->in.stride, buf + (size_t)slot * rowlen, ow,
                            ch, k, xofs, xw);
            }
            rows[j] = buf + (size_t)slot * rowlen;
        }
        if (k == 2)
            vpass_linear(rows[0], rows[1], yw[0], yw[1], t->out.data + (size_t)y * t->out.stride,
                         (int)rowlen);
        else
            vpass_cubic(rows[0], rows[1], rows[2], rows[3], yw,
                        t->out.data + (size_t)y * t->out.stride, (int)rowlen);
    }
    rc = 0;
out:
    dip_free(buf);
    dip_free(xw);
    dip_free(xofs);
    return rc;
}

/* cv2.resize's test for its integer-factor area path: the factor along an axis, or 0. */
static int area_int_factor(int in, int out)
{
    double scale = 1. / ((double)out / in);
    double is = floor(scale + 0.5);

    return fabs(scale - is) < 2.220446049250313e-16 ? (int)is : 0;
}

/* The 2x2 box average with half-up rounding: the two rows summed into 16 bits (contiguous, so
 * it vectorises well), then neighbouring pixels; `ch` is a constant in each caller. */
static inline __attribute__((always_inline)) void half_row(const uint8_t *s0, const uint8_t *s1,
                                                           uint8_t *d, int w, int ch)
{
    uint16_t v[8 * 256];

    for (int x0 = 0; x0 < w; x0 += 256) {
        int n = w - x0 < 256 ? w - x0 : 256;
        const uint8_t *a = s0 + (size_t)x0 * 2 * (size_t)ch, *b = s1 + (size_t)x0 * 2 * (size_t)ch;
        uint8_t *o = d + (size_t)x0 * (size_t)ch;
        for (int i = 0; i < 2 * ch * n; i++)
            v[i] = (uint16_t)(a[i] + b[i]);
        for (int x = 0; x < n; x++)
            for (int c = 0; c < ch; c++)
                o[x * ch + c] = (uint8_t)((v[2 * x * ch + c] + v[(2 * x + 1) * ch + c] + 2) >> 2);
    }
}

DIP_HOT static void half_row1(const uint8_t *s0, const uint8_t *s1, uint8_t *d, int w)
{
    half_row(s0, s1, d, w, 1);
}
DIP_HOT static void half_row2(const uint8_t *s0, const uint8_t *s1, uint8_t *d, int w)
{
    half_row(s0, s1, d, w, 2);
}
DIP_HOT static void half_row3(const uint8_t *s0, const uint8_t *s1, uint8_t *d, int w)
{
    half_row(s0, s1, d, w, 3);
}
DIP_HOT static void half_row4(const uint8_t *s0, const uint8_t *s1, uint8_t *d, int w)
{
    half_row(s0, s1, d, w, 4);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(DIP_NO_CLONES)
#include <immintrin.h>
#define HAVE_HALF_AVX2 1

/* The same average written out for AVX2 (as OpenCV's SIMD area path): a byte shuffle puts the
 * two pixels of each output next to each other, a multiply-add by ones sums the pairs of a row
 * into 16 bits, the two rows are added, then (sum + 2) >> 2: the same integers as half_row, so
 * the bytes do not depend on the path. Returns how many output pixels were done (the caller
 * finishes the row); never reads or writes past the row. */
__attribute__((target("avx2"))) static int half_avx2(const uint8_t *s0, const uint8_t *s1,
                                                     uint8_t *d, int w, int ch)
{
    const __m256i ones = _mm256_set1_epi8(1), two = _mm256_set1_epi16(2);
    int x = 0;

    if (ch == 3) {
        /* 12 input bytes (2 outputs) a lane; loads of 16 bytes at 0, 12, 24, 36 read up to 52
         * bytes, stores of 16 bytes at 0 and 12 write up to 28 bytes: stop while 10 outputs
         * (60 input bytes, 30 output bytes) remain. */
        const __m256i sh = _mm256_setr_epi8(0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11, -1, -1, -1, -1, 0,
                                            3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11, -1, -1, -1, -1);
        const __m256i pk = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, -1, -1, -1, -1,
                                            0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, -1, -1, -1, -1);
        for (; x + 10 <= w; x += 8) {
            const uint8_t *a = s0 + (size_t)x * 6, *b = s1 + (size_t)x * 6;
            __m256i r[2];
            for (int k = 0; k < 2; k++) {
                /* lanes: outputs 2k, 2k + 1 (bytes 12k) and 2k + 4, 2k + 5 (bytes 12k + 24) */
                const uint8_t *pa = a + 12 * k, *pb = b + 12 * k;
                __m256i va = _mm256_loadu2_m128i((const __m128i *)(const void *)(pa + 24),
                                                 (const __m128i *)(const void *)pa);
                __m256i vb = _mm256_loadu2_m128i((const __m128i *)(const void *)(pb + 24),
                                                 (const __m128i *)(const void *)pb);
                __m256i sa = _mm256_maddubs_epi16(_mm256_shuffle_epi8(va, sh), ones);
                __m256i sb = _mm256_maddubs_epi16(_mm256_shuffle_epi8(vb, sh), ones);
                r[k] = _mm256_srli_epi16(_mm256_add_epi16(_mm256_add_epi16(sa, sb), two), 2);
            }
            /* lane 0: outputs 0-1 then 2-3 (6 valid bytes of 8 each); lane 1: outputs 4-7 */
            __m256i o = _mm256_shuffle_epi8(_mm256_packus_epi16(r[0], r[1]), pk);
            _mm_storeu_si128((__m128i *)(void *)(d + (size_t)x * 3), _mm256_castsi256_si128(o));
            _mm_storeu_si128((__m128i *)(void *)(d + (size_t)x * 3 + 12),
                             _mm256_extracti128_si256(o, 1));
        }
        return x;
    }
    /* 1, 2, 4 channels: 32 input bytes make 16 output bytes. */
    {
        const __m256i sh2 = _mm256_setr_epi8(0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15,
                                             0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15);
        const __m256i sh4 = _mm256_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15,
                                             0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
        const __m256i sh = ch == 2 ? sh2 : sh4;
        int per = 16 / ch; /* output pixels a round */
        for (; x + per <= w; x += per) {
            const uint8_t *a = s0 + (size_t)x * 2 * (size_t)ch,
                          *b = s1 + (size_t)x * 2 * (size_t)ch;
            __m256i va = _mm256_loadu_si256((const __m256i *)(const void *)a);
            __m256i vb = _mm256_loadu_si256((const __m256i *)(const void *)b);
            if (ch != 1) {
                va = _mm256_shuffle_epi8(va, sh);
                vb = _mm256_shuffle_epi8(vb, sh);
            }
            __m256i sum =
                _mm256_add_epi16(_mm256_maddubs_epi16(va, ones), _mm256_maddubs_epi16(vb, ones));
            __m256i r = _mm256_srli_epi16(_mm256_add_epi16(sum, two), 2);
            r = _mm256_permute4x64_epi64(_mm256_packus_epi16(r, r), 0x08);
            _mm_storeu_si128((__m128i *)(void *)(d + (size_t)x * (size_t)ch),
                             _mm256_castsi256_si128(r));
        }
    }
    return x;
}
#endif

/* One output row of the 2x2 average: the AVX2 path where the CPU has it, the rest portable. */
static void half_row_any(const uint8_t *s0, const uint8_t *s1, uint8_t *d, int w, int ch)
{
    int x = 0;

#ifdef HAVE_HALF_AVX2
    if (__builtin_cpu_supports("avx2"))
        x = half_avx2(s0, s1, d, w, ch);
#endif
    s0 += (size_t)x * 2 * (size_t)ch;
    s1 += (size_t)x * 2 * (size_t)ch;
    d += (size_t)x * (size_t)ch;
    w -= x;
    switch (ch) {
    case 1:
        half_row1(s0, s1, d, w);
        break;
    case 2:
        half_row2(s0, s1, d, w);
        break;
    case 3:
        half_row3(s0, s1, d, w);
        break;
    default:
        half_row4(s0, s1, d, w);
        break;
    }
}

static int resize_half_tile(const struct dip_tile *t)
{
    int ch = t->out.channels;

    for (int y = 0; y < t->out.height; y++) {
        int sy = (t->out_rect.y + y) * 2 - t->in_rect.y;
        int sx = t->out_rect.x * 2 - t->in_rect.x;
        const uint8_t *s0 = t->in.data + (size_t)sy * t->in.stride + (size_t)sx * (size_t)ch;
        const uint8_t *s1 = s0 + t->in.stride;
        uint8_t *d = t->out.data + (size_t)y * t->out.stride;
        half_row_any(s0, s1, d, t->out.width, ch);
    }
    return 0;
}

/* Area 1/4: the 4x4 block sum, rounded as resize_area_fast_tile does (sum * (1/16.f) is exact,
 * lrintf rounds half to even): q + (r > 8 || (r == 8 && q odd)) with q = sum >> 4, r = sum & 15.
 * The four rows are summed into 16 bits first (contiguous, so it vectorises). */
static inline __attribute__((always_inline)) void quarter_row(const uint8_t *const s[4], uint8_t *d,
                                                              int w, int ch)
{
    uint16_t v[16 * 128];

    for (int x0 = 0; x0 < w; x0 += 128) {
        int n = w - x0 < 128 ? w - x0 : 128;
        size_t off = (size_t)x0 * 4 * (size_t)ch;
        uint8_t *o = d + (size_t)x0 * (size_t)ch;
        for (int i = 0; i < 4 * ch * n; i++)
            v[i] = (uint16_t)(s[0][off + (size_t)i] + s[1][off + (size_t)i] +
                              s[2][off + (size_t)i] + s[3][off + (size_t)i]);
        for (int x = 0; x < n; x++)
            for (int c = 0; c < ch; c++) {
                const uint16_t *p = v + (size_t)(4 * x * ch + c);
                int sum = p[0] + p[ch] + p[2 * ch] + p[3 * ch];
                int q = sum >> 4, r = sum & 15;
                o[x * ch + c] = (uint8_t)(q + (r > 8 || (r == 8 && (q & 1))));
            }
    }
}

DIP_HOT static void quarter_rows(const struct dip_tile *t)
{
    int ch = t->out.channels;

    for (int y = 0; y < t->out.height; y++) {
        int sy = (t->out_rect.y + y) * 4 - t->in_rect.y;
        int sx = t->out_rect.x * 4 - t->in_rect.x;
        const uint8_t *s[4];
        uint8_t *d = t->out.data + (size_t)y * t->out.stride;
        for (int j = 0; j < 4; j++)
            s[j] = t->in.data + (size_t)(sy + j) * t->in.stride + (size_t)sx * (size_t)ch;
        switch (ch) {
        case 1:
            quarter_row(s, d, t->out.width, 1);
            break;
        case 2:
            quarter_row(s, d, t->out.width, 2);
            break;
        case 3:
            quarter_row(s, d, t->out.width, 3);
            break;
        default:
            quarter_row(s, d, t->out.width, 4);
            break;
        }
    }
}

/* Integer factors: exact block sums, rounded as OpenCV (half up for 2x2, else the single-precision
 * product by 1/area rounded half to even). */
static int resize_area_fast_tile(const struct dip_tile *t, int fx, int fy)
{
    int ch = t->out.channels, area = fx * fy;
    float inv = 1.f / (float)area;

    for (int y = 0; y < t->out.height; y++) {
        int sy = (t->out_rect.y + y) * fy - t->in_rect.y;
        uint8_t *d = t->out.data + (size_t)y * t->out.stride;
        for (int x = 0; x < t->out.width; x++) {
            int sx = (t->out_rect.x + x) * fx - t->in_rect.x;
            for (int c = 0; c < ch; c++) {
                int sum = 0;
                for (int j = 0; j < fy; j++) {
                    const uint8_t *s = t->in.data + (size_t)(sy + j) * t->in.stride +
                                       (size_t)sx * (size_t)ch + (size_t)c;
                    for (int i = 0; i < fx; i++)
                        sum += s[(size_t)i * (size_t)ch];
                }
                long v = area == 4 && fx == 2 ? (sum + 2) >> 2 : lrintf((float)sum * inv);
                d[(size_t)x * (size_t)ch + (size_t)c] = (uint8_t)(v > 255 ? 255 : v);
            }
        }
    }
    return 0;
}

/* Area downscaling in single precision, summing in a fixed order per output pixel (columns,
 * then rows), rounded half to even. */
static int resize_area_tile(const struct dip_tile *t)
{
    int ch = t->out.channels, ow = t->out.width;
    int mx = area_max_taps(t->in_width, t->out_width);
    int my = area_max_taps(t->in_height, t->out_height);
    int *xofs = NULL, *xn = NULL, *yidx = NULL, rc = DIP_ENOMEM;
    float *xw = NULL, *yw = NULL, *hrow = NULL, *acc = NULL;
    size_t rowlen = (size_t)ow * (size_t)ch;

    xofs = dip_malloc((size_t)ow * (size_t)mx * sizeof(int));
    xw = dip_malloc((size_t)ow * (size_t)mx * sizeof(float));
    xn = dip_malloc((size_t)ow * sizeof(int));
    yidx = dip_malloc((size_t)my * sizeof(int));
    yw = dip_malloc((size_t)my * sizeof(float));
    hrow = dip_malloc(rowlen * sizeof(float));
    acc = dip_malloc(rowlen * sizeof(float));
    if (!xofs || !xw || !xn || !yidx || !yw || !hrow || !acc)
        goto out;
    for (int x = 0; x < ow; x++) {
        int *o = xofs + (size_t)x * (size_t)mx;
        xn[x] = area_taps(t->in_width, t->out_width, t->out_rect.x + x, o,
                          xw + (size_t)x * (size_t)mx, mx);
        for (int j = 0; j < xn[x]; j++)
            o[j] = (o[j] - t->in_rect.x) * ch;
    }
    for (int y = 0; y < t->out.height; y++) {
        int ny = area_taps(t->in_height, t->out_height, t->out_rect.y + y, yidx, yw, my);
        uint8_t *d = t->out.data + (size_t)y * t->out.stride;
        for (int j = 0; j < ny; j++) {
            const uint8_t *s = t->in.data + (size_t)(yidx[j] - t->in_rect.y) * t->in.stride;
            for (int x = 0; x < ow; x++) {
                const int *o = xofs + (size_t)x * (size_t)mx;
                const float *c = xw + (size_t)x * (size_t)mx;
                for (int cc = 0; cc < ch; cc++) {
                    float sum = 0.f;
                    for (int q = 0; q < xn[x]; q++)
                        sum += (float)s[o[q] + cc] * c[q];
                    hrow[(size_t)x * (size_t)ch + (size_t)cc] = sum;
                }
            }
            if (j == 0)
                for (size_t i = 0; i < rowlen; i++)
                    acc[i] = yw[0] * hrow[i];
            else
                for (size_t i = 0; i < rowlen; i++)
                    acc[i] += yw[j] * hrow[i];
        }
        for (size_t i = 0; i < rowlen; i++) {
            float f = acc[i];
            f = f < 0.f ? 0.f : f > 255.f ? 255.f : f;
            d[i] = (uint8_t)lrintf(f);
        }
    }
    rc = 0;
out:
    dip_free(acc);
    dip_free(hrow);
    dip_free(yw);
    dip_free(yidx);
    dip_free(xn);
    dip_free(xw);
    dip_free(xofs);
    return rc;
}

static int resize_tile(const void *args, const struct dip_tile *t)
{
    const struct resize_args *a = args;

    int fx2 = area_int_factor(t->in_width, t->out_width);
    int fy2 = area_int_factor(t->in_height, t->out_height);
    /* As cv2.resize: bilinear halving is the 2x2 box average, done by the area path. */
    if ((a->filter == FILTER_LINEAR || a->filter == FILTER_AREA) && fx2 == 2 && fy2 == 2)
        return resize_half_tile(t);
    if (area_downscale(a->filter, t->in_width, t->in_height, t->out_width, t->out_height)) {
        int fx = area_int_factor(t->in_width, t->out_width);
        int fy = area_int_factor(t->in_height, t->out_height);
        if (fx == 4 && fy == 4) {
            quarter_rows(t);
            return 0;
        }
        if (fx && fy)
            return resize_area_fast_tile(t, fx, fy);
        return resize_area_tile(t);
    }
    return resize_interp_tile(a, t);
}

const struct dip_op dip_op_resize = {
    .name = "resize",
    .version = 1,
    .summary = "Resize with area averaging, bilinear or bicubic interpolation",
    .doc = "Output size: width and height; or one of them with the other keeping the aspect "
           "(rounded); or, when both are 0, scale times the input (rounded; default 0.5). A "
           "derived side is at least 1 pixel. filter=linear (default) and cubic use "
           "cv2.resize's INTER_LINEAR and INTER_CUBIC coefficients (pixel centres aligned, "
           "A = -0.75, replicated borders) in its 11-bit fixed point; filter=area averages the "
           "covered input cells when shrinking (INTER_AREA's table, single precision) and uses "
           "INTER_AREA's bilinear variant when enlarging. At most 1 level apart from "
           "cv2.resize(img, (width, height), interpolation=...) (OpenCV's vector paths round a "
           "little differently).",
    .kind = DIP_OP_GEOMETRIC,
    .args_size = sizeof(struct resize_args),
    .params = resize_params,
    .n_params = DIP_COUNTOF(resize_params),
    .prepare = resize_prepare,
    .out_size = resize_out_size,
    .need = resize_need,
    .tile = resize_tile,
};
