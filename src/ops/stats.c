/* SPDX-License-Identifier: MIT */
/* Global-statistic operations: Otsu threshold, histogram equalisation and percentile contrast
 * stretch. Each collects a 256-bin histogram (64-bit counts, summed exactly across tiles and
 * workers), turns the whole image's histogram into a threshold or a LUT in stat_finish(), and
 * then maps pixels as a point operation. Never a per-tile or per-strip approximation. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernel.h"

#define HIST_BYTES (256 * sizeof(uint64_t))

static void hist_merge(const void *args, void *acc, const void *partial)
{
    uint64_t *a = acc;
    const uint64_t *p = partial;

    (void)args;
    for (int i = 0; i < 256; i++)
        a[i] += p[i];
}

static void gray_hist_tile(const void *args, const struct dip_view *in, void *partial)
{
    (void)args;
    dip__gray_hist(in, partial, 0);
}

/* Equalize counts YCrCb's Y (14-bit weights), as the OpenCV composition it matches. */
static void ycc_hist_tile(const void *args, const struct dip_view *in, void *partial)
{
    (void)args;
    dip__gray_hist(in, partial, 1);
}

static int gray_out_channels(const void *args, int in_channels)
{
    (void)args;
    return dip__gray_channels(in_channels);
}

void dip__threshold_view(const struct dip_view *in, const struct dip_view *out, int t, int max,
                         int invert);

/* ---- otsu ---- */

struct otsu_args {
    int max;
    int invert;
    int thresh; /* found by stat_finish */
};

static const struct dip_param otsu_params[] = {
    DIP_PARAM_INT(struct otsu_args, max, 0, 255, 255, "Value of pixels above the threshold"),
    DIP_PARAM_BOOL(struct otsu_args, invert, 0, "THRESH_BINARY_INV: above gives 0"),
};

/* OpenCV's getThreshVal_Otsu_8u, in the same double-precision order. */
static int otsu_finish(void *args, const void *acc, int in_w, int in_h, int in_channels)
{
    struct otsu_args *a = args;
    const uint64_t *h = acc;
    double total = 0, mu = 0, mu1 = 0, q1 = 0, max_sigma = 0;
    int max_val = 0;

    (void)in_w;
    (void)in_h;
    (void)in_channels;
    for (int i = 0; i < 256; i++)
        total += (double)h[i];
    if (total <= 0) {
        a->thresh = 0;
        return 0;
    }
    double scale = 1. / total;
    for (int i = 0; i < 256; i++)
        mu += i * (double)h[i];
    mu *= scale;
    for (int i = 0; i < 256; i++) {
        double p_i = (double)h[i] * scale, q2, mu2, sigma;
        mu1 *= q1;
        q1 += p_i;
        q2 = 1. - q1;
        if ((q1 < q2 ? q1 : q2) < FLT_EPSILON || (q1 > q2 ? q1 : q2) > 1. - FLT_EPSILON)
            continue;
        mu1 = (mu1 + i * p_i) / q1;
        mu2 = (mu - q1 * mu1) / q2;
        sigma = q1 * q2 * (mu1 - mu2) * (mu1 - mu2);
        if (sigma > max_sigma) {
            max_sigma = sigma;
            max_val = i;
        }
    }
    a->thresh = max_val;
    return 0;
}

static int otsu_tile(const void *args, const struct dip_tile *t)
{
    const struct otsu_args *a = args;

    dip__threshold_view(&t->in, &t->out, a->thresh, a->max, a->invert);
    return 0;
}

const struct dip_op dip_op_otsu = {
    .name = "otsu",
    .version = 1,
    .summary = "Binary threshold at Otsu's threshold of the whole image's gray histogram",
    .doc = "Finds the threshold maximising the between-class variance of the gray histogram of "
           "the whole image (OpenCV's getThreshVal_Otsu_8u, same double arithmetic), then "
           "out = gray > T ? max : 0 as op threshold. Identical to cv2.threshold(gray, 0, max, "
           "cv2.THRESH_BINARY | cv2.THRESH_OTSU) on gray = cv2.cvtColor(img, COLOR_RGB2GRAY). "
           "RGBA gives gray+alpha (alpha is not counted in the histogram).",
    .kind = DIP_OP_STAT,
    .args_size = sizeof(struct otsu_args),
    .params = otsu_params,
    .n_params = DIP_COUNTOF(otsu_params),
    .out_channels = gray_out_channels,
    .tile = otsu_tile,
    .stat_size = HIST_BYTES,
    .stat_tile = gray_hist_tile,
    .stat_merge = hist_merge,
    .stat_finish = otsu_finish,
};

