/*
 * net.h -- the net layer's objects, shared by node.c (the API, the route,
 * the futures' hooks, the node's agent actor) and io.c (the I/O thread).
 *
 * Object map
 *   xi_net    one per runtime that started a node: the config, the
 *             listening socket, the I/O thread and its wake-up, the peer
 *             table, the queues other threads hand the I/O thread work
 *             through (ctlq: control requests; outbox: answered calls).
 *   xi_peer   one per node number (1..XO_NODES_MAX), from the moment that
 *             number is given until the node is freed: a sender reads it
 *             through net->peers[] without a lock. Its state says whether
 *             sends may go; its ring holds them; its call table maps the
 *             wire ids of calls in flight to their futures.
 *   xi_conn   one per TCP connection (io.c), the I/O thread's only: the
 *             socket, the handshake, the decoder, what is being written.
 *   xi_ncall  a call (or a batch of calls) this node sent: its future and
 *             its wire ids.
 *   xi_proxy  a call a peer sent here: the local future the callee
 *             answers, whose hook brings the answer back to the I/O
 *             thread.
 *
 * Threads: senders (workers, other threads) run the route and the hooks;
 * the I/O thread runs everything else of the layer; the agent actor runs
 * on a worker. Who may touch what is said at each field.
 */
#ifndef XI_NET_NET_H
#define XI_NET_NET_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "runtime/runtime.h"
#include "map.h"
#include "ring.h"
#include "wire.h"

/* Special entries of a peer's ring: `to` is the op, with node bits 0 (a
   real destination names the peer's node). A SPAWN's wire call id is its
   envelope's tag (the frame has no tag of its own). */
enum { XI_SQ_DOWN = 1, XI_SQ_SPAWN = 2, XI_SQ_MONITOR = 3 };

/* The bytes one envelope puts in a peer's ring (counted against
   send_queue_bytes when pushed, uncounted when the I/O thread pops it):
   its payload, a buffer message's buffer too, and a header. */
static inline size_t xi_net_env_bytes(struct xi_envelope *e)
{
    size_t n = e->msg.size + XI_WIRE_HDR;
    if (e->item.flags & XI_ENV_TAILED)
        n += xi_bufmsg_size(e);
    return n;
}

/* The node's agent: its tags (the runtime's range: no user sends them). */
#define XI_TAG_NET_SPAWN 0xFFFFFF20u   /* call: a peer's SPAWN */
#define XI_TAG_NET_LOST 0xFFFFFF22u    /* a peer was lost */

/* A monitor held by the agent for a peer (net->mons, by its id here). */
struct xi_net_mon {
    unsigned node;
    uint64_t conn_gen;
    uint64_t target;   /* as the peer names it (node bits 0) */
};

/* A DOWN notice in a ring (XI_SQ_DOWN): the envelope's payload. */
struct xi_down_notice {
    uint64_t target;   /* the actor that ended, as this node names it */
    uint64_t gen;      /* for the watcher's node's connection gen only */
    unsigned node;
    int32_t reason;
    int32_t code;
    uint32_t text_len; /* the text follows */
    char text[];
};

struct xi_conn;
struct xi_net;

struct xi_peer {
    struct xi_net *net;
    unsigned node;
    /* xo_node_state_t, 0 while unused. Stored by the I/O thread (release:
       the ring and the connection generation are ready before UP is
       seen); read by senders with acquire inside their send section,
       before they push. A grace period after leaving UP the I/O thread
       knows no push is in flight (net.h's route, io.c's loss). */
    _Atomic int state;
    /* Bytes of payload queued in the ring: added by the route before its
       push, taken off by the I/O thread once written or dropped
       (relaxed: a bound, not an order). */
    _Atomic uint64_t queued_bytes;
    struct xi_ring ring;

    /* Calls in flight from here, by wire id (calls_lock). */
    pthread_mutex_t calls_lock;
    struct xi_map calls;
    uint32_t next_call;

    /* Set by the I/O thread when the number is given (under net->lock),
       then read-only but for the counters. */
    char name[XO_NODE_NAME_MAX + 1];
    uint64_t incarnation;

