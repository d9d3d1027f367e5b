/*
 * pool.c -- the pool table, the CPU kind, adding and removing pools, and
 * what xo_pool_info reports (design in pool.h).
 *
 * Removing a pool: mark it REMOVING (placement and task spreading skip it),
 * wait a grace period (spawns that chose it before have published), end
 * every actor whose home it is (each drains its mailbox and runs
 * on_destroy on this pool's worker), wait until it holds none, then stop
 * its worker and hand anything still queued there to the main pool.
 *
 * Adding, removing and idle-label claims are serialised by pools_lock;
 * none of them is on the message path. Every allocation goes through the
 * runtime's allocator (alloc/), so fault injection reaches it.
 */
#include "runtime.h"

#include <string.h>
#include <time.h>

/* ---- labels ------------------------------------------------------------ */

/* The kind's label, then the user's: "cpu" or "cpu,io,fast". */
static char *make_labels(xo_runtime_t *rt, const char *kind,
                         const char *user)
{
    size_t klen = strlen(kind), ulen = user ? strlen(user) : 0;
    char *s = xi_mem_alloc(&rt->mem, klen + (ulen ? ulen + 1 : 0) + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, kind, klen + 1);
    if (ulen > 0) {
        s[klen] = ',';
        memcpy(s + klen + 1, user, ulen + 1);
    }
    return s;
}

bool xi_pool_has_label(const struct xi_pool *p, const char *label)
{
    size_t want = strlen(label);
    for (const char *s = p->labels; *s;) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len == want && memcmp(s, label, len) == 0)
            return true;
        if (end == NULL)
            break;
        s = end + 1;
    }
    return false;
}

static bool labels_valid(const char *user)
{
    if (user == NULL)
        return true;
    /* No empty label, no leading/trailing/double comma. */
    size_t len = strlen(user);
    return len > 0 && user[0] != ',' && user[len - 1] != ',' &&
           strstr(user, ",,") == NULL;
}

/* ---- the CPU kind ------------------------------------------------------- */

static int cpu_start(struct xi_pool *p)
{
    return xi_worker_start(p->worker);
}

static void cpu_stop(struct xi_pool *p)
{
    xi_worker_join(p->worker);
}

static void cpu_wake(struct xi_pool *p)
{
    xi_worker_wake(p->worker);
}

static void cpu_info(const struct xi_pool *p, xo_pool_info_t *out)
{
    struct xi_worker *w = p->worker;
    out->core = w->core;
    out->pinned = w->pinned;
    /* relaxed: see core_shared. */
    out->core_shared = atomic_load_explicit(&w->core_shared,
                                            memory_order_relaxed);
    out->device = -1;
}

const struct xi_pool_ops xi_cpu_pool_ops = {
    .name = "cpu",
    .start = cpu_start,
    .stop = cpu_stop,
    .poll = NULL,
    .wake = cpu_wake,
    .info = cpu_info,
    .runs_movable = true,
};

/* ---- the table ---------------------------------------------------------- */

/* The i-th CPU this process may run on, or -1. */
static int nth_allowed_cpu(const cpu_set_t *set, unsigned i)
{
    int count = CPU_COUNT(set);
    if (count <= 0)
        return -1;
    unsigned want = i % (unsigned)count, seen = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, set))
            continue;
        if (seen++ == want)
            return cpu;
    }
    return -1;
}

static void free_pool(xo_runtime_t *rt, struct xi_pool *p)
{
    if (p->ext != NULL && p->kind_data != NULL)
        p->ext->unmake(rt, p);
    if (p->worker != NULL)
        xi_mem_free_aligned(p->worker, sizeof(*p->worker), XI_CACHELINE);
    xi_mem_free_str(&rt->mem, p->labels);
    xi_mem_free(&rt->mem, p, sizeof(*p));
}

/* The kind of a spec: the CPU kind (ext NULL) or one built outside
   runtime/, or the error it gets. */
static int kind_of(const xo_pool_spec_t *spec, xo_pool_kind_t *kind,
                   const struct xi_pool_kind **ext)
{
    *kind = spec->kind == 0 ? XO_POOL_CPU : spec->kind;
    *ext = NULL;
    switch (*kind) {
    case XO_POOL_CPU:
        return spec->cpu < -1 || spec->cpu >= CPU_SETSIZE ? XO_EINVAL : 0;
    case XO_POOL_GPU:
        *ext = xi_gpu_pool_kind();
        return 0;
    default:
        return XO_EINVAL;
    }
}

