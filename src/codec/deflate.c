/* SPDX-License-Identifier: MIT */
/* Deflate for the encoders that write zlib streams (PNG, TIFF): one zlib stream cut into pieces
 * that are compressed independently, so that pieces can run on different threads and the bytes
 * never depend on how many there are. A piece is raw deflate that ends on a byte boundary with no
 * history carried over (a full flush), except the last, which ends the stream. Level 0 writes
 * stored blocks; levels 1-2 use ISA-L, which ends a piece with a full flush natively; levels 3-9
 * use libdeflate, which compresses a whole buffer only: the final-block bit of a non-last piece
 * is found by walking its blocks with zlib's inflate (Z_BLOCK, as zlib's examples/gzjoin.c does),
 * cleared, and an empty stored block realigns the end to a byte. This file is the only one that
 * includes libdeflate and ISA-L. */
#include <isa-l.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "core/internal.h"
#include "internal.h"

/* What each PNG level runs: the engine and that engine's own level, chosen by measurement on
 * the 12-MP benchmark photo (docs/formats.md has the table) so that each level is smaller than
 * the one before: ISA-L (levels 1-2) is four times faster than libdeflate at 7% more bytes;
 * level 6 (libdeflate 5) is as small as zlib's level 6 (libpng's default) at three times its
 * speed on one thread. ISA-L's level 3 was larger than its level 2 there and is not used. */
enum { ENG_STORED, ENG_ISAL, ENG_LIBDEFLATE };
static const struct {
    int engine, level;
} levels[10] = {
    {ENG_STORED, 0},      {ENG_ISAL, 1},        {ENG_ISAL, 2},       {ENG_LIBDEFLATE, 2},
    {ENG_LIBDEFLATE, 3},  {ENG_LIBDEFLATE, 4},  {ENG_LIBDEFLATE, 5}, {ENG_LIBDEFLATE, 7},
    {ENG_LIBDEFLATE, 10}, {ENG_LIBDEFLATE, 12},
};

/* libdeflate allocates through dip_malloc, so the out-of-memory sweeps reach it. */
static void *ld_malloc(size_t n)
{
    return dip_malloc(n);
}

static void ld_free(void *p)
{
    dip_free(p);
}

static pthread_once_t ld_once = PTHREAD_ONCE_INIT;

static void ld_init(void)
{
    libdeflate_set_memory_allocator(ld_malloc, ld_free);
}

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    size_t n;

    (void)opaque;
    if (__builtin_mul_overflow((size_t)items, (size_t)size, &n))
        return Z_NULL;
    return dip_malloc(n);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    dip_free(p);
}

uint32_t dip__zadler32(uint32_t adler, const uint8_t *p, size_t len)
{
    return libdeflate_adler32(adler, p, len);
}

uint32_t dip__zadler32_combine(uint32_t a, uint32_t b, size_t len_b)
{
    return (uint32_t)adler32_combine(a, b, (z_off_t)len_b);
}

uint32_t dip__zcrc32(uint32_t crc, const uint8_t *p, size_t len)
{
    return libdeflate_crc32(crc, p, len);
}

void dip__zlib_header(int level, uint8_t hdr[2])
{
    /* FLEVEL as zlib writes it: 0 fastest (levels 0-1), 1 fast, 2 default, 3 maximum. */
    unsigned flevel = level < 2 ? 0 : level < 6 ? 1 : level == 6 ? 2 : 3;
    unsigned h = (0x78u << 8) | (flevel << 6);

    h += 31 - h % 31;
    hdr[0] = (uint8_t)(h >> 8);
    hdr[1] = (uint8_t)h;
}

/* ---- Stored blocks ---- */

static size_t stored_bound(size_t len)
{
    return len + 5 * (len / 65535 + 1);
}

/* Stored blocks of at most 65535 bytes; always byte-aligned. */
static size_t put_stored(const uint8_t *in, size_t len, int last, uint8_t *out)
{
    size_t o = 0;

    do {
        size_t n = DIP_MIN(len, (size_t)65535);
        int fin = last && n == len;

        out[o++] = (uint8_t)fin; /* BFINAL, BTYPE 00 */
        out[o++] = (uint8_t)n;
        out[o++] = (uint8_t)(n >> 8);
        out[o++] = (uint8_t)~n;
        out[o++] = (uint8_t)(~n >> 8);
        memcpy(out + o, in, n);
        o += n;
        in += n;
        len -= n;
    } while (len > 0);
    return o;
}

/* ---- ISA-L ---- */

