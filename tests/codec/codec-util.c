/* SPDX-License-Identifier: MIT */
/* Helpers shared by the codec tests; see codec-util.h. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec-util.h"
#include "test.h"

/* A new w x h image with ch channels, and its view. */
static dip_image *new_image(int w, int h, int ch, struct dip_view *v)
{
    dip_image *img = NULL;

    ASSERT_OK(dip_image_new(w, h, ch, &img));
    *v = dip_image_view(img);
    return img;
}

dip_image *make_image(int w, int h, int ch, int smooth)
{
    struct dip_view v;
    dip_image *img = new_image(w, h, ch, &v);

    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++) {
                int val = (x * 255 / (w > 1 ? w - 1 : 1)) * (c % 2 == 0) +
                          (y * 255 / (h > 1 ? h - 1 : 1)) * (c % 2 == 1);
                if (c == 2)
                    val = ((x + y) * 255) / (w + h);
                if (c == 3)
                    val = 255 - (y * 200) / h;
                if (!smooth && ((x / 3 + y / 5) % 7 == 0))
                    val = (val * 7 + 31 * c + x * y) & 0xff;
                v.data[(size_t)y * v.stride + (size_t)x * (size_t)ch + (size_t)c] = (uint8_t)val;
            }
    return img;
}

dip_image *seeded_image(int w, int h, int ch, uint32_t seed)
{
    struct dip_view v;
    dip_image *img = new_image(w, h, ch, &v);
    uint32_t s = seed * 2654435761u + 1;

    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++) {
                s = s * 1103515245u + 12345u;
                v.data[(size_t)y * v.stride + (size_t)x * (size_t)ch + (size_t)c] =
                    (uint8_t)((x * 5 + y * 3 + c * 60) ^ (int)((s >> 16) & 15));
            }
    return img;
}

dip_image *gradient_image(int w, int h, int ch)
{
    struct dip_view v;
    dip_image *img = new_image(w, h, ch, &v);

    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++)
                v.data[(size_t)y * v.stride + (size_t)x * (size_t)ch + (size_t)c] =
                    (uint8_t)(c == 3 || (ch == 2 && c == 1)
                                  ? 255 - (x * 255 / w)
                                  : 20 + x * 120 / w + y * (c + 1) * 25 / h);
    return img;
}

int decode_with(const void *buf, size_t len, const struct dip_limits *lim, int autorotate,
                dip_image **out, struct dip_image_info *info, struct dip_err *err)
{
    struct dip_limits dl;
    struct dip_decode_opts o;

    dip_limits_default(&dl);
    dip_decode_opts_default(&o);
    o.autorotate = autorotate;
    dip_err_clear(err);
    return dip_codec_decode(buf, len, lim ? lim : &dl, &o, out, info, err);
}

void expect_decode_fail(const void *buf, size_t len, const struct dip_limits *lim, int code,
                        const char *needle)
{
    struct dip_err err = {0};
    struct dip_image_info info;
    dip_image *img = NULL;
    int rc = decode_with(buf, len, lim, 0, &img, &info, &err);

    if (rc == 0)
        DIP_TEST_FAIL("decode of %zu bytes succeeded, expected %s", len,
                      code ? dip_err_name(code) : "an error");
    ASSERT(img == NULL);
    if (code && rc != code)
        DIP_TEST_FAIL("got %s (%s), expected %s", dip_err_name(rc), err.msg, dip_err_name(code));
    if (needle)
        ASSERT_CONTAINS(err.msg, needle);
}

void encode_to(const dip_image *img, dip_format f, int quality, int lossless, uint8_t **out,
               size_t *len)
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

size_t make_exif(uint8_t *out, int o, int big_endian)
{
    struct bytes b = {0};
    size_t n;

#define P16(v) (big_endian ? bytes_be16(&b, v) : (bytes_u8(&b, (v)&0xff), bytes_u8(&b, (v) >> 8)))
#define P32(v) (big_endian ? bytes_be32(&b, v) : (P16((v)&0xffff), P16((uint32_t)(v) >> 16)))
    bytes_put(&b, "Exif\0\0", 6);
    bytes_put(&b, big_endian ? "MM\0*" : "II*\0", 4);
    P32(8);      /* IFD0 offset */
    P16(2);      /* entries */
    P16(0x010f); /* Make, ASCII, 4 bytes inline: an entry before Orientation */
    P16(2);
    P32(4);
    bytes_put(&b, "dip", 4);
    P16(0x0112); /* Orientation, SHORT, 1 */
    P16(3);
    P32(1);
    P16((unsigned)o);
    P16(0);
    P32(0); /* no IFD1 */
#undef P16
#undef P32
    n = b.n;
    memcpy(out, b.p, n);
    bytes_free(&b);
    return n;
}

void exif_forward(int o, int w, int h, int sx, int sy, int *dx, int *dy)
{
    /* EXIF: 1 row0 top/col0 left, 2 top/right, 3 bottom/right, 4 bottom/left,
     * 5 left/top, 6 right/top, 7 right/bottom, 8 left/bottom. */
    switch (o) {
    case 2:
        *dx = w - 1 - sx;
        *dy = sy;
        break;
    case 3:
        *dx = w - 1 - sx;
        *dy = h - 1 - sy;
        break;
    case 4:
        *dx = sx;
        *dy = h - 1 - sy;
        break;
    case 5:
        *dx = sy;
        *dy = sx;
        break;
    case 6:
        *dx = h - 1 - sy;
        *dy = sx;
        break;
    case 7:
        *dx = h - 1 - sy;
        *dy = w - 1 - sx;
        break;
    case 8:
        *dx = sy;
        *dy = w - 1 - sx;
        break;
    default:
        *dx = sx;
        *dy = sy;
        break;
    }
}

void view_diff(const struct dip_view *a, const struct dip_view *b, double *mean, int *max)
{
    double sum = 0;
    size_t n = 0;

    ASSERT_EQ_INT(a->width, b->width);
    ASSERT_EQ_INT(a->height, b->height);
    ASSERT_EQ_INT(a->channels, b->channels);
    *max = 0;
    for (int y = 0; y < a->height; y++)
        for (int i = 0; i < a->width * a->channels; i++) {
            int d = abs(a->data[(size_t)y * a->stride + (size_t)i] -
                        b->data[(size_t)y * b->stride + (size_t)i]);
            sum += d;
            n++;
            if (d > *max)
                *max = d;
        }
    *mean = n ? sum / (double)n : 0;
}

uint8_t pixel_at(const dip_image *img, int x, int y, int c)
{
    struct dip_view v = dip_image_view(img);

    return v.data[(size_t)y * v.stride + (size_t)x * (size_t)v.channels + (size_t)c];
}

void assert_same_pixels(const dip_image *a, const dip_image *b)
{
    struct dip_view va = dip_image_view(a), vb = dip_image_view(b);

    ASSERT_EQ_INT(va.width, vb.width);
    ASSERT_EQ_INT(va.height, vb.height);
    ASSERT_EQ_INT(va.channels, vb.channels);
    for (int y = 0; y < va.height; y++)
        for (int x = 0; x < va.width; x++)
            for (int c = 0; c < va.channels; c++)
                if (pixel_at(a, x, y, c) != pixel_at(b, x, y, c))
                    DIP_TEST_FAIL("pixel (%d,%d) channel %d: %d != %d", x, y, c,
                                  pixel_at(a, x, y, c), pixel_at(b, x, y, c));
}

double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
