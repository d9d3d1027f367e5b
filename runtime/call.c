/*
 * call.c -- calls, replies, futures, streams and continuations (design in
 * call.h).
 *
 * A call is a message of kind CALL whose envelope carries a request: the
 * future and the item index it answers. The callee answers through the
 * request (xo_reply, xo_reply_error, parts); whatever its handler leaves
 * unanswered is answered when it returns (xi_request_finish): its error
 * code and xo_fail message, or an empty reply. Replies never travel through
 * a mailbox to an outside caller: the callee completes the future in place.
 * A continuation (xo_call_then) is the exception: the completion pushes a
 * CONT message into the calling actor's mailbox so that `then` runs as one
 * of its turns, with its state, single-threaded.
 *
 * Blocking waits inside handlers record what they wait for in the waiting
 * actor's cell (waiting_for) and then walk that chain: if it leads back to
 * the waiter, the wait would never end and fails with XO_EDEADLK. Store
 * then walk, both seq_cst: of two actors that start waiting on each other
 * at once, at least one sees the other's store.
 */
#include "runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- futures -------------------------------------------------------- */

/* Misuse of a released future (a second release, a wait after it) is a
   caller's bug; this turns it into an abort that names it, instead of a
   corruption found far away. Its cost is one load and compare. */
static void check_live(const struct xo_future *f, const char *fn)
{
    if (__builtin_expect(f->magic != XI_FUTURE_LIVE, 0)) {
        fprintf(stderr,
                "xoscar: %s: %p is not a live future or request (released "
                "or answered already?)\n",
                fn, (const void *)f);
        abort();
    }
}

int xi_future_new(xo_runtime_t *rt, uint64_t callee_id, uint32_t count,
                  struct xo_future **out)
{
    size_t size = sizeof(struct xo_future) +
                  sizeof(struct xo_request) * (count ? count : 1);
    struct xo_future *f = xi_mem_zalloc(&rt->mem, size);
    if (f == NULL)
        return XO_ENOMEM;
    f->magic = XI_FUTURE_LIVE;
    f->alloc_size = size;
    f->rt = rt;
    f->callee_id = callee_id;
    f->count = count;
    xi_mpscq_init(&f->parts, &f->parts_tail, false);
    atomic_init(&f->refs, 1); /* the caller's; each request adds one */
    atomic_init(&f->pending, count);
    atomic_init(&f->flags, count == 0 ? XI_FUT_DONE : 0);
    for (uint32_t i = 0; i < count; i++) {
        f->items[i].index = i;
        f->items[i].callee = callee_id; /* the actor every item goes to */
    }
    *out = f;
    return 0;
}

/* Free what a completed item holds (its reply or its error message). */
static void drop_result(xo_runtime_t *rt, struct xo_request *it)
{
    struct xi_envelope *reply = xi_item_reply(it);
    const char *error = xi_item_error(it);
    if (reply != NULL)
        xi_envelope_free(rt, reply);
    else if (error != NULL)
        xi_mem_free(&rt->mem, (char *)error, strlen(error) + 1);
    it->result = NULL;
}

static void free_future(struct xo_future *f)
{
    xo_runtime_t *rt = f->rt;
    for (uint32_t i = 0; i < f->count; i++)
        drop_result(rt, &f->items[i]);
    if (f->current_part)
        xi_envelope_free(rt, f->current_part);
    struct xi_qnode *n;
    while ((n = xi_mpscq_pop(&f->parts, &f->parts_tail)) != NULL)
        xi_envelope_free(rt, (struct xi_envelope *)n);
    f->magic = 0;
    xi_mem_free(&rt->mem, f, f->alloc_size);
}

void xi_future_unref(struct xo_future *f)
{
    /* acq_rel: the last owner sees every write made under the others. */
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        free_future(f);
}

static void schedule_continuation(struct xo_future *f);

/* The flag word changed from `old` (DONE, or a stream event): wake those
   who announced that they sleep on it. */
