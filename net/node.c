/*
 * node.c -- a runtime as a node of the network: the API (xo_node_*), the
 * route that takes every send to another node's actor, the hooks on the
 * futures of calls that cross, and the node's agent (docs/net.md).
 *
 * The send path. The runtime's push point hands the route every chain
 * whose ref names another node, inside the sender's read-side section.
 * The route checks the peer is up, counts the chain's bytes against the
 * peer's bound, registers a call's wire ids, and pushes one entry (the
 * destination, the chain) into the peer's ring; then it wakes the I/O
 * thread if that sleeps. It never blocks: a full ring or too many queued
 * bytes is XO_EFULL, a peer that is not up XO_ENODELOST. Everything a
 * sender registers or pushes is done inside its section, so the I/O
 * thread, after it takes a peer down, waits one grace period and then
 * finds every such push in the ring and every such call in the table: it
 * drops the first and fails the second, and nothing is left behind.
 *
 * Calls. A call to another node's actor keeps its future here; its items
 * are marked running (a cancel then asks the callee instead of deciding
 * alone, as a call already in a local handler does) and its hook sends
 * the callee a CANCEL when the caller cancels or leaves it. On the
 * callee's node a proxy future stands for the caller: the callee answers
 * it as any call, and its hook puts the proxy in the outbox, where the
 * I/O thread picks the answer up and sends it back.
 *
 * The agent. What the I/O thread must not do itself runs in an actor of
 * the node's own, "xoscar.node": a peer's spawns (on_create is user
 * code, and may wait), and the monitors peers ask for (a watcher must be
 * a local actor; its DOWN becomes a DOWN frame, sent through the ring
 * behind the messages the ended actor sent before its end).
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"

/* The I/O thread's net, on that thread only. */
static __thread const struct xi_net *io_net;

bool xi_net_on_io(const struct xi_net *net)
{
    return io_net == net;
}

void xi_net_set_io_thread(const struct xi_net *net);
void xi_net_set_io_thread(const struct xi_net *net)
{
    io_net = net;
}

/* ---- config -------------------------------------------------------- */

void xo_node_config_init(xo_node_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen = true;
    cfg->heartbeat_ns = 1000000000ull;        /* 1 s */
    cfg->loss_timeout_ns = 5000000000ull;     /* 5 s */
    cfg->handshake_timeout_ns = 5000000000ull;
    cfg->reconnect = true;
    cfg->reconnect_min_ns = 100000000ull;     /* 100 ms */
    cfg->reconnect_max_ns = 10000000000ull;   /* 10 s */
    cfg->send_queue = 16384;
    cfg->send_queue_bytes = (size_t)64 << 20;
    cfg->max_message = (size_t)1 << 30;
    cfg->max_batch = 65536;
    cfg->max_incoming_calls = 1u << 20;
    cfg->io_spin_ns = 50000;                  /* 50 us */
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int xo_node_secret_parse(const char *hex,
                         unsigned char out[XO_NODE_SECRET_SIZE])
{
    if (hex == NULL || out == NULL ||
        strlen(hex) != 2 * XO_NODE_SECRET_SIZE)
        return XO_EINVAL;
    unsigned char tmp[XO_NODE_SECRET_SIZE];
    for (unsigned i = 0; i < XO_NODE_SECRET_SIZE; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return XO_EINVAL;
        tmp[i] = (unsigned char)(hi << 4 | lo);
    }
    memcpy(out, tmp, sizeof(tmp));
    return 0;
}

static bool config_valid(const xo_node_config_t *c)
{
    static const unsigned char zero[XO_NODE_SECRET_SIZE];
    if (memcmp(c->secret, zero, sizeof(zero)) == 0)
        return false;
    if (c->name != NULL &&
        (c->name[0] == '\0' || strlen(c->name) > XO_NODE_NAME_MAX))
        return false;
    if (c->listen_port > 65535 || c->heartbeat_ns == 0 ||
        c->loss_timeout_ns < 2 * c->heartbeat_ns ||
        c->handshake_timeout_ns == 0)
        return false;
    if (c->reconnect && (c->reconnect_min_ns == 0 ||
                         c->reconnect_max_ns < c->reconnect_min_ns))
        return false;
    if (c->send_queue < 4 || c->send_queue > (1u << 24) ||
        c->send_queue_bytes == 0)
        return false;
    if (c->socket_buffer > (size_t)1 << 30)
        return false;
    if (c->max_message < XI_WIRE_PAYLOAD_MAX ||
        c->max_message > XO_MSG_MAX_SIZE || c->max_batch == 0 ||
        c->max_incoming_calls == 0)
        return false;
    return true;
}

/* ---- the net of a runtime -------------------------------------------- */

/* Set under stop_lock, once: read it there. */
static struct xi_net *net_of(xo_runtime_t *rt)
{
    if (rt == NULL)
        return NULL;
    pthread_mutex_lock(&rt->stop_lock);
    struct xi_net *net = rt->net.arg;
    pthread_mutex_unlock(&rt->stop_lock);
    return net;
}

/* The peer with that number, once given (acquire: its fields are set
   before it is published). */
static struct xi_peer *peer_at(struct xi_net *net, unsigned node)
{
    if (node == 0 || node > XO_NODES_MAX)
        return NULL;
    /* acquire: pairs with the release that published the slot. */
    return atomic_load_explicit(&net->peers[node], memory_order_acquire);
}

void xi_net_log(struct xi_net *net, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (net->cfg.on_log != NULL)
        net->cfg.on_log(net->rt, line, net->cfg.on_log_user);
    else
        fprintf(stderr, "xoscar net [%s]: %s\n", net->name, line);
}

void xi_net_wake(struct xi_net *net)
{
    /* seq_cst: the push before it (a ring's, a queue's exchange) and this
       load are ordered against the I/O thread's store of io_sleeping and
       its look at the queues (Dekker): either it sees the push, or we see
       it asleep. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&net->io_sleeping, memory_order_relaxed) &&
        atomic_exchange(&net->io_sleeping, 0)) {
        uint64_t one = 1;
        ssize_t n = write(net->evfd, &one, sizeof(one));
        (void)n; /* a full counter still wakes it */
    }
}

int xi_net_post(struct xi_net *net, struct xi_ctl *c)
{
    /* Under the lock the I/O thread takes to say it stops: a request is
       either in the queue before its last look, or refused. */
    pthread_mutex_lock(&net->lock);
    bool stopped = net->stopped;
    if (!stopped)
        (void)xi_mpscq_push(&net->ctlq, &c->node);
    pthread_mutex_unlock(&net->lock);
    if (stopped) {
        xi_mem_free(&net->rt->mem, c, sizeof(*c) + c->size);
        return XO_ECLOSED;
    }
    xi_net_wake(net);
    return 0;
}

