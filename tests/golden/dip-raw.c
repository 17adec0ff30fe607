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
#include "npy.h"

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
    if (npy_read(in_path, &in)) {
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
    if (npy_write(out_path, out)) {
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
