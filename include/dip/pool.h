/* SPDX-License-Identifier: MIT */
/* A fixed thread pool that runs parallel-for loops: dip_pool_for() hands indices 0..n-1 to the
 * pool's threads (and the caller's) one at a time and returns when all are done. Work is pulled
 * from a shared counter, so fast threads take more. Nested calls from inside a task run inline. */
#ifndef DIP_POOL_H
#define DIP_POOL_H

#include <stddef.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dip_pool dip_pool;

/** Starts a pool of `threads` workers in all (the calling thread counts as one; 0 = number of
 * online CPUs). Returns 0 or DIP_ENOMEM/DIP_EINTERNAL. Free with dip_pool_free(). */
int dip_pool_new(int threads, dip_pool **out);
/** Joins the threads. NULL is a no-op. Must not be called from a task. */
void dip_pool_free(dip_pool *pool);
/** Number of threads including the caller's. */
int dip_pool_threads(const dip_pool *pool);

/** Calls fn(ud, i, thread) for i in [0, n) across the pool; `thread` is 0..threads-1 and stable
 * for the duration of one call (index scratch by it). Returns the first non-zero return of fn
 * (remaining indices are skipped), else 0. One loop at a time per pool: concurrent callers wait.
 * A pool of NULL runs inline on the caller. */
int dip_pool_for(dip_pool *pool, size_t n, int (*fn)(void *ud, size_t i, int thread), void *ud);

/** CPU seconds the pool's own threads (not the callers') have spent inside loops so far; the
 * difference across a dip_pool_for() call is the CPU that call took on them. Usage accounting
 * adds the caller's dip_thread_cpu_seconds() to get a run's whole CPU time. */
double dip_pool_cpu_seconds(dip_pool *pool);
/** CPU seconds of the calling thread (CLOCK_THREAD_CPUTIME_ID): not wall time. */
double dip_thread_cpu_seconds(void);

/** Number of online CPUs (at least 1). */
int dip_cpu_count(void);

#ifdef __cplusplus
}
#endif
#endif
