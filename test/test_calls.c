/*
 * Calls: replies, handler errors with messages, timeouts and late replies,
 * continuations on the caller's turn, cycle detection for blocking waits,
 * cancellation, streams, delayed tells, and calls caught by a destroy.
 */
#include "support.h"

#include <stdio.h>
#include <string.h>

enum { ADD = 1, GET = 2, FAIL = 3, SLOW = 4, STREAM = 5, CALL_PEER = 6,
       CHAIN = 7, TELL_PEER = 8, STREAM_FAIL = 9, WAIT_CANCEL = 10 };

/* ---- a counter with state across calls --------------------------------- */

struct counter {
    long value;
};

static int counter_create(xo_ctx_t *ctx, void *state, const void *arg,
                          size_t size)
{
    (void)ctx;
    struct counter *c = state;
    if (size == sizeof(long))
        c->value = *(const long *)arg;
    return 0;
}

static atomic_int slow_release; /* SLOW handlers spin until it is set */
static atomic_int slow_started;

static int counter_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct counter *c = state;
    switch (m->tag) {
    case ADD:
        c->value += *(const long *)m->data;
        return xo_reply(m->request, ADD, &c->value, sizeof(c->value));
    case GET:
        return xo_reply(m->request, GET, &c->value, sizeof(c->value));
    case FAIL:
        return xo_fail(ctx, XO_EINVAL, "key %ld is not allowed", c->value);
    case SLOW:
        atomic_fetch_add(&slow_started, 1);
        while (!atomic_load(&slow_release) &&
               !xo_request_cancelled(m->request))
            sleep_ms(1);
        return xo_reply(m->request, SLOW, "late", 4);
    }
    return 0;
}

static const xo_actor_def_t counter_def = {
    .name = "counter", .state_size = sizeof(struct counter),
    .on_create = counter_create, .on_message = counter_message,
};

static xo_ref_t spawn_counter(xo_runtime_t *rt, long initial)
{
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.arg = &initial;
    opts.arg_size = sizeof(initial);
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &counter_def, &opts, &r), 0);
    return r;
}

static long call_long(xo_ref_t to, uint32_t tag, long arg)
{
    xo_future_t *f;
    cr_assert_eq(xo_call(to, tag, &arg, sizeof(arg), &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t r;
    cr_assert_eq(xo_future_result(f, 0, &r), 0);
    cr_assert_eq(r.size, sizeof(long));
    long v = *(const long *)r.data;
    cr_assert(xo_ref_eq(r.from, to), "the reply names its actor");
    xo_future_release(f);
    return v;
}

Test(calls, counter_created_with_100_returns_101_after_add_1_and_keeps_state)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t c = spawn_counter(rt, 100);
    cr_assert_eq(call_long(c, ADD, 1), 101);
    cr_assert_eq(call_long(c, ADD, 9), 110);
    cr_assert_eq(call_long(c, GET, 0), 110);
    stop_runtime(rt);
}

Test(calls, handler_error_code_and_message_reach_the_caller)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t c = spawn_counter(rt, 7);
    xo_future_t *f;
    cr_assert_eq(xo_call(c, FAIL, NULL, 0, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t r;
    cr_assert_eq(xo_future_result(f, 0, &r), XO_EINVAL);
    cr_assert_eq(r.status, XO_EINVAL);
    cr_assert_str_eq(r.error, "key 7 is not allowed");
    xo_future_release(f);
    /* The actor survived its failure. */
    cr_assert_eq(call_long(c, GET, 0), 7);
    stop_runtime(rt);
}

Test(calls, calling_a_missing_actor_gives_enotexist)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t c = spawn_counter(rt, 0);
    cr_assert_eq(xo_destroy(c), 0);
    xo_future_t *f = NULL;
    cr_assert_eq(xo_call(c, GET, NULL, 0, &f), XO_ENOTEXIST);
    cr_assert_null(f);
    stop_runtime(rt);
}

Test(calls, wait_times_out_and_a_late_reply_is_freed_with_the_future)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t c = spawn_counter(rt, 0);
    xo_future_t *f;
    cr_assert_eq(xo_call(c, SLOW, NULL, 0, &f), 0);
    cr_assert_eq(xo_future_wait(f, 0), XO_ETIMEDOUT, "poll: not yet");
    cr_assert_eq(xo_future_wait(f, 2000000), XO_ETIMEDOUT);
    cr_assert_not(xo_future_done(f));
    xo_result_t r;
    cr_assert_eq(xo_future_result(f, 0, &r), XO_EINVAL, "no result yet");
    /* The result is filled even then, so code that prints r.error after
       a timeout reads a message, not stack garbage. */
    cr_assert_eq(r.status, XO_EINVAL);
    cr_assert_not_null(r.error);
    cr_assert_null(r.data);
    cr_assert_eq(xo_future_result(f, 1, &r), XO_EINVAL, "one item only");
    cr_assert_eq(r.status, XO_EINVAL);
    cr_assert_not_null(r.error);
    cr_assert_eq(xo_future_result(NULL, 0, &r), XO_EINVAL);
    cr_assert_not_null(r.error);
    xo_future_release(f); /* give up; the reply comes later */
    atomic_store(&slow_release, 1);
    cr_assert_eq(call_long(c, GET, 0), 0, "actor went on after the reply");
    stop_runtime(rt); /* ASan/LSan: the late reply was freed */
}

