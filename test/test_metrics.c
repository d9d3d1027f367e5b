/*
 * Metrics: xo_metrics_write's exposition (every family once, with one HELP
 * and one TYPE line and its samples together; counts equal to what the
 * actors handled; histograms cumulative up to +Inf; label values escaped;
 * out of memory at each allocation), Prometheus's own tools on it (the
 * promtool linter, and a real Prometheus server that scrapes the endpoint
 * and answers a query about it), and the /metrics endpoint (GET, HEAD,
 * 404, 405, a port that is taken, a bad address, a stop while scraping).
 *
 * The tests that run Prometheus's programs skip, saying why, where they
 * are not installed (tools/install-deps.sh --tests installs them) or
 * cannot start. Waits are bounded by polling, never asserted on.
 */
#include "support.h"

#include "runtime/runtime.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

enum { COUNT = 1, FAIL = 2, ASK = 3, WRITE = 4 };

/* ---- a probe actor ------------------------------------------------------ */

static int probe_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    if (m->tag == FAIL)
        return xo_fail(ctx, XO_EINVAL, "asked to fail");
    if (m->tag == ASK)
        return xo_reply(m->request, ASK, NULL, 0);
    if (m->tag == WRITE) {
        /* The metrics from inside a handler: its size as the answer. */
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        int rc = xo_metrics_write(xo_ctx_runtime(ctx), f);
        fclose(f);
        free(text);
        if (rc != 0)
            return rc;
        return xo_reply(m->request, WRITE, &len, sizeof(len));
    }
    return 0;
}

static const xo_actor_def_t probe_def = {
    .name = "probe", .on_message = probe_message,
};

/* A runtime whose every handler run is timed (so that the histograms are
   exact), on `port` (0: no server). */
static xo_runtime_t *start_metrics_runtime(unsigned pools, unsigned port)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = pools;
    cfg.spin_ns = 5000;
    cfg.handler_sample = 1;
    cfg.metrics_port = port;
    xo_runtime_t *rt = NULL;
    int rc = xo_runtime_start(&cfg, &rt);
    cr_assert_eq(rc, 0, "xo_runtime_start: %s", xo_strerror(rc));
    return rt;
}

static xo_ref_t spawn_named(xo_runtime_t *rt, const xo_actor_def_t *def,
                            const char *uid)
{
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.uid = uid;
    xo_ref_t r;
    int rc = xo_spawn(rt, def, &opts, &r);
    cr_assert_eq(rc, 0, "xo_spawn %s: %s", uid ? uid : "(no uid)",
                 xo_strerror(rc));
    return r;
}

/* Until the actor's handlers have returned from `handled` messages. */
/* Until r's stats show `handled` messages, `failed` of them failed and
   `timed` handler runs timed. A message counts as handled as soon as its
   handler returns, before its failure is counted and its time added to
   the histogram: waiting for the handled count alone can read those one
   short. */
static void wait_for_all(xo_ref_t r, uint64_t handled, uint64_t failed,
                         uint64_t timed, xo_actor_stats_t *st)
{
    for (;;) {
        int rc = xo_actor_stats(r, st);
        cr_assert_eq(rc, 0, "xo_actor_stats: %s", xo_strerror(rc));
        if (st->handled >= handled && st->failed >= failed &&
            st->handler_samples >= timed)
            return;
        sleep_ms(1);
    }
}

static void wait_for_stats(xo_ref_t r, uint64_t handled, xo_actor_stats_t *st)
{
    wait_for_all(r, handled, 0, 0, st);
}

/* tells COUNT, fails FAIL of them, then waits until all were handled and
   their failures counted. */
static void feed(xo_ref_t r, unsigned count, unsigned fail,
                 xo_actor_stats_t *st)
{
    for (unsigned i = 0; i < count; i++)
        cr_assert_eq(xo_tell(r, COUNT, &i, sizeof(i)), 0);
    for (unsigned i = 0; i < fail; i++)
        cr_assert_eq(xo_tell(r, FAIL, NULL, 0), 0);
    wait_for_all(r, count + fail, fail, 0, st);
}

/* ---- reading the exposition -------------------------------------------- */

static char *metrics_text(xo_runtime_t *rt)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    int rc = xo_metrics_write(rt, f);
    fclose(f);
    cr_assert_eq(rc, 0, "xo_metrics_write: %s", xo_strerror(rc));
    cr_assert_gt(len, 0);
    return text;
}

/* The next line of *p into buf (without its newline); false at the end. */
static bool next_line(const char **p, char *buf, size_t cap)
{
    if (**p == '\0')
        return false;
    const char *end = strchr(*p, '\n');
    size_t len = end != NULL ? (size_t)(end - *p) : strlen(*p);
    cr_assert_lt(len, cap, "a line of %zu bytes", len);
    memcpy(buf, *p, len);
    buf[len] = '\0';
    *p += len + (end != NULL);
    return true;
}

/* The metric name of a sample line, into name. */
static void sample_name(const char *line, char *name, size_t cap)
{
    size_t len = strcspn(line, "{ ");
    cr_assert_lt(len, cap);
    memcpy(name, line, len);
    name[len] = '\0';
}

/* The value of the first sample of `name` whose line contains `part`
   (NULL: any); false when there is none. */