static void wake_waiters(struct xo_future *f, uint32_t old)
{
    if (old & XI_FUT_WAITERS) /* threads outside the runtime */
        xi_futex_wake_all(&f->flags);
    if (old & XI_FUT_SLEEPER) {
        /* acquire: pairs with the sleeper's acq_rel CAS; its worker struct
           lives until the runtime is freed, so a stale one is still memory
           to poke (it wakes once for nothing). */
        struct xi_worker *w = atomic_load_explicit(&f->sleeper,
                                                   memory_order_acquire);
        if (w != NULL)
            xi_worker_wake(w);
    }
}

/* The last item completed. */
static void finish(struct xo_future *f)
{
    /* acq_rel: release publishes the items' results to whoever sees DONE;
       acquire pairs with a waiter's or attacher's fetch_or. */
    uint32_t old = atomic_fetch_or_explicit(&f->flags, XI_FUT_DONE,
                                            memory_order_acq_rel);
    wake_waiters(f, old);
    if (old & XI_FUT_THEN)
        schedule_continuation(f);
}

static char *copy_error(xo_runtime_t *rt, const char *msg)
{
    if (msg == NULL)
        return NULL;
    size_t len = strlen(msg);
    char *copy = xi_mem_alloc(&rt->mem, len + 1);
    if (copy != NULL)
        memcpy(copy, msg, len + 1);
    return copy;
}

static bool claim_item(struct xo_request *it, uint32_t to)
{
    /* acquire: pairs with the CAS of whoever moved the item last. */
    uint32_t phase = atomic_load_explicit(&it->phase, memory_order_acquire);
    while (phase == XI_ITEM_QUEUED || phase == XI_ITEM_RUNNING) {
        /* acq_rel: one completer wins the item. */
        if (atomic_compare_exchange_weak_explicit(
                &it->phase, &phase, to, memory_order_acq_rel,
                memory_order_acquire))
            return true;
    }
    return false;
}

bool xi_future_complete_item(struct xo_future *f, uint32_t i, int status,
                             const char *error, struct xi_envelope *reply,
                             bool by_callee)
{
    struct xo_request *it = &f->items[i];
    if (!claim_item(it, by_callee ? XI_ITEM_ANSWERED : XI_ITEM_DONE)) {
        if (reply)
            xi_envelope_free(f->rt, reply);
        return false;
    }
    it->status = status;
    XI_TRACE(f->rt, XI_TR_CALL_DONE, (uintptr_t)f, i, status);
    /* NULL error: the code's own message, given out by xo_strerror. */
    it->result = status < 0 ? (void *)copy_error(f->rt, error) : reply;
    /* acq_rel: the item's fields above happen before the finisher's
       release of DONE. */
    if (atomic_fetch_sub_explicit(&f->pending, 1, memory_order_acq_rel) == 1)
        finish(f);
    return true;
}

bool xi_future_start_item(struct xo_future *f, uint32_t i)
{
    uint32_t expected = XI_ITEM_QUEUED;
    /* acq_rel: pairs with a cancel's CAS on the same item. */
    return atomic_compare_exchange_strong_explicit(
        &f->items[i].phase, &expected, XI_ITEM_RUNNING, memory_order_acq_rel,
        memory_order_acquire);
}

/* ---- calling -------------------------------------------------------- */

/* A call's envelope: the payload, and msg.request pointing at its item of
   the future (the request lives there, see call.h). */
static int call_envelope(xo_runtime_t *rt, struct xo_future *f, uint32_t i,
                         uint32_t tag, const void *data, size_t size,
                         struct xi_envelope **out)
{
    if (data == NULL && size > 0)
        return XO_EINVAL;
    struct xi_envelope *env;
    int rc = xi_envelope_new(rt, tag, size, &env);
    if (rc != 0)
        return rc;
    if (size > 0)
        memcpy(env->msg.data, data, size);
    env->item.kind = XI_K_CALL;
    /* relaxed: the envelope's reference; the caller's keeps f alive. */
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    env->msg.request = &f->items[i];
    env->msg.sender = xi_current_sender(rt);
    XI_TRACE(rt, XI_TR_CALL, (uintptr_t)f, f->callee_id, tag);
    *out = env;
    return 0;
}

