/* SPDX-License-Identifier: MIT */
/* Format-independent codec entry points: magic-byte sniffing, dispatch to one file per format,
 * the input byte limit, EXIF auto-rotation, option defaults, and atomic file output. The format
 * is never taken from a file name when decoding. */
#define _GNU_SOURCE /* sync_file_range */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "internal.h"

static const struct dip__codec *const codecs[] = {
    NULL, /* keeps the array non-empty whatever is built in */
#ifdef DIP_WITH_PNG
    &dip__codec_png,
#endif
#ifdef DIP_WITH_JPEG
    &dip__codec_jpeg,
#endif
#ifdef DIP_WITH_WEBP
    &dip__codec_webp,
#endif
#ifdef DIP_WITH_TIFF
    &dip__codec_tiff,
#endif
#ifdef DIP_WITH_GIF
    &dip__codec_gif,
#endif
#ifdef DIP_WITH_BMP
    &dip__codec_bmp,
#endif
#ifdef DIP_WITH_PNM
    &dip__codec_pnm,
#endif
};

static const struct {
    const char *name, *ext;
} fmtnames[DIP_FORMAT_COUNT] = {
    [DIP_FORMAT_UNKNOWN] = {"unknown", ""}, [DIP_FORMAT_PNG] = {"png", "png"},
    [DIP_FORMAT_JPEG] = {"jpeg", "jpg"},    [DIP_FORMAT_WEBP] = {"webp", "webp"},
    [DIP_FORMAT_TIFF] = {"tiff", "tif"},    [DIP_FORMAT_GIF] = {"gif", "gif"},
    [DIP_FORMAT_BMP] = {"bmp", "bmp"},      [DIP_FORMAT_PNM] = {"pnm", "pnm"},
};

static const struct dip__codec *find_codec(dip_format f)
{
    for (size_t i = 1; i < sizeof(codecs) / sizeof(codecs[0]); i++)
        if (codecs[i]->format == f)
            return codecs[i];
    return NULL;
}

const char *dip_format_name(dip_format f)
{
    return (unsigned)f < DIP_FORMAT_COUNT ? fmtnames[f].name : "unknown";
}

const char *dip_format_ext(dip_format f)
{
    return (unsigned)f < DIP_FORMAT_COUNT ? fmtnames[f].ext : "";
}

dip_format dip_format_from_name(const char *name)
{
    static const struct {
        const char *alias;
        dip_format f;
    } aliases[] = {
        {"png", DIP_FORMAT_PNG},   {"jpg", DIP_FORMAT_JPEG},  {"jpeg", DIP_FORMAT_JPEG},
        {"jpe", DIP_FORMAT_JPEG},  {"webp", DIP_FORMAT_WEBP}, {"tif", DIP_FORMAT_TIFF},
        {"tiff", DIP_FORMAT_TIFF}, {"gif", DIP_FORMAT_GIF},   {"bmp", DIP_FORMAT_BMP},
        {"pnm", DIP_FORMAT_PNM},   {"pgm", DIP_FORMAT_PNM},   {"ppm", DIP_FORMAT_PNM},
        {"pbm", DIP_FORMAT_PNM},
    };

    if (name == NULL)
        return DIP_FORMAT_UNKNOWN;
    if (name[0] == '.')
        name++;
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (strcasecmp(aliases[i].alias, name) == 0)
            return aliases[i].f;
    return DIP_FORMAT_UNKNOWN;
}

dip_format dip_format_from_path(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');

    return dot ? dip_format_from_name(dot + 1) : DIP_FORMAT_UNKNOWN;
}

int dip_format_can_encode(dip_format f)
{
    const struct dip__codec *c = find_codec(f);
    return c != NULL && c->encode != NULL;
}

dip_format dip_codec_sniff(const void *vbuf, size_t len)
{
    const uint8_t *b = vbuf;

    if (len >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0)
        return DIP_FORMAT_PNG;
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        return DIP_FORMAT_JPEG;
    if (len >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        return DIP_FORMAT_WEBP;
    if (len >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0 ||
                     memcmp(b, "II+\0", 4) == 0 || memcmp(b, "MM\0+", 4) == 0))
        return DIP_FORMAT_TIFF;
    if (len >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0))
        return DIP_FORMAT_GIF;
    if (len >= 2 && b[0] == 'B' && b[1] == 'M')
        return DIP_FORMAT_BMP;
    if (len >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7')
        return DIP_FORMAT_PNM;
    return DIP_FORMAT_UNKNOWN;
}