static bool sample(const char *text, const char *name, const char *part,
                   double *value)
{
    char line[4096], n[128];
    const char *p = text;
    while (next_line(&p, line, sizeof(line))) {
        if (line[0] == '#')
            continue;
        sample_name(line, n, sizeof(n));
        if (strcmp(n, name) != 0 || (part != NULL && !strstr(line, part)))
            continue;
        *value = strtod(strrchr(line, ' ') + 1, NULL);
        return true;
    }
    return false;
}

static double must_sample(const char *text, const char *name,
                          const char *part)
{
    double v = 0;
    cr_assert(sample(text, name, part, &v), "no %s sample with %s", name,
              part ? part : "any labels");
    return v;
}

/* ---- the exposition ------------------------------------------------------ */

static const char *const families[] = {
    "xoscar_runtime_uptime_seconds",
    "xoscar_runtime_actors",
    "xoscar_runtime_pools",
    "xoscar_runtime_watchdog_ticks_total",
    "xoscar_runtime_alerts_total",
    "xoscar_pool_state",
    "xoscar_pool_info",
    "xoscar_pool_actors",
    "xoscar_pool_run_queue_depth",
    "xoscar_pool_messages_total",
    "xoscar_pool_turns_total",
    "xoscar_pool_shared_turns_total",
    "xoscar_pool_steals_total",
    "xoscar_pool_parks_total",
    "xoscar_pool_wakes_total",
    "xoscar_pool_busy_seconds_total",
    "xoscar_pool_up_seconds_total",
    "xoscar_actor_messages_total",
    "xoscar_actor_failures_total",
    "xoscar_actor_restarts_total",
    "xoscar_actor_alerts_total",
    "xoscar_actor_mailbox_depth",
    "xoscar_actor_mailbox_high",
    "xoscar_actor_oldest_message_seconds",
    "xoscar_actor_handler_seconds",
};
#define NFAMILIES (sizeof(families) / sizeof(families[0]))

static size_t family_index(const char *name)
{
    for (size_t i = 0; i < NFAMILIES; i++)
        if (strcmp(families[i], name) == 0)
            return i;
    cr_assert(false, "unknown family %s", name);
    return 0;
}

/* The family a sample belongs to: a histogram's series carry suffixes. */
static void family_of(const char *sample_name_, const char *type,
                      char *family, size_t cap)
{
    snprintf(family, cap, "%s", sample_name_);
    if (strcmp(type, "histogram") != 0)
        return;
    static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
    for (size_t i = 0; i < 3; i++) {
        size_t fl = strlen(family), sl = strlen(suffixes[i]);
        if (fl > sl && strcmp(family + fl - sl, suffixes[i]) == 0) {
            family[fl - sl] = '\0';
            return;
        }
    }
}

Test(metrics, every_family_has_one_help_one_type_and_its_samples_together)
{
    xo_runtime_t *rt = start_metrics_runtime(2, 0);
    xo_ref_t a = spawn_named(rt, &probe_def, "first");
    xo_ref_t b = spawn_named(rt, &probe_def, NULL);
    xo_actor_stats_t st;
    feed(a, 10, 1, &st);
    feed(b, 5, 0, &st);
    char *text = metrics_text(rt);
    unsigned help[NFAMILIES] = { 0 }, type[NFAMILIES] = { 0 };
    unsigned samples[NFAMILIES] = { 0 };
    char line[4096], name[128], current[128] = "", current_type[32] = "";
    char family[128];
    const char *p = text;
    bool closed[NFAMILIES] = { false };
    while (next_line(&p, line, sizeof(line))) {
        cr_assert_neq(line[0], '\0', "no empty lines");
        if (strncmp(line, "# HELP ", 7) == 0) {
            sample_name(line + 7, name, sizeof(name));
            size_t i = family_index(name);
            help[i]++;
            if (current[0] != '\0')
                closed[family_index(current)] = true;
            snprintf(current, sizeof(current), "%s", name);
            current_type[0] = '\0';
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            sample_name(line + 7, name, sizeof(name));
            cr_assert_str_eq(name, current, "TYPE follows its HELP");
            type[family_index(name)]++;
            snprintf(current_type, sizeof(current_type), "%s",
                     line + 7 + strlen(name) + 1);
            cr_assert(strcmp(current_type, "counter") == 0 ||
                          strcmp(current_type, "gauge") == 0 ||
                          strcmp(current_type, "histogram") == 0,
                      "type %s", current_type);
            continue;
        }
        cr_assert_neq(line[0], '#', "only HELP and TYPE comments: %s", line);
        cr_assert_neq(current_type[0], '\0', "a sample after its TYPE");
        sample_name(line, name, sizeof(name));
        family_of(name, current_type, family, sizeof(family));
        cr_assert_str_eq(family, current,
                         "%s among the samples of %s", name, current);
        cr_assert_not(closed[family_index(family)]);
        samples[family_index(family)]++;
        /* A counter's name ends in _total, and no other's does. */
        bool total = strlen(family) > 6 &&
                     strcmp(family + strlen(family) - 6, "_total") == 0;
        cr_assert_eq(total, strcmp(current_type, "counter") == 0,
                     "%s is a %s", family, current_type);
    }
    for (size_t i = 0; i < NFAMILIES; i++) {
        cr_assert_eq(help[i], 1, "%s: %u HELP lines", families[i], help[i]);
        cr_assert_eq(type[i], 1, "%s: %u TYPE lines", families[i], type[i]);
        cr_assert_gt(samples[i], 0, "%s has samples", families[i]);
    }
    /* Per actor, per pool: a sample each. */
    cr_assert_eq(samples[family_index("xoscar_actor_messages_total")], 2);
    cr_assert_eq(samples[family_index("xoscar_pool_actors")], 2);
    /* running, removing, removed, failed */
    cr_assert_eq(samples[family_index("xoscar_pool_state")], 2 * 4);
    cr_assert_eq(samples[family_index("xoscar_runtime_alerts_total")],
                 XO_ALERT_KINDS - 1);
    free(text);
    stop_runtime(rt);
}

