/* SPDX-License-Identifier: MIT */
/* Executors: run a job (a pipeline over a batch of encoded images) and report each result and the
 * progress through callbacks. The local executor uses a thread pool; the MPI executor
 * (src/exec/mpi) runs the same job across ranks. The CLI and the server only see this interface.
 * dip_run_image() and dip_process_bytes() are the single-image building blocks the executors
 * share. */
#ifndef DIP_EXEC_H
#define DIP_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "error.h"
#include "image.h"
#include "limits.h"
#include "pipeline.h"
#include "pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Progress of a job; counters only grow. */
struct dip_progress {
    uint64_t items_total, items_done, items_failed; /* done counts failed ones too */
    uint64_t tasks_total, tasks_done;               /* tiles or items, as scheduled */
    uint64_t pixels_total, pixels_done;             /* input pixels */
    double elapsed_s;
};

/** Progress callback for one image; called from the thread that ran the tile, serialised. */
typedef void (*dip_tile_progress_fn)(void *ud, uint64_t tasks_done, uint64_t tasks_total);

struct dip_run_opts {
    int tile;             /* tile side in pixels; 0 = automatic (cache-sized strips) */
    dip_pool *pool;       /* threads to use; NULL = the calling thread only */
    volatile int *cancel; /* polled between tiles; nonzero -> DIP_ECANCELED */
    dip_tile_progress_fn progress;
    void *progress_ud;
    int device; /* enum dip_device; 0 = the process default (dip_device_set_default) */
};

/** Runs pipeline `p` on `in` and returns a new image in *out (caller unrefs). The result is
 * byte-identical for every tile size and pool size. Returns 0, DIP_EINVAL (err says why, e.g. the
 * op refuses the channel count), DIP_ENOMEM, DIP_ECANCELED. */
int dip_run_image(const dip_pipeline *p, const dip_image *in, const struct dip_run_opts *o,
                  dip_image **out, struct dip_err *err);

/** What to do with every item of a job. */
struct dip_job_spec {
    const char *pipeline;          /* pipeline text; "" for conversion only */
    struct dip_encode_opts encode; /* format UNKNOWN: keep the input's (PNG where not encodable) */
    struct dip_decode_opts decode;
    struct dip_limits limits;
    int tile;    /* as dip_run_opts.tile */
    int threads; /* threads per worker; 0 = all cores */
};
/** Defaults: empty pipeline, default codec options and limits, automatic tile and threads. */
void dip_job_spec_default(struct dip_job_spec *spec);

/** Decode, run, encode one item: the unit of work of every executor. *out is dip_malloc'ed
 * (dip_free). `info` (optional) receives the input's header; out_w/out_h/out_ch (optional) the
 * output's size. Errors carry the detail of the failing stage. */
int dip_process_bytes(const struct dip_job_spec *spec, const dip_pipeline *p, const uint8_t *in,
                      size_t in_len, const struct dip_run_opts *o, uint8_t **out, size_t *out_len,
                      dip_format *out_format, struct dip_image_info *info, int *out_w, int *out_h,
                      struct dip_err *err);

/** Checks, from the header of encoded image `in` alone, that it is within spec->limits and that
 * every step of `p` produces an output within max_width, max_height and max_pixels. Returns 0,
 * DIP_ETOOBIG (422) naming the op and the limit, or the probe's and the planner's errors. */
int dip_check_output(const struct dip_job_spec *spec, const dip_pipeline *p, const uint8_t *in,
                     size_t in_len, struct dip_err *err);

/** The result of one item, handed to dip_job_io.result. Pointers are borrowed for the call. */
struct dip_item_result {
    size_t index;
    int rc;            /* 0 or DIP_E* */
    const char *error; /* message when rc != 0 */
    const uint8_t *data;
    size_t len;
    dip_format format;
    int width, height; /* output size */
    int worker;        /* 0 for the local executor, the MPI rank otherwise */
    int attempts;      /* tries it took (1 normally) */
    double seconds;
    int stored;         /* 1: the worker put the output at the item's out reference itself
                         * (dip_job_io.refs): data is NULL, len is its size */
    const char *sha256; /* when stored: hex SHA-256 of the stored bytes, as put() reported it */
    double cpu_s; /* CPU seconds of every thread that worked on it (load, decode, ops, encode),
                   * from thread CPU clocks (under MPI the workers', tiles included, and the
                   * coordinator's) */
};

/** Where a job's items come from and where results go. Callbacks may come from any thread, but
 * never two at once. */
