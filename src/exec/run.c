/* SPDX-License-Identifier: MIT */
/* Placeholder until the local executor lands. */
#include "dip/exec.h"

int dip__exec_placeholder(void);
int dip__exec_placeholder(void)
{
    return 0;
}
