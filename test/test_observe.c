/*
 * Suite observe: the stats (per actor, per pool, per runtime), the
 * snapshot walk, the watchdog's alerts (each kind, their multiples, their
 * counts, thresholds of 0), the dump, and what a failed allocation of the
 * observability code leaves. Handlers that are slow on purpose sleep; the
 * only times asserted are lower bounds of those deliberate delays.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"

enum { WORK = 1, FAIL, SLEEP, HOLD, CALL_ON, WAIT_CALL };

/* ---- alerts collected -------------------------------------------------- */

#define MAX_ALERTS 256

static pthread_mutex_t alerts_lock = PTHREAD_MUTEX_INITIALIZER;
static xo_alert_t alerts[MAX_ALERTS];
static char alert_uids[MAX_ALERTS][64];
static int nalerts;

static void collect(xo_runtime_t *rt, const xo_alert_t *a, void *user)
{
    (void)rt;
    (void)user;
    pthread_mutex_lock(&alerts_lock);
    if (nalerts < MAX_ALERTS) {
        alerts[nalerts] = *a;
        alert_uids[nalerts][0] = '\0';
        if (a->uid != NULL)
            snprintf(alert_uids[nalerts], sizeof(alert_uids[0]), "%s",
                     a->uid);
        nalerts++;
    }
    pthread_mutex_unlock(&alerts_lock);
}

static int count_kind(xo_alert_kind_t kind)
{
    pthread_mutex_lock(&alerts_lock);
    int n = 0;
    for (int i = 0; i < nalerts; i++)
        n += alerts[i].kind == kind;
    pthread_mutex_unlock(&alerts_lock);
    return n;
}

/* Until `n` alerts of `kind` came (a hang fails by ctest's timeout). */
static void wait_alerts(xo_alert_kind_t kind, int n)
{
    while (count_kind(kind) < n)
        sleep_ms(2);
}

static void reset_alerts(void)
{
    pthread_mutex_lock(&alerts_lock);
    nalerts = 0;
    pthread_mutex_unlock(&alerts_lock);
}

/* A config whose watchdog looks often, every alert off unless set. */
static void quiet_config(xo_config_t *cfg, unsigned pools)
{
    xo_config_init(cfg);
    cfg->pools = pools;
    cfg->spin_ns = 5000;
    cfg->watch_tick_ns = 2000000; /* 2 ms: actor scans every 20 ms */
    cfg->slow_handler_ns = 0;
    cfg->stuck_turn_ns = 0;
    cfg->slow_call_ns = 0;
    cfg->mailbox_depth_alert = 0;
    cfg->mailbox_age_ns = 0;
    cfg->on_alert = collect;
    reset_alerts();
}

static xo_runtime_t *start_with(const xo_config_t *cfg)
{
    xo_runtime_t *rt = NULL;
    int rc = xo_runtime_start(cfg, &rt);
    cr_assert_eq(rc, 0, "xo_runtime_start: %s", xo_strerror(rc));
    return rt;
}

/* ---- actors ------------------------------------------------------------- */

static atomic_int gate_open;   /* HOLD handlers spin until it is set */
static atomic_int holding;     /* a HOLD handler is spinning */
static atomic_long worked;

struct peer {
    xo_ref_t next; /* CALL_ON: whom to call and wait for */
};

/* What a CALL_ON without a payload asks of the next actor: SLEEP (300 ms)
   or HOLD (until the gate opens). */
static atomic_int inner_call = SLEEP;

static int obs_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct peer *p = state;
    switch (m->tag) {
    case WORK:
        atomic_fetch_add(&worked, 1);
        return 0;
    case FAIL:
        return xo_fail(ctx, XO_EINVAL, "asked to fail");
    case SLEEP: {
        unsigned ms = 0;
        if (m->size == sizeof(ms))
            memcpy(&ms, m->data, sizeof(ms));
        sleep_ms(ms);
        return 0;
    }
    case HOLD:
        atomic_store(&holding, 1);
        while (!atomic_load(&gate_open))
            sleep_ms(1);
        atomic_store(&holding, 0);
        return 0;
    case CALL_ON: { /* call p->next with SLEEP/CALL_ON and wait */
        xo_future_t *f;
        uint32_t tag = m->size == sizeof(uint32_t) ? *(const uint32_t *)m->data
                                                  : (uint32_t)atomic_load(
                                                        &inner_call);
        unsigned ms = 300;
        int rc = tag == SLEEP ? xo_call(p->next, SLEEP, &ms, sizeof(ms), &f)
                 : tag == HOLD ? xo_call(p->next, HOLD, NULL, 0, &f)
                               : xo_call(p->next, CALL_ON, NULL, 0, &f);
        if (rc != 0)
            return rc;
        rc = xo_future_wait(f, -1);
        xo_future_release(f);
        return rc;
    }
    }
    return 0;
}

static int obs_create(xo_ctx_t *ctx, void *state, const void *arg,
                      size_t size)
{
    (void)ctx;
    if (size == sizeof(xo_ref_t))
        memcpy(&((struct peer *)state)->next, arg, size);
    return 0;
}

static const xo_actor_def_t obs_def = {
    .name = "observed",
    .state_size = sizeof(struct peer),
    .on_create = obs_create,
    .on_message = obs_message,
};

static const xo_actor_def_t unnamed_def = {
    .name = NULL,
    .on_message = obs_message,
};

