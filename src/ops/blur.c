/* SPDX-License-Identifier: MIT */
/* Smoothing stencils: box, gaussian, median, bilateral, and the unsharp mask (sharpen) built on
 * the gaussian. Each matches its OpenCV counterpart on 8-bit data (the same integer or
 * fixed-point arithmetic, the same default border), and computes a pixel from its window only,
 * so any tiling gives the same bytes. The executor pads the borders; nothing here tests them.
 * Kernels are written as flat loops over a row of channel values (neighbours `cn` apart) that
 * the compiler vectorises; the hottest are also built for AVX2 (integer code, same results). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dip/op.h"
#include "kernel.h" /* -O3, the AVX2 clones (DIP_HOT), row_at, luma */

static int bad_size(const char *op, const char *name, int v, struct dip_err *err)
{
    return dip_err_set(err, DIP_EINVAL, "%s: %s=%d must be odd", op, name, v);
}

/* ---- box ---- */

struct box_args {
    int size;
    /* prepare(): the mean is (s + area/2) / area, done as ((s + area/2) * mul) >> shift when the
     * window fits 16-bit sums (size <= 13), with 2^shift >= 256 * area^2 so that the product
     * never rounds across an integer (error < (s + area/2) / 2^shift < 1 / area). */
    int area, narrow, shift;
    uint32_t mul;
};

static const struct dip_param box_params[] = {
    DIP_PARAM_INT_ODD(struct box_args, size, 1, 255, 5, "Window side in pixels (odd)"),
};

static int box_prepare(void *args, int in_channels, struct dip_err *err)
{
    struct box_args *a = args;

    (void)in_channels;
    if (a->size % 2 == 0)
        return bad_size("box", "size", a->size, err);
    a->area = a->size * a->size;
    a->narrow = a->size <= 13;
    a->shift = 0;
    while ((1ull << a->shift) < 256ull * (uint64_t)a->area * (uint64_t)a->area)
        a->shift++;
    a->mul = (uint32_t)(((1ull << a->shift) + (uint64_t)a->area - 1) / (uint64_t)a->area);
    return 0;
}

static void stencil_halo(int r, struct dip_halo *h)
{
    *h = (struct dip_halo){.left = r, .right = r, .top = r, .bottom = r};
}

static void box_halo(const void *args, struct dip_halo *h)
{
    stencil_halo(((const struct box_args *)args)->size / 2, h);
}

/* hs[i] = sum of k column sums cn apart, for a constant k (inlined and unrolled). */
DIP_INLINE void box_hsum(const uint16_t *col, uint16_t *hs, size_t m, size_t cn, int k)
{
    for (size_t i = 0; i < m; i++) {
        uint16_t s = 0;
        for (int j = 0; j < k; j++)
            s = (uint16_t)(s + col[i + (size_t)j * cn]);
        hs[i] = s;
    }
}

/* size <= 13: column sums kept incrementally in 16 bits, horizontal sums from them. */
DIP_HOT static void box_narrow(const struct box_args *a, const struct dip_tile *t, uint16_t *col,
                               uint16_t *hs)
{
    int k = a->size;
    size_t cn = (size_t)t->out.channels;
    size_t n = (size_t)t->in.width * cn, m = (size_t)t->out.width * cn;
    uint32_t half = (uint32_t)a->area / 2, mul = a->mul;
    int shift = a->shift;

    memset(col, 0, n * sizeof(*col));
    for (int j = 0; j < k; j++) {
        const uint8_t *s = dip__row_at(&t->in, j);
        for (size_t i = 0; i < n; i++)
            col[i] = (uint16_t)(col[i] + s[i]);
    }
    for (int y = 0; y < t->out.height; y++) {
        uint8_t *d = dip__row_at(&t->out, y);
        if (y > 0) {
            const uint8_t *add = dip__row_at(&t->in, y + k - 1), *sub = dip__row_at(&t->in, y - 1);
            for (size_t i = 0; i < n; i++)
                col[i] = (uint16_t)(col[i] + add[i] - sub[i]);
        }
        switch (k) {
        case 3:
            box_hsum(col, hs, m, cn, 3);
            break;
        case 5:
            box_hsum(col, hs, m, cn, 5);
            break;
        default:
            memcpy(hs, col, m * sizeof(*hs));
            for (int j = 1; j < k; j++) {
                const uint16_t *c = col + (size_t)j * cn;
                for (size_t i = 0; i < m; i++)
                    hs[i] = (uint16_t)(hs[i] + c[i]);
            }
            break;
        }
        for (size_t i = 0; i < m; i++)
            d[i] = (uint8_t)(((uint32_t)hs[i] + half) * mul >> shift);
    }
}

/* Large windows: 32-bit column sums, running horizontal sums, exact division. */
static void box_wide(const struct box_args *a, const struct dip_tile *t, uint32_t *col)
{
    int k = a->size;
    size_t cn = (size_t)t->out.channels;
    size_t n = (size_t)t->in.width * cn;
    uint32_t half = (uint32_t)a->area / 2, area = (uint32_t)a->area;

    memset(col, 0, n * sizeof(*col));
    for (int j = 0; j < k; j++) {
        const uint8_t *s = dip__row_at(&t->in, j);
        for (size_t i = 0; i < n; i++)
            col[i] += s[i];
    }
    for (int y = 0; y < t->out.height; y++) {
        uint8_t *d = dip__row_at(&t->out, y);
        if (y > 0) {
            const uint8_t *add = dip__row_at(&t->in, y + k - 1), *sub = dip__row_at(&t->in, y - 1);
            for (size_t i = 0; i < n; i++)
                col[i] = col[i] + add[i] - sub[i];
        }
        for (size_t c = 0; c < cn; c++) {
            uint32_t s = 0;
            for (int j = 0; j < k; j++)
                s += col[(size_t)j * cn + c];
            for (int x = 0; x < t->out.width; x++) {
                size_t i = (size_t)x * cn + c;
                d[i] = (uint8_t)((s + half) / area);
                if (x + 1 < t->out.width)
                    s = s + col[i + (size_t)k * cn] - col[i];
            }
        }
    }
}

static int box_tile(const void *args, const struct dip_tile *t)
{
    const struct box_args *a = args;
    size_t n = (size_t)t->in.width * (size_t)t->in.channels;
    void *mem;

    if (a->narrow) {
        mem = dip_malloc(2 * n * sizeof(uint16_t));
        if (mem == NULL)
            return DIP_ENOMEM;
        box_narrow(a, t, mem, (uint16_t *)mem + n);
    } else {
        mem = dip_malloc(n * sizeof(uint32_t));
        if (mem == NULL)
            return DIP_ENOMEM;
        box_wide(a, t, mem);
    }
    dip_free(mem);
    return 0;
}

const struct dip_op dip_op_box = {
    .name = "box",
    .version = 1,
    .summary = "Box blur: mean of a size x size window",
    .doc = "out = round(sum of the size x size window / size^2), exact integer rounding, every "
           "channel (alpha too). Border: reflect-101 (gfedcb|abcdefgh). Same bytes as "
           "cv2.blur(img, (size, size)). size is odd, 1..255.",
    .kind = DIP_OP_STENCIL,
    .args_size = sizeof(struct box_args),
    .params = box_params,
    .n_params = DIP_COUNTOF(box_params),
    .edge = DIP_EDGE_REFLECT101,
    .prepare = box_prepare,
    .halo = box_halo,
    .tile = box_tile,
};

/* ---- gaussian ---- */

#define GAUSS_MAX 121

/* The kernel as OpenCV's 8-bit GaussianBlur builds it: 8 fraction bits, summing to exactly 256,
 * so that out = (sum_ij k_i k_j p_ij + 2^15) >> 16 with no intermediate rounding. */
struct gauss_kernel {
    int ksize;
    uint16_t k[GAUSS_MAX];
    /* k = b << shift for the largest common shift (at most 7). With shift >= 4 every sum fits
     * 16 bits: out = (sum_ij b_i b_j p + 2^(15 - 2 shift)) >> (16 - 2 shift), the same value. */
    int shift;
    uint16_t b[GAUSS_MAX];
};

static void gauss_reduce(struct gauss_kernel *g)
{
    int s = 7;

    for (int i = 0; i < g->ksize; i++)
        while (s > 0 && (g->k[i] & ((1u << s) - 1)) != 0)
            s--;
    g->shift = s;
    for (int i = 0; i < g->ksize; i++)
        g->b[i] = (uint16_t)(g->k[i] >> s);
}

