/*
 * Supervisors: ordered start and stop, each strategy restarting exactly
 * the children it should and in order, restart types, escalation past the
 * supervisor's own intensity, and adding, removing and listing children.
 * Children log their on_create (their letter, upper case) and on_destroy
 * (lower case) to one shared log, which the tests compare whole.
 */
#include "support.h"

#include <ctype.h>

#include "runtime/runtime.h"
#include <string.h>

enum { T_CRASH = 1, T_SELF_DESTROY, T_PING };

static _Atomic char trail[256];
static atomic_int trail_len;

static void mark(char c)
{
    int i = atomic_fetch_add(&trail_len, 1);
    if (i < (int)sizeof(trail) - 1)
        atomic_store(&trail[i], c);
}

/* The log so far (after the events it shows are known to be over). */
static const char *trail_str(void)
{
    static char out[256];
    int n = atomic_load(&trail_len);
    for (int i = 0; i < n && i < (int)sizeof(out) - 1; i++)
        out[i] = atomic_load(&trail[i]);
    out[n < (int)sizeof(out) - 1 ? n : (int)sizeof(out) - 1] = '\0';
    return out;
}

static void wait_trail(int n)
{
    while (atomic_load(&trail_len) < n)
        sleep_ms(1);
}

struct kid {
    char letter;
};

static atomic_int fail_create_of; /* this letter's on_create fails */

static int kid_create(xo_ctx_t *ctx, void *state, const void *arg,
                      size_t size)
{
    (void)ctx;
    struct kid *k = state;
    k->letter = size == 1 ? *(const char *)arg : '?';
    mark((char)toupper((unsigned char)k->letter));
    if (atomic_load(&fail_create_of) == k->letter)
        return xo_fail(ctx, XO_EINVAL, "%c will not start", k->letter);
    return 0;
}

static int kid_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    mark(((struct kid *)state)->letter);
    return 0;
}

static int kid_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct kid *k = state;
    switch (m->tag) {
    case T_CRASH:
        return xo_crash(ctx, XO_ECANCELED, "%c crashed", k->letter);
    case T_SELF_DESTROY:
        return xo_destroy(xo_self(ctx));
    case T_PING:
        return xo_reply(m->request, 0, &k->letter, 1);
    }
    return 0;
}

static const xo_actor_def_t kid_def = {
    .name = "kid",
    .state_size = sizeof(struct kid),
    .on_create = kid_create,
    .on_message = kid_message,
    .on_destroy = kid_destroy,
};

static const char letters[] = "abcdefgh";

static xo_child_spec_t kid_spec(int i, xo_child_restart_t restart)
{
    static char names[8][2];
    names[i][0] = (char)('A' + i);
    names[i][1] = '\0';
    xo_child_spec_t c = { .name = names[i], .def = &kid_def,
                          .restart = restart };
    xo_spawn_opts_init(&c.opts);
    c.opts.arg = &letters[i];
    c.opts.arg_size = 1;
    return c;
}

static xo_child_spec_t kids[8];

static xo_sup_spec_t three_kids(xo_sup_strategy_t strategy)
{
    for (int i = 0; i < 3; i++)
        kids[i] = kid_spec(i, XO_CHILD_PERMANENT);
    return (xo_sup_spec_t){ .strategy = strategy, .children = kids,
                            .nchildren = 3 };
}

static xo_ref_t start_sup(xo_runtime_t *rt, const xo_sup_spec_t *spec)
{
    xo_ref_t sup;
    int rc = xo_supervisor_start(rt, spec, NULL, &sup);
    cr_assert_eq(rc, 0, "xo_supervisor_start: %s", xo_strerror(rc));
    return sup;
}

static xo_ref_t child(xo_ref_t sup, int i, uint64_t *restarts)
{
    xo_child_info_t info[8];
    size_t n = 0;
    cr_assert_eq(xo_supervisor_children(sup, info, 8, &n), 0);
    cr_assert_lt((size_t)i, n);
    if (restarts != NULL)
        *restarts = info[i].restarts;
    return info[i].ref;
}

