/**
 * When a closed circuit opens: strategies behind one small interface, judged
 * on the breaker's sliding window after each counted outcome.
 */
import type { SlidingWindow } from './sliding_window.js';

export interface OpeningRule {
  /** Whether the outcomes in the window open the circuit. */
  opens(window: SlidingWindow): boolean;
}

/**
 * Failure rate (resilience4j's rule): at least `minimumCalls` attempts in the
 * window, and the failed fraction at `failureRateThreshold` or above — or,
 * with a slow-call rule, the slow fraction at `slowCallRateThreshold`.
 */
export class FailureRateRule implements OpeningRule {
  readonly #minimumCalls: number;
  readonly #failureRate: number;
  readonly #slowRate: number;

  constructor(minimumCalls: number, failureRateThreshold: number, slowCallRateThreshold: number) {
    this.#minimumCalls = minimumCalls;
    this.#failureRate = failureRateThreshold;
    this.#slowRate = slowCallRateThreshold;
  }

  opens(w: SlidingWindow): boolean {
    if (w.calls < this.#minimumCalls || w.calls === 0) return false;
    return w.failures / w.calls >= this.#failureRate || w.slow / w.calls >= this.#slowRate;
  }
}

/** The deprecated 0.1 rule: `failureThreshold` failures within the window, whatever the rate. */
export class FailureCountRule implements OpeningRule {
  readonly #threshold: number;

  constructor(threshold: number) {
    this.#threshold = threshold;
  }

  opens(w: SlidingWindow): boolean {
    return w.failures >= this.#threshold;
  }
}
