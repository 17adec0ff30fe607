/* SPDX-License-Identifier: MIT */
/* TIFF through libtiff, entirely from memory. Before libtiff sees a byte, a bounded walker of our
 * own checks the first image directory (entry count, tag data inside the file, total metadata
 * under max_metadata_bytes, dimensions under the limits) and counts the pages. libtiff then runs
 * with per-handle error and warning handlers (warnings fail closed, nothing reaches libtiff's
 * global handlers) and a cap on any single allocation. Only the first page is decoded, to 8-bit
 * gray, gray+alpha, RGB or RGBA; the encoder writes deflate-compressed 8-bit TIFF. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <tiffio.h>

#include "core/internal.h"
#include "internal.h"

/* A first directory with more entries than this is not a real image (TIFF 6 and its common
 * extensions define a few hundred tags; real files carry 10 to 60). */
#define MAX_IFD_ENTRIES 1000
/* Samples per pixel we decode: colour plus a few extra (alpha, spot) channels. */
#define MAX_SAMPLES 8

/* ---- Bounded directory walker ---- */

struct walk {
    int big, be;    /* BigTIFF, big-endian */
    uint64_t first; /* offset of the first IFD */
    uint64_t w, h;
    unsigned bps, spp, comp, photometric, planar, sampleformat, orientation, inkset;
    uint64_t rps, tw, th;
    unsigned extras, extra0; /* ExtraSamples count and first value */
    int have_photometric, tiled, gray_palette;
    uint64_t meta; /* bytes of tag data in the first IFD */
    /* Where the strip or tile offsets and byte counts are: type, count, offset of the values. */
    unsigned off_type, bc_type;
    uint64_t off_count, bc_count, off_at, bc_at;
    int frames;    /* pages (count_pages) */
    uint64_t next; /* offset of the second IFD, 0 when none */
};

struct rd {
    const uint8_t *p;
    size_t len;
    int be;
};

static uint64_t get(const struct rd *r, uint64_t off, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++) {
        unsigned b = r->p[off + (uint64_t)(r->be ? i : n - 1 - i)];
        v = v << 8 | b;
    }
    return v;
}

static unsigned type_size(unsigned type)
{
    switch (type) {
    case 1:
    case 2:
    case 6:
    case 7:
        return 1; /* BYTE ASCII SBYTE UNDEFINED */
    case 3:
    case 8:
        return 2; /* SHORT SSHORT */
    case 4:
    case 9:
    case 11:
    case 13:
        return 4; /* LONG SLONG FLOAT IFD */
    case 5:
    case 10:
    case 12:
    case 16:
    case 17:
    case 18:
        return 8;
    default:
        return 0;
    }
}

/* Reads the count of entries at `off` and the offset of the next IFD; 0 or DIP_ECORRUPT. */
static int ifd_bounds(const struct rd *r, int big, uint64_t off, int index, uint64_t *n,
                      uint64_t *next, struct dip_err *err)
{
    uint64_t cw = big ? 8 : 2, ew = big ? 20 : 12, nw = big ? 8 : 4;

    if (off > r->len || r->len - off < cw)
        return dip_err_set(err, DIP_ECORRUPT,
                           "tiff: truncated or corrupt: image directory %d at offset %llu "
                           "lies past the end of the file (%zu bytes)",
                           index, (unsigned long long)off, r->len);
    *n = get(r, off, (int)cw);
    /* n <= 2^64 / 20 can still overflow the multiplication; bound it by the file first. */
    if (*n > r->len / ew || r->len - off - cw < *n * ew + nw)
        return dip_err_set(err, DIP_ECORRUPT,
                           "tiff: truncated or corrupt: image directory %d at offset %llu "
                           "with %llu tag entries ends past the end of the file (%zu bytes)",
                           index, (unsigned long long)off, (unsigned long long)*n, r->len);
    *next = get(r, off + cw + *n * ew, (int)nw);
    return 0;
}

static int walk_first_ifd(const struct rd *r, const struct dip_limits *lim, struct walk *wk,
                          struct dip_err *err)
{
    uint64_t n, next, cw = wk->big ? 8 : 2, ew = wk->big ? 20 : 12, inl = wk->big ? 8 : 4;
    uint64_t cmap_off = 0, cmap_count = 0;
    int rc = ifd_bounds(r, wk->big, wk->first, 0, &n, &next, err);

    if (rc)
        return rc;
    wk->next = next;
    if (n > MAX_IFD_ENTRIES)
        return dip_err_set(err, DIP_ECORRUPT,
                           "tiff: the first image directory has %llu tag entries, more than "
                           "the %d any real image needs",
                           (unsigned long long)n, MAX_IFD_ENTRIES);
    if (n == 0)
        return dip_err_set(err, DIP_ECORRUPT, "tiff: the first image directory has no tag entries");
    for (uint64_t i = 0; i < n; i++) {
        uint64_t e = wk->first + cw + i * ew;
        unsigned tag = (unsigned)get(r, e, 2), type = (unsigned)get(r, e + 2, 2);
        uint64_t count = get(r, e + 4, wk->big ? 8 : 4), voff = e + (wk->big ? 12 : 8);
        unsigned ts = type_size(type);
        uint64_t bytes, v = 0;

        if (ts == 0) /* libtiff ignores unknown types; they carry no data we read */
            continue;
        if (count > (uint64_t)r->len / ts)
            return dip_err_set(err, DIP_ECORRUPT,
                               "tiff: truncated or corrupt: tag %u claims %llu values, more "
                               "than the file holds",
                               tag, (unsigned long long)count);
        bytes = count * ts;
        if (bytes > inl) {
            voff = get(r, voff, (int)inl);
            if (voff > r->len || r->len - voff < bytes)
                return dip_err_set(err, DIP_ECORRUPT,
                                   "tiff: truncated or corrupt: tag %u data (%llu bytes at "
                                   "offset %llu) ends past the end of the file (%zu bytes)",
                                   tag, (unsigned long long)bytes, (unsigned long long)voff,
                                   r->len);
        }
        wk->meta += bytes;
        if (wk->meta > lim->max_metadata_bytes)
            return dip_err_set(err, DIP_ELIMIT,
                               "tiff: tag data of the first IFD (%llu bytes so "
                               "far, at tag %u) exceeds the limit max_metadata_bytes=%zu",
                               (unsigned long long)wk->meta, tag, lim->max_metadata_bytes);
        if (count == 0)
            continue;
        if (ts <= 8 && (type == 1 || type == 3 || type == 4 || type == 16))
            v = get(r, voff, (int)ts); /* the first value of an unsigned integer tag */
        switch (tag) {
        case 256:
            wk->w = v;
            break;
        case 257:
            wk->h = v;
            break;
        case 258:
            wk->bps = (unsigned)DIP_MIN(v, 65535);
            break;
        case 259:
            wk->comp = (unsigned)DIP_MIN(v, 65535);
            break;
        case 262:
            wk->photometric = (unsigned)DIP_MIN(v, 65535);
            wk->have_photometric = 1;
            break;
        case 274:
            wk->orientation = (unsigned)DIP_MIN(v, 65535);
            break;
        case 277:
            wk->spp = (unsigned)DIP_MIN(v, 65535);
            break;
        case 278:
            wk->rps = v;
            break;
        case 284:
            wk->planar = (unsigned)DIP_MIN(v, 65535);
            break;
        case 273:
        case 324:
            wk->off_type = type;
            wk->off_count = count;
            wk->off_at = voff;
            break;
        case 279:
        case 325:
            wk->bc_type = type;
            wk->bc_count = count;
            wk->bc_at = voff;
            break;
        case 320:
            if (type == 3) {
                cmap_off = voff;
                cmap_count = count;
            }
            break;
        case 322:
            wk->tw = v;
            wk->tiled = 1;
            break;
        case 323:
            wk->th = v;
            wk->tiled = 1;
            break;
        case 332:
            wk->inkset = (unsigned)DIP_MIN(v, 65535);
            break;
        case 338:
            wk->extras = (unsigned)DIP_MIN(count, 65535);
            wk->extra0 = (unsigned)v;
            break;
        case 339:
            wk->sampleformat = (unsigned)DIP_MIN(v, 65535);
            break;
        default:
            break;
        }
    }
    /* A palette whose three curves are equal is a gray ramp: decode it to one channel. */
    if (cmap_count >= 3 && cmap_count % 3 == 0) {
        uint64_t k = cmap_count / 3;
        wk->gray_palette = 1;
        for (uint64_t i = 0; i < k && wk->gray_palette; i++) {
            uint64_t rv = get(r, cmap_off + 2 * i, 2), gv = get(r, cmap_off + 2 * (k + i), 2);
            uint64_t bv = get(r, cmap_off + 2 * (2 * k + i), 2);
            wk->gray_palette = rv == gv && gv == bv;
        }
    }
    return 0;
}

