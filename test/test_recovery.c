/*
 * Recovery of one actor: what a restart keeps and what it resets, the
 * restart intensity, backoff, crash_on_error, permanent actors that
 * destroy themselves, continuations of a past incarnation; monitors and
 * their DOWN for every reason; links, trapped or not. Each test waits for
 * what it checks through messages or polling (never a sleep asserted on);
 * a hang fails by ctest's timeout.
 */
#include "support.h"

#include <stdio.h>
#include <string.h>

#include "runtime/runtime.h"

enum { T_INC = 1, T_GET, T_CRASH, T_FAIL, T_SELF_DESTROY, T_LOG, T_GATED_CRASH };

/* A code of the test's own, as a user's handler would return. */
#define E_BOOM (-7001)

/* ---- a restartable counter ------------------------------------------- */

struct counter {
    int count;
    int arg;
    uint64_t incarnation;
};

static atomic_int creates, destroys, create_args[64];
static atomic_int create_fails_left; /* on_create fails while > 0 */
static atomic_int log_len;
static int log_seq[4096];
static uint64_t log_inc[4096];
static char order_log[64];
static atomic_int order_len;

static void order_mark(char c)
{
    int i = atomic_fetch_add(&order_len, 1);
    if (i < (int)sizeof(order_log) - 1)
        order_log[i] = c;
}

static int counter_create(xo_ctx_t *ctx, void *state, const void *arg,
                          size_t size)
{
    struct counter *s = state;
    cr_assert_eq(s->count, 0, "a new incarnation starts from zeroed state");
    int n = atomic_fetch_add(&creates, 1);
    s->arg = size == sizeof(int) ? *(const int *)arg : -1;
    if (n < 64)
        create_args[n] = s->arg;
    xo_actor_stats_t st;
    s->incarnation = xo_actor_stats(xo_self(ctx), &st) == 0 ? st.restarts : 0;
    order_mark('c');
    if (atomic_load(&create_fails_left) > 0) {
        atomic_fetch_sub(&create_fails_left, 1);
        return xo_fail(ctx, E_BOOM, "on_create refuses");
    }
    return 0;
}

static int counter_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    (void)state;
    atomic_fetch_add(&destroys, 1);
    order_mark('d');
    return 0;
}

static atomic_long crash_seen_ns;
static atomic_int gate;

static int counter_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct counter *s = state;
    switch (m->tag) {
    case T_INC:
        s->count++;
        return 0;
    case T_GET:
        return xo_reply(m->request, 0, &s->count, sizeof(s->count));
    case T_CRASH: {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        atomic_store(&crash_seen_ns,
                     (long)ts.tv_sec * 1000000000L + ts.tv_nsec);
        return xo_crash(ctx, E_BOOM, "boom %d", s->count);
    }
    case T_GATED_CRASH: /* once the test has queued more behind it */
        while (!atomic_load(&gate))
            sleep_ms(1);
        return xo_crash(ctx, E_BOOM, "boom %d", s->count);
    case T_FAIL:
        return xo_fail(ctx, XO_EINVAL, "plain error");
    case T_SELF_DESTROY:
        return xo_destroy(xo_self(ctx));
    case T_LOG: {
        int i = atomic_fetch_add(&log_len, 1);
        if (i < 4096) {
            log_seq[i] = *(const int *)m->data;
            log_inc[i] = s->incarnation;
        }
        return 0;
    }
    }
    return 0;
}

static const xo_actor_def_t counter_def = {
    .name = "counter",
    .state_size = sizeof(struct counter),
    .on_create = counter_create,
    .on_message = counter_message,
    .on_destroy = counter_destroy,
};

static xo_ref_t spawn_counter(xo_runtime_t *rt, xo_restart_t policy,
                              const char *uid, int arg,
                              void (*tune)(xo_spawn_opts_t *))
{
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.restart = policy;
    o.uid = uid;
    o.arg = &arg;
    o.arg_size = sizeof(arg);
    o.pool = 0;
    if (tune != NULL)
        tune(&o);
    xo_ref_t r;
    int rc = xo_spawn(rt, &counter_def, &o, &r);
    cr_assert_eq(rc, 0, "spawn: %s", xo_strerror(rc));
    return r;
}

static int get_count(xo_ref_t r, int *out)
{
    xo_future_t *f;
    int rc = xo_call(r, T_GET, NULL, 0, &f);
    if (rc != 0)
        return rc;
    rc = xo_future_wait(f, -1);
    xo_result_t res;
    if (rc == 0)
        rc = xo_future_result(f, 0, &res);
    if (rc == 0)
        memcpy(out, res.data, sizeof(*out));
    xo_future_release(f);
    return rc;
}

static uint64_t restarts_of(xo_ref_t r)
{
    xo_actor_stats_t st;
    cr_assert_eq(xo_actor_stats(r, &st), 0);
    return st.restarts;
}

