/*
 * shm.h -- the shared-memory stats snapshot (shm.c): made at start when
 * cfg.stats_shm is set, refreshed by the watchdog every cfg.stats_shm_ns,
 * unlinked at stop. Its format, and the reader's side, are in
 * include/xoscar/xoscar_shm.h; docs/top.md tells the whole story.
 *
 * Concurrency: xi_shm_open runs on the thread that starts the runtime and
 * publishes the first snapshot before it hands the segment to the watchdog
 * (rt->shm, release); from then on the watchdog's thread is the only
 * writer, until xi_shm_close (stop, after the watchdog was joined).
 */
#ifndef XI_RUNTIME_SHM_H
#define XI_RUNTIME_SHM_H

#include <stddef.h>

#include "xoscar/xoscar.h"
#include "xoscar/xoscar_shm.h"

struct xi_shm;

/* Make the segment and publish the first snapshot. 0, or XO_ENOMEM (no
   memory, no room in /dev/shm, no file descriptor left) or XO_ESYSTEM
   (another failure of the system calls: /dev/shm missing, not
   permitted), having left nothing behind. Does nothing (0) without
   cfg.stats_shm. */
int xi_shm_open(xo_runtime_t *rt);
/* Gather the stats and publish them (the watchdog's thread). */
void xi_shm_publish(xo_runtime_t *rt);
/* Publish XO_SHM_STOPPED, unlink the segment, unmap it and free what it
   held. A no-op when there is none. */
void xi_shm_close(xo_runtime_t *rt);
/* The name it is published under ("/xoscar-<pid>", maybe "-<n>"), or
   NULL. */
const char *xi_shm_name(const xo_runtime_t *rt);

/* The words of one publish, copied under the seqlock into a mapping laid
   out as xoscar_shm.h says: the pool and actor records first, then the
   header's words from `bytes` on (so the cost it carries covers the
   records' copy). `h` is the new header; the records are contiguous
   arrays of h->npools and h->nactors. The tests drive it directly. */
void xi_shm_store(void *map, const xo_shm_header_t *h,
                  const xo_shm_pool_t *pools, const xo_shm_actor_t *actors);

/* Test hook: every run of `step` from now fails with errno `err`, as if
   the system (or the allocator) had refused it, until called again with
   err 0. */
enum xi_shm_step {
    XI_SHM_STEP_ALLOC = 1, /* the segment's bookkeeping (xi_mem_alloc) */
    XI_SHM_STEP_OPEN,      /* shm_open */
    XI_SHM_STEP_SIZE,      /* sizing the new file (posix_fallocate) */
    XI_SHM_STEP_MAP,       /* mmap */
    XI_SHM_STEP_GROW,      /* growing it for more actors (a publish) */
    XI_SHM_STEPS
};
void xi_shm_fail_step(enum xi_shm_step step, int err);

#endif /* XI_RUNTIME_SHM_H */
