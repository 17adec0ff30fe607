/* SPDX-License-Identifier: MIT */
/* `dip process`: runs a pipeline over one image or a batch. Inputs are read lazily, outputs are
 * written to a temporary name and renamed, one bad input never stops the others, and a summary
 * closes the run. On a terminal a progress bar shows done/total, MP/s and ETA; otherwise each
 * image gets a plain line. Under mpirun the same command runs on the cluster executor. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "core/internal.h"
#include "s3-opts.h"
#include "writer.h"

static const char help[] =
    "Usage: dip process [-p PIPELINE] -o OUT [OPTIONS] INPUT...\n"
    "\n"
    "Runs PIPELINE (e.g. 'gaussian(size=5) | canny(low=100, high=200)'; empty: convert only) on\n"
    "each INPUT. With one input, OUT may be a file; with several, OUT is a folder (created if\n"
    "missing) and each output keeps its input's base name with the output format's extension.\n"
    "\n"
    "Options:\n"
    "  -p, --pipeline TEXT   operations separated by '|' ('dip ops' lists them)\n"
    "  -o, --output PATH     output file or folder\n"
    "  -f, --format F        png, jpeg, webp, tiff, bmp, pnm (default: from OUT's extension,\n"
    "                        else the input's format; GIF inputs become PNG)\n"
    "  -q, --quality Q       JPEG/WebP quality 1..100 (default 90)\n"
    "      --subsampling S   JPEG chroma subsampling 444, 422 or 420 (default 420)\n"
    "      --png-level N     PNG compression level 0..9 (default 6)\n"
    "      --lossless        lossless WebP\n"
    "      --no-autorotate   keep JPEG/WebP/TIFF pixels as stored (ignore EXIF orientation)\n"
    "  -t, --threads N       threads (default: all cores)\n"
    "      --tile N          tile side in pixels (default: automatic strips); results are\n"
    "                        byte-identical for every tile size and thread count\n"
    "      --quiet           print only failures and the summary\n"
    "      --device D        cpu, opencl or auto (default: an OpenCL GPU when present, else\n"
    "                        the CPU); the same bytes on every device\n"
    "Cluster (under mpirun; see README):\n"
    "      --max-workers M   spawn workers up to M when the backlog grows\n"
    "      --log-level L     0 errors .. 3 debug (2: a line per task)\n"
    "      --task-timeout S  minimum seconds before a task's worker is declared lost\n"
    "      --no-worker-io    rank 0 reads and writes s3:// objects and ships their bytes\n"
    "                        (default: when INPUT and OUT are both s3://, each worker gets\n"
    "                        its inputs and puts its outputs itself)\n"
    "      --cluster-key F   seal every message between ranks with key file F (dip key\n"
    "                        create F; mode 0600; the same on every rank; also\n"
    "                        DIP_CLUSTER_KEY=F)\n"
    "INPUT and OUT may be objects: s3://bucket/key, s3://bucket/prefix/ (every object under it)\n"
    "or s3://bucket/prefix/*.jpg (a glob on keys; quote it); OUT s3://bucket/prefix/ for\n"
    "several.\n";

enum {
    OPT_SUBSAMPLING = DIP_OPT_FIRST_FREE,
    OPT_PNG_LEVEL,
    OPT_LOSSLESS,
    OPT_NO_AUTOROTATE,
    OPT_TILE,
    OPT_QUIET,
    OPT_MAX_WORKERS,
    OPT_LOG_LEVEL,
    OPT_TASK_TIMEOUT,
    OPT_DEVICE,
    OPT_NO_WORKER_IO,
    OPT_CLUSTER_KEY,
};

struct item {
    const char *in;
    char *out;
    uint8_t *data;
    int rc;
    char *error;
    struct dip_item_result res; /* while its file is being written (data and error unset) */
};

struct run {
    struct item *items;
    size_t n;
    size_t max_bytes;
    int threads; /* --threads (0: all cores) */
    int quiet, tty;
    uint64_t pixels_done_bar;
    int bar_shown;
    size_t written;
    struct dip__cli_s3 *s3;
    dip__writer *writer; /* writes the outputs off the executor's threads */
    pthread_mutex_t mu;  /* the fields above, between the executor's callbacks and the writer */
    struct dip_file_out stream; /* one local output written while it is encoded (stream_sink) */
};

