/*
 * xoscar-top -- a live view of a running xoscar runtime, read from the
 * stats snapshot it publishes in shared memory (cfg.stats_shm).
 *
 *   xoscar-top [--once] [--sort KEY] [--interval SECONDS] PID
 *   xoscar-top [--once] [--sort KEY] [--interval SECONDS] --name NAME
 *
 * It maps /dev/shm/xoscar-PID (or NAME, e.g. xoscar-1234-1) read-only and,
 * about once a second, copies the snapshot out under its seqlock
 * (<xoscar/xoscar_shm.h>) and draws a frame: a header line, a busy bar per
 * pool, and a table of actors. Rates and busy ratios are differences
 * between two snapshots divided by the time between their publishes, as
 * the publishing process measured it. Keys: r (rate), d (mailbox depth),
 * h (handler p99), a (oldest message's age) sort the table; q quits.
 * --once prints one frame as plain text (after two snapshots, so rates are
 * there) and exits: for scripts and tests. docs/top.md says what each
 * column means.
 *
 * One frame is built as lines of text, with a few spans marked for
 * colour; the curses screen and --once print the same lines.
 */
#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xoscar/xoscar.h>
#include <xoscar/xoscar_shm.h>

#define LINE_MAX_BYTES 512
#define BAR_WIDTH 40
#define NAME_LEN 64

/* ---- the segment ------------------------------------------------------- */

struct segment {
    char name[NAME_LEN + 16]; /* "/xoscar-1234" */
    int fd;
    void *map;
    size_t mapped;
};

static void segment_close(struct segment *g)
{
    if (g->map != NULL)
        munmap(g->map, g->mapped);
    if (g->fd >= 0)
        close(g->fd);
    g->map = NULL;
    g->fd = -1;
}

/* Map the whole file as it is now. 0, or an errno. */
static int segment_map(struct segment *g)
{
    struct stat st;
    if (fstat(g->fd, &st) != 0)
        return errno;
    size_t size = (size_t)st.st_size;
    if (g->map != NULL && size == g->mapped)
        return 0;
    if (g->map != NULL)
        munmap(g->map, g->mapped);
    g->map = NULL;
    g->mapped = 0;
    if (size == 0)
        return 0; /* being made: read says NOT_READY */
    void *m = mmap(NULL, size, PROT_READ, MAP_SHARED, g->fd, 0);
    if (m == MAP_FAILED)
        return errno;
    g->map = m;
    g->mapped = size;
    return 0;
}

static int segment_open(struct segment *g, const char *name)
{
    g->fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
    if (g->fd < 0)
        return errno;
    snprintf(g->name, sizeof(g->name), "%s", name);
    int err = segment_map(g);
    if (err != 0)
        segment_close(g);
    return err;
}

/* The segment of a pid: "/xoscar-PID", or, when that file belongs to
   another user than the process does (a stale file of a dead process of
   the same pid that the runtime could not replace), the first "-N" that
   belongs to the process's owner. */
static int segment_of_pid(struct segment *g, long pid)
{
    char proc[64], name[NAME_LEN];
    struct stat owner;
    snprintf(proc, sizeof(proc), "/proc/%ld", pid);
    bool known = stat(proc, &owner) == 0;
    int first = 0;
    for (int n = 0; n < 16; n++) {
        if (n == 0)
            snprintf(name, sizeof(name), "/xoscar-%ld", pid);
        else
            snprintf(name, sizeof(name), "/xoscar-%ld-%d", pid, n);
        int err = segment_open(g, name);
        if (n == 0)
            first = err;
        if (err != 0)
            continue;
        struct stat st;
        if (!known || (fstat(g->fd, &st) == 0 && st.st_uid == owner.st_uid))
            return 0;
        segment_close(g);
    }
    return first != 0 ? first : ENOENT;
}

/* ---- snapshots ------------------------------------------------------------- */

struct snap {
    xo_shm_header_t *h;    /* NULL: none yet */
    size_t size;
};

