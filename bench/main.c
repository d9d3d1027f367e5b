/*
 * main.c -- the xoscar-bench command: which benchmarks exist, their
 * arguments and defaults, and how runs are repeated.
 *
 *   xoscar-bench [flags] NAME [ARGS...]   one benchmark
 *   xoscar-bench [flags] all              every benchmark, defaults
 *   xoscar-bench list                     names, arguments, defaults
 *
 * Each benchmark prints one RESULT line (or, with --json, one JSON object)
 * and the process exits non-zero when any check failed.
 *
 * Isolation. Under `all`, and whenever --runs asks for repeats, each run is
 * a child process (fork, no exec: the parent never starts a runtime, so it
 * has no threads to lose). A run then starts from a clean heap and its own
 * peak RSS, and one benchmark's leftovers -- a million cells in the
 * allocator's caches, a mailbox backlog's pages -- cannot flatter or burden
 * the next. The child hands its struct bench_result back through a pipe;
 * the parent prints it. With --runs N the line printed is the run with the
 * median rate, and its extra gains runs, rate_min and rate_max, so the
 * spread is there to see. A single run with no repeats stays in-process,
 * which is what a profiler or debugger wants.
 */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGS 3
#define MAX_RUNS 99
#define MAX_SIZE 1e12

struct bench_def {
    const char *name;
    bench_fn run;
    unsigned nargs;
    const char *arg_names[MAX_ARGS];
    const char *defaults[MAX_ARGS]; /* as a user would type them */
    double minimum[MAX_ARGS];
    const char *what;
};

/* `all` runs them in this order: the floor first. */
static const struct bench_def benches[] = {
    { "hw", bench_hw, 1, { "round_trips" }, { "1e6" }, { 1 },
      "the machine's floor: atomic exchange, cache-line round trip, futex" },
    { "pingpong", bench_pingpong, 1, { "round_trips" }, { "1e6" }, { 1 },
      "two actors bounce a counter; round trips/s" },
    { "threadring", bench_threadring, 2, { "hops", "ring" },
      { "1e7", "1000" }, { 1, 1 },
      "a token around a ring of actors; hops/s" },
    { "fanin", bench_fanin, 3, { "per_sender", "senders", "capacity" },
      { "5e6", "2", "0" }, { 1, 1, 0 },
      "senders flood one receiver (capacity > 0: a bounded mailbox, "
      "senders back off on XO_EFULL); messages/s" },
    { "forkjoin", bench_forkjoin, 2, { "per_worker", "workers" },
      { "2e5", "60" }, { 1, 1 },
      "a driver sends i to every worker, which adds sin(i)^2; messages/s" },
    { "spawn", bench_spawn_run, 2, { "actors", "window" }, { "1e6", "1000" },
      { 1, 0 }, "spawn children that say hello; actors/s, bytes/actor" },
    { "spawn_burst", bench_spawn_burst, 2, { "actors", "window" },
      { "5e4", "0" }, { 1, 0 }, "the same, all spawned in one loop" },
    { "counting", bench_counting, 1, { "messages" }, { "1e7" }, { 1 },
      "a producer increments a counter, then asks for it; messages/s" },
    { "fanout", bench_fanout, 3, { "jobs", "work_us", "actors" },
      { "4000", "50", "16" }, { 1, 0, 1 },
      "a driver hands jobs of work_us of computation to movable actors, "
      "which only stealing spreads; jobs/s, parallelism" },
    { "latency", bench_latency, 2, { "samples", "wake_samples" },
      { "1e6", "1000" }, { 1, 1 },
      "one message within a pool, across pools, to a parked worker" },
    { "call", bench_call, 1, { "round_trips" }, { "1e6" }, { 1 },
      "call and reply: actor to actor (xo_call_then), from a thread "
      "(xo_call + wait)" },
    { "batch", bench_batch, 2, { "n", "rounds" }, { "1000", "500" }, { 1, 1 },
      "n waited calls against one xo_call_batch of n, with and without "
      "on_batch" },
    { "restart", bench_restart, 1, { "restarts" }, { "1000" }, { 1 },
      "a supervised actor crashes on each \"crash\"; its new incarnation "
      "tells the driver it started; restarts/s" },
    { "remote_pingpong", bench_remote_pingpong, 1, { "round_trips" },
      { "1e5" }, { 1 },
      "pingpong with pong on a second node (a process of its own, TCP on "
      "127.0.0.1); round trips/s, p50 against the raw TCP round trip" },
    { "remote_tell", bench_remote_tell, 2, { "messages", "bytes" },
      { "1e6", "8" }, { 1, 8 },
      "one sender floods a receiver on a second node; messages/s" },
    { "remote_hol", bench_remote_hol, 2, { "bytes", "rounds" },
      { "134217728", "2" }, { 1, 1 },
      "a second node sends messages of `bytes` here, one at a time, while "
      "the heartbeat's round trip is sampled: its p50/p99/max behind the "
      "transfer, and the transfer's GB/s" },
    { "gpu_launch", bench_gpu_launch, 1, { "launches" }, { "1e5" }, { 1 },
      "a tell to a GPU actor that launches one kernel, against a bare "
      "launch loop on the same stream; overhead_ns per launch" },
    { "gpu_pipeline", bench_gpu_pipeline, 3, { "items", "bytes", "window" },
      { "1e5", "65536", "64" }, { 1, 8, 1 },
      "CPU producer -> GPU actor (a kernel on each buffer) -> CPU "
      "consumer, buffers handed over; GB/s" },
};
#define NBENCH (sizeof(benches) / sizeof(benches[0]))

