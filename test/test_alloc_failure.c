/*
 * Out of memory: fail each allocation of spawn and send in turn (through the
 * allocator's test hook) and check that the caller gets XO_ENOMEM, that
 * nothing half-made stays behind (uid free, no actor, no message), and that
 * the runtime goes on working.
 */
#include "support.h"

#include "runtime/runtime.h"

enum { PING = 1 };

/* Counting through support.h's counting actor. */

Test(alloc_failure, each_failed_allocation_in_spawn_gives_enomem_and_leaves_nothing)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.uid = "named";
    int failures = 0;
    /* Allocation k of a named spawn fails, k = 1, 2, ... until one succeeds
       with the hook still armed (it has fewer than k allocations). */
    for (long k = 1;; k++) {
        xi_mem_fail_after(&rt->mem, k);
        xo_ref_t r = XO_REF_NONE, found;
        int rc = xo_spawn(rt, &counting_def, &opts, &r);
        xi_mem_fail_after(&rt->mem, 0);
        if (rc == 0)
            break;
        failures++;
        cr_assert_eq(rc, XO_ENOMEM, "allocation %ld: %s", k, xo_strerror(rc));
        cr_assert(xo_ref_is_none(r));
        cr_assert_eq(xo_lookup(rt, "named", &found), XO_ENOTEXIST,
                     "allocation %ld: uid left free", k);
        cr_assert_lt(k, 10, "spawn makes only a few allocations");
    }
    cr_assert_geq(failures, 2, "the cell and the name allocations were hit");
    xo_ref_t r;
    cr_assert_eq(xo_lookup(rt, "named", &r), 0);
    cr_assert_eq(xo_tell(r, PING, NULL, 0), 0, "the runtime still works");
    xo_pool_info_t info;
    cr_assert_eq(xo_pool_info(rt, 0, &info), 0);
    cr_assert_eq(info.actors, 1, "no half-made actor is counted");
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&counted_messages), 1);
    cr_assert_eq(atomic_load(&counted_destroys), 1);
}

Test(alloc_failure, first_spawn_of_a_new_slot_segment_fails_cleanly)
{
    xo_runtime_t *rt = start_runtime(1);
    /* The very first spawn also allocates the first slot segment: fail the
       third allocation (cell, name, segment). */
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.uid = "first";
    xi_mem_fail_after(&rt->mem, 3);
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &counting_def, &opts, &r), XO_ENOMEM);
    cr_assert_eq(xo_spawn(rt, &counting_def, &opts, &r), 0);
    cr_assert_eq(xo_tell(r, PING, NULL, 0), 0);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&counted_messages), 1);
}

Test(alloc_failure, failed_tell_gives_enomem_and_delivers_nothing)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &counting_def, NULL, &r), 0);
    xi_mem_fail_after(&rt->mem, 1);
    cr_assert_eq(xo_tell(r, PING, "x", 1), XO_ENOMEM);
    xo_msg_t *m = NULL;
    xi_mem_fail_after(&rt->mem, 1);
    cr_assert_eq(xo_msg_alloc(rt, PING, 16, &m), XO_ENOMEM);
    cr_assert_null(m);
    xi_mem_fail_after(&rt->mem, 1);
    cr_assert_eq(xo_msg_wrap(rt, PING, "y", 1, NULL, NULL, &m), XO_ENOMEM);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(xo_tell(r, PING, "x", 1), 0, "usable afterwards");
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&counted_messages), 10, "only the successful sends");
}

static struct latch done;

static int spawn_in_handler_message(xo_ctx_t *ctx, void *state,
                                    const xo_msg_t *m)
{
    (void)state;
    (void)m;
    xo_runtime_t *rt = xo_ctx_runtime(ctx);
    xo_ref_t child;
    xi_mem_fail_after(&rt->mem, 1);
    int rc = xo_spawn(rt, &counting_def, NULL, &child);
    xi_mem_fail_after(&rt->mem, 0);
    if (rc == XO_ENOMEM)
        atomic_fetch_add(&counted_messages, 100);
    latch_count_down(&done);
    return rc;
}

static const xo_actor_def_t spawner_def = {
    .name = "spawner", .on_message = spawn_in_handler_message,
};

