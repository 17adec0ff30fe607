/* SPDX-License-Identifier: MIT */
/* Finding an OpenCL device through the ICD loader, making its context and building the kernels
 * once, and the public device API (--device, dip version, /api/v1/cluster). No platform means the
 * CPU path, silently. `auto` takes a GPU only; PoCL's CPU device is used only when OpenCL is
 * asked for explicitly. Under mpirun each rank takes GPU (local rank mod GPU count). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "internal.h"
#include "ocl_kernels.h" /* generated: dip__ocl_source */

const char *const dip__ocl_kernel_names[K_COUNT] = {
    [K_LUT_CH] = "lut_ch",
    [K_GRAY_LUT] = "gray_lut",
    [K_YCC_LUT] = "ycc_lut",
    [K_HSV] = "hsv",
    [K_VSUM] = "vsum",
    [K_HSUM] = "hsum",
    [K_GRAY_PLANE] = "gray_plane",
    [K_SOBEL] = "sobel",
    [K_MEDIAN] = "median",
    [K_BILATERAL] = "bilateral",
    [K_HIST] = "hist",
    [K_QMAP] = "qmap",
    [K_CANNY_GRAD] = "canny_grad",
    [K_CANNY_NMS] = "canny_nms",
    [K_RESIZE_HALF] = "resize_half",
    [K_RESIZE_INTERP] = "resize_interp",
    [K_RESIZE_AREA_FAST] = "resize_area_fast",
    [K_RESIZE_AREA] = "resize_area",
};

#define MAX_DEVS 16

struct found {
    cl_device_id id;
    char platform[96], name[96];
    int gpu;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_scanned;
static struct found g_devs[MAX_DEVS];
static int g_ndevs;
static struct ocl_dev *g_dev; /* made on first use */
static int g_dev_failed;      /* building it failed once: do not retry per image */
static char g_dev_why[512];
static int g_selected = -1; /* index into g_devs */
static enum dip_device g_default = DIP_DEVICE_CPU;
static struct dip_device_times g_times;

const char *dip__ocl_errname(cl_int e)
{
    static const struct {
        cl_int code;
        const char *name;
    } names[] = {
        {CL_DEVICE_NOT_FOUND, "CL_DEVICE_NOT_FOUND"},
        {CL_DEVICE_NOT_AVAILABLE, "CL_DEVICE_NOT_AVAILABLE"},
        {CL_COMPILER_NOT_AVAILABLE, "CL_COMPILER_NOT_AVAILABLE"},
        {CL_MEM_OBJECT_ALLOCATION_FAILURE, "CL_MEM_OBJECT_ALLOCATION_FAILURE"},
        {CL_OUT_OF_RESOURCES, "CL_OUT_OF_RESOURCES"},
        {CL_OUT_OF_HOST_MEMORY, "CL_OUT_OF_HOST_MEMORY"},
        {CL_BUILD_PROGRAM_FAILURE, "CL_BUILD_PROGRAM_FAILURE"},
        {CL_INVALID_VALUE, "CL_INVALID_VALUE"},
        {CL_INVALID_KERNEL_NAME, "CL_INVALID_KERNEL_NAME"},
        {CL_INVALID_KERNEL_ARGS, "CL_INVALID_KERNEL_ARGS"},
        {CL_INVALID_WORK_GROUP_SIZE, "CL_INVALID_WORK_GROUP_SIZE"},
        {CL_INVALID_BUFFER_SIZE, "CL_INVALID_BUFFER_SIZE"},
        {CL_INVALID_COMMAND_QUEUE, "CL_INVALID_COMMAND_QUEUE"},
        {CL_INVALID_CONTEXT, "CL_INVALID_CONTEXT"},
        {CL_INVALID_MEM_OBJECT, "CL_INVALID_MEM_OBJECT"},
        {CL_INVALID_ARG_SIZE, "CL_INVALID_ARG_SIZE"},
        {CL_INVALID_ARG_VALUE, "CL_INVALID_ARG_VALUE"},
        {CL_INVALID_WORK_ITEM_SIZE, "CL_INVALID_WORK_ITEM_SIZE"},
        {CL_INVALID_GLOBAL_WORK_SIZE, "CL_INVALID_GLOBAL_WORK_SIZE"},
        {CL_INVALID_PROGRAM_EXECUTABLE, "CL_INVALID_PROGRAM_EXECUTABLE"},
        {CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST,
         "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST"},
        {-1001, "CL_PLATFORM_NOT_FOUND_KHR"},
    };

    for (size_t i = 0; i < DIP_COUNTOF(names); i++)
        if (names[i].code == e)
            return names[i].name;
    return "OpenCL error";
}

static void do_scan(void)
{
    cl_platform_id plats[8];
    cl_uint np = 0;

    if (clGetPlatformIDs(8, plats, &np) != CL_SUCCESS)
        return;
    for (cl_uint p = 0; p < np && p < 8; p++) {
        cl_device_id ids[MAX_DEVS];
        cl_uint nd = 0;
        char pname[96] = "";
        clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof(pname) - 1, pname, NULL);
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, MAX_DEVS, ids, &nd) != CL_SUCCESS)
            continue;
        for (cl_uint d = 0; d < nd && d < MAX_DEVS && g_ndevs < MAX_DEVS; d++) {
            struct found *f = &g_devs[g_ndevs++];
            cl_device_type t = 0;
            memset(f, 0, sizeof(*f));
            f->id = ids[d];
            snprintf(f->platform, sizeof(f->platform), "%s", pname);
            clGetDeviceInfo(ids[d], CL_DEVICE_NAME, sizeof(f->name) - 1, f->name, NULL);
            clGetDeviceInfo(ids[d], CL_DEVICE_TYPE, sizeof(t), &t, NULL);
            f->gpu = (t & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR)) != 0;
        }
    }
}