Test(metrics, counts_are_what_the_actor_handled)
{
    xo_runtime_t *rt = start_metrics_runtime(1, 0);
    xo_ref_t r = spawn_named(rt, &probe_def, "counted");
    xo_actor_stats_t st;
    feed(r, 50, 3, &st);
    xo_future_t *f;
    cr_assert_eq(xo_call(r, ASK, NULL, 0, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_future_release(f);
    wait_for_all(r, 54, 3, 54, &st); /* every run timed: handler_sample 1 */
    char *text = metrics_text(rt);
    const char *who = "{actor=\"counted\",";
    cr_assert_eq(must_sample(text, "xoscar_actor_messages_total", who), 54);
    cr_assert_eq(must_sample(text, "xoscar_actor_failures_total", who), 3);
    cr_assert_eq(must_sample(text, "xoscar_actor_restarts_total", who), 0);
    cr_assert_eq(must_sample(text, "xoscar_actor_mailbox_depth", who), 0);
    cr_assert_eq(must_sample(text, "xoscar_actor_mailbox_high", who),
                 (double)st.mailbox_high);
    /* Every handler run was timed (cfg.handler_sample = 1). */
    cr_assert_eq(must_sample(text, "xoscar_actor_handler_seconds_count", who),
                 54);
    double sum = must_sample(text, "xoscar_actor_handler_seconds_sum", who);
    cr_assert_eq(sum, (double)st.handler_sum_ns / 1e9);
    cr_assert_eq(must_sample(text, "xoscar_runtime_actors", NULL), 1);
    cr_assert_eq(must_sample(text, "xoscar_runtime_pools", NULL), 1);
    cr_assert_geq(must_sample(text, "xoscar_pool_messages_total",
                              "{pool=\"0\",kind=\"cpu\"}"),
                  54);
    cr_assert_eq(must_sample(text, "xoscar_pool_actors",
                             "{pool=\"0\",kind=\"cpu\"}"),
                 1);
    cr_assert_eq(must_sample(text, "xoscar_pool_state", "state=\"running\""),
                 1);
    cr_assert_eq(must_sample(text, "xoscar_pool_state", "state=\"removed\""),
                 0);
    free(text);
    stop_runtime(rt);
}

Test(metrics, histogram_buckets_are_cumulative_up_to_inf_and_count_equals_it)
{
    xo_runtime_t *rt = start_metrics_runtime(1, 0);
    xo_ref_t r = spawn_named(rt, &probe_def, "timed");
    xo_actor_stats_t st;
    feed(r, 200, 0, &st);
    wait_for_all(r, 200, 0, 200, &st); /* every run timed */
    char *text = metrics_text(rt);
    char line[4096], name[128];
    const char *p = text;
    unsigned buckets = 0;
    double last = -1, inf = -1;
    while (next_line(&p, line, sizeof(line))) {
        sample_name(line, name, sizeof(name));
        if (strcmp(name, "xoscar_actor_handler_seconds_bucket") != 0 ||
            !strstr(line, "actor=\"timed\""))
            continue;
        const char *le = strstr(line, ",le=\"");
        cr_assert_not_null(le);
        le += 5;
        double v = strtod(strrchr(line, ' ') + 1, NULL);
        cr_assert_geq(v, last, "cumulative: %s", line);
        last = v;
        if (strncmp(le, "+Inf\"", 5) == 0) {
            inf = v;
            cr_assert_eq(buckets, XO_HIST_BUCKETS - 1, "+Inf comes last");
        } else {
            /* The bound is the bucket's, in seconds. */
            double bound = strtod(le, NULL);
            uint64_t ns = (uint64_t)(bound * 1e9 + 0.5);
            cr_assert_eq(ns, xo_hist_upper_ns(buckets), "bucket %u: %s",
                         buckets, le);
        }
        buckets++;
    }
    cr_assert_eq(buckets, XO_HIST_BUCKETS);
    cr_assert_eq(inf, 200);
    cr_assert_eq(must_sample(text, "xoscar_actor_handler_seconds_count",
                             "actor=\"timed\""),
                 inf);
    free(text);
    stop_runtime(rt);
}

Test(metrics, an_actor_without_a_sampled_run_has_no_histogram)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 1;
    cfg.spin_ns = 5000;
    cfg.handler_sample = 0; /* nothing timed */
    xo_runtime_t *rt;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), 0);
    xo_ref_t r = spawn_named(rt, &probe_def, "untimed");
    xo_actor_stats_t st;
    feed(r, 5, 0, &st);
    char *text = metrics_text(rt);
    double v;
    cr_assert_eq(must_sample(text, "xoscar_actor_messages_total",
                             "actor=\"untimed\""),
                 5);
    cr_assert_not(sample(text, "xoscar_actor_handler_seconds_count", NULL,
                         &v));
    cr_assert(strstr(text, "# TYPE xoscar_actor_handler_seconds histogram\n"),
              "the family is still declared");
    free(text);
    stop_runtime(rt);
}

