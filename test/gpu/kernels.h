/*
 * kernels.h -- the kernels of the GPU suites, each with its CUDA version
 * (kernels.cu, in builds where nvcc was found) and its host version
 * (kernels.c), so that one test body runs on either backend.
 */
#ifndef XO_TEST_GPU_KERNELS_H
#define XO_TEST_GPU_KERNELS_H

#include <stdint.h>

#include "xoscar/xoscar.h"

#ifdef __cplusplus
extern "C" {
#endif

enum tk_id {
    TK_FILL,   /* (uint64_t *dst, uint64_t words, uint64_t seed):
                  dst[i] = tk_word(seed, i) */
    TK_LOG,    /* (uint32_t *log, uint32_t id): log[1 + log[0]++] = id, one
                  thread (stream order keeps the log in launch order) */
    TK_XOR,    /* (uint64_t *data, uint64_t words, uint64_t key):
                  data[i] ^= key */
    TK_FAULT,  /* (uint32_t code): fails the device (CUDA: a trap; host: an
                  error with the message "planted fault <code>") */
    TK_SPIN,   /* (uint64_t ns): keeps the stream busy about ns */
    TK_COUNT,  /* (uint64_t *counter): ++*counter */
    TK_N_
};

/* The __global__ functions, by id (all NULL in a build without nvcc). */
extern const void *const tk_cuda[TK_N_];

/* Kernel `id`, both versions. */
const xo_kernel_t *tk(enum tk_id id);

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
#define TK_HD __host__ __device__
#else
#define TK_HD
#endif

/* What TK_FILL writes at word i. */
static inline TK_HD uint64_t tk_word(uint64_t seed, uint64_t i)
{
    return seed ^ (i * 0x9E3779B97F4A7C15ull) ^ (i >> 7);
}

#endif
