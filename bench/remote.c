/*
 * remote.c -- messages between two nodes (net/, docs/net.md). The second
 * node is another process that xoscar-bench starts itself: this program
 * again, run as `xoscar-bench __node` (not listed), which joins the
 * network on 127.0.0.1 with a secret the parent hands it in its
 * environment, prints its port, and serves until its stdin closes.
 *
 *   remote_pingpong  ping here, pong there; one ball in flight, each
 *                    round trip timed: p50_ns and p99_ns, against the raw
 *                    TCP round trip (tcp_rt_ns, hw.c) measured in the same
 *                    run before either runtime started: vs_tcp = p50_ns /
 *                    tcp_rt_ns. Then a tenth as many calls from an actor
 *                    here (xo_call_then, one in flight) to an actor there:
 *                    call_p50_ns, call_p99_ns.
 *   remote_tell      one sender here floods a receiver there with messages
 *                    of `bytes` bytes (at least 8: the first 8 are the
 *                    seq); the receiver checks count and order, and
 *                    answers at the end with what it saw and its process's
 *                    peak RSS (peer_peak_rss_kib). A send refused for a full
 *                    queue (XO_EFULL: the net layer's backpressure) is
 *                    retried after a sched_yield; efull counts them.
 *   remote_hol       head-of-line blocking: the second node sends this one
 *                    `rounds` messages of `bytes` bytes each (one at a
 *                    time), while this node, its heartbeat at 1 ms, samples
 *                    the heartbeat's round trip (xo_node_info's rtt_ns, a
 *                    sampler thread reading it every 100 us and keeping
 *                    each new value) during the transfers: hb_p50_ns,
 *                    hb_p99_ns, hb_max_ns, samples; GB_per_s is the
 *                    transfers' rate; idle_hb_p50_ns the round trip with
 *                    nothing in flight, sampled first. The second node
 *                    makes the message once, before the first transfer,
 *                    and sends it wrapped (xo_msg_wrap: no copy).
 *
 * The two processes split the CPUs this one may run on: the first half
 * for this one, the rest for the second node (as one would run two nodes
 * on one machine), so that their pinned workers never share a core; each
 * runs its runtime with the options given (--pools, default one pool per
 * CPU it has, and the rest) and the net layer's defaults.
 */
#include "bench.h"
#include "histogram.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SECRET_ENV "XO_BENCH_NODE_SECRET"
#define POOLS_ENV "XO_BENCH_NODE_POOLS"
#define SPIN_ENV "XO_BENCH_NODE_SPIN_NS"

enum { KICK = 1, BALL, CALL, SETUP, ITEM, DONE, PREPARE, READY, BLAST, BIG };

/* ---- the second node ---------------------------------------------------- */

static int pong_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    if (m->request != NULL)
        return xo_reply(m->request, m->tag, m->data, m->size);
    return xo_tell(m->sender, m->tag, m->data, m->size);
}

static const xo_actor_def_t pong_def = { .name = "pong",
                                         .on_message = pong_message };

/* What the sink answers when it has them all. */
struct sink_report {
    uint64_t count, out_of_order, bytes, peak_rss_kib;
};

struct sink {
    uint64_t expect, count, next, out_of_order, bytes;
};

static int sink_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    struct sink *s = state;
    if (m->tag == SETUP) {
        memcpy(&s->expect, m->data, sizeof(s->expect));
        s->count = s->next = s->out_of_order = s->bytes = 0;
        return 0;
    }
    uint64_t seq;
    memcpy(&seq, m->data, sizeof(seq));
    if (seq != s->next)
        s->out_of_order++;
    s->next = seq + 1;
    s->bytes += m->size;
    if (++s->count < s->expect)
        return 0;
    struct sink_report r = { s->count, s->out_of_order, s->bytes,
                             bench_peak_rss_kib() };
    return xo_tell(m->sender, DONE, &r, sizeof(r));
}

static const xo_actor_def_t sink_def = {
    .name = "sink", .state_size = sizeof(struct sink),
    .on_message = sink_message,
};

/* remote_hol: a PREPARE (a size) makes a message of that size, once,
   answered with READY; each BLAST sends it, wrapped (no copy, nothing to
   do on this side but write it). Freed when the node stops. */
static unsigned char *blaster_big;
static uint64_t blaster_size;

static void blaster_keep(void *buf, void *arg)
{
    (void)buf;
    (void)arg;
}

