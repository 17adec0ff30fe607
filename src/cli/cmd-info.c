/* SPDX-License-Identifier: MIT */
/* `dip info`: what each file's header says (format, size, channels, depth, frames, orientation),
 * without decoding pixels. */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static const char help[] = "Usage: dip info [--json] [LIMITS] FILE...\n"
                           "\n"
                           "Prints format, width, height, channels, source bit depth, frames or\n"
                           "pages, EXIF orientation and colour model from each file's header\n"
                           "(no pixel decode). --json prints one JSON array.\n";

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

int dip__cmd_info(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        DIP_CLI_LIMIT_OPTIONS{NULL, 0, NULL, 0},
    };
    struct dip_limits lim;
    int opt, json = 0, bad = 0, worst = 0;

    dip_limits_default(&lim);
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (dip__cli_limit_opt(opt, optarg, &lim, &bad))
            continue;
        if (opt == 'j') {
            json = 1;
        } else if (opt == 'h') {
            fputs(help, stdout);
            fputs(dip__cli_limits_help(), stdout);
            return 0;
        } else {
            fputs(help, stderr);
            return 2;
        }
    }
    if (bad)
        return 2;
    if (optind >= argc) {
        fputs(help, stderr);
        return 2;
    }
    if (json)
        printf("[");
    for (int i = optind; i < argc; i++) {
        struct dip_err err = {0};
        struct dip_image_info info;
        uint8_t *data = NULL;
        size_t len = 0;
        int rc = dip_file_read(argv[i], lim.max_input_bytes, &data, &len, &err);

        if (rc == 0)
            rc = dip_codec_probe(data, len, &lim, &info, &err);
        dip_free(data);
        if (rc && !err.msg[0])
            dip_err_set(&err, rc, "%s", dip_strerror(rc));
        if (rc && strncmp(err.msg, argv[i], strlen(argv[i])) != 0)
            dip_err_prefix(&err, "%s: ", argv[i]);
        if (rc && worst == 0)
            worst = rc;
        if (json) {
            printf("%s\n  {\"file\": ", i > optind ? "," : "");
            json_str(argv[i]);
            if (rc) {
                printf(", \"error\": {\"code\": \"%s\", \"message\": ", dip_err_name(rc));
                json_str(err.msg);
                printf("}}");
            } else {
                printf(", \"format\": \"%s\", \"width\": %d, \"height\": %d, \"channels\": %d, "
                       "\"bit_depth\": %d, \"frames\": %d, \"orientation\": %d, "
                       "\"progressive\": %s, \"lossless\": %s, \"color\": ",
                       dip_format_name(info.format), info.width, info.height, info.channels,
                       info.bit_depth, info.frames, info.orientation,
                       info.progressive ? "true" : "false", info.lossless ? "true" : "false");
                json_str(info.color);
                printf("}");
            }
        } else if (rc) {
            fprintf(stderr, "%s\n", err.msg);
        } else {
            printf("%s: %s %dx%d, %d channel%s%s%s%s, %d-bit, %d frame%s, orientation %d%s%s\n",
                   argv[i], dip_format_name(info.format), info.width, info.height, info.channels,
                   info.channels == 1 ? "" : "s", info.color[0] ? " (" : "", info.color,
                   info.color[0] ? ")" : "", info.bit_depth, info.frames,
                   info.frames == 1 ? "" : "s", info.orientation,
                   info.progressive
                       ? (info.format == DIP_FORMAT_PNG ? ", interlaced" : ", progressive")
                       : "",
                   info.lossless ? ", lossless" : "");
        }
    }
    if (json)
        printf("\n]\n");
    return worst ? dip_err_exit_code(worst) : 0;
}