/* Counts the pages without decoding them; more than max_frames is refused. The chain may loop:
 * Brent's cycle finder catches that in time linear in the chain and constant memory. */
static int count_pages(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                       struct walk *wk, struct dip_err *err)
{
    struct rd r = {buf, len, wk->be};
    uint64_t tort = wk->first, hare = wk->next, power = 1, lam = 1, dummy, next;
    int max = DIP_MAX(lim->max_frames, 1), rc;

    wk->frames = 1;
    while (hare != 0) {
        if (hare == tort)
            return dip_err_set(err, DIP_ECORRUPT,
                               "tiff: the chain of image directories loops back to offset %llu",
                               (unsigned long long)hare);
        if (wk->frames >= max)
            return dip_err_set(err, DIP_ELIMIT,
                               "tiff: more than %d pages exceeds the limit max_frames=%d", max,
                               lim->max_frames);
        if ((rc = ifd_bounds(&r, wk->big, hare, wk->frames, &dummy, &next, err)) != 0)
            return rc;
        wk->frames++;
        if (power == lam) {
            tort = hare;
            power *= 2;
            lam = 0;
        }
        hare = next;
        lam++;
    }
    return 0;
}

/* Every strip or tile must lie inside the file, whatever else the header says, so that libtiff
 * never reads or allocates for data that is not there. */
static int check_strile_bounds(const uint8_t *buf, size_t len, const struct walk *wk,
                               struct dip_err *err)
{
    const struct rd rr = {buf, len, wk->be}, *r = &rr;

    if (wk->off_count && wk->bc_count) {
        unsigned os = type_size(wk->off_type), bs = type_size(wk->bc_type);
        if (wk->off_count != wk->bc_count)
            return dip_err_set(err, DIP_ECORRUPT,
                               "tiff: %llu strip/tile offsets but %llu byte counts",
                               (unsigned long long)wk->off_count, (unsigned long long)wk->bc_count);
        if ((os != 2 && os != 4 && os != 8) || (bs != 2 && bs != 4 && bs != 8))
            return dip_err_set(err, DIP_ECORRUPT,
                               "tiff: strip/tile offsets or byte counts of TIFF type %u/%u",
                               wk->off_type, wk->bc_type);
        for (uint64_t i = 0; i < wk->off_count; i++) {
            uint64_t o = get(r, wk->off_at + i * os, (int)os);
            uint64_t bc = get(r, wk->bc_at + i * bs, (int)bs);
            if (o > r->len || bc > r->len - o)
                return dip_err_set(err, DIP_ECORRUPT,
                                   "tiff: truncated or corrupt: %s %llu (%llu bytes at offset "
                                   "%llu) ends past the end of the file (%zu bytes)",
                                   wk->tiled ? "tile" : "strip", (unsigned long long)i,
                                   (unsigned long long)bc, (unsigned long long)o, r->len);
        }
    } else {
        return dip_err_set(err, DIP_ECORRUPT, "tiff: %s missing",
                           wk->off_count ? "StripByteCounts/TileByteCounts"
                                         : "StripOffsets/TileOffsets");
    }
    return 0;
}

/* Header and first IFD. Fills wk with libtiff's defaults for absent tags. */
static int walk(const uint8_t *buf, size_t len, const struct dip_limits *lim, struct walk *wk,
                struct dip_err *err)
{
    struct rd r = {buf, len, 0};

    memset(wk, 0, sizeof(*wk));
    wk->bps = 1;
    wk->spp = 1;
    wk->comp = COMPRESSION_NONE;
    wk->planar = PLANARCONFIG_CONTIG;
    wk->sampleformat = SAMPLEFORMAT_UINT;
    wk->orientation = ORIENTATION_TOPLEFT;
    wk->inkset = INKSET_CMYK;
    wk->rps = UINT32_MAX;
    if (len < 8)
        return dip_err_set(err, DIP_ECORRUPT, "tiff: truncated header (%zu bytes)", len);
    if (buf[0] == 'M' && buf[1] == 'M')
        wk->be = 1;
    else if (buf[0] != 'I' || buf[1] != 'I')
        return dip_err_set(err, DIP_EFORMAT, "tiff: bad byte-order mark");
    r.be = wk->be;
    switch (get(&r, 2, 2)) {
    case 42:
        wk->first = get(&r, 4, 4);
        break;
    case 43:
        wk->big = 1;
        if (len < 16)
            return dip_err_set(err, DIP_ECORRUPT, "tiff: truncated BigTIFF header (%zu bytes)",
                               len);
        if (get(&r, 4, 2) != 8 || get(&r, 6, 2) != 0)
            return dip_err_set(err, DIP_ECORRUPT, "tiff: bad BigTIFF offset size");
        wk->first = get(&r, 8, 8);
        break;
    default:
        return dip_err_set(err, DIP_EFORMAT, "tiff: bad magic number");
    }
    if (wk->first == 0)
        return dip_err_set(err, DIP_ECORRUPT, "tiff: no image directory (first IFD offset 0)");
    return walk_first_ifd(&r, lim, wk, err);
}

/* Output channels and colour name for a photometric interpretation, or 0 when we cannot say
 * from the header alone. `alpha` is set when the first extra sample is alpha. */
static int walk_channels(const struct walk *wk, const char **color)
{
    int alpha = wk->extras > 0 &&
                (wk->extra0 == EXTRASAMPLE_ASSOCALPHA || wk->extra0 == EXTRASAMPLE_UNASSALPHA);
    int base;

    switch (wk->photometric) {
    case PHOTOMETRIC_MINISWHITE:
    case PHOTOMETRIC_MINISBLACK:
        *color = "gray";
        base = 1;
        break;
    case PHOTOMETRIC_RGB:
        *color = "rgb";
        base = 3;
        break;
    case PHOTOMETRIC_PALETTE:
        *color = "palette";
        base = wk->gray_palette ? 1 : 3;
        break;
    case PHOTOMETRIC_SEPARATED:
        *color = "cmyk";
        base = 3;
        break;
    case PHOTOMETRIC_YCBCR:
        *color = "ycbcr";
        base = 3;
        break;
    case PHOTOMETRIC_CIELAB:
        *color = "lab";
        base = 3;
        break;
    default:
        *color = "other";
        base = 3;
        break;
    }
    return base + alpha;
}

static int check_walk(const struct walk *wk, const struct dip_limits *lim, struct dip_err *err)
{
    int rc = dip_limits_check_dims(lim, "tiff", (long long)DIP_MIN(wk->w, (uint64_t)INT64_MAX),
                                   (long long)DIP_MIN(wk->h, (uint64_t)INT64_MAX), err);

    if (rc)
        return rc;
    if (wk->bps != 1 && wk->bps != 2 && wk->bps != 4 && wk->bps != 8 && wk->bps != 16)
        return dip_err_set(err, DIP_EFORMAT,
                           "tiff: BitsPerSample %u not supported (1, 2, 4, 8 "
                           "or 16)",
                           wk->bps);
    if (wk->sampleformat != SAMPLEFORMAT_UINT && wk->sampleformat != SAMPLEFORMAT_VOID)
        return dip_err_set(err, DIP_EFORMAT,
                           "tiff: SampleFormat %u not supported (unsigned "
                           "integers only)",
                           wk->sampleformat);
    if (wk->spp == 0 || wk->spp > MAX_SAMPLES)
        return dip_err_set(err, DIP_EFORMAT, "tiff: SamplesPerPixel %u not supported (1..%d)",
                           wk->spp, MAX_SAMPLES);
    if (wk->tiled) {
        /* Tiles a little larger than the image are normal (256x256 on a 100x100 image); tiles
         * far larger only make libtiff allocate. */
        uint64_t maxw = DIP_MAX((wk->w + 15) & ~(uint64_t)15, 1024);
        uint64_t maxh = DIP_MAX((wk->h + 15) & ~(uint64_t)15, 1024);
        if (wk->tw == 0 || wk->th == 0 || wk->tw % 16 || wk->th % 16 || wk->tw > maxw ||
            wk->th > maxh)
            return dip_err_set(err, DIP_ECORRUPT,
                               "tiff: implausible tile size %llux%llu for a "
                               "%llux%llu image",
                               (unsigned long long)wk->tw, (unsigned long long)wk->th,
                               (unsigned long long)wk->w, (unsigned long long)wk->h);
    }
    return 0;
}

