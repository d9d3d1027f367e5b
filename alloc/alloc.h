/*
 * alloc -- where the runtime's memory comes from: message envelopes, actor
 * cells, and the tables behind refs.
 *
 * Small blocks (up to XI_CACHE_MAX bytes: envelopes of small messages,
 * timers, request copies) come from a per-thread cache in front of the
 * backend: an allocation pops a thread-local list and a free pushes one, no
 * lock and no atomic, inlined here. Blocks freed on another thread than the
 * one that allocated them (every message: allocated by the sender, freed by
 * the receiver) flow back in magazines of XI_MAG through a per-size depot,
 * one mutex acquisition per magazine (alloc.c says more). Larger blocks go
 * straight to the backend.
 *
 * With XO_USE_JEMALLOC (the default) the backend is jemalloc's
 * mallocx/sdallocx; the sized free lets jemalloc skip the size lookup. The
 * library calls mallocx explicitly and never relies on jemalloc replacing
 * malloc (a program linked against the shared library keeps the C
 * library's malloc; one that links jemalloc directly, as the static library
 * asks, gets jemalloc's for everything). Without jemalloc
 * (-DXO_USE_JEMALLOC=OFF, and in the sanitizer builds, where the sanitizers
 * must see every block the backend hands out) the backend is the system
 * malloc. The cache stays on in every build; under AddressSanitizer it
 * poisons the blocks it holds.
 *
 * Every allocation of the runtime goes through xi_mem_alloc, so one knob can
 * fail any of them: the test hook xi_mem_fail_after(a, n) makes the n-th
 * next allocation (and only it) fail, to prove each caller's out-of-memory
 * path. Disarmed it costs one relaxed load of a runtime-local word.
 *
 * Concurrency: all functions may be called from any thread at once.
 */
#ifndef XI_ALLOC_ALLOC_H
#define XI_ALLOC_ALLOC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__SANITIZE_ADDRESS__)
#define XI_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XI_ASAN 1
#endif
#endif
#ifdef XI_ASAN
#include <sanitizer/asan_interface.h>
#define XI_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define XI_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define XI_POISON(p, n) ((void)(p), (void)(n))
#define XI_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct xi_allocator {
    /* > 0: allocations left before the injected failure. */
    _Atomic long fail_countdown;
};

/* Blocks up to this size are served by the per-thread cache. */
#define XI_CACHE_MAX 256
/* Size classes (jemalloc's small classes up to XI_CACHE_MAX). */
#define XI_NCLASS 12
/* Blocks per magazine: the most a thread's list for one class holds. */
#define XI_MAG 64u

/* The first XI_LINK_BYTES of a cached block hold its links and stay
   unpoisoned (LeakSanitizer does not follow pointers in poisoned memory);
   the rest is poisoned while the block is cached. */
#define XI_LINK_BYTES (2 * sizeof(void *))

struct xi_tc_list {
    void *head; /* blocks linked through their first word */
    uint32_t n;
};

/* One per thread. `limit` is XI_MAG while the thread caches, 0 before its
   first free and after its exit: every free then takes the slow path,
   which registers the thread (or, once it exited, bypasses the cache). */
struct xi_tcache {
    struct xi_tc_list cur[XI_NCLASS];   /* allocate from, free to */
    struct xi_tc_list spare[XI_NCLASS]; /* empty, or one full magazine */
    uint32_t limit;
    int state;
};

extern __thread struct xi_tcache xi_tc
    __attribute__((tls_model("initial-exec"), visibility("hidden")));
extern const uint32_t xi_class_size[XI_NCLASS];

void xi_mem_init(struct xi_allocator *a);
void *xi_mem_zalloc(struct xi_allocator *a, size_t size);
/* The out-of-line halves of xi_mem_alloc and xi_mem_free. */
void *xi_mem_alloc_slow(struct xi_allocator *a, size_t size);
void xi_mem_free_slow(void *p, size_t size);

/* size in 1..XI_CACHE_MAX: 16-byte steps to 128, then 32-byte steps. */
static inline unsigned xi_size_class(size_t size)
{
    return size <= 128 ? (unsigned)((size - 1) >> 4)
                       : 8u + (unsigned)((size - 129) >> 5);
}

/* Take a block from a non-empty list; only `size` bytes are unpoisoned
   (the rest of the class stays poisoned). */
static inline void *xi_tc_pop(struct xi_tc_list *l, size_t size)
{
    void *p = l->head;
    l->head = *(void **)p;
    l->n--;
    XI_UNPOISON(p, size);
    (void)size;
    return p;
}

/* Poison a cached block of class c past its links. */
static inline void xi_tc_poison(void *p, unsigned c)
{
    XI_POISON((char *)p + XI_LINK_BYTES, xi_class_size[c] - XI_LINK_BYTES);
    (void)p;
    (void)c;
}

/* Put a block of class c on a list with room. */
static inline void xi_tc_push(struct xi_tc_list *l, unsigned c, void *p)
{
    xi_tc_poison(p, c);
    *(void **)p = l->head;
    l->head = p;
    l->n++;
}

static inline void *xi_mem_alloc(struct xi_allocator *a, size_t size)
{
    /* relaxed: see injected_failure in alloc.c. size - 1 wraps for 0. */
    if (__builtin_expect(atomic_load_explicit(&a->fail_countdown,
                                              memory_order_relaxed) == 0 &&
                             size - 1 < XI_CACHE_MAX,
                         1)) {
        struct xi_tc_list *l = &xi_tc.cur[xi_size_class(size)];
        if (__builtin_expect(l->n != 0, 1))
            return xi_tc_pop(l, size);
    }
    return xi_mem_alloc_slow(a, size);
}

/* size must be the size the block was allocated with. */
static inline void xi_mem_free(struct xi_allocator *a, void *p, size_t size)
{
    (void)a;
    if (__builtin_expect(p != NULL && size - 1 < XI_CACHE_MAX, 1)) {
        unsigned c = xi_size_class(size);
        struct xi_tc_list *l = &xi_tc.cur[c];
        if (__builtin_expect(l->n < xi_tc.limit, 1)) {
            xi_tc_push(l, c, p);
            return;
        }
    }
    xi_mem_free_slow(p, size);
}

/* Zeroed, aligned to `align` (a power of two): structures that keep
   their fields on separate cache lines. Free with xi_mem_free_aligned and
   the same size and alignment. */
void *xi_mem_zalloc_aligned(struct xi_allocator *a, size_t size,
                            size_t align);
void xi_mem_free_aligned(void *p, size_t size, size_t align);
/* A copy of a string (freed with xi_mem_free_str). */
char *xi_mem_strdup(struct xi_allocator *a, const char *s);
void xi_mem_free_str(struct xi_allocator *a, char *s);

/* Free the blocks the depot holds (the threads' own lists stay). */
void xi_mem_trim(void);

/* How many blocks the depot holds now (for tests and diagnostics). */
size_t xi_mem_depot_blocks(void);

/* Test hook: the n-th allocation from now fails (n >= 1); 0 disarms. */
void xi_mem_fail_after(struct xi_allocator *a, long n);

#endif /* XI_ALLOC_ALLOC_H */
