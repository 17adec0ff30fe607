/* SPDX-License-Identifier: MIT */
/* GIF through giflib, decode only: the first frame composited onto the logical screen. A first
 * pass walks every record without decoding pixels (LZW blocks are skipped raw), counting frames
 * against max_frames and checking the screen and every frame rectangle against the limits and
 * the screen; only then is the first frame decoded, in a second pass. Decode-only: GIF output is
 * not offered (encode is NULL). */
#include <stdio.h>
#include <string.h>

#include <gif_lib.h>

#include "core/internal.h"
#include "internal.h"

struct gin {
    const uint8_t *buf;
    size_t len, pos;
};

static int on_read(GifFileType *g, GifByteType *dst, int n)
{
    struct gin *in = g->UserData;
    size_t k = n > 0 ? (size_t)n : 0;

    if (k > in->len - in->pos)
        k = in->len - in->pos;
    memcpy(dst, in->buf + in->pos, k);
    in->pos += k;
    return (int)k;
}

/* What the walk learns: the screen, the frame count, and the first frame. */
struct gwalk {
    int sw, sh;
    int frames;
    int fx, fy, fw, fh, interlace;
    int transparent; /* first frame's transparent index, or -1 */
    int channels;
};

static int gif_code(int e)
{
    return e == D_GIF_ERR_NOT_ENOUGH_MEM ? DIP_ENOMEM : DIP_ECORRUPT;
}

static int gif_fail(struct dip_err *err, int e, const struct gin *in, const char *what)
{
    /* giflib reports READ_FAILED (or leaves Error at 0) for a short read, and also for an LZW
     * minimum code size above 8; the input position tells the two apart. */
    if ((e == D_GIF_ERR_READ_FAILED || e == 0) && in->pos >= in->len)
        return dip_err_set(err, DIP_ECORRUPT,
                           "gif: premature end of data after %zu bytes "
                           "(reading %s)",
                           in->len, what);
    if (e == D_GIF_ERR_READ_FAILED || e == 0)
        return dip_err_set(err, DIP_ECORRUPT,
                           "gif: cannot read %s at offset %zu (an LZW "
                           "minimum code size above 8?)",
                           what, in->pos);
    if (e == D_GIF_ERR_EOF_TOO_SOON)
        return dip_err_set(err, DIP_ECORRUPT, "gif: LZW data of %s ends before its last pixel",
                           what);
    if (e == D_GIF_ERR_IMAGE_DEFECT)
        return dip_err_set(err, DIP_ECORRUPT, "gif: corrupt LZW data in %s", what);
    return dip_err_set(err, gif_code(e), "gif: %s (reading %s)",
                       GifErrorString(e) ? GifErrorString(e) : "error", what);
}

static int open_gif(const uint8_t *buf, size_t len, struct gin *in, GifFileType **out,
                    struct dip_err *err)
{
    int e = 0;

    in->buf = buf;
    in->len = len;
    in->pos = 0;
    *out = DGifOpen(in, on_read, &e);
    if (*out == NULL)
        return gif_fail(err, e, in, "the screen descriptor");
    return 0;
}

/* Skips the sub-blocks of an extension, adding their bytes to *meta. */
static int skip_extension(GifFileType *g, GifByteType *ext, size_t *meta,
                          const struct dip_limits *lim, const struct gin *in, struct dip_err *err)
{
    while (ext != NULL) {
        *meta += ext[0];
        if (*meta > lim->max_metadata_bytes)
            return dip_err_set(err, DIP_ELIMIT,
                               "gif: extension blocks of %zu bytes exceed the "
                               "limit max_metadata_bytes=%zu",
                               *meta, lim->max_metadata_bytes);
        if (DGifGetExtensionNext(g, &ext) == GIF_ERROR)
            return gif_fail(err, g->Error, in, "an extension");
    }
    return 0;
}

/* First pass: every record, no pixel decoding. */
static int walk(const uint8_t *buf, size_t len, const struct dip_limits *lim, struct gwalk *w,
                struct dip_err *err)
{
    struct gin in;
    GifFileType *g = NULL;
    GifRecordType t;
    size_t meta = 0;
    int rc, pending_trans = -1, done = 0;

