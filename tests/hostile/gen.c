/* SPDX-License-Identifier: MIT */
/* Byte-level generators of valid and hostile images for the hostile-input tests and the fuzz
 * seed corpus (see gen.h). Bombs are made cheaply: the pixel data of a huge image is a stream of
 * identical symbols (zlib over zero rows, all-zero JPEG blocks, zero-bit WebP pixels, constant
 * LZW runs, an RLE end-of-bitmap), so that a generator never holds the decoded pixels. */
#include "gen.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void put_u32le_at(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* zlib stream of h rows, each a filter byte 0 and w bytes of value v (PNG), or w bytes (TIFF). */
static void zlib_rows(struct bytes *out, uint32_t w, uint32_t h, int v, int png_filter)
{
    z_stream zs;
    size_t rowlen = (size_t)w + (png_filter ? 1 : 0);
    uint8_t *row = malloc(rowlen), obuf[65536];

    if (row == NULL)
        abort();
    memset(row, v, rowlen);
    if (png_filter)
        row[0] = 0;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit(&zs, 6) != Z_OK)
        abort();
    for (uint32_t y = 0; y <= h; y++) {
        int flush = y == h ? Z_FINISH : Z_NO_FLUSH;
        zs.next_in = row;
        zs.avail_in = y == h ? 0 : (uInt)rowlen;
        do {
            zs.next_out = obuf;
            zs.avail_out = sizeof(obuf);
            deflate(&zs, flush);
            bytes_put(out, obuf, sizeof(obuf) - zs.avail_out);
        } while (zs.avail_out == 0);
    }
    deflateEnd(&zs);
    free(row);
}

/* ---- PNG ---- */

void gen_png_chunk(struct bytes *b, const char *type, const void *data, uint32_t len)
{
    uLong crc = crc32(0, (const Bytef *)type, 4);

    bytes_be32(b, len);
    bytes_put(b, type, 4);
    bytes_put(b, data, len);
    if (len)
        crc = crc32(crc, data, len);
    bytes_be32(b, (uint32_t)crc);
}

void gen_png_head(struct bytes *b, uint32_t w, uint32_t h, int depth, int ctype)
{
    uint8_t ihdr[13];

    bytes_put(b, "\x89PNG\r\n\x1a\n", 8);
    ihdr[0] = (uint8_t)(w >> 24);
    ihdr[1] = (uint8_t)(w >> 16);
    ihdr[2] = (uint8_t)(w >> 8);
    ihdr[3] = (uint8_t)w;
    ihdr[4] = (uint8_t)(h >> 24);
    ihdr[5] = (uint8_t)(h >> 16);
    ihdr[6] = (uint8_t)(h >> 8);
    ihdr[7] = (uint8_t)h;
    ihdr[8] = (uint8_t)depth;
    ihdr[9] = (uint8_t)ctype;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    gen_png_chunk(b, "IHDR", ihdr, 13);
}

void gen_png_gray(struct bytes *b, uint32_t w, uint32_t h, int v)
{
    struct bytes z = {0};

    gen_png_head(b, w, h, 8, 0);
    zlib_rows(&z, w, h, v, 1);
    /* IDAT in chunks of at most 1 MiB, as encoders do. */
    for (size_t off = 0; off < z.n; off += 1u << 20) {
        size_t n = z.n - off < (1u << 20) ? z.n - off : (1u << 20);
        gen_png_chunk(b, "IDAT", z.p + off, (uint32_t)n);
    }
    gen_png_chunk(b, "IEND", NULL, 0);
    bytes_free(&z);
}

/* ---- JPEG ---- */

static void jpeg_marker(struct bytes *b, int m, const void *payload, unsigned len)
{
    bytes_u8(b, 0xFF);
    bytes_u8(b, (unsigned)m);
    bytes_be16(b, len + 2);
    bytes_put(b, payload, len);
}

