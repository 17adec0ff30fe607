/* SPDX-License-Identifier: MIT */
/* TIFF codec: round trips through dip's encoder for every channel count; files written here with
 * libtiff for what the encoder does not produce (16/4/2/1-bit, palette, MINISWHITE, CMYK, alpha,
 * tiles, separate planes, LZW/PackBits/JPEG, several pages, Orientation, BigTIFF); and files
 * built byte by byte for the hostile cases (thousands of tags, lying strip sizes, IFD loops,
 * unsorted tags that make libtiff warn). Expected pixels are computed here from the samples. */
#include <pthread.h>
#include <stdio.h>
#include <tiffio.h>

#include "codec-util.h"
#include "test.h"

/* ---- Writing test files with libtiff ---- */

struct tspec {
    int w, h, spp, bps;
    int photometric, comp, planar;
    int tw, th;           /* tiled when tw > 0 */
    int rps;              /* rows per strip, 0 = libtiff's default */
    int extra;            /* 0 none, EXTRASAMPLE_ASSOCALPHA or EXTRASAMPLE_UNASSALPHA */
    int orientation;      /* 0 = not written */
    const uint16_t *cmap; /* 3 * 2^bps entries for palettes */
    int jpeg_quality;
};

/* Extra fields for the next files written, set before their pixels (NULL: none). */
static void (*extra_setup)(TIFF *t);

typedef unsigned (*sample_fn)(int x, int y, int s, const void *ctx);

static void put_sample(uint8_t *row, int i, int bps, unsigned v)
{
    if (bps == 8) {
        row[i] = (uint8_t)v;
    } else if (bps == 16) {
        uint16_t u = (uint16_t)v;
        memcpy(row + 2 * i, &u, 2);
    } else {
        int bit = i * bps;
        row[bit / 8] |= (uint8_t)(v << (8 - bps - bit % 8));
    }
}

static void write_page(TIFF *t, const struct tspec *s, sample_fn f, const void *ctx)
{
    int sep = s->planar == PLANARCONFIG_SEPARATE, nplanes = sep ? s->spp : 1;
    int per = sep ? 1 : s->spp;

    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)s->w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)s->h);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)s->spp);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, (uint16_t)s->bps);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, (uint16_t)s->photometric);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, (uint16_t)(s->planar ? s->planar : PLANARCONFIG_CONTIG));
    TIFFSetField(t, TIFFTAG_COMPRESSION, (uint16_t)(s->comp ? s->comp : COMPRESSION_NONE));
    if (s->extra) {
        uint16_t e = (uint16_t)s->extra;
        TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 1, &e);
    }
    if (s->orientation)
        TIFFSetField(t, TIFFTAG_ORIENTATION, (uint16_t)s->orientation);
    if (s->cmap) {
        size_t n = (size_t)1 << s->bps;
        TIFFSetField(t, TIFFTAG_COLORMAP, s->cmap, s->cmap + n, s->cmap + 2 * n);
    }
    if (s->comp == COMPRESSION_JPEG) {
        TIFFSetField(t, TIFFTAG_JPEGQUALITY, s->jpeg_quality ? s->jpeg_quality : 90);
        if (s->photometric == PHOTOMETRIC_YCBCR)
            TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    }
    if (extra_setup)
        extra_setup(t);
    if (s->tw) {
        TIFFSetField(t, TIFFTAG_TILEWIDTH, (uint32_t)s->tw);
        TIFFSetField(t, TIFFTAG_TILELENGTH, (uint32_t)s->th);
        tmsize_t tsz = TIFFTileSize(t), trow = TIFFTileRowSize(t);
        uint8_t *tile = malloc((size_t)tsz);
        ASSERT(tile != NULL);
        for (int p = 0; p < nplanes; p++)
            for (int y0 = 0; y0 < s->h; y0 += s->th)
                for (int x0 = 0; x0 < s->w; x0 += s->tw) {
                    memset(tile, 0, (size_t)tsz);
                    for (int r = 0; r < s->th && y0 + r < s->h; r++)
                        for (int x = 0; x < s->tw && x0 + x < s->w; x++)
                            for (int k = 0; k < per; k++)
                                put_sample(tile + r * trow, x * per + k, s->bps,
                                           f(x0 + x, y0 + r, sep ? p : k, ctx));
                    ASSERT(TIFFWriteTile(t, tile, (uint32_t)x0, (uint32_t)y0, 0, (uint16_t)p) >= 0);
                }
        free(tile);
    } else {
        tmsize_t rowsz;
        uint8_t *row;
        TIFFSetField(t, TIFFTAG_ROWSPERSTRIP,
                     s->rps ? (uint32_t)s->rps : TIFFDefaultStripSize(t, 0));
        rowsz = TIFFScanlineSize(t);
        row = malloc((size_t)rowsz);
        ASSERT(row != NULL);
        for (int p = 0; p < nplanes; p++)
            for (int y = 0; y < s->h; y++) {
                memset(row, 0, (size_t)rowsz);
                for (int x = 0; x < s->w; x++)
                    for (int k = 0; k < per; k++)
                        put_sample(row, x * per + k, s->bps, f(x, y, sep ? p : k, ctx));
                ASSERT(TIFFWriteScanline(t, row, (uint32_t)y, (uint16_t)p) >= 0);
            }
        free(row);
    }
    ASSERT(TIFFWriteDirectory(t));
}

/* Writes `n` pages and returns the file's bytes (caller frees with dip_free). */
static uint8_t *write_tiff(const struct tspec *pages, int n, sample_fn f, const void *ctx,
                           const char *mode, size_t *len)
{
    char path[512];
    uint8_t *buf = NULL;
    struct dip_err err = {0};
    TIFF *t;

    snprintf(path, sizeof(path), "%s/t.tif", dip_test_tmpdir());
    t = TIFFOpen(path, mode ? mode : "w");
    ASSERT(t != NULL);
    for (int i = 0; i < n; i++)
        write_page(t, &pages[i], f, ctx);
    TIFFClose(t);
    ASSERT_OK(dip_file_read(path, 1u << 30, &buf, len, &err));
    remove(path);
    return buf;
}