    memset(w, 0, sizeof(*w));
    w->transparent = -1;
    rc = open_gif(buf, len, &in, &g, err);
    if (rc)
        return rc;
    w->sw = g->SWidth;
    w->sh = g->SHeight;
    rc = dip_limits_check_dims(lim, "gif: logical screen", w->sw, w->sh, err);
    while (rc == 0 && !done) {
        if (DGifGetRecordType(g, &t) == GIF_ERROR) {
            rc = gif_fail(err, g->Error, &in, "a record type");
            break;
        }
        switch (t) {
        case EXTENSION_RECORD_TYPE: {
            GifByteType *ext = NULL;
            int code = 0;
            if (DGifGetExtension(g, &code, &ext) == GIF_ERROR) {
                rc = gif_fail(err, g->Error, &in, "an extension");
                break;
            }
            if (code == GRAPHICS_EXT_FUNC_CODE && ext != NULL) {
                GraphicsControlBlock gcb;
                if (DGifExtensionToGCB(ext[0], ext + 1, &gcb) == GIF_ERROR) {
                    rc = dip_err_set(err, DIP_ECORRUPT,
                                     "gif: graphic control extension of %d "
                                     "bytes (must be 4)",
                                     ext[0]);
                    break;
                }
                pending_trans = gcb.TransparentColor;
            }
            rc = skip_extension(g, ext, &meta, lim, &in, err);
            break;
        }
        case IMAGE_DESC_RECORD_TYPE: {
            GifImageDesc *d = &g->Image;
            char what[64];
            GifByteType *block = NULL;
            int codesize = 0;
            if (DGifGetImageDesc(g) == GIF_ERROR) {
                rc = gif_fail(err, g->Error, &in, "an image descriptor");
                break;
            }
            w->frames++;
            if (w->frames > lim->max_frames) {
                rc = dip_err_set(err, DIP_ELIMIT,
                                 "gif: more than %d frames exceeds the limit max_frames=%d",
                                 lim->max_frames, lim->max_frames);
                break;
            }
            snprintf(what, sizeof(what), "gif: frame %d", w->frames);
            rc = dip_limits_check_dims(lim, what, d->Width, d->Height, err);
            if (rc)
                break;
            if (d->Left < 0 || d->Top < 0 || d->Left + d->Width > w->sw ||
                d->Top + d->Height > w->sh) {
                rc = dip_err_set(err, DIP_ECORRUPT,
                                 "gif: frame %d (%dx%d at %d,%d) extends "
                                 "past the %dx%d logical screen",
                                 w->frames, d->Width, d->Height, d->Left, d->Top, w->sw, w->sh);
                break;
            }
            if (w->frames == 1) {
                w->fx = d->Left;
                w->fy = d->Top;
                w->fw = d->Width;
                w->fh = d->Height;
                w->interlace = d->Interlace ? 1 : 0;
                w->transparent = pending_trans;
                if (d->ColorMap == NULL && g->SColorMap == NULL) {
                    rc = dip_err_set(err, DIP_ECORRUPT, "gif: frame 1 has no colour map");
                    break;
                }
            }
            pending_trans = -1;
            /* Skip the LZW data as raw sub-blocks: no decoding. */
            if (DGifGetCode(g, &codesize, &block) == GIF_ERROR) {
                rc = gif_fail(err, g->Error, &in, "image data");
                break;
            }
            while (block != NULL) {
                if (DGifGetCodeNext(g, &block) == GIF_ERROR) {
                    rc = gif_fail(err, g->Error, &in, "image data");
                    break;
                }
            }
            break;
        }
        case TERMINATE_RECORD_TYPE:
            done = 1;
            break;
        default:
            rc = dip_err_set(err, DIP_ECORRUPT, "gif: unknown record type");
            break;
        }
    }
    if (rc == 0 && w->frames == 0)
        rc = dip_err_set(err, DIP_ECORRUPT, "gif: no image in the file");
    /* Pixels the first frame leaves uncovered are transparent, as are its transparent-index
     * pixels: either makes the output RGBA. */
    if (rc == 0)
        w->channels =
            w->transparent >= 0 || w->fx != 0 || w->fy != 0 || w->fw != w->sw || w->fh != w->sh ? 4
                                                                                                : 3;
    DGifCloseFile(g, NULL);
    return rc;
}

static void fill_info(const struct gwalk *w, struct dip_image_info *info)
{
    info->width = w->sw;
    info->height = w->sh;
    info->channels = w->channels;
    info->bit_depth = 8;
    info->frames = w->frames;
    info->orientation = 1;
    info->progressive = w->interlace;
    snprintf(info->color, sizeof(info->color), "palette");
}

static int gif_probe(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                     struct dip_image_info *info, struct dip_err *err)
{
    struct gwalk w;
    int rc = walk(buf, len, lim, &w, err);

    if (rc == 0)
        fill_info(&w, info);
    return rc;
}

/* Second pass: up to the first image descriptor, then its pixels. */
static int decode_first(const uint8_t *buf, size_t len, const struct gwalk *w, dip_image *img,
                        struct dip_err *err)
{
    static const int ioff[4] = {0, 4, 2, 1}, istep[4] = {8, 8, 4, 2};
    struct dip_view v = dip_image_view(img);
    struct gin in;
    GifFileType *g = NULL;
    GifRecordType t;
    GifByteType *line = NULL;
    const ColorMapObject *map;
    int rc = open_gif(buf, len, &in, &g, err);

