/* SPDX-License-Identifier: MIT */
/* The limits table (generated from DIP_LIMITS_MAP in dip/limits.h), header dimension checks and
 * overflow-checked size arithmetic. */
#include "dip/limits.h"

static const struct dip_limit_info table[DIP_LIMIT_COUNT] = {
#define ROW(field, type, def, min, max, flag, help) {#field, flag, help, def, min, max},
    DIP_LIMITS_MAP(ROW)
#undef ROW
};

void dip_limits_default(struct dip_limits *lim)
{
#define SET_DEFAULT(field, type, def, min, max, flag, help) lim->field = (type)(def);
    DIP_LIMITS_MAP(SET_DEFAULT)
#undef SET_DEFAULT
}

const struct dip_limit_info *dip_limit_info(int id)
{
    return id >= 0 && id < DIP_LIMIT_COUNT ? &table[id] : NULL;
}

long long dip_limits_get(const struct dip_limits *lim, int id)
{
    switch (id) {
#define GET(field, type, def, min, max, flag, help)                                                \
    case DIP_LIMIT_##field:                                                                        \
        return (long long)lim->field;
        DIP_LIMITS_MAP(GET)
#undef GET
    }
    return 0;
}

int dip_limits_set(struct dip_limits *lim, int id, long long v, struct dip_err *err)
{
    const struct dip_limit_info *in = dip_limit_info(id);

    if (in == NULL)
        return dip_err_set(err, DIP_EINVAL, "limits: no limit number %d", id);
    if (v < in->min || v > in->max)
        return dip_err_set(err, DIP_EINVAL, "--%s: %lld is not in %lld..%lld", in->flag, v, in->min,
                           in->max);
    switch (id) {
#define SET(field, type, def, min, max, flag, help)                                                \
    case DIP_LIMIT_##field:                                                                        \
        lim->field = (type)v;                                                                      \
        break;
        DIP_LIMITS_MAP(SET)
#undef SET
    }
    return 0;
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
        return dip_err_set(err, DIP_ELIMIT, "%s: height %lld exceeds the limit max_height=%d", what,
                           h, lim->max_height);
    /* w and h are below 2^31 each here, so the product fits in 64 bits. */
    if ((unsigned long long)w * (unsigned long long)h > lim->max_pixels)
        return dip_err_set(err, DIP_ELIMIT,
                           "%s: %lldx%lld = %llu pixels exceeds the limit max_pixels=%llu", what, w,
                           h, (unsigned long long)w * (unsigned long long)h,
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
