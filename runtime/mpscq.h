/*
 * mpscq -- the one queue of the runtime: an intrusive multi-producer,
 * single-consumer FIFO (Vyukov's node-based design, with a stub node), used
 * for actor mailboxes and for worker run queues alike.
 *
 * Concurrency contract
 *   push / push_chain: any thread, any number at once; wait-free (one
 *                      atomic exchange and one store).
 *   pop / mark_idle:   the single consumer only.
 *
 * The idle mark. The low bit of `head` means "the consumer found this queue
 * empty and went away". The consumer sets it with one CAS (mark_idle) when
 * it sees the queue empty; the producer whose exchange returns a marked
 * value is the one that brings the consumer back (schedules the actor, or
 * wakes the worker). Because the mark lives in the word every producer
 * exchanges anyway, a push stays one atomic exchange and exactly one
 * producer sees each mark: no lost wake-ups, no duplicate scheduling.
 *
 * A pushed node becomes visible to pop once its predecessor's `next` link is
 * stored. Between a producer's exchange and that store, pop may report
 * "empty" while the queue is not: mark_idle then fails (head moved), and the
 * consumer keeps the queue scheduled and comes back.
 */
#ifndef XI_RUNTIME_MPSCQ_H
#define XI_RUNTIME_MPSCQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

struct xi_qnode {
    _Atomic(struct xi_qnode *) next;
};

/*
 * Layout. The queue is split in two: this struct is the producers' end
 * (head, and the stub whose link the producer that finds the queue empty
 * writes), and the consumer's end is a separate `tail` pointer that the
 * owner of the queue places at least a cache line away from head. Only
 * the consumer writes tail, on every pop; with tail beside head every push
 * would first have to take the line back from a consumer that is draining
 * the queue. Kept apart, a producer and a consumer working through a
 * backlog share no line but the nodes themselves, and a hand-off to an
 * idle consumer still moves one line (head and stub together).
 */
struct xi_mpscq {
    /* Producers' end: the last node pushed, low bit = idle mark. */
    _Atomic uintptr_t head;
    struct xi_qnode stub;
};

#define XI_MPSCQ_IDLE ((uintptr_t)1)

/* The queue starts empty; `idle` says whether it starts marked idle.
   *tail is the consumer's end (see Layout). */
static inline void xi_mpscq_init(struct xi_mpscq *q, struct xi_qnode **tail,
                                 bool idle)
{
    atomic_init(&q->stub.next, NULL);
    *tail = &q->stub;
    atomic_init(&q->head, (uintptr_t)&q->stub | (idle ? XI_MPSCQ_IDLE : 0));
}

/*
 * Push the chain first..last (already linked through `next`; last->next is
 * set to NULL here). Returns true when the queue was marked idle: the caller
 * now owns bringing the consumer back.
 */
static inline bool xi_mpscq_push_chain(struct xi_mpscq *q,
                                       struct xi_qnode *first,
                                       struct xi_qnode *last)
{
    /* relaxed: published by the release exchange below. */
    atomic_store_explicit(&last->next, NULL, memory_order_relaxed);
    /* acq_rel: release publishes the chain's contents (and last->next) to
       whoever reads head after us; acquire pairs with mark_idle's release
       CAS, so a producer that sees the mark also sees everything the
       consumer did before going idle. */
    uintptr_t prev = atomic_exchange_explicit(&q->head, (uintptr_t)last,
                                              memory_order_acq_rel);
    struct xi_qnode *p = (struct xi_qnode *)(prev & ~XI_MPSCQ_IDLE);
    /* release: pairs with the acquire load of `next` in pop; makes the
       chain's contents visible to the consumer that follows the link. */
    atomic_store_explicit(&p->next, first, memory_order_release);
    return (prev & XI_MPSCQ_IDLE) != 0;
}

static inline bool xi_mpscq_push(struct xi_mpscq *q, struct xi_qnode *n)
{
    return xi_mpscq_push_chain(q, n, n);
}

/*
 * Consumer only. Take the oldest node, or NULL when the queue is empty or a
 * producer is between its exchange and its link store. The node returned is
 * fully detached: the caller may free or re-push it at once.
 */
static inline struct xi_qnode *xi_mpscq_pop(struct xi_mpscq *q,
                                            struct xi_qnode **tailp)
{
    struct xi_qnode *tail = *tailp;
    /* acquire: pairs with the release link store in push. */
    struct xi_qnode *next =
        atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &q->stub) {
        if (next == NULL)
            return NULL;
        *tailp = next;
        tail = next;
        /* acquire: pairs with the release link store in push. */
        next = atomic_load_explicit(&tail->next, memory_order_acquire);
    }
    if (next != NULL) {
        *tailp = next;
        return tail;
    }
    /* tail is the last linked node. If a producer already exchanged head
       past it, its link is on the way: report empty for now. acquire:
       pairs with the producers' exchange. */
    uintptr_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    if ((struct xi_qnode *)(head & ~XI_MPSCQ_IDLE) != tail)
        return NULL;
    /* Re-insert the stub behind tail so tail can be handed out detached.
       The queue is not idle-marked while its consumer runs, so the
       returned mark is always false here. */
    (void)xi_mpscq_push(q, &q->stub);
    /* acquire: pairs with the release link store in push. */
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next != NULL) {
        *tailp = next;
        return tail;
    }
    return NULL;
}

/*
 * Consumer only: if the queue is empty, mark it idle and return true (the
 * next producer will bring the consumer back). Returns false when a node is
 * present or on its way: the consumer must keep the queue scheduled.
 */
static inline bool xi_mpscq_mark_idle(struct xi_mpscq *q,
                                      struct xi_qnode *tail)
{
    if (tail != &q->stub ||
        /* acquire: pairs with the release link store in push. */
        atomic_load_explicit(&q->stub.next, memory_order_acquire) != NULL)
        return false;
    uintptr_t expected = (uintptr_t)&q->stub;
    /* release: pairs with the acquire half of the producers' exchange, so
       the producer that takes the mark sees the consumer's last writes
       (the actor's state, for mailboxes). */
    return atomic_compare_exchange_strong_explicit(
        &q->head, &expected, expected | XI_MPSCQ_IDLE, memory_order_acq_rel,
        memory_order_acquire);
}

/* Consumer only: true when nothing is queued or on its way. */
static inline bool xi_mpscq_empty(struct xi_mpscq *q, struct xi_qnode *tail)
{
    /* acquire: pairs with the producers' exchange on head. */
    uintptr_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    return tail == &q->stub &&
           (struct xi_qnode *)(head & ~XI_MPSCQ_IDLE) == &q->stub;
}

#endif /* XI_RUNTIME_MPSCQ_H */
