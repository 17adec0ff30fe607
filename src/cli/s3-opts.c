/* SPDX-License-Identifier: MIT */
/* Object storage options shared by dip process, dip serve and dip s3 (see s3-opts.h). */
#ifdef DIP_WITH_STORE
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "s3-opts.h"

const char dip__cli_s3_help[] =
    "Object storage (s3://bucket/key; environment AWS_ENDPOINT_URL, AWS_REGION,\n"
    "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN; see README):\n"
    "  --s3-endpoint URL     http(s)://HOST[:PORT] of an S3-compatible service\n"
    "                        (default AWS_ENDPOINT_URL, else AWS S3 in the region)\n"
    "  --s3-region R         signing region (default AWS_REGION, else us-east-1)\n"
    "  --s3-addressing A     path (http://host/bucket/key) or virtual (http://bucket.host/key);\n"
    "                        default path with an endpoint, virtual for AWS\n";

int dip__cli_s3_opt(int opt, const char *arg, struct dip_s3_config *c, int *bad)
{
    switch (opt) {
    case DIP_OPT_S3_ENDPOINT:
        c->endpoint = arg;
        return 1;
    case DIP_OPT_S3_REGION:
        c->region = arg;
        return 1;
    case DIP_OPT_S3_ADDRESSING:
        if (strcmp(arg, "path") == 0) {
            c->path_style = 1;
        } else if (strcmp(arg, "virtual") == 0) {
            c->path_style = 0;
        } else {
            fprintf(stderr, "dip: --s3-addressing must be 'path' or 'virtual'\n");
            *bad = 1;
        }
        return 1;
    default:
        return 0;
    }
}
#else
typedef int dip__cli_s3_opts_absent;
#endif
