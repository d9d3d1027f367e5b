/*
 * Yielding: a handler that sends many messages in one turn lends its worker
 * to the pool-mates queued behind it (cfg.yield_sends). Every test runs on
 * one pool, so a pool-mate can only have run before the producer's turn
 * ended if the producer yielded: what each test reads at the end of the
 * producer's loop is exact, not a race.
 */
#include "support.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

enum { GO = 1, ITEM = 2, PING = 3 };

enum send_mode { BY_TELL, BY_BATCH, BY_SEND, BY_CALL, BY_CALL_BATCH,
                 BY_CALL_THEN };

/* A counter: counts ITEM messages into the counter its spawn arg points
   to. */
static int counter_create(xo_ctx_t *ctx, void *state, const void *arg,
                          size_t size)
{
    (void)ctx;
    memcpy(state, arg, size);
    return 0;
}

static int counter_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    _Atomic long *count = *(_Atomic long **)state;
    if (m->tag == ITEM)
        atomic_fetch_add(count, 1);
    return 0;
}

static const xo_actor_def_t counter_def = {
    .name = "counter", .state_size = sizeof(_Atomic long *),
    .on_create = counter_create, .on_message = counter_message,
};

/* The producer: on GO, sends n ITEMs to `to` one way or another, then
   records how many the watched counter had handled by the end of its loop
   (still inside the same turn). */
struct go {
    xo_ref_t to;
    long n;
    enum send_mode mode;
    _Atomic long *watch;
    long *seen;
    int *send_rc;
    struct latch *done;
};

static int ignore_reply(xo_ctx_t *ctx, void *state, xo_future_t *f,
                        void *arg)
{
    (void)ctx;
    (void)state;
    (void)f;
    (void)arg;
    return 0;
}

static int send_all(xo_ctx_t *ctx, const struct go *g)
{
    xo_runtime_t *rt = xo_ctx_runtime(ctx);
    if (g->mode == BY_BATCH || g->mode == BY_CALL_BATCH) {
        xo_batch_item_t *items = calloc((size_t)g->n, sizeof(*items));
        for (long i = 0; i < g->n; i++)
            items[i] = (xo_batch_item_t){ ITEM, NULL, 0 };
        int rc;
        if (g->mode == BY_BATCH) {
            rc = xo_tell_batch(g->to, items, (size_t)g->n);
        } else {
            xo_future_t *f;
            rc = xo_call_batch(g->to, items, (size_t)g->n, &f);
            if (rc == 0)
                xo_future_release(f);
        }
        free(items);
        return rc;
    }
    for (long i = 0; i < g->n; i++) {
        int rc;
        if (g->mode == BY_SEND) {
            xo_msg_t *msg;
            rc = xo_msg_alloc(rt, ITEM, 0, &msg);
            if (rc == 0 && (rc = xo_send(g->to, msg)) != 0)
                xo_msg_free(rt, msg);
        } else if (g->mode == BY_CALL) {
            xo_future_t *f;
            rc = xo_call(g->to, ITEM, NULL, 0, &f);
            if (rc == 0)
                xo_future_release(f);
        } else if (g->mode == BY_CALL_THEN) {
            rc = xo_call_then(ctx, g->to, ITEM, NULL, 0, -1, ignore_reply,
                              NULL);
        } else {
            rc = xo_tell(g->to, ITEM, NULL, 0);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Producer turns whose sends are all done (read by the late actor). */
static _Atomic long floods_done;

static int producer_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    if (m->tag == PING)
        return m->request ? xo_reply(m->request, PING, NULL, 0) : 0;
    const struct go *g = m->data;
    *g->send_rc = send_all(ctx, g);
    atomic_store(&floods_done, atomic_load(&floods_done) + 1);
    *g->seen = atomic_load(g->watch);
    latch_count_down(g->done);
    return 0;
}

static const xo_actor_def_t producer_def = {
    .name = "producer", .on_message = producer_message,
};

static uint64_t spin_ns = 5000;

static xo_runtime_t *start_one_pool(unsigned yield_sends)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 1;
    cfg.spin_ns = spin_ns;
    cfg.yield_sends = yield_sends;
    xo_runtime_t *rt = NULL;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), 0);
    return rt;
}

/* Spawn a producer and a counter in the one pool, let the producer send n
   ITEMs to the counter by `mode`; returns what the counter had handled when
   the producer's loop ended. With `warm`, the counter handles one ITEM
   first (not counted in the result), so a worker that spins is watching it
   when the flood starts. */