enum outcome { GOT_NEW, GOT_SAME, GOT_WAIT, GOT_NONE };

/* Read the segment into *into. GOT_NEW when it holds a later publish than
   `than` (0: any), GOT_SAME when it is the same one, GOT_WAIT when it is
   not readable yet (being made, or a publish overlapped every try), and
   GOT_NONE, with *why set, when it cannot be read at all. */
static enum outcome snap_read(struct segment *g, struct snap *into,
                              uint64_t than, char *why, size_t why_size)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        size_t need = 0;
        int rc = g->map == NULL
                     ? XO_SHM_NOT_READY
                     : xo_shm_read(g->map, g->mapped, into->h,
                                   into->h ? into->size : 0, &need, 64, NULL);
        if (rc == XO_SHM_OK)
            return into->h->publishes > than ? GOT_NEW : GOT_SAME;
        if (rc == XO_SHM_SMALL) {
            size_t size = need > g->mapped ? need : g->mapped;
            void *p = realloc(into->h, size);
            if (p == NULL) {
                snprintf(why, why_size, "out of memory");
                return GOT_NONE;
            }
            into->h = p;
            into->size = size;
            continue;
        }
        if (rc == XO_SHM_GROWN || rc == XO_SHM_NOT_READY) {
            int err = segment_map(g);
            if (err != 0) {
                snprintf(why, why_size, "cannot map %s: %s", g->name,
                         strerror(err));
                return GOT_NONE;
            }
            if (rc == XO_SHM_GROWN)
                continue;
        }
        if (rc == XO_SHM_NOT_READY || rc == XO_SHM_BUSY) {
            snprintf(why, why_size, "%s: %s", g->name,
                     xo_shm_status_name(rc));
            return GOT_WAIT;
        }
        if (rc == XO_SHM_BAD_VERSION) {
            uint64_t v = xo_shm_word_(g->map,
                                      offsetof(xo_shm_header_t, version));
            snprintf(why, why_size,
                     "%s has snapshot format version %llu; this xoscar-top "
                     "reads version %u: use the xoscar-top of the same "
                     "xoscar as the process",
                     g->name, (unsigned long long)v, XO_SHM_VERSION);
        } else {
            snprintf(why, why_size, "%s: %s", g->name,
                     xo_shm_status_name(rc));
        }
        return GOT_NONE;
    }
    snprintf(why, why_size, "%s: the snapshot keeps changing size", g->name);
    return GOT_NONE;
}

static void snap_swap(struct snap *a, struct snap *b)
{
    struct snap t = *a;
    *a = *b;
    *b = t;
}

/* ---- rows --------------------------------------------------------------------- */

enum sort_key { SORT_RATE, SORT_DEPTH, SORT_P99, SORT_AGE };

static const char *const sort_names[] = { "rate", "depth", "handler p99",
                                          "oldest age" };

struct row {
    const xo_shm_actor_t *a;
    double rate;           /* messages/s; < 0: not known yet */
    uint64_t p50, p99;     /* ns; 0: no samples */
};

struct view {
    enum sort_key sort;
    struct snap cur, base; /* base: an earlier publish, or none */
    struct row *rows;
    size_t nrows, rows_cap;
    double interval_s;     /* between base and cur */
};

static int by_ref(const void *x, const void *y)
{
    const xo_shm_actor_t *a = *(const xo_shm_actor_t *const *)x;
    const xo_shm_actor_t *b = *(const xo_shm_actor_t *const *)y;
    return a->ref < b->ref ? -1 : a->ref > b->ref;
}

static const xo_shm_actor_t *find_ref(const xo_shm_actor_t **sorted, size_t n,
                                      uint64_t ref)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid]->ref < ref)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && sorted[lo]->ref == ref ? sorted[lo] : NULL;
}

/* Quantiles over the interval when the actor was sampled in it, else over
   its whole life. */
