/* SPDX-License-Identifier: MIT */
/* Decoding and encoding in rows (dip_decoder_*, dip_encoder_*): for every format the rows give
 * exactly the pixels of dip_codec_decode and the encoder exactly the bytes of dip_codec_encode,
 * whatever the piece heights; JPEG, PNG and TIFF really stream (and say so), the others fall back
 * to the whole image; truncated files, failed allocations, limits and misuse give clear errors. */
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "codec-util.h"
#include "core/internal.h"
#include "test.h"

/* Piece heights cycled through: odd, tiny, and larger than a JPEG band or a TIFF strip. */
static const int pieces[] = {1, 7, 13, 64, 3, 200, 2, 129};
#define NPIECES ((int)(sizeof(pieces) / sizeof(pieces[0])))

static struct dip_limits lim_default(void)
{
    struct dip_limits l;

    dip_limits_default(&l);
    return l;
}

/* Encodes img in rows (piece heights from `start` in pieces[]) into *out. */
static int encode_rows(const dip_image *img, const struct dip_encode_opts *eo, int start,
                       uint8_t **out, size_t *len, int *streams, struct dip_err *err)
{
    struct dip_view v = dip_image_view(img);
    dip_encoder *e = NULL;
    int rc = dip_encoder_open(v.width, v.height, v.channels, eo, &e, err);

    if (rc)
        return rc;
    if (streams)
        *streams = dip_encoder_streams(e);
    for (int y = 0, i = start; rc == 0 && y < v.height; i++) {
        int n = DIP_MIN(pieces[i % NPIECES], v.height - y);
        struct dip_view r = dip_view_sub(&v, (struct dip_rect){0, y, v.width, n});
        rc = dip_encoder_write_rows(e, &r, err);
        y += n;
    }
    if (rc == 0)
        rc = dip_encoder_finish(e, out, len, err);
    dip_encoder_free(e);
    return rc;
}

/* Decodes buf in rows into a new image. */
static int decode_rows(const uint8_t *buf, size_t len, const struct dip_limits *lim, int start,
                       dip_image **out, int *streams, struct dip_err *err)
{
    struct dip_decode_opts o;
    dip_decoder *d = NULL;
    dip_image *img = NULL;
    struct dip_view v = {0};
    int rc, w, h, ch;

    *out = NULL;
    dip_decode_opts_default(&o);
    rc = dip_decoder_open(buf, len, lim, &o, &d, NULL, err);
    if (rc)
        return rc;
    if (streams)
        *streams = dip_decoder_streams(d);
    dip_decoder_dims(d, &w, &h, &ch);
    rc = dip_image_new(w, h, ch, &img);
    if (rc)
        rc = dip_err_set(err, rc, "test: no memory for the image");
    if (rc == 0)
        v = dip_image_view(img);
    for (int y = 0, i = start; rc == 0 && y < h; i++) {
        int n = DIP_MIN(pieces[i % NPIECES], h - y);
        struct dip_view r = dip_view_sub(&v, (struct dip_rect){0, y, w, n});
        rc = dip_decoder_read_rows(d, &r, err);
        y += n;
    }
    if (rc == 0)
        ASSERT_EQ_INT(dip_decoder_row(d), h);
    dip_decoder_free(d);
    if (rc == 0) {
        *out = img;
        img = NULL;
    }
    dip_image_unref(img);
    return rc;
}

static int format_streams(dip_format f)
{
    return f == DIP_FORMAT_JPEG || f == DIP_FORMAT_PNG || f == DIP_FORMAT_TIFF;
}