    if (rc)
        return rc;
    for (;;) {
        if (DGifGetRecordType(g, &t) == GIF_ERROR) {
            rc = gif_fail(err, g->Error, &in, "a record type");
            goto out;
        }
        if (t == IMAGE_DESC_RECORD_TYPE)
            break;
        if (t != EXTENSION_RECORD_TYPE) {
            rc = dip_err_set(err, DIP_ECORRUPT, "gif: no image before the trailer");
            goto out;
        }
        {
            GifByteType *ext = NULL;
            int code;
            if (DGifGetExtension(g, &code, &ext) == GIF_ERROR) {
                rc = gif_fail(err, g->Error, &in, "an extension");
                goto out;
            }
            while (ext != NULL)
                if (DGifGetExtensionNext(g, &ext) == GIF_ERROR) {
                    rc = gif_fail(err, g->Error, &in, "an extension");
                    goto out;
                }
        }
    }
    if (DGifGetImageDesc(g) == GIF_ERROR) {
        rc = gif_fail(err, g->Error, &in, "an image descriptor");
        goto out;
    }
    /* The walk checked this very descriptor; a mismatch means the input changed under us. */
    if (g->Image.Left != w->fx || g->Image.Top != w->fy || g->Image.Width != w->fw ||
        g->Image.Height != w->fh) {
        rc = dip_err_set(err, DIP_EINTERNAL, "gif: first frame changed between passes");
        goto out;
    }
    map = g->Image.ColorMap ? g->Image.ColorMap : g->SColorMap;
    if (map == NULL) {
        rc = dip_err_set(err, DIP_ECORRUPT, "gif: frame 1 has no colour map");
        goto out;
    }
    line = dip_malloc((size_t)w->fw);
    if (line == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "gif: out of memory");
        goto out;
    }
    /* Interlaced frames store rows in four passes: 0, 8, 16...; 4, 12...; 2, 6...; 1, 3... */
    for (int pass = w->interlace ? 0 : 3; pass < 4; pass++) {
        int y0 = w->interlace ? ioff[pass] : 0, dy = w->interlace ? istep[pass] : 1;
        for (int y = y0; y < w->fh; y += dy) {
            uint8_t *dst =
                v.data + (size_t)(w->fy + y) * v.stride + (size_t)w->fx * (size_t)v.channels;
            if (DGifGetLine(g, line, w->fw) == GIF_ERROR) {
                rc = gif_fail(err, g->Error, &in, "frame 1");
                goto out;
            }
            for (int x = 0; x < w->fw; x++, dst += v.channels) {
                int idx = line[x];
                if (idx == w->transparent)
                    continue; /* stays transparent black */
                if (idx >= map->ColorCount) {
                    rc = dip_err_set(err, DIP_ECORRUPT,
                                     "gif: pixel index %d outside the "
                                     "%d-entry colour map",
                                     idx, map->ColorCount);
                    goto out;
                }
                dst[0] = map->Colors[idx].Red;
                dst[1] = map->Colors[idx].Green;
                dst[2] = map->Colors[idx].Blue;
                if (v.channels == 4)
                    dst[3] = 255;
            }
        }
    }
out:
    dip_free(line);
    DGifCloseFile(g, NULL);
    return rc;
}

static int gif_decode(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                      const struct dip_decode_opts *opts, dip_image **out,
                      struct dip_image_info *info, struct dip_err *err)
{
    struct gwalk w;
    dip_image *img = NULL;
    int rc;

    (void)opts;
    rc = walk(buf, len, lim, &w, err);
    if (rc)
        return rc;
    fill_info(&w, info);
    rc = dip_image_new(w.sw, w.sh, w.channels, &img);
    if (rc)
        return dip_err_set(err, rc, "gif: cannot allocate a %dx%d image", w.sw, w.sh);
    {
        struct dip_view v = dip_image_view(img);
        memset(v.data, 0, v.stride * (size_t)v.height);
    }
    rc = decode_first(buf, len, &w, img, err);
    if (rc == 0) {
        *out = img;
        img = NULL; /* the caller owns it now */
    }
    dip_image_unref(img);
    return rc;
}

static void gif_version(char *buf, size_t len)
{
    snprintf(buf, len, "giflib %d.%d.%d", GIFLIB_MAJOR, GIFLIB_MINOR, GIFLIB_RELEASE);
}

const struct dip__codec dip__codec_gif = {
    .format = DIP_FORMAT_GIF,
    .probe = gif_probe,
    .decode = gif_decode,
    .encode = NULL,
    .version = gif_version,
};