static struct xi_ctl *ctl_new(xo_runtime_t *rt, enum xi_ctl_kind kind,
                              uint32_t payload)
{
    struct xi_ctl *c = xi_mem_zalloc(&rt->mem, sizeof(*c) + payload);
    if (c != NULL) {
        c->kind = kind;
        c->size = payload;
    }
    return c;
}

/* A control frame for p's connection `gen` (any thread). */
static int post_frame(struct xi_peer *p, uint64_t gen,
                      const struct xi_wire_hdr *h, const void *payload,
                      uint32_t size)
{
    struct xi_net *net = p->net;
    struct xi_ctl *c = ctl_new(net->rt, XI_CTL_FRAME, size);
    if (c == NULL)
        return XO_ENOMEM;
    c->peer = p;
    c->gen = gen;
    c->h = *h;
    c->h.version = XI_WIRE_VERSION;
    c->h.size = size;
    if (size > 0)
        memcpy(c->payload, payload, size);
    return xi_net_post(net, c);
}

/* Inside a read-side section: p is up, on connection *gen. */
static bool peer_up(struct xi_peer *p, uint64_t *gen)
{
    /* acquire: pairs with the I/O thread's release store of UP; the
       generation was stored before it. */
    if (atomic_load_explicit(&p->state, memory_order_acquire) != XO_NODE_UP)
        return false;
    if (gen != NULL)
        *gen = atomic_load_explicit(&p->conn_gen, memory_order_relaxed);
    return true;
}

/* ---- the call table (caller side) ---------------------------------------- */

/* Under calls_lock: count free ids from next_call on (never 0). */
static int take_ids(struct xi_peer *p, struct xi_ncall *c, uint32_t count)
{
    for (;;) {
        uint32_t base = p->next_call;
        if (base == 0 || (uint64_t)base + count > UINT32_MAX) {
            p->next_call = 1; /* wrapped: ids of old calls may remain */
            continue;
        }
        uint32_t i = 0;
        while (i < count && xi_map_get(&p->calls, base + i) == NULL)
            i++;
        if (i < count) {
            p->next_call = base + i + 1; /* past the one in use */
            continue;
        }
        for (i = 0; i < count; i++)
            if (xi_map_put(&p->calls, base + i, c) != 0) {
                while (i-- > 0)
                    (void)xi_map_del(&p->calls, base + i);
                return XO_ENOMEM;
            }
        c->base = base;
        p->next_call = base + count;
        return 0;
    }
}

/*
 * Inside a read-side section, p up: register f's `count` items as a call
 * in flight to p, give f the caller's hook, mark its items running. The
 * ids are c->base onward; *out is the record (for an undo).
 */
static int call_register(struct xi_peer *p, struct xo_future *f,
                         uint32_t count, struct xi_ncall **out)
{
    xo_runtime_t *rt = p->net->rt;
    size_t size = sizeof(struct xi_ncall) + (count + 7u) / 8u;
    struct xi_ncall *c = xi_mem_zalloc(&rt->mem, size);
    if (c == NULL)
        return XO_ENOMEM;
    c->f = f;
    c->count = c->open = count;
    pthread_mutex_lock(&p->calls_lock);
    int rc = take_ids(p, c, count);
    pthread_mutex_unlock(&p->calls_lock);
    if (rc != 0) {
        xi_mem_free(&rt->mem, c, size);
        return rc;
    }
    /* relaxed: the record's reference, taken while the caller's holds f. */
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    xi_future_set_hook(f, xi_net_caller_hook, p, c->base);
    for (uint32_t i = 0; i < count; i++)
        /* relaxed: nobody else has f yet; the push publishes it. */
        atomic_store_explicit(&f->items[i].phase, XI_ITEM_RUNNING,
                              memory_order_relaxed);
    *out = c;
    return 0;
}

static void ncall_free(xo_runtime_t *rt, struct xi_ncall *c)
{
    xi_mem_free(&rt->mem, c,
                sizeof(struct xi_ncall) + (c->count + 7u) / 8u);
}

/* Undo a registration whose push failed (the caller keeps f). */
static void call_unregister(struct xi_peer *p, struct xi_ncall *c)
{
    pthread_mutex_lock(&p->calls_lock);
    for (uint32_t i = 0; i < c->count; i++)
        (void)xi_map_del(&p->calls, c->base + i);
    pthread_mutex_unlock(&p->calls_lock);
    xi_future_unref(c->f);
    ncall_free(p->net->rt, c);
}

bool xi_net_call_answer(struct xi_peer *p, uint32_t id, int status,
                        const char *error, struct xi_envelope *reply)
{
    xo_runtime_t *rt = p->net->rt;
    pthread_mutex_lock(&p->calls_lock);
    struct xi_ncall *c = xi_map_get(&p->calls, id);
    uint32_t i = c != NULL ? id - c->base : 0;
    bool known = c != NULL && !(c->answered[i / 8] & (1u << (i % 8)));
    bool last = false;
    if (known) {
        c->answered[i / 8] |= (unsigned char)(1u << (i % 8));
        (void)xi_map_del(&p->calls, id);
        last = --c->open == 0;
    }
    pthread_mutex_unlock(&p->calls_lock);
    if (!known) {
        if (reply != NULL)
            xi_envelope_free(rt, reply);
        return false;
    }
    if (reply != NULL)
        reply->msg.sender = (xo_ref_t){ rt, c->f->items[i].callee };
    /* A timeout or cancel may have completed it already: then the reply
       is freed there. */
    (void)xi_future_complete_item(c->f, i, status, error, reply, true);
    if (last) {
        xi_future_unref(c->f);
        ncall_free(rt, c);
    }
    return true;
}

struct xi_ncall *xi_net_call_find(struct xi_peer *p, uint32_t id)
{
    pthread_mutex_lock(&p->calls_lock);
    struct xi_ncall *c = xi_map_get(&p->calls, id);
    pthread_mutex_unlock(&p->calls_lock);
    return c;
}

