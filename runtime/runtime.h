/*
 * runtime.h -- the runtime object and the internal interfaces between the
 * files of runtime/ (actor.c, message.c, sched.c, runtime.c). Nothing here
 * is part of the public API.
 *
 * Object map
 *   xo_runtime  one per xo_runtime_start: config, allocator, ref table,
 *               uid registry, the pools' workers, the stop protocol.
 *   xi_worker   one per CPU pool: a pinned thread and its run queue of
 *               runnable actors (an mpscq whose idle mark means "parked").
 *   xi_cell     one per actor: its mailbox (an mpscq whose idle mark means
 *               "not scheduled"), definition, generation and state.
 *   xi_envelope one per message: queue link, public xo_msg_t, payload.
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
#include "mpscq.h"
#include "rcu.h"
#include "registry.h"
#include "slots.h"
#include "call.h"

#define XI_CACHELINE 64

/* Inside a polling loop: let the sibling hyperthread (or the hypervisor)
   have the core for a moment. */
static inline void xi_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#define xi_container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

struct xo_ctx {
    xo_runtime_t *rt;
    struct xi_cell *cell;
    unsigned pool;
    /* The message being handled, and the error message xo_fail set for
       it (owned, freed after the handler). */
    const xo_msg_t *msg;
    char *fail_msg;
    /* Sends left before this handler lends its worker to the pool-mates
       queued behind it (xi_turn_yield); 0: never (a context that is not a
       worker's turn: on_create run by xo_spawn, an outside thread). */
    unsigned yield_in;
};

/* Called by the send functions after each message a handler sends. */
void xi_turn_yield(struct xo_ctx *ctx);

static inline void xi_count_sends(struct xo_ctx *ctx, size_t n)
{
    if (ctx == NULL || ctx->yield_in == 0)
        return;
    if (ctx->yield_in > n) {
        ctx->yield_in -= (unsigned)n;
        return;
    }
    xi_turn_yield(ctx);
}

struct xi_worker;
struct xo_future;

/* ---- run-queue items ----------------------------------------------- */

/*
 * Everything that travels through a run queue or a mailbox starts with an
 * item: the queue link and what the node is. Run queues carry actors
 * (ACTOR), timers handed to a worker by another thread (TIMER), reap
 * requests of stateless actors (REAP), messages to stateless actors run as
 * tasks (TELL/CALL), and the exit request. Mailboxes carry messages
 * (TELL/CALL/CONT) and a destroyed actor's reap marker (REAP).
 */
enum xi_kind {
    XI_K_ACTOR = 1,
    XI_K_EXIT,
    XI_K_TIMER,
    XI_K_REAP,
    XI_K_TELL,
    XI_K_CALL,
    XI_K_CONT,
};

struct xi_item {
    struct xi_qnode node;
    uint16_t kind;
    uint16_t flags;  /* envelopes: XO_ENV_* */
    uint32_t size;   /* envelopes: bytes of the block, for the sized free */
};

/* ---- messages (message.c) ---------------------------------------- */

#define XI_ENV_WRAPPED 1u  /* payload is the caller's buffer, see wrap */
#define XI_ENV_RESERVED 2u /* its place in a bounded mailbox is taken
                              already (a delayed tell, see xo_tell_after) */

/*
 * A 56-byte header, then the payload. A payload of up to XI_ENV_SMALL bytes
 * follows the header directly, so the whole message is one 64-byte block —
 * one cache line for a receiver on another core to take, where an 80-byte
 * block spans two (pingpong across cores: 207 → 152 ns per round trip,
 * docs/performance.md). That spot is 8-byte aligned, which is enough for
 * any object of 8 bytes or less; a larger payload starts 8 bytes further,
 * 16-byte aligned (as malloc's blocks are). msg.data points at it either
 * way (xi_env_payload). A call's request is its item of the future
 * (msg.request points there, call.h), so a call with a small payload is one
 * line too.
 */
struct xi_envelope {
    struct xi_item item;  /* kind: TELL, CALL or CONT */
    xo_msg_t msg;
    alignas(8) unsigned char payload[];
};

