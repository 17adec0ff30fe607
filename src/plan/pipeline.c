/* SPDX-License-Identifier: MIT */
/* Parsing pipeline text against the operation table, and printing it back in canonical form.
 * The parser walks a cursor over the text (no tokeniser state, no recursion) and reports errors
 * with a 1-based character position. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "dip/image.h"
#include "dip/pipeline.h"

#define MAX_STEPS 64
#define MAX_TEXT  8192
#define MAX_IDENT 64
#define MAX_VALUE 128

struct step {
    const struct dip_op *op;
    void *args;
};

struct dip_pipeline {
    size_t n;
    struct step steps[MAX_STEPS];
};

struct cursor {
    const char *s;
    size_t pos;
};

static void skip_ws(struct cursor *c)
{
    while (c->s[c->pos] && isspace((unsigned char)c->s[c->pos]))
        c->pos++;
}

static int is_ident(int ch)
{
    return isalnum(ch) || ch == '_' || ch == '-';
}

/* Reads an identifier into buf; returns its length (0 when none). */
static size_t read_ident(struct cursor *c, char *buf, size_t len)
{
    size_t n = 0;

    while (is_ident((unsigned char)c->s[c->pos])) {
        if (n + 1 < len)
            buf[n] = (char)tolower((unsigned char)c->s[c->pos]);
        n++;
        c->pos++;
    }
    buf[n < len ? n : len - 1] = '\0';
    return n;
}

/* A value runs to the next ',' or ')' (trimmed). */
static size_t read_value(struct cursor *c, char *buf, size_t len)
{
    size_t start = c->pos, end, n;

    while (c->s[c->pos] && c->s[c->pos] != ',' && c->s[c->pos] != ')' && c->s[c->pos] != '|' &&
           c->s[c->pos] != '(')
        c->pos++;
    end = c->pos;
    while (end > start && isspace((unsigned char)c->s[end - 1]))
        end--;
    n = end - start;
    if (n >= len)
        n = len - 1;
    memcpy(buf, c->s + start, n);
    buf[n] = '\0';
    return end - start;
}

static int parse_step(struct cursor *c, struct step *st, struct dip_err *err)
{
    char name[MAX_IDENT], key[MAX_IDENT], val[MAX_VALUE];
    size_t at = c->pos + 1, positional = 0;
    const struct dip_op *op;
    unsigned char seen[32] = {0};
    int rc;

    if (read_ident(c, name, sizeof(name)) == 0) {
        if (c->s[c->pos] == '\0')
            return dip_err_set(err, DIP_EINVAL,
                               "pipeline: at %zu: expected an operation name "
                               "after '|'",
                               at);
        return dip_err_set(err, DIP_EINVAL,
                           "pipeline: at %zu: expected an operation name, got "
                           "'%c'",
                           at, c->s[c->pos]);
    }
    op = dip_op_find(name);
    if (op == NULL) {
        const char *sugg[3];
        size_t ns = dip_op_suggest(name, sugg, 3);
        char hint[160] = "";
        for (size_t i = 0; i < ns; i++) {
            size_t l = strlen(hint);
            snprintf(hint + l, sizeof(hint) - l, "%s%s", i ? ", " : " (did you mean ", sugg[i]);
        }
        if (ns)
            strncat(hint, "?)", sizeof(hint) - strlen(hint) - 1);
        return dip_err_set(err, DIP_EINVAL,
                           "pipeline: at %zu: unknown operation '%s'%s; 'dip ops' lists them", at,
                           name, hint);
    }
    st->op = op;
    st->args = dip_malloc(op->args_size);
    if (st->args == NULL)
        return DIP_ENOMEM;
    dip_op_args_default(op, st->args);
    skip_ws(c);
    if (c->s[c->pos] != '(')
        return 0;
    c->pos++;
    skip_ws(c);
    if (c->s[c->pos] == ')') {
        c->pos++;
        return 0;
    }
    for (;;) {
        const struct dip_param *p = NULL;
        size_t argat;
        struct cursor save;

        skip_ws(c);
        argat = c->pos + 1;
        save = *c;
        key[0] = '\0';
        if (read_ident(c, key, sizeof(key)) > 0) {
            skip_ws(c);
            if (c->s[c->pos] == '=') {
                c->pos++;
                p = dip_op_param(op, key);
                if (p == NULL) {
                    char list[256] = "";
                    for (size_t i = 0; i < op->n_params; i++) {
                        size_t l = strlen(list);
                        snprintf(list + l, sizeof(list) - l, "%s%s", i ? ", " : "",
                                 op->params[i].name);
                    }
                    return dip_err_set(err, DIP_EINVAL,
                                       "pipeline: at %zu: %s has no parameter '%s' (%s%s)", argat,
                                       op->name, key, op->n_params ? "parameters: " : "none", list);
                }
            } else {
                *c = save; /* a positional value that starts like a name, e.g. "true" */
            }
        }
        if (p == NULL) {
            if (positional >= op->n_params)
                return dip_err_set(err, DIP_EINVAL,
                                   "pipeline: at %zu: %s takes %zu parameter%s, too many given",
                                   argat, op->name, op->n_params, op->n_params == 1 ? "" : "s");
            p = &op->params[positional++];
        }
        skip_ws(c);
        if (read_value(c, val, sizeof(val)) == 0)
            return dip_err_set(err, DIP_EINVAL, "pipeline: at %zu: %s: missing value for '%s'",
                               c->pos + 1, op->name, p->name);
        if (seen[p - op->params])
            return dip_err_set(err, DIP_EINVAL, "pipeline: at %zu: %s: '%s' given twice", argat,
                               op->name, p->name);
        seen[p - op->params] = 1;
        rc = dip_op_args_set(op, p, st->args, val, err);
        if (rc) {
            dip_err_prefix(err, "pipeline: at %zu: ", argat);
            return rc;
        }
        skip_ws(c);
        if (c->s[c->pos] == ',') {
            c->pos++;
            continue;
        }
        if (c->s[c->pos] == ')') {
            c->pos++;
            return 0;
        }
        return dip_err_set(err, DIP_EINVAL,
                           "pipeline: at %zu: expected ',' or ')' in the "
                           "parameters of %s",
                           c->pos + 1, op->name);
    }
}

