/*
 * worker.c -- the workers (design in worker.h): the thread, its loop,
 * idling and sleeping, watching, the run queue, function items, timers.
 *
 * A worker's run queue holds runnable actors (their `run` item). An actor
 * is in at most one run queue at a time: it enters when the send that
 * found its mailbox idle-marked schedules it, and it leaves when its worker
 * pops it. After its turn (turn.c) the worker marks the mailbox idle (the
 * next sender reschedules it), watches it, or queues it again when it has
 * more, so that its pool-mates get their turn.
 *
 * Idle: a worker with an empty run queue polls it for cfg.spin_ns, then
 * marks the run queue idle and sleeps on its futex word. The sender whose
 * exchange takes that mark is the one that wakes it (see mpscq.h), so a
 * wake is never lost and never sent twice. A worker whose handler waits
 * sleeps the same way (xi_worker_sleep), registered on the future it waits
 * for, so that the completion wakes it too.
 *
 * Watching. When a turn leaves an actor's mailbox empty, the worker may
 * keep the actor as one of its `watched` (up to XI_WATCH_MAX) instead of
 * marking the mailbox idle, and poll that mailbox along with its run queue.
 * A sender to a watched actor then finds the mailbox not idle and only
 * pushes (one exchange, on the line the worker polls); the worker sees the
 * message and runs the turn. Without it the same hand-off is the mailbox
 * exchange, an exchange on the worker's run queue, and the worker taking
 * both lines back: for a request/reply pair between two pools, or a driver
 * feeding the actors of another core, about two cache-line transfers more
 * per message. An actor is watched when its turn ended on this worker
 * recently (`recent`: it comes back often) or when the worker has nothing
 * else to do. The worker polls the run queue and the watched mailboxes
 * alternately first, so neither can hold up the other for more than a
 * turn. A watched actor is in no run queue and not idle-marked, so only
 * its worker can bring it back: before it sleeps, waits or yields (which
 * serve the run queue only) it ends every watch (marks each mailbox idle,
 * or, when a message slipped in, queues the actor).
 *
 * Stop: each worker's exit item is pushed once all actors are gone; a
 * worker that pops it returns.
 */
#include "runtime.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

__thread struct xi_worker *xi_tls_worker
    __attribute__((tls_model("initial-exec")));

void xi_futex_wait(_Atomic uint32_t *word, uint32_t expected,
                   uint64_t timeout_ns)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ns != 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
        ts.tv_nsec = (long)(timeout_ns % 1000000000u);
        tsp = &ts;
    }
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, tsp,
            NULL, 0);
}

void xi_futex_wake_all(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL,
            NULL, 0);
}

void xi_worker_wake(struct xi_worker *w)
{
    /* release: pairs with the acquire load in xi_worker_sleep; the worker
       that wakes sees the run queue node pushed before. */
    atomic_store_explicit(&w->wake, 1, memory_order_release);
    syscall(SYS_futex, (uint32_t *)&w->wake, FUTEX_WAKE_PRIVATE, 1, NULL,
            NULL, 0);
}

void xi_runq_push(struct xi_worker *w, struct xi_item *it)
{
    /* relaxed: a count on the line the exchange below takes (stats.h). */
    if (XI_STATS)
        atomic_store_explicit(
            &w->runq_pushed,
            atomic_load_explicit(&w->runq_pushed, memory_order_relaxed) + 1,
            memory_order_relaxed);
    if (xi_mpscq_push(&w->runq, &it->node))
        w->pool->ops->wake(w->pool);
}

void xi_worker_post(struct xi_worker *w, struct xi_func *f)
{
    f->item.kind = XI_K_FUNC;
    xi_runq_push(w, &f->item);
}

/* ---- scheduling ------------------------------------------------------- */

/* Whether p's worker may take other pools' movable actors now. */
static bool hosts_movable(const struct xi_pool *p)
{
    return p != NULL && p->ops->runs_movable && xi_pool_running(p);
}

/* A parked worker of a running pool other than `not` that runs movable
   actors, or NULL. */
static struct xi_worker *parked_worker(xo_runtime_t *rt, struct xi_worker *not)
{
    unsigned n = xi_pool_slots(rt);
    for (unsigned i = 0; i < n; i++) {
        struct xi_pool *p = xi_pool_at(rt, i);
        if (p == NULL || p->worker == not || !hosts_movable(p))
            continue;
        /* relaxed: a hint; a wrong guess only costs locality. */
        if (atomic_load_explicit(&p->worker->runq.head,
                                 memory_order_relaxed) &
            XI_MPSCQ_IDLE)
            return p->worker;
    }
    return NULL;
}