static char ping(xo_ref_t r)
{
    xo_future_t *f;
    cr_assert_eq(xo_call(r, T_PING, NULL, 0, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t res;
    char c = 0;
    if (xo_future_result(f, 0, &res) == 0)
        c = *(const char *)res.data;
    xo_future_release(f);
    return c;
}

Test(supervisors, children_start_in_order_and_stop_in_reverse_at_runtime_stop)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_sup_spec_t spec = three_kids(XO_SUP_ONE_FOR_ONE);
    (void)start_sup(rt, &spec);
    cr_assert_str_eq(trail_str(), "ABC");
    stop_runtime(rt);
    cr_assert_str_eq(trail_str(), "ABCcba");
}

Test(supervisors, destroying_a_supervisor_stops_its_children_in_reverse_first)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_sup_spec_t spec = three_kids(XO_SUP_ONE_FOR_ONE);
    xo_ref_t sup = start_sup(rt, &spec);
    xo_ref_t b = child(sup, 1, NULL);
    cr_assert_eq(xo_destroy(sup), 0);
    cr_assert_str_eq(trail_str(), "ABCcba");
    cr_assert_not(xo_ref_alive(b));
    stop_runtime(rt);
}

Test(supervisors, one_for_one_restarts_only_the_failed_child_in_place)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_sup_spec_t spec = three_kids(XO_SUP_ONE_FOR_ONE);
    xo_ref_t sup = start_sup(rt, &spec);
    xo_ref_t b = child(sup, 1, NULL);
    cr_assert_eq(xo_tell(b, T_CRASH, NULL, 0), 0);
    wait_trail(5);
    cr_assert_eq(ping(b), 'b', "the same ref reaches the new incarnation");
    cr_assert_str_eq(trail_str(), "ABCbB");
    uint64_t ra, rb, rc;
    cr_assert(xo_ref_eq(child(sup, 1, &rb), b));
    (void)child(sup, 0, &ra);
    (void)child(sup, 2, &rc);
    cr_assert_eq(ra, 0);
    cr_assert_eq(rb, 1);
    cr_assert_eq(rc, 0);
    stop_runtime(rt);
    cr_assert_str_eq(trail_str(), "ABCbBcba");
}

Test(supervisors, one_for_all_holds_every_child_in_reverse_then_starts_all_in_order)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_sup_spec_t spec = three_kids(XO_SUP_ONE_FOR_ALL);
    xo_ref_t sup = start_sup(rt, &spec);
    xo_ref_t b = child(sup, 1, NULL);
    cr_assert_eq(xo_tell(b, T_CRASH, NULL, 0), 0);
    wait_trail(9);
    cr_assert_str_eq(trail_str(), "ABCbcaABC");
    for (int i = 0; i < 3; i++) {
        uint64_t r;
        xo_ref_t k = child(sup, i, &r);
        cr_assert_eq(r, 1, "child %d restarted once", i);
        cr_assert_eq(ping(k), letters[i]);
    }
    stop_runtime(rt);
}

Test(supervisors, rest_for_one_restarts_the_failed_child_and_those_after_it)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_sup_spec_t spec = three_kids(XO_SUP_REST_FOR_ONE);
    xo_ref_t sup = start_sup(rt, &spec);
    xo_ref_t b = child(sup, 1, NULL);
    cr_assert_eq(xo_tell(b, T_CRASH, NULL, 0), 0);
    wait_trail(7);
    cr_assert_str_eq(trail_str(), "ABCbcBC");
    uint64_t r0, r1, r2;
    (void)child(sup, 0, &r0);
    (void)child(sup, 1, &r1);
    (void)child(sup, 2, &r2);
    cr_assert_eq(r0, 0, "A before it is left alone");
    cr_assert_eq(r1, 1);
    cr_assert_eq(r2, 1);
    stop_runtime(rt);
}

static atomic_int sup_downs, sup_down_reason;

static int sup_watcher(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    if (m->tag == XO_TAG_DOWN) {
        atomic_store(&sup_down_reason, ((const xo_down_t *)m->data)->reason);
        atomic_fetch_add(&sup_downs, 1);
    }
    return 0;
}

static const xo_actor_def_t sup_watcher_def = {
    .name = "sup watcher", .on_message = sup_watcher,
};

