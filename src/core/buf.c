/* SPDX-License-Identifier: MIT */
/* The capped growable buffer of core/buf.h and the text, JSON and little-endian writers on top of
 * it. Every append goes through dip__buf_grow, which is the one place the cap is checked. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "dip/error.h"
#include "dip/image.h"

void dip__buf_init(struct dip__buf *b, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->cap = cap;
}

void dip__buf_free(struct dip__buf *b)
{
    size_t cap = b->cap;

    dip_free(b->data);
    memset(b, 0, sizeof(*b));
    b->cap = cap;
}

void dip__buf_reset(struct dip__buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

static int fail(struct dip__buf *b, int rc)
{
    dip_free(b->data);
    b->data = NULL;
    b->len = b->size = 0;
    return b->failed = rc;
}

/* Room for `need` bytes and the NUL after them. */
static int ensure(struct dip__buf *b, size_t need, int exact)
{
    size_t size;
    char *d;

    if (need < b->size)
        return 0;
    size = exact ? need + 1 : (b->size ? b->size : 256);
    while (size <= need)
        size = size > SIZE_MAX / 2 ? need + 1 : size * 2;
    if (b->cap < SIZE_MAX && size - 1 > b->cap && need <= b->cap)
        size = b->cap + 1; /* never hold more than the cap */
    d = dip_realloc(b->data, size);
    if (d == NULL)
        return fail(b, DIP_ENOMEM);
    if (b->data == NULL)
        d[0] = '\0';
    b->data = d;
    b->size = size;
    return 0;
}

uint8_t *dip__buf_grow(struct dip__buf *b, size_t n)
{
    uint8_t *p;

    if (b->failed)
        return NULL;
    if (n > b->cap || b->len > b->cap - n) {
        fail(b, DIP_ELIMIT);
        return NULL;
    }
    if (ensure(b, b->len + n, 0))
        return NULL;
    p = b->bytes + b->len;
    b->len += n;
    b->bytes[b->len] = 0;
    return p;
}

int dip__buf_add(struct dip__buf *b, const void *p, size_t n)
{
    uint8_t *d = dip__buf_grow(b, n);

    if (d == NULL)
        return b->failed;
    if (n > 0)
        memcpy(d, p, n);
    return 0;
}

int dip__buf_reserve(struct dip__buf *b, size_t n)
{
    if (b->failed)
        return b->failed;
    if (n > b->cap)
        return fail(b, DIP_ELIMIT);
    return ensure(b, n, 1);
}

uint8_t *dip__buf_take(struct dip__buf *b, size_t *len)
{
    uint8_t *p = b->failed || b->len == 0 ? NULL : b->bytes;

    *len = p ? b->len : 0;
    if (p == NULL)
        dip_free(b->data);
    b->data = NULL;
    b->len = b->size = 0;
    return p;
}

/* ---- Text and JSON ---- */

int dip__buf_str(struct dip__buf *b, const char *s)
{
    return dip__buf_add(b, s, strlen(s));
}

int dip__buf_printf(struct dip__buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    int n;

    if (b->failed)
        return b->failed;
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return fail(b, DIP_EINVAL);
    if ((size_t)n < sizeof(small))
        return dip__buf_add(b, small, (size_t)n);
    /* Long output: format in place, into room made for it and the NUL. */
    {
        uint8_t *d = dip__buf_grow(b, (size_t)n);
        if (d == NULL)
            return b->failed;
        va_start(ap, fmt);
        vsnprintf((char *)d, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return 0;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned char c = p[0];
    size_t n;
    unsigned int cp;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

int dip__buf_json_str(struct dip__buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;

    if (s == NULL)
        return dip__buf_str(b, "null");
    dip__buf_add(b, "\"", 1);
    for (; *p != '\0'; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            dip__buf_add(b, e, 2);
        } else if (c == '\n') {
            dip__buf_add(b, "\\n", 2);
        } else if (c == '\r') {
            dip__buf_add(b, "\\r", 2);
        } else if (c == '\t') {
            dip__buf_add(b, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            dip__buf_add(b, e, 6);
        } else if (c < 0x80) {
            dip__buf_add(b, &c, 1);
        } else {
            /* A well-formed UTF-8 sequence (no overlong forms, no surrogates, at most U+10FFFF)
             * passes through; anything else, e.g. a client's Latin-1 bytes echoed in an error,
             * becomes U+FFFD so the JSON stays valid. */
            size_t n = utf8_len(p);
            if (n == 0) {
                dip__buf_add(b, "\\ufffd", 6);
            } else {
                dip__buf_add(b, p, n);
                p += n - 1;
            }
        }
    }
    return dip__buf_add(b, "\"", 1);
}

int dip__buf_json_num(struct dip__buf *b, double v)
{
    if (!isfinite(v))
        return dip__buf_str(b, "null");
    if (v == floor(v) && fabs(v) < 9e15)
        return dip__buf_printf(b, "%.0f", v);
    return dip__buf_printf(b, "%.3f", v);
}

int dip__buf_json_exact(struct dip__buf *b, double v)
{
    char s[32];

    if (!isfinite(v))
        return dip__buf_str(b, "null");
    /* The shortest of 15 and 17 digits that reads back as v: 0.1 prints as 0.1. */
    snprintf(s, sizeof(s), "%.15g", v);
    if (strtod(s, NULL) != v)
        snprintf(s, sizeof(s), "%.17g", v);
    return dip__buf_str(b, s);
}

/* ---- Little-endian fields ---- */

static int put_le(struct dip__buf *b, uint64_t v, size_t n)
{
    uint8_t *p = dip__buf_grow(b, n);

    if (p == NULL)
        return b->failed;
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return 0;
}

int dip__buf_u8(struct dip__buf *b, uint8_t v)
{
    return put_le(b, v, 1);
}

int dip__buf_u32le(struct dip__buf *b, uint32_t v)
{
    return put_le(b, v, 4);
}

int dip__buf_u64le(struct dip__buf *b, uint64_t v)
{
    return put_le(b, v, 8);
}

int dip__buf_f64le(struct dip__buf *b, double v)
{
    uint64_t u;

    memcpy(&u, &v, sizeof u);
    return put_le(b, u, 8);
}
