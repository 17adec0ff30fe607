/* SPDX-License-Identifier: MIT */
/* PNG through libpng: probe, decode to 8-bit gray/gray+alpha/RGB/RGBA, and encode. Before libpng
 * sees a byte, a bounded walk over the chunk list checks IHDR, the limits, chunk lengths, the
 * total metadata and whether the IDAT data could possibly hold the pixels the header claims, so
 * hostile files are refused before any pixel buffer exists. libpng's longjmp never leaves this
 * file; its warnings are treated as errors (fail closed). */
#include <png.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/internal.h"
#include "internal.h"

#define PNG_MAX_U31 0x7fffffffu
/* Deflate cannot expand more than 1032:1 (a 258-byte match coded in two bits), so IDAT data
 * smaller than raw/1032 cannot hold the image and the file is refused before allocation. */
#define DEFLATE_MAX_RATIO 1032u

/* ---- Chunk walk (no libpng) ---- */

struct walk {
    uint32_t width, height;
    int depth, ctype, interlace;
    int has_plte, has_trns;
    const uint8_t *exif; /* first eXIf chunk's data, borrowed from the input */
    size_t exif_len;
    uint64_t idat_bytes;
    uint32_t apng_frames; /* acTL num_frames (APNG), 0 when absent */
    uint32_t max_fdat;    /* largest APNG fdAT chunk (skipped, not metadata) */
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int is_letter(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int crc_ok(const uint8_t *chunk, uint32_t n)
{
    /* chunk points at the length field; the CRC covers type and data. */
    uLong c = crc32(0L, Z_NULL, 0);

    c = crc32(c, chunk + 4, (uInt)n + 4);
    return (uint32_t)c == be32(chunk + 8 + n);
}

static int ihdr_valid(int depth, int ctype)
{
    switch (ctype) {
    case 0:
        return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    case 3:
        return depth == 1 || depth == 2 || depth == 4 || depth == 8;
    case 2:
    case 4:
    case 6:
        return depth == 8 || depth == 16;
    default:
        return 0;
    }
}

static int samples_of(int ctype)
{
    return ctype == 0 || ctype == 3 ? 1 : ctype == 4 ? 2 : ctype == 2 ? 3 : 4;
}

/* The Paeth predictor of the PNG specification (left a, above b, above-left c). */
static inline int paeth(int a, int b, int c)
{
    int p = b - c, q = a - c;
    int pa = abs(p), pb = abs(q), pc = abs(p + q);

    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Walks the chunks: IHDR (checked against lim), then up to the first IDAT when !full (probe), or
 * to IEND when full (decode; sums the IDAT lengths). */
static int walk_chunks(const uint8_t *buf, size_t len, const struct dip_limits *lim, int full,
                       struct walk *wk, struct dip_err *err)
{
    size_t pos, meta = 0;
    int rc, saw_idat = 0;

    memset(wk, 0, sizeof(*wk));
    if (len < 8 + 8 + 13 + 4)
        return dip_err_set(err, DIP_ECORRUPT,
                           "png: premature end of data after %zu bytes (IHDR needs 33)", len);
    if (be32(buf + 8) != 13 || memcmp(buf + 12, "IHDR", 4) != 0)
        return dip_err_set(err, DIP_ECORRUPT, "png: first chunk is not a 13-byte IHDR");
    if (!crc_ok(buf + 8, 13))
        return dip_err_set(err, DIP_ECORRUPT, "png: IHDR CRC mismatch");
    wk->width = be32(buf + 16);
    wk->height = be32(buf + 20);
    wk->depth = buf[24];
    wk->ctype = buf[25];
    wk->interlace = buf[28];
    if (wk->width > PNG_MAX_U31 || wk->height > PNG_MAX_U31)
        return dip_err_set(err, DIP_ECORRUPT, "png: IHDR size %ux%u exceeds 2^31-1", wk->width,
                           wk->height);
    rc = dip_limits_check_dims(lim, "png", wk->width, wk->height, err);
    if (rc)
        return rc;
    if (!ihdr_valid(wk->depth, wk->ctype))
        return dip_err_set(err, DIP_ECORRUPT, "png: IHDR bit depth %d invalid for colour type %d",
                           wk->depth, wk->ctype);
    if (buf[26] != 0 || buf[27] != 0 || wk->interlace > 1)
        return dip_err_set(err, DIP_ECORRUPT,
                           "png: IHDR compression %d, filter %d or interlace %d unknown", buf[26],
                           buf[27], wk->interlace);

    for (pos = 33;;) {
        const uint8_t *c = buf + pos;
        uint32_t n;

        if (len - pos < 8) {
            if (!full && saw_idat)
                break;
            return dip_err_set(err, DIP_ECORRUPT,
                               "png: premature end of data after %zu bytes (no %s chunk)", len,
                               saw_idat ? "IEND" : "IDAT");
        }
        n = be32(c);
        if (n > PNG_MAX_U31)
            return dip_err_set(err, DIP_ECORRUPT,
                               "png: chunk length 0x%08x at offset %zu exceeds 2^31-1", n, pos);
        if (!is_letter(c[4]) || !is_letter(c[5]) || !is_letter(c[6]) || !is_letter(c[7]))
            return dip_err_set(err, DIP_ECORRUPT, "png: invalid chunk type at offset %zu", pos);
        if ((size_t)n + 4 > len - pos - 8)
            return dip_err_set(err, DIP_ECORRUPT,
                               "png: premature end of data after %zu bytes (chunk '%.4s' at "
                               "offset %zu declares %u bytes)",
                               len, (const char *)c + 4, pos, n);
        if (memcmp(c + 4, "IDAT", 4) == 0) {
            if (wk->ctype == 3 && !wk->has_plte)
                return dip_err_set(err, DIP_ECORRUPT, "png: palette image without PLTE");
            saw_idat = 1;
            if (!full)
                break;
            wk->idat_bytes += n;
        } else {
            if (!crc_ok(c, n))
                return dip_err_set(err, DIP_ECORRUPT,
                                   "png: CRC mismatch in chunk '%.4s' at "
                                   "offset %zu",
                                   (const char *)c + 4, pos);
            if (memcmp(c + 4, "IEND", 4) == 0) {
                if (!saw_idat)
                    return dip_err_set(err, DIP_ECORRUPT, "png: IEND before any IDAT");
                break;
            }
            if (memcmp(c + 4, "IHDR", 4) == 0)
                return dip_err_set(err, DIP_ECORRUPT, "png: second IHDR at offset %zu", pos);
            if (memcmp(c + 4, "PLTE", 4) == 0) {
                /* More entries than the bit depth can index are allowed and ignored, as
                 * libpng does (some encoders always write 256). */
                unsigned max = wk->ctype == 3 ? 1u << wk->depth : 256u;
                if (n == 0 || n % 3 != 0 || n / 3 > 256 || wk->has_plte || saw_idat)
                    return dip_err_set(err, DIP_ECORRUPT, "png: invalid PLTE of %u bytes", n);
                wk->has_plte = (int)DIP_MIN(n / 3, max);
            } else if (memcmp(c + 4, "tRNS", 4) == 0 && !saw_idat) {
                int bad =
                    wk->has_trns || wk->ctype == 4 || wk->ctype == 6 ||
                    (wk->ctype == 0 && n != 2) || (wk->ctype == 2 && n != 6) ||
                    (wk->ctype == 3 && (n == 0 || !wk->has_plte || n > (uint32_t)wk->has_plte));
                if (bad)
                    return dip_err_set(err, DIP_ECORRUPT,
                                       "png: invalid tRNS of %u bytes for "
                                       "colour type %d",
                                       n, wk->ctype);
                wk->has_trns = 1;
            }
            if (c[4] & 0x20) { /* ancillary: metadata, except APNG frame data (skipped) */
                if (memcmp(c + 4, "fdAT", 4) != 0)
                    meta += n;
                else
                    wk->max_fdat = DIP_MAX(wk->max_fdat, n);
                if (meta > lim->max_metadata_bytes)
                    return dip_err_set(err, DIP_ELIMIT,
                                       "png: metadata chunks of %zu bytes exceed the limit "
                                       "max_metadata_bytes=%zu",
                                       meta, lim->max_metadata_bytes);
                if (memcmp(c + 4, "acTL", 4) == 0 && n == 8 && !saw_idat) {
                    /* Refused past max_frames as GIF, WebP and TIFF are, although only the
                     * default image is decoded: the limit is about the file, not the work. */
                    wk->apng_frames = be32(c + 8);
                    if (wk->apng_frames > (uint32_t)DIP_MAX(lim->max_frames, 1))
                        return dip_err_set(err, DIP_ELIMIT,
                                           "png: APNG acTL declares %u frames, exceeds the limit "
                                           "max_frames=%d",
                                           wk->apng_frames, DIP_MAX(lim->max_frames, 1));
                }
                if (memcmp(c + 4, "eXIf", 4) == 0 && wk->exif == NULL) {
                    wk->exif = c + 8;
                    wk->exif_len = n;
                }
            } else if (memcmp(c + 4, "PLTE", 4) != 0) {
                return dip_err_set(err, DIP_ECORRUPT, "png: unknown critical chunk '%.4s'",
                                   (const char *)c + 4);
            }
        }
        pos += (size_t)n + 12;
    }
    return 0;
}

/* An APNG reports its acTL frame count (the walk refused more than max_frames; dip decodes the
 * default image only, as a PNG decoder does, and never walks the animation). */
static void fill_info(const struct walk *wk, const struct dip_limits *lim,
                      struct dip_image_info *info)
{
    static const char *const names[7] = {"gray", "", "rgb", "palette", "gray+alpha", "", "rgba"};
    int ch = wk->ctype == 0 ? 1 : wk->ctype == 4 ? 2 : wk->ctype == 6 ? 4 : 3;

    if (wk->has_trns && (ch == 1 || ch == 3))
        ch++;
    info->width = (int)wk->width;
    info->height = (int)wk->height;
    info->channels = ch;
    info->bit_depth = wk->depth;
    info->progressive = wk->interlace;
    info->frames = 1;
    if (wk->apng_frames > 1)
        info->frames = wk->apng_frames > (uint32_t)DIP_MAX(lim->max_frames, 1)
                           ? DIP_MAX(lim->max_frames, 1)
                           : (int)wk->apng_frames;
    info->orientation = dip__exif_orientation(wk->exif, wk->exif_len);
    snprintf(info->color, sizeof(info->color), "%s", names[wk->ctype]);
}

static int png_probe(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                     struct dip_image_info *info, struct dip_err *err)
{
    struct walk wk;
    int rc = walk_chunks(buf, len, lim, 0, &wk, err);

    if (rc == 0)
        fill_info(&wk, lim, info);
    return rc;
}

/* ---- libpng glue shared by reading and writing ---- */

struct io {
    png_structp png;
    png_infop pi;
    int code;      /* DIP_E* to report after a longjmp; 0 means corrupt data */
    char msg[200]; /* first message from libpng or from our callbacks */
    int warned;    /* libpng warned: the operation fails at the next check */
    /* reading */
    const uint8_t *buf;
    size_t len, pos;
    /* decoding state, owned here so that a longjmp cannot lose it */
    dip_image *img;
    uint8_t *row;
    uint8_t pal[256][4]; /* palette images: RGBA of each entry (tRNS applied) */
    int npal;
    int ch, depth; /* output channels; bits per sample of libpng's rows (8 or 16) */
};

static void on_error(png_structp png, png_const_charp msg)
{
    struct io *io = png_get_error_ptr(png);

    if (io->msg[0] == '\0')
        snprintf(io->msg, sizeof(io->msg), "%s", msg);
    png_longjmp(png, 1);
}

/* Warnings are errors: a file libpng has doubts about is refused. The warning is recorded and
 * acted on after the libpng call returns (WARNED below), never by a longjmp from here: libpng
 * warns from inside zlib's allocator (png_zalloc), and unwinding zlib half-way leaks its state. */
static void on_warning(png_structp png, png_const_charp msg)
{
    struct io *io = png_get_error_ptr(png);

    if (io->msg[0] == '\0')
        snprintf(io->msg, sizeof(io->msg), "%s", msg);
    io->warned = 1;
}

#define WARNED(io) ((io)->warned ? ((io)->code ? (io)->code : DIP_ECORRUPT) : 0)

static png_voidp on_malloc(png_structp png, png_alloc_size_t n)
{
    void *p = dip_malloc(n);

    if (p == NULL) {
        struct io *io = png_get_mem_ptr(png);
        io->code = DIP_ENOMEM;
    }
    return p;
}

static void on_free(png_structp png, png_voidp p)
{
    (void)png;
    dip_free(p);
}

static void on_read(png_structp png, png_bytep data, size_t n)
{
    struct io *io = png_get_io_ptr(png);

    if (n > io->len - io->pos) {
        snprintf(io->msg, sizeof(io->msg), "premature end of data after %zu bytes", io->len);
        png_error(png, io->msg);
    }
    memcpy(data, io->buf + io->pos, n);
    io->pos += n;
}

/* ---- Decoding ---- */

/* 16-bit samples become 8-bit by rounding to nearest: v8 = (v16 * 255 + 32767) / 65535, i.e.
 * round(v16 / 257). (libpng's png_set_strip_16 truncates instead; we do not use it.) */
static uint8_t to8(const uint8_t *p)
{
    uint32_t v = (uint32_t)p[0] << 8 | p[1];

    return (uint8_t)((v * 255u + 32767u) / 65535u);
}

/* Copies `cols` pixels of a libpng row into output row y at x0, x0+dx, ... Palette rows hold one
 * index per byte and are looked up here, so that an index past the end of PLTE is caught (libpng
 * 1.6 lets the last such index through and decodes it as black). */
static int put_row(struct io *io, uint8_t *dst, int ch, int depth, uint32_t cols, int y, int x0,
                   int dx)
{
    const uint8_t *src = io->row;
    size_t step = (size_t)ch * (size_t)dx;

    dst += (size_t)x0 * (size_t)ch;
    if (io->npal > 0) {
        for (uint32_t i = 0; i < cols; i++, dst += step) {
            if (src[i] >= io->npal) {
                snprintf(io->msg, sizeof(io->msg),
                         "palette index %d outside the %d-entry PLTE (row %d)", src[i], io->npal,
                         y);
                return DIP_ECORRUPT;
            }
            memcpy(dst, io->pal[src[i]], (size_t)ch);
        }
    } else if (depth == 16) {
        for (uint32_t i = 0; i < cols; i++, dst += step)
            for (int c = 0; c < ch; c++, src += 2)
                dst[c] = to8(src);
    } else if (dx == 1) {
        memcpy(dst, src, (size_t)cols * (size_t)ch);
    } else {
        for (uint32_t i = 0; i < cols; i++, dst += step, src += ch)
            memcpy(dst, src, (size_t)ch);
    }
    return 0;
}

/* Palette and tRNS into io->pal. */
static void load_palette(struct io *io)
{
    png_colorp plte = NULL;
    png_bytep alpha = NULL;
    int n = 0, na = 0;

    png_get_PLTE(io->png, io->pi, &plte, &n);
    if (!png_get_tRNS(io->png, io->pi, &alpha, &na, NULL))
        na = 0;
    n = DIP_CLAMP(n, 0, 256);
    for (int i = 0; i < n; i++) {
        io->pal[i][0] = plte[i].red;
        io->pal[i][1] = plte[i].green;
        io->pal[i][2] = plte[i].blue;
        io->pal[i][3] = i < na && alpha != NULL ? alpha[i] : 255;
    }
    io->npal = n;
}

/* The libpng calls of a decode up to the first row: settings, header, expansion, checks and
 * the row buffer (io->ch and io->depth set). On a libpng error it returns through the setjmp.
 * Everything it allocates lives in *io, so the caller frees it either way. */
static int dec_setup(struct io *io, const struct dip_limits *lim, const struct walk *wk,
                     int channels)
{
    png_structp png;
    int ch, depth;
    size_t rowbytes;

    if (setjmp(png_jmpbuf(io->png)))
        return io->code ? io->code : DIP_ECORRUPT;
    png = io->png;
    png_set_user_limits(png, (png_uint_32)lim->max_width, (png_uint_32)lim->max_height);
    /* Only IHDR, PLTE, tRNS, IDAT and IEND are read; every other chunk is skipped after its CRC
     * is checked, so no ancillary chunk (iCCP, zTXt, ...) is ever inflated or stored. */
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_set_chunk_cache_max(png, 64);
    /* libpng refuses any non-IDAT chunk longer than this, even one it skips: the metadata
     * limit, or the largest fdAT the walk accepted. */
    png_set_chunk_malloc_max(
        png, DIP_MAX(DIP_MAX(lim->max_metadata_bytes, (size_t)4096), (size_t)wk->max_fdat));
    png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    png_set_benign_errors(png, 0);
    png_set_read_fn(png, io, on_read);
    png_read_info(png, io->pi);
    if (WARNED(io))
        return WARNED(io);
    /* Palette images: indices unpacked to one byte each, looked up in put_row. Others: 1/2/4-bit
     * gray to 8 bits and tRNS to an alpha channel. */
    if (wk->ctype == PNG_COLOR_TYPE_PALETTE)
        png_set_packing(png);
    else
        png_set_expand(png);
    png_read_update_info(png, io->pi);
    if (WARNED(io))
        return WARNED(io);
    ch = png_get_channels(png, io->pi);
    depth = png_get_bit_depth(png, io->pi);
    rowbytes = png_get_rowbytes(png, io->pi);
    if (wk->ctype == PNG_COLOR_TYPE_PALETTE) {
        load_palette(io);
        if (io->npal == 0 || ch != 1 || depth != 8 || rowbytes < wk->width) {
            snprintf(io->msg, sizeof(io->msg), "palette image without a usable PLTE");
            return DIP_ECORRUPT;
        }
        ch = channels; /* 3, or 4 with tRNS */
    } else if (ch != channels || (depth != 8 && depth != 16) ||
               rowbytes < (size_t)wk->width * (size_t)ch * (size_t)(depth / 8)) {
        snprintf(io->msg, sizeof(io->msg),
                 "unexpected layout after expansion (%d channels, "
                 "%d bits)",
                 ch, depth);
        return DIP_ECORRUPT;
    }
    io->ch = ch;
    io->depth = depth;
    io->row = dip_malloc(rowbytes);
    if (io->row == NULL)
        return io->code = DIP_ENOMEM;
    return 0;
}

/* Rows y0 .. y0 + v->height - 1 of a non-interlaced image into v; after the last row, the rest
 * of the file to IEND (the remaining CRCs; a missing IEND is truncation). */
static int dec_rows(struct io *io, const struct walk *wk, uint32_t y0, const struct dip_view *v)
{
    if (setjmp(png_jmpbuf(io->png)))
        return io->code ? io->code : DIP_ECORRUPT;
    for (int j = 0; j < v->height; j++) {
        png_read_row(io->png, io->row, NULL);
        if (WARNED(io))
            return WARNED(io);
        int rc = put_row(io, v->data + (size_t)j * v->stride, io->ch, io->depth, wk->width,
                         (int)y0 + j, 0, 1);
        if (rc)
            return rc;
    }
    if (y0 + (uint32_t)v->height == wk->height) {
        png_read_end(io->png, NULL);
        return WARNED(io);
    }
    return 0;
}

/* All libpng calls of a decode. */
static int run_decode(struct io *io, const struct dip_limits *lim, const struct walk *wk,
                      int channels)
{
    struct dip_view v;
    int rc = dec_setup(io, lim, wk, channels);

    if (rc)
        return rc;
    io->code = dip_image_new((int)wk->width, (int)wk->height, io->ch, &io->img);
    if (io->code)
        return io->code;
    v = dip_image_view(io->img);
    if (!wk->interlace)
        return dec_rows(io, wk, 0, &v);
    if (setjmp(png_jmpbuf(io->png)))
        return io->code ? io->code : DIP_ECORRUPT;
    /* Interlaced images are read pass by pass without libpng's interlace handling: each pass is
     * a small image whose pixels are scattered into place here, after the 16-to-8 rounding. */
    for (int pass = 0; pass < 7; pass++) {
        /* Adam7: first column and row of each pass, and the steps between them. */
        static const int sc[7] = {0, 4, 0, 2, 0, 1, 0}, dc[7] = {8, 8, 4, 4, 2, 2, 1};
        static const int sr[7] = {0, 0, 4, 0, 2, 0, 1}, dr[7] = {8, 8, 8, 4, 4, 2, 2};
        int x0 = sc[pass], y0 = sr[pass], dx = dc[pass], dy = dr[pass];
        uint32_t cols = wk->width > (uint32_t)x0
                            ? (wk->width - (uint32_t)x0 + (uint32_t)dx - 1) / (uint32_t)dx
                            : 0;
        uint32_t rows = wk->height > (uint32_t)y0
                            ? (wk->height - (uint32_t)y0 + (uint32_t)dy - 1) / (uint32_t)dy
                            : 0;

        if (cols == 0 || rows == 0)
            continue; /* libpng skips empty passes too */
        for (uint32_t j = 0; j < rows; j++) {
            int y = y0 + (int)j * dy;
            png_read_row(io->png, io->row, NULL);
            if (WARNED(io))
                return WARNED(io);
            int r = put_row(io, v.data + (size_t)y * v.stride, io->ch, io->depth, cols, y, x0, dx);
            if (r)
                return r;
        }
    }
    /* Reads to IEND, checking the remaining CRCs; a missing IEND is truncation. */
    png_read_end(io->png, NULL);
    return WARNED(io);
}

/* ---- Decoding without libpng: 8-bit, not interlaced, no tRNS ---- */

/* The fast path holds the filtered rows and the image at once; past this many filtered bytes
 * libpng's row-by-row decode keeps the memory at one image. */
#define FAST_MAX_FILTERED ((size_t)64 << 20)

static int fast_eligible(const struct walk *wk)
{
    return wk->depth == 8 && wk->ctype != 3 && !wk->interlace && !wk->has_trns;
}

#if defined(__x86_64__) || defined(__SSE2__)
/* Sub, Average and Paeth for 3- and 4-byte pixels with SSE2 (part of every x86-64), one pixel at
 * a time in 16-bit lanes, as libpng's filter_sse2_intrinsics.c does: those filters depend on the
 * pixel just decoded, so the lanes run across a pixel's bytes. The arithmetic is exact, so the
 * pixels are those of the scalar loops below, bit for bit. Loads read 4 bytes while at least 4
 * are left in the row; the last 3-byte pixel is loaded and stored through a copy. */
#include <emmintrin.h>

/* The pixel at p: 4 bytes while at least 4 are left in the row, else the last 3-byte pixel
 * (bpp is a constant in every caller, so the copies are single moves). */
static inline __m128i loadpx(const uint8_t *p, size_t bpp, size_t left)
{
    int32_t t = 0;

    if (bpp == 4 || left >= 4)
        memcpy(&t, p, 4);
    else
        memcpy(&t, p, 3);
    return _mm_cvtsi32_si128(t);
}

static inline void storepx(uint8_t *p, __m128i v, size_t bpp)
{
    int32_t t = _mm_cvtsi128_si32(v);

    if (bpp == 4)
        memcpy(p, &t, 4);
    else
        memcpy(p, &t, 3);
}

static inline __m128i abs16(__m128i x)
{
    __m128i neg = _mm_cmplt_epi16(x, _mm_setzero_si128());
    return _mm_sub_epi16(_mm_xor_si128(x, neg), neg);
}

/* Filter `type` (1, 3 or 4) of a row with a row above (prev) for bpp 3 or 4; inlined with both
 * as constants. */
static inline __attribute__((always_inline)) void unfilter_px(const int type, const size_t bpp,
                                                              const uint8_t *src, uint8_t *dst,
                                                              const uint8_t *prev, size_t n)
{
    const __m128i zero = _mm_setzero_si128(), one = _mm_set1_epi8(1);
    __m128i a = zero, c = zero;

    for (size_t i = 0; i < n; i += bpp) {
        size_t left = n - i;
        __m128i x = loadpx(src + i, bpp, left), d;

        if (type == 1) {
            d = _mm_add_epi8(x, a);
        } else if (type == 3) {
            __m128i b = loadpx(prev + i, bpp, left);
            /* floor((a + b) / 2): avg rounds up, less the bit that rounded */
            __m128i avg = _mm_sub_epi8(_mm_avg_epu8(a, b), _mm_and_si128(_mm_xor_si128(a, b), one));
            d = _mm_add_epi8(x, avg);
        } else {
            __m128i b = _mm_unpacklo_epi8(loadpx(prev + i, bpp, left), zero);
            __m128i a16 = _mm_unpacklo_epi8(a, zero);
            __m128i pa = _mm_sub_epi16(b, c), pb = _mm_sub_epi16(a16, c);
            __m128i pc = abs16(_mm_add_epi16(pa, pb)), small, isa, isb, bc, pred;

            pa = abs16(pa);
            pb = abs16(pb);
            small = _mm_min_epi16(pc, _mm_min_epi16(pa, pb));
            /* a when pa is smallest, else b when pb is, else c: the specification's order */
            isa = _mm_cmpeq_epi16(small, pa);
            isb = _mm_cmpeq_epi16(small, pb);
            bc = _mm_or_si128(_mm_and_si128(isb, b), _mm_andnot_si128(isb, c));
            pred = _mm_or_si128(_mm_and_si128(isa, a16), _mm_andnot_si128(isa, bc));
            d = _mm_add_epi8(x, _mm_packus_epi16(pred, pred));
            c = b;
        }
        storepx(dst + i, d, bpp);
        a = d; /* lanes past bpp are never stored, and lanes do not mix */
    }
}

static void unfilter_simd(int type, const uint8_t *src, uint8_t *dst, const uint8_t *prev, size_t n,
                          size_t bpp)
{
    if (bpp == 3) {
        if (type == 1)
            unfilter_px(1, 3, src, dst, prev, n);
        else if (type == 3)
            unfilter_px(3, 3, src, dst, prev, n);
        else
            unfilter_px(4, 3, src, dst, prev, n);
    } else {
        if (type == 1)
            unfilter_px(1, 4, src, dst, prev, n);
        else if (type == 3)
            unfilter_px(3, 4, src, dst, prev, n);
        else
            unfilter_px(4, 4, src, dst, prev, n);
    }
}
#define HAVE_UNFILTER_SIMD 1
#endif

/* Reverses the row filters in place order: row y of the image from filtered row f (type byte
 * first) and the image's row y - 1 (prev, NULL for the first row). */
static int unfilter_row(const uint8_t *f, uint8_t *dst, const uint8_t *prev, size_t n, size_t bpp)
{
    const uint8_t *src = f + 1;
    size_t m = DIP_MIN(bpp, n);

#ifdef HAVE_UNFILTER_SIMD
    if ((bpp == 3 || bpp == 4) && n % bpp == 0 &&
        (f[0] == 1 || (prev != NULL && (f[0] == 3 || f[0] == 4)))) {
        unfilter_simd(f[0], src, dst, prev, n, bpp);
        return 0;
    }
#endif
    switch (f[0]) {
    case 0:
        memcpy(dst, src, n);
        break;
    case 1:
        memcpy(dst, src, m);
        for (size_t i = bpp; i < n; i++)
            dst[i] = (uint8_t)(src[i] + dst[i - bpp]);
        break;
    case 2:
        if (prev == NULL)
            memcpy(dst, src, n);
        else
            for (size_t i = 0; i < n; i++)
                dst[i] = (uint8_t)(src[i] + prev[i]);
        break;
    case 3:
        if (prev == NULL) {
            memcpy(dst, src, m);
            for (size_t i = bpp; i < n; i++)
                dst[i] = (uint8_t)(src[i] + (dst[i - bpp] >> 1));
        } else {
            for (size_t i = 0; i < m; i++)
                dst[i] = (uint8_t)(src[i] + (prev[i] >> 1));
            for (size_t i = bpp; i < n; i++)
                dst[i] = (uint8_t)(src[i] + ((dst[i - bpp] + prev[i]) >> 1));
        }
        break;
    case 4:
        if (prev == NULL) {
            /* b = c = 0: Paeth predicts a, as Sub does. */
            memcpy(dst, src, m);
            for (size_t i = bpp; i < n; i++)
                dst[i] = (uint8_t)(src[i] + dst[i - bpp]);
        } else {
            for (size_t i = 0; i < m; i++)
                dst[i] = (uint8_t)(src[i] + prev[i]);
            for (size_t i = bpp; i < n; i++)
                dst[i] = (uint8_t)(src[i] + paeth(dst[i - bpp], prev[i], prev[i - bpp]));
        }
        break;
    default:
        return DIP_ECORRUPT;
    }
    return 0;
}

/* Decodes an eligible image: the IDAT chunks (consecutive, CRCs checked) inflated by libdeflate
 * into the filtered rows, which must be exactly as long as the header says, then unfiltered.
 * Returns -1 (nothing allocated, no error) when the image is too large for this path. */
static int fast_decode(const uint8_t *buf, size_t len, const struct walk *wk, dip_image **out,
                       struct dip_err *err)
{
    size_t bpp = (size_t)samples_of(wk->ctype), rb = (size_t)wk->width * bpp, flen, pos, n;
    size_t zlen = 0, used = 0, got = 0;
    const uint8_t *z = NULL;
    uint8_t *joined = NULL, *f = NULL;
    dip_image *img = NULL;
    struct dip_view v;
    int rc = 0, r, seen = 0, ended = 0;

    if (__builtin_mul_overflow(rb + 1, (size_t)wk->height, &flen) || flen > FAST_MAX_FILTERED)
        return -1;
    /* The IDAT chunks: one is used in place, several are joined. The walk checked every length
     * against the input, so the loop only reads inside buf. */
    for (pos = 33; pos + 12 <= len; pos += 12 + n) {
        n = be32(buf + pos);
        if (memcmp(buf + pos + 4, "IEND", 4) == 0)
            break;
        if (memcmp(buf + pos + 4, "IDAT", 4) != 0) {
            if (seen)
                ended = 1;
            continue;
        }
        if (ended)
            return dip_err_set(err, DIP_ECORRUPT, "png: IDAT chunks are not consecutive");
        if (dip__zcrc32(0, buf + pos + 4, n + 4) != be32(buf + pos + 8 + n))
            return dip_err_set(err, DIP_ECORRUPT, "png: CRC mismatch in chunk 'IDAT' at offset %zu",
                               pos);
        seen++;
        if (seen == 1) {
            z = buf + pos + 8;
            zlen = n;
        } else {
            if (joined == NULL) {
                joined = dip_malloc((size_t)wk->idat_bytes);
                if (joined == NULL) {
                    rc = DIP_ENOMEM;
                    goto out;
                }
                memcpy(joined, z, zlen);
                z = joined;
            }
            memcpy(joined + zlen, buf + pos + 8, n);
            zlen += n;
        }
    }
    /* The filtered rows first: they are a little larger than the image, so that between images
     * each takes back its own buffer from the cache (in the other order the image took the
     * larger one, and the rows got fresh pages, faulted and zeroed, every time). */
    f = dip__malloc_large(flen); /* reused between images: no page faults */
    if (f == NULL) {
        rc = DIP_ENOMEM;
        goto out;
    }
    rc = dip_image_new((int)wk->width, (int)wk->height, (int)bpp, &img);
    if (rc)
        goto out;
    r = dip__inflate(z, zlen, 1, f, flen, &used, &got);
    if (r == DIP__INFLATE_NOMEM) {
        rc = DIP_ENOMEM;
        goto out;
    }
    if (r == DIP__INFLATE_TOO_LONG) {
        rc = dip_err_set(err, DIP_ECORRUPT, "png: IDAT: too much image data (more than %zu bytes)",
                         flen);
        goto out;
    }
    if (r != DIP__INFLATE_OK) {
        rc = dip_err_set(err, DIP_ECORRUPT, "png: IDAT: corrupt or truncated deflate data");
        goto out;
    }
    if (got != flen) {
        rc = dip_err_set(err, DIP_ECORRUPT, "png: IDAT: not enough image data (%zu of %zu bytes)",
                         got, flen);
        goto out;
    }
    if (used != zlen) {
        rc = dip_err_set(err, DIP_ECORRUPT, "png: IDAT: %zu bytes after the compressed data",
                         zlen - used);
        goto out;
    }
    v = dip_image_view(img);
    for (uint32_t y = 0; y < wk->height; y++) {
        uint8_t *dst = v.data + (size_t)y * v.stride;
        if (unfilter_row(f + (size_t)y * (rb + 1), dst, y ? dst - v.stride : NULL, rb, bpp)) {
            rc = dip_err_set(err, DIP_ECORRUPT, "png: bad adaptive filter value %d (row %u)",
                             f[(size_t)y * (rb + 1)], y);
            goto out;
        }
    }
    *out = img;
    img = NULL; /* the caller owns it now */
out:
    if (rc == DIP_ENOMEM)
        rc = dip_err_set(err, rc, "png: out of memory decoding %ux%u", wk->width, wk->height);
    if (f != NULL)
        dip__free_large(f, flen);
    dip_free(joined);
    dip_image_unref(img);
    return rc;
}

/* The checks of a decode before any pixel buffer: the chunk walk, the limits, and whether the
 * IDAT data could hold the pixels the header claims. */
static int dec_check(const uint8_t *buf, size_t len, const struct dip_limits *lim, struct walk *wk,
                     struct dip_image_info *info, struct dip_err *err)
{
    uint64_t pixels, bits, room;
    int rc = walk_chunks(buf, len, lim, 1, wk, err);

    if (rc)
        return rc;
    fill_info(wk, lim, info);
    /* The filtered rows hold at least width * height * bits-per-pixel bits. */
    pixels = (uint64_t)wk->width * wk->height;
    if (__builtin_mul_overflow(pixels, (uint64_t)(wk->depth * samples_of(wk->ctype)), &bits))
        bits = UINT64_MAX;
    room = (wk->idat_bytes + 64) * DEFLATE_MAX_RATIO;
    if (bits / 8 > room)
        return dip_err_set(err, DIP_ECORRUPT,
                           "png: IHDR claims %ux%u pixels but %llu bytes of IDAT data cannot "
                           "hold them",
                           wk->width, wk->height, (unsigned long long)wk->idat_bytes);
    return 0;
}

static int png_decode(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                      const struct dip_decode_opts *opts, dip_image **out,
                      struct dip_image_info *info, struct dip_err *err)
{
    struct io io;
    struct walk wk;
    int rc;

    (void)opts;
    memset(&io, 0, sizeof(io));
    rc = dec_check(buf, len, lim, &wk, info, err);
    if (rc)
        return rc;

    if (fast_eligible(&wk)) {
        rc = fast_decode(buf, len, &wk, out, err);
        if (rc != -1)
            return rc;
    }
    io.buf = buf;
    io.len = len;
    io.png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &io, on_error, on_warning, &io,
                                      on_malloc, on_free);
    if (io.png == NULL)
        return dip_err_set(err, DIP_ENOMEM, "png: out of memory creating the decoder");
    io.pi = png_create_info_struct(io.png);
    if (io.pi == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "png: out of memory creating the decoder");
        goto out;
    }
    rc = run_decode(&io, lim, &wk, info->channels);
    if (rc == DIP_ENOMEM)
        rc = dip_err_set(err, rc, "png: out of memory decoding %ux%u", wk.width, wk.height);
    else if (rc)
        rc = dip_err_set(err, rc, "png: %s", io.msg[0] ? io.msg : "corrupt data");
    if (rc == 0) {
        *out = io.img;
        io.img = NULL; /* the caller owns it now */
    }
out:
    png_destroy_read_struct(&io.png, io.pi ? &io.pi : NULL, NULL);
    dip_free(io.row);
    dip_image_unref(io.img);
    return rc;
}

/* ---- Decoding in rows (not interlaced: an interlaced file is decoded whole) ---- */

struct prows {
    struct io io;
    struct walk wk;
    uint32_t y;
};

static void prows_free(void *st)
{
    struct prows *p = st;

    if (p == NULL)
        return;
    png_destroy_read_struct(&p->io.png, p->io.pi ? &p->io.pi : NULL, NULL);
    dip_free(p->io.row);
    dip_free(p);
}

static int prows_read(void *st, const struct dip_view *rows, struct dip_err *err)
{
    struct prows *p = st;
    int rc = dec_rows(&p->io, &p->wk, p->y, rows);

    if (rc == DIP_ENOMEM)
        return dip_err_set(err, rc, "png: out of memory decoding %ux%u", p->wk.width, p->wk.height);
    if (rc)
        return dip_err_set(err, rc, "png: %s", p->io.msg[0] ? p->io.msg : "corrupt data");
    p->y += (uint32_t)rows->height;
    return 0;
}

static int png_rows_open(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                         struct dip_image_info *info, struct dip__rdec *rd, struct dip_err *err)
{
    struct prows *p = NULL;
    struct walk wk;
    int rc = dec_check(buf, len, lim, &wk, info, err);

    if (rc || wk.interlace)
        return rc;
    p = dip_calloc(1, sizeof(*p));
    if (p == NULL)
        return dip_err_set(err, DIP_ENOMEM, "png: out of memory creating the decoder");
    p->wk = wk;
    p->wk.exif = NULL; /* borrowed from the input; not needed past here */
    p->io.buf = buf;
    p->io.len = len;
    p->io.png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &p->io, on_error, on_warning,
                                         &p->io, on_malloc, on_free);
    if (p->io.png == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "png: out of memory creating the decoder");
        goto out;
    }
    p->io.pi = png_create_info_struct(p->io.png);
    if (p->io.pi == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "png: out of memory creating the decoder");
        goto out;
    }
    rc = dec_setup(&p->io, lim, &p->wk, info->channels);
    if (rc == DIP_ENOMEM)
        rc = dip_err_set(err, rc, "png: out of memory decoding %ux%u", wk.width, wk.height);
    else if (rc)
        rc = dip_err_set(err, rc, "png: %s", p->io.msg[0] ? p->io.msg : "corrupt data");
    if (rc == 0) {
        rd->st = p;
        rd->read = prows_read;
        rd->free = prows_free;
        p = NULL; /* rd owns it now */
    }
