/* SPDX-License-Identifier: MIT */
/* PNG codec tests. Inputs are written here with libpng (16-bit, palette, tRNS, low bit depths,
 * interlaced) or assembled chunk by chunk (lying IHDRs, bad lengths, bad CRCs), and decoded
 * through dip_codec_decode; expected values are computed in the test from the definition. */
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "codec-util.h"
#include "test.h"

/* ---- Writing PNGs with libpng ---- */

struct pngspec {
    int w, h, depth, ctype, interlace;
    const png_color *plte;
    int nplte;
    const png_byte *trns; /* palette alpha */
    int ntrns;
    const png_color_16 *trns_color; /* gray/RGB key */
};

static void wr(png_structp png, png_bytep d, size_t n)
{
    bytes_put(png_get_io_ptr(png), d, n);
}

static void fl(png_structp png)
{
    (void)png;
}

/* rows: h rows of packed samples as libpng expects them (big-endian for 16 bit). */
static struct bytes write_png(const struct pngspec *s, uint8_t *const *rows)
{
    struct bytes b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop pi = png_create_info_struct(png);

    ASSERT(png && pi);
    if (setjmp(png_jmpbuf(png)))
        DIP_TEST_FAIL("libpng failed writing a test file");
    png_set_write_fn(png, &b, wr, fl);
    png_set_IHDR(png, pi, (png_uint_32)s->w, (png_uint_32)s->h, s->depth, s->ctype,
                 s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->plte)
        png_set_PLTE(png, pi, s->plte, s->nplte);
    if (s->trns || s->trns_color)
        png_set_tRNS(png, pi, s->trns, s->ntrns, s->trns_color);
    png_write_info(png, pi);
    png_write_image(png, (png_bytepp)(uintptr_t)rows);
    png_write_end(png, pi);
    png_destroy_write_struct(&png, &pi);
    return b;
}

/* ---- Assembling PNGs chunk by chunk ---- */

static void chunk(struct bytes *b, const char *type, const void *data, uint32_t n)
{
    uLong crc = crc32(0, Z_NULL, 0);

    bytes_be32(b, n);
    bytes_put(b, type, 4);
    if (n)
        bytes_put(b, data, n);
    crc = crc32(crc, (const Bytef *)type, 4);
    if (n)
        crc = crc32(crc, data, n);
    bytes_be32(b, (uint32_t)crc);
}

static void ihdr(struct bytes *b, uint32_t w, uint32_t h, int depth, int ctype)
{
    struct bytes d = {0};

    bytes_put(b, "\x89PNG\r\n\x1a\n", 8);
    bytes_be32(&d, w);
    bytes_be32(&d, h);
    bytes_u8(&d, (unsigned)depth);
    bytes_u8(&d, (unsigned)ctype);
    bytes_u8(&d, 0);
    bytes_u8(&d, 0);
    bytes_u8(&d, 0);
    chunk(b, "IHDR", d.p, (uint32_t)d.n);
    bytes_free(&d);
}

static void idat_of(struct bytes *b, const uint8_t *raw, size_t n)
{
    uLongf cap = compressBound(n);
    uint8_t *z = malloc(cap);

    ASSERT(compress(z, &cap, raw, n) == Z_OK);
    chunk(b, "IDAT", z, (uint32_t)cap);
    free(z);
}

static int pix(const dip_image *img, int x, int y, int c)
{
    struct dip_view v = dip_image_view(img);
    return v.data[(size_t)y * v.stride + (size_t)x * (size_t)v.channels + (size_t)c];
}

/* ---- Round trips ---- */