static void jpeg_head_n(struct bytes *b, unsigned w, unsigned h, int sof, int ncomp)
{
    uint8_t dqt[65], sofp[6 + 3 * 4];
    /* DC table 0: '0' = category 0. AC table 0: '0' = EOB (0x00), '10' = EOB run of 2^10 plus
     * 10 bits (0xA0). libjpeg reserves the all-ones code of each length, so one code of length
     * 1 is the most a table may have. */
    static const uint8_t dht[] = {
        0x00, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,    0x00, 0x10,
        1,    1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0xA0,
    };

    bytes_u8(b, 0xFF);
    bytes_u8(b, 0xD8);
    dqt[0] = 0;
    memset(dqt + 1, 1, 64);
    jpeg_marker(b, 0xDB, dqt, sizeof(dqt));
    sofp[0] = 8;
    sofp[1] = (uint8_t)(h >> 8);
    sofp[2] = (uint8_t)h;
    sofp[3] = (uint8_t)(w >> 8);
    sofp[4] = (uint8_t)w;
    sofp[5] = (uint8_t)ncomp;
    for (int c = 0; c < ncomp; c++) {
        sofp[6 + 3 * c] = (uint8_t)(c + 1); /* component id */
        sofp[7 + 3 * c] = 0x11;             /* no subsampling */
        sofp[8 + 3 * c] = 0;                /* quantisation table 0 */
    }
    jpeg_marker(b, sof, sofp, 6 + 3 * (unsigned)ncomp);
    jpeg_marker(b, 0xC4, dht, sizeof(dht));
}

void gen_jpeg_head(struct bytes *b, unsigned w, unsigned h, int sof)
{
    jpeg_head_n(b, w, h, sof, 1);
}

void gen_jpeg_header_only(struct bytes *b, unsigned w, unsigned h, int sof)
{
    static const uint8_t sos[6] = {1, 1, 0x00, 0, 63, 0};

    gen_jpeg_head(b, w, h, sof);
    if (sof == 0xC2) {
        static const uint8_t dc[6] = {1, 1, 0x00, 0, 0, 0};
        jpeg_marker(b, 0xDA, dc, sizeof(dc));
    } else {
        jpeg_marker(b, 0xDA, sos, sizeof(sos));
    }
}

static void jpeg_sos_c(struct bytes *b, int comp, int ss, int se, int ah, int al)
{
    uint8_t sos[6] = {1, (uint8_t)comp, 0x00, (uint8_t)ss, (uint8_t)se, (uint8_t)((ah << 4) | al)};
    jpeg_marker(b, 0xDA, sos, sizeof(sos));
}

static void jpeg_sos(struct bytes *b, int ss, int se, int ah, int al)
{
    jpeg_sos_c(b, 1, ss, se, ah, al);
}

void gen_jpeg_gray(struct bytes *b, unsigned w, unsigned h)
{
    size_t blocks = (size_t)((w + 7) / 8) * ((h + 7) / 8);
    size_t bits = blocks * 2; /* '0' DC category 0, '0' EOB */

    gen_jpeg_head(b, w, h, 0xC0);
    jpeg_sos(b, 0, 63, 0, 0);
    bytes_fill(b, 0x00, bits / 8);
    if (bits % 8)
        bytes_u8(b, 0xFFu >> (bits % 8)); /* the last bits are 0, padded with 1s */
    bytes_u8(b, 0xFF);
    bytes_u8(b, 0xD9);
}

/* One bit per block, all zero, padded with ones. */
static void jpeg_zero_bits(struct bytes *b, size_t nbits)
{
    bytes_fill(b, 0x00, nbits / 8);
    if (nbits % 8)
        bytes_u8(b, 0xFFu >> (nbits % 8));
}

void gen_jpeg_many_scans(struct bytes *b, unsigned w, unsigned h, int ncomp)
{
    size_t blocks = (size_t)((w + 7) / 8) * ((h + 7) / 8);

    jpeg_head_n(b, w, h, 0xC2, ncomp);
    /* Every scan is non-interleaved: one component each. */
    for (int c = 1; c <= ncomp; c++) {
        jpeg_sos_c(b, c, 0, 0, 0, 13);
        jpeg_zero_bits(b, blocks); /* DC category 0 for each block */
        for (int a = 13; a >= 1; a--) {
            jpeg_sos_c(b, c, 0, 0, a, a - 1);
            jpeg_zero_bits(b, blocks); /* one correction bit per block */
        }
    }
    for (int c = 1; c <= ncomp; c++) {
        for (int k = 1; k <= 63; k++) {
            for (int a = 0; a <= 13; a++) {
                if (a == 0)
                    jpeg_sos_c(b, c, k, k, 0, 13);
                else
                    jpeg_sos_c(b, c, k, k, 14 - a, 13 - a);
                /* An EOB run covering every block: '10' (EOB run 2^10) + 10 bits 0 when there
                 * are 1024 blocks; otherwise '0' (EOB) per block. */
                if (blocks == 1024) {
                    bytes_u8(b, 0x80);
                    bytes_u8(b, 0x0F);
                } else {
                    jpeg_zero_bits(b, blocks);
                }
            }
        }
    }
    bytes_u8(b, 0xFF);
    bytes_u8(b, 0xD9);
}