Test(supervisors, past_its_intensity_a_supervisor_stops_its_children_and_fails)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_sup_spec_t spec = three_kids(XO_SUP_ONE_FOR_ONE);
    spec.intensity = 1;
    spec.period_ns = UINT64_C(60000000000);
    xo_ref_t sup = start_sup(rt, &spec);
    xo_ref_t w = spawn_on(rt, &sup_watcher_def, 0);
    xo_monitor_t mon;
    cr_assert_eq(xo_monitor(w, sup, &mon), 0);
    xo_ref_t a = child(sup, 0, NULL);
    cr_assert_eq(xo_tell(a, T_CRASH, NULL, 0), 0);
    wait_trail(5); /* a, A */
    cr_assert_eq(xo_tell(a, T_CRASH, NULL, 0), 0);
    while (atomic_load(&sup_downs) < 1)
        sleep_ms(1);
    cr_assert_eq(atomic_load(&sup_down_reason), XO_EXIT_RESTART_INTENSITY);
    cr_assert_str_eq(trail_str(), "ABCaAacb",
                     "the second failure ends A; B and C stop in reverse");
    cr_assert_not(xo_ref_alive(a));
    cr_assert_eq(xo_supervisor_children(sup, NULL, 0, &(size_t){ 0 }),
                 XO_ENOTEXIST);
    stop_runtime(rt);
}

Test(supervisors, a_nested_supervisor_past_its_intensity_is_restarted_by_its_parent)
{
    xo_runtime_t *rt = start_runtime(2);
    static xo_child_spec_t inner_kids[1];
    inner_kids[0] = kid_spec(0, XO_CHILD_PERMANENT);
    static xo_sup_spec_t inner;
    inner = (xo_sup_spec_t){ .strategy = XO_SUP_ONE_FOR_ONE,
                             .intensity = 1,
                             .period_ns = UINT64_C(60000000000),
                             .children = inner_kids, .nchildren = 1 };
    static xo_child_spec_t top_kids[1];
    top_kids[0] = (xo_child_spec_t){ .name = "inner",
                                     .def = xo_supervisor_def(),
                                     .restart = XO_CHILD_PERMANENT };
    xo_spawn_opts_init(&top_kids[0].opts);
    top_kids[0].opts.arg = &inner;
    top_kids[0].opts.arg_size = sizeof(inner);
    xo_sup_spec_t top = { .strategy = XO_SUP_ONE_FOR_ONE,
                          .children = top_kids, .nchildren = 1 };
    xo_ref_t sup = start_sup(rt, &top);
    xo_ref_t in = child(sup, 0, NULL);
    xo_ref_t a = child(in, 0, NULL);
    cr_assert_eq(xo_tell(a, T_CRASH, NULL, 0), 0);
    wait_trail(3); /* A a A */
    cr_assert_eq(xo_tell(a, T_CRASH, NULL, 0), 0);
    wait_trail(5); /* a: the inner one fails; the parent restarts it: A */
    uint64_t r;
    cr_assert(xo_ref_eq(child(sup, 0, &r), in), "the same inner ref");
    cr_assert_eq(r, 1, "restarted once by the parent");
    xo_ref_t a2 = child(in, 0, NULL);
    cr_assert_eq(ping(a2), 'a');
    cr_assert_str_eq(trail_str(), "AaAaA");
    stop_runtime(rt);
    cr_assert_str_eq(trail_str(), "AaAaAa");
}

