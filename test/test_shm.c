/*
 * The shared-memory stats snapshot (runtime/shm.c, the format and reader
 * in include/xoscar/xoscar_shm.h): the segment's life with the runtime's,
 * what a reader finds in it, the seqlock (driven directly on a segment
 * made in memory), growth, names, and every way making it can fail.
 * Waits poll the snapshot's publish count; nothing is timed.
 */
#include "test/support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "runtime/runtime.h"
#include "xoscar/xoscar_shm.h"

static xo_runtime_t *start_shm(unsigned pools)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = pools;
    cfg.spin_ns = 5000;
    cfg.stats_shm = true;
    cfg.stats_shm_ns = 20000000; /* 20 ms: the tests wait for publishes */
    xo_runtime_t *rt = NULL;
    int rc = xo_runtime_start(&cfg, &rt);
    cr_assert_eq(rc, 0, "xo_runtime_start: %s", xo_strerror(rc));
    return rt;
}

static void own_name(char *buf, size_t size, int number)
{
    if (number == 0)
        snprintf(buf, size, "/xoscar-%ld", (long)getpid());
    else
        snprintf(buf, size, "/xoscar-%ld-%d", (long)getpid(), number);
}

static bool file_exists(const char *shm_name)
{
    char path[96];
    struct stat st;
    snprintf(path, sizeof(path), "/dev/shm%s", shm_name);
    return stat(path, &st) == 0;
}

/* Files in /dev/shm named for this process: xoscar-<pid> or -<pid>-<n>. */
static int files_of_this_process(void)
{
    char prefix[48];
    snprintf(prefix, sizeof(prefix), "xoscar-%ld", (long)getpid());
    size_t len = strlen(prefix);
    DIR *d = opendir("/dev/shm");
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, len) == 0 &&
            (e->d_name[len] == '\0' || e->d_name[len] == '-'))
            n++;
    closedir(d);
    return n;
}

/* ---- a reader, as xoscar-top is one ------------------------------------- */

struct reader {
    int fd;
    void *map;
    size_t mapped;
    xo_shm_header_t *h; /* the last copy */
    size_t size;
};

static void reader_map(struct reader *r)
{
    struct stat st;
    cr_assert_eq(fstat(r->fd, &st), 0);
    if (r->map != NULL)
        munmap(r->map, r->mapped);
    r->mapped = (size_t)st.st_size;
    r->map = mmap(NULL, r->mapped, PROT_READ, MAP_SHARED, r->fd, 0);
    cr_assert_neq(r->map, MAP_FAILED);
}

static void reader_open(struct reader *r, const char *name)
{
    memset(r, 0, sizeof(*r));
    r->fd = shm_open(name, O_RDONLY, 0);
    cr_assert_geq(r->fd, 0, "shm_open %s: %s", name, strerror(errno));
    reader_map(r);
}

static void reader_close(struct reader *r)
{
    munmap(r->map, r->mapped);
    close(r->fd);
    free(r->h);
}

/* Copy the snapshot out, mapping again when it grew; returns the copy. */
static const xo_shm_header_t *reader_read(struct reader *r)
{
    for (;;) {
        size_t need = 0;
        int rc = xo_shm_read(r->map, r->mapped, r->h, r->size, &need, 1000,
                             NULL);
        if (rc == XO_SHM_OK)
            return r->h;
        if (rc == XO_SHM_SMALL) {
            r->h = realloc(r->h, need);
            cr_assert_not_null(r->h);
            r->size = need;
        } else if (rc == XO_SHM_GROWN) {
            reader_map(r);
        } else {
            cr_assert_eq(rc, XO_SHM_BUSY, "read: %s", xo_shm_status_name(rc));
        }
    }
}

/* A snapshot published after everything this thread did before the call:
   two publishes later, the second gathered after the call began. */
static const xo_shm_header_t *reader_read_fresh(struct reader *r)
{
    uint64_t since = reader_read(r)->publishes;
    while (reader_read(r)->publishes < since + 2)
        sleep_ms(2);
    return r->h;
}

static const xo_shm_actor_t *actor_by_uid(const xo_shm_header_t *h,
                                          const char *uid)
{
    for (size_t i = 0; i < h->nactors; i++) {
        const xo_shm_actor_t *a = xo_shm_actor_at(h, i);
        if ((a->flags & XO_SHM_ACTOR_HAS_UID) && strcmp(a->uid, uid) == 0)
            return a;
    }
    return NULL;
}

/* ---- the segment's life -------------------------------------------------- */