/* ---- WebP ---- */

struct bitw {
    struct bytes *b;
    uint32_t acc;
    int n;
};

static void bw_put(struct bitw *w, uint32_t v, int nbits)
{
    for (int i = 0; i < nbits; i++) {
        w->acc |= ((v >> i) & 1u) << w->n;
        if (++w->n == 8) {
            bytes_u8(w->b, w->acc);
            w->acc = 0;
            w->n = 0;
        }
    }
}

static void bw_flush(struct bitw *w)
{
    if (w->n)
        bytes_u8(w->b, w->acc);
    w->acc = 0;
    w->n = 0;
}

static void vp8l_payload(struct bytes *p, unsigned w, unsigned h)
{
    struct bitw bw = {p, 0, 0};
    static const unsigned sym[4] = {0x40, 0x80, 0xC0, 0xFF}; /* green, red, blue, alpha */

    bytes_u8(p, 0x2f);
    bw_put(&bw, w - 1, 14);
    bw_put(&bw, h - 1, 14);
    bw_put(&bw, 1, 1); /* alpha used */
    bw_put(&bw, 0, 3); /* version */
    bw_put(&bw, 0, 1); /* no transform */
    bw_put(&bw, 0, 1); /* no colour cache */
    bw_put(&bw, 0, 1); /* no meta prefix codes */
    for (int i = 0; i < 4; i++) {
        bw_put(&bw, 1, 1); /* simple code */
        bw_put(&bw, 0, 1); /* one symbol */
        bw_put(&bw, 1, 1); /* 8-bit symbol */
        bw_put(&bw, sym[i], 8);
    }
    bw_put(&bw, 1, 1); /* distance: simple, one 1-bit symbol 0 */
    bw_put(&bw, 0, 1);
    bw_put(&bw, 0, 1);
    bw_put(&bw, 0, 1);
    bw_flush(&bw); /* every pixel now costs zero bits */
}

static void riff_chunk(struct bytes *b, const char *fourcc, const struct bytes *payload)
{
    bytes_put(b, fourcc, 4);
    bytes_le32(b, (uint32_t)payload->n);
    bytes_put(b, payload->p, payload->n);
    if (payload->n & 1)
        bytes_u8(b, 0);
}

static void riff_close(struct bytes *b, size_t start)
{
    put_u32le_at(b->p + start + 4, (uint32_t)(b->n - start - 8));
}

void gen_webp_lossless(struct bytes *b, unsigned w, unsigned h)
{
    struct bytes p = {0};
    size_t start = b->n;

    vp8l_payload(&p, w, h);
    bytes_str(b, "RIFF");
    bytes_le32(b, 0);
    bytes_str(b, "WEBP");
    riff_chunk(b, "VP8L", &p);
    riff_close(b, start);
    bytes_free(&p);
}

static void vp8x_chunk(struct bytes *b, int flags, uint32_t cw, uint32_t ch)
{
    bytes_str(b, "VP8X");
    bytes_le32(b, 10);
    bytes_u8(b, (unsigned)flags);
    bytes_fill(b, 0, 3);
    bytes_u8(b, (cw - 1) & 0xff);
    bytes_u8(b, ((cw - 1) >> 8) & 0xff);
    bytes_u8(b, ((cw - 1) >> 16) & 0xff);
    bytes_u8(b, (ch - 1) & 0xff);
    bytes_u8(b, ((ch - 1) >> 8) & 0xff);
    bytes_u8(b, ((ch - 1) >> 16) & 0xff);
}

void gen_webp_vp8x(struct bytes *b, uint32_t cw, uint32_t ch, unsigned w, unsigned h)
{
    struct bytes p = {0};
    size_t start = b->n;

    vp8l_payload(&p, w, h);
    bytes_str(b, "RIFF");
    bytes_le32(b, 0);
    bytes_str(b, "WEBP");
    vp8x_chunk(b, 0x10, cw, ch);
    riff_chunk(b, "VP8L", &p);
    riff_close(b, start);
    bytes_free(&p);
}

