/*
 * trace.h -- the trace (trace.c, docs/trace.md): a ring of events per
 * worker, and one shared by the threads that are not workers, turned on
 * and off at run time. Each hook below is one relaxed load and a branch
 * when the trace is off.
 *
 * Writing. A worker's ring has one writer, its worker; the shared ring's
 * writers take their slot with an atomic add. A writer announces itself
 * in the ring's `busy` count, then checks the on flag again (both seq_cst)
 * before it writes; xo_trace_stop clears the flag (seq_cst) and waits for
 * every `busy` to be 0, so that once it returns no write is under way and
 * xo_trace_write reads still memory.
 */
#ifndef XI_RUNTIME_TRACE_H
#define XI_RUNTIME_TRACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "xoscar/xoscar.h"

enum xi_trace_kind {
    XI_TR_SEND = 1,   /* a: envelope, b: target ref id, c: tag */
    XI_TR_TURN,       /* a: actor ref id, b: the definition's name */
    XI_TR_TURN_END,   /* a: actor ref id, c: messages consumed */
    XI_TR_MSG,        /* a: envelope, c: tag (a handler run starts) */
    XI_TR_PARK,
    XI_TR_WAKE,
    XI_TR_CALL,       /* a: future, b: callee ref id, c: tag */
    XI_TR_CALL_DONE,  /* a: future, c: status */
    XI_TR_FAIL,       /* a: actor ref id, c: error code */
    XI_TR_ALERT,      /* a: actor ref id, b: elapsed ns, c: alert kind */
};

struct xi_trace_ev {
    uint64_t ts;
    uint64_t a, b;
    uint32_t kind, c;
};

void xi_trace_record(xo_runtime_t *rt, enum xi_trace_kind kind, uint64_t a,
                     uint64_t b, uint32_t c);
/* Free the rings (xo_runtime_free). */
void xi_trace_free(xo_runtime_t *rt);

#define XI_TRACE(rt, kind, a, b, c)                                         \
    do {                                                                    \
        /* relaxed: the flag beside the runtime's state (runtime.h). */   \
        if (__builtin_expect(atomic_load_explicit(&(rt)->trace_on,         \
                                                  memory_order_relaxed),   \
                             0))                                            \
            xi_trace_record((rt), (kind), (uint64_t)(a), (uint64_t)(b),     \
                            (uint32_t)(c));                                 \
    } while (0)

#endif /* XI_RUNTIME_TRACE_H */
