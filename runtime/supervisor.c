/*
 * supervisor.c -- supervisors: an actor of the runtime's own that starts
 * its children in order, decides about each child's failure, and stops
 * them in reverse order at its end (docs/recovery.md).
 *
 * A supervised child that fails does not decide for itself: its failed
 * incarnation goes (on_destroy), it is held (suspended, its hold state
 * HELD once its turn is over) and its report reaches the supervisor's
 * mailbox. The supervisor claims it (a CAS from HELD, so a report that
 * arrives after a group restart, or after the child ended, is recognised
 * as stale) and resumes it with what it decided: restart, or end.
 *
 * one_for_all and rest_for_one restart a group in two phases, as Erlang
 * does: the group's children are held in reverse start order (a HOLD
 * signal behind what each has queued; the supervisor waits for each),
 * then started in order (each resumed with START; the supervisor waits
 * for its on_create). A child restarts in place: its ref, uid and queued
 * messages stay.
 *
 * The supervisor's calls (add, remove, list) are calls with the runtime's
 * own tags, so they are served in its turns like its children's reports.
 */
#include "runtime.h"

#include <stdio.h>
#include <string.h>

#define XI_SHUTDOWN_DEFAULT_NS UINT64_C(5000000000)

struct sup_child {
    char name[XO_CHILD_NAME_MAX + 1];
    const xo_actor_def_t *def;
    xo_child_restart_t restart;
    uint64_t shutdown_ns;
    xo_ref_t ref;
    uint64_t restarts;
};

struct sup_state {
    xo_sup_strategy_t strategy;
    unsigned intensity;
    uint64_t period_ns;
    uint64_t *ring;          /* the last `intensity` restart times */
    unsigned next, filled;
    struct sup_child *v;
    size_t n, cap;
};

/* ---- specs ------------------------------------------------------------ */

static bool restart_fields_default(const xo_spawn_opts_t *o)
{
    return o->restart == XO_RESTART_NEVER;
}

static int check_child(const xo_child_spec_t *c)
{
    if (c == NULL || c->name == NULL || c->def == NULL)
        return XO_EINVAL;
    size_t len = strnlen(c->name, XO_CHILD_NAME_MAX + 1);
    if (len == 0 || len > XO_CHILD_NAME_MAX)
        return XO_EINVAL;
    if ((c->def->flags & XO_ACTOR_STATELESS) ||
        (unsigned)c->restart > XO_CHILD_TEMPORARY ||
        !restart_fields_default(&c->opts))
        return XO_EINVAL;
    return 0;
}

static int check_spec(const xo_sup_spec_t *s)
{
    if (s == NULL || (unsigned)s->strategy > XO_SUP_REST_FOR_ONE ||
        s->intensity > XO_RESTART_MAX ||
        s->nchildren > XO_SUP_CHILDREN_MAX ||
        (s->children == NULL && s->nchildren > 0))
        return XO_EINVAL;
    for (size_t i = 0; i < s->nchildren; i++) {
        int rc = check_child(&s->children[i]);
        if (rc != 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->children[i].name, s->children[j].name) == 0)
                return XO_EINVAL;
    }
    return 0;
}

static struct sup_child *find_name(struct sup_state *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].name, name) == 0)
            return &s->v[i];
    return NULL;
}

static struct sup_child *find_ref(struct sup_state *s, uint64_t id,
                                  size_t *at)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].ref.id == id) {
            if (at != NULL)
                *at = i;
            return &s->v[i];
        }
    }
    return NULL;
}

static void remove_at(struct sup_state *s, size_t i)
{
    memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(s->v[0]));
    s->n--;
}

/* ---- children ---------------------------------------------------------- */

