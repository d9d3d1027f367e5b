/*
 * Blocking waits in handlers: every wait that could never end fails with
 * XO_EDEADLK instead of hanging, wherever its cycle runs (across pools,
 * through yields, through a destroy, through on_create, through a stream),
 * waits nested past XO_MAX_NESTED_WAITS fail with XO_EDEPTH, and a storm of
 * floods and blocking calls over two pools makes progress to the end.
 * A hang here is a failure (ctest's timeout).
 */
#include "support.h"

#include <stdlib.h>
#include <string.h>

enum { GO = 1, CALL_ME, ITEM, STREAM, READ, DESTROY_SENDER, CHAIN };

static xo_runtime_t *start_with(unsigned pools, unsigned yield_sends)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = pools;
    cfg.spin_ns = 5000;
    cfg.yield_sends = yield_sends;
    xo_runtime_t *rt = NULL;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), 0);
    return rt;
}

/* A blocking call that gives up cleanly on XO_EDEADLK: the call is
   cancelled (it may still run later; its answer is dropped). */
static int call_and_wait(xo_ref_t to, uint32_t tag)
{
    xo_future_t *f;
    int rc = xo_call(to, tag, NULL, 0, &f);
    if (rc != 0)
        return rc;
    rc = xo_future_wait(f, -1);
    if (rc == 0)
        rc = xo_future_result(f, 0, &(xo_result_t){ 0 });
    else
        xo_future_cancel(f);
    xo_future_release(f);
    return rc;
}

/* ---- a cycle across two pools, through the producers' yields ---------- */

/* Producer i floods its pool-mate consumer i; the flood yields, so the
   consumer's turn runs nested inside the producer's. Consumer i's first
   message makes a blocking call to the other pool's producer, which is
   itself held below the other consumer, which waits on producer i. */
static xo_ref_t producers[2], consumers[2];
static atomic_int consumer_rc[2], consumers_done, producers_in,
    producers_done;
static unsigned flood;

static int producer_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    if (m->tag == GO) {
        int i = *(const int *)m->data;
        /* Both producers are in their turns before either floods: a
           consumer's call can then only be answered once the other
           producer's turn, and the consumer nested in it, have ended. */
        atomic_fetch_add(&producers_in, 1);
        while (atomic_load(&producers_in) < 2)
            sleep_ms(1);
        for (unsigned k = 0; k < flood; k++)
            cr_assert_eq(xo_tell(consumers[i], ITEM, &i, sizeof(i)), 0);
        atomic_fetch_add(&producers_done, 1);
    }
    return 0; /* CALL_ME: an empty reply */
}

static int consumer_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    int *seen = state;
    if (m->tag == ITEM && (*seen)++ == 0) {
        int i = *(const int *)m->data;
        atomic_store(&consumer_rc[i], call_and_wait(producers[1 - i], CALL_ME));
        atomic_fetch_add(&consumers_done, 1);
    }
    return 0;
}

static const xo_actor_def_t producer_def = {
    .name = "producer", .on_message = producer_message,
};
static const xo_actor_def_t consumer_def = {
    .name = "consumer", .state_size = sizeof(int),
    .on_message = consumer_message,
};

static void cross_pool_yield_cycle(unsigned yield_sends, unsigned tells)
{
    xo_runtime_t *rt = start_with(2, yield_sends);
    flood = tells;
    atomic_store(&consumers_done, 0);
    atomic_store(&producers_in, 0);
    atomic_store(&producers_done, 0);
    for (int i = 0; i < 2; i++) {
        atomic_store(&consumer_rc[i], 1);
        producers[i] = spawn_on(rt, &producer_def, i);
        consumers[i] = spawn_on(rt, &consumer_def, i);
    }
    for (int i = 0; i < 2; i++)
        cr_assert_eq(xo_tell(producers[i], GO, &i, sizeof(i)), 0);
    while (atomic_load(&consumers_done) < 2 ||
           atomic_load(&producers_done) < 2)
        sleep_ms(1);
    int a = atomic_load(&consumer_rc[0]), b = atomic_load(&consumer_rc[1]);
    cr_assert(a == XO_EDEADLK || b == XO_EDEADLK,
              "one of the two waits closes the cycle (got %d, %d)", a, b);
    cr_assert(a == 0 || a == XO_EDEADLK);
    cr_assert(b == 0 || b == XO_EDEADLK);
    stop_runtime(rt);
}

