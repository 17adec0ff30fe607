/* SPDX-License-Identifier: MIT */
/* JPEG codec tests. Inputs are written here with libjpeg (CMYK with and without the Adobe
 * marker, YCCK, progressive, APP1 EXIF for every orientation, large metadata) and decoded
 * through dip_codec_decode; expected pixels are computed in the test. Tolerances are stated
 * where JPEG is lossy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "codec-util.h"
#include "test.h"

/* ---- Writing JPEGs with libjpeg ---- */

struct jw {
    int w, h, comps;
    J_COLOR_SPACE in_space;
    J_COLOR_SPACE jpeg_space; /* JCS_UNKNOWN: libjpeg's default for in_space */
    int quality;
    int progressive;
    int arith;    /* arithmetic coding */
    int no_adobe; /* CMYK without the APP14 Adobe marker */
    int samp;     /* 444 or 420 (luma factors) */
    const uint8_t *app1;
    size_t app1_len;
    size_t com_len; /* a COM marker of this many bytes, 0 for none */
};

static struct bytes write_jpeg(const struct jw *s, const uint8_t *pixels)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    unsigned char *mem = NULL;
    unsigned long memlen = 0;
    struct bytes b = {0};

    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &memlen);
    c.image_width = (JDIMENSION)s->w;
    c.image_height = (JDIMENSION)s->h;
    c.input_components = s->comps;
    c.in_color_space = s->in_space;
    jpeg_set_defaults(&c);
    if (s->jpeg_space != JCS_UNKNOWN)
        jpeg_set_colorspace(&c, s->jpeg_space);
    if (s->no_adobe)
        c.write_Adobe_marker = FALSE;
    jpeg_set_quality(&c, s->quality, TRUE);
    for (int i = 0; i < c.num_components; i++)
        c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
    if (s->samp == 420 && c.num_components == 3)
        c.comp_info[0].h_samp_factor = c.comp_info[0].v_samp_factor = 2;
    if (s->progressive)
        jpeg_simple_progression(&c);
    if (s->arith)
        c.arith_code = TRUE;
    jpeg_start_compress(&c, TRUE);
    if (s->app1)
        jpeg_write_marker(&c, JPEG_APP0 + 1, s->app1, (unsigned)s->app1_len);
    if (s->com_len) {
        unsigned char *com = malloc(s->com_len);
        memset(com, 'c', s->com_len);
        jpeg_write_marker(&c, JPEG_COM, com, (unsigned)s->com_len);
        free(com);
    }
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(uintptr_t)(pixels + (size_t)c.next_scanline * (size_t)s->w *
                                                          (size_t)s->comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    bytes_put(&b, mem, memlen);
    free(mem);
    return b;
}

static int count_scans(const struct bytes *b)
{
    int n = 0;
    /* libjpeg stuffs 0xFF in entropy data and our DQT/DHT hold no FF DA pair. */
    for (size_t i = 0; i + 1 < b->n; i++)
        if (b->p[i] == 0xff && b->p[i + 1] == 0xda)
            n++;
    return n;
}

static uint8_t *pixels_of(const dip_image *img)
{
    struct dip_view v = dip_image_view(img);
    size_t row = (size_t)v.width * (size_t)v.channels;
    uint8_t *p = malloc(row * (size_t)v.height);

    for (int y = 0; y < v.height; y++)
        memcpy(p + row * (size_t)y, v.data + v.stride * (size_t)y, row);
    return p;
}

static int pix(const dip_image *img, int x, int y, int c)
{
    struct dip_view v = dip_image_view(img);
    return v.data[(size_t)y * v.stride + (size_t)x * (size_t)v.channels + (size_t)c];
}

static struct bytes encode(const dip_image *img, int quality, int subsampling)
{
    struct dip_encode_opts eo;
    struct dip_err err = {0};
    struct bytes b = {0};
    uint8_t *enc = NULL;
    size_t n = 0;

    dip_encode_opts_default(&eo);
    eo.format = DIP_FORMAT_JPEG;
    eo.quality = quality;
    eo.subsampling = subsampling;
    ASSERT_OK(dip_codec_encode(img, &eo, &enc, &n, &err));
    bytes_put(&b, enc, n);
    dip_free(enc);
    return b;
}