TEST(roundtrip_every_channel_count_exact)
{
    for (int ch = 1; ch <= 4; ch++)
        for (int level = 0; level <= 9; level += 3) {
            dip_image *src = make_image(37, 23, ch, 0), *dst = NULL;
            struct dip_encode_opts eo;
            struct dip_image_info info;
            struct dip_err err = {0};
            struct dip_view a, b;
            uint8_t *enc = NULL;
            size_t n = 0;

            dip_encode_opts_default(&eo);
            eo.format = DIP_FORMAT_PNG;
            eo.png_level = level;
            ASSERT_OK(dip_codec_encode(src, &eo, &enc, &n, &err));
            ASSERT_EQ_INT(dip_codec_sniff(enc, n), DIP_FORMAT_PNG);
            ASSERT_OK(decode_with(enc, n, NULL, 1, &dst, &info, &err));
            ASSERT_EQ_INT(info.format, DIP_FORMAT_PNG);
            ASSERT_EQ_INT(info.channels, ch);
            ASSERT_EQ_INT(info.bit_depth, 8);
            ASSERT_EQ_INT(info.width, 37);
            ASSERT_EQ_INT(info.height, 23);
            a = dip_image_view(src);
            b = dip_image_view(dst);
            ASSERT(dip_view_equal(&a, &b));
            dip_free(enc);
            dip_image_unref(src);
            dip_image_unref(dst);
        }
}

TEST(encode_rejects_bad_level)
{
    dip_image *src = make_image(4, 4, 3, 0);
    struct dip_encode_opts eo;
    struct dip_err err = {0};
    uint8_t *enc = NULL;
    size_t n = 0;

    dip_encode_opts_default(&eo);
    eo.format = DIP_FORMAT_PNG;
    eo.png_level = 10;
    ASSERT_EQ_INT(dip_codec_encode(src, &eo, &enc, &n, &err), DIP_EINVAL);
    ASSERT(enc == NULL);
    ASSERT_CONTAINS(err.msg, "level");
    dip_image_unref(src);
}

/* ---- 16 bit ---- */

TEST(sixteen_bit_rounds_to_nearest)
{
    /* Every 16-bit value once, as a 256x256 gray image, and as RGBA (4 values per pixel). */
    for (int ctype = 0; ctype < 2; ctype++) {
        int ch = ctype ? 4 : 1, w = ctype ? 128 : 256, h = ctype ? 128 : 256;
        struct pngspec s = {w, h,    16, ctype ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_GRAY,
                            0, NULL, 0,  NULL,
                            0, NULL};
        uint8_t **rows = calloc((size_t)h, sizeof(*rows));
        struct dip_image_info info;
        struct dip_err err = {0};
        dip_image *img = NULL;
        struct bytes b;

        for (int y = 0; y < h; y++) {
            rows[y] = malloc((size_t)w * (size_t)ch * 2);
            for (int i = 0; i < w * ch; i++) {
                unsigned v = (unsigned)(y * w * ch + i);
                rows[y][2 * i] = (uint8_t)(v >> 8);
                rows[y][2 * i + 1] = (uint8_t)(v & 0xff);
            }
        }
        b = write_png(&s, rows);
        ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, &info, &err));
        ASSERT_EQ_INT(info.bit_depth, 16);
        ASSERT_EQ_INT(dip_image_channels(img), ch);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < ch; c++) {
                    unsigned v = (unsigned)(y * w * ch + x * ch + c);
                    /* Nearest 8-bit value, computed in floating point. */
                    int want = (int)floor((double)v * 255.0 / 65535.0 + 0.5);
                    ASSERT_EQ_INT(want, (v * 255 + 32767) / 65535);
                    if (pix(img, x, y, c) != want)
                        DIP_TEST_FAIL("16-bit %u -> %d, want %d", v, pix(img, x, y, c), want);
                }
        for (int y = 0; y < h; y++)
            free(rows[y]);
        free(rows);
        bytes_free(&b);
        dip_image_unref(img);
    }
}

/* ---- Palette, tRNS, low bit depths ---- */

