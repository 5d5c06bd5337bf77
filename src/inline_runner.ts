/**
 * Inline (main-thread) handlers: their per-lane queues and the runner that
 * executes them in short slices between I/O.
 */
import { performance } from 'node:perf_hooks';
import { Fifo } from './fifo.js';
import type { Registration } from './router.js';
import { LANE_COUNT } from './protocol/layout.js';
import { ADMIT_DENY } from './protocol/breaker_words.js';
import { LanePicker } from './protocol/lane_picker.js';
import type { BusEvent } from './types.js';
import type { BusTracing } from './tracing/bus_tracing.js';

/** One event's inline stage, waiting in its lane. */
export interface InlineJob {
  readonly seq: number;
  readonly event: BusEvent;
  readonly handlers: readonly Registration[];
  /** Part of an event already under way (a retry, a later stage): drop-oldest never drops it. */
  readonly continuation?: boolean;
  /** One delivery detached from the event's pass (a retry, a released held delivery): see RF_DETACHED. */
  readonly detached?: boolean;
}

export interface InlineSink {
  /** Whether the handler may run now: ADMIT_RUN, ADMIT_TRIAL (a half-open permit taken) or ADMIT_DENY (its circuit is open). */
  admit(job: InlineJob, handler: Registration): number;
  /** The handler was not admitted: the sink holds or refuses that delivery. */
  denied(job: InlineJob, handler: Registration): void;
  /** `ns`: how long the attempt ran (0 when not timed). */
  failed(job: InlineJob, handler: Registration, error: unknown, ns: number, admitted: number): void;
  succeeded(job: InlineJob, handler: Registration, ns: number, admitted: number): void;
  /** An async handler is pending: its timeout must be watched. */
  awaiting(): void;
  /** Every handler of the job ran; `result` is the last handler's (a command's) result. */
  done(job: InlineJob, failures: number, result: unknown): void;
}

/** Main-thread time one turn of the runner may take before it yields to the event loop. */
const SLICE_MS = 4;
/** Events whose async inline handlers may be pending at once; beyond it the runner waits. */
const MAX_IN_FLIGHT = 1024;

/**
 * Runs inline handlers on the main thread in lane order, in slices that yield
 * to the event loop (setImmediate) so a burst of cheap glue cannot starve I/O.
 * An async handler is awaited before the next handler of the same event, but
 * not before other events: up to MAX_IN_FLIGHT events may be awaiting.
 */
export class InlineRunner {
  readonly #lanes = Array.from({ length: LANE_COUNT }, () => new Fifo<InlineJob>());
  readonly #picker = new LanePicker();
  readonly #sink: InlineSink;
  #enabled = false;
  #scheduled = false;
  #running = false;
  #size = 0;
  #inFlight = 0;
  /** Jobs waiting on an async handler: which handler, since when (for the handler timeout). */
  readonly #awaiting = new Map<InlineJob, { index: number; since: number; failures: number; done: boolean; admitted: number }>();

  readonly #timed: boolean;
  /** The bus's tracing now (undefined without a provider): an attempt of an event with a traceparent runs in its span. */
  readonly #tracing: () => BusTracing | undefined;

  /** `timed`: measure each call (metrics, or the slow-call rule of circuit breakers). */
  constructor(sink: InlineSink, timed: boolean, tracing: () => BusTracing | undefined = () => undefined) {
    this.#sink = sink;
    this.#timed = timed;
    this.#tracing = tracing;
  }

  get size(): number {
    return this.#size;
  }

  /** Jobs waiting on an async handler (the watchdog times them). */
  get awaiting(): number {
    return this.#awaiting.size;
  }

  /** Jobs queued before this are kept and run once enabled (the bus started). */
  enable(): void {
    this.#enabled = true;
    this.#schedule();
  }

  disable(): void {
    this.#enabled = false;
  }

  enqueue(lane: number, job: InlineJob): void {
    this.#lanes[lane].push(job);
    this.#size++;
    this.#schedule();
  }

  /** The oldest job of a lane that has not started and does not continue an event under way, for drop-oldest. */
  takeOldest(lane: number): InlineJob | undefined {
    const job = this.#lanes[lane].removeFirst((j) => !j.continuation);
    if (job) this.#size--;
    return job;
  }

