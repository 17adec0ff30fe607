/* SPDX-License-Identifier: MIT */
/* Windows and OS/2 bitmaps, decoded by a hand-written parser over a bounded cursor: the OS/2
 * core header, BITMAPINFOHEADER and its V2..V5 extensions; 1/4/8-bit palettes, 16/24/32-bit
 * pixels with default or BI_BITFIELDS masks, RLE8 and RLE4; bottom-up and top-down rows. Every
 * offset and length in the headers is checked against the file before it is used. The encoder
 * writes 24-bit BI_RGB for gray and RGB, and 32-bit BI_BITFIELDS (V4 header) with alpha. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "internal.h"

enum {
    BI_RGB = 0,
    BI_RLE8 = 1,
    BI_RLE4 = 2,
    BI_BITFIELDS = 3,
    BI_JPEG = 4,
    BI_PNG = 5,
    BI_ALPHABITFIELDS = 6,
};

#define FILE_HEADER 14
/* RLE plausibility: 255 * 255 pixels per 4-byte delta, rounded up. */
#define RLE_MAX_PX_PER_BYTE 16384

struct bmp {
    size_t off;     /* bfOffBits: first pixel byte */
    uint32_t hsize; /* DIB header size */
    long long w, h; /* h is the absolute height */
    int topdown;
    int bpp;
    uint32_t comp;
    uint32_t mask[4]; /* R, G, B, A */
    int shift[4], bits[4];
    size_t pal_off; /* first palette entry */
    int pal_n;      /* usable palette entries */
    int pal_entry;  /* 3 (OS/2 core) or 4 bytes per entry */
    int channels;   /* decoded channels */
    int depth;      /* bits per sample in the source, for info->bit_depth */
};

static uint32_t le16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Splits a colour mask into shift and width; refuses masks with holes ("0x0F0F"). */
static int split_mask(uint32_t m, int idx, int bpp, int *shift, int *bits, struct dip_err *err)
{
    static const char *const names[] = {"red", "green", "blue", "alpha"};
    int s = 0, b = 0;

    *shift = *bits = 0;
    if (m == 0)
        return 0;
    if (bpp < 32 && (m >> bpp) != 0)
        return dip_err_set(err, DIP_ECORRUPT,
                           "bmp: %s mask 0x%08x has bits beyond the %d-bit "
                           "pixel",
                           names[idx], m, bpp);
    while (!(m & 1u)) {
        m >>= 1;
        s++;
    }
    while (m & 1u) {
        m >>= 1;
        b++;
    }
    if (m != 0)
        return dip_err_set(err, DIP_ECORRUPT, "bmp: %s mask is not one contiguous run of bits",
                           names[idx]);
    *shift = s;
    *bits = b;
    return 0;
}

static int parse(const uint8_t *buf, size_t len, const struct dip_limits *lim, struct bmp *b,
                 struct dip_err *err)
{
    const uint8_t *d = buf + FILE_HEADER;
    size_t masks_end;
    int rc;

    memset(b, 0, sizeof(*b));
    if (len < FILE_HEADER + 4)
        return dip_err_set(err, DIP_ECORRUPT, "bmp: truncated header (%zu bytes)", len);
    if (buf[0] != 'B' || buf[1] != 'M')
        return dip_err_set(err, DIP_EFORMAT, "bmp: bad signature (want \"BM\")");
    b->off = le32(buf + 10);
    b->hsize = le32(d);
    if (b->hsize != 12 && b->hsize != 40 && b->hsize != 52 && b->hsize != 56 && b->hsize != 64 &&
        b->hsize != 108 && b->hsize != 124)
        return dip_err_set(err, DIP_ECORRUPT,
                           "bmp: unsupported DIB header size %u (want 12, 40, "
                           "52, 56, 64, 108 or 124)",
                           b->hsize);
    if (len < FILE_HEADER + (size_t)b->hsize)
        return dip_err_set(err, DIP_ECORRUPT,
                           "bmp: truncated header: DIB header of %u bytes, "
                           "file has %zu bytes",
                           b->hsize, len);
    if (b->hsize == 12) {
        b->w = le16(d + 4);
        b->h = le16(d + 6);
        b->bpp = (int)le16(d + 10);
        b->comp = BI_RGB;
        b->pal_entry = 3;
    } else {
        b->w = (int32_t)le32(d + 4);
        b->h = (int32_t)le32(d + 8);
        b->bpp = (int)le16(d + 14);
        b->comp = le32(d + 16);
        b->pal_entry = 4;
    }
    if (b->h < 0) {
        b->topdown = 1;
        b->h = -b->h;
    }
    if (b->w <= 0 || b->h == 0)
        return dip_err_set(err, DIP_ECORRUPT, "bmp: invalid image size %lldx%lld", b->w,
                           b->topdown ? -b->h : b->h);
    if (b->w > lim->max_width)
        return dip_err_set(err, DIP_ELIMIT, "bmp: biWidth %lld exceeds the limit max_width=%d",
                           b->w, lim->max_width);
    if (b->h > lim->max_height)
        return dip_err_set(err, DIP_ELIMIT, "bmp: biHeight %lld exceeds the limit max_height=%d",
                           b->h, lim->max_height);
    if ((rc = dip_limits_check_dims(lim, "bmp", b->w, b->h, err)) != 0)
        return rc;
    /* V5: an embedded ICC profile is metadata (dip ignores it, but the limit holds). */
    if (b->hsize == 124 && le32(d + 116) > lim->max_metadata_bytes)
        return dip_err_set(err, DIP_ELIMIT,
                           "bmp: embedded ICC profile of %u bytes exceeds the limit "
                           "max_metadata_bytes=%zu",
                           le32(d + 116), lim->max_metadata_bytes);

