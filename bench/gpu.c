/*
 * gpu.c -- the GPU benchmarks (../shared/BENCH.md): gpu_launch and
 * gpu_pipeline. Each adds one GPU pool (device 0) to the runtime, on the
 * backend --gpu asks for (auto: CUDA where a device is visible, else the
 * host backend), and says which in extra (backend=cuda or backend=host).
 *
 * gpu_launch: the cost from a tell to the kernel's launch on the stream.
 * The main thread tells a GPU actor `launches` times; each handler
 * launches one kernel that adds 1 to a counter in device memory; then a
 * call whose reply completes when the stream has run them all (it copies
 * the counter into pinned memory first). Against it, in the same run and
 * on the same stream, one call whose handler launches the same kernel
 * `launches` times in a loop: the bare launch loop. overhead_ns is the
 * difference per launch: the message, the turn, the handler context and
 * the stream lookup. The counter must read 2 * launches at the end.
 *
 * gpu_pipeline: a CPU producer fills pinned buffers and sends them to a GPU
 * actor, which takes each onto its device (a copy on its stream), XORs
 * every word on the device, and sends it on to a CPU consumer (a copy into
 * pinned memory, started at the send); the consumer checks every word.
 * `window` buffers are in flight at most (the consumer acknowledges each
 * to the producer): the pipeline's depth, and its memory. GB/s counts the
 * items' bytes once.
 */
#include "bench.h"
#include "gpu_kernels.h"

#include <string.h>

#ifndef XO_BENCH_CUDA
const void *const bench_count_cuda = NULL;
const void *const bench_xor_cuda = NULL;
#endif

/* ---- kernels -------------------------------------------------------------- */

static int host_count(xo_dim3_t g, xo_dim3_t b, void **args, char *msg,
                      size_t size)
{
    (void)g, (void)b, (void)msg, (void)size;
    ++**(uint64_t **)args[0];
    return 0;
}

static int host_xor(xo_dim3_t g, xo_dim3_t b, void **args, char *msg,
                    size_t size)
{
    (void)g, (void)b, (void)msg, (void)size;
    uint64_t *data = *(uint64_t **)args[0];
    uint64_t words = *(uint64_t *)args[1], key = *(uint64_t *)args[2];
    for (uint64_t i = 0; i < words; i++)
        data[i] ^= key;
    return 0;
}

static xo_kernel_t count_kernel = {
    .name = "count", .host_fn = host_count, .nargs = 1,
    .arg_sizes = { sizeof(void *) } };
static xo_kernel_t xor_kernel = {
    .name = "xor", .host_fn = host_xor, .nargs = 3,
    .arg_sizes = { sizeof(void *), 8, 8 } };

/* The runtime with one GPU pool, device 0; its index into *pool. */
static int gpu_bench_start(struct bench_env *env, const char *name,
                           const struct bench_opts *opts, unsigned *pool,
                           struct bench_result *out)
{
    count_kernel.cuda_fn = bench_count_cuda;
    xor_kernel.cuda_fn = bench_xor_cuda;
    if (bench_start(env, name, opts) != 0)
        return -1;
    xo_pool_spec_t spec;
    xo_pool_spec_init(&spec);
    spec.kind = XO_POOL_GPU;
    spec.device = 0;
    int rc = xo_pool_add(env->rt, &spec, pool);
    xo_gpu_backend_t be = XO_GPU_HOST;
    if (rc == 0)
        rc = xo_gpu_backend(env->rt, &be, NULL);
    if (rc != 0) {
        char why[300];
        snprintf(why, sizeof(why), "no GPU pool: %s (%s)", xo_strerror(rc),
                 xo_gpu_last_error());
        return bench_error(env, why);
    }
    bench_extra(out, "backend", "%s", xo_gpu_backend_name(be));
    return 0;
}

static int spawn_at(struct bench_env *env, const xo_actor_def_t *def,
                    unsigned pool, const void *arg, size_t size,
                    xo_ref_t *out)
{
    xo_spawn_opts_t so;
    xo_spawn_opts_init(&so);
    so.pool = (int)pool;
    so.arg = arg;
    so.arg_size = size;
    int rc = xo_spawn(env->rt, def, &so, out);
    if (rc != 0)
        return bench_error(env, "xo_spawn");
    return 0;
}

/* A call from the main thread, waited for; its error says why. */
static int call_wait(struct bench_env *env, xo_ref_t to, uint32_t tag,
                     const void *data, size_t size)
{
    xo_future_t *f;
    int rc = xo_call(to, tag, data, size, &f);
    if (rc != 0)
        return bench_error(env, "xo_call");
    xo_future_wait(f, -1);
    xo_result_t res;
    rc = xo_future_result(f, 0, &res);
    if (rc != 0) {
        char why[300];
        snprintf(why, sizeof(why), "call %u: %s", tag, res.error);
        xo_future_release(f);
        return bench_error(env, why);
    }
    xo_future_release(f);
    return 0;
}

/* ---- gpu_launch ---------------------------------------------------------- */

enum { L_SETUP = 1, L_LAUNCH, L_BARE, L_READ };

