/* SPDX-License-Identifier: MIT */
/* The filter and edge kernels called directly, without the planner: the test pads the image
 * itself (as OpenCV's borderInterpolate), runs an op's tile on the whole image and on random
 * sub-tiles, and compares with naive reference implementations written from the definitions
 * (window mean with exact rounding, sorted-window median, 2-D kernel sums). Also parameter
 * checks and out-of-memory paths. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dip/dip.h"
#include "test.h"

struct img {
    int w, h, ch;
    uint8_t *p;
};

static uint32_t rng_state = 12345;

static uint32_t rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

static struct img img_new(int w, int h, int ch)
{
    struct img m = {w, h, ch, calloc((size_t)w * (size_t)h * (size_t)ch, 1)};
    ASSERT(m.p != NULL);
    return m;
}

/* Noise over a smooth ramp, with a few flat patches (ties for medians and edges). */
static struct img img_rand(int w, int h, int ch)
{
    struct img m = img_new(w, h, ch);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * ch; x++) {
            int v = (x * 3 + y * 5) % 200 + (int)(rnd() % 56);
            if ((x / 8 + y / 8) % 5 == 0)
                v = 100;
            m.p[(size_t)y * (size_t)(w * ch) + (size_t)x] = (uint8_t)v;
        }
    return m;
}

static uint8_t *px(const struct img *m, int x, int y)
{
    return m->p + ((size_t)y * (size_t)m->w + (size_t)x) * (size_t)m->ch;
}

static int border(int p, int len, enum dip_edge e)
{
    if (p >= 0 && p < len)
        return p;
    if (e == DIP_EDGE_REPLICATE || len == 1)
        return p < 0 ? 0 : len - 1;
    while (p < 0 || p >= len)
        p = p < 0 ? -p : 2 * (len - 1) - p;
    return p;
}

/* Pixel (x, y) of `m` with the op's border outside. */
static int at(const struct img *m, int x, int y, int c, enum dip_edge e)
{
    return px(m, border(x, m->w, e), border(y, m->h, e))[c];
}

static void *args_for(const char *text, const struct dip_op **op, int ch)
{
    dip_pipeline *p = NULL;
    struct dip_err err = {0};
    void *args;

    ASSERT_OK(dip_pipeline_parse(text, &p, &err));
    *op = dip_pipeline_op(p, 0);
    args = malloc((*op)->args_size);
    ASSERT(args != NULL);
    memcpy(args, dip_pipeline_args(p, 0), (*op)->args_size);
    dip_pipeline_free(p);
    if ((*op)->prepare)
        ASSERT_OK((*op)->prepare(args, ch, &err));
    return args;
}

/* Runs the op's tile for output rect r of `m`, with the input padded by the test. */
static int run_tile(const struct dip_op *op, const void *args, const struct img *m,
                    struct dip_rect r, struct img *out)
{
    struct dip_halo h = {0, 0, 0, 0};
    struct img in;
    struct dip_tile t;
    int rc, och = out->ch;

    op->halo(args, &h);
    in = img_new(r.w + h.left + h.right, r.h + h.top + h.bottom, m->ch);
    for (int y = 0; y < in.h; y++)
        for (int x = 0; x < in.w; x++)
            for (int c = 0; c < m->ch; c++)
                px(&in, x, y)[c] = (uint8_t)at(m, r.x - h.left + x, r.y - h.top + y, c, op->edge);
    t.in = (struct dip_view){in.p, in.w, in.h, in.ch, (size_t)in.w * (size_t)in.ch};
    t.out = (struct dip_view){px(out, r.x, r.y), r.w, r.h, och, (size_t)out->w * (size_t)och};
    t.in_rect = (struct dip_rect){r.x - h.left, r.y - h.top, in.w, in.h};
    t.out_rect = r;
    t.in_width = t.out_width = m->w;
    t.in_height = t.out_height = m->h;
    rc = op->tile(args, &t);
    free(in.p);
    return rc;
}

