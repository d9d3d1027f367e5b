/*
 * actor.c -- actor lifetime: spawn, lookup, destroy, reclaim.
 *
 * Spawn publishes the cell in its slot (and its uid in the registry) inside
 * an RCU section that first checks the runtime is open, so stop's sweep sees
 * every actor that was published. The mailbox starts busy (not idle-marked):
 * sends made while on_create runs, including its own sends to itself, queue
 * up without scheduling; after on_create the spawner marks the mailbox idle
 * or, if messages arrived, schedules the actor.
 *
 * Destroy unpublishes (the slot's pointer gets its DYING mark, the uid is
 * removed) inside an RCU section and queues a grace-period callback there
 * too. When the callback runs, no sender can still be pushing into the
 * mailbox, so the reap marker it pushes is the mailbox's last node: the
 * worker handles everything accepted before, then reaches the marker and
 * reclaims (xi_cell_reap). Queuing the callback inside the section lets
 * stop's grace period + barrier wait for it.
 *
 * A dying actor no longer resolves for senders, but its slot still points
 * at it (marked) until its reap: the cycle check of blocking waits must
 * still follow the waits of an actor whose on_destroy has not run yet
 * (xi_resolve_dying). The reap clears the slot and gives the cell's memory
 * back only after one more grace period, for walks that loaded it.
 */
#include "runtime.h"

#include <string.h>

void xo_spawn_opts_init(xo_spawn_opts_t *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->pool = XO_POOL_ANY;
    opts->restart_max = 3;                       /* Erlang's defaults */
    opts->restart_period_ns = UINT64_C(5000000000);
}

/* Whether the spawn makes a movable actor (xo_move_t): the default
   placement leaves the choice of worker to the scheduler; any placement
   asked for keeps the actor where it was put. */
static bool movable(const xo_spawn_opts_t *opts)
{
    if (opts->move == XO_MOVE_AUTO)
        return opts->pool == XO_POOL_ANY &&
               opts->place.kind == XO_PLACE_LEAST_LOADED &&
               opts->place.label == NULL;
    return opts->move == XO_MOVE_FREE;
}

/* Whole cache lines, so that the header's three groups keep to their own
   lines (see struct xi_cell): the header, the state, the spawn argument's
   copy, the recovery record. */
static size_t cell_size(const xo_actor_def_t *def, size_t arg_size,
                        size_t rec_size)
{
    size_t line = XI_CACHELINE;
    size_t body = rec_size ? xi_cell_recovery_offset(def, arg_size) + rec_size
                  : arg_size ? xi_cell_state_room(def) + arg_size
                             : def->state_size;
    return (sizeof(struct xi_cell) + body + line - 1) & ~(line - 1);
}

static size_t cell_rec_size(const struct xi_cell *c)
{
    if (!(xi_cell_rflags(c) & XI_CF_RECOVERY))
        return 0;
    struct xi_recovery *r = xi_cell_recovery((struct xi_cell *)c);
    return sizeof(*r) + r->max * sizeof(uint64_t);
}

static void free_name(struct xi_name *n, void *arg)
{
    xo_runtime_t *rt = arg;
    xi_mem_free(&rt->mem, n, sizeof(*n) + n->len + 1);
}

/* The cell's memory and its name (never published, or past the grace
   period that follows its reap). */
static void free_cell(xo_runtime_t *rt, struct xi_cell *c)
{
    xi_claim_release(rt, c->claim);
    if (c->name != NULL)
        free_name(c->name, rt);
    xi_recovery_cell_free(c);
    xi_obs_free(rt, c);
    xi_mem_free(&rt->mem, c, cell_size(c->def, c->arg_size, cell_rec_size(c)));
}

/* A grace period after the reap: no walk of the wait-for graph can still
   hold the cell. */
static void after_reap(struct rcu_head *head)
{
    XI_TSAN_ACQUIRE(head); /* pairs with the release before the defer */
    struct xi_cell *c = xi_container_of(head, struct xi_cell, rcu);
    xo_runtime_t *rt = c->rt;
    XI_TSAN_ACQUIRE(&rt->rcu_sync);
    free_cell(rt, c);
}

