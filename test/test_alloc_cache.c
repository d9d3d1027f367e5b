/*
 * The allocator's small-block cache on its own: blocks freed on one thread
 * reach another through the depot in whole magazines, a thread that exits
 * gives its lists back, the depot can be emptied, and what the cache hands
 * out is as good as fresh memory (zeroed when asked, usable to the size
 * asked, distinct while live). Each test runs in its own process, so the
 * depot starts empty.
 */
#include "support.h"

#include <stdint.h>
#include <string.h>
#include <sys/wait.h>

#include "alloc/alloc.h"

/* A size no other allocation in these processes uses (class 224). */
#define SIZE 200
#define MAG XI_MAG
#define NBLOCKS (3 * MAG)

static struct xi_allocator mem;

struct handoff {
    void *blocks[NBLOCKS];
    size_t count;
};

static void *free_all(void *arg)
{
    struct handoff *h = arg;
    for (size_t i = 0; i < h->count; i++)
        xi_mem_free(&mem, h->blocks[i], SIZE);
    return NULL; /* exiting gives this thread's lists to the depot */
}

static void free_on_other_thread(struct handoff *h)
{
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, free_all, h), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
}

static bool in_set(void *p, struct handoff *h)
{
    for (size_t i = 0; i < h->count; i++)
        if (h->blocks[i] == p)
            return true;
    return false;
}

Test(alloc_cache, blocks_freed_on_another_thread_come_back_through_the_depot)
{
    xi_mem_init(&mem);
    struct handoff h = { .count = NBLOCKS };
    for (size_t i = 0; i < NBLOCKS; i++) {
        h.blocks[i] = xi_mem_alloc(&mem, SIZE);
        cr_assert_not_null(h.blocks[i]);
        memset(h.blocks[i], (int)i, SIZE);
    }
    cr_assert_eq(xi_mem_depot_blocks(), 0);
    free_on_other_thread(&h);
    /* Three full magazines: two parked by the frees, one at exit. */
    cr_assert_eq(xi_mem_depot_blocks(), (size_t)NBLOCKS);
    /* This thread's own lists for the class are empty (its allocations
       used up whole magazines), so the next ones come from the depot. */
    for (size_t i = 0; i < MAG; i++) {
        void *p = xi_mem_alloc(&mem, SIZE);
        cr_assert(in_set(p, &h), "allocation %zu reused a freed block", i);
        memset(p, 0xa5, SIZE);
        xi_mem_free(&mem, p, SIZE);
    }
    cr_assert_eq(xi_mem_depot_blocks(), (size_t)(NBLOCKS - MAG));
    xi_mem_trim();
    cr_assert_eq(xi_mem_depot_blocks(), 0);
}

Test(alloc_cache, a_partial_list_left_at_thread_exit_is_freed_not_parked)
{
    xi_mem_init(&mem);
    struct handoff h = { .count = MAG / 2 };
    for (size_t i = 0; i < h.count; i++)
        h.blocks[i] = xi_mem_alloc(&mem, SIZE);
    free_on_other_thread(&h);
    /* Half a magazine: back to the backend (a leak here is what the
       AddressSanitizer build's leak check reports). */
    cr_assert_eq(xi_mem_depot_blocks(), 0);
}

Test(alloc_cache, zalloc_from_the_cache_is_zeroed_after_reuse)
{
    xi_mem_init(&mem);
    void *held[MAG];
    for (size_t i = 0; i < MAG; i++) {
        held[i] = xi_mem_alloc(&mem, SIZE);
        memset(held[i], 0xff, SIZE);
    }
    for (size_t i = 0; i < MAG; i++)
        xi_mem_free(&mem, held[i], SIZE);
    /* Every block on this thread's list is dirty now. */
    for (size_t i = 0; i < MAG; i++) {
        unsigned char *p = xi_mem_zalloc(&mem, SIZE);
        cr_assert_not_null(p);
        for (size_t b = 0; b < SIZE; b++)
            cr_assert_eq(p[b], 0, "block %zu byte %zu", i, b);
        held[i] = p;
    }
    for (size_t i = 0; i < MAG; i++)
        xi_mem_free(&mem, held[i], SIZE);
}

