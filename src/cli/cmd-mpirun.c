/* SPDX-License-Identifier: MIT */
/* `dip mpirun`: runs Open MPI's mpirun for a cluster job, returns dip's own exit status, and ends
 * mpirun once the job is over. Two limits of Open MPI 4.1 under --enable-recovery make it needed:
 * mpirun's exit status is 0 whatever the ranks return, and once a rank was lost, mpirun (with one
 * daemon per host) never exits, even after every other rank has left.
 *
 * The channel is a status file (DIP_MPI_STATUS_FILE, passed to the ranks with -x). Rank 0 creates
 * it under a temporary name, takes an exclusive flock on it and renames it into place, so the file
 * is locked for as long as the coordinator lives; after the summary (every output written) it
 * writes "exit N lost K". dip mpirun polls the file and mpirun:
 *   - status written: rank 0 is done. With K > 0 lost workers mpirun is interrupted after 1 s;
 *     otherwise it ends on its own (after a clean MPI_Finalize), with an interrupt after 3 s as a
 *     backstop: a host lost after its last task (the summary then names no lost worker) keeps
 *     mpirun waiting for ever on its daemon, and the job must end within 10 s of the summary
 *     (a 20 s backstop ended one 22 s after it at load 11; mpi/test_mpirun_backstop).
 *     Interrupting is safe: every output was renamed into place before the status was
 *     written, and the workers write nothing; mpirun then has each daemon kill its own children.
 *   - file present, lock free, nothing written: the coordinator died. The workers leave on their
 *     own within DIP_MPI_ORPHAN_S; mpirun is interrupted 2 s after the coordinator's death was seen
 *     and the status is 7 (DIP_EPEER).
 * The interrupt is SIGINT, then a second SIGINT 3 s later (Open MPI's "forcibly terminate", needed
 * when a daemon's host is cut off), then SIGKILL 5 s later. This file also holds the writer side
 * (dip__cli_status_open/_write), used by dip process and dip serve on rank 0. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define STATUS_ENV "DIP_MPI_STATUS_FILE"

/* ---- Rank 0's side ---- */

static int status_fd = -1;

void dip__cli_status_open(void)
{
    const char *path = getenv(STATUS_ENV);
    char tmp[4096];
    int fd;

    if (!path || !*path || status_fd >= 0)
        return;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.%ld", path, (long)getpid()) >= sizeof tmp)
        return;
    fd = open(tmp, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 || rename(tmp, path) != 0) {
        close(fd);
        unlink(tmp);
        return;
    }
    status_fd = fd; /* held (and locked) until the process ends */
}

void dip__cli_status_write(int exit_code, size_t lost)
{
    char line[64];
    int n;

    if (status_fd < 0)
        return;
    fflush(NULL); /* the summary first */
    n = snprintf(line, sizeof line, "exit %d lost %zu\n", exit_code, lost);
    if (pwrite(status_fd, line, (size_t)n, 0) != n)
        fprintf(stderr, "dip: cannot write the status file: %s\n", strerror(errno));
    fsync(status_fd);
}

/* ---- The launcher ---- */

static volatile sig_atomic_t child_pid;

static void forward(int sig)
{
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 0: nothing yet; 1: the status is in *code / *lost; 2: the coordinator died without one. */
static int read_status(const char *path, int *code, size_t *lost, int *seen)
{
    char buf[128];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC), free_lock;

    if (fd < 0)
        return 0;
    *seen = 1;
    free_lock = flock(fd, LOCK_SH | LOCK_NB) == 0;
    n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    if (n > 0) {
        buf[n] = '\0';
        if (sscanf(buf, "exit %d lost %zu", code, lost) == 2)
            return 1;
    }
    /* Read again after seeing the lock free: the status may have landed in between. */
    if (free_lock) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        n = fd >= 0 ? pread(fd, buf, sizeof buf - 1, 0) : -1;
        if (fd >= 0)
            close(fd);
        if (n > 0) {
            buf[n] = '\0';
            if (sscanf(buf, "exit %d lost %zu", code, lost) == 2)
                return 1;
        }
        return 2;
    }
    return 0;
}

