/* SPDX-License-Identifier: MIT */
/* BMP codec: round trips for every channel count, palettes of 1, 4 and 8 bits, RLE8 and RLE4,
 * bitfield masks, the OS/2 header, top-down rows, lying headers, truncation and limits. The test
 * files are built byte by byte here, and the expected pixels computed from the same inputs. */
#include <stdio.h>

#include "codec-util.h"
#include "test.h"

struct bmpspec {
    uint32_t hsize; /* 12, 40, 52, 56, 108, 124 */
    int w, h;       /* h < 0: top-down */
    int bpp;
    uint32_t comp;
    uint32_t masks[4];
    int nmasks;         /* masks written (after a 40-byte header, or inside V2+ headers) */
    const uint8_t *pal; /* B, G, R(, 0) entries */
    int npal;
    const uint8_t *px;
    size_t pxlen;
};

static void build_bmp(const struct bmpspec *s, struct bytes *b)
{
    int entry = s->hsize == 12 ? 3 : 4;
    size_t extra_masks = s->hsize == 40 ? (size_t)s->nmasks * 4 : 0;
    size_t off = 14 + s->hsize + extra_masks + (size_t)s->npal * (size_t)entry;

    b->n = 0;
    bytes_str(b, "BM");
    bytes_le32(b, (uint32_t)(off + s->pxlen));
    bytes_le32(b, 0);
    bytes_le32(b, (uint32_t)off);
    bytes_le32(b, s->hsize);
    if (s->hsize == 12) {
        bytes_le16(b, (unsigned)s->w);
        bytes_le16(b, (unsigned)s->h);
        bytes_le16(b, 1);
        bytes_le16(b, (unsigned)s->bpp);
    } else {
        size_t start = b->n - 4;
        bytes_le32(b, (uint32_t)s->w);
        bytes_le32(b, (uint32_t)s->h);
        bytes_le16(b, 1);
        bytes_le16(b, (unsigned)s->bpp);
        bytes_le32(b, s->comp);
        bytes_le32(b, (uint32_t)s->pxlen);
        bytes_le32(b, 2835);
        bytes_le32(b, 2835);
        bytes_le32(b, (uint32_t)s->npal);
        bytes_le32(b, 0);
        if (s->hsize > 40)
            for (int i = 0; i < 4 && b->n - start < s->hsize; i++)
                bytes_le32(b, i < s->nmasks ? s->masks[i] : 0);
        while (b->n - start < s->hsize)
            bytes_u8(b, 0);
        if (s->hsize == 40)
            for (int i = 0; i < s->nmasks; i++)
                bytes_le32(b, s->masks[i]);
    }
    bytes_put(b, s->pal, (size_t)s->npal * (size_t)entry);
    ASSERT_EQ_INT(b->n, off);
    bytes_put(b, s->px, s->pxlen);
}

