/* SPDX-License-Identifier: MIT */
/* Edge operators: sobel (gradient magnitude of the gray image) and canny. canny is a GLOBAL op in
 * two parts: its tile (a stencil with a halo of 2) computes gradients and non-maximum suppression
 * into a 1-channel map of weak and strong edge pixels; its global hook then keeps the weak
 * pixels 8-connected to strong ones (hysteresis) over the whole image. Integer arithmetic as
 * OpenCV's, so results do not depend on tiling. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dip/op.h"
#include "kernel.h" /* -O3, the AVX2 clones (DIP_HOT), row_at, luma */

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
DIP_INLINE void sobel_row(const struct dip_view *in, int y, const int *sm, const int *dv, int k,
                          size_t n, size_t m, size_t cn, int32_t *vs, int32_t *vd, uint8_t *d)
{
    const uint8_t *rows[7];

    for (int j = 0; j < k; j++)
        rows[j] = dip__row_at(in, y + j);
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

/* The same for size <= 5 in 16 bits: |vs| <= 255 * 16, |dx|, |dy| <= 12240, sum <= 24480. */
DIP_INLINE void sobel_row16(const struct dip_view *in, int y, const int *sm, const int *dv, int k,
                            size_t n, size_t m, size_t cn, int16_t *restrict vs,
                            int16_t *restrict vd, uint8_t *restrict d)
{
    const uint8_t *rows[7];

    for (int j = 0; j < k; j++)
        rows[j] = dip__row_at(in, y + j);
    for (size_t i = 0; i < n; i++) {
        int16_t s = 0, e = 0;
        for (int j = 0; j < k; j++) {
            s = (int16_t)(s + sm[j] * rows[j][i]);
            e = (int16_t)(e + dv[j] * rows[j][i]);
        }
        vs[i] = s;
        vd[i] = e;
    }
    for (size_t i = 0; i < m; i++) {
        int16_t gx = 0, gy = 0, mag;
        for (int j = 0; j < k; j++) {
            gx = (int16_t)(gx + dv[j] * vs[i + (size_t)j * cn]);
            gy = (int16_t)(gy + sm[j] * vd[i + (size_t)j * cn]);
        }
        mag = (int16_t)((gx < 0 ? -gx : gx) + (gy < 0 ? -gy : gy));
        d[i] = (uint8_t)(mag > 255 ? 255 : mag);
    }
}

DIP_HOT static void sobel_rows(const struct dip_view *in, const struct dip_view *out, int size,
                               int32_t *vs, int32_t *vd)
{
    size_t cn = (size_t)out->channels;
    size_t n = (size_t)in->width * cn, m = (size_t)out->width * cn;
    int ki = size / 2;

    int16_t *vs16 = (int16_t *)(void *)vs, *vd16 = (int16_t *)(void *)vd;

    for (int y = 0; y < out->height; y++) {
        uint8_t *d = dip__row_at(out, y);
        switch (size) {
        case 1:
            sobel_row16(in, y, sobel_smooth[0], sobel_deriv[0], 3, n, m, cn, vs16, vd16, d);
            break;
        case 3:
            sobel_row16(in, y, sobel_smooth[1], sobel_deriv[1], 3, n, m, cn, vs16, vd16, d);
            break;
        case 5:
            sobel_row16(in, y, sobel_smooth[2], sobel_deriv[2], 5, n, m, cn, vs16, vd16, d);
            break;
        default:
            sobel_row(in, y, sobel_smooth[ki], sobel_deriv[ki], 7, n, m, cn, vs, vd, d);
            break;
        }
    }
}

/* One row to gray (dip__luma, as op gray; gray+alpha: gray), with a constant channel count so that
 * the loads vectorise. */
DIP_INLINE void gray_row(const uint8_t *restrict s, uint8_t *restrict d, size_t w, size_t cn)
{
    if (cn < 3) {
        for (size_t x = 0; x < w; x++)
            d[x] = s[x * cn];
        return;
    }
    for (size_t x = 0; x < w; x++) {
        uint16_t r = s[x * cn], g = s[x * cn + 1], b = s[x * cn + 2];
        d[x] = (uint8_t)dip__luma(r, g, b);
    }
}

DIP_HOT static void sobel_gray(const struct dip_view *in, uint8_t *g)
{
    size_t w = (size_t)in->width;

    for (int y = 0; y < in->height; y++) {
        const uint8_t *s = dip__row_at(in, y);
        uint8_t *d = g + (size_t)y * w;
        switch (in->channels) {
        case 2:
            gray_row(s, d, w, 2);
            break;
        case 3:
            gray_row(s, d, w, 3);
            break;
        default:
            gray_row(s, d, w, 4);
            break;
        }
    }
}

static int sobel_channels(const void *args, int in_channels)
{
    (void)args;
    (void)in_channels;
    return 1;
}

static int sobel_tile(const void *args, const struct dip_tile *t)
{
    size_t n = (size_t)t->in.width;
    size_t gsize = t->in.channels == 1 ? 0 : n * (size_t)t->in.height;
    int32_t *mem = dip_malloc(2 * n * sizeof(int32_t) + gsize);
    struct dip_view g = t->in;

    if (mem == NULL)
        return DIP_ENOMEM;
    if (gsize) {
        g = (struct dip_view){(uint8_t *)(mem + 2 * n), t->in.width, t->in.height, 1, n};
        sobel_gray(&t->in, g.data);
    }
    sobel_rows(&g, &t->out, ((const struct sobel_args *)args)->size, mem, mem + n);
    dip_free(mem);
    return 0;
}

const struct dip_op dip_op_sobel = {
    .name = "sobel",
    .version = 1,
    .summary = "Sobel gradient magnitude |dx| + |dy| of the gray image (1 channel)",
    .doc = "On gray: colour is first converted as OpenCV's RGB2GRAY, (9798 R + 19235 G + "
           "3735 B + 2^14) >> 15; the alpha of gray+alpha and RGBA is ignored. out = "
           "min(255, |dx| + |dy|), dx and dy the Sobel derivatives of aperture size (1: [-1 0 1] "
           "without smoothing, 3, 5, 7) in exact integers; 1-channel output. Border: "
           "reflect-101. Same bytes as g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY); "
           "cv2.add(cv2.convertScaleAbs(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=size)), "
           "cv2.convertScaleAbs(cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=size))).",
    .kind = DIP_OP_STENCIL,
    .args_size = sizeof(struct sobel_args),
    .params = sobel_params,
    .n_params = DIP_COUNTOF(sobel_params),
    .edge = DIP_EDGE_REFLECT101,
    .prepare = sobel_prepare,
    .out_channels = sobel_channels,
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

/* Scratch of one canny tile: the Sobel sums of one row over all channels, and a ring of 3 rows
 * of the chosen gradient (dx, dy) and its magnitude for the suppression. */
struct canny_scratch {
    int16_t *vs, *vd, *gx, *gy, *gm;
    int16_t *dx[3], *dy[3], *mag[3];
};

DIP_INLINE void canny_vsum(const uint8_t *restrict a, const uint8_t *restrict b,
                           const uint8_t *restrict c, int16_t *restrict vs, int16_t *restrict vd,
                           size_t n)
{
    for (size_t i = 0; i < n; i++) {
        vs[i] = (int16_t)(a[i] + 2 * b[i] + c[i]);
        vd[i] = (int16_t)(c[i] - a[i]);
    }
}

DIP_INLINE void canny_hsum(const int16_t *restrict vs, const int16_t *restrict vd,
                           int16_t *restrict gx, int16_t *restrict gy, int16_t *restrict gm,
                           size_t m, size_t cn)
{
    for (size_t i = 0; i < m; i++) {
        int ex = vs[i + 2 * cn] - vs[i], ey = vd[i] + 2 * vd[i + cn] + vd[i + 2 * cn];
        gx[i] = (int16_t)ex;
        gy[i] = (int16_t)ey;
        gm[i] = (int16_t)(abs(ex) + abs(ey));
    }
}

DIP_INLINE void canny_pick(const int16_t *restrict gx, const int16_t *restrict gy,
                           const int16_t *restrict gm, int16_t *restrict dx, int16_t *restrict dy,
                           int16_t *restrict mag, int mw, size_t cn)
{
    if (cn < 3) {
        for (int x = 0; x < mw; x++) {
            dx[x] = gx[(size_t)x * cn];
            dy[x] = gy[(size_t)x * cn];
            mag[x] = gm[(size_t)x * cn];
        }
        return;
    }
    for (int x = 0; x < mw; x++) {
        size_t p = (size_t)x * cn;
        int16_t m0 = gm[p], m1 = gm[p + 1], m2 = gm[p + 2];
        int16_t x0 = gx[p], x1 = gx[p + 1], x2 = gx[p + 2];
        int16_t y0 = gy[p], y1 = gy[p + 1], y2 = gy[p + 2];
        int take1 = m1 > m2;
        int16_t bm = take1 ? m1 : m2, bx = take1 ? x1 : x2, by = take1 ? y1 : y2;
        int take0 = m0 > bm;
        mag[x] = take0 ? m0 : bm;
        dx[x] = take0 ? x0 : bx;
        dy[x] = take0 ? y0 : by;
    }
}

/* The gradient of row y of `in` (centres at columns 1 .. mw), all channels: vertical sums, then
 * dx = vs(+1) - vs(-1), dy = vd(-1) + 2 vd + vd(+1) along the row; |dx| + |dy| <= 2040. Then, per
 * pixel, the channel with the largest magnitude, the first of equal ones in B, G, R order (as
 * OpenCV on a BGR image); gray+alpha and RGBA ignore alpha. */
DIP_HOT_PICK static void canny_grad(const struct dip_view *in, int y, int mw,
                                    const struct canny_scratch *s, int slot)
{
    size_t cn = (size_t)in->channels, n = (size_t)in->width * cn, m = (size_t)mw * cn;

    canny_vsum(dip__row_at(in, y - 1), dip__row_at(in, y), dip__row_at(in, y + 1), s->vs, s->vd, n);
    if (cn == 1) { /* one channel: nothing to pick, the sums go straight into the ring */
        canny_hsum(s->vs, s->vd, s->dx[slot], s->dy[slot], s->mag[slot], m, 1);
        return;
    }
    canny_hsum(s->vs, s->vd, s->gx, s->gy, s->gm, m, cn);
    canny_pick(s->gx, s->gy, s->gm, s->dx[slot], s->dy[slot], s->mag[slot], mw, cn);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(DIP_NO_CLONES)
#include <immintrin.h>
#define HAVE_NMS_AVX2 1

/* 8 pixels of the suppression in 32-bit lanes: the tests of canny_nms as masks; returns the
 * 0 / CANNY_WEAK / CANNY_STRONG values. */
__attribute__((target("avx2"), always_inline)) static inline __m256i
nms8(const int16_t *mp, const int16_t *ma, const int16_t *mn, const int16_t *rdx,
     const int16_t *rdy, __m256i low, __m256i high)
{
#define L16(p) _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p)))
    __m256i m = L16(ma), dx = L16(rdx), dy = L16(rdy);
    __m256i ax = _mm256_abs_epi32(dx), ay = _mm256_slli_epi32(_mm256_abs_epi32(dy), CANNY_SHIFT);
    __m256i tg22 = _mm256_mullo_epi32(ax, _mm256_set1_epi32(CANNY_TG22));
    __m256i tg67 = _mm256_add_epi32(tg22, _mm256_slli_epi32(ax, CANNY_SHIFT + 1));
    __m256i horiz = _mm256_cmpgt_epi32(tg22, ay);
    __m256i vert = _mm256_cmpgt_epi32(ay, tg67);
    __m256i neg = _mm256_srai_epi32(_mm256_xor_si256(dx, dy), 31); /* sg = -1 */
    __m256i kh =
        _mm256_andnot_si256(_mm256_cmpgt_epi32(L16(ma + 1), m), _mm256_cmpgt_epi32(m, L16(ma - 1)));
    __m256i kv =
        _mm256_andnot_si256(_mm256_cmpgt_epi32(L16(mn), m), _mm256_cmpgt_epi32(m, L16(mp)));
    /* sg = 1: m > mp[x - 1] && m > mn[x + 1]; sg = -1: m > mp[x + 1] && m > mn[x - 1] */
    __m256i kdp =
        _mm256_and_si256(_mm256_cmpgt_epi32(m, L16(mp - 1)), _mm256_cmpgt_epi32(m, L16(mn + 1)));
    __m256i kdn =
        _mm256_and_si256(_mm256_cmpgt_epi32(m, L16(mp + 1)), _mm256_cmpgt_epi32(m, L16(mn - 1)));
    __m256i kd = _mm256_blendv_epi8(kdp, kdn, neg);
    __m256i diag = _mm256_andnot_si256(_mm256_or_si256(horiz, vert), _mm256_set1_epi32(-1));
    __m256i keep =
        _mm256_or_si256(_mm256_and_si256(horiz, kh),
                        _mm256_or_si256(_mm256_and_si256(vert, kv), _mm256_and_si256(diag, kd)));
    __m256i strong = _mm256_cmpgt_epi32(m, high);
    __m256i val =
        _mm256_blendv_epi8(_mm256_set1_epi32(CANNY_WEAK), _mm256_set1_epi32(CANNY_STRONG), strong);
#undef L16
    keep = _mm256_and_si256(keep, _mm256_cmpgt_epi32(m, low));
    return _mm256_and_si256(keep, val);
}

/* 16 pixels a round; returns how many were done (the caller finishes the row). */
__attribute__((target("avx2"))) static int nms_avx2(const int16_t *mp, const int16_t *ma,
                                                    const int16_t *mn, const int16_t *rdx,
                                                    const int16_t *rdy, int low, int high, int w,
                                                    uint8_t *d)
{
    __m256i lo = _mm256_set1_epi32(low), hi = _mm256_set1_epi32(high);
    int x = 0;

    for (; x + 16 <= w; x += 16) {
        __m256i a = nms8(mp + x, ma + x, mn + x, rdx + x, rdy + x, lo, hi);
        __m256i b = nms8(mp + x + 8, ma + x + 8, mn + x + 8, rdx + x + 8, rdy + x + 8, lo, hi);
        __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
        __m256i b8 = _mm256_permute4x64_epi64(_mm256_packus_epi16(w16, w16), 0x08);
        _mm_storeu_si128((__m128i *)(void *)(d + x), _mm256_castsi256_si128(b8));
    }
    return x;
}
#endif

/* Non-maximum suppression of one row (centre ring slot c, above p, below n), as OpenCV: the
 * direction from tan(22.5) in fixed point; strict > towards one side, >= towards the other. */
static void canny_nms(const struct canny_args *a, const struct canny_scratch *s, int p, int c,
                      int n, int w, uint8_t *d)
{
    const int16_t *mp = s->mag[p] + 1, *ma = s->mag[c] + 1, *mn = s->mag[n] + 1;
    const int16_t *rdx = s->dx[c] + 1, *rdy = s->dy[c] + 1;
    int low = a->ilow, high = a->ihigh, x = 0;

#ifdef HAVE_NMS_AVX2
    if (__builtin_cpu_supports("avx2"))
        x = nms_avx2(mp, ma, mn, rdx, rdy, low, high, w, d);
#endif
    for (; x < w; x++) {
        int m = ma[x], keep = 0;
        if (m > low) {
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
                    int sg = (xs ^ ys) < 0 ? -1 : 1;
                    keep = m > mp[x - sg] && m > mn[x + sg];
                }
            }
        }
        d[x] = (uint8_t)(!keep ? 0 : m > high ? CANNY_STRONG : CANNY_WEAK);
    }
}

static int canny_tile(const void *args, const struct dip_tile *t)
{
    const struct canny_args *a = args;
    int w = t->out.width, h = t->out.height, mw = w + 2;
    size_t n = (size_t)t->in.width * (size_t)t->in.channels,
           m = (size_t)mw * (size_t)t->in.channels;
    int16_t *mem = dip_malloc((2 * n + 3 * m + 9 * (size_t)mw) * sizeof(int16_t));
    int gx0 = t->out_rect.x - 1, gy0 = t->out_rect.y - 1;
    struct canny_scratch s;

    if (mem == NULL)
        return DIP_ENOMEM;
    s.vs = mem;
    s.vd = s.vs + n;
    s.gx = s.vd + n;
    s.gy = s.gx + m;
    s.gm = s.gy + m;
    for (int k = 0; k < 3; k++) {
        s.dx[k] = s.gm + m + (size_t)(3 * k) * (size_t)mw;
        s.dy[k] = s.dx[k] + mw;
        s.mag[k] = s.dy[k] + mw;
    }
    /* Gradient rows -1 .. h (of the output), centred on input rows 1 .. h + 2. */
    for (int my = 0; my < h + 2; my++) {
        int slot = my % 3, gy = gy0 + my;
        canny_grad(&t->in, my + 1, mw, &s, slot);
        /* Outside the image the magnitude is 0 (OpenCV's border for the suppression), though
         * gradients inside were taken with replicated pixels. */
        if (gy < 0 || gy >= t->in_height) {
            memset(s.mag[slot], 0, (size_t)mw * sizeof(int16_t));
        } else {
            /* Columns mx with gx0 + mx outside [0, in_width): at most one at each end. */
            for (int mx = 0; mx < mw && gx0 + mx < 0; mx++)
                s.mag[slot][mx] = 0;
            for (int mx = t->in_width - gx0 > 0 ? t->in_width - gx0 : 0; mx < mw; mx++)
                s.mag[slot][mx] = 0;
        }
        if (my >= 2)
            canny_nms(a, &s, (my - 2) % 3, (my - 1) % 3, slot, w, dip__row_at(&t->out, my - 2));
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
        const uint8_t *s = dip__row_at(in, y);
        uint8_t *d = dip__row_at(out, y);
        for (int x = 0; x < w; x++)
            d[x] = s[x] == CANNY_STRONG ? 255 : 0;
    }
    for (int y = 0; y < h; y++) {
        const uint8_t *srow = dip__row_at(in, y);
        /* Strong pixels are sparse: memchr finds the next one a vector at a time. */
        for (const uint8_t *hit = memchr(srow, CANNY_STRONG, (size_t)w); hit != NULL;
             hit = memchr(hit + 1, CANNY_STRONG, (size_t)(srow + w - hit - 1))) {
            int x = (int)(hit - srow);
            stack[n++] = (struct pt){x, y};
            while (n > 0) {
                struct pt p = stack[--n];
                for (int yy = p.y - 1; yy <= p.y + 1; yy++) {
                    if (yy < 0 || yy >= h)
                        continue;
                    for (int xx = p.x - 1; xx <= p.x + 1; xx++) {
                        if (xx < 0 || xx >= w || dip__row_at(in, yy)[xx] != CANNY_WEAK ||
                            dip__row_at(out, yy)[xx] != 0)
                            continue;
                        dip__row_at(out, yy)[xx] = 255;
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
