/*
 * xoscar -- an actor runtime for heterogeneous computing.
 *
 * This is the public API, with xoscar_gpu.h (GPU pools and buffers, included
 * at the end) and xoscar_shm.h (the stats snapshot's format, for a reader in
 * another process). Read it top to bottom: error codes, types,
 * then functions grouped by object in the order of their lifetime:
 * runtime (config, start, stop, free), actors (define, spawn, lookup,
 * destroy), messages (tell, zero-copy send), handler context, pools.
 *
 * Conventions: every function that can fail returns 0 or a negative XO_E*
 * code (xo_strerror gives the message) and hands results back through
 * out-parameters. Config and option structs have an _init function that
 * fills the defaults; set only what you need after calling it.
 */
#ifndef XOSCAR_XOSCAR_H
#define XOSCAR_XOSCAR_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(XO_BUILDING_LIBRARY) && defined(__GNUC__)
#define XO_API __attribute__((visibility("default")))
#else
#define XO_API
#endif

#define XO_VERSION_MAJOR 0
#define XO_VERSION_MINOR 1
#define XO_VERSION_PATCH 0

/* ------------------------------------------------------------------ */
/* Error codes                                                         */
/* ------------------------------------------------------------------ */

/*
 * X(name, value, message). Codes that have a POSIX errno twin use its
 * negated value; the others live above 4000 so they never collide.
 */
#define XO_ERRNO_MAP(X)                                                     \
    X(EINVAL,    -22,   "invalid argument")                                \
    X(ENOMEM,    -12,   "out of memory")                                   \
    X(EEXIST,    -17,   "an actor with this uid already exists")           \
    X(ENOTEXIST, -4001, "no such actor (unknown, or already destroyed)")   \
    X(ECLOSED,   -4002, "the runtime is stopping or stopped")              \
    X(ETIMEDOUT, -110,  "timed out")                                       \
    X(EDEADLK,   -35,   "waiting would close a cycle of waits (deadlock)")  \
    X(ECANCELED, -125,  "the call was cancelled")                          \
    X(EEOF,      -4003, "end of stream")                                   \
    X(ENOSLOT,   -4004, "no pool fits the placement")                      \
    X(EFULL,     -4005, "the actor's mailbox is full")                     \
    X(EDEPTH,    -4006, "blocking waits nested too deep on one worker")    \
    X(ELINKED,   -4007, "a linked actor failed")                           \
    X(EADDRINUSE, -98,  "the address is in use")                           \
    X(ESYSTEM,   -4008, "a system call failed")                            \
    X(ENOSYS,    -38,   "operation not supported by this build")           \
    X(EGPU,      -4009, "a GPU operation failed")                         \
    X(ENODELOST, -4040, "the node is lost: its connection is gone")       \
    X(EAUTH,     -4041, "the peer failed authentication (wrong or no "   \
                        "shared secret)")                                  \
    X(EPROTO,    -71,   "the peer broke the wire protocol")               \
    X(ECONNREFUSED, -111, "connection refused")

typedef enum xo_errno {
#define XO_ERRNO_ENUM_(name, value, msg) XO_##name = (value),
    XO_ERRNO_MAP(XO_ERRNO_ENUM_)
#undef XO_ERRNO_ENUM_
    XO_OK = 0
} xo_errno_t;

/* A static English message for an error code ("unknown error" if none). */
XO_API const char *xo_strerror(int err);
/* The code's symbolic name without the prefix, e.g. "ENOTEXIST". */
XO_API const char *xo_err_name(int err);

/* ------------------------------------------------------------------ */
/* Types                                                               */
/* ------------------------------------------------------------------ */

typedef struct xo_runtime xo_runtime_t;
typedef struct xo_ctx xo_ctx_t;
typedef struct xo_future xo_future_t;
typedef struct xo_request xo_request_t;

/*
 * A reference to an actor: a small value, copied freely, never owning.
 * `id` packs, from bit 0, a slot index (28 bits), a node (12 bits: 0 is
 * this process; other nodes come with the network layer) and the
 * generation of the actor that held the slot (24 bits, never 0); a zero id
 * is the null ref. Treat it as opaque: compare refs with xo_ref_eq. A ref to
 * a destroyed actor stays safe to use: every operation through it returns
 * XO_ENOTEXIST, even after its slot and its uid were given to a new actor.
 * Refs are valid until xo_runtime_free of their runtime.
 */
typedef struct xo_ref {
    xo_runtime_t *rt;
    uint64_t id;
} xo_ref_t;

#define XO_REF_NONE ((xo_ref_t){ NULL, 0 })

static inline bool xo_ref_is_none(xo_ref_t ref) { return ref.id == 0; }
static inline bool xo_ref_eq(xo_ref_t a, xo_ref_t b)
{
    return a.rt == b.rt && a.id == b.id;
}

/*
 * A message as a handler sees it. The handler may read it during the call
 * only; the runtime frees it afterwards. `sender` is the actor that sent it,
 * or XO_REF_NONE when it came from a thread outside the runtime. `request`
 * is set when the message is a call (xo_call): answer it with xo_reply.
 * `data` of a payload the runtime holds (copied by a send, or filled after
 * xo_msg_alloc) is aligned for any object of its size: 16 bytes when `size`
 * is over 8, 8 bytes otherwise; a wrapped buffer (xo_msg_wrap) is the
 * caller's own.
 */
typedef struct xo_msg {
    uint32_t tag;
    uint32_t size;
    void *data;
    xo_ref_t sender;
    xo_request_t *request;
} xo_msg_t;

/* ------------------------------------------------------------------ */
/* Runtime                                                             */
/* ------------------------------------------------------------------ */

typedef void (*xo_error_fn)(xo_runtime_t *rt, xo_ref_t actor, uint32_t tag,
                            int err, void *user);

/*
 * Watchdog alerts (docs/observability.md says what each means and what to
 * do about it). One struct for every kind; the fields a kind does not use
 * are zero.
 */
typedef enum xo_alert_kind {
    XO_ALERT_SLOW_HANDLER = 1, /* one handler run past cfg.slow_handler_ns */
    XO_ALERT_STUCK_TURN,       /* one turn keeps its worker past
                                  cfg.stuck_turn_ns */
    XO_ALERT_SLOW_CALL,        /* a blocking wait past cfg.slow_call_ns */
    XO_ALERT_MAILBOX_DEPTH,    /* a mailbox deeper than
                                  cfg.mailbox_depth_alert */
    XO_ALERT_MAILBOX_AGE,      /* a mailbox whose oldest message waited
                                  past cfg.mailbox_age_ns */
} xo_alert_kind_t;

#define XO_ALERT_KINDS 6       /* kinds are 1 .. XO_ALERT_KINDS - 1 */
#define XO_ALERT_CHAIN_MAX 8

typedef struct xo_alert {
    xo_alert_kind_t kind;
    /* The actor: the slow handler's, the stuck turn's, the waiting
       caller's (XO_REF_NONE: a thread outside the runtime), the
       backlogged mailbox's. */
    xo_ref_t actor;
    const char *definition; /* its definition's name ("?" when unnamed) */
    const char *uid;        /* its uid, or NULL */
    unsigned pool;          /* the pool it runs on (a caller outside the
                               runtime: 0) */
    uint32_t tag;           /* slow handler, stuck turn: the message's tag */
    /* Slow handler, stuck turn: time in it so far; slow call: time waited;
       mailbox age: the oldest message's age; mailbox depth: 0. */
    uint64_t elapsed_ns;
    uint64_t threshold_ns;  /* the threshold crossed (depth: in messages) */
    unsigned multiple;      /* 1 at the threshold, 2 at twice it, ... */
    uint64_t depth;         /* mailbox alerts: messages waiting */
    double growth_per_s;    /* mailbox alerts: depth change per second
                               since the watchdog's last look */
    /* Slow call: the chain of waits from the caller on: chain[0] is the
       callee, chain[1] what the callee itself waits for (or the actor
       whose turn holds it down on its worker), and so on. */
    unsigned chain_len;
    xo_ref_t chain[XO_ALERT_CHAIN_MAX];
} xo_alert_t;

typedef void (*xo_alert_fn)(xo_runtime_t *rt, const xo_alert_t *alert,
                            void *user);

/*
 * A pool is the unit of placement: a kind of worker and its labels. A CPU
 * pool is one worker thread pinned to one core; a GPU pool one host thread
 * (its stream thread) owning one stream of one device (docs/gpu.md).
 */
typedef enum xo_pool_kind {
    XO_POOL_CPU = 1,
    XO_POOL_GPU = 2,
} xo_pool_kind_t;

