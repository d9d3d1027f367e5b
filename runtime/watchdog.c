/*
 * watchdog.c -- one thread per runtime that looks at the workers every
 * tick and at the actors every XI_SCAN_EVERY ticks (design in watchdog.h,
 * stats.h; what each alert means: docs/observability.md).
 *
 * The actor scan reads each cell (about 22 ns an actor here, mostly cache
 * misses: 2.3 ms for 10^5 actors, 22 ms for 10^6); past 1 % of a core it
 * runs less often, so with a million actors ages are measured every 2 s.
 *
 * Workers. A worker bumps obs.turn_seq at each turn's start and obs.seq
 * when a handler's wait starts or ends, names the running actor in
 * obs.actor (0 when it runs none: idle, asleep, or a handler waiting) and
 * the tag of its message in obs.tag; a stateful actor's `handled` count
 * moves as each of its messages is done with. The watchdog keeps, per
 * worker, the last handler run it saw — (seq, turn_seq, handled) — and
 * when it first saw it: the same run with an actor named, a tick later,
 * is a handler that has run since at least then. No clock is read and no
 * counter is bumped per message on the hot path; the times are the
 * watchdog's, to within a tick.
 *
 * Actors. The scan reads every live cell inside a read-side section: the
 * depth of its mailbox (stats.h), and for one that waits in a handler, how
 * long. A table of the actors that had a backlog or a wait at the last
 * scan keeps what a scan needs from the one before: the depth (for the
 * growth rate), the alerts already given, and marks of the mailbox's
 * `sent` count over time, from which the oldest waiting message's age
 * follows: the message after the `handled` count was sent before the
 * first mark whose count reaches it.
 */
#include "runtime.h"

#include <errno.h>
#include <string.h>

#define XI_SCAN_EVERY 10u  /* actor scans: one tick in ten, */
#define XI_SCAN_SHARE 100u /* or 100 times as long as the last took */
#define XI_MARKS 4u

struct backlog {
    uint64_t id;            /* 0: empty */
    uint64_t depth, at;     /* at the last scan */
    uint64_t mark_sent[XI_MARKS], mark_at[XI_MARKS];
    unsigned nmarks;
    bool depth_alerted;
    unsigned age_reported, wait_reported;
};

struct table {
    struct backlog *v;
    size_t cap; /* a power of two, or 0 */
    size_t n;
};

struct wstate {
    uint64_t seq, run_turn, run_handled; /* the handler run last seen */
    _Atomic uint64_t seq_since; /* the dump reads it too (relaxed) */
    uint64_t turn_seq, turn_since;
    unsigned reported;
    bool turn_reported;
};

struct xi_watchdog {
    xo_runtime_t *rt;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;              /* under lock */
    _Atomic uint64_t ticks;
    _Atomic uint64_t scan_ns; /* the last scan's duration */
    _Atomic uint64_t alerts[XO_ALERT_KINDS];
    struct wstate w[XO_POOLS_MAX];
    struct table cur, next; /* the watchdog thread only */
    /* Outside threads' waits (watchdog.h), under wlock. */
    pthread_mutex_t wlock;
    struct xi_outside_wait *waits;
};

/* ---- alerts --------------------------------------------------------------- */

