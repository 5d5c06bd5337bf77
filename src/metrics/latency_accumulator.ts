/**
 * Log-linear latency buckets that record in a few nanoseconds and merge into
 * HDR histograms only when read.
 */
import type { Histogram } from 'hdr-histogram-js';

/**
 * The hot-path half of a latency histogram: counts in log-linear buckets of
 * nanoseconds (exact below 256 ns, then 128 buckets per power of two: under
 * 0.4% relative error),
 * one typed-array increment per value (~3 ns). hdr-histogram-js's own
 * recordValue costs 25–90 ns here (measured, see PERFORMANCE.md), too much
 * for every delivery; so workers and main count here, and the counts go into
 * HDR histograms (recordValueWithCount per bucket) when metrics are read.
 */
const LINEAR = 256; // values below this many ns have a bucket each
const HALF = 128; // sub-buckets per power of two above it
/** Values up to 2^44 ns (about 4.9 hours); larger ones are clamped. */
const MAX_EXPONENT = 44;
export const BUCKETS = LINEAR + (MAX_EXPONENT - 8) * HALF;

export function bucketOf(ns: number): number {
  if (ns < 2147483648) {
    // The common case (under ~2.1 s) in int32 arithmetic; truncating instead of rounding moves a value < 1 ns.
    const v = ns > 0 ? ns | 0 : 0;
    if (v < LINEAR) return v;
    const shift = 24 - Math.clz32(v); // (31 - clz32) - 7: v >>> shift is in [128, 256)
    return LINEAR + (shift - 1) * HALF + ((v >>> shift) - HALF);
  }
  let v = Math.round(ns);
  if (v < LINEAR) return v;
  if (v >= 2 ** MAX_EXPONENT) v = 2 ** MAX_EXPONENT - 1;
  const e = v < 4294967296 ? 31 - Math.clz32(v) : Math.floor(Math.log2(v));
  const shift = e - 7; // v >> shift is in [128, 256)
  const top = v < 4294967296 ? v >>> shift : Math.floor(v / 2 ** shift);
  return LINEAR + (shift - 1) * HALF + (top - HALF);
}

/** The value a bucket stands for: its midpoint. */
export function bucketValue(index: number): number {
  if (index < LINEAR) return index;
  const k = index - LINEAR;
  const shift = (k >> 7) + 1;
  return ((k & (HALF - 1)) + HALF) * 2 ** shift + 2 ** (shift - 1);
}

export class LatencyAccumulator {
  counts = new Float64Array(BUCKETS);
  count = 0;
  /** The range of buckets in use, so reading scans only that (workers publish often). */
  #lo = BUCKETS;
  #hi = -1;

  record(ns: number): void {
    this.recordTimesAt(bucketOf(ns), 1);
  }

  /** Sum of the values (bucket midpoints), in ns: cheaper than an HDR histogram's mean. */
  sum(): number {
    let total = 0;
    const c = this.counts;
    for (let i = this.#lo; i <= this.#hi; i++) if (c[i] > 0) total += c[i] * bucketValue(i);
    return total;
  }

  /** Non-empty buckets as [index, count, index, count, …]. */
  sparse(): number[] {
    const out: number[] = [];
    const c = this.counts;
    for (let i = this.#lo; i <= this.#hi; i++) if (c[i] > 0) out.push(i, c[i]);
    return out;
  }

  addSparse(pairs: readonly number[]): void {
    for (let i = 0; i < pairs.length; i += 2) this.recordTimesAt(pairs[i], pairs[i + 1]);
  }

  add(other: LatencyAccumulator): void {
    for (let i = other.#lo; i <= other.#hi; i++) if (other.counts[i] > 0) this.recordTimesAt(i, other.counts[i]);
  }

  /** Adds every count into an HDR histogram (values in ns). */
  into(h: Histogram): void {
    const c = this.counts;
    for (let i = this.#lo; i <= this.#hi; i++) if (c[i] > 0) h.recordValueWithCount(bucketValue(i), c[i]);
  }

  private recordTimesAt(index: number, times: number): void {
    this.counts[index] += times;
    this.count += times;
    if (index < this.#lo) this.#lo = index;
    if (index > this.#hi) this.#hi = index;
  }
}
