/* SPDX-License-Identifier: MIT */
/* PNM codec: round trips, every magic number P1..P7, maxval rescaling with rounding (checked
 * against values computed here), comments, hostile headers, truncation and limits. */
#include <stdio.h>

#include "codec-util.h"
#include "codec/internal.h"
#include "test.h"

static uint8_t expect8(unsigned v, unsigned maxval)
{
    return (uint8_t)((v * 255u + maxval / 2u) / maxval);
}

static dip_image *decode_ok(const void *buf, size_t len, struct dip_image_info *info)
{
    dip_image *img = NULL;
    struct dip_err err = {0};
    int rc = decode_with(buf, len, NULL, 0, &img, info, &err);

    if (rc)
        DIP_TEST_FAIL("decode failed: %s", dip_err_text(&err, rc));
    ASSERT_EQ_INT(info->format, DIP_FORMAT_PNM);
    return img;
}

TEST(pnm_roundtrip_gray_and_rgb)
{
    for (int ch = 1; ch <= 3; ch += 2) {
        dip_image *img = seeded_image(37, 23, ch, 1), *back;
        struct dip_image_info info;
        uint8_t *buf;
        size_t len;

        encode_to(img, DIP_FORMAT_PNM, 90, 0, &buf, &len);
        ASSERT(memcmp(buf, ch == 1 ? "P5" : "P6", 2) == 0);
        back = decode_ok(buf, len, &info);
        assert_same_pixels(img, back);
        ASSERT_EQ_INT(info.bit_depth, 8);
        ASSERT_EQ_INT(info.channels, ch);
        dip_image_unref(back);
        dip_image_unref(img);
        dip_free(buf);
    }
}

TEST(pnm_encode_drops_alpha)
{
    for (int ch = 2; ch <= 4; ch += 2) {
        dip_image *img = seeded_image(16, 9, ch, 2), *back;
        struct dip_image_info info;
        uint8_t *buf;
        size_t len;

        encode_to(img, DIP_FORMAT_PNM, 90, 0, &buf, &len);
        back = decode_ok(buf, len, &info);
        ASSERT_EQ_INT(dip_image_channels(back), ch - 1);
        for (int y = 0; y < 9; y++)
            for (int x = 0; x < 16; x++)
                for (int c = 0; c < ch - 1; c++)
                    ASSERT_EQ_INT(pixel_at(back, x, y, c), pixel_at(img, x, y, c));
        dip_image_unref(back);
        dip_image_unref(img);
        dip_free(buf);
    }
}

TEST(pnm_p1_ascii_bitmap_with_comments)
{
    /* PBM: 1 is black; digits may run together; comments anywhere in the header. */
    const char *f = "P1\n# a comment\n4 # width\n2\n0 1 0 1\n1100";
    struct dip_image_info info;
    dip_image *img = decode_ok(f, strlen(f), &info);
    static const uint8_t want[8] = {255, 0, 255, 0, 0, 0, 255, 255};

    ASSERT_EQ_INT(info.bit_depth, 1);
    ASSERT_EQ_INT(dip_image_channels(img), 1);
    for (int i = 0; i < 8; i++)
        ASSERT_EQ_INT(pixel_at(img, i % 4, i / 4, 0), want[i]);
    dip_image_unref(img);
}

TEST(pnm_p4_binary_bitmap_row_padding)
{
    /* 10 pixels per row: two bytes, the last 6 bits are padding. */
    static const uint8_t px[] = {0xA5, 0xC0, 0x01, 0x40};
    struct bytes b = {0};
    struct dip_image_info info;
    dip_image *img;

    bytes_str(&b, "P4\n10 2\n");
    bytes_put(&b, px, sizeof(px));
    img = decode_ok(b.p, b.n, &info);
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 10; x++) {
            int bit = (px[y * 2 + x / 8] >> (7 - x % 8)) & 1;
            ASSERT_EQ_INT(pixel_at(img, x, y, 0), bit ? 0 : 255);
        }
    dip_image_unref(img);
    free(b.p);
}

