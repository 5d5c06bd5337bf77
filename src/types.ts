/**
 * The public types of events, handlers, per-call options, command results and
 * stats.
 */
import type { Priority } from './protocol/task.js';

export type { Priority } from './protocol/task.js';

/** What a handler receives. */
export interface BusEvent<P = unknown> {
  /** Unique per event across buses and restarts: handlers may use it to deduplicate (delivery is at-least-once). */
  readonly id: string;
  readonly topic: string;
  readonly payload: P;
  readonly priority: Priority;
  readonly sessionId: string | undefined;
  /** 0 on the first try. */
  readonly attempt: number;
  /** Epoch milliseconds at publish. */
  readonly publishedAt: number;
}

/** An inline handler (runs on the main thread) or the export a worker handler module provides. */
export type Handler<P = unknown, R = unknown> = (event: BusEvent<P>) => R | Promise<R>;

export interface CommandResult<R = unknown> {
  success: boolean;
  result?: R;
  error?: string;
  attempts: number;
}

export interface PublishOptions {
  /** @default 'normal' */
  priority?: Priority;
  sessionId?: string;
}

export interface PublishAsyncOptions extends PublishOptions {
  /**
   * How long to wait for room before failing with `BackpressureError`.
   * @default Infinity
   */
  timeoutMs?: number;
}

export type ExecuteOptions = PublishAsyncOptions;

export interface EventHandlerOptions {
  /** Name in errors, metrics and circuit breakers. @default the export or function name */
  name?: string;
  /** @default 'normal' */
  priority?: Priority;
}

export interface CommandHandlerOptions {
  /** @default the export or function name */
  name?: string;
}

export interface StopOptions {
  /** Settle everything accepted before stopping. @default true */
  drain?: boolean;
  /** Most time to wait for the drain; what is still pending then is abandoned and counted. @default Infinity */
  timeoutMs?: number;
}

/** A handler failed one attempt at one delivery. */
export interface HandlerErrorEvent {
  eventId: string;
  topic: string;
  handler: string;
  attempt: number;
  error: string;
}

/** The counters the bus keeps; `bus.stats()` returns a fresh copy. */
export interface BusStats {
  published: number;
  /** Successful deliveries (event × handler). */
  processed: number;
  /** Failed delivery attempts. */
  failed: number;
  dropped: number;
  rejected: number;
  /** Events pending when `stop` gave up on them. */
  abandoned: number;
  /** Failed attempts scheduled to run again. */
  retried: number;
  /** Deliveries that exhausted their retries into the dead-letter queue. */
  deadLettered: number;
  /** Workers that died (crash, `process.exit`, out of memory) and were replaced. */
  workerCrashes: number;
  /** Handler attempts that ran past `handlerTimeoutMs` (a worker handler's worker is ended and replaced). */
  handlerTimeouts: number;
  /** Deliveries waiting for their open circuit (counted in `queueSize` through their events). */
  held: number;
  /** Unsettled events. */
  queueSize: number;
  backpressureActive: boolean;
}