static long flood_and_watch_from(unsigned yield_sends, long n,
                                 enum send_mode mode, bool warm)
{
    xo_runtime_t *rt = start_one_pool(yield_sends);
    static _Atomic long count;
    atomic_store(&count, 0);
    _Atomic long *p = &count;
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.arg = &p;
    opts.arg_size = sizeof(p);
    xo_ref_t producer, counter;
    cr_assert_eq(xo_spawn(rt, &counter_def, &opts, &counter), 0);
    cr_assert_eq(xo_spawn(rt, &producer_def, NULL, &producer), 0);
    if (warm) {
        cr_assert_eq(xo_tell(counter, ITEM, NULL, 0), 0);
        while (atomic_load(&count) != 1)
            sched_yield();
        atomic_store(&count, 0);
    }
    struct latch done;
    latch_init(&done, 1);
    long seen = -1;
    int send_rc = -1;
    struct go g = { counter, n, mode, &count, &seen, &send_rc, &done };
    cr_assert_eq(xo_tell(producer, GO, &g, sizeof(g)), 0);
    latch_wait(&done);
    cr_assert_eq(send_rc, 0, "every send succeeded: %s",
                 xo_strerror(send_rc));
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&count), n, "every message was handled once");
    return seen;
}

static long flood_and_watch(unsigned yield_sends, long n, enum send_mode mode)
{
    return flood_and_watch_from(yield_sends, n, mode, false);
}

Test(yield, a_flooding_turn_lets_its_consumer_keep_up_while_it_sends)
{
    /* Every 64 sends the consumer's turn (up to 64 messages) runs inside
       the producer's send, so it is never more than 64 behind. */
    long seen = flood_and_watch(64, 10000, BY_TELL);
    cr_assert_geq(seen, 10000 - 64, "consumed while sent: %ld", seen);
}

Test(yield, a_consumer_watched_when_the_flood_starts_runs_in_the_yields)
{
    /* The worker spins (it never parks here), so after its first message
       the counter stays watched: its mailbox is not idle-marked and the
       flood schedules nothing. A yield must end that watch, or it finds
       nothing queued and the consumer waits for the producer's turn to
       end. */
    spin_ns = 30000000000ull; /* 30 s */
    long seen = flood_and_watch_from(64, 10000, BY_TELL, true);
    cr_assert_geq(seen, 10000 - 64, "consumed while sent: %ld", seen);
}

Test(yield, a_turn_sending_fewer_than_yield_sends_never_yields)
{
    cr_assert_eq(flood_and_watch(64, 63, BY_TELL), 0);
}

Test(yield, yield_sends_zero_keeps_the_consumer_waiting_for_the_turn_to_end)
{
    cr_assert_eq(flood_and_watch(0, 10000, BY_TELL), 0);
}

Test(yield, every_kind_of_send_counts_toward_the_yield)
{
    /* 64 messages sent one way or another (one batch of 64 items for the
       batch forms): one yield, after the last, in which the consumer
       takes all 64. */
    cr_assert_eq(flood_and_watch(64, 64, BY_BATCH), 64);
    cr_assert_eq(flood_and_watch(64, 64, BY_SEND), 64);
    cr_assert_eq(flood_and_watch(64, 64, BY_CALL), 64);
    cr_assert_eq(flood_and_watch(64, 64, BY_CALL_BATCH), 64);
    cr_assert_eq(flood_and_watch(64, 64, BY_CALL_THEN), 64);
}

/* A relay: on its first ITEM it does its job's action against `other`,
   then counts ITEMs like a counter. Its state is a pointer to the job,
   which the test reads once the runtime has stopped. */
enum relay_action { FLOOD_OTHER, CALL_OTHER };

struct relay_job {
    enum relay_action action;
    xo_ref_t other;
    _Atomic long count;
    _Atomic long other_count;  /* FLOOD_OTHER: what `other` counts into */
    long other_seen;           /* FLOOD_OTHER: other_count after the flood */
    int rc;                    /* what the action returned */
    bool acted;
};

static int relay_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    struct relay_job *j = *(struct relay_job **)state;
    if (m->tag != ITEM)
        return 0;
    if (!j->acted) {
        j->acted = true;
        if (j->action == FLOOD_OTHER) {
            j->rc = 0;
            for (int i = 0; i < 1000 && j->rc == 0; i++)
                j->rc = xo_tell(j->other, ITEM, NULL, 0);
            j->other_seen = atomic_load(&j->other_count);
        } else {
            xo_future_t *f;
            j->rc = xo_call(j->other, PING, NULL, 0, &f);
            if (j->rc == 0) {
                j->rc = xo_future_wait(f, -1);
                xo_future_release(f);
            }
        }
    }
    atomic_fetch_add(&j->count, 1);
    return 0;
}