static void quantiles(struct row *r, const xo_shm_actor_t *before)
{
    uint64_t delta[XO_HIST_BUCKETS], n = 0;
    const uint64_t *hist = r->a->handler_hist;
    if (before != NULL && r->a->handler_samples > before->handler_samples) {
        for (unsigned b = 0; b < XO_HIST_BUCKETS; b++) {
            uint64_t now = r->a->handler_hist[b];
            uint64_t then = before->handler_hist[b];
            delta[b] = now > then ? now - then : 0;
            n += delta[b];
        }
        if (n > 0)
            hist = delta;
    }
    r->p50 = xo_hist_quantile_ns(hist, 0.50);
    r->p99 = xo_hist_quantile_ns(hist, 0.99);
}

static uint64_t sort_value(const struct row *r, enum sort_key k)
{
    switch (k) {
    case SORT_RATE: return r->rate < 0 ? 0 : (uint64_t)(r->rate * 1000.0);
    case SORT_DEPTH: return r->a->mailbox_depth;
    case SORT_P99: return r->p99;
    case SORT_AGE: return r->a->oldest_age_ns;
    }
    return 0;
}

static enum sort_key current_sort;

/* Largest first; ties in ref order (stable from frame to frame). */
static int by_sort(const void *x, const void *y)
{
    const struct row *a = x, *b = y;
    uint64_t va = sort_value(a, current_sort), vb = sort_value(b, current_sort);
    if (va != vb)
        return va > vb ? -1 : 1;
    return a->a->ref < b->a->ref ? -1 : a->a->ref > b->a->ref;
}

static bool build_rows(struct view *v)
{
    const xo_shm_header_t *h = v->cur.h;
    size_t n = h->nactors;
    if (n > v->rows_cap) {
        struct row *r = realloc(v->rows, n * sizeof(*r));
        if (r == NULL)
            return false;
        v->rows = r;
        v->rows_cap = n;
    }
    const xo_shm_header_t *b = v->base.h;
    size_t nb = b != NULL ? b->nactors : 0;
    const xo_shm_actor_t **sorted = NULL;
    if (nb > 0) {
        sorted = malloc(nb * sizeof(*sorted));
        if (sorted == NULL)
            return false;
        for (size_t i = 0; i < nb; i++)
            sorted[i] = xo_shm_actor_at(b, i);
        qsort(sorted, nb, sizeof(*sorted), by_ref);
    }
    double dt = b != NULL && h->publish_ns > b->publish_ns
                    ? (double)(h->publish_ns - b->publish_ns) / 1e9
                    : 0;
    v->interval_s = dt;
    for (size_t i = 0; i < n; i++) {
        struct row *r = &v->rows[i];
        r->a = xo_shm_actor_at(h, i);
        const xo_shm_actor_t *before = sorted != NULL
                                           ? find_ref(sorted, nb, r->a->ref)
                                           : NULL;
        r->rate = -1;
        if (dt > 0) {
            uint64_t then = before != NULL && before->handled <= r->a->handled
                                ? before->handled
                                : 0; /* new since: all it handled */
            r->rate = (double)(r->a->handled - then) / dt;
        }
        quantiles(r, before);
    }
    free(sorted);
    v->nrows = n;
    return true;
}

static void sort_rows(struct view *v)
{
    current_sort = v->sort;
    if (v->nrows > 1)
        qsort(v->rows, v->nrows, sizeof(*v->rows), by_sort);
}

/* ---- the frame ------------------------------------------------------------------- */

enum tone { PLAIN, TITLE, HEAD, GOOD, WARN, BAD, DIM };

struct line {
    char text[LINE_MAX_BYTES];
    enum tone tone;        /* the whole line */
    int span_at, span_len; /* a part in span_tone (len 0: none) */
    enum tone span_tone;
};

struct frame {
    struct line *lines;
    size_t n, cap;
};

static struct line *add_line(struct frame *f, enum tone tone, const char *fmt,
                             ...) __attribute__((format(printf, 3, 4)));