Test(recovery, a_restart_keeps_ref_and_uid_zeroes_state_and_reruns_on_create_with_the_original_argument)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t r = spawn_counter(rt, XO_RESTART_ON_FAILURE, "ctr", 42, NULL);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(xo_tell(r, T_INC, NULL, 0), 0);
    int n = -1;
    cr_assert_eq(get_count(r, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(xo_tell(r, T_CRASH, NULL, 0), 0);
    cr_assert_eq(get_count(r, &n), 0, "the same ref still works");
    cr_assert_eq(n, 0, "the state is fresh");
    xo_ref_t found;
    cr_assert_eq(xo_lookup(rt, "ctr", &found), 0, "the uid is kept");
    cr_assert(xo_ref_eq(found, r), "and names the same actor");
    cr_assert_eq(restarts_of(r), 1);
    cr_assert_eq(atomic_load(&creates), 2);
    cr_assert_eq(create_args[0], 42);
    cr_assert_eq(create_args[1], 42, "on_create sees the original argument");
    cr_assert_eq(atomic_load(&destroys), 1,
                 "the failed incarnation's on_destroy ran");
    stop_runtime(rt);
    cr_assert_str_eq(order_log, "cdcd",
                     "create, its destroy, then the new one; its destroy "
                     "at stop");
}

Test(recovery, messages_queued_behind_the_crash_are_handled_in_order_by_the_new_incarnation)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t r = spawn_counter(rt, XO_RESTART_ON_FAILURE, NULL, 0, NULL);
    enum { N = 1000 };
    static xo_batch_item_t items[N + 1];
    static int seqs[N];
    items[0] = (xo_batch_item_t){ T_CRASH, NULL, 0 };
    for (int i = 0; i < N; i++) {
        seqs[i] = i;
        items[i + 1] = (xo_batch_item_t){ T_LOG, &seqs[i], sizeof(int) };
    }
    /* One push: every message is queued behind the crash before it runs. */
    cr_assert_eq(xo_tell_batch(r, items, N + 1), 0);
    int n;
    cr_assert_eq(get_count(r, &n), 0);
    cr_assert_eq(atomic_load(&log_len), N, "none lost");
    for (int i = 0; i < N; i++) {
        cr_assert_eq(log_seq[i], i, "in order");
        cr_assert_eq(log_inc[i], 1, "by the new incarnation");
    }
    stop_runtime(rt);
}

Test(recovery, the_caller_of_the_crashing_call_gets_its_code_and_message)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t r = spawn_counter(rt, XO_RESTART_ON_FAILURE, NULL, 0, NULL);
    cr_assert_eq(xo_tell(r, T_INC, NULL, 0), 0);
    xo_future_t *f;
    cr_assert_eq(xo_call(r, T_CRASH, NULL, 0, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t res;
    cr_assert_eq(xo_future_result(f, 0, &res), E_BOOM);
    cr_assert_str_eq(res.error, "boom 1");
    xo_future_release(f);
    /* A plain error reply is not a failure. */
    cr_assert_eq(xo_call(r, T_FAIL, NULL, 0, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    cr_assert_eq(xo_future_result(f, 0, &res), XO_EINVAL);
    xo_future_release(f);
    cr_assert_eq(restarts_of(r), 1, "an error reply restarts nothing");
    stop_runtime(rt);
}

/* ---- DOWN ------------------------------------------------------------- */

#define MAX_DOWNS 64
static atomic_int downs;
static xo_down_t down_seen[MAX_DOWNS];
static char down_text[MAX_DOWNS][128];
static uint32_t down_tag[MAX_DOWNS];

static int watcher_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    if (m->tag != XO_TAG_DOWN && m->tag != XO_TAG_EXIT)
        return 0;
    cr_assert_geq(m->size, sizeof(xo_down_t));
    const xo_down_t *d = m->data;
    cr_assert_eq(((const char *)m->data)[m->size - 1], '\0',
                 "the text is NUL-terminated within the payload");
    cr_assert(xo_ref_eq(m->sender, d->actor), "sent in the target's name");
    /* One watcher per test: fill the entry, then publish it (seq_cst:
       the test thread reads the count before the entry). */
    int i = atomic_load(&downs);
    if (i < MAX_DOWNS) {
        down_seen[i] = *d;
        down_tag[i] = m->tag;
        snprintf(down_text[i], sizeof(down_text[i]), "%s", d->message);
    }
    atomic_store(&downs, i + 1);
    return 0;
}

static const xo_actor_def_t watcher_def = {
    .name = "watcher", .on_message = watcher_message,
};

static void wait_downs(int n)
{
    while (atomic_load(&downs) < n)
        sleep_ms(1);
}

static void small_intensity(xo_spawn_opts_t *o)
{
    o->restart_max = 2;
    o->restart_period_ns = UINT64_C(60000000000);
}

Test(recovery, the_intensity_stops_a_crash_loop_frees_the_uid_and_tells_the_monitor)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t w = spawn_on(rt, &watcher_def, 0);
    xo_ref_t r = spawn_counter(rt, XO_RESTART_ON_FAILURE, "loop", 0,
                               small_intensity);
    xo_monitor_t mon;
    cr_assert_eq(xo_monitor(w, r, &mon), 0);
    cr_assert_neq(mon.id, 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(xo_tell(r, T_CRASH, NULL, 0), 0);
    wait_downs(1);
    cr_assert_eq(down_seen[0].reason, XO_EXIT_RESTART_INTENSITY);
    cr_assert_eq(down_seen[0].code, E_BOOM);
    cr_assert_str_eq(down_text[0], "boom 0", "the last failure's message");
    cr_assert_eq(down_seen[0].monitor, mon.id);
    cr_assert(xo_ref_eq(down_seen[0].actor, r));
    cr_assert_eq(xo_tell(r, T_INC, NULL, 0), XO_ENOTEXIST);
    xo_ref_t found;
    cr_assert_eq(xo_lookup(rt, "loop", &found), XO_ENOTEXIST,
                 "its uid is free again");
    cr_assert_eq(atomic_load(&creates), 3, "two restarts, then the end");
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&downs), 1, "DOWN exactly once");
}

Test(recovery, a_failing_restart_on_create_counts_against_the_intensity)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t w = spawn_on(rt, &watcher_def, 0);
    xo_ref_t r = spawn_counter(rt, XO_RESTART_ON_FAILURE, NULL, 0,
                               small_intensity);
    xo_monitor_t mon;
    cr_assert_eq(xo_monitor(w, r, &mon), 0);
    atomic_store(&create_fails_left, 1000);
    cr_assert_eq(xo_tell(r, T_CRASH, NULL, 0), 0);
    wait_downs(1);
    cr_assert_eq(down_seen[0].reason, XO_EXIT_RESTART_INTENSITY);
    cr_assert_eq(down_seen[0].code, E_BOOM);
    cr_assert_str_eq(down_text[0], "on_create refuses");
    cr_assert_eq(atomic_load(&creates), 3, "the first, then two retries");
    stop_runtime(rt);
}