/* own_tag: one of the runtime's tags (a supervisor's calls), which the
   envelope would refuse a user: it is set after. */
static int call_one_tagged(xo_ref_t to, uint32_t tag, bool own_tag,
                           const void *data, size_t size, xo_future_t **out)
{
    if (to.rt == NULL || out == NULL || (data == NULL && size > 0))
        return XO_EINVAL;
    struct xo_future *f;
    int rc = xi_future_new(to.rt, to.id, 1, &f);
    if (rc != 0)
        return rc;
    struct xi_envelope *env;
    rc = call_envelope(to.rt, f, 0, own_tag ? 0 : tag, data, size, &env);
    if (rc == 0) {
        if (own_tag)
            env->msg.tag = tag;
        rc = xi_enqueue(to, env);
        if (rc != 0)
            xi_envelope_free(to.rt, env);
    }
    if (rc != 0) {
        xi_future_unref(f);
        return rc;
    }
    *out = f;
    return 0;
}

static int call_one(xo_ref_t to, uint32_t tag, const void *data, size_t size,
                    xo_future_t **out)
{
    return call_one_tagged(to, tag, false, data, size, out);
}

int xi_call_internal(xo_ref_t to, uint32_t tag, const void *data,
                     size_t size, xo_future_t **out)
{
    return call_one_tagged(to, tag, true, data, size, out);
}

/* Calls count toward a handler's yield like tells (see cfg.yield_sends),
   once the call is complete: a yield never runs inside one. */
int xo_call(xo_ref_t to, uint32_t tag, const void *data, size_t size,
            xo_future_t **out)
{
    int rc = call_one(to, tag, data, size, out);
    if (rc == 0)
        xi_count_sends(xi_current_ctx(), 1);
    return rc;
}

int xo_call_batch(xo_ref_t to, const xo_batch_item_t *items, size_t count,
                  xo_future_t **out)
{
    if (to.rt == NULL || out == NULL || (items == NULL && count > 0) ||
        count > UINT32_MAX)
        return XO_EINVAL;
    for (size_t i = 1; i < count; i++)
        if (items[i].tag != items[0].tag)
            return XO_EINVAL;
    struct xo_future *f;
    int rc = xi_future_new(to.rt, to.id, (uint32_t)count, &f);
    if (rc != 0)
        return rc;
    if (count == 0) {
        *out = f;
        return 0;
    }
    struct xi_chain ch = { NULL, NULL };
    for (size_t i = 0; i < count && rc == 0; i++) {
        struct xi_envelope *env;
        rc = call_envelope(to.rt, f, (uint32_t)i, items[i].tag, items[i].data,
                           items[i].size, &env);
        if (rc == 0)
            xi_chain_append(&ch, env);
    }
    if (rc == 0)
        rc = xi_enqueue_chain(to, ch.first, ch.last);
    if (rc != 0) {
        if (ch.first != NULL)
            xi_envelope_chain_free(to.rt, ch.first, ch.last);
        xi_future_unref(f);
        return rc;
    }
    *out = f;
    xi_count_sends(xi_current_ctx(), count);
    return 0;
}

/* ---- waiting (wait.c does it) ---------------------------------------- */

int xi_future_wait_internal(struct xo_future *f, int64_t timeout_ns)
{
    return xi_wait_change(f, 0, XI_FUT_DONE, timeout_ns);
}

int xo_future_wait(xo_future_t *f, int64_t timeout_ns)
{
    if (f == NULL)
        return XO_EINVAL;
    check_live(f, "xo_future_wait");
    return xi_future_wait_internal(f, timeout_ns);
}

bool xo_future_done(const xo_future_t *f)
{
    if (f == NULL)
        return false;
    check_live(f, "xo_future_done");
    /* acquire: results may be read once this says done. */
    return (atomic_load_explicit(&((xo_future_t *)f)->flags,
                                              memory_order_acquire) &
                         XI_FUT_DONE);
}