static struct line *add_line(struct frame *f, enum tone tone, const char *fmt,
                             ...)
{
    static struct line spare;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        struct line *l = realloc(f->lines, cap * sizeof(*l));
        if (l == NULL)
            return &spare; /* drawn nowhere */
        f->lines = l;
        f->cap = cap;
    }
    struct line *l = &f->lines[f->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->text, sizeof(l->text), fmt, ap);
    va_end(ap);
    l->tone = tone;
    l->span_len = 0;
    return l;
}

/* "812ns", "4.1us", "33.6ms", "2.15s"; "-" for 0. */
static const char *fmt_ns(char *buf, size_t size, uint64_t ns)
{
    if (ns == 0)
        snprintf(buf, size, "-");
    else if (ns == UINT64_MAX)
        snprintf(buf, size, ">2.1s");
    else if (ns < 1000)
        snprintf(buf, size, "%lluns", (unsigned long long)ns);
    else if (ns < 1000000)
        snprintf(buf, size, "%.1fus", (double)ns / 1e3);
    else if (ns < 1000000000)
        snprintf(buf, size, "%.1fms", (double)ns / 1e6);
    else
        snprintf(buf, size, "%.2fs", (double)ns / 1e9);
    return buf;
}

static const char *fmt_rate(char *buf, size_t size, double rate)
{
    if (rate < 0)
        snprintf(buf, size, "-");
    else if (rate < 10)
        snprintf(buf, size, "%.1f", rate);
    else
        snprintf(buf, size, "%.0f", rate);
    return buf;
}

static const char *fmt_uptime(char *buf, size_t size, uint64_t ns)
{
    unsigned long long s = ns / 1000000000u;
    snprintf(buf, size, "%llu:%02llu:%02llu", s / 3600, s / 60 % 60, s % 60);
    return buf;
}

static const char *state_name(uint64_t state)
{
    switch (state) {
    case XO_SHM_RUNNING: return "running";
    case XO_SHM_STOPPING: return "stopping";
    case XO_SHM_STOPPED: return "stopped";
    }
    return "?";
}

static void header_lines(struct frame *f, const struct view *v, long pid)
{
    const xo_shm_header_t *h = v->cur.h;
    char up[32], cost[16], copy[16], most[16], alerts[160];
    size_t off = 0;
    alerts[0] = '\0';
    for (unsigned k = 1; k < XO_ALERT_KINDS; k++) {
        if (h->alerts[k] == 0)
            continue;
        int w = snprintf(alerts + off, sizeof(alerts) - off, "%s%s %llu",
                         off ? ", " : " (",
                         xo_alert_kind_name((xo_alert_kind_t)k),
                         (unsigned long long)h->alerts[k]);
        if (w < 0 || (size_t)w >= sizeof(alerts) - off)
            break;
        off += (size_t)w;
    }
    if (off > 0 && off + 1 < sizeof(alerts))
        strcat(alerts, ")");
    add_line(f, TITLE,
             "xoscar-top  pid %ld  %s  up %s  actors %llu  pools %llu  "
             "alerts %llu%s",
             pid, state_name(h->state), fmt_uptime(up, sizeof(up), h->up_ns),
             (unsigned long long)h->actors, (unsigned long long)h->pools,
             (unsigned long long)h->alerts[0], alerts);
    add_line(f, DIM,
             "snapshot #%llu every %.0f ms, publish %s (copy %s, most %s)  "
             "|  sort: %s  |  r rate  d depth  h p99  a age  q quit",
             (unsigned long long)h->publishes, (double)h->interval_ns / 1e6,
             fmt_ns(cost, sizeof(cost), h->cost_ns),
             fmt_ns(copy, sizeof(copy), h->copy_ns),
             fmt_ns(most, sizeof(most), h->cost_max_ns), sort_names[v->sort]);
}

