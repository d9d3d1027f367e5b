/*
 * spawn.c -- how fast actors come to life and how little each one costs
 * (Savina-style "spawn"; "spawn_burst" is the same with no window).
 *
 * A driver actor spawns `actors` children. Each child, in its on_create,
 * sends "hello" to the driver, and stays alive afterwards (nothing
 * destroys it until the runtime stops): the figure is the cost of a
 * spawn plus one message, and the memory of a live idle actor.
 *
 * window > 0: the driver spawns `window` children on the kick-off, then one
 * more per hello, so at most `window` children are spawned but not yet
 * heard from (a bounded pipeline). window = 0: it spawns all of them in one
 * loop on the kick-off and the hellos queue up meanwhile (the burst).
 *
 * Spawning is what is measured, so here it is inside the timed part.
 * Memory: bytes_per_actor = (VmHWM when done - VmRSS before the kick-off)
 * / actors, everything the spawns cost (cells, ref slots, the hellos in
 * flight) over what the process held before. The children are placed like
 * every actor of the suite (the runtime's default policy, or --placement);
 * each child's on_create, and so its hello, runs on the driver's worker.
 */
#include "bench.h"

enum { KICK = 1, HELLO = 2 };

struct spawner {
    struct bench_done *done;
    xo_spawn_opts_t child_opts; /* as the flags ask, arg = the driver */
    uint64_t actors, window;
    uint64_t hellos;          /* written by the driver before it signals */
    xo_ref_t driver;
};

/* The spawn argument is the whole initial state. */
struct driver {
    struct spawner *s;
    uint64_t spawned, hellos;
};

/* A child has no state: its cell is all it costs. */
static int child_create(xo_ctx_t *ctx, void *state, const void *arg,
                        size_t size)
{
    (void)ctx;
    (void)state;
    (void)size;
    return xo_tell(*(const xo_ref_t *)arg, HELLO, NULL, 0);
}

static const xo_actor_def_t child_def = {
    .name = "child", .on_create = child_create,
};

static int spawn_children(xo_ctx_t *ctx, struct driver *d, uint64_t n)
{
    for (uint64_t i = 0; i < n && d->spawned < d->s->actors; i++) {
        xo_ref_t child;
        int rc = xo_spawn(xo_ctx_runtime(ctx), &child_def, &d->s->child_opts,
                          &child);
        if (rc != 0)
            return rc;
        d->spawned++;
    }
    return 0;
}

static int driver_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct driver *d = state;
    struct spawner *s = d->s;
    if (m->tag == KICK)
        return spawn_children(ctx, d, s->window ? s->window : s->actors);
    if (++d->hellos == s->actors) {
        s->hellos = d->hellos;
        bench_done_signal(s->done);
        return 0;
    }
    return s->window ? spawn_children(ctx, d, 1) : 0;
}

static const xo_actor_def_t driver_def = {
    .name = "spawn-driver", .state_size = sizeof(struct driver),
    .on_create = bench_copy_arg, .on_message = driver_message,
};

/* Live actors over all pools, as the runtime counts them. */
static uint64_t live_actors(xo_runtime_t *rt)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < xo_pool_count(rt); i++) {
        xo_pool_info_t info;
        if (xo_pool_info(rt, i, &info) == 0)
            n += info.actors;
    }
    return n;
}

static int measure(struct bench_env *env, struct spawner *s,
                   struct bench_result *out)
{
    struct driver init = { s, 0, 0 };
    if (bench_spawn(env, &driver_def, XO_POOL_ANY, &init, sizeof(init),
                    &s->driver) != 0)
        return -1;
    bench_spawn_opts(env, XO_POOL_ANY, &s->child_opts);
    s->child_opts.arg = &s->driver;
    s->child_opts.arg_size = sizeof(s->driver);
    uint64_t rss_before = bench_rss_kib();
    int rc = bench_measure(env, &s->driver, 1, KICK, &out->seconds);
    uint64_t peak = bench_peak_rss_kib();
    if (rc == 0 && s->hellos != s->actors)
        rc = bench_error(env, "hellos missing");
    if (rc == 0 && live_actors(env->rt) != s->actors + 1)
        rc = bench_error(env, "children not alive at the end");
    out->ops = s->actors;
    bench_extra(out, "window", "%llu", (unsigned long long)s->window);
    bench_extra(out, "bytes_per_actor", "%.0f",
                peak > rss_before
                    ? (double)(peak - rss_before) * 1024 / (double)s->actors
                    : 0.0);
    return rc;
}

static int run(const char *name, const struct bench_opts *opts,
               uint64_t actors, uint64_t window, struct bench_result *out)
{
    struct spawner s = { .actors = actors, .window = window };
    struct bench_env env;
    if (bench_start(&env, name, opts) != 0)
        return -1;
    s.done = &env.done;
    int rc = measure(&env, &s, out);
    return bench_finish(&env, out) == 0 ? rc : -1;
}

int bench_spawn_run(const struct bench_opts *opts, const uint64_t *args,
                    struct bench_result *out)
{
    return run("spawn", opts, args[0], args[1], out);
}

int bench_spawn_burst(const struct bench_opts *opts, const uint64_t *args,
                      struct bench_result *out)
{
    return run("spawn_burst", opts, args[0], args[1], out);
}