out:
    prows_free(p);
    return rc;
}

/* ---- Encoding ---- */

/* The rows of an image are filtered and deflated in pieces of PIECE_BYTES of filtered data (a
 * whole number of rows, at least one), each an independent piece of one zlib stream written as
 * one IDAT chunk (deflate.c). The piece size depends on the image width only, never on the
 * number of threads, so the bytes are the same whatever pool runs the pieces; an image that fits
 * one piece is deflated as one buffer. */
#define PIECE_BYTES ((size_t)4 << 20)
/* The fast levels (ISA-L, 1-2) cut 1 MiB pieces: a full flush costs them little, and on two
 * cores a 12-MP image's 35 pieces keep both busy to the end where 9 left one idle for the last
 * piece. */
#define PIECE_BYTES_FAST ((size_t)1 << 20)

/* Rows per piece: fixed by the width, channels and level, never by threads. */
static int piece_rows_for(size_t rowbytes, int h, int level)
{
    size_t piece = level >= 1 && level <= 2 ? PIECE_BYTES_FAST : PIECE_BYTES;

    return (int)DIP_MAX((size_t)1, DIP_MIN(piece / (rowbytes + 1), (size_t)h));
}

/* libpng's adaptive filter heuristic: the filter whose output has the smallest sum of bytes
 * taken as signed (minimum sum of absolute differences), ties to the lower filter number. One
 * pass sums all five candidates; a second writes the winner. The integer arithmetic is the same
 * on every path, so the AVX2 clone picks the same filters as the baseline one. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_ADDRESS__)
#define FILTER_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FILTER_CLONES
#endif

static inline uint32_t sabs(int v)
{
    return (uint32_t)abs((int8_t)(uint8_t)v);
}

/* Filters row `cur` (n bytes, bpp bytes per pixel) against `prev` (zeros for the first row) into
 * out[0] = filter type, out[1..n]. Without `all`, filter None. */
