/**
 * Handler timeouts without any cost in the worker: one timer, only while
 * tasks run (or async inline handlers are pending), samples each busy slot's
 * (cursor, handler index); if the same handler call is still running
 * `handlerTimeoutMs` after it was first seen, the slot's task is aborted,
 * which makes Piscina terminate that worker (the only way to stop a
 * synchronous loop); the task that replaces it starts on the pool's spare
 * thread. The same timer fails async inline handlers whose promise stays
 * pending that long.
 */
import { HandlerTimeoutError, RAISED_BY_BUS } from '../errors.js';
import { SLOT_BUSY, SLOT_CURSOR, SLOT_HANDLER_INDEX, slotWord } from '../protocol/layout.js';
import { slotCount } from './shared_memory.js';
import type { EngineParts } from './parts.js';

export class Watchdog {
  readonly #p: EngineParts;
  /** Per slot: what the watchdog last saw running there, and since when. */
  readonly #watched: { cursor: number; handler: number; since: number }[] = [];
  /** Slots whose task was aborted for a timeout, with the (cursor, handler index) that ran past it. */
  readonly #timedOut = new Map<number, { cursor: number; handler: number }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(p: EngineParts) {
    this.#p = p;
    for (let s = 0; s < slotCount(p.options); s++) this.#watched.push({ cursor: 0, handler: -1, since: 0 });
  }

  /** Starts sampling (a task started); sampling stops by itself once nothing runs. */
  start(): void {
    const timeoutMs = this.#p.options.handlerTimeoutMs;
    if (timeoutMs === false || this.#timer !== undefined || !this.#p.lifecycle.dispatching) return;
    this.#timer = setInterval(() => this.#sample(timeoutMs), Math.max(5, Math.min(1000, Math.floor(timeoutMs / 4))));
    this.#keepAliveFor(this.#p.inline.awaiting);
  }

  /** An async inline handler is pending: sample, and keep the process alive until it settles or times out. */
  inlineAwaiting(): void {
    this.start();
    this.#keepAliveFor(this.#p.inline.awaiting);
  }

  /**
   * The timer keeps the process alive only while an async inline handler is
   * pending: its timeout is then the one thing that settles the delivery
   * (a caller awaiting execute() would otherwise see the process exit).
   */
  #keepAliveFor(awaiting: number): void {
    if (awaiting > 0) this.#timer?.ref();
    else this.#timer?.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  taskStarted(slot: number): void {
    this.#watched[slot].handler = -1;
  }

  /** What ran past the timeout when the slot's task was aborted for one (and forgets it); undefined if it was not. */
  takeTimedOut(slot: number): { cursor: number; handler: number } | undefined {
    const seen = this.#timedOut.get(slot);
    this.#timedOut.delete(slot);
    return seen;
  }

  #sample(timeoutMs: number): void {
    const p = this.#p;
    if (p.slots.active.size === 0 && p.inline.awaiting === 0) {
      this.stop(); // idle: no timer runs until the next task starts
      return;
    }
    const now = performance.now();
    const c = p.control;
    // Async inline handlers: their promise cannot be stopped, but the delivery fails on time.
    p.inline.expire(timeoutMs, (h) => {
      p.counters.handlerTimeouts++;
      const timeout = new HandlerTimeoutError(h.name, timeoutMs);
      RAISED_BY_BUS.add(timeout);
      return timeout;
    });
    this.#keepAliveFor(p.inline.awaiting);
    for (const slot of p.slots.active) {
      const seen = this.#watched[slot];
      const handler = Atomics.load(c, slotWord(slot, SLOT_BUSY)) === 1 ? Atomics.load(c, slotWord(slot, SLOT_HANDLER_INDEX)) : -1;
      const cursor = Atomics.load(c, slotWord(slot, SLOT_CURSOR));
      if (handler < 0 || handler !== seen.handler || cursor !== seen.cursor) {
        seen.handler = handler;
        seen.cursor = cursor;
        seen.since = now;
      } else if (now - seen.since >= timeoutMs && !this.#timedOut.has(slot)) {
        this.#timedOut.set(slot, { cursor, handler });
        p.slots.abort(slot, new HandlerTimeoutError(p.registrar.handlerName(handler), timeoutMs));
      }
    }
  }
}
