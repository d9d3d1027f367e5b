/*
 * trace_check.c -- reads back the file examples/trace wrote and checks it
 * against the graph that made it (the ctest test example_trace; not an
 * example to copy). The file is parsed with a real JSON parser (jansson),
 * as the suite trace does, and must hold:
 *
 *   - the process and the three tracks: "pool 0 worker", "pool 1 worker",
 *     "other threads";
 *   - turn slices on their home workers: the splitter on pool 0, the sink
 *     on pool 1, a hasher on each; the messages their turns counted are
 *     what the graph sent (N to the splitter, N/2 to each hasher, N + 1 to
 *     the sink: the N hashes and the final call);
 *   - a send slice for each of the 3N + 1 sends, on the sender's track;
 *   - one flow per send, each id started once and ended once, the end no
 *     earlier than the start and inside a turn, on the end's track, of the
 *     very actor the send was addressed to;
 *   - slices on one track that nest (disjoint, or one inside the other).
 *
 *   trace_check FILE N        N: the numbers the example hashed
 *
 * Prints one line per finding and exits 1 on any, 0 with a summary line
 * when the file is right, 2 on bad usage.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tracks, by tid (the file numbers them from 1). */
enum { POOL0 = 1, POOL1 = 2, OTHER = 3, NTRACKS = 4 };

struct slice {
    double ts, end;
    long tid;
    const char *name, *actor; /* turns: the definition and the actor */
    bool turn;
};

struct flow {
    bool started, ended;
    double t0, t1;
    long tid1;
    const char *to; /* the send's target */
};

static int findings;

