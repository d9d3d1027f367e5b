/*
 * recovery.h -- what happens when an actor fails (recovery.c): restart in
 * place under an intensity limit and a backoff, monitors and their DOWN
 * messages, links and their EXIT signals; supervisors (supervisor.c) are
 * built on the same pieces. docs/recovery.md is the user's account.
 *
 * A failure is decided on the actor's worker, in its turn, after the
 * handler that failed returned (xi_recovery_failed): the failed
 * incarnation's on_destroy runs at once, its links fire, and then the
 * actor is restarted in place (state zeroed, on_create with the kept
 * argument, the ref, uid and queued messages unchanged), or suspended (a
 * backoff, or a supervisor's decision: its turn ends without the mailbox
 * being marked idle, so senders queue without scheduling it, until a timer
 * or the supervisor schedules it again), or it ends (unpublished; what is
 * left in its mailbox is refused: calls get XO_ENOTEXIST).
 *
 * Whatever lets another thread resume a suspended actor (arming its timer,
 * telling its supervisor) runs only once its turn is over
 * (xi_recovery_after_turn): no two turns of one actor ever overlap.
 *
 * Monitors and links live in one table under a mutex (struct
 * xi_relations), never on the send path: a cell's WATCHED flag says it is
 * in the table, and only the exit point and the failure path look.
 */
#ifndef XI_RUNTIME_RECOVERY_H
#define XI_RUNTIME_RECOVERY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xoscar/xoscar.h"
#include "cell.h"
#include "timer.h"
#include "worker.h"

struct xo_ctx;
struct xi_exit;
struct xi_worker;
struct xo_future;

/* A cell's rflags. */
enum {
    XI_CF_RECOVERY = 1u,     /* it has a recovery record */
    XI_CF_WATCHED = 2u,      /* the relation table may hold it */
    XI_CF_FAILED = 4u,       /* it failed for good and is ending */
    XI_CF_SUPERVISED = 8u,   /* a supervisor's child */
    XI_CF_TRAP = 16u,        /* trap_exits */
    XI_CF_CRASH = 32u,       /* crash_on_error */
    XI_CF_SELF_DESTROY = 128u, /* it destroyed itself */
};

/* What a suspended actor does when it is scheduled again. */
enum xi_resume {
    XI_RESUME_NONE = 0,
    XI_RESUME_RESTART,   /* restart (after its backoff, if it has one) */
    XI_RESUME_START,     /* on_create now (the state is zeroed already) */
    XI_RESUME_EXIT,      /* end, for the failure it keeps (or destroyed) */
};

/* A supervised child's hold state (rec->hold): HELD once its turn ended
   suspended with its old incarnation gone, waiting for its supervisor,
   which alone moves it back to RUNNING (a CAS) and schedules it. */
enum { XI_HOLD_RUNNING = 0, XI_HOLD_HELD = 1 };

/* What the turn owes once it is over (rec->after). */
enum {
    XI_AFTER_TIMER = 1u,      /* arm the backoff timer */
    XI_AFTER_REPORT = 2u,     /* tell the supervisor the child failed */
    XI_AFTER_HELD = 4u,       /* publish the hold, complete hold_f */
    XI_AFTER_RESCHEDULE = 8u, /* queue the actor again (a retry) */
};

struct xi_backoff_timer {
    struct xi_timer timer;
    struct xi_cell *cell;
};

/*
 * The recovery record of an actor that may be restarted or is supervised,
 * in its cell after the state and the argument (cell.h). Everything but
 * `restarts`, `hold`, `hold_f` and, while the actor is HELD, `pending` and
 * `resume_f` is its worker's alone.
 */
