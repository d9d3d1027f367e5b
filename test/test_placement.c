/*
 * Pools and placement: every policy lands where it says (the handler
 * reports its pool and core), idle-label reservations, pools added and
 * removed while the runtime runs, fairness under a flood, and work sharing
 * that moves only movable actors.
 */
#include "support.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>

enum { WHERE = 1, BLOCK = 2, FLOOD = 3, PROBE = 4 };

struct where_reply {
    unsigned pool;
    int cpu;
};

static int where_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    struct where_reply r = { xo_ctx_pool(ctx), sched_getcpu() };
    if (m->request)
        return xo_reply(m->request, WHERE, &r, sizeof(r));
    return 0;
}

static const xo_actor_def_t where_def = {
    .name = "where", .on_message = where_message,
};

static xo_runtime_t *start_labelled(void)
{
    static const char *const labels[3] = { NULL, "gpu-feeder,io", "io" };
    static xo_pool_spec_t specs[3];
    for (int i = 0; i < 3; i++) {
        xo_pool_spec_init(&specs[i]);
        specs[i].labels = labels[i];
    }
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 3;
    cfg.pool_specs = specs;
    cfg.spin_ns = 5000;
    xo_runtime_t *rt;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), 0);
    return rt;
}

/* Wait for a one-item future, copy its reply into out, release it. */
static void take_reply(xo_future_t *f, void *out, size_t size)
{
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t r;
    cr_assert_eq(xo_future_result(f, 0, &r), 0);
    memcpy(out, r.data, size);
    xo_future_release(f);
}

/* Spawn with a placement; ask the actor where its handler ran. */
static int spawn_where(xo_runtime_t *rt, const xo_placement_t *p,
                       xo_ref_t *ref, unsigned *pool)
{
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.place = *p;
    int rc = xo_spawn(rt, &where_def, &opts, ref);
    if (rc != 0)
        return rc;
    xo_future_t *f;
    cr_assert_eq(xo_call(*ref, WHERE, NULL, 0, &f), 0);
    struct where_reply w;
    take_reply(f, &w, sizeof(w));
    xo_pool_info_t info;
    cr_assert_eq(xo_pool_info(rt, w.pool, &info), 0);
    if (info.pinned)
        cr_assert_eq(w.cpu, info.core, "ran on its pool's core");
    xo_actor_stats_t st;
    cr_assert_eq(xo_actor_stats(*ref, &st), 0);
    cr_assert_eq(st.pool, w.pool, "stats and handler agree");
    *pool = w.pool;
    return 0;
}

Test(placement, each_policy_lands_where_it_says)
{
    xo_runtime_t *rt = start_labelled();
    xo_ref_t r;
    unsigned pool;
    xo_placement_t p = { .kind = XO_PLACE_POOL, .pool = 2 };
    cr_assert_eq(spawn_where(rt, &p, &r, &pool), 0);
    cr_assert_eq(pool, 2);

    p = (xo_placement_t){ .kind = XO_PLACE_MAIN };
    cr_assert_eq(spawn_where(rt, &p, &r, &pool), 0);
    cr_assert_eq(pool, 0);

    p = (xo_placement_t){ .kind = XO_PLACE_NEAR, .near = r };
    cr_assert_eq(spawn_where(rt, &p, &r, &pool), 0);
    cr_assert_eq(pool, 0, "next to the actor it names");

    p = (xo_placement_t){ .kind = XO_PLACE_RANDOM_LABEL, .label = "io" };
    int seen[3] = { 0 };
    for (int i = 0; i < 40; i++) {
        cr_assert_eq(spawn_where(rt, &p, &r, &pool), 0);
        cr_assert(pool == 1 || pool == 2, "only pools labelled io");
        seen[pool]++;
    }
    p.label = "gpu-feeder";
    cr_assert_eq(spawn_where(rt, &p, &r, &pool), 0);
    cr_assert_eq(pool, 1);
    p.label = "nobody";
    cr_assert_eq(spawn_where(rt, &p, &r, &pool), XO_ENOSLOT);
    p.label = "cpu"; /* every CPU pool carries it */
    cr_assert_eq(spawn_where(rt, &p, &r, &pool), 0);

    p = (xo_placement_t){ .kind = XO_PLACE_RANDOM };
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(spawn_where(rt, &p, &r, &pool), 0);
        cr_assert_lt(pool, 3);
    }

    p = (xo_placement_t){ .kind = XO_PLACE_ROUND_ROBIN };
    unsigned first;
    cr_assert_eq(spawn_where(rt, &p, &r, &first), 0);
    for (unsigned i = 1; i < 6; i++) {
        cr_assert_eq(spawn_where(rt, &p, &r, &pool), 0);
        cr_assert_eq(pool, (first + i) % 3, "round-robin cycles the pools");
    }
    stop_runtime(rt);
}

