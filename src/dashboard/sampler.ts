/**
 * The dashboard's view of a bus: one sample per interval (rates from the
 * counters' growth, latency percentiles of that interval alone, queue, pool,
 * circuits), kept in a bounded history for the charts. It samples only
 * while someone watches (a connected page, or an API read in the last few
 * intervals), so a dashboard nobody has open costs the bus nothing; the
 * circuit transitions it keeps come from the bus's 'circuit' events.
 */
import type { MessageBus } from '../message_bus.js';
import { LatencyAccumulator } from '../metrics/latency_accumulator.js';
import { summarize } from '../metrics/latency_summary.js';
import type { DashboardState, HandlerRates, HistoryPoint, Percentiles, Rates } from './state.js';
import type { ClusterStatus } from '../jetstream/cluster_status.js';

type Totals = DashboardState['totals'];
const ZERO: Percentiles = Object.freeze({ p50: 0, p95: 0, p99: 0 });
/** Transitions kept per circuit, and circuits followed at most (a bus with more handlers keeps the newest). */
const TRANSITIONS_KEPT = 20;
const CIRCUITS_KEPT = 10_000;
/** How long after its last API read the sampler keeps going without a connected page. */
const IDLE_AFTER_INTERVALS = 5;
const CIRCUIT_NAMES = ['closed', 'open', 'half_open'];

export interface SamplerOptions {
  sampleMs: number;
  /** Points of history kept (historySeconds / sampleMs). */
  historyPoints: number;
  actions: boolean;
  showPayloads: boolean;
  maxThreads: number;
  capacity: number;
  highWaterMark: number;
  lowWaterMark: number;
}

export class Sampler {
  readonly #bus: MessageBus;
  readonly #o: SamplerOptions;
  readonly #history: HistoryPoint[] = [];
  readonly #transitions = new Map<string, { at: number; from: string; to: string }[]>();
  readonly #listeners = new Set<(state: DashboardState, point: HistoryPoint) => void>();
  #timer: NodeJS.Timeout | undefined;
  #state: DashboardState | undefined;
  #lastRead = 0;
  #prev: { t: number; totals: Totals; byHandler: Map<string, { processed: number; failed: number }> } | undefined;
  #prevSparse: ReturnType<MessageBus['metrics']['latencySparse']> | undefined;
  /** With a transport: the last cluster status read, and whether a read is under way (one at a time). */
  #cluster: ClusterStatus | undefined;
  #clusterReading = false;
  readonly #onCircuit = (e: { topic: string; handler: string; from: string; to: string }): void => {
    const key = `${e.topic}\u0000${e.handler}`;
    let list = this.#transitions.get(key);
    if (list === undefined) {
      if (this.#transitions.size >= CIRCUITS_KEPT) this.#transitions.delete(this.#transitions.keys().next().value!);
      list = [];
      this.#transitions.set(key, list);
    }
    list.push({ at: Date.now(), from: e.from, to: e.to });
    if (list.length > TRANSITIONS_KEPT) list.shift();
  };