void xi_worker_offer(struct xi_worker *w)
{
    /* relaxed: a hint for thieves, who check the queue itself with its
       own orderings (stealq.h). */
    atomic_store_explicit(&w->surplus, true, memory_order_relaxed);
    /* seq_cst: pairs with the fence of a worker going to sleep
       (offer_pending): either it sees the offer, or we see its run
       queue's idle mark below and wake it. */
    atomic_thread_fence(memory_order_seq_cst);
    /* A worker that is awake with nothing to run looks at the offer soon;
       when none is, wake a parked one (a system call, made only when the
       rest of the runtime sleeps; a thief that found nothing worth taking
       sleeps only XI_OFFER_RECHECK_NS at a time while the offer stands,
       then spins spin_ns, so a producer whose queue fills and empties
       again and again wakes it at most once a spin). Pools and their workers stay memory
       until xo_runtime_free, so a wake that reaches a worker just removed
       does no harm. relaxed: hints, as in parked_worker. */
    xo_runtime_t *rt = w->rt;
    struct xi_worker *parked = NULL;
    unsigned n = xi_pool_slots(rt);
    for (unsigned i = 0; i < n; i++) {
        struct xi_pool *p = xi_pool_at(rt, i);
        if (p == NULL || p->worker == w || !p->worker->steals ||
            !xi_pool_running(p))
            continue;
        struct xi_worker *v = p->worker;
        if (atomic_load_explicit(&v->runq.head, memory_order_relaxed) &
            XI_MPSCQ_IDLE)
            parked = parked != NULL ? parked : v;
        else if (!atomic_load_explicit(&v->running, memory_order_relaxed))
            return; /* it spins: it will look */
    }
    if (parked != NULL)
        xi_worker_wake(parked);
}

/* Whether another worker offers work that w could take: its offer is up
   and its local queue holds something. */
static bool offer_pending(struct xi_worker *w)
{
    xo_runtime_t *rt = w->rt;
    unsigned n = xi_pool_slots(rt);
    for (unsigned i = 0; i < n; i++) {
        struct xi_pool *p = xi_pool_at(rt, i);
        if (p == NULL || p->worker == w || !p->ops->runs_movable)
            continue;
        /* relaxed: ordered by the fences (xi_worker_offer, sleeping). */
        if (atomic_load_explicit(&p->worker->surplus, memory_order_relaxed) &&
            xi_stealq_len(&p->worker->local) != 0)
            return true;
    }
    return false;
}

/* Owner: queue a movable actor's item in w's local queue. False when the
   queue is full. The first item beyond the one w runs next makes w offer
   work to thieves. */
static bool local_push(struct xi_worker *w, struct xi_item *it)
{
    uint32_t len = xi_stealq_push(&w->local, it);
    /* relaxed: the owner's own hint (see `surplus`); loaded before the
       store so that an unchanged flag costs no write on its line. */
    if (len >= 2 && w->steals &&
        !atomic_load_explicit(&w->surplus, memory_order_relaxed))
        xi_worker_offer(w);
    return len != 0;
}

/* Owner: the next item of w's local queue, or NULL; an empty queue takes
   the offer back. */
static struct xi_item *local_pop(struct xi_worker *w)
{
    struct xi_item *it = xi_stealq_pop(&w->local);
    /* relaxed: see local_push. */
    if (it == NULL &&
        atomic_load_explicit(&w->surplus, memory_order_relaxed))
        atomic_store_explicit(&w->surplus, false, memory_order_relaxed);
    return it;
}

void xi_schedule(struct xi_cell *c)
{
    /* Locality: a movable actor made runnable by a send from a worker
       runs on that worker, where the message was just written. */
    struct xi_worker *w = xi_tls_worker;
    if (c->movable && w != NULL && w->rt == c->rt && w->hosts_movable &&
        local_push(w, &c->run))
        return;
    xi_schedule_item(c, &c->run);
}

