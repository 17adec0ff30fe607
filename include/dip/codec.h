/* SPDX-License-Identifier: MIT */
/* Image codecs: sniff the format from magic bytes, probe the header (no pixel decode), decode into
 * an 8-bit dip_image, encode a dip_image. Everything works on bytes in memory, so the same calls
 * serve files, HTTP uploads and MPI messages. Every decode takes a struct dip_limits and checks it
 * against the header before allocating pixels; decoder warnings are errors (fail closed). */
#ifndef DIP_CODEC_H
#define DIP_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "image.h"
#include "limits.h"
#include "pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dip_format {
    DIP_FORMAT_UNKNOWN = 0,
    DIP_FORMAT_PNG,
    DIP_FORMAT_JPEG,
    DIP_FORMAT_WEBP,
    DIP_FORMAT_TIFF,
    DIP_FORMAT_GIF,
    DIP_FORMAT_BMP,
    DIP_FORMAT_PNM,
    DIP_FORMAT_COUNT
} dip_format;

/** What a header says. */
struct dip_image_info {
    dip_format format;
    int width; /* as stored, before any EXIF rotation */
    int height;
    int channels;    /* channels dip decodes to: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
    int bit_depth;   /* bits per sample in the source (1, 2, 4, 8, 16, ...) */
    int frames;      /* frames or pages seen, capped by limits->max_frames; 1 for still formats */
    int orientation; /* EXIF orientation 1..8 (1 when absent) */
    int progressive; /* JPEG: progressive; PNG: interlaced */
    int lossless;    /* WebP: lossless bitstream */
    char color[16]; /* source colour model: "gray", "rgb", "palette", "cmyk", "ycck", "ycbcr" ... */
};

/** Decode options. Zero-initialised means the defaults below are off, so use
 * dip_decode_opts_default(). */
struct dip_decode_opts {
    int autorotate; /* apply EXIF orientation (default 1) */
    dip_pool *pool; /* threads one image's decode may use (NULL: the caller's only); borrowed */
};

/** Encode options. Zero-initialised is not valid: start from dip_encode_opts_default(). */
struct dip_encode_opts {
    dip_format format;
    int quality;       /* JPEG and lossy WebP, 1..100 (default 90) */
    int subsampling;   /* JPEG chroma: 444, 422 or 420 (default 420) */
    int png_level;     /* PNG zlib level 0..9 (default 6) */
    int webp_lossless; /* 1: lossless WebP (default 0) */
    dip_pool *pool;    /* threads one image's encode may use (NULL: the caller's only); the
                        * bytes never depend on it. Borrowed for the call */
    /* Optional (NULL: none): an encoder that finishes its file in pieces (PNG) hands each part
     * of the file to sink(sink_ud, bytes, n) as soon as it is final, in file order, one call at
     * a time, from whichever pool thread finished it; a caller writes them to the file while the
     * rest is encoded. When the sink took the whole file, the encode returns *out NULL and
     * *out_len the file's length (nothing is kept twice); otherwise the whole file comes back in
     * *out as usual. A non-zero return stops the calls for this encode (the encode goes on).
     * Encoders without pieces never call it; a failed encode may have called it with a
     * beginning of the file. */
    int (*sink)(void *sink_ud, const uint8_t *bytes, size_t n);
    void *sink_ud;
};

void dip_decode_opts_default(struct dip_decode_opts *o);
void dip_encode_opts_default(struct dip_encode_opts *o);

/** Short lower-case name ("png", "jpeg", ...), "unknown" for DIP_FORMAT_UNKNOWN. */
const char *dip_format_name(dip_format f);
/** Format from a name or extension, case-insensitive, with or without a dot ("jpg", ".JPEG",
 * "tif", "pgm", "ppm", "pnm"). DIP_FORMAT_UNKNOWN when not known. */
dip_format dip_format_from_name(const char *name);
/** Format from the extension of a path; DIP_FORMAT_UNKNOWN when none or unknown. */
dip_format dip_format_from_path(const char *path);
/** 1 when dip can encode `f` (GIF is decode-only). */
int dip_format_can_encode(dip_format f);
/** Conventional file extension without the dot ("png", "jpg", ...). */
const char *dip_format_ext(dip_format f);

/** Format from the first bytes (8 to 16 bytes suffice); DIP_FORMAT_UNKNOWN when none matches. */
dip_format dip_codec_sniff(const void *buf, size_t len);

