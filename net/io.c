/*
 * io.c -- the I/O thread: one per node, all of its sockets on one epoll.
 *
 * The loop. Each turn takes the requests other threads posted (ctlq:
 * connects, control frames, disconnects, the stop), the calls answered
 * here (outbox: proxies whose future changed), then the clocks
 * (handshakes that took too long, heartbeats due, peers silent too long,
 * reconnects due), then writes what each connection has, then polls the
 * sockets: without waiting while there was work, or for io_spin_ns after
 * the last of it, then asleep until a socket, a deadline or a wake-up
 * (the eventfd, which a producer writes only when it sees io_sleeping).
 *
 * Writing. A connection writes in batches of at most XI_BATCH_BYTES: first
 * the control frames waiting (heartbeats, cancels, lookups, monitors),
 * then data frames: the chain being written (a large payload goes out one
 * 64 KiB chunk per batch), the answers of calls (wout), then the peer's
 * ring, chain by chain. Small payloads are copied beside their headers;
 * large ones are written from the sender's envelope (writev), which is
 * freed once its last byte went. A lone message is written the moment the
 * loop sees it: nothing waits to fill a batch. A batch is written whole
 * before the next is made, so control frames wait at most one batch (and
 * the kernel's unsent bytes, which a connection under load keeps under
 * XI_UNSENT_MAX) behind a large message or a flood.
 *
 * Buffer messages (xo_send_buf to a remote actor; docs/gpu.md "Across
 * nodes") are in the ring in their sender's order like any message, but
 * their bytes may not be there yet: a device buffer's copy to pinned
 * memory, or the sending stream's work up to the send, still running. The
 * cursor asks the GPU layer, through the runtime's seam (xi_bufmsg_ready:
 * one load of the point's state), and while the answer is "not yet" the
 * connection's data lane waits behind the message (the pair's order) and
 * its control frames go on. Nothing waits on a stream: the stream thread
 * that owns the point completes it from its own polling, and this thread
 * looks again each turn, and within XI_BUF_POLL_NS (rounded up to
 * epoll_wait's millisecond) while it sleeps. Handing the message to the
 * route only once ready would let a later tell overtake it; waiting in a
 * worker would take the worker. A BUF frame is written from the buffer
 * itself, the buffer's bytes then the message's (two pieces, split
 * across chunks as they fall); a buffer that will never be ready (its
 * stream failed) is dropped with a line in the log. A BUF received is
 * handed to the GPU layer (xi_bufmsg_deliver), which wraps an assembled
 * block as the buffer without a copy and sends it by the local path.
 *
 * Reading. Bytes go through the decoder (wire.c), frames to their
 * handlers. Messages in a row for one actor become one chain, pushed with
 * one exchange (a batch from the wire always whole: all or nothing). A
 * connection is read at most XI_READ_BUDGET per turn, so a bulk transfer
 * never keeps the loop from the other sockets for longer than that.
 *
 * The control lane (docs/net.md, "Lanes"). A peer's heartbeats go on a
 * second connection of their own, which the node that made the data
 * connection opens once that one is up (tick), with the same handshake
 * (HELLO role 2); its proofs also cover the data connection's nonces, so
 * it binds to that connection of that process. It carries HEARTBEAT
 * frames only: whatever must stay in order with the data (cancels,
 * lookups, goodbyes, monitors) stays on the data connection. Any byte on
 * either counts as life; a lane that came up and goes takes its pair with
 * it (one loss, after reading what the data connection holds; when the
 * peer closed it, with the data connection's own end or heartbeat_ns
 * later); a lane that never comes up (an older peer) leaves the pair on
 * one connection.
 *
 * Losing a peer: the state leaves UP (sends fail from then on), a grace
 * period lets every send that saw UP finish its push, then the ring is
 * dropped, every call in flight fails with XO_ENODELOST, the calls from
 * that peer being handled here are cancelled, the monitors of its actors
 * fire, the agent forgets its watches for it, subscribers hear of it, and
 * a node that made the connection schedules a reconnect.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"

void xi_net_set_io_thread(const struct xi_net *net);

#define XI_RBUF ((size_t)256 << 10)     /* a connection's read buffer */
#define XI_BATCH_BYTES ((size_t)64 << 10) /* one writev's data */
#define XI_OBUF (XI_BATCH_BYTES + ((size_t)8 << 10))
#define XI_COPY_MAX 2048u               /* payloads copied, not referenced */
#define XI_IOV 256
#define XI_UNSENT_MAX (256 << 10)       /* the kernel's unsent bytes, bulk */
#define XI_HANDSHAKES_MAX 64u
#define XI_READ_BUDGET ((size_t)16 << 10) /* per connection per turn */
#define XI_DL_MAX 256u                   /* envelopes in one delivery */
#define XI_STOP_FLUSH_NS 2000000000ull   /* a stop's last writes */
#define XI_BUF_POLL_NS 200000ull         /* a buffer's bytes looked at */

enum conn_state { C_CONNECTING = 1, C_HELLO, C_AUTH, C_UP, C_BYE };

/* A data frame the I/O thread made itself (a call's answer or part, a
   lookup's answer): written in order, before the ring's chains. */
struct xi_wout {
    struct xi_wout *next;
    struct xi_wire_hdr h;
    struct xi_envelope *env;     /* the payload's owner, or NULL */
    const unsigned char *data;
    size_t size;
    size_t alloc;                /* this block's size */
    unsigned char text[];        /* an error's text, a lookup's answer */
};

/* The source of the frames being written: one payload, maybe chunked,
   in one or two pieces (a BUF frame's: the buffer's bytes, then the
   message's). */
struct src {
    struct xi_wire_hdr h;        /* the first frame's header */
    const unsigned char *data;   /* the payload's first `split` bytes */
    uint64_t size, off;          /* the payload; bytes written so far */
    bool started;                /* its first frame went */
    struct xi_envelope *env;     /* owner of data (freed when done) */
    struct xi_wout *wout;        /* or this */
    const unsigned char *data2;  /* the rest, after split */
    uint64_t split;
    bool waiting;                /* a buffer whose bytes are not ready */
};

struct cursor {
    bool active;
    struct src src;
    /* A chain from the ring: what comes after src's envelope. */
    struct xi_envelope *rest;
    uint64_t to;                 /* its entry's destination */
    uint32_t call_base;          /* a call chain's first wire id */
};

/* What a batch must free once written. */
struct owner {
    struct xi_envelope *env;
    struct xi_wout *wout;
};

struct batch {
    struct iovec iov[XI_IOV];
    int niov, done;              /* iovecs, those fully written */
    struct owner owners[XI_IOV];
    int nowners;
    unsigned char *obuf;         /* headers and copied payloads */
    size_t olen, seg;            /* bytes used; start of the open segment */
    unsigned char *ctl;          /* control frames of this batch */
    size_t ctl_size;
    uint64_t msgs;
};

/* Messages in a row for one actor, pushed as one chain. */
struct delivery {
    uint64_t to;                 /* local id */
    struct xi_envelope *first, *last;
    unsigned n;
    bool batch_open;             /* a wire batch goes on */
    unsigned nunits;
    struct { struct xi_envelope *first, *last; } unit[XI_DL_MAX];
};

struct xi_conn {
    struct xi_conn *next, **prev;
    struct xi_net *net;
    int fd;
    enum conn_state st;
    bool outbound;
    bool want_out;               /* EPOLLOUT asked for */
    struct xi_peer *peer;        /* once known; a reconnect's from the start */
    struct xi_ctl *req;          /* a waiting xo_node_connect */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char addr_text[64];
    uint64_t deadline;           /* the handshake's end */
    uint64_t last_rx, last_tx;
    unsigned char hello_mine[XI_WIRE_HELLO_FIXED + XI_WIRE_NAME_MAX];
    size_t hello_mine_size;
    unsigned char hello_theirs[XI_WIRE_HELLO_FIXED + XI_WIRE_NAME_MAX];
    size_t hello_theirs_size;
    struct xi_wire_hello theirs;
    unsigned char *rbuf;
    size_t rlen;
    struct xi_wire_rx rx;
    struct delivery dl;
    /* Control frames not yet in a batch. */
    unsigned char *cbuf;
    size_t clen, ccap;
    struct batch b;
    bool batch_pending;          /* b is built and not fully written */
    struct cursor cur;
    struct xi_wout *wout, **wout_tail;
    int bye_code;                /* C_BYE: why we close after the flush */
    /* Set by a frame's handler that ends the connection for a reason that
       is not a fault of the peer's (its BYE, a refused proof). */
    int close_code;
    char close_why[160];
    bool said_bye;               /* the peer said BYE */
    bool loaded;                 /* the last batch was full of data */
    bool held;                   /* data waits for the kernel to drain */
    /* The control lane (docs/net.md, "Lanes"): a second connection per
       peer that carries the heartbeats only. */
    bool lane;                   /* this connection is a peer's lane */
    bool lane_started;           /* a data connection: its lane opened */
    bool closed_by_peer;         /* read 0: the peer closed it */
    uint64_t lane_closed_at;     /* a data connection: its lane was closed
                                    by the peer then (0: not) */
    /* A lane: the nonces of its peer's data connection (the connector's,
       then the acceptor's), which both lane proofs cover. */
    unsigned char session[2 * XI_WIRE_NONCE];
    uint64_t session_gen;        /* an accepted lane: the data connection's
                                    generation it named */
};

static uint64_t now_ns(void)
{
    return xi_now_ns();
}

/* ---- small helpers ------------------------------------------------------ */

static void set_state(struct xi_peer *p, int state)
{
    /* release: what the state's readers rely on was written before. */
    atomic_store_explicit(&p->state, state, memory_order_release);
}

static void epoll_set(struct xi_conn *c, bool out)
{
    struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0),
                              .data.ptr = c };
    (void)epoll_ctl(c->net->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = out;
}

static void bump(_Atomic uint64_t *counter, uint64_t by)
{
    /* relaxed: a counter (one writer: this thread). */
    atomic_fetch_add_explicit(counter, by, memory_order_relaxed);
}

/* Free a chain from a ring (envelopes linked, the last link NULL). Its
   links are this thread's since the pop: relaxed loads here and in every
   walk of a popped chain below. */
static void chain_free(xo_runtime_t *rt, struct xi_envelope *e)
{
    while (e != NULL) {
        struct xi_envelope *next = (struct xi_envelope *)atomic_load_explicit(
            &e->item.node.next, memory_order_relaxed);
        xi_envelope_free(rt, e);
        e = next;
    }
}

static void wout_free(xo_runtime_t *rt, struct xi_wout *w)
{
    if (w->env != NULL)
        xi_envelope_free(rt, w->env);
    xi_mem_free(&rt->mem, w, w->alloc);
}

/* ---- control frames ------------------------------------------------------ */

/* Append a control frame to c's queue. */
static int ctl_frame(struct xi_conn *c, const struct xi_wire_hdr *h,
                     const void *payload, uint32_t size)
{
    size_t need = c->clen + XI_WIRE_HDR + size;
    if (need > c->ccap) {
        size_t cap = c->ccap ? c->ccap * 2 : 4096;
        while (cap < need)
            cap *= 2;
        unsigned char *p = realloc(c->cbuf, cap);
        if (p == NULL)
            return XO_ENOMEM;
        c->cbuf = p;
        c->ccap = cap;
    }
    struct xi_wire_hdr hh = *h;
    hh.version = XI_WIRE_VERSION;
    hh.size = size;
    xi_wire_put_hdr(c->cbuf + c->clen, &hh);
    if (size > 0)
        memcpy(c->cbuf + c->clen + XI_WIRE_HDR, payload, size);
    c->clen = need;
    return 0;
}

static void wout_push(struct xi_conn *c, struct xi_wout *w)
{
    w->next = NULL;
    *c->wout_tail = w;
    c->wout_tail = &w->next;
}

/* A data frame of the I/O thread's own, with `text` bytes copied in. */
static struct xi_wout *wout_new(xo_runtime_t *rt, const struct xi_wire_hdr *h,
                                const void *text, size_t size)
{
    size_t alloc = sizeof(struct xi_wout) + size;
    struct xi_wout *w = xi_mem_zalloc(&rt->mem, alloc);
    if (w == NULL)
        return NULL;
    w->h = *h;
    w->alloc = alloc;
    if (size > 0)
        memcpy(w->text, text, size);
    w->data = w->text;
    w->size = size;
    return w;
}

/* An answer of the I/O thread's own from inside a frame's handler: queued,
   or, without memory for it, the connection goes (its calls then fail
   there with the node's loss: nothing waits forever for an answer that
   was dropped). */
