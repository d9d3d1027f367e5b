/*
 * sched.c -- the workers. One thread per CPU pool, pinned to its core,
 * running the actors whose home is its pool.
 *
 * A worker's run queue holds runnable actors (their runq_node). An actor is
 * in at most one run queue at a time: it enters when the send that found its
 * mailbox idle-marked schedules it, and it leaves when its worker pops it.
 * A turn handles up to cfg.batch messages; then, if the mailbox is empty the
 * worker marks it idle (the next sender reschedules it), otherwise the actor
 * goes to the back of the run queue so its pool-mates get their turn.
 *
 * Idle: a worker with an empty run queue polls it for cfg.spin_ns, then
 * marks the run queue idle and sleeps on its futex word. The sender whose
 * exchange takes that mark is the one that wakes it (see mpscq.h), so a wake
 * is never lost and never sent twice.
 *
 * Stop: each worker's exit node is pushed once all actors are gone; a
 * worker that pops it returns.
 */
#include "runtime.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static __thread struct xo_worker *tls_worker
    __attribute__((tls_model("initial-exec")));
static __thread struct xo_ctx *tls_ctx
    __attribute__((tls_model("initial-exec")));

xo_runtime_t *xo_current_worker_runtime(void)
{
    return tls_worker ? tls_worker->rt : NULL;
}

struct xo_ctx *xo_current_ctx(void)
{
    return tls_ctx;
}

void xo_set_current_ctx(struct xo_ctx *ctx)
{
    tls_ctx = ctx;
}

static void futex_wait(_Atomic uint32_t *word, uint32_t expected)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, NULL,
            NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void wake_worker(struct xo_worker *w)
{
    /* release: pairs with the acquire load in park(); the worker that
       wakes sees the run queue node pushed before. */
    atomic_store_explicit(&w->wake, 1, memory_order_release);
    futex_wake(&w->wake);
}

static void runq_push(struct xo_worker *w, struct xo_qnode *n)
{
    if (xo_mpscq_push(&w->runq, n))
        wake_worker(w);
}

void xo_schedule(struct xo_cell *c)
{
    runq_push(&c->rt->workers[c->pool], &c->runq_node);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Sleep until a sender takes the idle mark, unless work is on its way. */
static void park(struct xo_worker *w)
{
    /* relaxed: ordered before the mark by mark_idle's release CAS. */
    atomic_store_explicit(&w->wake, 0, memory_order_relaxed);
    if (!xo_mpscq_mark_idle(&w->runq))
        return;
    /* acquire: pairs with wake_worker's release store. */
    while (atomic_load_explicit(&w->wake, memory_order_acquire) == 0)
        futex_wait(&w->wake, 0);
}

/* The next runnable node: poll, spin for spin_ns, then park. */
static struct xo_qnode *next_runnable(struct xo_worker *w)
{
    struct xo_qnode *n = xo_mpscq_pop(&w->runq);
    if (n != NULL)
        return n;
    uint64_t spin = w->rt->cfg.spin_ns;
    uint64_t deadline = spin ? now_ns() + spin : 0;
    for (unsigned i = 1;; i++) {
        n = xo_mpscq_pop(&w->runq);
        if (n != NULL)
            return n;
        if (deadline != 0 && ((i & 63) != 0 || now_ns() < deadline)) {
            cpu_relax();
            continue;
        }
        park(w);
        deadline = spin ? now_ns() + spin : 0;
    }
}

static void deliver(struct xo_worker *w, struct xo_cell *c,
                    struct xo_envelope *env)
{
    const xo_actor_def_t *def = c->def;
    if (c->created && def->on_message != NULL) {
        int rc = def->on_message(&w->ctx, c->state, &env->msg);
        /* relaxed single-writer counters (see struct xo_cell). */
        atomic_store_explicit(
            &c->handled,
            atomic_load_explicit(&c->handled, memory_order_relaxed) + 1,
            memory_order_relaxed);
        if (rc < 0) {
            atomic_store_explicit(
                &c->failed,
                atomic_load_explicit(&c->failed, memory_order_relaxed) + 1,
                memory_order_relaxed);
            if (w->rt->cfg.on_handler_error != NULL)
                w->rt->cfg.on_handler_error(w->rt, xo_cell_ref(c),
                                            env->msg.tag, rc,
                                            w->rt->cfg.on_handler_error_user);
        }
    }
    xo_envelope_free(w->rt, env);
}

/* One turn of an actor. Returns after at most cfg.batch messages. */
static void run_turn(struct xo_worker *w, struct xo_cell *c)
{
    unsigned batch = w->rt->cfg.batch, n = 0;
    w->ctx.cell = c;
    tls_ctx = &w->ctx;
    for (; n < batch; n++) {
        struct xo_qnode *q = xo_mpscq_pop(&c->mbox);
        if (q == NULL)
            break;
        if (q == &c->reap_node) {
            xo_cell_reap(c, &w->ctx);
            tls_ctx = NULL;
            return;
        }
        deliver(w, c, xo_container_of(q, struct xo_envelope, node));
    }
    tls_ctx = NULL;
    atomic_store_explicit(
        &w->handled,
        atomic_load_explicit(&w->handled, memory_order_relaxed) + n,
        memory_order_relaxed);
    if (n < batch && xo_mpscq_mark_idle(&c->mbox))
        return;
    /* Still has work (or a send is mid-way): back of the line. */
    (void)xo_mpscq_push(&w->runq, &c->runq_node);
}

static void *worker_main(void *arg)
{
    struct xo_worker *w = arg;
    tls_worker = w;
    for (;;) {
        struct xo_qnode *n = next_runnable(w);
        if (n == &w->exit_node)
            break;
        run_turn(w, xo_container_of(n, struct xo_cell, runq_node));
    }
    tls_worker = NULL;
    return NULL;
}

/* The i-th CPU this process may run on, or -1. */
static int nth_allowed_cpu(const cpu_set_t *set, unsigned i)
{
    int count = CPU_COUNT(set);
    if (count <= 0)
        return -1;
    unsigned want = i % (unsigned)count, seen = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, set))
            continue;
        if (seen++ == want)
            return cpu;
    }
    return -1;
}