static unsigned pattern(int x, int y, int s, const void *ctx)
{
    unsigned maxv = *(const unsigned *)ctx;
    uint32_t h = (uint32_t)x * 73856093u ^ (uint32_t)y * 19349663u ^ (uint32_t)s * 83492791u;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    return h % (maxv + 1);
}

static uint8_t to8(unsigned v, int bps)
{
    unsigned maxv = (1u << bps) - 1;
    return (uint8_t)((v * 255u + maxv / 2) / maxv);
}

static dip_image *decode_ok(const uint8_t *buf, size_t len, struct dip_image_info *info)
{
    dip_image *img = NULL;
    struct dip_err err = {0};
    int rc = decode_with(buf, len, NULL, 0, &img, info, &err);

    if (rc)
        DIP_TEST_FAIL("decode failed: %s", dip_err_text(&err, rc));
    ASSERT_EQ_INT(info->format, DIP_FORMAT_TIFF);
    return img;
}

/* Decodes and checks every pixel against the pattern mapped by `expect`. */
typedef void (*expect_fn)(const struct tspec *s, int x, int y, const void *ctx, uint8_t *px);

static void check_file(const struct tspec *s, const uint8_t *buf, size_t len, int och,
                       expect_fn expect, const void *ctx)
{
    struct dip_image_info info;
    dip_image *img = decode_ok(buf, len, &info);

    ASSERT_EQ_INT(dip_image_width(img), s->w);
    ASSERT_EQ_INT(dip_image_height(img), s->h);
    ASSERT_EQ_INT(dip_image_channels(img), och);
    ASSERT_EQ_INT(info.channels, och);
    ASSERT_EQ_INT(info.bit_depth, s->bps);
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++) {
            uint8_t want[4];
            expect(s, x, y, ctx, want);
            for (int c = 0; c < och; c++)
                if (pixel_at(img, x, y, c) != want[c])
                    DIP_TEST_FAIL("pixel (%d,%d) channel %d: got %d, want %d", x, y, c,
                                  pixel_at(img, x, y, c), want[c]);
        }
    dip_image_unref(img);
}

/* Direct samples scaled to 8 bits (gray, gray+alpha, RGB, RGBA with unassociated alpha). */
static void expect_scaled(const struct tspec *s, int x, int y, const void *ctx, uint8_t *px)
{
    for (int c = 0; c < s->spp; c++)
        px[c] = to8(pattern(x, y, c, ctx), s->bps);
}

/* ---- Round trips through dip's encoder ---- */

TEST(tiff_roundtrip_all_channels)
{
    for (int ch = 1; ch <= 4; ch++) {
        dip_image *img = seeded_image(53, 29, ch, (uint32_t)ch), *back;
        struct dip_image_info info;
        uint8_t *buf;
        size_t len;

        encode_to(img, DIP_FORMAT_TIFF, 90, 0, &buf, &len);
        back = decode_ok(buf, len, &info);
        assert_same_pixels(img, back);
        ASSERT_EQ_INT(info.bit_depth, 8);
        ASSERT_EQ_INT(info.frames, 1);
        ASSERT_EQ_STR(info.color, ch >= 3 ? "rgb" : "gray");
        dip_image_unref(back);
        dip_image_unref(img);
        dip_free(buf);
    }
}

TEST(tiff_encoder_output_is_compressed)
{
    /* A flat image must shrink far below its raw size with deflate. */
    dip_image *img = NULL;
    uint8_t *buf;
    size_t len;

    ASSERT_OK(dip_image_new(256, 256, 3, &img));
    memset(dip_image_view(img).data, 77, 256 * 256 * 3);
    encode_to(img, DIP_FORMAT_TIFF, 90, 0, &buf, &len);
    ASSERT_LE_INT(len, 256 * 256 * 3 / 20);
    dip_image_unref(img);
    dip_free(buf);
}

/* ---- Bit depths and rounding ---- */

static unsigned every16(int x, int y, int s, const void *ctx)
{
    (void)ctx;
    return (unsigned)(y * 256 + x + s * 12345) & 0xFFFF;
}

TEST(tiff_16bit_rounding)
{
    /* All 65536 gray values, then RGB: v8 = (v16 * 255 + 32767) / 65535. */
    struct tspec s = {256, 256, 1,    16, PHOTOMETRIC_MINISBLACK, COMPRESSION_NONE, 0, 0, 0, 0,
                      0,   0,   NULL, 0};
    size_t len;
    uint8_t *buf = write_tiff(&s, 1, every16, NULL, NULL, &len);
    struct dip_image_info info;
    dip_image *img = decode_ok(buf, len, &info);

    ASSERT_EQ_INT(info.bit_depth, 16);
    for (int y = 0; y < 256; y++)
        for (int x = 0; x < 256; x++) {
            unsigned v = (unsigned)(y * 256 + x);
            ASSERT_EQ_INT(pixel_at(img, x, y, 0), (v * 255 + 32767) / 65535);
        }
    ASSERT_EQ_INT(pixel_at(img, 128, 0, 0), 0); /* 128 rounds down */
    ASSERT_EQ_INT(pixel_at(img, 129, 0, 0), 1); /* 129 rounds up */
    dip_image_unref(img);
    dip_free(buf);

    s.spp = 3;
    s.photometric = PHOTOMETRIC_RGB;
    s.comp = COMPRESSION_ADOBE_DEFLATE;
    buf = write_tiff(&s, 1, every16, NULL, NULL, &len);
    img = decode_ok(buf, len, &info);
    for (int y = 0; y < 256; y += 3)
        for (int x = 0; x < 256; x++)
            for (int c = 0; c < 3; c++)
                ASSERT_EQ_INT(pixel_at(img, x, y, c),
                              (every16(x, y, c, NULL) * 255 + 32767) / 65535);
    dip_image_unref(img);
    dip_free(buf);
}

