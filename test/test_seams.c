/*
 * The seams the next layers plug into, tested from the inside: function
 * items run on their worker, timers by callback, the one exit point with
 * its reason, and the route that takes every ref naming another node.
 */
#include "support.h"

#include "runtime/runtime.h"

/* ---- function items ----------------------------------------------------- */

#define POSTS 1000

struct post {
    struct xi_func f;
    int seq;
};

static struct post posts[POSTS];
static pthread_t ran_on[POSTS];
static atomic_int ran, out_of_order, next_seq;

static void record(struct xi_func *f, struct xi_worker *w)
{
    struct post *p = xi_container_of(f, struct post, f);
    (void)w;
    ran_on[p->seq] = pthread_self();
    if (atomic_fetch_add(&next_seq, 1) != p->seq)
        atomic_fetch_add(&out_of_order, 1);
    atomic_fetch_add(&ran, 1);
}

Test(seams, function_items_posted_from_another_thread_run_once_in_order_on_the_worker)
{
    xo_runtime_t *rt = start_runtime(2);
    struct xi_worker *w = xi_pool_worker(rt, 1);
    for (int i = 0; i < POSTS; i++) {
        posts[i] = (struct post){ .f.fn = record, .seq = i };
        xi_worker_post(w, &posts[i].f);
    }
    while (atomic_load(&ran) < POSTS)
        sleep_ms(1);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&ran), POSTS, "each ran once");
    cr_assert_eq(atomic_load(&out_of_order), 0, "in the order posted");
    for (int i = 1; i < POSTS; i++)
        cr_assert(pthread_equal(ran_on[i], ran_on[0]), "all on one thread");
    cr_assert_not(pthread_equal(ran_on[0], pthread_self()),
                  "the worker's, not the poster's");
}

/* ---- timers by callback ----------------------------------------------- */

struct probe_timer {
    struct xi_timer t;
    uint64_t armed_at;
    atomic_int fired, dropped, drop_why;
    atomic_int late_ok;
};

static struct probe_timer soon, never;
static pthread_t fired_on;

static void probe_fire(struct xi_timer *t, struct xi_worker *w)
{
    struct probe_timer *p = xi_container_of(t, struct probe_timer, t);
    (void)w;
    fired_on = pthread_self();
    atomic_store(&p->late_ok, xi_now_ns() >= t->deadline);
    atomic_fetch_add(&p->fired, 1);
}

static void probe_drop(struct xi_timer *t, xo_runtime_t *rt, int why)
{
    struct probe_timer *p = xi_container_of(t, struct probe_timer, t);
    (void)rt;
    atomic_store(&p->drop_why, why);
    atomic_fetch_add(&p->dropped, 1);
}

Test(seams, a_timer_fires_its_callback_on_its_worker_once_due_and_is_dropped_at_stop)
{
    xo_runtime_t *rt = start_runtime(1);
    soon.t = (struct xi_timer){ .deadline = xi_deadline_after(2000000),
                                .fire = probe_fire, .drop = probe_drop };
    never.t = (struct xi_timer){ .deadline = xi_deadline_after(UINT64_MAX),
                                 .fire = probe_fire, .drop = probe_drop };
    struct xi_worker *w = xi_pool_worker(rt, 0);
    xi_worker_arm(w, &never.t);
    xi_worker_arm(w, &soon.t);
    while (atomic_load(&soon.fired) == 0)
        sleep_ms(1);
    cr_assert_eq(atomic_load(&soon.late_ok), 1, "not before its deadline");
    cr_assert_not(pthread_equal(fired_on, pthread_self()));
    cr_assert_eq(atomic_load(&never.fired), 0);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&soon.fired), 1);
    cr_assert_eq(atomic_load(&soon.dropped), 0);
    cr_assert_eq(atomic_load(&never.fired), 0);
    cr_assert_eq(atomic_load(&never.dropped), 1, "dropped at stop");
    cr_assert_eq(atomic_load(&never.drop_why), XO_ECLOSED);
}

/* ---- the exit point ------------------------------------------------------- */

enum { KILLED, REFUSED_CREATE, ON_REMOVED_POOL, LEFT_AT_STOP, TRACKED };

static xo_ref_t tracked[TRACKED];
static atomic_int exits[TRACKED], reason[TRACKED], code[TRACKED];
static atomic_int other_exits;

static void on_exit_hook(xo_runtime_t *rt, xo_ref_t actor,
                         const struct xi_exit *why, void *arg)
{
    (void)rt;
    (void)arg;
    for (int i = 0; i < TRACKED; i++)
        if (xo_ref_eq(actor, tracked[i])) {
            atomic_fetch_add(&exits[i], 1);
            atomic_store(&reason[i], why->kind);
            atomic_store(&code[i], why->code);
            return;
        }
    atomic_fetch_add(&other_exits, 1);
}

static xo_ref_t *refusing_slot;