static int load(void *ud, size_t i, const uint8_t **data, size_t *len, struct dip_err *err)
{
    struct run *r = ud;
    uint8_t *d = NULL;
    int rc = dip__cli_s3_is_url(r->items[i].in)
                 ? dip__cli_s3_read(r->s3, r->items[i].in, r->max_bytes, &d, len, err)
                 : dip_file_read_threads(r->items[i].in, r->max_bytes, r->threads, &d, len, err);

    if (rc == 0) {
        r->items[i].data = d;
        *data = d;
    }
    return rc;
}

static void release(void *ud, size_t i)
{
    struct run *r = ud;

    dip_free(r->items[i].data);
    r->items[i].data = NULL;
}

/* Under mpirun, an item whose input and output are both objects goes to a worker as two
 * references: the worker gets, runs and puts it (issue 12). */
static int item_refs(void *ud, size_t i, const char **in_ref, const char **out_ref)
{
    struct run *r = ud;

    *in_ref = r->items[i].in;
    *out_ref = r->items[i].out;
    return dip__cli_s3_is_url(*in_ref) && dip__cli_s3_is_url(*out_ref);
}

static const char *item_name(void *ud, size_t i)
{
    return ((struct run *)ud)->items[i].in;
}

static void clear_bar(struct run *r)
{
    if (r->bar_shown) {
        fputs("\r\033[K", stderr);
        r->bar_shown = 0;
    }
}

/* Reports an item once its file is written (rc: 0, or the run's or the write's error). */
static void report_item(struct run *r, const struct dip_item_result *res, int rc, const char *werr)
{
    struct item *it = &r->items[res->index];

    it->rc = rc;
    if (rc) {
        const char *msg = res->rc ? res->error : werr;
        it->error = dip_strdup(msg ? msg : dip_strerror(rc));
        clear_bar(r);
        fprintf(stderr, "FAILED %s: %s\n", it->in, msg ? msg : dip_strerror(rc));
        return;
    }
    r->written++;
    if (!r->quiet && !r->tty) {
        char where[48] = "";
        if (res->worker > 0)
            snprintf(where, sizeof(where), ", rank %d%s", res->worker,
                     res->attempts > 1 ? ", retried" : "");
        printf("ok %s -> %s (%dx%d %s, %.3f s%s)\n", it->in, it->out, res->width, res->height,
               dip_format_name(res->format), res->seconds, where);
    }
}

/* A single image to a local file is written while it is encoded (dip_encode_opts.sink): the
 * encoder's threads append each finished part of the file to a temporary, so that writing it
 * overlaps the encoding of the rest, and on_result commits it (fsync, rename: as durable as
 * dip_file_write_atomic) when it holds the whole file. Otherwise (an encoder without parts, a
 * failed open or write) the temporary is removed and the file is written as usual. */
static int stream_sink(void *ud, const uint8_t *bytes, size_t n)
{
    struct run *r = ud;
    struct dip_err err = {0};

    if (r->stream.fd < 0 && dip_file_out_open(&r->stream, r->items[0].out, &err) != 0)
        return 1;
    return dip_file_out_write(&r->stream, bytes, n, &err) != 0;
}

/* With --device auto, the first image asks whether there is a GPU, and answering loads every
 * OpenCL driver (PoCL brings LLVM): some 40 ms of CPU that used to stand between the decode and
 * the pipeline of every `dip process`. Asked on a thread of its own as the run starts, the
 * answer is ready (or nearly) when the image is decoded. Joined before the command returns, so
 * the process never exits while a driver is being loaded. */
static void *warm_device(void *ud)
{
    (void)ud;
    (void)dip_device_resolve(DIP_DEVICE_DEFAULT);
    return NULL;
}