static int new_pool(xo_runtime_t *rt, unsigned index,
                    const xo_pool_spec_t *spec, struct xi_pool **out)
{
    xo_pool_kind_t kind;
    const struct xi_pool_kind *ext;
    int rc = kind_of(spec, &kind, &ext);
    if (rc != 0)
        return rc;
    if (!labels_valid(spec->labels))
        return XO_EINVAL;
    struct xi_pool *p = xi_mem_zalloc(&rt->mem, sizeof(*p));
    if (p == NULL)
        return XO_ENOMEM;
    p->index = index;
    p->kind = kind;
    p->ops = ext != NULL ? ext->ops : &xi_cpu_pool_ops;
    atomic_init(&p->state, XO_POOL_RUNNING);
    p->worker = xi_mem_zalloc_aligned(&rt->mem, sizeof(*p->worker),
                                      XI_CACHELINE);
    if (p->worker == NULL) {
        free_pool(rt, p);
        return XO_ENOMEM;
    }
    const char *label = p->ops->name;
    if (ext != NULL && (rc = ext->make(rt, p, spec, &label)) != 0) {
        p->kind_data = NULL; /* nothing for unmake */
        free_pool(rt, p);
        return rc;
    }
    p->ext = ext;
    p->labels = make_labels(rt, label, spec->labels);
    if (p->labels == NULL) {
        free_pool(rt, p);
        return XO_ENOMEM;
    }
    int core = kind != XO_POOL_CPU ? -1
               : spec->cpu >= 0    ? spec->cpu
                                   : nth_allowed_cpu(&rt->allowed, index);
    xi_worker_init(p->worker, rt, p, core);
    *out = p;
    return 0;
}

/* Start a pool and make it visible as row `npools`. Under pools_lock (or
   before the runtime is shared). */
static int append_pool(xo_runtime_t *rt, const xo_pool_spec_t *spec,
                       unsigned *index)
{
    /* relaxed: npools is only written under pools_lock. */
    unsigned i = atomic_load_explicit(&rt->npools, memory_order_relaxed);
    if (i >= XO_POOLS_MAX)
        return XO_ENOSLOT;
    struct xi_pool *p;
    int rc = new_pool(rt, i, spec, &p);
    if (rc != 0)
        return rc;
    /* release: the pool is initialised before anyone can load it. */
    atomic_store_explicit(&rt->pools[i], p, memory_order_release);
    rc = p->ops->start(p);
    if (rc != 0) {
        atomic_store_explicit(&rt->pools[i], NULL, memory_order_relaxed);
        free_pool(rt, p);
        return rc;
    }
    p->joinable = true;
    /* release: pairs with xi_pool_slots' acquire. */
    atomic_store_explicit(&rt->npools, i + 1, memory_order_release);
    xi_pools_update_sharing(rt);
    if (index)
        *index = i;
    return 0;
}

void xi_pools_update_sharing(xo_runtime_t *rt)
{
    unsigned n = xi_pool_slots(rt), active = 0;
    for (unsigned i = 0; i < n; i++) {
        struct xi_pool *p = xi_pool_at(rt, i);
        active += p != NULL && xi_pool_running(p);
    }
    bool crowded = active + rt->layer_threads >
                   (unsigned)CPU_COUNT(&rt->allowed);
    for (unsigned i = 0; i < n; i++) {
        struct xi_pool *p = xi_pool_at(rt, i);
        if (p == NULL || !xi_pool_running(p))
            continue;
        struct xi_worker *w = p->worker;
        /* An unpinned thread may land on any core: crowded, it may be on
           ours (a layer's thread is never pinned). */
        bool shared = (!w->pinned || rt->layer_threads > 0) && crowded;
        struct xi_worker *mate = NULL;
        /* The next pinned sharer after w in index order, wrapping. */
        for (unsigned k = 1; k < n && w->pinned; k++) {
            struct xi_pool *q = xi_pool_at(rt, (i + k) % n);
            if (q == NULL || !xi_pool_running(q))
                continue;
            struct xi_worker *v = q->worker;
            if (!v->pinned && crowded)
                shared = true; /* it may land anywhere, on us too */
            else if (v->pinned && v->core == w->core && mate == NULL)
                mate = v;
        }
        shared = shared || mate != NULL;
        /* release: the mate's fields are initialised before a worker
           that loads the pointer (acquire, mate_awake) reads them. */
        atomic_store_explicit(&w->core_mate, mate, memory_order_release);
        /* relaxed: a hint for the worker's idle loop (see core_shared). */
        atomic_store_explicit(&w->core_shared, shared, memory_order_relaxed);
    }
}

