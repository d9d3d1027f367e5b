/*
 * sched.c -- the workers. One thread per CPU pool, pinned to its core,
 * running the actors whose home is its pool.
 *
 * A worker's run queue holds runnable actors (their `run` item). An actor is
 * in at most one run queue at a time: it enters when the send that found its
 * mailbox idle-marked schedules it, and it leaves when its worker pops it.
 * A turn handles up to cfg.batch messages; then, if the mailbox is empty the
 * worker marks it idle (the next sender reschedules it), otherwise the actor
 * goes to the back of the run queue so its pool-mates get their turn.
 *
 * Idle: a worker with an empty run queue polls it for cfg.spin_ns, then
 * marks the run queue idle and sleeps on its futex word. The sender whose
 * exchange takes that mark is the one that wakes it (see mpscq.h), so a wake
 * is never lost and never sent twice.
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
 * its worker can bring it back: before it parks, before a blocking wait
 * and before a yield (which serve the run queue only), it ends every watch
 * (release_watches marks each mailbox idle, or, when a message slipped in,
 * queues the actor).
 *
 * Stop: each worker's exit node is pushed once all actors are gone; a
 * worker that pops it returns.
 */
#include "runtime.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static __thread struct xi_worker *tls_worker
    __attribute__((tls_model("initial-exec")));
static __thread struct xo_ctx *tls_ctx
    __attribute__((tls_model("initial-exec")));

struct xi_worker *xi_current_worker(void)
{
    return tls_worker;
}

xo_runtime_t *xi_current_worker_runtime(void)
{
    return tls_worker ? tls_worker->rt : NULL;
}

struct xo_ctx *xi_current_ctx(void)
{
    return tls_ctx;
}

void xi_set_current_ctx(struct xo_ctx *ctx)
{
    tls_ctx = ctx;
}

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
    /* release: pairs with the acquire load in park(); the worker that
       wakes sees the run queue node pushed before. */
    atomic_store_explicit(&w->wake, 1, memory_order_release);
    syscall(SYS_futex, (uint32_t *)&w->wake, FUTEX_WAKE_PRIVATE, 1, NULL,
            NULL, 0);
}

void xi_runq_push(struct xi_worker *w, struct xi_item *it)
{
    if (xi_mpscq_push(&w->runq, &it->node))
        xi_worker_wake(w);
}

/* A parked worker of an active pool other than `not`, or NULL. */
static struct xi_worker *parked_worker(xo_runtime_t *rt, struct xi_worker *not)
{
    unsigned n = xi_pool_slots(rt);
    for (unsigned i = 0; i < n; i++) {
        struct xi_worker *w = xi_pool(rt, i);
        if (w == NULL || w == not || !xi_pool_active(w))
            continue;
        /* relaxed: a hint; a wrong guess only costs locality. */
        if (atomic_load_explicit(&w->runq.head, memory_order_relaxed) &
            XI_MPSCQ_IDLE)
            return w;
    }
    return NULL;
}

void xi_schedule(struct xi_cell *c)
{
    struct xi_worker *home = xi_pool(c->rt, c->pool);
    /* A movable actor whose home is busy goes to a parked worker: the turn
       runs there, the actor keeps its home. relaxed: hints. The choice and
       the push sit in one read-side section, so xo_pool_remove's grace
       period covers them: no push reaches a pool after it left. */
    if (c->movable &&
        atomic_load_explicit(&home->running, memory_order_relaxed)) {
        struct xi_reader *sect = xi_section_enter(&c->rt->rcu_sync);
        struct xi_worker *idle = parked_worker(c->rt, home);
        xi_runq_push(idle != NULL ? idle : home, &c->run);
        xi_section_leave(&c->rt->rcu_sync, sect);
        return;
    }
    xi_runq_push(home, &c->run);
}

struct xi_worker *xi_task_worker(xo_runtime_t *rt)
{
    unsigned n = xi_pool_slots(rt);
    for (unsigned tries = 0; tries < n; tries++) {
        /* relaxed: any spread will do. */
        unsigned i = atomic_fetch_add_explicit(&rt->rr_next, 1,
                                               memory_order_relaxed);
        struct xi_worker *w = xi_pool(rt, i % n);
        if (w != NULL && xi_pool_active(w))
            return w;
    }
    return xi_pool(rt, 0); /* the main pool is never removed */
}

