/* SPDX-License-Identifier: MIT */
/* `dip bench`: throughput of every operation on a synthetic 12-megapixel photo-like image, with
 * one thread and with all threads, printed as CSV rows
 * suite,op,impl,threads,size,runs,median,min,max,rate (seconds; rate in MP/s of the median). */
#include <getopt.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/internal.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char help[] =
    "Usage: dip bench [--input FILE]... [FILE]... [--width W --height H] [--runs N]\n"
    "                 [--ops a,b,c] [--threads N] [--suite NAME] [--device cpu|opencl|auto]\n"
    "\n"
    "Times each operation with its defaults on a 12-megapixel RGB image (4000x3000, a\n"
    "smooth photo-like pattern with noise), or on each input file in turn, with 1 thread\n"
    "and with all threads (or N), and prints CSV: suite,op,impl,threads,size,runs,median,\n"
    "min,max,rate where times are seconds and rate is megapixels per second of the median\n"
    "run. The suite is NAME (default \"ops\"); with several inputs, each file's name without\n"
    "folder and extension.\n"
    "With an OpenCL device (--device opencl, or auto with a GPU) each op also gets a row\n"
    "impl=dip-opencl (upload, kernels, download: wall time) and dip-opencl-kernels (the\n"
    "device's own kernel time, transfers excluded). Ops without a kernel get no such rows.\n"
    "--suite codecs times each encoder and decoder instead (--ops png6,tiff,...), the\n"
    "pool handed to the codec; its rows add the encoded size in bytes.\n";

/* Times `runs` runs of `p` on the OpenCL device after one warm-up run (kernel build, caches) and
 * prints the two dip-opencl rows. Nothing when the op falls back to the CPU. */
static void bench_device(const char *suite, const char *name, const dip_pipeline *p,
                         const dip_image *img, long runs, double *wall, double *kern)
{
    struct dip_run_opts o = {.device = DIP_DEVICE_OPENCL};
    struct dip_device_times t0, t1;
    struct dip_err err = {0};
    double mp = (double)dip_image_width(img) * dip_image_height(img) / 1e6;
    dip_image *out = NULL;
    int rc;

    dip_device_times(&t0);
    rc = dip_run_image(p, img, &o, &out, &err);
    dip_image_unref(out);
    dip_device_times(&t1);
    if (rc || t1.fallbacks != t0.fallbacks)
        return;
    for (long r = 0; r < runs; r++) {
        double s = dip__now();
        dip_device_times(&t0);
        rc = dip_run_image(p, img, &o, &out, &err);
        wall[r] = dip__now() - s;
        dip_device_times(&t1);
        kern[r] = t1.kernel_s - t0.kernel_s;
        dip_image_unref(out);
        out = NULL;
        if (rc || t1.fallbacks != t0.fallbacks)
            return;
    }
    qsort(wall, (size_t)runs, sizeof(double), cmp_double);
    qsort(kern, (size_t)runs, sizeof(double), cmp_double);
    printf("%s,%s,dip-opencl,1,%dx%d,%ld,%.6f,%.6f,%.6f,%.1f\n", suite, name, dip_image_width(img),
           dip_image_height(img), runs, wall[runs / 2], wall[0], wall[runs - 1],
           mp / wall[runs / 2]);
    if (kern[runs / 2] > 0)
        printf("%s,%s,dip-opencl-kernels,1,%dx%d,%ld,%.6f,%.6f,%.6f,%.1f\n", suite, name,
               dip_image_width(img), dip_image_height(img), runs, kern[runs / 2], kern[0],
               kern[runs - 1], mp / kern[runs / 2]);
    fflush(stdout);
}

static void fill_photo(dip_image *img)
{
    struct dip_view v = dip_image_view(img);
    uint32_t s = 12345;

    for (int y = 0; y < v.height; y++) {
        uint8_t *row = v.data + (size_t)y * v.stride;
        for (int x = 0; x < v.width; x++) {
            for (int c = 0; c < v.channels; c++) {
                double base = 128 + 90 * sin(x * 0.004 * (c + 1)) * cos(y * 0.003 * (c + 2));
                int n;
                s = s * 1664525u + 1013904223u;
                n = (int)(s >> 27) - 16;
                row[(size_t)x * (size_t)v.channels + (size_t)c] =
                    (uint8_t)DIP_CLAMP((int)base + n, 0, 255);
            }
        }
    }
}

