/*
 * Messaging: exactly-once, per-sender FIFO delivery under load from outside
 * threads and from actors at once; the zero-copy paths; sender identity.
 */
#include "support.h"

#include <stdlib.h>
#include <string.h>

enum { SEQ = 1, START = 2 };

#define MAX_SENDERS 8
#define PER_SENDER 500000

struct seq_msg {
    uint32_t sender;
    uint32_t pad;
    uint64_t seq;
};

/* What the receiver saw, copied out in on_destroy (the test reads it after
   xo_runtime_stop, which joins the workers). */
static struct {
    uint64_t next[MAX_SENDERS];
    uint64_t total, out_of_order, bad_size;
    int destroyed;
} seen;

struct receiver {
    uint64_t next[MAX_SENDERS];
    uint64_t total, out_of_order, bad_size;
};

static int receiver_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct receiver *r = state;
    (void)ctx;
    struct seq_msg s;
    if (m->tag != SEQ || m->size != sizeof(s)) {
        r->bad_size++;
        return 0;
    }
    memcpy(&s, m->data, sizeof(s));
    if (s.sender >= MAX_SENDERS || s.seq != r->next[s.sender])
        r->out_of_order++;
    else
        r->next[s.sender]++;
    r->total++;
    return 0;
}

static int receiver_destroy(xo_ctx_t *ctx, void *state)
{
    struct receiver *r = state;
    (void)ctx;
    memcpy(seen.next, r->next, sizeof(seen.next));
    seen.total = r->total;
    seen.out_of_order = r->out_of_order;
    seen.bad_size = r->bad_size;
    seen.destroyed++;
    return 0;
}

static const xo_actor_def_t receiver_def = {
    .name = "receiver",
    .state_size = sizeof(struct receiver),
    .on_message = receiver_message,
    .on_destroy = receiver_destroy,
};

/* An actor that, told START, sends PER_SENDER messages in one handler. */
struct producer {
    xo_ref_t target;
    uint32_t id;
};

struct producer_args {
    xo_ref_t target;
    uint32_t id;
};

static int producer_create(xo_ctx_t *ctx, void *state, const void *arg,
                           size_t size)
{
    struct producer *p = state;
    const struct producer_args *a = arg;
    (void)ctx;
    cr_assert_eq(size, sizeof(*a));
    p->target = a->target;
    p->id = a->id;
    return 0;
}

static struct latch producers_done;
static atomic_int producer_failures;

static int producer_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct producer *p = state;
    (void)ctx;
    (void)m;
    int rc = 0;
    for (uint64_t i = 0; i < PER_SENDER && rc == 0; i++) {
        struct seq_msg s = { p->id, 0, i };
        rc = xo_tell(p->target, SEQ, &s, sizeof(s));
    }
    if (rc != 0)
        atomic_fetch_add(&producer_failures, 1);
    latch_count_down(&producers_done);
    return rc;
}

static const xo_actor_def_t producer_def = {
    .name = "producer",
    .state_size = sizeof(struct producer),
    .on_create = producer_create,
    .on_message = producer_message,
};

struct thread_args {
    xo_ref_t target;
    uint32_t id;
    int failures;
};

static void *outside_sender(void *arg)
{
    struct thread_args *a = arg;
    for (uint64_t i = 0; i < PER_SENDER; i++) {
        struct seq_msg s = { a->id, 0, i };
        if (xo_tell(a->target, SEQ, &s, sizeof(s)) != 0)
            a->failures++;
    }
    return NULL;
}

