/* SPDX-License-Identifier: MIT */
/* Colour and tone point operations: linear (scale and offset), brightness, gray, threshold and an
 * HSV adjustment, each matching OpenCV's 8-bit arithmetic (fixed-point luma, OpenCV's integer
 * RGB->HSV and float HSV->RGB). Every output pixel depends only on the same input pixel, so any
 * tiling gives the same bytes. Alpha is passed through unchanged. Also the row helpers shared with
 * the statistic operations (stats.c). */
#include <math.h>
#include <string.h>

#include "kernel.h"

/* ---- Shared row helpers ---- */

/* RGB or RGBA -> gray (dip__luma) for `n` pixels: the vectoriser cannot see OpenCV's trick, so
 * on x86-64 with AVX2 this is written out: bytes become (r, g) and (b, 1) 16-bit pairs with one
 * shuffle each, and two multiply-adds give r*9798 + g*19235 + b*3735 + 16384 exactly. The same
 * integers as the scalar loop, so the result does not depend on the path. Returns how many pixels
 * were done (a multiple of 16; the caller finishes the rest). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(DIP_NO_CLONES)
#include <immintrin.h>
#define HAVE_GRAY_AVX2 1 /* and linear's */

__attribute__((target("avx2"))) static size_t gray_avx2(const uint8_t *s, uint8_t *d, size_t n,
                                                        int ch)
{
    const __m256i m3a = _mm256_setr_epi8(0, -1, 1, -1, 3, -1, 4, -1, 6, -1, 7, -1, 9, -1, 10, -1, 0,
                                         -1, 1, -1, 3, -1, 4, -1, 6, -1, 7, -1, 9, -1, 10, -1);
    const __m256i m3b =
        _mm256_setr_epi8(2, -1, -1, -1, 5, -1, -1, -1, 8, -1, -1, -1, 11, -1, -1, -1, 2, -1, -1, -1,
                         5, -1, -1, -1, 8, -1, -1, -1, 11, -1, -1, -1);
    const __m256i m4a = _mm256_setr_epi8(0, -1, 1, -1, 4, -1, 5, -1, 8, -1, 9, -1, 12, -1, 13, -1,
                                         0, -1, 1, -1, 4, -1, 5, -1, 8, -1, 9, -1, 12, -1, 13, -1);
    const __m256i m4b =
        _mm256_setr_epi8(2, -1, -1, -1, 6, -1, -1, -1, 10, -1, -1, -1, 14, -1, -1, -1, 2, -1, -1,
                         -1, 6, -1, -1, -1, 10, -1, -1, -1, 14, -1, -1, -1);
    const __m256i crg = _mm256_set1_epi32(9798 | (19235 << 16));
    const __m256i cb1 = _mm256_set1_epi32(3735 | (16384 << 16));
    const __m256i one = _mm256_set1_epi32(1 << 16);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i ma = ch == 3 ? m3a : m4a, mb = ch == 3 ? m3b : m4b;
    size_t step = (size_t)ch * 4, i = 0;

    /* 16 pixels a round; with 3 channels each 16-byte load reads 4 bytes past its 4 pixels, so
     * stop while 16 more pixels (48 bytes) remain beyond them. */
    for (; i + 16 + (ch == 3 ? 2 : 0) <= n; i += 16) {
        const uint8_t *p = s + i * (size_t)ch;
        __m256i g[2];
        for (int k = 0; k < 2; k++) {
            const uint8_t *q = p + (size_t)k * 2 * step;
            __m256i v = _mm256_loadu2_m128i((const __m128i *)(const void *)(q + step),
                                            (const __m128i *)(const void *)q);
            __m256i rg = _mm256_shuffle_epi8(v, ma);
            __m256i b1 = _mm256_or_si256(_mm256_shuffle_epi8(v, mb), one);
            __m256i sum = _mm256_add_epi32(_mm256_madd_epi16(rg, crg), _mm256_madd_epi16(b1, cb1));
            g[k] = _mm256_srli_epi32(sum, 15);
        }
        __m256i w = _mm256_packs_epi32(g[0], g[1]);
        __m256i b = _mm256_packus_epi16(w, w);
        b = _mm256_permutevar8x32_epi32(b, perm);
        _mm_storeu_si128((__m128i *)(void *)(d + i), _mm256_castsi256_si128(b));
    }
    return i;
}
#endif