static void walk_info(const struct walk *wk, struct dip_image_info *info)
{
    const char *color = "other";

    info->width = (int)wk->w;
    info->height = (int)wk->h;
    info->channels = walk_channels(wk, &color);
    info->bit_depth = (int)wk->bps;
    info->frames = wk->frames;
    info->orientation = wk->orientation >= 1 && wk->orientation <= 8 ? (int)wk->orientation : 1;
    snprintf(info->color, sizeof(info->color), "%s", color);
}

static int tiff_probe(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                      struct dip_image_info *info, struct dip_err *err)
{
    struct walk wk;
    int rc = walk(buf, len, lim, &wk, err);

    if (rc == 0)
        rc = check_walk(&wk, lim, err);
    if (rc == 0)
        rc = count_pages(buf, len, lim, &wk, err);
    if (rc == 0)
        walk_info(&wk, info);
    return rc;
}

/* ---- libtiff glue: memory I/O and handlers ---- */

struct mem {
    const uint8_t *rd; /* reading: the input */
    uint8_t *wr;       /* writing: the output, grown on demand */
    size_t len, alloc, pos, cap;
    int oom;
};

struct report {
    int failed;    /* an error was reported */
    int warned;    /* a warning was reported (fails closed too) */
    char msg[256]; /* the first one */
};

static tmsize_t mem_read(thandle_t h, void *buf, tmsize_t size)
{
    struct mem *m = h;
    const uint8_t *src = m->rd ? m->rd : m->wr;
    size_t n;

    if (size <= 0 || m->pos >= m->len)
        return 0;
    n = DIP_MIN((size_t)size, m->len - m->pos);
    memcpy(buf, src + m->pos, n);
    m->pos += n;
    return (tmsize_t)n;
}

static tmsize_t mem_write(thandle_t h, void *buf, tmsize_t size)
{
    struct mem *m = h;
    size_t n = (size_t)size, end;

    if (m->rd != NULL || size < 0 || dip_size_add(m->pos, n, &end) || end > m->cap)
        return -1;
    if (end > m->alloc) {
        size_t na = m->alloc ? m->alloc : 65536;
        uint8_t *nd;
        while (na < end)
            na = na > m->cap / 2 ? m->cap : na * 2;
        nd = dip_realloc(m->wr, na);
        if (nd == NULL) {
            m->oom = 1;
            return -1;
        }
        m->wr = nd;
        m->alloc = na;
    }
    if (m->pos > m->len) /* a seek past the end leaves a hole: zero it */
        memset(m->wr + m->len, 0, m->pos - m->len);
    memcpy(m->wr + m->pos, buf, n);
    m->pos = end;
    m->len = DIP_MAX(m->len, end);
    return size;
}

static toff_t mem_seek(thandle_t h, toff_t off, int whence)
{
    struct mem *m = h;
    uint64_t base = whence == SEEK_CUR ? m->pos : whence == SEEK_END ? m->len : 0;

    /* libtiff passes negative SEEK_CUR/SEEK_END offsets as huge unsigned values. */
    base += off;
    if (base > (uint64_t)SIZE_MAX / 2)
        return (toff_t)-1;
    m->pos = (size_t)base;
    return base;
}

static int mem_close(thandle_t h)
{
    (void)h;
    return 0;
}

static toff_t mem_size(thandle_t h)
{
    return ((struct mem *)h)->len;
}

static int mem_map(thandle_t h, void **base, toff_t *size)
{
    (void)h;
    (void)base;
    (void)size;
    return 0;
}

static void mem_unmap(thandle_t h, void *base, toff_t size)
{
    (void)h;
    (void)base;
    (void)size;
}

__attribute__((format(printf, 4, 0))) static int on_error(TIFF *tif, void *user, const char *module,
                                                          const char *fmt, va_list ap)
{
    struct report *r = user;

    (void)tif;
    if (!r->failed && !r->warned) {
        int n = snprintf(r->msg, sizeof(r->msg), "%s: ", module ? module : "libtiff");
        if (n > 0 && (size_t)n < sizeof(r->msg))
            vsnprintf(r->msg + n, sizeof(r->msg) - (size_t)n, fmt, ap);
    }
    r->failed = 1;
    return 1; /* handled: keep it from libtiff's global handlers */
}

__attribute__((format(printf, 4, 0))) static int
on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    struct report *r = user;
    char msg[256];

    (void)tif;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* Private tags (cameras, GIS, scanners) are common and harmless: libtiff keeps them as
     * anonymous fields. Every other warning fails closed. */
    if (strstr(msg, "Unknown field with tag") != NULL)
        return 1;
    if (!r->failed && !r->warned)
        snprintf(r->msg, sizeof(r->msg), "%.40s: %.200s", module ? module : "libtiff", msg);
    r->warned = 1;
    return 1;
}

static TIFF *open_mem(struct mem *m, const char *mode, tmsize_t max_alloc, struct report *rep)
{
    TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
    TIFF *tif;

    if (o == NULL)
        return NULL;
    if (max_alloc > 0)
        TIFFOpenOptionsSetMaxSingleMemAlloc(o, max_alloc);
    TIFFOpenOptionsSetErrorHandlerExtR(o, on_error, rep);
    TIFFOpenOptionsSetWarningHandlerExtR(o, on_warning, rep);
    tif = TIFFClientOpenExt("dip", mode, (thandle_t)m, mem_read, mem_write, mem_seek, mem_close,
                            mem_size, mem_map, mem_unmap, o);
    TIFFOpenOptionsFree(o);
    return tif;
}

static int libtiff_failed(const struct report *rep, struct dip_err *err, const char *what)
{
    return dip_err_set(err, DIP_ECORRUPT, "tiff: %s: %s", what,
                       rep->msg[0] ? rep->msg : "libtiff failed without a message");
}

/* ---- Decoding ---- */

struct conv {
    unsigned photometric, bps, spp;
    int base;         /* colour samples per pixel: 1 gray/palette, 3 RGB, 4 CMYK */
    int alpha;        /* 0 none, 1 unassociated, 2 associated (premultiplied) */
    int och;          /* output channels */
    uint8_t lut[256]; /* bps <= 8: sample to 8 bits */
    uint8_t *pal;     /* palette: 3 bytes per entry, 8-bit */
    size_t pal_n;
};

static uint8_t scale16(unsigned v)
{
    return (uint8_t)((v * 255u + 32767u) / 65535u);
}

/* Unpacks n samples of bps bits (MSB first, as libtiff hands them over) to 16-bit values. */
static void unpack(const uint8_t *src, unsigned bps, size_t n, uint16_t *vals)
{
    if (bps == 8) {
        for (size_t i = 0; i < n; i++)
            vals[i] = src[i];
    } else if (bps == 16) {
        memcpy(vals, src, n * 2); /* libtiff has swapped to host order */
    } else {
        unsigned mask = (1u << bps) - 1;
        for (size_t i = 0; i < n; i++) {
            size_t bit = i * bps;
            vals[i] =
                (uint16_t)(((unsigned)src[bit >> 3] >> (8u - bps - (unsigned)(bit & 7))) & mask);
        }
    }
}

static uint8_t conv_sample(const struct conv *c, unsigned v)
{
    return c->bps == 16 ? scale16(v) : c->lut[v & 255];
}

