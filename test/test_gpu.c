/*
 * GPU pools, streams, held replies and buffers. The same tests build twice:
 * test_gpu runs them on the host backend (every build, every test run),
 * test_gpu_cuda on the CUDA backend (where nvcc was found), where each
 * test first checks for the devices it needs (cudaGetDeviceCount, through
 * xo_gpu_probe) and skips, saying why on stderr, when they are not there.
 *
 * The host backend runs a stream's work on its stream thread when the
 * thread polls, never inside a handler: an answer that did not wait for
 * its point would find the handler's work not done at all, so the tests
 * below fail without the holds rather than only sometimes.
 *
 * Handlers record what they see in globals; the test thread asserts.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/kernels.h"
#include "runtime/runtime.h"

#ifdef GPU_TEST_CUDA
#define BACKEND XO_GPU_CUDA
#define GPU_SUITE gpu_cuda
#else
#define BACKEND XO_GPU_HOST
#define GPU_SUITE gpu
#endif
#define GTEST_(suite, name) Test(suite, name, .timeout = 120)
#define GTEST(name) GTEST_(GPU_SUITE, name)

#define MIB ((size_t)1 << 20)

/* ---- the runtime ---------------------------------------------------------- */

/* Skip (with the reason, on stderr too) unless n devices are there. */
static void need_devices(int n)
{
#ifdef GPU_TEST_CUDA
    xo_gpu_probe_t pr;
    cr_assert_eq(xo_gpu_probe(&pr), 0);
    if (pr.cuda_devices < n) {
        fprintf(stderr, "skipped: needs %d CUDA device(s), %d visible%s%s\n",
                n, pr.cuda_devices, pr.reason[0] ? ": " : "", pr.reason);
        cr_skip_test("needs %d CUDA device(s), %d visible%s%s", n,
                     pr.cuda_devices, pr.reason[0] ? ": " : "", pr.reason);
    }
#else
    (void)n;
#endif
}

/* The CUDA machines this runs on have one device or more; the host
   backend two. */
static int devices_up_to(int n)
{
#ifdef GPU_TEST_CUDA
    xo_gpu_probe_t pr;
    xo_gpu_probe(&pr);
    return pr.cuda_devices < n ? pr.cuda_devices : n;
#else
    return n;
#endif
}

/* cpu_pools CPU pools (0 ..), then `streams` GPU pools per device for
   `devices` devices, device-major. */
static xo_runtime_t *gpu_start(unsigned cpu_pools, int devices,
                               unsigned streams)
{
    need_devices(devices < 1 ? 1 : devices);
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = cpu_pools;
    cfg.spin_ns = 5000;
    cfg.gpu_backend = BACKEND;
    cfg.gpu_devices = devices;
    cfg.gpu_streams = streams;
    cfg.gpu_host_devices = 2;
    xo_runtime_t *rt = NULL;
    int rc = xo_runtime_start(&cfg, &rt);
    cr_assert_eq(rc, 0, "xo_runtime_start: %s (%s)", xo_strerror(rc),
                 xo_gpu_last_error());
    return rt;
}

static unsigned gpu_pool(unsigned cpu_pools, unsigned streams, int device,
                         unsigned stream)
{
    return cpu_pools + (unsigned)device * streams + stream;
}

static xo_ref_t spawn_placed(xo_runtime_t *rt, const xo_actor_def_t *def,
                             xo_placement_t place)
{
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.place = place;
    xo_ref_t r;
    int rc = xo_spawn(rt, def, &o, &r);
    cr_assert_eq(rc, 0, "xo_spawn: %s", xo_strerror(rc));
    return r;
}

static unsigned pool_of(xo_ref_t r)
{
    xo_actor_stats_t st;
    cr_assert_eq(xo_actor_stats(r, &st), 0);
    return st.pool;
}

/* A call answered with status 0 (the reply's payload into out, if any). */
static void call_ok(xo_ref_t to, uint32_t tag, const void *data, size_t size,
                    void *out, size_t out_size)
{
    xo_future_t *f;
    int rc = xo_call(to, tag, data, size, &f);
    cr_assert_eq(rc, 0, "xo_call: %s", xo_strerror(rc));
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t res;
    rc = xo_future_result(f, 0, &res);
    cr_assert_eq(rc, 0, "tag %u answered %s: %s", tag, xo_err_name(rc),
                 res.error);
    if (out != NULL) {
        cr_assert_eq(res.size, out_size);
        memcpy(out, res.data, out_size);
    }
    xo_future_release(f);
}

/* A call answered with `code`; its error message into msg (msg_size
   bytes). */
