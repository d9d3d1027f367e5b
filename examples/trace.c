/*
 * trace.c -- record what a small actor graph does and write it as a trace
 * in Chrome's trace-event format, which Perfetto's UI (ui.perfetto.dev,
 * "Open trace file") and Catapult's trace viewer (chrome://tracing) open
 * (docs/trace.md).
 *
 *   trace [FILE]       default FILE: xoscar-trace.json
 *
 * The graph, on two pools: the main thread sends ROUNDS batches of numbers
 * to a splitter (pool 0), which deals each number to one of two hashers
 * (one per pool); each hasher mixes its number for a while and tells the
 * sink (pool 1), which keeps a checksum. At the end the main thread calls
 * the sink with the count it sent; the sink defers the answer until that
 * many hashes are in, so every message was handled before the trace
 * stops. In the file: a track per worker with a slice per turn (named
 * after the definition), flows from each send to the turn that handled
 * it, and the parks and wakes between rounds.
 *
 * It checks its own result: the sink's count and checksum against the
 * same hashes computed here (exit 1 when they differ). The ctest test
 * example_trace reads the file back (examples/trace_check.c);
 * tools/screenshot-trace.sh draws it for the README.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xoscar/xoscar.h>

enum { WORK = 1, HASHED = 2, TOTAL = 3 };

#define ROUNDS 20
#define PER_ROUND 50

/* ---- sink: counts and checksums what the hashers found ---------------- */

/* What the sink answers TOTAL with. */
struct total {
    uint64_t count, checksum;
};

struct sink {
    struct total got;
    uint64_t want;           /* the count TOTAL waits for */
    xo_request_t *waiting;   /* TOTAL's request, deferred until then */
};

static int sink_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    struct sink *s = state;
    if (m->tag == HASHED) {
        s->got.count++;
        s->got.checksum ^= *(const uint64_t *)m->data;
    } else if (m->tag == TOTAL && m->request != NULL &&
               m->size == sizeof(s->want) && s->waiting == NULL) {
        /* The main thread's call is ordered after its own sends only, not
           after the hashers': answer once the count it names is in. */
        memcpy(&s->want, m->data, sizeof(s->want));
        if (s->got.count < s->want) {
            s->waiting = xo_request_defer(m->request);
            return 0;
        }
        return xo_reply(m->request, TOTAL, &s->got, sizeof(s->got));
    } else {
        return XO_EINVAL;
    }
    if (s->waiting != NULL && s->got.count >= s->want) {
        xo_request_t *req = s->waiting;
        s->waiting = NULL;
        return xo_reply(req, TOTAL, &s->got, sizeof(s->got));
    }
    return 0;
}

/* A request still deferred when the sink goes is answered, not lost. */
static int sink_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    struct sink *s = state;
    if (s->waiting != NULL)
        xo_reply_error(s->waiting, XO_ECLOSED,
                       "the sink stopped with %llu of %llu numbers",
                       (unsigned long long)s->got.count,
                       (unsigned long long)s->want);
    s->waiting = NULL;
    return 0;
}

static const xo_actor_def_t sink_def = {
    .name = "sink", .state_size = sizeof(struct sink),
    .on_message = sink_message, .on_destroy = sink_destroy,
};

/* ---- hasher: a few microseconds of work per number -------------------- */

static int ref_create(xo_ctx_t *ctx, void *state, const void *arg,
                      size_t size)
{
    (void)ctx;
    if (size != sizeof(xo_ref_t) * 2 && size != sizeof(xo_ref_t))
        return XO_EINVAL;
    memcpy(state, arg, size);
    return 0;
}

static uint64_t mix(uint64_t h)
{
    for (int i = 0; i < 2000; i++) /* splitmix64's step, over and over */
        h = (h ^ (h >> 31)) * 0x9e3779b97f4a7c15u + (uint64_t)i;
    return h;
}

static int hasher_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    uint64_t h = mix(*(const uint64_t *)m->data);
    return xo_tell(*(xo_ref_t *)state, HASHED, &h, sizeof(h));
}

static const xo_actor_def_t hasher_def = {
    .name = "hasher", .state_size = sizeof(xo_ref_t),
    .on_create = ref_create, .on_message = hasher_message,
};

/* ---- splitter: deals numbers out, alternately ------------------------- */