static const xo_actor_def_t quoted_def = {
    .name = "say \"hi\"\\now", .on_message = probe_message,
};

Test(metrics, label_values_are_escaped_and_kept_utf8)
{
    xo_runtime_t *rt = start_metrics_runtime(1, 0);
    spawn_named(rt, &probe_def, "a \"quote\", a \\ and a\nnewline");
    spawn_named(rt, &probe_def, "gr\xc3\xb6\xc3\x9f" "e");  /* "größe" */
    spawn_named(rt, &probe_def, "bad \xff byte");
    spawn_named(rt, &quoted_def, NULL);
    char *text = metrics_text(rt);
    cr_assert(strstr(text, "{actor=\"a \\\"quote\\\", a \\\\ and a\\nnewline\","),
              "quote, backslash and newline escaped:\n%s", text);
    cr_assert(strstr(text, "{actor=\"gr\xc3\xb6\xc3\x9f" "e\","),
              "UTF-8 kept as it is");
    cr_assert(strstr(text, "{actor=\"bad \xef\xbf\xbd byte\","),
              "a byte that is not UTF-8 becomes U+FFFD");
    cr_assert(strstr(text, ",definition=\"say \\\"hi\\\"\\\\now\","),
              "definition names are escaped too");
    /* No raw newline inside any sample. */
    char line[4096];
    const char *p = text;
    while (next_line(&p, line, sizeof(line)))
        cr_assert(line[0] == '#' || strncmp(line, "xoscar_", 7) == 0,
                  "%s", line);
    free(text);
    stop_runtime(rt);
}

Test(metrics, actors_without_a_uid_are_named_by_their_ref_and_never_share_a_series)
{
    xo_runtime_t *rt = start_metrics_runtime(1, 0);
    xo_ref_t a = spawn_named(rt, &probe_def, NULL);
    xo_ref_t b = spawn_named(rt, &probe_def, NULL);
    char *text = metrics_text(rt);
    char want[128];
    snprintf(want, sizeof(want), "{actor=\"0x%llx\",ref=\"0x%llx\",",
             (unsigned long long)a.id, (unsigned long long)a.id);
    cr_assert(strstr(text, want), "%s", want);
    snprintf(want, sizeof(want), "{actor=\"0x%llx\",ref=\"0x%llx\",",
             (unsigned long long)b.id, (unsigned long long)b.id);
    cr_assert(strstr(text, want), "%s", want);
    free(text);
    stop_runtime(rt);
}

Test(metrics, a_handler_can_write_the_metrics)
{
    xo_runtime_t *rt = start_metrics_runtime(2, 0);
    xo_ref_t r = spawn_named(rt, &probe_def, "writer");
    spawn_named(rt, &probe_def, "other");
    xo_future_t *f;
    cr_assert_eq(xo_call(r, WRITE, NULL, 0, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t res;
    cr_assert_eq(xo_future_result(f, 0, &res), 0, "%s", res.error);
    cr_assert_eq(res.size, sizeof(size_t));
    cr_assert_gt(*(const size_t *)res.data, 1000);
    xo_future_release(f);
    stop_runtime(rt);
}

Test(metrics, bad_arguments_and_a_stopped_runtime_are_refused)
{
    xo_runtime_t *rt = start_metrics_runtime(1, 0);
    cr_assert_eq(xo_metrics_write(NULL, stdout), XO_EINVAL);
    cr_assert_eq(xo_metrics_write(rt, NULL), XO_EINVAL);
    unsigned port = 1;
    cr_assert_eq(xo_metrics_port(NULL, &port), XO_EINVAL);
    cr_assert_eq(xo_metrics_port(rt, NULL), XO_EINVAL);
    cr_assert_eq(xo_metrics_port(rt, &port), XO_ENOTEXIST, "no server");
    cr_assert_eq(port, 1, "untouched");
    cr_assert_eq(xo_runtime_stop(rt), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_eq(xo_metrics_write(rt, f), XO_ECLOSED);
    fclose(f);
    cr_assert_eq(len, 0);
    free(text);
    cr_assert_eq(xo_metrics_port(rt, &port), XO_ECLOSED);
    xo_runtime_free(rt);
}

Test(metrics, each_failed_allocation_gives_enomem_and_writes_nothing)
{
    /* No watchdog: nothing else allocates while the hook is armed. */
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 1;
    cfg.spin_ns = 5000;
    cfg.handler_sample = 1;
    cfg.watch_tick_ns = 0;
    xo_runtime_t *rt;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), 0);
    /* Enough actors, with long enough uids, to outgrow the first guess
       of every array (rows, label text, histograms). */
    xo_ref_t refs[300];
    char uid[240];
    for (unsigned i = 0; i < 300; i++) {
        snprintf(uid, sizeof(uid), "%0200u", i);
        refs[i] = spawn_named(rt, &probe_def, uid);
        cr_assert_eq(xo_tell(refs[i], COUNT, NULL, 0), 0);
    }
    xo_actor_stats_t st;
    for (unsigned i = 0; i < 300; i++)
        wait_for_stats(refs[i], 1, &st);
    int failures = 0;
    for (long k = 1;; k++) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        xi_mem_fail_after(&rt->mem, k);
        int rc = xo_metrics_write(rt, f);
        xi_mem_fail_after(&rt->mem, 0);
        fclose(f);
        free(text);
        if (rc == 0) {
            cr_assert_gt(len, 0);
            break;
        }
        failures++;
        cr_assert_eq(rc, XO_ENOMEM, "allocation %ld: %s", k, xo_strerror(rc));
        cr_assert_eq(len, 0, "allocation %ld: nothing written", k);
        cr_assert_lt(k, 100, "a few allocations");
    }
    cr_assert_geq(failures, 6, "rows, text and histograms, each grown, "
                               "pools, the output buffer");
    char *text = metrics_text(rt);
    cr_assert_eq(must_sample(text, "xoscar_runtime_actors", NULL), 300,
                 "the runtime goes on");
    free(text);
    stop_runtime(rt);
}