static void with_backoff(xo_spawn_opts_t *o)
{
    o->backoff_min_ns = 50000000; /* 50 ms */
    o->backoff_max_ns = 100000000;
}

static atomic_long create_ns;

static int stamp_create(xo_ctx_t *ctx, void *state, const void *arg,
                        size_t size)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    atomic_store(&create_ns, (long)ts.tv_sec * 1000000000L + ts.tv_nsec);
    return counter_create(ctx, state, arg, size);
}

static const xo_actor_def_t stamped_def = {
    .name = "stamped",
    .state_size = sizeof(struct counter),
    .on_create = stamp_create,
    .on_message = counter_message,
    .on_destroy = counter_destroy,
};

Test(recovery, a_backoff_delays_the_restart_by_at_least_its_minimum_and_messages_wait)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.restart = XO_RESTART_ON_FAILURE;
    with_backoff(&o);
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &stamped_def, &o, &r), 0);
    cr_assert_eq(xo_tell(r, T_CRASH, NULL, 0), 0);
    cr_assert_eq(xo_tell(r, T_INC, NULL, 0), 0, "accepted during the wait");
    int n = -1;
    cr_assert_eq(get_count(r, &n), 0);
    cr_assert_eq(n, 1, "the message sent meanwhile reached the new one");
    long waited = atomic_load(&create_ns) - atomic_load(&crash_seen_ns);
    cr_assert_geq(waited, 50000000L, "restarted %ld ns after the crash",
                  waited);
    stop_runtime(rt);
}

static void hour_backoff(xo_spawn_opts_t *o)
{
    o->backoff_min_ns = UINT64_C(3600000000000);
}

Test(recovery, stop_does_not_wait_out_a_restart_backoff)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t r = spawn_counter(rt, XO_RESTART_ON_FAILURE, NULL, 0,
                               hour_backoff);
    cr_assert_eq(xo_tell(r, T_CRASH, NULL, 0), 0);
    while (atomic_load(&destroys) < 1) /* the failed incarnation went */
        sleep_ms(1);
    stop_runtime(rt); /* an hour's backoff would hang here */
    cr_assert_eq(atomic_load(&creates), 2, "restarted early, then ended");
    cr_assert_eq(atomic_load(&destroys), 2);
}

Test(recovery, removing_the_pool_does_not_wait_out_a_restart_backoff)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.restart = XO_RESTART_ON_FAILURE;
    hour_backoff(&o);
    o.pool = 1;
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &counter_def, &o, &r), 0);
    cr_assert_eq(xo_tell(r, T_CRASH, NULL, 0), 0);
    while (atomic_load(&destroys) < 1)
        sleep_ms(1);
    cr_assert_eq(xo_pool_remove(rt, 1), 0);
    cr_assert_eq(xo_tell(r, T_INC, NULL, 0), XO_ENOTEXIST);
    stop_runtime(rt);
}

static void crash_on_error(xo_spawn_opts_t *o)
{
    o->crash_on_error = true;
}

Test(recovery, crash_on_error_fails_the_actor_on_a_negative_return_and_without_it_the_actor_goes_on)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t plain = spawn_counter(rt, XO_RESTART_ON_FAILURE, NULL, 0, NULL);
    xo_ref_t strict = spawn_counter(rt, XO_RESTART_ON_FAILURE, NULL, 0,
                                    crash_on_error);
    cr_assert_eq(xo_tell(plain, T_INC, NULL, 0), 0);
    cr_assert_eq(xo_tell(strict, T_INC, NULL, 0), 0);
    cr_assert_eq(xo_tell(plain, T_FAIL, NULL, 0), 0);
    cr_assert_eq(xo_tell(strict, T_FAIL, NULL, 0), 0);
    int n;
    cr_assert_eq(get_count(plain, &n), 0);
    cr_assert_eq(n, 1, "an error return alone keeps the state");
    cr_assert_eq(get_count(strict, &n), 0);
    cr_assert_eq(n, 0, "with crash_on_error it restarts");
    cr_assert_eq(restarts_of(plain), 0);
    cr_assert_eq(restarts_of(strict), 1);
    stop_runtime(rt);
}

Test(recovery, a_crash_without_a_restart_policy_ends_the_actor_with_failed)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t w = spawn_on(rt, &watcher_def, 0);
    xo_ref_t r = spawn_counter(rt, XO_RESTART_NEVER, NULL, 0, NULL);
    xo_monitor_t mon;
    cr_assert_eq(xo_monitor(w, r, &mon), 0);
    xo_future_t *f;
    cr_assert_eq(xo_call(r, T_GATED_CRASH, NULL, 0, &f), 0);
    xo_future_t *g;
    cr_assert_eq(xo_call(r, T_INC, NULL, 0, &g), 0); /* queued behind */
    atomic_store(&gate, 1);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    cr_assert_eq(xo_future_wait(g, -1), 0);
    xo_result_t res;
    cr_assert_eq(xo_future_result(f, 0, &res), E_BOOM);
    cr_assert_eq(xo_future_result(g, 0, &res), XO_ENOTEXIST,
                 "a call queued behind is refused, not left pending");
    xo_future_release(f);
    xo_future_release(g);
    wait_downs(1);
    cr_assert_eq(down_seen[0].reason, XO_EXIT_FAILED);
    cr_assert_eq(down_seen[0].code, E_BOOM);
    cr_assert_str_eq(down_text[0], "boom 0");
    cr_assert_eq(atomic_load(&destroys), 1, "on_destroy ran once");
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&destroys), 1);
}