static xo_ref_t spawn_obs(xo_runtime_t *rt, int pool, const char *uid,
                          const xo_ref_t *next)
{
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.pool = pool;
    o.uid = uid;
    if (next != NULL) {
        o.arg = next;
        o.arg_size = sizeof(*next);
    }
    xo_ref_t r;
    int rc = xo_spawn(rt, &obs_def, &o, &r);
    cr_assert_eq(rc, 0, "spawn: %s", xo_strerror(rc));
    return r;
}

static void tell_sleep(xo_ref_t r, unsigned ms)
{
    cr_assert_eq(xo_tell(r, SLEEP, &ms, sizeof(ms)), 0);
}

static void hold(xo_ref_t r)
{
    atomic_store(&gate_open, 0);
    cr_assert_eq(xo_tell(r, HOLD, NULL, 0), 0);
    while (!atomic_load(&holding))
        sleep_ms(1);
}

static void release_hold(void)
{
    atomic_store(&gate_open, 1);
}

/* ---- stats ----------------------------------------------------------------- */

Test(observe, actor_stats_count_handled_and_failed_messages)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t r = spawn_obs(rt, 1, NULL, NULL);
    for (int i = 0; i < 30; i++)
        cr_assert_eq(xo_tell(r, i % 3 == 0 ? FAIL : WORK, NULL, 0), 0);
    wait_handled(r, 30);
    xo_actor_stats_t st;
    cr_assert_eq(xo_actor_stats(r, &st), 0);
    cr_assert_eq(st.handled, 30);
    cr_assert_eq(st.failed, 10, "every third tell failed");
    cr_assert_eq(st.pool, 1);
    cr_assert_not(st.stateless);
    cr_assert_eq(st.mailbox_depth, 0, "drained");
    stop_runtime(rt);
}

Test(observe, mailbox_depth_counts_what_waits_behind_a_busy_handler)
{
    xo_config_t cfg;
    quiet_config(&cfg, 2);
    cfg.watch_tick_ns = 0; /* only the turns note the deepest mailbox */
    xo_runtime_t *rt = start_with(&cfg);
    xo_ref_t r = spawn_obs(rt, 1, NULL, NULL);
    hold(r);
    enum { QUEUED = 500 };
    for (int i = 0; i < QUEUED; i++)
        cr_assert_eq(xo_tell(r, WORK, NULL, 0), 0);
    xo_actor_stats_t st;
    cr_assert_eq(xo_actor_stats(r, &st), 0);
    /* The HOLD message being handled counts until its handler returns. */
    cr_assert_eq(st.mailbox_depth, QUEUED + 1, "one sender: exact");
    cr_assert_eq(st.mailbox_high, QUEUED + 1, "now is the deepest yet");
    release_hold();
    wait_handled(r, QUEUED + 1);
    cr_assert_eq(xo_actor_stats(r, &st), 0);
    cr_assert_eq(st.mailbox_depth, 0);
    /* The turn after the hold ended with a backlog (batch 64 of 500):
       it noted the depth it left. */
    cr_assert_geq(st.mailbox_high, QUEUED - 64, "high water %llu",
                  (unsigned long long)st.mailbox_high);
    cr_assert_leq(st.mailbox_high, QUEUED + 1);
    stop_runtime(rt);
}

Test(observe, pool_info_queued_says_work_waits_not_that_a_turn_runs)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t held = spawn_obs(rt, 1, NULL, NULL);
    xo_ref_t other = spawn_obs(rt, 1, NULL, NULL);
    hold(held); /* pool 1's worker runs a turn; nothing else is queued */
    xo_pool_info_t pi;
    cr_assert_eq(xo_pool_info(rt, 1, &pi), 0);
    cr_assert(!pi.parked, "its worker runs a turn");
    cr_assert(!pi.queued, "a running turn is not queued work");
    cr_assert_eq(xo_tell(other, WORK, NULL, 0), 0); /* queued behind it */
    cr_assert_eq(xo_pool_info(rt, 1, &pi), 0);
    cr_assert(pi.queued, "an actor waits in its run queue");
    release_hold();
    wait_handled(other, 1);
    stop_runtime(rt);
}

Test(observe, mailbox_depth_of_a_bounded_mailbox_is_its_queued_count)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.pool = 1;
    o.capacity = 100;
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &obs_def, &o, &r), 0);
    hold(r);
    for (int i = 0; i < 40; i++)
        cr_assert_eq(xo_tell(r, WORK, NULL, 0), 0);
    xo_actor_stats_t st;
    cr_assert_eq(xo_actor_stats(r, &st), 0);
    cr_assert_eq(st.mailbox_depth, 41, "the 40 and the HOLD in hand");
    release_hold();
    stop_runtime(rt);
}

Test(observe, every_turn_sampled_puts_every_handler_run_in_the_histogram)
{
    xo_config_t cfg;
    quiet_config(&cfg, 2);
    cfg.handler_sample = 1;
    xo_runtime_t *rt = start_with(&cfg);
    xo_ref_t r = spawn_obs(rt, 1, NULL, NULL);
    for (int i = 0; i < 5; i++)
        tell_sleep(r, 2);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(xo_tell(r, WORK, NULL, 0), 0);
    wait_handled(r, 105);
    xo_actor_stats_t st;
    cr_assert_eq(xo_actor_stats(r, &st), 0);
    cr_assert_eq(st.handler_samples, 105, "each run timed");
    uint64_t total = 0, slow = 0;
    for (unsigned b = 0; b < XO_HIST_BUCKETS; b++) {
        total += st.handler_hist[b];
        if (xo_hist_upper_ns(b) > 2000000)
            slow += st.handler_hist[b];
    }
    cr_assert_eq(total, 105, "the buckets add up to the samples");
    cr_assert_geq(slow, 5, "the five 2 ms sleeps land at 2 ms or above");
    cr_assert_geq(st.handler_sum_ns, 5 * 2000000ull, "at least the sleeps");
    cr_assert_geq(xo_hist_quantile_ns(st.handler_hist, 1.0), 2000000);
    stop_runtime(rt);
}

