/*
 * busy.c -- a process for xoscar-top to watch: a runtime that publishes
 * its stats snapshot (cfg.stats_shm), a few named actors handling
 * messages at rates far apart, and one that cannot keep up.
 *
 *   busy [SECONDS] [--idle N]
 *
 * It prints its pid, then runs for SECONDS (0, the default: until SIGTERM
 * or SIGINT), and stops its runtime cleanly either way, which unlinks
 * /dev/shm/xoscar-<pid>. --idle N spawns N more actors that never get a
 * message: a snapshot of many actors (docs/top.md measures its cost so).
 *
 * The main thread is the load: every 10 ms it tells ingest-fast 20
 * messages, ingest-medium 5, hasher 3, parser-flaky 1, report-backlog 1,
 * and worker-crashy one every other time. ingest-fast passes one in ten on
 * to audit-log. parser-flaky fails one message in ten (its FAILED
 * column); worker-crashy crashes on its 50th message and is restarted
 * (RESTARTS). report-backlog takes 25 ms over each message (it sleeps),
 * alone on pool 1, so it handles 40 a second of the 100 it is sent and
 * its mailbox grows. hasher is stateless: its tasks spread over both
 * pools, and those on pool 1 wait behind report-backlog's long turns (the
 * pool's runq). Rates: 2000, 500, 200, 100, 50, 40 and 0 (the sink) a
 * second; hasher's 300 arrive in bursts.
 */
#define _POSIX_C_SOURCE 200809L /* sigaction, clock_nanosleep */

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xoscar/xoscar.h>

enum { WORK = 1 };

static volatile sig_atomic_t signalled;
static atomic_bool stopping;       /* the backlog drains without sleeping */
static atomic_ulong alerts_seen;

static void on_signal(int sig)
{
    (void)sig;
    signalled = 1;
}

/* A little work per message, so that handler times are not all zero. */
static uint64_t mix(uint64_t x)
{
    for (int i = 0; i < 200; i++)
        x = (x ^ (x >> 31)) * UINT64_C(0x9e3779b97f4a7c15) + (uint64_t)i;
    return x;
}

struct ingest {
    xo_ref_t audit;   /* XO_REF_NONE: pass nothing on */
    uint64_t seen, acc;
};

static int ingest_create(xo_ctx_t *ctx, void *state, const void *arg,
                         size_t size)
{
    (void)ctx;
    struct ingest *s = state;
    if (size == sizeof(xo_ref_t))
        memcpy(&s->audit, arg, size);
    return 0;
}

static int ingest_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    struct ingest *s = state;
    s->acc = mix(s->acc + m->tag);
    if (!xo_ref_is_none(s->audit) && ++s->seen % 10 == 0)
        xo_tell(s->audit, WORK, &s->acc, sizeof(s->acc));
    return 0;
}

static const xo_actor_def_t ingest_def = {
    .name = "ingest", .state_size = sizeof(struct ingest),
    .on_create = ingest_create, .on_message = ingest_message,
};

static int audit_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    uint64_t *acc = state, v;
    memcpy(&v, m->data, sizeof(v));
    *acc = mix(*acc ^ v);
    return 0;
}

static const xo_actor_def_t audit_def = {
    .name = "audit", .state_size = sizeof(uint64_t),
    .on_message = audit_message,
};

static int report_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    struct timespec ts = { 0, 25000000 };
    if (!atomic_load(&stopping))
        nanosleep(&ts, NULL);
    return 0;
}

static const xo_actor_def_t report_def = {
    .name = "report", .on_message = report_message,
};

static int hasher_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    return mix(m->tag) == 0 ? 1 : 0; /* never 1: keeps the work */
}

static const xo_actor_def_t hasher_def = {
    .name = "hasher", .flags = XO_ACTOR_STATELESS,
    .on_message = hasher_message,
};

static int parser_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)m;
    uint64_t *n = state;
    if (++*n % 10 == 0)
        return xo_fail(ctx, XO_EINVAL, "message %llu does not parse",
                       (unsigned long long)*n);
    return 0;
}

static const xo_actor_def_t parser_def = {
    .name = "parser", .state_size = sizeof(uint64_t),
    .on_message = parser_message,
};

static int worker_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)m;
    uint64_t *n = state; /* a restart starts it at 0 again */
    if (++*n == 50)
        return xo_crash(ctx, XO_EINVAL, "50 jobs, time to crash");
    return 0;
}

static const xo_actor_def_t worker_def = {
    .name = "worker", .state_size = sizeof(uint64_t),
    .on_message = worker_message,
};

