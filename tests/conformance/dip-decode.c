/* SPDX-License-Identifier: MIT */
/* Test tool for the conformance suite: probes and decodes one file with dip's codecs (default
 * limits, format sniffed from the bytes, never from the name) and prints one JSON line with both
 * results and the header facts; on success it writes the decoded pixels as an 8-bit .npy array
 * (H x W or H x W x C). The Python tests compare that array with the reference a package ships.
 * Usage: dip-decode [--no-rotate] FILE [OUT.npy] */
#include <stdio.h>
#include <string.h>

#include "dip/codec.h"
#include "npy.h"

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

int main(int argc, char **argv)
{
    struct dip_limits lim;
    struct dip_decode_opts opts;
    struct dip_image_info pinfo, info;
    struct dip_err perr = {0}, err = {0};
    const char *in = NULL, *outp = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    dip_image *img = NULL;
    int prc, rc, i;

    dip_limits_default(&lim);
    dip_decode_opts_default(&opts);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-rotate") == 0)
            opts.autorotate = 0;
        else if (in == NULL)
            in = argv[i];
        else
            outp = argv[i];
    }
    if (in == NULL) {
        fprintf(stderr, "usage: dip-decode [--no-rotate] FILE [OUT.npy]\n");
        return 2;
    }
    rc = dip_file_read(in, lim.max_input_bytes, &data, &len, &err);
    if (rc) {
        fprintf(stderr, "dip-decode: %s\n", dip_err_text(&err, rc));
        return 2;
    }
    memset(&pinfo, 0, sizeof(pinfo));
    memset(&info, 0, sizeof(info));
    prc = dip_codec_probe(data, len, &lim, &pinfo, &perr);
    rc = dip_codec_decode(data, len, &lim, &opts, &img, &info, &err);
    printf("{\"probe_rc\": \"%s\", \"probe_msg\": ", dip_err_name(prc));
    json_str(prc ? dip_err_text(&perr, prc) : "");
    printf(", \"probe\": {\"format\": \"%s\", \"width\": %d, \"height\": %d, \"channels\": %d, "
           "\"frames\": %d, \"orientation\": %d}",
           dip_format_name(pinfo.format), pinfo.width, pinfo.height, pinfo.channels, pinfo.frames,
           pinfo.orientation);
    printf(", \"rc\": \"%s\", \"msg\": ", dip_err_name(rc));
    json_str(rc ? dip_err_text(&err, rc) : "");
    printf(", \"format\": \"%s\", \"width\": %d, \"height\": %d, \"channels\": %d, "
           "\"bit_depth\": %d, \"frames\": %d, \"orientation\": %d, \"progressive\": %d, "
           "\"lossless\": %d, \"color\": ",
           dip_format_name(info.format), info.width, info.height, info.channels, info.bit_depth,
           info.frames, info.orientation, info.progressive, info.lossless);
    json_str(info.color);
    if (img != NULL)
        printf(", \"out\": [%d, %d, %d]", dip_image_width(img), dip_image_height(img),
               dip_image_channels(img));
    printf("}\n");
    if (rc == 0 && outp != NULL && npy_write(outp, img) != 0) {
        fprintf(stderr, "dip-decode: cannot write %s\n", outp);
        rc = -1;
    }
    dip_image_unref(img);
    dip_free(data);
    return rc < 0 ? 2 : 0;
}
