/*
 * Suite trace: the trace's rings and its Chrome trace-event JSON, parsed
 * back with a real JSON parser (jansson): spans nest per track, every flow
 * has one start and one end (the end inside a turn on the handling
 * worker's track), and the counts are what the test sent.
 */
#include "support.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"

enum { PING = 1, CALL = 2, RELAY = 3 };

struct relay { xo_ref_t next; };

static int relay_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    struct relay *r = state;
    if (m->tag == RELAY && !xo_ref_is_none(r->next))
        return xo_tell(r->next, PING, NULL, 0);
    if (m->tag == CALL)
        return xo_reply(m->request, CALL, NULL, 0);
    return 0;
}

static int relay_create(xo_ctx_t *ctx, void *state, const void *arg,
                        size_t size)
{
    (void)ctx;
    if (size == sizeof(xo_ref_t))
        memcpy(&((struct relay *)state)->next, arg, size);
    return 0;
}

static const xo_actor_def_t relay_def = {
    .name = "relay \"quoted\"",
    .state_size = sizeof(struct relay),
    .on_create = relay_create,
    .on_message = relay_message,
};

static xo_ref_t spawn_relay(xo_runtime_t *rt, int pool, xo_ref_t next)
{
    xo_spawn_opts_t o;
    xo_spawn_opts_init(&o);
    o.pool = pool;
    o.arg = &next;
    o.arg_size = sizeof(next);
    xo_ref_t r;
    cr_assert_eq(xo_spawn(rt, &relay_def, &o, &r), 0);
    return r;
}

static json_t *trace_json(xo_runtime_t *rt)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    int rc = xo_trace_write(rt, f);
    fclose(f);
    cr_assert_eq(rc, 0, "xo_trace_write: %s", xo_strerror(rc));
    json_error_t err;
    json_t *doc = json_loads(text, 0, &err);
    cr_assert_not_null(doc, "not JSON: %s at line %d", err.text, err.line);
    free(text);
    return doc;
}

struct span { double ts, end; long tid; };

struct summary {
    int turns, sends, flow_starts, flow_ends, metadata;
    long messages; /* the turns' "messages" args, summed */
};

/* The checks every trace must pass; returns the counts. */
static struct summary check_trace(json_t *doc)
{
    struct summary s = { 0 };
    json_t *events = json_object_get(doc, "traceEvents");
    cr_assert(json_is_array(events), "a traceEvents array");
    size_t n = json_array_size(events);
    struct span *spans = calloc(n, sizeof(*spans));
    size_t nspans = 0;
    /* Flow ids: where each started and ended. */
    json_t *starts = json_object(), *ends = json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(events, i);
        const char *ph = json_string_value(json_object_get(e, "ph"));
        cr_assert_not_null(ph, "every event has a phase");
        if (strcmp(ph, "M") == 0) {
            s.metadata++;
            continue;
        }
        double ts = json_number_value(json_object_get(e, "ts"));
        long tid = (long)json_integer_value(json_object_get(e, "tid"));
        if (strcmp(ph, "X") == 0) {
            double dur = json_number_value(json_object_get(e, "dur"));
            cr_assert_geq(dur, 0.0);
            spans[nspans++] = (struct span){ ts, ts + dur, tid };
            const char *cat = json_string_value(json_object_get(e, "cat"));
            if (strcmp(cat, "turn") == 0) {
                s.turns++;
                s.messages += (long)json_integer_value(json_object_get(
                    json_object_get(e, "args"), "messages"));
                cr_assert_str_eq(json_string_value(json_object_get(e, "name")),
                                 "relay \"quoted\"", "the name, unescaped");
            } else {
                s.sends++;
            }
        } else if (strcmp(ph, "s") == 0 || strcmp(ph, "f") == 0) {
            char id[32];
            snprintf(id, sizeof(id), "%lld",
                     (long long)json_integer_value(json_object_get(e, "id")));
            json_t *where = json_pack("{s:f,s:i}", "ts", ts, "tid", tid);
            json_t *set = ph[0] == 's' ? starts : ends;
            cr_assert_null(json_object_get(set, id), "flow %s once", id);
            json_object_set_new(set, id, where);
            if (ph[0] == 's')
                s.flow_starts++;
            else
                s.flow_ends++;
        }
    }
    /* Spans on one track nest: two of them either are disjoint or one
       holds the other. */
    for (size_t i = 0; i < nspans; i++)
        for (size_t j = i + 1; j < nspans; j++) {
            struct span a = spans[i], b = spans[j];
            if (a.tid != b.tid)
                continue;
            bool disjoint = a.end <= b.ts || b.end <= a.ts;
            bool nested = (a.ts <= b.ts && b.end <= a.end) ||
                          (b.ts <= a.ts && a.end <= b.end);
            cr_assert(disjoint || nested,
                      "spans on track %ld overlap in part: [%f, %f] [%f, %f]",
                      a.tid, a.ts, a.end, b.ts, b.end);
        }
    /* Every flow pairs up, and ends inside a turn on its track, after it
       started. */
    const char *id;
    json_t *start;
    json_object_foreach(starts, id, start) {
        json_t *end = json_object_get(ends, id);
        cr_assert_not_null(end, "flow %s ends", id);
        double t0 = json_number_value(json_object_get(start, "ts"));
        double t1 = json_number_value(json_object_get(end, "ts"));
        long tid = (long)json_integer_value(json_object_get(end, "tid"));
        cr_assert_leq(t0, t1, "flow %s ends after it starts", id);
        bool inside = false;
        for (size_t k = 0; k < nspans && !inside; k++)
            inside = spans[k].tid == tid && spans[k].ts <= t1 &&
                     t1 <= spans[k].end;
        cr_assert(inside, "flow %s ends inside a slice of its track", id);
    }
    cr_assert_eq(json_object_size(starts), json_object_size(ends),
                 "no flow end without its start");
    json_decref(starts);
    json_decref(ends);
    free(spans);
    return s;
}