static const xo_actor_def_t sink_def = { .name = "sink" };
static const xo_actor_def_t idle_def = { .name = "idle" };

static void on_alert(xo_runtime_t *rt, const xo_alert_t *a, void *user)
{
    (void)rt;
    (void)a;
    (void)user;
    atomic_fetch_add(&alerts_seen, 1); /* xoscar-top shows them */
}

static int spawn(xo_runtime_t *rt, const xo_actor_def_t *def, const char *uid,
                 int pool, const void *arg, size_t arg_size, xo_ref_t *out)
{
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    if (def == &worker_def) { /* restarted after each crash */
        o.restart = XO_RESTART_ON_FAILURE;
        o.restart_max = XO_RESTART_MAX;
    }
    o.uid = uid;
    o.pool = pool;
    o.arg = arg;
    o.arg_size = arg_size;
    int rc = xo_spawn(rt, def, &o, out);
    if (rc != 0)
        fprintf(stderr, "busy: spawn %s: %s\n", uid ? uid : def->name,
                xo_strerror(rc));
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: busy [SECONDS] [--idle N]\n");
    return 2;
}

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) +
           (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

int main(int argc, char **argv)
{
    double seconds = 0;
    unsigned long idle = 0;
    for (int i = 1; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--idle") == 0 && i + 1 < argc) {
            idle = strtoul(argv[++i], &end, 10);
            if (*end != '\0')
                return usage();
        } else {
            seconds = strtod(argv[i], &end);
            if (*end != '\0' || seconds < 0)
                return usage();
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 2;
    cfg.pin_threads = false;
    cfg.stats_shm = true;
    cfg.on_alert = on_alert;
    cfg.handler_sample = 1; /* time every turn: report's are few and long */
    xo_runtime_t *rt;
    int rc = xo_runtime_start(&cfg, &rt);
    if (rc != 0) {
        fprintf(stderr, "busy: start: %s\n", xo_strerror(rc));
        return 1;
    }
    xo_ref_t audit, fast, medium, report, sink, hasher, parser, worker;
    if (spawn(rt, &audit_def, "audit-log", 0, NULL, 0, &audit) != 0 ||
        spawn(rt, &ingest_def, "ingest-fast", 0, &audit, sizeof(audit),
              &fast) != 0 ||
        spawn(rt, &ingest_def, "ingest-medium", 0, NULL, 0, &medium) != 0 ||
        spawn(rt, &report_def, "report-backlog", 1, NULL, 0, &report) != 0 ||
        spawn(rt, &hasher_def, "hasher", 0, NULL, 0, &hasher) != 0 ||
        spawn(rt, &parser_def, "parser-flaky", 0, NULL, 0, &parser) != 0 ||
        spawn(rt, &worker_def, "worker-crashy", 0, NULL, 0, &worker) != 0 ||
        spawn(rt, &sink_def, NULL, 0, NULL, 0, &sink) != 0)
        rc = 1;
    for (unsigned long i = 0; rc == 0 && i < idle; i++) {
        xo_ref_t r;
        rc = spawn(rt, &idle_def, NULL, XO_POOL_ANY, NULL, 0, &r);
    }
    if (rc == 0) {
        printf("busy: pid %ld\n", (long)getpid());
        fflush(stdout);
    }
    struct timespec t0, next;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    next = t0;
    for (unsigned long round = 0;
         rc == 0 && !signalled && (seconds == 0 || since(&t0) < seconds);
         round++) {
        for (int i = 0; i < 20; i++)
            xo_tell(fast, WORK, NULL, 0);
        for (int i = 0; i < 5; i++)
            xo_tell(medium, WORK, NULL, 0);
        xo_tell(report, WORK, NULL, 0);
        for (int i = 0; i < 3; i++)
            xo_tell(hasher, WORK, NULL, 0);
        xo_tell(parser, WORK, NULL, 0);
        if (round % 2 == 0)
            xo_tell(worker, WORK, NULL, 0);
        next.tv_nsec += 10000000;
        if (next.tv_nsec >= 1000000000) {
            next.tv_sec++;
            next.tv_nsec -= 1000000000;
        }
        /* A signal cuts the sleep short; the loop looks at the flag. */
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    atomic_store(&stopping, true);
    xo_runtime_stop(rt);
    xo_runtime_free(rt);
    if (rc == 0)
        printf("busy: stopped after %.1f s, %lu alerts\n", since(&t0),
               (unsigned long)atomic_load(&alerts_seen));
    return rc == 0 ? 0 : 1;
}
