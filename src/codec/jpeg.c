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

/* The libjpeg calls of a probe or a decode up to the first scanline: header, limits, colour
 * space, then (want_pixels) jpeg_start_decompress. Failures longjmp back here; everything
 * allocated lives in *c or in *d, which the caller frees. */
static int dec_head(struct jctx *c, struct jpeg_decompress_struct *d, int want_pixels,
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
    if (cmyk) {
        c->row = dip_malloc((size_t)d->output_width * 4);
        if (c->row == NULL)
            return dip_err_set(c->err, DIP_ENOMEM, "jpeg: out of memory");
    }
    return 0;
}

/* The next v->height scanlines into v; after the last one, the rest of the file up to EOI
 * (trailing corruption or truncation is an error too). */
static int dec_rows(struct jctx *c, struct jpeg_decompress_struct *d, const struct dip_view *v)
{
    int cmyk = d->out_color_space == JCS_CMYK;
    JDIMENSION y0 = d->output_scanline, end = y0 + (JDIMENSION)v->height;

    if (setjmp(c->jb))
        return c->code ? c->code : DIP_ECORRUPT;
    while (d->output_scanline < end) {
        JSAMPROW rows[16];
        JDIMENSION want = 1, got;
        if (!cmyk) {
            want = DIP_MIN(16u, end - d->output_scanline);
            for (JDIMENSION i = 0; i < want; i++)
                rows[i] = v->data + (size_t)(d->output_scanline - y0 + i) * v->stride;
        } else {
            rows[0] = c->row;
        }
        got = jpeg_read_scanlines(d, rows, want);
        if (got == 0)
            return dip_err_set(c->err, DIP_ECORRUPT, "jpeg: decoder made no progress");
        if (cmyk)
            cmyk_to_rgb(c->row, v->data + (size_t)(d->output_scanline - 1 - y0) * v->stride,
                        d->output_width, d->saw_Adobe_marker);
    }
    if (d->output_scanline == d->output_height)
        jpeg_finish_decompress(d);
    return 0;
}

/* Every libjpeg call of a probe (img == NULL requested) or a decode. */
static int run_decode(struct jctx *c, struct jpeg_decompress_struct *d, int want_pixels,
                      struct dip_image_info *info)
{
    struct dip_view v;
    int rc = dec_head(c, d, want_pixels, info);

