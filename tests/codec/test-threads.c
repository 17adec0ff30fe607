/* SPDX-License-Identifier: MIT */
/* The PNG and JPEG decoders used from several threads at once: every concurrent decode must give
 * the pixels a lone decode gives (no shared mutable state in the codec files). Run it under TSan
 * (DIP_SANITIZE=thread) for the stronger check. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "codec-util.h"
#include "test.h"

#define NTHREADS 4
#define ROUNDS   25

struct input {
    struct bytes enc;
    dip_image *ref; /* decoded alone */
};

static struct input inputs[2];

static void *worker(void *arg)
{
    long bad = 0;

    (void)arg;
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < 2; i++) {
            dip_image *img = NULL;
            struct dip_err err = {0};
            struct dip_view a, b;
            if (decode_with(inputs[i].enc.p, inputs[i].enc.n, NULL, 1, &img, NULL, &err) != 0) {
                bad++;
                continue;
            }
            a = dip_image_view(img);
            b = dip_image_view(inputs[i].ref);
            if (!dip_view_equal(&a, &b))
                bad++;
            dip_image_unref(img);
        }
    return (void *)bad;
}

TEST(concurrent_decodes_match_a_lone_decode)
{
    int fmts[2] = {DIP_FORMAT_PNG, DIP_FORMAT_JPEG};
    pthread_t t[NTHREADS];

    for (int i = 0; i < 2; i++) {
        dip_image *src = make_image(97, 61, 3, 0);
        struct dip_encode_opts eo;
        struct dip_err err = {0};
        uint8_t *enc = NULL;
        size_t n = 0;
        dip_encode_opts_default(&eo);
        eo.format = fmts[i];
        ASSERT_OK(dip_codec_encode(src, &eo, &enc, &n, &err));
        memset(&inputs[i].enc, 0, sizeof(inputs[i].enc));
        bytes_put(&inputs[i].enc, enc, n);
        dip_free(enc);
        ASSERT_OK(
            decode_with(inputs[i].enc.p, inputs[i].enc.n, NULL, 1, &inputs[i].ref, NULL, &err));
        dip_image_unref(src);
    }
    for (int i = 0; i < NTHREADS; i++)
        ASSERT_EQ_INT(pthread_create(&t[i], NULL, worker, NULL), 0);
    for (int i = 0; i < NTHREADS; i++) {
        void *bad = NULL;
        pthread_join(t[i], &bad);
        ASSERT_EQ_INT((long)bad, 0);
    }
    for (int i = 0; i < 2; i++) {
        bytes_free(&inputs[i].enc);
        dip_image_unref(inputs[i].ref);
    }
}
