/*
 * Pools: each actor's handlers run on the worker thread of its pool, that
 * thread is pinned to the pool's core where the machine allows it, and the
 * pool counters add up.
 */
#include "support.h"

#include <sched.h>

enum { WHERE = 1 };

#define POOLS 2
#define MSGS 200

struct where {
    unsigned pool;
    pthread_t thread;
    int thread_changed;
    int wrong_pool;
    int wrong_cpu;
    int expected_cpu; /* -1: not pinned, any CPU */
    int count;
};

static struct where report[POOLS];
static struct latch done;

static int where_create(xo_ctx_t *ctx, void *state, const void *arg,
                        size_t size)
{
    struct where *w = state;
    (void)size;
    w->pool = xo_ctx_pool(ctx);
    w->expected_cpu = *(const int *)arg;
    return 0;
}

static int where_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct where *w = state;
    (void)m;
    if (w->count == 0)
        w->thread = pthread_self();
    else if (!pthread_equal(w->thread, pthread_self()))
        w->thread_changed++;
    if (xo_ctx_pool(ctx) != w->pool)
        w->wrong_pool++;
    if (w->expected_cpu >= 0 && sched_getcpu() != w->expected_cpu)
        w->wrong_cpu++;
    if (++w->count == MSGS) {
        report[w->pool] = *w;
        latch_count_down(&done);
    }
    return 0;
}

static const xo_actor_def_t where_def = {
    .name = "where", .state_size = sizeof(struct where),
    .on_create = where_create, .on_message = where_message,
};

Test(pools, handlers_run_on_their_pool_worker_pinned_to_its_core)
{
    xo_runtime_t *rt = start_runtime(POOLS);
    cr_assert_eq(xo_pool_count(rt), POOLS);
    latch_init(&done, POOLS);
    xo_ref_t a[POOLS];
    int pinned = 0;
    for (int p = 0; p < POOLS; p++) {
        xo_pool_info_t info;
        cr_assert_eq(xo_pool_info(rt, (unsigned)p, &info), 0);
        cr_assert_eq(info.index, (unsigned)p);
        int expected_cpu = info.pinned ? info.core : -1;
        pinned += info.pinned;
        xo_spawn_opts_t opts;
        xo_spawn_opts_init(&opts);
        opts.pool = p;
        opts.arg = &expected_cpu;
        opts.arg_size = sizeof(expected_cpu);
        cr_assert_eq(xo_spawn(rt, &where_def, &opts, &a[p]), 0);
        xo_actor_stats_t st;
        cr_assert_eq(xo_actor_stats(a[p], &st), 0);
        cr_assert_eq(st.pool, (unsigned)p);
    }
    for (int i = 0; i < MSGS; i++)
        for (int p = 0; p < POOLS; p++)
            cr_assert_eq(xo_tell(a[p], WHERE, NULL, 0), 0);
    latch_wait(&done);
    for (int p = 0; p < POOLS; p++) {
        cr_assert_eq(report[p].wrong_pool, 0);
        cr_assert_eq(report[p].thread_changed, 0, "one worker per pool");
        cr_assert_eq(report[p].wrong_cpu, 0, "pinned worker stayed on core");
    }
    cr_assert_not(pthread_equal(report[0].thread, report[1].thread),
                  "each pool has its own thread");
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) >= 1)
        cr_log_info("%d of %d pools pinned", pinned, POOLS);
    xo_pool_info_t i0, i1;
    cr_assert_eq(xo_pool_info(rt, 0, &i0), 0);
    cr_assert_eq(xo_pool_info(rt, 1, &i1), 0);
    cr_assert_eq(i0.actors, 1);
    cr_assert_eq(i1.actors, 1);
    stop_runtime(rt);
}

Test(pools, pins_distinct_cores_when_the_process_may_use_several)
{
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
    xo_runtime_t *rt = start_runtime(POOLS);
    xo_pool_info_t i0, i1;
    cr_assert_eq(xo_pool_info(rt, 0, &i0), 0);
    cr_assert_eq(xo_pool_info(rt, 1, &i1), 0);
    cr_assert(CPU_ISSET(i0.core, &set) && CPU_ISSET(i1.core, &set),
              "pools get CPUs this process may run on");
    if (CPU_COUNT(&set) >= POOLS)
        cr_assert_neq(i0.core, i1.core);
    stop_runtime(rt);
}

static int record_pool_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    (void)m;
    (void)ctx;
    return 0;
}

