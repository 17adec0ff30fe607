/* SPDX-License-Identifier: MIT */
/* `dip token`: creates, lists and revokes the API users of `dip serve`. A token is printed once;
 * the store keeps only its SHA-256. Works while the server runs (SQLite WAL). */
#ifdef DIP_WITH_SERVER
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "dip/store.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: dip token create NAME [--admin] [--data DIR]\n"
               "       dip token list [--data DIR]\n"
               "       dip token revoke NAME [--data DIR]\n\n"
               "Users of the HTTP API. 'create' prints the new token once (keep it: only its hash\n"
               "is stored); clients send it as 'Authorization: Bearer TOKEN'. An admin sees every\n"
               "user's jobs and the cluster. The data folder defaults to ./var.\n");
}

static void print_user(void *ud, const char *name, int admin, double created)
{
    char when[32];
    time_t t = (time_t)created;
    struct tm tm;

    (void)ud;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%SZ", &tm);
    printf("%-24s %-6s %s\n", name, admin ? "admin" : "user", when);
}

int dip__cmd_token(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"admin", no_argument, NULL, 'a'},
        {"data", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data = "./var", *verb, *name = NULL;
    struct dip_err err = {0};
    dip_store *st = NULL;
    int opt, admin = 0, rc = 0;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'a':
            admin = 1;
            break;
        case 'd':
            data = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    verb = argv[optind++];
    if (optind < argc)
        name = argv[optind++];
    if (optind < argc ||
        ((strcmp(verb, "create") == 0 || strcmp(verb, "revoke") == 0) && name == NULL) ||
        (strcmp(verb, "list") == 0 && name != NULL)) {
        usage(stderr);
        return 2;
    }
    rc = dip_store_open(data, &st, &err);
    if (rc != 0)
        goto out;
    if (strcmp(verb, "create") == 0) {
        char token[80];
        rc = dip_store_token_create(st, name, admin, token, &err);
        if (rc == 0) {
            printf("%s\n", token);
            fprintf(stderr, "dip token: created %s%s; the token above is shown only once\n", name,
                    admin ? " (admin)" : "");
        }
    } else if (strcmp(verb, "list") == 0) {
        rc = dip_store_token_list(st, print_user, NULL, &err);
    } else if (strcmp(verb, "revoke") == 0) {
        rc = dip_store_token_revoke(st, name, &err);
        if (rc == 0)
            fprintf(stderr, "dip token: revoked %s\n", name);
    } else {
        dip__cli_error("token", "unknown action '%s' (create, list, revoke)", verb);
        rc = DIP_EINVAL;
    }
out:
    if (rc != 0 && err.code != 0)
        dip__cli_error("token", "%s", dip_err_text(&err, rc));
    dip_store_close(st);
    return dip_err_exit_code(rc);
}
#else
/* Built without the service: ISO C wants one declaration per file. */
typedef int dip__cmd_token_absent;
#endif
