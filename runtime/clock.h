/*
 * clock.h -- the runtime's two clocks, in one place.
 *
 *   xi_now_ns     CLOCK_MONOTONIC: deadlines, timeouts, the benchmarks'
 *                 figures (a vDSO call, ~20 ns here).
 *   xi_coarse_ns  CLOCK_MONOTONIC_COARSE: bookkeeping that needs only
 *                 milliseconds (busy time of a pool), a few ns.
 * the thread's CPU clock (xi_thread_cpu_ns) for what the watchdog's own
 * work costs, and
 *   xi_ticks      the CPU's own counter (the invariant TSC on x86-64, the
 *                 virtual counter on AArch64; CLOCK_MONOTONIC where there
 *                 is neither): spans measured on one thread, the sampled
 *                 handler runs, at a third of a vDSO call's cost here
 *                 (11 ns against 28 ns on this KVM guest, whose
 *                 kvm-clock the vDSO reads); xi_ticks_ns turns a span of
 *                 ticks into ns.
 */
#ifndef XI_RUNTIME_CLOCK_H
#define XI_RUNTIME_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

static inline uint64_t xi_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t xi_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time the calling thread has used: what a piece of work costs,
   whatever the scheduler did meanwhile (a wall-clock span would count the
   time the thread was preempted). */
static inline uint64_t xi_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The counter xi_ticks reads, chosen once per process by xi_ticks_init
   (before any worker starts: the workers read these without a fence). */
extern bool xi_ticks_hw;      /* false: CLOCK_MONOTONIC, in ns */
extern double xi_ns_per_tick; /* measured against CLOCK_MONOTONIC */

/* Choose and calibrate the counter (about 200 us, once per process; a
   second call returns at once). */
void xi_ticks_init(void);

static inline uint64_t xi_ticks(void)
{
#if defined(__x86_64__)
    if (xi_ticks_hw) {
        uint32_t lo, hi;
        __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
        return (uint64_t)hi << 32 | lo;
    }
#elif defined(__aarch64__)
    if (xi_ticks_hw) {
        uint64_t v;
        __asm__ volatile("isb\n\tmrs %0, cntvct_el0" : "=r"(v) : : "memory");
        return v;
    }
#endif
    return xi_now_ns();
}

/* The ns in a span of ticks (end - start of two xi_ticks on one thread;
   0 if the counter went back, as an unsynchronised TSC can between
   cores). */
static inline uint64_t xi_ticks_ns(uint64_t start, uint64_t end)
{
    if (end <= start)
        return 0;
    return xi_ticks_hw ? (uint64_t)((double)(end - start) * xi_ns_per_tick)
                       : end - start;
}

/* now + delay, saturated: a delay past the end of the clock is "never". */
static inline uint64_t xi_deadline_after(uint64_t delay_ns)
{
    uint64_t now = xi_now_ns();
    return delay_ns > UINT64_MAX - now ? UINT64_MAX : now + delay_ns;
}

#endif /* XI_RUNTIME_CLOCK_H */
