/* SPDX-License-Identifier: MIT */
/* The worker loop of a worker rank. The main thread owns all MPI calls: it receives jobs and
 * tasks, sends results, and sends a heartbeat every heartbeat_s even while the compute threads
 * are deep in long tasks, so the coordinator can tell a busy worker from a dead or stopped one.
 * There are as many compute threads as the worker has threads, so it runs that many tasks at
 * once (the coordinator gives it threads + 2 tasks): a batch image runs on one thread, unless it
 * is the only task the worker has, when it gets the whole pool; tiles of a large image run one
 * per thread. Every heartbeat lists the tasks being computed, so that a task that kills the
 * process is blamed. Nothing here blocks on the coordinator: sends and receives go through the
 * polled transport, and a worker that hears nothing from the coordinator for orphan_s leaves on
 * its own. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "dip/image.h"
#include "internal.h"
#include "transport.h"

#define MAX_COMPUTE 256

struct msg {
    struct msg *next;
    int tag, stall;
    uint8_t *data;
    size_t len;
};

struct wstate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t mpi_cv;           /* wakes the MPI thread: a result to send, or a task started */
    struct msg *in_head, *in_tail;   /* JOB and TASK messages for the compute threads */
    struct msg *out_head, *out_tail; /* RESULT messages for the MPI thread */
    uint64_t running[MAX_COMPUTE];   /* task computed by each compute thread (0 none) */
    double mpix[MAX_COMPUTE];        /* its input's megapixels, once known (object tasks) */
    int nthreads, limit, busy;       /* compute threads, how many may run now, how many do */
    int job_pending;                 /* a JOB is being taken: no task may start */
    uint64_t change_gen, told_gen;   /* running[] changes, and the last the coordinator heard */
    int quit;
    struct dip__runner rn;
};

struct compute_arg {
    struct wstate *ws;
    int index;
};

static void push(struct msg **head, struct msg **tail, struct msg *m)
{
    m->next = NULL;
    if (*tail)
        (*tail)->next = m;
    else
        *head = m;
    *tail = m;
}

static struct msg *pop(struct msg **head, struct msg **tail)
{
    struct msg *m = *head;

    if (m) {
        *head = m->next;
        if (!*head)
            *tail = NULL;
    }
    return m;
}

/* A JOB message: parses it once every task of the previous job is done. Called locked. */
static void take_job(struct wstate *ws, struct msg *m)
{
    struct dip__rbuf r = {m->data, m->len, 0};
    struct dip_err err = {0};
    int threads;

    while (ws->busy > 0 && !ws->quit)
        pthread_cond_wait(&ws->cv, &ws->mu);
    if (dip__runner_job(&ws->rn, &r, &err)) {
        dip__mpi_log(0, "worker: job refused: %s", err.msg);
        return;
    }
    /* --threads N caps the worker: N tasks at once, and a pool of N for a lone task. */
    threads = ws->rn.spec.threads > 0 ? DIP_MIN(ws->rn.spec.threads, ws->nthreads) : ws->nthreads;
    ws->limit = threads;
    if (!ws->rn.pool || dip_pool_threads(ws->rn.pool) != threads) {
        dip_pool *pool = NULL;

        if (dip_pool_new(threads, &pool) == 0) {
            dip_pool_free(ws->rn.pool);
            ws->rn.pool = pool;
        }
    }
    pthread_cond_broadcast(&ws->cv);
}

