/*
 * test_locality.c -- where movable actors run (docs/scheduler.md,
 * "Locality"): on the worker whose send made them runnable, on an idle
 * worker that takes them from a busy one, and never anywhere else for a
 * fixed actor; and that every guarantee of a stateful actor holds while
 * they move: one turn at a time, order per sender, fairness, nothing lost
 * when a pool goes.
 *
 * Where a turn ran is told by its thread: each test first asks a fixed
 * actor on each pool for its worker's thread. No test waits for a time to
 * pass: a move that does not happen leaves a bounded wait to give up and
 * the assertion after it to fail with what it saw.
 */
#include "support.h"

#include <string.h>

enum { WHO = 1, RELAY = 2, WORK = 3, HOLD = 4, SPIN = 5, STOP = 6, SEQ = 7 };

/* ---- threads and runtimes --------------------------------------------- */

static int who_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    pthread_t self = pthread_self();
    return m->request ? xo_reply(m->request, WHO, &self, sizeof(self)) : 0;
}

static const xo_actor_def_t who_def = {
    .name = "who", .on_message = who_message,
};

/* The thread of pool `pool`'s worker, asked of a fixed actor there. */
static pthread_t pool_thread(xo_runtime_t *rt, int pool)
{
    xo_ref_t who = spawn_on(rt, &who_def, pool);
    xo_future_t *f;
    cr_assert_eq(xo_call(who, WHO, NULL, 0, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t r;
    cr_assert_eq(xo_future_result(f, 0, &r), 0);
    pthread_t t;
    memcpy(&t, r.data, sizeof(t));
    xo_future_release(f);
    return t;
}

/* pools, with the watchdog off (it would offer a held worker's queue
   on its own), stealing as asked, idle workers polling for spin_ns. */
static xo_runtime_t *start_spinning(unsigned pools, bool steal,
                                    uint64_t steal_wait_ns, uint64_t spin_ns)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = pools;
    cfg.spin_ns = spin_ns;
    cfg.watch_tick_ns = 0;
    cfg.steal = steal;
    cfg.steal_wait_ns = steal_wait_ns;
    xo_runtime_t *rt;
    int rc = xo_runtime_start(&cfg, &rt);
    cr_assert_eq(rc, 0, "xo_runtime_start: %s", xo_strerror(rc));
    return rt;
}

static xo_runtime_t *start_with(unsigned pools, bool steal,
                                uint64_t steal_wait_ns)
{
    return start_spinning(pools, steal, steal_wait_ns, 5000);
}

static xo_ref_t spawn_moving(xo_runtime_t *rt, const xo_actor_def_t *def,
                             int pool, xo_move_t move, const void *arg,
                             size_t arg_size)
{
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.pool = pool;
    opts.move = move;
    opts.arg = arg;
    opts.arg_size = arg_size;
    xo_ref_t r;
    int rc = xo_spawn(rt, def, &opts, &r);
    cr_assert_eq(rc, 0, "xo_spawn: %s", xo_strerror(rc));
    return r;
}

/* ---- recorders: each turn notes the thread it ran on -------------------- */

#define MAX_RECORDERS 64
#define RUNS_PER_RECORDER 256

static pthread_t ran_on[MAX_RECORDERS][RUNS_PER_RECORDER];
static atomic_int runs[MAX_RECORDERS];
static atomic_int recorded;

static int ref_arg_create(xo_ctx_t *ctx, void *state, const void *arg,
                          size_t size)
{
    (void)ctx;
    memcpy(state, arg, size);
    return 0;
}

/* state: its index into ran_on. */
static int recorder_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)m;
    int id = *(int *)state;
    int n = atomic_fetch_add(&runs[id], 1);
    if (n < RUNS_PER_RECORDER)
        ran_on[id][n] = pthread_self();
    atomic_fetch_add(&recorded, 1);
    return 0;
}

static const xo_actor_def_t recorder_def = {
    .name = "recorder", .state_size = sizeof(int),
    .on_create = ref_arg_create, .on_message = recorder_message,
};

