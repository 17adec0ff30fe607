/* SPDX-License-Identifier: MIT */
/* The planner against naive references, with test operations of unusual shapes: stencils with
 * unequal halos under both border modes, a transposing geometric op, a statistic and a global op
 * with a tiled pre-pass. Border pixels must be those of OpenCV's borderInterpolate (REFLECT_101 and
 * REPLICATE, including repeated reflection on images smaller than the halo), and every tiling must
 * give the same bytes. Regression: unequal halos once made the padded buffer too small. */
#include <stdint.h>

#include "dip/dip.h"
#include "test.h"

/* ---- Test operations ---- */

struct sargs {
    int l, r, t, b;
};
static const struct dip_param sparams[] = {
    DIP_PARAM_INT(struct sargs, l, 0, 9, 1, "left"),
    DIP_PARAM_INT(struct sargs, r, 0, 9, 2, "right"),
    DIP_PARAM_INT(struct sargs, t, 0, 9, 3, "top"),
    DIP_PARAM_INT(struct sargs, b, 0, 9, 0, "bottom"),
};

static void shalo(const void *a, struct dip_halo *h)
{
    const struct sargs *s = a;
    *h = (struct dip_halo){s->l, s->r, s->t, s->b};
}

/* A position-weighted hash of the window, so any misplaced pixel changes the output. */
static uint8_t window_hash(const uint8_t *win, size_t stride, int ch, const struct sargs *s)
{
    unsigned acc = 0, k = 1;

    for (int dy = 0; dy <= s->t + s->b; dy++)
        for (int dx = 0; dx <= s->l + s->r; dx++, k++)
            acc += k * win[(size_t)dy * stride + (size_t)dx * (size_t)ch];
    return (uint8_t)(acc * 2654435761u >> 24);
}

static int stile(const void *a, const struct dip_tile *t)
{
    int ch = t->out.channels;

    for (int y = 0; y < t->out.height; y++)
        for (int x = 0; x < t->out.width; x++)
            for (int c = 0; c < ch; c++)
                t->out.data[(size_t)y * t->out.stride + (size_t)(x * ch + c)] =
                    window_hash(t->in.data + (size_t)y * t->in.stride + (size_t)(x * ch + c),
                                t->in.stride, ch, a);
    return 0;
}

static const struct dip_op op_sten = {.name = "t_sten",
                                      .version = 1,
                                      .summary = "test",
                                      .kind = DIP_OP_STENCIL,
                                      .args_size = sizeof(struct sargs),
                                      .params = sparams,
                                      .n_params = 4,
                                      .halo = shalo,
                                      .edge = DIP_EDGE_REFLECT101,
                                      .tile = stile};
static const struct dip_op op_stenr = {.name = "t_stenr",
                                       .version = 1,
                                       .summary = "test",
                                       .kind = DIP_OP_STENCIL,
                                       .args_size = sizeof(struct sargs),
                                       .params = sparams,
                                       .n_params = 4,
                                       .halo = shalo,
                                       .edge = DIP_EDGE_REPLICATE,
                                       .tile = stile};

static int tsize(const void *a, int w, int h, int *ow, int *oh, struct dip_err *e)
{
    (void)a;
    (void)e;
    *ow = h;
    *oh = w;
    return 0;
}

static void tneed(const void *a, int w, int h, struct dip_rect o, struct dip_rect *i)
{
    (void)a;
    (void)w;
    (void)h;
    *i = (struct dip_rect){o.y, o.x, o.h, o.w};
}

static int ttile(const void *a, const struct dip_tile *t)
{
    int ch = t->out.channels;

    (void)a;
    for (int y = 0; y < t->out.height; y++)
        for (int x = 0; x < t->out.width; x++) {
            int ix = t->out_rect.y + y - t->in_rect.x, iy = t->out_rect.x + x - t->in_rect.y;
            memcpy(t->out.data + (size_t)y * t->out.stride + (size_t)(x * ch),
                   t->in.data + (size_t)iy * t->in.stride + (size_t)(ix * ch), (size_t)ch);
        }
    return 0;
}

