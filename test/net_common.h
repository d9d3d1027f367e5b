/*
 * net_common.h -- what the net suites share: the checks that run against
 * another node whether it is a runtime of this process or another
 * process (every sending function, per-pair order, chunked messages,
 * lookup and spawn, streams, monitors, calls failed by a loss), node
 * events seen by a subscriber actor, a log counter, and fake peers made of
 * a raw socket and the wire's own encoder.
 *
 * Waits (wait_until) poll without a bound: a hang fails by ctest's
 * timeout, and nothing is asserted about time.
 */
#ifndef XO_TEST_NET_COMMON_H
#define XO_TEST_NET_COMMON_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/auth.h"
#include "net/wire.h"
#include "net_actors.h"
#include "support.h"

#define XO_UNUSED __attribute__((unused))

#define wait_until(cond)                                                      \
    do {                                                                      \
        while (!(cond))                                                       \
            sleep_ms(1);                                                      \
    } while (0)

/* ---- the log: counted, kept quiet --------------------------------------- */

static _Atomic unsigned net_log_count;

XO_UNUSED static void quiet_log(xo_runtime_t *rt, const char *line, void *user)
{
    (void)rt;
    (void)line;
    (void)user;
    atomic_fetch_add(&net_log_count, 1);
}

XO_UNUSED static unsigned log_lines(void)
{
    return atomic_load(&net_log_count);
}

/* ---- small queries ------------------------------------------------------ */

XO_UNUSED static int node_state(xo_runtime_t *rt,
                                              unsigned node)
{
    xo_node_info_t info;
    return xo_node_info(rt, node, &info) == 0 ? (int)info.state : -1;
}

XO_UNUSED static uint64_t node_faults(xo_runtime_t *rt)
{
    xo_node_info_t info;
    cr_assert_eq(xo_node_info(rt, 0, &info), 0);
    return info.faults;
}

XO_UNUSED static xo_ref_t remote_lookup(xo_runtime_t *rt, unsigned node,
                              const char *uid)
{
    xo_ref_t r;
    int rc = xo_node_lookup(rt, node, uid, -1, &r);
    cr_assert_eq(rc, 0, "lookup %s: %s", uid, xo_strerror(rc));
    cr_assert_eq(xo_ref_node(r), node);
    return r;
}

