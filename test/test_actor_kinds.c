/*
 * Actor kinds and lifecycle hooks: stateless actors run one actor's
 * handler on several workers at once and take re-entrant calls; stateful
 * ones never do, even under load; on_create may call its own actor; a
 * failing on_destroy keeps the actor alive.
 */
#include "support.h"

#include <string.h>

enum { WORK = 1, GET = 2, REENTER = 3 };

static atomic_int running, max_running, done_count;
static struct latch done;

static void enter(void)
{
    int now = atomic_fetch_add(&running, 1) + 1;
    int seen = atomic_load(&max_running);
    while (now > seen && !atomic_compare_exchange_weak(&max_running, &seen, now))
        ;
}

/* Stateless: each handler waits (bounded) to see a second one running. */
static int stateless_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    enter();
    for (int i = 0; i < 2000 && atomic_load(&max_running) < 2; i++)
        sleep_ms(1);
    atomic_fetch_sub(&running, 1);
    latch_count_down(&done);
    return 0;
}

static const xo_actor_def_t stateless_def = {
    .name = "stateless", .flags = XO_ACTOR_STATELESS,
    .on_message = stateless_message,
};

Test(actor_kinds, stateless_handlers_of_one_actor_run_at_the_same_time)
{
    xo_runtime_t *rt = start_runtime(2);
    latch_init(&done, 2);
    xo_ref_t s;
    cr_assert_eq(xo_spawn(rt, &stateless_def, NULL, &s), 0);
    cr_assert_eq(xo_tell(s, WORK, NULL, 0), 0);
    cr_assert_eq(xo_tell(s, WORK, NULL, 0), 0);
    latch_wait(&done);
    cr_assert_eq(atomic_load(&max_running), 2,
                 "two runs of one actor's handler overlapped");
    cr_assert_eq(xo_destroy(s), 0);
    stop_runtime(rt);
}

/* Stateful under load: four senders, never two handlers at once. */
struct tally {
    long count;
};

static atomic_int overlap;

static int stateful_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct tally *t = state;
    (void)ctx;
    if (m->tag == GET)
        return xo_reply(m->request, GET, &t->count, sizeof(t->count));
    if (atomic_fetch_add(&running, 1) != 0)
        atomic_fetch_add(&overlap, 1);
    t->count++; /* unsynchronised on purpose: TSan checks exclusion too */
    atomic_fetch_sub(&running, 1);
    return 0;
}

static const xo_actor_def_t stateful_def = {
    .name = "stateful", .state_size = sizeof(struct tally),
    .on_message = stateful_message,
};

static void *flood(void *arg)
{
    xo_ref_t *r = arg;
    for (int i = 0; i < 50000; i++)
        cr_assert_eq(xo_tell(*r, WORK, NULL, 0), 0);
    return NULL;
}

Test(actor_kinds, stateful_handler_never_runs_twice_at_once_under_load)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t s;
    cr_assert_eq(xo_spawn(rt, &stateful_def, NULL, &s), 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, flood, &s);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    xo_future_t *f;
    cr_assert_eq(xo_call(s, GET, NULL, 0, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t r;
    cr_assert_eq(xo_future_result(f, 0, &r), 0);
    cr_assert_eq(*(const long *)r.data, 200000);
    xo_future_release(f);
    cr_assert_eq(atomic_load(&overlap), 0);
    stop_runtime(rt);
}

/* Re-entrant A -> S -> A with a stateless S and blocking waits. */
static int reenter_stateless(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    if (m->tag == REENTER) { /* call back the sender's peer: stateless too */
        xo_ref_t target = *(const xo_ref_t *)m->data;
        xo_future_t *f;
        int rc = xo_call(target, GET, NULL, 0, &f);
        if (rc == 0)
            rc = xo_future_wait(f, -1);
        if (rc == 0)
            atomic_fetch_add(&done_count, 1);
        xo_future_release(f);
        return rc;
    }
    return 0;
}

static const xo_actor_def_t reenter_def = {
    .name = "reenter", .flags = XO_ACTOR_STATELESS,
    .on_message = reenter_stateless,
};

static int outer_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    xo_ref_t s = *(const xo_ref_t *)m->data;
    /* A stateless actor calls itself through the blocking path. */
    xo_future_t *f;
    int rc = xo_call(s, REENTER, &s, sizeof(s), &f);
    if (rc == 0)
        rc = xo_future_wait(f, -1);
    if (rc == 0)
        atomic_fetch_add(&done_count, 1);
    xo_future_release(f);
    latch_count_down(&done);
    return rc;
}

static const xo_actor_def_t outer_def = {
    .name = "outer", .on_message = outer_message,
};

Test(actor_kinds, reentrant_calls_through_a_stateless_actor_do_not_deadlock)
{
    xo_runtime_t *rt = start_runtime(2);
    latch_init(&done, 1);
    xo_ref_t s, a;
    cr_assert_eq(xo_spawn(rt, &reenter_def, NULL, &s), 0);
    cr_assert_eq(xo_spawn(rt, &outer_def, NULL, &a), 0);
    cr_assert_eq(xo_tell(a, WORK, &s, sizeof(s)), 0);
    latch_wait(&done);
    cr_assert_eq(atomic_load(&done_count), 2, "S -> S nested call and A's");
    stop_runtime(rt);
}

/* on_create that already calls itself (continuation) and tells itself. */
struct selfish {
    int told, answered;
};

static int selfish_then(xo_ctx_t *ctx, void *state, xo_future_t *f, void *arg)
{
    (void)ctx;
    (void)arg;
    struct selfish *s = state;
    xo_result_t r;
    if (xo_future_result(f, 0, &r) == 0 && r.size == sizeof(int))
        s->answered = *(const int *)r.data;
    latch_count_down(&done);
    return 0;
}