Test(placement, least_loaded_is_the_default_and_picks_the_emptiest_pool)
{
    xo_runtime_t *rt = start_labelled();
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    xo_ref_t r;
    /* Load pools 0 and 2 with actors; the default must pick pool 1. */
    for (int i = 0; i < 5; i++) {
        opts.pool = 0;
        cr_assert_eq(xo_spawn(rt, &where_def, &opts, &r), 0);
        opts.pool = 2;
        cr_assert_eq(xo_spawn(rt, &where_def, &opts, &r), 0);
    }
    /* With every worker equally idle (parked), actors decide. */
    for (unsigned i = 0; i < 3; i++) {
        xo_pool_info_t info;
        do {
            sleep_ms(1);
            cr_assert_eq(xo_pool_info(rt, i, &info), 0);
        } while (!info.parked);
    }
    xo_placement_t p = { 0 }; /* zeroed: XO_PLACE_LEAST_LOADED */
    unsigned pool;
    cr_assert_eq(spawn_where(rt, &p, &r, &pool), 0);
    cr_assert_eq(pool, 1);
    /* And spreads: three more default spawns go where actors are fewest. */
    uint64_t counts[3];
    for (int i = 0; i < 12; i++)
        cr_assert_eq(spawn_where(rt, &p, &r, &pool), 0);
    for (unsigned i = 0; i < 3; i++) {
        xo_pool_info_t info;
        cr_assert_eq(xo_pool_info(rt, i, &info), 0);
        counts[i] = info.actors;
    }
    cr_assert_eq(counts[0] + counts[1] + counts[2], 23);
    cr_assert_leq(counts[1], 8, "no pool ran far ahead");
    stop_runtime(rt);
}

static int pick_last(xo_runtime_t *rt, const xo_actor_def_t *def, void *user,
                     unsigned *pool)
{
    (void)def;
    *(int *)user += 1;
    *pool = xo_pool_count(rt) - 1;
    return 0;
}

static int refuse(xo_runtime_t *rt, const xo_actor_def_t *def, void *user,
                  unsigned *pool)
{
    (void)rt;
    (void)def;
    (void)user;
    (void)pool;
    return XO_ENOSLOT;
}

static int out_of_range(xo_runtime_t *rt, const xo_actor_def_t *def,
                        void *user, unsigned *pool)
{
    (void)def;
    (void)user;
    *pool = xo_pool_count(rt) + 5;
    return 0;
}

Test(placement, policy_callback_is_honoured_and_its_errors_reported)
{
    xo_runtime_t *rt = start_labelled();
    int calls = 0;
    xo_placement_t p = { .kind = XO_PLACE_CALLBACK, .fn = pick_last,
                         .user = &calls };
    xo_ref_t r;
    unsigned pool;
    cr_assert_eq(spawn_where(rt, &p, &r, &pool), 0);
    cr_assert_eq(pool, 2);
    cr_assert_eq(calls, 1);
    p.fn = refuse;
    cr_assert_eq(spawn_where(rt, &p, &r, &pool), XO_ENOSLOT);
    p.fn = out_of_range;
    cr_assert_eq(spawn_where(rt, &p, &r, &pool), XO_EINVAL);
    p.fn = NULL;
    cr_assert_eq(spawn_where(rt, &p, &r, &pool), XO_EINVAL);
    stop_runtime(rt);
}

/* ---- idle-label ------------------------------------------------------- */

