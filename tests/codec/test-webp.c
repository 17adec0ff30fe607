/* SPDX-License-Identifier: MIT */
/* WebP codec: lossless round trips byte-exact for every channel count, lossy within a stated
 * PSNR, alpha, probe facts, the first frame of an animation (made here with libwebpmux, with an
 * offset first frame on a larger canvas), frame counting and its cap, EXIF orientation, metadata
 * and dimension limits, and truncation at every offset. */
#include <math.h>
#include <stdio.h>
#include <webp/mux.h>

#include "codec-util.h"
#include "test.h"

static dip_image *decode_ok(const uint8_t *buf, size_t len, struct dip_image_info *info)
{
    dip_image *img = NULL;
    struct dip_err err = {0};
    int rc = decode_with(buf, len, NULL, 0, &img, info, &err);

    if (rc)
        DIP_TEST_FAIL("decode failed: %s", dip_err_text(&err, rc));
    ASSERT_EQ_INT(info->format, DIP_FORMAT_WEBP);
    return img;
}

/* Pixel of `src` as dip's WebP encoder stores it: gray expands to RGB, alpha stays last. */
static uint8_t expanded(const dip_image *src, int x, int y, int c)
{
    int ch = dip_image_channels(src);
    if (ch >= 3)
        return pixel_at(src, x, y, c);
    return pixel_at(src, x, y, c < 3 ? 0 : 1);
}

/* decode(encode(x)) == x, channel count included: gray and gray+alpha come back as 1 and 2
 * channels (dip's dipC chunk), RGBA as 4 even when every pixel is opaque (issue 13). */
TEST(webp_lossless_roundtrip_byte_exact)
{
    for (int k = 0; k < 6; k++) {
        /* seeded_image has fully transparent pixels too: their colour must survive (exact mode).
         * k 4 and 5: gray+alpha and RGBA with every pixel opaque. */
        int ch = k < 4 ? k + 1 : k == 4 ? 2 : 4;
        dip_image *img = seeded_image(45, 31, ch, (uint32_t)ch + 10), *back;
        int och = ch;

        if (k >= 4) {
            struct dip_view v = dip_image_view(img);
            for (int y = 0; y < v.height; y++)
                for (int x = 0; x < v.width; x++)
                    v.data[(size_t)y * v.stride + (size_t)x * (size_t)ch + (size_t)ch - 1] = 255;
        }
        struct dip_image_info info;
        uint8_t *buf;
        size_t len;

        encode_to(img, DIP_FORMAT_WEBP, 90, 1, &buf, &len);
        back = decode_ok(buf, len, &info);
        ASSERT_EQ_INT(info.lossless, 1);
        ASSERT_EQ_INT(dip_image_channels(back), och);
        ASSERT_EQ_INT(info.channels, och);
        for (int y = 0; y < 31; y++)
            for (int x = 0; x < 45; x++)
                for (int c = 0; c < och; c++)
                    ASSERT_EQ_INT(pixel_at(back, x, y, c), pixel_at(img, x, y, c));
        dip_image_unref(back);
        dip_image_unref(img);
        dip_free(buf);
    }
}

static double psnr(const dip_image *a, const dip_image *ref, int nc, int c0)
{
    double se = 0;
    int w = dip_image_width(a), h = dip_image_height(a);

    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = c0; c < c0 + nc; c++) {
                double d = (double)pixel_at(a, x, y, c) - (double)expanded(ref, x, y, c);
                se += d * d;
            }
    se /= (double)w * h * nc;
    return se == 0 ? 99.0 : 10.0 * log10(255.0 * 255.0 / se);
}

TEST(webp_lossy_within_tolerance)
{
    /* Stated tolerance: at quality 90, a smooth image comes back with PSNR >= 40 dB on colour;
     * alpha (lossless inside lossy WebP) comes back exact. */
    for (int ch = 1; ch <= 4; ch++) {
        dip_image *img = gradient_image(96, 64, ch), *back;
        struct dip_image_info info;
        uint8_t *buf;
        size_t len;
        double p;

        encode_to(img, DIP_FORMAT_WEBP, 90, 0, &buf, &len);
        back = decode_ok(buf, len, &info);
        ASSERT_EQ_INT(info.lossless, 0);
        ASSERT_EQ_STR(info.color, "ycbcr");
        p = psnr(back, img, 3, 0);
        fprintf(stderr, "%d channels: %zu bytes, PSNR %.1f dB\n", ch, len, p);
        ASSERT(p >= 40.0);
        if (ch == 2 || ch == 4)
            ASSERT(psnr(back, img, 1, 3) == 99.0);
        dip_image_unref(back);
        dip_image_unref(img);
        dip_free(buf);
    }
}