/* One row of nx pixels, samples interleaved, to output pixels. */
static void convert_row(const struct conv *c, const uint16_t *vals, size_t nx, uint8_t *dst)
{
    for (size_t x = 0; x < nx; x++, vals += c->spp, dst += c->och) {
        uint8_t a = 255;
        if (c->alpha)
            a = conv_sample(c, vals[c->base]);
        switch (c->photometric) {
        case PHOTOMETRIC_MINISBLACK:
            dst[0] = conv_sample(c, vals[0]);
            break;
        case PHOTOMETRIC_MINISWHITE:
            dst[0] = (uint8_t)(255 - conv_sample(c, vals[0]));
            break;
        case PHOTOMETRIC_PALETTE: {
            size_t i = vals[0] < c->pal_n ? vals[0] : 0;
            memcpy(dst, c->pal + 3 * i, c->och >= 3 ? 3 : 1);
            break;
        }
        case PHOTOMETRIC_SEPARATED: {
            unsigned k = 255u - conv_sample(c, vals[3]);
            for (int j = 0; j < 3; j++)
                dst[j] = (uint8_t)(((255u - conv_sample(c, vals[j])) * k + 127) / 255);
            break;
        }
        default: /* RGB, or YCbCr that libjpeg converted to RGB */
            for (int j = 0; j < 3; j++)
                dst[j] = conv_sample(c, vals[j]);
            break;
        }
        if (c->alpha) {
            int nc = c->och - 1;
            dst[nc] = a;
            /* Associated alpha: colour was stored multiplied by alpha; divide it out (at 8
             * bits, so very transparent pixels keep little colour precision). */
            for (int j = 0; c->alpha == 2 && j < nc; j++)
                dst[j] = (uint8_t)(a ? DIP_MIN(255u, (dst[j] * 255u + a / 2u) / a) : 0u);
        }
    }
}

static int setup_conv(TIFF *tif, const struct walk *wk, struct conv *c, struct dip_err *err)
{
    uint16_t nextra = 0, *extra = NULL, inkset = INKSET_CMYK;
    unsigned maxv = (1u << c->bps) - 1;

    if (c->bps <= 8)
        for (unsigned v = 0; v < 256; v++)
            c->lut[v] = (uint8_t)(v <= maxv ? (v * 255u + maxv / 2) / maxv : 255);
    switch (c->photometric) {
    case PHOTOMETRIC_MINISBLACK:
    case PHOTOMETRIC_MINISWHITE:
    case PHOTOMETRIC_PALETTE:
        c->base = 1;
        break;
    case PHOTOMETRIC_RGB:
        c->base = 3;
        break;
    case PHOTOMETRIC_SEPARATED:
        TIFFGetFieldDefaulted(tif, TIFFTAG_INKSET, &inkset);
        if (inkset != INKSET_CMYK || c->bps < 8)
            return dip_err_set(err, DIP_EFORMAT,
                               "tiff: separated image with InkSet %u and %u "
                               "bits not supported (CMYK with 8 or 16 bits only)",
                               inkset, c->bps);
        c->base = 4;
        break;
    default:
        return dip_err_set(err, DIP_EINTERNAL, "tiff: photometric %u", c->photometric);
    }
    if ((int)c->spp < c->base)
        return dip_err_set(err, DIP_ECORRUPT,
                           "tiff: SamplesPerPixel %u too few for "
                           "photometric %u",
                           c->spp, c->photometric);
    TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, &nextra, &extra);
    if (nextra > 0 && extra != NULL && (int)c->spp - nextra == c->base) {
        if (extra[0] == EXTRASAMPLE_UNASSALPHA)
            c->alpha = 1;
        else if (extra[0] == EXTRASAMPLE_ASSOCALPHA)
            c->alpha = 2;
    }
    c->och =
        (c->base == 1 && !(c->photometric == PHOTOMETRIC_PALETTE && !wk->gray_palette)) ? 1 : 3;
    c->och += c->alpha ? 1 : 0;
    if (c->photometric == PHOTOMETRIC_PALETTE) {
        uint16_t *r = NULL, *g = NULL, *b = NULL;
        int eight = 1;
        if (!TIFFGetField(tif, TIFFTAG_COLORMAP, &r, &g, &b) || r == NULL || g == NULL || b == NULL)
            return dip_err_set(err, DIP_ECORRUPT, "tiff: palette image without a ColorMap");
        c->pal_n = (size_t)1 << c->bps;
        c->pal = dip_malloc(3 * c->pal_n);
        if (c->pal == NULL)
            return dip_err_set(err, DIP_ENOMEM, "tiff: out of memory for the palette");
        /* Some old writers store 8-bit colour maps; libtiff's own RGBA reader makes the same
         * guess: if no entry exceeds 255, the map is 8-bit. */
        for (size_t i = 0; i < c->pal_n; i++)
            if (r[i] > 255 || g[i] > 255 || b[i] > 255)
                eight = 0;
        for (size_t i = 0; i < c->pal_n; i++) {
            c->pal[3 * i] = eight ? (uint8_t)r[i] : scale16(r[i]);
            c->pal[3 * i + 1] = eight ? (uint8_t)g[i] : scale16(g[i]);
            c->pal[3 * i + 2] = eight ? (uint8_t)b[i] : scale16(b[i]);
        }
    }
    return 0;
}

/* Checks every strip or tile lies inside the file, and that uncompressed ones hold all their
 * bytes, so a lying header is refused before libtiff reads or allocates for it. */
static int check_striles(TIFF *tif, size_t len, uint16_t comp, struct dip_err *err)
{
    int tiled = TIFFIsTiled(tif);
    uint32_t n = tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
    const char *what = tiled ? "tile" : "strip";
    uint32_t h = 0, rps = 0, per_plane;

    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
    TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
    if (rps == 0 || rps > h)
        rps = h;
    per_plane = rps ? (h + rps - 1) / rps : 1;
    if (n == 0 || per_plane == 0)
        return dip_err_set(err, DIP_ECORRUPT, "tiff: no %ss", what);
    for (uint32_t s = 0; s < n; s++) {
        uint64_t off = TIFFGetStrileOffset(tif, s), bc = TIFFGetStrileByteCount(tif, s), want;
        if (bc == 0 || off > len || bc > len - off)
            return dip_err_set(err, DIP_ECORRUPT,
                               "tiff: truncated or corrupt: %s %u (%llu bytes at offset %llu) "
                               "is empty or ends past the end of the file (%zu bytes)",
                               what, s, (unsigned long long)bc, (unsigned long long)off, len);
        if (comp != COMPRESSION_NONE)
            continue;
        if (tiled) {
            want = TIFFTileSize64(tif); /* edge tiles are stored whole */
        } else {
            uint32_t row0 = (s % per_plane) * rps;
            want = TIFFVStripSize64(tif, DIP_MIN(rps, h - row0));
        }
        if (bc < want)
            return dip_err_set(err, DIP_ECORRUPT,
                               "tiff: truncated pixel data: uncompressed %s %u "
                               "has %llu bytes, needs %llu",
                               what, s, (unsigned long long)bc, (unsigned long long)want);
    }
    return 0;
}

/* ---- Strips inflated in parallel ---- */

struct pstrips {
    TIFF *tif;
    const uint8_t *buf;
    size_t len, rowbytes;
    struct dip_view *v;
    uint32_t rps;
    int ch, predictor;
};

/* Strip s (ny rows) inflated into dst: 0, 1 when anything is unusual (libtiff decides), or
 * DIP_ENOMEM. */
static int pstrip_into(const struct pstrips *p, uint32_t s, uint32_t ny, uint8_t *dst,
                       size_t stride)
{
    uint64_t off = TIFFGetStrileOffset(p->tif, s);
    uint64_t bc = TIFFGetStrileByteCount(p->tif, s);
    size_t n = p->rowbytes * ny, used = 0, got = 0;
    int r;

    if (off > p->len || bc > p->len - off || stride != p->rowbytes)
        return 1;
    r = dip__inflate(p->buf + off, (size_t)bc, 1, dst, n, &used, &got);
    if (r == DIP__INFLATE_NOMEM)
        return DIP_ENOMEM;
    if (r != DIP__INFLATE_OK || got != n)
        return 1; /* anything unusual: libtiff decides, serially */
    if (p->predictor == PREDICTOR_HORIZONTAL)
        for (uint32_t y = 0; y < ny; y++) {
            uint8_t *row = dst + (size_t)y * stride;
            for (size_t i = (size_t)p->ch; i < p->rowbytes; i++)
                row[i] = (uint8_t)(row[i] + row[i - (size_t)p->ch]);
        }
    return 0;
}