Test(placement, idle_label_fills_each_labelled_pool_once_then_enoslot)
{
    xo_runtime_t *rt = start_labelled();
    xo_placement_t p = { .kind = XO_PLACE_IDLE_LABEL, .label = "io",
                         .mark = "worker" };
    xo_ref_t a, b, c;
    unsigned pa, pb, pc;
    cr_assert_eq(spawn_where(rt, &p, &a, &pa), 0);
    cr_assert_eq(spawn_where(rt, &p, &b, &pb), 0);
    cr_assert(pa != pb && (pa == 1 || pa == 2) && (pb == 1 || pb == 2));
    cr_assert_eq(spawn_where(rt, &p, &c, &pc), XO_ENOSLOT);
    /* Another mark is another reservation. */
    p.mark = "cache";
    cr_assert_eq(spawn_where(rt, &p, &c, &pc), 0);
    /* Destroying a holder frees its pool for the same mark. */
    p.mark = "worker";
    cr_assert_eq(xo_destroy(a), 0); /* waits for the reap */
    cr_assert_eq(spawn_where(rt, &p, &c, &pc), 0);
    cr_assert_eq(pc, pa);
    cr_assert_eq(xo_destroy(c), 0);
    p.mark = NULL;
    cr_assert_eq(spawn_where(rt, &p, &c, &pc), XO_EINVAL);
    stop_runtime(rt);
}

struct idle_race {
    xo_runtime_t *rt;
    pthread_barrier_t *start;
    int ok[64];
    unsigned pool[64];
};

static void *idle_racer(void *arg)
{
    struct idle_race *r = arg;
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.place = (xo_placement_t){ .kind = XO_PLACE_IDLE_LABEL, .label = "io" };
    char mark[16];
    for (int i = 0; i < 64; i++) {
        snprintf(mark, sizeof(mark), "m%d", i);
        opts.place.mark = mark;
        pthread_barrier_wait(r->start);
        xo_ref_t ref;
        r->ok[i] = xo_spawn(r->rt, &where_def, &opts, &ref);
        xo_actor_stats_t st;
        if (r->ok[i] == 0 && xo_actor_stats(ref, &st) == 0)
            r->pool[i] = st.pool;
    }
    return NULL;
}

Test(placement, idle_label_never_gives_one_pool_to_two_concurrent_spawns)
{
    xo_runtime_t *rt = start_labelled();
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 3);
    static struct idle_race r[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        r[i].rt = rt;
        r[i].start = &start;
        pthread_create(&t[i], NULL, idle_racer, &r[i]);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    for (int m = 0; m < 64; m++) {
        int wins = 0, full = 0;
        for (int i = 0; i < 3; i++) {
            if (r[i].ok[m] == 0)
                wins++;
            else if (r[i].ok[m] == XO_ENOSLOT)
                full++;
        }
        cr_assert_eq(wins, 2, "mark %d: both io pools taken once", m);
        cr_assert_eq(full, 1, "mark %d: the third gets XO_ENOSLOT", m);
        unsigned seen = 0;
        for (int i = 0; i < 3; i++)
            if (r[i].ok[m] == 0)
                seen |= 1u << r[i].pool[m];
        cr_assert_eq(seen, (1u << 1) | (1u << 2), "on distinct pools");
    }
    pthread_barrier_destroy(&start);
    stop_runtime(rt);
}

/* ---- adding and removing pools ---------------------------------------- */

static atomic_int destroyed, handled_before_destroy;

struct keeper {
    int handled;
};

static int keeper_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)m;
    ((struct keeper *)state)->handled++;
    return 0;
}

static int keeper_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    atomic_fetch_add(&handled_before_destroy,
                     ((struct keeper *)state)->handled);
    atomic_fetch_add(&destroyed, 1);
    return 0;
}

static const xo_actor_def_t keeper_def = {
    .name = "keeper", .state_size = sizeof(struct keeper),
    .on_message = keeper_message, .on_destroy = keeper_destroy,
};