TEST(webp_probe)
{
    dip_image *img = seeded_image(70, 20, 4, 3);
    struct dip_limits lim;
    struct dip_image_info info;
    struct dip_err err = {0};
    uint8_t *buf;
    size_t len;

    encode_to(img, DIP_FORMAT_WEBP, 80, 1, &buf, &len);
    dip_limits_default(&lim);
    ASSERT_OK(dip_codec_probe(buf, len, &lim, &info, &err));
    ASSERT_EQ_INT(info.format, DIP_FORMAT_WEBP);
    ASSERT_EQ_INT(info.width, 70);
    ASSERT_EQ_INT(info.height, 20);
    ASSERT_EQ_INT(info.channels, 4);
    ASSERT_EQ_INT(info.bit_depth, 8);
    ASSERT_EQ_INT(info.frames, 1);
    ASSERT_EQ_INT(info.orientation, 1);
    ASSERT_EQ_INT(info.lossless, 1);
    ASSERT_EQ_STR(info.color, "rgb");
    dip_free(buf);
    dip_image_unref(img);
}

/* ---- Animation ---- */

/* An animation on a w x h canvas: frame i is a lossless still of frames[i], placed at
 * (xs[i], ys[i]). Returns a malloc'ed file. */
static int anim_lossy; /* frames of the next make_anim: lossy (1) or lossless (0) */

static uint8_t *make_anim(int w, int h, dip_image **frames, const int *xs, const int *ys, int n,
                          size_t *len)
{
    WebPMux *mux = WebPMuxNew();
    WebPMuxAnimParams ap = {0, 0};
    WebPData out = {NULL, 0};
    uint8_t *res;

    ASSERT(mux != NULL);
    for (int i = 0; i < n; i++) {
        uint8_t *still;
        size_t slen;
        WebPMuxFrameInfo fi;
        encode_to(frames[i], DIP_FORMAT_WEBP, 90, !anim_lossy, &still, &slen);
        memset(&fi, 0, sizeof(fi));
        fi.bitstream.bytes = still;
        fi.bitstream.size = slen;
        fi.x_offset = xs[i];
        fi.y_offset = ys[i];
        fi.duration = 100;
        fi.id = WEBP_CHUNK_ANMF;
        fi.dispose_method = WEBP_MUX_DISPOSE_NONE;
        fi.blend_method = WEBP_MUX_NO_BLEND;
        ASSERT_EQ_INT(WebPMuxPushFrame(mux, &fi, 1), WEBP_MUX_OK);
        dip_free(still);
    }
    ASSERT_EQ_INT(WebPMuxSetAnimationParams(mux, &ap), WEBP_MUX_OK);
    ASSERT_EQ_INT(WebPMuxSetCanvasSize(mux, w, h), WEBP_MUX_OK);
    ASSERT_EQ_INT(WebPMuxAssemble(mux, &out), WEBP_MUX_OK);
    WebPMuxDelete(mux);
    res = malloc(out.size);
    memcpy(res, out.bytes, out.size);
    *len = out.size;
    WebPDataClear(&out);
    return res;
}