static void on_result(void *ud, const struct dip_item_result *res)
{
    struct run *r = ud;
    struct item *it = &r->items[res->index];
    struct dip_err err = {0};
    int rc = res->rc;

    if (r->stream.fd >= 0) {
        if (rc == 0 && !res->stored && r->stream.written == res->len) {
            rc = dip_file_out_commit(&r->stream, &err);
            pthread_mutex_lock(&r->mu);
            report_item(r, res, rc, err.msg);
            pthread_mutex_unlock(&r->mu);
            return;
        }
        dip_file_out_abort(&r->stream);
    }
    if (rc == 0 && res->stored) {
        /* the worker put it (dip_job_io.refs) */
    } else if (rc == 0 && dip__cli_s3_is_url(it->out)) {
        /* An object is put from the encoder's buffer on this thread: a writer thread would
         * need a copy of it, and the upload does not wait on a local disk's fsync. */
        rc = dip__cli_s3_write(r->s3, it->out, res->data, res->len, &err);
    } else if (rc == 0 && r->writer != NULL && r->n > 1) {
        /* A batch: the writer threads write while the executor encodes the next images. A
         * single image is written below on this thread, which has nothing else to do: the
         * writer's copy of a large file was a serial step of its own. */
        it->res = *res;
        it->res.data = NULL;
        it->res.error = NULL;
        rc = dip__writer_put(r->writer, res->index, it->out, res->data, res->len);
        if (rc == 0)
            return; /* wrote() reports it */
        dip_err_set(&err, rc, "%s: out of memory queueing the output", it->out);
    } else if (rc == 0) {
        rc = dip_file_write_atomic(it->out, res->data, res->len, &err);
    }
    pthread_mutex_lock(&r->mu);
    report_item(r, res, rc, err.msg);
    pthread_mutex_unlock(&r->mu);
}

/* The writer's callback, on its thread. */
static void wrote(void *ud, size_t index, int rc, const struct dip_err *err)
{
    struct run *r = ud;

    pthread_mutex_lock(&r->mu);
    report_item(r, &r->items[index].res, rc, err->msg);
    pthread_mutex_unlock(&r->mu);
}

static void on_progress(void *ud, const struct dip_progress *p)
{
    struct run *r = ud;
    double frac, rate, eta;
    int width = 30, filled;

    if (r->quiet || !r->tty)
        return;
    pthread_mutex_lock(&r->mu);
    if (p->tasks_total > 0 && p->items_total == 1)
        frac = (double)p->tasks_done / (double)p->tasks_total;
    else
        frac = p->items_total ? (double)p->items_done / (double)p->items_total : 1.0;
    if (frac > 1)
        frac = 1;
    rate = p->elapsed_s > 0 ? (double)p->pixels_done / 1e6 / p->elapsed_s : 0;
    eta = frac > 0 ? p->elapsed_s * (1 - frac) / frac : 0;
    filled = (int)(frac * width);
    fprintf(stderr, "\r\033[K[");
    for (int i = 0; i < width; i++)
        fputc(i < filled ? '#' : '.', stderr);
    fprintf(stderr, "] %llu/%llu  %5.1f%%  %.1f MP/s  ETA %.0fs", (unsigned long long)p->items_done,
            (unsigned long long)p->items_total, frac * 100, rate, eta);
    fflush(stderr);
    r->bar_shown = 1;
    pthread_mutex_unlock(&r->mu);
}

static int is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* OUT/base-of-in with the extension of `f`. */
static char *out_path(const char *dir, const char *in, dip_format f)
{
    char *copy = dip_strdup(in), *base, *dot, *res;
    size_t len;

    if (copy == NULL)
        return NULL;
    base = basename(copy);
    dot = strrchr(base, '.');
    if (dot != NULL && dot != base)
        *dot = '\0';
    len = strlen(dir) + strlen(base) + 16;
    res = dip_malloc(len);
    if (res != NULL)
        snprintf(res, len, "%s%s%s.%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", base,
                 dip_format_ext(f));
    dip_free(copy);
    return res;
}

/* The format an input will be written in when none was asked for: its own (sniffed from its
 * first bytes), or PNG when dip cannot encode that format. */
static dip_format input_format(const char *path, struct dip__cli_s3 *s3)
{
    uint8_t head[16];
    FILE *f = dip__cli_s3_is_url(path) ? NULL : fopen(path, "rb");
    size_t n = 0;
    dip_format fmt;

    if (dip__cli_s3_is_url(path))
        n = dip__cli_s3_head(s3, path, head);
    if (f != NULL) {
        n = fread(head, 1, sizeof(head), f);
        fclose(f);
    }
    fmt = dip_codec_sniff(head, n);
    return dip_format_can_encode(fmt) ? fmt : DIP_FORMAT_PNG;
}

/* Removes the temporaries an earlier run left when it died mid-write: OUT.tmp.XXXXXX (the name
 * dip_file_write_atomic gives them) for an OUT this run writes, a regular file of this user,
 * last written before this run started. Nothing else is touched. (Two runs writing the same
 * outputs at the same time are not supported.) */