/* ---- equalize ---- */

struct equalize_args {
    uint8_t lut[256];
};

/* cv2.equalizeHist: lut[first nonempty bin] = 0, then round(cumulative * 255 / (total - h0)) in
 * single precision, rounded half to even. A flat image maps to its own value. */
static int equalize_finish(void *args, const void *acc, int in_w, int in_h, int in_channels)
{
    struct equalize_args *a = args;
    const uint64_t *h = acc;
    uint64_t total = 0, sum = 0;
    int i = 0;

    (void)in_w;
    (void)in_h;
    (void)in_channels;
    for (int v = 0; v < 256; v++)
        total += h[v];
    while (i < 256 && h[i] == 0)
        i++;
    if (i == 256 || h[i] == total) {
        for (int v = 0; v < 256; v++)
            a->lut[v] = (uint8_t)(i == 256 ? v : i);
        return 0;
    }
    float scale = (256 - 1.f) / (float)(total - h[i]);
    for (int v = 0; v < i; v++)
        a->lut[v] = 0;
    a->lut[i++] = 0;
    for (; i < 256; i++) {
        sum += h[i];
        float f = (float)sum * scale;
        long r = lrintf(f);
        a->lut[i] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
    }
    return 0;
}

/* Colour: through OpenCV's integer YCrCb (BT.601, 14-bit), Y replaced by lut[Y], back to RGB.
 * `ch` is a constant in each caller, so the loops vectorise (the lookup becomes a gather). */
static inline __attribute__((always_inline)) void equalize_px(const uint8_t *p, uint8_t *q, int ch,
                                                              const int *lut)
{
    const int half = 128 << DIP_YSHIFT, rnd = 1 << (DIP_YSHIFT - 1);
    int r = p[0], g = p[1], b = p[2];
    int y = dip__luma14(r, g, b);
    int cr = ((r - y) * 11682 + half + rnd) >> DIP_YSHIFT;
    int cb = ((b - y) * 9241 + half + rnd) >> DIP_YSHIFT;
    cr = cr < 0 ? 0 : cr > 255 ? 255 : cr;
    cb = cb < 0 ? 0 : cb > 255 ? 255 : cb;
    int ny = lut[y];
    int ro = ny + (((cr - 128) * 22987 + rnd) >> DIP_YSHIFT);
    int go = ny + (((cb - 128) * -5636 + (cr - 128) * -11698 + rnd) >> DIP_YSHIFT);
    int bo = ny + (((cb - 128) * 29049 + rnd) >> DIP_YSHIFT);
    uint8_t alpha = p[ch - 1];
    q[0] = (uint8_t)(ro < 0 ? 0 : ro > 255 ? 255 : ro);
    q[1] = (uint8_t)(go < 0 ? 0 : go > 255 ? 255 : go);
    q[2] = (uint8_t)(bo < 0 ? 0 : bo > 255 ? 255 : bo);
    if (ch == 4)
        q[3] = alpha;
}

/* The LUT is copied to a local int table: the gathers then cannot alias the output row. */
DIP_HOT static void equalize_row3(const uint8_t *src, uint8_t *dst, size_t n, const uint8_t *lut8)
{
    int lut[256];

    for (int i = 0; i < 256; i++)
        lut[i] = lut8[i];
    for (size_t i = 0; i < n; i++)
        equalize_px(src + 3 * i, dst + 3 * i, 3, lut);
}

DIP_HOT static void equalize_row4(const uint8_t *src, uint8_t *dst, size_t n, const uint8_t *lut8)
{
    int lut[256];

    for (int i = 0; i < 256; i++)
        lut[i] = lut8[i];
    for (size_t i = 0; i < n; i++)
        equalize_px(src + 4 * i, dst + 4 * i, 4, lut);
}