/* ---- continuations ----------------------------------------------------- */

struct caller {
    xo_ref_t peer;
    long got;
    int in_handler;       /* set while on_message runs */
    int overlap;          /* a continuation ran inside a handler */
    int conts;
    pthread_t thread;
    int wrong_thread;
};

static struct caller caller_report;
static struct latch done;

static int then_record(xo_ctx_t *ctx, void *state, xo_future_t *f, void *arg)
{
    struct caller *c = state;
    (void)ctx;
    cr_assert_eq(arg, (void *)&caller_report);
    if (c->in_handler)
        c->overlap++;
    if (!pthread_equal(c->thread, pthread_self()))
        c->wrong_thread++;
    xo_result_t r;
    if (xo_future_result(f, 0, &r) == 0)
        c->got += *(const long *)r.data;
    if (++c->conts == 100) {
        caller_report = *c;
        latch_count_down(&done);
    }
    return 0;
}

static int caller_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct caller *c = state;
    c->in_handler = 1;
    c->thread = pthread_self();
    if (m->tag == CALL_PEER) {
        c->peer = *(const xo_ref_t *)m->data;
        for (long i = 0; i < 100; i++)
            cr_assert_eq(xo_call_then(ctx, c->peer, ADD, &(long){ 1 },
                                      sizeof(long), -1, then_record,
                                      &caller_report),
                         0);
    }
    c->in_handler = 0;
    return 0;
}

static const xo_actor_def_t caller_def = {
    .name = "caller", .state_size = sizeof(struct caller),
    .on_message = caller_message,
};

Test(calls, continuation_runs_later_as_a_turn_of_the_calling_actor)
{
    xo_runtime_t *rt = start_runtime(2);
    latch_init(&done, 1);
    xo_ref_t counter = spawn_counter(rt, 0), caller;
    /* Fixed to its pool, so that "on the caller's worker" is one thread
       (a movable caller's continuations are its turns too, wherever they
       run: test_locality.c). */
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.move = XO_MOVE_FIXED;
    cr_assert_eq(xo_spawn(rt, &caller_def, &opts, &caller), 0);
    cr_assert_eq(xo_tell(caller, CALL_PEER, &counter, sizeof(counter)), 0);
    latch_wait(&done);
    cr_assert_eq(caller_report.conts, 100);
    cr_assert_eq(caller_report.overlap, 0, "never inside another handler");
    cr_assert_eq(caller_report.wrong_thread, 0, "on the caller's worker");
    /* Replies were 1..100: their sum proves each arrived once. */
    cr_assert_eq(caller_report.got, 5050);
    stop_runtime(rt);
}

static atomic_int timed_out;

static int then_timeout(xo_ctx_t *ctx, void *state, xo_future_t *f, void *arg)
{
    (void)ctx;
    (void)state;
    (void)arg;
    xo_result_t r;
    if (xo_future_result(f, 0, &r) == XO_ETIMEDOUT)
        atomic_fetch_add(&timed_out, 1);
    latch_count_down(&done);
    return 0;
}