Test(supervisors, restart_types_temporary_transient_and_permanent)
{
    xo_runtime_t *rt = start_runtime(2);
    kids[0] = kid_spec(0, XO_CHILD_TEMPORARY);
    kids[1] = kid_spec(1, XO_CHILD_TRANSIENT);
    kids[2] = kid_spec(2, XO_CHILD_PERMANENT);
    xo_sup_spec_t spec = { .strategy = XO_SUP_ONE_FOR_ONE, .children = kids,
                           .nchildren = 3 };
    xo_ref_t sup = start_sup(rt, &spec);
    xo_ref_t a = child(sup, 0, NULL), b = child(sup, 1, NULL),
             c = child(sup, 2, NULL);
    cr_assert_eq(xo_tell(a, T_CRASH, NULL, 0), 0); /* temporary: gone */
    while (xo_ref_alive(a))
        sleep_ms(1);
    cr_assert_eq(xo_tell(b, T_SELF_DESTROY, NULL, 0), 0); /* transient */
    wait_trail(5); /* its on_destroy ran */
    cr_assert_eq(xo_tell(c, T_SELF_DESTROY, NULL, 0), 0); /* permanent */
    wait_trail(6);
    cr_assert_eq(ping(c), 'c', "a permanent child comes back, same ref");
    size_t n = 0;
    xo_child_info_t info[4];
    do { /* the notices of A and B's ends reach the supervisor */
        cr_assert_eq(xo_supervisor_children(sup, info, 4, &n), 0);
    } while (n != 1 && (sleep_ms(1), true));
    cr_assert(xo_ref_eq(info[0].ref, c));
    cr_assert_str_eq(info[0].name, "C");
    cr_assert_eq(info[0].restarts, 1);
    cr_assert_str_eq(trail_str(), "ABCabcC");
    stop_runtime(rt);
}

Test(supervisors, children_are_added_listed_and_removed_while_it_runs)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_sup_spec_t spec = three_kids(XO_SUP_ONE_FOR_ONE);
    xo_ref_t sup = start_sup(rt, &spec);
    xo_child_spec_t d = kid_spec(3, XO_CHILD_TRANSIENT);
    xo_ref_t dref;
    cr_assert_eq(xo_supervisor_add(sup, &d, &dref), 0);
    cr_assert_eq(ping(dref), 'd');
    cr_assert_eq(xo_supervisor_add(sup, &d, NULL), XO_EEXIST);
    xo_child_info_t info[8];
    size_t n = 0;
    cr_assert_eq(xo_supervisor_children(sup, info, 8, &n), 0);
    cr_assert_eq(n, 4);
    cr_assert_str_eq(info[3].name, "D");
    cr_assert_eq(info[3].restart, XO_CHILD_TRANSIENT);
    cr_assert(xo_ref_eq(info[3].ref, dref));
    cr_assert_eq(xo_supervisor_children(sup, info, 2, &n), 0);
    cr_assert_eq(n, 4, "the count even when the array is shorter");
    xo_ref_t b = info[1].ref;
    cr_assert_eq(xo_supervisor_remove(sup, "B"), 0);
    cr_assert_not(xo_ref_alive(b));
    cr_assert_eq(xo_supervisor_remove(sup, "B"), XO_ENOTEXIST);
    cr_assert_eq(xo_supervisor_children(sup, info, 8, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(info[0].name, "A");
    cr_assert_str_eq(info[1].name, "C");
    cr_assert_str_eq(info[2].name, "D");
    cr_assert_str_eq(trail_str(), "ABCDb");
    stop_runtime(rt);
    cr_assert_str_eq(trail_str(), "ABCDbdca");
}

Test(supervisors, a_child_that_fails_to_start_stops_the_started_ones_in_reverse)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_sup_spec_t spec = three_kids(XO_SUP_ONE_FOR_ONE);
    atomic_store(&fail_create_of, 'c');
    xo_ref_t sup;
    cr_assert_eq(xo_supervisor_start(rt, &spec, NULL, &sup), XO_EINVAL);
    cr_assert_str_eq(trail_str(), "ABCba");
    stop_runtime(rt);
}

static int nothing(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    return 0;
}

static const xo_actor_def_t stateless_kid = {
    .name = "stateless kid", .flags = XO_ACTOR_STATELESS,
    .on_message = nothing,
};