static int add_input(const char ***inputs, int *n, const char *path)
{
    const char **a = realloc(*inputs, (size_t)(*n + 1) * sizeof(*a));

    if (a == NULL) {
        fputs("dip bench: out of memory\n", stderr);
        return 1;
    }
    a[(*n)++] = path;
    *inputs = a;
    return 0;
}

/* --suite codecs: each encoder (and the decoder of what it wrote) with one thread and with all,
 * the pool passed to the codec as an executor passes it. Rows carry an 11th column, the encoded
 * size in bytes, so that report.py's operation table leaves them out. */
static int bench_codecs(const dip_image *img, const uint8_t *input_bytes, size_t input_len,
                        long runs, long threads, const char *only)
{
    static const struct {
        const char *name;
        dip_format format;
        int png_level, quality, lossless;
    } cfg[] = {
        {"png0", DIP_FORMAT_PNG, 0, 90, 0},    {"png1", DIP_FORMAT_PNG, 1, 90, 0},
        {"png3", DIP_FORMAT_PNG, 3, 90, 0},    {"png6", DIP_FORMAT_PNG, 6, 90, 0},
        {"png9", DIP_FORMAT_PNG, 9, 90, 0},    {"tiff", DIP_FORMAT_TIFF, 6, 90, 0},
        {"webp90", DIP_FORMAT_WEBP, 6, 90, 0}, {"webpll", DIP_FORMAT_WEBP, 6, 90, 1},
        {"jpeg90", DIP_FORMAT_JPEG, 6, 90, 0},
    };
    double mp = (double)dip_image_width(img) * dip_image_height(img) / 1e6;
    long tcounts[2] = {1, threads};
    struct dip_err err = {0};
    struct dip_limits lim;
    int rc = 0;

    dip_limits_default(&lim);
    /* "input": decode of the --input file's own bytes (a file another encoder wrote). */
    if (input_bytes != NULL && only != NULL && strstr(only, "input") != NULL)
        for (int k = 0; k < (threads == 1 ? 1 : 2); k++) {
            struct dip_decode_opts dopt;
            double td[1000];
            dip_pool *pool = NULL;

            if (dip_pool_new((int)tcounts[k], &pool) != 0)
                return DIP_ENOMEM;
            dip_decode_opts_default(&dopt);
            dopt.pool = pool;
            for (long r = 0; r < runs && rc == 0; r++) {
                dip_image *back = NULL;
                double t0 = dip__now();
                rc = dip_codec_decode(input_bytes, input_len, &lim, &dopt, &back, NULL, &err);
                td[r] = dip__now() - t0;
                dip_image_unref(back);
            }
            dip_pool_free(pool);
            if (rc) {
                fprintf(stderr, "dip bench: input: %s\n", dip_err_text(&err, rc));
                return rc;
            }
            qsort(td, (size_t)runs, sizeof(double), cmp_double);
            printf("codecs,decode-input,dip,%ld,%dx%d,%ld,%.6f,%.6f,%.6f,%.1f,%zu\n", tcounts[k],
                   dip_image_width(img), dip_image_height(img), runs, td[runs / 2], td[0],
                   td[runs - 1], mp / td[runs / 2], input_len);
        }
    for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
        if (only && (strstr(only, cfg[c].name) == NULL || strcmp(only, "input") == 0))
            continue;
        if (!dip_format_can_encode(cfg[c].format))
            continue;
        for (int k = 0; k < (threads == 1 ? 1 : 2); k++) {
            struct dip_encode_opts eo;
            struct dip_decode_opts dopt;
            double te[1000], td[1000];
            uint8_t *enc = NULL;
            size_t len = 0;
            dip_pool *pool = NULL;

            if (dip_pool_new((int)tcounts[k], &pool) != 0)
                return DIP_ENOMEM;
            dip_encode_opts_default(&eo);
            eo.format = cfg[c].format;
            eo.png_level = cfg[c].png_level;
            eo.quality = cfg[c].quality;
            eo.webp_lossless = cfg[c].lossless;
            eo.pool = pool;
            dip_decode_opts_default(&dopt);
            dopt.pool = pool;
            for (long r = 0; r < runs && rc == 0; r++) {
                dip_image *back = NULL;
                double t0 = dip__now();
                dip_free(enc);
                enc = NULL;
                rc = dip_codec_encode(img, &eo, &enc, &len, &err);
                te[r] = dip__now() - t0;
                if (rc)
                    break;
                t0 = dip__now();
                rc = dip_codec_decode(enc, len, &lim, &dopt, &back, NULL, &err);
                td[r] = dip__now() - t0;
                dip_image_unref(back);
            }
            dip_free(enc);
            dip_pool_free(pool);
            if (rc) {
                fprintf(stderr, "dip bench: %s: %s\n", cfg[c].name, dip_err_text(&err, rc));
                return rc;
            }
            qsort(te, (size_t)runs, sizeof(double), cmp_double);
            qsort(td, (size_t)runs, sizeof(double), cmp_double);
            printf("codecs,encode-%s,dip,%ld,%dx%d,%ld,%.6f,%.6f,%.6f,%.1f,%zu\n", cfg[c].name,
                   tcounts[k], dip_image_width(img), dip_image_height(img), runs, te[runs / 2],
                   te[0], te[runs - 1], mp / te[runs / 2], len);
            printf("codecs,decode-%s,dip,%ld,%dx%d,%ld,%.6f,%.6f,%.6f,%.1f,%zu\n", cfg[c].name,
                   tcounts[k], dip_image_width(img), dip_image_height(img), runs, td[runs / 2],
                   td[0], td[runs - 1], mp / td[runs / 2], len);
            fflush(stdout);
        }
    }
    return 0;
}

