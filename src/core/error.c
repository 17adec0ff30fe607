/* SPDX-License-Identifier: MIT */
/* Error names, messages, HTTP statuses and exit codes, all generated from DIP_ERRNO_MAP, and the
 * setters for caller-owned struct dip_err. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dip/error.h"

struct errinfo {
    const char *name;
    const char *msg;
    int http;
    int exitc;
};

static const struct errinfo errtab[] = {[DIP_OK] = {"OK", "success", 200, 0},
#define XX(name, http, exitc, msg) [DIP_##name] = {#name, msg, http, exitc},
                                        DIP_ERRNO_MAP(XX)
#undef XX
};

static const struct errinfo *lookup(int code)
{
    if (code < 0 || code >= DIP_ERRNO_MAX)
        return NULL;
    return &errtab[code];
}

const char *dip_strerror(int code)
{
    const struct errinfo *e = lookup(code);
    return e ? e->msg : "unknown error";
}

const char *dip_err_name(int code)
{
    const struct errinfo *e = lookup(code);
    return e ? e->name : "EUNKNOWN";
}

int dip_err_http_status(int code)
{
    const struct errinfo *e = lookup(code);
    return e ? e->http : 500;
}

int dip_err_exit_code(int code)
{
    const struct errinfo *e = lookup(code);
    return e ? e->exitc : 1;
}

int dip_err_set(struct dip_err *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return code;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void dip_err_prefix(struct dip_err *err, const char *fmt, ...)
{
    char prefix[256];
    char old[sizeof(err->msg)];
    va_list ap;

    if (err == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    const char *rest;
    size_t lp, lr;

    memcpy(old, err->msg, sizeof(old));
    old[sizeof(old) - 1] = '\0';
    rest = old[0] ? old : dip_strerror(err->code);
    lp = strlen(prefix);
    lr = strlen(rest);
    if (lp > sizeof(err->msg) - 1)
        lp = sizeof(err->msg) - 1;
    if (lr > sizeof(err->msg) - 1 - lp)
        lr = sizeof(err->msg) - 1 - lp;
    memcpy(err->msg, prefix, lp);
    memcpy(err->msg + lp, rest, lr);
    err->msg[lp + lr] = '\0';
}

void dip_err_clear(struct dip_err *err)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->msg[0] = '\0';
}

const char *dip_err_text(const struct dip_err *err, int code)
{
    if (err != NULL && err->msg[0] != '\0')
        return err->msg;
    return dip_strerror(code);
}
