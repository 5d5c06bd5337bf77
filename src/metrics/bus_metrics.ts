/**
 * The bus's metrics: exact counters, latency accumulators per topic and
 * handler, snapshot() and the Prometheus exposition.
 */
import { build, type Histogram } from 'hdr-histogram-js';
import { Counter, Gauge, Registry } from 'prom-client';
import type { WorkerMetricsReport } from '../protocol/metrics_mailbox.js';
import type { BusStats } from '../types.js';
import { LatencyAccumulator } from './latency_accumulator.js';

/**
 * Percentiles of a latency, in seconds.
 *
 * @group Metrics
 */
export interface LatencySummary {
  count: number;
  /** Sum of the observations (from the bucket midpoints: within 0.4%). */
  sum: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

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
  /** One observation per handler attempt that ran (refusals and killed attempts have no duration). */
  event_processing_duration_seconds: LatencySummary;
  /** Publish → settled, one observation per settled event. */
  event_end_to_end_seconds: LatencySummary;
  queue_size: number;
  backpressure_active: 0 | 1;
  /** Per handler name: 0 closed, 1 open, 2 half-open; a handler on several topics shows its least healthy circuit. */
  circuit_breaker_state: Record<string, number>;
  dead_letter_queue_size: number;
  /** Breakdowns (the labels in Prometheus). */
  by_topic: Record<string, { published: number; rejected: number; dropped: number; end_to_end_seconds: LatencySummary }>;
  by_handler: Record<string, { processed: number; failed: number; retried: number; dead_lettered: number; processing_duration_seconds: LatencySummary }>;
}

/** What the bus tells its metrics; read only when metrics are read (scrape time), never per event. */
/** @internal */
export interface MetricsSource {
  stats(): BusStats;
  /** The latest reports of the workers running now. */
  liveReports(): WorkerMetricsReport[];
  handlerName(id: number): string;
  topicName(id: number): string;
  breakerStates(): { topic: string; handler: string; state: number }[];
  deadLetterSize(): number;
  /** Resolves once every running worker has published what it measured. */
  flush(): Promise<void>;
}

/** The `topic` label under which events of topics without any handler are counted together. */
export const UNROUTED_TOPIC = '(no handler)';

const newTopicCounters = (): TopicCounters => ({ published: 0, rejected: 0, dropped: 0, endToEnd: new LatencyAccumulator() });

/** @internal */
export interface TopicCounters {
  published: number;
  rejected: number;
  dropped: number;
  /** Events settled on the main thread (inline, commands, staged, failed ones). */
  readonly endToEnd: LatencyAccumulator;
}

/** @internal */
export interface HandlerCounters {
  /** Successful inline deliveries (workers report theirs). */
  succeeded: number;
  failed: number;
  retried: number;
  deadLettered: number;
  /** Inline attempts (workers report theirs). */
  readonly processing: LatencyAccumulator;
}

const QUANTILES = [0.5, 0.95, 0.99] as const;
const EMPTY: LatencySummary = Object.freeze({ count: 0, sum: 0, p50: 0, p95: 0, p99: 0, max: 0 });

function summarize(acc: LatencyAccumulator | undefined): LatencySummary {
  if (acc === undefined || acc.count === 0) return EMPTY;
  const h = toHistogram(acc);
  return {
    count: h.totalCount,
    sum: acc.sum() / 1e9,
    p50: h.getValueAtPercentile(50) / 1e9,
    p95: h.getValueAtPercentile(95) / 1e9,
    p99: h.getValueAtPercentile(99) / 1e9,
    // Percentiles report a bucket's highest equivalent value; so does max, to stay >= p99.
    max: h.getValueAtPercentile(100) / 1e9,
  };
}

function toHistogram(acc: LatencyAccumulator): Histogram {
  const h = build({ numberOfSignificantValueDigits: 3, bitBucketSize: 64 });
  acc.into(h);
  return h;
}

function addTo(map: Map<string, LatencyAccumulator>, key: string, from: LatencyAccumulator | number[]): void {
  let acc = map.get(key);
  if (acc === undefined) map.set(key, (acc = new LatencyAccumulator()));
  if (from instanceof LatencyAccumulator) acc.add(from);
  else acc.addSparse(from);
}

