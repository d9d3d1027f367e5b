/*
 * recovery.c -- failures, restarts, monitors and links (design in
 * recovery.h; the user's account in docs/recovery.md).
 *
 * Nothing here is on the send path. A turn calls in only when a handler
 * failed the actor, when a SIGNAL envelope reaches the front of a mailbox,
 * or when a suspended actor is resumed (its RESUME item); the exit point
 * only for cells whose WATCHED or SUPERVISED flag is set.
 *
 * What must not be lost is made in advance: a monitor's DOWN envelope is
 * allocated by xo_monitor, a link's two signals by xo_link, a supervised
 * child's report and exit notice at its spawn, and the backoff timer lives
 * in the recovery record. A failure or an exit therefore never needs
 * memory to tell anyone.
 */
#include "runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Reason text a DOWN or EXIT carries, NUL included; longer is cut. */
#define XI_DOWN_TEXT 128u
#define XI_DOWN_SIZE (sizeof(xo_down_t) + XI_DOWN_TEXT)

const char *xo_exit_reason_name(xo_exit_reason_t reason)
{
    switch (reason) {
    case XO_EXIT_DESTROYED: return "destroyed";
    case XO_EXIT_FAILED: return "failed";
    case XO_EXIT_RESTART_INTENSITY: return "restart intensity reached";
    case XO_EXIT_POOL_REMOVED: return "pool removed";
    case XO_EXIT_STOPPING: return "runtime stopping";
    case XO_EXIT_NODE_LOST: return "node lost";
    case XO_EXIT_NO_SUCH_ACTOR: return "no such actor";
    case XO_EXIT_DEVICE_FAILED: return "device failed";
    }
    return "unknown exit reason";
}

_Static_assert((int)XI_EXIT_DESTROYED == (int)XO_EXIT_DESTROYED &&
                   (int)XI_EXIT_FAILED == (int)XO_EXIT_FAILED &&
                   (int)XI_EXIT_RESTART_INTENSITY ==
                       (int)XO_EXIT_RESTART_INTENSITY &&
                   (int)XI_EXIT_POOL_REMOVED == (int)XO_EXIT_POOL_REMOVED &&
                   (int)XI_EXIT_STOPPING == (int)XO_EXIT_STOPPING &&
                   (int)XI_EXIT_NODE_LOST == (int)XO_EXIT_NODE_LOST &&
                   (int)XI_EXIT_DEVICE_FAILED == (int)XO_EXIT_DEVICE_FAILED,
               "an exit kind is the public reason");

/* ---- the record ------------------------------------------------------ */

int xi_recovery_check(const xo_actor_def_t *def, const xo_spawn_opts_t *o)
{
    if ((unsigned)o->restart > XO_RESTART_ALWAYS)
        return XO_EINVAL;
    bool stateless = (def->flags & XO_ACTOR_STATELESS) != 0;
    if (stateless && (o->restart != XO_RESTART_NEVER || o->crash_on_error ||
                      o->trap_exits || o->backoff_min_ns != 0))
        return XO_EINVAL; /* no state to restart, no turn to fail */
    if (o->restart != XO_RESTART_NEVER &&
        (o->restart_max == 0 || o->restart_max > XO_RESTART_MAX ||
         o->restart_period_ns == 0))
        return XO_EINVAL;
    if (o->backoff_jitter_pct > 100 ||
        (o->backoff_max_ns != 0 && o->backoff_max_ns < o->backoff_min_ns))
        return XO_EINVAL;
    return 0;
}

size_t xi_recovery_size(const xo_spawn_opts_t *o, bool supervised)
{
    if (supervised)
        return sizeof(struct xi_recovery) + sizeof(uint64_t);
    if (o->restart == XO_RESTART_NEVER)
        return 0;
    return sizeof(struct xi_recovery) + o->restart_max * sizeof(uint64_t);
}

static void backoff_fire(struct xi_timer *t, struct xi_worker *w);
static void backoff_drop(struct xi_timer *t, xo_runtime_t *rt, int why);
static bool backoff_urgent(struct xi_timer *t);

void xi_recovery_init(struct xi_cell *c, const xo_spawn_opts_t *o,
                      uint64_t sup_id)
{
    uint8_t fl = 0;
    if (o->trap_exits)
        fl |= XI_CF_TRAP;
    if (o->crash_on_error)
        fl |= XI_CF_CRASH;
    if (sup_id != 0 || o->restart != XO_RESTART_NEVER) {
        fl |= XI_CF_RECOVERY;
        struct xi_recovery *r = xi_cell_recovery(c);
        r->policy = (uint8_t)o->restart;
        r->max = sup_id != 0 ? 1 : o->restart_max;
        r->period_ns = o->restart_period_ns;
        r->backoff_min_ns = o->backoff_min_ns;
        r->backoff_max_ns = o->backoff_max_ns ? o->backoff_max_ns
                                              : o->backoff_min_ns;
        r->jitter_pct = o->backoff_jitter_pct;
        r->rng = (uintptr_t)c ^ xi_now_ns() ^ UINT64_C(0x9e3779b97f4a7c15);
        r->sup_id = sup_id;
        r->backoff_t.timer.fire = backoff_fire;
        r->backoff_t.timer.drop = backoff_drop;
        r->backoff_t.timer.urgent = backoff_urgent;
        r->backoff_t.cell = c;
        r->resume_item.kind = XI_K_RESUME;
        if (sup_id != 0)
            fl |= XI_CF_SUPERVISED;
    }
    atomic_init(&c->rflags, fl);
}

void xi_recovery_cell_free(struct xi_cell *c)
{
    if (!(xi_cell_rflags(c) & XI_CF_RECOVERY))
        return;
    struct xi_recovery *r = xi_cell_recovery(c);
    xi_mem_free_str(&c->rt->mem, r->fail_msg);
    r->fail_msg = NULL;
    if (r->report != NULL)
        xi_envelope_free(c->rt, r->report);
    if (r->gone != NULL)
        xi_envelope_free(c->rt, r->gone);
    r->report = r->gone = NULL;
}

/* ---- internal sends --------------------------------------------------- */

int xi_signal_new(xo_runtime_t *rt, uint32_t tag, size_t size,
                  struct xi_envelope **out)
{
    int rc = xi_envelope_new(rt, 0, size, out);
    if (rc == 0) {
        (*out)->item.kind = XI_K_SIGNAL;
        (*out)->msg.tag = tag;
    }
    return rc;
}

/* How a push may reach an actor while the runtime stops. */
enum push_mode {
    PUSH_OPEN,        /* not at all */
    PUSH_SUPERVISED,  /* a supervised target: its end goes through a grace
                         period (its supervisor's unpublish), never the
                         stop's sweep, so a live one is safe to push to */
    PUSH_PRE_SWEEP,   /* the relations lock is held and `swept` is false:
                         the sweep has not begun, no end is queued */
};

