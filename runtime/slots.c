/*
 * slots.c -- the ref table (design in slots.h). Free slots are reused in
 * LIFO order so a busy spawn/destroy loop keeps touching the same cache
 * lines; every reuse advances the slot's generation (24 bits, wrapping),
 * skipping 0 so that no live ref ever has a zero id.
 */
#include "slots.h"

#include <string.h>

#include "xoscar/xoscar.h"

int xi_slots_init(struct xi_slots *s, struct xi_allocator *a)
{
    s->segs = xi_mem_zalloc(a, sizeof(*s->segs) * XI_SLOT_MAX_SEGS);
    if (s->segs == NULL)
        return XO_ENOMEM;
    atomic_init(&s->count, 0);
    s->free_head = 0;
    pthread_mutex_init(&s->lock, NULL);
    return 0;
}

void xi_slots_fini(struct xi_slots *s, struct xi_allocator *a)
{
    for (uint32_t i = 0; i < XI_SLOT_MAX_SEGS; i++) {
        struct xi_slot *seg =
            /* relaxed: teardown, no other thread is left. */
            atomic_load_explicit(&s->segs[i], memory_order_relaxed);
        if (seg == NULL)
            break;
        xi_mem_free(a, seg, sizeof(*seg) * XI_SLOT_SEG_SIZE);
    }
    xi_mem_free(a, s->segs, sizeof(*s->segs) * XI_SLOT_MAX_SEGS);
    pthread_mutex_destroy(&s->lock);
}

static uint32_t first_gen(uint32_t gen)
{
    gen &= XI_SLOT_GEN_MASK;
    return gen == 0 ? 1 : gen;
}

int xi_slots_take(struct xi_slots *s, struct xi_allocator *a,
                  uint32_t *index, uint32_t *gen)
{
    pthread_mutex_lock(&s->lock);
    if (s->free_head != 0) {
        uint32_t i = s->free_head - 1;
        struct xi_slot *slot = xi_slots_get(s, i);
        s->free_head = slot->next_free;
        *index = i;
        *gen = slot->next_gen = first_gen(slot->next_gen);
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    /* relaxed: count is only written under the lock. */
    uint32_t i = atomic_load_explicit(&s->count, memory_order_relaxed);
    uint32_t seg = i >> XI_SLOT_SEG_SHIFT;
    if (seg >= XI_SLOT_MAX_SEGS) {
        pthread_mutex_unlock(&s->lock);
        return XO_ENOMEM;
    }
    if ((i & (XI_SLOT_SEG_SIZE - 1)) == 0) {
        struct xi_slot *base =
            xi_mem_zalloc(a, sizeof(*base) * XI_SLOT_SEG_SIZE);
        if (base == NULL) {
            pthread_mutex_unlock(&s->lock);
            return XO_ENOMEM;
        }
        /* release: pairs with the acquire load in xi_slots_get; readers
           see the zeroed slots. */
        atomic_store_explicit(&s->segs[seg], base, memory_order_release);
    }
    struct xi_slot *slot = xi_slots_get(s, i);
    slot->next_gen = 1;
    /* release: pairs with the acquire load of count by stop's sweep. */
    atomic_store_explicit(&s->count, i + 1, memory_order_release);
    *index = i;
    *gen = 1;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void xi_slots_give(struct xi_slots *s, uint32_t index)
{
    pthread_mutex_lock(&s->lock);
    struct xi_slot *slot = xi_slots_get(s, index);
    slot->next_gen = first_gen(slot->next_gen + 1);
    slot->next_free = s->free_head;
    s->free_head = index + 1;
    pthread_mutex_unlock(&s->lock);
}
