// gpu_pipeline_kernel.cu -- the CUDA version of gpu_pipeline.c's kernel:
// y = 2x + 1 over n floats.

__global__ static void scale_kernel(float *x, unsigned long n)
{
    unsigned long i = (unsigned long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] = 2.0f * x[i] + 1.0f;
}

extern "C" const void *const scale_cuda = (const void *)scale_kernel;