/* The op on the whole image, then on random tiles: every tile must give the same bytes. */
static struct img run_op(const char *text, const struct img *m, int och)
{
    const struct dip_op *op;
    void *args = args_for(text, &op, m->ch);
    struct img out = img_new(m->w, m->h, och), again = img_new(m->w, m->h, och);

    ASSERT_OK(run_tile(op, args, m, (struct dip_rect){0, 0, m->w, m->h}, &out));
    for (int y = 0; y < m->h;) {
        int th = 1 + (int)(rnd() % 9);
        th = th > m->h - y ? m->h - y : th;
        for (int x = 0; x < m->w;) {
            int tw = 1 + (int)(rnd() % 13);
            tw = tw > m->w - x ? m->w - x : tw;
            ASSERT_OK(run_tile(op, args, m, (struct dip_rect){x, y, tw, th}, &again));
            x += tw;
        }
        y += th;
    }
    if (memcmp(out.p, again.p, (size_t)m->w * (size_t)m->h * (size_t)och) != 0)
        DIP_TEST_FAIL("%s on %dx%dx%d: tiles differ from the whole image", text, m->w, m->h, m->ch);
    free(again.p);
    free(args);
    return out;
}

static void expect_equal(const char *what, const struct img *m, const struct img *got,
                         const struct img *want)
{
    size_t n = (size_t)got->w * (size_t)got->h * (size_t)got->ch;
    for (size_t i = 0; i < n; i++)
        if (got->p[i] != want->p[i])
            DIP_TEST_FAIL("%s on %dx%dx%d: byte %zu (x %zu, y %zu) is %d, expected %d", what, m->w,
                          m->h, m->ch, i, (i / (size_t)got->ch) % (size_t)got->w,
                          i / ((size_t)got->ch * (size_t)got->w), got->p[i], want->p[i]);
}

static const int shapes[][2] = {{1, 1}, {1, 9}, {11, 1}, {2, 3}, {17, 13}, {40, 29}};

TEST(box_matches_exact_mean)
{
    static const int sizes[] = {1, 3, 5, 7, 9, 11, 13, 15, 21};
    for (size_t s = 0; s < DIP_COUNTOF(shapes); s++)
        for (int ch = 1; ch <= 4; ch++)
            for (size_t k = 0; k < DIP_COUNTOF(sizes); k++) {
                struct img m = img_rand(shapes[s][0], shapes[s][1], ch), want, got;
                int r = sizes[k] / 2, area = sizes[k] * sizes[k];
                char text[64];
                snprintf(text, sizeof(text), "box(size=%d)", sizes[k]);
                got = run_op(text, &m, ch);
                want = img_new(m.w, m.h, ch);
                for (int y = 0; y < m.h; y++)
                    for (int x = 0; x < m.w; x++)
                        for (int c = 0; c < ch; c++) {
                            int sum = 0;
                            for (int j = -r; j <= r; j++)
                                for (int i = -r; i <= r; i++)
                                    sum += at(&m, x + i, y + j, c, DIP_EDGE_REFLECT101);
                            px(&want, x, y)[c] = (uint8_t)((2 * sum + area) / (2 * area));
                        }
                expect_equal(text, &m, &got, &want);
                free(m.p);
                free(want.p);
                free(got.p);
            }
}

/* Every window sum of a narrow box (size <= 13) rounds as exact division: images whose window
 * sums sweep 0 .. 255 area. */