static int answer(struct xi_conn *c, struct xi_wout *w,
                  struct xi_wire_fault *fault)
{
    if (w != NULL) {
        wout_push(c, w);
        return 0;
    }
    fault->code = XO_ENOMEM;
    snprintf(fault->why, sizeof(fault->why), "out of memory for an answer");
    return -1;
}

/* ---- the connection's life --------------------------------------------- */

static struct xi_conn *conn_new(struct xi_net *net, int fd, bool outbound)
{
    xo_runtime_t *rt = net->rt;
    struct xi_conn *c = xi_mem_zalloc(&rt->mem, sizeof(*c));
    unsigned char *rbuf = c ? malloc(XI_RBUF) : NULL;
    unsigned char *obuf = rbuf ? malloc(XI_OBUF) : NULL;
    if (obuf == NULL) {
        free(rbuf);
        if (c != NULL)
            xi_mem_free(&rt->mem, c, sizeof(*c));
        return NULL;
    }
    c->net = net;
    c->fd = fd;
    c->outbound = outbound;
    c->rbuf = rbuf;
    c->b.obuf = obuf;
    c->wout_tail = &c->wout;
    c->last_rx = c->last_tx = now_ns();
    c->deadline = c->last_rx + net->cfg.handshake_timeout_ns;
    c->next = net->conns;
    if (net->conns != NULL)
        net->conns->prev = &c->next;
    net->conns = c;
    c->prev = &net->conns;
    net->handshakes++;
    return c;
}

/* A chunked payload's assembly grows by doubling (wire.c), and is handed
   to the receiver as its message's buffer (xo_msg_wrap) without a copy.
   Up to XI_MAP_MIN it is the C library's heap (realloc), as
   docs/architecture.md lists; beyond, pages of its own that grow with
   mremap, which moves the pages and copies nothing: a realloc that copies
   would stop the I/O thread for the whole block at each doubling (200 ms
   at 64 MiB on the 2-CPU build machine), and every heartbeat with it. */
#define XI_MAP_MIN ((size_t)1 << 20)

static void *grow_block(void *ctx, void *p, size_t old_size, size_t new_size)
{
    (void)ctx;
    if (new_size <= XI_MAP_MIN)
        return realloc(p, new_size);
    if (p != NULL && old_size > XI_MAP_MIN) {
        void *q = mremap(p, old_size, new_size, MREMAP_MAYMOVE);
        return q == MAP_FAILED ? NULL : q;
    }
    void *q = mmap(NULL, new_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED)
        return NULL;
    if (p != NULL) {
        memcpy(q, p, old_size);
        free(p);
    }
    return q;
}

static void release_block(void *ctx, void *p, size_t size)
{
    (void)ctx;
    if (size > XI_MAP_MIN)
        (void)munmap(p, size);
    else
        free(p);
}

/* The receiver is done with an assembled block: arg is its size. */
static void free_wrapped(void *buf, void *arg)
{
    release_block(NULL, buf, (size_t)(uintptr_t)arg);
}

static void rx_init(struct xi_conn *c)
{
    struct xi_net *net = c->net;
    struct xi_wire_alloc alloc = { grow_block, release_block, net->rt };
    xi_wire_rx_init(&c->rx, net->cfg.max_message, net->cfg.max_batch,
                    &alloc);
}

static void tcp_options(struct xi_net *net, int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int lowat = XI_UNSENT_MAX;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat,
                     sizeof(lowat));
    /* The kernel gives up on unacknowledged data when we would. */
    unsigned ms = (unsigned)(net->cfg.loss_timeout_ns / 1000000u);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
    /* What waits in the receiver's socket is what a control frame waits
       behind: bound it (the kernel's autotuning grows it to tcp_rmem's
       maximum, tens of MiB, under a bulk transfer). */
    if (net->cfg.socket_buffer > 0) {
        int size = (int)net->cfg.socket_buffer;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    }
}

static void send_hello(struct xi_conn *c)
{
    struct xi_net *net = c->net;
    struct xi_wire_hello h = { .magic = XI_WIRE_MAGIC,
                               .role = c->lane ? XI_WIRE_ROLE_LANE
                                       : c->outbound ? 0 : 1,
                               .listen_port = (uint16_t)net->port,
                               .incarnation = net->incarnation };
    size_t len = strlen(net->name);
    h.name_len = (uint8_t)len;
    memcpy(h.name, net->name, len);
    if (xi_auth_random(h.nonce, sizeof(h.nonce)) != 0)
        memset(h.nonce, 0, sizeof(h.nonce)); /* the proof then fails */
    c->hello_mine_size = xi_wire_put_hello(c->hello_mine, &h);
    struct xi_wire_hdr hdr = { .type = XI_WT_HELLO };
    (void)ctl_frame(c, &hdr, c->hello_mine, (uint32_t)c->hello_mine_size);
    c->st = C_HELLO;
}

/* Answer a waiting xo_node_connect: node number or error. */
static void answer_connect(struct xi_net *net, struct xi_ctl *req, int rc,
                           unsigned node, const char *why)
{
    xo_runtime_t *rt = net->rt;
    struct xo_future *f = req->f;
    struct xi_envelope *env = NULL;
    if (rc == 0 && xi_envelope_new(rt, 0, sizeof(node), &env) == 0)
        memcpy(env->msg.data, &node, sizeof(node));
    else if (rc == 0)
        rc = XO_ENOMEM;
    xi_future_complete_item(f, 0, rc, rc != 0 ? why : NULL, env, true);
    xi_future_unref(f);
    xi_mem_free(&rt->mem, req, sizeof(*req) + req->size);
}

/* Backoff with full jitter: a random time in [0, min(max, min * 2^n)]. */
static uint64_t backoff(struct xi_net *net, unsigned attempt)
{
    uint64_t cap = net->cfg.reconnect_min_ns;
    for (unsigned i = 0; i < attempt && cap < net->cfg.reconnect_max_ns; i++)
        cap *= 2;
    if (cap > net->cfg.reconnect_max_ns)
        cap = net->cfg.reconnect_max_ns;
    uint64_t r;
    if (xi_auth_random(&r, sizeof(r)) != 0)
        r = now_ns();
    return r % (cap + 1);
}

static void batch_release(xo_runtime_t *rt, struct batch *b)
{
    for (int i = 0; i < b->nowners; i++) {
        if (b->owners[i].env != NULL)
            xi_envelope_free(rt, b->owners[i].env);
        if (b->owners[i].wout != NULL)
            wout_free(rt, b->owners[i].wout);
    }
    b->nowners = 0;
    b->niov = b->done = 0;
    b->olen = b->seg = 0;
    free(b->ctl);
    b->ctl = NULL;
    b->ctl_size = 0;
}

static void cursor_release(xo_runtime_t *rt, struct cursor *cur)
{
    if (!cur->active)
        return;
    if (cur->src.env != NULL)
        xi_envelope_free(rt, cur->src.env);
    if (cur->src.wout != NULL)
        wout_free(rt, cur->src.wout);
    chain_free(rt, cur->rest);
    memset(cur, 0, sizeof(*cur));
}

static void deliver_flush(struct xi_conn *c);
static void fail_chain(struct xi_conn *c, struct xi_envelope *e,
                       struct xi_envelope *last, int rc);

/* Close the socket and free the connection (its peer was settled). */
static void conn_free(struct xi_conn *c)
{
    struct xi_net *net = c->net;
    xo_runtime_t *rt = net->rt;
    if (c->dl.batch_open) { /* its end never came: none of it goes */
        fail_chain(c, c->dl.first, c->dl.last, XO_ECLOSED);
        c->dl = (struct delivery){ 0 };
    }
    deliver_flush(c);
    (void)epoll_ctl(net->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->st != C_UP)
        net->handshakes--;
    *c->prev = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    xi_wire_rx_fini(&c->rx);
    if (c->batch_pending)
        batch_release(rt, &c->b);
    free(c->b.ctl);
    cursor_release(rt, &c->cur);
    while (c->wout != NULL) {
        struct xi_wout *w = c->wout;
        c->wout = w->next;
        wout_free(rt, w);
    }
    free(c->cbuf);
    free(c->rbuf);
    free(c->b.obuf);
    xi_mem_free(&rt->mem, c, sizeof(*c));
    net->conn_frees++;
}

static void drop_ring(struct xi_peer *p)
{
    xo_runtime_t *rt = p->net->rt;
    struct xi_sendq_entry e;
    while (xi_ring_pop(&p->ring, &e))
        chain_free(rt, e.first);
    /* relaxed: nothing is queued any more. */
    atomic_store_explicit(&p->queued_bytes, 0, memory_order_relaxed);
}

/* The calls from p being handled here: cancel them (a handler that has
   not started is skipped; one that runs sees it); their answers find no
   connection and are dropped. */
static void cancel_proxies(struct xi_peer *p)
{
    for (size_t s = 0; s < xi_map_cap(&p->proxies); s++)
        if (p->proxies.slots[s].key != 0) {
            struct xi_proxy *px = p->proxies.slots[s].value;
            (void)xo_future_cancel(px->f);
        }
}

static void tell_agent(struct xi_net *net, uint32_t tag, const void *data,
                       size_t size)
{
    struct xi_envelope *env;
    if (xi_envelope_new(net->rt, 0, size, &env) != 0)
        return;
    env->msg.tag = tag;
    memcpy(env->msg.data, data, size);
    if (xi_enqueue(net->agent, env) != 0)
        xi_envelope_free(net->rt, env);
}

/* An UP connection is gone (see the top of the file). */
static void peer_lost(struct xi_net *net, struct xi_conn *c, int code,
                      const char *why, bool stopping)
{
    xo_runtime_t *rt = net->rt;
    struct xi_peer *p = c->peer;
    bool again = p->outbound && p->reconnect && net->cfg.reconnect &&
                 !stopping;
    char text[XO_NODE_NAME_MAX + 200];
    /* why may live in c, which goes below. */
    snprintf(text, sizeof(text), "node %s lost: %.160s", p->name, why);
    set_state(p, again ? XO_NODE_CONNECTING : XO_NODE_DOWN);
    pthread_mutex_lock(&net->lock);
    p->conn = NULL;
    p->losses++;
    p->last_error = code;
    pthread_mutex_unlock(&net->lock);
    conn_free(c);
    if (p->lane != NULL) { /* the pair goes together */
        struct xi_conn *lane = p->lane;
        p->lane = NULL;
        /* relaxed: a reading for the tests. */
        atomic_store_explicit(&p->lane_is_up, false, memory_order_relaxed);
        conn_free(lane);
    }
    /* Every send that saw UP has pushed by the end of this. */
    xi_grace_wait(rt);
    drop_ring(p);
    xi_net_calls_fail(p, stopping ? XO_ECLOSED : XO_ENODELOST, text);
    cancel_proxies(p);
    xi_recovery_node_lost(rt, p->node, text);
    tell_agent(net, XI_TAG_NET_LOST, &p->node, sizeof(p->node));
    xi_net_event(net, p, again ? XO_NODE_CONNECTING : XO_NODE_DOWN, code);
    if (again) {
        p->attempts = 0;
        p->retry_at = now_ns() + backoff(net, 0);
    }
}

static size_t conn_read(struct xi_conn *c, size_t budget);

/* A lane ends. One that came up (closed, silent, broken): its peer is
   lost with it, once, through its data connection, after what that
   connection holds was read (it was sent before: a goodbye there is no
   loss). One that never came up (a peer of an older build refuses it, or
   it timed out): the pair goes on with one connection, the heartbeats on
   the data connection, as before lanes. A lane never bound to a peer
   just goes. */
static void lane_close(struct xi_conn *c, int code, const char *why)
{
    struct xi_net *net = c->net;
    struct xi_peer *p = c->peer;
    if (p == NULL || p->lane != c) {
        conn_free(c);
        return;
    }
    if (c->st != C_UP) {
        xi_net_log(net, "node %s (%s) has no control connection (%s): its "
                        "heartbeats share the data connection",
                   p->name, c->addr_text, why);
        p->lane = NULL;
        conn_free(c);
        return;
    }
    char text[200];
    snprintf(text, sizeof(text), "its control connection: %.150s", why);
    bool by_peer = c->closed_by_peer;
    p->lane = NULL;
    /* relaxed: a reading for the tests. */
    atomic_store_explicit(&p->lane_is_up, false, memory_order_relaxed);
    conn_free(c);
    struct xi_conn *d = p->conn;
    if (d == NULL || d->st != C_UP)
        return;
    (void)conn_read(d, SIZE_MAX);
    if (p->conn != d)
        return; /* it went meanwhile (its own loss, once) */
    if (by_peer) {
        /* A peer that stops or dies closes both: its data connection's
           last bytes (and FIN) may still be on their way on another path.
           The loss comes with them, or heartbeat_ns later at most (tick);
           meanwhile the heartbeats go on the data connection. */
        d->lane_closed_at = now_ns();
        return;
    }
    xi_net_log(net, "lost node %s (%s): %s", p->name, d->addr_text, text);
    peer_lost(net, d, code, text, false);
}

