/*
 * harness.c -- the frame every benchmark runs in (see bench.h): the
 * runtime's configuration, the completion futex, the clock, the process's
 * memory figures, and the output line.
 *
 * Completion is one futex word. The last actor stores 1 (release) and wakes
 * the main thread; the main thread loads it (acquire), so everything the
 * actors wrote before signalling -- their counts and sums -- is visible to
 * the checks that follow. A futex and not a pipe or a condition variable:
 * one system call on each side, no lock an actor could block on, and a
 * timeout for free.
 */
#include "bench.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- results ------------------------------------------------------- */

void bench_result_init(struct bench_result *r, const char *name)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
}

void bench_extra(struct bench_result *r, const char *key, const char *fmt, ...)
{
    if (r->nextra == BENCH_MAX_EXTRA) {
        fprintf(stderr, "%s: too many extras, %s dropped\n", r->name, key);
        return;
    }
    struct bench_extra *e = &r->extra[r->nextra++];
    snprintf(e->key, sizeof(e->key), "%s", key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->value, sizeof(e->value), fmt, ap);
    va_end(ap);
}

const char *bench_extra_get(const struct bench_result *r, const char *key)
{
    for (unsigned i = 0; i < r->nextra; i++)
        if (strcmp(r->extra[i].key, key) == 0)
            return r->extra[i].value;
    return NULL;
}

double bench_rate(const struct bench_result *r)
{
    return r->seconds > 0 ? (double)r->ops / r->seconds : 0;
}

static bool is_number(const char *s)
{
    char *end;
    if (*s == '\0')
        return false;
    (void)strtod(s, &end);
    return *end == '\0';
}

static void print_json(FILE *f, const struct bench_result *r)
{
    fprintf(f, "{\"name\":\"%s\",\"peer\":\"xoscar\",\"ops\":%llu,"
           "\"seconds\":%.6f,\"rate\":%.0f,\"extra\":{",
           r->name, (unsigned long long)r->ops, r->seconds, bench_rate(r));
    for (unsigned i = 0; i < r->nextra; i++) {
        const struct bench_extra *e = &r->extra[i];
        /* Values are numbers or plain words we wrote ourselves: nothing
           to escape. */
        fprintf(f, is_number(e->value) ? "%s\"%s\":%s" : "%s\"%s\":\"%s\"",
                i ? "," : "", e->key, e->value);
    }
    fprintf(f, "}}\n");
}

void bench_print(FILE *f, const struct bench_result *r, bool json)
{
    if (json) {
        print_json(f, r);
    } else {
        fprintf(f, "RESULT name=%s peer=xoscar ops=%llu seconds=%.6f rate=%.0f "
               "extra=",
               r->name, (unsigned long long)r->ops, r->seconds, bench_rate(r));
        for (unsigned i = 0; i < r->nextra; i++)
            fprintf(f, "%s%s=%s", i ? "," : "", r->extra[i].key,
                    r->extra[i].value);
        fprintf(f, "\n");
    }
    fflush(f);
}

/* ---- completion ----------------------------------------------------- */

void bench_done_reset(struct bench_done *d)
{
    /* relaxed: no actor touches d until the next kick-off message, whose
       send orders these stores before it. */
    atomic_store_explicit(&d->word, 0, memory_order_relaxed);
    atomic_store_explicit(&d->why, NULL, memory_order_relaxed);
    atomic_store_explicit(&d->err, 0, memory_order_relaxed);
    atomic_store_explicit(&d->expected_seen, 0, memory_order_relaxed);
}

void bench_done_signal(struct bench_done *d)
{
    /* release: pairs with the acquire load in bench_done_wait; the
       results written before are visible to the main thread's checks. */
    atomic_store_explicit(&d->word, 1, memory_order_release);
    syscall(SYS_futex, (uint32_t *)&d->word, FUTEX_WAKE_PRIVATE, 1, NULL,
            NULL, 0);
}

