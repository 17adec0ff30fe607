/* SPDX-License-Identifier: MIT */
/* `dip ops`: the operation table as text, JSON (the same document as GET /api/v1/ops) or
 * Markdown (docs/ops.md is generated with `dip ops --markdown`). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The default value of a parameter as the parser reads it. */
static void param_default(const struct dip_op *op, const struct dip_param *p, char *buf, size_t len)
{
    void *args = dip_malloc(op->args_size ? op->args_size : 1);

    if (args == NULL) {
        fprintf(stderr, "dip ops: out of memory\n");
        exit(dip_err_exit_code(DIP_ENOMEM));
    }
    dip_op_args_default(op, args);
    dip_op_param_format(p, args, buf, len);
    dip_free(args);
}

/* The same document as GET /api/v1/ops, from the one writer in src/ops/registry.c. */
static int print_json(void)
{
    char *json;
    size_t len;
    int rc = dip_op_table_json(&json, &len);

    if (rc) {
        fprintf(stderr, "dip ops: %s\n", dip_strerror(rc));
        return dip_err_exit_code(rc);
    }
    fwrite(json, 1, len, stdout);
    dip_free(json);
    return 0;
}

static void print_markdown(void)
{
    printf("# Operations\n\n"
           "Generated from the operation table by `dip ops --markdown`; do not edit by hand.\n"
           "Kinds: *point* (same pixel), *stencil* (neighbourhood; borders as OpenCV's), *stat*\n"
           "(a whole-image statistic, then a point map), *global* (whole image), *geometric*\n"
           "(maps regions). Parameters are written `name=value` or positionally in the order\n"
           "below: `gaussian(size=5, sigma=0) | canny(100, 200)`.\n\n"
           "| operation | kind | summary |\n|---|---|---|\n");
    for (size_t i = 0; i < dip_op_count(); i++) {
        const struct dip_op *op = dip_op_at(i);
        printf("| [`%s`](#%s) | %s | %s |\n", op->name, op->name, dip_op_kind_name(op->kind),
               op->summary);
    }
    for (size_t i = 0; i < dip_op_count(); i++) {
        const struct dip_op *op = dip_op_at(i);
        printf("\n## %s\n\n%s (kind: %s, version %d)\n\n", op->name, op->summary,
               dip_op_kind_name(op->kind), op->version);
        if (op->doc && op->doc[0])
            printf("%s\n\n", op->doc);
        if (op->n_params == 0) {
            printf("No parameters.\n");
            continue;
        }
        printf("| parameter | type | range | default | meaning |\n|---|---|---|---|---|\n");
        for (size_t k = 0; k < op->n_params; k++) {
            const struct dip_param *p = &op->params[k];
            char def[64], range[256] = "";
            param_default(op, p, def, sizeof(def));
            if (p->type == DIP_PARAM_ENUM) {
                for (int c = 0; p->choices[c]; c++) {
                    size_t l = strlen(range);
                    snprintf(range + l, sizeof(range) - l, "%s%s", c ? ", " : "", p->choices[c]);
                }
            } else if (p->type == DIP_PARAM_BOOL) {
                snprintf(range, sizeof(range), "true, false");
            } else {
                snprintf(range, sizeof(range), "%.10g .. %.10g", p->min, p->max);
            }
            printf("| `%s` | %s | %s | %s | %s |\n", p->name, dip_param_type_name(p->type), range,
                   def, p->help ? p->help : "");
        }
    }
}

static void print_text(void)
{
    for (size_t i = 0; i < dip_op_count(); i++) {
        const struct dip_op *op = dip_op_at(i);
        printf("%-11s %-9s %s\n", op->name, dip_op_kind_name(op->kind), op->summary);
        for (size_t k = 0; k < op->n_params; k++) {
            const struct dip_param *p = &op->params[k];
            char def[64];
            param_default(op, p, def, sizeof(def));
            if (p->type == DIP_PARAM_ENUM) {
                printf("            %s=%s  (", p->name, def);
                for (int c = 0; p->choices[c]; c++)
                    printf("%s%s", c ? "|" : "", p->choices[c]);
                printf(")  %s\n", p->help ? p->help : "");
            } else if (p->type == DIP_PARAM_BOOL) {
                printf("            %s=%s  (true|false)  %s\n", p->name, def,
                       p->help ? p->help : "");
            } else {
                printf("            %s=%s  (%.10g..%.10g)  %s\n", p->name, def, p->min, p->max,
                       p->help ? p->help : "");
            }
        }
    }
}

int dip__cmd_ops(int argc, char **argv)
{
    int json = 0, md = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--markdown"))
            md = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("Usage: dip ops [--json | --markdown]\n\nLists every operation with its kind, "
                   "summary and parameters (name=default (range) meaning).\n");
            return 0;
        } else {
            fprintf(stderr, "dip ops: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (json)
        return print_json();
    else if (md)
        print_markdown();
    else
        print_text();
    return 0;
}