/* Nobody can send to c any more: queue its reap. A stateful actor's marker
   goes behind its mailbox; a stateless actor is reaped by its last task
   (or now, if none is running). */
static void push_reap(struct xi_cell *c)
{
    c->reap.kind = XI_K_REAP;
    if (c->stateless) {
        /* acq_rel: pairs with the decrement in xi_stateless_task_done;
           exactly one side sees the count at zero with DEAD set. */
        uint64_t old = atomic_fetch_or_explicit(&c->inflight, XI_INFLIGHT_DEAD,
                                                memory_order_acq_rel);
        if (old == 0)
            xi_runq_push(xi_pool_worker(c->rt, c->pool), &c->reap);
        return;
    }
    if (xi_mpscq_push(&c->mbox, &c->reap.node))
        xi_schedule(c);
}

void xi_stateless_task_done(struct xi_cell *c)
{
    /* acq_rel: see push_reap. */
    uint64_t old = atomic_fetch_sub_explicit(&c->inflight, 1,
                                             memory_order_acq_rel);
    if (old == (XI_INFLIGHT_DEAD | 1))
        xi_runq_push(xi_pool_worker(c->rt, c->pool), &c->reap);
}

/* urcu's grace period is over; once the workers' send sections that saw
   c are too, nobody can push into c's mailbox any more. */
static void after_grace_period(struct rcu_head *head)
{
    XI_TSAN_ACQUIRE(head); /* pairs with the release before the defer */
    struct xi_cell *c = xi_container_of(head, struct xi_cell, rcu);
    xi_readers_quiesce(c->rt);
    push_reap(c); /* the last touch: the worker may reap c right after */
}

/* Inside a read-side section, runtime open: take c out of its slot and
   registry and queue its reclamation; `waiter` (may be NULL) gets
   on_destroy's outcome, `why` is what the exit point will say. False if
   someone else did it first. */
static bool unpublish(xo_runtime_t *rt, struct xi_cell *c,
                      struct xo_future *waiter, enum xi_exit_kind why,
                      int code)
{
    struct xi_slot *slot = xi_slots_get(&rt->slots, xi_cell_index(c));
    struct xi_cell *expected = c;
    /* acq_rel: one destroyer wins; the release orders nothing new for
       readers, who only test the mark after this. */
    if (!atomic_compare_exchange_strong_explicit(&slot->cell, &expected,
                                                 xi_dying(c),
                                                 memory_order_acq_rel,
                                                 memory_order_acquire))
        return false;
    c->destroy_f = waiter;
    c->reap.flags = (uint16_t)why;
    c->reap.size = (uint32_t)code;
    if (c->name != NULL)
        xi_registry_remove(&rt->names, c->name);
    /* One that may be waiting out a restart backoff need not wait. */
    if (__builtin_expect(xi_cell_rflags(c) & XI_CF_RECOVERY, 0))
        xi_worker_hurry(xi_pool_worker(rt, c->pool));
    /* TSan cannot see call_rcu's hand-off to its thread: say it. */
    XI_TSAN_RELEASE(&c->rcu);
    xi_rcu_defer(&c->rcu, after_grace_period);
    return true;
}

static int new_name(xo_runtime_t *rt, const char *uid, struct xi_name **out)
{
    *out = NULL;
    if (uid == NULL)
        return 0;
    size_t len = strnlen(uid, XO_UID_MAX + 1);
    if (len == 0 || len > XO_UID_MAX)
        return XO_EINVAL;
    struct xi_name *n = xi_mem_alloc(&rt->mem, sizeof(*n) + len + 1);
    if (n == NULL)
        return XO_ENOMEM;
    n->len = len;
    atomic_init(&n->visible, false);
    memcpy(n->uid, uid, len + 1);
    *out = n;
    return 0;
}

