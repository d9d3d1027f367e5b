/*
 * hw.c -- the machine's floor, measured in the same run as the actors, so
 * that every actor figure can be read as a multiple of what the hardware
 * and the kernel cannot go below:
 *
 *   xchg_ns        one atomic exchange on a line this core owns: the cost
 *                  of a mailbox push when nobody else touches the mailbox;
 *   line_rt_ns     one cache line bounced between the first two CPUs and
 *                  back (two threads, each waiting for the other's store):
 *                  the least a cross-core message round trip can cost,
 *                  since a message must at least move one line each way;
 *   futex_wake_ns  a thread asleep on a futex woken by another on another
 *                  CPU, until it runs (half a futex ping-pong): the price of
 *                  waking a parked worker;
 *   futex_call_ns  the FUTEX_WAKE system call alone, with nobody waiting:
 *                  what the sender pays for it;
 *   clock_ns       one clock_gettime(CLOCK_MONOTONIC): the latency
 *                  benchmark's timestamps include two of them;
 *   tcp_rt_ns      a 64-byte message over TCP on 127.0.0.1 and back, two
 *                  sockets with TCP_NODELAY, one thread each, blocking
 *                  reads: the least a message to another process and its
 *                  answer cost through the kernel (remote_pingpong reports
 *                  itself against it).
 *
 * The line's round trips are the benchmark's `ops` and `seconds` (all of
 * them, timed in batches; line_rt_ns is the median batch's pace).
 * The two threads are pinned to the CPUs the runtime's first two workers
 * get; with one CPU there is no bounce to measure and line_rt_ns is left out.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* ---- two pinned threads that start together -------------------------- */

struct pair {
    void *(*fn[2])(void *);
    void *arg;
    int cpu[2];
};

struct side {
    struct pair *pair;
    unsigned index;
};

static void *start_side(void *arg)
{
    struct side *s = arg;
    if (s->pair->cpu[s->index] >= 0)
        (void)bench_pin_self(s->pair->cpu[s->index]);
    return s->pair->fn[s->index](s->pair->arg);
}

/* Run fn[0] and fn[1] on the first two CPUs at once; both return. */
static int run_pair(struct pair *p)
{
    pthread_t t[2];
    struct side sides[2] = { { p, 0 }, { p, 1 } };
    p->cpu[0] = bench_nth_cpu(0);
    p->cpu[1] = bench_nth_cpu(1);
    if (pthread_create(&t[1], NULL, start_side, &sides[1]) != 0)
        return -1;
    if (pthread_create(&t[0], NULL, start_side, &sides[0]) != 0) {
        pthread_join(t[1], NULL);
        return -1;
    }
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    return 0;
}

/* ---- a cache line bounced between two cores ---------------------------- */

/* The round trips are timed in batches and the median batch is the
   figure: a virtual CPU that the host takes away for a moment spoils one
   batch, not the result. */
#define BOUNCE_BATCHES 15

struct bounce {
    alignas(64) _Atomic uint64_t line;
    alignas(64) _Atomic int ready;
    uint64_t warmup, batch;
    uint64_t ns[BOUNCE_BATCHES];
};

static void wait_both(_Atomic int *ready)
{
    /* relaxed: a start line, no data is handed over through it. */
    atomic_fetch_add_explicit(ready, 1, memory_order_relaxed);
    while (atomic_load_explicit(ready, memory_order_relaxed) < 2)
        cpu_relax();
}

/* Wait until the line holds v. acquire/release pair each side's store with
   the other's load, as a message hand-over would. */
static void wait_for(_Atomic uint64_t *line, uint64_t v)
{
    while (atomic_load_explicit(line, memory_order_acquire) != v)
        cpu_relax();
}

static uint64_t bounce_rounds(struct bounce *b)
{
    return b->warmup + b->batch * BOUNCE_BATCHES;
}

static void *bounce_first(void *arg)
{
    struct bounce *b = arg;
    wait_both(&b->ready);
    uint64_t t0 = 0, total = bounce_rounds(b);
    for (uint64_t i = 0; i < total; i++) {
        if (i >= b->warmup && (i - b->warmup) % b->batch == 0) {
            uint64_t now = bench_now_ns();
            if (i > b->warmup)
                b->ns[(i - b->warmup) / b->batch - 1] = now - t0;
            t0 = now;
        }
        atomic_store_explicit(&b->line, 2 * i + 1, memory_order_release);
        wait_for(&b->line, 2 * i + 2);
    }
    b->ns[BOUNCE_BATCHES - 1] = bench_now_ns() - t0;
    return NULL;
}

