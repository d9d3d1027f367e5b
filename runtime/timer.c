/*
 * timer.c -- the min-heap of deadlines (design in timer.h). It is a plain
 * data structure: its worker (worker.c) files, fires and drains it.
 */
#include "timer.h"

#include <string.h>

static void sift_up(struct xi_timer_heap *h, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->v[parent]->deadline <= h->v[i]->deadline)
            break;
        struct xi_timer *t = h->v[parent];
        h->v[parent] = h->v[i];
        h->v[i] = t;
        i = parent;
    }
}

static void sift_down(struct xi_timer_heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, min = i;
        if (l < h->len && h->v[l]->deadline < h->v[min]->deadline)
            min = l;
        if (r < h->len && h->v[r]->deadline < h->v[min]->deadline)
            min = r;
        if (min == i)
            return;
        struct xi_timer *t = h->v[min];
        h->v[min] = h->v[i];
        h->v[i] = t;
        i = min;
    }
}

static void release(struct xi_allocator *a, struct xi_timer_heap *h)
{
    if (h->v != NULL)
        xi_mem_free(a, h->v, h->cap * sizeof(*h->v));
    h->v = NULL;
    h->cap = 0;
}

/* Grow by doubling, through the runtime's allocator (so fault injection
   reaches it): the heap is per worker and long-lived, not on the message
   path. */
static int reserve(struct xi_allocator *a, struct xi_timer_heap *h)
{
    if (h->len < h->cap)
        return 0;
    size_t cap = h->cap ? h->cap * 2 : 64;
    struct xi_timer **v = xi_mem_alloc(a, cap * sizeof(*v));
    if (v == NULL)
        return XO_ENOMEM;
    if (h->len > 0)
        memcpy(v, h->v, h->len * sizeof(*v));
    release(a, h);
    h->v = v;
    h->cap = cap;
    return 0;
}

int xi_heap_insert(struct xi_allocator *a, struct xi_timer_heap *h,
                   struct xi_timer *t)
{
    if (reserve(a, h) != 0)
        return XO_ENOMEM;
    h->v[h->len] = t;
    sift_up(h, h->len++);
    return 0;
}

struct xi_timer *xi_heap_pop_due(struct xi_timer_heap *h, uint64_t now)
{
    if (h->len == 0 || h->v[0]->deadline > now)
        return NULL;
    struct xi_timer *t = h->v[0];
    h->v[0] = h->v[--h->len];
    sift_down(h, 0);
    return t;
}

uint64_t xi_heap_next(const struct xi_timer_heap *h)
{
    return h->len > 0 ? h->v[0]->deadline : 0;
}

void xi_heap_hurry(struct xi_timer_heap *h)
{
    bool moved = false;
    for (size_t i = 0; i < h->len; i++) {
        struct xi_timer *t = h->v[i];
        if (t->urgent != NULL && t->deadline != 0 && t->urgent(t)) {
            t->deadline = 0;
            moved = true;
        }
    }
    if (!moved)
        return;
    for (size_t i = h->len / 2; i-- > 0;)
        sift_down(h, i);
}

void xi_heap_drain(struct xi_allocator *a, struct xi_timer_heap *h,
                   void (*each)(struct xi_timer *t, void *arg), void *arg)
{
    size_t n = h->len;
    h->len = 0;
    for (size_t i = 0; i < n; i++)
        each(h->v[i], arg);
    release(a, h);
}
