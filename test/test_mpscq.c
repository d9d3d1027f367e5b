/*
 * The mailbox queue on its own: FIFO per producer under contention, chains
 * pushed with one exchange, and the idle-mark handshake (exactly one
 * producer takes each mark).
 */
#include "support.h"

#include <stdlib.h>

#include "runtime/mpscq.h"

#define PRODUCERS 4
#define PER_PRODUCER 200000

struct item {
    struct xi_qnode node;
    int producer;
    long seq;
};

static struct xi_mpscq queue;
static struct xi_qnode *queue_tail;
static struct item *items[PRODUCERS];
static atomic_long marks_taken;

static void *producer(void *arg)
{
    int id = (int)(long)arg;
    for (long i = 0; i < PER_PRODUCER; i++) {
        struct item *it = &items[id][i];
        it->producer = id;
        it->seq = i;
        if (xi_mpscq_push(&queue, &it->node))
            atomic_fetch_add(&marks_taken, 1);
    }
    return NULL;
}

static struct item *pop_item(void)
{
    struct xi_qnode *n = xi_mpscq_pop(&queue, &queue_tail);
    return n ? (struct item *)n : NULL;
}

Test(mpscq, concurrent_producers_each_arrive_once_in_order)
{
    xi_mpscq_init(&queue, &queue_tail, false);
    pthread_t t[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++) {
        items[p] = calloc(PER_PRODUCER, sizeof(struct item));
        pthread_create(&t[p], NULL, producer, (void *)(long)p);
    }
    long next[PRODUCERS] = { 0 }, total = 0, marks_made = 0;
    while (total < (long)PRODUCERS * PER_PRODUCER) {
        struct item *it = pop_item();
        if (it == NULL) {
            /* Sometimes go idle: each mark must be taken by one producer. */
            if ((total & 7) == 0 && xi_mpscq_mark_idle(&queue, queue_tail)) {
                marks_made++;
                while (atomic_load(&marks_taken) < marks_made)
                    sched_yield();
            }
            continue;
        }
        cr_assert_eq(it->seq, next[it->producer], "producer %d out of order",
                     it->producer);
        next[it->producer]++;
        total++;
    }
    for (int p = 0; p < PRODUCERS; p++) {
        pthread_join(t[p], NULL);
        cr_assert_eq(next[p], PER_PRODUCER);
        free(items[p]);
    }
    cr_assert_null(xi_mpscq_pop(&queue, &queue_tail), "nothing beyond what was pushed");
    cr_assert_eq(atomic_load(&marks_taken), marks_made,
                 "every idle mark taken by exactly one push");
}

Test(mpscq, chain_push_keeps_order_and_idle_mark_reports_once)
{
    struct item it[5];
    xi_mpscq_init(&queue, &queue_tail, true);
    for (int i = 0; i < 5; i++) {
        it[i].seq = i;
        if (i > 0)
            atomic_store(&it[i - 1].node.next, &it[i].node);
    }
    cr_assert(xi_mpscq_push_chain(&queue, &it[0].node, &it[2].node),
              "the first push after init(idle) takes the mark");
    cr_assert_not(xi_mpscq_push_chain(&queue, &it[3].node, &it[4].node),
                  "the mark is taken only once");
    for (int i = 0; i < 5; i++) {
        struct item *got = pop_item();
        cr_assert_not_null(got);
        cr_assert_eq(got->seq, i);
    }
    cr_assert_null(pop_item());
    cr_assert(xi_mpscq_empty(&queue, queue_tail));
    cr_assert(xi_mpscq_mark_idle(&queue, queue_tail), "empty queue can be marked idle");
    cr_assert(xi_mpscq_push(&queue, &it[0].node));
    cr_assert_not(xi_mpscq_mark_idle(&queue, queue_tail), "not idle while a node waits");
}
