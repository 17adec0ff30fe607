/* SPDX-License-Identifier: MIT */
/* Point operations: each output pixel depends only on the same input pixel. */
#include <string.h>

#include "dip/op.h"
#include "kernel.h" /* -O3 and the AVX2 clone for the row loop */

/* ---- invert ---- */

DIP_HOT static void invert_row(const uint8_t *s, uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)~s[i];
}

static int invert_tile(const void *args, const struct dip_tile *t)
{
    (void)args;
    for (int y = 0; y < t->out.height; y++) {
        const uint8_t *s = t->in.data + (size_t)y * t->in.stride;
        uint8_t *d = t->out.data + (size_t)y * t->out.stride;
        invert_row(s, d, (size_t)t->out.width * (size_t)t->out.channels);
    }
    return 0;
}

const struct dip_op dip_op_invert = {
    .name = "invert",
    .version = 1,
    .summary = "Invert every channel: 255 - v (alpha too, as cv2.bitwise_not)",
    .doc = "out = 255 - in on every channel, alpha included. Same as cv2.bitwise_not(img).",
    .kind = DIP_OP_POINT,
    .args_size = 1,
    .tile = invert_tile,
};
