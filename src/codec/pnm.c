/* SPDX-License-Identifier: MIT */
/* Netpbm images: PBM, PGM and PPM in their ASCII (P1-P3) and binary (P4-P6) forms, and PAM (P7),
 * decoded by a hand-written parser that walks a bounded cursor. Samples with any maxval up to
 * 65535 are rescaled to 8 bits with rounding, v8 = (v * 255 + maxval / 2) / maxval. The encoder
 * writes P5 (gray) or P6 (RGB); PNM has no alpha, so gray+alpha and RGBA lose their alpha. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "internal.h"

/* Any header number above this is absurd for every field; parsing saturates here so that the
 * limit check can name the (huge) value without overflowing. */
#define NUM_CAP 1000000000000ULL

struct hdr {
    int kind; /* 1..7 from the magic number */
    long long w, h;
    int depth; /* samples per pixel in the file: 1, 2, 3 or 4 */
    unsigned maxval;
    size_t data; /* offset of the first pixel byte */
};

struct cur {
    const uint8_t *p;
    size_t len, pos;
};

static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Skips whitespace and '#' comments (which run to the end of the line). */
static void skip_ws(struct cur *c)
{
    while (c->pos < c->len) {
        uint8_t ch = c->p[c->pos];
        if (is_space(ch)) {
            c->pos++;
        } else if (ch == '#') {
            while (c->pos < c->len && c->p[c->pos] != '\n' && c->p[c->pos] != '\r')
                c->pos++;
        } else {
            break;
        }
    }
}

/* Reads one unsigned decimal number after optional whitespace and comments. Returns 0 with the
 * value (saturated at NUM_CAP), 1 when the input ends first, 2 when the next byte is no digit. */
static int read_num(struct cur *c, unsigned long long *out)
{
    unsigned long long v = 0;
    size_t start;

    skip_ws(c);
    start = c->pos;
    while (c->pos < c->len && c->p[c->pos] >= '0' && c->p[c->pos] <= '9') {
        v = v * 10 + (unsigned)(c->p[c->pos] - '0');
        if (v > NUM_CAP)
            v = NUM_CAP;
        c->pos++;
    }
    if (c->pos == start)
        return c->pos >= c->len ? 1 : 2;
    *out = v;
    return 0;
}

static int num_field(struct cur *c, const char *field, unsigned long long *out, struct dip_err *err)
{
    int r = read_num(c, out);

    if (r == 1)
        return dip_err_set(err, DIP_ECORRUPT, "pnm: truncated header: %s missing", field);
    if (r == 2)
        return dip_err_set(err, DIP_ECORRUPT,
                           "pnm: bad header: %s is not a number (byte 0x%02x "
                           "at offset %zu)",
                           field, c->p[c->pos], c->pos);
    return 0;
}

/* Reads one PAM header word (at most cap-1 bytes kept) after whitespace and comments. */
static int read_word(struct cur *c, char *word, size_t cap)
{
    size_t n = 0;

    skip_ws(c);
    if (c->pos >= c->len)
        return 1;
    while (c->pos < c->len && !is_space(c->p[c->pos])) {
        if (n + 1 < cap)
            word[n++] = (char)c->p[c->pos];
        c->pos++;
    }
    word[n] = '\0';
    return 0;
}

