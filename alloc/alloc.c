/*
 * alloc.c -- see alloc.h for the design.
 *
 * The small-block cache. Blocks of up to XO_CACHE_MAX bytes are rounded to
 * one of NCLASS size classes (jemalloc's own small classes, so rounding
 * costs no memory over jemalloc). A freed block goes onto the freeing
 * thread's list for its class; an allocation takes from the allocating
 * thread's list. Neither touches a lock or an atomic.
 *
 * Messages are allocated on the sender's thread and freed on the
 * receiver's, so the lists drift: the receiver's fill, the sender's empty.
 * Blocks flow back in magazines of XO_MAG blocks through a per-class depot:
 * a thread whose list is full parks it as its spare and, when the spare is
 * taken too, hands the spare to the depot; a thread whose lists are empty
 * takes a magazine from the depot. That is one mutex acquisition per
 * XO_MAG blocks on either side, instead of jemalloc's bin lock on every
 * tcache flush of blocks another thread allocated.
 *
 * Bounds: a thread keeps at most two magazines per class; the depot keeps
 * at most XO_DEPOT_MAX magazines per class and frees the rest. A thread's
 * lists go to the depot when it exits (a pthread key destructor);
 * xo_mem_trim empties the depot.
 *
 * Free blocks are linked through their first word; a magazine in the depot
 * is linked to the next one through its first block's second word. Under
 * AddressSanitizer the rest of a cached block is poisoned, so a use after
 * free past its first 16 bytes is still reported.
 */
#include "alloc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef XO_USE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define XO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XO_ASAN 1
#endif
#endif
#ifdef XO_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define NCLASS 12
#define XO_MAG 64
#ifndef XO_DEPOT_MAX
#define XO_DEPOT_MAX 64
#endif

static const uint32_t class_size[NCLASS] = { 16,  32,  48,  64,  80,  96,
                                              112, 128, 160, 192, 224, 256 };

_Static_assert(XO_CACHE_MAX == 256, "class table ends at XO_CACHE_MAX");

static inline unsigned size_class(size_t size)
{
    /* size in 1..XO_CACHE_MAX: 16-byte steps to 128, then 32-byte. */
    return size <= 128 ? (unsigned)((size - 1) >> 4)
                       : 8u + (unsigned)((size - 129) >> 5);
}

/* ---- the backend: jemalloc or the C library ------------------------- */

static void *backend_alloc(size_t size, bool zero)
{
#ifdef XO_USE_JEMALLOC
    return mallocx(size, zero ? MALLOCX_ZERO : 0);
#else
    return zero ? calloc(1, size) : malloc(size);
#endif
}

static void backend_free(void *p, size_t size)
{
#ifdef XO_USE_JEMALLOC
    sdallocx(p, size, 0);
#else
    (void)size;
    free(p);
#endif
}

/* ---- links inside free blocks ------------------------------------- */

/* The first LINK_BYTES of a cached block hold the links and stay
   unpoisoned: LeakSanitizer does not follow pointers stored in poisoned
   memory, and would report every cached block as leaked. The rest of the
   block is poisoned while it is cached. */
#define LINK_BYTES (2 * sizeof(void *))
_Static_assert(LINK_BYTES <= 16, "the smallest class holds both links");

static inline void poison_block(void *p, uint32_t size)
{
    POISON((char *)p + LINK_BYTES, size - LINK_BYTES);
    (void)p;
    (void)size;
}

static inline void *link_get(void *block, unsigned word)
{
    return ((void **)block)[word];
}

static inline void link_set(void *block, unsigned word, void *v)
{
    ((void **)block)[word] = v;
}

/* ---- the depot ------------------------------------------------------ */

struct depot {
    pthread_mutex_t lock;
    void *mags;     /* first blocks of full magazines, linked by word 1 */
    unsigned count;
};

static struct depot depots[NCLASS] = {
#define D { PTHREAD_MUTEX_INITIALIZER, NULL, 0 }
    D, D, D, D, D, D, D, D, D, D, D, D
#undef D
};

static void free_list(void *head, uint32_t size)
{
    while (head != NULL) {
        void *next = link_get(head, 0);
        UNPOISON(head, size);
        backend_free(head, size);
        head = next;
    }
}

/* Give a full magazine to the depot (or back to the backend when the
   depot holds its maximum). */
static void depot_put(unsigned c, void *mag)
{
    struct depot *d = &depots[c];
    pthread_mutex_lock(&d->lock);
    if (d->count < XO_DEPOT_MAX) {
        link_set(mag, 1, d->mags);
        d->mags = mag;
        d->count++;
        mag = NULL;
    }
    pthread_mutex_unlock(&d->lock);
    if (mag != NULL)
        free_list(mag, class_size[c]);
}

static void *depot_get(unsigned c)
{
    struct depot *d = &depots[c];
    pthread_mutex_lock(&d->lock);
    void *mag = d->mags;
    if (mag != NULL) {
        d->mags = link_get(mag, 1);
        d->count--;
    }
    pthread_mutex_unlock(&d->lock);
    return mag;
}

size_t xo_mem_depot_blocks(void)
{
    size_t n = 0;
    for (unsigned c = 0; c < NCLASS; c++) {
        pthread_mutex_lock(&depots[c].lock);
        n += (size_t)depots[c].count * XO_MAG;
        pthread_mutex_unlock(&depots[c].lock);
    }
    return n;
}

void xo_mem_trim(void)
{
    for (unsigned c = 0; c < NCLASS; c++) {
        struct depot *d = &depots[c];
        pthread_mutex_lock(&d->lock);
        void *mags = d->mags;
        d->mags = NULL;
        d->count = 0;
        pthread_mutex_unlock(&d->lock);
        while (mags != NULL) {
            void *next = link_get(mags, 1);
            free_list(mags, class_size[c]);
            mags = next;
        }
    }
}

