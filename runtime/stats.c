/*
 * stats.c -- the stats blocks, the histogram, and the snapshot API
 * (xo_actor_stats, xo_actors_each, xo_runtime_stats); design in stats.h.
 */
#include "runtime.h"

#include <string.h>

/* ---- the blocks ------------------------------------------------------- */

struct xi_obs *xi_obs_make(xo_runtime_t *rt, struct xi_cell *c)
{
    /* acquire: pairs with the release CAS below (another worker running
       a stateless actor's task may have made it). */
    struct xi_obs *o = atomic_load_explicit(&c->obs, memory_order_acquire);
    if (o != NULL)
        return o;
    o = xi_mem_alloc(&rt->mem, sizeof(*o));
    if (o == NULL)
        return NULL;
    memset(o, 0, sizeof(*o));
    struct xi_obs *none = NULL;
    /* acq_rel: publishes the zeroed block; acquire on failure to read the
       winner's. */
    if (!atomic_compare_exchange_strong_explicit(&c->obs, &none, o,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire)) {
        xi_mem_free(&rt->mem, o, sizeof(*o));
        return none;
    }
    return o;
}

bool xi_sample_next(struct xi_wobs *o)
{
    if (o->sample_every == 0) {
        o->sample_left = UINT32_MAX; /* back here, to say no, in 2^32 */
        return false;
    }
    uint64_t span = 2 * (uint64_t)o->sample_every - 1;
    if (span > UINT32_MAX)
        span = UINT32_MAX;
    /* xorshift64: a spread, not a secret. */
    o->sample_rng ^= o->sample_rng << 13;
    o->sample_rng ^= o->sample_rng >> 7;
    o->sample_rng ^= o->sample_rng << 17;
    /* In [0, span) by a multiply (a division costs ~40 cycles). */
    o->sample_left =
        1 + (uint32_t)(((o->sample_rng >> 32) * span) >> 32);
    return true;
}

void xi_note_depth(xo_runtime_t *rt, struct xi_cell *c, uint64_t depth)
{
    if (depth <= 1)
        return;
    struct xi_obs *o = xi_obs_make(rt, c);
    /* relaxed: a high-water mark; two writers (the actor's worker, the
       watchdog) may race, and the next look corrects a lost maximum. */
    if (o != NULL &&
        depth > atomic_load_explicit(&o->mbox_high, memory_order_relaxed))
        atomic_store_explicit(&o->mbox_high, depth, memory_order_relaxed);
}

static unsigned bucket_of(uint64_t ns)
{
    unsigned b = ns < 2 ? 0 : 63u - (unsigned)__builtin_clzll(ns);
    return b < XO_HIST_BUCKETS ? b : XO_HIST_BUCKETS - 1;
}

void xi_hist_add(xo_runtime_t *rt, struct xi_obs *o, uint64_t ns,
                 unsigned count, bool shared)
{
    if (count == 0)
        return;
    /* acquire: pairs with the release CAS that published it. */
    struct xi_hist *h = atomic_load_explicit(&o->hist, memory_order_acquire);
    if (h == NULL) {
        h = xi_mem_alloc(&rt->mem, sizeof(*h));
        if (h == NULL)
            return; /* this sample is lost; the next turn tries again */
        memset(h, 0, sizeof(*h));
        struct xi_hist *none = NULL;
        /* acq_rel: as in xi_obs_make. */
        if (!atomic_compare_exchange_strong_explicit(&o->hist, &none, h,
                                                     memory_order_acq_rel,
                                                     memory_order_acquire)) {
            xi_mem_free(&rt->mem, h, sizeof(*h));
            h = none;
        }
    }
    /* Not shared: a stateful actor's turns run one at a time, handed from
       worker to worker through its mailbox's ordering (xi_count). */
    xi_count(&h->b[bucket_of(count == 1 ? ns : ns / count)], count, shared);
    xi_count(&h->samples, count, shared);
    xi_count(&h->sum_ns, ns, shared);
}

void xi_obs_free(xo_runtime_t *rt, struct xi_cell *c)
{
    /* relaxed: the cell is past its grace period, nobody else holds it. */
    struct xi_obs *o = atomic_load_explicit(&c->obs, memory_order_relaxed);
    if (o == NULL)
        return;
    struct xi_hist *h = atomic_load_explicit(&o->hist, memory_order_relaxed);
    if (h != NULL)
        xi_mem_free(&rt->mem, h, sizeof(*h));
    xi_mem_free(&rt->mem, o, sizeof(*o));
    atomic_store_explicit(&c->obs, NULL, memory_order_relaxed);
}

/* ---- reading ------------------------------------------------------------ */

uint64_t xi_cell_depth(const struct xi_cell *c)
{
    if (c->stateless)
        return 0;
    struct xi_cell *m = (struct xi_cell *)c;
    /* relaxed: counters. */
    uint64_t sent = atomic_load_explicit(&m->sent, memory_order_relaxed);
    uint64_t done = atomic_load_explicit(&m->handled, memory_order_relaxed);
    return sent > done ? sent - done : 0;
}

const char *xi_def_name(const struct xi_cell *c)
{
    return c->def->name != NULL && c->def->name[0] != '\0' ? c->def->name
                                                           : "?";
}

