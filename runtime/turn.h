/*
 * turn.h -- running handlers: an actor's turn, a stateless actor's task,
 * the handler context, and the one path every failure takes.
 *
 * A turn (turn.c) takes up to cfg.batch messages off a stateful actor's
 * mailbox and runs them: on_message, on_batch runs, continuations, calls
 * skipped because they were cancelled, the reap marker (on_destroy, then
 * the actor's exit). It enters the handler context once and leaves it once
 * (xi_ctx_enter / xi_ctx_leave: the seam where stats, traces and the
 * watchdog's clock will attach), and tells the worker what is left: the
 * mailbox looked empty, there is more, or the actor is gone. What happens
 * next to the actor (watched, marked idle, queued again) is the worker's
 * business.
 */
#ifndef XI_RUNTIME_TURN_H
#define XI_RUNTIME_TURN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xoscar/xoscar.h"
#include "envelope.h"

struct xi_cell;
struct xi_worker;

struct xo_ctx {
    xo_runtime_t *rt;
    struct xi_cell *cell;
    unsigned pool;
    /* The message being handled, and the error message xo_fail set for
       it (owned, freed when the handler run ends: xi_ctx_end_run). */
    const xo_msg_t *msg;
    char *fail_msg;
    /* xo_crash's code for the handler running (0: none), and the reason
       its failure gives (0: XO_EXIT_FAILED; a supervisor past its
       intensity gives XO_EXIT_RESTART_INTENSITY). */
    int crash;
    int crash_reason;
    /* The failure path suspended the actor: the turn ends here. */
    bool suspend;
    /* Sends left before this handler lends its worker to the pool-mates
       queued behind it (xi_turn_yield); 0: never (a context that is not a
       worker's turn: on_create run by xo_spawn, an outside thread). */
    unsigned yield_in;
    struct xo_ctx *saved;  /* the context this one was entered over */
};

/* The handler context active on this thread (NULL outside handlers). */
extern __thread struct xo_ctx *xi_tls_ctx
    __attribute__((tls_model("initial-exec"), visibility("hidden")));

static inline struct xo_ctx *xi_current_ctx(void)
{
    return xi_tls_ctx;
}

/* The one way a context is made: for c's handlers, on `pool` (its home,
   or the worker a stateless task runs on), yielding every yield_sends
   sends (0: never). */
static inline struct xo_ctx xi_ctx_make(struct xi_cell *c, xo_runtime_t *rt,
                                        unsigned pool, unsigned yield_sends)
{
    return (struct xo_ctx){ .rt = rt, .cell = c, .pool = pool,
                            .yield_in = yield_sends };
}

void xi_ctx_free_fail(struct xo_ctx *ctx);
extern char xi_crash_no_text[] __attribute__((visibility("hidden")));

/* One handler run is over: its xo_fail message (if any) goes. */
static inline void xi_ctx_end_run(struct xo_ctx *ctx)
{
    if (__builtin_expect(ctx->fail_msg != NULL, 0))
        xi_ctx_free_fail(ctx);
}

/* Make ctx this thread's context (over whatever was), and back: the one
   place a handler context is entered and left (inline: every turn does
   it). */
static inline void xi_ctx_enter(struct xo_ctx *ctx)
{
    ctx->saved = xi_tls_ctx;
    xi_tls_ctx = ctx;
}

static inline void xi_ctx_leave(struct xo_ctx *ctx)
{
    xi_ctx_end_run(ctx);
    xi_tls_ctx = ctx->saved;
}

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

/* What a turn leaves: the mailbox looked empty (the worker may watch it
   or mark it idle), there is more (queue it again), the actor is gone
   (its cell was reclaimed), or it is suspended (recovery.h: a backoff or
   its supervisor schedules it again; the worker must not touch it). */
enum xi_turn_end { XI_TURN_EMPTY, XI_TURN_MORE, XI_TURN_GONE,
                   XI_TURN_SUSPENDED };

enum xi_turn_end xi_turn_run(struct xi_worker *w, struct xi_cell *c);
/* A suspended actor was resumed (its RESUME item): carry out what it was
   resumed for (recovery.h), then run its turn. */
enum xi_turn_end xi_turn_resume(struct xi_worker *w, struct xi_cell *c);
/* A message to a stateless actor, run as a task on w. */
void xi_turn_task(struct xi_worker *w, struct xi_envelope *env);
/* A stateless actor's reap request reached w. */
void xi_turn_reap(struct xi_worker *w, struct xi_cell *c);
/* What delivering one envelope consumed: 1, with XI_TURN_STOP when the
   actor was suspended and the turn must end there. */
#define XI_TURN_STOP (1u << 31)

/* Run on_message for env as a turn does (failure handling included), then
   free it: for signals that become messages (recovery.c). */
unsigned xi_turn_handle(struct xo_ctx *ctx, struct xi_envelope *env);

/*
 * The one failure path. Every failure the runtime reports about an actor
 * comes here: a handler of a one-way message (or a continuation, or an
 * on_batch run) that returned a negative code, an on_destroy that refused
 * where it cannot keep the actor, a continuation or delayed tell lost for
 * want of memory. It counts the failure on the actor (when its cell is at
 * hand: c may be NULL) and calls the config's on_handler_error. `message`
 * is the xo_fail text, when there is one. Whether the actor itself fails
 * (xo_crash, or crash_on_error) is the turn's next question: recovery.h.
 */
void xi_actor_failed(xo_runtime_t *rt, struct xi_cell *c, xo_ref_t actor,
                     uint32_t tag, int err, const char *message);

#endif /* XI_RUNTIME_TURN_H */
