/*
 * message.c -- envelopes and the send path.
 *
 * A send is: allocate the envelope (jemalloc's thread cache), fill it, then
 * inside one RCU read-side section: check the runtime is open, resolve the
 * ref (slot -> cell, generation compare), push onto the mailbox (one atomic
 * exchange). If that exchange took the mailbox's idle mark, this sender
 * schedules the actor (one more exchange, on the worker's run queue). No
 * lock, no system call unless the worker is parked.
 *
 * A message to a stateless actor skips the mailbox: it goes straight to a
 * worker's run queue as a task, so several workers may run the actor's
 * handler at once. The actor's in-flight count keeps its cell alive until
 * the last task ended (see actor.c).
 *
 * Ownership: an envelope belongs to its creator until a send succeeds, then
 * to the runtime, which frees it after the handler returned.
 */
#include "runtime.h"

#include <string.h>

/* Inlined into the send functions of this file (the one-line envelope's
   size test made it too big for the compiler to do so on its own, and the
   call cost counting 7 %). */
static inline __attribute__((always_inline)) int
envelope_new(xo_runtime_t *rt, uint32_t tag, size_t size,
             struct xi_envelope **out)
{
    if (size > XO_MSG_MAX_SIZE || tag >= XO_TAG_RESERVED)
        return XO_EINVAL;
    size_t total = sizeof(struct xi_envelope) + size +
                   (size <= XI_ENV_SMALL ? 0 : 8);
    struct xi_envelope *env = xi_mem_alloc(&rt->mem, total);
    if (env == NULL)
        return XO_ENOMEM;
    env->item.kind = XI_K_TELL;
    env->item.size = (uint32_t)total;
    env->item.flags = 0;
    env->msg.tag = tag;
    env->msg.size = (uint32_t)size;
    env->msg.data = xi_env_payload(env, size);
    env->msg.sender = XO_REF_NONE;
    env->msg.request = NULL;
    *out = env;
    return 0;
}

int xi_envelope_new(xo_runtime_t *rt, uint32_t tag, size_t size,
                    struct xi_envelope **out)
{
    return envelope_new(rt, tag, size, out);
}

struct wrap_tail {
    void (*free_fn)(void *, void *);
    void *free_arg;
};

/* A wrapped envelope's free callback, kept where its payload would be
   (msg.data points at the caller's buffer instead). */
static struct wrap_tail *wrap_tail_of(struct xi_envelope *env)
{
    return (struct wrap_tail *)xi_env_payload(env, sizeof(struct wrap_tail));
}

/* A tailed envelope's: after its payload, 8-aligned. */
static struct wrap_tail *tailed_tail_of(struct xi_envelope *env)
{
    size_t at = ((size_t)env->msg.size + 7u) & ~(size_t)7u;
    return (struct wrap_tail *)((unsigned char *)env->msg.data + at);
}

int xi_envelope_new_tailed(xo_runtime_t *rt, uint32_t tag, size_t size,
                           size_t extra, void (*free_fn)(void *, void *),
                           struct xi_envelope **out, void **extra_out)
{
    if (size > XO_MSG_MAX_SIZE - 4096u || extra > 4096u)
        return XO_EINVAL;
    size_t room = ((size + 7u) & ~(size_t)7u) + sizeof(struct wrap_tail) +
                  extra;
    struct xi_envelope *env;
    /* Over XI_ENV_SMALL always: the payload is the 16-aligned one. */
    int rc = envelope_new(rt, tag, room, &env);
    if (rc != 0)
        return rc;
    env->msg.size = (uint32_t)size;
    env->item.flags |= XI_ENV_WRAPPED | XI_ENV_TAILED;
    struct wrap_tail *t = tailed_tail_of(env);
    t->free_fn = free_fn;
    t->free_arg = t + 1;
    *extra_out = t + 1;
    *out = env;
    return 0;
}

void *xi_envelope_tail(struct xi_envelope *env,
                       void (*free_fn)(void *, void *))
{
    if ((env->item.flags & (XI_ENV_WRAPPED | XI_ENV_TAILED)) !=
        (XI_ENV_WRAPPED | XI_ENV_TAILED))
        return NULL;
    struct wrap_tail *t = tailed_tail_of(env);
    return t->free_fn == free_fn ? t->free_arg : NULL;
}

/* Out of line: the common envelope is not wrapped, and its free tests
   one bit for both kinds. */
static __attribute__((noinline)) void unwrap(struct xi_envelope *env)
{
    struct wrap_tail *t = env->item.flags & XI_ENV_TAILED
                              ? tailed_tail_of(env)
                              : wrap_tail_of(env);
    if (t->free_fn != NULL)
        t->free_fn(env->msg.data, t->free_arg);
}