Test(supervisors, bad_specs_and_misuse_are_refused)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t sup;
    cr_assert_eq(xo_supervisor_start(rt, NULL, NULL, &sup), XO_EINVAL);
    xo_sup_spec_t spec = three_kids(XO_SUP_ONE_FOR_ONE);
    spec.strategy = (xo_sup_strategy_t)9;
    cr_assert_eq(xo_supervisor_start(rt, &spec, NULL, &sup), XO_EINVAL);
    spec = three_kids(XO_SUP_ONE_FOR_ONE);
    kids[1].name = "A";
    cr_assert_eq(xo_supervisor_start(rt, &spec, NULL, &sup), XO_EINVAL,
                 "two children named A");
    spec = three_kids(XO_SUP_ONE_FOR_ONE);
    kids[2].def = &stateless_kid;
    cr_assert_eq(xo_supervisor_start(rt, &spec, NULL, &sup), XO_EINVAL);
    spec = three_kids(XO_SUP_ONE_FOR_ONE);
    kids[2].opts.restart = XO_RESTART_ALWAYS;
    cr_assert_eq(xo_supervisor_start(rt, &spec, NULL, &sup), XO_EINVAL,
                 "the restart policy is the supervisor's");
    spec = three_kids(XO_SUP_ONE_FOR_ONE);
    kids[0].name = "";
    cr_assert_eq(xo_supervisor_start(rt, &spec, NULL, &sup), XO_EINVAL);
    spec = three_kids(XO_SUP_ONE_FOR_ONE);
    spec.intensity = XO_RESTART_MAX + 1;
    cr_assert_eq(xo_supervisor_start(rt, &spec, NULL, &sup), XO_EINVAL);
    cr_assert_str_eq(trail_str(), "", "nothing was started");
    spec = three_kids(XO_SUP_ONE_FOR_ONE);
    sup = start_sup(rt, &spec);
    xo_ref_t a = child(sup, 0, NULL);
    xo_child_spec_t bad = kid_spec(4, XO_CHILD_PERMANENT);
    bad.restart = (xo_child_restart_t)5;
    cr_assert_eq(xo_supervisor_add(sup, &bad, NULL), XO_EINVAL);
    cr_assert_eq(xo_supervisor_add(a, &kids[0], NULL), XO_EINVAL,
                 "not a supervisor");
    cr_assert_eq(xo_supervisor_remove(sup, NULL), XO_EINVAL);
    cr_assert_eq(xo_supervisor_children(sup, NULL, 1, &(size_t){ 0 }),
                 XO_EINVAL);
    cr_assert_eq(xo_tell(sup, 7, NULL, 0), 0, "a tell is accepted");
    xo_future_t *f;
    cr_assert_eq(xo_call(sup, 7, NULL, 0, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t res;
    cr_assert_eq(xo_future_result(f, 0, &res), XO_EINVAL,
                 "a supervisor takes no user messages");
    xo_future_release(f);
    stop_runtime(rt);
}

Test(supervisors, a_supervisor_start_out_of_memory_gives_enomem_and_leaves_no_child)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_sup_spec_t spec = three_kids(XO_SUP_ONE_FOR_ONE);
    int failures = 0;
    xo_ref_t sup;
    for (long k = 1;; k++) {
        xi_mem_fail_after(&rt->mem, k);
        int rc = xo_supervisor_start(rt, &spec, NULL, &sup);
        xi_mem_fail_after(&rt->mem, 0);
        if (rc == 0)
            break;
        cr_assert_eq(rc, XO_ENOMEM, "allocation %ld: %s", k, xo_strerror(rc));
        failures++;
        cr_assert_lt(k, 200);
    }
    cr_assert_geq(failures, 6, "the supervisor's and each child's");
    /* Every child a failed start made was stopped: each upper case letter
       of the trail before the last "ABC" has its lower case one. */
    const char *t = trail_str();
    size_t len = strlen(t);
    cr_assert_geq(len, 3);
    cr_assert_str_eq(t + len - 3, "ABC");
    int open[3] = { 0, 0, 0 };
    for (size_t i = 0; i + 3 < len; i++) {
        char c = t[i];
        if (c >= 'A' && c <= 'C')
            open[c - 'A']++;
        else
            open[c - 'a']--;
    }
    for (int i = 0; i < 3; i++)
        cr_assert_eq(open[i], 0, "child %c was started and not stopped", 'A' + i);
    xo_ref_t b = child(sup, 1, NULL);
    cr_assert_eq(xo_tell(b, T_CRASH, NULL, 0), 0);
    cr_assert_eq(ping(b), 'b', "the tree works");
    stop_runtime(rt);
}

/* ---- ends and holds that must not hang ------------------------------------ */

/* An on_create that fails once the runtime is stopping (its own tells are
   refused with XO_ECLOSED from then on). */
static atomic_int creating;