static void pool_lines(struct frame *f, const struct view *v, size_t max)
{
    const xo_shm_header_t *h = v->cur.h, *b = v->base.h;
    size_t shown = 0;
    for (size_t i = 0; i < h->npools; i++) {
        const xo_shm_pool_t *p = xo_shm_pool_at(h, i);
        if (p->state != XO_POOL_RUNNING)
            continue;
        if (shown == max) {
            add_line(f, DIM, "  ... %llu more pools",
                     (unsigned long long)(h->pools - shown));
            break;
        }
        shown++;
        const xo_shm_pool_t *q = b != NULL && i < b->npools
                                     ? xo_shm_pool_at(b, i)
                                     : NULL;
        /* A worker adds a sleep to its idle time when it wakes: one that
           sleeps now, having handled nothing since the last snapshot,
           slept through the interval (its busy time reads high until it
           wakes). */
        uint64_t busy = p->busy_ns, up = p->up_ns, handled = 0;
        double dt = v->interval_s;
        if (q != NULL && up > q->up_ns && p->handled >= q->handled) {
            busy = busy > q->busy_ns ? busy - q->busy_ns : 0;
            up -= q->up_ns;
            handled = p->handled - q->handled;
            if (handled == 0 && (p->flags & XO_SHM_POOL_PARKED))
                busy = 0;
        } else {
            dt = 0;
        }
        double ratio = up > 0 ? (double)busy / (double)up : 0;
        if (ratio > 1)
            ratio = 1;
        int fill = (int)(ratio * BAR_WIDTH + 0.5);
        char bar[BAR_WIDTH + 1], rate[16];
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, '.', (size_t)(BAR_WIDTH - fill));
        bar[BAR_WIDTH] = '\0';
        char core[32] = "no core";
        if (p->core >= 0)
            snprintf(core, sizeof(core), "core %lld", (long long)p->core);
        struct line *l = add_line(
            f, PLAIN,
            "pool %-3llu %-14.14s %-8s [%s] %5.1f%%  actors %-6llu runq %-4llu "
            "msg/s %s",
            (unsigned long long)p->index, p->labels, core, bar, ratio * 100,
            (unsigned long long)p->actors, (unsigned long long)p->runq_depth,
            dt > 0 ? fmt_rate(rate, sizeof(rate), (double)handled / dt)
                   : "-");
        char *open = strchr(l->text, '[');
        if (open != NULL && fill > 0) {
            l->span_at = (int)(open - l->text) + 1;
            l->span_len = fill;
            l->span_tone = ratio >= 0.9 ? BAD : ratio >= 0.6 ? WARN : GOOD;
        }
    }
}

#define ROW_FMT "%-20.20s %-24.24s %4s %9s %8s %8s %8s %8s %7s %8s %6s"

static void actor_lines(struct frame *f, const struct view *v, size_t max)
{
    static const char *const cols[] = { "MSG/S", "DEPTH", "P99", "OLDEST" };
    char head[4][16];
    for (int k = 0; k < 4; k++)
        snprintf(head[k], sizeof(head[k]), "%s%s",
                 (int)v->sort == k ? "*" : "", cols[k]);
    add_line(f, PLAIN, "%s", "");
    add_line(f, HEAD, ROW_FMT, "DEFINITION", "UID", "POOL", head[SORT_RATE],
             head[SORT_DEPTH], head[SORT_AGE], "P50", head[SORT_P99],
             "FAILED", "RESTARTS", "ALERTS");
    size_t shown = v->nrows < max ? v->nrows : max;
    for (size_t i = 0; i < shown; i++) {
        const struct row *r = &v->rows[i];
        const xo_shm_actor_t *a = r->a;
        char pool[8], rate[16], depth[24], age[16], p50[16], p99[16],
            failed[24], restarts[24], alerts[24];
        snprintf(pool, sizeof(pool), "%llu", (unsigned long long)a->pool);
        fmt_rate(rate, sizeof(rate), r->rate);
        snprintf(depth, sizeof(depth), "%llu",
                 (unsigned long long)a->mailbox_depth);
        fmt_ns(age, sizeof(age), a->oldest_age_ns);
        fmt_ns(p50, sizeof(p50), r->p50);
        fmt_ns(p99, sizeof(p99), r->p99);
        snprintf(failed, sizeof(failed), "%llu", (unsigned long long)a->failed);
        snprintf(restarts, sizeof(restarts), "%llu",
                 (unsigned long long)a->restarts);
        snprintf(alerts, sizeof(alerts), "%llu", (unsigned long long)a->alerts);
        enum tone t = a->alerts > 0 || a->failed > 0 ? WARN : PLAIN;
        add_line(f, t, ROW_FMT, a->definition,
                 (a->flags & XO_SHM_ACTOR_HAS_UID) ? a->uid : "-", pool, rate,
                 depth, age, p50, p99, failed, restarts, alerts);
    }
    const xo_shm_header_t *h = v->cur.h;
    if (shown < v->nrows)
        add_line(f, DIM, "  ... %zu more actors (a taller screen shows more)",
                 v->nrows - shown);
    if (h->actors_left_out > 0)
        add_line(f, WARN,
                 "  %llu live actors are not in the snapshot (it holds %llu "
                 "at most, or /dev/shm had no room for more)",
                 (unsigned long long)h->actors_left_out,
                 (unsigned long long)h->nactors);
}