TEST(palette_to_rgb_and_rgba)
{
    png_color pal[5] = {{0, 0, 0}, {255, 0, 0}, {0, 128, 0}, {10, 20, 30}, {200, 201, 202}};
    png_byte alpha[3] = {0, 128, 255};                  /* entries 3 and 4: opaque */
    uint8_t r0[2] = {0x01, 0x23}, r1[2] = {0x40, 0x00}; /* 4-bit indices: 0 1 2 3 / 4 0 0 0 */
    uint8_t *rows[2] = {r0, r1};

    for (int k = 0; k < 4; k++) {
        int with_trns = k & 1, interlace = k >> 1;
        struct pngspec s = {.w = 4,
                            .h = 2,
                            .depth = 4,
                            .ctype = PNG_COLOR_TYPE_PALETTE,
                            .interlace = interlace,
                            .plte = pal,
                            .nplte = 5,
                            .trns = with_trns ? alpha : NULL,
                            .ntrns = with_trns ? 3 : 0};
        struct bytes b = write_png(&s, rows);
        struct dip_image_info info;
        struct dip_err err = {0};
        dip_image *img = NULL;
        int idx[2][4] = {{0, 1, 2, 3}, {4, 0, 0, 0}};

        ASSERT_OK(dip_codec_probe(
            b.p, b.n,
            &(struct dip_limits){65535, 65535, 1000000, 1 << 20, 10, 1 << 20, 10, 1 << 20}, &info,
            &err));
        ASSERT_EQ_STR(info.color, "palette");
        ASSERT_EQ_INT(info.channels, with_trns ? 4 : 3);
        ASSERT_EQ_INT(info.bit_depth, 4);
        ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, &info, &err));
        ASSERT_EQ_INT(dip_image_channels(img), with_trns ? 4 : 3);
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 4; x++) {
                int i = idx[y][x];
                ASSERT_EQ_INT(pix(img, x, y, 0), pal[i].red);
                ASSERT_EQ_INT(pix(img, x, y, 1), pal[i].green);
                ASSERT_EQ_INT(pix(img, x, y, 2), pal[i].blue);
                if (with_trns)
                    ASSERT_EQ_INT(pix(img, x, y, 3), i < 3 ? alpha[i] : 255);
            }
        bytes_free(&b);
        dip_image_unref(img);
    }
}

TEST(oversized_palette_accepted)
{
    /* A 1-bit image with a 256-entry PLTE (some encoders always write 256): entries past 2 are
     * unused; the image decodes. */
    uint8_t plte[256 * 3], raw[2] = {0, 0x40}; /* filter 0, pixels 0 1 */
    struct bytes b = {0};
    struct dip_err err = {0};
    dip_image *img = NULL;

    for (int i = 0; i < 256 * 3; i++)
        plte[i] = (uint8_t)(i * 7);
    ihdr(&b, 2, 1, 1, PNG_COLOR_TYPE_PALETTE);
    chunk(&b, "PLTE", plte, sizeof(plte));
    idat_of(&b, raw, sizeof(raw));
    chunk(&b, "IEND", NULL, 0);
    ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, NULL, &err));
    ASSERT_EQ_INT(pix(img, 0, 0, 0), plte[0]);
    ASSERT_EQ_INT(pix(img, 1, 0, 2), plte[5]);
    dip_image_unref(img);
    bytes_free(&b);
}