struct cli {
    struct bench_opts opts;
    bool json;
    FILE *json_file;       /* --json-file: a copy of each result as JSON */
    unsigned runs;
    double scale;          /* applied to the defaults' first size */
    const char *name;
    const char *pos[MAX_ARGS + 1];
    unsigned npos;
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: xoscar-bench [flags] NAME [ARGS...] | all | list\n"
        "flags:\n"
        "  --json            one JSON object per result instead of RESULT\n"
        "  --json-file PATH  also append each result to PATH as JSON\n"
        "  --runs N          repeat each run N times (child processes), "
        "print the median\n"
        "  --pools N         runtime pools (default: one per CPU)\n"
        "  --batch N         messages per actor turn (runtime default 64)\n"
        "  --spin-ns N       idle polling before a worker parks (default "
        "50000)\n"
        "  --yield-sends N   a turn lends its worker every N sends "
        "(default 256;\n"
        "                    0: never)\n"
        "  --placement P     where actors live: least (the runtime's "
        "default),\n"
        "                    rr, random, or one (every actor in pool 0)\n"
        "  --move M          auto (the runtime's default: movable unless "
        "placed\n"
        "                    explicitly), fixed or free (docs/scheduler.md)\n"
        "  --no-steal        idle workers do not take movable actors from "
        "busy ones\n"
        "  --steal-wait-ns N how long a movable actor waits before an idle "
        "worker\n"
        "                    may take it (default 200000)\n"
        "  --handler-sample N time the first handler run of about one turn "
        "in N\n"
        "                    (the runtime's default; 0: none, 1: every run)\n"
        "  --timeout S       a measured part longer than S seconds has hung "
        "(default 300)\n"
        "  --scale F         multiply the default sizes by F (quick checks)\n"
        "  --gpu B           the GPU benchmarks' backend: auto (the "
        "default: CUDA\n"
        "                    where a device is visible), cuda, or host\n"
        "benchmarks (ARGS in order, defaults):\n");
    for (size_t i = 0; i < NBENCH; i++) {
        const struct bench_def *d = &benches[i];
        fprintf(f, "  %-12s", d->name);
        for (unsigned a = 0; a < d->nargs; a++)
            fprintf(f, " %s=%s", d->arg_names[a], d->defaults[a]);
        fprintf(f, "\n      %s\n", d->what);
    }
}

static const struct bench_def *find_bench(const char *name)
{
    for (size_t i = 0; i < NBENCH; i++)
        if (strcmp(benches[i].name, name) == 0)
            return &benches[i];
    return NULL;
}

/* A whole number in [min, MAX_SIZE], written as 1000000 or 1e6. */
static int parse_size(const char *s, double min, uint64_t *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(v) || v != floor(v) ||
        v < min || v > MAX_SIZE)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int parse_real(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return end != s && *end == '\0' && isfinite(*out) && *out > 0 ? 0 : -1;
}

