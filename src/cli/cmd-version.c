/* SPDX-License-Identifier: MIT */
/* `dip version`: dip's version and the versions of the libraries it was linked with. */
#include <string.h>

#include "cli.h"
#include "dip/crypto.h"
#ifdef DIP_WITH_STORE
#include "dip/s3.h"
#endif
#ifdef DIP_WITH_SERVER
#include "dip/server.h"
#include "dip/store.h"
#endif

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
#ifdef DIP_WITH_SERVER
    printf("%s\n%s\n", dip_store_version(), dip_server_version());
#endif
    printf("%s\n", dip_crypto_version());
#ifdef DIP_WITH_STORE
    printf("%s\n", dip_s3_version());
#endif
#ifdef DIP_WITH_MPI
    dip_mpi_version(buf, sizeof(buf));
    if (buf[0])
        printf("%s\n", buf);
#endif
    dip_devices_describe(buf, sizeof(buf));
    fputs(buf, stdout);
#ifdef __VERSION__
    printf("compiler %s\n", __VERSION__);
#endif
    return 0;
}