static void remove_stale_temporaries(const struct run *r)
{
    struct timespec started;
    char *done_dirs = NULL;
    size_t done_len = 0;

    clock_gettime(CLOCK_REALTIME, &started);
    for (size_t i = 0; i < r->n; i++) {
        char *copy = dip_strdup(r->items[i].out), *dir, *seen;
        DIR *d;
        struct dirent *e;
        size_t dl;

        if (copy == NULL)
            break;
        dir = dirname(copy);
        dl = strlen(dir);
        /* each folder once: a batch writes into one */
        for (seen = done_dirs; seen && seen < done_dirs + done_len; seen += strlen(seen) + 1)
            if (strcmp(seen, dir) == 0)
                break;
        if (seen && seen < done_dirs + done_len) {
            dip_free(copy);
            continue;
        }
        {
            char *n = dip_realloc(done_dirs, done_len + dl + 1);
            if (n != NULL) {
                memcpy(n + done_len, dir, dl + 1);
                done_dirs = n;
                done_len += dl + 1;
            }
        }
        d = opendir(dir);
        while (d != NULL && (e = readdir(d)) != NULL) {
            size_t nl = strlen(e->d_name);
            const char *t = nl > 11 && memcmp(e->d_name + nl - 11, ".tmp.", 5) == 0
                                ? e->d_name + nl - 11
                                : NULL;
            char path[4096];
            struct stat st;
            size_t base_len;
            int ours = 0;

            if (t == NULL)
                continue;
            for (const char *q = t + 5; *q; q++)
                if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
                      (*q >= '0' && *q <= '9')))
                    t = NULL;
            if (t == NULL)
                continue;
            base_len = (size_t)(t - e->d_name);
            if ((size_t)snprintf(path, sizeof(path), "%s/%.*s", dir, (int)base_len, e->d_name) >=
                sizeof(path))
                continue;
            for (size_t k = 0; k < r->n && !ours; k++)
                ours = strcmp(r->items[k].out, path) == 0 ||
                       (strcmp(dir, ".") == 0 && strcmp(r->items[k].out, path + 2) == 0);
            if (!ours)
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
                (st.st_mtim.tv_sec < started.tv_sec ||
                 (st.st_mtim.tv_sec == started.tv_sec && st.st_mtim.tv_nsec < started.tv_nsec)) &&
                unlink(path) == 0)
                fprintf(stderr, "dip process: removed %s, left by an interrupted run\n", path);
        }
        if (d != NULL)
            closedir(d);
        dip_free(copy);
    }
    dip_free(done_dirs);
}

static dip_executor *make_executor(int *argc, char ***argv, int threads,
                                   const struct dip_mpi_opts *mo, int *worker_done, int *rc)
{
    dip_executor *ex = NULL;
    struct dip_err err = {0};

    *worker_done = 0;
#ifdef DIP_WITH_MPI
    *rc = dip_mpi_start(argc, argv, mo, &ex, worker_done, &err);
    if (*rc) {
        fprintf(stderr, "dip process: cluster: %s\n", dip_err_text(&err, *rc));
        return NULL;
    }
    if (ex != NULL || *worker_done)
        return ex;
#else
    (void)argc;
    (void)argv;
    (void)mo;
    (void)err;
#endif
    *rc = dip_executor_local_new(threads, &ex);
    if (*rc)
        fprintf(stderr, "dip process: cannot start the thread pool: %s\n", dip_strerror(*rc));
    return ex;
}

static void print_workers(dip_executor *ex, double elapsed)
{
    struct dip_worker_stat ws[256];
    size_t n = dip_executor_workers(ex, ws, 256);

    fprintf(stderr, "%-6s %-20s %-6s %8s %10s %7s %8s\n", "worker", "host", "state", "tasks",
            "megapixels", "busy%", "failures");
    for (size_t i = 0; i < n && i < 256; i++)
        fprintf(stderr, "%-6d %-20s %-6s %8llu %10.1f %6.0f%% %8llu\n", ws[i].id, ws[i].host,
                ws[i].alive ? "alive" : "LOST", (unsigned long long)ws[i].tasks, ws[i].megapixels,
                elapsed > 0 ? 100.0 * ws[i].busy_s / elapsed : 0.0,
                (unsigned long long)ws[i].failures);
    {
        uint64_t to = 0, from = 0;
        for (size_t i = 0; i < n && i < 256; i++) {
            to += ws[i].bytes_to;
            from += ws[i].bytes_from;
        }
        /* What crossed the MPI transport: with worker-side object I/O, keys rather than images. */
        fprintf(stderr, "transport: rank 0 sent %llu bytes to the workers, received %llu\n",
                (unsigned long long)to, (unsigned long long)from);
    }
}