/* A connection ends: an UP one loses its peer; a handshake fails its
   connect request, or schedules the next reconnect. */
static void conn_close(struct xi_conn *c, int code, const char *why)
{
    struct xi_net *net = c->net;
    if (c->lane) {
        lane_close(c, code, why);
        return;
    }
    if (c->st == C_UP) {
        if (!c->said_bye) /* a goodbye is no news */
            xi_net_log(net, "lost node %s (%s): %s", c->peer->name,
                       c->addr_text, why);
        peer_lost(net, c, code, why, false);
        return;
    }
    if (c->req != NULL) {
        answer_connect(net, c->req, code, 0, why);
        c->req = NULL;
    }
    struct xi_peer *p = c->peer;
    /* relaxed: this thread is the state's only writer. */
    if (p != NULL && p->conn == NULL &&
        atomic_load_explicit(&p->state, memory_order_relaxed) ==
            XO_NODE_CONNECTING) {
        p->attempts++;
        p->retry_at = now_ns() + backoff(net, p->attempts);
    }
    conn_free(c);
}

/* A fault of the peer's: log it, count it, close. */
static void conn_fault(struct xi_conn *c, const struct xi_wire_fault *f)
{
    struct xi_net *net = c->net;
    bump(&net->faults, 1);
    xi_net_log(net, "closing the connection with %s: %s", c->addr_text,
               f->why);
    conn_close(c, f->code, f->why);
}

/* ---- handshake ---------------------------------------------------------- */

static int conn_up(struct xi_conn *c);
static int lane_up(struct xi_conn *c);

/* The proof `role` gives on c: both HELLOs, the connector's first; a
   lane's connector HELLO with its data connection's nonces after it, so a
   lane proves it belongs to that very connection. */
static void conn_proof(struct xi_conn *c, enum xi_auth_role role,
                       unsigned char out[XI_WIRE_MAC])
{
    const unsigned char *hc = c->outbound ? c->hello_mine : c->hello_theirs;
    size_t hcs = c->outbound ? c->hello_mine_size : c->hello_theirs_size;
    const unsigned char *ha = c->outbound ? c->hello_theirs : c->hello_mine;
    size_t has = c->outbound ? c->hello_theirs_size : c->hello_mine_size;
    unsigned char bound[sizeof(c->hello_mine) + sizeof(c->session)];
    if (c->lane) {
        memcpy(bound, hc, hcs);
        memcpy(bound + hcs, c->session, sizeof(c->session));
        hc = bound;
        hcs += sizeof(c->session);
    }
    xi_auth_proof(c->net->cfg.secret, role, hc, hcs, ha, has, out);
}

/* An accepted lane's data connection: the peer it names (by name and
   incarnation) must be up on a connection it made (and, once the lane
   proved itself, have no lane yet). NULL: no such session. */
static struct xi_peer *lane_peer(struct xi_conn *c, bool proved)
{
    struct xi_peer *p = xi_net_peer_for(c->net, c->theirs.name,
                                        c->theirs.incarnation, false);
    if (p == NULL || p->conn == NULL || p->conn->st != C_UP ||
        p->conn->outbound || (proved && p->lane != NULL))
        return NULL;
    return p;
}

/* Refuse an accepted lane: say why (BYE), then close; nothing else is
   touched. */
static int lane_refuse(struct xi_conn *c, const char *why)
{
    struct xi_net *net = c->net;
    bump(&net->refused, 1);
    xi_net_log(net, "refused a control connection from node %s (%s): %s",
               c->theirs.name, c->addr_text, why);
    struct xi_wire_hdr h = { .type = XI_WT_BYE, .c = (uint32_t)XO_ENOTEXIST };
    (void)ctl_frame(c, &h, NULL, 0);
    c->bye_code = XO_ENOTEXIST;
    c->st = C_BYE;
    return 0;
}

static int on_hello(struct xi_conn *c, struct xi_wire_frame *f,
                    struct xi_wire_fault *fault)
{
    struct xi_net *net = c->net;
    if (c->st != C_HELLO)
        return snprintf(fault->why, sizeof(fault->why), "a second HELLO"),
               fault->code = XO_EPROTO, -1;
    if (xi_wire_get_hello(f->payload, f->size, &c->theirs, fault) != 0)
        return -1;
    if (c->outbound ? c->theirs.role != 1
                    : c->theirs.role != 0 &&
                          c->theirs.role != XI_WIRE_ROLE_LANE) {
        fault->code = XO_EPROTO;
        snprintf(fault->why, sizeof(fault->why), "a HELLO of the wrong role");
        return -1;
    }
    if (c->theirs.incarnation == net->incarnation) {
        fault->code = XO_EINVAL;
        snprintf(fault->why, sizeof(fault->why), "a connection to itself");
        return -1;
    }
    memcpy(c->hello_theirs, f->payload, f->size);
    c->hello_theirs_size = f->size;
    if (c->lane && c->theirs.incarnation != c->peer->incarnation) {
        fault->code = XO_EPROTO;
        snprintf(fault->why, sizeof(fault->why),
                 "a control connection that reached another process");
        return -1;
    }
    if (!c->outbound && c->theirs.role == XI_WIRE_ROLE_LANE) {
        c->lane = true;
        struct xi_peer *p = lane_peer(c, false);
        if (p == NULL)
            return lane_refuse(c, "no such session");
        const struct xi_conn *d = p->conn;
        memcpy(c->session, d->theirs.nonce, XI_WIRE_NONCE);
        memcpy(c->session + XI_WIRE_NONCE, d->hello_mine + 16, XI_WIRE_NONCE);
        /* relaxed: this thread writes the generation. */
        c->session_gen = atomic_load_explicit(&p->conn_gen,
                                              memory_order_relaxed);
    }
    if (c->outbound) {
        unsigned char mac[XI_WIRE_MAC];
        conn_proof(c, XI_AUTH_CONNECTOR, mac);
        struct xi_wire_hdr h = { .type = XI_WT_AUTH };
        (void)ctl_frame(c, &h, mac, sizeof(mac));
    }
    c->st = C_AUTH;
    return 0;
}

static int on_auth(struct xi_conn *c, struct xi_wire_frame *f,
                   struct xi_wire_fault *fault)
{
    struct xi_net *net = c->net;
    if (c->st != C_AUTH) {
        fault->code = XO_EPROTO;
        snprintf(fault->why, sizeof(fault->why), "an AUTH before the HELLO");
        return -1;
    }
    unsigned char want[XI_WIRE_MAC];
    conn_proof(c, c->outbound ? XI_AUTH_ACCEPTOR : XI_AUTH_CONNECTOR, want);
    if (!xi_auth_equal(want, f->payload)) {
        bump(&net->refused, 1);
        xi_net_log(net, "node %s (%s) failed to prove the shared secret: "
                        "refused",
                   c->theirs.name, c->addr_text);
        if (!c->outbound) {
            /* Say why before closing: the connector reports XO_EAUTH. */
            struct xi_wire_hdr h = { .type = XI_WT_BYE,
                                     .c = (uint32_t)XO_EAUTH };
            (void)ctl_frame(c, &h, NULL, 0);
            c->bye_code = XO_EAUTH;
            c->st = C_BYE;
            return 0;
        }
        c->close_code = XO_EAUTH;
        snprintf(c->close_why, sizeof(c->close_why),
                 "node %.100s failed to prove the shared secret",
                 c->theirs.name);
        (void)fault;
        return -1;
    }
    if (c->lane)
        return lane_up(c);
    if (!c->outbound) {
        unsigned char mac[XI_WIRE_MAC];
        conn_proof(c, XI_AUTH_ACCEPTOR, mac);
        struct xi_wire_hdr h = { .type = XI_WT_AUTH };
        (void)ctl_frame(c, &h, mac, sizeof(mac));
    }
    return conn_up(c);
}

/* A lane proved the secret and its session: it carries the peer's
   heartbeats from now on. An accepted one whose data connection went
   meanwhile is refused. */
static int lane_up(struct xi_conn *c)
{
    struct xi_net *net = c->net;
    struct xi_peer *p = c->peer;
    if (!c->outbound) {
        p = lane_peer(c, true);
        /* relaxed: this thread writes the generation. */
        if (p == NULL || atomic_load_explicit(&p->conn_gen,
                                              memory_order_relaxed) !=
                             c->session_gen)
            return lane_refuse(c, "its session ended");
        unsigned char mac[XI_WIRE_MAC];
        conn_proof(c, XI_AUTH_ACCEPTOR, mac);
        struct xi_wire_hdr h = { .type = XI_WT_AUTH };
        (void)ctl_frame(c, &h, mac, sizeof(mac));
        c->peer = p;
        p->lane = c;
    }
    net->handshakes--;
    c->st = C_UP;
    c->rx.authenticated = true;
    c->last_rx = c->last_tx = now_ns();
    bump(&p->lane_ups, 1);
    /* relaxed: a reading for the tests. */
    atomic_store_explicit(&p->lane_is_up, true, memory_order_relaxed);
    return 0;
}

/* Both ends proved the secret: give the peer its number and go. -1 (with
   close_code set): the connection must go (its decoder stops first). */
static int conn_up(struct xi_conn *c)
{
    struct xi_net *net = c->net;
    struct xi_peer *p = c->peer;
    if (p != NULL && p->incarnation != c->theirs.incarnation) {
        /* A reconnect found a new process there: the old number stays
           down for good (its refs named the old one's actors). */
        pthread_mutex_lock(&net->lock);
        p->reconnect = false;
        p->retry_at = 0;
        pthread_mutex_unlock(&net->lock);
        set_state(p, XO_NODE_DOWN);
        xi_net_event(net, p, XO_NODE_DOWN, XO_ENODELOST);
        p = NULL;
    }
    if (p == NULL)
        p = xi_net_peer_for(net, c->theirs.name, c->theirs.incarnation, true);
    if (p == NULL) {
        xi_net_log(net, "refused node %s (%s): no node number left",
                   c->theirs.name, c->addr_text);
        bump(&net->refused, 1);
        c->close_code = XO_ENOSLOT;
        snprintf(c->close_why, sizeof(c->close_why), "no node number left");
        return -1;
    }
    c->peer = p;
    if (p->conn != NULL) {
        /* Connected already: this one goes; a connect finds the node up. */
        if (c->req != NULL) {
            answer_connect(net, c->req, 0, p->node, NULL);
            c->req = NULL;
        }
        struct xi_wire_hdr h = { .type = XI_WT_BYE,
                                 .c = (uint32_t)XO_EEXIST };
        (void)ctl_frame(c, &h, NULL, 0);
        c->bye_code = XO_EEXIST;
        c->st = C_BYE;
        return 0;
    }
    net->handshakes--;
    c->st = C_UP;
    c->rx.authenticated = true;
    pthread_mutex_lock(&net->lock);
    p->conn = c;
    if (c->outbound) {
        p->outbound = true;
        p->reconnect = true;
        p->addr = c->addr;
        p->addrlen = c->addrlen;
    }
    snprintf(p->addr_text, sizeof(p->addr_text), "%s", c->addr_text);
    p->connects++;
    p->attempts = 0;
    p->retry_at = 0;
    pthread_mutex_unlock(&net->lock);
    /* release: the generation before the state (see struct xi_peer). */
    atomic_store_explicit(&p->conn_gen,
                          atomic_load_explicit(&p->conn_gen,
                                               memory_order_relaxed) + 1,
                          memory_order_release);
    set_state(p, XO_NODE_UP);
    if (c->req != NULL) {
        answer_connect(net, c->req, 0, p->node, NULL);
        c->req = NULL;
    }
    xi_net_event(net, p, XO_NODE_UP, 0);
    return 0;
}

/* ---- delivering to local actors ----------------------------------------- */

/* A chain that could not be pushed: calls are answered with the error,
   tells dropped and counted. */