static int timeout_caller_message(xo_ctx_t *ctx, void *state,
                                  const xo_msg_t *m)
{
    (void)state;
    xo_ref_t peer = *(const xo_ref_t *)m->data;
    return xo_call_then(ctx, peer, SLOW, NULL, 0, 3000000, then_timeout,
                        NULL);
}

static const xo_actor_def_t timeout_caller_def = {
    .name = "timeout-caller", .on_message = timeout_caller_message,
};

Test(calls, continuation_with_timeout_sees_etimedout_and_late_reply_is_dropped)
{
    xo_runtime_t *rt = start_runtime(2);
    latch_init(&done, 1);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.pool = 1;
    long zero = 0;
    opts.arg = &zero;
    opts.arg_size = sizeof(zero);
    xo_ref_t slow, caller;
    cr_assert_eq(xo_spawn(rt, &counter_def, &opts, &slow), 0);
    opts.pool = 0;
    opts.arg = NULL;
    opts.arg_size = 0;
    cr_assert_eq(xo_spawn(rt, &timeout_caller_def, &opts, &caller), 0);
    cr_assert_eq(xo_tell(caller, 1, &slow, sizeof(slow)), 0);
    latch_wait(&done);
    cr_assert_eq(atomic_load(&timed_out), 1);
    atomic_store(&slow_release, 1);
    stop_runtime(rt);
}

/* ---- deadlock detection ------------------------------------------------ */

static atomic_int deadlocks, completed;

struct peer {
    xo_ref_t other;
};

static int peer_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct peer *p = state;
    if (m->tag == CALL_PEER) { /* remember the other side */
        p->other = *(const xo_ref_t *)m->data;
        return 0;
    }
    if (m->tag == CHAIN) {
        /* Blocking call to the other side, which calls us back. */
        xo_future_t *f;
        int rc = xo_call(p->other, SLOW + 100, NULL, 0, &f);
        if (rc != 0)
            return rc;
        rc = xo_future_wait(f, -1);
        if (rc == XO_EDEADLK)
            atomic_fetch_add(&deadlocks, 1);
        else
            atomic_fetch_add(&completed, 1);
        if (rc == XO_EDEADLK)
            xo_future_cancel(f); /* it will be skipped or answered */
        xo_future_release(f);
        latch_count_down(&done);
        return 0;
    }
    if (m->tag == SLOW + 100) {
        /* Called by the other side while it waits: call it back, blocking. */
        xo_future_t *f;
        int rc = xo_call(p->other, GET, NULL, 0, &f);
        if (rc != 0)
            return rc;
        rc = xo_future_wait(f, -1);
        if (rc == XO_EDEADLK)
            atomic_fetch_add(&deadlocks, 1);
        xo_future_release(f);
        return rc == XO_EDEADLK ? xo_fail(ctx, rc, "cycle") : 0;
    }
    if (m->tag == ADD) { /* self-call, blocking */
        xo_future_t *f;
        int rc = xo_call(xo_self(ctx), GET, NULL, 0, &f);
        if (rc != 0)
            return rc;
        if (xo_future_wait(f, -1) == XO_EDEADLK)
            atomic_fetch_add(&deadlocks, 1);
        xo_future_release(f);
        latch_count_down(&done);
        return 0;
    }
    return 0; /* GET: answered empty */
}

static const xo_actor_def_t peer_def = {
    .name = "peer", .state_size = sizeof(struct peer),
    .on_message = peer_message,
};

static void spawn_pair(xo_runtime_t *rt, xo_ref_t *a, xo_ref_t *b)
{
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.pool = 0;
    cr_assert_eq(xo_spawn(rt, &peer_def, &opts, a), 0);
    opts.pool = 1;
    cr_assert_eq(xo_spawn(rt, &peer_def, &opts, b), 0);
    cr_assert_eq(xo_tell(*a, CALL_PEER, b, sizeof(*b)), 0);
    cr_assert_eq(xo_tell(*b, CALL_PEER, a, sizeof(*a)), 0);
}

