/*
 * runtime.c -- start and stop.
 *
 * Start: the tables, the pools, then the watchdog and the /metrics server
 * (both read the pools); a failure on the way frees what was made.
 *
 * Stop, in order:
 *  1. state = CLOSING. Every send, spawn, lookup and destroy checks it
 *     inside an RCU read-side section and fails with XO_ECLOSED. The
 *     /metrics server stops (http.c): it only reads, and after this no
 *     request of it runs.
 *  2. synchronize: every section that saw the runtime open is over, so
 *     every message accepted is in a mailbox and every published actor is
 *     in the slot table.
 *  3. barrier: the grace-period callbacks of earlier destroys have run, so
 *     their reap markers are queued.
 *  4. sweep: monitors give their DOWNs (XO_EXIT_STOPPING), then each live
 *     actor is unpublished and its reap marker queued behind its mailbox
 *     (a supervisor's children are left to it: it stops them in reverse
 *     order from its on_destroy); restart backoffs are cut short.
 *  5. wait until every actor was reaped (each worker handles the mailbox,
 *     then on_destroy, then frees the cell), then stop the net layer (if
 *     a node was started: net/), then stop and join workers.
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


void xo_config_init(xo_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->pools = 0;
    cfg->pin_threads = true;
    cfg->batch = 64;
    cfg->spin_ns = 50000;
    cfg->yield_sends = 256;
    cfg->steal = true;
    cfg->steal_wait_ns = 200000;          /* 200 us */
    cfg->stack_size = (size_t)8 << 20;
    cfg->watch_tick_ns = 10000000;        /* 10 ms */
    cfg->slow_handler_ns = 100000000;     /* 100 ms */
    cfg->stuck_turn_ns = 1000000000;      /* 1 s */
    cfg->slow_call_ns = 10000000000ull;   /* 10 s */
    cfg->mailbox_depth_alert = 10000;
    cfg->mailbox_age_ns = 1000000000;     /* 1 s */
    cfg->handler_sample = 64;
    cfg->stats_shm_ns = 500000000;        /* 500 ms */
    cfg->gpu_streams = 1;
    cfg->gpu_host_devices = 1;
}

static void release_tables(xo_runtime_t *rt);
static void wait_stopped(xo_runtime_t *rt);

static void free_leftover_name(struct xi_name *n, void *arg)
{
    xo_runtime_t *rt = arg;
    xi_mem_free(&rt->mem, n, sizeof(*n) + n->len + 1);
}

