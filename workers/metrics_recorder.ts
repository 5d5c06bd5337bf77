/**
 * What a drain task measures (successes, processing and end-to-end times) and
 * publishes to its slot's mailbox: only what changed since main's last read,
 * and only for topics that still have a series.
 */
import { threadId } from 'node:worker_threads';
import { LatencyAccumulator } from '../src/metrics/latency_accumulator.js';
import { acknowledged, writeMailbox, type WorkerMetricsReport } from '../src/protocol/metrics_mailbox.js';
import { FIRST_SERIES_KEY, SERIES_NONE } from '../src/protocol/topic_series.js';

/** How stale a worker's published metrics may get while it is busy. */
const PUBLISH_EVERY_MS = 50;

/** Drain tasks started in this thread, to give each report a task id unique in the process. */
let tasksStarted = 0;

/** What was last sent of one series, so the next report can leave it out while unchanged and acknowledged. */
interface Sent {
  /** The series' count (or success count) when last sent. */
  count: number;
  /** The report that last carried it (0: none). */
  seq: number;
}

/** One handler key's successes and processing times. */
interface HandlerSeries {
  succeeded: number;
  processing: LatencyAccumulator | undefined;
  readonly sentSucceeded: Sent;
  readonly sentProcessing: Sent;
}

/** A topic series' end-to-end times, and which topic it belongs to (to notice its word moved on). */
interface TopicSeries {
  readonly key: number;
  readonly topicId: number;
  readonly acc: LatencyAccumulator;
  readonly sent: Sent;
}

/**
 * What one drain task measures: per-handler successes (always) and, when
 * timed, processing time per attempt and end-to-end time per topic series.
 * Recording is a typed-array increment; the numbers reach main through the
 * slot's mailbox at most every 50 ms while there is news (also inside a long
 * batch, and within 50 ms of going idle), when main asks (drain, a Prometheus
 * scrape), and when the task ends. A worker that is killed loses at most the
 * last 50 ms of its latencies.
 *
 * End-to-end times are kept per topic series, as main's topic-series words
 * say (topic_series.ts): topics beyond `metrics.maxTopics` share one series,
 * and a series whose topic was unregistered is dropped at the next
 * publication, so this state follows the topics that have handlers now, not
 * every topic this task ever saw.
 */
export class MetricsRecorder {
  /** Whether handler calls and events are timed (counts are kept either way). */
  readonly timed: boolean;
  readonly #mailbox: SharedArrayBuffer;
  /** Main's topic id → series key words. */
  readonly #seriesOf: Int32Array;
  readonly #task: number;
  /** By handler key (see HandlerTable.metricsKey). */
  readonly #handlers: (HandlerSeries | undefined)[] = [];
  /** The handler keys in use: the array above is indexed by key, and keys are registry ids. */
  readonly #handlerKeys: number[] = [];
  readonly #topics = new Map<number, TopicSeries>();
  /** The series of the last event recorded: consecutive events mostly share a topic. */
  #last: TopicSeries | undefined;
  #seq = 0;
  #dirty = false;
  #publishedAt = 0;

  constructor(mailbox: SharedArrayBuffer, timed: boolean, topicSeries: SharedArrayBuffer) {
    this.#mailbox = mailbox;
    this.timed = timed;
    this.#seriesOf = new Int32Array(topicSeries); // tracks the buffer as main grows it
    this.#task = threadId * 2 ** 32 + ++tasksStarted; // exact in a double up to 2M threads of 4G tasks each
  }

  succeeded(handlerId: number): void {
    (this.#handlers[handlerId] ?? this.#newHandler(handlerId)).succeeded++;
    this.#dirty = true;
  }

  /** A success that turned out not to be one (its command result could not be sent back). */
  retractSuccess(handlerId: number): void {
    (this.#handlers[handlerId] ?? this.#newHandler(handlerId)).succeeded--;
  }

  processing(handlerId: number, ns: number): void {
    const h = this.#handlers[handlerId] ?? this.#newHandler(handlerId);
    (h.processing ??= new LatencyAccumulator()).record(ns);
    this.#dirty = true;
  }

  endToEnd(topicId: number, ns: number): void {
    const key = this.#seriesOf[topicId] | 0; // past the buffer's end: undefined | 0, no series
    if (key === SERIES_NONE) return; // unregistered meanwhile: main dropped the topic's series too
    let series = this.#last;
    if (series === undefined || series.key !== key) {
      series = this.#topics.get(key);
      if (series === undefined) {
        series = { key, topicId, acc: new LatencyAccumulator(), sent: { count: 0, seq: 0 } };
        this.#topics.set(key, series);
      }
      this.#last = series;
    }
    series.acc.record(ns);
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

  /** Topic series this task keeps (tests check it does not grow with unregistered topics). */
  get topicSeriesCount(): number {
    return this.#topics.size;
  }

  /**
   * Writes what changed since the report main acknowledged: each series that
   * changed, or that a report main has not read yet carried (main reads only
   * the latest report, so each one repeats what is still unacknowledged).
   */
  publish(now: number): void {
    this.#dirty = false;
    this.#publishedAt = now;
    const ack = acknowledged(this.#mailbox);
    const seq = this.#seq + 1;
    const due = (sent: Sent, count: number): boolean => sent.count !== count || sent.seq > ack;
    const report: WorkerMetricsReport = { task: this.#task, seq, succeeded: [], processing: [], endToEnd: [] };
    const counts: [Sent, number][] = [];
    const latencies: [Sent, number][] = [];
    for (const key of this.#handlerKeys) {
      const h = this.#handlers[key]!;
      if (due(h.sentSucceeded, h.succeeded)) {
        report.succeeded.push({ key, count: h.succeeded });
        counts.push([h.sentSucceeded, h.succeeded]);
      }
      if (h.processing !== undefined && due(h.sentProcessing, h.processing.count)) {
        report.processing.push({ key, pairs: h.processing.sparse() });
        latencies.push([h.sentProcessing, h.processing.count]);
      }
    }
    const seriesOf = this.#seriesOf;
    for (const series of this.#topics.values()) {
      // Its topic's word moved on (unregistered, or registered again under a new key): main has dropped the series too.
      if (series.key >= FIRST_SERIES_KEY && (seriesOf[series.topicId] | 0) !== series.key) {
        this.#topics.delete(series.key);
        if (this.#last === series) this.#last = undefined;
        continue;
      }
      if (due(series.sent, series.acc.count)) {
        report.endToEnd.push({ key: series.key, pairs: series.acc.sparse() });
        latencies.push([series.sent, series.acc.count]);
      }
    }
    if (counts.length === 0 && latencies.length === 0) return;
    let delivered = counts.concat(latencies);
    if (!writeMailbox(this.#mailbox, report)) {
      // Latencies beyond the mailbox's largest size: the counts still get through, the latencies stay due.
      if (!writeMailbox(this.#mailbox, { ...report, processing: [], endToEnd: [] })) return;
      delivered = counts;
    }
    this.#seq = seq;
    for (const [sent, count] of delivered) {
      sent.count = count;
      sent.seq = seq;
    }
  }

  #newHandler(key: number): HandlerSeries {
    const h: HandlerSeries = { succeeded: 0, processing: undefined, sentSucceeded: { count: 0, seq: 0 }, sentProcessing: { count: 0, seq: 0 } };
    this.#handlers[key] = h;
    this.#handlerKeys.push(key);
    return h;
  }
}
