/*
 * host.c -- the host backend: GPU pools with no GPU. The stream threads,
 * their points, held answers, buffers and moves are the very code the
 * CUDA backend runs under (stream.c, buffer.c); only what a device would
 * do is done here on the host, so that every test of that code runs on
 * any machine.
 *
 * A stream is an in-order queue of host operations (a kernel's host
 * version, a copy, a fill, a wait for another stream's point, a free in
 * stream order). Its stream thread runs them when it polls -- between
 * turns and while idle, never inside a handler -- so a handler's work runs
 * after the handler returned, as a device's would. A point is a sequence
 * number: the count of operations queued before it was recorded; it is
 * reached once that many have run. A wait for another stream's point
 * stalls the queue until that point is reached, as cudaStreamWaitEvent
 * stalls a device stream.
 *
 * Like a device's launch queue, a stream's queue is bounded: with
 * XI_HOST_QUEUE operations waiting, the next one enqueued first runs the
 * oldest (a handler that floods its stream runs some of its own work, as a
 * CUDA launch into a full queue waits for it). Below that, which is all
 * that the tests enqueue at once, nothing runs inside a handler.
 *
 * A kernel that returns an error is a device failure, as a faulting CUDA
 * kernel is (a sticky error: the device's pools fail). Device and pinned
 * memory are host memory from the runtime's allocator, so fault injection
 * reaches them.
 */
#include "gpu/gpu.h"

#include <string.h>

struct host_op;
typedef int (*host_run_fn)(struct xo_stream *s, struct host_op *op);

/* run returns 0 (done), 1 (not yet: a wait) or -1 (failed: the thread's
   GPU error says why). */
struct host_op {
    struct host_op *next;
    size_t size;
    host_run_fn run;
    union {
        struct {
            const xo_kernel_t *k;
            xo_dim3_t grid, block;
            void *argv[XO_KERNEL_ARGS_MAX];
        } launch;
        struct {
            void *dst;
            const void *src;
            size_t n;
        } copy;
        struct {
            void *dst;
            int byte;
            size_t n;
        } fill;
        struct xi_gpoint *wait;
        struct {
            void *p;
            size_t n;
        } free;
    } u;
    alignas(16) unsigned char args[]; /* a launch's arguments, copied */
};

struct host_stream {
    struct host_op *head, *tail;
    uint64_t queued, done;
};

#define XI_HOST_QUEUE 1024

static bool host_progress_upto(struct xo_stream *s, uint64_t keep);

static int host_count(xo_runtime_t *rt, int *n)
{
    *n = (int)rt->cfg.gpu_host_devices;
    return 0;
}

static int host_dev_open(struct xi_gdev *d)
{
    d->be = NULL;
    return 0;
}

static void host_dev_close(struct xi_gdev *d)
{
    (void)d;
}

static int host_stream_open(struct xo_stream *s)
{
    struct host_stream *hs = xi_mem_zalloc(&s->rt->mem, sizeof(*hs));
    if (hs == NULL)
        return xi_gpu_seterr(XO_ENOMEM, "out of memory for a stream");
    s->be = hs;
    return 0;
}

static void op_free(struct xo_stream *s, struct host_op *op)
{
    xi_mem_free(&s->rt->mem, op, op->size);
}

static int run_wait(struct xo_stream *s, struct host_op *op);
static int run_free(struct xo_stream *s, struct host_op *op);

static void host_stream_close(struct xo_stream *s)
{
    struct host_stream *hs = s->be;
    /* What a failure left queued never runs; what it held goes. */
    while (hs->head != NULL) {
        struct host_op *op = hs->head;
        hs->head = op->next;
        if (op->run == run_wait)
            xi_gpoint_unref(s->rt, op->u.wait);
        else if (op->run == run_free)
            (void)run_free(s, op);
        op_free(s, op);
    }
    xi_mem_free(&s->rt->mem, hs, sizeof(*hs));
    s->be = NULL;
}

/* A new operation of `extra` argument bytes, not yet queued. */
static int op_new(struct xo_stream *s, host_run_fn run, size_t extra,
                  struct host_op **out)
{
    size_t size = sizeof(struct host_op) + extra;
    struct host_op *op = xi_mem_alloc(&s->rt->mem, size);
    if (op == NULL)
        return xi_gpu_seterr(XO_ENOMEM, "out of memory for a stream "
                                        "operation");
    memset(op, 0, sizeof(*op));
    op->size = size;
    op->run = run;
    *out = op;
    return 0;
}