void xi_pools_add_layer_thread(xo_runtime_t *rt)
{
    pthread_mutex_lock(&rt->pools_lock);
    rt->layer_threads++;
    xi_pools_update_sharing(rt);
    pthread_mutex_unlock(&rt->pools_lock);
}

int xi_pools_start(xo_runtime_t *rt, const xo_pool_spec_t *specs, unsigned n)
{
    if (sched_getaffinity(0, sizeof(rt->allowed), &rt->allowed) != 0 ||
        CPU_COUNT(&rt->allowed) == 0) {
        CPU_ZERO(&rt->allowed);
        CPU_SET(0, &rt->allowed);
    }
    if (n == 0)
        n = (unsigned)CPU_COUNT(&rt->allowed);
    if (n > XO_POOLS_MAX)
        return XO_EINVAL;
    rt->pools = xi_mem_zalloc(&rt->mem, XO_POOLS_MAX * sizeof(*rt->pools));
    if (rt->pools == NULL)
        return XO_ENOMEM;
    xo_pool_spec_t plain;
    xo_pool_spec_init(&plain);
    for (unsigned i = 0; i < n; i++) {
        int rc = append_pool(rt, specs ? &specs[i] : &plain, NULL);
        if (rc != 0)
            return rc;
    }
    /* Then the GPU pools the config asks for (cfg.gpu_devices). */
    if (rt->cfg.gpu_devices == 0)
        return 0;
    const struct xi_pool_kind *gpu = xi_gpu_pool_kind();
    xo_pool_spec_t more[XO_POOLS_MAX];
    unsigned m = 0;
    int rc = gpu->start_specs(rt, more, XO_POOLS_MAX - n, &m);
    for (unsigned i = 0; i < m && rc == 0; i++)
        rc = append_pool(rt, &more[i], NULL);
    return rc;
}

void xi_pools_join(xo_runtime_t *rt)
{
    /* Claim under the lock, join outside it: a worker finishing its last
       item may need the lock (placement, claims). */
    bool mine[XO_POOLS_MAX];
    pthread_mutex_lock(&rt->pools_lock);
    unsigned n = rt->pools ? xi_pool_slots(rt) : 0;
    for (unsigned i = 0; i < n; i++) {
        struct xi_pool *p = xi_pool_at(rt, i);
        mine[i] = p != NULL && p->joinable;
        if (mine[i])
            p->joinable = false;
    }
    pthread_mutex_unlock(&rt->pools_lock);
    for (unsigned i = 0; i < n; i++)
        if (mine[i]) {
            struct xi_pool *p = xi_pool_at(rt, i);
            p->ops->stop(p);
        }
}

/* A stopped worker's run queue: function items posted after it stopped
   (a timer armed by a removal racing stop) run here, on the freeing
   thread; a timer's files it into the heap, which is dropped next. */
static void run_leftovers(struct xi_worker *w)
{
    struct xi_qnode *q;
    while ((q = xi_mpscq_pop(&w->runq, &w->runq_tail)) != NULL) {
        struct xi_item *it = (struct xi_item *)q;
        if (it->kind == XI_K_FUNC) {
            struct xi_func *f = (struct xi_func *)it;
            f->fn(f, w);
        }
    }
}

void xi_pools_free(xo_runtime_t *rt)
{
    if (rt->pools == NULL)
        return;
    unsigned n = xi_pool_slots(rt);
    for (unsigned i = 0; i < n; i++) {
        struct xi_pool *p = xi_pool_at(rt, i);
        if (p == NULL)
            continue;
        run_leftovers(p->worker);
        xi_worker_timers_hand_off(p->worker, NULL);
    }
    for (unsigned i = 0; i < n; i++) {
        struct xi_pool *p = xi_pool_at(rt, i);
        if (p != NULL)
            free_pool(rt, p);
    }
    xi_mem_free(&rt->mem, rt->pools, XO_POOLS_MAX * sizeof(*rt->pools));
    rt->pools = NULL;
    xi_claims_free(rt);
    /* acquire: pairs with the GPU layer's release store under
       pools_lock. */
    if (atomic_load_explicit(&rt->gpu, memory_order_acquire) != NULL)
        xi_gpu_pool_kind()->free(rt);
}