static void *compute_main(void *arg)
{
    struct compute_arg *ca = arg;
    struct wstate *ws = ca->ws;
    int me = ca->index;

    pthread_mutex_lock(&ws->mu);
    for (;;) {
        struct msg *m;

        while (!ws->quit && (!ws->in_head || ws->job_pending ||
                             (ws->in_head->tag == DIP__MPI_TASK && ws->busy >= ws->limit)))
            pthread_cond_wait(&ws->cv, &ws->mu);
        if (ws->quit)
            break;
        m = pop(&ws->in_head, &ws->in_tail);
        if (m->tag == DIP__MPI_JOB) {
            ws->job_pending = 1;
            take_job(ws, m);
            ws->job_pending = 0;
            pthread_cond_broadcast(&ws->cv);
        } else {
            struct dip__buf res = dip__msg_buf();
            struct dip__rbuf peek = {m->data, m->len, 0};
            uint64_t id = dip__rbuf_u64(&peek), gen;
            int rc, alone, stall = 0;
            struct timespec until;

            ws->running[me] = id;
            ws->mpix[me] = 0;
            ws->busy++;
            gen = ++ws->change_gen;
            alone = ws->busy == 1 && !ws->in_head;
            /* Wait (briefly) until the coordinator has been told which task this is, so that if
             * the task kills the process the right task is blamed. */
            pthread_cond_signal(&ws->mpi_cv);
            dip__deadline_in_us(&until, 200000);
            while (ws->told_gen < gen && !ws->quit)
                if (pthread_cond_timedwait(&ws->cv, &ws->mu, &until) != 0)
                    break;
            pthread_mutex_unlock(&ws->mu);
            rc = dip__runner_task(&ws->rn, m->data, m->len,
                                  DIP__RUN_HOOKS | (alone ? DIP__RUN_POOL : 0), &id, &res);
#ifdef DIP_TEST_HOOKS
            stall = dip__mpi_test_marked("DIP_TEST_STALL", m->data, m->len);
#endif
            pthread_mutex_lock(&ws->mu);
            ws->running[me] = 0;
            ws->mpix[me] = 0;
            ws->busy--;
            ws->change_gen++;
            pthread_cond_broadcast(&ws->cv); /* a JOB may wait for busy == 0 */
            if (rc == 0 && !res.failed) {
                struct msg *o = dip_malloc(sizeof *o);

                if (o) {
                    o->tag = DIP__MPI_RESULT;
                    o->stall = stall;
                    o->data = dip__buf_take(&res, &o->len);
                    push(&ws->out_head, &ws->out_tail, o);
                    pthread_cond_signal(&ws->mpi_cv);
                }
            } else {
                /* No result: the coordinator's deadline reassigns the task. */
                dip__mpi_log(0, "worker: task %llu: %s", (unsigned long long)id,
                             dip_strerror(rc ? rc : DIP_ENOMEM));
            }
            dip__buf_free(&res);
        }
        dip_free(m->data);
        dip_free(m);
    }
    pthread_mutex_unlock(&ws->mu);
    return NULL;
}

/* An object task's input size is known (runner callback, on its compute thread): the next
 * heartbeat tells the coordinator, whose deadline for the task grows with it. */
static void on_sized(void *ud, uint64_t task, double mpix)
{
    struct wstate *ws = ud;

    pthread_mutex_lock(&ws->mu);
    for (int i = 0; i < ws->nthreads; i++)
        if (ws->running[i] == task) {
            ws->mpix[i] = mpix;
            ws->change_gen++;
            pthread_cond_signal(&ws->mpi_cv);
        }
    pthread_mutex_unlock(&ws->mu);
}

/* Queues a message for the compute threads (takes `data`). */
static void to_compute(struct wstate *ws, int tag, uint8_t *data, size_t len)
{
    struct msg *m = dip_malloc(sizeof *m);

    if (!m) {
        dip_free(data);
        return;
    }
    m->tag = tag;
    m->data = data;
    m->len = len;
    pthread_mutex_lock(&ws->mu);
    push(&ws->in_head, &ws->in_tail, m);
    pthread_cond_broadcast(&ws->cv);
    pthread_mutex_unlock(&ws->mu);
}

/* The key exchange's answer from the coordinator (a sealed cluster): derives the channel's keys
 * and sends the HELLO, the first sealed message. Returns 0, or 1 when this worker must leave. */
