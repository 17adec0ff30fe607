/* SPDX-License-Identifier: MIT */
/* Internal helpers shared across dip's own sources (dip__ names): assertions and small maths.
 * Not installed; include as "core/internal.h" from other folders. */
#ifndef DIP_CORE_INTERNAL_H
#define DIP_CORE_INTERNAL_H

#include <assert.h>

#ifdef NDEBUG
#define DIP_ASSERT(x) ((void)0)
#define DIP_ALWAYS(x) (x)
#define DIP_NEVER(x)  (x)
#else
#define DIP_ASSERT(x) assert(x)
/* Checks believed never to fire: assert in debug builds, a plain test in release. */
#define DIP_ALWAYS(x) ((x) ? 1 : (assert(0 && #x), 0))
#define DIP_NEVER(x)  ((x) ? (assert(0 && #x), 1) : 0)
#endif

#define DIP_MIN(a, b)        ((a) < (b) ? (a) : (b))
#define DIP_MAX(a, b)        ((a) > (b) ? (a) : (b))
#define DIP_CLAMP(x, lo, hi) ((x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))

/* Allocation for whole pixel buffers: huge-page backed above 4 MiB; free with dip_free. */
#include <stddef.h>
void *dip__malloc_large(size_t n);
/* Frees a buffer from dip__malloc_large (n: the size asked); large ones may be kept for reuse. */
void dip__free_large(void *p, size_t n);
/* Frees every kept buffer (tests, and before measuring memory). */
void dip__cache_drop(void);

/* Monotonic clock in seconds. */
double dip__now(void);

#ifdef DIP_TEST_HOOKS
#include <stdlib.h>
#include <time.h>
/* Test-only (test builds): every item takes DIP_TEST_ITEM_SLEEP_MS milliseconds more, on the
 * local executor's threads and on cluster workers alike, so that tests get jobs of a known length
 * (progress and time left; a fault that must land mid-job) without using the CPU. */
static inline void dip__test_item_sleep(void)
{
    const char *v = getenv("DIP_TEST_ITEM_SLEEP_MS");
    long ms = v ? strtol(v, NULL, 10) : 0;

    if (ms > 0) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

        nanosleep(&ts, NULL);
    }
}
#endif

#endif
