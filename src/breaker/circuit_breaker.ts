/**
 * One handler's circuit breaker: its states and the rule that moves between
 * them.
 */
import { BREAKER_CLOSED, BREAKER_HALF_OPEN, BREAKER_OPEN } from '../protocol/breaker_words.js';

/** A circuit breaker's state: closed (deliveries run), open (refused), half_open (trials run). */
export type CircuitState = 'closed' | 'open' | 'half_open';

/** Numeric codes, as in shared memory and the `circuit_breaker_state` gauge. */
export const CIRCUIT_CODE: Readonly<Record<CircuitState, number>> = Object.freeze({
  closed: BREAKER_CLOSED, open: BREAKER_OPEN, half_open: BREAKER_HALF_OPEN,
});
export const CIRCUIT_STATES: readonly CircuitState[] = ['closed', 'open', 'half_open'];

export interface CircuitBreakerOptions {
  /** Failures within `windowMs` that open the circuit. */
  failureThreshold: number;
  windowMs: number;
  /** How long the circuit stays open before letting trial deliveries through. */
  recoveryTimeoutMs: number;
  /** Successes in half-open that close the circuit again. */
  successThreshold: number;
}

export interface Clock {
  now(): number;
}

/**
 * One handler's breaker. CLOSED → OPEN after `failureThreshold` failures in
 * a sliding `windowMs`; OPEN → HALF_OPEN once `recoveryTimeoutMs` passed
 * (checked whenever the state is read, and by the owner's timer);
 * HALF_OPEN → CLOSED after `successThreshold` successes, → OPEN on any failure.
 * It keeps only the last `failureThreshold` failure times: bounded however
 * long it runs.
 */
export class CircuitBreaker {
  readonly name: string;
  readonly #o: CircuitBreakerOptions;
  readonly #clock: Clock;
  readonly #onTransition: (from: CircuitState, to: CircuitState) => void;
  readonly #failures: Float64Array;
  #failureCount = 0;
  #state: CircuitState = 'closed';
  #openedAt = 0;
  #halfOpenSuccesses = 0;

  constructor(name: string, options: CircuitBreakerOptions, clock: Clock, onTransition: (from: CircuitState, to: CircuitState) => void) {
    this.name = name;
    this.#o = options;
    this.#clock = clock;
    this.#onTransition = onTransition;
    this.#failures = new Float64Array(options.failureThreshold);
  }

  get state(): CircuitState {
    if (this.#state === 'open' && this.#clock.now() - this.#openedAt >= this.#o.recoveryTimeoutMs) this.#move('half_open');
    return this.#state;
  }

  /** When an open circuit will let trial deliveries through (clock time), or undefined. */
  get reopensAt(): number | undefined {
    return this.#state === 'open' ? this.#openedAt + this.#o.recoveryTimeoutMs : undefined;
  }

  /** Whether a delivery may run now. */
  allows(): boolean {
    return this.state !== 'open';
  }

  onSuccess(): void {
    if (this.state === 'half_open' && ++this.#halfOpenSuccesses >= this.#o.successThreshold) this.#move('closed');
  }

  onFailure(): void {
    const state = this.state;
    const now = this.#clock.now();
    if (state === 'half_open') {
      this.#open(now);
      return;
    }
    if (state === 'open') return;
    const n = this.#o.failureThreshold;
    this.#failures[this.#failureCount % n] = now;
    this.#failureCount++;
    // The oldest of the last n failures is the one n slots back in the ring.
    if (this.#failureCount >= n && now - this.#failures[this.#failureCount % n] <= this.#o.windowMs) this.#open(now);
  }

  #open(now: number): void {
    this.#openedAt = now;
    this.#move('open');
  }

  #move(to: CircuitState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    if (to === 'closed') this.#failureCount = 0;
    if (to === 'half_open') this.#halfOpenSuccesses = 0;
    this.#onTransition(from, to);
  }
}