struct gaussian_args {
    int size;
    double sigma;
    struct gauss_kernel kern; /* prepare() */
};

static const struct dip_param gaussian_params[] = {
    DIP_PARAM_INT_ODD(struct gaussian_args, size, 0, GAUSS_MAX, 5,
                      "Kernel side (odd); 0: from sigma, round(6 sigma + 1) made odd"),
    DIP_PARAM_DOUBLE(struct gaussian_args, sigma, 0, 20, 0,
                     "Standard deviation in pixels; 0: from size, 0.3 ((size-1)/2 - 1) + 0.8"),
};

/* OpenCV's getGaussianKernelBitExact + fixed-point rounding with error diffusion: the fixed
 * tables for sigma <= 0 and size <= 7, else sampled exp(-x^2 / (2 sigma^2)) normalised in double,
 * rounded to 1/256 left to right carrying the rounding error, the centre taking the remainder. */
static int gauss_kernel_make(int size, double sigma, struct gauss_kernel *g)
{
    static const uint16_t small[4][7] = {
        {256}, {64, 128, 64}, {16, 64, 96, 64, 16}, {8, 28, 56, 72, 56, 28, 8}};
    int n = size, n2 = (n - 1) / 2;
    double vals[GAUSS_MAX], sum = 0, mul1, err = 0, s, scale2;
    int isum = 0;

    if (n < 1 || n > GAUSS_MAX || n % 2 == 0)
        return DIP_EINVAL;
    g->ksize = n;
    if (sigma <= 0 && n <= 7) {
        memcpy(g->k, small[n / 2], (size_t)n * sizeof(uint16_t));
        gauss_reduce(g);
        return 0;
    }
    s = sigma > 0 ? sigma : fma((double)n, 0.15, 0.35); /* ((n-1)/2 - 1) 0.3 + 0.8 */
    scale2 = -0.125 / (s * s);                          /* x below counts half pixels */
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
            return DIP_EINVAL;
        g->k[i] = g->k[n - 1 - i] = (uint16_t)v;
        isum += (int)v;
    }
    if (2 * isum > 256)
        return DIP_EINVAL;
    g->k[n2] = (uint16_t)(256 - 2 * isum);
    gauss_reduce(g);
    return 0;
}

/* OpenCV's rule for the 8-bit kernel size from sigma. */
static int gauss_size_for(int size, double sigma)
{
    if (size > 0)
        return size;
    return (int)nearbyint(sigma * 3 * 2 + 1) | 1;
}

static int gauss_prepare_kernel(const char *op, int size, double sigma, struct gauss_kernel *g,
                                struct dip_err *err)
{
    int n;

    if (size == 0 && sigma <= 0)
        return dip_err_set(err, DIP_EINVAL, "%s: set size or sigma (both are 0)", op);
    if (size > 0 && size % 2 == 0)
        return bad_size(op, "size", size, err);
    n = gauss_size_for(size, sigma);
    if (n > GAUSS_MAX)
        return dip_err_set(err, DIP_EINVAL, "%s: sigma=%g needs a %d-pixel kernel (max %d)", op,
                           sigma, n, GAUSS_MAX);
    if (gauss_kernel_make(n, sigma, g) != 0)
        return dip_err_set(err, DIP_EINVAL, "%s: no 8-bit kernel for size=%d sigma=%g", op, n,
                           sigma);
    return 0;
}

static int gaussian_prepare(void *args, int in_channels, struct dip_err *err)
{
    struct gaussian_args *a = args;

    (void)in_channels;
    return gauss_prepare_kernel("gaussian", a->size, a->sigma, &a->kern, err);
}

static void gaussian_halo(const void *args, struct dip_halo *h)
{
    stencil_halo(((const struct gaussian_args *)args)->kern.ksize / 2, h);
}

/* Vertical pass of a symmetric kernel: v[i] = sum_j k_j row_j[i]. The sum fits 16 bits (the
 * kernel sums to 256), and so does every partial sum. */
