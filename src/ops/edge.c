/* SPDX-License-Identifier: MIT */
/* Edge operators: sobel (gradient magnitude per channel) and canny. canny is a GLOBAL op in two
 * parts: its tile (a stencil with a halo of 2) computes gradients and non-maximum suppression
 * into a 1-channel map of weak and strong edge pixels; its global hook then keeps the weak
 * pixels 8-connected to strong ones (hysteresis) over the whole image. Integer arithmetic as
 * OpenCV's, so results do not depend on tiling. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dip/op.h"

/* See blur.c: AVX2 clones of integer loops give the same bytes. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(DIP_NO_CLONES)
#define HOT __attribute__((target_clones("avx2", "default"), optimize("O3")))
#else
#define HOT
#endif
#define INLINE static inline __attribute__((always_inline))

static uint8_t *row_at(const struct dip_view *v, int y)
{
    return v->data + (size_t)y * v->stride;
}

/* ---- sobel ---- */

struct sobel_args {
    int size;
};

static const struct dip_param sobel_params[] = {
    DIP_PARAM_INT(struct sobel_args, size, 1, 7, 3,
                  "Aperture: 1 (no smoothing), 3, 5 or 7, as cv2.Sobel's ksize"),
};

/* Smoothing and derivative taps of cv2.getDerivKernels, padded to 7 (size 1: 3 taps, no
 * smoothing). */
static const int sobel_smooth[4][7] = {
    {0, 1, 0}, {1, 2, 1}, {1, 4, 6, 4, 1}, {1, 6, 15, 20, 15, 6, 1}};
static const int sobel_deriv[4][7] = {
    {-1, 0, 1}, {-1, 0, 1}, {-1, -2, 0, 2, 1}, {-1, -4, -5, 0, 5, 4, 1}};

static int sobel_prepare(void *args, int in_channels, struct dip_err *err)
{
    int size = ((struct sobel_args *)args)->size;

    (void)in_channels;
    if (size % 2 == 0)
        return dip_err_set(err, DIP_EINVAL, "sobel: size=%d must be 1, 3, 5 or 7", size);
    return 0;
}

static int sobel_taps(int size)
{
    return size == 1 ? 3 : size;
}

static void sobel_halo(const void *args, struct dip_halo *h)
{
    int r = sobel_taps(((const struct sobel_args *)args)->size) / 2;

    *h = (struct dip_halo){.left = r, .right = r, .top = r, .bottom = r};
}

/* One output row: vertical smoothing (vs) and derivative (vd) of k rows, then dx = deriv * vs
 * and dy = smooth * vd along the row; out = min(255, |dx| + |dy|). */
INLINE void sobel_row(const struct dip_view *in, int y, const int *sm, const int *dv, int k,
                      size_t n, size_t m, size_t cn, int32_t *vs, int32_t *vd, uint8_t *d)
{
    const uint8_t *rows[7];

    for (int j = 0; j < k; j++)
        rows[j] = row_at(in, y + j);
    for (size_t i = 0; i < n; i++) {
        int32_t s = 0, e = 0;
        for (int j = 0; j < k; j++) {
            s += sm[j] * rows[j][i];
            e += dv[j] * rows[j][i];
        }
        vs[i] = s;
        vd[i] = e;
    }
    for (size_t i = 0; i < m; i++) {
        int32_t gx = 0, gy = 0, mag;
        for (int j = 0; j < k; j++) {
            gx += dv[j] * vs[i + (size_t)j * cn];
            gy += sm[j] * vd[i + (size_t)j * cn];
        }
        mag = abs(gx) + abs(gy);
        d[i] = (uint8_t)(mag > 255 ? 255 : mag);
    }
}

