/*
 * cell.h -- an actor's cell, and refs: how an id is packed and resolved,
 * in one place (inline: every send resolves one).
 *
 * A ref's id packs, from bit 0: the slot index (28 bits, XO_ACTORS_MAX
 * slots), the node (12 bits: 0 is this process; the net layer gives other
 * nodes their numbers), and the generation of the actor that held the slot
 * (24 bits, never 0, so no live ref has a zero id). A send resolves its ref
 * to one of four answers (xi_ref_where): local (a live cell), gone (no such
 * actor, or it is being destroyed), remote (another node's: the push point
 * routes it, message.c), or closed (the runtime stops; the caller checks
 * that first, inside its read-side section).
 */
#ifndef XI_RUNTIME_CELL_H
#define XI_RUNTIME_CELL_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "xoscar/xoscar.h"
#include "common.h"
#include "envelope.h"
#include "mpscq.h"
#include "rcu.h"
#include "slots.h"

/* ---- ref ids ------------------------------------------------------- */

#define XI_REF_INDEX_BITS 28u
#define XI_REF_NODE_BITS 12u
#define XI_REF_NODE_SHIFT XI_REF_INDEX_BITS
#define XI_REF_GEN_SHIFT (XI_REF_INDEX_BITS + XI_REF_NODE_BITS)
#define XI_REF_NODE_MAX ((1u << XI_REF_NODE_BITS) - 1u)

_Static_assert(XI_REF_GEN_SHIFT + 24u == 64u &&
                   XI_SLOT_GEN_MASK == (1u << 24) - 1u,
               "index, node and generation fill the 64-bit id");
_Static_assert(((uint64_t)1 << XI_REF_INDEX_BITS) == XO_ACTORS_MAX,
               "the index bits address every slot");

static inline uint64_t xi_ref_pack(uint32_t gen, unsigned node,
                                   uint32_t index)
{
    return ((uint64_t)gen << XI_REF_GEN_SHIFT) |
           ((uint64_t)node << XI_REF_NODE_SHIFT) | index;
}

static inline uint32_t xi_ref_index(uint64_t id)
{
    return (uint32_t)(id & (((uint64_t)1 << XI_REF_INDEX_BITS) - 1));
}

static inline unsigned xi_ref_node(uint64_t id)
{
    return (unsigned)((id >> XI_REF_NODE_SHIFT) & XI_REF_NODE_MAX);
}

static inline uint32_t xi_ref_gen(uint64_t id)
{
    return (uint32_t)(id >> XI_REF_GEN_SHIFT);
}

/* ---- the cell ------------------------------------------------------ */

/* Stateless actors: tasks in flight in the low bits, DEAD once destroyed. */
#define XI_INFLIGHT_DEAD (UINT64_C(1) << 63)

struct xi_claim;
struct xi_name;
struct xi_obs;
struct xo_future;

/*
 * An actor cell is three cache lines of header, grouped by who writes them,
 * then the actor's state, then, for an actor that may be restarted, a copy
 * of its spawn argument (what a restart runs on_create with again) and its
 * recovery record (recovery.h). Cells are allocated in multiples of 64
 * bytes, 64-byte aligned, so each group is one line:
 *   line 0, written by senders: the mailbox's producers' end, the run link
 *           (the sender that schedules the actor writes it), the counts
 *           senders keep;
 *   line 1, read-mostly: what a send reads to resolve the ref, check the
 *           actor and schedule it, and what a restart needs (def, pool,
 *           capacity, movable, the argument's size);
 *   line 2, written by the worker running the actor: the mailbox's
 *           consumer's end, the per-message counter and the stats block
 *           (stats.h: the rest of the counters, made by the first turn).
 * With the consumer's words beside the producers', every send would first
 * have to take the line back from a worker draining the mailbox (counting:
 * 27 M against 44 M msgs/s here, docs/performance.md).
 */
struct xi_cell {
    /* ---- line 0: senders write ---- */
    /* The mailbox's producers' end; its consumer's end is mbox_tail. */
    struct xi_mpscq mbox;
    struct xi_item run;         /* ACTOR: link in its worker's run queue */
    /* REAP: last node of a destroyed actor; its flags say why the actor
       ends (enum xi_exit_kind, actor.h). */
    struct xi_item reap;
    /* Bounded only: tells and calls queued and not yet taken. Senders add
       before pushing, the consumer subtracts as it takes (relaxed: a
       count, the queue itself orders the messages). */
    _Atomic uint32_t queued;
    union {
        /* Stateless only: see XI_INFLIGHT_DEAD. */
        _Atomic uint64_t inflight;
        /* Stateful only: envelopes the push point put in the mailbox. A
           relaxed load and store, not an atomic add, on the line the
           sender's exchange has just taken: two senders racing may lose
           one count, so the worker puts it back to `handled` each time
           the mailbox goes idle (stats.h). */
        _Atomic uint64_t sent;
    };

    /* ---- line 1: read-mostly ---- */
    xo_runtime_t *rt;
    const xo_actor_def_t *def;
    struct xi_name *name;       /* uid entry or NULL */
    uint64_t id;                /* its ref id (slot index, node 0,
                                   generation): immutable after spawn */
    unsigned pool;              /* home pool */
    uint32_t capacity;          /* mailbox bound, 0: none */
    bool created;               /* on_create succeeded (or none) */
    bool stateless;
    bool movable;               /* other pools may run its turns */
    /* XI_CF_* (recovery.h): set by the actor's worker, except WATCHED,
       which xo_monitor and xo_link set from any thread. */
    _Atomic uint8_t rflags;
    uint32_t arg_size;          /* the spawn argument kept after the state */
    struct xi_claim *claim;     /* idle-label reservation, or NULL */
    /* The actor whose frame was pushed over this one's suspended turn on
       its worker (0: none): an edge of the wait-for graph (wait.c). It is
       written only while the turn is suspended, which is rare, so it may
       share the senders' read-mostly line. seq_cst: see wait.c. */
    _Atomic uint64_t above;

