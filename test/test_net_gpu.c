/*
 * test_net_gpu.c -- buffer messages across nodes (xo_send_buf to another
 * node's actor; docs/gpu.md "Across nodes", docs/net.md's BUF frame): two
 * runtimes of this process over loopback, each with a GPU pool.
 *
 * Built twice, as the GPU suite is: test_net_gpu on the host backend (every
 * build, every test run), test_net_gpu_cuda on the CUDA backend where nvcc
 * was found, whose tests skip, saying why on stderr, without a device.
 *
 * On node B: `sink`, a CPU actor that checks every buffer it gets (size,
 * kind, bytes) and the order of everything it is sent (one sequence over
 * plain tells and buffer messages), and `gsink`, a GPU actor that checks
 * its buffer is its stream's device memory, copies it into pinned memory
 * on its stream and sends that to sink (so the bytes are checked on either
 * backend). On node A: `gsrc`, a GPU actor that fills device memory with
 * a kernel and sends it to sink across the nodes. Handlers record what
 * they see in atomics; the test thread waits for counts (no time is
 * asserted: a hang fails by ctest's timeout).
 */
#include "support.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/kernels.h"
#include "net_actors.h"
#include "runtime/runtime.h" /* xi_mem_fail_after: the allocation hook */

#ifdef GPU_TEST_CUDA
#define BACKEND XO_GPU_CUDA
#define SUITE net_gpu_cuda
#else
#define BACKEND XO_GPU_HOST
#define SUITE net_gpu
#endif
#define NTEST(name) Test(SUITE, name, .timeout = 240)

#define MIB ((size_t)1 << 20)

#define wait_until(cond)                                                      \
    do {                                                                      \
        while (!(cond))                                                       \
            sleep_ms(1);                                                      \
    } while (0)

enum { TAG_SEQ = 1, TAG_BUF, TAG_MAKE, TAG_FAULT, TAG_SLOW };
enum { PAT_BYTES = 0, PAT_WORDS = 1 };

/* A buffer message's data. */
struct bh {
    uint32_t seq;
    uint32_t pattern;
    uint64_t size;
    uint64_t seed;
};

/* ---- what the handlers saw ------------------------------------------------ */

static atomic_int handler_faults;
static char handler_fault[256];

#define HCHECK(cond)                                                         \
    do {                                                                     \
        if (!(cond) && atomic_fetch_add(&handler_faults, 1) == 0)            \
            snprintf(handler_fault, sizeof(handler_fault),                   \
                     "%s:%d: %s (%s)", __FILE__, __LINE__, #cond,            \
                     xo_gpu_last_error());                                   \
    } while (0)

static _Atomic uint64_t sink_bufs, sink_tells, sink_bytes, sink_bad;
static _Atomic uint64_t sink_out_of_order, sink_next;
static _Atomic int sink_last_kind;
static _Atomic uint64_t gsink_device_bufs;
static _Atomic int freed; /* the sender's wrapped buffers given back */
/* Set by the test that loses node B while gsrc may still send to it: a
   send refused as any tell to a lost node is then expected (the buffer
   stays gsrc's, which gives it back). */
static atomic_bool loss_expected;

static void reset(void)
{
    atomic_store(&handler_faults, 0);
    atomic_store(&sink_bufs, 0);
    atomic_store(&sink_tells, 0);
    atomic_store(&sink_bytes, 0);
    atomic_store(&sink_bad, 0);
    atomic_store(&sink_out_of_order, 0);
    atomic_store(&sink_next, 0);
    atomic_store(&sink_last_kind, 0);
    atomic_store(&gsink_device_bufs, 0);
    atomic_store(&freed, 0);
    atomic_store(&loss_expected, false);
}

static void no_handler_faults(void)
{
    cr_assert_eq(atomic_load(&handler_faults), 0, "a handler's check: %s",
                 handler_fault);
}

static unsigned char byte_at(uint64_t seed, size_t i)
{
    return (unsigned char)((i * 131u + seed) & 0xFFu);
}

static void fill_bytes(unsigned char *p, size_t size, uint64_t seed)
{
    for (size_t i = 0; i < size; i++)
        p[i] = byte_at(seed, i);
}

