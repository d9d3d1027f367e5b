/*
 * buffer.c -- buffers (design in gpu.h, guide in docs/gpu.md): memory
 * that knows where it lives, reference-counted, moved by the cheapest path
 * when a message carries it.
 *
 * A buffer's `ready` point, when it has one, is where its contents are
 * there (a copy that made it); it never changes once the buffer is
 * shared. A message carries its own point beside the buffer (struct
 * bufmsg, in the envelope's tail): the sender's stream at the send, when
 * the sender is a stream thread, since what a handler sends is what its
 * stream has produced up to there.
 *
 * The moves:
 *  - to a GPU pool, at the receiver, when its handler asks (xo_msg_buf):
 *    the same device: the buffer itself, the stream made to wait for the
 *    message's point; another device: a peer copy on the receiver's
 *    stream after that wait; host memory: a copy to the device likewise;
 *  - a device buffer to anything else (a CPU actor, an actor of another
 *    node): a copy into pinned host memory on a stream of its device,
 *    started at the send (the sender's own stream when it is one of that
 *    device's, else a function item to one), so it overlaps the message's
 *    trip; the receiver waits for it only if it gets there first, lending
 *    its worker meanwhile. The message goes into the mailbox at once, so
 *    the sender's messages stay in order.
 *
 * Across nodes (docs/gpu.md "Across nodes"), through the seam of
 * runtime/envelope.h, with nothing of net/ named here: a remote actor is
 * host side, so the send stages as above and hands the message to the
 * route at once, in order. The net layer's I/O thread asks
 * xi_bufmsg_ready before it writes the bytes: one acquire load of the
 * message's point, which its own stream thread completes as it polls, so
 * neither the sender (maybe a stream thread) nor the I/O thread ever
 * waits for a stream. (The alternatives: the route only once the point
 * is reached, which would let the sender's later tells overtake the
 * buffer; or a function item waiting on a worker, which lends the worker
 * to a wait.) On the receiving node xi_bufmsg_deliver wraps the
 * reassembled block as a host buffer without a copy (a pinned copy for a
 * GPU actor on the CUDA backend, whose copy to the device is then
 * asynchronous) and sends it by the local path, with the remote sender.
 *
 * The last reference: on a stream thread the memory goes in that stream's
 * order (device memory of its device through the backend's stream-ordered
 * free, anything else when a point recorded now is reached), so work
 * enqueued before on that stream still finds it; elsewhere at once.
 *
 * Pinned host memory is slow to get (page locking): blocks given back are
 * kept by power-of-two size class, up to XI_PIN_CACHE_MAX in all, and
 * reused; they go back for good at xo_runtime_free.
 */
#include "gpu/gpu.h"

#include <string.h>

enum buf_own { OWN_HOST = 1, OWN_PINNED, OWN_DEVICE, OWN_USER };

struct xo_buf {
    _Atomic uint32_t refs;
    xo_mem_kind_t kind;
    int device;                  /* -1: host or pinned */
    enum buf_own own;
    void *data;
    size_t size;
    size_t cap;                  /* pinned: the block's size class */
    xo_runtime_t *rt;
    struct xi_gpu *gpu;          /* NULL: host memory, no GPU state */
    void (*free_fn)(void *data, void *arg);
    void *free_arg;
    struct xi_gpoint *ready;     /* contents there once reached; NULL: now */
    struct xi_gcb free_cb;       /* a free waiting for a point */
};

/* ---- pinned blocks ------------------------------------------------------ */

/* The size class of n bytes (XI_PIN_CLASSES: too large to keep), and the
   block's size. */
static unsigned pin_class(size_t n, size_t *cap)
{
    unsigned c = 0;
    size_t size = (size_t)1 << XI_PIN_MIN_SHIFT;
    while (size < n && c < XI_PIN_CLASSES) {
        size <<= 1;
        c++;
    }
    *cap = c < XI_PIN_CLASSES ? size : n;
    return c;
}

static int pinned_get(struct xi_gpu *g, size_t n, void **out, size_t *cap)
{
    unsigned c = pin_class(n, cap);
    if (c < XI_PIN_CLASSES) {
        pthread_mutex_lock(&g->pin_lock);
        void *p = g->pin_free[c];
        if (p != NULL) {
            g->pin_free[c] = *(void **)p;
            g->pin_cached -= *cap;
        }
        pthread_mutex_unlock(&g->pin_lock);
        if (p != NULL) {
            *out = p;
            return 0;
        }
    }
    return g->be->pinned_alloc(g, *cap, out);
}

