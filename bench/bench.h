/*
 * bench.h -- what the benchmarks of xoscar-bench share.
 *
 * Every benchmark has the same shape, so that its figure means what the
 * others' mean (the contract is written down in docs/performance.md):
 *
 *   1. bench_start: a runtime with the suite's configuration, whose
 *      handler-error hook turns any failing handler into a failed run;
 *   2. spawn and wire the actors (not timed, except in the spawn
 *      benchmarks, where spawning is the thing measured);
 *   3. bench_measure: read the clock, send the kick-off message, sleep on a
 *      futex until the last actor calls bench_done_signal, read the clock;
 *   4. check the result, bench_finish (stop, free, add the figures every
 *      result carries: peak_rss_kib and workers).
 *
 * The main thread sleeps in the kernel while the actors run, so on a small
 * machine it takes no core away from the workers. Actors report a wrong
 * result with bench_fail, which also wakes the main thread: a broken run
 * ends at once with a message, and a hung one ends at the timeout.
 */
#ifndef XO_BENCH_BENCH_H
#define XO_BENCH_BENCH_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <xoscar/xoscar.h>

/* ---- options every benchmark takes (the command line's flags) ---- */

struct bench_opts {
    unsigned pools;       /* runtime pools; 0: one per CPU (the default) */
    unsigned batch;       /* 0: the runtime's default */
    uint64_t spin_ns;     /* meaningful when spin_set */
    bool spin_set;
    unsigned yield_sends; /* meaningful when yield_set */
    bool yield_set;
    bool one_pool;        /* --placement=one: every actor in pool 0 */
    xo_place_kind_t place; /* --placement=least|rr|random (default least) */
    xo_move_t move;       /* --move auto|fixed|free (default auto) */
    bool no_steal;        /* --no-steal: cfg.steal = false */
    uint64_t steal_wait_ns; /* meaningful when steal_wait_set */
    bool steal_wait_set;
    uint64_t handler_sample; /* meaningful when handler_sample_set */
    bool handler_sample_set;
    double timeout_s;     /* a measured part that takes longer has hung */
    xo_gpu_backend_t gpu_backend; /* --gpu: the GPU benchmarks' backend */
};

/* ---- results --------------------------------------------------------- */

#define BENCH_MAX_EXTRA 24

struct bench_extra {
    char key[32];
    char value[32];
};

/* One line of output. Plain data, so that a child process can hand it to
   its parent through a pipe as it is (see main.c). */
struct bench_result {
    char name[32];
    uint64_t ops;
    double seconds;
    unsigned nextra;
    struct bench_extra extra[BENCH_MAX_EXTRA];
};

void bench_result_init(struct bench_result *r, const char *name);
/* Append key=value (printf-style value); extras past the limit are dropped
   with a warning on stderr. */
