/**
 * The metric families: names, help texts and labels (fixed: dashboards are
 * built on them), what each series' value is, and the view of the bus's
 * metrics they are read from. Both expositions (text_exposition.ts and
 * prom_registry.ts) are derived from this list.
 */
import type { BucketedSummary } from './latency_summary.js';
import type { HandlerSeries, TopicSeries } from './series.js';
import type { TransportStats } from '../transport.js';

/** What the families are read from: one consistent read of the bus's metrics. */
export interface MetricsView {
  topics(): Iterable<TopicSeries>;
  handlers(): Iterable<HandlerSeries>;
  queueSize(): number;
  scheduled(): number;
  activeWorkers(): number;
  backpressureActive(): number;
  deadLetterQueueSize(): number;
  foldedTopics(): number;
  /** One row per handler of each topic (topics under their series' label; shared labels keep their least healthy state). */
  breakers(): readonly { topic: string; handler: string; state: number }[];
  /** The transport's figures; undefined without one. */
  transport(): TransportStats | undefined;
}

/** A counter or gauge with one series per topic or per handler. */
export interface SeriesFamily {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly label: 'topic' | 'handler';
  /** Index of its lines in each series' render cache. */
  readonly slot: number;
  readonly value: (s: TopicSeries & HandlerSeries) => number;
}

/** A summary (quantiles, _sum, _count) with a companion `_max` gauge. */
export interface SummaryFamily {
  readonly name: string;
  readonly help: string;
  readonly label: 'topic' | 'handler';
  readonly slot: number;
  readonly summary: (s: TopicSeries & HandlerSeries) => BucketedSummary;
}

/** An unlabelled gauge (or counter). */
export interface ScalarFamily {
  readonly name: string;
  readonly help: string;
  readonly value: (view: MetricsView) => number;
  /** @default 'gauge' */
  readonly type?: 'counter' | 'gauge';
  /** Whether the bus has it at all (the transport's families, only with a transport). */
  readonly present?: (view: MetricsView) => boolean;
}

export type Family =
  | { kind: 'series'; family: SeriesFamily }
  | { kind: 'summary'; family: SummaryFamily }
  | { kind: 'scalar'; family: ScalarFamily }
  | { kind: 'breakers'; name: string; help: string };

const topicFamily = (name: string, help: string, slot: number, value: (s: TopicSeries) => number): Family =>
  ({ kind: 'series', family: { name, help, type: 'counter', label: 'topic', slot, value } });
const handlerFamily = (name: string, help: string, slot: number, value: (s: HandlerSeries) => number): Family =>
  ({ kind: 'series', family: { name, help, type: 'counter', label: 'handler', slot, value } });
const scalar = (name: string, help: string, value: (view: MetricsView) => number): Family => ({ kind: 'scalar', family: { name, help, value } });
const withTransport = (view: MetricsView): boolean => view.transport() !== undefined;
const transportFamily = (name: string, help: string, type: 'counter' | 'gauge', value: (t: TransportStats) => number): Family =>
  ({ kind: 'scalar', family: { name, help, type, present: withTransport, value: (v) => value(v.transport()!) } });

/** Every family, in exposition order. */
export const FAMILIES: readonly Family[] = [
  topicFamily('events_published_total', 'Events accepted by publish/execute.', 0, (s) => s.published),
  topicFamily('events_rejected_total', 'Events refused at capacity or after stop.', 1, (s) => s.rejected),
  topicFamily('events_dropped_total', 'Events dropped by the drop-oldest strategy.', 2, (s) => s.dropped),
  topicFamily('events_filtered_total', 'Deliveries a handler filter refused, and publishes a middleware refused.', 5, (s) => s.filtered),
  handlerFamily('events_processed_total', 'Successful deliveries (event x handler).', 0, (s) => s.processed),
  handlerFamily('events_failed_total', 'Failed delivery attempts, timeouts and open-circuit refusals included.', 1, (s) => s.failed),
  handlerFamily('events_retried_total', 'Failed attempts scheduled to run again.', 2, (s) => s.retried),
  handlerFamily('events_dead_lettered_total', 'Deliveries that exhausted their retries.', 3, (s) => s.deadLettered),
  scalar('queue_size', 'Accepted events not yet settled.', (v) => v.queueSize()),
  scalar('scheduled_events', 'Delayed events pending (not yet due).', (v) => v.scheduled()),
  scalar('active_workers', 'Worker threads running handlers now (the pool\'s adapted size, at most pool.maxThreads).', (v) => v.activeWorkers()),
  scalar('backpressure_active', '1 while the queue is above its high water mark (until it falls to the low one).', (v) => v.backpressureActive()),
  scalar('dead_letter_queue_size', 'Dead letters in memory.', (v) => v.deadLetterQueueSize()),
  { kind: 'breakers', name: 'circuit_breaker_state', help: 'Per handler of each topic: 0 closed, 1 open, 2 half-open.' },
  {
    kind: 'summary',
    family: { name: 'event_processing_duration_seconds', help: 'Handler attempt duration (HDR percentiles).', label: 'handler', slot: 4, summary: (s) => s.summary.get() },
  },
  {
    kind: 'summary',
    family: { name: 'event_end_to_end_seconds', help: 'Publish to settled (HDR percentiles).', label: 'topic', slot: 3, summary: (s) => s.summary.get() },
  },
  scalar('metrics_folded_topics', 'Topics with handlers counted under topic="other", beyond metrics.maxTopics.', (v) => v.foldedTopics()),
  transportFamily('transport_publish_pending', 'Events published and not yet stored by the server (the publish window in use).', 'gauge', (t) => t.publishPending),
  transportFamily('transport_published_total', 'Events the server confirmed stored.', 'counter', (t) => t.publishStored),
  transportFamily('transport_publish_retries_total', 'Batches sent again after no acknowledgement (stored once).', 'counter', (t) => t.publishRetries),
  transportFamily('transport_publish_ack_p50_seconds', 'Median time from sending a batch to its acknowledgement.', 'gauge', (t) => t.publishAckP50Ms / 1000),
  transportFamily('transport_publish_ack_p99_seconds', '99th percentile time from sending a batch to its acknowledgement.', 'gauge', (t) => t.publishAckP99Ms / 1000),
  transportFamily('transport_received_total', 'Deliveries taken from the stream by this process.', 'counter', (t) => t.received),
  transportFamily('transport_redelivered_total', 'Batches redelivered to this process (another process died, or an ack wait ran out).', 'counter', (t) => t.redelivered),
  transportFamily('transport_handed_back_total', 'Deliveries handed back to the stream unsettled (stop, unregister).', 'counter', (t) => t.handedBack),
  transportFamily('transport_malformed_total', 'Messages or events that could not be read (not a ringbus batch, a payload the codec refuses): dropped.', 'counter', (t) => t.malformed),
  transportFamily('transport_reconnects_total', 'Reconnections to the NATS server.', 'counter', (t) => t.reconnects),
  transportFamily('transport_consumer_pending', "Messages not yet delivered to this process's handlers' consumers.", 'gauge', (t) => t.consumerPending),
  transportFamily('transport_consumer_ack_pending', "Messages delivered and not acknowledged on those consumers (deliveries stop at maxAckPending).", 'gauge', (t) => t.consumerAckPending),
];

export const QUANTILES = [0.5, 0.95, 0.99] as const;

/** A sample value as the text format writes it. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return `${v}`;
}
