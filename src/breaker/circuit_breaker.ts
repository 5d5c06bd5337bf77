/**
 * One circuit breaker's state machine, for one handler of one topic.
 *
 *   CLOSED ──rule opens (sliding window)──► OPEN ──recoveryTimeoutMs──► HALF_OPEN
 *     ▲                                      ▲                              │
 *     └──────── successThreshold trial successes ─────────┐  a failure ───┘
 *                                                          └── (back to OPEN)
 *
 * It counts outcomes and decides; it runs no timer and touches no shared
 * memory (BreakerBoard does both). OPEN → HALF_OPEN happens when the state is
 * read at or after the recovery time (the board reads it on time).
 */
import { BREAKER_CLOSED, BREAKER_HALF_OPEN, BREAKER_OPEN } from '../protocol/breaker_words.js';
import { FailureCountRule, FailureRateRule, type OpeningRule } from './opening_rule.js';
import { SlidingWindow } from './sliding_window.js';

/** A circuit breaker's state: closed (deliveries run), open (held, or refused with `hold: false`), half_open (trials run). @group Bus */
export type CircuitState = 'closed' | 'open' | 'half_open';

/** Numeric codes, as in shared memory and the `circuit_breaker_state` gauge. */
export const CIRCUIT_CODE: Readonly<Record<CircuitState, number>> = Object.freeze({
  closed: BREAKER_CLOSED, open: BREAKER_OPEN, half_open: BREAKER_HALF_OPEN,
});
export const CIRCUIT_STATES: readonly CircuitState[] = ['closed', 'open', 'half_open'];

/** The resolved `circuitBreaker` options (see options.ts for each one's meaning). */
export interface BreakerSettings {
  failureRateThreshold: number;
  minimumCalls: number;
  windowMs: number;
  recoveryTimeoutMs: number;
  halfOpenMaxCalls: number;
  successThreshold: number;
  slowCallMs?: number | undefined;
  slowCallRateThreshold: number;
  hold: boolean;
  failureThreshold?: number | undefined;
}

export interface Clock {
  now(): number;
}

/** The handler's own last failure, kept for what a held delivery says if the bus stops before it runs. */
export interface LastFailure {
  message: string;
  name: string | undefined;
  code: string;
  /** The failure as an Error (built on first call). */
  error?: () => Error;
}

export class CircuitBreaker {
  readonly topic: string;
  readonly name: string;
  readonly #o: BreakerSettings;
  readonly #clock: Clock;
  readonly #onTransition: (from: CircuitState, to: CircuitState) => void;
  readonly #window: SlidingWindow;
  readonly #rule: OpeningRule;
  #state: CircuitState = 'closed';
  #openedAt = 0;
  #trialSuccesses = 0;
  lastFailure: LastFailure | undefined;

  constructor(topic: string, name: string, options: BreakerSettings, clock: Clock, onTransition: (from: CircuitState, to: CircuitState) => void) {
    this.topic = topic;
    this.name = name;
    this.#o = options;
    this.#clock = clock;
    this.#onTransition = onTransition;
    this.#window = new SlidingWindow(options.windowMs);
    this.#rule = options.failureThreshold !== undefined
      ? new FailureCountRule(options.failureThreshold)
      : new FailureRateRule(options.minimumCalls, options.failureRateThreshold, options.slowCallMs === undefined ? Infinity : options.slowCallRateThreshold);
  }

  get state(): CircuitState {
    if (this.#state === 'open' && this.#clock.now() - this.#openedAt >= this.#o.recoveryTimeoutMs) this.#move('half_open');
    return this.#state;
  }

  /** When an open circuit will let trial deliveries through (clock time), or undefined. */
  get reopensAt(): number | undefined {
    return this.#state === 'open' ? this.#openedAt + this.#o.recoveryTimeoutMs : undefined;
  }

  /** Outcomes of calls that ran while closed (successes counted by workers, summed by the board). */
  recordSuccesses(calls: number, slow: number): void {
    if (calls === 0 && slow === 0) return;
    if (this.state !== 'closed') return;
    this.#window.add(this.#clock.now(), calls, 0, slow);
    if (slow > 0) this.#judge();
  }

  /** A failed attempt of this handler (any, trial or not). */
  recordFailure(failure: LastFailure): void {
    this.lastFailure = failure;
    const state = this.state;
    if (state === 'half_open') this.#open();
    else if (state === 'closed') {
      this.#window.add(this.#clock.now(), 1, 1, 0);
      this.#judge();
    }
  }

  /** A half-open trial succeeded; true when that closed the circuit. */
  trialSucceeded(): boolean {
    if (this.state !== 'half_open') return false;
    if (++this.#trialSuccesses < this.#o.successThreshold) return false;
    this.#move('closed');
    return true;
  }

  /** An operator closes it now (the dependency is back): its window starts empty. False when it was closed already. */
  reset(): boolean {
    if (this.state === 'closed') return false;
    this.#move('closed');
    return true;
  }

  /** Time passed: outcomes older than the window no longer count. */
  expire(): void {
    this.#window.expire(this.#clock.now());
  }

  #judge(): void {
    this.#window.expire(this.#clock.now());
    if (this.#rule.opens(this.#window)) this.#open();
  }

  #open(): void {
    this.#openedAt = this.#clock.now();
    this.#move('open');
  }

  #move(to: CircuitState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    if (to === 'closed') this.#window.reset();
    if (to === 'half_open') this.#trialSuccesses = 0;
    this.#onTransition(from, to);
  }
}