struct launcher {
    xo_buf_t *counter;  /* device memory: the kernels' count */
    xo_buf_t *readback; /* pinned: the count, copied after them */
};

static _Atomic(xo_buf_t *) launch_readback;

static int launcher_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct launcher *l = state;
    xo_stream_t *s = xo_ctx_stream(ctx);
    void *counter = l->counter ? xo_buf_data(l->counter) : NULL;
    void *args[] = { &counter };
    int rc = 0;
    switch (m->tag) {
    case L_LAUNCH:
        return xo_stream_launch(s, &count_kernel, XO_DIM3(1, 1, 1),
                                XO_DIM3(1, 1, 1), 0, args);
    case L_BARE:
        for (uint64_t i = *(const uint64_t *)m->data; i > 0 && rc == 0; i--)
            rc = xo_stream_launch(s, &count_kernel, XO_DIM3(1, 1, 1),
                                  XO_DIM3(1, 1, 1), 0, args);
        return rc;
    case L_READ:
        return xo_stream_copy(s, xo_buf_data(l->readback), counter, 8);
    case L_SETUP:
        rc = xo_buf_alloc(xo_ctx_runtime(ctx), XO_MEM_DEVICE, -1, 8,
                          &l->counter);
        if (rc == 0)
            rc = xo_buf_alloc(xo_ctx_runtime(ctx), XO_MEM_PINNED, -1, 8,
                              &l->readback);
        if (rc == 0)
            rc = xo_stream_fill(s, xo_buf_data(l->counter), 0, 8);
        if (rc == 0)
            atomic_store(&launch_readback, l->readback);
        return rc;
    }
    return 0;
}

static int launcher_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    struct launcher *l = state;
    xo_buf_release(l->counter);
    xo_buf_release(l->readback);
    return 0;
}

static const xo_actor_def_t launcher_def = {
    .name = "launcher", .state_size = sizeof(struct launcher),
    .on_message = launcher_message, .on_destroy = launcher_destroy };

static uint64_t read_count(void)
{
    return *(const volatile uint64_t *)xo_buf_data(
        atomic_load(&launch_readback));
}

int bench_gpu_launch(const struct bench_opts *opts, const uint64_t *args,
                     struct bench_result *out)
{
    uint64_t n = args[0];
    struct bench_env env;
    unsigned pool;
    if (gpu_bench_start(&env, "gpu_launch", opts, &pool, out) != 0)
        return env.rt ? (bench_finish(&env, out), -1) : -1;
    xo_ref_t l;
    int rc = spawn_at(&env, &launcher_def, pool, NULL, 0, &l);
    if (rc == 0)
        rc = call_wait(&env, l, L_SETUP, NULL, 0);
    double tell_s = 0, bare_s = 0;
    struct bench_clock clk;
    if (rc == 0) {
        /* One tell per launch, from this thread; the call after them is
           answered once the stream ran every one. */
        bench_clock_start(&clk);
        for (uint64_t i = 0; i < n && rc == 0; i++)
            if ((rc = xo_tell(l, L_LAUNCH, NULL, 0)) != 0)
                bench_error(&env, "xo_tell");
        if (rc == 0)
            rc = call_wait(&env, l, L_READ, NULL, 0);
        tell_s = bench_clock_stop(&env, &clk);
        if (rc == 0 && read_count() != n)
            rc = bench_error(&env, "the device counted another number of "
                                   "launches");
    }
    if (rc == 0) {
        /* The bare loop: the same launches from one handler. */
        bench_clock_start(&clk);
        rc = call_wait(&env, l, L_BARE, &n, sizeof(n));
        bare_s = bench_clock_stop(&env, &clk);
        if (rc == 0)
            rc = call_wait(&env, l, L_READ, NULL, 0);
        if (rc == 0 && read_count() != 2 * n)
            rc = bench_error(&env, "the bare loop's launches did not all "
                                   "run");
    }
    out->ops = n;
    out->seconds = tell_s;
    bench_extra(out, "overhead_ns", "%.1f", (tell_s - bare_s) * 1e9 / (double)n);
    bench_extra(out, "tell_ns", "%.1f", tell_s * 1e9 / (double)n);
    bench_extra(out, "bare_ns", "%.1f", bare_s * 1e9 / (double)n);
    return bench_finish(&env, out) == 0 ? rc : -1;
}

/* ---- gpu_pipeline --------------------------------------------------------- */

enum { P_KICK = 1, P_ITEM, P_ACK };

#define PIPE_KEY 0xA5A5F00DC0DEBEEFull

struct pipe {
    struct bench_done *done;
    uint64_t items, bytes, window;
    xo_ref_t gpu, consumer, producer;
};

struct stage {
    struct pipe *p;
    uint64_t count; /* producer: items sent; consumer: items checked */
};

static uint64_t pipe_word(uint64_t item, uint64_t k)
{
    return (item << 32) | k;
}

