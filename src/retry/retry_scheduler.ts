/** The clock the scheduler runs on; tests pass a fake one. */
export interface SchedulerClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: SchedulerClock = {
  now: () => performance.now(),
  // Not unref'd: a waiting retry is pending work, and must keep the process alive until it runs.
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Items due at a time, in a binary min-heap, driven by one timer for the
 * earliest: a failure storm schedules thousands of retries without thousands
 * of timers. Ties run in scheduling order.
 */
export class RetryScheduler<T> {
  readonly #due: number[] = [];
  readonly #order: number[] = [];
  readonly #items: T[] = [];
  readonly #clock: SchedulerClock;
  readonly #run: (item: T) => void;
  #timer: unknown;
  #timerAt = Infinity;
  #seq = 0;

  constructor(run: (item: T) => void, clock: SchedulerClock = realClock) {
    this.#run = run;
    this.#clock = clock;
  }

  get size(): number {
    return this.#items.length;
  }

  schedule(delayMs: number, item: T): void {
    this.#push(this.#clock.now() + delayMs, item);
    this.#arm();
  }

  /** Removes everything still waiting (the bus is stopping). */
  clear(): T[] {
    const items = this.#items.splice(0);
    this.#due.length = 0;
    this.#order.length = 0;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    return items;
  }

  #arm(): void {
    const next = this.#due.length > 0 ? this.#due[0] : Infinity;
    if (next >= this.#timerAt) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timerAt = next;
    this.#timer = this.#clock.setTimeout(() => this.#fire(), Math.max(1, Math.ceil(next - this.#clock.now())));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#clock.now();
    // Node's timers may fire a fraction of a millisecond early: what is not due yet waits for the next turn.
    while (this.#due.length > 0 && this.#due[0] <= now) this.#run(this.#pop());
    this.#arm();
  }

  #less(a: number, b: number): boolean {
    return this.#due[a] < this.#due[b] || (this.#due[a] === this.#due[b] && this.#order[a] < this.#order[b]);
  }

  #swap(a: number, b: number): void {
    [this.#due[a], this.#due[b]] = [this.#due[b], this.#due[a]];
    [this.#order[a], this.#order[b]] = [this.#order[b], this.#order[a]];
    [this.#items[a], this.#items[b]] = [this.#items[b], this.#items[a]];
  }

  #push(due: number, item: T): void {
    this.#due.push(due);
    this.#order.push(this.#seq++);
    this.#items.push(item);
    for (let i = this.#due.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.#less(i, parent)) break;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #pop(): T {
    const top = this.#items[0];
    const last = this.#due.length - 1;
    this.#swap(0, last);
    this.#due.pop();
    this.#order.pop();
    this.#items.pop();
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.#due.length && this.#less(l, m)) m = l;
      if (r < this.#due.length && this.#less(r, m)) m = r;
      if (m === i) break;
      this.#swap(i, m);
      i = m;
    }
    return top;
  }
}