int bench_fail(struct bench_done *d, const char *why, int err)
{
    const char *none = NULL;
    /* relaxed: both are read after bench_done_wait's acquire, which the
       signal below orders them before. */
    if (atomic_compare_exchange_strong_explicit(&d->why, &none, why,
                                                memory_order_relaxed,
                                                memory_order_relaxed))
        atomic_store_explicit(&d->err, err, memory_order_relaxed);
    bench_done_signal(d);
    return XO_EINVAL;
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int bench_done_wait(struct bench_done *d, double timeout_s)
{
    uint64_t deadline = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
    /* acquire: pairs with bench_done_signal's release store. */
    while (atomic_load_explicit(&d->word, memory_order_acquire) == 0) {
        uint64_t now = bench_now_ns();
        if (now >= deadline)
            return -1;
        uint64_t left = deadline - now;
        struct timespec ts = { (time_t)(left / 1000000000u),
                               (long)(left % 1000000000u) };
        syscall(SYS_futex, (uint32_t *)&d->word, FUTEX_WAIT_PRIVATE, 0, &ts,
                NULL, 0);
    }
    return 0;
}

/* ---- the runtime ------------------------------------------------------ */

int bench_error(const struct bench_env *env, const char *what)
{
    fprintf(stderr, "%s: %s\n", env->name, what);
    return -1;
}

static int report_xo(const struct bench_env *env, const char *what, int rc)
{
    fprintf(stderr, "%s: %s: %s\n", env->name, what, xo_strerror(rc));
    return -1;
}

/* The runtime's hook for a handler that returned < 0: the run failed. */
static void on_handler_error(xo_runtime_t *rt, xo_ref_t actor, uint32_t tag,
                             int err, void *user)
{
    (void)rt;
    (void)actor;
    (void)tag;
    struct bench_done *d = user;
    if (d->expected_err != 0 && err == d->expected_err) {
        /* relaxed: a count, read after the run. */
        atomic_fetch_add_explicit(&d->expected_seen, 1, memory_order_relaxed);
        return;
    }
    (void)bench_fail(d, "a handler returned an error", err);
}

/* The watchdog runs in every benchmark as it does in a user's process,
   and its alerts are expected there (fanin's senders run one long handler
   each, a sink falls behind on purpose): they are counted into the result
   (`alerts`) instead of written to stderr between the RESULT lines. */
static _Atomic unsigned long long alerts;

void bench_on_alert(xo_runtime_t *rt, const xo_alert_t *a, void *user)
{
    (void)rt;
    (void)a;
    (void)user;
    /* relaxed: a count, read after the runtime has stopped. */
    atomic_fetch_add_explicit(&alerts, 1, memory_order_relaxed);
}

int bench_start(struct bench_env *env, const char *name,
                const struct bench_opts *opts)
{
    memset(env, 0, sizeof(*env));
    env->name = name;
    env->opts = opts;
    /* The state the machine is in for this run: measured before the
       workers start, which would compete for the two CPUs. With one pool
       no line crosses cores, and the bounce would only make an
       instruction count of the run (callgrind) vary. */
    env->line_ns = opts->pools == 1 || opts->one_pool
                       ? -1
                       : hw_line_round_trip_ns(20000, NULL);
    bench_done_reset(&env->done);
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = opts->pools;
    if (opts->batch)
        cfg.batch = opts->batch;
    if (opts->spin_set)
        cfg.spin_ns = opts->spin_ns;
    if (opts->yield_set)
        cfg.yield_sends = opts->yield_sends;
    cfg.steal = !opts->no_steal;
    if (opts->steal_wait_set)
        cfg.steal_wait_ns = opts->steal_wait_ns;
    if (opts->handler_sample_set)
        cfg.handler_sample = (unsigned)opts->handler_sample;
    cfg.on_handler_error = on_handler_error;
    cfg.on_handler_error_user = &env->done;
    cfg.gpu_backend = opts->gpu_backend;
    cfg.on_alert = bench_on_alert;
    int rc = xo_runtime_start(&cfg, &env->rt);
    return rc ? report_xo(env, "xo_runtime_start", rc) : 0;
}

void bench_spawn_opts(const struct bench_env *env, int pool,
                      xo_spawn_opts_t *so)
{
    xo_spawn_opts_init(so);
    if (env->opts->one_pool)
        so->pool = 0;
    else if (pool != XO_POOL_ANY)
        so->pool = (int)((unsigned)pool % xo_pool_count(env->rt));
    else
        so->place.kind = env->opts->place;
    so->move = env->opts->move;
}

int bench_spawn(struct bench_env *env, const xo_actor_def_t *def, int pool,
                const void *arg, size_t arg_size, xo_ref_t *out)
{
    xo_spawn_opts_t so;
    bench_spawn_opts(env, pool, &so);
    so.arg = arg;
    so.arg_size = arg_size;
    int rc = xo_spawn(env->rt, def, &so, out);
    return rc ? report_xo(env, "xo_spawn", rc) : 0;
}

/* The actors failed, or a hang: say why. */
static int failed(struct bench_env *env)
{
    /* relaxed: after bench_done_wait's acquire (see bench_fail). */
    const char *why = atomic_load_explicit(&env->done.why, memory_order_relaxed);
    int err = atomic_load_explicit(&env->done.err, memory_order_relaxed);
    if (why == NULL)
        return 0;
    if (err != 0)
        fprintf(stderr, "%s: %s (%s)\n", env->name, why, xo_strerror(err));
    else
        fprintf(stderr, "%s: %s\n", env->name, why);
    return -1;
}

static int wait_or_exit(struct bench_env *env, const char *phase)
{
    if (bench_done_wait(&env->done, env->opts->timeout_s) != 0) {
        /* Stopping would wait for the hung actors: leave at once. */
        fprintf(stderr, "%s: no completion of the %s after %g s: hung\n",
                env->name, phase, env->opts->timeout_s);
        fflush(NULL);
        _exit(3);
    }
    return failed(env);
}

/* User + system time of every thread of the process. */
static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int bench_measure(struct bench_env *env, const xo_ref_t *to, size_t n,
                  uint32_t tag, double *seconds)
{
    bench_done_reset(&env->done);
    double cpu0 = cpu_seconds();
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < n; i++) {
        int rc = xo_tell(to[i], tag, NULL, 0);
        if (rc != 0)
            return report_xo(env, "kick-off", rc);
    }
    int rc = wait_or_exit(env, "measured part");
    *seconds = (double)(bench_now_ns() - t0) / 1e9;
    env->measured_s += *seconds;
    env->cpu_s += cpu_seconds() - cpu0;
    return rc;
}

