/*
 * turn.c -- running handlers (design in turn.h): deliver one message, an
 * on_batch run or a continuation; an actor's turn of up to cfg.batch
 * messages; a stateless actor's task; and the failure path. A handler
 * that fails its actor hands over to recovery.c, which may end the turn.
 */
#include "runtime.h"

#include <string.h>

__thread struct xo_ctx *xi_tls_ctx __attribute__((tls_model("initial-exec")));

/* ---- the handler context -------------------------------------------- */

/* What xo_crash leaves when its message could not be copied: a crash
   always leaves a message (handle() tests for one), never freed. */
char xi_crash_no_text[] = "the actor crashed (out of memory for its message)";

void xi_ctx_free_fail(struct xo_ctx *ctx)
{
    if (ctx->fail_msg != xi_crash_no_text)
        xi_mem_free(&ctx->rt->mem, ctx->fail_msg, strlen(ctx->fail_msg) + 1);
    ctx->fail_msg = NULL;
}

/* ---- the failure path ----------------------------------------------- */

void xi_actor_failed(xo_runtime_t *rt, struct xi_cell *c, xo_ref_t actor,
                     uint32_t tag, int err, const char *message)
{
    (void)message; /* for the layers to come: supervisors, the watchdog */
    XI_TRACE(rt, XI_TR_FAIL, actor.id, 0, err);
    struct xi_obs *o = XI_STATS && c != NULL ? xi_obs_make(rt, c) : NULL;
    if (o != NULL)
        xi_count(&o->failed, 1, c->stateless);
    if (rt->cfg.on_handler_error != NULL)
        rt->cfg.on_handler_error(rt, actor, tag, err,
                                 rt->cfg.on_handler_error_user);
}

static void handler_failed(struct xo_ctx *ctx, uint32_t tag, int rc)
{
    struct xi_cell *c = ctx->cell;
    xi_actor_failed(ctx->rt, c, xi_cell_ref(c), tag, rc, ctx->fail_msg);
}

/* A handler returned rc < 0 or crashed: what its caller gets, after the
   failure is reported (a tell's error, or any crash). A negative return
   fails the actor when its spawn said crash_on_error. */
static __attribute__((noinline)) int outcome(struct xo_ctx *ctx,
                                             bool is_call, uint32_t tag,
                                             int rc)
{
    if (ctx->crash == 0 && rc < 0 &&
        (xi_cell_rflags(ctx->cell) & XI_CF_CRASH))
        ctx->crash = rc;
    if (ctx->crash != 0)
        rc = ctx->crash;
    if (!is_call || ctx->crash != 0)
        handler_failed(ctx, tag, rc);
    return rc;
}

/* A tell queued behind the failure that ended its actor is refused: the
   config's hook hears of it (XO_ENOTEXIST), as of a tell's error. */
static __attribute__((noinline)) void dropped_tell(struct xo_ctx *ctx,
                                                   uint32_t tag)
{
    xo_runtime_t *rt = ctx->rt;
    if ((xi_cell_rflags(ctx->cell) & XI_CF_FAILED) &&
        rt->cfg.on_handler_error != NULL)
        rt->cfg.on_handler_error(rt, xi_cell_ref(ctx->cell), tag,
                                 XO_ENOTEXIST, rt->cfg.on_handler_error_user);
}

/* The handler failed the actor: the recovery layer decides (it takes the
   error message with it). */
static __attribute__((noinline)) void crashed(struct xo_ctx *ctx)
{
    int code = ctx->crash;
    char *message = ctx->fail_msg;
    ctx->fail_msg = NULL;
    if (message == xi_crash_no_text)
        message = NULL;
    xi_recovery_failed(ctx, code, message);
}

/* ---- delivering ------------------------------------------------------ */

/* A call whose item was cancelled (or timed out) before it started is
   skipped: it is complete already. */
static bool call_may_start(struct xi_envelope *env)
{
    if (env->item.kind != XI_K_CALL)
        return true;
    xo_request_t *req = env->msg.request;
    return xi_future_start_item(xi_request_future(req), req->index);
}