static void check_round(dip_format f, int w, int h, int ch, int quality)
{
    dip_image *img = make_image(w, h, ch, f == DIP_FORMAT_JPEG);
    struct dip_limits lim = lim_default();
    struct dip_encode_opts eo;
    struct dip_err err = {0};
    uint8_t *whole = NULL;
    size_t whole_len = 0;
    dip_image *ref = NULL;

    dip_encode_opts_default(&eo);
    eo.format = f;
    eo.quality = quality;
    ASSERT_OK(dip_codec_encode(img, &eo, &whole, &whole_len, &err));
    for (int start = 0; start < 3; start++) {
        uint8_t *rows = NULL;
        size_t rows_len = 0;
        int streams = -1;
        ASSERT_OK(encode_rows(img, &eo, start, &rows, &rows_len, &streams, &err));
        ASSERT_EQ_INT(streams, format_streams(f));
        if (rows_len != whole_len || memcmp(rows, whole, whole_len) != 0)
            DIP_TEST_FAIL("%s %dx%dx%d: rows encoded to %zu bytes, the whole image to %zu (or "
                          "the bytes differ)",
                          dip_format_name(f), w, h, ch, rows_len, whole_len);
        dip_free(rows);
    }
    ASSERT_OK(dip_codec_decode(whole, whole_len, &lim, NULL, &ref, NULL, &err));
    for (int start = 0; start < 3; start++) {
        dip_image *got = NULL;
        struct dip_view a, b;
        int streams = -1;
        ASSERT_OK(decode_rows(whole, whole_len, &lim, start, &got, &streams, &err));
        ASSERT_EQ_INT(streams, format_streams(f));
        a = dip_image_view(got);
        b = dip_image_view(ref);
        if (a.width != b.width || a.height != b.height || a.channels != b.channels ||
            !dip_view_equal(&a, &b))
            DIP_TEST_FAIL("%s %dx%dx%d: rows decoded differently from the whole image",
                          dip_format_name(f), w, h, ch);
        dip_image_unref(got);
    }
    dip_image_unref(ref);
    dip_free(whole);
    dip_image_unref(img);
}

TEST(jpeg_rows_are_the_whole_image_bytes_and_pixels)
{
    /* One band or less (one plain encode), several bands (restart markers), a band limit
     * reached by width (65535 MCUs per interval is not reached here, 4:2:0 MCU of 16). */
    check_round(DIP_FORMAT_JPEG, 37, 5, 3, 90);
    check_round(DIP_FORMAT_JPEG, 301, 517, 3, 90);
    check_round(DIP_FORMAT_JPEG, 256, 384, 3, 75);
    check_round(DIP_FORMAT_JPEG, 123, 300, 1, 90);
}

TEST(png_rows_are_the_whole_image_bytes_and_pixels)
{
    for (int ch = 1; ch <= 4; ch++)
        check_round(DIP_FORMAT_PNG, 61, 45, ch, 90);
    /* Several 4 MiB pieces: 1500 x 3 bytes a row, about 932 rows a piece. */
    check_round(DIP_FORMAT_PNG, 1500, 2100, 3, 90);
}

TEST(tiff_rows_are_the_whole_image_bytes_and_pixels)
{
    for (int ch = 1; ch <= 4; ch++)
        check_round(DIP_FORMAT_TIFF, 61, 45, ch, 90);
    /* Several 256 KiB strips. */
    check_round(DIP_FORMAT_TIFF, 700, 900, 3, 90);
}

TEST(other_formats_fall_back_to_the_whole_image)
{
    check_round(DIP_FORMAT_WEBP, 67, 45, 3, 90);
    check_round(DIP_FORMAT_BMP, 67, 45, 4, 90);
    check_round(DIP_FORMAT_PNM, 67, 45, 1, 90);
}

/* ---- Files dip does not write: interlaced, palette and 16-bit PNG; EXIF-rotated JPEG ---- */

static void on_write(png_structp png, png_bytep data, size_t n)
{
    bytes_put(png_get_io_ptr(png), data, n);
}

static void on_flush(png_structp png)
{
    (void)png;
}

/* A w x h PNG of colour type ctype at depth, interlaced or not, with deterministic samples. */
static struct bytes libpng_file(int w, int h, int ctype, int depth, int interlace)
{
    struct bytes b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop pi = png_create_info_struct(png);
    int spp = ctype == 0 || ctype == 3 ? 1 : ctype == 4 ? 2 : ctype == 2 ? 3 : 4;
    size_t rb = ((size_t)w * (size_t)spp * (size_t)depth + 7) / 8;
    uint8_t *rows = malloc(rb * (size_t)h);
    png_bytep *rp = malloc(sizeof(*rp) * (size_t)h);

