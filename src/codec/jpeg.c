/* SPDX-License-Identifier: MIT */
/* JPEG through libjpeg-turbo: probe, decode (gray, YCbCr, RGB, CMYK and YCCK to 8-bit gray or
 * RGB; baseline and progressive) and encode (quality, 4:4:4/4:2:2/4:2:0). libjpeg's error_exit
 * longjmps back into this file only; its warnings (corrupt data, premature end) are errors. The
 * input is read from memory by our own source manager, metadata markers are counted against
 * max_metadata_bytes by our own marker reader (only the first EXIF block is kept), and a progress
 * monitor refuses more scans than max_jpeg_scans. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "core/internal.h"
#include "internal.h"

#define OUT_CHUNK ((size_t)64 << 10)

struct jctx {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int code;            /* DIP_E* for the failure being unwound; 0 means corrupt */
    int decoding;        /* error codes differ between decoding and encoding */
    struct dip_err *err; /* where failures are described, set once at the point of failure */
    /* decoding */
    const struct dip_limits *lim;
    const uint8_t *buf;
    size_t len;
    struct jpeg_source_mgr src;
    struct jpeg_progress_mgr prog;
    size_t meta;   /* bytes of metadata markers seen */
    uint8_t *exif; /* first APP1 "Exif\0\0" payload (dip_malloc) */
    size_t exif_len;
    dip_image *img;
    uint8_t *row;
    /* encoding */
    struct jpeg_destination_mgr dst;
    struct dip__buf out;
    uint8_t *chunk;
};

static struct jctx *ctx_of(j_common_ptr cinfo)
{
    return cinfo->client_data;
}

static _Noreturn void __attribute__((format(printf, 3, 4)))
fail(j_common_ptr cinfo, int code, const char *fmt, ...)
{
    struct jctx *c = ctx_of(cinfo);
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->code = code;
    dip_err_set(c->err, code, "jpeg: %s", msg);
    longjmp(c->jb, 1);
}

static void on_error_exit(j_common_ptr cinfo)
{
    struct jctx *c = ctx_of(cinfo);
    char msg[JMSG_LENGTH_MAX];
    int code;

    (*cinfo->err->format_message)(cinfo, msg);
    switch (cinfo->err->msg_code) {
    case JERR_OUT_OF_MEMORY:
        code = DIP_ENOMEM;
        break;
    case JERR_NO_BACKING_STORE:
        code = DIP_ELIMIT;
        break;
    /* Valid JPEG that this libjpeg cannot decode: 12-bit, lossless (SOF3), hierarchical. */
    case JERR_BAD_PRECISION:
    case JERR_SOF_UNSUPPORTED:
    case JERR_NOT_COMPILED:
        code = c->decoding ? DIP_EFORMAT : DIP_EINTERNAL;
        break;
    default:
        code = c->decoding ? DIP_ECORRUPT : DIP_EINTERNAL;
        break;
    }
    fail(cinfo, code, "%s", msg);
}

/* Level -1 is a warning (corrupt data, premature end, bad progression): fail closed. Trace
 * messages (level >= 0) are ignored. */
static void on_emit_message(j_common_ptr cinfo, int level)
{
    if (level < 0)
        on_error_exit(cinfo);
}

static void on_output_message(j_common_ptr cinfo)
{
    (void)cinfo; /* never print */
}

static void ctx_init(struct jctx *c, struct dip_err *err)
{
    memset(c, 0, sizeof(*c));
    jpeg_std_error(&c->pub);
    c->pub.error_exit = on_error_exit;
    c->pub.emit_message = on_emit_message;
    c->pub.output_message = on_output_message;
    c->err = err;
}

/* ---- Source: the whole input in memory ---- */

static void src_init(j_decompress_ptr d)
{
    (void)d;
}

/* Called only when every byte has been consumed: the data ended early. */
static boolean src_fill(j_decompress_ptr d)
{
    struct jctx *c = ctx_of((j_common_ptr)d);

    fail((j_common_ptr)d, DIP_ECORRUPT, "premature end of data after %zu bytes", c->len);
}

static void src_skip(j_decompress_ptr d, long n)
{
    struct jpeg_source_mgr *s = d->src;

    if (n <= 0)
        return;
    if ((unsigned long)n > s->bytes_in_buffer)
        src_fill(d);
    s->next_input_byte += n;
    s->bytes_in_buffer -= (size_t)n;
}

static void src_term(j_decompress_ptr d)
{
    (void)d;
}