static int on_keyx(MPI_Comm comm, struct dip__tx *tx, struct dip__chan *ch,
                   const struct dip_key *key, const uint8_t nonce[DIP__WORKER_NONCE],
                   const uint8_t *data, size_t len, struct dip__buf *hello, uint32_t *my_id)
{
    uint8_t session[DIP__SESSION_NONCE];
    uint32_t id = 0;
    struct dip_err err = {0};

    if (!key) {
        dip__mpi_log(0, "worker: the coordinator seals cluster traffic but this rank has no "
                        "cluster key (--cluster-key FILE or DIP_CLUSTER_KEY); leaving");
        return 1;
    }
    if (ch->tx) {
        dip__mpi_log(1, "worker: a second key exchange ignored");
        return 0;
    }
    if (dip__keyx_read_coord(data, len, key, session, &id, &err) != 0 ||
        dip__chan_keys(ch, key, session, nonce, id, 0, &err) != 0) {
        dip__mpi_log(0, "worker: key exchange with the coordinator failed: %s; leaving", err.msg);
        return 1;
    }
    explicit_bzero(session, sizeof session);
    *my_id = id;
    if (!hello->failed) {
        size_t n;
        uint8_t *d = dip__buf_take(hello, &n);

        if (d)
            dip__tx_send(tx, comm, 0, DIP__MPI_HELLO, d, n, 0, ch);
    }
    return 0;
}

/* A new job's nonce (a sealed cluster): answer under the current keys, then switch both ways to
 * the job's keys (seal.h). Returns 0, or 1 when this worker must leave. */
static int on_rekey(MPI_Comm comm, struct dip__tx *tx, struct dip__chan *ch,
                    const struct dip_key *key, const uint8_t nonce[DIP__WORKER_NONCE], uint32_t id,
                    const uint8_t *data, size_t len)
{
    struct dip_err err = {0};
    uint8_t *ack = dip_malloc(1);

    if (!key) {
        dip_free(ack);
        return 0; /* traffic in clear: nothing to switch */
    }
    if (len != DIP__SESSION_NONCE || !ack) {
        dip_free(ack);
        dip__mpi_log(0, "worker: a malformed job key announcement; leaving");
        return 1;
    }
    if (dip__tx_send(tx, comm, 0, DIP__MPI_REKEY, ack, 0, 0, ch) != 0 ||
        dip__chan_rekey_tx(ch, key, data, nonce, id, 0, &err) != 0 ||
        dip__chan_rekey_rx(ch, &err) != 0) {
        dip__mpi_log(0, "worker: cannot take the job's keys: %s; leaving",
                     err.msg[0] ? err.msg : "send failed");
        return 1;
    }
    return 0;
}