/* ---- Round trips ---- */

/* Tolerance for a smooth 64x48 image at quality 95, 4:4:4: mean absolute error <= 1.5 and
 * max <= 12 per sample (measured: about 0.5 and 4). */
TEST(roundtrip_every_channel_count_within_tolerance)
{
    for (int ch = 1; ch <= 4; ch++) {
        dip_image *src = make_image(64, 48, ch, 1), *dst = NULL, *ref = NULL;
        int outc = ch <= 2 ? 1 : 3;
        struct bytes b = encode(src, 95, 444);
        struct dip_image_info info;
        struct dip_err err = {0};
        struct dip_view sv = dip_image_view(src), rv, dv;
        double mean;
        int max;

        ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &dst, &info, &err));
        ASSERT_EQ_INT(info.format, DIP_FORMAT_JPEG);
        ASSERT_EQ_INT(info.channels, outc);
        ASSERT_EQ_INT(dip_image_channels(dst), outc);
        ASSERT_EQ_STR(info.color, outc == 1 ? "gray" : "ycbcr");
        ASSERT_EQ_INT(info.progressive, 0);
        /* The source without alpha. */
        ASSERT_OK(dip_image_new(64, 48, outc, &ref));
        rv = dip_image_view(ref);
        for (int y = 0; y < 48; y++)
            for (int x = 0; x < 64; x++)
                memcpy(rv.data + (size_t)y * rv.stride + (size_t)x * (size_t)outc,
                       sv.data + (size_t)y * sv.stride + (size_t)x * (size_t)ch, (size_t)outc);
        dv = dip_image_view(dst);
        view_diff(&rv, &dv, &mean, &max);
        printf("channels %d: mean %.3f max %d (%zu bytes)\n", ch, mean, max, b.n);
        ASSERT(mean <= 1.5);
        ASSERT_LE_INT(max, 12);
        bytes_free(&b);
        dip_image_unref(src);
        dip_image_unref(dst);
        dip_image_unref(ref);
    }
}

static void sampling_of(const struct bytes *b, int *h0, int *v0, int *ncomp)
{
    struct jpeg_decompress_struct d;
    struct jpeg_error_mgr jerr;

    d.err = jpeg_std_error(&jerr);
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, b->p, b->n);
    ASSERT_EQ_INT(jpeg_read_header(&d, TRUE), JPEG_HEADER_OK);
    *ncomp = d.num_components;
    *h0 = d.comp_info[0].h_samp_factor;
    *v0 = d.comp_info[0].v_samp_factor;
    jpeg_destroy_decompress(&d);
}

TEST(subsampling_and_gray)
{
    int modes[3] = {444, 422, 420}, wanth[3] = {1, 2, 2}, wantv[3] = {1, 1, 2};
    double err444 = 0, err420 = 0;

    for (int m = 0; m < 3; m++) {
        /* 1-pixel red/blue columns: chroma detail that 4:2:x must blur. */
        dip_image *src = NULL, *dst = NULL;
        struct dip_view sv, dv;
        struct dip_err err = {0};
        struct bytes b;
        int h0, v0, nc, max;
        double mean;

        ASSERT_OK(dip_image_new(32, 32, 3, &src));
        sv = dip_image_view(src);
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) {
                uint8_t *p = sv.data + (size_t)y * sv.stride + (size_t)x * 3;
                p[0] = x % 2 ? 220 : 20;
                p[1] = 60;
                p[2] = x % 2 ? 20 : 220;
            }
        b = encode(src, 95, modes[m]);
        sampling_of(&b, &h0, &v0, &nc);
        ASSERT_EQ_INT(nc, 3);
        ASSERT_EQ_INT(h0, wanth[m]);
        ASSERT_EQ_INT(v0, wantv[m]);
        ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &dst, NULL, &err));
        dv = dip_image_view(dst);
        view_diff(&sv, &dv, &mean, &max);
        if (modes[m] == 444)
            err444 = mean;
        if (modes[m] == 420)
            err420 = mean;
        bytes_free(&b);
        dip_image_unref(src);
        dip_image_unref(dst);
    }
    /* 4:4:4 keeps the chroma columns (small error); 4:2:0 averages them away. */
    printf("mean error 444 %.2f, 420 %.2f\n", err444, err420);
    ASSERT(err444 < 3.0);
    ASSERT(err420 > 4 * err444);

    /* One channel gives a one-component (grayscale) JPEG. */
    {
        dip_image *g = make_image(16, 16, 1, 1);
        struct bytes b = encode(g, 90, 420);
        int h0, v0, nc;
        sampling_of(&b, &h0, &v0, &nc);
        ASSERT_EQ_INT(nc, 1);
        bytes_free(&b);
        dip_image_unref(g);
    }
}

