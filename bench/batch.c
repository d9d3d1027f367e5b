/*
 * batch.c -- what a batch of calls saves against the same calls made one
 * by one.
 *
 * The main thread, outside the runtime, makes n calls to one actor in two
 * ways: one by one (xo_call, then wait for that future before the next),
 * and as one xo_call_batch of n (one exchange on the mailbox, one future,
 * one wait). It does both against two actors that compute the same
 * answer: one with on_message only, and one whose type provides on_batch,
 * so the runtime hands it runs of up to cfg.batch calls in one handler
 * call. That gives four timings per round:
 *
 *   single     n waited calls to the plain actor
 *   batch      one batch of n to the plain actor
 *   ob_single  n waited calls to the on_batch actor (runs of one)
 *   ob_batch   one batch of n to the on_batch actor
 *
 * Both actors live in one pool, and the main thread is pinned to another
 * pool's core (where there are two): left to the kernel, where the caller
 * ran moved the one-by-one figure by a factor of three or more between
 * runs on a small machine, and that should not pass for a difference
 * between the modes or the actor types.
 *
 * The four are interleaved round by round, so that each ratio is measured
 * over the same stretch of time (the machine's timing drifts: see
 * docs/performance.md). A waited call pays the caller's wake-up every
 * time; a batch pays it once, and the gain shows what that and the
 * per-message overheads cost.
 *
 * Each call carries its index i and is answered with 3i + 1; every result
 * of every future is checked, in order. RESULT's ops and rate are the
 * batched calls to the plain actor; extra has every mode's rate, the gains
 * (batch / single, ob_batch / single) and ns per call.
 */
#include "bench.h"

#include <stdlib.h>

enum { REQUEST = 1, ANSWER = 2 };
enum { SINGLE, BATCH, OB_SINGLE, OB_BATCH, MODES };

static const char *const mode_names[MODES] = {
    "single", "batch", "ob_single", "ob_batch",
};

static int answer(xo_ctx_t *ctx, const xo_msg_t *m)
{
    const uint64_t *n = m->data;
    if (m->request == NULL || m->size != sizeof(*n))
        return xo_fail(ctx, XO_EINVAL, "not a call with one number");
    uint64_t v = 3 * *n + 1;
    return xo_reply(m->request, ANSWER, &v, sizeof(v));
}

static int plain_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    return answer(ctx, m);
}

