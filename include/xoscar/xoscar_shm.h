/*
 * xoscar_shm.h -- the stats snapshot a runtime publishes in shared memory
 * (cfg.stats_shm), as a reader sees it: its layout, and the reader's half
 * of the seqlock that keeps it consistent. The runtime (runtime/shm.c)
 * writes this layout and tools/xoscar-top reads it; any other program may
 * read it with this header alone (docs/top.md).
 *
 * Where: POSIX shared memory named "/xoscar-<pid>" (the file
 * /dev/shm/xoscar-<pid>); a process that runs several such runtimes at
 * once names the second "/xoscar-<pid>-1", the third "-2", and so on
 * (the smallest number free). Mode 0400: readable by its owner (and root).
 *
 * Layout. A header (xo_shm_header_t), then room for XO_POOLS_MAX pool
 * records at header.pools_off, then room for header.actor_cap actor
 * records at header.actors_off. Every field is a 64-bit word and every
 * record a whole number of words, in the byte order of the machine. The
 * segment only grows: when the actors outgrow their room, the writer makes
 * the file bigger and says so in header.bytes (and header.generation); a
 * reader whose mapping is shorter maps the file again. It never shrinks,
 * so a mapping, once made, stays valid.
 *
 * The seqlock. header.seq is even while the snapshot is at rest and odd
 * while a publish writes it. The writer makes it odd (then a release
 * fence), stores every word with relaxed atomic stores, and makes it even
 * again with a release store. The reader loads it with acquire, copies the
 * words with relaxed atomic loads, issues an acquire fence and loads it
 * again: an odd or changed sequence means it copied over a publish, and
 * it tries again. The writer never waits for a reader; a reader that keeps
 * losing the race gives up after `tries` (XO_SHM_BUSY). Words outside the
 * sequence's care: magic, version, the record sizes and pid are written
 * once, before the magic, which is stored last (release) at creation.
 *
 * Versioning. A change of layout or meaning bumps XO_SHM_VERSION; a reader
 * refuses a segment of another version (XO_SHM_BAD_VERSION) instead of
 * guessing.
 */
#ifndef XOSCAR_XOSCAR_SHM_H
#define XOSCAR_XOSCAR_SHM_H

#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <xoscar/xoscar.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "XOSCARTP" in memory on a little-endian machine. */
#define XO_SHM_MAGIC UINT64_C(0x5054524143534f58)
#define XO_SHM_VERSION 1u

/* Strings are NUL-terminated in fixed fields, cut to fit (a flag says
   so). */
#define XO_SHM_DEF_LEN 40u    /* definition name: up to 39 bytes */
#define XO_SHM_UID_LEN 64u    /* uid: up to 63 bytes */
#define XO_SHM_LABELS_LEN 64u /* pool labels: up to 63 bytes */

/* The most actors one snapshot holds (about 456 MiB of records). A runtime
   with more, or whose segment could not grow (no room in /dev/shm),
   publishes the first ones in slot order and counts the others in
   header.actors_left_out. */
#define XO_SHM_ACTORS_MAX ((uint64_t)1 << 20)

/* header.state */
#define XO_SHM_RUNNING 1u
#define XO_SHM_STOPPING 2u  /* xo_runtime_stop has begun: the actors are
                               those of the last publish before it */
#define XO_SHM_STOPPED 3u   /* the last word: the segment is unlinked */

