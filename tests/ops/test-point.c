/* SPDX-License-Identifier: MIT */
/* Kernel-level tests of src/ops/color.c, stats.c and geometry.c, calling each op's hooks the way
 * the executor does: a point tile in place gives the bytes it gives out of place; the alpha (LUT)
 * and alpha-less (vector) paths of an op agree on the colour channels; geometric out_size()
 * errors name the field; need() stays inside the image and computing any sub-rectangle from
 * need(rect) alone reproduces the whole-image result. */
#include <stdint.h>
#include <stdlib.h>

#include "dip/dip.h"
#include "test.h"

static uint32_t seed = 12345;

static uint8_t rnd8(void)
{
    seed = seed * 1664525u + 1013904223u;
    return (uint8_t)(seed >> 24);
}

static uint8_t *noise(size_t n)
{
    uint8_t *p = malloc(n);

    ASSERT(p != NULL);
    for (size_t i = 0; i < n; i++)
        p[i] = rnd8();
    return p;
}

/* Parses "name(k=v, ...)" with the library's parser, prepares args for `ch` channels. */
static const struct dip_op *setup(const char *text, int ch, void *args)
{
    dip_pipeline *p = NULL;
    struct dip_err err = {0};
    const struct dip_op *op;
    const void *a;

    ASSERT_OK(dip_pipeline_parse(text, &p, &err));
    ASSERT_EQ_INT(dip_pipeline_length(p), 1);
    op = dip_pipeline_op(p, 0);
    a = dip_pipeline_args(p, 0);
    memcpy(args, a, op->args_size);
    if (op->prepare)
        ASSERT_OK(op->prepare(args, ch, &err));
    dip_pipeline_free(p);
    return op;
}

static struct dip_tile point_tile(uint8_t *in, uint8_t *out, int w, int h, int ch, int och)
{
    struct dip_tile t = {0};

    t.in = (struct dip_view){in, w, h, ch, (size_t)w * (size_t)ch};
    t.out = (struct dip_view){out, w, h, och, (size_t)w * (size_t)och};
    t.in_rect = t.out_rect = (struct dip_rect){0, 0, w, h};
    t.in_width = t.out_width = w;
    t.in_height = t.out_height = h;
    return t;
}

/* Runs a point or statistic op on a w x h x ch buffer into out (och channels). */
static void run_point(const struct dip_op *op, void *args, uint8_t *in, uint8_t *out, int w, int h,
                      int ch)
{
    int och = op->out_channels ? op->out_channels(args, ch) : ch;
    struct dip_tile t = point_tile(in, out, w, h, ch, och);

    if (op->kind == DIP_OP_STAT) {
        void *acc = calloc(1, op->stat_size);
        ASSERT(acc != NULL);
        op->stat_tile(args, &t.in, acc);
        ASSERT_OK(op->stat_finish(args, acc, w, h, ch));
        free(acc);
    }
    ASSERT_OK(op->tile(args, &t));
}

static const char *const point_ops[] = {"invert",
                                        "linear",
                                        "linear(alpha=0.3, beta=-7.25)",
                                        "brightness",
                                        "brightness(delta=-99)",
                                        "gray",
                                        "threshold",
                                        "threshold(t=10, max=77, invert=true)",
                                        "hsv",
                                        "hsv(h=-33, s=41, v=-9)",
                                        "otsu",
                                        "equalize",
                                        "stretch(low=5, high=90)"};

TEST(inplace_equals_out_of_place)
{
    unsigned char args_a[8192], args_b[8192];

    for (size_t k = 0; k < DIP_COUNTOF(point_ops); k++) {
        for (int ch = 1; ch <= 4; ch++) {
            int w = 67, h = 9;
            size_t n = (size_t)w * (size_t)h * (size_t)ch;
            uint8_t *src = noise(n), *inplace = malloc(n), *out = malloc(n);
            const struct dip_op *op = setup(point_ops[k], ch, args_a);
            ASSERT(op->args_size <= sizeof(args_a) && inplace && out);
            setup(point_ops[k], ch, args_b);
            int och = op->out_channels ? op->out_channels(args_a, ch) : ch;
            memcpy(inplace, src, n);
            run_point(op, args_a, src, out, w, h, ch);
            if (och != ch) {
                free(src), free(inplace), free(out);
                continue; /* the executor never runs channel-changing ops in place */
            }
            run_point(op, args_b, inplace, inplace, w, h, ch);
            if (memcmp(out, inplace, n) != 0)
                DIP_TEST_FAIL("%s on %d channels: in-place result differs", point_ops[k], ch);
            free(src), free(inplace), free(out);
        }
    }
}

/* RGBA goes through per-channel LUTs or the RGBA kernels, RGB through the vector kernels (and
 * for stretch the arithmetic form of its LUT): the colour channels must agree for any
 * parameters, and alpha must come through untouched. */