static int equalize_tile(const void *args, const struct dip_tile *t)
{
    const struct equalize_args *a = args;
    int ch = t->out.channels;

    for (int y = 0; y < t->out.height; y++) {
        const uint8_t *s = t->in.data + (size_t)y * t->in.stride;
        uint8_t *d = t->out.data + (size_t)y * t->out.stride;
        if (ch == 3)
            equalize_row3(s, d, (size_t)t->out.width, a->lut);
        else if (ch == 4)
            equalize_row4(s, d, (size_t)t->out.width, a->lut);
        else
            dip__lut_row(s, d, t->out.width, ch, a->lut);
    }
    return 0;
}

const struct dip_op dip_op_equalize = {
    .name = "equalize",
    .version = 1,
    .summary = "Histogram equalisation over the whole image (luma of colour images)",
    .doc = "Builds the histogram of the whole image's gray values and maps them as "
           "cv2.equalizeHist: identical to it on gray images (gray+alpha keeps alpha). Colour "
           "images equalise the luma: each pixel goes to YCrCb with OpenCV's integer "
           "conversion, Y becomes lut[Y], and it comes back with OpenCV's integer YCrCb->RGB, "
           "so the result is identical to the usual composition ycc = cv2.cvtColor(img, "
           "COLOR_RGB2YCrCb); ycc[..., 0] = cv2.equalizeHist(ycc[..., 0]); "
           "cv2.cvtColor(ycc, COLOR_YCrCb2RGB). Alpha is passed through and not counted.",
    .kind = DIP_OP_STAT,
    .args_size = sizeof(struct equalize_args),
    .tile = equalize_tile,
    .stat_size = HIST_BYTES,
    .stat_tile = ycc_hist_tile,
    .stat_merge = hist_merge,
    .stat_finish = equalize_finish,
};

/* ---- stretch ---- */

struct stretch_args {
    double low, high;
    uint8_t lut[256];
    int lo, hi;  /* the percentiles found */
    float scale; /* 255 / (hi - lo) in single precision, for the arithmetic form of the map */
    int arith;   /* 1 when the arithmetic form reproduces lut (checked in stat_finish) */
};

static const struct dip_param stretch_params[] = {
    DIP_PARAM_DOUBLE(struct stretch_args, low, 0, 100, 0,
                     "Percentile mapped to 0 (0 = the darkest value)"),
    DIP_PARAM_DOUBLE(struct stretch_args, high, 0, 100, 100,
                     "Percentile mapped to 255 (100 = the brightest value)"),
};

static int stretch_prepare(void *args, int in_channels, struct dip_err *err)
{
    const struct stretch_args *a = args;

    (void)in_channels;
    if (a->low >= a->high)
        return dip_err_set(err, DIP_EINVAL, "stretch: low=%g must be below high=%g", a->low,
                           a->high);
    return 0;
}

/* Histogram of every colour channel value (R, G and B together, so hue is kept). Four
 * sub-histograms keep runs of equal values from serialising on one counter; 32-bit counts are
 * flushed every 1024 rows. */
/* Smallest and largest colour value of a row of n bytes (ch 1 or 3: every byte). */
DIP_HOT static void minmax_row(const uint8_t *s, size_t n, uint8_t *mn, uint8_t *mx)
{
    uint8_t a = *mn, b = *mx;

    for (size_t i = 0; i < n; i++) {
        a = s[i] < a ? s[i] : a;
        b = s[i] > b ? s[i] : b;
    }
    *mn = a;
    *mx = b;
}