static void call_fails(xo_ref_t to, uint32_t tag, int code, char *msg,
                       size_t msg_size)
{
    xo_future_t *f;
    cr_assert_eq(xo_call(to, tag, NULL, 0, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t res;
    int rc = xo_future_result(f, 0, &res);
    cr_assert_eq(rc, code, "tag %u answered %s (%s)", tag, xo_err_name(rc),
                 res.error ? res.error : "");
    snprintf(msg, msg_size, "%s", res.error);
    xo_future_release(f);
}

static int launch(xo_stream_t *s, enum tk_id k, void **args)
{
    return xo_stream_launch(s, tk(k), XO_DIM3(1, 1, 1), XO_DIM3(1, 1, 1), 0,
                            args);
}

static int launch_wide(xo_stream_t *s, enum tk_id k, void **args)
{
    return xo_stream_launch(s, tk(k), XO_DIM3(64, 1, 1), XO_DIM3(256, 1, 1),
                            0, args);
}

/* A handler's own check that failed, kept for the test thread. */
static atomic_int handler_faults;
static char handler_fault[256];

#define HCHECK(cond)                                                         \
    do {                                                                     \
        if (!(cond) && atomic_fetch_add(&handler_faults, 1) == 0)            \
            snprintf(handler_fault, sizeof(handler_fault),                   \
                     "%s:%d: %s (%s)", __FILE__, __LINE__, #cond,            \
                     xo_gpu_last_error());                                   \
    } while (0)

static void no_handler_faults(void)
{
    cr_assert_eq(atomic_load(&handler_faults), 0, "in a handler: %s",
                 handler_fault);
}

/* ---- pools and placement ---------------------------------------------------- */

GTEST(pools_carry_gpu_labels_and_report_their_device)
{
    int devices = devices_up_to(2);
    xo_runtime_t *rt = gpu_start(2, devices, 2);
    xo_gpu_backend_t be;
    int n;
    cr_assert_eq(xo_gpu_backend(rt, &be, &n), 0);
    cr_assert_eq(be, BACKEND, "backend %s", xo_gpu_backend_name(be));
    cr_assert_geq(n, devices);
    cr_assert_eq(xo_pool_count(rt), 2 + (unsigned)devices * 2);
    xo_pool_info_t info;
    for (unsigned i = 0; i < 2; i++) {
        cr_assert_eq(xo_pool_info(rt, i, &info), 0);
        cr_assert_eq(info.kind, XO_POOL_CPU);
        cr_assert_eq(info.device, -1);
    }
    for (int d = 0; d < devices; d++)
        for (unsigned k = 0; k < 2; k++) {
            char want[32];
            snprintf(want, sizeof(want), "gpu,gpu:%d", d);
            cr_assert_eq(xo_pool_info(rt, gpu_pool(2, 2, d, k), &info), 0);
            cr_assert_eq(info.kind, XO_POOL_GPU);
            cr_assert_eq(info.state, XO_POOL_RUNNING);
            cr_assert_eq(info.device, d);
            cr_assert_eq(info.core, -1);
            cr_assert_str_eq(info.labels, want);
        }
    /* One more, added while it runs, with labels of its own. */
    xo_pool_spec_t spec;
    xo_pool_spec_init(&spec);
    spec.kind = XO_POOL_GPU;
    spec.device = devices - 1;
    spec.labels = "trainer";
    unsigned idx;
    cr_assert_eq(xo_pool_add(rt, &spec, &idx), 0, "%s", xo_gpu_last_error());
    cr_assert_eq(xo_pool_info(rt, idx, &info), 0);
    char want[48];
    snprintf(want, sizeof(want), "gpu,gpu:%d,trainer", devices - 1);
    cr_assert_str_eq(info.labels, want);
    stop_runtime(rt);
}

static int nop_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx, (void)state, (void)m;
    return 0;
}

static const xo_actor_def_t nop_def = { .name = "nop",
                                        .on_message = nop_message };
static const xo_actor_def_t stateless_def = {
    .name = "stateless", .flags = XO_ACTOR_STATELESS,
    .on_message = nop_message };

GTEST(placement_by_label_and_idle_label_puts_actors_on_gpu_pools)
{
    int devices = devices_up_to(2);
    xo_runtime_t *rt = gpu_start(2, devices, 1);
    unsigned last = gpu_pool(2, 1, devices - 1, 0);
    xo_placement_t p;
    /* "gpu:N": the pool of device N, whichever policy picks among them. */
    char label[16];
    snprintf(label, sizeof(label), "gpu:%d", devices - 1);
    p = (xo_placement_t){ .kind = XO_PLACE_RANDOM_LABEL, .label = label };
    cr_assert_eq(pool_of(spawn_placed(rt, &nop_def, p)), last);
    p = (xo_placement_t){ .kind = XO_PLACE_LEAST_LOADED, .label = label };
    cr_assert_eq(pool_of(spawn_placed(rt, &nop_def, p)), last);
    /* "gpu": only GPU pools, for every policy that chooses among pools. */
    xo_place_kind_t kinds[] = { XO_PLACE_LEAST_LOADED, XO_PLACE_RANDOM,
                                XO_PLACE_RANDOM_LABEL, XO_PLACE_ROUND_ROBIN };
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
        for (int i = 0; i < 8; i++) {
            p = (xo_placement_t){ .kind = kinds[k], .label = "gpu" };
            unsigned pool = pool_of(spawn_placed(rt, &nop_def, p));
            cr_assert(pool >= 2 && pool <= last, "kind %d: pool %u",
                      (int)kinds[k], pool);
        }
    /* Round robin over the GPU pools visits each. */
    if (devices == 2) {
        bool seen[2] = { false, false };
        for (int i = 0; i < 4; i++) {
            p = (xo_placement_t){ .kind = XO_PLACE_ROUND_ROBIN,
                                  .label = "gpu" };
            seen[pool_of(spawn_placed(rt, &nop_def, p)) - 2] = true;
        }
        cr_assert(seen[0] && seen[1]);
    }
    /* Without a label they choose among the CPU pools only. */
    xo_place_kind_t plain[] = { XO_PLACE_LEAST_LOADED, XO_PLACE_RANDOM,
                                XO_PLACE_ROUND_ROBIN };
    for (size_t k = 0; k < sizeof(plain) / sizeof(plain[0]); k++)
        for (int i = 0; i < 8; i++) {
            p = (xo_placement_t){ .kind = plain[k] };
            cr_assert_lt(pool_of(spawn_placed(rt, &nop_def, p)), 2u);
        }
    /* Idle-label, Xoscar's one actor per card: one per GPU pool, then no
       pool is left for that mark; another mark starts over. */
    xo_ref_t models[2];
    for (int d = 0; d < devices; d++) {
        p = (xo_placement_t){ .kind = XO_PLACE_IDLE_LABEL, .label = "gpu",
                              .mark = "model" };
        models[d] = spawn_placed(rt, &nop_def, p);
        cr_assert_eq(pool_of(models[d]), gpu_pool(2, 1, d, 0));
    }
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.place = (xo_placement_t){ .kind = XO_PLACE_IDLE_LABEL, .label = "gpu",
                                .mark = "model" };
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &nop_def, &o, &r), XO_ENOSLOT);
    o.place.mark = "tokenizer";
    cr_assert_eq(xo_spawn(rt, &nop_def, &o, &r), 0);
    /* A card freed by its actor's end takes the next one. */
    cr_assert_eq(xo_destroy(models[0]), 0);
    o.place.mark = "model";
    cr_assert_eq(xo_spawn(rt, &nop_def, &o, &r), 0);
    cr_assert_eq(pool_of(r), gpu_pool(2, 1, 0, 0));
    /* By index, and near a GPU actor. */
    o.place = (xo_placement_t){ .kind = XO_PLACE_POOL, .pool = last };
    cr_assert_eq(xo_spawn(rt, &nop_def, &o, &r), 0);
    cr_assert_eq(pool_of(r), last);
    o.place = (xo_placement_t){ .kind = XO_PLACE_NEAR, .near = r };
    cr_assert_eq(xo_spawn(rt, &nop_def, &o, &r), 0);
    cr_assert_eq(pool_of(r), last);
    /* A stateless actor cannot live on a stream thread. */
    o.place = (xo_placement_t){ .kind = XO_PLACE_POOL, .pool = last };
    cr_assert_eq(xo_spawn(rt, &stateless_def, &o, &r), XO_EINVAL);
    stop_runtime(rt);
}

/* ---- handlers on the stream thread ----------------------------------------- */

static atomic_int inside, overlaps, other_threads, without_stream;
static atomic_long gpu_handled;
static pthread_t stream_thread;
static atomic_bool stream_thread_set;

static int one_at_a_time(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state, (void)m;
    if (atomic_fetch_add(&inside, 1) != 0)
        atomic_fetch_add(&overlaps, 1);
    bool expected = false;
    if (atomic_compare_exchange_strong(&stream_thread_set, &expected, true))
        stream_thread = pthread_self();
    else if (!pthread_equal(stream_thread, pthread_self()))
        atomic_fetch_add(&other_threads, 1);
    xo_stream_t *s = xo_ctx_stream(ctx);
    if (s == NULL || xo_stream_device(s) != 0)
        atomic_fetch_add(&without_stream, 1);
    for (volatile int i = 0; i < 200; i++)
        ;
    atomic_fetch_sub(&inside, 1);
    atomic_fetch_add(&gpu_handled, 1);
    return 0;
}

static const xo_actor_def_t one_def = { .name = "one",
                                        .on_message = one_at_a_time };

static atomic_int cpu_saw_stream;

static int cpu_looks(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state, (void)m;
    if (xo_ctx_stream(ctx) != NULL)
        atomic_fetch_add(&cpu_saw_stream, 1);
    if (stream_thread_set && pthread_equal(stream_thread, pthread_self()))
        atomic_fetch_add(&cpu_saw_stream, 1);
    return 0;
}

static const xo_actor_def_t cpu_look_def = { .name = "cpu-look",
                                             .on_message = cpu_looks };

struct flood {
    xo_ref_t to[4];
    int n;
};

