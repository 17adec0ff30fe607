/* SPDX-License-Identifier: MIT */
/* GIF through giflib, decode only: the first frame, i.e. every image block up to and including
 * the first whose graphic control extension has a delay, composited on the logical screen with
 * each block's disposal applied and clipped to the screen. A first pass walks every record
 * without decoding pixels (LZW blocks are skipped raw), counting blocks against max_frames and
 * checking the screen and every block rectangle against the limits; only then are the first
 * frame's blocks decoded, in a second pass. Decode-only: encode is NULL. */
#include <stdio.h>
#include <stdlib.h>
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

/* One image block of the first frame: its rectangle as stored (which may extend past the screen),
 * and what its graphic control extension says. */
struct gblock {
    int x, y, w, h, interlace;
    int transparent; /* transparent index, or -1 */
    int disposal;    /* 0..7 as stored; 2 = restore to background, 3 = restore previous */
};

/* What the walk learns: the screen, the block count, and the blocks of the first frame (every
 * block up to and including the first whose graphic control extension has a non-zero delay). */
struct gwalk {
    int sw, sh;
    int frames; /* image blocks in the file */
    struct gblock *blk;
    int nblk, ablk;
    unsigned long long area; /* pixels of the blocks in blk, as stored */
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

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Sorts and deduplicates v[0..n), returning the new count. */
static int uniq(int *v, int n)
{
    int k = 0;

    qsort(v, (size_t)n, sizeof(*v), cmp_int);
    for (int i = 0; i < n; i++)
        if (k == 0 || v[k - 1] != v[i])
            v[k++] = v[i];
    return k;
}

static int edge_index(const int *v, int n, int x)
{
    const int *p = bsearch(&x, v, (size_t)n, sizeof(*v), cmp_int);
    return p ? (int)(p - v) : 0; /* every edge was put in v */
}

/* A block's rectangle clipped to the screen; x0 >= x1 or y0 >= y1 when it lies outside. */
static void clip(const struct gwalk *w, const struct gblock *b, int *x0, int *y0, int *x1, int *y1)
{
    *x0 = b->x < w->sw ? b->x : w->sw;
    *y0 = b->y < w->sh ? b->y : w->sh;
    *x1 = b->x + b->w < w->sw ? b->x + b->w : w->sw;
    *y1 = b->y + b->h < w->sh ? b->y + b->h : w->sh;
}

/* Cells of the compressed grid and cell updates the coverage analysis may spend; past either,
 * the frame is taken to be RGBA (only with max_frames raised far past its default of 100). */
#define GIF_MAX_CELLS     (1 << 20)
#define GIF_MAX_CELL_WORK (1LL << 26)

/* Output channels from geometry alone, as the compositing will leave the screen: 3 when every
 * pixel ends covered by a block without a transparent index (or by one with a transparent index
 * drawn over pixels already opaque), else 4. The screen is cut into a grid at every block edge;
 * each cell is 0 (uncovered), 1 (opaque) or 2 (may be transparent). Blocks before the last that
 * are disposed to background clear their cells; those restoring the previous state leave none. */
static int frame_channels(const struct gwalk *w, int *channels, struct dip_err *err)
{
    int *xs = NULL, *ys = NULL, nx = 0, ny = 0, rc = 0;
    uint8_t *cell = NULL;
    long long work = 0;

    *channels = 4;
    xs = dip_malloc(sizeof(*xs) * (size_t)(2 * w->nblk + 2));
    ys = dip_malloc(sizeof(*ys) * (size_t)(2 * w->nblk + 2));
    if (xs == NULL || ys == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "gif: out of memory");
        goto out;
    }
    xs[nx++] = 0;
    xs[nx++] = w->sw;
    ys[ny++] = 0;
    ys[ny++] = w->sh;
    for (int i = 0; i < w->nblk; i++) {
        int x0, y0, x1, y1;
        clip(w, &w->blk[i], &x0, &y0, &x1, &y1);
        xs[nx++] = x0;
        xs[nx++] = x1;
        ys[ny++] = y0;
        ys[ny++] = y1;
    }
    nx = uniq(xs, nx);
    ny = uniq(ys, ny);
    if ((long long)(nx - 1) * (ny - 1) > GIF_MAX_CELLS)
        goto out;
    cell = dip_calloc((size_t)(nx - 1) * (size_t)(ny - 1), 1);
    if (cell == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "gif: out of memory");
        goto out;
    }
    for (int i = 0; i < w->nblk; i++) {
        const struct gblock *b = &w->blk[i];
        int last = i == w->nblk - 1, x0, y0, x1, y1, cx0, cx1, cy0, cy1;
        if (!last && b->disposal == 3)
            continue; /* drawn, then undone */
        clip(w, b, &x0, &y0, &x1, &y1);
        if (x0 >= x1 || y0 >= y1)
            continue;
        cx0 = edge_index(xs, nx, x0);
        cx1 = edge_index(xs, nx, x1);
        cy0 = edge_index(ys, ny, y0);
        cy1 = edge_index(ys, ny, y1);
        work += (long long)(cx1 - cx0) * (cy1 - cy0);
        if (work > GIF_MAX_CELL_WORK)
            goto out;
        for (int cy = cy0; cy < cy1; cy++)
            for (int cx = cx0; cx < cx1; cx++) {
                uint8_t *c = &cell[(size_t)cy * (size_t)(nx - 1) + (size_t)cx];
                if (!last && b->disposal == 2)
                    *c = 0;
                else if (b->transparent < 0)
                    *c = 1;
                else if (*c != 1)
                    *c = 2;
            }
    }
    *channels = 3;
    for (size_t k = 0; k < (size_t)(nx - 1) * (size_t)(ny - 1); k++)
        if (cell[k] != 1)
            *channels = 4;