TEST(pnm_p2_p3_ascii_rescale)
{
    const unsigned maxval = 1000;
    struct bytes b = {0};
    char line[64];
    struct dip_image_info info;
    dip_image *img;

    snprintf(line, sizeof(line), "P2\n7 3\n%u\n", maxval);
    bytes_str(&b, line);
    for (int i = 0; i < 21; i++) {
        snprintf(line, sizeof(line), "%u%s", (unsigned)(i * 47 + 3) % (maxval + 1),
                 i % 7 == 6 ? "\n" : " ");
        bytes_str(&b, line);
    }
    img = decode_ok(b.p, b.n, &info);
    ASSERT_EQ_INT(info.bit_depth, 10);
    for (int i = 0; i < 21; i++)
        ASSERT_EQ_INT(pixel_at(img, i % 7, i / 7, 0), expect8((unsigned)(i * 47 + 3) % 1001, 1000));
    dip_image_unref(img);

    b.n = 0;
    bytes_str(&b, "P3 2 1 7 0 1 2 3 4 7\n");
    img = decode_ok(b.p, b.n, &info);
    ASSERT_EQ_INT(info.channels, 3);
    for (int i = 0; i < 6; i++)
        ASSERT_EQ_INT(pixel_at(img, i / 3, 0, i % 3), expect8(i == 5 ? 7 : (unsigned)i, 7));
    ASSERT_EQ_INT(pixel_at(img, 1, 0, 2), 255);
    dip_image_unref(img);
    free(b.p);
}

TEST(pnm_p5_16bit_rounding)
{
    /* Every 16-bit value through maxval 65535, and a 12-bit maxval: the same rounding rule,
     * v8 = (v * 255 + maxval / 2) / maxval. */
    static const unsigned maxvals[] = {65535, 4095, 256};
    for (size_t m = 0; m < sizeof(maxvals) / sizeof(maxvals[0]); m++) {
        unsigned maxval = maxvals[m], w = 256, h = maxval / 256 + 1;
        struct bytes b = {0};
        char head[64];
        struct dip_image_info info;
        dip_image *img;

        snprintf(head, sizeof(head), "P5\n%u %u\n%u\n", w, h, maxval);
        bytes_str(&b, head);
        for (unsigned i = 0; i < w * h; i++) {
            unsigned v = i <= maxval ? i : maxval;
            bytes_u8(&b, v >> 8);
            bytes_u8(&b, v & 255);
        }
        img = decode_ok(b.p, b.n, &info);
        ASSERT_EQ_INT(info.bit_depth, maxval == 65535 ? 16 : maxval == 4095 ? 12 : 9);
        for (unsigned i = 0; i < w * h; i++) {
            unsigned v = i <= maxval ? i : maxval;
            uint8_t got = pixel_at(img, (int)(i % w), (int)(i / w), 0);
            if (got != expect8(v, maxval))
                DIP_TEST_FAIL("maxval %u: %u -> %u, want %u", maxval, v, got, expect8(v, maxval));
        }
        /* Spot checks of the rule itself at 16 bits. */
        if (maxval == 65535) {
            ASSERT_EQ_INT(expect8(128, 65535), 0);
            ASSERT_EQ_INT(expect8(129, 65535), 1);
            ASSERT_EQ_INT(expect8(65535, 65535), 255);
        }
        dip_image_unref(img);
        free(b.p);
    }
}

TEST(pnm_p6_small_maxval)
{
    struct bytes b = {0};
    struct dip_image_info info;
    dip_image *img;

    bytes_str(&b, "P6\n# made by hand\n3 1 100\n");
    for (unsigned i = 0; i < 9; i++)
        bytes_u8(&b, i * 12);
    img = decode_ok(b.p, b.n, &info);
    for (unsigned i = 0; i < 9; i++)
        ASSERT_EQ_INT(pixel_at(img, (int)i / 3, 0, (int)i % 3), expect8(i * 12, 100));
    dip_image_unref(img);
    free(b.p);
}

TEST(pnm_p7_pam_through_the_codec_table)
{
    /* dip_codec_sniff routes P1..P6 only; PAM is reachable through the codec entry itself. */
    struct bytes b = {0};
    struct dip_limits lim;
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img = NULL;

    bytes_str(&b, "P7\nWIDTH 2\nHEIGHT 1\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n");
    for (unsigned i = 0; i < 8; i++)
        bytes_u8(&b, 30 * i);
    dip_limits_default(&lim);
    memset(&info, 0, sizeof(info));
    ASSERT_OK(dip__codec_pnm.decode(b.p, b.n, &lim, NULL, &img, &info, &err));
    ASSERT_EQ_INT(dip_image_channels(img), 4);
    for (unsigned i = 0; i < 8; i++)
        ASSERT_EQ_INT(pixel_at(img, (int)i / 4, 0, (int)i % 4), 30 * i);
    dip_image_unref(img);
    img = NULL;
    /* DEPTH 5 is not an image dip can hold. */
    b.n = 0;
    bytes_str(&b, "P7\nWIDTH 1\nHEIGHT 1\nDEPTH 5\nMAXVAL 255\nENDHDR\n12345");
    ASSERT_EQ_INT(dip__codec_pnm.decode(b.p, b.n, &lim, NULL, &img, &info, &err), DIP_EFORMAT);
    ASSERT(img == NULL);
    free(b.p);
}

