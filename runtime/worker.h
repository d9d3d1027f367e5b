/*
 * worker.h -- a worker: one thread, its run queue, its wake word, the
 * actors it watches, its timers and the frames of the turns suspended on
 * its stack. Every pool has one (pool.h); the pool's kind says how its
 * thread starts and what it does before it parks.
 *
 * The loop (worker.c): take the next item (the run queue and the watched
 * mailboxes alternately, timers in between), run it, and when there is
 * nothing, spin for cfg.spin_ns and then sleep (xi_worker_sleep) until a
 * sender takes the run queue's idle mark. Items: an actor's turn (turn.c),
 * a task of a stateless actor, a function item, the exit request.
 */
#ifndef XI_RUNTIME_WORKER_H
#define XI_RUNTIME_WORKER_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "xoscar/xoscar.h"
#include "common.h"
#include "envelope.h"
#include "mpscq.h"
#include "rcu.h"
#include "stats.h"
#include "stealq.h"
#include "timer.h"

/* Actors one worker watches at most ("Watching", worker.c). */
#define XI_WATCH_MAX 32
#define XI_RECENT_SLOTS 64

struct xi_cell;
struct xi_held;
struct xi_pool;
struct xo_future;

struct xi_worker {
    /* The run queue's producers' end, alone on its line; the consumer's
       end is runq_tail (mpscq.h, "Layout"). */
    alignas(XI_CACHELINE) struct xi_mpscq runq;
    /* Items pushed onto the run queue, beside the head the pushers
       exchange: a relaxed load and store (stats.h says why that is
       enough); the worker puts it back to obs.runq_taken when it marks
       the queue idle. */
    _Atomic uint64_t runq_pushed;
    /* Futex word: 0 while asleep and not yet woken. The waker stores 1
       (release) after taking the run queue's idle mark, or a future's
       completer after seeing this worker registered as its sleeper; the
       worker resets it to 0 before marking idle again. */
    alignas(XI_CACHELINE) _Atomic uint32_t wake;
    /* The run queue's consumer's end (owner worker only). */
    struct xi_qnode *runq_tail;
    /* The actors this worker watches (owner worker only, "Watching"):
       each one's mailbox ended empty, it was not marked idle, and it is in
       no run queue. */
    struct xi_cell *watched[XI_WATCH_MAX];
    unsigned nwatched;
    unsigned watch_next;  /* where the next scan of `watched` starts */
    bool last_watched;    /* the last item run came from `watched` */
    bool local_first;     /* the next queue poll tries `local` first */
    /* This worker takes movable actors into `local` (a CPU pool's worker;
       owner worker only, set at start, cleared at exit). */
    bool hosts_movable;
    /* It steals, and offers its local queue (hosts_movable and
       cfg.steal; set at start). */
    bool steals;
    unsigned steal_from;  /* where the next search for a victim starts */
    /* The worker whose offer this one watches while idle, its local
       queue's tail then, and when (owner worker only; worker.c,
       "stealing"). */
    struct xi_worker *cand;
    uint32_t cand_tail;
    uint64_t cand_since;
    /* The actors whose turns ended here lately, by a hash of the cell's
       address (owner worker only): an actor found here again is one that
       comes back often, worth watching. */
    struct xi_cell *recent[XI_RECENT_SLOTS];
    /* Waits and yields in progress on this thread (owner worker only). */
    unsigned block_depth;
    /* relaxed: true while the worker runs an item (a hint for sharing). */
    _Atomic bool running;
    /* This thread's send sections (rcu.h): written by the worker on every
       send, read by grace periods. */
    struct xi_reader reader;
    xo_runtime_t *rt;
    struct xi_pool *pool;        /* the pool it runs */
    unsigned pool_index;         /* pool->index, read by every turn */
    /* The pool kind's hold on the answers given on this thread (call.h,
       struct xi_held): a GPU pool's stream thread completes them when its
       stream reaches the point where they were given. NULL (CPU pools):
       they complete at once. Set before the thread starts. */
    void (*hold)(struct xi_worker *w, struct xi_held *h);
    int core;                    /* CPU it was given, -1: none */
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
    bool exit_pending; /* owner worker only: exit after the current item */
    pthread_t thread;
    struct xi_item exit_item;
    struct xi_timer_heap timers; /* owner worker only */
    /* Posted by xi_worker_hurry (at most once at a time: the flag). */
    struct xi_func hurry;
    _Atomic bool hurry_posted;
    /* The turns suspended on this thread's stack, outer first (wait.c,
       "Frames"): none of them can resume before the frames above it end.
       Owner worker only. */
    struct xi_cell *blocked[XO_MAX_NESTED_WAITS];
    unsigned nblocked;
    uint64_t start_ns;           /* coarse clock when it started */
    /* Counters, relaxed; single writer (the worker). */
    _Atomic uint64_t handled;
    _Atomic uint64_t idle_ns;
    /* What the watchdog samples, and the pool's stats (stats.h). */
    struct xi_wobs obs;
    /* Movable actors made runnable here (docs/scheduler.md, "Locality"):
       by a send from this worker, or a turn of theirs that left work. The
       owner pushes and pops; idle workers steal. */
    struct xi_stealq local;
    /* Set (relaxed) by the owner when `local` holds more than the next
       item it will run, or by the watchdog when the owner's turn has
       kept it past a tick with actors waiting in `local`; cleared by the
       owner when `local` runs dry. Thieves read it while they spin: on a
       line of its own, written only when it changes, so the reads cost the
       owner nothing. */
    alignas(XI_CACHELINE) _Atomic bool surplus;
};