int dip__cmd_process(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"pipeline", required_argument, NULL, 'p'},
        {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, 'f'},
        {"quality", required_argument, NULL, 'q'},
        {"threads", required_argument, NULL, 't'},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"help", no_argument, NULL, 'h'},
        {"subsampling", required_argument, NULL, OPT_SUBSAMPLING},
        {"png-level", required_argument, NULL, OPT_PNG_LEVEL},
        {"lossless", no_argument, NULL, OPT_LOSSLESS},
        {"no-autorotate", no_argument, NULL, OPT_NO_AUTOROTATE},
        {"tile", required_argument, NULL, OPT_TILE},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"max-workers", required_argument, NULL, OPT_MAX_WORKERS},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"task-timeout", required_argument, NULL, OPT_TASK_TIMEOUT},
        {"no-worker-io", no_argument, NULL, OPT_NO_WORKER_IO},
        {"cluster-key", required_argument, NULL, OPT_CLUSTER_KEY},
        DIP_CLI_LIMIT_OPTIONS DIP_CLI_S3_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct dip_job_spec spec;
    struct dip_mpi_opts mo;
    struct dip_job_io io = {0};
    struct run run = {.mu = PTHREAD_MUTEX_INITIALIZER, .stream = {.fd = -1}};
    struct dip__cli_s3 s3 = DIP_CLI_S3_INIT;
    struct dip_object_io objio;
    char *objconf = NULL;
    int worker_io = 1;
    char **inputs = NULL;
    size_t n_inputs = 0;
    struct dip_err err = {0};
    const char *out = NULL, *fmtname = NULL;
    dip_pipeline *p = NULL;
    dip_executor *ex = NULL;
    long v;
    int opt, bad = 0, threads = 0, rc = 0, worker_done = 0, out_is_dir, warming = 0;
    pthread_t warm;
    size_t failed = 0;
    double t0;

    dip_job_spec_default(&spec);
#ifdef DIP_WITH_MPI
    dip_mpi_opts_default(&mo);
#else
    memset(&mo, 0, sizeof(mo));