typedef enum xo_pool_state {
    XO_POOL_RUNNING = 1,
    XO_POOL_REMOVING = 2, /* xo_pool_remove is draining it */
    XO_POOL_REMOVED = 3,  /* its index stays taken; it runs nothing */
    XO_POOL_FAILED = 4,   /* a GPU pool whose device failed: its actors
                             ended (XO_EXIT_DEVICE_FAILED), it takes no new
                             ones; xo_pool_remove clears it */
} xo_pool_state_t;

/* Which GPU backend a runtime's GPU pools use (docs/gpu.md). */
typedef enum xo_gpu_backend {
    XO_GPU_AUTO = 0,  /* CUDA where this build has it and a device is
                         visible, the host backend otherwise */
    XO_GPU_CUDA,      /* CUDA only: XO_ENOSYS where not built, XO_EGPU
                         where no device is visible */
    XO_GPU_HOST,      /* the host backend: the same stream threads, with
                         host work in place of the device's */
} xo_gpu_backend_t;

/* cfg.gpu_devices: a pool on every visible device. */
#define XO_GPU_ALL (-1)
#define XO_GPU_DEVICES_MAX 64  /* devices a runtime uses at most */
#define XO_GPU_STREAMS_MAX 16  /* cfg.gpu_streams */

typedef struct xo_pool_spec {
    xo_pool_kind_t kind;  /* 0 is taken as XO_POOL_CPU */
    int cpu;              /* CPU pools: the CPU to pin to; -1: the i-th CPU
                             this process may run on (at start), or the
                             next, round-robin (xo_pool_add) */
    int device;           /* GPU pools: the device; -1: the next visible
                             one, round-robin */
    const char *labels;   /* user labels, comma-separated ("io,fast"; NULL
                             for none; no empty label, so no leading,
                             trailing or double comma) */
} xo_pool_spec_t;

/* kind XO_POOL_CPU, cpu and device -1, no labels. */
XO_API void xo_pool_spec_init(xo_pool_spec_t *spec);

/* cfg.metrics_port: serve on a free port of the system's choosing. */
#define XO_METRICS_PORT_ANY 65536u

/* Limits of a runtime's config (beyond them, XO_EINVAL at start). */
#define XO_POOLS_MAX 256u     /* pool indexes, removed pools included */
#define XO_BATCH_MAX 4096u    /* cfg.batch */
#define XO_STACK_MIN ((size_t)64 << 10) /* cfg.stack_size */

typedef struct xo_config {
    /* CPU pools, one worker thread each, at most XO_POOLS_MAX. 0: one per
       CPU this process may run on (sched_getaffinity). */
    unsigned pools;
    /* Optional, `pools` entries: pool i as specs[i] describes it (NULL:
       `pools` CPU pools, each on the i-th CPU this process may run on,
       without user labels). Every CPU pool also carries the label "cpu".
       Read at start only. */
    const xo_pool_spec_t *pool_specs;
    /* Pin pool i's worker to the i-th allowed CPU. Where the system refuses,
       the worker runs unpinned and xo_pool_info reports pinned = false. */
    bool pin_threads;
    /* Messages an actor handles per turn before its worker moves on to the
       next runnable actor (fairness): 1 to XO_BATCH_MAX. Default 64. */
    unsigned batch;
    /* How long an idle worker polls its run queue before it parks on a
       futex, in nanoseconds. Default 50000 (50 us). 0: park at once. */
    uint64_t spin_ns;
    /* A handler that has sent this many messages in one turn lends its
       worker to what is queued behind it (up to `batch` turns run inside
       that send), and again after each as many more: a producer does not
       keep the consumers in its pool off the core until its flood ends,
       and the flood does not pile up in their mailboxes. Default 256.
       0: never. A handler run that way which waits for the yielding actor
       gets XO_EDEADLK (docs/scheduler.md, "Yielding"). */
    unsigned yield_sends;
    /* Idle CPU workers take movable actors (xo_spawn_opts_t.move) that
       wait behind a busy worker, half of what it has queued at a time
       (docs/scheduler.md, "Locality"). Default true. false: a movable
       actor runs where the send that made it runnable was made, and a
       worker never takes work from another. */
    bool steal;
    /* How long a movable actor waits in a busy worker's queue before an
       idle worker may take it, in nanoseconds. Default 200000 (200 us,
       docs/scheduler.md says why): a worker that runs what it queues
       sooner keeps it, and its messages stay on one core. 0: take any
       queued work at once. */
    uint64_t steal_wait_ns;
    /* Stack of each worker thread, in bytes: default 8 MiB, at least
       XO_STACK_MIN. A handler's blocking wait runs other turns nested on its
       worker's stack (at most XO_MAX_NESTED_WAITS deep), each with its
       handler's own frames; the runtime's part of a turn takes a few
       hundred bytes, whatever cfg.batch is. */
    size_t stack_size;
    /* Called on the worker when a handler of a one-way message returns a
       negative code. NULL: the failure is only counted (xo_actor_stats). */
    xo_error_fn on_handler_error;
    void *on_handler_error_user;

    /* ---- observability (docs/observability.md) ---- */
    /* The watchdog: a thread of the runtime that looks at every worker
       each watch_tick_ns and at every actor each tenth tick (less often
       when that scan would take over 1 % of a core). Default
       10 ms; 0: no watchdog (no alerts, no oldest-message ages, no shared
       memory snapshot). Each threshold below: 0 turns its alert off. */
    uint64_t watch_tick_ns;
    /* One handler run longer than this: XO_ALERT_SLOW_HANDLER, once at the
       threshold and again at each multiple. Default 100 ms. */
    uint64_t slow_handler_ns;
    /* One turn that keeps its worker longer than this (a handler that never
       lets the worker go): XO_ALERT_STUCK_TURN, once per turn. Default 1 s. */
    uint64_t stuck_turn_ns;
    /* A blocking wait for a call (or a destroy, a stream part) longer than
       this: XO_ALERT_SLOW_CALL, at the threshold and each multiple.
       Default 10 s, as Xoscar's debug mode. */
    uint64_t slow_call_ns;
    /* A mailbox with more messages waiting than this:
       XO_ALERT_MAILBOX_DEPTH. Default 10000. */
    uint64_t mailbox_depth_alert;
    /* A mailbox whose oldest message waited longer than this:
       XO_ALERT_MAILBOX_AGE. Default 1 s. */
    uint64_t mailbox_age_ns;
    /* Where alerts go, on the watchdog's thread (which runs no other
       check meanwhile: keep it short; xo_runtime_stop and free refuse
       from it with XO_EINVAL). NULL: one line each to stderr
       (xo_alert_format). */
    xo_alert_fn on_alert;
    void *on_alert_user;
    /* Handler times: each worker times the first handler run of about
       one turn in this many (at random gaps of 1 to 2x-1 turns, so that
       turns that repeat with a period are all sampled): the histogram in
       xo_actor_stats_t. Timed with the CPU's counter (the invariant
       TSC on x86-64, calibrated once per process; CLOCK_MONOTONIC where
       there is none). Default 64; 1: every handler run; 0: none. */
    unsigned handler_sample;
    /* Serve the metrics (xo_metrics_write) over HTTP at /metrics on this
       TCP port, from a thread of the runtime (docs/metrics.md): 1 to
       65535, or XO_METRICS_PORT_ANY (a free port the system picks;
       xo_metrics_port says which). 0 (default): no server. A port that is
       taken makes xo_runtime_start fail with XO_EADDRINUSE. */
    unsigned metrics_port;
    /* The address it binds, numeric IPv4 or IPv6 ("0.0.0.0", "::1"):
       default (NULL) "127.0.0.1". Read at start only. One that is not an
       address of this host, or a port this process may not bind: XO_EINVAL
       at start. */
    const char *metrics_addr;
    /* Publish a read-only snapshot of the stats in shared memory for
       xoscar-top, refreshed every stats_shm_ns (default 500 ms) by the
       watchdog: /dev/shm/xoscar-<pid> (a second runtime of the process
       adds -<n>), unlinked at stop. Default false. Needs the watchdog
       (XO_EINVAL without). Its format: <xoscar/xoscar_shm.h>. */
    bool stats_shm;
    uint64_t stats_shm_ns;

    /* ---- GPU pools (docs/gpu.md) ---- */
    /* The backend, chosen when the first GPU pool (or buffer) is made. */
    xo_gpu_backend_t gpu_backend;
    /* Devices that get GPU pools at start, after the CPU pools: 0 (the
       default) none; XO_GPU_ALL every visible device; n the devices 0 to
       n - 1 (more than are visible: XO_EINVAL). Pools can also be added
       later (xo_pool_add with kind XO_POOL_GPU). */
    int gpu_devices;
    /* Pools per device, each with its own stream thread and stream:
       1 (the default) to XO_GPU_STREAMS_MAX. */
    unsigned gpu_streams;
    /* The devices the host backend has (default 1, at most
       XO_GPU_DEVICES_MAX): host memory stands for each one's. */
    unsigned gpu_host_devices;
} xo_config_t;

