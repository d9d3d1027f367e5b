/*
 * cuda.c -- the CUDA backend (built where CMake's find_package(CUDAToolkit)
 * found the toolkit; linked against the CUDA runtime, cudart). Plain C on
 * the runtime API: the library itself needs no device code.
 *
 * Each GPU pool's stream thread makes its device current once (its first
 * item) and owns one non-blocking stream, so nothing of it waits for the
 * legacy default stream. A point is an event (timing off: cheaper to
 * record and query) recorded on the stream; the stream thread asks
 * cudaEventQuery about its oldest only. A wait for another stream's point
 * is cudaStreamWaitEvent: the device waits, never the host.
 *
 * Device memory comes from the device's default memory pool, stream-
 * ordered (cudaMallocAsync / cudaFreeAsync), with its release threshold
 * raised so that freed memory stays in the pool for the next allocation
 * instead of going back to the driver at each synchronisation. Off the
 * stream threads (a buffer made or dropped by another thread) the
 * device's service stream stands in: an allocation there is waited for at
 * once (that thread is not a stream thread), a free is not.
 *
 * Errors: each failing call's own message (cudaGetErrorString, with its
 * name and the call) becomes the thread's GPU error. XO_ENOMEM for
 * cudaErrorMemoryAllocation, XO_EGPU otherwise. The errors that leave the
 * context unusable (an illegal address, a kernel's fault or trap, an ECC
 * error) mark the device failed: its pools fail and their actors end.
 */
#include "gpu/gpu.h"

#include <cuda_runtime_api.h>
#include <string.h>

struct cuda_dev {
    cudaStream_t service;
};

/* An error that leaves the device's context unusable. */
static bool sticky(cudaError_t e)
{
    switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchTimeout:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchFailure:
    case cudaErrorAssert:
    case cudaErrorECCUncorrectable:
    case cudaErrorContextIsDestroyed:
        return true;
    default:
        return false;
    }
}

/* The thread's GPU error from e; a sticky one fails d. */
static int cuda_fail(struct xi_gdev *d, cudaError_t e, const char *call)
{
    xi_gpu_seterr(XO_EGPU, "%s: %s (%s)", call, cudaGetErrorString(e),
                  cudaGetErrorName(e));
    if (d != NULL && sticky(e))
        xi_gdev_fail(d, xi_gpu_err());
    return e == cudaErrorMemoryAllocation ? XO_ENOMEM : XO_EGPU;
}