static atomic_int told_crash, told_dropped;

static void count_errors(xo_runtime_t *rt, xo_ref_t actor, uint32_t tag,
                         int err, void *user)
{
    (void)rt;
    (void)actor;
    (void)user;
    if (err == E_BOOM && tag == T_GATED_CRASH)
        atomic_fetch_add(&told_crash, 1);
    if (err == XO_ENOTEXIST && tag == T_INC)
        atomic_fetch_add(&told_dropped, 1);
}

Test(recovery, tells_queued_behind_a_fatal_failure_are_reported_as_refused)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 1;
    cfg.spin_ns = 5000;
    cfg.on_handler_error = count_errors;
    xo_runtime_t *rt;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), 0);
    xo_ref_t r = spawn_counter(rt, XO_RESTART_NEVER, NULL, 0, NULL);
    cr_assert_eq(xo_tell(r, T_GATED_CRASH, NULL, 0), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(xo_tell(r, T_INC, NULL, 0), 0);
    atomic_store(&gate, 1);
    while (atomic_load(&told_dropped) < 3)
        sleep_ms(1);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&told_crash), 1, "the crash itself");
    cr_assert_eq(atomic_load(&told_dropped), 3, "each tell behind it");
}

Test(recovery, always_restarts_an_actor_that_destroys_itself_and_on_failure_does_not)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t always = spawn_counter(rt, XO_RESTART_ALWAYS, "perm", 0, NULL);
    xo_ref_t transient = spawn_counter(rt, XO_RESTART_ON_FAILURE, NULL, 0,
                                       NULL);
    cr_assert_eq(xo_tell(always, T_INC, NULL, 0), 0);
    cr_assert_eq(xo_tell(always, T_SELF_DESTROY, NULL, 0), 0);
    /* Between its end and its restart it does not resolve. */
    xo_actor_stats_t st;
    while (xo_actor_stats(always, &st) != 0 || st.restarts != 1)
        sleep_ms(1);
    int n = -1;
    cr_assert_eq(get_count(always, &n), 0, "a permanent actor lives on");
    cr_assert_eq(n, 0, "as a new incarnation");
    cr_assert_eq(restarts_of(always), 1);
    xo_ref_t found;
    cr_assert_eq(xo_lookup(rt, "perm", &found), 0);
    cr_assert(xo_ref_eq(found, always));
    cr_assert_eq(xo_tell(transient, T_SELF_DESTROY, NULL, 0), 0);
    while (xo_ref_alive(transient))
        sleep_ms(1);
    cr_assert_eq(xo_tell(transient, T_INC, NULL, 0), XO_ENOTEXIST);
    /* Destroyed by another: no restart for either kind. */
    cr_assert_eq(xo_destroy(always), 0);
    cr_assert_eq(xo_tell(always, T_INC, NULL, 0), XO_ENOTEXIST);
    stop_runtime(rt);
}

/* ---- continuations of a past incarnation --------------------------------- */

static xo_request_t *held_request;
static atomic_int holder_has, then_ran;

static int holder_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    if (m->tag == 1) {
        held_request = xo_request_defer(m->request);
        atomic_store(&holder_has, 1);
        return 0;
    }
    /* tag 2, a call: answer the held one first. */
    xo_reply(held_request, 0, NULL, 0);
    return 0;
}

static const xo_actor_def_t holder_def = {
    .name = "holder", .on_message = holder_message,
};

static xo_ref_t holder_ref;

static int caller_then(xo_ctx_t *ctx, void *state, xo_future_t *f,
                       void *arg)
{
    (void)ctx;
    (void)state;
    (void)f;
    (void)arg;
    atomic_fetch_add(&then_ran, 1);
    return 0;
}

static int caller_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    if (m->tag == 1)
        return xo_call_then(ctx, holder_ref, 1, NULL, 0, -1, caller_then,
                            NULL);
    return counter_message(ctx, state, m);
}

static const xo_actor_def_t caller_def = {
    .name = "caller",
    .state_size = sizeof(struct counter),
    .on_create = counter_create,
    .on_message = caller_message,
};

Test(recovery, a_continuation_registered_by_a_past_incarnation_is_dropped)
{
    xo_runtime_t *rt = start_runtime(1);
    holder_ref = spawn_on(rt, &holder_def, 0);
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.restart = XO_RESTART_ON_FAILURE;
    xo_ref_t c;
    cr_assert_eq(xo_spawn(rt, &caller_def, &o, &c), 0);
    cr_assert_eq(xo_tell(c, 1, NULL, 0), 0);
    while (!atomic_load(&holder_has))
        sleep_ms(1);
    cr_assert_eq(xo_tell(c, T_CRASH, NULL, 0), 0);
    int n;
    cr_assert_eq(get_count(c, &n), 0);
    cr_assert_eq(restarts_of(c), 1);
    xo_future_t *f; /* the holder answers; the continuation is queued */
    cr_assert_eq(xo_call(holder_ref, 2, NULL, 0, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_future_release(f);
    cr_assert_eq(get_count(c, &n), 0); /* behind the continuation */
    cr_assert_eq(atomic_load(&then_ran), 0,
                 "the new incarnation does not run the old one's then");
    stop_runtime(rt);
}

/* ---- DOWN for every reason -------------------------------------------- */

Test(recovery, down_says_destroyed_and_comes_once)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t w = spawn_on(rt, &watcher_def, 0);
    xo_ref_t t = spawn_on(rt, &counting_def, 0);
    xo_monitor_t mon;
    cr_assert_eq(xo_monitor(w, t, &mon), 0);
    cr_assert_eq(xo_destroy(t), 0);
    wait_downs(1);
    cr_assert_eq(down_seen[0].reason, XO_EXIT_DESTROYED);
    cr_assert_eq(down_seen[0].code, 0);
    cr_assert_str_eq(down_text[0], "");
    cr_assert_eq(xo_demonitor(&mon), XO_ENOTEXIST, "handed over already");
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&downs), 1);
}