/* This rank's GPU under mpirun: the local rank modulo the GPU count. */
static int local_rank(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
                                       "SLURM_LOCALID"};
    for (size_t i = 0; i < DIP_COUNTOF(vars); i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return atoi(v) < 0 ? 0 : atoi(v);
    }
    return 0;
}

static int pick_locked(int want_any)
{
    int gpus[MAX_DEVS], ng = 0;

    for (int i = 0; i < g_ndevs; i++)
        if (g_devs[i].gpu)
            gpus[ng++] = i;
    if (ng > 0)
        return gpus[local_rank() % ng];
    return want_any && g_ndevs > 0 ? 0 : -1;
}

static struct ocl_dev *dev_make(cl_device_id id, char *why, size_t whylen);

/* ---- The setup thread ----
 * Drivers built on LLVM (PoCL, Mesa) install an alternate signal stack in the thread that first
 * initialises them; when that thread exits, ASan (and any code that frees its signal stack)
 * trips over it. So the platform scan and the program build run on one thread of this backend's
 * own, which lives as long as the process. */
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_thread_ok;
static int g_req = -1; /* device index whose context the setup thread is asked to make */

static void *setup_main(void *ud)
{
    (void)ud;
    pthread_mutex_lock(&g_mu);
    pthread_mutex_unlock(&g_mu);
    do_scan();
    pthread_mutex_lock(&g_mu);
    g_scanned = 1;
    pthread_cond_broadcast(&g_cv);
    for (;;) {
        struct ocl_dev *d;
        int i;
        char why[sizeof(g_dev_why)];
        while (g_req < 0)
            pthread_cond_wait(&g_cv, &g_mu);
        i = g_req;
        pthread_mutex_unlock(&g_mu);
        d = dev_make(g_devs[i].id, why, sizeof(why));
        pthread_mutex_lock(&g_mu);
        g_dev = d;
        g_selected = d ? i : -1;
        g_dev_failed = d == NULL;
        memcpy(g_dev_why, why, sizeof(why));
        g_req = -1;
        pthread_cond_broadcast(&g_cv);
    }
    return NULL;
}