static bool bytes_ok(const struct bh *h, const unsigned char *p)
{
    if (h->pattern == PAT_WORDS) {
        for (uint64_t i = 0; i < h->size / 8; i++) {
            uint64_t w;
            memcpy(&w, p + i * 8, 8);
            if (w != tk_word(h->seed, i))
                return false;
        }
        return true;
    }
    for (size_t i = 0; i < h->size; i++)
        if (p[i] != byte_at(h->seed, i))
            return false;
    return true;
}

static void in_order(uint32_t seq)
{
    /* One actor's handler at a time: the load and store need not be one
       step. */
    if (seq != atomic_load(&sink_next))
        atomic_fetch_add(&sink_out_of_order, 1);
    atomic_store(&sink_next, (uint64_t)seq + 1);
}

static void count_free(void *data, void *arg)
{
    (void)arg;
    free(data);
    atomic_fetch_add(&freed, 1);
}

/* ---- sink (CPU, node B) ----------------------------------------------------- */

static int sink_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    if (m->tag == TAG_SEQ) {
        uint32_t seq;
        HCHECK(m->size == sizeof(seq));
        memcpy(&seq, m->data, sizeof(seq));
        in_order(seq);
        atomic_fetch_add(&sink_tells, 1);
        return 0;
    }
    HCHECK(m->tag == TAG_BUF && m->size == sizeof(struct bh));
    struct bh h;
    memcpy(&h, m->data, sizeof(h));
    in_order(h.seq);
    xo_buf_t *b = NULL;
    int rc = xo_msg_buf(ctx, m, &b);
    HCHECK(rc == 0);
    if (rc != 0 || xo_buf_size(b) != h.size ||
        xo_buf_kind(b) == XO_MEM_DEVICE || !bytes_ok(&h, xo_buf_data(b))) {
        atomic_fetch_add(&sink_bad, 1);
    } else {
        atomic_store(&sink_last_kind, (int)xo_buf_kind(b));
        atomic_fetch_add(&sink_bytes, h.size);
    }
    atomic_fetch_add(&sink_bufs, 1);
    return 0;
}

static const xo_actor_def_t sink_def = {
    .name = "sink", .on_message = sink_message,
};

/* ---- gsink (GPU, node B): device memory of its stream, checked by sink --- */

static int gsink_create(xo_ctx_t *ctx, void *state, const void *arg,
                        size_t size)
{
    (void)ctx;
    HCHECK(size == sizeof(xo_ref_t));
    memcpy(state, arg, sizeof(xo_ref_t));
    return 0;
}

static int gsink_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    xo_ref_t sink;
    memcpy(&sink, state, sizeof(sink));
    xo_stream_t *s = xo_ctx_stream(ctx);
    HCHECK(s != NULL && m->tag == TAG_BUF && m->size == sizeof(struct bh));
    xo_buf_t *b = NULL;
    HCHECK(xo_msg_buf(ctx, m, &b) == 0);
    if (b == NULL)
        return 0;
    if (xo_buf_kind(b) == XO_MEM_DEVICE &&
        xo_buf_device(b) == xo_stream_device(s))
        atomic_fetch_add(&gsink_device_bufs, 1);
    xo_buf_t *p = NULL;
    HCHECK(xo_buf_alloc(xo_ctx_runtime(ctx), XO_MEM_PINNED, -1,
                        xo_buf_size(b), &p) == 0);
    HCHECK(xo_stream_copy(s, xo_buf_data(p), xo_buf_data(b),
                          xo_buf_size(b)) == 0);
    /* The pinned copy is what the stream has produced at this send. */
    HCHECK(xo_send_buf(sink, TAG_BUF, p, m->data, m->size) == 0);
    return 0;
}

static const xo_actor_def_t gsink_def = {
    .name = "gsink", .state_size = sizeof(xo_ref_t),
    .on_create = gsink_create, .on_message = gsink_message,
};

/* ---- gsrc (GPU, node A): a kernel fills device memory, sent across ------ */

struct make {
    xo_ref_t to;
    struct bh h;
};

static void gsrc_send(const struct make *mk, xo_buf_t *b)
{
    int rc = xo_send_buf(mk->to, TAG_BUF, b, &mk->h, sizeof(mk->h));
    if (rc == 0)
        return;
    /* Refused: the buffer is still ours. Expected only for a lost node
       (or, for what gsrc handles while its runtime stops after that, a
       stopping runtime). */
    xo_buf_release(b);
    HCHECK(atomic_load(&loss_expected) &&
           (rc == XO_ENODELOST || rc == XO_EFULL || rc == XO_ECLOSED));
}