static void reset_recorders(void)
{
    for (int i = 0; i < MAX_RECORDERS; i++)
        atomic_store(&runs[i], 0);
    atomic_store(&recorded, 0);
}

/* Until `n` recorder turns have run (handlers run: no time asserted). */
static void wait_recorded(int n)
{
    while (atomic_load(&recorded) < n)
        sleep_ms(1);
}

/* How many of recorder id's runs were on thread t. */
static int runs_on(int id, pthread_t t)
{
    int n = atomic_load(&runs[id]), on = 0;
    for (int i = 0; i < n && i < RUNS_PER_RECORDER; i++)
        on += pthread_equal(ran_on[id][i], t);
    return on;
}

/* ---- relays: a fixed actor whose handler tells another ------------------ */

static int relay_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)m;
    return xo_tell(*(xo_ref_t *)state, WORK, NULL, 0);
}

static const xo_actor_def_t relay_def = {
    .name = "relay", .state_size = sizeof(xo_ref_t),
    .on_create = ref_arg_create, .on_message = relay_message,
};

/* ---- locality ---------------------------------------------------------- */

Test(locality, a_movable_actor_runs_on_the_worker_whose_send_made_it_runnable)
{
    xo_runtime_t *rt = start_with(2, false, 0);
    reset_recorders();
    pthread_t t0 = pool_thread(rt, 0), t1 = pool_thread(rt, 1);
    int id = 0;
    xo_ref_t target =
        spawn_moving(rt, &recorder_def, 1, XO_MOVE_FREE, &id, sizeof(id));
    xo_ref_t relay = spawn_moving(rt, &relay_def, 0, XO_MOVE_FIXED, &target,
                                  sizeof(target));
    enum { N = 100 };
    for (int i = 0; i < N; i++) {
        cr_assert_eq(xo_tell(relay, RELAY, NULL, 0), 0);
        wait_recorded(i + 1); /* each message finds the target idle */
    }
    cr_assert_eq(runs_on(0, t0), N,
                 "every turn ran on pool 0's worker, whose send woke it "
                 "(%d of %d there, %d on its home's)",
                 runs_on(0, t0), N, runs_on(0, t1));
    xo_actor_stats_t st;
    cr_assert_eq(xo_actor_stats(target, &st), 0);
    cr_assert_eq(st.pool, 1, "its home stays pool 1");
    xo_pool_info_t pi;
    cr_assert_eq(xo_pool_info(rt, 0, &pi), 0);
    cr_assert_geq(pi.shared, N, "pool 0 counts the turns of pool 1's actor");
    stop_runtime(rt);
}

/* Keeps its worker busy until released (bounded: a test that forgets to
   release it still ends). */
static atomic_int busy_running, busy_release;

static int busy_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    atomic_store(&busy_running, 1);
    for (int ms = 0; ms < 30000 && !atomic_load(&busy_release); ms++)
        sleep_ms(1);
    return 0;
}

static const xo_actor_def_t busy_def = {
    .name = "busy", .on_message = busy_message,
};