/* A token ring on one worker: each actor passes the count on, the last
   hop sets ring_done. */
static atomic_int ring_done;

enum { RING_NEXT = 900 }; /* data: the next actor's ref */

static int ring_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    if (m->tag == RING_NEXT) {
        memcpy(&((struct peer *)state)->next, m->data, sizeof(xo_ref_t));
        return 0;
    }
    uint64_t left;
    memcpy(&left, m->data, sizeof(left));
    if (left == 0) {
        atomic_store(&ring_done, 1);
        return 0;
    }
    left--;
    return xo_tell(((struct peer *)state)->next, WORK, &left, sizeof(left));
}

static const xo_actor_def_t ring_def = {
    .name = "ring",
    .state_size = sizeof(struct peer),
    .on_create = obs_create,
    .on_message = ring_message,
};

Test(observe, sampling_reaches_every_actor_of_a_ring_whose_size_is_a_multiple_of_the_sample_period)
{
    /* 256 actors on one worker take their turns in a fixed order: timing
       every 64th turn would time only 4 of them. The gaps are random, so
       after 1000 laps each actor has been timed with all but certainty
       ((63/64)^1000 < 1e-6 per actor). */
    enum { RING = 256, LAPS = 1000 };
    xo_config_t cfg;
    quiet_config(&cfg, 1);
    cfg.handler_sample = 64;
    xo_runtime_t *rt = start_with(&cfg);
    xo_ref_t refs[RING];
    for (int i = RING - 1; i >= 0; i--) {
        xo_spawn_opts_t o;
        xo_spawn_opts_init(&o);
        o.pool = 0;
        o.arg = i == RING - 1 ? NULL : &refs[i + 1];
        o.arg_size = i == RING - 1 ? 0 : sizeof(xo_ref_t);
        cr_assert_eq(xo_spawn(rt, &ring_def, &o, &refs[i]), 0);
    }
    /* Close the ring: the last one's next is the first (this thread's
       messages arrive in order, so before the token reaches it). */
    cr_assert_eq(xo_tell(refs[RING - 1], RING_NEXT, &refs[0], sizeof(xo_ref_t)),
                 0);
    atomic_store(&ring_done, 0);
    uint64_t hops = (uint64_t)RING * LAPS;
    cr_assert_eq(xo_tell(refs[0], WORK, &hops, sizeof(hops)), 0);
    while (!atomic_load(&ring_done))
        sleep_ms(1);
    for (int i = 0; i < RING; i++) {
        xo_actor_stats_t st;
        cr_assert_eq(xo_actor_stats(refs[i], &st), 0);
        cr_assert_gt(st.handler_samples, 0, "actor %d of the ring never timed",
                     i);
    }
    stop_runtime(rt);
}

Test(observe, a_sampled_turn_times_only_its_first_handler_run)
{
    /* 641 messages handled in turns of at most 64: with handler_sample 2,
       about every other turn is timed, one run each, so the samples are
       at most the turns the pool ran, where timing whole turns would give
       up to 64 a turn. */
    xo_config_t cfg;
    quiet_config(&cfg, 2);
    cfg.handler_sample = 2;
    xo_runtime_t *rt = start_with(&cfg);
    xo_ref_t r = spawn_obs(rt, 1, NULL, NULL);
    hold(r);
    for (int i = 0; i < 640; i++)
        cr_assert_eq(xo_tell(r, WORK, NULL, 0), 0);
    xo_pool_info_t before, after;
    cr_assert_eq(xo_pool_info(rt, 1, &before), 0);
    release_hold();
    wait_handled(r, 641);
    cr_assert_eq(xo_pool_info(rt, 1, &after), 0);
    xo_actor_stats_t st;
    cr_assert_eq(xo_actor_stats(r, &st), 0);
    uint64_t turns = after.turns - before.turns + 1; /* + the HOLD's turn */
    cr_assert_gt(st.handler_samples, 0, "some turn was timed");
    cr_assert_leq(st.handler_samples, turns,
                  "%llu samples in %llu turns: one run a timed turn",
                  (unsigned long long)st.handler_samples,
                  (unsigned long long)turns);
    stop_runtime(rt);
}

/* A stateless actor's tasks run on both workers at once, each timed
   (handler_sample 1): its counts and its histogram are added to from the
   two at once and must lose nothing (a stateful actor's, one turn at a
   time, are added to without a lock). */
static const xo_actor_def_t obs_stateless_def = {
    .name = "observed-stateless",
    .flags = XO_ACTOR_STATELESS,
    .on_message = obs_message,
};

