import { performance } from 'node:perf_hooks';
import { Fifo } from './fifo.js';
import type { Registration } from './router.js';
import { LANE_COUNT } from './shared/layout.js';
import { LanePicker } from './shared/lane_picker.js';
import type { BusEvent } from './types.js';

/** One event's inline stage, waiting in its lane. */
export interface InlineJob {
  readonly seq: number;
  readonly event: BusEvent;
  readonly handlers: readonly Registration[];
}

export interface InlineSink {
  failed(job: InlineJob, handler: Registration, error: unknown): void;
  /** Every handler of the job ran; `result` is the last handler's (a command's) result. */
  done(job: InlineJob, failures: number, succeeded: number, result: unknown): void;
}

/** Main-thread time one turn of the runner may take before it yields to the event loop. */
const SLICE_MS = 4;

/**
 * Runs inline handlers on the main thread in lane order, in slices that yield
 * to the event loop (setImmediate) so a burst of cheap glue cannot starve I/O.
 * An async handler is awaited before the next handler of the same event.
 */
export class InlineRunner {
  readonly #lanes = Array.from({ length: LANE_COUNT }, () => new Fifo<InlineJob>());
  readonly #picker = new LanePicker();
  readonly #sink: InlineSink;
  #enabled = false;
  #scheduled = false;
  #running = false;
  #size = 0;

  constructor(sink: InlineSink) {
    this.#sink = sink;
  }

  get size(): number {
    return this.#size;
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

  /** The oldest job of a lane that has not started, for drop-oldest. */
  takeOldest(lane: number): InlineJob | undefined {
    const job = this.#lanes[lane].shift();
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
    if (!this.#enabled || this.#scheduled || this.#running || this.#size === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#run();
    });
  }

  async #run(): Promise<void> {
    this.#running = true;
    const sliceEnd = performance.now() + SLICE_MS;
    try {
      while (this.#enabled) {
        const lane = this.#picker.pick(this.#hasWork);
        if (lane < 0) break;
        const job = this.#lanes[lane].shift()!;
        this.#size--;
        let failures = 0;
        let result: unknown;
        for (const handler of job.handlers) {
          try {
            result = handler.fn!(job.event);
            if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
              result = await result;
            }
          } catch (err) {
            failures++;
            result = undefined;
            this.#sink.failed(job, handler, err);
          }
        }
        this.#sink.done(job, failures, job.handlers.length - failures, result);
        if (performance.now() > sliceEnd) break;
      }
    } finally {
      this.#running = false;
      this.#schedule();
    }
  }
}