Test(locality, an_actor_placed_explicitly_stays_on_its_pool_and_a_default_one_moves)
{
    xo_runtime_t *rt = start_with(2, false, 0);
    reset_recorders();
    pthread_t t0 = pool_thread(rt, 0), t1 = pool_thread(rt, 1);
    /* XO_MOVE_AUTO with a pool asked for: fixed. */
    int fixed_id = 0;
    xo_ref_t fixed =
        spawn_moving(rt, &recorder_def, 1, XO_MOVE_AUTO, &fixed_id,
                     sizeof(int));
    /* XO_MOVE_AUTO with the default placement: movable. Placed while
       pool 0's worker is busy, least-loaded gives it pool 1. */
    atomic_store(&busy_running, 0);
    atomic_store(&busy_release, 0);
    xo_ref_t busy = spawn_moving(rt, &busy_def, 0, XO_MOVE_FIXED, NULL, 0);
    cr_assert_eq(xo_tell(busy, WORK, NULL, 0), 0);
    while (!atomic_load(&busy_running))
        sleep_ms(1);
    int moving_id = 1;
    xo_ref_t moving = spawn_moving(rt, &recorder_def, XO_POOL_ANY,
                                   XO_MOVE_AUTO, &moving_id, sizeof(int));
    atomic_store(&busy_release, 1);
    xo_actor_stats_t st;
    cr_assert_eq(xo_actor_stats(moving, &st), 0);
    cr_assert_eq(st.pool, 1, "the default placement chose the idle pool 1");
    xo_ref_t to_fixed = spawn_moving(rt, &relay_def, 0, XO_MOVE_FIXED,
                                     &fixed, sizeof(fixed));
    xo_ref_t to_moving = spawn_moving(rt, &relay_def, 0, XO_MOVE_FIXED,
                                      &moving, sizeof(moving));
    enum { N = 50 };
    for (int i = 0; i < N; i++) {
        cr_assert_eq(xo_tell(to_fixed, RELAY, NULL, 0), 0);
        cr_assert_eq(xo_tell(to_moving, RELAY, NULL, 0), 0);
        wait_recorded(2 * (i + 1));
    }
    cr_assert_eq(runs_on(fixed_id, t1), N,
                 "the actor placed on pool 1 ran only there (%d of %d)",
                 runs_on(fixed_id, t1), N);
    cr_assert_eq(runs_on(moving_id, t0), N,
                 "the default-placed actor ran where its sender ran "
                 "(%d of %d)", runs_on(moving_id, t0), N);
    stop_runtime(rt);
}

Test(locality, a_spawn_with_an_unknown_move_is_refused)
{
    xo_runtime_t *rt = start_with(1, true, 0);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.move = (xo_move_t)(XO_MOVE_FREE + 1);
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &who_def, &opts, &r), XO_EINVAL);
    stop_runtime(rt);
}

/* ---- stealing ----------------------------------------------------------- */

enum { STOLEN = 16, STAYING = 16 };
static atomic_int movable_done, holder_sent, holder_release;

/* A movable recorder that counts itself done for the holder. */
static int counted_recorder_message(xo_ctx_t *ctx, void *state,
                                    const xo_msg_t *m)
{
    recorder_message(ctx, state, m);
    atomic_fetch_add(&movable_done, 1);
    return 0;
}

static const xo_actor_def_t counted_recorder_def = {
    .name = "counted-recorder", .state_size = sizeof(int),
    .on_create = ref_arg_create, .on_message = counted_recorder_message,
};

struct holder {
    xo_ref_t targets[STOLEN + STAYING];
};

/* Wakes every target, then keeps its worker until the first STOLEN
   targets have run (they can only run elsewhere meanwhile) or the test
   releases it, or gives up after a bound that only a broken steal
   reaches. */
static int holder_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)m;
    struct holder *h = state;
    for (int i = 0; i < STOLEN + STAYING; i++)
        if (xo_tell(h->targets[i], WORK, NULL, 0) != 0)
            return -1;
    atomic_store(&holder_sent, 1);
    for (int ms = 0; ms < 30000 && atomic_load(&movable_done) < STOLEN &&
                     !atomic_load(&holder_release);
         ms++)
        sleep_ms(1);
    return 0;
}

static const xo_actor_def_t holder_def = {
    .name = "holder", .state_size = sizeof(struct holder),
    .on_create = ref_arg_create, .on_message = holder_message,
};

static void reset_holder(void)
{
    reset_recorders();
    atomic_store(&movable_done, 0);
    atomic_store(&holder_sent, 0);
    atomic_store(&holder_release, 0);
}