/* ---- the thread cache ---------------------------------------------- */

struct list {
    /* tail: the last block while n > 0, or NULL when not known (a
       magazine taken from the depot) */
    void *head, *tail;
    unsigned n;
};

enum { TC_NEW = 0, TC_LIVE, TC_DEAD };

struct tcache {
    int state;
    struct list cur[NCLASS];   /* allocate from and free to this one */
    struct list spare[NCLASS]; /* empty, or a full magazine */
};

static __thread struct tcache tc __attribute__((tls_model("initial-exec")));

static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;
static bool tc_key_ok;

/* Thread exit: full magazines go to the depot, partial lists to the
   backend; later frees on this thread bypass the cache. */
static void tc_release(void *unused)
{
    (void)unused;
    tc.state = TC_DEAD;
    for (unsigned c = 0; c < NCLASS; c++) {
        struct list *ls[2] = { &tc.cur[c], &tc.spare[c] };
        for (unsigned i = 0; i < 2; i++) {
            if (ls[i]->n == XO_MAG)
                depot_put(c, ls[i]->head);
            else
                free_list(ls[i]->head, class_size[c]);
            ls[i]->head = NULL;
            ls[i]->n = 0;
        }
    }
}

static void tc_key_create(void)
{
    tc_key_ok = pthread_key_create(&tc_key, tc_release) == 0;
}

/* First use on this thread: arrange for tc_release at its exit. Without
   a key the thread does not cache (nothing would return its blocks). */
static bool tc_start(void)
{
    if (tc.state == TC_NEW) {
        pthread_once(&tc_once, tc_key_create);
        if (tc_key_ok && pthread_setspecific(tc_key, &tc) == 0)
            tc.state = TC_LIVE;
        else
            tc.state = TC_DEAD;
    }
    return tc.state == TC_LIVE;
}

/* The depot is empty: take a magazine's worth from the backend at once
   (so that the depot is asked once per XO_MAG allocations, not on each),
   keep all but the one returned. The list keeps the backend's order: the
   backend hands out consecutive addresses, and a queue of messages read
   in address order is what the hardware prefetcher streams best when a
   backlog has left the cache. */
static void *refill(unsigned c)
{
    const uint32_t size = class_size[c];
    void *p = backend_alloc(size, false);
    if (p == NULL)
        return NULL;
    struct list *l = &tc.cur[c];
    void *last = NULL;
    for (unsigned i = 1; i < XO_MAG; i++) {
        void *b = backend_alloc(size, false);
        if (b == NULL)
            break;
        poison_block(b, size);
        link_set(b, 0, NULL);
        if (last == NULL)
            l->head = b;
        else
            link_set(last, 0, b);
        last = b;
        l->n++;
    }
    l->tail = last;
    return p;
}

static void *cache_alloc(unsigned c, size_t size)
{
    struct list *l = &tc.cur[c];
    if (__builtin_expect(l->n == 0, 0)) {
        if (__builtin_expect(tc.state != TC_LIVE, 0) && !tc_start())
            return backend_alloc(class_size[c], false);
        if (tc.spare[c].n != 0) {
            *l = tc.spare[c];
            tc.spare[c].head = NULL;
            tc.spare[c].n = 0;
        } else {
            void *mag = depot_get(c);
            if (mag == NULL)
                return refill(c);
            l->head = mag;
            l->tail = NULL;
            l->n = XO_MAG;
        }
    }
    void *p = l->head;
    l->head = link_get(p, 0);
    l->n--;
    /* Only what was asked for: the rest of the class stays poisoned. */
    UNPOISON(p, size);
    (void)size;
    return p;
}

static void cache_free(unsigned c, void *p)
{
    if (__builtin_expect(tc.state != TC_LIVE, 0) && !tc_start()) {
        backend_free(p, class_size[c]);
        return;
    }
    struct list *l = &tc.cur[c];
    if (__builtin_expect(l->n == XO_MAG, 0)) {
        if (tc.spare[c].n != 0)
            depot_put(c, tc.spare[c].head);
        tc.spare[c] = *l;
        l->head = NULL;
        l->n = 0;
    }
    /* Appended where the tail is known, so that blocks go out again in the
       order they came back (the order messages were read in, for a
       receiver's list). */
    poison_block(p, class_size[c]);
    if (l->n == 0) {
        link_set(p, 0, NULL);
        l->head = l->tail = p;
    } else if (l->tail != NULL) {
        link_set(p, 0, NULL);
        link_set(l->tail, 0, p);
        l->tail = p;
    } else {
        link_set(p, 0, l->head); /* tail unknown: in front */
        l->head = p;
    }
    l->n++;
}

/* ---- the interface -------------------------------------------------- */

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
    if (size == 0)
        size = 1;
    if (size <= XO_CACHE_MAX)
        return cache_alloc(size_class(size), size);
    return backend_alloc(size, false);
}

void *xo_mem_zalloc(struct xo_allocator *a, size_t size)
{
    if (injected_failure(a))
        return NULL;
    if (size == 0)
        size = 1;
    if (size <= XO_CACHE_MAX) {
        void *p = cache_alloc(size_class(size), size);
        if (p != NULL)
            memset(p, 0, size);
        return p;
    }
    return backend_alloc(size, true);
}

void xo_mem_free(struct xo_allocator *a, void *p, size_t size)
{
    (void)a;
    if (p == NULL)
        return;
    if (size == 0)
        size = 1;
    if (size <= XO_CACHE_MAX)
        cache_free(size_class(size), p);
    else
        backend_free(p, size);
}
