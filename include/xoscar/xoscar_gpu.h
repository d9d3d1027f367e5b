/*
 * xoscar_gpu.h -- GPU pools, streams and buffers; included by xoscar.h
 * (docs/gpu.md is the guide).
 *
 * A GPU pool is a pool (xo_pool_spec_t.kind XO_POOL_GPU, or cfg.gpu_devices
 * at start) whose one thread, its stream thread, owns one stream of one
 * device and runs the handlers of the actors placed there (labels "gpu"
 * and "gpu:N"). A handler gets the stream with xo_ctx_stream, enqueues
 * kernels and copies on it and returns at once; the stream thread never
 * waits for the device. A call answered on a stream thread completes when
 * the stream reaches the work enqueued before the answer was given (the
 * handler's own, for the answer the runtime gives when it returns).
 *
 * Two backends run the same stream threads: CUDA (built where the toolkit
 * was found at configure time, used where a device is visible) and the
 * host backend, where a stream is an in-order queue of host work that its
 * stream thread runs and a kernel is a host function: a program written
 * against this header runs on either (xo_kernel_t names both versions of a
 * kernel).
 *
 * A buffer (xo_buf_t) is reference-counted memory that knows where it
 * lives (host, pinned host, device N). Sent with xo_send_buf, it is moved
 * by the cheapest path to where its receiver runs, stream-ordered, without
 * the host waiting: the same device gets the pointer itself; another
 * device a peer copy on the receiver's stream; a CPU actor a copy into
 * pinned host memory, started when the message is sent. The receiver takes
 * it with xo_msg_buf.
 */
#ifndef XOSCAR_XOSCAR_GPU_H
#define XOSCAR_XOSCAR_GPU_H

#include "xoscar/xoscar.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xo_stream xo_stream_t;
typedef struct xo_buf xo_buf_t;

/* ------------------------------------------------------------------ */
/* Backends and devices                                                */
/* ------------------------------------------------------------------ */

typedef struct xo_gpu_probe {
    bool cuda_built;      /* this build has the CUDA backend */
    int cuda_devices;     /* CUDA devices visible to this process */
    char reason[256];     /* when cuda_devices is 0: why (not built, or
                             the CUDA runtime's own message) */
} xo_gpu_probe_t;

/* What this build and this machine offer, without a runtime. */
XO_API int xo_gpu_probe(xo_gpu_probe_t *out);

/* "host", "cuda" ("auto" for XO_GPU_AUTO). */
XO_API const char *xo_gpu_backend_name(xo_gpu_backend_t backend);

/* The backend rt's GPU pools use, and its visible devices (the host
   backend: cfg.gpu_host_devices). The backend is chosen when the first
   GPU pool or buffer is made; asking chooses it. Errors: XO_EINVAL,
   XO_ENOSYS and XO_EGPU as cfg.gpu_backend says, XO_ENOMEM. */
XO_API int xo_gpu_backend(xo_runtime_t *rt, xo_gpu_backend_t *backend,
                          int *devices);

/* The message of the last GPU failure seen on this thread (a CUDA error's
   own text, with the call that returned it), or "" when there was none. */
XO_API const char *xo_gpu_last_error(void);

/* ------------------------------------------------------------------ */
/* Streams: inside a GPU actor's handler                               */
/* ------------------------------------------------------------------ */

/*
 * The stream of the GPU pool whose stream thread runs this handler, or
 * NULL (a CPU pool's actor; on_create, which runs on the spawner's
 * thread). Valid while the handler runs; every xo_stream_* call must be
 * made on that thread (XO_EINVAL elsewhere).
 */
XO_API xo_stream_t *xo_ctx_stream(const xo_ctx_t *ctx);
/* The device the stream belongs to. */
XO_API int xo_stream_device(const xo_stream_t *s);
/* The CUDA stream (a cudaStream_t) to launch one's own kernels and
   library calls on; NULL on the host backend. */
XO_API void *xo_stream_cuda(const xo_stream_t *s);

typedef struct xo_dim3 {
    unsigned x, y, z;
} xo_dim3_t;

#define XO_DIM3(x, y, z) ((xo_dim3_t){ (x), (y), (z) })

#define XO_KERNEL_ARGS_MAX 16
#define XO_KERNEL_ARG_BYTES 4096 /* all arguments of one launch together */

/*
 * The host backend's version of a kernel: the whole grid in one call, on
 * the stream thread, when the stream reaches the launch. It returns 0, or
 * a negative XO_E* code with its reason written into msg (msg_size bytes):
 * a kernel that fails is a device failure, as a faulting CUDA kernel is
 * (every pool of the device fails, see XO_POOL_FAILED).
 */
typedef int (*xo_host_kernel_fn)(xo_dim3_t grid, xo_dim3_t block,
                                 void **args, char *msg, size_t msg_size);

/* A kernel, for both backends. Usually a static const struct beside the
   __global__ function (docs/gpu.md shows one). */
typedef struct xo_kernel {
    const char *name;
    /* The __global__ function's address, as cudaLaunchKernel takes it;
       NULL: no CUDA version (XO_ENOSYS on the CUDA backend). */
    const void *cuda_fn;
    /* NULL: no host version (XO_ENOSYS on the host backend). */
    xo_host_kernel_fn host_fn;
    /* Its arguments: how many, and each one's size in bytes (the host
       backend copies them at launch, as cudaLaunchKernel does). */
    unsigned nargs;
    size_t arg_sizes[XO_KERNEL_ARGS_MAX];
} xo_kernel_t;