Test(locality, an_idle_worker_steals_only_movable_actors_from_a_held_one)
{
    xo_runtime_t *rt = start_with(2, true, 1000);
    reset_holder();
    pthread_t t0 = pool_thread(rt, 0), t1 = pool_thread(rt, 1);
    struct holder h;
    for (int i = 0; i < STOLEN + STAYING; i++)
        h.targets[i] = i < STOLEN
            ? spawn_moving(rt, &counted_recorder_def, 0, XO_MOVE_FREE, &i,
                           sizeof(i))
            : spawn_moving(rt, &recorder_def, 0, XO_MOVE_FIXED, &i,
                           sizeof(i));
    xo_ref_t holder =
        spawn_moving(rt, &holder_def, 0, XO_MOVE_FIXED, &h, sizeof(h));
    cr_assert_eq(xo_tell(holder, HOLD, NULL, 0), 0);
    wait_recorded(STOLEN + STAYING);
    for (int i = 0; i < STOLEN; i++)
        cr_assert_eq(runs_on(i, t1), 1,
                     "movable actor %d ran on the idle pool 1 while pool "
                     "0's worker was held", i);
    for (int i = STOLEN; i < STOLEN + STAYING; i++)
        cr_assert_eq(runs_on(i, t0), 1,
                     "fixed actor %d waited for its own worker", i);
    xo_pool_info_t pi;
    cr_assert_eq(xo_pool_info(rt, 1, &pi), 0);
    cr_assert_geq(pi.steals, 1, "pool 1 counts what it took");
    cr_assert_eq(xo_pool_info(rt, 0, &pi), 0);
    cr_assert_eq(pi.steals, 0);
    stop_runtime(rt);
}

Test(locality, without_stealing_movable_actors_wait_for_the_worker_that_woke_them)
{
    xo_runtime_t *rt = start_with(2, false, 0);
    reset_holder();
    pthread_t t0 = pool_thread(rt, 0);
    struct holder h;
    for (int i = 0; i < STOLEN + STAYING; i++)
        h.targets[i] = spawn_moving(rt, &recorder_def, 1, XO_MOVE_FREE, &i,
                                    sizeof(i));
    xo_ref_t holder =
        spawn_moving(rt, &holder_def, 0, XO_MOVE_FIXED, &h, sizeof(h));
    cr_assert_eq(xo_tell(holder, HOLD, NULL, 0), 0);
    while (!atomic_load(&holder_sent))
        sleep_ms(1);
    /* Pool 1's worker is idle and their home, but does not take them. */
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(atomic_load(&recorded), 0,
                     "nothing ran while pool 0's worker was held");
        sleep_ms(1);
    }
    atomic_store(&holder_release, 1);
    wait_recorded(STOLEN + STAYING);
    for (int i = 0; i < STOLEN + STAYING; i++)
        cr_assert_eq(runs_on(i, t0), 1,
                     "actor %d ran on pool 0's worker, after the holder", i);
    xo_pool_info_t pi;
    cr_assert_eq(xo_pool_info(rt, 1, &pi), 0);
    cr_assert_eq(pi.steals, 0);
    stop_runtime(rt);
}

Test(locality, an_actor_is_not_stolen_before_it_has_waited_steal_wait_ns)
{
    /* An hour: the holder lets go long before any of them has waited
       that long, so none may move. */
    xo_runtime_t *rt = start_with(2, true, UINT64_C(3600000000000));
    reset_holder();
    pthread_t t0 = pool_thread(rt, 0);
    struct holder h;
    for (int i = 0; i < STOLEN + STAYING; i++)
        h.targets[i] = spawn_moving(rt, &recorder_def, 1, XO_MOVE_FREE, &i,
                                    sizeof(i));
    xo_ref_t holder =
        spawn_moving(rt, &holder_def, 0, XO_MOVE_FIXED, &h, sizeof(h));
    cr_assert_eq(xo_tell(holder, HOLD, NULL, 0), 0);
    while (!atomic_load(&holder_sent))
        sleep_ms(1);
    sleep_ms(20); /* pool 1's worker looks at the offer meanwhile */
    atomic_store(&holder_release, 1);
    wait_recorded(STOLEN + STAYING);
    for (int i = 0; i < STOLEN + STAYING; i++)
        cr_assert_eq(runs_on(i, t0), 1,
                     "actor %d stayed with the worker that woke it", i);
    xo_pool_info_t pi;
    cr_assert_eq(xo_pool_info(rt, 1, &pi), 0);
    cr_assert_eq(pi.steals, 0);
    stop_runtime(rt);
}

/* ---- the guarantees while actors move ----------------------------------- */