static int send_item(xo_ctx_t *ctx, struct stage *st)
{
    struct pipe *p = st->p;
    xo_buf_t *b;
    int rc = xo_buf_alloc(xo_ctx_runtime(ctx), XO_MEM_PINNED, -1, p->bytes,
                          &b);
    if (rc != 0)
        return bench_fail(p->done, "xo_buf_alloc (pinned)", rc);
    uint64_t *w = xo_buf_data(b), item = st->count++;
    for (uint64_t k = 0; k < p->bytes / 8; k++)
        w[k] = pipe_word(item, k);
    rc = xo_send_buf(p->gpu, P_ITEM, b, &item, sizeof(item));
    if (rc != 0) {
        xo_buf_release(b);
        return bench_fail(p->done, "xo_send_buf to the GPU actor", rc);
    }
    return 0;
}

static int producer_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct stage *st = state;
    uint64_t burst = m->tag == P_KICK ? st->p->window : 1;
    int rc = 0;
    for (uint64_t i = 0; i < burst && st->count < st->p->items && rc == 0;
         i++)
        rc = send_item(ctx, st);
    return rc;
}

static int transformer_message(xo_ctx_t *ctx, void *state,
                               const xo_msg_t *m)
{
    struct stage *st = state;
    struct pipe *p = st->p;
    xo_buf_t *b;
    int rc = xo_msg_buf(ctx, m, &b);
    if (rc != 0)
        return bench_fail(p->done, "xo_msg_buf on the GPU", rc);
    void *data = xo_buf_data(b);
    uint64_t words = p->bytes / 8, key = PIPE_KEY;
    void *args[] = { &data, &words, &key };
    unsigned blocks = (unsigned)((words + 255) / 256);
    rc = xo_stream_launch(xo_ctx_stream(ctx), &xor_kernel,
                          XO_DIM3(blocks < 1024 ? blocks : 1024, 1, 1),
                          XO_DIM3(256, 1, 1), 0, args);
    if (rc != 0)
        return bench_fail(p->done, "the transform's launch", rc);
    rc = xo_send_buf(p->consumer, P_ITEM, xo_buf_ref(b), m->data, m->size);
    if (rc != 0) {
        xo_buf_release(b);
        return bench_fail(p->done, "xo_send_buf to the consumer", rc);
    }
    return 0;
}

static int consumer_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct stage *st = state;
    struct pipe *p = st->p;
    xo_buf_t *b;
    int rc = xo_msg_buf(ctx, m, &b);
    if (rc != 0)
        return bench_fail(p->done, "xo_msg_buf on the consumer", rc);
    uint64_t item = *(const uint64_t *)m->data;
    const uint64_t *w = xo_buf_data(b);
    if (xo_buf_size(b) != p->bytes)
        return bench_fail(p->done, "an item came back another size", 0);
    for (uint64_t k = 0; k < p->bytes / 8; k++)
        if (w[k] != (pipe_word(item, k) ^ PIPE_KEY))
            return bench_fail(p->done, "an item's bytes came back wrong", 0);
    if (++st->count == p->items) {
        bench_done_signal(p->done);
        return 0;
    }
    rc = xo_tell(p->producer, P_ACK, NULL, 0);
    return rc == 0 ? 0 : bench_fail(p->done, "the ack", rc);
}

static const xo_actor_def_t producer_def = {
    .name = "producer", .state_size = sizeof(struct stage),
    .on_create = bench_copy_arg, .on_message = producer_message };
static const xo_actor_def_t transformer_def = {
    .name = "transformer", .state_size = sizeof(struct stage),
    .on_create = bench_copy_arg, .on_message = transformer_message };
static const xo_actor_def_t consumer_def = {
    .name = "consumer", .state_size = sizeof(struct stage),
    .on_create = bench_copy_arg, .on_message = consumer_message };

int bench_gpu_pipeline(const struct bench_opts *opts, const uint64_t *args,
                       struct bench_result *out)
{
    struct pipe p = { .items = args[0], .bytes = args[1] & ~(uint64_t)7,
                      .window = args[2] };
    struct bench_env env;
    unsigned pool;
    if (gpu_bench_start(&env, "gpu_pipeline", opts, &pool, out) != 0)
        return env.rt ? (bench_finish(&env, out), -1) : -1;
    p.done = &env.done;
    /* The two CPU ends on two CPU pools where there are two. */
    unsigned cpu_pools = pool; /* the GPU pool came last */
    struct stage init = { &p, 0 };
    int rc = spawn_at(&env, &transformer_def, pool, &init, sizeof(init),
                      &p.gpu);
    if (rc == 0)
        rc = spawn_at(&env, &consumer_def, cpu_pools > 1 ? 1 : 0, &init,
                      sizeof(init), &p.consumer);
    if (rc == 0)
        rc = spawn_at(&env, &producer_def, 0, &init, sizeof(init),
                      &p.producer);
    if (rc == 0)
        rc = bench_measure(&env, &p.producer, 1, P_KICK, &out->seconds);
    out->ops = p.items;
    if (rc == 0)
        bench_extra(out, "gb_per_s", "%.3f",
                    (double)p.items * (double)p.bytes / out->seconds / 1e9);
    bench_extra(out, "bytes", "%llu", (unsigned long long)p.bytes);
    bench_extra(out, "window", "%llu", (unsigned long long)p.window);
    return bench_finish(&env, out) == 0 ? rc : -1;
}