void xi_schedule_item(struct xi_cell *c, struct xi_item *it)
{
    struct xi_worker *home = xi_pool_worker(c->rt, c->pool);
    /* A movable actor whose home is busy goes to a parked worker: the turn
       runs there, the actor keeps its home. relaxed: hints. The choice and
       the push sit in one read-side section, so xo_pool_remove's grace
       period covers them: no push reaches a pool after it left. */
    if (c->movable &&
        atomic_load_explicit(&home->running, memory_order_relaxed)) {
        struct xi_reader *sect = xi_section_enter(&c->rt->rcu_sync);
        struct xi_worker *idle = parked_worker(c->rt, home);
        xi_runq_push(idle != NULL ? idle : home, it);
        xi_section_leave(&c->rt->rcu_sync, sect);
        return;
    }
    xi_runq_push(home, it);
}

struct xi_worker *xi_task_worker(xo_runtime_t *rt)
{
    unsigned n = xi_pool_slots(rt);
    for (unsigned tries = 0; tries < n; tries++) {
        /* relaxed: any spread will do. */
        unsigned i = atomic_fetch_add_explicit(&rt->rr_next, 1,
                                               memory_order_relaxed);
        struct xi_pool *p = xi_pool_at(rt, i % n);
        if (hosts_movable(p))
            return p->worker;
    }
    return xi_pool_worker(rt, 0); /* the main pool is never removed */
}

/* ---- stealing ----------------------------------------------------------- */

/*
 * An idle worker takes movable actors that have waited in another
 * worker's local queue for longer than cfg.steal_wait_ns: a queue whose
 * owner keeps up (the actors it queues run within that time, as a
 * producer's consumers do in its yields) is left alone, since moving an
 * actor costs its next messages a trip between cores each; one whose
 * owner is held by a long turn, or falls behind, gives half of what it
 * holds (docs/scheduler.md, "Locality").
 *
 * The thief watches one candidate at a time: a worker whose offer is up.
 * It notes the candidate's tail; once steal_wait_ns has passed, an item
 * below that tail still in the queue (head has not reached it) has
 * waited at least that long. The only reads of the candidate's queue are
 * those two, steal_wait_ns apart: its owner's lines are not kept busy.
 */
static struct xi_qnode *take_from(struct xi_worker *w, struct xi_worker *v)
{
    struct xi_item *got[XI_STEALQ_SIZE / 2];
    unsigned m = xi_stealq_take(&v->local, got, XI_STEALQ_SIZE / 2, true);
    if (m == 0)
        return NULL;
    if (XI_STATS)
        xi_bump(&w->obs.steals, m);
    for (unsigned j = 1; j < m; j++)
        if (!local_push(w, got[j]))
            xi_runq_push(w, got[j]);
    return &got[0]->node;
}

/* The next worker, from steal_from on, whose offer is up, or NULL. */
static struct xi_worker *offering(struct xi_worker *w)
{
    xo_runtime_t *rt = w->rt;
    unsigned n = xi_pool_slots(rt);
    for (unsigned k = 0; k < n; k++) {
        unsigned i = (w->steal_from + k) % n;
        struct xi_pool *p = xi_pool_at(rt, i);
        if (p == NULL || p->worker == w || !p->ops->runs_movable)
            continue;
        /* relaxed: the hint; the take checks the queue itself. */
        if (atomic_load_explicit(&p->worker->surplus, memory_order_relaxed)) {
            w->steal_from = i + 1;
            return p->worker;
        }
    }
    return NULL;
}

/* Idle w, now `now`: what it steals, or NULL. `at_once`: take from the
   first offer without waiting (a worker about to park with spin_ns 0). */
static struct xi_qnode *steal(struct xi_worker *w, uint64_t now, bool at_once)
{
    struct xi_worker *v = w->cand;
    if (v == NULL || at_once) {
        if ((v = offering(w)) == NULL)
            return NULL;
        if (at_once)
            return take_from(w, v);
        w->cand = v;
        /* relaxed: a snapshot; the take orders what it takes. */
        w->cand_tail = atomic_load_explicit(&v->local.tail,
                                            memory_order_relaxed);
        w->cand_since = now;
        return NULL;
    }
    if (now - w->cand_since < w->rt->cfg.steal_wait_ns)
        return NULL;
    w->cand = NULL;
    /* relaxed: as above. */
    uint32_t head = atomic_load_explicit(&v->local.head, memory_order_relaxed);
    if ((int32_t)(w->cand_tail - head) <= 0)
        return NULL; /* everything it held then has run: it keeps up */
    return take_from(w, v);
}

/* ---- timers ------------------------------------------------------------ */

