import { LatencyAccumulator } from '../src/metrics/latency_accumulator.js';
import { writeMailbox, type WorkerMetricsReport } from '../src/shared/metrics_mailbox.js';

/** How stale a worker's published metrics may get while it is busy. */
const PUBLISH_EVERY_MS = 50;

/**
 * What one drain task measures: per-handler processing time and successes,
 * per-topic end-to-end time. Recording is a typed-array increment; the
 * numbers reach main through the slot's mailbox at most every 50 ms, when
 * main asks (drain), and when the task ends.
 */
export class MetricsRecorder {
  readonly #mailbox: SharedArrayBuffer;
  readonly #processing: (LatencyAccumulator | undefined)[] = [];
  readonly #endToEnd: (LatencyAccumulator | undefined)[] = [];
  readonly #succeeded: number[] = [];
  #dirty = false;
  #publishedAt = 0;

  constructor(mailbox: SharedArrayBuffer) {
    this.#mailbox = mailbox;
  }

  processing(handlerId: number, ns: number, ok: boolean): void {
    (this.#processing[handlerId] ??= new LatencyAccumulator()).record(ns);
    if (ok) this.#succeeded[handlerId] = (this.#succeeded[handlerId] ?? 0) + 1;
    this.#dirty = true;
  }

  /** `attempts` attempts of one handler that took `ns` each (a batch timed as a whole), `succeeded` of them successful. */
  processingTimes(handlerId: number, ns: number, attempts: number, succeeded: number): void {
    (this.#processing[handlerId] ??= new LatencyAccumulator()).recordTimes(ns, attempts);
    if (succeeded > 0) this.#succeeded[handlerId] = (this.#succeeded[handlerId] ?? 0) + succeeded;
    this.#dirty = true;
  }

  endToEnd(topicId: number, ns: number): void {
    (this.#endToEnd[topicId] ??= new LatencyAccumulator()).record(ns);
    this.#dirty = true;
  }

  /** The end-to-end accumulator of a topic, for recording a batch's events without a call each. */
  endToEndOf(topicId: number): LatencyAccumulator {
    this.#dirty = true;
    return (this.#endToEnd[topicId] ??= new LatencyAccumulator());
  }

  /** Publishes if there is news and the last publication is older than the interval. */
  maybePublish(now: number): void {
    if (this.#dirty && now - this.#publishedAt >= PUBLISH_EVERY_MS) this.publish(now);
  }

  publish(now: number): void {
    const report: WorkerMetricsReport = { processing: {}, endToEnd: {}, succeeded: {} };
    this.#processing.forEach((acc, id) => {
      if (acc) report.processing[id] = acc.sparse();
    });
    this.#endToEnd.forEach((acc, id) => {
      if (acc) report.endToEnd[id] = acc.sparse();
    });
    this.#succeeded.forEach((n, id) => {
      if (n) report.succeeded[id] = n;
    });
    writeMailbox(this.#mailbox, report);
    this.#dirty = false;
    this.#publishedAt = now;
  }
}