static void op_queue(struct xo_stream *s, struct host_op *op)
{
    struct host_stream *hs = s->be;
    /* A full queue runs its oldest first (a stalled one grows: a wait for
       another stream's point is not ours to hurry). */
    if (hs->queued - hs->done >= XI_HOST_QUEUE)
        (void)host_progress_upto(s, XI_HOST_QUEUE - 1);
    if (hs->tail != NULL)
        hs->tail->next = op;
    else
        hs->head = op;
    hs->tail = op;
    hs->queued++;
    s->work = true;
    xi_gstream_arm(s);
}

/* Run queued operations in order until at most `keep` are left, one
   stalls, or one fails. True when something ran. */
static bool host_progress_upto(struct xo_stream *s, uint64_t keep)
{
    struct host_stream *hs = s->be;
    bool ran = false;
    while (hs->head != NULL && hs->queued - hs->done > keep &&
           !xi_gdev_failed(s->dev)) {
        struct host_op *op = hs->head;
        int r = op->run(s, op);
        if (r > 0)
            break; /* a wait not yet satisfied: the queue stalls */
        if (r < 0) {
            xi_gdev_fail(s->dev, xi_gpu_err());
            break;
        }
        hs->head = op->next;
        if (hs->head == NULL)
            hs->tail = NULL;
        hs->done++;
        op_free(s, op);
        ran = true;
    }
    s->work = hs->head != NULL;
    return ran;
}

static bool host_progress(struct xo_stream *s)
{
    return host_progress_upto(s, 0);
}

static int host_record(struct xo_stream *s, struct xi_gpoint *p)
{
    struct host_stream *hs = s->be;
    p->seq = hs->queued;
    return 0;
}

static int host_query(struct xo_stream *s, struct xi_gpoint *p)
{
    struct host_stream *hs = s->be;
    return hs->done >= p->seq ? XI_GQ_REACHED : XI_GQ_PENDING;
}

/* ---- operations --------------------------------------------------------- */

static int run_launch(struct xo_stream *s, struct host_op *op)
{
    (void)s;
    const xo_kernel_t *k = op->u.launch.k;
    char msg[XI_GPU_MSG] = "";
    int rc = k->host_fn(op->u.launch.grid, op->u.launch.block,
                        op->u.launch.argv, msg, sizeof(msg));
    if (rc == 0)
        return 0;
    xi_gpu_seterr(XO_EGPU, "kernel %s failed: %s (%s)",
                  k->name ? k->name : "?", msg[0] ? msg : "no message",
                  xo_err_name(rc));
    return -1;
}

static int host_launch(struct xo_stream *s, const xo_kernel_t *k,
                       xo_dim3_t grid, xo_dim3_t block, size_t shared_bytes,
                       void **args)
{
    (void)shared_bytes;
    if (k->host_fn == NULL)
        return xi_gpu_seterr(XO_ENOSYS, "kernel %s has no host version",
                             k->name ? k->name : "?");
    size_t total = 0;
    for (unsigned i = 0; i < k->nargs; i++)
        total += (k->arg_sizes[i] + 15u) & ~(size_t)15u;
    if (total > XO_KERNEL_ARG_BYTES)
        return xi_gpu_seterr(XO_EINVAL, "kernel %s: arguments over %u "
                                        "bytes",
                             k->name ? k->name : "?", XO_KERNEL_ARG_BYTES);
    struct host_op *op = NULL;
    int rc = op_new(s, run_launch, total, &op);
    if (rc != 0)
        return rc;
    op->u.launch.k = k;
    op->u.launch.grid = grid;
    op->u.launch.block = block;
    size_t at = 0;
    for (unsigned i = 0; i < k->nargs; i++) {
        memcpy(op->args + at, args[i], k->arg_sizes[i]);
        op->u.launch.argv[i] = op->args + at;
        at += (k->arg_sizes[i] + 15u) & ~(size_t)15u;
    }
    op_queue(s, op);
    return 0;
}

static int run_copy(struct xo_stream *s, struct host_op *op)
{
    (void)s;
    memmove(op->u.copy.dst, op->u.copy.src, op->u.copy.n);
    return 0;
}

