/*
 * shm.c -- the stats snapshot in shared memory, for xoscar-top and any
 * other reader (the format and the reader: include/xoscar/xoscar_shm.h;
 * the story: docs/top.md).
 *
 * A publish has two halves. First it gathers, with the public snapshot
 * API (xo_runtime_stats, xo_pool_info, xo_actors_each), into buffers of
 * its own: the walk takes its short read-side sections and may be slow
 * with many actors, and none of that time is spent inside the seqlock.
 * Then it copies the buffers into the mapping with the sequence odd, so a
 * reader that overlaps the copy sees the sequence move and tries again.
 * Only the watchdog's thread publishes (the first publish is made by
 * xi_shm_open before the watchdog can see the segment), so the writer
 * side needs no lock.
 *
 * Room. The segment has room for every pool index (XO_POOLS_MAX) and for
 * a capacity of actors that grows, doubling, when a walk finds more: the
 * file grows first (posix_fallocate, which reserves the pages: a full
 * /dev/shm is then an error here and never a SIGBUS on a store), then the
 * writer's mapping (mremap); header.bytes and header.generation tell the
 * readers to map again. When growing fails, or past XO_SHM_ACTORS_MAX, the
 * records that fit are published and the rest counted in
 * header.actors_left_out. The segment never shrinks, so no reader's
 * mapping ever points past the file.
 *
 * Names. "/xoscar-<pid>" for the first runtime of the process that asks,
 * "/xoscar-<pid>-<n>" for the n-th one running beside it (the smallest n
 * free). A file of that name that this process does not hold was left by a
 * process of the same pid that died without stopping its runtime: it is
 * replaced. At close the name is unlinked only if it is still our file.
 */
#include "runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define XI_SHM_FIRST_CAP 1024u  /* actor records room at first */
#define XI_SHM_PAGE 4096u
#define XI_SHM_NUMBERS 4096u    /* suffixes tried */

struct xi_shm {
    xo_runtime_t *rt;
    struct xi_shm *next;     /* the process's segments, under names_lock */
    unsigned number;         /* the name's suffix; 0: none */
    char name[48];
    int fd;
    void *map;
    size_t mapped;           /* the writer's mapping */
    size_t file_bytes;       /* the file's size */
    uint64_t actor_cap;      /* actor records the mapping has room for */
    xo_shm_header_t head;    /* the header of the last publish */
    /* What a publish gathers. */
    xo_shm_pool_t pools[XO_POOLS_MAX];
    xo_shm_actor_t *actors;  /* room for `room` records */
    size_t room;
    size_t n;                /* records gathered */
    uint64_t seen;           /* live actors the walk visited */
};

/* ---- the test hook ---------------------------------------------------------- */

static _Atomic int fail_errno[XI_SHM_STEPS];

void xi_shm_fail_step(enum xi_shm_step step, int err)
{
    if (step > 0 && step < XI_SHM_STEPS)
        /* relaxed: set before the runtime that reads it starts. */
        atomic_store_explicit(&fail_errno[step], err, memory_order_relaxed);
}

/* The errno an armed step fails with, 0 when it may run. */
static int injected(enum xi_shm_step step)
{
    return atomic_load_explicit(&fail_errno[step], memory_order_relaxed);
}

/* A failed system call's code: running out of something is XO_ENOMEM
   (a full /dev/shm is memory too), anything else XO_ESYSTEM. */
static int code_of(int err)
{
    switch (err) {
    case ENOMEM:
    case ENOSPC:
    case EMFILE:
    case ENFILE:
        return XO_ENOMEM;
    }
    return XO_ESYSTEM;
}

/* ---- the writer's half of the seqlock ------------------------------------------ */

/* relaxed atomic stores: readers in other processes (and, in the tests,
   other threads) load the same words atomically while this runs. */
static void store_words(void *dst, const void *src, size_t bytes)
{
    _Atomic uint64_t *d = dst;
    const uint64_t *s = src;
    for (size_t i = 0; i < bytes / 8; i++)
        atomic_store_explicit(&d[i], s[i], memory_order_relaxed);
}

