/* SPDX-License-Identifier: MIT */
/* The allocator every part of dip uses. It wraps malloc so that tests can make the Nth allocation
 * fail (DIP_FAIL_ALLOC=n or dip__alloc_fail_after) and check that each out-of-memory path returns
 * DIP_ENOMEM cleanly instead of crashing. */
#include <pthread.h>
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

/* Recently freed pixel buffers, kept for reuse. A fresh buffer costs a page fault and a
 * kernel-zeroed page per 2 MiB on first write, which is most of the time of a memory-bound
 * operation; batches and repeated runs ask for the same sizes again and again. Bounded in count
 * and bytes; a buffer is reused when it is at least the size asked and at most a quarter more. */
#define CACHE_SLOTS     8
#define CACHE_MAX_BYTES ((size_t)256 << 20)
#define LARGE_MIN       ((size_t)4 << 20)

static struct {
    void *p;
    size_t n;
} cache[CACHE_SLOTS];
static size_t cache_bytes;
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

static void *cache_take(size_t n)
{
    void *p = NULL;

    pthread_mutex_lock(&cache_mu);
    for (int i = 0; i < CACHE_SLOTS; i++) {
        if (cache[i].p != NULL && cache[i].n >= n && cache[i].n - n <= n / 4) {
            p = cache[i].p;
            cache_bytes -= cache[i].n;
            cache[i].p = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&cache_mu);
    return p;
}

void dip__free_large(void *p, size_t n)
{
    if (p == NULL)
        return;
    if (n >= LARGE_MIN) {
        pthread_mutex_lock(&cache_mu);
        if (cache_bytes + n <= CACHE_MAX_BYTES) {
            for (int i = 0; i < CACHE_SLOTS; i++) {
                if (cache[i].p == NULL) {
                    cache[i].p = p;
                    cache[i].n = n;
                    cache_bytes += n;
                    p = NULL;
                    break;
                }
            }
        }
        pthread_mutex_unlock(&cache_mu);
    }
    free(p);
}

void dip__cache_drop(void)
{
    pthread_mutex_lock(&cache_mu);
    for (int i = 0; i < CACHE_SLOTS; i++) {
        free(cache[i].p);
        cache[i].p = NULL;
    }
    cache_bytes = 0;
    pthread_mutex_unlock(&cache_mu);
}

void *dip__malloc_large(size_t n)
{
    void *p = NULL;

    if (n < LARGE_MIN)
        return dip_malloc(n);
    if (should_fail())
        return NULL;
    p = cache_take(n);
    if (p != NULL)
        return p;
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
