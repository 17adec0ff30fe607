/* SPDX-License-Identifier: MIT */
/* PNG decoding without libpng (8-bit, not interlaced, no tRNS): hand-made files with each filter
 * type on every row position, the data split over several IDAT chunks, and the ways IDAT data can
 * be wrong (too short, too long, trailing bytes, a bad filter byte, IDAT chunks apart, a bad CRC):
 * each decodes to the pixels filtered, or is refused with DIP_ECORRUPT and a message. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dip/codec.h"
#include "test.h"

struct buf {
    uint8_t *p;
    size_t n;
};

static void put(struct buf *b, const void *p, size_t n)
{
    b->p = realloc(b->p, b->n + n + 1);
    ASSERT(b->p != NULL);
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void put32(struct buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, x, 4);
}

static void chunk(struct buf *b, const char *type, const uint8_t *data, size_t n)
{
    uLong crc = crc32(0, (const Bytef *)type, 4);

    put32(b, (uint32_t)n);
    put(b, type, 4);
    if (n)
        put(b, data, n);
    if (n)
        crc = crc32(crc, data, (uInt)n);
    put32(b, (uint32_t)crc);
}

static int pae(int a, int b, int c)
{
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Filters img (w x h x ch) with filter (y + k) % 5 on row y, the textbook way. */
static uint8_t *filter_all(const uint8_t *img, int w, int h, int ch, int k, size_t *len)
{
    size_t rb = (size_t)w * (size_t)ch;
    uint8_t *f = malloc((rb + 1) * (size_t)h);

    for (int y = 0; y < h; y++) {
        const uint8_t *cur = img + (size_t)y * rb, *prev = y ? cur - rb : NULL;
        uint8_t *o = f + (size_t)y * (rb + 1);
        int ft = (y + k) % 5;
        o[0] = (uint8_t)ft;
        for (size_t i = 0; i < rb; i++) {
            int a = i >= (size_t)ch ? cur[i - (size_t)ch] : 0, b = prev ? prev[i] : 0;
            int c = prev && i >= (size_t)ch ? prev[i - (size_t)ch] : 0;
            int pred = ft == 0   ? 0
                       : ft == 1 ? a
                       : ft == 2 ? b
                       : ft == 3 ? (a + b) / 2
                                 : pae(a, b, c);
            o[1 + i] = (uint8_t)(cur[i] - pred);
        }
    }
    *len = (rb + 1) * (size_t)h;
    return f;
}

/* A PNG of the zlib data z split into `parts` IDAT chunks (a tEXt chunk between the first two
 * when `apart`). */
static struct buf make_png(int w, int h, int ch, const uint8_t *z, size_t zn, int parts, int apart)
{
    static const uint8_t ctype[5] = {0, 0, 4, 2, 6};
    struct buf b = {0};
    uint8_t ihdr[13] = {0};

    put(&b, "\x89PNG\r\n\x1a\n", 8);
    ihdr[0] = (uint8_t)(w >> 24), ihdr[1] = (uint8_t)(w >> 16), ihdr[2] = (uint8_t)(w >> 8);
    ihdr[3] = (uint8_t)w;
    ihdr[4] = (uint8_t)(h >> 24), ihdr[5] = (uint8_t)(h >> 16), ihdr[6] = (uint8_t)(h >> 8);
    ihdr[7] = (uint8_t)h;
    ihdr[8] = 8;
    ihdr[9] = ctype[ch];
    chunk(&b, "IHDR", ihdr, 13);
    for (int i = 0; i < parts; i++) {
        size_t a = zn * (size_t)i / (size_t)parts, e = zn * (size_t)(i + 1) / (size_t)parts;
        chunk(&b, "IDAT", z + a, e - a);
        if (apart && i == 0)
            chunk(&b, "tEXt", (const uint8_t *)"k\0v", 3);
    }
    chunk(&b, "IEND", NULL, 0);
    return b;
}

static uint8_t *zlib_of(const uint8_t *f, size_t n, size_t *zn)
{
    uLongf cap = compressBound((uLong)n) + 16;
    uint8_t *z = malloc(cap);
    ASSERT_EQ_INT(compress2(z, &cap, f, (uLong)n, 6), Z_OK);
    *zn = cap;
    return z;
}

static uint8_t *test_image(int w, int h, int ch)
{
    uint8_t *img = malloc((size_t)w * (size_t)h * (size_t)ch);
    uint32_t s = 5;
    for (size_t i = 0; i < (size_t)w * (size_t)h * (size_t)ch; i++) {
        s = s * 1664525u + 1013904223u;
        img[i] = (uint8_t)((i % 251) + (s >> 28));
    }
    return img;
}

/* The decoded view holds the packed w x h x ch image `img`, row by row. */
static void assert_rows(const struct dip_view *v, const uint8_t *img, int w, int h, int ch)
{
    for (int y = 0; y < h; y++)
        ASSERT(memcmp(v->data + (size_t)y * v->stride, img + (size_t)y * (size_t)w * (size_t)ch,
                      (size_t)w * (size_t)ch) == 0);
}

static int decode(const struct buf *b, dip_image **img, struct dip_err *err)
{
    struct dip_limits lim;
    dip_limits_default(&lim);
    return dip_codec_decode(b->p, b->n, &lim, NULL, img, NULL, err);
}

