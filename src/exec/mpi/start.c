/* SPDX-License-Identifier: MIT */
/* Entry point of the cluster executor: detects mpirun (or a spawning coordinator), initialises
 * MPI with MPI_ERRORS_RETURN, and sends rank 0 to the coordinator and every other rank to the
 * worker loop. With one rank and no parent it hands back to the local executor. Also the
 * executor's logging. MPI runs at MPI_THREAD_SERIALIZED: on workers only the main thread calls it,
 * and on the coordinator the executor is driven by one thread at a time (dip serve runs one job
 * at a time on its own thread). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <mpi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/internal.h"
#include "internal.h"

/* A number from the environment within [lo, hi], else `def`. */
static double env_num(const char *name, double lo, double hi, double def)
{
    const char *v = getenv(name);
    char *end;
    double d;

    if (!v || !*v)
        return def;
    d = strtod(v, &end);
    if (end == v || *end || !(d >= lo && d <= hi)) {
        dip__mpi_log(1, "%s=%s ignored (not a number in %g..%g)", name, v, lo, hi);
        return def;
    }
    return d;
}

/* The only place the cluster executor reads its environment. */
void dip_mpi_opts_default(struct dip_mpi_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_workers = 0;
    o->log_level = 1;
    o->task_timeout_s = 30.0;
    o->heartbeat_s = 0.5;
    o->lost_s = env_num("DIP_MPI_LOST_S", 0.2, 3600, 5.0);
    /* Twice the lost limit: the coordinator cannot ping while it is inside MPI_Comm_spawn. */
    o->orphan_s = env_num("DIP_MPI_ORPHAN_S", 0.2, 86400, 2.0 * o->lost_s);
    /* Unset: spawned workers stay until the end of the run (a spawn after a release is where
     * Open MPI's spawn hang was seen: coord.c, release_idle). */
    o->idle_s = env_num("DIP_MPI_IDLE_S", 0, 86400, -1.0);
    o->spawn_s = env_num("DIP_MPI_SPAWN_S", 1, 86400, 60.0);
    o->tile_pixels = (unsigned long long)env_num("DIP_MPI_TILE_PIXELS", 0, 1e15, 4e6);
    o->worker_threads = (int)env_num("DIP_MPI_THREADS", 0, 1024, 0);
    o->stream_images = (int)env_num("DIP_MPI_STREAM", 0, 1, 1);
    o->cluster_key = getenv("DIP_CLUSTER_KEY");
    if (o->cluster_key && !*o->cluster_key)
        o->cluster_key = NULL;
}

double dip__mpi_lost_after(const struct dip_mpi_opts *o)
{
    double hb = o->heartbeat_s > 0 ? o->heartbeat_s : 0.5;

    return o->lost_s > 0 ? o->lost_s : DIP_MAX(5.0, 10.0 * hb);
}

/* Field 22 (starttime) of /proc/PID/stat, read through `dirfd` (a /proc/PID folder) or the path;
 * 0 when unreadable. */
