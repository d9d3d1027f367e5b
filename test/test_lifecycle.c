/*
 * Actor lifetime: spawning from handlers, sending to self, chains, many
 * actors at once, destroy ordering, ref safety after slot and uid reuse,
 * uid uniqueness, and on_create failure.
 */
#include "support.h"

#include <stdio.h>
#include <string.h>

enum { PING = 1, SPAWN_CHILD = 2, FORWARD = 3 };

static atomic_long handled, destroyed, created;
static struct latch done;

/* ---- spawn from a handler; on_create sends to itself --------------------- */

static int child_create(xo_ctx_t *ctx, void *state, const void *arg,
                        size_t size)
{
    (void)state;
    (void)arg;
    (void)size;
    atomic_fetch_add(&created, 1);
    return xo_tell(xo_self(ctx), PING, "self", 4);
}

static int child_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    cr_assert_eq(m->tag, PING);
    cr_assert(xo_ref_eq(m->sender, xo_self(ctx)), "it came from itself");
    atomic_fetch_add(&handled, 1);
    latch_count_down(&done);
    return 0;
}

static const xo_actor_def_t child_def = {
    .name = "child", .on_create = child_create, .on_message = child_message,
};

static int parent_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    (void)m;
    xo_ref_t child;
    int rc = xo_spawn(xo_ctx_runtime(ctx), &child_def, NULL, &child);
    return rc;
}

static const xo_actor_def_t parent_def = {
    .name = "parent", .on_message = parent_message,
};

Test(lifecycle, handler_spawns_child_whose_on_create_sends_to_itself)
{
    xo_runtime_t *rt = start_runtime(2);
    latch_init(&done, 10);
    xo_ref_t parent;
    cr_assert_eq(xo_spawn(rt, &parent_def, NULL, &parent), 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(xo_tell(parent, SPAWN_CHILD, NULL, 0), 0);
    latch_wait(&done);
    cr_assert_eq(atomic_load(&created), 10);
    cr_assert_eq(atomic_load(&handled), 10);
    stop_runtime(rt);
}

/* ---- a chain of actors ----------------------------------------------------- */

#define CHAIN 200
#define LAPS 1000

struct link {
    xo_ref_t next; /* none for the last */
    uint64_t seen;
};

static int link_create(xo_ctx_t *ctx, void *state, const void *arg,
                       size_t size)
{
    struct link *l = state;
    (void)ctx;
    l->next = size ? *(const xo_ref_t *)arg : XO_REF_NONE;
    return 0;
}

static int link_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct link *l = state;
    (void)ctx;
    l->seen++;
    if (!xo_ref_is_none(l->next))
        return xo_tell(l->next, FORWARD, m->data, m->size);
    atomic_fetch_add(&handled, 1);
    latch_count_down(&done);
    return 0;
}

static int link_destroy(xo_ctx_t *ctx, void *state)
{
    struct link *l = state;
    (void)ctx;
    if (l->seen == LAPS)
        atomic_fetch_add(&destroyed, 1);
    return 0;
}

static const xo_actor_def_t link_def = {
    .name = "link", .state_size = sizeof(struct link),
    .on_create = link_create, .on_message = link_message,
    .on_destroy = link_destroy,
};

Test(lifecycle, chain_of_actors_forwards_every_message_to_the_end)
{
    xo_runtime_t *rt = start_runtime(2);
    latch_init(&done, LAPS);
    xo_ref_t next = XO_REF_NONE;
    xo_spawn_opts_t opts;
    for (int i = 0; i < CHAIN; i++) {
        xo_spawn_opts_init(&opts);
        if (i > 0) {
            opts.arg = &next;
            opts.arg_size = sizeof(next);
        }
        cr_assert_eq(xo_spawn(rt, &link_def, &opts, &next), 0);
    }
    for (int i = 0; i < LAPS; i++)
        cr_assert_eq(xo_tell(next, FORWARD, &i, sizeof(i)), 0);
    latch_wait(&done);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&destroyed), CHAIN,
                 "every link saw every message and was destroyed once");
}

/* ---- many actors alive at once --------------------------------------------- */

#define MANY 20000

