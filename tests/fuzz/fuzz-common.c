/* SPDX-License-Identifier: MIT */
/* One fuzz iteration (see fuzz.h): dip_codec_probe then dip_codec_decode with default limits
 * (also on a pool of two threads, and through the row decoder in pieces of 7 rows, which must
 * agree),
 * each result checked against the codec contract of include/dip/codec.h, every pixel read (so a
 * sanitizer sees a short buffer), everything freed. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

static void broken(const char *what, int rc, const struct dip_err *err)
{
    fprintf(stderr, "fuzz: codec contract broken: %s (rc %d %s, \"%s\")\n", what, rc,
            dip_err_name(rc), err ? err->msg : "");
    abort();
}

int dip_fuzz_one(const uint8_t *data, size_t size, dip_format want)
{
    struct dip_limits lim;
    struct dip_image_info pinfo, info;
    struct dip_err perr = {0}, err = {0};
    dip_image *img = NULL;
    int prc, rc;

    if (want != DIP_FORMAT_UNKNOWN && dip_codec_sniff(data, size) != want)
        return 0;
    dip_limits_default(&lim);
    prc = dip_codec_probe(data, size, &lim, &pinfo, &perr);
    if (prc < 0 || prc >= DIP_ERRNO_MAX)
        broken("probe returned an unknown code", prc, &perr);
    if (prc != 0 && perr.msg[0] == '\0')
        broken("probe failed without a message", prc, &perr);
    rc = dip_codec_decode(data, size, &lim, NULL, &img, &info, &err);
    if (rc < 0 || rc >= DIP_ERRNO_MAX)
        broken("decode returned an unknown code", rc, &err);
    /* The decoders' parallel paths (TIFF strips, JPEG bands) on a pool of two threads: the same
     * result code and the same pixels as the decode on the caller's thread. */
    {
        static dip_pool *pool;
        struct dip_decode_opts o;
        struct dip_err perr2 = {0};
        dip_image *img2 = NULL;
        int rc2;

        if (pool == NULL && dip_pool_new(2, &pool) != 0)
            abort();
        dip_decode_opts_default(&o);
        o.pool = pool;
        rc2 = dip_codec_decode(data, size, &lim, &o, &img2, NULL, &perr2);
        if (rc2 != rc && rc2 != DIP_ENOMEM && rc != DIP_ENOMEM)
            broken("decode on a pool gave another result code", rc2, &perr2);
        if (rc == 0 && rc2 == 0) {
            struct dip_view a = dip_image_view(img), b = dip_image_view(img2);
            if (!dip_view_equal(&a, &b))
                broken("decode on a pool gave other pixels", 0, NULL);
        }
        dip_image_unref(img2);
    }
    /* The row decoder (dip_decoder_*): success exactly when the whole decode succeeds, with the
     * same pixels. */
    {
        struct dip_err rerr = {0};
        dip_decoder *d = NULL;
        dip_image *rows = NULL;
        int rrc = dip_decoder_open(data, size, &lim, NULL, &d, NULL, &rerr), w, h, ch;

        if (rrc == 0) {
            dip_decoder_dims(d, &w, &h, &ch);
            rrc = dip_image_new(w, h, ch, &rows);
            for (int y = 0; rrc == 0 && y < h; y += 7) {
                struct dip_view v = dip_image_view(rows);
                struct dip_view piece =
                    dip_view_sub(&v, (struct dip_rect){0, y, w, h - y < 7 ? h - y : 7});
                rrc = dip_decoder_read_rows(d, &piece, &rerr);
            }
        }
        dip_decoder_free(d);
        if (rrc < 0 || rrc >= DIP_ERRNO_MAX)
            broken("row decoder returned an unknown code", rrc, &rerr);
        if (rrc != 0 && rerr.msg[0] == '\0')
            broken("row decoder failed without a message", rrc, &rerr);
        if ((rrc == 0) != (rc == 0) && rrc != DIP_ENOMEM && rc != DIP_ENOMEM)
            broken("row decoder and whole decode disagree", rrc ? rrc : rc, rrc ? &rerr : &err);
        if (rc == 0 && rrc == 0) {
            struct dip_view a = dip_image_view(img), b = dip_image_view(rows);
            if (a.width != b.width || a.height != b.height || a.channels != b.channels ||
                !dip_view_equal(&a, &b))
                broken("row decoder gave other pixels", 0, NULL);
        }
        dip_image_unref(rows);
    }
    if (rc != 0) {
        if (img != NULL)
            broken("decode failed but returned an image", rc, &err);
        if (err.msg[0] == '\0')
            broken("decode failed without a message", rc, &err);
        return 0;
    }
    if (img == NULL)
        broken("decode succeeded without an image", rc, &err);
    if (prc != 0)
        broken("decode succeeded where probe failed", prc, &perr);
    {
        struct dip_view v = dip_image_view(img);
        int swap = info.orientation >= 5 && info.orientation <= 8;
        unsigned sum = 0;
        if (v.channels < 1 || v.channels > 4)
            broken("decoded channel count outside 1..4", 0, NULL);
        if (info.width != pinfo.width || info.height != pinfo.height || info.format != pinfo.format)
            broken("probe and decode disagree on size or format", 0, NULL);
        if (v.width != (swap ? info.height : info.width) ||
            v.height != (swap ? info.width : info.height))
            broken("decoded size differs from the header's", 0, NULL);
        for (int y = 0; y < v.height; y++)
            for (size_t x = 0; x < (size_t)v.width * (size_t)v.channels; x++)
                sum += v.data[(size_t)y * v.stride + x];
        /* Keep the reads: the sum goes nowhere but the compiler cannot know. */
        __asm__ volatile("" : : "r"(sum));
    }
    dip_image_unref(img);
    return 0;
}
