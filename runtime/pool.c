/*
 * pool.c -- the pool table and placement.
 *
 * A pool is the unit of placement, as in Xoscar: a CPU pool is one worker
 * thread pinned to one core (sched.c runs it). The table is an array of
 * XI_MAX_POOLS worker pointers allocated with the runtime; pools are
 * appended while it runs (xo_pool_add) and never move, so any thread reads
 * slot i without a lock. A removed pool keeps its slot and its (stopped)
 * worker struct until xo_runtime_free, so a late reader never touches freed
 * memory. Adding, removing and idle-label reservations are serialised by
 * pools_lock; none of them is on the message path.
 *
 * Removing a pool: mark it REMOVING (placement and task spreading skip it),
 * wait a grace period (spawns that chose it before have published), destroy
 * every actor whose home it is (each drains its mailbox and runs
 * on_destroy on this pool's worker), wait until it holds none, then stop its
 * worker and hand anything still queued there to the other pools.
 *
 * Placement turns an xo_placement_t into a pool index. Least-loaded, the
 * default, ranks pools by how busy their worker is (busy_level) and then by
 * live actors.
 */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t xi_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- labels ----------------------------------------------------------- */

static char *make_labels(const char *user)
{
    size_t len = user ? strlen(user) : 0;
    char *s = malloc(len + 5);
    if (s == NULL)
        return NULL;
    memcpy(s, "cpu", 4);
    if (len > 0) {
        s[3] = ',';
        memcpy(s + 4, user, len + 1);
    }
    return s;
}

static bool has_label(const struct xi_worker *w, const char *label)
{
    size_t want = strlen(label);
    for (const char *p = w->labels; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == want && memcmp(p, label, len) == 0)
            return true;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return false;
}

static bool labels_valid(const char *user)
{
    if (user == NULL)
        return true;
    /* No empty label, no leading/trailing/double comma. */
    size_t len = strlen(user);
    if (len == 0 || user[0] == ',' || user[len - 1] == ',' ||
        strstr(user, ",,") != NULL)
        return false;
    return true;
}

/* ---- workers ---------------------------------------------------------- */

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

static void free_worker(struct xi_worker *w)
{
    free(w->labels);
    free(w);
}

static int new_worker(xo_runtime_t *rt, unsigned index, int cpu,
                      const char *user_labels, struct xi_worker **out)
{
    if (!labels_valid(user_labels))
        return XO_EINVAL;
    struct xi_worker *w;
    if (posix_memalign((void **)&w, XI_CACHELINE, sizeof(*w)) != 0)
        return XO_ENOMEM;
    memset(w, 0, sizeof(*w));
    w->rt = rt;
    w->index = index;
    w->core = cpu >= 0 ? cpu : nth_allowed_cpu(&rt->allowed, index);
    w->exit_item.kind = XI_K_EXIT;
    w->start_ns = xi_coarse_ns();
    xi_mpscq_init(&w->runq, &w->runq_tail, false);
    atomic_init(&w->state, XI_POOL_ACTIVE);
    w->labels = make_labels(user_labels);
    if (w->labels == NULL) {
        free_worker(w);
        return XO_ENOMEM;
    }
    *out = w;
    return 0;
}

/* Start a worker and make it visible as pool `index`. Under pools_lock (or
   before the runtime is shared). */