FILTER_CLONES
static void filter_row(const uint8_t *prev, const uint8_t *cur, size_t n, size_t bpp, int all,
                       uint8_t *out)
{
    uint32_t s[5] = {0, 0, 0, 0, 0}, s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    size_t m = DIP_MIN(bpp, n);
    int f = 0;

    if (all) {
        for (size_t i = 0; i < m; i++) {
            s[0] += sabs(cur[i]);
            s[1] += sabs(cur[i]);
            s[2] += sabs(cur[i] - prev[i]);
            s[3] += sabs(cur[i] - (prev[i] >> 1));
            s[4] += sabs(cur[i] - prev[i]); /* Paeth with a = c = 0 predicts b */
        }
        for (size_t i = bpp; i < n; i++) {
            int x = cur[i], a = cur[i - bpp], b = prev[i], c = prev[i - bpp];

            s0 += sabs(x);
            s1 += sabs(x - a);
            s2 += sabs(x - b);
            s3 += sabs(x - ((a + b) >> 1));
            s4 += sabs(x - paeth(a, b, c));
        }
        s[0] += s0;
        s[1] += s1;
        s[2] += s2;
        s[3] += s3;
        s[4] += s4;
        for (int k = 1; k < 5; k++)
            if (s[k] < s[f])
                f = k;
    }
    out[0] = (uint8_t)f;
    out++;
    switch (f) {
    case 0:
        memcpy(out, cur, n);
        break;
    case 1:
        memcpy(out, cur, m);
        for (size_t i = bpp; i < n; i++)
            out[i] = (uint8_t)(cur[i] - cur[i - bpp]);
        break;
    case 2:
        for (size_t i = 0; i < n; i++)
            out[i] = (uint8_t)(cur[i] - prev[i]);
        break;
    case 3:
        for (size_t i = 0; i < m; i++)
            out[i] = (uint8_t)(cur[i] - (prev[i] >> 1));
        for (size_t i = bpp; i < n; i++)
            out[i] = (uint8_t)(cur[i] - ((cur[i - bpp] + prev[i]) >> 1));
        break;
    default:
        for (size_t i = 0; i < m; i++)
            out[i] = (uint8_t)(cur[i] - prev[i]);
        for (size_t i = bpp; i < n; i++)
            out[i] = (uint8_t)(cur[i] - paeth(cur[i - bpp], prev[i], prev[i - bpp]));
        break;
    }
}