/* Gray bytes of `n` RGB (ch 3) or RGBA (ch 4) pixels. */
static void gray_bytes(const uint8_t *s, uint8_t *g, size_t n, int ch)
{
    size_t i = 0;

#ifdef HAVE_GRAY_AVX2
    if (__builtin_cpu_supports("avx2"))
        i = gray_avx2(s, g, n, ch);
#endif
    for (; i < n; i++)
        g[i] = (uint8_t)dip__luma(s[(size_t)ch * i], s[(size_t)ch * i + 1], s[(size_t)ch * i + 2]);
}

/* Clones stay file-local: clang resolves a cloned function's external name differently. */
DIP_HOT static void lut_row(const uint8_t *s, uint8_t *d, int w, int ch, const uint8_t *lut)
{
    size_t n = (size_t)w;

    switch (ch) {
    case 2:
        for (size_t i = 0; i < n; i++) {
            uint8_t a = s[2 * i + 1];
            d[2 * i] = lut[s[2 * i]];
            d[2 * i + 1] = a;
        }
        break;
    case 4:
        for (size_t i = 0; i < n; i++) {
            uint8_t r = s[4 * i], g = s[4 * i + 1], b = s[4 * i + 2], a = s[4 * i + 3];
            d[4 * i] = lut[r];
            d[4 * i + 1] = lut[g];
            d[4 * i + 2] = lut[b];
            d[4 * i + 3] = a;
        }
        break;
    default:
        n *= (size_t)ch;
        /* Four at a time: independent loads keep the lookups in flight. */
        size_t i = 0;
        for (; i + 4 <= n; i += 4) {
            uint8_t a = lut[s[i]], b = lut[s[i + 1]], c = lut[s[i + 2]], e = lut[s[i + 3]];
            d[i] = a;
            d[i + 1] = b;
            d[i + 2] = c;
            d[i + 3] = e;
        }
        for (; i < n; i++)
            d[i] = lut[s[i]];
        break;
    }
}

DIP_HOT static void gray_row(const uint8_t *s, uint8_t *g, int w, int ch, int ycc)
{
    size_t n = (size_t)w;

    if (ycc && ch == 3) {
        for (size_t i = 0; i < n; i++)
            g[i] = (uint8_t)dip__luma14(s[3 * i], s[3 * i + 1], s[3 * i + 2]);
    } else if (ycc && ch == 4) {
        for (size_t i = 0; i < n; i++)
            g[i] = (uint8_t)dip__luma14(s[4 * i], s[4 * i + 1], s[4 * i + 2]);
    } else if (ch >= 3) {
        gray_bytes(s, g, n, ch);
    } else {
        for (size_t i = 0; i < n; i++)
            g[i] = s[i * (size_t)ch];
    }
}

void dip__lut_row(const uint8_t *s, uint8_t *d, int w, int ch, const uint8_t *lut)
{
    lut_row(s, d, w, ch, lut);
}

void dip__gray_row(const uint8_t *s, uint8_t *g, int w, int ch, int ycc)
{
    gray_row(s, g, w, ch, ycc);
}

/* Counts of 8 bytes: 8 sub-histograms so that runs of equal values (smooth photos) do not wait
 * on one counter's store; one 64-bit load, the bytes taken by shifts. */