Test(observe, stateless_tasks_on_two_workers_at_once_lose_no_count_or_sample)
{
    xo_config_t cfg;
    quiet_config(&cfg, 2);
    cfg.handler_sample = 1;
    xo_runtime_t *rt = start_with(&cfg);
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &obs_stateless_def, NULL, &r), 0);
    enum { TASKS = 4000, FAILS = 400 };
    for (int i = 0; i < TASKS; i++)
        cr_assert_eq(xo_tell(r, i % 10 == 0 ? FAIL : WORK, NULL, 0), 0);
    /* A task counts as handled before its time is added: wait for both
       (a lost count never comes; 30 s is the give-up, not a bound). */
    xo_actor_stats_t st;
    for (int i = 0;; i++) {
        cr_assert_eq(xo_actor_stats(r, &st), 0);
        if ((st.handled >= TASKS && st.handler_samples >= TASKS) ||
            i == 30000)
            break;
        sleep_ms(1);
    }
    cr_assert_eq(st.handled, TASKS, "every task counted once: %llu",
                 (unsigned long long)st.handled);
    cr_assert_eq(st.failed, FAILS, "every failure counted once: %llu",
                 (unsigned long long)st.failed);
    cr_assert_eq(st.handler_samples, TASKS, "every task timed once: %llu",
                 (unsigned long long)st.handler_samples);
    uint64_t total = 0;
    for (unsigned b = 0; b < XO_HIST_BUCKETS; b++)
        total += st.handler_hist[b];
    cr_assert_eq(total, TASKS, "the buckets add up to the samples: %llu",
                 (unsigned long long)total);
    stop_runtime(rt);
}

Test(observe, handler_sample_zero_times_nothing)
{
    xo_config_t cfg;
    quiet_config(&cfg, 2);
    cfg.handler_sample = 0;
    xo_runtime_t *rt = start_with(&cfg);
    xo_ref_t r = spawn_obs(rt, 1, NULL, NULL);
    for (int i = 0; i < 200; i++)
        cr_assert_eq(xo_tell(r, WORK, NULL, 0), 0);
    wait_handled(r, 200);
    xo_actor_stats_t st;
    cr_assert_eq(xo_actor_stats(r, &st), 0);
    cr_assert_eq(st.handler_samples, 0);
    stop_runtime(rt);
}

Test(observe, histogram_quantiles_are_the_upper_bound_of_their_bucket)
{
    uint64_t h[XO_HIST_BUCKETS] = { 0 };
    cr_assert_eq(xo_hist_quantile_ns(h, 0.5), 0, "empty");
    cr_assert_eq(xo_hist_quantile_ns(NULL, 0.5), 0);
    h[3] = 50;  /* [8, 16) ns */
    h[10] = 49; /* [1024, 2048) */
    h[20] = 1;  /* [1 Mi, 2 Mi) */
    cr_assert_eq(xo_hist_quantile_ns(h, 0.5), 16);
    cr_assert_eq(xo_hist_quantile_ns(h, 0.51), 2048);
    cr_assert_eq(xo_hist_quantile_ns(h, 0.99), 2048);
    cr_assert_eq(xo_hist_quantile_ns(h, 1.0), (uint64_t)2 << 20);
    cr_assert_eq(xo_hist_quantile_ns(h, 7.0), (uint64_t)2 << 20, "clamped");
    cr_assert_eq(xo_hist_quantile_ns(h, -1.0), 16, "clamped: the first");
    cr_assert_eq(xo_hist_upper_ns(0), 2);
    cr_assert_eq(xo_hist_upper_ns(XO_HIST_BUCKETS - 1), UINT64_MAX);
    cr_assert_eq(xo_hist_upper_ns(1000), UINT64_MAX);
}

Test(observe, pool_info_counts_turns_parks_and_wakes)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t r = spawn_obs(rt, 1, NULL, NULL);
    xo_pool_info_t pi;
    /* Until pool 1's worker has parked: it then must be woken. */
    do {
        sleep_ms(1);
        cr_assert_eq(xo_pool_info(rt, 1, &pi), 0);
    } while (!pi.parked);
    uint64_t wakes = pi.wakes, turns = pi.turns;
    cr_assert_geq(pi.parks, 1);
    cr_assert_eq(xo_tell(r, WORK, NULL, 0), 0);
    wait_handled(r, 1);
    cr_assert_eq(xo_pool_info(rt, 1, &pi), 0);
    cr_assert_gt(pi.turns, turns, "the tell's turn");
    /* The wake is counted when the worker is back from its sleep, which is
       before it runs the turn. */
    cr_assert_gt(pi.wakes, wakes, "a sender woke it");
    cr_assert_geq(pi.up_ns, pi.busy_ns);
    cr_assert_eq(pi.shared, 0, "no other pool's actor ran there");
    stop_runtime(rt);
}

Test(observe, run_queue_depth_counts_actors_queued_behind_a_busy_turn)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t busy = spawn_obs(rt, 1, NULL, NULL);
    hold(busy);
    enum { N = 20 };
    xo_ref_t others[N];
    for (int i = 0; i < N; i++) {
        others[i] = spawn_obs(rt, 1, NULL, NULL);
        cr_assert_eq(xo_tell(others[i], WORK, NULL, 0), 0);
    }
    xo_pool_info_t pi;
    cr_assert_eq(xo_pool_info(rt, 1, &pi), 0);
    cr_assert_eq(pi.runq_depth, N, "each actor queued once");
    release_hold();
    for (int i = 0; i < N; i++)
        wait_handled(others[i], 1);
    stop_runtime(rt);
}

struct walk {
    int seen, named, unnamed_def;
    uint64_t handled;
    int stop_after;
};

static int visit(const xo_actor_info_t *info, void *user)
{
    struct walk *w = user;
    w->seen++;
    if (info->uid != NULL && strncmp(info->uid, "walk-", 5) == 0)
        w->named++;
    if (strcmp(info->definition, "?") == 0)
        w->unnamed_def++;
    w->handled += info->stats.handled;
    cr_assert(!xo_ref_is_none(info->ref));
    if (w->stop_after != 0 && w->seen == w->stop_after)
        return 42;
    return 0;
}