struct dip_job_io {
    size_t n_items;
    /** Loads item i's encoded bytes (borrowed until release(ud, i)). Errors fail that item only. */
    int (*load)(void *ud, size_t i, const uint8_t **data, size_t *len, struct dip_err *err);
    void (*release)(void *ud, size_t i); /* optional */
    /** Display name of item i for logs (optional). */
    const char *(*name)(void *ud, size_t i);
    /** One call per item, success or failure. */
    void (*result)(void *ud, const struct dip_item_result *r);
    /** Progress, throttled to a few calls per second plus a final one (optional). */
    void (*progress)(void *ud, const struct dip_progress *p);
    /** Item i's own progress while it runs, in tiles (optional; the local executor reports it
     * for images whose tiles share the pool, i.e. large images, one after the other). */
    void (*item_progress)(void *ud, size_t i, uint64_t tiles_done, uint64_t tiles_total);
    void *ud;
    volatile int *cancel; /* nonzero: stop promptly; unfinished items fail with DIP_ECANCELED */
    /** Optional (issue 12): item i's input and output as object references (s3:// URLs) that
     * workers can reach themselves. Returns 1 and sets both (borrowed for the job) when the
     * worker may fetch the input and put the output itself, 0 to go through load/result with
     * bytes. Only an executor given a dip_object_io (dip_mpi_opts.objects) asks. */
    int (*refs)(void *ud, size_t i, const char **in_ref, const char **out_ref);
    /** With refs: the configuration workers need to reach the objects (endpoint, region,
     * credentials), shipped with the job and handed to dip_object_io.open on each worker;
     * borrowed for the job. May hold secrets: never logged. */
    const char *object_conf;
};

/** Object storage seen from the executor: references are strings only these callbacks
 * understand (the CLI fills it with the store's S3 client), so the executor links no storage
 * library. Workers fetch inputs and put outputs through it when the job's items have refs. */
struct dip_object_io {
    /** A handle for one job, from the coordinator's dip_job_io.object_conf. DIP_E* on failure
     * (err says why; no secret in it). Called by one thread at a time. */
    int (*open)(void *ud, const char *conf, void **handle, struct dip_err *err);
    void (*close)(void *handle); /* NULL-safe */
    /** Reads object `ref` into a dip_malloc'ed buffer (dip_free) of its size, at most
     * max_bytes (DIP_ELIMIT above). Thread-safe on one handle. */
    int (*get)(void *handle, const char *ref, size_t max_bytes, uint8_t **data, size_t *len,
               struct dip_err *err);
    /** Stores `len` bytes as object `ref`, all or nothing: a put that fails or is interrupted
     * leaves the old object or none, never part of one. Writes the bytes' hex SHA-256 into
     * sha256. Thread-safe on one handle. */
    int (*put)(void *handle, const char *ref, const uint8_t *data, size_t len, char sha256[65],
               struct dip_err *err);
    void *ud;
};

/** Per-worker figures for the end-of-job table, /metrics and the cluster panel. */
struct dip_worker_stat {
    int id; /* 0 local; MPI rank */
    char host[64];
    int alive; /* 0 once declared lost */
    uint64_t tasks;
    uint64_t failures;
    double megapixels;
    double busy_s;
    uint64_t bytes_to, bytes_from; /* MPI message bytes the coordinator sent it / received */
};

typedef struct dip_executor dip_executor;

/** Executors implement this table. */
struct dip_executor_vtable {
    const char *name;
    int (*run)(dip_executor *ex, const struct dip_job_spec *spec, const struct dip_job_io *io,
               struct dip_err *err);
    size_t (*workers)(dip_executor *ex, struct dip_worker_stat *out, size_t max);
    void (*free)(dip_executor *ex);
};
struct dip_executor {
    const struct dip_executor_vtable *vt;
};

/** The local executor over `threads` threads (0 = all cores). Whole images of a batch run in
 * parallel when there are at least as many images as threads; otherwise each image is cut into
 * tiles run in parallel. */
int dip_executor_local_new(int threads, dip_executor **out);

/** Runs a job to completion (or cancellation). Returns 0 when the job ran (items may still have
 * failed: see the results), DIP_EINVAL for a bad spec (e.g. bad pipeline, err says where). */
int dip_executor_run(dip_executor *ex, const struct dip_job_spec *spec, const struct dip_job_io *io,
                     struct dip_err *err);
size_t dip_executor_workers(dip_executor *ex, struct dip_worker_stat *out, size_t max);
void dip_executor_free(dip_executor *ex);

/* ---- Devices (src/exec/opencl, built with DIP_WITH_OPENCL) ---- */