static int blaster_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    if (m->tag == PREPARE && m->size == sizeof(blaster_size)) {
        if (blaster_big == NULL) {
            memcpy(&blaster_size, m->data, sizeof(blaster_size));
            blaster_big = malloc(blaster_size);
            if (blaster_big == NULL)
                return XO_ENOMEM;
            memset(blaster_big, 0x5a, blaster_size);
        }
        return xo_tell(m->sender, READY, NULL, 0);
    }
    if (m->tag != BLAST || blaster_big == NULL)
        return 0;
    xo_msg_t *msg;
    int rc = xo_msg_wrap(m->sender.rt, BIG, blaster_big, blaster_size,
                         blaster_keep, NULL, &msg);
    if (rc == 0 && (rc = xo_send(m->sender, msg)) != 0)
        xo_msg_free(m->sender.rt, msg);
    return rc;
}

static const xo_actor_def_t blaster_def = { .name = "blaster",
                                            .on_message = blaster_message };

static int node_config(xo_node_config_t *ncfg)
{
    xo_node_config_init(ncfg);
    const char *hex = getenv(SECRET_ENV);
    return hex != NULL ? xo_node_secret_parse(hex, ncfg->secret) : XO_EINVAL;
}

int bench_remote_node(void)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    const char *pools = getenv(POOLS_ENV);
    cfg.pools = pools != NULL ? (unsigned)strtoul(pools, NULL, 10) : 0;
    const char *spin = getenv(SPIN_ENV);
    if (spin != NULL)
        cfg.spin_ns = strtoull(spin, NULL, 10);
    cfg.on_alert = bench_on_alert; /* its sink falls behind on purpose */
    xo_runtime_t *rt;
    xo_node_config_t ncfg;
    int rc = node_config(&ncfg);
    if (rc == 0)
        rc = xo_runtime_start(&cfg, &rt);
    if (rc != 0) {
        fprintf(stderr, "__node: %s\n", xo_strerror(rc));
        return 1;
    }
    xo_spawn_opts_t so;
    xo_spawn_opts_init(&so);
    xo_ref_t r;
    unsigned port = 0;
    if ((rc = xo_node_start(rt, &ncfg)) == 0 &&
        (rc = xo_node_port(rt, &port)) == 0) {
        so.uid = "pong";
        rc = xo_spawn(rt, &pong_def, &so, &r);
    }
    if (rc == 0) {
        so.uid = "sink";
        rc = xo_spawn(rt, &sink_def, &so, &r);
    }
    if (rc == 0) {
        so.uid = "blaster";
        rc = xo_spawn(rt, &blaster_def, &so, &r);
    }
    if (rc != 0) {
        fprintf(stderr, "__node: %s\n", xo_strerror(rc));
        xo_runtime_free(rt);
        return 1;
    }
    printf("port %u\n", port);
    fflush(stdout);
    char buf[16];
    for (;;) {
        ssize_t n = read(0, buf, sizeof(buf));
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        break; /* the parent closed it: stop */
    }
    xo_runtime_free(rt);
    free(blaster_big);
    return 0;
}

/* ---- starting it --------------------------------------------------------- */

struct peer {
    pid_t pid;
    int in;
    unsigned port;
    cpu_set_t mine, theirs, saved; /* the split; this process's before */
    bool split;
};

/* The first half of the CPUs for this process, the rest for the peer. */
static void split_cpus(struct peer *p)
{
    p->split = false;
    if (sched_getaffinity(0, sizeof(p->saved), &p->saved) != 0)
        return;
    int n = CPU_COUNT(&p->saved), k = 0;
    if (n < 2)
        return;
    CPU_ZERO(&p->mine);
    CPU_ZERO(&p->theirs);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &p->saved)) {
            if (k++ < n / 2)
                CPU_SET(cpu, &p->mine);
            else
                CPU_SET(cpu, &p->theirs);
        }
    p->split = sched_setaffinity(0, sizeof(p->mine), &p->mine) == 0;
}