/*
 * Stream operations: each is enqueued and returns at once; the stream runs
 * them in order. Errors: XO_EINVAL (NULL arguments, a kernel's arguments
 * past XO_KERNEL_ARGS_MAX or XO_KERNEL_ARG_BYTES, not on the stream's
 * thread), XO_ENOSYS (the kernel has no version for this backend),
 * XO_ENOMEM, XO_EGPU (the backend refused it, or the device has failed:
 * xo_gpu_last_error and the handler's error message say why). A handler
 * that returns the code passes the message to its caller.
 */
XO_API int xo_stream_launch(xo_stream_t *s, const xo_kernel_t *k,
                            xo_dim3_t grid, xo_dim3_t block,
                            size_t shared_bytes, void **args);
/* Copy size bytes between any two of host, pinned and device memory
   (cudaMemcpyDefault). */
XO_API int xo_stream_copy(xo_stream_t *s, void *dst, const void *src,
                          size_t size);
/* Set size bytes at dst to byte. */
XO_API int xo_stream_fill(xo_stream_t *s, void *dst, int byte, size_t size);

/* ------------------------------------------------------------------ */
/* Buffers                                                             */
/* ------------------------------------------------------------------ */

typedef enum xo_mem_kind {
    XO_MEM_HOST = 1,   /* ordinary host memory */
    XO_MEM_PINNED,     /* page-locked host memory (copies to and from a
                          device run without staging) */
    XO_MEM_DEVICE,     /* memory of device N */
} xo_mem_kind_t;

/*
 * A buffer of `size` bytes (at least 1) of `kind` memory, with one
 * reference, the caller's. Device memory: of `device`, or (-1, on a GPU
 * pool's stream thread) of the stream's own; allocated in stream order on
 * that stream thread's stream, or at once elsewhere. Errors: XO_EINVAL
 * (no such device, size 0, device -1 off a stream thread), XO_ENOMEM,
 * XO_EGPU, and those of xo_gpu_backend.
 */
XO_API int xo_buf_alloc(xo_runtime_t *rt, xo_mem_kind_t kind, int device,
                        size_t size, xo_buf_t **out);
/*
 * A buffer around memory the caller allocated (kind and device say where
 * it is): free_fn(data, arg) runs exactly once, when the last reference
 * goes (NULL: nothing runs). A last reference dropped on a stream thread
 * runs it once that stream reached what was enqueued before.
 */
XO_API int xo_buf_wrap(xo_runtime_t *rt, xo_mem_kind_t kind, int device,
                       void *data, size_t size,
                       void (*free_fn)(void *data, void *arg), void *arg,
                       xo_buf_t **out);
XO_API void *xo_buf_data(const xo_buf_t *b);
XO_API size_t xo_buf_size(const xo_buf_t *b);
XO_API xo_mem_kind_t xo_buf_kind(const xo_buf_t *b);
/* The device of device memory; -1 for host and pinned memory. */
XO_API int xo_buf_device(const xo_buf_t *b);
/* One more reference (returns b). */
XO_API xo_buf_t *xo_buf_ref(xo_buf_t *b);
/* Drop a reference: the last one gives the memory back, in stream order
   when dropped on a stream thread (after the work enqueued before). Every
   buffer must be released before xo_runtime_free of its runtime. */
XO_API void xo_buf_release(xo_buf_t *b);

/*
 * Send a one-way message that carries buf (one reference, which the
 * message takes over on success) and `size` bytes of data (copied; the
 * handler sees them as msg->data). Sent from a stream thread, the
 * buffer's contents are those the stream has produced at this point: the
 * receiver's use is ordered after the work enqueued before the send. A
 * device buffer sent to an actor that is not on a GPU pool is copied into
 * pinned host memory on a stream of its device, starting now. From any
 * thread.
 *
 * `to` may be an actor of another node: the message is queued for the
 * node at once (in order with the pair's other messages) and its bytes
 * go on the wire once they are ready (a device buffer's copy to the host
 * done, the sender's stream past the send), without any thread waiting
 * for the stream. The receiving node delivers a host buffer with the
 * same bytes (on a GPU pool: copied to its stream's device, as any host
 * buffer is); a message that cannot be delivered there is dropped and
 * counted as a tell is (docs/gpu.md, "Across nodes"). Buffer and data
 * together must fit the node's max_message (1 GiB by default).
 *
 * Errors: those of xo_tell, XO_ENOTEXIST (a device buffer whose device
 * has no running GPU pool to copy it), XO_EGPU, XO_EINVAL also for a
 * message to another node over max_message (xo_gpu_last_error says so).
 * On error the caller keeps its reference.
 */
XO_API int xo_send_buf(xo_ref_t to, uint32_t tag, xo_buf_t *buf,
                       const void *data, size_t size);

/*
 * In a handler: the buffer msg carries, where this handler can use it --
 * on a GPU pool, memory of the stream's device, ready in the stream's
 * order (the same device: the sender's buffer itself, the stream made to
 * wait for the sender's work; another device or host memory: a copy on
 * this stream); on a CPU pool, host memory whose contents are there (the
 * handler waits for the copy if it has not finished yet, lending its
 * worker as xo_future_wait does). Borrowed: valid while the handler runs;
 * xo_buf_ref keeps it. Errors: XO_EINVAL (no buffer in msg, a NULL
 * argument), XO_ENOMEM, XO_EGPU (the copy or the sender's work failed:
 * the handler's error message says why), and the waits' XO_EDEADLK.
 */
XO_API int xo_msg_buf(xo_ctx_t *ctx, const xo_msg_t *msg, xo_buf_t **out);

#ifdef __cplusplus
}
#endif

#endif /* XOSCAR_XOSCAR_GPU_H */