/* A supervised child's report and exit notice, made with the cell. */
static int child_envelopes(xo_runtime_t *rt, struct xi_cell *c)
{
    struct xi_recovery *r = xi_cell_recovery(c);
    int rc = xi_signal_new(rt, XI_TAG_CHILD, sizeof(struct xi_sig_child),
                           &r->report);
    if (rc == 0)
        rc = xi_signal_new(rt, XI_TAG_CHILD_GONE,
                           sizeof(struct xi_sig_child), &r->gone);
    return rc;
}

/* Allocate and fill a cell that is not yet visible to anyone. */
static int new_cell(xo_runtime_t *rt, const xo_actor_def_t *def,
                    const xo_spawn_opts_t *opts, uint64_t sup_id,
                    struct xi_cell **out)
{
    unsigned pool;
    struct xi_claim *claim;
    int rc = xi_place(rt, def, opts, &pool, &claim);
    if (rc != 0)
        return rc;
    /* A GPU pool's thread runs one handler at a time, its own actors'
       only: no stateless actor there, and none of its actors moves. */
    bool general = xi_pool_general(xi_pool_at(rt, pool));
    if (!general && (def->flags & XO_ACTOR_STATELESS)) {
        xi_claim_release(rt, claim);
        return XO_EINVAL;
    }
    /* Only an actor that may be restarted keeps its argument and has a
       recovery record: a copy of 16 bytes takes a 192-byte cell to 256. */
    size_t rec_size = xi_recovery_size(opts, sup_id != 0);
    bool keep_arg = rec_size != 0;
    size_t size = cell_size(def, keep_arg ? opts->arg_size : 0, rec_size);
    struct xi_cell *c = xi_mem_zalloc(&rt->mem, size);
    if (c == NULL) {
        xi_claim_release(rt, claim);
        return XO_ENOMEM;
    }
    c->claim = claim;
    c->rt = rt;
    c->def = def;
    if (keep_arg) { /* what a restart runs on_create with again */
        c->arg_size = (uint32_t)opts->arg_size;
        if (opts->arg_size > 0)
            memcpy(c->state + xi_cell_state_room(def), opts->arg,
                   opts->arg_size);
    }
    xi_recovery_init(c, opts, sup_id);
    c->pool = pool;
    c->stateless = (def->flags & XO_ACTOR_STATELESS) != 0;
    c->movable = !c->stateless && general && movable(opts);
    c->capacity = c->stateless ? 0 : opts->capacity;
    c->run.kind = XI_K_ACTOR;
    c->reap.kind = XI_K_REAP;
    /* busy until on_create is over */
    xi_mpscq_init(&c->mbox, &c->mbox_tail, false);
    rc = new_name(rt, opts->uid, &c->name);
    if (rc == 0 && sup_id != 0)
        rc = child_envelopes(rt, c);
    uint32_t index, gen;
    if (rc == 0)
        rc = xi_slots_take(&rt->slots, &rt->mem, &index, &gen);
    if (rc == 0)
        c->id = xi_ref_pack(gen, 0, index);
    if (rc != 0) {
        free_cell(rt, c);
        return rc;
    }
    if (c->name != NULL)
        c->name->ref_id = xi_cell_ref(c).id;
    *out = c;
    return 0;
}

/* publish(): the chosen pool started leaving meanwhile; place again. */
#define XI_PLACE_AGAIN 1

/* Make c reachable through its slot and uid, unless the runtime closed,
   its pool is leaving, or the uid is taken. */
static int publish(xo_runtime_t *rt, struct xi_cell *c)
{
    int rc = 0;
    xi_rcu_lock();
    if (xi_rt_closing(rt))
        rc = XO_ECLOSED;
    else if (!xi_pool_running(xi_pool_at(rt, c->pool)))
        rc = XI_PLACE_AGAIN; /* xo_pool_remove waits for this section */
    else if (c->name != NULL)
        rc = xi_registry_add(&rt->names, c->name);
    if (rc == 0) {
        struct xi_slot *slot = xi_slots_get(&rt->slots, xi_cell_index(c));
        /* relaxed: counters; stop reads live under its own ordering. */
        atomic_fetch_add_explicit(&rt->live, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&xi_pool_at(rt, c->pool)->actors, 1,
                                  memory_order_relaxed);
        /* release: pairs with the acquire load in xi_resolve. */
        atomic_store_explicit(&slot->cell, c, memory_order_release);
    }
    xi_rcu_unlock(&rt->rcu_sync);
    return rc;
}