void dip_decode_opts_default(struct dip_decode_opts *o)
{
    o->autorotate = 1;
    o->pool = NULL;
}

void dip_encode_opts_default(struct dip_encode_opts *o)
{
    o->format = DIP_FORMAT_UNKNOWN;
    o->quality = 90;
    o->subsampling = 420;
    o->png_level = 6;
    o->webp_lossless = 0;
    o->pool = NULL;
    o->sink = NULL;
    o->sink_ud = NULL;
}

static int check_input(const void *buf, size_t len, const struct dip_limits *lim,
                       const struct dip__codec **codec, struct dip_err *err)
{
    dip_format f;

    if (len == 0)
        return dip_err_set(err, DIP_ECORRUPT, "empty input (0 bytes)");
    if (len > lim->max_input_bytes)
        return dip_err_set(err, DIP_ELIMIT,
                           "input of %zu bytes exceeds the limit max_input_bytes=%zu", len,
                           lim->max_input_bytes);
    f = dip_codec_sniff(buf, len);
    if (f == DIP_FORMAT_UNKNOWN)
        return dip_err_set(err, DIP_EFORMAT,
                           "not a recognised image format (magic bytes "
                           "match none of png, jpeg, webp, tiff, gif, bmp, pnm)");
    *codec = find_codec(f);
    if (*codec == NULL)
        return dip_err_set(err, DIP_EFORMAT, "%s: support not built in", dip_format_name(f));
    return 0;
}

int dip__codec_for_input(const void *buf, size_t len, const struct dip_limits *lim,
                         const struct dip__codec **codec, struct dip_err *err)
{
    return check_input(buf, len, lim, codec, err);
}

const struct dip__codec *dip__codec_find(dip_format f)
{
    return find_codec(f);
}

static void info_init(struct dip_image_info *info, dip_format f)
{
    memset(info, 0, sizeof(*info));
    info->format = f;
    info->frames = 1;
    info->orientation = 1;
    info->bit_depth = 8;
}

int dip_codec_probe(const void *buf, size_t len, const struct dip_limits *lim,
                    struct dip_image_info *info, struct dip_err *err)
{
    const struct dip__codec *c = NULL;
    int rc = check_input(buf, len, lim, &c, err);

    if (rc)
        return rc;
    info_init(info, c->format);
    return c->probe(buf, len, lim, info, err);
}

int dip_codec_decode(const void *buf, size_t len, const struct dip_limits *lim,
                     const struct dip_decode_opts *opts, dip_image **out,
                     struct dip_image_info *info, struct dip_err *err)
{
    const struct dip__codec *c = NULL;
    struct dip_image_info local;
    struct dip_decode_opts defopts;
    int rc;

    *out = NULL;
    if (info == NULL)
        info = &local;
    if (opts == NULL) {
        dip_decode_opts_default(&defopts);
        opts = &defopts;
    }
    rc = check_input(buf, len, lim, &c, err);
    if (rc)
        return rc;
    info_init(info, c->format);
    rc = c->decode(buf, len, lim, opts, out, info, err);
    if (rc == 0 && opts->autorotate && info->orientation > 1 && info->orientation <= 8) {
        rc = dip__orient(out, info->orientation);
        if (rc) {
            dip_image_unref(*out);
            *out = NULL;
            return dip_err_set(err, rc, "%s: out of memory applying EXIF orientation",
                               dip_format_name(c->format));
        }
    }
    return rc;
}

int dip_codec_encode(const dip_image *img, const struct dip_encode_opts *opts, uint8_t **out,
                     size_t *out_len, struct dip_err *err)
{
    const struct dip__codec *c = find_codec(opts->format);

    *out = NULL;
    *out_len = 0;
    if (c == NULL || c->encode == NULL)
        return dip_err_set(err, DIP_EFORMAT,
                           "cannot encode format '%s' (encodable: png, jpeg, "
                           "webp, tiff, bmp, pnm)",
                           dip_format_name(opts->format));
    return c->encode(img, opts, out, out_len, err);
}

void dip_codec_versions(char *buf, size_t len)
{
    size_t n = 0;

    buf[0] = '\0';
    for (size_t i = 1; i < sizeof(codecs) / sizeof(codecs[0]) && n + 1 < len; i++) {
        char line[128] = "";
        if (codecs[i]->version == NULL)
            continue;
        codecs[i]->version(line, sizeof(line));
        if (line[0] == '\0')
            continue;
        snprintf(buf + n, len - n, "%s\n", line);
        n += strlen(buf + n);
    }
}