static void setup_start(void)
{
    pthread_t t;
    pthread_attr_t a;

    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    g_thread_ok = pthread_create(&t, &a, setup_main, NULL) == 0;
    pthread_attr_destroy(&a);
}

/* With g_mu held: the scan is done (on the setup thread, or here when it cannot start). */
static void scan_locked(void)
{
    pthread_once(&g_once, setup_start);
    if (!g_thread_ok && !g_scanned) {
        do_scan();
        g_scanned = 1;
    }
    while (!g_scanned)
        pthread_cond_wait(&g_cv, &g_mu);
}

/* With g_mu held: makes the context of device i (on the setup thread when it runs). */
static void make_locked(int i)
{
    if (!g_thread_ok) {
        g_dev = dev_make(g_devs[i].id, g_dev_why, sizeof(g_dev_why));
        g_selected = g_dev ? i : -1;
        g_dev_failed = g_dev == NULL;
        return;
    }
    while (g_req >= 0) /* another device asked for: wait for it */
        pthread_cond_wait(&g_cv, &g_mu);
    if (g_dev != NULL || g_dev_failed)
        return;
    g_req = i;
    pthread_cond_broadcast(&g_cv);
    while (g_req >= 0)
        pthread_cond_wait(&g_cv, &g_mu);
}

static void dev_free(struct ocl_dev *d)
{
    if (d == NULL)
        return;
    for (int s = 0; s < OCL_SLOTS; s++) {
        for (int k = 0; k < K_COUNT; k++)
            if (d->slots[s].k[k])
                clReleaseKernel(d->slots[s].k[k]);
        if (d->slots[s].q)
            clReleaseCommandQueue(d->slots[s].q);
    }
    if (d->prog)
        clReleaseProgram(d->prog);
    if (d->ctx)
        clReleaseContext(d->ctx);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d);
}

static struct ocl_dev *dev_make(cl_device_id id, char *why, size_t whylen)
{
    struct ocl_dev *d = calloc(1, sizeof(*d));
    const char *src = dip__ocl_source;
    cl_device_fp_config fp = 0;
    char opts[160];
    cl_int e = CL_SUCCESS;

    if (d == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->id = id;
    clGetDeviceInfo(id, CL_DEVICE_SINGLE_FP_CONFIG, sizeof(fp), &fp, NULL);
    clGetDeviceInfo(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof(d->max_alloc), &d->max_alloc, NULL);
    clGetDeviceInfo(id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof(d->global_mem), &d->global_mem, NULL);
    d->exact_div = (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) != 0;
    d->ctx = clCreateContext(NULL, 1, &id, NULL, NULL, &e);
    if (e != CL_SUCCESS)
        goto fail;
    d->prog = clCreateProgramWithSource(d->ctx, 1, &src, NULL, &e);
    if (e != CL_SUCCESS)
        goto fail;
    /* Never -cl-fast-relaxed-math or -cl-mad-enable: they would change the float results. */
    snprintf(opts, sizeof(opts), "-cl-std=CL1.2%s",
             d->exact_div ? " -cl-fp32-correctly-rounded-divide-sqrt" : "");
    e = clBuildProgram(d->prog, 1, &id, opts, NULL, NULL);
    if (e != CL_SUCCESS) {
        char log[256] = "";
        clGetProgramBuildInfo(d->prog, id, CL_PROGRAM_BUILD_LOG, sizeof(log) - 1, log, NULL);
        snprintf(why, whylen, "building the kernels failed: %s: %.200s", dip__ocl_errname(e), log);
        dev_free(d);
        return NULL;
    }
    for (int s = 0; s < OCL_SLOTS; s++) {
        d->slots[s].q = clCreateCommandQueue(d->ctx, id, CL_QUEUE_PROFILING_ENABLE, &e);
        if (e != CL_SUCCESS)
            goto fail;
    }
    return d;
fail:
    snprintf(why, whylen, "setting up the device failed: %s (%d)", dip__ocl_errname(e), (int)e);
    dev_free(d);
    return NULL;
}

struct ocl_dev *dip__ocl_dev(int want_any, char *why, size_t whylen)
{
    struct ocl_dev *d = NULL;