void gen_webp_vp8_head(struct bytes *b, unsigned w, unsigned h)
{
    struct bytes p = {0};
    size_t start = b->n;
    uint32_t part = 20, tag = (0u /* key frame */) | (0u << 1) | (1u << 4) | (part << 5);

    bytes_u8(&p, tag & 0xff);
    bytes_u8(&p, (tag >> 8) & 0xff);
    bytes_u8(&p, (tag >> 16) & 0xff);
    bytes_put(&p, "\x9d\x01\x2a", 3);
    bytes_le16(&p, w & 0x3fff);
    bytes_le16(&p, h & 0x3fff);
    bytes_fill(&p, 0, 30);
    bytes_str(b, "RIFF");
    bytes_le32(b, 0);
    bytes_str(b, "WEBP");
    riff_chunk(b, "VP8 ", &p);
    riff_close(b, start);
    bytes_free(&p);
}

void gen_webp_anim(struct bytes *b, uint32_t cw, uint32_t ch, unsigned nframes)
{
    struct bytes frame = {0}, img = {0};
    size_t start = b->n;

    vp8l_payload(&img, 1, 1);
    bytes_fill(&frame, 0, 6); /* x/2, y/2 */
    bytes_fill(&frame, 0, 6); /* width-1, height-1 = 0 */
    bytes_u8(&frame, 100);    /* duration */
    bytes_fill(&frame, 0, 2);
    bytes_u8(&frame, 0); /* flags */
    riff_chunk(&frame, "VP8L", &img);
    bytes_str(b, "RIFF");
    bytes_le32(b, 0);
    bytes_str(b, "WEBP");
    vp8x_chunk(b, 0x02 | 0x10, cw, ch);
    bytes_str(b, "ANIM");
    bytes_le32(b, 6);
    bytes_fill(b, 0, 6);
    for (unsigned i = 0; i < nframes; i++)
        riff_chunk(b, "ANMF", &frame);
    riff_close(b, start);
    bytes_free(&frame);
    bytes_free(&img);
}

/* ---- TIFF ---- */

static void tiff_entry(struct bytes *b, unsigned tag, unsigned type, uint32_t count, uint32_t value)
{
    bytes_le16(b, tag);
    bytes_le16(b, type);
    bytes_le32(b, count);
    if (type == 3 && count == 1) {
        bytes_le16(b, value);
        bytes_le16(b, 0);
    } else {
        bytes_le32(b, value);
    }
}

void gen_tiff_gray(struct bytes *b, uint32_t w, uint32_t h, int v, int zip, unsigned extra_tags,
                   int strip_missing)
{
    struct bytes data = {0};
    unsigned n = 9 + extra_tags;
    uint32_t ifd = 8, data_off;

    if (strip_missing) {
        /* The start of a deflate stream: what a header-only bomb carries. */
        bytes_put(&data, "\x78\x9c\x63\x60\x18\x05\xa3\x60\x14\x0c\x77\x00\x00\x00\x00\x00", 16);
        zip = 1;
    } else if (zip) {
        zlib_rows(&data, w, h, v, 0);
    } else {
        bytes_fill(&data, v, (size_t)w * h);
    }
    data_off = ifd + 2 + 12 * n + 4;
    bytes_str(b, "II");
    bytes_le16(b, 42);
    bytes_le32(b, ifd);
    bytes_le16(b, n);
    tiff_entry(b, 256, 4, 1, w);
    tiff_entry(b, 257, 4, 1, h);
    tiff_entry(b, 258, 3, 1, 8);
    tiff_entry(b, 259, 3, 1, zip ? 8 : 1);
    tiff_entry(b, 262, 3, 1, 1);
    tiff_entry(b, 273, 4, 1, data_off);
    tiff_entry(b, 277, 3, 1, 1);
    tiff_entry(b, 278, 4, 1, h);
    tiff_entry(b, 279, 4, 1, (uint32_t)data.n);
    for (unsigned i = 0; i < extra_tags; i++)
        tiff_entry(b, 40000 + i, 3, 1, i);
    bytes_le32(b, 0);
    bytes_put(b, data.p, data.n);
    bytes_free(&data);
}