void xo_pool_spec_init(xo_pool_spec_t *spec)
{
    *spec = (xo_pool_spec_t){ .kind = XO_POOL_CPU, .cpu = -1, .device = -1 };
}

/* ---- adding and removing pools ---------------------------------------- */

static bool called_from_runtime(xo_runtime_t *rt)
{
    struct xo_ctx *ctx = xi_current_ctx();
    return xi_worker_of(rt) != NULL || (ctx && ctx->rt == rt);
}

int xo_pool_add(xo_runtime_t *rt, const xo_pool_spec_t *spec,
                unsigned *index)
{
    if (rt == NULL)
        return XO_EINVAL;
    xo_pool_spec_t plain;
    if (spec == NULL) {
        xo_pool_spec_init(&plain);
        spec = &plain;
    }
    pthread_mutex_lock(&rt->pools_lock);
    int rc = xi_rt_closing(rt) ? XO_ECLOSED : append_pool(rt, spec, index);
    pthread_mutex_unlock(&rt->pools_lock);
    return rc;
}

/* End every actor whose home is pool `index`. */
static void end_pool_actors(xo_runtime_t *rt, unsigned index)
{
    /* acquire: pairs with the release of count in xi_slots_take. */
    uint32_t n = atomic_load_explicit(&rt->slots.count, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++) {
        xi_rcu_lock();
        struct xi_cell *c = xi_slot_live_cell(&rt->slots, i);
        if (c != NULL && c->pool == index && !xi_rt_closing(rt))
            (void)xi_cell_unpublish(rt, c, XI_EXIT_POOL_REMOVED);
        xi_rcu_unlock(&rt->rcu_sync);
    }
}

/* The worker has exited: whatever still sits in its run queue (a task, a
   shared turn, a function item pushed just as the pool was leaving) and
   its pending timers go to the main pool. During stop they are left for
   xi_pools_free. */
static void rehome_leftovers(xo_runtime_t *rt, struct xi_worker *w)
{
    if (xi_rt_closing(rt))
        return;
    struct xi_worker *main_worker = xi_pool_worker(rt, 0);
    xi_worker_timers_hand_off(w, main_worker);
    struct xi_qnode *n;
    while ((n = xi_mpscq_pop(&w->runq, &w->runq_tail)) != NULL) {
        struct xi_item *it = (struct xi_item *)n;
        switch (it->kind) {
        case XI_K_ACTOR:
            xi_schedule(xi_container_of(it, struct xi_cell, run));
            break;
        case XI_K_RESUME:
            xi_schedule_item(xi_recovery_item_cell(it), it);
            break;
        case XI_K_TELL:
        case XI_K_CALL:
            xi_runq_push(xi_task_worker(rt), it);
            break;
        case XI_K_FUNC:
            xi_runq_push(main_worker, it);
            break;
        default:
            break;
        }
    }
}

int xo_pool_remove(xo_runtime_t *rt, unsigned index)
{
    if (rt == NULL || index == 0 || called_from_runtime(rt))
        return XO_EINVAL;
    pthread_mutex_lock(&rt->pools_lock);
    struct xi_pool *p =
        index < xi_pool_slots(rt) ? xi_pool_at(rt, index) : NULL;
    int rc = 0;
    /* relaxed: state is only written under pools_lock, held here. */
    int state = p != NULL ? atomic_load_explicit(&p->state,
                                                 memory_order_relaxed)
                          : XO_POOL_REMOVED;
    if (xi_rt_closing(rt))
        rc = XO_ECLOSED;
    else if (state != XO_POOL_RUNNING && state != XO_POOL_FAILED)
        rc = XO_ENOTEXIST;
    else /* release: placement reads it with acquire */
        atomic_store_explicit(&p->state, XO_POOL_REMOVING,
                              memory_order_release);
    pthread_mutex_unlock(&rt->pools_lock);
    if (rc != 0)
        return rc;
    /* Spawns that chose this pool before are published after this (spawn
       re-checks the pool inside its publishing section). */
    xi_grace_wait(rt);
    end_pool_actors(rt, index);
    /* Its actors waiting out a restart backoff restart now, and end. */
    for (unsigned i = 0; i < xi_pool_slots(rt); i++) {
        struct xi_pool *q = xi_pool_at(rt, i);
        if (q != NULL && xi_pool_alive(q))
            xi_worker_hurry(q->worker);
    }
    /* acquire polling of a counter (pairs with the reaps' release
       decrement); the reaps run on this pool's worker. */
    while (atomic_load_explicit(&p->actors, memory_order_acquire) != 0) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&rt->pools_lock);
    bool mine = p->joinable; /* false if stop joined it already */
    p->joinable = false;
    pthread_mutex_unlock(&rt->pools_lock);
    if (mine)
        p->ops->stop(p); /* outside the lock: see xi_pools_join */
    pthread_mutex_lock(&rt->pools_lock);
    /* release: pairs with the acquire loads of xi_pool_running / info. */
    atomic_store_explicit(&p->state, XO_POOL_REMOVED, memory_order_release);
    xi_pools_update_sharing(rt);
    pthread_mutex_unlock(&rt->pools_lock);
    rehome_leftovers(rt, p->worker);
    return 0;
}