static void *bounce_second(void *arg)
{
    struct bounce *b = arg;
    wait_both(&b->ready);
    uint64_t total = bounce_rounds(b);
    for (uint64_t i = 0; i < total; i++) {
        wait_for(&b->line, 2 * i + 1);
        atomic_store_explicit(&b->line, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

static int by_value(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

double hw_line_round_trip_ns(uint64_t round_trips, struct bench_result *all)
{
    static struct bounce b; /* aligned; one measurement at a time */
    if (bench_nth_cpu(0) == bench_nth_cpu(1))
        return -1;
    atomic_store(&b.line, 0);
    atomic_store(&b.ready, 0);
    b.batch = round_trips / BOUNCE_BATCHES + 1;
    b.warmup = b.batch;
    struct pair p = { { bounce_first, bounce_second }, &b, { -1, -1 } };
    if (run_pair(&p) != 0)
        return -1;
    if (all != NULL) {
        all->ops = b.batch * BOUNCE_BATCHES;
        all->seconds = 0;
        for (unsigned i = 0; i < BOUNCE_BATCHES; i++)
            all->seconds += (double)b.ns[i] / 1e9;
    }
    qsort(b.ns, BOUNCE_BATCHES, sizeof(b.ns[0]), by_value);
    return (double)b.ns[BOUNCE_BATCHES / 2] / (double)b.batch;
}

/* ---- futex ping-pong ----------------------------------------------------- */

struct futex_pingpong {
    alignas(64) _Atomic uint32_t word[2];
    _Atomic int ready;
    uint64_t rounds, ns;
};

static void futex_call(_Atomic uint32_t *w, int op, uint32_t val)
{
    syscall(SYS_futex, (uint32_t *)w, op, val, NULL, NULL, 0);
}

/* Wake the other side, then sleep until it wakes us. */
static void futex_turn(struct futex_pingpong *f, unsigned me)
{
    /* release/acquire: the hand-over is the futex word itself. */
    atomic_store_explicit(&f->word[!me], 1, memory_order_release);
    futex_call(&f->word[!me], FUTEX_WAKE_PRIVATE, 1);
    while (atomic_load_explicit(&f->word[me], memory_order_acquire) == 0)
        futex_call(&f->word[me], FUTEX_WAIT_PRIVATE, 0);
    atomic_store_explicit(&f->word[me], 0, memory_order_relaxed);
}

static void *futex_first(void *arg)
{
    struct futex_pingpong *f = arg;
    wait_both(&f->ready);
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < f->rounds; i++)
        futex_turn(f, 0);
    f->ns = bench_now_ns() - t0;
    return NULL;
}

static void *futex_second(void *arg)
{
    struct futex_pingpong *f = arg;
    wait_both(&f->ready);
    while (atomic_load_explicit(&f->word[1], memory_order_acquire) == 0)
        futex_call(&f->word[1], FUTEX_WAIT_PRIVATE, 0);
    atomic_store_explicit(&f->word[1], 0, memory_order_relaxed);
    for (uint64_t i = 1; i < f->rounds; i++)
        futex_turn(f, 1);
    /* The last turn: wake the first side and return. */
    atomic_store_explicit(&f->word[0], 1, memory_order_release);
    futex_call(&f->word[0], FUTEX_WAKE_PRIVATE, 1);
    return NULL;
}

/* One wake until the sleeper runs: half a futex round trip. */
static double futex_wake_ns(uint64_t rounds)
{
    static struct futex_pingpong f;
    atomic_store(&f.word[0], 0);
    atomic_store(&f.word[1], 0);
    atomic_store(&f.ready, 0);
    f.rounds = rounds;
    struct pair p = { { futex_first, futex_second }, &f, { -1, -1 } };
    if (run_pair(&p) != 0)
        return -1;
    return (double)f.ns / (double)rounds / 2;
}

/* ---- a TCP round trip on loopback ----------------------------------------- */

#define TCP_MSG 64
#define TCP_BATCHES 15

struct tcp_pingpong {
    int fd[2];          /* the two ends of one connection */
    _Atomic int ready;
    uint64_t warmup, batch;
    uint64_t ns[TCP_BATCHES];
    bool failed;
};

static bool io_exact(int fd, unsigned char *buf, bool writing)
{
    size_t done = 0;
    while (done < TCP_MSG) {
        ssize_t n = writing ? write(fd, buf + done, TCP_MSG - done)
                            : read(fd, buf + done, TCP_MSG - done);
        if (n <= 0)
            return false;
        done += (size_t)n;
    }
    return true;
}

static void *tcp_first(void *arg)
{
    struct tcp_pingpong *t = arg;
    unsigned char buf[TCP_MSG] = { 1 };
    wait_both(&t->ready);
    uint64_t total = t->warmup + t->batch * TCP_BATCHES, t0 = 0;
    for (uint64_t i = 0; i < total; i++) {
        if (i >= t->warmup && (i - t->warmup) % t->batch == 0) {
            uint64_t now = bench_now_ns();
            if (i > t->warmup)
                t->ns[(i - t->warmup) / t->batch - 1] = now - t0;
            t0 = now;
        }
        if (!io_exact(t->fd[0], buf, true) || !io_exact(t->fd[0], buf, false)) {
            t->failed = true;
            break;
        }
    }
    t->ns[TCP_BATCHES - 1] = bench_now_ns() - t0;
    shutdown(t->fd[0], SHUT_WR);
    return NULL;
}

static void *tcp_second(void *arg)
{
    struct tcp_pingpong *t = arg;
    unsigned char buf[TCP_MSG];
    wait_both(&t->ready);
    while (io_exact(t->fd[1], buf, false) && io_exact(t->fd[1], buf, true))
        ;
    return NULL;
}

/* Two connected sockets on 127.0.0.1 with TCP_NODELAY; 0 or -1. */
static int tcp_pair(int fd[2])
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    int rc = -1;
    if (l >= 0 && bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        listen(l, 1) == 0 && getsockname(l, (struct sockaddr *)&a, &len) == 0) {
        fd[0] = socket(AF_INET, SOCK_STREAM, 0);
        if (fd[0] >= 0 &&
            connect(fd[0], (struct sockaddr *)&a, sizeof(a)) == 0 &&
            (fd[1] = accept(l, NULL, NULL)) >= 0) {
            int one = 1;
            setsockopt(fd[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            setsockopt(fd[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            rc = 0;
        } else if (fd[0] >= 0) {
            close(fd[0]);
        }
    }
    if (l >= 0)
        close(l);
    return rc;
}

double hw_tcp_round_trip_ns(uint64_t round_trips)
{
    static struct tcp_pingpong t;
    memset(&t, 0, sizeof(t));
    if (tcp_pair(t.fd) != 0)
        return -1;
    t.batch = round_trips / TCP_BATCHES + 1;
    t.warmup = t.batch;
    struct pair p = { { tcp_first, tcp_second }, &t, { -1, -1 } };
    int rc = run_pair(&p);
    close(t.fd[0]);
    close(t.fd[1]);
    if (rc != 0 || t.failed)
        return -1;
    qsort(t.ns, TCP_BATCHES, sizeof(t.ns[0]), by_value);
    return (double)t.ns[TCP_BATCHES / 2] / (double)t.batch;
}

/* ---- single-thread costs ------------------------------------------------- */

/* Results are stored here so the compiler cannot drop the loops. */
static volatile uint64_t sink;

static double xchg_ns(uint64_t n)
{
    _Atomic uint64_t word = 0;
    uint64_t sum = 0, t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++)
        sum += atomic_exchange_explicit(&word, i, memory_order_acq_rel);
    uint64_t ns = bench_now_ns() - t0;
    sink = sum;
    return (double)ns / (double)n;
}

static double futex_call_ns(uint64_t n)
{
    _Atomic uint32_t word = 0;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++)
        futex_call(&word, FUTEX_WAKE_PRIVATE, 1);
    return (double)(bench_now_ns() - t0) / (double)n;
}

static double clock_ns(uint64_t n)
{
    uint64_t sum = 0, t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++)
        sum += bench_now_ns() & 1;
    uint64_t ns = bench_now_ns() - t0;
    sink = sum;
    return (double)ns / (double)n;
}

int bench_hw(const struct bench_opts *opts, const uint64_t *args,
             struct bench_result *out)
{
    (void)opts;
    uint64_t rounds = args[0];
    double line = hw_line_round_trip_ns(rounds, out);
    if (line <= 0)
        fprintf(stderr, "hw: fewer than two CPUs: no line to bounce\n");
    bench_extra(out, "xchg_ns", "%.2f", xchg_ns(rounds * 10));
    if (line > 0) {
        bench_extra(out, "line_rt_ns", "%.1f", line);
        bench_extra(out, "machine", "%s", bench_machine_state(line));
    }
    double wake = futex_wake_ns(rounds / 100 + 10);
    if (wake > 0)
        bench_extra(out, "futex_wake_ns", "%.0f", wake);
    bench_extra(out, "futex_call_ns", "%.1f", futex_call_ns(rounds / 10 + 10));
    bench_extra(out, "clock_ns", "%.1f", clock_ns(rounds));
    double tcp = hw_tcp_round_trip_ns(rounds / 50 + 10);
    if (tcp > 0)
        bench_extra(out, "tcp_rt_ns", "%.0f", tcp);
    bench_extra(out, "peak_rss_kib", "%llu",
                (unsigned long long)bench_peak_rss_kib());
    /* Not a runtime's workers: the two threads that bounced the line. */
    bench_extra(out, "workers", "%d", line > 0 ? 2 : 1);
    return 0;
}
