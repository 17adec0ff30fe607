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

/* Every limit, once: XX(field, type, default, min, max, flag, help). The struct, the defaults,
 * the command-line options and their help, the cluster wire format, GET /api/v1/limits and the
 * table in README.md (`dip limits --markdown`) are all generated from this list. `min` and `max`
 * bound what an operator may set; the flag is `--<flag> N` on every command that reads images. */
#define DIP_LIMITS_MAP(XX)                                                                         \
    XX(max_width, int, 65535, 1, 1073741824, "max-width", "pixels per row")                        \
    XX(max_height, int, 65535, 1, 1073741824, "max-height", "rows")                                \
    XX(max_pixels, uint64_t, 100000000, 1, 1099511627776, "max-pixels", "width * height")          \
    XX(max_input_bytes, size_t, 268435456, 1, 1099511627776, "max-bytes",                          \
       "bytes of one input file")                                                                  \
    XX(max_jpeg_scans, int, 100, 1, 1048576, "max-scans", "progressive JPEG scans")                \
    XX(max_metadata_bytes, size_t, 16777216, 0, 1099511627776, "max-metadata",                     \
       "metadata bytes (EXIF, ICC, text chunks, tags)")                                            \
    XX(max_frames, int, 100, 1, 1048576, "max-frames", "frames or pages examined")                 \
    XX(max_request_bytes, size_t, 536870912, 1, 1099511627776, "max-request",                      \
       "bytes of one HTTP upload request (dip serve)")

struct dip_limits {
#define DIP__LIMIT_FIELD(field, type, def, min, max, flag, help) type field;
    DIP_LIMITS_MAP(DIP__LIMIT_FIELD)
#undef DIP__LIMIT_FIELD
};

/** The limits in DIP_LIMITS_MAP order: DIP_LIMIT_max_width, ..., and DIP_LIMIT_COUNT. */
enum dip_limit_id {
#define DIP__LIMIT_ID(field, type, def, min, max, flag, help) DIP_LIMIT_##field,
    DIP_LIMITS_MAP(DIP__LIMIT_ID)
#undef DIP__LIMIT_ID
        DIP_LIMIT_COUNT
};

/** One row of DIP_LIMITS_MAP, for generic code (option parsing, help, JSON, docs). */
struct dip_limit_info {
    const char *field; /* "max_width": the struct field and the JSON key */
    const char *flag;  /* "max-width": the command-line option without its dashes */
    const char *help;
    long long def, min, max;
};

/** Row `id` of the table (0 <= id < DIP_LIMIT_COUNT), or NULL. */
const struct dip_limit_info *dip_limit_info(int id);
/** The value of limit `id` in `lim`. */
long long dip_limits_get(const struct dip_limits *lim, int id);
/** Sets limit `id` to `v` after checking it against the table's min and max; DIP_EINVAL (naming
 * the flag and the range) otherwise, leaving `lim` untouched. */
int dip_limits_set(struct dip_limits *lim, int id, long long v, struct dip_err *err);

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
