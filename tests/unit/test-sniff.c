/* SPDX-License-Identifier: MIT */
/* Format sniffing from magic bytes (never from names), and format names and extensions. */
#include "dip/dip.h"
#include "test.h"

TEST(sniff_magic_bytes)
{
    ASSERT_EQ_INT(dip_codec_sniff("\x89PNG\r\n\x1a\n", 8), DIP_FORMAT_PNG);
    ASSERT_EQ_INT(dip_codec_sniff("\xff\xd8\xff\xe0", 4), DIP_FORMAT_JPEG);
    ASSERT_EQ_INT(dip_codec_sniff("RIFF\0\0\0\0WEBPVP8 ", 16), DIP_FORMAT_WEBP);
    ASSERT_EQ_INT(dip_codec_sniff("RIFF\0\0\0\0WAVEfmt ", 16), DIP_FORMAT_UNKNOWN);
    ASSERT_EQ_INT(dip_codec_sniff("II*\0", 4), DIP_FORMAT_TIFF);
    ASSERT_EQ_INT(dip_codec_sniff("MM\0*", 4), DIP_FORMAT_TIFF);
    ASSERT_EQ_INT(dip_codec_sniff("GIF89a", 6), DIP_FORMAT_GIF);
    ASSERT_EQ_INT(dip_codec_sniff("BM", 2), DIP_FORMAT_BMP);
    for (char c = '1'; c <= '7'; c++) { /* P7 is PAM */
        char m[3] = {'P', c, '\n'};
        ASSERT_EQ_INT(dip_codec_sniff(m, 3), DIP_FORMAT_PNM);
    }
    ASSERT_EQ_INT(dip_codec_sniff("P8\n", 3), DIP_FORMAT_UNKNOWN);
    ASSERT_EQ_INT(dip_codec_sniff("", 0), DIP_FORMAT_UNKNOWN);
    ASSERT_EQ_INT(dip_codec_sniff("\x89PNG", 4), DIP_FORMAT_UNKNOWN); /* too short to be sure */
}

TEST(format_names)
{
    ASSERT_EQ_INT(dip_format_from_name("JPG"), DIP_FORMAT_JPEG);
    ASSERT_EQ_INT(dip_format_from_name(".tiff"), DIP_FORMAT_TIFF);
    ASSERT_EQ_INT(dip_format_from_name("pgm"), DIP_FORMAT_PNM);
    ASSERT_EQ_INT(dip_format_from_name("exe"), DIP_FORMAT_UNKNOWN);
    ASSERT_EQ_INT(dip_format_from_path("/a.b/c"), DIP_FORMAT_UNKNOWN);
    ASSERT_EQ_INT(dip_format_from_path("/a/photo.WebP"), DIP_FORMAT_WEBP);
    ASSERT_EQ_STR(dip_format_ext(DIP_FORMAT_JPEG), "jpg");
    ASSERT(!dip_format_can_encode(DIP_FORMAT_GIF));
    ASSERT(dip_format_can_encode(DIP_FORMAT_PNM));
}
