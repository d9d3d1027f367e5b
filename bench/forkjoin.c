/*
 * forkjoin.c -- one driver, many workers, a little arithmetic per message
 * (Savina "fork-join throughput").
 *
 * On the kick-off the driver loops i = 0 .. per_worker-1 and sends i to
 * every worker, all from one handler turn with no flow control. Each worker
 * adds i to an integer sum and sin(i)^2 to a float sum. When a worker has
 * its per_worker messages it files its sums; the last worker to finish
 * signals. Checks: every worker's count and integer sum, and float sums
 * that are bit-for-bit equal across workers (they saw the same sequence)
 * and equal to the main thread's own.
 *
 * The actors are placed by the runtime's default policy (least loaded:
 * they alternate between pools) and are movable by default: the workers
 * the driver's sends make runnable queue on the driver's worker, and an
 * idle worker takes half of them at a time (docs/scheduler.md). With
 * --move fixed, the half that shares the driver's pool runs only in its
 * turn's yields and after it.
 */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { KICK = 1, WORK = 2 };

struct sums {
    uint64_t count, sum;
    double fsum;
};

struct forkjoin {
    struct bench_done *done;
    uint64_t per_worker, workers;
    xo_ref_t *refs;
    struct sums *filed;        /* per worker, written once at its end */
    _Atomic uint64_t finished; /* workers that filed */
};

/* The spawn argument is the whole initial state (driver and workers). */
struct fj_actor {
    struct forkjoin *fj;
    uint64_t index;
    struct sums sums;
};

static int driver_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct forkjoin *fj = ((struct fj_actor *)state)->fj;
    (void)ctx;
    (void)m;
    for (uint64_t i = 0; i < fj->per_worker; i++)
        for (uint64_t w = 0; w < fj->workers; w++) {
            int rc = xo_tell(fj->refs[w], WORK, &i, sizeof(i));
            if (rc != 0)
                return rc;
        }
    return 0;
}

static void add_term(struct sums *s, uint64_t i)
{
    double x = sin((double)i);
    s->count++;
    s->sum += i;
    s->fsum += x * x;
}

static int worker_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct fj_actor *a = state;
    struct forkjoin *fj = a->fj;
    (void)ctx;
    add_term(&a->sums, *(const uint64_t *)m->data);
    if (a->sums.count < fj->per_worker)
        return 0;
    fj->filed[a->index] = a->sums;
    /* acq_rel: the last worker's increment follows every other's filing,
       and its signal (release) hands them all to the main thread. */
    if (atomic_fetch_add_explicit(&fj->finished, 1, memory_order_acq_rel) +
            1 == fj->workers)
        bench_done_signal(fj->done);
    return 0;
}

static const xo_actor_def_t driver_def = {
    .name = "forkjoin-driver", .state_size = sizeof(struct fj_actor),
    .on_create = bench_copy_arg, .on_message = driver_message,
};
static const xo_actor_def_t worker_def = {
    .name = "forkjoin-worker", .state_size = sizeof(struct fj_actor),
    .on_create = bench_copy_arg, .on_message = worker_message,
};

static int spawn_all(struct bench_env *env, struct forkjoin *fj,
                     xo_ref_t *driver)
{
    struct fj_actor init = { fj, 0, { 0, 0, 0 } };
    if (bench_spawn(env, &driver_def, XO_POOL_ANY, &init, sizeof(init),
                    driver) != 0)
        return -1;
    for (init.index = 0; init.index < fj->workers; init.index++)
        if (bench_spawn(env, &worker_def, XO_POOL_ANY, &init, sizeof(init),
                        &fj->refs[init.index]) != 0)
            return -1;
    return 0;
}

static int check(struct bench_env *env, const struct forkjoin *fj)
{
    struct sums want = { 0, 0, 0 };
    for (uint64_t i = 0; i < fj->per_worker; i++)
        add_term(&want, i);
    for (uint64_t w = 0; w < fj->workers; w++) {
        const struct sums *got = &fj->filed[w];
        if (got->count != want.count || got->sum != want.sum)
            return bench_error(env, "a worker missed messages");
        if (memcmp(&got->fsum, &fj->filed[0].fsum, sizeof(double)) != 0)
            return bench_error(env, "float sums differ between workers");
    }
    if (fabs(fj->filed[0].fsum - want.fsum) > 1e-9 * (1 + fabs(want.fsum)))
        return bench_error(env, "float sums differ from the expected");
    return 0;
}

static int measure(struct bench_env *env, struct forkjoin *fj,
                   struct bench_result *out)
{
    xo_ref_t driver;
    int rc = spawn_all(env, fj, &driver);
    if (rc == 0)
        rc = bench_measure(env, &driver, 1, KICK, &out->seconds);
    if (rc == 0)
        rc = check(env, fj);
    out->ops = fj->per_worker * fj->workers;
    bench_extra(out, "worker_actors", "%llu",
                (unsigned long long)fj->workers);
    return rc;
}

int bench_forkjoin(const struct bench_opts *opts, const uint64_t *args,
                   struct bench_result *out)
{
    struct forkjoin fj = { .per_worker = args[0], .workers = args[1] };
    fj.refs = calloc(fj.workers, sizeof(*fj.refs));
    fj.filed = calloc(fj.workers, sizeof(*fj.filed));
    struct bench_env env;
    int rc = -1;
    if (fj.refs != NULL && fj.filed != NULL &&
        bench_start(&env, "forkjoin", opts) == 0) {
        fj.done = &env.done;
        rc = measure(&env, &fj, out);
        if (bench_finish(&env, out) != 0)
            rc = -1;
    }
    free(fj.refs);
    free(fj.filed);
    return rc;
}