/* on_create failed: withdraw the actor. If stop got to it first, its sweep
   reclaims it instead; either way `created` stays false, so the worker
   drops what was queued and skips on_destroy. */
static void withdraw(xo_runtime_t *rt, struct xi_cell *c, int rc)
{
    xi_rcu_lock();
    /* A supervised child is never swept: it must go now, stopping or not
       (its end goes through a grace period like any unpublish). */
    if (!xi_rt_closing(rt) || (xi_cell_rflags(c) & XI_CF_SUPERVISED))
        (void)unpublish(rt, c, NULL, XI_EXIT_FAILED, rc);
    xi_rcu_unlock(&rt->rcu_sync);
}

/* on_create runs on the spawner's thread. When that is a handler on one of
   rt's workers, the spawner's turn is suspended under it for as long: its
   frame says so to the cycle check (wait.c, "Frames"), should on_create
   wait for something that waits for the spawner. */
static int run_on_create(struct xi_cell *c, const void *arg, size_t arg_size)
{
    if (c->def->on_create == NULL)
        return 0;
    struct xo_ctx ctx = xi_ctx_make(c, c->rt, c->pool, 0);
    struct xo_ctx *spawner = xi_current_ctx();
    struct xi_worker *w = xi_worker_of(c->rt);
    bool framed = spawner != NULL && spawner->cell != NULL &&
                  spawner->rt == c->rt && w != NULL &&
                  xi_frame_push(w, spawner->cell);
    xi_ctx_enter(&ctx);
    int rc = c->def->on_create(&ctx, c->state, arg, arg_size);
    if (ctx.crash != 0)
        rc = ctx.crash; /* a crash in the first on_create: the spawn fails */
    xi_ctx_leave(&ctx); /* xo_spawn returns the code only */
    if (framed)
        xi_frame_pop(w);
    return rc < 0 ? rc : 0;
}

static int spawn(xo_runtime_t *rt, const xo_actor_def_t *def,
                 const xo_spawn_opts_t *opts, uint64_t sup_id, xo_ref_t *out)
{
    if (rt == NULL || def == NULL || out == NULL)
        return XO_EINVAL;
    xo_spawn_opts_t defaults;
    if (opts == NULL) {
        xo_spawn_opts_init(&defaults);
        opts = &defaults;
    }
    if ((opts->arg == NULL && opts->arg_size > 0) ||
        opts->arg_size > UINT32_MAX)
        return XO_EINVAL;
    if (def->state_size > XO_STATE_MAX ||
        (unsigned)opts->move > XO_MOVE_FREE)
        return XO_EINVAL;
    int rc = xi_recovery_check(def, opts);
    if (rc != 0)
        return rc;
    if (xi_rt_closing(rt))
        return XO_ECLOSED;
    struct xi_cell *c;
    for (int attempt = 0;; attempt++) {
        rc = new_cell(rt, def, opts, sup_id, &c);
        if (rc != 0)
            return rc;
        rc = publish(rt, c);
        if (rc == 0)
            break;
        xi_slots_give(&rt->slots, xi_cell_index(c));
        free_cell(rt, c);
        if (rc != XI_PLACE_AGAIN)
            return rc;
        if (attempt == 3)
            return XO_ENOSLOT;
    }
    rc = run_on_create(c, opts->arg, opts->arg_size);
    if (rc == 0) {
        c->created = true;
        /* release: lookups that find the uid see a created actor. */
        if (c->name != NULL)
            atomic_store_explicit(&c->name->visible, true,
                                  memory_order_release);
    } else {
        withdraw(rt, c, rc);
    }
    xo_ref_t ref = xi_cell_ref(c);
    /* From here on c may be reclaimed at any time (if withdrawn). */
    if (!xi_mpscq_mark_idle(&c->mbox, c->mbox_tail))
        xi_schedule(c);
    if (rc != 0)
        return rc;
    *out = ref;
    return 0;
}