Test(alloc_cache, live_blocks_of_every_cached_size_are_distinct_and_hold_their_bytes)
{
    xi_mem_init(&mem);
    enum { PER = 3 * MAG };
    for (size_t size = 1; size <= XI_CACHE_MAX; size += 7) {
        unsigned char *p[PER];
        for (size_t i = 0; i < PER; i++) {
            p[i] = xi_mem_alloc(&mem, size);
            cr_assert_not_null(p[i]);
            memset(p[i], (int)(i & 0xff), size);
        }
        /* Overlapping blocks would have overwritten each other's bytes. */
        for (size_t i = 0; i < PER; i++)
            for (size_t b = 0; b < size; b++)
                cr_assert_eq(p[i][b], (unsigned char)(i & 0xff),
                             "size %zu block %zu byte %zu", size, i, b);
        for (size_t i = 0; i < PER; i++)
            xi_mem_free(&mem, p[i], size);
    }
}

Test(alloc_cache, injected_failure_hits_cached_sizes_too)
{
    xi_mem_init(&mem);
    void *warm = xi_mem_alloc(&mem, SIZE);
    xi_mem_free(&mem, warm, SIZE); /* the list is not empty now */
    xi_mem_fail_after(&mem, 1);
    cr_assert_null(xi_mem_alloc(&mem, SIZE));
    void *p = xi_mem_alloc(&mem, SIZE);
    cr_assert_not_null(p, "only the armed allocation fails");
    xi_mem_free(&mem, p, SIZE);
}

Test(alloc_cache, frees_onto_a_magazine_taken_from_the_depot_keep_every_block)
{
    xi_mem_init(&mem);
    struct handoff h = { .count = NBLOCKS };
    for (size_t i = 0; i < NBLOCKS; i++)
        h.blocks[i] = xi_mem_alloc(&mem, SIZE);
    free_on_other_thread(&h);
    /* Take half of a depot magazine, give it back (onto a list whose last
       block this thread never saw), then take the whole magazine: each
       block exactly once. */
    void *got[MAG];
    for (size_t i = 0; i < MAG / 2; i++)
        got[i] = xi_mem_alloc(&mem, SIZE);
    for (size_t i = 0; i < MAG / 2; i++)
        xi_mem_free(&mem, got[i], SIZE);
    for (size_t i = 0; i < MAG; i++) {
        got[i] = xi_mem_alloc(&mem, SIZE);
        cr_assert(in_set(got[i], &h), "block %zu came from the magazine", i);
        for (size_t j = 0; j < i; j++)
            cr_assert_neq(got[i], got[j], "block %zu handed out twice", i);
    }
    cr_assert_eq(xi_mem_depot_blocks(), (size_t)(NBLOCKS - MAG));
    for (size_t i = 0; i < MAG; i++)
        xi_mem_free(&mem, got[i], SIZE);
}

/* Not under ThreadSanitizer: its runtime does not support fork() while
   other threads run (the child can hang inside the sanitizer itself). */
#ifndef __SANITIZE_THREAD__
static atomic_int churn_stop;

/* Moves whole magazines in and out of the depot, over and over. */
static void *churn(void *arg)
{
    (void)arg;
    void *b[4 * MAG];
    while (!atomic_load(&churn_stop)) {
        for (size_t i = 0; i < 4 * MAG; i++)
            b[i] = xi_mem_alloc(&mem, SIZE);
        for (size_t i = 0; i < 4 * MAG; i++)
            xi_mem_free(&mem, b[i], SIZE);
    }
    return NULL;
}

Test(alloc_cache, a_child_forked_while_another_thread_uses_the_depot_can_allocate)
{
    /* Without the fork handlers a child can inherit a depot mutex held by
       the churning thread, and hang on its first depot access (a hang
       fails by ctest's timeout). */
    xi_mem_init(&mem);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, churn, NULL), 0);
    for (int k = 0; k < 200; k++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            void *b[4 * MAG];
            for (size_t i = 0; i < 4 * MAG; i++)
                b[i] = xi_mem_alloc(&mem, SIZE);
            for (size_t i = 0; i < 4 * MAG; i++)
                xi_mem_free(&mem, b[i], SIZE);
            xi_mem_trim();
            _exit(0);
        }
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child %d", k);
    }
    atomic_store(&churn_stop, 1);
    pthread_join(t, NULL);
}
#endif /* __SANITIZE_THREAD__ */