static int peer_start(const struct bench_opts *opts, const char *secret,
                      struct peer *p)
{
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0)
        return -1;
    split_cpus(p);
    fflush(NULL);
    p->pid = fork();
    if (p->pid < 0)
        return -1;
    if (p->pid == 0) {
        if (p->split)
            (void)sched_setaffinity(0, sizeof(p->theirs), &p->theirs);
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        char pools[16], spin[32];
        snprintf(pools, sizeof(pools), "%u", opts->pools);
        setenv(SECRET_ENV, secret, 1);
        setenv(POOLS_ENV, pools, 1);
        if (opts->spin_set) {
            snprintf(spin, sizeof(spin), "%llu",
                     (unsigned long long)opts->spin_ns);
            setenv(SPIN_ENV, spin, 1);
        }
        execl("/proc/self/exe", "xoscar-bench", "__node", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    p->in = in[1];
    FILE *f = fdopen(out[0], "r");
    int rc = f != NULL && fscanf(f, "port %u", &p->port) == 1 ? 0 : -1;
    if (f != NULL)
        fclose(f);
    return rc;
}

/* Close its stdin: it stops its runtime and exits. */
static int peer_stop(struct peer *p)
{
    if (p->split)
        (void)sched_setaffinity(0, sizeof(p->saved), &p->saved);
    close(p->in);
    int status;
    if (waitpid(p->pid, &status, 0) != p->pid)
        return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* A runtime here that joined the network and connected to a peer it
   started; the peer's actor `uid` into *to. */
struct remote_env {
    struct bench_env env;
    struct peer peer;
    bool peer_up;
    unsigned node;
};

static int remote_start_hb(struct remote_env *re, const char *name,
                           const struct bench_opts *opts, const char *uid,
                           uint64_t heartbeat_ns, xo_ref_t *to)
{
    unsigned char raw[XO_NODE_SECRET_SIZE];
    char hex[2 * XO_NODE_SECRET_SIZE + 1];
    re->env.name = name;
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return bench_error(&re->env, "no random bytes for the secret");
    for (unsigned i = 0; i < sizeof(raw); i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    setenv(SECRET_ENV, hex, 1);
    if (peer_start(opts, hex, &re->peer) != 0) {
        fprintf(stderr, "%s: the second node did not start\n", name);
        return -1;
    }
    re->peer_up = true;
    if (bench_start(&re->env, name, opts) != 0)
        return -1;
    xo_node_config_t ncfg;
    int rc = node_config(&ncfg);
    ncfg.listen = false;
    if (heartbeat_ns != 0) {
        ncfg.heartbeat_ns = heartbeat_ns;
        ncfg.loss_timeout_ns = 5000000000ull;
    }
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", re->peer.port);
    if (rc == 0)
        rc = xo_node_start(re->env.rt, &ncfg);
    if (rc == 0)
        rc = xo_node_connect(re->env.rt, addr, 10000000000ll, &re->node);
    if (rc == 0)
        rc = xo_node_lookup(re->env.rt, re->node, uid, 10000000000ll, to);
    if (rc != 0) {
        fprintf(stderr, "%s: joining the second node: %s\n", name,
                xo_strerror(rc));
        return -1;
    }
    return 0;
}

static int remote_start(struct remote_env *re, const char *name,
                        const struct bench_opts *opts, const char *uid,
                        xo_ref_t *to)
{
    return remote_start_hb(re, name, opts, uid, 0, to);
}

static int remote_finish(struct remote_env *re, struct bench_result *out,
                         int rc)
{
    if (re->env.rt != NULL && bench_finish(&re->env, out) != 0)
        rc = -1;
    if (re->peer_up && peer_stop(&re->peer) != 0) {
        fprintf(stderr, "%s: the second node did not stop cleanly\n",
                re->env.name);
        rc = -1;
    }
    return rc;
}

/* ---- remote_pingpong ------------------------------------------------------ */

struct rpp {
    struct bench_done *done;
    uint64_t rounds;
    xo_ref_t pong;
    struct histogram hist;
    uint64_t echoed;
};

struct ping_state {
    struct rpp *pp;
    uint64_t sent, sent_ns;
};

static int ping_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    struct ping_state *p = state;
    struct rpp *pp = p->pp;
    if (m->tag == BALL) {
        uint64_t now = bench_now_ns(), n;
        if (m->size != sizeof(n) || (memcpy(&n, m->data, sizeof(n)), n) !=
                                        p->sent)
            return bench_fail(pp->done, "the echo differs from the ball", 0);
        hist_record(&pp->hist, now - p->sent_ns);
        if (++pp->echoed == pp->rounds) {
            bench_done_signal(pp->done);
            return 0;
        }
        p->sent++;
    }
    p->sent_ns = bench_now_ns();
    return xo_tell(pp->pong, BALL, &p->sent, sizeof(p->sent));
}

static const xo_actor_def_t ping_def = {
    .name = "ping", .state_size = sizeof(struct ping_state),
    .on_create = bench_copy_arg, .on_message = ping_message,
};

/* Calls from an actor, one in flight, each timed. */
struct caller_state {
    struct rpp *pp;
    uint64_t sent, sent_ns;
};

static int call_next(xo_ctx_t *ctx, struct caller_state *c);

static int on_answer(xo_ctx_t *ctx, void *state, xo_future_t *f, void *arg)
{
    (void)arg;
    struct caller_state *c = state;
    uint64_t now = bench_now_ns(), n;
    xo_result_t r;
    if (xo_future_result(f, 0, &r) != 0 || r.size != sizeof(n) ||
        (memcpy(&n, r.data, sizeof(n)), n) != c->sent)
        return bench_fail(c->pp->done, "a call got a wrong answer", r.status);
    hist_record(&c->pp->hist, now - c->sent_ns);
    if (++c->sent == c->pp->rounds) {
        c->pp->echoed = c->sent;
        bench_done_signal(c->pp->done);
        return 0;
    }
    return call_next(ctx, c);
}

static int call_next(xo_ctx_t *ctx, struct caller_state *c)
{
    c->sent_ns = bench_now_ns();
    return xo_call_then(ctx, c->pp->pong, CALL, &c->sent, sizeof(c->sent),
                        -1, on_answer, NULL);
}

static int caller_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)m;
    return call_next(ctx, state);
}

