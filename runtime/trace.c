/*
 * trace.c -- the trace's rings and their export as Chrome trace-event JSON
 * (design in trace.h; docs/trace.md).
 *
 * Flows. An envelope has no room for a flow id, and needs none: a send
 * records the envelope's address, and the handler run that takes it
 * records the same address. An address is used again only after its
 * message was handled and freed, so, in time order, each send of an
 * address is followed by the handling of that same message before any
 * other send of it. The export sorts sends and handlings by (address,
 * time) and pairs each send with the handling that follows it; a pair
 * whose other half a full ring overwrote is left out.
 */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>

#define XI_TRACE_DEFAULT 65536u

struct ring {
    _Atomic uint64_t head;   /* events ever written (slot = head & mask) */
    _Atomic int busy;        /* writers in the middle of a write */
    uint64_t mask;
    struct xi_trace_ev *ev;
};

struct xi_trace {
    unsigned nrings;         /* rings[0..npools-1]: pool i's worker;
                                rings[npools]: every other thread */
    unsigned npools;
    uint64_t t0;
    size_t cap;
    struct xi_trace *older; /* the trace this one replaced */
    struct ring rings[];
};

/* ---- recording ---------------------------------------------------------- */

static void put(struct ring *r, uint64_t slot, enum xi_trace_kind kind,
                uint64_t a, uint64_t b, uint32_t c)
{
    struct xi_trace_ev *e = &r->ev[slot & r->mask];
    e->ts = xi_now_ns();
    e->a = a;
    e->b = b;
    e->kind = kind;
    e->c = c;
}

void xi_trace_record(xo_runtime_t *rt, enum xi_trace_kind kind, uint64_t a,
                     uint64_t b, uint32_t c)
{
    /* acquire: pairs with the release that published the rings. */
    struct xi_trace *t = atomic_load_explicit(&rt->trace,
                                              memory_order_acquire);
    if (t == NULL)
        return;
    struct xi_worker *w = xi_worker_of(rt);
    bool own = w != NULL && w->pool->index < t->npools;
    struct ring *r = &t->rings[own ? w->pool->index : t->npools];
    /* seq_cst, both: against xo_trace_stop's clear of the flag and its
       wait for busy (trace.h). */
    atomic_fetch_add(&r->busy, 1);
    if (atomic_load(&rt->trace_on)) {
        if (own) { /* one writer: a plain bump, published by the release */
            uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
            put(r, h, kind, a, b, c);
            atomic_store_explicit(&r->head, h + 1, memory_order_release);
        } else {
            uint64_t h = atomic_fetch_add_explicit(&r->head, 1,
                                                   memory_order_acq_rel);
            put(r, h, kind, a, b, c);
        }
    }
    atomic_fetch_sub(&r->busy, 1);
}

/* ---- start, stop -------------------------------------------------------- */

static size_t pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n && p < ((size_t)1 << 40))
        p <<= 1;
    return p;
}

static void rings_free(xo_runtime_t *rt, struct xi_trace *t)
{
    for (unsigned i = 0; i < t->nrings; i++)
        if (t->rings[i].ev != NULL)
            xi_mem_free(&rt->mem, t->rings[i].ev,
                        t->cap * sizeof(struct xi_trace_ev));
    xi_mem_free(&rt->mem, t,
                sizeof(*t) + t->nrings * sizeof(struct ring));
}