    /* Connections that came up: stored (release) by the I/O thread
       before it stores UP, so a sender that saw UP inside its section
       reads the generation of that connection (a new one cannot come up
       before the loss's grace period, which waits for the section). */
    _Atomic uint64_t conn_gen;
    _Atomic uint64_t rtt_ns;     /* the last heartbeat's round trip */
    /* The control lane, for the tests (xi_net_lane_info; relaxed, the
       I/O thread writes): lanes that came up, heartbeat echoes they
       brought, those of them that came while a chunked payload was being
       received on the data connection. */
    _Atomic uint64_t lane_ups, lane_echoes, lane_echoes_in_transfer;
    _Atomic bool lane_is_up;

    /* The I/O thread's (and xo_node_info's, under net->lock). */
    struct xi_conn *conn;
    struct xi_conn *lane;        /* its control lane, once opened (io.c) */
    bool outbound;               /* this node connects it */
    bool reconnect;              /* ... and does so again after a loss */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char addr_text[64];
    unsigned attempts;           /* reconnects since the loss */
    uint64_t retry_at;           /* next reconnect (0: none) */
    struct xi_map proxies;       /* calls from it being handled, by id */
    uint64_t proxies_open;
    int last_error;
    uint64_t losses, connects;

    /* Counters (relaxed; single writer each: the I/O thread, but for
       dropped which the I/O thread also writes). */
    _Atomic uint64_t msgs_sent, msgs_received, bytes_sent, bytes_received,
        dropped;
};

/* A call or batch sent to a peer (caller side): in peer->calls under each
   of its ids, until every item was answered or the peer was lost. */
struct xi_ncall {
    struct xo_future *f;         /* a reference of its own */
    struct xi_ncall *next;       /* a loss's list of them */
    uint32_t base;               /* the wire id of item 0 */
    uint32_t count, open;
    unsigned char answered[];    /* a bit per item */
};

/* A call from a peer (callee side). */
struct xi_proxy {
    struct xi_qnode node;        /* in net->outbox while posted */
    _Atomic bool posted;
    bool finished;               /* the I/O thread answered the peer */
    struct xi_peer *peer;
    uint64_t conn_gen;           /* the connection it came on */
    uint32_t call_id;
    struct xo_future *f;
};

/* A request from another thread to the I/O thread (ctlq). */
enum xi_ctl_kind {
    XI_CTL_CONNECT = 1, /* open a connection; answer through f */
    XI_CTL_FRAME,       /* send a control frame to peer (hdr + payload) */
    XI_CTL_DISCONNECT,  /* close peer's connection for good */
    XI_CTL_SEVER,       /* close every connection without a word */
    XI_CTL_SEVER_LANE,  /* close peer's control lane without a word */
};

struct xi_ctl {
    struct xi_qnode node;
    enum xi_ctl_kind kind;
    struct xi_peer *peer;
    struct xo_future *f;         /* CONNECT: completed with the node
                                    number, or an error */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char addr_text[64];
    uint64_t gen;                /* FRAME: for this connection only */
    struct xi_wire_hdr h;        /* FRAME */
    uint32_t size;
    unsigned char payload[];
};

struct xi_type {
    struct xi_type *next;
    const xo_actor_def_t *def;
    xo_spawn_opts_t opts;
    char name[];
};

struct xi_net {
    xo_runtime_t *rt;
    xo_node_config_t cfg;        /* a copy: strings point into names */
    char name[XO_NODE_NAME_MAX + 1];
    char listen_addr[64];
    uint64_t incarnation;
    int epfd, evfd, lfd;         /* lfd: -1 when not listening */
    unsigned port;
    pthread_t io;
    bool io_started;
    bool crowded;                /* the pools and the I/O thread outnumber
                                    the CPUs: its polls yield the core */
    /* 1 while the I/O thread is, or is about to be, asleep in epoll_wait:
       stored seq_cst by it before its last look at its queues; a producer
       that pushed, then (seq_cst fence) sees 1, exchanges it to 0 and
       writes the eventfd. Exactly one wake per sleep. */
    _Atomic int io_sleeping;
    bool stopped;                /* the I/O thread takes no more requests
                                    (lock) */

    struct xi_mpscq ctlq;        /* struct xi_ctl, any thread -> I/O */
    struct xi_qnode *ctlq_tail;
    struct xi_qnode stop_node;   /* in ctlq: the runtime stops */
    struct xi_mpscq outbox;      /* struct xi_proxy, hooks -> I/O */
    struct xi_qnode *outbox_tail;

