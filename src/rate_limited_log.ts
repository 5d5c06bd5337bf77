/**
 * A log that says one line per interval for a storm of similar happenings,
 * and counts the rest.
 */
import type { Logger } from './logger.js';

/**
 * Logs at most one line per `intervalMs` for a storm of similar happenings
 * (dead letters), and says in the next line how many it kept quiet about.
 */
export class RateLimitedLog {
  readonly #log: Logger;
  readonly #intervalMs: number;
  #lastAt = -Infinity;
  #suppressed = 0;

  constructor(log: Logger, intervalMs: number) {
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  /** Says how many were kept quiet since the last line, if any (at stop: the end of a storm is reported too). */
  flush(msg: string): void {
    if (this.#suppressed === 0) return;
    this.#log.warn({ suppressed: this.#suppressed }, `${msg}: ${this.#suppressed} more since the last report`);
    this.#suppressed = 0;
  }

  warn(fields: Record<string, unknown>, msg: string): void {
    const now = performance.now();
    if (now - this.#lastAt < this.#intervalMs) {
      this.#suppressed++;
      return;
    }
    this.#lastAt = now;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    this.#log.warn(suppressed > 0 ? { ...fields, suppressed } : fields, suppressed > 0 ? `${msg} (and ${suppressed} more since the last report)` : msg);
  }
}
