/*
 * timer.c -- the runtime's one timer mechanism: a binary min-heap of
 * deadlines per worker, used by delayed tells and by call timeouts.
 *
 * Only its worker touches a heap. Another thread that arms a timer hands it
 * over through the worker's run queue (an item of kind TIMER), which also
 * wakes the worker if it is parked; the worker files it on pop. A parked
 * worker sleeps no longer than its earliest deadline.
 *
 * Firing: a delayed tell is enqueued to its target (dropped if the target
 * is gone or the runtime is stopping); a call timeout completes the call's
 * future with XO_ETIMEDOUT unless a reply came first (the future's items
 * settle that race by CAS). Timers still pending when the workers exit are
 * discarded: delayed tells are dropped, futures released.
 */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t xi_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

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

static void heap_release(xo_runtime_t *rt, struct xi_timer_heap *h)
{
    if (h->v != NULL)
        xi_mem_free(&rt->mem, h->v, h->cap * sizeof(*h->v));
    h->v = NULL;
    h->cap = 0;
}

void xi_timer_discard(xo_runtime_t *rt, struct xi_timer *t)
{
    if (t->env)
        xi_envelope_free(rt, t->env);
    if (t->f)
        xi_future_unref(t->f);
    xi_mem_free(&rt->mem, t, sizeof(*t));
}

/* Grow by doubling, through the runtime's allocator (so fault injection
   reaches it): the heap is per worker and long-lived, not on the message
   path. */
static int reserve(xo_runtime_t *rt, struct xi_timer_heap *h)
{
    if (h->len < h->cap)
        return 0;
    size_t cap = h->cap ? h->cap * 2 : 64;
    struct xi_timer **v = xi_mem_alloc(&rt->mem, cap * sizeof(*v));
    if (v == NULL)
        return XO_ENOMEM;
    if (h->len > 0)
        memcpy(v, h->v, h->len * sizeof(*v));
    heap_release(rt, h);
    h->v = v;
    h->cap = cap;
    return 0;
}

/* The heap could not grow: say so, then drop the timer (docs/errors.md).
   A call's timeout completes the call with the error instead: its caller
   would otherwise wait for a timeout that never comes. */
static void timer_refused(struct xi_worker *w, struct xi_timer *t)
{
    xo_runtime_t *rt = w->rt;
    if (t->what == XI_TIMER_CALL_TIMEOUT) {
        for (uint32_t i = 0; i < t->f->count; i++)
            xi_future_complete_item(t->f, i, XO_ENOMEM, NULL, NULL, false);
    } else if (rt->cfg.on_handler_error != NULL) {
        rt->cfg.on_handler_error(rt, t->to, t->env->msg.tag, XO_ENOMEM,
                                 rt->cfg.on_handler_error_user);
    }
    xi_timer_discard(rt, t);
}

void xi_timer_insert(struct xi_worker *w, struct xi_timer *t)
{
    struct xi_timer_heap *h = &w->timers;
    if (reserve(w->rt, h) != 0) {
        timer_refused(w, t);
        return;
    }
    h->v[h->len] = t;
    sift_up(h, h->len++);
}

int xi_timer_start(struct xi_worker *w, struct xi_timer *t)
{
    t->item.kind = XI_K_TIMER;
    if (xi_current_worker() == w)
        xi_timer_insert(w, t);
    else
        xi_runq_push(w, &t->item);
    return 0;
}

static void fire(struct xi_worker *w, struct xi_timer *t)
{
    if (t->what == XI_TIMER_TELL) {
        if (xi_enqueue(t->to, t->env) == 0)
            t->env = NULL; /* delivered: no longer ours */
    } else if (t->what == XI_TIMER_CALL_TIMEOUT) {
        for (uint32_t i = 0; i < t->f->count; i++)
            xi_future_complete_item(t->f, i, XO_ETIMEDOUT, NULL, NULL, false);
    }
    xi_timer_discard(w->rt, t);
}

uint64_t xi_timers_run(struct xi_worker *w)
{
    struct xi_timer_heap *h = &w->timers;
    if (h->len == 0)
        return 0;
    uint64_t now = xi_now_ns();
    while (h->len > 0 && h->v[0]->deadline <= now) {
        struct xi_timer *t = h->v[0];
        h->v[0] = h->v[--h->len];
        sift_down(h, 0);
        fire(w, t);
    }
    return h->len > 0 ? h->v[0]->deadline : 0;
}

void xi_timers_move(struct xi_worker *from, struct xi_worker *to)
{
    struct xi_timer_heap *h = &from->timers;
    for (size_t i = 0; i < h->len; i++)
        xi_timer_start(to, h->v[i]);
    h->len = 0;
    heap_release(from->rt, h);
}

void xi_timers_discard(struct xi_worker *w)
{
    struct xi_timer_heap *h = &w->timers;
    for (size_t i = 0; i < h->len; i++)
        xi_timer_discard(w->rt, h->v[i]);
    h->len = 0;
    heap_release(w->rt, h);
}
