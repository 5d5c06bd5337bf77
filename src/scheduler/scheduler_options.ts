/**
 * The `scheduler` group of the bus's options (declared here like the
 * JetStream transport's; merged and checked with the rest in
 * resolve_options.ts, defaults in DEFAULT_OPTIONS).
 */

/** `scheduler`: delayed events (`publish(…, { delayMs })` or `{ at }`) until they are due. @group Options */
export interface SchedulerOptions {
  /**
   * Delayed events pending at most (not yet due). A delayed publish beyond
   * it gets the usual backpressure answer: `publish` returns false,
   * `publishAsync` waits for room (up to its `timeoutMs`).
   * @default 100000
   */
  capacity?: number;
  /**
   * A file that keeps pending delayed events across restarts (JSON Lines,
   * written and fsynced before `publishAsync` resolves; `publish` returns
   * before the write). A bus started later with the same path delivers them,
   * late ones at once; one bus owns a path at a time (`path.lock`).
   * @default undefined (memory only: pending events are dropped, counted as abandoned, at stop)
   */
  path?: string;
}