TEST(palette_index_past_plte_is_corrupt)
{
    /* 2-bit indices with a 3-entry PLTE: index 3 is one past the end (libpng alone lets the
     * last index through). */
    uint8_t plte[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    uint8_t raw_ok[2] = {0, 0x24}, raw_bad[2] = {0, 0x27}; /* 0 2 1 0 / 0 2 1 3 */

    for (int bad = 0; bad < 2; bad++) {
        struct bytes b = {0};
        struct dip_err err = {0};
        dip_image *img = NULL;
        int rc;

        ihdr(&b, 4, 1, 2, PNG_COLOR_TYPE_PALETTE);
        chunk(&b, "PLTE", plte, sizeof(plte));
        idat_of(&b, bad ? raw_bad : raw_ok, 2);
        chunk(&b, "IEND", NULL, 0);
        rc = decode_with(b.p, b.n, NULL, 1, &img, NULL, &err);
        if (bad) {
            ASSERT_EQ_INT(rc, DIP_ECORRUPT);
            ASSERT_CONTAINS(err.msg, "palette index 3 outside the 3-entry PLTE");
        } else {
            ASSERT_OK(rc);
            ASSERT_EQ_INT(pix(img, 1, 0, 0), 7);
            ASSERT_EQ_INT(pix(img, 2, 0, 2), 6);
        }
        dip_image_unref(img);
        bytes_free(&b);
    }
}

TEST(gray_trns_gives_gray_alpha)
{
    uint8_t r0[3] = {7, 8, 9}, r1[3] = {8, 255, 0};
    uint8_t *rows[2] = {r0, r1};
    png_color_16 key = {0, 0, 0, 0, 8};
    struct pngspec s = {3, 2, 8, PNG_COLOR_TYPE_GRAY, 0, NULL, 0, NULL, 0, &key};
    struct bytes b = write_png(&s, rows);
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img = NULL;

    ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, &info, &err));
    ASSERT_EQ_INT(info.channels, 2);
    ASSERT_EQ_INT(dip_image_channels(img), 2);
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++) {
            int g = rows[y][x];
            ASSERT_EQ_INT(pix(img, x, y, 0), g);
            ASSERT_EQ_INT(pix(img, x, y, 1), g == 8 ? 0 : 255);
        }
    bytes_free(&b);
    dip_image_unref(img);
}

TEST(sixteen_bit_rgb_trns_key)
{
    /* 16-bit RGB with a tRNS key: the key pixel (exact 16-bit match) gets alpha 0; a pixel that
     * differs from the key in the low byte only stays opaque. */
    uint8_t row[3 * 6] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x12, 0x34, 0x56,
                          0x78, 0x9a, 0xbd, 0xff, 0xff, 0x00, 0x00, 0x80, 0x80};
    uint8_t *rows[1] = {row};
    png_color_16 key = {0, 0x1234, 0x5678, 0x9abc, 0};
    struct pngspec s = {
        .w = 3, .h = 1, .depth = 16, .ctype = PNG_COLOR_TYPE_RGB, .trns_color = &key};
    struct bytes b = write_png(&s, rows);
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img = NULL;

    ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, &info, &err));
    ASSERT_EQ_INT(info.channels, 4);
    ASSERT_EQ_INT(info.bit_depth, 16);
    ASSERT_EQ_INT(pix(img, 0, 0, 3), 0);
    ASSERT_EQ_INT(pix(img, 1, 0, 3), 255);
    for (int x = 0; x < 3; x++)
        for (int c = 0; c < 3; c++) {
            unsigned v = (unsigned)row[x * 6 + c * 2] << 8 | row[x * 6 + c * 2 + 1];
            ASSERT_EQ_INT(pix(img, x, 0, c), (v * 255 + 32767) / 65535);
        }
    ASSERT_EQ_INT(pix(img, 2, 0, 3), 255);
    dip_image_unref(img);
    bytes_free(&b);
}

TEST(low_bit_gray_expands_to_full_range)
{
    for (int depth = 1; depth <= 4; depth *= 2) {
        int maxv = (1 << depth) - 1, w = maxv + 1;
        uint8_t r0[8] = {0};
        uint8_t *rows[1] = {r0};
        struct pngspec s = {w, 1, depth, PNG_COLOR_TYPE_GRAY, 0, NULL, 0, NULL, 0, NULL};
        struct dip_err err = {0};
        dip_image *img = NULL;
        struct bytes b;

        /* Pixel x has value x, packed most significant bits first. */
        for (int x = 0; x < w; x++)
            r0[(x * depth) / 8] |= (uint8_t)(x << (8 - depth - (x * depth) % 8));
        b = write_png(&s, rows);
        ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, NULL, &err));
        ASSERT_EQ_INT(dip_image_channels(img), 1);
        for (int x = 0; x < w; x++)
            ASSERT_EQ_INT(pix(img, x, 0, 0), x * 255 / maxv);
        bytes_free(&b);
        dip_image_unref(img);
    }
}

/* ---- Interlacing ---- */

