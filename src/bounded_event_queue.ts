/**
 * The capacity bound of accepted, unsettled events, its water marks, and the
 * producers waiting for room.
 */
import type { QueueOptions } from './options.js';

interface RoomWaiter {
  resolve: (granted: boolean) => void;
  deadline: number;
}

/**
 * The capacity bound and its water marks. It counts events, not bytes: every
 * accepted event is unsettled until it is processed, dead-lettered, dropped or
 * abandoned, wherever it is (a lane, a worker, a retry timer). Workers settle
 * events without telling main one by one, so their share is read from shared
 * counters through `workerSettled`.
 *
 * It also queues producers that wait for room (`publishAsync`, `execute`) and,
 * for `adaptive-rate-limit`, paces them through one timer whatever their number.
 */
export class BoundedEventQueue {
  readonly capacity: number;
  readonly #high: number;
  readonly #low: number;
  readonly #maxDelayMs: number;
  readonly #workerSettled: () => number;
  #accepted = 0;
  #settled = 0;
  /**
   * Last value read from the workers' shared counters. It only grows, so a
   * size computed from it is an upper bound: the hot path reads shared memory
   * only when that bound reaches a threshold.
   */
  #workerSettledSeen = 0;
  /** Room granted to a released waiter that has not published yet. */
  #reserved = 0;
  #active = false;
  readonly #roomWaiters: RoomWaiter[] = [];
  #roomTimer: NodeJS.Timeout | undefined;
  readonly #paced: (() => void)[] = [];
  #paceTimer: NodeJS.Timeout | undefined;

  constructor(options: Required<QueueOptions>, workerSettled: () => number) {
    this.capacity = options.capacity;
    this.#high = Math.max(1, Math.ceil(options.highWaterMark * options.capacity));
    this.#low = Math.floor(options.lowWaterMark * options.capacity);
    this.#maxDelayMs = options.maxDelayMs;
    this.#workerSettled = workerSettled;
  }

  /** Unsettled events. */
  get size(): number {
    this.#workerSettledSeen = this.#workerSettled();
    return this.#accepted - this.#settled - this.#workerSettledSeen;
  }

  #sizeAtMost(): number {
    return this.#accepted - this.#settled - this.#workerSettledSeen;
  }

  get backpressureActive(): boolean {
    return this.#active;
  }

  /** Room for one more event, not counting room promised to waiting producers. */
  hasRoom(): boolean {
    return this.#sizeAtMost() + this.#reserved < this.capacity || this.size + this.#reserved < this.capacity;
  }

  /**
   * Counts an accepted event; `reserved` when it uses room granted by
   * `waitForRoom`. True when this turned backpressure on: the caller tells its
   * listeners once the event is fully written, never in the middle of it.
   */
  accept(reserved = false): boolean {
    if (reserved) this.#reserved--;
    this.#accepted++;
    if (!this.#active && this.#sizeAtMost() >= this.#high && this.size >= this.#high) {
      this.#active = true;
      return true;
    }
    return false;
  }

  settle(count = 1): void {
    this.#settled += count;
  }

  /** Re-evaluates waiting producers and the low water mark after events settled; true when backpressure turned off. */
  observe(): boolean {
    if (this.#roomWaiters.length > 0) this.#grantRoom();
    if (this.#active && this.size <= this.#low) {
      this.#active = false;
      return true;
    }
    return false;
  }

  /**
   * Resolves true once there is room reserved for the caller (it must then
   * `accept(true)` or `release()`), false if `timeoutMs` passes first.
   */
  waitForRoom(timeoutMs: number): Promise<boolean> {
    if (this.#roomWaiters.length === 0 && this.hasRoom()) {
      this.#reserved++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      this.#roomWaiters.push({ resolve, deadline: performance.now() + timeoutMs });
      this.#armRoomTimer();
    });
  }

  /** Gives back room reserved by `waitForRoom` that was not used. */
  release(): void {
    this.#reserved--;
    this.#grantRoom();
  }

  /** Producers waiting for room. */
  get waiting(): number {
    return this.#roomWaiters.length + this.#paced.length;
  }

  /**
   * `adaptive-rate-limit`: the delay for the next producer, growing with the
   * square of the fill past the low water mark, up to `maxDelayMs`.
   */
  delayMs(): number {
    const size = this.size;
    if (size <= this.#low) return 0;
    const x = Math.min(1, (size - this.#low) / Math.max(1, this.capacity - this.#low));
    return this.#maxDelayMs * x * x;
  }

  /** Resolves after the adaptive delay; producers queue behind one timer, in order. */
  pace(): Promise<void> | undefined {
    if (this.#paced.length === 0 && this.delayMs() === 0) return undefined;
    return new Promise((resolve) => {
      this.#paced.push(resolve);
      if (this.#paceTimer === undefined) this.#schedulePace();
    });
  }

  #schedulePace(): void {
    this.#paceTimer = setTimeout(() => {
      this.#paceTimer = undefined;
      this.#paced.shift()?.();
      // Once the queue has emptied below the low water mark, let everyone waiting go at once.
      while (this.#paced.length > 0 && this.delayMs() === 0) this.#paced.shift()!();
      if (this.#paced.length > 0) this.#schedulePace();
    }, this.delayMs());
  }

  /** Fails every waiting producer (the bus is stopping). */
  rejectWaiters(): void {
    for (const w of this.#roomWaiters.splice(0)) w.resolve(false);
    for (const resolve of this.#paced.splice(0)) resolve();
    if (this.#roomTimer) clearTimeout(this.#roomTimer);
    if (this.#paceTimer) clearTimeout(this.#paceTimer);
    this.#roomTimer = this.#paceTimer = undefined;
  }

  #grantRoom(): void {
    while (this.#roomWaiters.length > 0 && this.hasRoom()) {
      this.#reserved++;
      this.#roomWaiters.shift()!.resolve(true);
    }
    if (this.#roomWaiters.length === 0 && this.#roomTimer) {
      clearTimeout(this.#roomTimer);
      this.#roomTimer = undefined;
    }
  }

  #armRoomTimer(): void {
    if (this.#roomTimer !== undefined) return;
    let next = Infinity;
    for (const w of this.#roomWaiters) next = Math.min(next, w.deadline);
    if (next === Infinity) return;
    this.#roomTimer = setTimeout(() => {
      this.#roomTimer = undefined;
      const now = performance.now();
      for (let i = this.#roomWaiters.length - 1; i >= 0; i--) {
        const w = this.#roomWaiters[i];
        if (w.deadline <= now) {
          this.#roomWaiters.splice(i, 1);
          w.resolve(false);
        }
      }
      this.#armRoomTimer();
    }, Math.max(0, Math.min(next - performance.now(), 2 ** 31 - 1)));
  }
}
