/**
 * Log-linear latency buckets that record in a few nanoseconds, take memory
 * only for the ranges they use, and merge into HDR histograms only when read.
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
/**
 * Buckets are stored in chunks of this many, allocated on first use: one
 * series holds a few chunks (a latency distribution spans a few powers of
 * two), not all 4,864 buckets (39 KB), so 10,000 topics' series fit in tens of MB.
 */
const CHUNK_SHIFT = 5;
const CHUNK = 1 << CHUNK_SHIFT;
const CHUNK_MASK = CHUNK - 1;
const CHUNKS = BUCKETS >> CHUNK_SHIFT;
/** A chunk in the arena: its CHUNK counts, then their total (so a percentile skips whole chunks). */
const STRIDE = CHUNK + 1;

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

/** bucketValue of every bucket, computed once: reading walks many buckets. */
export const BUCKET_VALUES: Float64Array = Float64Array.from({ length: BUCKETS }, (_, i) => bucketValue(i));

/**
 * Counts per bucket. With a `parent`, every count added here is added there
 * too: a topic's series feeds the bus-wide distribution, so the bus-wide
 * percentiles never need a merge over every series.
 *
 * The chunks in use live side by side in one Float64Array (the arena, grown
 * by doubling), found through a small index: recording is two typed-array
 * reads and two increments (~4 ns, against ~2.5 ns for one flat array of
 * every bucket), and a series' counts are contiguous for the reader.
 */
export class LatencyAccumulator {
  count = 0;
  /** Per chunk: its offset in the arena, -1 until used. */
  readonly #index = new Int16Array(CHUNKS).fill(-1);
  #arena = new Float64Array(STRIDE);
  #used = 0;
  readonly #parent: LatencyAccumulator | undefined;
  #sum = 0;
  /** The range of buckets in use, so reading scans only that (workers publish often). */
  #lo = BUCKETS;
  #hi = -1;

  constructor(parent?: LatencyAccumulator) {
    this.#parent = parent;
  }

  record(ns: number): void {
    this.#addAt(bucketOf(ns), 1);
  }

  /** Sum of the values (bucket midpoints), in ns: cheaper than an HDR histogram's mean. */
  sum(): number {
    return this.#sum;
  }

  /** The highest non-empty bucket (-1 when empty). */
  get highestBucket(): number {
    return this.#hi;
  }

  /**
   * For each of `counts` (ascending, each in [1, count]), the first bucket at
   * which the running count from the lowest bucket up reaches it, written to
   * `out`: one walk that skips whole chunks below each target.
   */
  bucketsAtCounts(counts: ArrayLike<number>, out: number[]): void {
    let next = 0;
    let seen = 0;
    const index = this.#index;
    const arena = this.#arena;
    for (let c = this.#lo >> CHUNK_SHIFT, last = this.#hi >> CHUNK_SHIFT; c <= last && next < counts.length; c++) {
      const off = index[c];
      if (off < 0) continue;
      if (seen + arena[off + CHUNK] < counts[next]) {
        seen += arena[off + CHUNK];
        continue;
      }
      for (let k = 0; k < CHUNK && next < counts.length; k++) {
        seen += arena[off + k];
        while (next < counts.length && seen >= counts[next]) out[next++] = (c << CHUNK_SHIFT) + k;
      }
    }
    while (next < counts.length) out[next++] = this.#hi;
  }

  /** Non-empty buckets as [index, count, index, count, …], by increasing index. */
  sparse(): number[] {
    const out: number[] = [];
    this.each((i, c) => {
      out.push(i, c);
    });
    return out;
  }

  addSparse(pairs: ArrayLike<number>): void {
    for (let i = 0; i < pairs.length; i += 2) this.#addAt(pairs[i], pairs[i + 1]);
  }

  /**
   * Adds `now - before`, two sparse snapshots of one growing distribution
   * (each bucket of `now` >= the same bucket of `before`): how a worker's
   * cumulative report replaces the one applied before it, touching only the
   * buckets that moved.
   */
  addGrowth(now: ArrayLike<number>, before: ArrayLike<number> | undefined): void {
    if (before === undefined || before.length === 0) {
      this.addSparse(now);
      return;
    }
    let j = 0;
    for (let i = 0; i < now.length; i += 2) {
      const index = now[i];
      while (j < before.length && before[j] < index) j += 2; // a bucket cannot shrink away: defensive only
      const was = j < before.length && before[j] === index ? before[j + 1] : 0;
      if (now[i + 1] !== was) this.#addAt(index, now[i + 1] - was);
    }
  }

  add(other: LatencyAccumulator): void {
    other.each((i, n) => this.#addAt(i, n));
  }

  /** Adds every count into an HDR histogram (values in ns). */
  into(h: Histogram): void {
    this.each((i, n) => h.recordValueWithCount(BUCKET_VALUES[i], n));
  }

  /** Visits the non-empty buckets by increasing index. */
  each(visit: (index: number, count: number) => void): void {
    const index = this.#index;
    const arena = this.#arena;
    for (let c = this.#lo >> CHUNK_SHIFT, last = this.#hi >> CHUNK_SHIFT; c <= last; c++) {
      const off = index[c];
      if (off < 0 || arena[off + CHUNK] === 0) continue;
      for (let k = 0; k < CHUNK; k++) if (arena[off + k] > 0) visit((c << CHUNK_SHIFT) + k, arena[off + k]);
    }
  }

  #addAt(index: number, times: number): void {
    const c = index >> CHUNK_SHIFT;
    let off = this.#index[c];
    if (off < 0) off = this.#newChunk(c);
    const arena = this.#arena;
    arena[off + (index & CHUNK_MASK)] += times;
    arena[off + CHUNK] += times;
    this.count += times;
    this.#sum += times * BUCKET_VALUES[index];
    if (index < this.#lo) this.#lo = index;
    if (index > this.#hi) this.#hi = index;
    if (this.#parent !== undefined) this.#parent.#addAt(index, times);
  }

  #newChunk(c: number): number {
    if (!(c >= 0 && c < CHUNKS)) throw new RangeError(`latency bucket out of range: ${c << CHUNK_SHIFT}`);
    if (this.#used + STRIDE > this.#arena.length) {
      const grown = new Float64Array(2 * this.#arena.length);
      grown.set(this.#arena);
      this.#arena = grown;
    }
    const off = this.#used;
    this.#used += STRIDE;
    this.#index[c] = off;
    return off;
  }
}