TEST(box_rounding_every_sum)
{
    for (int k = 3; k <= 13; k += 2) {
        int area = k * k;
        for (int base = 0; base < 256; base++) {
            struct img m = img_new(k, k, 1), got;
            char text[64];
            /* base everywhere, one more on the first `extra` pixels: all sums base*area+extra */
            for (int extra = 0; extra < area && base < 255; extra += 1 + (area / 7)) {
                for (int i = 0; i < area; i++)
                    m.p[i] = (uint8_t)(base + (i < extra));
                snprintf(text, sizeof(text), "box(size=%d)", k);
                got = run_op(text, &m, 1);
                {
                    int sum = base * area + extra;
                    int want = (2 * sum + area) / (2 * area);
                    /* The centre window of a k x k image is the image itself. */
                    ASSERT_EQ_INT(px(&got, k / 2, k / 2)[0], want);
                }
                free(got.p);
            }
            free(m.p);
        }
    }
}

static int cmp_u8(const void *a, const void *b)
{
    return *(const uint8_t *)a - *(const uint8_t *)b;
}

TEST(median_matches_sorted_window)
{
    static const int sizes[] = {1, 3, 5, 7, 9};
    /* The last shape spans several 512-value chunks of the networks. */
    static const int mshapes[][2] = {{1, 1}, {1, 9}, {11, 1}, {2, 3}, {17, 13}, {40, 29}, {701, 3}};
    uint8_t win[81];
    for (size_t s = 0; s < DIP_COUNTOF(mshapes); s++)
        for (int ch = 1; ch <= 4; ch++)
            for (size_t k = 0; k < DIP_COUNTOF(sizes); k++) {
                struct img m = img_rand(mshapes[s][0], mshapes[s][1], ch), want, got;
                int r = sizes[k] / 2;
                char text[64];
                snprintf(text, sizeof(text), "median(size=%d)", sizes[k]);
                got = run_op(text, &m, ch);
                want = img_new(m.w, m.h, ch);
                for (int y = 0; y < m.h; y++)
                    for (int x = 0; x < m.w; x++)
                        for (int c = 0; c < ch; c++) {
                            int n = 0;
                            for (int j = -r; j <= r; j++)
                                for (int i = -r; i <= r; i++)
                                    win[n++] = (uint8_t)at(&m, x + i, y + j, c, DIP_EDGE_REPLICATE);
                            qsort(win, (size_t)n, 1, cmp_u8);
                            px(&want, x, y)[c] = win[n / 2];
                        }
                expect_equal(text, &m, &got, &want);
                free(m.p);
                free(want.p);
                free(got.p);
            }
}

/* The 3x3 and 5x5 networks on windows of few distinct values (many ties, every order). */
TEST(median_networks_on_ties)
{
    uint8_t win[25];
    for (int k = 3; k <= 5; k += 2) {
        for (int trial = 0; trial < 3000; trial++) {
            struct img m = img_new(k, k, 1), got;
            char text[32];
            for (int i = 0; i < k * k; i++)
                win[i] = m.p[i] = (uint8_t)(rnd() % (1 + trial % 4) * 60);
            snprintf(text, sizeof(text), "median(size=%d)", k);
            got = run_op(text, &m, 1);
            qsort(win, (size_t)(k * k), 1, cmp_u8);
            ASSERT_EQ_INT(px(&got, k / 2, k / 2)[0], win[k * k / 2]);
            free(m.p);
            free(got.p);
        }
    }
}

TEST(gaussian_binomial_kernels)
{
    /* sigma=0, size 3 and 5: OpenCV's tables are binomial (its 7-tap table is not). */
    static const int tab[2][5] = {{1, 2, 1}, {1, 4, 6, 4, 1}};
    static const int shift[2] = {4, 8};
    for (int t = 0; t < 2; t++) {
        int k = 3 + 2 * t, r = k / 2;
        for (size_t s = 0; s < DIP_COUNTOF(shapes); s++) {
            struct img m = img_rand(shapes[s][0], shapes[s][1], 3), want, got;
            char text[64];
            snprintf(text, sizeof(text), "gaussian(size=%d)", k);
            got = run_op(text, &m, 3);
            want = img_new(m.w, m.h, 3);
            for (int y = 0; y < m.h; y++)
                for (int x = 0; x < m.w; x++)
                    for (int c = 0; c < 3; c++) {
                        int sum = 0;
                        for (int j = -r; j <= r; j++)
                            for (int i = -r; i <= r; i++)
                                sum += tab[t][i + r] * tab[t][j + r] *
                                       at(&m, x + i, y + j, c, DIP_EDGE_REFLECT101);
                        px(&want, x, y)[c] = (uint8_t)((sum + (1 << (shift[t] - 1))) >> shift[t]);
                    }
            expect_equal(text, &m, &got, &want);
            free(m.p);
            free(want.p);
            free(got.p);
        }
    }
}