  clear(): InlineJob[] {
    const jobs = this.#lanes.flatMap((l) => l.clear());
    this.#size = 0;
    return jobs;
  }

  readonly #hasWork = (lane: number): boolean => this.#lanes[lane].length > 0;

  #schedule(): void {
    if (!this.#enabled || this.#scheduled || this.#running || this.#size === 0 || this.#inFlight >= MAX_IN_FLIGHT) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#run();
    });
  }

  #run(): void {
    this.#running = true;
    const sliceEnd = performance.now() + SLICE_MS;
    try {
      while (this.#enabled && this.#inFlight < MAX_IN_FLIGHT) {
        const lane = this.#picker.pick(this.#hasWork);
        if (lane < 0) break;
        const job = this.#lanes[lane].shift()!;
        this.#size--;
        this.#runJob(job, 0, 0, undefined);
        if (performance.now() > sliceEnd) break;
      }
    } finally {
      this.#running = false;
      this.#schedule();
    }
  }

  /**
   * Runs a job's handlers from `from` on, in order. An async handler parks the
   * job until it settles (the next handler of the same event waits for it) while
   * the runner goes on with other events.
   */
  #runJob(job: InlineJob, from: number, failures: number, result: unknown): void {
    const handlers = job.handlers;
    for (let i = from; i < handlers.length; i++) {
      const admitted = this.#sink.admit(job, handlers[i]);
      if (admitted === ADMIT_DENY) {
        failures++;
        result = undefined;
        this.#sink.denied(job, handlers[i]);
        continue;
      }
      const t0 = this.#timed ? performance.now() : 0;
      let r: unknown;
      try {
        const t = job.event.headers?.traceparent === undefined ? undefined : this.#tracing();
        r = t === undefined ? handlers[i].fn!(job.event) : t.consume(job.event, handlers[i].name, () => handlers[i].fn!(job.event));
      } catch (err) {
        failures++;
        result = undefined;
        this.#sink.failed(job, handlers[i], err, this.#since(t0), admitted);
        continue;
      }
      if (r !== null && typeof r === 'object' && typeof (r as PromiseLike<unknown>).then === 'function') {
        this.#inFlight++;
        const waiting = { index: i, since: performance.now(), failures, done: false, admitted };
        this.#awaiting.set(job, waiting);
        this.#sink.awaiting();
        (r as PromiseLike<unknown>).then(
          (value) => {
            if (waiting.done) return; // timed out already: its result comes too late
            waiting.done = true;
            this.#awaiting.delete(job);
            this.#sink.succeeded(job, handlers[i], this.#since(t0), admitted);
            this.#resume(job, i + 1, failures, value);
          },
          (err: unknown) => {
            if (waiting.done) return;
            waiting.done = true;
            this.#awaiting.delete(job);
            this.#sink.failed(job, handlers[i], err, this.#since(t0), admitted);
            this.#resume(job, i + 1, failures + 1, undefined);
          },
        );
        return;
      }
      this.#sink.succeeded(job, handlers[i], this.#since(t0), admitted);
      result = r;
    }
    this.#sink.done(job, failures, result);
  }

  /**
   * Fails every async handler that has been pending for `timeoutMs` or more
   * (the handler timeout, driven by the bus's watchdog timer). Its promise
   * cannot be cancelled; what it settles to later is ignored.
   */
  expire(timeoutMs: number, error: (handler: Registration) => unknown): void {
    const now = performance.now();
    for (const [job, waiting] of this.#awaiting) {
      if (waiting.done || now - waiting.since < timeoutMs) continue;
      waiting.done = true;
      this.#awaiting.delete(job);
      const handler = job.handlers[waiting.index];
      this.#sink.failed(job, handler, error(handler), (now - waiting.since) * 1e6, waiting.admitted);
      this.#resume(job, waiting.index + 1, waiting.failures + 1, undefined);
    }
  }

  #since(t0: number): number {
    return this.#timed ? (performance.now() - t0) * 1e6 : 0;
  }

  #resume(job: InlineJob, from: number, failures: number, result: unknown): void {
    this.#inFlight--;
    this.#runJob(job, from, failures, result);
    this.#schedule();
  }
}
