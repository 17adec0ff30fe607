/* SPDX-License-Identifier: MIT */
/* The sweep that catches halo bugs: every registered operation (with its defaults, on every
 * channel count it accepts) and pipelines mixing every kind of operation must give byte-identical
 * output for tile sizes 1, 2, 3, 7, 64, 257 and whole, and 1, 2 or 7 threads, on odd-sized
 * noise images including 1x1, 1xN and Nx1. */
#include <stdint.h>

#include "dip/dip.h"
#include "test.h"

static const int tiles[] = {0, 1, 2, 3, 7, 64, 257};
static const int thread_counts[] = {1, 2, 7};
static const int sizes[][2] = {{1, 1}, {13, 1}, {1, 17}, {31, 23}, {67, 45}};

static dip_pool *pools[3];

static dip_image *noise(int w, int h, int ch, uint32_t seed)
{
    dip_image *img = NULL;
    struct dip_view v;

    ASSERT_OK(dip_image_new(w, h, ch, &img));
    v = dip_image_view(img);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * ch; x++) {
            seed = seed * 1664525u + 1013904223u;
            /* Mix smooth structure with noise so edges and statistics are non-trivial. */
            v.data[(size_t)y * v.stride + (size_t)x] =
                (uint8_t)(((x * 7 + y * 5) & 0xff) / 2 + (seed >> 25));
        }
    return img;
}

/* Runs `text` on `in` for every tiling and thread count; returns the number of runs compared,
 * 0 when the pipeline refuses the input (consistently). */
static int check_invariance(const char *text, const dip_image *in)
{
    dip_pipeline *p = NULL;
    dip_image *ref = NULL;
    struct dip_err err = {0};
    struct dip_run_opts o = {0};
    int rc0, runs = 0;

    ASSERT_OK(dip_pipeline_parse(text, &p, &err));
    rc0 = dip_run_image(p, in, &o, &ref, &err);
    if (rc0 != 0) {
        ASSERT_EQ_INT(rc0, DIP_EINVAL); /* an op may refuse a channel count, nothing else */
        dip_pipeline_free(p);
        return 0;
    }
    for (size_t t = 0; t < DIP_COUNTOF(tiles); t++) {
        for (size_t k = 0; k < DIP_COUNTOF(thread_counts); k++) {
            dip_image *out = NULL;
            struct dip_view a, b;
            o.tile = tiles[t];
            o.pool = pools[k];
            ASSERT_OK(dip_run_image(p, in, &o, &out, &err));
            a = dip_image_view(ref);
            b = dip_image_view(out);
            if (!dip_view_equal(&a, &b)) {
                int bad = -1;
                for (int y = 0; y < a.height && bad < 0 && a.width == b.width &&
                                a.height == b.height && a.channels == b.channels;
                     y++)
                    for (int x = 0; x < a.width * a.channels; x++)
                        if (a.data[(size_t)y * a.stride + (size_t)x] !=
                            b.data[(size_t)y * b.stride + (size_t)x]) {
                            bad = y * 100000 + x / a.channels;
                            break;
                        }
                DIP_TEST_FAIL("'%s' on %dx%dx%d: tile %d, %d threads differs from the untiled "
                              "result (%dx%dx%d vs %dx%dx%d; first difference at row %d col %d)",
                              text, dip_image_width(in), dip_image_height(in),
                              dip_image_channels(in), tiles[t], thread_counts[k], a.width, a.height,
                              a.channels, b.width, b.height, b.channels,
                              bad < 0 ? -1 : bad / 100000, bad < 0 ? -1 : bad % 100000);
            }
            dip_image_unref(out);
            runs++;
        }
    }
    dip_image_unref(ref);
    dip_pipeline_free(p);
    return runs;
}

static void setup(void)
{
    for (size_t k = 0; k < DIP_COUNTOF(thread_counts); k++)
        ASSERT_OK(dip_pool_new(thread_counts[k], &pools[k]));
}

static void teardown(void)
{
    for (size_t k = 0; k < DIP_COUNTOF(thread_counts); k++)
        dip_pool_free(pools[k]);
}

TEST(every_op_every_tiling)
{
    setup();
    for (size_t i = 0; i < dip_op_count(); i++) {
        const struct dip_op *op = dip_op_at(i);
        int runs = 0, accepted = 0;
        for (int ch = 1; ch <= 4; ch++) {
            for (size_t s = 0; s < DIP_COUNTOF(sizes); s++) {
                dip_image *in = noise(sizes[s][0], sizes[s][1], ch, (uint32_t)(i * 31 + s));
                int r = check_invariance(op->name, in);
                runs += r;
                accepted += r > 0;
                dip_image_unref(in);
            }
        }
        printf("%-10s %5d tiled runs identical (%d inputs accepted)\n", op->name, runs, accepted);
        ASSERT(accepted > 0); /* every op takes some channel count */
    }
    teardown();
}

/* The first op of each kind, chained (e.g. point | stencil | stat | geometric | global), then the
 * same in reverse order: the stages, fusion and statistics must all be exact under tiling. */
TEST(mixed_pipelines_every_tiling)
{
    const char *firsts[5] = {0};
    char fwd[512] = "", rev[512] = "";
    int n = 0;

    setup();
    for (size_t i = 0; i < dip_op_count(); i++) {
        const struct dip_op *op = dip_op_at(i);
        if (firsts[op->kind] == NULL && strcmp(op->name, "crop") != 0) {
            firsts[op->kind] = op->name;
            n++;
        }
    }
    for (int k = 0; k < 5; k++) {
        if (firsts[k] == NULL)
            continue;
        strncat(fwd, fwd[0] ? " | " : "", sizeof(fwd) - strlen(fwd) - 1);
        strncat(fwd, firsts[k], sizeof(fwd) - strlen(fwd) - 1);
    }
    for (int k = 4; k >= 0; k--) {
        if (firsts[k] == NULL)
            continue;
        strncat(rev, rev[0] ? " | " : "", sizeof(rev) - strlen(rev) - 1);
        strncat(rev, firsts[k], sizeof(rev) - strlen(rev) - 1);
    }
    printf("kinds present: %d; pipelines '%s' and '%s'\n", n, fwd, rev);
    for (int ch = 1; ch <= 4; ch++) {
        for (size_t s = 3; s < DIP_COUNTOF(sizes); s++) {
            dip_image *in = noise(sizes[s][0], sizes[s][1], ch, (uint32_t)(ch * 7 + s));
            check_invariance(fwd, in);
            check_invariance(rev, in);
            dip_image_unref(in);
        }
    }
    teardown();
}