DIP_HOT static void hist8(const uint8_t *g, int n, uint32_t h[8][256])
{
    int i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, g + i, 8);
        h[0][v & 255]++;
        h[1][(v >> 8) & 255]++;
        h[2][(v >> 16) & 255]++;
        h[3][(v >> 24) & 255]++;
        h[4][(v >> 32) & 255]++;
        h[5][(v >> 40) & 255]++;
        h[6][(v >> 48) & 255]++;
        h[7][v >> 56]++;
    }
    for (; i < n; i++)
        h[0][g[i]]++;
}

void dip__gray_hist(const struct dip_view *in, uint64_t hist[256], int ycc)
{
    /* 32-bit counters are flushed well before they could overflow. */
    uint32_t h[8][256];
    uint8_t row[1024];
    uint64_t pending = 0;

    memset(h, 0, sizeof(h));
    for (int y = 0; y < in->height; y++) {
        const uint8_t *s = in->data + (size_t)y * in->stride;
        for (int x0 = 0; x0 < in->width; x0 += (int)sizeof(row)) {
            int n = in->width - x0 < (int)sizeof(row) ? in->width - x0 : (int)sizeof(row);
            const uint8_t *g = s + x0; /* gray input: count it where it lies */
            if (in->channels != 1) {
                dip__gray_row(s + (size_t)x0 * (size_t)in->channels, row, n, in->channels, ycc);
                g = row;
            }
            hist8(g, n, h);
            pending += (uint64_t)n;
            if (pending > (1u << 30)) {
                for (int v = 0; v < 256; v++)
                    for (int k = 0; k < 8; k++)
                        hist[v] += h[k][v];
                memset(h, 0, sizeof(h));
                pending = 0;
            }
        }
    }
    for (int v = 0; v < 256; v++)
        for (int k = 0; k < 8; k++)
            hist[v] += h[k][v];
}

static int gray_out_channels(const void *args, int in_channels)
{
    (void)args;
    return dip__gray_channels(in_channels);
}

/* ---- linear ---- */

struct linear_args {
    double alpha, beta;
    float a, b; /* single precision, as OpenCV's convertScaleAbs */
    uint8_t lut[256];
};

static const struct dip_param linear_params[] = {
    DIP_PARAM_DOUBLE(struct linear_args, alpha, -64, 64, 1.5, "Gain: out = alpha*in + beta"),
    DIP_PARAM_DOUBLE(struct linear_args, beta, -1024, 1024, 0, "Offset added after the gain"),
};

/* The exact per-value formula: single-precision multiply, then add (no fused multiply-add),
 * rounded half to even by the 1.5*2^23 trick (exact for |f| < 2^22, which the ranges ensure),
 * then saturated. The vector loop and the LUT both use it, so they agree bit for bit. */
static inline int linear_value(int v, float a, float b)
{
    float f = (float)v * a + b;
    f = (f + 12582912.0f) - 12582912.0f;
    int i = (int)f;
    return i < 0 ? 0 : i > 255 ? 255 : i;
}

static int linear_prepare(void *args, int in_channels, struct dip_err *err)
{
    struct linear_args *a = args;

    (void)in_channels;
    (void)err;
    a->a = (float)a->alpha;
    a->b = (float)a->beta;
    for (int v = 0; v < 256; v++)
        a->lut[v] = (uint8_t)linear_value(v, a->a, a->b);
    return 0;
}

#ifdef HAVE_GRAY_AVX2
/* linear_value on 32 bytes a round: the same single-precision multiply, then add, rounded to
 * nearest even by cvtps2dq (as the 1.5*2^23 trick does) and saturated by the packs. */
__attribute__((target("avx2"))) static size_t linear_avx2(const uint8_t *s, uint8_t *d, size_t n,
                                                          float a, float b)
{
    const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
    size_t i = 0;

    for (; i + 32 <= n; i += 32) {
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            __m128i x = _mm_loadl_epi64((const __m128i *)(const void *)(s + i + 8 * k));
            __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(x));
            q[k] = _mm256_cvtps_epi32(_mm256_add_ps(_mm256_mul_ps(f, va), vb));
        }
        __m256i w0 = _mm256_packs_epi32(q[0], q[1]), w1 = _mm256_packs_epi32(q[2], q[3]);
        __m256i v = _mm256_packus_epi16(w0, w1);
        v = _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(void *)(d + i), v);
    }
    return i;
}
#endif