static unsigned next_byte(j_decompress_ptr d)
{
    struct jpeg_source_mgr *s = d->src;

    if (s->bytes_in_buffer == 0)
        src_fill(d);
    s->bytes_in_buffer--;
    return *s->next_input_byte++;
}

/* APP1..APP13, APP15 and COM: counted against max_metadata_bytes and skipped, except that the
 * first EXIF block is kept for the orientation. (APP0 and APP14 stay with libjpeg, which reads
 * a few bytes of JFIF/Adobe and skips the rest.) */
static boolean on_marker(j_decompress_ptr d)
{
    struct jctx *c = ctx_of((j_common_ptr)d);
    struct jpeg_source_mgr *s = d->src;
    size_t n = next_byte(d) << 8;

    n |= next_byte(d);
    if (n < 2)
        fail((j_common_ptr)d, DIP_ECORRUPT, "marker 0x%02x has invalid length %zu",
             (unsigned)d->unread_marker, n);
    n -= 2;
    c->meta += n;
    if (c->meta > c->lim->max_metadata_bytes)
        fail((j_common_ptr)d, DIP_ELIMIT,
             "metadata markers of %zu bytes exceed the limit max_metadata_bytes=%zu", c->meta,
             c->lim->max_metadata_bytes);
    if (n > s->bytes_in_buffer)
        src_fill(d);
    if (d->unread_marker == JPEG_APP0 + 1 && c->exif == NULL && n >= 6 &&
        memcmp(s->next_input_byte, "Exif\0\0", 6) == 0) {
        c->exif = dip_malloc(n);
        if (c->exif == NULL)
            fail((j_common_ptr)d, DIP_ENOMEM, "out of memory keeping %zu bytes of EXIF", n);
        memcpy(c->exif, s->next_input_byte, n);
        c->exif_len = n;
    }
    s->next_input_byte += n;
    s->bytes_in_buffer -= n;
    return TRUE;
}

static void on_progress(j_common_ptr cinfo)
{
    struct jctx *c = ctx_of(cinfo);
    j_decompress_ptr d = (j_decompress_ptr)cinfo;

    if (d->input_scan_number > c->lim->max_jpeg_scans)
        fail(cinfo, DIP_ELIMIT, "more than %d scans exceeds the limit max_jpeg_scans=%d",
             c->lim->max_jpeg_scans, c->lim->max_jpeg_scans);
}

/* ---- Decoding ---- */

static const char *space_name(J_COLOR_SPACE s)
{
    switch (s) {
    case JCS_GRAYSCALE:
        return "gray";
    case JCS_YCbCr:
        return "ycbcr";
    case JCS_RGB:
        return "rgb";
    case JCS_CMYK:
        return "cmyk";
    case JCS_YCCK:
        return "ycck";
    default:
        return NULL;
    }
}

/* CMYK to RGB. Adobe's convention, used by Photoshop and by every writer that emits the APP14
 * "Adobe" marker (libjpeg adds it for CMYK and YCCK), stores inverted values: 255 means no ink.
 * Without that marker the values are plain ink amounts and are inverted first. Then
 * R = C' * K' / 255 with C', K' in the inverted form (rounded), likewise G from M and B from Y.
 * This is the device conversion browsers and libjpeg-turbo's tools use; no ICC profile is
 * applied. */
static void cmyk_to_rgb(const uint8_t *src, uint8_t *dst, size_t n, int inverted)
{
    for (size_t i = 0; i < n; i++, src += 4, dst += 3) {
        unsigned cc = src[0], m = src[1], y = src[2], k = src[3];
        if (!inverted) {
            cc = 255 - cc;
            m = 255 - m;
            y = 255 - y;
            k = 255 - k;
        }
        dst[0] = (uint8_t)((cc * k + 127) / 255);
        dst[1] = (uint8_t)((m * k + 127) / 255);
        dst[2] = (uint8_t)((y * k + 127) / 255);
    }
}

/* Every libjpeg call of a probe (img == NULL requested) or a decode. Failures longjmp back here;
 * everything allocated lives in *c or in *d, which the caller frees. */
static int run_decode(struct jctx *c, struct jpeg_decompress_struct *d, int want_pixels,
                      struct dip_image_info *info)
{
    const char *space;
    int rc, ch, cmyk;