static uint64_t proc_start(int dirfd, uint32_t pid)
{
    char buf[1024], path[64];
    const char *p;
    ssize_t n;
    int fd;

    if (dirfd >= 0) {
        fd = openat(dirfd, "stat", O_RDONLY | O_CLOEXEC);
    } else {
        snprintf(path, sizeof path, "/proc/%u/stat", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    if (!p)
        return 0;
    /* after ") " come fields 3.. ; starttime is field 22 */
    for (int field = 2; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

static void read_boot_id(char *out, size_t len)
{
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

    out[0] = '\0';
    if (f) {
        if (!fgets(out, (int)len, f))
            out[0] = '\0';
        fclose(f);
        out[strcspn(out, "\n")] = '\0';
    }
}

static uint64_t pid_ns(void)
{
    struct stat st;

    return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

void dip__proc_self(struct dip__proc_id *id)
{
    memset(id, 0, sizeof *id);
    id->pid = (uint32_t)getpid();
    id->start = proc_start(-1, id->pid);
    id->pidns = pid_ns();
    read_boot_id(id->boot, sizeof id->boot);
}

void dip__wire_proc_id(struct dip__buf *b, const struct dip__proc_id *id)
{
    dip__buf_u32le(b, id->pid);
    dip__buf_u64le(b, id->start);
    dip__buf_u64le(b, id->pidns);
    dip__wire_str(b, id->boot);
}

void dip__wire_read_proc_id(struct dip__rbuf *r, struct dip__proc_id *id)
{
    char *boot;

    memset(id, 0, sizeof *id);
    id->pid = dip__rbuf_u32(r);
    id->start = dip__rbuf_u64(r);
    id->pidns = dip__rbuf_u64(r);
    boot = dip__rbuf_str(r, sizeof id->boot - 1);
    if (boot)
        snprintf(id->boot, sizeof id->boot, "%s", boot);
    dip_free(boot);
}

/* A pidfd on the process `id` names, verified through it to be that process (same kernel boot
 * and PID namespace, the recorded start time): the pidfd pins it, so what is done through the
 * pidfd concerns that process, never a later holder of the PID. -1 when it is elsewhere or cannot
 * be checked; -1 with *gone set when it has ended (no such PID, or another start time). */
static int open_verified(const struct dip__proc_id *id, int *gone)
{
    struct dip__proc_id me;
    char path[64];
    int pidfd, dirfd, same = 0;

    *gone = 0;
    dip__proc_self(&me);
    /* Another kernel (machine) or PID namespace: the PID means nothing here. */
    if (!id->pid || !id->start || !me.boot[0] || strcmp(id->boot, me.boot) != 0 || !me.pidns ||
        id->pidns != me.pidns || id->pid == me.pid)
        return -1;
#if defined(SYS_pidfd_open)
    pidfd = (int)syscall(SYS_pidfd_open, (pid_t)id->pid, 0);
    if (pidfd < 0) {
        *gone = 1;
        return -1;
    }
    snprintf(path, sizeof path, "/proc/%u", id->pid);
    dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd >= 0) {
        same = proc_start(dirfd, id->pid) == id->start;
        close(dirfd);
    }
    if (!same) {
        *gone = 1; /* ended between the two looks, or a later process holds the PID */
        close(pidfd);
        return -1;
    }
    return pidfd;
#else
    (void)path;
    (void)pidfd;
    (void)dirfd;
    (void)same;
    return -1;
#endif
}

int dip__proc_kill_verified(const struct dip__proc_id *id)
{
    int gone, ok = 0, pidfd = open_verified(id, &gone);

    if (pidfd < 0)
        return 0;
#if defined(SYS_pidfd_send_signal)
    ok = syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) == 0;
#endif
    close(pidfd);
    return ok;
}

int dip__proc_wait_gone(const struct dip__proc_id *id, double limit_s)
{
    int gone, pidfd = open_verified(id, &gone);
    struct pollfd pf = {.fd = pidfd, .events = POLLIN};

    if (pidfd < 0)
        return gone;
    gone = poll(&pf, 1, (int)(limit_s * 1000)) == 1; /* readable once the process has ended */
    close(pidfd);
    return gone;
}

int dip__mpi_local_ranks(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"};

    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        char *end;
        long n;

        if (!v || !*v)
            continue;
        n = strtol(v, &end, 10);
        if (!*end && n > 0 && n < 1 << 24)
            return (int)n;
    }
    return 0;
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

int dip_mpi_worker_launched(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"};

    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);

        if (v && *v)
            return strcmp(v, "0") != 0;
    }
    return 0;
}

/* PMIx (Open MPI 4.1's run-time; 4.2 on Debian 12) talks to its server on this machine (mpirun,
 * or the host's orted) over TCP on the loopback, and leaves Nagle's algorithm on. MPI_Finalize
 * sends two small messages in a row, the second waits for the first's ACK, and the server's
 * delayed ACK comes 40 ms later: every rank spent 45 ms in MPI_Finalize for 3 ms of work, 0.04 s
 * of every launch (a bare MPI program under mpirun: 0.15 s, 0.11 s with this). Sets TCP_NODELAY
 * on this process's connections to that server (the address in PMIX_SERVER_URI*), which changes
 * only when small segments leave, never what is sent. Returns how many sockets it set. */
static int pmix_nodelay(char *where, size_t len)
{
    static const char *vars[] = {"PMIX_SERVER_URI41", "PMIX_SERVER_URI4", "PMIX_SERVER_URI3",
                                 "PMIX_SERVER_URI21", "PMIX_SERVER_URI2"};
    const char *uri = NULL;
    char addr_port[128], *host, *colon, *end;
    long port;
    DIR *d;
    struct dirent *e;
    int n = 0;

    where[0] = '\0';
    for (size_t i = 0; i < sizeof vars / sizeof vars[0] && !uri; i++)
        if ((uri = getenv(vars[i])) != NULL && !strstr(uri, "tcp"))
            uri = NULL;
    /* "<nspace>.<rank>;tcp4://127.0.0.1:44821" (or tcp6://[::1]:port; more after a ';') */
    if (!uri || !(host = strstr(strstr(uri, "tcp"), "://")))
        return 0;
    snprintf(addr_port, sizeof addr_port, "%s", host + 3);
    addr_port[strcspn(addr_port, ";")] = '\0';
    colon = strrchr(addr_port, ':');
    if (!colon || colon == addr_port)
        return 0;
    *colon = '\0';
    port = strtol(colon + 1, &end, 10);
    host = addr_port[0] == '[' ? addr_port + 1 : addr_port;
    host[strcspn(host, "]")] = '\0';
    if (port <= 0 || port > 65535 || *end)
        return 0;
    snprintf(where, len, "%s:%ld", host, port);
    if (!(d = opendir("/proc/self/fd")))
        return 0;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name), one = 1;
        struct sockaddr_storage a;
        socklen_t alen = sizeof a;
        char got[INET6_ADDRSTRLEN];
        const void *addr;
        unsigned peer_port;
        struct stat st;

        if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dirfd(d) || fstat(fd, &st) != 0 ||
            !S_ISSOCK(st.st_mode) || getpeername(fd, (struct sockaddr *)&a, &alen) != 0)
            continue;
        if (a.ss_family == AF_INET) {
            addr = &((struct sockaddr_in *)&a)->sin_addr;
            peer_port = ntohs(((struct sockaddr_in *)&a)->sin_port);
        } else if (a.ss_family == AF_INET6) {
            addr = &((struct sockaddr_in6 *)&a)->sin6_addr;
            peer_port = ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
        } else {
            continue;
        }
        if (peer_port == (unsigned)port && inet_ntop(a.ss_family, addr, got, sizeof got) &&
            strcmp(got, host) == 0 &&
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0)
            n++;
    }
    closedir(d);
    return n;
}