DIP_HOT static void linear_tail(const uint8_t *s, uint8_t *d, size_t n, float a, float b)
{
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)linear_value(s[i], a, b);
}

static void linear_row(const uint8_t *s, uint8_t *d, size_t n, float a, float b)
{
    size_t i = 0;

#ifdef HAVE_GRAY_AVX2
    if (__builtin_cpu_supports("avx2"))
        i = linear_avx2(s, d, n, a, b);
#endif
    linear_tail(s + i, d + i, n - i, a, b);
}

static int linear_tile(const void *args, const struct dip_tile *t)
{
    const struct linear_args *a = args;
    int ch = t->out.channels;

    for (int y = 0; y < t->out.height; y++) {
        const uint8_t *s = t->in.data + (size_t)y * t->in.stride;
        uint8_t *d = t->out.data + (size_t)y * t->out.stride;
        if (ch == 1 || ch == 3)
            linear_row(s, d, (size_t)t->out.width * (size_t)ch, a->a, a->b);
        else
            dip__lut_row(s, d, t->out.width, ch, a->lut);
    }
    return 0;
}

const struct dip_op dip_op_linear = {
    .name = "linear",
    .version = 1,
    .summary = "Contrast and brightness: out = saturate(round(alpha*in + beta))",
    .doc = "out = saturate(round_half_even(alpha*in + beta)) on the colour channels, computed in "
           "single precision as OpenCV does; alpha (transparency) is passed through. For alpha "
           ">= 0 and beta >= 0 this is cv2.convertScaleAbs(img, alpha=alpha, beta=beta) "
           "(identical for beta = 0; at most 1 level apart otherwise, where OpenCV's AVX2 path "
           "fuses the multiply-add). Negative results saturate to 0 (OpenCV's convertTo), "
           "where convertScaleAbs would take the absolute value.",
    .kind = DIP_OP_POINT,
    .args_size = sizeof(struct linear_args),
    .params = linear_params,
    .n_params = DIP_COUNTOF(linear_params),
    .prepare = linear_prepare,
    .tile = linear_tile,
};

/* ---- brightness ---- */

struct brightness_args {
    int delta;
    uint8_t lut[256];
};

static const struct dip_param brightness_params[] = {
    DIP_PARAM_INT(struct brightness_args, delta, -255, 255, 60,
                  "Added to every colour channel (negative darkens), saturating"),
};

static int brightness_prepare(void *args, int in_channels, struct dip_err *err)
{
    struct brightness_args *a = args;

    (void)in_channels;
    (void)err;
    for (int v = 0; v < 256; v++) {
        int o = v + a->delta;
        a->lut[v] = (uint8_t)(o < 0 ? 0 : o > 255 ? 255 : o);
    }
    return 0;
}

/* Saturating add or subtract in 8-bit arithmetic, so the vectoriser works on whole bytes. */
DIP_HOT static void brightness_row(const uint8_t *s, uint8_t *d, size_t n, int delta)
{
    if (delta >= 0) {
        uint8_t dl = (uint8_t)delta, lim = (uint8_t)(255 - delta);
        for (size_t i = 0; i < n; i++) {
            uint8_t x = s[i];
            d[i] = x > lim ? (uint8_t)255 : (uint8_t)(x + dl);
        }
    } else {
        uint8_t dl = (uint8_t)-delta;
        for (size_t i = 0; i < n; i++) {
            uint8_t x = s[i];
            d[i] = x < dl ? (uint8_t)0 : (uint8_t)(x - dl);
        }
    }
}