void gen_tiff_pages(struct bytes *b, unsigned npages, int loop)
{
    const unsigned n = 9;
    const uint32_t ifdsize = 2 + 12 * n + 4 + 2; /* + the pixel and a pad byte */

    bytes_str(b, "II");
    bytes_le16(b, 42);
    bytes_le32(b, 8);
    for (unsigned i = 0; i < npages; i++) {
        uint32_t ifd = 8 + i * ifdsize, pix = ifd + 2 + 12 * n + 4;
        uint32_t next = i + 1 < npages ? ifd + ifdsize : (loop ? 8 : 0);
        bytes_le16(b, n);
        tiff_entry(b, 256, 4, 1, 1);
        tiff_entry(b, 257, 4, 1, 1);
        tiff_entry(b, 258, 3, 1, 8);
        tiff_entry(b, 259, 3, 1, 1);
        tiff_entry(b, 262, 3, 1, 1);
        tiff_entry(b, 273, 4, 1, pix);
        tiff_entry(b, 277, 3, 1, 1);
        tiff_entry(b, 278, 4, 1, 1);
        tiff_entry(b, 279, 4, 1, 1);
        bytes_le32(b, next);
        bytes_u8(b, 0x80);
        bytes_u8(b, 0);
    }
}

void gen_tiff_big_tag(struct bytes *b, uint32_t count)
{
    const unsigned n = 10;
    uint32_t pix = 8 + 2 + 12 * n + 4;

    bytes_str(b, "II");
    bytes_le16(b, 42);
    bytes_le32(b, 8);
    bytes_le16(b, n);
    tiff_entry(b, 256, 4, 1, 1);
    tiff_entry(b, 257, 4, 1, 1);
    tiff_entry(b, 258, 3, 1, 8);
    tiff_entry(b, 259, 3, 1, 1);
    tiff_entry(b, 262, 3, 1, 1);
    tiff_entry(b, 270, 2, count, 0x7ffffff0u); /* ImageDescription, far past the end */
    tiff_entry(b, 273, 4, 1, pix);
    tiff_entry(b, 277, 3, 1, 1);
    tiff_entry(b, 278, 4, 1, 1);
    tiff_entry(b, 279, 4, 1, 1);
    bytes_le32(b, 0);
    bytes_u8(b, 0x80);
}

/* ---- GIF ---- */

struct lzw_out {
    struct bytes *b;
    uint8_t block[255];
    int blen;
    uint32_t acc;
    int n;
};

static void lzw_byte(struct lzw_out *o, unsigned c)
{
    o->block[o->blen++] = (uint8_t)c;
    if (o->blen == 255) {
        bytes_u8(o->b, 255);
        bytes_put(o->b, o->block, 255);
        o->blen = 0;
    }
}

static void lzw_code(struct lzw_out *o, unsigned code, int width)
{
    o->acc |= (uint32_t)code << o->n;
    o->n += width;
    while (o->n >= 8) {
        lzw_byte(o, o->acc & 0xff);
        o->acc >>= 8;
        o->n -= 8;
    }
}

static void lzw_finish(struct lzw_out *o)
{
    if (o->n > 0)
        lzw_byte(o, o->acc & 0xff);
    if (o->blen) {
        bytes_u8(o->b, (unsigned)o->blen);
        bytes_put(o->b, o->block, (size_t)o->blen);
    }
    bytes_u8(o->b, 0);
}

/* LZW for `npix` pixels of one colour: the strings are runs, so run L has code first+L-2 and
 * the encoder (gifenc's rule: widen when the next code reaches 1 << width, clear when full)
 * never needs a dictionary. */
static void lzw_const(struct bytes *b, int min, unsigned color, uint64_t npix)
{
    struct lzw_out o = {b, {0}, 0, 0, 0};
    const unsigned clear = 1u << min, eoi = clear + 1, first = clear + 2;
    unsigned next = first, maxlen = 1;
    int width = min + 1;

    bytes_u8(b, (unsigned)min);
    lzw_code(&o, clear, width);
    while (npix > 0) {
        uint64_t len = npix < maxlen ? npix : maxlen;
        lzw_code(&o, len == 1 ? color : first + (unsigned)len - 2, width);
        npix -= len;
        if (npix == 0)
            break;
        if (next < 4096) {
            if (next == (1u << width))
                width++;
            next++;
            maxlen++;
        } else {
            lzw_code(&o, clear, width);
            width = min + 1;
            next = first;
            maxlen = 1;
        }
    }
    lzw_code(&o, eoi, width);
    lzw_finish(&o);
}