/** Where dip_run_image() runs the pixel work. */
enum dip_device {
    DIP_DEVICE_DEFAULT = 0, /* the process default (CPU unless dip_device_set_default changed it) */
    DIP_DEVICE_CPU,         /* the thread pool */
    DIP_DEVICE_OPENCL,      /* an OpenCL device: a GPU when present, else any (e.g. PoCL's CPU) */
    DIP_DEVICE_AUTO,        /* an OpenCL GPU when one is present, the CPU otherwise */
};
/** Parses "cpu", "opencl" or "auto". Returns 0 or DIP_EINVAL (err names the value). */
int dip_device_parse(const char *text, enum dip_device *out, struct dip_err *err);
/** Sets the device used by runs whose dip_run_opts.device is DIP_DEVICE_DEFAULT (the CLI's
 * --device; MPI workers parse the same argv, so each rank picks its own GPU). Call before runs. */
void dip_device_set_default(enum dip_device d);
/** The device kind a run with `d` uses now: DIP_DEVICE_CPU or DIP_DEVICE_OPENCL. The first call
 * that needs OpenCL finds the platforms (no platform: the CPU, silently for auto). */
enum dip_device dip_device_resolve(enum dip_device d);
/** One line per OpenCL device found ("opencl: NVIDIA CUDA / NVIDIA H100 (gpu)"), or
 * "opencl: none" (or "opencl: not built"), into buf. */
void dip_devices_describe(char *buf, size_t len);
/** The devices as a JSON array of objects {"platform","name","type","selected"} into buf
 * ("[]" when none). For the server's /api/v1/cluster. Returns the length written. */
size_t dip_devices_json(char *buf, size_t len);

/** Device time of the runs so far (all threads): host->device and device->host copies and
 * kernels, from the device's own profiling clocks, and the number of runs that fell back to the
 * CPU. For `dip bench`. */
struct dip_device_times {
    double upload_s, kernel_s, download_s;
    unsigned long runs, fallbacks;
};
void dip_device_times(struct dip_device_times *out);
void dip_device_times_reset(void);

/* ---- The MPI cluster executor (src/exec/mpi, built with DIP_WITH_MPI) ---- */

struct dip_mpi_opts {
    int max_workers;       /* elastic growth up to this many workers (0: no spawning) */
    int log_level;         /* 0 errors, 1 warnings, 2 info (per-task lines), 3 debug */
    double task_timeout_s; /* minimum deadline of one task; scaled up with its size */
    double heartbeat_s;    /* worker heartbeat period */
    /* Read from the environment by dip_mpi_opts_default() (the only place that reads it): */
    double lost_s;   /* DIP_MPI_LOST_S: silence before a worker is lost (5) */
    double orphan_s; /* DIP_MPI_ORPHAN_S: a worker with a job leaves after this long
                      * without word from the coordinator (2 x lost_s) */
    double idle_s;   /* DIP_MPI_IDLE_S: spawned workers idle this long are released between
                      * jobs (< 0, the default: never; they stay until the end of the run) */
    double spawn_s;  /* DIP_MPI_SPAWN_S: rank 0 ends the run if MPI_Comm_spawn takes longer (60) */
    unsigned long long tile_pixels; /* DIP_MPI_TILE_PIXELS: a lone image above this is tiled */
    int worker_threads;             /* DIP_MPI_THREADS: threads of each worker (0: all cores) */
    int stream_images; /* DIP_MPI_STREAM: a tiled image is decoded and encoded in strips
                        * where its formats allow (1), or whole on the coordinator (0) */
    int serve;         /* 1: the coordinator idles between jobs (dip serve) */
    /* Object storage for workers (NULL: none): the same callbacks on every rank. */
    const struct dip_object_io *objects;
    const char *cluster_key; /* DIP_CLUSTER_KEY or --cluster-key: a key file (dip key create)
                              * that seals every message between ranks; NULL: in clear */
};
void dip_mpi_opts_default(struct dip_mpi_opts *o);

/** Starts the cluster executor when this process runs under mpirun with more than one rank (or
 * was spawned by a coordinator). On the coordinator (rank 0) returns 0 with *out set. On a worker
 * rank runs the worker loop until the coordinator ends the job, then returns 0 with *out NULL and
 * *worker_done 1: the caller exits 0 at once. When not under MPI (or with one rank) returns 0 with
 * *out NULL and *worker_done 0: use the local executor. dip_executor_free() of the coordinator's
 * executor shuts the workers down and finalises MPI without blocking on dead ranks. */
int dip_mpi_start(int *argc, char ***argv, const struct dip_mpi_opts *o, dip_executor **out,
                  int *worker_done, struct dip_err *err);
/** 1 when the environment says this process was started by mpirun/mpiexec. */
int dip_mpi_launched(void);
/** 1 when the environment says this process is a rank other than 0 of an mpirun launch: a
 * worker, known before MPI starts (so it can skip what only the coordinator needs, such as
 * listing the inputs). Workers spawned later (MPI_Comm_spawn) are rank 0 of their own world: 0. */
int dip_mpi_worker_launched(void);
/** The MPI library's version line ("Open MPI v4.1.4, ..."), first line only, into buf. */
void dip_mpi_version(char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