Test(messaging, two_million_messages_from_threads_and_actors_arrive_once_in_order,
     .timeout = 300)
{
    xo_runtime_t *rt = start_runtime(2);
    latch_init(&producers_done, 2);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.pool = 0;
    xo_ref_t rx;
    cr_assert_eq(xo_spawn(rt, &receiver_def, &opts, &rx), 0);

    /* Two producer actors, one on each pool, and two outside threads. */
    xo_ref_t prod[2];
    for (uint32_t i = 0; i < 2; i++) {
        struct producer_args pa = { rx, i };
        opts.pool = (int)i;
        opts.arg = &pa;
        opts.arg_size = sizeof(pa);
        cr_assert_eq(xo_spawn(rt, &producer_def, &opts, &prod[i]), 0);
    }
    pthread_t t[2];
    struct thread_args ta[2] = { { rx, 2, 0 }, { rx, 3, 0 } };
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, outside_sender, &ta[i]);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(xo_tell(prod[i], START, NULL, 0), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(ta[i].failures, 0);
    }
    latch_wait(&producers_done);
    cr_assert_eq(atomic_load(&producer_failures), 0);
    stop_runtime(rt); /* drains every mailbox, then on_destroy */

    cr_assert_eq(seen.destroyed, 1, "on_destroy ran once");
    cr_assert_eq(seen.out_of_order, 0, "per-sender FIFO held");
    cr_assert_eq(seen.bad_size, 0);
    for (int s = 0; s < 4; s++)
        cr_assert_eq(seen.next[s], PER_SENDER, "sender %d: all arrived", s);
    cr_assert_eq(seen.total, 4ull * PER_SENDER, "nothing twice, nothing lost");
}

/* ---- sender identity and zero-copy ------------------------------------ */

static struct {
    xo_ref_t sender_seen[4];
    int got;
    char text[64];
    atomic_int freed; /* free_fn runs on a worker after the handler */
    _Atomic(void *) freed_buf;
} zc;

static struct latch zc_latch;

static int echo_sender_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    if (zc.got < 4)
        zc.sender_seen[zc.got] = m->sender;
    if (m->size < sizeof(zc.text)) {
        memcpy(zc.text, m->data, m->size);
        zc.text[m->size] = 0;
    }
    zc.got++;
    latch_count_down(&zc_latch);
    return 0;
}

static const xo_actor_def_t sink_def = {
    .name = "sink", .on_message = echo_sender_message,
};

static int forwarder_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    xo_ref_t to;
    memcpy(&to, m->data, sizeof(to));
    (void)ctx;
    return xo_tell(to, 7, "from an actor", 13);
}

static const xo_actor_def_t forwarder_def = {
    .name = "forwarder", .on_message = forwarder_message,
};

Test(messaging, sender_is_the_sending_actor_or_none_from_outside)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t sink, fwd;
    latch_init(&zc_latch, 2);
    cr_assert_eq(xo_spawn(rt, &sink_def, NULL, &sink), 0);
    cr_assert_eq(xo_spawn(rt, &forwarder_def, NULL, &fwd), 0);
    cr_assert_eq(xo_tell(sink, 1, "outside", 7), 0);
    cr_assert_eq(xo_tell(fwd, 1, &sink, sizeof(sink)), 0);
    latch_wait(&zc_latch);
    int from_outside = xo_ref_is_none(zc.sender_seen[0]) ? 0 : 1;
    cr_assert(xo_ref_is_none(zc.sender_seen[from_outside]));
    cr_assert(xo_ref_eq(zc.sender_seen[1 - from_outside], fwd),
              "the forwarder is named as sender");
    stop_runtime(rt);
}

static void count_free(void *buf, void *arg)
{
    (void)arg;
    atomic_fetch_add(&zc.freed, 1);
    atomic_store(&zc.freed_buf, buf);
}

Test(messaging, zero_copy_envelopes_deliver_and_wrapped_buffers_free_once)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t sink;
    latch_init(&zc_latch, 1);
    cr_assert_eq(xo_spawn(rt, &sink_def, NULL, &sink), 0);

    xo_msg_t *m;
    cr_assert_eq(xo_msg_alloc(rt, 3, 5, &m), 0);
    cr_assert_eq(m->size, 5);
    memcpy(m->data, "hello", 5);
    cr_assert_eq(xo_send(sink, m), 0);
    latch_wait(&zc_latch);
    cr_assert_str_eq(zc.text, "hello");

    static char buf[] = "no copy";
    latch_init(&zc_latch, 1);
    cr_assert_eq(xo_msg_wrap(rt, 4, buf, 7, count_free, NULL, &m), 0);
    cr_assert_eq(m->data, (void *)buf, "the buffer itself, not a copy");
    cr_assert_eq(xo_send(sink, m), 0);
    latch_wait(&zc_latch);
    cr_assert_str_eq(zc.text, "no copy");

    /* A send that fails leaves the envelope with the caller. */
    xo_ref_t gone;
    cr_assert_eq(xo_spawn(rt, &sink_def, NULL, &gone), 0);
    cr_assert_eq(xo_destroy(gone), 0);
    cr_assert_eq(xo_msg_wrap(rt, 4, buf, 7, count_free, NULL, &m), 0);
    cr_assert_eq(xo_send(gone, m), XO_ENOTEXIST);
    cr_assert_eq(xo_send(gone, m), XO_ENOTEXIST, "still ours to retry");
    xo_msg_free(rt, m);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&zc.freed), 2, "free_fn once per wrapped envelope");
    cr_assert_eq(atomic_load(&zc.freed_buf), (void *)buf);
}