const char *xo_alert_kind_name(xo_alert_kind_t kind)
{
    switch (kind) {
    case XO_ALERT_SLOW_HANDLER: return "slow_handler";
    case XO_ALERT_STUCK_TURN: return "stuck_turn";
    case XO_ALERT_SLOW_CALL: return "slow_call";
    case XO_ALERT_MAILBOX_DEPTH: return "mailbox_depth";
    case XO_ALERT_MAILBOX_AGE: return "mailbox_age";
    }
    return "?";
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

/* "actor 0x...(def "name" uid "u")" into buf; returns what snprintf
   does. */
static int actor_text(char *buf, size_t size, const xo_alert_t *a)
{
    if (a->actor.id == 0)
        return snprintf(buf, size, "an outside thread");
    if (a->uid != NULL)
        return snprintf(buf, size, "actor %#llx (%s, uid \"%s\", pool %u)",
                        (unsigned long long)a->actor.id,
                        a->definition ? a->definition : "?", a->uid,
                        a->pool);
    return snprintf(buf, size, "actor %#llx (%s, pool %u)",
                    (unsigned long long)a->actor.id,
                    a->definition ? a->definition : "?", a->pool);
}

int xo_alert_format(const xo_alert_t *a, char *buf, size_t size)
{
    if (a == NULL)
        return -1;
    char who[XO_UID_MAX + 128];
    actor_text(who, sizeof(who), a);
    switch (a->kind) {
    case XO_ALERT_SLOW_HANDLER:
        return snprintf(buf, size,
                        "xoscar: slow_handler: %s has run one handler (tag "
                        "%u) for %.1f ms (threshold %.1f ms, x%u)",
                        who, a->tag, ms(a->elapsed_ns), ms(a->threshold_ns),
                        a->multiple);
    case XO_ALERT_STUCK_TURN:
        return snprintf(buf, size,
                        "xoscar: stuck_turn: %s has kept worker %u for "
                        "%.1f ms in one turn (threshold %.1f ms; tag %u)",
                        who, a->pool, ms(a->elapsed_ns), ms(a->threshold_ns),
                        a->tag);
    case XO_ALERT_SLOW_CALL: {
        char chain[XO_ALERT_CHAIN_MAX * 22 + 1];
        size_t off = 0;
        chain[0] = '\0';
        for (unsigned i = 0; i < a->chain_len && i < XO_ALERT_CHAIN_MAX;
             i++) {
            int k = snprintf(chain + off, sizeof(chain) - off, " -> %#llx",
                             (unsigned long long)a->chain[i].id);
            if (k < 0 || (size_t)k >= sizeof(chain) - off)
                break;
            off += (size_t)k;
        }
        return snprintf(buf, size,
                        "xoscar: slow_call: %s has waited %.1f ms (threshold "
                        "%.1f ms, x%u); waits:%s",
                        who, ms(a->elapsed_ns), ms(a->threshold_ns),
                        a->multiple, chain);
    }
    case XO_ALERT_MAILBOX_DEPTH:
        return snprintf(buf, size,
                        "xoscar: mailbox_depth: %s has %llu messages "
                        "waiting (threshold %llu), growing %.0f/s",
                        who, (unsigned long long)a->depth,
                        (unsigned long long)a->threshold_ns, a->growth_per_s);
    case XO_ALERT_MAILBOX_AGE:
        return snprintf(buf, size,
                        "xoscar: mailbox_age: %s has a message waiting for "
                        "%.1f ms (threshold %.1f ms, x%u), %llu waiting, "
                        "growing %.0f/s",
                        who, ms(a->elapsed_ns), ms(a->threshold_ns),
                        a->multiple, (unsigned long long)a->depth,
                        a->growth_per_s);
    }
    return snprintf(buf, size, "xoscar: alert of unknown kind %d",
                    (int)a->kind);
}

static void alert_default(const xo_alert_t *a)
{
    char line[1024];
    xo_alert_format(a, line, sizeof(line));
    fprintf(stderr, "%s\n", line);
}

/* Fill the actor's part of *a from its cell (inside a read-side section);
   uid points into ubuf. */
static void describe(const struct xi_cell *c, xo_alert_t *a, char *ubuf)
{
    a->actor = xi_cell_ref(c);
    a->definition = xi_def_name(c);
    a->pool = c->pool;
    a->uid = NULL;
    if (c->name != NULL) {
        size_t len = c->name->len < XO_UID_MAX ? c->name->len : XO_UID_MAX;
        memcpy(ubuf, c->name->uid, len);
        ubuf[len] = '\0';
        a->uid = ubuf;
    }
}

/* Report a (outside any read-side section). */
static void emit(struct xi_watchdog *wd, const xo_alert_t *a)
{
    xo_runtime_t *rt = wd->rt;
    XI_TRACE(rt, XI_TR_ALERT, a->actor.id, a->elapsed_ns, a->kind);
    atomic_fetch_add_explicit(&wd->alerts[a->kind], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&wd->alerts[0], 1, memory_order_relaxed);
    if (rt->cfg.on_alert != NULL)
        rt->cfg.on_alert(rt, a, rt->cfg.on_alert_user);
    else
        alert_default(a);
}

static void count_on(xo_runtime_t *rt, struct xi_cell *c)
{
    struct xi_obs *o = xi_obs_make(rt, c);
    if (o != NULL)
        atomic_fetch_add_explicit(&o->alerts, 1, memory_order_relaxed);
}

/* ---- workers --------------------------------------------------------------- */

/* The `handled` count of the running stateful actor `id` (0 for a
   stateless one, whose other tasks move it: a task is a turn of its own,
   so turn_seq names it). */
static uint64_t handled_of(xo_runtime_t *rt, uint64_t id)
{
    uint64_t n = 0;
    xi_rcu_lock();
    struct xi_cell *c = xi_resolve_dying(&rt->slots, id);
    if (c != NULL && !c->stateless)
        /* relaxed: a sample (stats.h). */
        n = atomic_load_explicit(&c->handled, memory_order_relaxed);
    xi_rcu_unlock(&rt->rcu_sync);
    return n;
}

static void check_worker(struct xi_watchdog *wd, unsigned i, uint64_t now)
{
    xo_runtime_t *rt = wd->rt;
    struct xi_pool *p = xi_pool_at(rt, i);
    if (p == NULL || !xi_pool_alive(p))
        return;
    struct xi_worker *w = p->worker;
    struct wstate *s = &wd->w[i];
    /* relaxed: samples; a look that straddles a change is dropped. */
    uint64_t seq = atomic_load_explicit(&w->obs.seq, memory_order_relaxed);
    uint64_t turn = atomic_load_explicit(&w->obs.turn_seq,
                                         memory_order_relaxed);
    uint64_t actor = atomic_load_explicit(&w->obs.actor, memory_order_relaxed);
    uint32_t tag = atomic_load_explicit(&w->obs.tag, memory_order_relaxed);
    uint64_t handled = actor != 0 ? handled_of(rt, actor) : 0;
    if (atomic_load_explicit(&w->obs.seq, memory_order_relaxed) != seq ||
        atomic_load_explicit(&w->obs.turn_seq, memory_order_relaxed) != turn)
        return;
    if (seq != s->seq || turn != s->run_turn || handled != s->run_handled) {
        s->seq = seq;
        s->run_turn = turn;
        s->run_handled = handled;
        atomic_store_explicit(&s->seq_since, now, memory_order_relaxed);
        s->reported = 0;
    }
    if (turn != s->turn_seq) {
        s->turn_seq = turn;
        s->turn_since = now;
        s->turn_reported = false;
    }
    if (actor == 0)
        return;
    /* One turn has held the worker since the last look while movable
       actors wait in its local queue: offer them (again: a thief that
       looked at an earlier offer may have found the worker keeping up,
       and parked), so that an idle worker takes them (docs/scheduler.md,
       "Locality"). */
    uint64_t held = now - s->turn_since;
    if (held != 0 && w->steals && xi_stealq_len(&w->local) != 0)
        xi_worker_offer(w);
    xo_alert_t a[2];
    unsigned na = 0;
    uint64_t th = rt->cfg.slow_handler_ns;
    uint64_t ran = now - atomic_load_explicit(&s->seq_since,
                                              memory_order_relaxed);
    if (th != 0 && ran >= th && ran / th > s->reported) {
        s->reported = (unsigned)(ran / th);
        a[na] = (xo_alert_t){ .kind = XO_ALERT_SLOW_HANDLER, .tag = tag,
                              .elapsed_ns = ran, .threshold_ns = th,
                              .multiple = s->reported };
        na++;
    }
    uint64_t tt = rt->cfg.stuck_turn_ns;
    if (tt != 0 && held >= tt && !s->turn_reported) {
        s->turn_reported = true;
        a[na] = (xo_alert_t){ .kind = XO_ALERT_STUCK_TURN, .tag = tag,
                              .elapsed_ns = held, .threshold_ns = tt,
                              .multiple = 1 };
        na++;
    }
    if (na == 0)
        return;
    char ubuf[XO_UID_MAX + 1];
    bool found = false;
    xi_rcu_lock();
    struct xi_cell *c = xi_resolve_dying(&rt->slots, actor);
    if (c != NULL) {
        found = true;
        for (unsigned k = 0; k < na; k++) {
            describe(c, &a[k], ubuf);
            a[k].pool = i; /* where it runs (a movable actor's turn) */
            count_on(rt, c);
        }
    }
    xi_rcu_unlock(&rt->rcu_sync);
    if (!found)
        return; /* gone meanwhile */
    for (unsigned k = 0; k < na; k++)
        emit(wd, &a[k]);
}

/* ---- the backlog table ------------------------------------------------------- */

static size_t slot_of(const struct table *t, uint64_t id)
{
    uint64_t h = id * UINT64_C(0x9e3779b97f4a7c15);
    return (size_t)(h >> 17) & (t->cap - 1);
}

static struct backlog *find(struct table *t, uint64_t id)
{
    if (t->cap == 0)
        return NULL;
    for (size_t i = slot_of(t, id);; i = (i + 1) & (t->cap - 1)) {
        if (t->v[i].id == id)
            return &t->v[i];
        if (t->v[i].id == 0)
            return NULL;
    }
}

static void table_free(xo_runtime_t *rt, struct table *t)
{
    if (t->v != NULL)
        xi_mem_free(&rt->mem, t->v, t->cap * sizeof(*t->v));
    t->v = NULL;
    t->cap = t->n = 0;
}

/* Room for one more in t (load under a half); false: no memory, the entry
   is not kept (its history starts again at the next scan). */
static bool make_room(xo_runtime_t *rt, struct table *t)
{
    if ((t->n + 1) * 2 <= t->cap)
        return true;
    size_t cap = t->cap ? t->cap * 2 : 64;
    struct backlog *v = xi_mem_alloc(&rt->mem, cap * sizeof(*v));
    if (v == NULL)
        return false;
    memset(v, 0, cap * sizeof(*v));
    struct table bigger = { v, cap, 0 };
    for (size_t i = 0; i < t->cap; i++) {
        if (t->v[i].id == 0)
            continue;
        size_t j = slot_of(&bigger, t->v[i].id);
        while (v[j].id != 0)
            j = (j + 1) & (cap - 1);
        v[j] = t->v[i];
        bigger.n++;
    }
    table_free(rt, t);
    *t = bigger;
    return true;
}

static struct backlog *insert(xo_runtime_t *rt, struct table *t,
                              const struct backlog *b)
{
    if (!make_room(rt, t))
        return NULL;
    size_t i = slot_of(t, b->id);
    while (t->v[i].id != 0)
        i = (i + 1) & (t->cap - 1);
    t->v[i] = *b;
    t->n++;
    return &t->v[i];
}

/* ---- actors --------------------------------------------------------------------- */

/* The oldest waiting message's age from the marks, updated with this
   scan's counts. */
static uint64_t age_of(struct backlog *b, uint64_t sent, uint64_t handled,
                       uint64_t now)
{
    /* A count put back when the mailbox emptied (stats.h) starts the
       marks again. */
    if (b->nmarks > 0 && sent < b->mark_sent[b->nmarks - 1])
        b->nmarks = 0;
    /* Marks whose messages have all been handled are history. */
    unsigned drop = 0;
    while (drop < b->nmarks && b->mark_sent[drop] <= handled)
        drop++;
    if (drop > 0) {
        memmove(b->mark_sent, b->mark_sent + drop,
                (b->nmarks - drop) * sizeof(b->mark_sent[0]));
        memmove(b->mark_at, b->mark_at + drop,
                (b->nmarks - drop) * sizeof(b->mark_at[0]));
        b->nmarks -= drop;
    }
    uint64_t age = b->nmarks > 0 ? now - b->mark_at[0] : 0;
    if (b->nmarks == 0 || sent > b->mark_sent[b->nmarks - 1]) {
        /* Full: the newest mark moves up (the oldest ones, which give
           the age, are kept). */
        unsigned k = b->nmarks < XI_MARKS ? b->nmarks++ : XI_MARKS - 1;
        b->mark_sent[k] = sent;
        b->mark_at[k] = now;
    }
    return age;
}

/* The chain of waits from `id` on, into a->chain. Inside a read-side
   section. */
static void chain_from(xo_runtime_t *rt, uint64_t id, xo_alert_t *a)
{
    a->chain_len = 0;
    while (id != 0 && a->chain_len < XO_ALERT_CHAIN_MAX) {
        a->chain[a->chain_len++] = (xo_ref_t){ rt, id };
        struct xi_cell *c = xi_resolve_dying(&rt->slots, id);
        if (c == NULL || c->stateless)
            break;
        /* seq_cst: as the cycle check reads the edges (wait.c). */
        uint64_t next = atomic_load(&c->waiting_for);
        if (next == 0)
            next = atomic_load(&c->above);
        bool loop = false;
        for (unsigned k = 0; k < a->chain_len; k++)
            loop |= a->chain[k].id == next;
        if (loop)
            break;
        id = next;
    }
}

#define XI_ALERT_BATCH 32u

struct pending {
    xo_alert_t a[XI_ALERT_BATCH];
    char uid[XI_ALERT_BATCH][XO_UID_MAX + 1];
    unsigned n;
};

static void flush(struct xi_watchdog *wd, struct pending *pd)
{
    for (unsigned i = 0; i < pd->n; i++)
        emit(wd, &pd->a[i]);
    pd->n = 0;
}

/* Whether a worker runs a handler of actor `id` now (its message is in
   hand, not waiting). */
static bool in_hand(xo_runtime_t *rt, uint64_t id)
{
    unsigned np = xi_pool_slots(rt);
    for (unsigned i = 0; i < np; i++) {
        struct xi_pool *p = xi_pool_at(rt, i);
        /* relaxed: a sample. */
        if (p != NULL && xi_pool_alive(p) &&
            atomic_load_explicit(&p->worker->obs.actor,
                                 memory_order_relaxed) == id)
            return true;
    }
    return false;
}

/* Messages waiting in c's mailbox (the one in hand not counted: running,
   or waiting in its handler), inside a read-side section. */
static uint64_t waiting(xo_runtime_t *rt, const struct xi_cell *c,
                        uint64_t *running)
{
    uint64_t depth = xi_cell_depth(c);
    struct xi_cell *m = (struct xi_cell *)c;
    /* A handler waiting (for a call, or under a turn nested over it)
       holds its message as surely as one running. seq_cst: as wait.c. */
    bool held = !c->stateless && (atomic_load(&m->waiting_for) != 0 ||
                                  atomic_load(&m->above) != 0);
    *running = depth > 0 && (held || in_hand(rt, xi_cell_ref(c).id)) ? 1 : 0;
    return depth - *running;
}

/* One actor of the scan, inside a read-side section. Returns false when
   the pending alerts are full (flush, then call again for this one). */
static bool scan_one(struct xi_watchdog *wd, struct xi_cell *c, uint64_t now,
                     struct pending *pd)
{
    xo_runtime_t *rt = wd->rt;
    if (pd->n + 3 > XI_ALERT_BATCH)
        return false;
    uint64_t id = xi_cell_ref(c).id;
    xi_note_depth(rt, c, xi_cell_depth(c));
    uint64_t running;
    uint64_t depth = waiting(rt, c, &running);
    /* acquire: pairs with the CAS that published the block. */
    struct xi_obs *o = atomic_load_explicit(&c->obs, memory_order_acquire);
    uint64_t since = o != NULL ? atomic_load_explicit(&o->wait_since,
                                                      memory_order_relaxed)
                               : 0;
    /* seq_cst: as wait.c stores it. */
    uint64_t callee = since != 0 && !c->stateless ? atomic_load(&c->waiting_for)
                                                  : 0;
    if (depth == 0 && callee == 0) {
        if (o != NULL)
            atomic_store_explicit(&o->oldest_age_ns, 0, memory_order_relaxed);
        return true;
    }
    struct backlog fresh = { .id = id, .depth = 0, .at = now };
    struct backlog *old = find(&wd->cur, id);
    struct backlog *b = insert(rt, &wd->next, old != NULL ? old : &fresh);
    if (b == NULL)
        return true;
    if (callee == 0)
        b->wait_reported = 0;
    if (depth == 0) {
        b->nmarks = 0;
        b->age_reported = 0;
        b->depth_alerted = false;
    }
    double growth = 0;
    if (old != NULL && now > old->at)
        growth = ((double)depth - (double)old->depth) * 1e9 /
                 (double)(now - old->at);
    uint64_t age = 0;
    if (depth > 0) {
        /* relaxed: counters (stats.h). */
        uint64_t sent = atomic_load_explicit(&c->sent, memory_order_relaxed);
        uint64_t handled = atomic_load_explicit(&c->handled,
                                                memory_order_relaxed);
        /* The first waiting message is the one after those handled and
           the one in hand. */
        uint64_t taken = handled + running;
        if (sent < taken + depth)
            sent = taken + depth;
        age = age_of(b, sent, taken, now);
        if (o != NULL)
            atomic_store_explicit(&o->oldest_age_ns, age,
                                  memory_order_relaxed);
    }
    b->depth = depth;
    b->at = now;
    uint64_t dth = rt->cfg.mailbox_depth_alert;
    if (dth != 0 && depth > dth && !b->depth_alerted) {
        b->depth_alerted = true;
        xo_alert_t *a = &pd->a[pd->n];
        *a = (xo_alert_t){ .kind = XO_ALERT_MAILBOX_DEPTH, .depth = depth,
                           .threshold_ns = dth, .multiple = 1,
                           .growth_per_s = growth, .elapsed_ns = age };
        describe(c, a, pd->uid[pd->n++]);
        count_on(rt, c);
    } else if (dth != 0 && depth <= dth / 2) {
        b->depth_alerted = false; /* a new episode may alert again */
    }
    uint64_t ath = rt->cfg.mailbox_age_ns;
    if (ath != 0 && age >= ath && age / ath > b->age_reported) {
        b->age_reported = (unsigned)(age / ath);
        xo_alert_t *a = &pd->a[pd->n];
        *a = (xo_alert_t){ .kind = XO_ALERT_MAILBOX_AGE, .depth = depth,
                           .threshold_ns = ath, .elapsed_ns = age,
                           .multiple = b->age_reported,
                           .growth_per_s = growth };
        describe(c, a, pd->uid[pd->n++]);
        count_on(rt, c);
    }
    uint64_t cth = rt->cfg.slow_call_ns;
    uint64_t waited = callee != 0 && now > since ? now - since : 0;
    if (cth != 0 && waited >= cth && waited / cth > b->wait_reported) {
        b->wait_reported = (unsigned)(waited / cth);
        xo_alert_t *a = &pd->a[pd->n];
        *a = (xo_alert_t){ .kind = XO_ALERT_SLOW_CALL, .elapsed_ns = waited,
                           .threshold_ns = cth,
                           .multiple = b->wait_reported };
        describe(c, a, pd->uid[pd->n++]);
        chain_from(rt, callee, a);
        count_on(rt, c);
    }
    return true;
}

static void check_outside_waits(struct xi_watchdog *wd, uint64_t now,
                                struct pending *pd)
{
    xo_runtime_t *rt = wd->rt;
    uint64_t cth = rt->cfg.slow_call_ns;
    if (cth == 0)
        return;
    pthread_mutex_lock(&wd->wlock);
    for (struct xi_outside_wait *ow = wd->waits;
         ow != NULL && pd->n < XI_ALERT_BATCH; ow = ow->next) {
        uint64_t waited = now > ow->since ? now - ow->since : 0;
        if (waited < cth || waited / cth <= ow->reported)
            continue;
        ow->reported = (unsigned)(waited / cth);
        xo_alert_t *a = &pd->a[pd->n++];
        *a = (xo_alert_t){ .kind = XO_ALERT_SLOW_CALL, .elapsed_ns = waited,
                           .threshold_ns = cth, .multiple = ow->reported,
                           .actor = XO_REF_NONE, .definition = "outside" };
        xi_rcu_lock();
        chain_from(rt, ow->callee_id, a);
        xi_rcu_unlock(&rt->rcu_sync);
    }
    pthread_mutex_unlock(&wd->wlock);
}

static void scan_actors(struct xi_watchdog *wd, uint64_t now)
{
    xo_runtime_t *rt = wd->rt;
    struct pending *pd = xi_mem_alloc(&rt->mem, sizeof(*pd));
    if (pd == NULL)
        return; /* the next scan tries again */
    pd->n = 0;
    /* acquire: pairs with the release of the slot count's growth. */
    uint32_t n = atomic_load_explicit(&rt->slots.count, memory_order_acquire);
    for (uint32_t i = 0; i < n;) {
        xi_rcu_lock();
        bool more = true;
        /* A section per 256 slots: a grace period never waits long for
           the watchdog. */
        for (uint32_t end = i + 256 < n ? i + 256 : n; i < end; i++) {
            struct xi_cell *c = xi_slot_live_cell(&rt->slots, i);
            if (c != NULL && !scan_one(wd, c, now, pd)) {
                more = false;
                break;
            }
        }
        xi_rcu_unlock(&rt->rcu_sync);
        if (!more || pd->n > 0)
            flush(wd, pd);
    }
    check_outside_waits(wd, now, pd);
    flush(wd, pd);
    xi_mem_free(&rt->mem, pd, sizeof(*pd));
    /* This scan's table is the next one's history. */
    table_free(rt, &wd->cur);
    wd->cur = wd->next;
    wd->next = (struct table){ NULL, 0, 0 };
}

/* ---- the thread ------------------------------------------------------------------ */

static void *watchdog_main(void *arg)
{
    struct xi_watchdog *wd = arg;
    xo_runtime_t *rt = wd->rt;
    uint64_t tick = rt->cfg.watch_tick_ns;
    uint64_t next = xi_now_ns() + tick;
    uint64_t scan_next = xi_now_ns() + XI_SCAN_EVERY * tick;
    /* xi_shm_open published the first snapshot: the next is one interval
       on. */
    uint64_t shm_next = xi_now_ns() + rt->cfg.stats_shm_ns;
    pthread_mutex_lock(&wd->lock);
    while (!wd->stop) {
        struct timespec ts = { (time_t)(next / 1000000000u),
                               (long)(next % 1000000000u) };
        int rc = pthread_cond_timedwait(&wd->cond, &wd->lock, &ts);
        if (wd->stop)
            break;
        if (rc != ETIMEDOUT && xi_now_ns() < next)
            continue;
        pthread_mutex_unlock(&wd->lock);
        uint64_t now = xi_now_ns();
        next = now + tick;
        atomic_fetch_add_explicit(&wd->ticks, 1, memory_order_relaxed);
        unsigned np = xi_pool_slots(rt);
        for (unsigned i = 0; i < np; i++)
            check_worker(wd, i, now);
        if (now >= scan_next) {
            /* Its cost in CPU time: on a loaded machine the thread may be
               preempted mid-scan, and that wait must not push the next
               scans seconds away. */
            uint64_t cpu0 = xi_thread_cpu_ns();
            scan_actors(wd, now);
            uint64_t took = xi_thread_cpu_ns() - cpu0;
            /* relaxed: a figure for xo_runtime_stats. */
            atomic_store_explicit(&wd->scan_ns, took, memory_order_relaxed);
            /* Every XI_SCAN_EVERY ticks, or less often when the scan is
               long (many actors): it takes at most 1 % of a core. */
            uint64_t gap = XI_SCAN_EVERY * tick;
            if (took > gap / XI_SCAN_SHARE)
                gap = took * XI_SCAN_SHARE;
            scan_next = now + gap;
        }
        /* relaxed: only whether it is there yet; xi_shm_publish loads it
           again with acquire. */
        if (atomic_load_explicit(&rt->shm, memory_order_relaxed) != NULL &&
            now >= shm_next) {
            xi_shm_publish(rt);
            shm_next = now + rt->cfg.stats_shm_ns;
        }
        pthread_mutex_lock(&wd->lock);
    }
    pthread_mutex_unlock(&wd->lock);
    return NULL;
}

int xi_watchdog_start(xo_runtime_t *rt)
{
    if (rt->cfg.watch_tick_ns == 0)
        return 0;
    struct xi_watchdog *wd = xi_mem_alloc(&rt->mem, sizeof(*wd));
    if (wd == NULL)
        return XO_ENOMEM;
    memset(wd, 0, sizeof(*wd));
    wd->rt = rt;
    pthread_mutex_init(&wd->lock, NULL);
    pthread_mutex_init(&wd->wlock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wd->cond, &ca);
    pthread_condattr_destroy(&ca);
    /* Published before the thread starts: outside waits register on it. */
    rt->watchdog = wd;
    if (pthread_create(&wd->thread, NULL, watchdog_main, wd) != 0) {
        rt->watchdog = NULL;
        pthread_cond_destroy(&wd->cond);
        pthread_mutex_destroy(&wd->wlock);
        pthread_mutex_destroy(&wd->lock);
        xi_mem_free(&rt->mem, wd, sizeof(*wd));
        return XO_ENOMEM;
    }
    return 0;
}

void xi_watchdog_stop(xo_runtime_t *rt)
{
    struct xi_watchdog *wd = rt->watchdog;
    if (wd == NULL)
        return;
    pthread_mutex_lock(&wd->lock);
    wd->stop = true;
    pthread_cond_signal(&wd->cond);
    pthread_mutex_unlock(&wd->lock);
    pthread_join(wd->thread, NULL);
}

/* Free what the watchdog holds (xo_runtime_free: no outside wait can be
   registered any more). */
void xi_watchdog_free(xo_runtime_t *rt)
{
    struct xi_watchdog *wd = rt->watchdog;
    if (wd == NULL)
        return;
    rt->watchdog = NULL;
    table_free(rt, &wd->cur);
    table_free(rt, &wd->next);
    pthread_cond_destroy(&wd->cond);
    pthread_mutex_destroy(&wd->wlock);
    pthread_mutex_destroy(&wd->lock);
    xi_mem_free(&rt->mem, wd, sizeof(*wd));
}

bool xi_watchdog_is_current(xo_runtime_t *rt)
{
    struct xi_watchdog *wd = rt->watchdog;
    return wd != NULL && pthread_equal(pthread_self(), wd->thread);
}

void xi_watchdog_counts(xo_runtime_t *rt, xo_runtime_stats_t *out)
{
    struct xi_watchdog *wd = rt->watchdog;
    if (wd == NULL)
        return;
    /* relaxed: counters. */
    out->watchdog_ticks = atomic_load_explicit(&wd->ticks,
                                               memory_order_relaxed);
    out->watchdog_scan_ns = atomic_load_explicit(&wd->scan_ns,
                                                 memory_order_relaxed);
    for (unsigned k = 0; k < XO_ALERT_KINDS; k++)
        out->alerts[k] = atomic_load_explicit(&wd->alerts[k],
                                              memory_order_relaxed);
}

void xi_outside_wait_begin(xo_runtime_t *rt, struct xi_outside_wait *ow,
                           uint64_t callee_id)
{
    struct xi_watchdog *wd = rt->watchdog;
    if (wd == NULL)
        return;
    ow->callee_id = callee_id;
    ow->since = xi_now_ns();
    ow->reported = 0;
    ow->prev = NULL;
    pthread_mutex_lock(&wd->wlock);
    ow->next = wd->waits;
    if (wd->waits != NULL)
        wd->waits->prev = ow;
    wd->waits = ow;
    pthread_mutex_unlock(&wd->wlock);
}

void xi_outside_wait_end(xo_runtime_t *rt, struct xi_outside_wait *ow)
{
    struct xi_watchdog *wd = rt->watchdog;
    if (wd == NULL)
        return;
    pthread_mutex_lock(&wd->wlock);
    if (ow->prev != NULL)
        ow->prev->next = ow->next;
    else
        wd->waits = ow->next;
    if (ow->next != NULL)
        ow->next->prev = ow->prev;
    pthread_mutex_unlock(&wd->wlock);
}

/* ---- the dump ------------------------------------------------------------------------ */

static const char *state_name(int s)
{
    switch (s) {
    case XO_POOL_RUNNING: return "running";
    case XO_POOL_REMOVING: return "removing";
    case XO_POOL_REMOVED: return "removed";
    case XO_POOL_FAILED: return "failed";
    }
    return "?";
}

struct top {
    uint64_t id, depth, age, high;
    const char *def;
};

#define XI_DUMP_TOP 10u

int xo_runtime_dump(xo_runtime_t *rt, FILE *out)
{
    if (rt == NULL || out == NULL)
        return XO_EINVAL;
    if (xi_rt_closing(rt))
        return XO_ECLOSED;
    struct xi_watchdog *wd = rt->watchdog;
    uint64_t now = xi_now_ns();
    xo_runtime_stats_t rs;
    xo_runtime_stats(rt, &rs);
    fprintf(out, "xoscar runtime %p, up %.3f s: %llu actors, %u pools, "
                 "%llu alerts\n",
            (void *)rt, (double)rs.up_ns / 1e9,
            (unsigned long long)rs.actors, rs.pools,
            (unsigned long long)rs.alerts[0]);
    fprintf(out, "\npools\n");
    unsigned np = xi_pool_slots(rt);
    for (unsigned i = 0; i < np; i++) {
        xo_pool_info_t pi;
        if (xo_pool_info(rt, i, &pi) != 0)
            continue;
        fprintf(out, "  pool %u %s [%s] core %d: %s, busy %.1f %%, %llu "
                     "turns, run queue %llu, %llu actors",
                i, state_name(pi.state), pi.labels, pi.core,
                pi.parked ? "parked" : "awake",
                pi.up_ns ? 100.0 * (double)pi.busy_ns / (double)pi.up_ns : 0.0,
                (unsigned long long)pi.turns,
                (unsigned long long)pi.runq_depth,
                (unsigned long long)pi.actors);
        struct xi_pool *p = xi_pool_at(rt, i);
        /* relaxed: samples. */
        uint64_t actor = p != NULL && xi_pool_alive(p)
                             ? atomic_load_explicit(&p->worker->obs.actor,
                                                    memory_order_relaxed)
                             : 0;
        if (actor != 0) {
            uint32_t tag = atomic_load_explicit(&p->worker->obs.tag,
                                                memory_order_relaxed);
            fprintf(out, "; running %#llx tag %u",
                    (unsigned long long)actor, tag);
            uint64_t since = wd != NULL ? atomic_load_explicit(
                                              &wd->w[i].seq_since,
                                              memory_order_relaxed)
                                        : 0;
            if (since != 0 && now > since)
                fprintf(out, " for at least %.1f ms", ms(now - since));
        }
        fputc('\n', out);
    }
    fprintf(out, "\nwaits (who waits on whom)\n");
    struct top top[XI_DUMP_TOP];
    unsigned ntop = 0, nwaits = 0;
    uint32_t n = atomic_load_explicit(&rt->slots.count, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++) {
        xi_rcu_lock();
        struct xi_cell *c = xi_slot_live_cell(&rt->slots, i);
        if (c != NULL) {
            xo_actor_stats_t st;
            xi_cell_stats(c, &st);
            uint64_t running;
            st.mailbox_depth = waiting(rt, c, &running);
            uint64_t id = xi_cell_ref(c).id;
            /* seq_cst: as the cycle check reads the edges (wait.c). */
            uint64_t wf = c->stateless ? 0 : atomic_load(&c->waiting_for);
            uint64_t ab = c->stateless ? 0 : atomic_load(&c->above);
            struct xi_obs *o = atomic_load_explicit(&c->obs,
                                                    memory_order_acquire);
            uint64_t since = o != NULL ? atomic_load_explicit(
                                             &o->wait_since,
                                             memory_order_relaxed)
                                       : 0;
            if (wf != 0 || ab != 0) {
                nwaits++;
                fprintf(out, "  %#llx (%s)", (unsigned long long)id,
                        xi_def_name(c));
                if (wf != 0)
                    fprintf(out, " waits for %#llx", (unsigned long long)wf);
                if (wf != 0 && since != 0 && now > since)
                    fprintf(out, " since %.1f ms", ms(now - since));
                if (ab != 0)
                    fprintf(out, " under the turn of %#llx",
                            (unsigned long long)ab);
                fputc('\n', out);
            }
            if (st.mailbox_depth > 0) {
                struct top t = { id, st.mailbox_depth, st.oldest_age_ns,
                                 st.mailbox_high, xi_def_name(c) };
                unsigned k = ntop < XI_DUMP_TOP ? ntop++ : XI_DUMP_TOP - 1;
                if (k < XI_DUMP_TOP - 1 || top[k].depth < t.depth) {
                    top[k] = t;
                    while (k > 0 && top[k - 1].depth < top[k].depth) {
                        struct top x = top[k - 1];
                        top[k - 1] = top[k];
                        top[k] = x;
                        k--;
                    }
                }
            }
        }
        xi_rcu_unlock(&rt->rcu_sync);
    }
    if (wd != NULL) {
        pthread_mutex_lock(&wd->wlock);
        for (struct xi_outside_wait *ow = wd->waits; ow != NULL;
             ow = ow->next) {
            nwaits++;
            fprintf(out, "  an outside thread waits for %#llx since %.1f ms\n",
                    (unsigned long long)ow->callee_id,
                    ms(now > ow->since ? now - ow->since : 0));
        }
        pthread_mutex_unlock(&wd->wlock);
    }
    if (nwaits == 0)
        fprintf(out, "  none\n");
    fprintf(out, "\nbusiest mailboxes\n");
    for (unsigned k = 0; k < ntop; k++)
        fprintf(out, "  %#llx (%s): %llu waiting, oldest %.1f ms, most "
                     "%llu\n",
                (unsigned long long)top[k].id, top[k].def,
                (unsigned long long)top[k].depth, ms(top[k].age),
                (unsigned long long)top[k].high);
    if (ntop == 0)
        fprintf(out, "  none\n");
    return ferror(out) ? XO_EINVAL : 0;
}