TEST(interlaced_matches_source)
{
    int sizes[][2] = {{1, 1}, {3, 5}, {9, 2}, {33, 17}};

    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
        for (int depth = 8; depth <= 16; depth += 8) {
            int w = sizes[k][0], h = sizes[k][1], bps = depth / 8;
            dip_image *src = make_image(w, h, 4, 0), *img = NULL;
            struct dip_view sv = dip_image_view(src), dv;
            struct pngspec s = {w, h, depth, PNG_COLOR_TYPE_RGB_ALPHA, 1, NULL, 0, NULL, 0, NULL};
            uint8_t **rows = calloc((size_t)h, sizeof(*rows));
            struct dip_image_info info;
            struct dip_err err = {0};
            struct bytes b;

            for (int y = 0; y < h; y++) {
                rows[y] = malloc((size_t)w * 4 * (size_t)bps);
                for (int i = 0; i < w * 4; i++) {
                    uint8_t v = sv.data[(size_t)y * sv.stride + (size_t)i];
                    rows[y][i * bps] = v;
                    if (bps == 2) /* v * 257 scales back to exactly v */
                        rows[y][i * 2 + 1] = v;
                }
            }
            b = write_png(&s, rows);
            ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, &info, &err));
            ASSERT_EQ_INT(info.progressive, 1);
            dv = dip_image_view(img);
            ASSERT(dip_view_equal(&sv, &dv));
            for (int y = 0; y < h; y++)
                free(rows[y]);
            free(rows);
            bytes_free(&b);
            dip_image_unref(src);
            dip_image_unref(img);
        }
}

/* ---- Probe ---- */

TEST(probe_reads_header_only)
{
    struct bytes b = {0};
    struct dip_limits lim;
    struct dip_image_info info;
    struct dip_err err = {0};
    uint8_t exif[64];
    size_t ne = make_exif(exif, 6, 1);

    /* A header and an eXIf chunk, then an IDAT that is garbage: probe must not look at it. */
    ihdr(&b, 640, 480, 16, PNG_COLOR_TYPE_RGB);
    chunk(&b, "eXIf", exif + 6, (uint32_t)(ne - 6));
    chunk(&b, "IDAT", "garbage", 7);
    dip_limits_default(&lim);
    ASSERT_OK(dip_codec_probe(b.p, b.n, &lim, &info, &err));
    ASSERT_EQ_INT(info.format, DIP_FORMAT_PNG);
    ASSERT_EQ_INT(info.width, 640);
    ASSERT_EQ_INT(info.height, 480);
    ASSERT_EQ_INT(info.channels, 3);
    ASSERT_EQ_INT(info.bit_depth, 16);
    ASSERT_EQ_INT(info.orientation, 6);
    ASSERT_EQ_INT(info.frames, 1);
    ASSERT_EQ_INT(info.progressive, 0);
    ASSERT_EQ_STR(info.color, "rgb");
    /* Decoding the same bytes fails: the IDAT is not zlib data, and there is no IEND. */
    {
        dip_image *img = NULL;
        ASSERT_EQ_INT(decode_with(b.p, b.n, NULL, 1, &img, NULL, &err), DIP_ECORRUPT);
    }
    bytes_free(&b);
}

TEST(exif_orientation_applied)
{
    dip_image *src = make_image(5, 3, 3, 0);
    struct dip_view sv = dip_image_view(src);
    uint8_t raw[3 * 16];
    struct bytes b = {0};
    uint8_t exif[64];
    size_t ne = make_exif(exif, 6, 0);
    dip_image *img = NULL;
    struct dip_image_info info;
    struct dip_err err = {0};

    ihdr(&b, 5, 3, 8, PNG_COLOR_TYPE_RGB);
    chunk(&b, "eXIf", exif + 6, (uint32_t)(ne - 6));
    for (int y = 0; y < 3; y++) {
        raw[y * 16] = 0; /* filter: none */
        memcpy(raw + y * 16 + 1, sv.data + (size_t)y * sv.stride, 15);
    }
    idat_of(&b, raw, sizeof(raw));
    chunk(&b, "IEND", NULL, 0);
    ASSERT_OK(decode_with(b.p, b.n, NULL, 0, &img, &info, &err));
    ASSERT_EQ_INT(info.orientation, 6);
    ASSERT_EQ_INT(dip_image_width(img), 5);
    dip_image_unref(img);
    ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, &info, &err));
    ASSERT_EQ_INT(dip_image_width(img), 3);
    ASSERT_EQ_INT(dip_image_height(img), 5);
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 5; x++) {
            int dx, dy;
            exif_forward(6, 5, 3, x, y, &dx, &dy);
            for (int c = 0; c < 3; c++)
                ASSERT_EQ_INT(pix(img, dx, dy, c), pix(src, x, y, c));
        }
    dip_image_unref(img);
    dip_image_unref(src);
    bytes_free(&b);
}