static int start_child(struct xo_ctx *ctx, const xo_child_spec_t *spec,
                       uint64_t period_ns, struct sup_child *out)
{
    xo_spawn_opts_t o = spec->opts;
    o.restart = spec->restart == XO_CHILD_PERMANENT   ? XO_RESTART_ALWAYS
                : spec->restart == XO_CHILD_TRANSIENT ? XO_RESTART_ON_FAILURE
                                                      : XO_RESTART_NEVER;
    o.restart_max = 1;       /* the supervisor's intensity counts; its
                                period spaces the child's backoff steps */
    o.restart_period_ns = period_ns;
    memset(out, 0, sizeof(*out));
    memcpy(out->name, spec->name, strlen(spec->name) + 1);
    out->def = spec->def;
    out->restart = spec->restart;
    out->shutdown_ns = spec->shutdown_ns ? spec->shutdown_ns
                                         : XI_SHUTDOWN_DEFAULT_NS;
    return xi_spawn_child(ctx->rt, spec->def, &o,
                          xi_cell_ref(ctx->cell).id, &out->ref);
}

/* Claim a held child, inside a read-side section: it is ours to resume.
   The cell stays valid after the section: a claimed child cannot end
   until it is resumed. *dying: it is being destroyed (by xo_destroy, its
   pool's removal): it is to end, not to restart. */
static struct xi_cell *claim_in(xo_runtime_t *rt, uint64_t id,
                                uint64_t incarnation, bool check_incarnation,
                                bool *dying)
{
    struct xi_cell *c = xi_resolve(&rt->slots, id);
    *dying = c == NULL;
    if (c == NULL)
        c = xi_resolve_dying(&rt->slots, id); /* ending: may still be held */
    if (c == NULL)
        return NULL;
    struct xi_recovery *r = xi_cell_recovery(c);
    uint32_t held = XI_HOLD_HELD;
    if ((check_incarnation && xi_cell_incarnation(c) != incarnation) ||
        !atomic_compare_exchange_strong_explicit(&r->hold, &held,
                                                 XI_HOLD_RUNNING,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire))
        return NULL;
    return c;
}

static struct xi_cell *claim(xo_runtime_t *rt, uint64_t id,
                             uint64_t incarnation, bool check_incarnation,
                             bool *dying)
{
    xi_rcu_lock();
    struct xi_cell *c = claim_in(rt, id, incarnation, check_incarnation,
                                 dying);
    xi_rcu_unlock(&rt->rcu_sync);
    return c;
}

static void resume(struct xi_cell *c, enum xi_resume what, struct xo_future *f)
{
    struct xi_recovery *r = xi_cell_recovery(c);
    r->pending = (uint8_t)what;
    r->resume_f = f;
    xi_recovery_wake(c);
}

/* A claimed child that is to end: nothing to run but its mailbox (what is
   queued is refused, tells reported) and its end. */
static void let_end(struct xi_cell *c)
{
    xi_cell_set_rflags(c, XI_CF_FAILED);
    resume(c, XI_RESUME_NONE, NULL);
}

enum waited { W_DONE, W_HELD, W_FAILED };

/*
 * Wait for f, up to timeout_ns (-1: no limit), or until the child is held
 * by a failure of its own (then its report is on its way to this
 * supervisor, which is busy here: waiting for f would never end). W_DONE:
 * f completed, *rc its status; W_HELD: *held claimed; W_FAILED: the wait
 * failed (*rc: XO_ETIMEDOUT, XO_EDEADLK, XO_EDEPTH).
 */
static enum waited wait_or_held(xo_runtime_t *rt, struct xo_future *f,
                                uint64_t id, int64_t timeout_ns,
                                struct xi_cell **held, int *rc)
{
    uint64_t deadline = timeout_ns < 0 ? UINT64_MAX
                                       : xi_deadline_after((uint64_t)timeout_ns);
    int64_t slice = 100000; /* 0.1 ms, growing to 10 ms */
    for (;;) {
        uint64_t now = xi_now_ns();
        if (now >= deadline) {
            *rc = XO_ETIMEDOUT;
            return W_FAILED;
        }
        int64_t left = deadline - now > (uint64_t)slice ? slice
                                                        : (int64_t)(deadline -
                                                                    now);
        int w = xi_future_wait_internal(f, left);
        if (w == 0) {
            *rc = f->items[0].status;
            return W_DONE;
        }
        if (w != XO_ETIMEDOUT) {
            *rc = w;
            return W_FAILED;
        }
        bool dying;
        if ((*held = claim(rt, id, 0, false, &dying)) != NULL)
            return W_HELD;
        if (slice < 10000000)
            slice *= 2;
    }
}