size_t xo_future_count(const xo_future_t *f)
{
    if (f == NULL)
        return 0;
    check_live(f, "xo_future_count");
    return f->count;
}

/* Who completed the item: its callee, or nobody (the runtime). acquire:
   the phase was set by the completer's claim. */
static uint64_t item_from(const struct xo_request *it)
{
    return atomic_load_explicit(&((struct xo_request *)it)->phase,
                                memory_order_acquire) == XI_ITEM_ANSWERED
               ? it->callee
               : 0;
}

static void fill_result(xo_runtime_t *rt, int status, const char *error,
                        const struct xi_envelope *env, uint64_t from,
                        xo_result_t *out)
{
    out->status = status;
    out->error = status < 0 ? (error ? error : xo_strerror(status)) : NULL;
    out->tag = env ? env->msg.tag : 0;
    out->data = env ? env->msg.data : NULL;
    out->size = env ? env->msg.size : 0;
    out->from = from ? (xo_ref_t){ rt, from } : XO_REF_NONE;
}

/* Why xo_future_result has no result to give (out says so too). */
static int no_result(xo_result_t *out, const char *why)
{
    *out = (xo_result_t){ .status = XO_EINVAL, .error = why };
    return XO_EINVAL;
}

int xo_future_result(const xo_future_t *f, size_t i, xo_result_t *out)
{
    if (out == NULL)
        return XO_EINVAL;
    if (f == NULL)
        return no_result(out, "no future");
    check_live(f, "xo_future_result");
    if (i >= f->count)
        return no_result(out, "result index out of range");
    if (!xo_future_done(f))
        return no_result(out, "the call is not complete yet");
    const struct xo_request *it = &f->items[i];
    fill_result(f->rt, it->status, xi_item_error(it), xi_item_reply(it),
                item_from(it), out);
    return it->status;
}

int xo_future_cancel(xo_future_t *f)
{
    if (f == NULL)
        return XO_EINVAL;
    check_live(f, "xo_future_cancel");
    /* Take a reference: the last cancelled item may finish the future. */
    /* relaxed: the caller's reference keeps f alive while we take ours. */
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    for (uint32_t i = 0; i < f->count; i++) {
        uint32_t expected = XI_ITEM_QUEUED;
        struct xo_request *it = &f->items[i];
        /* Only calls not yet started: a running handler decides. The
           claim to RUNNING first lets complete_item finish it normally. */
        /* acq_rel: pairs with the worker's start_item CAS on the same item. */
        if (atomic_compare_exchange_strong_explicit(
                &it->phase, &expected, XI_ITEM_RUNNING, memory_order_acq_rel,
                memory_order_acquire))
            xi_future_complete_item(f, i, XO_ECANCELED, NULL, NULL, false);
    }
    /* relaxed: a hint for running handlers (xo_request_cancelled). */
    atomic_fetch_or_explicit(&f->flags, XI_FUT_CANCEL,
                             memory_order_relaxed);
    xi_future_unref(f);
    return 0;
}

void xo_future_release(xo_future_t *f)
{
    if (f == NULL)
        return;
    check_live(f, "xo_future_release");
    /* release: nothing of ours is touched after; acquire not needed. */
    atomic_fetch_or_explicit(&f->flags, XI_FUT_ABANDONED,
                             memory_order_release);
    xi_future_unref(f);
}

/* ---- streams -------------------------------------------------------- */

