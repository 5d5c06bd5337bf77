/**
 * One labelled series of the bus's metrics, by topic or by handler: its exact
 * counters, its latency accumulator, and the summary and Prometheus label
 * text computed from them, cached until the series changes.
 */
import { LatencyAccumulator } from './latency_accumulator.js';
import { EMPTY_SUMMARY, summarize, type BucketedSummary } from './latency_summary.js';

/** How much work reading the metrics did: tests assert that a read with nothing new recomputes nothing. */
/** @internal */
export interface MetricsWork {
  /** Latency summaries (percentiles) computed. */
  summaries: number;
  /** Worker report entries applied (series that changed in a worker). */
  reportEntries: number;
  /** Prometheus lines formatted (cached lines are reused while their value is unchanged). */
  lines: number;
}

/** The counters of a topic with handlers, as the publisher and router see them. */
/** @internal */
export interface TopicCounters {
  published: number;
  rejected: number;
  dropped: number;
  /** Deliveries a handler's filter refused, and publishes a middleware refused. */
  filtered: number;
  /** Events settled on the main thread (inline, commands, staged, failed ones); workers' reports are added in. */
  readonly endToEnd: LatencyAccumulator;
}

/** @internal */
export interface HandlerCounters {
  /** Successful inline deliveries (workers report theirs). */
  succeeded: number;
  failed: number;
  retried: number;
  deadLettered: number;
  /** Inline attempts; workers' reports are added in. */
  readonly processing: LatencyAccumulator;
}

/** Prometheus label value escaping: backslash, double quote and newline. */
export const escapeLabel = (value: string): string => value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/** A latency summary recomputed only when its accumulator's count moved (counts only grow). */
export class CachedSummary {
  readonly #acc: LatencyAccumulator;
  readonly #work: MetricsWork;
  #count = 0;
  #summary: BucketedSummary = EMPTY_SUMMARY;

  constructor(acc: LatencyAccumulator, work: MetricsWork) {
    this.#acc = acc;
    this.#work = work;
  }

  /** The same object while nothing was added: callers may cache what they derive from it by identity (and must not change it). */
  get(): BucketedSummary {
    if (this.#acc.count !== this.#count) {
      this.#count = this.#acc.count;
      this.#summary = summarize(this.#acc);
      this.#work.summaries++;
    }
    return this.#summary;
  }
}

/** A topic's series (or a shared one: topics beyond maxTopics, topics without handlers). */
/** @internal */
export class TopicSeries implements TopicCounters {
  published = 0;
  rejected = 0;
  dropped = 0;
  filtered = 0;
  readonly endToEnd: LatencyAccumulator;
  /** The `topic` label value. */
  readonly name: string;
  /** The key workers count it under (topic_series.ts); negative for series workers never see. */
  readonly key: number;
  /** `topic="…"`, escaped once. */
  readonly label: string;
  readonly summary: CachedSummary;
  /** Per text block: this series' fixed pieces of text (`name{topic="…"} `), built once (text_exposition.ts). */
  readonly prefixes: (string[] | undefined)[] = [];

  constructor(name: string, key: number, all: LatencyAccumulator, work: MetricsWork) {
    this.name = name;
    this.key = key;
    this.label = `topic="${escapeLabel(name)}"`;
    this.endToEnd = new LatencyAccumulator(all);
    this.summary = new CachedSummary(this.endToEnd, work);
  }
}

/** A handler name's series (a handler registered on many topics has one). */
/** @internal */
export class HandlerSeries implements HandlerCounters {
  succeeded = 0;
  /** Successes reported by workers, tasks that ended included. */
  workerSucceeded = 0;
  failed = 0;
  retried = 0;
  deadLettered = 0;
  readonly processing: LatencyAccumulator;
  readonly name: string;
  /** `handler="…"`, escaped once. */
  readonly label: string;
  readonly summary: CachedSummary;
  /** Per text block: this series' fixed pieces of text, built once (text_exposition.ts). */
  readonly prefixes: (string[] | undefined)[] = [];

  constructor(name: string, all: LatencyAccumulator, work: MetricsWork) {
    this.name = name;
    this.label = `handler="${escapeLabel(name)}"`;
    this.processing = new LatencyAccumulator(all);
    this.summary = new CachedSummary(this.processing, work);
  }

  get processed(): number {
    return this.succeeded + this.workerSucceeded;
  }
}