/* The suite of an input file: its name without folder and extension. */
static void suite_name(const char *path, char *name, size_t size)
{
    const char *b = strrchr(path, '/'), *dot;

    b = b ? b + 1 : path;
    dot = strrchr(b, '.');
    snprintf(name, size, "%.*s", (int)(dot && dot != b ? dot - b : (ptrdiff_t)strlen(b)), b);
}

/* Times every selected operation on one image (input, or the synthetic w x h when NULL). */
static int bench_one(const char *input, const char *suite, const char *only, int w, int h,
                     long runs, long threads)
{
    dip_image *img = NULL;
    struct dip_err err = {0};
    int rc = 0;

    uint8_t *data = NULL; /* --input's bytes, for the codecs suite's "input" row */
    size_t len = 0;

    if (input) {
        struct dip_limits lim;
        dip_limits_default(&lim);
        rc = dip_file_read(input, lim.max_input_bytes, &data, &len, &err);
        if (rc == 0)
            rc = dip_codec_decode(data, len, &lim, NULL, &img, NULL, &err);
        if (rc) {
            dip_free(data);
            fprintf(stderr, "dip bench: %s: %s\n", input, dip_err_text(&err, rc));
            return dip_err_exit_code(rc);
        }
    } else {
        rc = dip_image_new(w, h, 3, &img);
        if (rc) {
            fprintf(stderr, "dip bench: %s\n", dip_strerror(rc));
            return dip_err_exit_code(rc);
        }
        fill_photo(img);
    }
    if (strcmp(suite, "codecs") == 0) {
        rc = bench_codecs(img, data, len, runs, threads, only);
        dip_free(data);
        dip_image_unref(img);
        return rc ? dip_err_exit_code(rc) : 0;
    }
    dip_free(data);
    for (size_t i = 0; i < dip_op_count(); i++) {
        const struct dip_op *op = dip_op_at(i);
        long tcounts[2] = {1, threads};
        dip_pipeline *p = NULL;

        if (only) {
            const char *s = strstr(only, op->name);
            size_t l = strlen(op->name);
            if (s == NULL || (s != only && s[-1] != ',') || (s[l] != '\0' && s[l] != ','))
                continue;
        }
        if (dip_pipeline_parse(op->name, &p, &err) != 0)
            continue;
        for (int k = 0; k < (threads == 1 ? 1 : 2); k++) {
            dip_pool *pool = NULL;
            double times[1000];
            struct dip_run_opts o = {.device = DIP_DEVICE_CPU};
            double mp = (double)dip_image_width(img) * dip_image_height(img) / 1e6;
            if (dip_pool_new((int)tcounts[k], &pool) != 0)
                break;
            o.pool = pool;
            for (long r = 0; r < runs; r++) {
                dip_image *out = NULL;
                double t0 = dip__now();
                rc = dip_run_image(p, img, &o, &out, &err);
                times[r] = dip__now() - t0;
                dip_image_unref(out);
                if (rc)
                    break;
            }
            dip_pool_free(pool);
            if (rc) {
                fprintf(stderr, "dip bench: %s: %s\n", op->name, dip_err_text(&err, rc));
                rc = 0;
                break;
            }
            qsort(times, (size_t)runs, sizeof(double), cmp_double);
            printf("%s,%s,dip,%ld,%dx%d,%ld,%.6f,%.6f,%.6f,%.1f\n", suite, op->name, tcounts[k],
                   dip_image_width(img), dip_image_height(img), runs, times[runs / 2], times[0],
                   times[runs - 1], mp / times[runs / 2]);
            fflush(stdout);
        }
        if (dip_device_resolve(DIP_DEVICE_DEFAULT) == DIP_DEVICE_OPENCL) {
            double wall[1000], kern[1000];
            bench_device(suite, op->name, p, img, runs, wall, kern);
        }
        dip_pipeline_free(p);
    }
    dip_image_unref(img);
    return 0;
}

