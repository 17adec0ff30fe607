/* SPDX-License-Identifier: MIT */
/* The allocator every part of dip uses. It wraps malloc so that tests can make the Nth allocation
 * fail (DIP_FAIL_ALLOC=n or dip__alloc_fail_after) and check that each out-of-memory path returns
 * DIP_ENOMEM cleanly instead of crashing. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dip/image.h"
#include "internal.h"

static atomic_long alloc_count;
static atomic_long fail_at = -1; /* -1: not read from the environment yet; 0: never fail */

static int should_fail(void)
{
    long f = atomic_load(&fail_at);
    long n;

    if (f < 0) {
        const char *e = getenv("DIP_FAIL_ALLOC");
        long v = e ? strtol(e, NULL, 10) : 0;
        long expect = -1;
        atomic_compare_exchange_strong(&fail_at, &expect, v > 0 ? v : 0);
        f = atomic_load(&fail_at);
    }
    n = atomic_fetch_add(&alloc_count, 1) + 1;
    return f > 0 && n >= f;
}

void dip__alloc_fail_after(long n)
{
    atomic_store(&alloc_count, 0);
    atomic_store(&fail_at, n > 0 ? n : 0);
}

long dip__alloc_count(void)
{
    return atomic_load(&alloc_count);
}

void *dip_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *dip_calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *dip_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void *dip__malloc_large(size_t n)
{
    void *p = NULL;

    if (n < ((size_t)4 << 20))
        return dip_malloc(n);
    if (should_fail())
        return NULL;
    /* Whole pixel buffers: 2 MiB aligned and marked for transparent huge pages, as numpy does.
     * The first write then faults once per 2 MiB instead of once per 4 KiB, which is most of
     * the cost of a point operation on a fresh output image. */
    if (posix_memalign(&p, (size_t)2 << 20, n) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, n, MADV_HUGEPAGE);
#endif
    return p;
}

void dip_free(void *p)
{
    free(p);
}

char *dip_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = dip_malloc(n);

    if (d != NULL)
        memcpy(d, s, n);
    return d;
}
