/* SPDX-License-Identifier: MIT */
/* Object storage in the CLI (dip process, dip serve, dip s3): the shared --s3-* options, and the
 * s3:// inputs and outputs of dip process (a prefix or a glob on keys expands to the matching
 * objects; each object is read into one buffer and each output is put from the encoder's buffer,
 * never through a temporary file). The environment gives the defaults; secrets come only from
 * the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), never from flags that `ps` shows.
 * Built without src/store, an s3:// path is a clear error. */
#ifndef DIP_CLI_S3_OPTS_H
#define DIP_CLI_S3_OPTS_H

#include <stddef.h>
#include <stdint.h>

#include "dip/error.h"

enum {
    DIP_OPT_S3_ENDPOINT = 1100,
    DIP_OPT_S3_REGION,
    DIP_OPT_S3_ADDRESSING,
};
#define DIP_CLI_S3_OPTIONS                                                                         \
    {"s3-endpoint", required_argument, NULL, DIP_OPT_S3_ENDPOINT},                                 \
        {"s3-region", required_argument, NULL, DIP_OPT_S3_REGION},                                 \
    {                                                                                              \
        "s3-addressing", required_argument, NULL, DIP_OPT_S3_ADDRESSING                            \
    }

struct dip__cli_s3 {
    const char *endpoint, *region; /* flags; NULL: the environment */
    int path_style;                /* -1: the environment or the default */
    void *client;                  /* dip_s3 *, made by dip__cli_s3_client */
};
#define DIP_CLI_S3_INIT                                                                            \
    {                                                                                              \
        NULL, NULL, -1, NULL                                                                       \
    }

extern const char dip__cli_s3_help[];
/* Returns 1 when `opt` was an object storage option (sets *bad on a bad value). */
int dip__cli_s3_opt(int opt, const char *arg, struct dip__cli_s3 *c, int *bad);
/* 1 for "s3://..." */
int dip__cli_s3_is_url(const char *s);
struct dip_s3_config;
/* The environment's configuration with the flags applied (strings borrowed). */
void dip__cli_s3_config(const struct dip__cli_s3 *c, struct dip_s3_config *cfg);
/* Makes the client (once; not thread-safe, call before starting threads). */
int dip__cli_s3_client(struct dip__cli_s3 *c, struct dip_err *err);
/* The inputs with every s3://bucket/prefix/ and s3://bucket/glob expanded to the matching
 * objects' URLs (in key order; a glob's '*' and '?' do not cross '/'); other arguments are kept
 * as they are. *out: *nout dip_strdup'ed strings (dip__cli_strv_free). DIP_ENOTFOUND when a
 * prefix or glob matches nothing. */
int dip__cli_s3_expand(struct dip__cli_s3 *c, char **args, size_t n, char ***out, size_t *nout,
                       struct dip_err *err);
void dip__cli_strv_free(char **v, size_t n);
/* Reads object `url` into one dip_malloc'ed buffer of its size (at most max_bytes). */
int dip__cli_s3_read(struct dip__cli_s3 *c, const char *url, size_t max_bytes, uint8_t **data,
                     size_t *len, struct dip_err *err);
/* Puts `len` bytes as object `url` (multipart above 8 MiB). */
int dip__cli_s3_write(struct dip__cli_s3 *c, const char *url, const void *data, size_t len,
                      struct dip_err *err);
/* The first up to 16 bytes of object `url` (for sniffing its format); 0 bytes on failure. */
size_t dip__cli_s3_head(struct dip__cli_s3 *c, const char *url, uint8_t head[16]);
void dip__cli_s3_cleanup(struct dip__cli_s3 *c);

/* Under mpirun (issue 12): the store's S3 client as the executor's object I/O, so that workers
 * get inputs and put outputs themselves (ud: c, which must outlive the executor). Returns 0, or
 * DIP_EINVAL when dip was built without object storage. */
struct dip_object_io;
int dip__cli_s3_objects(struct dip__cli_s3 *c, struct dip_object_io *io);
/* The configuration the workers' open() takes: this process's endpoint, region, addressing and
 * credentials as "name=value" lines, dip_malloc'ed into *out. It holds secrets: wipe it
 * (explicit_bzero) before dip_free, never log it. A worker fills what it lacks from its own
 * environment and flags. */
int dip__cli_s3_conf(struct dip__cli_s3 *c, char **out, struct dip_err *err);

#endif