TEST(pnm_probe_reads_header_only)
{
    /* Probe needs no pixel data; decode of the same bytes is refused as truncated. */
    const char *f = "P6\n4000 3000\n65535\n";
    struct dip_limits lim;
    struct dip_image_info info;
    struct dip_err err = {0};

    dip_limits_default(&lim);
    ASSERT_OK(dip_codec_probe(f, strlen(f), &lim, &info, &err));
    ASSERT_EQ_INT(info.width, 4000);
    ASSERT_EQ_INT(info.height, 3000);
    ASSERT_EQ_INT(info.channels, 3);
    ASSERT_EQ_INT(info.bit_depth, 16);
    ASSERT_EQ_INT(info.frames, 1);
    ASSERT_EQ_STR(info.color, "rgb");
    expect_decode_fail(f, strlen(f), NULL, DIP_ECORRUPT,
                       "pnm: truncated pixel data: need 72000000 bytes, have 0");
}

TEST(pnm_refuses_bad_samples_and_headers)
{
#define BAD(x)                                                                                     \
    {                                                                                              \
        x, sizeof(x) - 1                                                                           \
    }
    static const struct {
        const char *s;
        size_t len;
    } bad[] = {
        BAD("P5\n2 1\n10\n\x05\x0b"),    /* 11 > maxval 10 */
        BAD("P2\n2 1\n10\n5 11\n"),      /* the same in ASCII */
        BAD("P5\n2 1\n0\n\x00\x00"),     /* maxval 0 */
        BAD("P5\n2 1\n70000\n\x00\x00"), /* maxval over 65535 */
        BAD("P5\n0 1\n255\n\x00"),       /* zero width */
        BAD("P5\n2 x\n255\n\x00\x00"),   /* not a number */
        BAD("P5\n2 1\n255x\x00\x00"),    /* no whitespace after maxval */
        BAD("P1\n2 1\n0 2\n"),           /* bad PBM digit */
        BAD("P2\n2 1\n255\n3 -4\n"),     /* sign */
        BAD("P5"),                       /* magic only */
        BAD("P5\n2 1\n"),                /* no maxval */
    };
#undef BAD
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_decode_fail(bad[i].s, bad[i].len, NULL, 0, NULL);
}

TEST(pnm_limits_named)
{
    const char *f = "P5\n70000 2\n255\n";
    struct dip_limits lim;

    expect_decode_fail(f, strlen(f), NULL, DIP_ELIMIT, "max_width=65535");
    dip_limits_default(&lim);
    lim.max_pixels = 1000;
    f = "P5\n100 100\n255\n";
    expect_decode_fail(f, strlen(f), &lim, DIP_ELIMIT, "max_pixels=1000");
    /* A number so long it would overflow any integer. */
    f = "P5\n99999999999999999999999999 2\n255\n";
    expect_decode_fail(f, strlen(f), NULL, DIP_ELIMIT, "max_width");
}

TEST(pnm_huge_header_tiny_file_allocates_nothing)
{
    const char *f = "P6\n9000 9000\n255\n\x01\x02\x03";
    long before = dip__alloc_count();

    expect_decode_fail(f, strlen(f), NULL, DIP_ECORRUPT, "truncated pixel data");
    ASSERT_LE_INT(dip__alloc_count() - before, 0);
}

/* The variants dip does not write (test-sweep/pnm sweeps dip's own P5 and P6 files). */
TEST(pnm_truncation_sweep)
{
    size_t tried = 0;
    struct bytes b = {0};

    /* 16-bit binary and a P4 bitmap. */
    bytes_str(&b, "P5 3 2 65535\n");
    for (int i = 0; i < 12; i++)
        bytes_u8(&b, (unsigned)i * 20);
    tried += sweep_truncations(b.p, b.n, 1, 0);
    b.n = 0;
    bytes_str(&b, "P4 12 3\n\xff\xf0\x0f\x00\xaa\x50");
    tried += sweep_truncations(b.p, b.n, 1, 0);
    /* ASCII: a cut inside the last number still leaves a (different) complete number, so only
     * prefixes that lose at least the whole last token must fail. */
    b.n = 0;
    bytes_str(&b, "P2\n3 2\n255\n0 10 200\n30 40 255\n");
    tried += sweep_truncations(b.p, b.n, 1, 4);
    b.n = 0;
    bytes_str(&b, "P1\n3 2\n0 1 0\n1 1 0\n");
    tried += sweep_truncations(b.p, b.n, 1, 2);
    ASSERT(tried > 60);
    free(b.p);
}