int xo_stream_next(xo_future_t *f, int64_t timeout_ns, xo_result_t *part)
{
    if (f == NULL || part == NULL)
        return XO_EINVAL;
    check_live(f, "xo_stream_next");
    if (f->count != 1)
        return XO_EINVAL;
    if (f->current_part) {
        xi_envelope_free(f->rt, f->current_part);
        f->current_part = NULL;
    }
    uint64_t deadline =
        timeout_ns < 0 ? 0 : xi_deadline_after((uint64_t)timeout_ns);
    for (;;) {
        /* acquire: pairs with the event/DONE release by the producer. */
        uint32_t seen = atomic_load_explicit(&f->flags, memory_order_acquire);
        struct xi_qnode *n = xi_mpscq_pop(&f->parts, &f->parts_tail);
        if (n != NULL) {
            struct xi_envelope *env = (struct xi_envelope *)n;
            f->current_part = env;
            fill_result(f->rt, 0, NULL, env, env->msg.sender.id, part);
            return 0;
        }
        if (seen & XI_FUT_DONE) {
            /* Parts are queued before DONE is set: none can be missing
               once DONE was seen before the pop above came up empty,
               except one mid-link; retry while the queue is not empty. */
            if (!xi_mpscq_empty(&f->parts, f->parts_tail))
                continue;
            const struct xo_request *it = &f->items[0];
            if (it->status < 0) {
                fill_result(f->rt, it->status, xi_item_error(it), NULL,
                            item_from(it), part);
                return it->status;
            }
            memset(part, 0, sizeof(*part));
            return XO_EEOF;
        }
        /* Until the next part or the end: the same wait as a call's, with
           its cycle check and, in a handler, the worker lent meanwhile. */
        int64_t left = -1;
        if (timeout_ns >= 0) {
            uint64_t now = xi_now_ns();
            left = now >= deadline ? 0 : (int64_t)(deadline - now);
        }
        int rc = xi_wait_change(f, seen, XI_FUT_DONE | XI_FUT_EVENTS, left);
        if (rc != 0)
            return rc;
    }
}

/* ---- the callee's side ---------------------------------------------- */

/* The future of a request handed to the API, checked live. */
static struct xo_future *request_future(const xo_request_t *req,
                                        const char *fn)
{
    struct xo_future *f = xi_request_future(req);
    check_live(f, fn);
    return f;
}

/* A stream part, queued for the reader, who is told. */
static void push_part(struct xo_future *f, struct xi_envelope *env)
{
    (void)xi_mpscq_push(&f->parts, &env->item.node);
    /* acq_rel: the part is linked before the event is seen; the event
       count tells a sleeping reader to look again. */
    uint32_t old = atomic_fetch_add_explicit(&f->flags, XI_FUT_EVENT,
                                             memory_order_acq_rel);
    wake_waiters(f, old);
}

/* The answer was given on a worker whose kind holds answers (worker.h):
   hand it over. Without memory to keep it, a final answer completes now
   with XO_ENOMEM rather than before the work it follows, and a part is
   refused; either way the answerer hears XO_ENOMEM. */
static __attribute__((noinline)) int
hold_answer(struct xi_worker *w, struct xo_future *f, xo_request_t *req,
            int status, const char *error, struct xi_envelope *env,
            bool part)
{
    xo_runtime_t *rt = f->rt;
    struct xi_held *h = xi_mem_zalloc(&rt->mem, sizeof(*h));
    char *copy = NULL;
    if (h != NULL && error != NULL &&
        (copy = copy_error(rt, error)) == NULL) {
        xi_mem_free(&rt->mem, h, sizeof(*h));
        h = NULL;
    }
    if (h == NULL) {
        if (env)
            xi_envelope_free(rt, env);
        if (!part)
            xi_future_complete_item(f, req->index, XO_ENOMEM,
                                    "out of memory holding the answer "
                                    "until its stream reached it",
                                    NULL, true);
        return XO_ENOMEM;
    }
    /* relaxed: the hold's reference, taken while the answerer's keeps f
       alive (the envelope's, or the deferred handle's). */
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    h->req = req;
    h->status = status;
    h->error = copy;
    h->env = env;
    h->part = part;
    w->hold(w, h);
    return 0;
}