int xo_spawn(xo_runtime_t *rt, const xo_actor_def_t *def,
             const xo_spawn_opts_t *opts, xo_ref_t *out)
{
    return spawn(rt, def, opts, 0, out);
}

int xi_spawn_child(xo_runtime_t *rt, const xo_actor_def_t *def,
                   const xo_spawn_opts_t *opts, uint64_t sup_id,
                   xo_ref_t *out)
{
    return spawn(rt, def, opts, sup_id, out);
}

int xo_lookup(xo_runtime_t *rt, const char *uid, xo_ref_t *out)
{
    if (rt == NULL || uid == NULL || out == NULL)
        return XO_EINVAL;
    size_t len = strnlen(uid, XO_UID_MAX + 1);
    if (len == 0 || len > XO_UID_MAX)
        return XO_EINVAL;
    uint64_t id = 0;
    int rc;
    xi_rcu_lock();
    if (xi_rt_closing(rt))
        rc = XO_ECLOSED;
    else
        rc = xi_registry_find(&rt->names, uid, len, &id);
    xi_rcu_unlock(&rt->rcu_sync);
    if (rc == 0)
        *out = (xo_ref_t){ rt, id };
    return rc;
}

bool xo_ref_alive(xo_ref_t ref)
{
    if (ref.rt == NULL)
        return false;
    xi_rcu_lock();
    bool alive = !xi_rt_closing(ref.rt) &&
                 xi_resolve(&ref.rt->slots, ref.id) != NULL;
    xi_rcu_unlock(&ref.rt->rcu_sync);
    return alive;
}

int xo_destroy(xo_ref_t ref)
{
    xo_runtime_t *rt = ref.rt;
    if (rt == NULL)
        return XO_EINVAL;
    /* An actor destroying itself cannot wait for its own on_destroy. */
    struct xo_ctx *ctx = xi_current_ctx();
    bool self = ctx != NULL && ctx->cell != NULL && ctx->rt == rt &&
                xi_cell_ref(ctx->cell).id == ref.id;
    struct xo_future *f = NULL;
    if (!self) {
        int rc = xi_future_new(rt, ref.id, 1, &f);
        if (rc != 0)
            return rc;
        /* relaxed: the cell's reference, dropped when the destroy settles. */
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    }
    int rc = 0;
    xi_rcu_lock();
    if (xi_rt_closing(rt)) {
        rc = XO_ECLOSED;
    } else {
        struct xi_cell *c = xi_resolve(&rt->slots, ref.id);
        if (c == NULL || !unpublish(rt, c, f, XI_EXIT_DESTROYED, 0))
            rc = XO_ENOTEXIST;
        else if (self) /* a permanent actor restarts after this */
            xi_cell_set_rflags(c, XI_CF_SELF_DESTROY);
    }
    xi_rcu_unlock(&rt->rcu_sync);
    if (f == NULL)
        return rc;
    if (rc != 0) {
        xi_future_unref(f); /* the cell's, never handed over */
        xo_future_release(f);
        return rc;
    }
    /* XO_EDEADLK: the destroy goes on, but its outcome cannot be awaited
       from here. */
    rc = xi_future_wait_internal(f, -1);
    if (rc == 0)
        rc = f->items[0].status;
    xo_future_release(f);
    return rc;
}

/* on_destroy refused: put the actor back where senders find it. Inside
   the RCU section, and only while the runtime is open (stop's sweep must
   see every published actor). */
