/*
 * rcu.c -- the updater's half of send sections (design in rcu.h).
 */
#include "rcu.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

__thread struct xi_reader *xi_tls_reader
    __attribute__((tls_model("initial-exec")));

bool xi_readers_fence;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static long membarrier(int cmd)
{
    return syscall(SYS_membarrier, cmd, 0, 0);
}

static void init(void)
{
#ifdef XI_TSAN
    xi_readers_fence = true; /* TSan does not know membarrier */
#else
    long cmds = membarrier(MEMBARRIER_CMD_QUERY);
    xi_readers_fence =
        cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) ||
        membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0;
#endif
}

void xi_rcu_init(void)
{
    pthread_once(&init_once, init);
}

void xi_readers_barrier(void)
{
    /* seq_cst: orders the caller's unpublish before the loads of the
       readers' words, on this side of the asymmetric barrier. */
    atomic_thread_fence(memory_order_seq_cst);
    if (!xi_readers_fence &&
        membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) {
        /* Refused after the registration succeeded: the kernel breaks its
           own contract, and readers that skip their barrier would be
           unsafe from now on. Nothing sound can go on. */
        fputs("xoscar: membarrier failed after registration\n", stderr);
        abort();
    }
}

void xi_reader_wait(struct xi_reader *r)
{
    /* acquire: pairs with the release store that ends a section. */
    uint64_t s = atomic_load_explicit(&r->seq, memory_order_acquire);
    if (!(s & 1))
        return;
    /* A section is a send: a few hundred nanoseconds, unless its thread
       was preempted inside it. */
    for (unsigned i = 1;
         atomic_load_explicit(&r->seq, memory_order_acquire) == s; i++) {
        if ((i & 255) == 0)
            sched_yield();
        else
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#else
            atomic_signal_fence(memory_order_seq_cst);
#endif
    }
}
