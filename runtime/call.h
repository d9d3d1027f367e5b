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
#ifndef XI_RUNTIME_CALL_H
#define XI_RUNTIME_CALL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xoscar/xoscar.h"
#include "mpscq.h"

struct xi_envelope;
struct xi_cell;
struct xi_worker;

enum {
    XI_FUT_DONE = 1u,
    XI_FUT_WAITERS = 2u,
    XI_FUT_THEN = 4u,
    XI_FUT_ABANDONED = 8u,  /* the caller released the future */
    XI_FUT_CANCEL = 16u,    /* the caller asked to cancel */
    XI_FUT_SLEEPER = 32u,   /* a worker sleeps on it (see `sleeper`) */
    XI_FUT_EVENT = 1u << 8,
    XI_FUT_EVENTS = ~((1u << 8) - 1u), /* the stream event count */
};

/* An item's phase. Completed by the actor it was sent to (its answer, its
   handler's error, a destroy's outcome: ANSWERED, `from` is that actor)
   or by the runtime (a timeout, a cancel: DONE, `from` is none). */
enum { XI_ITEM_QUEUED = 0, XI_ITEM_RUNNING, XI_ITEM_DONE, XI_ITEM_ANSWERED };

/*
 * One call of a future, and the callee's handle on it: msg->request points
 * here, so the request lives exactly as long as its future and a call's
 * envelope carries no copy of it. A deferred request (xo_request_defer) is
 * this same object; its reference keeps the future alive until it is
 * answered, and a second answer finds `answered` set as long as the caller
 * still holds the future.
 *
 * 32 bytes: a batch of a thousand calls is one 32 KiB future, which
 * jemalloc's thread cache still serves (at 56 bytes an item the same batch
 * cost 60 % more per call, `xoscar-bench batch`).
 */
struct xo_request {
    _Atomic uint32_t phase;     /* XO_ITEM_* */
    int status;
    /* status >= 0: the reply envelope (owned; NULL: an empty reply).
       status < 0: the error message (owned copy; NULL: xo_strerror). */
    void *result;
    /* The actor handling it: set on delivery (or, for a destroy's
       outcome, when the future is made). */
    uint64_t callee;
    uint32_t index;             /* in the future's items */
    /* A final reply, end or error was given. acq_rel exchange: a deferred
       request may be answered from any thread, and exactly one answer
       wins. */
    _Atomic uint8_t answered;
    uint8_t deferred;           /* the handler kept it (handler thread only) */
};

_Static_assert(sizeof(struct xo_request) == 32, "an item is 32 bytes");

static inline struct xi_envelope *xi_item_reply(const struct xo_request *it)
{
    return it->status >= 0 ? (struct xi_envelope *)it->result : NULL;
}

static inline const char *xi_item_error(const struct xo_request *it)
{
    return it->status < 0 ? (const char *)it->result : NULL;
}

/* A future is allocated and freed by the runtime only; `magic` says it is
   live. It sits in the block's first word, which a freed block's free-list
   link overwrites, so a released future is recognised as such (until the
   block is reused for another future) and misuse aborts with a message
   instead of corrupting memory far away. */
#define XI_FUTURE_LIVE UINT64_C(0x7866757475726521) /* "xfuture!" */

struct xo_future {
    uint64_t magic;
    xo_runtime_t *rt;
    /* Past the block's first 16 bytes (which a freed block's links keep
       unpoisoned), so AddressSanitizer reports a reference dropped on a
       released future. */
    _Atomic uint32_t flags;    /* XO_FUT_*; futex word */
    _Atomic uint32_t refs;
    _Atomic uint32_t pending;  /* items not yet completed */
    uint32_t count;
    uint64_t callee_id;        /* for the cycle check of blocking waits */
    size_t alloc_size;
    /* A worker whose handler waits on this future sleeps on its own wake
       word (so that new work for it wakes it too): the completer wakes it
       through this pointer (worker.c, xi_worker_sleep). */
    _Atomic(struct xi_worker *) sleeper;
    /* Streams: parts (envelopes) queued by the callee, read by the
       caller; the part last handed out is kept until the next read. */
    struct xi_mpscq parts;
    struct xi_qnode *parts_tail; /* the reader's end (a stream is not hot) */
    struct xi_envelope *current_part;
    /* Continuation, run as a turn of then_actor. */
    xo_ref_t then_actor;
    uint64_t then_incarnation; /* a restart drops older continuations */
    xo_then_fn then;
    void *then_arg;
    struct xo_request items[];
};

static inline struct xo_future *xi_request_future(const struct xo_request *r)
{
    return (struct xo_future *)(void *)((char *)(r - r->index) -
                                        offsetof(struct xo_future, items));
}

/*
 * A held answer: a final reply, error or end, or a stream part, given on a
 * worker whose pool kind orders answers after its own work (worker.h,
 * `hold`: a GPU pool's stream thread, where an answer completes when the
 * stream reaches the work enqueued before it). A final answer has won the
 * request's `answered` exchange already. The hold keeps a reference on
 * the future; the kind releases the hold later, once, from its own
 * thread.
 */
struct xi_held {
    struct xi_held *next;         /* the kind's list */
    struct xo_request *req;
    int status;
    char *error;                  /* owned copy, or NULL */
    struct xi_envelope *env;      /* the reply or the part, owned */
    bool part;
};

/* Complete a held answer as it was given, or, with status < 0 (the point
   it waited for failed), with status and error in its place; free it. */
void xi_held_release(xo_runtime_t *rt, struct xi_held *h, int status,
                     const char *error);

/* A future of count items (count 0 is complete at once), holding the
   caller's reference. */
int xi_future_new(xo_runtime_t *rt, uint64_t callee_id, uint32_t count,
                  struct xo_future **out);
void xi_future_unref(struct xo_future *f);
/*
 * Complete item i if it is still open (QUEUED or RUNNING): status, an
 * optional error message (copied), an optional reply envelope (taken).
 * by_callee: the item's callee answered it (its `from`); otherwise the
 * runtime did. Returns false (and frees reply) when the item was already
 * complete.
 */
bool xi_future_complete_item(struct xo_future *f, uint32_t i, int status,
                             const char *error, struct xi_envelope *reply,
                             bool by_callee);
/* Worker: an item's handler is about to run; false if it was cancelled. */
bool xi_future_start_item(struct xo_future *f, uint32_t i);

/* Worker, after a handler: answer the calls it left unanswered. */
void xi_request_finish(struct xo_ctx *ctx, const xo_msg_t *msg, int rc);
/* Worker: a continuation envelope reached the front of its mailbox. */
int xi_run_continuation(struct xo_ctx *ctx, struct xi_envelope *env);
/* A continuation envelope that will never run (its actor is gone). */
void xi_drop_continuation(xo_runtime_t *rt, struct xi_envelope *env);
/* A call with one of the runtime's own tags (a supervisor's requests). */
int xi_call_internal(xo_ref_t to, uint32_t tag, const void *data,
                     size_t size, xo_future_t **out);
/* Set the context's error message (a copy of text). */
void xi_ctx_set_fail(struct xo_ctx *ctx, const char *text);
/* Wait for a future, from a handler (helping, cycle check) or not. */
int xi_future_wait_internal(struct xo_future *f, int64_t timeout_ns);

#endif /* XI_RUNTIME_CALL_H */