Test(placement, added_pool_grows_the_table_and_runs_actors)
{
    xo_runtime_t *rt = start_runtime(1);
    unsigned idx;
    xo_pool_spec_t spec;
    xo_pool_spec_init(&spec);
    spec.labels = "extra";
    cr_assert_eq(xo_pool_add(rt, &spec, &idx), 0);
    cr_assert_eq(idx, 1);
    cr_assert_eq(xo_pool_count(rt), 2);
    xo_pool_info_t info;
    cr_assert_eq(xo_pool_info(rt, idx, &info), 0);
    cr_assert_eq(info.kind, XO_POOL_CPU);
    cr_assert_eq(info.state, XO_POOL_RUNNING);
    cr_assert_eq(info.device, -1);
    cr_assert_str_eq(info.labels, "cpu,extra");
    xo_placement_t p = { .kind = XO_PLACE_RANDOM_LABEL, .label = "extra" };
    xo_ref_t r;
    unsigned pool;
    cr_assert_eq(spawn_where(rt, &p, &r, &pool), 0);
    cr_assert_eq(pool, idx, "an actor runs on the new pool");
    spec.labels = ",bad";
    cr_assert_eq(xo_pool_add(rt, &spec, &idx), XO_EINVAL);
    xo_pool_spec_init(&spec);
    spec.cpu = -2;
    cr_assert_eq(xo_pool_add(rt, &spec, &idx), XO_EINVAL);
    xo_pool_spec_init(&spec);
    spec.kind = XO_POOL_GPU;
    spec.device = 1000; /* no such device (test_gpu covers GPU pools) */
    cr_assert_eq(xo_pool_add(rt, &spec, &idx), XO_EINVAL);
    spec.kind = (xo_pool_kind_t)77;
    cr_assert_eq(xo_pool_add(rt, &spec, &idx), XO_EINVAL);
    cr_assert_eq(xo_pool_count(rt), 2, "no refused pool took an index");
    cr_assert_eq(xo_pool_add(rt, NULL, &idx), 0, "NULL: a plain CPU pool");
    cr_assert_eq(xo_pool_info(rt, idx, &info), 0);
    cr_assert_str_eq(info.labels, "cpu");
    stop_runtime(rt);
}

Test(placement, removed_pool_drains_and_destroys_its_actors_then_enotexist)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.pool = 1;
    xo_ref_t doomed[10], kept;
    for (int i = 0; i < 10; i++)
        cr_assert_eq(xo_spawn(rt, &keeper_def, &opts, &doomed[i]), 0);
    opts.pool = 0;
    cr_assert_eq(xo_spawn(rt, &keeper_def, &opts, &kept), 0);
    for (int n = 0; n < 100; n++)
        for (int i = 0; i < 10; i++)
            cr_assert_eq(xo_tell(doomed[i], FLOOD, NULL, 0), 0);
    cr_assert_eq(xo_pool_remove(rt, 1), 0);
    cr_assert_eq(atomic_load(&destroyed), 10, "its actors were destroyed");
    cr_assert_eq(atomic_load(&handled_before_destroy), 1000,
                 "after handling what they had accepted");
    for (int i = 0; i < 10; i++)
        cr_assert_eq(xo_tell(doomed[i], FLOOD, NULL, 0), XO_ENOTEXIST);
    cr_assert_eq(xo_tell(kept, FLOOD, NULL, 0), 0, "other pools go on");
    xo_pool_info_t info;
    cr_assert_eq(xo_pool_info(rt, 1, &info), 0);
    cr_assert_eq(info.kind, XO_POOL_CPU);
    cr_assert_eq(info.state, XO_POOL_REMOVED);
    cr_assert_eq(info.actors, 0);
    /* Placement never picks it again. */
    opts.pool = 1;
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &keeper_def, &opts, &r), XO_ENOSLOT);
    xo_spawn_opts_init(&opts);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(xo_spawn(rt, &keeper_def, &opts, &r), 0);
        xo_actor_stats_t st;
        cr_assert_eq(xo_actor_stats(r, &st), 0);
        cr_assert_eq(st.pool, 0);
    }
    cr_assert_eq(xo_pool_remove(rt, 1), XO_ENOTEXIST, "already removed");
    cr_assert_eq(xo_pool_remove(rt, 0), XO_EINVAL, "not the main pool");
    cr_assert_eq(xo_pool_remove(rt, 9), XO_ENOTEXIST);
    stop_runtime(rt);
}

