/*
 * alloc.c -- see alloc.h for the design; the fast paths are inline there,
 * the slow paths and the depot are here.
 *
 * The small-block cache. Blocks of up to XI_CACHE_MAX bytes are rounded to
 * one of XI_NCLASS size classes (jemalloc's own small classes, so rounding
 * costs no memory over jemalloc). A freed block goes onto the freeing
 * thread's list for its class; an allocation takes from the allocating
 * thread's list. Neither touches a lock or an atomic.
 *
 * Messages are allocated on the sender's thread and freed on the
 * receiver's, so the lists drift: the receiver's fill, the sender's empty.
 * Blocks flow back in magazines of XI_MAG blocks through a per-class depot:
 * a thread whose list is full keeps it as its spare and, when the spare is
 * full already, hands the spare to the depot; a thread whose lists are
 * empty takes a magazine from the depot, or failing that a magazine's worth
 * from the backend at once. That is one mutex acquisition per XI_MAG blocks
 * on either side, instead of jemalloc's bin lock on every tcache flush of
 * blocks another thread allocated.
 *
 * Bounds: a thread keeps at most two magazines per class; the depot keeps
 * at most XI_DEPOT_MAX magazines per class and frees the rest. A thread's
 * lists go to the depot when it exits (a pthread key destructor);
 * xi_mem_trim empties the depot.
 *
 * Free blocks are linked through their first word; a magazine in the depot
 * is linked to the next one through its first block's second word. Under
 * AddressSanitizer the rest of a cached block is poisoned, so a use after
 * free past its first XI_LINK_BYTES is still reported.
 */
#include "alloc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#ifdef XO_USE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#define XI_DEPOT_MAX 64

const uint32_t xi_class_size[XI_NCLASS] = { 16,  32,  48,  64,  80,  96,
                                            112, 128, 160, 192, 224, 256 };

_Static_assert(XI_CACHE_MAX == 256, "the class table ends at XI_CACHE_MAX");
_Static_assert(XI_LINK_BYTES <= 16, "the smallest class holds both links");

__thread struct xi_tcache xi_tc __attribute__((tls_model("initial-exec")));

enum { TC_NEW = 0, TC_LIVE, TC_DEAD };

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

static inline void *link_get(void *block, unsigned word)
{
    return ((void **)block)[word];
}

static inline void link_set(void *block, unsigned word, void *v)
{
    ((void **)block)[word] = v;
}

static void free_list(void *head, uint32_t size)
{
    while (head != NULL) {
        void *next = link_get(head, 0);
        XI_UNPOISON(head, size);
        backend_free(head, size);
        head = next;
    }
}

/* ---- the depot ------------------------------------------------------ */

struct depot {
    pthread_mutex_t lock;
    void *mags;     /* first blocks of full magazines, linked by word 1 */
    unsigned count;
};

static struct depot depots[XI_NCLASS] = {
#define D { PTHREAD_MUTEX_INITIALIZER, NULL, 0 }
    D, D, D, D, D, D, D, D, D, D, D, D
#undef D
};

/* Give a full magazine to the depot (or back to the backend when the
   depot holds its maximum). */
