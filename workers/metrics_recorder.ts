/**
 * What a drain task measures (successes, processing and end-to-end times) and
 * publishes to its slot's mailbox.
 */
import { LatencyAccumulator } from '../src/metrics/latency_accumulator.js';
import { writeMailbox, type WorkerMetricsReport } from '../src/protocol/metrics_mailbox.js';

/** How stale a worker's published metrics may get while it is busy. */
const PUBLISH_EVERY_MS = 50;

/**
 * What one drain task measures: per-handler successes (always) and, when
 * timed, processing time per attempt and end-to-end time per topic.
 * Recording is a typed-array increment; the numbers reach main through the
 * slot's mailbox at most every 50 ms while there is news (also inside a long
 * batch, and within 50 ms of going idle), when main asks (drain, a Prometheus
 * scrape), and when the task ends. A worker that is killed loses at most the
 * last 50 ms of its latencies.
 */
export class MetricsRecorder {
  /** Whether handler calls and events are timed (counts are kept either way). */
  readonly timed: boolean;
  readonly #mailbox: SharedArrayBuffer;
  readonly #processing: (LatencyAccumulator | undefined)[] = [];
  readonly #endToEnd: (LatencyAccumulator | undefined)[] = [];
  readonly #succeeded: number[] = [];
  #dirty = false;
  #publishedAt = 0;

  constructor(mailbox: SharedArrayBuffer, timed: boolean) {
    this.#mailbox = mailbox;
    this.timed = timed;
  }

  succeeded(handlerId: number): void {
    this.#succeeded[handlerId] = (this.#succeeded[handlerId] ?? 0) + 1;
    this.#dirty = true;
  }

  /** A success that turned out not to be one (its command result could not be sent back). */
  retractSuccess(handlerId: number): void {
    this.#succeeded[handlerId]--;
  }

  processing(handlerId: number, ns: number): void {
    (this.#processing[handlerId] ??= new LatencyAccumulator()).record(ns);
    this.#dirty = true;
  }

  endToEnd(topicId: number, ns: number): void {
    (this.#endToEnd[topicId] ??= new LatencyAccumulator()).record(ns);
    this.#dirty = true;
  }

  /** Publishes if there is news and the last publication is older than the interval. */
  maybePublish(now: number): void {
    if (this.#dirty && now - this.#publishedAt >= PUBLISH_EVERY_MS) this.publish(now);
  }

  /** Milliseconds until unpublished news is due (Infinity when there is none). */
  dueIn(now: number): number {
    return this.#dirty ? Math.max(1, PUBLISH_EVERY_MS - (now - this.#publishedAt)) : Infinity;
  }

  publish(now: number): void {
    const report: WorkerMetricsReport = { processing: {}, endToEnd: {}, succeeded: {} };
    this.#succeeded.forEach((n, id) => {
      if (n) report.succeeded[id] = n;
    });
    this.#processing.forEach((acc, id) => {
      if (acc) report.processing[id] = acc.sparse();
    });
    this.#endToEnd.forEach((acc, id) => {
      if (acc) report.endToEnd[id] = acc.sparse();
    });
    // If the latencies ever outgrow the mailbox, the counts still get through.
    if (!writeMailbox(this.#mailbox, report)) writeMailbox(this.#mailbox, { processing: {}, endToEnd: {}, succeeded: report.succeeded });
    this.#dirty = false;
    this.#publishedAt = now;
  }
}