TEST(alpha_paths_agree_with_rgb)
{
    unsigned char args3[8192], args4[8192];
    char text[128];

    for (int trial = 0; trial < 300; trial++) {
        int w = 1 + rnd8() % 40, h = 1 + rnd8() % 5;
        size_t np = (size_t)w * (size_t)h;
        switch (trial % 5) {
        case 4:
            snprintf(text, sizeof(text), "stretch(low=%d, high=%d)", rnd8() % 40, 60 + rnd8() % 41);
            break;
        case 0:
            snprintf(text, sizeof(text), "linear(alpha=%.4f, beta=%.3f)", (rnd8() - 128) / 16.0,
                     (rnd8() - 128) * 1.7);
            break;
        case 1:
            snprintf(text, sizeof(text), "brightness(delta=%d)", rnd8() - 128);
            break;
        case 2:
            snprintf(text, sizeof(text), "hsv(h=%d, s=%d, v=%d)", rnd8() % 361 - 180, rnd8() - 128,
                     rnd8() - 128);
            break;
        default:
            snprintf(text, sizeof(text), "equalize");
            break;
        }
        uint8_t *rgba = noise(np * 4), *rgb = malloc(np * 3), *o4 = malloc(np * 4),
                *o3 = malloc(np * 3);
        ASSERT(rgb && o4 && o3);
        for (size_t i = 0; i < np; i++)
            memcpy(rgb + 3 * i, rgba + 4 * i, 3);
        const struct dip_op *op = setup(text, 4, args4);
        setup(text, 3, args3);
        run_point(op, args4, rgba, o4, w, h, 4);
        run_point(op, args3, rgb, o3, w, h, 3);
        for (size_t i = 0; i < np; i++) {
            if (memcmp(o4 + 4 * i, o3 + 3 * i, 3) != 0 || o4[4 * i + 3] != rgba[4 * i + 3])
                DIP_TEST_FAIL("%s: RGBA pixel %zu (%d,%d,%d,%d) vs RGB (%d,%d,%d)", text, i,
                              o4[4 * i], o4[4 * i + 1], o4[4 * i + 2], o4[4 * i + 3], o3[3 * i],
                              o3[3 * i + 1], o3[3 * i + 2]);
        }
        free(rgba), free(rgb), free(o4), free(o3);
    }
}

static void expect_size_error(const char *text, int w, int h, const char *field)
{
    unsigned char args[256];
    const struct dip_op *op = setup(text, 3, args);
    struct dip_err err = {0};
    int ow = -1, oh = -1;

    ASSERT_EQ_INT(op->out_size(args, w, h, &ow, &oh, &err), DIP_EINVAL);
    ASSERT_CONTAINS(err.msg, field);
}

TEST(geometry_sizes_and_errors)
{
    unsigned char args[256];
    struct dip_err err = {0};
    int ow, oh;
    const struct dip_op *op;

    expect_size_error("crop(x=10)", 10, 5, "x=10");
    expect_size_error("crop(y=5)", 10, 5, "y=5");
    expect_size_error("crop(x=3, width=8)", 10, 5, "width=8");
    expect_size_error("crop(y=1, height=5)", 10, 5, "height=5");
    op = setup("crop(x=3, y=1, width=7)", 3, args);
    ASSERT_OK(op->out_size(args, 10, 5, &ow, &oh, &err));
    ASSERT_EQ_INT(ow, 7);
    ASSERT_EQ_INT(oh, 4);
    op = setup("rotate(angle=270)", 3, args);
    ASSERT_OK(op->out_size(args, 10, 5, &ow, &oh, &err));
    ASSERT_EQ_INT(ow, 5);
    ASSERT_EQ_INT(oh, 10);
    op = setup("resize(width=100)", 3, args);
    ASSERT_OK(op->out_size(args, 40, 30, &ow, &oh, &err));
    ASSERT_EQ_INT(ow, 100);
    ASSERT_EQ_INT(oh, 75);
    op = setup("resize(scale=0.01)", 3, args);
    ASSERT_OK(op->out_size(args, 40, 30, &ow, &oh, &err));
    ASSERT_EQ_INT(ow, 1); /* a derived side never rounds to nothing */
    ASSERT_EQ_INT(oh, 1);
    op = dip_op_find("resize");
    ASSERT(op != NULL);
    dip_op_args_default(op, args);
    ASSERT_OK(op->prepare(args, 3, &err));
    ASSERT_OK(op->out_size(args, 41, 30, &ow, &oh, &err));
    ASSERT_EQ_INT(ow, 21); /* default scale 0.5, rounded */
    ASSERT_EQ_INT(oh, 15);
}

/* For random output rectangles, need() lies inside the image, and the tile computed from the
 * pixels of need() alone equals that part of the whole-image result. */