struct piece {
    uint8_t *at; /* where its IDAT chunk goes in the output */
    uint8_t *z;  /* deflated piece */
    size_t zlen;
    size_t rawlen; /* filtered bytes in it */
    uint32_t adler;
    int done; /* deflated (under penc.mu) */
};

struct penc {
    struct dip_view v;
    size_t rowbytes, bpp;
    int piece_rows, level;
    size_t npieces;
    struct piece *pieces;
    uint32_t adler; /* of all the filtered bytes: the zlib stream's trailer */
    /* Handing the file to opts->sink in order while pieces are still deflated (see emit). */
    const struct dip_encode_opts *opts;
    pthread_mutex_t mu;
    size_t next;        /* the first piece not yet handed out */
    int emitting;       /* a thread is handing out pieces (outside mu) */
    int sink_failed;    /* the sink refused: no more calls */
    uint32_t run_adler; /* of the pieces handed out so far */
};

/* Filters the rows of v (prev: the row above its first, NULL at the top of the image) and
 * deflates them as one piece. */
static int make_piece(const struct dip_view *v, const uint8_t *prev, size_t bpp, int level,
                      int last, struct piece *p)
{
    size_t n = (size_t)v->width * bpp, len = (size_t)v->height * (n + 1);
    uint8_t *buf = dip__malloc_large(len), *zeros = dip_calloc(1, n);
    int rc = 0;

    if (buf == NULL || zeros == NULL) {
        rc = DIP_ENOMEM;
        goto out;
    }
    for (int y = 0; y < v->height; y++) {
        const uint8_t *up = y > 0 ? v->data + (size_t)(y - 1) * v->stride : prev ? prev : zeros;

        filter_row(up, v->data + (size_t)y * v->stride, n, bpp, level > 0,
                   buf + (size_t)y * (n + 1));
    }
    p->rawlen = len;
    p->adler = dip__zadler32(1, buf, len);
    rc = dip__deflate_piece(buf, len, level, last, &p->z, &p->zlen);
out:
    dip_free(zeros);
    if (buf != NULL)
        dip__free_large(buf, len);
    return rc;
}