    if (rc || !want_pixels)
        return rc;
    rc = dip_image_new(info->width, info->height, info->channels, &c->img);
    if (rc)
        return dip_err_set(c->err, rc, "jpeg: cannot allocate a %dx%d image", info->width,
                           info->height);
    v = dip_image_view(c->img);
    return dec_rows(c, d, &v);
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

/* ---- Decoding in bands split at restart markers ---- */

/* A baseline file whose restart interval is a whole number of MCU rows is cut at its RST markers
 * into bands of intervals; each band, with one interval of context above and below (libjpeg's
 * fancy chroma upsampling looks one chroma row across), is rebuilt as a small JPEG of its own
 * (the tables, SOF with the band's height, DRI, SOS, its intervals with RST renumbered from 0,
 * EOI) and decoded on the caller's pool; only the band's own rows are kept. The coefficients are
 * those of the whole file (DC prediction restarts at every RST), so the pixels are those of one
 * decode. Anything unusual, and any band that fails, sends the whole file to the plain decode,
 * which gives the errors. */

#define BAND_MIN_ROWS 128

struct jlayout {
    size_t tables[16][2]; /* DQT, SOF, DHT, DRI segments to copy: offset, length */
    int ntables;
    size_t sof_height;   /* offset of SOF's height field */
    size_t sos, sos_len; /* SOS segment */
    size_t *iv;          /* start of each interval's entropy data (n + 1 entries: end last) */
    size_t niv;
    int width, height, mcu_rows_per_iv, mcu_h;
};

static unsigned be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* 0 and the layout when the file can be cut, -1 otherwise (nothing to report). */
static int jpeg_layout(const uint8_t *buf, size_t len, struct jlayout *L)
{
    size_t pos = 2, ri = 0, cap = 0, data;
    int hmax = 1, vmax = 1, ncomp = 0, sof = 0;
    unsigned next = 0;

    memset(L, 0, sizeof(*L));
    while (pos + 4 <= len && buf[pos] == 0xFF) {
        unsigned m = buf[pos + 1];
        size_t seg = be16(buf + pos + 2);
        if (m == 0xFF) {
            pos++;
            continue;
        }
        if (seg < 2 || pos + 2 + seg > len)
            return -1;
        if (m == 0xC0 || m == 0xC1) {
            const uint8_t *f = buf + pos + 4;
            if (seg < 8 || f[0] != 8 || sof)
                return -1;
            sof = 1;
            L->height = (int)be16(f + 1);
            L->width = (int)be16(f + 3);
            ncomp = f[5];
            if ((ncomp != 1 && ncomp != 3) || seg < 8 + 3 * (size_t)ncomp || L->height == 0)
                return -1;
            for (int i = 0; i < ncomp; i++) {
                hmax = DIP_MAX(hmax, f[7 + 3 * i] >> 4);
                vmax = DIP_MAX(vmax, f[7 + 3 * i] & 15);
            }
            L->sof_height = pos + 5;
        } else if (m >= 0xC2 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            return -1; /* progressive, lossless, arithmetic, hierarchical */
        } else if (m == 0xDD) {
            if (seg != 4)
                return -1;
            ri = be16(buf + pos + 4);
        } else if (m == 0xDA) {
            L->sos = pos;
            L->sos_len = 2 + seg;
            break;
        }
        if (m == 0xDB || m == 0xC0 || m == 0xC1 || m == 0xC4 || m == 0xDD) {
            if (L->ntables == 16)
                return -1;
            L->tables[L->ntables][0] = pos;
            L->tables[L->ntables][1] = 2 + seg;
            L->ntables++;
        }
        pos += 2 + seg;
    }
    if (!sof || L->sos == 0 || ri == 0 || buf[L->sos + 4] != ncomp)
        return -1;
    {
        int mw = 8 * (ncomp == 1 ? 1 : hmax), mh = 8 * (ncomp == 1 ? 1 : vmax);
        size_t per_row = ((size_t)L->width + (size_t)mw - 1) / (size_t)mw;
        size_t rows = ((size_t)L->height + (size_t)mh - 1) / (size_t)mh;
        if (ri % per_row != 0)
            return -1;
        L->mcu_rows_per_iv = (int)(ri / per_row);
        L->mcu_h = mh;
        L->niv = (rows + (size_t)L->mcu_rows_per_iv - 1) / (size_t)L->mcu_rows_per_iv;
    }
    if (L->niv < 2)
        return -1;
    cap = L->niv + 1;
    L->iv = dip_malloc(cap * sizeof(*L->iv));
    if (L->iv == NULL)
        return -1;
    /* The intervals: RST0..RST7 in turn, then EOI right after the last. */
    data = L->sos + L->sos_len;
    L->iv[0] = data;
    for (size_t i = data, k = 1; i + 1 < len; i++) {
        if (buf[i] != 0xFF || buf[i + 1] == 0x00 || buf[i + 1] == 0xFF)
            continue;
        if (buf[i + 1] >= 0xD0 && buf[i + 1] <= 0xD7) {
            if (buf[i + 1] != 0xD0 + next || k >= L->niv)
                break;
            next = (next + 1) % 8;
            L->iv[k++] = i + 2;
            i++;
            continue;
        }
        if (buf[i + 1] == 0xD9 && k == L->niv) {
            L->iv[k] = i + 2; /* end of the last interval is i; stored as if an RST followed */
            return 0;
        }
        break;
    }
    dip_free(L->iv);
    L->iv = NULL;
    return -1;
}

struct jband {
    const uint8_t *buf;
    const struct jlayout *L;
    const struct dip_limits *lim;
    struct dip_view out;
    size_t ivs_per_band, nbands;
    int rows_per_iv;
};

static int jband_task(void *ud, size_t b, int thread)
{
    struct jband *j = ud;
    const struct jlayout *L = j->L;
    size_t i0 = b * j->ivs_per_band, i1 = DIP_MIN(L->niv, i0 + j->ivs_per_band);
    size_t c0 = i0 > 0 ? i0 - 1 : 0, c1 = DIP_MIN(L->niv, i1 + 1), n = 2, pos;
    int y_first = (int)c0 * j->rows_per_iv;
    int h = DIP_MIN(L->height, (int)c1 * j->rows_per_iv) - y_first;
    int keep0 = (int)i0 * j->rows_per_iv, keep1 = DIP_MIN(L->height, (int)i1 * j->rows_per_iv);
    struct dip_image_info info;
    struct dip_err err = {0};
    dip_image *img = NULL;
    uint8_t *f;
    int rc;

    (void)thread;
    for (int t = 0; t < L->ntables; t++)
        n += L->tables[t][1];
    n += L->sos_len + (L->iv[c1] - L->iv[c0]) + 2;
    f = dip_malloc(n);
    if (f == NULL)
        return DIP_ENOMEM;
    f[0] = 0xFF;
    f[1] = 0xD8;
    pos = 2;
    for (int t = 0; t < L->ntables; t++) {
        memcpy(f + pos, j->buf + L->tables[t][0], L->tables[t][1]);
        if (L->tables[t][0] + 5 == L->sof_height) {
            f[pos + 5] = (uint8_t)(h >> 8);
            f[pos + 6] = (uint8_t)h;
        }
        pos += L->tables[t][1];
    }
    memcpy(f + pos, j->buf + L->sos, L->sos_len);
    pos += L->sos_len;
    for (size_t i = c0; i < c1; i++) {
        /* Interval i's data ends 2 bytes before the next interval's start (its RST or EOI). */
        size_t a = L->iv[i], e = L->iv[i + 1] - 2;
        memcpy(f + pos, j->buf + a, e - a);
        pos += e - a;
        f[pos++] = 0xFF;
        f[pos++] = (uint8_t)(i + 1 < c1 ? 0xD0 + (i - c0) % 8 : 0xD9);
    }
    rc = jpeg_run(f, pos, j->lim, &img, &info, &err);
    if (rc == 0 && (dip_image_width(img) != L->width || dip_image_height(img) != h ||
                    dip_image_channels(img) != j->out.channels))
        rc = DIP_ECORRUPT;
    if (rc == 0) {
        struct dip_view v = dip_image_view(img);
        for (int y = keep0; y < keep1; y++)
            memcpy(j->out.data + (size_t)y * j->out.stride,
                   v.data + (size_t)(y - y_first) * v.stride,
                   (size_t)L->width * (size_t)v.channels);
    }
    dip_image_unref(img);
    dip_free(f);
    return rc;
}

/* 0 with *out, or -1: decode the plain way (which also reports any error). */
static int jpeg_decode_bands(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                             dip_pool *pool, dip_image **out, struct dip_image_info *info,
                             struct dip_err *err)
{
    struct jlayout L;
    struct jband j;
    dip_image *img = NULL;
    int rc = -1;

