/*
 * xoscar -- an actor runtime for heterogeneous computing.
 *
 * This is the whole public API. Read it top to bottom: error codes, types,
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
    X(ENOSYS,    -38,   "operation not supported by this build")

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

/*
 * A reference to an actor: a small value, copied freely, never owning.
 * `id` packs a slot index (low 32 bits) and the generation of the actor
 * that held the slot (high 32 bits); a zero id is the null ref. A ref to
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
 * or XO_REF_NONE when it came from a thread outside the runtime.
 */
typedef struct xo_msg {
    uint32_t tag;
    uint32_t size;
    void *data;
    xo_ref_t sender;
} xo_msg_t;

/* ------------------------------------------------------------------ */
/* Runtime                                                             */
/* ------------------------------------------------------------------ */

typedef void (*xo_error_fn)(xo_runtime_t *rt, xo_ref_t actor, uint32_t tag,
                            int err, void *user);

typedef struct xo_config {
    /* CPU pools, one worker thread each. 0: one per CPU this process may
       run on (sched_getaffinity). */
    unsigned pools;
    /* Pin pool i's worker to the i-th allowed CPU. Where the system refuses,
       the worker runs unpinned and xo_pool_info reports pinned = false. */
    bool pin_threads;
    /* Messages an actor handles per turn before its worker moves on to the
       next runnable actor (fairness). Default 64. */
    unsigned batch;
    /* How long an idle worker polls its run queue before it parks on a
       futex, in nanoseconds. Default 50000 (50 us). 0: park at once. */
    uint64_t spin_ns;
    /* Called on the worker when a handler of a one-way message returns a
       negative code. NULL: the failure is only counted (xo_actor_stats). */
    xo_error_fn on_handler_error;
    void *on_handler_error_user;
} xo_config_t;

XO_API void xo_config_init(xo_config_t *cfg);

/* Start a runtime: workers are running when it returns. cfg may be NULL
   (defaults). Errors: XO_EINVAL (bad config), XO_ENOMEM. */
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
   not be used afterwards. */
XO_API void xo_runtime_free(xo_runtime_t *rt);

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
 * on_message  handles one message on the actor's worker. A negative return
 *             is counted and passed to the config's on_handler_error.
 * on_destroy  runs once, on the actor's worker, after every message
 *             accepted before the destroy was handled.
 * All three may be NULL.
 */
typedef struct xo_actor_def {
    const char *name;
    size_t state_size;
    int (*on_create)(xo_ctx_t *ctx, void *state, const void *arg,
                     size_t arg_size);
    int (*on_message)(xo_ctx_t *ctx, void *state, const xo_msg_t *msg);
    void (*on_destroy)(xo_ctx_t *ctx, void *state);
} xo_actor_def_t;

#define XO_POOL_ANY (-1)
#define XO_UID_MAX 255

typedef struct xo_spawn_opts {
    /* A unique name (at most XO_UID_MAX bytes) that xo_lookup resolves;
       NULL for none. Taken by another live actor: XO_EEXIST. */
    const char *uid;
    /* Pool index to live in, or XO_POOL_ANY (the default): a handler's
       spawns go to its own pool, others round-robin over the pools. */
    int pool;
    /* Passed to on_create, which must copy what it keeps. */
    const void *arg;
    size_t arg_size;
} xo_spawn_opts_t;

XO_API void xo_spawn_opts_init(xo_spawn_opts_t *opts);

/* Create an actor; opts may be NULL. From any thread, inside the runtime or
   not. Errors: XO_EINVAL, XO_EEXIST, XO_ENOMEM, XO_ECLOSED, or what
   on_create returned. */
XO_API int xo_spawn(xo_runtime_t *rt, const xo_actor_def_t *def,
                    const xo_spawn_opts_t *opts, xo_ref_t *out);

/* Resolve a uid. Errors: XO_ENOTEXIST, XO_EINVAL, XO_ECLOSED. */
XO_API int xo_lookup(xo_runtime_t *rt, const char *uid, xo_ref_t *out);

/* True while the actor behind ref accepts messages. */
XO_API bool xo_ref_alive(xo_ref_t ref);

/*
 * Destroy an actor. From the moment it returns 0, sends through any ref to
 * the actor return XO_ENOTEXIST and its uid is free for a new actor; the
 * messages it accepted before are still handled, then on_destroy runs on its
 * worker, then its memory is reclaimed. Returns at once (it does not wait
 * for on_destroy), so a handler may destroy any actor, itself included.
 * Errors: XO_ENOTEXIST (unknown, or destroyed already), XO_ECLOSED.
 */
XO_API int xo_destroy(xo_ref_t ref);

typedef struct xo_actor_stats {
    uint64_t handled;      /* messages whose handler returned */
    uint64_t failed;       /* of those, handlers that returned < 0 */
    unsigned pool;         /* home pool index */
} xo_actor_stats_t;

/* Counters of a live actor (read while it runs: a recent snapshot). */
XO_API int xo_actor_stats(xo_ref_t ref, xo_actor_stats_t *out);

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

/*
 * Send a one-way message: `size` bytes at `data` are copied into the
 * message envelope (one allocation, no system call). From any thread.
 * Errors: XO_ENOTEXIST, XO_ECLOSED, XO_ENOMEM, XO_EINVAL (size over
 * UINT32_MAX, or data NULL with size > 0). On error nothing was sent.
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

/* ------------------------------------------------------------------ */
/* Handler context                                                     */
/* ------------------------------------------------------------------ */

/* Valid during the handler call it was passed to. */
XO_API xo_ref_t xo_self(const xo_ctx_t *ctx);
XO_API xo_runtime_t *xo_ctx_runtime(const xo_ctx_t *ctx);
/* Index of the actor's pool (on_create too: the pool it will live in). */
XO_API unsigned xo_ctx_pool(const xo_ctx_t *ctx);

/* ------------------------------------------------------------------ */
/* Pools                                                               */
/* ------------------------------------------------------------------ */

typedef struct xo_pool_info {
    unsigned index;
    int core;          /* CPU the worker was assigned, -1 if none */
    bool pinned;       /* the worker is bound to `core` */
    uint64_t actors;   /* live actors whose home is this pool */
    uint64_t handled;  /* messages handled by this pool's worker */
} xo_pool_info_t;

XO_API unsigned xo_pool_count(const xo_runtime_t *rt);
XO_API int xo_pool_info(const xo_runtime_t *rt, unsigned index,
                        xo_pool_info_t *out);

#ifdef __cplusplus
}
#endif

#endif /* XOSCAR_XOSCAR_H */
