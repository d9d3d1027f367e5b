/*
 * pipeline.c -- a three-stage pipeline placed on chosen pools.
 *
 *   main thread -> two parsers (one per pool labelled "parse") -> sink
 *
 * The runtime gets three pools: pool 0 (the main pool) and two pools
 * labelled "parse". The sink lives on the main pool; two parser actors take
 * one "parse" pool each through the idle-label policy (a third gets
 * XO_ENOSLOT); a second sink is placed next to parser 1; every actor prints
 * where it runs. The main thread sends numbers alternately to the parsers;
 * they square them and forward to the sink, which adds them up, and the
 * main thread asks the sink for the total.
 */
#include <stdio.h>
#include <stdlib.h>
#include <xoscar/xoscar.h>

enum { ITEM = 1, TOTAL = 2, WHERE = 3 };

static int report_where(xo_ctx_t *ctx, const char *who)
{
    xo_pool_info_t info;
    xo_pool_info(xo_ctx_runtime(ctx), xo_ctx_pool(ctx), &info);
    printf("%-8s runs on pool %u (labels %s, core %d%s)\n", who, info.index,
           info.labels, info.core, info.pinned ? ", pinned" : "");
    return 0;
}

/* ---- sink: sums what it receives ---------------------------------------- */

struct sink {
    long sum;
    const char *who; /* what it calls itself: "sink", or the spawn's arg */
};

static int sink_create(xo_ctx_t *ctx, void *state, const void *arg,
                       size_t size)
{
    (void)ctx;
    (void)size;
    struct sink *s = state;
    s->who = arg != NULL ? arg : "sink"; /* a string literal: it lasts */
    return 0;
}

static int sink_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct sink *s = state;
    if (m->tag == WHERE)
        return report_where(ctx, s->who);
    if (m->tag == ITEM)
        s->sum += *(const long *)m->data;
    if (m->tag == TOTAL)
        return xo_reply(m->request, TOTAL, &s->sum, sizeof(s->sum));
    return 0;
}

static const xo_actor_def_t sink_def = {
    .name = "sink", .state_size = sizeof(struct sink),
    .on_create = sink_create, .on_message = sink_message,
};

/* ---- parser: squares and forwards ------------------------------------ */

static int parser_create(xo_ctx_t *ctx, void *state, const void *arg,
                         size_t size)
{
    (void)ctx;
    if (size != sizeof(xo_ref_t))
        return XO_EINVAL;
    *(xo_ref_t *)state = *(const xo_ref_t *)arg;
    return 0;
}

static int parser_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    if (m->tag == WHERE)
        return report_where(ctx, "parser");
    long v = *(const long *)m->data;
    long sq = v * v;
    return xo_tell(*(xo_ref_t *)state, ITEM, &sq, sizeof(sq));
}

static const xo_actor_def_t parser_def = {
    .name = "parser", .state_size = sizeof(xo_ref_t),
    .on_create = parser_create, .on_message = parser_message,
};

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "pipeline: %s: %s\n", what, xo_strerror(rc));
        exit(1);
    }
}

int main(void)
{
    xo_pool_spec_t pools[3];
    for (int i = 0; i < 3; i++) {
        xo_pool_spec_init(&pools[i]);
        pools[i].labels = i == 0 ? NULL : "parse";
    }
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 3;
    cfg.pool_specs = pools;
    xo_runtime_t *rt;
    check(xo_runtime_start(&cfg, &rt), "start");

    /* The sink first, on the main pool, then parsers on "parse" pools. */
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.place.kind = XO_PLACE_MAIN;
    xo_ref_t sink, parser[2];
    check(xo_spawn(rt, &sink_def, &opts, &sink), "spawn sink");

    xo_spawn_opts_init(&opts);
    opts.place = (xo_placement_t){ .kind = XO_PLACE_IDLE_LABEL,
                                   .label = "parse", .mark = "parser" };
    opts.arg = &sink;
    opts.arg_size = sizeof(sink);
    for (int i = 0; i < 2; i++)
        check(xo_spawn(rt, &parser_def, &opts, &parser[i]), "spawn parser");
    xo_ref_t third;
    printf("a third parser: %s\n",
           xo_strerror(xo_spawn(rt, &parser_def, &opts, &third)));

    /* A helper placed next to parser 1 (same pool: they talk a lot). */
    xo_spawn_opts_init(&opts);
    opts.place = (xo_placement_t){ .kind = XO_PLACE_NEAR, .near = parser[1] };
    static const char helper_name[] = "helper";
    opts.arg = helper_name;
    opts.arg_size = sizeof(helper_name);
    xo_ref_t neighbour;
    check(xo_spawn(rt, &sink_def, &opts, &neighbour), "spawn neighbour");

    check(xo_tell(sink, WHERE, NULL, 0), "where");
    for (int i = 0; i < 2; i++)
        check(xo_tell(parser[i], WHERE, NULL, 0), "where");
    check(xo_tell(neighbour, WHERE, NULL, 0), "where");

    long expect = 0;
    for (long v = 1; v <= 1000; v++) {
        check(xo_tell(parser[v % 2], ITEM, &v, sizeof(v)), "tell");
        expect += v * v;
    }
    /* Both parsers forward before we ask: destroy them first (each handles
       its queue before it goes), then ask the sink. */
    for (int i = 0; i < 2; i++)
        check(xo_destroy(parser[i]), "destroy parser");
    xo_future_t *f;
    check(xo_call(sink, TOTAL, NULL, 0, &f), "call");
    check(xo_future_wait(f, -1), "wait");
    xo_result_t r;
    check(xo_future_result(f, 0, &r), "result");
    long total = *(const long *)r.data;
    xo_future_release(f);
    printf("sum of squares 1..1000 = %ld (%s)\n", total,
           total == expect ? "correct" : "WRONG");
    xo_runtime_stop(rt);
    xo_runtime_free(rt);
    return total == expect ? 0 : 1;
}
