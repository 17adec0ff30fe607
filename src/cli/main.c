/* SPDX-License-Identifier: MIT */
/* The `dip` command: dispatches to the subcommands listed in commands.def and holds the option
 * helpers they share. */
#include <errno.h>
#include <getopt.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} commands[] = {
#define DIP_CMD(name, fn, summary) {#name, fn, summary},
#include "commands.def"
#undef DIP_CMD
};

/* "268435456 = 256 MiB" for whole mebibytes, else the plain number. */
static void format_amount(char *buf, size_t len, long long v)
{
    if (v >= (1LL << 20) && v % (1LL << 20) == 0)
        snprintf(buf, len, "%lld = %lld MiB", v, v >> 20);
    else
        snprintf(buf, len, "%lld", v);
}

const char *dip__cli_limits_help(void)
{
    static char text[2048];
    size_t n;

    if (text[0] != '\0')
        return text;
    n = (size_t)snprintf(text, sizeof(text),
                         "Limits (checked from each image's header before decoding):\n");
    for (int i = 0; i < DIP_LIMIT_COUNT && n < sizeof(text); i++) {
        const struct dip_limit_info *in = dip_limit_info(i);
        char flag[32], def[48];
        snprintf(flag, sizeof(flag), "--%s N", in->flag);
        format_amount(def, sizeof(def), in->def);
        n += (size_t)snprintf(text + n, sizeof(text) - n, "  %-18s %s (default %s)\n", flag,
                              in->help, def);
    }
    return text;
}

void dip__cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "dip %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int dip__cli_int(const char *opt, const char *val, long min, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(val, &end, 10);
    if (end == val || *end != '\0' || errno == ERANGE || v < min || v > max) {
        fprintf(stderr, "dip: --%s: '%s' is not an integer in %ld..%ld\n", opt, val, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int dip__cli_limit_opt(int opt, const char *arg, struct dip_limits *lim, int *bad)
{
    const struct dip_limit_info *in = dip_limit_info(opt - DIP_OPT_LIMIT);
    long v;

    if (opt < DIP_OPT_LIMIT || in == NULL)
        return 0;
    if (dip__cli_int(in->flag, arg, (long)in->min, (long)in->max, &v) == 0)
        dip_limits_set(lim, opt - DIP_OPT_LIMIT, v, NULL);
    else
        *bad = 1;
    return 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "dip %s: distributed image processing\n\n"
            "Usage: dip COMMAND [OPTIONS] ...\n\nCommands:\n",
            DIP_VERSION);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'dip COMMAND --help' describes one command. Example:\n"
               "  dip process -p 'gaussian(size=5) | canny' -o out/ photos/*.jpg\n");
}

/* glibc's malloc serves a buffer past its mmap threshold (128 KiB at first, raised to the size of
 * the last such buffer freed) with a fresh mapping, and gives the top of the heap back to the
 * kernel as soon as it exceeds twice that. An image pipeline allocates and frees the same few
 * megabyte-sized buffers for every image and tile, so each image's buffers were faulted in page
 * by page again: 1.5 million page faults and 3.3-3.5 s of system time for 600 1080p JPEGs
 * through a 4-op pipeline on 2 threads (7.2 s wall), 8 500 faults and 0.4-0.6 s (5.6 s wall) with
 * buffers up to 32 MiB kept in the heap and up to 64 MiB of free heap kept (docs/bench.md, "Page
 * faults"). Peak RSS 53 -> 57 MB; larger buffers are still mapped and unmapped. A process-wide
 * choice, so it is made here and not in libdip; GLIBC_TUNABLES with a malloc setting wins. */
static void tune_malloc(void)
{
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
    const char *t = getenv("GLIBC_TUNABLES");

    if (t != NULL && strstr(t, "glibc.malloc.") != NULL)
        return;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

int main(int argc, char **argv)
{
    tune_malloc();
    dip_device_set_default(DIP_DEVICE_AUTO); /* --device overrides: a GPU when present */
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version"))
        return dip__cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "dip: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