static void expect_miniswhite(const struct tspec *s, int x, int y, const void *ctx, uint8_t *px)
{
    px[0] = (uint8_t)(255 - to8(pattern(x, y, 0, ctx), s->bps));
}

TEST(tiff_low_bit_depths_and_miniswhite)
{
    static const int depths[] = {1, 2, 4, 8};
    for (size_t i = 0; i < 4; i++) {
        unsigned maxv = (1u << depths[i]) - 1;
        struct tspec s = {
            37, 11, 1,    depths[i], PHOTOMETRIC_MINISBLACK, COMPRESSION_LZW, 0, 0, 0, 4,
            0,  0,  NULL, 0};
        size_t len;
        uint8_t *buf = write_tiff(&s, 1, pattern, &maxv, NULL, &len);
        check_file(&s, buf, len, 1, expect_scaled, &maxv);
        dip_free(buf);
        s.photometric = PHOTOMETRIC_MINISWHITE;
        buf = write_tiff(&s, 1, pattern, &maxv, NULL, &len);
        check_file(&s, buf, len, 1, expect_miniswhite, &maxv);
        dip_free(buf);
    }
}

/* ---- Palettes, alpha, CMYK ---- */

static uint16_t cmap[3 * 256];

static void expect_palette(const struct tspec *s, int x, int y, const void *ctx, uint8_t *px)
{
    unsigned i = pattern(x, y, 0, ctx), n = 1u << s->bps;
    for (int c = 0; c < 3; c++)
        px[c] = (uint8_t)((cmap[c * n + i] * 255u + 32767) / 65535);
}

TEST(tiff_palette_color_and_gray)
{
    unsigned maxv = 255;
    struct tspec s = {40, 20, 1,    8, PHOTOMETRIC_PALETTE, COMPRESSION_PACKBITS, 0, 0, 0, 0,
                      0,  0,  cmap, 0};
    size_t len;
    uint8_t *buf;
    struct dip_image_info info;
    dip_image *img;

    for (int i = 0; i < 256; i++) {
        cmap[i] = (uint16_t)(i * 257);
        cmap[256 + i] = (uint16_t)(65535 - i * 200);
        cmap[512 + i] = (uint16_t)(i * 101 + 7);
    }
    buf = write_tiff(&s, 1, pattern, &maxv, NULL, &len);
    check_file(&s, buf, len, 3, expect_palette, &maxv);
    dip_free(buf);

    /* A 4-bit palette whose three curves are equal decodes to one gray channel. */
    maxv = 15;
    s.bps = 4;
    for (int i = 0; i < 16; i++)
        cmap[i] = cmap[16 + i] = cmap[32 + i] = (uint16_t)(i * 4369);
    buf = write_tiff(&s, 1, pattern, &maxv, NULL, &len);
    img = decode_ok(buf, len, &info);
    ASSERT_EQ_INT(dip_image_channels(img), 1);
    ASSERT_EQ_STR(info.color, "palette");
    for (int y = 0; y < 20; y++)
        for (int x = 0; x < 40; x++)
            ASSERT_EQ_INT(pixel_at(img, x, y, 0), pattern(x, y, 0, &maxv) * 17);
    dip_image_unref(img);
    dip_free(buf);
}

static void expect_premul(const struct tspec *s, int x, int y, const void *ctx, uint8_t *px)
{
    unsigned a = pattern(x, y, 3, ctx);
    (void)s;
    px[3] = (uint8_t)a;
    for (int c = 0; c < 3; c++) {
        /* Stored colour is premultiplied, so c <= a; dip divides alpha back out. */
        unsigned stored = a ? pattern(x, y, c, ctx) % (a + 1) : 0;
        unsigned v = a ? (stored * 255 + a / 2) / a : 0;
        px[c] = (uint8_t)(v > 255 ? 255 : v);
    }
}

static unsigned premul_pattern(int x, int y, int s, const void *ctx)
{
    unsigned a = pattern(x, y, 3, ctx);
    return s == 3 ? a : a ? pattern(x, y, s, ctx) % (a + 1) : 0;
}

TEST(tiff_alpha_unassociated_and_associated)
{
    unsigned maxv = 255, maxv16 = 65535;
    struct tspec s = {33,   17, 4, 8, PHOTOMETRIC_RGB,        COMPRESSION_ADOBE_DEFLATE,
                      0,    0,  0, 0, EXTRASAMPLE_UNASSALPHA, 0,
                      NULL, 0};
    size_t len;
    uint8_t *buf = write_tiff(&s, 1, pattern, &maxv, NULL, &len);

    check_file(&s, buf, len, 4, expect_scaled, &maxv);
    dip_free(buf);
    /* Gray + alpha at 16 bits. */
    s.spp = 2;
    s.bps = 16;
    s.photometric = PHOTOMETRIC_MINISBLACK;
    buf = write_tiff(&s, 1, pattern, &maxv16, NULL, &len);
    check_file(&s, buf, len, 2, expect_scaled, &maxv16);
    dip_free(buf);
    /* Associated (premultiplied) alpha is un-premultiplied. */
    s.spp = 4;
    s.bps = 8;
    s.photometric = PHOTOMETRIC_RGB;
    s.extra = EXTRASAMPLE_ASSOCALPHA;
    buf = write_tiff(&s, 1, premul_pattern, &maxv, NULL, &len);
    check_file(&s, buf, len, 4, expect_premul, &maxv);
    dip_free(buf);
}

static void expect_cmyk(const struct tspec *s, int x, int y, const void *ctx, uint8_t *px)
{
    unsigned k = 255 - to8(pattern(x, y, 3, ctx), s->bps);
    for (int c = 0; c < 3; c++)
        px[c] = (uint8_t)(((255 - to8(pattern(x, y, c, ctx), s->bps)) * k + 127) / 255);
}