Test(shm, segment_exists_with_its_header_while_the_runtime_runs)
{
    xo_runtime_t *rt = start_shm(2);
    char name[48];
    own_name(name, sizeof(name), 0);
    cr_assert_str_eq(xi_shm_name(rt), name);
    char path[96];
    struct stat st;
    snprintf(path, sizeof(path), "/dev/shm%s", name);
    cr_assert_eq(stat(path, &st), 0, "%s is there", path);
    cr_assert_eq(st.st_mode & 0777, 0400, "read-only, for its owner");
    struct reader r;
    reader_open(&r, name);
    /* The first snapshot was published before start returned. */
    const xo_shm_header_t *m = r.map;
    cr_assert_eq(m->magic, XO_SHM_MAGIC);
    const xo_shm_header_t *h = reader_read(&r);
    cr_assert_eq(h->version, XO_SHM_VERSION);
    cr_assert_eq(h->header_bytes, sizeof(xo_shm_header_t));
    cr_assert_eq(h->pool_bytes, sizeof(xo_shm_pool_t));
    cr_assert_eq(h->actor_bytes, sizeof(xo_shm_actor_t));
    cr_assert_eq(h->pid, (uint64_t)getpid());
    cr_assert_eq(h->state, XO_SHM_RUNNING);
    cr_assert_geq(h->publishes, 1);
    cr_assert_eq(h->interval_ns, 20000000);
    cr_assert_eq(h->bytes, r.mapped);
    cr_assert_eq(h->npools, 2);
    cr_assert_eq(h->pools, 2);
    for (unsigned i = 0; i < 2; i++) {
        const xo_shm_pool_t *p = xo_shm_pool_at(h, i);
        cr_assert_eq(p->index, i);
        cr_assert_eq(p->kind, XO_POOL_CPU);
        cr_assert_eq(p->state, XO_POOL_RUNNING);
        cr_assert_str_eq(p->labels, "cpu");
    }
    cr_assert_eq(h->nactors, 0);
    cr_assert_eq(h->actors_left_out, 0);
    /* The watchdog publishes again. */
    uint64_t first = h->publishes;
    while (reader_read(&r)->publishes == first)
        sleep_ms(2);
    reader_close(&r);
    stop_runtime(rt);
}

static int count_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)m;
    (*(uint64_t *)state)++;
    return 0;
}

static const xo_actor_def_t counter_def = {
    .name = "counter", .state_size = sizeof(uint64_t),
    .on_message = count_message,
};

static xo_ref_t spawn_named(xo_runtime_t *rt, const xo_actor_def_t *def,
                            const char *uid)
{
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.uid = uid;
    xo_ref_t r;
    int rc = xo_spawn(rt, def, &o, &r);
    cr_assert_eq(rc, 0, "xo_spawn: %s", xo_strerror(rc));
    return r;
}

Test(shm, snapshot_holds_every_spawned_actor_with_its_handled_count)
{
    xo_runtime_t *rt = start_shm(2);
    static const char *const uids[] = { "alpha", "beta", "gamma" };
    xo_ref_t named[3], plain[2];
    for (int i = 0; i < 3; i++) {
        named[i] = spawn_named(rt, &counter_def, uids[i]);
        for (int k = 0; k < 10 * (i + 1); k++)
            cr_assert_eq(xo_tell(named[i], 1, NULL, 0), 0);
    }
    for (int i = 0; i < 2; i++)
        plain[i] = spawn_named(rt, &counter_def, NULL);
    cr_assert_eq(xo_tell(plain[1], 1, NULL, 0), 0);
    for (int i = 0; i < 3; i++)
        wait_handled(named[i], 10 * (uint64_t)(i + 1));
    wait_handled(plain[1], 1);
    struct reader r;
    char name[48];
    own_name(name, sizeof(name), 0);
    reader_open(&r, name);
    const xo_shm_header_t *h = reader_read_fresh(&r);
    cr_assert_eq(h->nactors, 5, "every actor spawned");
    cr_assert_eq(h->actors, 5);
    cr_assert_eq(h->actors_left_out, 0);
    for (int i = 0; i < 3; i++) {
        const xo_shm_actor_t *a = actor_by_uid(h, uids[i]);
        cr_assert_not_null(a, "%s is in the snapshot", uids[i]);
        cr_assert_eq(a->ref, named[i].id);
        cr_assert_str_eq(a->definition, "counter");
        cr_assert_eq(a->handled, 10 * (uint64_t)(i + 1), "%s handled", uids[i]);
        cr_assert_eq(a->mailbox_depth, 0);
        cr_assert_eq(a->failed, 0);
    }
    uint64_t unnamed_handled = 0;
    int unnamed = 0;
    for (size_t i = 0; i < h->nactors; i++) {
        const xo_shm_actor_t *a = xo_shm_actor_at(h, i);
        if (a->flags & XO_SHM_ACTOR_HAS_UID)
            continue;
        unnamed++;
        unnamed_handled += a->handled;
        cr_assert_str_eq(a->uid, "");
        cr_assert(a->ref == plain[0].id || a->ref == plain[1].id);
    }
    cr_assert_eq(unnamed, 2);
    cr_assert_eq(unnamed_handled, 1);
    /* Pools count what their workers handled: 61 messages in all. */
    uint64_t pool_handled = 0;
    for (size_t i = 0; i < h->npools; i++)
        pool_handled += xo_shm_pool_at(h, i)->handled;
    cr_assert_eq(pool_handled, 61);
    reader_close(&r);
    stop_runtime(rt);
}

