/* SPDX-License-Identifier: MIT */
/* JPEG encoded in bands joined with restart markers: the file decodes to exactly the pixels of
 * one libjpeg encode with the same settings (the DCT blocks are the same; only DRI and RST
 * markers are added), for gray, 4:4:4, 4:2:2 and 4:2:0 and heights that end mid-band, and the
 * public band API (head, segments, join) gives the bytes dip_codec_encode gives. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "dip/codec.h"
#include "test.h"

static dip_image *photo(int w, int h, int ch)
{
    dip_image *img = NULL;
    struct dip_view v;
    uint32_t s = 3;

    ASSERT_OK(dip_image_new(w, h, ch, &img));
    v = dip_image_view(img);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * ch; x++) {
            s = s * 1664525u + 1013904223u;
            v.data[(size_t)y * v.stride + (size_t)x] =
                (uint8_t)((x / 3 + y * 2) % 200 + (s >> 28) + (((x / 40) ^ (y / 30)) & 1) * 40);
        }
    return img;
}

/* One plain libjpeg encode, as the codec did before bands (standard tables). */
static uint8_t *one_encode(const dip_image *img, int quality, int sub, unsigned long *len)
{
    struct jpeg_compress_struct e;
    struct jpeg_error_mgr jerr;
    struct dip_view v = dip_image_view(img);
    unsigned char *mem = NULL;

    e.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&e);
    jpeg_mem_dest(&e, &mem, len);
    e.image_width = (JDIMENSION)v.width;
    e.image_height = (JDIMENSION)v.height;
    e.input_components = v.channels;
    e.in_color_space = v.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&e);
    jpeg_set_quality(&e, quality, TRUE);
    e.optimize_coding = FALSE;
    if (v.channels == 3) {
        e.comp_info[0].h_samp_factor = sub == 444 ? 1 : 2;
        e.comp_info[0].v_samp_factor = sub == 420 ? 2 : 1;
        for (int i = 1; i < 3; i++)
            e.comp_info[i].h_samp_factor = e.comp_info[i].v_samp_factor = 1;
    }
    jpeg_start_compress(&e, TRUE);
    while (e.next_scanline < e.image_height) {
        JSAMPROW row = v.data + (size_t)e.next_scanline * v.stride;
        jpeg_write_scanlines(&e, &row, 1);
    }
    jpeg_finish_compress(&e);
    jpeg_destroy_compress(&e);
    return mem;
}

static dip_image *decode(const uint8_t *p, size_t n)
{
    struct dip_limits lim;
    struct dip_err err = {0};
    dip_image *img = NULL;

    dip_limits_default(&lim);
    ASSERT_OK(dip_codec_decode(p, n, &lim, NULL, &img, NULL, &err));
    return img;
}

static int count_markers(const uint8_t *p, size_t n, uint8_t lo, uint8_t hi)
{
    int k = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == 0xFF && p[i + 1] >= lo && p[i + 1] <= hi)
            k++;
    return k;
}

TEST(jpeg_bands_decode_to_the_pixels_of_one_encode)
{
    static const struct {
        int ch, sub, w, h;
    } cases[] = {{1, 420, 333, 517}, {3, 444, 301, 300}, {3, 422, 250, 700}, {3, 420, 517, 1031}};

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        dip_image *src = photo(cases[k].w, cases[k].h, cases[k].ch), *a, *b;
        struct dip_encode_opts eo;
        struct dip_err err = {0};
        uint8_t *banded = NULL, *ref;
        size_t n = 0;
        unsigned long rn = 0;
        struct dip_view va, vb;
        int rows, bands;

        dip_encode_opts_default(&eo);
        eo.format = DIP_FORMAT_JPEG;
        eo.subsampling = cases[k].sub;
        ASSERT_OK(dip_codec_encode(src, &eo, &banded, &n, &err));
        rows = dip_jpeg_band_rows(cases[k].w, cases[k].ch, &eo);
        bands = (cases[k].h + rows - 1) / rows;
        ASSERT(bands >= 2);
        ASSERT_EQ_INT(count_markers(banded, n, 0xD0, 0xD7), bands - 1);
        ASSERT_EQ_INT(count_markers(banded, n, 0xDD, 0xDD), 1); /* DRI */
        ref = one_encode(src, eo.quality, eo.subsampling, &rn);
        a = decode(banded, n);
        b = decode(ref, rn);
        va = dip_image_view(a);
        vb = dip_image_view(b);
        ASSERT(dip_view_equal(&va, &vb));
        dip_image_unref(a);
        dip_image_unref(b);
        free(ref);
        dip_free(banded);
        dip_image_unref(src);
    }
}