    /* The OS/2 core header knows only 1, 4, 8 and 24 bits. */
    if ((b->bpp != 1 && b->bpp != 4 && b->bpp != 8 && b->bpp != 16 && b->bpp != 24 &&
         b->bpp != 32) ||
        (b->hsize == 12 && (b->bpp == 16 || b->bpp == 32)))
        return dip_err_set(err, DIP_EFORMAT, "bmp: biBitCount %d not supported", b->bpp);
    if (b->hsize == 64 && b->comp > BI_RLE4)
        return dip_err_set(err, DIP_EFORMAT, "bmp: OS/2 compression %u not supported", b->comp);
    switch (b->comp) {
    case BI_RGB:
        break;
    case BI_RLE8:
    case BI_RLE4:
        if (b->bpp != (b->comp == BI_RLE8 ? 8 : 4))
            return dip_err_set(err, DIP_ECORRUPT, "bmp: RLE%d compression with biBitCount %d",
                               b->comp == BI_RLE8 ? 8 : 4, b->bpp);
        break;
    case BI_BITFIELDS:
    case BI_ALPHABITFIELDS:
        if (b->bpp != 16 && b->bpp != 32)
            return dip_err_set(err, DIP_ECORRUPT,
                               "bmp: BI_BITFIELDS with biBitCount %d "
                               "(want 16 or 32)",
                               b->bpp);
        break;
    case BI_JPEG:
    case BI_PNG:
        return dip_err_set(err, DIP_EFORMAT, "bmp: embedded %s data not supported",
                           b->comp == BI_JPEG ? "JPEG" : "PNG");
    default:
        return dip_err_set(err, DIP_ECORRUPT, "bmp: unknown biCompression %u", b->comp);
    }

    /* Masks: inside V2+ headers, or right after a 40-byte header. */
    masks_end = FILE_HEADER + b->hsize;
    if (b->comp == BI_BITFIELDS || b->comp == BI_ALPHABITFIELDS) {
        int n = b->comp == BI_ALPHABITFIELDS ? 4 : 3;
        const uint8_t *m = d + 40;
        if (b->hsize == 40) {
            masks_end += (size_t)n * 4;
            if (len < masks_end)
                return dip_err_set(err, DIP_ECORRUPT,
                                   "bmp: truncated header: colour masks "
                                   "missing");
        } else if (b->hsize >= 56) {
            n = 4;
        }
        for (int i = 0; i < n; i++)
            b->mask[i] = le32(m + 4 * i);
    } else if (b->bpp == 16) {
        b->mask[0] = 0x7C00;
        b->mask[1] = 0x03E0;
        b->mask[2] = 0x001F;
    } else if (b->bpp == 32) {
        b->mask[0] = 0x00FF0000; /* BI_RGB: the fourth byte is unused, not alpha */
        b->mask[1] = 0x0000FF00;
        b->mask[2] = 0x000000FF;
    }
    if (b->bpp == 16 || b->bpp == 32) {
        b->depth = 0;
        for (int i = 0; i < 4; i++) {
            if ((rc = split_mask(b->mask[i], i, b->bpp, &b->shift[i], &b->bits[i], err)) != 0)
                return rc;
            b->depth = DIP_MAX(b->depth, b->bits[i]);
        }
        b->channels = b->mask[3] ? 4 : 3;
    } else {
        b->depth = b->bpp == 24 ? 8 : b->bpp;
        b->channels = 3;
    }