out:
    dip_free(cell);
    dip_free(ys);
    dip_free(xs);
    return rc;
}

static int add_block(struct gwalk *w, const struct gblock *b, struct dip_err *err)
{
    if (w->nblk == w->ablk) {
        int n = w->ablk ? 2 * w->ablk : 4;
        struct gblock *p = dip_realloc(w->blk, sizeof(*p) * (size_t)n);
        if (p == NULL)
            return dip_err_set(err, DIP_ENOMEM, "gif: out of memory");
        w->blk = p;
        w->ablk = n;
    }
    w->blk[w->nblk++] = *b;
    return 0;
}

static void walk_free(struct gwalk *w)
{
    dip_free(w->blk);
    w->blk = NULL;
}

/* First pass: every record, no pixel decoding. */
static int walk(const uint8_t *buf, size_t len, const struct dip_limits *lim, struct gwalk *w,
                struct dip_err *err)
{
    struct gin in;
    GifFileType *g = NULL;
    GifRecordType t;
    size_t meta = 0;
    int rc, done = 0, collecting = 1;
    int pend_trans = -1, pend_disposal = 0, pend_delay = 0;

    memset(w, 0, sizeof(*w));
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
                pend_trans = gcb.TransparentColor;
                pend_disposal = gcb.DisposalMode;
                pend_delay = gcb.DelayTime;
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
            /* The block's own rectangle, as stored, before anything is allocated for it; the
             * part past the logical screen is decoded and dropped, as browsers do. */
            snprintf(what, sizeof(what), "gif: image block %d", w->frames);
            rc = dip_limits_check_dims(lim, what, d->Width, d->Height, err);
            if (rc)
                break;
            if (collecting) {
                struct gblock b = {.x = d->Left,
                                   .y = d->Top,
                                   .w = d->Width,
                                   .h = d->Height,
                                   .interlace = d->Interlace ? 1 : 0,
                                   .transparent = pend_trans,
                                   .disposal = pend_disposal};
                if (d->ColorMap == NULL && g->SColorMap == NULL) {
                    rc = dip_err_set(err, DIP_ECORRUPT, "gif: image block %d has no colour map",
                                     w->frames);
                    break;
                }
                /* Every block of the frame is decoded whole: their pixels together stay within
                 * max_pixels, so the work is bounded as for one image of the largest size. */
                w->area += (unsigned long long)d->Width * (unsigned long long)d->Height;
                if (w->area > lim->max_pixels) {
                    rc = dip_err_set(err, DIP_ELIMIT,
                                     "gif: the first frame's image blocks 1..%d have %llu pixels "
                                     "in all, past the limit max_pixels=%llu",
                                     w->frames, w->area, (unsigned long long)lim->max_pixels);
                    break;
                }
                rc = add_block(w, &b, err);
                if (rc)
                    break;
                /* A delay ends the first frame: it is shown before what follows. */
                if (pend_delay > 0)
                    collecting = 0;
            }
            pend_trans = -1;
            pend_disposal = 0;
            pend_delay = 0;
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
    if (rc == 0)
        rc = frame_channels(w, &w->channels, err);
    if (rc)
        walk_free(w);
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
    info->progressive = w->blk[0].interlace;
    snprintf(info->color, sizeof(info->color), "palette");
}