static void stretch_stat_tile(const void *args, const struct dip_view *in, void *partial)
{
    const struct stretch_args *a = args;
    uint64_t *hist = partial;
    int ch = in->channels;
    uint32_t h[4][256];

    /* The default 0..100 needs only the extremes: each tile adds one count at its minimum and
     * one at its maximum, and ranks 0 and n-1 of the merged counts are the image's extremes. */
    if (a->low == 0 && a->high == 100 && (ch == 1 || ch == 3) && in->width > 0 && in->height > 0) {
        uint8_t mn = 255, mx = 0;
        for (int y = 0; y < in->height; y++)
            minmax_row(in->data + (size_t)y * in->stride, (size_t)in->width * (size_t)ch, &mn, &mx);
        hist[mn]++;
        hist[mx]++;
        return;
    }
    memset(h, 0, sizeof(h));
    for (int y = 0; y < in->height; y++) {
        const uint8_t *s = in->data + (size_t)y * in->stride;
        size_t n = (size_t)in->width * (size_t)ch, i = 0;
        if (ch == 1 || ch == 3) {
            for (; i + 4 <= n; i += 4) {
                h[0][s[i]]++;
                h[1][s[i + 1]]++;
                h[2][s[i + 2]]++;
                h[3][s[i + 3]]++;
            }
            for (; i < n; i++)
                h[0][s[i]]++;
        } else if (ch == 2) {
            for (; i < n; i += 2)
                h[(i >> 1) & 3][s[i]]++;
        } else {
            for (; i < n; i += 4) {
                h[0][s[i]]++;
                h[1][s[i + 1]]++;
                h[2][s[i + 2]]++;
            }
        }
        if (y % 1024 == 1023 || y == in->height - 1) {
            for (int v = 0; v < 256; v++)
                hist[v] += (uint64_t)h[0][v] + h[1][v] + h[2][v] + h[3][v];
            memset(h, 0, sizeof(h));
        }
    }
}

/* The value at 0-based rank k of the sorted values described by `h`. */
static int rank_value(const uint64_t *h, uint64_t k)
{
    uint64_t cum = 0;

    for (int v = 0; v < 256; v++) {
        cum += h[v];
        if (cum > k)
            return v;
    }
    return 255;
}

/* The map without a table, for the vectoriser: floor((c - lo) * 255 / (hi - lo) + 1/2) with
 * c = clamp(v, lo, hi). The exact value's fraction is a multiple of 1 / (2 (hi - lo)), so it is
 * either 0 or at most 1 - 1/510; the single-precision product is within 6e-5 of it, and adding
 * 2^-10 before truncating lands on the right integer in both cases. stat_finish checks all 256
 * values against the LUT anyway. (Two plain clamps: a nested ?: stops GCC's vectoriser.) */
static inline int stretch_value(int v, int lo, int hi, float scale)
{
    int c = v < lo ? lo : v;
    c = c > hi ? hi : c;
    return (int)((float)(c - lo) * scale + 0.5009765625f);
}

static int stretch_finish(void *args, const void *acc, int in_w, int in_h, int in_channels)
{
    struct stretch_args *a = args;
    const uint64_t *h = acc;
    uint64_t n = 0;

    (void)in_w;
    (void)in_h;
    (void)in_channels;
    for (int v = 0; v < 256; v++)
        n += h[v];
    if (n == 0) {
        for (int v = 0; v < 256; v++)
            a->lut[v] = (uint8_t)v;
        return 0;
    }
    /* numpy's percentile(method='lower') and (method='higher'). */
    double vlo = a->low / 100.0 * (double)(n - 1), vhi = a->high / 100.0 * (double)(n - 1);
    int lo = rank_value(h, (uint64_t)floor(vlo));
    int hi = rank_value(h, (uint64_t)ceil(vhi));
    for (int v = 0; v < 256; v++) {
        if (hi <= lo) {
            a->lut[v] = (uint8_t)v;
            continue;
        }
        int num = (v - lo) * 255 * 2 + (hi - lo), den = 2 * (hi - lo);
        int o = num < 0 ? -((-num + den - 1) / den) : num / den; /* floor division */
        a->lut[v] = (uint8_t)(o < 0 ? 0 : o > 255 ? 255 : o);
    }
    a->lo = lo;
    a->hi = hi;
    a->arith = 0;
    if (hi > lo) {
        a->scale = (float)(255.0 / (hi - lo));
        a->arith = 1;
        for (int v = 0; v < 256; v++)
            a->arith &= stretch_value(v, lo, hi, a->scale) == a->lut[v];
    }
    return 0;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(DIP_NO_CLONES)
#include <immintrin.h>
#define HAVE_STRETCH_AVX2 1
/* stretch_value on 32 bytes a round: clamp and subtract in bytes, then the same single-precision
 * multiply, add and truncation. */
__attribute__((target("avx2"))) static size_t stretch_avx2(const uint8_t *s, uint8_t *d, size_t n,
                                                           int lo, int hi, float scale)
{
    const __m256i vlo = _mm256_set1_epi8((char)lo), vhi = _mm256_set1_epi8((char)hi);
    const __m256 vs = _mm256_set1_ps(scale), voff = _mm256_set1_ps(0.5009765625f);
    size_t i = 0;

    for (; i + 32 <= n; i += 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(s + i));
        x = _mm256_sub_epi8(_mm256_min_epu8(_mm256_max_epu8(x, vlo), vhi), vlo);
        __m128i h0 = _mm256_castsi256_si128(x), h1 = _mm256_extracti128_si256(x, 1);
        __m128i parts[4] = {h0, _mm_srli_si128(h0, 8), h1, _mm_srli_si128(h1, 8)};
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[k]));
            q[k] = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(f, vs), voff));
        }
        __m256i w0 = _mm256_packs_epi32(q[0], q[1]), w1 = _mm256_packs_epi32(q[2], q[3]);
        __m256i v = _mm256_packus_epi16(w0, w1);
        v = _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(void *)(d + i), v);
    }
    return i;
}
#endif

