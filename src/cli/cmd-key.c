/* SPDX-License-Identifier: MIT */
/* `dip key create FILE`: writes a new 32-byte key (mode 0600) for --encrypt-key (blobs at rest)
 * and the cluster key. `dip key id FILE` prints the key's public fingerprint, which error
 * messages use to tell keys apart. The key bytes themselves are never printed. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "dip/crypto.h"

static const char help[] =
    "Usage: dip key create FILE   write 32 random bytes to FILE (mode 0600; never overwrites)\n"
    "       dip key id FILE       print the key's fingerprint (not secret)\n"
    "\n"
    "A key file encrypts the service's blobs at rest (dip serve --encrypt-key FILE) and seals\n"
    "cluster traffic. Keep it readable by its owner only: a key file that group or others may\n"
    "read is refused. Losing the key loses every blob encrypted with it.\n";

int dip__cmd_key(int argc, char **argv)
{
    struct dip_err err = {0};
    struct dip_key key;
    char id[DIP_KEY_ID_HEX];
    int rc;

    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(help, stdout);
        return 0;
    }
    if (argc != 3 || (strcmp(argv[1], "create") != 0 && strcmp(argv[1], "id") != 0)) {
        fputs(help, stderr);
        return 2;
    }
    if (strcmp(argv[1], "create") == 0) {
        rc = dip_key_create(argv[2], &err);
        if (rc == 0)
            rc = dip_key_load(argv[2], &key, &err);
    } else {
        rc = dip_key_load(argv[2], &key, &err);
    }
    if (rc != 0) {
        dip__cli_error("key", "%s", dip_err_text(&err, rc));
        return dip_err_exit_code(rc);
    }
    dip_key_id(&key, id);
    dip_key_wipe(&key);
    if (strcmp(argv[1], "create") == 0)
        printf("dip key: wrote %s (key id %s)\n", argv[2], id);
    else
        printf("%s\n", id);
    return 0;
}
