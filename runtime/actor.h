/*
 * actor.h -- an actor's life (actor.c): spawn and publication, destroy
 * (unpublish, then a reap marker behind the mailbox), the reap on the
 * actor's worker, and the one exit point every actor's end goes through.
 */
#ifndef XI_RUNTIME_ACTOR_H
#define XI_RUNTIME_ACTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "xoscar/xoscar.h"

struct xi_cell;
struct xo_ctx;

/* Why an actor ends. Kept in its reap marker's flags from the moment its
   end is decided (the unpublish) until the exit point reads it. */
enum xi_exit_kind {
    XI_EXIT_DESTROYED = 1, /* xo_destroy, by another actor or itself */
    XI_EXIT_FAILED,        /* on_create failed, or the actor failed and
                              was not restarted (code: the failure's) */
    XI_EXIT_RESTART_INTENSITY, /* it failed past its restart intensity */
    XI_EXIT_POOL_REMOVED,  /* its home pool was removed */
    XI_EXIT_STOPPING,      /* the runtime stops */
    XI_EXIT_NODE_LOST,     /* its node is gone (the net layer's) */
    XI_EXIT_DEVICE_FAILED = 8, /* its GPU pool's device failed (gpu/) */
};

struct xi_exit {
    enum xi_exit_kind kind;
    int code;              /* FAILED: the error; 0 otherwise */
    const char *message;   /* an xo_fail text, or NULL */
};

/*
 * The exit seam: called once per actor, on its worker, after on_destroy
 * (or instead of it) and after the actor is unreachable, with why it
 * ended. Monitors, links and supervisors are told there first
 * (recovery.c, for cells flagged WATCHED or SUPERVISED); then the
 * runtime's one hook (runtime.h, exit_hook), NULL by default, for the
 * layers above.
 */
typedef void (*xi_exit_hook_fn)(xo_runtime_t *rt, xo_ref_t actor,
                                const struct xi_exit *why, void *arg);

/* Worker: the reap marker reached the front (or a stateless actor's last
   task ended): run on_destroy, then exit, or revive on refusal. True when
   the actor is gone. */
bool xi_cell_reap(struct xi_cell *c, struct xo_ctx *ctx);
/* Inside a read-side section, runtime open: end c without waiting for it
   (false if another end won). */
bool xi_cell_unpublish(xo_runtime_t *rt, struct xi_cell *c,
                       enum xi_exit_kind why);
/* The same, with the failure's code (recovery: an actor that fails for
   good). */
bool xi_cell_end(xo_runtime_t *rt, struct xi_cell *c, enum xi_exit_kind why,
                 int code);
/* The same, with a destroyer's future to complete at the exit (a
   supervisor stopping its child; also while the runtime stops, for a
   supervised child, which the sweep leaves to its supervisor). */
bool xi_cell_stop(xo_runtime_t *rt, struct xi_cell *c, struct xo_future *f,
                  enum xi_exit_kind why);
/* Reap: make an unpublished actor reachable again (false while stopping or
   when its pool leaves). */
bool xi_cell_revive(xo_runtime_t *rt, struct xi_cell *c);
/* Stop: unpublish every live actor and queue its reap marker. */
void xi_actors_close_all(xo_runtime_t *rt);
/* A stateless task finished: drop its in-flight count. */
void xi_stateless_task_done(struct xi_cell *c);

#endif /* XI_RUNTIME_ACTOR_H */