/* Stop one child and wait up to its shutdown time for its end (without
   memory for the future: not waited for; a child left running would
   outlive its supervisor, since nothing else ends a supervised child). A
   child held by a failure (suspended, its old incarnation gone) is
   claimed and let run to its end, even one that is being destroyed
   already. */
static int stop_child(struct xo_ctx *ctx, struct sup_child *ch)
{
    xo_runtime_t *rt = ctx->rt;
    struct xo_future *f = NULL;
    int rc = xi_future_new(rt, ch->ref.id, 1, &f);
    bool waited = rc == 0;
    if (waited) /* relaxed: the cell's reference, as xo_destroy's. */
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    enum xi_exit_kind why = xi_rt_closing(rt) ? XI_EXIT_STOPPING
                                              : XI_EXIT_DESTROYED;
    rc = 0;
    xi_rcu_lock();
    bool dying;
    struct xi_cell *held = claim_in(rt, ch->ref.id, 0, false, &dying);
    struct xi_cell *c = held != NULL ? held : xi_resolve(&rt->slots,
                                                         ch->ref.id);
    if (c == NULL || !xi_cell_stop(rt, c, f, why))
        rc = XO_ENOTEXIST; /* gone, or another end came first */
    if (held != NULL)
        let_end(held);
    xi_rcu_unlock(&rt->rcu_sync);
    if (!waited)
        return XO_ENOMEM;
    if (rc != 0) {
        xi_future_unref(f); /* the cell's, never handed over */
        xo_future_release(f);
        return rc;
    }
    int64_t timeout = (int64_t)(ch->shutdown_ns > INT64_MAX ? INT64_MAX
                                                            : ch->shutdown_ns);
    uint64_t deadline = xi_deadline_after((uint64_t)timeout);
    for (;;) {
        uint64_t now = xi_now_ns();
        if (now >= deadline) {
            rc = XO_ETIMEDOUT;
            break;
        }
        enum waited w = wait_or_held(rt, f, ch->ref.id,
                                     (int64_t)(deadline - now), &held, &rc);
        if (w != W_HELD)
            break;
        let_end(held); /* it was failing as we stopped it */
    }
    xo_future_release(f);
    return rc;
}

static void stop_all(struct xo_ctx *ctx, struct sup_state *s)
{
    for (size_t i = s->n; i-- > 0;)
        (void)stop_child(ctx, &s->v[i]);
    s->n = 0;
}

/* Take back a hold request the child has not taken: true if it was still
   there (the HOLD signal left behind finds none and is ignored). */
static bool take_back(xo_runtime_t *rt, uint64_t id, struct xo_future *f)
{
    bool back = false;
    xi_rcu_lock();
    struct xi_cell *c = xi_resolve_dying(&rt->slots, id);
    if (c != NULL) {
        struct xo_future *mine = f;
        back = atomic_compare_exchange_strong_explicit(
            &xi_cell_recovery(c)->hold_f, &mine, NULL, memory_order_acq_rel,
            memory_order_acquire);
    }
    xi_rcu_unlock(&rt->rcu_sync);
    if (back)
        xi_future_unref(f); /* the child's reference, never taken */
    return back;
}

/* Hold a running child (phase one of a group restart): it handles what it
   has queued, lets its incarnation go and is held. Returns its cell,
   claimed, or NULL (it ended or is ending, or the hold could not be
   made: then it goes on unrestarted). */
