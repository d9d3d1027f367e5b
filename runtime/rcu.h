/*
 * rcu -- the runtime's one reclamation mechanism: liburcu's "bulletproof"
 * flavour (urcu-bp), which registers each thread on its first read-side
 * section. That matters for a library: any application thread may call
 * xo_tell without joining anything first.
 *
 * What it protects: the resolution of a ref to an actor cell (slot table ->
 * cell, then the send into its mailbox), uid lookups in the rculfhash
 * registry, and the `closing` flag that makes sends fail once stop began.
 * An updater unpublishes (slot->cell = NULL, hash-table delete), then waits
 * a grace period (synchronize or call_rcu) before the next step: after it,
 * no reader can still hold what was removed.
 *
 * ThreadSanitizer cannot see liburcu's synchronisation (an uninstrumented
 * library, ordered by membarrier). Under TSan every read-side unlock
 * releases, and every grace-period end acquires, one per-runtime sync word:
 * this tells TSan exactly the guarantee RCU gives (all reader sections that
 * could have seen an object happen before its reclamation), no more.
 */
#ifndef XO_RUNTIME_RCU_H
#define XO_RUNTIME_RCU_H

#include <stdbool.h>
#include <stddef.h>

#include <urcu-bp.h>
#include <urcu/rculfhash.h>

#if defined(__SANITIZE_THREAD__)
#define XO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define XO_TSAN 1
#endif
#endif

#ifdef XO_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define XO_TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#define XO_TSAN_RELEASE(p) __tsan_release((void *)(p))
#else
#define XO_TSAN_ACQUIRE(p) ((void)(p))
#define XO_TSAN_RELEASE(p) ((void)(p))
#endif

static inline void xo_rcu_lock(void)
{
    urcu_bp_read_lock();
}

/* sync: the per-runtime TSan sync word (unused otherwise). */
static inline void xo_rcu_unlock(void *sync)
{
    XO_TSAN_RELEASE(sync);
    (void)sync;
    urcu_bp_read_unlock();
}

/*
 * Turn sections. A worker runs each handler turn (an actor's turn, a
 * stateless task) inside one read-side section, so that the sends the
 * handler makes need none of their own: a producer that sends ten million
 * messages from one turn enters and leaves RCU once, not ten million times
 * (urcu-bp's read lock is a call into the shared library and two lookups
 * of its thread-local reader through __tls_get_addr).
 *
 * xo_rcu_turn_sync is the sync word of the runtime whose turn holds the
 * section on this thread (NULL: none). A section is only good for that
 * runtime's objects as far as ThreadSanitizer's model goes (the release
 * at its end is on that runtime's word), so sends to another runtime take
 * their own.
 *
 * A turn section must never be held across a wait: a grace period waits
 * for every reader, so a handler that sleeps inside one would hold up
 * every xo_rcu_synchronize (and would deadlock one it made itself).
 * xo_rcu_turn_suspend leaves it before a wait and xo_rcu_turn_resume
 * enters it again after; the waits of the runtime (futex waits, blocking
 * waits in handlers, grace periods) do this themselves.
 */
extern __thread void *xo_rcu_turn_sync
    __attribute__((tls_model("initial-exec"), visibility("hidden")));

static inline void xo_rcu_turn_begin(void *sync)
{
    xo_rcu_lock();
    xo_rcu_turn_sync = sync;
}

static inline void xo_rcu_turn_end(void *sync)
{
    xo_rcu_turn_sync = NULL;
    xo_rcu_unlock(sync);
}

/* Returns what xo_rcu_turn_resume needs (NULL when no turn section was
   held). */
static inline void *xo_rcu_turn_suspend(void)
{
    void *sync = xo_rcu_turn_sync;
    if (sync != NULL)
        xo_rcu_turn_end(sync);
    return sync;
}

static inline void xo_rcu_turn_resume(void *sync)
{
    if (sync != NULL)
        xo_rcu_turn_begin(sync);
}

/* A read-side section for the runtime of `sync`, unless this thread's turn
   already holds one for it. Pass the result to xo_rcu_leave. */
static inline bool xo_rcu_enter(void *sync)
{
    if (xo_rcu_turn_sync == sync)
        return false;
    xo_rcu_lock();
    return true;
}

static inline void xo_rcu_leave(void *sync, bool entered)
{
    if (entered)
        xo_rcu_unlock(sync);
}

static inline void xo_rcu_synchronize(void *sync)
{
    void *turn = xo_rcu_turn_suspend();
    urcu_bp_synchronize_rcu();
    XO_TSAN_ACQUIRE(sync);
    (void)sync;
    xo_rcu_turn_resume(turn);
}

/* Wait until every call_rcu callback queued so far has run. */
static inline void xo_rcu_barrier(void *sync)
{
    void *turn = xo_rcu_turn_suspend();
    urcu_bp_barrier();
    XO_TSAN_ACQUIRE(sync);
    (void)sync;
    xo_rcu_turn_resume(turn);
}

/* Callbacks must start with XO_TSAN_ACQUIRE(sync) of their runtime. */
static inline void xo_rcu_defer(struct rcu_head *head,
                                void (*fn)(struct rcu_head *))
{
    urcu_bp_call_rcu(head, fn);
}

#endif /* XO_RUNTIME_RCU_H */
