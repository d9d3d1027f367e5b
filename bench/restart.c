/*
 * restart.c -- supervised restarts (../shared/BENCH.md, "restart").
 *
 * A supervisor (one_for_one) runs one permanent worker. Each incarnation's
 * on_create tells the driver "started" with its incarnation number; the
 * driver checks it is the next one and answers "crash", which the worker
 * fails on (xo_crash). So one restart is: the crash, the worker's report
 * to its supervisor, the supervisor's decision, the worker's new
 * on_create, and two one-way messages. The supervisor's intensity is set
 * so that it never ends the run (the bench counts restarts, not limits).
 *
 * us_per_restart is the figure to compare at 1e3 and 1e5 restarts: the
 * intensity ring makes each restart's bookkeeping O(1), so it stays flat.
 */
#include "bench.h"

#include <string.h>

enum { KICK = 1, STARTED = 2, CRASH = 3 };
#define E_CRASH (-7201)

struct restart_run {
    struct bench_done *done;
    uint64_t restarts;     /* to do in the measured part */
    uint64_t seen;         /* incarnations heard of (driver only) */
    xo_ref_t driver, worker;
};

struct worker_state {
    struct restart_run *r;
};

static int worker_create(xo_ctx_t *ctx, void *state, const void *arg,
                         size_t size)
{
    struct worker_state *w = state;
    if (size != sizeof(w->r))
        return XO_EINVAL;
    memcpy(&w->r, arg, sizeof(w->r));
    xo_actor_stats_t st;
    int rc = xo_actor_stats(xo_self(ctx), &st);
    if (rc != 0)
        return rc;
    return xo_tell(w->r->driver, STARTED, &st.restarts, sizeof(st.restarts));
}

static int worker_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    if (m->tag == CRASH)
        return xo_crash(ctx, E_CRASH, "crash requested");
    return 0;
}

static const xo_actor_def_t worker_def = {
    .name = "restart worker",
    .state_size = sizeof(struct worker_state),
    .on_create = worker_create,
    .on_message = worker_message,
};

struct driver_state {
    struct restart_run *r;
};

static int driver_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    struct restart_run *r = ((struct driver_state *)state)->r;
    if (m->tag == STARTED) {
        uint64_t inc = *(const uint64_t *)m->data;
        if (inc != r->seen)
            return bench_fail(r->done, "an incarnation out of turn", 0);
        r->seen++;
        if (inc == 0)
            return 0; /* the first start, before the measured part */
        if (inc == r->restarts) {
            bench_done_signal(r->done);
            return 0;
        }
    }
    /* KICK, or an incarnation that reported: crash it again. */
    return xo_tell(r->worker, CRASH, NULL, 0);
}

static const xo_actor_def_t driver_def = {
    .name = "restart driver",
    .state_size = sizeof(struct driver_state),
    .on_create = bench_copy_arg,
    .on_message = driver_message,
};

int bench_restart(const struct bench_opts *opts, const uint64_t *args,
                  struct bench_result *out)
{
    struct restart_run r = { .restarts = args[0] };
    struct bench_env env;
    if (bench_start(&env, "restart", opts) != 0)
        return -1;
    r.done = &env.done;
    env.done.expected_err = E_CRASH;
    struct driver_state ds = { &r };
    int rc = bench_spawn(&env, &driver_def, 0, &ds, sizeof(ds), &r.driver);
    struct restart_run *rp = &r;
    xo_child_spec_t child = { .name = "worker", .def = &worker_def,
                              .restart = XO_CHILD_PERMANENT };
    bench_spawn_opts(&env, 1, &child.opts);
    child.opts.arg = &rp;
    child.opts.arg_size = sizeof(rp);
    /* The largest intensity, over the shortest period: never reached. */
    xo_sup_spec_t spec = { .strategy = XO_SUP_ONE_FOR_ONE,
                           .intensity = XO_RESTART_MAX, .period_ns = 1,
                           .children = &child, .nchildren = 1 };
    xo_ref_t sup = XO_REF_NONE;
    if (rc == 0) {
        xo_spawn_opts_t so;
        bench_spawn_opts(&env, 1, &so);
        rc = xo_supervisor_start(env.rt, &spec, &so, &sup);
        if (rc != 0)
            rc = bench_error(&env, xo_strerror(rc));
    }
    if (rc == 0) {
        xo_child_info_t info;
        size_t n = 0;
        rc = xo_supervisor_children(sup, &info, 1, &n);
        if (rc == 0 && n == 1)
            r.worker = info.ref;
        else
            rc = bench_error(&env, "the supervisor has no worker");
    }
    if (rc == 0)
        rc = bench_measure(&env, &r.driver, 1, KICK, &out->seconds);
    uint64_t crashes = atomic_load(&env.done.expected_seen);
    if (rc == 0 && (r.seen != r.restarts + 1 || crashes != r.restarts))
        rc = bench_error(&env, "not every incarnation reported once");
    out->ops = r.restarts;
    if (rc == 0 && out->seconds > 0)
        bench_extra(out, "us_per_restart", "%.3f",
                    out->seconds * 1e6 / (double)r.restarts);
    return bench_finish(&env, out) == 0 ? rc : -1;
}
