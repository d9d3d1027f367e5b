/*
 * gpu_kernels.h -- the kernels of the GPU benchmarks, both versions: the
 * CUDA one from gpu_kernels.cu (where nvcc was found), the host one from
 * gpu.c.
 */
#ifndef XO_BENCH_GPU_KERNELS_H
#define XO_BENCH_GPU_KERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/* count(uint64_t *counter): ++*counter, one thread. */
extern const void *const bench_count_cuda;
/* xor(uint64_t *data, uint64_t words, uint64_t key): data[i] ^= key. */
extern const void *const bench_xor_cuda;

#ifdef __cplusplus
}
#endif

#endif