#endif
    optind = 1;
    while ((opt = getopt_long(argc, argv, "p:o:f:q:t:h", longopts, NULL)) != -1) {
        if (dip__cli_limit_opt(opt, optarg, &spec.limits, &bad) ||
            dip__cli_s3_opt(opt, optarg, &s3, &bad))
            continue;
        switch (opt) {
        case 'p':
            spec.pipeline = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'f':
            fmtname = optarg;
            break;
        case 'q':
            bad |= dip__cli_int("quality", optarg, 1, 100, &v);
            spec.encode.quality = (int)v;
            break;
        case OPT_DEVICE:
            bad |= dip__cli_device("process", optarg);
            break;
        case 't':
            bad |= dip__cli_int("threads", optarg, 1, 1024, &v);
            threads = (int)v;
            break;
        case OPT_SUBSAMPLING:
            bad |= dip__cli_int("subsampling", optarg, 420, 444, &v);
            if (!bad && v != 420 && v != 422 && v != 444) {
                fprintf(stderr, "dip process: --subsampling must be 444, 422 or 420\n");
                bad = 1;
            }
            spec.encode.subsampling = (int)v;
            break;
        case OPT_PNG_LEVEL:
            bad |= dip__cli_int("png-level", optarg, 0, 9, &v);
            spec.encode.png_level = (int)v;
            break;
        case OPT_LOSSLESS:
            spec.encode.webp_lossless = 1;
            break;
        case OPT_NO_AUTOROTATE:
            spec.decode.autorotate = 0;
            break;
        case OPT_TILE:
            bad |= dip__cli_int("tile", optarg, 1, 1 << 20, &v);
            spec.tile = (int)v;
            break;
        case OPT_QUIET:
            run.quiet = 1;
            break;
        case OPT_MAX_WORKERS:
            bad |= dip__cli_int("max-workers", optarg, 0, 4096, &v);
            mo.max_workers = (int)v;
            break;
        case OPT_LOG_LEVEL:
            bad |= dip__cli_int("log-level", optarg, 0, 3, &v);
            mo.log_level = (int)v;
            break;
        case OPT_TASK_TIMEOUT:
            bad |= dip__cli_int("task-timeout", optarg, 1, 86400, &v);
            mo.task_timeout_s = (double)v;
            break;
        case OPT_NO_WORKER_IO:
            worker_io = 0;
            break;
        case OPT_CLUSTER_KEY:
            mo.cluster_key = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            fputs(dip__cli_limits_help(), stdout);
            fputs(dip__cli_s3_help, stdout);
            return 0;
        default:
            fputs(help, stderr);
            return 2;
        }
    }
    if (bad)
        return 2;
    if (optind >= argc) {
        fprintf(stderr, "dip process: no input files (see 'dip process --help')\n");
        return 2;
    }
    if (out == NULL) {
        fprintf(stderr, "dip process: -o OUT is required (a file for one input, a folder for "
                        "several)\n");
        return 2;
    }
    rc = dip_pipeline_parse(spec.pipeline, &p, &err);
    if (rc) {
        fprintf(stderr, "dip process: %s\n", err.msg);
        return dip_err_exit_code(rc);
    }
    if (fmtname != NULL) {
        spec.encode.format = dip_format_from_name(fmtname);
        if (!dip_format_can_encode(spec.encode.format)) {
            fprintf(stderr,
                    "dip process: --format %s: cannot write that format (png, jpeg, "
                    "webp, tiff, bmp, pnm)\n",
                    fmtname);
            rc = DIP_EINVAL;
            goto out;
        }
    }
    if (worker_io && dip__cli_s3_objects(&s3, &objio) == 0)
        mo.objects = &objio; /* every rank: workers get and put objects through it */
#ifdef DIP_WITH_MPI
    if (dip_mpi_worker_launched()) {
        /* A worker rank needs no list of inputs (the coordinator sends tasks): it joins at once,
         * without listing s3:// prefixes or reading inputs, and reaches the objects with the
         * configuration the coordinator ships (its own environment need not reach them). */
        ex = make_executor(&argc, &argv, threads, &mo, &worker_done, &rc);
        if (worker_done || ex == NULL) {
            rc = worker_done ? 0 : rc;
            goto out;
        }
    }