Test(trace, a_trace_of_tells_and_calls_pairs_every_send_with_its_turn)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t last = spawn_relay(rt, 1, XO_REF_NONE);
    xo_ref_t first = spawn_relay(rt, 0, last);
    cr_assert_eq(xo_trace_start(rt, 0), 0);
    enum { TELLS = 200, CALLS = 20 };
    for (int i = 0; i < TELLS; i++)
        cr_assert_eq(xo_tell(first, RELAY, NULL, 0), 0); /* and a PING on */
    for (int i = 0; i < CALLS; i++) {
        xo_future_t *f;
        cr_assert_eq(xo_call(last, CALL, NULL, 0, &f), 0);
        cr_assert_eq(xo_future_wait(f, -1), 0);
        xo_future_release(f);
    }
    wait_handled(first, TELLS);
    wait_handled(last, TELLS + CALLS);
    cr_assert_eq(xo_trace_stop(rt), 0);
    json_t *doc = trace_json(rt);
    struct summary s = check_trace(doc);
    /* Sends: the test's tells and calls, and first's relays. */
    cr_assert_eq(s.sends, 2 * TELLS + CALLS);
    cr_assert_eq(s.flow_starts, 2 * TELLS + CALLS, "each was handled");
    cr_assert_eq(s.messages, 2 * TELLS + CALLS, "turns consumed them all");
    cr_assert_geq(s.turns, 2);
    cr_assert_eq(s.metadata, 1 + 3, "the process, two workers, the rest");
    json_decref(doc);
    stop_runtime(rt);
}

Test(trace, a_trace_that_is_off_records_nothing)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t r = spawn_relay(rt, 1, XO_REF_NONE);
    cr_assert_eq(xo_trace_write(rt, stdout), XO_EINVAL, "never started");
    cr_assert_eq(xo_trace_stop(rt), XO_EINVAL, "not recording");
    cr_assert_eq(xo_trace_start(rt, 64), 0);
    cr_assert_eq(xo_trace_start(rt, 64), XO_EEXIST, "once at a time");
    cr_assert_eq(xo_trace_write(rt, stdout), XO_EINVAL, "still recording");
    cr_assert_eq(xo_trace_stop(rt), 0);
    for (int i = 0; i < 50; i++) /* after the stop: not recorded */
        cr_assert_eq(xo_tell(r, PING, NULL, 0), 0);
    wait_handled(r, 50);
    json_t *doc = trace_json(rt);
    struct summary s = check_trace(doc);
    cr_assert_eq(s.sends + s.turns + s.flow_starts, 0);
    json_decref(doc);
    stop_runtime(rt);
}

