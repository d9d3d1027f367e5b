/*
 * supervisor.c -- a small service tree that heals itself.
 *
 *   supervisor (one_for_one)
 *     +-- cache   a key -> value table; answers GET and PUT calls
 *     +-- worker  squares a number and PUTs the result in the cache;
 *                 a negative number crashes it
 *
 * Both children are permanent. When the worker crashes, the supervisor
 * restarts it alone: same ref, fresh state (its on_create runs again),
 * while the cache goes on untouched, with everything it was given.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xoscar/xoscar.h>

enum { GET = 1, PUT = 2, SQUARE = 3 };

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "supervisor: %s: %s\n", what, xo_strerror(rc));
        exit(1);
    }
}

/* ---- cache: its table lives in its state, so no locks are needed ------- */

struct cache { long key[16], value[16]; int n; };

static int cache_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct cache *c = state;
    const long *kv = m->data; /* PUT: {key, value}; GET: {key} */
    if (m->tag == PUT && c->n < 16) {
        c->key[c->n] = kv[0];
        c->value[c->n++] = kv[1];
        return xo_reply(m->request, PUT, NULL, 0);
    }
    for (int i = 0; m->tag == GET && i < c->n; i++)
        if (c->key[i] == kv[0])
            return xo_reply(m->request, GET, &c->value[i], sizeof(long));
    return xo_fail(ctx, XO_EINVAL, "cannot %s %ld",
                   m->tag == PUT ? "store" : "find", kv[0]);
}

static const xo_actor_def_t cache_def = {
    .name = "cache", .state_size = sizeof(struct cache),
    .on_message = cache_message,
};

/* ---- worker: finds the cache by its uid at each (re)start -------------- */

struct worker { xo_ref_t cache; long jobs; /* since its last start */ };

static int worker_create(xo_ctx_t *ctx, void *state, const void *arg,
                         size_t size)
{
    (void)arg;
    (void)size;
    struct worker *w = state;
    return xo_lookup(xo_ctx_runtime(ctx), "cache", &w->cache);
}

static int worker_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct worker *w = state;
    long n = *(const long *)m->data;
    if (n < 0) /* this incarnation ends; the caller gets the error */
        return xo_crash(ctx, XO_EINVAL, "negative input %ld", n);
    long kv[2] = { n, n * n };
    xo_future_t *f; /* a handler may wait: its thread runs others meanwhile */
    xo_result_t r;
    int rc = xo_call(w->cache, PUT, kv, sizeof(kv), &f);
    if (rc == 0) {
        if ((rc = xo_future_wait(f, -1)) == 0)
            rc = xo_future_result(f, 0, &r);
        xo_future_release(f);
    }
    if (rc != 0)
        return xo_fail(ctx, rc, "the cache refused %ld", n);
    long reply[2] = { kv[1], ++w->jobs };
    return xo_reply(m->request, SQUARE, reply, sizeof(reply));
}

static const xo_actor_def_t worker_def = {
    .name = "worker", .state_size = sizeof(struct worker),
    .on_create = worker_create, .on_message = worker_message,
};

/* ---- main: start the tree, feed the worker, see what survived ---------- */

/* Call and wait; the reply goes to out, or the error's text to err. */
static int ask(xo_ref_t to, uint32_t tag, long n, long out[2], char err[96])
{
    xo_future_t *f;
    xo_result_t r;
    check(xo_call(to, tag, &n, sizeof(n), &f), "call");
    check(xo_future_wait(f, -1), "wait");
    int rc = xo_future_result(f, 0, &r);
    if (rc == 0)
        memcpy(out, r.data, r.size <= 2 * sizeof(long) ? r.size : 0);
    else
        snprintf(err, 96, "%s (%s)", r.error, xo_err_name(rc));
    xo_future_release(f);
    return rc;
}

int main(void)
{
    xo_runtime_t *rt;
    check(xo_runtime_start(NULL, &rt), "start");

    xo_child_spec_t kids[2] = {
        { .name = "cache", .def = &cache_def, .restart = XO_CHILD_PERMANENT },
        { .name = "worker", .def = &worker_def, .restart = XO_CHILD_PERMANENT },
    };
    for (int i = 0; i < 2; i++) {
        xo_spawn_opts_init(&kids[i].opts);
        kids[i].opts.uid = kids[i].name; /* so that xo_lookup finds it */
    }
    xo_sup_spec_t spec = { .strategy = XO_SUP_ONE_FOR_ONE, .intensity = 5,
                           .children = kids, .nchildren = 2 };
    xo_ref_t sup, worker, cache;
    check(xo_supervisor_start(rt, &spec, NULL, &sup), "supervisor");
    check(xo_lookup(rt, "worker", &worker), "lookup");
    check(xo_lookup(rt, "cache", &cache), "lookup");

    long out[2];
    char err[96];
    const long inputs[] = { 2, 3, -1, 4, -2, 5 };
    for (int i = 0; i < 6; i++) {
        if (ask(worker, SQUARE, inputs[i], out, err) == 0)
            printf("worker: %ld squared is %ld (job %ld since its start)\n",
                   inputs[i], out[0], out[1]);
        else
            printf("worker: %ld crashed it: %s\n", inputs[i], err);
    }

    int kept = 0; /* the cache never fell: it should hold all four */
    for (long key = 2; key <= 5; key++) {
        if (ask(cache, GET, key, out, err) != 0) {
            printf("cache: %s\n", err);
            continue;
        }
        printf("cache: %ld -> %ld\n", key, out[0]);
        kept++;
    }

    /* The supervisor's view, then the runtime's: the refs never changed. */
    xo_child_info_t info[2];
    size_t count;
    check(xo_supervisor_children(sup, info, 2, &count), "children");
    for (size_t i = 0; i < count; i++)
        printf("child %-6s restarts %llu, ref %s\n", info[i].name,
               (unsigned long long)info[i].restarts,
               xo_ref_eq(info[i].ref, i == 0 ? cache : worker) ? "unchanged"
                                                               : "CHANGED");
    xo_actor_stats_t st;
    check(xo_actor_stats(worker, &st), "stats");
    printf("worker: %llu restarts (xo_actor_stats)\n",
           (unsigned long long)st.restarts);

    xo_runtime_stop(rt); /* the supervisor stops the worker, then the cache */
    xo_runtime_free(rt);
    return st.restarts == 2 && kept == 4 ? 0 : 1;
}
