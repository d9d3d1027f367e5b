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