#endif
    /* s3:// prefixes and globs become the objects they match. */
    run.s3 = &s3;
    rc = dip__cli_s3_expand(&s3, argv + optind, (size_t)(argc - optind), &inputs, &n_inputs, &err);
    if (rc == 0 && dip__cli_s3_is_url(out))
        rc = dip__cli_s3_client(&s3, &err);
    if (rc) {
        fprintf(stderr, "dip process: %s\n", dip_err_text(&err, rc));
        goto out;
    }
    run.n = n_inputs;
    out_is_dir = run.n > 1 || is_dir(out) || out[strlen(out) - 1] == '/';
    if (!out_is_dir && spec.encode.format == DIP_FORMAT_UNKNOWN) {
        dip_format f = dip_format_from_path(out);
        if (f != DIP_FORMAT_UNKNOWN && !dip_format_can_encode(f)) {
            fprintf(stderr, "dip process: %s: cannot write %s files\n", out, dip_format_name(f));
            rc = DIP_EINVAL;
            goto out;
        }
        spec.encode.format = f;
    }
    if (out_is_dir && !dip__cli_s3_is_url(out) && !is_dir(out) && mkdir(out, 0755) != 0 &&
        errno != EEXIST) {
        fprintf(stderr, "dip process: cannot create folder %s: %s\n", out, strerror(errno));
        rc = DIP_EIO;
        goto out;
    }
    run.items = dip_calloc(run.n, sizeof(*run.items));
    if (run.items == NULL) {
        rc = DIP_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < run.n; i++) {
        struct item *it = &run.items[i];
        dip_format f = spec.encode.format;
        it->in = inputs[i];
        if (f == DIP_FORMAT_UNKNOWN)
            f = input_format(it->in, &s3);
        it->out = out_is_dir ? out_path(out, it->in, f) : dip_strdup(out);
        if (it->out == NULL) {
            rc = DIP_ENOMEM;
            goto out;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(run.items[k].out, it->out) == 0) {
                fprintf(stderr, "dip process: %s and %s would both be written to %s\n",
                        run.items[k].in, it->in, it->out);
                rc = DIP_EINVAL;
                goto out;
            }
        }
    }
    spec.threads = threads;
    if (ex == NULL)
        ex = make_executor(&argc, &argv, threads, &mo, &worker_done, &rc);
    if (worker_done) {
        rc = 0;
        goto out;
    }
    if (ex == NULL)
        goto out;
    if (strcmp(ex->vt->name, "local") == 0 && spec.pipeline != NULL && *spec.pipeline)
        warming = pthread_create(&warm, NULL, warm_device, NULL) == 0;
    dip__cli_status_open();
    remove_stale_temporaries(&run);
    run.max_bytes = spec.limits.max_input_bytes;
    run.threads = threads;
    run.tty = isatty(STDERR_FILENO);
    io.n_items = run.n;
    io.load = load;
    io.release = release;
    io.name = item_name;
    io.result = on_result;
    io.progress = on_progress;
    io.ud = &run;
    if (mo.objects != NULL && strcmp(ex->vt->name, "local") != 0) {
        /* The configuration (with the credentials) goes to the workers only when they need it. */
        const char *ri, *ro;
        size_t k = 0;
        while (k < run.n && !item_refs(&run, k, &ri, &ro))
            k++;
        if (k < run.n && dip__cli_s3_conf(&s3, &objconf, &err) == 0) {
            io.refs = item_refs;
            io.object_conf = objconf;
        }
        memset(&err, 0, sizeof(err));
    }
    if (run.n == 1 && strcmp(ex->vt->name, "local") == 0 && !dip__cli_s3_is_url(run.items[0].out)) {
        spec.encode.sink = stream_sink;
        spec.encode.sink_ud = &run;
    }
    t0 = dip__now();
    /* Two writers: an fsync waits on the disk, not the CPU, so two overlap; 256 MiB of encoded
     * outputs at most wait. Without them the executor's threads write (as before). */
    if (dip__writer_new(2, (size_t)256 << 20, wrote, &run, &run.writer) != 0)
        run.writer = NULL;
    rc = dip_executor_run(ex, &spec, &io, &err);
    dip_file_out_abort(&run.stream); /* a streamed output whose item never reported */
    dip__writer_free(run.writer);    /* every output written */
    run.writer = NULL;
    clear_bar(&run);
    if (rc) {
        fprintf(stderr, "dip process: %s\n", dip_err_text(&err, rc));
        goto out;
    }
    for (size_t i = 0; i < run.n; i++)
        failed += run.items[i].rc != 0;
    if (strcmp(ex->vt->name, "local") != 0)
        print_workers(ex, dip__now() - t0);
    fprintf(stderr, "%zu done, %zu failed, %.2f s\n", run.n - failed, failed, dip__now() - t0);
    for (size_t i = 0; i < run.n; i++)
        if (run.items[i].rc)
            fprintf(stderr, "  %s: %s\n", run.items[i].in, run.items[i].error);
    if (failed) {
        for (size_t i = 0; i < run.n; i++)
            if (run.items[i].rc) {
                rc = run.items[i].rc;
                break;
            }
    }
out:
    if (warming)
        pthread_join(warm, NULL);
    if (ex != NULL) {
        struct dip_worker_stat ws[256];
        size_t nw = dip_executor_workers(ex, ws, 256), lost = 0;

        for (size_t i = 0; i < nw && i < 256; i++)
            lost += !ws[i].alive;
        dip__cli_status_write(rc ? dip_err_exit_code(rc) : 0, lost);
    }
    dip_executor_free(ex);
    if (objconf != NULL)
        explicit_bzero(objconf, strlen(objconf)); /* it holds the credentials */
    dip_free(objconf);
    for (size_t i = 0; run.items && i < run.n; i++) {
        dip_free(run.items[i].out);
        dip_free(run.items[i].error);
        dip_free(run.items[i].data);
    }
    dip_free(run.items);
    dip_pipeline_free(p);
    dip__cli_strv_free(inputs, n_inputs);
    dip__cli_s3_cleanup(&s3);
    return rc ? dip_err_exit_code(rc) : 0;
}