static const xo_actor_def_t relay_def = {
    .name = "relay", .state_size = sizeof(struct relay_job *),
    .on_create = counter_create, .on_message = relay_message,
};

/* One pool: a producer floods a relay with 64 ITEMs, so the relay's first
   turn runs inside the producer's yield. For FLOOD_OTHER the relay floods a
   counter of the same pool; for CALL_OTHER it calls the producer. */
static void flood_relay(struct relay_job *j)
{
    xo_runtime_t *rt = start_one_pool(64);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    xo_ref_t producer, relay;
    cr_assert_eq(xo_spawn(rt, &producer_def, NULL, &producer), 0);
    if (j->action == FLOOD_OTHER) {
        _Atomic long *p = &j->other_count;
        opts.arg = &p;
        opts.arg_size = sizeof(p);
        cr_assert_eq(xo_spawn(rt, &counter_def, &opts, &j->other), 0);
    } else {
        j->other = producer;
    }
    opts.arg = &j;
    opts.arg_size = sizeof(j);
    cr_assert_eq(xo_spawn(rt, &relay_def, &opts, &relay), 0);
    struct latch done;
    latch_init(&done, 1);
    long seen = -1;
    int send_rc = -1;
    struct go g = { relay, 64, BY_TELL, &j->count, &seen, &send_rc, &done };
    cr_assert_eq(xo_tell(producer, GO, &g, sizeof(g)), 0);
    latch_wait(&done);
    cr_assert_eq(send_rc, 0);
    cr_assert_eq(seen, 64, "the relay ran inside the producer's yield");
    stop_runtime(rt);
    cr_assert(j->acted);
    cr_assert_eq(atomic_load(&j->count), 64);
}

Test(yield, a_handler_run_inside_a_yield_does_not_yield_again)
{
    static struct relay_job j = { .action = FLOOD_OTHER };
    flood_relay(&j);
    cr_assert_eq(j.rc, 0);
    cr_assert_eq(j.other_seen, 0,
                 "the counter did not run inside the relay's nested turn");
    cr_assert_eq(atomic_load(&j.other_count), 1000, "it ran afterwards");
}

Test(yield, waiting_inside_a_yield_for_the_yielding_actor_fails_with_edeadlk)
{
    /* The producer resumes only when the relay's turn, nested above it on
       the same stack, returns: waiting for its reply would never end. */
    static struct relay_job j = { .action = CALL_OTHER };
    flood_relay(&j);
    cr_assert_eq(j.rc, XO_EDEADLK, "got %s", xo_strerror(j.rc));
}

/* The late one: records whether the producer's flood was still going
   when its delayed message arrived. */
static _Atomic int late_during = -1;

static int late_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    atomic_store(&late_during, atomic_load(&floods_done) == 0);
    return 0;
}

static const xo_actor_def_t late_def = {
    .name = "late", .on_message = late_message,
};

Test(yield, a_delayed_tell_comes_due_and_is_handled_during_a_flood)
{
    /* One pool: a producer floods a counter with 4 M messages (80 ms at
       the least here); a tell delayed by 5 ms to a third actor, made
       once the flood is under way, comes due meanwhile. Its timer item
       is taken in a yield, fires in a later one, and the actor runs in
       the one after, before the flood is over; without timers in yields
       it would run after the producer's turn. */
    xo_runtime_t *rt = start_one_pool(256);
    static _Atomic long count;
    _Atomic long *p = &count;
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.arg = &p;
    opts.arg_size = sizeof(p);
    xo_ref_t producer, counter, late;
    cr_assert_eq(xo_spawn(rt, &counter_def, &opts, &counter), 0);
    cr_assert_eq(xo_spawn(rt, &late_def, NULL, &late), 0);
    cr_assert_eq(xo_spawn(rt, &producer_def, NULL, &producer), 0);
    struct latch done;
    latch_init(&done, 1);
    long seen = -1;
    int send_rc = -1;
    const long n = 4000000;
    struct go g = { counter, n, BY_TELL, &count, &seen, &send_rc, &done };
    atomic_store(&floods_done, 0);
    cr_assert_eq(xo_tell(producer, GO, &g, sizeof(g)), 0);
    cr_assert_eq(xo_tell_after(late, 5000000, ITEM, NULL, 0), 0);
    latch_wait(&done);
    cr_assert_eq(send_rc, 0);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&late_during), 1,
                 "the delayed tell ran while the flood went on");
    cr_assert_eq(atomic_load(&count), n);
}
