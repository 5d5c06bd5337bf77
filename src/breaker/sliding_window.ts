/**
 * A sliding window of call outcomes kept as time buckets: the window is
 * `buckets` buckets of `windowMs / buckets` each, and a bucket is cleared as
 * time moves past it. Counting is O(1); totals are kept up to date, so a rule
 * reads them without summing.
 */
export class SlidingWindow {
  readonly #bucketMs: number;
  readonly #calls: Float64Array;
  readonly #failures: Float64Array;
  readonly #slow: Float64Array;
  /** Index (time / bucketMs) of the newest bucket. */
  #head = 0;
  calls = 0;
  failures = 0;
  slow = 0;

  constructor(windowMs: number, buckets = 10) {
    this.#bucketMs = windowMs / buckets;
    this.#calls = new Float64Array(buckets);
    this.#failures = new Float64Array(buckets);
    this.#slow = new Float64Array(buckets);
  }

  /** Counts outcomes at time `now` (ms): `calls` attempts, of which `failures` failed and `slow` were slow successes. */
  add(now: number, calls: number, failures: number, slow: number): void {
    const i = this.#advance(now);
    this.#calls[i] += calls;
    this.#failures[i] += failures;
    this.#slow[i] += slow;
    this.calls += calls;
    this.failures += failures;
    this.slow += slow;
  }

  /** Drops buckets older than the window (reads of the totals after this see only the window). */
  expire(now: number): void {
    this.#advance(now);
  }

  reset(): void {
    this.#calls.fill(0);
    this.#failures.fill(0);
    this.#slow.fill(0);
    this.calls = this.failures = this.slow = 0;
  }

  #advance(now: number): number {
    const n = this.#calls.length;
    const index = Math.floor(now / this.#bucketMs);
    if (index > this.#head) {
      // Clear every bucket time moved past (at most all of them).
      for (let k = Math.max(this.#head + 1, index - n + 1); k <= index; k++) {
        const i = k % n;
        this.calls -= this.#calls[i];
        this.failures -= this.#failures[i];
        this.slow -= this.#slow[i];
        this.#calls[i] = this.#failures[i] = this.#slow[i] = 0;
      }
      this.#head = index;
    }
    return this.#head % n;
  }
}
