/* SPDX-License-Identifier: MIT */
/* `dip version`: dip's version and the versions of the libraries it was linked with. */
#include <string.h>

#include "cli.h"

int dip__cmd_version(int argc, char **argv)
{
    char buf[1024];

    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("Usage: dip version\n\nPrints dip's version and those of the libraries it "
               "uses.\n");
        return 0;
    }
    printf("dip %s\n", DIP_VERSION);
    dip_codec_versions(buf, sizeof(buf));
    fputs(buf, stdout);
#ifdef __VERSION__
    printf("compiler %s\n", __VERSION__);
#endif
    return 0;
}