XO_API void xo_config_init(xo_config_t *cfg);

/* Start a runtime: workers are running when it returns. cfg may be NULL
   (defaults). Errors: XO_EINVAL (bad config), XO_ENOMEM, XO_EADDRINUSE
   (cfg.metrics_port is taken), XO_ESYSTEM (the shared-memory snapshot of
   cfg.stats_shm could not be made: see docs/top.md), XO_ENOSYS and
   XO_EGPU (the GPU pools cfg.gpu_devices asks for: no CUDA backend in
   this build, no device, a device that could not be set up;
   xo_gpu_last_error says why). A failed start leaves nothing behind. */
XO_API int xo_runtime_start(const xo_config_t *cfg, xo_runtime_t **out);

/*
 * Stop a runtime and lose nothing: from the moment it begins, sends, spawns,
 * lookups and destroys anywhere return XO_ECLOSED; every message accepted
 * before that is handled; every live actor's on_destroy runs once (on its
 * worker, after its mailbox is empty); then the worker threads are joined
 * and all memory but the runtime handle itself is released. Call it from a
 * thread outside the runtime (XO_EINVAL from a handler). A second call
 * returns XO_ECLOSED.
 */
XO_API int xo_runtime_stop(xo_runtime_t *rt);

/* Release the handle (stopping first if needed). Refs into the runtime must
   not be used afterwards. Returns 0, or XO_EINVAL, having done nothing,
   when called where xo_runtime_stop is refused (a handler, one of the
   runtime's workers): a runtime cannot be freed under its own threads. */
XO_API int xo_runtime_free(xo_runtime_t *rt);

/* ------------------------------------------------------------------ */
/* Actors                                                              */
/* ------------------------------------------------------------------ */

/*
 * An actor type. The runtime keeps a pointer to it: it must outlive every
 * actor of the type (a static const struct is the usual form).
 *
 * A stateful actor's handlers never run on two threads at once, and the
 * messages from one sender arrive in the order they were sent.
 *
 * on_create   runs inside xo_spawn, on the spawning thread, before the ref
 *             is returned; state is zeroed first. It may send messages,
 *             also to itself (handled after it returns). A negative return
 *             makes xo_spawn fail with that code: the actor never existed,
 *             its uid stays free, on_destroy does not run, and what it had
 *             sent to itself is dropped.
 * on_message  handles one message on the actor's worker. For a call, a
 *             negative return (with xo_fail for a message) completes the
 *             caller's future with that error unless the handler replied;
 *             for a one-way message it is counted and passed to the
 *             config's on_handler_error.
 * on_batch    optional: receives a run of consecutive messages with the same
 *             tag (up to cfg.batch) in one call, in order. Without it they
 *             go to on_message one by one. Calls among them are answered
 *             as usual (xo_reply on each message's request).
 * on_destroy  runs once, on the actor's worker, after every message
 *             accepted before the destroy was handled. A negative return
 *             cancels the destroy: the actor stays alive (and keeps its
 *             uid unless another actor took it meanwhile) and xo_destroy
 *             returns the code. During xo_runtime_stop the actor goes
 *             regardless.
 * All may be NULL.
 *
 * flags: XO_ACTOR_STATELESS lets the handlers of one actor run on several
 * workers at once (the runtime does not serialise them; on_batch is not
 * used). Its state is shared by those runs: keep it read-only or
 * synchronise it yourself.
 */
#define XO_ACTOR_STATELESS 1u

/* The largest state_size xo_spawn accepts. */
#define XO_STATE_MAX ((size_t)1 << 40)

typedef struct xo_actor_def {
    const char *name;
    size_t state_size; /* at most XO_STATE_MAX, else XO_EINVAL */
    uint32_t flags;
    int (*on_create)(xo_ctx_t *ctx, void *state, const void *arg,
                     size_t arg_size);
    int (*on_message)(xo_ctx_t *ctx, void *state, const xo_msg_t *msg);
    int (*on_batch)(xo_ctx_t *ctx, void *state, const xo_msg_t *const *msgs,
                    size_t count);
    int (*on_destroy)(xo_ctx_t *ctx, void *state);
} xo_actor_def_t;

/* When an actor is restarted (docs/recovery.md). */
typedef enum xo_restart {
    XO_RESTART_NEVER = 0,   /* a failure ends it (Erlang's temporary) */
    XO_RESTART_ON_FAILURE,  /* restarted after a failure (transient) */
    XO_RESTART_ALWAYS,      /* also after it destroys itself (permanent) */
} xo_restart_t;

/* The largest restart_max. */
#define XO_RESTART_MAX 1024u

#define XO_POOL_ANY (-1)
#define XO_UID_MAX 255

/*
 * Where a new actor lives: Xoscar's allocation strategies, plus what a
 * latency-sensitive C program needs. Removed, removing and failed pools are
 * never chosen. XO_ENOSLOT when no pool fits. The policies that choose
 * among pools (least loaded, random, round robin) choose among the pools
 * carrying `label` when it is set, and among the CPU pools when it is not:
 * a GPU pool ("gpu", "gpu:N") is chosen by its label, by index, or near
 * one of its actors.
 */
typedef enum xo_place_kind {
    XO_PLACE_LEAST_LOADED = 0, /* the default: the least busy worker
                                  (parked or idle, ranked alike, then
                                  running, then with a queue), then
                                  fewest actors */
    XO_PLACE_POOL,             /* `pool` */
    XO_PLACE_MAIN,             /* pool 0 */
    XO_PLACE_RANDOM,
    XO_PLACE_RANDOM_LABEL,     /* a random pool carrying `label` (required) */
    XO_PLACE_IDLE_LABEL,       /* the first pool carrying `label` that holds
                                  no live actor placed with the same label
                                  and `mark` (Xoscar's IdleLabel: one actor
                                  per card with label "gpu") */
    XO_PLACE_ROUND_ROBIN,
    XO_PLACE_NEAR,             /* the pool of actor `near` */
    XO_PLACE_CALLBACK,         /* ask `fn` */
} xo_place_kind_t;

/* A placement callback: set *pool and return 0, or return an error. */
typedef int (*xo_place_fn)(xo_runtime_t *rt, const xo_actor_def_t *def,
                           void *user, unsigned *pool);

typedef struct xo_placement {
    xo_place_kind_t kind;
    unsigned pool;
    const char *label;
    const char *mark;
    xo_ref_t near;
    xo_place_fn fn;
    void *user;
} xo_placement_t;

/* Whether an actor's turns may run on other pools' workers. */
typedef enum xo_move {
    XO_MOVE_AUTO = 0, /* movable when the default placement chose its pool
                         (opts.pool XO_POOL_ANY and XO_PLACE_LEAST_LOADED);
                         fixed when the spawn asked for a pool, a label or
                         any other policy */
    XO_MOVE_FIXED,    /* its home pool's worker only */
    XO_MOVE_FREE,     /* movable, whatever placed it */
} xo_move_t;          /* an actor of a GPU pool is fixed, whatever it says */

typedef struct xo_spawn_opts {
    /* A unique name (at most XO_UID_MAX bytes) that xo_lookup resolves;
       NULL for none. Taken by another live actor: XO_EEXIST. */
    const char *uid;
    /* Pool index to live in (a shorthand for place.kind = XO_PLACE_POOL),
       or XO_POOL_ANY (the default): `place` decides. */
    int pool;
    xo_placement_t place;
    /* Where its turns may run (docs/scheduler.md, "Locality"). A movable
       actor runs where it is needed: on the CPU worker whose send made it
       runnable, and on an idle one that takes it from a busy one; a fixed
       actor runs on its home pool's worker only. Either way it stays
       single-threaded and keeps its home (its pool in xo_actor_stats,
       the pool a removal ends it with). Default XO_MOVE_AUTO. */
    xo_move_t move;
    /* Bound the mailbox: at most `capacity` messages (tells and calls)
       waiting; a send beyond it fails with XO_EFULL and nothing is queued
       (the sender may retry later, or back off by telling itself to
       resume). 0, the default: unbounded. Costs one atomic add per send
       and one per message taken, for bounded actors only. A delayed tell
       (xo_tell_after) takes its place when it is accepted, not when its
       time comes. Ignored for stateless actors. */
    uint32_t capacity;
    /* Passed to on_create, which must copy what it keeps (at most
       UINT32_MAX bytes). An actor that may be restarted keeps a copy of
       its own, for the on_create of each new incarnation. */
    const void *arg;
    size_t arg_size;

    /* ---- recovery (docs/recovery.md) ---- */
    /* When the runtime restarts the actor: never (the default), after a
       failure, or also after it destroys itself. */
    xo_restart_t restart;
    /* The restart intensity: at most restart_max restarts within
       restart_period_ns (defaults 3 in 5 s, Erlang's); one more ends the
       actor with XO_EXIT_RESTART_INTENSITY. restart_max: 1 to
       XO_RESTART_MAX. */
    unsigned restart_max;
    uint64_t restart_period_ns;
    /* Wait before a restart (0: none): backoff_min_ns for the first of a
       period, doubling for each further one up to backoff_max_ns, plus a
       random part of up to backoff_jitter_pct percent of it. Messages
       wait in the mailbox meanwhile. */
    uint64_t backoff_min_ns, backoff_max_ns;
    unsigned backoff_jitter_pct;
    /* Any negative return from a handler fails the actor, as xo_crash
       does (default: it is counted and reported, and the actor goes on). */
    bool crash_on_error;
    /* A linked actor's failure arrives as an XO_TAG_EXIT message instead
       of failing this actor too (Erlang's trap_exit). */
    bool trap_exits;
} xo_spawn_opts_t;