static int gsrc_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    HCHECK(m->size == sizeof(struct make));
    struct make mk;
    memcpy(&mk, m->data, sizeof(mk));
    xo_stream_t *s = xo_ctx_stream(ctx);
    if (m->tag == TAG_FAULT || m->tag == TAG_SLOW) {
        /* A kernel that fails the device (its point is never reached: it
           fails), or one that keeps the stream busy (its point is
           reached late), then a host buffer sent from the stream. */
        uint32_t code = 7;
        uint64_t ns = 300000000ull; /* 300 ms */
        void *args[] = { m->tag == TAG_FAULT ? (void *)&code : (void *)&ns };
        HCHECK(xo_stream_launch(s, tk(m->tag == TAG_FAULT ? TK_FAULT
                                                          : TK_SPIN),
                                XO_DIM3(1, 1, 1), XO_DIM3(1, 1, 1), 0,
                                args) == 0);
        unsigned char *p = malloc(mk.h.size);
        HCHECK(p != NULL);
        fill_bytes(p, mk.h.size, mk.h.seed);
        xo_buf_t *b = NULL;
        HCHECK(xo_buf_wrap(xo_ctx_runtime(ctx), XO_MEM_HOST, -1, p,
                           mk.h.size, count_free, NULL, &b) == 0);
        gsrc_send(&mk, b);
        return 0;
    }
    HCHECK(m->tag == TAG_MAKE);
    xo_buf_t *b = NULL;
    HCHECK(xo_buf_alloc(xo_ctx_runtime(ctx), XO_MEM_DEVICE, -1, mk.h.size,
                        &b) == 0);
    if (b == NULL)
        return 0;
    void *p = xo_buf_data(b);
    uint64_t words = mk.h.size / 8;
    void *args[] = { &p, &words, &mk.h.seed };
    HCHECK(xo_stream_launch(s, tk(TK_FILL), XO_DIM3(64, 1, 1),
                            XO_DIM3(256, 1, 1), 0, args) == 0);
    /* Right after the launch, never waiting: the bytes the kernel writes
       are the ones that cross. */
    gsrc_send(&mk, b);
    return 0;
}

static const xo_actor_def_t gsrc_def = {
    .name = "gsrc", .on_message = gsrc_message,
};

/* ---- two nodes --------------------------------------------------------- */

static bool need_device(void)
{
#ifdef GPU_TEST_CUDA
    xo_gpu_probe_t pr;
    cr_assert_eq(xo_gpu_probe(&pr), 0);
    if (pr.cuda_devices < 1) {
        fprintf(stderr, "skipped: needs 1 CUDA device(s), %d visible%s%s\n",
                pr.cuda_devices, pr.reason[0] ? ": " : "", pr.reason);
        cr_skip_test("needs 1 CUDA device(s), %d visible%s%s",
                     pr.cuda_devices, pr.reason[0] ? ": " : "", pr.reason);
        return false;
    }
#endif
    return true;
}

static xo_runtime_t *gpu_runtime(void)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 2;
    cfg.spin_ns = 5000;
    cfg.gpu_backend = BACKEND;
    cfg.gpu_devices = 1;
    cfg.gpu_streams = 1;
    xo_runtime_t *rt = NULL;
    int rc = xo_runtime_start(&cfg, &rt);
    cr_assert_eq(rc, 0, "xo_runtime_start: %s (%s)", xo_strerror(rc),
                 xo_gpu_last_error());
    return rt;
}

struct two {
    xo_runtime_t *a, *b;
    unsigned b_at_a;
    xo_ref_t sink, gsink;  /* B's, as A names them */
    xo_ref_t gsrc;         /* A's */
    bool b_up;
};

static _Atomic unsigned log_count;

static void quiet_log(xo_runtime_t *rt, const char *line, void *user)
{
    (void)rt;
    (void)line;
    (void)user;
    atomic_fetch_add(&log_count, 1);
}

static xo_ref_t spawn_at(xo_runtime_t *rt, const xo_actor_def_t *def,
                         const char *uid, const char *label, const void *arg,
                         size_t arg_size)
{
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.uid = uid;
    o.arg = arg;
    o.arg_size = arg_size;
    if (label != NULL) {
        o.place.kind = XO_PLACE_RANDOM_LABEL;
        o.place.label = label;
    }
    xo_ref_t r;
    int rc = xo_spawn(rt, def, &o, &r);
    cr_assert_eq(rc, 0, "spawn %s: %s", uid, xo_strerror(rc));
    return r;
}

