/* SPDX-License-Identifier: MIT */
/* --device opencl gives the bytes of the CPU path: every operation (defaults and the parameter
 * values that take other code paths), on every channel count, on sizes from 1x1 (smaller than
 * every halo) to 67x45, and the mixed pipelines of the tiling property test. Ops that have a
 * kernel must really run on the device (no silent fallback); the rest must fall back cleanly. A
 * forced kernel failure falls back to the CPU for that image, with the same bytes. */
#include <stdint.h>
#include <string.h>

#include "dip/dip.h"
#include "exec/opencl/ocl.h"
#include "test.h"

static const int sizes[][2] = {{1, 1}, {13, 1}, {1, 17}, {31, 23}, {67, 45}};

/* Ops that have kernels: they must not fall back. */
static const char *const on_device[] = {"invert",   "linear", "brightness", "gray",    "threshold",
                                        "hsv",      "otsu",   "equalize",   "stretch", "box",
                                        "gaussian", "median", "bilateral",  "sharpen", "sobel",
                                        "crop",     "flip",   "rotate",     "canny",   "resize"};

static int expect_device(const char *pipeline)
{
    char buf[256], *tok, *save = NULL;

    snprintf(buf, sizeof(buf), "%s", pipeline);
    for (tok = strtok_r(buf, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
        int found = 0;
        while (*tok == ' ')
            tok++;
        for (size_t i = 0; i < DIP_COUNTOF(on_device); i++) {
            size_t l = strlen(on_device[i]);
            found |= !strncmp(tok, on_device[i], l) &&
                     (tok[l] == '(' || tok[l] == ' ' || tok[l] == '\0');
        }
        if (!found)
            return 0;
    }
    return 1;
}

static dip_image *noise(int w, int h, int ch, uint32_t seed)
{
    dip_image *img = NULL;
    struct dip_view v;

    ASSERT_OK(dip_image_new(w, h, ch, &img));
    v = dip_image_view(img);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * ch; x++) {
            seed = seed * 1664525u + 1013904223u;
            v.data[(size_t)y * v.stride + (size_t)x] =
                (uint8_t)(((x * 7 + y * 5) & 0xff) / 2 + (seed >> 25));
        }
    return img;
}

/* Runs `text` on the CPU and on the device; 1 when compared, 0 when the CPU refuses the input. */
static int check(const char *text, const dip_image *in)
{
    dip_pipeline *p = NULL;
    dip_image *ref = NULL, *dev = NULL;
    struct dip_err err = {0};
    struct dip_run_opts cpu = {.device = DIP_DEVICE_CPU}, ocl = {.device = DIP_DEVICE_OPENCL};
    struct dip_device_times t0, t1;
    struct dip_view a, b;
    int rc;

    ASSERT_OK(dip_pipeline_parse(text, &p, &err));
    rc = dip_run_image(p, in, &cpu, &ref, &err);
    if (rc != 0) {
        ASSERT_EQ_INT(rc, DIP_EINVAL);
        ASSERT_EQ_INT(dip_run_image(p, in, &ocl, &dev, &err), DIP_EINVAL);
        dip_pipeline_free(p);
        return 0;
    }
    dip_device_times(&t0);
    ASSERT_OK(dip_run_image(p, in, &ocl, &dev, &err));
    dip_device_times(&t1);
    if (expect_device(text) && t1.fallbacks != t0.fallbacks)
        DIP_TEST_FAIL("'%s' on %dx%dx%d fell back to the CPU", text, dip_image_width(in),
                      dip_image_height(in), dip_image_channels(in));
    a = dip_image_view(ref);
    b = dip_image_view(dev);
    if (!dip_view_equal(&a, &b)) {
        int bx = -1, by = -1;
        for (int y = 0; y < a.height && by < 0 && a.width == b.width && a.height == b.height &&
                        a.channels == b.channels;
             y++)
            for (int x = 0; x < a.width * a.channels; x++)
                if (a.data[(size_t)y * a.stride + (size_t)x] !=
                    b.data[(size_t)y * b.stride + (size_t)x]) {
                    printf("cpu %d opencl %d\n", a.data[(size_t)y * a.stride + (size_t)x],
                           b.data[(size_t)y * b.stride + (size_t)x]);
                    by = y;
                    bx = x;
                    break;
                }
        DIP_TEST_FAIL("'%s' on %dx%dx%d: opencl differs from the CPU (%dx%dx%d vs %dx%dx%d; "
                      "first difference at row %d byte %d)",
                      text, dip_image_width(in), dip_image_height(in), dip_image_channels(in),
                      a.width, a.height, a.channels, b.width, b.height, b.channels, by, bx);
    }
    dip_image_unref(ref);
    dip_image_unref(dev);
    dip_pipeline_free(p);
    return 1;
}

static void sweep(const char *const *texts, size_t n, size_t first_size)
{
    for (size_t i = 0; i < n; i++) {
        int runs = 0;
        for (int ch = 1; ch <= 4; ch++)
            for (size_t s = first_size; s < DIP_COUNTOF(sizes); s++) {
                /* Under ASan (where this was the slowest test, 225 s on a loaded machine) a
                 * sample: gray+alpha and 31x23 run only in the -Werror pass, which runs all. */
                if (DIP_TEST_SANITIZED && (ch == 2 || sizes[s][0] == 31))
                    continue;
                dip_image *in = noise(sizes[s][0], sizes[s][1], ch, (uint32_t)(i * 31 + s + ch));
                runs += check(texts[i], in);
                dip_image_unref(in);
            }
        printf("%-60s %3d inputs identical%s\n", texts[i], runs,
               expect_device(texts[i]) ? "" : " (CPU fallback)");
    }
}