/* The longest steal_wait_ns an idle worker keeps spinning for, past its
   spin_ns, to finish a look at an offer before it parks. */
#define XI_STEAL_LOOK_MAX UINT64_C(1000000)
/* How soon an idle worker that goes to sleep while another offers work
   wakes to look again (worker.c, xi_worker_sleep). */
#define XI_OFFER_RECHECK_NS UINT64_C(100000)

_Static_assert(offsetof(struct xi_worker, runq_tail) >=
                   offsetof(struct xi_worker, runq) + XI_CACHELINE,
               "a run queue's two ends never share a cache line");

/* The worker that is the calling thread, or NULL. */
extern __thread struct xi_worker *xi_tls_worker
    __attribute__((tls_model("initial-exec"), visibility("hidden")));

static inline struct xi_worker *xi_current_worker(void)
{
    return xi_tls_worker;
}

/* The calling thread's worker when it belongs to rt, else NULL. */
static inline struct xi_worker *xi_worker_of(xo_runtime_t *rt)
{
    struct xi_worker *w = xi_tls_worker;
    return w != NULL && w->rt == rt ? w : NULL;
}

void xi_worker_init(struct xi_worker *w, xo_runtime_t *rt,
                    struct xi_pool *pool, int core);
/* Start w's thread, pinned to w->core when asked and allowed. */
int xi_worker_start(struct xi_worker *w);
/* Ask w's thread to exit once it reaches the request, and join it. */
void xi_worker_join(struct xi_worker *w);

/* Any thread: push an item onto w's run queue, waking it if it sleeps. */
void xi_runq_push(struct xi_worker *w, struct xi_item *it);
/* Any thread: have w run f->fn(f, w) on its thread. */
void xi_worker_post(struct xi_worker *w, struct xi_func *f);
/* Any thread: arm t on w (w owns it from now on). */
void xi_worker_arm(struct xi_worker *w, struct xi_timer *t);
/* Any thread: have w fire its urgent timers now (xi_heap_hurry). */
void xi_worker_hurry(struct xi_worker *w);
/* Worker: fire what is due; returns the next deadline (0: none). */
uint64_t xi_worker_timers_run(struct xi_worker *w);
/* A stopped worker: its timers go to `to` (a pool removed), or are
   dropped with XO_ECLOSED (to NULL: the runtime stops). */
void xi_worker_timers_hand_off(struct xi_worker *from, struct xi_worker *to);
/* Wake w from its sleep (idle, or in a handler's wait). */
void xi_worker_wake(struct xi_worker *w);

/* Make an actor runnable: a movable actor on the calling worker (when it
   is one of the runtime's CPU workers), else on its home pool, waking the
   worker if asleep. */
void xi_schedule(struct xi_cell *c);
/* The same with another of its items (a suspended actor's RESUME). */
void xi_schedule_item(struct xi_cell *c, struct xi_item *it);
/* Any thread: offer w's local queue to thieves, waking a parked worker that
   could take from it (also the watchdog's, for a worker held by one turn
   with actors waiting behind it). */
void xi_worker_offer(struct xi_worker *w);
/* A worker for a stateless task: spreads tasks over the pools. */
struct xi_worker *xi_task_worker(xo_runtime_t *rt);

/* Worker, inside a handler's wait or yield: run one item of the run queue,
   nested. False: the queue is empty. */
bool xi_worker_run_lent(struct xi_worker *w);
/* End every watch (before a wait or a yield, which serve the run queue
   only): mark each mailbox idle, or queue the actor if a message came. */
void xi_worker_release_watches(struct xi_worker *w);
/*
 * The one sleep of a worker, idle or waiting in a handler: mark the run
 * queue idle, then sleep on the wake word until a sender or f's completer
 * wakes it, or `until` (0: none). With f: only while f's flags still equal
 * `seen` in `mask`.
 */
void xi_worker_sleep(struct xi_worker *w, uint64_t until,
                     struct xo_future *f, uint32_t seen, uint32_t mask);

void xi_futex_wait(_Atomic uint32_t *word, uint32_t expected,
                   uint64_t timeout_ns);
void xi_futex_wake_all(_Atomic uint32_t *word);

/* relaxed single-writer counters. */
static inline void xi_bump(_Atomic uint64_t *counter, uint64_t by)
{
    atomic_store_explicit(
        counter, atomic_load_explicit(counter, memory_order_relaxed) + by,
        memory_order_relaxed);
}

/* A counter with one writer at a time (xi_bump), or, `shared`, with
   several at once (a stateless actor's, whose tasks run on several
   workers together): a relaxed atomic add there, or two that end
   together would count one. relaxed: counters, read relaxed by the
   stats, publishing nothing else. */
static inline void xi_count(_Atomic uint64_t *counter, uint64_t by,
                            bool shared)
{
    if (shared)
        atomic_fetch_add_explicit(counter, by, memory_order_relaxed);
    else
        xi_bump(counter, by);
}

#endif /* XI_RUNTIME_WORKER_H */
