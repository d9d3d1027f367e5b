/*
 * wait.c -- nested waits (interface in wait.h): a handler that blocks on a
 * future or yields lends its worker to what is queued behind it, and the
 * cycle check that keeps every such wait from hanging.
 *
 * Lending re-enters the worker's dispatch (xi_worker_run_lent) from inside
 * a handler: the one place where this layer calls back up into the worker.
 *
 * Frames. A turn whose handler waits, yields, or runs a spawned actor's
 * on_create on its thread is suspended until what runs above it on the
 * same stack returns: the turn below waits for the one above, as surely as
 * for the call it made. Each frame's actor keeps, in `above`, the actor
 * whose frame was pushed over it, so a chain of waits that reaches a
 * suspended turn continues to whatever holds it down, on this worker or
 * any other.
 *
 * The wait-for graph. Its nodes are stateful actors. An actor has an edge
 * to the actor its handler waits for (waiting_for: a call's callee, an
 * actor being destroyed, a stream's producer) and one to the actor above
 * its frame. It resumes only when both are gone, so a path of edges from a
 * waiter's target back to the waiter is a wait that would never end: the
 * wait fails with XO_EDEADLK instead. A waiter stores its edges first (its
 * frame's, then waiting_for) and walks after, all seq_cst: of the waiters
 * that close a cycle at the same moment, the one whose store comes last in
 * that order sees all the others' and finds the cycle. Actors being
 * destroyed are followed too (xi_resolve_dying); stateless actors end a
 * path (several of their handlers may run at once, so they keep no edges).
 */
#include "runtime.h"

/* ---- frames ------------------------------------------------------------ */

