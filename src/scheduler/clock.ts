/**
 * The clock the scheduler runs on: wall-clock time and one-shot timers.
 * Tests pass a fake one.
 */

export interface SchedulerClock {
  /** Epoch ms. */
  now(): number;
  /** Calls `fn` once, about `ms` from now; it may fire early or late (the scheduler checks `now()` and re-arms). */
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

/**
 * The longest delay a Node timer takes: beyond it Node fires after 1 ms (with
 * a warning). A longer wait is armed in steps of at most this; each early
 * firing re-arms.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Date.now(), not performance.timeOrigin + performance.now(): `at` is a wall
 * clock time, so "never before dueAt" has to be judged by the wall clock. A
 * monotonic clock drifts from it (it stops while the machine sleeps) and
 * would then deliver early. A wall clock stepped back only delivers late.
 */
export const systemClock: SchedulerClock = {
  now: () => Date.now(),
  // Unref'd: a delayed event alone does not keep the process alive (a durable one waits in its file).
  setTimer: (fn, ms) => setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS)).unref(),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