static const char usage[] =
    "Usage: dip mpirun [MPIRUN OPTIONS] dip process|serve ...\n"
    "Runs Open MPI's mpirun (--enable-recovery is added, and --bind-to none unless a binding is\n"
    "given, so that each worker's threads use all its cores; on one machine, with no host list\n"
    "and no --mca pml/osc/mtl, also --mca pml ob1 --mca osc ^ucx: shared memory without\n"
    "probing network transports) and exits with dip's own status (the\n"
    "table of exit statuses in the README), which mpirun --enable-recovery does not give.\n"
    "Once rank 0 has written every output and its summary, mpirun is ended if it does not end\n"
    "on its own (Open MPI 4.1 waits for ever after a lost rank when there are per-host daemons).\n"
    "If rank 0 dies, the status is 7. Rank 0 must run on this machine (the first host of the\n"
    "hostfile) or DIP_MPIRUN_DIR must name a folder it shares with this machine.\n"
    "Environment: DIP_MPIRUN (the mpirun program; default mpirun), DIP_MPIRUN_DIR (folder of\n"
    "the status file; default $TMPDIR or /tmp).\n";

/* 1 when the launch may place ranks on other hosts: a host list, or a batch system's allocation
 * that mpirun reads itself. */
static int many_hosts(int argc, char **argv)
{
    static const char *const opts[] = {
        "--host",           "-host",         "-H",           "--hostfile",
        "-hostfile",        "--machinefile", "-machinefile", "--default-hostfile",
        "-default-hostfile"};
    static const char *const envs[] = {"SLURM_JOB_NODELIST", "PBS_NODEFILE",
                                       "LSB_HOSTS",          "LSB_MCPU_HOSTS",
                                       "PE_HOSTFILE",        "OMPI_MCA_orte_default_hostfile"};

    for (int i = 1; i < argc; i++)
        for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++)
            if (strcmp(argv[i], opts[k]) == 0 || (strncmp(argv[i], opts[k], strlen(opts[k])) == 0 &&
                                                  argv[i][strlen(opts[k])] == '='))
                return 1;
    for (size_t k = 0; k < sizeof envs / sizeof envs[0]; k++)
        if (getenv(envs[k]))
            return 1;
    return 0;
}

/* 1 when the user chose the point-to-point layer, one-sided layer or matching transport (an
 * `--mca pml|osc|mtl ...` option or OMPI_MCA_pml/osc/mtl in the environment). */
static int chose_pml(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++)
        if ((strcmp(argv[i], "--mca") == 0 || strcmp(argv[i], "-mca") == 0 ||
             strcmp(argv[i], "--gmca") == 0 || strcmp(argv[i], "-gmca") == 0) &&
            (strncmp(argv[i + 1], "pml", 3) == 0 || strncmp(argv[i + 1], "osc", 3) == 0 ||
             strncmp(argv[i + 1], "mtl", 3) == 0))
            return 1;
    return getenv("OMPI_MCA_pml") || getenv("OMPI_MCA_osc") || getenv("OMPI_MCA_mtl");
}

