/*
 * net_actors.h -- the actors the net suite talks to on the other node,
 * in-process (a second runtime) or in the node program (net_node.c): the
 * same definitions on both, registered for remote spawn and spawned under
 * fixed uids by net_actors_setup.
 *
 *   echo      a call: the same tag and payload back, or an error for
 *             T_FAIL; a tell: the same back to its sender (so the sender
 *             checks order and content).
 *   counter   counts what it is sent, by tag, and checks that the seqs of
 *             each sender arrive in order and that blobs hold their
 *             pattern; T_GET answers with its struct counts.
 *   holder    keeps every call deferred and unanswered (calls in flight
 *             when a node is lost).
 *   streamer  T_STREAM {n}: n parts {0..n-1}, then the end; T_WAIT_CANCEL:
 *             runs until it sees the cancel, then fails with ECANCELED.
 */
#ifndef XO_TEST_NET_ACTORS_H
#define XO_TEST_NET_ACTORS_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "xoscar/xoscar.h"

enum {
    T_SEQ = 1,     /* payload: uint64_t seq, from one sender in order */
    T_BLOB,        /* payload: bytes b[i] = (i * 31 + size) & 0xFF */
    T_GET,         /* call: struct counts back */
    T_FAIL,        /* call: fails with XO_EINVAL, "refused <n>" */
    T_STREAM,      /* call: uint32_t n parts */
    T_WAIT_CANCEL, /* call: runs until cancelled */
    T_PLAIN,       /* anything: counted only */
    T_QUIT,        /* the counter destroys itself */
    T_NTAGS
};

#define COUNTS_LOG 16

struct counts {
    uint64_t by_tag[T_NTAGS];
    uint32_t log[COUNTS_LOG];  /* the first messages' tags, in order */
    uint32_t nlog;
    uint64_t out_of_order;   /* seqs that were not the next one */
    uint64_t bad_blobs;
    uint64_t blob_bytes;
};

static inline unsigned char blob_byte(size_t i, size_t size)
{
    return (unsigned char)((i * 31u + size) & 0xFFu);
}

static inline void blob_fill(unsigned char *p, size_t size)
{
    for (size_t i = 0; i < size; i++)
        p[i] = blob_byte(i, size);
}

/* ---- echo ---- */

static int echo_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    if (m->request != NULL) {
        if (m->tag == T_FAIL)
            return xo_fail(ctx, XO_EINVAL, "refused %u", m->size);
        return xo_reply(m->request, m->tag, m->data, m->size);
    }
    if (xo_ref_is_none(m->sender))
        return 0;
    return xo_tell(m->sender, m->tag, m->data, m->size);
}

static const xo_actor_def_t net_echo_def = {
    .name = "echo", .on_message = echo_message,
};

/* ---- counter ---- */

#define COUNTER_SENDERS 16

struct counter {
    struct counts c;
    uint64_t sender[COUNTER_SENDERS];
    uint64_t next_seq[COUNTER_SENDERS];
    uint64_t none_next; /* sends from outside any actor */
};

static uint64_t *counter_next(struct counter *s, xo_ref_t from)
{
    if (from.id == 0)
        return &s->none_next;
    for (unsigned i = 0; i < COUNTER_SENDERS; i++) {
        if (s->sender[i] == from.id)
            return &s->next_seq[i];
        if (s->sender[i] == 0) {
            s->sender[i] = from.id;
            return &s->next_seq[i];
        }
    }
    return NULL;
}

static int counter_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct counter *s = state;
    if (m->tag < T_NTAGS)
        s->c.by_tag[m->tag]++;
    if (s->c.nlog < COUNTS_LOG && m->tag != T_GET)
        s->c.log[s->c.nlog++] = m->tag;
    if (m->tag == T_QUIT)
        return xo_destroy(xo_self(ctx));
    if (m->tag == T_SEQ) {
        uint64_t seq;
        uint64_t *next = counter_next(s, m->sender);
        if (m->size != sizeof(seq) || next == NULL) {
            s->c.out_of_order++;
        } else {
            memcpy(&seq, m->data, sizeof(seq));
            if (seq != *next)
                s->c.out_of_order++;
            *next = seq + 1;
        }
    } else if (m->tag == T_BLOB) {
        const unsigned char *p = m->data;
        for (size_t i = 0; i < m->size; i++)
            if (p[i] != blob_byte(i, m->size)) {
                s->c.bad_blobs++;
                break;
            }
        s->c.blob_bytes += m->size;
    }
    if (m->request != NULL && m->tag == T_GET)
        return xo_reply(m->request, T_GET, &s->c, sizeof(s->c));
    return 0;
}

