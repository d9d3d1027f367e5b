/*
 * registry -- uid -> ref, on liburcu's lock-free resizable hash table
 * (rculfhash). Lookups are wait-free readers inside an RCU read-side
 * section; insertion is add_unique, so two spawns racing for one uid see
 * exactly one winner. A removed name is freed after a grace period by
 * whoever removed it (the destroy path defers it with the cell).
 *
 * Concurrency contract
 *   xi_registry_add / find / remove: any thread, inside xi_rcu_lock.
 *   xi_registry_init / fini: one thread, no concurrent users.
 */
#ifndef XI_RUNTIME_REGISTRY_H
#define XI_RUNTIME_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rcu.h"

struct xi_name {
    struct cds_lfht_node node;
    uint64_t ref_id;
    /* The uid is reserved from add on, but lookups find it only once its
       actor finished on_create (release store; acquire in find). */
    _Atomic bool visible;
    unsigned long hash;
    size_t len;
    char uid[]; /* NUL-terminated */
};

struct xi_registry {
    struct cds_lfht *ht;
};

int xi_registry_init(struct xi_registry *r);
/* Frees every name left (there must be no readers) and the table. */
void xi_registry_fini(struct xi_registry *r,
                      void (*free_name)(struct xi_name *, void *), void *arg);

/* Fills name->hash; the caller filled uid, len and ref_id. */
int xi_registry_add(struct xi_registry *r, struct xi_name *name);
/* XO_ENOTEXIST also while the name is reserved but not yet visible. */
int xi_registry_find(struct xi_registry *r, const char *uid, size_t len,
                     uint64_t *ref_id);
void xi_registry_remove(struct xi_registry *r, struct xi_name *name);

#endif /* XI_RUNTIME_REGISTRY_H */