__attribute__((format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("trace_check: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    findings++;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "";
}

int main(int argc, char **argv)
{
    if (argc != 3 || atol(argv[2]) <= 0 || atol(argv[2]) % 2 != 0) {
        fprintf(stderr, "usage: trace_check FILE N   (N even, > 0)\n");
        return 2;
    }
    long n = atol(argv[2]);
    json_error_t err;
    json_t *doc = json_load_file(argv[1], 0, &err);
    if (doc == NULL) {
        printf("trace_check: %s: not JSON: %s (line %d)\n", argv[1], err.text,
               err.line);
        return 1;
    }
    json_t *events = json_object_get(doc, "traceEvents");
    if (!json_is_array(events)) {
        printf("trace_check: %s: no traceEvents array\n", argv[1]);
        return 1;
    }
    size_t count = json_array_size(events);
    struct slice *slices = calloc(count, sizeof(*slices));
    /* Flow ids are 1, 2, ... in the file; at most one per event. */
    struct flow *flows = calloc(count + 1, sizeof(*flows));
    if (slices == NULL || flows == NULL) {
        printf("trace_check: out of memory\n");
        return 1;
    }
    size_t nslices = 0;
    const char *track[NTRACKS] = { 0 };
    long sends[NTRACKS] = { 0 };
    long splitter = 0, sink = 0, hasher[NTRACKS] = { 0 };
    long nflows = 0;
    const char *last_send_to = NULL; /* the send a flow start follows */
    long last_send_tid = 0;
    double last_send_ts = -1;

    for (size_t i = 0; i < count; i++) {
        json_t *e = json_array_get(events, i);
        const char *ph = str(e, "ph");
        long tid = (long)json_integer_value(json_object_get(e, "tid"));
        double ts = json_number_value(json_object_get(e, "ts"));
        json_t *args = json_object_get(e, "args");
        if (strcmp(ph, "M") == 0) {
            if (strcmp(str(e, "name"), "thread_name") == 0 && tid > 0 &&
                tid < NTRACKS)
                track[tid] = str(args, "name");
            continue;
        }
        if (tid < 1 || tid >= NTRACKS) {
            fail("an event on track %ld, not one of the three", (long)tid);
            continue;
        }
        if (strcmp(ph, "X") == 0) {
            struct slice *s = &slices[nslices++];
            double dur = json_number_value(json_object_get(e, "dur"));
            *s = (struct slice){ ts, ts + dur, tid, str(e, "name"),
                                 str(args, "actor"), false };
            if (dur < 0)
                fail("slice %s with a negative duration %f", s->name, dur);
            if (strcmp(str(e, "cat"), "send") == 0) {
                sends[tid]++;
                last_send_to = str(args, "to");
                last_send_tid = tid;
                last_send_ts = ts;
                continue;
            }
            if (strcmp(str(e, "cat"), "turn") != 0)
                continue;
            s->turn = true;
            long msgs = (long)json_integer_value(json_object_get(args,
                                                                 "messages"));
            if (strcmp(s->name, "splitter") == 0 && tid == POOL0)
                splitter += msgs;
            else if (strcmp(s->name, "sink") == 0 && tid == POOL1)
                sink += msgs;
            else if (strcmp(s->name, "hasher") == 0 && tid != OTHER)
                hasher[tid] += msgs;
            else
                fail("a turn of %s on track %ld, not its home worker's",
                     s->name, tid);
        } else if (strcmp(ph, "s") == 0 || strcmp(ph, "f") == 0) {
            json_int_t id = json_integer_value(json_object_get(e, "id"));
            if (id < 1 || (size_t)id > count) {
                fail("a flow id %ld out of range", (long)id);
                continue;
            }
            struct flow *f = &flows[id];
            if (ph[0] == 's') {
                if (f->started)
                    fail("flow %ld starts twice", (long)id);
                f->started = true;
                f->t0 = ts;
                nflows++;
                /* It follows its send, on the same track at the same
                   time. */
                if (last_send_tid != tid || last_send_ts != ts)
                    fail("flow %ld starts away from a send", (long)id);
                f->to = last_send_to;
            } else {
                if (f->ended)
                    fail("flow %ld ends twice", (long)id);
                f->ended = true;
                f->t1 = ts;
                f->tid1 = tid;
            }
        }
    }

    static const char *const names[NTRACKS] = {
        NULL, "pool 0 worker", "pool 1 worker", "other threads"
    };
    for (int t = 1; t < NTRACKS; t++)
        if (track[t] == NULL || strcmp(track[t], names[t]) != 0)
            fail("track %ld is not named as it should be", (long)t);

    /* Every flow: paired, in order, and ending inside a turn of the actor
       its send was addressed to (the innermost slice holding its end). */
    for (size_t id = 1; id <= count; id++) {
        struct flow *f = &flows[id];
        if (!f->started && !f->ended)
            continue;
        if (f->started != f->ended) {
            fail("flow %ld has one end only", (long)id);
            continue;
        }
        if (f->t1 < f->t0)
            fail("flow %ld ends before it starts", (long)id);
        const struct slice *in = NULL;
        for (size_t k = 0; k < nslices; k++) {
            const struct slice *s = &slices[k];
            if (s->turn && s->tid == f->tid1 && s->ts <= f->t1 &&
                f->t1 <= s->end &&
                (in == NULL || (in->ts <= s->ts && s->end <= in->end)))
                in = s;
        }
        if (in == NULL)
            fail("flow %ld ends outside every turn", (long)id);
        else if (f->to == NULL || strcmp(in->actor, f->to) != 0)
            fail("flow %ld ends in a turn of another actor than its "
                 "send's target", (long)id);
    }

    /* Slices on one track nest. */
    for (size_t i = 0; i < nslices; i++)
        for (size_t j = i + 1; j < nslices; j++) {
            struct slice a = slices[i], b = slices[j];
            if (a.tid != b.tid)
                continue;
            bool apart = a.end <= b.ts || b.end <= a.ts;
            bool nested = (a.ts <= b.ts && b.end <= a.end) ||
                          (b.ts <= a.ts && a.end <= b.end);
            if (!apart && !nested)
                fail("two slices on track %ld overlap in part", (long)a.tid);
        }

    /* The counts the graph makes. */
    struct { const char *what; long got, want; } counts[] = {
        { "messages in the splitter's turns", splitter, n },
        { "messages in pool 0's hasher's turns", hasher[POOL0], n / 2 },
        { "messages in pool 1's hasher's turns", hasher[POOL1], n / 2 },
        { "messages in the sink's turns", sink, n + 1 },
        { "sends from other threads (the tells and the call)", sends[OTHER],
          n + 1 },
        { "sends on pool 0 (the splitter's, a hasher's)", sends[POOL0],
          n + n / 2 },
        { "sends on pool 1 (a hasher's)", sends[POOL1], n / 2 },
        { "flows (one per send)", nflows, 3 * n + 1 },
    };
    for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++)
        if (counts[k].got != counts[k].want) {
            printf("trace_check: %s: %ld, expected %ld\n", counts[k].what,
                   counts[k].got, counts[k].want);
            findings++;
        }

    if (findings == 0)
        printf("trace_check: %s: %zu events, %ld flows, turns on both "
               "workers: right\n",
               argv[1], count, nflows);
    free(slices);
    free(flows);
    json_decref(doc);
    return findings == 0 ? 0 : 1;
}
