/*
 * metrics.c -- a runtime's stats in Prometheus's text format: what to copy
 * to wire xoscar into your own exporter (docs/metrics.md).
 *
 *   metrics                        run the graph, print the metrics
 *   metrics --serve PORT SECONDS   then serve them at /metrics for that
 *                                  long (PORT "any": a free one), with
 *                                  the producer still at work
 *   metrics --cost N               what one xo_metrics_write of N more
 *                                  actors costs, instead of printing
 *
 * The graph: a producer deals jobs out to two workers, one with a uid
 * ("summer") and one without; then it calls each worker, so that when its
 * own call returns every job was handled. The metrics go to stdout (pipe
 * them to `promtool check metrics`), everything else to stderr.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep, open_memstream */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xoscar/xoscar.h>

enum { JOB = 1, SYNC = 2, RUN = 3, IDLE = 4 };

#define JOBS 1000

/* ---- worker: adds up the squares of its jobs ------------------------- */

struct worker {
    long sum;
};

static int worker_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    struct worker *w = state;
    if (m->tag == JOB) {
        long v = *(const long *)m->data;
        w->sum += v * v;
        return 0;
    }
    if (m->tag == SYNC) /* every job sent before this call is done */
        return xo_reply(m->request, SYNC, &w->sum, sizeof(w->sum));
    return 0;
}

static const xo_actor_def_t worker_def = {
    .name = "worker", .state_size = sizeof(struct worker),
    .on_message = worker_message,
};

/* ---- producer: deals jobs out, then waits for both workers ----------- */

struct producer {
    xo_ref_t workers[2];
    long next;
};

static int producer_create(xo_ctx_t *ctx, void *state, const void *arg,
                           size_t size)
{
    (void)ctx;
    if (size != sizeof(xo_ref_t[2]))
        return XO_EINVAL;
    memcpy(((struct producer *)state)->workers, arg, size);
    return 0;
}

static int sync_worker(xo_ref_t w, long *sum)
{
    xo_future_t *f;
    int rc = xo_call(w, SYNC, NULL, 0, &f);
    if (rc != 0)
        return rc;
    xo_result_t res;
    /* A wait in a handler lends this worker to other actors meanwhile. */
    rc = xo_future_wait(f, -1);
    if (rc == 0)
        rc = xo_future_result(f, 0, &res);
    if (rc == 0)
        *sum = *(const long *)res.data;
    xo_future_release(f);
    return rc;
}

static int producer_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct producer *p = state;
    if (m->tag != RUN)
        return 0;
    long jobs = *(const long *)m->data;
    for (long i = 0; i < jobs; i++, p->next++) {
        int rc = xo_tell(p->workers[p->next % 2], JOB, &p->next,
                         sizeof(p->next));
        if (rc != 0)
            return xo_fail(ctx, rc, "job %ld: %s", p->next, xo_strerror(rc));
    }
    long sums[2], total = 0;
    for (int k = 0; k < 2; k++) {
        int rc = sync_worker(p->workers[k], &sums[k]);
        if (rc != 0)
            return xo_fail(ctx, rc, "sync: %s", xo_strerror(rc));
        total += sums[k];
    }
    return xo_reply(m->request, RUN, &total, sizeof(total));
}

static const xo_actor_def_t producer_def = {
    .name = "producer", .state_size = sizeof(struct producer),
    .on_create = producer_create, .on_message = producer_message,
};

static int idle_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    return 0;
}

static const xo_actor_def_t idle_def = { .name = "idle",
                                         .on_message = idle_message };

/* ---- main ---------------------------------------------------------------- */

static int run_jobs(xo_ref_t producer, long jobs, long *total)
{
    xo_future_t *f;
    xo_result_t res;
    int rc = xo_call(producer, RUN, &jobs, sizeof(jobs), &f);
    if (rc != 0)
        return rc;
    rc = xo_future_wait(f, -1);
    if (rc == 0)
        rc = xo_future_result(f, 0, &res);
    if (rc == 0)
        *total = *(const long *)res.data;
    else if (rc == res.status)
        fprintf(stderr, "metrics: %s\n", res.error);
    xo_future_release(f);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One xo_metrics_write to /dev/null, timed (the best of three), and its
   size. */
static int time_write(xo_runtime_t *rt, const char *what)
{
    FILE *sink = fopen("/dev/null", "w");
    if (sink == NULL)
        return XO_EINVAL;
    double best = 1e9;
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        double t0 = now_s();
        rc = xo_metrics_write(rt, sink);
        double t = now_s() - t0;
        best = t < best ? t : best;
    }
    fclose(sink);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (rc == 0 && mem != NULL)
        rc = xo_metrics_write(rt, mem);
    if (mem != NULL)
        fclose(mem);
    free(text);
    if (rc == 0) {
        xo_runtime_stats_t rs;
        xo_runtime_stats(rt, &rs);
        fprintf(stderr, "xo_metrics_write: %llu actors (%s): %.1f ms, "
                        "%.1f MB\n",
                (unsigned long long)rs.actors, what, best * 1e3,
                (double)len / 1e6);
    }
    return rc;
}