static int brightness_tile(const void *args, const struct dip_tile *t)
{
    const struct brightness_args *a = args;
    int ch = t->out.channels;

    for (int y = 0; y < t->out.height; y++) {
        const uint8_t *s = t->in.data + (size_t)y * t->in.stride;
        uint8_t *d = t->out.data + (size_t)y * t->out.stride;
        if (ch == 1 || ch == 3)
            brightness_row(s, d, (size_t)t->out.width * (size_t)ch, a->delta);
        else
            dip__lut_row(s, d, t->out.width, ch, a->lut);
    }
    return 0;
}

const struct dip_op dip_op_brightness = {
    .name = "brightness",
    .version = 1,
    .summary = "Add a constant to every colour channel, saturating",
    .doc = "out = clip(in + delta, 0, 255) on the colour channels; alpha is passed through. Same "
           "as numpy np.clip(img.astype(int) + delta, 0, 255) and cv2.add(img, delta) with "
           "saturation (identical).",
    .kind = DIP_OP_POINT,
    .args_size = sizeof(struct brightness_args),
    .params = brightness_params,
    .n_params = DIP_COUNTOF(brightness_params),
    .prepare = brightness_prepare,
    .tile = brightness_tile,
};

/* ---- gray ---- */

/* RGBA -> gray+alpha: gray of a chunk (the AVX2 kernel), then interleaved with alpha. */
DIP_HOT static void with_alpha(const uint8_t *g, const uint8_t *s, uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        d[2 * i] = g[i];
        d[2 * i + 1] = s[4 * i + 3];
    }
}

static void gray_row4(const uint8_t *s, uint8_t *d, size_t n)
{
    uint8_t g[1024];

    for (size_t x = 0; x < n; x += sizeof(g)) {
        size_t m = n - x < sizeof(g) ? n - x : sizeof(g);
        gray_bytes(s + 4 * x, g, m, 4);
        with_alpha(g, s + 4 * x, d + 2 * x, m);
    }
}

static int gray_tile(const void *args, const struct dip_tile *t)
{
    int ch = t->in.channels;
    size_t n = (size_t)t->out.width;

    (void)args;
    for (int y = 0; y < t->out.height; y++) {
        const uint8_t *s = t->in.data + (size_t)y * t->in.stride;
        uint8_t *d = t->out.data + (size_t)y * t->out.stride;
        if (ch == 3)
            gray_bytes(s, d, n, 3);
        else if (ch == 4)
            gray_row4(s, d, n);
        else if (s != d)
            memmove(d, s, n * (size_t)ch);
    }
    return 0;
}

const struct dip_op dip_op_gray = {
    .name = "gray",
    .version = 1,
    .summary = "RGB to gray (BT.601 luma, OpenCV's fixed point); RGBA gives gray+alpha",
    .doc =
        "gray = (9798*R + 19235*G + 3735*B + 16384) >> 15, OpenCV's 15-bit fixed-point "
        "BT.601 weights: identical to cv2.cvtColor(img, cv2.COLOR_RGB2GRAY). RGB gives 1 channel; "
        "RGBA gives 2 channels (gray, alpha unchanged), where OpenCV's RGBA2GRAY drops alpha; "
        "gray and gray+alpha pass through unchanged.",
    .kind = DIP_OP_POINT,
    .args_size = 1,
    .out_channels = gray_out_channels,
    .tile = gray_tile,
};

/* ---- threshold (and the map of otsu) ---- */

struct threshold_args {
    int t;
    int max;
    int invert;
};

static const struct dip_param threshold_params[] = {
    DIP_PARAM_INT(struct threshold_args, t, 0, 255, 127, "Threshold: gray > t gives max"),
    DIP_PARAM_INT(struct threshold_args, max, 0, 255, 255, "Value of pixels above the threshold"),
    DIP_PARAM_BOOL(struct threshold_args, invert, 0, "THRESH_BINARY_INV: above gives 0"),
};