static int gif_probe(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                     struct dip_image_info *info, struct dip_err *err)
{
    struct gwalk w;
    int rc = walk(buf, len, lim, &w, err);

    if (rc == 0)
        fill_info(&w, info);
    if (rc == 0)
        walk_free(&w);
    return rc;
}

/* Copies rows y0..y1 of columns x0..x1 between the canvas and a packed buffer. */
static void copy_rect(const struct dip_view *v, uint8_t *packed, int x0, int y0, int x1, int y1,
                      int to_canvas)
{
    size_t row = (size_t)(x1 - x0) * (size_t)v->channels;

    for (int y = y0; y < y1; y++) {
        uint8_t *c = v->data + (size_t)y * v->stride + (size_t)x0 * (size_t)v->channels;
        uint8_t *p = packed + (size_t)(y - y0) * row;
        if (to_canvas)
            memcpy(c, p, row);
        else
            memcpy(p, c, row);
    }
}

/* Decodes the image data of block b (its descriptor just read) onto the canvas: pixels past the
 * screen and transparent-index pixels are dropped. */
static int draw_block(GifFileType *g, const struct gin *in, const struct gwalk *w,
                      const struct gblock *b, int n, struct dip_view *v, struct dip_err *err)
{
    static const int ioff[4] = {0, 4, 2, 1}, istep[4] = {8, 8, 4, 2};
    const ColorMapObject *map = g->Image.ColorMap ? g->Image.ColorMap : g->SColorMap;
    GifByteType *line = NULL;
    char what[48];
    int rc = 0;

    snprintf(what, sizeof(what), "image block %d", n);
    if (map == NULL) {
        rc = dip_err_set(err, DIP_ECORRUPT, "gif: %s has no colour map", what);
        goto out;
    }
    line = dip_malloc((size_t)b->w);
    if (line == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "gif: out of memory");
        goto out;
    }
    /* Interlaced blocks store rows in four passes: 0, 8, 16...; 4, 12...; 2, 6...; 1, 3... */
    for (int pass = b->interlace ? 0 : 3; pass < 4; pass++) {
        int first = b->interlace ? ioff[pass] : 0, dy = b->interlace ? istep[pass] : 1;
        for (int y = first; y < b->h; y += dy) {
            int sy = b->y + y;
            if (DGifGetLine(g, line, b->w) == GIF_ERROR) {
                rc = gif_fail(err, g->Error, in, what);
                goto out;
            }
            for (int x = 0; x < b->w; x++) {
                int idx = line[x], sx = b->x + x;
                uint8_t *dst;
                if (idx == b->transparent)
                    continue; /* what is beneath shows through */
                if (idx >= map->ColorCount) {
                    rc = dip_err_set(err, DIP_ECORRUPT,
                                     "gif: pixel index %d outside the "
                                     "%d-entry colour map of %s",
                                     idx, map->ColorCount, what);
                    goto out;
                }
                if (sx >= w->sw || sy >= w->sh)
                    continue; /* past the logical screen: dropped */
                dst = v->data + (size_t)sy * v->stride + (size_t)sx * (size_t)v->channels;
                dst[0] = map->Colors[idx].Red;
                dst[1] = map->Colors[idx].Green;
                dst[2] = map->Colors[idx].Blue;
                if (v->channels == 4)
                    dst[3] = 255;
            }
        }
    }