static int parse_pam(struct cur *c, struct hdr *h, struct dip_err *err)
{
    unsigned long long depth = 0, maxval = 0, v;
    char word[32];
    int rc, seen_w = 0, seen_h = 0;

    for (;;) {
        if (read_word(c, word, sizeof(word)))
            return dip_err_set(err, DIP_ECORRUPT, "pnm: truncated PAM header: no ENDHDR");
        if (strcmp(word, "ENDHDR") == 0)
            break;
        if (strcmp(word, "TUPLTYPE") == 0) {
            /* Informative only: DEPTH says how many samples there are. */
            while (c->pos < c->len && c->p[c->pos] != '\n')
                c->pos++;
            continue;
        }
        if (strcmp(word, "WIDTH") == 0) {
            rc = num_field(c, "WIDTH", &v, err);
            h->w = (long long)v;
            seen_w = 1;
        } else if (strcmp(word, "HEIGHT") == 0) {
            rc = num_field(c, "HEIGHT", &v, err);
            h->h = (long long)v;
            seen_h = 1;
        } else if (strcmp(word, "DEPTH") == 0) {
            rc = num_field(c, "DEPTH", &depth, err);
        } else if (strcmp(word, "MAXVAL") == 0) {
            rc = num_field(c, "MAXVAL", &maxval, err);
        } else {
            return dip_err_set(err, DIP_ECORRUPT, "pnm: unknown PAM header field '%s'", word);
        }
        if (rc)
            return rc;
    }
    /* ENDHDR ends its line; the pixels start after the newline. */
    while (c->pos < c->len && c->p[c->pos] != '\n')
        c->pos++;
    if (c->pos >= c->len)
        return dip_err_set(err, DIP_ECORRUPT, "pnm: truncated PAM header after ENDHDR");
    c->pos++;
    if (!seen_w || !seen_h || depth == 0 || maxval == 0)
        return dip_err_set(err, DIP_ECORRUPT, "pnm: PAM header lacks %s",
                           !seen_w      ? "WIDTH"
                           : !seen_h    ? "HEIGHT"
                           : depth == 0 ? "DEPTH"
                                        : "MAXVAL");
    if (depth > 4)
        return dip_err_set(err, DIP_EFORMAT, "pnm: PAM DEPTH %llu not supported (1..4)", depth);
    if (maxval > 65535)
        return dip_err_set(err, DIP_ECORRUPT, "pnm: maxval %llu out of range 1..65535", maxval);
    h->depth = (int)depth;
    h->maxval = (unsigned)maxval;
    return 0;
}

static int parse_header(const uint8_t *buf, size_t len, struct hdr *h, struct dip_err *err)
{
    struct cur c = {buf, len, 2};
    unsigned long long v;
    int rc;

    memset(h, 0, sizeof(*h));
    if (len < 2 || buf[0] != 'P' || buf[1] < '1' || buf[1] > '7')
        return dip_err_set(err, DIP_EFORMAT, "pnm: bad magic number (want P1..P7)");
    h->kind = buf[1] - '0';
    if (h->kind == 7) {
        rc = parse_pam(&c, h, err);
        if (rc)
            return rc;
        h->data = c.pos;
        return 0;
    }
    if (len > 2 && !is_space(buf[2]) && buf[2] != '#')
        return dip_err_set(err, DIP_EFORMAT, "pnm: bad magic number (P%d followed by 0x%02x)",
                           h->kind, buf[2]);
    if ((rc = num_field(&c, "width", &v, err)) != 0)
        return rc;
    h->w = (long long)v;
    if ((rc = num_field(&c, "height", &v, err)) != 0)
        return rc;
    h->h = (long long)v;
    h->depth = (h->kind == 3 || h->kind == 6) ? 3 : 1;
    h->maxval = 1;
    if (h->kind != 1 && h->kind != 4) {
        if ((rc = num_field(&c, "maxval", &v, err)) != 0)
            return rc;
        if (v == 0 || v > 65535)
            return dip_err_set(err, DIP_ECORRUPT, "pnm: maxval %llu out of range 1..65535", v);
        h->maxval = (unsigned)v;
    }
    /* Binary formats: exactly one whitespace byte separates the header from the pixels.
     * ASCII formats: the pixel text follows, read_num skips the whitespace itself. */
    if (h->kind >= 4) {
        if (c.pos >= len)
            return dip_err_set(err, DIP_ECORRUPT, "pnm: truncated header: no pixel data");
        if (!is_space(buf[c.pos]))
            return dip_err_set(err, DIP_ECORRUPT,
                               "pnm: bad header: byte 0x%02x after the last "
                               "field instead of whitespace",
                               buf[c.pos]);
        c.pos++;
    }
    h->data = c.pos;
    return 0;
}

static int bits_of(unsigned maxval)
{
    int b = 0;

    while (maxval) {
        b++;
        maxval >>= 1;
    }
    return b;
}

static int check_and_fill(const struct hdr *h, const struct dip_limits *lim,
                          struct dip_image_info *info, struct dip_err *err)
{
    int rc = dip_limits_check_dims(lim, "pnm", h->w, h->h, err);

    if (rc)
        return rc;
    info->width = (int)h->w;
    info->height = (int)h->h;
    info->channels = h->depth;
    info->bit_depth = (h->kind == 1 || h->kind == 4) ? 1 : bits_of(h->maxval);
    info->frames = 1;
    info->orientation = 1;
    info->lossless = 1;
    snprintf(info->color, sizeof(info->color), "%s", h->depth >= 3 ? "rgb" : "gray");
    return 0;
}