static const struct dip_op op_transp = {.name = "t_transp",
                                        .version = 1,
                                        .summary = "test",
                                        .kind = DIP_OP_GEOMETRIC,
                                        .args_size = 1,
                                        .out_size = tsize,
                                        .need = tneed,
                                        .tile = ttile};

struct hargs {
    unsigned lut[256];
};

static void hstat(const void *a, const struct dip_view *in, void *p)
{
    uint64_t *h = p;

    (void)a;
    for (int y = 0; y < in->height; y++)
        for (int x = 0; x < in->width * in->channels; x++)
            h[in->data[(size_t)y * in->stride + (size_t)x]]++;
}

static void hmerge(const void *a, void *acc, const void *p)
{
    uint64_t *x = acc;
    const uint64_t *y = p;

    (void)a;
    for (int i = 0; i < 256; i++)
        x[i] += y[i];
}

/* Maps v to the count of samples below v (mod 251): a whole-image statistic. */
static int hfinish(void *a, const void *acc, int w, int h, int c)
{
    struct hargs *s = a;
    const uint64_t *x = acc;
    uint64_t run = 0;

    (void)w;
    (void)h;
    (void)c;
    for (int i = 0; i < 256; i++) {
        s->lut[i] = (unsigned)(run % 251);
        run += x[i];
    }
    return 0;
}

static int hmap(const void *a, const struct dip_tile *t)
{
    const struct hargs *s = a;

    for (int y = 0; y < t->out.height; y++)
        for (int x = 0; x < t->out.width * t->out.channels; x++)
            t->out.data[(size_t)y * t->out.stride + (size_t)x] =
                (uint8_t)s->lut[t->in.data[(size_t)y * t->in.stride + (size_t)x]];
    return 0;
}

static const struct dip_op op_hist = {.name = "t_hist",
                                      .version = 1,
                                      .summary = "test",
                                      .kind = DIP_OP_STAT,
                                      .args_size = sizeof(struct hargs),
                                      .stat_size = 256 * sizeof(uint64_t),
                                      .stat_tile = hstat,
                                      .stat_merge = hmerge,
                                      .stat_finish = hfinish,
                                      .tile = hmap};

static int one(const void *a, int c)
{
    (void)a;
    (void)c;
    return 1;
}

static void ghalo(const void *a, struct dip_halo *h)
{
    (void)a;
    *h = (struct dip_halo){1, 1, 1, 1};
}

static int gpre(const void *a, const struct dip_tile *t)
{
    static const struct sargs s3 = {1, 1, 1, 1};
    int ch = t->in.channels;

    (void)a;
    for (int y = 0; y < t->out.height; y++)
        for (int x = 0; x < t->out.width; x++)
            t->out.data[(size_t)y * t->out.stride + (size_t)x] = window_hash(
                t->in.data + (size_t)y * t->in.stride + (size_t)(x * ch), t->in.stride, ch, &s3);
    return 0;
}

/* A running value along rows: each output depends on every earlier pixel. */
static int gglobal(const void *a, const struct dip_view *in, const struct dip_view *out)
{
    unsigned m = 0;

    (void)a;
    for (int y = 0; y < in->height; y++)
        for (int x = 0; x < in->width; x++) {
            unsigned v = in->data[(size_t)y * in->stride + (size_t)x];
            m = v > m ? v : (m * 7 + v) / 8;
            out->data[(size_t)y * out->stride + (size_t)x] = (uint8_t)m;
        }
    return 0;
}

static const struct dip_op op_glob = {.name = "t_glob",
                                      .version = 1,
                                      .summary = "test",
                                      .kind = DIP_OP_GLOBAL,
                                      .args_size = 1,
                                      .halo = ghalo,
                                      .edge = DIP_EDGE_REFLECT101,
                                      .tile = gpre,
                                      .pre_channels = one,
                                      .out_channels = one,
                                      .global = gglobal};

static const struct dip_op *const test_ops[] = {&op_sten, &op_stenr, &op_transp, &op_hist,
                                                &op_glob};