static int count_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)m;
    (*(int *)state)++;
    atomic_fetch_add(&handled, 1);
    return 0;
}

static int count_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    if (*(int *)state == 2)
        atomic_fetch_add(&destroyed, 1);
    return 0;
}

static const xo_actor_def_t counter_def = {
    .name = "counter", .state_size = sizeof(int),
    .on_message = count_message, .on_destroy = count_destroy,
};

Test(lifecycle, twenty_thousand_actors_alive_at_once_each_get_their_messages)
{
    xo_runtime_t *rt = start_runtime(2);
    static xo_ref_t refs[MANY];
    for (int i = 0; i < MANY; i++)
        cr_assert_eq(xo_spawn(rt, &counter_def, NULL, &refs[i]), 0);
    xo_pool_info_t p0, p1;
    cr_assert_eq(xo_pool_info(rt, 0, &p0), 0);
    cr_assert_eq(xo_pool_info(rt, 1, &p1), 0);
    cr_assert_eq(p0.actors + p1.actors, MANY);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < MANY; i++)
            cr_assert_eq(xo_tell(refs[i], PING, NULL, 0), 0);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&handled), 2 * MANY);
    cr_assert_eq(atomic_load(&destroyed), MANY);
}

/* ---- destroy ordering ------------------------------------------------------ */

struct recorder {
    int handled;
};

static struct {
    int handled_at_destroy;
    int destroy_calls;
} rec;

static int recorder_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)m;
    ((struct recorder *)state)->handled++;
    atomic_fetch_add(&handled, 1);
    return 0;
}

static int recorder_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    rec.handled_at_destroy = ((struct recorder *)state)->handled;
    rec.destroy_calls++;
    latch_count_down(&done);
    return 0;
}

static const xo_actor_def_t recorder_def = {
    .name = "recorder", .state_size = sizeof(struct recorder),
    .on_message = recorder_message, .on_destroy = recorder_destroy,
};

Test(lifecycle, destroy_handles_queued_messages_then_on_destroy_once_then_enotexist)
{
    xo_runtime_t *rt = start_runtime(2);
    latch_init(&done, 1);
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &recorder_def, NULL, &r), 0);
    for (int i = 0; i < 5000; i++)
        cr_assert_eq(xo_tell(r, PING, &i, sizeof(i)), 0);
    cr_assert_eq(xo_destroy(r), 0);
    cr_assert_eq(xo_tell(r, PING, NULL, 0), XO_ENOTEXIST);
    cr_assert_not(xo_ref_alive(r));
    cr_assert_eq(xo_destroy(r), XO_ENOTEXIST, "destroy twice");
    latch_wait(&done);
    cr_assert_eq(rec.handled_at_destroy, 5000,
                 "every accepted message handled before on_destroy");
    stop_runtime(rt);
    cr_assert_eq(rec.destroy_calls, 1, "stop did not run it again");
}

static int self_destroy_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    (void)m;
    atomic_fetch_add(&handled, 1);
    return xo_destroy(xo_self(ctx));
}

static int self_destroy_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    (void)state;
    atomic_fetch_add(&destroyed, 1);
    latch_count_down(&done);
    return 0;
}

static const xo_actor_def_t self_destroy_def = {
    .name = "self-destroy", .on_message = self_destroy_message,
    .on_destroy = self_destroy_destroy,
};

Test(lifecycle, actor_destroys_itself_from_its_handler)
{
    xo_runtime_t *rt = start_runtime(1);
    latch_init(&done, 1);
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &self_destroy_def, NULL, &r), 0);
    cr_assert_eq(xo_tell(r, PING, NULL, 0), 0);
    latch_wait(&done);
    cr_assert_eq(xo_tell(r, PING, NULL, 0), XO_ENOTEXIST);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&destroyed), 1);
    cr_assert_eq(atomic_load(&handled), 1);
}

/* ---- stale refs ------------------------------------------------------------ */

