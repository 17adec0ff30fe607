/* SPDX-License-Identifier: MIT */
/* The contract between codec.c (sniffing, dispatch, limits on input size, EXIF orientation) and
 * one file per format. A format file is the only place its library is included; its library's
 * errors (libpng's longjmp, libjpeg's error_exit) never leave it. */
#ifndef DIP_CODEC_INTERNAL_H
#define DIP_CODEC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "dip/codec.h"
#include "dip/pool.h"

/* A format's row decoder and encoder, driven by stream.c (which checks row counts and sizes,
 * so `read` and `write` get pieces of the right width and channels, in order, never past the
 * last row). `st` is the format's state, freed by `free` (also after finish or an error). */
struct dip__rdec {
    void *st;
    int (*read)(void *st, const struct dip_view *rows, struct dip_err *err);
    void (*free)(void *st);
};
struct dip__renc {
    void *st;
    int (*write)(void *st, const struct dip_view *rows, struct dip_err *err);
    int (*finish)(void *st, uint8_t **out, size_t *out_len, struct dip_err *err);
    void (*free)(void *st);
};

struct dip__codec {
    dip_format format;
    /* Header only; fills info (format already set by the caller), checks dims with
     * dip_limits_check_dims(lim, "<fmt>", ...) and any other limit the header can tell. */
    int (*probe)(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                 struct dip_image_info *info, struct dip_err *err);
    /* First frame/page to 8 bits, 1..4 channels; limits checked before pixels are allocated.
     * Sets info->orientation from EXIF when the format carries it; does NOT rotate (codec.c
     * does, per opts->autorotate). */
    int (*decode)(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                  const struct dip_decode_opts *opts, dip_image **out, struct dip_image_info *info,
                  struct dip_err *err);
    /* NULL when the format is decode-only. */
    int (*encode)(const dip_image *img, const struct dip_encode_opts *opts, uint8_t **out,
                  size_t *out_len, struct dip_err *err);
    /* "libpng 1.6.39" */
    void (*version)(char *buf, size_t len);
    /* Optional: a row decoder, after the same header checks as decode (limits before any pixel
     * buffer); fills info like decode (orientation included). Returns 0 with d->read NULL when
     * this file must be decoded whole (interlaced, a colour model only the library renders). */
    int (*rows_open)(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                     struct dip_image_info *info, struct dip__rdec *d, struct dip_err *err);
    /* Optional: a row encoder giving the bytes of encode; checks the options as encode does. */
    int (*enc_open)(int w, int h, int ch, const struct dip_encode_opts *opts, struct dip__renc *e,
                    struct dip_err *err);
};

/* codec.c's dispatch for stream.c: the codec of buf after the input checks of a decode, and
 * the codec that encodes f (NULL when none). */
int dip__codec_for_input(const void *buf, size_t len, const struct dip_limits *lim,
                         const struct dip__codec **codec, struct dip_err *err);
const struct dip__codec *dip__codec_find(dip_format f);

extern const struct dip__codec dip__codec_png;
extern const struct dip__codec dip__codec_jpeg;
extern const struct dip__codec dip__codec_webp;
extern const struct dip__codec dip__codec_tiff;
extern const struct dip__codec dip__codec_gif;
extern const struct dip__codec dip__codec_bmp;
extern const struct dip__codec dip__codec_pnm;

/* EXIF: orientation (1..8) from a TIFF-structured EXIF block (starting at "II*\0" or "MM\0*",
 * optionally preceded by "Exif\0\0"). Returns 1 when absent or unreadable. Bounded by len. */
int dip__exif_orientation(const uint8_t *exif, size_t len);

/* Applies EXIF orientation o (2..8) to *img, replacing it. */
int dip__orient(dip_image **img, int o);

/* Growable output: core's capped buffer (core/buf.h); dip__buf_append fails with DIP_ELIMIT past
 * the cap and DIP_ENOMEM when allocation fails, and the bytes are freed on either failure. */
#define dip__buf_append dip__buf_add

/* ---- Deflate (deflate.c: libdeflate, ISA-L, zlib) ---- */

/* Compresses in[0..len) at `level` (0..9, PNG/zlib meaning) as one piece of a raw deflate stream:
 * independent of every other piece (no history), ending on a byte boundary, and ending the stream
 * only when `last`. Pieces joined in order, behind dip__zlib_header() and followed by the
 * big-endian Adler-32 of all input, make a zlib stream. *out is dip_malloc'ed. Returns 0 or
 * DIP_ENOMEM. Thread-safe. */
int dip__deflate_piece(const uint8_t *in, size_t len, int level, int last, uint8_t **out,
                       size_t *out_len);
/* The two-byte zlib header for `level`. */
void dip__zlib_header(int level, uint8_t hdr[2]);
/* A whole zlib stream (one piece, header and Adler-32) of in[0..len). *out is dip_malloc'ed. */
int dip__zlib_compress(const uint8_t *in, size_t len, int level, uint8_t **out, size_t *out_len);
/* Checksums: start Adler-32 at 1 and CRC-32 at 0. */
uint32_t dip__zadler32(uint32_t adler, const uint8_t *p, size_t len);
uint32_t dip__zadler32_combine(uint32_t a, uint32_t b, size_t len_b);
uint32_t dip__zcrc32(uint32_t crc, const uint8_t *p, size_t len);
/* Inflates a whole zlib (zlib=1) or raw deflate stream from in[0..len) into out[0..out_len)
 * with libdeflate; *in_used and *out_got tell how much of each the stream took. A raw stream
 * refers to nothing before its start (a reference before it is BAD). Thread-safe. */
enum { DIP__INFLATE_OK, DIP__INFLATE_BAD, DIP__INFLATE_TOO_LONG, DIP__INFLATE_NOMEM };
int dip__inflate(const uint8_t *in, size_t len, int zlib, uint8_t *out, size_t out_len,
                 size_t *in_used, size_t *out_got);
/* "libdeflate 1.14, ISA-L 2.30.0" */
void dip__deflate_versions(char *buf, size_t len);

#endif
