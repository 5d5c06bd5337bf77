/**
 * The bus's metrics: the series by topic and by handler, workers' reports
 * folded into them, snapshot(), histogram() and the Prometheus exposition.
 */
import { build, type Histogram } from 'hdr-histogram-js';
import { Registry } from 'prom-client';
import type { WorkerMetricsReport } from '../protocol/metrics_mailbox.js';
import type { BusStats } from '../types.js';
import type { TransportStats } from '../transport.js';
import type { MetricsView } from './families.js';
import { LatencyAccumulator } from './latency_accumulator.js';
import type { LatencySummary } from './latency_summary.js';
import { registerFamilies } from './prom_registry.js';
import { TextExposition } from './text_exposition.js';
import { CachedSummary, HandlerSeries, type HandlerCounters, type MetricsWork, type TopicCounters } from './series.js';
import { TopicTable } from './topic_table.js';
import { WorkerReports } from './worker_reports.js';

export type { LatencySummary } from './latency_summary.js';
export type { HandlerCounters, TopicCounters } from './series.js';
export { OTHER_TOPIC, UNROUTED_TOPIC } from './topic_table.js';

/**
 * `bus.metrics.snapshot()`: plain numbers, names fixed (dashboards are built on them).
 *
 * @group Metrics
 */
export interface MetricsSnapshot {
  events_published_total: number;
  /** Successful deliveries (event × handler). */
  events_processed_total: number;
  /** Failed attempts, timeouts and open-circuit refusals included. */
  events_failed_total: number;
  events_retried_total: number;
  events_dead_lettered_total: number;
  events_dropped_total: number;
  events_rejected_total: number;
  /** Deliveries a handler filter refused, and publishes a middleware refused. */
  events_filtered_total: number;
  /** One observation per handler attempt that ran (refusals and killed attempts have no duration). */
  event_processing_duration_seconds: LatencySummary;
  /** Publish → settled, one observation per settled event. */
  event_end_to_end_seconds: LatencySummary;
  queue_size: number;
  /** Delayed events pending (not yet due). */
  scheduled_events: number;
  /** Worker threads running handlers (the pool's adapted size). */
  active_workers: number;
  backpressure_active: 0 | 1;
  /** Per handler name: 0 closed, 1 open, 2 half-open; a handler on several topics shows its least healthy circuit. */
  circuit_breaker_state: Record<string, number>;
  dead_letter_queue_size: number;
  /** Topics with handlers beyond `metrics.maxTopics`, counted together under `by_topic.other`. */
  metrics_folded_topics: number;
  /**
   * Breakdowns (the labels in Prometheus): one entry per topic with handlers
   * (up to `metrics.maxTopics`), plus `other` (the topics beyond) and
   * `(no handler)` (topics without handlers) once used.
   */
  by_topic: Record<string, { published: number; rejected: number; dropped: number; filtered: number; end_to_end_seconds: LatencySummary }>;
  by_handler: Record<string, { processed: number; failed: number; retried: number; dead_lettered: number; processing_duration_seconds: LatencySummary }>;
  /** With a transport: its publish window, what it took from the stream, its consumers' backlog and publish-ack times. */
  transport?: TransportStats;
}

/** What the bus tells its metrics; read only when metrics are read (scrape time), never per event. */
/** @internal */
export interface MetricsSource {
  stats(): BusStats;
  /** The latest reports of the workers running now (reading one acknowledges it: see metrics_mailbox.ts). */
  liveReports(): WorkerMetricsReport[];
  handlerName(id: number): string;
  breakerStates(): { topic: string; handler: string; state: number }[];
  deadLetterSize(): number;
  /** Resolves once every running worker has published what it measured. */
  flush(): Promise<void>;
  /** The transport's figures (undefined: the bus has none). */
  transport(): TransportStats | undefined;
}

/** @internal How the engine sizes the metrics. */
export interface MetricsSettings {
  /** Topics with a series of their own (options `metrics.maxTopics`). */
  maxTopics: number;
  /** The topic-series words shared with workers (topic_series.ts). */
  topicSeries: SharedArrayBuffer;
  /** The bus has a transport: its families are registered. */
  transport: boolean;
}

/** A cached summary, copied so a snapshot is the caller's to change (and holds the public fields only). */
const copy = ({ count, sum, p50, p95, p99, max }: LatencySummary): LatencySummary => ({ count, sum, p50, p95, p99, max });