static int fail_when_stopping(xo_ctx_t *ctx, void *state, const void *arg,
                              size_t size)
{
    (void)state;
    (void)arg;
    (void)size;
    atomic_store(&creating, 1);
    while (xo_tell(xo_self(ctx), T_PING, NULL, 0) != XO_ECLOSED)
        sleep_ms(1);
    return xo_fail(ctx, XO_EINVAL, "stopping");
}

static const xo_actor_def_t stopping_kid_def = {
    .name = "fails when stopping", .state_size = sizeof(struct kid),
    .on_create = fail_when_stopping, .on_message = kid_message,
};

static xo_runtime_t *starting_rt;
static atomic_int start_rc = 1;

static void *start_one(void *arg)
{
    (void)arg;
    static xo_child_spec_t k;
    k = (xo_child_spec_t){ .name = "k", .def = &stopping_kid_def };
    xo_spawn_opts_init(&k.opts);
    xo_sup_spec_t spec = { .children = &k, .nchildren = 1 };
    xo_ref_t sup;
    atomic_store(&start_rc, xo_supervisor_start(starting_rt, &spec, NULL,
                                                &sup));
    return NULL;
}

Test(supervisors, stop_while_a_childs_first_on_create_fails_still_ends)
{
    xo_runtime_t *rt = start_runtime(1);
    starting_rt = rt;
    pthread_t th;
    pthread_create(&th, NULL, start_one, NULL);
    while (!atomic_load(&creating))
        sleep_ms(1);
    stop_runtime(rt); /* the child, never swept, would be left: a hang */
    pthread_join(th, NULL);
    cr_assert_eq(atomic_load(&start_rc), XO_EINVAL);
}

static atomic_int gate_open, slow_started;

static int slow_create(xo_ctx_t *ctx, void *state, const void *arg,
                       size_t size)
{
    (void)ctx;
    (void)state;
    (void)arg;
    (void)size;
    atomic_store(&slow_started, 1);
    while (!atomic_load(&gate_open))
        sleep_ms(1);
    return 0;
}

static const xo_actor_def_t slow_def = {
    .name = "slow", .state_size = sizeof(struct kid),
    .on_create = slow_create, .on_message = kid_message,
};

static xo_ref_t busy_sup, doomed;
static atomic_int destroy_rc = 1;

static void *add_slow(void *arg)
{
    (void)arg;
    xo_child_spec_t s = { .name = "slow", .def = &slow_def,
                          .restart = XO_CHILD_PERMANENT };
    xo_spawn_opts_init(&s.opts);
    (void)xo_supervisor_add(busy_sup, &s, NULL);
    return NULL;
}

static void *destroy_doomed(void *arg)
{
    (void)arg;
    atomic_store(&destroy_rc, xo_destroy(doomed));
    return NULL;
}

Test(supervisors, a_held_child_destroyed_before_its_supervisor_decides_is_not_restarted)
{
    xo_runtime_t *rt = start_runtime(2);
    kids[0] = kid_spec(0, XO_CHILD_PERMANENT);
    kids[0].opts.pool = 1;
    xo_sup_spec_t spec = { .children = kids, .nchildren = 1 };
    xo_spawn_opts_t so;
    xo_spawn_opts_init(&so);
    so.pool = 0;
    cr_assert_eq(xo_supervisor_start(rt, &spec, &so, &busy_sup), 0);
    doomed = child(busy_sup, 0, NULL);
    pthread_t adder, destroyer;
    pthread_create(&adder, NULL, add_slow, NULL); /* the supervisor is busy */
    while (!atomic_load(&slow_started))
        sleep_ms(1);
    cr_assert_eq(xo_tell(doomed, T_CRASH, NULL, 0), 0);
    wait_trail(2); /* "Aa": held, its report queued behind the add */
    pthread_create(&destroyer, NULL, destroy_doomed, NULL);
    while (xo_ref_alive(doomed)) /* unpublished */
        sleep_ms(1);
    atomic_store(&gate_open, 1);
    pthread_join(adder, NULL);
    pthread_join(destroyer, NULL);
    cr_assert_eq(atomic_load(&destroy_rc), 0);
    cr_assert_str_eq(trail_str(), "Aa", "never started again");
    stop_runtime(rt);
}

/* A group restart that cannot hold a child without closing a cycle of
   waits (the child waits on a call whose handler runs above it on the
   same worker, where the supervisor decides) leaves it running, never
   stuck. */
