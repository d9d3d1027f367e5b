/*
 * support.h -- helpers shared by the test suites: a runtime with test-sized
 * defaults, a latch to wait for events that happen on workers, and a clock
 * for bounded polling (never asserted on: a hang fails by ctest's timeout).
 */
#ifndef XO_TEST_SUPPORT_H
#define XO_TEST_SUPPORT_H

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "xoscar/xoscar.h"

static inline xo_runtime_t *start_runtime(unsigned pools)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = pools;
    cfg.spin_ns = 5000; /* two cores: do not starve the test thread */
    xo_runtime_t *rt = NULL;
    int rc = xo_runtime_start(&cfg, &rt);
    cr_assert_eq(rc, 0, "xo_runtime_start: %s", xo_strerror(rc));
    return rt;
}

static inline void stop_runtime(xo_runtime_t *rt)
{
    int rc = xo_runtime_stop(rt);
    cr_assert_eq(rc, 0, "xo_runtime_stop: %s", xo_strerror(rc));
    xo_runtime_free(rt);
}

struct latch {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    long count;
};

static inline void latch_init(struct latch *l, long count)
{
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, NULL);
    l->count = count;
}

static inline void latch_count_down(struct latch *l)
{
    pthread_mutex_lock(&l->lock);
    if (--l->count <= 0)
        pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

static inline void latch_wait(struct latch *l)
{
    pthread_mutex_lock(&l->lock);
    while (l->count > 0)
        pthread_cond_wait(&l->cond, &l->lock);
    pthread_mutex_unlock(&l->lock);
}

static inline void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* An actor on a chosen pool (XO_POOL_ANY: wherever placement puts it). */
__attribute__((unused)) static xo_ref_t spawn_on(xo_runtime_t *rt,
                                                 const xo_actor_def_t *def,
                                                 int pool)
{
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.pool = pool;
    xo_ref_t r;
    int rc = xo_spawn(rt, def, &opts, &r);
    cr_assert_eq(rc, 0, "xo_spawn: %s", xo_strerror(rc));
    return r;
}

/* ---- a counting actor, for the suites that only need to count ---------- */

static atomic_long counted_messages, counted_destroys;

__attribute__((unused)) static int counting_message(xo_ctx_t *ctx,
                                                    void *state,
                                                    const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    atomic_fetch_add(&counted_messages, 1);
    return 0;
}

__attribute__((unused)) static int counting_destroy(xo_ctx_t *ctx,
                                                    void *state)
{
    (void)ctx;
    (void)state;
    atomic_fetch_add(&counted_destroys, 1);
    return 0;
}

__attribute__((unused)) static const xo_actor_def_t counting_def = {
    .name = "counting", .on_message = counting_message,
    .on_destroy = counting_destroy,
};

/* Until the live actor r has handled n messages (xo_actor_stats). */
__attribute__((unused)) static void wait_handled(xo_ref_t r, uint64_t n)
{
    xo_actor_stats_t st;
    for (;;) {
        cr_assert_eq(xo_actor_stats(r, &st), 0);
        if (st.handled >= n)
            return;
        sleep_ms(1);
    }
}

#endif