static void pinned_put(struct xi_gpu *g, void *p, size_t cap)
{
    size_t size;
    unsigned c = pin_class(cap, &size);
    if (c < XI_PIN_CLASSES && size == cap) {
        pthread_mutex_lock(&g->pin_lock);
        bool keep = g->pin_cached + cap <= XI_PIN_CACHE_MAX;
        if (keep) {
            *(void **)p = g->pin_free[c];
            g->pin_free[c] = p;
            g->pin_cached += cap;
        }
        pthread_mutex_unlock(&g->pin_lock);
        if (keep)
            return;
    }
    g->be->pinned_free(g, p, cap);
}

void xi_gpu_pinned_flush(struct xi_gpu *g)
{
    for (unsigned c = 0; c < XI_PIN_CLASSES; c++) {
        size_t cap = (size_t)1 << (XI_PIN_MIN_SHIFT + c);
        while (g->pin_free[c] != NULL) {
            void *p = g->pin_free[c];
            g->pin_free[c] = *(void **)p;
            g->be->pinned_free(g, p, cap);
        }
    }
    g->pin_cached = 0;
}

/* ---- buffers -------------------------------------------------------------- */

static void buf_destroy(xo_buf_t *b)
{
    xi_gpoint_unref(b->rt, b->ready);
    xi_mem_free(&b->rt->mem, b, sizeof(*b));
}

/* The memory goes now: nothing enqueued can still use it. */
static void buf_free_now(xo_buf_t *b)
{
    switch (b->own) {
    case OWN_HOST:
        xi_mem_free(&b->rt->mem, b->data, b->size);
        break;
    case OWN_PINNED:
        pinned_put(b->gpu, b->data, b->cap);
        break;
    case OWN_DEVICE: {
        /* acquire: pairs with the device's release publication. */
        struct xi_gdev *d = atomic_load_explicit(&b->gpu->dev[b->device],
                                                 memory_order_acquire);
        b->gpu->be->dev_free(d, NULL, b->data, b->size);
        break;
    }
    case OWN_USER:
        if (b->free_fn != NULL)
            b->free_fn(b->data, b->free_arg);
        break;
    }
    buf_destroy(b);
}

static void free_at_point(struct xi_gcb *cb, int status, const char *error)
{
    (void)status;
    (void)error;
    buf_free_now(xi_container_of(cb, struct xo_buf, free_cb));
}

/* The last reference went: in this thread's stream order, if it is a
   stream thread (host memory too, with no GPU state of its own: a copy
   from it may be queued there, as the receiver of a host buffer's
   message queues one). */
static void buf_free(xo_buf_t *b)
{
    struct xo_stream *s = xi_gpu_current(b->rt);
    if (s != NULL && xi_gstream_usable(s) == 0) {
        if (b->own == OWN_DEVICE && b->device == s->dev->index) {
            s->gpu->be->dev_free(s->dev, s, b->data, b->size);
            buf_destroy(b);
            return;
        }
        struct xi_gpoint *p = NULL;
        if (xi_gpoint_record(s, false, &p) == 0) {
            b->free_cb.fn = free_at_point;
            xi_gpoint_then(p, &b->free_cb);
            return;
        }
        /* No point to wait for (out of memory): what is queued runs
           first, then it goes. */
        xi_gstream_drain(s);
    }
    buf_free_now(b);
}

static int buf_new(xo_runtime_t *rt, struct xi_gpu *g, xo_mem_kind_t kind,
                   int device, size_t size, xo_buf_t **out)
{
    xo_buf_t *b = xi_mem_zalloc(&rt->mem, sizeof(*b));
    if (b == NULL)
        return xi_gpu_seterr(XO_ENOMEM, "out of memory for a buffer");
    atomic_init(&b->refs, 1);
    b->rt = rt;
    b->gpu = g;
    b->kind = kind;
    b->device = kind == XO_MEM_DEVICE ? device : -1;
    b->size = size;
    *out = b;
    return 0;
}

