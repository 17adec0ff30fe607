/* SPDX-License-Identifier: MIT */
/* Shared pieces of the `dip` command's subcommands: the command table and option helpers. */
#ifndef DIP_CLI_H
#define DIP_CLI_H

#include <stdio.h>

#include "dip/dip.h"

#define DIP_CMD(name, fn, summary) int fn(int argc, char **argv);
#include "commands.def"
#undef DIP_CMD

/* Parses a non-negative integer option value; prints an error naming the option on failure. */
int dip__cli_int(const char *opt, const char *val, long min, long max, long *out);
/* Prints "dip CMD: message" to stderr. */
void dip__cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Options shared by commands that take limits: returns 1 when `opt` was a limit option. */
int dip__cli_limit_opt(int opt, const char *arg, struct dip_limits *lim, int *bad);
/* The help of the limit options, generated from DIP_LIMITS_MAP (a static string). */
const char *dip__cli_limits_help(void);
/* --device cpu|opencl|auto: sets the process default device; prints an error on a bad value. */
int dip__cli_device(const char *cmd, const char *val);
/* Rank 0's status file for dip mpirun (cmd-mpirun.c): open (and lock) it once this process is
 * the coordinator, write the exit status once every output and the summary are out. No-ops when
 * DIP_MPI_STATUS_FILE is unset. */
void dip__cli_status_open(void);
void dip__cli_status_write(int exit_code, size_t lost);

/* getopt_long codes for the limit options, DIP_OPT_LIMIT + enum dip_limit_id (above any short
 * option character), generated from DIP_LIMITS_MAP with their names. The list ends in a comma. */
enum { DIP_OPT_LIMIT = 1000, DIP_OPT_FIRST_FREE = DIP_OPT_LIMIT + DIP_LIMIT_COUNT };
#define DIP__CLI_LIMIT_OPTION(field, type, def, min, max, flag, help)                              \
    {flag, required_argument, NULL, DIP_OPT_LIMIT + DIP_LIMIT_##field},
#define DIP_CLI_LIMIT_OPTIONS DIP_LIMITS_MAP(DIP__CLI_LIMIT_OPTION)

#endif