void bench_clock_start(struct bench_clock *c)
{
    c->cpu0_s = cpu_seconds();
    c->t0_ns = bench_now_ns();
}

double bench_clock_stop(struct bench_env *env, const struct bench_clock *c)
{
    double seconds = (double)(bench_now_ns() - c->t0_ns) / 1e9;
    env->measured_s += seconds;
    env->cpu_s += cpu_seconds() - c->cpu0_s;
    return seconds;
}

int bench_wait(struct bench_env *env, const char *what)
{
    return wait_or_exit(env, what);
}

int bench_finish(struct bench_env *env, struct bench_result *r)
{
    unsigned workers = xo_pool_count(env->rt);
    int rc = xo_runtime_stop(env->rt);
    xo_runtime_free(env->rt);
    env->rt = NULL;
    if (rc != 0)
        return report_xo(env, "xo_runtime_stop", rc);
    bench_extra(r, "peak_rss_kib", "%llu",
                (unsigned long long)bench_peak_rss_kib());
    bench_extra(r, "workers", "%u", workers);
    if (env->measured_s > 0)
        bench_extra(r, "cpu_util", "%.2f",
                    env->cpu_s / (env->measured_s * workers));
    static const char *const places[] = {
        [XO_PLACE_ROUND_ROBIN] = "rr", [XO_PLACE_RANDOM] = "random",
    };
    if (env->opts->one_pool)
        bench_extra(r, "placement", "one");
    else if (env->opts->place == XO_PLACE_ROUND_ROBIN ||
             env->opts->place == XO_PLACE_RANDOM)
        bench_extra(r, "placement", "%s", places[env->opts->place]);
    static const char *const moves[] = {
        [XO_MOVE_FIXED] = "fixed", [XO_MOVE_FREE] = "free",
    };
    if (env->opts->move != XO_MOVE_AUTO)
        bench_extra(r, "move", "%s", moves[env->opts->move]);
    if (env->opts->no_steal)
        bench_extra(r, "steal", "0");
    else if (env->opts->steal_wait_set)
        bench_extra(r, "steal_wait_ns", "%llu",
                    (unsigned long long)env->opts->steal_wait_ns);
    if (env->opts->handler_sample_set)
        bench_extra(r, "handler_sample", "%llu",
                    (unsigned long long)env->opts->handler_sample);
    /* relaxed: the runtime has stopped (its join ordered the counts). */
    unsigned long long n = atomic_exchange_explicit(&alerts, 0,
                                                    memory_order_relaxed);
    if (n != 0)
        bench_extra(r, "alerts", "%llu", n);
    if (env->line_ns > 0) {
        if (bench_extra_get(r, "line_rt_ns") == NULL)
            bench_extra(r, "line_rt_ns", "%.1f", env->line_ns);
        bench_extra(r, "machine", "%s", bench_machine_state(env->line_ns));
    }
    return 0;
}