static void emit(struct penc *e, size_t i);

static int piece_task(void *ud, size_t i, int thread)
{
    struct penc *e = ud;
    int y0 = (int)i * e->piece_rows, y1 = DIP_MIN(e->v.height, y0 + e->piece_rows);
    struct dip_view rows = dip_view_sub(&e->v, (struct dip_rect){0, y0, e->v.width, y1 - y0});
    int rc;

    (void)thread;
    rc = make_piece(&rows, y0 > 0 ? e->v.data + (size_t)(y0 - 1) * e->v.stride : NULL, e->bpp,
                    e->level, i + 1 == e->npieces, &e->pieces[i]);
    if (rc == 0 && e->opts->sink != NULL)
        emit(e, i);
    return rc;
}

static uint8_t *put32(uint8_t *o, uint32_t x)
{
    o[0] = (uint8_t)(x >> 24);
    o[1] = (uint8_t)(x >> 16);
    o[2] = (uint8_t)(x >> 8);
    o[3] = (uint8_t)x;
    return o + 4;
}

/* Writes a chunk's length and type; the caller writes the data, then end_chunk the CRC. */
static uint8_t *put_chunk_head(uint8_t *o, const char *type, size_t n)
{
    o = put32(o, (uint32_t)n);
    memcpy(o, type, 4);
    return o + 4;
}

