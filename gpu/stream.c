/*
 * stream.c -- a GPU pool's stream (design in gpu.h): points and their
 * FIFO, polling, held answers, a device's failure taken in, draining, and
 * the stream operations a handler calls.
 *
 * Polling is the stream thread's: it asks the backend about the oldest
 * pending point only, completes what is reached in order, and never waits
 * for the device. While points are pending a timer by callback brings it
 * back: every 20 us at first, backing off to 500 us while nothing
 * completes (a long kernel), so a parked stream thread wakes to poll
 * without the device having to call it (cudaLaunchHostFunc stays off the
 * path: its callbacks may be serialised across streams). While it spins
 * idle it polls too (worker.c asks the kind every 64 spins), so a point
 * that completes soon after the work was enqueued is seen within
 * microseconds.
 *
 * A held answer is one point each: the point is recorded when the answer
 * is given, after everything the handler enqueued before it, and the
 * answer completes when the point is reached -- or, if the device fails
 * first, with XO_EGPU and the device's message.
 */
#include "gpu/gpu.h"

#include <string.h>
#include <time.h>

#define POLL_MIN_NS 20000u
#define POLL_MAX_NS 500000u

/* ---- points ------------------------------------------------------------ */

struct xi_gpoint *xi_gpoint_ref(struct xi_gpoint *p)
{
    if (p != NULL)
        /* relaxed: taken while another reference keeps p alive. */
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void xi_gpoint_unref(xo_runtime_t *rt, struct xi_gpoint *p)
{
    if (p == NULL)
        return;
    /* acq_rel: the last holder sees every write made under the others. */
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (p->ev != NULL)
        p->stream->gpu->be->point_free(p);
    if (p->f != NULL)
        xo_future_release(p->f);
    xi_mem_free_str(&rt->mem, p->error);
    xi_mem_free(&rt->mem, p, sizeof(*p));
}

int xi_gpoint_new(xo_runtime_t *rt, struct xo_stream *s, bool future,
                  struct xi_gpoint **out)
{
    struct xi_gpoint *p = xi_mem_zalloc(&rt->mem, sizeof(*p));
    if (p == NULL)
        return xi_gpu_seterr(XO_ENOMEM, "out of memory for a stream point");
    if (future && xi_future_new(rt, 0, 1, &p->f) != 0) {
        xi_mem_free(&rt->mem, p, sizeof(*p));
        return xi_gpu_seterr(XO_ENOMEM, "out of memory for a stream point");
    }
    atomic_init(&p->refs, 1);
    atomic_init(&p->state, XI_GP_OPEN);
    p->stream = s;
    *out = p;
    return 0;
}

int xi_gpoint_record_made(struct xo_stream *s, struct xi_gpoint *p)
{
    int rc = xi_gstream_usable(s);
    if (rc == 0)
        rc = s->gpu->be->record(s, p);
    if (rc != 0)
        return rc;
    xi_gpoint_ref(p); /* the FIFO's */
    if (s->tail != NULL)
        s->tail->next = p;
    else
        s->head = p;
    s->tail = p;
    s->pending++;
    xi_gstream_arm(s);
    return 0;
}

int xi_gpoint_record(struct xo_stream *s, bool future,
                     struct xi_gpoint **out)
{
    struct xi_gpoint *p = NULL;
    int rc = xi_gpoint_new(s->rt, s, future, &p);
    if (rc != 0)
        return rc;
    rc = xi_gpoint_record_made(s, p);
    xi_gpoint_unref(s->rt, p); /* the FIFO holds it, or nobody */
    if (rc == 0)
        *out = p;
    return rc;
}

void xi_gpoint_then(struct xi_gpoint *p, struct xi_gcb *cb)
{
    cb->next = NULL;
    if (p->cbs_last != NULL)
        p->cbs_last->next = cb;
    else
        p->cbs = cb;
    p->cbs_last = cb;
}

void xi_gpoint_complete(xo_runtime_t *rt, struct xi_gpoint *p, int status,
                        const char *error)
{
    if (status < 0) {
        p->status = status;
        p->error = xi_mem_strdup(&rt->mem, error != NULL ? error : "");
        /* release: error is written before the state says FAILED. */
        atomic_store_explicit(&p->state, XI_GP_FAILED, memory_order_release);
    } else {
        /* release: what the stream did is before the state says so. */
        atomic_store_explicit(&p->state, XI_GP_REACHED,
                              memory_order_release);
    }
    const char *why = status < 0 ? (p->error ? p->error : error) : NULL;
    struct xi_held *h = p->held;
    p->held = p->held_last = NULL;
    while (h != NULL) {
        struct xi_held *next = h->next;
        xi_held_release(rt, h, status, why);
        h = next;
    }
    struct xi_gcb *cb = p->cbs;
    p->cbs = p->cbs_last = NULL;
    while (cb != NULL) {
        struct xi_gcb *next = cb->next;
        cb->fn(cb, status, why);
        cb = next;
    }
    if (p->f != NULL)
        xi_future_complete_item(p->f, 0, status, why, NULL, false);
}

int xi_gpoint_wait(xo_runtime_t *rt, struct xi_gpoint *p)
{
    if (p == NULL)
        return 0;
    if (xi_gpoint_state(p) == XI_GP_OPEN) {
        if (p->f != NULL) {
            int rc = xi_future_wait_internal(p->f, -1);
            if (rc != 0)
                return xi_gpu_seterr(rc, "waiting for a stream: %s",
                                     xo_strerror(rc));
        } else {
            /* No future (made for stream waiters only): look again and
               again, briefly asleep in between. */
            (void)rt;
            while (xi_gpoint_state(p) == XI_GP_OPEN) {
                struct timespec ts = { 0, 20000 };
                nanosleep(&ts, NULL);
            }
        }
    }
    if (xi_gpoint_state(p) == XI_GP_FAILED)
        return xi_gpu_seterr(p->status, "%s", p->error ? p->error : "");
    return 0;
}

/* ---- the stream thread --------------------------------------------------- */

int xi_gstream_usable(struct xo_stream *s)
{
    if (s == NULL || xi_current_worker() != s->pool->worker)
        return xi_gpu_seterr(XO_EINVAL,
                             "a stream is used on its own stream thread only");
    if (s->failed || xi_gdev_failed(s->dev))
        return xi_gpu_seterr(XO_EGPU, "%s", s->dev->fail_msg);
    if (s->closed || !s->opened)
        return xi_gpu_seterr(XO_EGPU, "the stream is closed");
    return 0;
}

void xi_gstream_arm(struct xo_stream *s)
{
    if (s->poll_armed || s->poll_lost || s->closed ||
        (s->head == NULL && !s->work))
        return;
    if (s->poll_ns == 0)
        s->poll_ns = POLL_MIN_NS;
    s->poll.deadline = xi_now_ns() + s->poll_ns;
    s->poll_armed = true;
    /* Our own thread: filed at once (a lost filing calls poll_drop). */
    xi_worker_arm(s->pool->worker, &s->poll);
    /* The next one waits longer, unless something completes before. */
    s->poll_ns = s->poll_ns * 2 < POLL_MAX_NS ? s->poll_ns * 2 : POLL_MAX_NS;
}

/* Pop the oldest point: the FIFO's reference comes with it. */
static struct xi_gpoint *pop_head(struct xo_stream *s)
{
    struct xi_gpoint *p = s->head;
    s->head = p->next;
    if (s->head == NULL)
        s->tail = NULL;
    p->next = NULL;
    s->pending--;
    return p;
}

bool xi_gstream_poll(struct xo_stream *s)
{
    if (s->failed || !s->opened)
        return false;
    if (xi_gdev_failed(s->dev)) {
        xi_gstream_fail(s);
        return true;
    }
    const struct xi_gbackend *be = s->gpu->be;
    bool any = false;
    if (be->progress != NULL && s->work) {
        any = be->progress(s);
        if (xi_gdev_failed(s->dev)) {
            xi_gstream_fail(s);
            return true;
        }
    }
    while (s->head != NULL) {
        int r = be->query(s, s->head);
        if (r == XI_GQ_PENDING)
            break;
        if (r < 0) {
            xi_gdev_fail(s->dev, xi_gpu_err());
            xi_gstream_fail(s);
            return true;
        }
        struct xi_gpoint *p = pop_head(s);
        xi_gpoint_complete(s->rt, p, 0, NULL);
        xi_gpoint_unref(s->rt, p);
        any = true;
    }
    if (any)
        s->poll_ns = POLL_MIN_NS;
    /* Still pending: come back (the thread may park meanwhile). Without a
       timer (the heap could not take one), keep the thread awake. */
    xi_gstream_arm(s);
    return any || (s->poll_lost && (s->head != NULL || s->work));
}

void xi_gstream_hold(struct xi_worker *w, struct xi_held *h)
{
    struct xo_stream *s = w->pool->kind_data;
    struct xi_gpoint *p = NULL;
    int rc = xi_gpoint_record(s, false, &p);
    if (rc != 0) {
        xi_held_release(s->rt, h, rc, xi_gpu_err());
        return;
    }
    h->next = NULL;
    if (p->held_last != NULL)
        p->held_last->next = h;
    else
        p->held = h;
    p->held_last = h;
}

/* ---- a failed device ------------------------------------------------------- */

/* End every live actor of s's pool, for the device's failure. */
static void end_actors(struct xo_stream *s, const char *why)
{
    xo_runtime_t *rt = s->rt;
    unsigned index = s->pool->index;
    /* acquire: pairs with the release of count in xi_slots_take. */
    uint32_t n = atomic_load_explicit(&rt->slots.count, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++) {
        xi_rcu_lock();
        struct xi_cell *c = xi_slot_live_cell(&rt->slots, i);
        if (c != NULL && c->pool == index && !xi_rt_closing(rt))
            (void)xi_recovery_end(rt, c, XO_EXIT_DEVICE_FAILED, XO_EGPU,
                                  why);
        xi_rcu_unlock(&rt->rcu_sync);
    }
}

void xi_gstream_fail(struct xo_stream *s)
{
    if (s->failed)
        return;
    s->failed = true;
    const char *why = s->dev->fail_msg;
    xo_runtime_t *rt = s->rt;
    /* No new actors here: placement and publication skip it. */
    pthread_mutex_lock(&rt->pools_lock);
    /* relaxed: state is only written under pools_lock, held here. */
    if (atomic_load_explicit(&s->pool->state, memory_order_relaxed) ==
        XO_POOL_RUNNING)
        /* release: pairs with the acquire loads of xi_pool_running. */
        atomic_store_explicit(&s->pool->state, XO_POOL_FAILED,
                              memory_order_release);
    pthread_mutex_unlock(&rt->pools_lock);
    /* Every pending point fails: its answers reach their callers with the
       device's message. */
    s->work = false;
    while (s->head != NULL) {
        struct xi_gpoint *p = pop_head(s);
        xi_gpoint_complete(rt, p, XO_EGPU, why);
        xi_gpoint_unref(rt, p);
    }
    /* Spawns that chose the pool before it failed are published by now;
       then its actors end, each after what it had accepted. */
    if (!xi_rt_closing(rt)) {
        xi_grace_wait(rt);
        end_actors(s, why);
    }
}

void xi_gstream_drain(struct xo_stream *s)
{
    while (s->opened && !s->failed && (s->head != NULL || s->work)) {
        if (!xi_gstream_poll(s)) {
            struct timespec ts = { 0, 20000 };
            nanosleep(&ts, NULL);
        }
    }
    /* A failed stream completed its points with the failure already. */
}

/* ---- the stream operations ------------------------------------------------- */

xo_stream_t *xo_ctx_stream(const xo_ctx_t *ctx)
{
    if (ctx == NULL || ctx->rt == NULL)
        return NULL;
    struct xo_stream *s = xi_gpu_current(ctx->rt);
    return s != NULL && s->pool->index == ctx->pool ? s : NULL;
}

int xo_stream_device(const xo_stream_t *s)
{
    return s != NULL ? s->dev->index : -1;
}

void *xo_stream_cuda(const xo_stream_t *s)
{
    return s != NULL && s->gpu->be->kind == XO_GPU_CUDA ? s->be : NULL;
}

int xo_stream_launch(xo_stream_t *s, const xo_kernel_t *k, xo_dim3_t grid,
                     xo_dim3_t block, size_t shared_bytes, void **args)
{
    if (k == NULL || k->nargs > XO_KERNEL_ARGS_MAX ||
        (args == NULL && k->nargs > 0))
        return xi_gpu_ctx_err(xi_gpu_seterr(XO_EINVAL,
                                            "a kernel launch's arguments"));
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || block.x == 0 ||
        block.y == 0 || block.z == 0)
        return xi_gpu_ctx_err(xi_gpu_seterr(XO_EINVAL,
                                            "%s: an empty grid or block",
                                            k->name ? k->name : "kernel"));
    int rc = xi_gstream_usable(s);
    if (rc == 0)
        rc = s->gpu->be->launch(s, k, grid, block, shared_bytes, args);
    return xi_gpu_ctx_err(rc);
}

int xo_stream_copy(xo_stream_t *s, void *dst, const void *src, size_t size)
{
    if (dst == NULL || src == NULL)
        return xi_gpu_ctx_err(xi_gpu_seterr(XO_EINVAL,
                                            "a copy from or to NULL"));
    int rc = xi_gstream_usable(s);
    if (rc == 0 && size > 0)
        rc = s->gpu->be->copy(s, dst, src, size);
    return xi_gpu_ctx_err(rc);
}

int xo_stream_fill(xo_stream_t *s, void *dst, int byte, size_t size)
{
    if (dst == NULL)
        return xi_gpu_ctx_err(xi_gpu_seterr(XO_EINVAL, "a fill of NULL"));
    int rc = xi_gstream_usable(s);
    if (rc == 0 && size > 0)
        rc = s->gpu->be->fill(s, dst, byte, size);
    return xi_gpu_ctx_err(rc);
}