static bool revive(xo_runtime_t *rt, struct xi_cell *c)
{
    bool revived = false;
    xi_rcu_lock();
    /* Not while stopping, nor when its pool is being removed: then the
       actor goes regardless (xo_pool_remove waits for it). */
    if (!xi_rt_closing(rt) && xi_pool_running(xi_pool_at(rt, c->pool))) {
        /* Reset everything a sender or a destroyer could touch first, and
           make the cell reachable last: until the slot holds it again, no
           one can find it. */
        if (c->stateless) /* relaxed: published by the release CAS below */
            atomic_store_explicit(&c->inflight, 0, memory_order_relaxed);
        if (c->name != NULL && xi_registry_add(&rt->names, c->name) != 0) {
            /* Another actor took the uid meanwhile: live on unnamed. The
               failed add never linked the node, so it can go now. */
            free_name(c->name, rt);
            c->name = NULL;
        }
        struct xi_slot *slot = xi_slots_get(&rt->slots, xi_cell_index(c));
        /* release: republishes c with the resets above. The slot is still
           ours (not given back), so it holds c with the DYING mark. */
        atomic_store_explicit(&slot->cell, c, memory_order_release);
        revived = true;
    }
    xi_rcu_unlock(&rt->rcu_sync);
    return revived;
}

/* Tell the destroyer (or, for a self-destroy, the failure path) that
   on_destroy refused with rc. */
static void report_refusal(struct xi_cell *c, struct xo_future *f, int rc,
                           const char *message)
{
    if (f != NULL) {
        xi_future_complete_item(f, 0, rc, message, NULL, true);
        xi_future_unref(f);
    } else {
        xi_actor_failed(c->rt, c, xi_cell_ref(c), 0, rc, message);
    }
}

bool xi_cell_unpublish(xo_runtime_t *rt, struct xi_cell *c,
                       enum xi_exit_kind why)
{
    return unpublish(rt, c, NULL, why, 0);
}

bool xi_cell_end(xo_runtime_t *rt, struct xi_cell *c, enum xi_exit_kind why,
                 int code)
{
    return unpublish(rt, c, NULL, why, code);
}

bool xi_cell_stop(xo_runtime_t *rt, struct xi_cell *c, struct xo_future *f,
                  enum xi_exit_kind why)
{
    return unpublish(rt, c, f, why, 0);
}

bool xi_cell_revive(xo_runtime_t *rt, struct xi_cell *c)
{
    return revive(rt, c);
}

/*
 * The exit point: every actor's end comes here, once, on its worker, with
 * why it ended: reclaim (slot, pool count, claim; memory one grace period
 * later), tell the exit hook (monitors, links and supervisors attach
 * there), then the destroyer, then stop if this was the last actor.
 */
static void actor_exit(struct xi_cell *c, struct xo_future *destroyer,
                       const struct xi_exit *why)
{
    xo_runtime_t *rt = c->rt;
    xo_ref_t ref = xi_cell_ref(c);
    /* release: pairs with the acquire loads in xi_resolve_dying; a walk
       that still finds the cell keeps it until its section ends. */
    atomic_store_explicit(&xi_slots_get(&rt->slots, xi_cell_index(c))->cell,
                          NULL, memory_order_release);
    /* release: pairs with xo_pool_remove's acquire poll of the count. */
    atomic_fetch_sub_explicit(&xi_pool_at(rt, c->pool)->actors, 1,
                              memory_order_release);
    xi_claim_release(rt, c->claim);
    c->claim = NULL;
    xi_slots_give(&rt->slots, xi_cell_index(c));
    /* TSan cannot see call_rcu's hand-off to its thread: say it. */
    if (xi_cell_rflags(c) & (XI_CF_WATCHED | XI_CF_SUPERVISED))
        xi_recovery_exit(rt, c, why); /* DOWNs, links, the supervisor */
    XI_TSAN_RELEASE(&c->rcu);
    xi_rcu_defer(&c->rcu, after_reap);
    if (rt->exit_hook != NULL)
        rt->exit_hook(rt, ref, why, rt->exit_hook_arg);
    if (destroyer != NULL) {
        xi_future_complete_item(destroyer, 0, 0, NULL, NULL, true);
        xi_future_unref(destroyer);
    }
    xi_runtime_actor_gone(rt);
}

