/*
 * alloc -- where the runtime's memory comes from: message envelopes, actor
 * cells, and the tables behind refs.
 *
 * Small blocks (up to XO_CACHE_MAX bytes: envelopes of small messages,
 * timers, request copies) come from a per-thread cache in front of the
 * backend: an allocation pops a thread-local list and a free pushes one, no
 * lock and no atomic. Blocks freed on another thread than the one that
 * allocated them (every message: allocated by the sender, freed by the
 * receiver) flow back in magazines of 64 through a per-size depot, one
 * mutex acquisition per magazine (alloc.c says more). Larger blocks go
 * straight to the backend.
 *
 * With XO_USE_JEMALLOC (the default) the backend is jemalloc's
 * mallocx/sdallocx; the sized free lets jemalloc skip the size lookup. The library calls mallocx explicitly and never relies on
 * jemalloc replacing malloc (a program linked against the shared library
 * keeps the C library's malloc; one that links jemalloc directly, as the
 * static library asks, gets jemalloc's for everything). Without jemalloc (-DXO_USE_JEMALLOC=OFF, and in
 * the sanitizer builds, where the sanitizers must see every block the
 * backend hands out) the backend is the system malloc. The cache stays on in
 * every build; under AddressSanitizer it poisons the blocks it holds.
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
/* size must be the size the block was allocated with. */
void xo_mem_free(struct xo_allocator *a, void *p, size_t size);

/* Blocks up to this size are served by the per-thread cache. */
#define XO_CACHE_MAX 256

/* Free the blocks the depot holds (the threads' own lists stay). */
void xo_mem_trim(void);

/* How many blocks the depot holds now (for tests and diagnostics). */
size_t xo_mem_depot_blocks(void);

/* Test hook: the n-th allocation from now fails (n >= 1); 0 disarms. */
void xo_mem_fail_after(struct xo_allocator *a, long n);

#endif /* XO_ALLOC_ALLOC_H */
