/* SPDX-License-Identifier: MIT */
/* Test driver: runs the same job several times on one cluster executor, as `dip serve` does, so
 * the tests can check that an executor serves job after job, keeps its spawned workers between
 * jobs and lets idle ones go when DIP_MPI_IDLE_S says so. Usage: mpi-jobs PIPELINE OUTDIR JOBS
 * MAX_WORKERS INPUT... (job j writes to OUTDIR/j/). MPI_JOBS_LATER=N: the jobs after the first
 * take only the first N inputs. Prints the worker table after each job. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dip/exec.h"

struct run {
    char **in;
    const char *outdir;
    int job;
    uint8_t *data;
    int failed;
};

static int load(void *ud, size_t i, const uint8_t **data, size_t *len, struct dip_err *err)
{
    struct run *r = ud;

    dip_free(r->data);
    r->data = NULL;
    if (dip_file_read(r->in[i], (size_t)1 << 30, &r->data, len, err) != 0)
        return err->code;
    *data = r->data;
    return 0;
}

static const char *name(void *ud, size_t i)
{
    return ((struct run *)ud)->in[i];
}

static void result(void *ud, const struct dip_item_result *res)
{
    struct run *r = ud;
    const char *base = strrchr(r->in[res->index], '/');
    char path[4096];

    base = base ? base + 1 : r->in[res->index];
    snprintf(path, sizeof path, "%s/%d/%s", r->outdir, r->job, base);
    if (res->rc || dip_file_write_atomic(path, res->data, res->len, NULL) != 0) {
        fprintf(stderr, "FAILED %s: %s\n", r->in[res->index], res->error ? res->error : "write");
        r->failed++;
    }
}

int main(int argc, char **argv)
{
    struct dip_mpi_opts mo;
    struct dip_job_spec spec;
    struct dip_job_io io = {0};
    struct run r = {0};
    struct dip_err err = {0};
    dip_executor *ex = NULL;
    int done = 0, rc, jobs;
    size_t later;

    dip_mpi_opts_default(&mo);
    if (argc < 6) {
        fprintf(stderr, "usage: mpi-jobs PIPELINE OUTDIR JOBS MAX_WORKERS INPUT...\n");
        return 2;
    }
    jobs = (int)strtol(argv[3], NULL, 10);
    mo.max_workers = (int)strtol(argv[4], NULL, 10);
    mo.log_level = 1;
    rc = dip_mpi_start(&argc, &argv, &mo, &ex, &done, &err);
    if (rc || done)
        return rc ? 1 : 0;
    if (!ex) {
        fprintf(stderr, "mpi-jobs: not under mpirun with several ranks\n");
        return 2;
    }
    dip_job_spec_default(&spec);
    spec.pipeline = argv[1];
    r.in = argv + 5;
    r.outdir = argv[2];
    io.n_items = (size_t)(argc - 5);
    later = getenv("MPI_JOBS_LATER") ? (size_t)strtoul(getenv("MPI_JOBS_LATER"), NULL, 10) : 0;
    io.load = load;
    io.name = name;
    io.result = result;
    io.ud = &r;
    for (r.job = 0; r.job < jobs; r.job++) {
        char dir[4096];
        struct dip_worker_stat ws[64];
        size_t n;

        if (r.job > 0 && later > 0 && later < io.n_items)
            io.n_items = later;
        snprintf(dir, sizeof dir, "%s/%d", r.outdir, r.job);
        mkdir(dir, 0755);
        rc = dip_executor_run(ex, &spec, &io, &err);
        if (rc) {
            fprintf(stderr, "job %d: %s\n", r.job, dip_err_text(&err, rc));
            break;
        }
        n = dip_executor_workers(ex, ws, 64);
        for (size_t i = 0; i < n && i < 64; i++)
            fprintf(stderr, "job %d worker %d %s tasks %llu\n", r.job, ws[i].id,
                    ws[i].alive ? "alive" : "LOST", (unsigned long long)ws[i].tasks);
    }
    dip_free(r.data);
    dip_executor_free(ex);
    printf("%d failed\n", r.failed);
    return rc || r.failed ? 1 : 0;
}