static int isal_piece(const uint8_t *in, size_t len, int lvl, int last, uint8_t **out,
                      size_t *out_len)
{
    static const uint32_t bufsz[4] = {ISAL_DEF_LVL0_DEFAULT, ISAL_DEF_LVL1_DEFAULT,
                                      ISAL_DEF_LVL2_DEFAULT, ISAL_DEF_LVL3_DEFAULT};
    struct isal_zstream s;
    size_t cap = stored_bound(len) + ISAL_DEF_MAX_HDR_SIZE + 64;
    uint8_t *o = dip_malloc(cap), *lb = dip_calloc(1, bufsz[lvl]);
    int rc = 0;

    if (o == NULL || lb == NULL || len > UINT32_MAX || cap > UINT32_MAX) {
        rc = DIP_ENOMEM;
        goto out;
    }
    /* isal_deflate_stateless_init leaves fields of the stream as they were, and stack garbage
     * then changed the output from one thread to another: start from zeros. */
    memset(&s, 0, sizeof(s));
    isal_deflate_stateless_init(&s);
    s.next_in = (uint8_t *)(uintptr_t)in; /* ISA-L does not write its input */
    s.avail_in = (uint32_t)len;
    s.end_of_stream = (uint16_t)last;
    s.flush = last ? NO_FLUSH : FULL_FLUSH;
    s.level = (uint32_t)lvl;
    s.level_buf = lb;
    s.level_buf_size = bufsz[lvl];
    s.gzip_flag = IGZIP_DEFLATE;
    s.next_out = o;
    s.avail_out = (uint32_t)cap;
    if (isal_deflate_stateless(&s) == COMP_OK && s.avail_in == 0) {
        *out_len = s.total_out;
    } else {
        /* Incompressible data: stored blocks, which depend only on the data too. */
        *out_len = put_stored(in, len, last, o);
    }
    *out = o;
    o = NULL;
out:
    dip_free(lb);
    dip_free(o);
    return rc;
}

/* ---- libdeflate, made to end a piece without ending the stream ---- */

/* Walks the blocks of the raw deflate data buf[0..len) (one complete stream, as libdeflate
 * writes it), clears the final-block bit of its last block and appends an empty stored block so
 * that the piece ends on a byte boundary. buf has room for 5 more bytes; *len grows. */
static int unfinal(uint8_t *buf, size_t *len)
{
    z_stream z;
    uint8_t *scratch = dip_malloc(65536);
    size_t hdr_bit = 0, end_bit = 0, n = *len;
    int zrc, rc = 0;

    memset(&z, 0, sizeof(z));
    z.zalloc = z_alloc;
    z.zfree = z_free;
    if (scratch == NULL || inflateInit2(&z, -15) != Z_OK) {
        dip_free(scratch);
        return DIP_ENOMEM;
    }
    z.next_in = buf;
    z.avail_in = (uInt)n;
    for (;;) {
        size_t bit;

        z.next_out = scratch;
        z.avail_out = 65536;
        zrc = inflate(&z, Z_BLOCK);
        if (zrc != Z_OK) {
            rc = zrc == Z_MEM_ERROR ? DIP_ENOMEM : DIP_EINTERNAL;
            goto out;
        }
        if (!(z.data_type & 128))
            continue; /* stopped for output space */
        /* Stopped at a block boundary, which is at the first unused bit. With 64 set, the
         * block that just ended was the final one: that is the end of the data. */
        bit = (size_t)(z.next_in - buf) * 8 - (size_t)(z.data_type & 7);
        if (z.data_type & 64) {
            end_bit = bit;
            break;
        }
        hdr_bit = bit;
    }
    if (DIP_NEVER(end_bit == 0 || (end_bit + 7) / 8 != n)) {
        rc = DIP_EINTERNAL;
        goto out;
    }
    buf[hdr_bit / 8] &= (uint8_t) ~(1u << (hdr_bit % 8)); /* BFINAL = 0 */
    /* The unused high bits of the last byte are zero; an empty stored block (BFINAL 0, BTYPE 00:
     * three zero bits, then padding to a byte) fits in them when there are at least three. */
    if (end_bit % 8 != 0)
        buf[n - 1] &= (uint8_t)((1u << (end_bit % 8)) - 1);
    if (end_bit % 8 == 0 || end_bit % 8 > 5)
        buf[n++] = 0;
    memcpy(buf + n, "\0\0\xff\xff", 4);
    *len = n + 4;
out:
    inflateEnd(&z);
    dip_free(scratch);
    return rc;
}

static int libdeflate_piece(const uint8_t *in, size_t len, int lvl, int last, uint8_t **out,
                            size_t *out_len)
{
    struct libdeflate_compressor *c;
    size_t cap, n;
    uint8_t *o = NULL;
    int rc = 0;

    pthread_once(&ld_once, ld_init);
    c = libdeflate_alloc_compressor(lvl);
    if (c == NULL)
        return DIP_ENOMEM;
    cap = DIP_MAX(libdeflate_deflate_compress_bound(c, len), stored_bound(len)) + 8;
    o = dip_malloc(cap);
    if (o == NULL) {
        rc = DIP_ENOMEM;
        goto out;
    }
    n = libdeflate_deflate_compress(c, in, len, o, cap - 8);
    if (n == 0) {
        n = put_stored(in, len, last, o);
    } else if (!last) {
        rc = unfinal(o, &n);
        if (rc)
            goto out;
    }
    *out = o;
    *out_len = n;
    o = NULL;
out:
    dip_free(o);
    libdeflate_free_compressor(c);
    return rc;
}

