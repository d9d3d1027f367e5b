/*
 * Stop loses nothing: every message accepted before it is counted_messages, every
 * live actor's on_destroy runs once, sends and spawns during it fail with
 * XO_ECLOSED, and actors that message each other forever still stop.
 */
#include "support.h"

enum { PING = 1 };

/* Counting through support.h's counting actor. */
static atomic_long closed_seen;

Test(stop, stop_handles_every_accepted_message_and_destroys_every_actor)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t r[8];
    for (int i = 0; i < 8; i++)
        cr_assert_eq(xo_spawn(rt, &counting_def, NULL, &r[i]), 0);
    for (int n = 0; n < 100000; n++)
        cr_assert_eq(xo_tell(r[n % 8], PING, &n, sizeof(n)), 0);
    stop_runtime(rt); /* right away: most messages are still queued */
    cr_assert_eq(atomic_load(&counted_messages), 100000);
    cr_assert_eq(atomic_load(&counted_destroys), 8);
}

/* Senders racing with stop: what was accepted was counted_messages, and once stop
   began every send fails with XO_ECLOSED. */
struct sender {
    xo_ref_t to;
    atomic_long accepted;
    long closed;
    long other;
};

static void *keep_sending(void *arg)
{
    struct sender *s = arg;
    while (s->closed < 1000) {
        int rc = xo_tell(s->to, PING, NULL, 0);
        if (rc == 0 && s->closed == 0)
            atomic_fetch_add(&s->accepted, 1);
        else if (rc == XO_ECLOSED)
            s->closed++; /* stop began: it must stay closed */
        else
            s->other++;  /* another error, or accepted after a refusal */
    }
    return NULL;
}

Test(stop, sends_racing_with_stop_are_either_handled_or_refused_with_eclosed)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &counting_def, NULL, &r), 0);
    struct sender s[2] = { { .to = r }, { .to = r } };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, keep_sending, &s[i]);
    while (atomic_load(&s[0].accepted) < 1000)
        sleep_ms(1);
    cr_assert_eq(xo_runtime_stop(rt), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    xo_runtime_free(rt);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(s[i].other, 0, "only success or XO_ECLOSED");
        cr_assert_eq(s[i].closed, 1000);
    }
    cr_assert_eq(atomic_load(&counted_messages),
                 atomic_load(&s[0].accepted) + atomic_load(&s[1].accepted),
                 "every accepted message was counted_messages");
}

/* Two actors that bounce a message forever: a message carrying a ref is a
   serve (tell that actor); any other is answered to its sender. */
static int bounce_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    (void)ctx;
    atomic_fetch_add(&counted_messages, 1);
    xo_ref_t to = m->sender;
    if (m->size == sizeof(xo_ref_t))
        to = *(const xo_ref_t *)m->data;
    int rc = xo_tell(to, PING, NULL, 0);
    if (rc == XO_ECLOSED)
        atomic_fetch_add(&closed_seen, 1);
    return rc;
}

static int bounce_destroy(xo_ctx_t *ctx, void *state)
{
    (void)state;
    xo_ref_t other;
    /* During stop nothing can be spawned or sent. */
    if (xo_spawn(xo_ctx_runtime(ctx), &counting_def, NULL, &other) ==
        XO_ECLOSED)
        atomic_fetch_add(&counted_destroys, 1);
    return 0;
}

static const xo_actor_def_t bounce_def = {
    .name = "bounce", .on_message = bounce_message,
    .on_destroy = bounce_destroy,
};

Test(stop, actors_messaging_each_other_forever_still_stop)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    xo_ref_t a, b;
    opts.pool = 0;
    cr_assert_eq(xo_spawn(rt, &bounce_def, &opts, &a), 0);
    opts.pool = 1;
    cr_assert_eq(xo_spawn(rt, &bounce_def, &opts, &b), 0);
    cr_assert_eq(xo_tell(a, PING, &b, sizeof(b)), 0); /* a serves to b */
    while (atomic_load(&counted_messages) < 10000)
        sleep_ms(1);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&closed_seen), 1,
                 "the rally ended on exactly one XO_ECLOSED");
    cr_assert_eq(atomic_load(&counted_destroys), 2,
                 "both ran on_destroy, where spawning gave XO_ECLOSED");
}

static int stop_from_handler_message(xo_ctx_t *ctx, void *state,
                                     const xo_msg_t *m)
{
    (void)state;
    (void)m;
    if (xo_runtime_stop(xo_ctx_runtime(ctx)) == XO_EINVAL)
        atomic_fetch_add(&closed_seen, 1);
    /* Freeing the runtime under its own worker is refused as well, and
       leaves it running. */
    if (xo_runtime_free(xo_ctx_runtime(ctx)) == XO_EINVAL &&
        xo_ref_alive(xo_self(ctx)))
        atomic_fetch_add(&closed_seen, 1);
    atomic_fetch_add(&counted_messages, 1);
    return 0;
}

