/*
 * latency.c -- how long one message takes from xo_tell to its handler, as
 * a distribution (p50, p99, p99.9), in three situations:
 *
 *   within  sender and receiver in the same pool: the message never leaves
 *           the core;
 *   across  sender and receiver in two pools (two cores): the message and
 *           the scheduling cross between cores while the receiving worker
 *           is busy-polling;
 *   wake    from the main thread to an actor whose worker has gone to
 *           sleep (the sends are spaced wider than the runtime's spin
 *           time): the cost of waking a parked worker, what a quiet service
 *           sees on its first request.
 *
 * within and across are a ping-pong of stamped messages: each message
 * carries the CLOCK_MONOTONIC time it was sent at, the receiver records
 * now - stamp in its own histogram and sends the next one back, so exactly
 * one message is in flight and no queueing hides in the figure. Each phase
 * has its own kick-off and completion; `ops` and `seconds` are the messages
 * and time of these two phases. The wake phase is driven by the main
 * thread's sleeps, so it only adds its percentiles to extra.
 *
 * The stamps come from the same clock on every core (the kernel's
 * monotonic clock, through the vDSO): one-way latency needs no round-trip
 * halving. Each figure includes one clock read (clock_ns in the hw bench).
 */
#include "bench.h"
#include "histogram.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* SAMPLE is answered with the next one; PROBE (from the main thread, which
   is no actor to answer) is only recorded. */
enum { KICK = 1, SAMPLE = 2, PROBE = 3 };

struct stamp {
    uint64_t sent_ns;
    uint64_t left;     /* messages still to send, this one included */
};

struct phase {
    struct bench_done *done;
    uint64_t samples;
    struct histogram hist[2];  /* one per actor: single writers */
};

/* The spawn argument is the whole initial state. */
struct prober {
    struct phase *ph;
    struct histogram *hist;
    xo_ref_t peer;             /* the first message's target */
};

static int send_stamp(xo_ref_t to, uint32_t tag, uint64_t left)
{
    struct stamp s = { bench_now_ns(), left };
    return xo_tell(to, tag, &s, sizeof(s));
}

static int prober_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct prober *p = state;
    (void)ctx;
    if (m->tag == KICK)
        return send_stamp(p->peer, SAMPLE, p->ph->samples);
    const struct stamp *s = m->data;
    hist_record(p->hist, bench_now_ns() - s->sent_ns);
    if (s->left > 1)
        return m->tag == SAMPLE ? send_stamp(m->sender, SAMPLE, s->left - 1)
                                : 0;
    bench_done_signal(p->ph->done);
    return 0;
}

static const xo_actor_def_t prober_def = {
    .name = "latency-prober", .state_size = sizeof(struct prober),
    .on_create = bench_copy_arg, .on_message = prober_message,
};

static void add_percentiles(struct bench_result *r, const char *prefix,
                            const struct histogram *h)
{
    static const struct { const char *name; double q; } qs[] = {
        { "p50", 0.5 }, { "p99", 0.99 }, { "p999", 0.999 },
    };
    for (unsigned i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        char key[32];
        snprintf(key, sizeof(key), "%s_%s_ns", prefix, qs[i].name);
        bench_extra(r, key, "%llu",
                    (unsigned long long)hist_quantile(h, qs[i].q));
    }
}

/* A ping-pong of `samples` stamped messages between pools a and b. */
static int pingpong_phase(struct bench_env *env, struct phase *ph, int a,
                          int b, double *seconds)
{
    struct prober echo = { ph, &ph->hist[1], XO_REF_NONE };
    struct prober first = { ph, &ph->hist[0], XO_REF_NONE };
    if (bench_spawn(env, &prober_def, b, &echo, sizeof(echo), &first.peer))
        return -1;
    xo_ref_t starter;
    if (bench_spawn(env, &prober_def, a, &first, sizeof(first), &starter))
        return -1;
    if (bench_measure(env, &starter, 1, KICK, seconds) != 0)
        return -1;
    hist_merge(&ph->hist[0], &ph->hist[1]);
    if (ph->hist[0].count != ph->samples)
        return bench_error(env, "samples missing");
    return 0;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = { (time_t)(ns / 1000000000u),
                           (long)(ns % 1000000000u) };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Keep the main thread off the core whose worker it wakes. */
static int pin_main_beside(struct bench_env *env, cpu_set_t *saved)
{
    xo_pool_info_t info;
    if (sched_getaffinity(0, sizeof(*saved), saved) != 0)
        return -1;
    if (xo_pool_count(env->rt) < 2 || env->opts->one_pool ||
        xo_pool_info(env->rt, 0, &info) != 0 || info.core < 0)
        return 0;
    return bench_pin_self(info.core);
}

/* Sends spaced by twice the workers' spin time and 100 us more. */
static int send_spaced(struct bench_env *env, xo_ref_t to, uint64_t samples)
{
    xo_config_t defaults;
    xo_config_init(&defaults);
    uint64_t spin = env->opts->spin_set ? env->opts->spin_ns
                                        : defaults.spin_ns;
    for (uint64_t left = samples; left > 0; left--) {
        sleep_ns(2 * spin + 100000);
        if (send_stamp(to, PROBE, left) != 0)
            return bench_error(env, "cannot send");
    }
    return 0;
}

/* The main thread sends `samples` messages, each after the worker parked. */
static int wake_phase(struct bench_env *env, struct phase *ph)
{
    struct prober sleeper = { ph, &ph->hist[0], XO_REF_NONE };
    xo_ref_t to;
    cpu_set_t saved;
    if (bench_spawn(env, &prober_def, 1, &sleeper, sizeof(sleeper), &to))
        return -1;
    if (pin_main_beside(env, &saved) != 0)
        return bench_error(env, "cannot pin the main thread");
    bench_done_reset(&env->done);
    int rc = send_spaced(env, to, ph->samples);
    if (rc == 0)
        rc = bench_wait(env, "wake phase");
    (void)sched_setaffinity(0, sizeof(saved), &saved);
    if (rc == 0 && ph->hist[0].count != ph->samples)
        rc = bench_error(env, "samples missing");
    return rc;
}

static int run_phases(struct bench_env *env, const uint64_t *args,
                      struct phase *ph, struct bench_result *out)
{
    static const char *const names[3] = { "within", "across", "wake" };
    static const int second_pool[2] = { 0, 1 };
    double seconds[2] = { 0, 0 };
    for (unsigned i = 0; i < 3; i++) {
        struct phase *p = &ph[i];
        p->done = &env->done;
        p->samples = i < 2 ? args[0] : args[1];
        int rc = i < 2 ? pingpong_phase(env, p, 0, second_pool[i],
                                        &seconds[i])
                       : wake_phase(env, p);
        if (rc != 0)
            return rc;
        add_percentiles(out, names[i], &p->hist[0]);
    }
    out->ops = 2 * args[0];
    out->seconds = seconds[0] + seconds[1];
    return 0;
}

int bench_latency(const struct bench_opts *opts, const uint64_t *args,
                  struct bench_result *out)
{
    struct phase *ph = calloc(3, sizeof(*ph));
    struct bench_env env;
    if (ph == NULL || bench_start(&env, "latency", opts) != 0) {
        free(ph);
        return -1;
    }
    int rc = run_phases(&env, args, ph, out);
    free(ph);
    return bench_finish(&env, out) == 0 ? rc : -1;
}
