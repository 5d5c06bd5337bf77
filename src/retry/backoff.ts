/** How long to wait before a retry. */
export interface Backoff {
  /** Delay before retry number `retry` (1 for the first retry). */
  delayMs(retry: number): number;
}

export interface ExponentialBackoffOptions {
  initialDelayMs: number;
  maxDelayMs: number;
  multiplier: number;
  /** Full jitter: a uniform delay in [0, computed]. Spreads a failure storm's retries out. */
  jitter: boolean;
}

/** `min(maxDelay, initial × multiplier^(retry-1))`, with optional full jitter. */
export class ExponentialBackoff implements Backoff {
  readonly #o: ExponentialBackoffOptions;
  readonly #random: () => number;

  constructor(options: ExponentialBackoffOptions, random: () => number = Math.random) {
    this.#o = options;
    this.#random = random;
  }

  delayMs(retry: number): number {
    const { initialDelayMs, maxDelayMs, multiplier, jitter } = this.#o;
    const capped = Math.min(maxDelayMs, initialDelayMs * multiplier ** Math.max(0, retry - 1));
    return jitter ? this.#random() * capped : capped;
  }
}
