/*
 * pool.c -- GPU pools as a pool kind (design in gpu.h): a runtime's GPU
 * state and its backend, devices, and the kind's operations that pool.c
 * of runtime/ calls.
 *
 * A GPU pool's worker is an ordinary worker (runtime/worker.c): its run
 * queue, its actors' mailboxes, its timers. What the kind adds: the
 * thread's first item opens the stream on it (a CUDA context is per
 * thread: cudaSetDevice there, then the stream), and start waits for that
 * item's answer, so a pool whose stream cannot be made is never
 * published; the worker's answers are held (xi_gstream_hold); before it
 * parks the worker polls its stream; stop drains what is pending, then
 * closes the stream on the thread, then joins it.
 *
 * The backend is chosen once per runtime, with its first GPU pool or
 * buffer (under pools_lock): cfg.gpu_backend, and for XO_GPU_AUTO the
 * CUDA backend where this build has it and a device is visible.
 *
 * A device's failure (a sticky error: a kernel that faulted) is set once
 * on the device, with the first message; each of its pools takes it in on
 * its own thread (xi_gstream_fail), woken by a function item.
 */
#include "gpu/gpu.h"

#include <stdio.h>
#include <string.h>

/* ---- errors ------------------------------------------------------------ */

static __thread char gpu_err[XI_GPU_MSG];

int xi_gpu_seterr(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(gpu_err, sizeof(gpu_err), fmt, ap);
    va_end(ap);
    return code;
}

const char *xi_gpu_err(void)
{
    return gpu_err;
}

const char *xo_gpu_last_error(void)
{
    return gpu_err;
}

int xi_gpu_ctx_err(int code)
{
    struct xo_ctx *ctx = xi_current_ctx();
    if (code < 0 && ctx != NULL && gpu_err[0] != '\0')
        xi_ctx_set_fail(ctx, gpu_err);
    return code;
}

/* ---- backends -------------------------------------------------------------- */

const char *xo_gpu_backend_name(xo_gpu_backend_t backend)
{
    switch (backend) {
    case XO_GPU_AUTO: return "auto";
    case XO_GPU_CUDA: return "cuda";
    case XO_GPU_HOST: return "host";
    }
    return "?";
}

int xo_gpu_probe(xo_gpu_probe_t *out)
{
    if (out == NULL)
        return XO_EINVAL;
    memset(out, 0, sizeof(*out));
#ifdef XO_HAVE_CUDA
    out->cuda_built = true;
    int n = 0;
    if (xi_cuda_count(&n) != 0 || n == 0)
        snprintf(out->reason, sizeof(out->reason), "%s", xi_gpu_err());
    out->cuda_devices = n;
#else
    snprintf(out->reason, sizeof(out->reason),
             "this build has no CUDA backend (the CUDA toolkit was not "
             "found at configure time)");
#endif
    return 0;
}

/* The backend cfg asks for, and its devices. */
static int choose_backend(xo_runtime_t *rt, const struct xi_gbackend **be,
                          int *ndev)
{
    xo_gpu_backend_t want = rt->cfg.gpu_backend;
    *ndev = 0;
#ifdef XO_HAVE_CUDA
    if (want == XO_GPU_AUTO || want == XO_GPU_CUDA) {
        int n = 0;
        int rc = xi_cuda_count(&n);
        if (rc == 0 && n > 0) {
            *be = &xi_gpu_cuda_backend;
            *ndev = n;
            return 0;
        }
        if (want == XO_GPU_CUDA)
            return rc != 0 ? rc : XO_EGPU;
    }
#else
    if (want == XO_GPU_CUDA)
        return xi_gpu_seterr(XO_ENOSYS, "this build has no CUDA backend");
#endif
    *be = &xi_gpu_host_backend;
    return xi_gpu_host_backend.count(rt, ndev);
}

/* Under pools_lock (or before the runtime is shared). */
static int gpu_get_locked(xo_runtime_t *rt, struct xi_gpu **out)
{
    /* relaxed: written under pools_lock, which we hold. */
    struct xi_gpu *g = atomic_load_explicit(&rt->gpu, memory_order_relaxed);
    if (g != NULL) {
        *out = g;
        return 0;
    }
    const struct xi_gbackend *be;
    int ndev;
    int rc = choose_backend(rt, &be, &ndev);
    if (rc != 0)
        return rc;
    g = xi_mem_zalloc(&rt->mem, sizeof(*g));
    if (g == NULL)
        return XO_ENOMEM;
    g->rt = rt;
    g->be = be;
    g->ndev = ndev < XO_GPU_DEVICES_MAX ? ndev : XO_GPU_DEVICES_MAX;
    pthread_mutex_init(&g->pin_lock, NULL);
    /* release: g is whole before any thread loads it. */
    atomic_store_explicit(&rt->gpu, g, memory_order_release);
    *out = g;
    return 0;
}