/* A continuation registered by an incarnation that has been restarted
   since belongs to nobody: it is dropped, as the reply to a process that
   died is in Erlang. */
static bool continuation_stale(struct xi_cell *c, struct xi_envelope *env)
{
    if (!(xi_cell_rflags(c) & XI_CF_RECOVERY))
        return false;
    const struct xo_future *f = *(struct xo_future *const *)env->msg.data;
    return f->then_incarnation != xi_cell_incarnation(c);
}

/* What a delivery consumed, once it is over: one envelope, and whether
   the actor is now suspended. */
static inline unsigned consumed(const struct xo_ctx *ctx)
{
    return ctx->suspend ? 1u | XI_TURN_STOP : 1u;
}

static __attribute__((noinline)) unsigned
deliver_continuation(struct xo_ctx *ctx, struct xi_envelope *env)
{
    struct xi_cell *c = ctx->cell;
    if (!c->created || continuation_stale(c, env)) {
        xi_drop_continuation(ctx->rt, env);
        xi_bump(&c->handled, 1); /* taken (stats.h) */
        return 1;
    }
    int rc = xi_run_continuation(ctx, env);
    xi_envelope_free(ctx->rt, env);
    if (rc < 0 || ctx->crash != 0)
        (void)outcome(ctx, false, 0, rc);
    if (ctx->crash != 0)
        crashed(ctx);
    xi_ctx_end_run(ctx); /* not the next call's error text */
    xi_bump(&c->handled, 1);
    return consumed(ctx);
}

/* One more message taken by c (stats.h; xi_count). `stateless` is a
   constant where this is inlined. */
static inline __attribute__((always_inline)) void
count_taken(struct xi_cell *c, bool stateless)
{
    xi_count(&c->handled, 1, stateless);
}

/* The handler returned an error or left a message (xo_fail, xo_crash:
   a crash always leaves one, so the common path tests one word for
   both): report, answer, fail the actor if it crashed. */
static __attribute__((noinline)) unsigned
handled_slow(struct xo_ctx *ctx, struct xi_envelope *env, int rc)
{
    if (rc < 0 || ctx->crash != 0)
        rc = outcome(ctx, env->item.kind == XI_K_CALL, env->msg.tag, rc);
    if (env->msg.request != NULL)
        xi_request_finish(ctx, &env->msg, rc);
    if (ctx->crash != 0)
        crashed(ctx);
    xi_ctx_end_run(ctx);
    xi_envelope_free(ctx->rt, env);
    return consumed(ctx);
}

/* on_message for one envelope that may start, answer what it left
   unanswered, free it. Between handler runs the context holds no error
   message (each run's is freed when it ends), so a message here is this
   run's. */
static inline __attribute__((always_inline)) unsigned
handle(struct xo_ctx *ctx, struct xi_envelope *env, bool stateless)
{
    struct xi_cell *c = ctx->cell;
    int rc = 0;
    if (!c->created) {
        rc = XO_ENOTEXIST; /* on_create failed, or the actor did: answer
                              calls, drop tells */
        if (env->item.kind == XI_K_TELL)
            dropped_tell(ctx, env->msg.tag);
        count_taken(c, stateless); /* taken all the same (stats.h) */
    } else if (c->def->on_message != NULL) {
        ctx->msg = &env->msg;
        rc = c->def->on_message(ctx, c->state, &env->msg);
        ctx->msg = NULL;
        count_taken(c, stateless);
        if (__builtin_expect(rc < 0 || ctx->fail_msg != NULL, 0))
            return handled_slow(ctx, env, rc);
    } else {
        count_taken(c, stateless); /* no handler: dropped, but taken */
    }
    if (env->msg.request != NULL) /* tells, the common case, skip both */
        xi_request_finish(ctx, &env->msg, rc);
    xi_envelope_free(ctx->rt, env);
    return 1;
}

unsigned xi_turn_handle(struct xo_ctx *ctx, struct xi_envelope *env)
{
    return handle(ctx, env, ctx->cell->stateless);
}