/* Any kernel sums to exactly 1: a flat image stays flat; and it is symmetric: a mirrored image
 * gives the mirrored result. */
TEST(gaussian_flat_and_symmetric)
{
    static const char *texts[] = {"gaussian(size=9)", "gaussian(size=0, sigma=3.3)",
                                  "gaussian(size=5, sigma=0.4)", "gaussian(size=31, sigma=9)",
                                  "sharpen(sigma=2)"};
    for (size_t t = 0; t < DIP_COUNTOF(texts); t++) {
        struct img flat = img_new(23, 19, 2), m = img_rand(23, 19, 1), mir = img_new(23, 19, 1);
        struct img a, b;
        memset(flat.p, 201, 23 * 19 * 2);
        a = run_op(texts[t], &flat, 2);
        for (int i = 0; i < 23 * 19 * 2; i++)
            ASSERT_EQ_INT(a.p[i], 201);
        free(a.p);
        for (int y = 0; y < 19; y++)
            for (int x = 0; x < 23; x++)
                px(&mir, 22 - x, y)[0] = px(&m, x, y)[0];
        a = run_op(texts[t], &m, 1);
        b = run_op(texts[t], &mir, 1);
        for (int y = 0; y < 19; y++)
            for (int x = 0; x < 23; x++)
                ASSERT_EQ_INT(px(&a, x, y)[0], px(&b, 22 - x, y)[0]);
        free(a.p);
        free(b.p);
        free(flat.p);
        free(m.p);
        free(mir.p);
    }
}

TEST(sobel_matches_naive)
{
    static const int sm[4][7] = {{0, 1, 0}, {1, 2, 1}, {1, 4, 6, 4, 1}, {1, 6, 15, 20, 15, 6, 1}};
    static const int dv[4][7] = {
        {-1, 0, 1}, {-1, 0, 1}, {-1, -2, 0, 2, 1}, {-1, -4, -5, 0, 5, 4, 1}};
    for (int size = 1; size <= 7; size += 2) {
        int ki = size / 2, taps = size == 1 ? 3 : size, r = taps / 2;
        for (size_t s = 0; s < DIP_COUNTOF(shapes); s++) {
            struct img m = img_rand(shapes[s][0], shapes[s][1], 1), want, got;
            char text[64];
            snprintf(text, sizeof(text), "sobel(size=%d)", size);
            got = run_op(text, &m, 1);
            want = img_new(m.w, m.h, 1);
            for (int y = 0; y < m.h; y++)
                for (int x = 0; x < m.w; x++) {
                    int gx = 0, gy = 0, mag;
                    for (int j = -r; j <= r; j++)
                        for (int i = -r; i <= r; i++) {
                            int v = at(&m, x + i, y + j, 0, DIP_EDGE_REFLECT101);
                            gx += dv[ki][i + r] * sm[ki][j + r] * v;
                            gy += sm[ki][i + r] * dv[ki][j + r] * v;
                        }
                    mag = abs(gx) + abs(gy);
                    px(&want, x, y)[0] = (uint8_t)(mag > 255 ? 255 : mag);
                }
            expect_equal(text, &m, &got, &want);
            free(m.p);
            free(want.p);
            free(got.p);
        }
    }
}

