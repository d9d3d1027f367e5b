/*
 * map.h -- a small hash map from nonzero 64-bit keys to pointers: open
 * addressing, linear probing, deletion by backward shift (no tombstones,
 * so a table that sees many inserts and removals keeps short probes).
 * Used for the calls in flight per peer and the agent's monitors. Not
 * thread-safe: each user says what guards it. Its tables come from calloc,
 * as the relation table's do (docs/architecture.md): an insert that cannot
 * grow the table fails, and its caller answers XO_ENOMEM.
 */
#ifndef XI_NET_MAP_H
#define XI_NET_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct xi_map_slot {
    uint64_t key; /* 0: empty */
    void *value;
};

struct xi_map {
    struct xi_map_slot *slots;
    size_t mask;  /* slots - 1, or 0 with no table yet */
    size_t len;
};

static inline size_t xi_map_hash(uint64_t key)
{
    key ^= key >> 33;
    key *= UINT64_C(0xff51afd7ed558ccd);
    key ^= key >> 33;
    return (size_t)key;
}

static inline void *xi_map_get(const struct xi_map *m, uint64_t key)
{
    if (m->slots == NULL)
        return NULL;
    for (size_t i = xi_map_hash(key) & m->mask;; i = (i + 1) & m->mask) {
        if (m->slots[i].key == key)
            return m->slots[i].value;
        if (m->slots[i].key == 0)
            return NULL;
    }
}

static inline void xi_map_place(struct xi_map *m, uint64_t key, void *value)
{
    size_t i = xi_map_hash(key) & m->mask;
    while (m->slots[i].key != 0)
        i = (i + 1) & m->mask;
    m->slots[i].key = key;
    m->slots[i].value = value;
    m->len++;
}

/* Insert (key absent). 0, or -1 when the table cannot grow. */
static inline int xi_map_put(struct xi_map *m, uint64_t key, void *value)
{
    if (m->slots == NULL || (m->len + 1) * 4 > (m->mask + 1) * 3) {
        size_t n = m->slots == NULL ? 16 : (m->mask + 1) * 2;
        struct xi_map_slot *old = m->slots;
        size_t old_n = m->slots == NULL ? 0 : m->mask + 1;
        struct xi_map_slot *s = calloc(n, sizeof(*s));
        if (s == NULL)
            return -1;
        m->slots = s;
        m->mask = n - 1;
        m->len = 0;
        for (size_t i = 0; i < old_n; i++)
            if (old[i].key != 0)
                xi_map_place(m, old[i].key, old[i].value);
        free(old);
    }
    xi_map_place(m, key, value);
    return 0;
}

/* Remove key; returns its value, or NULL if absent. */
static inline void *xi_map_del(struct xi_map *m, uint64_t key)
{
    if (m->slots == NULL)
        return NULL;
    size_t i = xi_map_hash(key) & m->mask;
    while (m->slots[i].key != key) {
        if (m->slots[i].key == 0)
            return NULL;
        i = (i + 1) & m->mask;
    }
    void *value = m->slots[i].value;
    /* Backward shift: pull later entries of the run into the hole when
       their home is at or before it. */
    size_t hole = i;
    for (size_t j = (i + 1) & m->mask; m->slots[j].key != 0;
         j = (j + 1) & m->mask) {
        size_t home = xi_map_hash(m->slots[j].key) & m->mask;
        if (((j - home) & m->mask) >= ((j - hole) & m->mask)) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].key = 0;
    m->slots[hole].value = NULL;
    m->len--;
    return value;
}

static inline void xi_map_free(struct xi_map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->mask = m->len = 0;
}

/* Slots to walk (an entry is a slot with a nonzero key). */
static inline size_t xi_map_cap(const struct xi_map *m)
{
    return m->slots == NULL ? 0 : m->mask + 1;
}

#endif /* XI_NET_MAP_H */