static int always_refuse(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    (void)state;
    atomic_fetch_add(&destroyed, 1);
    return XO_EINVAL;
}

static const xo_actor_def_t refusing_def = {
    .name = "refusing", .on_destroy = always_refuse,
};

static atomic_int objections;

static void count_objection(xo_runtime_t *rt, xo_ref_t actor, uint32_t tag,
                            int err, void *user)
{
    (void)rt;
    (void)actor;
    (void)tag;
    (void)user;
    if (err == XO_EINVAL)
        atomic_fetch_add(&objections, 1);
}

Test(placement, removing_a_pool_destroys_even_actors_whose_on_destroy_refuses)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 2;
    cfg.spin_ns = 5000;
    cfg.on_handler_error = count_objection;
    xo_runtime_t *rt;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), 0);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.pool = 1;
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &refusing_def, &opts, &r), 0);
    cr_assert_eq(xo_pool_remove(rt, 1), 0, "returns: no revive on a leaving pool");
    cr_assert_eq(atomic_load(&destroyed), 1);
    cr_assert_eq(atomic_load(&objections), 1, "the refusal was reported");
    cr_assert_not(xo_ref_alive(r));
    stop_runtime(rt);
}

/* ---- work sharing ----------------------------------------------------- */

static atomic_int release_block;
static atomic_int blocking;

static int blocker_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    atomic_store(&blocking, 1);
    while (!atomic_load(&release_block))
        sleep_ms(1);
    return 0;
}

static const xo_actor_def_t blocker_def = {
    .name = "blocker", .on_message = blocker_message,
};

struct thread_reply {
    pthread_t thread;
};

static int thread_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    struct thread_reply r = { pthread_self() };
    return xo_reply(m->request, PROBE, &r, sizeof(r));
}

static const xo_actor_def_t thread_def = {
    .name = "thread", .on_message = thread_message,
};

static pthread_t thread_of(xo_future_t *f)
{
    struct thread_reply t;
    take_reply(f, &t, sizeof(t));
    return t.thread;
}

/* ---- fairness --------------------------------------------------------- */

static atomic_long flood_handled;
static _Atomic long probe_saw = -1;
static struct latch probed;

static int flood_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    atomic_fetch_add(&flood_handled, 1);
    return 0;
}

static int probe_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    atomic_store(&probe_saw, atomic_load(&flood_handled));
    latch_count_down(&probed);
    return 0;
}

static const xo_actor_def_t flood_def = {
    .name = "flood", .on_message = flood_message,
};
static const xo_actor_def_t probe_def = {
    .name = "probe", .on_message = probe_message,
};

#define FLOOD_SIZE 200000

Test(placement, a_flooded_actor_does_not_starve_its_pool_mates)
{
    xo_runtime_t *rt = start_runtime(1);
    latch_init(&probed, 1);
    xo_ref_t flood, probe, blocker;
    cr_assert_eq(xo_spawn(rt, &flood_def, NULL, &flood), 0);
    cr_assert_eq(xo_spawn(rt, &probe_def, NULL, &probe), 0);
    cr_assert_eq(xo_spawn(rt, &blocker_def, NULL, &blocker), 0);
    /* Hold the only worker, so both are queued before either runs. */
    cr_assert_eq(xo_tell(blocker, BLOCK, NULL, 0), 0);
    while (!atomic_load(&blocking))
        sleep_ms(1);
    /* Queue the whole flood first (one exchange), then the probe. */
    static xo_batch_item_t items[FLOOD_SIZE];
    for (int i = 0; i < FLOOD_SIZE; i++)
        items[i] = (xo_batch_item_t){ FLOOD, NULL, 0 };
    cr_assert_eq(xo_tell_batch(flood, items, FLOOD_SIZE), 0);
    cr_assert_eq(xo_tell(probe, PROBE, NULL, 0), 0);
    atomic_store(&release_block, 1);
    latch_wait(&probed);
    cr_assert_lt(atomic_load(&probe_saw), FLOOD_SIZE,
                 "the probe ran while the flood was still queued");
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&flood_handled), FLOOD_SIZE);
}

