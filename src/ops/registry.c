/* SPDX-License-Identifier: MIT */
/* The operation table, built from ops.def, and the generic handling of operation parameters:
 * defaults, parsing text values with range checks, formatting them back, and "did you mean"
 * suggestions for unknown names. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "dip/op.h"

#define DIP_OP(name, family) extern const struct dip_op dip_op_##name;
#include "ops.def"
#undef DIP_OP

static const struct dip_op *const optab[] = {
#define DIP_OP(name, family) &dip_op_##name,
#include "ops.def"
#undef DIP_OP
};

/* Test-only: extra operations appended to the table (tests/unit/test-plan.c uses it to check the
 * planner with ops of unusual shapes). Set once, before any other use; never in dip itself. */
static const struct dip_op *const *extra;
static size_t nextra;

void dip__ops_set_extra(const struct dip_op *const *ops, size_t n)
{
    extra = ops;
    nextra = n;
}

size_t dip_op_count(void)
{
    return DIP_COUNTOF(optab) + nextra;
}

const struct dip_op *dip_op_at(size_t i)
{
    if (i < DIP_COUNTOF(optab))
        return optab[i];
    return i - DIP_COUNTOF(optab) < nextra ? extra[i - DIP_COUNTOF(optab)] : NULL;
}

const struct dip_op *dip_op_find(const char *name)
{
    for (size_t i = 0; i < dip_op_count(); i++)
        if (strcmp(dip_op_at(i)->name, name) == 0)
            return dip_op_at(i);
    return NULL;
}

/* Levenshtein distance, capped at 32 characters per side (longer names are never close). */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int row[33];

    if (la > 32 || lb > 32)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int best = diag + cost;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            if (up + 1 < best)
                best = up + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

size_t dip_op_suggest(const char *name, const char **out, size_t max)
{
    size_t n = 0;

    /* Names within distance 1, then 2, then 3; prefixes count as close too. */
    for (int d = 0; d <= 3 && n < max; d++) {
        for (size_t i = 0; i < dip_op_count() && n < max; i++) {
            const char *cand = dip_op_at(i)->name;
            int dist = edit_distance(name, cand);
            int prefix = strlen(name) >= 3 && strncmp(cand, name, strlen(name)) == 0;
            if ((prefix ? 1 : dist) == d)
                out[n++] = cand;
        }
    }
    return n;
}

const struct dip_param *dip_op_param(const struct dip_op *op, const char *name)
{
    for (size_t i = 0; i < op->n_params; i++)
        if (strcmp(op->params[i].name, name) == 0)
            return &op->params[i];
    return NULL;
}

static void set_raw(const struct dip_param *p, void *args, double v)
{
    char *base = args;

    if (p->type == DIP_PARAM_DOUBLE)
        memcpy(base + p->offset, &v, sizeof(v));
    else {
        int iv = (int)v;
        memcpy(base + p->offset, &iv, sizeof(iv));
    }
}

void dip_op_args_default(const struct dip_op *op, void *args)
{
    memset(args, 0, op->args_size);
    for (size_t i = 0; i < op->n_params; i++)
        set_raw(&op->params[i], args, op->params[i].def);
}

