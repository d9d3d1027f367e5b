/*
 * clock.h -- the runtime's two clocks, in one place.
 *
 *   xi_now_ns     CLOCK_MONOTONIC: deadlines, timeouts, the benchmarks'
 *                 figures (a vDSO call, ~20 ns here).
 *   xi_coarse_ns  CLOCK_MONOTONIC_COARSE: bookkeeping that needs only
 *                 milliseconds (busy time of a pool), a few ns.
 * and the thread's CPU clock (xi_thread_cpu_ns) for what the watchdog's
 * own work costs.
 */
#ifndef XI_RUNTIME_CLOCK_H
#define XI_RUNTIME_CLOCK_H

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

/* now + delay, saturated: a delay past the end of the clock is "never". */
static inline uint64_t xi_deadline_after(uint64_t delay_ns)
{
    uint64_t now = xi_now_ns();
    return delay_ns > UINT64_MAX - now ? UINT64_MAX : now + delay_ns;
}

#endif /* XI_RUNTIME_CLOCK_H */