Test(waits, a_cycle_across_two_pools_through_yields_is_edeadlk_not_a_hang)
{
    cross_pool_yield_cycle(1, 3);
}

Test(waits, the_same_cycle_with_the_default_yield_after_300_tells)
{
    cross_pool_yield_cycle(256, 300);
}

/* ---- xo_stream_next inside a handler ----------------------------------- */

static atomic_int read_rc, parts_read, readers_done;

static int streamer_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    if (m->tag == STREAM) {
        for (int i = 0; i < 100; i++)
            cr_assert_eq(xo_reply_part(m->request, STREAM, &i, sizeof(i)), 0);
        return 0;
    }
    /* READ from itself: it is the producer of what it would wait for. */
    xo_future_t *f;
    cr_assert_eq(xo_call(xo_self(ctx), STREAM, NULL, 0, &f), 0);
    xo_result_t part;
    atomic_store(&read_rc, xo_stream_next(f, -1, &part));
    xo_future_cancel(f);
    xo_future_release(f);
    atomic_fetch_add(&readers_done, 1);
    return 0;
}

static xo_ref_t streamer;

static int reader_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    xo_future_t *f;
    cr_assert_eq(xo_call(streamer, STREAM, NULL, 0, &f), 0);
    xo_result_t part;
    int rc, expect = 0;
    while ((rc = xo_stream_next(f, -1, &part)) == 0) {
        cr_assert_eq(*(const int *)part.data, expect++, "parts in order");
        atomic_fetch_add(&parts_read, 1);
    }
    atomic_store(&read_rc, rc);
    xo_future_release(f);
    atomic_fetch_add(&readers_done, 1);
    return 0;
}

static const xo_actor_def_t streamer_def = {
    .name = "streamer", .on_message = streamer_message,
};
static const xo_actor_def_t reader_def = {
    .name = "reader", .on_message = reader_message,
};

Test(waits, stream_next_in_a_handler_lends_the_worker_to_its_pool_mate)
{
    xo_runtime_t *rt = start_with(1, 256);
    streamer = spawn_on(rt, &streamer_def, 0);
    xo_ref_t reader = spawn_on(rt, &reader_def, 0);
    cr_assert_eq(xo_tell(reader, READ, NULL, 0), 0);
    while (atomic_load(&readers_done) == 0)
        sleep_ms(1);
    cr_assert_eq(atomic_load(&parts_read), 100,
                 "the producer ran on the reader's worker meanwhile");
    cr_assert_eq(atomic_load(&read_rc), XO_EEOF);
    stop_runtime(rt);
}

Test(waits, stream_next_on_a_stream_of_its_own_is_edeadlk)
{
    xo_runtime_t *rt = start_with(1, 256);
    xo_ref_t s = spawn_on(rt, &streamer_def, 0);
    cr_assert_eq(xo_tell(s, READ, NULL, 0), 0);
    while (atomic_load(&readers_done) == 0)
        sleep_ms(1);
    cr_assert_eq(atomic_load(&read_rc), XO_EDEADLK);
    stop_runtime(rt);
}

/* ---- a storm of floods and blocking calls over two pools --------------- */

#define STORM_ACTORS 64

static xo_ref_t storm[STORM_ACTORS];
static atomic_long storm_handled, storm_calls, storm_bad, storm_inflight;
static unsigned storm_tells;

static unsigned storm_pick(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 8) % STORM_ACTORS;
}

struct storm_state {
    unsigned seed;
    unsigned handled;
};

static int storm_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    struct storm_state *s = state;
    if (s->seed == 0)
        s->seed = (unsigned)(uintptr_t)s | 1u;
    if (m->tag == GO) {
        for (unsigned i = 0; i < storm_tells; i++)
            cr_assert_eq(xo_tell(storm[storm_pick(&s->seed)], ITEM, NULL, 0),
                         0);
        return 0;
    }
    if (m->tag == CALL_ME)
        return 0;
    if (++s->handled % 16 == 0) {
        atomic_fetch_add(&storm_inflight, 1);
        int rc = call_and_wait(storm[storm_pick(&s->seed)], CALL_ME);
        atomic_fetch_add(&storm_calls, 1);
        atomic_fetch_sub(&storm_inflight, 1);
        if (rc != 0 && rc != XO_EDEADLK && rc != XO_EDEPTH)
            atomic_fetch_add(&storm_bad, 1);
    }
    atomic_fetch_add(&storm_handled, 1); /* after its call, if any */
    return 0;
}