static int push_to(xo_runtime_t *rt, uint64_t to_id, struct xi_envelope *env,
                   enum push_mode mode)
{
    int rc = 0;
    xi_rcu_lock();
    struct xi_cell *c = xi_resolve(&rt->slots, to_id);
    if (c == NULL)
        rc = XO_ENOTEXIST;
    else if (xi_rt_closing(rt) &&
             !(mode == PUSH_PRE_SWEEP ||
               (mode == PUSH_SUPERVISED &&
                (xi_cell_rflags(c) & XI_CF_SUPERVISED))))
        rc = XO_ECLOSED;
    else if (c->stateless)
        rc = XO_EINVAL;
    else if (xi_mpscq_push(&c->mbox, &env->item.node))
        xi_schedule(c);
    xi_rcu_unlock(&rt->rcu_sync);
    return rc;
}

int xi_signal_push(xo_runtime_t *rt, uint64_t to_id, struct xi_envelope *env,
                   bool closing_ok)
{
    return push_to(rt, to_id, env, closing_ok ? PUSH_SUPERVISED : PUSH_OPEN);
}

/* ---- the relation table ------------------------------------------------ */

struct xi_mon {
    struct xi_hent h;                 /* key: the monitor's id */
    uint64_t watcher, target;
    struct xi_mon *t_next, **t_prev;  /* the target's (until fired) */
    struct xi_mon *w_next, **w_prev;  /* the watcher's */
    struct xi_envelope *down;         /* its DOWN, until fired */
    bool fired;                       /* DOWN is on its way */
};

struct xi_link {
    uint64_t peer;
    struct xi_link *next;
    struct xi_envelope *sig;          /* to the peer, should we fail */
};

struct xi_rnode {
    struct xi_hent h;                 /* key: the actor's id */
    struct xi_mon *targeted;          /* monitors on it, not yet fired */
    struct xi_mon *held;              /* monitors it holds */
    struct xi_link *links;
    int fail_code;                    /* the failure it ends with */
    char *fail_msg;                   /* owned */
};

static size_t hash_of(uint64_t key, size_t mask)
{
    key ^= key >> 33;
    key *= UINT64_C(0xff51afd7ed558ccd);
    key ^= key >> 33;
    return (size_t)key & mask;
}

static int hmap_init(xo_runtime_t *rt, struct xi_hmap *m)
{
    (void)rt;
    m->mask = 63;
    m->len = 0;
    m->b = calloc(m->mask + 1, sizeof(*m->b));
    return m->b != NULL ? 0 : XO_ENOMEM;
}

static struct xi_hent *hmap_find(struct xi_hmap *m, uint64_t key)
{
    for (struct xi_hent *e = m->b[hash_of(key, m->mask)]; e != NULL;
         e = e->next)
        if (e->key == key)
            return e;
    return NULL;
}

/* Grows by doubling when it can; a table that could not grow still works
   (longer chains), so an insert never fails. */
static void hmap_insert(struct xi_hmap *m, struct xi_hent *e)
{
    if (m->len >= m->mask + 1) {
        size_t nmask = m->mask * 2 + 1;
        struct xi_hent **nb = calloc(nmask + 1, sizeof(*nb));
        if (nb != NULL) {
            for (size_t i = 0; i <= m->mask; i++) {
                struct xi_hent *x = m->b[i];
                while (x != NULL) {
                    struct xi_hent *next = x->next;
                    size_t j = hash_of(x->key, nmask);
                    x->next = nb[j];
                    nb[j] = x;
                    x = next;
                }
            }
            free(m->b);
            m->b = nb;
            m->mask = nmask;
        }
    }
    size_t i = hash_of(e->key, m->mask);
    e->next = m->b[i];
    m->b[i] = e;
    m->len++;
}

static void hmap_remove(struct xi_hmap *m, struct xi_hent *e)
{
    for (struct xi_hent **p = &m->b[hash_of(e->key, m->mask)]; *p != NULL;
         p = &(*p)->next) {
        if (*p == e) {
            *p = e->next;
            m->len--;
            return;
        }
    }
}

int xi_relations_init(struct xi_relations *r)
{
    memset(r, 0, sizeof(*r));
    if (pthread_mutex_init(&r->lock, NULL) != 0)
        return XO_ENOMEM;
    if (hmap_init(NULL, &r->nodes) != 0 || hmap_init(NULL, &r->monitors) != 0) {
        free(r->nodes.b);
        pthread_mutex_destroy(&r->lock);
        return XO_ENOMEM;
    }
    r->next_monitor = 1;
    return 0;
}

static void free_link(xo_runtime_t *rt, struct xi_link *l)
{
    if (l->sig != NULL)
        xi_envelope_free(rt, l->sig);
    xi_mem_free(&rt->mem, l, sizeof(*l));
}

static void free_mon(xo_runtime_t *rt, struct xi_mon *m)
{
    if (m->down != NULL)
        xi_envelope_free(rt, m->down);
    xi_mem_free(&rt->mem, m, sizeof(*m));
}

/* At xo_runtime_free: every actor has exited, so the table is empty but
   for monitors whose DOWN was fired into a mailbox that ended first. */
void xi_relations_fini(xo_runtime_t *rt, struct xi_relations *r)
{
    for (size_t i = 0; i <= r->monitors.mask; i++) {
        struct xi_hent *e = r->monitors.b[i];
        while (e != NULL) {
            struct xi_hent *next = e->next;
            free_mon(rt, (struct xi_mon *)e);
            e = next;
        }
    }
    for (size_t i = 0; i <= r->nodes.mask; i++) {
        struct xi_hent *e = r->nodes.b[i];
        while (e != NULL) {
            struct xi_hent *next = e->next;
            struct xi_rnode *n = (struct xi_rnode *)e;
            while (n->links != NULL) {
                struct xi_link *l = n->links;
                n->links = l->next;
                free_link(rt, l);
            }
            xi_mem_free_str(&rt->mem, n->fail_msg);
            xi_mem_free(&rt->mem, n, sizeof(*n));
            e = next;
        }
    }
    free(r->monitors.b);
    free(r->nodes.b);
    pthread_mutex_destroy(&r->lock);
}

static struct xi_rnode *node_find(struct xi_relations *r, uint64_t id)
{
    return (struct xi_rnode *)hmap_find(&r->nodes, id);
}

