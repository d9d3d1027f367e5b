/*
 * threadring.c -- a token passed around a ring of actors (Savina "thread
 * ring").
 *
 * `ring` actors, each knowing the next. The main thread gives node 0 a
 * token carrying the number of hops left; each node forwards it to the
 * next, decremented, and the node that receives 0 ends the run. Node k
 * sees hops - k, so the last one must be node hops % ring: the check.
 *
 * One message is in flight at a time, so this measures the cost of one
 * send + schedule + turn, with the ring's actors scattered over the pools
 * by the runtime's default placement (least loaded: nodes spawned in a row
 * alternate between two pools, so every hop crosses cores). --placement=one
 * puts the ring on one worker and measures the same path without the
 * cross-core traffic.
 *
 * Wiring: the nodes are spawned first, then each gets its successor's ref
 * in a SETUP message; the last node set up signals, and only then does the
 * clock start.
 */
#include "bench.h"

#include <stdlib.h>

enum { KICK = 1, SETUP = 2, TOKEN = 3 };

struct ring {
    struct bench_done *done;
    uint64_t hops, size;
    _Atomic uint64_t wired;   /* nodes that got their successor */
    uint64_t last_node;       /* written by the node that saw 0 */
    xo_ref_t *nodes;
};

/* The spawn argument is the whole initial state. */
struct node {
    struct ring *ring;
    uint64_t index;
    xo_ref_t next;
};

static int node_setup(struct node *n, const xo_msg_t *m)
{
    n->next = *(const xo_ref_t *)m->data;
    /* acq_rel: the last node's increment follows every other's. */
    if (atomic_fetch_add_explicit(&n->ring->wired, 1, memory_order_acq_rel) +
            1 == n->ring->size)
        bench_done_signal(n->ring->done);
    return 0;
}

static int node_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct node *n = state;
    (void)ctx;
    uint64_t left;
    if (m->tag == SETUP)
        return node_setup(n, m);
    left = m->tag == KICK ? n->ring->hops : *(const uint64_t *)m->data;
    if (left > 0) {
        left--;
        return xo_tell(n->next, TOKEN, &left, sizeof(left));
    }
    n->ring->last_node = n->index;
    bench_done_signal(n->ring->done);
    return 0;
}

static const xo_actor_def_t node_def = {
    .name = "ring-node", .state_size = sizeof(struct node),
    .on_create = bench_copy_arg, .on_message = node_message,
};

static int build_ring(struct bench_env *env, struct ring *r)
{
    for (uint64_t i = 0; i < r->size; i++) {
        struct node init = { r, i, XO_REF_NONE };
        if (bench_spawn(env, &node_def, XO_POOL_ANY, &init, sizeof(init),
                        &r->nodes[i]) != 0)
            return -1;
    }
    bench_done_reset(&env->done);
    for (uint64_t i = 0; i < r->size; i++) {
        xo_ref_t next = r->nodes[(i + 1) % r->size];
        if (xo_tell(r->nodes[i], SETUP, &next, sizeof(next)) != 0)
            return bench_error(env, "cannot wire the ring");
    }
    return bench_wait(env, "ring's wiring");
}

int bench_threadring(const struct bench_opts *opts, const uint64_t *args,
                     struct bench_result *out)
{
    struct ring r = { .hops = args[0], .size = args[1] };
    struct bench_env env;
    r.nodes = calloc(r.size, sizeof(*r.nodes));
    if (r.nodes == NULL || bench_start(&env, "threadring", opts) != 0) {
        free(r.nodes);
        return -1;
    }
    r.done = &env.done;
    int rc = build_ring(&env, &r);
    if (rc == 0)
        rc = bench_measure(&env, &r.nodes[0], 1, KICK, &out->seconds);
    if (rc == 0 && r.last_node != r.hops % r.size)
        rc = bench_error(&env, "the token ended at the wrong node");
    out->ops = r.hops;
    bench_extra(out, "ring", "%llu", (unsigned long long)r.size);
    bench_extra(out, "ns_per_hop", "%.1f",
                out->seconds * 1e9 / (double)(r.hops ? r.hops : 1));
    free(r.nodes);
    return bench_finish(&env, out) == 0 ? rc : -1;
}