Test(alloc_failure, spawn_failing_inside_a_handler_reports_enomem_to_it)
{
    xo_runtime_t *rt = start_runtime(1);
    latch_init(&done, 1);
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &spawner_def, NULL, &r), 0);
    cr_assert_eq(xo_tell(r, PING, NULL, 0), 0);
    latch_wait(&done); /* stop now would refuse the spawn with ECLOSED */
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&counted_messages), 100);
    cr_assert_eq(atomic_load(&counted_destroys), 0, "no child was made");
}

/* ---- a worker's timer heap that cannot grow ---------------------------- */

/* A fresh worker's heap is allocated on its first timer. When that fails,
   a delayed tell is dropped and reported (it was accepted already), and a
   call's timeout completes its call with XO_ENOMEM (its caller would
   otherwise wait for a timeout that never comes). */
static atomic_int hook_err, hook_tag, then_status = 1;
static xo_ref_t hook_actor;

static void on_error(xo_runtime_t *rt, xo_ref_t actor, uint32_t tag, int err,
                     void *user)
{
    (void)rt;
    (void)user;
    hook_actor = actor;
    atomic_store(&hook_tag, (int)tag);
    atomic_store(&hook_err, err);
}

static xo_runtime_t *start_with_hook(void)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 1;
    cfg.spin_ns = 5000;
    cfg.on_handler_error = on_error;
    xo_runtime_t *rt;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), 0);
    return rt;
}

Test(alloc_failure, a_delayed_tell_the_timer_heap_cannot_take_is_reported)
{
    xo_runtime_t *rt = start_with_hook();
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &counting_def, NULL, &r), 0);
    /* The envelope, the timer, then (on the worker) the heap. */
    xi_mem_fail_after(&rt->mem, 3);
    cr_assert_eq(xo_tell_after(r, 1000, 77, NULL, 0), 0);
    while (atomic_load(&hook_err) == 0)
        sleep_ms(1);
    xi_mem_fail_after(&rt->mem, 0);
    cr_assert_eq(atomic_load(&hook_err), XO_ENOMEM);
    cr_assert_eq(atomic_load(&hook_tag), 77);
    cr_assert(xo_ref_eq(hook_actor, r), "the hook names the target");
    /* The worker is fine: the next delayed tell grows the heap and lands. */
    cr_assert_eq(xo_tell_after(r, 1000, PING, NULL, 0), 0);
    while (atomic_load(&counted_messages) == 0)
        sleep_ms(1);
    stop_runtime(rt);
}

static int record_then(xo_ctx_t *ctx, void *state, xo_future_t *f, void *arg)
{
    (void)ctx;
    (void)state;
    (void)arg;
    xo_result_t res;
    atomic_store(&then_status, xo_future_result(f, 0, &res));
    return 0;
}

static int timed_caller_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    xo_ref_t peer = *(const xo_ref_t *)m->data;
    xo_runtime_t *rt = xo_ctx_runtime(ctx);
    /* The future, the call's envelope, the timer, then the heap. */
    xi_mem_fail_after(&rt->mem, 4);
    int rc = xo_call_then(ctx, peer, PING, NULL, 0, 1000000000, record_then,
                          NULL);
    xi_mem_fail_after(&rt->mem, 0);
    return rc;
}

static const xo_actor_def_t timed_caller_def = {
    .name = "timed-caller", .on_message = timed_caller_message,
};

static atomic_int gate_open;

static int gated_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    while (!atomic_load(&gate_open))
        sleep_ms(1);
    return 0;
}

static const xo_actor_def_t gated_def = {
    .name = "gated", .on_message = gated_message,
};

Test(alloc_failure, a_call_timeout_the_timer_heap_cannot_take_fails_the_call)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 2;
    cfg.spin_ns = 5000;
    xo_runtime_t *rt;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), 0);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.pool = 1;
    xo_ref_t gated, caller;
    cr_assert_eq(xo_spawn(rt, &gated_def, &opts, &gated), 0);
    opts.pool = 0;
    cr_assert_eq(xo_spawn(rt, &timed_caller_def, &opts, &caller), 0);
    cr_assert_eq(xo_tell(caller, PING, &gated, sizeof(gated)), 0);
    while (atomic_load(&then_status) == 1)
        sleep_ms(1);
    cr_assert_eq(atomic_load(&then_status), XO_ENOMEM,
                 "completed before the callee answered");
    atomic_store(&gate_open, 1);
    stop_runtime(rt);
}