static dip_image *decode_ok(const struct bytes *b, struct dip_image_info *info)
{
    dip_image *img = NULL;
    struct dip_err err = {0};
    int rc = decode_with(b->p, b->n, NULL, 0, &img, info, &err);

    if (rc)
        DIP_TEST_FAIL("decode failed: %s", dip_err_text(&err, rc));
    ASSERT_EQ_INT(info->format, DIP_FORMAT_BMP);
    return img;
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

TEST(bmp_roundtrip_all_channels)
{
    for (int ch = 1; ch <= 4; ch++) {
        dip_image *img = seeded_image(31, 17, ch, (uint32_t)ch), *back = NULL;
        struct dip_image_info info;
        struct dip_err err = {0};
        uint8_t *buf;
        size_t len;
        int och = ch == 2 || ch == 4 ? 4 : 3;

        encode_to(img, DIP_FORMAT_BMP, 90, 0, &buf, &len);
        ASSERT_OK(decode_with(buf, len, NULL, 0, &back, &info, &err));
        ASSERT_EQ_INT(dip_image_channels(back), och);
        ASSERT_EQ_INT(info.channels, och);
        for (int y = 0; y < 17; y++)
            for (int x = 0; x < 31; x++)
                for (int c = 0; c < och; c++) {
                    int sc = ch >= 3 ? c : (c < 3 ? 0 : 1);
                    ASSERT_EQ_INT(pixel_at(back, x, y, c), pixel_at(img, x, y, sc));
                }
        dip_image_unref(back);
        dip_image_unref(img);
        dip_free(buf);
    }
}

/* Palette images of 1, 4 and 8 bits, odd widths (row padding), both row orders. */
TEST(bmp_palette_1_4_8_bit)
{
    static const int depths[] = {1, 4, 8};
    for (size_t d = 0; d < 3; d++) {
        for (int topdown = 0; topdown <= 1; topdown++) {
            int bpp = depths[d], w = 13, h = 5, n = 1 << bpp;
            size_t stride = ((size_t)(w * bpp) + 31) / 32 * 4;
            uint8_t pal[256 * 4], idx[13 * 5], px[64 * 5];
            struct bmpspec s = {40, w, topdown ? -h : h, bpp, 0, {0}, 0, pal, n, px, stride * 5};
            struct bytes b = {0};
            struct dip_image_info info;
            dip_image *img;
            uint32_t seed = (uint32_t)(bpp * 10 + topdown);

            for (int i = 0; i < n; i++) {
                pal[4 * i] = (uint8_t)(i * 3);       /* B */
                pal[4 * i + 1] = (uint8_t)(255 - i); /* G */
                pal[4 * i + 2] = (uint8_t)(i * 7);   /* R */
                pal[4 * i + 3] = 0;
            }
            memset(px, 0, sizeof(px));
            for (int y = 0; y < h; y++) {
                /* y is the row in file order */
                for (int x = 0; x < w; x++) {
                    int v = (int)(lcg(&seed) % (unsigned)n);
                    int bit = x * bpp;
                    idx[y * w + x] = (uint8_t)v;
                    px[(size_t)y * stride + (size_t)(bit / 8)] |=
                        (uint8_t)(v << (8 - bpp - bit % 8));
                }
            }
            build_bmp(&s, &b);
            img = decode_ok(&b, &info);
            ASSERT_EQ_INT(info.bit_depth, bpp);
            ASSERT_EQ_STR(info.color, "palette");
            ASSERT_EQ_INT(dip_image_channels(img), 3);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int fy = topdown ? y : h - 1 - y, v = idx[fy * w + x];
                    ASSERT_EQ_INT(pixel_at(img, x, y, 0), pal[4 * v + 2]);
                    ASSERT_EQ_INT(pixel_at(img, x, y, 1), pal[4 * v + 1]);
                    ASSERT_EQ_INT(pixel_at(img, x, y, 2), pal[4 * v]);
                }
            dip_image_unref(img);
            free(b.p);
        }
    }
}

TEST(bmp_gray_palette_decodes_to_one_channel)
{
    uint8_t pal[4 * 4], px[4] = {0x1B, 0, 0, 0}; /* 4-bit indices 1 and 11 */
    struct bmpspec s = {40, 2, 1, 4, 0, {0}, 0, pal, 4, px, 4};
    struct bytes b = {0};
    struct dip_image_info info;
    dip_image *img;

    for (int i = 0; i < 4; i++)
        pal[4 * i] = pal[4 * i + 1] = pal[4 * i + 2] = (uint8_t)(i * 80), pal[4 * i + 3] = 0;
    build_bmp(&s, &b);
    img = decode_ok(&b, &info);
    ASSERT_EQ_INT(dip_image_channels(img), 1);
    ASSERT_EQ_INT(pixel_at(img, 0, 0, 0), 80);
    ASSERT_EQ_INT(pixel_at(img, 1, 0, 0), 0); /* index 11 is past the 4-entry palette: black */
    dip_image_unref(img);
    free(b.p);
}

/* RLE8: encoded runs, an absolute run with its pad byte, a delta, end of line, a run clipped
 * at the row end, end of bitmap. Expected indices are written out by hand. */