static struct xi_cell *hold_child(struct xo_ctx *ctx, struct sup_child *ch)
{
    xo_runtime_t *rt = ctx->rt;
    bool dying;
    struct xi_cell *c = claim(rt, ch->ref.id, 0, false, &dying);
    if (c != NULL) { /* held by a failure already: its report is stale now */
        if (!dying)
            return c;
        let_end(c);
        return NULL;
    }
    struct xo_future *f;
    if (xi_future_new(rt, ch->ref.id, 1, &f) != 0)
        return NULL;
    struct xi_envelope *sig;
    if (xi_signal_new(rt, XI_TAG_HOLD, 0, &sig) != 0) {
        xo_future_release(f);
        return NULL;
    }
    /* relaxed: the child's reference, dropped when it settles the hold. */
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    bool sent = false;
    xi_rcu_lock();
    struct xi_cell *live = xi_resolve(&rt->slots, ch->ref.id);
    if (live != NULL) {
        struct xo_future *old = atomic_exchange_explicit(
            &xi_cell_recovery(live)->hold_f, f, memory_order_acq_rel);
        if (old != NULL)
            xi_future_unref(old); /* cannot be: each hold is settled */
        sent = xi_signal_push(rt, ch->ref.id, sig, true) == 0;
    }
    xi_rcu_unlock(&rt->rcu_sync);
    if (!sent) {
        xi_envelope_free(rt, sig);
        if (live == NULL || !take_back(rt, ch->ref.id, f))
            xi_future_unref(f);
        xo_future_release(f);
        return NULL;
    }
    struct xi_cell *held = NULL;
    int rc = 0;
    switch (wait_or_held(rt, f, ch->ref.id, -1, &held, &rc)) {
    case W_DONE: /* settled: held (0), or ending (an error) */
        if (rc == 0)
            held = claim(rt, ch->ref.id, 0, false, &dying);
        break;
    case W_HELD: /* by its own failure first: our request is void */
        (void)take_back(rt, ch->ref.id, f);
        dying = false;
        break;
    case W_FAILED:
        /* The wait cannot go on (a cycle, a depth): take the request
           back; if the child took it already, it is being held now. */
        if (take_back(rt, ch->ref.id, f))
            break;
        while ((held = claim(rt, ch->ref.id, 0, false, &dying)) == NULL) {
            if (xo_future_done(f) && f->items[0].status != 0)
                break; /* it was ending: nothing to hold */
            sched_yield();
        }
        break;
    }
    xo_future_release(f);
    if (held != NULL && dying) {
        let_end(held);
        return NULL;
    }
    return held;
}

/* Phase two: resume a held child with START and wait for its on_create. */
static void start_held(struct xo_ctx *ctx, struct sup_child *ch,
                       struct xi_cell *c)
{
    struct xo_future *f;
    if (xi_future_new(ctx->rt, ch->ref.id, 1, &f) != 0) {
        resume(c, XI_RESUME_START, NULL); /* started, not waited for */
        return;
    }
    /* relaxed: the child's reference. */
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    resume(c, XI_RESUME_START, f);
    (void)xi_future_wait_internal(f, -1);
    xo_future_release(f);
}

static bool sup_intensity_reached(struct sup_state *s, uint64_t now)
{
    return s->filled == s->intensity &&
           now - s->ring[s->next] < s->period_ns;
}

static void sup_record(struct sup_state *s, uint64_t now)
{
    s->ring[s->next] = now;
    s->next = s->next + 1 == s->intensity ? 0 : s->next + 1;
    if (s->filled < s->intensity)
        s->filled++;
}

/* The supervisor fails: its failure's reason is its intensity; its
   on_destroy (run by the failure) stops the children left. */
static void escalate(struct xo_ctx *ctx, const struct sup_child *ch,
                     int code)
{
    char text[160];
    snprintf(text, sizeof(text),
             "supervisor restart intensity reached (child '%s': %s)",
             ch->name, code < 0 ? xo_strerror(code) : "ended");
    xi_recovery_fail_now(ctx, XO_EXIT_RESTART_INTENSITY,
                         code < 0 ? code : XO_ECANCELED, text);
}