Test(recovery, monitoring_a_dead_ref_gives_down_no_such_actor_at_once)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t w = spawn_on(rt, &watcher_def, 0);
    xo_ref_t t = spawn_on(rt, &counting_def, 0);
    cr_assert_eq(xo_destroy(t), 0);
    xo_monitor_t mon;
    cr_assert_eq(xo_monitor(w, t, &mon), 0);
    wait_downs(1);
    cr_assert_eq(down_seen[0].reason, XO_EXIT_NO_SUCH_ACTOR);
    cr_assert_eq(down_seen[0].monitor, mon.id);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&downs), 1);
}

Test(recovery, down_says_pool_removed)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t w = spawn_on(rt, &watcher_def, 0);
    xo_ref_t t = spawn_on(rt, &counting_def, 1);
    xo_monitor_t mon;
    cr_assert_eq(xo_monitor(w, t, &mon), 0);
    cr_assert_eq(xo_pool_remove(rt, 1), 0);
    wait_downs(1);
    cr_assert_eq(down_seen[0].reason, XO_EXIT_POOL_REMOVED);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&downs), 1);
}

static atomic_int downs_at_destroy;

static int watcher_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    (void)state;
    atomic_store(&downs_at_destroy, atomic_load(&downs));
    return 0;
}

static const xo_actor_def_t ending_watcher_def = {
    .name = "ending watcher", .on_message = watcher_message,
    .on_destroy = watcher_destroy,
};

Test(recovery, down_says_runtime_stopping_before_the_watcher_ends)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t w = spawn_on(rt, &ending_watcher_def, 0);
    xo_ref_t t1 = spawn_on(rt, &counting_def, 1);
    xo_ref_t t2 = spawn_on(rt, &counting_def, 0);
    xo_monitor_t m1, m2;
    cr_assert_eq(xo_monitor(w, t1, &m1), 0);
    cr_assert_eq(xo_monitor(w, t2, &m2), 0);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&downs), 2, "one per monitor");
    cr_assert_eq(atomic_load(&downs_at_destroy), 2,
                 "both handled before the watcher's own end");
    cr_assert_eq(down_seen[0].reason, XO_EXIT_STOPPING);
    cr_assert_eq(down_seen[1].reason, XO_EXIT_STOPPING);
}

Test(recovery, down_says_node_lost_when_the_exit_point_says_so)
{
    /* The node layer ends the local stand-ins of a lost node's actors
       this way; here the exit is driven from the inside. */
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t w = spawn_on(rt, &watcher_def, 0);
    xo_ref_t t = spawn_on(rt, &counting_def, 0);
    xo_monitor_t mon;
    cr_assert_eq(xo_monitor(w, t, &mon), 0);
    xi_rcu_lock();
    struct xi_cell *c = xi_resolve(&rt->slots, t.id);
    cr_assert_not_null(c);
    cr_assert(xi_cell_unpublish(rt, c, XI_EXIT_NODE_LOST));
    xi_rcu_unlock(&rt->rcu_sync);
    wait_downs(1);
    cr_assert_eq(down_seen[0].reason, XO_EXIT_NODE_LOST);
    stop_runtime(rt);
}

Test(recovery, demonitor_stops_the_down_and_two_monitors_give_two)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t w = spawn_on(rt, &watcher_def, 0);
    xo_ref_t t = spawn_on(rt, &counting_def, 0);
    xo_monitor_t a, b, c;
    cr_assert_eq(xo_monitor(w, t, &a), 0);
    cr_assert_eq(xo_monitor(w, t, &b), 0);
    cr_assert_eq(xo_monitor(w, t, &c), 0);
    cr_assert_neq(a.id, b.id);
    cr_assert_eq(xo_demonitor(&b), 0);
    cr_assert_eq(xo_demonitor(&b), XO_ENOTEXIST, "removed already");
    cr_assert_eq(xo_destroy(t), 0);
    wait_downs(2);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&downs), 2);
    cr_assert_neq(down_seen[0].monitor, b.id);
    cr_assert_neq(down_seen[1].monitor, b.id);
    cr_assert_neq(down_seen[0].monitor, down_seen[1].monitor);
}

Test(recovery, a_restart_does_not_fire_a_monitor)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t w = spawn_on(rt, &watcher_def, 0);
    xo_ref_t r = spawn_counter(rt, XO_RESTART_ON_FAILURE, NULL, 0, NULL);
    xo_monitor_t mon;
    cr_assert_eq(xo_monitor(w, r, &mon), 0);
    cr_assert_eq(xo_tell(r, T_CRASH, NULL, 0), 0);
    int n;
    cr_assert_eq(get_count(r, &n), 0);
    cr_assert_eq(xo_destroy(r), 0);
    wait_downs(1);
    cr_assert_eq(down_seen[0].reason, XO_EXIT_DESTROYED,
                 "one DOWN, at its real end");
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&downs), 1);
}

/* ---- links --------------------------------------------------------------- */

Test(recovery, a_link_fails_the_peer_with_linked_actor_failed)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t w = spawn_on(rt, &watcher_def, 0);
    xo_ref_t a = spawn_counter(rt, XO_RESTART_NEVER, NULL, 0, NULL);
    xo_ref_t b = spawn_counter(rt, XO_RESTART_NEVER, NULL, 0, NULL);
    cr_assert_eq(xo_link(a, b), 0);
    cr_assert_eq(xo_link(b, a), 0, "linking twice is one link");
    xo_monitor_t mb;
    cr_assert_eq(xo_monitor(w, b, &mb), 0);
    cr_assert_eq(xo_tell(a, T_CRASH, NULL, 0), 0);
    wait_downs(1);
    cr_assert_eq(down_seen[0].reason, XO_EXIT_FAILED);
    cr_assert_eq(down_seen[0].code, XO_ELINKED);
    cr_assert_str_eq(down_text[0], "linked actor failed: boom 0");
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&downs), 1);
}