#define CK(d, call)                                                          \
    do {                                                                     \
        cudaError_t e_ = (call);                                             \
        if (e_ != cudaSuccess)                                               \
            return cuda_fail((d), e_, #call);                                \
    } while (0)

int xi_cuda_count(int *n)
{
    *n = 0;
    cudaError_t e = cudaGetDeviceCount(n);
    if (e != cudaSuccess) {
        *n = 0;
        /* cudaGetDeviceCount leaves its error for the next call. */
        (void)cudaGetLastError();
        return cuda_fail(NULL, e, "cudaGetDeviceCount");
    }
    if (*n == 0)
        xi_gpu_seterr(XO_EGPU, "cudaGetDeviceCount: no device");
    return 0;
}

static int cuda_count(xo_runtime_t *rt, int *n)
{
    (void)rt;
    return xi_cuda_count(n);
}

/* Run with d current on this thread, then put the caller's back. */
static int dev_enter(struct xi_gdev *d, int *prev)
{
    if (cudaGetDevice(prev) != cudaSuccess)
        *prev = -1;
    CK(d, cudaSetDevice(d->index));
    return 0;
}

static void dev_leave(int prev)
{
    if (prev >= 0)
        (void)cudaSetDevice(prev);
}

static int cuda_dev_open(struct xi_gdev *d)
{
    struct cuda_dev *cd = xi_mem_zalloc(&d->gpu->rt->mem, sizeof(*cd));
    if (cd == NULL)
        return xi_gpu_seterr(XO_ENOMEM, "out of memory for a device");
    int prev, rc = dev_enter(d, &prev);
    cudaError_t e = cudaSuccess;
    if (rc == 0) {
        e = cudaStreamCreateWithFlags(&cd->service, cudaStreamNonBlocking);
        if (e == cudaSuccess) {
            /* Keep freed memory in the pool (its default threshold, 0,
               returns it at every synchronisation). */
            cudaMemPool_t pool;
            uint64_t keep = UINT64_MAX;
            if (cudaDeviceGetDefaultMemPool(&pool, d->index) == cudaSuccess)
                (void)cudaMemPoolSetAttribute(
                    pool, cudaMemPoolAttrReleaseThreshold, &keep);
        }
        dev_leave(prev);
    }
    if (rc == 0 && e != cudaSuccess)
        rc = cuda_fail(d, e, "cudaStreamCreateWithFlags");
    if (rc != 0) {
        xi_mem_free(&d->gpu->rt->mem, cd, sizeof(*cd));
        return rc;
    }
    d->be = cd;
    return 0;
}

static void cuda_dev_close(struct xi_gdev *d)
{
    struct cuda_dev *cd = d->be;
    int prev;
    if (dev_enter(d, &prev) == 0) {
        (void)cudaStreamSynchronize(cd->service);
        (void)cudaStreamDestroy(cd->service);
        dev_leave(prev);
    }
    xi_mem_free(&d->gpu->rt->mem, cd, sizeof(*cd));
    d->be = NULL;
}

static int cuda_stream_open(struct xo_stream *s)
{
    cudaStream_t st;
    CK(s->dev, cudaSetDevice(s->dev->index));
    CK(s->dev, cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    s->be = st;
    return 0;
}

static void cuda_stream_close(struct xo_stream *s)
{
    while (s->nevents > 0)
        (void)cudaEventDestroy(s->events[--s->nevents]);
    /* Its work was drained; what a failure left is dropped. */
    (void)cudaStreamDestroy((cudaStream_t)s->be);
    s->be = NULL;
}

static int cuda_record(struct xo_stream *s, struct xi_gpoint *p)
{
    cudaEvent_t ev;
    if (s->nevents > 0)
        ev = s->events[--s->nevents];
    else
        CK(s->dev, cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    cudaError_t e = cudaEventRecord(ev, (cudaStream_t)s->be);
    if (e != cudaSuccess) {
        (void)cudaEventDestroy(ev);
        return cuda_fail(s->dev, e, "cudaEventRecord");
    }
    p->ev = ev;
    return 0;
}

static int cuda_query(struct xo_stream *s, struct xi_gpoint *p)
{
    cudaError_t e = cudaEventQuery((cudaEvent_t)p->ev);
    if (e == cudaSuccess)
        return XI_GQ_REACHED;
    if (e == cudaErrorNotReady)
        return XI_GQ_PENDING;
    /* An error reported here is the device's: the stream cannot go on. */
    (void)cuda_fail(s->dev, e, "cudaEventQuery");
    return XO_EGPU;
}

static int cuda_wait(struct xo_stream *s, struct xi_gpoint *p)
{
    CK(s->dev, cudaStreamWaitEvent((cudaStream_t)s->be, (cudaEvent_t)p->ev,
                                   0));
    return 0;
}

static void cuda_point_free(struct xi_gpoint *p)
{
    struct xo_stream *s = p->stream;
    /* Kept for reuse on its own stream thread, destroyed elsewhere. */
    if (s != NULL && xi_current_worker() == s->pool->worker &&
        s->opened && s->nevents < XI_GPU_EVENTS)
        s->events[s->nevents++] = p->ev;
    else
        (void)cudaEventDestroy((cudaEvent_t)p->ev);
    p->ev = NULL;
}

static int cuda_launch(struct xo_stream *s, const xo_kernel_t *k,
                       xo_dim3_t grid, xo_dim3_t block, size_t shared_bytes,
                       void **args)
{
    if (k->cuda_fn == NULL)
        return xi_gpu_seterr(XO_ENOSYS, "kernel %s has no CUDA version",
                             k->name ? k->name : "?");
    dim3 g = { grid.x, grid.y, grid.z }, b = { block.x, block.y, block.z };
    cudaError_t e = cudaLaunchKernel(k->cuda_fn, g, b, args, shared_bytes,
                                     (cudaStream_t)s->be);
    if (e != cudaSuccess)
        return cuda_fail(s->dev, e, k->name ? k->name : "cudaLaunchKernel");
    return 0;
}

static int cuda_copy(struct xo_stream *s, void *dst, const void *src,
                     size_t n)
{
    CK(s->dev, cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault,
                               (cudaStream_t)s->be));
    return 0;
}

static int cuda_copy_peer(struct xo_stream *s, void *dst, int dst_dev,
                          const void *src, int src_dev, size_t n)
{
    CK(s->dev, cudaMemcpyPeerAsync(dst, dst_dev, src, src_dev, n,
                                   (cudaStream_t)s->be));
    return 0;
}

static int cuda_fill(struct xo_stream *s, void *dst, int byte, size_t n)
{
    CK(s->dev, cudaMemsetAsync(dst, byte, n, (cudaStream_t)s->be));
    return 0;
}

static int cuda_dev_alloc(struct xi_gdev *d, struct xo_stream *s, size_t n,
                          void **out)
{
    if (s != NULL) {
        CK(d, cudaMallocAsync(out, n, (cudaStream_t)s->be));
        return 0;
    }
    struct cuda_dev *cd = d->be;
    int prev, rc = dev_enter(d, &prev);
    if (rc != 0)
        return rc;
    cudaError_t e = cudaMallocAsync(out, n, cd->service);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(cd->service);
    dev_leave(prev);
    if (e != cudaSuccess)
        return cuda_fail(d, e, "cudaMallocAsync");
    return 0;
}

static void cuda_dev_free(struct xi_gdev *d, struct xo_stream *s, void *p,
                          size_t n)
{
    (void)n;
    if (s != NULL) {
        (void)cudaFreeAsync(p, (cudaStream_t)s->be);
        return;
    }
    struct cuda_dev *cd = d->be;
    int prev;
    if (dev_enter(d, &prev) != 0)
        return;
    (void)cudaFreeAsync(p, cd->service);
    dev_leave(prev);
}

static int cuda_pinned_alloc(struct xi_gpu *g, size_t n, void **out)
{
    (void)g;
    CK(NULL, cudaHostAlloc(out, n, cudaHostAllocPortable));
    return 0;
}

static void cuda_pinned_free(struct xi_gpu *g, void *p, size_t n)
{
    (void)g;
    (void)n;
    (void)cudaFreeHost(p);
}

const struct xi_gbackend xi_gpu_cuda_backend = {
    .name = "cuda",
    .kind = XO_GPU_CUDA,
    .count = cuda_count,
    .dev_open = cuda_dev_open,
    .dev_close = cuda_dev_close,
    .stream_open = cuda_stream_open,
    .stream_close = cuda_stream_close,
    .record = cuda_record,
    .query = cuda_query,
    .wait = cuda_wait,
    .point_free = cuda_point_free,
    .progress = NULL,
    .launch = cuda_launch,
    .copy = cuda_copy,
    .copy_peer = cuda_copy_peer,
    .fill = cuda_fill,
    .dev_alloc = cuda_dev_alloc,
    .dev_free = cuda_dev_free,
    .pinned_alloc = cuda_pinned_alloc,
    .pinned_free = cuda_pinned_free,
};