struct xi_recovery {
    uint8_t policy;         /* xo_restart_t */
    uint8_t pending;        /* enum xi_resume */
    uint8_t after;          /* XI_AFTER_* */
    bool reported_exit;     /* the report is of a self-destroy, not a failure */
    uint32_t max;           /* restart_max: the ring's length */
    uint32_t next;          /* where the next restart time goes */
    uint32_t filled;        /* times held in the ring, up to max */
    uint32_t backoff_step;  /* restarts in a row, each within a period */
    uint32_t jitter_pct;
    uint64_t period_ns, backoff_min_ns, backoff_max_ns;
    uint64_t last_ns;       /* the last restart */
    uint64_t rng;           /* the jitter's state */
    /* Incarnations after the first: xo_actor_stats, and the staleness
       test of link signals and continuations (relaxed: a count). */
    _Atomic uint64_t restarts;
    uint64_t sup_id;        /* the supervisor (0: none) */
    /* The failure being decided, or the one the actor will end with. */
    int fail_code;
    xo_exit_reason_t fail_reason;
    char *fail_msg;         /* owned */
    _Atomic uint32_t hold;  /* XI_HOLD_*, supervised only */
    /* A supervisor's hold request, completed by the hold or a failure. */
    _Atomic(struct xo_future *) hold_f;
    struct xo_future *resume_f; /* completed once a START is done */
    struct xo_future *hold_taken; /* a hold being settled by this turn */
    /* Supervised: the report of its next failure and the notice of its
       end, made in advance (a failure never waits for memory). */
    struct xi_envelope *report, *gone;
    /* Armed by the turn that suspended it; its firing resumes it. */
    struct xi_backoff_timer backoff_t;
    /* What resumes a suspended actor (kind RESUME): scheduled in place of
       its run item, so that a turn never tests whether it was suspended. */
    struct xi_item resume_item;
    uint64_t ring[];        /* the last `max` restart times */
};

static inline struct xi_recovery *xi_cell_recovery(struct xi_cell *c)
{
    return (struct xi_recovery *)(void *)(c->state +
                                          xi_cell_recovery_offset(
                                              c->def, c->arg_size));
}

static inline uint8_t xi_cell_rflags(const struct xi_cell *c)
{
    /* relaxed: bits its own worker set, or WATCHED, which the exit point
       reads after a grace period (that orders it). */
    return atomic_load_explicit(&((struct xi_cell *)c)->rflags,
                                memory_order_relaxed);
}

static inline void xi_cell_set_rflags(struct xi_cell *c, uint8_t bits)
{
    atomic_fetch_or_explicit(&c->rflags, bits, memory_order_relaxed);
}

/* The actor a RESUME item belongs to. */
static inline struct xi_cell *xi_recovery_item_cell(struct xi_item *it)
{
    return xi_container_of(it, struct xi_recovery, resume_item)
        ->backoff_t.cell;
}

/* Resume a suspended actor (its `pending` set): whoever resumes it (its
   timer, its supervisor, the turn that decided a retry) owns it until
   then. */
static inline void xi_recovery_wake(struct xi_cell *c)
{
    xi_schedule_item(c, &xi_cell_recovery(c)->resume_item);
}

/* The incarnation: restarts so far (0 for an actor without a record). */
static inline uint64_t xi_cell_incarnation(struct xi_cell *c)
{
    if (!(xi_cell_rflags(c) & XI_CF_RECOVERY))
        return 0;
    return atomic_load_explicit(&xi_cell_recovery(c)->restarts,
                                memory_order_relaxed);
}

/* ---- spawn ----------------------------------------------------------- */

/* The spawn's recovery options are valid for def (XO_EINVAL otherwise). */
int xi_recovery_check(const xo_actor_def_t *def, const xo_spawn_opts_t *o);
/* Bytes the record takes (0: none), for a spawn with these options. */
size_t xi_recovery_size(const xo_spawn_opts_t *o, bool supervised);
/* Fill the record and the flags of a new cell (its memory is zeroed). */
void xi_recovery_init(struct xi_cell *c, const xo_spawn_opts_t *o,
                      uint64_t sup_id);
/* A cell going away: free what its record owns. */
void xi_recovery_cell_free(struct xi_cell *c);

/* ---- the turn -------------------------------------------------------- */

/* Inside a handler run that failed the actor (code < 0; message owned or
   NULL): decide; ctx->suspend tells the turn to stop here. */
void xi_recovery_failed(struct xo_ctx *ctx, int code, char *message);
/* End c from outside its turns for a failure that is not its own (its
   GPU pool's device failed): it handles what it had accepted, then
   on_destroy runs; its links fire and its monitors see reason, code and
   text (copied). Not restarted. Inside a read-side section, c resolved
   live. False when another end came first (or the runtime stops and its
   sweep ends c). */