int dip__cmd_bench(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"input", required_argument, NULL, 'i'},  {"width", required_argument, NULL, 'W'},
        {"height", required_argument, NULL, 'H'}, {"runs", required_argument, NULL, 'r'},
        {"ops", required_argument, NULL, 'o'},    {"threads", required_argument, NULL, 't'},
        {"suite", required_argument, NULL, 's'},  {"help", no_argument, NULL, 'h'},
        {"device", required_argument, NULL, 'd'}, {NULL, 0, NULL, 0},
    };
    const char **inputs = NULL, *only = NULL, *suite = NULL;
    int n_inputs = 0;
    long w = 4000, h = 3000, runs = 5, threads = 0, v;
    int opt, bad = 0, rc = 0;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'i':
            bad |= add_input(&inputs, &n_inputs, optarg);
            break;
        case 'W':
            bad |= dip__cli_int("width", optarg, 1, 65535, &w);
            break;
        case 'H':
            bad |= dip__cli_int("height", optarg, 1, 65535, &h);
            break;
        case 'r':
            bad |= dip__cli_int("runs", optarg, 1, 1000, &runs);
            break;
        case 'o':
            only = optarg;
            break;
        case 's':
            suite = optarg;
            break;
        case 't':
            bad |= dip__cli_int("threads", optarg, 1, 1024, &v);
            threads = v;
            break;
        case 'd':
            bad |= dip__cli_device("bench", optarg);
            break;
        case 'h':
            fputs(help, stdout);
            free(inputs);
            return 0;
        default:
            fputs(help, stderr);
            free(inputs);
            return 2;
        }
    }
    while (optind < argc)
        bad |= add_input(&inputs, &n_inputs, argv[optind++]);
    if (bad) {
        free(inputs);
        return 2;
    }
    if (threads == 0)
        threads = dip_cpu_count();
    if (suite != NULL && strcmp(suite, "codecs") == 0)
        printf("suite,op,impl,threads,size,runs,median,min,max,rate,bytes\n");
    else
        printf("suite,op,impl,threads,size,runs,median,min,max,rate\n");
    if (n_inputs == 0)
        rc = bench_one(NULL, suite ? suite : "ops", only, (int)w, (int)h, runs, threads);
    for (int i = 0; i < n_inputs && rc == 0; i++) {
        char name[256];
        if (suite == NULL || n_inputs > 1)
            suite_name(inputs[i], name, sizeof(name));
        else
            snprintf(name, sizeof(name), "%s", suite);
        rc = bench_one(inputs[i], name, only, (int)w, (int)h, runs, threads);
    }
    free(inputs);
    return rc;
}