static const xo_actor_def_t storm_def = {
    .name = "storm", .state_size = sizeof(struct storm_state),
    .on_message = storm_message,
};

/* Every message is handled and every call answered or refused: no wait
   is left hanging on a cycle through the workers' stacks. */
static void run_storm(unsigned yield_sends)
{
    xo_runtime_t *rt = start_with(2, yield_sends);
    storm_tells = 1000;
    atomic_store(&storm_handled, 0);
    atomic_store(&storm_calls, 0);
    atomic_store(&storm_bad, 0);
    for (int i = 0; i < STORM_ACTORS; i++)
        storm[i] = spawn_on(rt, &storm_def, i % 2);
    for (int i = 0; i < STORM_ACTORS; i++)
        cr_assert_eq(xo_tell(storm[i], GO, NULL, 0), 0);
    const long total = (long)STORM_ACTORS * storm_tells;
    while (atomic_load(&storm_handled) < total)
        sleep_ms(1);
    cr_assert_eq(atomic_load(&storm_inflight), 0);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&storm_handled), total);
    cr_assert_geq(atomic_load(&storm_calls), total / 16 - STORM_ACTORS,
                  "every 16th message of each actor made its call");
    cr_assert_eq(atomic_load(&storm_bad), 0,
                 "every call was answered, or refused as a cycle");
}

Test(waits, a_storm_of_floods_and_blocking_calls_over_two_pools_completes)
{
    run_storm(1);
}

Test(waits, the_same_storm_without_yielding_completes)
{
    run_storm(0);
}

/* ---- on_create waiting ------------------------------------------------- */

static atomic_int create_rc = 1;

static int self_caller_create(xo_ctx_t *ctx, void *state, const void *arg,
                              size_t size)
{
    (void)state;
    (void)arg;
    (void)size;
    /* Its own mailbox is not served before on_create returns. */
    atomic_store(&create_rc, call_and_wait(xo_self(ctx), CALL_ME));
    return 0;
}

static const xo_actor_def_t self_caller_def = {
    .name = "self-caller", .on_create = self_caller_create,
};

Test(waits, on_create_spawned_from_outside_waiting_on_itself_is_edeadlk)
{
    xo_runtime_t *rt = start_with(1, 256);
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &self_caller_def, NULL, &r), 0);
    cr_assert_eq(atomic_load(&create_rc), XO_EDEADLK);
    stop_runtime(rt);
}

static xo_ref_t spawner_ref;

static int parent_caller_create(xo_ctx_t *ctx, void *state, const void *arg,
                                size_t size)
{
    (void)ctx;
    (void)state;
    (void)arg;
    (void)size;
    /* The spawner's turn is held below this on_create. */
    atomic_store(&create_rc, call_and_wait(spawner_ref, CALL_ME));
    return 0;
}

static const xo_actor_def_t parent_caller_def = {
    .name = "parent-caller", .on_create = parent_caller_create,
};

static atomic_int spawned;

static int spawner_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    if (m->tag == GO) {
        xo_ref_t child;
        if (xo_spawn(xo_ctx_runtime(ctx), &parent_caller_def, NULL,
                     &child) == 0)
            atomic_store(&spawned, 1);
    }
    return 0;
}

static const xo_actor_def_t spawner_def = {
    .name = "spawner", .on_message = spawner_message,
};

Test(waits, on_create_run_by_a_handler_waiting_on_its_spawner_is_edeadlk)
{
    xo_runtime_t *rt = start_with(2, 256);
    spawner_ref = spawn_on(rt, &spawner_def, 0);
    cr_assert_eq(xo_tell(spawner_ref, GO, NULL, 0), 0);
    while (!atomic_load(&spawned))
        sleep_ms(1);
    cr_assert_eq(atomic_load(&create_rc), XO_EDEADLK);
    stop_runtime(rt);
}

/* ---- a cycle through xo_destroy ----------------------------------------- */

/* A calls B, then waits on the call; B's handler destroys A, which cannot
   end before A's turn (waiting on B) does. Whichever waits second sees
   the cycle: A's wait or B's destroy gets XO_EDEADLK, and both end. */
static atomic_int b_destroying, a_wait_rc, b_destroy_rc, rounds_done;
static xo_ref_t destroyer_b;

