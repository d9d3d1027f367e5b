// kernels.cu -- the CUDA versions of the GPU suites' kernels (kernels.h).
#include <stdint.h>

#include "kernels.h"

__global__ static void fill_kernel(uint64_t *dst, uint64_t words,
                                   uint64_t seed)
{
    uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
         i < words; i += stride)
        dst[i] = tk_word(seed, i);
}

__global__ static void log_kernel(uint32_t *log, uint32_t id)
{
    if (blockIdx.x == 0 && threadIdx.x == 0)
        log[1 + log[0]++] = id;
}

__global__ static void xor_kernel(uint64_t *data, uint64_t words,
                                  uint64_t key)
{
    uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
         i < words; i += stride)
        data[i] ^= key;
}

__global__ static void fault_kernel(uint32_t code)
{
    (void)code;
    __trap();
}

__global__ static void spin_kernel(uint64_t ns)
{
    uint64_t start;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    for (;;) {
        uint64_t now;
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
        if (now - start >= ns)
            break;
        __nanosleep(1000);
    }
}

__global__ static void count_kernel(uint64_t *counter)
{
    atomicAdd((unsigned long long *)counter, 1ull);
}

extern "C" const void *const tk_cuda[TK_N_] = {
    (const void *)fill_kernel,  (const void *)log_kernel,
    (const void *)xor_kernel,   (const void *)fault_kernel,
    (const void *)spin_kernel,  (const void *)count_kernel,
};