static void bump(_Atomic uint64_t *counter, uint64_t by)
{
    /* relaxed single-writer counters (see struct xi_cell). */
    atomic_store_explicit(
        counter, atomic_load_explicit(counter, memory_order_relaxed) + by,
        memory_order_relaxed);
}

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

/*
 * The one sleep of a worker, idle or waiting in a handler: mark the run
 * queue idle (so the next sender wakes it, see mpscq.h), then sleep on the
 * wake word until a sender or f's completer stores 1, or until `until`
 * (0: none; the next timer, a wait's deadline). Returns at once when work
 * is on its way. On return the worker takes its mark back if no sender
 * did, so that senders keep pushing without waking it.
 */
static void idle_sleep(struct xi_worker *w, uint64_t until,
                       struct xo_future *f, uint32_t seen, uint32_t mask)
{
    /* relaxed: ordered before the mark by mark_idle's release CAS, and
       before a completer's store of 1 by sleep_on_future's RMWs. */
    atomic_store_explicit(&w->wake, 0, memory_order_relaxed);
    if (!xi_mpscq_mark_idle(&w->runq, w->runq_tail))
        return;
    bool sleep = f == NULL || sleep_on_future(w, f, seen, mask, &until);
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
    if (f != NULL) {
        struct xi_worker *me = w;
        /* relaxed: a completer that still loads w only wakes us once for
           nothing. */
        atomic_compare_exchange_strong_explicit(&f->sleeper, &me, NULL,
                                                memory_order_relaxed,
                                                memory_order_relaxed);
    }
    /* acquire: pairs with the producers' acq_rel exchange on head. */
    uintptr_t marked = atomic_load_explicit(&w->runq.head,
                                            memory_order_acquire);
    if (marked & XI_MPSCQ_IDLE)
        atomic_compare_exchange_strong_explicit(
            &w->runq.head, &marked, marked & ~XI_MPSCQ_IDLE,
            memory_order_acq_rel, memory_order_acquire);
}

/* End every watch: mark each mailbox idle, or, when a message came in the
   meantime, queue the actor on this worker like any runnable actor. */