static int host_copy(struct xo_stream *s, void *dst, const void *src,
                     size_t n)
{
    struct host_op *op = NULL;
    int rc = op_new(s, run_copy, 0, &op);
    if (rc != 0)
        return rc;
    op->u.copy.dst = dst;
    op->u.copy.src = src;
    op->u.copy.n = n;
    op_queue(s, op);
    return 0;
}

static int host_copy_peer(struct xo_stream *s, void *dst, int dst_dev,
                          const void *src, int src_dev, size_t n)
{
    (void)dst_dev;
    (void)src_dev;
    return host_copy(s, dst, src, n);
}

static int run_fill(struct xo_stream *s, struct host_op *op)
{
    (void)s;
    memset(op->u.fill.dst, op->u.fill.byte, op->u.fill.n);
    return 0;
}

static int host_fill(struct xo_stream *s, void *dst, int byte, size_t n)
{
    struct host_op *op = NULL;
    int rc = op_new(s, run_fill, 0, &op);
    if (rc != 0)
        return rc;
    op->u.fill.dst = dst;
    op->u.fill.byte = byte;
    op->u.fill.n = n;
    op_queue(s, op);
    return 0;
}

/* Another stream's point: done once its stream thread completed it (a
   failed one too: the failure travels with the message, not here). */
static int run_wait(struct xo_stream *s, struct host_op *op)
{
    struct xi_gpoint *p = op->u.wait;
    if (xi_gpoint_state(p) == XI_GP_OPEN)
        return 1;
    xi_gpoint_unref(s->rt, p);
    return 0;
}

static int host_wait(struct xo_stream *s, struct xi_gpoint *p)
{
    struct host_op *op = NULL;
    int rc = op_new(s, run_wait, 0, &op);
    if (rc != 0)
        return rc;
    op->u.wait = xi_gpoint_ref(p);
    op_queue(s, op);
    return 0;
}

static void host_point_free(struct xi_gpoint *p)
{
    (void)p;
}

static int host_dev_alloc(struct xi_gdev *d, struct xo_stream *s, size_t n,
                          void **out)
{
    (void)s;
    void *p = xi_mem_alloc(&d->gpu->rt->mem, n);
    if (p == NULL)
        return xi_gpu_seterr(XO_ENOMEM, "out of device memory (%zu bytes "
                                        "on host device %d)",
                             n, d->index);
    *out = p;
    return 0;
}

static int run_free(struct xo_stream *s, struct host_op *op)
{
    xi_mem_free(&s->rt->mem, op->u.free.p, op->u.free.n);
    return 0;
}

static void host_dev_free(struct xi_gdev *d, struct xo_stream *s, void *p,
                          size_t n)
{
    struct host_op *op = NULL;
    /* In s's order when there is s. Without memory for the operation,
       what is queued runs first (progress) and then the block goes: only
       a queue stalled on another stream's point could still hold a use
       of it then, and that needs an out-of-memory at this very free. */
    if (s != NULL && s->opened && !s->failed) {
        if (op_new(s, run_free, 0, &op) == 0) {
            op->u.free.p = p;
            op->u.free.n = n;
            op_queue(s, op);
            return;
        }
        while (host_progress(s))
            ;
    }
    xi_mem_free(&d->gpu->rt->mem, p, n);
}

static int host_pinned_alloc(struct xi_gpu *g, size_t n, void **out)
{
    void *p = xi_mem_alloc(&g->rt->mem, n);
    if (p == NULL)
        return xi_gpu_seterr(XO_ENOMEM, "out of pinned host memory (%zu "
                                        "bytes)", n);
    *out = p;
    return 0;
}

static void host_pinned_free(struct xi_gpu *g, void *p, size_t n)
{
    xi_mem_free(&g->rt->mem, p, n);
}

const struct xi_gbackend xi_gpu_host_backend = {
    .name = "host",
    .kind = XO_GPU_HOST,
    .count = host_count,
    .dev_open = host_dev_open,
    .dev_close = host_dev_close,
    .stream_open = host_stream_open,
    .stream_close = host_stream_close,
    .record = host_record,
    .query = host_query,
    .wait = host_wait,
    .point_free = host_point_free,
    .progress = host_progress,
    .launch = host_launch,
    .copy = host_copy,
    .copy_peer = host_copy_peer,
    .fill = host_fill,
    .dev_alloc = host_dev_alloc,
    .dev_free = host_dev_free,
    .pinned_alloc = host_pinned_alloc,
    .pinned_free = host_pinned_free,
};