void xi_net_calls_fail(struct xi_peer *p, int code, const char *why)
{
    xo_runtime_t *rt = p->net->rt;
    pthread_mutex_lock(&p->calls_lock);
    struct xi_map all = p->calls;
    p->calls = (struct xi_map){ NULL, 0, 0 };
    pthread_mutex_unlock(&p->calls_lock);
    /* A record sits under each of its open ids: list it once (open goes
       to 0 at its first), then settle and free each. */
    struct xi_ncall *list = NULL;
    for (size_t s = 0; s < xi_map_cap(&all); s++) {
        struct xi_ncall *c = all.slots[s].value;
        if (all.slots[s].key == 0 || c->open == 0)
            continue;
        c->open = 0;
        c->next = list;
        list = c;
    }
    xi_map_free(&all);
    while (list != NULL) {
        struct xi_ncall *c = list;
        list = c->next;
        for (uint32_t i = 0; i < c->count; i++)
            if (!(c->answered[i / 8] & (1u << (i % 8))))
                (void)xi_future_complete_item(c->f, i, code, why, NULL,
                                              false);
        xi_future_unref(c->f);
        ncall_free(rt, c);
    }
}

/* The caller's hook: a cancel, an abandonment, or a completion that is
   not the peer's answer (a timeout) tells the callee to stop, unless the
   call is over (its answer came, or it was failed by a loss). */
void xi_net_caller_hook(struct xo_future *f, enum xi_hook_what what)
{
    struct xi_peer *p = f->hook_arg;
    if (what == XI_HOOK_FREED)
        return;
    if (what == XI_HOOK_CHANGED && xi_net_on_io(p->net))
        return; /* the I/O thread: the peer's answer, or a loss */
    /* acquire: pairs with finish()'s release of DONE. */
    uint32_t flags = atomic_load_explicit(&f->flags, memory_order_acquire);
    if ((what == XI_HOOK_CHANGED) != ((flags & XI_FUT_DONE) != 0))
        return; /* a part; or a cancel or release after the answer */
    /* Any connection: an id the callee does not know is ignored there. */
    uint64_t gen = atomic_load_explicit(&p->conn_gen, memory_order_relaxed);
    struct xi_wire_hdr h = { .type = XI_WT_CANCEL, .a = f->hook_id,
                             .b = f->count };
    (void)post_frame(p, gen, &h, NULL, 0);
}

/* ---- the route ------------------------------------------------------------ */

/* The bytes a chain puts in the ring (net.h: xi_net_env_bytes), or why
   it cannot cross: XO_EINVAL, a message over the largest payload that
   crosses (max_message: a buffer message's buffer and data together);
   XO_ENOSYS, an envelope with more than its bytes that is not a buffer
   message. relaxed loads: the chain is the sender's own until the push. */
static int chain_bytes(const struct xi_net *net, struct xi_envelope *first,
                       size_t *bytes)
{
    size_t n = 0;
    for (struct xi_envelope *e = first; e != NULL;
         e = (struct xi_envelope *)atomic_load_explicit(
             &e->item.node.next, memory_order_relaxed)) {
        if ((e->item.flags & XI_ENV_TAILED) && xi_bufmsg_size(e) == 0)
            return XO_ENOSYS;
        size_t one = xi_net_env_bytes(e);
        if (one - XI_WIRE_HDR > net->cfg.max_message)
            return XO_EINVAL;
        n += one;
    }
    *bytes = n;
    return 0;
}

/* Count bytes against p's bound; false: over it. */
static bool reserve_bytes(struct xi_peer *p, size_t bytes)
{
    /* relaxed: a bound, not an order (see struct xi_peer). */
    uint64_t before = atomic_fetch_add_explicit(&p->queued_bytes, bytes,
                                                memory_order_relaxed);
    if (before == 0 || before + bytes <= p->net->cfg.send_queue_bytes)
        return true;
    atomic_fetch_sub_explicit(&p->queued_bytes, bytes, memory_order_relaxed);
    return false;
}

static int push_entry(struct xi_peer *p, uint64_t to,
                      struct xi_envelope *first, size_t bytes)
{
    if (!reserve_bytes(p, bytes))
        return XO_EFULL;
    struct xi_sendq_entry e = { to, first };
    if (!xi_ring_push(&p->ring, &e)) {
        atomic_fetch_sub_explicit(&p->queued_bytes, bytes,
                                  memory_order_relaxed);
        return XO_EFULL;
    }
    xi_net_wake(p->net);
    return 0;
}

int xi_net_push_special(struct xi_peer *p, uint64_t to,
                        struct xi_envelope *env, size_t bytes)
{
    if (!peer_up(p, NULL))
        return XO_ENODELOST;
    /* relaxed: the ring's push publishes the chain. */
    atomic_store_explicit(&env->item.node.next, NULL, memory_order_relaxed);
    return push_entry(p, to, env, bytes);
}

static int route(xo_runtime_t *rt, xo_ref_t to, struct xi_envelope *first,
                 struct xi_envelope *last, void *arg)
{
    struct xi_net *net = arg;
    (void)rt;
    struct xi_peer *p = peer_at(net, xo_ref_node(to));
    if (p == NULL)
        return XO_ENOTEXIST;
    if (!peer_up(p, NULL))
        return XO_ENODELOST;
    /* relaxed: the ring's push publishes the chain (see envelope.h). */
    atomic_store_explicit(&last->item.node.next, NULL, memory_order_relaxed);
    size_t bytes;
    int why = chain_bytes(net, first, &bytes);
    if (why != 0)
        return why; /* the sender keeps the chain */
    struct xi_ncall *call = NULL;
    if (first->item.kind == XI_K_CALL) {
        struct xo_future *f = xi_request_future(first->msg.request);
        int rc = call_register(p, f, f->count, &call);
        if (rc != 0)
            return rc;
    }
    int rc = push_entry(p, to.id, first, bytes);
    if (rc != 0 && call != NULL)
        call_unregister(p, call);
    return rc;
}

/* ---- the proxy's hook (callee side) ----------------------------------------- */

void xi_net_proxy_hook(struct xo_future *f, enum xi_hook_what what)
{
    struct xi_proxy *px = f->hook_arg;
    if (what == XI_HOOK_FREED) {
        xi_mem_free(&f->rt->mem, px, sizeof(*px));
        return;
    }
    if (what != XI_HOOK_CHANGED)
        return;
    /* acq_rel: one poster per drain; the drain's exchange back to false
       comes before it reads the future. */
    if (atomic_exchange_explicit(&px->posted, true, memory_order_acq_rel))
        return;
    /* The outbox's reference, dropped by the I/O thread after the drain
       (relaxed: the completer's own reference keeps f alive now). */
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    (void)xi_mpscq_push(&px->peer->net->outbox, &px->node);
    xi_net_wake(px->peer->net);
}

/* ---- monitors ---------------------------------------------------------------- */