typedef struct xo_shm_header {
    /* Written once, before the magic. */
    uint64_t magic;          /* XO_SHM_MAGIC; 0 while being made */
    uint64_t version;        /* XO_SHM_VERSION */
    uint64_t header_bytes;   /* sizeof(xo_shm_header_t) */
    uint64_t pool_bytes;     /* sizeof(xo_shm_pool_t) */
    uint64_t actor_bytes;    /* sizeof(xo_shm_actor_t) */
    uint64_t pid;            /* the publishing process */
    uint64_t seq;            /* the seqlock: odd while a publish writes */
    /* Everything below changes under the seqlock. */
    uint64_t bytes;          /* the segment's size (it only grows) */
    uint64_t generation;     /* times it grew */
    uint64_t pools_off, pool_cap;   /* pool records: where, room for */
    uint64_t actors_off, actor_cap; /* actor records: where, room for */
    uint64_t state;          /* XO_SHM_RUNNING, _STOPPING, _STOPPED */
    uint64_t publishes;      /* publishes so far (1 at the first) */
    uint64_t publish_ns;     /* CLOCK_MONOTONIC when this one gathered */
    uint64_t interval_ns;    /* cfg.stats_shm_ns */
    /* What this publish cost the writer: the whole of it (gathering the
       stats, growing the segment if need be, copying the records in), the
       copy alone; and the most any publish has cost. */
    uint64_t cost_ns, copy_ns, cost_max_ns;
    uint64_t npools;         /* pool records that follow (indexes ever
                                used: removed pools keep theirs) */
    uint64_t nactors;        /* actor records that follow */
    uint64_t actors_left_out;/* live actors seen but not in the records */
    /* xo_runtime_stats at the publish. */
    uint64_t up_ns;
    uint64_t actors;         /* live actors */
    uint64_t pools;          /* pools running */
    uint64_t watchdog_ticks;
    uint64_t watchdog_scan_ns;
    uint64_t alerts[XO_ALERT_KINDS]; /* by kind; [0]: all kinds */
    uint64_t reserved[7];
} xo_shm_header_t;

/* xo_shm_pool_t.flags */
#define XO_SHM_POOL_PINNED 1u
#define XO_SHM_POOL_CORE_SHARED 2u
#define XO_SHM_POOL_QUEUED 4u
#define XO_SHM_POOL_PARKED 8u

/* xo_pool_info_t's numbers, but for `steals`. */
typedef struct xo_shm_pool {
    uint64_t index;
    uint64_t kind;           /* xo_pool_kind_t */
    uint64_t state;          /* xo_pool_state_t */
    int64_t core, device;
    uint64_t flags;
    uint64_t actors, handled, busy_ns, up_ns, turns, shared, parks, wakes,
        runq_depth;
    char labels[XO_SHM_LABELS_LEN];
} xo_shm_pool_t;

/* xo_shm_actor_t.flags */
#define XO_SHM_ACTOR_STATELESS 1u
#define XO_SHM_ACTOR_HAS_UID 2u
#define XO_SHM_ACTOR_DEF_CUT 4u   /* the definition's name was longer */
#define XO_SHM_ACTOR_UID_CUT 8u   /* the uid was longer */

/* xo_actors_each's view of one actor: xo_actor_stats_t's numbers. */
typedef struct xo_shm_actor {
    uint64_t ref;            /* xo_ref_t.id */
    uint64_t pool;           /* home pool */
    uint64_t flags;
    uint64_t handled, failed, restarts;
    uint64_t mailbox_depth, mailbox_high, oldest_age_ns, alerts;
    uint64_t handler_samples, handler_sum_ns;
    uint64_t handler_hist[XO_HIST_BUCKETS];
    char definition[XO_SHM_DEF_LEN];
    char uid[XO_SHM_UID_LEN]; /* "" without XO_SHM_ACTOR_HAS_UID */
} xo_shm_actor_t;

_Static_assert(sizeof(xo_shm_header_t) % 8 == 0, "header in words");
_Static_assert(sizeof(xo_shm_pool_t) % 8 == 0, "pool record in words");
_Static_assert(sizeof(xo_shm_actor_t) % 8 == 0, "actor record in words");

/* What xo_shm_read says. */
enum xo_shm_status {
    XO_SHM_OK = 0,
    XO_SHM_BUSY,        /* a publish overlapped every try: try later */
    XO_SHM_GROWN,       /* the segment is longer than the mapping: map it
                           again at its size (fstat) and read again */
    XO_SHM_NOT_READY,   /* no magic yet: the writer is still making it */
    XO_SHM_BAD_MAGIC,   /* not a snapshot */
    XO_SHM_BAD_VERSION, /* a snapshot of another format version */
    XO_SHM_SMALL,       /* dst is too small: *need says how big */
    XO_SHM_CORRUPT,     /* a consistent header whose layout is wrong */
};