static xo_ref_t echo_ref;
static atomic_int blocked_call_rc = 1;

static int echo_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    return xo_reply(m->request, 0, NULL, 0);
}

static const xo_actor_def_t echo_def = {
    .name = "echo", .on_message = echo_message,
};

static int caller_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    if (m->tag != T_SELF_DESTROY + 10)
        return kid_message(ctx, state, m);
    xo_future_t *f;
    int rc = xo_call(echo_ref, 1, NULL, 0, &f);
    if (rc == 0) {
        rc = xo_future_wait(f, -1);
        xo_future_release(f);
    }
    atomic_store(&blocked_call_rc, rc);
    return 0;
}

static const xo_actor_def_t caller_kid_def = {
    .name = "caller kid", .state_size = sizeof(struct kid),
    .on_create = kid_create, .on_message = caller_message,
    .on_destroy = kid_destroy,
};

Test(supervisors, a_group_restart_never_leaves_a_child_it_could_not_hold_stuck)
{
    xo_runtime_t *rt = start_runtime(1);
    echo_ref = spawn_on(rt, &echo_def, 0);
    kids[0] = kid_spec(0, XO_CHILD_PERMANENT);
    kids[0].def = &caller_kid_def;
    kids[1] = kid_spec(1, XO_CHILD_PERMANENT);
    xo_sup_spec_t spec = { .strategy = XO_SUP_ONE_FOR_ALL, .children = kids,
                           .nchildren = 2 };
    xo_ref_t sup = start_sup(rt, &spec);
    xo_ref_t a = child(sup, 0, NULL), b = child(sup, 1, NULL);
    cr_assert_eq(xo_tell(b, T_CRASH, NULL, 0), 0);
    cr_assert_eq(xo_tell(a, T_SELF_DESTROY + 10, NULL, 0), 0);
    while (atomic_load(&blocked_call_rc) == 1)
        sleep_ms(1);
    cr_assert_eq(atomic_load(&blocked_call_rc), 0);
    cr_assert_eq(ping(a), 'a', "A answers: not held forever");
    cr_assert_eq(ping(b), 'b');
    uint64_t rb;
    (void)child(sup, 1, &rb);
    cr_assert_eq(rb, 1);
    stop_runtime(rt);
}

static atomic_long start_ns[8];
static atomic_int starts;

static int stamped_create(xo_ctx_t *ctx, void *state, const void *arg,
                          size_t size)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int i = atomic_fetch_add(&starts, 1);
    if (i < 8)
        atomic_store(&start_ns[i], ts.tv_sec * 1000000000L + ts.tv_nsec);
    return kid_create(ctx, state, arg, size);
}

static const xo_actor_def_t stamped_kid_def = {
    .name = "stamped kid", .state_size = sizeof(struct kid),
    .on_create = stamped_create, .on_message = kid_message,
};

Test(supervisors, a_supervised_childs_backoff_doubles_for_restarts_in_a_row)
{
    xo_runtime_t *rt = start_runtime(1);
    kids[0] = kid_spec(0, XO_CHILD_PERMANENT);
    kids[0].def = &stamped_kid_def;
    kids[0].opts.backoff_min_ns = 20000000; /* 20 ms */
    kids[0].opts.backoff_max_ns = 1000000000;
    xo_sup_spec_t spec = { .intensity = 10, .children = kids,
                           .nchildren = 1 };
    xo_ref_t sup = start_sup(rt, &spec);
    xo_ref_t a = child(sup, 0, NULL);
    for (int i = 1; i <= 3; i++) {
        cr_assert_eq(xo_tell(a, T_CRASH, NULL, 0), 0);
        cr_assert_eq(ping(a), 'a');
        cr_assert_eq(atomic_load(&starts), i + 1);
    }
    /* Restarts 1, 2, 3 waited at least 20, 40 and 80 ms after their
       crash, which came after the start before. */
    for (int i = 1; i <= 3; i++) {
        long gap = atomic_load(&start_ns[i]) - atomic_load(&start_ns[i - 1]);
        cr_assert_geq(gap, 20000000L << (i - 1), "restart %d: %ld ns", i,
                      gap);
    }
    stop_runtime(rt);
}