static int pstrip_task(void *ud, size_t s, int thread)
{
    struct pstrips *p = ud;
    uint32_t y0 = (uint32_t)s * p->rps, ny = DIP_MIN(p->rps, (uint32_t)p->v->height - y0);

    (void)thread;
    return pstrip_into(p, (uint32_t)s, ny, p->v->data + (size_t)y0 * p->v->stride, p->v->stride);
}

/* 8-bit gray, gray+alpha, RGB or RGBA in deflate strips (as dip writes them), h rows of w pixels
 * with ch channels: 0 with *p set up (p->v left to the caller), 1 when the file is not of that
 * kind. */
static int pstrips_setup(TIFF *tif, const uint8_t *buf, size_t len, const struct conv *c, int w,
                         int h32, int ch, struct pstrips *p)
{
    uint16_t planar = PLANARCONFIG_CONTIG, pred = PREDICTOR_NONE, comp = COMPRESSION_NONE;
    uint16_t fill = FILLORDER_MSB2LSB;
    uint32_t rps = 0, h = (uint32_t)h32;

    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &comp);
    if (comp != COMPRESSION_ADOBE_DEFLATE && comp != COMPRESSION_DEFLATE)
        return 1; /* and Predictor exists only for codecs that have it */
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PREDICTOR, &pred);
    TIFFGetFieldDefaulted(tif, TIFFTAG_FILLORDER, &fill);
    TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
    if (TIFFIsTiled(tif) || planar != PLANARCONFIG_CONTIG || c->bps != 8 || c->alpha == 2 ||
        (int)c->spp != c->och || ch != c->och || fill != FILLORDER_MSB2LSB ||
        (comp != COMPRESSION_ADOBE_DEFLATE && comp != COMPRESSION_DEFLATE) ||
        (pred != PREDICTOR_NONE && pred != PREDICTOR_HORIZONTAL) ||
        (c->photometric != PHOTOMETRIC_MINISBLACK && c->photometric != PHOTOMETRIC_RGB))
        return 1;
    if (rps == 0 || rps > h)
        rps = h;
    if (TIFFNumberOfStrips(tif) != (h + rps - 1) / rps)
        return 1;
    memset(p, 0, sizeof(*p));
    p->tif = tif;
    p->buf = buf;
    p->len = len;
    p->rps = rps;
    p->ch = ch;
    p->rowbytes = (size_t)w * (size_t)ch;
    p->predictor = pred;
    return 0;
}

/* Such a file's strips inflated by libdeflate straight into their rows and un-predicted, in
 * parallel on the caller's pool. Returns 0 when done, 1 when the file is not of that kind or a
 * strip is not exactly its rows (nothing reported: the caller reads it with libtiff), or
 * DIP_ENOMEM. */
static int read_strips_parallel(TIFF *tif, const uint8_t *buf, size_t len, const struct conv *c,
                                struct dip_view *v, dip_pool *pool)
{
    struct pstrips p;

    if (pstrips_setup(tif, buf, len, c, v->width, v->height, v->channels, &p) != 0)
        return 1;
    p.v = v;
    return dip_pool_for(pool, ((uint32_t)v->height + p.rps - 1) / p.rps, pstrip_task, &p);
}

/* Strips or rows of tiles (all planes for separate planar data), read one band of rh rows at a
 * time, each row unpacked to interleaved samples and converted. */
struct bands {
    TIFF *tif;
    const struct conv *c;
    const struct report *rep;
    int tiled, direct;
    uint32_t rw, rh, w, h, per_plane;
    unsigned nplanes;
    tmsize_t region, rowbytes;
    uint8_t *bufs;
    uint16_t *vals, *tmp;
};

static void bands_cleanup(struct bands *b)
{
    dip_free(b->tmp);
    dip_free(b->vals);
    dip_free(b->bufs);
    b->tmp = b->vals = NULL;
    b->bufs = NULL;
}

static int bands_init(struct bands *b, TIFF *tif, const struct conv *c, const struct report *rep,
                      uint32_t w, uint32_t h, struct dip_err *err)
{
    uint16_t planar = PLANARCONFIG_CONTIG;

    memset(b, 0, sizeof(*b));
    b->tif = tif;
    b->c = c;
    b->rep = rep;
    b->w = w;
    b->h = h;
    b->tiled = TIFFIsTiled(tif);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    b->nplanes = planar == PLANARCONFIG_SEPARATE ? c->spp : 1;
    /* 8-bit gray, gray+alpha, RGB or RGBA, interleaved, alpha not premultiplied: the decoded
     * rows already are the output rows. */
    b->direct = b->nplanes == 1 && c->bps == 8 && c->alpha != 2 && (int)c->spp == c->och &&
                (c->photometric == PHOTOMETRIC_MINISBLACK || c->photometric == PHOTOMETRIC_RGB);
    if (b->tiled) {
        TIFFGetField(tif, TIFFTAG_TILEWIDTH, &b->rw);
        TIFFGetField(tif, TIFFTAG_TILELENGTH, &b->rh);
        b->region = TIFFTileSize(tif);
        b->rowbytes = TIFFTileRowSize(tif);
        b->per_plane = ((w + b->rw - 1) / b->rw) * ((h + b->rh - 1) / b->rh);
    } else {
        b->rw = w;
        TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &b->rh);
        if (b->rh == 0 || b->rh > h)
            b->rh = h;
        b->region = TIFFStripSize(tif);
        b->rowbytes = TIFFScanlineSize(tif);
        b->per_plane = (h + b->rh - 1) / b->rh;
    }
    if (b->region <= 0 || b->rowbytes <= 0 || rep->failed)
        return libtiff_failed(rep, err, "bad strip or tile layout");
    if ((uint64_t)b->rowbytes * b->rh > (uint64_t)b->region)
        return dip_err_set(err, DIP_ECORRUPT, "tiff: inconsistent strip or tile size");
    b->bufs = dip_malloc((size_t)b->region * b->nplanes);
    b->vals = dip_malloc((size_t)b->rw * c->spp * sizeof(*b->vals));
    b->tmp = dip_malloc((size_t)b->rw * sizeof(*b->tmp));
    if (b->bufs == NULL || b->vals == NULL || b->tmp == NULL) {
        bands_cleanup(b);
        return dip_err_set(err, DIP_ENOMEM, "tiff: out of memory for a %lld-byte %s buffer",
                           (long long)b->region * b->nplanes, b->tiled ? "tile" : "strip");
    }
    return 0;
}

/* Rows y0 .. y0 + min(rh, h - y0) - 1 into dst (row y0 at dst). */
static int bands_read(struct bands *b, uint32_t y0, uint8_t *dst0, size_t stride,
                      struct dip_err *err)
{
    const struct conv *c = b->c;
    uint32_t ny = DIP_MIN(b->rh, b->h - y0);

    for (uint32_t x0 = 0; x0 < b->w; x0 += b->rw) {
        uint32_t idx = b->tiled ? TIFFComputeTile(b->tif, x0, y0, 0, 0) : y0 / b->rh;
        uint32_t nx = DIP_MIN(b->rw, b->w - x0);
        for (unsigned p = 0; p < b->nplanes; p++) {
            uint8_t *buf = b->bufs + (size_t)b->region * p;
            tmsize_t got =
                b->tiled ? TIFFReadEncodedTile(b->tif, idx + p * b->per_plane, buf, b->region)
                         : TIFFReadEncodedStrip(b->tif, idx + p * b->per_plane, buf, b->region);
            if (got < 0 || b->rep->failed || b->rep->warned)
                return libtiff_failed(b->rep, err, b->tiled ? "reading a tile" : "reading a strip");
            if ((uint64_t)got < (uint64_t)b->rowbytes * ny)
                return dip_err_set(err, DIP_ECORRUPT,
                                   "tiff: truncated pixel data: %s %u "
                                   "decoded to %lld bytes, need %lld",
                                   b->tiled ? "tile" : "strip", idx + p * b->per_plane,
                                   (long long)got, (long long)b->rowbytes * ny);
        }
        for (uint32_t r = 0; r < ny; r++) {
            uint8_t *dst = dst0 + (size_t)r * stride + (size_t)x0 * (size_t)c->och;
            if (b->direct) {
                memcpy(dst, b->bufs + (size_t)r * (size_t)b->rowbytes, (size_t)nx * c->spp);
                continue;
            }
            if (b->nplanes == 1) {
                unpack(b->bufs + (size_t)r * (size_t)b->rowbytes, c->bps, (size_t)nx * c->spp,
                       b->vals);
            } else {
                for (unsigned p = 0; p < b->nplanes; p++) {
                    unpack(b->bufs + (size_t)b->region * p + (size_t)r * (size_t)b->rowbytes,
                           c->bps, nx, b->tmp);
                    for (uint32_t x = 0; x < nx; x++)
                        b->vals[(size_t)x * c->spp + p] = b->tmp[x];
                }
            }
            convert_row(c, b->vals, nx, dst);
        }
    }
    return 0;
}