/** Reads the header only: fills `info` without decoding pixels, checks `lim` (dimensions, bytes,
 * frame and scan counts where the header tells them). Returns 0, DIP_EFORMAT, DIP_ECORRUPT,
 * DIP_ELIMIT (err names the limit), DIP_ENOMEM. Thread-safe. */
/** `len` bytes gzip-compressed (RFC 1952) at deflate `level` 1..9 into *out (dip_malloc'ed,
 * *out_len bytes), with the PNG encoder's deflate engines (for HTTP Content-Encoding: gzip). */
int dip_gzip(const void *data, size_t len, int level, uint8_t **out, size_t *out_len);

int dip_codec_probe(const void *buf, size_t len, const struct dip_limits *lim,
                    struct dip_image_info *info, struct dip_err *err);

/** Decodes the first frame/page into a new 8-bit image. `info` (optional) receives the header's
 * facts. Limits are checked from the header before pixels are allocated; corrupt or truncated data
 * and decoder warnings give DIP_ECORRUPT. The caller owns *out (dip_image_unref). Thread-safe. */
int dip_codec_decode(const void *buf, size_t len, const struct dip_limits *lim,
                     const struct dip_decode_opts *opts, dip_image **out,
                     struct dip_image_info *info, struct dip_err *err);

/** Encodes `img` as opts->format. *out is allocated with dip_malloc and owned by the caller
 * (dip_free). Returns DIP_EFORMAT when the format cannot be encoded or cannot hold the channel
 * count (the encoder converts where lossless and documented, e.g. gray+alpha to RGBA for JPEG is
 * refused, RGBA to JPEG drops alpha: see docs/formats.md). Thread-safe. */
int dip_codec_encode(const dip_image *img, const struct dip_encode_opts *opts, uint8_t **out,
                     size_t *out_len, struct dip_err *err);

/* ---- JPEG in bands ----
 * A large JPEG is encoded as bands of whole MCU rows, each encoded alone (on any thread or
 * machine), whose entropy-coded segments are joined behind one header with restart markers
 * (RST0..RST7 in turn, the restart interval being one band). dip_codec_encode() does this on the
 * pool for images taller than one band; a caller that streams strips (a cluster coordinator)
 * uses the three calls below and gets the same bytes. */

/** Rows per band for an image `width` wide with `channels` and opts' subsampling: 128 or fewer
 * (a multiple of the MCU height; a restart interval holds at most 65535 MCUs). Every band but the
 * last has exactly this many rows. */
int dip_jpeg_band_rows(int width, int channels, const struct dip_encode_opts *opts);
/** The entropy-coded segment of one band (a view of band_rows rows, fewer for the last band):
 * the bytes between two restart markers. *out is dip_malloc'ed. Thread-safe. */
int dip_jpeg_encode_band(const struct dip_view *band, const struct dip_encode_opts *opts,
                         uint8_t **out, size_t *out_len, struct dip_err *err);
/** The headers (SOI to the end of SOS, with DRI) of a width x height image. *out dip_malloc'ed. */
int dip_jpeg_encode_head(int width, int height, int channels, const struct dip_encode_opts *opts,
                         uint8_t **out, size_t *out_len, struct dip_err *err);
/** head + segment 0 + RST0 + segment 1 + RST1 + ... + last segment + EOI into *out
 * (dip_malloc'ed). */
int dip_jpeg_join(const uint8_t *head, size_t head_len, const uint8_t *const *segs,
                  const size_t *seg_lens, size_t nsegs, uint8_t **out, size_t *out_len,
                  struct dip_err *err);

/* ---- Rows: decoding and encoding in strips ----
 * A caller that must not hold a whole image (a cluster coordinator feeding tiles) reads the
 * decoded rows top to bottom in pieces of any height and writes rows to an encoder as they come.
 * JPEG (libjpeg-turbo's scanline API; the encoder writes the same restart-marker bands as
 * dip_codec_encode), PNG (not interlaced) and TIFF (strips or rows of tiles, in the colour models
 * dip reads itself) stream; everything else falls back to a whole-image decode on the first
 * read, or to one encode of the buffered image at the end (dip_decoder_streams and
 * dip_encoder_streams tell which). The pixels and the encoded bytes are those of
 * dip_codec_decode and dip_codec_encode, whatever the piece heights. */

typedef struct dip_decoder dip_decoder;
typedef struct dip_encoder dip_encoder;