static int selfish_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct selfish *s = state;
    if (m->tag == WORK) { /* from on_create: now call ourselves */
        s->told++;
        return xo_call_then(ctx, xo_self(ctx), GET, NULL, 0, -1,
                            selfish_then, NULL);
    }
    if (m->tag == GET)
        return xo_reply(m->request, GET, &s->told, sizeof(s->told));
    return 0;
}

static int selfish_create(xo_ctx_t *ctx, void *state, const void *arg,
                          size_t size)
{
    (void)state;
    (void)arg;
    (void)size;
    /* A call from on_create: the future completes once the actor runs. */
    xo_future_t *f;
    int rc = xo_call(xo_self(ctx), GET, NULL, 0, &f);
    if (rc != 0)
        return rc;
    xo_future_release(f);
    return xo_tell(xo_self(ctx), WORK, NULL, 0);
}

static struct selfish selfish_report;

static int selfish_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    selfish_report = *(struct selfish *)state;
    return 0;
}

static const xo_actor_def_t selfish_def = {
    .name = "selfish", .state_size = sizeof(struct selfish),
    .on_create = selfish_create, .on_message = selfish_message,
    .on_destroy = selfish_destroy,
};

Test(actor_kinds, on_create_can_call_and_tell_its_own_actor)
{
    xo_runtime_t *rt = start_runtime(1);
    latch_init(&done, 1);
    xo_ref_t s;
    cr_assert_eq(xo_spawn(rt, &selfish_def, NULL, &s), 0);
    latch_wait(&done);
    stop_runtime(rt);
    cr_assert_eq(selfish_report.told, 1);
    cr_assert_eq(selfish_report.answered, 1);
}

/* on_destroy that refuses the first time. */
static atomic_int destroy_calls;

static int stubborn_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    (void)state;
    return atomic_fetch_add(&destroy_calls, 1) == 0 ? XO_EINVAL : 0;
}

static int stubborn_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)m;
    return xo_reply(m->request, GET, state, sizeof(int));
}

static const xo_actor_def_t stubborn_def = {
    .name = "stubborn", .state_size = sizeof(int),
    .on_message = stubborn_message, .on_destroy = stubborn_destroy,
};

Test(actor_kinds, failing_on_destroy_keeps_the_actor_alive_with_its_uid)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.uid = "stubborn";
    xo_ref_t s, found;
    cr_assert_eq(xo_spawn(rt, &stubborn_def, &opts, &s), 0);
    cr_assert_eq(xo_destroy(s), XO_EINVAL, "on_destroy's code comes back");
    cr_assert(xo_ref_alive(s), "and the actor lives on");
    cr_assert_eq(xo_lookup(rt, "stubborn", &found), 0);
    cr_assert(xo_ref_eq(found, s));
    xo_future_t *f;
    cr_assert_eq(xo_call(s, GET, NULL, 0, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_future_release(f);
    cr_assert_eq(xo_destroy(s), 0, "the second destroy is accepted");
    cr_assert_not(xo_ref_alive(s));
    cr_assert_eq(xo_lookup(rt, "stubborn", &found), XO_ENOTEXIST);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&destroy_calls), 2);
}

/* ---- concurrent destroys of an actor whose on_destroy refuses ---------- */

static atomic_int refuse_destroy = 1;

static int refusing_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    (void)state;
    return atomic_load(&refuse_destroy) ? XO_EINVAL : 0;
}

static int nop_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    return 0;
}

static const xo_actor_def_t refusing_def = {
    .name = "refusing", .on_message = nop_message,
    .on_destroy = refusing_destroy,
};
static const xo_actor_def_t refusing_stateless_def = {
    .name = "refusing-stateless", .flags = XO_ACTOR_STATELESS,
    .on_message = nop_message, .on_destroy = refusing_destroy,
};

struct destroyer {
    xo_ref_t target;
    int refused, raced, other;
};

static void *keep_destroying(void *arg)
{
    struct destroyer *d = arg;
    for (int i = 0; i < 300; i++) {
        int rc = xo_destroy(d->target);
        if (rc == XO_EINVAL)
            d->refused++;
        else if (rc == XO_ENOTEXIST)
            d->raced++; /* another destroy was in flight */
        else
            d->other++;
        (void)xo_tell(d->target, WORK, NULL, 0);
    }
    return NULL;
}

static void destroy_race(const xo_actor_def_t *def)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.uid = "contested";
    xo_ref_t r, found;
    cr_assert_eq(xo_spawn(rt, def, &opts, &r), 0);
    struct destroyer d[3] = { { .target = r }, { .target = r },
                              { .target = r } };
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, keep_destroying, &d[i]);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL); /* every destroy returned: none hung */
        cr_assert_eq(d[i].other, 0, "only refusals and lost races");
        cr_assert_gt(d[i].refused + d[i].raced, 0);
    }
    cr_assert(xo_ref_alive(r), "still alive after all the refusals");
    cr_assert_eq(xo_lookup(rt, "contested", &found), 0, "with its uid");
    cr_assert(xo_ref_eq(found, r));
    atomic_store(&refuse_destroy, 0);
    cr_assert_eq(xo_destroy(r), 0);
    cr_assert_eq(xo_lookup(rt, "contested", &found), XO_ENOTEXIST);
    stop_runtime(rt);
}

Test(actor_kinds, concurrent_destroys_of_a_refusing_actor_all_return_and_it_survives)
{
    destroy_race(&refusing_def);
}

Test(actor_kinds, concurrent_destroys_of_a_refusing_stateless_actor_all_return)
{
    destroy_race(&refusing_stateless_def);
}