/* ---- running programs ------------------------------------------------------ */

/* Skip the test, saying why where it shows: Criterion prints its [SKIP]
   lines only with --verbose, so the reason goes to stderr too (the TSan
   harness prints its own). */
static void skip_because(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));
static void skip_because(const char *fmt, ...)
{
    char why[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
#ifndef XO_TEST_HARNESS_CRITERION_H
    fprintf(stderr, "[SKIP] metrics: %s\n", why);
#endif
    cr_skip_test("%s", why);
    abort(); /* not reached */
}

/* The program `name` on PATH, into path; false when there is none. */
static bool find_program(const char *name, char *path, size_t cap)
{
    const char *dirs = getenv("PATH");
    if (dirs == NULL)
        dirs = "/usr/local/bin:/usr/bin:/bin";
    while (*dirs != '\0') {
        size_t len = strcspn(dirs, ":");
        snprintf(path, cap, "%.*s/%s", (int)len, dirs, name);
        if (len > 0 && access(path, X_OK) == 0)
            return true;
        dirs += len + (dirs[len] == ':');
    }
    return false;
}

/* Start argv[0] with stdin from `in` (NULL: /dev/null) and stdout and
   stderr to `out`. It is killed if this thread ends first (a failed
   assertion must not leave a server behind). */
static pid_t spawn_program(char *const argv[], const char *in,
                           const char *out)
{
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* Only async-signal-safe calls until exec: other threads ran. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int i = open(in != NULL ? in : "/dev/null", O_RDONLY);
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (i < 0 || o < 0 || dup2(i, 0) < 0 || dup2(o, 1) < 0 ||
            dup2(o, 2) < 0)
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int wait_program(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        cr_assert_eq(errno, EINTR);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return strdup("");
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, m);
    fclose(f);
    fclose(m);
    return text;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

static int remove_entry(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A scratch directory, or a skip saying why there is none. */
static void make_scratch(char *dir, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, cap, "%s/xoscar-metrics-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        skip_because("no scratch directory for Prometheus (%s: %s)", dir,
                     strerror(errno));
}

/* promtool checks the exposition with the prometheus client library's
   parser and its own lint rules (names, suffixes, units, HELP). */
Test(metrics, promtool_accepts_the_output)
{
    char promtool[4096];
    if (!find_program("promtool", promtool, sizeof(promtool)))
        skip_because("promtool is not installed (Debian: the prometheus "
                     "package; tools/install-deps.sh --tests)");
    xo_runtime_t *rt = start_metrics_runtime(2, 0);
    xo_ref_t r = spawn_named(rt, &probe_def, "a \"quote\", a \\ and a\nnewline");
    spawn_named(rt, &probe_def, "bad \xff byte");
    spawn_named(rt, &quoted_def, NULL);
    xo_actor_stats_t st;
    feed(r, 20, 2, &st);
    char dir[256], in[300], out[300];
    make_scratch(dir, sizeof(dir));
    snprintf(in, sizeof(in), "%s/metrics.txt", dir);
    snprintf(out, sizeof(out), "%s/promtool.txt", dir);
    char *text = metrics_text(rt);
    stop_runtime(rt);
    write_file(in, text);
    free(text);
    char *argv[] = { promtool, "check", "metrics", NULL };
    int status = wait_program(spawn_program(argv, in, out));
    char *said = read_file(out);
    remove_tree(dir);
    cr_assert_eq(status, 0, "promtool check metrics: exit %d:\n%s", status,
                 said);
    cr_assert_str_eq(said, "", "promtool has no complaint");
    free(said);
}

/* ---- HTTP ---------------------------------------------------------------------- */

struct http_reply {
    int status;    /* 0: no answer (refused, or closed before one) */
    char *head;    /* status line and headers */
    char *body;
    size_t body_len;
};

static void reply_free(struct http_reply *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* One request over HTTP/1.0 (the server closes after its answer). No
   assertions: the stop-while-scraping test calls it from a thread. */
static void http_request(unsigned port, const char *method, const char *path,
                         struct http_reply *r)
{
    memset(r, 0, sizeof(*r));
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return;
    struct timeval tv = { 30, 0 }; /* a hung server fails, never hangs */
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char req[1024];
    int len = snprintf(req, sizeof(req),
                       "%s %s HTTP/1.0\r\nHost: 127.0.0.1:%u\r\n"
                       "Content-Length: 0\r\n\r\n",
                       method, path, port);
    if (connect(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        send(s, req, (size_t)len, MSG_NOSIGNAL) != len) {
        close(s);
        return;
    }
    char *all = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&all, &n);
    char buf[16384];
    ssize_t k;
    while ((k = recv(s, buf, sizeof(buf), 0)) > 0)
        fwrite(buf, 1, (size_t)k, m);
    fclose(m);
    close(s);
    char *end = strstr(all, "\r\n\r\n");
    int status = 0;
    if (end == NULL || sscanf(all, "HTTP/1.%*d %d", &status) != 1) {
        free(all);
        return;
    }
    r->status = status;
    r->head = strndup(all, (size_t)(end - all) + 2);
    r->body_len = n - (size_t)(end + 4 - all);
    r->body = malloc(r->body_len + 1);
    memcpy(r->body, end + 4, r->body_len);
    r->body[r->body_len] = '\0';
    free(all);
}

/* The value of header `name` (case-insensitive), into value. */
static bool header(const struct http_reply *r, const char *name, char *value,
                   size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p != NULL;
         p = strstr(p + 2, "\r\n")) {
        const char *h = p + 2;
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            h += nl + 1;
            while (*h == ' ')
                h++;
            size_t len = strcspn(h, "\r");
            snprintf(value, cap, "%.*s", (int)len, h);
            return true;
        }
    }
    return false;
}

static unsigned served_port(xo_runtime_t *rt)
{
    unsigned port = 0;
    int rc = xo_metrics_port(rt, &port);
    cr_assert_eq(rc, 0, "xo_metrics_port: %s", xo_strerror(rc));
    cr_assert(port > 0 && port < 65536, "port %u", port);
    return port;
}

Test(metrics, the_endpoint_answers_get_metrics_with_the_exposition)
{
    xo_runtime_t *rt = start_metrics_runtime(2, XO_METRICS_PORT_ANY);
    xo_ref_t r = spawn_named(rt, &probe_def, "served");
    xo_actor_stats_t st;
    feed(r, 7, 0, &st);
    unsigned port = served_port(rt);
    struct http_reply rep;
    http_request(port, "GET", "/metrics", &rep);
    cr_assert_eq(rep.status, 200, "GET /metrics: %d", rep.status);
    char type[128];
    cr_assert(header(&rep, "Content-Type", type, sizeof(type)));
    cr_assert_str_eq(type, "text/plain; version=0.0.4; charset=utf-8");
    cr_assert_eq(must_sample(rep.body, "xoscar_actor_messages_total",
                             "{actor=\"served\","),
                 7);
    cr_assert(strstr(rep.body, "# TYPE xoscar_actor_handler_seconds "
                               "histogram\n"));
    reply_free(&rep);
    /* A query string is not part of the path. */
    http_request(port, "GET", "/metrics?name=x", &rep);
    cr_assert_eq(rep.status, 200);
    reply_free(&rep);
    /* HEAD: the same headers, no body. */
    http_request(port, "HEAD", "/metrics", &rep);
    cr_assert_eq(rep.status, 200);
    cr_assert_eq(rep.body_len, 0);
    reply_free(&rep);
    stop_runtime(rt);
}

Test(metrics, the_endpoint_answers_404_elsewhere_and_405_to_other_methods)
{
    xo_runtime_t *rt = start_metrics_runtime(1, XO_METRICS_PORT_ANY);
    unsigned port = served_port(rt);
    static const char *const paths[] = { "/", "/metrics/", "/metricsx",
                                         "/favicon.ico" };
    struct http_reply rep;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        http_request(port, "GET", paths[i], &rep);
        cr_assert_eq(rep.status, 404, "GET %s: %d", paths[i], rep.status);
        reply_free(&rep);
    }
    static const char *const methods[] = { "POST", "PUT", "DELETE",
                                           "OPTIONS" };
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        http_request(port, methods[i], "/metrics", &rep);
        cr_assert_eq(rep.status, 405, "%s /metrics: %d", methods[i],
                     rep.status);
        char allow[64];
        cr_assert(header(&rep, "Allow", allow, sizeof(allow)));
        cr_assert_str_eq(allow, "GET, HEAD");
        reply_free(&rep);
    }
    stop_runtime(rt);
}