_Static_assert(sizeof(struct xi_envelope) == 56 &&
                   sizeof(struct xi_envelope) + 8 == XI_CACHELINE,
               "an envelope with up to 8 bytes of payload is one line");

#define XI_ENV_SMALL 8u

/* Where an envelope made for `size` bytes keeps them. */
static inline unsigned char *xi_env_payload(struct xi_envelope *e,
                                            size_t size)
{
    return size <= XI_ENV_SMALL ? e->payload : e->payload + 8;
}

/* A task (a message queued for a stateless actor on any worker) carries
   its actor while it is queued, in a word the header does not need until
   the task runs (it has none to spare): a tell's msg.request (NULL again
   once taken), a call's msg.sender.rt (the sender's runtime is the
   actor's own, or none for an outside sender: restored once taken). */
static inline void xi_task_set_cell(struct xi_envelope *e, struct xi_cell *c)
{
    if (e->item.kind == XI_K_CALL)
        e->msg.sender.rt = (xo_runtime_t *)(void *)c;
    else
        e->msg.request = (xo_request_t *)(void *)c;
}

static inline struct xi_cell *xi_task_take_cell(struct xi_envelope *e,
                                                xo_runtime_t *rt)
{
    struct xi_cell *c;
    if (e->item.kind == XI_K_CALL) {
        c = (struct xi_cell *)(void *)e->msg.sender.rt;
        e->msg.sender.rt = e->msg.sender.id != 0 ? rt : NULL;
    } else {
        c = (struct xi_cell *)(void *)e->msg.request;
        e->msg.request = NULL;
    }
    return c;
}

_Static_assert(XO_MSG_MAX_SIZE + sizeof(struct xi_envelope) + 8 <= UINT32_MAX,
               "the largest payload's block size fits item.size");

/* A chain of envelopes linked before it is pushed with one exchange. */
struct xi_chain {
    struct xi_envelope *first, *last;
};

static inline void xi_chain_append(struct xi_chain *ch, struct xi_envelope *e)
{
    /* relaxed: the chain is published by the push's release exchange. */
    if (ch->last != NULL)
        atomic_store_explicit(&ch->last->item.node.next, &e->item.node,
                              memory_order_relaxed);
    else
        ch->first = e;
    ch->last = e;
}

/* The envelope after e in a chain ending at last, or NULL. */
static inline struct xi_envelope *xi_chain_next(struct xi_envelope *e,
                                                struct xi_envelope *last)
{
    /* relaxed: the chain is this thread's own (built here, or taken off a
       queue by its consumer), so no other thread writes these links. */
    return e == last ? NULL
                     : (struct xi_envelope *)atomic_load_explicit(
                           &e->item.node.next, memory_order_relaxed);
}

int xi_envelope_new(xo_runtime_t *rt, uint32_t tag, size_t size,
                    struct xi_envelope **out);
void xi_envelope_free(xo_runtime_t *rt, struct xi_envelope *env);
/* Hand env (or the linked chain first..last) to the actor behind `to`; on
   error the caller keeps them. */
int xi_enqueue(xo_ref_t to, struct xi_envelope *env);
int xi_enqueue_chain(xo_ref_t to, struct xi_envelope *first,
                     struct xi_envelope *last);
void xi_envelope_chain_free(xo_runtime_t *rt, struct xi_envelope *first,
                            struct xi_envelope *last);
/* The ref of the actor whose handler runs on this thread, if it belongs to
   rt; XO_REF_NONE otherwise. */
xo_ref_t xi_current_sender(xo_runtime_t *rt);

/* ---- actors (actor.c) --------------------------------------------- */

/* Stateless actors: tasks in flight in the low bits, DEAD once destroyed. */
#define XI_INFLIGHT_DEAD (UINT64_C(1) << 63)

