#define _POSIX_C_SOURCE 200809L
/*
 * gpu_pipeline.c -- the main thread produces vectors of floats in pinned
 * host memory, a GPU actor scales them on its device (y = 2x + 1, one
 * kernel per vector), a CPU actor checks them. Buffers travel with the
 * messages: to the GPU actor they are copied onto its device on its
 * stream, to the consumer back into pinned memory, and nobody waits for
 * the device but the consumer, when a copy has not arrived yet.
 *
 * It runs on either backend: CUDA where this build has it and a device is
 * visible, the host backend elsewhere (where the kernel's host version
 * runs on the GPU pool's stream thread). It says which.
 *
 *   gpu_pipeline [BUFFERS [MIB]]     (defaults: 64 buffers of 1 MiB)
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xoscar/xoscar.h>

/* The kernel's CUDA version (gpu_pipeline_kernel.cu), where nvcc was
   found at configure time. */
#ifdef XO_EXAMPLE_CUDA
extern const void *const scale_cuda;
#else
static const void *const scale_cuda = NULL;
#endif

/* The host version: the whole grid in one call. */
static int scale_host(xo_dim3_t grid, xo_dim3_t block, void **args,
                      char *msg, size_t msg_size)
{
    (void)grid, (void)block, (void)msg, (void)msg_size;
    float *x = *(float **)args[0];
    unsigned long n = *(unsigned long *)args[1];
    for (unsigned long i = 0; i < n; i++)
        x[i] = 2.0f * x[i] + 1.0f;
    return 0;
}

static xo_kernel_t scale = {
    .name = "scale", .host_fn = scale_host, .nargs = 2,
    .arg_sizes = { sizeof(float *), sizeof(unsigned long) } };

enum { VECTOR = 1, REPORT };

/* What each vector's element k starts as, in vector i. */
static float input(unsigned i, unsigned long k)
{
    return (float)i + 0.5f * (float)(k % 4096);
}

/* The GPU actor: takes the vector onto its device, scales it there, and
   passes it on. */
static int scaler_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    xo_ref_t consumer = *(xo_ref_t *)state;
    xo_buf_t *v;
    int rc = xo_msg_buf(ctx, m, &v); /* in device memory now */
    if (rc != 0)
        return rc;
    float *x = xo_buf_data(v);
    unsigned long n = xo_buf_size(v) / sizeof(float);
    void *args[] = { &x, &n };
    rc = xo_stream_launch(xo_ctx_stream(ctx), &scale,
                          XO_DIM3((unsigned)((n + 255) / 256), 1, 1),
                          XO_DIM3(256, 1, 1), 0, args);
    if (rc != 0)
        return rc;
    /* A reference of its own for the message; the copy to the host starts
       on this stream, after the kernel. */
    return xo_send_buf(consumer, VECTOR, xo_buf_ref(v), m->data, m->size);
}

struct tally {
    unsigned checked, wrong;
};

/* The CPU actor: every element checked. */
static int consumer_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct tally *t = state;
    if (m->tag == REPORT)
        return xo_reply(m->request, REPORT, t, sizeof(*t));
    xo_buf_t *v;
    int rc = xo_msg_buf(ctx, m, &v); /* in host memory, its bytes there */
    if (rc != 0)
        return rc;
    unsigned i = *(const unsigned *)m->data;
    const float *y = xo_buf_data(v);
    unsigned long n = xo_buf_size(v) / sizeof(float);
    bool ok = true;
    for (unsigned long k = 0; k < n && ok; k++)
        ok = y[k] == 2.0f * input(i, k) + 1.0f;
    t->checked++;
    t->wrong += !ok;
    return 0;
}

static int copy_arg(xo_ctx_t *ctx, void *state, const void *arg, size_t size)
{
    (void)ctx;
    memcpy(state, arg, size);
    return 0;
}

static const xo_actor_def_t scaler_def = {
    .name = "scaler", .state_size = sizeof(xo_ref_t),
    .on_create = copy_arg, .on_message = scaler_message };