/**
 * The bus's metrics. Counters come from the engine's exact counts; the
 * latency distributions are counted where they happen (each worker for its
 * deliveries, main for inline ones) and merged into HDR histograms only when
 * someone reads them: `snapshot()` or a Prometheus scrape.
 *
 * @group Metrics
 */
export class BusMetrics {
  /** prom-client registry with every ringbus metric; merge it into an app's own with `Registry.merge`. */
  readonly registry = new Registry();
  readonly #source: MetricsSource;
  readonly #topics = new Map<string, TopicCounters>();
  readonly #handlers = new Map<string, HandlerCounters>();
  /** What ended tasks measured, by handler / topic name. */
  readonly #retiredProcessing = new Map<string, LatencyAccumulator>();
  readonly #retiredEndToEnd = new Map<string, LatencyAccumulator>();
  readonly #retiredSucceeded = new Map<string, number>();

  /** @internal The engine builds one per bus. */
  constructor(source: MetricsSource) {
    this.#source = source;
    this.#register();
  }

  /** @internal The counters of a topic with handlers, created for its route (cached by the router, so publish adds without a lookup). */
  topic(name: string): TopicCounters {
    let t = this.#topics.get(name);
    if (t === undefined) this.#topics.set(name, (t = newTopicCounters()));
    return t;
  }

  /**
   * @internal The counters to count a topic's event in: its own if it has
   * handlers, else the one shared by every topic without a handler (labelled
   * UNROUTED_TOPIC), so publishing to many distinct topics keeps no state per topic.
   */
  countersOf(name: string): TopicCounters {
    return this.#topics.get(name) ?? this.topic(UNROUTED_TOPIC);
  }

  /** @internal The topic has no handler any more: its series are dropped (counts included). */
  forgetTopic(name: string): void {
    this.#topics.delete(name);
    this.#retiredEndToEnd.delete(name);
  }

  /** @internal */
  handler(name: string): HandlerCounters {
    let h = this.#handlers.get(name);
    if (h === undefined) {
      this.#handlers.set(name, (h = { succeeded: 0, failed: 0, retried: 0, deadLettered: 0, processing: new LatencyAccumulator() }));
    }
    return h;
  }

  /** @internal A task ended: fold its worker's final report in. */
  retire(report: WorkerMetricsReport): void {
    this.#fold(report, this.#retiredProcessing, this.#retiredEndToEnd, this.#retiredSucceeded);
  }