static const xo_actor_def_t long_def = {
    .name = "a-definition-name-that-is-longer-than-forty-bytes",
};

Test(shm, long_names_are_cut_to_their_fields_and_flagged)
{
    xo_runtime_t *rt = start_shm(1);
    char uid[XO_UID_MAX + 1];
    memset(uid, 'u', XO_UID_MAX);
    uid[XO_UID_MAX] = '\0';
    spawn_named(rt, &long_def, uid);
    struct reader r;
    char name[48];
    own_name(name, sizeof(name), 0);
    reader_open(&r, name);
    const xo_shm_header_t *h = reader_read_fresh(&r);
    cr_assert_eq(h->nactors, 1);
    const xo_shm_actor_t *a = xo_shm_actor_at(h, 0);
    cr_assert_eq(a->flags & (XO_SHM_ACTOR_HAS_UID | XO_SHM_ACTOR_DEF_CUT |
                             XO_SHM_ACTOR_UID_CUT),
                 XO_SHM_ACTOR_HAS_UID | XO_SHM_ACTOR_DEF_CUT |
                     XO_SHM_ACTOR_UID_CUT);
    cr_assert_eq(strlen(a->definition), XO_SHM_DEF_LEN - 1);
    cr_assert_eq(strncmp(a->definition, long_def.name, XO_SHM_DEF_LEN - 1), 0);
    cr_assert_eq(strlen(a->uid), XO_SHM_UID_LEN - 1);
    cr_assert_eq(strncmp(a->uid, uid, XO_SHM_UID_LEN - 1), 0);
    reader_close(&r);
    stop_runtime(rt);
}

Test(shm, segment_is_unlinked_at_stop_and_a_mapping_reads_stopped)
{
    xo_runtime_t *rt = start_shm(1);
    char name[48];
    own_name(name, sizeof(name), 0);
    struct reader r;
    reader_open(&r, name);
    cr_assert_eq(reader_read(&r)->state, XO_SHM_RUNNING);
    cr_assert_eq(xo_runtime_stop(rt), 0);
    cr_assert_not(file_exists(name), "unlinked at stop");
    cr_assert_eq(files_of_this_process(), 0);
    /* A reader that had it mapped keeps a valid mapping, which says the
       runtime is gone. */
    cr_assert_eq(reader_read(&r)->state, XO_SHM_STOPPED);
    reader_close(&r);
    cr_assert_eq(xo_runtime_free(rt), 0);
}

/* ---- config and failures ---------------------------------------------------- */

Test(shm, stats_shm_without_the_watchdog_is_einval)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 1;
    cfg.stats_shm = true;
    cfg.watch_tick_ns = 0;
    xo_runtime_t *rt = NULL;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), XO_EINVAL);
    cr_assert_null(rt);
    xo_config_init(&cfg);
    cfg.pools = 1;
    cfg.stats_shm = true;
    cfg.stats_shm_ns = 0;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), XO_EINVAL, "no interval");
    cr_assert_null(rt);
    cr_assert_eq(files_of_this_process(), 0);
}

static void start_fails_leaving_nothing(enum xi_shm_step step, int err,
                                        int want)
{
    xi_shm_fail_step(step, err);
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 1;
    cfg.stats_shm = true;
    xo_runtime_t *rt = NULL;
    int rc = xo_runtime_start(&cfg, &rt);
    xi_shm_fail_step(step, 0);
    cr_assert_eq(rc, want, "step %d, errno %d: %s (want %s)", (int)step, err,
                 xo_err_name(rc), xo_err_name(want));
    cr_assert_null(rt, "no runtime handed out");
    cr_assert_eq(files_of_this_process(), 0, "step %d: no file left",
                 (int)step);
}