static void fail_chain(struct xi_conn *c, struct xi_envelope *e,
                       struct xi_envelope *last, int rc)
{
    xo_runtime_t *rt = c->net->rt;
    while (e != NULL) {
        /* relaxed: a chain this thread built. */
        struct xi_envelope *next = e == last ? NULL
            : (struct xi_envelope *)atomic_load_explicit(
                  &e->item.node.next, memory_order_relaxed);
        if (e->item.kind == XI_K_CALL) {
            struct xo_future *f = xi_request_future(e->msg.request);
            (void)xi_future_complete_item(f, e->msg.request->index, rc, NULL,
                                          NULL, false);
        } else if (c->peer != NULL) {
            bump(&c->peer->dropped, 1);
        }
        xi_envelope_free(rt, e);
        e = next;
    }
}

/* Push what was gathered, unless a batch from the wire is still open: it
   goes whole or not at all, and its rest may come with the next read. */
static void deliver_flush(struct xi_conn *c)
{
    struct delivery *d = &c->dl;
    if (d->n == 0 || d->batch_open)
        return;
    xo_ref_t to = { c->net->rt, d->to };
    int rc = xi_enqueue_chain(to, d->first, d->last);
    if (rc == XO_EFULL && d->nunits > 1) {
        /* Several sends coalesced here: each on its own, as sent. */
        for (unsigned u = 0; u < d->nunits; u++) {
            int urc = xi_enqueue_chain(to, d->unit[u].first, d->unit[u].last);
            if (urc != 0)
                fail_chain(c, d->unit[u].first, d->unit[u].last, urc);
        }
    } else if (rc != 0) {
        fail_chain(c, d->first, d->last, rc);
    }
    d->n = 0;
    d->nunits = 0;
    d->first = d->last = NULL;
}

static void deliver_add(struct xi_conn *c, uint64_t to, struct xi_envelope *e,
                        bool more)
{
    struct delivery *d = &c->dl;
    if (d->n > 0 && !d->batch_open &&
        (d->to != to || d->n >= XI_DL_MAX || d->nunits == XI_DL_MAX))
        deliver_flush(c);
    if (d->n == 0)
        d->to = to;
    if (d->first == NULL)
        d->first = e;
    else /* relaxed: the push's exchange publishes the chain */
        atomic_store_explicit(&d->last->item.node.next, &e->item.node,
                              memory_order_relaxed);
    d->last = e;
    if (!d->batch_open)
        d->unit[d->nunits++].first = e;
    d->unit[d->nunits - 1].last = e;
    d->n++;
    d->batch_open = more;
}

/* An envelope for a payload from the wire: copied, or (a chunked one put
   back together) wrapped around the decoder's block without a copy. */
static int wire_envelope(struct xi_net *net, struct xi_wire_frame *f,
                         struct xi_envelope **out)
{
    xo_runtime_t *rt = net->rt;
    int rc;
    if (f->owned != NULL) {
        xo_msg_t *m;
        rc = xo_msg_wrap(rt, 0, (void *)f->payload, f->size, free_wrapped,
                         (void *)(uintptr_t)f->owned_size, &m);
        if (rc != 0)
            return rc;
        f->owned = NULL; /* the envelope's now */
        *out = xi_container_of(m, struct xi_envelope, msg);
    } else {
        rc = xi_envelope_new(rt, 0, f->size, out);
        if (rc != 0)
            return rc;
        if (f->size > 0)
            memcpy((*out)->msg.data, f->payload, f->size);
    }
    (*out)->msg.tag = f->h.tag;
    return 0;
}

static xo_ref_t peer_ref(struct xi_conn *c, uint64_t id)
{
    if (id == 0)
        return XO_REF_NONE;
    return (xo_ref_t){ c->net->rt,
                       id | ((uint64_t)c->peer->node << XI_REF_NODE_SHIFT) };
}

static int bad(struct xi_wire_fault *fault, int code, const char *why)
{
    fault->code = code;
    snprintf(fault->why, sizeof(fault->why), "%s", why);
    return -1;
}

/* An id a peer names one of our actors by: node bits 0. */
static bool local_id(uint64_t id)
{
    return xi_ref_node(id) == 0;
}

/* A call from the peer: a proxy future for the callee to answer. 0: env
   is the call's, to deliver; 1: env is gone, the call answered at once
   with an error (no memory); -1: env is gone, the peer broke the
   protocol (fault filled). */
static int make_proxy(struct xi_conn *c, uint64_t callee, uint32_t call_id,
                      struct xi_envelope *env, struct xi_wire_fault *fault)
{
    struct xi_net *net = c->net;
    xo_runtime_t *rt = net->rt;
    struct xi_peer *p = c->peer;
    if (call_id == 0 || xi_map_get(&p->proxies, call_id) != NULL) {
        xi_envelope_free(rt, env);
        return bad(fault, XO_EPROTO, "a call id that is in use");
    }
    struct xo_future *f = NULL;
    struct xi_proxy *px = NULL;
    int rc = xi_future_new(rt, callee, 1, &f);
    if (rc == 0 && (px = xi_mem_zalloc(&rt->mem, sizeof(*px))) == NULL)
        rc = XO_ENOMEM;
    if (rc == 0 && xi_map_put(&p->proxies, call_id, px) != 0)
        rc = XO_ENOMEM;
    if (rc != 0) {
        /* Answer the caller with the error, through a future of nothing. */
        if (px != NULL)
            xi_mem_free(&rt->mem, px, sizeof(*px));
        if (f != NULL)
            xi_future_unref(f);
        xi_envelope_free(rt, env);
        struct xi_wire_hdr h = { .type = XI_WT_REPLY, .a = call_id,
                                 .c = (uint32_t)rc, .flags = XI_WF_EMPTY };
        return answer(c, wout_new(rt, &h, NULL, 0), fault) < 0 ? -1 : 1;
    }
    px->peer = p;
    /* relaxed: this thread is the generation's only writer. */
    px->conn_gen = atomic_load_explicit(&p->conn_gen, memory_order_relaxed);
    px->call_id = call_id;
    px->f = f;
    p->proxies_open++;
    xi_future_set_hook(f, xi_net_proxy_hook, px, call_id);
    env->item.kind = XI_K_CALL;
    /* relaxed: the envelope's reference; the push publishes it. */
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    env->msg.request = &f->items[0];
    if (p->proxies_open > net->cfg.max_incoming_calls)
        (void)xi_future_complete_item(f, 0, XO_EFULL,
                                      "too many calls from one node in "
                                      "flight",
                                      NULL, false);
    return 0;
}

static int on_message(struct xi_conn *c, struct xi_wire_frame *f,
                      struct xi_wire_fault *fault)
{
    struct xi_net *net = c->net;
    if (!local_id(f->h.a) || !local_id(f->h.b) || f->h.a == 0)
        return bad(fault, XO_EPROTO, "a message with a foreign actor id");
    if (f->h.tag >= XO_TAG_RESERVED)
        return bad(fault, XO_EPROTO, "a message with the runtime's own tag");
    struct xi_envelope *env;
    int rc = wire_envelope(net, f, &env);
    if (rc != 0) {
        if (f->h.type == XI_WT_CALL) {
            struct xi_wire_hdr h = { .type = XI_WT_REPLY, .a = f->h.c,
                                     .c = (uint32_t)rc,
                                     .flags = XI_WF_EMPTY };
            return answer(c, wout_new(net->rt, &h, NULL, 0), fault);
        }
        bump(&c->peer->dropped, 1);
        return 0;
    }
    env->msg.sender = peer_ref(c, f->h.b);
    bool more = (f->h.flags & XI_WF_MORE) != 0;
    if (f->h.type == XI_WT_CALL &&
        (rc = make_proxy(c, f->h.a, f->h.c, env, fault)) != 0) {
        if (rc < 0)
            return -1;
        /* Answered at once: the rest of its batch still goes, and a
           batch it ended is closed. */
        if (c->dl.n > 0)
            c->dl.batch_open = more;
        return 0;
    }
    bump(&c->peer->msgs_received, 1);
    deliver_add(c, f->h.a, env, more);
    return 0;
}

/* A buffer message from the peer: the buffer wraps the assembled block
   (a chunked one) without a copy, or is a copy of a small one; the local
   buffer send path delivers it. What cannot be delivered is dropped and
   counted, as a TELL is. */
static int on_buf(struct xi_conn *c, struct xi_wire_frame *f,
                  struct xi_wire_fault *fault)
{
    xo_runtime_t *rt = c->net->rt;
    if (!local_id(f->h.a) || !local_id(f->h.b) || f->h.a == 0)
        return bad(fault, XO_EPROTO, "a message with a foreign actor id");
    if (f->h.tag >= XO_TAG_RESERVED)
        return bad(fault, XO_EPROTO, "a message with the runtime's own tag");
    if (xi_wire_check_buf(&f->h, f->size, fault) != 0)
        return -1;
    size_t data_size = f->h.c;
    size_t size = f->size - data_size;
    void *owned = f->owned;
    size_t owned_size = f->owned_size;
    f->owned = NULL; /* deliver's, whatever happens */
    xo_ref_t to = { rt, f->h.a };
    int rc = xi_bufmsg_deliver(to, peer_ref(c, f->h.b), f->h.tag,
                               (void *)f->payload, size,
                               owned != NULL ? free_wrapped : NULL,
                               (void *)(uintptr_t)owned_size,
                               f->payload + size, data_size);
    if (rc != 0) {
        bump(&c->peer->dropped, 1);
        return 0;
    }
    bump(&c->peer->msgs_received, 1);
    return 0;
}

/* REPLY and PART: the answer to a call of ours. */
static int on_answer(struct xi_conn *c, struct xi_wire_frame *f,
                     struct xi_wire_fault *fault)
{
    struct xi_net *net = c->net;
    struct xi_peer *p = c->peer;
    if (f->h.a > UINT32_MAX)
        return bad(fault, XO_EPROTO, "a call id past 32 bits");
    uint32_t id = (uint32_t)f->h.a;
    int status = (int)f->h.c;
    if (f->h.type == XI_WT_PART) {
        struct xi_ncall *call = xi_net_call_find(p, id);
        if (call == NULL || call->count != 1)
            return bad(fault, XO_EPROTO, "a PART for no stream of ours");
        struct xi_envelope *env;
        if (wire_envelope(net, f, &env) != 0)
            return 0; /* out of memory: this part is lost */
        env->msg.sender = (xo_ref_t){ net->rt, call->f->items[0].callee };
        xi_future_push_part(call->f, env);
        return 0;
    }
    if (status > 0)
        return bad(fault, XO_EPROTO, "a REPLY with a positive status");
    char text[XI_WIRE_TEXT_MAX + 1];
    struct xi_envelope *reply = NULL;
    if (status < 0) {
        if (xi_wire_check_text(f->payload, f->size, fault) != 0)
            return -1;
        memcpy(text, f->payload, f->size);
        text[f->size] = '\0';
    } else if (!(f->h.flags & XI_WF_EMPTY)) {
        if (wire_envelope(net, f, &reply) != 0)
            status = XO_ENOMEM;
    }
    if (!xi_net_call_answer(p, id, status,
                            status < 0 && f->size > 0 ? text : NULL, reply))
        return bad(fault, XO_EPROTO, "a REPLY for no call of ours");
    return 0;
}

static int on_lookup(struct xi_conn *c, struct xi_wire_frame *f,
                     struct xi_wire_fault *fault)
{
    xo_runtime_t *rt = c->net->rt;
    if (xi_wire_check_name("a uid", f->payload, f->size, fault) != 0)
        return -1;
    char uid[XI_WIRE_NAME_MAX + 1];
    memcpy(uid, f->payload, f->size);
    uid[f->size] = '\0';
    xo_ref_t ref;
    int rc = xo_lookup(rt, uid, &ref);
    struct xi_wire_hdr h = { .type = XI_WT_REPLY, .a = f->h.c,
                             .c = (uint32_t)rc };
    struct xi_wout *w;
    if (rc == 0) {
        w = wout_new(rt, &h, &ref.id, sizeof(ref.id));
    } else {
        h.flags = XI_WF_EMPTY;
        w = wout_new(rt, &h, NULL, 0);
    }
    return answer(c, w, fault);
}

static int on_spawn(struct xi_conn *c, struct xi_wire_frame *f,
                    struct xi_wire_fault *fault)
{
    struct xi_net *net = c->net;
    struct xi_wire_spawn s;
    if (xi_wire_get_spawn(f->payload, f->size, &s, fault) != 0)
        return -1;
    struct xi_envelope *env;
    f->h.tag = 0;
    if (wire_envelope(net, f, &env) != 0) {
        struct xi_wire_hdr h = { .type = XI_WT_REPLY, .a = f->h.c,
                                 .c = (uint32_t)XO_ENOMEM,
                                 .flags = XI_WF_EMPTY };
        return answer(c, wout_new(net->rt, &h, NULL, 0), fault);
    }
    env->msg.tag = XI_TAG_NET_SPAWN;
    int rc = make_proxy(c, net->agent.id, f->h.c, env, fault);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    deliver_add(c, net->agent.id, env, false);
    return 0;
}