static const xo_actor_def_t net_counter_def = {
    .name = "counter", .state_size = sizeof(struct counter),
    .on_message = counter_message,
};

/* ---- holder ---- */

#define HOLDER_MAX 4096

struct holder {
    xo_request_t *held[HOLDER_MAX];
    unsigned n;
};

static int holder_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    struct holder *h = state;
    if (m->request != NULL && h->n < HOLDER_MAX)
        h->held[h->n++] = xo_request_defer(m->request);
    return 0;
}

/* Its held calls are answered when it goes (a runtime that stops answers
   them), so nothing is left behind. */
static int holder_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    struct holder *h = state;
    for (unsigned i = 0; i < h->n; i++)
        if (h->held[i] != NULL)
            (void)xo_reply_error(h->held[i], XO_ECLOSED, "holder ends");
    return 0;
}

static const xo_actor_def_t net_holder_def = {
    .name = "holder", .state_size = sizeof(struct holder),
    .on_message = holder_message, .on_destroy = holder_destroy,
};

/* ---- streamer ---- */

/* Set while a T_WAIT_CANCEL handler runs (in-process tests watch it). */
static _Atomic int streamer_waiting;

static int streamer_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    if (m->request == NULL)
        return 0;
    if (m->tag == T_STREAM) {
        uint32_t n = 0;
        if (m->size == sizeof(n))
            memcpy(&n, m->data, sizeof(n));
        for (uint32_t i = 0; i < n; i++) {
            int rc = xo_reply_part(m->request, T_STREAM, &i, sizeof(i));
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    if (m->tag == T_WAIT_CANCEL) {
        atomic_store(&streamer_waiting, 1);
        struct timespec ms = { 0, 1000000 };
        for (int i = 0; i < 20000 && !xo_request_cancelled(m->request); i++)
            nanosleep(&ms, NULL);
        atomic_store(&streamer_waiting, 0);
        if (xo_request_cancelled(m->request))
            return xo_fail(ctx, XO_ECANCELED, "saw the cancel");
        return xo_fail(ctx, XO_ETIMEDOUT, "no cancel came");
    }
    return 0;
}

static const xo_actor_def_t net_streamer_def = {
    .name = "streamer", .on_message = streamer_message,
};

/* Register the four types and spawn one of each under its name as uid.
   0, or the first error. */
static inline int net_actors_setup(xo_runtime_t *rt)
{
    static const struct {
        const char *name;
        const xo_actor_def_t *def;
    } all[] = { { "echo", &net_echo_def },
                { "counter", &net_counter_def },
                { "holder", &net_holder_def },
                { "streamer", &net_streamer_def } };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        int rc = xo_node_register(rt, all[i].name, all[i].def, NULL);
        if (rc != 0)
            return rc;
        xo_spawn_opts_t so;
        xo_spawn_opts_init(&so);
        so.uid = all[i].name;
        xo_ref_t r;
        if ((rc = xo_spawn(rt, all[i].def, &so, &r)) != 0)
            return rc;
    }
    return 0;
}

/* The test network's secret, and its timings: short, so that the suites
   stay short; loss_ns is each test's own. */
static const unsigned char net_test_secret[XO_NODE_SECRET_SIZE] = {
    0x5e, 0xc2, 0x37, 0x11, 0x9a, 0x04, 0xd8, 0x6b, 0x21, 0x73, 0xee,
    0x48, 0x90, 0x3c, 0xb5, 0x0f, 0x66, 0xa1, 0x2d, 0xc9, 0x7e, 0x13,
    0x58, 0xf4, 0x0b, 0x87, 0x3a, 0xd2, 0x69, 0x1e, 0xb0, 0x45,
};

static inline void net_test_config(xo_node_config_t *cfg, uint64_t loss_ns)
{
    xo_node_config_init(cfg);
    memcpy(cfg->secret, net_test_secret, sizeof(cfg->secret));
    cfg->heartbeat_ns = loss_ns / 8;
    cfg->loss_timeout_ns = loss_ns;
    cfg->handshake_timeout_ns = 2000000000ull;
    cfg->reconnect_min_ns = 10000000ull;  /* 10 ms */
    cfg->reconnect_max_ns = 200000000ull; /* 200 ms */
    cfg->on_log = NULL;
}

#endif /* XO_TEST_NET_ACTORS_H */