/* The remote-monitor seam (runtime.h): inside xo_monitor's section. */
static int watch_remote(xo_runtime_t *rt, uint64_t target, void *arg)
{
    struct xi_net *net = arg;
    struct xi_peer *p = peer_at(net, xi_ref_node(target));
    if (p == NULL || !peer_up(p, NULL))
        return XO_ENODELOST;
    /* Through the ring: in order with what is sent after it. */
    struct xi_envelope *env;
    if (xi_envelope_new(rt, 0, sizeof(target), &env) != 0)
        return XO_ENOMEM;
    memcpy(env->msg.data, &target, sizeof(target));
    int rc = xi_net_push_special(p, XI_SQ_MONITOR, env, XI_WIRE_HDR);
    if (rc != 0)
        xi_envelope_free(rt, env);
    return rc;
}

/* ---- peers, events ---------------------------------------------------------- */

struct xi_peer *xi_net_peer_for(struct xi_net *net, const char *name,
                                uint64_t incarnation, bool give)
{
    xo_runtime_t *rt = net->rt;
    pthread_mutex_lock(&net->lock);
    struct xi_peer *p = NULL;
    for (unsigned i = 1; i <= net->npeers; i++) {
        /* relaxed: stored under the lock we hold. */
        struct xi_peer *q = atomic_load_explicit(&net->peers[i],
                                                 memory_order_relaxed);
        if (q->incarnation == incarnation && strcmp(q->name, name) == 0) {
            p = q;
            break;
        }
    }
    if (p == NULL && give && net->npeers < XO_NODES_MAX) {
        unsigned size = 4;
        while (size < net->cfg.send_queue)
            size <<= 1;
        p = xi_mem_zalloc(&rt->mem, sizeof(*p));
        struct xi_sendq_entry *buf =
            p != NULL ? xi_mem_zalloc(&rt->mem, sizeof(*buf) * size) : NULL;
        if (buf == NULL) {
            if (p != NULL)
                xi_mem_free(&rt->mem, p, sizeof(*p));
            p = NULL;
        } else {
            p->net = net;
            p->node = ++net->npeers;
            snprintf(p->name, sizeof(p->name), "%s", name);
            p->incarnation = incarnation;
            p->next_call = 1;
            xi_ring_init(&p->ring, size, buf);
            pthread_mutex_init(&p->calls_lock, NULL);
            /* release: the peer's fields before its slot. */
            atomic_store_explicit(&net->peers[p->node], p,
                                  memory_order_release);
        }
    }
    pthread_mutex_unlock(&net->lock);
    return p;
}

static void peer_free(struct xi_net *net, struct xi_peer *p)
{
    xo_runtime_t *rt = net->rt;
    unsigned size = p->ring.ring.size;
    xi_mem_free(&rt->mem, p->ring.buf, sizeof(*p->ring.buf) * size);
    xi_map_free(&p->calls);
    xi_map_free(&p->proxies);
    pthread_mutex_destroy(&p->calls_lock);
    xi_mem_free(&rt->mem, p, sizeof(*p));
}

void xi_net_event(struct xi_net *net, struct xi_peer *p, int state,
                  int reason)
{
    xo_runtime_t *rt = net->rt;
    xo_node_event_t ev = { .node = p->node, .state = state,
                           .reason = reason };
    snprintf(ev.name, sizeof(ev.name), "%s", p->name);
    if (net->cfg.on_event != NULL)
        net->cfg.on_event(rt, &ev, net->cfg.on_event_user);
    uint32_t tag = state == XO_NODE_UP ? XO_TAG_NODE_UP : XO_TAG_NODE_DOWN;
    pthread_mutex_lock(&net->lock);
    for (size_t i = 0; i < net->nsubscribers;) {
        struct xi_envelope *env;
        int rc = xi_envelope_new(rt, 0, sizeof(ev), &env);
        if (rc == 0) {
            env->msg.tag = tag;
            memcpy(env->msg.data, &ev, sizeof(ev));
            rc = xi_enqueue((xo_ref_t){ rt, net->subscribers[i] }, env);
            if (rc != 0)
                xi_envelope_free(rt, env);
        }
        if (rc == XO_ENOTEXIST) /* gone: forget it */
            net->subscribers[i] = net->subscribers[--net->nsubscribers];
        else
            i++;
    }
    pthread_mutex_unlock(&net->lock);
}

/* ---- the agent ------------------------------------------------------------- */

struct agent {
    struct xi_net *net;
    struct xi_envelope *waiting;  /* DOWN notices for full rings, in order */
    struct xi_envelope *waiting_last;
    bool retry_armed;
};

static int agent_create(xo_ctx_t *ctx, void *state, const void *arg,
                        size_t size)
{
    (void)ctx;
    (void)size;
    struct agent *a = state;
    memcpy(&a->net, arg, sizeof(a->net));
    return 0;
}

static int agent_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    struct agent *a = state;
    xo_runtime_t *rt = a->net->rt;
    while (a->waiting != NULL) {
        /* relaxed: the waiting list is the agent's own. */
        struct xi_envelope *next = (struct xi_envelope *)atomic_load_explicit(
            &a->waiting->item.node.next, memory_order_relaxed);
        xi_envelope_free(rt, a->waiting);
        a->waiting = next;
    }
    return 0;
}

/* A registered type, copied out under the lock. */
static bool type_find(struct xi_net *net, const char *name, size_t len,
                      const xo_actor_def_t **def, xo_spawn_opts_t *opts)
{
    bool found = false;
    pthread_mutex_lock(&net->lock);
    for (struct xi_type *t = net->types; t != NULL; t = t->next)
        if (strlen(t->name) == len && memcmp(t->name, name, len) == 0) {
            *def = t->def;
            *opts = t->opts;
            found = true;
            break;
        }
    pthread_mutex_unlock(&net->lock);
    return found;
}

static int agent_spawn(xo_ctx_t *ctx, struct agent *a, const xo_msg_t *m)
{
    struct xi_wire_spawn s;
    struct xi_wire_fault fault;
    if (xi_wire_get_spawn(m->data, m->size, &s, &fault) != 0)
        return xo_fail(ctx, XO_EPROTO, "%s", fault.why);
    const xo_actor_def_t *def;
    xo_spawn_opts_t opts;
    if (!type_find(a->net, s.type, s.type_len, &def, &opts))
        return xo_fail(ctx, XO_ENOTEXIST, "no type \"%.*s\" registered on "
                                          "node %s",
                       (int)s.type_len, s.type, a->net->name);
    char uid[XO_UID_MAX + 1];
    if (s.uid != NULL) {
        if (s.uid_len > XO_UID_MAX)
            return xo_fail(ctx, XO_EINVAL, "a uid of %zu bytes", s.uid_len);
        memcpy(uid, s.uid, s.uid_len);
        uid[s.uid_len] = '\0';
        opts.uid = uid;
    }
    opts.arg = s.arg_size > 0 ? s.arg : NULL;
    opts.arg_size = s.arg_size;
    xo_ref_t ref;
    int rc = xo_spawn(xo_ctx_runtime(ctx), def, &opts, &ref);
    if (rc != 0)
        return xo_fail(ctx, rc, "spawn of \"%.*s\" on node %s: %s",
                       (int)s.type_len, s.type, a->net->name,
                       xo_strerror(rc));
    return xo_reply(m->request, 0, &ref.id, sizeof(ref.id));
}