static int on_down(struct xi_conn *c, struct xi_wire_frame *f,
                   struct xi_wire_fault *fault)
{
    if (!local_id(f->h.a) || f->h.a == 0)
        return bad(fault, XO_EPROTO, "a DOWN with a foreign actor id");
    if (f->h.c < XO_EXIT_DESTROYED || f->h.c > XO_EXIT_NO_SUCH_ACTOR)
        return bad(fault, XO_EPROTO, "a DOWN with an unknown reason");
    if (xi_wire_check_text(f->payload, f->size, fault) != 0)
        return -1;
    char text[XI_WIRE_TEXT_MAX + 1];
    memcpy(text, f->payload, f->size);
    text[f->size] = '\0';
    xi_recovery_remote_exit(c->net->rt, peer_ref(c, f->h.a).id,
                            (xo_exit_reason_t)f->h.c, (int)(int32_t)f->h.b,
                            f->size > 0 ? text : NULL);
    return 0;
}

/* A peer watches one of our actors: the agent does (its DOWN becomes the
   peer's DOWN frame), set up now, before any message after this frame is
   delivered. */
static int on_monitor(struct xi_conn *c, struct xi_wire_frame *f,
                      struct xi_wire_fault *fault)
{
    struct xi_net *net = c->net;
    xo_runtime_t *rt = net->rt;
    if (!local_id(f->h.a) || f->h.a == 0)
        return bad(fault, XO_EPROTO, "a MONITOR of a foreign actor id");
    struct xi_net_mon *am = xi_mem_alloc(&rt->mem, sizeof(*am));
    if (am == NULL)
        return 0; /* its DOWN comes with the loss of this connection */
    *am = (struct xi_net_mon){
        c->peer->node,
        /* relaxed: this thread is the generation's only writer. */
        atomic_load_explicit(&c->peer->conn_gen, memory_order_relaxed),
        f->h.a
    };
    xo_monitor_t mon;
    pthread_mutex_lock(&net->mon_lock);
    int rc = xo_monitor(net->agent, (xo_ref_t){ rt, f->h.a }, &mon);
    if (rc == 0 && xi_map_put(&net->mons, mon.id, am) != 0) {
        (void)xo_demonitor(&mon);
        rc = XO_ENOMEM;
    }
    if (rc != 0) /* stopping, or no memory: the loss will tell them */
        xi_mem_free(&rt->mem, am, sizeof(*am));
    pthread_mutex_unlock(&net->mon_lock);
    return 0;
}

static int on_cancel(struct xi_conn *c, struct xi_wire_frame *f,
                     struct xi_wire_fault *fault)
{
    struct xi_peer *p = c->peer;
    if (f->h.a == 0 || f->h.a > UINT32_MAX || f->h.b == 0 ||
        f->h.b > c->net->cfg.max_batch || f->h.a + f->h.b - 1 > UINT32_MAX)
        return bad(fault, XO_EPROTO, "a CANCEL of ids out of range");
    for (uint64_t id = f->h.a; id < f->h.a + f->h.b; id++) {
        struct xi_proxy *px = xi_map_get(&p->proxies, id);
        if (px != NULL && !px->finished)
            (void)xo_future_cancel(px->f);
    }
    return 0;
}

static int on_frame(void *ctx, struct xi_wire_frame *f,
                    struct xi_wire_fault *fault)
{
    struct xi_conn *c = ctx;
    struct xi_net *net = c->net;
    if (c->lane && c->st == C_UP && f->h.type != XI_WT_HEARTBEAT) {
        fault->code = XO_EPROTO;
        snprintf(fault->why, sizeof(fault->why),
                 "a %s frame on the control connection",
                 xi_wire_type_name(f->h.type));
        return -1;
    }
    if (f->h.type != XI_WT_TELL && f->h.type != XI_WT_CALL)
        deliver_flush(c); /* what came before goes first */
    switch (f->h.type) {
    case XI_WT_HELLO:
        return on_hello(c, f, fault);
    case XI_WT_AUTH:
        return on_auth(c, f, fault);
    case XI_WT_BYE: {
        int code = (int)f->h.c;
        if (code == XO_EEXIST && c->req != NULL) {
            /* A connection of ours was there first: use it. */
            struct xi_peer *p = xi_net_peer_for(net, c->theirs.name,
                                                c->theirs.incarnation, false);
            if (p != NULL && p->conn != NULL) {
                answer_connect(net, c->req, 0, p->node, NULL);
                c->req = NULL;
            }
        }
        c->said_bye = true;
        c->close_code = code == XO_EAUTH ? XO_EAUTH : XO_ECLOSED;
        snprintf(c->close_why, sizeof(c->close_why), "%s",
                 code == XO_EAUTH ? "the peer refused this node's proof "
                                    "of the shared secret"
                 : code == XO_EEXIST ? "connected already"
                 : code == XO_ENOTEXIST ? "the peer refused the control "
                                          "connection"
                                     : "the peer left");
        return -1;
    }
    case XI_WT_HEARTBEAT:
        if (f->h.flags & XI_WF_REPLY) {
            uint64_t now = now_ns();
            if (f->h.a <= now)
                /* relaxed: a reading for xo_node_info. */
                atomic_store_explicit(&c->peer->rtt_ns, now - f->h.a,
                                      memory_order_relaxed);
            if (c->lane) {
                struct xi_conn *d = c->peer->conn;
                bump(&c->peer->lane_echoes, 1);
                if (d != NULL && d->rx.assembling)
                    bump(&c->peer->lane_echoes_in_transfer, 1);
            }
        } else {
            struct xi_wire_hdr h = { .type = XI_WT_HEARTBEAT,
                                     .flags = XI_WF_REPLY, .a = f->h.a };
            (void)ctl_frame(c, &h, NULL, 0);
        }
        return 0;
    case XI_WT_CANCEL:
        return on_cancel(c, f, fault);
    case XI_WT_MONITOR:
        return on_monitor(c, f, fault);
    case XI_WT_LOOKUP:
        return on_lookup(c, f, fault);
    case XI_WT_TELL:
    case XI_WT_CALL:
        return on_message(c, f, fault);
    case XI_WT_REPLY:
    case XI_WT_PART:
        return on_answer(c, f, fault);
    case XI_WT_DOWN:
        return on_down(c, f, fault);
    case XI_WT_SPAWN:
        return on_spawn(c, f, fault);
    case XI_WT_BUF:
        return on_buf(c, f, fault);
    default:
        return bad(fault, XO_EPROTO, "an unexpected frame");
    }
}

/* ---- reading ------------------------------------------------------------ */

/* Read and handle at most about `budget` bytes (a frame's end may take a
   little more); returns the bytes read. The loop reads each connection by
   this budget per turn, so a lane's heartbeat waits behind one budget of
   a bulk transfer's handling at most. */
static size_t conn_read(struct xi_conn *c, size_t budget)
{
    size_t total = 0;
    while (budget > 0) {
        size_t room = XI_RBUF - c->rlen;
        ssize_t n = read(c->fd, c->rbuf + c->rlen,
                         room < budget ? room : budget);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            char why[128];
            snprintf(why, sizeof(why), "%s",
                     n == 0 ? "the connection was closed"
                            : strerror(errno));
            c->closed_by_peer = n == 0;
            conn_close(c, c->st == C_UP || c->st == C_BYE
                              ? XO_ECLOSED
                              : (n < 0 && errno == ECONNREFUSED
                                     ? XO_ECONNREFUSED
                                     : XO_ECLOSED),
                       why);
            return total;
        }
        c->last_rx = now_ns();
        c->rlen += (size_t)n;
        total += (size_t)n;
        budget = budget > (size_t)n ? budget - (size_t)n : 0;
        if (c->peer != NULL && c->st == C_UP)
            bump(&c->peer->bytes_received, (uint64_t)n);
        struct xi_wire_fault fault = { 0, "" };
        long used = xi_wire_rx_feed(&c->rx, c->rbuf, c->rlen, on_frame, c,
                                    &fault);
        if (used < 0) {
            if (c->close_code != 0)
                conn_close(c, c->close_code, c->close_why);
            else
                conn_fault(c, &fault);
            return total;
        }
        deliver_flush(c);
        memmove(c->rbuf, c->rbuf + used, c->rlen - (size_t)used);
        c->rlen -= (size_t)used;
        if (c->st == C_BYE)
            break;
    }
    return total;
}

/* ---- writing ------------------------------------------------------------ */

/* Close the batch's open run of obuf bytes into an iovec. */
static void seg_close(struct batch *b)
{
    if (b->olen > b->seg) {
        b->iov[b->niov++] = (struct iovec){ b->obuf + b->seg,
                                            b->olen - b->seg };
        b->seg = b->olen;
    }
}

static void put_ref(struct batch *b, const void *data, size_t size)
{
    seg_close(b);
    b->iov[b->niov++] = (struct iovec){ (void *)data, size };
}

static void put_header(struct batch *b, struct xi_wire_hdr h, uint32_t size)
{
    h.version = XI_WIRE_VERSION;
    h.size = size;
    xi_wire_put_hdr(b->obuf + b->olen, &h);
    b->olen += XI_WIRE_HDR;
}

static bool batch_full(const struct batch *b)
{
    return b->niov > XI_IOV - 4 ||
           b->olen + XI_WIRE_HDR + 8 + XI_COPY_MAX > XI_OBUF;
}

/* The payload's bytes [off, off + n) into the batch, by reference. */
static void put_range(struct batch *b, const struct src *s, uint64_t off,
                      uint64_t n)
{
    if (off < s->split) {
        uint64_t k = s->split - off < n ? s->split - off : n;
        put_ref(b, s->data + off, (size_t)k);
        off += k;
        n -= k;
    }
    if (n > 0)
        put_ref(b, s->data2 + (off - s->split), (size_t)n);
}

/* Frames of s into b, within *budget. True once s is all in the batch;
   *referenced says whether the batch points into s's payload. */
static bool emit_src(struct batch *b, struct src *s, size_t *budget,
                     bool *referenced)
{
    while (*budget > 0 && !batch_full(b)) {
        if (!s->started && s->size <= XI_WIRE_PAYLOAD_MAX) {
            put_header(b, s->h, (uint32_t)s->size);
            if (s->size <= XI_COPY_MAX) {
                if (s->split > 0)
                    memcpy(b->obuf + b->olen, s->data, s->split);
                if (s->size > s->split)
                    memcpy(b->obuf + b->olen + s->split, s->data2,
                           s->size - s->split);
                b->olen += s->size;
            } else {
                put_range(b, s, 0, s->size);
                *referenced = true;
            }
            s->off = s->size;
            s->started = true;
            size_t used = XI_WIRE_HDR + s->size;
            *budget = *budget > used ? *budget - used : 0;
            return true;
        }
        uint32_t n;
        if (!s->started) {
            /* The first of a chunked payload: its whole size, a part. */
            struct xi_wire_hdr h = s->h;
            h.flags |= XI_WF_CHUNKED;
            n = XI_WIRE_PAYLOAD_MAX - 8;
            put_header(b, h, n + 8);
            xi_put_u64(b->obuf + b->olen, s->size);
            b->olen += 8;
            s->started = true;
        } else {
            uint64_t left = s->size - s->off;
            n = left > XI_WIRE_PAYLOAD_MAX ? XI_WIRE_PAYLOAD_MAX
                                           : (uint32_t)left;
            struct xi_wire_hdr h = { .type = XI_WT_CHUNK,
                                     .flags = n == left ? XI_WF_LAST : 0 };
            put_header(b, h, n);
        }
        put_range(b, s, s->off, n);
        *referenced = true;
        s->off += n;
        *budget = *budget > (size_t)n + XI_WIRE_HDR
                      ? *budget - n - XI_WIRE_HDR : 0;
        if (s->off == s->size)
            return true;
    }
    return false;
}

static uint64_t local_part(uint64_t id)
{
    return id & ~((uint64_t)XI_REF_NODE_MAX << XI_REF_NODE_SHIFT);
}