TEST(bmp_rle8_decode)
{
    static const uint8_t rle[] = {
        3,  1, 0, 3, 2, 3, 4, 0, 2, 5, 0, 0, /* row 0: 1 1 1 2 3 4 5 5 */
        0,  2, 2, 1,                         /* delta: x += 2, y += 1 (row 1 stays 0) */
        4,  6, 0, 0,                         /* row 2: 0 0 6 6 6 6 0 0 */
        10, 7,                               /* row 3: run of 10 clipped to 8 */
        0,  1,                               /* end of bitmap */
    };
    static const uint8_t want[4][8] = {
        {1, 1, 1, 2, 3, 4, 5, 5},
        {0, 0, 0, 0, 0, 0, 0, 0},
        {0, 0, 6, 6, 6, 6, 0, 0},
        {7, 7, 7, 7, 7, 7, 7, 7},
    };
    uint8_t pal[8 * 4];
    struct bmpspec s = {40, 8, 4, 8, 1, {0}, 0, pal, 8, rle, sizeof(rle)};
    struct bytes b = {0};
    struct dip_image_info info;
    dip_image *img;

    for (int i = 0; i < 8; i++) {
        pal[4 * i] = (uint8_t)(200 - i * 20);
        pal[4 * i + 1] = (uint8_t)(i * 30);
        pal[4 * i + 2] = (uint8_t)(i * 31 + 1);
        pal[4 * i + 3] = 0;
    }
    build_bmp(&s, &b);
    img = decode_ok(&b, &info);
    for (int fy = 0; fy < 4; fy++)
        for (int x = 0; x < 8; x++) {
            int v = want[fy][x], y = 3 - fy; /* bottom-up */
            ASSERT_EQ_INT(pixel_at(img, x, y, 0), pal[4 * v + 2]);
            ASSERT_EQ_INT(pixel_at(img, x, y, 1), pal[4 * v + 1]);
            ASSERT_EQ_INT(pixel_at(img, x, y, 2), pal[4 * v]);
        }
    dip_image_unref(img);
    /* Without its end-of-bitmap marker the stream is truncated. */
    s.pxlen = sizeof(rle) - 4;
    build_bmp(&s, &b);
    expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "truncated RLE8");
    free(b.p);
}

TEST(bmp_rle4_decode)
{
    static const uint8_t rle[] = {
        4, 0x12, 0,    3,    0x34, 0x50, 0, 0, /* row 0: 1 2 1 2, absolute 3 4 5 */
        0, 3,    0x56, 0x70,                   /* row 1: 5 6 7, then zeros */
        0, 1,
    };
    static const uint8_t want[2][7] = {{1, 2, 1, 2, 3, 4, 5}, {5, 6, 7, 0, 0, 0, 0}};
    uint8_t pal[16 * 4];
    struct bmpspec s = {40, 7, 2, 4, 2, {0}, 0, pal, 16, rle, sizeof(rle)};
    struct bytes b = {0};
    struct dip_image_info info;
    dip_image *img;

    for (int i = 0; i < 16; i++) {
        pal[4 * i] = (uint8_t)(i * 16);
        pal[4 * i + 1] = (uint8_t)(i * 5);
        pal[4 * i + 2] = (uint8_t)(250 - i * 9);
        pal[4 * i + 3] = 0;
    }
    build_bmp(&s, &b);
    img = decode_ok(&b, &info);
    for (int fy = 0; fy < 2; fy++)
        for (int x = 0; x < 7; x++) {
            int v = want[fy][x], y = 1 - fy;
            ASSERT_EQ_INT(pixel_at(img, x, y, 0), pal[4 * v + 2]);
            ASSERT_EQ_INT(pixel_at(img, x, y, 2), pal[4 * v]);
        }
    dip_image_unref(img);
    free(b.p);
}

static unsigned scale(unsigned v, int bits)
{
    unsigned max = (1u << bits) - 1;
    return (v * 255 + max / 2) / max;
}