/* --cost N: N idle actors more, timed before they run (no histogram) and
   after each handled a message (each one then has a histogram: this
   example times every turn). */
static int cost(xo_runtime_t *rt, long n)
{
    xo_ref_t *refs = malloc((size_t)n * sizeof(*refs));
    if (refs == NULL)
        return XO_ENOMEM;
    int rc = 0;
    for (long i = 0; i < n && rc == 0; i++)
        rc = xo_spawn(rt, &idle_def, NULL, &refs[i]);
    if (rc == 0)
        rc = time_write(rt, "without histograms");
    for (long i = 0; i < n && rc == 0; i++)
        rc = xo_tell(refs[i], IDLE, NULL, 0);
    /* Each is handled once its pool's worker gets to it. */
    for (long i = 0; i < n && rc == 0; i++) {
        xo_actor_stats_t st;
        while ((rc = xo_actor_stats(refs[i], &st)) == 0 && st.handled == 0) {
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
    }
    if (rc == 0)
        rc = time_write(rt, "each with a histogram");
    free(refs);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: metrics [--serve PORT|any SECONDS | --cost N]\n");
    return 2;
}

int main(int argc, char **argv)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 2;
    /* Time every handler run, so that even this short run fills the
       histograms; the default (one turn in 64) costs less. */
    cfg.handler_sample = 1;
    long serve_s = 0, cost_n = 0;
    if (argc == 4 && strcmp(argv[1], "--serve") == 0) {
        char *end = NULL;
        unsigned long port = XO_METRICS_PORT_ANY;
        if (strcmp(argv[2], "any") != 0) {
            port = strtoul(argv[2], &end, 10);
            if (port == 0 || port > 65535 || *end != '\0')
                return usage();
        }
        cfg.metrics_port = (unsigned)port;
        serve_s = strtol(argv[3], &end, 10);
        if (serve_s <= 0 || *end != '\0')
            return usage();
    } else if (argc == 3 && strcmp(argv[1], "--cost") == 0) {
        char *end;
        cost_n = strtol(argv[2], &end, 10);
        if (cost_n <= 0 || *end != '\0')
            return usage();
    } else if (argc != 1) {
        return usage();
    }

    xo_runtime_t *rt;
    int rc = xo_runtime_start(&cfg, &rt);
    if (rc != 0) {
        fprintf(stderr, "metrics: start: %s (%s)\n", xo_strerror(rc),
                xo_err_name(rc));
        return 1;
    }
    xo_ref_t workers[2], producer;
    xo_spawn_opts_t named;
    xo_spawn_opts_init(&named);
    named.uid = "summer";
    rc = xo_spawn(rt, &worker_def, &named, &workers[0]);
    if (rc == 0)
        rc = xo_spawn(rt, &worker_def, NULL, &workers[1]);
    xo_spawn_opts_t with_workers;
    xo_spawn_opts_init(&with_workers);
    with_workers.arg = workers;
    with_workers.arg_size = sizeof(workers);
    if (rc == 0)
        rc = xo_spawn(rt, &producer_def, &with_workers, &producer);
    long total = 0;
    if (rc == 0)
        rc = run_jobs(producer, JOBS, &total);
    if (rc == 0)
        fprintf(stderr, "metrics: %d jobs done, sum of squares %ld\n", JOBS,
                total);

    if (rc == 0 && cost_n > 0)
        rc = cost(rt, cost_n);
    else if (rc == 0)
        rc = xo_metrics_write(rt, stdout);

    if (rc == 0 && serve_s > 0) {
        unsigned port = 0;
        xo_metrics_port(rt, &port);
        fprintf(stderr, "metrics: serving http://127.0.0.1:%u/metrics for "
                        "%ld s\n", port, serve_s);
        /* Keep the counters moving while someone scrapes. */
        double end = now_s() + (double)serve_s;
        while (rc == 0 && now_s() < end) {
            rc = run_jobs(producer, 100, &total);
            struct timespec ts = { 0, 100000000 };
            nanosleep(&ts, NULL);
        }
    }
    if (rc != 0)
        fprintf(stderr, "metrics: %s\n", xo_strerror(rc));
    xo_runtime_stop(rt);
    xo_runtime_free(rt);
    return rc == 0 ? 0 : 1;
}
