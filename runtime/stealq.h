/*
 * stealq -- a worker's local queue of runnable movable actors: a bounded
 * ring that its owner fills and empties at the two ends (FIFO) and that
 * idle workers take from too (docs/scheduler.md, "Locality").
 *
 * Concurrency contract
 *   push:        the owner worker only (single producer); wait-free: one
 *                load of head, two stores. Fails when the ring is full.
 *   pop, steal:  any thread (the owner and thieves); lock-free: one CAS on
 *                head per success, retried when another consumer moved it.
 *   len:         any thread, a snapshot.
 *
 * Why not mpscq: a run queue has one consumer, so nothing could take an
 * actor from a busy worker. Why not Concurrency Kit's ck_ring (SPMC has
 * the same shape): its indexes are read and written through ck_pr's
 * inline assembly and fences, which ThreadSanitizer cannot see, so every
 * hand-off through it would be reported as a race and hide real ones. This
 * ring is the same design in C11 atomics, with orderings TSan checks.
 *
 * Why a consumer can read a slot before its CAS: the owner writes slot i
 * again only once i + XI_STEALQ_SIZE < tail, that is once head passed i;
 * a consumer whose CAS of head from h succeeds read slots [h, h + n) while
 * head was still h, so none of them had been written again. One whose CAS
 * fails drops what it read. The 32-bit indexes wrap; a consumer would
 * have to stall for 2^32 pushes between its read and its CAS to be
 * fooled.
 *
 * Layout: head (consumers) and tail (the owner) sit on separate lines, so
 * a thief's CAS does not take the line the owner's next push writes; the
 * owner reads head only to see whether the ring is full.
 */
#ifndef XI_RUNTIME_STEALQ_H
#define XI_RUNTIME_STEALQ_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common.h"
#include "envelope.h"

#define XI_STEALQ_SIZE 256u /* a power of two */

struct xi_stealq {
    alignas(XI_CACHELINE) _Atomic uint32_t head; /* next to take */
    alignas(XI_CACHELINE) _Atomic uint32_t tail; /* next to fill */
    _Atomic(struct xi_item *) slot[XI_STEALQ_SIZE];
};

static inline void xi_stealq_init(struct xi_stealq *q)
{
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    for (unsigned i = 0; i < XI_STEALQ_SIZE; i++)
        atomic_init(&q->slot[i], NULL);
}

/* Owner: append it. Returns the items in the ring now, it included (a
   snapshot), or 0 when the ring is full (the caller queues it
   elsewhere). */
static inline uint32_t xi_stealq_push(struct xi_stealq *q,
                                      struct xi_item *it)
{
    /* relaxed: only the owner writes tail. */
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    /* acquire: pairs with the consumers' acq_rel CAS, so their reads of
       the slots they took happen before we write those slots again. */
    uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    if (t - h >= XI_STEALQ_SIZE)
        return 0;
    /* relaxed: published by the release store of tail. */
    atomic_store_explicit(&q->slot[t & (XI_STEALQ_SIZE - 1)], it,
                          memory_order_relaxed);
    /* release: a consumer that loads the new tail with acquire sees the
       slot and the item's contents. */
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return t + 1 - h;
}

/* Items in the ring now (any thread; a snapshot that may be stale). */
static inline uint32_t xi_stealq_len(struct xi_stealq *q)
{
    /* relaxed: a hint; every decision on it is checked again by the CAS
       of a take. */
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint32_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    return t - h;
}

/*
 * Take up to `max` items from the front into out[] (any thread). `half`:
 * take half of what is there, rounded up (a thief's share). Returns how
 * many were taken (0: empty).
 */
static inline unsigned xi_stealq_take(struct xi_stealq *q,
                                      struct xi_item **out, unsigned max,
                                      bool half)
{
    /* acquire: pairs with the CAS of other consumers (nothing to read
       behind it but their progress). */
    uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    for (;;) {
        /* acquire: pairs with the owner's release store of tail: the
           slots below it, and the items they point to, are visible. */
        uint32_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
        uint32_t n = t - h;
        if (n == 0)
            return 0;
        if (n > XI_STEALQ_SIZE) { /* h is stale: others took meanwhile */
            h = atomic_load_explicit(&q->head, memory_order_acquire);
            continue;
        }
        if (half)
            n = (n + 1) / 2;
        if (n > max)
            n = max;
        for (uint32_t i = 0; i < n; i++)
            /* relaxed: ordered by the acquire load of tail above. */
            out[i] = atomic_load_explicit(
                &q->slot[(h + i) & (XI_STEALQ_SIZE - 1)],
                memory_order_relaxed);
        /* acq_rel: the release half orders our slot reads before the
           owner's reuse of them (its acquire load of head); on failure
           h is reloaded (acquire) and we try again. */
        if (atomic_compare_exchange_weak_explicit(&q->head, &h, h + n,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire))
            return n;
    }
}

/* One item from the front, or NULL (any thread). */
static inline struct xi_item *xi_stealq_pop(struct xi_stealq *q)
{
    struct xi_item *it;
    return xi_stealq_take(q, &it, 1, false) ? it : NULL;
}

#endif /* XI_RUNTIME_STEALQ_H */
