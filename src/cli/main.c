/* SPDX-License-Identifier: MIT */
/* The `dip` command: dispatches to the subcommands listed in commands.def and holds the option
 * helpers they share. */
#include <errno.h>
#include <getopt.h>
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

const char dip__cli_limits_help[] =
    "Limits (checked from each image's header before decoding):\n"
    "  --max-width N      pixels per row (default 65535)\n"
    "  --max-height N     rows (default 65535)\n"
    "  --max-pixels N     width*height (default 100000000)\n"
    "  --max-bytes N      bytes of one input file (default 268435456 = 256 MiB)\n"
    "  --max-frames N     frames/pages examined (default 100)\n"
    "  --max-scans N      progressive JPEG scans (default 100)\n"
    "  --max-metadata N   metadata bytes (default 16777216 = 16 MiB)\n";

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
    long v;

    switch (opt) {
    case DIP_OPT_MAX_WIDTH:
        *bad |= dip__cli_int("max-width", arg, 1, 1 << 30, &v);
        lim->max_width = (int)v;
        return 1;
    case DIP_OPT_MAX_HEIGHT:
        *bad |= dip__cli_int("max-height", arg, 1, 1 << 30, &v);
        lim->max_height = (int)v;
        return 1;
    case DIP_OPT_MAX_PIXELS:
        *bad |= dip__cli_int("max-pixels", arg, 1, 1L << 40, &v);
        lim->max_pixels = (uint64_t)v;
        return 1;
    case DIP_OPT_MAX_BYTES:
        *bad |= dip__cli_int("max-bytes", arg, 1, 1L << 40, &v);
        lim->max_input_bytes = (size_t)v;
        return 1;
    case DIP_OPT_MAX_FRAMES:
        *bad |= dip__cli_int("max-frames", arg, 1, 1 << 20, &v);
        lim->max_frames = (int)v;
        return 1;
    case DIP_OPT_MAX_SCANS:
        *bad |= dip__cli_int("max-scans", arg, 1, 1 << 20, &v);
        lim->max_jpeg_scans = (int)v;
        return 1;
    case DIP_OPT_MAX_METADATA:
        *bad |= dip__cli_int("max-metadata", arg, 0, 1L << 40, &v);
        lim->max_metadata_bytes = (size_t)v;
        return 1;
    default:
        return 0;
    }
}

static void usage(FILE *f)
{
    fprintf(f, "dip %s: distributed image processing\n\n"
               "Usage: dip COMMAND [OPTIONS] ...\n\nCommands:\n",
            DIP_VERSION);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'dip COMMAND --help' describes one command. Example:\n"
               "  dip process -p 'gaussian(size=5) | canny' -o out/ photos/*.jpg\n");
}

int main(int argc, char **argv)
{
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