TEST(bmp_bitfields_16_and_32_bit)
{
    struct bytes b = {0};
    struct dip_image_info info;
    dip_image *img;
    uint8_t px[64];
    uint32_t seed = 5;

    /* 16-bit 5-6-5 with masks after a 40-byte header; 3 pixels, rows padded to 8 bytes. */
    {
        uint16_t vals[3];
        struct bmpspec s = {40, 3, -1, 16, 3, {0xF800, 0x07E0, 0x001F}, 3, NULL, 0, px, 8};
        memset(px, 0, sizeof(px));
        for (int i = 0; i < 3; i++) {
            vals[i] = (uint16_t)lcg(&seed);
            px[2 * i] = (uint8_t)vals[i];
            px[2 * i + 1] = (uint8_t)(vals[i] >> 8);
        }
        build_bmp(&s, &b);
        img = decode_ok(&b, &info);
        ASSERT_EQ_INT(info.bit_depth, 6);
        for (int i = 0; i < 3; i++) {
            ASSERT_EQ_INT(pixel_at(img, i, 0, 0), scale(vals[i] >> 11, 5));
            ASSERT_EQ_INT(pixel_at(img, i, 0, 1), scale((vals[i] >> 5) & 63, 6));
            ASSERT_EQ_INT(pixel_at(img, i, 0, 2), scale(vals[i] & 31, 5));
        }
        dip_image_unref(img);
    }
    /* 16-bit BI_RGB: the default 5-5-5. */
    {
        struct bmpspec s = {40, 2, 1, 16, 0, {0}, 0, NULL, 0, px, 4};
        px[0] = 0x1F; /* blue 31 */
        px[1] = 0x00;
        px[2] = 0x00;
        px[3] = 0x7C; /* red 31 */
        build_bmp(&s, &b);
        img = decode_ok(&b, &info);
        ASSERT_EQ_INT(dip_image_channels(img), 3);
        ASSERT_EQ_INT(pixel_at(img, 0, 0, 2), 255);
        ASSERT_EQ_INT(pixel_at(img, 0, 0, 0), 0);
        ASSERT_EQ_INT(pixel_at(img, 1, 0, 0), 255);
        dip_image_unref(img);
    }
    /* 32-bit, V4 header with an alpha mask and R/B swapped against the usual order. */
    {
        struct bmpspec s = {108, 2,    1, 32, 3, {0x000000FF, 0x0000FF00, 0x00FF0000, 0xFF000000},
                            4,   NULL, 0, px, 8};
        static const uint8_t p4[8] = {10, 20, 30, 40, 50, 60, 70, 80};
        memcpy(px, p4, 8);
        build_bmp(&s, &b);
        img = decode_ok(&b, &info);
        ASSERT_EQ_INT(info.channels, 4);
        ASSERT_EQ_INT(dip_image_channels(img), 4);
        for (int i = 0; i < 8; i++)
            ASSERT_EQ_INT(pixel_at(img, i / 4, 0, i % 4), p4[i]);
        dip_image_unref(img);
    }
    /* 32-bit with 10-bit channels (V5 header). */
    {
        struct bmpspec s = {124, 1,    1, 32, 3, {0x3FF00000, 0x000FFC00, 0x000003FF, 0},
                            4,   NULL, 0, px, 4};
        uint32_t v = 1023u << 20 | 512u << 10 | 1u;
        for (int i = 0; i < 4; i++)
            px[i] = (uint8_t)(v >> (8 * i));
        build_bmp(&s, &b);
        img = decode_ok(&b, &info);
        ASSERT_EQ_INT(dip_image_channels(img), 3);
        ASSERT_EQ_INT(info.bit_depth, 10);
        ASSERT_EQ_INT(pixel_at(img, 0, 0, 0), 255);
        ASSERT_EQ_INT(pixel_at(img, 0, 0, 1), scale(512, 10));
        ASSERT_EQ_INT(pixel_at(img, 0, 0, 2), scale(1, 10));
        dip_image_unref(img);
    }
    /* 32-bit BI_RGB: the fourth byte is not alpha. */
    {
        struct bmpspec s = {40, 1, 1, 32, 0, {0}, 0, NULL, 0, px, 4};
        px[0] = 1, px[1] = 2, px[2] = 3, px[3] = 0;
        build_bmp(&s, &b);
        img = decode_ok(&b, &info);
        ASSERT_EQ_INT(dip_image_channels(img), 3);
        ASSERT_EQ_INT(pixel_at(img, 0, 0, 0), 3);
        dip_image_unref(img);
    }
    free(b.p);
}