/* Reads every band into the image. */
static int read_own(TIFF *tif, const struct conv *c, const struct report *rep, struct dip_view *v,
                    struct dip_err *err)
{
    struct bands b;
    int rc = bands_init(&b, tif, c, rep, (uint32_t)v->width, (uint32_t)v->height, err);

    for (uint32_t y0 = 0; rc == 0 && y0 < b.h; y0 += b.rh)
        rc = bands_read(&b, y0, v->data + (size_t)y0 * v->stride, v->stride, err);
    bands_cleanup(&b);
    return rc;
}

/* Everything else libtiff can render (YCbCr without JPEG, CIE L*a*b*, old-style JPEG, ...) goes
 * through its RGBA reader, which premultiplies alpha; we divide it back out. */
static int read_rgba(TIFF *tif, const struct report *rep, int alpha, struct dip_view *v,
                     struct dip_err *err)
{
    TIFFRGBAImage img;
    char emsg[1024] = "";
    uint32_t *raster = NULL;
    size_t npx = (size_t)v->width * (size_t)v->height;
    int rc = 0, begun = 0;

    if (!TIFFRGBAImageOK(tif, emsg)) {
        rc = dip_err_set(err, DIP_EFORMAT, "tiff: cannot decode this kind of image: %s", emsg);
        goto out;
    }
    if (!TIFFRGBAImageBegin(&img, tif, 0, emsg) || rep->failed || rep->warned) {
        rc = rep->failed || rep->warned ? libtiff_failed(rep, err, "RGBA setup")
                                        : dip_err_set(err, DIP_EFORMAT, "tiff: %s", emsg);
        goto out;
    }
    begun = 1;
    img.req_orientation = img.orientation; /* rows as stored: codec.c applies Orientation */
    raster = dip_malloc(npx * sizeof(*raster));
    if (raster == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "tiff: out of memory for a %zu-pixel raster", npx);
        goto out;
    }
    if (!TIFFRGBAImageGet(&img, raster, (uint32_t)v->width, (uint32_t)v->height) || rep->failed ||
        rep->warned) {
        rc = libtiff_failed(rep, err, "decoding");
        goto out;
    }
    for (int y = 0; y < v->height; y++) {
        const uint32_t *s = raster + (size_t)y * (size_t)v->width;
        uint8_t *d = v->data + (size_t)y * v->stride;
        for (int x = 0; x < v->width; x++, d += v->channels) {
            uint32_t px = s[x];
            uint8_t a = (uint8_t)TIFFGetA(px);
            d[0] = (uint8_t)TIFFGetR(px);
            d[1] = (uint8_t)TIFFGetG(px);
            d[2] = (uint8_t)TIFFGetB(px);
            if (alpha) {
                d[3] = a;
                for (int j = 0; j < 3; j++)
                    d[j] = (uint8_t)(a ? DIP_MIN(255u, (d[j] * 255u + a / 2u) / a) : 0u);
            }
        }
    }
out:
    if (begun)
        TIFFRGBAImageEnd(&img);
    dip_free(raster);
    return rc;
}

/* An open file after every check of a decode, before any pixel buffer. */
struct topen {
    struct mem m;
    struct report rep;
    struct conv c;
    TIFF *tif;
    uint32_t w, h;
    int own; /* dip converts the samples itself (else libtiff's RGBA reader) */
};

static void topen_cleanup(struct topen *t)
{
    if (t->tif != NULL)
        TIFFClose(t->tif);
    t->tif = NULL;
    dip_free(t->c.pal);
    t->c.pal = NULL;
}

static int topen_init(struct topen *t, const uint8_t *buf, size_t len, const struct dip_limits *lim,
                      struct dip_image_info *info, struct dip_err *err)
{
    struct walk wk;
    uint16_t bps = 1, spp = 1, photometric = 0, comp = COMPRESSION_NONE;
    uint64_t region, max_alloc;
    int rc;

