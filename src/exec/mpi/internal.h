/* SPDX-License-Identifier: MIT */
/* Shared internals of the MPI cluster executor: the wire format of the messages between the
 * coordinator (rank 0) and its workers, and the task runner both sides share. Every message is
 * one MPI_BYTE message whose tag names its kind; its body is fixed-width little-endian fields
 * read with bounds checks, because bytes from peers never reach an assert. */
#ifndef DIP_EXEC_MPI_INTERNAL_H
#define DIP_EXEC_MPI_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "dip/crypto.h"
#include "dip/exec.h"
#include "dip/plan.h"
#include "seal.h"

/* Message tags. */
enum {
    DIP__MPI_HELLO = 11, /* worker -> coordinator: pid, threads, host */
    DIP__MPI_JOB,        /* coordinator -> worker: job id, spec, pipeline text */
    DIP__MPI_TASK,       /* coordinator -> worker: one item or one tile */
    DIP__MPI_RESULT,     /* worker -> coordinator: the task's output */
    DIP__MPI_BEAT,       /* worker -> coordinator: alive, and which task it runs */
    DIP__MPI_STOP,       /* coordinator -> worker: leave the worker loop */
    DIP__MPI_PING,       /* coordinator -> worker: the coordinator is alive */
    DIP__MPI_KEYX,       /* both ways, in clear: the key exchange of a sealed cluster (seal.h) */
    DIP__MPI_REKEY,      /* coordinator -> worker: a new job's nonce; worker -> coordinator: done */
};

enum {
    DIP__TASK_ITEM = 1, /* encoded bytes in, encoded bytes out */
    DIP__TASK_TILE = 2, /* step input pixels of need(rect) in, output pixels of rect out */
    /* input and output object references in; the worker gets, runs and puts; the output's
     * size and hash out (issue 12) */
    DIP__TASK_OBJECT = 3,
};

/* ---- Messages are built in the core buffer, read with a bounds-checked reader ---- */

/* The most one message may hold: MPI counts bytes in an int, and sealing adds its tag and header.
 * Every message buffer is capped at it (a longer one fails as DIP_ELIMIT while it is built). */
#define DIP__MSG_MAX ((size_t)INT32_MAX - DIP__SEAL_OVERHEAD)
/** An empty message buffer (core/buf.h), capped at DIP__MSG_MAX. */
static inline struct dip__buf dip__msg_buf(void)
{
    return (struct dip__buf){.cap = DIP__MSG_MAX};
}

/** Appends a length-prefixed string (u32 length, bytes, no NUL); NULL is the empty string. The
 * fixed-width little-endian fields are the core buffer's (dip__buf_u8, _u32le, _u64le, _f64le). */
int dip__wire_str(struct dip__buf *b, const char *s);

struct dip__rbuf {
    const uint8_t *p;
    size_t left;
    int bad; /* set once a read ran past the end; later reads return zeros */
};

uint8_t dip__rbuf_u8(struct dip__rbuf *r);
uint32_t dip__rbuf_u32(struct dip__rbuf *r);
uint64_t dip__rbuf_u64(struct dip__rbuf *r);
double dip__rbuf_f64(struct dip__rbuf *r);
int32_t dip__rbuf_i32(struct dip__rbuf *r);
/** Borrows n bytes from the message; NULL (and bad set) when fewer are left. */
const uint8_t *dip__rbuf_bytes(struct dip__rbuf *r, size_t n);
/** Copies a length-prefixed string into a new dip_malloc'ed, NUL-terminated string. */
char *dip__rbuf_str(struct dip__rbuf *r, size_t max);

/** Writes / reads everything of a job spec but the pipeline text. */
void dip__wire_spec(struct dip__buf *b, const struct dip_job_spec *spec);
void dip__wire_read_spec(struct dip__rbuf *r, struct dip_job_spec *spec);

/* ---- Running tasks (workers, and the coordinator when it has no worker left) ---- */

/** State that outlives one task: the job's spec and parsed pipeline, a cached plan. */
struct dip__runner {
    uint64_t job;
    struct dip_job_spec spec;
    char *pipeline_text;
    dip_pipeline *pipe;
    dip_pool *pool;
    /* the cached plan of the last tiled image; tiles of one step run at once on several threads
     * (read lock), rebinding takes the write lock */
    pthread_rwlock_t plan_lock;
    dip_plan *plan;
    uint64_t plan_job, plan_item;
    size_t plan_finished; /* steps whose statistic is bound */
    int plan_w, plan_h, plan_ch;
    /* object storage (DIP__TASK_OBJECT): the callbacks, and the handle for the current job
     * opened from the configuration its JOB message carried (NULL: none shipped) */
    const struct dip_object_io *objects;
    void *obj;
    struct dip_err obj_err; /* why the handle could not be opened (code 0: it was) */
    /* optional: called from the task's thread once an object is fetched, with its size from
     * its header, so the coordinator (which never saw the image) starts the task's deadline
     * then and grows it with the size */
    void (*sized)(void *ud, uint64_t task, double mpix);
    void *sized_ud;
};

