/* SPDX-License-Identifier: MIT */
/* Helpers shared by the codec-a tests (PNG, JPEG, GIF, EXIF): deterministic test images, a
 * byte builder for hand-made files, decode wrappers and the EXIF orientation mapping written
 * independently of codec.c (from the EXIF definition of where row 0 and column 0 go). */
#ifndef CODEC_A_UTIL_H
#define CODEC_A_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "dip/codec.h"
#include "sweep.h" /* the truncation and out-of-memory sweeps */

/* A growable byte string (aborts on OOM: test code). */
struct bytes {
    uint8_t *p;
    size_t n, cap;
};
void bytes_put(struct bytes *b, const void *p, size_t n);
void bytes_u8(struct bytes *b, unsigned v);
void bytes_be16(struct bytes *b, unsigned v);
void bytes_be32(struct bytes *b, uint32_t v);
void bytes_free(struct bytes *b);

/* A w x h image with `ch` channels: smooth gradients plus a few edges when `smooth` is 0,
 * gradients only when 1 (JPEG-friendly). Deterministic. */
dip_image *make_image(int w, int h, int ch, int smooth);

/* Decodes with default limits (or `lim`), autorotate as given; returns the status. */
int decode_with(const void *buf, size_t len, const struct dip_limits *lim, int autorotate,
                dip_image **out, struct dip_image_info *info, struct dip_err *err);

/* EXIF block "Exif\0\0" + TIFF header (big or little endian) with one IFD0 entry:
 * Orientation = o. Returns its length; out must hold 64 bytes. */
size_t make_exif(uint8_t *out, int o, int big_endian);

/* Where stored pixel (sx, sy) of a w x h image is displayed under EXIF orientation o. */
void exif_forward(int o, int w, int h, int sx, int sy, int *dx, int *dy);

/* Mean and max absolute difference of two views with equal size and channels. */
void view_diff(const struct dip_view *a, const struct dip_view *b, double *mean, int *max);

#endif
