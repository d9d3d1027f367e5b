/*
 * runtime.c -- start and stop.
 *
 * Stop, in order:
 *  1. state = CLOSING. Every send, spawn, lookup and destroy checks it
 *     inside an RCU read-side section and fails with XO_ECLOSED.
 *  2. synchronize: every section that saw the runtime open is over, so
 *     every message accepted is in a mailbox and every published actor is
 *     in the slot table.
 *  3. barrier: the grace-period callbacks of earlier destroys have run, so
 *     their reap markers are queued.
 *  4. sweep: unpublish each live actor and queue its reap marker behind its
 *     mailbox.
 *  5. wait until every actor was reaped (each worker handles the mailbox,
 *     then on_destroy, then frees the cell), then stop and join workers.
 * Handlers keep running during 5; their sends fail with XO_ECLOSED, so
 * actors that message each other forever still drain. The tables (slots,
 * registry, workers array) are released by xo_runtime_free, not by stop:
 * a thread racing with stop may still reach them and must find them there.
 */
#include "runtime.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XO_MAX_POOLS 4096u

void xo_config_init(xo_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->pools = 0;
    cfg->pin_threads = true;
    cfg->batch = 64;
    cfg->spin_ns = 50000;
}

static unsigned allowed_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
}

static void release_tables(xo_runtime_t *rt);
static void wait_stopped(xo_runtime_t *rt);

static void free_leftover_name(struct xo_name *n, void *arg)
{
    xo_runtime_t *rt = arg;
    xo_mem_free(&rt->mem, n, sizeof(*n) + n->len + 1);
}

int xo_runtime_start(const xo_config_t *cfg, xo_runtime_t **out)
{
    xo_config_t defaults;
    if (out == NULL)
        return XO_EINVAL;
    if (cfg == NULL) {
        xo_config_init(&defaults);
        cfg = &defaults;
    }
    if (cfg->batch == 0 || cfg->pools > XO_MAX_POOLS)
        return XO_EINVAL;
    xo_runtime_t *rt;
    if (posix_memalign((void **)&rt, XO_CACHELINE, sizeof(*rt)) != 0)
        return XO_ENOMEM;
    memset(rt, 0, sizeof(*rt));
    rt->cfg = *cfg;
    rt->npools = cfg->pools ? cfg->pools : allowed_cpus();
    atomic_init(&rt->state, XO_RT_RUNNING);
    xo_mem_init(&rt->mem);
    pthread_mutex_init(&rt->stop_lock, NULL);
    pthread_cond_init(&rt->stop_cond, NULL);
    int rc = XO_ENOMEM;
    if (posix_memalign((void **)&rt->workers, XO_CACHELINE,
                       sizeof(*rt->workers) * rt->npools) != 0)
        goto fail_workers;
    memset(rt->workers, 0, sizeof(*rt->workers) * rt->npools);
    if ((rc = xo_slots_init(&rt->slots, &rt->mem)) != 0)
        goto fail_slots;
    if ((rc = xo_registry_init(&rt->names)) != 0)
        goto fail_names;
    if ((rc = xo_workers_start(rt)) != 0) {
        xo_workers_stop(rt);
        release_tables(rt);
        goto fail_workers;
    }
    *out = rt;
    return 0;
fail_names:
    xo_slots_fini(&rt->slots, &rt->mem);
fail_slots:
    free(rt->workers);
fail_workers:
    pthread_cond_destroy(&rt->stop_cond);
    pthread_mutex_destroy(&rt->stop_lock);
    free(rt);
    return rc;
}

void xo_runtime_actor_gone(xo_runtime_t *rt)
{
    /* acq_rel: the last reaper's writes (freed cells) happen before stop
       tears the tables down. */
    if (atomic_fetch_sub_explicit(&rt->live, 1, memory_order_acq_rel) != 1)
        return;
    pthread_mutex_lock(&rt->stop_lock);
    if (rt->stopping)
        pthread_cond_broadcast(&rt->stop_cond);
    pthread_mutex_unlock(&rt->stop_lock);
}