static unsigned count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    unsigned n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

static unsigned count_threads(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    cr_assert_not_null(f);
    char line[256];
    unsigned n = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "Threads: %u", &n) == 1)
            break;
    fclose(f);
    return n;
}

/* A start that fails returns rc, hands back no runtime, and leaves no
   thread and no descriptor behind. */
static void start_fails(const xo_config_t *cfg, int want)
{
    unsigned fds = count_fds(), threads = count_threads();
    xo_runtime_t *rt = NULL;
    int rc = xo_runtime_start(cfg, &rt);
    cr_assert_eq(rc, want, "start: %s (%s), wanted %s", xo_err_name(rc),
                 xo_strerror(rc), xo_err_name(want));
    cr_assert_null(rt);
    cr_assert_eq(count_fds(), fds, "no descriptor left open");
    cr_assert_eq(count_threads(), threads, "no thread left running");
}

Test(metrics, a_second_runtime_on_a_taken_port_fails_and_leaves_nothing)
{
    xo_runtime_t *first = start_metrics_runtime(1, XO_METRICS_PORT_ANY);
    unsigned port = served_port(first);
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 1;
    cfg.spin_ns = 5000;
    cfg.metrics_port = port;
    start_fails(&cfg, XO_EADDRINUSE);
    cr_assert_str_eq(xo_err_name(XO_EADDRINUSE), "EADDRINUSE");
    /* The first still serves. */
    struct http_reply rep;
    http_request(port, "GET", "/metrics", &rep);
    cr_assert_eq(rep.status, 200);
    reply_free(&rep);
    stop_runtime(first);
    /* Once it stopped, the port is free again. */
    xo_runtime_t *second = NULL;
    cr_assert_eq(xo_runtime_start(&cfg, &second), 0);
    cr_assert_eq(served_port(second), port);
    stop_runtime(second);
}

