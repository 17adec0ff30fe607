/* SPDX-License-Identifier: MIT */
/* The device API when dip is built without OpenCL (DIP_WITH_OPENCL=OFF or no ICD loader): every
 * run is on the CPU. */
#include <stdio.h>
#include <string.h>

#include "ocl.h"

int dip__ocl_run(dip_plan *plan, const dip_image *in, volatile int *cancel, dip_image **out,
                 char *why, size_t whylen)
{
    (void)plan;
    (void)in;
    (void)cancel;
    *out = NULL;
    snprintf(why, whylen, "dip was built without OpenCL");
    return DIP_EIO;
}

int dip_device_parse(const char *text, enum dip_device *out, struct dip_err *err)
{
    if (!strcmp(text, "cpu"))
        *out = DIP_DEVICE_CPU;
    else if (!strcmp(text, "opencl"))
        *out = DIP_DEVICE_OPENCL;
    else if (!strcmp(text, "auto"))
        *out = DIP_DEVICE_AUTO;
    else
        return dip_err_set(err, DIP_EINVAL, "--device: '%s' is not cpu, opencl or auto", text);
    return 0;
}

void dip_device_set_default(enum dip_device d)
{
    (void)d;
}

enum dip_device dip_device_resolve(enum dip_device d)
{
    return d == DIP_DEVICE_OPENCL ? DIP_DEVICE_OPENCL : DIP_DEVICE_CPU;
}

void dip_devices_describe(char *buf, size_t len)
{
    snprintf(buf, len, "opencl: not built\n");
}

size_t dip_devices_json(char *buf, size_t len)
{
    return (size_t)snprintf(buf, len, "[]");
}

void dip_device_times(struct dip_device_times *out)
{
    memset(out, 0, sizeof(*out));
}

void dip_device_times_reset(void)
{
}