/** Opens a decoder on buf (borrowed until dip_decoder_free; it must not change), checking the
 * input size and the header's dimensions against `lim` before anything is allocated for pixels.
 * `info` (optional) receives the header's facts. With opts->autorotate and an EXIF orientation
 * other than 1 the decoder falls back to a whole decode (rotated). Returns 0, DIP_EFORMAT,
 * DIP_ECORRUPT, DIP_ELIMIT or DIP_ENOMEM; *out is freed with dip_decoder_free. */
int dip_decoder_open(const void *buf, size_t len, const struct dip_limits *lim,
                     const struct dip_decode_opts *opts, dip_decoder **out,
                     struct dip_image_info *info, struct dip_err *err);
/** Size of the rows it gives: width, height and channels (after any rotation). */
void dip_decoder_dims(const dip_decoder *d, int *width, int *height, int *channels);
/** 1 when it decodes piece by piece, 0 when its first read decodes the whole image. */
int dip_decoder_streams(const dip_decoder *d);
/** Decodes the next rows->height rows into rows (width and channels as dip_decoder_dims).
 * Corrupt or truncated data gives DIP_ECORRUPT (for the last rows also what follows them, as
 * dip_codec_decode checks); after any error every later read fails. Reading past the last row
 * is DIP_EINVAL. */
int dip_decoder_read_rows(dip_decoder *d, const struct dip_view *rows, struct dip_err *err);
/** Rows read so far. */
int dip_decoder_row(const dip_decoder *d);
void dip_decoder_free(dip_decoder *d);

/** Opens an encoder of a width x height image with `channels` as opts->format (opts copied;
 * opts->pool is used while the encoder lives, when the whole-image fallback encodes). The same
 * options as dip_codec_encode are refused with the same errors. *out: dip_encoder_free. */
int dip_encoder_open(int width, int height, int channels, const struct dip_encode_opts *opts,
                     dip_encoder **out, struct dip_err *err);
/** 1 when it encodes piece by piece, 0 when it keeps the rows for one encode at the end. */
int dip_encoder_streams(const dip_encoder *e);
/** The next rows->height rows (width and channels as opened). Writing past the last row is
 * DIP_EINVAL; after any error every later call fails. */
int dip_encoder_write_rows(dip_encoder *e, const struct dip_view *rows, struct dip_err *err);
/** After the last row: the whole file into *out (dip_malloc'ed, the caller frees it), the same
 * bytes as dip_codec_encode of the whole image. DIP_EINVAL when rows are missing. */
int dip_encoder_finish(dip_encoder *e, uint8_t **out, size_t *out_len, struct dip_err *err);
void dip_encoder_free(dip_encoder *e);

/** Reads a whole file into memory (dip_malloc), refusing files over max_bytes with DIP_ELIMIT.
 * Errors name the path. */
int dip_file_read(const char *path, size_t max_bytes, uint8_t **out, size_t *out_len,
                  struct dip_err *err);
/** dip_file_read that may read a large file (16 MiB or more) in two halves at once, on the
 * calling thread and one of its own, when `threads` (the threads a job may use; 0: all cores)
 * is not 1. The same bytes and errors. */
int dip_file_read_threads(const char *path, size_t max_bytes, int threads, uint8_t **out,
                          size_t *out_len, struct dip_err *err);
/** Writes bytes to `path` atomically: a temporary file in the same folder, fsync, rename. */
int dip_file_write_atomic(const char *path, const void *data, size_t len, struct dip_err *err);

/** The same atomic write in parts: open a temporary file beside `path` (PATH.tmp.XXXXXX),
 * append to it (writeback to the disk starts as the parts come), then commit (fsync, rename
 * to `path`) or abort (the temporary is removed). Not thread-safe: one writer at a time. */
struct dip_file_out {
    int fd; /* -1 when not open */
    size_t written, flushed;
    char tmp[4096];
    const char *path; /* borrowed until commit or abort */
};
/** Opens the temporary file. Errors name the path; on error nothing is left open. */
int dip_file_out_open(struct dip_file_out *f, const char *path, struct dip_err *err);
/** Appends n bytes. On error the file stays open: abort it. */
int dip_file_out_write(struct dip_file_out *f, const void *data, size_t n, struct dip_err *err);
/** fsync, close and rename over `path`; on error the temporary is removed. Either way f is
 * closed after it. */
int dip_file_out_commit(struct dip_file_out *f, struct dip_err *err);
/** Closes and removes the temporary. NULL-safe, and a no-op on a closed f. */
void dip_file_out_abort(struct dip_file_out *f);

/** Version strings of the linked codec libraries, one "name version" per line, into buf. */
void dip_codec_versions(char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