/*
 * An actor cell is three cache lines of header, grouped by who writes them,
 * then the actor's state. Cells are allocated in multiples of 64 bytes, and
 * the allocator's blocks of those sizes are 64-byte aligned, so each group
 * is one line:
 *   line 0, written by senders: the mailbox's producers' end, the run link
 *           (the sender that schedules the actor writes it), the counts
 *           senders keep;
 *   line 1, read-mostly: what a send reads to resolve the ref, check the
 *           actor and schedule it;
 *   line 2, written by the worker running the actor: the mailbox's
 *           consumer's end and the per-message counters.
 * With the consumer's words beside the producers', every send would first
 * have to take the line back from a worker draining the mailbox (counting:
 * 27 M against 44 M msgs/s here, docs/performance.md).
 */
struct xi_cell {
    /* ---- line 0: senders write ---- */
    /* The mailbox's producers' end; its consumer's end is mbox_tail. */
    struct xi_mpscq mbox;
    struct xi_item run;         /* ACTOR: link in its worker's run queue */
    struct xi_item reap;        /* REAP: last node of a destroyed actor */
    /* Bounded only: tells and calls queued and not yet taken. Senders add
       before pushing, the consumer subtracts as it takes (relaxed: a
       count, the queue itself orders the messages). */
    _Atomic uint32_t queued;
    /* Stateless only: see XI_INFLIGHT_DEAD. */
    _Atomic uint64_t inflight;

    /* ---- line 1: read-mostly ---- */
    xo_runtime_t *rt;
    const xo_actor_def_t *def;
    struct xi_name *name;       /* uid entry or NULL */
    uint32_t index, gen;        /* immutable after spawn */
    unsigned pool;              /* home pool */
    uint32_t capacity;          /* mailbox bound, 0: none */
    bool created;               /* on_create succeeded (or none) */
    bool stateless;
    bool movable;               /* other pools may run its turns */
    struct xi_mark *mark;       /* idle-label reservation, or NULL */
    /* The actor whose frame was pushed over this one's suspended turn on
       its worker (0: none): an edge of the wait-for graph (sched.c,
       "Frames"). Written only while the turn is suspended, which is rare,
       so it may share the senders' read-mostly line. seq_cst: see the
       cycle check in call.c. */
    _Atomic uint64_t above;

    /* ---- line 2: the worker running the actor writes ---- */
    /* The mailbox's consumer's end (mpscq.h, "Layout"). */
    struct xi_qnode *mbox_tail;
    /* Stateful only: a message popped while collecting an on_batch run
       that did not belong to it; handled next. Owner worker only. */
    struct xi_envelope *stash;
    /* Written by the worker running the actor only; read by xo_actor_stats
       from any thread. relaxed: counters, no ordering with other data. */
    _Atomic uint64_t handled, failed;
    /* The id of what a blocking wait in this actor's handler waits for
       (0: none). seq_cst: see the cycle check in call.c. */
    _Atomic uint64_t waiting_for;
    /* Set by the destroyer that wins; completed by the reap. */
    struct xo_future *destroy_f;
    struct rcu_head rcu;
    alignas(16) unsigned char state[];
};

_Static_assert(offsetof(struct xi_cell, rt) == XI_CACHELINE &&
                   offsetof(struct xi_cell, mbox_tail) == 2 * XI_CACHELINE &&
                   sizeof(struct xi_cell) == 3 * XI_CACHELINE,
               "the cell header is three lines: senders', read-mostly, "
               "the worker's");

static inline xo_ref_t xi_cell_ref(const struct xi_cell *c)
{
    return (xo_ref_t){ c->rt, ((uint64_t)c->gen << 32) | c->index };
}

/* Worker: the reap marker reached the front (or a stateless actor's last
   task ended): run on_destroy, then reclaim, or revive on failure.
   Returns true when the cell was freed. */
bool xi_cell_reap(struct xi_cell *c, struct xo_ctx *ctx);
/* Inside xi_rcu_lock, runtime open: destroy c without waiting for it
   (false if another destroy won). */
bool xi_cell_unpublish(xo_runtime_t *rt, struct xi_cell *c);
/* Stop: unpublish every live actor and queue its reap marker. */
void xi_actors_close_all(xo_runtime_t *rt);
/* A stateless task finished: drop its in-flight count. */
void xi_stateless_task_done(struct xi_cell *c);

/* ---- timers (timer.c) --------------------------------------------- */