void gen_gif_head(struct bytes *b, unsigned sw, unsigned sh)
{
    bytes_str(b, "GIF89a");
    bytes_le16(b, sw);
    bytes_le16(b, sh);
    bytes_u8(b, 0x80); /* global colour table of 2 entries */
    bytes_u8(b, 0);
    bytes_u8(b, 0);
    bytes_put(b, "\x00\x00\x00\xff\xff\xff", 6);
}

void gen_gif(struct bytes *b, unsigned sw, unsigned sh, unsigned fw, unsigned fh, unsigned nframes)
{
    gen_gif_head(b, sw, sh);
    for (unsigned i = 0; i < nframes; i++) {
        bytes_put(b, "\x21\xf9\x04\x00\x0a\x00\x00\x00", 8); /* 100 ms, no transparency */
        bytes_u8(b, 0x2c);
        bytes_le16(b, 0);
        bytes_le16(b, 0);
        bytes_le16(b, fw);
        bytes_le16(b, fh);
        bytes_u8(b, 0);
        lzw_const(b, 2, 1, (uint64_t)fw * fh);
    }
    bytes_u8(b, 0x3b);
}

/* ---- BMP ---- */

void gen_bmp_head(struct bytes *b, int32_t w, int32_t h, int bpp, int comp, uint32_t clr_used,
                  uint32_t off_bits)
{
    bytes_str(b, "BM");
    bytes_le32(b, 0); /* file size, patched by callers that know it */
    bytes_le32(b, 0);
    bytes_le32(b, off_bits);
    bytes_le32(b, 40);
    bytes_le32(b, (uint32_t)w);
    bytes_le32(b, (uint32_t)h);
    bytes_le16(b, 1);
    bytes_le16(b, (unsigned)bpp);
    bytes_le32(b, (uint32_t)comp);
    bytes_le32(b, 0);
    bytes_le32(b, 2835);
    bytes_le32(b, 2835);
    bytes_le32(b, clr_used);
    bytes_le32(b, 0);
}

void gen_bmp24(struct bytes *b, int32_t w, int32_t h, int v)
{
    size_t start = b->n;
    uint32_t ah = (uint32_t)(h < 0 ? -(int64_t)h : h);
    size_t stride = ((size_t)w * 3 + 3) & ~(size_t)3;

    gen_bmp_head(b, w, h, 24, 0, 0, 54);
    for (uint32_t y = 0; y < ah; y++) {
        bytes_fill(b, v, (size_t)w * 3);
        bytes_fill(b, 0, stride - (size_t)w * 3);
    }
    put_u32le_at(b->p + start + 2, (uint32_t)(b->n - start));
}

void gen_bmp_rle8_bomb(struct bytes *b, int32_t w, int32_t h)
{
    size_t start = b->n;

    gen_bmp_head(b, w, h, 8, 1, 2, 54 + 8);
    bytes_put(b, "\x00\x00\x00\x00\xff\xff\xff\x00", 8);
    bytes_put(b, "\x00\x01", 2); /* end of bitmap */
    put_u32le_at(b->p + start + 2, (uint32_t)(b->n - start));
}

void gen_bmp_rle8_full(struct bytes *b, int32_t w, int32_t h)
{
    size_t start = b->n;

    gen_bmp_head(b, w, h, 8, 1, 2, 54 + 8);
    bytes_put(b, "\x00\x00\x00\x00\xff\xff\xff\x00", 8);
    for (int32_t y = 0; y < h; y++) {
        for (int32_t x = 0; x < w; x += 255) {
            bytes_u8(b, (unsigned)(w - x < 255 ? w - x : 255)); /* a run of index 1 (white) */
            bytes_u8(b, 1);
        }
        bytes_put(b, "\x00\x00", 2); /* end of line */
    }
    bytes_put(b, "\x00\x01", 2);
    put_u32le_at(b->p + start + 2, (uint32_t)(b->n - start));
}

/* ---- PNM ---- */

void gen_pnm(struct bytes *b, int p, unsigned w, unsigned h, int v)
{
    bytes_printf(b, "P%d\n# dip test\n%u %u\n255\n", p, w, h);
    bytes_fill(b, v, (size_t)w * h * (p == 6 ? 3 : 1));
}

void gen_pbm(struct bytes *b, unsigned w, unsigned h)
{
    bytes_printf(b, "P4\n%u %u\n", w, h);
    bytes_fill(b, 0, (size_t)((w + 7) / 8) * h);
}