static int append_pool(xo_runtime_t *rt, int cpu, const char *labels,
                       unsigned *index)
{
    /* relaxed: npools is only written under pools_lock. */
    unsigned i = atomic_load_explicit(&rt->npools, memory_order_relaxed);
    if (i >= XI_MAX_POOLS)
        return XO_ENOSLOT;
    if (cpu >= CPU_SETSIZE)
        return XO_EINVAL;
    struct xi_worker *w;
    int rc = new_worker(rt, i, cpu, labels, &w);
    if (rc != 0)
        return rc;
    /* release: the worker is initialised before anyone can load it. */
    atomic_store_explicit(&rt->pools[i], w, memory_order_release);
    rc = xi_worker_start(rt, w);
    if (rc != 0) {
        atomic_store_explicit(&rt->pools[i], NULL, memory_order_relaxed);
        free_worker(w);
        return rc;
    }
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
        struct xi_worker *w = xi_pool(rt, i);
        active += w != NULL && xi_pool_active(w);
    }
    bool crowded = active > (unsigned)CPU_COUNT(&rt->allowed);
    for (unsigned i = 0; i < n; i++) {
        struct xi_worker *w = xi_pool(rt, i);
        if (w == NULL || !xi_pool_active(w))
            continue;
        bool shared = !w->pinned && crowded;
        struct xi_worker *mate = NULL;
        /* The next pinned sharer after w in index order, wrapping. */
        for (unsigned k = 1; k < n && w->pinned; k++) {
            struct xi_worker *v = xi_pool(rt, (i + k) % n);
            if (v == NULL || !xi_pool_active(v))
                continue;
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

int xi_pools_start(xo_runtime_t *rt)
{
    if (sched_getaffinity(0, sizeof(rt->allowed), &rt->allowed) != 0 ||
        CPU_COUNT(&rt->allowed) == 0) {
        CPU_ZERO(&rt->allowed);
        CPU_SET(0, &rt->allowed);
    }
    unsigned n = rt->cfg.pools ? rt->cfg.pools
                               : (unsigned)CPU_COUNT(&rt->allowed);
    if (n > XI_MAX_POOLS)
        return XO_EINVAL;
    rt->pools = calloc(XI_MAX_POOLS, sizeof(*rt->pools));
    if (rt->pools == NULL)
        return XO_ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        int cpu = rt->cfg.cpus ? rt->cfg.cpus[i] : -1;
        const char *labels = rt->cfg.labels ? rt->cfg.labels[i] : NULL;
        int rc = append_pool(rt, cpu, labels, NULL);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void xi_pools_join(xo_runtime_t *rt)
{
    /* Claim under the lock, join outside it: a worker finishing its last
       item may need the lock (placement, reservations). */
    bool mine[XI_MAX_POOLS];
    pthread_mutex_lock(&rt->pools_lock);
    unsigned n = xi_pool_slots(rt);
    for (unsigned i = 0; i < n; i++)
        mine[i] = xi_worker_claim(xi_pool(rt, i));
    pthread_mutex_unlock(&rt->pools_lock);
    for (unsigned i = 0; i < n; i++)
        if (mine[i])
            xi_worker_join(xi_pool(rt, i));
}

void xi_pools_free(xo_runtime_t *rt)
{
    if (rt->pools == NULL)
        return;
    unsigned n = xi_pool_slots(rt);
    for (unsigned i = 0; i < n; i++) {
        struct xi_worker *w = xi_pool(rt, i);
        if (w == NULL)
            continue;
        /* Timers handed to a worker after it stopped (a removal racing
           stop) are still in its run queue or heap. */
        struct xi_qnode *q;
        while ((q = xi_mpscq_pop(&w->runq, &w->runq_tail)) != NULL)
            if (((struct xi_item *)q)->kind == XI_K_TIMER)
                xi_timer_discard(rt, xi_container_of((struct xi_item *)q,
                                                     struct xi_timer, item));
        xi_timers_discard(w);
        free_worker(w);
    }
    free(rt->pools);
    rt->pools = NULL;
    while (rt->marks != NULL) {
        struct xi_mark *m = rt->marks;
        rt->marks = m->next;
        free(m->label);
        free(m->mark);
        free(m);
    }
}

/* ---- adding and removing pools ---------------------------------------- */

static bool called_from_runtime(xo_runtime_t *rt)
{
    struct xo_ctx *ctx = xi_current_ctx();
    return xi_current_worker_runtime() == rt || (ctx && ctx->rt == rt);
}

int xo_pool_add(xo_runtime_t *rt, int cpu, const char *labels,
                unsigned *index)
{
    if (rt == NULL || cpu < -1)
        return XO_EINVAL;
    pthread_mutex_lock(&rt->pools_lock);
    int rc = xi_rt_closing(rt) ? XO_ECLOSED
                               : append_pool(rt, cpu, labels, index);
    pthread_mutex_unlock(&rt->pools_lock);
    return rc;
}

/* Destroy every actor whose home is pool `index`. */
static void destroy_pool_actors(xo_runtime_t *rt, unsigned index)
{
    /* acquire: pairs with the release of count in xi_slots_take. */
    uint32_t n = atomic_load_explicit(&rt->slots.count, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++) {
        xi_rcu_lock();
        struct xi_cell *c = xi_slot_live_cell(rt, i);
        if (c != NULL && c->pool == index && !xi_rt_closing(rt))
            (void)xi_cell_unpublish(rt, c);
        xi_rcu_unlock(&rt->rcu_sync);
    }
}

/* The worker has exited: whatever still sits in its run queue (a task or a
   shared turn pushed just as the pool was leaving) and its pending timers
   go to the main pool. During stop they are left for xi_pools_free. */
static void rehome_leftovers(xo_runtime_t *rt, struct xi_worker *w)
{
    if (xi_rt_closing(rt))
        return;
    xi_timers_move(w, xi_pool(rt, 0));
    struct xi_qnode *n;
    while ((n = xi_mpscq_pop(&w->runq, &w->runq_tail)) != NULL) {
        struct xi_item *it = (struct xi_item *)n;
        switch (it->kind) {
        case XI_K_ACTOR:
            xi_schedule(xi_container_of(it, struct xi_cell, run));
            break;
        case XI_K_TELL:
        case XI_K_CALL:
            xi_runq_push(xi_task_worker(rt), it);
            break;
        case XI_K_TIMER:
            xi_timer_start(xi_pool(rt, 0),
                           xi_container_of(it, struct xi_timer, item));
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
    struct xi_worker *w =
        index < xi_pool_slots(rt) ? xi_pool(rt, index) : NULL;
    int rc = 0;
    if (xi_rt_closing(rt))
        rc = XO_ECLOSED;
    else if (w == NULL || !xi_pool_active(w))
        rc = XO_ENOTEXIST;
    else /* release: placement reads it with acquire */
        atomic_store_explicit(&w->state, XI_POOL_REMOVING,
                              memory_order_release);
    pthread_mutex_unlock(&rt->pools_lock);
    if (rc != 0)
        return rc;
    /* Spawns that chose this pool before are published after this (spawn
       re-checks the pool inside its publishing section). */
    xi_grace_wait(rt);
    destroy_pool_actors(rt, index);
    /* acquire polling of a counter (pairs with the reaps' release
       decrement); the reaps run on this pool's worker. */
    while (atomic_load_explicit(&w->actors, memory_order_acquire) != 0) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&rt->pools_lock);
    bool mine = xi_worker_claim(w); /* false if stop joined it already */
    pthread_mutex_unlock(&rt->pools_lock);
    if (mine)
        xi_worker_join(w); /* outside the lock: see xi_pools_join */
    pthread_mutex_lock(&rt->pools_lock);
    /* release: pairs with the acquire loads of xi_pool_active / info. */
    atomic_store_explicit(&w->state, XI_POOL_GONE, memory_order_release);
    xi_pools_update_sharing(rt);
    pthread_mutex_unlock(&rt->pools_lock);
    rehome_leftovers(rt, w);
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
static unsigned busy_level(struct xi_worker *w)
{
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
    struct xi_worker *w = xi_pool(rt, index);
    if (w == NULL)
        return XO_EINVAL;
    out->index = index;
    /* acquire: pairs with the state stores under pools_lock. */
    out->kind = atomic_load_explicit(&w->state, memory_order_acquire) ==
                        XI_POOL_GONE
                    ? XO_POOL_REMOVED
                    : XO_POOL_CPU;
    out->core = w->core;
    out->pinned = w->pinned;
    /* relaxed: see core_shared. */
    out->core_shared = atomic_load_explicit(&w->core_shared,
                                            memory_order_relaxed);
    out->labels = w->labels;
    /* relaxed: counters. */
    out->actors = atomic_load_explicit(&w->actors, memory_order_relaxed);
    unsigned level = busy_level(w);
    out->parked = level == 0;
    out->queued = level >= 2;
    out->handled = atomic_load_explicit(&w->handled, memory_order_relaxed);
    uint64_t idle = atomic_load_explicit(&w->idle_ns, memory_order_relaxed);
    uint64_t up = xi_coarse_ns() - w->start_ns;
    out->busy_ns = up > idle ? up - idle : 0;
    return 0;
}

/* ---- placement -------------------------------------------------------- */

static unsigned next_random(void)
{
    static __thread uint64_t state;
    if (state == 0)
        state = (uint64_t)(uintptr_t)&state ^ xi_now_ns() ^ 0x9e3779b97f4a7c15ull;
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (unsigned)(state >> 11);
}


/* Pools that are active and (if label) carry it, into out; their count. */
static unsigned candidates(xo_runtime_t *rt, const char *label,
                           unsigned out[XI_MAX_POOLS])
{
    unsigned n = xi_pool_slots(rt), k = 0;
    for (unsigned i = 0; i < n; i++) {
        struct xi_worker *w = xi_pool(rt, i);
        if (w != NULL && xi_pool_active(w) && (!label || has_label(w, label)))
            out[k++] = i;
    }
    return k;
}

static int least_loaded(xo_runtime_t *rt, unsigned *pool)
{
    unsigned c[XI_MAX_POOLS], k = candidates(rt, NULL, c);
    if (k == 0)
        return XO_ENOSLOT;
    unsigned best = c[0];
    uint64_t best_q = UINT64_MAX, best_a = UINT64_MAX;
    for (unsigned j = 0; j < k; j++) {
        struct xi_worker *w = xi_pool(rt, c[j]);
        /* Parked or awake with nothing to run: no runnable work either
           way, so only the actor count tells such pools apart. */
        unsigned level = busy_level(w);
        uint64_t q = level <= 1 ? 0 : level - 1;
        /* relaxed: a counter read as a hint. */
        uint64_t a = atomic_load_explicit(&w->actors, memory_order_relaxed);
        if (q < best_q || (q == best_q && a < best_a)) {
            best = c[j];
            best_q = q;
            best_a = a;
        }
    }
    *pool = best;
    return 0;
}

static int idle_label(xo_runtime_t *rt, const char *label, const char *mark,
                      unsigned *pool, struct xi_mark **out)
{
    if (label == NULL || mark == NULL)
        return XO_EINVAL;
    struct xi_mark *m = calloc(1, sizeof(*m));
    if (m == NULL || (m->label = strdup(label)) == NULL ||
        (m->mark = strdup(mark)) == NULL) {
        if (m)
            free(m->label);
        free(m);
        return XO_ENOMEM;
    }
    int rc = XO_ENOSLOT;
    pthread_mutex_lock(&rt->pools_lock);
    unsigned c[XI_MAX_POOLS], k = candidates(rt, label, c);
    for (unsigned j = 0; j < k && rc != 0; j++) {
        bool taken = false;
        for (struct xi_mark *e = rt->marks; e && !taken; e = e->next)
            taken = e->pool == c[j] && strcmp(e->label, label) == 0 &&
                    strcmp(e->mark, mark) == 0;
        if (!taken) {
            m->pool = c[j];
            m->next = rt->marks;
            rt->marks = m;
            *pool = c[j];
            *out = m;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&rt->pools_lock);
    if (rc != 0) {
        free(m->label);
        free(m->mark);
        free(m);
    }
    return rc;
}

void xi_mark_release(xo_runtime_t *rt, struct xi_mark *mark)
{
    if (mark == NULL)
        return;
    pthread_mutex_lock(&rt->pools_lock);
    for (struct xi_mark **p = &rt->marks; *p; p = &(*p)->next)
        if (*p == mark) {
            *p = mark->next;
            break;
        }
    pthread_mutex_unlock(&rt->pools_lock);
    free(mark->label);
    free(mark->mark);
    free(mark);
}

static int pool_of(xo_ref_t near, xo_runtime_t *rt, unsigned *pool)
{
    if (near.rt != rt)
        return XO_EINVAL;
    int rc = XO_ENOTEXIST;
    xi_rcu_lock();
    struct xi_cell *c = xi_resolve(rt, near.id);
    if (c != NULL) {
        *pool = c->pool;
        rc = 0;
    }
    xi_rcu_unlock(&rt->rcu_sync);
    return rc;
}

static int check_pool(xo_runtime_t *rt, unsigned pool)
{
    if (pool >= xi_pool_slots(rt))
        return XO_EINVAL;
    struct xi_worker *w = xi_pool(rt, pool);
    return w != NULL && xi_pool_active(w) ? 0 : XO_ENOSLOT;
}

int xi_place(xo_runtime_t *rt, const xo_actor_def_t *def,
             const xo_spawn_opts_t *opts, unsigned *pool,
             struct xi_mark **mark)
{
    const xo_placement_t *p = &opts->place;
    unsigned c[XI_MAX_POOLS], k;
    int rc;
    *mark = NULL;
    if (opts->pool != XO_POOL_ANY) {
        if (opts->pool < 0)
            return XO_EINVAL;
        *pool = (unsigned)opts->pool;
        return check_pool(rt, *pool);
    }
    switch (p->kind) {
    case XO_PLACE_LEAST_LOADED:
        return least_loaded(rt, pool);
    case XO_PLACE_POOL:
        *pool = p->pool;
        return check_pool(rt, *pool);
    case XO_PLACE_MAIN:
        *pool = 0;
        return check_pool(rt, 0);
    case XO_PLACE_RANDOM:
    case XO_PLACE_RANDOM_LABEL:
        if (p->kind == XO_PLACE_RANDOM_LABEL && p->label == NULL)
            return XO_EINVAL;
        k = candidates(rt, p->kind == XO_PLACE_RANDOM ? NULL : p->label, c);
        if (k == 0)
            return XO_ENOSLOT;
        *pool = c[next_random() % k];
        return 0;
    case XO_PLACE_IDLE_LABEL:
        return idle_label(rt, p->label, p->mark, pool, mark);
    case XO_PLACE_ROUND_ROBIN:
        k = candidates(rt, NULL, c);
        if (k == 0)
            return XO_ENOSLOT;
        /* relaxed: any spread will do, only atomicity matters. */
        *pool = c[atomic_fetch_add_explicit(&rt->rr_next, 1,
                                            memory_order_relaxed) % k];
        return 0;
    case XO_PLACE_NEAR:
        return pool_of(p->near, rt, pool);
    case XO_PLACE_CALLBACK:
        if (p->fn == NULL)
            return XO_EINVAL;
        rc = p->fn(rt, def, p->user, pool);
        if (rc < 0)
            return rc;
        return check_pool(rt, *pool);
    }
    return XO_EINVAL;
}