TEST(tiff_cmyk_to_rgb)
{
    unsigned maxv = 255, maxv16 = 65535;
    struct tspec s = {21, 13, 4,    8, PHOTOMETRIC_SEPARATED, COMPRESSION_LZW, 0, 0, 0, 0,
                      0,  0,  NULL, 0};
    size_t len;
    uint8_t *buf = write_tiff(&s, 1, pattern, &maxv, NULL, &len);
    struct dip_image_info info;
    dip_image *img = decode_ok(buf, len, &info);

    ASSERT_EQ_STR(info.color, "cmyk");
    dip_image_unref(img);
    check_file(&s, buf, len, 3, expect_cmyk, &maxv);
    dip_free(buf);
    s.bps = 16;
    buf = write_tiff(&s, 1, pattern, &maxv16, NULL, &len);
    check_file(&s, buf, len, 3, expect_cmyk, &maxv16);
    dip_free(buf);
}

/* ---- Layouts and compressions ---- */

TEST(tiff_tiled_lzw_and_separate_planes)
{
    unsigned maxv = 255, maxv16 = 65535;
    /* 100x70 in 32x48 tiles: partial tiles on the right and bottom edges. */
    struct tspec s = {100, 70, 3, 8, PHOTOMETRIC_RGB, COMPRESSION_LZW, 0, 32, 48, 0, 0, 0, NULL, 0};
    size_t len;
    uint8_t *buf = write_tiff(&s, 1, pattern, &maxv, NULL, &len);

    check_file(&s, buf, len, 3, expect_scaled, &maxv);
    dip_free(buf);
    /* Tiled 16-bit gray+alpha with deflate. */
    s.spp = 2;
    s.bps = 16;
    s.photometric = PHOTOMETRIC_MINISBLACK;
    s.extra = EXTRASAMPLE_UNASSALPHA;
    s.comp = COMPRESSION_ADOBE_DEFLATE;
    buf = write_tiff(&s, 1, pattern, &maxv16, NULL, &len);
    check_file(&s, buf, len, 2, expect_scaled, &maxv16);
    dip_free(buf);
    /* Separate planes, in strips and in tiles. */
    s.spp = 4;
    s.bps = 8;
    s.photometric = PHOTOMETRIC_RGB;
    s.planar = PLANARCONFIG_SEPARATE;
    s.comp = COMPRESSION_LZW;
    buf = write_tiff(&s, 1, pattern, &maxv, NULL, &len);
    check_file(&s, buf, len, 4, expect_scaled, &maxv);
    dip_free(buf);
    s.tw = 0;
    s.rps = 9;
    buf = write_tiff(&s, 1, pattern, &maxv, NULL, &len);
    check_file(&s, buf, len, 4, expect_scaled, &maxv);
    dip_free(buf);
}

TEST(tiff_compressions)
{
    static const int comps[] = {COMPRESSION_NONE, COMPRESSION_LZW, COMPRESSION_ADOBE_DEFLATE,
                                COMPRESSION_PACKBITS};
    unsigned maxv = 255;
    for (size_t i = 0; i < 4; i++) {
        struct tspec s = {45, 31, 3, 8, PHOTOMETRIC_RGB, comps[i], 0, 0, 0, 7, 0, 0, NULL, 0};
        size_t len;
        uint8_t *buf = write_tiff(&s, 1, pattern, &maxv, NULL, &len);
        check_file(&s, buf, len, 3, expect_scaled, &maxv);
        dip_free(buf);
    }
}

static unsigned smooth(int x, int y, int s, const void *ctx)
{
    (void)ctx;
    return (unsigned)(x * 2 + y + s * 30); /* at most 233: no wrap, no edge */
}

TEST(tiff_jpeg_ycbcr_and_gray)
{
    /* JPEG inside TIFF is lossy: a smooth image must come back within a few levels. */
    if (!TIFFIsCODECConfigured(COMPRESSION_JPEG)) {
        printf("libtiff without JPEG: skipped\n");
        return;
    }
    for (int k = 0; k < 2; k++) {
        /* YCbCr, then gray (tiles: tiff_jpeg_tiles_match_libtiff). */
        int gray = k == 1, tile = k == 2 ? 32 : 0;
        struct tspec s = {64,
                          48,
                          gray ? 1 : 3,
                          8,
                          gray ? PHOTOMETRIC_MINISBLACK : PHOTOMETRIC_YCBCR,
                          COMPRESSION_JPEG,
                          0,
                          tile,
                          tile,
                          16,
                          0,
                          0,
                          NULL,
                          95};
        size_t len;
        uint8_t *buf = write_tiff(&s, 1, smooth, NULL, NULL, &len);
        struct dip_image_info info;
        dip_image *img = decode_ok(buf, len, &info);
        long long sum = 0;
        int maxd = 0;

        ASSERT_EQ_INT(dip_image_channels(img), gray ? 1 : 3);
        for (int y = 0; y < 48; y++)
            for (int x = 0; x < 64; x++)
                for (int c = 0; c < s.spp; c++) {
                    int d = abs((int)pixel_at(img, x, y, c) - (int)smooth(x, y, c, NULL));
                    sum += d;
                    maxd = d > maxd ? d : maxd;
                }
        fprintf(stderr, "jpeg %s%s: mean abs error %.2f, max %d\n", gray ? "gray" : "ycbcr",
                tile ? " tiled" : "", (double)sum / (64 * 48 * s.spp), maxd);
        /* Stated tolerance at quality 95: mean error at most 2 levels, none above 8. */
        ASSERT_LE_INT(sum, 64 * 48 * s.spp * 2);
        ASSERT_LE_INT(maxd, 8);
        dip_image_unref(img);
        dip_free(buf);
    }
}

