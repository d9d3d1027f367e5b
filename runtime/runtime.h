/*
 * runtime.h -- the runtime object and the internal interfaces between the
 * files of runtime/ (actor.c, message.c, sched.c, runtime.c). Nothing here
 * is part of the public API.
 *
 * Object map
 *   xo_runtime  one per xo_runtime_start: config, allocator, ref table,
 *               uid registry, the pools' workers, the stop protocol.
 *   xo_worker   one per CPU pool: a pinned thread and its run queue of
 *               runnable actors (an mpscq whose idle mark means "parked").
 *   xo_cell     one per actor: its mailbox (an mpscq whose idle mark means
 *               "not scheduled"), definition, generation and state.
 *   xo_envelope one per message: queue link, public xo_msg_t, payload.
 */
#ifndef XO_RUNTIME_RUNTIME_H
#define XO_RUNTIME_RUNTIME_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xoscar/xoscar.h"
#include "../alloc/alloc.h"
#include "mpscq.h"
#include "rcu.h"
#include "registry.h"
#include "slots.h"

#define XO_CACHELINE 64

#define xo_container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

struct xo_ctx {
    xo_runtime_t *rt;
    struct xo_cell *cell;
    unsigned pool;
};

/* ---- messages (message.c) ---------------------------------------- */

#define XO_ENV_WRAPPED 1u /* payload is the caller's buffer, see wrap */

struct xo_envelope {
    struct xo_qnode node;
    uint32_t alloc_size; /* bytes of this block, for the sized free */
    uint32_t flags;
    xo_msg_t msg;
    alignas(16) unsigned char payload[];
};

/* Largest payload xo_tell / xo_msg_alloc accept. */
#define XO_MSG_MAX_SIZE ((size_t)UINT32_MAX - sizeof(struct xo_envelope))

void xo_envelope_free(xo_runtime_t *rt, struct xo_envelope *env);
/* The ref of the actor whose handler runs on this thread, if it belongs to
   rt; XO_REF_NONE otherwise. */
xo_ref_t xo_current_sender(xo_runtime_t *rt);

/* ---- actors (actor.c) --------------------------------------------- */

struct xo_cell {
    struct xo_mpscq mbox;       /* producers write its head */
    struct xo_qnode runq_node;  /* link in its worker's run queue */
    struct xo_qnode reap_node;  /* last node of a destroyed mailbox */
    xo_runtime_t *rt;
    const xo_actor_def_t *def;
    struct xo_name *name;       /* uid entry or NULL */
    uint32_t index, gen;        /* immutable after spawn */
    unsigned pool;
    bool created;               /* on_create succeeded (or none) */
    /* Written by the worker running the actor only; read by xo_actor_stats
       from any thread. relaxed: counters, no ordering with other data. */
    _Atomic uint64_t handled, failed;
    size_t alloc_size;
    struct rcu_head rcu;
    alignas(16) unsigned char state[];
};

static inline xo_ref_t xo_cell_ref(const struct xo_cell *c)
{
    return (xo_ref_t){ c->rt, ((uint64_t)c->gen << 32) | c->index };
}

/* Inside xo_rcu_lock: the live cell a ref names, or NULL. */
struct xo_cell *xo_resolve(xo_runtime_t *rt, uint64_t id);
/* Worker: the reap marker reached the front: run on_destroy, reclaim. */
void xo_cell_reap(struct xo_cell *c, struct xo_ctx *ctx);
/* Stop: unpublish every live actor and queue its reap marker. */
void xo_actors_close_all(xo_runtime_t *rt);

/* ---- scheduling (sched.c) ----------------------------------------- */

struct xo_worker {
    alignas(XO_CACHELINE) struct xo_mpscq runq;
    /* Futex word: 0 while parked and not yet woken. The waker stores 1
       (release) after taking the run queue's idle mark; the worker resets
       it to 0 before marking idle again. */
    _Atomic uint32_t wake;
    xo_runtime_t *rt;
    unsigned index;
    int core;
    bool pinned;
    bool started;
    pthread_t thread;
    struct xo_ctx ctx;
    struct xo_qnode exit_node;
    /* relaxed counters, single writer except `actors` (spawn/reap). */
    _Atomic uint64_t handled;
    _Atomic uint64_t actors;
};

/* Make an actor runnable on its home pool, waking the worker if parked. */
void xo_schedule(struct xo_cell *c);
int xo_workers_start(xo_runtime_t *rt);
void xo_workers_stop(xo_runtime_t *rt);
/* The runtime whose worker is the calling thread, or NULL. */
xo_runtime_t *xo_current_worker_runtime(void);
/* The handler context active on this thread (NULL outside handlers). */
struct xo_ctx *xo_current_ctx(void);
void xo_set_current_ctx(struct xo_ctx *ctx);

/* ---- the runtime (runtime.c) ---------------------------------------- */

enum { XO_RT_RUNNING = 0, XO_RT_CLOSING = 1, XO_RT_STOPPED = 2 };

struct xo_runtime {
    /* Read on every send: keep it with the other read-mostly fields.
       XO_RT_*; set to CLOSING once by stop, inside no RCU section; read by
       senders inside one (rcu.h explains why that suffices). */
    _Atomic int state;
    xo_config_t cfg;
    unsigned npools;
    struct xo_worker *workers;
    struct xo_allocator mem;
    struct xo_slots slots;
    struct xo_registry names;
    _Atomic unsigned rr_next;   /* round-robin placement cursor */
    /* Live actors (published, not yet reaped). Stop waits for zero. */
    _Atomic uint64_t live;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    bool stopping;              /* under stop_lock */
    /* TSan model of RCU's guarantee (see rcu.h); never read. */
    alignas(XO_CACHELINE) char rcu_sync;
};

static inline bool xo_rt_closing(xo_runtime_t *rt)
{
    /* acquire: orders the flag before the slot loads that follow it. */
    return atomic_load_explicit(&rt->state, memory_order_acquire) !=
           XO_RT_RUNNING;
}

/* Worker, after a reap: wake xo_runtime_stop if this was the last actor. */
void xo_runtime_actor_gone(xo_runtime_t *rt);

#endif /* XO_RUNTIME_RUNTIME_H */
