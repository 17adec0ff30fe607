/* SPDX-License-Identifier: MIT */
/* The bounded EXIF orientation reader: every value in both byte orders, with and without the
 * "Exif\0\0" prefix, and hostile blocks (truncated at every length, offsets and counts pointing
 * past the end, wrong types) that must give 1 without reading out of bounds. */
#include <stdlib.h>
#include <string.h>

#include "codec-util.h"
#include "codec/internal.h"
#include "test.h"

TEST(all_values_both_orders)
{
    for (int big = 0; big < 2; big++)
        for (int o = 1; o <= 8; o++) {
            uint8_t b[64];
            size_t n = make_exif(b, o, big);
            ASSERT_EQ_INT(dip__exif_orientation(b, n), o);
            /* Without the "Exif\0\0" prefix (PNG eXIf, TIFF). */
            ASSERT_EQ_INT(dip__exif_orientation(b + 6, n - 6), o);
        }
}

TEST(out_of_range_values_are_1)
{
    int vals[] = {0, 9, 255, 0x0106};

    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        uint8_t b[64];
        size_t n = make_exif(b, vals[i], 1);
        ASSERT_EQ_INT(dip__exif_orientation(b, n), 1);
    }
}

TEST(absent_or_garbage_is_1)
{
    uint8_t b[64];
    size_t n = make_exif(b, 6, 0);

    ASSERT_EQ_INT(dip__exif_orientation(NULL, 0), 1);
    ASSERT_EQ_INT(dip__exif_orientation((const uint8_t *)"Exif\0\0", 6), 1);
    ASSERT_EQ_INT(dip__exif_orientation((const uint8_t *)"hello world, not exif", 21), 1);
    /* The tag number changed: no orientation entry. */
    b[6 + 8 + 2 + 12] = 0x13;
    ASSERT_EQ_INT(dip__exif_orientation(b, n), 1);
}

TEST(truncated_at_every_length)
{
    for (int big = 0; big < 2; big++) {
        uint8_t b[64];
        size_t n = make_exif(b, 8, big);
        /* The Orientation entry ends 4 bytes before the end (next-IFD offset); an entry is
         * read only when all of its 12 bytes are inside the block. */
        size_t need = n - 4;
        for (size_t k = 0; k <= n; k++) {
            uint8_t *copy = malloc(k ? k : 1);
            int o;
            memcpy(copy, b, k);
            o = dip__exif_orientation(copy, k);
            ASSERT_EQ_INT(o, k >= need ? 8 : 1);
            free(copy);
        }
    }
}

TEST(hostile_offsets_and_counts)
{
    uint8_t b[64];
    size_t n = make_exif(b, 3, 1);
    uint8_t *t = b + 6;

    /* IFD0 offset past the end, at the very end, and huge. */
    memcpy(t + 4, "\x00\x00\x00\x40", 4);
    ASSERT_EQ_INT(dip__exif_orientation(b, n), 1);
    memcpy(t + 4, "\xff\xff\xff\xf0", 4);
    ASSERT_EQ_INT(dip__exif_orientation(b, n), 1);
    memcpy(t + 4, "\x00\x00\x00\x04", 4); /* inside the header */
    ASSERT_EQ_INT(dip__exif_orientation(b, n), 1);
    /* Entry count far beyond the block: only whole entries inside it are read. */
    memcpy(t + 4, "\x00\x00\x00\x08", 4);
    memcpy(t + 8, "\xff\xff", 2);
    ASSERT_EQ_INT(dip__exif_orientation(b, n), 3);
    /* Wrong type (ASCII) for Orientation. */
    t[8 + 2 + 12 + 3] = 2;
    ASSERT_EQ_INT(dip__exif_orientation(b, n), 1);
    /* LONG is accepted. */
    t[8 + 2 + 12 + 3] = 4;
    memcpy(t + 8 + 2 + 12 + 8, "\x00\x00\x00\x05", 4);
    ASSERT_EQ_INT(dip__exif_orientation(b, n), 5);
    /* Count 0. */
    memcpy(t + 8 + 2 + 12 + 4, "\x00\x00\x00\x00", 4);
    ASSERT_EQ_INT(dip__exif_orientation(b, n), 1);
}