    ASSERT(png && pi && rows && rp);
    if (setjmp(png_jmpbuf(png)))
        DIP_TEST_FAIL("libpng failed writing the test file");
    png_set_write_fn(png, &b, on_write, on_flush);
    png_set_IHDR(png, pi, (png_uint_32)w, (png_uint_32)h, depth, ctype,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (ctype == 3) {
        png_color pal[16];
        for (int i = 0; i < 16; i++)
            pal[i] = (png_color){(png_byte)(i * 16), (png_byte)(255 - i * 9), (png_byte)(i * 5)};
        png_set_PLTE(png, pi, pal, 16);
    }
    for (int y = 0; y < h; y++) {
        for (size_t i = 0; i < rb; i++)
            rows[(size_t)y * rb + i] =
                (uint8_t)(ctype == 3 ? (((y * 3 + (int)i) % 16) * (depth == 4 ? 17 : 1))
                                     : (y * 7 + (int)i * 13));
        rp[y] = rows + (size_t)y * rb;
    }
    png_write_info(png, pi);
    png_write_image(png, rp);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &pi);
    free(rows);
    free(rp);
    return b;
}

static void check_decode_same(const struct bytes *b, int want_streams)
{
    struct dip_limits lim = lim_default();
    struct dip_err err = {0};
    dip_image *ref = NULL, *got = NULL;
    struct dip_view x, y;
    int streams = -1;

    ASSERT_OK(decode_with(b->p, b->n, NULL, 1, &ref, NULL, &err));
    ASSERT_OK(decode_rows(b->p, b->n, &lim, 1, &got, &streams, &err));
    ASSERT_EQ_INT(streams, want_streams);
    x = dip_image_view(ref);
    y = dip_image_view(got);
    ASSERT(x.width == y.width && x.height == y.height && x.channels == y.channels);
    ASSERT(dip_view_equal(&x, &y));
    dip_image_unref(ref);
    dip_image_unref(got);
}

TEST(png_palette_16bit_and_interlaced_rows)
{
    struct bytes pal = libpng_file(53, 40, 3, 4, 0);
    struct bytes deep = libpng_file(53, 40, 6, 16, 0);
    struct bytes gray = libpng_file(53, 40, 0, 2, 0);
    struct bytes inter = libpng_file(53, 40, 2, 8, 1);

    check_decode_same(&pal, 1);
    check_decode_same(&deep, 1);
    check_decode_same(&gray, 1);
    check_decode_same(&inter, 0); /* Adam7: decoded whole */
    bytes_free(&pal);
    bytes_free(&deep);
    bytes_free(&gray);
    bytes_free(&inter);
}

TEST(exif_rotated_jpeg_is_decoded_whole_and_rotated)
{
    dip_image *img = make_image(40, 24, 3, 1);
    struct dip_encode_opts eo;
    struct dip_err err = {0};
    uint8_t *enc = NULL, exif[64];
    size_t n = 0, en = make_exif(exif, 6, 0);
    struct bytes b = {0};
    dip_decoder *d = NULL;
    struct dip_limits lim = lim_default();
    int w, h, ch;

    dip_encode_opts_default(&eo);
    eo.format = DIP_FORMAT_JPEG;
    ASSERT_OK(dip_codec_encode(img, &eo, &enc, &n, &err));
    bytes_put(&b, enc, 2); /* SOI, then APP1 with the EXIF block */
    bytes_u8(&b, 0xFF);
    bytes_u8(&b, 0xE1);
    bytes_be16(&b, (unsigned)en + 2);
    bytes_put(&b, exif, en);
    bytes_put(&b, enc + 2, n - 2);
    ASSERT_OK(dip_decoder_open(b.p, b.n, &lim, NULL, &d, NULL, &err));
    dip_decoder_dims(d, &w, &h, &ch);
    ASSERT_EQ_INT(w, 24);
    ASSERT_EQ_INT(h, 40);
    ASSERT_EQ_INT(dip_decoder_streams(d), 0);
    dip_decoder_free(d);
    check_decode_same(&b, 0);
    bytes_free(&b);
    dip_free(enc);
    dip_image_unref(img);
}

/* ---- Hostile input, allocation failures, limits, misuse ---- */