/* Byte compares (t is 0..255): the vectoriser then works on whole bytes. */
DIP_HOT static void thresh_row1(const uint8_t *s, uint8_t *d, size_t n, int t, uint8_t hi,
                                uint8_t lo)
{
    uint8_t t8 = (uint8_t)t;

    for (size_t i = 0; i < n; i++)
        d[i] = s[i] > t8 ? hi : lo;
}

DIP_HOT static void thresh_row2(const uint8_t *s, uint8_t *d, size_t n, int t, uint8_t hi,
                                uint8_t lo)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t g = s[2 * i], a = s[2 * i + 1];
        d[2 * i] = g > t ? hi : lo;
        d[2 * i + 1] = a;
    }
}

/* Colour: gray of a chunk into a local buffer (the AVX2 kernel), then the compare. */
static void thresh_row3(const uint8_t *s, uint8_t *d, size_t n, int t, uint8_t hi, uint8_t lo)
{
    uint8_t g[1024];

    for (size_t x = 0; x < n; x += sizeof(g)) {
        size_t m = n - x < sizeof(g) ? n - x : sizeof(g);
        gray_bytes(s + 3 * x, g, m, 3);
        thresh_row1(g, d + x, m, t, hi, lo);
    }
}

static void thresh_row4(const uint8_t *s, uint8_t *d, size_t n, int t, uint8_t hi, uint8_t lo)
{
    uint8_t g[1024];

    for (size_t x = 0; x < n; x += sizeof(g)) {
        size_t m = n - x < sizeof(g) ? n - x : sizeof(g);
        gray_bytes(s + 4 * x, g, m, 4);
        thresh_row1(g, g, m, t, hi, lo);
        with_alpha(g, s + 4 * x, d + 2 * x, m);
    }
}

/* Shared with otsu (stats.c): binary threshold of the gray value at `t`. */
void dip__threshold_view(const struct dip_view *in, const struct dip_view *out, int t, int max,
                         int invert);
void dip__threshold_view(const struct dip_view *in, const struct dip_view *out, int t, int max,
                         int invert)
{
    uint8_t hi = (uint8_t)(invert ? 0 : max), lo = (uint8_t)(invert ? max : 0);
    size_t n = (size_t)out->width;

    for (int y = 0; y < out->height; y++) {
        const uint8_t *s = in->data + (size_t)y * in->stride;
        uint8_t *d = out->data + (size_t)y * out->stride;
        switch (in->channels) {
        case 1:
            thresh_row1(s, d, n, t, hi, lo);
            break;
        case 2:
            thresh_row2(s, d, n, t, hi, lo);
            break;
        case 3:
            thresh_row3(s, d, n, t, hi, lo);
            break;
        default:
            thresh_row4(s, d, n, t, hi, lo);
            break;
        }
    }
}

static int threshold_tile(const void *args, const struct dip_tile *t)
{
    const struct threshold_args *a = args;

    dip__threshold_view(&t->in, &t->out, a->t, a->max, a->invert);
    return 0;
}

const struct dip_op dip_op_threshold = {
    .name = "threshold",
    .version = 1,
    .summary = "Binary threshold of the gray value: gray > t ? max : 0",
    .doc = "out = gray > t ? max : 0 (invert=true: gray > t ? 0 : max), where gray is the "
           "fixed-point luma of op gray (colour is converted first; alpha is kept, so RGBA gives "
           "gray+alpha). Identical to cv2.threshold(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), t, "
           "max, cv2.THRESH_BINARY or THRESH_BINARY_INV).",
    .kind = DIP_OP_POINT,
    .args_size = sizeof(struct threshold_args),
    .params = threshold_params,
    .n_params = DIP_COUNTOF(threshold_params),
    .out_channels = gray_out_channels,
    .tile = threshold_tile,
};

/* ---- hsv ---- */

