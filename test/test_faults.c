/*
 * Exact accounting under random faults: a hundred restartable actors take
 * messages from outside threads (tells and calls) and from sender actors,
 * and one handler in a hundred crashes its actor. Every message must be
 * handled exactly once by some incarnation, or be the one that crashed,
 * with its sender told (a call's error reply; a tell's report to
 * cfg.on_handler_error); none lost, none twice, each sender's order kept,
 * and one restart per crash.
 * 10^6 messages in all three builds (a few seconds under ThreadSanitizer on
 * two cores).
 */
#include "support.h"

#include <stdlib.h>

#define TOTAL 1000000L

#define ACTORS 100
#define TELL_THREADS 2
#define SENDER_ACTORS 4
#define SENDERS (TELL_THREADS + 1 + SENDER_ACTORS) /* + the caller thread */
#define CALLER (TELL_THREADS)
#define CHUNK 1000
#define WINDOW 128

enum { T_TELL = 1, T_CALL, T_GO };
#define E_FAULT (-7100)

struct item {
    uint32_t sender, seq;
};

static xo_ref_t targets[ACTORS];
/* Written by the target's worker only (its handler), read after stop. */
static uint32_t expect[ACTORS][SENDERS];
static uint64_t handled[ACTORS][SENDERS], crashed[ACTORS][SENDERS];
static atomic_long disorder, settled, told_tells, told_calls, caller_errors;
/* Written by each sender only. */
static uint32_t sent[SENDERS][ACTORS];

static bool faulty(uint32_t sender, uint32_t target, uint32_t seq)
{
    uint64_t h = ((uint64_t)sender << 40) ^ ((uint64_t)target << 20) ^ seq;
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return h % 100 == 0;
}

struct target_state {
    uint32_t index;
};

static int target_create(xo_ctx_t *ctx, void *state, const void *arg,
                         size_t size)
{
    (void)ctx;
    cr_assert_eq(size, sizeof(uint32_t));
    ((struct target_state *)state)->index = *(const uint32_t *)arg;
    return 0;
}

static int target_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    uint32_t t = ((struct target_state *)state)->index;
    const struct item *it = m->data;
    if (it->seq != expect[t][it->sender])
        atomic_fetch_add(&disorder, 1);
    expect[t][it->sender] = it->seq + 1;
    atomic_fetch_add_explicit(&settled, 1, memory_order_relaxed);
    if (faulty(it->sender, t, it->seq)) {
        crashed[t][it->sender]++;
        return xo_crash(ctx, E_FAULT, "fault at %u", it->seq);
    }
    handled[t][it->sender]++;
    return 0;
}

static const xo_actor_def_t target_def = {
    .name = "target",
    .state_size = sizeof(struct target_state),
    .on_create = target_create,
    .on_message = target_message,
};

static void on_error(xo_runtime_t *rt, xo_ref_t actor, uint32_t tag, int err,
                     void *user)
{
    (void)rt;
    (void)actor;
    (void)user;
    if (err != E_FAULT)
        return;
    atomic_fetch_add(tag == T_TELL ? &told_tells : &told_calls, 1);
}

/* A random target's next message from `sender`. */
static int send_one(uint32_t sender, unsigned *rng, uint32_t tag,
                    xo_future_t **f)
{
    uint32_t t = (uint32_t)(rand_r(rng) % ACTORS);
    struct item it = { sender, sent[sender][t]++ };
    if (tag == T_CALL)
        return xo_call(targets[t], tag, &it, sizeof(it), f);
    return xo_tell(targets[t], tag, &it, sizeof(it));
}

struct sender_state {
    uint32_t index;
    unsigned rng;
};

static int sender_create(xo_ctx_t *ctx, void *state, const void *arg,
                         size_t size)
{
    (void)ctx;
    (void)size;
    struct sender_state *s = state;
    s->index = *(const uint32_t *)arg;
    s->rng = s->index * 7919u + 1;
    return 0;
}

static atomic_long actor_sends_left;

/* Each GO is a chunk of tells; the actor tells itself to go on, so its
   worker serves the targets in between. */
static int sender_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct sender_state *s = state;
    long left = *(const long *)m->data;
    long n = left < CHUNK ? left : CHUNK;
    for (long i = 0; i < n; i++)
        cr_assert_eq(send_one(s->index, &s->rng, T_TELL, NULL), 0);
    atomic_fetch_sub(&actor_sends_left, n);
    left -= n;
    if (left > 0)
        cr_assert_eq(xo_tell(xo_self(ctx), T_GO, &left, sizeof(left)), 0);
    return 0;
}

static const xo_actor_def_t sender_def = {
    .name = "sender",
    .state_size = sizeof(struct sender_state),
    .on_create = sender_create,
    .on_message = sender_message,
};

#define TELL_SHARE (TOTAL * 3 / 10)
#define CALL_SHARE (TOTAL / 10)
#define ACTOR_SHARE ((TOTAL - TELL_THREADS * TELL_SHARE - CALL_SHARE) / \
                     SENDER_ACTORS)