TEST(apng_reports_frames_decodes_default_image)
{
    struct bytes b = {0};
    uint8_t raw[2 * 3] = {0, 10, 20, 0, 30, 40}; /* 2x2 gray, filter bytes 0 */
    uint8_t actl[8] = {0, 0, 0, 3, 0, 0, 0, 0};  /* 3 frames, loop forever */
    struct dip_limits lim;
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img = NULL;

    ihdr(&b, 2, 2, 8, PNG_COLOR_TYPE_GRAY);
    chunk(&b, "acTL", actl, 8);
    idat_of(&b, raw, sizeof(raw));
    /* Frame data of later frames is image data, not metadata: not held to that limit. */
    {
        static uint8_t fdat[6000];
        chunk(&b, "fdAT", fdat, sizeof(fdat));
    }
    chunk(&b, "IEND", NULL, 0);
    dip_limits_default(&lim);
    lim.max_metadata_bytes = 1000;
    ASSERT_OK(dip_codec_probe(b.p, b.n, &lim, &info, &err));
    ASSERT_EQ_INT(info.frames, 3);
    lim.max_frames = 3;
    ASSERT_OK(decode_with(b.p, b.n, &lim, 1, &img, &info, &err));
    ASSERT_EQ_INT(info.frames, 3);
    ASSERT_EQ_INT(pix(img, 1, 1, 0), 40);
    dip_image_unref(img);
    img = NULL;
    /* More frames than max_frames: refused like GIF, WebP and TIFF, by probe and decode. */
    lim.max_frames = 2;
    ASSERT_EQ_INT(dip_codec_probe(b.p, b.n, &lim, &info, &err), DIP_ELIMIT);
    ASSERT_CONTAINS(err.msg, "max_frames=2");
    ASSERT_EQ_INT(decode_with(b.p, b.n, &lim, 1, &img, &info, &err), DIP_ELIMIT);
    ASSERT(img == NULL);
    bytes_free(&b);
}

TEST(apng_actl_claiming_2_31_frames_refused)
{
    struct bytes b = {0};
    uint8_t raw[2 * 3] = {0, 10, 20, 0, 30, 40};
    uint8_t actl[8] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    struct dip_limits lim;
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img = NULL;
    long before;

    ihdr(&b, 2, 2, 8, PNG_COLOR_TYPE_GRAY);
    chunk(&b, "acTL", actl, 8);
    idat_of(&b, raw, sizeof(raw));
    chunk(&b, "IEND", NULL, 0);
    dip_limits_default(&lim);
    ASSERT_EQ_INT(dip_codec_probe(b.p, b.n, &lim, &info, &err), DIP_ELIMIT);
    ASSERT_CONTAINS(err.msg, "2147483647 frames");
    ASSERT_CONTAINS(err.msg, "max_frames");
    before = dip__alloc_count();
    ASSERT_EQ_INT(decode_with(b.p, b.n, &lim, 1, &img, &info, &err), DIP_ELIMIT);
    ASSERT(img == NULL);
    ASSERT_EQ_INT(dip__alloc_count(), before); /* refused before any allocation */
    bytes_free(&b);
}

/* ---- Hostile input ---- */