int xi_gpu_get(xo_runtime_t *rt, struct xi_gpu **out)
{
    /* acquire: pairs with the release store in gpu_get_locked. */
    struct xi_gpu *g = atomic_load_explicit(&rt->gpu, memory_order_acquire);
    if (g != NULL) {
        *out = g;
        return 0;
    }
    pthread_mutex_lock(&rt->pools_lock);
    int rc = gpu_get_locked(rt, out);
    pthread_mutex_unlock(&rt->pools_lock);
    return rc;
}

int xo_gpu_backend(xo_runtime_t *rt, xo_gpu_backend_t *backend,
                   int *devices)
{
    if (rt == NULL)
        return XO_EINVAL;
    struct xi_gpu *g = NULL;
    int rc = xi_gpu_get(rt, &g);
    if (rc != 0)
        return rc;
    if (backend != NULL)
        *backend = g->be->kind;
    if (devices != NULL)
        *devices = g->ndev;
    return 0;
}

/* Under pools_lock: open device d. */
static int gdev_open_locked(struct xi_gpu *g, int d, struct xi_gdev **out)
{
    /* relaxed: written under pools_lock, which we hold. */
    struct xi_gdev *dev = atomic_load_explicit(&g->dev[d],
                                               memory_order_relaxed);
    if (dev != NULL) {
        *out = dev;
        return 0;
    }
    dev = xi_mem_zalloc(&g->rt->mem, sizeof(*dev));
    if (dev == NULL)
        return XO_ENOMEM;
    dev->gpu = g;
    dev->index = d;
    pthread_mutex_init(&dev->fail_lock, NULL);
    int rc = g->be->dev_open(dev);
    if (rc != 0) {
        pthread_mutex_destroy(&dev->fail_lock);
        xi_mem_free(&g->rt->mem, dev, sizeof(*dev));
        return rc;
    }
    /* release: the device is open before anyone loads it. */
    atomic_store_explicit(&g->dev[d], dev, memory_order_release);
    *out = dev;
    return 0;
}

int xi_gdev_get(struct xi_gpu *g, int d, struct xi_gdev **out)
{
    if (d < 0 || d >= g->ndev)
        return xi_gpu_seterr(XO_EINVAL, "no device %d (%d visible)", d,
                             g->ndev);
    /* acquire: pairs with the release store in gdev_open_locked. */
    struct xi_gdev *dev = atomic_load_explicit(&g->dev[d],
                                               memory_order_acquire);
    if (dev != NULL) {
        *out = dev;
        return 0;
    }
    pthread_mutex_lock(&g->rt->pools_lock);
    int rc = gdev_open_locked(g, d, out);
    pthread_mutex_unlock(&g->rt->pools_lock);
    return rc;
}

struct xo_stream *xi_gpu_stream_of(xo_runtime_t *rt, int d)
{
    unsigned n = xi_pool_slots(rt);
    for (unsigned i = 0; i < n; i++) {
        struct xi_pool *p = xi_pool_at(rt, i);
        if (p == NULL || p->kind != XO_POOL_GPU || !xi_pool_running(p))
            continue;
        struct xo_stream *s = p->kind_data;
        if (s->dev->index == d)
            return s;
    }
    return NULL;
}

/* ---- a device's failure -------------------------------------------------- */

static void take_failure(struct xi_func *f, struct xi_worker *w)
{
    struct xo_stream *s = xi_container_of(f, struct xo_stream, fail_item);
    /* Moved to another worker (the pool was removed meanwhile): its
       drain took the failure in already. */
    if (w != s->pool->worker)
        return;
    xi_gstream_fail(s);
}