TEST(encode_rejects_bad_options)
{
    dip_image *src = make_image(8, 8, 3, 1);
    struct dip_encode_opts eo;
    struct dip_err err = {0};
    uint8_t *enc = NULL;
    size_t n = 0;

    dip_encode_opts_default(&eo);
    eo.format = DIP_FORMAT_JPEG;
    eo.quality = 0;
    ASSERT_EQ_INT(dip_codec_encode(src, &eo, &enc, &n, &err), DIP_EINVAL);
    ASSERT_CONTAINS(err.msg, "quality");
    eo.quality = 101;
    ASSERT_EQ_INT(dip_codec_encode(src, &eo, &enc, &n, &err), DIP_EINVAL);
    eo.quality = 90;
    eo.subsampling = 411;
    ASSERT_EQ_INT(dip_codec_encode(src, &eo, &enc, &n, &err), DIP_EINVAL);
    ASSERT_CONTAINS(err.msg, "subsampling");
    ASSERT(enc == NULL);
    dip_image_unref(src);
    /* JPEG cannot hold more than 65500 pixels per side. */
    src = make_image(65501, 1, 3, 1);
    eo.subsampling = 420;
    ASSERT_EQ_INT(dip_codec_encode(src, &eo, &enc, &n, &err), DIP_EFORMAT);
    ASSERT_CONTAINS(err.msg, "65500");
    dip_image_unref(src);
}

/* ---- EXIF orientation ---- */

TEST(exif_orientation_all_eight)
{
    /* 24x16: four flat 8x8-aligned colour blocks, so that each quadrant is recognisable. */
    static const uint8_t col[4][3] = {{250, 10, 10}, {10, 250, 10}, {10, 10, 250}, {240, 240, 20}};
    int w = 24, h = 16;
    uint8_t *px = malloc((size_t)w * (size_t)h * 3);

    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            memcpy(px + ((size_t)y * (size_t)w + (size_t)x) * 3, col[(y >= 8) * 2 + (x >= 16)], 3);
    for (int o = 1; o <= 8; o++) {
        uint8_t exif[64];
        size_t ne = make_exif(exif, o, o % 2);
        struct jw s = {w, h, 3, JCS_RGB, JCS_UNKNOWN, 95, 0, 0, 0, 444, exif, ne, 0};
        struct bytes b = write_jpeg(&s, px);
        struct dip_image_info info;
        struct dip_limits lim;
        struct dip_err err = {0};
        dip_image *raw = NULL, *rot = NULL;
        int swap = o >= 5;

        dip_limits_default(&lim);
        ASSERT_OK(dip_codec_probe(b.p, b.n, &lim, &info, &err));
        ASSERT_EQ_INT(info.orientation, o);
        ASSERT_OK(decode_with(b.p, b.n, NULL, 0, &raw, &info, &err));
        ASSERT_EQ_INT(info.orientation, o);
        ASSERT_EQ_INT(dip_image_width(raw), w);
        ASSERT_EQ_INT(dip_image_height(raw), h);
        /* The raw decode shows the stored blocks. */
        ASSERT_LE_INT(abs(pix(raw, 20, 12, 0) - 240), 8);
        ASSERT_OK(decode_with(b.p, b.n, NULL, 1, &rot, &info, &err));
        ASSERT_EQ_INT(dip_image_width(rot), swap ? h : w);
        ASSERT_EQ_INT(dip_image_height(rot), swap ? w : h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int dx, dy;
                exif_forward(o, w, h, x, y, &dx, &dy);
                for (int c = 0; c < 3; c++)
                    if (pix(rot, dx, dy, c) != pix(raw, x, y, c))
                        DIP_TEST_FAIL("orientation %d: stored (%d,%d) should show at (%d,%d)", o, x,
                                      y, dx, dy);
            }
        bytes_free(&b);
        dip_image_unref(raw);
        dip_image_unref(rot);
    }
    free(px);
}