void xi_cell_stats(const struct xi_cell *c, xo_actor_stats_t *out)
{
    struct xi_cell *m = (struct xi_cell *)c;
    memset(out, 0, sizeof(*out));
    /* relaxed: a snapshot of counters. */
    out->handled = atomic_load_explicit(&m->handled, memory_order_relaxed);
    out->restarts = xi_cell_incarnation(m);
    out->pool = c->pool;
    out->stateless = c->stateless;
    out->mailbox_depth = xi_cell_depth(c);
    /* A depth of one (a turn's own message) is not kept (xi_note_depth). */
    out->mailbox_high = out->mailbox_depth > 0 || out->handled > 0 ? 1 : 0;
    if (out->mailbox_high < out->mailbox_depth)
        out->mailbox_high = out->mailbox_depth;
    /* acquire: pairs with the CAS that published the block. */
    struct xi_obs *o = atomic_load_explicit(&m->obs, memory_order_acquire);
    if (o == NULL)
        return;
    out->failed = atomic_load_explicit(&o->failed, memory_order_relaxed);
    uint64_t high = atomic_load_explicit(&o->mbox_high, memory_order_relaxed);
    if (out->mailbox_high < high)
        out->mailbox_high = high;
    out->oldest_age_ns = out->mailbox_depth == 0
                             ? 0
                             : atomic_load_explicit(&o->oldest_age_ns,
                                                    memory_order_relaxed);
    out->alerts = atomic_load_explicit(&o->alerts, memory_order_relaxed);
    struct xi_hist *h = atomic_load_explicit(&o->hist, memory_order_acquire);
    if (h == NULL)
        return;
    out->handler_samples = atomic_load_explicit(&h->samples,
                                                memory_order_relaxed);
    out->handler_sum_ns = atomic_load_explicit(&h->sum_ns,
                                               memory_order_relaxed);
    for (unsigned b = 0; b < XO_HIST_BUCKETS; b++)
        out->handler_hist[b] = atomic_load_explicit(&h->b[b],
                                                    memory_order_relaxed);
}

int xo_actor_stats(xo_ref_t ref, xo_actor_stats_t *out)
{
    if (ref.rt == NULL || out == NULL)
        return XO_EINVAL;
    int rc = 0;
    xi_rcu_lock();
    struct xi_cell *c = xi_rt_closing(ref.rt) ? NULL
                                              : xi_resolve(&ref.rt->slots,
                                                           ref.id);
    if (c == NULL)
        rc = XO_ENOTEXIST;
    else
        xi_cell_stats(c, out);
    xi_rcu_unlock(&ref.rt->rcu_sync);
    return rc;
}

/* ---- the histogram ------------------------------------------------------ */

uint64_t xo_hist_upper_ns(unsigned bucket)
{
    if (bucket >= XO_HIST_BUCKETS - 1)
        return UINT64_MAX;
    return (uint64_t)2 << bucket;
}

uint64_t xo_hist_quantile_ns(const uint64_t hist[XO_HIST_BUCKETS], double q)
{
    if (hist == NULL)
        return 0;
    uint64_t total = 0;
    for (unsigned b = 0; b < XO_HIST_BUCKETS; b++)
        total += hist[b];
    if (total == 0)
        return 0;
    if (!(q > 0.0))
        q = 0.0;
    if (q > 1.0)
        q = 1.0;
    /* The rank of the quantile, 1-based: at least the first run. */
    uint64_t rank = (uint64_t)(q * (double)total + 0.999999);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < XO_HIST_BUCKETS; b++) {
        seen += hist[b];
        if (seen >= rank)
            return xo_hist_upper_ns(b);
    }
    return UINT64_MAX;
}

/* ---- walking the actors --------------------------------------------------- */

int xo_actors_each(xo_runtime_t *rt, xo_actor_visit_fn visit, void *user)
{
    if (rt == NULL || visit == NULL)
        return XO_EINVAL;
    char uid[XO_UID_MAX + 1];
    /* acquire: pairs with the release of the slot count's growth. */
    uint32_t n = atomic_load_explicit(&rt->slots.count, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++) {
        xo_actor_info_t info;
        bool found = false, closed = false;
        /* One short section per actor: the visit runs outside any, so it
           may do what it likes (send, spawn, even stop the runtime). */
        xi_rcu_lock();
        if (xi_rt_closing(rt)) {
            closed = true;
        } else {
            struct xi_cell *c = xi_slot_live_cell(&rt->slots, i);
            if (c != NULL) {
                found = true;
                info.ref = xi_cell_ref(c);
                info.definition = xi_def_name(c);
                info.uid = NULL;
                if (c->name != NULL) {
                    size_t len = c->name->len < XO_UID_MAX ? c->name->len
                                                           : XO_UID_MAX;
                    memcpy(uid, c->name->uid, len);
                    uid[len] = '\0';
                    info.uid = uid;
                }
                xi_cell_stats(c, &info.stats);
            }
        }
        xi_rcu_unlock(&rt->rcu_sync);
        if (closed)
            return XO_ECLOSED;
        if (!found)
            continue;
        int rc = visit(&info, user);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int xo_runtime_stats(const xo_runtime_t *rt, xo_runtime_stats_t *out)
{
    if (rt == NULL || out == NULL)
        return XO_EINVAL;
    xo_runtime_t *m = (xo_runtime_t *)rt;
    memset(out, 0, sizeof(*out));
    out->up_ns = xi_now_ns() - rt->start_ns;
    /* relaxed: counters. */
    out->actors = atomic_load_explicit(&m->live, memory_order_relaxed);
    unsigned n = xi_pool_slots(rt);
    for (unsigned i = 0; i < n; i++) {
        struct xi_pool *p = xi_pool_at(rt, i);
        if (p != NULL && xi_pool_running(p))
            out->pools++;
    }
    xi_watchdog_counts(m, out);
    return 0;
}