static void agent_retry(xo_ctx_t *ctx, struct agent *a);

/* Send a DOWN notice through the peer's ring, behind what the ended actor
   sent; a full ring keeps it (and those after it) for a retry. */
static void agent_send_down(xo_ctx_t *ctx, struct agent *a,
                            struct xi_envelope *env)
{
    if (a->waiting != NULL) { /* relaxed: the agent's own list */
        atomic_store_explicit(&a->waiting_last->item.node.next,
                              &env->item.node, memory_order_relaxed);
        a->waiting_last = env;
        return;
    }
    atomic_store_explicit(&env->item.node.next, NULL, memory_order_relaxed);
    a->waiting = a->waiting_last = env;
    agent_retry(ctx, a);
}

static void agent_retry(xo_ctx_t *ctx, struct agent *a)
{
    xo_runtime_t *rt = xo_ctx_runtime(ctx);
    while (a->waiting != NULL) {
        struct xi_envelope *env = a->waiting;
        /* relaxed: the agent's own list. */
        struct xi_envelope *next = (struct xi_envelope *)atomic_load_explicit(
            &env->item.node.next, memory_order_relaxed);
        const struct xi_down_notice *n = env->msg.data;
        struct xi_peer *p = peer_at(a->net, n->node);
        struct xi_reader *sect = xi_section_enter(&rt->rcu_sync);
        uint64_t gen;
        int rc = XO_ENODELOST;
        if (p != NULL && peer_up(p, &gen) && gen == n->gen)
            rc = xi_net_push_special(p, XI_SQ_DOWN, env,
                                     env->msg.size + XI_WIRE_HDR);
        xi_section_leave(&rt->rcu_sync, sect);
        if (rc == XO_EFULL) {
            if (!a->retry_armed &&
                xo_tell_after(xo_self(ctx), 1000000, 0, NULL, 0) == 0)
                a->retry_armed = true; /* tag 0 stands for RETRY */
            return;
        }
        if (rc != 0) /* lost since: its monitors fired there */
            xi_envelope_free(rt, env);
        a->waiting = next;
    }
    a->waiting_last = NULL;
}

static void agent_down(xo_ctx_t *ctx, struct agent *a, const xo_msg_t *m)
{
    xo_runtime_t *rt = xo_ctx_runtime(ctx);
    const xo_down_t *d = m->data;
    pthread_mutex_lock(&a->net->mon_lock);
    struct xi_net_mon *am = xi_map_del(&a->net->mons, d->monitor);
    pthread_mutex_unlock(&a->net->mon_lock);
    if (am == NULL)
        return;
    size_t text = strlen(d->message);
    struct xi_envelope *env;
    if (xi_envelope_new(rt, 0, sizeof(struct xi_down_notice) + text,
                        &env) == 0) {
        struct xi_down_notice *n = env->msg.data;
        n->target = am->target;
        n->gen = am->conn_gen;
        n->node = am->node;
        n->reason = (int32_t)d->reason;
        n->code = d->code;
        n->text_len = (uint32_t)text;
        memcpy(n->text, d->message, text);
        agent_send_down(ctx, a, env);
    }
    xi_mem_free(&rt->mem, am, sizeof(*am));
}

static void agent_lost(xo_ctx_t *ctx, struct agent *a, unsigned node)
{
    xo_runtime_t *rt = xo_ctx_runtime(ctx);
    struct xi_net *net = a->net;
    pthread_mutex_lock(&net->mon_lock);
    for (size_t s = 0; s < xi_map_cap(&net->mons);) {
        uint64_t id = net->mons.slots[s].key;
        struct xi_net_mon *am = net->mons.slots[s].value;
        if (id == 0 || am->node != node) {
            s++;
            continue;
        }
        xo_monitor_t mon = { (xo_ref_t){ rt, am->target }, id };
        (void)xo_demonitor(&mon);
        (void)xi_map_del(&net->mons, id); /* may shift an entry into s */
        xi_mem_free(&rt->mem, am, sizeof(*am));
    }
    pthread_mutex_unlock(&net->mon_lock);
}

static int agent_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct agent *a = state;
    switch (m->tag) {
    case XI_TAG_NET_SPAWN:
        return agent_spawn(ctx, a, m);
    case XO_TAG_DOWN:
        agent_down(ctx, a, m);
        return 0;
    case XI_TAG_NET_LOST: {
        unsigned node;
        memcpy(&node, m->data, sizeof(node));
        agent_lost(ctx, a, node);
        return 0;
    }
    case 0: /* the retry's delayed tell */
        a->retry_armed = false;
        agent_retry(ctx, a);
        return 0;
    default:
        return 0;
    }
}

const xo_actor_def_t xi_net_agent_def = {
    .name = "xoscar.node",
    .state_size = sizeof(struct agent),
    .on_create = agent_create,
    .on_message = agent_message,
    .on_destroy = agent_destroy,
};

/* ---- start, stop ----------------------------------------------------------- */

static void layer_stop(xo_runtime_t *rt, void *arg)
{
    (void)rt;
    xi_io_stop(arg);
}

static void layer_free(xo_runtime_t *rt, void *arg)
{
    struct xi_net *net = arg;
    xi_io_free(net);
    for (unsigned i = 1; i <= net->npeers; i++) /* relaxed: no thread left */
        peer_free(net, atomic_load_explicit(&net->peers[i],
                                            memory_order_relaxed));
    while (net->types != NULL) {
        struct xi_type *t = net->types;
        net->types = t->next;
        xi_mem_free(&rt->mem, t, sizeof(*t) + strlen(t->name) + 1);
    }
    free(net->subscribers);
    for (size_t s = 0; s < xi_map_cap(&net->mons); s++)
        if (net->mons.slots[s].key != 0)
            xi_mem_free(&rt->mem, net->mons.slots[s].value,
                        sizeof(struct xi_net_mon));
    xi_map_free(&net->mons);
    pthread_mutex_destroy(&net->mon_lock);
    pthread_mutex_destroy(&net->lock);
    xi_mem_free(&rt->mem, net, sizeof(*net));
}