XO_API void xo_spawn_opts_init(xo_spawn_opts_t *opts);

/* At most this many actors live at once in one runtime (a spawn past it
   fails with XO_ENOMEM). */
#define XO_ACTORS_MAX ((uint32_t)1 << 28)

/* Create an actor; opts may be NULL. From any thread, inside the runtime or
   not. Errors: XO_EINVAL, XO_EEXIST, XO_ENOMEM, XO_ECLOSED, XO_ENOSLOT (no
   pool fits the placement), or what on_create returned. */
XO_API int xo_spawn(xo_runtime_t *rt, const xo_actor_def_t *def,
                    const xo_spawn_opts_t *opts, xo_ref_t *out);

/* Resolve a uid. Errors: XO_ENOTEXIST, XO_EINVAL, XO_ECLOSED. */
XO_API int xo_lookup(xo_runtime_t *rt, const char *uid, xo_ref_t *out);

/* True while the actor behind ref accepts messages. */
XO_API bool xo_ref_alive(xo_ref_t ref);

/*
 * Destroy an actor. From the moment it is called, sends through any ref to
 * the actor return XO_ENOTEXIST and its uid is free for a new actor; the
 * messages it accepted before are still handled, then on_destroy runs on its
 * worker, then its memory is reclaimed.
 *
 * xo_destroy waits for on_destroy and returns its result (0, or the error
 * that kept the actor alive). Called by an actor on itself it cannot wait
 * (on_destroy runs after the current handler): it returns 0 at once and a
 * failing on_destroy is reported to cfg.on_handler_error. A handler waiting
 * for another actor's destroy lends its worker to other actors meanwhile,
 * and a wait that would close a cycle fails with XO_EDEADLK.
 * Errors: XO_ENOTEXIST (unknown, or destroyed already), XO_ECLOSED,
 * XO_ENOMEM, XO_EDEADLK, or on_destroy's code.
 */
XO_API int xo_destroy(xo_ref_t ref);

/* Handler-time histograms: bucket b counts runs of [2^b, 2^(b+1)) ns;
   bucket 0 also holds shorter ones, the last also longer ones (2^31 ns,
   about 2.1 s, and more). */
#define XO_HIST_BUCKETS 32

typedef struct xo_actor_stats {
    uint64_t handled;      /* messages whose handler returned, and those
                              taken without one (no on_message, a call
                              cancelled before it started, the actor's
                              on_create failed) */
    uint64_t failed;       /* of those, handlers that returned < 0 */
    uint64_t restarts;     /* incarnations after the first */
    unsigned pool;         /* home pool index */
    bool stateless;
    /* Messages sent to the actor and not yet handled (the one being
       handled included), now, and the most seen (by the turns that left a
       backlog behind them, and the watchdog's scans). Exact with one
       sender at a time; with senders racing it may read a few low until
       the mailbox next empties. 0 for stateless actors (no mailbox). */
    uint64_t mailbox_depth;
    uint64_t mailbox_high;
    /* How long the oldest waiting message has waited, as the watchdog saw
       it at its last look (to within a tick of its actor scan); 0: none
       waiting, or no watchdog. */
    uint64_t oldest_age_ns;
    uint64_t alerts;       /* watchdog alerts about this actor */
    /* Handler times of the sampled turns (cfg.handler_sample). */
    uint64_t handler_samples;
    uint64_t handler_sum_ns;
    uint64_t handler_hist[XO_HIST_BUCKETS];
} xo_actor_stats_t;

/* Counters of a live actor (read while it runs: a recent snapshot). */
XO_API int xo_actor_stats(xo_ref_t ref, xo_actor_stats_t *out);

/* The upper bound of a histogram bucket in ns (UINT64_MAX for the last),
   and the q-quantile (0 <= q <= 1) of a histogram: the upper bound of the
   bucket it falls in (0 for an empty histogram). */
XO_API uint64_t xo_hist_upper_ns(unsigned bucket);
XO_API uint64_t xo_hist_quantile_ns(const uint64_t hist[XO_HIST_BUCKETS],
                                    double q);

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

/* The largest payload of one message, in bytes, for every function that
   takes one (sends, calls, replies, stream parts, xo_msg_alloc and
   xo_msg_wrap): 4 GiB minus 4 KiB, so that a payload and its envelope fit
   the runtime's 32-bit block sizes. Larger: XO_EINVAL. */
#define XO_MSG_MAX_SIZE ((size_t)UINT32_MAX - 4095u)

/*
 * Send a one-way message: `size` bytes at `data` are copied into the
 * message envelope (one allocation, no system call). From any thread.
 * Errors: XO_ENOTEXIST, XO_ECLOSED, XO_ENOMEM, XO_EINVAL (size over
 * XO_MSG_MAX_SIZE, or data NULL with size > 0). On error nothing was sent.
 * From a stateful actor's handler, every cfg.yield_sends-th message sent
 * in one turn (tells, xo_send, calls; each item of a batch) may run the
 * turns of other actors queued on its worker before the send returns
 * (never the sender's own): see cfg.yield_sends.
 */
XO_API int xo_tell(xo_ref_t to, uint32_t tag, const void *data, size_t size);

/*
 * Zero-copy sends. xo_msg_alloc returns an envelope with room for `size`
 * bytes at msg->data for the caller to fill; xo_send hands it to the
 * runtime. xo_msg_wrap makes an envelope around the caller's own buffer
 * without copying it: the runtime calls free_fn(buf, free_arg) once the
 * message was handled (or when xo_msg_free drops it).
 * On success ownership passes to the runtime. On error the caller still
 * owns the envelope: retry, or release it with xo_msg_free.
 */
XO_API int xo_msg_alloc(xo_runtime_t *rt, uint32_t tag, size_t size,
                        xo_msg_t **out);
XO_API int xo_msg_wrap(xo_runtime_t *rt, uint32_t tag, void *buf, size_t size,
                       void (*free_fn)(void *buf, void *arg), void *free_arg,
                       xo_msg_t **out);
XO_API int xo_send(xo_ref_t to, xo_msg_t *msg);
XO_API void xo_msg_free(xo_runtime_t *rt, xo_msg_t *msg);

/*
 * Delayed one-way message (Xoscar's tell_delay): like xo_tell, delivered
 * no earlier than delay_ns from now (a delay that would pass the end of the
 * monotonic clock means "not before the runtime stops"). The target must
 * exist now (else XO_ENOTEXIST). A bounded target (opts.capacity) counts
 * the message from the moment it is accepted: XO_EFULL now if its mailbox
 * is full, and never a refusal when the time comes. If the target is gone
 * when the time comes, or the runtime stops first, the message is dropped
 * (docs/errors.md lists every such drop).
 */
XO_API int xo_tell_after(xo_ref_t to, uint64_t delay_ns, uint32_t tag,
                         const void *data, size_t size);

/*
 * Batch sends. xo_tell_batch pushes count messages into one mailbox with a
 * single atomic exchange, in order (all or nothing: on error none was
 * sent). Each item names its tag and payload (copied).
 */
typedef struct xo_batch_item {
    uint32_t tag;
    const void *data;
    size_t size;
} xo_batch_item_t;

XO_API int xo_tell_batch(xo_ref_t to, const xo_batch_item_t *items,
                         size_t count);

/* ------------------------------------------------------------------ */
/* Calls and futures                                                   */
/* ------------------------------------------------------------------ */

/*
 * A call sends a request and returns a future that the callee completes:
 * with xo_reply (one reply), with xo_reply_part ... then the end of the
 * handler (a stream of parts), or with an error (the handler's negative
 * return, with the message given to xo_fail: the C form of Xoscar
 * re-raising the remote exception). A handler that returns 0 without
 * replying answers with an empty reply.
 *
 * The future belongs to the caller until xo_future_release; a reply that
 * arrives after the caller gave up is freed with the future, never leaked.
 */