/* ---- Orientation ---- */

/* EXIF orientations: 2 mirror h, 3 rotate 180, 4 mirror v, 5 transpose, 6 rotate 90 CW,
 * 7 transverse, 8 rotate 270 CW. For output pixel (x, y) find the source pixel. */
int dip__orient(dip_image **img, int o)
{
    dip_image *src = *img, *dst = NULL;
    int w = dip_image_width(src), h = dip_image_height(src), ch = dip_image_channels(src);
    int swap = o >= 5;
    int ow = swap ? h : w, oh = swap ? w : h;
    struct dip_view s, d;
    int rc = dip_image_new(ow, oh, ch, &dst);

    if (rc)
        return rc;
    s = dip_image_view(src);
    d = dip_image_view(dst);
    for (int y = 0; y < oh; y++) {
        uint8_t *drow = d.data + (size_t)y * d.stride;
        for (int x = 0; x < ow; x++) {
            int sx, sy;
            switch (o) {
            case 2:
                sx = w - 1 - x;
                sy = y;
                break;
            case 3:
                sx = w - 1 - x;
                sy = h - 1 - y;
                break;
            case 4:
                sx = x;
                sy = h - 1 - y;
                break;
            case 5:
                sx = y;
                sy = x;
                break;
            case 6:
                sx = y;
                sy = h - 1 - x;
                break;
            case 7:
                sx = w - 1 - y;
                sy = h - 1 - x;
                break;
            case 8:
                sx = w - 1 - y;
                sy = x;
                break;
            default:
                sx = x;
                sy = y;
                break;
            }
            memcpy(drow + (size_t)x * (size_t)ch,
                   s.data + (size_t)sy * s.stride + (size_t)sx * (size_t)ch, (size_t)ch);
        }
    }
    dip_image_unref(src);
    *img = dst;
    return 0;
}

/* ---- Files ---- */

/* A large file is read in two halves at once (the second by a thread of its own): the copy out
 * of the page cache and the first touch of the buffer's pages are most of a large read, and a
 * job's other steps already use every core. Below this size one read() is as fast. */
#define READ_SPLIT_BYTES ((size_t)16 << 20)

struct part {
    int fd, err; /* err: errno, or -1 when the file ended early */
    uint8_t *p;
    size_t off, len;
};