TEST(jpeg_band_api_gives_the_codec_bytes)
{
    dip_image *src = photo(640, 500, 3);
    struct dip_view v = dip_image_view(src);
    struct dip_encode_opts eo;
    struct dip_err err = {0};
    uint8_t *whole = NULL, *head = NULL, *joined = NULL, *segs[16];
    size_t n = 0, hn = 0, jn = 0, lens[16];
    int rows, nb;

    dip_encode_opts_default(&eo);
    eo.format = DIP_FORMAT_JPEG;
    ASSERT_OK(dip_codec_encode(src, &eo, &whole, &n, &err));
    rows = dip_jpeg_band_rows(v.width, v.channels, &eo);
    nb = (v.height + rows - 1) / rows;
    ASSERT(nb >= 2 && nb <= 16);
    ASSERT_OK(dip_jpeg_encode_head(v.width, v.height, v.channels, &eo, &head, &hn, &err));
    /* Bands encoded out of order, as strips arriving from workers would be. */
    for (int i = nb - 1; i >= 0; i--) {
        struct dip_rect r = {0, i * rows, v.width,
                             v.height - i * rows < rows ? v.height - i * rows : rows};
        struct dip_view b = dip_view_sub(&v, r);
        ASSERT_OK(dip_jpeg_encode_band(&b, &eo, &segs[i], &lens[i], &err));
    }
    ASSERT_OK(dip_jpeg_join(head, hn, (const uint8_t *const *)segs, lens, (size_t)nb, &joined, &jn,
                            &err));
    ASSERT_EQ_INT((long long)jn, (long long)n);
    ASSERT(memcmp(joined, whole, n) == 0);
    for (int i = 0; i < nb; i++)
        dip_free(segs[i]);
    dip_free(joined);
    dip_free(head);
    dip_free(whole);
    dip_image_unref(src);
}

static dip_image *decode_pool(const uint8_t *p, size_t n, dip_pool *pool, int *rc)
{
    struct dip_limits lim;
    struct dip_decode_opts o;
    struct dip_err err = {0};
    dip_image *img = NULL;

    dip_limits_default(&lim);
    dip_decode_opts_default(&o);
    o.pool = pool;
    *rc = dip_codec_decode(p, n, &lim, &o, &img, NULL, &err);
    return img;
}

/* Files with restart markers (dip's banded ones) decoded in bands on a pool: the pixels of a
 * plain decode, for gray, 4:4:4, 4:2:2 and 4:2:0 (fancy chroma upsampling across band edges);
 * a file without restart markers decodes the plain way; damage inside a band is refused as the
 * plain decode refuses it. */
TEST(jpeg_decode_in_bands_gives_the_plain_pixels)
{
    static const struct {
        int ch, sub, w, h;
    } cases[] = {{1, 420, 333, 517}, {3, 444, 301, 300}, {3, 422, 250, 700}, {3, 420, 517, 1031}};
    dip_pool *pool = NULL;

    ASSERT_OK(dip_pool_new(3, &pool));
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        dip_image *src = photo(cases[k].w, cases[k].h, cases[k].ch), *a, *b;
        struct dip_encode_opts eo;
        struct dip_err err = {0};
        uint8_t *enc = NULL, *plain;
        size_t n = 0;
        unsigned long pn = 0;
        struct dip_view va, vb;
        int rc1, rc2;

        dip_encode_opts_default(&eo);
        eo.format = DIP_FORMAT_JPEG;
        eo.subsampling = cases[k].sub;
        ASSERT_OK(dip_codec_encode(src, &eo, &enc, &n, &err));
        a = decode_pool(enc, n, pool, &rc1);
        b = decode_pool(enc, n, NULL, &rc2);
        ASSERT_OK(rc1);
        ASSERT_OK(rc2);
        va = dip_image_view(a);
        vb = dip_image_view(b);
        ASSERT(dip_view_equal(&va, &vb));
        dip_image_unref(a);
        dip_image_unref(b);
        /* No restart markers: the plain way, same pixels. */
        plain = one_encode(src, eo.quality, eo.subsampling, &pn);
        a = decode_pool(plain, pn, pool, &rc1);
        b = decode_pool(plain, pn, NULL, &rc2);
        ASSERT_OK(rc1);
        ASSERT_OK(rc2);
        va = dip_image_view(a);
        vb = dip_image_view(b);
        ASSERT(dip_view_equal(&va, &vb));
        dip_image_unref(a);
        dip_image_unref(b);
        free(plain);
        /* A marker inside the second band's data: both ways refuse or give the same pixels. */
        {
            size_t at = n / 2;
            while (at < n - 4 && enc[at] == 0xFF)
                at++;
            enc[at] = 0xFF;
            enc[at + 1] = 0xC4; /* a DHT marker where entropy data should be */
            a = decode_pool(enc, n, pool, &rc1);
            b = decode_pool(enc, n, NULL, &rc2);
            ASSERT_EQ_INT(rc1, rc2);
            if (rc1 == 0) {
                va = dip_image_view(a);
                vb = dip_image_view(b);
                ASSERT(dip_view_equal(&va, &vb));
            }
            dip_image_unref(a);
            dip_image_unref(b);
        }
        dip_free(enc);
        dip_image_unref(src);
    }
    dip_pool_free(pool);
}