bool xi_recovery_end(xo_runtime_t *rt, struct xi_cell *c,
                     xo_exit_reason_t reason, int code, const char *text);
/* Fail the actor now, from the runtime's own handler code (a supervisor
   past its intensity), as xo_crash would. */
void xi_recovery_fail_now(struct xo_ctx *ctx, int reason, int code,
                          const char *text);
/* The turn of a resumed actor starts: carry out rec->pending. */
void xi_recovery_resume(struct xo_ctx *ctx);
/* A SIGNAL envelope reached the front of the mailbox (consumed). */
void xi_recovery_signal(struct xo_ctx *ctx, struct xi_envelope *env);
/* The turn that suspended the actor is over and touches it no more. */
void xi_recovery_after_turn(struct xi_worker *w, struct xi_cell *c);
/* A self-destroyed ALWAYS actor reached its reap after on_destroy: put it
   back and restart it. True when it lives on (ctx->suspend: held). */
bool xi_recovery_reap_restart(struct xo_ctx *ctx);

/* ---- the exit point and stop ------------------------------------------ */

/* The actor ended (its WATCHED or SUPERVISED flag is set). */
void xi_recovery_exit(xo_runtime_t *rt, struct xi_cell *c,
                      const struct xi_exit *why);
/* xo_runtime_stop, after closing, before the sweep: every monitor not yet
   fired gives DOWN (XO_EXIT_STOPPING) to its watcher. */
void xi_recovery_stopping(xo_runtime_t *rt);

/* ---- the relation table -------------------------------------------- */

struct xi_hent {
    uint64_t key;
    struct xi_hent *next;
};

struct xi_hmap {
    struct xi_hent **b;
    size_t mask, len; /* buckets - 1 */
};

struct xi_relations {
    pthread_mutex_t lock;
    struct xi_hmap nodes;    /* actor id -> struct xi_rnode */
    struct xi_hmap monitors; /* monitor id -> struct xi_mon */
    uint64_t next_monitor;
    bool swept;              /* stop's DOWNs were given */
};

int xi_relations_init(struct xi_relations *r);
void xi_relations_fini(xo_runtime_t *rt, struct xi_relations *r);

/* ---- internal sends -------------------------------------------------- */

/* A SIGNAL envelope for `tag` with `size` bytes of payload. */
int xi_signal_new(xo_runtime_t *rt, uint32_t tag, size_t size,
                  struct xi_envelope **out);
/* Push a SIGNAL (or internal call) to a live stateful actor, past any
   capacity. While the runtime stops, only with `closing_ok` (the caller
   knows the target's end is not queued yet). On error the caller keeps
   env. */
int xi_signal_push(xo_runtime_t *rt, uint64_t to_id, struct xi_envelope *env,
                   bool closing_ok);

/* Internal tags (above XO_TAG_RESERVED, never a user's). */
#define XI_TAG_LINK 0xFFFFFF10u       /* a linked actor failed */
#define XI_TAG_CHILD 0xFFFFFF11u      /* a supervised child failed */
#define XI_TAG_CHILD_GONE 0xFFFFFF12u /* a supervised child ended */
#define XI_TAG_HOLD 0xFFFFFF13u       /* a supervisor holds its child */
#define XI_TAG_SUP_ADD 0xFFFFFF14u    /* supervisor calls */
#define XI_TAG_SUP_REMOVE 0xFFFFFF15u
#define XI_TAG_SUP_LIST 0xFFFFFF16u

struct xi_sig_child {
    uint64_t child;
    uint64_t incarnation;
    int code;
    bool exited;   /* it destroyed itself (a permanent child) */
};

/* ---- supervisor.c ---------------------------------------------------- */

/* Spawn with the recovery fields a supervisor sets on its children. */
int xi_spawn_child(xo_runtime_t *rt, const xo_actor_def_t *def,
                   const xo_spawn_opts_t *opts, uint64_t sup_id,
                   xo_ref_t *out);
/* A supervisor's turn reached a child's report or exit notice (an
   XI_TAG_CHILD or XI_TAG_CHILD_GONE signal; consumed). */
void xi_sup_signal(struct xo_ctx *ctx, struct xi_envelope *env);

#endif /* XI_RUNTIME_RECOVERY_H */
