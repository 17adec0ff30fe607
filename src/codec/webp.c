/* SPDX-License-Identifier: MIT */
/* WebP through libwebp and libwebpdemux: lossy, lossless, alpha, and the first frame of an
 * animation. A bounded walk of our own over the RIFF chunks checks every chunk size against the
 * file, the canvas against the limits, counts animation frames (more than max_frames are
 * refused), totals the metadata and finds the EXIF chunk before libwebp decodes anything. The
 * demuxer only sees the bytes up to the end of the first frame, so its work does not grow with
 * the number of frames. */
#include <stdio.h>
#include <string.h>
#include <webp/decode.h>
#include <webp/demux.h>
#include <webp/encode.h>

#include "core/internal.h"
#include "internal.h"

#define WEBP_MAX_SIDE 16383 /* the format stores width - 1 and height - 1 in 14 bits */

struct riff {
    size_t total;           /* bytes of the RIFF container (trailing bytes ignored) */
    int ext;                /* VP8X present */
    unsigned flags;         /* VP8X flags */
    long long cw, ch;       /* VP8X canvas */
    int anim;               /* ANMF chunks present */
    int frames;             /* ANMF chunks (more than max_frames are refused) */
    size_t anmf, anmf_size; /* first ANMF payload and its size */
    size_t anmf_end;        /* end of the first ANMF chunk (with padding) */
    const uint8_t *exif;
    size_t exif_len;
    uint64_t meta;    /* ICCP, EXIF, XMP and unknown chunk bytes */
    int dip_channels; /* dip's "dipC" chunk: 1 gray or 2 gray+alpha written as lossless RGB(A) */
};

/* First-frame geometry of an animation, from its ANMF header. */
struct frame {
    long long x, y, w, h;
};

