/*
 * registry.c -- uid table over rculfhash (design in registry.h).
 *
 * Under ThreadSanitizer the hash table's own publication of a node is
 * invisible (liburcu is not instrumented), so add releases on the name and
 * the match function acquires it before reading the key.
 */
#include "registry.h"

#include <string.h>

#include "xoscar/xoscar.h"

struct key {
    const char *uid;
    size_t len;
};

/* FNV-1a, 64 bit: short keys, no need for more. */
static unsigned long hash_uid(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return (unsigned long)h;
}

static int match(struct cds_lfht_node *node, const void *keyp)
{
    struct xi_name *n = caa_container_of(node, struct xi_name, node);
    const struct key *k = keyp;
    XI_TSAN_ACQUIRE(n);
    return n->len == k->len && memcmp(n->uid, k->uid, k->len) == 0;
}

int xi_registry_init(struct xi_registry *r)
{
    r->ht = cds_lfht_new_flavor(64, 64, 0,
                                CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
                                &urcu_bp_flavor, NULL);
    return r->ht ? 0 : XO_ENOMEM;
}

void xi_registry_fini(struct xi_registry *r,
                      void (*free_name)(struct xi_name *, void *), void *arg)
{
    struct cds_lfht_iter it;
    struct cds_lfht_node *node;
    urcu_bp_read_lock();
    cds_lfht_first(r->ht, &it);
    while ((node = cds_lfht_iter_get_node(&it)) != NULL) {
        struct xi_name *n = caa_container_of(node, struct xi_name, node);
        cds_lfht_next(r->ht, &it);
        cds_lfht_del(r->ht, node);
        XI_TSAN_ACQUIRE(n);
        free_name(n, arg);
    }
    urcu_bp_read_unlock();
    cds_lfht_destroy(r->ht, NULL);
    r->ht = NULL;
}

int xi_registry_add(struct xi_registry *r, struct xi_name *name)
{
    struct key k = { name->uid, name->len };
    name->hash = hash_uid(name->uid, name->len);
    cds_lfht_node_init(&name->node);
    XI_TSAN_RELEASE(name);
    struct cds_lfht_node *got =
        cds_lfht_add_unique(r->ht, name->hash, match, &k, &name->node);
    return got == &name->node ? 0 : XO_EEXIST;
}

int xi_registry_find(struct xi_registry *r, const char *uid, size_t len,
                     uint64_t *ref_id)
{
    struct key k = { uid, len };
    struct cds_lfht_iter it;
    cds_lfht_lookup(r->ht, hash_uid(uid, len), match, &k, &it);
    struct cds_lfht_node *node = cds_lfht_iter_get_node(&it);
    if (node == NULL)
        return XO_ENOTEXIST;
    struct xi_name *n = caa_container_of(node, struct xi_name, node);
    /* acquire: pairs with the release store of `visible` by the spawner. */
    if (!atomic_load_explicit(&n->visible, memory_order_acquire))
        return XO_ENOTEXIST;
    *ref_id = n->ref_id;
    return 0;
}

void xi_registry_remove(struct xi_registry *r, struct xi_name *name)
{
    (void)cds_lfht_del(r->ht, &name->node);
}
