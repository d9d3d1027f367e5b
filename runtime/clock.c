/*
 * clock.c -- choosing the counter behind xi_ticks (clock.h).
 *
 * x86-64: the TSC, where CPUID says it is invariant (it ticks at one rate
 * whatever the core's frequency and sleep states), its rate measured
 * against CLOCK_MONOTONIC over 200 us. AArch64: the virtual counter,
 * whose rate CNTFRQ_EL0 gives. Anything else, or a measurement that makes
 * no sense: CLOCK_MONOTONIC itself.
 */
#include "clock.h"

#include <pthread.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

bool xi_ticks_hw;
double xi_ns_per_tick = 1.0;

static pthread_once_t ticks_once = PTHREAD_ONCE_INIT;

#define XI_CALIBRATE_NS 200000u

#if defined(__x86_64__)
static bool tsc_invariant(void)
{
    unsigned a, b, c, d;
    /* CPUID 0x80000007 EDX bit 8: invariant TSC. */
    if (__get_cpuid_max(0x80000000u, NULL) < 0x80000007u)
        return false;
    __cpuid(0x80000007u, a, b, c, d);
    (void)a, (void)b, (void)c;
    return (d >> 8) & 1u;
}
#endif

static void choose(void)
{
#if defined(__x86_64__)
    if (!tsc_invariant())
        return;
    xi_ticks_hw = true; /* xi_ticks reads the TSC from here on */
    uint64_t n0 = xi_now_ns(), t0 = xi_ticks(), n1, t1;
    do {
        n1 = xi_now_ns();
        t1 = xi_ticks();
    } while (n1 - n0 < XI_CALIBRATE_NS);
    double per = t1 > t0 ? (double)(n1 - n0) / (double)(t1 - t0) : 0;
#elif defined(__aarch64__)
    uint64_t freq;
    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(freq));
    double per = freq != 0 ? 1e9 / (double)freq : 0;
#else
    double per = 0;
#endif
    /* Between 10 GHz and 10 MHz, or not at all. */
    if (per >= 0.1 && per <= 100.0) {
        xi_ns_per_tick = per;
        xi_ticks_hw = true;
    } else {
        xi_ticks_hw = false;
        xi_ns_per_tick = 1.0;
    }
}

void xi_ticks_init(void)
{
    pthread_once(&ticks_once, choose);
}