int xo_trace_start(xo_runtime_t *rt, size_t events_per_worker)
{
    if (rt == NULL || events_per_worker > ((size_t)1 << 32))
        return XO_EINVAL;
    if (xi_worker_of(rt) != NULL || xi_current_ctx() != NULL)
        return XO_EINVAL; /* stop and write wait for every worker */
    if (xi_rt_closing(rt))
        return XO_ECLOSED;
    size_t cap = pow2_at_least(events_per_worker ? events_per_worker
                                                 : XI_TRACE_DEFAULT);
    pthread_mutex_lock(&rt->trace_lock);
    int rc = 0;
    if (atomic_load(&rt->trace_on)) { /* seq_cst, under trace_lock */
        rc = XO_EEXIST;
        goto out;
    }
    unsigned npools = xi_pool_slots(rt);
    unsigned n = npools + 1;
    struct xi_trace *t = xi_mem_alloc(&rt->mem,
                                      sizeof(*t) + n * sizeof(struct ring));
    if (t == NULL) {
        rc = XO_ENOMEM;
        goto out;
    }
    memset(t, 0, sizeof(*t) + n * sizeof(struct ring));
    t->nrings = n;
    t->npools = npools;
    t->cap = cap;
    t->t0 = xi_now_ns();
    for (unsigned i = 0; i < n; i++) {
        t->rings[i].mask = cap - 1;
        t->rings[i].ev = xi_mem_alloc(&rt->mem,
                                      cap * sizeof(struct xi_trace_ev));
        if (t->rings[i].ev == NULL) {
            rings_free(rt, t);
            rc = XO_ENOMEM;
            goto out;
        }
    }
    /* A new trace replaces what the last one recorded; the old rings stay
       until xo_runtime_free (a writer that saw the old flag may still be
       touching their busy count). */
    t->older = atomic_load_explicit(&rt->trace, memory_order_relaxed);
    /* release: the rings before the pointer. */
    atomic_store_explicit(&rt->trace, t, memory_order_release);
    /* seq_cst: the rings are published before any hook sees the flag
       (the hooks' relaxed load, then xi_trace_record's seq_cst one). */
    atomic_store(&rt->trace_on, true);
out:
    pthread_mutex_unlock(&rt->trace_lock);
    return rc;
}

/* Clear the flag and wait out the writes under way (trace.h). Under
   trace_lock. */
static void quiesce(xo_runtime_t *rt)
{
    /* seq_cst: against the writers' busy add and flag load (trace.h). */
    atomic_store(&rt->trace_on, false);
    /* seq_cst (under trace_lock): start's release store of the rings. */
    struct xi_trace *t = atomic_load(&rt->trace);
    if (t == NULL)
        return;
    for (unsigned i = 0; i < t->nrings; i++)
        /* seq_cst: pairs with the writers' busy add (trace.h). */
        while (atomic_load(&t->rings[i].busy) != 0)
            xi_cpu_relax();
}

int xo_trace_stop(xo_runtime_t *rt)
{
    if (rt == NULL)
        return XO_EINVAL;
    pthread_mutex_lock(&rt->trace_lock);
    bool on = atomic_load(&rt->trace_on); /* seq_cst, under trace_lock */
    quiesce(rt);
    pthread_mutex_unlock(&rt->trace_lock);
    return on ? 0 : XO_EINVAL;
}

void xi_trace_free(xo_runtime_t *rt)
{
    quiesce(rt);
    /* seq_cst: no writer is left (quiesce; the workers are joined). */
    struct xi_trace *t = atomic_load(&rt->trace);
    while (t != NULL) {
        struct xi_trace *older = t->older;
        rings_free(rt, t);
        t = older;
    }
    atomic_store(&rt->trace, NULL);
}

/* ---- the export ----------------------------------------------------------- */

struct item {
    struct xi_trace_ev ev;
    unsigned tid;
    uint64_t flow; /* sends and handlings: their pair's id, 0: none */
};

static int by_addr_time(const void *x, const void *y)
{
    const struct item *a = *(struct item *const *)x;
    const struct item *b = *(struct item *const *)y;
    if (a->ev.a != b->ev.a)
        return a->ev.a < b->ev.a ? -1 : 1;
    if (a->ev.ts != b->ev.ts)
        return a->ev.ts < b->ev.ts ? -1 : 1;
    /* The same instant: the send first. */
    return (a->ev.kind == XI_TR_MSG) - (b->ev.kind == XI_TR_MSG);
}

static double us(const struct xi_trace *t, uint64_t ts)
{
    return ts > t->t0 ? (double)(ts - t->t0) / 1e3 : 0.0;
}

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static const char *instant_name(uint32_t kind)
{
    switch (kind) {
    case XI_TR_PARK: return "park";
    case XI_TR_WAKE: return "wake";
    case XI_TR_CALL: return "call";
    case XI_TR_CALL_DONE: return "call done";
    case XI_TR_FAIL: return "failure";
    case XI_TR_ALERT: return "alert";
    }
    return "?";
}

struct open_turn {
    uint64_t actor, ts;
    const char *name;
    unsigned messages; /* handlings inside it, nested turns' excluded */
};

#define XI_TURN_DEPTH (XO_MAX_NESTED_WAITS + 2)

