/* SPDX-License-Identifier: MIT */
/* A bounded reader of the one EXIF field dip uses: Orientation (tag 0x0112) in IFD0 of a
 * TIFF-structured EXIF block, as carried by JPEG APP1, PNG eXIf, WebP EXIF and TIFF itself.
 * Every offset is checked against the block length before it is read, so hostile EXIF can only
 * make the answer 1 ("as stored"). It is not a general EXIF parser. */
#include <string.h>

#include "internal.h"

#define TAG_ORIENTATION 0x0112
#define TYPE_SHORT      3
#define TYPE_LONG       4

static unsigned rd16(const uint8_t *p, int big)
{
    return big ? (unsigned)p[0] << 8 | p[1] : (unsigned)p[1] << 8 | p[0];
}

static uint32_t rd32(const uint8_t *p, int big)
{
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

int dip__exif_orientation(const uint8_t *exif, size_t len)
{
    const uint8_t *t = exif;
    size_t n = len, ifd, count;
    int big;

    if (t == NULL)
        return 1;
    if (n >= 6 && memcmp(t, "Exif\0\0", 6) == 0) {
        t += 6;
        n -= 6;
    }
    if (n < 8)
        return 1;
    if (memcmp(t, "II*\0", 4) == 0)
        big = 0;
    else if (memcmp(t, "MM\0*", 4) == 0)
        big = 1;
    else
        return 1;
    /* IFD0 offset is relative to the TIFF header; it must leave room for the entry count. */
    ifd = rd32(t + 4, big);
    if (ifd < 8 || ifd > n - 2)
        return 1;
    count = rd16(t + ifd, big);
    /* Only the entries that lie wholly inside the block are looked at. */
    if (count > (n - ifd - 2) / 12)
        count = (n - ifd - 2) / 12;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *e = t + ifd + 2 + i * 12;
        unsigned tag = rd16(e, big), type = rd16(e + 2, big);
        uint32_t cnt = rd32(e + 4, big), v;

        if (tag != TAG_ORIENTATION)
            continue;
        if (cnt < 1)
            return 1;
        /* The value fits in the entry's 4-byte value field for one SHORT or LONG. */
        if (type == TYPE_SHORT)
            v = rd16(e + 8, big);
        else if (type == TYPE_LONG)
            v = rd32(e + 8, big);
        else
            return 1;
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}
