/* SPDX-License-Identifier: MIT */
/* The OpenCL backend's interface to the executor (src/exec/run.c). Only files in this folder
 * include <CL/cl.h>; this header does not. */
#ifndef DIP_EXEC_OPENCL_OCL_H
#define DIP_EXEC_OPENCL_OCL_H

#include <stddef.h>

#include "dip/exec.h"
#include "dip/plan.h"

/** Runs the compiled `plan` on `in` on the OpenCL device and returns the result in *out.
 * Returns 0; DIP_ECANCELED; or another code with `why` saying what failed: DIP_EINVAL an op
 * without a kernel, DIP_ENOTFOUND no usable device (none, or its kernels failed to build: both
 * last for the process), anything else a device error of this image. The caller then runs the
 * image on the CPU. `plan` may have had
 * statistics finished (dip_plan_stat_finish) when it fails: the caller compiles a fresh one. */
int dip__ocl_run(dip_plan *plan, const dip_image *in, volatile int *cancel, dip_image **out,
                 char *why, size_t whylen);

/** Test builds only (BUILD_TESTING): the next `n` kernel launches fail as if the device had run
 * out of resources (also set from the environment: DIP_TEST_OPENCL_FAIL_LAUNCHES=n). */
void dip__ocl_fail_launches(int n);

#endif