Test(calls, blocking_wait_a_to_b_to_a_fails_with_edeadlk_instead_of_hanging)
{
    xo_runtime_t *rt = start_runtime(2);
    latch_init(&done, 1);
    xo_ref_t a, b;
    spawn_pair(rt, &a, &b);
    cr_assert_eq(xo_tell(a, CHAIN, NULL, 0), 0);
    latch_wait(&done);
    /* Whichever of the two started waiting second closed the cycle and
       was refused; the other's wait then completed. */
    cr_assert_eq(atomic_load(&deadlocks), 1, "exactly one wait refused");
    stop_runtime(rt);
}

Test(calls, blocking_wait_on_a_self_call_fails_with_edeadlk)
{
    xo_runtime_t *rt = start_runtime(1);
    latch_init(&done, 1);
    xo_ref_t a, b;
    (void)b;
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    cr_assert_eq(xo_spawn(rt, &peer_def, &opts, &a), 0);
    cr_assert_eq(xo_tell(a, ADD, NULL, 0), 0);
    latch_wait(&done);
    cr_assert_eq(atomic_load(&deadlocks), 1);
    stop_runtime(rt);
}

/* The same A -> B -> A exchange through continuations completes. */
static int relay_then(xo_ctx_t *ctx, void *state, xo_future_t *f, void *arg)
{
    (void)ctx;
    (void)state;
    (void)f;
    (void)arg;
    atomic_fetch_add(&completed, 1);
    latch_count_down(&done);
    return 0;
}

static int relay_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct peer *p = state;
    if (m->tag == CALL_PEER) {
        p->other = *(const xo_ref_t *)m->data;
        return 0;
    }
    if (m->tag == CHAIN) /* A: call B, continue later */
        return xo_call_then(ctx, p->other, TELL_PEER, NULL, 0, -1, relay_then,
                            NULL);
    if (m->tag == TELL_PEER) /* B: call A back, continue later */
        return xo_call_then(ctx, p->other, GET, NULL, 0, -1, relay_then, NULL);
    return 0;
}

static const xo_actor_def_t relay_def = {
    .name = "relay", .state_size = sizeof(struct peer),
    .on_message = relay_message,
};

Test(calls, the_same_cycle_through_continuations_completes)
{
    xo_runtime_t *rt = start_runtime(1); /* one pool: both on one worker */
    latch_init(&done, 2);
    xo_ref_t a, b;
    cr_assert_eq(xo_spawn(rt, &relay_def, NULL, &a), 0);
    cr_assert_eq(xo_spawn(rt, &relay_def, NULL, &b), 0);
    cr_assert_eq(xo_tell(a, CALL_PEER, &b, sizeof(b)), 0);
    cr_assert_eq(xo_tell(b, CALL_PEER, &a, sizeof(a)), 0);
    cr_assert_eq(xo_tell(a, CHAIN, NULL, 0), 0);
    latch_wait(&done);
    cr_assert_eq(atomic_load(&completed), 2);
    stop_runtime(rt);
}

/* A blocking wait on an actor of the same pool lends the worker to it. */
static int same_pool_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    xo_ref_t counter = *(const xo_ref_t *)m->data;
    xo_future_t *f;
    int rc = xo_call(counter, ADD, &(long){ 5 }, sizeof(long), &f);
    if (rc == 0 && (rc = xo_future_wait(f, -1)) == 0)
        atomic_fetch_add(&completed, 1);
    xo_future_release(f);
    latch_count_down(&done);
    return rc;
}

static const xo_actor_def_t same_pool_def = {
    .name = "same-pool", .on_message = same_pool_message,
};

Test(calls, blocking_wait_on_an_actor_of_the_same_pool_completes)
{
    xo_runtime_t *rt = start_runtime(1);
    latch_init(&done, 1);
    xo_ref_t counter = spawn_counter(rt, 0), waiter;
    cr_assert_eq(xo_spawn(rt, &same_pool_def, NULL, &waiter), 0);
    cr_assert_eq(xo_tell(waiter, 1, &counter, sizeof(counter)), 0);
    latch_wait(&done);
    cr_assert_eq(atomic_load(&completed), 1);
    cr_assert_eq(call_long(counter, GET, 0), 5);
    stop_runtime(rt);
}

/* ---- cancellation ------------------------------------------------------ */