enum { SINKS = 8, SOURCES = 4, OUTSIDE = 2, PER_SOURCE = 20000 };
#define SENDERS (SOURCES + OUTSIDE)

struct seq_msg {
    int sender;
    int seq;
};

struct sink {
    atomic_int in_handler;
    int next[SENDERS];
    int overlaps, out_of_order;
    long handled;
};

static int sink_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    struct sink *s = state;
    if (atomic_exchange(&s->in_handler, 1) != 0)
        s->overlaps++;
    const struct seq_msg *q = m->data;
    if (q->seq != s->next[q->sender])
        s->out_of_order++;
    s->next[q->sender] = q->seq + 1;
    s->handled++;
    /* A little work, so that backlogs form and idle workers take them. */
    volatile unsigned x = 0;
    for (unsigned i = 0; i < 200; i++)
        x += i;
    atomic_store(&s->in_handler, 0);
    return 0;
}

static int sink_report(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    if (m->request)
        return xo_reply(m->request, SEQ, state, sizeof(struct sink));
    return sink_message(ctx, state, m);
}

static const xo_actor_def_t sink_def = {
    .name = "sink", .state_size = sizeof(struct sink),
    .on_message = sink_report,
};

struct source {
    int id;
    xo_ref_t sinks[SINKS];
};

static int send_all(const struct source *src)
{
    for (int i = 0; i < PER_SOURCE; i++) {
        struct seq_msg q = { src->id, i / SINKS };
        int rc = xo_tell(src->sinks[i % SINKS], SEQ, &q, sizeof(q));
        if (rc != 0)
            return rc;
    }
    return 0;
}

static atomic_int sources_done;

static int source_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)m;
    int rc = send_all(state);
    atomic_fetch_add(&sources_done, rc == 0 ? 1 : 1000);
    return rc;
}

static const xo_actor_def_t source_def = {
    .name = "source", .state_size = sizeof(struct source),
    .on_create = ref_arg_create, .on_message = source_message,
};

static atomic_int outside_failed;

static void *outside_sender(void *arg)
{
    if (send_all(arg) != 0)
        atomic_store(&outside_failed, 1);
    return NULL;
}

Test(locality, movable_actors_keep_one_turn_at_a_time_and_order_per_sender_while_stolen)
{
    xo_runtime_t *rt = start_with(2, true, 0); /* steal at once */
    atomic_store(&sources_done, 0);
    xo_ref_t sinks[SINKS];
    for (int i = 0; i < SINKS; i++)
        sinks[i] = spawn_moving(rt, &sink_def, i % 2, XO_MOVE_FREE, NULL, 0);
    struct source srcs[SENDERS];
    xo_ref_t sources[SOURCES];
    for (int s = 0; s < SENDERS; s++) {
        srcs[s].id = s;
        memcpy(srcs[s].sinks, sinks, sizeof(sinks));
        if (s < SOURCES)
            sources[s] = spawn_moving(rt, &source_def, s % 2, XO_MOVE_FREE,
                                      &srcs[s], sizeof(srcs[s]));
    }
    pthread_t threads[OUTSIDE];
    for (int s = 0; s < SOURCES; s++)
        cr_assert_eq(xo_tell(sources[s], WORK, NULL, 0), 0);
    for (int t = 0; t < OUTSIDE; t++)
        pthread_create(&threads[t], NULL, outside_sender,
                       &srcs[SOURCES + t]);
    for (int t = 0; t < OUTSIDE; t++)
        pthread_join(threads[t], NULL);
    cr_assert_eq(atomic_load(&outside_failed), 0, "every send accepted");
    while (atomic_load(&sources_done) < SOURCES)
        sleep_ms(1);
    cr_assert_eq(atomic_load(&sources_done), SOURCES, "every send accepted");
    long total = 0;
    for (int i = 0; i < SINKS; i++) {
        /* A call queues behind every message already sent to the sink. */
        xo_future_t *f;
        cr_assert_eq(xo_call(sinks[i], SEQ, NULL, 0, &f), 0);
        cr_assert_eq(xo_future_wait(f, -1), 0);
        xo_result_t r;
        cr_assert_eq(xo_future_result(f, 0, &r), 0);
        const struct sink *s = r.data;
        cr_assert_eq(s->overlaps, 0, "sink %d: two turns at once", i);
        cr_assert_eq(s->out_of_order, 0, "sink %d: a sender's order broke",
                     i);
        for (int k = 0; k < SENDERS; k++)
            cr_assert_eq(s->next[k], PER_SOURCE / SINKS,
                         "sink %d got all of sender %d's messages", i, k);
        total += s->handled;
        xo_future_release(f);
    }
    cr_assert_eq(total, (long)SENDERS * PER_SOURCE);
    uint64_t steals = 0;
    for (unsigned p = 0; p < 2; p++) {
        xo_pool_info_t pi;
        cr_assert_eq(xo_pool_info(rt, p, &pi), 0);
        steals += pi.steals;
    }
    cr_log_info("actors stolen during the run: %llu",
                (unsigned long long)steals);
    stop_runtime(rt);
}