static bool config_valid(const xo_config_t *cfg)
{
    if (cfg->batch == 0 || cfg->batch > XO_BATCH_MAX ||
        cfg->pools > XO_POOLS_MAX)
        return false;
    if (cfg->stack_size < XO_STACK_MIN)
        return false;
    if (cfg->pool_specs != NULL && cfg->pools == 0)
        return false; /* per-pool specs need an explicit pool count */
    if (cfg->metrics_port > 65535 && cfg->metrics_port != XO_METRICS_PORT_ANY)
        return false;
    if (cfg->stats_shm && (cfg->watch_tick_ns == 0 || cfg->stats_shm_ns == 0))
        return false; /* the watchdog publishes the snapshot */
    if ((unsigned)cfg->gpu_backend > XO_GPU_HOST ||
        cfg->gpu_devices < XO_GPU_ALL ||
        cfg->gpu_devices > XO_GPU_DEVICES_MAX || cfg->gpu_streams == 0 ||
        cfg->gpu_streams > XO_GPU_STREAMS_MAX ||
        cfg->gpu_host_devices == 0 ||
        cfg->gpu_host_devices > XO_GPU_DEVICES_MAX)
        return false;
    return true; /* each spec is checked as its pool is made */
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
    if (!config_valid(cfg))
        return XO_EINVAL;
    xi_rcu_init();
    if (XI_STATS && cfg->handler_sample != 0)
        xi_ticks_init(); /* the sampled handler runs' clock */
    xo_runtime_t *rt;
    if (posix_memalign((void **)&rt, XI_CACHELINE, sizeof(*rt)) != 0)
        return XO_ENOMEM;
    memset(rt, 0, sizeof(*rt));
    rt->cfg = *cfg;
    rt->cfg.pool_specs = NULL; /* the caller's array is read at start only */
    rt->start_ns = xi_now_ns();
    atomic_init(&rt->state, XI_RT_RUNNING);
    xi_mem_init(&rt->mem);
    pthread_mutex_init(&rt->stop_lock, NULL);
    pthread_cond_init(&rt->stop_cond, NULL);
    pthread_mutex_init(&rt->pools_lock, NULL);
    pthread_mutex_init(&rt->trace_lock, NULL);
    int rc = xi_slots_init(&rt->slots, &rt->mem);
    if (rc != 0)
        goto fail_slots;
    if ((rc = xi_registry_init(&rt->names)) != 0)
        goto fail_names;
    if ((rc = xi_relations_init(&rt->rel)) != 0) {
        xi_registry_fini(&rt->names, free_leftover_name, rt);
        goto fail_names;
    }
    rc = xi_pools_start(rt, cfg->pool_specs, cfg->pools);
    if (rc != 0) {
        xi_pools_join(rt);
        release_tables(rt);
        xi_relations_fini(rt, &rt->rel);
        goto fail_slots;
    }
    if ((rc = xi_watchdog_start(rt)) != 0 || (rc = xi_shm_open(rt)) != 0 ||
        (rc = xi_http_start(rt)) != 0) {
        xo_runtime_free(rt);
        return rc;
    }
    *out = rt;
    return 0;
fail_names:
    xi_slots_fini(&rt->slots, &rt->mem);
fail_slots:
    pthread_mutex_destroy(&rt->trace_lock);
    pthread_mutex_destroy(&rt->pools_lock);
    pthread_cond_destroy(&rt->stop_cond);
    pthread_mutex_destroy(&rt->stop_lock);
    free(rt);
    return rc;
}

void xi_readers_quiesce(xo_runtime_t *rt)
{
    xi_readers_barrier();
    unsigned n = xi_pool_slots(rt);
    for (unsigned i = 0; i < n; i++) {
        struct xi_pool *p = xi_pool_at(rt, i);
        if (p != NULL)
            xi_reader_wait(&p->worker->reader);
    }
    XI_TSAN_ACQUIRE(&rt->rcu_sync);
}

void xi_grace_wait(xo_runtime_t *rt)
{
    xi_rcu_synchronize(&rt->rcu_sync);
    xi_readers_quiesce(rt);
}

void xi_runtime_actor_gone(xo_runtime_t *rt)
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
    xi_registry_fini(&rt->names, free_leftover_name, rt);
    xi_slots_fini(&rt->slots, &rt->mem);
    xi_pools_free(rt);
}

/* Stop and free wait for rt's workers and its watchdog: not from one of
   them (an on_alert callback runs on the watchdog), nor from any handler
   (on_create runs on the spawner's thread; a handler of another runtime
   would hold its own worker through the whole stop). */
static bool called_inside(xo_runtime_t *rt)
{
    return xi_worker_of(rt) != NULL || xi_current_ctx() != NULL ||
           xi_watchdog_is_current(rt);
}