HOT static void sobel_rows(const struct dip_view *in, const struct dip_view *out, int size,
                           int32_t *vs, int32_t *vd)
{
    size_t cn = (size_t)out->channels;
    size_t n = (size_t)in->width * cn, m = (size_t)out->width * cn;
    int ki = size / 2;

    for (int y = 0; y < out->height; y++) {
        uint8_t *d = row_at(out, y);
        switch (size) {
        case 1:
            sobel_row(in, y, sobel_smooth[0], sobel_deriv[0], 3, n, m, cn, vs, vd, d);
            break;
        case 3:
            sobel_row(in, y, sobel_smooth[1], sobel_deriv[1], 3, n, m, cn, vs, vd, d);
            break;
        case 5:
            sobel_row(in, y, sobel_smooth[2], sobel_deriv[2], 5, n, m, cn, vs, vd, d);
            break;
        default:
            sobel_row(in, y, sobel_smooth[ki], sobel_deriv[ki], 7, n, m, cn, vs, vd, d);
            break;
        }
    }
}

static int sobel_tile(const void *args, const struct dip_tile *t)
{
    size_t n = (size_t)t->in.width * (size_t)t->in.channels;
    int32_t *mem = dip_malloc(2 * n * sizeof(int32_t));

    if (mem == NULL)
        return DIP_ENOMEM;
    sobel_rows(&t->in, &t->out, ((const struct sobel_args *)args)->size, mem, mem + n);
    dip_free(mem);
    return 0;
}

const struct dip_op dip_op_sobel = {
    .name = "sobel",
    .version = 1,
    .summary = "Sobel gradient magnitude |dx| + |dy| per channel",
    .doc = "out = min(255, |dx| + |dy|) per channel (alpha too; use `gray | sobel` for one "
           "edge map), dx and dy the Sobel derivatives of aperture size (1: [-1 0 1] without "
           "smoothing, 3, 5, 7) in exact integers. Border: reflect-101. Same bytes as "
           "cv2.add(cv2.convertScaleAbs(cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=size)), "
           "cv2.convertScaleAbs(cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=size))).",
    .kind = DIP_OP_STENCIL,
    .args_size = sizeof(struct sobel_args),
    .params = sobel_params,
    .n_params = DIP_COUNTOF(sobel_params),
    .edge = DIP_EDGE_REFLECT101,
    .prepare = sobel_prepare,
    .halo = sobel_halo,
    .tile = sobel_tile,
};

/* ---- canny ---- */

/* The intermediate map between the tile and the global part. */
#define CANNY_WEAK   128
#define CANNY_STRONG 255
#define CANNY_SHIFT  15
#define CANNY_TG22   13573 /* (int)(tan(22.5 deg) 2^15 + 0.5), as OpenCV */

struct canny_args {
    double low, high;
    int ilow, ihigh; /* prepare(): floor of the thresholds, ordered */
};

static const struct dip_param canny_params[] = {
    DIP_PARAM_DOUBLE(struct canny_args, low, 0, 100000, 100,
                     "Lower threshold: weak edges have |dx| + |dy| > low"),
    DIP_PARAM_DOUBLE(struct canny_args, high, 0, 100000, 200,
                     "Upper threshold: strong edges have |dx| + |dy| > high"),
};

static int canny_prepare(void *args, int in_channels, struct dip_err *err)
{
    struct canny_args *a = args;
    double lo = a->low < a->high ? a->low : a->high, hi = a->low < a->high ? a->high : a->low;

    (void)in_channels;
    (void)err;
    a->ilow = (int)lo; /* non-negative, so truncation is floor */
    a->ihigh = (int)hi;
    return 0;
}

static int canny_channels(const void *args, int in_channels)
{
    (void)args;
    (void)in_channels;
    return 1;
}

static void canny_halo(const void *args, struct dip_halo *h)
{
    (void)args;
    *h = (struct dip_halo){.left = 2, .right = 2, .top = 2, .bottom = 2};
}

/* 3x3 Sobel of channel c of rows y-1..y+1 of `in` (relative to row y), over n pixels starting
 * at column 0 (the centre of the first is column 1). */