    if (b->off > len)
        return dip_err_set(err, DIP_ECORRUPT,
                           "bmp: pixel data offset bfOffBits=%zu lies past "
                           "the end of the file (%zu bytes)",
                           b->off, len);
    if (b->off < masks_end)
        return dip_err_set(err, DIP_ECORRUPT,
                           "bmp: pixel data offset bfOffBits=%zu lies inside "
                           "the %zu-byte header",
                           b->off, masks_end);

    if (b->bpp <= 8) {
        uint32_t used = b->hsize >= 40 ? le32(d + 32) : 0;
        size_t avail = (b->off - masks_end) / (size_t)b->pal_entry;
        size_t n = used == 0 || used > (1u << b->bpp) ? (1u << b->bpp) : used;
        /* Writers often leave the palette shorter than 2^bpp and say so only through
         * bfOffBits: use what lies between the header and the pixels. */
        if (n > avail)
            n = avail;
        if (n == 0)
            return dip_err_set(err, DIP_ECORRUPT, "bmp: %d-bit image without a palette", b->bpp);
        b->pal_off = masks_end;
        b->pal_n = (int)n;
        b->channels = 1; /* until a palette entry is not gray */
        for (size_t i = 0; i < n; i++) {
            const uint8_t *e = buf + b->pal_off + i * (size_t)b->pal_entry;
            if (e[0] != e[1] || e[1] != e[2])
                b->channels = 3;
        }
    }
    return 0;
}

static void fill_info(const struct bmp *b, struct dip_image_info *info)
{
    info->width = (int)b->w;
    info->height = (int)b->h;
    info->channels = b->channels;
    info->bit_depth = b->depth;
    info->frames = 1;
    info->orientation = 1;
    info->lossless = 1;
    snprintf(info->color, sizeof(info->color), "%s", b->bpp <= 8 ? "palette" : "rgb");
}

static int bmp_probe(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                     struct dip_image_info *info, struct dip_err *err)
{
    struct bmp b;
    int rc = parse(buf, len, lim, &b, err);

    if (rc == 0)
        fill_info(&b, info);
    return rc;
}

/* ---- Pixel decoding ---- */

/* The palette as 256 RGB triples; entries past the palette are black, as most viewers show
 * indices that point past it. */
struct palette {
    uint8_t rgb[256][3];
};

static void make_palette(const struct bmp *b, const uint8_t *buf, struct palette *pal)
{
    memset(pal, 0, sizeof(*pal));
    for (int i = 0; i < b->pal_n && i < 256; i++) {
        const uint8_t *e = buf + b->pal_off + (size_t)i * (size_t)b->pal_entry;
        pal->rgb[i][0] = e[2];
        pal->rgb[i][1] = e[1];
        pal->rgb[i][2] = e[0];
    }
}

static inline void put_index(uint8_t *row, int x, int ch, const struct palette *pal, unsigned i)
{
    if (ch == 1) {
        row[x] = pal->rgb[i][0];
    } else {
        memcpy(row + 3 * (size_t)x, pal->rgb[i], 3);
    }
}

static uint8_t scale_bits(uint32_t v, int bits)
{
    uint64_t max = (bits >= 32) ? 0xFFFFFFFFull : ((1ull << bits) - 1);

    if (bits == 8)
        return (uint8_t)v;
    return (uint8_t)(((uint64_t)v * 255 + max / 2) / max);
}

static void put_masked(const struct bmp *b, const uint8_t *src, int w, uint8_t *dst)
{
    int ch = b->channels;

    for (int x = 0; x < w; x++) {
        uint32_t px = b->bpp == 16 ? le16(src + 2 * x) : le32(src + 4 * x);
        for (int k = 0; k < ch; k++) {
            uint32_t v = 0;
            if (b->bits[k]) {
                v = px >> b->shift[k];
                if (b->bits[k] < 32)
                    v &= (1u << b->bits[k]) - 1;
                v = scale_bits(v, b->bits[k]);
            }
            dst[x * ch + k] = (uint8_t)v;
        }
    }
}

static int decode_plain(const struct bmp *b, const uint8_t *buf, size_t len, struct dip_view *v,
                        struct dip_err *err)
{
    int w = v->width, h = v->height;
    size_t stride = (((size_t)w * (size_t)b->bpp + 31) / 32) * 4, need;
    struct palette pal;
    int rc = 0;