static void *flood_thread(void *arg)
{
    struct flood *f = arg;
    for (int i = 0; i < f->n; i++)
        for (int a = 0; a < 4; a++)
            while (xo_tell(f->to[a], 1, &i, sizeof(i)) != 0)
                ;
    return NULL;
}

GTEST(handlers_run_on_the_stream_thread_one_at_a_time)
{
    xo_runtime_t *rt = gpu_start(2, 1, 1);
    struct flood f = { .n = 300 };
    for (int a = 0; a < 4; a++)
        f.to[a] = spawn_on(rt, &one_def, 2);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, flood_thread, &f);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int a = 0; a < 4; a++)
        wait_handled(f.to[a], 2 * 300);
    xo_ref_t c = spawn_on(rt, &cpu_look_def, 0);
    call_ok(c, 1, NULL, 0, NULL, 0);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&gpu_handled), 4 * 2 * 300);
    cr_assert_eq(atomic_load(&overlaps), 0, "two handlers ran at once");
    cr_assert_eq(atomic_load(&other_threads), 0,
                 "a handler ran off the stream thread");
    cr_assert_eq(atomic_load(&without_stream), 0,
                 "a GPU actor's handler had no stream of device 0");
    cr_assert_eq(atomic_load(&cpu_saw_stream), 0,
                 "a CPU actor ran with a stream, or on the stream thread");
}

/* ---- replies after the stream's work ----------------------------------------- */

/* Its log lives in device memory; snapshots of it are copied into pinned
   buffers the test thread reads once a reply has come. */
struct logger {
    xo_buf_t *log, *snap[2];
};

enum { LOG_RUN = 1, LOG_SPLIT, LOG_FAIL_AFTER };

static xo_buf_t *g_snap[2];

static int logger_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct logger *l = state;
    xo_stream_t *s = xo_ctx_stream(ctx);
    xo_runtime_t *rt = xo_ctx_runtime(ctx);
    int rc;
    if (l->log == NULL) {
        HCHECK(xo_buf_alloc(rt, XO_MEM_DEVICE, -1, 4096, &l->log) == 0);
        for (int i = 0; i < 2; i++) {
            HCHECK(xo_buf_alloc(rt, XO_MEM_PINNED, -1, 4096, &l->snap[i]) ==
                   0);
            g_snap[i] = xo_buf_ref(l->snap[i]);
        }
        HCHECK(xo_stream_fill(s, xo_buf_data(l->log), 0, 4096) == 0);
    }
    void *log = xo_buf_data(l->log);
    for (uint32_t id = 1; id <= 5; id++) {
        void *args[] = { &log, &id };
        if ((rc = launch(s, TK_LOG, args)) != 0)
            return rc;
    }
    rc = xo_stream_copy(s, xo_buf_data(l->snap[0]), log, 4096);
    if (rc != 0 || m->tag == LOG_RUN)
        return rc; /* answered when it returns: after all of the above */
    if (m->tag == LOG_FAIL_AFTER)
        return xo_fail(ctx, XO_EINVAL, "refused after its work");
    /* LOG_SPLIT: answered now, in the middle; more work follows. */
    HCHECK(xo_reply(m->request, 7, "mid", 3) == 0);
    uint64_t ns = 20000000;
    void *spin[] = { &ns };
    HCHECK(launch(s, TK_SPIN, spin) == 0);
    uint32_t id = 6;
    void *args[] = { &log, &id };
    HCHECK(launch(s, TK_LOG, args) == 0);
    return xo_stream_copy(s, xo_buf_data(l->snap[1]), log, 4096);
}

static int logger_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    struct logger *l = state;
    xo_buf_release(l->log);
    xo_buf_release(l->snap[0]);
    xo_buf_release(l->snap[1]);
    return 0;
}

static const xo_actor_def_t logger_def = {
    .name = "logger", .state_size = sizeof(struct logger),
    .on_message = logger_message, .on_destroy = logger_destroy };

static const uint32_t *snap(int i)
{
    return xo_buf_data(g_snap[i]);
}

GTEST(a_reply_completes_only_after_the_work_its_handler_enqueued)
{
    xo_runtime_t *rt = gpu_start(1, 1, 1);
    xo_ref_t a = spawn_on(rt, &logger_def, 1);
    call_ok(a, LOG_RUN, NULL, 0, NULL, 0);
    no_handler_faults();
    /* The five launches ran, in order, and so did the copy after them. */
    const uint32_t *log = snap(0);
    cr_assert_eq(log[0], 5, "log length %u when the reply came", log[0]);
    for (uint32_t i = 1; i <= 5; i++)
        cr_assert_eq(log[i], i);
    /* Again: the same device memory, five more. */
    call_ok(a, LOG_RUN, NULL, 0, NULL, 0);
    cr_assert_eq(snap(0)[0], 10);
    /* A handler's error also waits for its work, and keeps its message. */
    char error[256];
    call_fails(a, LOG_FAIL_AFTER, XO_EINVAL, error, sizeof(error));
    cr_assert_str_eq(error, "refused after its work");
    cr_assert_eq(snap(0)[0], 15);
    xo_future_t *f;
    xo_result_t res;
    /* xo_reply in the middle: it completes after the work enqueued before
       it (the first snapshot), not the work after. */
    cr_assert_eq(xo_call(a, LOG_SPLIT, NULL, 0, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    cr_assert_eq(xo_future_result(f, 0, &res), 0);
    cr_assert_eq(res.tag, 7);
    cr_assert_eq(snap(0)[0], 20);
    xo_future_release(f);
    /* The work after it still runs (a call after it completes after). */
    call_ok(a, LOG_RUN, NULL, 0, NULL, 0);
    cr_assert_eq(snap(1)[0], 21);
    cr_assert_eq(snap(1)[21], 6);
    no_handler_faults();
    /* Every buffer goes before its runtime. */
    xo_buf_release(g_snap[0]);
    xo_buf_release(g_snap[1]);
    stop_runtime(rt);
}

/* ---- buffers: the same device -------------------------------------------------- */

static _Atomic(xo_buf_t *) sent_buf, got_buf[2];
static _Atomic(void *) sent_ptr, got_ptr[2];
static _Atomic(xo_mem_kind_t) got_kind[2];

enum { HAND_GO = 1, HAND_TAKE };

struct hander {
    xo_ref_t to[2];
};

static int hander_create(xo_ctx_t *ctx, void *state, const void *arg,
                         size_t size)
{
    (void)ctx;
    if (size > 0)
        memcpy(state, arg, size);
    return 0;
}

static int hander_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct hander *h = state;
    xo_stream_t *s = xo_ctx_stream(ctx);
    if (m->tag == HAND_GO) {
        xo_buf_t *b;
        HCHECK(xo_buf_alloc(xo_ctx_runtime(ctx), XO_MEM_DEVICE, -1, MIB,
                            &b) == 0);
        HCHECK(xo_stream_fill(s, xo_buf_data(b), 0x5a, MIB) == 0);
        atomic_store(&sent_buf, b);
        atomic_store(&sent_ptr, xo_buf_data(b));
        /* Two receivers: two references. */
        xo_buf_ref(b);
        int which = 0;
        HCHECK(xo_send_buf(h->to[0], HAND_TAKE, b, &which, sizeof(which)) ==
               0);
        which = 1;
        HCHECK(xo_send_buf(h->to[1], HAND_TAKE, b, &which, sizeof(which)) ==
               0);
        return 0;
    }
    if (m->tag != HAND_TAKE)
        return 0;
    int which = *(const int *)m->data;
    xo_buf_t *b;
    HCHECK(xo_msg_buf(ctx, m, &b) == 0);
    atomic_store(&got_buf[which], b);
    atomic_store(&got_ptr[which], xo_buf_data(b));
    atomic_store(&got_kind[which], xo_buf_kind(b));
    return 0;
}

static const xo_actor_def_t hander_def = {
    .name = "hander", .state_size = sizeof(struct hander),
    .on_create = hander_create, .on_message = hander_message };

GTEST(same_device_hand_off_passes_the_pointer_itself)
{
    /* Device 0 has two pools: a receiver on the sender's own pool and one
       on the other stream of the same device. */
    xo_runtime_t *rt = gpu_start(1, 1, 2);
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.pool = 1;
    xo_ref_t same, other;
    cr_assert_eq(xo_spawn(rt, &hander_def, &o, &same), 0);
    o.pool = 2;
    cr_assert_eq(xo_spawn(rt, &hander_def, &o, &other), 0);
    struct hander h = { { same, other } };
    o.pool = 1;
    o.arg = &h;
    o.arg_size = sizeof(h);
    xo_ref_t sender;
    cr_assert_eq(xo_spawn(rt, &hander_def, &o, &sender), 0);
    call_ok(sender, HAND_GO, NULL, 0, NULL, 0);
    /* A call to each receiver after the hand-off's message: it has been
       handled when this returns. */
    call_ok(same, 99, NULL, 0, NULL, 0);
    call_ok(other, 99, NULL, 0, NULL, 0);
    no_handler_faults();
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(atomic_load(&got_buf[i]), atomic_load(&sent_buf),
                     "receiver %d got another buffer", i);
        cr_assert_eq(atomic_load(&got_ptr[i]), atomic_load(&sent_ptr),
                     "receiver %d got another address", i);
        cr_assert_eq(atomic_load(&got_kind[i]), XO_MEM_DEVICE);
    }
    stop_runtime(rt);
}

