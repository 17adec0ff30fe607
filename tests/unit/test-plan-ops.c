/* SPDX-License-Identifier: MIT */
/* dip_plan_step_op() and dip_plan_step_stat(): what a device backend sees of a compiled plan.
 * Each step's ops in order, as they are tiled (a STAT op's map as a point op that opens the next
 * step, a GLOBAL op's tiled pass as a stencil), with the sizes, channels, halos and borders the
 * CPU path uses; the statistic collected at the end of a step; the statistic's args shared with
 * its map, so that finishing the statistic is seen by the map. */
#include <stdint.h>
#include <string.h>

#include "dip/dip.h"
#include "test.h"

TEST(plan_step_ops_as_the_cpu_runs_them)
{
    dip_pipeline *p = NULL;
    dip_plan *plan = NULL;
    struct dip_err err = {0};
    struct dip_plan_op po;
    struct dip_step_info si;
    const void *sargs = NULL;
    const struct dip_op *sop;

    ASSERT_OK(
        dip_pipeline_parse("gaussian(size=5) | equalize | canny | rotate(angle=90)", &p, &err));
    ASSERT_OK(dip_plan_compile(p, 40, 30, 3, &plan, &err));
    ASSERT_EQ_INT((int)dip_plan_steps(plan), 4);

    /* Step 0: gaussian, then equalize's histogram over its output. */
    dip_plan_step_info(plan, 0, &si);
    ASSERT_EQ_INT((int)si.n_ops, 1);
    dip_plan_step_op(plan, 0, 0, &po);
    ASSERT_EQ_STR(po.op->name, "gaussian");
    ASSERT_EQ_INT(po.kind, DIP_OP_STENCIL);
    ASSERT_EQ_INT(po.halo.left, 2);
    ASSERT_EQ_INT(po.halo.bottom, 2);
    ASSERT_EQ_INT(po.edge, DIP_EDGE_REFLECT101);
    ASSERT_EQ_INT(po.is_map, 0);
    ASSERT_EQ_INT(po.in_w, 40);
    ASSERT_EQ_INT(po.out_ch, 3);
    sop = dip_plan_step_stat(plan, 0, &sargs);
    ASSERT(sop != NULL && strcmp(sop->name, "equalize") == 0);

    /* Step 1: equalize's map (a point op, sharing args with the statistic), canny's tiled pass
     * (a stencil of radius 2 with replicated borders, 1 channel out), no statistic. */
    dip_plan_step_info(plan, 1, &si);
    ASSERT_EQ_INT((int)si.n_ops, 2);
    dip_plan_step_op(plan, 1, 0, &po);
    ASSERT_EQ_STR(po.op->name, "equalize");
    ASSERT_EQ_INT(po.kind, DIP_OP_POINT);
    ASSERT_EQ_INT(po.is_map, 1);
    ASSERT(po.args == sargs);
    dip_plan_step_op(plan, 1, 1, &po);
    ASSERT_EQ_STR(po.op->name, "canny");
    ASSERT_EQ_INT(po.kind, DIP_OP_STENCIL);
    ASSERT_EQ_INT(po.halo.top, 2);
    ASSERT_EQ_INT(po.edge, DIP_EDGE_REPLICATE);
    ASSERT_EQ_INT(po.in_ch, 3);
    ASSERT_EQ_INT(po.out_ch, 1);
    ASSERT(dip_plan_step_stat(plan, 1, &sargs) == NULL && sargs == NULL);

    /* Step 2: canny's hysteresis, a GLOBAL step: its op is returned as the step's. */
    dip_plan_step_info(plan, 2, &si);
    ASSERT_EQ_INT(si.kind, DIP_STEP_GLOBAL);
    sop = dip_plan_step_stat(plan, 2, &sargs);
    ASSERT(sop != NULL && strcmp(sop->name, "canny") == 0 && sargs != NULL);

    /* Step 3: rotate, geometric, 40x30 -> 30x40. */
    dip_plan_step_op(plan, 3, 0, &po);
    ASSERT_EQ_STR(po.op->name, "rotate");
    ASSERT_EQ_INT(po.kind, DIP_OP_GEOMETRIC);
    ASSERT_EQ_INT(po.in_w, 40);
    ASSERT_EQ_INT(po.out_w, 30);
    ASSERT_EQ_INT(po.out_h, 40);
    ASSERT_EQ_INT(po.out_ch, 1);

    dip_plan_free(plan);
    dip_pipeline_free(p);
}