TEST(webp_animation_first_frame_on_canvas)
{
    dip_image *f[3] = {seeded_image(20, 10, 3, 1), seeded_image(40, 30, 3, 2),
                       seeded_image(8, 8, 4, 3)};
    static const int xs[3] = {6, 0, 2}, ys[3] = {4, 0, 2};
    size_t len;
    uint8_t *buf = make_anim(40, 30, f, xs, ys, 3, &len);
    struct dip_limits lim;
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img;

    img = decode_ok(buf, len, &info);
    ASSERT_EQ_INT(info.frames, 3);
    ASSERT_EQ_INT(info.width, 40);
    ASSERT_EQ_INT(info.height, 30);
    ASSERT_EQ_INT(info.lossless, 1);
    /* The first frame does not cover the canvas: the rest is transparent black. */
    ASSERT_EQ_INT(dip_image_channels(img), 4);
    for (int y = 0; y < 30; y++)
        for (int x = 0; x < 40; x++) {
            int in = x >= 6 && x < 26 && y >= 4 && y < 14;
            for (int c = 0; c < 4; c++) {
                int want = in ? (c < 3 ? pixel_at(f[0], x - 6, y - 4, c) : 255) : 0;
                ASSERT_EQ_INT(pixel_at(img, x, y, c), want);
            }
        }
    dip_image_unref(img);
    /* As many frames as max_frames: fine. More: refused from the chunk walk, naming the limit. */
    dip_limits_default(&lim);
    lim.max_frames = 3;
    img = NULL;
    ASSERT_OK(decode_with(buf, len, &lim, 0, &img, &info, &err));
    ASSERT_EQ_INT(info.frames, 3);
    dip_image_unref(img);
    lim.max_frames = 2;
    expect_decode_fail(buf, len, &lim, DIP_ELIMIT,
                       "webp: more than 2 animation frames exceeds the limit max_frames=2");
    ASSERT_EQ_INT(dip_codec_probe(buf, len, &lim, &info, &err), DIP_ELIMIT);
    free(buf);
    for (int i = 0; i < 3; i++)
        dip_image_unref(f[i]);
}

TEST(webp_animation_full_first_frame_is_rgb)
{
    dip_image *f[2] = {seeded_image(16, 12, 3, 4), seeded_image(16, 12, 3, 5)};
    static const int xs[2] = {0, 0}, ys[2] = {0, 0};
    size_t len;
    uint8_t *buf = make_anim(16, 12, f, xs, ys, 2, &len);
    struct dip_image_info info;
    dip_image *img = decode_ok(buf, len, &info);

    ASSERT_EQ_INT(info.frames, 2);
    assert_same_pixels(img, f[0]);
    dip_image_unref(img);
    free(buf);
    dip_image_unref(f[0]);
    dip_image_unref(f[1]);
}

TEST(webp_many_frames_cost_one)
{
    /* 20000 copies of a frame: refused at once under the default max_frames=100; with the limit
     * raised, decoded fast, as the demuxer only sees the first frame. */
    dip_image *f[2] = {seeded_image(4, 4, 3, 6), seeded_image(4, 4, 3, 7)};
    static const int zero[2] = {0, 0};
    size_t len, anmf = 0, alen = 0, total;
    uint8_t *two = make_anim(4, 4, f, zero, zero, 2, &len), *big;
    struct dip_image_info info;
    struct dip_limits lim;
    struct dip_err err = {0};
    dip_image *img;
    double t0;

    for (size_t p = 12; p + 8 <= len && anmf == 0;) {
        size_t sz = (size_t)two[p + 4] | (size_t)two[p + 5] << 8 | (size_t)two[p + 6] << 16 |
                    (size_t)two[p + 7] << 24;
        if (memcmp(two + p, "ANMF", 4) == 0) {
            anmf = p;
            alen = 8 + (sz + 1) / 2 * 2;
        }
        p += 8 + (sz + 1) / 2 * 2;
    }
    ASSERT(anmf > 0);
    total = anmf + alen * 20000;
    big = malloc(total);
    memcpy(big, two, anmf);
    for (size_t i = 0; i < 20000; i++)
        memcpy(big + anmf + i * alen, two + anmf, alen);
    for (int i = 0; i < 4; i++)
        big[4 + i] = (uint8_t)((total - 8) >> (8 * i));
    expect_decode_fail(big, total, NULL, DIP_ELIMIT, "max_frames=100");
    dip_limits_default(&lim);
    lim.max_frames = 20000;
    t0 = now_s();
    img = NULL;
    ASSERT_OK(decode_with(big, total, &lim, 0, &img, &info, &err));
    printf("%zu-byte file with 20000 frames decoded in %.2f ms\n", total, (now_s() - t0) * 1e3);
    ASSERT_EQ_INT(info.frames, 20000);
    assert_same_pixels(img, f[0]);
    ASSERT(now_s() - t0 < 2.0);
    dip_image_unref(img);
    free(big);
    free(two);
    dip_image_unref(f[0]);
    dip_image_unref(f[1]);
}