void xi_envelope_free(xo_runtime_t *rt, struct xi_envelope *env)
{
    if (env->item.kind == XI_K_CALL && env->msg.request != NULL)
        xi_future_unref(xi_request_future(env->msg.request));
    if (env->item.flags & XI_ENV_WRAPPED)
        unwrap(env);
    xi_mem_free(&rt->mem, env, env->item.size);
}

void xi_envelope_chain_free(xo_runtime_t *rt, struct xi_envelope *first,
                            struct xi_envelope *last)
{
    struct xi_envelope *e = first;
    while (e != NULL) {
        struct xi_envelope *next = xi_chain_next(e, last);
        xi_envelope_free(rt, e);
        e = next;
    }
}

static xo_ref_t sender_in(struct xo_ctx *ctx, xo_runtime_t *rt)
{
    if (ctx == NULL || ctx->rt != rt || ctx->cell == NULL)
        return XO_REF_NONE;
    return xi_cell_ref(ctx->cell);
}

xo_ref_t xi_current_sender(xo_runtime_t *rt)
{
    return sender_in(xi_current_ctx(), rt);
}

/* A bounded mailbox takes count more messages, or refuses them all. */
static bool reserve_room(struct xi_cell *c, uint32_t count)
{
    if (c->capacity == 0)
        return true;
    if (count > c->capacity) /* can never fit: refuse without touching */
        return false;
    /* relaxed: see struct xi_cell. */
    uint32_t before = atomic_fetch_add_explicit(&c->queued, count,
                                                memory_order_relaxed);
    if (before + count <= c->capacity)
        return true;
    atomic_fetch_sub_explicit(&c->queued, count, memory_order_relaxed);
    return false;
}

static uint32_t chain_length(struct xi_envelope *first,
                             struct xi_envelope *last)
{
    uint32_t n = 1;
    for (struct xi_envelope *e = first; e != last; n++)
        e = xi_chain_next(e, last);
    return n;
}

/* The mailbox's count of envelopes pushed (stats.h): a relaxed load and
   store on the line the push's exchange takes anyway. */
static inline void count_sent(struct xi_cell *c, struct xi_envelope *first,
                              struct xi_envelope *last)
{
    if (!XI_STATS)
        return;
    uint64_t n = first == last ? 1 : chain_length(first, last);
    atomic_store_explicit(
        &c->sent, atomic_load_explicit(&c->sent, memory_order_relaxed) + n,
        memory_order_relaxed);
}

/* The trace's sends (trace.h): each envelope, before the push makes it
   the consumer's. */
static inline void trace_sends(xo_runtime_t *rt, xo_ref_t to,
                               struct xi_envelope *first,
                               struct xi_envelope *last)
{
    /* relaxed: the hook's flag (trace.h). */
    if (__builtin_expect(atomic_load_explicit(&rt->trace_on,
                                              memory_order_relaxed), 0))
        for (struct xi_envelope *e = first; e != NULL;
             e = xi_chain_next(e, last))
            xi_trace_record(rt, XI_TR_SEND, (uint64_t)(uintptr_t)e, to.id,
                            e->msg.tag);
}

/* Stateless target: each envelope becomes a task on some worker. */
static void push_tasks(struct xi_cell *c, struct xi_envelope *first,
                       struct xi_envelope *last)
{
    struct xi_envelope *e = first;
    while (e != NULL) {
        struct xi_envelope *next = xi_chain_next(e, last);
        xi_task_set_cell(e, c);
        /* relaxed: the count only has to be exact, not ordered; the cell
           stays alive because we are inside the RCU section. */
        atomic_fetch_add_explicit(&c->inflight, 1, memory_order_relaxed);
        xi_runq_push(xi_task_worker(c->rt), &e->item);
        e = next;
    }
}

/* A chain for another node: the route's, if a layer set one. */
static int route(xo_runtime_t *rt, xo_ref_t to, struct xi_envelope *first,
                 struct xi_envelope *last)
{
    /* acquire: pairs with the release store of the layer that set it
       (route_arg was written before). */
    xi_route_fn fn = atomic_load_explicit(&rt->route, memory_order_acquire);
    return fn != NULL ? fn(rt, to, first, last, rt->route_arg)
                      : XO_ENOTEXIST;
}

/* The body of both: inlined into xi_enqueue, where first == last is
   known and a one-envelope send counts itself without walking a chain. */
