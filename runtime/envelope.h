/*
 * envelope.h -- what travels through a run queue or a mailbox: items, and
 * the message envelope (message.c makes, sends and frees them).
 *
 * Everything queued starts with an item: the queue link and what the node
 * is. Run queues carry actors (ACTOR), stateless actors' reap requests
 * (REAP), messages to stateless actors run as tasks (TELL/CALL), function
 * items (FUNC: work another thread hands to a worker, a timer among them),
 * a suspended actor's resumption (RESUME, recovery.h) and the exit request
 * (EXIT). Mailboxes carry messages (TELL/CALL/CONT),
 * the runtime's signals (SIGNAL: a DOWN, a link's failure, a supervisor's
 * business; recovery.h) and a destroyed actor's reap marker (REAP).
 */
#ifndef XI_RUNTIME_ENVELOPE_H
#define XI_RUNTIME_ENVELOPE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "xoscar/xoscar.h"
#include "common.h"
#include "mpscq.h"

enum xi_kind {
    XI_K_ACTOR = 1,
    XI_K_REAP,
    XI_K_TELL,
    XI_K_CALL,
    XI_K_CONT,
    XI_K_FUNC,
    XI_K_EXIT,
    XI_K_SIGNAL,
    XI_K_RESUME,
};

/* Mailbox kinds above XI_K_CALL (CONT, SIGNAL) are the runtime's own: one
   compare keeps them off the message path. */
_Static_assert(XI_K_TELL == XI_K_CALL - 1 && XI_K_CONT > XI_K_CALL &&
                   XI_K_SIGNAL > XI_K_CALL,
               "tells and calls are the lowest mailbox kinds");

struct xi_item {
    struct xi_qnode node;
    uint16_t kind;
    uint16_t flags;  /* envelopes: XI_ENV_*; a reap marker: its exit */
    uint32_t size;   /* envelopes: bytes of the block, for the sized free */
};

struct xi_worker;

/*
 * A function item: work for a worker, made on any thread. The maker embeds
 * it in its own object and posts it (xi_worker_post); the worker calls fn
 * once, on its thread, between turns, with the item it was given. A GPU
 * pool's completed event, a network frame, a timer handed over by another
 * thread all enter a worker this way.
 */
struct xi_func {
    struct xi_item item; /* kind FUNC */
    void (*fn)(struct xi_func *f, struct xi_worker *w);
};

#define XI_ENV_WRAPPED 1u  /* payload is the caller's buffer, see wrap */
#define XI_ENV_RESERVED 2u /* its place in a bounded mailbox is taken
                              already (a delayed tell, see xo_tell_after) */
#define XI_ENV_TAILED 4u   /* with WRAPPED: its payload is its own, and the
                              free callback follows it (new_tailed) */

/*
 * A 56-byte header, then the payload. A payload of up to XI_ENV_SMALL bytes
 * follows the header directly, so the whole message is one 64-byte block —
 * one cache line for a receiver on another core to take, where an 80-byte
 * block spans two (pingpong across cores: 207 → 152 ns per round trip,
 * docs/performance.md). That spot is 8-byte aligned, which is enough for
 * any object of 8 bytes or less; a larger payload starts 8 bytes further,
 * 16-byte aligned (as malloc's blocks are). msg.data points at it either
 * way (xi_env_payload). A call's request is its item of the future
 * (msg.request points there, call.h), so a call with a small payload is one
 * line too.
 */
struct xi_envelope {
    struct xi_item item;  /* kind: TELL, CALL or CONT */
    xo_msg_t msg;
    alignas(8) unsigned char payload[];
};

_Static_assert(sizeof(struct xi_envelope) == 56 &&
                   sizeof(struct xi_envelope) + 8 == XI_CACHELINE,
               "an envelope with up to 8 bytes of payload is one line");

#define XI_ENV_SMALL 8u

_Static_assert(XO_MSG_MAX_SIZE + sizeof(struct xi_envelope) + 8 <= UINT32_MAX,
               "the largest payload's block size fits item.size");

/* Where an envelope made for `size` bytes keeps them. */
static inline unsigned char *xi_env_payload(struct xi_envelope *e,
                                            size_t size)
{
    return size <= XI_ENV_SMALL ? e->payload : e->payload + 8;
}

struct xi_cell;

/* A task (a message queued for a stateless actor on any worker) carries
   its actor while it is queued, in a word the header does not need until
   the task runs (it has none to spare): a tell's msg.request (NULL again
   once taken), a call's msg.sender.rt (the sender's runtime is the
   actor's own, or none for an outside sender: restored once taken). */