static void restart_group(struct xo_ctx *ctx, struct sup_state *s, size_t at,
                          struct xi_cell *failed)
{
    size_t first = s->strategy == XO_SUP_ONE_FOR_ALL ? 0 : at;
    size_t count = s->n - first;
    struct xi_cell **held = xi_mem_zalloc(&ctx->rt->mem,
                                          count * sizeof(*held));
    if (held == NULL) {
        resume(failed, XI_RESUME_RESTART, NULL); /* the one, at least */
        return;
    }
    for (size_t i = s->n; i-- > first;) {
        if (i == at)
            held[i - first] = failed;
        else
            held[i - first] = hold_child(ctx, &s->v[i]);
    }
    for (size_t i = first; i < s->n; i++) {
        if (held[i - first] == NULL)
            continue; /* it ended meanwhile: its notice will come */
        if (i != at)
            s->v[i].restarts++;
        start_held(ctx, &s->v[i], held[i - first]);
    }
    xi_mem_free(&ctx->rt->mem, held, count * sizeof(*held));
}

static void on_child_failed(struct xo_ctx *ctx, struct sup_state *s,
                            struct xi_envelope *env)
{
    xo_runtime_t *rt = ctx->rt;
    struct xi_sig_child sig = *(const struct xi_sig_child *)env->msg.data;
    bool dying;
    struct xi_cell *c = claim(rt, sig.child, sig.incarnation, true, &dying);
    if (c == NULL) {
        xi_envelope_free(rt, env); /* stale: a group restart took it */
        return;
    }
    struct xi_recovery *r = xi_cell_recovery(c);
    if (r->report == NULL)
        r->report = env; /* for its next failure */
    else
        xi_envelope_free(rt, env);
    if (dying) { /* destroyed meanwhile: it ends, it is not restarted */
        let_end(c);
        return;
    }
    size_t at;
    struct sup_child *ch = ctx->cell->created ? find_ref(s, sig.child, &at)
                                              : NULL;
    if (ch == NULL) {
        resume(c, XI_RESUME_EXIT, NULL); /* removed, or we are ending */
        return;
    }
    if (ch->restart == XO_CHILD_TEMPORARY ||
        (ch->restart == XO_CHILD_TRANSIENT && sig.exited)) {
        resume(c, XI_RESUME_EXIT, NULL);
        remove_at(s, at);
        return;
    }
    uint64_t now = xi_now_ns();
    if (sup_intensity_reached(s, now)) {
        struct sup_child copy = *ch;
        resume(c, XI_RESUME_EXIT, NULL);
        remove_at(s, at);
        escalate(ctx, &copy, sig.code);
        return;
    }
    sup_record(s, now);
    ch->restarts++;
    if (s->strategy == XO_SUP_ONE_FOR_ONE)
        resume(c, XI_RESUME_RESTART, NULL);
    else
        restart_group(ctx, s, at, c);
}

void xi_sup_signal(struct xo_ctx *ctx, struct xi_envelope *env)
{
    struct sup_state *s = (struct sup_state *)(void *)ctx->cell->state;
    if (env->msg.tag == XI_TAG_CHILD) {
        on_child_failed(ctx, s, env);
        return;
    }
    /* A child ended: it is no longer ours (not restarted). */
    const struct xi_sig_child *sig = env->msg.data;
    size_t at;
    if (ctx->cell->created && find_ref(s, sig->child, &at) != NULL)
        remove_at(s, at);
    xi_envelope_free(ctx->rt, env);
}

/* ---- the supervisor actor ------------------------------------------------ */

static void free_state(xo_runtime_t *rt, struct sup_state *s)
{
    if (s->ring != NULL)
        xi_mem_free(&rt->mem, s->ring, s->intensity * sizeof(*s->ring));
    if (s->v != NULL)
        xi_mem_free(&rt->mem, s->v, s->cap * sizeof(*s->v));
    s->ring = NULL;
    s->v = NULL;
    s->n = s->cap = 0;
}

static int grow(xo_runtime_t *rt, struct sup_state *s)
{
    if (s->n < s->cap)
        return 0;
    size_t cap = s->cap ? s->cap * 2 : 8;
    struct sup_child *v = xi_mem_alloc(&rt->mem, cap * sizeof(*v));
    if (v == NULL)
        return XO_ENOMEM;
    if (s->n > 0)
        memcpy(v, s->v, s->n * sizeof(*v));
    if (s->v != NULL)
        xi_mem_free(&rt->mem, s->v, s->cap * sizeof(*s->v));
    s->v = v;
    s->cap = cap;
    return 0;
}