void xi_gdev_fail(struct xi_gdev *d, const char *msg)
{
    pthread_mutex_lock(&d->fail_lock);
    /* relaxed: fail_lock orders the setters. */
    bool first = atomic_load_explicit(&d->failed, memory_order_relaxed) == 0;
    if (first) {
        snprintf(d->fail_msg, sizeof(d->fail_msg), "device %d failed: %s",
                 d->index, msg != NULL && *msg ? msg : "unknown error");
        /* release: fail_msg is written before anyone sees the flag. */
        atomic_store_explicit(&d->failed, 1, memory_order_release);
    }
    pthread_mutex_unlock(&d->fail_lock);
    if (!first)
        return;
    /* Every pool of the device takes it in on its own thread, now rather
       than at its next poll (an idle one may be parked). */
    xo_runtime_t *rt = d->gpu->rt;
    unsigned n = xi_pool_slots(rt);
    for (unsigned i = 0; i < n; i++) {
        struct xi_pool *p = xi_pool_at(rt, i);
        if (p == NULL || p->kind != XO_POOL_GPU || !xi_pool_alive(p))
            continue;
        struct xo_stream *s = p->kind_data;
        /* acq_rel: one poster owns the embedded item. */
        if (s->dev != d ||
            atomic_exchange_explicit(&s->fail_posted, true,
                                     memory_order_acq_rel))
            continue;
        s->fail_item.fn = take_failure;
        xi_worker_post(p->worker, &s->fail_item);
    }
}

/* ---- the kind ------------------------------------------------------------ */

/* The thread's first item: the stream is made on it. */
static void open_stream(struct xi_func *f, struct xi_worker *w)
{
    (void)w;
    struct xo_stream *s = xi_container_of(f, struct xo_stream, open_item);
    int rc = s->gpu->be->stream_open(s);
    s->opened = rc == 0;
    s->open_rc = rc;
    if (rc != 0)
        snprintf(s->open_msg, sizeof(s->open_msg), "%s", xi_gpu_err());
    /* release: the outcome is written before the starter sees it. */
    atomic_store_explicit(&s->open_state, rc == 0 ? 1u : 2u,
                          memory_order_release);
    xi_futex_wake_all(&s->open_state);
}

static int gpu_start(struct xi_pool *p)
{
    struct xo_stream *s = p->kind_data;
    struct xi_worker *w = p->worker;
    w->hold = xi_gstream_hold;
    s->open_item.fn = open_stream;
    /* relaxed: the thread that stores the outcome does not exist yet;
       its creation orders this before it. */
    atomic_store_explicit(&s->open_state, 0, memory_order_relaxed);
    /* Queued before the thread starts: its first item. */
    xi_worker_post(w, &s->open_item);
    int rc = xi_worker_start(w);
    if (rc != 0)
        return rc;
    uint32_t st;
    /* acquire: pairs with open_stream's release store. */
    while ((st = atomic_load_explicit(&s->open_state,
                                      memory_order_acquire)) == 0)
        xi_futex_wait(&s->open_state, 0, 0);
    if (st == 1)
        return 0;
    xi_worker_join(w);
    return xi_gpu_seterr(s->open_rc, "%s", s->open_msg);
}

/* The thread's last item before its exit: what is pending completes (or
   fails, on a failed device), then the stream is closed on its thread. */
static void drain_stream(struct xi_func *f, struct xi_worker *w)
{
    (void)w;
    struct xo_stream *s = xi_container_of(f, struct xo_stream, drain_item);
    xi_gstream_drain(s);
    s->closed = true;
    if (s->opened)
        s->gpu->be->stream_close(s);
    s->opened = false;
}

static void gpu_stop(struct xi_pool *p)
{
    struct xo_stream *s = p->kind_data;
    s->drain_item.fn = drain_stream;
    xi_worker_post(p->worker, &s->drain_item);
    xi_worker_join(p->worker);
}

static bool gpu_poll(struct xi_pool *p)
{
    return xi_gstream_poll(p->kind_data);
}

static void gpu_wake(struct xi_pool *p)
{
    xi_worker_wake(p->worker);
}

static void gpu_info(const struct xi_pool *p, xo_pool_info_t *out)
{
    const struct xo_stream *s = p->kind_data;
    out->core = -1;
    out->pinned = false;
    out->core_shared = false;
    out->device = s->dev->index;
}

static const struct xi_pool_ops gpu_ops = {
    .name = "gpu",
    /* Its thread runs its own actors only: no other pool's movable actor
       (and none of its own moves). */
    .runs_movable = false,
    .start = gpu_start,
    .stop = gpu_stop,
    .poll = gpu_poll,
    .wake = gpu_wake,
    .info = gpu_info,
};

static void poll_fire(struct xi_timer *t, struct xi_worker *w);
static void poll_drop(struct xi_timer *t, xo_runtime_t *rt, int why);