static int start_worker(xo_runtime_t *rt, struct xo_worker *w,
                        const cpu_set_t *allowed)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    w->core = nth_allowed_cpu(allowed, w->index);
    w->pinned = false;
    int rc = EINVAL;
    if (rt->cfg.pin_threads && w->core >= 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(w->core, &one);
        if (pthread_attr_setaffinity_np(&attr, sizeof(one), &one) == 0) {
            rc = pthread_create(&w->thread, &attr, worker_main, w);
            w->pinned = rc == 0;
        }
    }
    if (!w->pinned) {
        /* Pinning refused (or off): run where the scheduler puts us. */
        pthread_attr_destroy(&attr);
        pthread_attr_init(&attr);
        rc = pthread_create(&w->thread, &attr, worker_main, w);
    }
    pthread_attr_destroy(&attr);
    w->started = rc == 0;
    return rc == 0 ? 0 : XO_ENOMEM;
}

int xo_workers_start(xo_runtime_t *rt)
{
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
        CPU_ZERO(&allowed);
        CPU_SET(0, &allowed);
    }
    for (unsigned i = 0; i < rt->npools; i++) {
        struct xo_worker *w = &rt->workers[i];
        w->rt = rt;
        w->index = i;
        w->ctx = (struct xo_ctx){ rt, NULL, i };
        xo_mpscq_init(&w->runq, false);
        atomic_init(&w->wake, 0);
        atomic_init(&w->handled, 0);
        atomic_init(&w->actors, 0);
    }
    for (unsigned i = 0; i < rt->npools; i++) {
        int rc = start_worker(rt, &rt->workers[i], &allowed);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void xo_workers_stop(xo_runtime_t *rt)
{
    for (unsigned i = 0; i < rt->npools; i++)
        if (rt->workers[i].started)
            runq_push(&rt->workers[i], &rt->workers[i].exit_node);
    for (unsigned i = 0; i < rt->npools; i++)
        if (rt->workers[i].started) {
            pthread_join(rt->workers[i].thread, NULL);
            rt->workers[i].started = false;
        }
}
