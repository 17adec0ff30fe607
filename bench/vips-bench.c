/* SPDX-License-Identifier: MIT */
/* libvips's side of `make bench`: the operations libvips has that match dip's, on the same image,
 * with one thread (vips_concurrency_set(1)) and with every core, each result written to memory
 * so the lazy pipeline really runs. Prints the same CSV rows as `dip bench` with impl=vips.
 * Usage: vips-bench IMAGE SUITE RUNS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <vips/vips.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int op_run(const char *name, VipsImage *in, VipsImage **out)
{
    if (!strcmp(name, "invert"))
        return vips_invert(in, out, NULL);
    if (!strcmp(name, "linear")) {
        double a = 1.5, b = 0;
        return vips_linear(in, out, &a, &b, 1, "uchar", TRUE, NULL);
    }
    if (!strcmp(name, "brightness")) {
        double a = 1, b = 60;
        return vips_linear(in, out, &a, &b, 1, "uchar", TRUE, NULL);
    }
    if (!strcmp(name, "gray"))
        return vips_colourspace(in, out, VIPS_INTERPRETATION_B_W, NULL);
    if (!strcmp(name, "gaussian"))
        return vips_gaussblur(in, out, 1.1, "precision", VIPS_PRECISION_INTEGER, NULL);
    if (!strcmp(name, "median"))
        return vips_median(in, out, 5, NULL);
    if (!strcmp(name, "sobel"))
        return vips_sobel(in, out, NULL);
    if (!strcmp(name, "canny"))
        return vips_canny(in, out, NULL);
    if (!strcmp(name, "equalize"))
        return vips_hist_equal(in, out, NULL);
    if (!strcmp(name, "sharpen"))
        return vips_sharpen(in, out, NULL);
    if (!strcmp(name, "resize"))
        return vips_resize(in, out, 0.5, NULL);
    if (!strcmp(name, "flip"))
        return vips_flip(in, out, VIPS_DIRECTION_HORIZONTAL, NULL);
    if (!strcmp(name, "rotate"))
        return vips_rot(in, out, VIPS_ANGLE_D90, NULL);
    if (!strcmp(name, "crop"))
        return vips_crop(in, out, 0, 0, in->Xsize / 2, in->Ysize / 2, NULL);
    return -2;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    static const char *ops[] = {"invert", "linear", "brightness", "gray",  "gaussian",
                                "median", "sobel",  "sharpen",    "canny", "equalize",
                                "resize", "flip",   "rotate",     "crop"};
    VipsImage *src, *in;
    int runs;

    if (argc < 4 || VIPS_INIT(argv[0]))
        return 2;
    runs = atoi(argv[3]) > 0 ? atoi(argv[3]) : 5;
    src = vips_image_new_from_file(argv[1], "access", VIPS_ACCESS_RANDOM, NULL);
    in = src ? vips_image_copy_memory(src) : NULL;
    if (in == NULL) {
        fprintf(stderr, "vips-bench: %s\n", vips_error_buffer());
        return 1;
    }
    vips_cache_set_max(0); /* time the work, not the operation cache */
    for (int pass = 0; pass < 2; pass++) {
        int threads;
        vips_concurrency_set(pass == 0 ? 1 : (int)g_get_num_processors());
        threads = vips_concurrency_get();
        for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
            double times[1000], mp = (double)in->Xsize * in->Ysize / 1e6;
            int ok = 1;
            for (int r = 0; r < runs && r < 1000; r++) {
                VipsImage *out = NULL;
                void *mem;
                size_t len;
                double t0 = now();
                int rc = op_run(ops[i], in, &out);
                if (rc != 0) {
                    ok = 0;
                    break;
                }
                mem = vips_image_write_to_memory(out, &len);
                times[r] = now() - t0;
                g_free(mem);
                g_object_unref(out);
            }
            vips_error_clear();
            if (!ok)
                continue;
            qsort(times, (size_t)runs, sizeof(double), cmp);
            printf("%s,%s,vips,%d,%dx%d,%d,%.6f,%.6f,%.6f,%.1f\n", argv[2], ops[i], threads,
                   in->Xsize, in->Ysize, runs, times[runs / 2], times[0], times[runs - 1],
                   mp / times[runs / 2]);
            fflush(stdout);
        }
    }
    g_object_unref(in);
    g_object_unref(src);
    vips_shutdown();
    return 0;
}
