/* SPDX-License-Identifier: MIT */
/* The --device option shared by dip process, dip serve and dip bench. */
#include "cli.h"

int dip__cli_device(const char *cmd, const char *val)
{
    struct dip_err err = {0};
    enum dip_device d;

    if (dip_device_parse(val, &d, &err) != 0) {
        dip__cli_error(cmd, "%s", err.msg);
        return 1;
    }
    dip_device_set_default(d);
    return 0;
}