TEST(tiff_multipage_first_page_and_frame_count)
{
    unsigned maxv = 255;
    struct tspec pages[3] = {
        {20, 10, 3, 8, PHOTOMETRIC_RGB, COMPRESSION_LZW, 0, 0, 0, 0, 0, 0, NULL, 0},
        {50, 40, 1, 8, PHOTOMETRIC_MINISBLACK, COMPRESSION_NONE, 0, 0, 0, 0, 0, 0, NULL, 0},
        {7, 7, 1, 16, PHOTOMETRIC_MINISBLACK, COMPRESSION_NONE, 0, 0, 0, 0, 0, 0, NULL, 0},
    };
    size_t len;
    uint8_t *buf = write_tiff(pages, 3, pattern, &maxv, NULL, &len);
    struct dip_limits lim;
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img = NULL;

    check_file(&pages[0], buf, len, 3, expect_scaled, &maxv);
    dip_limits_default(&lim);
    ASSERT_OK(dip_codec_probe(buf, len, &lim, &info, &err));
    ASSERT_EQ_INT(info.frames, 3);
    ASSERT_EQ_INT(info.width, 20);
    /* As many pages as max_frames: fine. More: refused from the directory chain, naming the
     * limit, before any pixel is decoded. */
    lim.max_frames = 3;
    ASSERT_OK(decode_with(buf, len, &lim, 0, &img, &info, &err));
    ASSERT_EQ_INT(info.frames, 3);
    ASSERT_EQ_INT(dip_image_width(img), 20);
    lim.max_frames = 2;
    expect_decode_fail(buf, len, &lim, DIP_ELIMIT,
                       "tiff: more than 2 pages exceeds the limit max_frames=2");
    ASSERT_EQ_INT(dip_codec_probe(buf, len, &lim, &info, &err), DIP_ELIMIT);
    dip_image_unref(img);
    dip_free(buf);
}

TEST(tiff_bigtiff)
{
    unsigned maxv = 255;
    struct tspec s = {30, 20, 3,    8, PHOTOMETRIC_RGB, COMPRESSION_ADOBE_DEFLATE, 0, 16, 16, 0,
                      0,  0,  NULL, 0};
    size_t len;
    uint8_t *buf = write_tiff(&s, 1, pattern, &maxv, "w8", &len);

    ASSERT(buf[2] == 43);
    check_file(&s, buf, len, 3, expect_scaled, &maxv);
    dip_free(buf);
}

TEST(tiff_orientation_tag)
{
    unsigned maxv = 255;
    struct tspec s = {6, 4, 1,    8, PHOTOMETRIC_MINISBLACK, COMPRESSION_NONE, 0, 0, 0, 0,
                      0, 6, NULL, 0};
    size_t len;
    uint8_t *buf = write_tiff(&s, 1, pattern, &maxv, NULL, &len);
    struct dip_limits lim;
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img = NULL;

    dip_limits_default(&lim);
    ASSERT_OK(dip_codec_decode(buf, len, &lim, NULL, &img, &info, &err));
    ASSERT_EQ_INT(info.orientation, 6);
    /* Orientation 6: the stored rows are rotated 90 degrees clockwise for display. */
    ASSERT_EQ_INT(dip_image_width(img), 4);
    ASSERT_EQ_INT(dip_image_height(img), 6);
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 4; x++)
            ASSERT_EQ_INT(pixel_at(img, x, y, 0), pattern(y, 3 - x, 0, &maxv));
    dip_image_unref(img);
    dip_free(buf);
}

TEST(tiff_probe_reads_header_only)
{
    unsigned maxv = 65535;
    struct tspec s = {300,  200, 2, 16, PHOTOMETRIC_MINISBLACK, COMPRESSION_ADOBE_DEFLATE,
                      0,    0,   0, 0,  EXTRASAMPLE_UNASSALPHA, 0,
                      NULL, 0};
    size_t len;
    uint8_t *buf = write_tiff(&s, 1, pattern, &maxv, NULL, &len);
    struct dip_limits lim;
    struct dip_image_info info;
    struct dip_err err = {0};
    double t0 = now_s();

    dip_limits_default(&lim);
    for (int i = 0; i < 100; i++)
        ASSERT_OK(dip_codec_probe(buf, len, &lim, &info, &err));
    printf("probe: %.1f us\n", (now_s() - t0) * 1e4);
    ASSERT_EQ_INT(info.format, DIP_FORMAT_TIFF);
    ASSERT_EQ_INT(info.width, 300);
    ASSERT_EQ_INT(info.height, 200);
    ASSERT_EQ_INT(info.channels, 2);
    ASSERT_EQ_INT(info.bit_depth, 16);
    ASSERT_EQ_INT(info.frames, 1);
    ASSERT_EQ_INT(info.orientation, 1);
    ASSERT_EQ_STR(info.color, "gray");
    dip_free(buf);
}

/* Photometrics dip does not convert itself (YCbCr without JPEG, CIE L*a*b*) go through
 * libtiff's RGBA reader: the result must equal what libtiff renders for the same file. */
static void check_against_libtiff_rgba(const struct tspec *s, sample_fn f, const void *ctx)
{
    char path[512];
    size_t len;
    uint8_t *buf = write_tiff(s, 1, f, ctx, NULL, &len);
    struct dip_image_info info;
    dip_image *img = decode_ok(buf, len, &info);
    uint32_t *raster = malloc((size_t)s->w * (size_t)s->h * 4);
    FILE *fp;
    TIFF *t;

    snprintf(path, sizeof(path), "%s/ref.tif", dip_test_tmpdir());
    fp = fopen(path, "wb");
    ASSERT(fp != NULL && fwrite(buf, 1, len, fp) == len);
    fclose(fp);
    t = TIFFOpen(path, "r");
    ASSERT(t != NULL);
    ASSERT(TIFFReadRGBAImageOriented(t, (uint32_t)s->w, (uint32_t)s->h, raster, ORIENTATION_TOPLEFT,
                                     1));
    TIFFClose(t);
    remove(path);
    ASSERT_EQ_INT(dip_image_channels(img), 3);
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++) {
            uint32_t px = raster[(size_t)y * (size_t)s->w + (size_t)x];
            ASSERT_EQ_INT(pixel_at(img, x, y, 0), TIFFGetR(px));
            ASSERT_EQ_INT(pixel_at(img, x, y, 1), TIFFGetG(px));
            ASSERT_EQ_INT(pixel_at(img, x, y, 2), TIFFGetB(px));
        }
    free(raster);
    dip_image_unref(img);
    dip_free(buf);
}

