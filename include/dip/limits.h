/* SPDX-License-Identifier: MIT */
/* Limits on untrusted input and checked size arithmetic. One struct dip_limits is handed to every
 * decoder and parser; each checks it against the header before allocating any pixel buffer. */
#ifndef DIP_LIMITS_H
#define DIP_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dip_limits {
    int max_width;             /* pixels per row; default 65535 */
    int max_height;            /* rows; default 65535 */
    uint64_t max_pixels;       /* width * height; default 100 000 000 */
    size_t max_input_bytes;    /* size of one encoded input; default 256 MiB */
    int max_jpeg_scans;        /* progressive JPEG scans; default 100 */
    size_t max_metadata_bytes; /* total metadata (EXIF, ICC, text chunks, tags); default 16 MiB */
    int max_frames;            /* frames or pages examined; default 100 */
    size_t max_request_bytes;  /* HTTP request body; default 512 MiB */
};

/** Fills `lim` with the documented defaults. */
void dip_limits_default(struct dip_limits *lim);

/** Checks `w` x `h` (from a header) against `lim`. `what` names the source in the message,
 * e.g. "png". Returns 0, DIP_ECORRUPT for w or h <= 0, or DIP_ELIMIT naming the limit. */
int dip_limits_check_dims(const struct dip_limits *lim, const char *what, long long w, long long h,
                          struct dip_err *err);

/** *out = a * b, or DIP_ELIMIT on overflow (out untouched). */
int dip_size_mul(size_t a, size_t b, size_t *out);
/** *out = a + b, or DIP_ELIMIT on overflow (out untouched). */
int dip_size_add(size_t a, size_t b, size_t *out);

#ifdef __cplusplus
}
#endif
#endif