TEST(png_fast_decode_every_filter_channel_count_and_idat_split)
{
    for (int ch = 1; ch <= 4; ch++)
        for (int k = 0; k < 5; k++) {
            int w = 37 + ch, h = 23;
            uint8_t *img = test_image(w, h, ch), *f, *z;
            size_t fn, zn;
            struct buf b;
            dip_image *out = NULL;
            struct dip_err err = {0};
            struct dip_view v;

            f = filter_all(img, w, h, ch, k, &fn);
            z = zlib_of(f, fn, &zn);
            b = make_png(w, h, ch, z, zn, 1 + k, 0);
            if (decode(&b, &out, &err) != 0)
                fprintf(stderr, "ch %d k %d: %s\n", ch, k, err.msg);
            ASSERT(out != NULL);
            v = dip_image_view(out);
            ASSERT_EQ_INT(v.channels, ch);
            assert_rows(&v, img, w, h, ch);
            dip_image_unref(out);
            free(b.p);
            free(z);
            free(f);
            free(img);
        }
}

/* Each defect must give DIP_ECORRUPT, no image, and a message naming it. */
static void refused(const struct buf *b, const char *what)
{
    dip_image *out = NULL;
    struct dip_err err = {0};

    ASSERT_EQ_INT(decode(b, &out, &err), DIP_ECORRUPT);
    ASSERT(out == NULL);
    ASSERT_CONTAINS(err.msg, what);
}

TEST(png_fast_decode_refuses_bad_idat_data)
{
    int w = 40, h = 30, ch = 3;
    uint8_t *img = test_image(w, h, ch), *f, *z, *z2;
    size_t fn, zn, zn2;
    struct buf b;

    f = filter_all(img, w, h, ch, 0, &fn);
    /* One row short. */
    z = zlib_of(f, fn - (size_t)w * 3 - 1, &zn);
    b = make_png(w, h, ch, z, zn, 2, 0);
    refused(&b, "not enough image data");
    free(b.p);
    free(z);
    /* One byte too many. */
    {
        uint8_t *g = malloc(fn + 1);
        memcpy(g, f, fn);
        g[fn] = 0;
        z = zlib_of(g, fn + 1, &zn);
        b = make_png(w, h, ch, z, zn, 1, 0);
        refused(&b, "too much image data");
        free(b.p);
        free(z);
        free(g);
    }
    /* Bytes after the end of the zlib stream. */
    z = zlib_of(f, fn, &zn);
    z2 = malloc(zn + 3);
    memcpy(z2, z, zn);
    memcpy(z2 + zn, "abc", 3);
    zn2 = zn + 3;
    b = make_png(w, h, ch, z2, zn2, 1, 0);
    refused(&b, "after the compressed data");
    free(b.p);
    free(z2);
    /* A truncated stream (complete chunks). */
    b = make_png(w, h, ch, z, zn - 9, 1, 0);
    refused(&b, "IDAT");
    free(b.p);
    /* A wrong Adler-32. */
    z[zn - 1] ^= 1;
    b = make_png(w, h, ch, z, zn, 1, 0);
    refused(&b, "IDAT");
    free(b.p);
    z[zn - 1] ^= 1;
    /* IDAT chunks with another chunk between them. */
    b = make_png(w, h, ch, z, zn, 2, 1);
    refused(&b, "not consecutive");
    free(b.p);
    /* A bad CRC on the second IDAT. */
    b = make_png(w, h, ch, z, zn, 3, 0);
    {
        size_t pos = 33;
        int seen = 0;
        while (pos + 12 <= b.n) {
            uint32_t n = (uint32_t)b.p[pos] << 24 | (uint32_t)b.p[pos + 1] << 16 |
                         (uint32_t)b.p[pos + 2] << 8 | b.p[pos + 3];
            if (memcmp(b.p + pos + 4, "IDAT", 4) == 0 && ++seen == 2) {
                b.p[pos + 8 + n] ^= 0x40;
                break;
            }
            pos += 12 + n;
        }
    }
    refused(&b, "CRC");
    free(b.p);
    free(z);
    /* Filter type 5 on row 7. */
    f[7 * ((size_t)w * 3 + 1)] = 5;
    z = zlib_of(f, fn, &zn);
    b = make_png(w, h, ch, z, zn, 1, 0);
    refused(&b, "filter");
    free(b.p);
    free(z);
    free(f);
    free(img);
}

/* Sub, Average and Paeth of 3- and 4-byte pixels run on SSE2 lanes (the scalar loops for 1 and
 * 2): pixels drawn from a few extreme and neighbouring values make Paeth's three distances tie
 * in every way and the sums wrap, and odd widths end rows on a 3-byte pixel. Each filter on
 * every row position must decode to the pixels, as the textbook filter_all wrote them. */
TEST(png_fast_decode_filters_on_ties_and_extremes)
{
    static const uint8_t vals[8] = {0, 1, 2, 127, 128, 129, 254, 255};

    for (int ch = 1; ch <= 4; ch++)
        for (int k = 0; k < 5; k++)
            for (int w = 1; w <= 67; w += 33) {
                int h = 40;
                size_t n = (size_t)w * (size_t)h * (size_t)ch, fn, zn;
                uint8_t *img = malloc(n), *f, *z;
                uint32_t s = (uint32_t)(ch * 131 + k * 7 + w);
                struct buf b;
                dip_image *out = NULL;
                struct dip_err err = {0};
                struct dip_view v;

                for (size_t i = 0; i < n; i++) {
                    s = s * 1664525u + 1013904223u;
                    img[i] = vals[s >> 29];
                }
                f = filter_all(img, w, h, ch, k, &fn);
                z = zlib_of(f, fn, &zn);
                b = make_png(w, h, ch, z, zn, 1, 0);
                if (decode(&b, &out, &err) != 0)
                    fprintf(stderr, "ch %d k %d w %d: %s\n", ch, k, w, err.msg);
                ASSERT(out != NULL);
                v = dip_image_view(out);
                assert_rows(&v, img, w, h, ch);
                dip_image_unref(out);
                free(b.p);
                free(z);
                free(f);
                free(img);
            }
}