static atomic_int spinning_stop;
static atomic_long spins;

/* Tells itself again and again until told to stop: always runnable. */
static int spinner_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    (void)m;
    atomic_fetch_add(&spins, 1);
    if (atomic_load(&spinning_stop))
        return 0;
    return xo_tell(xo_self(ctx), SPIN, NULL, 0);
}

static const xo_actor_def_t spinner_def = {
    .name = "spinner", .on_message = spinner_message,
};

static int stopper_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    atomic_store(&spinning_stop, 1);
    return 0;
}

static const xo_actor_def_t stopper_def = {
    .name = "stopper", .on_message = stopper_message,
};

Test(locality, an_actor_that_is_always_runnable_does_not_starve_its_worker)
{
    /* One pool: the spinner and the stopper can only share its worker. A
       worker that kept running the spinner would never run the stopper,
       and the test would hang. */
    xo_runtime_t *rt = start_with(1, true, 0);
    atomic_store(&spinning_stop, 0);
    atomic_store(&spins, 0);
    xo_ref_t spinner = spawn_moving(rt, &spinner_def, XO_POOL_ANY,
                                    XO_MOVE_FREE, NULL, 0);
    xo_ref_t stopper = spawn_moving(rt, &stopper_def, XO_POOL_ANY,
                                    XO_MOVE_FREE, NULL, 0);
    xo_ref_t waker = spawn_moving(rt, &relay_def, XO_POOL_ANY, XO_MOVE_FREE,
                                  &stopper, sizeof(stopper));
    cr_assert_eq(xo_tell(spinner, SPIN, NULL, 0), 0);
    while (atomic_load(&spins) < 1000)
        sleep_ms(1);
    /* The stopper is woken from a turn on the worker: it waits in the same
       local queue as the spinner. */
    cr_assert_eq(xo_tell(waker, RELAY, NULL, 0), 0);
    while (!atomic_load(&spinning_stop))
        sleep_ms(1);
    stop_runtime(rt);
}

/* ---- the deadlock check across moved actors ------------------------------- */

/* A calls B and waits; B, in that call, calls A and waits: whichever of
   the two waits starts second closes the cycle and must be refused with
   XO_EDEADLK (B's, usually; A's when B ran and waited before A's wait
   began), wherever the two run (B woken by A's send sits in A's worker's
   local queue, runs nested under A's wait there, or is taken by the other
   worker). Exactly one refusal a cycle: B fails with another code, so
   that A does not count B's refusal as its own. */
enum { CYC_OTHER = 20, CYC_START, CYC_BACK, CYC_GET };
static atomic_int cycle_refused, cycle_done;