static const xo_actor_def_t stopper_def = {
    .name = "stopper", .on_message = stop_from_handler_message,
};

Test(stop, stop_or_free_from_a_handler_is_refused_and_a_second_stop_is_eclosed)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &stopper_def, NULL, &r), 0);
    cr_assert_eq(xo_tell(r, PING, NULL, 0), 0);
    while (atomic_load(&counted_messages) == 0) /* the handler ran and is done */
        sleep_ms(1);
    cr_assert_eq(xo_runtime_stop(rt), 0);
    cr_assert_eq(atomic_load(&closed_seen), 2,
                 "stop and free: EINVAL inside a handler");
    cr_assert_eq(xo_runtime_stop(rt), XO_ECLOSED);
    cr_assert_eq(xo_tell(r, PING, NULL, 0), XO_ECLOSED);
    xo_ref_t other;
    cr_assert_eq(xo_spawn(rt, &counting_def, NULL, &other), XO_ECLOSED);
    cr_assert_eq(xo_lookup(rt, "any", &other), XO_ECLOSED);
    cr_assert_eq(xo_destroy(r), XO_ECLOSED);
    xo_runtime_free(rt);
    cr_assert_eq(atomic_load(&counted_messages), 1);
}

Test(stop, free_without_stop_still_drains_and_destroys)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &counting_def, NULL, &r), 0);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(xo_tell(r, PING, NULL, 0), 0);
    xo_runtime_free(rt);
    cr_assert_eq(atomic_load(&counted_messages), 1000);
    cr_assert_eq(atomic_load(&counted_destroys), 1);
}

/* ---- stop racing with other threads ----------------------------------- */

static atomic_int slow_done;

static int slow_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    sleep_ms(50);
    atomic_store(&slow_done, 1);
    return 0;
}

static const xo_actor_def_t slow_def = {
    .name = "slow", .on_message = slow_message,
};

static void *second_stopper(void *arg)
{
    xo_runtime_t *rt = arg;
    int rc = xo_runtime_stop(rt);
    /* It returns only once the first stop finished: the handler ran. */
    if (rc == XO_ECLOSED && atomic_load(&slow_done) == 1)
        atomic_fetch_add(&closed_seen, 1);
    return NULL;
}

Test(stop, a_second_stop_returns_eclosed_only_after_the_first_finished)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &slow_def, NULL, &r), 0);
    cr_assert_eq(xo_tell(r, PING, NULL, 0), 0);
    pthread_t t;
    /* This thread stops first; the helper's stop races with it. Either
       order is fine: exactly one gets 0, the other ECLOSED afterwards. */
    pthread_create(&t, NULL, second_stopper, rt);
    int rc = xo_runtime_stop(rt);
    pthread_join(t, NULL);
    if (rc == XO_ECLOSED)
        cr_assert_eq(atomic_load(&slow_done), 1);
    else
        cr_assert_eq(rc, 0);
    xo_runtime_free(rt); /* safe: both stops are over */
    cr_assert_eq(atomic_load(&slow_done), 1);
    cr_assert_leq(atomic_load(&closed_seen), 1);
}

struct churn {
    xo_runtime_t *rt;
    long spawned, refused, other;
};

static void *spawn_churn(void *arg)
{
    struct churn *c = arg;
    for (;;) {
        xo_ref_t r;
        int rc = xo_spawn(c->rt, &counting_def, NULL, &r);
        if (rc == XO_ECLOSED) {
            c->refused++;
            return NULL;
        }
        if (rc != 0) {
            c->other++;
            return NULL;
        }
        c->spawned++;
        rc = xo_destroy(r);
        if (rc != 0 && rc != XO_ECLOSED && rc != XO_ENOTEXIST)
            c->other++;
    }
}

Test(stop, spawns_and_destroys_racing_with_stop_fail_cleanly_with_eclosed)
{
    for (int round = 0; round < 20; round++) {
        xo_runtime_t *rt = start_runtime(2);
        struct churn c[3] = { { .rt = rt }, { .rt = rt }, { .rt = rt } };
        pthread_t t[3];
        for (int i = 0; i < 3; i++)
            pthread_create(&t[i], NULL, spawn_churn, &c[i]);
        sleep_ms(2);
        cr_assert_eq(xo_runtime_stop(rt), 0);
        for (int i = 0; i < 3; i++) {
            pthread_join(t[i], NULL);
            cr_assert_eq(c[i].other, 0, "only success or XO_ECLOSED");
            cr_assert_eq(c[i].refused, 1);
        }
        xo_runtime_free(rt); /* the spawners are joined: nobody left */
    }
}