static int pnm_probe(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                     struct dip_image_info *info, struct dip_err *err)
{
    struct hdr h;
    int rc = parse_header(buf, len, &h, err);

    if (rc)
        return rc;
    return check_and_fill(&h, lim, info, err);
}

/* ---- Pixel decoding ---- */

static inline uint8_t scale(unsigned v, unsigned maxval)
{
    return (uint8_t)((v * 255u + maxval / 2u) / maxval);
}

static int decode_ascii(const struct hdr *h, struct cur *c, uint8_t *px, size_t n,
                        struct dip_err *err)
{
    for (size_t i = 0; i < n; i++) {
        unsigned long long v;
        if (h->kind == 1) {
            /* PBM digits need no separator: "0110" is four pixels. 1 is black. */
            skip_ws(c);
            if (c->pos >= c->len)
                goto truncated;
            if (c->p[c->pos] != '0' && c->p[c->pos] != '1')
                return dip_err_set(err, DIP_ECORRUPT,
                                   "pnm: bad PBM pixel byte 0x%02x at offset "
                                   "%zu (want 0 or 1)",
                                   c->p[c->pos], c->pos);
            px[i] = c->p[c->pos] == '1' ? 0 : 255;
            c->pos++;
            continue;
        }
        int r = read_num(c, &v);
        if (r == 1)
            goto truncated;
        if (r == 2)
            return dip_err_set(err, DIP_ECORRUPT,
                               "pnm: bad ASCII sample byte 0x%02x at offset "
                               "%zu",
                               c->p[c->pos], c->pos);
        if (v > h->maxval)
            return dip_err_set(err, DIP_ECORRUPT,
                               "pnm: sample %llu exceeds maxval %u at offset "
                               "%zu",
                               v, h->maxval, c->pos);
        px[i] = scale((unsigned)v, h->maxval);
        continue;
    truncated:
        return dip_err_set(err, DIP_ECORRUPT,
                           "pnm: truncated pixel data: need %zu samples, "
                           "have %zu",
                           n, i);
    }
    return 0;
}

/* The common case (8-bit samples that are the pixels) is a copy of the file's bytes: in bands of
 * COPY_BAND bytes on the decode's pool, so that a large image's copy and first touch of its
 * pages are not one serial step of a job whose other steps run on every core. */
#define COPY_BAND ((size_t)4 << 20)

struct pcopy {
    const uint8_t *src;
    uint8_t *dst;
    size_t n;
};

static int copy_task(void *ud, size_t i, int thread)
{
    const struct pcopy *c = ud;
    size_t off = i * COPY_BAND;

    (void)thread;
    memcpy(c->dst + off, c->src + off, DIP_MIN(COPY_BAND, c->n - off));
    return 0;
}

static int decode_binary(const struct hdr *h, const uint8_t *src, uint8_t *px, int w, int hh,
                         dip_pool *pool, struct dip_err *err)
{
    size_t ns = (size_t)w * (size_t)h->depth; /* samples per row */

    if (h->kind == 4) {
        size_t rowbytes = ((size_t)w + 7) / 8;
        for (int y = 0; y < hh; y++) {
            const uint8_t *s = src + (size_t)y * rowbytes;
            uint8_t *d = px + (size_t)y * (size_t)w;
            for (int x = 0; x < w; x++)
                d[x] = (s[x >> 3] >> (7 - (x & 7))) & 1 ? 0 : 255;
        }
        return 0;
    }
    if (h->maxval == 255) {
        struct pcopy c = {src, px, ns * (size_t)hh};

        return dip_pool_for(c.n > COPY_BAND ? pool : NULL, (c.n + COPY_BAND - 1) / COPY_BAND,
                            copy_task, &c);
    }
    if (h->maxval < 256) {
        uint8_t lut[256];
        size_t n = ns * (size_t)hh;
        for (unsigned v = 0; v < 256; v++)
            lut[v] = v <= h->maxval ? scale(v, h->maxval) : 0;
        for (size_t i = 0; i < n; i++) {
            if (src[i] > h->maxval)
                return dip_err_set(err, DIP_ECORRUPT,
                                   "pnm: sample %u exceeds maxval %u at "
                                   "pixel row %zu",
                                   src[i], h->maxval, i / ns);
            px[i] = lut[src[i]];
        }
        return 0;
    }
    for (size_t i = 0, n = ns * (size_t)hh; i < n; i++) {
        unsigned v = (unsigned)src[2 * i] << 8 | src[2 * i + 1];
        if (v > h->maxval)
            return dip_err_set(err, DIP_ECORRUPT,
                               "pnm: sample %u exceeds maxval %u at pixel "
                               "row %zu",
                               v, h->maxval, i / ns);
        px[i] = scale(v, h->maxval);
    }
    return 0;
}