/* --flag VALUE or --flag=VALUE; advances *i past what it used. */
static const char *flag_value(int argc, char **argv, int *i, const char *flag)
{
    size_t len = strlen(flag);
    if (strncmp(argv[*i], flag, len) != 0)
        return NULL;
    if (argv[*i][len] == '=')
        return argv[*i] + len + 1;
    if (argv[*i][len] == '\0' && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

/* The runtime's policies that make sense for a whole benchmark. */
static int parse_placement(struct bench_opts *o, const char *v)
{
    o->one_pool = strcmp(v, "one") == 0;
    if (o->one_pool || strcmp(v, "least") == 0)
        o->place = XO_PLACE_LEAST_LOADED;
    else if (strcmp(v, "rr") == 0)
        o->place = XO_PLACE_ROUND_ROBIN;
    else if (strcmp(v, "random") == 0)
        o->place = XO_PLACE_RANDOM;
    else
        return -1;
    return 0;
}

static int set_unsigned(const char *v, double min, uint64_t max,
                        unsigned *dst)
{
    uint64_t n;
    if (v == NULL || parse_size(v, min, &n) != 0 || n > max)
        return -1;
    *dst = (unsigned)n;
    return 0;
}

static int parse_flag(struct cli *c, int argc, char **argv, int *i)
{
    const char *v;
    if (strcmp(argv[*i], "--json") == 0) {
        c->json = true;
        return 0;
    }
    if ((v = flag_value(argc, argv, i, "--json-file")) != NULL) {
        if (c->json_file != NULL)
            fclose(c->json_file);
        c->json_file = fopen(v, "a");
        if (c->json_file == NULL)
            perror(v);
        return c->json_file != NULL ? 0 : -1;
    }
    if ((v = flag_value(argc, argv, i, "--runs")) != NULL)
        return set_unsigned(v, 1, MAX_RUNS, &c->runs);
    if ((v = flag_value(argc, argv, i, "--pools")) != NULL)
        return set_unsigned(v, 0, 4096, &c->opts.pools);
    if ((v = flag_value(argc, argv, i, "--batch")) != NULL)
        return set_unsigned(v, 1, 1u << 20, &c->opts.batch);
    if ((v = flag_value(argc, argv, i, "--spin-ns")) != NULL) {
        c->opts.spin_set = true;
        return parse_size(v, 0, &c->opts.spin_ns);
    }
    if ((v = flag_value(argc, argv, i, "--yield-sends")) != NULL) {
        c->opts.yield_set = true;
        return set_unsigned(v, 0, UINT32_MAX, &c->opts.yield_sends);
    }
    if ((v = flag_value(argc, argv, i, "--move")) != NULL) {
        if (strcmp(v, "auto") == 0)
            c->opts.move = XO_MOVE_AUTO;
        else if (strcmp(v, "fixed") == 0)
            c->opts.move = XO_MOVE_FIXED;
        else if (strcmp(v, "free") == 0)
            c->opts.move = XO_MOVE_FREE;
        else
            return -1;
        return 0;
    }
    if ((v = flag_value(argc, argv, i, "--steal-wait-ns")) != NULL) {
        c->opts.steal_wait_set = true;
        return parse_size(v, 0, &c->opts.steal_wait_ns);
    }
    if ((v = flag_value(argc, argv, i, "--handler-sample")) != NULL) {
        c->opts.handler_sample_set = true;
        return parse_size(v, 0, &c->opts.handler_sample) != 0 ||
                       c->opts.handler_sample > UINT32_MAX
                   ? -1
                   : 0;
    }
    if (strcmp(argv[*i], "--no-steal") == 0) {
        c->opts.no_steal = true;
        return 0;
    }
    if ((v = flag_value(argc, argv, i, "--placement")) != NULL)
        return parse_placement(&c->opts, v);
    if ((v = flag_value(argc, argv, i, "--gpu")) != NULL) {
        if (strcmp(v, "auto") == 0)
            c->opts.gpu_backend = XO_GPU_AUTO;
        else if (strcmp(v, "cuda") == 0)
            c->opts.gpu_backend = XO_GPU_CUDA;
        else if (strcmp(v, "host") == 0)
            c->opts.gpu_backend = XO_GPU_HOST;
        else
            return -1;
        return 0;
    }
    if ((v = flag_value(argc, argv, i, "--timeout")) != NULL)
        return parse_real(v, &c->opts.timeout_s);
    if ((v = flag_value(argc, argv, i, "--scale")) != NULL)
        return parse_real(v, &c->scale);
    return -1;
}

static int parse_cli(struct cli *c, int argc, char **argv)
{
    memset(c, 0, sizeof(*c));
    c->runs = 1;
    c->scale = 1;
    c->opts.timeout_s = 300;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            c->name = "help";
        } else if (strncmp(argv[i], "--", 2) == 0) {
            if (parse_flag(c, argc, argv, &i) != 0) {
                fprintf(stderr, "xoscar-bench: bad flag or value: %s\n",
                        argv[i]);
                return -1;
            }
        } else if (c->name == NULL) {
            c->name = argv[i];
        } else if (c->npos <= MAX_ARGS) {
            c->pos[c->npos++] = argv[i];
        }
    }
    return 0;
}