/* ---- the reader's half of the seqlock ------------------------------------ */

static inline uint64_t xo_shm_word_(const void *map, size_t byte_off)
{
    /* relaxed: the sequence check around the copy orders it. */
    return atomic_load_explicit(
        (const _Atomic uint64_t *)((const char *)map + byte_off),
        memory_order_relaxed);
}

/* Copy n words from the mapping with relaxed atomic loads: a concurrent
   publish stores the same words atomically, so there is no data race,
   only a copy that the sequence check may have to throw away. */
static inline void xo_shm_copy_in_(void *dst, const void *src, size_t bytes)
{
    const _Atomic uint64_t *s = (const _Atomic uint64_t *)src;
    uint64_t *d = (uint64_t *)dst;
    for (size_t i = 0; i < bytes / 8; i++)
        d[i] = atomic_load_explicit(&s[i], memory_order_relaxed);
}

/* The fence before the second load of the sequence, and that load: true
   when the copy made since `seq` was loaded is whole. */
static inline int xo_shm_unchanged_(const void *map, uint64_t seq)
{
    /* acquire fence: pairs with the writer's release fence after it made
       the sequence odd. A copied word that a publish stored after that
       fence makes this load see the odd (or a later) sequence. */
    atomic_thread_fence(memory_order_acquire);
    return xo_shm_word_(map, offsetof(xo_shm_header_t, seq)) == seq;
}

/*
 * One try: copy the snapshot in the mapping `map` (the first `mapped`
 * bytes of the segment) into dst, compacted: the header, then its npools
 * pool records, then its nactors actor records, with the header's two
 * offsets rewritten to point into the copy (so xo_shm_pool_at and
 * xo_shm_actor_at read either; the rest of the header, bytes and the
 * capacities included, still describes the segment). *need gets the
 * copy's size. XO_SHM_BUSY when a publish overlapped it.
 */