static inline __attribute__((always_inline)) int
enqueue(xo_ref_t to, struct xi_envelope *first, struct xi_envelope *last)
{
    xo_runtime_t *rt = to.rt;
    int rc = 0;
    struct xi_reader *sect = xi_section_enter(&rt->rcu_sync);
    struct xi_cell *c = NULL;
    if (xi_rt_closing(rt)) {
        rc = XO_ECLOSED;
    } else {
        enum xi_where where = xi_ref_where(&rt->slots, to.id, &c);
        if (where == XI_REF_REMOTE)
            rc = route(rt, to, first, last);
        else if (where == XI_REF_GONE)
            rc = XO_ENOTEXIST;
        else if (c->stateless && first->item.kind <= XI_K_CALL) {
            trace_sends(rt, to, first, last);
            push_tasks(c, first, last);
        }
        else if (c->capacity != 0 && first->item.kind <= XI_K_CALL &&
                 !(first->item.flags & XI_ENV_RESERVED) &&
                 !reserve_room(c, chain_length(first, last)))
            rc = XO_EFULL;
        else {
            trace_sends(rt, to, first, last);
            count_sent(c, first, last);
            if (xi_mpscq_push_chain(&c->mbox, &first->item.node,
                                    &last->item.node))
                xi_schedule(c);
        }
    }
    xi_section_leave(&rt->rcu_sync, sect);
    return rc;
}

int xi_enqueue_chain(xo_ref_t to, struct xi_envelope *first,
                     struct xi_envelope *last)
{
    return enqueue(to, first, last);
}

int xi_enqueue(xo_ref_t to, struct xi_envelope *env)
{
    return enqueue(to, env, env);
}

int xo_tell(xo_ref_t to, uint32_t tag, const void *data, size_t size)
{
    if (to.rt == NULL || (data == NULL && size > 0))
        return XO_EINVAL;
    struct xi_envelope *env;
    int rc = envelope_new(to.rt, tag, size, &env);
    if (rc != 0)
        return rc;
    if (size > 0)
        memcpy(env->msg.data, data, size);
    struct xo_ctx *ctx = xi_current_ctx();
    env->msg.sender = sender_in(ctx, to.rt);
    rc = xi_enqueue(to, env);
    if (rc != 0) {
        xi_envelope_free(to.rt, env);
        return rc;
    }
    xi_count_sends(ctx, 1);
    return 0;
}

int xo_tell_batch(xo_ref_t to, const xo_batch_item_t *items, size_t count)
{
    if (to.rt == NULL || (items == NULL && count > 0))
        return XO_EINVAL;
    if (count == 0)
        return 0;
    struct xo_ctx *ctx = xi_current_ctx();
    xo_ref_t sender = sender_in(ctx, to.rt);
    struct xi_chain ch = { NULL, NULL };
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        struct xi_envelope *env;
        if (items[i].data == NULL && items[i].size > 0)
            rc = XO_EINVAL;
        else
            rc = envelope_new(to.rt, items[i].tag, items[i].size, &env);
        if (rc != 0)
            break;
        if (items[i].size > 0)
            memcpy(env->msg.data, items[i].data, items[i].size);
        env->msg.sender = sender;
        xi_chain_append(&ch, env);
    }
    if (rc == 0)
        rc = xi_enqueue_chain(to, ch.first, ch.last);
    if (rc != 0) {
        if (ch.first != NULL)
            xi_envelope_chain_free(to.rt, ch.first, ch.last);
        return rc;
    }
    xi_count_sends(ctx, count);
    return 0;
}

/* A delayed tell: a timer that, when due, pushes its envelope like any
   send. */
struct delayed_tell {
    struct xi_timer timer;
    xo_ref_t to;
    struct xi_envelope *env;
};

static void delayed_free(xo_runtime_t *rt, struct delayed_tell *d)
{
    if (d->env != NULL)
        xi_envelope_free(rt, d->env);
    xi_mem_free(&rt->mem, d, sizeof(*d));
}

/* Gone target, or the runtime stopping: dropped (docs/errors.md). */
static void delayed_fire(struct xi_timer *t, struct xi_worker *w)
{
    struct delayed_tell *d = xi_container_of(t, struct delayed_tell, timer);
    if (xi_enqueue(d->to, d->env) == 0)
        d->env = NULL; /* delivered: no longer ours */
    delayed_free(w->rt, d);
}

/* It was accepted, so a drop for want of memory is a failure to report;
   one at stop is the documented drop. */
