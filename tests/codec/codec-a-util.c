/* SPDX-License-Identifier: MIT */
/* Helpers shared by the codec-a tests; see codec-a-util.h. */
#include <stdlib.h>
#include <string.h>

#include "codec-a-util.h"
#include "test.h"

void bytes_put(struct bytes *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        ASSERT(b->p != NULL);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void bytes_u8(struct bytes *b, unsigned v)
{
    uint8_t c = (uint8_t)v;
    bytes_put(b, &c, 1);
}

void bytes_be16(struct bytes *b, unsigned v)
{
    bytes_u8(b, v >> 8);
    bytes_u8(b, v & 0xff);
}

void bytes_be32(struct bytes *b, uint32_t v)
{
    bytes_be16(b, v >> 16);
    bytes_be16(b, v & 0xffff);
}

void bytes_free(struct bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

dip_image *make_image(int w, int h, int ch, int smooth)
{
    dip_image *img = NULL;
    struct dip_view v;

    ASSERT_OK(dip_image_new(w, h, ch, &img));
    v = dip_image_view(img);
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

int decode_with(const void *buf, size_t len, const struct dip_limits *lim, int autorotate,
                dip_image **out, struct dip_image_info *info, struct dip_err *err)
{
    struct dip_limits dl;
    struct dip_decode_opts o;

    dip_limits_default(&dl);
    dip_decode_opts_default(&o);
    o.autorotate = autorotate;
    return dip_codec_decode(buf, len, lim ? lim : &dl, &o, out, info, err);
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