TEST(lying_ihdr_refused_by_limits_before_allocation)
{
    struct bytes b = {0};
    uint8_t raw[16] = {0};
    struct dip_err err = {0};
    dip_image *img = NULL;
    long before = dip__alloc_count();

    ihdr(&b, 60000, 60000, 8, PNG_COLOR_TYPE_RGB_ALPHA);
    idat_of(&b, raw, sizeof(raw));
    chunk(&b, "IEND", NULL, 0);
    ASSERT_EQ_INT(decode_with(b.p, b.n, NULL, 1, &img, NULL, &err), DIP_ELIMIT);
    ASSERT_CONTAINS(err.msg, "png");
    ASSERT_CONTAINS(err.msg, "max_pixels");
    /* Refused from the header: no buffer was allocated through dip's allocator. */
    ASSERT_EQ_INT(dip__alloc_count(), before);
    bytes_free(&b);

    memset(&b, 0, sizeof(b));
    ihdr(&b, 70000, 10, 8, PNG_COLOR_TYPE_GRAY);
    idat_of(&b, raw, sizeof(raw));
    chunk(&b, "IEND", NULL, 0);
    ASSERT_EQ_INT(decode_with(b.p, b.n, NULL, 1, &img, NULL, &err), DIP_ELIMIT);
    ASSERT_CONTAINS(err.msg, "width 70000");
    ASSERT_CONTAINS(err.msg, "max_width=65535");
    bytes_free(&b);
}

TEST(tiny_idat_for_big_image_refused_before_allocation)
{
    /* 9000x9000 gray is within the default limits but 16 bytes of deflate cannot hold it. */
    struct bytes b = {0};
    uint8_t raw[16] = {0};
    struct dip_err err = {0};
    dip_image *img = NULL;
    long before = dip__alloc_count();

    ihdr(&b, 9000, 9000, 8, PNG_COLOR_TYPE_GRAY);
    idat_of(&b, raw, sizeof(raw));
    chunk(&b, "IEND", NULL, 0);
    ASSERT_EQ_INT(decode_with(b.p, b.n, NULL, 1, &img, NULL, &err), DIP_ECORRUPT);
    ASSERT_CONTAINS(err.msg, "IDAT");
    ASSERT_EQ_INT(dip__alloc_count(), before);
    bytes_free(&b);
}

TEST(chunk_length_ffffffff_refused)
{
    struct bytes b = {0};
    struct dip_err err = {0};
    struct dip_image_info info;
    struct dip_limits lim;
    dip_image *img = NULL;

    ihdr(&b, 8, 8, 8, PNG_COLOR_TYPE_GRAY);
    bytes_be32(&b, 0xffffffffu);
    bytes_put(&b, "tEXtabc", 7);
    dip_limits_default(&lim);
    ASSERT_EQ_INT(dip_codec_probe(b.p, b.n, &lim, &info, &err), DIP_ECORRUPT);
    ASSERT_CONTAINS(err.msg, "0xffffffff");
    ASSERT_EQ_INT(decode_with(b.p, b.n, NULL, 1, &img, NULL, &err), DIP_ECORRUPT);
    bytes_free(&b);
}

static struct bytes small_png(void)
{
    dip_image *src = make_image(16, 12, 3, 0);
    struct dip_encode_opts eo;
    struct dip_err err = {0};
    struct bytes b = {0};
    uint8_t *enc = NULL;
    size_t n = 0;

    dip_encode_opts_default(&eo);
    eo.format = DIP_FORMAT_PNG;
    ASSERT_OK(dip_codec_encode(src, &eo, &enc, &n, &err));
    bytes_put(&b, enc, n);
    dip_free(enc);
    dip_image_unref(src);
    return b;
}