DIP_INLINE void gauss_vpass(const struct dip_view *in, int y, const uint16_t *kk, int k, size_t n,
                            uint16_t *v)
{
    int r = k / 2;
    const uint8_t *c = dip__row_at(in, y + r);

    if (k <= 7) {
        const uint8_t *rows[7];
        for (int j = 0; j < k; j++)
            rows[j] = dip__row_at(in, y + j);
        for (size_t i = 0; i < n; i++) {
            uint16_t s = (uint16_t)(kk[r] * c[i]);
            for (int j = 0; j < r; j++)
                s = (uint16_t)(s + kk[j] * (uint16_t)(rows[j][i] + rows[k - 1 - j][i]));
            v[i] = s;
        }
        return;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = (uint16_t)(kk[r] * c[i]);
    for (int j = 0; j < r; j++) {
        const uint8_t *a = dip__row_at(in, y + j), *b = dip__row_at(in, y + k - 1 - j);
        uint16_t kj = kk[j];
        if (kj == 0)
            continue;
        for (size_t i = 0; i < n; i++)
            v[i] = (uint16_t)(v[i] + kj * (a[i] + b[i]));
    }
}

/* Horizontal pass: out[i] = (sum_j k_j v[i + j cn] + 2^15) >> 16. */
DIP_INLINE void gauss_hpass(const uint16_t *v, const uint16_t *kk, int k, size_t m, size_t cn,
                            uint8_t *d, uint32_t *acc)
{
    int r = k / 2;
    const uint16_t *c = v + (size_t)r * cn;

    if (k <= 7) {
        for (size_t i = 0; i < m; i++) {
            uint32_t s = (uint32_t)kk[r] * c[i] + 32768;
            for (int j = 0; j < r; j++)
                s += (uint32_t)kk[j] *
                     ((uint32_t)v[i + (size_t)j * cn] + v[i + (size_t)(k - 1 - j) * cn]);
            d[i] = (uint8_t)(s >> 16);
        }
        return;
    }
    for (size_t i = 0; i < m; i++)
        acc[i] = (uint32_t)kk[r] * c[i] + 32768;
    for (int j = 0; j < r; j++) {
        const uint16_t *a = v + (size_t)j * cn, *b = v + (size_t)(k - 1 - j) * cn;
        uint32_t kj = kk[j];
        if (kj == 0)
            continue;
        for (size_t i = 0; i < m; i++)
            acc[i] += kj * ((uint32_t)a[i] + b[i]);
    }
    for (size_t i = 0; i < m; i++)
        d[i] = (uint8_t)(acc[i] >> 16);
}

/* sharpen's unsharp mix, applied to each blurred row while it is in cache (NULL: plain blur). */
struct gauss_mix {
    int amount_q, threshold;
};
static void sharpen_mix(const uint8_t *restrict in, uint8_t *restrict d, size_t m, int amount_q,
                        int thr);

#if defined(__x86_64__) && defined(__GNUC__) && !defined(DIP_NO_CLONES)
#define HAVE_MIX1_AVX2 1
__attribute__((target("avx2"))) static size_t mix1_avx2(const uint8_t *in, uint8_t *d, size_t m,
                                                        int thr);
#endif

DIP_INLINE void mix_row(const struct gauss_mix *mx, const struct dip_view *in, int y, int r,
                        uint8_t *d, size_t m)
{
    const uint8_t *c;
    size_t x = 0;

    if (mx == NULL)
        return;
    c = dip__row_at(in, y + r) + (size_t)r * (size_t)in->channels;
#ifdef HAVE_MIX1_AVX2
    if (mx->amount_q == 256 && __builtin_cpu_supports("avx2"))
        x = mix1_avx2(c, d, m, mx->threshold);
#endif
    sharpen_mix(c + x, d + x, m - x, mx->amount_q, mx->threshold);
}

DIP_INLINE void gauss_rows(const struct gauss_kernel *g, const struct dip_view *in,
                           const struct dip_view *out, uint16_t *v, uint32_t *acc, int k,
                           const struct gauss_mix *mx)
{
    size_t cn = (size_t)out->channels;
    size_t n = (size_t)in->width * cn, m = (size_t)out->width * cn;

    for (int y = 0; y < out->height; y++) {
        gauss_vpass(in, y, g->k, k, n, v);
        gauss_hpass(v, g->k, k, m, cn, dip__row_at(out, y), acc);
        mix_row(mx, in, y, k / 2, dip__row_at(out, y), m);
    }
}

/* The same sums in 16 bits, for kernels with a common factor of at least 16 (see gauss_kernel):
 * vertical sums <= 255 * 16, totals <= 65280. */
DIP_INLINE void gauss_rows16(const struct gauss_kernel *g, const struct dip_view *in,
                             const struct dip_view *out, uint16_t *restrict v, int k,
                             const struct gauss_mix *mx)
{
    size_t cn = (size_t)out->channels;
    size_t n = (size_t)in->width * cn, m = (size_t)out->width * cn;
    int r = k / 2, sh = 16 - 2 * g->shift;
    uint16_t b[7], rnd = (uint16_t)(1u << (sh - 1));

    for (int j = 0; j < k; j++)
        b[j] = g->b[j];
    for (int y = 0; y < out->height; y++) {
        const uint8_t *rows[7];
        uint8_t *restrict d = dip__row_at(out, y);
        for (int j = 0; j < k; j++)
            rows[j] = dip__row_at(in, y + j);
        for (size_t i = 0; i < n; i++) {
            uint16_t s = (uint16_t)(b[r] * rows[r][i]);
            for (int j = 0; j < r; j++)
                s = (uint16_t)(s + b[j] * (uint16_t)(rows[j][i] + rows[k - 1 - j][i]));
            v[i] = s;
        }
        for (size_t i = 0; i < m; i++) {
            uint16_t s = (uint16_t)(b[r] * v[i + (size_t)r * cn] + rnd);
            for (int j = 0; j < r; j++)
                s = (uint16_t)(s + b[j] * (uint16_t)(v[i + (size_t)j * cn] +
                                                     v[i + (size_t)(k - 1 - j) * cn]));
            d[i] = (uint8_t)(s >> sh);
        }
        mix_row(mx, in, y, r, d, m);
    }
}

/* Any kernel up to 7 taps, still in 16 bits: each vertical sum v <= 65280 is split into
 * v = 256 h + l, A = sum k_i h_i and B = sum k_i l_i (both <= 65280), and
 * (256 A + B + 2^15) >> 16 = (A + (B >> 8) + 128) >> 8 exactly (the dropped B & 255 is a
 * fraction that cannot carry). */
DIP_INLINE void gauss_rows_hl(const struct gauss_kernel *g, const struct dip_view *in,
                              const struct dip_view *out, uint8_t *restrict vh,
                              uint8_t *restrict vl, int k, const struct gauss_mix *mx)
{
    size_t cn = (size_t)out->channels;
    size_t n = (size_t)in->width * cn, m = (size_t)out->width * cn;
    int r = k / 2;
    uint16_t kk[7];

    for (int j = 0; j < k; j++)
        kk[j] = g->k[j];
    for (int y = 0; y < out->height; y++) {
        const uint8_t *rows[7];
        uint8_t *restrict d = dip__row_at(out, y);
        for (int j = 0; j < k; j++)
            rows[j] = dip__row_at(in, y + j);
        for (size_t i = 0; i < n; i++) {
            uint16_t s = (uint16_t)(kk[r] * rows[r][i]);
            for (int j = 0; j < r; j++)
                s = (uint16_t)(s + kk[j] * (uint16_t)(rows[j][i] + rows[k - 1 - j][i]));
            vh[i] = (uint8_t)(s >> 8);
            vl[i] = (uint8_t)s;
        }
        for (size_t i = 0; i < m; i++) {
            size_t c = i + (size_t)r * cn;
            uint16_t a = (uint16_t)(kk[r] * vh[c]), b = (uint16_t)(kk[r] * vl[c]);
            for (int j = 0; j < r; j++) {
                size_t p = i + (size_t)j * cn, q = i + (size_t)(k - 1 - j) * cn;
                a = (uint16_t)(a + kk[j] * (uint16_t)(vh[p] + vh[q]));
                b = (uint16_t)(b + kk[j] * (uint16_t)(vl[p] + vl[q]));
            }
            d[i] = (uint8_t)((uint16_t)(a + (b >> 8) + 128) >> 8);
        }
        mix_row(mx, in, y, r, d, m);
    }
}

/* Gray rows with any kernel up to 7 taps, on x86-64 with AVX2 (the split-byte path above does
 * each horizontal sum twice). The vertical sums v <= 65280 are stored biased, v ^ 0x8000 = v -
 * 32768 as a signed 16-bit value, so that vpmaddwd multiplies them by two taps at once in 32
 * bits: a 32-bit lane of the row loaded at x holds (v[x], v[x + 1]), the pair that output x
 * needs for taps (k0, k1), so the even outputs come from loads at x, x + 2, x + 4, x + 6 and the
 * odd ones from loads one further, with no shuffle. sum k_j (v_j - 32768) = H - 2^23 (the taps
 * sum to 256), so out = (that + 2^23 + 2^15) >> 16, the integers of the definition. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(DIP_NO_CLONES)
#include <immintrin.h>
#define HAVE_GAUSS_AVX2 1

/* The 32-bit sums of 8 outputs (every other one) from `np` tap pairs at p, p + 2, ... */
__attribute__((target("avx2"), always_inline)) static inline __m256i hsum8(const uint16_t *p,
                                                                           const __m256i *w, int np)
{
    const __m256i bias = _mm256_set1_epi32((1 << 23) + (1 << 15));
    __m256i s = _mm256_add_epi32(
        bias, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(const void *)p), w[0]));

    for (int j = 1; j < np; j++)
        s = _mm256_add_epi32(
            s, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(p + 2 * j)),
                                 w[j]));
    return s;
}

/* 16 outputs at x as 16-bit lanes: even ones >> 16 in the low halves, odd ones in the high. */
__attribute__((target("avx2"), always_inline)) static inline __m256i
hsum16(const uint16_t *p, const __m256i *w, int np)
{
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);

    return _mm256_or_si256(_mm256_srli_epi32(hsum8(p, w, np), 16),
                           _mm256_and_si256(hsum8(p + 1, w, np), hi));
}

/* d[x] = (sum_j k_j v[x + j] + 2^15) >> 16 for x < m rounded down to 32, from the biased v.
 * The last pair's second tap is 0 and reads one element past the row: v is padded. Returns how
 * many were done. */
__attribute__((target("avx2"), always_inline)) static inline size_t
hpass1_avx2_k(const uint16_t *v, const uint16_t *kk, int k, size_t m, uint8_t *d)
{
    int np = (k + 1) / 2;
    __m256i w[4];
    size_t x = 0;

    for (int j = 0; j < np; j++)
        w[j] = _mm256_set1_epi32(
            (int)((uint32_t)kk[2 * j] | (uint32_t)(2 * j + 1 < k ? kk[2 * j + 1] : 0) << 16));
    for (; x + 32 <= m; x += 32) {
        __m256i a = hsum16(v + x, w, np), b = hsum16(v + x + 16, w, np);
        __m256i r = _mm256_permute4x64_epi64(_mm256_packus_epi16(a, b), 0xd8);
        _mm256_storeu_si256((__m256i *)(void *)(d + x), r);
    }
    return x;
}

__attribute__((target("avx2"))) static size_t hpass1_avx2(const uint16_t *v, const uint16_t *kk,
                                                          int k, size_t m, uint8_t *d)
{
    switch (k) {
    case 7:
        return hpass1_avx2_k(v, kk, 7, m, d);
    case 5:
        return hpass1_avx2_k(v, kk, 5, m, d);
    default:
        return hpass1_avx2_k(v, kk, 3, m, d);
    }
}

/* sharpen's mix for amount 1 (A = 256) on bytes: out = in + d saturated, d = in - blur, as
 * in +sat (in -sat blur) -sat (blur -sat in); where |d| < thr, in. Returns how many were done
 * (a multiple of 32). */
__attribute__((target("avx2"))) static size_t mix1_avx2(const uint8_t *in, uint8_t *d, size_t m,
                                                        int thr)
{
    const __m256i th = _mm256_set1_epi8((char)thr);
    size_t x = 0;

    for (; x + 32 <= m; x += 32) {
        __m256i p = _mm256_loadu_si256((const __m256i *)(const void *)(in + x));
        __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(d + x));
        __m256i up = _mm256_subs_epu8(p, b), dn = _mm256_subs_epu8(b, p);
        __m256i r = _mm256_subs_epu8(_mm256_adds_epu8(p, up), dn);
        if (thr > 0) {
            __m256i ad = _mm256_or_si256(up, dn);
            __m256i keep = _mm256_cmpeq_epi8(_mm256_max_epu8(ad, th), ad); /* |d| >= thr */
            r = _mm256_blendv_epi8(p, r, keep);
        }
        _mm256_storeu_si256((__m256i *)(void *)(d + x), r);
    }
    return x;
}