static int answer_run(xo_ctx_t *ctx, void *state, const xo_msg_t *const *msgs,
                      size_t count)
{
    (void)state;
    for (size_t i = 0; i < count; i++) {
        int rc = answer(ctx, msgs[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const xo_actor_def_t plain_def = {
    .name = "batch-plain", .on_message = plain_message,
};
static const xo_actor_def_t runs_def = {
    .name = "batch-runs", .on_message = plain_message,
    .on_batch = answer_run,
};

/* Result i of f is the answer to call i. */
static bool answered(const xo_future_t *f, size_t i, uint64_t n)
{
    xo_result_t r;
    return xo_future_result(f, i, &r) == 0 && r.tag == ANSWER &&
           r.size == sizeof(uint64_t) &&
           *(const uint64_t *)r.data == 3 * n + 1;
}

struct round {
    struct bench_env *env;
    size_t n;
    xo_batch_item_t *items; /* item i carries values[i] = i */
    uint64_t *values;
};

static int one_by_one(const struct round *rd, xo_ref_t to)
{
    for (size_t i = 0; i < rd->n; i++) {
        xo_future_t *f;
        int rc = xo_call(to, REQUEST, &rd->values[i], sizeof(uint64_t), &f);
        if (rc != 0)
            return bench_error(rd->env, xo_strerror(rc));
        rc = xo_future_wait(f, -1);
        bool ok = rc == 0 && answered(f, 0, rd->values[i]);
        xo_future_release(f);
        if (!ok)
            return bench_error(rd->env, "a call got a wrong answer");
    }
    return 0;
}

static int as_batch(const struct round *rd, xo_ref_t to)
{
    xo_future_t *f;
    int rc = xo_call_batch(to, rd->items, rd->n, &f);
    if (rc != 0)
        return bench_error(rd->env, xo_strerror(rc));
    rc = xo_future_wait(f, -1);
    bool ok = rc == 0 && xo_future_count(f) == rd->n;
    for (size_t i = 0; ok && i < rd->n; i++)
        ok = answered(f, i, rd->values[i]);
    xo_future_release(f);
    return ok ? 0 : bench_error(rd->env, "a batch got a wrong answer");
}

/* One round: every mode once, its time added to seconds[mode]. */
static int run_round(const struct round *rd, const xo_ref_t *to,
                     double *seconds)
{
    for (int mode = 0; mode < MODES; mode++) {
        xo_ref_t target = to[mode >= OB_SINGLE];
        bool batched = mode == BATCH || mode == OB_BATCH;
        struct bench_clock clock;
        bench_clock_start(&clock);
        int rc = batched ? as_batch(rd, target) : one_by_one(rd, target);
        seconds[mode] += bench_clock_stop(rd->env, &clock);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void report(struct bench_result *r, uint64_t calls,
                   const double *seconds)
{
    char key[32];
    for (int mode = 0; mode < MODES; mode++) {
        snprintf(key, sizeof(key), "%s_rate", mode_names[mode]);
        bench_extra(r, key, "%.0f", (double)calls / seconds[mode]);
    }
    bench_extra(r, "gain", "%.1f", seconds[SINGLE] / seconds[BATCH]);
    bench_extra(r, "ob_gain", "%.1f", seconds[SINGLE] / seconds[OB_BATCH]);
    for (int mode = 0; mode < MODES; mode++) {
        snprintf(key, sizeof(key), "%s_ns", mode_names[mode]);
        bench_extra(r, key, "%.1f", seconds[mode] * 1e9 / (double)calls);
    }
}

static int make_items(struct round *rd)
{
    rd->items = calloc(rd->n, sizeof(*rd->items));
    rd->values = calloc(rd->n, sizeof(*rd->values));
    if (rd->items == NULL || rd->values == NULL)
        return bench_error(rd->env, "out of memory");
    for (size_t i = 0; i < rd->n; i++) {
        rd->values[i] = i;
        rd->items[i] = (xo_batch_item_t){ REQUEST, &rd->values[i],
                                          sizeof(uint64_t) };
    }
    return 0;
}

/* Both actors in one pool, so that only their type differs. */
static int spawn_pair(struct bench_env *env, xo_ref_t *to)
{
    xo_actor_stats_t st;
    if (bench_spawn(env, &plain_def, XO_POOL_ANY, NULL, 0, &to[0]) != 0)
        return -1;
    if (xo_actor_stats(to[0], &st) != 0)
        return bench_error(env, "cannot find the first actor's pool");
    return bench_spawn(env, &runs_def, (int)st.pool, NULL, 0, &to[1]);
}

int bench_batch(const struct bench_opts *opts, const uint64_t *args,
                struct bench_result *out)
{
    struct bench_env env;
    if (bench_start(&env, "batch", opts) != 0)
        return -1;
    struct round rd = { .env = &env, .n = (size_t)args[0] };
    double seconds[MODES] = { 0, 0, 0, 0 };
    xo_ref_t to[2];
    int rc = make_items(&rd);
    if (rc == 0)
        rc = spawn_pair(&env, to);
    cpu_set_t saved;
    if (rc == 0)
        rc = bench_pin_away(&env, to[0], &saved);
    for (uint64_t k = 0; rc == 0 && k < args[1]; k++)
        rc = run_round(&rd, to, seconds);
    if (rc == 0)
        bench_unpin(&saved);
    out->ops = args[0] * args[1];
    out->seconds = seconds[BATCH];
    if (rc == 0)
        report(out, out->ops, seconds);
    free(rd.items);
    free(rd.values);
    return bench_finish(&env, out) == 0 ? rc : -1;
}
