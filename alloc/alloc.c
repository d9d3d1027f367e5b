/*
 * alloc.c -- see alloc.h for the design. The only branch on the hot path is
 * the fault-injection check, a relaxed load that is almost always zero.
 */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

#ifdef XO_USE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

void xo_mem_init(struct xo_allocator *a)
{
    atomic_init(&a->fail_countdown, 0);
}

void xo_mem_fail_after(struct xo_allocator *a, long n)
{
    /* relaxed: a test arms the hook before the operation it tests, on the
       same thread or before starting the threads that allocate. */
    atomic_store_explicit(&a->fail_countdown, n < 0 ? 0 : n,
                          memory_order_relaxed);
}

static int injected_failure(struct xo_allocator *a)
{
    /* relaxed: only the count matters, not ordering with other memory. */
    if (__builtin_expect(atomic_load_explicit(&a->fail_countdown,
                                              memory_order_relaxed) == 0, 1))
        return 0;
    long left = atomic_fetch_sub_explicit(&a->fail_countdown, 1,
                                          memory_order_relaxed);
    if (left == 1)
        return 1;
    if (left <= 0) /* another thread took the failure already */
        atomic_fetch_add_explicit(&a->fail_countdown, 1,
                                  memory_order_relaxed);
    return 0;
}

void *xo_mem_alloc(struct xo_allocator *a, size_t size)
{
    if (injected_failure(a))
        return NULL;
#ifdef XO_USE_JEMALLOC
    return mallocx(size ? size : 1, 0);
#else
    return malloc(size ? size : 1);
#endif
}

void *xo_mem_zalloc(struct xo_allocator *a, size_t size)
{
    if (injected_failure(a))
        return NULL;
#ifdef XO_USE_JEMALLOC
    return mallocx(size ? size : 1, MALLOCX_ZERO);
#else
    return calloc(1, size ? size : 1);
#endif
}

void xo_mem_free(struct xo_allocator *a, void *p, size_t size)
{
    (void)a;
    if (p == NULL)
        return;
#ifdef XO_USE_JEMALLOC
    sdallocx(p, size ? size : 1, 0);
#else
    (void)size;
    free(p);
#endif
}