static int gpu_make(xo_runtime_t *rt, struct xi_pool *p,
                    const xo_pool_spec_t *spec, const char **label)
{
    struct xi_gpu *g = NULL;
    int rc = gpu_get_locked(rt, &g);
    if (rc != 0)
        return rc;
    if (g->ndev == 0)
        return xi_gpu_seterr(XO_EGPU, "no GPU device is visible");
    int d = spec->device;
    if (d < -1 || d >= g->ndev)
        return xi_gpu_seterr(XO_EINVAL, "no device %d (%d visible)", d,
                             g->ndev);
    if (d == -1)
        d = (int)(g->next_dev++ % (unsigned)g->ndev);
    struct xi_gdev *dev = NULL;
    if ((rc = gdev_open_locked(g, d, &dev)) != 0)
        return rc;
    if (xi_gdev_failed(dev))
        return xi_gpu_seterr(XO_EGPU, "%s", dev->fail_msg);
    struct xo_stream *s = xi_mem_zalloc(&rt->mem, sizeof(*s));
    if (s == NULL)
        return XO_ENOMEM;
    s->rt = rt;
    s->gpu = g;
    s->dev = dev;
    s->pool = p;
    snprintf(s->label, sizeof(s->label), "gpu,gpu:%d", d);
    s->poll.fire = poll_fire;
    s->poll.drop = poll_drop;
    p->kind_data = s;
    *label = s->label;
    return 0;
}

static void gpu_unmake(xo_runtime_t *rt, struct xi_pool *p)
{
    struct xo_stream *s = p->kind_data;
    p->kind_data = NULL;
    xi_mem_free(&rt->mem, s, sizeof(*s));
}

static int gpu_start_specs(xo_runtime_t *rt, xo_pool_spec_t *specs,
                           unsigned max, unsigned *n)
{
    *n = 0;
    struct xi_gpu *g = NULL;
    int rc = gpu_get_locked(rt, &g);
    if (rc != 0)
        return rc;
    int devices = rt->cfg.gpu_devices == XO_GPU_ALL ? g->ndev
                                                    : rt->cfg.gpu_devices;
    if (devices > g->ndev)
        return XO_EINVAL;
    if (devices == 0)
        return xi_gpu_seterr(XO_EGPU, "no GPU device is visible");
    unsigned want = (unsigned)devices * rt->cfg.gpu_streams;
    if (want > max)
        return XO_EINVAL;
    for (int d = 0; d < devices; d++)
        for (unsigned k = 0; k < rt->cfg.gpu_streams; k++) {
            xo_pool_spec_init(&specs[*n]);
            specs[*n].kind = XO_POOL_GPU;
            specs[*n].device = d;
            (*n)++;
        }
    return 0;
}

static void gpu_free(xo_runtime_t *rt)
{
    /* relaxed: every thread that used it has been joined. */
    struct xi_gpu *g = atomic_load_explicit(&rt->gpu, memory_order_relaxed);
    if (g == NULL)
        return;
    xi_gpu_pinned_flush(g);
    for (int d = 0; d < XO_GPU_DEVICES_MAX; d++) {
        /* relaxed: as g, above. */
        struct xi_gdev *dev = atomic_load_explicit(&g->dev[d],
                                                   memory_order_relaxed);
        if (dev == NULL)
            continue;
        g->be->dev_close(dev);
        pthread_mutex_destroy(&dev->fail_lock);
        xi_mem_free(&rt->mem, dev, sizeof(*dev));
    }
    pthread_mutex_destroy(&g->pin_lock);
    /* relaxed: nobody is left to load it. */
    atomic_store_explicit(&rt->gpu, NULL, memory_order_relaxed);
    xi_mem_free(&rt->mem, g, sizeof(*g));
}

static const struct xi_pool_kind gpu_kind = {
    .ops = &gpu_ops,
    .make = gpu_make,
    .unmake = gpu_unmake,
    .start_specs = gpu_start_specs,
    .free = gpu_free,
};

const struct xi_pool_kind *xi_gpu_pool_kind(void)
{
    return &gpu_kind;
}

/* ---- the poll timer -------------------------------------------------------- */

/* Between turns, or waking the parked thread: poll, and again later while
   something is pending. Handed to another worker (the pool was removed),
   it does nothing. */
static void poll_fire(struct xi_timer *t, struct xi_worker *w)
{
    struct xo_stream *s = xi_container_of(t, struct xo_stream, poll);
    if (w != s->pool->worker)
        return;
    s->poll_armed = false;
    if (s->closed)
        return;
    (void)xi_gstream_poll(s);
    xi_gstream_arm(s);
}

/* Dropped: the runtime stops (nothing is pending by then), or the heap
   could not take it: the thread then polls instead of sleeping. */
static void poll_drop(struct xi_timer *t, xo_runtime_t *rt, int why)
{
    (void)rt;
    struct xo_stream *s = xi_container_of(t, struct xo_stream, poll);
    s->poll_armed = false;
    if (why == XO_ENOMEM)
        s->poll_lost = true;
}