int xo_node_start(xo_runtime_t *rt, const xo_node_config_t *cfg)
{
    if (rt == NULL || cfg == NULL || !config_valid(cfg))
        return XO_EINVAL;
    struct xi_net *net = xi_mem_zalloc(&rt->mem, sizeof(*net));
    if (net == NULL)
        return XO_ENOMEM;
    net->rt = rt;
    net->cfg = *cfg;
    net->lfd = net->epfd = net->evfd = -1;
    snprintf(net->listen_addr, sizeof(net->listen_addr), "%s",
             cfg->listen_addr != NULL ? cfg->listen_addr : "127.0.0.1");
    net->cfg.listen_addr = net->listen_addr;
    if (cfg->name != NULL)
        snprintf(net->name, sizeof(net->name), "%s", cfg->name);
    net->cfg.name = net->name;
    pthread_mutex_init(&net->lock, NULL);
    pthread_mutex_init(&net->mon_lock, NULL);
    xi_mpscq_init(&net->ctlq, &net->ctlq_tail, false);
    xi_mpscq_init(&net->outbox, &net->outbox_tail, false);
    int rc = 0;
    do {
        if (xi_auth_random(&net->incarnation, sizeof(net->incarnation)) != 0)
            rc = XO_ESYSTEM;
    } while (rc == 0 && net->incarnation == 0);
    if (rc == 0)
        rc = xi_io_open(net);
    if (rc != 0) {
        layer_free(rt, net);
        return rc;
    }
    if (net->name[0] == '\0') {
        if (net->lfd >= 0)
            snprintf(net->name, sizeof(net->name), "%s:%u", net->listen_addr,
                     net->port);
        else
            snprintf(net->name, sizeof(net->name), "node-%ld",
                     (long)getpid());
    }
    /* The agent, then the seams, then the thread: a peer's first frame
       finds all three. */
    xo_spawn_opts_t so;
    xo_spawn_opts_init(&so);
    so.arg = &net;
    so.arg_size = sizeof(net);
    rc = xo_spawn(rt, &xi_net_agent_def, &so, &net->agent);
    pthread_mutex_lock(&rt->stop_lock);
    if (rc == 0 && (rt->stopping || xi_rt_closing(rt)))
        rc = XO_ECLOSED;
    else if (rc == 0 && rt->net.arg != NULL)
        rc = XO_EINVAL; /* a node already */
    if (rc == 0) {
        rt->route_arg = net;
        rt->watch_remote_arg = net;
        /* release: each argument before its function (runtime.h). */
        atomic_store_explicit(&rt->route, route, memory_order_release);
        atomic_store_explicit(&rt->watch_remote, watch_remote,
                              memory_order_release);
        rt->net = (struct xi_layer){ layer_stop, layer_free, net };
    }
    pthread_mutex_unlock(&rt->stop_lock);
    if (rc != 0) {
        if (!xo_ref_is_none(net->agent))
            (void)xo_destroy(net->agent);
        layer_free(rt, net);
        return rc;
    }
    /* Attached: from here the runtime's stop and free take care of it,
       started or not (a node that could not start its thread stays,
       without peers: its refs answer XO_ENOTEXIST). Where the pools and
       the I/O thread crowd the CPUs, idle workers yield to it. */
    net->crowded = xo_pool_count(rt) + 1 > (unsigned)CPU_COUNT(&rt->allowed);
    rc = xi_io_run(net);
    if (rc == 0)
        xi_pools_add_layer_thread(rt);
    return rc;
}

int xo_node_port(xo_runtime_t *rt, unsigned *port)
{
    struct xi_net *net = net_of(rt);
    if (port == NULL)
        return XO_EINVAL;
    if (net == NULL || net->lfd < 0)
        return XO_ENOTEXIST;
    *port = net->port;
    return 0;
}

/* ---- connecting ------------------------------------------------------------- */

/* "host:port", "[v6]:port": resolve (on the caller's thread: the I/O
   thread never waits for a name server). */
static int resolve(const char *address, struct sockaddr_storage *out,
                   socklen_t *len, char *text, size_t text_size)
{
    char host[256];
    const char *colon = strrchr(address, ':');
    if (colon == NULL || colon == address || colon[1] == '\0')
        return XO_EINVAL;
    size_t hlen = (size_t)(colon - address);
    const char *h = address;
    if (address[0] == '[') {
        if (hlen < 3 || address[hlen - 1] != ']')
            return XO_EINVAL;
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host))
        return XO_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        return XO_EINVAL;
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL)
        return XO_EINVAL;
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    char ip[INET6_ADDRSTRLEN] = "?";
    const void *a = out->ss_family == AF_INET6
                        ? (const void *)&((struct sockaddr_in6 *)out)->sin6_addr
                        : (const void *)&((struct sockaddr_in *)out)->sin_addr;
    inet_ntop(out->ss_family, a, ip, sizeof(ip));
    snprintf(text, text_size, out->ss_family == AF_INET6 ? "[%s]:%ld"
                                                         : "%s:%ld",
             ip, port);
    return 0;
}

/* Wait for an answer the I/O thread gives through f; its first result's
   status, and its payload into out (when out_size matches). */
static int wait_answer(struct xo_future *f, int64_t timeout_ns, void *out,
                       size_t out_size)
{
    int rc = xi_future_wait_internal(f, timeout_ns);
    if (rc == 0) {
        xo_result_t r;
        rc = xo_future_result(f, 0, &r);
        if (rc == 0 && out != NULL) {
            if (r.size == out_size)
                memcpy(out, r.data, out_size);
            else
                rc = XO_EPROTO;
        }
    }
    xo_future_release(f);
    return rc;
}

int xo_node_connect(xo_runtime_t *rt, const char *address,
                    int64_t timeout_ns, unsigned *node)
{
    if (rt == NULL || address == NULL || node == NULL)
        return XO_EINVAL;
    struct xi_net *net = net_of(rt);
    if (net == NULL)
        return XO_ENOTEXIST;
    struct xi_ctl *c = ctl_new(rt, XI_CTL_CONNECT, 0);
    if (c == NULL)
        return XO_ENOMEM;
    int rc = resolve(address, &c->addr, &c->addrlen, c->addr_text,
                     sizeof(c->addr_text));
    struct xo_future *f = NULL;
    if (rc == 0)
        rc = xi_future_new(rt, 0, 1, &f);
    if (rc != 0) {
        xi_mem_free(&rt->mem, c, sizeof(*c));
        return rc;
    }
    /* relaxed: the request's reference; the post publishes it. */
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    c->f = f;
    rc = xi_rt_closing(rt) ? XO_ECLOSED : 0;
    if (rc != 0)
        xi_mem_free(&rt->mem, c, sizeof(*c));
    else
        rc = xi_net_post(net, c); /* frees c on refusal */
    if (rc != 0) {
        xi_future_unref(f); /* the request's */
        xo_future_release(f);
        return rc;
    }
    return wait_answer(f, timeout_ns, node, sizeof(*node));
}