/* The frame for a screen of `height` lines (0: no limit). */
static void build_frame(struct frame *f, const struct view *v, long pid,
                        const char *notice, size_t height)
{
    f->n = 0;
    if (notice != NULL)
        add_line(f, BAD, "%s", notice);
    header_lines(f, v, pid);
    size_t pools_max = height ? (height > 12 ? height / 4 : 1) : SIZE_MAX;
    pool_lines(f, v, pools_max);
    size_t used = f->n + 2 + 1; /* blank, column heads, "more" */
    size_t rows = height == 0 ? SIZE_MAX : height > used ? height - used : 0;
    actor_lines(f, v, rows);
}

/* ---- the process ------------------------------------------------------------------ */

/* A sentence when the process or its runtime is gone, else NULL. */
static const char *gone(const struct view *v, long pid, char *buf,
                        size_t size)
{
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
        snprintf(buf, size,
                 "process %ld is gone (it did not stop its runtime): its "
                 "last snapshot is below",
                 pid);
        return buf;
    }
    if (v->cur.h != NULL && v->cur.h->state == XO_SHM_STOPPED) {
        snprintf(buf, size,
                 "process %ld has stopped its runtime: its last snapshot is "
                 "below",
                 pid);
        return buf;
    }
    return NULL;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* ---- --once ----------------------------------------------------------------------- */

/* The first snapshot, waiting up to 2 s while it is not readable yet.
   false, with a message on stderr, when there is none. */
static bool read_first(struct segment *g, struct snap *into)
{
    char why[256];
    enum outcome o = GOT_WAIT;
    for (int tries = 0; tries < 100 && o == GOT_WAIT; tries++) {
        if (tries > 0)
            sleep_ms(20);
        o = snap_read(g, into, 0, why, sizeof(why));
    }
    if (o == GOT_NEW || o == GOT_SAME)
        return true;
    fprintf(stderr, "xoscar-top: %s\n", why);
    return false;
}

