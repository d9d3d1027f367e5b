/*
 * The batch interface: tell_batch keeps order, call_batch returns results
 * in order (empty batch, mixed tags refused), and on_batch receives runs of
 * same-tag messages while actors without it get them one by one.
 */
#include "support.h"

enum { SQUARE = 1, OTHER = 2 };

struct log {
    int seen[4096];
    int n;
    int runs;     /* on_batch calls */
    int largest;  /* longest run handed over */
};

static struct log report;
static struct latch done;

static int square_one(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct log *l = state;
    (void)ctx;
    int v = *(const int *)m->data;
    if (l->n < 4096)
        l->seen[l->n++] = v;
    if (m->request) {
        int sq = v * v;
        return xo_reply(m->request, SQUARE, &sq, sizeof(sq));
    }
    if (v < 0) { /* end marker of a tell batch */
        report = *l;
        latch_count_down(&done);
    }
    return 0;
}

static int square_batch(xo_ctx_t *ctx, void *state,
                        const xo_msg_t *const *msgs, size_t count)
{
    struct log *l = state;
    l->runs++;
    if ((int)count > l->largest)
        l->largest = (int)count;
    for (size_t i = 0; i < count; i++) {
        if (msgs[i]->tag != msgs[0]->tag)
            return XO_EINVAL; /* a run never mixes tags */
        int rc = square_one(ctx, state, msgs[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const xo_actor_def_t plain_def = {
    .name = "plain", .state_size = sizeof(struct log),
    .on_message = square_one,
};

static const xo_actor_def_t batched_def = {
    .name = "batched", .state_size = sizeof(struct log),
    .on_message = square_one, .on_batch = square_batch,
};

Test(batch, tell_batch_delivers_every_message_in_order)
{
    xo_runtime_t *rt = start_runtime(2);
    latch_init(&done, 1);
    xo_ref_t a;
    cr_assert_eq(xo_spawn(rt, &plain_def, NULL, &a), 0);
    static int values[1001];
    xo_batch_item_t items[1001];
    for (int i = 0; i < 1001; i++) {
        values[i] = i == 1000 ? -1 : i;
        items[i] = (xo_batch_item_t){ SQUARE, &values[i], sizeof(int) };
    }
    cr_assert_eq(xo_tell_batch(a, items, 1001), 0);
    latch_wait(&done);
    cr_assert_eq(report.n, 1001);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(report.seen[i], i);
    cr_assert_eq(xo_tell_batch(a, items, 0), 0, "empty batch is a no-op");
    items[3].data = NULL; /* with size 4: bad item, nothing sent */
    cr_assert_eq(xo_tell_batch(a, items, 10), XO_EINVAL);
    stop_runtime(rt);
}

static void check_call_batch(const xo_actor_def_t *def, int expect_runs)
{
    xo_runtime_t *rt = start_runtime(2);
    latch_init(&done, 1);
    xo_ref_t a;
    cr_assert_eq(xo_spawn(rt, def, NULL, &a), 0);
    static int values[500];
    xo_batch_item_t items[500];
    for (int i = 0; i < 500; i++) {
        values[i] = i;
        items[i] = (xo_batch_item_t){ SQUARE, &values[i], sizeof(int) };
    }
    xo_future_t *f;
    cr_assert_eq(xo_call_batch(a, items, 500, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    cr_assert_eq(xo_future_count(f), 500);
    for (int i = 0; i < 500; i++) {
        xo_result_t r;
        cr_assert_eq(xo_future_result(f, (size_t)i, &r), 0);
        cr_assert_eq(*(const int *)r.data, i * i, "result %d in order", i);
    }
    xo_future_release(f);
    int end = -1;
    cr_assert_eq(xo_tell(a, SQUARE, &end, sizeof(end)), 0);
    latch_wait(&done);
    if (expect_runs)
        cr_assert_gt(report.largest, 1, "on_batch got runs of messages");
    else
        cr_assert_eq(report.runs, 0);
    stop_runtime(rt);
}

Test(batch, call_batch_results_come_back_in_order_with_on_batch)
{
    check_call_batch(&batched_def, 1);
}

Test(batch, call_batch_results_come_back_in_order_one_by_one_without_on_batch)
{
    check_call_batch(&plain_def, 0);
}

Test(batch, empty_call_batch_is_complete_and_mixed_tags_are_refused)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t a;
    cr_assert_eq(xo_spawn(rt, &plain_def, NULL, &a), 0);
    xo_future_t *f;
    cr_assert_eq(xo_call_batch(a, NULL, 0, &f), 0);
    cr_assert(xo_future_done(f));
    cr_assert_eq(xo_future_count(f), 0);
    xo_future_release(f);
    int v = 1;
    xo_batch_item_t mixed[2] = { { SQUARE, &v, sizeof(v) },
                                 { OTHER, &v, sizeof(v) } };
    cr_assert_eq(xo_call_batch(a, mixed, 2, &f), XO_EINVAL);
    stop_runtime(rt);
}

Test(batch, on_batch_runs_break_at_a_different_tag)
{
    xo_runtime_t *rt = start_runtime(1);
    latch_init(&done, 1);
    xo_ref_t a;
    cr_assert_eq(xo_spawn(rt, &batched_def, NULL, &a), 0);
    static int values[64];
    xo_batch_item_t items[65];
    for (int i = 0; i < 64; i++) {
        values[i] = i;
        items[i] = (xo_batch_item_t){ i < 32 ? SQUARE : OTHER, &values[i],
                                      sizeof(int) };
    }
    static int end = -1;
    items[64] = (xo_batch_item_t){ OTHER, &end, sizeof(end) };
    cr_assert_eq(xo_tell_batch(a, items, 65), 0);
    latch_wait(&done);
    cr_assert_eq(report.n, 65);
    for (int i = 0; i < 64; i++)
        cr_assert_eq(report.seen[i], i, "order kept across runs");
    cr_assert_geq(report.runs, 2, "a tag change starts a new run");
    stop_runtime(rt);
}

/* ---- runs and cancellation, runs and nested waits ---------------------- */

static atomic_int gate_open, gate_entered;

static int gate_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    atomic_store(&gate_entered, 1);
    while (!atomic_load(&gate_open))
        sleep_ms(1);
    return 0;
}

static const xo_actor_def_t gate_def = {
    .name = "gate", .on_message = gate_message,
};

Test(batch, a_cancelled_call_at_the_head_of_a_run_is_skipped_and_the_run_goes_on)
{
    xo_runtime_t *rt = start_runtime(1);
    latch_init(&done, 1);
    xo_ref_t gate, a;
    cr_assert_eq(xo_spawn(rt, &gate_def, NULL, &gate), 0);
    cr_assert_eq(xo_spawn(rt, &batched_def, NULL, &a), 0);
    cr_assert_eq(xo_tell(gate, 1, NULL, 0), 0); /* the only worker waits */
    while (!atomic_load(&gate_entered))
        sleep_ms(1);
    int one = 1, two = 2, end = -1;
    xo_future_t *f;
    cr_assert_eq(xo_call(a, SQUARE, &one, sizeof(one), &f), 0);
    cr_assert_eq(xo_future_cancel(f), 0);
    cr_assert_eq(xo_tell(a, SQUARE, &two, sizeof(two)), 0);
    cr_assert_eq(xo_tell(a, SQUARE, &end, sizeof(end)), 0);
    atomic_store(&gate_open, 1);
    latch_wait(&done);
    xo_result_t r;
    cr_assert_eq(xo_future_result(f, 0, &r), XO_ECANCELED);
    xo_future_release(f);
    cr_assert_eq(report.n, 2, "the cancelled call never reached on_batch");
    cr_assert_eq(report.seen[0], 2);
    cr_assert_eq(report.seen[1], -1);
    stop_runtime(rt);
}

/* An on_batch handler that waits (blocking) lends its worker to another
   on_batch actor; its own run must be intact afterwards. */
static atomic_int inner_ran;
static atomic_int outer_ok = -1;

static int slow_peer_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    while (!atomic_load(&inner_ran)) /* answer once the nested run ran */
        sleep_ms(1);
    return xo_reply(m->request, 0, NULL, 0);
}

static const xo_actor_def_t slow_peer_def = {
    .name = "slow-peer", .on_message = slow_peer_message,
};

static int inner_batch(xo_ctx_t *ctx, void *state, const xo_msg_t *const *msgs,
                       size_t count)
{
    (void)ctx;
    (void)state;
    (void)msgs;
    (void)count;
    atomic_store(&inner_ran, 1);
    return 0;
}

static const xo_actor_def_t inner_def = {
    .name = "inner", .on_batch = inner_batch,
};

static int outer_batch(xo_ctx_t *ctx, void *state, const xo_msg_t *const *msgs,
                       size_t count)
{
    (void)ctx;
    xo_ref_t peer = *(xo_ref_t *)state;
    int before[8];
    for (size_t i = 0; i < count && i < 8; i++)
        before[i] = *(const int *)msgs[i]->data;
    xo_future_t *f;
    int rc = xo_call(peer, 0, NULL, 0, &f);
    if (rc == 0)
        rc = xo_future_wait(f, -1);
    xo_future_release(f);
    int ok = rc == 0;
    for (size_t i = 0; i < count && i < 8; i++)
        ok &= msgs[i]->tag == SQUARE && *(const int *)msgs[i]->data == before[i];
    atomic_store(&outer_ok, ok);
    latch_count_down(&done);
    return 0;
}

static int outer_create(xo_ctx_t *ctx, void *state, const void *arg,
                        size_t size)
{
    (void)ctx;
    (void)size;
    *(xo_ref_t *)state = *(const xo_ref_t *)arg;
    return 0;
}

static const xo_actor_def_t outer_def = {
    .name = "outer", .state_size = sizeof(xo_ref_t),
    .on_create = outer_create, .on_batch = outer_batch,
};

Test(batch, a_blocking_wait_inside_on_batch_keeps_its_run_intact)
{
    xo_runtime_t *rt = start_runtime(2);
    latch_init(&done, 1);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.pool = 1;
    xo_ref_t peer, outer, inner;
    cr_assert_eq(xo_spawn(rt, &slow_peer_def, &opts, &peer), 0);
    opts.pool = 0;
    cr_assert_eq(xo_spawn(rt, &inner_def, &opts, &inner), 0);
    opts.arg = &peer;
    opts.arg_size = sizeof(peer);
    cr_assert_eq(xo_spawn(rt, &outer_def, &opts, &outer), 0);
    static int values[4] = { 10, 11, 12, 13 };
    xo_batch_item_t items[4];
    for (int i = 0; i < 4; i++)
        items[i] = (xo_batch_item_t){ SQUARE, &values[i], sizeof(int) };
    cr_assert_eq(xo_tell_batch(outer, items, 4), 0);
    cr_assert_eq(xo_tell_batch(inner, items, 4), 0);
    latch_wait(&done);
    cr_assert_eq(atomic_load(&outer_ok), 1);
    stop_runtime(rt);
}

/* ---- the stack a turn takes, however large cfg.batch --------------------- */

/* A chain of on_batch actors on one pool, each blocking on a call to the
   next from inside on_batch: 60 turns nested on one worker's stack of
   1 MiB, with cfg.batch at its largest (4096). The runtime's share of each
   nested turn must not grow with cfg.batch (it used to be two arrays of
   cfg.batch pointers per turn: 64 KiB each, 3.8 MiB for the chain). */
#define DEEP 60

static xo_ref_t deep[DEEP];
static atomic_int deep_done;

static int deep_batch(xo_ctx_t *ctx, void *state, const xo_msg_t *const *msgs,
                      size_t count)
{
    (void)ctx;
    (void)state;
    int i = *(const int *)msgs[0]->data;
    if (i + 1 < DEEP) {
        int next[2] = { i + 1, i + 1 };
        xo_future_t *f;
        xo_batch_item_t items[2] = { { SQUARE, &next[0], sizeof(int) },
                                     { SQUARE, &next[1], sizeof(int) } };
        cr_assert_eq(xo_call_batch(deep[i + 1], items, 2, &f), 0);
        cr_assert_eq(xo_future_wait(f, -1), 0, "link %d", i);
        xo_future_release(f);
    }
    for (size_t k = 0; k < count; k++)
        if (msgs[k]->request == NULL)
            atomic_fetch_add(&deep_done, 1);
    return 0;
}

static const xo_actor_def_t deep_def = {
    .name = "deep", .on_batch = deep_batch,
};

Test(batch, nested_on_batch_turns_fit_a_small_stack_whatever_the_batch)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 1;
    cfg.spin_ns = 5000;
    cfg.batch = 4096;
    cfg.stack_size = (size_t)1 << 20;
    xo_runtime_t *rt;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), 0);
    for (int i = 0; i < DEEP; i++)
        cr_assert_eq(xo_spawn(rt, &deep_def, NULL, &deep[i]), 0);
    static int zero[2] = { 0, 0 };
    xo_batch_item_t items[2] = { { SQUARE, &zero[0], sizeof(int) },
                                 { SQUARE, &zero[1], sizeof(int) } };
    cr_assert_eq(xo_tell_batch(deep[0], items, 2), 0);
    while (atomic_load(&deep_done) < 2)
        sleep_ms(1);
    stop_runtime(rt);
    cfg.stack_size = 1024; /* below the smallest stack a worker may have */
    cr_assert_eq(xo_runtime_start(&cfg, &rt), XO_EINVAL);
}
