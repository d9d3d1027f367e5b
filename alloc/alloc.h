/*
 * alloc -- where the runtime's memory comes from: message envelopes, actor
 * cells, and the tables behind refs.
 *
 * With XO_USE_JEMALLOC (the default) every block comes from jemalloc's
 * mallocx/sdallocx. jemalloc keeps a cache per thread, so the hot path of a
 * send (allocate an envelope on the sender's thread, free it on the
 * receiver's) is a pointer pop and push in thread-local bins: no lock in the
 * common case and no system call. The sized free lets jemalloc skip the
 * size lookup. The library calls mallocx explicitly and never relies on
 * jemalloc replacing malloc (a program linked against the shared library
 * keeps the C library's malloc; one that links jemalloc directly, as the
 * static library asks, gets jemalloc's for everything). Without jemalloc (-DXO_USE_JEMALLOC=OFF, and in the
 * sanitizer builds, where the sanitizers must see every block) the same
 * calls go to the system malloc.
 *
 * Every allocation of the runtime goes through xo_mem_alloc, so one knob can
 * fail any of them: the test hook xo_mem_fail_after(a, n) makes the n-th
 * next allocation (and only it) fail, to prove each caller's out-of-memory
 * path. Disarmed it costs one relaxed load of a runtime-local word.
 *
 * Concurrency: all functions may be called from any thread at once.
 */
#ifndef XO_ALLOC_ALLOC_H
#define XO_ALLOC_ALLOC_H

#include <stdatomic.h>
#include <stddef.h>

struct xo_allocator {
    /* > 0: allocations left before the injected failure. */
    _Atomic long fail_countdown;
};

void xo_mem_init(struct xo_allocator *a);
void *xo_mem_alloc(struct xo_allocator *a, size_t size);
void *xo_mem_zalloc(struct xo_allocator *a, size_t size);
void xo_mem_free(struct xo_allocator *a, void *p, size_t size);

/* Test hook: the n-th allocation from now fails (n >= 1); 0 disarms. */
void xo_mem_fail_after(struct xo_allocator *a, long n);

#endif /* XO_ALLOC_ALLOC_H */