/* The gray rows of the above (cn == 1, k <= 7): the vertical sums biased, the horizontal ones in
 * AVX2, the last few of a row in plain 32-bit arithmetic. `v` has in->width + 16 elements. */
DIP_INLINE void gauss_rows_g1(const struct gauss_kernel *g, const struct dip_view *in,
                              const struct dip_view *out, uint16_t *restrict v, int k,
                              const struct gauss_mix *mx)
{
    size_t n = (size_t)in->width, m = (size_t)out->width;
    int r = k / 2;
    uint16_t kk[7];

    for (int j = 0; j < k; j++)
        kk[j] = g->k[j];
    memset(v + n, 0, 16 * sizeof(uint16_t)); /* read by the vector loop with tap 0 */
    for (int y = 0; y < out->height; y++) {
        const uint8_t *rows[7];
        uint8_t *restrict d = dip__row_at(out, y);
        size_t x;
        for (int j = 0; j < k; j++)
            rows[j] = dip__row_at(in, y + j);
        for (size_t i = 0; i < n; i++) {
            uint16_t s = (uint16_t)(kk[r] * rows[r][i]);
            for (int j = 0; j < r; j++)
                s = (uint16_t)(s + kk[j] * (uint16_t)(rows[j][i] + rows[k - 1 - j][i]));
            v[i] = (uint16_t)(s ^ 0x8000);
        }
        x = hpass1_avx2(v, kk, k, m, d);
        for (; x < m; x++) {
            uint32_t s = 32768;
            for (int j = 0; j < k; j++)
                s += (uint32_t)kk[j] * (uint32_t)(v[x + (size_t)j] ^ 0x8000);
            d[x] = (uint8_t)(s >> 16);
        }
        mix_row(mx, in, y, r, d, m);
    }
}
#endif

/* Blurs `in` (out grown by ksize/2 on every side) into `out`. */
DIP_HOT static int gauss_run(const struct gauss_kernel *g, const struct dip_view *in,
                             const struct dip_view *out, const struct gauss_mix *mx)
{
    size_t n = (size_t)in->width * (size_t)in->channels;
    uint16_t *v = dip_malloc((n + 16) * (sizeof(uint16_t) + sizeof(uint32_t)));
    uint32_t *acc;

    if (v == NULL)
        return DIP_ENOMEM;
    acc = (uint32_t *)(void *)(v + n + (n & 1));
    if (g->shift >= 4 && g->ksize <= 5) {
        if (g->ksize == 5)
            gauss_rows16(g, in, out, v, 5, mx);
        else if (g->ksize == 3)
            gauss_rows16(g, in, out, v, 3, mx);
        else
            gauss_rows16(g, in, out, v, 1, mx);
        dip_free(v);
        return 0;
    }
#ifdef HAVE_GAUSS_AVX2
    if (g->ksize >= 3 && g->ksize <= 7 && in->channels == 1 && __builtin_cpu_supports("avx2")) {
        if (g->ksize == 7)
            gauss_rows_g1(g, in, out, v, 7, mx);
        else if (g->ksize == 5)
            gauss_rows_g1(g, in, out, v, 5, mx);
        else
            gauss_rows_g1(g, in, out, v, 3, mx);
        dip_free(v);
        return 0;
    }
#endif
    if (g->ksize >= 3 && g->ksize <= 7) {
        uint8_t *vh = (uint8_t *)v, *vl = vh + n;
        if (g->ksize == 7)
            gauss_rows_hl(g, in, out, vh, vl, 7, mx);
        else if (g->ksize == 5)
            gauss_rows_hl(g, in, out, vh, vl, 5, mx);
        else
            gauss_rows_hl(g, in, out, vh, vl, 3, mx);
        dip_free(v);
        return 0;
    }
    switch (g->ksize) {
    case 3:
        gauss_rows(g, in, out, v, acc, 3, mx);
        break;
    case 5:
        gauss_rows(g, in, out, v, acc, 5, mx);
        break;
    case 7:
        gauss_rows(g, in, out, v, acc, 7, mx);
        break;
    default:
        gauss_rows(g, in, out, v, acc, g->ksize, mx);
        break;
    }
    dip_free(v);
    return 0;
}

static int gaussian_tile(const void *args, const struct dip_tile *t)
{
    return gauss_run(&((const struct gaussian_args *)args)->kern, &t->in, &t->out, NULL);
}

const struct dip_op dip_op_gaussian = {
    .name = "gaussian",
    .version = 1,
    .summary = "Gaussian blur (OpenCV's bit-exact 8-bit kernel)",
    .doc = "Separable Gaussian blur of every channel (alpha too). The kernel is OpenCV's 8-bit "
           "one: for sigma=0 and size<=7 the binomial tables (1 4 6 4 1)/16 etc., else "
           "exp(-x^2/(2 sigma^2)) with sigma=0.3((size-1)/2-1)+0.8 when sigma=0, normalised and "
           "rounded to 1/256 with error diffusion; out = (sum k_i k_j p + 2^15) >> 16, no "
           "intermediate rounding. size=0 takes round(6 sigma+1)|1. Border: reflect-101. "
           "Same bytes as cv2.GaussianBlur(img, (size, size), sigma).",
    .kind = DIP_OP_STENCIL,
    .args_size = sizeof(struct gaussian_args),
    .params = gaussian_params,
    .n_params = DIP_COUNTOF(gaussian_params),
    .edge = DIP_EDGE_REFLECT101,
    .prepare = gaussian_prepare,
    .halo = gaussian_halo,
    .tile = gaussian_tile,
};

/* ---- median ---- */

struct median_args {
    int size;
};

static const struct dip_param median_params[] = {
    DIP_PARAM_INT_ODD(struct median_args, size, 1, 255, 5, "Window side in pixels (odd)"),
};

static int median_prepare(void *args, int in_channels, struct dip_err *err)
{
    (void)in_channels;
    if (((struct median_args *)args)->size % 2 == 0)
        return bad_size("median", "size", ((struct median_args *)args)->size, err);
    return 0;
}

static void median_halo(const void *args, struct dip_halo *h)
{
    stencil_halo(((const struct median_args *)args)->size / 2, h);
}

/* Compare-exchange on bytes: CX sorts (a, b); CMIN keeps only a = min, CMAX only b = max. */
#define CX(a, b)                                                                                   \
    do {                                                                                           \
        uint8_t lo_ = (a) < (b) ? (a) : (b), hi_ = (a) < (b) ? (b) : (a);                          \
        (a) = lo_;                                                                                 \
        (b) = hi_;                                                                                 \
    } while (0)
#define CMIN(a, b) ((a) = (a) < (b) ? (a) : (b))
#define CMAX(a, b) ((b) = (a) < (b) ? (b) : (a))

/* clang-format off */
/* GENERATED by tools/gen_median_net.py: do not edit. */
/* MED3_COL: 6 min/max operations */
#define MED3_COL(v) \
    CX(v[1], v[2]); \
    CX(v[0], v[1]); \
    CX(v[2], v[1]); \
    do { \
    } while (0)
#define MED3_COL_OUT {0, 2, 1}
/* MED5_COL: 18 min/max operations */
#define MED5_COL(v) \
    CX(v[0], v[1]); \
    CX(v[3], v[4]); \
    CX(v[2], v[3]); \
    CX(v[4], v[3]); \
    CX(v[0], v[2]); \
    CX(v[3], v[2]); \
    CX(v[1], v[4]); \
    CX(v[1], v[3]); \
    CX(v[4], v[2]); \
    do { \
    } while (0)
#define MED5_COL_OUT {0, 1, 3, 4, 2}
/* MED3_WIN: 20 min/max operations */
#define MED3_WIN(v) \
    CX(v[0], v[3]); \
    CX(v[2], v[5]); \
    CX(v[2], v[3]); \
    CX(v[1], v[4]); \
    CX(v[1], v[2]); \
    CX(v[4], v[3]); \
    CMAX(v[0], v[6]); \
    CMIN(v[3], v[6]); \
    CMIN(v[2], v[8]); \
    CMAX(v[2], v[3]); \
    CMAX(v[1], v[7]); \
    CMIN(v[5], v[7]); \
    CMIN(v[4], v[5]); \
    CMAX(v[4], v[3]); \
    do { \
    } while (0)
