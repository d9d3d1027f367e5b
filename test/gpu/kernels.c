/*
 * kernels.c -- the host versions of the GPU suites' kernels (kernels.h),
 * and the table that pairs them with the CUDA ones.
 */
#include "kernels.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#ifndef XO_TEST_CUDA
const void *const tk_cuda[TK_N_] = { 0 };
#endif

static int host_fill(xo_dim3_t g, xo_dim3_t b, void **args, char *msg,
                     size_t size)
{
    (void)g, (void)b, (void)msg, (void)size;
    uint64_t *dst = *(uint64_t **)args[0];
    uint64_t words = *(uint64_t *)args[1], seed = *(uint64_t *)args[2];
    for (uint64_t i = 0; i < words; i++)
        dst[i] = tk_word(seed, i);
    return 0;
}

static int host_log(xo_dim3_t g, xo_dim3_t b, void **args, char *msg,
                    size_t size)
{
    (void)g, (void)b, (void)msg, (void)size;
    uint32_t *log = *(uint32_t **)args[0];
    log[1 + log[0]++] = *(uint32_t *)args[1];
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

static int host_fault(xo_dim3_t g, xo_dim3_t b, void **args, char *msg,
                      size_t size)
{
    (void)g, (void)b;
    snprintf(msg, size, "planted fault %u", *(uint32_t *)args[0]);
    return XO_EINVAL;
}

static int host_spin(xo_dim3_t g, xo_dim3_t b, void **args, char *msg,
                     size_t size)
{
    (void)g, (void)b, (void)msg, (void)size;
    uint64_t ns = *(uint64_t *)args[0];
    struct timespec ts = { (time_t)(ns / 1000000000u),
                           (long)(ns % 1000000000u) };
    nanosleep(&ts, NULL);
    return 0;
}

static int host_count(xo_dim3_t g, xo_dim3_t b, void **args, char *msg,
                      size_t size)
{
    (void)g, (void)b, (void)msg, (void)size;
    uint64_t *counter = *(uint64_t **)args[0];
    ++*counter;
    return 0;
}

static xo_kernel_t table[TK_N_] = {
    [TK_FILL] = { .name = "fill", .host_fn = host_fill, .nargs = 3,
                  .arg_sizes = { sizeof(void *), 8, 8 } },
    [TK_LOG] = { .name = "log", .host_fn = host_log, .nargs = 2,
                 .arg_sizes = { sizeof(void *), 4 } },
    [TK_XOR] = { .name = "xor", .host_fn = host_xor, .nargs = 3,
                 .arg_sizes = { sizeof(void *), 8, 8 } },
    [TK_FAULT] = { .name = "fault", .host_fn = host_fault, .nargs = 1,
                   .arg_sizes = { 4 } },
    [TK_SPIN] = { .name = "spin", .host_fn = host_spin, .nargs = 1,
                  .arg_sizes = { 8 } },
    [TK_COUNT] = { .name = "count", .host_fn = host_count, .nargs = 1,
                   .arg_sizes = { sizeof(void *) } },
};
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void pair(void)
{
    for (int i = 0; i < TK_N_; i++)
        table[i].cuda_fn = tk_cuda[i];
}

const xo_kernel_t *tk(enum tk_id id)
{
    pthread_once(&once, pair);
    return &table[id];
}
