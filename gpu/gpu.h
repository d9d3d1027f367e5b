/*
 * gpu.h -- the GPU layer's insides: a runtime's GPU state, its devices,
 * the streams (one per GPU pool), points on them, and the table of
 * operations a backend fills in. docs/gpu.md is the guide; this is the
 * map.
 *
 * The layer plugs into runtime/ at its seams and nowhere else: a pool kind
 * (struct xi_pool_kind: pool.c), the worker's hold on answers (worker.h,
 * call.h: a reply given on a stream thread waits for its point), function
 * items for work handed over from other threads (a copy to start, a
 * failure to take in), a timer by callback for polling (timer.h), the
 * exit seam's reason for actors whose device failed (recovery.h,
 * xi_recovery_end), and tailed envelopes for buffer messages
 * (envelope.h).
 *
 * Points. A point is a place in a stream's order: everything enqueued on
 * the stream before it was recorded has run once it is reached. Each
 * stream keeps its points in a FIFO, oldest first; its stream thread asks
 * the backend about the oldest only (a stream runs in order, so no later
 * point can be reached before it) and completes them in order: a reached
 * point releases its held answers, runs its callbacks, and completes its
 * future (the one host threads wait on, made only where one may wait).
 * The stream thread never blocks on the device: it polls when it would
 * otherwise sleep (the kind's `poll`), while it spins idle, and from a
 * timer while it is busy or asleep with points pending.
 *
 * Threads. A stream and its FIFO belong to its stream thread: every stream
 * operation is made there (other threads hand work over as function
 * items). A point is shared by reference count; other threads read only
 * its `state` (acquire) and wait on its future. A device's `failed` flag
 * is set once, by whoever sees the failure first, and read by every
 * thread.
 */
#ifndef XI_GPU_GPU_H
#define XI_GPU_GPU_H

#include <stdarg.h>

#include "runtime/runtime.h"

#define XI_GPU_MSG 256    /* an error message's room */
#define XI_GPU_EVENTS 64  /* events a stream keeps for reuse */

struct xi_gpu;
struct xi_gdev;
struct xi_gpoint;

/* Callbacks of a point, run on its stream thread when it is reached (0)
   or failed (status < 0, error: why). Embedded in their owner. */
struct xi_gcb {
    struct xi_gcb *next;
    void (*fn)(struct xi_gcb *cb, int status, const char *error);
};

enum { XI_GP_OPEN = 0, XI_GP_REACHED, XI_GP_FAILED };

struct xi_gpoint {
    _Atomic uint32_t refs;
    /* XI_GP_*: written (release) once, after error, by the completer;
       read with acquire by any thread. */
    _Atomic int state;
    struct xo_stream *stream;     /* where it is (to be) recorded */
    struct xi_gpoint *next;       /* the stream's FIFO */
    uint64_t seq;                 /* host backend: operations before it */
    void *ev;                     /* CUDA backend: its event */
    struct xi_held *held, *held_last; /* answers released here */
    struct xi_gcb *cbs, *cbs_last;
    struct xo_future *f;          /* host waiters (NULL: none) */
    int status;                   /* FAILED: the code (XO_EGPU, ...) */
    char *error;                  /* FAILED: why */
};

struct xi_gdev {
    struct xi_gpu *gpu;
    int index;
    void *be;                     /* the backend's (CUDA: service stream) */
    /* 1 once failed: set (release, after fail_msg) by the first to see a
       sticky failure; read with acquire by everyone. */
    _Atomic int failed;
    pthread_mutex_t fail_lock;    /* the first setter writes fail_msg */
    char fail_msg[XI_GPU_MSG];
};

/* One per GPU pool: its kind_data. */
struct xo_stream {
    xo_runtime_t *rt;
    struct xi_gpu *gpu;
    struct xi_gdev *dev;
    struct xi_pool *pool;
    void *be;                     /* the backend's stream */
    char label[24];               /* "gpu,gpu:N" */
    /* Stream thread only from here on. */
    struct xi_gpoint *head, *tail; /* points pending, oldest first */
    unsigned pending;
    bool work;                    /* host backend: operations queued */
    bool opened, closed, failed;
    struct xi_timer poll;         /* polls while points are pending */
    bool poll_armed, poll_lost;
    uint64_t poll_ns;             /* its interval now (backs off) */
    void *events[XI_GPU_EVENTS];  /* CUDA events kept for reuse */
    unsigned nevents;
    /* The thread's first item (open the stream), the last (drain and
       close), and the one that makes it take in its device's failure. */
    struct xi_func open_item, drain_item, fail_item;
    _Atomic bool fail_posted;     /* acq_rel exchange: one poster */
    /* open_item's outcome for the starting thread: 0 while it runs, then
       1 (opened) or 2 (failed: open_rc); futex word. */
    _Atomic uint32_t open_state;
    int open_rc;
    char open_msg[XI_GPU_MSG];
};

