/* SPDX-License-Identifier: MIT */
/* The two properties every decoder shares, written once for all formats: a file cut at any
 * length is refused with a message (never decoded, never read past its end), and an allocation
 * failing at any point gives DIP_ENOMEM with a message (never a crash, never a leak under ASan).
 * test-sweep.c runs them over every codec on files dip's own encoders write; the per-format tests
 * run them on the hand-made files only they can build (GIF disposal, TIFF tiles and pages, PNM in
 * ASCII, animated WebP, RLE BMP, CMYK JPEG, interlaced 16-bit PNG). Header-only (static
 * functions): each test is its own executable. */
#ifndef DIP_TEST_SWEEP_H
#define DIP_TEST_SWEEP_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dip/codec.h"
#include "test.h"

/* Every prefix of buf of length 0, step, 2*step, ... below len - tail_ok must be refused: probing
 * it must not crash, decoding it must fail with DIP_ECORRUPT or DIP_EFORMAT and a message, leaving
 * no image. `tail_ok` lets through the last prefixes that are themselves valid files (a cut in the
 * last number of an ASCII PNM). Returns the number of prefixes tried. */
static inline size_t sweep_truncations(const uint8_t *buf, size_t len, size_t step, size_t tail_ok)
{
    size_t tried = 0;

    ASSERT(step > 0);
    for (size_t n = 0; n + tail_ok < len; n += step) {
        struct dip_limits lim;
        struct dip_decode_opts o;
        struct dip_err err = {0};
        struct dip_image_info info;
        dip_image *img = NULL;
        int rc;
        /* A private copy of exactly n bytes, so that ASan sees any read past the end. */
        uint8_t *p = malloc(n ? n : 1);

        ASSERT(p != NULL);
        memcpy(p, buf, n);
        dip_limits_default(&lim);
        dip_decode_opts_default(&o);
        (void)dip_codec_probe(p, n, &lim, &info, &err);
        dip_err_clear(&err);
        rc = dip_codec_decode(p, n, &lim, &o, &img, &info, &err);
        if (rc == 0)
            DIP_TEST_FAIL("prefix of %zu of %zu bytes decoded without error", n, len);
        if (rc != DIP_ECORRUPT && rc != DIP_EFORMAT)
            DIP_TEST_FAIL("prefix of %zu of %zu bytes: %s (%s), not ECORRUPT or EFORMAT", n, len,
                          dip_err_name(rc), err.msg);
        ASSERT(img == NULL);
        ASSERT_EQ_INT(err.code, rc);
        ASSERT(err.msg[0] != '\0');
        free(p);
        tried++;
    }
    return tried;
}

/* One step of an out-of-memory sweep: 1 when the run succeeded (the failing allocation lay past
 * the last one), 0 when it failed as it must (DIP_ENOMEM with a message); anything else fails the
 * test. */
static inline int sweep_oom_done(long n, int rc, const struct dip_err *err)
{
    if (rc == 0)
        return 1;
    if (rc != DIP_ENOMEM)
        DIP_TEST_FAIL("allocation %ld failing gave %s (%s), not ENOMEM", n, dip_err_name(rc),
                      err->msg);
    ASSERT(err->msg[0] != '\0');
    return 0;
}

/* Out of memory at every allocation in turn (n = 1, 2, ...): decoding buf and, when `f` is not
 * DIP_FORMAT_UNKNOWN, encoding the result as `f` must fail with DIP_ENOMEM and a message, leaving
 * no image, until the failing allocation lies past the last one and the whole succeeds. Returns
 * the number of allocations the decode and encode make. */
static inline long sweep_oom(const uint8_t *buf, size_t len, dip_format f)
{
    long n;

    for (n = 1; n < 1000; n++) {
        struct dip_limits lim;
        struct dip_decode_opts o;
        struct dip_err err = {0};
        struct dip_image_info info;
        dip_image *img = NULL;
        uint8_t *out = NULL;
        size_t out_len = 0;
        int rc;

        dip_limits_default(&lim);
        dip_decode_opts_default(&o);
        dip__alloc_fail_after(n);
        rc = dip_codec_decode(buf, len, &lim, &o, &img, &info, &err);
        if (rc != 0)
            ASSERT(img == NULL);
        if (rc == 0 && f != DIP_FORMAT_UNKNOWN) {
            struct dip_encode_opts eo;
            dip_encode_opts_default(&eo);
            eo.format = f;
            rc = dip_codec_encode(img, &eo, &out, &out_len, &err);
            if (rc != 0)
                ASSERT(out == NULL);
        }
        dip__alloc_fail_after(0);
        dip_image_unref(img);
        dip_free(out);
        if (sweep_oom_done(n, rc, &err))
            break;
    }
    if (n >= 1000)
        DIP_TEST_FAIL("still failing with the 999th allocation failing");
    return n - 1;
}

/* The same for encoding `img` with `opts` alone. Returns the number of allocations it makes. */
static inline long sweep_oom_encode(const dip_image *img, const struct dip_encode_opts *opts)
{
    long n;

    for (n = 1; n < 1000; n++) {
        struct dip_err err = {0};
        uint8_t *out = NULL;
        size_t out_len = 0;
        int rc;

        dip__alloc_fail_after(n);
        rc = dip_codec_encode(img, opts, &out, &out_len, &err);
        dip__alloc_fail_after(0);
        dip_free(out);
        if (sweep_oom_done(n, rc, &err))
            break;
        ASSERT(out == NULL);
    }
    if (n >= 1000)
        DIP_TEST_FAIL("still failing with the 999th allocation failing");
    return n - 1;
}

#endif
