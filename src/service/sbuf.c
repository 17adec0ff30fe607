/* SPDX-License-Identifier: MIT */
/* Capped growable buffers and the JSON writing helpers of the service and its HTTP API. Every
 * response body is built here, so every size is bounded by the cap given at init; the first failure
 * sticks and is checked once by the caller. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "dip/image.h"
#include "service/internal.h"

void dip__sbuf_init(struct dip__sbuf *b, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->cap = cap;
}

void dip__sbuf_free(struct dip__sbuf *b)
{
    dip_free(b->data);
    memset(b, 0, sizeof(*b));
}

void dip__sbuf_reset(struct dip__sbuf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

int dip__sbuf_add(struct dip__sbuf *b, const void *p, size_t n)
{
    size_t need;

    if (b->failed)
        return b->failed;
    if (n > b->cap || b->len > b->cap - n)
        return b->failed = DIP_ELIMIT;
    need = b->len + n + 1;
    if (need > b->size) {
        size_t size = b->size ? b->size : 256;
        char *d;
        while (size < need)
            size = size > SIZE_MAX / 2 ? need : size * 2;
        d = dip_realloc(b->data, size);
        if (d == NULL)
            return b->failed = DIP_ENOMEM;
        b->data = d;
        b->size = size;
    }
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int dip__sbuf_reserve(struct dip__sbuf *b, size_t n)
{
    char *d;

    if (b->failed)
        return b->failed;
    if (n > b->cap)
        return b->failed = DIP_ELIMIT;
    if (n + 1 <= b->size)
        return 0;
    d = dip_realloc(b->data, n + 1);
    if (d == NULL)
        return b->failed = DIP_ENOMEM;
    if (b->data == NULL)
        d[0] = '\0';
    b->data = d;
    b->size = n + 1;
    return 0;
}

int dip__sbuf_str(struct dip__sbuf *b, const char *s)
{
    return dip__sbuf_add(b, s, strlen(s));
}

int dip__sbuf_printf(struct dip__sbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return b->failed = DIP_EINVAL;
    if ((size_t)n < sizeof(small))
        return dip__sbuf_add(b, small, (size_t)n);
    /* Long output: format into a temporary of the right size. */
    {
        char *tmp = dip_malloc((size_t)n + 1);
        if (tmp == NULL)
            return b->failed = DIP_ENOMEM;
        va_start(ap, fmt);
        vsnprintf(tmp, (size_t)n + 1, fmt, ap);
        va_end(ap);
        dip__sbuf_add(b, tmp, (size_t)n);
        dip_free(tmp);
    }
    return b->failed;
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

int dip__sbuf_json_str(struct dip__sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;

    if (s == NULL)
        return dip__sbuf_str(b, "null");
    dip__sbuf_add(b, "\"", 1);
    for (; *p != '\0'; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            dip__sbuf_add(b, e, 2);
        } else if (c == '\n') {
            dip__sbuf_add(b, "\\n", 2);
        } else if (c == '\r') {
            dip__sbuf_add(b, "\\r", 2);
        } else if (c == '\t') {
            dip__sbuf_add(b, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            dip__sbuf_add(b, e, 6);
        } else if (c < 0x80) {
            dip__sbuf_add(b, &c, 1);
        } else {
            /* A well-formed UTF-8 sequence (no overlong forms, no surrogates, at most U+10FFFF)
             * passes through; anything else, e.g. a client's Latin-1 bytes echoed in an error,
             * becomes U+FFFD so the JSON stays valid. */
            size_t n = utf8_len(p);
            if (n == 0) {
                dip__sbuf_add(b, "\\ufffd", 6);
            } else {
                dip__sbuf_add(b, p, n);
                p += n - 1;
            }
        }
    }
    return dip__sbuf_add(b, "\"", 1);
}

int dip__sbuf_json_num(struct dip__sbuf *b, double v)
{
    if (!isfinite(v))
        return dip__sbuf_str(b, "null");
    if (v == floor(v) && fabs(v) < 9e15)
        return dip__sbuf_printf(b, "%.0f", v);
    return dip__sbuf_printf(b, "%.3f", v);
}
