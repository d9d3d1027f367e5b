/*
 * fanout.c -- parallel work that must spread: one driver hands `jobs`
 * jobs of `work_us` microseconds of computation each, round-robin, to
 * `actors` worker actors, and waits for every answer.
 *
 * All actors are placed by the runtime's default policy, so they are
 * movable, and the driver's sends make every worker runnable on the
 * driver's own worker (docs/scheduler.md, "Locality"). Only stealing
 * spreads them: with it an idle worker takes half of the queued workers
 * once they have waited cfg.steal_wait_ns, and the jobs run on every
 * core; without it (--no-steal) they all run on one. `parallelism` in
 * extra is the computation done over the wall time: about the number of
 * cores the jobs ran on. Each job's result (a hash of its index) is
 * checked by the driver.
 */
#include "bench.h"

#include <stdlib.h>

enum { KICK = 1, JOB = 2, DONE = 3 };

struct fanout {
    struct bench_done *done;
    uint64_t jobs, work_ns, actors;
    xo_ref_t *workers;
    uint64_t answered; /* written by the driver before it signals */
};

struct job {
    uint64_t index;
    uint64_t value;
};

/* work_ns of computation on the job's index. */
static uint64_t compute(uint64_t index, uint64_t work_ns)
{
    uint64_t h = index, until = bench_now_ns() + work_ns;
    do {
        for (int i = 0; i < 64; i++)
            h = (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9u + 1;
    } while (bench_now_ns() < until);
    return h & 1 ? index * 2 + 1 : index * 2;
}

static int worker_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct fanout *f = *(struct fanout **)state;
    (void)ctx;
    struct job j = *(const struct job *)m->data;
    j.value = compute(j.index, f->work_ns);
    return xo_tell(m->sender, DONE, &j, sizeof(j));
}

static int driver_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct fanout *f = *(struct fanout **)state;
    (void)ctx;
    if (m->tag == DONE) {
        const struct job *j = m->data;
        if (j->value >> 1 != j->index)
            return bench_fail(f->done, "a job's answer is not its own", 0);
        if (++f->answered == f->jobs)
            bench_done_signal(f->done);
        return 0;
    }
    for (uint64_t i = 0; i < f->jobs; i++) {
        struct job j = { i, 0 };
        int rc = xo_tell(f->workers[i % f->actors], JOB, &j, sizeof(j));
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const xo_actor_def_t worker_def = {
    .name = "fanout-worker", .state_size = sizeof(struct fanout *),
    .on_create = bench_copy_arg, .on_message = worker_message,
};
static const xo_actor_def_t driver_def = {
    .name = "fanout-driver", .state_size = sizeof(struct fanout *),
    .on_create = bench_copy_arg, .on_message = driver_message,
};

int bench_fanout(const struct bench_opts *opts, const uint64_t *args,
                 struct bench_result *out)
{
    struct fanout f = { .jobs = args[0], .work_ns = args[1] * 1000,
                        .actors = args[2] };
    if (f.actors == 0 || f.jobs == 0) {
        fprintf(stderr, "fanout: jobs and actors must be at least 1\n");
        return -1;
    }
    f.workers = calloc(f.actors, sizeof(*f.workers));
    if (f.workers == NULL)
        return -1;
    struct bench_env env;
    if (bench_start(&env, "fanout", opts) != 0) {
        free(f.workers);
        return -1;
    }
    f.done = &env.done;
    struct fanout *arg = &f;
    int rc = 0;
    for (uint64_t i = 0; i < f.actors && rc == 0; i++)
        rc = bench_spawn(&env, &worker_def, XO_POOL_ANY, &arg, sizeof(arg),
                         &f.workers[i]);
    xo_ref_t driver;
    if (rc == 0)
        rc = bench_spawn(&env, &driver_def, XO_POOL_ANY, &arg, sizeof(arg),
                         &driver);
    if (rc == 0)
        rc = bench_measure(&env, &driver, 1, KICK, &out->seconds);
    if (rc == 0 && f.answered != f.jobs)
        rc = bench_error(&env, "fewer answers than jobs");
    out->ops = f.jobs;
    if (out->seconds > 0)
        bench_extra(out, "parallelism", "%.2f",
                    (double)f.jobs * (double)f.work_ns /
                        (out->seconds * 1e9));
    int fin = bench_finish(&env, out);
    free(f.workers);
    return fin == 0 ? rc : -1;
}
