/*
 * ring.h -- the bounded queue from the senders to the I/O thread: one per
 * peer, Concurrency Kit's ck_ring in its many-producers, one-consumer form
 * (a CAS to claim a slot, a store to publish it in order), holding
 * 16-byte entries: which actor a chain goes to, and the chain. Its bound
 * is what keeps a slow peer from taking a sender's memory: a full ring
 * refuses (XO_EFULL) instead of growing.
 *
 * Concurrency contract: xi_ring_push from any thread, any number at once
 * (lock-free; a producer that claimed a slot publishes it before a later
 * claimer can publish its own); xi_ring_pop and xi_ring_count from the
 * I/O thread only. A push happens before the pop that returns its entry
 * (ck_ring's own fences).
 *
 * ThreadSanitizer does not see ck_ring's synchronisation (volatile
 * accesses and fences). Under TSan the ring's functions are compiled out
 * of line in ring.c without TSan's instrumentation, and the push releases
 * and the pop acquires the ring for TSan: exactly the order ck_ring gives.
 */
#ifndef XI_NET_RING_H
#define XI_NET_RING_H

#include <stdbool.h>
#include <stdint.h>

#include <ck_ring.h>

struct xi_envelope;

struct xi_sendq_entry {
    uint64_t to;                /* the receiving actor, or an XI_SQ_* op
                                   (node bits 0, see net.h) */
    struct xi_envelope *first;  /* the chain; its last link is NULL */
};

CK_RING_PROTOTYPE(xi_sendq, xi_sendq_entry)

struct xi_ring {
    ck_ring_t ring;
    struct xi_sendq_entry *buf;
};

/* XI_RING_OUT_OF_LINE: set by CMakeLists.txt for the TSan build. */
#ifdef XI_RING_OUT_OF_LINE
bool xi_ring_push_raw(struct xi_ring *r, const struct xi_sendq_entry *e);
bool xi_ring_pop_raw(struct xi_ring *r, struct xi_sendq_entry *e);
unsigned xi_ring_count_raw(struct xi_ring *r);
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);

static inline bool xi_ring_push(struct xi_ring *r,
                                const struct xi_sendq_entry *e)
{
    __tsan_release(r);
    return xi_ring_push_raw(r, e);
}

static inline bool xi_ring_pop(struct xi_ring *r, struct xi_sendq_entry *e)
{
    bool got = xi_ring_pop_raw(r, e);
    if (got)
        __tsan_acquire(r);
    return got;
}

static inline unsigned xi_ring_count(struct xi_ring *r)
{
    return xi_ring_count_raw(r);
}
#else
static inline bool xi_ring_push(struct xi_ring *r,
                                const struct xi_sendq_entry *e)
{
    return ck_ring_enqueue_mpsc_xi_sendq(&r->ring, r->buf,
                                         (struct xi_sendq_entry *)e);
}

static inline bool xi_ring_pop(struct xi_ring *r, struct xi_sendq_entry *e)
{
    return ck_ring_dequeue_mpsc_xi_sendq(&r->ring, r->buf, e);
}

static inline unsigned xi_ring_count(struct xi_ring *r)
{
    return ck_ring_size(&r->ring);
}
#endif

/* size: a power of two, at least 4 (one slot stays empty: size - 1
   entries fit). buf: size entries. Before any other thread has r. */
static inline void xi_ring_init(struct xi_ring *r, unsigned size,
                                struct xi_sendq_entry *buf)
{
    ck_ring_init(&r->ring, size);
    r->buf = buf;
}

#endif /* XI_NET_RING_H */