static uint32_t le24(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

static uint32_t le32(const uint8_t *p)
{
    return le24(p) | (uint32_t)p[3] << 24;
}

static int status_err(VP8StatusCode s, const char *what, struct dip_err *err)
{
    switch (s) {
    case VP8_STATUS_OUT_OF_MEMORY:
        return dip_err_set(err, DIP_ENOMEM, "webp: out of memory %s", what);
    case VP8_STATUS_UNSUPPORTED_FEATURE:
        return dip_err_set(err, DIP_EFORMAT, "webp: unsupported feature %s", what);
    case VP8_STATUS_NOT_ENOUGH_DATA:
        return dip_err_set(err, DIP_ECORRUPT, "webp: truncated data %s", what);
    default:
        return dip_err_set(err, DIP_ECORRUPT, "webp: corrupt bitstream %s (libwebp status %d)",
                           what, (int)s);
    }
}

static int walk(const uint8_t *buf, size_t len, const struct dip_limits *lim, struct riff *r,
                struct dip_err *err)
{
    size_t pos = 12;
    uint32_t riff_size;
    int rc;

    memset(r, 0, sizeof(*r));
    if (len < 12 || memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WEBP", 4) != 0)
        return dip_err_set(err, len < 12 ? DIP_ECORRUPT : DIP_EFORMAT, "webp: %s",
                           len < 12 ? "truncated header" : "not a RIFF WEBP file");
    riff_size = le32(buf + 4);
    if (riff_size < 4 + 8)
        return dip_err_set(err, DIP_ECORRUPT, "webp: RIFF size %u too small", riff_size);
    if ((uint64_t)riff_size + 8 > len)
        return dip_err_set(err, DIP_ECORRUPT,
                           "webp: truncated file: the RIFF header says %llu "
                           "bytes, have %zu",
                           (unsigned long long)riff_size + 8, len);
    r->total = (size_t)riff_size + 8;
    while (pos < r->total) {
        const uint8_t *c = buf + pos;
        size_t size, padded;
        if (r->total - pos < 8)
            return dip_err_set(err, DIP_ECORRUPT, "webp: truncated chunk header at offset %zu",
                               pos);
        size = le32(c + 4);
        padded = size + (size & 1);
        if (size > r->total - pos - 8)
            return dip_err_set(err, DIP_ECORRUPT,
                               "webp: chunk '%.4s' at offset %zu claims %zu "
                               "bytes, only %zu remain",
                               (const char *)c, pos, size, r->total - pos - 8);
        if (padded > r->total - pos - 8)
            padded = size; /* a missing final pad byte is harmless */
        if (memcmp(c, "VP8X", 4) == 0) {
            if (pos != 12 || size < 10)
                return dip_err_set(err, DIP_ECORRUPT, "webp: misplaced or short VP8X chunk");
            r->ext = 1;
            r->flags = c[8];
            r->cw = (long long)le24(c + 12) + 1;
            r->ch = (long long)le24(c + 15) + 1;
            /* The canvas is what gets allocated: check it before anything else. */
            if ((rc = dip_limits_check_dims(lim, "webp", r->cw, r->ch, err)) != 0)
                return rc;
        } else if (memcmp(c, "ANMF", 4) == 0) {
            if (r->anim == 0) {
                if (size < 16)
                    return dip_err_set(err, DIP_ECORRUPT, "webp: short ANMF chunk (%zu bytes)",
                                       size);
                r->anmf = pos + 8;
                r->anmf_size = size;
                r->anmf_end = pos + 8 + padded;
            }
            r->anim = 1;
            if (r->frames >= DIP_MAX(lim->max_frames, 1))
                return dip_err_set(err, DIP_ELIMIT,
                                   "webp: more than %d animation frames exceeds the limit "
                                   "max_frames=%d",
                                   DIP_MAX(lim->max_frames, 1), lim->max_frames);
            r->frames++;
        } else if (memcmp(c, "EXIF", 4) == 0 && r->exif == NULL) {
            r->exif = c + 8;
            r->exif_len = size;
            r->meta += size;
        } else if (memcmp(c, "dipC", 4) == 0 && size >= 1) {
            r->dip_channels = c[8];
            r->meta += size;
        } else if (memcmp(c, "VP8 ", 4) != 0 && memcmp(c, "VP8L", 4) != 0 &&
                   memcmp(c, "ALPH", 4) != 0 && memcmp(c, "ANIM", 4) != 0) {
            r->meta += size; /* ICCP, XMP, EXIF after the first, unknown chunks */
        }
        if (r->meta > lim->max_metadata_bytes)
            return dip_err_set(err, DIP_ELIMIT,
                               "webp: metadata chunks (%llu bytes so far, at "
                               "'%.4s') exceed the limit max_metadata_bytes=%zu",
                               (unsigned long long)r->meta, (const char *)c,
                               lim->max_metadata_bytes);
        pos += 8 + padded;
    }
    if (r->ext && (r->flags & ANIMATION_FLAG) && !r->anim)
        return dip_err_set(err, DIP_ECORRUPT, "webp: animation flag set but no ANMF frame");
    if (r->frames == 0)
        r->frames = 1;
    return 0;
}

/* Header facts: dimensions (canvas for animations), channels, lossless, orientation. For an
 * animation, *fr receives the first frame's rectangle. */
static int header(const uint8_t *buf, size_t len, const struct dip_limits *lim, struct riff *r,
                  struct frame *fr, struct dip_image_info *info, struct dip_err *err)
{
    WebPBitstreamFeatures f;
    VP8StatusCode s;
    int rc = walk(buf, len, lim, r, err);

    if (rc)
        return rc;
    memset(fr, 0, sizeof(*fr));
    if (r->anim) {
        const uint8_t *a = buf + r->anmf;
        if (!r->ext)
            return dip_err_set(err, DIP_ECORRUPT, "webp: ANMF chunk without VP8X header");
        fr->x = 2LL * le24(a);
        fr->y = 2LL * le24(a + 3);
        fr->w = (long long)le24(a + 6) + 1;
        fr->h = (long long)le24(a + 9) + 1;
        if (fr->x + fr->w > r->cw || fr->y + fr->h > r->ch)
            return dip_err_set(err, DIP_ECORRUPT,
                               "webp: first frame %lldx%lld at (%lld,%lld) "
                               "lies outside the %lldx%lld canvas",
                               fr->w, fr->h, fr->x, fr->y, r->cw, r->ch);
        s = WebPGetFeatures(a + 16, r->anmf_size - 16, &f);
        if (s != VP8_STATUS_OK)
            return status_err(s, "in the first frame's header", err);
        if (f.width != fr->w || f.height != fr->h)
            return dip_err_set(err, DIP_ECORRUPT,
                               "webp: first frame bitstream is %dx%d, its "
                               "ANMF header says %lldx%lld",
                               f.width, f.height, fr->w, fr->h);
        info->width = (int)DIP_MIN(r->cw, 1LL << 30);
        info->height = (int)DIP_MIN(r->ch, 1LL << 30);
        rc = dip_limits_check_dims(lim, "webp", r->cw, r->ch, err);
        /* Canvas outside the first frame is transparent. */
        info->channels =
            (f.has_alpha || (r->flags & ALPHA_FLAG) || fr->w != r->cw || fr->h != r->ch) ? 4 : 3;
    } else {
        s = WebPGetFeatures(buf, r->total, &f);
        if (s != VP8_STATUS_OK)
            return status_err(s, "in the header", err);
        info->width = f.width;
        info->height = f.height;
        rc = dip_limits_check_dims(lim, "webp", f.width, f.height, err);
        info->channels = f.has_alpha ? 4 : 3;
        /* A gray or gray+alpha image dip wrote as lossless RGB(A) decodes to its channels. */
        if (f.format == 2 && (r->dip_channels == 1 || r->dip_channels == 2) &&
            (r->dip_channels == 2) == (f.has_alpha != 0))
            info->channels = r->dip_channels;
    }
    if (rc)
        return rc;
    info->lossless = f.format == 2;
    info->bit_depth = 8;
    info->frames = r->frames;
    info->orientation = r->exif ? dip__exif_orientation(r->exif, r->exif_len) : 1;
    if (info->orientation < 1 || info->orientation > 8)
        info->orientation = 1;
    snprintf(info->color, sizeof(info->color), "%s",
             info->channels <= 2 ? "gray"
             : f.format == 2     ? "rgb"
                                 : "ycbcr");
    return 0;
}

static int webp_probe(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                      struct dip_image_info *info, struct dip_err *err)
{
    struct riff r;
    struct frame fr;

    return header(buf, len, lim, &r, &fr, info, err);
}

/* Decodes one bitstream (bare chunks or a whole RIFF file) into w x h pixels at `dst`. */
static int decode_into(const uint8_t *data, size_t size, int ch, uint8_t *dst, size_t stride, int w,
                       int h, int threads, struct dip_err *err)
{
    WebPDecoderConfig cfg;
    VP8StatusCode s;

    if (!WebPInitDecoderConfig(&cfg))
        return dip_err_set(err, DIP_EINTERNAL, "webp: libwebp version mismatch");
    cfg.output.colorspace = ch == 4 ? MODE_RGBA : MODE_RGB;
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = dst;
    cfg.output.u.RGBA.stride = (int)stride;
    cfg.output.u.RGBA.size = stride * (size_t)(h - 1) + (size_t)w * (size_t)ch;
    /* libwebp's worker thread only when the caller lends this decode more than one thread (a
     * batch already runs one decode per core). */
    cfg.options.use_threads = threads > 1;
    s = WebPDecode(data, size, &cfg);
    WebPFreeDecBuffer(&cfg.output); /* no-op for external memory, but keeps the contract */
    if (s == VP8_STATUS_OK && (cfg.output.width != w || cfg.output.height != h))
        return dip_err_set(err, DIP_ECORRUPT, "webp: decoded %dx%d, header said %dx%d",
                           cfg.output.width, cfg.output.height, w, h);
    return s == VP8_STATUS_OK ? 0 : status_err(s, "while decoding", err);
}

/* Gray or gray+alpha (dip's dipC chunk): decoded as RGB(A), then each pixel must be gray. */
static int decode_gray(const uint8_t *data, size_t size, struct dip_view *v, int threads,
                       struct dip_err *err)
{
    int ch = v->channels == 2 ? 4 : 3, rc;
    size_t stride = (size_t)v->width * (size_t)ch;
    uint8_t *tmp = dip_malloc(stride * (size_t)v->height);

    if (tmp == NULL)
        return dip_err_set(err, DIP_ENOMEM, "webp: out of memory decoding %dx%d", v->width,
                           v->height);
    rc = decode_into(data, size, ch, tmp, stride, v->width, v->height, threads, err);
    for (int y = 0; rc == 0 && y < v->height; y++) {
        const uint8_t *s = tmp + (size_t)y * stride;
        uint8_t *d = v->data + (size_t)y * v->stride;
        for (int x = 0; x < v->width; x++, s += ch, d += v->channels) {
            if (s[0] != s[1] || s[0] != s[2]) {
                rc = dip_err_set(err, DIP_ECORRUPT,
                                 "webp: the dipC chunk says gray but pixel (%d,%d) is not", x, y);
                break;
            }
            d[0] = s[0];
            if (v->channels == 2)
                d[1] = s[3];
        }
    }
    dip_free(tmp);
    return rc;
}

static int webp_decode(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                       const struct dip_decode_opts *opts, dip_image **out,
                       struct dip_image_info *info, struct dip_err *err)
{
    struct riff r;
    struct frame fr;
    dip_image *img = NULL;
    WebPDemuxer *dmux = NULL;
    WebPIterator it;
    int have_it = 0, rc;
    struct dip_view v;

    if ((rc = header(buf, len, lim, &r, &fr, info, err)) != 0)
        goto out;
    if ((rc = dip_image_new(info->width, info->height, info->channels, &img)) != 0) {
        rc = dip_err_set(err, rc, "webp: cannot allocate a %dx%d image", info->width, info->height);
        goto out;
    }
    v = dip_image_view(img);
    if (!r.anim && v.channels <= 2) {
        rc = decode_gray(buf, r.total, &v, dip_pool_threads(opts->pool), err);
        goto done;
    }
    if (!r.anim) {
        rc = decode_into(buf, r.total, v.channels, v.data, v.stride, v.width, v.height,
                         dip_pool_threads(opts->pool), err);
        goto done;
    }
    /* The demuxer sees the file only up to the end of the first frame. */
    {
        WebPData d = {buf, r.anmf_end};
        WebPDemuxState st;
        dmux = WebPDemuxPartial(&d, &st);
        if (dmux == NULL || st == WEBP_DEMUX_PARSE_ERROR) {
            rc = dip_err_set(err, DIP_ECORRUPT, "webp: the demuxer rejects the container");
            goto out;
        }
        if (!WebPDemuxGetFrame(dmux, 1, &it)) {
            rc = dip_err_set(err, DIP_ECORRUPT, "webp: the demuxer finds no first frame");
            goto out;
        }
        have_it = 1;
        if (!it.complete || it.x_offset != fr.x || it.y_offset != fr.y || it.width != fr.w ||
            it.height != fr.h) {
            rc = dip_err_set(err, DIP_ECORRUPT, "webp: first frame incomplete or inconsistent");
            goto out;
        }
    }
    /* First frame over a transparent canvas: blending and disposal do not matter yet. */
    memset(v.data, 0, v.stride * (size_t)v.height);
    rc = decode_into(it.fragment.bytes, it.fragment.size, v.channels,
                     v.data + (size_t)fr.y * v.stride + (size_t)fr.x * (size_t)v.channels, v.stride,
                     (int)fr.w, (int)fr.h, dip_pool_threads(opts->pool), err);
done:
    if (rc)
        goto out;
    *out = img;
    img = NULL;
out:
    if (have_it)
        WebPDemuxReleaseIterator(&it);
    WebPDemuxDelete(dmux);
    dip_image_unref(img);
    return rc;
}

/* ---- Encoding ---- */

static const char *enc_error(WebPEncodingError e)
{
    switch (e) {
    case VP8_ENC_ERROR_OUT_OF_MEMORY:
        return "out of memory";
    case VP8_ENC_ERROR_BITSTREAM_OUT_OF_MEMORY:
        return "out of memory for the bitstream";
    case VP8_ENC_ERROR_BAD_DIMENSION:
        return "bad dimensions";
    case VP8_ENC_ERROR_PARTITION0_OVERFLOW:
        return "partition 0 overflow (lower the quality)";
    case VP8_ENC_ERROR_PARTITION_OVERFLOW:
        return "partition overflow";
    case VP8_ENC_ERROR_FILE_TOO_BIG:
        return "file too big";
    default:
        return "encoder error";
    }
}

static void put_le(uint8_t *p, uint32_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Lossless output keeps the channel count through a decode: with alpha (2, 4 channels) the
 * VP8L header's alpha_is_used bit is set even when every pixel is opaque (libwebp clears it
 * then), and gray (1, 2) goes into the extended format with a "dipC" chunk holding the channel
 * count, which dip's decoder honours (other decoders skip unknown chunks and show RGB(A)). *out
 * is dip_malloc'ed. */
static int keep_channels(const WebPMemoryWriter *wr, int w, int h, int ch, uint8_t **out,
                         size_t *out_len, struct dip_err *err)
{
    const uint8_t *m = wr->mem;
    size_t vlen, n, o = 0;
    uint8_t *p;

    if (wr->size < 25 || memcmp(m + 12, "VP8L", 4) != 0 || m[20] != 0x2f)
        return dip_err_set(err, DIP_EINTERNAL, "webp: libwebp wrote no simple lossless file");
    vlen = le32(m + 16);
    if (vlen > wr->size - 20)
        return dip_err_set(err, DIP_EINTERNAL, "webp: libwebp's VP8L chunk is cut short");
    n = ch >= 3 ? wr->size : 12 + 18 + 8 + vlen + (vlen & 1) + 10;
    p = dip_malloc(n);
    if (p == NULL)
        return dip_err_set(err, DIP_ENOMEM, "webp: out of memory for %zu output bytes", n);
    if (ch >= 3) {
        memcpy(p, m, n);
        p[24] |= 0x10; /* alpha_is_used: bit 28 of the 32 header bits after the signature */
    } else {
        memcpy(p, "RIFF", 4);
        put_le(p + 4, (uint32_t)(n - 8), 4);
        memcpy(p + 8, "WEBPVP8X", 8);
        put_le(p + 16, 10, 4);
        memset(p + 20, 0, 4);
        p[20] = ch == 2 ? ALPHA_FLAG : 0;
        put_le(p + 24, (uint32_t)(w - 1), 3);
        put_le(p + 27, (uint32_t)(h - 1), 3);
        o = 30;
        memcpy(p + o, m + 12, 8 + vlen);
        if (ch == 2)
            p[o + 12] |= 0x10;
        o += 8 + vlen;
        if (vlen & 1)
            p[o++] = 0;
        memcpy(p + o, "dipC", 4);
        put_le(p + o + 4, 2, 4);
        p[o + 8] = (uint8_t)ch;
        p[o + 9] = 0;
        o += 10;
        DIP_ASSERT(o == n);
    }
    *out = p;
    *out_len = n;
    return 0;
}

/* Lossy (opts->quality) or lossless (opts->webp_lossless). WebP has no gray: gray and gray+alpha
 * expand to RGB and RGBA. Lossless keeps the colour of fully transparent pixels (exact), so a
 * lossless round trip is byte-exact. */
static int webp_encode(const dip_image *img, const struct dip_encode_opts *opts, uint8_t **out,
                       size_t *out_len, struct dip_err *err)
{
    struct dip_view v = dip_image_view(img);
    int alpha = v.channels == 2 || v.channels == 4, och = alpha ? 4 : 3;
    uint8_t *tmp = NULL;
    const uint8_t *src = v.data;
    size_t stride = v.stride;
    WebPConfig cfg;
    WebPPicture pic;
    WebPMemoryWriter wr;
    int rc = 0, pic_init = 0, ok;

    WebPMemoryWriterInit(&wr);
    if (v.width > WEBP_MAX_SIDE || v.height > WEBP_MAX_SIDE) {
        rc = dip_err_set(err, DIP_EFORMAT,
                         "webp: %dx%d exceeds WebP's maximum of %d pixels "
                         "per side",
                         v.width, v.height, WEBP_MAX_SIDE);
        goto out;
    }
    if (!WebPConfigInit(&cfg) || !WebPPictureInit(&pic)) {
        rc = dip_err_set(err, DIP_EINTERNAL, "webp: libwebp version mismatch");
        goto out;
    }
    pic_init = 1;
    if (opts->webp_lossless) {
        /* Preset 4 of 0..9 (method 3, effort 50): on photographs (skimage's astronaut, the
         * 12-MP benchmark photo) as small as libwebp's default preset 6, in about half the time
         * on the large one. */
        if (!WebPConfigLosslessPreset(&cfg, 4)) {
            rc = dip_err_set(err, DIP_EINTERNAL, "webp: lossless preset refused");
            goto out;
        }
        cfg.exact = 1;
    } else {
        cfg.quality = (float)DIP_CLAMP(opts->quality, 0, 100);
        /* Method 2 of 0..6 (libwebp's default is 4): on the 12-MP benchmark photo at q90 the
         * same size (1999430 bytes against 1999196), 0.18 dB lower PSNR, half the time. See
         * docs/formats.md for the table. */
        cfg.method = 2;
    }
    /* libwebp's own worker thread (analysis and alpha alongside the main pass; the bytes do not
     * change) when the caller lends this encode more than one thread. */
    cfg.thread_level = dip_pool_threads(opts->pool) > 1;
    if (!WebPValidateConfig(&cfg)) {
        rc = dip_err_set(err, DIP_EINVAL, "webp: invalid encoder settings (quality %d)",
                         opts->quality);
        goto out;
    }
    if (v.channels <= 2) {
        stride = (size_t)v.width * (size_t)och;
        tmp = dip_malloc(stride * (size_t)v.height);
        if (tmp == NULL) {
            rc = dip_err_set(err, DIP_ENOMEM, "webp: out of memory expanding gray to RGB");
            goto out;
        }
        for (int y = 0; y < v.height; y++) {
            const uint8_t *s = v.data + (size_t)y * v.stride;
            uint8_t *d = tmp + (size_t)y * stride;
            for (int x = 0; x < v.width; x++, s += v.channels, d += och) {
                d[0] = d[1] = d[2] = s[0];
                if (alpha)
                    d[3] = s[1];
            }
        }
        src = tmp;
    }
    pic.width = v.width;
    pic.height = v.height;
    pic.use_argb = cfg.lossless;
    pic.writer = WebPMemoryWrite;
    pic.custom_ptr = &wr;
    ok = alpha ? WebPPictureImportRGBA(&pic, src, (int)stride)
               : WebPPictureImportRGB(&pic, src, (int)stride);
    if (!ok) {
        rc = dip_err_set(err, DIP_ENOMEM, "webp: out of memory importing the picture");
        goto out;
    }
    if (!WebPEncode(&cfg, &pic)) {
        rc = dip_err_set(err,
                         pic.error_code == VP8_ENC_ERROR_OUT_OF_MEMORY ||
                                 pic.error_code == VP8_ENC_ERROR_BITSTREAM_OUT_OF_MEMORY
                             ? DIP_ENOMEM
                             : DIP_EINTERNAL,
                         "webp: encoding failed: %s", enc_error(pic.error_code));
        goto out;
    }
    if (opts->webp_lossless && v.channels != 3) {
        rc = keep_channels(&wr, v.width, v.height, v.channels, out, out_len, err);
        goto out;
    }
    *out = dip_malloc(wr.size ? wr.size : 1);
    if (*out == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "webp: out of memory for %zu output bytes", wr.size);
        goto out;
    }
    memcpy(*out, wr.mem, wr.size);
    *out_len = wr.size;
out:
    if (pic_init)
        WebPPictureFree(&pic);
    WebPMemoryWriterClear(&wr);
    dip_free(tmp);
    return rc;
}

static void webp_version(char *buf, size_t len)
{
    int v = WebPGetDecoderVersion();

    snprintf(buf, len, "libwebp %d.%d.%d", (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
}

const struct dip__codec dip__codec_webp = {
    .format = DIP_FORMAT_WEBP,
    .probe = webp_probe,
    .decode = webp_decode,
    .encode = webp_encode,
    .version = webp_version,
};