void xi_held_release(xo_runtime_t *rt, struct xi_held *h, int status,
                     const char *error)
{
    struct xo_future *f = xi_request_future(h->req);
    if (h->part) {
        /* acquire: pairs with release's fetch_or of ABANDONED. */
        if (status < 0 || (atomic_load_explicit(&f->flags,
                                                memory_order_acquire) &
                           (XI_FUT_ABANDONED | XI_FUT_CANCEL)))
            xi_envelope_free(rt, h->env);
        else
            push_part(f, h->env);
    } else if (status < 0) {
        if (h->env)
            xi_envelope_free(rt, h->env);
        xi_future_complete_item(f, h->req->index, status, error, NULL, true);
    } else {
        xi_future_complete_item(f, h->req->index, h->status, h->error,
                                h->env, true);
    }
    xi_future_unref(f); /* the hold's */
    xi_mem_free_str(&rt->mem, h->error);
    xi_mem_free(&rt->mem, h, sizeof(*h));
}

/* Give the request its final answer: exactly one caller of this wins (the
   `answered` exchange), the others get XO_EINVAL and free what they
   brought. A deferred request's reference goes with its answer. On a
   worker whose kind holds answers, it completes later (hold_answer). */
static int reply_with(xo_request_t *req, int status, const char *error,
                      struct xi_envelope *env)
{
    struct xo_future *f = xi_request_future(req);
    /* acq_rel: one answer wins, and it sees whatever the losers did. */
    if (atomic_exchange_explicit(&req->answered, 1, memory_order_acq_rel)) {
        if (env)
            xi_envelope_free(f->rt, env);
        return XO_EINVAL;
    }
    bool deferred = req->deferred;
    if (env)
        env->msg.sender = (xo_ref_t){ f->rt, req->callee };
    struct xi_worker *w = xi_current_worker();
    int rc = 0;
    if (__builtin_expect(w != NULL && w->hold != NULL, 0))
        rc = hold_answer(w, f, req, status, error, env, false);
    else
        xi_future_complete_item(f, req->index, status, error, env, true);
    if (deferred)
        xi_future_unref(f); /* the deferred handle's reference */
    return rc;
}

/* relaxed: a quick refusal; reply_with's exchange decides. */
static bool answered(const xo_request_t *req)
{
    return atomic_load_explicit(&((xo_request_t *)req)->answered,
                                memory_order_relaxed) != 0;
}

int xo_reply(xo_request_t *req, uint32_t tag, const void *data, size_t size)
{
    if (req == NULL || (data == NULL && size > 0))
        return XO_EINVAL;
    struct xo_future *f = request_future(req, "xo_reply");
    if (answered(req))
        return XO_EINVAL;
    struct xi_envelope *env;
    int rc = xi_envelope_new(f->rt, tag, size, &env);
    if (rc != 0)
        return rc;
    if (size > 0)
        memcpy(env->msg.data, data, size);
    return reply_with(req, 0, NULL, env);
}

int xo_reply_end(xo_request_t *req)
{
    if (req == NULL)
        return XO_EINVAL;
    (void)request_future(req, "xo_reply_end");
    return reply_with(req, 0, NULL, NULL);
}

static int vreply_error(xo_request_t *req, int err, const char *fmt,
                        va_list ap)
{
    char buf[512];
    const char *msg = NULL;
    if (fmt != NULL) {
        vsnprintf(buf, sizeof(buf), fmt, ap);
        msg = buf;
    }
    return reply_with(req, err, msg, NULL);
}

int xo_reply_error(xo_request_t *req, int err, const char *fmt, ...)
{
    if (req == NULL || err >= 0)
        return XO_EINVAL;
    (void)request_future(req, "xo_reply_error");
    va_list ap;
    va_start(ap, fmt);
    int rc = vreply_error(req, err, fmt, ap);
    va_end(ap);
    return rc;
}