typedef struct xo_result {
    int status;          /* 0, or the callee's (or the runtime's) error */
    const char *error;   /* message for status < 0 (never NULL then) */
    uint32_t tag;        /* of the reply message */
    const void *data;    /* reply payload (valid until the future is
                            released, or the next xo_stream_next) */
    size_t size;
    xo_ref_t from;       /* the actor that answered */
} xo_result_t;

XO_API int xo_call(xo_ref_t to, uint32_t tag, const void *data, size_t size,
                   xo_future_t **out);

/*
 * One call per item, all to `to`, sent with one exchange; one future with
 * count results in item order. Items must share one tag (XO_EINVAL
 * otherwise); an empty batch returns a future that is already complete.
 */
XO_API int xo_call_batch(xo_ref_t to, const xo_batch_item_t *items,
                         size_t count, xo_future_t **out);

/* Blocking waits in handlers that one worker holds at once (each runs
   other turns, which may wait in turn): one more fails with XO_EDEPTH. */
#define XO_MAX_NESTED_WAITS 64

/*
 * Wait until the future completes: 0 when it did, XO_ETIMEDOUT after
 * timeout_ns (negative: no limit; 0: just look). Inside a handler
 * (on_create and on_destroy included, on any thread) the wait fails at
 * once with XO_EDEADLK when it would close a cycle of waits: A waiting on
 * B while B waits on A, or A on itself, or on a turn held below the
 * waiting one on a worker (one that yielded, or waits, lower on the same
 * stack). On one of the runtime's workers the wait lends the worker to the
 * other actors of its pool meanwhile; past XO_MAX_NESTED_WAITS nested
 * waits it fails with XO_EDEPTH instead.
 */
XO_API int xo_future_wait(xo_future_t *f, int64_t timeout_ns);
XO_API bool xo_future_done(const xo_future_t *f);
/* Number of results: 1 for a call, count for a batch. */
XO_API size_t xo_future_count(const xo_future_t *f);
/* Result i of a completed future; returns its status. *out is filled on
   every return: when there is no result to give (the future is not
   complete, i is out of range) it holds status XO_EINVAL and an error
   message saying why, and XO_EINVAL is returned. */
XO_API int xo_future_result(const xo_future_t *f, size_t i, xo_result_t *out);

/*
 * Cancel: calls not yet started are skipped and complete at once with
 * XO_ECANCELED; a handler already running sees xo_request_cancelled() and
 * may stop early, and what it replies still reaches the caller.
 */
XO_API int xo_future_cancel(xo_future_t *f);
/* Drop the caller's hold on the future. Using it afterwards (a second
   release, a wait) is a bug; the runtime aborts with a message naming the
   function when it can tell, instead of corrupting memory. */
XO_API void xo_future_release(xo_future_t *f);

/*
 * Read a streamed reply: 0 with the next part in order, XO_EEOF once the
 * stream ended (the final status is xo_future_result(f, 0)), or the
 * stream's error, or XO_ETIMEDOUT. Inside a handler it waits for each part
 * as xo_future_wait does (the worker is lent meanwhile; XO_EDEADLK,
 * XO_EDEPTH). Releasing the future abandons the stream: later parts are
 * dropped and the producer's xo_reply_part returns XO_ECANCELED.
 */
XO_API int xo_stream_next(xo_future_t *f, int64_t timeout_ns,
                          xo_result_t *part);

/*
 * Inside an actor: call, and run `then` later as a turn of the calling
 * actor (with its state, never concurrently with its other handlers) once
 * the future completes, or with XO_ETIMEDOUT after timeout_ns (negative: no
 * limit). The actor keeps handling other messages meanwhile. `then` reads
 * the results with xo_future_result; the runtime releases the future after
 * it returns. If the calling actor is gone by then, `then` does not run.
 */
typedef int (*xo_then_fn)(xo_ctx_t *ctx, void *state, xo_future_t *f,
                          void *arg);

XO_API int xo_call_then(xo_ctx_t *ctx, xo_ref_t to, uint32_t tag,
                        const void *data, size_t size, int64_t timeout_ns,
                        xo_then_fn then, void *arg);

/* ---- the callee's side ------------------------------------------- */

/* Complete the call with a reply (payload copied). Errors: XO_EINVAL
   (already answered: of two answers, even from two threads at once, the
   first wins), XO_ENOMEM. */
XO_API int xo_reply(xo_request_t *req, uint32_t tag, const void *data,
                    size_t size);
/* Send one part of a streamed reply; the stream ends when the handler
   returns (or with xo_reply_end for a deferred request). XO_ECANCELED when
   the caller abandoned the stream. */
XO_API int xo_reply_part(xo_request_t *req, uint32_t tag, const void *data,
                         size_t size);