  constructor(bus: MessageBus, o: SamplerOptions) {
    this.#bus = bus;
    this.#o = o;
    bus.on('circuit', this.#onCircuit);
  }

  /** A page connected: samples flow to `listener` until the returned function is called. */
  watch(listener: (state: DashboardState, point: HistoryPoint) => void): () => void {
    this.#listeners.add(listener);
    this.#ensureRunning();
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** The latest sample (taken now if there is none, or sampling was idle). */
  state(): DashboardState {
    this.#lastRead = Date.now();
    if (this.#state === undefined || this.#timer === undefined) this.#sample();
    this.#ensureRunning();
    return this.#state!;
  }

  history(): HistoryPoint[] {
    this.state();
    return this.#history.slice();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
    this.#bus.off('circuit', this.#onCircuit);
  }

  #ensureRunning(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      const idle = this.#listeners.size === 0 && Date.now() - this.#lastRead > IDLE_AFTER_INTERVALS * this.#o.sampleMs;
      if (idle) {
        // Nobody watches: stop sampling (the next read starts it again, from a fresh baseline).
        clearInterval(this.#timer);
        this.#timer = undefined;
        this.#prev = undefined;
        this.#prevSparse = undefined;
        return;
      }
      this.#sample();
    }, this.#o.sampleMs);
    this.#timer.unref();
  }

  #sample(): void {
    const bus = this.#bus;
    const t = Date.now();
    const s = bus.stats();
    const totals: Totals = {
      published: s.published, processed: s.processed, failed: s.failed, retried: s.retried, deadLettered: s.deadLettered, dropped: s.dropped,
      rejected: s.rejected, filtered: s.filtered, abandoned: s.abandoned, scheduled: s.scheduled,
    };
    const snapshot = bus.metrics.snapshot();
    const byHandler = new Map<string, { processed: number; failed: number }>();
    for (const [name, h] of Object.entries(snapshot.by_handler)) byHandler.set(name, { processed: h.processed, failed: h.failed });
    const sparse = bus.metrics.latencySparse();
    const prev = this.#prev;
    const seconds = prev === undefined ? 0 : (t - prev.t) / 1000;
    const per = (now: number, before: number): number => (seconds > 0 ? Math.max(0, now - before) / seconds : 0);
    const rates: Rates = {
      published: per(totals.published, prev?.totals.published ?? totals.published),
      processed: per(totals.processed, prev?.totals.processed ?? totals.processed),
      failed: per(totals.failed, prev?.totals.failed ?? totals.failed),
      retried: per(totals.retried, prev?.totals.retried ?? totals.retried),
      deadLettered: per(totals.deadLettered, prev?.totals.deadLettered ?? totals.deadLettered),
      filtered: per(totals.filtered, prev?.totals.filtered ?? totals.filtered),
    };
    const before = this.#prevSparse;
    const handlers: HandlerRates[] = [];
    for (const [name, h] of byHandler) {
      const was = prev?.byHandler.get(name) ?? h;
      const processedPerSecond = per(h.processed, was.processed);
      const failedPerSecond = per(h.failed, was.failed);
      const attempts = processedPerSecond + failedPerSecond;
      handlers.push({
        handler: name, processedPerSecond, failedPerSecond, failureRate: attempts > 0 ? failedPerSecond / attempts : 0,
        processing: interval(sparse.handlers.get(name) ?? [], before?.handlers.get(name)),
      });
    }
    const point: HistoryPoint = {
      t, rates, endToEnd: interval(sparse.endToEnd, before?.endToEnd), processing: interval(sparse.processing, before?.processing), queueSize: s.queueSize,
    };
    const lanes = bus.laneDepths();
    const circuits = this.#circuits();
    this.#state = {
      t, sampleMs: this.#o.sampleMs, rates, endToEnd: point.endToEnd, processing: point.processing, totals,
      queue: {
        size: s.queueSize, capacity: this.#o.capacity, highWaterMark: this.#o.highWaterMark, lowWaterMark: this.#o.lowWaterMark,
        backpressure: s.backpressureActive, lanes: { critical: lanes.critical, high: lanes.high, normal: lanes.normal, low: lanes.low },
      },
      pool: { activeWorkers: s.activeWorkers, maxThreads: this.#o.maxThreads, workerCrashes: s.workerCrashes, handlerTimeouts: s.handlerTimeouts },
      circuits, handlers, deadLetters: { size: bus.deadLetters.size },
      transport: bus.transportStats() as Record<string, number> | undefined, actions: this.#o.actions, showPayloads: this.#o.showPayloads,
      cluster: this.#cluster,
    };
    if (this.#state.transport !== undefined && !this.#clusterReading) {
      // The server's answer comes later: the next sample carries it.
      this.#clusterReading = true;
      bus.clusterStatus().then((c) => {
        this.#cluster = c;
      }, () => {}).finally(() => {
        this.#clusterReading = false;
      });
    }
    this.#prev = { t, totals, byHandler };
    this.#prevSparse = sparse;
    if (prev !== undefined) {
      this.#history.push(point);
      if (this.#history.length > this.#o.historyPoints) this.#history.shift();
      for (const listener of this.#listeners) listener(this.#state, point);
    }
  }

  /** Each handler of each topic with a breaker: its state (the bus's view) and the transitions seen. */
  #circuits(): DashboardState['circuits'] {
    const bus = this.#bus;
    const out: DashboardState['circuits'] = [];
    for (const row of bus.metrics.circuits()) {
      out.push({
        topic: row.topic, handler: row.handler, circuit: CIRCUIT_NAMES[row.state] ?? 'closed',
        transitions: this.#transitions.get(`${row.topic}\u0000${row.handler}`) ?? [],
      });
    }
    return out;
  }
}

/** Percentiles of what was added to a cumulative distribution between two sparse snapshots of it. */
function interval(now: number[], before: number[] | undefined): Percentiles {
  if (before === undefined) return ZERO;
  const acc = new LatencyAccumulator();
  acc.addGrowth(now, before);
  if (acc.count === 0) return ZERO;
  const s = summarize(acc);
  return { p50: s.p50, p95: s.p95, p99: s.p99 };
}