/* Deliver one envelope of the mailbox (or a task). The context's cell is
   the actor's. Returns what it consumed (see XI_TURN_STOP). */
static inline __attribute__((always_inline)) unsigned
deliver_as(struct xo_ctx *ctx, struct xi_envelope *env, bool stateless)
{
    if (__builtin_expect(env->item.kind > XI_K_CALL, 0)) {
        if (env->item.kind == XI_K_CONT)
            return deliver_continuation(ctx, env);
        xi_recovery_signal(ctx, env);
        return consumed(ctx);
    }
    if (!call_may_start(env)) {
        count_taken(ctx->cell, stateless); /* answered already: taken */
        xi_envelope_free(ctx->rt, env);
        return 1;
    }
    return handle(ctx, env, stateless);
}

/* A stateful actor's message. */
static unsigned deliver(struct xo_ctx *ctx, struct xi_envelope *env)
{
    return deliver_as(ctx, env, false);
}

/* A stateless actor's task (tells and calls only). */
static unsigned deliver_task(struct xo_ctx *ctx, struct xi_envelope *env)
{
    return deliver_as(ctx, env, true);
}

/* The next message of a stateful actor (the stash first). */
static inline __attribute__((always_inline)) struct xi_envelope *
next_message(struct xi_cell *c)
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
        e->item.kind <= XI_K_CALL) /* relaxed: see struct xi_cell */
        atomic_fetch_sub_explicit(&c->queued, 1, memory_order_relaxed);
    return e;
}

/* ---- on_batch runs ---------------------------------------------------- */

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
/* Out of line: the common turn has no on_batch, and this frame's array
   would otherwise sit in every turn's. */
static __attribute__((noinline)) unsigned
deliver_batch(struct xo_ctx *ctx, struct xi_envelope *first, unsigned room)
{
    struct xi_cell *c = ctx->cell;
    xo_runtime_t *rt = ctx->rt;
    const xo_msg_t *local[XI_BATCH_ON_STACK], **msgs = local;
    unsigned cap = room < XI_BATCH_ON_STACK ? room : XI_BATCH_ON_STACK;
    const uint32_t tag = first->msg.tag; /* `first` may be freed below */
    unsigned n = 0, consumed = 0;
    for (struct xi_envelope *e = first; e != NULL;) {
        consumed++;
        if (e != first) /* the first one's is the turn loop's */
            XI_TRACE(rt, XI_TR_MSG, (uintptr_t)e, 0, e->msg.tag);
        if (call_may_start(e)) {
            msgs[n++] = &e->msg;
        } else {
            xi_bump(&c->handled, 1); /* answered already: taken */
            xi_envelope_free(rt, e);
        }
        if (consumed == room)
            break;
        if (n == cap) {
            if (!grow_run(rt, &msgs, local, n, room))
                break;
            cap = room;
        }
        e = next_message(c);
        if (e == NULL)
            break;
        if ((struct xi_item *)e == &c->reap || e->item.kind > XI_K_CALL ||
            e->msg.tag != tag) {
            c->stash = e;
            break;
        }
    }
    if (n > 0) {
        int rc = c->def->on_batch(ctx, c->state, msgs, n);
        xi_bump(&c->handled, n);
        if (rc < 0 || ctx->crash != 0)
            rc = outcome(ctx, msgs[0]->request != NULL, msgs[0]->tag, rc);
        for (unsigned i = 0; i < n; i++) {
            xi_request_finish(ctx, msgs[i], rc);
            envelope_of_free(rt, msgs[i]);
        }
        if (ctx->crash != 0)
            crashed(ctx);
        xi_ctx_end_run(ctx);
    }
    if (msgs != local)
        xi_mem_free(&rt->mem, msgs, cap * sizeof(*msgs));
    return ctx->suspend ? consumed | XI_TURN_STOP : consumed;
}

/* ---- stats (stats.h) ---------------------------------------------------- */

/* A turn (or a stateless task) of c starts on w: count it, tell the
   watchdog. */
