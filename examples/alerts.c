/*
 * alerts.c -- every watchdog alert, each produced on purpose, and the dump
 * a person reads when something is stuck (docs/observability.md).
 *
 *   parser    one handler that takes 120 ms         -> slow_handler
 *   batcher   twelve 25 ms handlers in one turn     -> stuck_turn
 *   frontend  calls backend, which takes 450 ms     -> slow_call
 *   sink      busy for 600 ms while 5000 arrive     -> mailbox_depth,
 *                                                      mailbox_age
 *
 * The thresholds are lowered so the run takes about two seconds; the
 * defaults (100 ms, 1 s, 10 s, 10000 messages, 1 s) suit a service.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xoscar/xoscar.h>

enum { SLEEP = 1, CALL_BACKEND = 2 };

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "alerts: %s: %s\n", what, xo_strerror(rc));
        exit(1);
    }
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* ---- the actors: each sleeps as long as its message says ------------------- */

struct peer { xo_ref_t backend; };

static int on_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    if (m->tag == SLEEP) {
        unsigned ms;
        memcpy(&ms, m->data, sizeof(ms));
        sleep_ms(ms);
        return 0;
    }
    /* CALL_BACKEND: a call, and a blocking wait for its answer. */
    struct peer *p = state;
    unsigned ms = 450;
    xo_future_t *f;
    int rc = xo_call(p->backend, SLEEP, &ms, sizeof(ms), &f);
    if (rc != 0)
        return rc;
    rc = xo_future_wait(f, -1);
    xo_future_release(f);
    return rc;
}

static int on_create(xo_ctx_t *ctx, void *state, const void *arg, size_t n)
{
    (void)ctx;
    if (n == sizeof(xo_ref_t))
        memcpy(&((struct peer *)state)->backend, arg, n);
    return 0;
}

static const xo_actor_def_t service = {
    .name = "service",
    .state_size = sizeof(struct peer),
    .on_create = on_create,
    .on_message = on_message,
};

/* ---- alerts: printed as they come, counted -------------------------------- */

static atomic_int seen[XO_ALERT_KINDS];

static void on_alert(xo_runtime_t *rt, const xo_alert_t *a, void *user)
{
    (void)rt;
    (void)user;
    char line[512];
    xo_alert_format(a, line, sizeof(line));
    printf("%s\n", line);
    fflush(stdout);
    atomic_fetch_add(&seen[a->kind], 1);
}

/* Until `actor` has handled n messages and an alert of `kind` came since
   the phase began (`before`: the count then); 10 s at most. */
static void finish(xo_ref_t actor, uint64_t n, xo_alert_kind_t kind,
                   int before)
{
    xo_actor_stats_t st = { 0 };
    for (int i = 0; i < 1000; i++) {
        check(xo_actor_stats(actor, &st), "stats");
        if (st.handled >= n && atomic_load(&seen[kind]) > before)
            return;
        sleep_ms(10);
    }
}

static xo_ref_t spawn(xo_runtime_t *rt, const char *uid, unsigned pool,
                      const xo_ref_t *backend)
{
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.uid = uid;
    o.pool = (int)pool;
    if (backend != NULL) {
        o.arg = backend;
        o.arg_size = sizeof(*backend);
    }
    xo_ref_t r;
    check(xo_spawn(rt, &service, &o, &r), uid);
    return r;
}

static void tell_sleep(xo_ref_t to, unsigned ms)
{
    check(xo_tell(to, SLEEP, &ms, sizeof(ms)), "tell");
}

int main(void)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 2;
    cfg.watch_tick_ns = 5000000;        /* 5 ms */
    cfg.slow_handler_ns = 50000000;     /* 50 ms */
    cfg.stuck_turn_ns = 200000000;      /* 200 ms */
    cfg.slow_call_ns = 300000000;       /* 300 ms */
    cfg.mailbox_depth_alert = 1000;
    cfg.mailbox_age_ns = 200000000;     /* 200 ms */
    cfg.on_alert = on_alert;
    xo_runtime_t *rt;
    check(xo_runtime_start(&cfg, &rt), "start");

    printf("-- a slow handler\n");
    xo_ref_t parser = spawn(rt, "parser", 1, NULL);
    int before = atomic_load(&seen[XO_ALERT_SLOW_HANDLER]);
    tell_sleep(parser, 120);
    finish(parser, 1, XO_ALERT_SLOW_HANDLER, before);

    printf("-- a turn that keeps its worker\n");
    xo_ref_t batcher = spawn(rt, "batcher", 1, NULL);
    before = atomic_load(&seen[XO_ALERT_STUCK_TURN]);
    for (int i = 0; i < 12; i++)
        tell_sleep(batcher, 25);
    finish(batcher, 12, XO_ALERT_STUCK_TURN, before);

    printf("-- a slow call\n");
    xo_ref_t backend = spawn(rt, "backend", 1, NULL);
    xo_ref_t frontend = spawn(rt, "frontend", 0, &backend);
    before = atomic_load(&seen[XO_ALERT_SLOW_CALL]);
    check(xo_tell(frontend, CALL_BACKEND, NULL, 0), "tell frontend");
    finish(frontend, 1, XO_ALERT_SLOW_CALL, before);

    printf("-- a backlog, and the dump while it lasts\n");
    xo_ref_t sink = spawn(rt, "sink", 1, NULL);
    before = atomic_load(&seen[XO_ALERT_MAILBOX_AGE]);
    tell_sleep(sink, 600);
    for (int i = 0; i < 5000; i++)
        tell_sleep(sink, 0);
    finish(sink, 0, XO_ALERT_MAILBOX_AGE, before);
    fflush(stdout);
    check(xo_runtime_dump(rt, stdout), "dump");
    finish(sink, 5001, XO_ALERT_MAILBOX_DEPTH, 0);

    xo_runtime_stats_t rs;
    check(xo_runtime_stats(rt, &rs), "stats");
    check(xo_runtime_stop(rt), "stop");
    xo_runtime_free(rt);
    int missing = 0;
    printf("-- alerts by kind\n");
    for (int k = 1; k < XO_ALERT_KINDS; k++) {
        printf("%-14s %llu\n", xo_alert_kind_name((xo_alert_kind_t)k),
               (unsigned long long)rs.alerts[k]);
        missing += rs.alerts[k] == 0;
    }
    return missing == 0 ? 0 : 1;
}