/* ---- bounded mailboxes ------------------------------------------------- */

static atomic_int hold_open, holding;
static atomic_long bounded_handled;

static int bounded_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    if (m->tag == 99) { /* hold the actor busy */
        atomic_store(&holding, 1);
        while (!atomic_load(&hold_open))
            sleep_ms(1);
        return 0;
    }
    atomic_fetch_add(&bounded_handled, 1);
    return m->request ? xo_reply(m->request, 1, NULL, 0) : 0;
}

static const xo_actor_def_t bounded_def = {
    .name = "bounded", .on_message = bounded_message,
};

Test(messaging, bounded_mailbox_refuses_with_efull_and_loses_nothing)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.capacity = 10;
    xo_ref_t a;
    cr_assert_eq(xo_spawn(rt, &bounded_def, &opts, &a), 0);
    cr_assert_eq(xo_tell(a, 99, NULL, 0), 0);
    while (!atomic_load(&holding)) /* taken off the queue: busy now */
        sleep_ms(1);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(xo_tell(a, 1, NULL, 0), 0);
    xo_batch_item_t three[3] = { { 1, NULL, 0 }, { 1, NULL, 0 },
                                 { 1, NULL, 0 } };
    cr_assert_eq(xo_tell_batch(a, three, 3), XO_EFULL, "all or nothing");
    xo_future_t *f;
    cr_assert_eq(xo_call(a, 1, NULL, 0, &f), 0); /* 9 */
    cr_assert_eq(xo_tell(a, 1, NULL, 0), 0);     /* 10: full */
    cr_assert_eq(xo_tell(a, 1, NULL, 0), XO_EFULL);
    xo_future_t *g = NULL;
    cr_assert_eq(xo_call(a, 1, NULL, 0, &g), XO_EFULL);
    cr_assert_null(g);
    atomic_store(&hold_open, 1);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_future_release(f);
    /* Drained: room again. */
    cr_assert_eq(xo_call(a, 1, NULL, 0, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_future_release(f);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&bounded_handled), 11,
                 "every accepted message handled, no refused one");
}

/* ---- the watched actor (worker.c, "Watching") ------------------------ */

static atomic_long watch_handled;

static int watch_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    atomic_fetch_add(&watch_handled, 1);
    return 0;
}

static const xo_actor_def_t watch_def = { .name = "watched",
                                          .on_message = watch_message };

static void spin_ns(uint64_t ns)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do {
        clock_gettime(CLOCK_MONOTONIC, &b);
    } while ((uint64_t)(b.tv_sec - a.tv_sec) * 1000000000u +
                 (uint64_t)(b.tv_nsec - a.tv_nsec) <
             ns);
}

Test(messaging, sends_around_the_end_of_a_watch_are_all_handled)
{
    /* After each handled message the worker watches the actor's mailbox
       for spin_ns (5 us here), then stops watching and parks. Sends land
       before, across and after that moment: none may be left unseen (a
       loss hangs the wait below; ctest's timeout fails it). */
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t a;
    cr_assert_eq(xo_spawn(rt, &watch_def, NULL, &a), 0);
    const long rounds = 3000;
    for (long i = 0; i < rounds; i++) {
        cr_assert_eq(xo_tell(a, 1, NULL, 0), 0);
        while (atomic_load(&watch_handled) != i + 1)
            sched_yield();
        spin_ns((uint64_t)(i % 31) * 400); /* 0 .. 12 us */
    }
    cr_assert_eq(atomic_load(&watch_handled), rounds);
    stop_runtime(rt);
}

static atomic_long watch_other_handled;

static int watch_other_message(xo_ctx_t *ctx, void *state,
                               const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    atomic_fetch_add(&watch_other_handled, 1);
    return 0;
}