static void need_device(void)
{
    char buf[1024];

    dip_devices_describe(buf, sizeof(buf));
    printf("%s", buf);
    if (strstr(buf, "no device") || strstr(buf, "not built"))
        DIP_TEST_FAIL("no OpenCL device: install pocl-opencl-icd (tools/install-deps.sh)");
}

TEST(every_op_matches_cpu)
{
    need_device();
    for (size_t i = 0; i < dip_op_count(); i++) {
        const char *name = dip_op_at(i)->name;
        sweep(&name, 1, 0);
    }
}

/* Parameter values that take other code paths on the CPU (wide box, large gaussian, median by
 * histogram, sobel apertures, thresholds, negative gains, percentiles). */
TEST(op_variants_match_cpu)
{
    static const char *const texts[] = {
        "box(size=3)",
        "box(size=15)",
        "box(size=1)",
        "gaussian(size=3)",
        "gaussian(size=7)",
        "gaussian(size=0, sigma=2.5)",
        "gaussian(size=9, sigma=1.2)",
        "median(size=3)",
        "median(size=7)",
        "median(size=1)",
        "sobel(size=1)",
        "sobel(size=5)",
        "sobel(size=7)",
        "sharpen(sigma=2, amount=2.5, threshold=3)",
        "bilateral(d=5, sigma_color=20, sigma_space=3)",
        "bilateral(d=0, sigma_space=2)",
        "linear(alpha=-1.3, beta=200)",
        "brightness(delta=-90)",
        "threshold(t=90, invert=1)",
        "hsv(h=-40, s=30, v=-20)",
        "otsu(invert=1)",
        "stretch(low=2, high=97)",
        "flip(axis=v)",
        "flip(axis=both)",
        "rotate(angle=90)",
        "rotate(angle=180)",
        "resize(scale=0.5)",
        "resize(width=40, height=9, filter=cubic)",
        "resize(scale=2.3, filter=linear)",
        "resize(scale=1.7, filter=area)",
        "resize(width=100, height=3, filter=area)",
        "resize(scale=0.3, filter=cubic)",
        "resize(scale=0.3, filter=area)",
        "resize(width=10, height=5, filter=area)",
        "resize(width=15, height=11, filter=area)",
        "resize(scale=0.6, filter=area)",
        "resize(width=31, height=1, filter=area)",
        "rotate(angle=270)",
        "canny(low=20, high=60)",
        "canny(low=300, high=50)",
        "crop(x=3, y=2, width=9, height=5)",
        "crop(x=1, y=4)",
    };
    need_device();
    sweep(texts, DIP_COUNTOF(texts), 2);
}

/* tests/property's mixed pipelines (the first op of each kind, forwards and backwards), and
 * runs of device ops that stay on the device across steps and statistics. */
TEST(mixed_pipelines_match_cpu)
{
    static const char *const texts[] = {
        "invert | box | otsu | canny | resize",
        "resize | canny | otsu | box | invert",
        "gaussian | equalize | sobel",
        "linear | median | stretch | sharpen | gray | threshold",
        "hsv | bilateral | equalize | invert",
    };
    need_device();
    sweep(texts, DIP_COUNTOF(texts), 0);
}

TEST(forced_kernel_failure_falls_back)
{
    dip_pipeline *p = NULL;
    dip_image *in = noise(40, 30, 3, 7), *ref = NULL, *dev = NULL;
    struct dip_err err = {0};
    struct dip_run_opts cpu = {.device = DIP_DEVICE_CPU}, ocl = {.device = DIP_DEVICE_OPENCL};
    struct dip_device_times t0, t1;
    struct dip_view a, b;

    need_device();
    ASSERT_OK(dip_pipeline_parse("gaussian | invert | equalize", &p, &err));
    ASSERT_OK(dip_run_image(p, in, &cpu, &ref, &err));
    dip_device_times(&t0);
    dip__ocl_fail_launches(1);
    ASSERT_OK(dip_run_image(p, in, &ocl, &dev, &err));
    dip_device_times(&t1);
    ASSERT_EQ_INT((int)(t1.fallbacks - t0.fallbacks), 1);
    a = dip_image_view(ref);
    b = dip_image_view(dev);
    ASSERT(dip_view_equal(&a, &b));
    dip_image_unref(dev);
    /* The next image runs on the device again. */
    ASSERT_OK(dip_run_image(p, in, &ocl, &dev, &err));
    dip_device_times(&t0);
    ASSERT_EQ_INT((int)(t0.fallbacks - t1.fallbacks), 0);
    b = dip_image_view(dev);
    ASSERT(dip_view_equal(&a, &b));
    dip_image_unref(dev);
    dip_image_unref(ref);
    dip_image_unref(in);
    dip_pipeline_free(p);
}

/* Images over 4 M pixels run as several launches over bands of rows: the bands must meet
 * exactly (stencils reading across band edges, geometry reading anywhere). */
TEST(large_image_in_bands_matches_cpu)
{
    static const char *const texts[] = {"gaussian(size=7) | sobel", "median(size=5) | rotate",
                                        "canny | resize(scale=0.7, filter=cubic)",
                                        "equalize | box(size=3) | otsu"};
    dip_image *in = noise(2100, 2050, 1, 99);

    need_device();
    for (size_t i = 0; i < DIP_COUNTOF(texts); i++) {
        ASSERT(check(texts[i], in) == 1);
        printf("%-40s identical on 2100x2050x1\n", texts[i]);
    }
    dip_image_unref(in);
}