static void depot_put(unsigned c, void *mag)
{
    struct depot *d = &depots[c];
    pthread_mutex_lock(&d->lock);
    if (d->count < XI_DEPOT_MAX) {
        link_set(mag, 1, d->mags);
        d->mags = mag;
        d->count++;
        mag = NULL;
    }
    pthread_mutex_unlock(&d->lock);
    if (mag != NULL)
        free_list(mag, xi_class_size[c]);
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

size_t xi_mem_depot_blocks(void)
{
    size_t n = 0;
    for (unsigned c = 0; c < XI_NCLASS; c++) {
        pthread_mutex_lock(&depots[c].lock);
        n += (size_t)depots[c].count * XI_MAG;
        pthread_mutex_unlock(&depots[c].lock);
    }
    return n;
}

void xi_mem_trim(void)
{
    for (unsigned c = 0; c < XI_NCLASS; c++) {
        struct depot *d = &depots[c];
        pthread_mutex_lock(&d->lock);
        void *mags = d->mags;
        d->mags = NULL;
        d->count = 0;
        pthread_mutex_unlock(&d->lock);
        while (mags != NULL) {
            void *next = link_get(mags, 1);
            free_list(mags, xi_class_size[c]);
            mags = next;
        }
    }
}

/* ---- the thread cache's slow paths -------------------------------- */

static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;
static bool tc_key_ok;

/* Thread exit: full magazines go to the depot, partial lists to the
   backend; later frees on this thread bypass the cache. */
static void tc_release(void *unused)
{
    (void)unused;
    xi_tc.state = TC_DEAD;
    xi_tc.limit = 0;
    for (unsigned c = 0; c < XI_NCLASS; c++) {
        struct xi_tc_list *ls[2] = { &xi_tc.cur[c], &xi_tc.spare[c] };
        for (unsigned i = 0; i < 2; i++) {
            if (ls[i]->n == XI_MAG)
                depot_put(c, ls[i]->head);
            else
                free_list(ls[i]->head, xi_class_size[c]);
            ls[i]->head = NULL;
            ls[i]->n = 0;
        }
    }
}

/* fork: the child gets the depot's mutexes unlocked and consistent (a
   thread of the parent may have held one at the fork). */
static void depot_lock_all(void)
{
    for (unsigned c = 0; c < XI_NCLASS; c++)
        pthread_mutex_lock(&depots[c].lock);
}

static void depot_unlock_all(void)
{
    for (unsigned c = XI_NCLASS; c-- > 0;)
        pthread_mutex_unlock(&depots[c].lock);
}

static void tc_key_create(void)
{
    tc_key_ok = pthread_key_create(&tc_key, tc_release) == 0;
    pthread_atfork(depot_lock_all, depot_unlock_all, depot_unlock_all);
}

/* First use on this thread: arrange for tc_release at its exit. Without
   a key the thread does not cache (nothing would return its blocks). */
static bool tc_live(void)
{
    if (xi_tc.state == TC_NEW) {
        pthread_once(&tc_once, tc_key_create);
        if (tc_key_ok && pthread_setspecific(tc_key, &xi_tc) == 0) {
            xi_tc.state = TC_LIVE;
            xi_tc.limit = XI_MAG;
        } else {
            xi_tc.state = TC_DEAD;
        }
    }
    return xi_tc.state == TC_LIVE;
}

/* The lists are empty and so is the depot: take a magazine's worth from
   the backend at once (so that the depot is asked once per XI_MAG
   allocations, not on each) and keep all but the one returned. The list
   keeps the backend's order: it hands out consecutive addresses, and a
   queue of messages read in address order is what the hardware prefetcher
   streams best once a backlog has left the cache. */
static void *refill(unsigned c)
{
    const uint32_t size = xi_class_size[c];
    void *p = backend_alloc(size, false);
    if (p == NULL)
        return NULL;
    struct xi_tc_list *l = &xi_tc.cur[c];
    void *last = NULL;
    for (unsigned i = 1; i < XI_MAG; i++) {
        void *b = backend_alloc(size, false);
        if (b == NULL)
            break;
        xi_tc_poison(b, c);
        link_set(b, 0, NULL);
        if (last == NULL)
            l->head = b;
        else
            link_set(last, 0, b);
        last = b;
        l->n++;
    }
    return p;
}

/* The list for class c is empty (or the thread is new). */
static void *cache_alloc(unsigned c, size_t size)
{
    struct xi_tc_list *l = &xi_tc.cur[c];
    if (l->n == 0) {
        if (!tc_live())
            return backend_alloc(xi_class_size[c], false);
        if (xi_tc.spare[c].n != 0) {
            *l = xi_tc.spare[c];
            xi_tc.spare[c].head = NULL;
            xi_tc.spare[c].n = 0;
        } else {
            void *mag = depot_get(c);
            if (mag == NULL)
                return refill(c); /* straight from the backend: unpoisoned */
            l->head = mag;
            l->n = XI_MAG;
        }
    }
    return xi_tc_pop(l, size);
}

static int injected_failure(struct xi_allocator *a)
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

void *xi_mem_alloc_slow(struct xi_allocator *a, size_t size)
{
    if (injected_failure(a))
        return NULL;
    if (size == 0)
        size = 1;
    if (size <= XI_CACHE_MAX)
        return cache_alloc(xi_size_class(size), size);
    return backend_alloc(size, false);
}

void xi_mem_free_slow(void *p, size_t size)
{
    if (p == NULL)
        return;
    if (size == 0)
        size = 1;
    if (size > XI_CACHE_MAX) {
        backend_free(p, size);
        return;
    }
    unsigned c = xi_size_class(size);
    if (!tc_live()) {
        backend_free(p, xi_class_size[c]);
        return;
    }
    struct xi_tc_list *l = &xi_tc.cur[c];
    if (l->n == XI_MAG) {
        if (xi_tc.spare[c].n != 0)
            depot_put(c, xi_tc.spare[c].head);
        xi_tc.spare[c] = *l;
        l->head = NULL;
        l->n = 0;
    }
    xi_tc_push(l, c, p);
}

/* ---- the rest of the interface --------------------------------------- */

void xi_mem_init(struct xi_allocator *a)
{
    atomic_init(&a->fail_countdown, 0);
}

void xi_mem_fail_after(struct xi_allocator *a, long n)
{
    /* relaxed: a test arms the hook before the operation it tests, on the
       same thread or before starting the threads that allocate. */
    atomic_store_explicit(&a->fail_countdown, n < 0 ? 0 : n,
                          memory_order_relaxed);
}

void *xi_mem_zalloc_aligned(struct xi_allocator *a, size_t size,
                            size_t align)
{
    if (injected_failure(a))
        return NULL;
#ifdef XO_USE_JEMALLOC
    return mallocx(size, MALLOCX_ALIGN(align) | MALLOCX_ZERO);
#else
    void *p = aligned_alloc(align, (size + align - 1) & ~(align - 1));
    if (p != NULL)
        memset(p, 0, size);
    return p;
#endif
}

void xi_mem_free_aligned(void *p, size_t size, size_t align)
{
    if (p == NULL)
        return;
#ifdef XO_USE_JEMALLOC
    sdallocx(p, size, MALLOCX_ALIGN(align));
#else
    (void)size;
    (void)align;
    free(p);
#endif
}

char *xi_mem_strdup(struct xi_allocator *a, const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = xi_mem_alloc(a, len);
    if (copy != NULL)
        memcpy(copy, s, len);
    return copy;
}

void xi_mem_free_str(struct xi_allocator *a, char *s)
{
    if (s != NULL)
        xi_mem_free(a, s, strlen(s) + 1);
}

void *xi_mem_zalloc(struct xi_allocator *a, size_t size)
{
    if (size - 1 >= XI_CACHE_MAX) {
        if (injected_failure(a))
            return NULL;
        return backend_alloc(size ? size : 1, true);
    }
    void *p = xi_mem_alloc(a, size);
    if (p != NULL)
        memset(p, 0, size);
    return p;
}