static uint8_t *end_chunk(uint8_t *start, uint8_t *o)
{
    /* start is the chunk's type field; the CRC covers type and data. */
    return put32(o, dip__zcrc32(0, start, (size_t)(o - start)));
}

/* ---- Handing the file to a sink while it is encoded ----
 * Pieces finish in any order on the pool; the thread that finishes the next piece in file order
 * hands it (and any finished pieces after it) to the sink, outside the lock, while the other
 * threads deflate on. So a caller writes most of the file while the rest is still encoded. */

static void put_head(uint8_t out[33], const struct penc *e)
{
    static const uint8_t ctypes[5] = {0, 0, 4, 2, 6};
    uint8_t *w, *t;

    memcpy(out, "\x89PNG\r\n\x1a\n", 8);
    w = put_chunk_head(out + 8, "IHDR", 13);
    t = w - 4;
    w = put32(w, (uint32_t)e->v.width);
    w = put32(w, (uint32_t)e->v.height);
    *w++ = 8;
    *w++ = ctypes[e->bpp];
    *w++ = 0; /* deflate */
    *w++ = 0; /* adaptive filtering */
    *w++ = 0; /* not interlaced */
    end_chunk(t, w);
}

/* Piece k as its IDAT chunk, to the sink: length and type, the zlib header before the first
 * piece, the data, the Adler-32 after the last, the CRC; then IEND after the last. */