TEST(geometry_need_reproduces_whole)
{
    static const char *const ops[] = {"resize(width=37, height=23, filter=area)",
                                      "resize(width=5, height=3, filter=area)",
                                      "resize(width=90, height=61, filter=area)",
                                      "resize(width=19, height=64, filter=linear)",
                                      "resize(width=70, height=70, filter=cubic)",
                                      "resize(width=1, height=1, filter=area)",
                                      "resize(width=1, height=2, filter=cubic)",
                                      "resize(scale=0.5)",
                                      "flip(axis=both)",
                                      "rotate(angle=90)",
                                      "rotate(angle=270)",
                                      "crop(x=4, y=3, width=9)"};
    unsigned char args[256];
    struct dip_err err = {0};

    for (size_t k = 0; k < DIP_COUNTOF(ops); k++) {
        for (int ch = 1; ch <= 4; ch++) {
            int iw = 45 + (int)k, ih = 33, ow, oh;
            uint8_t *in = noise((size_t)iw * (size_t)ih * (size_t)ch);
            const struct dip_op *op = setup(ops[k], ch, args);
            ASSERT_OK(op->out_size(args, iw, ih, &ow, &oh, &err));
            uint8_t *whole = malloc((size_t)ow * (size_t)oh * (size_t)ch);
            uint8_t *part = malloc((size_t)ow * (size_t)oh * (size_t)ch);
            ASSERT(whole && part);
            struct dip_tile t = {0};
            t.in = (struct dip_view){in, iw, ih, ch, (size_t)iw * (size_t)ch};
            t.out = (struct dip_view){whole, ow, oh, ch, (size_t)ow * (size_t)ch};
            t.in_rect = (struct dip_rect){0, 0, iw, ih};
            t.out_rect = (struct dip_rect){0, 0, ow, oh};
            t.in_width = iw, t.in_height = ih, t.out_width = ow, t.out_height = oh;
            ASSERT_OK(op->tile(args, &t));
            for (int trial = 0; trial < 40; trial++) {
                struct dip_rect r, need;
                r.x = rnd8() % ow;
                r.y = rnd8() % oh;
                r.w = 1 + rnd8() % (ow - r.x);
                r.h = 1 + rnd8() % (oh - r.y);
                op->need(args, iw, ih, r, &need);
                ASSERT(need.x >= 0 && need.y >= 0 && need.w >= 1 && need.h >= 1);
                ASSERT(need.x + need.w <= iw && need.y + need.h <= ih);
                /* need()'s pixels alone, in a buffer of their own, with the rest of the image
                 * poisoned so that reading past need() shows. */
                size_t nrow = (size_t)need.w * (size_t)ch;
                uint8_t *sub = malloc(nrow * (size_t)need.h);
                ASSERT(sub != NULL);
                for (int y = 0; y < need.h; y++)
                    memcpy(sub + (size_t)y * nrow,
                           in + (size_t)(need.y + y) * t.in.stride + (size_t)need.x * (size_t)ch,
                           nrow);
                struct dip_tile s = t;
                s.in = (struct dip_view){sub, need.w, need.h, ch, nrow};
                s.in_rect = need;
                s.out = (struct dip_view){part, r.w, r.h, ch, (size_t)r.w * (size_t)ch};
                s.out_rect = r;
                ASSERT_OK(op->tile(args, &s));
                free(sub);
                for (int y = 0; y < r.h; y++)
                    if (memcmp(part + (size_t)y * s.out.stride,
                               whole + (size_t)(r.y + y) * t.out.stride + (size_t)r.x * (size_t)ch,
                               (size_t)r.w * (size_t)ch) != 0)
                        DIP_TEST_FAIL("%s, %d channels: rect %d,%d %dx%d row %d differs", ops[k],
                                      ch, r.x, r.y, r.w, r.h, y);
            }
            free(in), free(whole), free(part);
        }
    }
}

/* The gray kernels (vector and scalar tails, RGB and RGBA) give OpenCV's formula at every width. */
TEST(gray_matches_formula_every_width)
{
    unsigned char args[256];

    for (int ch = 3; ch <= 4; ch++) {
        for (int w = 1; w <= 130; w++) {
            int h = 2;
            size_t np = (size_t)w * (size_t)h;
            uint8_t *in = noise(np * (size_t)ch), *out = malloc(np * 2), *th = malloc(np * 2);
            ASSERT(out && th);
            const struct dip_op *op = setup("gray", ch, args);
            run_point(op, args, in, out, w, h, ch);
            op = setup("threshold(t=100)", ch, args);
            run_point(op, args, in, th, w, h, ch);
            int och = ch == 3 ? 1 : 2;
            for (size_t i = 0; i < np; i++) {
                const uint8_t *p = in + i * (size_t)ch;
                int want = (p[0] * 9798 + p[1] * 19235 + p[2] * 3735 + 16384) >> 15;
                if (out[i * (size_t)och] != want)
                    DIP_TEST_FAIL("gray %d channels width %d pixel %zu: %d, want %d", ch, w, i,
                                  out[i * (size_t)och], want);
                if (th[i * (size_t)och] != (want > 100 ? 255 : 0))
                    DIP_TEST_FAIL("threshold %d channels width %d pixel %zu", ch, w, i);
                if (ch == 4 && (out[2 * i + 1] != p[3] || th[2 * i + 1] != p[3]))
                    DIP_TEST_FAIL("alpha lost, width %d pixel %zu", w, i);
            }
            free(in), free(out), free(th);
        }
    }
}
