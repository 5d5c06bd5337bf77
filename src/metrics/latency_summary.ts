/**
 * Percentiles of a LatencyAccumulator exactly as an hdr-histogram-js
 * histogram (3 significant digits) filled from it would report them, without
 * building one.
 */
import { BUCKET_VALUES, BUCKETS, type LatencyAccumulator } from './latency_accumulator.js';

/**
 * Percentiles of a latency, in seconds.
 *
 * @group Metrics
 */
export interface LatencySummary {
  count: number;
  /** Sum of the observations (from the bucket midpoints: within 0.4%). */
  sum: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** @internal A summary and the buckets its p50, p95, p99 and max came from (the text exposition keeps text per bucket). */
export interface BucketedSummary extends LatencySummary {
  readonly buckets: readonly number[];
}

export const EMPTY_SUMMARY: BucketedSummary = Object.freeze({ count: 0, sum: 0, p50: 0, p95: 0, p99: 0, max: 0, buckets: Object.freeze([0, 0, 0, 0]) });

/*
 * Why not build an HDR histogram per series: hdr-histogram-js allocates its
 * whole counts array per histogram (tens of thousands of entries at 3
 * digits), which made a scrape of 10,000 topics take 26 s. Each bucket of a
 * LatencyAccumulator (128 per power of two) falls in exactly one HDR bucket
 * (1,024 per power of two at 3 digits) and distinct buckets in distinct HDR
 * buckets, in the same order; so walking our buckets with HDR's own
 * count-at-percentile rule and reporting HDR's "highest equivalent value"
 * gives HDR's answer. test/metrics_scale.test.ts checks it against
 * hdr-histogram-js on random distributions.
 */

/** HDR's unit resolution at 3 digits: values below 2^11 are exact, each power of two above has 1,024 sub-buckets. */
const SUB_BUCKET_HALF_MAGNITUDE = 10;
const SUB_BUCKET_COUNT = 2048;

/** hdr-histogram-js's highestEquivalentValue(v) for lowestDiscernibleValue 1 and 3 significant digits. */
export function highestEquivalentValue(v: number): number {
  const bucket = Math.max(Math.floor(Math.log2(v)) - SUB_BUCKET_HALF_MAGNITUDE, 0);
  const sub = Math.floor(v / 2 ** bucket);
  const size = 2 ** (sub >= SUB_BUCKET_COUNT ? bucket + 1 : bucket);
  return sub * 2 ** bucket + size - 1;
}

/** What a percentile falling in each of our buckets reads as: the HDR bucket's highest equivalent value. */
const REPORTED = Float64Array.from({ length: BUCKETS }, (_, i) => highestEquivalentValue(BUCKET_VALUES[i]));

const ulp = (x: number): number => 2 ** (Math.floor(Math.log2(x)) - 52);

/** hdr-histogram-js's count at a percentile: rounded up, with its guard against a 1-ulp error. */
function countAtPercentile(percentile: number, total: number): number {
  const fp = (percentile / 100) * total;
  return Math.max(Math.ceil(fp - ulp(fp)), 1);
}

/** A bucket's value as a percentile reads it, in seconds. */
export const reportedSeconds = (bucket: number): number => REPORTED[bucket] / 1e9;

/** Count, sum and p50/p95/p99/max in seconds. */
export function summarize(acc: LatencyAccumulator): BucketedSummary {
  if (acc.count === 0) return EMPTY_SUMMARY;
  const buckets = [0, 0, 0, 0];
  const total = acc.count;
  acc.bucketsAtCounts([countAtPercentile(50, total), countAtPercentile(95, total), countAtPercentile(99, total)], buckets);
  buckets[3] = acc.highestBucket;
  return {
    count: total,
    sum: acc.sum() / 1e9,
    p50: REPORTED[buckets[0]] / 1e9,
    p95: REPORTED[buckets[1]] / 1e9,
    p99: REPORTED[buckets[2]] / 1e9,
    // Percentiles report a bucket's highest equivalent value; so does max (the highest bucket), to stay >= p99.
    max: REPORTED[buckets[3]] / 1e9,
    buckets,
  };
}