XO_API int xo_reply_end(xo_request_t *req);
/* Complete the call with an error and a message. */
XO_API int xo_reply_error(xo_request_t *req, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
XO_API bool xo_request_cancelled(const xo_request_t *req);
/*
 * Keep the request past the handler's return, to answer it later from any
 * thread (xo_reply, xo_reply_part, xo_reply_end, xo_reply_error). Returns
 * the request to use from then on (the same pointer), or NULL when it was
 * answered already. It must be answered exactly once with a final reply,
 * end or error: a second answer returns XO_EINVAL while the caller still
 * holds its future; once the caller released it too, the handle is gone.
 */
XO_API xo_request_t *xo_request_defer(xo_request_t *req);

/*
 * For handlers: set the error message of the message being handled and
 * return err, as in `return xo_fail(ctx, XO_EINVAL, "bad key %d", k);`.
 * A call's caller sees the message in xo_result_t.error.
 */
XO_API int xo_fail(xo_ctx_t *ctx, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Fail the actor: once the handler returns, the actor is restarted or
 * ends, as its restart policy says; `code` (negative) and the message are
 * its failure's reason, and a call being handled gets them as its error.
 * From any handler, on_create included (there, the restart's on_create
 * fails). Returns code, as in `return xo_crash(ctx, XO_EINVAL, "bad %d",
 * k);`; XO_EINVAL (and nothing happens) for a code >= 0 or a context
 * that is not a stateful actor's handler.
 */
XO_API int xo_crash(xo_ctx_t *ctx, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------ */
/* Handler context                                                     */
/* ------------------------------------------------------------------ */

/* Valid during the handler call it was passed to. */
XO_API xo_ref_t xo_self(const xo_ctx_t *ctx);
XO_API xo_runtime_t *xo_ctx_runtime(const xo_ctx_t *ctx);
/* Index of the actor's pool (on_create too: the pool it will live in). */
XO_API unsigned xo_ctx_pool(const xo_ctx_t *ctx);

/* ------------------------------------------------------------------ */
/* Recovery: monitors, links, supervisors (docs/recovery.md)          */
/* ------------------------------------------------------------------ */

/* Tags from XO_TAG_RESERVED up are the runtime's own: a tell, call or
   message made with one is refused (XO_EINVAL). */
#define XO_TAG_RESERVED 0xFFFFFF00u
/* A monitored actor ended (xo_monitor): the payload is an xo_down_t. */
#define XO_TAG_DOWN 0xFFFFFF01u
/* A linked actor failed and this actor traps exits (trap_exits): the
   payload is an xo_down_t (monitor 0). */
#define XO_TAG_EXIT 0xFFFFFF02u

/* Why an actor ended (or, in an EXIT, failed). */
typedef enum xo_exit_reason {
    XO_EXIT_DESTROYED = 1,     /* xo_destroy, by another actor or itself */
    XO_EXIT_FAILED,            /* a failure it was not restarted after:
                                  code and message say what it was (a
                                  linked actor's failure: XO_ELINKED) */
    XO_EXIT_RESTART_INTENSITY, /* it failed once more than restart_max
                                  times within restart_period_ns: the last
                                  failure's code and message */
    XO_EXIT_POOL_REMOVED,      /* its home pool was removed */
    XO_EXIT_STOPPING,          /* the runtime stops */
    XO_EXIT_NODE_LOST,         /* it lived on a node that is gone */
    XO_EXIT_NO_SUCH_ACTOR,     /* it was gone already when monitored */
    XO_EXIT_DEVICE_FAILED,     /* its GPU pool's device failed: code
                                  XO_EGPU, the device's error as message */
} xo_exit_reason_t;

XO_API const char *xo_exit_reason_name(xo_exit_reason_t reason);

/* The payload of a DOWN or EXIT message; `size` covers the message's
   text, which is always NUL-terminated (empty when there is none). */
typedef struct xo_down {
    xo_ref_t actor;            /* the actor that ended or failed */
    uint64_t monitor;          /* DOWN: the monitor's id; EXIT: 0 */
    xo_exit_reason_t reason;
    int code;                  /* FAILED, RESTART_INTENSITY: the failure's
                                  (negative; 0 when the restarts were of a
                                  permanent actor destroying itself); 0
                                  otherwise */
    char message[];            /* its reason message */
} xo_down_t;

typedef struct xo_monitor {
    xo_ref_t target;
    uint64_t id;               /* never 0 */
} xo_monitor_t;

/*
 * Monitor `target` on behalf of `watcher` (a stateful actor of the same
 * runtime): when the target ends, the watcher receives one message with
 * tag XO_TAG_DOWN (sender: the target), exactly once per monitor. Several
 * monitors of one pair are independent. A target that is gone already
 * gives DOWN at once, with XO_EXIT_NO_SUCH_ACTOR. A restart does not end
 * an actor: its monitors stay. From any thread. A target on another node
 * (docs/net.md) is watched there, in order with the messages sent after
 * this call: its DOWN carries its reason, or XO_EXIT_NODE_LOST if the node
 * is lost first. Errors: XO_EINVAL (a stateless or foreign watcher, or a
 * ref of another runtime), XO_ENOTEXIST (the watcher is gone), XO_ECLOSED,
 * XO_ENOMEM, XO_EFULL (the target's node's send queue is full).
 */
XO_API int xo_monitor(xo_ref_t watcher, xo_ref_t target, xo_monitor_t *out);
/* Remove a monitor: once this returns 0, its DOWN is not handed to the
   watcher any more (unless the watcher's handler is running it just now).
   XO_ENOTEXIST: its DOWN was handed over already, or it was removed. */
XO_API int xo_demonitor(const xo_monitor_t *mon);

/*
 * Link two stateful actors (Erlang's link): when one fails, the other
 * fails too, with XO_ELINKED ("a linked actor failed"), unless it traps
 * exits (trap_exits): then it receives an XO_TAG_EXIT message instead.
 * A failure ends the failing incarnation's links, restarted or not (the
 * new incarnation starts unlinked, as a new Erlang process does), so a
 * failure travels along a chain of links once. Ending without failing
 * (xo_destroy, pool removal, stop) does not propagate: the links just go.
 * Linking a pair twice is one link. Errors: XO_EINVAL (same actor,
 * stateless, other runtimes), XO_ENOTEXIST (either is gone), XO_ECLOSED,
 * XO_ENOMEM.
 */
XO_API int xo_link(xo_ref_t a, xo_ref_t b);
/* XO_ENOTEXIST: not linked. */
XO_API int xo_unlink(xo_ref_t a, xo_ref_t b);

/* ---- supervisors ---- */

typedef enum xo_sup_strategy {
    XO_SUP_ONE_FOR_ONE = 0,  /* restart the child that failed */
    XO_SUP_ONE_FOR_ALL,      /* restart every child */
    XO_SUP_REST_FOR_ONE,     /* restart it and the children started
                                after it */
} xo_sup_strategy_t;

typedef enum xo_child_restart {
    XO_CHILD_PERMANENT = 0,  /* restarted after a failure, and after it
                                destroys itself */
    XO_CHILD_TRANSIENT,      /* restarted after a failure only */
    XO_CHILD_TEMPORARY,      /* never restarted: a failure removes it */
} xo_child_restart_t;

/* The longest child name. */
#define XO_CHILD_NAME_MAX 63u

typedef struct xo_child_spec {
    const char *name;        /* unique among its siblings, 1 to
                                XO_CHILD_NAME_MAX bytes, copied */
    const xo_actor_def_t *def; /* stateful */
    /* How to spawn it (uid, placement, capacity, argument: copied); the
       recovery fields are the supervisor's business and must be left at
       their defaults, except backoff_*, crash_on_error and trap_exits,
       which apply. */
    xo_spawn_opts_t opts;
    xo_child_restart_t restart;
    /* How long the supervisor waits for the child's on_destroy when it
       stops it, before it goes on (a child cannot be killed in one
       process: it still ends once its handler returns). 0: 5 s. */
    uint64_t shutdown_ns;
} xo_child_spec_t;

typedef struct xo_sup_spec {
    xo_sup_strategy_t strategy;
    /* At most `intensity` restarts of children within period_ns (defaults
       3 in 5 s, as xo_spawn_opts_init sets): one more and the supervisor
       stops its children and fails itself (XO_EXIT_RESTART_INTENSITY
       seen from its monitors), which its own supervisor, if it has one,
       handles as a child's failure. */
    unsigned intensity;      /* 1 to XO_RESTART_MAX; 0: 3 */
    uint64_t period_ns;      /* 0: 5 s */
    const xo_child_spec_t *children; /* started in this order */
    size_t nchildren;        /* up to XO_SUP_CHILDREN_MAX */
} xo_sup_spec_t;

#define XO_SUP_CHILDREN_MAX 4096u

/*
 * Start a supervisor: spawn it (opts as for xo_spawn: uid, placement; NULL
 * for defaults; its restart policy must stay XO_RESTART_NEVER, since the
 * spec is read at start only: a supervisor that restarts is a child of
 * another, see xo_supervisor_def),
 * then its children, in order, each once the one before has run its
 * on_create. If a child fails to start, the ones started are stopped in
 * reverse order, the supervisor ends, and the child's error is returned.
 * At its end (xo_destroy, xo_runtime_stop) a supervisor stops its children
 * in reverse order, each within its shutdown_ns, and then itself. From
 * any thread or handler; add, remove and children are calls to the
 * supervisor, so not from its own children's on_create. Errors: those of
 * xo_spawn, XO_EINVAL (a bad spec), a child's on_create error.
 */
XO_API int xo_supervisor_start(xo_runtime_t *rt, const xo_sup_spec_t *spec,
                               const xo_spawn_opts_t *opts, xo_ref_t *out);
/* The supervisor's definition, for a supervisor that is itself a child:
   its child spec's opts.arg is an xo_sup_spec_t (arg_size its size), whose
   children array, and what it points to, must then outlive it (a restart
   reads it again; children added later are not in it). */
XO_API const xo_actor_def_t *xo_supervisor_def(void);
/* Start one more child, last in order. Errors: XO_EEXIST (the name is
   taken), XO_EINVAL, XO_ENOTEXIST (not a live supervisor), the child's
   spawn error. */
XO_API int xo_supervisor_add(xo_ref_t sup, const xo_child_spec_t *child,
                             xo_ref_t *out);
/* Stop a child (within its shutdown_ns) and forget it: it is not
   restarted. Errors: XO_ENOTEXIST (no child of that name), XO_ETIMEDOUT
   (its on_destroy had not returned by shutdown_ns: it goes on ending). */
XO_API int xo_supervisor_remove(xo_ref_t sup, const char *name);

typedef struct xo_child_info {
    char name[XO_CHILD_NAME_MAX + 1];
    xo_ref_t ref;            /* the same across its restarts */
    xo_child_restart_t restart;
    uint64_t restarts;       /* its restarts by this supervisor */
} xo_child_info_t;

/* The children, in start order: up to `cap` of them into out, how many
   there are into *count. */
XO_API int xo_supervisor_children(xo_ref_t sup, xo_child_info_t *out,
                                  size_t cap, size_t *count);

/* ------------------------------------------------------------------ */
/* Pools                                                               */
/* ------------------------------------------------------------------ */

typedef struct xo_pool_info {
    unsigned index;
    xo_pool_kind_t kind;
    xo_pool_state_t state;
    int core;          /* CPU the worker was assigned, -1 if none */
    bool pinned;       /* the worker is bound to `core` */
    bool core_shared;  /* another pool's worker may run on its CPU (pinned
                          to the same core, or, unpinned, more pools than
                          CPUs; a node's I/O thread counts as one):
                          it gives the CPU up while it waits for work
                          instead of spinning on it */
    int device;        /* GPU pools: the device; -1 for other kinds */
    const char *labels;/* the kind's label ("cpu") plus user labels,
                          comma-separated; valid until xo_runtime_free */
    uint64_t actors;   /* live actors whose home is this pool */
    bool queued;       /* its run queue holds work now */
    bool parked;       /* its worker sleeps, waiting for work */
    uint64_t handled;  /* messages handled by this pool's worker */
    uint64_t busy_ns;  /* time its worker was not waiting for work
                          (coarse clock: milliseconds of resolution) */
    uint64_t up_ns;    /* time since its worker started (busy ratio:
                          busy_ns / up_ns) */
    uint64_t turns;    /* turns and tasks its worker ran */
    uint64_t shared;   /* of those, turns of actors whose home is another
                          pool (movable actors that ran here) */
    uint64_t steals;   /* movable actors its worker took from other
                          workers' queues (docs/scheduler.md) */
    uint64_t parks;    /* times its worker went to sleep */
    uint64_t wakes;    /* times another thread woke it */
    uint64_t runq_depth; /* items in its run queue and its local queue of
                            movable actors now (approximate) */
} xo_pool_info_t;

/* Pool indexes ever used (removed pools keep theirs). */
XO_API unsigned xo_pool_count(const xo_runtime_t *rt);
XO_API int xo_pool_info(const xo_runtime_t *rt, unsigned index,
                        xo_pool_info_t *out);

/*
 * Grow the pool table while the runtime runs (Xoscar's append_sub_pool):
 * a new pool as `spec` describes it (NULL: a CPU pool on the next allowed
 * CPU, round-robin, no user labels). Its index is returned in *index.
 * Errors: XO_EINVAL (a bad spec: for a GPU pool, a device that is not
 * visible), XO_ENOSYS (a GPU pool on the CUDA backend in a build without
 * it), XO_EGPU (the device or its stream could not be set up:
 * xo_gpu_last_error says why), XO_ENOMEM, XO_ENOSLOT (table full),
 * XO_ECLOSED.
 */
XO_API int xo_pool_add(xo_runtime_t *rt, const xo_pool_spec_t *spec,
                       unsigned *index);

/*
 * Remove a pool (Xoscar's remove_sub_pool): it takes no new actors, its
 * actors are destroyed (each handles what it had accepted, then runs
 * on_destroy; later sends give XO_ENOTEXIST), then its worker exits.
 * Returns when all that is done. Not from a handler (XO_EINVAL), not pool
 * 0 (the main pool, XO_EINVAL), not an unknown or removed pool
 * (XO_ENOTEXIST).
 */
XO_API int xo_pool_remove(xo_runtime_t *rt, unsigned index);

/* ------------------------------------------------------------------ */
/* Observability (docs/observability.md)                               */
/* ------------------------------------------------------------------ */

/* "slow_handler", "stuck_turn", "slow_call", "mailbox_depth",
   "mailbox_age"; "?" for anything else. */
XO_API const char *xo_alert_kind_name(xo_alert_kind_t kind);

/* The line the default alert handler writes (without its newline), into
   buf (size bytes, NUL-terminated, truncated if need be). Returns the
   length the whole line has, as snprintf does. */
XO_API int xo_alert_format(const xo_alert_t *alert, char *buf, size_t size);

typedef struct xo_runtime_stats {
    uint64_t up_ns;               /* since xo_runtime_start */
    uint64_t actors;              /* live actors */
    unsigned pools;               /* pools running */
    uint64_t watchdog_ticks;
    uint64_t watchdog_scan_ns;    /* the CPU time its last scan of the
                                     actors took (its own cost) */
    uint64_t alerts[XO_ALERT_KINDS]; /* by kind; [0]: all kinds */
} xo_runtime_stats_t;

XO_API int xo_runtime_stats(const xo_runtime_t *rt, xo_runtime_stats_t *out);

/* What xo_actors_each shows of one actor. The strings are valid during
   the visit only. */
typedef struct xo_actor_info {
    xo_ref_t ref;
    const char *definition; /* "?" when the definition has no name */
    const char *uid;        /* NULL: none */
    xo_actor_stats_t stats;
} xo_actor_info_t;

/* Return nonzero to stop the walk (xo_actors_each then returns it). */
typedef int (*xo_actor_visit_fn)(const xo_actor_info_t *info, void *user);

/* Visit every live actor of rt, in slot order, from any thread (also a
   handler: the visit must not wait for an actor). An actor spawned or
   destroyed during the walk may or may not be seen. Returns 0 after the
   last, XO_ECLOSED once the runtime stops, or what visit returned. */
XO_API int xo_actors_each(xo_runtime_t *rt, xo_actor_visit_fn visit,
                          void *user);

/* The page to read when something is stuck: each pool's state (what its
   worker runs, for how long), the wait-for graph (who waits on whom, and
   since when: actors and outside threads), and the busiest mailboxes.
   Plain text to out. Any thread. */
XO_API int xo_runtime_dump(xo_runtime_t *rt, FILE *out);

/* Every stat in the Prometheus text exposition format (version 0.0.4):
   xoscar_actor_* per actor, xoscar_pool_* per pool, xoscar_runtime_*
   (docs/metrics.md lists each family). The actors are read in one walk
   first and written after it, so the output is one snapshot, made while
   the actors run. Any thread, a handler too. Errors: XO_EINVAL (NULL, or
   writing to out failed), XO_ECLOSED (the runtime stops), XO_ENOMEM (out
   got nothing then). */
XO_API int xo_metrics_write(xo_runtime_t *rt, FILE *out);

/* The TCP port the /metrics server listens on (the one the system picked
   for XO_METRICS_PORT_ANY). Errors: XO_EINVAL (NULL), XO_ENOTEXIST (no
   server: cfg.metrics_port was 0), XO_ECLOSED (the runtime stops: the
   server stopped first). */
XO_API int xo_metrics_port(const xo_runtime_t *rt, unsigned *port);

/*
 * The trace: a ring of events per worker (sends with a flow id, turns,
 * parks and wakes, calls issued and completed, failures, alerts). Off
 * until xo_trace_start, which sizes each worker's ring (0: 65536 events);
 * a full ring overwrites its oldest events. xo_trace_stop ends recording
 * and keeps what was recorded; xo_trace_write writes it as Chrome
 * trace-event JSON ({"traceEvents": [...]}), which Perfetto's UI and
 * chrome://tracing open. Any thread outside the runtime's handlers.
 */
XO_API int xo_trace_start(xo_runtime_t *rt, size_t events_per_worker);
XO_API int xo_trace_stop(xo_runtime_t *rt);
XO_API int xo_trace_write(xo_runtime_t *rt, FILE *out);

/* ------------------------------------------------------------------ */
/* Nodes: runtimes in other processes and on other machines            */
/* (docs/net.md)                                                       */
/* ------------------------------------------------------------------ */

/*
 * A runtime joins the network as a node (xo_node_start): it listens on TCP
 * and connects to other nodes by address; both ends prove that they hold
 * the same 256-bit secret before anything else crosses. This runtime
 * numbers the nodes it knows 1 to XO_NODES_MAX (xo_ref_node; 0 is itself),
 * and a ref to an actor on one of them works with every sending function
 * as a local ref does: tells, xo_send, delayed tells, batches, calls and
 * their futures, continuations, streams, cancellation; xo_monitor too.
 * Messages from one actor to another keep their order across nodes. What
 * crosses is bytes: payloads are the user's to encode (a ref inside a
 * payload means nothing on another node). Links (xo_link) are local only.
 *
 * When a node is lost (its connection closed, or silent past
 * loss_timeout_ns), every call in flight to it completes at once with
 * XO_ENODELOST, sends to its refs fail with XO_ENODELOST until it is back,
 * and monitors of its actors give DOWN with XO_EXIT_NODE_LOST. A tell that
 * was accepted is delivered unless its node is lost first (then that node's
 * DOWN event says so); one for an actor that is gone on arrival is dropped
 * and counted (xo_node_info's dropped). The node that made the connection
 * reconnects with exponential backoff and full jitter; refs stay valid
 * across a reconnect to the same process, never to a restarted one (it
 * gets a new number).
 *
 * The node and its I/O thread stop with the runtime (xo_runtime_stop),
 * after its actors: their last calls to other nodes get their answers.
 * A build without the net layer (-DXO_NET=OFF) answers XO_ENOSYS.
 */

#define XO_NODE_SECRET_SIZE 32u /* the shared secret: 256 bits */
#define XO_NODE_NAME_MAX 255u   /* node names, registered type names */
#define XO_NODES_MAX 4095u      /* nodes one runtime knows at once */

static inline unsigned xo_ref_node(xo_ref_t ref)
{
    return (unsigned)((ref.id >> 28) & 0xFFFu); /* 0: this runtime's */
}

typedef enum xo_node_state {
    XO_NODE_CONNECTING = 1, /* being connected, or reconnected after a
                               loss (sends fail with XO_ENODELOST) */
    XO_NODE_UP,             /* connected and authenticated */
    XO_NODE_DOWN,           /* lost, and nobody reconnects it: it
                               connected to us, or reconnect is off, or
                               it restarted (a new number took over) */
} xo_node_state_t;

/* A node came up or went down: the payload of XO_TAG_NODE_UP and
   XO_TAG_NODE_DOWN messages (xo_node_subscribe), and cfg.on_event's
   argument. */
typedef struct xo_node_event {
    unsigned node;
    xo_node_state_t state;  /* UP, or CONNECTING / DOWN after a loss */
    int reason;             /* a loss: XO_ENODELOST (silent too long),
                               XO_ECLOSED (it left, or closed), XO_EPROTO
                               (it broke the protocol); 0 for UP */
    char name[XO_NODE_NAME_MAX + 1];
} xo_node_event_t;

/* To subscribers (xo_node_subscribe), sender XO_REF_NONE. */
#define XO_TAG_NODE_UP 0xFFFFFF03u
#define XO_TAG_NODE_DOWN 0xFFFFFF04u

typedef void (*xo_node_event_fn)(xo_runtime_t *rt, const xo_node_event_t *ev,
                                 void *user);
typedef void (*xo_node_log_fn)(xo_runtime_t *rt, const char *line,
                               void *user);

typedef struct xo_node_config {
    /* This node's name, as its peers see it (at most XO_NODE_NAME_MAX
       bytes; NULL: "<listen address>:<port>", or "node-<pid>"). */
    const char *name;
    /* Listen for other nodes (default true) on listen_addr, a numeric IPv4
       or IPv6 address (NULL: "127.0.0.1", this machine only), and
       listen_port (0: a free port the system picks; xo_node_port). */
    bool listen;
    const char *listen_addr;
    unsigned listen_port;
    /* The shared secret every node of the network holds (xo_node_secret_
       parse reads one in hex). All zero: XO_EINVAL. It is never sent. */
    unsigned char secret[XO_NODE_SECRET_SIZE];
    /* A heartbeat goes to each peer this often (default 1 s), on the
       pair's control connection whatever data flows (on the one connection
       of a peer without it: when nothing else was sent for this long); a
       peer heard nothing from on either connection for loss_timeout_ns
       (default 5 s, at least twice heartbeat_ns) is lost. */
    uint64_t heartbeat_ns;
    uint64_t loss_timeout_ns;
    /* A connection that has not finished its handshake by then is closed
       (default 5 s). */
    uint64_t handshake_timeout_ns;
    /* After a loss, the node that made the connection makes it again
       (default true): attempt n waits a random time in [0, min(max,
       min * 2^n)] (defaults 100 ms and 10 s). */
    bool reconnect;
    uint64_t reconnect_min_ns, reconnect_max_ns;
    /* Sends queued for one peer and not yet written: at most send_queue
       of them (a batch counts once; default 16384, rounded up to a power
       of two) and send_queue_bytes of payload (default 64 MiB; a send
       into an empty queue is never refused). Beyond: XO_EFULL, nothing
       sent (retry later). */
    unsigned send_queue;
    size_t send_queue_bytes;
    /* Limits on what a peer sends (docs/net.md lists every one): the
       largest message payload (default 1 GiB, at most XO_MSG_MAX_SIZE),
       the longest batch (default 65536 messages), and the calls from one
       peer being handled at once (default 1 << 20; beyond, a call fails
       with XO_EFULL). max_message bounds what this node sends too: a
       larger message (a buffer message's buffer and data together) is
       refused at the send with XO_EINVAL. */
    size_t max_message;
    unsigned max_batch;
    unsigned max_incoming_calls;
    /* The receive buffer of each connection (SO_RCVBUF), in bytes, at
       most 1 GiB. 0 (default): the kernel's autotuning. Heartbeats have a
       connection of their own; a control frame that stays ordered with
       the data (a cancel, a lookup) waits behind at most 256 KiB of a
       large transfer's unsent bytes plus what the receiver's socket
       holds: a bound here bounds that wait, and also the TCP window (the
       bulk throughput of a long fat link) (docs/net.md, "Lanes"). */
    size_t socket_buffer;
    /* The I/O thread polls this long after its last work before it sleeps
       (default 50 us, as a worker's cfg.spin_ns): an answer that comes
       within it is written without a wake-up. Where the pools and the I/O
       thread outnumber the CPUs, its polls give the core to a worker with
       work. 0: sleep at once. */
    uint64_t io_spin_ns;
    /* Nodes coming up and going down, on the I/O thread (keep it short,
       and never wait there for the node: xo_node_connect, lookup and
       spawn would wait for this very thread; NULL: none). */
    xo_node_event_fn on_event;
    void *on_event_user;
    /* One line for each connection refused (failed authentication, too
       many handshakes), closed for a fault (a broken protocol, a limit
       passed) or lost (silence, a reset; not a peer's goodbye), on the
       I/O thread. NULL: to stderr. */
    xo_node_log_fn on_log;
    void *on_log_user;
} xo_node_config_t;

XO_API void xo_node_config_init(xo_node_config_t *cfg);

/* The 64 hex digits of a secret into out. XO_EINVAL: not 64 hex digits. */
XO_API int xo_node_secret_parse(const char *hex,
                                unsigned char out[XO_NODE_SECRET_SIZE]);

/* Join the network: listen (if cfg->listen), start the I/O thread. Once
   per runtime. Errors: XO_EINVAL (bad config, or a node already), XO_ENOMEM,
   XO_EADDRINUSE, XO_ESYSTEM, XO_ECLOSED. */
XO_API int xo_node_start(xo_runtime_t *rt, const xo_node_config_t *cfg);
/* The port this node listens on. XO_ENOTEXIST: it does not listen. */
XO_API int xo_node_port(xo_runtime_t *rt, unsigned *port);

/*
 * Connect to the node at `address` ("host:port"; host a name, an IPv4
 * address, or an IPv6 one in brackets) and wait until both ends are
 * authenticated, at most timeout_ns (negative: no limit). Its number goes
 * to *node (the one it had, when it is connected already). In a handler
 * the wait lends the worker, as xo_future_wait does. Errors: XO_EAUTH
 * (refused, or it failed to prove the secret), XO_ECONNREFUSED,
 * XO_ETIMEDOUT, XO_EPROTO, XO_EINVAL, XO_ENOSLOT (XO_NODES_MAX nodes
 * known), XO_ESYSTEM, XO_ECLOSED, XO_ENOTEXIST (no node started).
 */
XO_API int xo_node_connect(xo_runtime_t *rt, const char *address,
                           int64_t timeout_ns, unsigned *node);
/* Close the connection to a node and stop reconnecting it: it is lost
   (XO_ECLOSED as the reason), its number stays taken. */
XO_API int xo_node_disconnect(xo_runtime_t *rt, unsigned node);
/* The number of the node called `name`. XO_ENOTEXIST: none known. */
XO_API int xo_node_find(xo_runtime_t *rt, const char *name, unsigned *node);

typedef struct xo_node_info {
    unsigned node;
    xo_node_state_t state;
    char name[XO_NODE_NAME_MAX + 1];
    char address[64];         /* its address ("ip:port"); node 0: where
                                 this node listens ("" when it does not) */
    bool outbound;            /* this node connected to it (and
                                 reconnects it) */
    uint64_t incarnation;     /* random, new for each process start */
    uint64_t connects;        /* connections that came up */
    uint64_t losses;
    int last_error;           /* the reason of the last loss, or 0 */
    uint64_t msgs_sent, msgs_received;
    uint64_t bytes_sent, bytes_received;
    uint64_t dropped;         /* tells from it for actors gone here */
    uint64_t calls_in_flight; /* calls from here not yet answered */
    uint64_t rtt_ns;          /* the last heartbeat's round trip */
    uint64_t refused;         /* node 0: connections refused (a failed
                                 handshake) */
    uint64_t faults;          /* connections closed for a broken
                                 protocol or a passed limit (node 0: all) */
} xo_node_info_t;

/* A snapshot of a node's state and counters; node 0: this node. */
XO_API int xo_node_info(xo_runtime_t *rt, unsigned node,
                        xo_node_info_t *out);

/* The actor with `uid` on `node`, waiting at most timeout_ns for the
   answer (in a handler the worker is lent meanwhile). Errors: those of
   xo_lookup, XO_ENODELOST, XO_ETIMEDOUT, XO_ENOTEXIST (no such node). */
XO_API int xo_node_lookup(xo_runtime_t *rt, unsigned node, const char *uid,
                          int64_t timeout_ns, xo_ref_t *out);

/*
 * Let other nodes spawn actors of `def` here by the name `type` (at most
 * XO_NODE_NAME_MAX bytes; copied). opts (NULL: defaults; copied, without
 * uid and arg, which come with each spawn) is how they are spawned.
 * XO_EEXIST: the name is taken.
 */
XO_API int xo_node_register(xo_runtime_t *rt, const char *type,
                            const xo_actor_def_t *def,
                            const xo_spawn_opts_t *opts);
/* Spawn an actor of a registered type on `node`, with `uid` (NULL: none)
   and arg_size bytes of argument for its on_create, waiting at most
   timeout_ns. Errors: those of xo_spawn there, XO_ENOTEXIST (no such type
   there), XO_ENODELOST, XO_ETIMEDOUT. */
XO_API int xo_node_spawn(xo_runtime_t *rt, unsigned node, const char *type,
                         const char *uid, const void *arg, size_t arg_size,
                         int64_t timeout_ns, xo_ref_t *out);

/* Have `watcher` (a stateful actor of this runtime) receive
   XO_TAG_NODE_UP / XO_TAG_NODE_DOWN messages (on true) or no longer (on
   false). */
XO_API int xo_node_subscribe(xo_ref_t watcher, bool on);

#ifdef __cplusplus
}
#endif

/* GPU pools, streams and buffers. */
#include "xoscar/xoscar_gpu.h"

#endif /* XOSCAR_XOSCAR_H */
