/*
 * runtime.h -- the runtime object, and the one header a file of runtime/
 * includes to reach every module's interface. Nothing here is part of the
 * public API. docs/architecture.md draws the modules as layers and names
 * the seams between them.
 *
 * Object map
 *   xo_runtime   one per xo_runtime_start: config, allocator, ref table,
 *                uid registry, the pool table, the stop protocol, hooks.
 *   xi_pool      one per pool (pool.h): index, kind and its operations,
 *                state, labels, live actors; runs on one
 *   xi_worker    (worker.h): a thread, its run queue (an mpscq whose idle
 *                mark means "asleep"), watches, timers, frames.
 *   xi_cell      one per actor (cell.h): its mailbox (an mpscq whose idle
 *                mark means "not scheduled"), definition, generation,
 *                state, spawn argument.
 *   xi_envelope  one per message (envelope.h): queue link, xo_msg_t,
 *                payload.
 *   xo_future    one per call or batch (call.h); its items are the
 *                callee's requests.
 */
#ifndef XI_RUNTIME_RUNTIME_H
#define XI_RUNTIME_RUNTIME_H

#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xoscar/xoscar.h"
#include "../alloc/alloc.h"
#include "actor.h"
#include "call.h"
#include "cell.h"
#include "clock.h"
#include "common.h"
#include "envelope.h"
#include "http.h"
#include "mpscq.h"
#include "pool.h"
#include "rcu.h"
#include "recovery.h"
#include "registry.h"
#include "shm.h"
#include "slots.h"
#include "stats.h"
#include "timer.h"
#include "trace.h"
#include "turn.h"
#include "wait.h"
#include "watchdog.h"
#include "worker.h"

enum { XI_RT_RUNNING = 0, XI_RT_CLOSING = 1, XI_RT_STOPPED = 2 };

struct xi_gpu;

/*
 * The route seam: the push point (xi_enqueue_chain) hands it every chain
 * whose ref names another node, with ownership (0: taken; an error: the
 * caller keeps the chain). The net layer sets it; NULL: such refs name no
 * actor (XO_ENOTEXIST).
 */
typedef int (*xi_route_fn)(xo_runtime_t *rt, xo_ref_t to,
                           struct xi_envelope *first,
                           struct xi_envelope *last, void *arg);

struct xo_runtime {
    /* Read on every send: keep it with the other read-mostly fields.
       XI_RT_*; set to CLOSING once by stop, inside no read-side section;
       read by senders inside one (rcu.h explains why that suffices). */
    _Atomic int state;
    /* The trace records (trace.h): read by every hook, beside state. */
    _Atomic bool trace_on;
    xo_config_t cfg;
    /* The pool table: rows 0..npools-1 (pool.h). Append-only under
       pools_lock; readers load npools with acquire, then the rows. */
    _Atomic(struct xi_pool *) *pools;
    _Atomic unsigned npools;
    pthread_mutex_t pools_lock;
    struct xi_claim *claims;      /* idle-label claims, pools_lock */
    cpu_set_t allowed;            /* CPUs this process may run on */
    struct xi_allocator mem;
    struct xi_slots slots;
    struct xi_registry names;
    _Atomic unsigned rr_next;   /* round-robin placement cursor */
    /* Live actors (published, not yet reaped). Stop waits for zero. */
    _Atomic uint64_t live;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    bool stopping;              /* under stop_lock */
    /* Seams for the layers above (set before any actor exists). */
    xi_route_fn route;
    void *route_arg;
    xi_exit_hook_fn exit_hook;
    void *exit_hook_arg;
    /* The GPU layer's state (gpu/gpu.h): stored (release) under
       pools_lock with the first GPU pool or buffer, loaded with acquire;
       freed by the kind's `free` (pool.h). */
    _Atomic(struct xi_gpu *) gpu;
    /* Monitors and links (recovery.h). */
    struct xi_relations rel;
    /* Observability: the watchdog (watchdog.h), the /metrics server
       (http.h), the shared-memory snapshot, the trace. NULL: not
       running. */
    struct xi_watchdog *watchdog;
    struct xi_http *http;
    /* Stored (release) by xi_shm_open after the watchdog started, read
       (acquire) by the watchdog's thread: shm.h. */
    _Atomic(struct xi_shm *) shm;
    /* The rings (trace.c): published (release) before trace_on is set;
       a new trace keeps the older ones until xo_runtime_free. */
    _Atomic(struct xi_trace *) trace;
    pthread_mutex_t trace_lock;
    uint64_t start_ns;          /* xi_now_ns at start */
    /* TSan model of RCU's guarantee (see rcu.h); never read. */
    alignas(XI_CACHELINE) char rcu_sync;
};

static inline unsigned xi_pool_slots(const xo_runtime_t *rt)
{
    /* acquire: pairs with the release of npools in pool.c's append. */
    return atomic_load_explicit(&((xo_runtime_t *)rt)->npools,
                                memory_order_acquire);
}

static inline struct xi_pool *xi_pool_at(const xo_runtime_t *rt, unsigned i)
{
    /* acquire: the pool was initialised before it was stored. */
    return atomic_load_explicit(&rt->pools[i], memory_order_acquire);
}

/* The worker of pool i (i < xi_pool_slots). */
static inline struct xi_worker *xi_pool_worker(const xo_runtime_t *rt,
                                               unsigned i)
{
    return xi_pool_at(rt, i)->worker;
}

static inline bool xi_rt_closing(xo_runtime_t *rt)
{
    /* acquire: orders the flag before the slot loads that follow it. */
    return atomic_load_explicit(&rt->state, memory_order_acquire) !=
           XI_RT_RUNNING;
}

/* Worker, after a reap: wake xo_runtime_stop if this was the last actor. */
void xi_runtime_actor_gone(xo_runtime_t *rt);
/* A grace period of rt: every read-side section (urcu-bp's, and the send
   sections of rt's workers) that began before the call is over (rcu.h).
   Not from one of rt's workers inside a section. */
void xi_grace_wait(xo_runtime_t *rt);
/* The workers' half of it, for call_rcu callbacks (urcu's half is done). */
void xi_readers_quiesce(xo_runtime_t *rt);

#endif /* XI_RUNTIME_RUNTIME_H */
