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

#endif
