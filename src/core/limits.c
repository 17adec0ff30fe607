/* SPDX-License-Identifier: MIT */
/* Default limits, header dimension checks and overflow-checked size arithmetic. */
#include "dip/limits.h"

void dip_limits_default(struct dip_limits *lim)
{
    lim->max_width = 65535;
    lim->max_height = 65535;
    lim->max_pixels = 100000000u;
    lim->max_input_bytes = (size_t)256 << 20;
    lim->max_jpeg_scans = 100;
    lim->max_metadata_bytes = (size_t)16 << 20;
    lim->max_frames = 100;
    lim->max_request_bytes = (size_t)512 << 20;
}

int dip_limits_check_dims(const struct dip_limits *lim, const char *what, long long w, long long h,
                          struct dip_err *err)
{
    if (w <= 0 || h <= 0)
        return dip_err_set(err, DIP_ECORRUPT, "%s: invalid image size %lldx%lld", what, w, h);
    if (w > lim->max_width)
        return dip_err_set(err, DIP_ELIMIT, "%s: width %lld exceeds the limit max_width=%d", what,
                           w, lim->max_width);
    if (h > lim->max_height)
        return dip_err_set(err, DIP_ELIMIT, "%s: height %lld exceeds the limit max_height=%d",
                           what, h, lim->max_height);
    /* w and h are below 2^31 each here, so the product fits in 64 bits. */
    if ((unsigned long long)w * (unsigned long long)h > lim->max_pixels)
        return dip_err_set(err, DIP_ELIMIT,
                           "%s: %lldx%lld = %llu pixels exceeds the limit max_pixels=%llu", what,
                           w, h, (unsigned long long)w * (unsigned long long)h,
                           (unsigned long long)lim->max_pixels);
    return 0;
}

int dip_size_mul(size_t a, size_t b, size_t *out)
{
    size_t r;

    if (__builtin_mul_overflow(a, b, &r))
        return DIP_ELIMIT;
    *out = r;
    return 0;
}

int dip_size_add(size_t a, size_t b, size_t *out)
{
    size_t r;

    if (__builtin_add_overflow(a, b, &r))
        return DIP_ELIMIT;
    *out = r;
    return 0;
}
