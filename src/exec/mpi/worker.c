/* SPDX-License-Identifier: MIT */
/* The worker loop of a worker rank. The main thread owns all MPI calls (MPI_THREAD_FUNNELED):
 * it receives jobs and tasks, sends results, and sends a heartbeat every heartbeat_s even while
 * the compute thread is deep in a long task, so the coordinator can tell a busy worker from a
 * dead or stopped one. The compute thread runs tasks one at a time with the rank's own thread
 * pool. Nothing here blocks on the coordinator: every receive and send is non-blocking and
 * polled, and a worker in the middle of a job that hears nothing from the coordinator for
 * DIP_MPI_ORPHAN_S seconds (60 by default) leaves on its own. */
#define _GNU_SOURCE
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "dip/image.h"
#include "internal.h"

struct msg {
    struct msg *next;
    int tag;
    uint8_t *data;
    size_t len;
};

struct wstate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct msg *in_head, *in_tail;   /* JOB and TASK messages for the compute thread */
    struct msg *out_head, *out_tail; /* RESULT messages for the MPI thread */
    uint64_t current;                /* task being computed (0 none) */
    uint64_t announced;              /* last task the MPI thread told the coordinator about */
    int quit;
    struct dip__runner rn;
};

struct pending {
    struct pending *next;
    MPI_Request req;
    uint8_t *data;
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

static void *compute_main(void *arg)
{
    struct wstate *ws = arg;

    pthread_mutex_lock(&ws->mu);
    for (;;) {
        struct msg *m;

        while (!ws->quit && !ws->in_head)
            pthread_cond_wait(&ws->cv, &ws->mu);
        if (ws->quit)
            break;
        m = pop(&ws->in_head, &ws->in_tail);
        if (m->tag == DIP__MPI_JOB) {
            struct dip__rbuf r = {m->data, m->len, 0};
            struct dip_err err = {0};

            pthread_mutex_unlock(&ws->mu);
            if (dip__runner_job(&ws->rn, &r, &err))
                dip__mpi_log(0, "worker: job refused: %s", err.msg);
            else if (ws->rn.spec.threads > 0 &&
                     (!ws->rn.pool || dip_pool_threads(ws->rn.pool) != ws->rn.spec.threads)) {
                dip_pool *pool = NULL;

                if (dip_pool_new(ws->rn.spec.threads, &pool) == 0) {
                    dip_pool_free(ws->rn.pool);
                    ws->rn.pool = pool;
                }
            }
            pthread_mutex_lock(&ws->mu);
        } else {
            struct dip__wbuf res = {0};
            struct dip__rbuf peek = {m->data, m->len, 0};
            uint64_t id = dip__rbuf_u64(&peek);
            int rc;

            ws->current = id;
            /* Wait (briefly) until the coordinator has been told which task this is, so that if
             * the task kills the process the right task is blamed. */
            {
                struct timespec until;

                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_nsec += 200 * 1000000L;
                if (until.tv_nsec >= 1000000000L) {
                    until.tv_sec++;
                    until.tv_nsec -= 1000000000L;
                }
                while (ws->announced != id && !ws->quit)
                    if (pthread_cond_timedwait(&ws->cv, &ws->mu, &until) != 0)
                        break;
            }
            pthread_mutex_unlock(&ws->mu);
            rc = dip__runner_task(&ws->rn, m->data, m->len, 1, &id, &res);
            pthread_mutex_lock(&ws->mu);
            ws->current = 0;
            if (rc == 0 && !res.oom) {
                struct msg *o = dip_malloc(sizeof *o);

                if (o) {
                    o->tag = DIP__MPI_RESULT;
                    o->data = res.data;
                    o->len = res.len;
                    push(&ws->out_head, &ws->out_tail, o);
                    res.data = NULL;
                }
            } else {
                /* No result: the coordinator's deadline reassigns the task. */
                dip__mpi_log(0, "worker: task %llu: %s", (unsigned long long)id,
                             dip_strerror(rc ? rc : DIP_ENOMEM));
            }
            dip_free(res.data);
        }
        dip_free(m->data);
        dip_free(m);
    }
    pthread_mutex_unlock(&ws->mu);
    return NULL;
}

static int send_msg(MPI_Comm comm, int tag, uint8_t *data, size_t len, struct pending **list)
{
    struct pending *p = dip_malloc(sizeof *p);

    if (!p || len > INT32_MAX) {
        dip_free(p);
        dip_free(data);
        return DIP_ENOMEM;
    }
    p->data = data;
    if (MPI_Isend(data, (int)len, MPI_BYTE, 0, tag, comm, &p->req) != MPI_SUCCESS) {
        dip_free(data);
        dip_free(p);
        return DIP_EPEER;
    }
    p->next = *list;
    *list = p;
    return 0;
}

static void poll_sends(struct pending **list)
{
    struct pending **pp = list;

    while (*pp) {
        struct pending *p = *pp;
        int done = 0;

        MPI_Test(&p->req, &done, MPI_STATUS_IGNORE);
        if (done) {
            *pp = p->next;
            dip_free(p->data);
            dip_free(p);
        } else {
            pp = &p->next;
        }
    }
}

static void nap(long us)
{
    struct timespec ts = {0, us * 1000};

    nanosleep(&ts, NULL);
}

/* Receives one matched message into a new buffer, polling with a deadline so a coordinator that
 * dies mid-message cannot hold the worker forever. */
static int recv_matched(MPI_Message *mm, MPI_Status *st, uint8_t **out, int *len, double limit_s)
{
    MPI_Request req;
    int n = 0, done = 0;
    uint8_t *buf;
    double t0 = dip__now();

    MPI_Get_count(st, MPI_BYTE, &n);
    buf = dip_malloc(n > 0 ? (size_t)n : 1);
    if (!buf)
        return DIP_ENOMEM;
    if (MPI_Imrecv(buf, n, MPI_BYTE, mm, &req) != MPI_SUCCESS) {
        dip_free(buf);
        return DIP_EPEER;
    }
    while (!done) {
        if (MPI_Test(&req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS ||
            dip__now() - t0 > limit_s + (double)n / 10e6)
            return DIP_EPEER; /* the buffer stays with MPI: never freed */
        if (!done)
            nap(20);
    }
    *out = buf;
    *len = n;
    return 0;
}

int dip__mpi_worker(void *commp, const struct dip_mpi_opts *o)
{
    MPI_Comm comm = *(MPI_Comm *)commp;
    struct wstate ws;
    struct pending *sends = NULL;
    pthread_t th;
    double hb = o->heartbeat_s > 0 ? o->heartbeat_s : 0.5;
    double last_beat = 0, last_heard = dip__now();
    uint64_t announced = 0;
    long idle_us = 50;
    /* A worker leaves when the coordinator is silent for orphan_s: it pings every heartbeat,
     * also while it computes a global step or encodes. Between jobs of dip serve (told by a PING
     * of 0) it waits for ever, since the service may idle for hours. */
    double orphan_s = o->orphan_s > 0 ? o->orphan_s : dip__mpi_lost_after(o);
    int in_job = 1;
    int finalize = 0, threads;
    struct dip__wbuf hello = {0};
    struct dip__proc_id me;
    char host[64] = "";

    memset(&ws, 0, sizeof ws);
    pthread_mutex_init(&ws.mu, NULL);
    pthread_cond_init(&ws.cv, NULL);
    threads = o->worker_threads > 0 ? o->worker_threads : dip_cpu_count();
    if (dip_pool_new(threads, &ws.rn.pool) != 0)
        ws.rn.pool = NULL; /* run on the compute thread alone */
    if (pthread_create(&th, NULL, compute_main, &ws) != 0) {
        dip__mpi_log(0, "worker: cannot start the compute thread");
        dip_pool_free(ws.rn.pool);
        return 0;
    }
    gethostname(host, sizeof host - 1);
    dip__proc_self(&me);
    dip__wire_proc_id(&hello, &me);
    dip__wbuf_u32(&hello, (uint32_t)(ws.rn.pool ? dip_pool_threads(ws.rn.pool) : 1));
    dip__wbuf_str(&hello, host);
    if (!hello.oom)
        send_msg(comm, DIP__MPI_HELLO, hello.data, hello.len, &sends);

    for (;;) {
        int flag = 0, busy = 0;
        MPI_Message mm;
        MPI_Status st;
        double now;

        if (MPI_Improbe(0, MPI_ANY_TAG, comm, &flag, &mm, &st) != MPI_SUCCESS)
            flag = 0;
        if (flag) {
            uint8_t *data = NULL;
            int len = 0;

            busy = 1;
            last_heard = dip__now();
            if (recv_matched(&mm, &st, &data, &len, orphan_s) != 0) {
                dip__mpi_log(0, "worker: lost the coordinator mid-message; leaving");
                break;
            }
            if (st.MPI_TAG == DIP__MPI_STOP) {
                struct dip__rbuf r = {data, (size_t)len, 0};

                finalize = dip__rbuf_u8(&r) == 1 && !r.bad;
                dip_free(data);
                break;
            } else if (st.MPI_TAG == DIP__MPI_PING) {
                struct dip__rbuf r = {data, (size_t)len, 0};

                in_job = dip__rbuf_u8(&r) == 1;
            } else if (st.MPI_TAG == DIP__MPI_JOB || st.MPI_TAG == DIP__MPI_TASK) {
                in_job = 1;
                struct msg *m = dip_malloc(sizeof *m);

                if (m) {
                    m->tag = st.MPI_TAG;
                    m->data = data;
                    m->len = (size_t)len;
                    pthread_mutex_lock(&ws.mu);
                    push(&ws.in_head, &ws.in_tail, m);
                    pthread_cond_signal(&ws.cv);
                    pthread_mutex_unlock(&ws.mu);
                    data = NULL;
                }
            }
            dip_free(data); /* PING and unknown tags */
        }
        pthread_mutex_lock(&ws.mu);
        for (struct msg *m; (m = pop(&ws.out_head, &ws.out_tail));) {
            send_msg(comm, m->tag, m->data, m->len, &sends);
            dip_free(m);
            busy = 1;
        }
        {
            uint64_t cur = ws.current;

            pthread_mutex_unlock(&ws.mu);
            now = dip__now();
            if (now - last_beat >= hb || cur != announced) {
                struct dip__wbuf b = {0};

                dip__wbuf_u64(&b, cur);
                if (!b.oom && send_msg(comm, DIP__MPI_BEAT, b.data, b.len, &sends) == 0 &&
                    cur != announced) {
                    announced = cur;
                    pthread_mutex_lock(&ws.mu);
                    ws.announced = cur;
                    pthread_cond_broadcast(&ws.cv);
                    pthread_mutex_unlock(&ws.mu);
                }
                last_beat = now;
            }
        }
        poll_sends(&sends);
        if (in_job && now - last_heard > orphan_s) {
            dip__mpi_log(0, "worker: no word from the coordinator for %.1f s; leaving", orphan_s);
            break;
        }
        idle_us = busy ? 50 : DIP_MIN(idle_us * 2, 2000);
        if (sends)
            idle_us = 20; /* large messages move only while both sides poll */
        nap(idle_us);
    }

    pthread_mutex_lock(&ws.mu);
    ws.quit = 1;
    pthread_cond_signal(&ws.cv);
    pthread_mutex_unlock(&ws.mu);
    if (finalize) {
        /* A clean end: the last result was delivered, so the compute thread is idle. */
        pthread_join(th, NULL);
        for (double t0 = dip__now(); sends && dip__now() - t0 < 5.0; nap(1000))
            poll_sends(&sends);
        dip__runner_cleanup(&ws.rn);
        dip_pool_free(ws.rn.pool);
    } else {
        /* The coordinator will not finalise: leave at once, whatever the compute thread does. */
        fflush(NULL);
        _exit(0);
    }
    return finalize;
}