/* ---- buffers: moves that copy ------------------------------------------------------- */

/* A moved buffer's description, in the message beside it. */
struct piece {
    uint64_t seed;
    uint64_t size;
    int path;
};

enum { PATH_D2H = 0, PATH_PEER, PATH_H2D, PATHS };
enum { MOVE_GO = 1, MOVE_PIECE };

static const size_t piece_sizes[3] = { 10 * MIB, 3 * MIB, 5 * MIB };

static atomic_int pieces_ok[PATHS], pieces_bad[PATHS], relayed_on_device[2];
static struct latch pieces_done;
static atomic_int wrong_device;

/* Takes whose copy failed, and the first one's code and message. */
static atomic_int takes_failed, take_failure;
static char take_failure_text[256];

/* The CPU end: every word checked. */
static int checker_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    const struct piece *pc = m->data;
    xo_buf_t *b;
    int rc = xo_msg_buf(ctx, m, &b);
    if (rc != 0 && atomic_fetch_add(&takes_failed, 1) == 0) {
        snprintf(take_failure_text, sizeof(take_failure_text), "%s",
                 xo_gpu_last_error());
        atomic_store(&take_failure, rc);
    }
    bool ok = rc == 0 && xo_buf_size(b) == pc->size &&
              xo_buf_kind(b) != XO_MEM_DEVICE;
    const uint64_t *w = ok ? xo_buf_data(b) : NULL;
    for (uint64_t i = 0; ok && i < pc->size / 8; i++)
        ok = w[i] == tk_word(pc->seed, i);
    atomic_fetch_add(ok ? &pieces_ok[pc->path] : &pieces_bad[pc->path], 1);
    latch_count_down(&pieces_done);
    return 0;
}

static const xo_actor_def_t checker_def = { .name = "checker",
                                            .on_message = checker_message };

struct mover {
    xo_ref_t checker, relay; /* relay: XO_REF_NONE for none */
};

static int mover_create(xo_ctx_t *ctx, void *state, const void *arg,
                        size_t size)
{
    (void)ctx;
    memcpy(state, arg, size);
    return 0;
}

/* The source (MOVE_GO): for each size, a buffer filled on its stream,
   sent to the checker; with a relay, a second one sent there too -- all
   sent back to back, so the copies are in flight together. A relay
   (MOVE_PIECE) takes a piece onto its own device and passes it on. */
static int mover_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct mover *mv = state;
    xo_stream_t *s = xo_ctx_stream(ctx);
    xo_runtime_t *rt = xo_ctx_runtime(ctx);
    if (m->tag == MOVE_PIECE) {
        struct piece pc = *(const struct piece *)m->data;
        xo_buf_t *b;
        HCHECK(xo_msg_buf(ctx, m, &b) == 0);
        if (xo_buf_kind(b) != XO_MEM_DEVICE ||
            xo_buf_device(b) != xo_stream_device(s))
            atomic_fetch_add(&wrong_device, 1);
        atomic_fetch_add(&relayed_on_device[xo_stream_device(s)], 1);
        /* Passed on: a reference of its own for the new message. */
        HCHECK(xo_send_buf(mv->checker, MOVE_PIECE, xo_buf_ref(b), &pc,
                           sizeof(pc)) == 0);
        return 0;
    }
    uint64_t seed = *(const uint64_t *)m->data;
    for (int i = 0; i < 3; i++)
        for (int twice = 0; twice < 2; twice++) {
            struct piece pc = { seed + (uint64_t)(i * 2 + twice),
                                piece_sizes[i], PATH_D2H };
            xo_buf_t *b;
            HCHECK(xo_buf_alloc(rt, XO_MEM_DEVICE, -1, pc.size, &b) == 0);
            void *p = xo_buf_data(b);
            uint64_t words = pc.size / 8;
            void *args[] = { &p, &words, &pc.seed };
            HCHECK(launch_wide(s, TK_FILL, args) == 0);
            xo_ref_t to = mv->checker;
            if (!xo_ref_is_none(mv->relay) && twice == 1) {
                to = mv->relay;
                pc.path = PATH_PEER;
            }
            HCHECK(xo_send_buf(to, MOVE_PIECE, b, &pc, sizeof(pc)) == 0);
        }
    return 0;
}

static const xo_actor_def_t mover_def = {
    .name = "mover", .state_size = sizeof(struct mover),
    .on_create = mover_create, .on_message = mover_message };

static xo_ref_t spawn_mover(xo_runtime_t *rt, unsigned pool,
                            struct mover mv)
{
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.pool = (int)pool;
    o.arg = &mv;
    o.arg_size = sizeof(mv);
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &mover_def, &o, &r), 0);
    return r;
}