/* ---- CMYK and YCCK ---- */

/* 32x32 of sixteen flat 8x8 patches of CMYK values. */
static uint8_t *cmyk_patches(void)
{
    static const uint8_t v[16][4] = {
        {255, 255, 255, 255}, {0, 0, 0, 0},         {255, 0, 0, 255},     {0, 255, 0, 255},
        {0, 0, 255, 255},     {128, 128, 128, 255}, {255, 255, 255, 128}, {200, 100, 50, 230},
        {30, 60, 90, 200},    {250, 250, 10, 100},  {10, 250, 250, 180},  {64, 32, 16, 240},
        {180, 180, 180, 60},  {90, 200, 30, 250},   {255, 128, 0, 160},   {5, 5, 250, 20},
    };
    uint8_t *p = malloc(32 * 32 * 4);

    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++)
            memcpy(p + (y * 32 + x) * 4, v[(y / 8) * 4 + x / 8], 4);
    return p;
}

/* Decodes a CMYK-family JPEG and compares with want(c, m, y, k) per pixel. Tolerance: the
 * file is written at quality 100 without subsampling; an error of e in C and K each moves the
 * product by about 2e, so max <= 8 and mean <= 2. */
static void check_cmyk(const struct bytes *b, const uint8_t *cmyk, int inverted, const char *color)
{
    struct dip_image_info info;
    struct dip_err err = {0};
    struct dip_limits lim;
    dip_image *img = NULL;
    double sum = 0;
    int max = 0;

    dip_limits_default(&lim);
    ASSERT_OK(dip_codec_probe(b->p, b->n, &lim, &info, &err));
    ASSERT_EQ_STR(info.color, color);
    ASSERT_EQ_INT(info.channels, 3);
    ASSERT_OK(decode_with(b->p, b->n, NULL, 1, &img, &info, &err));
    ASSERT_EQ_INT(dip_image_channels(img), 3);
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) {
            const uint8_t *s = cmyk + (y * 32 + x) * 4;
            /* Inverted (Adobe) data: 255 = no ink. Plain data: 0 = no ink. */
            int k = inverted ? s[3] : 255 - s[3];
            for (int c = 0; c < 3; c++) {
                int ink = inverted ? s[c] : 255 - s[c];
                int want = (ink * k + 127) / 255;
                int d = abs(pix(img, x, y, c) - want);
                sum += d;
                if (d > max)
                    max = d;
            }
        }
    printf("%s (%s): mean %.3f max %d\n", color, inverted ? "inverted" : "plain",
           sum / (32 * 32 * 3), max);
    ASSERT_LE_INT(max, 8);
    ASSERT(sum / (32 * 32 * 3) <= 2.0);
    dip_image_unref(img);
}

TEST(cmyk_adobe_inverted)
{
    uint8_t *p = cmyk_patches();
    struct jw s = {32, 32, 4, JCS_CMYK, JCS_UNKNOWN, 100, 0, 0, 0, 444, NULL, 0, 0};
    struct bytes b = write_jpeg(&s, p);

    /* libjpeg writes the Adobe marker for CMYK: the values are read as inverted. */
    check_cmyk(&b, p, 1, "cmyk");
    bytes_free(&b);
    free(p);
}

TEST(cmyk_without_adobe_marker_is_plain)
{
    uint8_t *p = cmyk_patches();
    struct jw s = {32, 32, 4, JCS_CMYK, JCS_UNKNOWN, 100, 0, 0, 1, 444, NULL, 0, 0};
    struct bytes b = write_jpeg(&s, p);

    check_cmyk(&b, p, 0, "cmyk");
    bytes_free(&b);
    free(p);
}

