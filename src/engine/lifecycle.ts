/**
 * The bus's lifecycle, one state machine: every "may this happen now?" of the
 * engine is a question to it, so no module keeps a flag of its own.
 *
 *   new ──start()──► starting ──pool ready──► running ──stop()──► draining ──► terminating ──► stopped
 *    ▲                  │                                           (stop() from new or starting skips to draining)
 *    └──start failed────┘
 *
 * - accepting: publish/publishAsync/execute take events (new and starting
 *   buffer them until the pool runs).
 * - dispatching: workers may be given work (running, and draining while
 *   stop() waits for pending events).
 * - terminated: the pool is being destroyed or gone: a task that ends
 *   mid-batch was ended by us, so its events are abandoned, not failed, and a
 *   failed delivery is not retried any more.
 */
import { BusStoppedError } from '../errors.js';

export type LifecycleState = 'new' | 'starting' | 'running' | 'draining' | 'terminating' | 'stopped';

const NEXT: Readonly<Record<LifecycleState, readonly LifecycleState[]>> = {
  new: ['starting', 'draining'],
  starting: ['running', 'new', 'draining'],
  running: ['draining'],
  draining: ['terminating'],
  terminating: ['stopped'],
  stopped: [],
};

export class Lifecycle {
  #state: LifecycleState = 'new';

  get state(): LifecycleState {
    return this.#state;
  }

  /** The state as users see it in messages: draining and terminating are both "stopping". */
  get publicState(): 'new' | 'starting' | 'running' | 'stopping' | 'stopped' {
    const s = this.#state;
    return s === 'draining' || s === 'terminating' ? 'stopping' : s;
  }

  get accepting(): boolean {
    const s = this.#state;
    return s === 'new' || s === 'starting' || s === 'running';
  }

  get dispatching(): boolean {
    return this.#state === 'running' || this.#state === 'draining';
  }

  get running(): boolean {
    return this.#state === 'running';
  }

  get terminated(): boolean {
    return this.#state === 'terminating' || this.#state === 'stopped';
  }

  /** A worker handler registered now is checked at once (running) or once the pool runs (starting). */
  get poolStarting(): boolean {
    return this.#state === 'starting';
  }

  move(to: LifecycleState): void {
    if (!NEXT[this.#state].includes(to)) throw new Error(`ringbus: lifecycle cannot move from ${this.#state} to ${to}`);
    this.#state = to;
  }

  /** The error for a producer that found the bus no longer accepting. */
  stoppedError(): BusStoppedError {
    return new BusStoppedError(`the bus is ${this.publicState}`);
  }
}