    if (setjmp(c->jb))
        return c->code ? c->code : DIP_ECORRUPT;
    jpeg_create_decompress(d);
    c->src.init_source = src_init;
    c->src.fill_input_buffer = src_fill;
    c->src.skip_input_data = src_skip;
    c->src.resync_to_restart = jpeg_resync_to_restart;
    c->src.term_source = src_term;
    c->src.next_input_byte = c->buf;
    c->src.bytes_in_buffer = c->len;
    d->src = &c->src;
    for (int m = 1; m < 16; m++)
        if (m != 14)
            jpeg_set_marker_processor(d, JPEG_APP0 + m, on_marker);
    jpeg_set_marker_processor(d, JPEG_COM, on_marker);
    jpeg_read_header(d, TRUE);

    rc = dip_limits_check_dims(c->lim, "jpeg", d->image_width, d->image_height, c->err);
    if (rc)
        return rc;
    space = space_name(d->jpeg_color_space);
    if (space == NULL || (d->jpeg_color_space == JCS_GRAYSCALE) != (d->num_components == 1))
        return dip_err_set(c->err, DIP_EFORMAT,
                           "jpeg: unsupported colour space (%d components, libjpeg space %d)",
                           d->num_components, (int)d->jpeg_color_space);
    ch = d->jpeg_color_space == JCS_GRAYSCALE ? 1 : 3;
    info->width = (int)d->image_width;
    info->height = (int)d->image_height;
    info->channels = ch;
    info->bit_depth = d->data_precision;
    info->progressive = d->progressive_mode ? 1 : 0;
    info->frames = 1;
    info->orientation = dip__exif_orientation(c->exif, c->exif_len);
    snprintf(info->color, sizeof(info->color), "%s", space);
    if (!want_pixels)
        return 0;

    /* With Huffman coding every 8x8 block of every component costs at least one bit (its DC
     * symbol), so fewer bytes than blocks/8 cannot be a complete image: refuse it before
     * libjpeg allocates buffers for the claimed size. (Arithmetic coding has no such floor.) */
    if (!d->arith_code) {
        size_t blocks = 0;
        for (int i = 0; i < d->num_components; i++) {
            size_t b =
                (size_t)d->comp_info[i].width_in_blocks * (size_t)d->comp_info[i].height_in_blocks;
            blocks = DIP_MAX(blocks, b);
        }
        if (c->len < blocks / 8)
            return dip_err_set(c->err, DIP_ECORRUPT,
                               "jpeg: %ux%u image needs at least %zu bytes of coded data but the "
                               "input has %zu",
                               d->image_width, d->image_height, blocks / 8, c->len);
    }
    cmyk = d->jpeg_color_space == JCS_CMYK || d->jpeg_color_space == JCS_YCCK;
    d->out_color_space = ch == 1 ? JCS_GRAYSCALE : cmyk ? JCS_CMYK : JCS_RGB;
    c->prog.progress_monitor = on_progress;
    d->progress = &c->prog;
    jpeg_start_decompress(d);
    if (d->output_width != d->image_width || d->output_height != d->image_height ||
        d->output_components != (cmyk ? 4 : ch))
        return dip_err_set(c->err, DIP_EINTERNAL, "jpeg: unexpected output layout");
    rc = dip_image_new(info->width, info->height, ch, &c->img);
    if (rc)
        return dip_err_set(c->err, rc, "jpeg: cannot allocate a %dx%d image", info->width,
                           info->height);
    if (cmyk) {
        c->row = dip_malloc((size_t)d->output_width * 4);
        if (c->row == NULL)
            return dip_err_set(c->err, DIP_ENOMEM, "jpeg: out of memory");
    }
    {
        struct dip_view v = dip_image_view(c->img);
        while (d->output_scanline < d->output_height) {
            JSAMPROW rows[16];
            JDIMENSION want = 1, got;
            if (!cmyk) {
                want = DIP_MIN(16u, d->output_height - d->output_scanline);
                for (JDIMENSION i = 0; i < want; i++)
                    rows[i] = v.data + (size_t)(d->output_scanline + i) * v.stride;
            } else {
                rows[0] = c->row;
            }
            got = jpeg_read_scanlines(d, rows, want);
            if (got == 0)
                return dip_err_set(c->err, DIP_ECORRUPT, "jpeg: decoder made no progress");
            if (cmyk)
                cmyk_to_rgb(c->row, v.data + (size_t)(d->output_scanline - 1) * v.stride,
                            d->output_width, d->saw_Adobe_marker);
        }
    }
    /* Reads up to EOI: trailing corruption or truncation is an error too. */
    jpeg_finish_decompress(d);
    return 0;
}