enum { XI_TIMER_TELL = 1, XI_TIMER_CALL_TIMEOUT };

struct xi_timer {
    struct xi_item item; /* TIMER, while handed to a worker */
    uint64_t deadline;   /* CLOCK_MONOTONIC ns */
    int what;
    xo_ref_t to;                 /* TELL */
    struct xi_envelope *env;     /* TELL */
    struct xo_future *f;         /* CALL_TIMEOUT (holds a reference) */
};

struct xi_timer_heap {
    struct xi_timer **v;
    size_t len, cap;
};

uint64_t xi_now_ns(void);
/* Any thread: arm a timer on worker w (it takes ownership). */
int xi_timer_start(struct xi_worker *w, struct xi_timer *t);
/* Worker: file a timer that arrived through the run queue. */
void xi_timer_insert(struct xi_worker *w, struct xi_timer *t);
/* Worker: fire what is due; returns the next deadline (0: none). */
uint64_t xi_timers_run(struct xi_worker *w);
void xi_timers_discard(struct xi_worker *w);
/* A stopped worker's timers, still due to fire, go to worker `to`. */
void xi_timers_move(struct xi_worker *from, struct xi_worker *to);
void xi_timer_discard(xo_runtime_t *rt, struct xi_timer *t);

/* ---- scheduling (sched.c) ----------------------------------------- */

enum { XI_POOL_ACTIVE = 1, XI_POOL_REMOVING, XI_POOL_GONE };

/* Actors one worker watches at most (sched.c, "Watching"). */
#define XI_WATCH_MAX 32
#define XI_RECENT_SLOTS 64

struct xi_worker {
    /* The run queue's producers' end, alone on its line; the consumer's
       end is runq_tail (mpscq.h, "Layout"). */
    alignas(XI_CACHELINE) struct xi_mpscq runq;
    /* Futex word: 0 while parked and not yet woken. The waker stores 1
       (release) after taking the run queue's idle mark; the worker resets
       it to 0 before marking idle again. */
    alignas(XI_CACHELINE) _Atomic uint32_t wake;
    /* The run queue's consumer's end (owner worker only). */
    struct xi_qnode *runq_tail;
    /* The actors this worker watches (owner worker only; sched.c,
       "Watching"): each one's mailbox ended empty, it was not marked idle,
       and it is in no run queue. */
    struct xi_cell *watched[XI_WATCH_MAX];
    unsigned nwatched;
    unsigned watch_next;  /* where the next scan of `watched` starts */
    bool last_watched;    /* the last item run came from `watched` */
    /* The actors whose turns ended here lately, by a hash of the cell's
       address (owner worker only): an actor found here again is one that
       comes back often, worth watching. */
    struct xi_cell *recent[XI_RECENT_SLOTS];
    /* Blocking waits in progress on this thread (owner worker only). */
    unsigned block_depth;
    /* relaxed: true while the worker runs an item (a hint for sharing). */
    _Atomic bool running;
    /* This thread's send sections (rcu.h): written by the worker on every
       send, read by grace periods. */
    struct xi_reader reader;
    /* XO_POOL_*: written under the runtime's pools_lock; read by placement
       and scheduling (acquire). */
    _Atomic int state;
    xo_runtime_t *rt;
    unsigned index;
    int core;
    bool pinned;
    /* Another active pool's worker may run on this worker's CPU (pinned to
       the same core, or more pools than CPUs): it must not spin holding
       the CPU while that one has work. core_mate: the next active worker
       pinned to the same core (the sharers form a ring), NULL when the
       sharers are not known (unpinned). Written under pools_lock
       (xi_pools_update_sharing); core_shared is read relaxed by the worker
       and xo_pool_info, core_mate with acquire (mate_awake). Worker
       structs live until the runtime is freed, so a mate read just before
       it left is still memory to read. */
    _Atomic bool core_shared;
    _Atomic(struct xi_worker *) core_mate;
    bool started;      /* under pools_lock */
    bool exit_pending; /* owner worker only: exit after the current item */
    pthread_t thread;
    char *labels;                /* "cpu[,user...]", owned */
    struct xi_item exit_item;
    struct xi_timer_heap timers; /* owner worker only */
    /* Cells whose handlers block in xi_worker_block on this thread, outer
       first: none of them can resume before the waits nested above it
       end. Owner worker only; read by its own cycle checks. */
    struct xi_cell *blocked[XO_MAX_NESTED_WAITS];
    unsigned nblocked;
    uint64_t start_ns;           /* coarse clock when it started */
    /* Counters, relaxed; single writer (the worker) except `actors`
       (spawn and reap). */
    _Atomic uint64_t handled;
    _Atomic uint64_t actors;
    _Atomic uint64_t idle_ns;
};

