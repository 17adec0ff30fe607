/* SPDX-License-Identifier: MIT */
/* The `dip` command: dispatches to subcommands. */
#include <stdio.h>

#include "dip/dip.h"

int main(void)
{
    printf("dip %s\n", DIP_VERSION);
    return 0;
}