TEST(crc_errors_refused)
{
    struct bytes b = small_png();
    struct dip_err err = {0};
    dip_image *img = NULL;
    size_t idat;

    ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &img, NULL, &err));
    dip_image_unref(img);
    img = NULL;
    /* A flipped bit inside the IDAT data: refused (by zlib or by the CRC, whichever first). */
    for (idat = 8; idat + 8 < b.n && memcmp(b.p + idat + 4, "IDAT", 4) != 0;)
        idat += 12 + ((size_t)b.p[idat] << 24 | (size_t)b.p[idat + 1] << 16 |
                      (size_t)b.p[idat + 2] << 8 | b.p[idat + 3]);
    ASSERT(idat + 8 < b.n);
    b.p[idat + 8 + 5] ^= 0x10;
    ASSERT_EQ_INT(decode_with(b.p, b.n, NULL, 1, &img, NULL, &err), DIP_ECORRUPT);
    ASSERT(img == NULL);
    b.p[idat + 8 + 5] ^= 0x10;
    /* The same with the data intact and the CRC itself wrong. */
    {
        size_t crcpos = idat + 8 +
                        ((size_t)b.p[idat] << 24 | (size_t)b.p[idat + 1] << 16 |
                         (size_t)b.p[idat + 2] << 8 | b.p[idat + 3]);
        b.p[crcpos] ^= 0x01;
        ASSERT_EQ_INT(decode_with(b.p, b.n, NULL, 1, &img, NULL, &err), DIP_ECORRUPT);
        ASSERT_CONTAINS(err.msg, "CRC");
        ASSERT(img == NULL);
        b.p[crcpos] ^= 0x01;
    }
    /* A bad CRC on an ancillary chunk is refused too (not silently skipped). */
    {
        struct bytes c = {0};
        bytes_put(&c, b.p, 33);
        chunk(&c, "tEXt", "Comment\0hello", 13);
        c.p[c.n - 1] ^= 1;
        bytes_put(&c, b.p + 33, b.n - 33);
        ASSERT_EQ_INT(decode_with(c.p, c.n, NULL, 1, &img, NULL, &err), DIP_ECORRUPT);
        ASSERT_CONTAINS(err.msg, "CRC");
        bytes_free(&c);
    }
    bytes_free(&b);
}

TEST(metadata_limit)
{
    struct bytes b = small_png(), c = {0};
    struct dip_limits lim;
    struct dip_err err = {0};
    dip_image *img = NULL;
    char text[1200];

    memset(text, 'x', sizeof(text));
    memcpy(text, "Comment", 8);
    bytes_put(&c, b.p, 33);
    chunk(&c, "tEXt", text, sizeof(text));
    bytes_put(&c, b.p + 33, b.n - 33);
    dip_limits_default(&lim);
    ASSERT_OK(decode_with(c.p, c.n, &lim, 1, &img, NULL, &err));
    dip_image_unref(img);
    img = NULL;
    lim.max_metadata_bytes = 1000;
    ASSERT_EQ_INT(decode_with(c.p, c.n, &lim, 1, &img, NULL, &err), DIP_ELIMIT);
    ASSERT_CONTAINS(err.msg, "max_metadata_bytes=1000");
    bytes_free(&b);
    bytes_free(&c);
}

TEST(truncated_interlaced_16bit)
{
    dip_image *src = make_image(20, 20, 4, 0);
    struct dip_view sv = dip_image_view(src);
    struct pngspec s = {20, 20, 16, PNG_COLOR_TYPE_RGB_ALPHA, 1, NULL, 0, NULL, 0, NULL};
    uint8_t *rows[20];
    struct bytes b;

    for (int y = 0; y < 20; y++) {
        rows[y] = malloc(20 * 8);
        for (int i = 0; i < 160; i++)
            rows[y][i] = sv.data[(size_t)y * sv.stride + (size_t)i / 2] ^ (uint8_t)(i * 37);
    }
    b = write_png(&s, rows);
    sweep_truncations(b.p, b.n, 3, 0);
    for (int y = 0; y < 20; y++)
        free(rows[y]);
    bytes_free(&b);
    dip_image_unref(src);
}

TEST(version_string)
{
    char buf[512];

    dip_codec_versions(buf, sizeof(buf));
    ASSERT_CONTAINS(buf, "libpng 1.6.");
}