/* ---- Metadata ---- */

static uint8_t *with_chunk(const uint8_t *still, size_t slen, const char *fourcc,
                           const uint8_t *data, size_t dlen, size_t *len)
{
    WebPData in = {still, slen}, chunk = {data, dlen}, out = {NULL, 0};
    WebPMux *mux = WebPMuxCreate(&in, 1);
    uint8_t *res;

    ASSERT(mux != NULL);
    ASSERT_EQ_INT(WebPMuxSetChunk(mux, fourcc, &chunk, 1), WEBP_MUX_OK);
    ASSERT_EQ_INT(WebPMuxAssemble(mux, &out), WEBP_MUX_OK);
    WebPMuxDelete(mux);
    res = malloc(out.size);
    memcpy(res, out.bytes, out.size);
    *len = out.size;
    WebPDataClear(&out);
    return res;
}

TEST(webp_exif_orientation)
{
    /* A little-endian TIFF block whose IFD0 holds Orientation = 6 (rotate 90 clockwise). */
    static const uint8_t exif[] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3,
                                   0,   1,   0,  0, 0, 6, 0, 0, 0, 0, 0,    0,    0};
    dip_image *img = seeded_image(6, 4, 3, 7), *back = NULL;
    struct dip_limits lim;
    struct dip_image_info info;
    struct dip_err err = {0};
    uint8_t *still, *buf;
    size_t slen, len;

    encode_to(img, DIP_FORMAT_WEBP, 90, 1, &still, &slen);
    buf = with_chunk(still, slen, "EXIF", exif, sizeof(exif), &len);
    dip_limits_default(&lim);
    ASSERT_OK(dip_codec_probe(buf, len, &lim, &info, &err));
    ASSERT_EQ_INT(info.orientation, 6);
    ASSERT_OK(dip_codec_decode(buf, len, &lim, NULL, &back, &info, &err));
    ASSERT_EQ_INT(dip_image_width(back), 4);
    ASSERT_EQ_INT(dip_image_height(back), 6);
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 4; x++)
            for (int c = 0; c < 3; c++)
                ASSERT_EQ_INT(pixel_at(back, x, y, c), pixel_at(img, y, 3 - x, c));
    dip_image_unref(back);
    dip_image_unref(img);
    dip_free(still);
    free(buf);
}

TEST(webp_metadata_limit_named)
{
    dip_image *img = seeded_image(8, 8, 3, 8);
    uint8_t *still, *buf, *xmp = calloc(1, 20000);
    size_t slen, len;
    struct dip_limits lim;

    encode_to(img, DIP_FORMAT_WEBP, 90, 1, &still, &slen);
    buf = with_chunk(still, slen, "XMP ", xmp, 20000, &len);
    dip_limits_default(&lim);
    lim.max_metadata_bytes = 10000;
    expect_decode_fail(buf, len, &lim, DIP_ELIMIT, "max_metadata_bytes=10000");
    dip_image_unref(img);
    dip_free(still);
    free(buf);
    free(xmp);
}

/* ---- Limits and hostile input ---- */

TEST(webp_limits_named)
{
    dip_image *img = seeded_image(300, 10, 3, 9), *f[1];
    static const int zero[1] = {0};
    struct dip_limits lim;
    uint8_t *buf, *anim;
    size_t len, alen;

    encode_to(img, DIP_FORMAT_WEBP, 90, 0, &buf, &len);
    dip_limits_default(&lim);
    lim.max_width = 200;
    expect_decode_fail(buf, len, &lim, DIP_ELIMIT,
                       "webp: width 300 exceeds the limit max_width=200");
    /* An animation canvas far larger than its frames: refused from the header. */
    f[0] = seeded_image(4, 4, 3, 1);
    anim = make_anim(16000, 16000, f, zero, zero, 1, &alen);
    {
        long before = dip__alloc_count();
        expect_decode_fail(anim, alen, NULL, DIP_ELIMIT, "max_pixels");
        ASSERT_LE_INT(dip__alloc_count() - before, 0);
    }
    free(anim);
    dip_image_unref(f[0]);
    dip_free(buf);
    dip_image_unref(img);
}

