/*
 * histogram.h -- a latency histogram with constant relative precision.
 *
 * Values (nanoseconds) below 64 have a bucket each; above, every power of
 * two is split into 32 buckets, so a bucket is at most 1/32 (3 %) of its
 * value wide, whatever the scale: 2 ns wide around 100 ns, 2 us wide around
 * 100 us. Recording is a few instructions and no allocation (the buckets
 * are a fixed array, 15 KiB), so an actor can record every message it
 * gets; percentiles are read once at the end. One writer per histogram;
 * merge them afterwards.
 */
#ifndef XO_BENCH_HISTOGRAM_H
#define XO_BENCH_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB_BITS 5u
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64u - HIST_SUB_BITS + 1u) * HIST_SUB)

struct histogram {
    uint64_t count;
    uint64_t max;
    uint64_t bucket[HIST_BUCKETS];
};

void hist_record(struct histogram *h, uint64_t value);
void hist_merge(struct histogram *into, const struct histogram *from);
/* The value at quantile q (0 < q <= 1): the middle of the bucket that
   holds it, never above the largest value recorded. 0 when empty. */
uint64_t hist_quantile(const struct histogram *h, double q);

#endif /* XO_BENCH_HISTOGRAM_H */
