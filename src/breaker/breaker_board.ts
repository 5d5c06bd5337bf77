/**
 * Every handler's circuit breaker by name, their states mirrored into shared
 * memory, and the timers that let trials through.
 */
import { BREAKER_WORDS_BYTES } from '../protocol/breaker_words.js';
import { MAX_BREAKERS } from '../protocol/limits.js';
import { CIRCUIT_CODE, CircuitBreaker, type CircuitBreakerOptions, type CircuitState, type Clock } from './circuit_breaker.js';

const realClock: Clock = { now: () => performance.now() };

/**
 * Every handler's circuit breaker, by handler name, plus their states in
 * shared memory (one Int32 per breaker) so a worker can refuse a delivery it
 * already claimed the moment a circuit opens. Only main changes states; it
 * also runs one timer per open circuit to let trials through on time.
 */
export class BreakerBoard {
  readonly sab = new SharedArrayBuffer(BREAKER_WORDS_BYTES);
  readonly #states = new Int32Array(this.sab);
  readonly #options: CircuitBreakerOptions | false;
  readonly #clock: Clock;
  readonly #onTransition: (handler: string, from: CircuitState, to: CircuitState) => void;
  readonly #byName = new Map<string, { breaker: CircuitBreaker; index: number }>();
  readonly #timers = new Map<string, NodeJS.Timeout>();

  constructor(options: CircuitBreakerOptions | false, onTransition: (handler: string, from: CircuitState, to: CircuitState) => void,
    clock: Clock = realClock) {
    this.#options = options;
    this.#onTransition = onTransition;
    this.#clock = clock;
  }

  get enabled(): boolean {
    return this.#options !== false;
  }

  /** The shared index of a handler's breaker (created on first use); -1 when breakers are off. */
  index(name: string): number {
    if (this.#options === false) return -1;
    let entry = this.#byName.get(name);
    if (entry === undefined) {
      if (this.#byName.size >= MAX_BREAKERS) throw new RangeError(`more than ${MAX_BREAKERS} handler names with circuit breakers`);
      const index = this.#byName.size;
      const breaker = new CircuitBreaker(name, this.#options, this.#clock, (from, to) => this.#moved(name, index, from, to));
      entry = { breaker, index };
      this.#byName.set(name, entry);
    }
    return entry.index;
  }

  /** 'closed' for a handler that has no breaker (yet). */
  state(name: string): CircuitState {
    return this.#byName.get(name)?.breaker.state ?? 'closed';
  }

  allows(name: string): boolean {
    return this.#byName.get(name)?.breaker.allows() ?? true;
  }

  onSuccess(name: string): void {
    this.#byName.get(name)?.breaker.onSuccess();
  }

  onFailure(name: string): void {
    this.#byName.get(name)?.breaker.onFailure();
  }

  /** Every breaker's state code (0 closed, 1 open, 2 half-open). */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, { breaker }] of this.#byName) out[name] = CIRCUIT_CODE[breaker.state];
    return out;
  }

  stop(): void {
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
  }

  #moved(name: string, index: number, from: CircuitState, to: CircuitState): void {
    Atomics.store(this.#states, index, CIRCUIT_CODE[to]);
    const pending = this.#timers.get(name);
    if (pending) clearTimeout(pending);
    this.#timers.delete(name);
    if (to === 'open') this.#wakeWhenDue(name);
    this.#onTransition(name, from, to);
  }

  /** Reads an open breaker's state when its recovery time is due, which moves it to half-open. */
  #wakeWhenDue(name: string): void {
    const breaker = this.#byName.get(name)!.breaker;
    const dueIn = (breaker.reopensAt ?? 0) - this.#clock.now();
    const timer = setTimeout(() => {
      this.#timers.delete(name);
      // Timers run on a coarser clock and may fire a fraction of a millisecond early: look again then.
      if (breaker.state === 'open') this.#wakeWhenDue(name);
    }, Math.max(1, Math.ceil(dueIn)));
    timer.unref();
    this.#timers.set(name, timer);
  }
}
