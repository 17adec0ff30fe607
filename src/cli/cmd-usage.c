/* SPDX-License-Identifier: MIT */
/* `dip usage`: per-user usage and cost from the service's store (the same figures as
 * GET /api/v1/usage), read while `dip serve` runs or not. It only reads: it takes no lock and
 * never starts the service. */
#ifdef DIP_WITH_SERVER
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "dip/image.h"
#include "dip/store.h"
#include "service/service.h"

static int price_arg(const char *name, const char *text, double *out)
{
    char *end = NULL;
    double v = strtod(text, &end);

    if (end == text || *end != '\0' || !(v >= 0 && v < 1e9)) {
        dip__cli_error("usage", "--%s '%s' is not a price (a number >= 0)", name, text);
        return 1;
    }
    *out = v;
    return 0;
}

int dip__cmd_usage(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"since", required_argument, NULL, 's'},
        {"until", required_argument, NULL, 'u'},
        {"user", required_argument, NULL, 'U'},
        {"json", no_argument, NULL, 'j'},
        {"cost-cpu-hour", required_argument, NULL, 'c'},
        {"cost-gb-month", required_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data = "./var", *user = NULL;
    struct dip_usage_prices prices = {0, 0};
    struct dip_err err = {0};
    struct timespec ts;
    double since = 0, until;
    dip_store *st = NULL;
    char *text = NULL;
    int opt, rc, json = 0, bad = 0;

    clock_gettime(CLOCK_REALTIME, &ts);
    until = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            data = optarg;
            break;
        case 's':
        case 'u':
            if (dip_usage_parse_time(optarg, opt == 's' ? &since : &until, &err) != 0) {
                dip__cli_error("usage", "--%s: %s", opt == 's' ? "since" : "until", err.msg);
                bad = 1;
            }
            break;
        case 'U':
            user = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'c':
            bad |= price_arg("cost-cpu-hour", optarg, &prices.cpu_hour);
            break;
        case 'g':
            bad |= price_arg("cost-gb-month", optarg, &prices.gb_month);
            break;
        default:
            fprintf(opt == 'h' ? stdout : stderr,
                    "Usage: dip usage [--data DIR] [--since DATE] [--until DATE] [--user NAME]\n"
                    "                 [--json] [--cost-cpu-hour P] [--cost-gb-month P]\n\n"
                    "Per-user usage from DIR/dip.db (default ./var): jobs, items (results made),\n"
                    "bytes in and out, CPU seconds spent on the user's items (thread CPU clocks),\n"
                    "bytes stored now and GB-months stored in the period. DATE is YYYY-MM-DD,\n"
                    "YYYY-MM-DDTHH:MM:SSZ or unix seconds (UTC); the period is [since, until),\n"
                    "until defaults to now. With prices, a cost per user (docs/deploy.md).\n"
                    "--json prints what GET /api/v1/usage answers.\n");
            return opt == 'h' ? 0 : 2;
        }
    }
    if (bad)
        return 2;
    if (optind != argc) {
        dip__cli_error("usage", "unexpected argument '%s'", argv[optind]);
        return 2;
    }
    if (until < since) {
        dip__cli_error("usage", "--until is before --since");
        return 2;
    }
    {
        /* Opening would create an empty store: refuse a folder that has none. */
        char db[4200];
        struct stat sb;
        snprintf(db, sizeof(db), "%s/dip.db", data);
        if (stat(db, &sb) != 0) {
            dip__cli_error("usage", "no database at %s (is --data right?)", db);
            return dip_err_exit_code(DIP_ENOTFOUND);
        }
    }
    rc = dip_store_open(data, &st, &err);
    if (rc == 0)
        rc = dip_usage_report(st, user, since, until, &prices, json, &text, &err);
    if (rc != 0)
        dip__cli_error("usage", "%s", dip_err_text(&err, rc));
    else
        fputs(text, stdout);
    dip_free(text);
    dip_store_close(st);
    return dip_err_exit_code(rc);
}
#else
/* Built without the service: ISO C wants one declaration per file. */
typedef int dip__cmd_usage_absent;
#endif
