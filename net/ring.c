/*
 * ring.c -- ck_ring's operations out of line, for the ThreadSanitizer
 * build only (ring.h says why). CMakeLists.txt compiles this file without
 * TSan's instrumentation; every other build inlines them from ring.h.
 */
#include "ring.h"

#ifdef XI_RING_OUT_OF_LINE
bool xi_ring_push_raw(struct xi_ring *r, const struct xi_sendq_entry *e)
{
    return ck_ring_enqueue_mpsc_xi_sendq(&r->ring, r->buf,
                                         (struct xi_sendq_entry *)e);
}

bool xi_ring_pop_raw(struct xi_ring *r, struct xi_sendq_entry *e)
{
    return ck_ring_dequeue_mpsc_xi_sendq(&r->ring, r->buf, e);
}

unsigned xi_ring_count_raw(struct xi_ring *r)
{
    return ck_ring_size(&r->ring);
}
#else
typedef int xi_ring_empty_unit; /* ISO C wants a declaration */
#endif