static struct bytes encoded(dip_format f, int w, int h, int ch)
{
    dip_image *img = make_image(w, h, ch, 0);
    struct dip_encode_opts eo;
    struct dip_err err = {0};
    uint8_t *enc = NULL;
    size_t n = 0;
    struct bytes b = {0};

    dip_encode_opts_default(&eo);
    eo.format = f;
    ASSERT_OK(dip_codec_encode(img, &eo, &enc, &n, &err));
    bytes_put(&b, enc, n);
    dip_free(enc);
    dip_image_unref(img);
    return b;
}

/* Every prefix must fail, at open or at a read, with ECORRUPT or EFORMAT and a message. */
static void truncations_in_rows(const struct bytes *b, size_t step)
{
    struct dip_limits lim = lim_default();

    for (size_t n = 0; n < b->n; n += step) {
        struct dip_err err = {0};
        uint8_t *copy = malloc(n ? n : 1); /* exactly n bytes: ASan sees a read past the end */
        dip_image *img = NULL;
        int rc;

        memcpy(copy, b->p, n);
        rc = decode_rows(copy, n, &lim, (int)n, &img, NULL, &err);
        if (rc == 0)
            DIP_TEST_FAIL("prefix of %zu of %zu bytes decoded in rows without error", n, b->n);
        ASSERT(img == NULL);
        ASSERT(err.code == rc);
        ASSERT(err.msg[0] != '\0');
        ASSERT(rc == DIP_ECORRUPT || rc == DIP_EFORMAT);
        free(copy);
    }
}

TEST(truncated_files_fail_in_rows)
{
    struct bytes j = encoded(DIP_FORMAT_JPEG, 48, 300, 3); /* three bands */
    struct bytes p = encoded(DIP_FORMAT_PNG, 48, 40, 3);
    struct bytes t = encoded(DIP_FORMAT_TIFF, 48, 40, 4);
    struct bytes i = libpng_file(20, 20, 2, 16, 0);

    truncations_in_rows(&j, 3);
    truncations_in_rows(&p, 1);
    truncations_in_rows(&t, 1);
    truncations_in_rows(&i, 1);
    bytes_free(&j);
    bytes_free(&p);
    bytes_free(&t);
    bytes_free(&i);
}

TEST(allocation_failures_in_rows)
{
    static const dip_format fmts[] = {DIP_FORMAT_JPEG, DIP_FORMAT_PNG, DIP_FORMAT_TIFF,
                                      DIP_FORMAT_BMP};
    struct dip_limits lim = lim_default();

    for (size_t k = 0; k < sizeof(fmts) / sizeof(fmts[0]); k++) {
        dip_image *img = make_image(40, 300, 3, 0);
        struct bytes b = encoded(fmts[k], 40, 300, 3);
        struct dip_encode_opts eo;
        int ok = 0;
        long n;

        dip_encode_opts_default(&eo);
        eo.format = fmts[k];
        for (n = 1; n < 2000 && !ok; n++) {
            struct dip_err err = {0};
            dip_image *got = NULL;
            int rc;
            dip__alloc_fail_after(n);
            rc = decode_rows(b.p, b.n, &lim, 0, &got, NULL, &err);
            dip__alloc_fail_after(0);
            if (rc == 0) {
                ok = 1;
                dip_image_unref(got);
            } else {
                if (rc != DIP_ENOMEM)
                    DIP_TEST_FAIL("%s: allocation %ld failing gave %s (%s)",
                                  dip_format_name(fmts[k]), n, dip_strerror(rc), err.msg);
                ASSERT(got == NULL);
            }
        }
        ASSERT(ok);
        ASSERT(n > 3); /* the decoder allocates: some of those allocations failed */
        ok = 0;
        for (n = 1; n < 2000 && !ok; n++) {
            struct dip_err err = {0};
            uint8_t *out = NULL;
            size_t len = 0;
            int rc;
            dip__alloc_fail_after(n);
            rc = encode_rows(img, &eo, 0, &out, &len, NULL, &err);
            dip__alloc_fail_after(0);
            if (rc == 0)
                ok = 1;
            else if (rc != DIP_ENOMEM)
                DIP_TEST_FAIL("%s: allocation %ld failing in the encoder gave %s (%s)",
                              dip_format_name(fmts[k]), n, dip_strerror(rc), err.msg);
            dip_free(out);
        }
        ASSERT(ok);
        ASSERT(n > 3);
        bytes_free(&b);
        dip_image_unref(img);
    }
}