#define MED3_WIN_OUT {3}
/* MED5_P: 26 min/max operations */
#define MED5_P(v) \
    CX(v[0], v[5]); \
    CX(v[4], v[9]); \
    CX(v[4], v[5]); \
    CX(v[2], v[7]); \
    CX(v[2], v[4]); \
    CX(v[7], v[5]); \
    CX(v[1], v[6]); \
    CX(v[3], v[8]); \
    CX(v[3], v[6]); \
    CX(v[1], v[2]); \
    CX(v[3], v[4]); \
    CX(v[6], v[7]); \
    CX(v[8], v[5]); \
    do { \
    } while (0)
#define MED5_P_OUT {0, 1, 2, 3, 4, 6, 7, 8, 5, 9}
/* MED5_Q: 36 min/max operations */
#define MED5_Q(v) \
    CMAX(v[0], v[10]); \
    CMIN(v[8], v[18]); \
    CX(v[8], v[10]); \
    CX(v[4], v[14]); \
    CMAX(v[4], v[8]); \
    CMIN(v[14], v[10]); \
    CMAX(v[2], v[12]); \
    CMIN(v[6], v[16]); \
    CX(v[6], v[12]); \
    CMAX(v[6], v[8]); \
    CX(v[12], v[14]); \
    CMAX(v[1], v[11]); \
    CMIN(v[9], v[19]); \
    CX(v[9], v[11]); \
    CX(v[5], v[15]); \
    CMAX(v[5], v[9]); \
    CMIN(v[15], v[11]); \
    CMAX(v[3], v[13]); \
    CMIN(v[7], v[17]); \
    CX(v[7], v[13]); \
    CX(v[7], v[9]); \
    CMIN(v[13], v[15]); \
    CX(v[7], v[8]); \
    CX(v[9], v[12]); \
    CX(v[13], v[14]); \
    do { \
    } while (0)
#define MED5_Q_OUT {7, 8, 9, 12, 13, 14}
/* MED5_WIN: 10 min/max operations */
#define MED5_WIN(v) \
    CMAX(v[0], v[6]); \
    CMIN(v[4], v[10]); \
    CMAX(v[4], v[6]); \
    CMAX(v[2], v[8]); \
    CMIN(v[8], v[6]); \
    CMAX(v[1], v[7]); \
    CMIN(v[5], v[7]); \
    CMIN(v[3], v[9]); \
    CMAX(v[3], v[5]); \
    CMIN(v[5], v[8]); \
    do { \
    } while (0)
#define MED5_WIN_OUT {5}
/* END GENERATED */
/* clang-format on */

/* Positions per chunk: the per-chunk planes stay in L1. */
#define MED_CHUNK 512
#define MED_PAD   (4 * DIP_MAX_CHANNELS + 32)

/* How many positions a stage computes: what it needs rounded up to whole 32-byte vectors (no
 * slow scalar tail for the networks), but never past what its input provides. */
static size_t med_span(size_t need, size_t avail)
{
    size_t r = (need + 31) & ~(size_t)31;
    return r < avail ? r : avail;
}

/* 3x3: sort every column of the row once, then the pruned merge of 3 sorted columns. */
DIP_HOT static void median3_row(const struct dip_view *in, int y, uint8_t *d, size_t m, size_t cn)
{
    static const int co[3] = MED3_COL_OUT, wo[1] = MED3_WIN_OUT;
    uint8_t s[3][MED_CHUNK + MED_PAD];
    const uint8_t *r0 = dip__row_at(in, y), *r1 = dip__row_at(in, y + 1),
                  *r2 = dip__row_at(in, y + 2);

    for (size_t i0 = 0; i0 < m; i0 += MED_CHUNK) {
        size_t len = m - i0 < MED_CHUNK ? m - i0 : MED_CHUNK;
        size_t ns = med_span(len + 2 * cn, m + 2 * cn - i0);
        for (size_t i = 0; i < ns; i++) {
            uint8_t v[3] = {r0[i0 + i], r1[i0 + i], r2[i0 + i]};
            MED3_COL(v);
            s[0][i] = v[co[0]];
            s[1][i] = v[co[1]];
            s[2][i] = v[co[2]];
        }
        for (size_t i = 0; i < len; i++) {
            uint8_t v[9];
            for (int c = 0; c < 3; c++)
                for (int r = 0; r < 3; r++)
                    v[c * 3 + r] = s[r][i + (size_t)c * cn];
            MED3_WIN(v);
            d[i0 + i] = v[wo[0]];
        }
    }
}

/* 5x5: sorted columns S(j), pairs P(j) = merge(S(j), S(j+1)), ranks 7..12 of
 * merge(P(j), P(j+2)), then rank 5 of those with S(j+4): each stage is shared by the windows
 * that contain it. */
DIP_HOT static void median5_row(const struct dip_view *in, int y, uint8_t *d, size_t m, size_t cn)
{
    static const int co[5] = MED5_COL_OUT, po[10] = MED5_P_OUT, qo[6] = MED5_Q_OUT,
                     wo[1] = MED5_WIN_OUT;
    uint8_t s[5][MED_CHUNK + MED_PAD], p[10][MED_CHUNK + MED_PAD];
    const uint8_t *rows[5];

    for (int r = 0; r < 5; r++)
        rows[r] = dip__row_at(in, y + r);
    for (size_t i0 = 0; i0 < m; i0 += MED_CHUNK) {
        size_t len = m - i0 < MED_CHUNK ? m - i0 : MED_CHUNK;
        size_t ns = med_span(len + 4 * cn, m + 4 * cn - i0), np = med_span(len + 2 * cn, ns - cn);
        for (size_t i = 0; i < ns; i++) {
            uint8_t v[5];
            for (int r = 0; r < 5; r++)
                v[r] = rows[r][i0 + i];
            MED5_COL(v);
            for (int r = 0; r < 5; r++)
                s[r][i] = v[co[r]];
        }
        for (size_t i = 0; i < np; i++) {
            uint8_t v[10];
            for (int r = 0; r < 5; r++) {
                v[r] = s[r][i];
                v[5 + r] = s[r][i + cn];
            }
            MED5_P(v);
            for (int r = 0; r < 10; r++)
                p[r][i] = v[po[r]];
        }
        for (size_t i = 0; i < len; i++) {
            uint8_t v[20], w[11];
            for (int r = 0; r < 10; r++) {
                v[r] = p[r][i];
                v[10 + r] = p[r][i + 2 * cn];
            }
            MED5_Q(v);
            for (int r = 0; r < 6; r++)
                w[r] = v[qo[r]];
            for (int r = 0; r < 5; r++)
                w[6 + r] = s[r][i + 4 * cn];
            MED5_WIN(w);
            d[i0 + i] = w[wo[0]];
        }
    }
}

/* Larger windows: Huang's sliding histogram per channel, tracking the median and the count of
 * values below it as columns leave and enter. */
static void median_hist_row(const struct dip_view *in, int y, int k, uint8_t *d, int w, int cn)
{
    int half = k * k / 2;

    for (int c = 0; c < cn; c++) {
        uint32_t hist[256] = {0};
        int med = 0, below = 0; /* below: values < med */
        for (int j = 0; j < k; j++) {
            const uint8_t *s = dip__row_at(in, y + j);
            for (int x = 0; x < k; x++)
                hist[s[x * cn + c]]++;
        }
        for (int x = 0; x < w; x++) {
            if (x > 0) {
                for (int j = 0; j < k; j++) {
                    const uint8_t *s = dip__row_at(in, y + j);
                    uint8_t out = s[(x - 1) * cn + c], inn = s[(x + k - 1) * cn + c];
                    hist[out]--;
                    hist[inn]++;
                    below += (inn < med) - (out < med);
                }
            }
            /* The median is the value v with below(v) <= half < below(v) + hist[v]. */
            while (below > half)
                below -= (int)hist[--med];
            while (below + (int)hist[med] <= half)
                below += (int)hist[med++];
            d[x * cn + c] = (uint8_t)med;
        }
    }
}

static int median_tile(const void *args, const struct dip_tile *t)
{
    int k = ((const struct median_args *)args)->size;
    size_t cn = (size_t)t->out.channels, m = (size_t)t->out.width * cn;

    for (int y = 0; y < t->out.height; y++) {
        uint8_t *d = dip__row_at(&t->out, y);
        if (k == 1)
            memcpy(d, dip__row_at(&t->in, y), m);
        else if (k == 3)
            median3_row(&t->in, y, d, m, cn);
        else if (k == 5)
            median5_row(&t->in, y, d, m, cn);
        else
            median_hist_row(&t->in, y, k, d, t->out.width, (int)cn);
    }
    return 0;
}