Test(observe, actors_each_visits_every_live_actor_once)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t refs[50];
    char uid[32];
    for (int i = 0; i < 50; i++) {
        snprintf(uid, sizeof(uid), "walk-%d", i);
        refs[i] = spawn_obs(rt, i % 2, i % 5 == 0 ? uid : NULL, NULL);
        cr_assert_eq(xo_tell(refs[i], WORK, NULL, 0), 0);
    }
    xo_ref_t anon;
    cr_assert_eq(xo_spawn(rt, &unnamed_def, NULL, &anon), 0);
    for (int i = 0; i < 50; i++)
        wait_handled(refs[i], 1);
    struct walk w = { 0 };
    cr_assert_eq(xo_actors_each(rt, visit, &w), 0);
    cr_assert_eq(w.seen, 51);
    cr_assert_eq(w.named, 10, "the uids");
    cr_assert_eq(w.unnamed_def, 1, "a definition without a name shows ?");
    cr_assert_eq(w.handled, 50);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(xo_destroy(refs[i]), 0);
    w = (struct walk){ 0 };
    cr_assert_eq(xo_actors_each(rt, visit, &w), 0);
    cr_assert_eq(w.seen, 41, "the destroyed are gone");
    w = (struct walk){ .stop_after = 7 };
    cr_assert_eq(xo_actors_each(rt, visit, &w), 42, "the visitor's stop");
    cr_assert_eq(w.seen, 7);
    cr_assert_eq(xo_actors_each(NULL, visit, &w), XO_EINVAL);
    cr_assert_eq(xo_actors_each(rt, NULL, &w), XO_EINVAL);
    cr_assert_eq(xo_runtime_stop(rt), 0);
    cr_assert_eq(xo_actors_each(rt, visit, &w), XO_ECLOSED);
    xo_runtime_free(rt);
}

Test(observe, runtime_stats_count_actors_pools_and_watchdog_ticks)
{
    xo_config_t cfg;
    quiet_config(&cfg, 2);
    xo_runtime_t *rt = start_with(&cfg);
    for (int i = 0; i < 7; i++)
        (void)spawn_obs(rt, 0, NULL, NULL);
    xo_runtime_stats_t rs;
    do {
        sleep_ms(2);
        cr_assert_eq(xo_runtime_stats(rt, &rs), 0);
    } while (rs.watchdog_ticks < 3);
    cr_assert_eq(rs.actors, 7);
    cr_assert_eq(rs.pools, 2);
    cr_assert_eq(rs.alerts[0], 0, "every alert off");
    cr_assert_eq(xo_runtime_stats(NULL, &rs), XO_EINVAL);
    cr_assert_eq(xo_runtime_stats(rt, NULL), XO_EINVAL);
    stop_runtime(rt);
}

Test(observe, no_watchdog_when_its_tick_is_zero)
{
    xo_config_t cfg;
    quiet_config(&cfg, 2);
    cfg.watch_tick_ns = 0;
    cfg.slow_handler_ns = 1000000;
    xo_runtime_t *rt = start_with(&cfg);
    cr_assert_null(rt->watchdog);
    xo_ref_t r = spawn_obs(rt, 1, NULL, NULL);
    tell_sleep(r, 30);
    wait_handled(r, 1);
    xo_runtime_stats_t rs;
    cr_assert_eq(xo_runtime_stats(rt, &rs), 0);
    cr_assert_eq(rs.watchdog_ticks, 0);
    stop_runtime(rt);
    cr_assert_eq(count_kind(XO_ALERT_SLOW_HANDLER), 0);
    /* The shared-memory snapshot needs the watchdog. */
    cfg.stats_shm = true;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), XO_EINVAL);
    xo_config_init(&cfg);
    cfg.metrics_port = 70000;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), XO_EINVAL, "no such port");
}

/* ---- the watchdog's alerts ---------------------------------------------------- */

Test(observe, a_slow_handler_is_reported_once_per_multiple_of_the_threshold)
{
    xo_config_t cfg;
    quiet_config(&cfg, 2);
    cfg.slow_handler_ns = 20000000; /* 20 ms */
    xo_runtime_t *rt = start_with(&cfg);
    xo_ref_t r = spawn_obs(rt, 1, "slowpoke", NULL);
    tell_sleep(r, 130);
    wait_handled(r, 1);
    for (int i = 0; i < 50; i++) /* quick ones: no more alerts */
        cr_assert_eq(xo_tell(r, WORK, NULL, 0), 0);
    wait_handled(r, 51);
    xo_runtime_stats_t rs;
    cr_assert_eq(xo_runtime_stats(rt, &rs), 0);
    xo_actor_stats_t st;
    cr_assert_eq(xo_actor_stats(r, &st), 0);
    stop_runtime(rt);
    int n = count_kind(XO_ALERT_SLOW_HANDLER);
    cr_assert_geq(n, 1, "the 130 ms handler passed 20 ms");
    cr_assert_leq(n, 6, "at most one per multiple up to 6");
    unsigned last = 0;
    for (int i = 0; i < nalerts; i++) {
        const xo_alert_t *a = &alerts[i];
        cr_assert_eq(a->kind, XO_ALERT_SLOW_HANDLER);
        cr_assert_eq(a->actor.id, r.id);
        cr_assert_str_eq(a->definition, "observed");
        cr_assert_str_eq(alert_uids[i], "slowpoke");
        cr_assert_eq(a->tag, SLEEP);
        cr_assert_eq(a->pool, 1);
        cr_assert_eq(a->threshold_ns, 20000000);
        cr_assert_gt(a->multiple, last, "each multiple once, rising");
        cr_assert_geq(a->elapsed_ns, a->multiple * a->threshold_ns);
        last = a->multiple;
    }
    cr_assert_eq(rs.alerts[XO_ALERT_SLOW_HANDLER], (uint64_t)n, "counted");
    cr_assert_eq(rs.alerts[0], (uint64_t)n);
    cr_assert_eq(st.alerts, (uint64_t)n, "counted on the actor");
}