static int run_once(struct segment *g, struct view *v, long pid)
{
    char why[256];
    if (v->cur.h == NULL && !read_first(g, &v->cur))
        return 1;
    /* A second snapshot, one publish later, for the rates (bounded: a
       runtime that stopped publishing shows its last one without). */
    uint64_t wait_ms = v->cur.h->interval_ns / 1000000u * 3 + 1000;
    for (uint64_t waited = 0; waited < wait_ms; waited += 20) {
        if (v->cur.h->state != XO_SHM_RUNNING)
            break;
        enum outcome o = snap_read(g, &v->base, v->cur.h->publishes, why,
                                   sizeof(why));
        if (o == GOT_NONE) {
            fprintf(stderr, "xoscar-top: %s\n", why);
            return 1;
        }
        if (o == GOT_NEW) {
            snap_swap(&v->cur, &v->base);
            break;
        }
        sleep_ms(20);
    }
    if (v->base.h != NULL && v->base.h->publishes >= v->cur.h->publishes) {
        free(v->base.h); /* no second publish came */
        v->base.h = NULL;
    }
    if (!build_rows(v)) {
        fprintf(stderr, "xoscar-top: out of memory\n");
        return 1;
    }
    sort_rows(v);
    char buf[160];
    const char *notice = gone(v, pid, buf, sizeof(buf));
    struct frame f = { 0 };
    build_frame(&f, v, pid, notice, 0);
    for (size_t i = 0; i < f.n; i++)
        printf("%s\n", f.lines[i].text);
    free(f.lines);
    return 0;
}

/* ---- the screen ------------------------------------------------------------------- */

static bool colours;

static attr_t attr_of(enum tone t)
{
    switch (t) {
    case PLAIN: return A_NORMAL;
    case TITLE: return A_BOLD;
    case HEAD: return A_REVERSE;
    case DIM: return colours ? COLOR_PAIR(4) : A_DIM;
    case GOOD: return colours ? COLOR_PAIR(1) : A_BOLD;
    case WARN: return colours ? COLOR_PAIR(2) : A_BOLD;
    case BAD: return colours ? COLOR_PAIR(3) | A_BOLD : A_BOLD;
    }
    return A_NORMAL;
}

static void draw(const struct frame *f)
{
    erase();
    for (size_t i = 0; i < f->n && (int)i < LINES; i++) {
        const struct line *l = &f->lines[i];
        attr_t a = attr_of(l->tone);
        attron(a);
        mvaddnstr((int)i, 0, l->text, COLS);
        if (l->tone == HEAD) /* the heads' bar runs the width */
            for (int x = (int)strlen(l->text); x < COLS; x++)
                addch(' ');
        attroff(a);
        if (l->span_len > 0 && l->span_at < COLS) {
            attr_t s = attr_of(l->span_tone);
            mvchgat((int)i, l->span_at, l->span_len, s & ~A_COLOR,
                    (short)PAIR_NUMBER(s), NULL);
        }
    }
    refresh();
}

static void draw_message(const char *text)
{
    erase();
    attron(A_BOLD);
    mvaddnstr(0, 0, "xoscar-top", COLS);
    attroff(A_BOLD);
    mvaddnstr(2, 0, text, COLS);
    mvaddnstr(4, 0, "q quits", COLS);
    refresh();
}

static int run_screen(struct segment *g, struct view *v, long pid,
                      unsigned interval_ms)
{
    initscr();
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    timeout(100);
    if (has_colors()) {
        start_color();
        use_default_colors();
        init_pair(1, COLOR_GREEN, -1);
        init_pair(2, COLOR_YELLOW, -1);
        init_pair(3, COLOR_RED, -1);
        init_pair(4, COLOR_CYAN, -1);
        colours = true;
    }
    struct snap next = { 0 };
    struct frame f = { 0 };
    char why[256] = "", buf[160];
    bool have = false, dirty = true, broken = false;
    struct timespec last = { 0, 0 };
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long since = (now.tv_sec - last.tv_sec) * 1000 +
                     (now.tv_nsec - last.tv_nsec) / 1000000;
        if (!broken && (!have || since >= (long)interval_ms)) {
            last = now;
            enum outcome o = snap_read(g, &next, have ? v->cur.h->publishes : 0,
                                       why, sizeof(why));
            if (o == GOT_NONE) {
                broken = true; /* a format we cannot read does not heal */
            } else if (o == GOT_NEW) {
                /* The older snapshot becomes the base of the rates. */
                snap_swap(&v->base, &v->cur);
                snap_swap(&v->cur, &next);
                have = build_rows(v);
                if (have)
                    sort_rows(v);
            }
            dirty = true;
        }
        if (dirty) {
            if (broken || !have) {
                draw_message(broken ? why : "waiting for the first snapshot");
            } else {
                build_frame(&f, v, pid, gone(v, pid, buf, sizeof(buf)),
                            (size_t)LINES);
                draw(&f);
            }
            dirty = false;
        }
        int ch = getch();
        if (ch == 'q' || ch == 'Q')
            break;
        enum sort_key k = v->sort;
        if (ch == 'r')
            k = SORT_RATE;
        else if (ch == 'd')
            k = SORT_DEPTH;
        else if (ch == 'h')
            k = SORT_P99;
        else if (ch == 'a')
            k = SORT_AGE;
        else if (ch == KEY_RESIZE)
            dirty = true;
        if (k != v->sort) {
            v->sort = k;
            if (have)
                sort_rows(v);
            dirty = true;
        }
    }
    endwin();
    free(next.h);
    free(f.lines);
    return 0;
}

