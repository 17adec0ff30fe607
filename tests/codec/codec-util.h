/* SPDX-License-Identifier: MIT */
/* Helpers shared by every codec test: deterministic test images, decode and encode wrappers,
 * pixel comparison, and the EXIF orientation mapping written independently of codec.c (from the
 * EXIF definition of where row 0 and column 0 go); hand-made files are written with
 * tests/harness/bytes.h. One set for all formats (the PNG/JPEG/GIF tests and the BMP/PNM/TIFF/
 * WebP tests had one each, and the hostile inputs a third byte builder, until 2026-12-07). */
#ifndef CODEC_UTIL_H
#define CODEC_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h" /* the byte builder (tests/harness) */
#include "dip/codec.h"
#include "sweep.h" /* the truncation and out-of-memory sweeps */

/* A w x h image with `ch` channels: smooth gradients plus a few edges when `smooth` is 0,
 * gradients only when 1 (JPEG-friendly). Deterministic. */
dip_image *make_image(int w, int h, int ch, int smooth);
/* A w x h image with ch channels of varied, reproducible content (gradients plus noise). */
dip_image *seeded_image(int w, int h, int ch, uint32_t seed);
/* A smooth image (for lossy codecs, whose error on noise says little); alpha falls to the right. */
dip_image *gradient_image(int w, int h, int ch);

/* Decodes with default limits (or `lim`), autorotate as given; returns the status. */
int decode_with(const void *buf, size_t len, const struct dip_limits *lim, int autorotate,
                dip_image **out, struct dip_image_info *info, struct dip_err *err);
/* Expects decoding (default limits, or `lim`; no autorotation) to fail with `code` (any failure
 * when 0) and, when given, a message containing `needle`; never an image. */
void expect_decode_fail(const void *buf, size_t len, const struct dip_limits *lim, int code,
                        const char *needle);
/* Encodes with the defaults but format, quality and WebP lossless; fails the test on error. */
void encode_to(const dip_image *img, dip_format f, int quality, int lossless, uint8_t **out,
               size_t *len);

/* EXIF block "Exif\0\0" + TIFF header (big or little endian) with one IFD0 entry:
 * Orientation = o. Returns its length; out must hold 64 bytes. */
size_t make_exif(uint8_t *out, int o, int big_endian);

/* Where stored pixel (sx, sy) of a w x h image is displayed under EXIF orientation o. */
void exif_forward(int o, int w, int h, int sx, int sy, int *dx, int *dy);

/* Mean and max absolute difference of two views with equal size and channels. */
void view_diff(const struct dip_view *a, const struct dip_view *b, double *mean, int *max);
/* Pixel (x, y) channel c. */
uint8_t pixel_at(const dip_image *img, int x, int y, int c);
/* Fails the test unless a and b have the same size, channels and pixels. */
void assert_same_pixels(const dip_image *a, const dip_image *b);
/* Monotonic clock in seconds. */
double now_s(void);

#endif