Test(observe, a_turn_that_keeps_its_worker_is_reported_once)
{
    xo_config_t cfg;
    quiet_config(&cfg, 2);
    cfg.stuck_turn_ns = 40000000; /* 40 ms */
    xo_runtime_t *rt = start_with(&cfg);
    xo_ref_t r = spawn_obs(rt, 1, NULL, NULL);
    /* One turn of ten 15 ms handlers: no handler is slow, the turn is. */
    for (int i = 0; i < 10; i++)
        tell_sleep(r, 15);
    wait_handled(r, 10);
    stop_runtime(rt);
    cr_assert_geq(count_kind(XO_ALERT_STUCK_TURN), 1);
    cr_assert_eq(count_kind(XO_ALERT_SLOW_HANDLER), 0, "that one is off");
    for (int i = 0; i < nalerts; i++) {
        cr_assert_eq(alerts[i].actor.id, r.id);
        cr_assert_geq(alerts[i].elapsed_ns, 40000000);
    }
    /* Once per turn: the ten handlers fill at most 4 turns of 40 ms. */
    cr_assert_leq(count_kind(XO_ALERT_STUCK_TURN), 4);
}

/* Whether the alerts so far show a's wait for b with b's for c behind it,
   and b's own wait for c (checking what each says on the way). */
static void slow_call_chains(xo_ref_t a, xo_ref_t b, xo_ref_t c, bool *saw_a,
                             bool *saw_b)
{
    pthread_mutex_lock(&alerts_lock);
    for (int i = 0; i < nalerts; i++) {
        const xo_alert_t *x = &alerts[i];
        cr_assert_eq(x->kind, XO_ALERT_SLOW_CALL);
        cr_assert_geq(x->elapsed_ns, x->multiple * x->threshold_ns);
        cr_assert_geq(x->chain_len, 1);
        if (x->actor.id == a.id) {
            cr_assert_eq(x->chain[0].id, b.id);
            *saw_a |= x->chain_len >= 2 && x->chain[1].id == c.id;
        } else if (x->actor.id == b.id) {
            *saw_b = true;
            cr_assert_eq(x->chain[0].id, c.id);
        }
    }
    pthread_mutex_unlock(&alerts_lock);
}

Test(observe, a_slow_call_is_reported_with_its_chain_of_waits)
{
    xo_config_t cfg;
    quiet_config(&cfg, 2);
    cfg.slow_call_ns = 50000000; /* 50 ms */
    xo_runtime_t *rt = start_with(&cfg);
    /* a (pool 0) calls b (pool 1), which calls c (pool 1, nested on the
       same worker: b's wait lends it), which holds until the alerts are
       in: however late the watchdog looks, both waits are still there. */
    xo_ref_t c = spawn_obs(rt, 1, "c", NULL);
    xo_ref_t b = spawn_obs(rt, 1, "b", &c);
    xo_ref_t a = spawn_obs(rt, 0, "a", &b);
    atomic_store(&gate_open, 0);
    atomic_store(&inner_call, HOLD);
    uint32_t through = CALL_ON;
    cr_assert_eq(xo_tell(a, CALL_ON, &through, sizeof(through)), 0);
    bool saw_a = false, saw_b = false;
    for (int ms = 0; ms < 60000 && !(saw_a && saw_b); ms += 5) {
        sleep_ms(5);
        slow_call_chains(a, b, c, &saw_a, &saw_b);
    }
    release_hold();
    wait_handled(a, 1);
    stop_runtime(rt);
    cr_assert(saw_a, "a waits for b, and b for c");
    cr_assert(saw_b, "b's own wait for c");
}