Test(lifecycle, stale_ref_never_reaches_the_new_actor_in_a_reused_slot)
{
    xo_runtime_t *rt = start_runtime(1);
    latch_init(&done, 1);
    xo_ref_t old;
    cr_assert_eq(xo_spawn(rt, &recorder_def, NULL, &old), 0);
    cr_assert_eq(xo_destroy(old), 0);
    latch_wait(&done); /* on_destroy ran: the slot is being handed back */
    /* Spawn until the slot comes back (the free list is LIFO, so this is
       immediate once the reclaim finished). */
    xo_ref_t fresh = XO_REF_NONE;
    for (int tries = 0; tries < 10000; tries++) {
        cr_assert_eq(xo_spawn(rt, &counter_def, NULL, &fresh), 0);
        if ((uint32_t)fresh.id == (uint32_t)old.id)
            break;
        cr_assert_eq(xo_destroy(fresh), 0);
        sleep_ms(1);
    }
    cr_assert_eq((uint32_t)fresh.id, (uint32_t)old.id, "slot was reused");
    cr_assert_neq(fresh.id, old.id, "with a new generation");
    cr_assert_eq(xo_tell(old, PING, NULL, 0), XO_ENOTEXIST);
    cr_assert_eq(xo_destroy(old), XO_ENOTEXIST);
    cr_assert_not(xo_ref_alive(old));
    cr_assert(xo_ref_alive(fresh));
    xo_actor_stats_t st;
    cr_assert_eq(xo_actor_stats(old, &st), XO_ENOTEXIST);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&handled), 0,
                 "nothing sent through the stale ref was handled");
}

/* ---- uids ------------------------------------------------------------------ */

Test(lifecycle, uid_is_unique_resolves_and_is_free_again_after_destroy)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.uid = "supervisor/main";
    xo_ref_t a, b, found;
    cr_assert_eq(xo_spawn(rt, &counter_def, &opts, &a), 0);
    cr_assert_eq(xo_spawn(rt, &counter_def, &opts, &b), XO_EEXIST);
    cr_assert_eq(xo_lookup(rt, "supervisor/main", &found), 0);
    cr_assert(xo_ref_eq(found, a));
    cr_assert_eq(xo_lookup(rt, "supervisor/other", &found), XO_ENOTEXIST);

    cr_assert_eq(xo_destroy(a), 0);
    cr_assert_eq(xo_lookup(rt, "supervisor/main", &found), XO_ENOTEXIST);
    cr_assert_eq(xo_spawn(rt, &counter_def, &opts, &b), 0,
                 "the uid is free as soon as destroy returned");
    cr_assert_neq(a.id, b.id);
    cr_assert_eq(xo_tell(a, PING, NULL, 0), XO_ENOTEXIST,
                 "the old ref does not reach the new owner of the uid");
    cr_assert_eq(xo_lookup(rt, "supervisor/main", &found), 0);
    cr_assert(xo_ref_eq(found, b));
    cr_assert_eq(xo_tell(found, PING, NULL, 0), 0);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&handled), 1);
}

struct race_args {
    xo_runtime_t *rt;
    pthread_barrier_t *start;
    int wins, exists;
};

static void *uid_racer(void *arg)
{
    struct race_args *a = arg;
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    char uid[32];
    for (int i = 0; i < 200; i++) {
        snprintf(uid, sizeof(uid), "race-%d", i);
        opts.uid = uid;
        pthread_barrier_wait(a->start);
        xo_ref_t r;
        int rc = xo_spawn(a->rt, &counter_def, &opts, &r);
        if (rc == 0)
            a->wins++;
        else if (rc == XO_EEXIST)
            a->exists++;
    }
    return NULL;
}

