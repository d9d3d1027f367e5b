/*
 * pingpong.c -- the round trip between two actors (Savina "ping pong").
 *
 * ping sends n to pong, pong echoes it back to the sender, ping checks the
 * echo and sends n + 1, round_trips times. One message is in flight at any
 * moment, so the figure is latency, not throughput: two sends, two
 * schedulings and two handler turns per round trip.
 *
 * Placement is the runtime's default: the two actors get homes on
 * different pools, but they are movable, so they settle on one worker
 * (docs/scheduler.md, "Locality") and the figure is a round trip on one
 * core. Then, with two pools or more, the same pair runs again fixed to
 * pools 0 and 1, so that every message crosses between cores: that makes
 * the hardware's own round trip the floor. Before the runtime starts the
 * benchmark bounces one cache line between the first two CPUs and
 * reports the apart round trip against it (apart_ns_per_rt, vs_line =
 * how many cache-line round trips one actor round trip across cores
 * costs). --move fixed (or explicit placement) makes the main figure the
 * apart one.
 */
#include "bench.h"

enum { KICK = 1, BALL = 2 };

struct pingpong {
    struct bench_done *done;
    uint64_t rounds;
    xo_ref_t pong;
    uint64_t echoed; /* written by ping before it signals */
};

/* The spawn argument is the whole initial state. */
struct ping_state {
    struct pingpong *pp;
    uint64_t sent;    /* the value of the ball in flight */
    uint64_t echoed;  /* round trips completed and checked */
};

static int ping_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct ping_state *p = state;
    (void)ctx;
    if (m->tag == BALL) {
        const uint64_t *n = m->data;
        if (m->size != sizeof(*n) || *n != p->sent)
            return bench_fail(p->pp->done, "the echo differs from the ball",
                              0);
        if (++p->echoed == p->pp->rounds) {
            p->pp->echoed = p->echoed;
            bench_done_signal(p->pp->done);
            return 0;
        }
        p->sent++;
    }
    return xo_tell(p->pp->pong, BALL, &p->sent, sizeof(p->sent));
}

static int pong_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    return xo_tell(m->sender, BALL, m->data, m->size);
}

static const xo_actor_def_t ping_def = {
    .name = "ping", .state_size = sizeof(struct ping_state),
    .on_create = bench_copy_arg, .on_message = ping_message,
};
static const xo_actor_def_t pong_def = {
    .name = "pong", .on_message = pong_message,
};

/* Whether the two actors live in different pools (cores). */
static bool apart(xo_ref_t a, xo_ref_t b)
{
    xo_actor_stats_t sa, sb;
    return xo_actor_stats(a, &sa) == 0 && xo_actor_stats(b, &sb) == 0 &&
           sa.pool != sb.pool;
}

static void report(struct bench_result *r, double seconds, uint64_t rounds)
{
    r->ops = rounds;
    r->seconds = seconds;
    bench_extra(r, "ns_per_rt", "%.1f", seconds * 1e9 / (double)rounds);
}

static void report_apart(struct bench_result *r, double seconds,
                         uint64_t rounds, double line_ns)
{
    double ns = seconds * 1e9 / (double)rounds;
    bench_extra(r, "apart_ns_per_rt", "%.1f", ns);
    if (line_ns > 0) {
        bench_extra(r, "line_rt_ns", "%.1f", line_ns);
        bench_extra(r, "vs_line", "%.2f", ns / line_ns);
    }
}

/* One measured run of a pair spawned with so_pong and so_ping. */
static int run_pair(struct bench_env *env, struct pingpong *pp,
                    const xo_spawn_opts_t *so_pong, xo_spawn_opts_t *so_ping,
                    double *seconds, xo_ref_t *ping)
{
    struct ping_state init = { pp, 0, 0 };
    so_ping->arg = &init;
    so_ping->arg_size = sizeof(init);
    pp->echoed = 0;
    int rc = xo_spawn(env->rt, &pong_def, so_pong, &pp->pong);
    if (rc == 0)
        rc = xo_spawn(env->rt, &ping_def, so_ping, ping);
    if (rc != 0) {
        fprintf(stderr, "pingpong: xo_spawn: %s\n", xo_strerror(rc));
        return -1;
    }
    rc = bench_measure(env, ping, 1, KICK, seconds);
    if (rc == 0 && pp->echoed != pp->rounds)
        rc = bench_error(env, "fewer echoes than round trips");
    return rc;
}

int bench_pingpong(const struct bench_opts *opts, const uint64_t *args,
                   struct bench_result *out)
{
    struct pingpong pp = { .rounds = args[0] };
    /* Measured before the workers start, which would compete for the
       cores; skipped where the two actors can only share one. */
    bool one_core = opts->one_pool || opts->pools == 1;
    double line_ns = one_core ? -1 : hw_line_round_trip_ns(200000, NULL);
    struct bench_env env;
    if (bench_start(&env, "pingpong", opts) != 0)
        return -1;
    pp.done = &env.done;
    xo_ref_t ping;
    double seconds = 0;
    xo_spawn_opts_t so_pong, so_ping;
    bench_spawn_opts(&env, XO_POOL_ANY, &so_pong);
    bench_spawn_opts(&env, XO_POOL_ANY, &so_ping);
    int rc = run_pair(&env, &pp, &so_pong, &so_ping, &seconds, &ping);
    report(out, seconds, pp.rounds);
    if (rc == 0 && so_ping.move == XO_MOVE_FIXED && apart(ping, pp.pong)) {
        report_apart(out, seconds, pp.rounds, line_ns); /* it was apart */
    } else if (rc == 0 && !one_core && xo_pool_count(env.rt) >= 2) {
        xo_spawn_opts_init(&so_pong);
        xo_spawn_opts_init(&so_ping);
        so_ping.pool = 0;
        so_pong.pool = 1;
        so_ping.move = so_pong.move = XO_MOVE_FIXED;
        double apart_s = 0;
        rc = run_pair(&env, &pp, &so_pong, &so_ping, &apart_s, &ping);
        if (rc == 0)
            report_apart(out, apart_s, pp.rounds, line_ns);
    }
    return bench_finish(&env, out) == 0 ? rc : -1;
}