out:
    dip_free(line);
    return rc;
}

/* Second pass: the blocks of the first frame composited in order, each one's disposal applied
 * before the next is drawn (the last block's disposal is not: the frame is what it shows). */
static int composite(const uint8_t *buf, size_t len, const struct gwalk *w, dip_image *img,
                     struct dip_err *err)
{
    struct dip_view v = dip_image_view(img);
    struct gin in;
    GifFileType *g = NULL;
    GifRecordType t;
    uint8_t *saved = NULL;
    int n = 0, rc = open_gif(buf, len, &in, &g, err);

    if (rc)
        return rc;
    while (n < w->nblk) {
        const struct gblock *b = &w->blk[n];
        int last = n == w->nblk - 1, x0, y0, x1, y1;
        if (DGifGetRecordType(g, &t) == GIF_ERROR) {
            rc = gif_fail(err, g->Error, &in, "a record type");
            goto out;
        }
        if (t == EXTENSION_RECORD_TYPE) {
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
            continue;
        }
        if (t != IMAGE_DESC_RECORD_TYPE) {
            rc = dip_err_set(err, DIP_ECORRUPT, "gif: no image before the trailer");
            goto out;
        }
        if (DGifGetImageDesc(g) == GIF_ERROR) {
            rc = gif_fail(err, g->Error, &in, "an image descriptor");
            goto out;
        }
        n++;
        /* The walk checked this very descriptor; a mismatch means the input changed under us. */
        if (g->Image.Left != b->x || g->Image.Top != b->y || g->Image.Width != b->w ||
            g->Image.Height != b->h) {
            rc = dip_err_set(err, DIP_EINTERNAL, "gif: image block %d changed between passes", n);
            goto out;
        }
        clip(w, b, &x0, &y0, &x1, &y1);
        if (x0 >= x1 || y0 >= y1)
            last = 1; /* nothing on screen to dispose of */
        if (!last && b->disposal == 3) {
            /* Restore previous: keep what the block covers, to put it back after. */
            saved = dip_malloc((size_t)(x1 - x0) * (size_t)(y1 - y0) * (size_t)v.channels);
            if (saved == NULL) {
                rc = dip_err_set(err, DIP_ENOMEM, "gif: out of memory");
                goto out;
            }
            copy_rect(&v, saved, x0, y0, x1, y1, 0);
        }
        rc = draw_block(g, &in, w, b, n, &v, err);
        if (rc)
            goto out;
        if (saved != NULL) {
            copy_rect(&v, saved, x0, y0, x1, y1, 1);
            dip_free(saved);
            saved = NULL;
        } else if (!last && b->disposal == 2) {
            /* Restore to background: transparent, as browsers and gdk-pixbuf show it. */
            for (int y = y0; y < y1; y++)
                memset(v.data + (size_t)y * v.stride + (size_t)x0 * (size_t)v.channels, 0,
                       (size_t)(x1 - x0) * (size_t)v.channels);
        }
    }
out:
    dip_free(saved);
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
    if (rc) {
        rc = dip_err_set(err, rc, "gif: cannot allocate a %dx%d image", w.sw, w.sh);
        goto out;
    }
    {
        struct dip_view v = dip_image_view(img);
        memset(v.data, 0, v.stride * (size_t)v.height);
    }
    rc = composite(buf, len, &w, img, err);
    if (rc == 0) {
        *out = img;
        img = NULL; /* the caller owns it now */
    }
out:
    dip_image_unref(img);
    walk_free(&w);
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
