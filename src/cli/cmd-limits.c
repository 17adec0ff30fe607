/* SPDX-License-Identifier: MIT */
/* `dip limits`: the table of input limits (DIP_LIMITS_MAP in dip/limits.h) with defaults, ranges
 * and flags, as text, JSON or Markdown. The table in README.md is `dip limits --markdown`, and a
 * test keeps it so. */
#include <string.h>

#include "cli.h"

/* A byte count in whole KiB/MiB/GiB/TiB where it is one (268435456 -> "256 MiB"); any other
 * value as a plain number. */
static void amount(char *buf, size_t len, const struct dip_limit_info *in, long long v)
{
    static const char *const unit[] = {"TiB", "GiB", "MiB", "KiB"};
    size_t n = strlen(in->field);

    for (int u = 0; n > 6 && !strcmp(in->field + n - 6, "_bytes") && v > 0 && u < 4; u++) {
        int shift = 40 - 10 * u;
        if (v >= (1LL << shift) && v % (1LL << shift) == 0) {
            snprintf(buf, len, "%lld %s", v >> shift, unit[u]);
            return;
        }
    }
    snprintf(buf, len, "%lld", v);
}

static void print_markdown(void)
{
    printf("| limit | default | range | flag |\n|---|---|---|---|\n");
    for (int i = 0; i < DIP_LIMIT_COUNT; i++) {
        const struct dip_limit_info *in = dip_limit_info(i);
        char def[32], lo[32], hi[32];
        amount(def, sizeof(def), in, in->def);
        amount(lo, sizeof(lo), in, in->min);
        amount(hi, sizeof(hi), in, in->max);
        printf("| %s | %s | %s .. %s | `--%s` |\n", in->help, def, lo, hi, in->flag);
    }
}

static void print_json(void)
{
    printf("{\"limits\":[");
    for (int i = 0; i < DIP_LIMIT_COUNT; i++) {
        const struct dip_limit_info *in = dip_limit_info(i);
        /* field, flag and help are plain ASCII without quotes (a test checks the JSON parses). */
        printf("%s\n{\"name\":\"%s\",\"flag\":\"--%s\",\"default\":%lld,\"min\":%lld,"
               "\"max\":%lld,\"help\":\"%s\"}",
               i ? "," : "", in->field, in->flag, in->def, in->min, in->max, in->help);
    }
    printf("\n]}\n");
}

int dip__cmd_limits(int argc, char **argv)
{
    if (argc > 2) {
        fprintf(stderr, "dip limits: one option at most\n");
        return 2;
    }
    if (argc == 1) {
        fputs(dip__cli_limits_help(), stdout);
    } else if (!strcmp(argv[1], "--json")) {
        print_json();
    } else if (!strcmp(argv[1], "--markdown")) {
        print_markdown();
    } else if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("Usage: dip limits [--json | --markdown]\n\nLists the limits every input is "
               "checked against (from its header, before decoding), with their defaults, ranges "
               "and flags. `dip process`, `dip info` and `dip serve` take each flag.\n");
    } else {
        fprintf(stderr, "dip limits: unknown option '%s'\n", argv[1]);
        return 2;
    }
    return 0;
}