static xo_ref_t lookup(xo_runtime_t *rt, unsigned node, const char *uid)
{
    xo_ref_t r;
    int rc = xo_node_lookup(rt, node, uid, -1, &r);
    cr_assert_eq(rc, 0, "lookup %s: %s", uid, xo_strerror(rc));
    return r;
}

static void two_up(struct two *t, size_t a_max_message)
{
    reset();
    t->a = gpu_runtime();
    t->b = gpu_runtime();
    xo_node_config_t cfg;
    net_test_config(&cfg, 2000000000ull);
    cfg.on_log = quiet_log;
    cfg.name = "b";
    cr_assert_eq(xo_node_start(t->b, &cfg), 0);
    cfg.name = "a";
    if (a_max_message != 0)
        cfg.max_message = a_max_message;
    cr_assert_eq(xo_node_start(t->a, &cfg), 0);
    xo_ref_t sink = spawn_at(t->b, &sink_def, "sink", NULL, NULL, 0);
    (void)spawn_at(t->b, &gsink_def, "gsink", "gpu", &sink, sizeof(sink));
    t->gsrc = spawn_at(t->a, &gsrc_def, "gsrc", "gpu", NULL, 0);
    unsigned port;
    cr_assert_eq(xo_node_port(t->b, &port), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    int rc = xo_node_connect(t->a, addr, -1, &t->b_at_a);
    cr_assert_eq(rc, 0, "connect: %s", xo_strerror(rc));
    t->sink = lookup(t->a, t->b_at_a, "sink");
    t->gsink = lookup(t->a, t->b_at_a, "gsink");
    t->b_up = true;
}

static bool b_up_at_a(struct two *t)
{
    xo_node_info_t in;
    cr_assert_eq(xo_node_info(t->a, t->b_at_a, &in), 0);
    return in.state == XO_NODE_UP;
}

static void stop_b(struct two *t)
{
    if (!t->b_up)
        return;
    cr_assert_eq(xo_runtime_stop(t->b), 0);
    xo_runtime_free(t->b);
    t->b_up = false;
}

static void two_down(struct two *t)
{
    stop_b(t);
    cr_assert_eq(xo_runtime_stop(t->a), 0);
    xo_runtime_free(t->a);
}

/* A host buffer of `size` bytes with the byte pattern of `seed`, wrapped
   with the counting free. */
static xo_buf_t *host_buf(xo_runtime_t *rt, size_t size, uint64_t seed)
{
    unsigned char *p = malloc(size);
    cr_assert(p != NULL);
    fill_bytes(p, size, seed);
    xo_buf_t *b = NULL;
    cr_assert_eq(xo_buf_wrap(rt, XO_MEM_HOST, -1, p, size, count_free, NULL,
                             &b),
                 0);
    return b;
}

static void send_host(xo_ref_t to, uint32_t seq, size_t size)
{
    struct bh h = { seq, PAT_BYTES, size, 7u * seq + 1 };
    xo_buf_t *b = host_buf(to.rt, size, h.seed);
    int rc = xo_send_buf(to, TAG_BUF, b, &h, sizeof(h));
    cr_assert_eq(rc, 0, "xo_send_buf of %zu bytes: %s (%s)", size,
                 xo_strerror(rc), xo_gpu_last_error());
}

/* ---- the tests ---------------------------------------------------------- */

NTEST(a_host_buffer_reaches_a_remote_cpu_actor_with_the_same_bytes)
{
    if (!need_device())
        return;
    struct two t;
    two_up(&t, 0);
    static const size_t sizes[] = { 10, 3 * MIB, 10 * MIB };
    uint32_t seq = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < 3; i++) {
        send_host(t.sink, seq++, sizes[i]);
        bytes += sizes[i];
        wait_until(atomic_load(&sink_bufs) == seq);
    }
    /* Two at once: both in flight, interleaved on nothing but their
       order. */
    send_host(t.sink, seq++, 3 * MIB);
    send_host(t.sink, seq++, 10 * MIB);
    bytes += 13 * MIB;
    wait_until(atomic_load(&sink_bufs) == seq);
    no_handler_faults();
    cr_assert_eq(atomic_load(&sink_bad), 0, "every buffer holds its bytes");
    cr_assert_eq(atomic_load(&sink_bytes), bytes);
    cr_assert_eq(atomic_load(&sink_out_of_order), 0);
    cr_assert_eq(atomic_load(&sink_last_kind), XO_MEM_HOST);
    /* Each sent buffer given back once its bytes went (on A), none
       twice. */
    wait_until(atomic_load(&freed) == (int)seq);
    two_down(&t);
    cr_assert_eq(atomic_load(&freed), (int)seq, "freed exactly once each");
}