const struct dip_op dip_op_median = {
    .name = "median",
    .version = 1,
    .summary = "Median of a size x size window",
    .doc = "out = the median of the size x size window, per channel (alpha too). Exact; size 3 "
           "and 5 use pruned min/max merge networks over sorted columns, larger sizes a sliding "
           "histogram. Border: replicate (aaa|abcd), as cv2.medianBlur. Same bytes as "
           "cv2.medianBlur(img, size) (which takes 1, 3 or 4 channels; 2 channels here are "
           "filtered independently).",
    .kind = DIP_OP_STENCIL,
    .args_size = sizeof(struct median_args),
    .params = median_params,
    .n_params = DIP_COUNTOF(median_params),
    .edge = DIP_EDGE_REPLICATE,
    .prepare = median_prepare,
    .halo = median_halo,
    .tile = median_tile,
};

/* ---- bilateral ---- */

#define BILAT_MAX_RADIUS 12
#define BILAT_MAX_TAPS   ((2 * BILAT_MAX_RADIUS + 1) * (2 * BILAT_MAX_RADIUS + 1))

struct bilateral_args {
    int d;
    double sigma_color, sigma_space;
    /* prepare(): OpenCV's weight tables (args stay under 4 KiB: taps are made per tile) */
    int radius;
    float space_w[BILAT_MAX_RADIUS * BILAT_MAX_RADIUS + 1]; /* by squared distance */
    float color_w[256 * 3]; /* by sum of |differences| over the colour channels */
};

static const struct dip_param bilateral_params[] = {
    DIP_PARAM_INT(struct bilateral_args, d, 0, 2 * BILAT_MAX_RADIUS + 1, 9,
                  "Window diameter; 0: from sigma_space (radius round(1.5 sigma_space))"),
    DIP_PARAM_DOUBLE(struct bilateral_args, sigma_color, 0, 10000, 75,
                     "Colour sigma (<= 0 means 1)"),
    DIP_PARAM_DOUBLE(struct bilateral_args, sigma_space, 0, 10000, 75,
                     "Space sigma in pixels (<= 0 means 1)"),
};

static int bilateral_prepare(void *args, int in_channels, struct dip_err *err)
{
    struct bilateral_args *a = args;
    double sc = a->sigma_color > 0 ? a->sigma_color : 1;
    double ss = a->sigma_space > 0 ? a->sigma_space : 1;
    double gc = -0.5 / (sc * sc), gs = -0.5 / (ss * ss);
    int r = a->d > 0 ? a->d / 2 : (int)nearbyint(ss * 1.5);

    (void)in_channels;
    if (r < 1)
        r = 1;
    if (r > BILAT_MAX_RADIUS)
        return dip_err_set(err, DIP_EINVAL,
                           "bilateral: d=0 with sigma_space=%g gives radius %d (max %d): set d",
                           a->sigma_space, r, BILAT_MAX_RADIUS);
    a->radius = r;
    for (int i = 0; i < 256 * 3; i++)
        a->color_w[i] = (float)exp((double)(i * i) * gc);
    /* OpenCV: r = sqrt(i^2 + j^2), weight (float)exp(r r coeff): a function of i^2 + j^2. */
    for (int n = 0; n <= r * r; n++) {
        double rr = sqrt((double)n);
        a->space_w[n] = (float)exp(rr * rr * gs);
    }
    return 0;
}

struct bilat_taps {
    int n;
    int8_t dx[BILAT_MAX_TAPS], dy[BILAT_MAX_TAPS];
    float w[BILAT_MAX_TAPS];
};

/* The taps in OpenCV's order: rows top to bottom, left to right, inside the disc (i^2 + j^2 <=
 * r^2 is sqrt(i^2 + j^2) <= r for integers). */
static void bilat_taps_make(const struct bilateral_args *a, struct bilat_taps *t)
{
    int r = a->radius;

    t->n = 0;
    for (int i = -r; i <= r; i++)
        for (int j = -r; j <= r; j++)
            if (i * i + j * j <= r * r) {
                t->dy[t->n] = (int8_t)i;
                t->dx[t->n] = (int8_t)j;
                t->w[t->n] = a->space_w[i * i + j * j];
                t->n++;
            }
}

static void bilateral_halo(const void *args, struct dip_halo *h)
{
    stencil_halo(((const struct bilateral_args *)args)->radius, h);
}

/* The weights of one tap over a row of `w` pixels (channels in planes): the colour table index
 * from the colour channels `cc` (1 or 3), then the lookups, each a loop that vectorises. */
DIP_INLINE void bilat_weights(const uint8_t *const *src, const uint8_t *const *ctr, int w, float sw,
                              const float *restrict cw, int cc, uint16_t *restrict idx,
                              float *restrict wts)
{
    const uint8_t *restrict s0 = src[0], *restrict s1 = src[cc > 1 ? 1 : 0];
    const uint8_t *restrict s2 = src[cc > 2 ? 2 : 0];
    const uint8_t *restrict c0 = ctr[0], *restrict c1 = ctr[cc > 1 ? 1 : 0];
    const uint8_t *restrict c2 = ctr[cc > 2 ? 2 : 0];

    if (cc == 1) {
        for (int x = 0; x < w; x++)
            idx[x] = (uint16_t)abs(s0[x] - c0[x]);
    } else {
        for (int x = 0; x < w; x++)
            idx[x] = (uint16_t)(abs(s0[x] - c0[x]) + abs(s1[x] - c1[x]) + abs(s2[x] - c2[x]));
    }
    for (int x = 0; x < w; x++)
        wts[x] = sw * cw[idx[x]];
}

/* Four taps added to one sum, in tap order: per pixel the same float operations in the same
 * order as one tap at a time (and as OpenCV), with a quarter of the loads and stores. */
DIP_INLINE void bilat_acc4(float *restrict u, const uint8_t *restrict a, const uint8_t *restrict b,
                           const uint8_t *restrict c, const uint8_t *restrict d,
                           const float *restrict w0, const float *restrict w1,
                           const float *restrict w2, const float *restrict w3, int w)
{
    for (int x = 0; x < w; x++) {
        float t = u[x] + (float)a[x] * w0[x];
        t = t + (float)b[x] * w1[x];
        t = t + (float)c[x] * w2[x];
        u[x] = t + (float)d[x] * w3[x];
    }
}

/* bilat_wsum4 and bilat_acc4 of one channel in one loop (each sum's operations unchanged). */
DIP_INLINE void bilat_both4(float *restrict ws, float *restrict u, const uint8_t *restrict a,
                            const uint8_t *restrict b, const uint8_t *restrict c,
                            const uint8_t *restrict d, const float *restrict w0,
                            const float *restrict w1, const float *restrict w2,
                            const float *restrict w3, int w)
{
    for (int x = 0; x < w; x++) {
        float t = u[x] + (float)a[x] * w0[x];
        t = t + (float)b[x] * w1[x];
        t = t + (float)c[x] * w2[x];
        u[x] = t + (float)d[x] * w3[x];
        ws[x] = ((ws[x] + w0[x]) + w1[x] + w2[x]) + w3[x];
    }
}

DIP_INLINE void bilat_wsum4(float *restrict u, const float *restrict w0, const float *restrict w1,
                            const float *restrict w2, const float *restrict w3, int w)
{
    for (int x = 0; x < w; x++)
        u[x] = ((u[x] + w0[x]) + w1[x] + w2[x]) + w3[x];
}

DIP_INLINE void bilat_acc1(float *restrict u, const uint8_t *restrict s, const float *restrict wt,
                           int w)
{
    for (int x = 0; x < w; x++)
        u[x] += (float)s[x] * wt[x];
}

/* Adds g taps (4, or 1 for the last ones) to the chunk's sums: their weights wg to wsum, and each
 * plane's source rows src[j][c] weighted to sum[c]. */
DIP_INLINE void bilat_add(float *wsum, float **sum, const uint8_t *(*src)[4], const float **wg,
                          int g, int np, int cw)
{
    if (g == 4 && np == 1) {
        bilat_both4(wsum, sum[0], src[0][0], src[1][0], src[2][0], src[3][0], wg[0], wg[1], wg[2],
                    wg[3], cw);
    } else if (g == 4) {
        bilat_wsum4(wsum, wg[0], wg[1], wg[2], wg[3], cw);
        for (int c = 0; c < np; c++)
            bilat_acc4(sum[c], src[0][c], src[1][c], src[2][c], src[3][c], wg[0], wg[1], wg[2],
                       wg[3], cw);
    } else {
        for (int x = 0; x < cw; x++)
            wsum[x] += wg[0][x];
        for (int c = 0; c < np; c++)
            bilat_acc1(sum[c], src[0][c], wg[0], cw);
    }
}

