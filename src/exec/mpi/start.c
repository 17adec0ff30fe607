/* SPDX-License-Identifier: MIT */
/* Entry point of the cluster executor: detects mpirun (or a spawning coordinator), initialises
 * MPI with MPI_ERRORS_RETURN, and sends rank 0 to the coordinator and every other rank to the
 * worker loop. With one rank and no parent it hands back to the local executor. Also the
 * executor's logging. MPI runs at MPI_THREAD_SERIALIZED: on workers only the main thread calls it,
 * and on the coordinator the executor is driven by one thread at a time (dip serve runs one job
 * at a time on its own thread). */
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "internal.h"

int dip__mpi_log_level = 1;

void dip__mpi_log(int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (level > dip__mpi_log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "dip-mpi: %s\n", line);
}

double dip__mpi_lost_after(const struct dip_mpi_opts *o)
{
    const char *env = getenv("DIP_MPI_LOST_S");
    double hb = o->heartbeat_s > 0 ? o->heartbeat_s : 0.5;

    if (env) {
        double v = strtod(env, NULL);
        if (v >= 0.2 && v <= 3600)
            return v;
    }
    return DIP_MAX(5.0, 10.0 * hb);
}

void dip_mpi_opts_default(struct dip_mpi_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_workers = 0;
    o->log_level = 1;
    o->task_timeout_s = 30.0;
    o->heartbeat_s = 0.5;
}

int dip_mpi_launched(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                                       "MPI_LOCALNRANKS"};

    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

int dip_mpi_start(int *argc, char ***argv, const struct dip_mpi_opts *o, dip_executor **out,
                  int *worker_done, struct dip_err *err)
{
    struct dip_mpi_opts def;
    MPI_Comm parent = MPI_COMM_NULL;
    int inited = 0, provided = 0, rank = 0, size = 1, rc = 0;

    *out = NULL;
    *worker_done = 0;
    if (!o) {
        dip_mpi_opts_default(&def);
        o = &def;
    }
    dip__mpi_log_level = o->log_level;
    if (!dip_mpi_launched())
        return 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
        return dip_err_set(err, DIP_EPEER, "mpi: MPI_Init_thread failed");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
    MPI_Comm_get_parent(&parent);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (parent != MPI_COMM_NULL) {
        /* Spawned by a coordinator that needed more workers. */
        int fin;

        MPI_Comm_set_errhandler(parent, MPI_ERRORS_RETURN);
        fin = dip__mpi_worker(&parent, o);
        if (fin) {
            MPI_Comm_disconnect(&parent);
            MPI_Finalize();
        }
        *worker_done = 1;
        return 0;
    }
    if (size < 2) {
        /* One rank: the local executor does the work; MPI stays idle until exit. */
        MPI_Finalize();
        return 0;
    }
    if (rank != 0) {
        MPI_Comm world = MPI_COMM_WORLD;

        if (dip__mpi_worker(&world, o))
            MPI_Finalize();
        *worker_done = 1;
        return 0;
    }
    rc = dip__mpi_coord_new(o, argc ? *argc : 0, argv ? *argv : NULL, out, err);
    return rc;
}

void dip_mpi_version(char *buf, size_t len)
{
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int n = 0;

    buf[0] = '\0';
    if (MPI_Get_library_version(v, &n) != MPI_SUCCESS)
        return;
    v[strcspn(v, "\n")] = '\0';
    snprintf(buf, len, "%s", v);
}