static int refusing_create(xo_ctx_t *ctx, void *state, const void *arg,
                           size_t size)
{
    (void)state;
    (void)arg;
    (void)size;
    *refusing_slot = xo_self(ctx); /* the ref it would have had */
    return XO_EEXIST;
}

static const xo_actor_def_t plain_def = { .name = "plain" };
static const xo_actor_def_t refusing_def = {
    .name = "refusing", .on_create = refusing_create,
};

Test(seams, every_end_of_an_actor_reaches_the_exit_hook_once_with_its_reason)
{
    xo_runtime_t *rt = start_runtime(2);
    rt->exit_hook = on_exit_hook; /* before any actor exists */
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.pool = 0;
    cr_assert_eq(xo_spawn(rt, &plain_def, &opts, &tracked[KILLED]), 0);
    cr_assert_eq(xo_spawn(rt, &plain_def, &opts, &tracked[LEFT_AT_STOP]), 0);
    refusing_slot = &tracked[REFUSED_CREATE];
    xo_ref_t none;
    cr_assert_eq(xo_spawn(rt, &refusing_def, &opts, &none), XO_EEXIST);
    opts.pool = 1;
    cr_assert_eq(xo_spawn(rt, &plain_def, &opts, &tracked[ON_REMOVED_POOL]),
                 0);
    cr_assert_eq(xo_destroy(tracked[KILLED]), 0);
    cr_assert_eq(xo_pool_remove(rt, 1), 0);
    while (atomic_load(&exits[REFUSED_CREATE]) == 0)
        sleep_ms(1);
    stop_runtime(rt);
    for (int i = 0; i < TRACKED; i++)
        cr_assert_eq(atomic_load(&exits[i]), 1, "actor %d ended once", i);
    cr_assert_eq(atomic_load(&reason[KILLED]), XI_EXIT_DESTROYED);
    cr_assert_eq(atomic_load(&reason[REFUSED_CREATE]), XI_EXIT_FAILED);
    cr_assert_eq(atomic_load(&code[REFUSED_CREATE]), XO_EEXIST,
                 "with on_create's code");
    cr_assert_eq(atomic_load(&reason[ON_REMOVED_POOL]), XI_EXIT_POOL_REMOVED);
    cr_assert_eq(atomic_load(&reason[LEFT_AT_STOP]), XI_EXIT_STOPPING);
    cr_assert_eq(atomic_load(&other_exits), 0);
}

/* ---- refs that name another node ------------------------------------- */

static atomic_int routed, route_rc;
static _Atomic uint64_t routed_id;

static int route(xo_runtime_t *rt, xo_ref_t to, struct xi_envelope *first,
                 struct xi_envelope *last, void *arg)
{
    (void)arg;
    int rc = atomic_load(&route_rc);
    if (rc != 0)
        return rc; /* refused: the sender keeps the chain */
    atomic_store(&routed_id, to.id);
    for (struct xi_envelope *e = first; e != NULL;) {
        struct xi_envelope *next = xi_chain_next(e, last);
        atomic_fetch_add(&routed, 1);
        xi_envelope_free(rt, e); /* taken: the route owns it now */
        e = next;
    }
    return 0;
}

Test(seams, refs_naming_another_node_go_to_the_route_and_never_to_a_local_actor)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t local;
    cr_assert_eq(xo_spawn(rt, &plain_def, NULL, &local), 0);
    cr_assert_eq(xi_ref_node(local.id), 0, "a local actor's node is 0");
    uint64_t id = xi_ref_pack(xi_ref_gen(local.id), 5, xi_ref_index(local.id));
    cr_assert_eq(xi_ref_node(id), 5);
    cr_assert_eq(xi_ref_index(id), xi_ref_index(local.id));
    cr_assert_eq(xi_ref_gen(id), xi_ref_gen(local.id));
    xo_ref_t remote = { rt, id }; /* same slot and generation, node 5 */
    cr_assert_eq(xo_tell(remote, 1, "x", 1), XO_ENOTEXIST, "no route yet");
    cr_assert_not(xo_ref_alive(remote));
    rt->route = route;
    cr_assert_eq(xo_tell(remote, 1, "x", 1), 0);
    xo_batch_item_t items[3] = { { 1, NULL, 0 }, { 1, NULL, 0 },
                                 { 1, NULL, 0 } };
    cr_assert_eq(xo_tell_batch(remote, items, 3), 0, "a chain, in one");
    cr_assert_eq(atomic_load(&routed), 4);
    cr_assert_eq(atomic_load(&routed_id), id);
    atomic_store(&route_rc, XO_EFULL);
    cr_assert_eq(xo_tell(remote, 1, "x", 1), XO_EFULL,
                 "the route's refusal is the sender's error");
    xo_future_t *f = NULL;
    cr_assert_eq(xo_call(remote, 1, NULL, 0, &f), XO_EFULL);
    cr_assert_null(f);
    xo_actor_stats_t st;
    cr_assert_eq(xo_actor_stats(local, &st), 0);
    cr_assert_eq(st.handled, 0, "nothing reached the local actor");
    rt->route = NULL;
    stop_runtime(rt);
}