/**
 * The bus's metrics. Counters come from the engine's exact counts; the
 * latency distributions are counted where they happen (each worker for its
 * deliveries, main for inline ones) and folded into per-series accumulators
 * when someone reads them: `snapshot()` or a Prometheus scrape. Reading costs
 * what changed since the last read: workers report only the series that
 * changed, and each series' percentiles and Prometheus lines are recomputed
 * only when its figures moved.
 *
 * @group Metrics
 */
export class BusMetrics {
  /** prom-client registry with every ringbus metric; merge it into an app's own with `Registry.merge`. */
  readonly registry = new Registry();
  /** @internal Work done by reads so far (tests check that a read with nothing new redoes nothing). */
  readonly work: MetricsWork = { summaries: 0, reportEntries: 0, lines: 0 };
  readonly #source: MetricsSource;
  /** Every end-to-end time and every processing time: each series adds into these as it grows. */
  readonly #allEndToEnd = new LatencyAccumulator();
  readonly #allProcessing = new LatencyAccumulator();
  readonly #endToEndSummary: CachedSummary;
  readonly #processingSummary: CachedSummary;
  readonly #topics: TopicTable;
  readonly #handlers = new Map<string, HandlerSeries>();
  /** Handler series by worker handler key (a registry id; ids never change meaning). */
  readonly #handlerKeys = new Map<number, HandlerSeries>();
  readonly #reports: WorkerReports;
  readonly #text = new TextExposition(this.work);
  /** The view the registry's families read, reused within one turn of the event loop. */
  #view: MetricsView | undefined;