GTEST(device_to_cpu_and_cpu_to_device_moves_deliver_the_same_bytes)
{
    xo_runtime_t *rt = gpu_start(2, 1, 1);
    xo_ref_t checker = spawn_on(rt, &checker_def, 0);
    xo_ref_t src = spawn_mover(rt, 2, (struct mover){ checker, XO_REF_NONE });
    xo_ref_t relay = spawn_mover(rt, 2, (struct mover){ checker,
                                                       XO_REF_NONE });
    /* Host to device: pinned pieces from this thread go through a GPU
       actor (a copy onto its device), back to the checker (a copy off). */
    latch_init(&pieces_done, 6 + 3);
    uint64_t seed = 1000;
    cr_assert_eq(xo_tell(src, MOVE_GO, &seed, sizeof(seed)), 0);
    for (int i = 0; i < 3; i++) {
        struct piece pc = { 5000 + (uint64_t)i, piece_sizes[i], PATH_H2D };
        xo_buf_t *b;
        cr_assert_eq(xo_buf_alloc(rt, XO_MEM_PINNED, -1, pc.size, &b), 0);
        uint64_t *w = xo_buf_data(b);
        for (uint64_t k = 0; k < pc.size / 8; k++)
            w[k] = tk_word(pc.seed, k);
        cr_assert_eq(xo_send_buf(relay, MOVE_PIECE, b, &pc, sizeof(pc)), 0);
    }
    latch_wait(&pieces_done);
    no_handler_faults();
    cr_assert_eq(atomic_load(&pieces_ok[PATH_D2H]), 6);
    cr_assert_eq(atomic_load(&pieces_ok[PATH_H2D]), 3);
    cr_assert_eq(atomic_load(&pieces_bad[PATH_D2H]) +
                     atomic_load(&pieces_bad[PATH_H2D]), 0);
    cr_assert_eq(atomic_load(&wrong_device), 0);
    stop_runtime(rt);
}

GTEST(cross_device_moves_deliver_the_same_bytes)
{
    xo_runtime_t *rt = gpu_start(1, 2, 1);
    xo_ref_t checker = spawn_on(rt, &checker_def, 0);
    xo_ref_t relay = spawn_mover(rt, gpu_pool(1, 1, 1, 0),
                                 (struct mover){ checker, XO_REF_NONE });
    xo_ref_t src = spawn_mover(rt, gpu_pool(1, 1, 0, 0),
                               (struct mover){ checker, relay });
    /* Three sizes, twice each: one straight to the host, one to device 1
       first (a peer copy), then to the host. */
    latch_init(&pieces_done, 6);
    uint64_t seed = 77;
    cr_assert_eq(xo_tell(src, MOVE_GO, &seed, sizeof(seed)), 0);
    latch_wait(&pieces_done);
    no_handler_faults();
    cr_assert_eq(atomic_load(&pieces_ok[PATH_D2H]), 3);
    cr_assert_eq(atomic_load(&pieces_ok[PATH_PEER]), 3);
    cr_assert_eq(atomic_load(&pieces_bad[PATH_D2H]) +
                     atomic_load(&pieces_bad[PATH_PEER]), 0);
    cr_assert_eq(atomic_load(&relayed_on_device[1]), 3,
                 "device 1's actor got its pieces in its own memory");
    cr_assert_eq(atomic_load(&wrong_device), 0);
    stop_runtime(rt);
}

/* ---- buffers: freed once ------------------------------------------------------------------ */

static atomic_int frees;

static void count_free(void *data, void *arg)
{
    (void)arg;
    free(data);
    atomic_fetch_add(&frees, 1);
}

enum { KEEP_TAKE = 1, KEEP_DROP, KEEP_SYNC };

/* Takes the buffer a message carries and keeps a reference until told. */
static int keeper_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    xo_buf_t **kept = state;
    if (m->tag == KEEP_TAKE) {
        xo_buf_t *b;
        HCHECK(xo_msg_buf(ctx, m, &b) == 0);
        if (*(const int *)m->data)
            *kept = xo_buf_ref(b);
    } else if (m->tag == KEEP_DROP) {
        xo_buf_release(*kept);
        *kept = NULL;
    }
    return 0;
}

static const xo_actor_def_t keeper_def = {
    .name = "keeper", .state_size = sizeof(xo_buf_t *),
    .on_message = keeper_message };

GTEST(a_buffer_is_freed_exactly_once_when_the_last_reference_goes)
{
    xo_runtime_t *rt = gpu_start(2, 1, 1);
    xo_ref_t keep_cpu = spawn_on(rt, &keeper_def, 0);
    xo_ref_t pass_cpu = spawn_on(rt, &keeper_def, 1);
    xo_ref_t keep_gpu = spawn_on(rt, &keeper_def, 2);
    /* Host memory: three references, sent to two actors. */
    xo_buf_t *b;
    cr_assert_eq(xo_buf_wrap(rt, XO_MEM_HOST, -1, malloc(4096), 4096,
                             count_free, NULL, &b), 0);
    xo_buf_ref(b);
    xo_buf_ref(b);
    int keep = 1, pass = 0;
    cr_assert_eq(xo_send_buf(keep_cpu, KEEP_TAKE, b, &keep, sizeof(keep)),
                 0);
    cr_assert_eq(xo_send_buf(pass_cpu, KEEP_TAKE, b, &pass, sizeof(pass)),
                 0);
    call_ok(keep_cpu, KEEP_SYNC, NULL, 0, NULL, 0);
    call_ok(pass_cpu, KEEP_SYNC, NULL, 0, NULL, 0);
    cr_assert_eq(atomic_load(&frees), 0, "freed while referenced");
    xo_buf_release(b);
    cr_assert_eq(atomic_load(&frees), 0, "freed while the keeper holds it");
    call_ok(keep_cpu, KEEP_DROP, NULL, 0, NULL, 0);
    cr_assert_eq(atomic_load(&frees), 1, "the last reference freed it");
    /* Pinned memory taken by a GPU actor: a copy on its device, and the
       original goes on the stream thread, in its order -- after the copy
       that reads it. */
    cr_assert_eq(xo_buf_wrap(rt, XO_MEM_PINNED, -1, malloc(8192), 8192,
                             count_free, NULL, &b), 0);
    cr_assert_eq(xo_send_buf(keep_gpu, KEEP_TAKE, b, &keep, sizeof(keep)),
                 0);
    /* The sync's reply waits for the stream point after the handler's
       copy; the free comes at a point recorded before it. */
    call_ok(keep_gpu, KEEP_SYNC, NULL, 0, NULL, 0);
    cr_assert_eq(atomic_load(&frees), 2);
    call_ok(keep_gpu, KEEP_DROP, NULL, 0, NULL, 0);
    no_handler_faults();
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&frees), 2, "nothing freed twice");
}

/* ---- failures ---------------------------------------------------------------------------- */

enum { FAULT_NOW = 1, PING };

static int faulter_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    if (m->tag != FAULT_NOW)
        return 0;
    uint32_t code = 7;
    void *args[] = { &code };
    return launch(xo_ctx_stream(ctx), TK_FAULT, args);
}

static const xo_actor_def_t faulter_def = { .name = "faulter",
                                            .on_message = faulter_message };

/* The backend's words for the planted fault. */
static void assert_fault_message(const char *error)
{
    cr_assert_not_null(strstr(error, "device 0 failed"), "%s", error);
#ifdef GPU_TEST_CUDA
    /* A trap: cudaErrorLaunchFailure, in the CUDA runtime's words. */
    cr_assert_not_null(strstr(error, "(cudaError"), "%s", error);
#else
    cr_assert_not_null(strstr(error, "kernel fault failed: planted fault 7"),
                       "%s", error);
#endif
}