__attribute__((constructor)) static void register_ops(void)
{
    dip__ops_set_extra(test_ops, DIP_COUNTOF(test_ops));
}

/* ---- References ---- */

/* OpenCV's borderInterpolate, written out independently of the planner. */
static int ref_border(int p, int len, int replicate)
{
    if (replicate)
        return p < 0 ? 0 : p >= len ? len - 1 : p;
    if (len == 1)
        return 0;
    while (p < 0 || p >= len)
        p = p < 0 ? -p : 2 * (len - 1) - p;
    return p;
}

static dip_image *noise(int w, int h, int ch, uint32_t seed)
{
    dip_image *img = NULL;
    struct dip_view v;

    ASSERT_OK(dip_image_new(w, h, ch, &img));
    v = dip_image_view(img);
    for (size_t i = 0; i < (size_t)w * (size_t)h * (size_t)ch; i++) {
        seed = seed * 1664525u + 1013904223u;
        v.data[i] = (uint8_t)(seed >> 24);
    }
    return img;
}

static dip_image *run(const char *text, const dip_image *in, int tile, dip_pool *pool)
{
    dip_pipeline *p = NULL;
    dip_image *out = NULL;
    struct dip_err err = {0};
    struct dip_run_opts o = {.tile = tile, .pool = pool};

    ASSERT_OK(dip_pipeline_parse(text, &p, &err));
    ASSERT_OK(dip_run_image(p, in, &o, &out, &err));
    dip_pipeline_free(p);
    return out;
}

TEST(stencil_borders_match_reference)
{
    static const int sizes[][2] = {{1, 1}, {5, 1}, {1, 4}, {3, 2}, {11, 9}, {17, 30}};
    static const struct sargs halos[] = {{1, 2, 3, 0}, {2, 2, 2, 2}, {0, 4, 1, 5}, {9, 0, 0, 9}};
    dip_pool *pool = NULL;

    ASSERT_OK(dip_pool_new(3, &pool));
    for (size_t s = 0; s < DIP_COUNTOF(sizes); s++)
        for (int ch = 1; ch <= 3; ch += 2)
            for (size_t k = 0; k < DIP_COUNTOF(halos); k++)
                for (int replicate = 0; replicate <= 1; replicate++)
                    for (int tile = 0; tile <= 3; tile += 3) {
                        const struct sargs *hs = &halos[k];
                        int w = sizes[s][0], h = sizes[s][1];
                        dip_image *in = noise(w, h, ch, (uint32_t)(s * 17 + k));
                        char text[128];
                        dip_image *out;
                        struct dip_view vi = dip_image_view(in), vo;
                        snprintf(text, sizeof(text), "%s(l=%d, r=%d, t=%d, b=%d)",
                                 replicate ? "t_stenr" : "t_sten", hs->l, hs->r, hs->t, hs->b);
                        out = run(text, in, tile, pool);
                        vo = dip_image_view(out);
                        for (int y = 0; y < h; y++)
                            for (int x = 0; x < w; x++)
                                for (int c = 0; c < ch; c++) {
                                    unsigned acc = 0, kk = 1;
                                    for (int dy = -hs->t; dy <= hs->b; dy++)
                                        for (int dx = -hs->l; dx <= hs->r; dx++, kk++) {
                                            int sy = ref_border(y + dy, h, replicate);
                                            int sx = ref_border(x + dx, w, replicate);
                                            acc += kk * vi.data[(size_t)sy * vi.stride +
                                                                (size_t)(sx * ch + c)];
                                        }
                                    if (vo.data[(size_t)y * vo.stride + (size_t)(x * ch + c)] !=
                                        (uint8_t)(acc * 2654435761u >> 24))
                                        DIP_TEST_FAIL("%s on %dx%dx%d tile %d: pixel (%d,%d) "
                                                      "wrong",
                                                      text, w, h, ch, tile, x, y);
                                }
                        dip_image_unref(out);
                        dip_image_unref(in);
                    }
    dip_pool_free(pool);
}