TEST(ycck)
{
    uint8_t *p = cmyk_patches();
    struct jw s = {32, 32, 4, JCS_CMYK, JCS_YCCK, 100, 0, 0, 0, 444, NULL, 0, 0};
    struct bytes b = write_jpeg(&s, p);

    check_cmyk(&b, p, 1, "ycck");
    bytes_free(&b);
    free(p);
}

/* ---- Progressive ---- */

static struct bytes photo_like_arith(int progressive, int arith, int w, int h, uint8_t **pixels_out)
{
    dip_image *src = make_image(w, h, 3, 0);
    uint8_t *px = pixels_of(src);
    struct jw s = {w, h, 3, JCS_RGB, JCS_UNKNOWN, 85, progressive, arith, 0, 420, NULL, 0, 0};
    struct bytes b = write_jpeg(&s, px);

    dip_image_unref(src);
    if (pixels_out)
        *pixels_out = px;
    else
        free(px);
    return b;
}

static struct bytes photo_like(int progressive, int w, int h, uint8_t **pixels_out)
{
    return photo_like_arith(progressive, 0, w, h, pixels_out);
}

TEST(progressive_decodes_like_baseline)
{
    /* Progressive and baseline code the same quantised coefficients: same pixels. */
    struct bytes base = photo_like(0, 61, 47, NULL), prog = photo_like(1, 61, 47, NULL);
    struct dip_image_info ib, ip;
    struct dip_err err = {0};
    dip_image *a = NULL, *b = NULL;
    struct dip_view av, bv;

    ASSERT_OK(decode_with(base.p, base.n, NULL, 1, &a, &ib, &err));
    ASSERT_OK(decode_with(prog.p, prog.n, NULL, 1, &b, &ip, &err));
    ASSERT_EQ_INT(ib.progressive, 0);
    ASSERT_EQ_INT(ip.progressive, 1);
    ASSERT(count_scans(&prog) > 1);
    av = dip_image_view(a);
    bv = dip_image_view(b);
    ASSERT(dip_view_equal(&av, &bv));
    dip_image_unref(a);
    dip_image_unref(b);
    bytes_free(&base);
    bytes_free(&prog);
}

TEST(arithmetic_coding_decodes_like_huffman)
{
    /* Arithmetic and Huffman coding carry the same quantised coefficients: same pixels. */
    for (int progressive = 0; progressive < 2; progressive++) {
        struct bytes h = photo_like_arith(progressive, 0, 45, 33, NULL);
        struct bytes a = photo_like_arith(progressive, 1, 45, 33, NULL);
        struct dip_err err = {0};
        dip_image *x = NULL, *y = NULL;
        struct dip_view xv, yv;

        ASSERT_OK(decode_with(h.p, h.n, NULL, 1, &x, NULL, &err));
        ASSERT_OK(decode_with(a.p, a.n, NULL, 1, &y, NULL, &err));
        xv = dip_image_view(x);
        yv = dip_image_view(y);
        ASSERT(dip_view_equal(&xv, &yv));
        sweep_truncations(a.p, a.n, 7, 0);
        dip_image_unref(x);
        dip_image_unref(y);
        bytes_free(&h);
        bytes_free(&a);
    }
}

TEST(scan_limit_refused_with_limit_named)
{
    struct bytes prog = photo_like(1, 40, 40, NULL);
    int scans = count_scans(&prog);
    struct dip_limits lim;
    struct dip_err err = {0};
    dip_image *img = NULL;

    dip_limits_default(&lim);
    lim.max_jpeg_scans = scans;
    ASSERT_OK(decode_with(prog.p, prog.n, &lim, 1, &img, NULL, &err));
    dip_image_unref(img);
    img = NULL;
    lim.max_jpeg_scans = scans - 1;
    ASSERT_EQ_INT(decode_with(prog.p, prog.n, &lim, 1, &img, NULL, &err), DIP_ELIMIT);
    ASSERT(img == NULL);
    ASSERT_CONTAINS(err.msg, "jpeg");
    ASSERT_CONTAINS(err.msg, "max_jpeg_scans");
    lim.max_jpeg_scans = 1;
    ASSERT_EQ_INT(decode_with(prog.p, prog.n, &lim, 1, &img, NULL, &err), DIP_ELIMIT);
    /* Probe counts the scans too, without decoding. */
    {
        struct dip_image_info info;
        lim.max_jpeg_scans = scans;
        ASSERT_OK(dip_codec_probe(prog.p, prog.n, &lim, &info, &err));
        lim.max_jpeg_scans = scans - 1;
        ASSERT_EQ_INT(dip_codec_probe(prog.p, prog.n, &lim, &info, &err), DIP_ELIMIT);
        ASSERT_CONTAINS(err.msg, "max_jpeg_scans");
    }
    bytes_free(&prog);
}