    if (dip_size_mul(stride, (size_t)h, &need))
        return dip_err_set(err, DIP_ELIMIT, "bmp: %dx%d image too large", w, h);
    if (len - b->off < need)
        return dip_err_set(err, DIP_ECORRUPT,
                           "bmp: truncated pixel data: need %zu bytes at "
                           "offset %zu, have %zu",
                           need, b->off, len - b->off);
    make_palette(b, buf, &pal);
    for (int r = 0; r < h; r++) {
        const uint8_t *s = buf + b->off + (size_t)r * stride;
        uint8_t *dst = v->data + (size_t)(b->topdown ? r : h - 1 - r) * v->stride;
        if (b->bpp <= 8) {
            int per = 8 / b->bpp, mask = (1 << b->bpp) - 1;
            for (int x = 0; x < w; x++) {
                int shift = (per - 1 - x % per) * b->bpp;
                put_index(dst, x, b->channels, &pal,
                          (unsigned)(s[x / per] >> shift) & (unsigned)mask);
            }
        } else if (b->bpp == 24) {
            for (int x = 0; x < w; x++) {
                dst[3 * x] = s[3 * x + 2];
                dst[3 * x + 1] = s[3 * x + 1];
                dst[3 * x + 2] = s[3 * x];
            }
        } else {
            put_masked(b, s, w, dst);
        }
    }
    return rc;
}

/* RLE8 and RLE4, straight into the image. Pixels the stream skips (deltas, short lines, an
 * early end of bitmap) get palette entry 0. Runs past the end of a row are clipped; the stream
 * must reach its end-of-bitmap marker (or fill every row) before the data ends. */
static int decode_rle(const struct bmp *b, const uint8_t *buf, size_t len, struct dip_view *v,
                      struct dip_err *err)
{
    int w = v->width, h = v->height, x = 0, y = 0, rle4 = b->comp == BI_RLE4, ch = b->channels;
    size_t pos = b->off, rowbytes = (size_t)w * (size_t)ch;
    struct palette pal;

    make_palette(b, buf, &pal);
    /* Fill with entry 0: one row by hand, the others by copying it. */
    for (int i = 0; i < w; i++)
        put_index(v->data, i, ch, &pal, 0);
    for (int r = 1; r < h; r++)
        memcpy(v->data + (size_t)r * v->stride, v->data, rowbytes);
    while (y < h) {
        uint8_t *row = v->data + (size_t)(b->topdown ? y : h - 1 - y) * v->stride;
        uint8_t n, c;
        if (len - pos < 2)
            goto truncated;
        n = buf[pos];
        c = buf[pos + 1];
        pos += 2;
        if (n > 0) { /* encoded run of n pixels */
            for (int i = 0; i < n && x < w; i++, x++)
                put_index(row, x, ch, &pal, rle4 ? ((i & 1) ? (c & 15u) : (unsigned)(c >> 4)) : c);
            continue;
        }
        if (c == 0) { /* end of line */
            x = 0;
            y++;
        } else if (c == 1) { /* end of bitmap */
            break;
        } else if (c == 2) { /* delta */
            if (len - pos < 2)
                goto truncated;
            x = DIP_MIN(w, x + buf[pos]);
            y += buf[pos + 1];
            pos += 2;
        } else { /* absolute run of c pixels, padded to 16 bits */
            size_t bytes = rle4 ? ((size_t)c + 1) / 2 : c;
            if (len - pos < bytes)
                goto truncated;
            for (int i = 0; i < c && x < w; i++, x++) {
                unsigned byte = buf[pos + (size_t)(rle4 ? i / 2 : i)];
                put_index(row, x, ch, &pal, rle4 ? ((i & 1) ? (byte & 15u) : (byte >> 4)) : byte);
            }
            pos += bytes + (bytes & 1);
            if (pos > len)
                pos = len; /* a missing final pad byte is harmless */
        }
    }
    return 0;
truncated:
    return dip_err_set(err, DIP_ECORRUPT,
                       "bmp: truncated RLE%d data: stream ends at offset %zu in "
                       "row %d of %d without an end-of-bitmap marker",
                       rle4 ? 4 : 8, pos, y, h);
}

static int bmp_decode(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                      const struct dip_decode_opts *opts, dip_image **out,
                      struct dip_image_info *info, struct dip_err *err)
{
    struct bmp b;
    dip_image *img = NULL;
    struct dip_view v;
    int rc;