Test(recovery, a_trapped_link_delivers_exit_and_the_peer_lives_on)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.trap_exits = true;
    xo_ref_t trapper;
    cr_assert_eq(xo_spawn(rt, &watcher_def, &o, &trapper), 0);
    xo_ref_t a = spawn_counter(rt, XO_RESTART_NEVER, NULL, 0, NULL);
    cr_assert_eq(xo_link(a, trapper), 0);
    cr_assert_eq(xo_tell(a, T_CRASH, NULL, 0), 0);
    wait_downs(1);
    cr_assert_eq(down_tag[0], XO_TAG_EXIT);
    cr_assert(xo_ref_eq(down_seen[0].actor, a));
    cr_assert_eq(down_seen[0].reason, XO_EXIT_FAILED);
    cr_assert_eq(down_seen[0].code, E_BOOM);
    cr_assert_eq(down_seen[0].monitor, 0);
    cr_assert(xo_ref_alive(trapper));
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&downs), 1);
}

Test(recovery, a_normal_destroy_does_not_propagate_over_a_link)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t a = spawn_counter(rt, XO_RESTART_NEVER, NULL, 0, NULL);
    xo_ref_t b = spawn_counter(rt, XO_RESTART_NEVER, NULL, 0, NULL);
    cr_assert_eq(xo_link(a, b), 0);
    cr_assert_eq(xo_destroy(a), 0);
    int n;
    cr_assert_eq(get_count(b, &n), 0, "the peer lives");
    cr_assert_eq(xo_unlink(a, b), XO_ENOTEXIST, "the link went with it");
    stop_runtime(rt);
}

Test(recovery, unlink_stops_the_propagation)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t a = spawn_counter(rt, XO_RESTART_NEVER, NULL, 0, NULL);
    xo_ref_t b = spawn_counter(rt, XO_RESTART_NEVER, NULL, 0, NULL);
    cr_assert_eq(xo_link(a, b), 0);
    cr_assert_eq(xo_unlink(b, a), 0);
    cr_assert_eq(xo_tell(a, T_CRASH, NULL, 0), 0);
    while (xo_ref_alive(a))
        sleep_ms(1);
    int n;
    cr_assert_eq(get_count(b, &n), 0, "the peer lives");
    stop_runtime(rt);
}

Test(recovery, a_failure_travels_a_cycle_of_links_once_and_the_new_incarnations_start_unlinked)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t a = spawn_counter(rt, XO_RESTART_ON_FAILURE, NULL, 0, NULL);
    xo_ref_t b = spawn_counter(rt, XO_RESTART_ON_FAILURE, NULL, 0, NULL);
    xo_ref_t c = spawn_counter(rt, XO_RESTART_ON_FAILURE, NULL, 0, NULL);
    cr_assert_eq(xo_link(a, b), 0);
    cr_assert_eq(xo_link(b, c), 0);
    cr_assert_eq(xo_link(c, a), 0);
    cr_assert_eq(xo_tell(a, T_CRASH, NULL, 0), 0);
    while (restarts_of(a) + restarts_of(b) + restarts_of(c) < 3)
        sleep_ms(1);
    int n;
    cr_assert_eq(get_count(a, &n), 0);
    cr_assert_eq(get_count(b, &n), 0);
    cr_assert_eq(get_count(c, &n), 0);
    cr_assert_eq(restarts_of(a), 1);
    cr_assert_eq(restarts_of(b), 1);
    cr_assert_eq(restarts_of(c), 1);
    /* A second failure finds no links. */
    cr_assert_eq(xo_tell(a, T_CRASH, NULL, 0), 0);
    cr_assert_eq(get_count(a, &n), 0);
    cr_assert_eq(get_count(b, &n), 0);
    cr_assert_eq(get_count(c, &n), 0);
    cr_assert_eq(restarts_of(a), 2);
    cr_assert_eq(restarts_of(b), 1);
    cr_assert_eq(restarts_of(c), 1);
    stop_runtime(rt);
}

/* ---- bad input ---------------------------------------------------------- */

static int noop_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    (void)m;
    atomic_store(&then_ran, xo_crash(ctx, 0, "not a failure") == XO_EINVAL);
    return 0;
}

static const xo_actor_def_t stateless_def = {
    .name = "stateless", .flags = XO_ACTOR_STATELESS,
    .on_message = noop_message,
};