Test(placement, only_movable_actors_run_on_an_idle_pool_while_home_is_busy)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.pool = 0;
    xo_ref_t blocker, pinned, movable;
    cr_assert_eq(xo_spawn(rt, &blocker_def, &opts, &blocker), 0);
    cr_assert_eq(xo_spawn(rt, &thread_def, &opts, &pinned), 0);
    opts.move = XO_MOVE_FREE;
    cr_assert_eq(xo_spawn(rt, &thread_def, &opts, &movable), 0);
    /* Where pool 0's worker runs, measured while it is free. */
    xo_future_t *f;
    cr_assert_eq(xo_call(pinned, PROBE, NULL, 0, &f), 0);
    pthread_t home = thread_of(f);

    cr_assert_eq(xo_tell(blocker, BLOCK, NULL, 0), 0); /* pool 0 busy */
    while (!atomic_load(&blocking))
        sleep_ms(1);
    xo_pool_info_t other;
    do { /* wait until pool 1's worker parked (idle) */
        sleep_ms(2);
        cr_assert_eq(xo_pool_info(rt, 1, &other), 0);
    } while (!other.parked);
    xo_future_t *fm, *fp;
    cr_assert_eq(xo_call(movable, PROBE, NULL, 0, &fm), 0);
    pthread_t moved = thread_of(fm); /* answered while pool 0 is blocked */
    cr_assert_eq(xo_call(pinned, PROBE, NULL, 0, &fp), 0);
    atomic_store(&release_block, 1);
    pthread_t stayed = thread_of(fp);
    cr_assert_not(pthread_equal(moved, home),
                  "the movable actor ran on the idle pool");
    cr_assert(pthread_equal(stayed, home),
              "the pinned actor waited for its own pool");
    xo_actor_stats_t st;
    cr_assert_eq(xo_actor_stats(movable, &st), 0);
    cr_assert_eq(st.pool, 0, "its home did not change");
    stop_runtime(rt);
}

Test(placement, config_pool_specs_are_validated_and_applied)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    xo_pool_spec_t specs[2];
    xo_pool_spec_init(&specs[0]);
    xo_pool_spec_init(&specs[1]);
    specs[0].cpu = 0;
    cfg.pool_specs = specs; /* without an explicit pool count */
    xo_runtime_t *rt;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), XO_EINVAL);
    cfg.pools = 2;
    specs[1].cpu = -7;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), XO_EINVAL);
    specs[1].cpu = 0; /* both on CPU 0 */
    cfg.spin_ns = 0;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), 0);
    xo_pool_info_t info;
    cr_assert_eq(xo_pool_info(rt, 1, &info), 0);
    cr_assert_eq(info.core, 0);
    cr_assert_str_eq(info.labels, "cpu");
    stop_runtime(rt);
}

/* A stateless task still running on a pool being removed may itself need
   the pool table (an idle-label spawn): the removal must not hold the
   table's lock while it waits for that worker. */
static atomic_int task_on_pool1, task_spawned = 1;

static const xo_actor_def_t leaf_def = { .name = "leaf" };

static int slow_task_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    (void)m;
    if (xo_ctx_pool(ctx) != 1)
        return 0;
    atomic_store(&task_on_pool1, 1);
    sleep_ms(100); /* the removal reaches its join meanwhile */
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.place = (xo_placement_t){ .kind = XO_PLACE_IDLE_LABEL, .label = "cpu",
                                .mark = "m" };
    xo_ref_t r;
    atomic_store(&task_spawned, xo_spawn(xo_ctx_runtime(ctx), &leaf_def, &o,
                                         &r));
    return 0;
}

static const xo_actor_def_t slow_task_def = {
    .name = "slow-task", .flags = XO_ACTOR_STATELESS,
    .on_message = slow_task_message,
};