static inline void turn_starts(struct xi_worker *w, struct xi_cell *c)
{
    if (!XI_STATS)
        return;
    /* relaxed: the worker's own counter, and the watchdog's samples
       (stats.h). */
    uint64_t t = atomic_load_explicit(&w->obs.turn_seq,
                                      memory_order_relaxed) + 1;
    atomic_store_explicit(&w->obs.turn_seq, t, memory_order_relaxed);
    atomic_store_explicit(&w->obs.actor, c->id, memory_order_relaxed);
    if (c->pool != w->pool_index)
        xi_bump(&w->obs.shared, 1);
}

/* Whether the worker times the next turn's first handler run (about one
   turn in cfg.handler_sample: xi_sample_next). Decided before the turn,
   so that an untimed turn (a separate copy of it) carries no state for
   the timing. */
static inline bool sample_due(struct xi_worker *w)
{
    return XI_STATS && __builtin_expect(--w->obs.sample_left == 0, 0) &&
           xi_sample_next(&w->obs);
}

/* A handler run for a message of `tag` starts on w: its tag, for the
   watchdog's report. Which run it is the watchdog tells from the turn and
   the actor's `handled` count (stats.h), so a run costs no counter. */
static inline void run_starts(struct xi_worker *w, uint32_t tag)
{
    if (!XI_STATS)
        return;
    /* relaxed: samples (stats.h). */
    atomic_store_explicit(&w->obs.tag, tag, memory_order_relaxed);
}

/* The turn is over: the worker runs no handler until the next turn (a
   turn nested in a wait or a yield returns to a loop that runs none). */
static inline void turn_ends(struct xi_worker *w)
{
    if (!XI_STATS)
        return;
    /* relaxed: samples (stats.h). */
    atomic_store_explicit(&w->obs.actor, 0, memory_order_relaxed);
}

/* ---- turns ------------------------------------------------------------- */

static __attribute__((noinline, cold)) void trace_turn(xo_runtime_t *rt,
                                                       struct xi_cell *c)
{
    xi_trace_record(rt, XI_TR_TURN, c->id, (uintptr_t)c->def->name, 0);
}

/* A timed turn's delivery of e (out of line: one turn in
   cfg.handler_sample takes it). */
static __attribute__((noinline)) unsigned
deliver_timed(struct xo_ctx *ctx, struct xi_envelope *e, unsigned room)
{
    struct xi_cell *c = ctx->cell;
    uint64_t t0 = xi_ticks();
    unsigned k;
    if (c->stateless)
        k = deliver_task(ctx, e);
    else if (c->def->on_batch != NULL && c->created &&
             e->item.kind <= XI_K_CALL)
        k = deliver_batch(ctx, e, room);
    else
        k = deliver(ctx, e);
    uint64_t dt = xi_ticks_ns(t0, xi_ticks());
    struct xi_obs *o = xi_obs_make(ctx->rt, c);
    if (o != NULL)
        xi_hist_add(ctx->rt, o, dt, k & ~XI_TURN_STOP, c->stateless);
    return k;
}

/* A turn: up to cfg.batch messages. `resume`: the actor was suspended and
   is resumed for what its recovery record says, first. `timed`: time the
   first handler run (sample_due); a constant in the common copy. */