Test(recovery, bad_recovery_options_and_misuse_are_refused_with_einval)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_spawn_opts_t o;
    xo_ref_t r;
    xo_spawn_opts_init(&o);
    o.restart = XO_RESTART_ON_FAILURE;
    cr_assert_eq(xo_spawn(rt, &stateless_def, &o, &r), XO_EINVAL,
                 "a stateless actor has no state to restart");
    o.restart_max = 0;
    cr_assert_eq(xo_spawn(rt, &counter_def, &o, &r), XO_EINVAL);
    o.restart_max = XO_RESTART_MAX + 1;
    cr_assert_eq(xo_spawn(rt, &counter_def, &o, &r), XO_EINVAL);
    o.restart_max = 3;
    o.restart_period_ns = 0;
    cr_assert_eq(xo_spawn(rt, &counter_def, &o, &r), XO_EINVAL);
    xo_spawn_opts_init(&o);
    o.backoff_min_ns = 10;
    o.backoff_max_ns = 5;
    cr_assert_eq(xo_spawn(rt, &counter_def, &o, &r), XO_EINVAL);
    xo_spawn_opts_init(&o);
    o.backoff_jitter_pct = 101;
    cr_assert_eq(xo_spawn(rt, &counter_def, &o, &r), XO_EINVAL);
    xo_spawn_opts_init(&o);
    o.restart = (xo_restart_t)7;
    cr_assert_eq(xo_spawn(rt, &counter_def, &o, &r), XO_EINVAL);
    cr_assert_eq(xo_crash(NULL, E_BOOM, "x"), XO_EINVAL);

    xo_ref_t s;
    xo_spawn_opts_init(&o);
    cr_assert_eq(xo_spawn(rt, &stateless_def, &o, &s), 0);
    xo_ref_t a = spawn_counter(rt, XO_RESTART_NEVER, NULL, 0, NULL);
    xo_monitor_t mon;
    cr_assert_eq(xo_monitor(s, a, &mon), XO_EINVAL, "stateless watcher");
    cr_assert_eq(xo_monitor(a, a, NULL), XO_EINVAL);
    cr_assert_eq(xo_link(a, a), XO_EINVAL);
    cr_assert_eq(xo_link(a, s), XO_EINVAL);
    cr_assert_eq(xo_unlink(a, s), XO_ENOTEXIST);
    xo_monitor_t bogus = { a, 12345 };
    cr_assert_eq(xo_demonitor(&bogus), XO_ENOTEXIST);
    cr_assert_eq(xo_demonitor(NULL), XO_EINVAL);
    cr_assert_eq(xo_tell(s, 1, NULL, 0), 0);
    xo_runtime_t *other = start_runtime(1);
    xo_ref_t b = spawn_counter(other, XO_RESTART_NEVER, NULL, 0, NULL);
    cr_assert_eq(xo_link(a, b), XO_EINVAL, "refs of two runtimes");
    cr_assert_eq(xo_monitor(a, b, &mon), XO_EINVAL);
    stop_runtime(other);
    cr_assert_eq(xo_destroy(a), 0);
    cr_assert_eq(xo_link(a, a), XO_EINVAL);
    xo_ref_t c = spawn_counter(rt, XO_RESTART_NEVER, NULL, 0, NULL);
    cr_assert_eq(xo_link(a, c), XO_ENOTEXIST, "a gone actor");
    cr_assert_eq(xo_monitor(a, c, &mon), XO_ENOTEXIST, "a gone watcher");
    cr_assert_eq(xo_runtime_stop(rt), 0);
    cr_assert_eq(xo_monitor(c, c, &mon), XO_ECLOSED);
    cr_assert_eq(xo_link(c, a), XO_ECLOSED);
    xo_runtime_free(rt);
    cr_assert_eq(atomic_load(&then_ran), 1,
                 "xo_crash refuses a stateless handler and a code >= 0");
}

Test(recovery, the_reserved_tags_are_refused_to_senders)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t a = spawn_counter(rt, XO_RESTART_NEVER, NULL, 0, NULL);
    cr_assert_eq(xo_tell(a, XO_TAG_DOWN, NULL, 0), XO_EINVAL);
    cr_assert_eq(xo_tell(a, XO_TAG_RESERVED, NULL, 0), XO_EINVAL);
    cr_assert_eq(xo_tell(a, UINT32_MAX, NULL, 0), XO_EINVAL);
    xo_future_t *f;
    cr_assert_eq(xo_call(a, XO_TAG_EXIT, NULL, 0, &f), XO_EINVAL);
    xo_msg_t *m;
    cr_assert_eq(xo_msg_alloc(rt, XO_TAG_DOWN, 4, &m), XO_EINVAL);
    cr_assert_eq(xo_tell_after(a, 10, XO_TAG_DOWN, NULL, 0), XO_EINVAL);
    cr_assert_eq(xo_tell(a, XO_TAG_RESERVED - 1, NULL, 0), 0,
                 "the last user tag");
    stop_runtime(rt);
}

Test(recovery, a_crash_in_the_first_on_create_fails_the_spawn_with_its_code)
{
    xo_runtime_t *rt = start_runtime(1);
    atomic_store(&create_fails_left, 1);
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.restart = XO_RESTART_ALWAYS;
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &counter_def, &o, &r), E_BOOM,
                 "no restart before the actor ever started");
    cr_assert_eq(atomic_load(&creates), 1);
    stop_runtime(rt);
}

Test(recovery, exit_reasons_have_names)
{
    cr_assert_str_eq(xo_exit_reason_name(XO_EXIT_RESTART_INTENSITY),
                     "restart intensity reached");
    cr_assert_str_eq(xo_exit_reason_name(XO_EXIT_NO_SUCH_ACTOR),
                     "no such actor");
    cr_assert_str_eq(xo_exit_reason_name((xo_exit_reason_t)99),
                     "unknown exit reason");
    cr_assert_str_eq(xo_strerror(XO_ELINKED), "a linked actor failed");
}

/* ---- out of memory ------------------------------------------------------- */

/* Fail allocation k of op, k = 1, 2, ... until it succeeds with the hook
   still armed: each failure must be XO_ENOMEM. Returns how many failed. */
static int fail_each_allocation(xo_runtime_t *rt, int (*op)(void *),
                                void *arg)
{
    int failures = 0;
    for (long k = 1;; k++) {
        xi_mem_fail_after(&rt->mem, k);
        int rc = op(arg);
        xi_mem_fail_after(&rt->mem, 0);
        if (rc == 0)
            return failures;
        cr_assert_eq(rc, XO_ENOMEM, "allocation %ld: %s", k, xo_strerror(rc));
        failures++;
        cr_assert_lt(k, 20);
    }
}

