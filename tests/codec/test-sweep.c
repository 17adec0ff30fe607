/* SPDX-License-Identifier: MIT */
/* One sweep over every codec for the properties all decoders share (sweep.h): every prefix of a
 * file is refused with a message, and an allocation failing anywhere in a decode and re-encode
 * gives DIP_ENOMEM with a message, never a crash or (under ASan) a leak. The files are written by
 * dip's own encoders at every channel count and in each encoder mode (PNG stored and deflated,
 * JPEG 4:2:0 and 4:4:4, WebP lossy and lossless), GIF (decode-only) by the small writer below.
 * One table row per format, one test per format (CTest `codec/test-sweep/<format>`), and a test
 * that the table names every format dip knows, so that a new codec cannot be left out. The
 * per-format tests run the same sweeps on the hand-made files only they build. */
#include <stdio.h>

#include "codec-util.h" /* seeded_image, the sweeps (sweep.h) */
#include "dip/codec.h"
#include "test.h"

/* ---- A GIF writer (dip does not encode GIF) ----
 * Four colours, and a clear code before every pixel, so that the LZW code size stays at 3 bits:
 * a valid stream without a compressor. Frame 1 with a graphic control extension (transparent
 * index 3); when `two_frames`, a second, offset frame that keeps the first. */
struct gbuf {
    uint8_t p[4096];
    size_t n;
};

static void gput(struct gbuf *b, const void *src, size_t n)
{
    ASSERT(b->n + n <= sizeof(b->p));
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void gu8(struct gbuf *b, unsigned v)
{
    uint8_t c = (uint8_t)v;
    gput(b, &c, 1);
}

static void gle16(struct gbuf *b, unsigned v)
{
    gu8(b, v & 255);
    gu8(b, v >> 8);
}

static void gif_frame(struct gbuf *b, int x0, int y0, int w, int h, int seed)
{
    uint8_t codes[2048];
    size_t nbytes = 0;
    uint32_t acc = 0;
    int bits = 0;

    gput(b, "\x21\xf9\x04\x05\x0a\x00\x03\x00", 8); /* GCE: keep, 10 cs, transparent 3 */
    gu8(b, 0x2c);
    gle16(b, (unsigned)x0);
    gle16(b, (unsigned)y0);
    gle16(b, (unsigned)w);
    gle16(b, (unsigned)h);
    gu8(b, 0);
    gu8(b, 2); /* LZW minimum code size: clear 4, end 5, 3-bit codes */
    for (int i = 0; i <= w * h; i++) {
        unsigned pair[2] = {4, i < w * h ? (unsigned)((i * 7 + seed) % 4) : 5};
        for (int k = i < w * h ? 0 : 1; k < 2; k++) {
            acc |= pair[k] << bits;
            bits += 3;
            while (bits >= 8) {
                ASSERT(nbytes < sizeof(codes));
                codes[nbytes++] = (uint8_t)acc;
                acc >>= 8;
                bits -= 8;
            }
        }
    }
    if (bits > 0)
        codes[nbytes++] = (uint8_t)acc;
    for (size_t at = 0; at < nbytes; at += 255) {
        size_t k = nbytes - at < 255 ? nbytes - at : 255;
        gu8(b, (unsigned)k);
        gput(b, codes + at, k);
    }
    gu8(b, 0);
}

static void gif_file(struct gbuf *b, int w, int h, int two_frames)
{
    static const uint8_t pal[12] = {0, 0, 0, 255, 0, 0, 0, 200, 40, 250, 250, 250};

    b->n = 0;
    gput(b, "GIF89a", 6);
    gle16(b, (unsigned)w);
    gle16(b, (unsigned)h);
    gu8(b, 0x80 | 0x01); /* global colour table of 4 entries */
    gu8(b, 0);
    gu8(b, 0);
    gput(b, pal, sizeof(pal));
    if (two_frames)
        gput(b, "\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00", 19);
    gif_frame(b, 0, 0, w, h, 0);
    if (two_frames)
        gif_frame(b, 2, 1, w - 3, h - 2, 1);
    gu8(b, 0x3b);
}

/* ---- The table ---- */

struct variant {
    const char *what;
    int png_level, subsampling, webp_lossless; /* -1: the default */
};

struct row {
    dip_format format;
    int built; /* compiled into this build */
    struct variant v[2];
};

#ifndef SWEEP_WITH_WEBP
#define SWEEP_WITH_WEBP 0
#endif
#ifndef SWEEP_WITH_TIFF
#define SWEEP_WITH_TIFF 0
#endif
#ifndef SWEEP_WITH_GIF
#define SWEEP_WITH_GIF 0
#endif

static const struct row rows[] = {
    {DIP_FORMAT_PNG, 1, {{"stored", 0, -1, -1}, {"deflated", -1, -1, -1}}},
    {DIP_FORMAT_JPEG, 1, {{"4:2:0", -1, 420, -1}, {"4:4:4", -1, 444, -1}}},
    {DIP_FORMAT_WEBP, SWEEP_WITH_WEBP, {{"lossy", -1, -1, 0}, {"lossless", -1, -1, 1}}},
    {DIP_FORMAT_TIFF, SWEEP_WITH_TIFF, {{"default", -1, -1, -1}, {NULL, 0, 0, 0}}},
    {DIP_FORMAT_GIF, SWEEP_WITH_GIF, {{"one frame", -1, -1, -1}, {"two frames", -1, -1, -1}}},
    {DIP_FORMAT_BMP, 1, {{"default", -1, -1, -1}, {NULL, 0, 0, 0}}},
    {DIP_FORMAT_PNM, 1, {{"default", -1, -1, -1}, {NULL, 0, 0, 0}}},
};

static const struct row *row_of(dip_format f)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (rows[i].format == f)
            return &rows[i];
    return NULL;
}

