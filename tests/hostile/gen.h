/* SPDX-License-Identifier: MIT */
/* Generators of small valid images and of hostile inputs (pixel-count bombs, oversized
 * dimensions, absurd lengths, thousands of tags, scans or frames) in every format dip reads,
 * written byte by byte so that each header field is under the test's control. Shared by the
 * hostile-input tests and the fuzz seed-corpus generator. Test code: aborts on out of memory. */
#ifndef DIP_TEST_GEN_H
#define DIP_TEST_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h" /* the byte builder (tests/harness) */

/* PNG: gray 8-bit (color type 0) w x h with pixel value v, compressed with zlib. */
void gen_png_gray(struct bytes *b, uint32_t w, uint32_t h, int v);
/* PNG: one chunk with a CRC over type and data. */
void gen_png_chunk(struct bytes *b, const char *type, const void *data, uint32_t len);
/* PNG: signature and an IHDR of the given fields. */
void gen_png_head(struct bytes *b, uint32_t w, uint32_t h, int depth, int ctype);

/* JPEG: baseline 8-bit gray w x h, every block flat gray (DC 0, EOB), one-code Huffman tables. */
void gen_jpeg_gray(struct bytes *b, unsigned w, unsigned h);
/* JPEG: SOI, DQT, SOF (marker 0xC0 or 0xC2) and DHT of gen_jpeg_gray, no scan. */
void gen_jpeg_head(struct bytes *b, unsigned w, unsigned h, int sof);
/* JPEG: the headers and a start-of-scan with no entropy-coded data after it: all a decoder
 * reads before it allocates. */
void gen_jpeg_header_only(struct bytes *b, unsigned w, unsigned h, int sof);
/* JPEG: progressive w x h with ncomp (1 or 3) components and a full successive-approximation
 * progression per component: 14 DC scans and 14 scans per AC coefficient, 896 scans each
 * (2688 for 3 components). */
void gen_jpeg_many_scans(struct bytes *b, unsigned w, unsigned h, int ncomp);

/* WebP: lossless (VP8L) w x h (1..16384), every pixel the same, coded in zero bits. */
void gen_webp_lossless(struct bytes *b, unsigned w, unsigned h);
/* WebP: VP8X canvas cw x ch (1..2^24) around a lossless w x h image. */
void gen_webp_vp8x(struct bytes *b, uint32_t cw, uint32_t ch, unsigned w, unsigned h);
/* WebP: lossy VP8 key frame header claiming w x h (1..16383) and no partition data. */
void gen_webp_vp8_head(struct bytes *b, unsigned w, unsigned h);
/* WebP: animated, canvas cw x ch, nframes 1x1 frames at (0,0). */
void gen_webp_anim(struct bytes *b, uint32_t cw, uint32_t ch, unsigned nframes);

/* TIFF (little-endian): gray 8-bit w x h, one strip, uncompressed (deflate when `zip`), pixels
 * v; extra_tags additional private SHORT tags; when strip_missing, the strip holds only the
 * first 16 bytes of a deflate stream (a header-only image: all a reader sees before it
 * allocates). */
void gen_tiff_gray(struct bytes *b, uint32_t w, uint32_t h, int v, int zip, unsigned extra_tags,
                   int strip_missing);
/* TIFF: npages pages of 1x1 gray chained by next-IFD offsets; loop: the last points to the first.
 */
void gen_tiff_pages(struct bytes *b, unsigned npages, int loop);
/* TIFF: a 1x1 gray image whose ImageDescription claims `count` bytes at an offset past EOF. */
void gen_tiff_big_tag(struct bytes *b, uint32_t count);

/* GIF: screen sw x sh, one frame fw x fh at (0,0) of constant colour index 1 (LZW-coded),
 * nframes copies of that frame (each with a graphic control extension). */
void gen_gif(struct bytes *b, unsigned sw, unsigned sh, unsigned fw, unsigned fh, unsigned nframes);
/* GIF: header and screen descriptor only. */
void gen_gif_head(struct bytes *b, unsigned sw, unsigned sh);

/* BMP: 24-bit w x h (height negative = top-down) with pixel value v. */
void gen_bmp24(struct bytes *b, int32_t w, int32_t h, int v);
/* BMP: headers only (no pixel data) for w x h at `bpp` bits, compression `comp`, colours used. */
void gen_bmp_head(struct bytes *b, int32_t w, int32_t h, int bpp, int comp, uint32_t clr_used,
                  uint32_t off_bits);
/* BMP: 8-bit RLE w x h whose RLE stream ends at once (end of bitmap): valid, tiny, huge. */
void gen_bmp_rle8_bomb(struct bytes *b, int32_t w, int32_t h);
/* BMP: 8-bit RLE w x h coded in full, runs of 255 white pixels (127 pixels per byte). */
void gen_bmp_rle8_full(struct bytes *b, int32_t w, int32_t h);

/* PNM: P5 (gray) or P6 (rgb) w x h, maxval 255, pixel value v. */
void gen_pnm(struct bytes *b, int p, unsigned w, unsigned h, int v);
/* PNM: P4 (bitmap) w x h, all white. */
void gen_pbm(struct bytes *b, unsigned w, unsigned h);

#endif