XO_UNUSED static void call_echo_ok(xo_ref_t echo)
{
    xo_future_t *f;
    cr_assert_eq(xo_call(echo, T_PLAIN, "ping", 4, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t r;
    int rc = xo_future_result(f, 0, &r);
    cr_assert_eq(rc, 0, "echo: %s", r.error ? r.error : "");
    cr_assert_eq(r.size, 4);
    cr_assert_eq(memcmp(r.data, "ping", 4), 0);
    cr_assert(xo_ref_eq(r.from, echo), "the reply names the callee");
    xo_future_release(f);
}

/* A counter's counts (a call; it answers after what came before it from
   this thread). */
XO_UNUSED static struct counts get_counts(xo_ref_t counter)
{
    xo_future_t *f;
    cr_assert_eq(xo_call(counter, T_GET, NULL, 0, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t r;
    cr_assert_eq(xo_future_result(f, 0, &r), 0);
    struct counts c;
    cr_assert_eq(r.size, sizeof(c));
    memcpy(&c, r.data, sizeof(c));
    xo_future_release(f);
    return c;
}

XO_UNUSED static xo_ref_t remote_spawn(xo_runtime_t *rt, unsigned node,
                             const char *type, const char *uid)
{
    xo_ref_t r;
    int rc = xo_node_spawn(rt, node, type, uid, NULL, 0, -1, &r);
    cr_assert_eq(rc, 0, "spawn %s: %s", type, xo_strerror(rc));
    cr_assert_eq(xo_ref_node(r), node);
    return r;
}

/* ---- every sending function ------------------------------------------- */

static _Atomic int wrap_freed;

XO_UNUSED static void count_free(void *buf, void *arg)
{
    (void)arg;
    free(buf);
    atomic_fetch_add(&wrap_freed, 1);
}

/* A local actor that calls with a continuation (xo_call_then). */
struct then_caller {
    xo_ref_t target;
    _Atomic int status; /* 1: not yet */
};

XO_UNUSED static int then_done(xo_ctx_t *ctx, void *state, xo_future_t *f, void *arg)
{
    (void)ctx;
    (void)state;
    struct then_caller *tc = arg;
    xo_result_t r;
    atomic_store(&tc->status, xo_future_result(f, 0, &r));
    return 0;
}

XO_UNUSED static int then_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    struct then_caller *tc;
    memcpy(&tc, m->data, sizeof(tc));
    return xo_call_then(ctx, tc->target, T_PLAIN, NULL, 0, -1, then_done, tc);
}

static const xo_actor_def_t then_def = { .name = "then",
                                         .on_message = then_message };

XO_UNUSED static void every_sending_function(xo_runtime_t *rt,
                                                           unsigned node,
                                                           unsigned n)
{
    xo_ref_t counter = remote_spawn(rt, node, "counter", NULL);
    /* tell */
    for (uint64_t seq = 0; seq < n; seq++) {
        int rc;
        while ((rc = xo_tell(counter, T_SEQ, &seq, sizeof(seq))) == XO_EFULL)
            sleep_ms(1);
        cr_assert_eq(rc, 0, "tell: %s", xo_strerror(rc));
    }
    /* zero-copy: an envelope filled in place, and a wrapped buffer */
    xo_msg_t *m;
    cr_assert_eq(xo_msg_alloc(rt, T_PLAIN, 16, &m), 0);
    memset(m->data, 7, 16);
    cr_assert_eq(xo_send(counter, m), 0);
    unsigned char *buf = malloc(100);
    blob_fill(buf, 100);
    atomic_store(&wrap_freed, 0);
    cr_assert_eq(xo_msg_wrap(rt, T_BLOB, buf, 100, count_free, NULL, &m), 0);
    cr_assert_eq(xo_send(counter, m), 0);
    /* delayed tell */
    cr_assert_eq(xo_tell_after(counter, 1000000, T_PLAIN, NULL, 0), 0);
    /* a batch of tells */
    static const int values[10] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    xo_batch_item_t items[10];
    for (int i = 0; i < 10; i++)
        items[i] = (xo_batch_item_t){ T_PLAIN, &values[i], sizeof(int) };
    cr_assert_eq(xo_tell_batch(counter, items, 10), 0);
    /* a call */
    xo_future_t *f;
    cr_assert_eq(xo_call(counter, T_PLAIN, NULL, 0, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t r;
    cr_assert_eq(xo_future_result(f, 0, &r), 0);
    cr_assert(xo_ref_eq(r.from, counter));
    xo_future_release(f);
    /* a batch of calls */
    cr_assert_eq(xo_call_batch(counter, items, 5, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    cr_assert_eq(xo_future_count(f), 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(xo_future_result(f, i, &r), 0, "item %zu", i);
    xo_future_release(f);
    /* an error comes back with its message */
    xo_ref_t echo = remote_lookup(rt, node, "echo");
    cr_assert_eq(xo_call(echo, T_FAIL, "abc", 3, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    cr_assert_eq(xo_future_result(f, 0, &r), XO_EINVAL);
    cr_assert_str_eq(r.error, "refused 3");
    xo_future_release(f);
    /* a continuation in a local actor */
    struct then_caller tc = { counter, 1 };
    struct then_caller *tcp = &tc;
    xo_ref_t caller;
    cr_assert_eq(xo_spawn(rt, &then_def, NULL, &caller), 0);
    cr_assert_eq(xo_tell(caller, 1, &tcp, sizeof(tcp)), 0);
    wait_until(atomic_load(&tc.status) != 1);
    cr_assert_eq(atomic_load(&tc.status), 0);
    cr_assert_eq(xo_destroy(caller), 0);
    /* All of it, and nothing twice: 1 alloc'd + 1 delayed + 10 batched +
       1 call + 5 batched calls + 1 continuation's call. */
    struct counts c;
    do
        c = get_counts(counter);
    while (c.by_tag[T_PLAIN] < 19);
    cr_assert_eq(c.by_tag[T_PLAIN], 19);
    cr_assert_eq(c.by_tag[T_SEQ], n);
    cr_assert_eq(c.out_of_order, 0);
    cr_assert_eq(c.by_tag[T_BLOB], 1);
    cr_assert_eq(c.bad_blobs, 0);
    cr_assert_eq(atomic_load(&wrap_freed), 1, "the wrapped buffer freed once");
}

/* ---- per-pair order ----------------------------------------------------- */

/* A local actor that floods the remote counter and the remote echo with
   seqs, and checks the echoes come back in order. */
struct flood {
    xo_ref_t counter, echo;
    uint64_t n;
    _Atomic uint64_t echoed;
    _Atomic uint64_t wrong;
};

struct flooder {
    struct flood *fl;
    uint64_t next_echo;
};

XO_UNUSED static void send_retrying(xo_ref_t to, uint32_t tag, const void *p,
                          size_t size)
{
    int rc;
    while ((rc = xo_tell(to, tag, p, size)) == XO_EFULL)
        sched_yield(); /* the I/O thread drains meanwhile */
    cr_assert_eq(rc, 0, "tell: %s", xo_strerror(rc));
}

XO_UNUSED static int flooder_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    struct flooder *s = state;
    if (m->tag == 100) { /* the kick: its payload is the shared struct */
        memcpy(&s->fl, m->data, sizeof(s->fl));
        for (uint64_t seq = 0; seq < s->fl->n; seq++) {
            send_retrying(s->fl->counter, T_SEQ, &seq, sizeof(seq));
            send_retrying(s->fl->echo, T_SEQ, &seq, sizeof(seq));
        }
        return 0;
    }
    /* An echo from the other node. */
    uint64_t seq;
    memcpy(&seq, m->data, sizeof(seq));
    if (seq != s->next_echo || !xo_ref_eq(m->sender, s->fl->echo))
        atomic_fetch_add(&s->fl->wrong, 1);
    s->next_echo = seq + 1;
    atomic_fetch_add(&s->fl->echoed, 1);
    return 0;
}

static const xo_actor_def_t flooder_def = {
    .name = "flooder", .state_size = sizeof(struct flooder),
    .on_message = flooder_message,
};

XO_UNUSED static void per_pair_order(xo_runtime_t *rt,
                                                   unsigned node,
                                                   unsigned senders,
                                                   uint64_t n)
{
    struct flood fl = { remote_spawn(rt, node, "counter", NULL),
                        remote_lookup(rt, node, "echo"), n, 0, 0 };
    struct flood *flp = &fl;
    xo_ref_t s[16];
    for (unsigned i = 0; i < senders; i++)
        cr_assert_eq(xo_spawn(rt, &flooder_def, NULL, &s[i]), 0);
    for (unsigned i = 0; i < senders; i++)
        cr_assert_eq(xo_tell(s[i], 100, &flp, sizeof(flp)), 0);
    wait_until(atomic_load(&fl.echoed) == senders * n);
    cr_assert_eq(atomic_load(&fl.wrong), 0, "echoes in order, from echo");
    struct counts c;
    do
        c = get_counts(fl.counter);
    while (c.by_tag[T_SEQ] < senders * n);
    cr_assert_eq(c.by_tag[T_SEQ], senders * n);
    cr_assert_eq(c.out_of_order, 0, "each sender's seqs in order");
    for (unsigned i = 0; i < senders; i++)
        cr_assert_eq(xo_destroy(s[i]), 0);
}

/* ---- chunked messages ------------------------------------------------- */

XO_UNUSED static void chunked_in_order(xo_runtime_t *rt,
                                                     unsigned node)
{
    xo_ref_t counter = remote_spawn(rt, node, "counter", NULL);
    size_t big = ((size_t)3 << 20) + 7, mid = 100 << 10;
    unsigned char *p = malloc(big);
    blob_fill(p, big);
    unsigned char *q = malloc(mid);
    blob_fill(q, mid);
    uint64_t seq = 0;
    cr_assert_eq(xo_tell(counter, T_SEQ, &seq, sizeof(seq)), 0);
    cr_assert_eq(xo_tell(counter, T_BLOB, p, big), 0);
    seq = 1;
    cr_assert_eq(xo_tell(counter, T_SEQ, &seq, sizeof(seq)), 0);
    cr_assert_eq(xo_tell(counter, T_BLOB, q, mid), 0);
    seq = 2;
    cr_assert_eq(xo_tell(counter, T_SEQ, &seq, sizeof(seq)), 0);
    struct counts c = get_counts(counter);
    cr_assert_eq(c.by_tag[T_SEQ], 3);
    cr_assert_eq(c.by_tag[T_BLOB], 2);
    cr_assert_eq(c.bad_blobs, 0);
    cr_assert_eq(c.blob_bytes, big + mid);
    cr_assert_eq(c.out_of_order, 0);
    uint32_t want[] = { T_SEQ, T_BLOB, T_SEQ, T_BLOB, T_SEQ };
    cr_assert_eq(c.nlog, 5);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(c.log[i], want[i], "message %d in its place", i);
    /* A chunked call and its chunked reply. */
    xo_ref_t echo = remote_lookup(rt, node, "echo");
    xo_future_t *f;
    cr_assert_eq(xo_call(echo, T_BLOB, p, big, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t r;
    cr_assert_eq(xo_future_result(f, 0, &r), 0);
    cr_assert_eq(r.size, big);
    cr_assert_eq(memcmp(r.data, p, big), 0);
    xo_future_release(f);
    free(p);
    free(q);
}

/* ---- lookup, spawn ----------------------------------------------------- */

XO_UNUSED static void tell_quit(xo_ref_t counter)
{
    cr_assert_eq(xo_tell(counter, T_QUIT, NULL, 0), 0);
}


XO_UNUSED static void lookup_and_spawn(xo_runtime_t *rt,
                                                     unsigned node)
{
    call_echo_ok(remote_lookup(rt, node, "echo"));
    xo_ref_t r;
    cr_assert_eq(xo_node_lookup(rt, node, "nobody", -1, &r), XO_ENOTEXIST);
    xo_ref_t s = remote_spawn(rt, node, "counter", "spawned-1");
    xo_ref_t l = remote_lookup(rt, node, "spawned-1");
    cr_assert(xo_ref_eq(s, l), "lookup finds the spawned actor");
    cr_assert_eq(xo_node_spawn(rt, node, "counter", "spawned-1", NULL, 0, -1,
                               &r),
                 XO_EEXIST);
    cr_assert_eq(xo_node_spawn(rt, node, "no-such-type", NULL, NULL, 0, -1,
                               &r),
                 XO_ENOTEXIST);
    /* An argument larger than a frame goes in chunks. */
    size_t size = 200 << 10;
    unsigned char *arg = malloc(size);
    blob_fill(arg, size);
    cr_assert_eq(xo_node_spawn(rt, node, "echo", NULL, arg, size, -1, &r), 0);
    call_echo_ok(r);
    free(arg);
    tell_quit(s);
}

/* ---- streams ---------------------------------------------------------- */

XO_UNUSED static void remote_stream(xo_runtime_t *rt,
                                                  unsigned node, uint32_t n)
{
    xo_ref_t streamer = remote_lookup(rt, node, "streamer");
    xo_future_t *f;
    cr_assert_eq(xo_call(streamer, T_STREAM, &n, sizeof(n), &f), 0);
    xo_result_t part;
    for (uint32_t i = 0; i < n; i++) {
        int rc = xo_stream_next(f, -1, &part);
        cr_assert_eq(rc, 0, "part %u: %s", i, xo_strerror(rc));
        uint32_t v;
        cr_assert_eq(part.size, sizeof(v));
        memcpy(&v, part.data, sizeof(v));
        cr_assert_eq(v, i, "parts in order");
        cr_assert(xo_ref_eq(part.from, streamer));
    }
    cr_assert_eq(xo_stream_next(f, -1, &part), XO_EEOF);
    xo_result_t r;
    cr_assert_eq(xo_future_result(f, 0, &r), 0);
    xo_future_release(f);
    /* Abandoned midway: the rest is dropped here, nothing hangs. */
    uint32_t many = 100000;
    cr_assert_eq(xo_call(streamer, T_STREAM, &many, sizeof(many), &f), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(xo_stream_next(f, -1, &part), 0);
    xo_future_release(f);
    call_echo_ok(remote_lookup(rt, node, "echo"));
}

/* ---- monitors ----------------------------------------------------------- */

struct downs {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned n;
    xo_down_t last;
    char text[128];
};

XO_UNUSED static int watcher_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    struct downs *d;
    memcpy(&d, state, sizeof(d));
    if (m->tag != XO_TAG_DOWN)
        return 0;
    const xo_down_t *dn = m->data;
    pthread_mutex_lock(&d->lock);
    d->last = *dn;
    snprintf(d->text, sizeof(d->text), "%s", dn->message);
    d->n++;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

XO_UNUSED static int watcher_create(xo_ctx_t *ctx, void *state, const void *arg,
                          size_t size)
{
    (void)ctx;
    memcpy(state, arg, size);
    return 0;
}

static const xo_actor_def_t watcher_def = {
    .name = "watcher", .state_size = sizeof(void *),
    .on_create = watcher_create, .on_message = watcher_message,
};

XO_UNUSED static xo_ref_t watcher_new(xo_runtime_t *rt, struct downs *d)
{
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cond, NULL);
    d->n = 0;
    xo_spawn_opts_t so;
    xo_spawn_opts_init(&so);
    so.arg = &d;
    so.arg_size = sizeof(d);
    xo_ref_t w;
    cr_assert_eq(xo_spawn(rt, &watcher_def, &so, &w), 0);
    return w;
}

XO_UNUSED static void downs_wait(struct downs *d, unsigned n)
{
    pthread_mutex_lock(&d->lock);
    while (d->n < n)
        pthread_cond_wait(&d->cond, &d->lock);
    pthread_mutex_unlock(&d->lock);
}

XO_UNUSED static void monitor_remote(xo_runtime_t *rt,
                                                   unsigned node)
{
    static struct downs d;
    xo_ref_t w = watcher_new(rt, &d);
    xo_ref_t target = remote_spawn(rt, node, "counter", NULL);
    xo_monitor_t mon;
    cr_assert_eq(xo_monitor(w, target, &mon), 0);
    /* The monitor is set up there before the end is asked for: a call
       behind it on the same connection. */
    (void)get_counts(target);
    tell_quit(target);
    downs_wait(&d, 1);
    cr_assert_eq(d.last.reason, XO_EXIT_DESTROYED);
    cr_assert(xo_ref_eq(d.last.actor, target), "DOWN names the remote actor");
    cr_assert_eq(d.last.monitor, mon.id);
    /* An actor that is not there: DOWN at once, from there. */
    xo_ref_t ghost = target; /* the same id, gone now */
    cr_assert_eq(xo_monitor(w, ghost, &mon), 0);
    downs_wait(&d, 2);
    cr_assert_eq(d.last.reason, XO_EXIT_NO_SUCH_ACTOR);
    cr_assert_eq(xo_destroy(w), 0);
}

/* ---- calls in flight when a node is lost ----------------------------- */

struct lost_check {
    xo_runtime_t *rt;
    unsigned n;
    xo_future_t **f;
    struct downs d;
    xo_ref_t watcher;
};

XO_UNUSED static void lost_prepare(struct lost_check *lc,
                                                 xo_runtime_t *rt,
                                                 unsigned node, unsigned n)
{
    lc->rt = rt;
    lc->n = n;
    lc->f = calloc(n, sizeof(*lc->f));
    xo_ref_t holder = remote_lookup(rt, node, "holder");
    lc->watcher = watcher_new(rt, &lc->d);
    xo_monitor_t mon;
    cr_assert_eq(xo_monitor(lc->watcher, holder, &mon), 0);
    for (unsigned i = 0; i < n; i++)
        cr_assert_eq(xo_call(holder, T_PLAIN, &i, sizeof(i), &lc->f[i]), 0);
    /* All of them reached the holder: it answers a call behind them only
       after it took them (it never answers those). */
    xo_ref_t echo = remote_lookup(rt, node, "echo");
    call_echo_ok(echo);
}

XO_UNUSED static void lost_verify(struct lost_check *lc)
{
    for (unsigned i = 0; i < lc->n; i++) {
        cr_assert_eq(xo_future_wait(lc->f[i], -1), 0);
        xo_result_t r;
        int rc = xo_future_result(lc->f[i], 0, &r);
        cr_assert_eq(rc, XO_ENODELOST, "call %u: %s (%s)", i,
                     xo_strerror(rc), r.error);
        xo_future_release(lc->f[i]);
    }
    free(lc->f);
    downs_wait(&lc->d, 1);
    cr_assert_eq(lc->d.last.reason, XO_EXIT_NODE_LOST);
    cr_assert_eq(xo_destroy(lc->watcher), 0);
}

/* ---- node events --------------------------------------------------------- */

#define EVENTS_MAX 64

struct events {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    xo_node_event_t ev[EVENTS_MAX];
    unsigned n, seen;
    int last_reason_down;
    xo_ref_t actor;
};

XO_UNUSED static int events_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    struct events *e;
    memcpy(&e, state, sizeof(e));
    if (m->tag != XO_TAG_NODE_UP && m->tag != XO_TAG_NODE_DOWN)
        return 0;
    const xo_node_event_t *ev = m->data;
    pthread_mutex_lock(&e->lock);
    if (e->n < EVENTS_MAX)
        e->ev[e->n++] = *ev;
    if (m->tag == XO_TAG_NODE_DOWN)
        e->last_reason_down = ev->reason;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    return 0;
}

static const xo_actor_def_t events_def = {
    .name = "events", .state_size = sizeof(void *),
    .on_create = watcher_create, .on_message = events_message,
};

XO_UNUSED static void events_watch(struct events *e,
                                                 xo_runtime_t *rt)
{
    memset(e, 0, sizeof(*e));
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    xo_spawn_opts_t so;
    xo_spawn_opts_init(&so);
    so.arg = &e;
    so.arg_size = sizeof(e);
    cr_assert_eq(xo_spawn(rt, &events_def, &so, &e->actor), 0);
    cr_assert_eq(xo_node_subscribe(e->actor, true), 0);
}

/* Until an event of node with state comes (after those seen before). */
XO_UNUSED static void events_wait(struct events *e,
                                                unsigned node, int state)
{
    pthread_mutex_lock(&e->lock);
    for (;;) {
        while (e->seen < e->n) {
            xo_node_event_t *ev = &e->ev[e->seen++];
            if (ev->node == node && (int)ev->state == state) {
                pthread_mutex_unlock(&e->lock);
                return;
            }
        }
        pthread_cond_wait(&e->cond, &e->lock);
    }
}

XO_UNUSED static void events_stop(struct events *e)
{
    cr_assert_eq(xo_node_subscribe(e->actor, false), 0);
    cr_assert_eq(xo_destroy(e->actor), 0);
}

/* ---- fake peers -------------------------------------------------------- */

struct fake {
    int fd;
    unsigned char mine[XI_WIRE_HELLO_FIXED + XI_WIRE_NAME_MAX];
    size_t mine_size;
    unsigned char theirs[XI_WIRE_HELLO_FIXED + XI_WIRE_NAME_MAX];
    size_t theirs_size;
};

XO_UNUSED static void fake_connect(struct fake *f, unsigned port)
{
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(f->fd, 0);
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(f->fd, (struct sockaddr *)&a, sizeof(a)), 0,
                 "connect: %s", strerror(errno));
}

XO_UNUSED static void fake_close(struct fake *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

XO_UNUSED static void write_all_bytes(int fd, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n > 0) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return; /* closed under us: the test looks at that after */
        b += k;
        n -= (size_t)k;
    }
}

XO_UNUSED static void fake_send(struct fake *f, const struct xi_wire_hdr *h,
                      const void *payload, uint32_t size)
{
    unsigned char hdr[XI_WIRE_HDR];
    struct xi_wire_hdr hh = *h;
    if (hh.version == 0)
        hh.version = XI_WIRE_VERSION;
    hh.size = size;
    xi_wire_put_hdr(hdr, &hh);
    write_all_bytes(f->fd, hdr, sizeof(hdr));
    if (size > 0)
        write_all_bytes(f->fd, payload, size);
}

XO_UNUSED static int read_exact(int fd, void *p, size_t n)
{
    unsigned char *b = p;
    while (n > 0) {
        ssize_t k = recv(fd, b, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* The next frame's header; its payload into buf (what fits; the rest is
   skipped). */
XO_UNUSED static int fake_read_frame(struct fake *f, struct xi_wire_hdr *h,
                           unsigned char *buf, size_t cap)
{
    unsigned char hdr[XI_WIRE_HDR];
    if (read_exact(f->fd, hdr, sizeof(hdr)) != 0)
        return -1;
    xi_wire_get_hdr(hdr, h);
    for (uint32_t left = h->size; left > 0;) {
        unsigned char sink[4096];
        size_t take = left < sizeof(sink) ? left : sizeof(sink);
        unsigned char *to = sink;
        if (buf != NULL && cap >= h->size)
            to = buf + (h->size - left);
        if (read_exact(f->fd, to, take) != 0)
            return -1;
        left -= (uint32_t)take;
    }
    return 0;
}

/* A HELLO in the name of node `name`, incarnation inc, in `role`. */
XO_UNUSED static void fake_hello_as(struct fake *f, const char *name,
                                    uint8_t role, uint64_t inc)
{
    struct xi_wire_hello h = { .magic = XI_WIRE_MAGIC, .role = role,
                               .incarnation = inc };
    cr_assert_eq(xi_auth_random(h.nonce, sizeof(h.nonce)), 0);
    h.name_len = (uint8_t)strlen(name);
    memcpy(h.name, name, h.name_len);
    f->mine_size = xi_wire_put_hello(f->mine, &h);
    struct xi_wire_hdr hdr = { .type = XI_WT_HELLO };
    fake_send(f, &hdr, f->mine, (uint32_t)f->mine_size);
}

/* A HELLO from a new node (a random, odd incarnation). */
XO_UNUSED static void fake_hello(struct fake *f, const char *name, uint8_t role)
{
    uint64_t inc;
    cr_assert_eq(xi_auth_random(&inc, sizeof(inc)), 0);
    fake_hello_as(f, name, role, inc | 1);
}

XO_UNUSED static int fake_read_hello(struct fake *f)
{
    struct xi_wire_hdr h;
    if (fake_read_frame(f, &h, f->theirs, sizeof(f->theirs)) != 0 ||
        h.type != XI_WT_HELLO)
        return -1;
    f->theirs_size = h.size;
    return 0;
}

/* The whole handshake as the connecting end, with the right secret. */
XO_UNUSED static void fake_authenticate(struct fake *f,
                                                      const char *name)
{
    fake_hello(f, name, 0);
    cr_assert_eq(fake_read_hello(f), 0);
    unsigned char mac[XI_WIRE_MAC];
    xi_auth_proof(net_test_secret, XI_AUTH_CONNECTOR, f->mine, f->mine_size,
                  f->theirs, f->theirs_size, mac);
    struct xi_wire_hdr h = { .type = XI_WT_AUTH };
    fake_send(f, &h, mac, sizeof(mac));
    struct xi_wire_hdr got;
    cr_assert_eq(fake_read_frame(f, &got, NULL, 0), 0);
    cr_assert_eq(got.type, XI_WT_AUTH, "the node proved itself");
}

/* Until the node closes the connection (reading what it still sends). */
XO_UNUSED static bool fake_closed(struct fake *f)
{
    unsigned char sink[4096];
    for (;;) {
        ssize_t k = recv(f->fd, sink, sizeof(sink), 0);
        if (k == 0 || (k < 0 && errno != EINTR))
            return true;
    }
}

enum { BAD_KINDS = 11 };

/* The batch limit of the node the bad frames go to (two_up's). */
#define TEST_MAX_BATCH 16u

/* One kind of bad input (kind 10, a frame cut short, is last). */
XO_UNUSED static void fake_send_bad(struct fake *f, int kind)
{
    unsigned char junk[64];
    memset(junk, 0, sizeof(junk));
    struct xi_wire_hdr h = { .type = XI_WT_TELL, .a = 1 | (1ull << 40) };
    switch (kind) {
    case 0: /* a frame past the size limit */
        h.size = XI_WIRE_PAYLOAD_MAX + 1;
        xi_wire_put_hdr(junk, &(struct xi_wire_hdr){
                                  .version = XI_WIRE_VERSION,
                                  .type = XI_WT_TELL,
                                  .size = XI_WIRE_PAYLOAD_MAX + 1 });
        write_all_bytes(f->fd, junk, XI_WIRE_HDR);
        return;
    case 1: /* an unknown type */
        h.type = 99;
        break;
    case 2: /* another protocol version */
        h.version = 7;
        break;
    case 3: /* a chunk outside a chunked message */
        h.type = XI_WT_CHUNK;
        fake_send(f, &h, "x", 1);
        return;
    case 4: /* garbage */
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (unsigned char)(i * 97 + 13);
        write_all_bytes(f->fd, junk, sizeof(junk));
        return;
    case 5: { /* a chunked message claiming 2 GiB */
        unsigned char p[16];
        xi_put_u64(p, (uint64_t)2 << 30);
        h.flags = XI_WF_CHUNKED;
        fake_send(f, &h, p, sizeof(p));
        return;
    }
    case 6: /* a heartbeat with a payload */
        h.type = XI_WT_HEARTBEAT;
        fake_send(f, &h, junk, 8);
        return;
    case 7: /* a batch that changes its target midway */
        h.flags = XI_WF_MORE;
        fake_send(f, &h, NULL, 0);
        h.flags = 0;
        h.a = 2 | (1ull << 40);
        break;
    case 8: /* an answer to a call never made */
        h.type = XI_WT_REPLY;
        h.a = 12345;
        h.flags = XI_WF_EMPTY;
        break;
    case 9: /* a batch one longer than the limit */
        h.flags = XI_WF_MORE;
        for (unsigned i = 0; i < TEST_MAX_BATCH; i++)
            fake_send(f, &h, NULL, 0);
        h.flags = 0;
        break;
    case 10: /* cut short: a header promising more than comes */
        xi_wire_put_hdr(junk, &(struct xi_wire_hdr){
                                  .version = XI_WIRE_VERSION,
                                  .type = XI_WT_TELL, .a = h.a,
                                  .size = 1000 });
        write_all_bytes(f->fd, junk, XI_WIRE_HDR + 10);
        shutdown(f->fd, SHUT_WR);
        return;
    }
    fake_send(f, &h, NULL, 0);
}

/* A listener that answers one node's handshake as the accepting end and
   then holds the connection without reading or answering. */
struct fake_listener {
    int lfd;
    unsigned port;
    pthread_t thread;
    struct fake conn;
    bool started;
};

XO_UNUSED static void fake_listen(struct fake_listener *fl)
{
    memset(fl, 0, sizeof(*fl));
    fl->conn.fd = -1;
    fl->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fl->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(fl->lfd, 4), 0);
    socklen_t len = sizeof(a);
    cr_assert_eq(getsockname(fl->lfd, (struct sockaddr *)&a, &len), 0);
    fl->port = ntohs(a.sin_port);
}

XO_UNUSED static void *fake_accept_main(void *arg)
{
    struct fake_listener *fl = arg;
    struct fake *f = &fl->conn;
    int fd = accept(fl->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    /* A small receive buffer: the sender's side fills up sooner. */
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    f->fd = fd;
    if (fake_read_hello(f) != 0)
        return NULL;
    fake_hello(f, "fake", 1);
    struct xi_wire_hdr h;
    unsigned char mac[XI_WIRE_MAC];
    if (fake_read_frame(f, &h, mac, sizeof(mac)) != 0 ||
        h.type != XI_WT_AUTH)
        return NULL;
    xi_auth_proof(net_test_secret, XI_AUTH_ACCEPTOR, f->theirs,
                  f->theirs_size, f->mine, f->mine_size, mac);
    struct xi_wire_hdr a = { .type = XI_WT_AUTH };
    fake_send(f, &a, mac, sizeof(mac));
    return NULL; /* and never reads again */
}

XO_UNUSED static void fake_accept_async(struct fake_listener *fl)
{
    cr_assert_eq(pthread_create(&fl->thread, NULL, fake_accept_main, fl), 0);
    fl->started = true;
}

XO_UNUSED static void fake_listener_close(
    struct fake_listener *fl)
{
    if (fl->started)
        pthread_join(fl->thread, NULL);
    fake_close(&fl->conn);
    close(fl->lfd);
}

XO_UNUSED static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

#endif /* XO_TEST_NET_COMMON_H */