static int sup_create(xo_ctx_t *ctx, void *state, const void *arg,
                      size_t size)
{
    struct sup_state *s = state;
    if (arg == NULL || size != sizeof(xo_sup_spec_t))
        return XO_EINVAL;
    const xo_sup_spec_t *spec = arg;
    int rc = check_spec(spec);
    if (rc != 0)
        return rc;
    s->strategy = spec->strategy;
    s->intensity = spec->intensity ? spec->intensity : 3;
    s->period_ns = spec->period_ns ? spec->period_ns : UINT64_C(5000000000);
    s->ring = xi_mem_zalloc(&ctx->rt->mem, s->intensity * sizeof(*s->ring));
    if (s->ring == NULL)
        return XO_ENOMEM;
    for (size_t i = 0; i < spec->nchildren; i++) {
        rc = grow(ctx->rt, s);
        if (rc == 0)
            rc = start_child(ctx, &spec->children[i], s->period_ns,
                             &s->v[s->n]);
        if (rc != 0) {
            stop_all(ctx, s);
            free_state(ctx->rt, s);
            return rc;
        }
        s->n++;
    }
    return 0;
}

static int sup_destroy(xo_ctx_t *ctx, void *state)
{
    struct sup_state *s = state;
    stop_all(ctx, s);
    free_state(ctx->rt, s);
    return 0;
}

struct list_reply {
    uint64_t total;
    xo_child_info_t v[];
};

/*
 * An added child's spec travels by value, with the strings and the
 * argument it points to: the caller may stop waiting before the
 * supervisor gets to it (a cycle of waits), and then nothing of the
 * caller's may be read. Offsets into `bytes`, UINT32_MAX for none.
 */
#define XI_NONE UINT32_MAX

struct add_req {
    xo_child_spec_t spec;
    uint32_t name_at, uid_at, label_at, mark_at, arg_at;
    alignas(16) unsigned char bytes[];
};

static size_t room(size_t n)
{
    return (n + 15u) & ~(size_t)15u;
}

static size_t str_room(const char *p)
{
    return p != NULL ? room(strlen(p) + 1) : 0;
}

static uint32_t put(unsigned char *bytes, size_t *at, const void *p,
                    size_t n)
{
    if (p == NULL)
        return XI_NONE;
    uint32_t where = (uint32_t)*at;
    memcpy(bytes + *at, p, n);
    *at += room(n);
    return where;
}

/* A packed copy of child (xi_mem: free with its size). */
static struct add_req *add_pack(xo_runtime_t *rt, const xo_child_spec_t *c,
                                size_t *size)
{
    size_t arg = c->opts.arg_size;
    size_t n = sizeof(struct add_req) + room(arg) + str_room(c->name) +
               str_room(c->opts.uid) + str_room(c->opts.place.label) +
               str_room(c->opts.place.mark);
    if (n > XO_MSG_MAX_SIZE)
        return NULL;
    struct add_req *q = xi_mem_zalloc(&rt->mem, n);
    if (q == NULL)
        return NULL;
    q->spec = *c;
    size_t at = 0;
    q->arg_at = arg > 0 ? put(q->bytes, &at, c->opts.arg, arg) : XI_NONE;
    q->name_at = put(q->bytes, &at, c->name, strlen(c->name) + 1);
    q->uid_at = c->opts.uid != NULL
                    ? put(q->bytes, &at, c->opts.uid, strlen(c->opts.uid) + 1)
                    : XI_NONE;
    q->label_at = c->opts.place.label != NULL
                      ? put(q->bytes, &at, c->opts.place.label,
                            strlen(c->opts.place.label) + 1)
                      : XI_NONE;
    q->mark_at = c->opts.place.mark != NULL
                     ? put(q->bytes, &at, c->opts.place.mark,
                           strlen(c->opts.place.mark) + 1)
                     : XI_NONE;
    *size = n;
    return q;
}

static const void *at_or_null(struct add_req *q, uint32_t at)
{
    return at == XI_NONE ? NULL : q->bytes + at;
}

/* The spec of an ADD call, its pointers into the message (valid while
   the handler runs: the spawn copies what it keeps). */