static int jpeg_run(const uint8_t *buf, size_t len, const struct dip_limits *lim, dip_image **out,
                    struct dip_image_info *info, struct dip_err *err)
{
    struct jctx c;
    struct jpeg_decompress_struct d;
    int rc;

    ctx_init(&c, err);
    c.decoding = 1;
    c.lim = lim;
    c.buf = buf;
    c.len = len;
    memset(&d, 0, sizeof(d));
    d.err = &c.pub;
    d.client_data = &c;
    rc = run_decode(&c, &d, out != NULL, info);
    if (rc == 0 && out != NULL) {
        *out = c.img;
        c.img = NULL; /* the caller owns it now */
    }
    jpeg_destroy_decompress(&d);
    dip_free(c.exif);
    dip_free(c.row);
    dip_image_unref(c.img);
    return rc;
}

/* Counts the SOS markers up to EOI (or the end) without decoding: marker segments are skipped by
 * their length, and in entropy-coded data only 0xFF followed by a marker code other than a
 * stuffed zero, a fill byte or RSTn starts a marker. Stops counting past `stop`. */
static int count_scans(const uint8_t *buf, size_t len, int stop)
{
    size_t i = 2;
    int scans = 0;

    while (i + 1 < len && scans <= stop) {
        const uint8_t *ff = memchr(buf + i, 0xff, len - i - 1);
        uint8_t m;
        if (ff == NULL)
            break;
        i = (size_t)(ff - buf);
        m = buf[i + 1];
        if (m == 0xff) {
            i++;
        } else if (m == 0x00 || m == 0x01 || (m >= 0xd0 && m <= 0xd8)) {
            i += 2;
        } else if (m == 0xd9) {
            break;
        } else {
            if (i + 4 > len)
                break;
            scans += m == 0xda;
            i += 2 + ((size_t)buf[i + 2] << 8 | buf[i + 3]);
        }
    }
    return scans;
}

/* Header only; the scan count (a byte scan, no decoding) is checked here too, so that a server
 * can refuse a file with too many progressive scans when it is uploaded. */
static int jpeg_probe(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                      struct dip_image_info *info, struct dip_err *err)
{
    int rc = jpeg_run(buf, len, lim, NULL, info, err), scans;

    if (rc)
        return rc;
    scans = count_scans(buf, len, lim->max_jpeg_scans);
    if (scans > lim->max_jpeg_scans)
        return dip_err_set(err, DIP_ELIMIT,
                           "jpeg: more than %d scans exceeds the limit max_jpeg_scans=%d",
                           lim->max_jpeg_scans, lim->max_jpeg_scans);
    return 0;
}

static int jpeg_decode(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                       const struct dip_decode_opts *opts, dip_image **out,
                       struct dip_image_info *info, struct dip_err *err)
{
    (void)opts; /* orientation is applied by codec.c */
    return jpeg_run(buf, len, lim, out, info, err);
}

/* ---- Encoding ---- */

static void dst_init(j_compress_ptr e)
{
    struct jctx *c = ctx_of((j_common_ptr)e);

    c->dst.next_output_byte = c->chunk;
    c->dst.free_in_buffer = OUT_CHUNK;
}

static void dst_put(j_compress_ptr e, size_t n)
{
    struct jctx *c = ctx_of((j_common_ptr)e);
    int rc = dip__buf_append(&c->out, c->chunk, n);

    if (rc)
        fail((j_common_ptr)e, rc, "%s", rc == DIP_ENOMEM ? "out of memory" : "output too large");
}

static boolean dst_empty(j_compress_ptr e)
{
    struct jctx *c = ctx_of((j_common_ptr)e);

    dst_put(e, OUT_CHUNK);
    c->dst.next_output_byte = c->chunk;
    c->dst.free_in_buffer = OUT_CHUNK;
    return TRUE;
}

static void dst_term(j_compress_ptr e)
{
    struct jctx *c = ctx_of((j_common_ptr)e);

    dst_put(e, OUT_CHUNK - c->dst.free_in_buffer);
}

/* Channel mapping: 1 -> grayscale JPEG, 3 -> YCbCr JPEG from RGB. JPEG has no alpha, so 2
 * channels (gray+alpha) encode as grayscale and 4 (RGBA) as colour with the alpha channel
 * dropped (not composited on any background). */