int dip__mpi_worker(void *commp, const struct dip_mpi_opts *o, const struct dip_key *key)
{
    MPI_Comm comm = *(MPI_Comm *)commp;
    struct wstate ws;
    struct dip__tx tx = {0};
    struct dip__rx rx = {0};
    pthread_t th[MAX_COMPUTE];
    struct compute_arg args[MAX_COMPUTE];
    double hb = o->heartbeat_s > 0 ? o->heartbeat_s : 0.5;
    double last_beat = 0, last_heard = dip__now();
    uint64_t told = 0;
    /* A worker leaves when the coordinator is silent for orphan_s: it pings every heartbeat,
     * also while it computes a global step or encodes. Between jobs of dip serve (told by a PING
     * of 0) it waits for ever, since the service may idle for hours. */
    double orphan_s = o->orphan_s > 0 ? o->orphan_s : dip__mpi_lost_after(o);
    int in_job = 1;
    int finalize = 0, threads, started = 0;
    struct dip__buf hello = dip__msg_buf();
    struct dip__proc_id me;
    char host[64] = "";
    /* A sealed cluster: every message but the key exchange goes through this channel. */
    struct dip__chan ch = {0}, *chp = key ? &ch : NULL;
    uint8_t nonce[DIP__WORKER_NONCE];
    uint32_t my_id = 0;
    int leave = 0;

    memset(&ws, 0, sizeof ws);
    dip__runner_init(&ws.rn);
    ws.rn.objects = o->objects; /* DIP__TASK_OBJECT: this rank gets and puts objects itself */
    ws.rn.sized = on_sized;
    ws.rn.sized_ud = &ws;
    pthread_mutex_init(&ws.mu, NULL);
    pthread_cond_init(&ws.cv, NULL);
    pthread_cond_init(&ws.mpi_cv, NULL);
    threads = o->worker_threads > 0 ? o->worker_threads : dip_cpu_count();
    threads = DIP_CLAMP(threads, 1, MAX_COMPUTE);
    if (dip_pool_new(threads, &ws.rn.pool) != 0)
        ws.rn.pool = NULL; /* lone tasks run on their compute thread alone */
    ws.nthreads = ws.limit = threads;
    for (int i = 0; i < threads; i++) {
        args[i].ws = &ws;
        args[i].index = i;
        if (pthread_create(&th[i], NULL, compute_main, &args[i]) != 0)
            break;
        started++;
    }
    if (started == 0) {
        dip__mpi_log(0, "worker: cannot start a compute thread");
        dip_pool_free(ws.rn.pool);
        return 0;
    }
    ws.nthreads = ws.limit = started;
    gethostname(host, sizeof host - 1);
    {
        /* mpirun binds each rank to one core by default when ranks <= cores (Open MPI 4): a
         * worker's threads then share that core, and a one-worker cluster runs at one core's
         * speed. Say so once; `dip mpirun` passes --bind-to none. */
        cpu_set_t set;

        CPU_ZERO(&set);
        if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < started)
            dip__mpi_log(0,
                         "worker on %s: %d threads but only %d core(s) allowed: mpirun bound this "
                         "rank to its core(s); add --bind-to none (dip mpirun does) or run fewer "
                         "threads",
                         host, started, CPU_COUNT(&set));
    }
    dip__proc_self(&me);
    dip__wire_proc_id(&hello, &me);
    dip__buf_u32le(&hello, (uint32_t)started);
    dip__wire_str(&hello, host);
    if (key) {
        /* Announce this worker's nonce; the HELLO follows, sealed, once the coordinator answers. */
        uint8_t *kx = dip_malloc(DIP__KEYX_WORKER);

        if (!kx || dip_random(nonce, sizeof nonce, NULL) != 0) {
            dip__mpi_log(0, "worker: cannot start the key exchange");
            dip_free(kx);
            leave = 1;
        } else {
            dip__keyx_worker(kx, nonce, key);
            dip__tx_send(&tx, comm, 0, DIP__MPI_KEYX, kx, DIP__KEYX_WORKER, 0, NULL);
        }
    } else if (!hello.failed) {
        size_t n;
        uint8_t *d = dip__buf_take(&hello, &n);

        if (d)
            dip__tx_send(&tx, comm, 0, DIP__MPI_HELLO, d, n, 0, NULL);
    }

    while (!leave) {
        int busy = 0, got, beat_failed = 0;
        uint8_t *data = NULL;
        size_t len = 0;
        int tag = 0;
        double now;
        struct dip_err err = {0};

        if (dip__rx_probe(&rx, comm, 0) > 0)
            last_heard = dip__now();
        got = dip__rx_test(&rx, orphan_s, &data, &len, &tag, chp, &err);
        if (got < 0 && err.code == DIP_EINTEGRITY) {
            /* Not from the coordinator, or altered: dropped; the coordinator's own messages still
             * open, and its silence ends this worker as usual. */
            dip__mpi_log(0, "worker: a message failed authentication and was dropped: %s", err.msg);
            got = 0;
        }
        if (got < 0) {
            dip__mpi_log(0, "worker: lost the coordinator mid-message; leaving");
            break;
        }
        if (rx.active)
            last_heard = dip__now(); /* a message is arriving */
        if (got == 1) {
            busy = 1;
            last_heard = dip__now();
            if (tag == DIP__MPI_STOP) {
                struct dip__rbuf r = {data, len, 0};

                finalize = dip__rbuf_u8(&r) == 1 && !r.bad;
                dip_free(data);
                break;
            } else if (tag == DIP__MPI_PING) {
                struct dip__rbuf r = {data, len, 0};

                in_job = dip__rbuf_u8(&r) == 1;
            } else if (tag == DIP__MPI_KEYX) {
                if (on_keyx(comm, &tx, &ch, key, nonce, data, len, &hello, &my_id) != 0) {
                    dip_free(data);
                    break;
                }
            } else if (tag == DIP__MPI_REKEY) {
                if (on_rekey(comm, &tx, &ch, key, nonce, my_id, data, len) != 0) {
                    dip_free(data);
                    break;
                }
            } else if (tag == DIP__MPI_JOB || tag == DIP__MPI_TASK) {
                in_job = 1;
                to_compute(&ws, tag, data, len);
                data = NULL;
            }
            dip_free(data); /* PING and unknown tags */
        }
        pthread_mutex_lock(&ws.mu);
        for (struct msg *m; (m = pop(&ws.out_head, &ws.out_tail));) {
            int stall = m->stall;

            dip__tx_send(&tx, comm, 0, m->tag, m->data, m->len, 0, chp);
            dip_free(m);
#ifdef DIP_TEST_HOOKS
            if (stall) {
                /* let the message begin to move (its head reaches the coordinator), then stop
                 * mid-transfer */
                for (int k = 0; k < 20; k++, dip__nap(100))
                    dip__tx_poll(&tx);
                raise(SIGSTOP);
            }
#else
            (void)stall;
#endif
            busy = 1;
        }
        now = dip__now();
        if ((!key || ch.tx) && (now - last_beat >= hb || ws.change_gen != told)) {
            /* BEAT: the tasks being computed now. */
            struct dip__buf b = dip__msg_buf();
            uint64_t gen = ws.change_gen;
            uint8_t *d;
            size_t dl;
            uint32_t n = 0;

            for (int i = 0; i < ws.nthreads; i++)
                n += ws.running[i] != 0;
            dip__buf_u32le(&b, n);
            for (int i = 0; i < ws.nthreads; i++)
                if (ws.running[i])
                    dip__buf_u64le(&b, ws.running[i]);
            for (int i = 0; i < ws.nthreads; i++) /* then their sizes: 0 while unknown */
                if (ws.running[i])
                    dip__buf_f64le(&b, ws.mpix[i]);
            pthread_mutex_unlock(&ws.mu);
            d = dip__buf_take(&b, &dl); /* NULL when it failed: nothing to send or free */
            if (d && dip__tx_send(&tx, comm, 0, DIP__MPI_BEAT, d, dl, 0, chp) == 0) {
                told = gen;
                pthread_mutex_lock(&ws.mu);
                ws.told_gen = gen;
                pthread_cond_broadcast(&ws.cv);
                pthread_mutex_unlock(&ws.mu);
            } else {
                beat_failed = 1; /* nap before the next try: no spinning on a failing send */
            }
            last_beat = now;
        } else {
            pthread_mutex_unlock(&ws.mu);
        }
        dip__tx_poll(&tx);
        if (in_job && now - last_heard > orphan_s) {
            dip__mpi_log(0, "worker: no word from the coordinator for %.1f s; leaving", orphan_s);
            break;
        }
        /* Nap (dip__backoff), but on mpi_cv: a compute thread that finishes a task (a result
         * to send) or starts one (a BEAT to send, which it waits for) wakes this thread at once,
         * so neither waits out a nap, and no short polling is needed for them. */
        pthread_mutex_lock(&ws.mu);
        if (!ws.out_head && (ws.change_gen == told || beat_failed || (key && !ch.tx))) {
            struct timespec until;

            dip__deadline_in_us(&until, dip__backoff(busy, tx.head || rx.active));
            pthread_cond_timedwait(&ws.mpi_cv, &ws.mu, &until);
        }
        pthread_mutex_unlock(&ws.mu);
    }

    dip__buf_free(&hello);
    dip__chan_cleanup(&ch);
    pthread_mutex_lock(&ws.mu);
    ws.quit = 1;
    pthread_cond_broadcast(&ws.cv);
    pthread_mutex_unlock(&ws.mu);
    if (finalize) {
        /* A clean end: the last result was delivered, so the compute threads are idle. */
        for (int i = 0; i < started; i++)
            pthread_join(th[i], NULL);
        for (double t0 = dip__now(); tx.head && dip__now() - t0 < 5.0; dip__nap(1000))
            dip__tx_poll(&tx);
        dip__tx_abandon(&tx);
        dip__runner_cleanup(&ws.rn);
        dip__runner_destroy(&ws.rn);
        dip_pool_free(ws.rn.pool);
        for (struct msg *m; (m = pop(&ws.in_head, &ws.in_tail));) {
            dip_free(m->data);
            dip_free(m);
        }
        for (struct msg *m; (m = pop(&ws.out_head, &ws.out_tail));) {
            dip_free(m->data);
            dip_free(m);
        }
    } else {
        /* The coordinator will not finalise: leave at once, whatever the compute threads do. */
        dip__tx_abandon(&tx);
        fflush(NULL);
        _exit(0);
    }
    return finalize;
}