static void turn_slice(FILE *out, const struct xi_trace *t, unsigned tid,
                       const struct open_turn *o, uint64_t end, bool *first)
{
    fprintf(out, "%s\n{\"ph\":\"X\",\"pid\":1,\"tid\":%u,\"ts\":%.3f,"
                 "\"dur\":%.3f,\"name\":",
            *first ? "" : ",", tid, us(t, o->ts), us(t, end) - us(t, o->ts));
    json_string(out, o->name ? o->name : "?");
    fprintf(out, ",\"cat\":\"turn\",\"args\":{\"actor\":\"%#llx\","
                 "\"messages\":%u}}",
            (unsigned long long)o->actor, o->messages);
    *first = false;
}

/* One track's events, in order: its turns as complete events (nested
   ones, a wait's, inside their outer turn), its sends, handlings and
   instants. */
static void write_track(FILE *out, const struct xi_trace *t, struct item *v,
                        size_t n, bool *first)
{
    struct open_turn stack[XI_TURN_DEPTH];
    unsigned depth = 0;
    for (size_t i = 0; i < n; i++) {
        const struct xi_trace_ev *e = &v[i].ev;
        unsigned tid = v[i].tid;
        switch (e->kind) {
        case XI_TR_TURN:
            if (depth < XI_TURN_DEPTH)
                stack[depth++] = (struct open_turn){
                    e->a, e->ts, (const char *)(uintptr_t)e->b, 0 };
            break;
        case XI_TR_TURN_END:
            /* An end whose start a wrapped ring lost has no slice. */
            if (depth == 0 || stack[depth - 1].actor != e->a)
                break;
            depth--;
            turn_slice(out, t, tid, &stack[depth], e->ts, first);
            break;
        case XI_TR_SEND:
            /* A slice of its own for the send, so that the flow starts
               inside one on every track (outside threads have no turns). */
            fprintf(out, "%s\n{\"ph\":\"X\",\"pid\":1,\"tid\":%u,\"ts\":%.3f,"
                         "\"dur\":0.001,\"name\":\"send\",\"cat\":\"send\","
                         "\"args\":{\"to\":\"%#llx\",\"tag\":%u}}",
                    *first ? "" : ",", tid, us(t, e->ts),
                    (unsigned long long)e->b, e->c);
            *first = false;
            if (v[i].flow != 0)
                fprintf(out, ",\n{\"ph\":\"s\",\"pid\":1,\"tid\":%u,"
                             "\"ts\":%.3f,\"id\":%llu,\"name\":\"message\","
                             "\"cat\":\"message\"}",
                        tid, us(t, e->ts), (unsigned long long)v[i].flow);
            break;
        case XI_TR_MSG:
            if (depth > 0)
                stack[depth - 1].messages++;
            if (v[i].flow != 0) {
                fprintf(out, "%s\n{\"ph\":\"f\",\"bp\":\"e\",\"pid\":1,"
                             "\"tid\":%u,\"ts\":%.3f,\"id\":%llu,"
                             "\"name\":\"message\",\"cat\":\"message\"}",
                        *first ? "" : ",", tid, us(t, e->ts),
                        (unsigned long long)v[i].flow);
                *first = false;
            }
            break;
        default:
            fprintf(out, "%s\n{\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":%u,"
                         "\"ts\":%.3f,\"name\":\"%s\",\"args\":{\"a\":"
                         "\"%#llx\",\"b\":%llu,\"c\":%d}}",
                    *first ? "" : ",", tid, us(t, e->ts),
                    instant_name(e->kind), (unsigned long long)e->a,
                    (unsigned long long)e->b, (int)(int32_t)e->c);
            *first = false;
        }
    }
    /* Turns the stop cut short (their ends came after it): they end at
       the track's last event. */
    uint64_t last = n > 0 ? v[n - 1].ev.ts : 0;
    while (depth > 0) {
        depth--;
        turn_slice(out, t, n > 0 ? v[0].tid : 0, &stack[depth], last, first);
    }
}