void dip__runner_init(struct dip__runner *rn);
void dip__runner_destroy(struct dip__runner *rn);
/** Takes the JOB message body: parses the pipeline and, when the job ships an object storage
 * configuration, opens rn->objects with it. Returns 0 or DIP_E*. No task may run. */
int dip__runner_job(struct dip__runner *rn, struct dip__rbuf *r, struct dip_err *err);
void dip__runner_cleanup(struct dip__runner *rn);

enum {
    DIP__RUN_HOOKS = 1, /* a worker: the test-only fault hooks apply (test builds only) */
    DIP__RUN_POOL = 2,  /* an item may use the whole pool (it runs alone) */
};

/** Runs one TASK message body and builds the RESULT message body into `res`. The task id is read
 * into *task_id. Returns 0 when a result was built (which may carry an error code for the task),
 * or DIP_E* when the message itself is bad. Several tasks may run at once on different threads
 * (never at the same time as dip__runner_job). */
int dip__runner_task(struct dip__runner *rn, const uint8_t *msg, size_t len, int flags,
                     uint64_t *task_id, struct dip__buf *res);

#ifdef DIP_TEST_HOOKS
/** Test builds only: nonzero when env `var` is set and occurs in the bytes. Hooks: a worker
 * aborts on an input containing DIP_TEST_POISON, hangs on DIP_TEST_HANG, and stops itself
 * (SIGSTOP) right after starting to send the result of an input containing DIP_TEST_STALL. */
int dip__mpi_test_marked(const char *var, const uint8_t *p, size_t n);
#endif

/** The worker loop on a worker rank (comm: MPI_COMM_WORLD or the parent intercommunicator, as
 * an opaque pointer to an MPI_Comm so this header does not need <mpi.h>). `key`: the cluster
 * key (NULL: traffic in clear), borrowed for the call. */
int dip__mpi_worker(void *comm, const struct dip_mpi_opts *o, const struct dip_key *key);

/** The coordinator's executor. `argv` is kept for spawning more workers. `key` (NULL: traffic in
 * clear) is copied. */
int dip__mpi_coord_new(const struct dip_mpi_opts *o, const struct dip_key *key, int argc,
                       char **argv, dip_executor **out, struct dip_err *err);

/** Logging to stderr at a level (0 error .. 3 debug) against the configured level. */
void dip__mpi_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern int dip__mpi_log_level;

/** How many ranks of MPI_COMM_WORLD the launcher started on this host (its environment), 0 when
 * it does not say. Fewer than the world size: some ranks run on other hosts. */
int dip__mpi_local_ranks(void);

/** Seconds of silence after which a worker is declared lost (DIP_MPI_LOST_S overrides). */
double dip__mpi_lost_after(const struct dip_mpi_opts *o);

/* ---- Process identity: which process a worker is, beyond its PID (PIDs wrap) ---- */

struct dip__proc_id {
    uint32_t pid;
    uint64_t start; /* start time in clock ticks after boot (/proc/PID/stat field 22) */
    uint64_t pidns; /* inode of the PID namespace (/proc/self/ns/pid) */
    char boot[40];  /* the kernel's boot id (/proc/sys/kernel/random/boot_id) */
};

/** This process's identity; fields it cannot read stay zero. */
void dip__proc_self(struct dip__proc_id *id);
void dip__wire_proc_id(struct dip__buf *b, const struct dip__proc_id *id);
void dip__wire_read_proc_id(struct dip__rbuf *r, struct dip__proc_id *id);
/** SIGKILLs the process `id` names only if it runs under the same kernel boot and PID namespace
 * as this process and is verified (through a pidfd, so the check and the signal concern the same
 * process) to have the recorded start time. Returns 1 when it was signalled, 0 when it is not that
 * process (gone, PID reused, another machine) or cannot be verified. */
int dip__proc_kill_verified(const struct dip__proc_id *id);
/** Waits up to `limit_s` for the process `id` names to end, when it runs on this machine (same
 * kernel boot and PID namespace; verified by start time through a pidfd). Returns 1 when it has
 * ended (or was gone), 0 when it still runs, is elsewhere or cannot be checked. */
int dip__proc_wait_gone(const struct dip__proc_id *id, double limit_s);

#endif
