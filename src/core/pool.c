/* SPDX-License-Identifier: MIT */
/* A fixed pool of threads running parallel-for loops. Indices are pulled from one atomic counter,
 * so a slow thread never holds the others back. The caller's thread joins in as thread 0. A loop
 * started from inside a task runs inline (no deadlock on nested use); a second caller waits for
 * the pool to be free. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "dip/image.h"
#include "dip/pool.h"
#include "internal.h"

struct dip_pool {
    int n; /* threads including the caller */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;  /* workers wait for a new generation */
    pthread_cond_t done;  /* caller waits for active == 0 */
    pthread_mutex_t busy; /* one loop at a time */
    unsigned long gen;
    int quit;
    int active; /* workers still inside the current loop */
    /* the current loop */
    size_t count;
    atomic_size_t next;
    atomic_int rc;
    int (*fn)(void *ud, size_t i, int thread);
    void *ud;

    /* CPU time of the worker threads inside loops (dip_pool_cpu_seconds). */
    atomic_uint_least64_t cpu_ns;
};

static _Thread_local int in_task;

double dip__now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of the calling thread in nanoseconds. */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double dip_thread_cpu_seconds(void)
{
    return (double)thread_cpu_ns() * 1e-9;
}

int dip_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void run_loop(dip_pool *p, int thread)
{
    in_task = 1;
    for (;;) {
        size_t i;
        int r;

        if (atomic_load(&p->rc) != 0)
            break;
        i = atomic_fetch_add(&p->next, 1);
        if (i >= p->count)
            break;
        r = p->fn(p->ud, i, thread);
        if (r != 0) {
            int expect = 0;
            atomic_compare_exchange_strong(&p->rc, &expect, r);
        }
    }
    in_task = 0;
}

struct worker_arg {
    dip_pool *p;
    int thread;
};

static void *worker_main(void *arg)
{
    dip_pool *p = ((struct worker_arg *)arg)->p;
    int thread = ((struct worker_arg *)arg)->thread;
    unsigned long seen = 0;

    dip_free(arg);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->gen == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit)
            break;
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        {
            /* Counted before `active` drops, so the caller of dip_pool_for sees it on return. */
            uint64_t t0 = thread_cpu_ns();
            run_loop(p, thread);
            atomic_fetch_add(&p->cpu_ns, thread_cpu_ns() - t0);
        }
        pthread_mutex_lock(&p->mu);
        if (--p->active == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int dip_pool_new(int threads, dip_pool **out)
{
    dip_pool *p;
    int started = 0;

    *out = NULL;
    if (threads <= 0)
        threads = dip_cpu_count();
    if (threads > 1024)
        return DIP_EINVAL;
    p = dip_calloc(1, sizeof(*p));
    if (p == NULL)
        return DIP_ENOMEM;
    p->n = threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->busy, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (threads > 1) {
        p->threads = dip_calloc((size_t)threads - 1, sizeof(pthread_t));
        if (p->threads == NULL)
            goto fail;
        for (int t = 1; t < threads; t++) {
            struct worker_arg *a = dip_malloc(sizeof(*a));
            if (a == NULL)
                goto fail;
            a->p = p;
            a->thread = t;
            if (pthread_create(&p->threads[t - 1], NULL, worker_main, a) != 0) {
                dip_free(a);
                goto fail;
            }
            started++;
        }
    }
    *out = p;
    return 0;
fail:
    p->n = started + 1;
    dip_pool_free(p);
    return DIP_ENOMEM;
}

void dip_pool_free(dip_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int t = 1; t < p->n; t++)
        pthread_join(p->threads[t - 1], NULL);
    dip_free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->busy);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    dip_free(p);
}

int dip_pool_threads(const dip_pool *p)
{
    return p ? p->n : 1;
}

double dip_pool_cpu_seconds(dip_pool *p)
{
    return p ? (double)atomic_load(&p->cpu_ns) * 1e-9 : 0.0;
}

int dip_pool_for(dip_pool *p, size_t n, int (*fn)(void *ud, size_t i, int thread), void *ud)
{
    int rc;

    if (n == 0)
        return 0;
    if (p == NULL || p->n == 1 || in_task || n == 1) {
        for (size_t i = 0; i < n; i++) {
            rc = fn(ud, i, 0);
            if (rc)
                return rc;
        }
        return 0;
    }
    pthread_mutex_lock(&p->busy);
    pthread_mutex_lock(&p->mu);
    p->count = n;
    atomic_store(&p->next, 0);
    atomic_store(&p->rc, 0);
    p->fn = fn;
    p->ud = ud;
    p->active = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    run_loop(p, 0);

    pthread_mutex_lock(&p->mu);
    while (p->active > 0)
        pthread_cond_wait(&p->done, &p->mu);
    rc = atomic_load(&p->rc);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->busy);
    return rc;
}
