/*
 * watchdog.h -- the runtime's watchdog thread (watchdog.c): slow handlers,
 * stuck turns, slow calls and backlogged mailboxes, reported through
 * cfg.on_alert; the oldest-message ages of the stats; the dump; and the
 * clock of the shared-memory snapshot. docs/observability.md.
 */
#ifndef XI_RUNTIME_WATCHDOG_H
#define XI_RUNTIME_WATCHDOG_H

#include <stdbool.h>
#include <stdint.h>

#include "xoscar/xoscar.h"

struct xi_cell;
struct xo_future;

/* A thread outside the runtime waiting for a call (wait.c registers it
   before it sleeps; the entry lives on the waiter's stack). */
struct xi_outside_wait {
    struct xi_outside_wait *prev, *next;
    uint64_t callee_id;
    uint64_t since;      /* xi_now_ns */
    unsigned reported;   /* multiples of cfg.slow_call_ns reported */
};

/* Start the thread (after the pools: it reads them); 0 or XO_ENOMEM. No
   thread when cfg.watch_tick_ns is 0. */
int xi_watchdog_start(xo_runtime_t *rt);
/* Stop and join it (stop, once no actor is left), and free it. */
void xi_watchdog_stop(xo_runtime_t *rt);
/* Free it (xo_runtime_free). */
void xi_watchdog_free(xo_runtime_t *rt);
/* Whether the calling thread is rt's watchdog (an on_alert callback). */
bool xi_watchdog_is_current(xo_runtime_t *rt);
/* The counters xo_runtime_stats reports. */
void xi_watchdog_counts(xo_runtime_t *rt, xo_runtime_stats_t *out);

/* A wait of an outside thread begins and ends (no-ops without a
   watchdog). */
void xi_outside_wait_begin(xo_runtime_t *rt, struct xi_outside_wait *ow,
                           uint64_t callee_id);
void xi_outside_wait_end(xo_runtime_t *rt, struct xi_outside_wait *ow);

#endif /* XI_RUNTIME_WATCHDOG_H */