static void delayed_drop(struct xi_timer *t, xo_runtime_t *rt, int why)
{
    struct delayed_tell *d = xi_container_of(t, struct delayed_tell, timer);
    if (why == XO_ENOMEM)
        xi_actor_failed(rt, NULL, d->to, d->env->msg.tag, XO_ENOMEM, NULL);
    delayed_free(rt, d);
}

/* The timer lives on the target's home worker, handed over inside the
   section so that a pool being removed cannot miss it (another node's
   actor: on the main pool). A bounded target counts the message from now
   on: its place is taken when it is accepted, so it cannot be refused when
   its time comes. */
static int arm_delayed(xo_runtime_t *rt, struct delayed_tell *d)
{
    int rc = 0;
    xi_rcu_lock();
    struct xi_cell *c = NULL;
    enum xi_where where = XI_REF_GONE;
    if (xi_rt_closing(rt))
        rc = XO_ECLOSED;
    else if ((where = xi_ref_where(&rt->slots, d->to.id, &c)) == XI_REF_GONE)
        rc = XO_ENOTEXIST;
    else if (c != NULL && c->capacity != 0 && !reserve_room(c, 1))
        rc = XO_EFULL;
    if (rc == 0) {
        if (c != NULL && c->capacity != 0)
            d->env->item.flags |= XI_ENV_RESERVED;
        xi_worker_arm(xi_pool_worker(rt, c != NULL ? c->pool : 0),
                      &d->timer);
    }
    xi_rcu_unlock(&rt->rcu_sync);
    return rc;
}

int xo_tell_after(xo_ref_t to, uint64_t delay_ns, uint32_t tag,
                  const void *data, size_t size)
{
    if (to.rt == NULL || (data == NULL && size > 0))
        return XO_EINVAL;
    xo_runtime_t *rt = to.rt;
    struct xi_envelope *env;
    int rc = xi_envelope_new(rt, tag, size, &env);
    if (rc != 0)
        return rc;
    if (size > 0)
        memcpy(env->msg.data, data, size);
    env->msg.sender = xi_current_sender(rt);
    struct delayed_tell *d = xi_mem_zalloc(&rt->mem, sizeof(*d));
    if (d == NULL) {
        xi_envelope_free(rt, env);
        return XO_ENOMEM;
    }
    d->timer.deadline = xi_deadline_after(delay_ns);
    d->timer.fire = delayed_fire;
    d->timer.drop = delayed_drop;
    d->to = to;
    d->env = env;
    rc = arm_delayed(rt, d);
    if (rc != 0)
        delayed_free(rt, d);
    return rc;
}

int xo_msg_alloc(xo_runtime_t *rt, uint32_t tag, size_t size, xo_msg_t **out)
{
    if (rt == NULL || out == NULL)
        return XO_EINVAL;
    struct xi_envelope *env;
    int rc = xi_envelope_new(rt, tag, size, &env);
    if (rc == 0)
        *out = &env->msg;
    return rc;
}

int xo_msg_wrap(xo_runtime_t *rt, uint32_t tag, void *buf, size_t size,
                void (*free_fn)(void *, void *), void *free_arg,
                xo_msg_t **out)
{
    if (rt == NULL || out == NULL || (buf == NULL && size > 0) ||
        size > XO_MSG_MAX_SIZE || tag >= XO_TAG_RESERVED)
        return XO_EINVAL;
    struct xi_envelope *env;
    int rc = xi_envelope_new(rt, tag, sizeof(struct wrap_tail), &env);
    if (rc != 0)
        return rc;
    struct wrap_tail *t = wrap_tail_of(env);
    t->free_fn = free_fn;
    t->free_arg = free_arg;
    env->item.flags |= XI_ENV_WRAPPED;
    env->msg.data = buf;
    env->msg.size = (uint32_t)size;
    *out = &env->msg;
    return 0;
}

int xo_send(xo_ref_t to, xo_msg_t *msg)
{
    if (to.rt == NULL || msg == NULL)
        return XO_EINVAL;
    struct xi_envelope *env = xi_container_of(msg, struct xi_envelope, msg);
    if (env->item.kind != XI_K_TELL)
        return XO_EINVAL;
    struct xo_ctx *ctx = xi_current_ctx();
    env->msg.sender = sender_in(ctx, to.rt);
    int rc = xi_enqueue(to, env);
    if (rc == 0)
        xi_count_sends(ctx, 1);
    return rc;
}

void xo_msg_free(xo_runtime_t *rt, xo_msg_t *msg)
{
    if (rt == NULL || msg == NULL)
        return;
    xi_envelope_free(rt, xi_container_of(msg, struct xi_envelope, msg));
}