/* ---- introspection ---------------------------------------------------- */

/*
 * How busy a worker is, from what it publishes anyway: 0 parked (its run
 * queue carries the idle mark), 1 awake with nothing to run, 2 running a
 * turn, 3 with work waiting in its queue, 4 both. An exact queue length
 * would cost every schedule a locked add on the queue's line (about 10% of
 * a pingpong round trip); these loads cost the senders nothing.
 */
unsigned xi_pool_busy_level(const struct xi_pool *p)
{
    struct xi_worker *w = p->worker;
    /* relaxed: a snapshot for placement and introspection. */
    uintptr_t head = atomic_load_explicit(&w->runq.head, memory_order_relaxed);
    if (head & XI_MPSCQ_IDLE)
        return 0;
    bool queued = (head & ~XI_MPSCQ_IDLE) != (uintptr_t)&w->runq.stub;
    bool running = atomic_load_explicit(&w->running, memory_order_relaxed);
    return 1 + (running ? 1u : 0u) + (queued ? 2u : 0u);
}

unsigned xo_pool_count(const xo_runtime_t *rt)
{
    return rt && rt->pools ? xi_pool_slots(rt) : 0;
}

int xo_pool_info(const xo_runtime_t *rt, unsigned index, xo_pool_info_t *out)
{
    if (rt == NULL || out == NULL || rt->pools == NULL ||
        index >= xi_pool_slots(rt))
        return XO_EINVAL;
    struct xi_pool *p = xi_pool_at(rt, index);
    if (p == NULL)
        return XO_EINVAL;
    struct xi_worker *w = p->worker;
    memset(out, 0, sizeof(*out));
    out->index = index;
    out->kind = p->kind;
    /* acquire: pairs with the state stores under pools_lock. */
    out->state = (xo_pool_state_t)atomic_load_explicit(&p->state,
                                                       memory_order_acquire);
    p->ops->info(p, out);
    out->labels = p->labels;
    /* relaxed: counters. */
    out->actors = atomic_load_explicit(&p->actors, memory_order_relaxed);
    unsigned level = xi_pool_busy_level(p);
    out->parked = level == 0;
    out->queued = level >= 3; /* 3: queued, 4: queued and running */
    out->handled = atomic_load_explicit(&w->handled, memory_order_relaxed);
    uint64_t idle = atomic_load_explicit(&w->idle_ns, memory_order_relaxed);
    uint64_t up = xi_coarse_ns() - w->start_ns;
    out->busy_ns = up > idle ? up - idle : 0;
    out->up_ns = up;
    out->turns = atomic_load_explicit(&w->obs.turn_seq, memory_order_relaxed);
    out->shared = atomic_load_explicit(&w->obs.shared, memory_order_relaxed);
    out->steals = atomic_load_explicit(&w->obs.steals, memory_order_relaxed);
    out->parks = atomic_load_explicit(&w->obs.parks, memory_order_relaxed);
    out->wakes = atomic_load_explicit(&w->obs.wakes, memory_order_relaxed);
    uint64_t pushed = atomic_load_explicit(&w->runq_pushed,
                                           memory_order_relaxed);
    uint64_t taken = atomic_load_explicit(&w->obs.runq_taken,
                                          memory_order_relaxed);
    out->runq_depth = (pushed > taken ? pushed - taken : 0) +
                      xi_stealq_len(&w->local);
    return 0;
}
