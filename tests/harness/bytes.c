/* SPDX-License-Identifier: MIT */
/* The tests' byte builder; see bytes.h. */
#include "bytes.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reserve(struct bytes *b, size_t n)
{
    size_t cap = b->cap ? b->cap : 256;
    uint8_t *p;

    if (b->n + n <= b->cap)
        return;
    while (cap < b->n + n)
        cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL) {
        fprintf(stderr, "bytes: out of memory\n");
        abort();
    }
    b->p = p;
    b->cap = cap;
}

void bytes_put(struct bytes *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    reserve(b, n);
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void bytes_fill(struct bytes *b, int c, size_t n)
{
    reserve(b, n);
    memset(b->p + b->n, c, n);
    b->n += n;
}

void bytes_u8(struct bytes *b, unsigned v)
{
    uint8_t c = (uint8_t)v;

    bytes_put(b, &c, 1);
}

void bytes_le16(struct bytes *b, unsigned v)
{
    bytes_u8(b, v & 0xff);
    bytes_u8(b, (v >> 8) & 0xff);
}

void bytes_be16(struct bytes *b, unsigned v)
{
    bytes_u8(b, (v >> 8) & 0xff);
    bytes_u8(b, v & 0xff);
}

void bytes_le32(struct bytes *b, uint32_t v)
{
    bytes_le16(b, v & 0xffff);
    bytes_le16(b, v >> 16);
}

void bytes_be32(struct bytes *b, uint32_t v)
{
    bytes_be16(b, v >> 16);
    bytes_be16(b, v & 0xffff);
}

void bytes_str(struct bytes *b, const char *s)
{
    bytes_put(b, s, strlen(s));
}

void bytes_printf(struct bytes *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        bytes_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

void bytes_set_le32(struct bytes *b, size_t at, uint32_t v)
{
    if (at + 4 > b->n) {
        fprintf(stderr, "bytes_set_le32: offset %zu past the %zu bytes written\n", at, b->n);
        abort();
    }
    for (int i = 0; i < 4; i++)
        b->p[at + (size_t)i] = (uint8_t)(v >> (8 * i));
}

void bytes_free(struct bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}