    /* The peer table: a slot is set once (release, under lock) and never
       cleared until the node is freed; senders load it with acquire. */
    _Atomic(struct xi_peer *) peers[XO_NODES_MAX + 1];
    unsigned npeers;             /* numbers given (lock) */
    pthread_mutex_t lock;        /* the table, names, types, subscribers,
                                    info's reads of I/O fields */
    struct xi_type *types;
    /* The monitors peers asked for: set up by the I/O thread (a MONITOR
       frame), fired into the agent, which sends the DOWN. mon_lock is
       held across xo_monitor and the insert, so the agent never sees a
       DOWN before its entry; it is taken before the relation lock. */
    pthread_mutex_t mon_lock;
    struct xi_map mons;
    uint64_t *subscribers;       /* actor ids (lock) */
    size_t nsubscribers, subscribers_cap;
    xo_ref_t agent;

    /* The I/O thread's own. */
    struct xi_conn *conns;       /* every open connection */
    unsigned handshakes;         /* connections not yet up */
    uint64_t conn_frees;         /* connections freed so far */
    /* Counters for node 0 (relaxed, I/O thread writes). */
    _Atomic uint64_t refused, faults;
};

/* ---- node.c -------------------------------------------------------- */

/* Wake the I/O thread if it sleeps (after a push, from any thread). */
void xi_net_wake(struct xi_net *net);
/* Hand the I/O thread a request (any thread). XO_ECLOSED (c is freed):
   the I/O thread is gone. */
int xi_net_post(struct xi_net *net, struct xi_ctl *c);
/* The peer of that name and incarnation; with `give`, one is made under
   a new number if there is none (I/O thread). NULL: none (or no number
   left). */
struct xi_peer *xi_net_peer_for(struct xi_net *net, const char *name,
                                uint64_t incarnation, bool give);
/* The hooks set on the futures of calls that cross (node.c). */
void xi_net_caller_hook(struct xo_future *f, enum xi_hook_what what);
void xi_net_proxy_hook(struct xo_future *f, enum xi_hook_what what);
/* Caller side: take the call table's entries for item `id` (I/O thread,
   on a REPLY or PART). */
struct xi_ncall *xi_net_call_find(struct xi_peer *p, uint32_t id);
/* Fail every call in flight to p with code and message (a loss, a stop). */
void xi_net_calls_fail(struct xi_peer *p, int code, const char *why);
/* Complete item `id` of a call with a reply from the wire; true when the
   id was a known, open item (I/O thread). */
bool xi_net_call_answer(struct xi_peer *p, uint32_t id, int status,
                        const char *error, struct xi_envelope *reply);
/* Push a special entry into p's ring, as the route pushes a chain (inside
   a read-side section). 0, XO_ENODELOST, XO_EFULL. */
int xi_net_push_special(struct xi_peer *p, uint64_t to,
                        struct xi_envelope *env, size_t bytes);
/* Tell every subscriber and cfg.on_event (I/O thread). */
void xi_net_event(struct xi_net *net, struct xi_peer *p, int state,
                  int reason);
/* The agent's definition (node.c). */
extern const xo_actor_def_t xi_net_agent_def;
/* Log a line through cfg.on_log (or stderr). */
void xi_net_log(struct xi_net *net, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The I/O thread of this net is the calling thread. */
bool xi_net_on_io(const struct xi_net *net);

/* A test hook: have the I/O thread close every connection at once,
   without a BYE, as a crash would (both ends see their peer lost). */
int xi_net_sever(xo_runtime_t *rt);
/* Test hooks for the control lane: close node's lane alone (both ends
   then lose the node, once), and read its state and counters. */
int xi_net_sever_lane(xo_runtime_t *rt, unsigned node);
struct xi_lane_info {
    bool up;
    uint64_t ups, echoes, echoes_in_transfer;
};
int xi_net_lane_info(xo_runtime_t *rt, unsigned node,
                     struct xi_lane_info *out);

/* ---- io.c ------------------------------------------------------------ */

/* The sockets: the listener (its port into net->port), epoll, the
   eventfd. On error nothing is left open. */
int xi_io_open(struct xi_net *net);
/* Start the I/O thread. */
int xi_io_run(struct xi_net *net);
/* Runtime stop: the I/O thread says goodbye, fails what is in flight,
   and ends; joined here. */
void xi_io_stop(struct xi_net *net);
/* Free what the I/O thread left (after stop). */
void xi_io_free(struct xi_net *net);

#endif /* XI_NET_NET_H */