int dip_mpi_start(int *argc, char ***argv, const struct dip_mpi_opts *o, dip_executor **out,
                  int *worker_done, struct dip_err *err)
{
    struct dip_mpi_opts def;
    MPI_Comm parent = MPI_COMM_NULL;
    int inited = 0, provided = 0, rank = 0, size = 1, rc = 0;
    struct dip_key key, *keyp = NULL;

    *out = NULL;
    *worker_done = 0;
    if (!o) {
        dip_mpi_opts_default(&def);
        o = &def;
    }
    dip__mpi_log_level = o->log_level;
    if (o->cluster_key) {
        /* Before MPI starts: a rank with a missing or unprotected key file stops here, with a
         * sentence naming the file, and never joins the job (checked without mpirun too, so a
         * wrong path shows up before the first cluster run). */
        rc = dip_key_load(o->cluster_key, &key, err);
        if (rc) {
            dip_err_prefix(err, "cluster key: ");
            return rc;
        }
        keyp = &key;
    }
    if (!dip_mpi_launched()) {
        dip_key_wipe(keyp);
        return 0;
    }
    MPI_Initialized(&inited);
    if (!inited && MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
        dip_key_wipe(keyp);
        return dip_err_set(err, DIP_EPEER, "mpi: MPI_Init_thread failed");
    }
    {
        char where[160]; /* pmix_nodelay: up to 127 characters of address, a colon, a port */
        int n = pmix_nodelay(where, sizeof where);

        dip__mpi_log(3, "TCP_NODELAY on %d connection(s) to the PMIx server %s", n,
                     where[0] ? where : "(not over TCP)");
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
    MPI_Comm_get_parent(&parent);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (parent != MPI_COMM_NULL) {
        /* Spawned by a coordinator that needed more workers. */
        int fin;

        MPI_Comm_set_errhandler(parent, MPI_ERRORS_RETURN);
        fin = dip__mpi_worker(&parent, o, keyp);
        if (fin) {
            MPI_Comm_disconnect(&parent);
            MPI_Finalize();
        }
        *worker_done = 1;
        goto out;
    }
    if (size < 2) {
        /* One rank: the local executor does the work; MPI stays idle until exit. */
        MPI_Finalize();
        goto out;
    }
    if (rank != 0) {
        MPI_Comm world = MPI_COMM_WORLD;

        if (dip__mpi_worker(&world, o, keyp))
            MPI_Finalize();
        *worker_done = 1;
        goto out;
    }
    rc = dip__mpi_coord_new(o, keyp, argc ? *argc : 0, argv ? *argv : NULL, out, err);
out:
    dip_key_wipe(keyp);
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