static const xo_actor_def_t caller_def = {
    .name = "caller", .state_size = sizeof(struct caller_state),
    .on_create = bench_copy_arg, .on_message = caller_message,
};

int bench_remote_pingpong(const struct bench_opts *opts, const uint64_t *args,
                          struct bench_result *out)
{
    /* The floor first, while nothing else runs. */
    double tcp_ns = hw_tcp_round_trip_ns(20000);
    static struct rpp pp; /* the histogram is 15 KiB */
    memset(&pp, 0, sizeof(pp));
    pp.rounds = args[0];
    struct remote_env re;
    memset(&re, 0, sizeof(re));
    double seconds = 0;
    int rc = remote_start(&re, "remote_pingpong", opts, "pong", &pp.pong);
    pp.done = &re.env.done;
    struct ping_state init = { &pp, 0, 0 };
    xo_ref_t ping, caller;
    if (rc == 0)
        rc = bench_spawn(&re.env, &ping_def, XO_POOL_ANY, &init,
                         sizeof(init), &ping);
    if (rc == 0)
        rc = bench_measure(&re.env, &ping, 1, KICK, &seconds);
    if (rc == 0 && pp.echoed != pp.rounds)
        rc = bench_error(&re.env, "fewer echoes than round trips");
    uint64_t p50 = hist_quantile(&pp.hist, 0.5);
    uint64_t p99 = hist_quantile(&pp.hist, 0.99);
    out->ops = pp.rounds;
    out->seconds = seconds;
    bench_extra(out, "ns_per_rt", "%.0f", seconds * 1e9 / (double)pp.rounds);
    bench_extra(out, "p50_ns", "%llu", (unsigned long long)p50);
    bench_extra(out, "p99_ns", "%llu", (unsigned long long)p99);
    if (tcp_ns > 0) {
        bench_extra(out, "tcp_rt_ns", "%.0f", tcp_ns);
        bench_extra(out, "vs_tcp", "%.2f", (double)p50 / tcp_ns);
    }
    /* Calls from an actor: a tenth as many. */
    memset(&pp.hist, 0, sizeof(pp.hist));
    pp.echoed = 0;
    pp.rounds = args[0] / 10 ? args[0] / 10 : 1;
    struct caller_state cinit = { &pp, 0, 0 };
    double call_s = 0;
    if (rc == 0)
        rc = bench_spawn(&re.env, &caller_def, XO_POOL_ANY, &cinit,
                         sizeof(cinit), &caller);
    if (rc == 0)
        rc = bench_measure(&re.env, &caller, 1, KICK, &call_s);
    if (rc == 0 && pp.echoed != pp.rounds)
        rc = bench_error(&re.env, "fewer answers than calls");
    if (rc == 0) {
        bench_extra(out, "call_p50_ns", "%llu",
                    (unsigned long long)hist_quantile(&pp.hist, 0.5));
        bench_extra(out, "call_p99_ns", "%llu",
                    (unsigned long long)hist_quantile(&pp.hist, 0.99));
    }
    return remote_finish(&re, out, rc);
}