Test(calls, cancel_before_start_skips_the_call_with_ecanceled)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t c = spawn_counter(rt, 0);
    xo_future_t *slow, *add;
    cr_assert_eq(xo_call(c, SLOW, NULL, 0, &slow), 0);
    while (atomic_load(&slow_started) == 0) /* the worker is busy now */
        sleep_ms(1);
    cr_assert_eq(xo_call(c, ADD, &(long){ 1 }, sizeof(long), &add), 0);
    cr_assert_eq(xo_future_cancel(add), 0);
    cr_assert(xo_future_done(add), "complete at once");
    xo_result_t r;
    cr_assert_eq(xo_future_result(add, 0, &r), XO_ECANCELED);
    atomic_store(&slow_release, 1);
    cr_assert_eq(xo_future_wait(slow, -1), 0);
    xo_future_release(slow);
    xo_future_release(add);
    cr_assert_eq(call_long(c, GET, 0), 0, "the cancelled ADD never ran");
    stop_runtime(rt);
}

Test(calls, cancel_during_run_is_seen_by_the_handler_and_its_reply_arrives)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t c = spawn_counter(rt, 0);
    xo_future_t *f;
    cr_assert_eq(xo_call(c, SLOW, NULL, 0, &f), 0);
    while (atomic_load(&slow_started) == 0)
        sleep_ms(1);
    cr_assert_eq(xo_future_cancel(f), 0); /* slow_release stays 0 */
    cr_assert_eq(xo_future_wait(f, -1), 0, "the handler stopped early");
    xo_result_t r;
    cr_assert_eq(xo_future_result(f, 0, &r), 0);
    cr_assert_eq(r.size, 4);
    cr_assert(memcmp(r.data, "late", 4) == 0, "its reply reached us");
    xo_future_release(f);
    stop_runtime(rt);
}

/* ---- streams ----------------------------------------------------------- */

static atomic_int stream_cancelled;

static int streamer_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    int parts = *(const int *)m->data;
    for (int i = 0; i < parts; i++) {
        int rc = xo_reply_part(m->request, STREAM, &i, sizeof(i));
        if (rc == XO_ECANCELED) {
            atomic_fetch_add(&stream_cancelled, 1);
            latch_count_down(&done);
            return 0;
        }
        if (rc != 0)
            return rc;
        if (m->tag == STREAM_FAIL && i == 9)
            return xo_fail(ctx, XO_EINVAL, "broke after %d parts", i + 1);
        if (m->tag == WAIT_CANCEL && i == 0)
            while (!xo_request_cancelled(m->request))
                sleep_ms(1);
    }
    return 0; /* returning ends the stream */
}

static const xo_actor_def_t streamer_def = {
    .name = "streamer", .on_message = streamer_message,
};

Test(calls, stream_of_1000_parts_arrives_in_order_then_ends)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t s;
    cr_assert_eq(xo_spawn(rt, &streamer_def, NULL, &s), 0);
    xo_future_t *f;
    int parts = 1000;
    cr_assert_eq(xo_call(s, STREAM, &parts, sizeof(parts), &f), 0);
    xo_result_t part;
    for (int i = 0; i < parts; i++) {
        cr_assert_eq(xo_stream_next(f, -1, &part), 0);
        cr_assert_eq(*(const int *)part.data, i, "part %d in order", i);
        cr_assert(xo_ref_eq(part.from, s));
    }
    cr_assert_eq(xo_stream_next(f, -1, &part), XO_EEOF);
    cr_assert_eq(xo_future_result(f, 0, &part), 0);
    xo_future_release(f);
    stop_runtime(rt);
}

Test(calls, error_mid_stream_reaches_the_reader_after_the_parts_before_it)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t s;
    cr_assert_eq(xo_spawn(rt, &streamer_def, NULL, &s), 0);
    xo_future_t *f;
    int parts = 100;
    cr_assert_eq(xo_call(s, STREAM_FAIL, &parts, sizeof(parts), &f), 0);
    xo_result_t part;
    for (int i = 0; i < 10; i++)
        cr_assert_eq(xo_stream_next(f, -1, &part), 0);
    cr_assert_eq(xo_stream_next(f, -1, &part), XO_EINVAL);
    cr_assert_str_eq(part.error, "broke after 10 parts");
    xo_future_release(f);
    stop_runtime(rt);
}

