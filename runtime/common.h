/*
 * common.h -- the few helpers every module of runtime/ uses: the cache-line
 * size, a pause for polling loops, container_of. Nothing here knows an
 * object of the runtime.
 */
#ifndef XI_RUNTIME_COMMON_H
#define XI_RUNTIME_COMMON_H

#include <stddef.h>

#define XI_CACHELINE 64

/* Inside a polling loop: let the sibling hyperthread (or the hypervisor)
   have the core for a moment. */
static inline void xi_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#define xi_container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

#endif /* XI_RUNTIME_COMMON_H */
