/*
 * call -- futures: the one way a call completes, whoever completes it (the
 * callee's reply, its handler's error, a cancellation, a timeout, a
 * destroy's outcome).
 *
 * A future has `count` items (1 for a call, n for a batch). Each item moves
 * once from QUEUED or RUNNING to DONE or CANCELLED, by CAS, so the first
 * completer wins and a late one only frees what it brought (a reply after a
 * timeout, say). The completer of the last item completes the future: it
 * sets DONE in `flags`, wakes waiters that announced themselves (WAITERS),
 * and schedules the continuation if one is attached (THEN). Attaching a
 * continuation and completing race through the same fetch_or, so exactly
 * one of them schedules it.
 *
 * `flags` is also the futex word waiters sleep on; its bits above 8 count
 * stream events (a part arrived), so a stream reader can sleep until the
 * next part or the end.
 *
 * References: the caller holds one until xo_future_release; every call
 * envelope holds one until it is freed (handled, skipped or dropped), a
 * deferred request one until it is answered, a destroy's cell one until the
 * destroy settles; a call timeout timer and an attached continuation hold
 * one each.
 */
#ifndef XO_RUNTIME_CALL_H
#define XO_RUNTIME_CALL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "xoscar/xoscar.h"
#include "mpscq.h"

struct xo_envelope;
struct xo_cell;

enum {
    XO_FUT_DONE = 1u,
    XO_FUT_WAITERS = 2u,
    XO_FUT_THEN = 4u,
    XO_FUT_ABANDONED = 8u,  /* the caller released the future */
    XO_FUT_CANCEL = 16u,    /* the caller asked to cancel */
    XO_FUT_EVENT = 1u << 8,
};

enum { XO_ITEM_QUEUED = 0, XO_ITEM_RUNNING, XO_ITEM_DONE, XO_ITEM_CANCELLED };

struct xo_call_item {
    _Atomic uint32_t phase;
    int status;
    char *error;                /* owned copy, or NULL */
    struct xo_envelope *reply;  /* owned, or NULL */
    uint64_t from_id;
};

struct xo_future {
    _Atomic uint32_t flags;    /* XO_FUT_*; futex word */
    _Atomic uint32_t refs;
    _Atomic uint32_t pending;  /* items not yet completed */
    xo_runtime_t *rt;
    uint64_t callee_id;        /* for the cycle check of blocking waits */
    uint32_t count;
    size_t alloc_size;
    /* Streams: parts (envelopes) queued by the callee, read by the
       caller; the part last handed out is kept until the next read. */
    struct xo_mpscq parts;
    struct xo_qnode *parts_tail; /* the reader's end (a stream is not hot) */
    struct xo_envelope *current_part;
    /* Continuation, run as a turn of then_actor. */
    xo_ref_t then_actor;
    xo_then_fn then;
    void *then_arg;
    struct xo_call_item items[];
};

/* A future of count items (count 0 is complete at once), holding the
   caller's reference. */
int xo_future_new(xo_runtime_t *rt, uint64_t callee_id, uint32_t count,
                  struct xo_future **out);
void xo_future_unref(struct xo_future *f);
/*
 * Complete item i if it is still open (QUEUED or RUNNING): status, an
 * optional error message (copied), an optional reply envelope (taken).
 * Returns false (and frees reply) when the item was already complete.
 */
bool xo_future_complete_item(struct xo_future *f, uint32_t i, int status,
                             const char *error, struct xo_envelope *reply,
                             uint64_t from_id);
/* Worker: an item's handler is about to run; false if it was cancelled. */
bool xo_future_start_item(struct xo_future *f, uint32_t i);

/* Worker, after a handler: answer the calls it left unanswered. */
void xo_request_finish(struct xo_ctx *ctx, const xo_msg_t *msg, int rc);
/* Worker: a continuation envelope reached the front of its mailbox. */
int xo_run_continuation(struct xo_ctx *ctx, struct xo_envelope *env);
/* A continuation envelope that will never run (its actor is gone). */
void xo_drop_continuation(xo_runtime_t *rt, struct xo_envelope *env);
/* Wait for a future, from a handler (helping, cycle check) or not. */
int xo_future_wait_internal(struct xo_future *f, int64_t timeout_ns);

#endif /* XO_RUNTIME_CALL_H */