Test(metrics, a_bad_address_or_port_fails_the_start_and_leaves_nothing)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 1;
    cfg.spin_ns = 5000;
    cfg.metrics_port = XO_METRICS_PORT_ANY;
    /* Warm up what a first runtime of the process makes once (liburcu's
       threads), so that the counts below compare like with like. */
    stop_runtime(start_metrics_runtime(1, 0));
    cfg.metrics_addr = "not an address";
    start_fails(&cfg, XO_EINVAL);
    cfg.metrics_addr = "localhost"; /* names are not looked up */
    start_fails(&cfg, XO_EINVAL);
    cfg.metrics_addr = "192.0.2.1"; /* TEST-NET-1: no host has it */
    start_fails(&cfg, XO_EINVAL);
    cfg.metrics_addr = NULL;
    cfg.metrics_port = 65537;
    start_fails(&cfg, XO_EINVAL);
}

Test(metrics, a_chosen_port_is_the_port_served)
{
    /* A port that was free a moment ago (the system's pick, let go). */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
    unsigned port = ntohs(a.sin_port);
    close(s);
    xo_runtime_t *rt = start_metrics_runtime(1, port);
    cr_assert_eq(served_port(rt), port);
    struct http_reply rep;
    http_request(port, "GET", "/metrics", &rep);
    cr_assert_eq(rep.status, 200);
    reply_free(&rep);
    stop_runtime(rt);
}

Test(metrics, the_endpoint_binds_an_ipv6_address)
{
    int s = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6,
                               .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    bool v6 = s >= 0 && bind(s, (struct sockaddr *)&a6, sizeof(a6)) == 0;
    if (s >= 0)
        close(s);
    if (!v6)
        skip_because("this host has no IPv6 loopback (::1)");
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 1;
    cfg.spin_ns = 5000;
    cfg.metrics_port = XO_METRICS_PORT_ANY;
    cfg.metrics_addr = "::1";
    xo_runtime_t *rt;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), 0);
    unsigned port = served_port(rt);
    s = socket(AF_INET6, SOCK_STREAM, 0);
    a6.sin6_port = htons((uint16_t)port);
    cr_assert_eq(connect(s, (struct sockaddr *)&a6, sizeof(a6)), 0);
    const char *req = "GET /metrics HTTP/1.0\r\n\r\n";
    cr_assert_eq(send(s, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    char buf[64] = "";
    cr_assert_gt(recv(s, buf, sizeof(buf) - 1, MSG_WAITALL), 12);
    cr_assert(strncmp(buf, "HTTP/1.0 200", 12) == 0 ||
                  strncmp(buf, "HTTP/1.1 200", 12) == 0,
              "%s", buf);
    close(s);
    stop_runtime(rt);
}

/* ---- a stop while scraping ---------------------------------------------------- */

struct scraper {
    unsigned port;
    atomic_bool quit;
    atomic_long ok, unavailable, refused, other;
};

static void *scrape_loop(void *arg)
{
    struct scraper *sc = arg;
    while (!atomic_load(&sc->quit)) {
        struct http_reply rep;
        http_request(sc->port, "GET", "/metrics", &rep);
        if (rep.status == 200)
            atomic_fetch_add(&sc->ok, 1);
        else if (rep.status == 503)
            atomic_fetch_add(&sc->unavailable, 1);
        else if (rep.status == 0)
            atomic_fetch_add(&sc->refused, 1);
        else
            atomic_fetch_add(&sc->other, 1);
        reply_free(&rep);
    }
    return NULL;
}

Test(metrics, a_stop_while_scraping_answers_or_refuses_and_frees_nothing_in_use)
{
    xo_runtime_t *rt = start_metrics_runtime(2, XO_METRICS_PORT_ANY);
    /* Enough actors that a scrape takes a while. */
    for (unsigned i = 0; i < 3000; i++)
        spawn_named(rt, &probe_def, NULL);
    struct scraper sc = { .port = served_port(rt) };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, scrape_loop, &sc), 0);
    while (atomic_load(&sc.ok) < 4)
        sleep_ms(1);
    /* Stop and free under the scrapers' requests: the sanitizer builds
       see any use of what the stop frees. */
    stop_runtime(rt);
    long refused_at_stop = atomic_load(&sc.refused);
    /* After the stop nothing listens: requests are refused. */
    while (atomic_load(&sc.refused) < refused_at_stop + 4)
        sleep_ms(1);
    atomic_store(&sc.quit, true);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(atomic_load(&sc.other), 0,
                 "only 200, 503 or no answer (%ld ok, %ld 503, %ld refused)",
                 atomic_load(&sc.ok), atomic_load(&sc.unavailable),
                 atomic_load(&sc.refused));
}