static void ycbcr11(TIFF *t)
{
    TIFFSetField(t, TIFFTAG_YCBCRSUBSAMPLING, 1, 1);
}

TEST(tiff_rgba_fallback_matches_libtiff)
{
    unsigned maxv = 255;
    struct tspec s = {29, 19, 3, 8, PHOTOMETRIC_CIELAB, COMPRESSION_LZW, 0, 0, 0, 0, 0, 0, NULL, 0};

    check_against_libtiff_rgba(&s, pattern, &maxv);
    s.photometric = PHOTOMETRIC_YCBCR;
    s.comp = COMPRESSION_NONE;
    extra_setup = ycbcr11;
    check_against_libtiff_rgba(&s, pattern, &maxv);
    extra_setup = NULL;
}

TEST(tiff_jpeg_tiles_match_libtiff)
{
    /* JPEG in tiles: the padding of edge tiles bleeds into the image through chroma upsampling,
     * so compare with libtiff's own rendering rather than with the source. */
    struct tspec s = {64, 48, 3,    8, PHOTOMETRIC_YCBCR, COMPRESSION_JPEG, 0, 32, 32, 0,
                      0,  0,  NULL, 95};

    if (!TIFFIsCODECConfigured(COMPRESSION_JPEG))
        return;
    check_against_libtiff_rgba(&s, smooth, NULL);
}

/* ---- Hostile files, built by hand ---- */

struct ent {
    uint16_t tag, type;
    uint32_t count, value;
};

#define DATA 0xFFFFFFFFu /* entry value placeholder: the offset of the pixel data */

/* Little-endian classic TIFF: header, one IFD of n entries (written in the order given), the
 * next-IFD offset, then `pix`. */
static void raw_tiff(struct bytes *b, const struct ent *e, int n, uint32_t next, const uint8_t *pix,
                     size_t pixlen)
{
    uint32_t data = 8 + 2 + 12 * (uint32_t)n + 4;

    b->n = 0;
    bytes_str(b, "II*");
    bytes_u8(b, 0);
    bytes_le32(b, 8);
    bytes_le16(b, (unsigned)n);
    for (int i = 0; i < n; i++) {
        bytes_le16(b, e[i].tag);
        bytes_le16(b, e[i].type);
        bytes_le32(b, e[i].count);
        if (e[i].type == 3 && e[i].count == 1)
            bytes_le16(b, e[i].value), bytes_le16(b, 0);
        else
            bytes_le32(b, e[i].value == DATA ? data : e[i].value);
    }
    bytes_le32(b, next);
    bytes_put(b, pix, pixlen);
}

static const struct ent gray8x8[] = {
    {256, 3, 1, 8},    {257, 3, 1, 8}, {258, 3, 1, 8}, {259, 3, 1, 1},  {262, 3, 1, 1},
    {273, 4, 1, DATA}, {277, 3, 1, 1}, {278, 3, 1, 8}, {279, 4, 1, 64},
};

TEST(tiff_hand_built_baseline_decodes)
{
    /* The hand-built layout itself is valid: the hostile variants below differ in one field. */
    uint8_t pix[64];
    struct bytes b = {0};
    struct dip_image_info info;
    dip_image *img;

    for (int i = 0; i < 64; i++)
        pix[i] = (uint8_t)(i * 4);
    raw_tiff(&b, gray8x8, 9, 0, pix, 64);
    img = decode_ok(b.p, b.n, &info);
    for (int i = 0; i < 64; i++)
        ASSERT_EQ_INT(pixel_at(img, i % 8, i / 8, 0), i * 4);
    dip_image_unref(img);
    free(b.p);
}

TEST(tiff_thousands_of_tags_refused_fast)
{
    enum { N = 5000 };
    struct ent *e = calloc(N, sizeof(*e));
    struct bytes b = {0};
    double t0;

    memcpy(e, gray8x8, sizeof(gray8x8));
    for (int i = 9; i < N; i++)
        e[i] = (struct ent){(uint16_t)(40000 + i), 3, 1, 7};
    raw_tiff(&b, e, N, 0, NULL, 0);
    t0 = now_s();
    for (int i = 0; i < 100; i++)
        expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "5000 tag entries");
    printf("refused in %.1f us\n", (now_s() - t0) * 1e4);
    ASSERT(now_s() - t0 < 1.0); /* 100 refusals; a parse of 5000 tags by libtiff is far slower */
    free(e);
    free(b.p);
}

TEST(tiff_metadata_limit_named)
{
    struct ent e[10];
    struct bytes b = {0};
    struct dip_limits lim;
    uint8_t *desc = calloc(1, 100000 + 64);

    memcpy(e, gray8x8, sizeof(gray8x8));
    /* A 100000-byte ImageDescription (270), in sorted position, stored after the pixels. */
    memmove(e + 6, e + 5, sizeof(e[0]) * 4);
    e[5] = (struct ent){270, 2, 100000, 8 + 2 + 12 * 10 + 4 + 64};
    memset(desc + 64, 'x', 99999);
    raw_tiff(&b, e, 10, 0, desc, 100000 + 64);
    dip_limits_default(&lim);
    lim.max_metadata_bytes = 10000;
    expect_decode_fail(b.p, b.n, &lim, DIP_ELIMIT, "max_metadata_bytes=10000");
    /* Under the default limit the same file decodes. */
    {
        struct dip_image_info info;
        dip_image *img = decode_ok(b.p, b.n, &info);
        dip_image_unref(img);
    }
    free(desc);
    free(b.p);
}