/* cvRound for 0 <= v < 2^22: adding 1.5 * 2^23 rounds to an integer, half to even, in IEEE
 * float (no library call, the same in vector and scalar code). */
DIP_INLINE uint8_t round_u8(float v)
{
    float t = v + 12582912.0f;
    return (uint8_t)(int)(t - 12582912.0f);
}

#define BILAT_CHUNK 512 /* pixels per pass, so that the sums stay in L1 across the taps */

DIP_HOT static void bilat_rows(const struct bilateral_args *a, const struct bilat_taps *tp,
                               const uint8_t *const *plane, size_t pstride, int w, int h, int np,
                               const struct dip_view *out, float *acc)
{
    int r = a->radius, cc = np >= 3 ? 3 : 1;
    float *wsum = acc, *sum[4];
    uint16_t *idx = (uint16_t *)(void *)(acc + (size_t)(np + 1) * BILAT_CHUNK);
    float *wts = acc + (size_t)(np + 2) * BILAT_CHUNK; /* 4 rows of weights */

    for (int c = 0; c < np; c++)
        sum[c] = acc + (size_t)(c + 1) * BILAT_CHUNK;
    for (int y = 0; y < h; y++) {
        uint8_t *d = dip__row_at(out, y);
        for (int x0 = 0; x0 < w; x0 += BILAT_CHUNK) {
            int cw = w - x0 < BILAT_CHUNK ? w - x0 : BILAT_CHUNK;
            const uint8_t *ctr[4];
            memset(acc, 0, (size_t)(np + 1) * BILAT_CHUNK * sizeof(float));
            for (int c = 0; c < np; c++)
                ctr[c] = plane[c] + (size_t)(y + r) * pstride + (size_t)(r + x0);
            for (int k = 0; k < tp->n;) {
                int g = tp->n - k >= 4 ? 4 : 1; /* taps in this pass */
                const uint8_t *src[4][4];
                const float *wg[4];
                for (int j = 0; j < g; j++) {
                    size_t off = (size_t)(y + r + tp->dy[k + j]) * pstride +
                                 (size_t)(r + x0 + tp->dx[k + j]);
                    float *wj = wts + (size_t)j * BILAT_CHUNK;
                    for (int c = 0; c < np; c++)
                        src[j][c] = plane[c] + off;
                    if (cc == 1)
                        bilat_weights(src[j], ctr, cw, tp->w[k + j], a->color_w, 1, idx, wj);
                    else
                        bilat_weights(src[j], ctr, cw, tp->w[k + j], a->color_w, 3, idx, wj);
                    wg[j] = wj;
                }
                bilat_add(wsum, sum, src, wg, g, np, cw);
                k += g;
            }
            if (cc == 1) {
                for (int x = 0; x < cw; x++)
                    for (int c = 0; c < np; c++)
                        d[(x0 + x) * np + c] = round_u8(sum[c][x] / wsum[x]);
            } else {
                for (int x = 0; x < cw; x++) {
                    float inv = 1.f / wsum[x];
                    for (int c = 0; c < np; c++)
                        d[(x0 + x) * np + c] = round_u8(sum[c][x] * inv);
                }
            }
        }
    }
}

/* The same sums with half the table lookups (r <= BILAT_MIRROR_R). A tap t = (dy, dx) and its
 * mirror -t have the same space weight, and the colour weight of -t at (y, x) is that of t at
 * (y - dy, x - dx): |p(y - dy, x - dx) - p(y, x)| is the same difference. So each tap of the
 * half plane (dy > 0, or dy = 0 and dx > 0) keeps its weight rows of the last r + 1 source rows
 * (in a ring, over the columns either of them needs), and its mirror reads them back. The
 * products are the same floats and are added in the same tap order: the same bytes. Strips of
 * BILAT_MCHUNK columns outside, rows inside, so that the ring stays in L2. */
#define BILAT_MIRROR_R 5
#define BILAT_MCHUNK   256

static size_t bilat_ring_floats(int r, int ntaps)
{
    return (size_t)(ntaps / 2) * (size_t)(r + 1) * (size_t)(BILAT_MCHUNK + 2 * r);
}

DIP_HOT static void bilat_rows_m(const struct bilateral_args *a, const struct bilat_taps *tp,
                                 const uint8_t *const *plane, size_t pstride, int w, int h, int np,
                                 const struct dip_view *out, float *acc, float *ring)
{
    int r = a->radius, cc = np >= 3 ? 3 : 1, nslot = r + 1, npos = 0;
    size_t rw = (size_t)(BILAT_MCHUNK + 2 * r);
    float *wsum = acc, *sum[4];
    uint16_t *idx = (uint16_t *)(void *)(acc + (size_t)(np + 1) * BILAT_CHUNK);
    float *wts = acc + (size_t)(np + 2) * BILAT_CHUNK; /* 4 rows of weights */
    int16_t pos[BILAT_MAX_TAPS / 2 + 1], q_of[BILAT_MAX_TAPS];
    int8_t kind[BILAT_MAX_TAPS]; /* 0 centre, 1 kept, -1 the mirror of a kept one */

    for (int c = 0; c < np; c++)
        sum[c] = acc + (size_t)(c + 1) * BILAT_CHUNK;
    for (int k = 0; k < tp->n; k++) {
        int dy = tp->dy[k], dx = tp->dx[k];
        kind[k] = (int8_t)(dy > 0 || (dy == 0 && dx > 0) ? 1 : dy == 0 && dx == 0 ? 0 : -1);
        if (kind[k] == 1) {
            q_of[k] = (int16_t)npos;
            pos[npos++] = (int16_t)k;
        }
    }
    for (int k = 0; k < tp->n; k++)
        if (kind[k] == -1)
            for (int q = 0; q < npos; q++)
                if (tp->dy[pos[q]] == -tp->dy[k] && tp->dx[pos[q]] == -tp->dx[k])
                    q_of[k] = (int16_t)q;
    for (int x0 = 0; x0 < w; x0 += BILAT_MCHUNK) {
        int cw = w - x0 < BILAT_MCHUNK ? w - x0 : BILAT_MCHUNK;
        for (int ys = -r; ys < h; ys++) {
            int slot = (ys + r) % nslot;
            const uint8_t *ctr[4];
            uint8_t *d;
            /* The kept taps' weights at source row ys, columns [lo, hi) of the strip. */
            for (int q = 0; q < npos; q++) {
                int k = pos[q], dy = tp->dy[k], dx = tp->dx[k];
                int lo = dx > 0 ? -dx : 0, hi = cw + (dx < 0 ? -dx : 0);
                const uint8_t *src[4], *sc[4];
                size_t off = (size_t)(ys + r + dy) * pstride + (size_t)(r + x0 + lo + dx);
                size_t coff = (size_t)(ys + r) * pstride + (size_t)(r + x0 + lo);
                for (int c = 0; c < np; c++) {
                    src[c] = plane[c] + off;
                    sc[c] = plane[c] + coff;
                }
                float *wq =
                    ring + ((size_t)q * (size_t)nslot + (size_t)slot) * rw + (size_t)(r + lo);
                if (cc == 1)
                    bilat_weights(src, sc, hi - lo, tp->w[k], a->color_w, 1, idx, wq);
                else
                    bilat_weights(src, sc, hi - lo, tp->w[k], a->color_w, 3, idx, wq);
            }
            if (ys < 0)
                continue;
            memset(acc, 0, (size_t)(np + 1) * BILAT_CHUNK * sizeof(float));
            for (int c = 0; c < np; c++)
                ctr[c] = plane[c] + (size_t)(ys + r) * pstride + (size_t)(r + x0);
            for (int k = 0; k < tp->n;) {
                int g = tp->n - k >= 4 ? 4 : 1; /* taps in this pass */
                const uint8_t *src[4][4];
                const float *wg[4];
                for (int j = 0; j < g; j++) {
                    int kk = k + j, dy = tp->dy[kk], dx = tp->dx[kk];
                    size_t off = (size_t)(ys + r + dy) * pstride + (size_t)(r + x0 + dx);
                    for (int c = 0; c < np; c++)
                        src[j][c] = plane[c] + off;
                    if (kind[kk] == 0) {
                        float *wj = wts + (size_t)j * BILAT_CHUNK;
                        bilat_weights(src[j], ctr, cw, tp->w[kk], a->color_w, cc, idx, wj);
                        wg[j] = wj;
                    } else if (kind[kk] == 1) {
                        wg[j] = ring + ((size_t)q_of[kk] * (size_t)nslot + (size_t)slot) * rw +
                                (size_t)r;
                    } else { /* source row ys + dy (dy <= 0), column x + dx */
                        int s = (ys + dy + r) % nslot;
                        wg[j] = ring + ((size_t)q_of[kk] * (size_t)nslot + (size_t)s) * rw +
                                (size_t)(r + dx);
                    }
                }
                bilat_add(wsum, sum, src, wg, g, np, cw);
                k += g;
            }
            d = dip__row_at(out, ys) + (size_t)x0 * (size_t)np;
            if (np == 1) { /* one loop that vectorises */
                for (int x = 0; x < cw; x++)
                    d[x] = round_u8(sum[0][x] / wsum[x]);
            } else if (cc == 1) {
                for (int x = 0; x < cw; x++)
                    for (int c = 0; c < np; c++)
                        d[x * np + c] = round_u8(sum[c][x] / wsum[x]);
            } else {
                for (int x = 0; x < cw; x++) {
                    float inv = 1.f / wsum[x];
                    for (int c = 0; c < np; c++)
                        d[x * np + c] = round_u8(sum[c][x] * inv);
                }
            }
        }
    }
}