/* ---- Limits, warnings, truncation ---- */

TEST(dimension_and_metadata_limits)
{
    uint8_t exif[64];
    size_t ne = make_exif(exif, 3, 0);
    dip_image *src = make_image(64, 20, 3, 1);
    uint8_t *px = pixels_of(src);
    struct jw s = {64, 20, 3, JCS_RGB, JCS_UNKNOWN, 90, 0, 0, 0, 420, exif, ne, 2000};
    struct bytes b = write_jpeg(&s, px);
    struct dip_limits lim;
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img = NULL;

    dip_limits_default(&lim);
    ASSERT_OK(decode_with(b.p, b.n, &lim, 0, &img, &info, &err));
    ASSERT_EQ_INT(info.orientation, 3);
    dip_image_unref(img);
    img = NULL;
    lim.max_metadata_bytes = 1000;
    ASSERT_EQ_INT(decode_with(b.p, b.n, &lim, 1, &img, NULL, &err), DIP_ELIMIT);
    ASSERT_CONTAINS(err.msg, "max_metadata_bytes=1000");
    ASSERT_EQ_INT(dip_codec_probe(b.p, b.n, &lim, &info, &err), DIP_ELIMIT);
    dip_limits_default(&lim);
    lim.max_width = 63;
    ASSERT_EQ_INT(decode_with(b.p, b.n, &lim, 1, &img, NULL, &err), DIP_ELIMIT);
    ASSERT_CONTAINS(err.msg, "jpeg: width 64 exceeds the limit max_width=63");
    ASSERT_EQ_INT(dip_codec_probe(b.p, b.n, &lim, &info, &err), DIP_ELIMIT);
    bytes_free(&b);
    free(px);
    dip_image_unref(src);
}

TEST(lying_dimensions_refused_before_allocation)
{
    /* A 24x24 JPEG whose SOF is edited to claim 8000x8000 (within the default limits). */
    for (int progressive = 0; progressive < 2; progressive++) {
        struct bytes b = photo_like(progressive, 24, 24, NULL);
        struct dip_err err = {0};
        dip_image *img = NULL;
        size_t sof = 0;
        long before;

        for (size_t i = 2; i + 9 < b.n && !sof; i++)
            if (b.p[i] == 0xff && (b.p[i + 1] == 0xc0 || b.p[i + 1] == 0xc2))
                sof = i;
        ASSERT(sof > 0);
        b.p[sof + 5] = 8000 >> 8;
        b.p[sof + 6] = 8000 & 0xff;
        b.p[sof + 7] = 8000 >> 8;
        b.p[sof + 8] = 8000 & 0xff;
        before = dip__alloc_count();
        ASSERT_EQ_INT(decode_with(b.p, b.n, NULL, 1, &img, NULL, &err), DIP_ECORRUPT);
        ASSERT_CONTAINS(err.msg, "8000x8000");
        ASSERT_EQ_INT(dip__alloc_count(), before);
        bytes_free(&b);
    }
}

TEST(unsupported_precision_is_eformat)
{
    /* A 12-bit SOF: valid JPEG, but not decodable by an 8-bit libjpeg. */
    struct bytes b = photo_like(0, 16, 16, NULL);
    struct dip_err err = {0};
    dip_image *img = NULL;
    size_t sof = 0;

    for (size_t i = 2; i + 9 < b.n && !sof; i++)
        if (b.p[i] == 0xff && b.p[i + 1] == 0xc0)
            sof = i;
    ASSERT(sof > 0);
    ASSERT_EQ_INT(b.p[sof + 4], 8);
    b.p[sof + 4] = 12;
    ASSERT_EQ_INT(decode_with(b.p, b.n, NULL, 1, &img, NULL, &err), DIP_EFORMAT);
    ASSERT_CONTAINS(err.msg, "precision 12");
    bytes_free(&b);
}

