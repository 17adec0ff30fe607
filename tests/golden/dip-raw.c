/* SPDX-License-Identifier: MIT */
/* Test tool: runs a pipeline on an 8-bit .npy array (H x W or H x W x C, C = 1..4) and writes the
 * result as .npy, with a chosen tile size and thread count. The golden and property tests use it
 * to compare dip with OpenCV and with itself without going through any image codec.
 * Usage: dip-raw PIPELINE IN.npy OUT.npy [--tile N] [--threads T]
 *        dip-raw --serve   runs one request per line of standard input,
 *                          PIPELINE<TAB>IN.npy<TAB>OUT.npy<TAB>TILE<TAB>THREADS, and answers each
 *                          with one line, "ok" or "error: MESSAGE", so that a test runs every
 *                          check in one process (an ASan process start costs more than most
 *                          checks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dip/dip.h"

static int read_npy(const char *path, dip_image **out)
{
    FILE *f = fopen(path, "rb");
    unsigned char pre[10];
    char hdr[4096];
    unsigned hlen;
    long dims[3] = {0, 0, 1};
    int nd = 0, rc = 1;
    const char *p;
    dip_image *img = NULL;
    struct dip_view v;

    if (f == NULL || fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] != 1)
        goto out;
    hlen = (unsigned)pre[8] | (unsigned)pre[9] << 8;
    if (hlen >= sizeof(hdr) || fread(hdr, 1, hlen, f) != hlen)
        goto out;
    hdr[hlen] = '\0';
    if (strstr(hdr, "'|u1'") == NULL || strstr(hdr, "'fortran_order': False") == NULL)
        goto out;
    p = strchr(strstr(hdr, "'shape'"), '(');
    while (p && *p && *p != ')' && nd < 3) {
        char *end;
        p++;
        while (*p == ' ')
            p++;
        if (*p == ')')
            break;
        dims[nd++] = strtol(p, &end, 10);
        p = end;
        while (*p == ' ')
            p++;
    }
    if (nd < 2 || dims[2] < 1 || dims[2] > 4)
        goto out;
    if (dip_image_new((int)dims[1], (int)dims[0], (int)dims[2], &img))
        goto out;
    v = dip_image_view(img);
    for (int y = 0; y < v.height; y++)
        if (fread(v.data + (size_t)y * v.stride, 1, (size_t)v.width * (size_t)v.channels, f) !=
            (size_t)v.width * (size_t)v.channels)
            goto out;
    *out = img;
    img = NULL;
    rc = 0;
out:
    dip_image_unref(img);
    if (f)
        fclose(f);
    return rc;
}

static int write_npy(const char *path, const dip_image *img)
{
    FILE *f = fopen(path, "wb");
    struct dip_view v = dip_image_view(img);
    char hdr[256];
    int n;

    if (f == NULL)
        return 1;
    if (v.channels == 1)
        n = snprintf(hdr, sizeof(hdr),
                     "{'descr': '|u1', 'fortran_order': False, 'shape': (%d, %d), }", v.height,
                     v.width);
    else
        n = snprintf(hdr, sizeof(hdr),
                     "{'descr': '|u1', 'fortran_order': False, 'shape': (%d, %d, %d), }", v.height,
                     v.width, v.channels);
    while ((10 + n + 1) % 64 != 0)
        hdr[n++] = ' ';
    hdr[n++] = '\n';
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(n & 0xff, f);
    fputc(n >> 8, f);
    fwrite(hdr, 1, (size_t)n, f);
    for (int y = 0; y < v.height; y++)
        fwrite(v.data + (size_t)y * v.stride, 1, (size_t)v.width * (size_t)v.channels, f);
    return fclose(f) != 0;
}

/* One request: runs `pipeline` on in_path with a tile size and thread count, writes out_path.
 * Returns 0, or 2 for bad arguments or input, 1 for a failed run, with a message in msg. */
static int run_one(const char *pipeline, const char *in_path, const char *out_path, int tile,
                   int threads, char *msg, size_t msg_size)
{
    dip_pipeline *p = NULL;
    dip_image *in = NULL, *out = NULL;
    dip_pool *pool = NULL;
    struct dip_err err = {0};
    struct dip_run_opts o = {0};
    int rc;

    msg[0] = '\0';
    if (dip_pipeline_parse(pipeline, &p, &err)) {
        snprintf(msg, msg_size, "%s", err.msg);
        rc = 2;
        goto out;
    }
    if (read_npy(in_path, &in)) {
        snprintf(msg, msg_size, "cannot read %s (8-bit .npy, HxW or HxWxC)", in_path);
        rc = 2;
        goto out;
    }
    if (dip_pool_new(threads, &pool)) {
        snprintf(msg, msg_size, "cannot start %d threads", threads);
        rc = 1;
        goto out;
    }
    o.tile = tile;
    o.pool = pool;
    rc = dip_run_image(p, in, &o, &out, &err);
    if (rc) {
        snprintf(msg, msg_size, "%s", dip_err_text(&err, rc));
        rc = 1;
        goto out;
    }
    if (write_npy(out_path, out)) {
        snprintf(msg, msg_size, "cannot write %s", out_path);
        rc = 1;
    }
out:
    dip_image_unref(out);
    dip_image_unref(in);
    dip_pool_free(pool);
    dip_pipeline_free(p);
    return rc;
}

/* --serve: requests from standard input until it ends. */
static int serve(void)
{
    char line[8192], msg[1024];

    while (fgets(line, sizeof(line), stdin) != NULL) {
        char *f[5], *t = line;
        int n = 0;

        line[strcspn(line, "\n")] = '\0';
        while (n < 5 && t != NULL) { /* fields may be empty: split at each tab */
            f[n++] = t;
            t = strchr(t, '\t');
            if (t != NULL)
                *t++ = '\0';
        }
        if (t != NULL)
            n = 6; /* more than five fields */
        if (n != 5) {
            printf("error: a request is PIPELINE<TAB>IN<TAB>OUT<TAB>TILE<TAB>THREADS\n");
        } else if (run_one(f[0], f[1], f[2], (int)strtol(f[3], NULL, 10),
                           (int)strtol(f[4], NULL, 10), msg, sizeof(msg)) != 0) {
            msg[strcspn(msg, "\n")] = ' ';
            printf("error: %s\n", msg);
        } else {
            printf("ok\n");
        }
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int tile = 0, threads = 1, rc;
    char msg[1024];

    if (argc == 2 && strcmp(argv[1], "--serve") == 0)
        return serve();
    if (argc < 4) {
        fprintf(stderr, "usage: dip-raw PIPELINE IN.npy OUT.npy [--tile N] [--threads T]\n"
                        "       dip-raw --serve\n");
        return 2;
    }
    for (int i = 4; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--tile") == 0)
            tile = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = (int)strtol(argv[i + 1], NULL, 10);
    }
    rc = run_one(argv[1], argv[2], argv[3], tile, threads, msg, sizeof(msg));
    if (rc)
        fprintf(stderr, "dip-raw: %s\n", msg);
    return rc;
}