TEST(limits_are_checked_at_open)
{
    static const dip_format fmts[] = {DIP_FORMAT_JPEG, DIP_FORMAT_PNG, DIP_FORMAT_TIFF,
                                      DIP_FORMAT_WEBP};

    for (size_t k = 0; k < sizeof(fmts) / sizeof(fmts[0]); k++) {
        struct bytes b = encoded(fmts[k], 64, 50, 3);
        struct dip_limits lim = lim_default();
        struct dip_err err = {0};
        dip_decoder *d = NULL;
        long before;

        lim.max_pixels = 64 * 50 - 1;
        before = dip__alloc_count();
        ASSERT_EQ_INT(dip_decoder_open(b.p, b.n, &lim, NULL, &d, NULL, &err), DIP_ELIMIT);
        ASSERT(d == NULL);
        ASSERT_CONTAINS(err.msg, "max_pixels");
        /* Refused from the header: a handful of small allocations at most, no pixels. */
        ASSERT_LE_INT(dip__alloc_count() - before, 40);
        lim = lim_default();
        lim.max_input_bytes = b.n - 1;
        ASSERT_EQ_INT(dip_decoder_open(b.p, b.n, &lim, NULL, &d, NULL, &err), DIP_ELIMIT);
        ASSERT_CONTAINS(err.msg, "max_input_bytes");
        bytes_free(&b);
    }
}

TEST(misuse_is_refused)
{
    struct bytes b = encoded(DIP_FORMAT_PNG, 30, 20, 3);
    struct dip_limits lim = lim_default();
    struct dip_encode_opts eo;
    struct dip_err err = {0};
    dip_image *img = make_image(30, 20, 3, 0), *narrow = make_image(29, 20, 3, 0);
    struct dip_view v = dip_image_view(img), nv = dip_image_view(narrow);
    dip_decoder *d = NULL;
    dip_encoder *e = NULL;
    uint8_t *out = NULL;
    size_t len = 0;

    ASSERT_OK(dip_decoder_open(b.p, b.n, &lim, NULL, &d, NULL, &err));
    ASSERT_EQ_INT(dip_decoder_read_rows(d, &nv, &err), DIP_EINVAL);
    ASSERT_OK(dip_decoder_read_rows(d, &v, &err));
    ASSERT_EQ_INT(dip_decoder_read_rows(d, &v, &err), DIP_EINVAL); /* past the last row */
    ASSERT_CONTAINS(err.msg, "past row 20");
    dip_decoder_free(d);

    dip_encode_opts_default(&eo);
    eo.format = DIP_FORMAT_JPEG;
    eo.quality = 0;
    ASSERT_EQ_INT(dip_encoder_open(30, 20, 3, &eo, &e, &err), DIP_EINVAL);
    ASSERT_CONTAINS(err.msg, "quality");
    eo.format = DIP_FORMAT_GIF;
    ASSERT_EQ_INT(dip_encoder_open(30, 20, 3, &eo, &e, &err), DIP_EFORMAT);
    eo.format = DIP_FORMAT_TIFF;
    ASSERT_OK(dip_encoder_open(30, 20, 3, &eo, &e, &err));
    ASSERT_EQ_INT(dip_encoder_write_rows(e, &nv, &err), DIP_EINVAL);
    ASSERT_EQ_INT(dip_encoder_finish(e, &out, &len, &err), DIP_EINVAL); /* rows missing */
    ASSERT_CONTAINS(err.msg, "after 0 of 20 rows");
    ASSERT_OK(dip_encoder_write_rows(e, &v, &err));
    ASSERT_OK(dip_encoder_finish(e, &out, &len, &err));
    ASSERT_EQ_INT(dip_encoder_write_rows(e, &v, &err), DIP_EINVAL);
    dip_encoder_free(e);
    dip_free(out);
    dip_image_unref(img);
    dip_image_unref(narrow);
    bytes_free(&b);
}
