/* SPDX-License-Identifier: MIT */
/* Shared state of the OpenCL backend: the one device a process uses, its context, the program of
 * every kernel (built once per context), and a few command queues ("slots"), each used by one
 * image at a time, so that one image's upload overlaps another's kernels. */
#ifndef DIP_EXEC_OPENCL_INTERNAL_H
#define DIP_EXEC_OPENCL_INTERNAL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <pthread.h>

#include "ocl.h"

#define OCL_SLOTS 2

enum ocl_kernel {
    K_LUT_CH,
    K_GRAY_LUT,
    K_YCC_LUT,
    K_HSV,
    K_VSUM,
    K_HSUM,
    K_GRAY_PLANE,
    K_SOBEL,
    K_MEDIAN,
    K_BILATERAL,
    K_HIST,
    K_QMAP,
    K_CANNY_GRAD,
    K_CANNY_NMS,
    K_RESIZE_HALF,
    K_RESIZE_INTERP,
    K_RESIZE_AREA_FAST,
    K_RESIZE_AREA,
    K_COUNT
};

struct ocl_slot {
    cl_command_queue q;
    cl_kernel k[K_COUNT];
    int busy;
};

struct ocl_dev {
    cl_device_id id;
    cl_context ctx;
    cl_program prog;
    int exact_div; /* correctly rounded float division is available (bilateral, hsv) */
    cl_ulong max_alloc, global_mem;
    struct ocl_slot slots[OCL_SLOTS];
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/** The process's device, built on first use; NULL when there is none or it failed (why says). */
struct ocl_dev *dip__ocl_dev(int want_any, char *why, size_t whylen);
/** A free slot (waits for one); give it back with dip__ocl_slot_put. */
struct ocl_slot *dip__ocl_slot_get(struct ocl_dev *d);
void dip__ocl_slot_put(struct ocl_dev *d, struct ocl_slot *s);
/** The name of an OpenCL error code. */
const char *dip__ocl_errname(cl_int e);
/** Adds device times of a run (seconds) to the process totals. */
void dip__ocl_times_add(double up, double kern, double down, int fallback);
/** Names of the kernels, in enum ocl_kernel order. */
extern const char *const dip__ocl_kernel_names[K_COUNT];

#endif