GTEST(a_failing_stream_operation_reaches_the_caller_as_egpu_with_its_message)
{
    xo_runtime_t *rt = gpu_start(1, 1, 1);
    xo_ref_t a = spawn_on(rt, &faulter_def, 1);
    char error[256];
    call_fails(a, FAULT_NOW, XO_EGPU, error, sizeof(error));
    assert_fault_message(error);
    cr_assert_str_eq(xo_err_name(XO_EGPU), "EGPU");
    stop_runtime(rt);
}

struct downs {
    atomic_int n, device_failed, bad;
    char message[128];
};
static struct downs downs;
static struct latch downs_seen;

static int watcher_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx, (void)state;
    if (m->tag != XO_TAG_DOWN)
        return 0;
    const xo_down_t *d = m->data;
    if (d->reason == XO_EXIT_DEVICE_FAILED && d->code == XO_EGPU) {
        if (atomic_fetch_add(&downs.device_failed, 1) == 0)
            snprintf(downs.message, sizeof(downs.message), "%s", d->message);
    } else {
        atomic_fetch_add(&downs.bad, 1);
    }
    atomic_fetch_add(&downs.n, 1);
    latch_count_down(&downs_seen);
    return 0;
}

static const xo_actor_def_t watcher_def = { .name = "watcher",
                                            .on_message = watcher_message };

static atomic_int faulter_destroys;

static int counted_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx, (void)state;
    atomic_fetch_add(&faulter_destroys, 1);
    return 0;
}

static const xo_actor_def_t mortal_def = { .name = "mortal",
                                           .on_message = faulter_message,
                                           .on_destroy = counted_destroy };

GTEST(a_failed_device_ends_its_pools_actors_with_a_reason_monitors_see)
{
    /* Device 0 has two pools (two streams); device 1, where there is one,
       keeps working. */
    int devices = devices_up_to(2);
    xo_runtime_t *rt = gpu_start(1, devices, 2);
    xo_ref_t w = spawn_on(rt, &watcher_def, 0);
    xo_ref_t a = spawn_on(rt, &mortal_def, 1), b = spawn_on(rt, &mortal_def,
                                                            2);
    xo_monitor_t mon;
    cr_assert_eq(xo_monitor(w, a, &mon), 0);
    cr_assert_eq(xo_monitor(w, b, &mon), 0);
    latch_init(&downs_seen, 2);
    char error[256];
    call_fails(a, FAULT_NOW, XO_EGPU, error, sizeof(error));
    latch_wait(&downs_seen);
    cr_assert_eq(atomic_load(&downs.device_failed), 2);
    cr_assert_eq(atomic_load(&downs.bad), 0);
    assert_fault_message(downs.message);
    cr_assert_eq(atomic_load(&faulter_destroys), 2, "each on_destroy ran");
    cr_assert_not(xo_ref_alive(a));
    cr_assert_not(xo_ref_alive(b));
    /* Both pools of the device failed: no new actors there. */
    xo_pool_info_t info;
    for (unsigned p = 1; p <= 2; p++) {
        cr_assert_eq(xo_pool_info(rt, p, &info), 0);
        cr_assert_eq(info.state, XO_POOL_FAILED, "pool %u", p);
    }
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.pool = 1;
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &nop_def, &o, &r), XO_ENOSLOT);
    o.pool = XO_POOL_ANY;
    o.place = (xo_placement_t){ .kind = XO_PLACE_RANDOM_LABEL,
                                .label = "gpu:0" };
    cr_assert_eq(xo_spawn(rt, &nop_def, &o, &r), XO_ENOSLOT);
    if (devices == 2) { /* the other device is fine */
        xo_ref_t c = spawn_on(rt, &mortal_def, gpu_pool(1, 2, 1, 0));
        call_ok(c, PING, NULL, 0, NULL, 0);
    }
    /* A failed pool is removed as any other. */
    cr_assert_eq(xo_pool_remove(rt, 1), 0);
    cr_assert_eq(xo_pool_info(rt, 1, &info), 0);
    cr_assert_eq(info.state, XO_POOL_REMOVED);
    stop_runtime(rt);
}

/* ---- bad arguments ------------------------------------------------------------------------ */

static const xo_kernel_t no_version = { .name = "nowhere", .nargs = 0 };
static const xo_kernel_t too_many = { .name = "wide", .nargs = 17 };

static atomic_int bad_results[16];
static xo_stream_t *_Atomic leaked_stream;

static int misuser_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    xo_stream_t *s = xo_ctx_stream(ctx);
    int i = 0;
    atomic_store(&leaked_stream, s);
    atomic_store(&bad_results[i++], xo_stream_launch(s, NULL, XO_DIM3(1, 1, 1),
                                                     XO_DIM3(1, 1, 1), 0,
                                                     NULL));
    atomic_store(&bad_results[i++],
                 xo_stream_launch(s, &too_many, XO_DIM3(1, 1, 1),
                                  XO_DIM3(1, 1, 1), 0, NULL));
    atomic_store(&bad_results[i++],
                 xo_stream_launch(s, &no_version, XO_DIM3(1, 1, 1),
                                  XO_DIM3(1, 1, 1), 0, NULL));
    atomic_store(&bad_results[i++],
                 xo_stream_launch(s, tk(TK_COUNT), XO_DIM3(0, 1, 1),
                                  XO_DIM3(1, 1, 1), 0, NULL));
    atomic_store(&bad_results[i++], xo_stream_copy(s, NULL, "x", 1));
    atomic_store(&bad_results[i++], xo_stream_fill(s, NULL, 0, 1));
    xo_buf_t *b = NULL;
    atomic_store(&bad_results[i++], xo_msg_buf(ctx, m, &b));
    /* The handler returns what its last call gave: the caller sees it
       with the message. */
    return xo_stream_launch(s, &no_version, XO_DIM3(1, 1, 1),
                            XO_DIM3(1, 1, 1), 0, NULL);
}

static const xo_actor_def_t misuser_def = { .name = "misuser",
                                            .on_message = misuser_message };