TEST(tiff_lying_strips_refused)
{
    struct ent e[9];
    uint8_t pix[64] = {0};
    struct bytes b = {0};

    /* Byte count far past the end of the file. */
    memcpy(e, gray8x8, sizeof(e));
    e[8].value = 1000000000;
    raw_tiff(&b, e, 9, 0, pix, 64);
    expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "ends past the end of the file");
    /* Offset past the end. */
    memcpy(e, gray8x8, sizeof(e));
    e[5].value = 5000;
    raw_tiff(&b, e, 9, 0, pix, 64);
    expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "ends past the end of the file");
    /* A single uncompressed strip shorter than its rows: libtiff itself warns about the
     * field, which fails closed. */
    memcpy(e, gray8x8, sizeof(e));
    e[8].value = 40;
    raw_tiff(&b, e, 9, 0, pix, 64);
    expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "StripByteCounts");
    /* Two strips of 4 rows, the second 20 bytes instead of 32: dip's own check. */
    {
        uint8_t blob[64 + 16];
        const uint32_t data = 8 + 2 + 12 * 9 + 4, arr[4] = {data, data + 32, 32, 20};
        memcpy(e, gray8x8, sizeof(e));
        e[5] = (struct ent){273, 4, 2, data + 64};
        e[7] = (struct ent){278, 3, 1, 4};
        e[8] = (struct ent){279, 4, 2, data + 72};
        memcpy(blob, pix, 64);
        for (int i = 0; i < 16; i++)
            blob[64 + i] = (uint8_t)(arr[i / 4] >> (8 * (i % 4)));
        raw_tiff(&b, e, 9, 0, blob, sizeof(blob));
        expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT,
                           "truncated pixel data: uncompressed strip 1 has 20 bytes, needs 32");
    }
    /* Dimensions beyond the limits, in a file far too small for them: refused before anything
     * is allocated. */
    memcpy(e, gray8x8, sizeof(e));
    e[0] = (struct ent){256, 4, 1, 70000};
    raw_tiff(&b, e, 9, 0, pix, 64);
    expect_decode_fail(b.p, b.n, NULL, DIP_ELIMIT, "max_width=65535");
    memcpy(e, gray8x8, sizeof(e));
    e[0] = (struct ent){256, 4, 1, 9000};
    e[1] = (struct ent){257, 4, 1, 9000};
    e[7] = (struct ent){278, 4, 1, 9000};
    e[8] = (struct ent){279, 4, 1, 81000000};
    raw_tiff(&b, e, 9, 0, pix, 64);
    {
        long before = dip__alloc_count();
        expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "ends past the end of the file");
        ASSERT_LE_INT(dip__alloc_count() - before, 0);
    }
    free(b.p);
}

TEST(tiff_ifd_loops_refused)
{
    uint8_t pix[64] = {0};
    struct bytes b = {0};

    raw_tiff(&b, gray8x8, 9, 8, pix, 64); /* next IFD = itself */
    expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "loops");
    raw_tiff(&b, gray8x8, 9, 5000, pix, 64); /* next IFD past the end */
    expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "image directory 1");
    free(b.p);
}

TEST(tiff_libtiff_warning_fails_closed)
{
    /* Tags out of ascending order: libtiff reads the file but warns. dip refuses it. */
    struct ent e[9];
    uint8_t pix[64] = {0};
    struct bytes b = {0};

    memcpy(e, gray8x8, sizeof(e));
    e[0] = gray8x8[1];
    e[1] = gray8x8[0];
    raw_tiff(&b, e, 9, 0, pix, 64);
    expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "sorted");
    free(b.p);
}

TEST(tiff_unsupported_refused)
{
    struct ent e[10];
    uint8_t pix[256] = {0};
    struct bytes b = {0};

    memcpy(e, gray8x8, sizeof(gray8x8));
    e[2].value = 12; /* 12-bit samples */
    raw_tiff(&b, e, 9, 0, pix, 256);
    expect_decode_fail(b.p, b.n, NULL, DIP_EFORMAT, "BitsPerSample 12");
    memcpy(e, gray8x8, sizeof(gray8x8));
    e[9] = (struct ent){339, 3, 1, 3}; /* float samples */
    raw_tiff(&b, e, 10, 0, pix, 256);
    expect_decode_fail(b.p, b.n, NULL, DIP_EFORMAT, "SampleFormat 3");
    free(b.p);
}

TEST(tiff_truncation_sweep)
{
    unsigned maxv = 255;
    struct tspec tiled = {40, 30, 3,    8, PHOTOMETRIC_RGB, COMPRESSION_LZW, 0, 16, 16, 0,
                          0,  0,  NULL, 0};
    struct tspec pages[2] = {
        {12, 9, 1, 8, PHOTOMETRIC_MINISBLACK, COMPRESSION_ADOBE_DEFLATE, 0, 0, 0, 3, 0, 0, NULL, 0},
        {5, 5, 1, 8, PHOTOMETRIC_MINISBLACK, COMPRESSION_NONE, 0, 0, 0, 0, 0, 0, NULL, 0},
    };
    size_t len, tried = 0;
    uint8_t *buf;

    /* Tiles and pages, which dip does not write (test-sweep/tiff sweeps dip's own files). */
    buf = write_tiff(&tiled, 1, pattern, &maxv, NULL, &len);
    tried += sweep_truncations(buf, len, 1, 0);
    dip_free(buf);
    buf = write_tiff(pages, 2, pattern, &maxv, NULL, &len);
    tried += sweep_truncations(buf, len, 1, 0);
    dip_free(buf);
    printf("%zu prefixes refused\n", tried);
}

/* ---- Threads: no shared state between decodes ---- */

struct job {
    const uint8_t *good, *bad;
    size_t good_len, bad_len;
    const dip_image *want;
    int failures;
};