    memset(t, 0, sizeof(*t));
    t->m.rd = buf;
    t->m.len = len;
    if ((rc = walk(buf, len, lim, &wk, err)) != 0 || (rc = check_walk(&wk, lim, err)) != 0 ||
        (rc = count_pages(buf, len, lim, &wk, err)) != 0 ||
        (rc = check_strile_bounds(buf, len, &wk, err)) != 0)
        return rc;
    walk_info(&wk, info);
    /* The largest buffer libtiff needs for itself: the raw input of one strip or tile (at most
     * the file) or, in its RGBA reader, one decoded strip or tile. */
    region = (wk.tiled ? wk.tw * wk.th : wk.w * DIP_MIN(wk.rps ? wk.rps : wk.h, wk.h)) * wk.spp *
             ((wk.bps + 7) / 8);
    max_alloc = DIP_MAX((uint64_t)len, region) + ((uint64_t)1 << 20);
    t->tif = open_mem(&t->m, "rm", (tmsize_t)DIP_MIN(max_alloc, (uint64_t)INT64_MAX / 2), &t->rep);
    if (t->tif == NULL || t->rep.failed || t->rep.warned)
        return t->tif == NULL && !t->rep.failed && !t->rep.warned
                   ? dip_err_set(err, DIP_ENOMEM, "tiff: out of memory opening the file")
                   : libtiff_failed(&t->rep, err, "reading the first directory");
    TIFFGetField(t->tif, TIFFTAG_IMAGEWIDTH, &t->w);
    TIFFGetField(t->tif, TIFFTAG_IMAGELENGTH, &t->h);
    TIFFGetFieldDefaulted(t->tif, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(t->tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(t->tif, TIFFTAG_COMPRESSION, &comp);
    if (!TIFFGetField(t->tif, TIFFTAG_PHOTOMETRIC, &photometric))
        return dip_err_set(err, DIP_ECORRUPT, "tiff: PhotometricInterpretation missing");
    if (t->w != wk.w || t->h != wk.h || bps != wk.bps || spp != wk.spp)
        return dip_err_set(err, DIP_ECORRUPT,
                           "tiff: libtiff read the directory differently "
                           "(%ux%u, %u bits, %u samples)",
                           t->w, t->h, bps, spp);
    if ((rc = check_striles(t->tif, len, comp, err)) != 0)
        return rc;
    if (photometric == PHOTOMETRIC_YCBCR && comp == COMPRESSION_JPEG) {
        /* Let libjpeg upsample and convert to RGB. */
        if (!TIFFSetField(t->tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB) || t->rep.failed)
            return libtiff_failed(&t->rep, err, "setting up JPEG colour conversion");
        photometric = PHOTOMETRIC_RGB;
    }
    t->own = comp != COMPRESSION_OJPEG &&
             (photometric == PHOTOMETRIC_MINISBLACK || photometric == PHOTOMETRIC_MINISWHITE ||
              photometric == PHOTOMETRIC_RGB || photometric == PHOTOMETRIC_PALETTE ||
              photometric == PHOTOMETRIC_SEPARATED);
    t->c.photometric = photometric;
    t->c.bps = bps;
    t->c.spp = spp;
    if (t->own && (rc = setup_conv(t->tif, &wk, &t->c, err)) != 0)
        return rc;
    if (!t->own) {
        const char *color;
        t->c.och = walk_channels(&wk, &color) == 4 ? 4 : 3;
    }
    info->channels = t->c.och;
    return 0;
}

static int tiff_decode(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                       const struct dip_decode_opts *opts, dip_image **out,
                       struct dip_image_info *info, struct dip_err *err)
{
    struct topen t;
    dip_image *img = NULL;
    struct dip_view v;
    int rc;

    rc = topen_init(&t, buf, len, lim, info, err);
    if (rc)
        goto out;
    if ((rc = dip_image_new((int)t.w, (int)t.h, t.c.och, &img)) != 0) {
        rc = dip_err_set(err, rc, "tiff: cannot allocate a %ux%u image", t.w, t.h);
        goto out;
    }
    v = dip_image_view(img);
    rc = t.own ? read_strips_parallel(t.tif, buf, len, &t.c, &v, opts->pool) : 1;
    if (rc == DIP_ENOMEM) {
        rc = dip_err_set(err, rc, "tiff: out of memory decoding %ux%u", t.w, t.h);
        goto out;
    }
    if (rc != 0)
        rc = t.own ? read_own(t.tif, &t.c, &t.rep, &v, err)
                   : read_rgba(t.tif, &t.rep, t.c.och == 4, &v, err);
    if (rc)
        goto out;
    *out = img;
    img = NULL;
out:
    topen_cleanup(&t);
    dip_image_unref(img);
    return rc;
}

/* ---- Decoding in rows: one strip (or row of tiles) at a time ---- */

struct trows {
    struct topen t;
    struct bands b;
    struct pstrips ps; /* fast: strips inflated by libdeflate, as tiff_decode does */
    int fast;
    dip_image *band; /* the decoded band holding rows band_y .. */
    uint32_t band_y, y;
    int have;
};

static void trows_free(void *st)
{
    struct trows *r = st;

    if (r == NULL)
        return;
    bands_cleanup(&r->b);
    topen_cleanup(&r->t);
    dip_image_unref(r->band);
    dip_free(r);
}

static int trows_read(void *st, const struct dip_view *rows, struct dip_err *err)
{
    struct trows *r = st;

    for (int done = 0; done < rows->height;) {
        struct dip_view bv = dip_image_view(r->band), src, dst;
        int n;

        if (!r->have || r->y >= r->band_y + r->b.rh) {
            int rc;
            r->band_y = r->y - r->y % r->b.rh;
            rc = r->fast ? pstrip_into(&r->ps, r->band_y / r->b.rh,
                                       DIP_MIN(r->b.rh, r->b.h - r->band_y), bv.data, bv.stride)
                         : 1;
            if (rc == DIP_ENOMEM)
                return dip_err_set(err, rc, "tiff: out of memory decoding %ux%u", r->b.w, r->b.h);
            if (rc != 0)
                rc = bands_read(&r->b, r->band_y, bv.data, bv.stride, err);
            if (rc)
                return rc;
            r->have = 1;
        }
        n = (int)DIP_MIN((uint32_t)(rows->height - done), r->band_y + r->b.rh - r->y);
        src = dip_view_sub(&bv, (struct dip_rect){0, (int)(r->y - r->band_y), bv.width, n});
        dst = dip_view_sub(rows, (struct dip_rect){0, done, rows->width, n});
        dip_view_copy(&src, &dst);
        done += n;
        r->y += (uint32_t)n;
    }
    return 0;
}

static int tiff_rows_open(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                          struct dip_image_info *info, struct dip__rdec *rd, struct dip_err *err)
{
    struct trows *r = dip_calloc(1, sizeof(*r));
    int rc;

    if (r == NULL)
        return dip_err_set(err, DIP_ENOMEM, "tiff: out of memory opening the file");
    rc = topen_init(&r->t, buf, len, lim, info, err);
    if (rc || !r->t.own)
        goto out; /* libtiff's RGBA reader: decoded whole */
    rc = bands_init(&r->b, r->t.tif, &r->t.c, &r->t.rep, r->t.w, r->t.h, err);
    if (rc)
        goto out;
    rc = dip_image_new((int)r->t.w, (int)r->b.rh, r->t.c.och, &r->band);
    if (rc) {
        rc = dip_err_set(err, rc, "tiff: cannot allocate a %ux%u strip", r->t.w, r->b.rh);
        goto out;
    }
    r->fast = pstrips_setup(r->t.tif, buf, len, &r->t.c, (int)r->t.w, (int)r->t.h, r->t.c.och,
                            &r->ps) == 0 &&
              r->ps.rps == r->b.rh;
    rd->st = r;
    rd->read = trows_read;
    rd->free = trows_free;
    r = NULL; /* rd owns it now */
out:
    trows_free(r);
    return rc;
}

/* ---- Encoding ---- */

/* Strips of about STRIP_BYTES (whole rows, at least one), a size fixed by the width alone: each
 * strip is predicted and deflated on its own (in parallel on the caller's pool) and written raw
 * in order, so the bytes do not depend on the thread count. */
#define STRIP_BYTES ((size_t)256 << 10)

struct tenc {
    struct dip_view v;
    size_t rowbytes;
    uint32_t rps, nstrips;
    uint8_t **z;
    size_t *zlen;
};

/* One strip (the rows of v): rows copied, horizontal differencing (TIFF predictor 2, 8-bit:
 * each sample minus the same sample of the pixel to its left), zlib at level 6 as libtiff's
 * default. */
static int strip_compress(const struct dip_view *v, uint8_t **z, size_t *zlen)
{
    size_t ch = (size_t)v->channels, rowbytes = (size_t)v->width * ch;
    size_t n = rowbytes * (size_t)v->height;
    uint8_t *buf = dip_malloc(n);
    int rc;

    if (buf == NULL)
        return DIP_ENOMEM;
    for (int r = 0; r < v->height; r++) {
        uint8_t *row = buf + (size_t)r * rowbytes;
        memcpy(row, v->data + (size_t)r * v->stride, rowbytes);
        for (size_t i = rowbytes; i-- > ch;)
            row[i] = (uint8_t)(row[i] - row[i - ch]);
    }
    rc = dip__zlib_compress(buf, n, 6, z, zlen);
    dip_free(buf);
    return rc;
}

static int strip_task(void *ud, size_t s, int thread)
{
    struct tenc *e = ud;
    uint32_t y0 = (uint32_t)s * e->rps, ny = DIP_MIN(e->rps, (uint32_t)e->v.height - y0);
    struct dip_view rows = dip_view_sub(&e->v, (struct dip_rect){0, (int)y0, e->v.width, (int)ny});

    (void)thread;
    return strip_compress(&rows, &e->z[s], &e->zlen[s]);
}

/* The encoder's TIFF fields (before the strips). */
static void set_fields(TIFF *tif, int w, int h, int ch, uint32_t rps)
{
    uint16_t extra = EXTRASAMPLE_UNASSALPHA;

    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, (uint32_t)w);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, (uint32_t)h);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, ch);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, ch >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
    TIFFSetField(tif, TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL);
    if (ch == 2 || ch == 4)
        TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, &extra);
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, rps);
}

/* 8-bit, deflate with horizontal differencing; gray+alpha and RGBA carry their alpha as an
 * unassociated extra sample. */