TEST(webp_lying_sizes_refused)
{
    dip_image *img = seeded_image(20, 20, 3, 11);
    uint8_t *buf;
    size_t len;

    encode_to(img, DIP_FORMAT_WEBP, 90, 0, &buf, &len);
    /* RIFF size larger than the file. */
    buf[4] = (uint8_t)(buf[4] + 100);
    expect_decode_fail(buf, len, NULL, DIP_ECORRUPT, "RIFF header says");
    buf[4] = (uint8_t)(buf[4] - 100);
    /* First chunk larger than the container. */
    buf[16] = 0xFF;
    buf[17] = 0xFF;
    expect_decode_fail(buf, len, NULL, DIP_ECORRUPT, "claims");
    dip_free(buf);
    dip_image_unref(img);
}

TEST(webp_encode_refuses_oversize)
{
    dip_image *img = NULL;
    struct dip_encode_opts o;
    struct dip_err err = {0};
    uint8_t *out = NULL;
    size_t len = 0;

    ASSERT_OK(dip_image_new(16384, 1, 3, &img));
    memset(dip_image_view(img).data, 0, 16384 * 3);
    dip_encode_opts_default(&o);
    o.format = DIP_FORMAT_WEBP;
    ASSERT_EQ_INT(dip_codec_encode(img, &o, &out, &len, &err), DIP_EFORMAT);
    ASSERT_CONTAINS(err.msg, "16383");
    ASSERT(out == NULL);
    dip_image_unref(img);
}

/* An animation, which dip does not write (test-sweep/webp sweeps dip's own lossy, lossy with
 * alpha and lossless files). */
TEST(webp_animation_truncation_sweep)
{
    dip_image *f[2] = {seeded_image(10, 8, 3, 1), seeded_image(12, 12, 4, 2)};
    static const int xs[2] = {2, 0}, ys[2] = {2, 0};
    size_t len;
    uint8_t *buf;

    buf = make_anim(12, 12, f, xs, ys, 2, &len);
    printf("%zu prefixes refused\n", sweep_truncations(buf, len, 1, 0));
    free(buf);
    dip_image_unref(f[0]);
    dip_image_unref(f[1]);
}

TEST(webp_version)
{
    char buf[512];

    dip_codec_versions(buf, sizeof(buf));
    ASSERT_CONTAINS(buf, "libwebp 1.");
}

TEST(webp_out_of_memory_animation)
{
    dip_image *f[2] = {seeded_image(10, 8, 3, 1), seeded_image(12, 12, 4, 2)};
    static const int xs[2] = {2, 0}, ys[2] = {2, 0};
    size_t len;
    uint8_t *buf = make_anim(12, 12, f, xs, ys, 2, &len);

    printf("%ld allocation sites\n", sweep_oom(buf, len, DIP_FORMAT_WEBP));
    free(buf);
    dip_image_unref(f[0]);
    dip_image_unref(f[1]);
}

TEST(webp_animation_lossy_alpha_first_frame)
{
    /* A lossy frame with alpha is an ALPH chunk plus a VP8 chunk inside ANMF. */
    dip_image *f[2] = {gradient_image(48, 32, 4), gradient_image(48, 32, 4)};
    static const int zero[2] = {0, 0};
    size_t len;
    uint8_t *buf;
    struct dip_image_info info;
    dip_image *img;

    anim_lossy = 1;
    buf = make_anim(48, 32, f, zero, zero, 2, &len);
    anim_lossy = 0;
    img = decode_ok(buf, len, &info);
    ASSERT_EQ_INT(info.lossless, 0);
    ASSERT_EQ_INT(dip_image_channels(img), 4);
    ASSERT(psnr(img, f[0], 3, 0) >= 40.0);
    ASSERT(psnr(img, f[0], 1, 3) == 99.0);
    dip_image_unref(img);
    free(buf);
    dip_image_unref(f[0]);
    dip_image_unref(f[1]);
}