int xo_reply_part(xo_request_t *req, uint32_t tag, const void *data,
                  size_t size)
{
    if (req == NULL || (data == NULL && size > 0))
        return XO_EINVAL;
    struct xo_future *f = request_future(req, "xo_reply_part");
    if (answered(req) || f->count != 1)
        return XO_EINVAL;
    /* acquire: pairs with release's fetch_or of ABANDONED. */
    if (atomic_load_explicit(&f->flags, memory_order_acquire) &
        (XI_FUT_ABANDONED | XI_FUT_CANCEL))
        return XO_ECANCELED;
    struct xi_envelope *env;
    int rc = xi_envelope_new(f->rt, tag, size, &env);
    if (rc != 0)
        return rc;
    if (size > 0)
        memcpy(env->msg.data, data, size);
    env->msg.sender = (xo_ref_t){ f->rt, req->callee };
    struct xi_worker *w = xi_current_worker();
    if (__builtin_expect(w != NULL && w->hold != NULL, 0))
        return hold_answer(w, f, req, 0, NULL, env, true);
    push_part(f, env);
    return 0;
}

bool xo_request_cancelled(const xo_request_t *req)
{
    if (req == NULL)
        return false;
    struct xo_future *f = request_future(req, "xo_request_cancelled");
    /* relaxed: a hint, polled by the handler. */
    return atomic_load_explicit(&f->flags, memory_order_relaxed) &
           (XI_FUT_CANCEL | XI_FUT_ABANDONED);
}

xo_request_t *xo_request_defer(xo_request_t *req)
{
    if (req == NULL)
        return NULL;
    struct xo_future *f = request_future(req, "xo_request_defer");
    if (answered(req))
        return NULL;
    if (!req->deferred) {
        req->deferred = 1;
        /* relaxed: the handle's reference, taken while the envelope's
           keeps f alive. */
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    }
    return req;
}

int xo_fail(xo_ctx_t *ctx, int err, const char *fmt, ...)
{
    if (ctx == NULL || fmt == NULL)
        return err;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    xi_ctx_set_fail(ctx, buf);
    return err;
}

void xi_ctx_set_fail(struct xo_ctx *ctx, const char *text)
{
    if (ctx->fail_msg)
        xi_ctx_free_fail(ctx);
    ctx->fail_msg = copy_error(ctx->rt, text);
}

void xi_request_finish(struct xo_ctx *ctx, const xo_msg_t *msg, int rc)
{
    xo_request_t *req = msg->request;
    /* deferred first: once deferred, the handle may be answered on another
       thread, and reply_with's exchange settles who answers. */
    if (req != NULL && !req->deferred && !answered(req))
        (void)reply_with(req, rc < 0 ? rc : 0, rc < 0 ? ctx->fail_msg : NULL,
                         NULL);
}

/* ---- continuations -------------------------------------------------- */

struct cont_payload {
    struct xo_future *f;
    xo_then_fn then;
    void *arg;
};

static void schedule_continuation(struct xo_future *f)
{
    xo_runtime_t *rt = f->rt;
    struct xi_envelope *env;
    if (xi_envelope_new(rt, 0, sizeof(struct cont_payload), &env) != 0) {
        /* Nowhere to run it: the continuation's reference goes. A failed
           allocation here is reported as a handler error of the caller. */
        if (rt->cfg.on_handler_error)
            rt->cfg.on_handler_error(rt, f->then_actor, 0, XO_ENOMEM,
                                     rt->cfg.on_handler_error_user);
        xi_future_unref(f);
        return;
    }
    env->item.kind = XI_K_CONT;
    struct cont_payload *p = env->msg.data;
    *p = (struct cont_payload){ f, f->then, f->then_arg };
    if (xi_enqueue(f->then_actor, env) != 0)
        xi_drop_continuation(rt, env);
}

/* Nobody reads a continuation's future after it ran (the runtime owns
   it), but a timeout timer may keep the struct until its deadline: free
   the replies now so that only the small struct waits. */
static void drop_results(struct xo_future *f)
{
    for (uint32_t i = 0; i < f->count; i++)
        drop_result(f->rt, &f->items[i]);
}

void xi_drop_continuation(xo_runtime_t *rt, struct xi_envelope *env)
{
    struct cont_payload *p = env->msg.data;
    drop_results(p->f);
    xi_future_unref(p->f);
    xi_envelope_free(rt, env);
}

int xi_run_continuation(struct xo_ctx *ctx, struct xi_envelope *env)
{
    struct cont_payload *p = env->msg.data;
    int rc = p->then(ctx, ctx->cell->state, p->f, p->arg);
    drop_results(p->f);
    xi_future_unref(p->f);
    return rc;
}