static int tiff_encode(const dip_image *img, const struct dip_encode_opts *opts, uint8_t **out,
                       size_t *out_len, struct dip_err *err)
{
    struct dip_view v = dip_image_view(img);
    struct mem m = {.cap = (size_t)0xFFFFFFFF}; /* classic TIFF addresses 4 GiB */
    struct report rep = {0, 0, ""};
    struct tenc e;
    TIFF *tif = NULL;
    int rc = 0;

    memset(&e, 0, sizeof(e));
    e.v = v;
    e.rowbytes = (size_t)v.width * (size_t)v.channels;
    e.rps = (uint32_t)DIP_MAX((size_t)1, DIP_MIN(STRIP_BYTES / e.rowbytes, (size_t)v.height));
    e.nstrips = ((uint32_t)v.height + e.rps - 1) / e.rps;
    e.z = dip_calloc(e.nstrips, sizeof(*e.z));
    e.zlen = dip_calloc(e.nstrips, sizeof(*e.zlen));
    if (e.z == NULL || e.zlen == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "tiff: out of memory for %u strips", e.nstrips);
        goto out;
    }
    rc = dip_pool_for(opts->pool, e.nstrips, strip_task, &e);
    if (rc) {
        rc = dip_err_set(err, rc, "tiff: compressing the strips: %s", dip_strerror(rc));
        goto out;
    }
    {
        /* The output's size is known but for the header and directory (a few KiB): one
         * huge-page buffer instead of a doubling one faulted in 4 KiB at a time. */
        size_t total = 65536;
        for (uint32_t s = 0; s < e.nstrips; s++)
            total += e.zlen[s];
        if (total <= m.cap) {
            m.wr = dip__malloc_large(total);
            if (m.wr == NULL) {
                rc = dip_err_set(err, DIP_ENOMEM, "tiff: out of memory for the output");
                goto out;
            }
            m.alloc = total;
        }
    }
    tif = open_mem(&m, "w", 0, &rep);
    if (tif == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "tiff: cannot start the encoder%s%s",
                         rep.msg[0] ? ": " : "", rep.msg);
        goto out;
    }
    set_fields(tif, v.width, v.height, v.channels, e.rps);
    if (rep.failed || rep.warned) {
        rc = dip_err_set(err, DIP_EINTERNAL, "tiff: setting up the encoder: %s", rep.msg);
        goto out;
    }
    for (uint32_t s = 0; s < e.nstrips; s++) {
        if (TIFFWriteRawStrip(tif, s, e.z[s], (tmsize_t)e.zlen[s]) < 0 || rep.failed) {
            rc = m.oom ? dip_err_set(err, DIP_ENOMEM, "tiff: out of memory for the output")
                       : dip_err_set(err, DIP_EINTERNAL, "tiff: writing strip %u: %s", s, rep.msg);
            goto out;
        }
    }
    if (!TIFFWriteDirectory(tif) || rep.failed) {
        rc = m.oom ? dip_err_set(err, DIP_ENOMEM, "tiff: out of memory for the output")
                   : dip_err_set(err, DIP_EINTERNAL, "tiff: writing the directory: %s", rep.msg);
        goto out;
    }
out:
    if (tif != NULL)
        TIFFClose(tif);
    for (uint32_t s = 0; e.z != NULL && s < e.nstrips; s++)
        dip_free(e.z[s]);
    dip_free(e.z);
    dip_free(e.zlen);
    if (rc == 0 && (rep.failed || m.oom))
        rc = m.oom ? dip_err_set(err, DIP_ENOMEM, "tiff: out of memory for the output")
                   : dip_err_set(err, DIP_EINTERNAL, "tiff: closing: %s", rep.msg);
    if (rc == 0) {
        *out = m.wr;
        *out_len = m.len;
        m.wr = NULL;
    }
    dip_free(m.wr);
    return rc;
}

/* ---- Encoding in rows ---- */

/* tiff_encode's strips one at a time: the file is opened and its fields set first, each full
 * strip is compressed and written raw as soon as its rows are in, and the directory is written
 * at the end, the same calls in the same order as tiff_encode. */
struct twrows {
    struct mem m;
    struct report rep;
    TIFF *tif;
    int w, h, ch, filled;
    uint32_t rps, strip;
    dip_image *rows;
};

static void twrows_free(void *st)
{
    struct twrows *e = st;

    if (e == NULL)
        return;
    if (e->tif != NULL)
        TIFFClose(e->tif);
    dip_image_unref(e->rows);
    dip_free(e->m.wr);
    dip_free(e);
}

static int tw_failed(struct twrows *e, struct dip_err *err, const char *what)
{
    return e->m.oom ? dip_err_set(err, DIP_ENOMEM, "tiff: out of memory for the output")
                    : dip_err_set(err, DIP_EINTERNAL, "tiff: %s: %s", what, e->rep.msg);
}

static int tw_flush(struct twrows *e, struct dip_err *err)
{
    struct dip_view v = dip_image_view(e->rows);
    uint8_t *z = NULL;
    size_t zlen = 0;
    int rc;

    v.height = e->filled;
    rc = strip_compress(&v, &z, &zlen);
    if (rc)
        return dip_err_set(err, rc, "tiff: compressing the strips: %s", dip_strerror(rc));
    if (TIFFWriteRawStrip(e->tif, e->strip, z, (tmsize_t)zlen) < 0 || e->rep.failed) {
        dip_free(z);
        return tw_failed(e, err, "writing a strip");
    }
    dip_free(z);
    e->strip++;
    e->filled = 0;
    return 0;
}

static int twrows_write(void *st, const struct dip_view *rows, struct dip_err *err)
{
    struct twrows *e = st;
    struct dip_view b = dip_image_view(e->rows);

    for (int done = 0; done < rows->height;) {
        int n = DIP_MIN(rows->height - done, (int)e->rps - e->filled);
        struct dip_view src = dip_view_sub(rows, (struct dip_rect){0, done, e->w, n});
        struct dip_view dst = dip_view_sub(&b, (struct dip_rect){0, e->filled, e->w, n});

        dip_view_copy(&src, &dst);
        e->filled += n;
        done += n;
        if (e->filled == (int)e->rps) {
            int rc = tw_flush(e, err);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int twrows_finish(void *st, uint8_t **out, size_t *out_len, struct dip_err *err)
{
    struct twrows *e = st;
    int rc = e->filled ? tw_flush(e, err) : 0;

    if (rc)
        return rc;
    if (!TIFFWriteDirectory(e->tif) || e->rep.failed)
        return tw_failed(e, err, "writing the directory");
    TIFFClose(e->tif);
    e->tif = NULL;
    if (e->rep.failed || e->m.oom)
        return tw_failed(e, err, "closing");
    *out = e->m.wr;
    *out_len = e->m.len;
    e->m.wr = NULL; /* the caller owns it now */
    return 0;
}

static int tiff_enc_open(int w, int h, int ch, const struct dip_encode_opts *opts,
                         struct dip__renc *re, struct dip_err *err)
{
    struct twrows *e = dip_calloc(1, sizeof(*e));
    size_t rowbytes = (size_t)w * (size_t)ch;
    int rc;

    (void)opts;
    if (e == NULL)
        return dip_err_set(err, DIP_ENOMEM, "tiff: cannot start the encoder");
    e->m.cap = (size_t)0xFFFFFFFF; /* classic TIFF addresses 4 GiB */
    e->w = w;
    e->h = h;
    e->ch = ch;
    e->rps = (uint32_t)DIP_MAX((size_t)1, DIP_MIN(STRIP_BYTES / rowbytes, (size_t)h));
    rc = dip_image_new(w, (int)e->rps, ch, &e->rows);
    if (rc) {
        rc = dip_err_set(err, rc, "tiff: out of memory for a %dx%u strip", w, e->rps);
        goto out;
    }
    e->tif = open_mem(&e->m, "w", 0, &e->rep);
    if (e->tif == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "tiff: cannot start the encoder%s%s",
                         e->rep.msg[0] ? ": " : "", e->rep.msg);
        goto out;
    }
    set_fields(e->tif, w, h, ch, e->rps);
    if (e->rep.failed || e->rep.warned) {
        rc = dip_err_set(err, DIP_EINTERNAL, "tiff: setting up the encoder: %s", e->rep.msg);
        goto out;
    }
    re->st = e;
    re->write = twrows_write;
    re->finish = twrows_finish;
    re->free = twrows_free;
    e = NULL; /* re owns it now */
out:
    twrows_free(e);
    return rc;
}

static void tiff_version(char *buf, size_t len)
{
    const char *v = TIFFGetVersion(), *p = strstr(v, "Version ");
    size_t n = 0;

    if (p == NULL) {
        snprintf(buf, len, "libtiff");
        return;
    }
    p += 8;
    while (p[n] && p[n] != '\n' && p[n] != ' ')
        n++;
    snprintf(buf, len, "libtiff %.*s", (int)n, p);
}

const struct dip__codec dip__codec_tiff = {
    .format = DIP_FORMAT_TIFF,
    .probe = tiff_probe,
    .decode = tiff_decode,
    .encode = tiff_encode,
    .version = tiff_version,
    .rows_open = tiff_rows_open,
    .enc_open = tiff_enc_open,
};