static struct xi_rnode *node_get(xo_runtime_t *rt, uint64_t id)
{
    struct xi_rnode *n = node_find(&rt->rel, id);
    if (n != NULL)
        return n;
    n = xi_mem_zalloc(&rt->mem, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->h.key = id;
    hmap_insert(&rt->rel.nodes, &n->h);
    return n;
}

/* A node with nothing left in it goes. */
static void node_trim(xo_runtime_t *rt, struct xi_rnode *n)
{
    if (n->targeted != NULL || n->held != NULL || n->links != NULL ||
        n->fail_msg != NULL)
        return;
    hmap_remove(&rt->rel.nodes, &n->h);
    xi_mem_free(&rt->mem, n, sizeof(*n));
}

static void list_unlink_t(struct xi_mon *m)
{
    if (m->t_prev == NULL)
        return;
    *m->t_prev = m->t_next;
    if (m->t_next != NULL)
        m->t_next->t_prev = m->t_prev;
    m->t_prev = NULL;
    m->t_next = NULL;
}

static void list_unlink_w(struct xi_mon *m)
{
    if (m->w_prev == NULL)
        return;
    *m->w_prev = m->w_next;
    if (m->w_next != NULL)
        m->w_next->w_prev = m->w_prev;
    m->w_prev = NULL;
    m->w_next = NULL;
}

/* Fill a DOWN / EXIT payload in env (made for XI_DOWN_SIZE bytes, or for
   an offset `off` of them inside a LINK signal). */
static void fill_down(struct xi_envelope *env, size_t off, xo_ref_t actor,
                      uint64_t monitor, xo_exit_reason_t reason, int code,
                      const char *message)
{
    xo_down_t *d = (xo_down_t *)(void *)((char *)env->msg.data + off);
    d->actor = actor;
    d->monitor = monitor;
    d->reason = reason;
    d->code = code;
    size_t len = 0;
    if (message != NULL) {
        len = strnlen(message, XI_DOWN_TEXT - 1);
        memcpy(d->message, message, len);
    }
    d->message[len] = '\0';
    env->msg.size = (uint32_t)(off + sizeof(xo_down_t) + len + 1);
    env->msg.sender = actor;
}

/* Under the lock: send m's DOWN. A watcher that is gone drops it, and
   its node goes too if empty, unless it is `keep` (a node the caller is
   walking; NULL: trim none, the caller trims after its walk). */
static void fire_monitor(xo_runtime_t *rt, struct xi_mon *m,
                         xo_exit_reason_t reason, int code,
                         const char *message, enum push_mode mode,
                         bool trim, struct xi_rnode *keep)
{
    struct xi_envelope *env = m->down;
    m->down = NULL;
    m->fired = true;
    list_unlink_t(m);
    fill_down(env, 0, (xo_ref_t){ rt, m->target }, m->h.key, reason, code,
              message);
    if (push_to(rt, m->watcher, env, mode) != 0) {
        /* The watcher is gone: nobody to tell. */
        xi_envelope_free(rt, env);
        list_unlink_w(m);
        hmap_remove(&rt->rel.monitors, &m->h);
        struct xi_rnode *w = node_find(&rt->rel, m->watcher);
        xi_mem_free(&rt->mem, m, sizeof(*m));
        if (trim && w != NULL && w != keep)
            node_trim(rt, w);
    }
}

/* The mode of a push made under the lock. */
static enum push_mode locked_mode(xo_runtime_t *rt)
{
    return rt->rel.swept ? PUSH_OPEN : PUSH_PRE_SWEEP;
}

static int check_pair(xo_ref_t a, xo_ref_t b)
{
    if (a.rt == NULL || a.rt != b.rt)
        return XO_EINVAL;
    return 0;
}

int xo_monitor(xo_ref_t watcher, xo_ref_t target, xo_monitor_t *out)
{
    if (out == NULL || check_pair(watcher, target) != 0)
        return XO_EINVAL;
    xo_runtime_t *rt = watcher.rt;
    struct xi_mon *m = xi_mem_zalloc(&rt->mem, sizeof(*m));
    if (m == NULL)
        return XO_ENOMEM;
    int rc = xi_signal_new(rt, XO_TAG_DOWN, XI_DOWN_SIZE, &m->down);
    if (rc != 0) {
        xi_mem_free(&rt->mem, m, sizeof(*m));
        return rc;
    }
    m->watcher = watcher.id;
    m->target = target.id;
    xi_rcu_lock();
    pthread_mutex_lock(&rt->rel.lock);
    struct xi_cell *w = NULL, *t = NULL;
    struct xi_rnode *wn = NULL, *tn = NULL;
    if (xi_rt_closing(rt))
        rc = XO_ECLOSED;
    else if ((w = xi_resolve(&rt->slots, watcher.id)) == NULL)
        rc = XO_ENOTEXIST;
    else if (w->stateless)
        rc = XO_EINVAL;
    else if ((wn = node_get(rt, watcher.id)) == NULL)
        rc = XO_ENOMEM;
    /* A target on another node is watched there (the remote-monitor
       seam): its node in the table stands for it until its end comes. */
    xi_watch_fn watch = NULL;
    if (rc == 0 && xi_ref_node(target.id) != 0)
        /* acquire: pairs with the release store of the layer that set it
           (its argument was written before). */
        watch = atomic_load_explicit(&rt->watch_remote, memory_order_acquire);
    if (rc == 0) {
        t = watch != NULL ? NULL : xi_resolve(&rt->slots, target.id);
        if ((t != NULL || watch != NULL) &&
            (tn = node_get(rt, target.id)) == NULL)
            rc = XO_ENOMEM;
    }
    /* Ask the other node first: a full send queue (or no memory for the
       request) refuses the monitor; a lost node gives DOWN at once. The
       lock keeps the node's loss, and the DOWN from there, behind us. */
    bool lost = false;
    if (rc == 0 && watch != NULL) {
        int wrc = watch(rt, target.id, rt->watch_remote_arg);
        if (wrc == XO_EFULL || wrc == XO_ENOMEM)
            rc = wrc;
        else
            lost = wrc != 0;
        if (rc != 0)
            node_trim(rt, tn);
    }
    if (rc == 0) {
        m->h.key = rt->rel.next_monitor++;
        hmap_insert(&rt->rel.monitors, &m->h);
        m->w_next = wn->held;
        if (wn->held != NULL)
            wn->held->w_prev = &m->w_next;
        wn->held = m;
        m->w_prev = &wn->held;
        xi_cell_set_rflags(w, XI_CF_WATCHED);
        *out = (xo_monitor_t){ target, m->h.key };
        if (watch != NULL) {
            m->t_next = tn->targeted;
            if (tn->targeted != NULL)
                tn->targeted->t_prev = &m->t_next;
            tn->targeted = m;
            m->t_prev = &tn->targeted;
            if (lost)
                fire_monitor(rt, m, XO_EXIT_NODE_LOST, 0, NULL,
                             locked_mode(rt), true, tn);
            node_trim(rt, tn);
        } else if (t == NULL) {
            /* Gone already (or remote, with no node layer to ask). */
            fire_monitor(rt, m, XO_EXIT_NO_SUCH_ACTOR, 0, NULL, PUSH_OPEN,
                         false, NULL);
            wn = node_find(&rt->rel, watcher.id);
            if (wn != NULL)
                node_trim(rt, wn);
        } else {
            m->t_next = tn->targeted;
            if (tn->targeted != NULL)
                tn->targeted->t_prev = &m->t_next;
            tn->targeted = m;
            m->t_prev = &tn->targeted;
            xi_cell_set_rflags(t, XI_CF_WATCHED);
        }
        m = NULL;
    } else if (wn != NULL) {
        node_trim(rt, wn);
    }
    pthread_mutex_unlock(&rt->rel.lock);
    xi_rcu_unlock(&rt->rcu_sync);
    if (m != NULL)
        free_mon(rt, m);
    return rc;
}

int xo_demonitor(const xo_monitor_t *mon)
{
    if (mon == NULL || mon->target.rt == NULL || mon->id == 0)
        return XO_EINVAL;
    xo_runtime_t *rt = mon->target.rt;
    int rc = 0;
    pthread_mutex_lock(&rt->rel.lock);
    struct xi_mon *m = (struct xi_mon *)hmap_find(&rt->rel.monitors, mon->id);
    if (m == NULL || m->target != mon->target.id) {
        rc = XO_ENOTEXIST;
    } else {
        /* A fired DOWN still queued finds no monitor and is dropped. */
        list_unlink_t(m);
        list_unlink_w(m);
        hmap_remove(&rt->rel.monitors, &m->h);
        struct xi_rnode *w = node_find(&rt->rel, m->watcher);
        struct xi_rnode *t = node_find(&rt->rel, m->target);
        free_mon(rt, m);
        if (w != NULL)
            node_trim(rt, w);
        if (t != NULL && t != w)
            node_trim(rt, t);
    }
    pthread_mutex_unlock(&rt->rel.lock);
    return rc;
}

/* The link of n to peer, with the link before it (for removal). */
static struct xi_link **link_find(struct xi_rnode *n, uint64_t peer)
{
    for (struct xi_link **p = &n->links; *p != NULL; p = &(*p)->next)
        if ((*p)->peer == peer)
            return p;
    return NULL;
}

static int new_link(xo_runtime_t *rt, uint64_t peer, struct xi_link **out)
{
    struct xi_link *l = xi_mem_zalloc(&rt->mem, sizeof(*l));
    if (l == NULL)
        return XO_ENOMEM;
    int rc = xi_signal_new(rt, XI_TAG_LINK, sizeof(uint64_t) + XI_DOWN_SIZE,
                           &l->sig);
    if (rc != 0) {
        xi_mem_free(&rt->mem, l, sizeof(*l));
        return rc;
    }
    l->peer = peer;
    *out = l;
    return 0;
}

int xo_link(xo_ref_t a, xo_ref_t b)
{
    if (check_pair(a, b) != 0 || a.id == b.id)
        return XO_EINVAL;
    xo_runtime_t *rt = a.rt;
    struct xi_link *la = NULL, *lb = NULL;
    int rc = new_link(rt, b.id, &la);
    if (rc == 0)
        rc = new_link(rt, a.id, &lb);
    if (rc != 0) {
        if (la != NULL)
            free_link(rt, la);
        return rc;
    }
    xi_rcu_lock();
    pthread_mutex_lock(&rt->rel.lock);
    struct xi_cell *ca = NULL, *cb = NULL;
    struct xi_rnode *na = NULL, *nb = NULL;
    if (xi_rt_closing(rt))
        rc = XO_ECLOSED;
    else if ((ca = xi_resolve(&rt->slots, a.id)) == NULL ||
             (cb = xi_resolve(&rt->slots, b.id)) == NULL)
        rc = XO_ENOTEXIST;
    else if (ca->stateless || cb->stateless)
        rc = XO_EINVAL;
    else if ((na = node_get(rt, a.id)) == NULL ||
             (nb = node_get(rt, b.id)) == NULL)
        rc = XO_ENOMEM;
    if (rc == 0 && link_find(na, b.id) == NULL) {
        la->next = na->links;
        na->links = la;
        lb->next = nb->links;
        nb->links = lb;
        la = lb = NULL;
        xi_cell_set_rflags(ca, XI_CF_WATCHED);
        xi_cell_set_rflags(cb, XI_CF_WATCHED);
    }
    if (rc != 0) {
        if (na != NULL)
            node_trim(rt, na);
        if (nb != NULL)
            node_trim(rt, nb);
    }
    pthread_mutex_unlock(&rt->rel.lock);
    xi_rcu_unlock(&rt->rcu_sync);
    if (la != NULL)
        free_link(rt, la);
    if (lb != NULL)
        free_link(rt, lb);
    return rc;
}

/* Under the lock: take the link of `from` to `to` out of from's node. */
static struct xi_link *link_take(xo_runtime_t *rt, uint64_t from,
                                 uint64_t to)
{
    struct xi_rnode *n = node_find(&rt->rel, from);
    struct xi_link **p = n != NULL ? link_find(n, to) : NULL;
    if (p == NULL)
        return NULL;
    struct xi_link *l = *p;
    *p = l->next;
    node_trim(rt, n);
    return l;
}

int xo_unlink(xo_ref_t a, xo_ref_t b)
{
    if (check_pair(a, b) != 0 || a.id == b.id)
        return XO_EINVAL;
    xo_runtime_t *rt = a.rt;
    pthread_mutex_lock(&rt->rel.lock);
    struct xi_link *la = link_take(rt, a.id, b.id);
    struct xi_link *lb = link_take(rt, b.id, a.id);
    pthread_mutex_unlock(&rt->rel.lock);
    if (la != NULL)
        free_link(rt, la);
    if (lb != NULL)
        free_link(rt, lb);
    return la != NULL ? 0 : XO_ENOTEXIST;
}

/* c failed (on its worker): each link fires once, then is gone on both
   sides. The signal carries the peer's incarnation, so that a peer which
   restarted meanwhile (a new incarnation, never linked) ignores it. */
static void links_fire(xo_runtime_t *rt, struct xi_cell *c,
                       xo_exit_reason_t reason, int code, const char *message)
{
    uint64_t id = xi_cell_ref(c).id;
    xo_ref_t self = xi_cell_ref(c);
    xi_rcu_lock();
    pthread_mutex_lock(&rt->rel.lock);
    struct xi_rnode *n = node_find(&rt->rel, id);
    struct xi_link *l = n != NULL ? n->links : NULL;
    if (n != NULL) {
        n->links = NULL;
        node_trim(rt, n);
    }
    while (l != NULL) {
        struct xi_link *next = l->next;
        struct xi_link *back = link_take(rt, l->peer, id);
        if (back != NULL)
            free_link(rt, back);
        struct xi_cell *peer = xi_resolve(&rt->slots, l->peer);
        if (peer != NULL) {
            struct xi_envelope *env = l->sig;
            *(uint64_t *)env->msg.data = xi_cell_incarnation(peer);
            fill_down(env, sizeof(uint64_t), self, 0, reason, code, message);
            if (push_to(rt, l->peer, env, PUSH_SUPERVISED) == 0)
                l->sig = NULL;
        }
        free_link(rt, l);
        l = next;
    }
    pthread_mutex_unlock(&rt->rel.lock);
    xi_rcu_unlock(&rt->rcu_sync);
}

void xi_recovery_exit(xo_runtime_t *rt, struct xi_cell *c,
                      const struct xi_exit *why)
{
    uint64_t id = xi_cell_ref(c).id;
    uint8_t fl = xi_cell_rflags(c);
    if (fl & XI_CF_WATCHED) {
        pthread_mutex_lock(&rt->rel.lock);
        struct xi_rnode *n = node_find(&rt->rel, id);
        if (n != NULL) {
            while (n->targeted != NULL)
                fire_monitor(rt, n->targeted, (xo_exit_reason_t)why->kind,
                             n->fail_msg != NULL || why->code != 0
                                 ? (n->fail_msg != NULL ? n->fail_code
                                                        : why->code)
                                 : 0,
                             n->fail_msg != NULL ? n->fail_msg : why->message,
                             locked_mode(rt), true, n);
            while (n->held != NULL) {
                struct xi_mon *m = n->held;
                list_unlink_w(m);
                list_unlink_t(m);
                hmap_remove(&rt->rel.monitors, &m->h);
                struct xi_rnode *t = node_find(&rt->rel, m->target);
                free_mon(rt, m);
                if (t != NULL && t != n)
                    node_trim(rt, t);
            }
            /* Links that are left go quietly: an end that is not a
               failure does not propagate (a failure fired them already). */
            while (n->links != NULL) {
                struct xi_link *l = n->links;
                n->links = l->next;
                struct xi_link *back = link_take(rt, l->peer, id);
                if (back != NULL)
                    free_link(rt, back);
                free_link(rt, l);
            }
            xi_mem_free_str(&rt->mem, n->fail_msg);
            n->fail_msg = NULL;
            node_trim(rt, n);
        }
        pthread_mutex_unlock(&rt->rel.lock);
    }
    if (fl & XI_CF_SUPERVISED) {
        struct xi_recovery *r = xi_cell_recovery(c);
        struct xi_envelope *env = r->gone;
        r->gone = NULL;
        if (env == NULL)
            return;
        struct xi_sig_child *s = env->msg.data;
        *s = (struct xi_sig_child){ id, xi_cell_incarnation(c), why->code,
                                    false };
        if (xi_signal_push(rt, r->sup_id, env, true) != 0)
            xi_envelope_free(rt, env);
    }
}

void xi_recovery_remote_exit(xo_runtime_t *rt, uint64_t target,
                             xo_exit_reason_t reason, int code,
                             const char *message)
{
    pthread_mutex_lock(&rt->rel.lock);
    struct xi_rnode *n = node_find(&rt->rel, target);
    if (n != NULL) {
        while (n->targeted != NULL)
            fire_monitor(rt, n->targeted, reason, code, message,
                         locked_mode(rt), true, n);
        node_trim(rt, n);
    }
    pthread_mutex_unlock(&rt->rel.lock);
}

/* Every node entry left empty by the monitors fired before (not during
   their walk: a trim unlinks). Under rel.lock. */
static void trim_nodes(xo_runtime_t *rt)
{
    struct xi_hmap *nodes = &rt->rel.nodes;
    for (size_t i = 0; i <= nodes->mask; i++) {
        struct xi_hent *e = nodes->b[i];
        while (e != NULL) {
            struct xi_hent *next = e->next;
            node_trim(rt, (struct xi_rnode *)e);
            e = next;
        }
    }
}

void xi_recovery_node_lost(xo_runtime_t *rt, unsigned node,
                           const char *message)
{
    pthread_mutex_lock(&rt->rel.lock);
    struct xi_hmap *nodes = &rt->rel.nodes;
    /* Fire first, trim after: a trim unlinks from the buckets walked. */
    for (size_t i = 0; i <= nodes->mask; i++)
        for (struct xi_hent *e = nodes->b[i]; e != NULL; e = e->next) {
            struct xi_rnode *n = (struct xi_rnode *)e;
            if (xi_ref_node(e->key) != node)
                continue;
            while (n->targeted != NULL)
                fire_monitor(rt, n->targeted, XO_EXIT_NODE_LOST, 0, message,
                             locked_mode(rt), false, NULL);
        }
    trim_nodes(rt);
    pthread_mutex_unlock(&rt->rel.lock);
}

void xi_recovery_stopping(xo_runtime_t *rt)
{
    pthread_mutex_lock(&rt->rel.lock);
    struct xi_hmap *nodes = &rt->rel.nodes;
    for (size_t i = 0; i <= nodes->mask; i++) {
        for (struct xi_hent *e = nodes->b[i]; e != NULL; e = e->next) {
            struct xi_rnode *n = (struct xi_rnode *)e;
            while (n->targeted != NULL)
                fire_monitor(rt, n->targeted, XO_EXIT_STOPPING, 0, NULL,
                             PUSH_PRE_SWEEP, false, NULL);
        }
    }
    /* Then the nodes left empty (not during the walk: a trim unlinks). */
    trim_nodes(rt);
    rt->rel.swept = true;
    pthread_mutex_unlock(&rt->rel.lock);
}

/* The watcher's turn reached a DOWN: hand it over only if its monitor is
   still there (xo_demonitor removes it). */
static bool take_fired(xo_runtime_t *rt, uint64_t monitor)
{
    pthread_mutex_lock(&rt->rel.lock);
    struct xi_mon *m = (struct xi_mon *)hmap_find(&rt->rel.monitors, monitor);
    bool live = m != NULL && m->fired;
    if (live) {
        list_unlink_w(m);
        hmap_remove(&rt->rel.monitors, &m->h);
        struct xi_rnode *w = node_find(&rt->rel, m->watcher);
        free_mon(rt, m);
        if (w != NULL)
            node_trim(rt, w);
    }
    pthread_mutex_unlock(&rt->rel.lock);
    return live;
}

/* ---- the decisions ------------------------------------------------------ */

/* A handler run that is not a message: zero the crash mark it may leave. */
static int run_on_destroy(struct xo_ctx *ctx)
{
    struct xi_cell *c = ctx->cell;
    int rc = 0;
    if (c->def->on_destroy != NULL) {
        ctx->msg = NULL;
        rc = c->def->on_destroy(ctx, c->state);
        ctx->crash = 0;
    }
    xi_ctx_end_run(ctx);
    return rc;
}

/* The failed incarnation goes: on_destroy (its refusal means nothing
   here: it is over), then the state is zeroed for the next. */
static void drop_incarnation(struct xo_ctx *ctx)
{
    struct xi_cell *c = ctx->cell;
    if (c->created) {
        c->created = false;
        (void)run_on_destroy(ctx);
    }
    memset(c->state, 0, c->def->state_size);
}

/* End the actor for good: unpublished now (unless the runtime stops or a
   supervisor will end it: then that end comes), the rest of its mailbox
   refused, its monitors told at the exit point with this reason. */
static void end_failed(struct xo_ctx *ctx, xo_exit_reason_t reason, int code,
                       char *message)
{
    struct xi_cell *c = ctx->cell;
    xo_runtime_t *rt = ctx->rt;
    drop_incarnation(ctx);
    xi_cell_set_rflags(c, XI_CF_FAILED);
    xi_rcu_lock();
    pthread_mutex_lock(&rt->rel.lock);
    /* While stopping, the sweep ends it; a supervised child, which the
       sweep leaves to its supervisor, ends now all the same. Its DOWNs
       carry this failure only if this is the end that won (not an
       xo_destroy or a pool's removal that came first). */
    bool ours = (!xi_rt_closing(rt) ||
                 (xi_cell_rflags(c) & XI_CF_SUPERVISED)) &&
                xi_cell_end(rt, c, (enum xi_exit_kind)reason, code);
    if (ours && (xi_cell_rflags(c) & XI_CF_WATCHED)) {
        struct xi_rnode *n = node_find(&rt->rel, xi_cell_ref(c).id);
        if (n != NULL && n->fail_msg == NULL) {
            n->fail_code = code;
            n->fail_msg = message;
            message = NULL;
        }
    }
    pthread_mutex_unlock(&rt->rel.lock);
    xi_rcu_unlock(&rt->rcu_sync);
    xi_mem_free_str(&rt->mem, message);
}

/* Too many restarts? The ring holds the last `max` restart times: if it
   is full and its oldest is within the period, one more is one too many.
   O(1) per restart, whatever max. */
static bool intensity_reached(struct xi_recovery *r, uint64_t now)
{
    if (r->filled < r->max)
        return false;
    return now - r->ring[r->next] < r->period_ns;
}

/* Restarts in a row, each within a period of the last, double the
   backoff (a supervised child's period is its supervisor's). */
static void note_restart_time(struct xi_recovery *r, uint64_t now)
{
    if (r->last_ns != 0 && now - r->last_ns < r->period_ns)
        r->backoff_step++;
    else
        r->backoff_step = 0;
    r->last_ns = now;
}

static void record_restart(struct xi_recovery *r, uint64_t now)
{
    note_restart_time(r, now);
    r->ring[r->next] = now;
    r->next = r->next + 1 == r->max ? 0 : r->next + 1;
    if (r->filled < r->max)
        r->filled++;
}

/* The wait before this restart: the minimum, doubled per restart in a
   row, up to the maximum, plus up to jitter_pct percent of it. */
static uint64_t backoff_delay(struct xi_recovery *r)
{
    if (r->backoff_min_ns == 0)
        return 0;
    uint64_t d = r->backoff_min_ns;
    for (uint32_t i = 0; i < r->backoff_step && d < r->backoff_max_ns; i++)
        d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
    if (d > r->backoff_max_ns)
        d = r->backoff_max_ns;
    if (r->jitter_pct != 0) {
        /* xorshift64: a spread, not a secret. */
        r->rng ^= r->rng << 13;
        r->rng ^= r->rng >> 7;
        r->rng ^= r->rng << 17;
        uint64_t span = d / 100 * r->jitter_pct;
        if (span != 0)
            d += r->rng % (span + 1);
    }
    return d;
}

static void suspend(struct xo_ctx *ctx, enum xi_resume next, uint8_t after)
{
    struct xi_recovery *r = xi_cell_recovery(ctx->cell);
    r->pending = (uint8_t)next;
    r->after |= after;
    ctx->suspend = true;
}

static void start_incarnation(struct xo_ctx *ctx, bool in_turn_of_failure);

/* Restart per the actor's own policy, or end it. */
static void decide(struct xo_ctx *ctx, xo_exit_reason_t reason, int code,
                   char *message, bool retry)
{
    struct xi_cell *c = ctx->cell;
    uint8_t fl = xi_cell_rflags(c);
    if (!(fl & XI_CF_RECOVERY)) {
        end_failed(ctx, reason, code, message);
        return;
    }
    struct xi_recovery *r = xi_cell_recovery(c);
    if (fl & XI_CF_SUPERVISED) {
        /* Its supervisor decides, once this turn is over. */
        drop_incarnation(ctx);
        xi_mem_free_str(&ctx->rt->mem, r->fail_msg);
        r->fail_code = code;
        r->fail_reason = reason;
        r->fail_msg = message;
        suspend(ctx, XI_RESUME_NONE, XI_AFTER_HELD | XI_AFTER_REPORT);
        return;
    }
    if (r->policy == XO_RESTART_NEVER || reason != XO_EXIT_FAILED) {
        end_failed(ctx, reason, code, message);
        return;
    }
    uint64_t now = xi_now_ns();
    if (intensity_reached(r, now)) {
        end_failed(ctx, XO_EXIT_RESTART_INTENSITY, code, message);
        return;
    }
    xi_mem_free_str(&ctx->rt->mem, message);
    record_restart(r, now);
    drop_incarnation(ctx);
    uint64_t delay = backoff_delay(r);
    if (delay != 0) {
        r->backoff_t.timer.deadline = xi_deadline_after(delay);
        suspend(ctx, XI_RESUME_START, XI_AFTER_TIMER);
    } else if (retry) {
        /* on_create failed in a restart: try again in a turn of its own,
           so a crash loop still lets the worker serve others. */
        suspend(ctx, XI_RESUME_START, XI_AFTER_RESCHEDULE);
    } else {
        start_incarnation(ctx, false);
    }
}

/* A new incarnation: zeroed state (done), on_create with the kept
   argument. Its failure is a failure like any other. */
static void start_incarnation(struct xo_ctx *ctx, bool retry)
{
    (void)retry;
    struct xi_cell *c = ctx->cell;
    struct xi_recovery *r = xi_cell_recovery(c);
    atomic_fetch_add_explicit(&r->restarts, 1, memory_order_relaxed);
    int rc = 0;
    if (c->def->on_create != NULL) {
        ctx->msg = NULL;
        rc = c->def->on_create(ctx, c->state, xi_cell_arg(c), c->arg_size);
        if (ctx->crash != 0)
            rc = ctx->crash;
        ctx->crash = 0;
    }
    struct xo_future *f = r->resume_f;
    r->resume_f = NULL;
    if (rc >= 0) {
        xi_ctx_end_run(ctx);
        c->created = true;
        if (f != NULL) {
            xi_future_complete_item(f, 0, 0, NULL, NULL, true);
            xi_future_unref(f);
        }
        return;
    }
    char *message = ctx->fail_msg;
    ctx->fail_msg = NULL;
    if (message == xi_crash_no_text)
        message = NULL;
    if (f != NULL) {
        xi_future_complete_item(f, 0, rc, message, NULL, true);
        xi_future_unref(f);
    }
    xi_actor_failed(ctx->rt, c, xi_cell_ref(c), 0, rc, message);
    decide(ctx, XO_EXIT_FAILED, rc, message, true);
}

void xi_recovery_failed(struct xo_ctx *ctx, int code, char *message)
{
    struct xi_cell *c = ctx->cell;
    xo_exit_reason_t reason = ctx->crash_reason ? ctx->crash_reason
                                                : XO_EXIT_FAILED;
    ctx->crash = 0;
    ctx->crash_reason = 0;
    if (xi_cell_rflags(c) & XI_CF_WATCHED)
        links_fire(ctx->rt, c, reason, code, message);
    decide(ctx, reason, code, message, false);
}

bool xi_recovery_end(xo_runtime_t *rt, struct xi_cell *c,
                     xo_exit_reason_t reason, int code, const char *text)
{
    /* While stopping, the sweep ends it (a supervised child, which the
       sweep leaves to its supervisor, ends now all the same). */
    if (xi_rt_closing(rt) && !(xi_cell_rflags(c) & XI_CF_SUPERVISED))
        return false;
    bool watched = (xi_cell_rflags(c) & XI_CF_WATCHED) != 0;
    pthread_mutex_lock(&rt->rel.lock);
    bool ours = xi_cell_end(rt, c, (enum xi_exit_kind)reason, code);
    if (ours && watched) {
        struct xi_rnode *n = node_find(&rt->rel, xi_cell_ref(c).id);
        if (n != NULL && n->fail_msg == NULL) {
            n->fail_code = code;
            n->fail_msg = text != NULL ? xi_mem_strdup(&rt->mem, text) : NULL;
        }
    }
    pthread_mutex_unlock(&rt->rel.lock);
    /* A failure, though not its own: its links fire as for one. */
    if (ours && watched)
        links_fire(rt, c, reason, code, text);
    return ours;
}

void xi_recovery_fail_now(struct xo_ctx *ctx, int reason, int code,
                          const char *text)
{
    char *message = text != NULL ? xi_mem_strdup(&ctx->rt->mem, text) : NULL;
    xi_actor_failed(ctx->rt, ctx->cell, xi_cell_ref(ctx->cell), 0, code,
                    message);
    ctx->crash_reason = reason;
    xi_recovery_failed(ctx, code, message);
}

void xi_recovery_resume(struct xo_ctx *ctx)
{
    struct xi_cell *c = ctx->cell;
    struct xi_recovery *r = xi_cell_recovery(c);
    enum xi_resume what = (enum xi_resume)r->pending;
    r->pending = XI_RESUME_NONE;
    switch (what) {
    case XI_RESUME_RESTART: { /* a supervisor's decision */
        note_restart_time(r, xi_now_ns());
        uint64_t delay = backoff_delay(r);
        if (delay != 0) {
            r->backoff_t.timer.deadline = xi_deadline_after(delay);
            suspend(ctx, XI_RESUME_START, XI_AFTER_TIMER);
            return;
        }
        start_incarnation(ctx, false);
        return;
    }
    case XI_RESUME_START:
        start_incarnation(ctx, false);
        return;
    case XI_RESUME_EXIT: {
        char *message = r->fail_msg;
        r->fail_msg = NULL;
        if (r->fail_code < 0)
            end_failed(ctx, r->fail_reason ? r->fail_reason : XO_EXIT_FAILED,
                       r->fail_code, message);
        else
            end_failed(ctx, XO_EXIT_DESTROYED, 0, message);
        return;
    }
    case XI_RESUME_NONE:
        return;
    }
}

/* ---- after the turn ------------------------------------------------------ */

static void backoff_fire(struct xi_timer *t, struct xi_worker *w)
{
    (void)w;
    struct xi_backoff_timer *b = xi_container_of(t, struct xi_backoff_timer,
                                                 timer);
    xi_recovery_wake(b->cell);
}

/* The heap could not take it: restart without the wait rather than never.
   (At stop no actor is suspended any more: the stop hurries them.) */
static void backoff_drop(struct xi_timer *t, xo_runtime_t *rt, int why)
{
    (void)rt;
    (void)why;
    struct xi_backoff_timer *b = xi_container_of(t, struct xi_backoff_timer,
                                                 timer);
    xi_recovery_wake(b->cell);
}

/* A stop, or its pool leaving, does not wait for a backoff. */
static bool backoff_urgent(struct xi_timer *t)
{
    struct xi_backoff_timer *b = xi_container_of(t, struct xi_backoff_timer,
                                                 timer);
    struct xi_cell *c = b->cell;
    xo_runtime_t *rt = c->rt;
    bool dying = false; /* destroyed while it waits: no need to wait */
    (void)xi_slot_cell(&rt->slots, xi_cell_index(c), &dying);
    return dying || xi_rt_closing(rt) ||
           !xi_pool_running(xi_pool_at(rt, c->pool));
}

void xi_recovery_after_turn(struct xi_worker *w, struct xi_cell *c)
{
    struct xi_recovery *r = xi_cell_recovery(c);
    xo_runtime_t *rt = c->rt;
    uint8_t after = r->after;
    r->after = 0;
    if (after & XI_AFTER_TIMER) {
        /* On its home worker (whom a destroy hurries), whichever ran the
           turn. c is the timer's now. */
        (void)w;
        xi_worker_arm(xi_pool_worker(rt, c->pool), &r->backoff_t.timer);
        return;
    }
    if (after & XI_AFTER_RESCHEDULE) {
        xi_recovery_wake(c);
        return;
    }
    /* Held: from the moment `hold` says so, the supervisor may resume c
       on any worker; read what the report needs first. */
    uint64_t sup = r->sup_id, id = xi_cell_ref(c).id;
    struct xi_envelope *report = NULL;
    if (after & XI_AFTER_REPORT) {
        report = r->report;
        r->report = NULL;
        /* Its last report went stale in a group restart and was dropped:
           make another. Without memory, it cannot be decided about: it
           ends (below). */
        if (report == NULL &&
            xi_signal_new(rt, XI_TAG_CHILD, sizeof(struct xi_sig_child),
                          &report) != 0)
            report = NULL;
    }
    if (report != NULL) {
        struct xi_sig_child *s = report->msg.data;
        *s = (struct xi_sig_child){ id, xi_cell_incarnation(c), r->fail_code,
                                    r->reported_exit };
        r->reported_exit = false;
    }
    struct xo_future *hold_f = r->hold_taken;
    r->hold_taken = NULL;
    if (hold_f == NULL) /* a failure settles a hold asked meanwhile */
        hold_f = atomic_exchange_explicit(&r->hold_f, NULL,
                                          memory_order_acq_rel);
    /* Once `hold` says HELD, the supervisor may resume c on another
       worker, where it may end and be freed: the section keeps the cell
       until this function is done with it. */
    xi_rcu_lock();
    /* release: the supervisor's CAS (acquire) sees the record settled. */
    atomic_store_explicit(&r->hold, XI_HOLD_HELD, memory_order_release);
    if (hold_f != NULL) {
        xi_future_complete_item(hold_f, 0, 0, NULL, NULL, true);
        xi_future_unref(hold_f);
    }
    if (!(after & XI_AFTER_REPORT) ||
        (report != NULL && xi_signal_push(rt, sup, report, true) == 0)) {
        xi_rcu_unlock(&rt->rcu_sync);
        return;
    }
    /* Its supervisor is gone or going: nobody will decide, so end. Unless
       that supervisor claimed c meanwhile (its own end stops c). */
    uint32_t held = XI_HOLD_HELD;
    if (atomic_compare_exchange_strong_explicit(&r->hold, &held,
                                                XI_HOLD_RUNNING,
                                                memory_order_acq_rel,
                                                memory_order_acquire)) {
        r->report = report;
        r->pending = XI_RESUME_EXIT;
        xi_recovery_wake(c);
    } else if (report != NULL) {
        /* c may be running already: the report envelope goes. */
        xi_envelope_free(rt, report);
    }
    xi_rcu_unlock(&rt->rcu_sync);
}

/* ---- signals ------------------------------------------------------------- */

/* Run on_message for a signal turned message (DOWN, EXIT, a supervisor's
   own): turn.c's delivery, with its failure handling. */
void xi_recovery_signal(struct xo_ctx *ctx, struct xi_envelope *env)
{
    struct xi_cell *c = ctx->cell;
    xo_runtime_t *rt = ctx->rt;
    uint32_t tag = env->msg.tag;
    if (tag == XI_TAG_HOLD) {
        struct xi_recovery *r = xi_cell_recovery(c);
        xi_envelope_free(rt, env);
        /* Taken now: from here on the supervisor cannot take its request
           back, and knows this child is about to be held. */
        struct xo_future *f = atomic_exchange_explicit(&r->hold_f, NULL,
                                                       memory_order_acq_rel);
        if (f == NULL)
            return; /* settled by a failure, or taken back */
        if (!c->created) { /* ending (or never started): nothing to hold */
            xi_future_complete_item(f, 0, XO_ENOTEXIST, NULL, NULL, true);
            xi_future_unref(f);
            return;
        }
        r->hold_taken = f;
        drop_incarnation(ctx);
        suspend(ctx, XI_RESUME_NONE, XI_AFTER_HELD);
        return;
    }
    if (!c->created) {
        /* Ending: DOWNs and EXITs have no one to go to. */
        if (tag == XI_TAG_CHILD || tag == XI_TAG_CHILD_GONE)
            xi_sup_signal(ctx, env); /* a failed supervisor still answers */
        else
            xi_envelope_free(rt, env);
        return;
    }
    switch (tag) {
    case XO_TAG_DOWN: {
        const xo_down_t *d = env->msg.data;
        if (!take_fired(rt, d->monitor)) {
            xi_envelope_free(rt, env);
            return;
        }
        break;
    }
    case XI_TAG_LINK: {
        uint64_t inc = *(const uint64_t *)env->msg.data;
        if (inc != xi_cell_incarnation(c)) {
            xi_envelope_free(rt, env); /* for an incarnation gone since */
            return;
        }
        if (!(xi_cell_rflags(c) & XI_CF_TRAP)) {
            const xo_down_t *d = (const xo_down_t *)(const void *)(
                (const char *)env->msg.data + sizeof(uint64_t));
            char buf[XI_DOWN_TEXT + 64];
            snprintf(buf, sizeof(buf), "linked actor failed: %s",
                     d->message[0] != '\0' ? d->message
                                           : xo_strerror(d->code));
            char *message = xi_mem_strdup(&rt->mem, buf);
            xi_envelope_free(rt, env);
            xi_actor_failed(rt, c, xi_cell_ref(c), XO_TAG_EXIT, XO_ELINKED,
                            message);
            xi_recovery_failed(ctx, XO_ELINKED, message);
            return;
        }
        /* Trapped: the EXIT message is the down part. */
        env->msg.tag = XO_TAG_EXIT;
        env->msg.data = (char *)env->msg.data + sizeof(uint64_t);
        env->msg.size -= (uint32_t)sizeof(uint64_t);
        break;
    }
    case XI_TAG_CHILD:
    case XI_TAG_CHILD_GONE:
        xi_sup_signal(ctx, env);
        return;
    default:
        break;
    }
    xi_turn_handle(ctx, env);
}

/* ---- self-destroy of a permanent actor ---------------------------------- */

bool xi_recovery_reap_restart(struct xo_ctx *ctx)
{
    struct xi_cell *c = ctx->cell;
    struct xi_recovery *r = xi_cell_recovery(c);
    if (!xi_cell_revive(ctx->rt, c))
        return false;
    c->created = false;
    memset(c->state, 0, c->def->state_size);
    if (xi_cell_rflags(c) & XI_CF_SUPERVISED) {
        xi_mem_free_str(&ctx->rt->mem, r->fail_msg);
        r->fail_msg = NULL;
        r->fail_code = 0;
        r->fail_reason = XO_EXIT_DESTROYED;
        r->reported_exit = true;
        suspend(ctx, XI_RESUME_NONE, XI_AFTER_HELD | XI_AFTER_REPORT);
        return true;
    }
    uint64_t now = xi_now_ns();
    if (intensity_reached(r, now)) {
        end_failed(ctx, XO_EXIT_RESTART_INTENSITY, 0,
                   xi_mem_strdup(&ctx->rt->mem,
                                 "restarted too often after destroying "
                                 "itself"));
        return true;
    }
    record_restart(r, now);
    uint64_t delay = backoff_delay(r);
    if (delay != 0) {
        r->backoff_t.timer.deadline = xi_deadline_after(delay);
        suspend(ctx, XI_RESUME_START, XI_AFTER_TIMER);
    } else {
        start_incarnation(ctx, false);
    }
    return true;
}

/* ---- xo_crash ------------------------------------------------------------- */

int xo_crash(xo_ctx_t *ctx, int code, const char *fmt, ...)
{
    if (ctx == NULL || ctx->cell == NULL || ctx->cell->stateless || code >= 0)
        return XO_EINVAL;
    char buf[512];
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
    } else {
        snprintf(buf, sizeof(buf), "the actor crashed: %s",
                 xo_strerror(code));
    }
    xi_ctx_set_fail(ctx, buf);
    /* The turn learns of a crash from the message it leaves: always one. */
    if (ctx->fail_msg == NULL)
        ctx->fail_msg = xi_crash_no_text;
    ctx->crash = code;
    return code;
}