int dip__cmd_mpirun(int argc, char **argv)
{
    const char *mpirun = getenv("DIP_MPIRUN"), *tmpdir = getenv("DIP_MPIRUN_DIR");
    char dir[4096], path[4200];
    static char opt_recovery[] = "--enable-recovery", opt_x[] = "-x", opt_env[] = STATUS_ENV;
    static char opt_bind[] = "--bind-to", opt_none[] = "none";
    static char opt_mca[] = "--mca", opt_pml[] = "pml", opt_ob1[] = "ob1", opt_osc[] = "osc",
                opt_noucx[] = "^ucx";
    char **args, *prog;
    int one_host = !many_hosts(argc, argv) && !chose_pml(argc, argv);
    int n = 0, recovery = 0, bind = 0, code = 0, seen = 0, st = 0, interrupts = 0, state = 0;
    size_t lost = 0;
    double end_at = -1, last_sig = 0;
    pid_t pid;
    struct sigaction sa;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!mpirun || !*mpirun)
        mpirun = "mpirun";
    if (!tmpdir || !*tmpdir)
        tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir)
        tmpdir = "/tmp";
    if ((size_t)snprintf(dir, sizeof dir, "%s/dip-mpirun.XXXXXX", tmpdir) >= sizeof dir ||
        !mkdtemp(dir)) {
        fprintf(stderr, "dip mpirun: cannot create a folder in %s: %s\n", tmpdir, strerror(errno));
        return 6;
    }
    snprintf(path, sizeof path, "%s/status", dir);
    setenv(STATUS_ENV, path, 1);
    args = calloc((size_t)argc + 16, sizeof *args);
    if (!args)
        return 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--enable-recovery") == 0)
            recovery = 1;
        /* Open MPI binds each rank to one core when ranks <= cores: a worker's threads would
         * share it. Unbound unless the user chose a binding. */
        if (strncmp(argv[i], "--bind-to", 9) == 0 || strncmp(argv[i], "-bind-to", 8) == 0 ||
            strstr(argv[i], "binding_policy") != NULL)
            bind = 1;
    }
    prog = strdup(mpirun);
    if (!prog) {
        free(args);
        return 5;
    }
    args[n++] = prog;
    if (!recovery)
        args[n++] = opt_recovery;
    if (!bind) {
        args[n++] = opt_bind;
        args[n++] = opt_none;
    }
    if (one_host) {
        /* Every rank on this machine: shared memory through ob1 (vader). Left to choose, Open MPI
         * probes UCX and the other high-speed transports first, which took 0.25 s of the 0.35 s
         * each rank spent in MPI_Init here, for a transport it does not use on one machine. */
        args[n++] = opt_mca;
        args[n++] = opt_pml;
        args[n++] = opt_ob1;
        args[n++] = opt_mca;
        args[n++] = opt_osc;
        args[n++] = opt_noucx;
    }
    args[n++] = opt_x;
    args[n++] = opt_env;
    for (int i = 1; i < argc; i++)
        args[n++] = argv[i];
    args[n] = NULL;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "dip mpirun: fork: %s\n", strerror(errno));
        free(args);
        free(prog);
        rmdir(dir);
        return 6;
    }
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        execvp(mpirun, args);
        fprintf(stderr, "dip mpirun: cannot run %s: %s\n", mpirun, strerror(errno));
        _exit(127);
    }
    child_pid = pid;
    free(args);
    free(prog);

    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        double now = now_s();

        if (r == pid || (r < 0 && errno != EINTR))
            break;
        if (state == 0) {
            state = read_status(path, &code, &lost, &seen);
            if (state == 1)
                end_at = now + (lost > 0 ? 1.0 : 3.0);
            else if (state == 2)
                end_at = now + 2.0;
        }
        if (end_at >= 0 && now >= end_at &&
            (interrupts == 0 || now - last_sig >= (interrupts < 2 ? 3.0 : 5.0))) {
            if (interrupts == 0)
                fprintf(stderr,
                        "dip mpirun: %s; ending mpirun (Open MPI waits for ever after a lost "
                        "rank)\n",
                        state == 1 ? "rank 0 has finished" : "rank 0 (the coordinator) died");
            kill(pid, interrupts < 2 ? SIGINT : SIGKILL);
            interrupts++;
            last_sig = now;
        }
        usleep(20 * 1000); /* mpirun's end is noticed within 20 ms (each job pays the wait) */
    }
    if (state == 0)
        state = read_status(path, &code, &lost, &seen);
    unlink(path);
    rmdir(dir);
    if (state == 1)
        return code;
    if (seen) {
        fprintf(stderr, "dip mpirun: rank 0 (the coordinator) died before the end of the job\n");
        return 7;
    }
    /* Rank 0 never reported (it did not run dip here, or mpirun failed to start the job). */
    if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    fprintf(stderr, "dip mpirun: no status from rank 0 (does rank 0 run on this machine? see "
                    "dip mpirun --help)\n");
    return 7;
}