/* ---- a real Prometheus ------------------------------------------------------------ */

/* A loopback port that was free a moment ago. */
static unsigned free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

/* %XX for everything but unreserved characters. */
static void url_encode(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s != '\0' && n + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.')
            out[n++] = (char)c;
        else
            n += (size_t)snprintf(out + n, cap - n, "%%%02X", c);
    }
    out[n] = '\0';
}

/* The value of the query's first result whose labels include `label`, or
   -1 (none yet). Prometheus answers
   {"status":"success","data":{"resultType":"vector","result":[
     {"metric":{...},"value":[<time>,"<value>"]}, ...]}} */
static double query_value(const char *json, const char *label)
{
    const char *m = strstr(json, label);
    if (strstr(json, "\"status\":\"success\"") == NULL || m == NULL)
        return -1;
    const char *v = strstr(m, "\"value\":[");
    if (v == NULL || (v = strchr(v, ',')) == NULL || v[1] != '"')
        return -1;
    return strtod(v + 2, NULL);
}

enum { PROBE_MESSAGES = 42 };

/* What the server run found; checked after it was killed. */
struct prom_run {
    bool ready;       /* /-/ready answered 200 */
    bool exited;      /* it ended by itself before */
    double value;     /* the query's value for our actor, -1: none */
    char last[512];   /* the last query answer, for a failure message */
};

static void prometheus_scrapes(unsigned target, const char *dir,
                               char *prometheus, struct prom_run *run)
{
    unsigned web = free_port();
    char config[300], data[300], log[300], listen[64], cfg_arg[320],
        data_arg[320];
    snprintf(config, sizeof(config), "%s/prometheus.yml", dir);
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(log, sizeof(log), "%s/prometheus.log", dir);
    char yml[512];
    snprintf(yml, sizeof(yml),
             "global:\n"
             "  scrape_interval: 1s\n"
             "  scrape_timeout: 1s\n"
             "scrape_configs:\n"
             "  - job_name: xoscar\n"
             "    static_configs:\n"
             "      - targets: ['127.0.0.1:%u']\n",
             target);
    write_file(config, yml);
    snprintf(cfg_arg, sizeof(cfg_arg), "--config.file=%s", config);
    snprintf(data_arg, sizeof(data_arg), "--storage.tsdb.path=%s", data);
    snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%u",
             web);
    char *argv[] = { prometheus, cfg_arg, data_arg, listen,
                     "--log.level=warn", NULL };
    pid_t pid = spawn_program(argv, NULL, log);
    char query[256], path[512];
    url_encode("xoscar_actor_messages_total{definition=\"prom_probe\"}",
               query, sizeof(query));
    snprintf(path, sizeof(path), "/api/v1/query?query=%s", query);
    run->value = -1;
    /* Up to 60 s to start, then up to 60 s to have scraped our actor. */
    for (int tries = 0; tries < 600 && !run->exited; tries++) {
        struct http_reply rep;
        http_request(web, "GET", run->ready ? path : "/-/ready", &rep);
        if (rep.status == 200 && !run->ready) {
            run->ready = true;
            tries = 0;
        } else if (rep.status == 200) {
            snprintf(run->last, sizeof(run->last), "%s", rep.body);
            run->value = query_value(rep.body, "\"actor\":\"prom-probe\"");
        }
        reply_free(&rep);
        if (run->value == PROBE_MESSAGES)
            break;
        int status;
        run->exited = waitpid(pid, &status, WNOHANG) == pid;
        sleep_ms(100);
    }
    if (!run->exited) {
        kill(pid, SIGTERM);
        wait_program(pid);
    }
}

static const xo_actor_def_t prom_def = {
    .name = "prom_probe", .on_message = probe_message,
};

Test(metrics, a_prometheus_server_scrapes_the_endpoint_and_answers_a_query)
{
    char prometheus[4096];
    if (!find_program("prometheus", prometheus, sizeof(prometheus)))
        skip_because("prometheus is not installed (Debian: the prometheus "
                     "package; tools/install-deps.sh --tests)");
    char dir[256];
    make_scratch(dir, sizeof(dir));
    xo_runtime_t *rt = start_metrics_runtime(2, XO_METRICS_PORT_ANY);
    xo_ref_t r = spawn_named(rt, &prom_def, "prom-probe");
    xo_actor_stats_t st;
    feed(r, PROBE_MESSAGES, 0, &st);
    struct prom_run run = { 0 };
    prometheus_scrapes(served_port(rt), dir, prometheus, &run);
    stop_runtime(rt);
    char logpath[300];
    snprintf(logpath, sizeof(logpath), "%s/prometheus.log", dir);
    char *log = read_file(logpath);
    remove_tree(dir);
    size_t len = strlen(log);
    char tail[512];
    snprintf(tail, sizeof(tail), "%s", len > 400 ? log + len - 400 : log);
    free(log);
    if (!run.ready)
        skip_because("prometheus did not start (%s); its log ends:\n%s",
                     run.exited ? "it exited" : "not ready within 60 s",
                     tail);
    cr_assert_eq(run.value, PROBE_MESSAGES,
                 "the query found %g; its last answer: %s\nits log ends:\n%s",
                 run.value, run.last, tail);
}