/* A backend: one table, the same stream threads above it. Functions that
   fail return an XO_E* code and say why in the thread's GPU error
   (xi_gpu_seterr, xo_gpu_last_error); those that meet a failure of the
   device itself mark it failed (xi_gdev_fail). */
enum { XI_GQ_PENDING = 0, XI_GQ_REACHED = 1 };

struct xi_gbackend {
    const char *name;
    xo_gpu_backend_t kind;
    /* Visible devices (none: 0, the reason as the thread's GPU error). */
    int (*count)(xo_runtime_t *rt, int *n);
    int (*dev_open)(struct xi_gdev *d);
    void (*dev_close)(struct xi_gdev *d);
    /* On the stream thread: its first and last calls. */
    int (*stream_open)(struct xo_stream *s);
    void (*stream_close)(struct xo_stream *s);
    int (*record)(struct xo_stream *s, struct xi_gpoint *p);
    /* XI_GQ_*, or an error (a failed device). */
    int (*query)(struct xo_stream *s, struct xi_gpoint *p);
    /* Make s wait for p (another stream's point) before what follows. */
    int (*wait)(struct xo_stream *s, struct xi_gpoint *p);
    /* p's event goes (any thread; p->stream says whose). */
    void (*point_free)(struct xi_gpoint *p);
    /* Host backend: run what is queued (true when something ran); NULL
       where the device runs it. */
    bool (*progress)(struct xo_stream *s);
    int (*launch)(struct xo_stream *s, const xo_kernel_t *k, xo_dim3_t grid,
                  xo_dim3_t block, size_t shared_bytes, void **args);
    int (*copy)(struct xo_stream *s, void *dst, const void *src, size_t n);
    int (*copy_peer)(struct xo_stream *s, void *dst, int dst_dev,
                     const void *src, int src_dev, size_t n);
    int (*fill)(struct xo_stream *s, void *dst, int byte, size_t n);
    /* Device memory: in s's order (s on d's stream thread), or at once
       (s NULL). A free with s is ordered after what s has enqueued. */
    int (*dev_alloc)(struct xi_gdev *d, struct xo_stream *s, size_t n,
                     void **out);
    void (*dev_free)(struct xi_gdev *d, struct xo_stream *s, void *p,
                     size_t n);
    int (*pinned_alloc)(struct xi_gpu *g, size_t n, void **out);
    void (*pinned_free)(struct xi_gpu *g, void *p, size_t n);
};

extern const struct xi_gbackend xi_gpu_host_backend;
#ifdef XO_HAVE_CUDA
extern const struct xi_gbackend xi_gpu_cuda_backend;
/* Visible CUDA devices; 0 with the reason in the thread's GPU error. */
int xi_cuda_count(int *n);
#endif

/* The pinned cache's size classes: 4 KiB to 256 MiB by powers of two. */
#define XI_PIN_MIN_SHIFT 12
#define XI_PIN_CLASSES 17
#define XI_PIN_CACHE_MAX ((size_t)512 << 20)

struct xi_gpu {
    xo_runtime_t *rt;
    const struct xi_gbackend *be;
    int ndev;
    /* Opened on first use, under pools_lock; release store, acquire
       load. */
    _Atomic(struct xi_gdev *) dev[XO_GPU_DEVICES_MAX];
    unsigned next_dev;            /* pools_lock: spec.device -1 */
    /* Pinned host blocks given back, by size class, for reuse. */
    pthread_mutex_t pin_lock;
    void *pin_free[XI_PIN_CLASSES];
    size_t pin_cached;
};

/* ---- gpu/pool.c ------------------------------------------------------- */

