/* SPDX-License-Identifier: MIT */
/* `dip token`: creates, lists and revokes the API users of `dip serve`. A token is printed once;
 * the store keeps only its SHA-256. Works while the server runs (SQLite WAL). */
#ifdef DIP_WITH_SERVER
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "dip/image.h"
#include "dip/store.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: dip token create NAME [--admin] [--data DIR]\n"
            "       dip token list [--data DIR]\n"
            "       dip token revoke NAME [--purge] [--data DIR]\n\n"
            "Users of the HTTP API. 'create' prints the new token once (keep it: only its hash\n"
            "is stored); clients send it as 'Authorization: Bearer TOKEN'. An admin sees every\n"
            "user's jobs and the cluster. 'revoke --purge' also deletes the user's jobs, results\n"
            "and the blobs no other job uses (while dip serve runs, unfinished jobs are\n"
            "cancelled, and the server frees their blobs at its next retention pass). The data\n"
            "folder defaults to ./var.\n");
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

/* Deletes every job of `name`. Blobs are freed here only when no server holds the data folder
 * (its lock); otherwise the server's retention pass frees them, since only the blob writer may. */
static int purge(dip_store *st, const char *data, const char *name, struct dip_err *err)
{
    char(*ids)[DIP_STORE_ID_LEN] = dip_calloc(256, sizeof(*ids));
    char lock[4200];
    uint64_t jobs = 0, files = 0, bytes = 0, busy = 0;
    size_t n = 0;
    int fd, rc = 0, serving;

    if (ids == NULL)
        return DIP_ENOMEM;
    snprintf(lock, sizeof(lock), "%s/serve.lock", data);
    fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    serving = fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0;
    for (;;) {
        size_t done = 0;
        rc = dip_store_jobs_before(st, name, 0, ids, 256, &n, err);
        if (rc != 0 || n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            struct dip_store_job *job = NULL;
            uint64_t f = 0, b = 0;
            int final = 1;
            if (dip_store_job_get(st, ids[i], 0, &job, NULL) == 0)
                final = strcmp(job->state, "done") == 0 || strcmp(job->state, "failed") == 0 ||
                        strcmp(job->state, "cancelled") == 0;
            dip_store_job_free(job);
            if (!final && serving) {
                /* The server's runner may be computing it: cancel now, delete on a rerun. */
                dip_store_job_set_state(st, ids[i], "cancelled", 0, NULL);
                dip_store_items_finish(st, ids[i], "cancelled", NULL, NULL);
                busy++;
                continue;
            }
            if (dip_store_job_delete(st, ids[i], !serving, &f, &b, err) == 0) {
                jobs++;
                files += f;
                bytes += b;
                done++;
            }
        }
        if (done == 0)
            break;
    }
    if (rc == 0 && !serving) {
        uint64_t cf, cb, kf, kb;
        dip_store_blob_collect(st, 1e18, &cf, &cb, &kf, &kb);
        files += cf;
        bytes += cb;
    }
    if (rc == 0)
        fprintf(stderr, "dip token: deleted %llu job(s) of %s%s", (unsigned long long)jobs, name,
                serving ? "; the running dip serve frees their blobs at a retention pass (each "
                          "minute, for blobs older than an hour)"
                        : "");
    if (rc == 0 && !serving)
        fprintf(stderr, ", %llu blob(s), %llu bytes", (unsigned long long)files,
                (unsigned long long)bytes);
    if (rc == 0 && busy > 0)
        fprintf(stderr,
                "; %llu unfinished job(s) cancelled: run the command again once they "
                "stop",
                (unsigned long long)busy);
    if (rc == 0)
        fputc('\n', stderr);
    if (fd >= 0)
        close(fd);
    dip_free(ids);
    return rc;
}

int dip__cmd_token(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"admin", no_argument, NULL, 'a'},
        {"purge", no_argument, NULL, 'p'},
        {"data", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data = "./var", *verb, *name = NULL;
    struct dip_err err = {0};
    dip_store *st = NULL;
    int opt, admin = 0, purge_data = 0, rc = 0;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'a':
            admin = 1;
            break;
        case 'p':
            purge_data = 1;
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
        if (purge_data && (rc == 0 || rc == DIP_ENOTFOUND)) {
            dip_err_clear(&err);
            rc = purge(st, data, name, &err);
        }
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