static inline int xo_shm_read_once(const void *map, size_t mapped, void *dst,
                                   size_t dst_size, size_t *need)
{
    if (mapped < sizeof(xo_shm_header_t))
        return XO_SHM_NOT_READY; /* the writer has not sized it yet */
    /* acquire: pairs with the release store of the magic at creation,
       which comes after the words written once. */
    uint64_t magic = atomic_load_explicit((const _Atomic uint64_t *)map,
                                          memory_order_acquire);
    if (magic == 0)
        return XO_SHM_NOT_READY;
    if (magic != XO_SHM_MAGIC)
        return XO_SHM_BAD_MAGIC;
    if (xo_shm_word_(map, offsetof(xo_shm_header_t, version)) !=
            XO_SHM_VERSION ||
        xo_shm_word_(map, offsetof(xo_shm_header_t, header_bytes)) !=
            sizeof(xo_shm_header_t) ||
        xo_shm_word_(map, offsetof(xo_shm_header_t, pool_bytes)) !=
            sizeof(xo_shm_pool_t) ||
        xo_shm_word_(map, offsetof(xo_shm_header_t, actor_bytes)) !=
            sizeof(xo_shm_actor_t))
        return XO_SHM_BAD_VERSION;
    if (dst_size < sizeof(xo_shm_header_t)) {
        if (need != NULL)
            *need = sizeof(xo_shm_header_t);
        return XO_SHM_SMALL;
    }
    /* acquire: pairs with the writer's release store of the even
       sequence that ended the publish; the words are at least that new. */
    uint64_t seq = atomic_load_explicit(
        (const _Atomic uint64_t *)((const char *)map +
                                   offsetof(xo_shm_header_t, seq)),
        memory_order_acquire);
    if (seq & 1u)
        return XO_SHM_BUSY;
    xo_shm_header_t *h = (xo_shm_header_t *)dst;
    xo_shm_copy_in_(h, map, sizeof(*h));
    /* Nothing read so far can be trusted until the sequence is checked,
       so every answer but a copy goes through the check first. */
    if (h->bytes > mapped)
        return xo_shm_unchanged_(map, seq) ? XO_SHM_GROWN : XO_SHM_BUSY;
    size_t pools = (size_t)h->npools * sizeof(xo_shm_pool_t);
    size_t actors = (size_t)h->nactors * sizeof(xo_shm_actor_t);
    if (h->npools > h->pool_cap || h->nactors > h->actor_cap ||
        h->actor_cap > XO_SHM_ACTORS_MAX || h->pool_cap > XO_POOLS_MAX ||
        h->pools_off > mapped || pools > mapped - h->pools_off ||
        h->actors_off > mapped || actors > mapped - h->actors_off)
        return xo_shm_unchanged_(map, seq) ? XO_SHM_CORRUPT : XO_SHM_BUSY;
    size_t total = sizeof(*h) + pools + actors;
    if (total > dst_size) {
        if (!xo_shm_unchanged_(map, seq))
            return XO_SHM_BUSY;
        if (need != NULL)
            *need = total;
        return XO_SHM_SMALL;
    }
    xo_shm_copy_in_((char *)dst + sizeof(*h),
                    (const char *)map + h->pools_off, pools);
    xo_shm_copy_in_((char *)dst + sizeof(*h) + pools,
                    (const char *)map + h->actors_off, actors);
    if (!xo_shm_unchanged_(map, seq))
        return XO_SHM_BUSY;
    h->pools_off = sizeof(*h);
    h->actors_off = sizeof(*h) + pools;
    if (need != NULL)
        *need = total;
    return XO_SHM_OK;
}

/* Up to `tries` tries (at least one), yielding the CPU between them; the
   tries that overlapped a publish are added to *retries (may be NULL).
   Returns what the last try said. */
static inline int xo_shm_read(const void *map, size_t mapped, void *dst,
                              size_t dst_size, size_t *need, unsigned tries,
                              unsigned *retries)
{
    int rc = XO_SHM_BUSY;
    for (unsigned i = 0; i < (tries ? tries : 1); i++) {
        if (i > 0)
            sched_yield();
        rc = xo_shm_read_once(map, mapped, dst, dst_size, need);
        if (rc != XO_SHM_BUSY)
            break;
        if (retries != NULL)
            (*retries)++;
    }
    return rc;
}

/* The i-th pool or actor record of a snapshot (the mapping or a copy). */
static inline const xo_shm_pool_t *xo_shm_pool_at(const xo_shm_header_t *h,
                                                  size_t i)
{
    return (const xo_shm_pool_t *)((const char *)h + h->pools_off +
                                   i * sizeof(xo_shm_pool_t));
}

static inline const xo_shm_actor_t *
xo_shm_actor_at(const xo_shm_header_t *h, size_t i)
{
    return (const xo_shm_actor_t *)((const char *)h + h->actors_off +
                                    i * sizeof(xo_shm_actor_t));
}

/* A name for an xo_shm_read status. */
static inline const char *xo_shm_status_name(int status)
{
    switch (status) {
    case XO_SHM_OK: return "ok";
    case XO_SHM_BUSY: return "busy (a publish overlapped every try)";
    case XO_SHM_GROWN: return "grown (map it again)";
    case XO_SHM_NOT_READY: return "not ready (being made)";
    case XO_SHM_BAD_MAGIC: return "not an xoscar stats snapshot";
    case XO_SHM_BAD_VERSION: return "another format version";
    case XO_SHM_SMALL: return "buffer too small";
    case XO_SHM_CORRUPT: return "corrupt layout";
    }
    return "?";
}

#ifdef __cplusplus
}
#endif

#endif /* XOSCAR_XOSCAR_SHM_H */