HOT static void canny_grad(const struct dip_view *in, int y, int c, int cn, int n, int16_t *dx,
                           int16_t *dy, int32_t *mag)
{
    const uint8_t *a = row_at(in, y - 1) + c, *b = row_at(in, y) + c, *e = row_at(in, y + 1) + c;

    for (int x = 0; x < n; x++) {
        int i0 = x * cn, i1 = i0 + cn, i2 = i1 + cn;
        int gx = (a[i2] - a[i0]) + 2 * (b[i2] - b[i0]) + (e[i2] - e[i0]);
        int gy = (e[i0] - a[i0]) + 2 * (e[i1] - a[i1]) + (e[i2] - a[i2]);
        dx[x] = (int16_t)gx;
        dy[x] = (int16_t)gy;
        mag[x] = abs(gx) + abs(gy);
    }
}

/* Keeps, per pixel, the gradient of the channel with the largest magnitude (the first of equal
 * ones in B, G, R order, as OpenCV on a BGR image). */
HOT static void canny_pick(int n, int16_t *dx, int16_t *dy, int32_t *mag, const int16_t *cdx,
                           const int16_t *cdy, const int32_t *cmag)
{
    for (int x = 0; x < n; x++) {
        int take = cmag[x] > mag[x];
        mag[x] = take ? cmag[x] : mag[x];
        dx[x] = take ? cdx[x] : dx[x];
        dy[x] = take ? cdy[x] : dy[x];
    }
}

static int canny_tile(const void *args, const struct dip_tile *t)
{
    const struct canny_args *a = args;
    int w = t->out.width, h = t->out.height, cn = t->in.channels;
    int mw = w + 2, mh = h + 2; /* gradients over out grown by 1 */
    size_t plane = (size_t)mw * (size_t)mh;
    /* B, G, R in RGB(A) order; alpha is not an edge source. */
    static const int order[4][3] = {{0}, {0}, {2, 1, 0}, {2, 1, 0}};
    int nch = cn >= 3 ? 3 : 1;
    uint8_t *mem = dip_malloc(plane * (2 * sizeof(int16_t) + sizeof(int32_t)) +
                              (size_t)mw * (2 * sizeof(int16_t) + sizeof(int32_t)));
    int32_t *mag, *cmag;
    int16_t *dx, *dy, *cdx, *cdy;
    int gx0 = t->out_rect.x - 1, gy0 = t->out_rect.y - 1;

    if (mem == NULL)
        return DIP_ENOMEM;
    mag = (int32_t *)(void *)mem;
    cmag = mag + plane;
    dx = (int16_t *)(void *)(cmag + mw);
    dy = dx + plane;
    cdx = dy + plane;
    cdy = cdx + mw;
    for (int my = 0; my < mh; my++) {
        size_t o = (size_t)my * (size_t)mw;
        int gy = gy0 + my;
        canny_grad(&t->in, my + 1, order[cn - 1][0], cn, mw, dx + o, dy + o, mag + o);
        for (int k = 1; k < nch; k++) {
            canny_grad(&t->in, my + 1, order[cn - 1][k], cn, mw, cdx, cdy, cmag);
            canny_pick(mw, dx + o, dy + o, mag + o, cdx, cdy, cmag);
        }
        /* Outside the image the magnitude is 0 (OpenCV's border for suppression), though the
         * gradients inside were taken with replicated pixels. */
        if (gy < 0 || gy >= t->in_height) {
            memset(mag + o, 0, (size_t)mw * sizeof(int32_t));
        } else {
            for (int mx = 0; mx < mw; mx++)
                if (gx0 + mx < 0 || gx0 + mx >= t->in_width)
                    mag[o + (size_t)mx] = 0;
        }
    }
    for (int y = 0; y < h; y++) {
        const int32_t *mp = mag + (size_t)y * (size_t)mw + 1, *ma = mp + mw, *mn = ma + mw;
        const int16_t *rdx = dx + (size_t)(y + 1) * (size_t)mw + 1, *rdy = rdx + (dy - dx);
        uint8_t *d = row_at(&t->out, y);
        for (int x = 0; x < w; x++) {
            int m = ma[x], keep = 0;
            if (m > a->ilow) {
                int xs = rdx[x], ys = rdy[x];
                int ax = abs(xs), ay = abs(ys) << CANNY_SHIFT;
                int tg22x = ax * CANNY_TG22;
                if (ay < tg22x) {
                    keep = m > ma[x - 1] && m >= ma[x + 1];
                } else {
                    int tg67x = tg22x + (ax << (CANNY_SHIFT + 1));
                    if (ay > tg67x) {
                        keep = m > mp[x] && m >= mn[x];
                    } else {
                        int s = (xs ^ ys) < 0 ? -1 : 1;
                        keep = m > mp[x - s] && m > mn[x + s];
                    }
                }
            }
            d[x] = (uint8_t)(!keep ? 0 : m > a->ihigh ? CANNY_STRONG : CANNY_WEAK);
        }
    }
    dip_free(mem);
    return 0;
}