int dip_pipeline_parse(const char *text, dip_pipeline **out, struct dip_err *err)
{
    dip_pipeline *p;
    struct cursor c = {text ? text : "", 0};
    int rc = 0;

    *out = NULL;
    if (strlen(c.s) > MAX_TEXT)
        return dip_err_set(err, DIP_ELIMIT, "pipeline: text of %zu bytes exceeds the limit of %d",
                           strlen(c.s), MAX_TEXT);
    p = dip_calloc(1, sizeof(*p));
    if (p == NULL)
        return DIP_ENOMEM;
    skip_ws(&c);
    if (c.s[c.pos] == '\0')
        goto done;
    for (;;) {
        if (p->n == MAX_STEPS) {
            rc = dip_err_set(err, DIP_ELIMIT, "pipeline: more than %d operations", MAX_STEPS);
            goto done;
        }
        skip_ws(&c);
        rc = parse_step(&c, &p->steps[p->n], err);
        if (p->steps[p->n].args != NULL)
            p->n++;
        if (rc)
            goto done;
        skip_ws(&c);
        if (c.s[c.pos] == '\0')
            break;
        if (c.s[c.pos] != '|') {
            rc = dip_err_set(err, DIP_EINVAL,
                             "pipeline: at %zu: expected '|' between operations, "
                             "got '%c'",
                             c.pos + 1, c.s[c.pos]);
            goto done;
        }
        c.pos++;
    }
done:
    if (rc) {
        dip_pipeline_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void dip_pipeline_free(dip_pipeline *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        dip_free(p->steps[i].args);
    dip_free(p);
}

size_t dip_pipeline_length(const dip_pipeline *p)
{
    return p->n;
}

const struct dip_op *dip_pipeline_op(const dip_pipeline *p, size_t i)
{
    return p->steps[i].op;
}

const void *dip_pipeline_args(const dip_pipeline *p, size_t i)
{
    return p->steps[i].args;
}

size_t dip_pipeline_format(const dip_pipeline *p, int versions, char *buf, size_t len)
{
    size_t n = 0;
    char tmp[256];

#define PUT(...)                                                                                   \
    do {                                                                                           \
        int w_ =                                                                                   \
            snprintf(buf ? buf + (n < len ? n : len) : NULL, n < len ? len - n : 0, __VA_ARGS__);  \
        n += w_ > 0 ? (size_t)w_ : 0;                                                              \
    } while (0)
    if (buf && len)
        buf[0] = '\0';
    for (size_t i = 0; i < p->n; i++) {
        const struct dip_op *op = p->steps[i].op;
        if (i)
            PUT(" | ");
        if (versions)
            PUT("%s@%d", op->name, op->version);
        else
            PUT("%s", op->name);
        if (op->n_params == 0)
            continue;
        PUT("(");
        for (size_t k = 0; k < op->n_params; k++) {
            dip_op_param_format(&op->params[k], p->steps[i].args, tmp, sizeof(tmp));
            PUT("%s%s=%s", k ? ", " : "", op->params[k].name, tmp);
        }
        PUT(")");
    }
#undef PUT
    return n;
}