bool xi_cell_reap(struct xi_cell *c, struct xo_ctx *ctx)
{
    xo_runtime_t *rt = c->rt;
    int rc = 0;
    /* Taken before a revive can let the next destroyer store its own. */
    struct xo_future *f = c->destroy_f;
    c->destroy_f = NULL;
    struct xi_exit why = { (enum xi_exit_kind)c->reap.flags,
                           (int)c->reap.size, NULL };
    if (c->created && c->def->on_destroy != NULL) {
        rc = c->def->on_destroy(ctx, c->state);
        if (__builtin_expect(ctx->crash != 0, 0)) {
            /* A crash in on_destroy does not keep the actor: it ends
               anyway; the crash is reported. */
            xi_actor_failed(rt, c, xi_cell_ref(c), 0, ctx->crash,
                            ctx->fail_msg == xi_crash_no_text
                                ? NULL
                                : ctx->fail_msg);
            ctx->crash = 0;
            rc = 0;
        }
    }
    /* The self-destroy mark holds for this reap only (a revive after a
       refusal must not leave it for a later destroyer's). */
    uint8_t fl = atomic_fetch_and_explicit(&c->rflags,
                                           (uint8_t)~XI_CF_SELF_DESTROY,
                                           memory_order_relaxed);
    if (__builtin_expect((fl & XI_CF_SELF_DESTROY) && rc >= 0 && f == NULL &&
                             (fl & XI_CF_RECOVERY) &&
                             xi_cell_recovery(c)->policy == XO_RESTART_ALWAYS,
                         0)) {
        /* A permanent actor that destroyed itself is restarted. */
        xi_ctx_end_run(ctx);
        if (xi_recovery_reap_restart(ctx))
            return false;
    }
    if (rc < 0) {
        if (revive(rt, c)) {
            report_refusal(c, f, rc, ctx->fail_msg);
            xi_ctx_end_run(ctx);
            return false;
        }
        /* Stopping, or its pool is leaving: the actor goes regardless;
           say that it objected. */
        xi_actor_failed(rt, c, xi_cell_ref(c), 0, rc, ctx->fail_msg);
    }
    xi_ctx_end_run(ctx);
    actor_exit(c, f, &why);
    return true;
}

void xi_actors_close_all(xo_runtime_t *rt)
{
    /* acquire: pairs with the release of count in xi_slots_take. */
    uint32_t n = atomic_load_explicit(&rt->slots.count, memory_order_acquire);
    /* The set of published actors cannot change any more (spawn, destroy,
       withdraw and revive all check `closing`). First take every uid out
       of the registry and let a grace period pass, so no reader inside
       liburcu (its resize worker) can still hold a name when the reap
       frees it; then unpublish each actor and queue its reap. */
    for (uint32_t i = 0; i < n; i++) {
        /* A section per cell: a supervised child that its supervisor ends
           meanwhile is freed after a grace period, not under us. */
        xi_rcu_lock();
        struct xi_cell *c = xi_slot_live_cell(&rt->slots, i);
        if (c != NULL && c->name != NULL &&
            !(xi_cell_rflags(c) & XI_CF_SUPERVISED))
            xi_registry_remove(&rt->names, c->name);
        xi_rcu_unlock(&rt->rcu_sync);
    }
    xi_grace_wait(rt);
    /* Monitors fire before any end is queued: each watcher handles its
       DOWN before its own end. */
    xi_recovery_stopping(rt);
    for (uint32_t i = 0; i < n; i++) {
        /* The grace period orders this after pass one; the section keeps
           a supervised child being ended meanwhile from being freed while
           we read its flags. */
        xi_rcu_lock();
        struct xi_cell *c = xi_slot_live_cell(&rt->slots, i);
        /* Its supervisor ends a supervised child, in order. */
        struct xi_cell *expected = c;
        /* acq_rel: see unpublish. */
        if (c != NULL && !(xi_cell_rflags(c) & XI_CF_SUPERVISED) &&
            atomic_compare_exchange_strong_explicit(
                &xi_slots_get(&rt->slots, i)->cell, &expected, xi_dying(c),
                memory_order_acq_rel, memory_order_acquire)) {
            c->reap.flags = XI_EXIT_STOPPING;
            push_reap(c);
        }
        xi_rcu_unlock(&rt->rcu_sync);
    }
}