static int pnm_decode(const uint8_t *buf, size_t len, const struct dip_limits *lim,
                      const struct dip_decode_opts *opts, dip_image **out,
                      struct dip_image_info *info, struct dip_err *err)
{
    struct hdr h;
    dip_image *img = NULL;
    size_t samples, have, need;
    int rc, w, hh;

    if ((rc = parse_header(buf, len, &h, err)) != 0)
        goto out;
    if ((rc = check_and_fill(&h, lim, info, err)) != 0)
        goto out;
    w = info->width;
    hh = info->height;
    /* w, h and depth are bounded by the limits check, so these products cannot overflow on
     * 64-bit size_t; the checked helpers keep that true on 32-bit too. */
    if (dip_size_mul((size_t)w * (size_t)hh, (size_t)h.depth, &samples)) {
        rc = dip_err_set(err, DIP_ELIMIT, "pnm: %dx%d image too large", w, hh);
        goto out;
    }
    have = len - h.data;
    /* Check the pixel data can be there before allocating for it. */
    if (h.kind == 4)
        need = ((size_t)w + 7) / 8 * (size_t)hh;
    else if (h.kind >= 5)
        need = samples * (h.maxval > 255 ? 2u : 1u);
    else
        need = h.kind == 1 ? samples : samples * 2 - 1; /* digits, and separators for P2/P3 */
    if (have < need) {
        rc = dip_err_set(err, DIP_ECORRUPT, "pnm: truncated pixel data: need %s%zu bytes, have %zu",
                         h.kind <= 3 ? "at least " : "", need, have);
        goto out;
    }
    if ((rc = dip_image_new(w, hh, h.depth, &img)) != 0) {
        rc = dip_err_set(err, rc, "pnm: cannot allocate a %dx%d image", w, hh);
        goto out;
    }
    if (h.kind <= 3) {
        struct cur c = {buf, len, h.data};
        rc = decode_ascii(&h, &c, dip_image_view(img).data, samples, err);
    } else {
        rc = decode_binary(&h, buf + h.data, dip_image_view(img).data, w, hh,
                           opts ? opts->pool : NULL, err);
    }
    if (rc)
        goto out;
    *out = img;
    img = NULL;
out:
    dip_image_unref(img);
    return rc;
}

/* ---- Encoding ---- */

/* P5 for gray, P6 for RGB. PNM has no alpha channel: gray+alpha is written as P5 and RGBA as P6,
 * dropping the alpha samples (docs/formats.md says so). */
static int pnm_encode(const dip_image *img, const struct dip_encode_opts *opts, uint8_t **out,
                      size_t *out_len, struct dip_err *err)
{
    struct dip_view v = dip_image_view(img);
    int och = v.channels >= 3 ? 3 : 1;
    char head[64];
    int hn = snprintf(head, sizeof(head), "P%d\n%d %d\n255\n", och == 3 ? 6 : 5, v.width, v.height);
    size_t body, total;
    uint8_t *buf, *d;

    (void)opts;
    if (dip_size_mul((size_t)v.width * (size_t)och, (size_t)v.height, &body) ||
        dip_size_add(body, (size_t)hn, &total))
        return dip_err_set(err, DIP_ELIMIT, "pnm: %dx%d image too large to encode", v.width,
                           v.height);
    buf = dip_malloc(total);
    if (buf == NULL)
        return dip_err_set(err, DIP_ENOMEM, "pnm: out of memory for %zu output bytes", total);
    memcpy(buf, head, (size_t)hn);
    d = buf + hn;
    for (int y = 0; y < v.height; y++) {
        const uint8_t *s = v.data + (size_t)y * v.stride;
        if (v.channels == och) {
            memcpy(d, s, (size_t)v.width * (size_t)och);
            d += (size_t)v.width * (size_t)och;
            continue;
        }
        for (int x = 0; x < v.width; x++, s += v.channels)
            for (int k = 0; k < och; k++)
                *d++ = s[k];
    }
    *out = buf;
    *out_len = total;
    return 0;
}

const struct dip__codec dip__codec_pnm = {
    .format = DIP_FORMAT_PNM,
    .probe = pnm_probe,
    .decode = pnm_decode,
    .encode = pnm_encode,
    .version = NULL,
};
