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

static inline void xo_rcu_synchronize(void *sync)
{
    urcu_bp_synchronize_rcu();
    XO_TSAN_ACQUIRE(sync);
    (void)sync;
}

/* Wait until every call_rcu callback queued so far has run. */
static inline void xo_rcu_barrier(void *sync)
{
    urcu_bp_barrier();
    XO_TSAN_ACQUIRE(sync);
    (void)sync;
}

/* Callbacks must start with XO_TSAN_ACQUIRE(sync) of their runtime. */
static inline void xo_rcu_defer(struct rcu_head *head,
                                void (*fn)(struct rcu_head *))
{
    urcu_bp_call_rcu(head, fn);
}

#endif /* XO_RUNTIME_RCU_H */