/* The frame for envelope e of the cursor's chain. */
static void src_from_env(struct xi_net *net, struct cursor *cur,
                         struct xi_envelope *e)
{
    struct xi_wire_hdr h = { 0 };
    const unsigned char *data = e->msg.data;
    uint64_t size = e->msg.size;
    if (xi_ref_node(cur->to) == 0) {
        if (cur->to == XI_SQ_MONITOR) {
            uint64_t target;
            memcpy(&target, e->msg.data, sizeof(target));
            h.type = XI_WT_MONITOR;
            h.a = local_part(target);
            size = 0;
        } else if (cur->to == XI_SQ_DOWN) {
            const struct xi_down_notice *n = e->msg.data;
            h.type = XI_WT_DOWN;
            h.a = n->target;
            h.b = (uint64_t)(uint32_t)n->code;
            h.c = (uint32_t)n->reason;
            data = (const unsigned char *)n->text;
            size = n->text_len;
        } else {
            h.type = XI_WT_SPAWN;
            h.c = e->msg.tag; /* its call id (net.h) */
        }
    } else if (e->item.flags & XI_ENV_TAILED) {
        /* A buffer message (the only tailed envelope a send makes): the
           buffer's bytes once they are ready (fill_batch asks), then the
           message's. Alone in its chain. */
        h.type = XI_WT_BUF;
        h.a = local_part(cur->to);
        xo_ref_t from = e->msg.sender;
        h.b = from.rt == net->rt && xi_ref_node(from.id) == 0 ? from.id : 0;
        h.tag = e->msg.tag;
        h.c = e->msg.size;
        uint64_t split = xi_bufmsg_size(e);
        cur->src = (struct src){ h, NULL, split + size, 0, false, e, NULL,
                                 data, split, true };
        return;
    } else {
        h.type = e->item.kind == XI_K_CALL ? XI_WT_CALL : XI_WT_TELL;
        h.a = local_part(cur->to);
        xo_ref_t from = e->msg.sender;
        h.b = from.rt == net->rt && xi_ref_node(from.id) == 0 ? from.id : 0;
        h.tag = e->msg.tag;
        if (e->item.kind == XI_K_CALL)
            h.c = cur->call_base + e->msg.request->index;
        /* relaxed: the chain is this thread's since its pop. */
        if (atomic_load_explicit(&e->item.node.next, memory_order_relaxed))
            h.flags = XI_WF_MORE;
    }
    cur->src = (struct src){ h, data, size, 0, false, e, NULL, NULL, size,
                             false };
}

static size_t chain_size(struct xi_envelope *e)
{
    size_t n = 0;
    for (; e != NULL; e = (struct xi_envelope *)atomic_load_explicit(
                          &e->item.node.next, memory_order_relaxed))
        n += xi_net_env_bytes(e);
    return n;
}

/* The next source: the rest of the chain being written, else an answer
   of ours, else the ring's next chain. */
static bool cursor_next(struct xi_conn *c)
{
    struct xi_net *net = c->net;
    struct cursor *cur = &c->cur;
    if (cur->active && cur->rest != NULL) {
        struct xi_envelope *e = cur->rest;
        cur->rest = (struct xi_envelope *)atomic_load_explicit(
            &e->item.node.next, memory_order_relaxed);
        src_from_env(net, cur, e);
        return true;
    }
    cur->active = false;
    if (c->wout != NULL) {
        struct xi_wout *w = c->wout;
        c->wout = w->next;
        if (c->wout == NULL)
            c->wout_tail = &c->wout;
        cur->src = (struct src){ w->h, w->data, w->size, 0, false, NULL, w,
                                 NULL, w->size, false };
        cur->rest = NULL;
        cur->active = true;
        return true;
    }
    struct xi_sendq_entry e;
    if (!xi_ring_pop(&c->peer->ring, &e))
        return false;
    /* relaxed: a bound (see struct xi_peer). */
    atomic_fetch_sub_explicit(&c->peer->queued_bytes, chain_size(e.first),
                              memory_order_relaxed);
    cur->to = e.to;
    cur->rest = (struct xi_envelope *)atomic_load_explicit(
        &e.first->item.node.next, memory_order_relaxed);
    if (e.first->item.kind == XI_K_CALL && xi_ref_node(e.to) != 0)
        cur->call_base =
            (uint32_t)xi_request_future(e.first->msg.request)->hook_id;
    src_from_env(net, cur, e.first);
    cur->active = true;
    return true;
}

/* The unsent bytes in the kernel's queue (0 when it cannot say). */
static size_t unsent(int fd)
{
    int n = 0;
    return ioctl(fd, SIOCOUTQNSD, &n) == 0 && n > 0 ? (size_t)n : 0;
}

/* A buffer message at the cursor: are its bytes ready? true: go on
   (ready, or dropped because they never will be: the cursor moved on);
   false: the data lane waits for them. Nothing blocks: the stream thread
   that owns the point completes it, and the I/O thread looks again (at
   most XI_BUF_POLL_NS later: tick's deadline). */
static bool src_ready(struct xi_conn *c)
{
    struct cursor *cur = &c->cur;
    struct src *s = &cur->src;
    if (!s->waiting)
        return true;
    const void *bytes = NULL;
    int rc = xi_bufmsg_ready(s->env, &bytes);
    if (rc == 0)
        return false;
    if (rc > 0) {
        s->data = bytes;
        s->waiting = false;
        return true;
    }
    /* Its stream or its copy failed: nothing to send. The message is
       dropped here, with a line in the log (a local receiver would hear
       the code from xo_msg_buf; a remote one hears nothing, as for a
       tell that cannot be delivered). */
    xi_net_log(c->net, "a buffer message to node %s's actor %#llx dropped: "
                       "its bytes were never ready (%s)",
               c->peer->name, (unsigned long long)s->h.a, xo_strerror(rc));
    xi_envelope_free(c->net->rt, s->env);
    s->env = NULL;
    if (cur->rest == NULL)
        cur->active = false;
    else
        (void)cursor_next(c);
    return true;
}

/* The data lane waits for a buffer's bytes (and looks at them now). */
static bool conn_stalled(struct xi_conn *c)
{
    return c->st == C_UP && c->cur.active && c->cur.src.waiting &&
           !src_ready(c);
}

/* Make the next batch; false: nothing to write (or data must wait). */
static bool fill_batch(struct xi_conn *c)
{
    struct xi_net *net = c->net;
    xo_runtime_t *rt = net->rt;
    struct batch *b = &c->b;
    struct cursor *cur = &c->cur;
    b->olen = b->seg = 0;
    b->niov = b->done = b->nowners = 0;
    b->msgs = 0;
    if (c->clen > 0) {
        b->ctl = c->cbuf;
        b->ctl_size = c->clen;
        b->iov[b->niov++] = (struct iovec){ b->ctl, b->ctl_size };
        c->cbuf = NULL;
        c->clen = c->ccap = 0;
    }
    bool data = c->st == C_UP && !c->lane;
    /* Under load (the last batch was full of data), data waits while the
       kernel holds enough unsent bytes: the control frames behind it then
       wait no longer than that. A lone message never pays the look. */
    c->held = false;
    if (data && c->loaded && unsent(c->fd) > XI_UNSENT_MAX) {
        data = false; /* EPOLLOUT comes below TCP_NOTSENT_LOWAT */
        c->held = true;
    }
    size_t budget = XI_BATCH_BYTES;
    while (data && budget > 0 && !batch_full(b)) {
        if (!cur->active && !cursor_next(c))
            break;
        if (!src_ready(c))
            break; /* what follows waits behind it: the pair's order */
        if (!cur->active || cur->src.waiting)
            continue; /* dropped: the next one, looked at the same way */
        bool referenced = false;
        if (!emit_src(b, &cur->src, &budget, &referenced))
            break; /* the cursor keeps what the batch points into */
        struct src *s = &cur->src;
        if (s->h.type == XI_WT_TELL || s->h.type == XI_WT_CALL ||
            s->h.type == XI_WT_BUF)
            b->msgs++;
        if (referenced) {
            b->owners[b->nowners++] = (struct owner){ s->env, s->wout };
        } else {
            if (s->env != NULL)
                xi_envelope_free(rt, s->env);
            if (s->wout != NULL)
                wout_free(rt, s->wout);
        }
        s->env = NULL;
        s->wout = NULL;
        if (cur->rest == NULL)
            cur->active = false;
        else
            (void)cursor_next(c);
    }
    if (data)
        c->loaded = budget == 0 || batch_full(b);
    seg_close(b);
    return b->niov > 0;
}

/* Write the batch. 1: all of it; 0: the socket is full; -1: c is gone. */
static int write_batch(struct xi_conn *c)
{
    struct batch *b = &c->b;
    while (b->done < b->niov) {
        struct msghdr mh = { .msg_iov = b->iov + b->done,
                             .msg_iovlen = (size_t)(b->niov - b->done) };
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0) {
            char why[128];
            snprintf(why, sizeof(why), "write: %s", strerror(errno));
            conn_close(c, XO_ECLOSED, why);
            return -1;
        }
        c->last_tx = now_ns();
        if (c->peer != NULL && c->st == C_UP)
            bump(&c->peer->bytes_sent, (uint64_t)n);
        size_t left = (size_t)n;
        while (left > 0) {
            struct iovec *v = &b->iov[b->done];
            if (left >= v->iov_len) {
                left -= v->iov_len;
                b->done++;
            } else {
                v->iov_base = (char *)v->iov_base + left;
                v->iov_len -= left;
                left = 0;
            }
        }
    }
    if (c->peer != NULL && b->msgs > 0)
        bump(&c->peer->msgs_sent, b->msgs);
    batch_release(c->net->rt, b);
    c->batch_pending = false;
    return 1;
}

/* Write what c has. true: something went; c may be gone (*gone). */
static bool conn_write(struct xi_conn *c, bool *gone)
{
    bool wrote = false;
    *gone = false;
    for (int round = 0; round < 16; round++) {
        if (!c->batch_pending) {
            if (!fill_batch(c))
                break;
            c->batch_pending = true;
        }
        int r = write_batch(c);
        if (r < 0) {
            *gone = true;
            return true;
        }
        if (r == 0)
            break; /* the socket is full */
        wrote = true;
    }
    if (c->st == C_BYE && !c->batch_pending && c->clen == 0) {
        conn_close(c, c->bye_code,
                   c->bye_code == XO_EAUTH ? "refused: failed authentication"
                   : c->bye_code == XO_ENOTEXIST ? "refused: no such session"
                                                 : "connected already");
        *gone = true;
        return wrote;
    }
    /* Wait for EPOLLOUT while a batch is half written, or while data
       waits for the kernel to drain (fill_batch's `held`). */
    bool wait = c->batch_pending || c->held;
    if (wait != c->want_out)
        epoll_set(c, wait);
    return wrote;
}

/* Something to write that is not waiting for the socket. */
static bool conn_has_output(struct xi_conn *c)
{
    if (c->want_out)
        return false;
    if (c->batch_pending || c->clen > 0 || c->st == C_BYE)
        return true;
    if (c->st != C_UP || c->lane || conn_stalled(c))
        return false;
    return c->cur.active || c->wout != NULL ||
           xi_ring_count(&c->peer->ring) > 0;
}

static bool write_all(struct xi_net *net)
{
    bool work = false;
    struct xi_conn *c = net->conns;
    while (c != NULL) {
        struct xi_conn *next = c->next;
        bool gone;
        if (conn_has_output(c) && conn_write(c, &gone))
            work = true;
        c = next;
    }
    return work;
}

/* ---- answers of calls from peers ------------------------------------------ */

/* The connection px's answer goes to, if it is still the one it came on. */
static struct xi_conn *proxy_conn(struct xi_proxy *px)
{
    struct xi_peer *p = px->peer;
    struct xi_conn *c = p->conn;
    /* relaxed: this thread is the generation's only writer. */
    if (c == NULL || c->st != C_UP ||
        atomic_load_explicit(&p->conn_gen, memory_order_relaxed) !=
            px->conn_gen)
        return NULL;
    return c;
}