int xo_runtime_stop(xo_runtime_t *rt)
{
    if (rt == NULL)
        return XO_EINVAL;
    if (called_inside(rt))
        return XO_EINVAL;
    int expected = XI_RT_RUNNING;
    /* seq_cst: the flag must be globally visible before the grace period
       below begins (RCU's guarantee then covers every later reader). */
    if (!atomic_compare_exchange_strong(&rt->state, &expected, XI_RT_CLOSING)) {
        wait_stopped(rt); /* a second stop returns once the first is done */
        return XO_ECLOSED;
    }
    /* The /metrics server only reads; once this returns, no request runs
       (one caught in flight saw the runtime closing). */
    xi_http_stop(rt);
    xi_grace_wait(rt);
    xi_rcu_barrier(&rt->rcu_sync);
    pthread_mutex_lock(&rt->stop_lock);
    rt->stopping = true;
    pthread_mutex_unlock(&rt->stop_lock);
    xi_actors_close_all(rt);
    /* An actor waiting out a restart backoff restarts now. */
    unsigned npools = xi_pool_slots(rt);
    for (unsigned i = 0; i < npools; i++) {
        struct xi_pool *p = xi_pool_at(rt, i);
        if (p != NULL && xi_pool_alive(p))
            xi_worker_hurry(p->worker);
    }
    pthread_mutex_lock(&rt->stop_lock);
    /* acquire: pairs with the acq_rel decrement in xi_runtime_actor_gone. */
    while (atomic_load_explicit(&rt->live, memory_order_acquire) != 0)
        pthread_cond_wait(&rt->stop_cond, &rt->stop_lock);
    struct xi_layer net = rt->net; /* set under stop_lock: read after it */
    pthread_mutex_unlock(&rt->stop_lock);
    /* The net layer: its I/O thread delivered to the actors while they
       drained (its pushes failed with XO_ECLOSED); now the calls still in
       flight to other nodes fail, the peers are told, its thread ends. */
    if (net.stop != NULL)
        net.stop(rt, net.arg);
    /* It reads the workers: it goes before them. */
    xi_watchdog_stop(rt);
    /* The watchdog was its writer; the pools it reports are still there. */
    xi_shm_close(rt);
    xi_pools_join(rt);
    /* The reaped cells' memory goes after a grace period (actor.c). */
    xi_rcu_barrier(&rt->rcu_sync);
    /* A trace still recording ends here: what it holds can be written. */
    (void)xo_trace_stop(rt);
    /* The tables stay until xo_runtime_free: a thread that passed a
       closing check just before stop began may still be on its way to
       them (it will then fail with XO_ECLOSED). */
    pthread_mutex_lock(&rt->stop_lock);
    /* seq_cst (under stop_lock): read by wait_stopped under the same lock. */
    atomic_store(&rt->state, XI_RT_STOPPED);
    pthread_cond_broadcast(&rt->stop_cond);
    pthread_mutex_unlock(&rt->stop_lock);
    return 0;
}

/* Until the stop in progress (on another thread) has finished. */
static void wait_stopped(xo_runtime_t *rt)
{
    pthread_mutex_lock(&rt->stop_lock);
    /* seq_cst, under stop_lock: pairs with the store in xo_runtime_stop. */
    while (atomic_load(&rt->state) != XI_RT_STOPPED)
        pthread_cond_wait(&rt->stop_cond, &rt->stop_lock);
    pthread_mutex_unlock(&rt->stop_lock);
}

int xo_runtime_free(xo_runtime_t *rt)
{
    if (rt == NULL)
        return 0;
    if (called_inside(rt))
        return XO_EINVAL;
    if (xo_runtime_stop(rt) == XO_ECLOSED)
        wait_stopped(rt);
    if (rt->net.free != NULL)
        rt->net.free(rt, rt->net.arg);
    release_tables(rt);
    xi_relations_fini(rt, &rt->rel);
    xi_watchdog_free(rt);
    xi_trace_free(rt);
    pthread_mutex_destroy(&rt->trace_lock);
    xi_http_free(rt);
    /* The workers' cached blocks went to the allocator's depot when they
       exited: give them back to the backend. */
    xi_mem_trim();
    pthread_mutex_destroy(&rt->pools_lock);
    pthread_cond_destroy(&rt->stop_cond);
    pthread_mutex_destroy(&rt->stop_lock);
    free(rt);
    return 0;
}

xo_ref_t xo_self(const xo_ctx_t *ctx)
{
    return ctx && ctx->cell ? xi_cell_ref(ctx->cell) : XO_REF_NONE;
}

xo_runtime_t *xo_ctx_runtime(const xo_ctx_t *ctx)
{
    return ctx ? ctx->rt : NULL;
}

unsigned xo_ctx_pool(const xo_ctx_t *ctx)
{
    return ctx ? ctx->pool : 0;
}
