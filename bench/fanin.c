/*
 * fanin.c -- many senders, one receiver (Savina "fan-in", the shape of a
 * logger or an aggregator).
 *
 * Each sender, on the kick-off, sends per_sender messages (its id and a
 * sequence number) to the receiver in one tight loop, from one handler
 * turn, with no flow control: the receiver's mailbox takes whatever the
 * senders produce faster than it consumes, and peak_rss_kib shows how far
 * it built up. The receiver checks that each sender's sequence arrives in
 * order (the runtime promises FIFO per sender) and signals after the last
 * message.
 *
 * This is the contended path of the mailbox: every sender's exchange hits
 * the same head word.
 *
 * With a third argument `capacity` > 0 the receiver's mailbox is bounded
 * (xo_spawn_opts_t.capacity): a send beyond it fails with XO_EFULL, and the
 * sender backs off in actor style: it sends itself a delayed "resume where
 * you stopped" (xo_tell_after) and ends its turn, so its worker runs other
 * actors (the receiver too, when they share a pool) before it tries again.
 * Resuming at once instead makes most retries fail again (about 1.5
 * refusals per message measured here). peak_rss_kib then stays bounded;
 * `refusals` in extra counts the back-offs.
 */
#include "bench.h"

#include <stdlib.h>

enum { KICK = 1, ITEM = 2, RESUME = 3 };

/* How long a refused sender waits before it tries again: about the time
   the receiver needs to drain a few hundred messages. */
#define FANIN_BACKOFF_NS 20000

struct item {
    uint64_t sender;
    uint64_t seq;
};

struct fanin {
    struct bench_done *done;
    uint64_t per_sender, senders, capacity;
    _Atomic uint64_t refusals; /* XO_EFULL back-offs, all senders */
    uint64_t *next_seq;   /* per sender; touched by the receiver only */
    uint64_t received;    /* written by the receiver before it signals */
    xo_ref_t receiver;
};

/* The spawn argument is the whole initial state (both actor kinds). */
struct fanin_actor {
    struct fanin *f;
    uint64_t id;          /* senders: their id; the receiver: its count */
    uint64_t next;        /* senders: the next sequence number to send */
};

static int sender_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct fanin_actor *a = state;
    (void)m;
    struct item it = { a->id, a->next };
    for (; it.seq < a->f->per_sender; it.seq++) {
        int rc = xo_tell(a->f->receiver, ITEM, &it, sizeof(it));
        if (rc == XO_EFULL) { /* back off: resume in a later turn */
            a->next = it.seq;
            /* relaxed: a statistic read after the run. */
            atomic_fetch_add_explicit(&a->f->refusals, 1,
                                      memory_order_relaxed);
            return xo_tell_after(xo_self(ctx), FANIN_BACKOFF_NS, RESUME, NULL, 0);
        }
        if (rc != 0)
            return rc;
    }
    a->next = it.seq;
    return 0;
}

static int receiver_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct fanin_actor *a = state;
    struct fanin *f = a->f;
    const struct item *it = m->data;
    (void)ctx;
    if (m->size != sizeof(*it) || it->sender >= f->senders)
        return bench_fail(f->done, "a message from no known sender", 0);
    if (it->seq != f->next_seq[it->sender]++)
        return bench_fail(f->done, "a sender's messages out of order", 0);
    if (++a->id == f->per_sender * f->senders) {
        f->received = a->id;
        bench_done_signal(f->done);
    }
    return 0;
}

static const xo_actor_def_t sender_def = {
    .name = "fanin-sender", .state_size = sizeof(struct fanin_actor),
    .on_create = bench_copy_arg, .on_message = sender_message,
};
static const xo_actor_def_t receiver_def = {
    .name = "fanin-receiver", .state_size = sizeof(struct fanin_actor),
    .on_create = bench_copy_arg, .on_message = receiver_message,
};

static int spawn_all(struct bench_env *env, struct fanin *f, xo_ref_t *senders)
{
    struct fanin_actor init = { f, 0, 0 };
    xo_spawn_opts_t so;
    bench_spawn_opts(env, XO_POOL_ANY, &so);
    so.arg = &init;
    so.arg_size = sizeof(init);
    so.capacity = (uint32_t)f->capacity;
    int rc = xo_spawn(env->rt, &receiver_def, &so, &f->receiver);
    if (rc != 0) {
        fprintf(stderr, "fanin: xo_spawn: %s\n", xo_strerror(rc));
        return -1;
    }
    for (init.id = 0; init.id < f->senders; init.id++)
        if (bench_spawn(env, &sender_def, XO_POOL_ANY, &init, sizeof(init),
                        &senders[init.id]) != 0)
            return -1;
    return 0;
}

static bool all_received(const struct fanin *f)
{
    for (uint64_t i = 0; i < f->senders; i++)
        if (f->next_seq[i] != f->per_sender)
            return false;
    return f->received == f->per_sender * f->senders;
}

int bench_fanin(const struct bench_opts *opts, const uint64_t *args,
                struct bench_result *out)
{
    struct fanin f = { .per_sender = args[0], .senders = args[1],
                       .capacity = args[2] };
    if (f.capacity > UINT32_MAX)
        f.capacity = UINT32_MAX;
    xo_ref_t *senders = calloc(f.senders, sizeof(*senders));
    f.next_seq = calloc(f.senders, sizeof(*f.next_seq));
    struct bench_env env;
    int rc = -1;
    if (senders != NULL && f.next_seq != NULL &&
        bench_start(&env, "fanin", opts) == 0) {
        f.done = &env.done;
        rc = spawn_all(&env, &f, senders);
        if (rc == 0)
            rc = bench_measure(&env, senders, f.senders, KICK, &out->seconds);
        if (rc == 0 && !all_received(&f))
            rc = bench_error(&env, "messages were lost");
        out->ops = f.per_sender * f.senders;
        bench_extra(out, "senders", "%llu", (unsigned long long)f.senders);
        if (f.capacity > 0) {
            bench_extra(out, "capacity", "%llu",
                        (unsigned long long)f.capacity);
            bench_extra(out, "refusals", "%llu",
                        (unsigned long long)atomic_load(&f.refusals));
        }
        if (bench_finish(&env, out) != 0)
            rc = -1;
    }
    free(senders);
    free(f.next_seq);
    return rc;
}