_Static_assert(offsetof(struct xi_worker, runq_tail) >=
                   offsetof(struct xi_worker, runq) + XI_CACHELINE,
               "a run queue's two ends never share a cache line");

/* Make an actor runnable on its home pool, waking the worker if parked. */
void xi_schedule(struct xi_cell *c);
/* Push an item onto a worker's run queue, waking it if parked. */
void xi_runq_push(struct xi_worker *w, struct xi_item *it);
/* A worker for a stateless task: spreads tasks over the pools. */
struct xi_worker *xi_task_worker(xo_runtime_t *rt);
int xi_worker_start(xo_runtime_t *rt, struct xi_worker *w);
/* Under pools_lock: take the right to join w (false: not running, or
   another thread took it). Then, outside the lock, xi_worker_join. */
bool xi_worker_claim(struct xi_worker *w);
void xi_worker_join(struct xi_worker *w);
/* The worker that is the calling thread, or NULL. */
struct xi_worker *xi_current_worker(void);
/* The runtime whose worker is the calling thread, or NULL. */
xo_runtime_t *xi_current_worker_runtime(void);
/* The handler context active on this thread (NULL outside handlers). */
struct xo_ctx *xi_current_ctx(void);
void xi_set_current_ctx(struct xo_ctx *ctx);
/*
 * A handler blocks until f's flags differ from `seen` in `mask`, or the
 * deadline (0: none) passes, running other actors of its pool meanwhile
 * (sched.c, "Waiting inside a handler"). Its frame is pushed first.
 */
int xi_worker_block(struct xi_worker *w, struct xo_future *f, uint32_t seen,
                    uint32_t mask, uint64_t deadline);
/* Frames of suspended turns on w's stack (sched.c, "Frames"); push is
   false when XO_MAX_NESTED_WAITS are there already. */
bool xi_frame_push(struct xi_worker *w, struct xi_cell *c);
void xi_frame_pop(struct xi_worker *w);
/* Wake w from its sleep (idle, or in a handler's wait). */
void xi_worker_wake(struct xi_worker *w);
/* Free the xo_fail message a handler left in its context. */
void xi_ctx_clear_fail(struct xo_ctx *ctx);
void xi_futex_wait(_Atomic uint32_t *word, uint32_t expected,
                   uint64_t timeout_ns);
void xi_futex_wake_all(_Atomic uint32_t *word);

/* ---- pools and placement (pool.c) ------------------------------------ */

#define XI_MAX_POOLS XO_POOLS_MAX

/* An idle-label reservation: (label, mark) held by one live actor. */
struct xi_mark {
    struct xi_mark *next;
    unsigned pool;
    char *label, *mark;
};

int xi_pools_start(xo_runtime_t *rt);
void xi_pools_join(xo_runtime_t *rt);
void xi_pools_free(xo_runtime_t *rt);
/* Recompute every worker's core_shared and core_mate. Under pools_lock,
   or before the runtime is shared. */
void xi_pools_update_sharing(xo_runtime_t *rt);
/* Choose the home pool of a new actor (mark: an idle-label reservation
   the cell keeps until it is reaped). */
int xi_place(xo_runtime_t *rt, const xo_actor_def_t *def,
             const xo_spawn_opts_t *opts, unsigned *pool,
             struct xi_mark **mark);
void xi_mark_release(xo_runtime_t *rt, struct xi_mark *mark);
uint64_t xi_coarse_ns(void);

/* ---- the runtime (runtime.c) ---------------------------------------- */

