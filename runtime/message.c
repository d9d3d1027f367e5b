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
 * Ownership: an envelope belongs to its creator until a send succeeds, then
 * to the runtime, which frees it after the handler returned.
 */
#include "runtime.h"

#include <string.h>

static int envelope_new(xo_runtime_t *rt, uint32_t tag, size_t size,
                        struct xo_envelope **out)
{
    if (size > XO_MSG_MAX_SIZE)
        return XO_EINVAL;
    size_t total = sizeof(struct xo_envelope) + size;
    struct xo_envelope *env = xo_mem_alloc(&rt->mem, total);
    if (env == NULL)
        return XO_ENOMEM;
    env->alloc_size = (uint32_t)total;
    env->flags = 0;
    env->msg.tag = tag;
    env->msg.size = (uint32_t)size;
    env->msg.data = env->payload;
    env->msg.sender = XO_REF_NONE;
    *out = env;
    return 0;
}

struct wrap_tail {
    void (*free_fn)(void *, void *);
    void *free_arg;
};

void xo_envelope_free(xo_runtime_t *rt, struct xo_envelope *env)
{
    if (env->flags & XO_ENV_WRAPPED) {
        struct wrap_tail *t = (struct wrap_tail *)env->payload;
        if (t->free_fn != NULL)
            t->free_fn(env->msg.data, t->free_arg);
    }
    xo_mem_free(&rt->mem, env, env->alloc_size);
}

xo_ref_t xo_current_sender(xo_runtime_t *rt)
{
    struct xo_ctx *ctx = xo_current_ctx();
    if (ctx == NULL || ctx->rt != rt || ctx->cell == NULL)
        return XO_REF_NONE;
    return xo_cell_ref(ctx->cell);
}

/* Hand env to the actor behind `to`; on error the caller keeps env. */
static int enqueue(xo_ref_t to, struct xo_envelope *env)
{
    xo_runtime_t *rt = to.rt;
    int rc = 0;
    xo_rcu_lock();
    if (xo_rt_closing(rt)) {
        rc = XO_ECLOSED;
    } else {
        struct xo_cell *c = xo_resolve(rt, to.id);
        if (c == NULL)
            rc = XO_ENOTEXIST;
        else if (xo_mpscq_push(&c->mbox, &env->node))
            xo_schedule(c);
    }
    xo_rcu_unlock(&rt->rcu_sync);
    return rc;
}

int xo_tell(xo_ref_t to, uint32_t tag, const void *data, size_t size)
{
    if (to.rt == NULL || (data == NULL && size > 0))
        return XO_EINVAL;
    struct xo_envelope *env;
    int rc = envelope_new(to.rt, tag, size, &env);
    if (rc != 0)
        return rc;
    if (size > 0)
        memcpy(env->payload, data, size);
    env->msg.sender = xo_current_sender(to.rt);
    rc = enqueue(to, env);
    if (rc != 0)
        xo_envelope_free(to.rt, env);
    return rc;
}

int xo_msg_alloc(xo_runtime_t *rt, uint32_t tag, size_t size, xo_msg_t **out)
{
    if (rt == NULL || out == NULL)
        return XO_EINVAL;
    struct xo_envelope *env;
    int rc = envelope_new(rt, tag, size, &env);
    if (rc == 0)
        *out = &env->msg;
    return rc;
}

int xo_msg_wrap(xo_runtime_t *rt, uint32_t tag, void *buf, size_t size,
                void (*free_fn)(void *, void *), void *free_arg,
                xo_msg_t **out)
{
    if (rt == NULL || out == NULL || (buf == NULL && size > 0) ||
        size > UINT32_MAX)
        return XO_EINVAL;
    struct xo_envelope *env;
    int rc = envelope_new(rt, tag, sizeof(struct wrap_tail), &env);
    if (rc != 0)
        return rc;
    struct wrap_tail *t = (struct wrap_tail *)env->payload;
    t->free_fn = free_fn;
    t->free_arg = free_arg;
    env->flags |= XO_ENV_WRAPPED;
    env->msg.data = buf;
    env->msg.size = (uint32_t)size;
    *out = &env->msg;
    return 0;
}

int xo_send(xo_ref_t to, xo_msg_t *msg)
{
    if (to.rt == NULL || msg == NULL)
        return XO_EINVAL;
    struct xo_envelope *env = xo_container_of(msg, struct xo_envelope, msg);
    env->msg.sender = xo_current_sender(to.rt);
    return enqueue(to, env);
}

void xo_msg_free(xo_runtime_t *rt, xo_msg_t *msg)
{
    if (rt == NULL || msg == NULL)
        return;
    xo_envelope_free(rt, xo_container_of(msg, struct xo_envelope, msg));
}