/* Post a request of `kind` about peer `node` to the I/O thread. */
static int post_to_peer(xo_runtime_t *rt, unsigned node,
                        enum xi_ctl_kind kind)
{
    struct xi_net *net = net_of(rt);
    struct xi_peer *p = net != NULL ? peer_at(net, node) : NULL;
    if (p == NULL)
        return XO_ENOTEXIST;
    struct xi_ctl *c = ctl_new(rt, kind, 0);
    if (c == NULL)
        return XO_ENOMEM;
    c->peer = p;
    return xi_net_post(net, c);
}

int xo_node_disconnect(xo_runtime_t *rt, unsigned node)
{
    return post_to_peer(rt, node, XI_CTL_DISCONNECT);
}

int xi_net_sever(xo_runtime_t *rt)
{
    struct xi_net *net = net_of(rt);
    if (net == NULL)
        return XO_ENOTEXIST;
    struct xi_ctl *c = ctl_new(rt, XI_CTL_SEVER, 0);
    if (c == NULL)
        return XO_ENOMEM;
    return xi_net_post(net, c);
}

int xi_net_sever_lane(xo_runtime_t *rt, unsigned node)
{
    return post_to_peer(rt, node, XI_CTL_SEVER_LANE);
}

int xi_net_lane_info(xo_runtime_t *rt, unsigned node,
                     struct xi_lane_info *out)
{
    struct xi_net *net = net_of(rt);
    struct xi_peer *p = net != NULL ? peer_at(net, node) : NULL;
    if (p == NULL)
        return XO_ENOTEXIST;
    /* relaxed: readings (the I/O thread writes them). */
    out->up = atomic_load_explicit(&p->lane_is_up, memory_order_relaxed);
    out->ups = atomic_load_explicit(&p->lane_ups, memory_order_relaxed);
    out->echoes = atomic_load_explicit(&p->lane_echoes,
                                       memory_order_relaxed);
    out->echoes_in_transfer = atomic_load_explicit(
        &p->lane_echoes_in_transfer, memory_order_relaxed);
    return 0;
}