static _Atomic uint64_t *word_at(void *map, size_t off)
{
    return (_Atomic uint64_t *)((char *)map + off);
}

static void publish_words(void *map, xo_shm_header_t *h,
                          const xo_shm_pool_t *pools,
                          const xo_shm_actor_t *actors, uint64_t began)
{
    _Atomic uint64_t *seq = word_at(map, offsetof(xo_shm_header_t, seq));
    /* relaxed: this thread is the only writer of the sequence. */
    uint64_t v = atomic_load_explicit(seq, memory_order_relaxed);
    atomic_store_explicit(seq, v + 1, memory_order_relaxed);
    /* release fence: the odd sequence is ordered before every word stored
       below; pairs with the reader's acquire fence before its second load
       of the sequence (xo_shm_unchanged_). */
    atomic_thread_fence(memory_order_release);
    uint64_t copy_began = began != 0 ? xi_now_ns() : 0;
    store_words((char *)map + h->pools_off, pools,
                h->npools * sizeof(*pools));
    if (actors != NULL)
        store_words((char *)map + h->actors_off, actors,
                    h->nactors * sizeof(*actors));
    if (began != 0) {
        uint64_t now = xi_now_ns();
        h->copy_ns = now - copy_began;
        h->cost_ns = now - began;
        if (h->cost_ns > h->cost_max_ns)
            h->cost_max_ns = h->cost_ns;
    }
    size_t from = offsetof(xo_shm_header_t, bytes);
    store_words((char *)map + from, (const char *)h + from,
                sizeof(*h) - from);
    /* release: every word above happens before the reader's acquire load
       that sees this even sequence. */
    atomic_store_explicit(seq, v + 2, memory_order_release);
}

void xi_shm_store(void *map, const xo_shm_header_t *h,
                  const xo_shm_pool_t *pools, const xo_shm_actor_t *actors)
{
    xo_shm_header_t copy = *h;
    publish_words(map, &copy, pools, actors, 0);
}

/* ---- names --------------------------------------------------------------------- */

static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static struct xi_shm *names; /* segments this process holds */

static bool number_held(unsigned number)
{
    for (struct xi_shm *s = names; s != NULL; s = s->next)
        if (s->number == number)
            return true;
    return false;
}

static void name_for(char *buf, size_t size, unsigned number)
{
    if (number == 0)
        snprintf(buf, size, "/xoscar-%ld", (long)getpid());
    else
        snprintf(buf, size, "/xoscar-%ld-%u", (long)getpid(), number);
}

/* Create the file under the first free name (under names_lock). 0, or
   an errno. */
static int create_file(struct xi_shm *s)
{
    int err = injected(XI_SHM_STEP_OPEN);
    if (err != 0)
        return err;
    for (unsigned number = 0; number < XI_SHM_NUMBERS; number++) {
        if (number_held(number))
            continue;
        name_for(s->name, sizeof(s->name), number);
        for (int tries = 0; tries < 2; tries++) {
            /* 0400: a read-only snapshot; our own descriptor writes. */
            int fd = shm_open(s->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                              S_IRUSR);
            if (fd >= 0) {
                s->fd = fd;
                s->number = number;
                return 0;
            }
            if (errno != EEXIST)
                return errno;
            /* Ours by name, not held by this process: a stale file. One
               we may not remove (another user's) leaves the name taken. */
            if (shm_unlink(s->name) != 0)
                break;
        }
    }
    return EEXIST;
}

/* Unlink the name if it still names our file (a process of our pid in
   another pid namespace sharing /dev/shm may have replaced it). */