static void encode_opts(dip_format f, const struct variant *v, struct dip_encode_opts *o)
{
    dip_encode_opts_default(o);
    o->format = f;
    if (v->png_level >= 0)
        o->png_level = v->png_level;
    if (v->subsampling >= 0)
        o->subsampling = v->subsampling;
    if (v->webp_lossless >= 0)
        o->webp_lossless = v->webp_lossless;
}

/* Both sweeps on every sample file of format f. The full file must decode (else the sweep would
 * prove nothing); every prefix is refused; allocations fail in turn through a decode and, for the
 * formats dip writes, a re-encode in the same mode; and the encoder alone on the source image. */
static void sweep_format(dip_format f)
{
    const struct row *r = row_of(f);
    size_t prefixes = 0;
    long allocs = 0;

    ASSERT(r != NULL);
    if (!r->built) {
        printf("%s: not in this build\n", dip_format_name(f));
        return;
    }
    for (int vi = 0; vi < 2 && r->v[vi].what; vi++) {
        const struct variant *v = &r->v[vi];
        for (int ch = 1; ch <= 4; ch++) {
            dip_image *src = seeded_image(23, 11, ch, (uint32_t)(ch * 7 + vi));
            struct dip_encode_opts eo;
            struct dip_err err = {0};
            struct dip_limits lim;
            struct dip_decode_opts dop;
            struct dip_image_info info;
            struct gbuf g;
            dip_image *back = NULL;
            uint8_t *buf = NULL;
            const uint8_t *file;
            size_t len = 0;
            long n_dec, n_enc = 0;
            size_t n_pre;
            int rc;

            encode_opts(f, v, &eo);
            if (dip_format_can_encode(f)) {
                rc = dip_codec_encode(src, &eo, &buf, &len, &err);
                if (rc)
                    DIP_TEST_FAIL("%s %s, %d channels: encode: %s", dip_format_name(f), v->what, ch,
                                  dip_err_text(&err, rc));
                file = buf;
            } else {
                if (ch > 1) { /* GIF decodes to RGB or RGBA whatever: one file per variant */
                    dip_image_unref(src);
                    continue;
                }
                gif_file(&g, 23, 11, vi);
                file = g.p;
                len = g.n;
            }
            dip_limits_default(&lim);
            dip_decode_opts_default(&dop);
            rc = dip_codec_decode(file, len, &lim, &dop, &back, &info, &err);
            if (rc)
                DIP_TEST_FAIL("%s %s, %d channels: the whole file: %s", dip_format_name(f), v->what,
                              ch, dip_err_text(&err, rc));
            ASSERT_EQ_INT(info.format, f);
            ASSERT_EQ_INT(dip_image_width(back), 23);
            ASSERT_EQ_INT(dip_image_height(back), 11);
            dip_image_unref(back);

            n_pre = sweep_truncations(file, len, 1, 0);
            ASSERT_EQ_INT(n_pre, len);
            n_dec = sweep_oom(file, len, dip_format_can_encode(f) ? f : DIP_FORMAT_UNKNOWN);
            ASSERT(n_dec > 0);
            if (dip_format_can_encode(f)) {
                /* The sweep above re-encodes with default options: this one, in the mode. */
                n_enc = sweep_oom_encode(src, &eo);
                ASSERT(n_enc > 0);
            }
            printf("%s %s, %d channels: %zu bytes, %zu prefixes refused, %ld allocations in "
                   "the decode%s, %ld in the encode alone\n",
                   dip_format_name(f), v->what, ch, len, n_pre, n_dec,
                   dip_format_can_encode(f) ? " and re-encode" : "", n_enc);
            prefixes += n_pre;
            allocs += n_dec;
            dip_free(buf);
            dip_image_unref(src);
        }
    }
    ASSERT(prefixes > 0 && allocs > 0);
}

TEST(every_format_in_the_table)
{
    for (int f = DIP_FORMAT_UNKNOWN + 1; f < DIP_FORMAT_COUNT; f++)
        if (row_of((dip_format)f) == NULL)
            DIP_TEST_FAIL("format %s has no row in test-sweep.c", dip_format_name((dip_format)f));
}

TEST(png)
{
    sweep_format(DIP_FORMAT_PNG);
}

TEST(jpeg)
{
    sweep_format(DIP_FORMAT_JPEG);
}

TEST(webp)
{
    sweep_format(DIP_FORMAT_WEBP);
}

TEST(tiff)
{
    sweep_format(DIP_FORMAT_TIFF);
}

TEST(gif)
{
    sweep_format(DIP_FORMAT_GIF);
}

TEST(bmp)
{
    sweep_format(DIP_FORMAT_BMP);
}

TEST(pnm)
{
    sweep_format(DIP_FORMAT_PNM);
}
