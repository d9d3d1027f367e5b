/*
 * call.c -- the round trip of a call: request, handler, reply, in the two
 * ways a program makes one.
 *
 *   outside  a thread outside the runtime (here the main thread) calls an
 *            actor and waits for the future, one call at a time: xo_call,
 *            xo_future_wait, xo_future_result, xo_future_release. This is
 *            how a program that is not itself an actor talks to one, and
 *            each round trip includes waking the caller's thread, which
 *            sleeps on the future's futex while the actor works.
 *   actor    an actor calls another through a continuation (xo_call_then),
 *            one call outstanding at a time: the next call is made from
 *            the continuation of the previous one. Nothing blocks; the
 *            reply comes back as a turn of the calling actor, so this is
 *            pingpong with the future machinery in the path.
 *
 * The actor phase makes round_trips calls, the outside phase a twentieth
 * of that (at least one): a thread that sleeps on its future can cost 20
 * to 60 times an actor's call (a wake through the kernel, on a virtual
 * machine through the hypervisor), and the one size keeps both phases
 * near the same time and scales them together. Both call the same callee,
 * which answers the call carrying n with 3n + 1; every reply's status,
 * tag, size and value are checked. The outside phase is timed by the main
 * thread itself (it is the caller); the actor phase by the usual kick-off
 * and completion. RESULT's ops and rate are the outside phase's; extra
 * carries both phases as rates and ns per round trip.
 *
 * Placement is the runtime's default, so caller and callee actors land in
 * different pools (as in pingpong) and each call crosses between cores.
 * The main thread is pinned to a core other than the callee's for its
 * phase. Where it lands otherwise is the kernel's choice, and on a small
 * machine that moved a waited call by a factor of three or more between
 * runs: left to chance, the figure would be a lottery.
 */
#include "bench.h"

enum { KICK = 1, REQUEST = 2, ANSWER = 3 };

/* The outside phase makes round_trips / OUTSIDE_SHARE calls. */
#define OUTSIDE_SHARE 20

static uint64_t answer_of(uint64_t n)
{
    return 3 * n + 1;
}

static int callee_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    const uint64_t *n = m->data;
    if (m->request == NULL || m->size != sizeof(*n))
        return xo_fail(ctx, XO_EINVAL, "not a call with one number");
    uint64_t v = answer_of(*n);
    return xo_reply(m->request, ANSWER, &v, sizeof(v));
}

static const xo_actor_def_t callee_def = {
    .name = "callee", .on_message = callee_message,
};

/* Whether a result is the answer to n. */
static bool answered(const xo_result_t *r, uint64_t n)
{
    return r->status == 0 && r->tag == ANSWER && r->size == sizeof(uint64_t) &&
           *(const uint64_t *)r->data == answer_of(n);
}

/* ---- actor to actor, through continuations ------------------------- */

struct chain {
    struct bench_done *done;
    uint64_t rounds;
    xo_ref_t callee;
    uint64_t answered; /* written by the caller before it signals */
};

/* The spawn argument is the whole initial state. */
struct caller_state {
    struct chain *ch;
    uint64_t sent; /* the number in the call outstanding */
};

static int on_answer(xo_ctx_t *ctx, void *state, xo_future_t *f, void *arg);

static int call_next(xo_ctx_t *ctx, struct caller_state *c)
{
    return xo_call_then(ctx, c->ch->callee, REQUEST, &c->sent,
                        sizeof(c->sent), -1, on_answer, NULL);
}

static int on_answer(xo_ctx_t *ctx, void *state, xo_future_t *f, void *arg)
{
    struct caller_state *c = state;
    xo_result_t r;
    (void)arg;
    xo_future_result(f, 0, &r);
    if (!answered(&r, c->sent))
        return bench_fail(c->ch->done, "a continuation got a wrong answer",
                          r.status);
    if (++c->sent == c->ch->rounds) {
        c->ch->answered = c->sent;
        bench_done_signal(c->ch->done);
        return 0;
    }
    return call_next(ctx, c);
}

static int caller_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)m;
    return call_next(ctx, state);
}

static const xo_actor_def_t caller_def = {
    .name = "caller", .state_size = sizeof(struct caller_state),
    .on_create = bench_copy_arg, .on_message = caller_message,
};

static int actor_phase(struct bench_env *env, struct chain *ch,
                       double *seconds)
{
    struct caller_state init = { ch, 0 };
    xo_ref_t caller;
    if (bench_spawn(env, &caller_def, XO_POOL_ANY, &init, sizeof(init),
                    &caller) != 0)
        return -1;
    if (bench_measure(env, &caller, 1, KICK, seconds) != 0)
        return -1;
    if (ch->answered != ch->rounds)
        return bench_error(env, "fewer answers than calls");
    return 0;
}

/* ---- from a thread outside the runtime ------------------------------ */

/* One call, waited for and checked. */
static int call_and_wait(struct bench_env *env, xo_ref_t to, uint64_t n)
{
    xo_future_t *f;
    xo_result_t r;
    int rc = xo_call(to, REQUEST, &n, sizeof(n), &f);
    if (rc != 0)
        return bench_error(env, xo_strerror(rc));
    rc = xo_future_wait(f, -1);
    if (rc == 0)
        xo_future_result(f, 0, &r);
    bool ok = rc == 0 && answered(&r, n);
    xo_future_release(f);
    return ok ? 0 : bench_error(env, "an outside call got a wrong answer");
}

static int outside_phase(struct bench_env *env, xo_ref_t to, uint64_t calls,
                         double *seconds)
{
    struct bench_clock clock;
    cpu_set_t saved;
    if (bench_pin_away(env, to, &saved) != 0)
        return -1;
    int rc = 0;
    bench_clock_start(&clock);
    for (uint64_t i = 0; rc == 0 && i < calls; i++)
        rc = call_and_wait(env, to, i);
    *seconds = bench_clock_stop(env, &clock);
    bench_unpin(&saved);
    return rc;
}

/* ---- the run -------------------------------------------------------- */

static void report_phase(struct bench_result *r, const char *prefix,
                         uint64_t calls, double seconds)
{
    char key[32];
    snprintf(key, sizeof(key), "%s_rate", prefix);
    bench_extra(r, key, "%.0f", (double)calls / seconds);
    snprintf(key, sizeof(key), "%s_ns_per_rt", prefix);
    bench_extra(r, key, "%.1f", seconds * 1e9 / (double)calls);
}

int bench_call(const struct bench_opts *opts, const uint64_t *args,
               struct bench_result *out)
{
    struct chain ch = { .rounds = args[0] };
    uint64_t outside = args[0] / OUTSIDE_SHARE ? args[0] / OUTSIDE_SHARE : 1;
    double actor_s = 0, outside_s = 0;
    struct bench_env env;
    if (bench_start(&env, "call", opts) != 0)
        return -1;
    ch.done = &env.done;
    int rc = bench_spawn(&env, &callee_def, XO_POOL_ANY, NULL, 0, &ch.callee);
    if (rc == 0)
        rc = outside_phase(&env, ch.callee, outside, &outside_s);
    if (rc == 0)
        rc = actor_phase(&env, &ch, &actor_s);
    out->ops = outside;
    out->seconds = outside_s;
    if (rc == 0) {
        report_phase(out, "outside", outside, outside_s);
        report_phase(out, "actor", ch.rounds, actor_s);
    }
    return bench_finish(&env, out) == 0 ? rc : -1;
}
