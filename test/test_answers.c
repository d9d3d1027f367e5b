/*
 * Answers and their messages: a deferred request is answered once (a
 * second answer is refused, even from two threads at once), an xo_fail
 * message belongs to the handler run that set it (on_create, on_destroy and
 * continuations included: never leaked, never passed to the next call), and
 * a future used after its release aborts with a message instead of
 * corrupting memory.
 */
#include "support.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

enum { DEFER = 1, BLOCK, START, FAIL_PLAIN, ANSWER };

/* ---- deferred requests ---------------------------------------------------- */

static _Atomic(xo_request_t *) kept;

static int deferrer_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    if (m->tag == DEFER)
        atomic_store(&kept, xo_request_defer(m->request));
    return 0;
}

static const xo_actor_def_t deferrer_def = {
    .name = "deferrer", .on_message = deferrer_message,
};

static xo_request_t *defer_one(xo_ref_t d, xo_future_t **f)
{
    atomic_store(&kept, NULL);
    cr_assert_eq(xo_call(d, DEFER, NULL, 0, f), 0);
    xo_request_t *req;
    while ((req = atomic_load(&kept)) == NULL)
        sleep_ms(1);
    return req;
}

Test(answers, a_deferred_request_answered_twice_refuses_the_second_answer)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t d;
    cr_assert_eq(xo_spawn(rt, &deferrer_def, NULL, &d), 0);
    xo_future_t *f;
    xo_request_t *req = defer_one(d, &f);
    cr_assert_eq(xo_reply(req, ANSWER, "first", 5), 0);
    cr_assert_eq(xo_reply(req, ANSWER, "second", 6), XO_EINVAL);
    cr_assert_eq(xo_reply_error(req, XO_EINVAL, "late"), XO_EINVAL);
    cr_assert_eq(xo_reply_end(req), XO_EINVAL);
    cr_assert_eq(xo_reply_part(req, ANSWER, "x", 1), XO_EINVAL);
    cr_assert_null(xo_request_defer(req), "nothing left to defer");
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t r;
    cr_assert_eq(xo_future_result(f, 0, &r), 0);
    cr_assert_eq(r.size, 5);
    cr_assert(memcmp(r.data, "first", 5) == 0, "the first answer stands");
    xo_future_release(f);
    stop_runtime(rt);
}

struct race {
    xo_request_t *req;
    pthread_barrier_t *start;
    atomic_int *won;
};

static void *answer_thread(void *arg)
{
    struct race *r = arg;
    pthread_barrier_wait(r->start);
    if (xo_reply(r->req, ANSWER, NULL, 0) == 0)
        atomic_fetch_add(r->won, 1);
    return NULL;
}

Test(answers, two_threads_answering_one_deferred_request_exactly_one_wins)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t d;
    cr_assert_eq(xo_spawn(rt, &deferrer_def, NULL, &d), 0);
    for (int round = 0; round < 200; round++) {
        xo_future_t *f;
        xo_request_t *req = defer_one(d, &f);
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, 2);
        atomic_int won = 0;
        struct race r = { req, &start, &won };
        pthread_t a, b;
        pthread_create(&a, NULL, answer_thread, &r);
        pthread_create(&b, NULL, answer_thread, &r);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        pthread_barrier_destroy(&start);
        cr_assert_eq(atomic_load(&won), 1, "round %d", round);
        cr_assert_eq(xo_future_wait(f, -1), 0);
        xo_future_release(f);
    }
    stop_runtime(rt);
}

/* ---- xo_fail messages belong to their own handler run -------------------- */

static int failing_create(xo_ctx_t *ctx, void *state, const void *arg,
                          size_t size)
{
    (void)state;
    (void)arg;
    (void)size;
    return xo_fail(ctx, XO_EINVAL, "on_create refuses");
}

static int refusing_destroy(xo_ctx_t *ctx, void *state)
{
    int *refusals = state;
    if ((*refusals)++ < 3)
        return xo_fail(ctx, XO_EINVAL, "on_destroy refuses, for now");
    return 0;
}

static const xo_actor_def_t failing_create_def = {
    .name = "failing-create", .on_create = failing_create,
};
static const xo_actor_def_t refusing_destroy_def = {
    .name = "refusing-destroy", .state_size = sizeof(int),
    .on_destroy = refusing_destroy,
};

/* The leak check of the sanitizer build is what fails here if a message
   is kept. */