    if (dip_pool_threads(pool) < 2 || jpeg_layout(buf, len, &L) != 0)
        return -1;
    /* The header the plain way: limits, metadata, EXIF, colour space. */
    if (jpeg_run(buf, len, lim, NULL, info, err) != 0)
        goto out;
    memset(&j, 0, sizeof(j));
    j.buf = buf;
    j.L = &L;
    j.lim = lim;
    j.rows_per_iv = L.mcu_rows_per_iv * L.mcu_h;
    j.ivs_per_band = (size_t)DIP_MAX(1, (BAND_MIN_ROWS + j.rows_per_iv - 1) / j.rows_per_iv);
    j.nbands = (L.niv + j.ivs_per_band - 1) / j.ivs_per_band;
    if (j.nbands < 2 || info->width != L.width || info->height != L.height)
        goto out;
    if (dip_image_new(L.width, L.height, info->channels, &img) != 0)
        goto out;
    j.out = dip_image_view(img);
    if (dip_pool_for(pool, j.nbands, jband_task, &j) != 0)
        goto out;
    *out = img;
    img = NULL;
    rc = 0;
out:
    dip_image_unref(img);
    dip_free(L.iv);
    return rc;
}

static int jpeg_decode(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                       const struct dip_decode_opts *opts, dip_image **out,
                       struct dip_image_info *info, struct dip_err *err)
{
    /* Orientation is applied by codec.c. */
    if (jpeg_decode_bands(buf, len, lim, opts->pool, out, info, err) == 0)
        return 0;
    return jpeg_run(buf, len, lim, out, info, err);
}

/* ---- Decoding in rows ---- */

struct jrows {
    struct jctx c;
    struct jpeg_decompress_struct d;
};

static int jrows_read(void *st, const struct dip_view *rows, struct dip_err *err)
{
    struct jrows *j = st;

    j->c.err = err;
    return dec_rows(&j->c, &j->d, rows);
}

static void jrows_free(void *st)
{
    struct jrows *j = st;

    if (j == NULL)
        return;
    jpeg_destroy_decompress(&j->d);
    dip_free(j->c.exif);
    dip_free(j->c.row);
    dip_free(j);
}

/* libjpeg keeps its state between calls; its error exits longjmp into dec_head or dec_rows,
 * which return. (libjpeg-turbo decodes a progressive file's coefficients whole; its rows are
 * still given out in pieces.) */
static int jpeg_rows_open(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                          struct dip_image_info *info, struct dip__rdec *rd, struct dip_err *err)
{
    struct jrows *j = dip_calloc(1, sizeof(*j));
    int rc;

    if (j == NULL)
        return dip_err_set(err, DIP_ENOMEM, "jpeg: out of memory");
    ctx_init(&j->c, err);
    j->c.decoding = 1;
    j->c.lim = lim;
    j->c.buf = buf;
    j->c.len = len;
    j->d.err = &j->c.pub;
    j->d.client_data = &j->c;
    rc = dec_head(&j->c, &j->d, 1, info);
    if (rc) {
        jrows_free(j);
        return rc;
    }
    rd->st = j;
    rd->read = jrows_read;
    rd->free = jrows_free;
    return 0;
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
 * dropped (not composited on any background). Standard Huffman tables (no per-image
 * optimisation), so that bands encoded apart share one set of tables. */
static int run_encode(struct jctx *c, struct jpeg_compress_struct *e, const struct dip_view *v,
                      const struct dip_encode_opts *opts)
{
    int ch = v->channels, outc = ch <= 2 ? 1 : 3;

    if (setjmp(c->jb))
        return c->code ? c->code : DIP_EINTERNAL;
    jpeg_create_compress(e);
    c->dst.init_destination = dst_init;
    c->dst.empty_output_buffer = dst_empty;
    c->dst.term_destination = dst_term;
    e->dest = &c->dst;
    e->image_width = (JDIMENSION)v->width;
    e->image_height = (JDIMENSION)v->height;
    e->input_components = outc;
    e->in_color_space = outc == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(e);
    jpeg_set_quality(e, opts->quality, TRUE);
    e->optimize_coding = FALSE;
    if (outc == 3) {
        /* Luma sampling factors; chroma stays 1x1. */
        e->comp_info[0].h_samp_factor = opts->subsampling == 444 ? 1 : 2;
        e->comp_info[0].v_samp_factor = opts->subsampling == 420 ? 2 : 1;
        for (int i = 1; i < 3; i++)
            e->comp_info[i].h_samp_factor = e->comp_info[i].v_samp_factor = 1;
    }
    jpeg_start_compress(e, TRUE);
    while (e->next_scanline < e->image_height) {
        JSAMPROW row = v->data + (size_t)e->next_scanline * v->stride;
        if (ch != outc) {
            /* Drop alpha into the scratch row. */
            for (int x = 0; x < v->width; x++)
                memcpy(c->row + (size_t)x * (size_t)outc, row + (size_t)x * (size_t)ch,
                       (size_t)outc);
            row = c->row;
        }
        jpeg_write_scanlines(e, &row, 1);
    }
    jpeg_finish_compress(e);
    return 0;
}

static int check_encode_opts(int w, int h, int ch, const struct dip_encode_opts *opts,
                             struct dip_err *err)
{
    if (opts->quality < 1 || opts->quality > 100)
        return dip_err_set(err, DIP_EINVAL, "jpeg: quality %d outside 1..100", opts->quality);
    if (opts->subsampling != 444 && opts->subsampling != 422 && opts->subsampling != 420)
        return dip_err_set(err, DIP_EINVAL, "jpeg: subsampling %d is not 444, 422 or 420",
                           opts->subsampling);
    if (w < 1 || h < 1 || w > JPEG_MAX_DIMENSION || h > JPEG_MAX_DIMENSION)
        return dip_err_set(err, DIP_EFORMAT,
                           "jpeg: %dx%d is outside JPEG's 1 to %d pixels per side", w, h,
                           (int)JPEG_MAX_DIMENSION);
    if (ch < 1 || ch > 4)
        return dip_err_set(err, DIP_EFORMAT, "jpeg: cannot encode %d channels", ch);
    return 0;
}

/* A whole JPEG file of the pixels of v (a standalone image). */
static int encode_view(const struct dip_view *v, const struct dip_encode_opts *opts, uint8_t **out,
                       size_t *out_len, struct dip_err *err)
{
    struct jctx c;
    struct jpeg_compress_struct e;
    int rc;

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
    if (v->channels == 2 || v->channels == 4) {
        c.row = dip_malloc((size_t)v->width * 3);
        if (c.row == NULL) {
            rc = dip_err_set(err, DIP_ENOMEM, "jpeg: out of memory");
            goto out;
        }
    }
    rc = run_encode(&c, &e, v, opts);
    if (rc == 0) {
        *out = c.out.bytes;
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

/* ---- Bands: entropy-coded segments joined with restart markers ---- */

/* MCU size in pixels for the options (gray and 4:4:4 8x8, 4:2:2 16x8, 4:2:0 16x16). */
static void mcu_size(int ch, int subsampling, int *mw, int *mh)
{
    int color = ch >= 3;

    *mw = color && subsampling != 444 ? 16 : 8;
    *mh = color && subsampling == 420 ? 16 : 8;
}

int dip_jpeg_band_rows(int width, int channels, const struct dip_encode_opts *opts)
{
    int mw, mh, mcus_per_row, mcu_rows;

    mcu_size(channels, opts->subsampling, &mw, &mh);
    mcus_per_row = (DIP_MAX(width, 1) + mw - 1) / mw;
    /* 128 rows, fewer where a restart interval (MCUs of a band) would pass 65535. */
    mcu_rows = DIP_MAX(1, DIP_MIN(128 / mh, 65535 / mcus_per_row));
    return mcu_rows * mh;
}

/* Offset just past the SOS segment of a JPEG written by libjpeg, and of its SOF height field;
 * 0 when not found. The markers before SOS are walked by their lengths. */
static size_t find_sos(const uint8_t *p, size_t n, size_t *sof_height)
{
    size_t pos = 2;

    *sof_height = 0;
    while (pos + 4 <= n && p[pos] == 0xFF) {
        unsigned m = p[pos + 1];
        size_t seg = (size_t)p[pos + 2] << 8 | p[pos + 3];
        if (pos + 2 + seg > n)
            return 0;
        if (m == 0xC0 || m == 0xC1)
            *sof_height = pos + 5;
        if (m == 0xDA)
            return pos + 2 + seg;
        pos += 2 + seg;
    }
    return 0;
}

int dip_jpeg_encode_band(const struct dip_view *band, const struct dip_encode_opts *opts,
                         uint8_t **out, size_t *out_len, struct dip_err *err)
{
    uint8_t *whole = NULL;
    size_t n = 0, sos, sofh;
    int rc;

    *out = NULL;
    *out_len = 0;
    rc = check_encode_opts(band->width, band->height, band->channels, opts, err);
    if (rc)
        return rc;
    rc = encode_view(band, opts, &whole, &n, err);
    if (rc)
        return rc;
    sos = find_sos(whole, n, &sofh);
    if (DIP_NEVER(sos == 0 || n < sos + 2)) {
        dip_free(whole);
        return dip_err_set(err, DIP_EINTERNAL, "jpeg: libjpeg wrote no scan");
    }
    /* The entropy-coded data: from the end of SOS to EOI, moved to the front. */
    memmove(whole, whole + sos, n - sos - 2);
    *out = whole;
    *out_len = n - sos - 2;
    return 0;
}

/* Headers of the whole image from a band's file: SOF's height set to the image's, a DRI marker
 * (restart interval = the MCUs of one band) inserted before SOS. head receives n + 6 bytes. */
static int make_head(const uint8_t *band, size_t n, int height, int restart, uint8_t *head,
                     size_t *head_len)
{
    size_t sofh, sos = find_sos(band, n, &sofh), sos_start = 0;

    if (sos == 0 || sofh == 0)
        return DIP_EINTERNAL;
    /* SOS begins at the marker whose segment ends at sos: walk again to find its start. */
    for (size_t pos = 2; pos < sos;) {
        size_t seg = (size_t)band[pos + 2] << 8 | band[pos + 3];
        if (pos + 2 + seg == sos) {
            sos_start = pos;
            break;
        }
        pos += 2 + seg;
    }
    if (sos_start == 0)
        return DIP_EINTERNAL;
    memcpy(head, band, sos_start);
    head[sofh] = (uint8_t)(height >> 8);
    head[sofh + 1] = (uint8_t)height;
    head[sos_start] = 0xFF;
    head[sos_start + 1] = 0xDD;
    head[sos_start + 2] = 0;
    head[sos_start + 3] = 4;
    head[sos_start + 4] = (uint8_t)(restart >> 8);
    head[sos_start + 5] = (uint8_t)restart;
    memcpy(head + sos_start + 6, band + sos_start, sos - sos_start);
    *head_len = sos + 6;
    return 0;
}

int dip_jpeg_encode_head(int width, int height, int channels, const struct dip_encode_opts *opts,
                         uint8_t **out, size_t *out_len, struct dip_err *err)
{
    dip_image *blank = NULL;
    struct dip_view v;
    uint8_t *band = NULL, *head = NULL;
    size_t n = 0, sofh;
    int rc, mw, mh, rows;

    *out = NULL;
    *out_len = 0;
    rc = check_encode_opts(width, height, channels, opts, err);
    if (rc)
        return rc;
    /* The headers do not depend on the pixels: encode one blank MCU row for them. */
    mcu_size(channels, opts->subsampling, &mw, &mh);
    rows = dip_jpeg_band_rows(width, channels, opts);
    rc = dip_image_new(width, mh, channels, &blank);
    if (rc)
        return dip_err_set(err, rc, "jpeg: out of memory");
    v = dip_image_view(blank);
    memset(v.data, 0, v.stride * (size_t)v.height);
    rc = encode_view(&v, opts, &band, &n, err);
    if (rc)
        goto out;
    head = dip_malloc(n + 6);
    if (head == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "jpeg: out of memory");
        goto out;
    }
    if (find_sos(band, n, &sofh) == 0 ||
        make_head(band, n, height, ((width + mw - 1) / mw) * (rows / mh), head, out_len) != 0) {
        rc = dip_err_set(err, DIP_EINTERNAL, "jpeg: libjpeg wrote no scan");
        goto out;
    }
    *out = head;
    head = NULL;
out:
    dip_free(head);
    dip_free(band);
    dip_image_unref(blank);
    return rc;
}

int dip_jpeg_join(const uint8_t *head, size_t head_len, const uint8_t *const *segs,
                  const size_t *seg_lens, size_t nsegs, uint8_t **out, size_t *out_len,
                  struct dip_err *err)
{
    size_t total = head_len + 2, pos;
    uint8_t *o;

    *out = NULL;
    *out_len = 0;
    for (size_t i = 0; i < nsegs; i++)
        if (__builtin_add_overflow(total, seg_lens[i] + 2, &total))
            return dip_err_set(err, DIP_ELIMIT, "jpeg: output too large");
    o = dip_malloc(total);
    if (o == NULL)
        return dip_err_set(err, DIP_ENOMEM, "jpeg: out of memory joining %zu bands", nsegs);
    memcpy(o, head, head_len);
    pos = head_len;
    for (size_t i = 0; i < nsegs; i++) {
        memcpy(o + pos, segs[i], seg_lens[i]);
        pos += seg_lens[i];
        o[pos++] = 0xFF;
        o[pos++] = (uint8_t)(i + 1 < nsegs ? 0xD0 + i % 8 : 0xD9); /* RSTn, EOI last */
    }
    *out = o;
    *out_len = pos;
    return 0;
}

struct jenc {
    struct dip_view v;
    const struct dip_encode_opts *opts;
    int rows;
    uint8_t **seg;
    size_t *seg_len;
    uint8_t *band0; /* band 0 as a whole file, for the headers */
    size_t band0_len;
    struct dip_err *errs; /* one per band */
};

static int band_task(void *ud, size_t i, int thread)
{
    struct jenc *j = ud;
    int y0 = (int)i * j->rows;
    struct dip_rect r = {0, y0, j->v.width, DIP_MIN(j->rows, j->v.height - y0)};
    struct dip_view b = dip_view_sub(&j->v, r);

    (void)thread;
    if (i == 0) {
        /* Band 0 as a whole file: its headers become the image's, its scan the first segment. */
        size_t sofh, sos;
        int rc = encode_view(&b, j->opts, &j->band0, &j->band0_len, &j->errs[i]);
        if (rc)
            return rc;
        sos = find_sos(j->band0, j->band0_len, &sofh);
        if (DIP_NEVER(sos == 0 || j->band0_len < sos + 2))
            return dip_err_set(&j->errs[i], DIP_EINTERNAL, "jpeg: libjpeg wrote no scan");
        j->seg_len[i] = j->band0_len - sos - 2;
        j->seg[i] = dip_malloc(DIP_MAX(j->seg_len[i], (size_t)1));
        if (j->seg[i] == NULL)
            return dip_err_set(&j->errs[i], DIP_ENOMEM, "jpeg: out of memory");
        memcpy(j->seg[i], j->band0 + sos, j->seg_len[i]);
        return 0;
    }
    return dip_jpeg_encode_band(&b, j->opts, &j->seg[i], &j->seg_len[i], &j->errs[i]);
}

/* Images taller than one band are encoded band by band (in parallel on the caller's pool) and
 * joined; the band height depends on the width and options only, so the bytes do not depend on
 * the thread count. Smaller images are one plain libjpeg encode. */
static int jpeg_encode(const dip_image *img, const struct dip_encode_opts *opts, uint8_t **out,
                       size_t *out_len, struct dip_err *err)
{
    struct jenc j;
    struct dip_view v = dip_image_view(img);
    size_t nb, head_len = 0;
    uint8_t *head = NULL;
    int rc, mw, mh;

    rc = check_encode_opts(v.width, v.height, v.channels, opts, err);
    if (rc)
        return rc;
    memset(&j, 0, sizeof(j));
    j.rows = dip_jpeg_band_rows(v.width, v.channels, opts);
    if (v.height <= j.rows)
        return encode_view(&v, opts, out, out_len, err);
    j.v = v;
    j.opts = opts;
    nb = (size_t)((v.height + j.rows - 1) / j.rows);
    j.seg = dip_calloc(nb, sizeof(*j.seg));
    j.seg_len = dip_calloc(nb, sizeof(*j.seg_len));
    j.errs = dip_calloc(nb, sizeof(*j.errs));
    if (j.seg == NULL || j.seg_len == NULL || j.errs == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "jpeg: out of memory for %zu bands", nb);
        goto out;
    }
    rc = dip_pool_for(opts->pool, nb, band_task, &j);
    if (rc) {
        for (size_t i = 0; i < nb; i++)
            if (j.errs[i].msg[0]) {
                rc = dip_err_set(err, rc, "%s", j.errs[i].msg);
                break;
            }
        goto out;
    }
    head = dip_malloc(j.band0_len + 6);
    if (head == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "jpeg: out of memory");
        goto out;
    }
    mcu_size(v.channels, opts->subsampling, &mw, &mh);
    if (make_head(j.band0, j.band0_len, v.height, ((v.width + mw - 1) / mw) * (j.rows / mh), head,
                  &head_len) != 0) {
        rc = dip_err_set(err, DIP_EINTERNAL, "jpeg: libjpeg wrote no scan");
        goto out;
    }
    rc = dip_jpeg_join(head, head_len, (const uint8_t *const *)j.seg, j.seg_len, nb, out, out_len,
                       err);
out:
    for (size_t i = 0; j.seg != NULL && i < nb; i++)
        dip_free(j.seg[i]);
    dip_free(j.seg);
    dip_free(j.seg_len);
    dip_free(j.errs);
    dip_free(j.band0);
    dip_free(head);
    return rc;
}

/* ---- Encoding in rows ---- */

/* The bands of jpeg_encode, one at a time: rows are gathered into a band, each full band is
 * encoded and appended behind the headers with its restart marker, the last one at the end with
 * EOI. An image of one band or less is one plain encode at the end, as in jpeg_encode. */
struct jwrows {
    struct dip_encode_opts opts;
    int w, h, ch, rows, nb, y0, filled; /* the band in `band` starts at row y0 */
    dip_image *band;
    struct dip__buf out;
};

static void jwrows_free(void *st)
{
    struct jwrows *j = st;

    if (j == NULL)
        return;
    dip_image_unref(j->band);
    dip__buf_free(&j->out);
    dip_free(j);
}

/* Encodes the gathered band (band index y0 / rows) and appends its segment and marker. */
static int jw_flush(struct jwrows *j, struct dip_err *err)
{
    struct dip_view v = dip_image_view(j->band);
    uint8_t *seg = NULL, mark[2];
    size_t n = 0;
    int i = j->y0 / j->rows, rc;

    v.height = j->filled;
    rc = dip_jpeg_encode_band(&v, &j->opts, &seg, &n, err);
    if (rc)
        return rc;
    mark[0] = 0xFF;
    mark[1] = (uint8_t)(i + 1 < j->nb ? 0xD0 + i % 8 : 0xD9); /* RSTn, EOI last */
    rc = dip__buf_append(&j->out, seg, n);
    if (rc == 0)
        rc = dip__buf_append(&j->out, mark, 2);
    dip_free(seg);
    if (rc)
        return dip_err_set(err, rc, "jpeg: out of memory for the output");
    j->y0 += j->filled;
    j->filled = 0;
    return 0;
}

static int jwrows_write(void *st, const struct dip_view *rows, struct dip_err *err)
{
    struct jwrows *j = st;
    struct dip_view b = dip_image_view(j->band);

    for (int done = 0; done < rows->height;) {
        int n = DIP_MIN(rows->height - done, dip_image_height(j->band) - j->filled);
        struct dip_view src = dip_view_sub(rows, (struct dip_rect){0, done, j->w, n});
        struct dip_view dst = dip_view_sub(&b, (struct dip_rect){0, j->filled, j->w, n});

        dip_view_copy(&src, &dst);
        j->filled += n;
        done += n;
        /* A full band that is not the last one goes out at once. */
        if (j->nb > 1 && j->filled == j->rows && j->y0 + j->rows < j->h) {
            int rc = jw_flush(j, err);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int jwrows_finish(void *st, uint8_t **out, size_t *out_len, struct dip_err *err)
{
    struct jwrows *j = st;
    int rc;

    if (j->nb == 1) {
        struct dip_view v = dip_image_view(j->band);
        return encode_view(&v, &j->opts, out, out_len, err);
    }
    rc = jw_flush(j, err);
    if (rc)
        return rc;
    *out = j->out.bytes;
    *out_len = j->out.len;
    j->out.bytes = NULL; /* the caller owns it now */
    dip__buf_free(&j->out);
    return 0;
}

static int jpeg_enc_open(int w, int h, int ch, const struct dip_encode_opts *opts,
                         struct dip__renc *re, struct dip_err *err)
{
    struct jwrows *j = NULL;
    uint8_t *head = NULL;
    size_t head_len = 0;
    int rc = check_encode_opts(w, h, ch, opts, err);

    if (rc)
        return rc;
    j = dip_calloc(1, sizeof(*j));
    if (j == NULL)
        return dip_err_set(err, DIP_ENOMEM, "jpeg: out of memory");
    dip__buf_init(&j->out, SIZE_MAX / 2);
    j->opts = *opts;
    j->w = w;
    j->h = h;
    j->ch = ch;
    j->rows = dip_jpeg_band_rows(w, ch, opts);
    j->nb = (h + j->rows - 1) / j->rows;
    rc = dip_image_new(w, DIP_MIN(h, j->rows), ch, &j->band);
    if (rc) {
        rc = dip_err_set(err, rc, "jpeg: out of memory for a %dx%d band", w, j->rows);
        goto out;
    }
    if (j->nb > 1) {
        rc = dip_jpeg_encode_head(w, h, ch, opts, &head, &head_len, err);
        if (rc)
            goto out;
        rc = dip__buf_append(&j->out, head, head_len);
        if (rc) {
            rc = dip_err_set(err, rc, "jpeg: out of memory for the output");
            goto out;
        }
    }
    re->st = j;
    re->write = jwrows_write;
    re->finish = jwrows_finish;
    re->free = jwrows_free;
    j = NULL; /* re owns it now */
out:
    dip_free(head);
    jwrows_free(j);
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
    .rows_open = jpeg_rows_open,
    .enc_open = jpeg_enc_open,
};