Test(pools, unpinned_config_starts_workers_without_affinity)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 3; /* more pools than this machine may have cores */
    cfg.pin_threads = false;
    cfg.spin_ns = 0;
    xo_runtime_t *rt;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), 0);
    static const xo_actor_def_t def = { .name = "nop",
                                        .on_message = record_pool_message };
    for (unsigned p = 0; p < 3; p++) {
        xo_pool_info_t info;
        cr_assert_eq(xo_pool_info(rt, p, &info), 0);
        cr_assert_not(info.pinned);
        xo_spawn_opts_t opts;
        xo_spawn_opts_init(&opts);
        opts.pool = (int)p;
        xo_ref_t r;
        cr_assert_eq(xo_spawn(rt, &def, &opts, &r), 0);
        for (int i = 0; i < 100; i++)
            cr_assert_eq(xo_tell(r, WHERE, NULL, 0), 0);
    }
    cr_assert_eq(xo_runtime_stop(rt), 0);
    xo_runtime_free(rt);
}

/* Two actors passing a token between them `left` times in all; the one
   that finds none left counts `done` down. */
struct hop {
    const xo_ref_t *peers; /* [2], filled before the first message */
    int self;
    _Atomic long *left;
    struct latch *done;
};

static int hop_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)m;
    struct hop *h = state;
    if (atomic_fetch_sub(h->left, 1) <= 1) {
        latch_count_down(h->done);
        return 0;
    }
    return xo_tell(h->peers[1 - h->self], WHERE, NULL, 0);
}

static int hop_setup(xo_ctx_t *ctx, void *state, const void *arg, size_t size)
{
    (void)ctx;
    memcpy(state, arg, size);
    return 0;
}

static const xo_actor_def_t hop_def = {
    .name = "hop", .state_size = sizeof(struct hop),
    .on_create = hop_setup, .on_message = hop_message,
};

/* Pass a token 2000 times between an actor of pool p and one of pool q. */
static void pass_token(xo_runtime_t *rt, unsigned p, unsigned q)
{
    static xo_ref_t peers[2];
    static _Atomic long left;
    atomic_store(&left, 2000);
    struct latch done;
    latch_init(&done, 1);
    unsigned pools[2] = { p, q };
    for (int i = 0; i < 2; i++) {
        struct hop h = { peers, i, &left, &done };
        xo_spawn_opts_t opts;
        xo_spawn_opts_init(&opts);
        opts.pool = (int)pools[i];
        opts.arg = &h;
        opts.arg_size = sizeof(h);
        cr_assert_eq(xo_spawn(rt, &hop_def, &opts, &peers[i]), 0);
    }
    cr_assert_eq(xo_tell(peers[0], WHERE, NULL, 0), 0);
    latch_wait(&done);
    cr_assert_eq(atomic_load(&left), 0);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(xo_destroy(peers[i]), 0);
}

static bool core_shared(xo_runtime_t *rt, unsigned pool)
{
    xo_pool_info_t info;
    cr_assert_eq(xo_pool_info(rt, pool, &info), 0);
    return info.core_shared;
}

Test(pools, workers_pinned_to_one_core_know_they_share_it_as_pools_come_and_go)
{
    /* Two pools pinned to the first CPU this process may use: each worker
       must know that the other may need that CPU (it then gives the CPU
       up while it waits for work instead of spinning); removing one
       clears it, adding a pool on the same CPU sets it again. A token
       passed between pools on that CPU keeps going throughout. */
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
    int c = 0;
    while (!CPU_ISSET(c, &set))
        c++;
    xo_pool_spec_t specs[2];
    for (int i = 0; i < 2; i++) {
        xo_pool_spec_init(&specs[i]);
        specs[i].cpu = c;
    }
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 2;
    cfg.pool_specs = specs;
    cfg.spin_ns = 1000000; /* spin while the token is on the other pool */
    xo_runtime_t *rt;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), 0);
    xo_pool_info_t info;
    cr_assert_eq(xo_pool_info(rt, 0, &info), 0);
    if (!info.pinned) { /* a system that refuses affinity */
        cr_assert_eq(xo_runtime_stop(rt), 0);
        xo_runtime_free(rt);
        cr_log_info("this system refuses thread affinity: nothing to share");
        return;
    }
    cr_assert(core_shared(rt, 0) && core_shared(rt, 1));
    pass_token(rt, 0, 1);

    cr_assert_eq(xo_pool_remove(rt, 1), 0);
    cr_assert_not(core_shared(rt, 0), "alone on its CPU again");

    unsigned added;
    cr_assert_eq(xo_pool_add(rt, &specs[0], &added), 0);
    cr_assert(core_shared(rt, 0) && core_shared(rt, added));
    pass_token(rt, 0, added);
    stop_runtime(rt);
}

Test(pools, default_pools_do_not_share_cores)
{
    /* One pool per allowed CPU, each pinned to its own: none shares. */
    xo_config_t cfg;
    xo_config_init(&cfg);
    xo_runtime_t *rt;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), 0);
    for (unsigned p = 0; p < xo_pool_count(rt); p++) {
        xo_pool_info_t info;
        cr_assert_eq(xo_pool_info(rt, p, &info), 0);
        if (info.pinned)
            cr_assert_not(info.core_shared, "pool %u", p);
    }
    cr_assert_eq(xo_runtime_stop(rt), 0);
    xo_runtime_free(rt);
}