static void proxy_progress(struct xi_net *net, struct xi_proxy *px)
{
    xo_runtime_t *rt = net->rt;
    struct xo_future *f = px->f;
    if (px->finished)
        return;
    struct xi_conn *c = proxy_conn(px);
    bool oom = false; /* an answer lost for want of memory */
    for (;;) {
        /* acquire: pairs with the completer's release of DONE, and the
           part producers' events. */
        uint32_t flags = atomic_load_explicit(&f->flags,
                                              memory_order_acquire);
        struct xi_qnode *n;
        while ((n = xi_mpscq_pop(&f->parts, &f->parts_tail)) != NULL) {
            struct xi_envelope *env = (struct xi_envelope *)n;
            struct xi_wout *w = NULL;
            if (c != NULL) {
                struct xi_wire_hdr h = { .type = XI_WT_PART,
                                         .a = px->call_id,
                                         .tag = env->msg.tag };
                w = wout_new(rt, &h, NULL, 0);
                oom = oom || w == NULL;
            }
            if (w != NULL) {
                w->env = env;
                w->data = env->msg.data;
                w->size = env->msg.size;
                wout_push(c, w);
            } else {
                xi_envelope_free(rt, env);
            }
        }
        if (!(flags & XI_FUT_DONE)) {
            if (oom) /* a part lost: see the end */
                conn_close(c, XO_ENOMEM, "out of memory for an answer");
            return;
        }
        if (!xi_mpscq_empty(&f->parts, f->parts_tail))
            continue; /* a part mid-link: it comes before the end */
        break;
    }
    struct xo_request *it = &f->items[0];
    if (c != NULL) {
        struct xi_wire_hdr h = { .type = XI_WT_REPLY, .a = px->call_id,
                                 .c = (uint32_t)it->status };
        struct xi_wout *w;
        if (it->status < 0) {
            const char *text = xi_item_error(it);
            if (text == NULL)
                text = xo_strerror(it->status);
            size_t len = strnlen(text, XI_WIRE_TEXT_MAX);
            h.flags = XI_WF_EMPTY;
            w = wout_new(rt, &h, text, len);
        } else {
            struct xi_envelope *reply = xi_item_reply(it);
            if (reply == NULL)
                h.flags = XI_WF_EMPTY;
            else
                h.tag = reply->msg.tag;
            w = wout_new(rt, &h, NULL, 0);
            if (w != NULL && reply != NULL) {
                it->result = NULL; /* the frame's now */
                w->env = reply;
                w->data = reply->msg.data;
                w->size = reply->msg.size;
            }
        }
        if (w != NULL)
            wout_push(c, w);
        oom = oom || w == NULL;
    }
    px->finished = true;
    struct xi_peer *p = px->peer;
    if (xi_map_get(&p->proxies, px->call_id) == px)
        (void)xi_map_del(&p->proxies, px->call_id);
    p->proxies_open--;
    xi_future_unref(f); /* the I/O thread's own: px goes with f */
    /* A part or an answer that could not be queued would leave its caller
       waiting: the connection goes instead, and the loss tells it. */
    if (oom && c != NULL)
        conn_close(c, XO_ENOMEM, "out of memory for an answer");
}

static bool drain_outbox(struct xi_net *net)
{
    bool work = false;
    struct xi_qnode *n;
    while ((n = xi_mpscq_pop(&net->outbox, &net->outbox_tail)) != NULL) {
        struct xi_proxy *px = xi_container_of(n, struct xi_proxy, node);
        struct xo_future *f = px->f;
        /* acq_rel: pairs with the hook's exchange; what it posted for is
           seen below. */
        (void)atomic_exchange_explicit(&px->posted, false,
                                       memory_order_acq_rel);
        proxy_progress(net, px);
        xi_future_unref(f); /* the outbox's reference */
        work = true;
    }
    return work;
}

/* ---- connecting, accepting ------------------------------------------------ */

static void addr_text(const struct sockaddr_storage *a, char *out,
                      size_t size)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port;
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)a;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
        port = ntohs(s->sin6_port);
        snprintf(out, size, "[%s]:%u", ip, port);
    } else {
        const struct sockaddr_in *s = (const void *)a;
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
        port = ntohs(s->sin_port);
        snprintf(out, size, "%s:%u", ip, port);
    }
}

static int errno_code(int e)
{
    switch (e) {
    case ECONNREFUSED:
        return XO_ECONNREFUSED;
    case ETIMEDOUT:
        return XO_ETIMEDOUT;
    case ENOMEM:
    case ENOBUFS:
        return XO_ENOMEM;
    default:
        return XO_ESYSTEM;
    }
}

/* Open an outbound connection: for a waiting connect (req), or a
   reconnect of p. */
/* Open a connection: to a new address (req), a peer's again (p), or a
   peer's lane (p, lane: its data connection is up, made by this node). */
static void start_connect(struct xi_net *net,
                          const struct sockaddr_storage *addr,
                          socklen_t addrlen, struct xi_peer *p,
                          struct xi_ctl *req, bool lane)
{
    char text[64];
    addr_text(addr, text, sizeof(text));
    int fd = socket(addr->ss_family,
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int err = fd < 0 ? errno : 0;
    if (fd >= 0 && connect(fd, (const struct sockaddr *)addr, addrlen) != 0 &&
        errno != EINPROGRESS)
        err = errno;
    struct xi_conn *c = NULL;
    if (err == 0 && (c = conn_new(net, fd, true)) == NULL)
        err = ENOMEM;
    if (c != NULL && lane) {
        const struct xi_conn *d = p->conn;
        c->lane = true;
        memcpy(c->session, d->hello_mine + 16, XI_WIRE_NONCE);
        memcpy(c->session + XI_WIRE_NONCE, d->theirs.nonce, XI_WIRE_NONCE);
        p->lane = c;
    }
    if (err == 0) {
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT,
                                  .data.ptr = c };
        if (epoll_ctl(net->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            err = errno;
            c->fd = -1;
        }
    }
    if (err != 0) {
        if (c != NULL) {
            c->req = req;
            c->peer = p;
            char why[128];
            snprintf(why, sizeof(why), "connect to %s: %s", text,
                     strerror(err));
            if (c->fd < 0)
                c->fd = fd; /* conn_free closes it */
            conn_close(c, errno_code(err), why);
            return;
        }
        if (fd >= 0)
            close(fd);
        if (lane) { /* one connection, then (lane_close) */
            xi_net_log(net, "node %s has no control connection (%s): its "
                            "heartbeats share the data connection",
                       p->name, strerror(err));
            p->lane = NULL;
            return;
        }
        if (req != NULL) {
            char why[128];
            snprintf(why, sizeof(why), "connect to %s: %s", text,
                     strerror(err));
            answer_connect(net, req, errno_code(err), 0, why);
        }
        if (p != NULL) {
            p->attempts++;
            p->retry_at = now_ns() + backoff(net, p->attempts);
        }
        return;
    }
    tcp_options(net, fd);
    c->st = C_CONNECTING;
    c->want_out = true;
    c->peer = p;
    c->req = req;
    c->addr = *addr;
    c->addrlen = addrlen;
    snprintf(c->addr_text, sizeof(c->addr_text), "%s", text);
    rx_init(c);
}

/* The connect finished (EPOLLOUT in C_CONNECTING). */
static void connected(struct xi_conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0) {
        char why[128];
        snprintf(why, sizeof(why), "connect to %s: %s", c->addr_text,
                 strerror(err));
        conn_close(c, errno_code(err), why);
        return;
    }
    epoll_set(c, false);
    send_hello(c);
}

