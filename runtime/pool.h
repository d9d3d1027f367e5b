/*
 * pool.h -- pools: the unit of placement (index, kind, state, labels, live
 * actors) and its kind's operations. A pool runs on one worker (worker.h);
 * the kind says how that worker's thread starts and stops, what it does
 * before it parks, how it is woken and what xo_pool_info adds. A CPU pool
 * is the only kind built in; a GPU pool (one host thread owning a stream)
 * or an I/O pool fills in the same table and touches nothing else.
 *
 * A kind built outside runtime/ (the GPU layer) comes through struct
 * xi_pool_kind: pool.c asks it to make, label and free its pools, and
 * runtime/ names nothing of it but xi_gpu_pool_kind. Only CPU pools are
 * general: they run other pools' movable actors and stateless tasks, and
 * take the actors placed without a label.
 *
 * The pool table (pool.c) is an array of XO_POOLS_MAX pool pointers,
 * append-only, indexes never reused: any thread reads row i with one
 * acquire load and no lock. A removed pool keeps its row and its structs
 * until xo_runtime_free. Placement (placement.c) turns a spawn's
 * xo_placement_t into a pool index.
 */
#ifndef XI_RUNTIME_POOL_H
#define XI_RUNTIME_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "xoscar/xoscar.h"

struct xi_pool;
struct xi_worker;

struct xi_pool_ops {
    const char *name;
    /* Start the pool's worker thread. 0, or an XO_E* code. */
    int (*start)(struct xi_pool *p);
    /* Ask the worker to exit once it reaches the request, and join it. */
    void (*stop)(struct xi_pool *p);
    /* Worker, before it parks: the kind's own work (a device to poll).
       True when that found something to do (then it does not park).
       NULL: nothing to poll. */
    bool (*poll)(struct xi_pool *p);
    /* Wake the pool's worker from its sleep. */
    void (*wake)(struct xi_pool *p);
    /* Fill the kind's fields of xo_pool_info. */
    void (*info)(const struct xi_pool *p, xo_pool_info_t *out);
    /* The kind's worker runs movable actors of any pool: it keeps those a
       send from it makes runnable, and steals them from busy workers when
       idle (docs/scheduler.md, "Locality"). False for a worker that must
       not run general CPU work (a GPU stream thread). */
    bool runs_movable;
};

struct xi_pool {
    unsigned index;
    xo_pool_kind_t kind;
    const struct xi_pool_ops *ops;
    /* xo_pool_state_t: written under the runtime's pools_lock; read by
       placement and scheduling (acquire). */
    _Atomic int state;
    char *labels;                /* the kind's label, then the user's */
    /* Live actors whose home it is (spawn adds, the reap subtracts). */
    _Atomic uint64_t actors;
    struct xi_worker *worker;
    bool joinable;               /* under pools_lock: its thread runs and
                                    nobody has taken the join yet */
    const struct xi_pool_kind *ext; /* NULL: the CPU kind */
    void *kind_data;             /* the kind's own (a GPU pool's stream) */
};

/* A general pool (its kind runs movable actors: a CPU pool) runs other
   pools' work and takes the actors placed without a label. */
static inline bool xi_pool_general(const struct xi_pool *p)
{
    return p->ops->runs_movable;
}

/*
 * A pool kind that lives outside runtime/. make and unmake run under
 * pools_lock (or before the runtime is shared).
 */
struct xi_pool_kind {
    const struct xi_pool_ops *ops;
    /* Check spec and make the kind's part of the new pool p (its
       kind_data); *label: the kind's labels ("gpu,gpu:0"), valid until
       unmake. 0, or an XO_E* code (then p is freed without unmake). */
    int (*make)(xo_runtime_t *rt, struct xi_pool *p,
                const xo_pool_spec_t *spec, const char **label);
    /* Free what make made: the pool never started, or it was joined. */
    void (*unmake)(xo_runtime_t *rt, struct xi_pool *p);
    /* The pools the config asks for at start: up to max specs. */
    int (*start_specs)(xo_runtime_t *rt, xo_pool_spec_t *specs,
                       unsigned max, unsigned *n);
    /* xo_runtime_free, after every pool was freed. */
    void (*free)(xo_runtime_t *rt);
};

/* The GPU layer's kind (gpu/pool.c). */
const struct xi_pool_kind *xi_gpu_pool_kind(void);

static inline bool xi_pool_running(const struct xi_pool *p)
{
    /* acquire: pairs with the state store under pools_lock. */
    return atomic_load_explicit(&((struct xi_pool *)p)->state,
                                memory_order_acquire) == XO_POOL_RUNNING;
}

/* Its worker still runs (running, or being removed). */
static inline bool xi_pool_alive(const struct xi_pool *p)
{
    /* acquire: as xi_pool_running. */
    return atomic_load_explicit(&((struct xi_pool *)p)->state,
                                memory_order_acquire) != XO_POOL_REMOVED;
}

/* The built-in kind. */
extern const struct xi_pool_ops xi_cpu_pool_ops;

int xi_pools_start(xo_runtime_t *rt, const xo_pool_spec_t *specs,
                   unsigned n);
void xi_pools_join(xo_runtime_t *rt);
void xi_pools_free(xo_runtime_t *rt);
/* Recompute every worker's core_shared and core_mate. Under pools_lock,
   or before the runtime is shared. */
void xi_pools_update_sharing(xo_runtime_t *rt);
/* Does the pool carry `label`? */
bool xi_pool_has_label(const struct xi_pool *p, const char *label);
/* How busy a pool's worker is: 0 parked, 1 awake and idle, 2 running,
   3 with work queued, 4 both (pool.c). */
unsigned xi_pool_busy_level(const struct xi_pool *p);

/* ---- placement (placement.c) --------------------------------------- */

/* An idle-label claim: (label, mark) held by one live actor. */
struct xi_claim {
    struct xi_claim *next;
    unsigned pool;
    char *label, *mark;
};

/* Choose the home pool of a new actor (claim: an idle-label reservation
   the cell keeps until it is reaped). */
int xi_place(xo_runtime_t *rt, const xo_actor_def_t *def,
             const xo_spawn_opts_t *opts, unsigned *pool,
             struct xi_claim **claim);
void xi_claim_release(xo_runtime_t *rt, struct xi_claim *claim);
/* Free every claim left (xo_runtime_free). */
void xi_claims_free(xo_runtime_t *rt);

#endif /* XI_RUNTIME_POOL_H */