static int cyc_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    xo_ref_t *other = state;
    xo_future_t *f;
    int rc;
    switch (m->tag) {
    case CYC_OTHER:
        memcpy(other, m->data, sizeof(*other));
        return 0;
    case CYC_START: /* A */
        if ((rc = xo_call(*other, CYC_BACK, NULL, 0, &f)) != 0)
            return rc;
        rc = xo_future_wait(f, -1); /* B's failure: XO_EINVAL "cycle" */
        if (rc == XO_EDEADLK) {
            atomic_fetch_add(&cycle_refused, 1);
            xo_future_cancel(f); /* B answers once A takes its GET */
        }
        xo_future_release(f);
        atomic_fetch_add(&cycle_done, 1);
        return 0;
    case CYC_BACK: /* B, called by A, which waits */
        if ((rc = xo_call(*other, CYC_GET, NULL, 0, &f)) != 0)
            return rc;
        rc = xo_future_wait(f, -1);
        if (rc == XO_EDEADLK) {
            atomic_fetch_add(&cycle_refused, 1);
            xo_future_cancel(f);
        }
        xo_future_release(f);
        return rc == XO_EDEADLK ? xo_fail(ctx, XO_EINVAL, "cycle") : 0;
    }
    return 0; /* CYC_GET */
}

static const xo_actor_def_t cyc_def = {
    .name = "cycle", .state_size = sizeof(xo_ref_t),
    .on_message = cyc_message,
};

Test(locality, a_call_cycle_between_movable_actors_is_refused_each_time_while_they_are_stolen)
{
    enum { PAIRS = 8, ROUNDS = 25 };
    xo_runtime_t *rt = start_with(2, true, 0); /* steal at once */
    atomic_store(&cycle_refused, 0);
    atomic_store(&cycle_done, 0);
    xo_ref_t a[PAIRS], b[PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        a[i] = spawn_moving(rt, &cyc_def, i % 2, XO_MOVE_FREE, NULL, 0);
        b[i] = spawn_moving(rt, &cyc_def, (i + 1) % 2, XO_MOVE_FREE, NULL, 0);
        cr_assert_eq(xo_tell(a[i], CYC_OTHER, &b[i], sizeof(b[i])), 0);
        cr_assert_eq(xo_tell(b[i], CYC_OTHER, &a[i], sizeof(a[i])), 0);
    }
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < PAIRS; i++)
            cr_assert_eq(xo_tell(a[i], CYC_START, NULL, 0), 0);
        /* A hang here is a cycle the check missed (ctest's timeout). */
        while (atomic_load(&cycle_done) < (r + 1) * PAIRS)
            sleep_ms(1);
    }
    cr_assert_eq(atomic_load(&cycle_refused), PAIRS * ROUNDS,
                 "every cycle refused exactly once");
    stop_runtime(rt);
}

/* ---- pools going away ------------------------------------------------------ */

Test(locality, removing_a_pool_hands_the_movable_actors_its_worker_held_back_home)
{
    /* Idle workers poll for 30 s: pool 1's worker still watches the
       actors it ran when the removal reaches it. */
    xo_runtime_t *rt = start_spinning(2, false, 0, UINT64_C(30000000000));
    reset_recorders();
    enum { K = 40 };
    xo_ref_t targets[K], relays[K];
    for (int i = 0; i < K; i++) {
        targets[i] = spawn_moving(rt, &recorder_def, 0, XO_MOVE_FREE, &i,
                                  sizeof(i));
        relays[i] = spawn_moving(rt, &relay_def, 1, XO_MOVE_FIXED,
                                 &targets[i], sizeof(targets[i]));
    }
    /* Pool 1's worker wakes them: they run there, and it may keep them
       (watched, or queued) when the removal comes. */
    for (int i = 0; i < K; i++)
        cr_assert_eq(xo_tell(relays[i], RELAY, NULL, 0), 0);
    wait_recorded(K);
    cr_assert_eq(xo_pool_remove(rt, 1), 0);
    /* Their home is pool 0: they live on, and what they are sent now runs
       there. A watch or a queue left behind would leave them stuck. */
    for (int i = 0; i < K; i++) {
        cr_assert(xo_ref_alive(targets[i]));
        cr_assert_eq(xo_tell(targets[i], WORK, NULL, 0), 0);
    }
    wait_recorded(2 * K);
    for (int i = 0; i < K; i++)
        cr_assert_eq(atomic_load(&runs[i]), 2, "target %d ran twice", i);
    stop_runtime(rt);
}