int xo_trace_write(xo_runtime_t *rt, FILE *out)
{
    if (rt == NULL || out == NULL)
        return XO_EINVAL;
    pthread_mutex_lock(&rt->trace_lock);
    /* seq_cst, both, under trace_lock: start and stop store them under
       it too; stop's quiesce made the rings' contents still. */
    struct xi_trace *t = atomic_load(&rt->trace);
    int rc = 0;
    if (t == NULL || atomic_load(&rt->trace_on)) {
        rc = XO_EINVAL; /* never started, or still recording */
        goto out;
    }
    size_t total = 0;
    for (unsigned i = 0; i < t->nrings; i++) {
        /* seq_cst: after quiesce, which waited out the last write. */
        uint64_t h = atomic_load(&t->rings[i].head);
        total += h < t->cap ? h : t->cap;
    }
    struct item *v = total ? xi_mem_alloc(&rt->mem, total * sizeof(*v)) : NULL;
    struct item **ends = total ? xi_mem_alloc(&rt->mem, total * sizeof(*ends))
                               : NULL;
    if (total != 0 && (v == NULL || ends == NULL)) {
        if (v != NULL)
            xi_mem_free(&rt->mem, v, total * sizeof(*v));
        if (ends != NULL)
            xi_mem_free(&rt->mem, ends, total * sizeof(*ends));
        rc = XO_ENOMEM;
        goto out;
    }
    /* Each ring's events, oldest first; the tracks in ring order. */
    size_t n = 0, nends = 0;
    size_t start[XO_POOLS_MAX + 2];
    for (unsigned i = 0; i < t->nrings; i++) {
        start[i] = n;
        struct ring *r = &t->rings[i];
        uint64_t h = atomic_load(&r->head); /* seq_cst: as above */
        uint64_t from = h > t->cap ? h - t->cap : 0;
        /* A handling counts only inside a turn whose start the ring
           kept (a wrapped ring loses the oldest starts). */
        uint64_t open[XI_TURN_DEPTH];
        unsigned depth = 0;
        for (uint64_t k = from; k < h; k++) {
            v[n] = (struct item){ r->ev[k & r->mask], i + 1, 0 };
            const struct xi_trace_ev *e = &v[n].ev;
            if (e->kind == XI_TR_TURN && depth < XI_TURN_DEPTH)
                open[depth++] = e->a;
            else if (e->kind == XI_TR_TURN_END && depth > 0 &&
                     open[depth - 1] == e->a)
                depth--;
            if (e->kind == XI_TR_SEND ||
                (e->kind == XI_TR_MSG && depth > 0))
                ends[nends++] = &v[n];
            n++;
        }
    }
    start[t->nrings] = n;
    /* Pair each send with the handling that follows it (the file's
       head comment). */
    if (nends > 1)
        qsort(ends, nends, sizeof(*ends), by_addr_time);
    uint64_t flows = 0;
    for (size_t k = 0; k + 1 < nends; k++)
        if (ends[k]->ev.kind == XI_TR_SEND &&
            ends[k + 1]->ev.kind == XI_TR_MSG &&
            ends[k]->ev.a == ends[k + 1]->ev.a) {
            ends[k]->flow = ends[k + 1]->flow = ++flows;
            k++;
        }
    fprintf(out, "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[");
    fprintf(out, "\n{\"ph\":\"M\",\"pid\":1,\"name\":\"process_name\","
                 "\"args\":{\"name\":\"xoscar\"}}");
    for (unsigned i = 0; i < t->nrings; i++) {
        if (i < t->npools)
            fprintf(out, ",\n{\"ph\":\"M\",\"pid\":1,\"tid\":%u,"
                         "\"name\":\"thread_name\",\"args\":{\"name\":"
                         "\"pool %u worker\"}}",
                    i + 1, i);
        else
            fprintf(out, ",\n{\"ph\":\"M\",\"pid\":1,\"tid\":%u,"
                         "\"name\":\"thread_name\",\"args\":{\"name\":"
                         "\"other threads\"}}",
                    i + 1);
    }
    bool first = false;
    for (unsigned i = 0; i < t->nrings; i++)
        write_track(out, t, v + start[i], start[i + 1] - start[i], &first);
    fprintf(out, "\n]}\n");
    if (total != 0) {
        xi_mem_free(&rt->mem, v, total * sizeof(*v));
        xi_mem_free(&rt->mem, ends, total * sizeof(*ends));
    }
    if (ferror(out))
        rc = XO_EINVAL;
out:
    pthread_mutex_unlock(&rt->trace_lock);
    return rc;
}