/* The heap could not take t: its owner says so (docs/errors.md). */
static void file_timer(struct xi_worker *w, struct xi_timer *t)
{
    /* One armed after a hurry (a backoff decided while stopping) is cut
       short too: the hurry and the filing run on this worker. */
    if (t->urgent != NULL && t->urgent(t))
        t->deadline = 0;
    if (xi_heap_insert(&w->rt->mem, &w->timers, t) != 0)
        t->drop(t, w->rt, XO_ENOMEM);
}

static void timer_handed_over(struct xi_func *f, struct xi_worker *w)
{
    file_timer(w, xi_container_of(f, struct xi_timer, handover));
}

void xi_worker_arm(struct xi_worker *w, struct xi_timer *t)
{
    if (xi_current_worker() == w) {
        file_timer(w, t);
        return;
    }
    t->handover.fn = timer_handed_over;
    xi_worker_post(w, &t->handover);
}

uint64_t xi_worker_timers_run(struct xi_worker *w)
{
    if (w->timers.len == 0)
        return 0;
    uint64_t now = xi_now_ns();
    struct xi_timer *t;
    while ((t = xi_heap_pop_due(&w->timers, now)) != NULL)
        t->fire(t, w);
    return xi_heap_next(&w->timers);
}

static void hurry_now(struct xi_func *f, struct xi_worker *w)
{
    /* The item may have been moved here from a removed pool's worker
       (pool.c): the flag is its owner's, the timers are ours. release: a
       hurry asked after this point is posted again. */
    struct xi_worker *owner = xi_container_of(f, struct xi_worker, hurry);
    atomic_store_explicit(&owner->hurry_posted, false, memory_order_release);
    xi_heap_hurry(&w->timers);
}

void xi_worker_hurry(struct xi_worker *w)
{
    /* acq_rel: one poster at a time owns the embedded item. */
    if (atomic_exchange_explicit(&w->hurry_posted, true,
                                 memory_order_acq_rel))
        return;
    w->hurry.fn = hurry_now;
    xi_worker_post(w, &w->hurry);
}

static void hand_to(struct xi_timer *t, void *arg)
{
    xi_worker_arm(arg, t);
}

static void drop_closed(struct xi_timer *t, void *arg)
{
    t->drop(t, arg, XO_ECLOSED);
}

void xi_worker_timers_hand_off(struct xi_worker *from, struct xi_worker *to)
{
    if (to != NULL)
        xi_heap_drain(&from->rt->mem, &from->timers, hand_to, to);
    else
        xi_heap_drain(&from->rt->mem, &from->timers, drop_closed, from->rt);
}

/* ---- sleeping ---------------------------------------------------------- */

/* A handler of this worker waits on f: the completer (or a new stream
   part) is to wake this worker's own sleep. False when f changed already,
   so there is nothing to sleep for. Another worker sleeping on the same
   future (one future waited on from two workers) keeps its place: this
   one then naps, short, instead. */
static bool sleep_on_future(struct xi_worker *w, struct xo_future *f,
                            uint32_t seen, uint32_t mask, uint64_t *until)
{
    struct xi_worker *none = NULL;
    /* acq_rel: the release half publishes w to the completer, which loads
       it with acquire after its flag RMW (wake_waiters in call.c). */
    if (!atomic_compare_exchange_strong_explicit(&f->sleeper, &none, w,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire)) {
        uint64_t nap = xi_now_ns() + 200000; /* 200 us */
        if (*until == 0 || nap < *until)
            *until = nap;
    }
    /* acq_rel: announce the sleeper in the word the completer's RMW
       changes: either its RMW sees SLEEPER (and then the sleeper above),
       or ours sees its change. */
    uint32_t v = atomic_fetch_or_explicit(&f->flags, XI_FUT_SLEEPER,
                                          memory_order_acq_rel);
    return ((v ^ seen) & mask) == 0;
}