static void *worker(void *arg)
{
    struct job *j = arg;

    for (int i = 0; i < 50; i++) {
        struct dip_err err = {0};
        struct dip_image_info info;
        dip_image *img = NULL;
        if (decode_with(j->good, j->good_len, NULL, 0, &img, &info, &err) != 0 ||
            !dip_view_equal(&(struct dip_view){dip_image_view(img).data, 40, 30, 3, 120},
                            &(struct dip_view){dip_image_view(j->want).data, 40, 30, 3, 120}))
            j->failures++;
        dip_image_unref(img);
        img = NULL;
        if (decode_with(j->bad, j->bad_len, NULL, 0, &img, &info, &err) != DIP_ECORRUPT ||
            strstr(err.msg, "sorted") == NULL)
            j->failures++;
    }
    return NULL;
}

TEST(tiff_concurrent_decodes)
{
    dip_image *want = seeded_image(40, 30, 3, 8);
    struct ent e[9];
    uint8_t pix[64] = {0}, *good;
    size_t good_len;
    struct bytes bad = {0};
    struct job jobs[4];
    pthread_t th[4];

    encode_to(want, DIP_FORMAT_TIFF, 90, 0, &good, &good_len);
    memcpy(e, gray8x8, sizeof(e));
    e[0] = gray8x8[1];
    e[1] = gray8x8[0];
    raw_tiff(&bad, e, 9, 0, pix, 64);
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct job){good, bad.p, good_len, bad.n, want, 0};
        ASSERT(pthread_create(&th[i], NULL, worker, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ASSERT_EQ_INT(jobs[i].failures, 0);
    }
    dip_free(good);
    free(bad.p);
    dip_image_unref(want);
}

TEST(tiff_version)
{
    char buf[512];

    dip_codec_versions(buf, sizeof(buf));
    ASSERT_CONTAINS(buf, "libtiff 4.");
}

TEST(tiff_out_of_memory_other_paths)
{
    /* Palette, separate planes in tiles, and the RGBA reader, each with allocations failing. */
    unsigned maxv = 255;
    struct tspec specs[3] = {
        {20, 9, 1, 8, PHOTOMETRIC_PALETTE, COMPRESSION_LZW, 0, 0, 0, 0, 0, 0, cmap, 0},
        {40, 30, 4, 8, PHOTOMETRIC_RGB, COMPRESSION_ADOBE_DEFLATE, PLANARCONFIG_SEPARATE, 16, 16, 0,
         EXTRASAMPLE_ASSOCALPHA, 0, NULL, 0},
        {17, 5, 3, 8, PHOTOMETRIC_CIELAB, COMPRESSION_NONE, 0, 0, 0, 0, 0, 0, NULL, 0},
    };
    for (int i = 0; i < 256 * 3; i++)
        cmap[i] = (uint16_t)(i * 85);
    for (int i = 0; i < 3; i++) {
        size_t len;
        uint8_t *buf = write_tiff(&specs[i], 1, pattern, &maxv, NULL, &len);
        printf("file %d: %ld allocation sites\n", i, sweep_oom(buf, len, DIP_FORMAT_UNKNOWN));
        dip_free(buf);
    }
}

TEST(tiff_ccitt_fax)
{
    /* Bilevel fax compression (G3 and G4), white-is-zero as fax files are. */
    static const int comps[] = {COMPRESSION_CCITTFAX3, COMPRESSION_CCITTFAX4};
    unsigned maxv = 1;
    for (int i = 0; i < 2; i++) {
        struct tspec s = {70, 23, 1,    1, PHOTOMETRIC_MINISWHITE, comps[i], 0, 0, 0, 0,
                          0,  0,  NULL, 0};
        size_t len;
        uint8_t *buf;
        if (!TIFFIsCODECConfigured((uint16_t)comps[i]))
            continue;
        buf = write_tiff(&s, 1, pattern, &maxv, NULL, &len);
        check_file(&s, buf, len, 1, expect_miniswhite, &maxv);
        dip_free(buf);
    }
}

TEST(tiff_private_tags_accepted)
{
    /* Cameras, scanners and GIS tools add tags libtiff does not know; libtiff's warning about
     * them is the one warning that does not fail the decode. */
    struct ent e[10];
    uint8_t pix[64];
    struct bytes b = {0};
    struct dip_image_info info;
    dip_image *img;

    for (int i = 0; i < 64; i++)
        pix[i] = (uint8_t)(255 - i);
    memcpy(e, gray8x8, sizeof(gray8x8));
    e[9] = (struct ent){65000, 3, 1, 5};
    raw_tiff(&b, e, 10, 0, pix, 64);
    img = decode_ok(b.p, b.n, &info);
    ASSERT_EQ_INT(pixel_at(img, 7, 7, 0), 255 - 63);
    dip_image_unref(img);
    free(b.p);
}

TEST(tiff_implausible_tiles_refused)
{
    /* 8x8 image claiming 1048576x16 tiles, and tiles not a multiple of 16. */
    struct ent e[10] = {
        {256, 3, 1, 8}, {257, 3, 1, 8},        {258, 3, 1, 8},  {259, 3, 1, 1},    {262, 3, 1, 1},
        {277, 3, 1, 1}, {322, 4, 1, 1u << 20}, {323, 4, 1, 16}, {324, 4, 1, DATA}, {325, 4, 1, 64},
    };
    uint8_t pix[64] = {0};
    struct bytes b = {0};

    raw_tiff(&b, e, 10, 0, pix, 64);
    expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "implausible tile size 1048576x16");
    e[6].value = 24;
    raw_tiff(&b, e, 10, 0, pix, 64);
    expect_decode_fail(b.p, b.n, NULL, DIP_ECORRUPT, "tile size 24x16");
    free(b.p);
}

TEST(tiff_bigtiff_truncation_sweep)
{
    unsigned maxv = 255;
    struct tspec s = {20, 12, 3, 8, PHOTOMETRIC_RGB, COMPRESSION_LZW, 0, 16, 16, 0, 0, 0, NULL, 0};
    size_t len;
    uint8_t *buf = write_tiff(&s, 1, pattern, &maxv, "w8", &len);

    printf("%zu prefixes refused\n", sweep_truncations(buf, len, 1, 0));
    dip_free(buf);
}