TEST(bmp_os2_core_header)
{
    uint8_t pal[3 * 2] = {255, 0, 0, 0, 0, 255}; /* blue, red */
    uint8_t px[4] = {0x40, 0, 0, 0};             /* 1-bit: 0 1 0 */
    struct bmpspec s = {12, 3, 1, 1, 0, {0}, 0, pal, 2, px, 4};
    struct bytes b = {0};
    struct dip_image_info info;
    dip_image *img;

    build_bmp(&s, &b);
    img = decode_ok(&b, &info);
    ASSERT_EQ_INT(pixel_at(img, 0, 0, 2), 255);
    ASSERT_EQ_INT(pixel_at(img, 1, 0, 0), 255);
    ASSERT_EQ_INT(pixel_at(img, 1, 0, 2), 0);
    dip_image_unref(img);
    free(b.p);
}

TEST(bmp_lying_headers_refused)
{
    uint8_t px[64] = {0};
    struct bmpspec s = {40, 4, 4, 24, 0, {0}, 0, NULL, 0, px, 48};
    struct bytes b = {0};

    build_bmp(&s, &b);
    /* Pixel offset past the end. */
    bytes_set_le32(&b, 10, 1000);
    expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "bfOffBits=1000");
    /* Pixel offset inside the header. */
    bytes_set_le32(&b, 10, 20);
    expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "inside");
    /* Too little pixel data for the rows the header promises. */
    build_bmp(&s, &b);
    b.n -= 1;
    expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "bmp: truncated pixel data: need 48 bytes");
    /* Zero height, an unknown header size, a bad bit count, RLE8 with 24 bits, a mask with a
     * hole, and a palette image whose palette is missing. */
    build_bmp(&s, &b);
    bytes_set_le32(&b, 22, 0);
    expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "size");
    build_bmp(&s, &b);
    bytes_set_le32(&b, 14, 41);
    expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "DIB header size 41");
    build_bmp(&s, &b);
    b.p[28] = 7;
    expect_decode_fail(b.p, b.n, NULL, DIP_EFORMAT, "biBitCount 7");
    build_bmp(&s, &b);
    b.p[30] = 1;
    expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "RLE8");
    {
        struct bmpspec m = {40, 2, 2, 16, 3, {0xF0F0, 0x0F00, 0x000F}, 3, NULL, 0, px, 8};
        build_bmp(&m, &b);
        expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "red mask");
    }
    {
        struct bmpspec p = {40, 2, 2, 8, 0, {0}, 0, NULL, 0, px, 8};
        build_bmp(&p, &b);
        expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "palette");
    }
    free(b.p);
}

TEST(bmp_limits_named)
{
    uint8_t px[16] = {0};
    struct bmpspec s = {40, 4, 70000, 24, 0, {0}, 0, NULL, 0, px, 16};
    struct bytes b = {0};
    struct dip_limits lim;

    build_bmp(&s, &b);
    expect_decode_fail(b.p, b.n, NULL, DIP_ELIMIT,
                       "bmp: biHeight 70000 exceeds the limit max_height=65535");
    s.h = -70000; /* top-down: the same limit */
    build_bmp(&s, &b);
    expect_decode_fail(b.p, b.n, NULL, DIP_ELIMIT, "max_height=65535");
    s.w = 100000;
    s.h = 1;
    build_bmp(&s, &b);
    expect_decode_fail(b.p, b.n, NULL, DIP_ELIMIT, "biWidth 100000 exceeds the limit max_width");
    dip_limits_default(&lim);
    lim.max_pixels = 100;
    s.w = 20;
    s.h = 20;
    build_bmp(&s, &b);
    expect_decode_fail(b.p, b.n, &lim, DIP_ELIMIT, "max_pixels=100");
    free(b.p);
}

TEST(bmp_huge_header_tiny_file_allocates_nothing)
{
    uint8_t px[100] = {0};
    struct bmpspec s = {40, 9000, 9000, 24, 0, {0}, 0, NULL, 0, px, sizeof(px)};
    struct bytes b = {0};
    long before;

    build_bmp(&s, &b);
    before = dip__alloc_count();
    expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "truncated pixel data");
    ASSERT_LE_INT(dip__alloc_count() - before, 0);
    free(b.p);
}