/* A call's timeout: a timer that completes every open item of its future
   with XO_ETIMEDOUT (the items' CAS settles the race with the reply). A
   call that completes first leaves the timer in the heap until its
   deadline; it keeps only the small future struct alive (the replies are
   freed once the continuation ran). */
struct call_timeout {
    struct xi_timer timer;
    struct xo_future *f; /* holds a reference */
};

static void timeout_free(struct call_timeout *t)
{
    xo_runtime_t *rt = t->f->rt;
    xi_future_unref(t->f);
    xi_mem_free(&rt->mem, t, sizeof(*t));
}

static void complete_open_items(struct xo_future *f, int status)
{
    for (uint32_t i = 0; i < f->count; i++)
        xi_future_complete_item(f, i, status, NULL, NULL, false);
}

static void timeout_fire(struct xi_timer *timer, struct xi_worker *w)
{
    (void)w;
    struct call_timeout *t = xi_container_of(timer, struct call_timeout,
                                             timer);
    complete_open_items(t->f, XO_ETIMEDOUT);
    timeout_free(t);
}

/* No timer: at stop the calls are answered by the drain anyway; when the
   heap could not take it, the call completes now with XO_ENOMEM, since its
   caller would otherwise wait for a timeout that never comes. */
static void timeout_drop(struct xi_timer *timer, xo_runtime_t *rt, int why)
{
    (void)rt;
    struct call_timeout *t = xi_container_of(timer, struct call_timeout,
                                             timer);
    if (why == XO_ENOMEM)
        complete_open_items(t->f, XO_ENOMEM);
    timeout_free(t);
}

static int arm_timeout(struct xo_future *f, struct xi_worker *w,
                       int64_t timeout_ns)
{
    struct call_timeout *t = xi_mem_zalloc(&f->rt->mem, sizeof(*t));
    if (t == NULL)
        return XO_ENOMEM;
    t->timer.deadline = xi_deadline_after((uint64_t)timeout_ns);
    t->timer.fire = timeout_fire;
    t->timer.drop = timeout_drop;
    t->f = f;
    /* relaxed: the timer's reference, taken while the caller's holds f. */
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    xi_worker_arm(w, &t->timer);
    return 0;
}

int xo_call_then(xo_ctx_t *ctx, xo_ref_t to, uint32_t tag, const void *data,
                 size_t size, int64_t timeout_ns, xo_then_fn then, void *arg)
{
    if (ctx == NULL || ctx->cell == NULL || then == NULL || to.rt != ctx->rt)
        return XO_EINVAL;
    if (ctx->cell->stateless)
        return XO_EINVAL; /* no turn of its own to continue in: block */
    if (xi_worker_of(ctx->rt) == NULL)
        return XO_EINVAL; /* on_create runs on the spawner's thread */
    struct xo_future *f;
    int rc = call_one(to, tag, data, size, &f);
    if (rc != 0)
        return rc;
    f->then_actor = xi_cell_ref(ctx->cell);
    f->then_incarnation = xi_cell_incarnation(ctx->cell);
    f->then = then;
    f->then_arg = arg;
    /* The timer lives on the caller's home pool, which outlives it: the
       worker running this turn may be another pool's (movable actors). */
    if (timeout_ns >= 0 &&
        arm_timeout(f, xi_pool_worker(ctx->rt, ctx->cell->pool),
                    timeout_ns) != 0) {
        /* No timer: cancel what has not started and let it complete. */
        xo_future_cancel(f);
    }
    /* The caller's reference becomes the continuation's. acq_rel: pairs
       with finish()'s fetch_or; exactly one of us schedules. */
    uint32_t old = atomic_fetch_or_explicit(&f->flags, XI_FUT_THEN,
                                            memory_order_acq_rel);
    if (old & XI_FUT_DONE)
        schedule_continuation(f);
    xi_count_sends(ctx, 1);
    return 0;
}
