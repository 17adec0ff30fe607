/* SPDX-License-Identifier: MIT */
/* The wire format of the cluster executor: messages are built in the core buffer (core/buf.h,
 * fixed-width little-endian fields), and read by a reader that checks every field against the
 * bytes left. Peers may be buggy or half-dead, so a short message sets a flag rather than
 * reading past the end. Also the encoding of a job spec (codec options and limits travel with
 * each job). */
#include <string.h>

#include "dip/image.h"
#include "internal.h"

int dip__wire_str(struct dip__buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;

    dip__buf_u32le(b, (uint32_t)n);
    return dip__buf_add(b, s, n);
}

static uint64_t get_le(struct dip__rbuf *r, int n)
{
    uint64_t v = 0;

    if (r->bad || r->left < (size_t)n) {
        r->bad = 1;
        return 0;
    }
    for (int i = 0; i < n; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    r->left -= (size_t)n;
    return v;
}

uint8_t dip__rbuf_u8(struct dip__rbuf *r)
{
    return (uint8_t)get_le(r, 1);
}

uint32_t dip__rbuf_u32(struct dip__rbuf *r)
{
    return (uint32_t)get_le(r, 4);
}

int32_t dip__rbuf_i32(struct dip__rbuf *r)
{
    uint32_t u = (uint32_t)get_le(r, 4);
    int32_t v;

    memcpy(&v, &u, sizeof v);
    return v;
}

uint64_t dip__rbuf_u64(struct dip__rbuf *r)
{
    return get_le(r, 8);
}

double dip__rbuf_f64(struct dip__rbuf *r)
{
    uint64_t u = get_le(r, 8);
    double v;

    memcpy(&v, &u, sizeof v);
    return v;
}

const uint8_t *dip__rbuf_bytes(struct dip__rbuf *r, size_t n)
{
    const uint8_t *p;

    if (r->bad || r->left < n) {
        r->bad = 1;
        return NULL;
    }
    p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

char *dip__rbuf_str(struct dip__rbuf *r, size_t max)
{
    uint32_t n = dip__rbuf_u32(r);
    const uint8_t *p;
    char *s;

    if (n > max) {
        r->bad = 1;
        return NULL;
    }
    p = dip__rbuf_bytes(r, n);
    if (!p)
        return NULL;
    s = dip_malloc((size_t)n + 1);
    if (!s)
        return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

void dip__wire_spec(struct dip__buf *b, const struct dip_job_spec *spec)
{
    dip__buf_u32le(b, (uint32_t)spec->encode.format);
    dip__buf_u32le(b, (uint32_t)spec->encode.quality);
    dip__buf_u32le(b, (uint32_t)spec->encode.subsampling);
    dip__buf_u32le(b, (uint32_t)spec->encode.png_level);
    dip__buf_u32le(b, (uint32_t)spec->encode.webp_lossless);
    dip__buf_u32le(b, (uint32_t)spec->decode.autorotate);
    /* Every limit of DIP_LIMITS_MAP, in its order, as a u64. */
    for (int i = 0; i < DIP_LIMIT_COUNT; i++)
        dip__buf_u64le(b, (uint64_t)dip_limits_get(&spec->limits, i));
    dip__buf_u32le(b, (uint32_t)spec->tile);
    dip__buf_u32le(b, (uint32_t)spec->threads);
}

void dip__wire_read_spec(struct dip__rbuf *r, struct dip_job_spec *spec)
{
    uint32_t fmt;

    dip_job_spec_default(spec);
    fmt = dip__rbuf_u32(r);
    spec->encode.format = fmt < DIP_FORMAT_COUNT ? (dip_format)fmt : DIP_FORMAT_UNKNOWN;
    spec->encode.quality = dip__rbuf_i32(r);
    spec->encode.subsampling = dip__rbuf_i32(r);
    spec->encode.png_level = dip__rbuf_i32(r);
    spec->encode.webp_lossless = dip__rbuf_i32(r);
    spec->decode.autorotate = dip__rbuf_i32(r);
    /* A value outside the table's range (a garbled message) keeps the default and marks the
     * message bad, so the task fails rather than running with a limit nobody set. */
    for (int i = 0; i < DIP_LIMIT_COUNT; i++) {
        uint64_t v = dip__rbuf_u64(r);
        if (v > (uint64_t)INT64_MAX || dip_limits_set(&spec->limits, i, (long long)v, NULL))
            r->bad = 1;
    }
    spec->tile = dip__rbuf_i32(r);
    spec->threads = dip__rbuf_i32(r);
    spec->pipeline = "";
}