Test(calls, abandoned_stream_is_freed_and_its_producer_told)
{
    xo_runtime_t *rt = start_runtime(2);
    latch_init(&done, 1);
    xo_ref_t s;
    cr_assert_eq(xo_spawn(rt, &streamer_def, NULL, &s), 0);
    xo_future_t *f;
    int parts = 1000000;
    cr_assert_eq(xo_call(s, WAIT_CANCEL, &parts, sizeof(parts), &f), 0);
    xo_result_t part;
    cr_assert_eq(xo_stream_next(f, -1, &part), 0);
    xo_future_release(f); /* stop reading: parts queued are freed */
    latch_wait(&done);
    cr_assert_eq(atomic_load(&stream_cancelled), 1);
    stop_runtime(rt);
}

/* ---- delayed tells ----------------------------------------------------- */

static _Atomic uint64_t delivered_at;

static int stamp_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    atomic_store(&delivered_at,
                 (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    latch_count_down(&done);
    return 0;
}

static const xo_actor_def_t stamp_def = {
    .name = "stamp", .on_message = stamp_message,
};

Test(calls, delayed_tell_is_delivered_and_not_early)
{
    xo_runtime_t *rt = start_runtime(2);
    latch_init(&done, 1);
    xo_ref_t s;
    cr_assert_eq(xo_spawn(rt, &stamp_def, NULL, &s), 0);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t sent = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    const uint64_t delay = 20000000; /* 20 ms */
    cr_assert_eq(xo_tell_after(s, delay, 1, NULL, 0), 0);
    latch_wait(&done);
    /* Ordering, not speed: it must not arrive before its time. */
    cr_assert_geq(atomic_load(&delivered_at) - sent, delay);
    xo_ref_t gone;
    cr_assert_eq(xo_spawn(rt, &stamp_def, NULL, &gone), 0);
    cr_assert_eq(xo_destroy(gone), 0);
    cr_assert_eq(xo_tell_after(gone, delay, 1, NULL, 0), XO_ENOTEXIST);
    /* One still pending at stop is dropped, not leaked. */
    cr_assert_eq(xo_tell_after(s, 60ull * 1000000000u, 1, "x", 1), 0);
    stop_runtime(rt);
}

/* ---- calls in flight when their target is destroyed ------------------- */

Test(calls, two_hundred_calls_in_flight_to_a_destroyed_actor_all_complete)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t c = spawn_counter(rt, 0);
    xo_future_t *f[200];
    int sent = 0, refused = 0;
    for (int i = 0; i < 200; i++) {
        if (i == 100)
            cr_assert_eq(xo_destroy(c), 0);
        int rc = xo_call(c, ADD, &(long){ 1 }, sizeof(long), &f[sent]);
        if (rc == 0)
            sent++;
        else {
            cr_assert_eq(rc, XO_ENOTEXIST);
            refused++;
        }
    }
    cr_assert_eq(sent, 100);
    cr_assert_eq(refused, 100);
    for (int i = 0; i < sent; i++) {
        cr_assert_eq(xo_future_wait(f[i], -1), 0, "call %d completed", i);
        xo_result_t r;
        cr_assert_eq(xo_future_result(f[i], 0, &r), 0, "and was answered");
        cr_assert_eq(*(const long *)r.data, i + 1);
        xo_future_release(f[i]);
    }
    stop_runtime(rt);
}

/* ---- waits nested on one worker, and destroys in a cycle --------------- */

static atomic_int a_waiting, b_result = 1, a_result = 1, x_release;
static xo_ref_t nest_a;

static int x_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    while (!atomic_load(&x_release))
        sleep_ms(1);
    return xo_reply(m->request, 0, NULL, 0);
}

static const xo_actor_def_t x_def = { .name = "x", .on_message = x_message };

static int a_nest_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    if (m->request) /* B's call: would be answered if A could run */
        return 0;
    xo_ref_t x = *(const xo_ref_t *)m->data;
    xo_future_t *f;
    int rc = xo_call(x, 0, NULL, 0, &f);
    atomic_store(&a_waiting, 1);
    if (rc == 0)
        rc = xo_future_wait(f, -1);
    xo_future_release(f);
    atomic_store(&a_result, rc);
    latch_count_down(&done);
    return 0;
}