Test(observe, a_slow_call_from_an_outside_thread_is_reported)
{
    xo_config_t cfg;
    quiet_config(&cfg, 2);
    cfg.slow_call_ns = 50000000;
    cfg.spin_ns = 0;
    xo_runtime_t *rt = start_with(&cfg);
    xo_ref_t c = spawn_obs(rt, 1, "callee", NULL);
    unsigned ms = 250;
    xo_future_t *f;
    cr_assert_eq(xo_call(c, SLEEP, &ms, sizeof(ms), &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_future_release(f);
    xo_runtime_stats_t rs;
    cr_assert_eq(xo_runtime_stats(rt, &rs), 0);
    stop_runtime(rt);
    cr_assert_geq(count_kind(XO_ALERT_SLOW_CALL), 1);
    cr_assert(xo_ref_is_none(alerts[0].actor), "no actor: a thread");
    cr_assert_eq(alerts[0].chain_len, 1);
    cr_assert_eq(alerts[0].chain[0].id, c.id);
    cr_assert_eq(rs.alerts[XO_ALERT_SLOW_CALL],
                 (uint64_t)count_kind(XO_ALERT_SLOW_CALL));
}

Test(observe, a_backlogged_mailbox_is_reported_with_its_depth_and_age)
{
    xo_config_t cfg;
    quiet_config(&cfg, 2);
    cfg.mailbox_depth_alert = 100;
    cfg.mailbox_age_ns = 40000000; /* 40 ms */
    xo_runtime_t *rt = start_with(&cfg);
    xo_ref_t r = spawn_obs(rt, 1, "backlog", NULL);
    hold(r);
    for (int i = 0; i < 500; i++)
        cr_assert_eq(xo_tell(r, WORK, NULL, 0), 0);
    wait_alerts(XO_ALERT_MAILBOX_DEPTH, 1);
    wait_alerts(XO_ALERT_MAILBOX_AGE, 1);
    xo_actor_stats_t st;
    cr_assert_eq(xo_actor_stats(r, &st), 0);
    cr_assert_gt(st.oldest_age_ns, 0, "the watchdog measured an age");
    release_hold();
    wait_handled(r, 501);
    stop_runtime(rt);
    cr_assert_eq(count_kind(XO_ALERT_MAILBOX_DEPTH), 1, "once per episode");
    for (int i = 0; i < nalerts; i++) {
        const xo_alert_t *a = &alerts[i];
        cr_assert_eq(a->actor.id, r.id);
        cr_assert_str_eq(alert_uids[i], "backlog");
        if (a->kind == XO_ALERT_MAILBOX_DEPTH) {
            cr_assert_gt(a->depth, 100);
            cr_assert_leq(a->depth, 500, "the HOLD in hand is not waiting");
        } else {
            cr_assert_eq(a->kind, XO_ALERT_MAILBOX_AGE);
            cr_assert_geq(a->elapsed_ns, a->multiple * a->threshold_ns);
            cr_assert_gt(a->depth, 0);
        }
    }
    cr_assert_geq(st.mailbox_high, 500, "the scans saw it all waiting");
}

Test(observe, thresholds_of_zero_turn_their_alerts_off)
{
    xo_config_t cfg;
    quiet_config(&cfg, 2); /* every threshold 0 */
    xo_runtime_t *rt = start_with(&cfg);
    xo_ref_t r = spawn_obs(rt, 1, NULL, NULL);
    hold(r);
    for (int i = 0; i < 300; i++)
        cr_assert_eq(xo_tell(r, WORK, NULL, 0), 0);
    sleep_ms(100); /* several scans see the backlog and the long turn */
    release_hold();
    wait_handled(r, 301);
    xo_runtime_stats_t rs;
    cr_assert_eq(xo_runtime_stats(rt, &rs), 0);
    stop_runtime(rt);
    cr_assert_gt(rs.watchdog_ticks, 0, "it ran");
    cr_assert_eq(nalerts, 0);
}

Test(observe, the_default_alert_line_names_kind_actor_and_numbers)
{
    xo_alert_t a = { .kind = XO_ALERT_SLOW_HANDLER,
                     .actor = { NULL, 0x1234 },
                     .definition = "parser",
                     .uid = "p-1",
                     .pool = 3,
                     .tag = 9,
                     .elapsed_ns = 250000000,
                     .threshold_ns = 100000000,
                     .multiple = 2 };
    char line[512];
    int n = xo_alert_format(&a, line, sizeof(line));
    cr_assert_eq((size_t)n, strlen(line));
    cr_assert(strstr(line, "slow_handler") != NULL, "%s", line);
    cr_assert(strstr(line, "parser") != NULL, "%s", line);
    cr_assert(strstr(line, "\"p-1\"") != NULL, "%s", line);
    cr_assert(strstr(line, "0x1234") != NULL, "%s", line);
    cr_assert(strstr(line, "250.0 ms") != NULL, "%s", line);
    char small[16];
    cr_assert_eq(xo_alert_format(&a, small, sizeof(small)), n,
                 "the whole length, as snprintf");
    cr_assert_eq(strlen(small), sizeof(small) - 1);
    cr_assert_eq(xo_alert_format(NULL, line, sizeof(line)), -1);
    a.kind = XO_ALERT_SLOW_CALL;
    a.actor = XO_REF_NONE;
    a.chain_len = 2;
    a.chain[0].id = 0xab;
    a.chain[1].id = 0xcd;
    xo_alert_format(&a, line, sizeof(line));
    cr_assert(strstr(line, "outside thread") != NULL, "%s", line);
    cr_assert(strstr(line, "-> 0xab -> 0xcd") != NULL, "%s", line);
    cr_assert_str_eq(xo_alert_kind_name(XO_ALERT_MAILBOX_AGE), "mailbox_age");
    cr_assert_str_eq(xo_alert_kind_name(XO_ALERT_STUCK_TURN), "stuck_turn");
    cr_assert_str_eq(xo_alert_kind_name((xo_alert_kind_t)99), "?");
}

/* ---- the dump --------------------------------------------------------------------- */

static char *dump_of(xo_runtime_t *rt, int *rc)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    *rc = xo_runtime_dump(rt, f);
    fclose(f);
    return text;
}

Test(observe, the_dump_shows_pools_waits_and_the_busiest_mailboxes)
{
    xo_config_t cfg;
    quiet_config(&cfg, 2);
    xo_runtime_t *rt = start_with(&cfg);
    xo_ref_t c = spawn_obs(rt, 1, "deep", NULL);
    xo_ref_t a = spawn_obs(rt, 0, "waiter", &c);
    hold(c);
    for (int i = 0; i < 30; i++)
        cr_assert_eq(xo_tell(c, WORK, NULL, 0), 0);
    uint32_t sleep_tag = SLEEP;
    cr_assert_eq(xo_tell(a, CALL_ON, &sleep_tag, sizeof(sleep_tag)), 0);
    /* Until a's handler waits for c. */
    while (atomic_load(&xi_resolve(&rt->slots, a.id)->waiting_for) != c.id)
        sleep_ms(1);
    int rc;
    char *text = dump_of(rt, &rc);
    release_hold();
    wait_handled(a, 1);
    cr_assert_eq(rc, 0);
    char want[128];
    snprintf(want, sizeof(want), "%#llx (observed) waits for %#llx",
             (unsigned long long)a.id, (unsigned long long)c.id);
    cr_assert(strstr(text, want) != NULL, "%s\n--- wanted: %s", text, want);
    cr_assert(strstr(text, "busiest mailboxes") != NULL, "%s", text);
    /* c's mailbox: the 30 tells and a's call (the HOLD is in hand). */
    snprintf(want, sizeof(want), "%#llx (observed): 31 waiting",
             (unsigned long long)c.id);
    cr_assert(strstr(text, want) != NULL, "%s\n--- wanted: %s", text, want);
    cr_assert(strstr(text, "pool 0 running") != NULL, "%s", text);
    cr_assert(strstr(text, "pool 1 running") != NULL, "%s", text);
    free(text);
    cr_assert_eq(xo_runtime_dump(NULL, stdout), XO_EINVAL);
    cr_assert_eq(xo_runtime_dump(rt, NULL), XO_EINVAL);
    cr_assert_eq(xo_runtime_stop(rt), 0);
    cr_assert_eq(xo_runtime_dump(rt, stdout), XO_ECLOSED);
    xo_runtime_free(rt);
}

/* ---- failed allocations ----------------------------------------------------------- */

Test(observe, a_watchdog_that_cannot_be_allocated_fails_with_enomem)
{
    xo_config_t cfg;
    quiet_config(&cfg, 1);
    cfg.watch_tick_ns = 0;
    xo_runtime_t *rt = start_with(&cfg);
    rt->cfg.watch_tick_ns = 1000000;
    xi_mem_fail_after(&rt->mem, 1);
    cr_assert_eq(xi_watchdog_start(rt), XO_ENOMEM);
    xi_mem_fail_after(&rt->mem, 0);
    cr_assert_null(rt->watchdog, "nothing left behind");
    stop_runtime(rt);
}

static atomic_int errors_reported;

static void count_error(xo_runtime_t *rt, xo_ref_t actor, uint32_t tag,
                        int err, void *user)
{
    (void)rt;
    (void)actor;
    (void)tag;
    (void)err;
    (void)user;
    atomic_fetch_add(&errors_reported, 1);
}

Test(observe, a_stats_block_that_cannot_be_made_loses_a_count_not_a_report)
{
    xo_config_t cfg;
    quiet_config(&cfg, 2);
    cfg.watch_tick_ns = 0;
    cfg.handler_sample = 0;
    cfg.on_handler_error = count_error;
    xo_runtime_t *rt = start_with(&cfg);
    xo_ref_t r = spawn_obs(rt, 1, NULL, NULL);
    hold(r);
    xo_msg_t *m;
    cr_assert_eq(xo_msg_alloc(rt, FAIL, 0, &m), 0);
    /* Allocation 1 is xo_fail's text, 2 the stats block the failure path
       makes. */
    xi_mem_fail_after(&rt->mem, 2);
    cr_assert_eq(xo_send(r, m), 0);
    release_hold();
    /* The message counts as handled before its failure is reported (and
       counted): wait for the report, the last step of the failure path. */
    while (atomic_load(&errors_reported) < 1)
        sleep_ms(1);
    xi_mem_fail_after(&rt->mem, 0);
    xo_actor_stats_t st;
    cr_assert_eq(xo_actor_stats(r, &st), 0);
    cr_assert_eq(atomic_load(&errors_reported), 1, "the failure reported");
    cr_assert_eq(st.failed, 0, "its count lost with the block");
    cr_assert_eq(xo_tell(r, FAIL, NULL, 0), 0);
    while (atomic_load(&errors_reported) < 2)
        sleep_ms(1);
    cr_assert_eq(xo_actor_stats(r, &st), 0);
    cr_assert_eq(st.failed, 1, "the next failure makes the block");
    stop_runtime(rt);
}

static atomic_int stop_from_alert = 1;
static atomic_int free_from_alert = 1;

static void stop_in_alert(xo_runtime_t *rt, const xo_alert_t *a, void *user)
{
    (void)a;
    (void)user;
    atomic_store(&stop_from_alert, xo_runtime_stop(rt));
    atomic_store(&free_from_alert, xo_runtime_free(rt));
}

Test(observe, an_alert_callback_cannot_stop_or_free_its_runtime)
{
    xo_config_t cfg;
    quiet_config(&cfg, 2);
    cfg.slow_handler_ns = 10000000;
    cfg.on_alert = stop_in_alert;
    xo_runtime_t *rt = start_with(&cfg);
    xo_ref_t r = spawn_obs(rt, 1, NULL, NULL);
    tell_sleep(r, 50);
    while (atomic_load(&stop_from_alert) == 1)
        sleep_ms(1);
    while (atomic_load(&free_from_alert) == 1)
        sleep_ms(1);
    cr_assert_eq(atomic_load(&stop_from_alert), XO_EINVAL);
    cr_assert_eq(atomic_load(&free_from_alert), XO_EINVAL);
    stop_runtime(rt); /* from outside, as it should */
}

static const xo_actor_def_t deaf_def = { .name = "deaf" };

Test(observe, messages_to_an_actor_without_a_handler_leave_no_depth_behind)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.pool = 1;
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &deaf_def, &o, &r), 0);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(xo_tell(r, WORK, NULL, 0), 0);
    wait_handled(r, 100); /* taken and dropped: counted as handled */
    xo_actor_stats_t st;
    cr_assert_eq(xo_actor_stats(r, &st), 0);
    cr_assert_eq(st.mailbox_depth, 0);
    stop_runtime(rt);
}