static void *read_part(void *arg)
{
    struct part *r = arg;
    size_t got = 0;

    while (got < r->len) {
        ssize_t n = pread(r->fd, r->p + got, r->len - got, (off_t)(r->off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r->err = n < 0 ? errno : -1;
            break;
        }
        got += (size_t)n;
    }
    return NULL;
}

/* A large output file is written in parts of this size, each handed to writeback at once. */
#define WRITEBACK_BYTES ((size_t)4 << 20)

int dip_file_read(const char *path, size_t max_bytes, uint8_t **out, size_t *out_len,
                  struct dip_err *err)
{
    return dip_file_read_threads(path, max_bytes, 1, out, out_len, err);
}

int dip_file_read_threads(const char *path, size_t max_bytes, int threads, uint8_t **out,
                          size_t *out_len, struct dip_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    uint8_t *data = NULL;
    size_t size;
    int rc = 0;

    *out = NULL;
    *out_len = 0;
    if (fd < 0)
        return dip_err_set(err, errno == ENOENT ? DIP_ENOTFOUND : DIP_EIO, "%s: %s", path,
                           strerror(errno));
    if (fstat(fd, &st) != 0) {
        rc = dip_err_set(err, DIP_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = dip_err_set(err, DIP_EINVAL, "%s: not a regular file", path);
        goto out;
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        rc = dip_err_set(err, DIP_ELIMIT,
                         "%s: file of %lld bytes exceeds the limit max_input_bytes=%zu", path,
                         (long long)st.st_size, max_bytes);
        goto out;
    }
    size = (size_t)st.st_size;
    data = dip__malloc_large(size ? size : 1); /* huge pages for a large file; dip_free frees it */
    if (data == NULL) {
        rc = dip_err_set(err, DIP_ENOMEM, "%s: out of memory reading %zu bytes", path, size);
        goto out;
    }
    {
        struct part half[2] = {{fd, 0, data, 0, size}, {fd, 0, data, size, 0}};
        pthread_t th;
        int two = 0;

        if (size >= READ_SPLIT_BYTES && threads != 1) {
            half[0].len = size / 2;
            half[1] = (struct part){fd, 0, data + size / 2, size / 2, size - size / 2};
            two = pthread_create(&th, NULL, read_part, &half[1]) == 0;
            if (!two)
                half[0].len = size; /* no thread: one read of everything */
        }
        read_part(&half[0]);
        if (two)
            pthread_join(th, NULL);
        for (int i = 0; i < 2 && rc == 0; i++)
            if (half[i].err)
                rc = dip_err_set(err, DIP_EIO, "%s: read failed: %s", path,
                                 half[i].err > 0 ? strerror(half[i].err) : "file shrank");
        if (rc)
            goto out;
    }
    *out = data;
    *out_len = size;
    data = NULL;
out:
    dip_free(data);
    close(fd);
    return rc;
}

int dip_file_out_open(struct dip_file_out *f, const char *path, struct dip_err *err)
{
    memset(f, 0, sizeof(*f));
    f->fd = -1;
    f->path = path;
    if ((size_t)snprintf(f->tmp, sizeof(f->tmp), "%s.tmp.XXXXXX", path) >= sizeof(f->tmp))
        return dip_err_set(err, DIP_EINVAL, "%s: path too long", path);
    f->fd = mkstemp(f->tmp);
    if (f->fd < 0)
        return dip_err_set(err, DIP_EIO, "%s: cannot create a temporary file: %s", path,
                           strerror(errno));
    return 0;
}

int dip_file_out_write(struct dip_file_out *f, const void *data, size_t n, struct dip_err *err)
{
    const uint8_t *p = data;
    size_t done = 0;

    while (done < n) {
        ssize_t w = write(f->fd, p + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return dip_err_set(err, DIP_EIO, "%s: write failed: %s", f->path, strerror(errno));
        done += (size_t)w;
    }
    f->written += n;
#ifdef SYNC_FILE_RANGE_WRITE
    /* Start writing back what is written (no waiting): the fsync at the end then finds most of a
     * large file on its way to the disk. Only a hint; the fsync is what makes it durable. */
    if (f->written - f->flushed >= WRITEBACK_BYTES) {
        (void)sync_file_range(f->fd, (off_t)f->flushed, (off_t)(f->written - f->flushed),
                              SYNC_FILE_RANGE_WRITE);
        f->flushed = f->written;
    }
#endif
    return 0;
}

int dip_file_out_commit(struct dip_file_out *f, struct dip_err *err)
{
    int rc = 0;

    if (fchmod(f->fd, 0644) != 0)
        rc = dip_err_set(err, DIP_EIO, "%s: chmod failed: %s", f->path, strerror(errno));
    if (rc == 0 && fsync(f->fd) != 0)
        rc = dip_err_set(err, DIP_EIO, "%s: fsync failed: %s", f->path, strerror(errno));
    if (close(f->fd) != 0 && rc == 0)
        rc = dip_err_set(err, DIP_EIO, "%s: close failed: %s", f->path, strerror(errno));
    f->fd = -1;
    if (rc == 0 && rename(f->tmp, f->path) != 0)
        rc = dip_err_set(err, DIP_EIO, "%s: rename failed: %s", f->path, strerror(errno));
    if (rc)
        unlink(f->tmp);
    return rc;
}

void dip_file_out_abort(struct dip_file_out *f)
{
    if (f == NULL || f->fd < 0)
        return;
    close(f->fd);
    f->fd = -1;
    unlink(f->tmp);
}

int dip_file_write_atomic(const char *path, const void *data, size_t len, struct dip_err *err)
{
    struct dip_file_out f;
    const uint8_t *p = data;
    int rc = dip_file_out_open(&f, path, err);

    if (rc)
        return rc;
    /* In parts of WRITEBACK_BYTES, so that writeback starts while the rest is copied. */
    for (size_t done = 0; rc == 0 && done < len; done += DIP_MIN(len - done, WRITEBACK_BYTES))
        rc = dip_file_out_write(&f, p + done, DIP_MIN(len - done, WRITEBACK_BYTES), err);
    if (rc) {
        dip_file_out_abort(&f);
        return rc;
    }
    return dip_file_out_commit(&f, err);
}