NTEST(a_buffer_to_a_remote_gpu_actor_arrives_as_its_streams_device_memory)
{
    if (!need_device())
        return;
    struct two t;
    two_up(&t, 0);
    static const size_t sizes[] = { 10, 3 * MIB, 10 * MIB };
    for (uint32_t i = 0; i < 3; i++)
        send_host(t.gsink, i, sizes[i]);
    wait_until(atomic_load(&sink_bufs) == 3);
    no_handler_faults();
    cr_assert_eq(atomic_load(&gsink_device_bufs), 3,
                 "each arrived as device memory of gsink's stream");
    cr_assert_eq(atomic_load(&sink_bad), 0, "with the bytes sent");
    cr_assert_eq(atomic_load(&sink_out_of_order), 0);
    wait_until(atomic_load(&freed) == 3);
    two_down(&t);
    cr_assert_eq(atomic_load(&freed), 3);
}

NTEST(a_device_buffer_from_a_gpu_actor_reaches_a_remote_cpu_actor_with_what_its_stream_made)
{
    if (!need_device())
        return;
    struct two t;
    two_up(&t, 0);
    static const size_t sizes[] = { 8, 3 * MIB, 10 * MIB };
    for (uint32_t i = 0; i < 3; i++) {
        struct make mk = { t.sink, { i, PAT_WORDS, sizes[i], 0x5EED + i } };
        cr_assert_eq(xo_tell(t.gsrc, TAG_MAKE, &mk, sizeof(mk)), 0);
    }
    wait_until(atomic_load(&sink_bufs) == 3);
    no_handler_faults();
    cr_assert_eq(atomic_load(&sink_bad), 0,
                 "the bytes the kernel wrote before the send");
    cr_assert_eq(atomic_load(&sink_out_of_order), 0);
    cr_assert_eq(atomic_load(&sink_last_kind), XO_MEM_HOST,
                 "host memory on the receiving node");
    two_down(&t);
}

NTEST(buffers_keep_their_place_among_plain_tells_of_the_same_pair)
{
    if (!need_device())
        return;
    struct two t;
    two_up(&t, 0);
    uint32_t seq = 0;
    for (int round = 0; round < 8; round++) {
        for (int k = 0; k < 5; k++, seq++)
            cr_assert_eq(xo_tell(t.sink, TAG_SEQ, &seq, sizeof(seq)), 0);
        send_host(t.sink, seq++, round % 2 ? 200 * 1024 : 100);
    }
    for (int k = 0; k < 5; k++, seq++)
        cr_assert_eq(xo_tell(t.sink, TAG_SEQ, &seq, sizeof(seq)), 0);
    wait_until(atomic_load(&sink_bufs) + atomic_load(&sink_tells) == seq);
    no_handler_faults();
    cr_assert_eq(atomic_load(&sink_out_of_order), 0,
                 "tells and buffers arrive in the order sent");
    cr_assert_eq(atomic_load(&sink_bufs), 8);
    cr_assert_eq(atomic_load(&sink_bad), 0);
    two_down(&t);
}