void xi_worker_sleep(struct xi_worker *w, uint64_t until, struct xo_future *f,
                     uint32_t seen, uint32_t mask)
{
    /* relaxed: ordered before the mark by mark_idle's release CAS, and
       before a completer's store of 1 by sleep_on_future's RMWs. */
    atomic_store_explicit(&w->wake, 0, memory_order_relaxed);
    if (!xi_mpscq_mark_idle(&w->runq, w->runq_tail))
        return; /* work is on its way */
    /* Empty now: the count of queued items starts again from here
       (relaxed: see runq_pushed). */
    atomic_store_explicit(&w->runq_pushed,
                          atomic_load_explicit(&w->obs.runq_taken,
                                               memory_order_relaxed),
                          memory_order_relaxed);
    xi_bump(&w->obs.parks, 1);
    XI_TRACE(w->rt, XI_TR_PARK, 0, 0, 0);
    /* Asleep, it runs no handler (one waiting in a handler is the
       watchdog's slow call, not a slow handler). relaxed: stats.h. */
    uint64_t running = atomic_load_explicit(&w->obs.actor,
                                            memory_order_relaxed);
    atomic_store_explicit(&w->obs.actor, 0, memory_order_relaxed);
    bool sleep = f == NULL || sleep_on_future(w, f, seen, mask, &until);
    /* An idle thief does not sleep through an offer: it wakes again
       within XI_OFFER_RECHECK_NS to look whether what is offered has
       waited long enough to take. seq_cst: pairs with the fence in
       xi_worker_offer (the mark above is our store): an offer made
       after this look sees the mark and wakes us. */
    if (f == NULL && w->steals) {
        atomic_thread_fence(memory_order_seq_cst);
        if (offer_pending(w)) {
            uint64_t soon = xi_now_ns() + XI_OFFER_RECHECK_NS;
            if (until == 0 || soon < until)
                until = soon;
        }
    }
    /* acquire: pairs with xi_worker_wake's release store. */
    while (sleep && atomic_load_explicit(&w->wake, memory_order_acquire) == 0) {
        uint64_t timeout = 0;
        if (until != 0) {
            uint64_t now = xi_now_ns();
            if (now >= until)
                break;
            timeout = until - now;
        }
        xi_futex_wait(&w->wake, 0, timeout);
    }
    /* acquire: as above. */
    if (atomic_load_explicit(&w->wake, memory_order_acquire) != 0)
        xi_bump(&w->obs.wakes, 1);
    xi_bump(&w->obs.seq, 1);
    atomic_store_explicit(&w->obs.actor, running, memory_order_relaxed);
    XI_TRACE(w->rt, XI_TR_WAKE, 0, 0, 0);
    if (f != NULL) {
        struct xi_worker *me = w;
        /* relaxed: a completer that still loads w only wakes us once for
           nothing. */
        atomic_compare_exchange_strong_explicit(&f->sleeper, &me, NULL,
                                                memory_order_relaxed,
                                                memory_order_relaxed);
    }
    /* Woken by a deadline: take the mark back so that senders keep pushing
       without waking us; if a sender took it already, the wake word is (or
       will be) 1 and the next sleep returns at once. acquire: pairs with
       the producers' acq_rel exchange on head. */
    uintptr_t marked = atomic_load_explicit(&w->runq.head,
                                            memory_order_acquire);
    if (marked & XI_MPSCQ_IDLE)
        atomic_compare_exchange_strong_explicit(
            &w->runq.head, &marked, marked & ~XI_MPSCQ_IDLE,
            memory_order_acq_rel, memory_order_acquire);
}

/* ---- watching ---------------------------------------------------------- */

/* End every watch: mark each mailbox idle, or, when a message came, queue
   the actor here (`home` false) or at its home (a worker that exits). */
static void end_watches(struct xi_worker *w, bool home)
{
    for (unsigned i = 0; i < w->nwatched; i++) {
        struct xi_cell *c = w->watched[i];
        if (xi_mpscq_mark_idle(&c->mbox, c->mbox_tail))
            continue;
        if (home)
            xi_schedule_item(c, &c->run);
        else
            xi_runq_push(w, &c->run);
    }
    w->nwatched = 0;
}

void xi_worker_release_watches(struct xi_worker *w)
{
    end_watches(w, false);
}

/* A watched actor with a message, taken out of the watch (it is still
   scheduled: its turn runs next), or NULL. A watched mailbox is empty
   until a sender's exchange moves its head: the scan reads only lines its
   senders write. It starts where the last one found something, so every
   watched actor is seen in turn. */
static struct xi_cell *take_watched(struct xi_worker *w)
{
    unsigned n = w->nwatched, i = w->watch_next;
    for (unsigned k = 0; k < n; k++, i++) {
        if (i >= n)
            i = 0;
        struct xi_cell *c = w->watched[i];
        if (!xi_mpscq_empty(&c->mbox, c->mbox_tail)) {
            w->watched[i] = w->watched[--w->nwatched];
            w->watch_next = i;
            return c;
        }
    }
    return NULL;
}

/* Whether c's turn ended on this worker lately (and note that it did
   now): a slot per hash of the address, so an actor counts as recent while
   no other actor with the same slot ended a turn since. */