static int run_encode(struct jctx *c, struct jpeg_compress_struct *e, const dip_image *img,
                      const struct dip_encode_opts *opts)
{
    struct dip_view v = dip_image_view(img);
    int ch = v.channels, outc = ch <= 2 ? 1 : 3;

    if (setjmp(c->jb))
        return c->code ? c->code : DIP_EINTERNAL;
    jpeg_create_compress(e);
    c->dst.init_destination = dst_init;
    c->dst.empty_output_buffer = dst_empty;
    c->dst.term_destination = dst_term;
    e->dest = &c->dst;
    e->image_width = (JDIMENSION)v.width;
    e->image_height = (JDIMENSION)v.height;
    e->input_components = outc;
    e->in_color_space = outc == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(e);
    jpeg_set_quality(e, opts->quality, TRUE);
    if (outc == 3) {
        /* Luma sampling factors; chroma stays 1x1. */
        e->comp_info[0].h_samp_factor = opts->subsampling == 444 ? 1 : 2;
        e->comp_info[0].v_samp_factor = opts->subsampling == 420 ? 2 : 1;
        for (int i = 1; i < 3; i++)
            e->comp_info[i].h_samp_factor = e->comp_info[i].v_samp_factor = 1;
    }
    jpeg_start_compress(e, TRUE);
    while (e->next_scanline < e->image_height) {
        JSAMPROW row = v.data + (size_t)e->next_scanline * v.stride;
        if (ch != outc) {
            /* Drop alpha into the scratch row. */
            for (int x = 0; x < v.width; x++)
                memcpy(c->row + (size_t)x * (size_t)outc, row + (size_t)x * (size_t)ch,
                       (size_t)outc);
            row = c->row;
        }
        jpeg_write_scanlines(e, &row, 1);
    }
    jpeg_finish_compress(e);
    return 0;
}

static int jpeg_encode(const dip_image *img, const struct dip_encode_opts *opts, uint8_t **out,
                       size_t *out_len, struct dip_err *err)
{
    struct jctx c;
    struct jpeg_compress_struct e;
    int rc = 0, w = dip_image_width(img), h = dip_image_height(img);
    int ch = dip_image_channels(img);

    if (opts->quality < 1 || opts->quality > 100)
        return dip_err_set(err, DIP_EINVAL, "jpeg: quality %d outside 1..100", opts->quality);
    if (opts->subsampling != 444 && opts->subsampling != 422 && opts->subsampling != 420)
        return dip_err_set(err, DIP_EINVAL, "jpeg: subsampling %d is not 444, 422 or 420",
                           opts->subsampling);
    if (w > JPEG_MAX_DIMENSION || h > JPEG_MAX_DIMENSION)
        return dip_err_set(err, DIP_EFORMAT,
                           "jpeg: %dx%d exceeds JPEG's maximum of %d pixels "
                           "per side",
                           w, h, (int)JPEG_MAX_DIMENSION);
    if (ch < 1 || ch > 4)
        return dip_err_set(err, DIP_EFORMAT, "jpeg: cannot encode %d channels", ch);
    ctx_init(&c, err);
    dip__buf_init(&c.out, SIZE_MAX / 2);
    memset(&e, 0, sizeof(e));
    e.err = &c.pub;
    e.client_data = &c;
    c.chunk = dip_malloc(OUT_CHUNK);
    if (c.chunk == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "jpeg: out of memory");
        goto out;
    }
    if (ch == 2 || ch == 4) {
        c.row = dip_malloc((size_t)w * 3);
        if (c.row == NULL) {
            rc = dip_err_set(err, DIP_ENOMEM, "jpeg: out of memory");
            goto out;
        }
    }
    rc = run_encode(&c, &e, img, opts);
    if (rc == 0) {
        *out = c.out.data;
        *out_len = c.out.len;
        c.out.data = NULL; /* the caller owns it now */
    }
out:
    jpeg_destroy_compress(&e);
    dip__buf_free(&c.out);
    dip_free(c.chunk);
    dip_free(c.row);
    return rc;
}

#define STR2(x) #x
#define STR(x)  STR2(x)

static void jpeg_version(char *buf, size_t len)
{
#ifdef LIBJPEG_TURBO_VERSION
    snprintf(buf, len, "libjpeg-turbo %s", STR(LIBJPEG_TURBO_VERSION));
#else
    snprintf(buf, len, "libjpeg %d", JPEG_LIB_VERSION);
#endif
}

const struct dip__codec dip__codec_jpeg = {
    .format = DIP_FORMAT_JPEG,
    .probe = jpeg_probe,
    .decode = jpeg_decode,
    .encode = jpeg_encode,
    .version = jpeg_version,
};