NTEST(a_buffer_over_max_message_is_refused_and_the_sender_keeps_it)
{
    if (!need_device())
        return;
    struct two t;
    two_up(&t, MIB); /* A's largest message: 1 MiB */
    struct bh h = { 0, PAT_BYTES, MIB, 3 };
    /* The buffer and its data together must fit. */
    xo_buf_t *b = host_buf(t.a, MIB, h.seed);
    int rc = xo_send_buf(t.sink, TAG_BUF, b, &h, sizeof(h));
    cr_assert_eq(rc, XO_EINVAL, "over max_message: %s", xo_strerror(rc));
    cr_assert(strstr(xo_gpu_last_error(), "max_message") != NULL,
              "the error says why: %s", xo_gpu_last_error());
    cr_assert_eq(atomic_load(&freed), 0, "the caller keeps its reference");
    /* Still the caller's: it can be sent where it fits. */
    xo_buf_t *small = host_buf(t.a, MIB - 64, 9);
    struct bh hs = { 0, PAT_BYTES, MIB - 64, 9 };
    cr_assert_eq(xo_send_buf(t.sink, TAG_BUF, small, &hs, sizeof(hs)), 0);
    wait_until(atomic_load(&sink_bufs) == 1);
    cr_assert_eq(atomic_load(&sink_bad), 0);
    cr_assert(((unsigned char *)xo_buf_data(b))[MIB - 1] ==
              byte_at(h.seed, MIB - 1));
    xo_buf_release(b);
    wait_until(atomic_load(&freed) == 2);
    two_down(&t);
    cr_assert_eq(atomic_load(&freed), 2);
}

/* A buffer whose bytes will never be ready (its stream's device failed
   after the send) is dropped by the sending node with a line in its log;
   the reference is given back and the connection goes on. */
NTEST(a_buffer_whose_stream_fails_before_its_point_is_dropped_and_logged)
{
    if (!need_device())
        return;
#ifdef GPU_TEST_CUDA
    /* A trap ruins the CUDA context for the process: the host backend's
       planted fault proves the path. */
    fprintf(stderr, "skipped: the planted device fault runs on the host "
                    "backend only\n");
    cr_skip_test("the planted device fault runs on the host backend only");
    return;
#endif
    struct two t;
    two_up(&t, 0);
    unsigned logs = atomic_load(&log_count);
    struct make mk = { t.sink, { 0, PAT_BYTES, 3 * MIB, 1 } };
    cr_assert_eq(xo_tell(t.gsrc, TAG_FAULT, &mk, sizeof(mk)), 0);
    wait_until(atomic_load(&freed) == 1);
    wait_until(atomic_load(&log_count) > logs);
    cr_assert_eq(atomic_load(&sink_bufs), 0, "nothing half-made arrived");
    send_host(t.sink, 0, 100);
    wait_until(atomic_load(&sink_bufs) == 1);
    cr_assert_eq(atomic_load(&sink_bad), 0);
    no_handler_faults();
    two_down(&t);
}

/* The limit is the route's for every message: a plain one over it is
   refused at the send too, never sent for the receiver to refuse. */
NTEST(a_plain_message_over_max_message_is_refused_at_the_send)
{
    if (!need_device())
        return;
    struct two t;
    two_up(&t, MIB);
    unsigned char *big = calloc(1, MIB + 1);
    cr_assert(big != NULL);
    cr_assert_eq(xo_tell(t.sink, TAG_SEQ, big, MIB + 1), XO_EINVAL);
    uint32_t seq = 0;
    cr_assert_eq(xo_tell(t.sink, TAG_SEQ, &seq, sizeof(seq)), 0);
    wait_until(atomic_load(&sink_tells) == 1);
    free(big);
    two_down(&t);
}

NTEST(a_buffer_for_a_gone_remote_actor_is_dropped_and_counted_like_a_tell)
{
    if (!need_device())
        return;
    struct two t;
    two_up(&t, 0);
    /* A ref to an actor of B that is gone by the time the buffer lands. */
    xo_ref_t doomed_local = spawn_at(t.b, &sink_def, "doomed", NULL, NULL, 0);
    xo_ref_t doomed = lookup(t.a, t.b_at_a, "doomed");
    cr_assert_eq(xo_destroy(doomed_local), 0);
    unsigned a_at_b;
    cr_assert_eq(xo_node_find(t.b, "a", &a_at_b), 0);
    xo_node_info_t before;
    cr_assert_eq(xo_node_info(t.b, a_at_b, &before), 0);
    send_host(doomed, 0, 3 * MIB);
    send_host(doomed, 1, 10);
    xo_node_info_t after;
    do {
        sleep_ms(1);
        cr_assert_eq(xo_node_info(t.b, a_at_b, &after), 0);
    } while (after.dropped < before.dropped + 2);
    cr_assert_eq(after.dropped, before.dropped + 2);
    /* Both given back on A once written (B's copies when dropped: ASan's
       leak check sees them). */
    wait_until(atomic_load(&freed) == 2);
    /* The connection is fine: a buffer to a live actor still arrives. */
    send_host(t.sink, 0, 100);
    wait_until(atomic_load(&sink_bufs) == 1);
    cr_assert_eq(atomic_load(&sink_bad), 0);
    two_down(&t);
}