struct hsv_args {
    int h, s, v;
    int sdiv[256];     /* OpenCV's RGB2HSV_b tables: round((255 << 12) / i) */
    int hdiv[256];     /* round((180 << 12) / (6 i)) */
    uint8_t vlut[256]; /* v shift, saturating (also the whole op on gray input) */
};

static const struct dip_param hsv_params[] = {
    DIP_PARAM_INT(struct hsv_args, h, -180, 180, 0,
                  "Hue shift in OpenCV units (0..180 = 0..360 degrees), wrapping around"),
    DIP_PARAM_INT(struct hsv_args, s, -255, 255, 0, "Saturation shift, saturating at 0 and 255"),
    DIP_PARAM_INT(struct hsv_args, v, -255, 255, 50, "Value shift, saturating at 0 and 255"),
};

static int hsv_prepare(void *args, int in_channels, struct dip_err *err)
{
    struct hsv_args *a = args;

    (void)in_channels;
    (void)err;
    a->sdiv[0] = a->hdiv[0] = 0;
    for (int i = 1; i < 256; i++) {
        a->sdiv[i] = (int)lrint((255 << 12) / (1. * i));
        a->hdiv[i] = (int)lrint((180 << 12) / (6. * i));
    }
    for (int i = 0; i < 256; i++) {
        int o = i + a->v;
        a->vlut[i] = (uint8_t)(o < 0 ? 0 : o > 255 ? 255 : o);
    }
    return 0;
}

static inline int sat8(int x)
{
    return x < 0 ? 0 : x > 255 ? 255 : x;
}

/* float -> uint8 by truncation, as OpenCV's vector HSV2RGB_b (v_trunc, then saturating packs).
 * The argument is within -1..256 here, so the int conversion is defined. */
static inline uint8_t trunc_u8(float f)
{
    int i = (int)f;
    return (uint8_t)(i < 0 ? 0 : i > 255 ? 255 : i);
}

/* a where the mask m is all ones, b where it is 0, without a branch. */
static inline float fsel(int m, float a, float b)
{
    uint32_t ia, ib, r;
    float f;

    memcpy(&ia, &a, sizeof(ia));
    memcpy(&ib, &b, sizeof(ib));
    r = (ia & (uint32_t)m) | (ib & ~(uint32_t)m);
    memcpy(&f, &r, sizeof(f));
    return f;
}

/* One pixel of hsv; `ch` is a constant in each caller, so the loops have no branches and
 * vectorise (the two table lookups become gathers under AVX2). */
static inline __attribute__((always_inline)) void hsv_px(const uint8_t *p, uint8_t *q, int ch,
                                                         const struct hsv_args *a,
                                                         const int *restrict sdiv,
                                                         const int *restrict hdiv)
{
    const float hscale = 6.0f / 180.0f, k255 = 1.0f / 255.0f;
    int r = p[0], g = p[1], b = p[2];
    int v = r > g ? r : g, vmin = r < g ? r : g;
    v = v > b ? v : b;
    vmin = vmin < b ? vmin : b;
    int diff = v - vmin;
    int vr = v == r ? -1 : 0, vg = v == g ? -1 : 0;
    /* OpenCV RGB2HSV_b, hue range 180. */
    int s = (diff * sdiv[v] + (1 << 11)) >> 12;
    int h = (vr & (g - b)) + (~vr & ((vg & (b - r + 2 * diff)) + (~vg & (r - g + 4 * diff))));
    h = (h * hdiv[diff] + (1 << 11)) >> 12;
    h += h < 0 ? 180 : 0;
    /* The adjustment: hue wraps, saturation and value saturate. */
    h = (h + a->h + 360) % 180;
    s = sat8(s + a->s);
    v = sat8(v + a->v);
    /* OpenCV HSV2RGB_b's vector path: float, sector by truncation, 8 bits by truncation. */
    float fh = (float)h * hscale, fs = (float)s * k255, fv = (float)v * k255;
    int sec = (int)fh;
    fh = fh - (float)sec;
    float t0 = fv, t1 = fv * (1.0f - fs), t2 = fv * (1.0f - fs * fh);
    float t3 = fv * (1.0f - fs * (1.0f - fh));
    /* Bit-mask selects: GCC turns float ?: into branches, which stop the vectoriser. */
    int m0 = -(sec == 0), m1 = -(sec == 1), m2 = -(sec == 2), m3 = -(sec == 3);
    int m4 = -(sec == 4), m5 = -(sec == 5);
    float rr = fsel(m0 | m5, t0, fsel(m1, t2, fsel(m4, t3, t1)));
    float gg = fsel(m1 | m2, t0, fsel(m0, t3, fsel(m3, t2, t1)));
    float bb = fsel(m3 | m4, t0, fsel(m2, t3, fsel(m5, t2, t1)));
    uint8_t ro = trunc_u8(rr * 255.0f), go = trunc_u8(gg * 255.0f), bo = trunc_u8(bb * 255.0f);
    uint8_t alpha = p[ch - 1];
    q[0] = ro;
    q[1] = go;
    q[2] = bo;
    if (ch == 4)
        q[3] = alpha;
}

