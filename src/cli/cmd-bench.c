/* SPDX-License-Identifier: MIT */
/* `dip bench`: throughput of every operation on a synthetic 12-megapixel photo-like image, with
 * one thread and with all threads, printed as CSV rows
 * suite,op,impl,threads,size,runs,median,min,max,rate (seconds; rate in MP/s of the median). */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/internal.h"

static const char help[] =
    "Usage: dip bench [--input FILE] [--width W --height H] [--runs N] [--ops a,b,c]\n"
    "                 [--threads N] [--suite NAME]\n"
    "\n"
    "Times each operation with its defaults on a 12-megapixel RGB image (4000x3000, a\n"
    "smooth photo-like pattern with noise; or --input FILE), with 1 thread and with all\n"
    "threads (or N), and prints CSV: suite,op,impl,threads,size,runs,median,min,max,rate\n"
    "where times are seconds and rate is megapixels per second of the median run.\n"
    "--suite codecs times each encoder and decoder instead (--ops png6,tiff,...), the\n"
    "pool handed to the codec; its rows add the encoded size in bytes.\n";

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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
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

int dip__cmd_bench(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"input", required_argument, NULL, 'i'},
        {"width", required_argument, NULL, 'W'},
        {"height", required_argument, NULL, 'H'},
        {"runs", required_argument, NULL, 'r'},
        {"ops", required_argument, NULL, 'o'},
        {"threads", required_argument, NULL, 't'},
        {"suite", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *input = NULL, *only = NULL, *suite = "ops";
    long w = 4000, h = 3000, runs = 5, threads = 0, v;
    int opt, bad = 0, rc = 0;
    dip_image *img = NULL;
    uint8_t *inbytes = NULL; /* --input's bytes, for the codecs suite's "input" row */
    size_t inlen = 0;
    struct dip_err err = {0};

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'i':
            input = optarg;
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
        case 'h':
            fputs(help, stdout);
            return 0;
        default:
            fputs(help, stderr);
            return 2;
        }
    }
    if (bad)
        return 2;
    if (input) {
        struct dip_limits lim;
        dip_limits_default(&lim);
        rc = dip_file_read(input, lim.max_input_bytes, &inbytes, &inlen, &err);
        if (rc == 0)
            rc = dip_codec_decode(inbytes, inlen, &lim, NULL, &img, NULL, &err);
        if (rc) {
            dip_free(inbytes);
            fprintf(stderr, "dip bench: %s\n", dip_err_text(&err, rc));
            return dip_err_exit_code(rc);
        }
    } else {
        rc = dip_image_new((int)w, (int)h, 3, &img);
        if (rc) {
            fprintf(stderr, "dip bench: %s\n", dip_strerror(rc));
            return dip_err_exit_code(rc);
        }
        fill_photo(img);
    }
    if (threads == 0)
        threads = dip_cpu_count();
    if (strcmp(suite, "codecs") == 0) {
        printf("suite,op,impl,threads,size,runs,median,min,max,rate,bytes\n");
        rc = bench_codecs(img, inbytes, inlen, runs, threads, only);
        dip_free(inbytes);
        dip_image_unref(img);
        return rc ? dip_err_exit_code(rc) : 0;
    }
    printf("suite,op,impl,threads,size,runs,median,min,max,rate\n");
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
            struct dip_run_opts o = {0};
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
        dip_pipeline_free(p);
    }
    dip_free(inbytes);
    dip_image_unref(img);
    return 0;
}