static bool recently_run(struct xi_worker *w, struct xi_cell *c)
{
    uintptr_t a = (uintptr_t)c;
    struct xi_cell **slot = &w->recent[((a >> 6) ^ (a >> 12)) %
                                       XI_RECENT_SLOTS];
    bool seen = *slot == c;
    *slot = c;
    return seen;
}

/* The turn of c ended with its mailbox empty: watch it when this is the
   main loop of its home worker (or, for a movable actor, of any worker
   that runs movable actors), the worker will spin, the watch set has
   room, and either c came back here lately or the worker has nothing else
   to do (queued or watched). A movable actor watched here stays here:
   its next message runs on this worker, wherever it was sent from. */
static bool watch(struct xi_worker *w, struct xi_cell *c)
{
    /* A push racing with the emptiness check is seen by the poll. */
    if (w->block_depth != 0 ||
        (c->pool != w->pool_index && !(c->movable && w->hosts_movable)) ||
        w->rt->cfg.spin_ns == 0 || w->nwatched == XI_WATCH_MAX ||
        c->mbox_tail != &c->mbox.stub)
        return false;
    if (!recently_run(w, c) &&
        (w->nwatched != 0 || !xi_mpscq_empty(&w->runq, w->runq_tail) ||
         xi_stealq_len(&w->local) != 0))
        return false;
    w->watched[w->nwatched++] = c;
    return true;
}

/* ---- the loop ------------------------------------------------------------ */

/* A pop of the run queue, counted. */
static inline struct xi_qnode *runq_pop(struct xi_worker *w)
{
    struct xi_qnode *n = xi_mpscq_pop(&w->runq, &w->runq_tail);
    if (XI_STATS && n != NULL)
        xi_bump(&w->obs.runq_taken, 1);
    return n;
}

/* The next queued item: the run queue and the local queue, alternately
   first, so that neither can keep the other waiting for more than one
   item. */
static struct xi_qnode *queue_pop(struct xi_worker *w)
{
    struct xi_qnode *n;
    struct xi_item *it;
    w->local_first = !w->local_first;
    if (w->local_first && (it = local_pop(w)) != NULL)
        return &it->node;
    if ((n = runq_pop(w)) != NULL)
        return n;
    if (!w->local_first && (it = local_pop(w)) != NULL)
        return &it->node;
    return NULL;
}

/* One poll: the queues and the watched mailboxes, alternately first, so
   that neither busy queues nor busy watched actors keep the other waiting
   for more than one turn. */
static struct xi_qnode *poll_once(struct xi_worker *w)
{
    struct xi_qnode *n;
    struct xi_cell *c;
    if (w->last_watched) {
        if ((n = queue_pop(w)) != NULL) {
            w->last_watched = false;
            return n;
        }
        c = take_watched(w);
        return c != NULL ? &c->run.node : NULL;
    }
    if ((c = take_watched(w)) != NULL) {
        w->last_watched = true;
        return &c->run.node;
    }
    return queue_pop(w);
}

/* Whether a worker that may run on w's CPU is awake (not parked): while
   one is, w gives the CPU up between polls instead of spinning on it. */
static bool mate_awake(struct xi_worker *w)
{
    /* relaxed: hints (see core_shared); a wrong answer costs a spin or a
       system call, never a message. The mate pointers are loaded with
       acquire: pairs with the release store in xi_pools_update_sharing,
       so the mate's run queue is initialised memory when we read it. */
    if (!atomic_load_explicit(&w->core_shared, memory_order_relaxed))
        return false;
    struct xi_worker *v =
        atomic_load_explicit(&w->core_mate, memory_order_acquire);
    if (v == NULL)
        return true; /* unpinned: the sharers are not known */
    for (unsigned k = 0; k < XO_POOLS_MAX && v != NULL && v != w; k++) {
        if (!(atomic_load_explicit(&v->runq.head, memory_order_relaxed) &
              XI_MPSCQ_IDLE))
            return true;
        v = atomic_load_explicit(&v->core_mate, memory_order_acquire);
    }
    return false;
}

/* The next runnable node: poll (the queues, and the watched mailboxes),
   spin for spin_ns looking for work to steal now and then, let the pool's
   kind poll, then sleep. Due timers fire in between. */
