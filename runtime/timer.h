/*
 * timer.h -- timers by callback over one min-heap of deadlines per worker.
 *
 * A timer is a deadline and two functions: `fire` runs on its worker once
 * the deadline has passed, `drop` when it will never fire (the runtime
 * stops, or the heap could not take it: `why` says which, XO_ECLOSED or
 * XO_ENOMEM). Either one owns the timer from then on (it is embedded in
 * whatever its owner needs: a delayed tell, a call's timeout; a heartbeat,
 * a watchdog tick, a GPU event poll later). The heap knows nothing of what
 * a timer is for.
 *
 * Only a heap's worker touches it. A timer armed from another thread is
 * handed over as a function item (`handover`, worker.c), which also wakes
 * the worker; a parked worker sleeps no longer than its earliest deadline.
 *
 * A binary heap rather than a wheel: timers here are few (one per delayed
 * message or timed call), insertion and removal are O(log n), and there is
 * no tick to run while idle.
 */
#ifndef XI_RUNTIME_TIMER_H
#define XI_RUNTIME_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xoscar/xoscar.h"
#include "../alloc/alloc.h"
#include "envelope.h"

struct xi_timer;
struct xi_worker;

typedef void (*xi_timer_fire_fn)(struct xi_timer *t, struct xi_worker *w);
typedef void (*xi_timer_drop_fn)(struct xi_timer *t, xo_runtime_t *rt,
                                 int why);

struct xi_timer {
    struct xi_func handover; /* from another thread to the worker */
    uint64_t deadline;       /* CLOCK_MONOTONIC ns (clock.h) */
    xi_timer_fire_fn fire;
    xi_timer_drop_fn drop;
    /* Optional: true when the timer should fire now rather than at its
       deadline (asked by xi_heap_hurry: a backoff at stop). */
    bool (*urgent)(struct xi_timer *t);
};

struct xi_timer_heap {
    struct xi_timer **v;
    size_t len, cap;
};

/* File t. XO_ENOMEM when the heap could not grow (t is not filed). */
int xi_heap_insert(struct xi_allocator *a, struct xi_timer_heap *h,
                   struct xi_timer *t);
/* The earliest timer if its deadline is <= now, taken out; else NULL. */
struct xi_timer *xi_heap_pop_due(struct xi_timer_heap *h, uint64_t now);
/* The earliest deadline, 0 when empty. */
uint64_t xi_heap_next(const struct xi_timer_heap *h);
/* Every timer whose urgent() says so becomes due now. O(n). */
void xi_heap_hurry(struct xi_timer_heap *h);
/* Take every timer out, calling each(t, arg), and free the array. */
void xi_heap_drain(struct xi_allocator *a, struct xi_timer_heap *h,
                   void (*each)(struct xi_timer *t, void *arg), void *arg);

#endif /* XI_RUNTIME_TIMER_H */
