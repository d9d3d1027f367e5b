/*
 * Delayed tells: a delay past the end of the clock never fires early, and a
 * delayed tell to a bounded actor holds its place in the mailbox from the
 * moment it is accepted, so it is never refused (or lost) when its time
 * comes.
 */
#include "support.h"

enum { HUGE_DELAY = 1, SHORT_DELAY, WAIT_GATE, FILL, DELAYED, OPEN };

static atomic_int huge_seen, short_seen;

static int stamp_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    if (m->tag == HUGE_DELAY)
        atomic_fetch_add(&huge_seen, 1);
    else if (m->tag == SHORT_DELAY)
        atomic_fetch_add(&short_seen, 1);
    return 0;
}

static const xo_actor_def_t stamp_def = {
    .name = "stamp", .on_message = stamp_message,
};

Test(timers, a_delay_past_the_end_of_the_clock_does_not_fire_before_stop)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t s;
    cr_assert_eq(xo_spawn(rt, &stamp_def, NULL, &s), 0);
    cr_assert_eq(xo_tell_after(s, UINT64_MAX, HUGE_DELAY, NULL, 0), 0);
    cr_assert_eq(xo_tell_after(s, UINT64_MAX - 1000, HUGE_DELAY, NULL, 0), 0);
    /* One worker files all three in one heap: the short one fires first
       unless a long one's deadline wrapped around to the past. */
    cr_assert_eq(xo_tell_after(s, 1000000, SHORT_DELAY, NULL, 0), 0);
    while (atomic_load(&short_seen) == 0)
        sleep_ms(1);
    cr_assert_eq(atomic_load(&huge_seen), 0);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&huge_seen), 0, "dropped at stop, not fired");
}

/* ---- a bounded target ---------------------------------------------------- */

static atomic_int gate_open, bounded_waiting, handled_delayed, handled_fill;

/* The gate answers a call only once the test opens it. */
static int gate_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    while (!atomic_load(&gate_open))
        sleep_ms(1);
    return 0;
}

static xo_ref_t gate;

/* The bounded actor's first message waits on the gate: its worker runs
   its timers meanwhile (the wait lends it), while its mailbox stays full. */
static int bounded_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    if (m->tag == WAIT_GATE) {
        xo_future_t *f;
        cr_assert_eq(xo_call(gate, OPEN, NULL, 0, &f), 0);
        atomic_store(&bounded_waiting, 1);
        cr_assert_eq(xo_future_wait(f, -1), 0);
        xo_future_release(f);
    } else if (m->tag == DELAYED) {
        atomic_fetch_add(&handled_delayed, 1);
    } else if (m->tag == FILL) {
        atomic_fetch_add(&handled_fill, 1);
    }
    return 0;
}

static const xo_actor_def_t gate_def = {
    .name = "gate", .on_message = gate_message,
};
static const xo_actor_def_t bounded_def = {
    .name = "bounded", .on_message = bounded_message,
};

Test(timers, a_delayed_tell_to_a_bounded_actor_holds_its_place_until_due)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.pool = 1;
    cr_assert_eq(xo_spawn(rt, &gate_def, &opts, &gate), 0);
    opts.pool = 0;
    opts.capacity = 2;
    xo_ref_t b;
    cr_assert_eq(xo_spawn(rt, &bounded_def, &opts, &b), 0);
    cr_assert_eq(xo_tell(b, WAIT_GATE, NULL, 0), 0);
    while (!atomic_load(&bounded_waiting))
        sleep_ms(1);
    /* The mailbox is empty now; the delayed tell takes one of its two
       places at once. */
    cr_assert_eq(xo_tell_after(b, 1000000, DELAYED, NULL, 0), 0);
    int accepted_fill = 0;
    while (xo_tell(b, FILL, NULL, 0) == 0)
        accepted_fill++;
    cr_assert_eq(accepted_fill, 1, "one place was the delayed tell's");
    cr_assert_eq(xo_tell_after(b, 1000000, DELAYED, NULL, 0), XO_EFULL,
                 "refused when accepted, not dropped when due");
    sleep_ms(20); /* its time comes while the mailbox is still full */
    atomic_store(&gate_open, 1);
    while (atomic_load(&handled_delayed) + atomic_load(&handled_fill) < 2)
        sleep_ms(1);
    stop_runtime(rt);
    cr_assert_eq(atomic_load(&handled_delayed), 1,
                 "the delayed tell was handled");
    cr_assert_eq(atomic_load(&handled_fill), 1);
}