void bench_extra(struct bench_result *r, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The value of an extra, or NULL. */
const char *bench_extra_get(const struct bench_result *r, const char *key);
double bench_rate(const struct bench_result *r);
/* The RESULT line, or the same as one JSON object, with a newline. */
void bench_print(FILE *f, const struct bench_result *r, bool json);

/* ---- completion: the last actor wakes the main thread ---------------- */

struct bench_done {
    /* Futex word: 0 while the measured part runs, 1 once it ended. */
    _Atomic uint32_t word;
    /* The first failure's reason and code; NULL/0 while all is well. */
    _Atomic(const char *) why;
    _Atomic int err;
    /* A code the benchmark's handlers fail with on purpose (the restart
       benchmark's crashes): counted in expected_seen, not a failed run.
       0: none. */
    int expected_err;
    _Atomic uint64_t expected_seen;
};

void bench_done_reset(struct bench_done *d);
/* From an actor: the measured part is over. */
void bench_done_signal(struct bench_done *d);
/* From an actor: the run failed (first reason wins); ends the measured
   part. Returns XO_EINVAL so a handler can `return bench_fail(...)`. */
int bench_fail(struct bench_done *d, const char *why, int err);
/* Main thread: sleep until signalled. 0, or -1 after timeout_s. */
int bench_done_wait(struct bench_done *d, double timeout_s);

/* ---- one run of one benchmark --------------------------------------- */

struct bench_env {
    const char *name;
    const struct bench_opts *opts;
    xo_runtime_t *rt;
    struct bench_done done;
    /* Wall and CPU (all threads) seconds of the measured parts so far. */
    double measured_s, cpu_s;
    /* The cache line's round trip between the first two CPUs, measured
       just before the runtime started (<= 0: one CPU). */
    double line_ns;
};

/* A line round trip above this many ns (env XO_BENCH_SLOW_LINE_NS, default
   80) is the machine's slow cross-core state: the usual one is about
   50 ns on the machines the README's table comes from. */
double bench_slow_line_ns(void);
/* "usual" or "slow", for a line round trip measured in the same run. */
const char *bench_machine_state(double line_ns);

/* Start the runtime. Prints why on failure. */
/* The runtime's watchdog alerts, counted into the result (`alerts`). */
void bench_on_alert(xo_runtime_t *rt, const xo_alert_t *a, void *user);
int bench_start(struct bench_env *env, const char *name,
                const struct bench_opts *opts);
/* Spawn options as the flags ask. pool: an index (wrapping past the last
   pool), or XO_POOL_ANY for the placement policy (--placement, else the
   runtime's default); --placement=one turns both into pool 0. */
void bench_spawn_opts(const struct bench_env *env, int pool,
                      xo_spawn_opts_t *so);
/* Spawn with bench_spawn_opts, arg copied to on_create. Prints why on
   failure. */
int bench_spawn(struct bench_env *env, const xo_actor_def_t *def, int pool,
                const void *arg, size_t arg_size, xo_ref_t *out);

/* The measured part: kick off every ref in `to` with an empty message of
   `tag`, wait for bench_done_signal. Exits the process after the timeout
   (a hung runtime cannot be stopped). Returns 0, or -1 after printing the
   reason when a send or an actor failed. */
int bench_measure(struct bench_env *env, const xo_ref_t *to, size_t n,
                  uint32_t tag, double *seconds);
/* A measured part that the main thread drives itself (calls it makes and
   waits on, no kick-off message): bench_clock_start reads the clocks,
   bench_clock_stop adds the wall and CPU time since to env's totals (for
   cpu_util) and returns the wall seconds. */
struct bench_clock {
    uint64_t t0_ns;
    double cpu0_s;
};
void bench_clock_start(struct bench_clock *c);
double bench_clock_stop(struct bench_env *env, const struct bench_clock *c);
/* Wait, untimed, for a step that ends with bench_done_signal (`what`
   names it if it hangs). Same returns as bench_measure. */
int bench_wait(struct bench_env *env, const char *what);
/* Stop and free the runtime; add peak_rss_kib, workers and cpu_util
   (CPU time of the measured parts over their wall time times workers: how
   busy the workers kept their cores, idle spinning included) to r.
   Returns 0, or -1 after printing why. */
int bench_finish(struct bench_env *env, struct bench_result *r);
/* Print "name: what" on stderr and return -1. */
int bench_error(const struct bench_env *env, const char *what);

/* ---- small tools ------------------------------------------------------ */

uint64_t bench_now_ns(void);
/* VmRSS / VmHWM of this process in KiB (0 if unreadable). */
uint64_t bench_rss_kib(void);
uint64_t bench_peak_rss_kib(void);
/* An on_create that copies its argument into the state (arg_size bytes,
   at most the def's state size: the caller passes a matching struct). */
int bench_copy_arg(xo_ctx_t *ctx, void *state, const void *arg, size_t size);
/* For a main thread that calls an actor and sleeps on the reply: pin it to
   the core of a pool other than the actor's home, so that it never shares
   a core with the worker that answers (where the pools' cores are known
   and there are two or more; otherwise it stays as it is). The affinity
   before is saved for bench_unpin. 0, or -1 after printing why. */
int bench_pin_away(struct bench_env *env, xo_ref_t actor, cpu_set_t *saved);
void bench_unpin(const cpu_set_t *saved);
/* Pin the calling thread to one CPU; 0 or -1. */
int bench_pin_self(int cpu);
/* The i-th CPU this process may run on (wrapping), or -1. */
int bench_nth_cpu(unsigned i);

/* ---- the benchmarks (one file each) ----------------------------------- */

/* Arguments are validated by main.c against the table there. */
typedef int (*bench_fn)(const struct bench_opts *opts, const uint64_t *args,
                        struct bench_result *out);

int bench_hw(const struct bench_opts *, const uint64_t *, struct bench_result *);
int bench_restart(const struct bench_opts *, const uint64_t *,
                  struct bench_result *);
int bench_pingpong(const struct bench_opts *, const uint64_t *,
                   struct bench_result *);
int bench_threadring(const struct bench_opts *, const uint64_t *,
                     struct bench_result *);
int bench_fanin(const struct bench_opts *, const uint64_t *,
                struct bench_result *);
int bench_forkjoin(const struct bench_opts *, const uint64_t *,
                   struct bench_result *);
int bench_spawn_run(const struct bench_opts *, const uint64_t *,
                    struct bench_result *);
int bench_spawn_burst(const struct bench_opts *, const uint64_t *,
                      struct bench_result *);
int bench_fanout(const struct bench_opts *, const uint64_t *,
                 struct bench_result *);
int bench_counting(const struct bench_opts *, const uint64_t *,
                   struct bench_result *);
int bench_latency(const struct bench_opts *, const uint64_t *,
                  struct bench_result *);
int bench_call(const struct bench_opts *, const uint64_t *,
               struct bench_result *);
int bench_batch(const struct bench_opts *, const uint64_t *,
                struct bench_result *);
int bench_remote_pingpong(const struct bench_opts *, const uint64_t *,
                          struct bench_result *);
int bench_remote_hol(const struct bench_opts *, const uint64_t *,
                     struct bench_result *);
int bench_remote_tell(const struct bench_opts *, const uint64_t *,
                      struct bench_result *);
/* The second node of the remote benchmarks (remote.c): the hidden
   command `xoscar-bench __node`. */
int bench_remote_node(void);
int bench_gpu_launch(const struct bench_opts *, const uint64_t *,
                     struct bench_result *);
int bench_gpu_pipeline(const struct bench_opts *, const uint64_t *,
                       struct bench_result *);

/* The cache-line round trip between the first two CPUs in ns (hw.c), for
   the benchmarks that report themselves against it; -1 with one CPU. When
   `all` is not NULL, its ops and seconds get every round trip timed. */
double hw_line_round_trip_ns(uint64_t round_trips, struct bench_result *all);
/* A 64-byte TCP round trip on 127.0.0.1 in ns (hw.c: two threads, one
   socket each, TCP_NODELAY); the median batch of round_trips. -1 when
   the sockets cannot be made. */
double hw_tcp_round_trip_ns(uint64_t round_trips);

#endif /* XO_BENCH_BENCH_H */
