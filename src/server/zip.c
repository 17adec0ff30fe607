/* SPDX-License-Identifier: MIT */
/* The pieces of a zip archive with stored (uncompressed) entries, written from PKWARE's APPNOTE:
 * CRC-32, local headers, central directory records and the end record. The server streams
 * archive.zip from these, one entry at a time. No zip64: the caller keeps archives under 4 GiB
 * and 65535 entries. */
#include <string.h>

#include "server/internal.h"

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t dip__crc32(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;

    pthread_once(&crc_once, crc_init);
    crc = ~crc;
    while (len-- > 0)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

/* 1980-01-01 00:00: archives are reproducible byte for byte. */
#define DOS_TIME 0
#define DOS_DATE ((0 << 9) | (1 << 5) | 1)

int dip__zip_local_header(struct dip__sbuf *b, const char *name, uint32_t crc, uint32_t len)
{
    uint8_t h[30];
    size_t nlen = strlen(name);

    put32(h, 0x04034b50);
    put16(h + 4, 10);     /* version needed: 1.0, stored */
    put16(h + 6, 0x0800); /* names are UTF-8 */
    put16(h + 8, 0);      /* stored */
    put16(h + 10, DOS_TIME);
    put16(h + 12, DOS_DATE);
    put32(h + 14, crc);
    put32(h + 18, len);
    put32(h + 22, len);
    put16(h + 26, (uint16_t)nlen);
    put16(h + 28, 0);
    dip__sbuf_add(b, h, sizeof(h));
    return dip__sbuf_add(b, name, nlen);
}

int dip__zip_central(struct dip__sbuf *b, const char *name, uint32_t crc, uint32_t len,
                     uint32_t offset)
{
    uint8_t h[46];
    size_t nlen = strlen(name);

    put32(h, 0x02014b50);
    put16(h + 4, 0x0314); /* made by: Unix, 2.0 */
    put16(h + 6, 10);
    put16(h + 8, 0x0800);
    put16(h + 10, 0);
    put16(h + 12, DOS_TIME);
    put16(h + 14, DOS_DATE);
    put32(h + 16, crc);
    put32(h + 20, len);
    put32(h + 24, len);
    put16(h + 28, (uint16_t)nlen);
    put16(h + 30, 0);
    put16(h + 32, 0);
    put16(h + 34, 0);
    put16(h + 36, 0);
    put32(h + 38, 0100644u << 16); /* regular file, rw-r--r-- */
    put32(h + 42, offset);
    dip__sbuf_add(b, h, sizeof(h));
    return dip__sbuf_add(b, name, nlen);
}

int dip__zip_end(struct dip__sbuf *b, uint16_t entries, uint32_t cd_size, uint32_t cd_offset)
{
    uint8_t h[22];

    put32(h, 0x06054b50);
    put16(h + 4, 0);
    put16(h + 6, 0);
    put16(h + 8, entries);
    put16(h + 10, entries);
    put32(h + 12, cd_size);
    put32(h + 16, cd_offset);
    put16(h + 20, 0);
    return dip__sbuf_add(b, h, sizeof(h));
}