static void release_watches(struct xi_worker *w)
{
    for (unsigned i = 0; i < w->nwatched; i++) {
        struct xi_cell *c = w->watched[i];
        if (!xi_mpscq_mark_idle(&c->mbox, c->mbox_tail))
            xi_runq_push(w, &c->run);
    }
    w->nwatched = 0;
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

/* One poll: the run queue and the watched mailboxes, alternately first,
   so that neither a busy run queue nor busy watched actors keep the other
   waiting for more than one turn. */
static struct xi_qnode *poll_once(struct xi_worker *w)
{
    struct xi_qnode *n;
    struct xi_cell *c;
    if (w->last_watched) {
        if ((n = xi_mpscq_pop(&w->runq, &w->runq_tail)) != NULL) {
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
    return xi_mpscq_pop(&w->runq, &w->runq_tail);
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
    for (unsigned k = 0; k < XI_MAX_POOLS && v != NULL && v != w; k++) {
        if (!(atomic_load_explicit(&v->runq.head, memory_order_relaxed) &
              XI_MPSCQ_IDLE))
            return true;
        v = atomic_load_explicit(&v->core_mate, memory_order_acquire);
    }
    return false;
}

/* The next runnable node: poll (the run queue, and the watched mailboxes),
   spin for spin_ns, then park. Due timers fire in between. */
static struct xi_qnode *next_runnable(struct xi_worker *w)
{
    uint64_t next = xi_timers_run(w);
    struct xi_qnode *n = poll_once(w);
    if (n != NULL)
        return n;
    uint64_t spin = w->rt->cfg.spin_ns;
    uint64_t deadline = spin ? xi_now_ns() + spin : 0;
    uint64_t idle_since = xi_coarse_ns();
    for (unsigned i = 1;; i++) {
        n = poll_once(w);
        if (n != NULL) {
            bump(&w->idle_ns, xi_coarse_ns() - idle_since);
            return n;
        }
        if (deadline != 0 && ((i & 63) != 0 || xi_now_ns() < deadline)) {
            /* On a CPU another worker needs (maybe for the very message
               we wait for), poll between its turns rather than spin
               through them. */
            if (mate_awake(w))
                sched_yield();
            else
                xi_cpu_relax();
            continue;
        }
        /* Nothing came: stop watching before sleeping (the next sender
           then schedules the actor and wakes us as usual). */
        if (w->nwatched != 0) {
            release_watches(w);
            continue;
        }
        idle_sleep(w, next, NULL, 0, 0);
        xi_cpu_relax(); /* it may return at once: a send is mid-way */
        next = xi_timers_run(w);
        deadline = spin ? xi_now_ns() + spin : 0;
    }
}

static void report_failure(struct xi_worker *w, struct xi_cell *c,
                           uint32_t tag, int rc)
{
    bump(&c->failed, 1);
    if (w->rt->cfg.on_handler_error != NULL)
        w->rt->cfg.on_handler_error(w->rt, xi_cell_ref(c), tag, rc,
                                    w->rt->cfg.on_handler_error_user);
}

void xi_ctx_clear_fail(struct xo_ctx *ctx)
{
    if (ctx->fail_msg) {
        xi_mem_free(&ctx->rt->mem, ctx->fail_msg, strlen(ctx->fail_msg) + 1);
        ctx->fail_msg = NULL;
    }
}

/* A call whose item was cancelled (or timed out) before it started is
   skipped: it is complete already. */
static bool call_may_start(struct xi_envelope *env)
{
    if (env->item.kind != XI_K_CALL)
        return true;
    xo_request_t *req = env->msg.request;
    return xi_future_start_item(xi_request_future(req), req->index);
}

/* Run on_message for one envelope, answer what it left unanswered, free
   it. The context's cell is the actor's. */
static void deliver(struct xi_worker *w, struct xo_ctx *ctx,
                    struct xi_envelope *env)
{
    struct xi_cell *c = ctx->cell;
    if (env->item.kind == XI_K_CONT) {
        int rc = c->created ? xi_run_continuation(ctx, env) : 0;
        if (!c->created)
            xi_drop_continuation(w->rt, env);
        else
            xi_envelope_free(w->rt, env);
        if (rc < 0)
            report_failure(w, c, 0, rc);
        xi_ctx_clear_fail(ctx); /* not the next call's error text */
        bump(&c->handled, 1);
        return;
    }
    if (!call_may_start(env)) {
        xi_envelope_free(w->rt, env);
        return;
    }
    int rc = 0;
    if (!c->created)
        rc = XO_ENOTEXIST; /* on_create failed: answer calls, drop tells */
    else if (c->def->on_message != NULL) {
        ctx->msg = &env->msg;
        rc = c->def->on_message(ctx, c->state, &env->msg);
        ctx->msg = NULL;
        bump(&c->handled, 1);
        if (rc < 0 && env->item.kind == XI_K_TELL)
            report_failure(w, c, env->msg.tag, rc);
    }
    if (env->msg.request != NULL) /* tells, the common case, skip both */
        xi_request_finish(ctx, &env->msg, rc);
    if (ctx->fail_msg != NULL)
        xi_ctx_clear_fail(ctx);
    xi_envelope_free(w->rt, env);
}

/* The next message of a stateful actor (the stash first). */
static struct xi_envelope *next_message(struct xi_cell *c)
{
    if (c->stash != NULL) {
        struct xi_envelope *e = c->stash;
        c->stash = NULL;
        return e;
    }
    struct xi_qnode *q = xi_mpscq_pop(&c->mbox, &c->mbox_tail);
    if (q == NULL)
        return NULL;
    /* The reap marker comes back as a fake envelope pointer: callers
       compare it with &c->reap before touching it. */
    struct xi_envelope *e = (struct xi_envelope *)(void *)q;
    if (c->capacity != 0 && (struct xi_item *)q != &c->reap &&
        e->item.kind != XI_K_CONT) /* relaxed: see struct xi_cell */
        atomic_fetch_sub_explicit(&c->queued, 1, memory_order_relaxed);
    return e;
}

/* Messages of one on_batch run whose pointers live on the turn's own stack
   frame: 512 bytes. A longer run (cfg.batch over 64) moves them to the
   heap, so that the stack a turn uses stays bounded however large the
   batch (a blocking wait inside on_batch nests another actor's turn, and
   its on_batch, on the same stack, up to XO_MAX_NESTED_WAITS deep). */
#define XI_BATCH_ON_STACK 64u

static void envelope_of_free(xo_runtime_t *rt, const xo_msg_t *m)
{
    xi_envelope_free(rt, xi_container_of(m, struct xi_envelope, msg));
}

/* The run's array is full at `n`: make room for `room` in all, on the
   heap. False (the run ends here) when that allocation fails. */
static bool grow_run(xo_runtime_t *rt, const xo_msg_t ***msgs,
                     const xo_msg_t **local, unsigned n, unsigned room)
{
    if (*msgs != local || room <= n)
        return false;
    const xo_msg_t **heap = xi_mem_alloc(&rt->mem, room * sizeof(*heap));
    if (heap == NULL)
        return false;
    memcpy(heap, local, n * sizeof(*heap));
    *msgs = heap;
    return true;
}

/*
 * on_batch: gather the run of same-tag messages that starts with `first`
 * (up to `room`), hand it over in one call, then answer and free each.
 * Returns how many messages were consumed.
 */
static unsigned deliver_batch(struct xi_worker *w, struct xo_ctx *ctx,
                              struct xi_envelope *first, unsigned room)
{
    struct xi_cell *c = ctx->cell;
    const xo_msg_t *local[XI_BATCH_ON_STACK], **msgs = local;
    unsigned cap = room < XI_BATCH_ON_STACK ? room : XI_BATCH_ON_STACK;
    const uint32_t tag = first->msg.tag; /* `first` may be freed below */
    unsigned n = 0, consumed = 0;
    for (struct xi_envelope *e = first; e != NULL;) {
        consumed++;
        if (call_may_start(e)) {
            msgs[n++] = &e->msg;
        } else {
            xi_envelope_free(w->rt, e);
        }
        if (consumed == room)
            break;
        if (n == cap) {
            if (!grow_run(w->rt, &msgs, local, n, room))
                break;
            cap = room;
        }
        e = next_message(c);
        if (e == NULL)
            break;
        if ((struct xi_item *)e == &c->reap || e->item.kind == XI_K_CONT ||
            e->msg.tag != tag) {
            c->stash = e;
            break;
        }
    }
    if (n > 0) {
        int rc = c->def->on_batch(ctx, c->state, msgs, n);
        bump(&c->handled, n);
        if (rc < 0 && msgs[0]->request == NULL)
            report_failure(w, c, msgs[0]->tag, rc);
        for (unsigned i = 0; i < n; i++) {
            xi_request_finish(ctx, msgs[i], rc);
            envelope_of_free(w->rt, msgs[i]);
        }
        xi_ctx_clear_fail(ctx);
    }
    if (msgs != local)
        xi_mem_free(&w->rt->mem, msgs, cap * sizeof(*msgs));
    return consumed;
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

/* The turn of c ended with its mailbox empty: watch it (see "Watching")
   when this is its home worker's main loop, the worker will spin, the
   watch set has room, and either c came back here lately or the worker
   has nothing else to do (queued or watched). */
static bool watch(struct xi_worker *w, struct xi_cell *c)
{
    /* A push racing with the emptiness check is seen by the poll. */
    if (w->block_depth != 0 || c->pool != w->index ||
        w->rt->cfg.spin_ns == 0 || w->nwatched == XI_WATCH_MAX ||
        c->mbox_tail != &c->mbox.stub)
        return false;
    if (!recently_run(w, c) &&
        (w->nwatched != 0 || !xi_mpscq_empty(&w->runq, w->runq_tail)))
        return false;
    w->watched[w->nwatched++] = c;
    return true;
}

/* One turn of a stateful actor: at most cfg.batch messages. */
static void run_turn(struct xi_worker *w, struct xi_cell *c)
{
    unsigned batch = w->rt->cfg.batch, n = 0;
    struct xo_ctx ctx = { w->rt, c, c->pool, NULL, NULL,
                          w->rt->cfg.yield_sends };
    struct xo_ctx *saved = tls_ctx;
    tls_ctx = &ctx;
    while (n < batch) {
        struct xi_envelope *e = next_message(c);
        if (e == NULL)
            break;
        if ((struct xi_item *)e == &c->reap) {
            if (xi_cell_reap(c, &ctx)) {
                tls_ctx = saved;
                bump(&w->handled, n);
                return; /* freed */
            }
            continue;   /* on_destroy refused: the actor lives on */
        }
        if (c->def->on_batch != NULL && c->created &&
            e->item.kind != XI_K_CONT) {
            n += deliver_batch(w, &ctx, e, batch - n);
        } else {
            deliver(w, &ctx, e);
            n++;
        }
    }
    tls_ctx = saved;
    bump(&w->handled, n);
    /* Done with an empty mailbox: watch it, or mark it idle. */
    if (n < batch && c->stash == NULL &&
        (watch(w, c) || xi_mpscq_mark_idle(&c->mbox, c->mbox_tail)))
        return;
    /* Still has work (or a send is mid-way): back of the line, on this
       worker if it is the actor's home, else through the scheduler. */
    if (c->pool == w->index)
        xi_runq_push(w, &c->run);
    else
        xi_schedule(c);
}

/* A message to a stateless actor, run as a task on this worker. */
static void run_task(struct xi_worker *w, struct xi_envelope *env)
{
    struct xi_cell *c = xi_task_take_cell(env, w->rt);
    struct xo_ctx ctx = { w->rt, c, w->index, NULL, NULL, 0 };
    struct xo_ctx *saved = tls_ctx;
    tls_ctx = &ctx;
    deliver(w, &ctx, env);
    tls_ctx = saved;
    bump(&w->handled, 1);
    xi_stateless_task_done(c);
}

/* Run one run-queue item. Returns false for the exit request. */
static bool dispatch(struct xi_worker *w, struct xi_qnode *n)
{
    struct xi_item *it = (struct xi_item *)n;
    switch (it->kind) {
    case XI_K_ACTOR:
        run_turn(w, xi_container_of(it, struct xi_cell, run));
        return true;
    case XI_K_TIMER:
        xi_timer_insert(w, xi_container_of(it, struct xi_timer, item));
        return true;
    case XI_K_REAP: {
        struct xi_cell *c = xi_container_of(it, struct xi_cell, reap);
        struct xo_ctx ctx = { w->rt, c, c->pool, NULL, NULL, 0 };
        struct xo_ctx *saved = tls_ctx;
        tls_ctx = &ctx;
        (void)xi_cell_reap(c, &ctx);
        tls_ctx = saved;
        return true;
    }
    case XI_K_TELL:
    case XI_K_CALL:
        run_task(w, (struct xi_envelope *)it);
        return true;
    default:
        return false; /* XI_K_EXIT */
    }
}

/* Run one item of the run queue while a handler of this worker is in the
   middle of its turn (it waits, or it yields). False: the queue is empty. */
static bool run_lent(struct xi_worker *w)
{
    struct xi_qnode *n = xi_mpscq_pop(&w->runq, &w->runq_tail);
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

/*
 * Frames. A turn whose handler waits (xi_worker_block), yields, or runs a
 * spawned actor's on_create on this thread is suspended here until what
 * runs above it on the same stack returns: the turn below waits for the
 * one above, as surely as for the call it made. The cycle check of
 * blocking waits (call.c) follows that edge too: each frame's actor keeps,
 * in `above`, the actor whose frame was pushed over it, so a chain of
 * waits that reaches a suspended turn continues to whatever holds it down,
 * on this worker or any other. Stateless actors keep no edges (several of
 * their handlers may run at once; the walk stops at them).
 */
bool xi_frame_push(struct xi_worker *w, struct xi_cell *c)
{
    if (w->nblocked == XO_MAX_NESTED_WAITS)
        return false;
    if (w->nblocked > 0) {
        struct xi_cell *below = w->blocked[w->nblocked - 1];
        /* seq_cst: an edge of the wait-for graph, stored before the
           waiter's own waiting_for and walk (call.c). */
        if (!below->stateless)
            atomic_store(&below->above, xi_cell_ref(c).id);
    }
    w->blocked[w->nblocked++] = c;
    return true;
}

void xi_frame_pop(struct xi_worker *w)
{
    w->nblocked--;
    if (w->nblocked > 0) {
        struct xi_cell *below = w->blocked[w->nblocked - 1];
        /* seq_cst: as in xi_frame_push. The turn above goes on running,
           but it no longer waits. */
        if (!below->stateless)
            atomic_store(&below->above, 0);
    }
}

/*
 * Waiting inside a handler: until the future's flags change, in `mask`,
 * from `seen` (its DONE bit, or a stream's event count), or the deadline
 * (0: none) passes. Meanwhile the worker runs what its run queue holds,
 * nested, and fires its due timers; with nothing to run it sleeps in
 * idle_sleep, from which both new work and the future's completer wake it.
 * The caller pushed the waiting turn's frame.
 */
int xi_worker_block(struct xi_worker *w, struct xo_future *f, uint32_t seen,
                    uint32_t mask, uint64_t deadline)
{
    /* The loop below serves the run queue only: watched actors go back to
       being scheduled normally (one may be what we wait for). */
    release_watches(w);
    w->block_depth++;
    int rc = 0;
    for (unsigned idle = 0;;) {
        /* acquire: pairs with the completer's release of the flags. */
        uint32_t v = atomic_load_explicit(&f->flags, memory_order_acquire);
        if ((v ^ seen) & mask)
            break;
        uint64_t now = xi_now_ns();
        if (deadline != 0 && now >= deadline) {
            rc = XO_ETIMEDOUT;
            break;
        }
        uint64_t next = xi_timers_run(w);
        if (run_lent(w)) {
            idle = 0;
            continue;
        }
        if (++idle < 64) {
            xi_cpu_relax();
            continue;
        }
        idle = 0;
        if (deadline != 0 && (next == 0 || deadline < next))
            next = deadline;
        idle_sleep(w, next, f, seen, mask);
    }
    w->block_depth--;
    return rc;
}

/*
 * Yielding. A turn that sends many messages lends its worker to the items
 * queued behind it, every cfg.yield_sends messages it sends: without that, a
 * producer that sends millions of messages from one turn keeps its pool-mates
 * (often the very consumers of its flood) off the core until it returns, and
 * the flood piles up in their mailboxes. The items run nested, inside the
 * send that triggered the yield, as they do while a handler waits
 * (xi_worker_block); a handler run that way does not yield in turn, so the
 * nesting is one level deep. Only stateful turns yield: their actor is
 * running and so in no run queue, which keeps it from running nested in its
 * own turn.
 */
void xi_turn_yield(struct xo_ctx *ctx)
{
    struct xi_worker *w = tls_worker;
    ctx->yield_in = ctx->rt->cfg.yield_sends;
    if (w == NULL || w->rt != ctx->rt || w->block_depth != 0)
        return;
    /* Timers come due during a flood too (delayed tells, call timeouts);
       what they send is then queued like the rest. */
    xi_timers_run(w);
    if (w->nwatched == 0 && xi_mpscq_empty(&w->runq, w->runq_tail))
        return;
    /* The yielding actor resumes only after the turns nested above it
       end: its frame tells the cycle check of their waits. */
    if (!xi_frame_push(w, ctx->cell))
        return;
    /* Watched actors with messages join the queue, the others are marked
       idle: the next send to one of them queues it. */
    release_watches(w);
    w->block_depth++;
    /* At most cfg.batch items: an actor whose mailbox stays full goes to
       the back of the queue after each turn, so the queue may never run
       dry. */
    for (unsigned i = w->rt->cfg.batch; i > 0 && run_lent(w); i--)
        ;
    w->block_depth--;
    xi_frame_pop(w);
}

static void *worker_main(void *arg)
{
    struct xi_worker *w = arg;
    tls_worker = w;
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
    /* A removed pool's timers go to the other pools (pool.c); at stop
       nobody is left to fire them. */
    if (xi_rt_closing(w->rt))
        xi_timers_discard(w);
    xi_tls_reader = NULL;
    tls_worker = NULL;
    return NULL;
}

/* Start w's thread, pinned to w->core when asked and allowed. */
int xi_worker_start(xo_runtime_t *rt, struct xi_worker *w)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, rt->cfg.stack_size);
    w->pinned = false;
    int rc = EINVAL;
    if (rt->cfg.pin_threads && w->core >= 0) {
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
        pthread_attr_setstacksize(&attr, rt->cfg.stack_size);
        rc = pthread_create(&w->thread, &attr, worker_main, w);
    }
    pthread_attr_destroy(&attr);
    w->started = rc == 0;
    return rc == 0 ? 0 : XO_ENOMEM;
}

bool xi_worker_claim(struct xi_worker *w)
{
    bool mine = w->started;
    w->started = false;
    return mine;
}

/* Ask w's thread to exit once it reaches the request, and join it. */
void xi_worker_join(struct xi_worker *w)
{
    xi_runq_push(w, &w->exit_item);
    pthread_join(w->thread, NULL);
}