Test(shm, each_failed_step_of_making_the_segment_fails_start_and_leaves_nothing)
{
    start_fails_leaving_nothing(XI_SHM_STEP_ALLOC, ENOMEM, XO_ENOMEM);
    start_fails_leaving_nothing(XI_SHM_STEP_OPEN, EACCES, XO_ESYSTEM);
    start_fails_leaving_nothing(XI_SHM_STEP_OPEN, EMFILE, XO_ENOMEM);
    start_fails_leaving_nothing(XI_SHM_STEP_OPEN, ENOENT, XO_ESYSTEM);
    start_fails_leaving_nothing(XI_SHM_STEP_SIZE, ENOSPC, XO_ENOMEM);
    start_fails_leaving_nothing(XI_SHM_STEP_MAP, ENOMEM, XO_ENOMEM);
    start_fails_leaving_nothing(XI_SHM_STEP_MAP, EACCES, XO_ESYSTEM);
    /* Nothing of the failed starts is held: the next one gets the plain
       name, and stops cleanly. */
    xo_runtime_t *rt = start_shm(1);
    char name[48];
    own_name(name, sizeof(name), 0);
    cr_assert_str_eq(xi_shm_name(rt), name);
    stop_runtime(rt);
    cr_assert_eq(files_of_this_process(), 0);
}

/* ---- names --------------------------------------------------------------------- */

Test(shm, runtimes_beside_each_other_get_the_smallest_free_suffix)
{
    char base[48], one[48];
    own_name(base, sizeof(base), 0);
    own_name(one, sizeof(one), 1);
    xo_runtime_t *a = start_shm(1);
    xo_runtime_t *b = start_shm(1);
    cr_assert_str_eq(xi_shm_name(a), base);
    cr_assert_str_eq(xi_shm_name(b), one);
    cr_assert(file_exists(base) && file_exists(one));
    stop_runtime(a);
    cr_assert_not(file_exists(base));
    cr_assert(file_exists(one), "the other runtime's stays");
    xo_runtime_t *c = start_shm(1);
    cr_assert_str_eq(xi_shm_name(c), base, "the freed name is taken again");
    stop_runtime(b);
    stop_runtime(c);
    cr_assert_eq(files_of_this_process(), 0);
}

Test(shm, a_stale_segment_of_a_dead_process_with_our_pid_is_replaced)
{
    char name[48];
    own_name(name, sizeof(name), 0);
    /* What a process of this pid that was killed would have left. */
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0, "shm_open: %s", strerror(errno));
    cr_assert_eq(write(fd, "stale, not a snapshot", 21), 21);
    close(fd);
    xo_runtime_t *rt = start_shm(1);
    cr_assert_str_eq(xi_shm_name(rt), name, "the name is ours again");
    struct reader r;
    reader_open(&r, name);
    const xo_shm_header_t *h = reader_read(&r);
    cr_assert_eq(h->pid, (uint64_t)getpid());
    cr_assert_eq(h->state, XO_SHM_RUNNING);
    reader_close(&r);
    stop_runtime(rt);
    cr_assert_eq(files_of_this_process(), 0);
}

/* ---- room for more actors --------------------------------------------------------- */

static const xo_actor_def_t idle_def = { .name = "idle" };

Test(shm, more_actors_than_the_first_room_grow_the_segment)
{
    xo_runtime_t *rt = start_shm(1);
    char name[48];
    own_name(name, sizeof(name), 0);
    struct reader r;
    reader_open(&r, name);
    size_t first_size = r.mapped;
    uint64_t first_cap = reader_read(&r)->actor_cap;
    size_t n = (size_t)first_cap + 100;
    for (size_t i = 0; i < n; i++)
        spawn_named(rt, &idle_def, NULL);
    const xo_shm_header_t *h = reader_read_fresh(&r);
    cr_assert_gt(r.mapped, first_size, "the reader mapped it again");
    cr_assert_eq(h->nactors, n, "every actor is in");
    cr_assert_eq(h->actors_left_out, 0);
    cr_assert_geq(h->generation, 1);
    struct stat st;
    cr_assert_eq(fstat(r.fd, &st), 0);
    cr_assert_eq((size_t)st.st_size, r.mapped);
    reader_close(&r);
    stop_runtime(rt);
}