static void *tell_thread(void *arg)
{
    uint32_t sender = (uint32_t)(uintptr_t)arg;
    unsigned rng = sender + 17;
    for (long i = 0; i < TELL_SHARE; i++)
        cr_assert_eq(send_one(sender, &rng, T_TELL, NULL), 0);
    return NULL;
}

static void settle(xo_future_t *f)
{
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t r;
    int rc = xo_future_result(f, 0, &r);
    if (rc == E_FAULT)
        atomic_fetch_add(&caller_errors, 1);
    else
        cr_assert_eq(rc, 0, "a call either succeeds or was the crash");
    xo_future_release(f);
}

static void *call_thread(void *arg)
{
    (void)arg;
    unsigned rng = 4242;
    static xo_future_t *window[WINDOW];
    for (long i = 0; i < CALL_SHARE; i++) {
        long slot = i % WINDOW;
        if (i >= WINDOW)
            settle(window[slot]);
        cr_assert_eq(send_one(CALLER, &rng, T_CALL, &window[slot]), 0);
    }
    for (long i = CALL_SHARE > WINDOW ? CALL_SHARE - WINDOW : 0;
         i < CALL_SHARE; i++)
        settle(window[i % WINDOW]);
    return NULL;
}

Test(faults, every_message_is_handled_once_or_is_the_crash_its_sender_was_told_of)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 2;
    cfg.spin_ns = 5000;
    cfg.on_handler_error = on_error;
    xo_runtime_t *rt;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), 0);
    for (uint32_t i = 0; i < ACTORS; i++) {
        xo_spawn_opts_t o;
        xo_spawn_opts_init(&o);
        o.restart = XO_RESTART_ON_FAILURE;
        o.restart_max = XO_RESTART_MAX; /* faults, not a crash loop */
        o.restart_period_ns = 1;
        o.arg = &i;
        o.arg_size = sizeof(i);
        cr_assert_eq(xo_spawn(rt, &target_def, &o, &targets[i]), 0);
    }
    xo_ref_t senders[SENDER_ACTORS];
    atomic_store(&actor_sends_left, (long)ACTOR_SHARE * SENDER_ACTORS);
    for (uint32_t i = 0; i < SENDER_ACTORS; i++) {
        xo_spawn_opts_t o;
        xo_spawn_opts_init(&o);
        uint32_t index = CALLER + 1 + i;
        o.arg = &index;
        o.arg_size = sizeof(index);
        cr_assert_eq(xo_spawn(rt, &sender_def, &o, &senders[i]), 0);
    }
    pthread_t th[TELL_THREADS + 1];
    for (uintptr_t i = 0; i < TELL_THREADS; i++)
        pthread_create(&th[i], NULL, tell_thread, (void *)i);
    pthread_create(&th[TELL_THREADS], NULL, call_thread, NULL);
    for (int i = 0; i < SENDER_ACTORS; i++) {
        long n = ACTOR_SHARE;
        cr_assert_eq(xo_tell(senders[i], T_GO, &n, sizeof(n)), 0);
    }
    for (int i = 0; i <= TELL_THREADS; i++)
        pthread_join(th[i], NULL);
    while (atomic_load(&actor_sends_left) > 0)
        sleep_ms(1);
    long total = TELL_THREADS * TELL_SHARE + CALL_SHARE +
                 ACTOR_SHARE * SENDER_ACTORS;
    while (atomic_load(&settled) < total)
        sleep_ms(1);
    uint64_t restarts = 0;
    for (int i = 0; i < ACTORS; i++) {
        xo_actor_stats_t st;
        cr_assert_eq(xo_actor_stats(targets[i], &st), 0);
        restarts += st.restarts;
    }
    stop_runtime(rt);

    cr_assert_eq(atomic_load(&disorder), 0, "each sender's order kept");
    cr_assert_eq(atomic_load(&settled), total, "nothing handled twice");
    uint64_t crashes = 0, tell_crashes = 0, call_crashes = 0;
    for (int t = 0; t < ACTORS; t++) {
        for (int s = 0; s < SENDERS; s++) {
            cr_assert_eq(expect[t][s], sent[s][t],
                         "every message of sender %d to %d arrived", s, t);
            cr_assert_eq(handled[t][s] + crashed[t][s], sent[s][t]);
            crashes += crashed[t][s];
            if (s == CALLER)
                call_crashes += crashed[t][s];
            else
                tell_crashes += crashed[t][s];
        }
    }
    cr_assert_gt(crashes, (uint64_t)total / 200, "faults happened: %lu",
                 (unsigned long)crashes);
    cr_assert_eq(restarts, crashes, "one restart per crash");
    cr_assert_eq((uint64_t)atomic_load(&told_tells), tell_crashes,
                 "every crashed tell was reported");
    cr_assert_eq((uint64_t)atomic_load(&caller_errors), call_crashes,
                 "every crashed call's caller got the error");
    cr_assert_eq((uint64_t)atomic_load(&told_calls), call_crashes);
}