GTEST(bad_arguments_are_refused_with_einval_enosys_and_a_message)
{
    xo_runtime_t *rt = gpu_start(1, 1, 1);
    xo_ref_t a = spawn_on(rt, &misuser_def, 1);
    char error[256];
    call_fails(a, 1, XO_ENOSYS, error, sizeof(error));
    cr_assert_not_null(strstr(error, "kernel nowhere has no"), "%s", error);
    int want[] = { XO_EINVAL, XO_EINVAL, XO_ENOSYS, XO_EINVAL,
                   XO_EINVAL, XO_EINVAL, XO_EINVAL };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_assert_eq(atomic_load(&bad_results[i]), want[i], "case %zu: %s",
                     i, xo_err_name(atomic_load(&bad_results[i])));
    /* A stream used off its thread. */
    xo_stream_t *s = atomic_load(&leaked_stream);
    cr_assert_eq(xo_stream_fill(s, error, 0, 1), XO_EINVAL);
    cr_assert_not_null(strstr(xo_gpu_last_error(), "own stream thread"));
    cr_assert_null(xo_ctx_stream(NULL));
    /* Buffers. */
    xo_buf_t *b;
    cr_assert_eq(xo_buf_alloc(rt, XO_MEM_HOST, -1, 0, &b), XO_EINVAL);
    cr_assert_null(b);
    cr_assert_eq(xo_buf_alloc(rt, (xo_mem_kind_t)9, -1, 8, &b), XO_EINVAL);
    cr_assert_eq(xo_buf_alloc(rt, XO_MEM_DEVICE, -1, 8, &b), XO_EINVAL,
                 "device -1 is a stream thread's own");
    cr_assert_eq(xo_buf_alloc(rt, XO_MEM_DEVICE, 64, 8, &b), XO_EINVAL);
    cr_assert_eq(xo_buf_alloc(NULL, XO_MEM_HOST, -1, 8, &b), XO_EINVAL);
    cr_assert_eq(xo_buf_wrap(rt, XO_MEM_HOST, -1, NULL, 8, NULL, NULL, &b),
                 XO_EINVAL);
    cr_assert_eq(xo_buf_alloc(rt, XO_MEM_HOST, -1, 8, &b), 0);
    cr_assert_eq(xo_send_buf(a, 1, NULL, NULL, 0), XO_EINVAL);
    cr_assert_eq(xo_send_buf(a, 1, b, NULL, 4), XO_EINVAL);
    cr_assert_eq(xo_send_buf(XO_REF_NONE, 1, b, NULL, 0), XO_EINVAL);
    cr_assert_eq(xo_send_buf(a, XO_TAG_DOWN, b, NULL, 0), XO_EINVAL);
    xo_ref_t gone = spawn_on(rt, &nop_def, 0);
    cr_assert_eq(xo_destroy(gone), 0);
    cr_assert_eq(xo_send_buf(gone, 1, b, NULL, 0), XO_ENOTEXIST,
                 "the caller keeps its reference");
    xo_buf_release(b);
    cr_assert_eq(xo_msg_buf(NULL, NULL, &b), XO_EINVAL);
    /* Pools. */
    xo_pool_spec_t spec;
    xo_pool_spec_init(&spec);
    spec.kind = XO_POOL_GPU;
    spec.device = 64;
    unsigned idx;
    cr_assert_eq(xo_pool_add(rt, &spec, &idx), XO_EINVAL);
    spec.device = -2;
    cr_assert_eq(xo_pool_add(rt, &spec, &idx), XO_EINVAL);
    stop_runtime(rt);
    /* The config. */
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 1;
    cfg.gpu_backend = BACKEND;
    cfg.gpu_host_devices = 2;
    xo_runtime_t *bad;
    cfg.gpu_devices = 1;
    cfg.gpu_streams = 0;
    cr_assert_eq(xo_runtime_start(&cfg, &bad), XO_EINVAL);
    cfg.gpu_streams = XO_GPU_STREAMS_MAX + 1;
    cr_assert_eq(xo_runtime_start(&cfg, &bad), XO_EINVAL);
    cfg.gpu_streams = 1;
    cfg.gpu_devices = -2;
    cr_assert_eq(xo_runtime_start(&cfg, &bad), XO_EINVAL);
    cfg.gpu_devices = XO_GPU_DEVICES_MAX;
    cr_assert_eq(xo_runtime_start(&cfg, &bad), XO_EINVAL,
                 "more devices than are visible");
    cfg.gpu_devices = 1;
    cfg.gpu_backend = (xo_gpu_backend_t)9;
    cr_assert_eq(xo_runtime_start(&cfg, &bad), XO_EINVAL);
    cfg.gpu_backend = BACKEND;
    cfg.gpu_host_devices = 0;
    cr_assert_eq(xo_runtime_start(&cfg, &bad), XO_EINVAL);
}

#ifndef GPU_TEST_CUDA
/* Where CUDA cannot be had, asking for it fails at start with the reason;
   where it can, the same config starts. */
GTEST(asking_for_cuda_where_there_is_none_fails_at_start_with_the_reason)
{
    xo_gpu_probe_t pr;
    cr_assert_eq(xo_gpu_probe(&pr), 0);
    cr_assert(pr.cuda_devices > 0 || pr.reason[0] != '\0',
              "no device, and no reason given");
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 1;
    cfg.gpu_backend = XO_GPU_CUDA;
    cfg.gpu_devices = 1;
    xo_runtime_t *rt = NULL;
    int rc = xo_runtime_start(&cfg, &rt);
    if (pr.cuda_devices > 0) {
        cr_assert_eq(rc, 0, "%s", xo_gpu_last_error());
        xo_runtime_free(rt);
        return;
    }
    cr_assert_eq(rc, pr.cuda_built ? XO_EGPU : XO_ENOSYS, "%s",
                 xo_err_name(rc));
    cr_assert_null(rt);
    cr_assert_neq(xo_gpu_last_error()[0], '\0');
    if (pr.cuda_built)
        cr_assert_not_null(strstr(xo_gpu_last_error(), "cudaGetDeviceCount"),
                           "%s", xo_gpu_last_error());
    /* The default, XO_GPU_AUTO, falls back on the host backend. */
    cfg.gpu_backend = XO_GPU_AUTO;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), 0);
    xo_gpu_backend_t be;
    cr_assert_eq(xo_gpu_backend(rt, &be, NULL), 0);
    cr_assert_eq(be, XO_GPU_HOST);
    xo_runtime_free(rt);
}
#endif

/* ---- removal with work in flight -------------------------------------------------------- */

static atomic_int returned;
static _Atomic(xo_buf_t *) drained_snap;

static int slow_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)m;
    struct logger *l = state;
    xo_stream_t *s = xo_ctx_stream(ctx);
    xo_runtime_t *rt = xo_ctx_runtime(ctx);
    HCHECK(xo_buf_alloc(rt, XO_MEM_DEVICE, -1, 4096, &l->log) == 0);
    HCHECK(xo_buf_alloc(rt, XO_MEM_PINNED, -1, 4096, &l->snap[0]) == 0);
    atomic_store(&drained_snap, xo_buf_ref(l->snap[0]));
    void *log = xo_buf_data(l->log);
    HCHECK(xo_stream_fill(s, log, 0, 4096) == 0);
    uint64_t ns = 50000000; /* 50 ms of work before the log */
    void *spin[] = { &ns };
    HCHECK(launch(s, TK_SPIN, spin) == 0);
    for (uint32_t id = 1; id <= 3; id++) {
        void *args[] = { &log, &id };
        HCHECK(launch(s, TK_LOG, args) == 0);
    }
    HCHECK(xo_stream_copy(s, xo_buf_data(l->snap[0]), log, 64) == 0);
    atomic_store(&returned, 1);
    return 0;
}

static const xo_actor_def_t slow_def = {
    .name = "slow", .state_size = sizeof(struct logger),
    .on_message = slow_message, .on_destroy = logger_destroy };

GTEST(pool_removal_with_work_in_flight_drains_it_first)
{
    xo_runtime_t *rt = gpu_start(1, 0, 1);
    xo_pool_spec_t spec;
    xo_pool_spec_init(&spec);
    spec.kind = XO_POOL_GPU;
    spec.device = 0;
    unsigned idx;
    cr_assert_eq(xo_pool_add(rt, &spec, &idx), 0, "%s", xo_gpu_last_error());
    xo_ref_t a = spawn_on(rt, &slow_def, (int)idx);
    xo_future_t *f;
    cr_assert_eq(xo_call(a, 1, NULL, 0, &f), 0);
    while (!atomic_load(&returned))
        sleep_ms(1);
    /* The handler has returned; its work is queued, its reply held. */
    cr_assert_eq(xo_pool_remove(rt, idx), 0);
    cr_assert(xo_future_done(f), "removal returned before the reply");
    xo_result_t res;
    cr_assert_eq(xo_future_result(f, 0, &res), 0, "%s", res.error);
    xo_future_release(f);
    const uint32_t *log = xo_buf_data(atomic_load(&drained_snap));
    cr_assert_eq(log[0], 3);
    cr_assert(log[1] == 1 && log[2] == 2 && log[3] == 3);
    xo_pool_info_t info;
    cr_assert_eq(xo_pool_info(rt, idx, &info), 0);
    cr_assert_eq(info.state, XO_POOL_REMOVED);
    no_handler_faults();
    xo_buf_release(atomic_load(&drained_snap));
    stop_runtime(rt);
}