    /* ---- line 2: the worker running the actor writes ---- */
    /* The mailbox's consumer's end (mpscq.h, "Layout"). */
    struct xi_qnode *mbox_tail;
    /* Stateful only: a message popped while collecting an on_batch run
       that did not belong to it; handled next. Owner worker only. */
    struct xi_envelope *stash;
    /* Written by the worker running the actor only; read by xo_actor_stats
       from any thread. relaxed: counters, no ordering with other data. */
    _Atomic uint64_t handled;
    /* The rest of the actor's stats (stats.h), made by its first turn (or
       failure), freed with the cell: an actor that never runs (the spawn
       benchmark's children) keeps to its three lines. */
    _Atomic(struct xi_obs *) obs;
    /* The id of what a blocking wait in this actor's handler waits for
       (0: none). seq_cst: see wait.c. */
    _Atomic uint64_t waiting_for;
    /* Set by the destroyer that wins; completed by the reap. */
    struct xo_future *destroy_f;
    struct rcu_head rcu;

    alignas(16) unsigned char state[];
};

_Static_assert(offsetof(struct xi_cell, rt) == XI_CACHELINE &&
                   offsetof(struct xi_cell, mbox_tail) == 2 * XI_CACHELINE &&
                   sizeof(struct xi_cell) == 3 * XI_CACHELINE,
               "the cell header is three lines: senders', read-mostly, "
               "the worker's");

static inline xo_ref_t xi_cell_ref(const struct xi_cell *c)
{
    return (xo_ref_t){ c->rt, c->id };
}

/* Its slot. */
static inline uint32_t xi_cell_index(const struct xi_cell *c)
{
    return xi_ref_index(c->id);
}

/* Where the state ends: the spawn argument's copy starts there. */
static inline size_t xi_cell_state_room(const xo_actor_def_t *def)
{
    return (def->state_size + 15u) & ~(size_t)15u;
}

/* The spawn argument the cell keeps (arg_size bytes; NULL when none). */
static inline const void *xi_cell_arg(const struct xi_cell *c)
{
    return c->arg_size ? c->state + xi_cell_state_room(c->def) : NULL;
}

/* Where the recovery record of an actor that has one starts (recovery.h):
   after the state and the argument's copy, 16-byte aligned. */
static inline size_t xi_cell_recovery_offset(const xo_actor_def_t *def,
                                             size_t arg_size)
{
    return xi_cell_state_room(def) + ((arg_size + 15u) & ~(size_t)15u);
}

/* ---- resolving a ref ------------------------------------------------- */

/* The slot's pointer of a cell being destroyed: its low bit set (cells
   are line-aligned). Senders treat it as empty; the cycle check of
   blocking waits still follows it (wait.c). */
#define XI_SLOT_DYING ((uintptr_t)1)

static inline struct xi_cell *xi_dying(struct xi_cell *c)
{
    return (struct xi_cell *)((uintptr_t)c | XI_SLOT_DYING);
}

/* What slot `index` holds, with the DYING mark in *marked. */
static inline struct xi_cell *xi_slot_cell(struct xi_slots *slots,
                                           uint32_t index, bool *marked)
{
    struct xi_slot *slot = xi_slots_get(slots, index);
    if (slot == NULL) {
        *marked = false;
        return NULL;
    }
    /* acquire: pairs with the release publication in xo_spawn; the cell's
       fields (gen, mailbox) are initialised before it. */
    uintptr_t p = (uintptr_t)atomic_load_explicit(&slot->cell,
                                                  memory_order_acquire);
    *marked = (p & XI_SLOT_DYING) != 0;
    return (struct xi_cell *)(p & ~XI_SLOT_DYING);
}

enum xi_where { XI_REF_LOCAL, XI_REF_GONE, XI_REF_REMOTE };

/* Inside a read-side section: what id names. LOCAL sets *out to the live
   cell. (The caller has checked the runtime is open.) */
static inline enum xi_where xi_ref_where(struct xi_slots *slots, uint64_t id,
                                         struct xi_cell **out)
{
    if (xi_ref_node(id) != 0)
        return XI_REF_REMOTE;
    bool marked;
    struct xi_cell *c = xi_slot_cell(slots, xi_ref_index(id), &marked);
    if (c == NULL || marked || c->id != id) /* another generation */
        return XI_REF_GONE;
    *out = c;
    return XI_REF_LOCAL;
}

/* The live local cell id names, or NULL. */
static inline struct xi_cell *xi_resolve(struct xi_slots *slots, uint64_t id)
{
    struct xi_cell *c = NULL;
    return xi_ref_where(slots, id, &c) == XI_REF_LOCAL ? c : NULL;
}

/* The same, also while the actor is being destroyed (unpublished, not yet
   reaped): for the cycle check, which follows a dying actor's waits. */
static inline struct xi_cell *xi_resolve_dying(struct xi_slots *slots,
                                               uint64_t id)
{
    if (xi_ref_node(id) != 0)
        return NULL;
    bool marked;
    struct xi_cell *c = xi_slot_cell(slots, xi_ref_index(id), &marked);
    if (c == NULL || c->id != id)
        return NULL;
    return c;
}

/* The live (published, not dying) cell in slot `index`, or NULL. */
static inline struct xi_cell *xi_slot_live_cell(struct xi_slots *slots,
                                                uint32_t index)
{
    bool marked;
    struct xi_cell *c = xi_slot_cell(slots, index, &marked);
    return marked ? NULL : c;
}

#endif /* XI_RUNTIME_CELL_H */
