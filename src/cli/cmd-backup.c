/* SPDX-License-Identifier: MIT */
/* `dip backup FILE`: a consistent copy of the service's database, taken with SQLite's online
 * backup while `dip serve` keeps running. Blobs are immutable files: copy blobs/ with any tool. */
#ifdef DIP_WITH_SERVER
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cli.h"
#include "dip/store.h"

int dip__cmd_backup(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data = "./var";
    struct dip_err err = {0};
    dip_store *st = NULL;
    int opt, rc;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (opt == 'd') {
            data = optarg;
        } else {
            fprintf(opt == 'h' ? stdout : stderr,
                    "Usage: dip backup FILE [--data DIR]\n\n"
                    "Writes a consistent copy of DIR/dip.db (default ./var) to FILE while the\n"
                    "service runs. The blobs under DIR/blobs/ never change once written: copy\n"
                    "them with cp -a or rsync.\n");
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind + 1 != argc) {
        dip__cli_error("backup", "expected one FILE (dip backup FILE [--data DIR])");
        return 2;
    }
    {
        /* Opening would create an empty store: refuse a folder that has none. */
        char db[4200];
        struct stat sb;
        snprintf(db, sizeof(db), "%s/dip.db", data);
        if (stat(db, &sb) != 0) {
            dip__cli_error("backup", "no database at %s (is --data right?)", db);
            return dip_err_exit_code(DIP_ENOTFOUND);
        }
    }
    rc = dip_store_open(data, &st, &err);
    if (rc == 0)
        rc = dip_store_backup(st, argv[optind], &err);
    if (rc != 0)
        dip__cli_error("backup", "%s", dip_err_text(&err, rc));
    else
        fprintf(stderr, "dip backup: %s/dip.db -> %s\n", data, argv[optind]);
    dip_store_close(st);
    return dip_err_exit_code(rc);
}
#else
/* Built without the service: ISO C wants one declaration per file. */
typedef int dip__cmd_backup_absent;
#endif