bool xi_frame_push(struct xi_worker *w, struct xi_cell *c)
{
    if (w->nblocked == XO_MAX_NESTED_WAITS)
        return false;
    if (w->nblocked > 0) {
        struct xi_cell *below = w->blocked[w->nblocked - 1];
        /* seq_cst: an edge of the wait-for graph, stored before the
           waiter's own waiting_for and walk. */
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

/* ---- the wait-for graph ------------------------------------------------- */

#define XI_WALK_STACK 64
#define XI_WALK_BUDGET 1024

static bool walk_closes_cycle(xo_runtime_t *rt, uint64_t self,
                              uint64_t target)
{
    uint64_t todo[XI_WALK_STACK];
    unsigned n = 0, budget = XI_WALK_BUDGET;
    bool cycle = false;
    todo[n++] = target;
    xi_rcu_lock();
    while (n > 0 && budget-- > 0) {
        uint64_t id = todo[--n];
        if (id == self) {
            cycle = true;
            break;
        }
        struct xi_cell *c = xi_resolve_dying(&rt->slots, id);
        if (c == NULL || c->stateless)
            continue;
        /* seq_cst: pairs with the seq_cst stores of the edges (above). */
        uint64_t edges[2] = { atomic_load(&c->waiting_for),
                              atomic_load(&c->above) };
        for (unsigned k = 0; k < 2; k++)
            if (edges[k] != 0 && n < XI_WALK_STACK)
                todo[n++] = edges[k];
    }
    xi_rcu_unlock(&rt->rcu_sync);
    return cycle;
}

/* ---- lending the worker ----------------------------------------------- */

static uint64_t deadline_of(int64_t timeout_ns)
{
    return timeout_ns < 0 ? 0 : xi_now_ns() + (uint64_t)timeout_ns;
}

static bool changed(struct xo_future *f, uint32_t seen, uint32_t mask)
{
    /* acquire: pairs with the completer's (or a part's) release RMW. */
    return ((atomic_load_explicit(&f->flags, memory_order_acquire) ^ seen) &
            mask) != 0;
}

/* Inside a handler on w: until f's flags change in `mask` from `seen`, or
   the deadline (0: none) passes. Meanwhile w runs what its run queue
   holds, nested, and fires its due timers; with nothing to run it sleeps,
   and both new work and f's completer wake it. */
static int block(struct xi_worker *w, struct xo_future *f, uint32_t seen,
                 uint32_t mask, uint64_t deadline)
{
    /* The loop below serves the run queue only: watched actors go back to
       being scheduled normally (one may be what we wait for). */
    xi_worker_release_watches(w);
    w->block_depth++;
    int rc = 0;
    for (unsigned idle = 0;;) {
        if (changed(f, seen, mask))
            break;
        uint64_t now = xi_now_ns();
        if (deadline != 0 && now >= deadline) {
            rc = XO_ETIMEDOUT;
            break;
        }
        uint64_t next = xi_worker_timers_run(w);
        if (xi_worker_run_lent(w)) {
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
        xi_worker_sleep(w, next, f, seen, mask);
    }
    w->block_depth--;
    return rc;
}

/* Outside the runtime: poll for a short while (a reply from a busy actor
   usually comes within microseconds, and a futex sleep costs a wake-up
   system call on both sides), then sleep on the future's futex word. */
static int wait_outside(struct xo_future *f, uint32_t seen, uint32_t mask,
                        int64_t timeout_ns)
{
    uint64_t deadline = deadline_of(timeout_ns);
    uint64_t spin = f->rt->cfg.spin_ns < 20000 ? f->rt->cfg.spin_ns : 20000;
    if (spin != 0 && timeout_ns != 0) {
        uint64_t until = xi_now_ns() + spin;
        if (deadline != 0 && deadline < until)
            until = deadline;
        for (unsigned i = 1;; i++) {
            if (changed(f, seen, mask))
                return 0;
            if ((i & 31) == 0 && xi_now_ns() >= until)
                break;
            xi_cpu_relax();
        }
    }
    /* From here on it sleeps: the watchdog may see it (slow calls). */
    struct xi_outside_wait ow;
    bool registered = false;
    int rc;
    for (;;) {
        /* acquire: pairs with the completer's release RMW. */
        uint32_t v = atomic_load_explicit(&f->flags, memory_order_acquire);
        if ((v ^ seen) & mask) {
            rc = 0;
            break;
        }
        uint64_t now = xi_now_ns();
        if (timeout_ns == 0 || (deadline != 0 && now >= deadline)) {
            rc = XO_ETIMEDOUT;
            break;
        }
        if (!registered && f->callee_id != 0) {
            xi_outside_wait_begin(f->rt, &ow, f->callee_id);
            registered = true;
        }
        if (!(v & XI_FUT_WAITERS)) {
            /* acq_rel: announce the sleeper before sleeping; the
               completer's RMW sees it. */
            atomic_fetch_or_explicit(&f->flags, XI_FUT_WAITERS,
                                     memory_order_acq_rel);
            continue;
        }
        xi_futex_wait(&f->flags, v, deadline ? deadline - now : 0);
    }
    if (registered)
        xi_outside_wait_end(f->rt, &ow);
    return rc;
}

/* The watchdog's view of w while a handler waits: no handler runs (the
   turns nested meanwhile name their own actors), and the handler's time
   starts again when it resumes. relaxed: samples (stats.h). */
static void waiting_starts(struct xi_worker *w)
{
    atomic_store_explicit(&w->obs.actor, 0, memory_order_relaxed);
    xi_bump(&w->obs.seq, 1);
}

static void waiting_ends(struct xi_worker *w, struct xi_cell *self)
{
    atomic_store_explicit(&w->obs.actor, xi_cell_ref(self).id,
                          memory_order_relaxed);
    xi_bump(&w->obs.seq, 1);
}

int xi_wait_change(struct xo_future *f, uint32_t seen, uint32_t mask,
                   int64_t timeout_ns)
{
    if (changed(f, seen, mask))
        return 0;
    xo_runtime_t *rt = f->rt;
    struct xo_ctx *ctx = xi_current_ctx();
    struct xi_cell *self = ctx != NULL && ctx->rt == rt ? ctx->cell : NULL;
    if (self == NULL || timeout_ns == 0)
        return wait_outside(f, seen, mask, timeout_ns);
    struct xi_worker *w = xi_worker_of(rt);
    if (w != NULL && !xi_frame_push(w, self))
        return XO_EDEPTH;
    bool edges = !self->stateless;
    int rc;
    /* seq_cst: see the wait-for graph above. */
    if (edges)
        atomic_store(&self->waiting_for, f->callee_id);
    if (edges && walk_closes_cycle(rt, xi_cell_ref(self).id, f->callee_id)) {
        rc = XO_EDEADLK;
    } else {
        /* The watchdog's slow-call check reads when it began; a handler
           waiting is no slow handler (stats.h). */
        struct xi_obs *o = xi_obs_make(rt, self);
        if (o != NULL)
            atomic_store_explicit(&o->wait_since, xi_now_ns(),
                                  memory_order_relaxed);
        if (w != NULL) {
            waiting_starts(w);
            rc = block(w, f, seen, mask, deadline_of(timeout_ns));
            waiting_ends(w, self);
        } else {
            rc = wait_outside(f, seen, mask, timeout_ns);
        }
        if (o != NULL)
            atomic_store_explicit(&o->wait_since, 0, memory_order_relaxed);
    }
    /* seq_cst: waiting ended; walkers stop at us from now on. */
    if (edges)
        atomic_store(&self->waiting_for, 0);
    if (w != NULL)
        xi_frame_pop(w);
    return rc;
}

/* ---- yielding ------------------------------------------------------------ */

/*
 * A turn that sends many messages lends its worker to the items queued
 * behind it, every cfg.yield_sends messages it sends: without that, a
 * producer that sends millions of messages from one turn keeps its
 * pool-mates (often the very consumers of its flood) off the core until it
 * returns, and the flood piles up in their mailboxes. The items run
 * nested, inside the send that triggered the yield, as they do while a
 * handler waits; a handler run that way does not yield in turn, so the
 * nesting is one level deep. Only stateful turns yield: their actor is
 * running and so in no run queue, which keeps it from running nested in
 * its own turn.
 */
void xi_turn_yield(struct xo_ctx *ctx)
{
    struct xi_worker *w = xi_worker_of(ctx->rt);
    ctx->yield_in = ctx->rt->cfg.yield_sends;
    if (w == NULL || w->block_depth != 0)
        return;
    /* Timers come due during a flood too (delayed tells, call timeouts);
       what they send is then queued like the rest. */
    xi_worker_timers_run(w);
    if (w->nwatched == 0 && xi_mpscq_empty(&w->runq, w->runq_tail) &&
        xi_stealq_len(&w->local) == 0)
        return;
    /* The yielding actor resumes only after the turns nested above it
       end: its frame tells the cycle check of their waits. */
    if (!xi_frame_push(w, ctx->cell))
        return;
    /* Watched actors with messages join the queue, the others are marked
       idle: the next send to one of them queues it. */
    xi_worker_release_watches(w);
    w->block_depth++;
    /* At most cfg.batch items: an actor whose mailbox stays full goes to
       the back of the queue after each turn, so the queue may never run
       dry. */
    for (unsigned i = ctx->rt->cfg.batch; i > 0 && xi_worker_run_lent(w); i--)
        ;
    w->block_depth--;
    xi_frame_pop(w);
    waiting_ends(w, ctx->cell); /* the yielding handler runs on */
}