/* Local copies of the tables: the vectoriser's gathers cannot alias the output row. */
DIP_HOT static void hsv_row3(const uint8_t *src, uint8_t *dst, size_t n, const struct hsv_args *a)
{
    int sdiv[256], hdiv[256];

    memcpy(sdiv, a->sdiv, sizeof(sdiv));
    memcpy(hdiv, a->hdiv, sizeof(hdiv));
    for (size_t i = 0; i < n; i++)
        hsv_px(src + 3 * i, dst + 3 * i, 3, a, sdiv, hdiv);
}

DIP_HOT static void hsv_row4(const uint8_t *src, uint8_t *dst, size_t n, const struct hsv_args *a)
{
    int sdiv[256], hdiv[256];

    memcpy(sdiv, a->sdiv, sizeof(sdiv));
    memcpy(hdiv, a->hdiv, sizeof(hdiv));
    for (size_t i = 0; i < n; i++)
        hsv_px(src + 4 * i, dst + 4 * i, 4, a, sdiv, hdiv);
}

static int hsv_tile(const void *args, const struct dip_tile *t)
{
    const struct hsv_args *a = args;
    int ch = t->out.channels;

    for (int y = 0; y < t->out.height; y++) {
        const uint8_t *s = t->in.data + (size_t)y * t->in.stride;
        uint8_t *d = t->out.data + (size_t)y * t->out.stride;
        if (ch == 3)
            hsv_row3(s, d, (size_t)t->out.width, a);
        else if (ch == 4)
            hsv_row4(s, d, (size_t)t->out.width, a);
        else
            dip__lut_row(s, d, t->out.width, ch, a->vlut);
    }
    return 0;
}

const struct dip_op dip_op_hsv = {
    .name = "hsv",
    .version = 1,
    .summary = "Shift hue (wrapping), saturation and value (saturating) in OpenCV's HSV",
    .doc = "Converts each pixel to HSV exactly as cv2.cvtColor(img, cv2.COLOR_RGB2HSV) (8-bit: "
           "H in 0..179, i.e. degrees/2; S, V in 0..255), then H = (H + h) mod 180, "
           "S = clip(S + s), V = clip(V + v), and converts back as cv2.COLOR_HSV2RGB (float, "
           "truncated as OpenCV's vector path does). At most 1 level apart from that OpenCV "
           "composition (OpenCV's scalar tail of each row rounds instead). Alpha is passed "
           "through. Gray input has no "
           "hue or saturation: only v applies and the output stays gray.",
    .kind = DIP_OP_POINT,
    .args_size = sizeof(struct hsv_args),
    .params = hsv_params,
    .n_params = DIP_COUNTOF(hsv_params),
    .prepare = hsv_prepare,
    .tile = hsv_tile,
};