/* The sizes for one run: the positional ones, else the (scaled) defaults. */
static int bench_args(const struct bench_def *d, const struct cli *c,
                      uint64_t *args)
{
    if (c->npos > d->nargs) {
        fprintf(stderr, "%s: takes at most %u arguments\n", d->name, d->nargs);
        return -1;
    }
    for (unsigned a = 0; a < d->nargs; a++) {
        if (a < c->npos) {
            if (parse_size(c->pos[a], d->minimum[a], &args[a]) != 0) {
                fprintf(stderr, "%s: bad %s: %s\n", d->name, d->arg_names[a],
                        c->pos[a]);
                return -1;
            }
            continue;
        }
        double v = strtod(d->defaults[a], NULL);
        if (a == 0)
            v = fmax(d->minimum[a], floor(v * c->scale));
        args[a] = (uint64_t)v;
    }
    return 0;
}

/* ---- runs in child processes ----------------------------------------- */

static int read_all(int fd, void *buf, size_t size)
{
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, (char *)buf + got, size - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

static int run_child(const struct bench_def *d, const struct cli *c,
                     const uint64_t *args, struct bench_result *out)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        bench_result_init(out, d->name);
        int rc = d->run(&c->opts, args, out);
        if (rc == 0 && write(fds[1], out, sizeof(*out)) != sizeof(*out))
            rc = -1;
        exit(rc == 0 ? 0 : 1);
    }
    close(fds[1]);
    int rc = pid < 0 ? -1 : read_all(fds[0], out, sizeof(*out));
    close(fds[0]);
    int status = 0;
    if (pid > 0 && waitpid(pid, &status, 0) != pid)
        rc = -1;
    if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        rc = -1;
    return rc;
}

static int by_rate(const void *a, const void *b)
{
    double ra = bench_rate(a), rb = bench_rate(b);
    return ra < rb ? -1 : ra > rb;
}

/* runs child processes; the median run by rate, with the spread. */
static int run_repeated(const struct bench_def *d, const struct cli *c,
                        const uint64_t *args, struct bench_result *out)
{
    struct bench_result *runs = calloc(c->runs, sizeof(*runs));
    int rc = runs ? 0 : -1;
    for (unsigned k = 0; rc == 0 && k < c->runs; k++)
        rc = run_child(d, c, args, &runs[k]);
    if (rc == 0) {
        qsort(runs, c->runs, sizeof(*runs), by_rate);
        *out = runs[(c->runs - 1) / 2];
        if (c->runs > 1) {
            bench_extra(out, "runs", "%u", c->runs);
            bench_extra(out, "rate_min", "%.0f", bench_rate(&runs[0]));
            bench_extra(out, "rate_max", "%.0f",
                        bench_rate(&runs[c->runs - 1]));
        }
    }
    free(runs);
    return rc;
}

static int run_bench(const struct bench_def *d, const struct cli *c,
                     bool isolate)
{
    uint64_t args[MAX_ARGS] = { 0 };
    struct bench_result r;
    if (bench_args(d, c, args) != 0)
        return -1;
    bench_result_init(&r, d->name);
    int rc = isolate || c->runs > 1 ? run_repeated(d, c, args, &r)
                                    : d->run(&c->opts, args, &r);
    if (rc != 0) {
        fprintf(stderr, "%s: FAILED\n", d->name);
        return -1;
    }
    bench_print(stdout, &r, c->json);
    if (c->json_file != NULL)
        bench_print(c->json_file, &r, true);
    return 0;
}

static int run_all(const struct cli *c)
{
    int failures = 0;
    if (c->npos > 0) {
        fprintf(stderr, "all: takes no arguments (each runs its defaults)\n");
        return 2;
    }
    for (size_t i = 0; i < NBENCH; i++)
        if (run_bench(&benches[i], c, true) != 0)
            failures++;
    if (failures)
        fprintf(stderr, "all: %d benchmark(s) failed\n", failures);
    return failures ? 1 : 0;
}

static int dispatch(const struct cli *c)
{
    if (c->name == NULL || strcmp(c->name, "list") == 0 ||
        strcmp(c->name, "help") == 0) {
        usage(c->name ? stdout : stderr);
        return c->name ? 0 : 2;
    }
    if (strcmp(c->name, "all") == 0)
        return run_all(c);
    const struct bench_def *d = find_bench(c->name);
    if (d == NULL) {
        fprintf(stderr, "xoscar-bench: no benchmark named %s\n", c->name);
        usage(stderr);
        return 2;
    }
    return run_bench(d, c, false) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    /* The second node of the remote benchmarks (remote.c), started by
       this program itself; not a benchmark, so not listed. */
    if (argc == 2 && strcmp(argv[1], "__node") == 0)
        return bench_remote_node();
    struct cli c;
    int rc = parse_cli(&c, argc, argv) == 0 ? dispatch(&c) : 2;
    if (c.json_file != NULL && fclose(c.json_file) != 0)
        rc = rc ? rc : 1;
    return rc;
}
