/*
 * pingpong.c -- the round trip between two actors (Savina "ping pong").
 *
 * ping sends n to pong, pong echoes it back to the sender, ping checks the
 * echo and sends n + 1, round_trips times. One message is in flight at any
 * moment, so the figure is latency, not throughput: two sends, two
 * schedulings and two handler turns per round trip.
 *
 * Placement is the runtime's default (least loaded: two actors spawned in a
 * row from the main thread land on different pools when there are two or
 * more), so every message crosses between cores. That makes the hardware's own round
 * trip the floor: before the runtime starts, the benchmark bounces one cache
 * line between the first two CPUs and reports ns_per_rt against it
 * (vs_line = how many cache-line round trips one actor round trip costs).
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

static void report(struct bench_result *r, double seconds, uint64_t rounds,
                   double line_ns)
{
    double ns = seconds * 1e9 / (double)rounds;
    r->ops = rounds;
    r->seconds = seconds;
    bench_extra(r, "ns_per_rt", "%.1f", ns);
    if (line_ns > 0) {
        bench_extra(r, "line_rt_ns", "%.1f", line_ns);
        bench_extra(r, "vs_line", "%.2f", ns / line_ns);
    }
}

int bench_pingpong(const struct bench_opts *opts, const uint64_t *args,
                   struct bench_result *out)
{
    struct pingpong pp = { .rounds = args[0] };
    /* Measured before the workers start, which would compete for the
       cores; skipped where the two actors will share one. */
    bool one_core = opts->one_pool || opts->pools == 1;
    double line_ns = one_core ? -1 : hw_line_round_trip_ns(200000, NULL);
    struct bench_env env;
    if (bench_start(&env, "pingpong", opts) != 0)
        return -1;
    pp.done = &env.done;
    struct ping_state init = { &pp, 0, 0 };
    xo_ref_t ping;
    double seconds = 0;
    int rc = bench_spawn(&env, &pong_def, XO_POOL_ANY, NULL, 0, &pp.pong);
    if (rc == 0)
        rc = bench_spawn(&env, &ping_def, XO_POOL_ANY, &init, sizeof(init),
                         &ping);
    if (rc == 0 && !apart(ping, pp.pong))
        line_ns = -1; /* one core: no line crosses, no floor to compare */
    if (rc == 0)
        rc = bench_measure(&env, &ping, 1, KICK, &seconds);
    if (rc == 0 && pp.echoed != pp.rounds)
        rc = bench_error(&env, "fewer echoes than round trips");
    report(out, seconds, pp.rounds, line_ns);
    return bench_finish(&env, out) == 0 ? rc : -1;
}