TEST(warnings_are_errors)
{
    struct bytes b = photo_like(0, 32, 32, NULL), c = {0};
    struct dip_err err = {0};
    dip_image *img = NULL;

    /* Garbage bytes before EOI: libjpeg only warns ("extraneous bytes before marker"). */
    ASSERT(b.p[b.n - 2] == 0xff && b.p[b.n - 1] == 0xd9);
    bytes_put(&c, b.p, b.n - 2);
    bytes_put(&c, "\x12\x34\x56", 3);
    bytes_put(&c, "\xff\xd9", 2);
    ASSERT_EQ_INT(decode_with(c.p, c.n, NULL, 1, &img, NULL, &err), DIP_ECORRUPT);
    ASSERT(img == NULL);
    ASSERT_CONTAINS(err.msg, "jpeg: ");
    bytes_free(&b);
    bytes_free(&c);
}

TEST(truncation_at_every_offset)
{
    struct bytes base = photo_like(0, 24, 24, NULL), prog = photo_like(1, 24, 24, NULL);
    struct dip_err err = {0};
    dip_image *img = NULL;

    sweep_truncations(base.p, base.n, 1, 0);
    sweep_truncations(prog.p, prog.n, 1, 0);
    /* The message says where the data ended. */
    ASSERT_EQ_INT(decode_with(base.p, base.n - 10, NULL, 1, &img, NULL, &err), DIP_ECORRUPT);
    {
        char want[64];
        snprintf(want, sizeof(want), "jpeg: premature end of data after %zu bytes", base.n - 10);
        ASSERT_CONTAINS(err.msg, want);
    }
    bytes_free(&base);
    bytes_free(&prog);
}

TEST(probe_reads_header_only)
{
    struct bytes b = photo_like(1, 50, 30, NULL);
    struct dip_image_info info;
    struct dip_limits lim;
    struct dip_err err = {0};
    size_t sos = 0;

    /* Cut just after the first SOS marker: the header is complete, the pixels are not. */
    for (size_t i = 0; i + 1 < b.n; i++)
        if (b.p[i] == 0xff && b.p[i + 1] == 0xda) {
            sos = i;
            break;
        }
    ASSERT(sos > 0);
    dip_limits_default(&lim);
    ASSERT_OK(dip_codec_probe(b.p, sos + 14, &lim, &info, &err));
    ASSERT_EQ_INT(info.width, 50);
    ASSERT_EQ_INT(info.height, 30);
    ASSERT_EQ_INT(info.channels, 3);
    ASSERT_EQ_INT(info.bit_depth, 8);
    ASSERT_EQ_INT(info.progressive, 1);
    ASSERT_EQ_INT(info.frames, 1);
    ASSERT_EQ_INT(info.orientation, 1);
    ASSERT_EQ_STR(info.color, "ycbcr");
    bytes_free(&b);
}

/* A CMYK JPEG with EXIF, which dip does not write (test-sweep/jpeg sweeps dip's own files and
 * the encoder). */
TEST(out_of_memory_cmyk_exif)
{
    uint8_t exif[64];
    size_t ne = make_exif(exif, 6, 0);
    dip_image *src = make_image(30, 20, 4, 1);
    uint8_t *px = malloc(30 * 20 * 4);
    struct bytes b;

    memcpy(px, dip_image_view(src).data, 30 * 20 * 4);
    {
        struct jw s = {30, 20, 4, JCS_CMYK, JCS_UNKNOWN, 90, 0, 0, 0, 444, exif, ne, 0};
        b = write_jpeg(&s, px);
    }
    printf("%ld allocations\n", sweep_oom(b.p, b.n, DIP_FORMAT_UNKNOWN));
    bytes_free(&b);
    free(px);
    dip_image_unref(src);
}

TEST(version_string)
{
    char buf[512];

    dip_codec_versions(buf, sizeof(buf));
    ASSERT_CONTAINS(buf, "libjpeg-turbo ");
}