  #fold(report: WorkerMetricsReport, processing: Map<string, LatencyAccumulator>, endToEnd: Map<string, LatencyAccumulator>,
    succeeded: Map<string, number>): void {
    for (const [id, pairs] of Object.entries(report.processing)) addTo(processing, this.#source.handlerName(Number(id)), pairs);
    for (const [id, pairs] of Object.entries(report.endToEnd)) addTo(endToEnd, this.#source.topicName(Number(id)), pairs);
    for (const [id, n] of Object.entries(report.succeeded)) {
      const name = this.#source.handlerName(Number(id));
      succeeded.set(name, (succeeded.get(name) ?? 0) + n);
    }
  }

  /** Every latency so far, by handler and by topic: ended tasks, running workers, main. */
  #merged(): { processing: Map<string, LatencyAccumulator>; endToEnd: Map<string, LatencyAccumulator>; succeeded: Map<string, number> } {
    const processing = new Map<string, LatencyAccumulator>();
    const endToEnd = new Map<string, LatencyAccumulator>();
    const succeeded = new Map(this.#retiredSucceeded);
    for (const [k, acc] of this.#retiredProcessing) addTo(processing, k, acc);
    for (const [k, acc] of this.#retiredEndToEnd) addTo(endToEnd, k, acc);
    for (const report of this.#source.liveReports()) this.#fold(report, processing, endToEnd, succeeded);
    for (const [k, h] of this.#handlers) {
      if (h.processing.count > 0) addTo(processing, k, h.processing);
      if (h.succeeded > 0) succeeded.set(k, (succeeded.get(k) ?? 0) + h.succeeded);
    }
    for (const [k, t] of this.#topics) if (t.endToEnd.count > 0) addTo(endToEnd, k, t.endToEnd);
    return { processing, endToEnd, succeeded };
  }

  snapshot(): MetricsSnapshot {
    const stats = this.#source.stats();
    const { processing, endToEnd, succeeded } = this.#merged();
    const all = (m: Map<string, LatencyAccumulator>): LatencyAccumulator => {
      const total = new LatencyAccumulator();
      for (const acc of m.values()) total.add(acc);
      return total;
    };
    const byTopic: MetricsSnapshot['by_topic'] = {};
    for (const name of new Set([...this.#topics.keys(), ...endToEnd.keys()])) {
      const t = this.#topics.get(name);
      byTopic[name] = { published: t?.published ?? 0, rejected: t?.rejected ?? 0, dropped: t?.dropped ?? 0, end_to_end_seconds: summarize(endToEnd.get(name)) };
    }
    const byHandler: MetricsSnapshot['by_handler'] = {};
    for (const name of new Set([...this.#handlers.keys(), ...processing.keys(), ...succeeded.keys()])) {
      const h = this.#handlers.get(name);
      byHandler[name] = {
        processed: succeeded.get(name) ?? 0, failed: h?.failed ?? 0, retried: h?.retried ?? 0, dead_lettered: h?.deadLettered ?? 0,
        processing_duration_seconds: summarize(processing.get(name)),
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
      event_processing_duration_seconds: summarize(all(processing)),
      event_end_to_end_seconds: summarize(all(endToEnd)),
      queue_size: stats.queueSize,
      backpressure_active: stats.backpressureActive ? 1 : 0,
      circuit_breaker_state: worstByHandler(this.#source.breakerStates()),
      dead_letter_queue_size: this.#source.deadLetterSize(),
      by_topic: byTopic,
      by_handler: byHandler,
    };
  }

  /**
   * A merged HDR histogram (values in nanoseconds) of every processing attempt
   * or every end-to-end time: for percentiles beyond the snapshot's, or
   * coordinated-omission correction (`copyCorrectedForCoordinatedOmission`).
   */
  histogram(name: 'event_processing_duration_seconds' | 'event_end_to_end_seconds'): Histogram {
    const merged = this.#merged();
    const h = build({ numberOfSignificantValueDigits: 3, bitBucketSize: 64 });
    for (const acc of (name === 'event_end_to_end_seconds' ? merged.endToEnd : merged.processing).values()) acc.into(h);
    return h;
  }

  /**
   * The Prometheus text exposition, computed now, after every running worker
   * has published its latest figures (`snapshot()` may lag them by up to 50 ms).
   */
  async prometheus(): Promise<string> {
    await this.#source.flush();
    return this.registry.metrics();
  }

  #register(): void {
    const registers = [this.registry];
    // Everything is computed at scrape time from one snapshot per scrape.
    let scrape: MetricsSnapshot | undefined;
    let scrapeAt = -1;
    const fresh = (): MetricsSnapshot => {
      const now = performance.now();
      if (scrape === undefined || now - scrapeAt > 5) {
        scrape = this.snapshot();
        scrapeAt = now;
      }
      return scrape;
    };
    const counter = (name: string, help: string, label: 'topic' | 'handler', value: (s: MetricsSnapshot) => Record<string, number>): void => {
      new Counter({
        name, help, labelNames: [label], registers,
        collect() {
          this.reset();
          for (const [key, n] of Object.entries(value(fresh()))) this.inc({ [label]: key }, n);
        },
      });
    };
    const pick = <T>(rec: Record<string, T>, f: (t: T) => number): Record<string, number> =>
      Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, f(v)]));
    counter('events_published_total', 'Events accepted by publish/execute.', 'topic', (s) => pick(s.by_topic, (t) => t.published));
    counter('events_rejected_total', 'Events refused at capacity or after stop.', 'topic', (s) => pick(s.by_topic, (t) => t.rejected));
    counter('events_dropped_total', 'Events dropped by the drop-oldest strategy.', 'topic', (s) => pick(s.by_topic, (t) => t.dropped));
    counter('events_processed_total', 'Successful deliveries (event x handler).', 'handler', (s) => pick(s.by_handler, (h) => h.processed));
    counter('events_failed_total', 'Failed delivery attempts, timeouts and open-circuit refusals included.', 'handler', (s) => pick(s.by_handler, (h) => h.failed));
    counter('events_retried_total', 'Failed attempts scheduled to run again.', 'handler', (s) => pick(s.by_handler, (h) => h.retried));
    counter('events_dead_lettered_total', 'Deliveries that exhausted their retries.', 'handler', (s) => pick(s.by_handler, (h) => h.dead_lettered));

    const gauge = (name: string, help: string, value: (s: MetricsSnapshot) => number): void => {
      new Gauge({
        name, help, registers,
        collect() {
          this.set(value(fresh()));
        },
      });
    };
    gauge('queue_size', 'Accepted events not yet settled.', (s) => s.queue_size);
    gauge('backpressure_active', '1 while the queue is above its high water mark (until it falls to the low one).', (s) => s.backpressure_active);
    gauge('dead_letter_queue_size', 'Dead letters in memory.', (s) => s.dead_letter_queue_size);
    const source = this.#source;
    new Gauge({
      name: 'circuit_breaker_state', help: 'Per handler of each topic: 0 closed, 1 open, 2 half-open.', labelNames: ['topic', 'handler'], registers,
      collect() {
        this.reset();
        for (const { topic, handler, state } of source.breakerStates()) this.set({ topic, handler }, state);
      },
    });

    const summary = (name: string, help: string, label: 'topic' | 'handler', rows: (s: MetricsSnapshot) => Record<string, LatencySummary>): void => {
      this.registry.registerMetric({
        name, help,
        get: async () => {
          const values: { labels: Record<string, string | number>; value: number; metricName?: string }[] = [];
          for (const [key, l] of Object.entries(rows(fresh()))) {
            // No observation: no quantile (NaN, as Prometheus clients expose it), not 0.
            const q: Record<string, number> = l.count === 0 ? { 0.5: NaN, 0.95: NaN, 0.99: NaN } : { 0.5: l.p50, 0.95: l.p95, 0.99: l.p99 };
            for (const quantile of QUANTILES) values.push({ labels: { [label]: key, quantile }, value: q[quantile] });
            values.push({ metricName: `${name}_sum`, labels: { [label]: key }, value: l.sum });
            values.push({ metricName: `${name}_count`, labels: { [label]: key }, value: l.count });
          }
          return { name, help, type: 'summary', values, aggregator: 'sum' };
        },
        reset() {},
      } as unknown as Parameters<Registry['registerMetric']>[0]);
      new Gauge({
        name: `${name}_max`, help: `Largest observation of ${name}.`, labelNames: [label], registers,
        collect() {
          this.reset();
          for (const [key, l] of Object.entries(rows(fresh()))) this.set({ [label]: key }, l.max);
        },
      });
    };
    summary('event_processing_duration_seconds', 'Handler attempt duration (HDR percentiles).', 'handler',
      (s) => pick2(s.by_handler, (h) => h.processing_duration_seconds));
    summary('event_end_to_end_seconds', 'Publish to settled (HDR percentiles).', 'topic',
      (s) => pick2(s.by_topic, (t) => t.end_to_end_seconds));
  }
}

function pick2<T>(rec: Record<string, T>, f: (t: T) => LatencySummary): Record<string, LatencySummary> {
  return Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, f(v)]));
}

/** One state per handler name: the least healthy of its topics' circuits (open 1 > half-open 2 > closed 0). */
function worstByHandler(states: readonly { handler: string; state: number }[]): Record<string, number> {
  const rank = [0, 2, 1];
  const out: Record<string, number> = {};
  for (const { handler, state } of states) {
    const seen = out[handler];
    if (seen === undefined || rank[state] > rank[seen]) out[handler] = state;
  }
  return out;
}