TEST(bmp_probe)
{
    uint8_t pal[16 * 4] = {0}, px[4 * 3] = {0};
    struct bmpspec s = {40, 5, -3, 4, 0, {0}, 0, pal, 16, px, sizeof(px)};
    struct bytes b = {0};
    struct dip_limits lim;
    struct dip_image_info info;
    struct dip_err err = {0};

    pal[6] = 1; /* one colour entry */
    build_bmp(&s, &b);
    dip_limits_default(&lim);
    ASSERT_OK(dip_codec_probe(b.p, b.n, &lim, &info, &err));
    ASSERT_EQ_INT(info.format, DIP_FORMAT_BMP);
    ASSERT_EQ_INT(info.width, 5);
    ASSERT_EQ_INT(info.height, 3);
    ASSERT_EQ_INT(info.channels, 3);
    ASSERT_EQ_INT(info.bit_depth, 4);
    ASSERT_EQ_INT(info.frames, 1);
    ASSERT_EQ_INT(info.orientation, 1);
    ASSERT_EQ_STR(info.color, "palette");
    free(b.p);
}

/* An RLE8 file, which dip does not write (test-sweep/bmp sweeps dip's own files). */
TEST(bmp_rle_truncation_sweep)
{
    size_t tried = 0;

    {
        static const uint8_t rle[] = {3, 1, 0, 3, 2, 3, 4, 0, 2,  5, 0, 0,
                                      0, 2, 2, 1, 4, 6, 0, 0, 10, 7, 0, 1};
        uint8_t pal[8 * 4] = {0};
        struct bmpspec s = {40, 8, 4, 8, 1, {0}, 0, pal, 8, rle, sizeof(rle)};
        struct bytes b = {0};
        build_bmp(&s, &b);
        tried += sweep_truncations(b.p, b.n, 1, 0);
        free(b.p);
    }
    ASSERT(tried > 100);
}

TEST(bmp_rle_bomb_refused_real_rle_accepted)
{
    /* An end-of-bitmap right away on a 9000x9000 canvas: 2 bytes cannot describe 81 megapixels,
     * refused before the image is allocated. */
    static const uint8_t eob[] = {0, 1};
    uint8_t pal[4 * 2] = {0, 0, 0, 0, 255, 255, 255, 0};
    struct bmpspec s = {40, 9000, 9000, 8, 1, {0}, 0, pal, 2, eob, sizeof(eob)};
    struct bytes b = {0}, rle = {0};
    struct dip_image_info info;
    dip_image *img;
    long before;

    build_bmp(&s, &b);
    before = dip__alloc_count();
    expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "cannot describe 9000x9000 pixels");
    ASSERT_LE_INT(dip__alloc_count() - before, 0);
    /* A 1000x1000 image coded the way encoders do it (runs, an end of line per row) is fine. */
    for (int y = 0; y < 1000; y++) {
        for (int x = 0; x < 1000; x += 250) {
            bytes_u8(&rle, 250);
            bytes_u8(&rle, (unsigned)((x / 250 + y) & 1));
        }
        bytes_u8(&rle, 0);
        bytes_u8(&rle, y == 999 ? 1 : 0);
    }
    s.w = s.h = 1000;
    s.px = rle.p;
    s.pxlen = rle.n;
    build_bmp(&s, &b);
    img = decode_ok(&b, &info);
    ASSERT_EQ_INT(dip_image_channels(img), 1);  /* black and white palette: gray */
    ASSERT_EQ_INT(pixel_at(img, 0, 999, 0), 0); /* file row 0 is the bottom row */
    ASSERT_EQ_INT(pixel_at(img, 250, 999, 0), 255);
    ASSERT_EQ_INT(pixel_at(img, 0, 998, 0), 255);
    dip_image_unref(img);
    free(rle.p);
    free(b.p);
}

TEST(bmp_v5_profile_size_limit)
{
    uint8_t px[4] = {1, 2, 3, 0};
    struct bmpspec s = {124, 1, 1, 24, 0, {0}, 0, NULL, 0, px, 4};
    struct bytes b = {0};
    struct dip_limits lim;
    struct dip_image_info info;
    dip_image *img;

    build_bmp(&s, &b);
    bytes_set_le32(&b, 14 + 116, 5000); /* bV5ProfileSize */
    img = decode_ok(&b, &info);
    dip_image_unref(img);
    dip_limits_default(&lim);
    lim.max_metadata_bytes = 1000;
    expect_decode_fail(b.p, b.n, &lim, DIP_ELIMIT, "max_metadata_bytes=1000");
    free(b.p);
}