DIP_HOT static void stretch_tail(const uint8_t *s, uint8_t *d, size_t n, int lo, int hi,
                                 float scale)
{
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)stretch_value(s[i], lo, hi, scale);
}

static void stretch_row(const uint8_t *s, uint8_t *d, size_t n, int lo, int hi, float scale)
{
    size_t i = 0;

#ifdef HAVE_STRETCH_AVX2
    if (__builtin_cpu_supports("avx2"))
        i = stretch_avx2(s, d, n, lo, hi, scale);
#endif
    stretch_tail(s + i, d + i, n - i, lo, hi, scale);
}

static int stretch_tile(const void *args, const struct dip_tile *t)
{
    const struct stretch_args *a = args;
    int ch = t->out.channels, ident = 1;

    /* A photo that already spans 0..255 maps to itself: copy it (alpha included). */
    for (int v = 0; v < 256; v++)
        ident &= a->lut[v] == v;
    for (int y = 0; y < t->out.height; y++) {
        const uint8_t *s = t->in.data + (size_t)y * t->in.stride;
        uint8_t *d = t->out.data + (size_t)y * t->out.stride;
        if (ident) {
            if (d != s)
                memcpy(d, s, (size_t)t->out.width * (size_t)ch);
        } else if (a->arith && (ch == 1 || ch == 3))
            stretch_row(s, d, (size_t)t->out.width * (size_t)ch, a->lo, a->hi, a->scale);
        else
            dip__lut_row(s, d, t->out.width, ch, a->lut);
    }
    return 0;
}

const struct dip_op dip_op_stretch = {
    .name = "stretch",
    .version = 1,
    .summary = "Linear contrast stretch between two percentiles of the whole image",
    .doc = "lo = the low-th percentile and hi = the high-th percentile of all colour-channel "
           "values of the whole image (R, G and B pooled, so hues are kept; alpha excluded), "
           "then out = clip(floor(((in - lo) * 255 * 2 + (hi - lo)) / (2 * (hi - lo))), 0, 255), "
           "i.e. (in - lo) * 255 / (hi - lo) rounded half up. numpy: "
           "lo = np.percentile(c, low, method='lower'); hi = np.percentile(c, high, "
           "method='higher') with c = img[..., :3]. When hi <= lo (flat image) the image is "
           "unchanged. Alpha is passed through.",
    .kind = DIP_OP_STAT,
    .args_size = sizeof(struct stretch_args),
    .params = stretch_params,
    .n_params = DIP_COUNTOF(stretch_params),
    .prepare = stretch_prepare,
    .tile = stretch_tile,
    .stat_size = HIST_BYTES,
    .stat_tile = stretch_stat_tile,
    .stat_merge = hist_merge,
    .stat_finish = stretch_finish,
};