static const xo_child_spec_t *add_unpack(const xo_msg_t *m,
                                         xo_child_spec_t *out)
{
    if (m->size < sizeof(struct add_req))
        return NULL;
    struct add_req *q = m->data;
    *out = q->spec;
    out->name = at_or_null(q, q->name_at);
    out->opts.uid = at_or_null(q, q->uid_at);
    out->opts.place.label = at_or_null(q, q->label_at);
    out->opts.place.mark = at_or_null(q, q->mark_at);
    out->opts.arg = at_or_null(q, q->arg_at);
    return out->name != NULL ? out : NULL;
}

static int sup_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct sup_state *s = state;
    switch (m->tag) {
    case XI_TAG_SUP_ADD: {
        xo_child_spec_t copy;
        const xo_child_spec_t *spec = add_unpack(m, &copy);
        int rc = spec != NULL ? check_child(spec) : XO_EINVAL;
        if (rc != 0)
            return rc;
        if (find_name(s, spec->name) != NULL)
            return XO_EEXIST;
        if (s->n >= XO_SUP_CHILDREN_MAX)
            return XO_EINVAL;
        if ((rc = grow(ctx->rt, s)) != 0)
            return rc;
        rc = start_child(ctx, spec, s->period_ns, &s->v[s->n]);
        if (rc != 0)
            return rc;
        xo_ref_t ref = s->v[s->n++].ref;
        return xo_reply(m->request, 0, &ref, sizeof(ref));
    }
    case XI_TAG_SUP_REMOVE: {
        const char *name = m->data;
        struct sup_child *ch = find_name(s, name);
        if (ch == NULL)
            return XO_ENOTEXIST;
        struct sup_child copy = *ch;
        remove_at(s, (size_t)(ch - s->v));
        return stop_child(ctx, &copy);
    }
    case XI_TAG_SUP_LIST: {
        /* The answer travels in the reply: the caller may have stopped
           waiting (a cycle of waits), so its memory is not ours. */
        uint64_t cap = m->size == sizeof(uint64_t) ? *(const uint64_t *)m->data
                                                   : 0;
        size_t k = s->n < cap ? s->n : (size_t)cap;
        size_t size = sizeof(struct list_reply) + k * sizeof(xo_child_info_t);
        struct list_reply *out = xi_mem_zalloc(&ctx->rt->mem, size);
        if (out == NULL)
            return XO_ENOMEM;
        out->total = s->n;
        for (size_t i = 0; i < k; i++) {
            xo_child_info_t *o = &out->v[i];
            memcpy(o->name, s->v[i].name, sizeof(o->name));
            o->ref = s->v[i].ref;
            o->restart = s->v[i].restart;
            o->restarts = s->v[i].restarts;
        }
        int rc = xo_reply(m->request, 0, out, size);
        xi_mem_free(&ctx->rt->mem, out, size);
        return rc;
    }
    default:
        return XO_EINVAL; /* a supervisor takes no user messages */
    }
}

static const xo_actor_def_t sup_def = {
    .name = "xoscar.supervisor",
    .state_size = sizeof(struct sup_state),
    .on_create = sup_create,
    .on_message = sup_message,
    .on_destroy = sup_destroy,
};

const xo_actor_def_t *xo_supervisor_def(void)
{
    return &sup_def;
}

/* ---- the public calls ----------------------------------------------------- */

int xo_supervisor_start(xo_runtime_t *rt, const xo_sup_spec_t *spec,
                        const xo_spawn_opts_t *opts, xo_ref_t *out)
{
    if (rt == NULL || out == NULL)
        return XO_EINVAL;
    int rc = check_spec(spec);
    if (rc != 0)
        return rc;
    xo_spawn_opts_t o;
    if (opts != NULL)
        o = *opts;
    else
        xo_spawn_opts_init(&o);
    /* Its spec is the caller's, read at start only: a restart would read
       it again. A supervisor that restarts is a child of another, whose
       spec outlives it (xo_supervisor_def). */
    if (o.restart != XO_RESTART_NEVER)
        return XO_EINVAL;
    o.arg = spec;
    o.arg_size = sizeof(*spec);
    return xo_spawn(rt, &sup_def, &o, out);
}