static struct xi_qnode *next_runnable(struct xi_worker *w)
{
    uint64_t next = xi_worker_timers_run(w);
    struct xi_qnode *n = poll_once(w);
    if (n != NULL)
        return n;
    uint64_t spin = w->rt->cfg.spin_ns;
    uint64_t deadline = spin ? xi_now_ns() + spin : 0;
    uint64_t idle_since = xi_coarse_ns();
    bool (*kind_poll)(struct xi_pool *) = w->pool->ops->poll;
    for (unsigned i = 1;; i++) {
        n = poll_once(w);
        /* The offers are on lines their owners write only when an offer
           changes: looking costs them nothing. */
        if (n == NULL && (i & 3) == 0 && w->steals)
            n = steal(w, xi_now_ns(), false);
        if (n != NULL) {
            xi_bump(&w->idle_ns, xi_coarse_ns() - idle_since);
            return n;
        }
        if (deadline != 0 && ((i & 63) != 0 || xi_now_ns() < deadline)) {
            /* The kind's own work (a stream's events) is looked at while
               spinning too, once every 64 polls. */
            if ((i & 63) == 0 && kind_poll != NULL)
                (void)kind_poll(w->pool);
            /* On a CPU another worker needs (maybe for the very message
               we wait for), poll between its turns rather than spin
               through them. */
            if (mate_awake(w))
                sched_yield();
            else
                xi_cpu_relax();
            continue;
        }
        /* A look at an offer is under way: finish it before sleeping,
           or the worker that offered (and will not offer again while its
           offer stands) would keep its queue. Bounded by steal_wait_ns,
           when that is short; a longer wait is the watchdog's to cut. */
        if (w->cand != NULL && w->rt->cfg.steal_wait_ns <= XI_STEAL_LOOK_MAX) {
            uint64_t now = xi_now_ns();
            if (now - w->cand_since < w->rt->cfg.steal_wait_ns) {
                xi_cpu_relax();
                continue;
            }
            if ((n = steal(w, now, false)) != NULL) {
                xi_bump(&w->idle_ns, xi_coarse_ns() - idle_since);
                return n;
            }
        }
        w->cand = NULL;
        /* Nothing came: stop watching before sleeping (the next sender
           then schedules the actor and wakes us as usual). */
        if (w->nwatched != 0) {
            xi_worker_release_watches(w);
            continue;
        }
        if (kind_poll != NULL && kind_poll(w->pool)) {
            deadline = spin ? xi_now_ns() + spin : 0;
            continue;
        }
        if (w->steals && spin == 0 && (n = steal(w, 0, true)) != NULL) {
            xi_bump(&w->idle_ns, xi_coarse_ns() - idle_since);
            return n;
        }
        xi_worker_sleep(w, next, NULL, 0, 0);
        xi_cpu_relax(); /* it may return at once: a send is mid-way */
        next = xi_worker_timers_run(w);
        deadline = spin ? xi_now_ns() + spin : 0;
    }
}

/* After c's turn: watch it, mark it idle, or queue it again — on this
   worker if it is the actor's home, else through the scheduler. */
static void after_turn(struct xi_worker *w, struct xi_cell *c,
                       enum xi_turn_end end)
{
    if (end == XI_TURN_GONE || end == XI_TURN_SUSPENDED)
        return; /* not ours to touch any more */
    if (end == XI_TURN_EMPTY && watch(w, c))
        return;
    if (end == XI_TURN_EMPTY && xi_mpscq_mark_idle(&c->mbox, c->mbox_tail)) {
        /* The mailbox is empty: its count starts again from here (the
           CAS has just taken the line; relaxed: stats.h). */
        if (XI_STATS)
            atomic_store_explicit(
                &c->sent,
                atomic_load_explicit(&c->handled, memory_order_relaxed),
                memory_order_relaxed);
        return;
    }
    /* Still has work (or a send is mid-way): a backlog, maybe, worth a
       look at its depth (the common turn does not look). */
    if (XI_STATS && end == XI_TURN_MORE)
        xi_note_depth(w->rt, c, xi_cell_depth(c));
    /* A movable actor stays where it ran, where an idle worker can take
       it; the others go back to their home. */
    if (c->movable && w->hosts_movable && local_push(w, &c->run))
        return;
    if (c->pool == w->pool_index)
        xi_runq_push(w, &c->run);
    else
        xi_schedule_item(c, &c->run);
}