enum { XI_RT_RUNNING = 0, XI_RT_CLOSING = 1, XI_RT_STOPPED = 2 };

struct xo_runtime {
    /* Read on every send: keep it with the other read-mostly fields.
       XO_RT_*; set to CLOSING once by stop, inside no RCU section; read by
       senders inside one (rcu.h explains why that suffices). */
    _Atomic int state;
    xo_config_t cfg;
    /* The pool table: slots 0..npools-1 hold workers (never freed before
       xo_runtime_free; a removed pool keeps its slot). Append-only under
       pools_lock; readers load npools with acquire, then the slots. */
    _Atomic(struct xi_worker *) *pools;
    _Atomic unsigned npools;
    pthread_mutex_t pools_lock;
    struct xi_mark *marks;        /* idle-label reservations, pools_lock */
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
    /* TSan model of RCU's guarantee (see rcu.h); never read. */
    alignas(XI_CACHELINE) char rcu_sync;
};

static inline unsigned xi_pool_slots(const xo_runtime_t *rt)
{
    /* acquire: pairs with the release of npools in pool.c's add. */
    return atomic_load_explicit(&((xo_runtime_t *)rt)->npools,
                                memory_order_acquire);
}

static inline struct xi_worker *xi_pool(const xo_runtime_t *rt, unsigned i)
{
    /* acquire: the worker was initialised before it was stored. */
    return atomic_load_explicit(&rt->pools[i], memory_order_acquire);
}

static inline bool xi_pool_active(struct xi_worker *w)
{
    /* acquire: pairs with the state store under pools_lock. */
    return atomic_load_explicit(&w->state, memory_order_acquire) ==
           XI_POOL_ACTIVE;
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

/* ---- resolving refs (inline: every send does it) --------------------- */

/* The slot's pointer of a cell being destroyed: its low bit set (cells
   are line-aligned). Senders treat it as empty; the cycle check of
   blocking waits still follows it (actor.c). */
#define XI_SLOT_DYING ((uintptr_t)1)

static inline struct xi_cell *xi_dying(struct xi_cell *c)
{
    return (struct xi_cell *)((uintptr_t)c | XI_SLOT_DYING);
}

/* What slot `index` holds, with the DYING mark in *marked. */
static inline struct xi_cell *xi_slot_cell(xo_runtime_t *rt, uint32_t index,
                                           bool *marked)
{
    struct xi_slot *slot = xi_slots_get(&rt->slots, index);
    if (slot == NULL) {
        *marked = false;
        return NULL;
    }
    /* acquire: pairs with the release publication in xo_spawn; the cell's
       fields (gen, mailbox) are initialised before it. */
    uintptr_t p = (uintptr_t)atomic_load_explicit(&slot->cell,
                                                  memory_order_acquire);
    *marked = (p & XI_SLOT_DYING) != 0;
    return (struct xi_cell *)(p & ~XI_SLOT_DYING);
}

/* Inside a read-side section: the live cell a ref names, or NULL. */
static inline struct xi_cell *xi_resolve(xo_runtime_t *rt, uint64_t id)
{
    bool marked;
    struct xi_cell *c = xi_slot_cell(rt, (uint32_t)id, &marked);
    if (c == NULL || marked || c->gen != (uint32_t)(id >> 32))
        return NULL;
    return c;
}

/* The same, also while the actor is being destroyed (unpublished, not yet
   reaped): for the cycle check, which follows a dying actor's waits. */
static inline struct xi_cell *xi_resolve_dying(xo_runtime_t *rt, uint64_t id)
{
    bool marked;
    struct xi_cell *c = xi_slot_cell(rt, (uint32_t)id, &marked);
    if (c == NULL || c->gen != (uint32_t)(id >> 32))
        return NULL;
    return c;
}

/* The live (published, not dying) cell in slot `index`, or NULL. */
static inline struct xi_cell *xi_slot_live_cell(xo_runtime_t *rt,
                                                uint32_t index)
{
    bool marked;
    struct xi_cell *c = xi_slot_cell(rt, index, &marked);
    return marked ? NULL : c;
}

#endif /* XI_RUNTIME_RUNTIME_H */
