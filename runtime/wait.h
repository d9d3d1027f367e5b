/*
 * wait.h -- nested waits: a handler that blocks (on a future, a stream, a
 * destroy) or yields lends its worker to what is queued behind it, nested
 * on the same stack, and every such suspended turn is a frame the cycle
 * check of blocking waits follows (wait.c).
 */
#ifndef XI_RUNTIME_WAIT_H
#define XI_RUNTIME_WAIT_H

#include <stdbool.h>
#include <stdint.h>

struct xi_cell;
struct xi_worker;
struct xo_future;

/* Frames of suspended turns on w's stack; push is false when
   XO_MAX_NESTED_WAITS are there already. */
bool xi_frame_push(struct xi_worker *w, struct xi_cell *c);
void xi_frame_pop(struct xi_worker *w);

/*
 * Wait until f's flags differ from `seen` in `mask` (DONE for a call, a
 * part or the end for a stream), for at most timeout_ns (negative: no
 * limit; 0: just look). In a handler of f's runtime the wait is an edge of
 * the wait-for graph, refused with XO_EDEADLK when it closes a cycle; on
 * one of the runtime's workers the worker runs other turns meanwhile, at
 * most XO_MAX_NESTED_WAITS deep (XO_EDEPTH beyond). Anywhere else (an
 * outside thread, on_create run by one) it sleeps on the future's futex
 * word.
 */
int xi_wait_change(struct xo_future *f, uint32_t seen, uint32_t mask,
                   int64_t timeout_ns);

#endif /* XI_RUNTIME_WAIT_H */
