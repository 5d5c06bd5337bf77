/**
 * The token-bucket rate limit filter: a bucket per key (topic, session or a
 * key of the caller's), refilled continuously, in a map bounded by LRU
 * eviction. O(1) per call, no timers: buckets refill lazily on the clock's
 * reading when asked.
 */
import { checkFilterOptions, show } from './check.js';
import type { EventFilter, FilterEvent } from './filter_event.js';

/** Options of {@link rateLimit}. @group Filters */
export interface RateLimitOptions {
  /** Tokens added per second, continuously (0.5: one event every 2 s). */
  perSecond: number;
  /**
   * Bucket size: how many events may pass at once after a quiet spell (at
   * least 1). A new bucket starts full.
   * @default perSecond, and at least 1
   */
  burst?: number;
  /**
   * What shares a bucket: events of one topic, of one session (events
   * without a session share the key `''`), or of the key a function returns.
   * @default 'topic'
   */
  by?: 'topic' | 'session' | ((event: FilterEvent) => string);
  /**
   * Most buckets kept. Past it the least recently used bucket is dropped; its
   * key, when it comes back, starts with a full bucket again (so more keys
   * than this, cycling, are not fully limited).
   * @default 10000
   */
  maxKeys?: number;
  /**
   * Milliseconds, for tests: read once per call (and once at creation, to
   * check it). A reading earlier than the last refills nothing.
   * @default performance.now (monotonic)
   */
  clock?: () => number;
}

interface Bucket {
  tokens: number;
  /** The clock reading the tokens were counted at. */
  at: number;
}

const OPTIONS: readonly string[] = ['perSecond', 'burst', 'by', 'maxKeys', 'clock'];

/**
 * Slack on the one token an event needs: a refill that should reach exactly
 * 1 (events spaced exactly at the rate) but lands a rounding error short
 * still passes. The debt is carried, so it never adds up to an extra event.
 */
const SLACK = 1e-9;

const bySessionKey = (event: FilterEvent): string => event.sessionId ?? '';
const byTopicKey = (event: FilterEvent): string => event.topic;
const defaultClock = (): number => performance.now();

/**
 * Passes at most `burst` events at once and `perSecond` on average, per key
 * (a token bucket: each event takes a token, tokens refill continuously up to
 * `burst`). Events over the limit are filtered, not delayed.
 *
 * Each call spends a token when one is there, so where the filter sits
 * matters: in {@link allOf}, put it last, so only events the other filters
 * passed spend tokens (before them, it would also count events they then
 * refuse). And one `rateLimit(...)` shared by two handlers shares its
 * buckets: every delivery to either takes a token; create one per handler.
 *
 * ```ts
 * // At most 10 events a second per session, up to 20 at once.
 * rateLimit({ perSecond: 10, burst: 20, by: 'session' });
 * ```
 * @group Filters
 */
export function rateLimit(options: RateLimitOptions): EventFilter {
  checkFilterOptions('rateLimit', options, OPTIONS);
  const { perSecond, by = 'topic', maxKeys = 10_000 } = options;
  if (typeof perSecond !== 'number' || !(perSecond > 0)) {
    throw new RangeError(`rateLimit: perSecond must be a number > 0, got ${show(perSecond)}`);
  }
  if (perSecond === Infinity) throw new RangeError('rateLimit: perSecond must be finite, got Infinity');
  const burst = options.burst ?? Math.max(1, perSecond);
  if (typeof burst !== 'number' || !(burst >= 1) || burst === Infinity) {
    throw new RangeError(`rateLimit: burst must be a finite number >= 1 (an event takes a whole token), got ${show(burst)}`);
  }
  if (!Number.isInteger(maxKeys) || maxKeys < 1) {
    throw new RangeError(`rateLimit: maxKeys must be an integer >= 1, got ${show(maxKeys)}`);
  }
  const keyOf = by === 'topic' ? byTopicKey : by === 'session' ? bySessionKey : by;
  if (typeof keyOf !== 'function') {
    throw new TypeError(`rateLimit: by must be 'topic', 'session' or a function (event) => string, got ${show(by)}`);
  }
  const clock = options.clock ?? defaultClock;
  if (typeof clock !== 'function') throw new TypeError(`rateLimit: clock must be a function () => milliseconds, got ${show(clock)}`);
  let reading: unknown;
  try {
    reading = clock();
  } catch (err) {
    throw new TypeError(`rateLimit: clock threw when called (${err instanceof Error ? err.message : String(err)}); pass it bound (() => performance.now())`);
  }
  if (typeof reading !== 'number' || !Number.isFinite(reading)) {
    throw new TypeError(`rateLimit: clock must return a finite number of milliseconds, got ${show(reading)}`);
  }

  const perMs = perSecond / 1000;
  // Map order is recency order: a bucket used is moved to the end, so the
  // first key is the least recently used one.
  const buckets = new Map<string, Bucket>();
  // The last key's bucket is already the most recent: a run of one key skips the move.
  let lastKey: string | undefined;
  let last: Bucket | undefined;

  return (event) => {
    const key = keyOf(event);
    const now = clock();
    let bucket: Bucket | undefined;
    if (key === lastKey && last !== undefined) bucket = last;
    else {
      bucket = buckets.get(key);
      if (bucket === undefined) {
        if (buckets.size >= maxKeys) buckets.delete(buckets.keys().next().value as string);
        bucket = { tokens: burst, at: now };
      } else buckets.delete(key);
      buckets.set(key, bucket);
      lastKey = key;
      last = bucket;
    }
    const elapsed = now - bucket.at;
    if (elapsed > 0) {
      bucket.tokens = Math.min(burst, bucket.tokens + elapsed * perMs);
      bucket.at = now;
    } else if (elapsed < 0) {
      // The clock went back: nothing is refilled for it, and refilling goes on from this reading.
      bucket.at = now;
    }
    if (bucket.tokens < 1 - SLACK) return false;
    bucket.tokens -= 1;
    return true;
  };
}