static inline void xi_task_set_cell(struct xi_envelope *e, struct xi_cell *c)
{
    if (e->item.kind == XI_K_CALL)
        e->msg.sender.rt = (xo_runtime_t *)(void *)c;
    else
        e->msg.request = (xo_request_t *)(void *)c;
}

static inline struct xi_cell *xi_task_take_cell(struct xi_envelope *e,
                                                xo_runtime_t *rt)
{
    struct xi_cell *c;
    if (e->item.kind == XI_K_CALL) {
        c = (struct xi_cell *)(void *)e->msg.sender.rt;
        e->msg.sender.rt = e->msg.sender.id != 0 ? rt : NULL;
    } else {
        c = (struct xi_cell *)(void *)e->msg.request;
        e->msg.request = NULL;
    }
    return c;
}

/* A chain of envelopes linked before it is pushed with one exchange. */
struct xi_chain {
    struct xi_envelope *first, *last;
};

static inline void xi_chain_append(struct xi_chain *ch, struct xi_envelope *e)
{
    /* relaxed: the chain is published by the push's release exchange. */
    if (ch->last != NULL)
        atomic_store_explicit(&ch->last->item.node.next, &e->item.node,
                              memory_order_relaxed);
    else
        ch->first = e;
    ch->last = e;
}

/* The envelope after e in a chain ending at last, or NULL. */
static inline struct xi_envelope *xi_chain_next(struct xi_envelope *e,
                                                struct xi_envelope *last)
{
    /* relaxed: the chain is this thread's own (built here, or taken off a
       queue by its consumer), so no other thread writes these links. */
    return e == last ? NULL
                     : (struct xi_envelope *)atomic_load_explicit(
                           &e->item.node.next, memory_order_relaxed);
}

/* ---- message.c ----------------------------------------------------- */

int xi_envelope_new(xo_runtime_t *rt, uint32_t tag, size_t size,
                    struct xi_envelope **out);
void xi_envelope_free(xo_runtime_t *rt, struct xi_envelope *env);
/* An envelope with `size` payload bytes followed by `extra` bytes of its
   maker's (8-aligned, at *extra_out), and a free callback that runs as
   free_fn(msg.data, extra) when the envelope is freed: the GPU layer's
   buffer messages keep their buffer there. */
int xi_envelope_new_tailed(xo_runtime_t *rt, uint32_t tag, size_t size,
                           size_t extra, void (*free_fn)(void *, void *),
                           struct xi_envelope **out, void **extra_out);
/* The extra bytes of an envelope made by new_tailed with free_fn, or
   NULL (another envelope). */
void *xi_envelope_tail(struct xi_envelope *env,
                       void (*free_fn)(void *, void *));
void xi_envelope_chain_free(xo_runtime_t *rt, struct xi_envelope *first,
                            struct xi_envelope *last);

/* ---- buffer messages across nodes (gpu/buffer.c; used by net/) ------- */

/* The seam between the GPU layer's buffer messages and the net layer,
   which name nothing of each other. A tailed envelope may be a buffer
   message (xo_send_buf); to another node it goes as a BUF frame: the
   buffer's bytes, then the message's. */

/* The buffer bytes env carries (0: not a buffer message). */
size_t xi_bufmsg_size(struct xi_envelope *env);
/* Whether the buffer's bytes may be read now, from any thread, without
   waiting: 1, with them at *bytes (host memory, xi_bufmsg_size of them);
   0: not yet (its point is not reached: ask again later); < 0: they never
   will be (the copy or the stream failed), an XO_E* code. */
int xi_bufmsg_ready(struct xi_envelope *env, const void **bytes);
/* A buffer message from another node, delivered to the local actor `to`
   by the local buffer send path: `size` buffer bytes at `bytes` (wrapped
   without a copy and released with free_fn(bytes, arg) when free_fn is
   set, whatever the result; copied when it is NULL), then `data_size`
   bytes of message data. 0 or the push's XO_E* code. */
int xi_bufmsg_deliver(xo_ref_t to, xo_ref_t sender, uint32_t tag,
                      void *bytes, size_t size,
                      void (*free_fn)(void *bytes, void *arg), void *arg,
                      const void *data, size_t data_size);
/* The single push point: hand env (or the linked chain first..last) to
   the actor behind `to` — a local mailbox, a stateless actor's tasks, or,
   for a ref that names another node, the runtime's route (runtime.h). On
   error the caller keeps them. */
int xi_enqueue(xo_ref_t to, struct xi_envelope *env);
int xi_enqueue_chain(xo_ref_t to, struct xi_envelope *first,
                     struct xi_envelope *last);
/* The ref of the actor whose handler runs on this thread, if it belongs to
   rt; XO_REF_NONE otherwise. */
xo_ref_t xi_current_sender(xo_runtime_t *rt);

#endif /* XI_RUNTIME_ENVELOPE_H */
