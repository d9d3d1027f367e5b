/*
 * metrics.c -- xo_metrics_write: every stat of a runtime in the Prometheus
 * text exposition format, version 0.0.4 (docs/metrics.md lists each
 * family, its type and its labels).
 *
 * The format wants all samples of a family together, under one HELP and
 * one TYPE line, while the stats come an actor at a time. So nothing is
 * written until everything was read: first one walk over the actors
 * (xo_actors_each, a short read-side section per actor) into a snapshot
 * -- a row of counters per actor, its label text escaped once, and the
 * histogram of each actor that has one -- then the pools and the
 * runtime's own counters. Then the families are written one after the
 * other, each over the rows. Every family shows the same walk, and a
 * failed allocation (XO_ENOMEM) leaves `out` untouched.
 *
 * The snapshot lives for the call only; its memory comes from the
 * runtime's allocator, so the fault-injection hook reaches it. Output
 * goes through a buffer of our own and fwrite: 100,000 actors are
 * millions of lines, and a stdio call per number would be most of the
 * cost.
 *
 * Values: counts are integers; times are seconds, written from their
 * nanoseconds as exact decimals ("0.000000002", "1.5"), so a bucket bound
 * or a sum never carries a float's rounding.
 */
#include "runtime.h"

#include <stddef.h>
#include <string.h>

/* ---- the snapshot ---------------------------------------------------- */

#define NO_HIST UINT32_MAX

struct actor_row {
    uint64_t handled, failed, restarts, alerts;
    uint64_t depth, high, oldest_ns;
    size_t label;        /* its label text: offset in snap.text */
    size_t label_len;
    uint32_t hist;       /* index in snap.hists, or NO_HIST */
};

struct hist_row {
    uint64_t sum_ns;
    uint64_t b[XO_HIST_BUCKETS];
};

struct pool_row {
    xo_pool_info_t info;
    size_t label, label_len; /* pool="i",kind="k" */
    size_t extra, extra_len; /* ,core="c",pinned="b",labels="l" */
};

struct snap {
    xo_runtime_t *rt;
    struct actor_row *rows;
    size_t nrows, rows_cap;
    struct hist_row *hists;
    size_t nhists, hists_cap;
    char *text;
    size_t ntext, text_cap;
    struct pool_row *pools;
    size_t npools, pools_cap;
    xo_runtime_stats_t rs;
};

/* Room for `more` elements of `size` bytes after the *n in *v (*cap of
   them), doubling from `first`. false: no memory, *v as it was. */
static bool reserve(xo_runtime_t *rt, void **v, size_t *cap, size_t n,
                    size_t more, size_t size, size_t first)
{
    if (n + more <= *cap)
        return true;
    size_t cap2 = *cap != 0 ? *cap * 2 : first;
    while (cap2 < n + more)
        cap2 *= 2;
    void *p = xi_mem_alloc(&rt->mem, cap2 * size);
    if (p == NULL)
        return false;
    if (n > 0)
        memcpy(p, *v, n * size);
    if (*v != NULL)
        xi_mem_free(&rt->mem, *v, *cap * size);
    *v = p;
    *cap = cap2;
    return true;
}

static void snap_free(struct snap *s)
{
    xo_runtime_t *rt = s->rt;
    if (s->rows != NULL)
        xi_mem_free(&rt->mem, s->rows, s->rows_cap * sizeof(*s->rows));
    if (s->hists != NULL)
        xi_mem_free(&rt->mem, s->hists, s->hists_cap * sizeof(*s->hists));
    if (s->text != NULL)
        xi_mem_free(&rt->mem, s->text, s->text_cap);
    if (s->pools != NULL)
        xi_mem_free(&rt->mem, s->pools, s->pools_cap * sizeof(*s->pools));
}

static bool text_room(struct snap *s, size_t more)
{
    return reserve(s->rt, (void **)&s->text, &s->text_cap, s->ntext, more, 1,
                   4096);
}

static bool put(struct snap *s, const char *p, size_t len)
{
    if (!text_room(s, len))
        return false;
    memcpy(s->text + s->ntext, p, len);
    s->ntext += len;
    return true;
}

static bool put_str(struct snap *s, const char *p)
{
    return put(s, p, strlen(p));
}

/* The length of the well-formed UTF-8 sequence at p (left bytes), or 0
   when it is not one (RFC 3629: no overlongs, no surrogates, at most
   U+10FFFF). */