    pthread_mutex_lock(&g_mu);
    scan_locked();
    if (g_dev != NULL) {
        if (want_any || g_devs[g_selected].gpu)
            d = g_dev;
        else
            snprintf(why, whylen, "no OpenCL GPU");
    } else if (g_dev_failed) {
        snprintf(why, whylen, "%s", g_dev_why);
    } else {
        int i = pick_locked(want_any);
        if (i < 0) {
            snprintf(why, whylen, g_ndevs ? "no OpenCL GPU" : "no OpenCL platform");
        } else {
            make_locked(i);
            d = g_dev;
            if (d == NULL)
                snprintf(why, whylen, "%s", g_dev_why);
        }
    }
    pthread_mutex_unlock(&g_mu);
    return d;
}

struct ocl_slot *dip__ocl_slot_get(struct ocl_dev *d)
{
    struct ocl_slot *s = NULL;

    pthread_mutex_lock(&d->mu);
    while (s == NULL) {
        for (int i = 0; i < OCL_SLOTS && s == NULL; i++)
            if (!d->slots[i].busy)
                s = &d->slots[i];
        if (s == NULL)
            pthread_cond_wait(&d->cv, &d->mu);
    }
    s->busy = 1;
    pthread_mutex_unlock(&d->mu);
    return s;
}

void dip__ocl_slot_put(struct ocl_dev *d, struct ocl_slot *s)
{
    pthread_mutex_lock(&d->mu);
    s->busy = 0;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

void dip__ocl_times_add(double up, double kern, double down, int fallback)
{
    pthread_mutex_lock(&g_mu);
    g_times.upload_s += up;
    g_times.kernel_s += kern;
    g_times.download_s += down;
    g_times.runs += (unsigned long)(fallback == 0);
    g_times.fallbacks += (unsigned long)(fallback != 0);
    pthread_mutex_unlock(&g_mu);
}

/* ---- Public API ---- */

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
    pthread_mutex_lock(&g_mu);
    g_default = d == DIP_DEVICE_DEFAULT ? DIP_DEVICE_CPU : d;
    pthread_mutex_unlock(&g_mu);
}

/* Whether this machine has a device node that a GPU's (or an accelerator's) OpenCL driver would
 * open: DRM render nodes (Mesa, Intel, AMD), NVIDIA's, AMD ROCm's /dev/kfd, /dev/accel (NPUs),
 * Mali, WSL2's /dev/dxg. Without one no platform can offer a GPU, so `auto` resolves to the CPU
 * without loading the ICDs: PoCL alone (CPU devices only) loads LLVM, about 30 ms of CPU and 65 ms
 * of wall time at the start of every `dip process` (docs/bench.md, Batch). `--device opencl` always
 * scans. Looked up once. */
static int gpu_node_present(void)
{
    static const char *const files[] = {"/dev/nvidiactl", "/dev/nvidia0",  "/dev/kfd",
                                        "/dev/mali0",     "/dev/kgsl-3d0", "/dev/dxg"};
    static const char *const dirs[] = {"/dev/dri", "/dev/accel"};

    for (size_t i = 0; i < DIP_COUNTOF(files); i++)
        if (access(files[i], F_OK) == 0)
            return 1;
    for (size_t i = 0; i < DIP_COUNTOF(dirs); i++) {
        DIR *dir = opendir(dirs[i]);
        struct dirent *e;
        int found = 0;
        if (dir == NULL)
            continue;
        while (!found && (e = readdir(dir)) != NULL)
            found = e->d_name[0] != '.';
        closedir(dir);
        if (found)
            return 1;
    }
    return 0;
}

static pthread_once_t g_nodes_once = PTHREAD_ONCE_INIT;
static int g_nodes;

static void nodes_look(void)
{
    g_nodes = gpu_node_present();
}

enum dip_device dip_device_resolve(enum dip_device d)
{
    char why[256];

