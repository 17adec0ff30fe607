/* SPDX-License-Identifier: MIT */
/* `dip s3`: list, copy in, copy out and delete objects of S3-compatible storage with the same
 * client, configuration and retries that dip process and dip serve use. Handy to check a setup
 * (credentials, endpoint, addressing) before a batch, and to move files in and out. */
#ifdef DIP_WITH_STORE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dip/s3.h"
#include "s3-opts.h"

static const char help[] =
    "Usage: dip s3 ls s3://BUCKET/PREFIX     list objects (size and key)\n"
    "       dip s3 put FILE s3://BUCKET/KEY  upload (multipart above 8 MiB)\n"
    "       dip s3 get s3://BUCKET/KEY FILE  download (to FILE.tmp, then renamed)\n"
    "       dip s3 rm s3://BUCKET/KEY        delete\n"
    "       dip s3 presign s3://BUCKET/KEY   print a presigned GET URL (no request made)\n"
    "Options:\n"
    "      --range A-B       get: only bytes A..B (printed to FILE as well)\n"
    "      --expires SECONDS presign: validity, 1..604800 (default 900)\n";

struct ls {
    uint64_t n;
};

static int print_key(void *ud, const char *key, uint64_t size)
{
    ((struct ls *)ud)->n++;
    printf("%12" PRIu64 "  %s\n", size, key);
    return 0;
}

static int get_to_file(dip_s3 *s3, const char *bucket, const char *key, const char *range,
                       const char *path, struct dip_err *err)
{
    char tmp[4200];
    int fd, rc;

    snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return dip_err_set(err, DIP_EIO, "%s: %s", tmp, strerror(errno));
    if (range != NULL) {
        unsigned long long a, b;
        uint8_t *data = NULL;
        size_t len = 0;
        if (sscanf(range, "%llu-%llu", &a, &b) != 2 || b < a) {
            rc = dip_err_set(err, DIP_EINVAL, "--range %s: want FIRST-LAST", range);
        } else {
            rc = dip_s3_get_range(s3, bucket, key, a, b, &data, &len, err);
            if (rc == 0 && write(fd, data, len) != (ssize_t)len)
                rc = dip_err_set(err, DIP_EIO, "%s: %s", tmp, strerror(errno));
            dip_free(data);
        }
    } else {
        rc = dip_s3_get_fd(s3, bucket, key, fd, err);
    }
    if (close(fd) != 0 && rc == 0)
        rc = dip_err_set(err, DIP_EIO, "%s: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = dip_err_set(err, DIP_EIO, "%s: %s", path, strerror(errno));
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int dip__cmd_s3(int argc, char **argv)
{
    enum { OPT_RANGE = DIP_OPT_FIRST_FREE, OPT_EXPIRES };
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"range", required_argument, NULL, OPT_RANGE},
        {"expires", required_argument, NULL, OPT_EXPIRES},
        DIP_CLI_S3_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct dip__cli_s3 cfg = DIP_CLI_S3_INIT;
    struct dip_err err = {0};
    dip_s3 *s3 = NULL;
    const char *range = NULL, *verb, *key;
    char bucket[64];
    int opt, bad = 0, rc = 0, nargs;
    unsigned long expires = 900;
    char **args, *end;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (dip__cli_s3_opt(opt, optarg, &cfg, &bad))
            continue;
        switch (opt) {
        case OPT_RANGE:
            range = optarg;
            break;
        case OPT_EXPIRES:
            errno = 0;
            expires = strtoul(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || optarg[0] < '0' || optarg[0] > '9' || expires < 1 ||
                expires > 604800) {
                dip__cli_error("s3", "--expires %s: want whole seconds, 1..604800", optarg);
                return 2;
            }
            break;
        case 'h':
            fputs(help, stdout);
            fputs(dip__cli_s3_help, stdout);
            return 0;
        default:
            fputs(help, stderr);
            return 2;
        }
    }
    if (bad)
        return 2;
    nargs = argc - optind;
    args = argv + optind;
    if (nargs < 2) {
        fputs(help, stderr);
        return 2;
    }
    verb = args[0];
    rc = dip__cli_s3_client(&cfg, &err);
    if (rc != 0)
        goto out;
    s3 = cfg.client;
    if (strcmp(verb, "ls") == 0 && nargs == 2) {
        struct ls l = {0};
        rc = dip_s3_parse_url(args[1], bucket, &key, &err);
        if (rc == 0)
            rc = dip_s3_list(s3, bucket, key, print_key, &l, &err);
    } else if (strcmp(verb, "put") == 0 && nargs == 3) {
        int fd = open(args[1], O_RDONLY | O_CLOEXEC);
        rc = dip_s3_parse_url(args[2], bucket, &key, &err);
        if (rc == 0 && fd < 0)
            rc = dip_err_set(&err, DIP_EIO, "%s: %s", args[1], strerror(errno));
        if (rc == 0 && key[0] == '\0')
            rc = dip_err_set(&err, DIP_EINVAL, "%s: no key after the bucket", args[2]);
        if (rc == 0)
            rc = dip_s3_put_fd(s3, bucket, key, fd, &err);
        if (fd >= 0)
            close(fd);
    } else if (strcmp(verb, "get") == 0 && nargs == 3) {
        rc = dip_s3_parse_url(args[1], bucket, &key, &err);
        if (rc == 0)
            rc = get_to_file(s3, bucket, key, range, args[2], &err);
    } else if (strcmp(verb, "rm") == 0 && nargs == 2) {
        rc = dip_s3_parse_url(args[1], bucket, &key, &err);
        if (rc == 0)
            rc = dip_s3_delete(s3, bucket, key, &err);
    } else if (strcmp(verb, "presign") == 0 && nargs == 2) {
        char *url = NULL;
        rc = dip_s3_parse_url(args[1], bucket, &key, &err);
        if (rc == 0 && key[0] == '\0')
            rc = dip_err_set(&err, DIP_EINVAL, "%s: no key after the bucket", args[1]);
        if (rc == 0)
            rc = dip_s3_presign(s3, bucket, key, (unsigned)expires, &url, &err);
        if (rc == 0)
            printf("%s\n", url);
        dip_free(url);
    } else {
        fputs(help, stderr);
        rc = DIP_EINVAL;
    }
out:
    if (rc != 0 && err.msg[0])
        dip__cli_error("s3", "%s", dip_err_text(&err, rc));
    dip__cli_s3_cleanup(&cfg);
    return rc ? dip_err_exit_code(rc) : 0;
}
#else
typedef int dip__cmd_s3_absent;
#endif