static int sink_piece(const struct penc *e, size_t k, uint32_t adler)
{
    const struct dip_encode_opts *o = e->opts;
    const struct piece *p = &e->pieces[k];
    int first = k == 0, last = k + 1 == e->npieces;
    uint8_t head[33 + 10], tail[8 + 12], *w = head;
    uint32_t crc;
    int rc = 0;

    if (first) {
        put_head(head, e);
        w += 33;
    }
    w = put_chunk_head(w, "IDAT", p->zlen + (first ? 2 : 0) + (last ? 4 : 0));
    if (first) {
        dip__zlib_header(e->level, w);
        w += 2;
    }
    crc = dip__zcrc32(0, w - (first ? 6 : 4), first ? 6 : 4);
    crc = dip__zcrc32(crc, p->z, p->zlen);
    {
        uint8_t *t = tail;
        if (last) {
            t = put32(t, adler);
            crc = dip__zcrc32(crc, tail, 4);
        }
        t = put32(t, crc);
        if (last) {
            t = put_chunk_head(t, "IEND", 0);
            t = end_chunk(t - 4, t);
        }
        rc = o->sink(o->sink_ud, head, (size_t)(w - head));
        if (rc == 0)
            rc = o->sink(o->sink_ud, p->z, p->zlen);
        if (rc == 0)
            rc = o->sink(o->sink_ud, tail, (size_t)(t - tail));
    }
    return rc;
}

static void emit(struct penc *e, size_t i)
{
    pthread_mutex_lock(&e->mu);
    e->pieces[i].done = 1;
    while (!e->emitting && e->next < e->npieces && e->pieces[e->next].done) {
        size_t k = e->next;
        const struct piece *p = &e->pieces[k];
        uint32_t adler =
            k == 0 ? p->adler : dip__zadler32_combine(e->run_adler, p->adler, p->rawlen);
        int failed = e->sink_failed;

        e->emitting = 1;
        e->run_adler = adler;
        pthread_mutex_unlock(&e->mu);
        if (!failed && sink_piece(e, k, adler) != 0)
            failed = 1;
        pthread_mutex_lock(&e->mu);
        e->sink_failed = failed;
        e->emitting = 0;
        e->next = k + 1;
    }
    pthread_mutex_unlock(&e->mu);
}

/* Writes piece i as one IDAT chunk at its place: the first opens the zlib stream, the last
 * closes it with the Adler-32 of all filtered bytes. */
static int idat_task(void *ud, size_t i, int thread)
{
    const struct penc *e = ud;
    const struct piece *p = &e->pieces[i];
    int first = i == 0, last = i + 1 == e->npieces;
    uint8_t *w, *t;

    (void)thread;
    w = put_chunk_head(p->at, "IDAT", p->zlen + (first ? 2 : 0) + (last ? 4 : 0));
    t = w - 4;
    if (first) {
        dip__zlib_header(e->level, w);
        w += 2;
    }
    memcpy(w, p->z, p->zlen);
    w += p->zlen;
    if (last)
        w = put32(w, e->adler);
    end_chunk(t, w);
    return 0;
}

static int png_encode(const dip_image *img, const struct dip_encode_opts *opts, uint8_t **out,
                      size_t *out_len, struct dip_err *err)
{
    struct penc e;
    uint8_t *o = NULL, *w;
    size_t total;
    uint32_t adler = 1;
    int rc, ch = dip_image_channels(img);

    memset(&e, 0, sizeof(e));
    if (opts->png_level < 0 || opts->png_level > 9)
        return dip_err_set(err, DIP_EINVAL, "png: compression level %d outside 0..9",
                           opts->png_level);
    if (ch < 1 || ch > 4)
        return dip_err_set(err, DIP_EFORMAT, "png: cannot encode %d channels", ch);
    e.v = dip_image_view(img);
    if (e.v.width < 1 || e.v.height < 1 || (uint32_t)e.v.width > PNG_MAX_U31 ||
        (uint32_t)e.v.height > PNG_MAX_U31)
        return dip_err_set(err, DIP_EINVAL, "png: cannot encode a %dx%d image", e.v.width,
                           e.v.height);
    e.bpp = (size_t)ch;
    e.rowbytes = (size_t)e.v.width * e.bpp;
    e.level = opts->png_level;
    e.piece_rows = piece_rows_for(e.rowbytes, e.v.height, e.level);
    e.npieces = ((size_t)e.v.height + (size_t)e.piece_rows - 1) / (size_t)e.piece_rows;
    e.opts = opts;
    pthread_mutex_init(&e.mu, NULL);
    e.pieces = dip_calloc(e.npieces, sizeof(*e.pieces));
    if (e.pieces == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "png: out of memory encoding %dx%d", e.v.width,
                         e.v.height);
        goto out;
    }
    rc = dip_pool_for(opts->pool, e.npieces, piece_task, &e);
    if (rc) {
        rc = rc == DIP_ENOMEM
                 ? dip_err_set(err, rc, "png: out of memory encoding %dx%d", e.v.width, e.v.height)
                 : dip_err_set(err, rc, "png: encoding failed (%s)", dip_strerror(rc));
        goto out;
    }
    /* Signature, IHDR, one IDAT per piece (the first opens the zlib stream, the last closes it
     * with the Adler-32 of all filtered bytes), IEND. */
    total = 8 + 25 + 12 + 2 + 4;
    for (size_t i = 0; i < e.npieces; i++) {
        /* One IDAT per piece: a piece is 4 MiB of rows, or one row; only a row of some 2 GiB
         * could overflow a chunk. */
        if (e.pieces[i].zlen > PNG_MAX_U31 - 6) {
            rc = dip_err_set(err, DIP_EINVAL, "png: a %dx%d image has rows too long to encode",
                             e.v.width, e.v.height);
            goto out;
        }
        total += 12 + e.pieces[i].zlen;
        adler = i == 0 ? e.pieces[i].adler
                       : dip__zadler32_combine(adler, e.pieces[i].adler, e.pieces[i].rawlen);
    }
    if (opts->sink != NULL && !e.sink_failed && e.next == e.npieces) {
        *out = NULL; /* the sink has the whole file (include/dip/codec.h) */
        *out_len = total;
        goto out;
    }
    o = dip__malloc_large(total); /* huge pages for a large file; the caller's dip_free frees it */
    if (o == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "png: out of memory for %zu output bytes", total);
        goto out;
    }
    put_head(o, &e);
    w = o + 33;
    /* Each IDAT's place is known: the pieces copy themselves there and sum their CRCs on the
     * pool (for a large image, 16 MB copied and checksummed on one core was a serial step). */
    for (size_t i = 0; i < e.npieces; i++) {
        e.pieces[i].at = w;
        w += 12 + e.pieces[i].zlen + (i == 0 ? 2 : 0) + (i + 1 == e.npieces ? 4 : 0);
    }
    e.adler = adler;
    rc = dip_pool_for(opts->pool, e.npieces, idat_task, &e);
    if (rc)
        goto out; /* idat_task cannot fail */
    w = put_chunk_head(w, "IEND", 0);
    w = end_chunk(w - 4, w);
    DIP_ASSERT((size_t)(w - o) == total);
    *out = o;
    *out_len = total;
    o = NULL; /* the caller owns it now */