static int victim_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    if (m->tag != GO)
        return 0;
    unsigned delay_ms = *(const unsigned *)m->data;
    xo_future_t *f;
    cr_assert_eq(xo_call(destroyer_b, DESTROY_SENDER, NULL, 0, &f), 0);
    while (!atomic_load(&b_destroying))
        sleep_ms(1);
    sleep_ms(delay_ms); /* most rounds: wait after B's destroy waits */
    int rc = xo_future_wait(f, -1);
    if (rc != 0)
        xo_future_cancel(f);
    xo_future_release(f);
    atomic_store(&a_wait_rc, rc);
    return 0;
}

static int destroyer_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    atomic_store(&b_destroying, 1);
    atomic_store(&b_destroy_rc, xo_destroy(m->sender));
    atomic_fetch_add(&rounds_done, 1);
    return 0;
}

static const xo_actor_def_t victim_def = {
    .name = "victim", .on_message = victim_message,
};
static const xo_actor_def_t destroyer_def = {
    .name = "destroyer", .on_message = destroyer_message,
};

Test(waits, a_cycle_through_xo_destroy_is_edeadlk_and_both_waits_end)
{
    xo_runtime_t *rt = start_with(2, 256);
    destroyer_b = spawn_on(rt, &destroyer_def, 1);
    for (unsigned round = 0; round < 8; round++) {
        atomic_store(&b_destroying, 0);
        atomic_store(&a_wait_rc, 1);
        atomic_store(&b_destroy_rc, 1);
        xo_ref_t a = spawn_on(rt, &victim_def, 0);
        unsigned delay_ms = round % 4 == 0 ? 0 : 20;
        cr_assert_eq(xo_tell(a, GO, &delay_ms, sizeof(delay_ms)), 0);
        while (atomic_load(&rounds_done) <= (int)round ||
               atomic_load(&a_wait_rc) == 1)
            sleep_ms(1);
        int wa = atomic_load(&a_wait_rc), db = atomic_load(&b_destroy_rc);
        cr_assert(wa == XO_EDEADLK || db == XO_EDEADLK,
                  "round %u: A's wait %d, B's destroy %d", round, wa, db);
        cr_assert(wa == 0 || wa == XO_EDEADLK);
        cr_assert(db == 0 || db == XO_EDEADLK);
        while (xo_ref_alive(a))
            sleep_ms(1);
    }
    stop_runtime(rt);
}

/* ---- waits nested too deep ---------------------------------------------- */

/* Each link calls the next and waits: on one pool every wait nests on the
   same worker, so the chain is refused past XO_MAX_NESTED_WAITS, with its
   own code (it is not a cycle). */
#define CHAIN_LEN 200

static xo_ref_t chain[CHAIN_LEN];
static atomic_int deepest_rc, deepest_at = -1;

static int link_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    int i = *(const int *)m->data;
    if (i + 1 == CHAIN_LEN)
        return 0;
    int next = i + 1;
    xo_future_t *f;
    cr_assert_eq(xo_call(chain[next], CHAIN, &next, sizeof(next), &f), 0);
    int rc = xo_future_wait(f, -1);
    if (rc != 0) {
        int expected = -1;
        if (atomic_compare_exchange_strong(&deepest_at, &expected, i))
            atomic_store(&deepest_rc, rc);
        xo_future_cancel(f);
    } else {
        rc = xo_future_result(f, 0, &(xo_result_t){ 0 });
    }
    xo_future_release(f);
    return rc;
}

static const xo_actor_def_t link_def = {
    .name = "link", .on_message = link_message,
};

Test(waits, a_chain_of_blocking_calls_past_the_nesting_limit_is_edepth)
{
    xo_runtime_t *rt = start_with(1, 256);
    for (int i = 0; i < CHAIN_LEN; i++)
        chain[i] = spawn_on(rt, &link_def, 0);
    int first = 0;
    xo_future_t *f;
    cr_assert_eq(xo_call(chain[0], CHAIN, &first, sizeof(first), &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    cr_assert_eq(xo_future_result(f, 0, &(xo_result_t){ 0 }), XO_EDEPTH,
                 "the refusal travels back up the chain");
    xo_future_release(f);
    cr_assert_eq(atomic_load(&deepest_rc), XO_EDEPTH);
    cr_assert_eq(atomic_load(&deepest_at), XO_MAX_NESTED_WAITS,
                 "refused at the first wait past the limit");
    stop_runtime(rt);
}
