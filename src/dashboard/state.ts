/**
 * What the dashboard's server sends its page: the shapes of `GET
 * /api/state`, of each `GET /api/history` point and of the `state` events on
 * `GET /events` (server-sent events). The page (page.ts) reads nothing else.
 */

import type { ClusterStatus } from '../jetstream/cluster_status.js';

/** Per second over the last sample interval. */
export interface Rates {
  published: number;
  processed: number;
  failed: number;
  retried: number;
  deadLettered: number;
  filtered: number;
}

/** Seconds. */
export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

/** One point of the charts' history (one per sample interval). */
export interface HistoryPoint {
  /** Epoch ms. */
  t: number;
  rates: Rates;
  endToEnd: Percentiles;
  processing: Percentiles;
  queueSize: number;
}

export interface HandlerState {
  topic: string;
  handler: string;
  /** 'closed' | 'open' | 'half_open'. */
  circuit: string;
  /** The last circuit transitions of this handler on this topic, newest last (at most 20). */
  transitions: { at: number; from: string; to: string }[];
}

export interface HandlerRates {
  handler: string;
  /** Successful deliveries per second, failed attempts per second, and failed ÷ (processed + failed) over the interval. */
  processedPerSecond: number;
  failedPerSecond: number;
  failureRate: number;
  processing: Percentiles;
}

export interface DashboardState {
  /** Epoch ms of the sample. */
  t: number;
  /** Milliseconds between samples. */
  sampleMs: number;
  rates: Rates;
  endToEnd: Percentiles;
  processing: Percentiles;
  totals: { published: number; processed: number; failed: number; retried: number; deadLettered: number; dropped: number; rejected: number; filtered: number; abandoned: number; scheduled: number };
  queue: {
    size: number;
    capacity: number;
    highWaterMark: number;
    lowWaterMark: number;
    backpressure: boolean;
    lanes: { critical: number; high: number; normal: number; low: number };
  };
  pool: { activeWorkers: number; maxThreads: number; workerCrashes: number; handlerTimeouts: number };
  /** Every handler of every topic with a circuit breaker (empty with breakers off). */
  circuits: HandlerState[];
  /** Per handler name. */
  handlers: HandlerRates[];
  deadLetters: { size: number };
  /** With a transport: its figures (TransportStats), else undefined. */
  transport: Record<string, number> | undefined;
  /** With a transport: the cluster's processes, stream and consumers (refreshed once per sample; undefined until first read). */
  cluster?: ClusterStatus | undefined;
  /** What the page may offer: actions need the token (and the server's `actions: true`). */
  actions: boolean;
  showPayloads: boolean;
}

/** A dead letter as the list shows it (no payload). */
export interface DeadLetterRow {
  id: string;
  topic: string;
  handler: string;
  error: string;
  errorCode: string;
  attempts: number;
  lastAttemptAt: number;
  eventId: string;
}