static const xo_actor_def_t watch_other_def = {
    .name = "pool-mate", .on_message = watch_other_message
};

Test(messaging, a_watched_actor_and_its_pool_mates_all_get_their_messages)
{
    /* Each round ends with the worker watching a (its turn ran last; from
       the second round on, b is watched too). Sends to b and a land in
       either order around the worker's polls, through the run queue or
       into a watched mailbox, and around the moment the worker stops
       watching to park: an actor left unseen hangs the wait below (ctest's
       timeout fails it). */
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t a, b;
    cr_assert_eq(xo_spawn(rt, &watch_def, NULL, &a), 0);
    cr_assert_eq(xo_spawn(rt, &watch_other_def, NULL, &b), 0);
    const long rounds = 20000;
    for (long i = 0; i < rounds; i++) {
        cr_assert_eq(xo_tell(b, 1, NULL, 0), 0);
        cr_assert_eq(xo_tell(a, 1, NULL, 0), 0);
        while (atomic_load(&watch_handled) != i + 1 ||
               atomic_load(&watch_other_handled) != i + 1)
            ;
    }
    stop_runtime(rt);
}

/* A runtime whose one worker never parks during a test: what it watches
   stays watched until something else ends the watch. */
static xo_runtime_t *start_spinning(void)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 1;
    cfg.spin_ns = 30000000000ull; /* 30 s */
    xo_runtime_t *rt = NULL;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), 0);
    return rt;
}

struct fan {
    xo_ref_t *to;
    int n;
};

/* On each message: one message to every actor of the fan. */
static int fan_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    const struct fan *f = m->data;
    for (int i = 0; i < f->n; i++)
        if (xo_tell(f->to[i], 1, NULL, 0) != 0)
            return -1;
    return 0;
}

static const xo_actor_def_t fan_def = { .name = "fan",
                                        .on_message = fan_message };

Test(messaging, more_actors_than_a_worker_watches_all_get_every_message)
{
    /* 40 actors in one pool, more than one worker watches (32): an actor
       of the same pool sends one message to each, round after round, so
       the ones that come back every round are watched and the rest go
       through the run queue; each must see every round. The worker
       spins throughout, so watches end only by being taken. */
    xo_runtime_t *rt = start_spinning();
    enum { N = 40, ROUNDS = 2000 };
    static xo_ref_t to[N];
    for (int i = 0; i < N; i++)
        cr_assert_eq(xo_spawn(rt, &watch_def, NULL, &to[i]), 0);
    xo_ref_t fan;
    cr_assert_eq(xo_spawn(rt, &fan_def, NULL, &fan), 0);
    struct fan f = { to, N };
    atomic_store(&watch_handled, 0);
    for (long r = 0; r < ROUNDS; r++) {
        cr_assert_eq(xo_tell(fan, 1, &f, sizeof(f)), 0);
        while (atomic_load(&watch_handled) != (r + 1) * N)
            sched_yield();
    }
    for (int i = 0; i < N; i++) {
        xo_actor_stats_t st;
        cr_assert_eq(xo_actor_stats(to[i], &st), 0);
        cr_assert_eq(st.handled, ROUNDS, "actor %d handled every round", i);
    }
    stop_runtime(rt);
}

enum { ASK = 7 };

static int answer_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    atomic_fetch_add(&watch_handled, 1);
    return m->request ? xo_reply(m->request, ASK, NULL, 0) : 0;
}

static const xo_actor_def_t answer_def = { .name = "answer",
                                           .on_message = answer_message };

static _Atomic int asker_rc = 1;

/* Calls the actor its message names and waits for the reply. */
static int asker_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    xo_future_t *f;
    int rc = xo_call(*(const xo_ref_t *)m->data, ASK, NULL, 0, &f);
    if (rc == 0) {
        rc = xo_future_wait(f, -1);
        xo_future_release(f);
    }
    atomic_store(&asker_rc, rc);
    return 0;
}

static const xo_actor_def_t asker_def = { .name = "asker",
                                          .on_message = asker_message };