static int b_nest_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    xo_future_t *f;
    int rc = xo_call(nest_a, 0, NULL, 0, &f);
    if (rc == 0)
        rc = xo_future_wait(f, -1); /* A is below us on this thread */
    if (rc == XO_EDEADLK)
        xo_future_cancel(f);
    xo_future_release(f);
    atomic_store(&b_result, rc);
    atomic_store(&x_release, 1);
    return 0;
}

static const xo_actor_def_t a_nest_def = { .name = "a",
                                           .on_message = a_nest_message };
static const xo_actor_def_t b_nest_def = { .name = "b",
                                           .on_message = b_nest_message };

Test(calls, waiting_on_an_actor_blocked_lower_on_the_same_worker_is_edeadlk)
{
    xo_runtime_t *rt = start_runtime(2);
    latch_init(&done, 1);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.pool = 1;
    xo_ref_t x, b;
    cr_assert_eq(xo_spawn(rt, &x_def, &opts, &x), 0);
    opts.pool = 0;
    cr_assert_eq(xo_spawn(rt, &a_nest_def, &opts, &nest_a), 0);
    cr_assert_eq(xo_spawn(rt, &b_nest_def, &opts, &b), 0);
    cr_assert_eq(xo_tell(nest_a, 1, &x, sizeof(x)), 0);
    while (!atomic_load(&a_waiting))
        sleep_ms(1);
    cr_assert_eq(xo_tell(b, 1, NULL, 0), 0); /* runs nested above A */
    latch_wait(&done);
    cr_assert_eq(atomic_load(&b_result), XO_EDEADLK,
                 "B cannot get A's answer while it sits above A");
    cr_assert_eq(atomic_load(&a_result), 0, "A's own wait completed");
    stop_runtime(rt);
}

static atomic_int destroy_result = 1, b_wait_result = 1;
static xo_ref_t cyc_b;

static int cyc_a_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    /* B waits on this call; destroying B from here would wait on B. */
    atomic_store(&destroy_result, xo_destroy(cyc_b));
    return xo_reply(m->request, 0, NULL, 0);
}

static int cyc_b_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    xo_ref_t a = *(const xo_ref_t *)m->data;
    xo_future_t *f;
    int rc = xo_call(a, 0, NULL, 0, &f);
    if (rc == 0) {
        rc = xo_future_wait(f, -1);
        xo_future_release(f);
    }
    atomic_store(&b_wait_result, rc);
    return rc;
}

static int cyc_b_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    (void)state;
    latch_count_down(&done);
    return 0;
}

static const xo_actor_def_t cyc_a_def = { .name = "a",
                                          .on_message = cyc_a_message };
static const xo_actor_def_t cyc_b_def = { .name = "b",
                                          .on_message = cyc_b_message,
                                          .on_destroy = cyc_b_destroy };

Test(calls, destroying_an_actor_that_waits_on_us_is_edeadlk_and_still_happens)
{
    xo_runtime_t *rt = start_runtime(2);
    latch_init(&done, 1);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.pool = 0;
    xo_ref_t a;
    cr_assert_eq(xo_spawn(rt, &cyc_a_def, &opts, &a), 0);
    opts.pool = 1;
    cr_assert_eq(xo_spawn(rt, &cyc_b_def, &opts, &cyc_b), 0);
    cr_assert_eq(xo_tell(cyc_b, 1, &a, sizeof(a)), 0);
    latch_wait(&done); /* B's on_destroy ran: the destroy went on */
    /* The wait that closes the cycle fails: A's destroy when B waits
       already, B's call when A's destroy got there first (then the destroy
       completes). Exactly one of the two. */
    while (atomic_load(&destroy_result) == 1)
        sleep_ms(1);
    int d = atomic_load(&destroy_result), w = atomic_load(&b_wait_result);
    cr_assert((d == XO_EDEADLK && w == 0) || (d == 0 && w == XO_EDEADLK),
              "one wait closed the cycle: destroy %d, B's wait %d", d, w);
    cr_assert_not(xo_ref_alive(cyc_b));
    stop_runtime(rt);
}
