// gpu_kernels.cu -- the CUDA versions of the GPU benchmarks' kernels
// (gpu_kernels.h).
#include <stdint.h>

#include "gpu_kernels.h"

__global__ static void count_kernel(uint64_t *counter)
{
    atomicAdd((unsigned long long *)counter, 1ull);
}

__global__ static void xor_kernel(uint64_t *data, uint64_t words,
                                  uint64_t key)
{
    uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
         i < words; i += stride)
        data[i] ^= key;
}

extern "C" const void *const bench_count_cuda = (const void *)count_kernel;
extern "C" const void *const bench_xor_cuda = (const void *)xor_kernel;