Test(lifecycle, two_threads_racing_for_one_uid_get_exactly_one_winner)
{
    xo_runtime_t *rt = start_runtime(2);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    struct race_args a[2] = { { rt, &start, 0, 0 }, { rt, &start, 0, 0 } };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, uid_racer, &a[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(a[0].wins + a[1].wins, 200, "one winner per uid");
    cr_assert_eq(a[0].exists + a[1].exists, 200, "one EEXIST per uid");
    pthread_barrier_destroy(&start);
    stop_runtime(rt);
}

/* ---- uid visibility during on_create -------------------------------------- */

static atomic_int lookup_during_create;

static int peek_create(xo_ctx_t *ctx, void *state, const void *arg,
                       size_t size)
{
    (void)state;
    (void)arg;
    (void)size;
    xo_ref_t found;
    atomic_store(&lookup_during_create,
                 xo_lookup(xo_ctx_runtime(ctx), "shy", &found));
    return 0;
}

static const xo_actor_def_t peek_def = {
    .name = "peek", .on_create = peek_create,
};

Test(lifecycle, uid_is_found_only_once_on_create_succeeded)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.uid = "shy";
    xo_ref_t r, found;
    cr_assert_eq(xo_spawn(rt, &peek_def, &opts, &r), 0);
    cr_assert_eq(atomic_load(&lookup_during_create), XO_ENOTEXIST,
                 "reserved but not visible while on_create runs");
    cr_assert_eq(xo_lookup(rt, "shy", &found), 0);
    cr_assert(xo_ref_eq(found, r));
    stop_runtime(rt);
}

/* ---- on_create failure ----------------------------------------------------- */

static int failing_create(xo_ctx_t *ctx, void *state, const void *arg,
                          size_t size)
{
    (void)state;
    (void)arg;
    (void)size;
    atomic_fetch_add(&created, 1);
    (void)xo_tell(xo_self(ctx), PING, NULL, 0); /* dropped with the actor */
    return XO_EINVAL;
}

static const xo_actor_def_t failing_def = {
    .name = "failing", .on_create = failing_create,
    .on_message = count_message, .on_destroy = self_destroy_destroy,
};

Test(lifecycle, failed_on_create_leaves_no_actor_and_frees_the_uid)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.uid = "fragile";
    xo_ref_t r = XO_REF_NONE, found;
    cr_assert_eq(xo_spawn(rt, &failing_def, &opts, &r), XO_EINVAL,
                 "on_create's error is spawn's error");
    cr_assert(xo_ref_is_none(r), "no ref handed out");
    cr_assert_eq(xo_lookup(rt, "fragile", &found), XO_ENOTEXIST);
    cr_assert_eq(xo_spawn(rt, &counter_def, &opts, &r), 0, "uid is free");
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&created), 1);
    cr_assert_eq(atomic_load(&handled), 0, "its self-message was dropped");
    cr_assert_eq(atomic_load(&destroyed), 0, "on_destroy did not run");
}

/* ---- destroy and pool removal wait for their own actors only ---------- */

/* A handler on pool 1 holds its worker until the test lets it go, which it
   does only once the destroy (of an idle actor on pool 0) and the removal
   of pool 2 have returned: had either waited for every running handler of
   the process, it would never return. */
static atomic_int holder_started;
static struct latch holder_release;

static int holder_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    atomic_store(&holder_started, 1);
    latch_wait(&holder_release);
    return 0;
}

static const xo_actor_def_t holder_def = {
    .name = "holder", .on_message = holder_message,
};

Test(lifecycle, destroy_and_pool_removal_do_not_wait_for_a_handler_elsewhere)
{
    xo_runtime_t *rt = start_runtime(3);
    latch_init(&holder_release, 1);
    latch_init(&done, 1);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.pool = 1;
    xo_ref_t holder, idle, leaving;
    cr_assert_eq(xo_spawn(rt, &holder_def, &opts, &holder), 0);
    opts.pool = 0;
    cr_assert_eq(xo_spawn(rt, &recorder_def, &opts, &idle), 0);
    opts.pool = 2;
    cr_assert_eq(xo_spawn(rt, &self_destroy_def, &opts, &leaving), 0);
    cr_assert_eq(xo_tell(holder, PING, NULL, 0), 0);
    while (!atomic_load(&holder_started))
        sleep_ms(1);
    cr_assert_eq(xo_destroy(idle), 0);
    cr_assert_eq(rec.destroy_calls, 1, "its on_destroy ran before it returned");
    cr_assert_eq(xo_pool_remove(rt, 2), 0);
    cr_assert_eq(atomic_load(&destroyed), 1, "the pool's actor went with it");
    cr_assert_not(xo_ref_alive(leaving));
    latch_count_down(&holder_release);
    stop_runtime(rt);
}
