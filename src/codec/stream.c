/* SPDX-License-Identifier: MIT */
/* Decoding and encoding in rows (include/dip/codec.h, "Rows"): the format-independent part.
 * It checks what callers pass (piece sizes, row counts, order), remembers a failure so that no
 * later call works on a half-broken decoder, and gives every format without a row decoder or
 * encoder of its own a whole-image fallback: the decoder decodes everything on the first read
 * and hands out rows of that image, the encoder keeps the rows and encodes them at the end. */
#include <string.h>

#include "core/internal.h"
#include "internal.h"

struct dip_decoder {
    const uint8_t *buf;
    size_t len;
    struct dip_limits lim;
    struct dip_decode_opts opts;
    const struct dip__codec *c;
    struct dip__rdec rd; /* rd.read NULL: the whole-image fallback */
    dip_image *whole;    /* the fallback's image, decoded on the first read */
    int w, h, ch, y, failed;
};

struct dip_encoder {
    struct dip_encode_opts opts;
    const struct dip__codec *c;
    struct dip__renc re; /* re.write NULL: the whole-image fallback */
    dip_image *whole;    /* the fallback's rows */
    int w, h, ch, y, failed, finished;
};

static int check_piece(const struct dip_view *v, int w, int h, int ch, int y, const char *what,
                       struct dip_err *err)
{
    if (v == NULL || v->data == NULL || v->width != w || v->channels != ch || v->height < 1 ||
        v->stride < (size_t)w * (size_t)ch)
        return dip_err_set(err, DIP_EINVAL, "%s: rows must be %d pixels wide with %d channels",
                           what, w, ch);
    if (v->height > h - y)
        return dip_err_set(err, DIP_EINVAL, "%s: %d rows asked past row %d of %d", what, v->height,
                           y, h);
    return 0;
}

/* ---- Decoder ---- */

int dip_decoder_open(const void *buf, size_t len, const struct dip_limits *lim,
                     const struct dip_decode_opts *opts, dip_decoder **out,
                     struct dip_image_info *info, struct dip_err *err)
{
    struct dip_image_info local;
    dip_decoder *d = NULL;
    int rc;

    *out = NULL;
    if (info == NULL)
        info = &local;
    d = dip_calloc(1, sizeof(*d));
    if (d == NULL)
        return dip_err_set(err, DIP_ENOMEM, "out of memory opening a decoder");
    d->buf = buf;
    d->len = len;
    d->lim = *lim;
    if (opts != NULL)
        d->opts = *opts;
    else
        dip_decode_opts_default(&d->opts);
    rc = dip__codec_for_input(buf, len, lim, &d->c, err);
    if (rc)
        goto out;
    memset(info, 0, sizeof(*info));
    info->format = d->c->format;
    info->frames = 1;
    info->orientation = 1;
    info->bit_depth = 8;
    if (d->c->rows_open != NULL) {
        rc = d->c->rows_open(buf, len, &d->lim, info, &d->rd, err);
        if (rc)
            goto out;
        if (d->rd.read != NULL && d->opts.autorotate && info->orientation > 1 &&
            info->orientation <= 8) {
            d->rd.free(d->rd.st); /* rotation needs the whole image */
            memset(&d->rd, 0, sizeof(d->rd));
        }
    } else {
        rc = d->c->probe(buf, len, lim, info, err);
        if (rc)
            goto out;
    }
    d->w = info->width;
    d->h = info->height;
    d->ch = info->channels;
    if (d->rd.read == NULL && d->opts.autorotate && info->orientation >= 5 &&
        info->orientation <= 8) {
        d->w = info->height;
        d->h = info->width;
    }
    *out = d;
    d = NULL; /* the caller owns it now */
out:
    dip_decoder_free(d);
    return rc;
}

void dip_decoder_dims(const dip_decoder *d, int *width, int *height, int *channels)
{
    *width = d->w;
    *height = d->h;
    *channels = d->ch;
}

int dip_decoder_streams(const dip_decoder *d)
{
    return d->rd.read != NULL;
}

int dip_decoder_row(const dip_decoder *d)
{
    return d->y;
}

int dip_decoder_read_rows(dip_decoder *d, const struct dip_view *rows, struct dip_err *err)
{
    int rc;

    if (d->failed)
        return dip_err_set(err, DIP_EINVAL, "%s: the decoder failed earlier",
                           dip_format_name(d->c->format));
    rc = check_piece(rows, d->w, d->h, d->ch, d->y, "decoder", err);
    if (rc)
        return rc;
    if (d->rd.read != NULL) {
        rc = d->rd.read(d->rd.st, rows, err);
    } else {
        if (d->whole == NULL) {
            rc = dip_codec_decode(d->buf, d->len, &d->lim, &d->opts, &d->whole, NULL, err);
            if (rc == 0 &&
                (dip_image_width(d->whole) != d->w || dip_image_height(d->whole) != d->h ||
                 dip_image_channels(d->whole) != d->ch))
                rc = dip_err_set(err, DIP_EINTERNAL,
                                 "%s: the image decoded to %dx%dx%d, its header said %dx%dx%d",
                                 dip_format_name(d->c->format), dip_image_width(d->whole),
                                 dip_image_height(d->whole), dip_image_channels(d->whole), d->w,
                                 d->h, d->ch);
        }
        if (rc == 0) {
            struct dip_view v = dip_image_view(d->whole);
            struct dip_view src = dip_view_sub(&v, (struct dip_rect){0, d->y, d->w, rows->height});

            dip_view_copy(&src, rows);
            if (d->y + rows->height == d->h) {
                dip_image_unref(d->whole); /* every row is out */
                d->whole = NULL;
            }
        }
    }
    if (rc) {
        d->failed = 1;
        return rc;
    }
    d->y += rows->height;
    return 0;
}

