/* SPDX-License-Identifier: MIT */
/* What every operation file shares (private to src/ops): the one way hot loops are compiled (-O3
 * for these files under GCC, in every build type; an AVX2 clone picked at load time on x86-64),
 * row_at, OpenCV's fixed-point luma, and row helpers that keep alpha. Every kernel here is integer
 * or IEEE single/double arithmetic without contraction, so the AVX2 and baseline clones give the
 * same bytes, and a pixel's value never depends on the tile it is computed in. */
#ifndef DIP_OPS_KERNEL_H
#define DIP_OPS_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "dip/op.h"

/* GCC's -O2 vectorises only loops whose trip count is known; these kernels need the full
 * vectoriser. Clang vectorises at -O2 already. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

/* A hot kernel gets an AVX2 clone next to the baseline one (ifunc dispatch at load time). */
#if defined(__x86_64__) && !defined(DIP_NO_CLONES) &&                                              \
    ((defined(__GNUC__) && !defined(__clang__)) || (defined(__clang__) && __clang_major__ >= 14))
#define DIP_HOT __attribute__((target_clones("avx2", "default")))
#else
#define DIP_HOT
#endif

/* The same, for a loop whose stride-3 loads are worth vectorising though GCC's cost model
 * doubts it (edge.c's channel pick). */
#if defined(__x86_64__) && !defined(DIP_NO_CLONES) && defined(__GNUC__) && !defined(__clang__)
#define DIP_HOT_PICK                                                                               \
    __attribute__((target_clones("avx2", "default"), optimize("O3", "vect-cost-model=unlimited")))
#else
#define DIP_HOT_PICK DIP_HOT
#endif

#define DIP_INLINE static inline __attribute__((always_inline))

/* Row y (0 <= y < v->height) of a view. */
static inline uint8_t *dip__row_at(const struct dip_view *v, int y)
{
    return v->data + (size_t)y * v->stride;
}

/* OpenCV's RGB -> gray: BT.601 weights in 15-bit fixed point (9798 + 19235 + 3735 = 32768),
 * rounded. */
static inline int dip__luma(int r, int g, int b)
{
    return (r * 9798 + g * 19235 + b * 3735 + (1 << 14)) >> 15;
}

/* OpenCV's RGB -> YCrCb Y: the same weights in 14-bit fixed point, which rounds differently. */
#define DIP_YSHIFT 14
static inline int dip__luma14(int r, int g, int b)
{
    return (r * 4899 + g * 9617 + b * 1868 + (1 << (DIP_YSHIFT - 1))) >> DIP_YSHIFT;
}

/* Colour channels of a pixel with `ch` channels: 1 (gray), 1 (gray+alpha), 3 (RGB), 3 (RGBA). */
static inline int dip__colour_channels(int ch)
{
    return ch >= 3 ? 3 : 1;
}

/* Gray-valued ops (gray, threshold, otsu): RGB -> 1 channel, RGBA -> gray+alpha, gray stays. */
static inline int dip__gray_channels(int ch)
{
    return ch == 3 ? 1 : ch == 4 ? 2 : ch;
}

/* Applies `lut` to the colour channels of a row of `w` pixels with `ch` channels, copying alpha.
 * s and d may be the same memory. */
void dip__lut_row(const uint8_t *s, uint8_t *d, int w, int ch, const uint8_t *lut);

/* Gray of a row into `g` (w bytes): dip__luma, or dip__luma14 when `ycc`; for 1 and 2
 * channels, channel 0. */
void dip__gray_row(const uint8_t *s, uint8_t *g, int w, int ch, int ycc);

/* 256-bin histogram of the gray values (as dip__gray_row) of a view, added to `hist`. */
void dip__gray_hist(const struct dip_view *in, uint64_t hist[256], int ycc);

#endif