Test(placement, removal_does_not_hold_the_pool_table_while_joining_its_worker)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.pool = 0;
    xo_ref_t t;
    cr_assert_eq(xo_spawn(rt, &slow_task_def, &opts, &t), 0);
    /* Stateless tasks spread over the pools: send until one runs on 1. */
    while (!atomic_load(&task_on_pool1)) {
        cr_assert_eq(xo_tell(t, 1, NULL, 0), 0);
        sleep_ms(5);
    }
    cr_assert_eq(xo_pool_remove(rt, 1), 0); /* a deadlock hangs here */
    cr_assert_eq(atomic_load(&task_spawned), 0, "the task's spawn went on");
    stop_runtime(rt);
}

/* ---- handler turns and grace periods ---------------------------------- */

/* The gate holds the calls it gets until the main thread opens it. */
static _Atomic(xo_request_t *) gate_req;
static atomic_int waiter_done;

static int gate_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    atomic_store(&gate_req, xo_request_defer(m->request));
    return 0;
}

static const xo_actor_def_t gate_def = { .name = "gate",
                                         .on_message = gate_message };

/* Calls the gate (the ref is the message) and waits inside its handler. */
static int waiter_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    xo_ref_t gate;
    memcpy(&gate, m->data, sizeof(gate));
    xo_future_t *f;
    int rc = xo_call(gate, 1, NULL, 0, &f);
    if (rc == 0) {
        rc = xo_future_wait(f, -1);
        xo_future_release(f);
    }
    atomic_store(&waiter_done, rc == 0 ? 1 : -1);
    return 0;
}

static const xo_actor_def_t waiter_def = { .name = "waiter",
                                           .on_message = waiter_message };

Test(placement, pool_removal_goes_on_while_a_handler_on_another_pool_waits)
{
    /* Pool 1 runs a handler blocked in a call; removing pool 2 waits for a
       grace period, which must not wait for that handler (its turn leaves
       its read-side section for the wait). A hang here fails by timeout. */
    xo_runtime_t *rt = start_runtime(3);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    xo_ref_t gate, waiter;
    opts.pool = 0;
    cr_assert_eq(xo_spawn(rt, &gate_def, &opts, &gate), 0);
    opts.pool = 1;
    cr_assert_eq(xo_spawn(rt, &waiter_def, &opts, &waiter), 0);
    cr_assert_eq(xo_tell(waiter, 1, &gate, sizeof(gate)), 0);
    while (atomic_load(&gate_req) == NULL)
        sleep_ms(1);
    cr_assert_eq(xo_pool_remove(rt, 2), 0);
    cr_assert_eq(atomic_load(&waiter_done), 0, "the handler still waits");
    cr_assert_eq(xo_reply(atomic_load(&gate_req), 1, NULL, 0), 0);
    while (atomic_load(&waiter_done) == 0)
        sleep_ms(1);
    cr_assert_eq(atomic_load(&waiter_done), 1, "its call was answered");
    stop_runtime(rt);
}

static atomic_int remote_remove_rc = -100;

/* Removes pool 1 of the runtime named by the message, from a handler. */
static int remover_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    xo_runtime_t *other;
    memcpy(&other, m->data, sizeof(other));
    atomic_store(&remote_remove_rc, xo_pool_remove(other, 1));
    return 0;
}

static const xo_actor_def_t remover_def = { .name = "remover",
                                            .on_message = remover_message };

Test(placement, a_handler_can_remove_a_pool_of_another_runtime)
{
    /* The removal waits for a grace period from inside a handler turn of
       the first runtime: the turn's read-side section must be left first,
       or the wait would be for itself. */
    xo_runtime_t *rt = start_runtime(1);
    xo_runtime_t *other = start_runtime(2);
    xo_ref_t remover;
    cr_assert_eq(xo_spawn(rt, &remover_def, NULL, &remover), 0);
    cr_assert_eq(xo_tell(remover, 1, &other, sizeof(other)), 0);
    while (atomic_load(&remote_remove_rc) == -100)
        sleep_ms(1);
    cr_assert_eq(atomic_load(&remote_remove_rc), 0);
    xo_pool_info_t info;
    cr_assert_eq(xo_pool_info(other, 1, &info), 0);
    cr_assert_eq(info.state, XO_POOL_REMOVED, "pool 1 of the other runtime");
    stop_runtime(other);
    stop_runtime(rt);
}