Test(answers, xo_fail_in_on_create_and_on_destroy_frees_its_message)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_ref_t r;
    for (int i = 0; i < 20; i++)
        cr_assert_eq(xo_spawn(rt, &failing_create_def, NULL, &r), XO_EINVAL);
    cr_assert_eq(xo_spawn(rt, &refusing_destroy_def, NULL, &r), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(xo_destroy(r), XO_EINVAL, "refusal %d", i);
    cr_assert_eq(xo_destroy(r), 0);
    stop_runtime(rt);
}

static atomic_int a_release, b_called, b_release, b_replied;
static xo_ref_t slow_b;

static int then_fails(xo_ctx_t *ctx, void *state, xo_future_t *f, void *arg)
{
    (void)state;
    (void)f;
    (void)arg;
    return xo_fail(ctx, XO_EINVAL, "from then");
}

static int a_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)state;
    switch (m->tag) {
    case START:
        return xo_call_then(ctx, slow_b, ANSWER, NULL, 0, -1, then_fails,
                            NULL);
    case BLOCK:
        while (!atomic_load(&a_release))
            sleep_ms(1);
        return 0;
    case FAIL_PLAIN:
        return XO_EINVAL; /* no xo_fail: the default message */
    }
    return 0;
}

static int b_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    atomic_store(&b_called, 1);
    while (!atomic_load(&b_release))
        sleep_ms(1);
    cr_assert_eq(xo_reply(m->request, ANSWER, NULL, 0), 0);
    atomic_store(&b_replied, 1);
    return 0;
}

static const xo_actor_def_t a_def = { .name = "a", .on_message = a_message };
static const xo_actor_def_t b_def = { .name = "b", .on_message = b_message };

/* A's mailbox holds, in this order, BLOCK, the continuation, and a call
   that fails without a message: one turn runs all three, and the call's
   caller must see the default message, not the continuation's. */
Test(answers, a_continuations_xo_fail_message_is_not_the_next_calls_error)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.pool = 1;
    cr_assert_eq(xo_spawn(rt, &b_def, &opts, &slow_b), 0);
    opts.pool = 0;
    xo_ref_t a;
    cr_assert_eq(xo_spawn(rt, &a_def, &opts, &a), 0);
    cr_assert_eq(xo_tell(a, START, NULL, 0), 0);
    while (!atomic_load(&b_called))
        sleep_ms(1);
    cr_assert_eq(xo_tell(a, BLOCK, NULL, 0), 0);
    atomic_store(&b_release, 1);
    while (!atomic_load(&b_replied)) /* the continuation is queued now */
        sleep_ms(1);
    xo_future_t *f;
    cr_assert_eq(xo_call(a, FAIL_PLAIN, NULL, 0, &f), 0);
    atomic_store(&a_release, 1);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t r;
    cr_assert_eq(xo_future_result(f, 0, &r), XO_EINVAL);
    cr_assert_str_eq(r.error, xo_strerror(XO_EINVAL));
    xo_future_release(f);
    stop_runtime(rt);
}

/* ---- a released future ------------------------------------------------------ */

static int echo_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    return xo_reply(m->request, ANSWER, NULL, 0);
}

static const xo_actor_def_t echo_def = {
    .name = "echo", .on_message = echo_message,
};

/* In a child process (this one has no threads yet, so it may fork): the
   second release must abort, and say what happened. */
Test(answers, releasing_a_future_twice_aborts_with_a_message)
{
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(pipefd[1], 2);
        xo_runtime_t *rt = NULL;
        if (xo_runtime_start(NULL, &rt) != 0)
            _exit(3);
        xo_ref_t e;
        xo_future_t *f;
        xo_future_t *g;
        /* g's reply comes after the worker freed f's call envelope (it
           handles them in order): then the first release frees f. */
        if (xo_spawn(rt, &echo_def, NULL, &e) != 0 ||
            xo_call(e, ANSWER, NULL, 0, &f) != 0 ||
            xo_future_wait(f, -1) != 0 ||
            xo_call(e, ANSWER, NULL, 0, &g) != 0 ||
            xo_future_wait(g, -1) != 0)
            _exit(4);
        xo_future_release(g);
        xo_future_release(f);
        xo_future_release(f);
        _exit(5); /* not reached */
    }
    close(pipefd[1]);
    char buf[1024] = { 0 };
    size_t got = 0;
    ssize_t k;
    while (got < sizeof(buf) - 1 &&
           (k = read(pipefd[0], buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)k;
    close(pipefd[0]);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
              "status %#x, stderr: %s", status, buf);
    cr_assert_not_null(strstr(buf, "xo_future_release"), "stderr: %s", buf);
}