    if (d == DIP_DEVICE_DEFAULT) {
        pthread_mutex_lock(&g_mu);
        d = g_default;
        pthread_mutex_unlock(&g_mu);
    }
    if (d == DIP_DEVICE_CPU)
        return DIP_DEVICE_CPU;
    if (d == DIP_DEVICE_OPENCL)
        return DIP_DEVICE_OPENCL; /* failures are warned about per image, then the CPU runs */
    pthread_once(&g_nodes_once, nodes_look);
    if (!g_nodes)
        return DIP_DEVICE_CPU;
    return dip__ocl_dev(0, why, sizeof(why)) ? DIP_DEVICE_OPENCL : DIP_DEVICE_CPU;
}

void dip_devices_describe(char *buf, size_t len)
{
    size_t n = 0;

    pthread_mutex_lock(&g_mu);
    scan_locked();
    buf[0] = '\0';
    if (g_ndevs == 0)
        snprintf(buf, len, "opencl: no device\n");
    for (int i = 0; i < g_ndevs && n < len; i++) {
        int w = snprintf(buf + n, len - n, "opencl: %s / %s (%s)%s\n", g_devs[i].platform,
                         g_devs[i].name, g_devs[i].gpu ? "gpu" : "cpu, used with --device opencl",
                         i == g_selected ? " [in use]" : "");
        n += w > 0 ? (size_t)w : 0;
    }
    pthread_mutex_unlock(&g_mu);
}

/* JSON string body: the names come from drivers, so quote what must be quoted. */
static size_t json_str(char *buf, size_t len, size_t n, const char *s)
{
    for (; *s && n + 7 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            n += (size_t)snprintf(buf + n, len - n, "\\%c", c);
        else if (c < 0x20)
            n += (size_t)snprintf(buf + n, len - n, "\\u%04x", c);
        else
            buf[n++] = (char)c;
    }
    buf[n < len ? n : len - 1] = '\0';
    return n;
}

size_t dip_devices_json(char *buf, size_t len)
{
    size_t n = 0;

    if (len < 3) {
        if (len)
            buf[0] = '\0';
        return 0;
    }
    pthread_mutex_lock(&g_mu);
    scan_locked();
    buf[n++] = '[';
    for (int i = 0; i < g_ndevs && n + 96 < len; i++) {
        n += (size_t)snprintf(buf + n, len - n, "%s{\"platform\":\"", i ? "," : "");
        n = json_str(buf, len - 64, n, g_devs[i].platform);
        n += (size_t)snprintf(buf + n, len - n, "\",\"name\":\"");
        n = json_str(buf, len - 48, n, g_devs[i].name);
        n += (size_t)snprintf(buf + n, len - n, "\",\"type\":\"%s\",\"selected\":%s}",
                              g_devs[i].gpu ? "gpu" : "cpu", i == g_selected ? "true" : "false");
    }
    pthread_mutex_unlock(&g_mu);
    if (n + 2 > len)
        n = len - 2;
    buf[n++] = ']';
    buf[n] = '\0';
    return n;
}

void dip_device_times(struct dip_device_times *out)
{
    pthread_mutex_lock(&g_mu);
    *out = g_times;
    pthread_mutex_unlock(&g_mu);
}

void dip_device_times_reset(void)
{
    pthread_mutex_lock(&g_mu);
    memset(&g_times, 0, sizeof(g_times));
    pthread_mutex_unlock(&g_mu);
}
