/* SPDX-License-Identifier: MIT */
/* Object storage options shared by the commands that read or write s3:// paths (process, serve,
 * s3): the environment gives the defaults, flags override them. Secrets come only from the
 * environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), never from flags that `ps` shows. */
#ifndef DIP_CLI_S3_OPTS_H
#define DIP_CLI_S3_OPTS_H

#ifdef DIP_WITH_STORE
#include "dip/s3.h"

enum {
    DIP_OPT_S3_ENDPOINT = 1100,
    DIP_OPT_S3_REGION,
    DIP_OPT_S3_ADDRESSING,
};
#define DIP_CLI_S3_OPTIONS                                                                         \
    {"s3-endpoint", required_argument, NULL, DIP_OPT_S3_ENDPOINT},                                 \
        {"s3-region", required_argument, NULL, DIP_OPT_S3_REGION},                                 \
        {"s3-addressing", required_argument, NULL, DIP_OPT_S3_ADDRESSING}

extern const char dip__cli_s3_help[];
/* Returns 1 when `opt` was an object storage option (sets *bad on a bad value). */
int dip__cli_s3_opt(int opt, const char *arg, struct dip_s3_config *c, int *bad);
#endif

#endif