void dip_decoder_free(dip_decoder *d)
{
    if (d == NULL)
        return;
    if (d->rd.free != NULL)
        d->rd.free(d->rd.st);
    dip_image_unref(d->whole);
    dip_free(d);
}

/* ---- Encoder ---- */

int dip_encoder_open(int width, int height, int channels, const struct dip_encode_opts *opts,
                     dip_encoder **out, struct dip_err *err)
{
    dip_encoder *e = NULL;
    int rc = 0;

    *out = NULL;
    e = dip_calloc(1, sizeof(*e));
    if (e == NULL)
        return dip_err_set(err, DIP_ENOMEM, "out of memory opening an encoder");
    e->opts = *opts;
    e->w = width;
    e->h = height;
    e->ch = channels;
    e->c = dip__codec_find(opts->format);
    if (e->c == NULL || e->c->encode == NULL) {
        rc = dip_err_set(err, DIP_EFORMAT,
                         "cannot encode format '%s' (encodable: png, jpeg, "
                         "webp, tiff, bmp, pnm)",
                         dip_format_name(opts->format));
        goto out;
    }
    if (width < 1 || height < 1 || channels < 1 || channels > 4) {
        rc = dip_err_set(err, DIP_EINVAL, "%s: cannot encode a %dx%d image with %d channels",
                         dip_format_name(opts->format), width, height, channels);
        goto out;
    }
    if (e->c->enc_open != NULL) {
        rc = e->c->enc_open(width, height, channels, &e->opts, &e->re, err);
        if (rc)
            goto out;
    }
    if (e->re.write == NULL) {
        rc = dip_image_new(width, height, channels, &e->whole);
        if (rc) {
            rc = dip_err_set(err, rc, "%s: cannot allocate a %dx%d image to encode",
                             dip_format_name(opts->format), width, height);
            goto out;
        }
    }
    *out = e;
    e = NULL; /* the caller owns it now */
out:
    dip_encoder_free(e);
    return rc;
}

int dip_encoder_streams(const dip_encoder *e)
{
    return e->re.write != NULL;
}

int dip_encoder_write_rows(dip_encoder *e, const struct dip_view *rows, struct dip_err *err)
{
    int rc;

    if (e->failed || e->finished)
        return dip_err_set(err, DIP_EINVAL, "%s: the encoder %s", dip_format_name(e->opts.format),
                           e->failed ? "failed earlier" : "is finished");
    rc = check_piece(rows, e->w, e->h, e->ch, e->y, "encoder", err);
    if (rc)
        return rc;
    if (e->re.write != NULL) {
        rc = e->re.write(e->re.st, rows, err);
    } else {
        struct dip_view v = dip_image_view(e->whole);
        struct dip_view dst = dip_view_sub(&v, (struct dip_rect){0, e->y, e->w, rows->height});

        dip_view_copy(rows, &dst);
    }
    if (rc) {
        e->failed = 1;
        return rc;
    }
    e->y += rows->height;
    return 0;
}

int dip_encoder_finish(dip_encoder *e, uint8_t **out, size_t *out_len, struct dip_err *err)
{
    int rc;

    *out = NULL;
    *out_len = 0;
    if (e->failed || e->finished)
        return dip_err_set(err, DIP_EINVAL, "%s: the encoder %s", dip_format_name(e->opts.format),
                           e->failed ? "failed earlier" : "is finished");
    if (e->y != e->h)
        return dip_err_set(err, DIP_EINVAL, "%s: finished after %d of %d rows",
                           dip_format_name(e->opts.format), e->y, e->h);
    if (e->re.write != NULL)
        rc = e->re.finish(e->re.st, out, out_len, err);
    else
        rc = dip_codec_encode(e->whole, &e->opts, out, out_len, err);
    e->failed = rc != 0;
    e->finished = 1;
    dip_image_unref(e->whole);
    e->whole = NULL;
    return rc;
}

void dip_encoder_free(dip_encoder *e)
{
    if (e == NULL)
        return;
    if (e->re.free != NULL)
        e->re.free(e->re.st);
    dip_image_unref(e->whole);
    dip_free(e);
}