static const xo_actor_def_t consumer_def = {
    .name = "consumer", .state_size = sizeof(struct tally),
    .on_message = consumer_message };

static bool parse(const char *s, unsigned long max, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v == 0 || v > max)
        return false;
    *out = (unsigned)v;
    return true;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "%s: %s (%s)\n", what, xo_strerror(rc),
            xo_gpu_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    unsigned buffers = 64, mib = 1;
    if (argc > 3 || (argc > 1 && !parse(argv[1], 100000, &buffers)) ||
        (argc > 2 && !parse(argv[2], 1024, &mib))) {
        fprintf(stderr, "usage: %s [BUFFERS [MIB]]  (whole numbers > 0)\n",
                argv[0]);
        return 2;
    }
    scale.cuda_fn = scale_cuda;
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 2;
    cfg.gpu_devices = XO_GPU_ALL; /* a GPU pool on every visible device */
    xo_runtime_t *rt;
    int rc = xo_runtime_start(&cfg, &rt);
    if (rc != 0)
        return fail("xo_runtime_start", rc);
    xo_gpu_backend_t backend;
    int devices;
    xo_gpu_backend(rt, &backend, &devices);
    printf("backend: %s (%d device%s)\n", xo_gpu_backend_name(backend),
           devices, devices == 1 ? "" : "s");

    /* The consumer on a CPU pool (placement without a label picks one);
       the scaler on a GPU pool, one per card (Xoscar's idle-label). */
    xo_ref_t consumer, scaler;
    if ((rc = xo_spawn(rt, &consumer_def, NULL, &consumer)) != 0)
        return fail("spawn consumer", rc);
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.place = (xo_placement_t){ .kind = XO_PLACE_IDLE_LABEL, .label = "gpu",
                                .mark = "scaler" };
    o.arg = &consumer;
    o.arg_size = sizeof(consumer);
    if ((rc = xo_spawn(rt, &scaler_def, &o, &scaler)) != 0)
        return fail("spawn scaler", rc);
    xo_actor_stats_t st;
    xo_pool_info_t info;
    xo_actor_stats(scaler, &st);
    xo_pool_info(rt, st.pool, &info);
    printf("scaler on pool %u (%s), ", st.pool, info.labels);
    xo_actor_stats(consumer, &st);
    xo_pool_info(rt, st.pool, &info);
    printf("consumer on pool %u (%s)\n", st.pool, info.labels);

    /* The producer: this thread, vectors in pinned memory. */
    size_t size = (size_t)mib << 20;
    for (unsigned i = 0; i < buffers; i++) {
        xo_buf_t *v;
        if ((rc = xo_buf_alloc(rt, XO_MEM_PINNED, -1, size, &v)) != 0)
            return fail("xo_buf_alloc", rc);
        float *x = xo_buf_data(v);
        for (unsigned long k = 0; k < size / sizeof(float); k++)
            x[k] = input(i, k);
        if ((rc = xo_send_buf(scaler, VECTOR, v, &i, sizeof(i))) != 0)
            return fail("xo_send_buf", rc);
    }

    /* Ask the consumer how far it got, until it has them all. */
    xo_future_t *f;
    xo_result_t res;
    struct tally t = { 0, 0 };
    while (t.checked < buffers) {
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
        if ((rc = xo_call(consumer, REPORT, NULL, 0, &f)) != 0)
            return fail("xo_call", rc);
        xo_future_wait(f, -1);
        if ((rc = xo_future_result(f, 0, &res)) != 0)
            return fail("report", rc);
        memcpy(&t, res.data, sizeof(t));
        xo_future_release(f);
    }
    printf("%u buffers of %u MiB scaled on the GPU pool and checked on the "
           "CPU: %s\n",
           t.checked, mib, t.wrong == 0 ? "all correct" : "WRONG");
    xo_runtime_free(rt);
    return t.wrong == 0 ? 0 : 1;
}