static size_t utf8_len(const unsigned char *p, size_t left)
{
    unsigned c = p[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* the bounds of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (left < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

/* A label value: backslash, double quote and newline escaped as the
   format says; a byte that is not part of well-formed UTF-8 (the format
   is UTF-8; a uid is any bytes) becomes U+FFFD. */
static bool put_value(struct snap *s, const char *v, size_t len)
{
    /* Each byte becomes at most 3 (U+FFFD). */
    if (!text_room(s, len * 3))
        return false;
    const unsigned char *p = (const unsigned char *)v;
    char *d = s->text + s->ntext;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_len(p + i, len - i);
        if (n == 0) {
            memcpy(d, "\xEF\xBF\xBD", 3);
            d += 3;
            i++;
            continue;
        }
        if (p[i] == '\\' || p[i] == '"') {
            *d++ = '\\';
            *d++ = (char)p[i];
        } else if (p[i] == '\n') {
            *d++ = '\\';
            *d++ = 'n';
        } else {
            memcpy(d, p + i, n);
            d += n;
        }
        i += n;
    }
    s->ntext = (size_t)(d - s->text);
    return true;
}

/* name="value" (with a comma before it unless it is the first). */
static bool put_label(struct snap *s, bool first, const char *name,
                      const char *value, size_t len)
{
    return (first || put(s, ",", 1)) && put_str(s, name) &&
           put(s, "=\"", 2) && put_value(s, value, len) && put(s, "\"", 1);
}

static int visit(const xo_actor_info_t *a, void *user)
{
    struct snap *s = user;
    if (!reserve(s->rt, (void **)&s->rows, &s->rows_cap, s->nrows, 1,
                 sizeof(*s->rows), 256))
        return XO_ENOMEM;
    const xo_actor_stats_t *st = &a->stats;
    struct actor_row *r = &s->rows[s->nrows];
    r->handled = st->handled;
    r->failed = st->failed;
    r->restarts = st->restarts;
    r->alerts = st->alerts;
    r->depth = st->mailbox_depth;
    r->high = st->mailbox_high;
    r->oldest_ns = st->oldest_age_ns;
    r->hist = NO_HIST;
    char ref[24], pool[16];
    int rlen = snprintf(ref, sizeof(ref), "0x%llx",
                        (unsigned long long)a->ref.id);
    int plen = snprintf(pool, sizeof(pool), "%u", st->pool);
    /* The actor label: its uid, or its ref where it has none; the ref
       label keeps two actors of one uid (one after the other) or of no
       uid apart. */
    r->label = s->ntext;
    bool ok = a->uid != NULL
                  ? put_label(s, true, "actor", a->uid, strlen(a->uid))
                  : put_label(s, true, "actor", ref, (size_t)rlen);
    ok = ok && put_label(s, false, "ref", ref, (size_t)rlen) &&
         put_label(s, false, "definition", a->definition,
                   strlen(a->definition)) &&
         put_label(s, false, "pool", pool, (size_t)plen);
    if (!ok)
        return XO_ENOMEM;
    r->label_len = s->ntext - r->label;
    uint64_t runs = 0;
    for (unsigned b = 0; b < XO_HIST_BUCKETS; b++)
        runs += st->handler_hist[b];
    if (runs > 0) {
        if (!reserve(s->rt, (void **)&s->hists, &s->hists_cap, s->nhists, 1,
                     sizeof(*s->hists), 64))
            return XO_ENOMEM;
        struct hist_row *h = &s->hists[s->nhists];
        h->sum_ns = st->handler_sum_ns;
        memcpy(h->b, st->handler_hist, sizeof(h->b));
        r->hist = (uint32_t)s->nhists++;
    }
    s->nrows++;
    return 0;
}

static const char *kind_name(xo_pool_kind_t kind)
{
    switch (kind) {
    case XO_POOL_CPU: return "cpu";
    case XO_POOL_GPU: return "gpu";
    }
    return "?";
}

static int read_pools(struct snap *s)
{
    unsigned n = xo_pool_count(s->rt);
    if (!reserve(s->rt, (void **)&s->pools, &s->pools_cap, 0, n + 1,
                 sizeof(*s->pools), 16))
        return XO_ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        struct pool_row *p = &s->pools[s->npools];
        if (xo_pool_info(s->rt, i, &p->info) != 0)
            continue; /* being made: not a pool yet */
        char index[16];
        int len = snprintf(index, sizeof(index), "%u", i);
        const char *kind = kind_name(p->info.kind);
        p->label = s->ntext;
        if (!put_label(s, true, "pool", index, (size_t)len) ||
            !put_label(s, false, "kind", kind, strlen(kind)))
            return XO_ENOMEM;
        p->label_len = s->ntext - p->label;
        char core[16];
        len = snprintf(core, sizeof(core), "%d", p->info.core);
        const char *pinned = p->info.pinned ? "true" : "false";
        const char *labels = p->info.labels != NULL ? p->info.labels : "";
        p->extra = s->ntext;
        if (!put_label(s, false, "core", core, (size_t)len) ||
            !put_label(s, false, "pinned", pinned, strlen(pinned)) ||
            !put_label(s, false, "labels", labels, strlen(labels)))
            return XO_ENOMEM;
        p->extra_len = s->ntext - p->extra;
        s->npools++;
    }
    return 0;
}

/* ---- writing ------------------------------------------------------------ */

#define XI_METRICS_BUF ((size_t)64 << 10)

struct writer {
    FILE *f;
    char *buf;
    size_t n;
    bool failed;
};

static void w_flush(struct writer *w)
{
    if (w->n > 0 && fwrite(w->buf, 1, w->n, w->f) != w->n)
        w->failed = true;
    w->n = 0;
}

static void w_put(struct writer *w, const char *p, size_t len)
{
    if (len > XI_METRICS_BUF - w->n) {
        w_flush(w);
        if (len > XI_METRICS_BUF) {
            if (fwrite(p, 1, len, w->f) != len)
                w->failed = true;
            return;
        }
    }
    memcpy(w->buf + w->n, p, len);
    w->n += len;
}

static void w_str(struct writer *w, const char *s)
{
    w_put(w, s, strlen(s));
}

static void w_u64(struct writer *w, uint64_t v)
{
    char d[20];
    size_t i = sizeof(d);
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    w_put(w, d + i, sizeof(d) - i);
}

/* ns as seconds, exactly: "0", "2", "0.000000002", "1.5". */
static void w_seconds(struct writer *w, uint64_t ns)
{
    w_u64(w, ns / 1000000000u);
    uint64_t frac = ns % 1000000000u;
    if (frac == 0)
        return;
    char d[10];
    d[0] = '.';
    for (int i = 9; i >= 1; i--) {
        d[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    size_t len = 10;
    while (d[len - 1] == '0')
        len--;
    w_put(w, d, len);
}

static void w_family(struct writer *w, const char *name, const char *type,
                     const char *help)
{
    w_str(w, "# HELP ");
    w_str(w, name);
    w_put(w, " ", 1);
    w_str(w, help);
    w_str(w, "\n# TYPE ");
    w_str(w, name);
    w_put(w, " ", 1);
    w_str(w, type);
    w_put(w, "\n", 1);
}

/* name suffix{labels -- then more labels (each with its leading comma),
   then w_close and the value. */
static void w_open(struct writer *w, const char *name, const char *suffix,
                   const char *labels, size_t len)
{
    w_str(w, name);
    w_str(w, suffix);
    w_put(w, "{", 1);
    w_put(w, labels, len);
}

static void w_close(struct writer *w)
{
    w_put(w, "} ", 2);
}

/* The families whose samples are one number of a row, in output order. */
struct family {
    const char *name, *type, *help;
    size_t offset;      /* of the uint64_t in the row */
    bool seconds;       /* the number is ns, written as seconds */
};

#define ACTOR(f) offsetof(struct actor_row, f)
static const struct family actor_families[] = {
    { "xoscar_actor_messages_total", "counter",
      "Messages the actor's handlers returned from (calls included).",
      ACTOR(handled), false },
    { "xoscar_actor_failures_total", "counter",
      "Handler runs that returned an error.", ACTOR(failed), false },
    { "xoscar_actor_restarts_total", "counter",
      "Restarts: incarnations after the first.", ACTOR(restarts), false },
    { "xoscar_actor_alerts_total", "counter",
      "Watchdog alerts about the actor.", ACTOR(alerts), false },
    { "xoscar_actor_mailbox_depth", "gauge",
      "Messages waiting in the mailbox now (approximate while senders "
      "race).", ACTOR(depth), false },
    { "xoscar_actor_mailbox_high", "gauge",
      "The most messages seen waiting at a turn's start.", ACTOR(high),
      false },
    { "xoscar_actor_oldest_message_seconds", "gauge",
      "How long the oldest waiting message has waited, as the watchdog's "
      "last look saw it (0: none waiting, or no watchdog).",
      ACTOR(oldest_ns), true },
};
#undef ACTOR

#define POOL(f) offsetof(struct pool_row, info.f)
static const struct family pool_families[] = {
    { "xoscar_pool_actors", "gauge",
      "Live actors whose home is the pool.", POOL(actors), false },
    { "xoscar_pool_run_queue_depth", "gauge",
      "Items in the pool's run queue now (approximate).", POOL(runq_depth),
      false },
    { "xoscar_pool_messages_total", "counter",
      "Messages handled by the pool's worker.", POOL(handled), false },
    { "xoscar_pool_turns_total", "counter",
      "Turns and tasks the pool's worker ran.", POOL(turns), false },
    { "xoscar_pool_shared_turns_total", "counter",
      "Of those, turns of actors whose home is another pool.", POOL(shared),
      false },
    { "xoscar_pool_steals_total", "counter",
      "Movable actors the pool's worker took from other workers' queues.",
      POOL(steals), false },
    { "xoscar_pool_parks_total", "counter",
      "Times the pool's worker went to sleep.", POOL(parks), false },
    { "xoscar_pool_wakes_total", "counter",
      "Times another thread woke the pool's worker.", POOL(wakes), false },
    { "xoscar_pool_busy_seconds_total", "counter",
      "Time the pool's worker was not waiting for work (millisecond "
      "resolution).", POOL(busy_ns), true },
    { "xoscar_pool_up_seconds_total", "counter",
      "Time since the pool's worker started (busy ratio: rate of busy over "
      "rate of up).", POOL(up_ns), true },
};
#undef POOL

#define NFAMILIES(a) (sizeof(a) / sizeof((a)[0]))

static void w_number(struct writer *w, const struct family *f,
                     const void *row)
{
    uint64_t v;
    memcpy(&v, (const char *)row + f->offset, sizeof(v));
    if (f->seconds)
        w_seconds(w, v);
    else
        w_u64(w, v);
    w_put(w, "\n", 1);
}

/* A family of one sample without labels. */
static void w_single(struct writer *w, const char *name, const char *type,
                     const char *help, uint64_t v, bool seconds)
{
    w_family(w, name, type, help);
    w_str(w, name);
    w_put(w, " ", 1);
    if (seconds)
        w_seconds(w, v);
    else
        w_u64(w, v);
    w_put(w, "\n", 1);
}

static void w_runtime(struct writer *w, const struct snap *s)
{
    w_single(w, "xoscar_runtime_uptime_seconds", "gauge",
             "Time since xo_runtime_start.", s->rs.up_ns, true);
    w_single(w, "xoscar_runtime_actors", "gauge", "Live actors.",
             s->rs.actors, false);
    w_single(w, "xoscar_runtime_pools", "gauge", "Pools running.",
             s->rs.pools, false);
    w_single(w, "xoscar_runtime_watchdog_ticks_total", "counter",
             "Ticks of the watchdog (0 without one).", s->rs.watchdog_ticks,
             false);
    w_family(w, "xoscar_runtime_alerts_total", "counter",
             "Watchdog alerts, by kind.");
    for (unsigned k = 1; k < XO_ALERT_KINDS; k++) {
        w_str(w, "xoscar_runtime_alerts_total{kind=\"");
        w_str(w, xo_alert_kind_name((xo_alert_kind_t)k));
        w_str(w, "\"} ");
        w_u64(w, s->rs.alerts[k]);
        w_put(w, "\n", 1);
    }
}

static const char *state_name(xo_pool_state_t st)
{
    switch (st) {
    case XO_POOL_RUNNING: return "running";
    case XO_POOL_REMOVING: return "removing";
    case XO_POOL_REMOVED: return "removed";
    case XO_POOL_FAILED: return "failed";
    }
    return "?";
}

static void w_pools(struct writer *w, const struct snap *s)
{
    /* The state as a state set, one series per state, 1 for the current
       one: as a label of every pool family it would split each counter's
       series in two when the pool is removed. */
    w_family(w, "xoscar_pool_state", "gauge",
             "1 for the pool's state (running, removing, removed, failed), "
             "0 for the others.");
    for (size_t i = 0; i < s->npools; i++) {
        const struct pool_row *p = &s->pools[i];
        for (int st = XO_POOL_RUNNING; st <= XO_POOL_FAILED; st++) {
            w_open(w, "xoscar_pool_state", "", s->text + p->label,
                   p->label_len);
            w_str(w, ",state=\"");
            w_str(w, state_name((xo_pool_state_t)st));
            w_put(w, "\"", 1);
            w_close(w);
            w_str(w, p->info.state == (xo_pool_state_t)st ? "1\n" : "0\n");
        }
    }
    w_family(w, "xoscar_pool_info", "gauge",
             "1, with what the pool is in labels: its CPU (-1: none), "
             "whether its worker is pinned there, its placement labels.");
    for (size_t i = 0; i < s->npools; i++) {
        const struct pool_row *p = &s->pools[i];
        w_open(w, "xoscar_pool_info", "", s->text + p->label, p->label_len);
        w_put(w, s->text + p->extra, p->extra_len);
        w_close(w);
        w_put(w, "1\n", 2);
    }
    for (size_t f = 0; f < NFAMILIES(pool_families); f++) {
        const struct family *fam = &pool_families[f];
        w_family(w, fam->name, fam->type, fam->help);
        for (size_t i = 0; i < s->npools; i++) {
            const struct pool_row *p = &s->pools[i];
            w_open(w, fam->name, "", s->text + p->label, p->label_len);
            w_close(w);
            w_number(w, fam, p);
        }
    }
}

static void w_histogram(struct writer *w, const struct snap *s,
                        const struct actor_row *r)
{
    const struct hist_row *h = &s->hists[r->hist];
    const char *name = "xoscar_actor_handler_seconds";
    const char *labels = s->text + r->label;
    uint64_t seen = 0;
    /* Cumulative: each bucket counts the runs up to its bound; the last
       bucket's bound is infinite. */
    for (unsigned b = 0; b < XO_HIST_BUCKETS; b++) {
        seen += h->b[b];
        w_open(w, name, "_bucket", labels, r->label_len);
        w_str(w, ",le=\"");
        if (b + 1 < XO_HIST_BUCKETS)
            w_seconds(w, xo_hist_upper_ns(b));
        else
            w_str(w, "+Inf");
        w_put(w, "\"", 1);
        w_close(w);
        w_u64(w, seen);
        w_put(w, "\n", 1);
    }
    w_open(w, name, "_sum", labels, r->label_len);
    w_close(w);
    w_seconds(w, h->sum_ns);
    w_put(w, "\n", 1);
    w_open(w, name, "_count", labels, r->label_len);
    w_close(w);
    w_u64(w, seen);
    w_put(w, "\n", 1);
}

static void w_actors(struct writer *w, const struct snap *s)
{
    for (size_t f = 0; f < NFAMILIES(actor_families); f++) {
        const struct family *fam = &actor_families[f];
        w_family(w, fam->name, fam->type, fam->help);
        for (size_t i = 0; i < s->nrows; i++) {
            const struct actor_row *r = &s->rows[i];
            w_open(w, fam->name, "", s->text + r->label, r->label_len);
            w_close(w);
            w_number(w, fam, r);
        }
    }
    w_family(w, "xoscar_actor_handler_seconds", "histogram",
             "Handler run time of sampled turns only (each worker times the "
             "first run of about one turn in cfg.handler_sample); bounds are "
             "powers of two "
             "nanoseconds. Actors without a sampled run have no series.");
    for (size_t i = 0; i < s->nrows; i++)
        if (s->rows[i].hist != NO_HIST)
            w_histogram(w, s, &s->rows[i]);
}

int xo_metrics_write(xo_runtime_t *rt, FILE *out)
{
    if (rt == NULL || out == NULL)
        return XO_EINVAL;
    if (xi_rt_closing(rt))
        return XO_ECLOSED;
    struct snap s = { .rt = rt };
    /* relaxed: a size hint. */
    uint64_t live = atomic_load_explicit(&rt->live, memory_order_relaxed);
    int rc = XO_ENOMEM;
    struct writer w = { .f = out };
    if (!reserve(rt, (void **)&s.rows, &s.rows_cap, 0, live + live / 8 + 1,
                 sizeof(*s.rows), 256) ||
        !text_room(&s, (live + 1) * 96))
        goto done;
    rc = xo_actors_each(rt, visit, &s);
    if (rc == 0)
        rc = read_pools(&s);
    if (rc != 0)
        goto done;
    xo_runtime_stats(rt, &s.rs);
    w.buf = xi_mem_alloc(&rt->mem, XI_METRICS_BUF);
    if (w.buf == NULL) {
        rc = XO_ENOMEM;
        goto done;
    }
    w_runtime(&w, &s);
    w_pools(&w, &s);
    w_actors(&w, &s);
    w_flush(&w);
    xi_mem_free(&rt->mem, w.buf, XI_METRICS_BUF);
    rc = w.failed || fflush(out) != 0 || ferror(out) ? XO_EINVAL : 0;
done:
    snap_free(&s);
    return rc;
}
