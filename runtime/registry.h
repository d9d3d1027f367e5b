/*
 * registry -- uid -> ref, on liburcu's lock-free resizable hash table
 * (rculfhash). Lookups are wait-free readers inside an RCU read-side
 * section; insertion is add_unique, so two spawns racing for one uid see
 * exactly one winner. A removed name is freed after a grace period by
 * whoever removed it (the destroy path defers it with the cell).
 *
 * Concurrency contract
 *   xo_registry_add / find / remove: any thread, inside xo_rcu_lock.
 *   xo_registry_init / fini: one thread, no concurrent users.
 */
#ifndef XO_RUNTIME_REGISTRY_H
#define XO_RUNTIME_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rcu.h"

struct xo_name {
    struct cds_lfht_node node;
    uint64_t ref_id;
    /* The uid is reserved from add on, but lookups find it only once its
       actor finished on_create (release store; acquire in find). */
    _Atomic bool visible;
    unsigned long hash;
    size_t len;
    char uid[]; /* NUL-terminated */
};

struct xo_registry {
    struct cds_lfht *ht;
};

int xo_registry_init(struct xo_registry *r);
/* Frees every name left (there must be no readers) and the table. */
void xo_registry_fini(struct xo_registry *r,
                      void (*free_name)(struct xo_name *, void *), void *arg);

/* Fills name->hash; the caller filled uid, len and ref_id. */
int xo_registry_add(struct xo_registry *r, struct xo_name *name);
/* XO_ENOTEXIST also while the name is reserved but not yet visible. */
int xo_registry_find(struct xo_registry *r, const char *uid, size_t len,
                     uint64_t *ref_id);
void xo_registry_remove(struct xo_registry *r, struct xo_name *name);

#endif /* XO_RUNTIME_REGISTRY_H */