Test(messaging, a_blocking_wait_on_a_watched_pool_mate_completes)
{
    /* The callee handles a message first, so the spinning worker watches
       it; its mailbox is then not idle-marked, and the call into it
       schedules nothing. The caller's wait serves the run queue only, so
       it must end the watch first (queueing the callee, whose mailbox now
       holds the call); otherwise the wait never ends. */
    xo_runtime_t *rt = start_spinning();
    xo_ref_t answer, asker;
    cr_assert_eq(xo_spawn(rt, &answer_def, NULL, &answer), 0);
    cr_assert_eq(xo_spawn(rt, &asker_def, NULL, &asker), 0);
    atomic_store(&watch_handled, 0);
    cr_assert_eq(xo_tell(answer, 1, NULL, 0), 0);
    while (atomic_load(&watch_handled) != 1)
        sched_yield();
    cr_assert_eq(xo_tell(asker, 1, &answer, sizeof(answer)), 0);
    while (atomic_load(&asker_rc) == 1)
        sleep_ms(1);
    cr_assert_eq(atomic_load(&asker_rc), 0);
    stop_runtime(rt);
}

/* ---- payload placement (runtime.h, struct xi_envelope) ---------------- */

#define CALL_BIT 0x10000u

static atomic_long checked, misplaced;

/* Every message's tag is its payload size (plus CALL_BIT for calls); the
   payload's bytes are 1, 2, 3...; it must be aligned for any object of its
   size (8 bytes up to 8, 16 above), and only calls carry a request. */
static int check_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    bool call = (m->tag & CALL_BIT) != 0;
    uint32_t size = m->tag & ~CALL_BIT;
    uintptr_t align = size <= 8 ? 8 : 16;
    bool ok = m->size == size && (uintptr_t)m->data % align == 0 &&
              (m->request != NULL) == call;
    for (uint32_t i = 0; ok && i < size; i++)
        ok = ((const unsigned char *)m->data)[i] == (unsigned char)(i + 1);
    if (!ok)
        atomic_fetch_add(&misplaced, 1);
    atomic_fetch_add(&checked, 1);
    return call ? xo_reply(m->request, 0, m->data, m->size) : 0;
}

static const xo_actor_def_t check_def = { .name = "check",
                                          .on_message = check_message };
static const xo_actor_def_t check_stateless_def = {
    .name = "check-stateless", .flags = XO_ACTOR_STATELESS,
    .on_message = check_message
};

Test(messaging, payloads_are_aligned_for_their_size_and_only_calls_carry_a_request)
{
    /* Sizes around the 8-byte limit of the one-line envelope, by every
       way a payload gets into one, to a stateful and a stateless actor
       (whose tasks keep their actor in the request word until they run). */
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t to[2];
    cr_assert_eq(xo_spawn(rt, &check_def, NULL, &to[0]), 0);
    cr_assert_eq(xo_spawn(rt, &check_stateless_def, NULL, &to[1]), 0);
    unsigned char bytes[40];
    for (unsigned i = 0; i < sizeof(bytes); i++)
        bytes[i] = (unsigned char)(i + 1);
    long sent = 0;
    for (int a = 0; a < 2; a++) {
        for (uint32_t size = 0; size <= 40; size++) {
            cr_assert_eq(xo_tell(to[a], size, bytes, size), 0);
            xo_msg_t *msg;
            cr_assert_eq(xo_msg_alloc(rt, size, size, &msg), 0);
            cr_assert_eq((uintptr_t)msg->data % (size <= 8 ? 8 : 16), 0);
            memcpy(msg->data, bytes, size);
            cr_assert_eq(xo_send(to[a], msg), 0);
            xo_batch_item_t item = { size, bytes, size };
            cr_assert_eq(xo_tell_batch(to[a], &item, 1), 0);
            xo_future_t *f;
            cr_assert_eq(xo_call(to[a], size | CALL_BIT, bytes, size, &f),
                         0);
            cr_assert_eq(xo_future_wait(f, -1), 0);
            xo_result_t r;
            cr_assert_eq(xo_future_result(f, 0, &r), 0);
            cr_assert_eq(r.size, size);
            cr_assert_eq(size == 0 || memcmp(r.data, bytes, size) == 0, 1,
                         "the reply carries the payload back");
            cr_assert_eq((uintptr_t)r.data % (size <= 8 ? 8 : 16), 0);
            xo_future_release(f);
            sent += 4;
        }
    }
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&checked), sent);
    cr_assert_eq(atomic_load(&misplaced), 0);
}