Test(shm, a_segment_that_cannot_grow_publishes_what_fits_and_counts_the_rest)
{
    xi_shm_fail_step(XI_SHM_STEP_GROW, ENOSPC);
    xo_runtime_t *rt = start_shm(1);
    char name[48];
    own_name(name, sizeof(name), 0);
    struct reader r;
    reader_open(&r, name);
    uint64_t cap = reader_read(&r)->actor_cap;
    size_t n = (size_t)cap + 50;
    for (size_t i = 0; i < n; i++)
        spawn_named(rt, &idle_def, NULL);
    const xo_shm_header_t *h = reader_read_fresh(&r);
    cr_assert_eq(h->nactors, cap, "as many as there is room for");
    cr_assert_eq(h->actors_left_out, 50, "the rest are counted");
    cr_assert_eq(h->actors, n);
    cr_assert_eq(h->generation, 0);
    reader_close(&r);
    xi_shm_fail_step(XI_SHM_STEP_GROW, 0);
    stop_runtime(rt);
}

/* ---- the seqlock, on a segment made here ---------------------------------------- */

#define FAKE_POOLS 2u
#define FAKE_ACTORS 64u

struct fake {
    void *map;
    size_t size;
    xo_shm_header_t h;
    xo_shm_pool_t pools[FAKE_POOLS];
    xo_shm_actor_t actors[FAKE_ACTORS];
};

/* A segment as the runtime lays it out, its first snapshot published. */
static void fake_make(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    f->size = sizeof(xo_shm_header_t) + sizeof(f->pools) + sizeof(f->actors);
    f->map = aligned_alloc(64, (f->size + 63) & ~(size_t)63);
    cr_assert_not_null(f->map);
    memset(f->map, 0, f->size);
    xo_shm_header_t *m = f->map;
    m->magic = XO_SHM_MAGIC;
    m->version = XO_SHM_VERSION;
    m->header_bytes = sizeof(xo_shm_header_t);
    m->pool_bytes = sizeof(xo_shm_pool_t);
    m->actor_bytes = sizeof(xo_shm_actor_t);
    m->pid = (uint64_t)getpid();
    f->h.bytes = f->size;
    f->h.pools_off = sizeof(xo_shm_header_t);
    f->h.pool_cap = f->h.npools = FAKE_POOLS;
    f->h.actors_off = f->h.pools_off + sizeof(f->pools);
    f->h.actor_cap = f->h.nactors = FAKE_ACTORS;
    f->h.state = XO_SHM_RUNNING;
    f->h.publishes = 1;
    xi_shm_store(f->map, &f->h, f->pools, f->actors);
}

static _Atomic uint64_t *fake_seq(struct fake *f)
{
    return (_Atomic uint64_t *)((char *)f->map +
                                offsetof(xo_shm_header_t, seq));
}

Test(shm, reader_retries_while_a_publish_is_in_progress)
{
    static struct fake f;
    fake_make(&f);
    size_t size = f.size;
    void *dst = malloc(size);
    unsigned retries = 0;
    cr_assert_eq(xo_shm_read(f.map, f.size, dst, size, NULL, 5, &retries),
                 XO_SHM_OK);
    cr_assert_eq(retries, 0);
    uint64_t seq = atomic_load(fake_seq(&f));
    cr_assert_eq(seq, 2, "one publish: odd, then even");
    /* A writer between its two stores of the sequence. */
    atomic_store(fake_seq(&f), seq + 1);
    cr_assert_eq(xo_shm_read_once(f.map, f.size, dst, size, NULL),
                 XO_SHM_BUSY);
    cr_assert_eq(xo_shm_read(f.map, f.size, dst, size, NULL, 5, &retries),
                 XO_SHM_BUSY);
    cr_assert_eq(retries, 5, "every try found it odd");
    /* The publish ends: the next read copies. */
    atomic_store(fake_seq(&f), seq + 2);
    retries = 0;
    cr_assert_eq(xo_shm_read(f.map, f.size, dst, size, NULL, 5, &retries),
                 XO_SHM_OK);
    cr_assert_eq(retries, 0);
    free(dst);
    free(f.map);
}