/* ---- out of memory --------------------------------------------------------------------- */

GTEST(each_failed_allocation_of_a_gpu_pool_or_buffer_gives_enomem)
{
    xo_runtime_t *rt = gpu_start(1, 1, 1);
    /* A GPU pool added while it runs, allocation by allocation. */
    xo_pool_spec_t spec;
    xo_pool_spec_init(&spec);
    spec.kind = XO_POOL_GPU;
    spec.device = 0;
    unsigned idx, failures = 0;
    for (long k = 1;; k++) {
        xi_mem_fail_after(&rt->mem, k);
        int rc = xo_pool_add(rt, &spec, &idx);
        xi_mem_fail_after(&rt->mem, 0);
        if (rc == 0)
            break;
        failures++;
        cr_assert_eq(rc, XO_ENOMEM, "allocation %ld: %s", k,
                     xo_strerror(rc));
        cr_assert_eq(xo_pool_count(rt), 2, "no half-made pool");
        cr_assert_lt(k, 20);
    }
    cr_assert_geq(failures, 3, "pool, worker, stream and labels");
    xo_ref_t a = spawn_on(rt, &nop_def, (int)idx);
    call_ok(a, 1, NULL, 0, NULL, 0);
    /* Buffers of each kind. */
    xo_mem_kind_t kinds[] = { XO_MEM_HOST, XO_MEM_PINNED, XO_MEM_DEVICE };
    for (size_t i = 0; i < 3; i++) {
        for (long k = 1;; k++) {
            xo_buf_t *b = (xo_buf_t *)&k;
            xi_mem_fail_after(&rt->mem, k);
            int rc = xo_buf_alloc(rt, kinds[i], 0, 100000 + i, &b);
            xi_mem_fail_after(&rt->mem, 0);
            if (rc == 0) {
                xo_buf_release(b);
                break;
            }
            cr_assert_eq(rc, XO_ENOMEM, "kind %d, allocation %ld: %s",
                         (int)kinds[i], k, xo_strerror(rc));
            cr_assert_null(b);
            cr_assert_lt(k, 10);
        }
    }
    stop_runtime(rt);
}

static atomic_int send_failures, send_ok;

/* A device buffer for the checker, filled on the stream. */
static xo_buf_t *filled(xo_ctx_t *ctx, uint64_t seed)
{
    xo_buf_t *b;
    HCHECK(xo_buf_alloc(xo_ctx_runtime(ctx), XO_MEM_DEVICE, -1, 4096, &b) ==
           0);
    void *p = xo_buf_data(b);
    uint64_t words = 4096 / 8;
    void *args[] = { &p, &words, &seed };
    HCHECK(launch(xo_ctx_stream(ctx), TK_FILL, args) == 0);
    return b;
}

/* Sends device buffers to the CPU checker with allocation k failing, for
   k = 1, 2, ...: the send's own allocations (the message, its point, the
   pinned copy and its point) fail the send, and the buffer stays with the
   sender, who sends it again; a later one (the copy's operations, made as
   the send starts the copy) fails the copy, and the receiver is told. One
   more, with nothing failing, shows the stream still works. */
static int enomem_sender(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    xo_ref_t *to = state;
    xo_runtime_t *rt = xo_ctx_runtime(ctx);
    if (m->tag == 2) { /* the checker's reference */
        *to = *(const xo_ref_t *)m->data;
        return 0;
    }
    xo_buf_t *b = filled(ctx, 9);
    struct piece pc = { 9, 4096, PATH_D2H };
    for (long k = 1; k < 30; k++) {
        xi_mem_fail_after(&rt->mem, k);
        int rc = xo_send_buf(*to, MOVE_PIECE, b, &pc, sizeof(pc));
        xi_mem_fail_after(&rt->mem, 0);
        if (rc == 0) {
            atomic_fetch_add(&send_ok, 1);
            b = NULL;
            break;
        }
        HCHECK(rc == XO_ENOMEM);
        atomic_fetch_add(&send_failures, 1);
    }
    HCHECK(b == NULL);
    pc.seed = 10;
    HCHECK(xo_send_buf(*to, MOVE_PIECE, filled(ctx, 10), &pc, sizeof(pc)) ==
           0);
    return 0;
}

static const xo_actor_def_t enomem_sender_def = {
    .name = "enomem-sender", .state_size = sizeof(xo_ref_t),
    .on_message = enomem_sender };

static atomic_int held_failed;

/* Its answer cannot be held (no memory for the hold): the caller hears
   XO_ENOMEM, not an answer before the work. */
static int enomem_replier(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    xo_runtime_t *rt = xo_ctx_runtime(ctx);
    /* The reply's envelope is the first allocation, the hold the second. */
    xi_mem_fail_after(&rt->mem, 2);
    int rc = xo_reply(m->request, 1, "x", 1);
    xi_mem_fail_after(&rt->mem, 0);
    if (rc == XO_ENOMEM)
        atomic_fetch_add(&held_failed, 1);
    return 0;
}

static const xo_actor_def_t enomem_replier_def = {
    .name = "enomem-replier", .on_message = enomem_replier };

GTEST(failed_allocations_in_sends_and_held_replies_are_told_and_lose_nothing)
{
    xo_runtime_t *rt = gpu_start(1, 1, 1);
    latch_init(&pieces_done, 2);
    xo_ref_t checker = spawn_on(rt, &checker_def, 0);
    xo_ref_t sender = spawn_on(rt, &enomem_sender_def, 1);
    cr_assert_eq(xo_tell(sender, 2, &checker, sizeof(checker)), 0);
    cr_assert_eq(xo_tell(sender, 1, NULL, 0), 0);
    latch_wait(&pieces_done);
    no_handler_faults();
    cr_assert_eq(atomic_load(&send_ok), 1);
    cr_assert_geq(atomic_load(&send_failures), 3,
                  "the envelope, the pinned copy and its point failed");
    /* The one that went was delivered: its bytes, or the copy's failure
       told to the receiver; the next one had its bytes. */
    int told = atomic_load(&takes_failed);
    cr_assert_eq(atomic_load(&pieces_ok[PATH_D2H]) + told, 2);
    cr_assert_geq(atomic_load(&pieces_ok[PATH_D2H]), 1);
    if (told)
        cr_assert_eq(atomic_load(&take_failure), XO_ENOMEM, "%s",
                     take_failure_text);
    /* A held reply without memory for its hold. */
    xo_ref_t r = spawn_on(rt, &enomem_replier_def, 1);
    char error[256];
    call_fails(r, 1, XO_ENOMEM, error, sizeof(error));
    cr_assert_not_null(strstr(error, "holding the answer"), "%s", error);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&held_failed), 1, "xo_reply said XO_ENOMEM");
}