static void unlink_ours(struct xi_shm *s)
{
    struct stat mine, named;
    int fd = shm_open(s->name, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return;
    bool same = fstat(s->fd, &mine) == 0 && fstat(fd, &named) == 0 &&
                mine.st_dev == named.st_dev && mine.st_ino == named.st_ino;
    close(fd);
    if (same)
        shm_unlink(s->name);
}

/* ---- room ------------------------------------------------------------------------ */

static size_t actors_offset(void)
{
    size_t off = sizeof(xo_shm_header_t) +
                 (size_t)XO_POOLS_MAX * sizeof(xo_shm_pool_t);
    return (off + XI_CACHELINE - 1) & ~(size_t)(XI_CACHELINE - 1);
}

/* The file's size for room for `cap` actors, to whole pages. */
static size_t bytes_for(uint64_t cap)
{
    size_t b = actors_offset() + (size_t)cap * sizeof(xo_shm_actor_t);
    return (b + XI_SHM_PAGE - 1) & ~(size_t)(XI_SHM_PAGE - 1);
}

static uint64_t cap_of(size_t bytes)
{
    uint64_t cap = (bytes - actors_offset()) / sizeof(xo_shm_actor_t);
    return cap < XO_SHM_ACTORS_MAX ? cap : XO_SHM_ACTORS_MAX;
}

/* Size the new file and map it. 0, or an errno (the file is left for the
   caller to remove). */
static int size_and_map(struct xi_shm *s)
{
    size_t bytes = bytes_for(XI_SHM_FIRST_CAP);
    int err = injected(XI_SHM_STEP_SIZE);
    if (err == 0)
        err = posix_fallocate(s->fd, 0, (off_t)bytes);
    if (err != 0)
        return err;
    void *map = MAP_FAILED;
    if ((err = injected(XI_SHM_STEP_MAP)) == 0) {
        map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
        if (map == MAP_FAILED)
            err = errno;
    }
    if (err != 0)
        return err;
    s->map = map;
    s->mapped = s->file_bytes = bytes;
    s->actor_cap = cap_of(bytes);
    return 0;
}

/* Room in the segment for `want` actor records, growing it if need be;
   false when it could not grow (it keeps the room it had). */
static bool segment_room(struct xi_shm *s, uint64_t want)
{
    if (want <= s->actor_cap)
        return true;
    uint64_t cap = s->actor_cap;
    while (cap < want && cap < XO_SHM_ACTORS_MAX)
        cap *= 2;
    if (cap > XO_SHM_ACTORS_MAX)
        cap = XO_SHM_ACTORS_MAX;
    size_t bytes = bytes_for(cap);
    if (bytes > s->file_bytes) {
        int err = injected(XI_SHM_STEP_GROW);
        if (err == 0)
            err = posix_fallocate(s->fd, 0, (off_t)bytes);
        if (err != 0)
            return false;
        s->file_bytes = bytes;
    }
    void *map = mremap(s->map, s->mapped, bytes, MREMAP_MAYMOVE);
    if (map == MAP_FAILED)
        return false; /* the file is bigger already: the next one retries */
    s->map = map;
    s->mapped = bytes;
    s->actor_cap = cap_of(bytes);
    s->head.generation++;
    return want <= s->actor_cap;
}

/* ---- gathering ------------------------------------------------------------------ */

/* Copy src into a fixed field of `len` bytes, NUL-padded; true when it
   had to be cut. */
static bool put_str(char *dst, size_t len, const char *src)
{
    memset(dst, 0, len);
    if (src == NULL)
        return false;
    size_t n = strlen(src);
    bool cut = n >= len;
    memcpy(dst, src, cut ? len - 1 : n);
    return cut;
}

/* Room for one more gathered record; false: left out. */
static bool buffer_room(struct xi_shm *s)
{
    if (s->n < s->room)
        return true;
    if (s->room >= XO_SHM_ACTORS_MAX)
        return false;
    size_t room = s->room ? s->room * 2 : XI_SHM_FIRST_CAP;
    xo_shm_actor_t *v = xi_mem_alloc(&s->rt->mem, room * sizeof(*v));
    if (v == NULL)
        return false;
    if (s->n > 0)
        memcpy(v, s->actors, s->n * sizeof(*v));
    if (s->actors != NULL)
        xi_mem_free(&s->rt->mem, s->actors, s->room * sizeof(*v));
    s->actors = v;
    s->room = room;
    return true;
}

static int gather_actor(const xo_actor_info_t *info, void *user)
{
    struct xi_shm *s = user;
    s->seen++;
    if (!buffer_room(s))
        return 0; /* counted as left out; the walk goes on counting */
    xo_shm_actor_t *a = &s->actors[s->n++];
    const xo_actor_stats_t *st = &info->stats;
    a->ref = info->ref.id;
    a->pool = st->pool;
    a->flags = st->stateless ? XO_SHM_ACTOR_STATELESS : 0;
    if (put_str(a->definition, sizeof(a->definition), info->definition))
        a->flags |= XO_SHM_ACTOR_DEF_CUT;
    if (info->uid != NULL)
        a->flags |= XO_SHM_ACTOR_HAS_UID;
    if (put_str(a->uid, sizeof(a->uid), info->uid))
        a->flags |= XO_SHM_ACTOR_UID_CUT;
    a->handled = st->handled;
    a->failed = st->failed;
    a->restarts = st->restarts;
    a->mailbox_depth = st->mailbox_depth;
    a->mailbox_high = st->mailbox_high;
    a->oldest_age_ns = st->oldest_age_ns;
    a->alerts = st->alerts;
    a->handler_samples = st->handler_samples;
    a->handler_sum_ns = st->handler_sum_ns;
    memcpy(a->handler_hist, st->handler_hist, sizeof(a->handler_hist));
    return 0;
}

static unsigned gather_pools(struct xi_shm *s)
{
    unsigned n = xo_pool_count(s->rt);
    if (n > XO_POOLS_MAX)
        n = XO_POOLS_MAX;
    for (unsigned i = 0; i < n; i++) {
        xo_shm_pool_t *p = &s->pools[i];
        xo_pool_info_t pi;
        memset(p, 0, sizeof(*p));
        p->index = i;
        if (xo_pool_info(s->rt, i, &pi) != 0)
            continue;
        p->kind = pi.kind;
        p->state = pi.state;
        p->core = pi.core;
        p->device = pi.device;
        p->flags = (pi.pinned ? XO_SHM_POOL_PINNED : 0) |
                   (pi.core_shared ? XO_SHM_POOL_CORE_SHARED : 0) |
                   (pi.queued ? XO_SHM_POOL_QUEUED : 0) |
                   (pi.parked ? XO_SHM_POOL_PARKED : 0);
        p->actors = pi.actors;
        p->handled = pi.handled;
        p->busy_ns = pi.busy_ns;
        p->up_ns = pi.up_ns;
        p->turns = pi.turns;
        p->shared = pi.shared;
        p->parks = pi.parks;
        p->wakes = pi.wakes;
        p->runq_depth = pi.runq_depth;
        put_str(p->labels, sizeof(p->labels), pi.labels);
    }
    return n;
}

/* ---- publishing ----------------------------------------------------------------- */

static void publish(struct xi_shm *s, uint64_t state)
{
    xo_runtime_t *rt = s->rt;
    uint64_t began = xi_now_ns();
    xo_shm_header_t *h = &s->head;
    xo_runtime_stats_t rs;
    xo_runtime_stats(rt, &rs);
    h->npools = gather_pools(s);
    const xo_shm_actor_t *actors = NULL; /* NULL: keep the last records */
    if (state == XO_SHM_RUNNING) {
        s->n = 0;
        s->seen = 0;
        if (xo_actors_each(rt, gather_actor, s) == XO_ECLOSED)
            state = XO_SHM_STOPPING;
    }
    if (state == XO_SHM_RUNNING) {
        if (!segment_room(s, s->n) && s->n > s->actor_cap)
            s->n = (size_t)s->actor_cap;
        actors = s->actors;
        h->nactors = s->n;
        h->actors_left_out = s->seen - s->n;
    }
    h->bytes = s->file_bytes;
    h->pools_off = sizeof(xo_shm_header_t);
    h->pool_cap = XO_POOLS_MAX;
    h->actors_off = actors_offset();
    h->actor_cap = s->actor_cap;
    h->state = state;
    h->publishes++;
    h->publish_ns = began;
    h->interval_ns = rt->cfg.stats_shm_ns;
    h->up_ns = rs.up_ns;
    h->actors = rs.actors;
    h->pools = rs.pools;
    h->watchdog_ticks = rs.watchdog_ticks;
    h->watchdog_scan_ns = rs.watchdog_scan_ns;
    memcpy(h->alerts, rs.alerts, sizeof(h->alerts));
    publish_words(s->map, h, s->pools, actors, began);
}

void xi_shm_publish(xo_runtime_t *rt)
{
    /* acquire: pairs with the release in xi_shm_open (the watchdog's
       thread, which is then the only one to use it). */
    struct xi_shm *s = atomic_load_explicit(&rt->shm, memory_order_acquire);
    if (s != NULL)
        publish(s, xi_rt_closing(rt) ? XO_SHM_STOPPING : XO_SHM_RUNNING);
}

/* ---- open and close --------------------------------------------------------------- */

/* The words written once, then (after the first publish) the magic. */
static void write_identity(struct xi_shm *s)
{
    xo_shm_header_t id = { .version = XO_SHM_VERSION,
                           .header_bytes = sizeof(xo_shm_header_t),
                           .pool_bytes = sizeof(xo_shm_pool_t),
                           .actor_bytes = sizeof(xo_shm_actor_t),
                           .pid = (uint64_t)getpid() };
    size_t from = offsetof(xo_shm_header_t, version);
    store_words((char *)s->map + from, (const char *)&id + from,
                offsetof(xo_shm_header_t, seq) - from);
}

static void free_shm(struct xi_shm *s)
{
    if (s->actors != NULL)
        xi_mem_free(&s->rt->mem, s->actors, s->room * sizeof(*s->actors));
    xi_mem_free(&s->rt->mem, s, sizeof(*s));
}

int xi_shm_open(xo_runtime_t *rt)
{
    if (!rt->cfg.stats_shm)
        return 0;
    struct xi_shm *s = injected(XI_SHM_STEP_ALLOC)
                           ? NULL
                           : xi_mem_alloc(&rt->mem, sizeof(*s));
    if (s == NULL)
        return XO_ENOMEM;
    memset(s, 0, sizeof(*s));
    s->rt = rt;
    s->fd = -1;
    pthread_mutex_lock(&names_lock);
    int err = create_file(s);
    if (err == 0 && (err = size_and_map(s)) != 0) {
        shm_unlink(s->name);
        close(s->fd);
    }
    if (err == 0) {
        s->next = names;
        names = s;
    }
    pthread_mutex_unlock(&names_lock);
    if (err != 0) {
        free_shm(s);
        return code_of(err);
    }
    write_identity(s);
    publish(s, XO_SHM_RUNNING);
    /* release: the words written once and the first snapshot come before
       the magic for a reader that loads it with acquire. */
    atomic_store_explicit(word_at(s->map, 0), XO_SHM_MAGIC,
                          memory_order_release);
    /* release: the segment's bookkeeping, for the watchdog's acquire. */
    atomic_store_explicit(&rt->shm, s, memory_order_release);
    return 0;
}

void xi_shm_close(xo_runtime_t *rt)
{
    /* relaxed: the watchdog, its only other user, was joined. */
    struct xi_shm *s = atomic_load_explicit(&rt->shm, memory_order_relaxed);
    if (s == NULL)
        return;
    atomic_store_explicit(&rt->shm, NULL, memory_order_relaxed);
    /* A reader that holds the mapping learns the runtime is gone. */
    publish(s, XO_SHM_STOPPED);
    pthread_mutex_lock(&names_lock);
    unlink_ours(s);
    for (struct xi_shm **p = &names; *p != NULL; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    pthread_mutex_unlock(&names_lock);
    munmap(s->map, s->mapped);
    close(s->fd);
    free_shm(s);
}

const char *xi_shm_name(const xo_runtime_t *rt)
{
    struct xi_shm *s = atomic_load_explicit(&((xo_runtime_t *)rt)->shm,
                                            memory_order_acquire);
    return s != NULL ? s->name : NULL;
}
