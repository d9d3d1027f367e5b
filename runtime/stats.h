/*
 * stats.h -- what the runtime counts about its actors and workers, kept
 * cheap enough to stay on (docs/observability.md, "Cost").
 *
 * Per actor: `handled` on the cell's worker line (every handler run; a
 * load and a store, an atomic add for a stateless actor, whose tasks run
 * on several workers at once), the
 * mailbox's `sent` on the senders' line (every push), and the rest in a
 * stats block (struct xi_obs) that the actor's first turn makes: failures,
 * turns, the deepest mailbox seen at a turn start, what the watchdog
 * measured (the oldest message's age, alerts), when a blocking wait began,
 * and the sampled handler-time histogram (its own block, made by the first
 * sampled turn). The block is made the first time one of those has
 * something to keep: an actor whose mailbox never held more than the
 * message it handles, that never failed, waited or was sampled, has none,
 * and its turns touch no line beyond the cell's.
 *
 * Mailbox depth is sent - handled, read at a turn's start and by the
 * watchdog. `sent` is bumped by a relaxed load and store, not an atomic
 * add (which costs every send a locked instruction): two senders racing
 * may lose a count, and a call skipped unstarted is never handled, so the
 * worker puts `sent` back to `handled` each time it marks the mailbox idle
 * (the only moment it knows the depth is 0). The message being handled
 * counts until its handler returns.
 *
 * Per worker (struct xi_wobs, its own line, the worker writes it): turns
 * (turn_seq), turns of other pools' actors, parks, wakes, run-queue items
 * taken, steals, and what the watchdog samples: the running actor, the tag
 * of its message, and a sequence bumped when a handler's wait starts and
 * ends. The watchdog needs no clock on the hot path: a handler run is
 * named by the turn (turn_seq), that sequence and, within a stateful
 * actor's turn, the actor's `handled` count (bumped as each message is
 * done with); the same name at two of its looks is a handler that has run
 * at least that long.
 */
#ifndef XI_RUNTIME_STATS_H
#define XI_RUNTIME_STATS_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "xoscar/xoscar.h"
#include "common.h"

/* Built with -DXO_NO_STATS (cmake -DXO_STATS=OFF), the hot-path counting
   is compiled out: the baseline docs/performance.md measures the stats
   against. The snapshot API then reports zeros for what it did not
   count. */
#ifdef XO_NO_STATS
#define XI_STATS 0
#else
#define XI_STATS 1
#endif

struct xi_cell;
struct xi_worker;

struct xi_hist {
    _Atomic uint64_t samples, sum_ns;
    _Atomic uint64_t b[XO_HIST_BUCKETS];
};

struct xi_obs {
    _Atomic uint64_t failed;
    _Atomic uint64_t mbox_high;     /* xi_note_depth */
    _Atomic uint64_t oldest_age_ns; /* the watchdog writes it */
    _Atomic uint64_t alerts;        /* the watchdog writes it */
    _Atomic uint64_t wait_since;    /* xi_now_ns at a blocking wait's
                                       start; 0: none */
    _Atomic(struct xi_hist *) hist;
};

/* The watchdog's view of a worker: written by the worker, read by the
   watchdog (relaxed; it reads seq before and after the rest and drops a
   look that straddled a change). */
struct xi_wobs {
    alignas(XI_CACHELINE) _Atomic uint64_t seq; /* waits started and
                                                   ended in handlers */
    _Atomic uint64_t turn_seq;  /* turn starts: the pool's turns */
    _Atomic uint64_t actor;     /* ref id of the turn's actor; 0: none
                                   (idle, or waiting in a handler) */
    _Atomic uint32_t tag;       /* the handler run's message tag */
    /* Handler timing (the worker's own, never read elsewhere): the turns
       left until the next timed one, and the mean gap between timed turns
       (cfg.handler_sample; 0: none) with the state of the gaps' spread. */
    uint32_t sample_left, sample_every;
    uint64_t sample_rng;
    /* Counters (single writer). */
    _Atomic uint64_t parks, wakes, runq_taken;
    /* Turns of actors whose home is another pool (movable actors that ran
       here). */
    _Atomic uint64_t shared;
    /* Movable actors this worker took from other workers' local queues
       (single writer: the thief). */
    _Atomic uint64_t steals;
};

/* The stats block of c, made now if need be (NULL when memory is short:
   the counters it holds are skipped this time). Any thread running c. */
struct xi_obs *xi_obs_make(xo_runtime_t *rt, struct xi_cell *c);
/* Add a handler run of ns (count runs of ns/count each: an on_batch
   run) to o's histogram, made if need be. `shared`: other threads may
   add to it meanwhile (a stateless actor's tasks; xi_count). */
void xi_hist_add(xo_runtime_t *rt, struct xi_obs *o, uint64_t ns,
                 unsigned count, bool shared);
/* A mailbox deeper than one (the turn's own message): keep the deepest
   seen. Called where a backlog shows (a turn that ended with more waiting,
   the watchdog's scan). */
void xi_note_depth(xo_runtime_t *rt, struct xi_cell *c, uint64_t depth);
/* Free c's stats blocks (the cell is going). */
void xi_obs_free(xo_runtime_t *rt, struct xi_cell *c);
/* Messages waiting in c's mailbox now (any thread, approximate). */
uint64_t xi_cell_depth(const struct xi_cell *c);
/* Fill the stats of a live cell (inside a read-side section). */
void xi_cell_stats(const struct xi_cell *c, xo_actor_stats_t *out);
/* The definition's name for reports ("?" when it has none). */
const char *xi_def_name(const struct xi_cell *c);

/* The gap to the worker's next timed turn, drawn at random around
   cfg.handler_sample so that a graph whose turns repeat with a period
   (a ring of N actors on one worker) is sampled across all its actors:
   uniform in [1, 2 * every - 1], every turn for 1, never for 0. Returns
   whether the turn that drew it is timed. */
bool xi_sample_next(struct xi_wobs *o);

#endif /* XI_RUNTIME_STATS_H */
