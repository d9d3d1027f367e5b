/*
 * placement.c -- where a new actor lives: an xo_placement_t turned into a
 * pool index (Xoscar's allocation strategies, and what a latency-sensitive
 * C program needs). Least-loaded, the default, ranks pools by how busy
 * their worker is (xi_pool_busy_level) and then by live actors. Idle-label
 * claims live in one list under the pool table's lock.
 */
#include "runtime.h"

#include <string.h>

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


/* Pools that are active and carry label, or, without one, are general
   (CPU pools: a GPU pool is chosen by its label), into out; their count. */
static unsigned candidates(xo_runtime_t *rt, const char *label,
                           unsigned out[XO_POOLS_MAX])
{
    unsigned n = xi_pool_slots(rt), k = 0;
    for (unsigned i = 0; i < n; i++) {
        struct xi_pool *p = xi_pool_at(rt, i);
        if (p != NULL && xi_pool_running(p) &&
            (label ? xi_pool_has_label(p, label) : xi_pool_general(p)))
            out[k++] = i;
    }
    return k;
}

static int least_loaded(xo_runtime_t *rt, const char *label, unsigned *pool)
{
    unsigned c[XO_POOLS_MAX], k = candidates(rt, label, c);
    if (k == 0)
        return XO_ENOSLOT;
    unsigned best = c[0];
    uint64_t best_q = UINT64_MAX, best_a = UINT64_MAX;
    for (unsigned j = 0; j < k; j++) {
        struct xi_pool *p = xi_pool_at(rt, c[j]);
        /* Parked or awake with nothing to run: no runnable work either
           way, so only the actor count tells such pools apart. */
        unsigned level = xi_pool_busy_level(p);
        uint64_t q = level <= 1 ? 0 : level - 1;
        /* relaxed: a counter read as a hint. */
        uint64_t a = atomic_load_explicit(&p->actors, memory_order_relaxed);
        if (q < best_q || (q == best_q && a < best_a)) {
            best = c[j];
            best_q = q;
            best_a = a;
        }
    }
    *pool = best;
    return 0;
}

static void claim_free(xo_runtime_t *rt, struct xi_claim *m)
{
    xi_mem_free_str(&rt->mem, m->label);
    xi_mem_free_str(&rt->mem, m->mark);
    xi_mem_free(&rt->mem, m, sizeof(*m));
}

static int idle_label(xo_runtime_t *rt, const char *label, const char *mark,
                      unsigned *pool, struct xi_claim **out)
{
    if (label == NULL || mark == NULL)
        return XO_EINVAL;
    struct xi_claim *m = xi_mem_zalloc(&rt->mem, sizeof(*m));
    if (m == NULL)
        return XO_ENOMEM;
    m->label = xi_mem_strdup(&rt->mem, label);
    m->mark = xi_mem_strdup(&rt->mem, mark);
    if (m->label == NULL || m->mark == NULL) {
        claim_free(rt, m);
        return XO_ENOMEM;
    }
    int rc = XO_ENOSLOT;
    pthread_mutex_lock(&rt->pools_lock);
    unsigned c[XO_POOLS_MAX], k = candidates(rt, label, c);
    for (unsigned j = 0; j < k && rc != 0; j++) {
        bool taken = false;
        for (struct xi_claim *e = rt->claims; e && !taken; e = e->next)
            taken = e->pool == c[j] && strcmp(e->label, label) == 0 &&
                    strcmp(e->mark, mark) == 0;
        if (!taken) {
            m->pool = c[j];
            m->next = rt->claims;
            rt->claims = m;
            *pool = c[j];
            *out = m;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&rt->pools_lock);
    if (rc != 0)
        claim_free(rt, m);
    return rc;
}

void xi_claim_release(xo_runtime_t *rt, struct xi_claim *claim)
{
    if (claim == NULL)
        return;
    pthread_mutex_lock(&rt->pools_lock);
    for (struct xi_claim **p = &rt->claims; *p; p = &(*p)->next)
        if (*p == claim) {
            *p = claim->next;
            break;
        }
    pthread_mutex_unlock(&rt->pools_lock);
    claim_free(rt, claim);
}

void xi_claims_free(xo_runtime_t *rt)
{
    while (rt->claims != NULL) {
        struct xi_claim *m = rt->claims;
        rt->claims = m->next;
        claim_free(rt, m);
    }
}

static int pool_of(xo_ref_t near, xo_runtime_t *rt, unsigned *pool)
{
    if (near.rt != rt)
        return XO_EINVAL;
    int rc = XO_ENOTEXIST;
    xi_rcu_lock();
    struct xi_cell *c = xi_resolve(&rt->slots, near.id);
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
    struct xi_pool *p = xi_pool_at(rt, pool);
    return p != NULL && xi_pool_running(p) ? 0 : XO_ENOSLOT;
}

int xi_place(xo_runtime_t *rt, const xo_actor_def_t *def,
             const xo_spawn_opts_t *opts, unsigned *pool,
             struct xi_claim **claim)
{
    const xo_placement_t *p = &opts->place;
    unsigned c[XO_POOLS_MAX], k;
    int rc;
    *claim = NULL;
    if (opts->pool != XO_POOL_ANY) {
        if (opts->pool < 0)
            return XO_EINVAL;
        *pool = (unsigned)opts->pool;
        return check_pool(rt, *pool);
    }
    switch (p->kind) {
    case XO_PLACE_LEAST_LOADED:
        return least_loaded(rt, p->label, pool);
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
        k = candidates(rt, p->label, c);
        if (k == 0)
            return XO_ENOSLOT;
        *pool = c[next_random() % k];
        return 0;
    case XO_PLACE_IDLE_LABEL:
        return idle_label(rt, p->label, p->mark, pool, claim);
    case XO_PLACE_ROUND_ROBIN:
        k = candidates(rt, p->label, c);
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