/* A call to the supervisor, waited for. 0 with *out (the caller releases
   it) when it answered without an error. */
static int sup_call(xo_ref_t sup, uint32_t tag, const void *data,
                    size_t size, xo_future_t **out, xo_result_t *res)
{
    xo_future_t *f;
    int rc = xi_call_internal(sup, tag, data, size, &f);
    if (rc != 0)
        return rc;
    rc = xo_future_wait(f, -1);
    if (rc == 0)
        rc = xo_future_result(f, 0, res);
    if (rc != 0) {
        xo_future_release(f);
        return rc;
    }
    *out = f;
    return 0;
}

/* Is ref a supervisor? Checked before a call, so a user actor never sees
   one of its tags. */
static int check_sup(xo_ref_t sup)
{
    if (sup.rt == NULL)
        return XO_EINVAL;
    int rc = 0;
    xi_rcu_lock();
    struct xi_cell *c = xi_rt_closing(sup.rt)
                            ? NULL
                            : xi_resolve(&sup.rt->slots, sup.id);
    if (c == NULL)
        rc = xi_rt_closing(sup.rt) ? XO_ECLOSED : XO_ENOTEXIST;
    else if (c->def != &sup_def)
        rc = XO_EINVAL;
    xi_rcu_unlock(&sup.rt->rcu_sync);
    return rc;
}

int xo_supervisor_add(xo_ref_t sup, const xo_child_spec_t *child,
                      xo_ref_t *out)
{
    int rc = check_sup(sup);
    if (rc != 0)
        return rc;
    if ((rc = check_child(child)) != 0)
        return rc;
    if (child->opts.arg == NULL && child->opts.arg_size > 0)
        return XO_EINVAL;
    size_t size;
    struct add_req *q = add_pack(sup.rt, child, &size);
    if (q == NULL)
        return child->opts.arg_size > XO_MSG_MAX_SIZE / 2 ? XO_EINVAL
                                                          : XO_ENOMEM;
    xo_future_t *f = NULL;
    xo_result_t res;
    rc = sup_call(sup, XI_TAG_SUP_ADD, q, size, &f, &res);
    xi_mem_free(&sup.rt->mem, q, size);
    if (rc != 0)
        return rc;
    if (res.size == sizeof(xo_ref_t) && out != NULL)
        memcpy(out, res.data, sizeof(*out));
    xo_future_release(f);
    return 0;
}

int xo_supervisor_remove(xo_ref_t sup, const char *name)
{
    int rc = check_sup(sup);
    if (rc != 0)
        return rc;
    if (name == NULL)
        return XO_EINVAL;
    size_t len = strnlen(name, XO_CHILD_NAME_MAX + 1);
    if (len == 0 || len > XO_CHILD_NAME_MAX)
        return XO_EINVAL;
    xo_future_t *f = NULL;
    xo_result_t res;
    rc = sup_call(sup, XI_TAG_SUP_REMOVE, name, len + 1, &f, &res);
    if (rc == 0)
        xo_future_release(f);
    return rc;
}

int xo_supervisor_children(xo_ref_t sup, xo_child_info_t *out, size_t cap,
                           size_t *count)
{
    int rc = check_sup(sup);
    if (rc != 0)
        return rc;
    if (count == NULL || (out == NULL && cap > 0))
        return XO_EINVAL;
    uint64_t want = cap;
    xo_future_t *f = NULL;
    xo_result_t res;
    rc = sup_call(sup, XI_TAG_SUP_LIST, &want, sizeof(want), &f, &res);
    if (rc != 0)
        return rc;
    const struct list_reply *r = res.data;
    if (res.size < sizeof(*r)) {
        xo_future_release(f);
        return XO_EINVAL;
    }
    size_t k = (res.size - sizeof(*r)) / sizeof(xo_child_info_t);
    if (k > cap)
        k = cap;
    if (k > 0)
        memcpy(out, r->v, k * sizeof(*out));
    *count = (size_t)r->total;
    xo_future_release(f);
    return 0;
}
