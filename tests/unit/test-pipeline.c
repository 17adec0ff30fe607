/* SPDX-License-Identifier: MIT */
/* Unit tests for pipeline parsing: syntax, parameters, ranges, positions in error messages,
 * suggestions for unknown names, and the canonical form reading back to the same pipeline. */
#include "dip/dip.h"
#include "test.h"

static int parse_err(const char *text, struct dip_err *err)
{
    dip_pipeline *p = NULL;
    int rc = dip_pipeline_parse(text, &p, err);

    ASSERT(rc == 0 || p == NULL);
    dip_pipeline_free(p);
    return rc;
}

TEST(empty_pipeline_is_valid)
{
    dip_pipeline *p = NULL;

    ASSERT_OK(dip_pipeline_parse("", &p, NULL));
    ASSERT_EQ_INT(dip_pipeline_length(p), 0);
    dip_pipeline_free(p);
    ASSERT_OK(dip_pipeline_parse("   ", &p, NULL));
    dip_pipeline_free(p);
    ASSERT_OK(dip_pipeline_parse(NULL, &p, NULL));
    dip_pipeline_free(p);
}

TEST(steps_and_whitespace)
{
    dip_pipeline *p = NULL;
    char buf[256];

    ASSERT_OK(dip_pipeline_parse(" invert |invert()| INVERT ", &p, NULL));
    ASSERT_EQ_INT(dip_pipeline_length(p), 3);
    ASSERT_EQ_STR(dip_pipeline_op(p, 2)->name, "invert");
    dip_pipeline_format(p, 0, buf, sizeof(buf));
    ASSERT_EQ_STR(buf, "invert | invert | invert");
    dip_pipeline_format(p, 1, buf, sizeof(buf));
    ASSERT_EQ_STR(buf, "invert@1 | invert@1 | invert@1");
    dip_pipeline_free(p);
}

TEST(syntax_errors_name_the_position)
{
    struct dip_err err = {0};

    ASSERT_EQ_INT(parse_err("invert | ", &err), DIP_EINVAL);
    ASSERT_CONTAINS(err.msg, "expected an operation name");
    ASSERT_EQ_INT(parse_err("invert invert", &err), DIP_EINVAL);
    ASSERT_CONTAINS(err.msg, "at 8");
    ASSERT_EQ_INT(parse_err("invert(", &err), DIP_EINVAL);
    ASSERT_EQ_INT(parse_err("| invert", &err), DIP_EINVAL);
    ASSERT_CONTAINS(err.msg, "at 1");
    ASSERT_EQ_INT(parse_err("invert(1)", &err), DIP_EINVAL);
    ASSERT_CONTAINS(err.msg, "too many");
    ASSERT_EQ_INT(parse_err("invert(x=1)", &err), DIP_EINVAL);
    ASSERT_CONTAINS(err.msg, "no parameter 'x'");
}

TEST(unknown_operation_suggests)
{
    struct dip_err err = {0};

    ASSERT_EQ_INT(parse_err("invrt", &err), DIP_EINVAL);
    ASSERT_CONTAINS(err.msg, "unknown operation 'invrt'");
    ASSERT_CONTAINS(err.msg, "did you mean invert");
    ASSERT_EQ_INT(parse_err("invert | zzzzzzzzzz", &err), DIP_EINVAL);
    ASSERT_CONTAINS(err.msg, "at 10");
}

TEST(limits_on_text)
{
    struct dip_err err = {0};
    char big[10000];

    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ASSERT_EQ_INT(parse_err(big, &err), DIP_ELIMIT);
    {
        char many[2000] = "invert";
        for (int i = 0; i < 100; i++)
            strncat(many, "|invert", sizeof(many) - strlen(many) - 1);
        ASSERT_EQ_INT(parse_err(many, &err), DIP_ELIMIT);
        ASSERT_CONTAINS(err.msg, "more than");
    }
}

TEST(numbers_format_readably)
{
    dip_pipeline *p = NULL;
    char buf[512];

    /* Integral values never print in exponent form (canny's 100 was "1e+02"). */
    ASSERT_OK(dip_pipeline_parse("canny(low=100, high=200)", &p, NULL));
    dip_pipeline_format(p, 0, buf, sizeof(buf));
    ASSERT_CONTAINS(buf, "low=100");
    ASSERT_CONTAINS(buf, "high=200");
    ASSERT(strchr(buf, 'e') == NULL || strstr(buf, "e+") == NULL);
    dip_pipeline_free(p);
    ASSERT_OK(dip_pipeline_parse("gaussian(sigma=0.1)", &p, NULL));
    dip_pipeline_format(p, 0, buf, sizeof(buf));
    ASSERT_CONTAINS(buf, "sigma=0.1");
    dip_pipeline_free(p);
}

/* Every registered op: defaults format to text that parses back to the same text, and each
 * numeric parameter rejects values out of its range with a message naming it. */
TEST(every_op_round_trips_and_checks_ranges)
{
    for (size_t i = 0; i < dip_op_count(); i++) {
        const struct dip_op *op = dip_op_at(i);
        dip_pipeline *p = NULL, *q = NULL;
        char a[1024], b[1024], text[256];

        ASSERT_OK(dip_pipeline_parse(op->name, &p, NULL));
        dip_pipeline_format(p, 0, a, sizeof(a));
        ASSERT_OK(dip_pipeline_parse(a, &q, NULL));
        dip_pipeline_format(q, 0, b, sizeof(b));
        ASSERT_EQ_STR(a, b);
        dip_pipeline_free(p);
        dip_pipeline_free(q);
        for (size_t k = 0; k < op->n_params; k++) {
            const struct dip_param *pr = &op->params[k];
            struct dip_err err = {0};
            if (pr->type != DIP_PARAM_INT && pr->type != DIP_PARAM_DOUBLE)
                continue;
            snprintf(text, sizeof(text), "%s(%s=%.17g)", op->name, pr->name, pr->max + 1);
            ASSERT_EQ_INT(parse_err(text, &err), DIP_EINVAL);
            ASSERT_CONTAINS(err.msg, pr->name);
            ASSERT_CONTAINS(err.msg, "range");
            snprintf(text, sizeof(text), "%s(%s=abc)", op->name, pr->name);
            ASSERT_EQ_INT(parse_err(text, &err), DIP_EINVAL);
            ASSERT_CONTAINS(err.msg, "not a number");
        }
    }
}