/* rt's GPU state, made (backend chosen, devices counted) on first need. */
int xi_gpu_get(xo_runtime_t *rt, struct xi_gpu **out);
/* Device d, opened on first need. */
int xi_gdev_get(struct xi_gpu *g, int d, struct xi_gdev **out);
/* The stream of the GPU pool whose thread this is, if it belongs to rt. */
static inline struct xo_stream *xi_gpu_current(xo_runtime_t *rt)
{
    struct xi_worker *w = xi_worker_of(rt);
    return w != NULL && w->pool->kind == XO_POOL_GPU
               ? (struct xo_stream *)w->pool->kind_data
               : NULL;
}
/* A running GPU pool's stream on device d, or NULL. */
struct xo_stream *xi_gpu_stream_of(xo_runtime_t *rt, int d);
/* The device failed (a sticky error): the first caller's message is the
   device's; every pool of it is told. Any thread. */
void xi_gdev_fail(struct xi_gdev *d, const char *msg);
static inline bool xi_gdev_failed(struct xi_gdev *d)
{
    /* acquire: pairs with xi_gdev_fail's release; fail_msg is written. */
    return atomic_load_explicit(&d->failed, memory_order_acquire) != 0;
}

/* ---- gpu/stream.c ----------------------------------------------------- */

/* The stream thread: poll the FIFO (true when a point completed or work
   ran), ask for a poll later, take in the device's failure. */
bool xi_gstream_poll(struct xo_stream *s);
void xi_gstream_arm(struct xo_stream *s);
void xi_gstream_fail(struct xo_stream *s);
/* Wait for what s has pending, without blocking on the device (removal,
   stop): polls with short naps. */
void xi_gstream_drain(struct xo_stream *s);
/* Worker hook (worker.h): hold an answer until the point recorded now. */
void xi_gstream_hold(struct xi_worker *w, struct xi_held *h);
/* Is the calling thread s's stream thread, and may s take work? 0, or
   XO_EINVAL / XO_EGPU (the thread's GPU error says why). */
int xi_gstream_usable(struct xo_stream *s);

/* A point recorded on s now, appended to its FIFO; with a future for host
   waiters if asked. *out is borrowed (the FIFO's reference). */
int xi_gpoint_record(struct xo_stream *s, bool future,
                     struct xi_gpoint **out);
/* A point for s made now and recorded later (by xi_gpoint_record_made on
   s's thread), or completed without ever being recorded; refs 1. */
int xi_gpoint_new(xo_runtime_t *rt, struct xo_stream *s, bool future,
                  struct xi_gpoint **out);
int xi_gpoint_record_made(struct xo_stream *s, struct xi_gpoint *p);
/* Complete p (reached: status 0; failed: status, error): one thread, once;
   the FIFO's own are completed by its stream thread. */
void xi_gpoint_complete(xo_runtime_t *rt, struct xi_gpoint *p, int status,
                        const char *error);
struct xi_gpoint *xi_gpoint_ref(struct xi_gpoint *p);
void xi_gpoint_unref(xo_runtime_t *rt, struct xi_gpoint *p);
/* Stream thread of p: run cb when p is reached or failed. */
void xi_gpoint_then(struct xi_gpoint *p, struct xi_gcb *cb);
/* Host side: wait until p is reached (0) or failed (XO_EGPU, with its
   message as the thread's GPU error). */
int xi_gpoint_wait(xo_runtime_t *rt, struct xi_gpoint *p);
static inline int xi_gpoint_state(const struct xi_gpoint *p)
{
    /* acquire: pairs with the completer's release store. */
    return atomic_load_explicit(&((struct xi_gpoint *)p)->state,
                                memory_order_acquire);
}

/* ---- errors ------------------------------------------------------------ */

/* The thread's GPU error (xo_gpu_last_error). Returns code. */
int xi_gpu_seterr(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *xi_gpu_err(void);
/* A handler's failure message follows the thread's GPU error, so that a
   handler returning code hands it to its caller. Returns code. */
int xi_gpu_ctx_err(int code);

/* ---- gpu/buffer.c ------------------------------------------------------ */

/* Every pinned block the cache keeps goes back (xo_runtime_free). */
void xi_gpu_pinned_flush(struct xi_gpu *g);

#endif /* XI_GPU_GPU_H */
