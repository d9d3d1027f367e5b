/*
 * rcu -- the runtime's reclamation and publication mechanism: liburcu's
 * "bulletproof" flavour (urcu-bp), which registers each thread on its first
 * read-side section, plus short "send sections" for the runtime's own
 * worker threads.
 *
 * What it protects: the resolution of a ref to an actor cell (slot table ->
 * cell, then the push into its mailbox), uid lookups in the rculfhash
 * registry, the walk of the wait-for graph, and the `closing` flag that makes
 * sends fail once stop began. An updater unpublishes (slot->cell = NULL or
 * marked dying, hash-table delete), then waits a grace period before the
 * next step: after it, no reader can still hold what was removed.
 *
 * Read-side sections are short: one send, one lookup, one walk. None spans
 * a handler, so a grace period never waits for user code: a handler that
 * runs for seconds does not hold up a destroy, a pool removal or the
 * reclamation of anything else (docs/scheduler.md, "Sections").
 *
 * Send sections. A worker sends many messages per handler, and urcu-bp's
 * read lock costs a call into the shared library and two lookups of its
 * thread-local reader. So a worker thread sending to its own runtime marks
 * its section in a word of its own instead (struct xi_reader): odd while
 * inside, even outside, written only by the worker with plain stores. The
 * grace period's side pays instead: after the unpublish it makes every
 * thread of the process execute a full memory barrier (membarrier,
 * MEMBARRIER_CMD_PRIVATE_EXPEDITED), then waits, per worker, until a section
 * it saw open has closed. After the barrier, a section that was not yet
 * open when it ran sees the unpublish; one that was open is waited for.
 * Where the kernel refuses membarrier, each section's entry issues the full
 * barrier itself. This is the asymmetric-barrier scheme of liburcu's own
 * readers, for the one read path that is hot.
 *
 * A grace period therefore has two halves: xi_rcu_synchronize (urcu-bp:
 * other threads, lookups, walks) and xi_readers_wait over the runtime's
 * workers (sends from workers). xi_grace_wait in runtime.h does both.
 *
 * ThreadSanitizer cannot see liburcu's synchronisation (an uninstrumented
 * library, ordered by membarrier), nor membarrier. Under TSan every
 * read-side exit releases, and every grace-period end acquires, one
 * per-runtime sync word: this tells TSan exactly the guarantee RCU gives
 * (all reader sections that could have seen an object happen before its
 * reclamation), no more. TSan builds also issue the full barrier at each
 * section entry instead of relying on membarrier.
 */
#ifndef XI_RUNTIME_RCU_H
#define XI_RUNTIME_RCU_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <urcu-bp.h>
#include <urcu/rculfhash.h>

#if defined(__SANITIZE_THREAD__)
#define XI_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define XI_TSAN 1
#endif
#endif

#ifdef XI_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define XI_TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#define XI_TSAN_RELEASE(p) __tsan_release((void *)(p))
#else
#define XI_TSAN_ACQUIRE(p) ((void)(p))
#define XI_TSAN_RELEASE(p) ((void)(p))
#endif

static inline void xi_rcu_lock(void)
{
    urcu_bp_read_lock();
}

/* sync: the per-runtime TSan sync word (unused otherwise). */
static inline void xi_rcu_unlock(void *sync)
{
    XI_TSAN_RELEASE(sync);
    (void)sync;
    urcu_bp_read_unlock();
}

static inline void xi_rcu_synchronize(void *sync)
{
    urcu_bp_synchronize_rcu();
    XI_TSAN_ACQUIRE(sync);
    (void)sync;
}

/* Wait until every call_rcu callback queued so far has run. */
static inline void xi_rcu_barrier(void *sync)
{
    urcu_bp_barrier();
    XI_TSAN_ACQUIRE(sync);
    (void)sync;
}

/* Callbacks must start with XI_TSAN_ACQUIRE(sync) of their runtime, and,
   when they rely on sends being over, xi_readers_wait over its workers. */
static inline void xi_rcu_defer(struct rcu_head *head,
                                void (*fn)(struct rcu_head *))
{
    urcu_bp_call_rcu(head, fn);
}

/* ---- send sections ------------------------------------------------- */

/*
 * One per worker thread, on a line that thread writes. `domain` is the
 * sync word of the runtime the worker belongs to: a section is only taken
 * this way for that runtime's objects (the grace period of another
 * runtime does not look at this worker).
 */
struct xi_reader {
    _Atomic uint64_t seq; /* odd: inside a section. Written by its thread. */
    void *domain;
};

/* The calling thread's reader, if it is a worker (NULL otherwise). */
extern __thread struct xi_reader *xi_tls_reader
    __attribute__((tls_model("initial-exec"), visibility("hidden")));

/* True where membarrier is refused (and under TSan): each section entry
   then issues the full barrier itself. Set once by xi_rcu_init. */
extern bool xi_readers_fence __attribute__((visibility("hidden")));

/* Once per process, before the first section: ask for membarrier. */
void xi_rcu_init(void);

/* What xi_section_enter entered, for xi_section_leave: the calling
   worker's reader, or one of these. */
#define XI_SECT_NESTED ((struct xi_reader *)0) /* a section was open */
#define XI_SECT_URCU ((struct xi_reader *)1)   /* urcu-bp's read lock */

/* Enter a read-side section for the runtime of `sync`; pass the result to
   xi_section_leave. Cheap on that runtime's workers, urcu-bp elsewhere. */
static inline struct xi_reader *xi_section_enter(void *sync)
{
    struct xi_reader *r = xi_tls_reader;
    if (r != NULL && r->domain == sync) {
        /* relaxed: only this thread writes seq. */
        uint64_t s = atomic_load_explicit(&r->seq, memory_order_relaxed);
        if (s & 1)
            return XI_SECT_NESTED;
        /* relaxed: ordered before the section's loads by the barrier
           below, or by the updater's membarrier (see above). */
        atomic_store_explicit(&r->seq, s + 1, memory_order_relaxed);
        if (xi_readers_fence)
            atomic_thread_fence(memory_order_seq_cst);
        else
            atomic_signal_fence(memory_order_seq_cst);
        return r;
    }
    xi_rcu_lock();
    return XI_SECT_URCU;
}

static inline void xi_section_leave(void *sync, struct xi_reader *r)
{
    if (r > XI_SECT_URCU) {
        XI_TSAN_RELEASE(sync);
        /* release: pairs with the updater's acquire in xi_reader_wait;
           the section's accesses happen before it sees seq even. */
        atomic_store_explicit(
            &r->seq, atomic_load_explicit(&r->seq, memory_order_relaxed) + 1,
            memory_order_release);
    } else if (r == XI_SECT_URCU) {
        xi_rcu_unlock(sync);
    }
}

/* Updater, after unpublishing: the full barrier on every thread (once per
   grace period, before the xi_reader_wait calls). */
void xi_readers_barrier(void);

/* Updater, after xi_readers_barrier: until r is outside the section it was
   in (if any). Never from r's own thread inside a section. */
void xi_reader_wait(struct xi_reader *r);

#endif /* XI_RUNTIME_RCU_H */
