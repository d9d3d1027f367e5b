/*
 * histogram.c -- see histogram.h. A value v >= 64 with its top bit at
 * position e goes to the bucket given by e and the next five bits below
 * it; a bucket's lower bound and width come back from its index alone.
 */
#include "histogram.h"

#include <math.h>

static unsigned bucket_of(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = e - HIST_SUB_BITS;
    return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

static uint64_t bucket_low(unsigned i)
{
    if (i < 2 * HIST_SUB)
        return i;
    unsigned k = i / HIST_SUB;
    return (uint64_t)(HIST_SUB + i % HIST_SUB) << (k - 1);
}

static uint64_t bucket_width(unsigned i)
{
    return i < 2 * HIST_SUB ? 1 : (uint64_t)1 << (i / HIST_SUB - 1);
}

void hist_record(struct histogram *h, uint64_t value)
{
    h->bucket[bucket_of(value)]++;
    h->count++;
    if (value > h->max)
        h->max = value;
}

void hist_merge(struct histogram *into, const struct histogram *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->bucket[i] += from->bucket[i];
    into->count += from->count;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t hist_quantile(const struct histogram *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count), seen = 0;
    if (rank == 0)
        rank = 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t mid = bucket_low(i) + bucket_width(i) / 2;
            return mid < h->max ? mid : h->max;
        }
    }
    return h->max;
}