Test(trace, a_ring_smaller_than_the_trace_keeps_its_newest_events)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t r = spawn_relay(rt, 1, XO_REF_NONE);
    cr_assert_eq(xo_trace_start(rt, 100), 0); /* 128 events a ring */
    enum { N = 2000 };
    for (int i = 0; i < N; i++)
        cr_assert_eq(xo_tell(r, PING, NULL, 0), 0);
    wait_handled(r, N);
    /* The last send, after the others were handled: a known newest. */
    cr_assert_eq(xo_tell(r, PING, NULL, 0), 0);
    wait_handled(r, N + 1);
    cr_assert_eq(xo_trace_stop(rt), 0);
    json_t *doc = trace_json(rt);
    struct summary s = check_trace(doc); /* still valid, still paired */
    cr_assert_leq(s.sends, 128, "at most a ring's worth");
    cr_assert_geq(s.flow_starts, 1, "the newest send and its turn");
    json_decref(doc);
    stop_runtime(rt);
}

Test(trace, a_trace_started_again_replaces_the_last_one)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t r = spawn_relay(rt, 1, XO_REF_NONE);
    cr_assert_eq(xo_trace_start(rt, 0), 0);
    for (int i = 0; i < 30; i++)
        cr_assert_eq(xo_tell(r, PING, NULL, 0), 0);
    wait_handled(r, 30);
    cr_assert_eq(xo_trace_stop(rt), 0);
    cr_assert_eq(xo_trace_start(rt, 0), 0);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(xo_tell(r, PING, NULL, 0), 0);
    wait_handled(r, 35);
    cr_assert_eq(xo_trace_stop(rt), 0);
    json_t *doc = trace_json(rt);
    cr_assert_eq(check_trace(doc).sends, 5);
    json_decref(doc);
    stop_runtime(rt);
}

Test(trace, the_runtime_stop_ends_a_trace_which_can_then_be_written)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_ref_t r = spawn_relay(rt, 0, XO_REF_NONE);
    cr_assert_eq(xo_trace_start(rt, 0), 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(xo_tell(r, PING, NULL, 0), 0);
    cr_assert_eq(xo_runtime_stop(rt), 0); /* handles the ten first */
    json_t *doc = trace_json(rt);
    struct summary s = check_trace(doc);
    cr_assert_eq(s.sends, 10);
    cr_assert_eq(s.flow_starts, 10);
    json_decref(doc);
    cr_assert_eq(xo_trace_start(rt, 0), XO_ECLOSED);
    xo_runtime_free(rt);
}

Test(trace, a_trace_that_cannot_be_allocated_fails_with_enomem)
{
    xo_runtime_t *rt = start_runtime(2);
    /* Its allocations: the table, then one ring per pool and one more. */
    for (long k = 1; k <= 4; k++) {
        xi_mem_fail_after(&rt->mem, k);
        int rc = xo_trace_start(rt, 0);
        xi_mem_fail_after(&rt->mem, 0);
        cr_assert_eq(rc, XO_ENOMEM, "allocation %ld", k);
        cr_assert_not(atomic_load(&rt->trace_on), "not recording");
        cr_assert_null(atomic_load(&rt->trace), "nothing left behind");
    }
    cr_assert_eq(xo_trace_start(NULL, 0), XO_EINVAL);
    cr_assert_eq(xo_trace_start(rt, (size_t)1 << 40), XO_EINVAL);
    cr_assert_eq(xo_trace_write(rt, NULL), XO_EINVAL);
    cr_assert_eq(xo_trace_stop(NULL), XO_EINVAL);
    stop_runtime(rt); /* ASan: no ring leaked */
}
