/*
 * runner.c -- main() for the test binaries of the ThreadSanitizer build (see
 * criterion/criterion.h for why). Forks one child per test, in registration
 * order; the parent has no threads, so fork is safe under TSan. Prints one
 * line per test and Criterion's synthesis line, and exits non-zero if any
 * test failed. A test that skips (cr_skip_test) exits with XO_HARNESS_SKIP
 * and is counted apart: neither passed nor failed.
 */

#include "criterion/criterion.h"

#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

/* The exit code of a skipped test's child (automake's "skipped"). */
#define XO_HARNESS_SKIP 77

static struct xo_harness_test *head, **tail = &head;
static const char *current_test = "?";

void xo_harness_register(struct xo_harness_test *t)
{
    t->next = NULL;
    *tail = t;
    tail = &t->next;
}

void xo_harness_fail(const char *file, int line, const char *cond,
                     const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s:%d: Assertion failed: %s%s%s\n", file, line, cond,
            msg[0] ? ": " : "", msg);
    fflush(stderr);
    _exit(1);
}

void xo_harness_skip(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "[SKIP] %s: %s\n", current_test, msg);
    fflush(stderr);
    _exit(XO_HARNESS_SKIP);
}

void xo_harness_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("[----] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* 0: passed, 1: failed, XO_HARNESS_SKIP: skipped; -1: could not fork. */
static int run_one(struct xo_harness_test *t, const char *full)
{
    fflush(NULL);
    current_test = full;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (t->timeout > 0)
            alarm((unsigned)(t->timeout + 0.999));
        if (t->init)
            t->init();
        t->fn();
        if (t->fini)
            t->fini();
        exit(0); /* exit, not _exit: TSan reports and checks at exit */
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == XO_HARNESS_SKIP)
        return XO_HARNESS_SKIP;
    if (WIFSIGNALED(status))
        fprintf(stderr, "[FAIL] %s::%s: killed by signal %d%s\n", t->suite,
                t->name, WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
    else
        fprintf(stderr, "[FAIL] %s::%s: exit code %d\n", t->suite, t->name,
                WEXITSTATUS(status));
    return 1;
}

int main(int argc, char **argv)
{
    const char *filter = NULL;
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--filter=", 9) == 0)
            filter = argv[i] + 9;
    int tested = 0, failed = 0, skipped = 0;
    for (struct xo_harness_test *t = head; t; t = t->next) {
        if (t->disabled)
            continue;
        char full[256];
        snprintf(full, sizeof(full), "%s/%s", t->suite, t->name);
        if (filter && !strstr(full, filter))
            continue;
        int rc = run_one(t, full);
        if (rc == XO_HARNESS_SKIP) {
            skipped++;
            continue;
        }
        tested++;
        if (rc != 0)
            failed++;
        else
            fprintf(stderr, "[PASS] %s::%s\n", t->suite, t->name);
    }
    fprintf(stderr, "[====] Synthesis: Tested: %d | Passing: %d | Failing: %d"
                    " | Skipped: %d\n",
            tested, tested - failed, failed, skipped);
    printf("%d passed, %d failed, %d skipped\n", tested - failed, failed,
           skipped);
    return failed == 0 && tested + skipped > 0 ? 0 : 1;
}