static void release_tables(xo_runtime_t *rt)
{
    xo_registry_fini(&rt->names, free_leftover_name, rt);
    xo_slots_fini(&rt->slots, &rt->mem);
    free(rt->workers);
    rt->workers = NULL;
}

int xo_runtime_stop(xo_runtime_t *rt)
{
    if (rt == NULL)
        return XO_EINVAL;
    if (xo_current_worker_runtime() == rt || xo_current_ctx() != NULL)
        return XO_EINVAL;
    int expected = XO_RT_RUNNING;
    /* seq_cst: the flag must be globally visible before the grace period
       below begins (RCU's guarantee then covers every later reader). */
    if (!atomic_compare_exchange_strong(&rt->state, &expected, XO_RT_CLOSING)) {
        wait_stopped(rt); /* a second stop returns once the first is done */
        return XO_ECLOSED;
    }
    xo_rcu_synchronize(&rt->rcu_sync);
    xo_rcu_barrier(&rt->rcu_sync);
    pthread_mutex_lock(&rt->stop_lock);
    rt->stopping = true;
    pthread_mutex_unlock(&rt->stop_lock);
    xo_actors_close_all(rt);
    pthread_mutex_lock(&rt->stop_lock);
    /* acquire: pairs with the acq_rel decrement in xo_runtime_actor_gone. */
    while (atomic_load_explicit(&rt->live, memory_order_acquire) != 0)
        pthread_cond_wait(&rt->stop_cond, &rt->stop_lock);
    pthread_mutex_unlock(&rt->stop_lock);
    xo_workers_stop(rt);
    /* The tables stay until xo_runtime_free: a thread that passed a
       closing check just before stop began may still be on its way to
       them (it will then fail with XO_ECLOSED). */
    pthread_mutex_lock(&rt->stop_lock);
    atomic_store(&rt->state, XO_RT_STOPPED);
    pthread_cond_broadcast(&rt->stop_cond);
    pthread_mutex_unlock(&rt->stop_lock);
    return 0;
}

/* Until the stop in progress (on another thread) has finished. */
static void wait_stopped(xo_runtime_t *rt)
{
    pthread_mutex_lock(&rt->stop_lock);
    while (atomic_load(&rt->state) != XO_RT_STOPPED)
        pthread_cond_wait(&rt->stop_cond, &rt->stop_lock);
    pthread_mutex_unlock(&rt->stop_lock);
}

void xo_runtime_free(xo_runtime_t *rt)
{
    if (rt == NULL)
        return;
    if (xo_runtime_stop(rt) == XO_ECLOSED)
        wait_stopped(rt);
    release_tables(rt);
    pthread_cond_destroy(&rt->stop_cond);
    pthread_mutex_destroy(&rt->stop_lock);
    free(rt);
}

unsigned xo_pool_count(const xo_runtime_t *rt)
{
    return rt ? rt->npools : 0;
}

int xo_pool_info(const xo_runtime_t *rt, unsigned index, xo_pool_info_t *out)
{
    if (rt == NULL || out == NULL || index >= rt->npools ||
        rt->workers == NULL)
        return XO_EINVAL;
    struct xo_worker *w = &rt->workers[index];
    out->index = index;
    out->core = w->core;
    out->pinned = w->pinned;
    /* relaxed: counters. */
    out->actors = atomic_load_explicit(&w->actors, memory_order_relaxed);
    out->handled = atomic_load_explicit(&w->handled, memory_order_relaxed);
    return 0;
}

xo_ref_t xo_self(const xo_ctx_t *ctx)
{
    return ctx && ctx->cell ? xo_cell_ref(ctx->cell) : XO_REF_NONE;
}

xo_runtime_t *xo_ctx_runtime(const xo_ctx_t *ctx)
{
    return ctx ? ctx->rt : NULL;
}

unsigned xo_ctx_pool(const xo_ctx_t *ctx)
{
    return ctx ? ctx->pool : 0;
}