out:
    for (size_t i = 0; e.pieces != NULL && i < e.npieces; i++)
        dip_free(e.pieces[i].z);
    dip_free(e.pieces);
    dip_free(o);
    pthread_mutex_destroy(&e.mu);
    return rc;
}

/* ---- Encoding in rows ---- */

/* png_encode's pieces one at a time: rows are gathered into a piece; each full piece but the
 * last is filtered (against the last row of the piece before), deflated and written as its IDAT
 * at once; the last one, with the Adler-32 of everything, at the end. */
struct pwrows {
    int w, h, ch, level, piece_rows, filled, y0, first;
    dip_image *piece;
    uint8_t *prev; /* the last row of the piece before (y0 > 0) */
    uint32_t adler;
    struct dip__buf out;
};

static void pwrows_free(void *st)
{
    struct pwrows *e = st;

    if (e == NULL)
        return;
    dip_image_unref(e->piece);
    dip_free(e->prev);
    dip__buf_free(&e->out);
    dip_free(e);
}

/* Appends a chunk whose data is pre + data + post. */
static int put_chunk(struct dip__buf *b, const char *type, const uint8_t *pre, size_t npre,
                     const uint8_t *data, size_t n, const uint8_t *post, size_t npost)
{
    uint8_t head[8], tail[4];
    uint32_t crc;
    int rc;

    put32(head, (uint32_t)(npre + n + npost));
    memcpy(head + 4, type, 4);
    crc = dip__zcrc32(0, head + 4, 4);
    if (npre)
        crc = dip__zcrc32(crc, pre, npre);
    if (n)
        crc = dip__zcrc32(crc, data, n);
    if (npost)
        crc = dip__zcrc32(crc, post, npost);
    put32(tail, crc);
    rc = dip__buf_append(b, head, 8);
    if (rc == 0)
        rc = dip__buf_append(b, pre, npre);
    if (rc == 0)
        rc = dip__buf_append(b, data, n);
    if (rc == 0)
        rc = dip__buf_append(b, post, npost);
    if (rc == 0)
        rc = dip__buf_append(b, tail, 4);
    return rc;
}

/* Deflates the gathered piece and writes its IDAT (the last: with the Adler-32, then IEND). */
static int pw_flush(struct pwrows *e, int last, struct dip_err *err)
{
    struct dip_view v = dip_image_view(e->piece);
    struct piece p = {0};
    uint8_t hdr[2], tail[4];
    int rc;

    v.height = e->filled;
    rc = make_piece(&v, e->y0 > 0 ? e->prev : NULL, (size_t)e->ch, e->level, last, &p);
    if (rc == 0 && p.zlen > PNG_MAX_U31 - 6)
        rc = DIP_EINVAL;
    if (rc) {
        dip_free(p.z);
        return rc == DIP_EINVAL
                   ? dip_err_set(err, rc, "png: a %dx%d image has rows too long to encode", e->w,
                                 e->h)
                   : dip_err_set(err, rc, "png: out of memory encoding %dx%d", e->w, e->h);
    }
    e->adler = e->first ? p.adler : dip__zadler32_combine(e->adler, p.adler, p.rawlen);
    dip__zlib_header(e->level, hdr);
    put32(tail, e->adler);
    rc = put_chunk(&e->out, "IDAT", hdr, e->first ? 2 : 0, p.z, p.zlen, tail, last ? 4 : 0);
    if (rc == 0 && last)
        rc = put_chunk(&e->out, "IEND", NULL, 0, NULL, 0, NULL, 0);
    dip_free(p.z);
    if (rc)
        return dip_err_set(err, rc, "png: out of memory for the output");
    e->first = 0;
    memcpy(e->prev, v.data + (size_t)(e->filled - 1) * v.stride, (size_t)e->w * (size_t)e->ch);
    e->y0 += e->filled;
    e->filled = 0;
    return 0;
}

static int pwrows_write(void *st, const struct dip_view *rows, struct dip_err *err)
{
    struct pwrows *e = st;
    struct dip_view b = dip_image_view(e->piece);

    for (int done = 0; done < rows->height;) {
        int n = DIP_MIN(rows->height - done, e->piece_rows - e->filled);
        struct dip_view src = dip_view_sub(rows, (struct dip_rect){0, done, e->w, n});
        struct dip_view dst = dip_view_sub(&b, (struct dip_rect){0, e->filled, e->w, n});

        dip_view_copy(&src, &dst);
        e->filled += n;
        done += n;
        if (e->filled == e->piece_rows && e->y0 + e->filled < e->h) {
            int rc = pw_flush(e, 0, err);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int pwrows_finish(void *st, uint8_t **out, size_t *out_len, struct dip_err *err)
{
    struct pwrows *e = st;
    int rc = pw_flush(e, 1, err);

    if (rc)
        return rc;
    *out = e->out.bytes;
    *out_len = e->out.len;
    e->out.bytes = NULL; /* the caller owns it now */
    dip__buf_free(&e->out);
    return 0;
}

static int png_enc_open(int w, int h, int ch, const struct dip_encode_opts *opts,
                        struct dip__renc *re, struct dip_err *err)
{
    static const uint8_t ctypes[5] = {0, 0, 4, 2, 6};
    struct pwrows *e = NULL;
    uint8_t ihdr[13];
    size_t rowbytes;
    int rc;

    if (opts->png_level < 0 || opts->png_level > 9)
        return dip_err_set(err, DIP_EINVAL, "png: compression level %d outside 0..9",
                           opts->png_level);
    if (ch < 1 || ch > 4)
        return dip_err_set(err, DIP_EFORMAT, "png: cannot encode %d channels", ch);
    if (w < 1 || h < 1 || (uint32_t)w > PNG_MAX_U31 || (uint32_t)h > PNG_MAX_U31)
        return dip_err_set(err, DIP_EINVAL, "png: cannot encode a %dx%d image", w, h);
    e = dip_calloc(1, sizeof(*e));
    if (e == NULL)
        return dip_err_set(err, DIP_ENOMEM, "png: out of memory encoding %dx%d", w, h);
    dip__buf_init(&e->out, SIZE_MAX / 2);
    e->w = w;
    e->h = h;
    e->ch = ch;
    e->level = opts->png_level;
    e->first = 1;
    rowbytes = (size_t)w * (size_t)ch;
    e->piece_rows = piece_rows_for(rowbytes, h, e->level);
    rc = dip_image_new(w, e->piece_rows, ch, &e->piece);
    e->prev = dip_malloc(rowbytes);
    if (rc || e->prev == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "png: out of memory encoding %dx%d", w, h);
        goto out;
    }
    put32(ihdr, (uint32_t)w);
    put32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;
    ihdr[9] = ctypes[ch];
    ihdr[10] = 0; /* deflate */
    ihdr[11] = 0; /* adaptive filtering */
    ihdr[12] = 0; /* not interlaced */
    rc = dip__buf_append(&e->out, "\x89PNG\r\n\x1a\n", 8);
    if (rc == 0)
        rc = put_chunk(&e->out, "IHDR", NULL, 0, ihdr, 13, NULL, 0);
    if (rc) {
        rc = dip_err_set(err, rc, "png: out of memory for the output");
        goto out;
    }
    re->st = e;
    re->write = pwrows_write;
    re->finish = pwrows_finish;
    re->free = pwrows_free;
    e = NULL; /* re owns it now */
out:
    pwrows_free(e);
    return rc;
}

static void png_version(char *buf, size_t len)
{
    char d[64];

    dip__deflate_versions(d, sizeof(d));
    snprintf(buf, len, "libpng %s (writing: %s)", png_get_libpng_ver(NULL), d);
}

const struct dip__codec dip__codec_png = {
    .format = DIP_FORMAT_PNG,
    .probe = png_probe,
    .decode = png_decode,
    .encode = png_encode,
    .version = png_version,
    .rows_open = png_rows_open,
    .enc_open = png_enc_open,
};