Test(shm, reader_refuses_what_it_cannot_read_and_asks_for_a_remap)
{
    static struct fake f;
    fake_make(&f);
    size_t need = 0;
    void *dst = malloc(f.size);
    /* Shorter than a header, or no magic yet: being made. */
    cr_assert_eq(xo_shm_read_once(f.map, 16, dst, f.size, NULL),
                 XO_SHM_NOT_READY);
    xo_shm_header_t *m = f.map;
    m->magic = 0;
    cr_assert_eq(xo_shm_read_once(f.map, f.size, dst, f.size, NULL),
                 XO_SHM_NOT_READY);
    m->magic = 42;
    cr_assert_eq(xo_shm_read_once(f.map, f.size, dst, f.size, NULL),
                 XO_SHM_BAD_MAGIC);
    m->magic = XO_SHM_MAGIC;
    m->version = XO_SHM_VERSION + 1;
    cr_assert_eq(xo_shm_read_once(f.map, f.size, dst, f.size, NULL),
                 XO_SHM_BAD_VERSION);
    m->version = XO_SHM_VERSION;
    /* A destination too small says how big it must be. */
    cr_assert_eq(xo_shm_read_once(f.map, f.size, dst, 100, &need),
                 XO_SHM_SMALL);
    cr_assert_eq(need, sizeof(xo_shm_header_t));
    cr_assert_eq(xo_shm_read_once(f.map, f.size, dst,
                                  sizeof(xo_shm_header_t), &need),
                 XO_SHM_SMALL);
    cr_assert_eq(need, f.size);
    /* A mapping shorter than the segment says it grew. */
    cr_assert_eq(xo_shm_read_once(f.map, f.size - 8, dst, f.size, NULL),
                 XO_SHM_GROWN);
    /* Records that would run past the segment: corrupt, not a crash. */
    f.h.nactors = FAKE_ACTORS + 1;
    xi_shm_store(f.map, &f.h, f.pools, NULL);
    cr_assert_eq(xo_shm_read_once(f.map, f.size, dst, f.size, NULL),
                 XO_SHM_CORRUPT);
    free(dst);
    free(f.map);
}

struct torn {
    struct fake f;
    atomic_bool done;
    uint64_t written;
};

/* Publish snapshots whose every number is the publish's count, with a
   short rest after each (a writer that never rests leaves a reader no
   window at all: it publishes every cfg.stats_shm_ns in life). */
static void *torn_writer(void *arg)
{
    struct torn *t = arg;
    struct fake *f = &t->f;
    for (uint64_t k = 2; !atomic_load(&t->done); k++) {
        f->h.publishes = k;
        for (unsigned i = 0; i < FAKE_POOLS; i++)
            f->pools[i].handled = k;
        for (unsigned i = 0; i < FAKE_ACTORS; i++) {
            f->actors[i].handled = k;
            f->actors[i].handler_hist[XO_HIST_BUCKETS - 1] = k;
        }
        xi_shm_store(f->map, &f->h, f->pools, f->actors);
        t->written = k;
        struct timespec rest = { 0, 10000 };
        nanosleep(&rest, NULL);
    }
    return NULL;
}

Test(shm, reader_never_sees_a_torn_snapshot)
{
    static struct torn t;
    fake_make(&t.f);
    atomic_init(&t.done, false);
    pthread_t w;
    cr_assert_eq(pthread_create(&w, NULL, torn_writer, &t), 0);
    void *dst = malloc(t.f.size);
    unsigned retries = 0;
    uint64_t last = 0;
    for (int read = 0; read < 2000; read++) {
        int rc = xo_shm_read(t.f.map, t.f.size, dst, t.f.size, NULL, 1000000,
                             &retries);
        cr_assert_eq(rc, XO_SHM_OK);
        const xo_shm_header_t *h = dst;
        uint64_t k = h->publishes;
        cr_assert_geq(k, last, "snapshots never go back");
        last = k;
        for (unsigned i = 0; i < FAKE_POOLS; i++)
            cr_assert_eq(xo_shm_pool_at(h, i)->handled, k > 1 ? k : 0);
        for (unsigned i = 0; i < FAKE_ACTORS; i++) {
            const xo_shm_actor_t *a = xo_shm_actor_at(h, i);
            cr_assert_eq(a->handled, k > 1 ? k : 0,
                         "actor %u of publish %llu", i, (unsigned long long)k);
            cr_assert_eq(a->handler_hist[XO_HIST_BUCKETS - 1], k > 1 ? k : 0);
        }
    }
    atomic_store(&t.done, true);
    pthread_join(w, NULL);
    cr_log_info("2000 whole snapshots, %u tries overlapped a publish, "
                "%llu publishes",
                retries, (unsigned long long)t.written);
    free(dst);
    free(t.f.map);
}
