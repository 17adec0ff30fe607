/* SPDX-License-Identifier: MIT */
/* Helpers shared by the codec-b tests: deterministic test images, pixel comparison, decoding with
 * explicit limits and a growable byte builder for hand-made files (the truncation and
 * out-of-memory sweeps are sweep.h's). Header-only (static functions): each test is its own
 * executable. */
#ifndef DIP_TEST_CBUTIL_H
#define DIP_TEST_CBUTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dip/codec.h"
#include "sweep.h" /* the truncation and out-of-memory sweeps */
#include "test.h"

/* A w x h image with ch channels of varied, reproducible content (gradients plus noise). */
static inline dip_image *cb_image(int w, int h, int ch, uint32_t seed)
{
    dip_image *img = NULL;
    struct dip_view v;
    uint32_t s = seed * 2654435761u + 1;

    ASSERT_OK(dip_image_new(w, h, ch, &img));
    v = dip_image_view(img);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++) {
                s = s * 1103515245u + 12345u;
                v.data[(size_t)y * v.stride + (size_t)x * (size_t)ch + (size_t)c] =
                    (uint8_t)((x * 5 + y * 3 + c * 60) ^ (int)((s >> 16) & 15));
            }
    return img;
}

/* A smooth image (for lossy codecs, whose error on noise says little). */
static inline dip_image *cb_smooth(int w, int h, int ch)
{
    dip_image *img = NULL;
    struct dip_view v;

    ASSERT_OK(dip_image_new(w, h, ch, &img));
    v = dip_image_view(img);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++)
                v.data[(size_t)y * v.stride + (size_t)x * (size_t)ch + (size_t)c] =
                    (uint8_t)(c == 3 || (ch == 2 && c == 1)
                                  ? 255 - (x * 255 / w)
                                  : 20 + x * 120 / w + y * (c + 1) * 25 / h);
    return img;
}

static inline uint8_t cb_px(const dip_image *img, int x, int y, int c)
{
    struct dip_view v = dip_image_view(img);
    return v.data[(size_t)y * v.stride + (size_t)x * (size_t)v.channels + (size_t)c];
}

static inline void cb_assert_same(const dip_image *a, const dip_image *b)
{
    struct dip_view va = dip_image_view(a), vb = dip_image_view(b);

    ASSERT_EQ_INT(va.width, vb.width);
    ASSERT_EQ_INT(va.height, vb.height);
    ASSERT_EQ_INT(va.channels, vb.channels);
    for (int y = 0; y < va.height; y++)
        for (int x = 0; x < va.width; x++)
            for (int c = 0; c < va.channels; c++)
                if (cb_px(a, x, y, c) != cb_px(b, x, y, c))
                    DIP_TEST_FAIL("pixel (%d,%d) channel %d: %d != %d", x, y, c, cb_px(a, x, y, c),
                                  cb_px(b, x, y, c));
}

static inline int cb_decode_lim(const void *buf, size_t len, const struct dip_limits *lim,
                                dip_image **out, struct dip_image_info *info, struct dip_err *err)
{
    struct dip_decode_opts o;

    dip_decode_opts_default(&o);
    o.autorotate = 0;
    dip_err_clear(err);
    return dip_codec_decode(buf, len, lim, &o, out, info, err);
}

static inline int cb_decode(const void *buf, size_t len, dip_image **out,
                            struct dip_image_info *info, struct dip_err *err)
{
    struct dip_limits lim;

    dip_limits_default(&lim);
    return cb_decode_lim(buf, len, &lim, out, info, err);
}

static inline void cb_encode(const dip_image *img, dip_format f, int quality, int lossless,
                             uint8_t **out, size_t *len)
{
    struct dip_encode_opts o;
    struct dip_err err = {0};
    int rc;

    dip_encode_opts_default(&o);
    o.format = f;
    o.quality = quality;
    o.webp_lossless = lossless;
    rc = dip_codec_encode(img, &o, out, len, &err);
    if (rc)
        DIP_TEST_FAIL("encode failed: %s", dip_err_text(&err, rc));
}

/* Expects decoding to fail with `code` (any failure when 0) and, when given, a message
 * containing `needle`; never an image. */
static inline void cb_expect_fail(const void *buf, size_t len, const struct dip_limits *lim,
                                  int code, const char *needle)
{
    struct dip_limits def;
    struct dip_err err = {0};
    struct dip_image_info info;
    dip_image *img = NULL;
    int rc;

    if (lim == NULL) {
        dip_limits_default(&def);
        lim = &def;
    }
    rc = cb_decode_lim(buf, len, lim, &img, &info, &err);
    if (rc == 0)
        DIP_TEST_FAIL("decode of %zu bytes succeeded, expected %s", len,
                      code ? dip_err_name(code) : "an error");
    ASSERT(img == NULL);
    if (code && rc != code)
        DIP_TEST_FAIL("got %s (%s), expected %s", dip_err_name(rc), err.msg, dip_err_name(code));
    if (needle)
        ASSERT_CONTAINS(err.msg, needle);
}

/* ---- A byte builder for hand-made files ---- */

struct cb_bytes {
    uint8_t *p;
    size_t len, cap;
};

static inline void cb_put(struct cb_bytes *b, const void *src, size_t n)
{
    if (n == 0)
        return;
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        ASSERT(b->p != NULL);
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static inline void cb_u8(struct cb_bytes *b, unsigned v)
{
    uint8_t c = (uint8_t)v;
    cb_put(b, &c, 1);
}

static inline void cb_le16(struct cb_bytes *b, unsigned v)
{
    cb_u8(b, v & 255);
    cb_u8(b, (v >> 8) & 255);
}

static inline void cb_le32(struct cb_bytes *b, uint32_t v)
{
    cb_le16(b, v & 0xFFFF);
    cb_le16(b, v >> 16);
}

static inline void cb_str(struct cb_bytes *b, const char *s)
{
    cb_put(b, s, strlen(s));
}

static inline void cb_set_le32(struct cb_bytes *b, size_t at, uint32_t v)
{
    ASSERT(at + 4 <= b->len);
    for (int i = 0; i < 4; i++)
        b->p[at + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static inline double cb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