TEST(geometric_stat_and_global_steps)
{
    dip_image *in = noise(13, 7, 3, 5), *a, *b;
    struct dip_view vi = dip_image_view(in), va;
    dip_pool *pool = NULL;

    ASSERT_OK(dip_pool_new(2, &pool));
    a = run("t_transp", in, 2, pool);
    va = dip_image_view(a);
    ASSERT_EQ_INT(va.width, 7);
    ASSERT_EQ_INT(va.height, 13);
    for (int y = 0; y < 13; y++)
        for (int x = 0; x < 7; x++)
            ASSERT(!memcmp(va.data + (size_t)y * va.stride + (size_t)(x * 3),
                           vi.data + (size_t)x * vi.stride + (size_t)(y * 3), 3));
    dip_image_unref(a);
    /* The statistic covers the whole image however it is tiled. */
    a = run("t_hist", in, 0, NULL);
    b = run("t_hist", in, 1, pool);
    {
        struct dip_view x = dip_image_view(a), y = dip_image_view(b);
        uint64_t hist[256] = {0}, below = 0;
        ASSERT(dip_view_equal(&x, &y));
        for (size_t i = 0; i < 13 * 7 * 3; i++)
            hist[vi.data[i]]++;
        for (int v = 0; v < vi.data[0]; v++)
            below += hist[v];
        ASSERT_EQ_INT(x.data[0], below % 251);
    }
    dip_image_unref(a);
    dip_image_unref(b);
    /* A global op with a pre-pass: one channel out, same for every tiling. */
    a = run("t_sten | t_glob | t_hist", in, 0, NULL);
    b = run("t_sten | t_glob | t_hist", in, 2, pool);
    {
        struct dip_view x = dip_image_view(a), y = dip_image_view(b);
        ASSERT_EQ_INT(x.channels, 1);
        ASSERT(dip_view_equal(&x, &y));
    }
    dip_image_unref(a);
    dip_image_unref(b);
    dip_image_unref(in);
    dip_pool_free(pool);
}

TEST(plan_steps_fuse_and_split)
{
    dip_pipeline *p = NULL;
    dip_plan *plan = NULL;
    struct dip_step_info si;

    /* point | stencil | stencil fuse into one step; a statistic ends it; its map opens the next
     * step, which the geometric op joins; a global op makes its own step. */
    ASSERT_OK(dip_pipeline_parse("invert | t_sten | t_stenr | t_hist | t_transp | t_glob | invert",
                                 &p, NULL));
    ASSERT_OK(dip_plan_compile(p, 10, 6, 3, &plan, NULL));
    ASSERT_EQ_INT(dip_plan_steps(plan), 4);
    dip_plan_step_info(plan, 0, &si);
    ASSERT_EQ_INT(si.kind, DIP_STEP_TILED);
    ASSERT_EQ_INT(si.n_ops, 3);
    ASSERT(si.stat_size > 0);
    ASSERT_EQ_INT(si.reach.left, 2);
    ASSERT_EQ_INT(si.reach.top, 6);
    dip_plan_step_info(plan, 1, &si);
    ASSERT_EQ_INT(si.n_ops, 3); /* map, transpose, glob's pre-pass */
    ASSERT_EQ_INT(si.out_w, 6);
    ASSERT_EQ_INT(si.out_h, 10);
    ASSERT_EQ_INT(si.out_channels, 1);
    dip_plan_step_info(plan, 2, &si);
    ASSERT_EQ_INT(si.kind, DIP_STEP_GLOBAL);
    dip_plan_step_info(plan, 3, &si);
    ASSERT_EQ_INT(si.n_ops, 1);
    /* need() of a fused stencil chain grows by the summed halos, clipped to the image. */
    {
        struct dip_rect r = dip_plan_need(plan, 0, (struct dip_rect){4, 3, 2, 1});
        ASSERT_EQ_INT(r.x, 2);
        ASSERT_EQ_INT(r.y, 0);
        ASSERT_EQ_INT(r.x + r.w, 10);
        ASSERT_EQ_INT(r.y + r.h, 4);
    }
    dip_plan_free(plan);
    dip_pipeline_free(p);
}