static void accept_all(struct xi_net *net)
{
    for (;;) {
        struct sockaddr_storage a;
        socklen_t len = sizeof(a);
        int fd = accept4(net->lfd, (struct sockaddr *)&a, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        char text[64];
        addr_text(&a, text, sizeof(text));
        if (net->handshakes >= XI_HANDSHAKES_MAX) {
            bump(&net->refused, 1);
            xi_net_log(net, "refused a connection from %s: %u handshakes "
                            "in progress already",
                       text, XI_HANDSHAKES_MAX);
            close(fd);
            continue;
        }
        struct xi_conn *c = conn_new(net, fd, false);
        if (c == NULL) {
            close(fd);
            continue;
        }
        tcp_options(net, fd);
        c->addr = a;
        c->addrlen = len;
        snprintf(c->addr_text, sizeof(c->addr_text), "%s", text);
        rx_init(c);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(net->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            conn_close(c, XO_ESYSTEM, "epoll");
            continue;
        }
        send_hello(c);
    }
}

/* ---- requests from other threads ------------------------------------------- */

static bool same_addr(const struct sockaddr_storage *a,
                      const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port &&
               x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

/* Say goodbye on c and lose its peer (a disconnect). */
static void say_bye(struct xi_conn *c, int code)
{
    struct xi_wire_hdr h = { .type = XI_WT_BYE, .c = (uint32_t)code };
    (void)ctl_frame(c, &h, NULL, 0);
    bool gone;
    (void)conn_write(c, &gone); /* best effort: the socket may be full */
}

static void ctl_free(struct xi_net *net, struct xi_ctl *c)
{
    xi_mem_free(&net->rt->mem, c, sizeof(*c) + c->size);
}

static void handle_ctl(struct xi_net *net, struct xi_ctl *c)
{
    struct xi_peer *p = c->peer;
    switch (c->kind) {
    case XI_CTL_CONNECT:
        for (unsigned i = 1; i <= net->npeers; i++) {
            /* relaxed: this thread stored every slot. */
            struct xi_peer *q = atomic_load_explicit(&net->peers[i],
                                                     memory_order_relaxed);
            if (q->conn != NULL && q->conn->st == C_UP && q->outbound &&
                same_addr(&q->addr, &c->addr)) {
                answer_connect(net, c, 0, q->node, NULL);
                return;
            }
        }
        start_connect(net, &c->addr, c->addrlen, NULL, c, false);
        return;
    case XI_CTL_FRAME: /* relaxed: this thread writes the generation */
        if (p->conn != NULL && p->conn->st == C_UP &&
            atomic_load_explicit(&p->conn_gen, memory_order_relaxed) ==
                c->gen)
            (void)ctl_frame(p->conn, &c->h, c->payload, c->size);
        break;
    case XI_CTL_DISCONNECT:
        pthread_mutex_lock(&net->lock);
        p->reconnect = false;
        p->retry_at = 0;
        pthread_mutex_unlock(&net->lock);
        if (p->conn != NULL && p->conn->st == C_UP) {
            struct xi_conn *conn = p->conn;
            say_bye(conn, XO_ECLOSED);
            if (p->conn == conn)
                peer_lost(net, conn, XO_ECLOSED, "disconnected", false);
        } else if (/* relaxed: this thread writes the state */
                   atomic_load_explicit(&p->state, memory_order_relaxed) ==
                   XO_NODE_CONNECTING) {
            set_state(p, XO_NODE_DOWN);
            xi_net_event(net, p, XO_NODE_DOWN, XO_ECLOSED);
        }
        break;
    case XI_CTL_SEVER_LANE:
        if (p->lane != NULL && p->lane->st == C_UP) {
            (void)shutdown(p->lane->fd, SHUT_RDWR);
            conn_close(p->lane, XO_ECLOSED, "severed");
        }
        break;
    case XI_CTL_SEVER:
        while (net->conns != NULL) {
            struct xi_conn *conn = net->conns;
            (void)shutdown(conn->fd, SHUT_RDWR);
            conn_close(conn, XO_ENODELOST, "severed");
        }
        break;
    }
    ctl_free(net, c);
}

/* true: the stop came. */
static bool drain_ctl(struct xi_net *net, bool *work)
{
    struct xi_qnode *n;
    while ((n = xi_mpscq_pop(&net->ctlq, &net->ctlq_tail)) != NULL) {
        *work = true;
        if (n == &net->stop_node)
            return true;
        handle_ctl(net, xi_container_of(n, struct xi_ctl, node));
    }
    return false;
}

/* ---- clocks --------------------------------------------------------------- */

static uint64_t min_deadline(uint64_t a, uint64_t b)
{
    return a == 0 ? b : (b == 0 || a < b ? a : b);
}

/* Handshakes past their time, heartbeats due, silent peers, reconnects
   due; returns the next deadline (0: none). */
static uint64_t tick(struct xi_net *net, uint64_t now, bool *work)
{
    const xo_node_config_t *cfg = &net->cfg;
    uint64_t next = 0;
again:
    for (struct xi_conn *c = net->conns; c != NULL; c = c->next) {
        /* A close may free the connection after this one too (a lane
           takes its pair): each one starts the walk again. */
        if (c->st != C_UP) {
            if (now >= c->deadline) {
                conn_close(c, XO_ETIMEDOUT, "the handshake took too long");
                *work = true;
                goto again;
            }
            next = min_deadline(next, c->deadline);
            continue;
        }
        if (c->lane) { /* its data connection watches the silence */
            if (now - c->last_tx >= cfg->heartbeat_ns && c->clen == 0) {
                struct xi_wire_hdr h = { .type = XI_WT_HEARTBEAT, .a = now };
                (void)ctl_frame(c, &h, NULL, 0);
                c->last_tx = now;
                *work = true;
            }
            next = min_deadline(next, c->last_tx + cfg->heartbeat_ns);
            continue;
        }
        struct xi_conn *lane = c->peer->lane;
        bool lane_up = lane != NULL && lane->st == C_UP;
        /* Any byte on either connection is a sign of life. */
        uint64_t heard = c->last_rx;
        if (lane != NULL && lane->last_rx > heard)
            heard = lane->last_rx;
        if (heard > now)
            heard = now;
        if (now - heard >= cfg->loss_timeout_ns) {
            char why[96];
            snprintf(why, sizeof(why), "nothing heard for %llu ms",
                     (unsigned long long)((now - heard) / 1000000u));
            conn_close(c, XO_ENODELOST, why);
            *work = true;
            goto again;
        }
        if (c->lane_closed_at != 0) {
            if (now - c->lane_closed_at >= cfg->heartbeat_ns &&
                now >= c->lane_closed_at) {
                conn_close(c, XO_ECLOSED,
                           "its control connection was closed");
                *work = true;
                goto again;
            }
            next = min_deadline(next, c->lane_closed_at + cfg->heartbeat_ns);
        }
        if (c->outbound && lane == NULL && !c->lane_started) {
            c->lane_started = true;
            start_connect(net, &c->peer->addr, c->peer->addrlen, c->peer,
                          NULL, true);
            *work = true;
            goto again;
        }
        if (!lane_up) { /* until the lane is up, heartbeats go here */
            if (now - c->last_tx >= cfg->heartbeat_ns && c->clen == 0) {
                struct xi_wire_hdr h = { .type = XI_WT_HEARTBEAT, .a = now };
                (void)ctl_frame(c, &h, NULL, 0);
                c->last_tx = now; /* due again an interval from now */
                *work = true;
            }
            next = min_deadline(next, c->last_tx + cfg->heartbeat_ns);
        }
        next = min_deadline(next, heard + cfg->loss_timeout_ns);
        if (c->cur.active && c->cur.src.waiting)
            next = min_deadline(next, now + XI_BUF_POLL_NS);
    }
    for (unsigned i = 1; i <= net->npeers; i++) {
        struct xi_peer *p = atomic_load_explicit(&net->peers[i],
                                                 memory_order_relaxed);
        if (p->retry_at == 0 || p->conn != NULL)
            continue;
        if (now >= p->retry_at) {
            p->retry_at = 0;
            start_connect(net, &p->addr, p->addrlen, p, NULL, false);
            *work = true;
        } else {
            next = min_deadline(next, p->retry_at);
        }
    }
    return next;
}

/* ---- the loop --------------------------------------------------------------- */

static bool pending_work(struct xi_net *net)
{
    if (!xi_mpscq_empty(&net->ctlq, net->ctlq_tail) ||
        !xi_mpscq_empty(&net->outbox, net->outbox_tail))
        return true;
    for (struct xi_conn *c = net->conns; c != NULL; c = c->next)
        if (conn_has_output(c))
            return true;
    return false;
}

static bool conn_alive(struct xi_net *net, const struct xi_conn *c)
{
    for (const struct xi_conn *k = net->conns; k != NULL; k = k->next)
        if (k == c)
            return true;
    return false;
}

/* frees: net->conn_frees when this wait's events began (a connection is
   looked for in the list only when one was freed since). */
static void handle_event(struct xi_net *net, struct epoll_event *ev,
                         uint64_t frees)
{
    if (ev->data.ptr == &net->lfd) {
        accept_all(net);
        return;
    }
    if (ev->data.ptr == &net->evfd) {
        uint64_t v;
        ssize_t n = read(net->evfd, &v, sizeof(v));
        (void)n;
        return;
    }
    struct xi_conn *c = ev->data.ptr;
    /* An earlier event of this wait may have closed it (a lane's loss
       takes its pair). */
    if (net->conn_frees != frees && !conn_alive(net, c))
        return;
    if (c->st == C_CONNECTING) {
        if (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            connected(c);
        return;
    }
    if (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        /* conn_read may free c: look for it in the list after. */
        (void)conn_read(c, XI_READ_BUDGET);
        if (net->conn_frees != frees && !conn_alive(net, c))
            return;
    }
    if ((ev->events & EPOLLOUT) && c->want_out) {
        epoll_set(c, false);
        bool gone;
        (void)conn_write(c, &gone);
    }
}

static void io_finish(struct xi_net *net);

static void *io_main(void *arg)
{
    struct xi_net *net = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    xi_net_set_io_thread(net);
    struct epoll_event evs[64];
    uint64_t idle_since = now_ns();
    for (;;) {
        bool work = false;
        if (drain_ctl(net, &work))
            break;
        work |= drain_outbox(net);
        uint64_t now = now_ns();
        uint64_t next = tick(net, now, &work);
        work |= write_all(net);
        int timeout = 0;
        if (work) {
            idle_since = now;
        } else if (now - idle_since >= net->cfg.io_spin_ns) {
            /* seq_cst: the store, then the look at the queues; a producer
               pushes, then looks at the flag (xi_net_wake). */
            atomic_store(&net->io_sleeping, 1);
            atomic_thread_fence(memory_order_seq_cst);
            if (pending_work(net)) {
                atomic_store(&net->io_sleeping, 0);
            } else if (next == 0) {
                timeout = -1;
            } else {
                uint64_t t = now_ns();
                timeout = next <= t ? 0
                                    : (int)((next - t + 999999u) / 1000000u);
            }
        }
        /* Polling where the workers crowd the CPUs: give the core to a
           worker that has work (maybe the answer we wait to write). */
        if (timeout == 0 && !work && net->crowded)
            sched_yield();
        int n = epoll_wait(net->epfd, evs, 64, timeout);
        /* relaxed: awake; a producer's exchange may have been first. */
        atomic_store_explicit(&net->io_sleeping, 0, memory_order_relaxed);
        uint64_t frees = net->conn_frees;
        for (int i = 0; i < n; i++)
            handle_event(net, &evs[i], frees);
    }
    io_finish(net);
    return NULL;
}

/* The stop: no more requests; what the drain's handlers answered and what
   the rings hold is written (for a while at most), then BYE, then each
   connection goes, failing what is still in flight with XO_ECLOSED. */
static void io_finish(struct xi_net *net)
{
    pthread_mutex_lock(&net->lock);
    net->stopped = true;
    pthread_mutex_unlock(&net->lock);
    struct xi_qnode *n;
    while ((n = xi_mpscq_pop(&net->ctlq, &net->ctlq_tail)) != NULL) {
        if (n == &net->stop_node)
            continue;
        struct xi_ctl *c = xi_container_of(n, struct xi_ctl, node);
        if (c->kind == XI_CTL_CONNECT)
            answer_connect(net, c, XO_ECLOSED, 0, "the node stops");
        else
            ctl_free(net, c);
    }
    (void)drain_outbox(net);
    for (struct xi_conn *c = net->conns; c != NULL; c = c->next)
        if (c->st == C_UP && !c->lane) {
            struct xi_wire_hdr h = { .type = XI_WT_BYE,
                                     .c = (uint32_t)XO_ECLOSED };
            (void)ctl_frame(c, &h, NULL, 0);
        }
    uint64_t deadline = now_ns() + XI_STOP_FLUSH_NS;
    struct epoll_event evs[64];
    while (now_ns() < deadline) {
        (void)write_all(net);
        bool left = false;
        for (struct xi_conn *c = net->conns; c != NULL; c = c->next)
            if (c->st == C_UP &&
                (c->want_out || conn_has_output(c) || conn_stalled(c)))
                left = true;
        if (!left)
            break;
        int k = epoll_wait(net->epfd, evs, 64, 10);
        for (int i = 0; i < k; i++)
            if (evs[i].data.ptr != &net->lfd &&
                evs[i].data.ptr != &net->evfd &&
                (evs[i].events & EPOLLOUT)) {
                struct xi_conn *c = evs[i].data.ptr;
                if (c->want_out)
                    epoll_set(c, false);
            }
    }
    while (net->conns != NULL) {
        struct xi_conn *c = net->conns;
        if (c->lane && c->peer != NULL && c->peer->lane == c &&
            c->peer->conn != NULL)
            c = c->peer->conn; /* the pair goes together */
        if (c->st == C_UP && !c->lane)
            peer_lost(net, c, XO_ECLOSED, "this node stops", true);
        else
            conn_close(c, XO_ECLOSED, "the node stops");
    }
    (void)drain_outbox(net);
    for (unsigned i = 1; i <= net->npeers; i++) {
        struct xi_peer *p = atomic_load_explicit(&net->peers[i],
                                                 memory_order_relaxed);
        p->retry_at = 0;
        if (atomic_load_explicit(&p->state, memory_order_relaxed) !=
            XO_NODE_DOWN) {
            set_state(p, XO_NODE_DOWN);
            xi_net_calls_fail(p, XO_ECLOSED, "this node stops");
        }
        /* Calls from it still unanswered (a request kept by a handler):
           nobody will send their answers; the I/O thread lets go of them
           (an answer given later frees its future, unseen). */
        for (size_t s = 0; s < xi_map_cap(&p->proxies); s++) {
            struct xi_proxy *px = p->proxies.slots[s].value;
            if (p->proxies.slots[s].key == 0 || px->finished)
                continue;
            px->finished = true;
            p->proxies_open--;
            xi_future_unref(px->f);
        }
        xi_map_free(&p->proxies);
    }
}

/* ---- start, stop --------------------------------------------------------------- */

static int listen_on(struct xi_net *net)
{
    struct sockaddr_storage a;
    memset(&a, 0, sizeof(a));
    socklen_t len;
    struct sockaddr_in *v4 = (void *)&a;
    struct sockaddr_in6 *v6 = (void *)&a;
    if (inet_pton(AF_INET, net->listen_addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)net->cfg.listen_port);
        len = sizeof(*v4);
    } else if (inet_pton(AF_INET6, net->listen_addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)net->cfg.listen_port);
        len = sizeof(*v6);
    } else {
        return XO_EINVAL;
    }
    int fd = socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    if (fd < 0)
        return XO_ESYSTEM;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, len) != 0) {
        int e = errno;
        close(fd);
        return e == EADDRINUSE ? XO_EADDRINUSE
               : e == EADDRNOTAVAIL || e == EACCES ? XO_EINVAL
                                                   : XO_ESYSTEM;
    }
    if (listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return XO_ESYSTEM;
    }
    net->port = a.ss_family == AF_INET6 ? ntohs(v6->sin6_port)
                                        : ntohs(v4->sin_port);
    net->lfd = fd;
    return 0;
}

int xi_io_open(struct xi_net *net)
{
    net->epfd = epoll_create1(EPOLL_CLOEXEC);
    net->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int rc = net->epfd >= 0 && net->evfd >= 0 ? 0 : XO_ESYSTEM;
    if (rc == 0 && net->cfg.listen)
        rc = listen_on(net);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &net->evfd };
    if (rc == 0 && epoll_ctl(net->epfd, EPOLL_CTL_ADD, net->evfd, &ev) != 0)
        rc = XO_ESYSTEM;
    ev.data.ptr = &net->lfd;
    if (rc == 0 && net->lfd >= 0 &&
        epoll_ctl(net->epfd, EPOLL_CTL_ADD, net->lfd, &ev) != 0)
        rc = XO_ESYSTEM;
    if (rc != 0)
        xi_io_free(net);
    return rc;
}

int xi_io_run(struct xi_net *net)
{
    if (pthread_create(&net->io, NULL, io_main, net) != 0) {
        pthread_mutex_lock(&net->lock);
        net->stopped = true;
        pthread_mutex_unlock(&net->lock);
        return XO_ESYSTEM;
    }
    net->io_started = true;
    return 0;
}

void xi_io_stop(struct xi_net *net)
{
    if (!net->io_started) {
        pthread_mutex_lock(&net->lock);
        net->stopped = true;
        pthread_mutex_unlock(&net->lock);
        return;
    }
    /* The stop's node is net's own: it needs no memory. */
    (void)xi_mpscq_push(&net->ctlq, &net->stop_node);
    xi_net_wake(net);
    pthread_join(net->io, NULL);
    net->io_started = false;
}

void xi_io_free(struct xi_net *net)
{
    /* What other threads posted after the I/O thread ended. */
    struct xi_qnode *n;
    while ((n = xi_mpscq_pop(&net->ctlq, &net->ctlq_tail)) != NULL)
        if (n != &net->stop_node)
            ctl_free(net, xi_container_of(n, struct xi_ctl, node));
    while ((n = xi_mpscq_pop(&net->outbox, &net->outbox_tail)) != NULL)
        xi_future_unref(xi_container_of(n, struct xi_proxy, node)->f);
    if (net->lfd >= 0)
        close(net->lfd);
    if (net->evfd >= 0)
        close(net->evfd);
    if (net->epfd >= 0)
        close(net->epfd);
    net->lfd = net->evfd = net->epfd = -1;
}