    (void)opts;
    if ((rc = parse(buf, len, lim, &b, err)) != 0)
        goto out;
    fill_info(&b, info);
    if (b.comp != BI_RLE8 && b.comp != BI_RLE4) {
        /* Refuse short data before allocating the image. */
        size_t stride = (((size_t)b.w * (size_t)b.bpp + 31) / 32) * 4;
        if (stride * (size_t)b.h > len - b.off) {
            rc = dip_err_set(err, DIP_ECORRUPT,
                             "bmp: truncated pixel data: need %zu bytes at "
                             "offset %zu, have %zu",
                             stride * (size_t)b.h, b.off, len - b.off);
            goto out;
        }
    } else if ((uint64_t)b.w * (uint64_t)b.h > (uint64_t)(len - b.off) * RLE_MAX_PX_PER_BYTE) {
        /* The densest valid opcode, a delta, skips 255x255 pixels in 4 bytes; anything denser
         * relies on an early end-of-bitmap to blank the image, which real encoders never do. A
         * tiny file must not make a 100-megapixel image. */
        rc = dip_err_set(err, DIP_ECORRUPT,
                         "bmp: %zu bytes of RLE data cannot describe %lldx%lld pixels (at most "
                         "%d pixels per byte)",
                         len - b.off, b.w, b.h, RLE_MAX_PX_PER_BYTE);
        goto out;
    }
    if ((rc = dip_image_new(info->width, info->height, b.channels, &img)) != 0) {
        rc = dip_err_set(err, rc, "bmp: cannot allocate a %dx%d image", info->width, info->height);
        goto out;
    }
    v = dip_image_view(img);
    if (b.comp == BI_RLE8 || b.comp == BI_RLE4)
        rc = decode_rle(&b, buf, len, &v, err);
    else
        rc = decode_plain(&b, buf, len, &v, err);
    if (rc)
        goto out;
    *out = img;
    img = NULL;
out:
    dip_image_unref(img);
    return rc;
}

/* ---- Encoding ---- */

static int bmp_encode(const dip_image *img, const struct dip_encode_opts *opts, uint8_t **out,
                      size_t *out_len, struct dip_err *err)
{
    struct dip_view v = dip_image_view(img);
    int alpha = v.channels == 2 || v.channels == 4;
    int bpp = alpha ? 32 : 24;
    uint32_t hsize = alpha ? 108 : 40;
    size_t head = FILE_HEADER + hsize;
    size_t stride = (((size_t)v.width * (size_t)bpp + 31) / 32) * 4, body, total;
    uint8_t *buf, *h;

    (void)opts;
    if (dip_size_mul(stride, (size_t)v.height, &body) || dip_size_add(body, head, &total) ||
        total > 0xFFFFFFFFu)
        return dip_err_set(err, DIP_ELIMIT, "bmp: %dx%d image too large for BMP (4 GiB)", v.width,
                           v.height);
    buf = dip_calloc(1, total); /* zeroed: header fields not set below and row padding */
    if (buf == NULL)
        return dip_err_set(err, DIP_ENOMEM, "bmp: out of memory for %zu output bytes", total);
    h = buf;
    h[0] = 'B';
    h[1] = 'M';
    put32(h + 2, (uint32_t)total);
    put32(h + 10, (uint32_t)head);
    h += FILE_HEADER;
    put32(h, hsize);
    put32(h + 4, (uint32_t)v.width);
    put32(h + 8, (uint32_t)v.height); /* positive: bottom-up rows */
    put16(h + 12, 1);
    put16(h + 14, (uint32_t)bpp);
    put32(h + 16, alpha ? BI_BITFIELDS : BI_RGB);
    put32(h + 20, (uint32_t)body);
    put32(h + 24, 2835); /* 72 dpi */
    put32(h + 28, 2835);
    if (alpha) {
        put32(h + 40, 0x00FF0000);
        put32(h + 44, 0x0000FF00);
        put32(h + 48, 0x000000FF);
        put32(h + 52, 0xFF000000);
        put32(h + 56, 0x73524742); /* LCS_sRGB */
    }
    for (int y = 0; y < v.height; y++) {
        const uint8_t *s = v.data + (size_t)y * v.stride;
        uint8_t *d = buf + head + (size_t)(v.height - 1 - y) * stride;
        for (int x = 0; x < v.width; x++, s += v.channels) {
            uint8_t r = s[0], g, bl, a = 255;
            if (v.channels <= 2) {
                g = bl = r;
                if (v.channels == 2)
                    a = s[1];
            } else {
                g = s[1];
                bl = s[2];
                if (v.channels == 4)
                    a = s[3];
            }
            *d++ = bl;
            *d++ = g;
            *d++ = r;
            if (alpha)
                *d++ = a;
        }
    }
    *out = buf;
    *out_len = total;
    return 0;
}

const struct dip__codec dip__codec_bmp = {
    .format = DIP_FORMAT_BMP,
    .probe = bmp_probe,
    .decode = bmp_decode,
    .encode = bmp_encode,
    .version = NULL,
};
