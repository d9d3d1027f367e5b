/*
 * A small stand-in for Criterion's test API, used only by the ThreadSanitizer
 * build. Criterion itself cannot start under TSan: its runner maps a shared
 * arena at randomly probed addresses, and TSan's shadow mappings cover all
 * of them (upstream Criterion issue 274), so every TSan run would abort
 * before the first test. The suites are written against Criterion's API and
 * compile unchanged against either; this file implements the part they
 * use: Test() with .init/.fini/.timeout, the cr_assert family, and
 * cr_skip_test (a test that cannot run here: counted as skipped, with its
 * reason on stderr).
 *
 * The runner (runner.c) runs every test in its own forked child, like
 * Criterion, so tests keep their isolation: a crash, an assertion, a TSan
 * report (exit code 66) or a timeout fails only that test.
 */
#ifndef XO_TEST_HARNESS_CRITERION_H
#define XO_TEST_HARNESS_CRITERION_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct xo_harness_test {
    const char *suite;
    const char *name;
    void (*fn)(void);
    void (*init)(void);
    void (*fini)(void);
    double timeout;
    bool disabled;
    struct xo_harness_test *next;
};

void xo_harness_register(struct xo_harness_test *t);
void xo_harness_fail(const char *file, int line, const char *cond,
                     const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));
void xo_harness_skip(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));
void xo_harness_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define Test(S, N, ...)                                                      \
    static void S##_##N##_fn(void);                                          \
    static struct xo_harness_test S##_##N##_desc = {                         \
        .suite = #S, .name = #N, .fn = S##_##N##_fn, __VA_ARGS__};           \
    __attribute__((constructor)) static void S##_##N##_reg(void)             \
    {                                                                        \
        xo_harness_register(&S##_##N##_desc);                                \
    }                                                                        \
    static void S##_##N##_fn(void)

/* Criterion takes an optional format and arguments after the condition. */
#define XO_HARNESS_MSG_(...) "" __VA_ARGS__

#define cr_assert(cond, ...)                                                 \
    do {                                                                     \
        if (!(cond))                                                         \
            xo_harness_fail(__FILE__, __LINE__, #cond,                       \
                            XO_HARNESS_MSG_(__VA_ARGS__));                   \
    } while (0)

#define cr_assert_not(cond, ...) cr_assert(!(cond), __VA_ARGS__)
#define cr_assert_eq(a, b, ...) cr_assert((a) == (b), __VA_ARGS__)
#define cr_assert_neq(a, b, ...) cr_assert((a) != (b), __VA_ARGS__)
#define cr_assert_lt(a, b, ...) cr_assert((a) < (b), __VA_ARGS__)
#define cr_assert_leq(a, b, ...) cr_assert((a) <= (b), __VA_ARGS__)
#define cr_assert_gt(a, b, ...) cr_assert((a) > (b), __VA_ARGS__)
#define cr_assert_geq(a, b, ...) cr_assert((a) >= (b), __VA_ARGS__)
#define cr_assert_null(p, ...) cr_assert((p) == NULL, __VA_ARGS__)
#define cr_assert_not_null(p, ...) cr_assert((p) != NULL, __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) cr_assert(strcmp((a), (b)) == 0, __VA_ARGS__)
#define cr_fail(...) xo_harness_fail(__FILE__, __LINE__, "cr_fail", \
                                     XO_HARNESS_MSG_(__VA_ARGS__))
#define cr_skip_test(...) xo_harness_skip(XO_HARNESS_MSG_(__VA_ARGS__))
#define cr_log_info(...) xo_harness_log(__VA_ARGS__)

#endif