/* A device buffer of s's device, allocated in s's order. */
static int buf_device_on(struct xo_stream *s, size_t size, xo_buf_t **out)
{
    xo_buf_t *b = NULL;
    int rc = buf_new(s->rt, s->gpu, XO_MEM_DEVICE, s->dev->index, size, &b);
    if (rc != 0)
        return rc;
    rc = s->gpu->be->dev_alloc(s->dev, s, size, &b->data);
    if (rc != 0) {
        xi_mem_free(&s->rt->mem, b, sizeof(*b));
        return rc;
    }
    b->own = OWN_DEVICE;
    *out = b;
    return 0;
}

static int buf_pinned(xo_runtime_t *rt, struct xi_gpu *g, size_t size,
                      xo_buf_t **out)
{
    xo_buf_t *b = NULL;
    int rc = buf_new(rt, g, XO_MEM_PINNED, -1, size, &b);
    if (rc != 0)
        return rc;
    rc = pinned_get(g, size, &b->data, &b->cap);
    if (rc != 0) {
        xi_mem_free(&rt->mem, b, sizeof(*b));
        return rc;
    }
    b->own = OWN_PINNED;
    *out = b;
    return 0;
}

static bool kind_valid(xo_mem_kind_t kind)
{
    return kind == XO_MEM_HOST || kind == XO_MEM_PINNED ||
           kind == XO_MEM_DEVICE;
}

int xo_buf_alloc(xo_runtime_t *rt, xo_mem_kind_t kind, int device,
                 size_t size, xo_buf_t **out)
{
    if (out != NULL)
        *out = NULL;
    if (rt == NULL || out == NULL || size == 0 || !kind_valid(kind))
        return xi_gpu_seterr(XO_EINVAL, "xo_buf_alloc: a bad argument");
    xo_buf_t *b = NULL;
    int rc;
    if (kind == XO_MEM_HOST) {
        if ((rc = buf_new(rt, NULL, kind, -1, size, &b)) != 0)
            return rc;
        b->data = xi_mem_alloc(&rt->mem, size);
        if (b->data == NULL) {
            xi_mem_free(&rt->mem, b, sizeof(*b));
            return xi_gpu_seterr(XO_ENOMEM, "out of memory (%zu bytes)",
                                 size);
        }
        b->own = OWN_HOST;
        *out = b;
        return 0;
    }
    struct xi_gpu *g = NULL;
    if ((rc = xi_gpu_get(rt, &g)) != 0)
        return rc;
    if (kind == XO_MEM_PINNED)
        return buf_pinned(rt, g, size, out);
    struct xo_stream *s = xi_gpu_current(rt);
    if (device == -1 && s == NULL)
        return xi_gpu_seterr(XO_EINVAL, "device -1 is a stream thread's own "
                                        "device: name one here");
    if (device == -1)
        device = s->dev->index;
    struct xi_gdev *d = NULL;
    if ((rc = xi_gdev_get(g, device, &d)) != 0)
        return rc;
    if (xi_gdev_failed(d))
        return xi_gpu_seterr(XO_EGPU, "%s", d->fail_msg);
    if (s != NULL && s->dev == d && xi_gstream_usable(s) == 0)
        return buf_device_on(s, size, out);
    if ((rc = buf_new(rt, g, kind, device, size, &b)) != 0)
        return rc;
    if ((rc = g->be->dev_alloc(d, NULL, size, &b->data)) != 0) {
        xi_mem_free(&rt->mem, b, sizeof(*b));
        return rc;
    }
    b->own = OWN_DEVICE;
    *out = b;
    return 0;
}

int xo_buf_wrap(xo_runtime_t *rt, xo_mem_kind_t kind, int device, void *data,
                size_t size, void (*free_fn)(void *data, void *arg),
                void *arg, xo_buf_t **out)
{
    if (out != NULL)
        *out = NULL;
    if (rt == NULL || out == NULL || data == NULL || size == 0 ||
        !kind_valid(kind))
        return xi_gpu_seterr(XO_EINVAL, "xo_buf_wrap: a bad argument");
    struct xi_gpu *g = NULL;
    int rc;
    if (kind != XO_MEM_HOST) {
        if ((rc = xi_gpu_get(rt, &g)) != 0)
            return rc;
        struct xi_gdev *d = NULL;
        if (kind == XO_MEM_DEVICE && (rc = xi_gdev_get(g, device, &d)) != 0)
            return rc;
    }
    xo_buf_t *b = NULL;
    if ((rc = buf_new(rt, g, kind, device, size, &b)) != 0)
        return rc;
    b->data = data;
    b->own = OWN_USER;
    b->free_fn = free_fn;
    b->free_arg = arg;
    *out = b;
    return 0;
}