struct splitter {
    xo_ref_t hashers[2];
    unsigned next;
};

static int splitter_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    struct splitter *s = state;
    return xo_tell(s->hashers[s->next++ & 1], WORK, m->data, m->size);
}

static const xo_actor_def_t splitter_def = {
    .name = "splitter", .state_size = sizeof(struct splitter),
    .on_create = ref_create, .on_message = splitter_message,
};

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "trace: %s: %s\n", what, xo_strerror(rc));
        exit(1);
    }
}

static xo_ref_t spawn_on(xo_runtime_t *rt, const xo_actor_def_t *def,
                         unsigned pool, const void *arg, size_t size)
{
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.place = (xo_placement_t){ .kind = XO_PLACE_POOL, .pool = pool };
    /* Its turns stay on its pool's worker: one track per pool's actors
       (a pool asked for is fixed already; said here for the reader). */
    opts.move = XO_MOVE_FIXED;
    opts.arg = arg;
    opts.arg_size = size;
    xo_ref_t ref;
    check(xo_spawn(rt, def, &opts, &ref), def->name);
    return ref;
}

int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: trace [FILE]   (default xoscar-trace.json)\n");
        return 2;
    }
    const char *path = argc == 2 ? argv[1] : "xoscar-trace.json";

    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 2;
    xo_runtime_t *rt;
    check(xo_runtime_start(&cfg, &rt), "start");

    xo_ref_t sink = spawn_on(rt, &sink_def, 1, NULL, 0);
    xo_ref_t hashers[2] = {
        spawn_on(rt, &hasher_def, 0, &sink, sizeof(sink)),
        spawn_on(rt, &hasher_def, 1, &sink, sizeof(sink)),
    };
    xo_ref_t splitter = spawn_on(rt, &splitter_def, 0, hashers,
                                 sizeof(hashers));

    check(xo_trace_start(rt, 0), "xo_trace_start");
    uint64_t n = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < PER_ROUND; i++, n++)
            check(xo_tell(splitter, WORK, &n, sizeof(n)), "tell");
        /* a pause between rounds: the workers park, and wake for the
           next */
        struct timespec gap = { 0, 2 * 1000 * 1000 };
        while (nanosleep(&gap, &gap) != 0 && errno == EINTR)
            ;
    }
    /* The sink answers once all n are in (a minute at most: a lost
       message would show as a timeout, not a hang). */
    xo_future_t *f;
    check(xo_call(sink, TOTAL, &n, sizeof(n), &f), "call");
    check(xo_future_wait(f, 60LL * 1000 * 1000 * 1000), "wait for the sink");
    xo_result_t res;
    int status = xo_future_result(f, 0, &res);
    if (status != 0) {
        fprintf(stderr, "trace: the sink's answer: %s\n", res.error);
        exit(1);
    }
    struct total got = { 0 };
    if (res.size == sizeof(got))
        memcpy(&got, res.data, sizeof(got));
    xo_future_release(f);
    check(xo_trace_stop(rt), "xo_trace_stop");

    FILE *out = fopen(path, "w");
    if (out == NULL) {
        fprintf(stderr, "trace: %s: %s\n", path, strerror(errno));
        xo_runtime_stop(rt);
        xo_runtime_free(rt);
        return 1;
    }
    int rc = xo_trace_write(rt, out);
    if (fclose(out) != 0 && rc == 0)
        rc = XO_ESYSTEM;
    check(rc, "xo_trace_write");
    check(xo_runtime_stop(rt), "stop");
    xo_runtime_free(rt);

    /* The sink's answer against the same work done here: the checksum is
       an XOR, so the order the hashers finished in does not matter. */
    uint64_t want = 0;
    for (uint64_t k = 0; k < n; k++)
        want ^= mix(k);
    bool right = got.count == n && got.checksum == want;
    printf("%llu of %llu numbers hashed, checksum %016llx (%s); "
           "trace written to %s\n",
           (unsigned long long)got.count, (unsigned long long)n,
           (unsigned long long)got.checksum,
           right ? "correct" : "WRONG", path);
    if (!right)
        fprintf(stderr, "trace: expected %llu numbers, checksum %016llx\n",
                (unsigned long long)n, (unsigned long long)want);
    return right ? 0 : 1;
}