static int parse_number(const char *text, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(text, &end);
    if (end == text || *end != '\0' || errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static void fmt_num(double v, char *buf, size_t len)
{
    if (v == floor(v) && fabs(v) < 1e15) { /* integral: never in exponent form */
        snprintf(buf, len, "%.0f", v);
        return;
    }
    snprintf(buf, len, "%.17g", v);
    /* Prefer the shortest form that reads back to the same double. */
    for (int prec = 1; prec <= 17; prec++) {
        char tmp[64];
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) {
            snprintf(buf, len, "%s", tmp);
            return;
        }
    }
}

int dip_op_args_set(const struct dip_op *op, const struct dip_param *p, void *args,
                    const char *text, struct dip_err *err)
{
    double v;
    char lo[64], hi[64];

    switch (p->type) {
    case DIP_PARAM_ENUM:
        for (int i = 0; p->choices[i] != NULL; i++) {
            if (strcasecmp(p->choices[i], text) == 0) {
                set_raw(p, args, i);
                return 0;
            }
        }
        {
            char list[256] = "";
            for (int i = 0; p->choices[i] != NULL; i++) {
                size_t l = strlen(list);
                snprintf(list + l, sizeof(list) - l, "%s%s", i ? ", " : "", p->choices[i]);
            }
            return dip_err_set(err, DIP_EINVAL, "%s: %s='%s' is not one of: %s", op->name, p->name,
                               text, list);
        }
    case DIP_PARAM_BOOL:
        if (!strcasecmp(text, "true") || !strcasecmp(text, "yes") || !strcmp(text, "1") ||
            !strcasecmp(text, "on")) {
            set_raw(p, args, 1);
            return 0;
        }
        if (!strcasecmp(text, "false") || !strcasecmp(text, "no") || !strcmp(text, "0") ||
            !strcasecmp(text, "off")) {
            set_raw(p, args, 0);
            return 0;
        }
        return dip_err_set(err, DIP_EINVAL, "%s: %s='%s' must be true or false", op->name, p->name,
                           text);
    case DIP_PARAM_INT:
    case DIP_PARAM_DOUBLE:
        fmt_num(p->min, lo, sizeof(lo));
        fmt_num(p->max, hi, sizeof(hi));
        if (parse_number(text, &v) != 0)
            return dip_err_set(err, DIP_EINVAL, "%s: %s='%s' is not a number (range %s..%s)",
                               op->name, p->name, text, lo, hi);
        if (p->type == DIP_PARAM_INT && v != floor(v))
            return dip_err_set(err, DIP_EINVAL, "%s: %s=%s must be an integer (range %s..%s)",
                               op->name, p->name, text, lo, hi);
        if (v < p->min || v > p->max)
            return dip_err_set(err, DIP_EINVAL, "%s: %s=%s is out of range %s..%s", op->name,
                               p->name, text, lo, hi);
        set_raw(p, args, v);
        return 0;
    }
    return dip_err_set(err, DIP_EINVAL, "%s: bad parameter type", op->name);
}

void dip_op_param_format(const struct dip_param *p, const void *args, char *buf, size_t len)
{
    const char *base = args;
    int iv;
    double dv;

    switch (p->type) {
    case DIP_PARAM_DOUBLE:
        memcpy(&dv, base + p->offset, sizeof(dv));
        fmt_num(dv, buf, len);
        break;
    case DIP_PARAM_ENUM:
        memcpy(&iv, base + p->offset, sizeof(iv));
        snprintf(buf, len, "%s", p->choices[iv]);
        break;
    case DIP_PARAM_BOOL:
        memcpy(&iv, base + p->offset, sizeof(iv));
        snprintf(buf, len, "%s", iv ? "true" : "false");
        break;
    case DIP_PARAM_INT:
        memcpy(&iv, base + p->offset, sizeof(iv));
        snprintf(buf, len, "%d", iv);
        break;
    }
}

/* ---- The table as JSON (GET /api/v1/ops and `dip ops --json`) ---- */

const char *dip_op_kind_name(enum dip_op_kind k)
{
    switch (k) {
    case DIP_OP_POINT:
        return "point";
    case DIP_OP_STENCIL:
        return "stencil";
    case DIP_OP_STAT:
        return "stat";
    case DIP_OP_GLOBAL:
        return "global";
    case DIP_OP_GEOMETRIC:
        return "geometric";
    }
    return "unknown";
}

const char *dip_param_type_name(enum dip_param_type t)
{
    switch (t) {
    case DIP_PARAM_INT:
        return "int";
    case DIP_PARAM_DOUBLE:
        return "double";
    case DIP_PARAM_BOOL:
        return "bool";
    case DIP_PARAM_ENUM:
        return "enum";
    }
    return "unknown";
}

static void param_json(struct dip__buf *b, const struct dip_param *p)
{
    dip__buf_str(b, "{\"name\":");
    dip__buf_json_str(b, p->name);
    dip__buf_str(b, ",\"type\":");
    dip__buf_json_str(b, dip_param_type_name(p->type));
    if (p->type == DIP_PARAM_ENUM) {
        size_t nc = 0;
        while (p->choices != NULL && p->choices[nc] != NULL)
            nc++;
        /* An enum or a bool has no numeric range: its values are the choices, or true/false. */
        dip__buf_str(b, ",\"min\":null,\"max\":null,\"default\":");
        dip__buf_json_str(b,
                          p->def >= 0 && (size_t)p->def < nc ? p->choices[(size_t)p->def] : NULL);
        dip__buf_str(b, ",\"choices\":[");
        for (size_t q = 0; q < nc; q++) {
            dip__buf_str(b, q ? "," : "");
            dip__buf_json_str(b, p->choices[q]);
        }
        dip__buf_str(b, "]");
    } else if (p->type == DIP_PARAM_BOOL) {
        dip__buf_printf(b, ",\"min\":null,\"max\":null,\"default\":%s,\"choices\":null",
                        p->def != 0 ? "true" : "false");
    } else {
        dip__buf_str(b, ",\"min\":");
        dip__buf_json_exact(b, p->min);
        dip__buf_str(b, ",\"max\":");
        dip__buf_json_exact(b, p->max);
        dip__buf_str(b, ",\"default\":");
        dip__buf_json_exact(b, p->def);
        dip__buf_str(b, ",\"choices\":null");
    }
    dip__buf_str(b, ",\"help\":");
    dip__buf_json_str(b, p->help);
    dip__buf_str(b, (p->flags & DIP_PARAM_ODD) ? ",\"odd\":true}" : ",\"odd\":false}");
}

int dip_op_table_json(char **out, size_t *len)
{
    struct dip__buf b;
    uint8_t *bytes;

    dip__buf_init(&b, (size_t)16 << 20);
    dip__buf_str(&b, "{\"ops\":[");
    for (size_t i = 0; i < dip_op_count(); i++) {
        const struct dip_op *op = dip_op_at(i);
        dip__buf_str(&b, i ? ",\n{\"name\":" : "\n{\"name\":");
        dip__buf_json_str(&b, op->name);
        dip__buf_printf(&b, ",\"version\":%d,\"summary\":", op->version);
        dip__buf_json_str(&b, op->summary);
        dip__buf_str(&b, ",\"doc\":");
        dip__buf_json_str(&b, op->doc);
        dip__buf_str(&b, ",\"kind\":");
        dip__buf_json_str(&b, dip_op_kind_name(op->kind));
        dip__buf_str(&b, ",\"params\":[");
        for (size_t k = 0; k < op->n_params; k++) {
            dip__buf_str(&b, k ? "," : "");
            param_json(&b, &op->params[k]);
        }
        dip__buf_str(&b, "]}");
    }
    dip__buf_str(&b, "\n]}\n");
    if (b.failed)
        return b.failed;
    bytes = dip__buf_take(&b, len);
    *out = (char *)bytes;
    return 0;
}
