/*
 * slots -- the table behind refs. A ref names a slot (index) and the
 * generation of the actor that held it. A slot points at its live cell or
 * at nothing; the cell carries its own generation, fixed at spawn, so a
 * reader that loads the pointer and compares the generation can never be
 * fooled by a slot that was reused in between: a stale ref either finds no
 * cell or a cell of another generation, and gets XO_ENOTEXIST.
 *
 * The table is a directory of fixed-size segments. Segments are allocated
 * as the table grows and never move or shrink while the runtime lives, so a
 * reader needs no lock to reach a slot; the cell behind it is protected by
 * RCU (see rcu.h).
 *
 * Concurrency contract
 *   xi_slots_get:       any thread, lock-free (two acquire loads).
 *   xi_slots_take/give: any thread; a mutex guards the free list (taken
 *                       once per spawn and per reclaim, never per send).
 */
#ifndef XI_RUNTIME_SLOTS_H
#define XI_RUNTIME_SLOTS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "../alloc/alloc.h"
#include "xoscar/xoscar.h"

struct xi_cell;

#define XI_SLOT_SEG_SHIFT 12u
#define XI_SLOT_SEG_SIZE (1u << XI_SLOT_SEG_SHIFT)
#define XI_SLOT_MAX_SEGS (1u << 16) /* 2^28 slots */
/* Generations are 24 bits (a ref's id keeps the rest for the index and the
   node, cell.h) and never 0. */
#define XI_SLOT_GEN_MASK ((1u << 24) - 1u)

_Static_assert((uint64_t)XI_SLOT_SEG_SIZE * XI_SLOT_MAX_SEGS == XO_ACTORS_MAX,
               "the slot table holds XO_ACTORS_MAX actors");

struct xi_slot {
    /* The live cell, or NULL. Written with release (spawn) or CAS
       (destroy); read with acquire by senders inside an RCU section. */
    _Atomic(struct xi_cell *) cell;
    uint32_t next_gen;  /* generation the next cell here gets (24 bits);
                           under lock */
    uint32_t next_free; /* free list link (index + 1); under lock */
};

struct xi_slots {
    _Atomic(struct xi_slot *) *segs; /* XI_SLOT_MAX_SEGS entries */
    /* Slots ever handed out: indexes below it are valid. release on
       growth, acquire in readers that iterate (stop). */
    _Atomic uint32_t count;
    pthread_mutex_t lock;
    uint32_t free_head; /* index + 1 of the first free slot, 0: none */
};

int xi_slots_init(struct xi_slots *s, struct xi_allocator *a);
void xi_slots_fini(struct xi_slots *s, struct xi_allocator *a);
/* A free slot and the generation its next cell must carry. XO_ENOMEM when
   a segment cannot be allocated or the table is full. */
int xi_slots_take(struct xi_slots *s, struct xi_allocator *a,
                  uint32_t *index, uint32_t *gen);
/* Return a slot whose cell was unpublished and reclaimed. */
void xi_slots_give(struct xi_slots *s, uint32_t index);

static inline struct xi_slot *xi_slots_get(struct xi_slots *s, uint32_t index)
{
    uint32_t seg = index >> XI_SLOT_SEG_SHIFT;
    if (seg >= XI_SLOT_MAX_SEGS)
        return NULL;
    /* acquire: pairs with the release store of a new segment in take. */
    struct xi_slot *base =
        atomic_load_explicit(&s->segs[seg], memory_order_acquire);
    return base ? &base[index & (XI_SLOT_SEG_SIZE - 1)] : NULL;
}

#endif /* XI_RUNTIME_SLOTS_H */