/* ---- main ----------------------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr,
            "usage: xoscar-top [--once] [--sort r|d|h|a] [--interval SECONDS] "
            "PID\n"
            "       xoscar-top [--once] [--sort r|d|h|a] [--interval SECONDS] "
            "--name NAME\n"
            "Shows the stats a process publishes with cfg.stats_shm "
            "(/dev/shm/xoscar-PID).\n");
    return 2;
}

static bool sort_of(const char *s, enum sort_key *out)
{
    static const char keys[] = "rdha";
    if (s[0] == '\0' || s[1] != '\0' || strchr(keys, s[0]) == NULL)
        return false;
    *out = (enum sort_key)(strchr(keys, s[0]) - keys);
    return true;
}

int main(int argc, char **argv)
{
    bool once = false;
    const char *name = NULL;
    long pid = 0;
    double interval = 1.0;
    struct view v = { .sort = SORT_RATE };
    for (int i = 1; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--once") == 0) {
            once = true;
        } else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
            name = argv[++i];
        } else if (strcmp(argv[i], "--sort") == 0 && i + 1 < argc) {
            if (!sort_of(argv[++i], &v.sort))
                return usage();
        } else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
            interval = strtod(argv[++i], &end);
            if (*end != '\0' || !(interval >= 0.05) || interval > 3600)
                return usage();
        } else if (argv[i][0] != '-' && pid == 0) {
            pid = strtol(argv[i], &end, 10);
            if (*end != '\0' || pid <= 0)
                return usage();
        } else {
            return usage();
        }
    }
    if ((pid == 0) == (name == NULL))
        return usage();
    struct segment g = { .fd = -1 };
    char path[NAME_LEN + 2];
    int err;
    if (name != NULL) {
        /* "xoscar-1234-1", "/xoscar-1234-1" or "/dev/shm/xoscar-1234-1" */
        const char *base = strrchr(name, '/');
        snprintf(path, sizeof(path), "/%s", base ? base + 1 : name);
        err = segment_open(&g, path);
    } else {
        snprintf(path, sizeof(path), "/xoscar-%ld", pid);
        err = segment_of_pid(&g, pid);
    }
    if (err != 0) {
        fprintf(stderr, "xoscar-top: no snapshot at /dev/shm%s: %s\n", path,
                strerror(err));
        if (pid != 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            fprintf(stderr, "xoscar-top: and no process %ld is running\n",
                    pid);
        else
            fprintf(stderr, "xoscar-top: does the process run a runtime "
                            "with cfg.stats_shm set?\n");
        return 1;
    }
    if (pid == 0) { /* --name: the pid the snapshot names */
        if (!read_first(&g, &v.cur)) {
            segment_close(&g);
            free(v.cur.h);
            return 1;
        }
        pid = (long)v.cur.h->pid;
    }
    int rc = once ? run_once(&g, &v, pid)
                  : run_screen(&g, &v, pid, (unsigned)(interval * 1000));
    free(v.cur.h);
    free(v.base.h);
    free(v.rows);
    segment_close(&g);
    return rc;
}