struct pt {
    int x, y;
};

/* Hysteresis: strong pixels, and weak pixels 8-connected to them through weak pixels. */
static int canny_global(const void *args, const struct dip_view *in, const struct dip_view *out)
{
    int w = in->width, h = in->height, rc = 0;
    size_t cap = 4096, n = 0;
    struct pt *stack = dip_malloc(cap * sizeof(*stack));

    (void)args;
    if (stack == NULL)
        return DIP_ENOMEM;
    for (int y = 0; y < h; y++) {
        const uint8_t *s = row_at(in, y);
        uint8_t *d = row_at(out, y);
        for (int x = 0; x < w; x++)
            d[x] = s[x] == CANNY_STRONG ? 255 : 0;
    }
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            if (row_at(in, y)[x] != CANNY_STRONG)
                continue;
            stack[n++] = (struct pt){x, y};
            while (n > 0) {
                struct pt p = stack[--n];
                for (int yy = p.y - 1; yy <= p.y + 1; yy++) {
                    if (yy < 0 || yy >= h)
                        continue;
                    for (int xx = p.x - 1; xx <= p.x + 1; xx++) {
                        if (xx < 0 || xx >= w || row_at(in, yy)[xx] != CANNY_WEAK ||
                            row_at(out, yy)[xx] != 0)
                            continue;
                        row_at(out, yy)[xx] = 255;
                        if (n == cap) {
                            struct pt *ns = dip_realloc(stack, 2 * cap * sizeof(*stack));
                            if (ns == NULL) {
                                rc = DIP_ENOMEM;
                                goto out;
                            }
                            stack = ns;
                            cap *= 2;
                        }
                        stack[n++] = (struct pt){xx, yy};
                    }
                }
            }
        }
    }
out:
    dip_free(stack);
    return rc;
}

const struct dip_op dip_op_canny = {
    .name = "canny",
    .version = 1,
    .summary = "Canny edge detector (1-channel 0/255 output)",
    .doc = "cv2.Canny(img, low, high) with aperture 3 and the L1 gradient |dx| + |dy|: 3x3 "
           "Sobel with replicated borders; on colour the gradient of the channel with the "
           "largest magnitude (alpha ignored); non-maximum suppression in 4 directions "
           "(tan 22.5 in fixed point, magnitude 0 outside the image); pixels above high are "
           "edges, pixels above low are edges when 8-connected to one (hysteresis, over the "
           "whole image). Output: 1 channel, 255 on edges, 0 elsewhere. Thresholds are "
           "floored and swapped when low > high, as OpenCV.",
    .kind = DIP_OP_GLOBAL,
    .args_size = sizeof(struct canny_args),
    .params = canny_params,
    .n_params = DIP_COUNTOF(canny_params),
    .edge = DIP_EDGE_REPLICATE,
    .prepare = canny_prepare,
    .out_channels = canny_channels,
    .halo = canny_halo,
    .tile = canny_tile,
    .global = canny_global,
    .pre_channels = canny_channels,
};