/* Run one run-queue item. Returns false for the exit request. */
static bool dispatch(struct xi_worker *w, struct xi_qnode *n)
{
    struct xi_item *it = (struct xi_item *)n;
    switch (it->kind) {
    case XI_K_ACTOR: {
        struct xi_cell *c = xi_container_of(it, struct xi_cell, run);
        after_turn(w, c, xi_turn_run(w, c));
        return true;
    }
    case XI_K_TELL:
    case XI_K_CALL:
        xi_turn_task(w, (struct xi_envelope *)it);
        return true;
    case XI_K_RESUME: {
        struct xi_cell *c = xi_recovery_item_cell(it);
        after_turn(w, c, xi_turn_resume(w, c));
        return true;
    }
    case XI_K_FUNC: {
        struct xi_func *f = (struct xi_func *)it;
        f->fn(f, w);
        return true;
    }
    case XI_K_REAP:
        xi_turn_reap(w, xi_container_of(it, struct xi_cell, reap));
        return true;
    default:
        return false; /* XI_K_EXIT */
    }
}

bool xi_worker_run_lent(struct xi_worker *w)
{
    struct xi_qnode *n = queue_pop(w);
    if (n == NULL)
        return false;
    if (((struct xi_item *)n)->kind == XI_K_EXIT)
        /* The pool is being removed while a handler here is mid-turn (a
           shared turn, a stateless task): finish that turn, then the main
           loop exits. */
        w->exit_pending = true;
    else
        dispatch(w, n);
    return true;
}

static void *worker_main(void *arg)
{
    struct xi_worker *w = arg;
    xi_tls_worker = w;
    w->reader.domain = &w->rt->rcu_sync;
    xi_tls_reader = &w->reader;
    while (!w->exit_pending) {
        struct xi_qnode *n = next_runnable(w);
        /* relaxed: a hint for xi_schedule's sharing of movable actors. */
        atomic_store_explicit(&w->running, true, memory_order_relaxed);
        bool go_on = dispatch(w, n);
        atomic_store_explicit(&w->running, false, memory_order_relaxed);
        if (!go_on)
            break;
    }
    /* A removed pool's worker: the movable actors it watches or holds in
       its local queue go home (at stop, every actor is gone by now). */
    w->hosts_movable = false;
    if (!xi_rt_closing(w->rt)) {
        end_watches(w, true);
        struct xi_item *it;
        while ((it = xi_stealq_pop(&w->local)) != NULL)
            xi_schedule_item(xi_container_of(it, struct xi_cell, run), it);
        /* relaxed: the hint (worker.h); nothing is left to take. */
        atomic_store_explicit(&w->surplus, false, memory_order_relaxed);
    }
    /* A removed pool's timers go to the other pools (pool.c); at stop
       nobody is left to fire them. */
    if (xi_rt_closing(w->rt))
        xi_worker_timers_hand_off(w, NULL);
    xi_tls_reader = NULL;
    xi_tls_worker = NULL;
    return NULL;
}

void xi_worker_init(struct xi_worker *w, xo_runtime_t *rt,
                    struct xi_pool *pool, int core)
{
    memset(w, 0, sizeof(*w));
    w->rt = rt;
    w->pool = pool;
    w->core = core;
    w->exit_item.kind = XI_K_EXIT;
    w->start_ns = xi_coarse_ns();
    w->pool_index = pool->index;
    w->obs.sample_every = rt->cfg.handler_sample;
    w->obs.sample_rng = ((uintptr_t)w ^ xi_now_ns()) | 1;
    w->obs.sample_left = 1;
    (void)xi_sample_next(&w->obs);
    xi_mpscq_init(&w->runq, &w->runq_tail, false);
    xi_stealq_init(&w->local);
    w->hosts_movable = pool->ops->runs_movable;
    w->steals = w->hosts_movable && rt->cfg.steal;
}

int xi_worker_start(struct xi_worker *w)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, w->rt->cfg.stack_size);
    w->pinned = false;
    int rc = EINVAL;
    if (w->rt->cfg.pin_threads && w->core >= 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(w->core, &one);
        if (pthread_attr_setaffinity_np(&attr, sizeof(one), &one) == 0) {
            rc = pthread_create(&w->thread, &attr, worker_main, w);
            w->pinned = rc == 0;
        }
    }
    if (!w->pinned) {
        /* Pinning refused (or off): run where the scheduler puts us. */
        pthread_attr_destroy(&attr);
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, w->rt->cfg.stack_size);
        rc = pthread_create(&w->thread, &attr, worker_main, w);
    }
    pthread_attr_destroy(&attr);
    return rc == 0 ? 0 : XO_ENOMEM;
}

void xi_worker_join(struct xi_worker *w)
{
    xi_runq_push(w, &w->exit_item);
    pthread_join(w->thread, NULL);
}