struct pair {
    xo_ref_t a, b;
    xo_monitor_t mon;
};

static int monitor_op(void *arg)
{
    struct pair *p = arg;
    return xo_monitor(p->a, p->b, &p->mon);
}

static int link_op(void *arg)
{
    struct pair *p = arg;
    return xo_link(p->a, p->b);
}

Test(recovery, each_failed_allocation_of_monitor_and_link_gives_enomem_and_leaves_nothing)
{
    xo_runtime_t *rt = start_runtime(1);
    struct pair p = { spawn_on(rt, &watcher_def, 0),
                      spawn_on(rt, &counting_def, 0), { XO_REF_NONE, 0 } };
    cr_assert_geq(fail_each_allocation(rt, monitor_op, &p), 2,
                  "the monitor and its DOWN");
    cr_assert_geq(fail_each_allocation(rt, link_op, &p), 2,
                  "two link ends and their signals");
    cr_assert_eq(xo_unlink(p.a, p.b), 0, "the one that succeeded is there");
    cr_assert_eq(xo_unlink(p.a, p.b), XO_ENOTEXIST, "and only that one");
    cr_assert_eq(xo_destroy(p.b), 0);
    wait_downs(1);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&downs), 1, "the failed monitors left no DOWN");
}

static int restartable_spawn_op(void *arg)
{
    xo_runtime_t *rt = arg;
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.restart = XO_RESTART_ON_FAILURE;
    o.uid = "oom";
    int a = 7;
    o.arg = &a;
    o.arg_size = sizeof(a);
    xo_ref_t r;
    return xo_spawn(rt, &counter_def, &o, &r);
}

Test(recovery, a_restartable_spawn_out_of_memory_gives_enomem_and_the_one_made_restarts)
{
    xo_runtime_t *rt = start_runtime(1);
    cr_assert_geq(fail_each_allocation(rt, restartable_spawn_op, rt), 2);
    xo_ref_t r;
    cr_assert_eq(xo_lookup(rt, "oom", &r), 0);
    cr_assert_eq(xo_tell(r, T_CRASH, NULL, 0), 0);
    int n;
    cr_assert_eq(get_count(r, &n), 0);
    cr_assert_eq(restarts_of(r), 1);
    cr_assert_eq(create_args[atomic_load(&creates) - 1], 7,
                 "its kept argument survived the failed attempts");
    stop_runtime(rt);
}

/* ---- ends that must not be kept waiting or undone ------------------------- */

static int crashing_destroy(xo_ctx_t *ctx, void *state)
{
    (void)state;
    atomic_fetch_add(&destroys, 1);
    return xo_crash(ctx, E_BOOM, "crash in on_destroy");
}

static const xo_actor_def_t crashing_destroy_def = {
    .name = "crashes in on_destroy",
    .state_size = sizeof(struct counter),
    .on_message = counter_message,
    .on_destroy = crashing_destroy,
};

Test(recovery, a_crash_in_on_destroy_does_not_keep_the_actor)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t r = spawn_on(rt, &crashing_destroy_def, 0);
    cr_assert_eq(xo_destroy(r), 0, "the destroy is not refused");
    cr_assert_not(xo_ref_alive(r));
    cr_assert_eq(atomic_load(&destroys), 1);
    stop_runtime(rt);
}

static int refusing_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    (void)state;
    return atomic_fetch_add(&destroys, 1) == 0 ? XO_EINVAL : 0;
}

static const xo_actor_def_t refusing_def = {
    .name = "refuses its first destroy",
    .state_size = sizeof(struct counter),
    .on_create = counter_create,
    .on_message = counter_message,
    .on_destroy = refusing_destroy,
};

Test(recovery, a_destroy_from_outside_after_a_refused_self_destroy_ends_a_permanent_actor)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.restart = XO_RESTART_ALWAYS;
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &refusing_def, &o, &r), 0);
    cr_assert_eq(xo_tell(r, T_SELF_DESTROY, NULL, 0), 0);
    while (atomic_load(&destroys) < 1)
        sleep_ms(1);
    int n;
    while (get_count(r, &n) != 0) /* revived after the refusal */
        sleep_ms(1);
    cr_assert_eq(xo_destroy(r), 0, "returns, and ends it");
    cr_assert_not(xo_ref_alive(r));
    cr_assert_eq(atomic_load(&creates), 1, "never restarted");
    stop_runtime(rt);
}

static void hour_backoff_few_restarts(xo_spawn_opts_t *o)
{
    o->backoff_min_ns = UINT64_C(3600000000000);
    o->restart_max = 5;
}

Test(recovery, stop_cuts_short_every_backoff_of_a_crash_loop_not_only_the_first)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t r = spawn_counter(rt, XO_RESTART_ON_FAILURE, NULL, 0,
                               hour_backoff_few_restarts);
    atomic_store(&create_fails_left, 1000); /* each restart fails again */
    cr_assert_eq(xo_tell(r, T_CRASH, NULL, 0), 0);
    while (atomic_load(&destroys) < 1)
        sleep_ms(1);
    stop_runtime(rt); /* each new backoff is an hour: a hang here */
    cr_assert_eq(atomic_load(&creates), 1 + 5,
                 "the retries ran at once, up to the intensity");
}

Test(recovery, destroying_an_actor_that_waits_out_a_backoff_does_not_wait)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t r = spawn_counter(rt, XO_RESTART_ON_FAILURE, NULL, 0,
                               hour_backoff);
    cr_assert_eq(xo_tell(r, T_CRASH, NULL, 0), 0);
    while (atomic_load(&destroys) < 1)
        sleep_ms(1);
    cr_assert_eq(xo_destroy(r), 0); /* an hour's backoff would hang here */
    cr_assert_not(xo_ref_alive(r));
    stop_runtime(rt);
}