void *xo_buf_data(const xo_buf_t *b)
{
    return b != NULL ? b->data : NULL;
}

size_t xo_buf_size(const xo_buf_t *b)
{
    return b != NULL ? b->size : 0;
}

xo_mem_kind_t xo_buf_kind(const xo_buf_t *b)
{
    return b != NULL ? b->kind : (xo_mem_kind_t)0;
}

int xo_buf_device(const xo_buf_t *b)
{
    return b != NULL ? b->device : -1;
}

xo_buf_t *xo_buf_ref(xo_buf_t *b)
{
    if (b != NULL)
        /* relaxed: taken while the caller's reference keeps b alive. */
        atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void xo_buf_release(xo_buf_t *b)
{
    /* acq_rel: the last holder sees every write made under the others. */
    if (b != NULL &&
        atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        buf_free(b);
}

/* ---- copies to the host ------------------------------------------------------ */

/* A device buffer copied into pinned host memory on a stream of its
   device. Prepared on the sender's thread (nothing can fail later but the
   copy itself), started once the message is in the mailbox. */
struct xfer {
    struct xi_func item;         /* to the copying stream's thread */
    struct xi_gcb done_cb;
    xo_runtime_t *rt;
    struct xo_stream *s;         /* the copying stream */
    xo_buf_t *src;               /* a reference, from the start on */
    struct xi_gpoint *src_ready; /* the source's point (a reference) */
    xo_buf_t *dst;               /* a reference */
    struct xi_gpoint *done;      /* dst's ready point (a reference) */
};

static int xfer_prepare(xo_runtime_t *rt, xo_buf_t *src,
                        struct xi_gpoint *src_ready, struct xo_stream *cur,
                        struct xfer **out)
{
    struct xo_stream *s = cur != NULL && cur->dev->index == src->device &&
                                  xi_gstream_usable(cur) == 0
                              ? cur
                              : xi_gpu_stream_of(rt, src->device);
    if (s == NULL)
        return xi_gpu_seterr(XO_ENOTEXIST, "no running GPU pool of device "
                                           "%d to copy the buffer to the host",
                             src->device);
    struct xfer *x = xi_mem_zalloc(&rt->mem, sizeof(*x));
    if (x == NULL)
        return xi_gpu_seterr(XO_ENOMEM, "out of memory for a copy");
    int rc = buf_pinned(rt, src->gpu, src->size, &x->dst);
    if (rc == 0)
        rc = xi_gpoint_new(rt, s, true, &x->done);
    if (rc != 0) {
        xo_buf_release(x->dst);
        xi_mem_free(&rt->mem, x, sizeof(*x));
        return rc;
    }
    x->dst->ready = xi_gpoint_ref(x->done);
    x->rt = rt;
    x->s = s;
    x->src_ready = xi_gpoint_ref(src_ready);
    *out = x;
    return 0;
}

/* What the transfer holds goes (src in the thread's stream order). */
static void xfer_free(struct xfer *x)
{
    xo_runtime_t *rt = x->rt;
    if (x->src != NULL)
        xo_buf_release(x->src);
    xi_gpoint_unref(rt, x->src_ready);
    xo_buf_release(x->dst);
    xi_gpoint_unref(rt, x->done);
    xi_mem_free(&rt->mem, x, sizeof(*x));
}

static void xfer_done(struct xi_gcb *cb, int status, const char *error)
{
    (void)status;
    (void)error;
    xfer_free(xi_container_of(cb, struct xfer, done_cb));
}

/* The copy cannot be made: its waiters hear why. */
static void xfer_fail(struct xfer *x, int rc, const char *why)
{
    xi_gpoint_complete(x->rt, x->done, rc, why);
    xfer_free(x);
}

/* On the copying stream's thread. */
static void xfer_run(struct xfer *x)
{
    struct xo_stream *s = x->s;
    const struct xi_gbackend *be = s->gpu->be;
    int rc = xi_gstream_usable(s);
    struct xi_gpoint *w = x->src_ready;
    if (rc == 0 && w != NULL && xi_gpoint_state(w) == XI_GP_FAILED)
        rc = xi_gpu_seterr(w->status, "%s", w->error ? w->error : "");
    if (rc == 0 && w != NULL && w->stream != s &&
        xi_gpoint_state(w) == XI_GP_OPEN)
        rc = be->wait(s, w);
    if (rc == 0)
        rc = be->copy(s, x->dst->data, x->src->data, x->src->size);
    if (rc == 0)
        rc = xi_gpoint_record_made(s, x->done);
    if (rc != 0) {
        xfer_fail(x, rc, xi_gpu_err());
        return;
    }
    x->done_cb.fn = xfer_done;
    xi_gpoint_then(x->done, &x->done_cb);
}

static void xfer_item(struct xi_func *f, struct xi_worker *w)
{
    (void)w;
    struct xfer *x = xi_container_of(f, struct xfer, item);
    /* Run elsewhere (the pool was removed, or the runtime is freed): no
       copy, and the receiver is told. */
    if (xi_current_worker() != x->s->pool->worker) {
        xfer_fail(x, XO_ENOTEXIST, "the GPU pool that was to copy the "
                                   "buffer to the host was removed");
        return;
    }
    xfer_run(x);
}

/* Takes over the caller's reference on src. */
static void xfer_start(struct xfer *x, xo_buf_t *src)
{
    x->src = src;
    if (xi_current_worker() == x->s->pool->worker) {
        xfer_run(x);
        return;
    }
    x->item.fn = xfer_item;
    xi_worker_post(x->s->pool->worker, &x->item);
}

/* Never started: the caller keeps src. */
static void xfer_abort(struct xfer *x)
{
    x->src = NULL;
    xfer_free(x);
}

/* ---- messages ------------------------------------------------------------ */

struct bufmsg {
    xo_buf_t *buf;             /* the message's reference */
    struct xi_gpoint *ready;   /* its contents there once reached */
};

static void bufmsg_free(void *data, void *extra)
{
    (void)data;
    struct bufmsg *m = extra;
    if (m->buf == NULL)
        return;
    xi_gpoint_unref(m->buf->rt, m->ready);
    xo_buf_release(m->buf);
}

/* The device of the GPU pool `id` lives on, or -1 (a CPU pool's actor, or
   one that is not here: the send says so). */
static int receiver_device(xo_runtime_t *rt, uint64_t id)
{
    int d = -1;
    xi_rcu_lock();
    struct xi_cell *c = NULL;
    if (!xi_rt_closing(rt) &&
        xi_ref_where(&rt->slots, id, &c) == XI_REF_LOCAL) {
        struct xi_pool *p = xi_pool_at(rt, c->pool);
        if (p->kind == XO_POOL_GPU)
            d = ((struct xo_stream *)p->kind_data)->dev->index;
    }
    xi_rcu_unlock(&rt->rcu_sync);
    return d;
}

/* A buffer message to `to` from `sender`: xo_send_buf's, and a remote
   node's delivered here (sender: the remote actor). */
static int send_buf(xo_ref_t to, uint32_t tag, xo_buf_t *b, const void *data,
                    size_t size, xo_ref_t sender)
{
    xo_runtime_t *rt = to.rt;
    struct xo_stream *cur = xi_gpu_current(rt);
    /* Another node's actor is host side too: its bytes go to the wire
       from host memory. */
    bool host_side = receiver_device(rt, to.id) < 0;
    struct xi_envelope *env = NULL;
    struct bufmsg *m = NULL;
    int rc = xi_envelope_new_tailed(rt, tag, size, sizeof(*m), bufmsg_free,
                                    &env, (void **)&m);
    if (rc != 0)
        return rc;
    if (size > 0)
        memcpy(env->msg.data, data, size);
    env->msg.sender = sender;
    m->buf = NULL;
    m->ready = NULL;
    /* The message's point: where the sender's stream is now, or the
       buffer's own. */
    struct xi_gpoint *ready = NULL;
    if (cur != NULL) {
        rc = xi_gstream_usable(cur);
        if (rc == 0)
            rc = xi_gpoint_record(cur, host_side, &ready);
        xi_gpoint_ref(ready);
    } else {
        ready = xi_gpoint_ref(b->ready);
    }
    struct xfer *x = NULL;
    if (rc == 0 && host_side && b->kind == XO_MEM_DEVICE)
        rc = xfer_prepare(rt, b, ready, cur, &x);
    if (rc != 0) {
        xi_gpoint_unref(rt, ready);
        xi_envelope_free(rt, env);
        return rc;
    }
    if (x != NULL) {
        m->buf = xo_buf_ref(x->dst);
        m->ready = xi_gpoint_ref(x->done);
        xi_gpoint_unref(rt, ready); /* the transfer holds its own */
    } else {
        m->buf = b;
        m->ready = ready;
    }
    rc = xi_enqueue(to, env);
    if (rc != 0) {
        if (x == NULL) { /* the caller keeps its reference */
            xi_gpoint_unref(rt, m->ready);
            m->buf = NULL;
        }
        xi_envelope_free(rt, env);
        if (x != NULL)
            xfer_abort(x);
        if (rc == XO_EINVAL && xi_ref_node(to.id) != 0)
            xi_gpu_seterr(rc, "xo_send_buf: a buffer of %zu bytes with %zu "
                              "bytes of data is over the largest message "
                              "that crosses nodes (the node's max_message)",
                          b->size, size);
        return rc;
    }
    if (x != NULL)
        xfer_start(x, b);
    xi_count_sends(xi_current_ctx(), 1);
    return 0;
}

int xo_send_buf(xo_ref_t to, uint32_t tag, xo_buf_t *b, const void *data,
                size_t size)
{
    xo_runtime_t *rt = to.rt;
    if (rt == NULL || b == NULL || b->rt != rt || (data == NULL && size > 0))
        return xi_gpu_ctx_err(xi_gpu_seterr(XO_EINVAL,
                                            "xo_send_buf: a bad argument"));
    return xi_gpu_ctx_err(send_buf(to, tag, b, data, size,
                                   xi_current_sender(rt)));
}

/* ---- buffer messages across nodes (the seam in envelope.h) ------------- */

size_t xi_bufmsg_size(struct xi_envelope *env)
{
    struct bufmsg *m = xi_envelope_tail(env, bufmsg_free);
    return m != NULL && m->buf != NULL ? m->buf->size : 0;
}

int xi_bufmsg_ready(struct xi_envelope *env, const void **bytes)
{
    struct bufmsg *m = xi_envelope_tail(env, bufmsg_free);
    if (m == NULL || m->buf == NULL)
        return XO_EINVAL;
    /* A device buffer to another node was staged at the send (m->buf is
       the pinned copy): device memory here would be a message made for
       a local GPU actor, which never goes to the route. */
    if (m->buf->kind == XO_MEM_DEVICE)
        return XO_EINVAL;
    if (m->ready != NULL) {
        int st = xi_gpoint_state(m->ready);
        if (st == XI_GP_OPEN)
            return 0;
        if (st == XI_GP_FAILED)
            return m->ready->status < 0 ? m->ready->status : XO_EGPU;
    }
    *bytes = m->buf->data;
    return 1;
}

int xi_bufmsg_deliver(xo_ref_t to, xo_ref_t sender, uint32_t tag,
                      void *bytes, size_t size,
                      void (*free_fn)(void *bytes, void *arg), void *arg,
                      const void *data, size_t data_size)
{
    xo_runtime_t *rt = to.rt;
    xo_buf_t *b = NULL;
    int rc;
    struct xi_gpu *g = NULL;
    /* A GPU actor's device takes it from pinned memory asynchronously,
       from pageable memory only through a synchronous staged copy on its
       stream thread: on the CUDA backend the bytes are copied into a
       pinned block (from the cache) here, off the stream thread. */
    bool pin = receiver_device(rt, to.id) >= 0 && xi_gpu_get(rt, &g) == 0 &&
               g->be->kind == XO_GPU_CUDA;
    if (free_fn != NULL && !pin) {
        rc = buf_new(rt, NULL, XO_MEM_HOST, -1, size, &b);
        if (rc != 0) {
            free_fn(bytes, arg);
            return rc;
        }
        b->data = bytes;
        b->own = OWN_USER;
        b->free_fn = free_fn;
        b->free_arg = arg;
    } else {
        rc = pin ? buf_pinned(rt, g, size, &b)
                 : xo_buf_alloc(rt, XO_MEM_HOST, -1, size, &b);
        if (rc == 0)
            memcpy(b->data, bytes, size);
        if (free_fn != NULL)
            free_fn(bytes, arg);
        if (rc != 0)
            return rc;
    }
    rc = send_buf(to, tag, b, data, data_size, sender);
    if (rc != 0)
        xo_buf_release(b);
    return rc;
}

/* On a stream thread: the buffer in this device's memory, in this
   stream's order. */
static int take_on_stream(struct xo_stream *s, struct bufmsg *m,
                          xo_buf_t **out)
{
    const struct xi_gbackend *be = s->gpu->be;
    int rc = xi_gstream_usable(s);
    if (rc != 0)
        return rc;
    struct xi_gpoint *p = m->ready;
    if (p != NULL && xi_gpoint_state(p) == XI_GP_FAILED)
        return xi_gpu_seterr(p->status, "%s", p->error ? p->error : "");
    bool wait = p != NULL && p->stream != s &&
                xi_gpoint_state(p) == XI_GP_OPEN;
    xo_buf_t *b = m->buf;
    if (b->kind == XO_MEM_DEVICE && b->device == s->dev->index) {
        if (wait && (rc = be->wait(s, p)) != 0)
            return rc;
    } else {
        xo_buf_t *n = NULL;
        if ((rc = buf_device_on(s, b->size, &n)) != 0)
            return rc;
        if (wait)
            rc = be->wait(s, p);
        if (rc == 0)
            rc = b->kind == XO_MEM_DEVICE
                     ? be->copy_peer(s, n->data, s->dev->index, b->data,
                                     b->device, b->size)
                     : be->copy(s, n->data, b->data, b->size);
        if (rc != 0) {
            xo_buf_release(n);
            return rc;
        }
        /* The message carries the copy from now on; the original goes in
           this stream's order, after the copy. */
        m->buf = n;
        xo_buf_release(b);
    }
    /* This stream waits for it now: nothing more to wait for. */
    m->ready = NULL;
    xi_gpoint_unref(s->rt, p);
    *out = m->buf;
    return 0;
}

/* Elsewhere: the buffer in host memory, its contents there. */
static int take_on_host(xo_runtime_t *rt, struct bufmsg *m, xo_buf_t **out)
{
    xo_buf_t *b = m->buf;
    if (b->kind == XO_MEM_DEVICE) {
        /* Not moved at the send (its receiver was not known as a CPU
           actor then): move it now. */
        struct xfer *x = NULL;
        int rc = xfer_prepare(rt, b, m->ready, NULL, &x);
        if (rc != 0)
            return rc;
        xi_gpoint_unref(rt, m->ready);
        m->buf = xo_buf_ref(x->dst);
        m->ready = xi_gpoint_ref(x->done);
        xfer_start(x, b); /* the message's reference */
    }
    int rc = xi_gpoint_wait(rt, m->ready);
    if (rc != 0)
        return rc;
    *out = m->buf;
    return 0;
}

int xo_msg_buf(xo_ctx_t *ctx, const xo_msg_t *msg, xo_buf_t **out)
{
    if (out != NULL)
        *out = NULL;
    if (ctx == NULL || msg == NULL || out == NULL)
        return xi_gpu_seterr(XO_EINVAL, "xo_msg_buf: a bad argument");
    struct xi_envelope *env =
        xi_container_of(msg, struct xi_envelope, msg);
    struct bufmsg *m = xi_envelope_tail(env, bufmsg_free);
    if (m == NULL || m->buf == NULL)
        return xi_gpu_ctx_err(xi_gpu_seterr(XO_EINVAL,
                                            "the message carries no buffer"));
    struct xo_stream *s = xi_gpu_current(ctx->rt);
    int rc = s != NULL ? take_on_stream(s, m, out)
                       : take_on_host(ctx->rt, m, out);
    return xi_gpu_ctx_err(rc);
}