/* The receiving node's allocations for a buffer message (the buffer, the
   message) fail in turn: each message is delivered whole or dropped and
   counted, never half made, and nothing leaks (ASan). */
NTEST(a_buffer_that_cannot_get_memory_on_the_receiving_node_is_dropped_and_counted)
{
    if (!need_device())
        return;
    struct two t;
    two_up(&t, 0);
    unsigned a_at_b;
    cr_assert_eq(xo_node_find(t.b, "a", &a_at_b), 0);
    xo_node_info_t before;
    cr_assert_eq(xo_node_info(t.b, a_at_b, &before), 0);
    uint64_t dropped = 0;
    uint32_t seq = 0;
    for (long k = 1; k <= 3; k++) {
        xi_mem_fail_after(&t.b->mem, k);
        send_host(t.sink, seq++, 3 * MIB);
        xo_node_info_t in;
        do {
            sleep_ms(1);
            cr_assert_eq(xo_node_info(t.b, a_at_b, &in), 0);
        } while (atomic_load(&sink_bufs) + (in.dropped - before.dropped) <
                 seq);
        xi_mem_fail_after(&t.b->mem, 0);
        dropped = in.dropped - before.dropped;
    }
    cr_assert_geq(dropped, 1, "the first allocations were the message's");
    cr_assert_eq(atomic_load(&sink_bufs) + dropped, seq);
    cr_assert_eq(atomic_load(&sink_bad), 0, "what arrived arrived whole");
    /* The node goes on. */
    send_host(t.sink, seq++, 100);
    wait_until(atomic_load(&sink_bufs) + dropped == seq);
    wait_until(atomic_load(&freed) == (int)seq);
    no_handler_faults();
    two_down(&t);
}

NTEST(a_node_lost_mid_transfer_loses_nothing_and_leaks_nothing)
{
    if (!need_device())
        return;
    struct two t;
    two_up(&t, 0);
    /* First a buffer whose bytes are not ready for a while (A's stream
       is busy): the data lane to B waits behind it; then host buffers
       from this thread and device buffers from A's GPU actor, many
       megabytes queued behind it, then B goes. */
    atomic_store(&loss_expected, true);
    uint32_t seq = 0;
    struct make slow = { t.sink, { seq++, PAT_BYTES, 3 * MIB, 5 } };
    cr_assert_eq(xo_tell(t.gsrc, TAG_SLOW, &slow, sizeof(slow)), 0);
    for (int i = 0; i < 6; i++) {
        struct bh h = { seq++, PAT_BYTES, 10 * MIB, (uint64_t)i };
        xo_buf_t *b = host_buf(t.a, 10 * MIB, h.seed);
        int rc = xo_send_buf(t.sink, TAG_BUF, b, &h, sizeof(h));
        if (rc != 0) {
            cr_assert(rc == XO_ENODELOST || rc == XO_EFULL,
                      "a send refused only as any tell: %s",
                      xo_strerror(rc));
            xo_buf_release(b); /* the caller kept it */
        }
        struct make mk = { t.sink, { seq++, PAT_WORDS, 3 * MIB, 77u + i } };
        cr_assert_eq(xo_tell(t.gsrc, TAG_MAKE, &mk, sizeof(mk)), 0);
    }
    stop_b(&t);
    wait_until(!b_up_at_a(&t));
    /* Every buffer of this thread's given back exactly once, written or
       dropped with the lost node's queue. */
    wait_until(atomic_load(&freed) == 7);
    no_handler_faults();
    /* (Their order is not checked here: two senders, and gaps where a
       send was refused.) */
    cr_assert_eq(atomic_load(&sink_bad), 0, "what arrived arrived whole");
    /* Sends to the lost node fail as any tell's do; the caller keeps the
       buffer. */
    xo_buf_t *b = host_buf(t.a, 10, 1);
    struct bh h = { 0, PAT_BYTES, 10, 1 };
    cr_assert_eq(xo_send_buf(t.sink, TAG_BUF, b, &h, sizeof(h)),
                 XO_ENODELOST);
    xo_buf_release(b);
    two_down(&t);
    no_handler_faults();
    cr_assert_eq(atomic_load(&freed), 8, "none freed twice");
}
