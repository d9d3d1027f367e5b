/*
 * counting.c -- a producer increments a counter actor, then asks for the
 * total (Savina "counting actor").
 *
 * On the kick-off the producer sends `messages` empty increments in one
 * loop, from one handler turn, then a "get" request; the counter replies to
 * the request's sender with its value, and the producer checks it equals
 * `messages`. The request/reply is two one-way messages (the reply goes to
 * msg->sender), since FIFO order per sender guarantees the "get" is handled
 * after every increment.
 *
 * This is the uncontended throughput of one mailbox: one producer, one
 * consumer, the smallest message there is. The runtime places the two
 * (least loaded) and they are movable: the counter runs where the
 * producer's sends wake it, in the producer's yields (docs/scheduler.md,
 * "Locality"); with --move fixed they run on two cores at once.
 */
#include "bench.h"

enum { KICK = 1, INCREMENT = 2, GET = 3, VALUE = 4 };

struct counting {
    struct bench_done *done;
    uint64_t messages;
    uint64_t value;      /* the reply, written by the producer */
    xo_ref_t counter;
};

/* The spawn argument is the whole initial state (both actors). */
struct count_actor {
    struct counting *c;
    uint64_t value;
};

static int counter_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct count_actor *a = state;
    (void)ctx;
    if (m->tag == INCREMENT) {
        a->value++;
        return 0;
    }
    return xo_tell(m->sender, VALUE, &a->value, sizeof(a->value));
}

static int producer_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct counting *c = ((struct count_actor *)state)->c;
    (void)ctx;
    if (m->tag == VALUE) {
        c->value = *(const uint64_t *)m->data;
        if (c->value != c->messages)
            return bench_fail(c->done, "the counter has the wrong value", 0);
        bench_done_signal(c->done);
        return 0;
    }
    for (uint64_t i = 0; i < c->messages; i++) {
        int rc = xo_tell(c->counter, INCREMENT, NULL, 0);
        if (rc != 0)
            return rc;
    }
    return xo_tell(c->counter, GET, NULL, 0);
}

static const xo_actor_def_t counter_def = {
    .name = "counter", .state_size = sizeof(struct count_actor),
    .on_create = bench_copy_arg, .on_message = counter_message,
};
static const xo_actor_def_t producer_def = {
    .name = "producer", .state_size = sizeof(struct count_actor),
    .on_create = bench_copy_arg, .on_message = producer_message,
};

int bench_counting(const struct bench_opts *opts, const uint64_t *args,
                   struct bench_result *out)
{
    struct counting c = { .messages = args[0] };
    struct bench_env env;
    if (bench_start(&env, "counting", opts) != 0)
        return -1;
    c.done = &env.done;
    struct count_actor init = { &c, 0 };
    xo_ref_t producer;
    int rc = bench_spawn(&env, &counter_def, XO_POOL_ANY, &init, sizeof(init),
                         &c.counter);
    if (rc == 0)
        rc = bench_spawn(&env, &producer_def, XO_POOL_ANY, &init,
                         sizeof(init), &producer);
    if (rc == 0)
        rc = bench_measure(&env, &producer, 1, KICK, &out->seconds);
    if (rc == 0 && c.value != c.messages)
        rc = bench_error(&env, "no reply with the count");
    out->ops = c.messages;
    return bench_finish(&env, out) == 0 ? rc : -1;
}