static int bilateral_tile(const void *args, const struct dip_tile *t)
{
    const struct bilateral_args *a = args;
    int np = t->in.channels, iw = t->in.width, ih = t->in.height;
    size_t psize = np == 1 ? 0 : (size_t)iw * (size_t)ih; /* gray is read in place */
    size_t accn = (size_t)(np + 6) * BILAT_CHUNK;         /* wsum, sums, table indices, weights */
    size_t pstride = np == 1 ? t->in.stride : (size_t)iw;
    struct bilat_taps taps;
    size_t ringn;
    float *acc;
    uint8_t *mem;
    const uint8_t *plane[4] = {t->in.data};

    bilat_taps_make(a, &taps);
    ringn = a->radius <= BILAT_MIRROR_R ? bilat_ring_floats(a->radius, taps.n) : 0;
    acc = dip_malloc((accn + ringn) * sizeof(float) + psize * (size_t)np);
    if (acc == NULL)
        return DIP_ENOMEM;
    mem = (uint8_t *)(acc + accn + ringn);
    /* Channels to planes, so that every loop above is unit-stride. */
    for (int c = 0; c < np && np > 1; c++) {
        uint8_t *p = mem + (size_t)c * psize;
        plane[c] = p;
        for (int y = 0; y < ih; y++) {
            const uint8_t *s = dip__row_at(&t->in, y) + c;
            for (int x = 0; x < iw; x++)
                p[(size_t)y * (size_t)iw + (size_t)x] = s[(size_t)x * (size_t)np];
        }
    }
    if (ringn > 0)
        bilat_rows_m(a, &taps, plane, pstride, t->out.width, t->out.height, np, &t->out, acc,
                     acc + accn);
    else
        bilat_rows(a, &taps, plane, pstride, t->out.width, t->out.height, np, &t->out, acc);
    dip_free(acc);
    return 0;
}

const struct dip_op dip_op_bilateral = {
    .name = "bilateral",
    .version = 1,
    .summary = "Edge-preserving bilateral filter",
    .doc = "out = sum w p / sum w over the disc of radius d/2 (d=0: round(1.5 sigma_space)), "
           "w = exp(-r^2/(2 sigma_space^2)) exp(-c^2/(2 sigma_color^2)), c = |p - p0| on gray, "
           "the sum of |differences| of R, G, B on colour, both as float tables, summed in float "
           "tap by tap. Gray+alpha takes weights from gray, RGBA from RGB; alpha is filtered with "
           "the same weights. Border: reflect-101. Matches cv2.bilateralFilter(img, d, "
           "sigma_color, sigma_space) within 1 level (same tables and order; gray and RGB only "
           "in OpenCV). Radius at most 12.",
    .kind = DIP_OP_STENCIL,
    .args_size = sizeof(struct bilateral_args),
    .params = bilateral_params,
    .n_params = DIP_COUNTOF(bilateral_params),
    .edge = DIP_EDGE_REFLECT101,
    .prepare = bilateral_prepare,
    .halo = bilateral_halo,
    .tile = bilateral_tile,
};

/* ---- sharpen (unsharp mask) ---- */

struct sharpen_args {
    double sigma, amount;
    int threshold, size;
    /* prepare() */
    int amount_q; /* amount in 1/256 */
    struct gauss_kernel kern;
};

static const struct dip_param sharpen_params[] = {
    DIP_PARAM_DOUBLE(struct sharpen_args, sigma, 0.1, 20, 1.0, "Blur sigma in pixels"),
    DIP_PARAM_DOUBLE(struct sharpen_args, amount, 0, 10, 1.0,
                     "Strength: out = in + amount (in - blur)"),
    DIP_PARAM_INT(struct sharpen_args, threshold, 0, 255, 0,
                  "Leave pixels with |in - blur| below this unchanged"),
    DIP_PARAM_INT_ODD(struct sharpen_args, size, 0, GAUSS_MAX, 0,
                      "Blur kernel side (odd); 0: round(6 sigma + 1) made odd"),
};

static int sharpen_prepare(void *args, int in_channels, struct dip_err *err)
{
    struct sharpen_args *a = args;

    (void)in_channels;
    a->amount_q = (int)nearbyint(a->amount * 256);
    return gauss_prepare_kernel("sharpen", a->size, a->sigma, &a->kern, err);
}

static void sharpen_halo(const void *args, struct dip_halo *h)
{
    stencil_halo(((const struct sharpen_args *)args)->kern.ksize / 2, h);
}

/* out = clamp(in + floor((d amount_q + 128) / 256)), d = in - blur, where |d| >= threshold. */
/* The rounding product in 16 bits: with a = 128 d (|a| <= 32640) and A <= 2560,
 * (a A + 2^14) >> 15 = floor((d A + 128) / 256) exactly (a rounding high multiply). */
DIP_HOT static void sharpen_mix(const uint8_t *restrict in, uint8_t *restrict d, size_t m,
                                int amount_q, int thr)
{
    int16_t amt = (int16_t)amount_q, th = (int16_t)thr;

    for (size_t i = 0; i < m; i++) {
        int16_t diff = (int16_t)(in[i] - d[i]);
        int16_t a = (int16_t)(diff * 128);
        int16_t add = (int16_t)(((int32_t)a * amt + 16384) >> 15);
        int16_t v = (int16_t)(in[i] + add);
        int16_t ad = diff < 0 ? (int16_t)-diff : diff;
        v = v < 0 ? 0 : v > 255 ? 255 : v;
        d[i] = (uint8_t)(ad >= th ? v : in[i]);
    }
}

static int sharpen_tile(const void *args, const struct dip_tile *t)
{
    const struct sharpen_args *a = args;
    struct gauss_mix mx = {a->amount_q, a->threshold};

    /* Each blurred row of `out` is mixed with its centre pixels at once. */
    return gauss_run(&a->kern, &t->in, &t->out, &mx);
}

const struct dip_op dip_op_sharpen = {
    .name = "sharpen",
    .version = 1,
    .summary = "Unsharp mask: in + amount (in - gaussian blur)",
    .doc = "blur = gaussian(size, sigma) (this op set's bit-exact kernel); d = in - blur; "
           "out = clamp(in + floor((d A + 128) / 256), 0, 255) with A = round(256 amount), where "
           "|d| >= threshold, else in. Every channel (alpha too). Border: reflect-101. "
           "Equivalent: b = cv2.GaussianBlur(img, (0, 0), sigma); d = img - b (int); "
           "clip(img + floor(amount d + 0.5)) where |d| >= threshold (identical when 256 amount is "
           "an integer).",
    .kind = DIP_OP_STENCIL,
    .args_size = sizeof(struct sharpen_args),
    .params = sharpen_params,
    .n_params = DIP_COUNTOF(sharpen_params),
    .edge = DIP_EDGE_REFLECT101,
    .prepare = sharpen_prepare,
    .halo = sharpen_halo,
    .tile = sharpen_tile,
};