double bench_slow_line_ns(void)
{
    const char *v = getenv("XO_BENCH_SLOW_LINE_NS");
    double ns = v != NULL ? strtod(v, NULL) : 0;
    return ns > 0 ? ns : 80;
}

const char *bench_machine_state(double line_ns)
{
    return line_ns > bench_slow_line_ns() ? "slow" : "usual";
}

/* ---- small tools ------------------------------------------------------- */

static uint64_t status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return 0;
    char line[256];
    size_t len = strlen(field);
    unsigned long long kib = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            kib = strtoull(line + len + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

uint64_t bench_rss_kib(void)
{
    return status_kib("VmRSS");
}

uint64_t bench_peak_rss_kib(void)
{
    return status_kib("VmHWM");
}

int bench_copy_arg(xo_ctx_t *ctx, void *state, const void *arg, size_t size)
{
    (void)ctx;
    memcpy(state, arg, size);
    return 0;
}

int bench_nth_cpu(unsigned i)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0 || CPU_COUNT(&set) == 0)
        return -1;
    unsigned want = i % (unsigned)CPU_COUNT(&set), seen = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &set) && seen++ == want)
            return cpu;
    return -1;
}

int bench_pin_self(int cpu)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return sched_setaffinity(0, sizeof(one), &one) == 0 ? 0 : -1;
}

int bench_pin_away(struct bench_env *env, xo_ref_t actor, cpu_set_t *saved)
{
    xo_actor_stats_t st;
    if (sched_getaffinity(0, sizeof(*saved), saved) != 0 ||
        xo_actor_stats(actor, &st) != 0)
        return bench_error(env, "cannot read where the caller runs");
    unsigned pools = xo_pool_count(env->rt);
    for (unsigned i = 0; i < pools; i++) {
        xo_pool_info_t info, home;
        if (i == st.pool || xo_pool_info(env->rt, i, &info) != 0 ||
            xo_pool_info(env->rt, st.pool, &home) != 0 || info.core < 0 ||
            info.core == home.core)
            continue;
        return bench_pin_self(info.core) == 0
                   ? 0 : bench_error(env, "cannot pin the main thread");
    }
    return 0;
}

void bench_unpin(const cpu_set_t *saved)
{
    (void)sched_setaffinity(0, sizeof(*saved), saved);
}