/* canny's tile: a vertical step gives one column of strong edge pixels, a flat image none. */
TEST(canny_step_and_flat)
{
    struct img m = img_new(20, 12, 3), got;
    for (int y = 0; y < 12; y++)
        for (int x = 0; x < 20; x++)
            memset(px(&m, x, y), x < 9 ? 10 : 240, 3);
    got = run_op("canny", &m, 1);
    for (int y = 0; y < 12; y++)
        for (int x = 0; x < 20; x++)
            if (px(&got, x, y)[0] != 0 && x != 8 && x != 9)
                DIP_TEST_FAIL("edge pixel at %d,%d away from the step", x, y);
    for (int y = 0; y < 12; y++)
        ASSERT_EQ_INT(px(&got, 8, y)[0] + px(&got, 9, y)[0], 255); /* one of the two, strong */
    free(got.p);
    memset(m.p, 90, 20 * 12 * 3);
    got = run_op("canny", &m, 1);
    for (int i = 0; i < 20 * 12; i++)
        ASSERT_EQ_INT(got.p[i], 0);
    free(got.p);
    free(m.p);
}

/* canny's global part keeps weak pixels connected to strong ones, through weak pixels only. */
TEST(canny_hysteresis)
{
    const struct dip_op *op = dip_op_find("canny");
    /* S strong, w weak, . none */
    static const char *map[] = {"S.w.....", ".w...w..", "w....ww.", "......wS", "ww......"};
    uint8_t in[5 * 8], out[5 * 8];
    struct dip_view vi = {in, 8, 5, 1, 8}, vo = {out, 8, 5, 1, 8};
    static const char *want[] = {"X.X.....", ".X...X..", "X....XX.", "......XX", "........"};
    void *args = malloc(op->args_size);

    ASSERT(args != NULL);
    dip_op_args_default(op, args);
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 8; x++)
            in[y * 8 + x] = map[y][x] == 'S' ? 255 : map[y][x] == 'w' ? 128 : 0;
    ASSERT_OK(op->global(args, &vi, &vo));
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 8; x++)
            ASSERT_EQ_INT(out[y * 8 + x], want[y][x] == 'X' ? 255 : 0);
    free(args);
}

TEST(bad_parameters)
{
    static const char *bad[] = {
        "box(size=4)",   "median(size=2)",  "gaussian(size=0, sigma=0)",    "gaussian(size=6)",
        "sobel(size=2)", "sharpen(size=4)", "bilateral(d=0, sigma_space=9)"};
    for (size_t i = 0; i < DIP_COUNTOF(bad); i++) {
        dip_pipeline *p = NULL;
        struct dip_err err = {0};
        const struct dip_op *op;
        void *args;
        ASSERT_OK(dip_pipeline_parse(bad[i], &p, &err));
        op = dip_pipeline_op(p, 0);
        args = malloc(op->args_size);
        ASSERT(args != NULL);
        memcpy(args, dip_pipeline_args(p, 0), op->args_size);
        ASSERT_EQ_INT(op->prepare(args, 3, &err), DIP_EINVAL);
        ASSERT_CONTAINS(err.msg, op->name);
        free(args);
        dip_pipeline_free(p);
    }
}

/* Every kernel that allocates scratch reports DIP_ENOMEM, and frees what it took. */
TEST(out_of_memory)
{
    static const char *texts[] = {"box",       "box(size=31)", "gaussian", "gaussian(size=15)",
                                  "bilateral", "sharpen",      "sobel",    "canny"};
    struct img m = img_rand(16, 9, 3);
    for (size_t i = 0; i < DIP_COUNTOF(texts); i++) {
        const struct dip_op *op;
        void *args = args_for(texts[i], &op, 3);
        struct img out = img_new(16, 9, 3);
        dip__alloc_fail_after(1);
        ASSERT_EQ_INT(run_tile(op, args, &m, (struct dip_rect){0, 0, 16, 9}, &out), DIP_ENOMEM);
        dip__alloc_fail_after(0);
        free(out.p);
        free(args);
    }
    free(m.p);
}