static inline __attribute__((always_inline)) enum xi_turn_end
turn(struct xi_worker *w, struct xi_cell *c, bool resume, bool timed)
{
    xo_runtime_t *rt = w->rt;
    unsigned batch = rt->cfg.batch, n = 0;
    struct xo_ctx ctx = xi_ctx_make(c, rt, c->pool, rt->cfg.yield_sends);
    enum xi_turn_end end = XI_TURN_MORE;
    turn_starts(w, c);
    const uint64_t id = c->id; /* c may be gone by the end */
    /* relaxed: the trace's flag (trace.h), read once a turn. */
    const bool tracing = atomic_load_explicit(&rt->trace_on,
                                              memory_order_relaxed);
    if (__builtin_expect(tracing, 0))
        trace_turn(rt, c);
    xi_ctx_enter(&ctx);
    if (resume) {
        xi_recovery_resume(&ctx);
        if (ctx.suspend)
            n = XI_TURN_STOP; /* suspended again (a backoff) */
    }
    /* A suspension sets XI_TURN_STOP in what a delivery returns, which
       ends the loop with no test of its own. */
    while (n < batch) {
        struct xi_envelope *e = next_message(c);
        if (e == NULL)
            break;
        if ((struct xi_item *)e == &c->reap) {
            if (xi_cell_reap(c, &ctx)) {
                end = XI_TURN_GONE;
                break;
            }
            if (ctx.suspend) { /* a permanent actor's restart is held */
                n |= XI_TURN_STOP;
                break;
            }
            continue; /* it lives on: on_destroy refused, or a restart */
        }
        run_starts(w, e->msg.tag);
        if (__builtin_expect(tracing, 0))
            xi_trace_record(rt, XI_TR_MSG, (uintptr_t)e, 0, e->msg.tag);
        if (__builtin_expect(timed, 0)) {
            /* Only the turn's first run, two clock reads a timed turn
               whatever its length; every run with handler_sample 1. */
            timed = w->obs.sample_every == 1;
            n += deliver_timed(&ctx, e, batch - n);
        } else if (c->def->on_batch != NULL && c->created &&
                 e->item.kind <= XI_K_CALL)
            n += deliver_batch(&ctx, e, batch - n);
        else
            n += deliver(&ctx, e);
    }
    xi_ctx_leave(&ctx);
    turn_ends(w);
    if (__builtin_expect(tracing, 0))
        xi_trace_record(rt, XI_TR_TURN_END, id, 0, n & ~XI_TURN_STOP);
    xi_bump(&w->handled, n & ~XI_TURN_STOP);
    if (end == XI_TURN_GONE)
        return end;
    if (__builtin_expect(n & XI_TURN_STOP, 0)) {
        /* The last touch of c by this turn: from here on a timer or a
           supervisor may schedule it. */
        xi_recovery_after_turn(w, c);
        return XI_TURN_SUSPENDED;
    }
    return n < batch && c->stash == NULL ? XI_TURN_EMPTY : XI_TURN_MORE;
}

/* The timed copy of a turn (out of line: one turn in cfg.handler_sample
   takes it). */
static __attribute__((noinline)) enum xi_turn_end
turn_timed(struct xi_worker *w, struct xi_cell *c)
{
    return turn(w, c, false, true);
}

enum xi_turn_end xi_turn_run(struct xi_worker *w, struct xi_cell *c)
{
    if (sample_due(w))
        return turn_timed(w, c);
    return turn(w, c, false, false);
}

enum xi_turn_end xi_turn_resume(struct xi_worker *w, struct xi_cell *c)
{
    return turn(w, c, true, sample_due(w));
}

void xi_turn_task(struct xi_worker *w, struct xi_envelope *env)
{
    struct xi_cell *c = xi_task_take_cell(env, w->rt);
    struct xo_ctx ctx = xi_ctx_make(c, w->rt, w->pool->index, 0);
    bool timed = sample_due(w);
    turn_starts(w, c);
    XI_TRACE(w->rt, XI_TR_TURN, c->id, (uintptr_t)c->def->name, 0);
    xi_ctx_enter(&ctx);
    run_starts(w, env->msg.tag);
    XI_TRACE(w->rt, XI_TR_MSG, (uintptr_t)env, 0, env->msg.tag);
    if (__builtin_expect(timed, 0))
        deliver_timed(&ctx, env, 1);
    else
        deliver_task(&ctx, env);
    xi_ctx_leave(&ctx);
    turn_ends(w);
    XI_TRACE(w->rt, XI_TR_TURN_END, c->id, 0, 1);
    xi_bump(&w->handled, 1);
    xi_stateless_task_done(c);
}

void xi_turn_reap(struct xi_worker *w, struct xi_cell *c)
{
    struct xo_ctx ctx = xi_ctx_make(c, w->rt, c->pool, 0);
    xi_ctx_enter(&ctx);
    (void)xi_cell_reap(c, &ctx);
    xi_ctx_leave(&ctx);
}