/* ---- remote_tell ------------------------------------------------------------ */

struct rtell {
    struct bench_done *done;
    uint64_t messages, bytes;
    xo_ref_t sink;
    uint64_t efull;
    struct sink_report report;
    bool reported;
};

static int sender_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    struct rtell *t;
    memcpy(&t, state, sizeof(t));
    if (m->tag == DONE) {
        memcpy(&t->report, m->data, sizeof(t->report));
        t->reported = true;
        bench_done_signal(t->done);
        return 0;
    }
    static _Thread_local unsigned char buf[1 << 16];
    int rc = xo_tell(t->sink, SETUP, &t->messages, sizeof(t->messages));
    for (uint64_t seq = 0; rc == 0 && seq < t->messages; seq++) {
        memcpy(buf, &seq, sizeof(seq));
        while ((rc = xo_tell(t->sink, ITEM, buf, t->bytes)) == XO_EFULL) {
            t->efull++;
            sched_yield(); /* the I/O thread writes meanwhile */
        }
    }
    return rc == 0 ? 0 : bench_fail(t->done, "a send failed", rc);
}

static const xo_actor_def_t sender_def = {
    .name = "sender", .state_size = sizeof(void *),
    .on_create = bench_copy_arg, .on_message = sender_message,
};

int bench_remote_tell(const struct bench_opts *opts, const uint64_t *args,
                      struct bench_result *out)
{
    static struct rtell t;
    memset(&t, 0, sizeof(t));
    t.messages = args[0];
    t.bytes = args[1] < 8 ? 8 : args[1];
    if (t.bytes > (1 << 16)) {
        fprintf(stderr, "remote_tell: bytes is at most 65536\n");
        return -1;
    }
    struct remote_env re;
    memset(&re, 0, sizeof(re));
    double seconds = 0;
    int rc = remote_start(&re, "remote_tell", opts, "sink", &t.sink);
    t.done = &re.env.done;
    struct rtell *tp = &t;
    xo_ref_t sender;
    if (rc == 0)
        rc = bench_spawn(&re.env, &sender_def, XO_POOL_ANY, &tp, sizeof(tp),
                         &sender);
    if (rc == 0)
        rc = bench_measure(&re.env, &sender, 1, KICK, &seconds);
    if (rc == 0 && (!t.reported || t.report.count != t.messages))
        rc = bench_error(&re.env, "the receiver did not get every message");
    if (rc == 0 && t.report.out_of_order != 0)
        rc = bench_error(&re.env, "messages arrived out of order");
    out->ops = t.messages;
    out->seconds = seconds;
    bench_extra(out, "bytes", "%llu", (unsigned long long)t.bytes);
    if (seconds > 0)
        bench_extra(out, "MiB_per_s", "%.1f",
                    (double)t.report.bytes / seconds / (1 << 20));
    bench_extra(out, "efull", "%llu", (unsigned long long)t.efull);
    bench_extra(out, "peer_peak_rss_kib", "%llu",
                (unsigned long long)t.report.peak_rss_kib);
    return remote_finish(&re, out, rc);
}

/* ---- remote_hol -------------------------------------------------------------- */

struct rhol {
    struct bench_done *done;
    uint64_t rounds, bytes, got;
    uint64_t start_ns, end_ns;      /* the first BLAST, the last BIG */
    xo_ref_t blaster;
    xo_runtime_t *rt;
    unsigned node;
    /* 1 while a transfer is in flight (release by the receiver actor,
       acquire by the sampler: a sample is kept only then). */
    _Atomic int in_flight;
    _Atomic int stop;               /* the sampler ends (relaxed) */
    _Atomic int sampling_idle;      /* record idle samples (relaxed) */
    struct histogram busy, idle;    /* the sampler's own */
};

