/**
 * Callers waiting for room in the scheduler (publishAsync with a delay):
 * first come, first woken, each with its own timeout on the scheduler's
 * clock. A waiter that timed out stays in the line, dead, until it reaches
 * the front, or until the dead outnumber the living: then the line is
 * rebuilt (amortized O(1), and a long full spell of timeouts does not grow it).
 */
import { Fifo } from '../fifo.js';
import type { SchedulerClock } from './clock.js';

interface Waiter {
  resolve: (room: boolean) => void;
  timer: unknown;
  done: boolean;
}

export class RoomWaiters {
  readonly #clock: SchedulerClock;
  readonly #line = new Fifo<Waiter>();
  #live = 0;

  constructor(clock: SchedulerClock) {
    this.#clock = clock;
  }

  /** Waiters not yet woken nor timed out. */
  get length(): number {
    return this.#live;
  }

  /** Resolves true when woken, false after `timeoutMs` (Infinity: no timeout) or when all are dropped. */
  wait(timeoutMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const w: Waiter = { resolve, timer: undefined, done: false };
      if (timeoutMs !== Infinity) {
        w.timer = this.#clock.setTimer(() => {
          this.#end(w, false);
          if (this.#line.length > 1024 && this.#line.length > 2 * this.#live) {
            for (const kept of this.#line.clear()) if (!kept.done) this.#line.push(kept);
          }
        }, timeoutMs);
      }
      this.#line.push(w);
      this.#live++;
    });
  }

  /** Wakes the first `n` waiters (true). */
  wake(n: number): void {
    while (n > 0 && this.#live > 0) {
      const w = this.#line.shift()!;
      if (w.done) continue;
      this.#end(w, true);
      n--;
    }
  }

  /** Every waiter resolves false (the scheduler stops). */
  dropAll(): void {
    for (const w of this.#line.clear()) if (!w.done) this.#end(w, false);
  }

  #end(w: Waiter, room: boolean): void {
    if (w.done) return;
    w.done = true;
    this.#live--;
    if (w.timer !== undefined) this.#clock.clearTimer(w.timer);
    w.resolve(room);
  }
}