int xo_node_find(xo_runtime_t *rt, const char *name, unsigned *node)
{
    if (name == NULL || node == NULL)
        return XO_EINVAL;
    struct xi_net *net = net_of(rt);
    if (net == NULL)
        return XO_ENOTEXIST;
    int rc = XO_ENOTEXIST;
    pthread_mutex_lock(&net->lock);
    /* The newest first: a restarted node's number replaces the old. */
    for (unsigned i = net->npeers; i >= 1; i--) {
        /* relaxed: stored under the lock we hold. */
        struct xi_peer *p = atomic_load_explicit(&net->peers[i],
                                                 memory_order_relaxed);
        if (strcmp(p->name, name) == 0) {
            *node = i;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&net->lock);
    return rc;
}

int xo_node_info(xo_runtime_t *rt, unsigned node, xo_node_info_t *out)
{
    if (out == NULL)
        return XO_EINVAL;
    struct xi_net *net = net_of(rt);
    if (net == NULL)
        return XO_ENOTEXIST;
    memset(out, 0, sizeof(*out));
    out->node = node;
    if (node == 0) {
        pthread_mutex_lock(&net->lock);
        out->state = net->stopped ? XO_NODE_DOWN : XO_NODE_UP;
        pthread_mutex_unlock(&net->lock);
        snprintf(out->name, sizeof(out->name), "%s", net->name);
        if (net->lfd >= 0)
            snprintf(out->address, sizeof(out->address), "%.48s:%u",
                     net->listen_addr, net->port);
        out->incarnation = net->incarnation;
        /* relaxed: counters. */
        out->refused = atomic_load_explicit(&net->refused,
                                            memory_order_relaxed);
        out->faults = atomic_load_explicit(&net->faults,
                                           memory_order_relaxed);
        return 0;
    }
    struct xi_peer *p = peer_at(net, node);
    if (p == NULL)
        return XO_ENOTEXIST;
    pthread_mutex_lock(&net->lock);
    /* relaxed: a snapshot; the lock orders the fields read with it. */
    out->state = atomic_load_explicit(&p->state, memory_order_relaxed);
    snprintf(out->name, sizeof(out->name), "%s", p->name);
    snprintf(out->address, sizeof(out->address), "%s", p->addr_text);
    out->outbound = p->outbound;
    out->incarnation = p->incarnation;
    out->connects = p->connects;
    out->losses = p->losses;
    out->last_error = p->last_error;
    pthread_mutex_unlock(&net->lock);
    /* relaxed: counters. */
    out->msgs_sent = atomic_load_explicit(&p->msgs_sent,
                                          memory_order_relaxed);
    out->msgs_received = atomic_load_explicit(&p->msgs_received,
                                              memory_order_relaxed);
    out->bytes_sent = atomic_load_explicit(&p->bytes_sent,
                                           memory_order_relaxed);
    out->bytes_received = atomic_load_explicit(&p->bytes_received,
                                               memory_order_relaxed);
    out->dropped = atomic_load_explicit(&p->dropped, memory_order_relaxed);
    out->rtt_ns = atomic_load_explicit(&p->rtt_ns, memory_order_relaxed);
    pthread_mutex_lock(&p->calls_lock);
    out->calls_in_flight = p->calls.len;
    pthread_mutex_unlock(&p->calls_lock);
    return 0;
}

/* ---- lookup, spawn, register, subscribe --------------------------------------- */

static int remote_ref(xo_runtime_t *rt, unsigned node, uint64_t id,
                      xo_ref_t *out)
{
    if (xi_ref_node(id) != 0 || xi_ref_gen(id) == 0)
        return XO_EPROTO; /* not an id the peer could have given */
    *out = (xo_ref_t){ rt, id | ((uint64_t)node << XI_REF_NODE_SHIFT) };
    return 0;
}

int xo_node_lookup(xo_runtime_t *rt, unsigned node, const char *uid,
                   int64_t timeout_ns, xo_ref_t *out)
{
    if (rt == NULL || uid == NULL || out == NULL)
        return XO_EINVAL;
    size_t len = strnlen(uid, XO_UID_MAX + 1);
    if (len == 0 || len > XO_UID_MAX)
        return XO_EINVAL;
    struct xi_net *net = net_of(rt);
    if (net == NULL)
        return XO_ENOTEXIST;
    struct xi_peer *p = peer_at(net, node);
    if (p == NULL)
        return XO_ENOTEXIST;
    struct xo_future *f;
    int rc = xi_future_new(rt, 0, 1, &f);
    if (rc != 0)
        return rc;
    struct xi_reader *sect = xi_section_enter(&rt->rcu_sync);
    uint64_t gen;
    struct xi_ncall *call = NULL;
    if (xi_rt_closing(rt))
        rc = XO_ECLOSED;
    else if (!peer_up(p, &gen))
        rc = XO_ENODELOST;
    else
        rc = call_register(p, f, 1, &call);
    if (rc == 0) {
        struct xi_wire_hdr h = { .type = XI_WT_LOOKUP, .c = call->base };
        rc = post_frame(p, gen, &h, uid, (uint32_t)len);
        if (rc != 0)
            call_unregister(p, call);
    }
    xi_section_leave(&rt->rcu_sync, sect);
    if (rc != 0) {
        xi_future_unref(f);
        return rc;
    }
    uint64_t id;
    rc = wait_answer(f, timeout_ns, &id, sizeof(id));
    return rc == 0 ? remote_ref(rt, node, id, out) : rc;
}

int xo_node_register(xo_runtime_t *rt, const char *type,
                     const xo_actor_def_t *def, const xo_spawn_opts_t *opts)
{
    if (rt == NULL || type == NULL || def == NULL)
        return XO_EINVAL;
    size_t len = strlen(type);
    if (len == 0 || len > XO_NODE_NAME_MAX)
        return XO_EINVAL;
    struct xi_net *net = net_of(rt);
    if (net == NULL)
        return XO_ENOTEXIST;
    struct xi_type *t = xi_mem_zalloc(&rt->mem, sizeof(*t) + len + 1);
    if (t == NULL)
        return XO_ENOMEM;
    t->def = def;
    if (opts != NULL)
        t->opts = *opts;
    else
        xo_spawn_opts_init(&t->opts);
    t->opts.uid = NULL;
    t->opts.arg = NULL;
    t->opts.arg_size = 0;
    memcpy(t->name, type, len + 1);
    int rc = 0;
    pthread_mutex_lock(&net->lock);
    for (struct xi_type *o = net->types; o != NULL; o = o->next)
        if (strcmp(o->name, type) == 0)
            rc = XO_EEXIST;
    if (rc == 0) {
        t->next = net->types;
        net->types = t;
    }
    pthread_mutex_unlock(&net->lock);
    if (rc != 0)
        xi_mem_free(&rt->mem, t, sizeof(*t) + len + 1);
    return rc;
}

int xo_node_spawn(xo_runtime_t *rt, unsigned node, const char *type,
                  const char *uid, const void *arg, size_t arg_size,
                  int64_t timeout_ns, xo_ref_t *out)
{
    if (rt == NULL || type == NULL || out == NULL ||
        (arg == NULL && arg_size > 0))
        return XO_EINVAL;
    struct xi_wire_spawn s = { type, strlen(type), uid,
                               uid != NULL ? strlen(uid) : 0, arg, arg_size };
    if (s.type_len == 0 || s.type_len > XO_NODE_NAME_MAX ||
        (uid != NULL && (s.uid_len == 0 || s.uid_len > XO_UID_MAX)))
        return XO_EINVAL;
    struct xi_net *net = net_of(rt);
    if (net == NULL)
        return XO_ENOTEXIST;
    struct xi_peer *p = peer_at(net, node);
    if (p == NULL)
        return XO_ENOTEXIST;
    size_t size = xi_wire_spawn_size(&s);
    if (size > net->cfg.max_message)
        return XO_EINVAL;
    struct xi_envelope *env;
    int rc = xi_envelope_new(rt, 0, size, &env);
    if (rc != 0)
        return rc;
    xi_wire_put_spawn(env->msg.data, &s);
    struct xo_future *f;
    rc = xi_future_new(rt, 0, 1, &f);
    if (rc != 0) {
        xi_envelope_free(rt, env);
        return rc;
    }
    struct xi_reader *sect = xi_section_enter(&rt->rcu_sync);
    struct xi_ncall *call = NULL;
    if (xi_rt_closing(rt))
        rc = XO_ECLOSED;
    else if (!peer_up(p, NULL))
        rc = XO_ENODELOST;
    else
        rc = call_register(p, f, 1, &call);
    if (rc == 0) {
        env->msg.tag = call->base;
        rc = xi_net_push_special(p, XI_SQ_SPAWN, env, size + XI_WIRE_HDR);
        if (rc != 0)
            call_unregister(p, call);
    }
    xi_section_leave(&rt->rcu_sync, sect);
    if (rc != 0) {
        xi_envelope_free(rt, env);
        xi_future_unref(f);
        return rc;
    }
    uint64_t id;
    rc = wait_answer(f, timeout_ns, &id, sizeof(id));
    return rc == 0 ? remote_ref(rt, node, id, out) : rc;
}

int xo_node_subscribe(xo_ref_t watcher, bool on)
{
    if (watcher.rt == NULL || xo_ref_node(watcher) != 0)
        return XO_EINVAL;
    struct xi_net *net = net_of(watcher.rt);
    if (net == NULL)
        return XO_ENOTEXIST;
    if (on && !xo_ref_alive(watcher))
        return XO_ENOTEXIST;
    int rc = 0;
    pthread_mutex_lock(&net->lock);
    size_t i = 0;
    while (i < net->nsubscribers && net->subscribers[i] != watcher.id)
        i++;
    if (on && i == net->nsubscribers) {
        if (net->nsubscribers == net->subscribers_cap) {
            size_t cap = net->subscribers_cap ? net->subscribers_cap * 2 : 8;
            uint64_t *s = realloc(net->subscribers, cap * sizeof(*s));
            if (s == NULL)
                rc = XO_ENOMEM;
            else {
                net->subscribers = s;
                net->subscribers_cap = cap;
            }
        }
        if (rc == 0)
            net->subscribers[net->nsubscribers++] = watcher.id;
    } else if (!on) {
        if (i == net->nsubscribers)
            rc = XO_ENOTEXIST;
        else
            net->subscribers[i] = net->subscribers[--net->nsubscribers];
    }
    pthread_mutex_unlock(&net->lock);
    return rc;
}