  /** @internal The engine builds one per bus. */
  constructor(source: MetricsSource, settings: MetricsSettings) {
    this.#source = source;
    this.#topics = new TopicTable(settings.maxTopics, settings.topicSeries, this.#allEndToEnd, this.work);
    this.#endToEndSummary = new CachedSummary(this.#allEndToEnd, this.work);
    this.#processingSummary = new CachedSummary(this.#allProcessing, this.work);
    this.#reports = new WorkerReports({
      handler: (key) => {
        let h = this.#handlerKeys.get(key);
        if (h === undefined) this.#handlerKeys.set(key, (h = this.#handler(this.#source.handlerName(key))));
        return h;
      },
      topic: (key) => this.#topics.byKey(key),
    }, this.work);
    registerFamilies(this.registry, () => {
      if (this.#view === undefined) {
        this.#view = this.#read();
        queueMicrotask(() => (this.#view = undefined));
      }
      return this.#view;
    }, settings.transport);
  }

  /**
   * @internal The counters of a topic with handlers, created when its first
   * handler is registered (the router caches them in the topic's route, so
   * publish adds without a lookup). `topicId`: its registry id once routed to
   * a worker.
   */
  topic(name: string, topicId = -1): TopicCounters {
    return this.#topics.seriesOf(name, topicId);
  }

  /**
   * @internal The counters to count a topic's event in: its series if it has
   * handlers, else the one shared by every topic without a handler (labelled
   * UNROUTED_TOPIC), so publishing to many distinct topics keeps no state per topic.
   */
  countersOf(name: string): TopicCounters {
    return this.#topics.countersOf(name);
  }

  /** @internal The topic has no handler any more: its series is dropped (counts included), in workers too. */
  forgetTopic(name: string): void {
    const key = this.#topics.forget(name);
    if (key !== undefined) this.#reports.forgetTopic(key);
  }

  /** @internal */
  handler(name: string): HandlerCounters {
    return this.#handler(name);
  }

  /** @internal A task ended: fold its worker's final report in. */
  retire(report: WorkerMetricsReport): void {
    this.#reports.retire(report);
  }

  /** @internal Running tasks whose reports are held (tests). */
  get liveTasks(): number {
    return this.#reports.tasks;
  }

  snapshot(): MetricsSnapshot {
    const view = this.#read();
    const stats = this.#source.stats();
    const byTopic: MetricsSnapshot['by_topic'] = {};
    for (const t of view.topics()) {
      byTopic[t.name] = { published: t.published, rejected: t.rejected, dropped: t.dropped, filtered: t.filtered, end_to_end_seconds: copy(t.summary.get()) };
    }
    const byHandler: MetricsSnapshot['by_handler'] = {};
    for (const h of view.handlers()) {
      byHandler[h.name] = {
        processed: h.processed, failed: h.failed, retried: h.retried, dead_lettered: h.deadLettered,
        processing_duration_seconds: copy(h.summary.get()),
      };
    }
    return {
      events_published_total: stats.published,
      events_processed_total: stats.processed,
      events_failed_total: stats.failed,
      events_retried_total: stats.retried,
      events_dead_lettered_total: stats.deadLettered,
      events_dropped_total: stats.dropped,
      events_rejected_total: stats.rejected,
      events_filtered_total: stats.filtered,
      event_processing_duration_seconds: copy(this.#processingSummary.get()),
      event_end_to_end_seconds: copy(this.#endToEndSummary.get()),
      queue_size: stats.queueSize,
      scheduled_events: stats.scheduled,
      active_workers: stats.activeWorkers,
      backpressure_active: stats.backpressureActive ? 1 : 0,
      circuit_breaker_state: worstByHandler(this.#source.breakerStates()),
      dead_letter_queue_size: this.#source.deadLetterSize(),
      metrics_folded_topics: this.#topics.folded,
      by_topic: byTopic,
      by_handler: byHandler,
      ...(view.transport() === undefined ? {} : { transport: view.transport() }),
    };
  }

  /**
   * A merged HDR histogram (values in nanoseconds) of every processing attempt
   * or every end-to-end time: for percentiles beyond the snapshot's, or
   * coordinated-omission correction (`copyCorrectedForCoordinatedOmission`).
   */
  histogram(name: 'event_processing_duration_seconds' | 'event_end_to_end_seconds'): Histogram {
    this.#read();
    const h = build({ numberOfSignificantValueDigits: 3, bitBucketSize: 64 });
    (name === 'event_end_to_end_seconds' ? this.#allEndToEnd : this.#allProcessing).into(h);
    return h;
  }

  /** @internal Each handler of each topic with a circuit breaker: 0 closed, 1 open, 2 half-open. */
  circuits(): { topic: string; handler: string; state: number }[] {
    return this.#source.breakerStates();
  }

  /**
   * @internal The cumulative end-to-end and processing distributions as
   * sparse (bucket, count) pairs: the dashboard diffs two of them for the
   * percentiles of one interval.
   */
  latencySparse(): { endToEnd: number[]; processing: number[]; handlers: Map<string, number[]> } {
    const view = this.#read();
    const handlers = new Map<string, number[]>();
    for (const h of view.handlers()) handlers.set(h.name, h.processing.sparse());
    return { endToEnd: this.#allEndToEnd.sparse(), processing: this.#allProcessing.sparse(), handlers };
  }

  /**
   * The Prometheus text exposition, computed now, after every running worker
   * has published its latest figures (`snapshot()` may lag them by up to 50 ms).
   */
  async prometheus(): Promise<string> {
    await this.#source.flush();
    const started = performance.now();
    return this.#text.render(this.#read(), started);
  }

  /** Folds in what workers reported since the last read, and returns the series to read from. */
  #read(): MetricsView {
    for (const report of this.#source.liveReports()) this.#reports.apply(report);
    const stats = this.#source.stats();
    return {
      topics: () => this.#topics.series(),
      handlers: () => this.#handlers.values(),
      queueSize: () => stats.queueSize,
      scheduled: () => stats.scheduled,
      activeWorkers: () => stats.activeWorkers,
      backpressureActive: () => (stats.backpressureActive ? 1 : 0),
      deadLetterQueueSize: () => this.#source.deadLetterSize(),
      foldedTopics: () => this.#topics.folded,
      breakers: () => this.#breakerRows(),
      transport: () => this.#source.transport(),
    };
  }

  #handler(name: string): HandlerSeries {
    let h = this.#handlers.get(name);
    if (h === undefined) this.#handlers.set(name, (h = new HandlerSeries(name, this.#allProcessing, this.work)));
    return h;
  }

  /** Breaker states by (topic label, handler): topics sharing a series show their least healthy circuit. */
  #breakerRows(): { topic: string; handler: string; state: number }[] {
    const rows = new Map<string, { topic: string; handler: string; state: number }>();
    for (const { topic, handler, state } of this.#source.breakerStates()) {
      const label = this.#topics.labelOf(topic);
      const key = `${label}\u0000${handler}`;
      const seen = rows.get(key);
      if (seen === undefined) rows.set(key, { topic: label, handler, state });
      else if (HEALTH_RANK[state] > HEALTH_RANK[seen.state]) seen.state = state;
    }
    return [...rows.values()];
  }
}

/** How unhealthy a circuit state is: open (1) > half-open (2) > closed (0). */
const HEALTH_RANK = [0, 2, 1];

/** One state per handler name: the least healthy of its topics' circuits. */
function worstByHandler(states: readonly { handler: string; state: number }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { handler, state } of states) {
    const seen = out[handler];
    if (seen === undefined || HEALTH_RANK[state] > HEALTH_RANK[seen]) out[handler] = state;
  }
  return out;
}