int dip__deflate_piece(const uint8_t *in, size_t len, int level, int last, uint8_t **out,
                       size_t *out_len)
{
    uint8_t *o;

    *out = NULL;
    *out_len = 0;
    if (DIP_NEVER(level < 0 || level > 9))
        return DIP_EINVAL;
    switch (levels[level].engine) {
    case ENG_ISAL:
        return isal_piece(in, len, levels[level].level, last, out, out_len);
    case ENG_LIBDEFLATE:
        return libdeflate_piece(in, len, levels[level].level, last, out, out_len);
    default:
        o = dip_malloc(stored_bound(len));
        if (o == NULL)
            return DIP_ENOMEM;
        *out_len = put_stored(in, len, last, o);
        *out = o;
        return 0;
    }
}

int dip__zlib_compress(const uint8_t *in, size_t len, int level, uint8_t **out, size_t *out_len)
{
    uint8_t *piece = NULL, *o;
    size_t n = 0;
    uint32_t adler;
    int rc = dip__deflate_piece(in, len, level, 1, &piece, &n);

    *out = NULL;
    *out_len = 0;
    if (rc)
        return rc;
    o = dip_malloc(n + 6);
    if (o == NULL) {
        dip_free(piece);
        return DIP_ENOMEM;
    }
    dip__zlib_header(level, o);
    memcpy(o + 2, piece, n);
    adler = dip__zadler32(1, in, len);
    o[n + 2] = (uint8_t)(adler >> 24);
    o[n + 3] = (uint8_t)(adler >> 16);
    o[n + 4] = (uint8_t)(adler >> 8);
    o[n + 5] = (uint8_t)adler;
    dip_free(piece);
    *out = o;
    *out_len = n + 6;
    return 0;
}

int dip_gzip(const void *data, size_t len, int level, uint8_t **out, size_t *out_len)
{
    const uint8_t *in = data;
    uint8_t *piece = NULL, *o;
    size_t n = 0;
    uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
    int rc = dip__deflate_piece(in, len, level, 1, &piece, &n);

    *out = NULL;
    *out_len = 0;
    if (rc)
        return rc;
    o = dip_malloc(n + 18);
    if (o == NULL) {
        dip_free(piece);
        return DIP_ENOMEM;
    }
    /* RFC 1952: magic, deflate, no flags, no time, no extra flags, OS unknown */
    memcpy(o, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10);
    memcpy(o + 10, piece, n);
    for (size_t off = 0; off < len;) { /* crc32 takes a uInt length */
        size_t k = DIP_MIN(len - off, (size_t)1 << 30);
        crc = (uint32_t)crc32(crc, in + off, (uInt)k);
        off += k;
    }
    for (int i = 0; i < 4; i++) {
        o[10 + n + (size_t)i] = (uint8_t)(crc >> (8 * i));
        o[14 + n + (size_t)i] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    dip_free(piece);
    *out = o;
    *out_len = n + 18;
    return 0;
}

int dip__inflate(const uint8_t *in, size_t len, int zlib, uint8_t *out, size_t out_len,
                 size_t *in_used, size_t *out_got)
{
    struct libdeflate_decompressor *d;
    enum libdeflate_result r;

    *in_used = 0;
    *out_got = 0;
    pthread_once(&ld_once, ld_init);
    d = libdeflate_alloc_decompressor();
    if (d == NULL)
        return DIP__INFLATE_NOMEM;
    if (zlib)
        r = libdeflate_zlib_decompress_ex(d, in, len, out, out_len, in_used, out_got);
    else
        r = libdeflate_deflate_decompress_ex(d, in, len, out, out_len, in_used, out_got);
    libdeflate_free_decompressor(d);
    switch (r) {
    case LIBDEFLATE_SUCCESS:
        return DIP__INFLATE_OK;
    case LIBDEFLATE_INSUFFICIENT_SPACE:
        return DIP__INFLATE_TOO_LONG;
    default:
        return DIP__INFLATE_BAD;
    }
}

void dip__deflate_versions(char *buf, size_t len)
{
    snprintf(buf, len, "libdeflate %s, ISA-L %d.%d.%d", LIBDEFLATE_VERSION_STRING,
             ISAL_MAJOR_VERSION, ISAL_MINOR_VERSION, ISAL_PATCH_VERSION);
}