static int receiver_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    struct rhol *h;
    memcpy(&h, state, sizeof(h));
    if (m->tag == KICK) /* the second node makes the message first */
        return xo_tell(h->blaster, PREPARE, &h->bytes, sizeof(h->bytes));
    if (m->tag == READY)
        h->start_ns = bench_now_ns();
    if (m->tag == BIG) {
        if (m->size != h->bytes)
            return bench_fail(h->done, "a transfer of the wrong size", 0);
        if (++h->got == h->rounds) {
            h->end_ns = bench_now_ns();
            /* release: pairs with the sampler's acquire. */
            atomic_store_explicit(&h->in_flight, 0, memory_order_release);
            bench_done_signal(h->done);
            return 0;
        }
    }
    /* release: pairs with the sampler's acquire. */
    atomic_store_explicit(&h->in_flight, 1, memory_order_release);
    return xo_tell(h->blaster, BLAST, NULL, 0);
}

static const xo_actor_def_t receiver_def = {
    .name = "receiver", .state_size = sizeof(void *),
    .on_create = bench_copy_arg, .on_message = receiver_message,
};

static void *hol_sampler(void *arg)
{
    struct rhol *h = arg;
    uint64_t last = 0;
    /* relaxed: a flag polled; nothing is read through it. */
    while (!atomic_load_explicit(&h->stop, memory_order_relaxed)) {
        xo_node_info_t info;
        if (xo_node_info(h->rt, h->node, &info) == 0 && info.rtt_ns != 0 &&
            info.rtt_ns != last) {
            last = info.rtt_ns;
            /* acquire: pairs with the receiver's release. */
            if (atomic_load_explicit(&h->in_flight, memory_order_acquire))
                hist_record(&h->busy, info.rtt_ns);
            else if (atomic_load_explicit(&h->sampling_idle,
                                          memory_order_relaxed))
                hist_record(&h->idle, info.rtt_ns);
        }
        struct timespec ts = { 0, 100000 };
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int bench_remote_hol(const struct bench_opts *opts, const uint64_t *args,
                     struct bench_result *out)
{
    static struct rhol h; /* two histograms of 15 KiB */
    memset(&h, 0, sizeof(h));
    h.bytes = args[0];
    h.rounds = args[1];
    struct remote_env re;
    memset(&re, 0, sizeof(re));
    double seconds = 0;
    int rc = remote_start_hb(&re, "remote_hol", opts, "blaster",
                             1000000ull, &h.blaster);
    h.done = &re.env.done;
    h.rt = re.env.rt;
    h.node = re.node;
    struct rhol *hp = &h;
    xo_ref_t receiver;
    pthread_t sampler;
    bool sampling = false;
    if (rc == 0)
        rc = bench_spawn(&re.env, &receiver_def, XO_POOL_ANY, &hp,
                         sizeof(hp), &receiver);
    if (rc == 0) {
        sampling = pthread_create(&sampler, NULL, hol_sampler, &h) == 0;
        if (!sampling)
            rc = bench_error(&re.env, "no sampler thread");
    }
    if (rc == 0) {
        /* The round trip with nothing in flight, for comparison. */
        atomic_store_explicit(&h.sampling_idle, 1, memory_order_relaxed);
        struct timespec ts = { 0, 300000000 };
        nanosleep(&ts, NULL);
        atomic_store_explicit(&h.sampling_idle, 0, memory_order_relaxed);
        rc = bench_measure(&re.env, &receiver, 1, KICK, &seconds);
    }
    if (sampling) {
        atomic_store_explicit(&h.stop, 1, memory_order_relaxed);
        pthread_join(sampler, NULL);
    }
    if (rc == 0 && h.got != h.rounds)
        rc = bench_error(&re.env, "fewer transfers than asked");
    /* The transfers alone (not the second node making the message). */
    if (rc == 0)
        seconds = (double)(h.end_ns - h.start_ns) / 1e9;
    out->ops = h.rounds;
    out->seconds = seconds;
    bench_extra(out, "bytes", "%llu", (unsigned long long)h.bytes);
    if (seconds > 0)
        bench_extra(out, "GB_per_s", "%.3f",
                    (double)h.bytes * (double)h.rounds / seconds / 1e9);
    bench_extra(out, "samples", "%llu", (unsigned long long)h.busy.count);
    bench_extra(out, "hb_p50_ns", "%llu",
                (unsigned long long)hist_quantile(&h.busy, 0.5));
    bench_extra(out, "hb_p99_ns", "%llu",
                (unsigned long long)hist_quantile(&h.busy, 0.99));
    bench_extra(out, "hb_max_ns", "%llu", (unsigned long long)h.busy.max);
    bench_extra(out, "idle_hb_p50_ns", "%llu",
                (unsigned long long)hist_quantile(&h.idle, 0.5));
    return remote_finish(&re, out, rc);
}
