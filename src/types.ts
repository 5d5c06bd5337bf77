/**
 * The public types of events, handlers, per-call options, command results and
 * stats.
 */
import type { RingbusError } from './errors.js';
import type { EventFilter } from './filters.js';
import type { Priority } from './protocol/task.js';

export type { Priority } from './protocol/task.js';

/** What a handler receives. @group Handlers */
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
  /** The headers given at publish (and added by middleware), frozen; undefined when there are none. */
  readonly headers: Readonly<Record<string, string>> | undefined;
}

/** An inline handler (runs on the main thread) or the export a worker handler module provides. @group Handlers */
export type Handler<P = unknown, R = unknown> = (event: BusEvent<P>) => R | Promise<R>;

/**
 * How a command ended: its handler's result, or the error that ended it.
 * Branch on `success`, then on `error.code` (the README lists every code).
 * @group Bus
 */
export type CommandResult<R = unknown> = CommandSucceeded<R> | CommandFailed;

/** A command that succeeded: its handler's result. @group Bus */
export interface CommandSucceeded<R = unknown> {
  success: true;
  result: R;
  error?: undefined;
  /** Attempts made, the first included. */
  attempts: number;
}

/** A command that failed: the error that ended it. @group Bus */
export interface CommandFailed {
  success: false;
  result?: undefined;
  /**
   * Why it failed: `ERR_RINGBUS_NO_HANDLER`, `ERR_RINGBUS_CIRCUIT_OPEN`,
   * `ERR_RINGBUS_HANDLER_TIMEOUT`, `ERR_RINGBUS_BACKPRESSURE`,
   * `ERR_RINGBUS_HANDLER_FAILED` (the handler's own message, name and stack),
   * `ERR_RINGBUS_WORKER_CRASHED`, `ERR_RINGBUS_HANDLER_LOAD` (the worker
   * handler's module did not load), `ERR_RINGBUS_BUS_STOPPED`,
   * `ERR_RINGBUS_MIDDLEWARE` (a publish middleware threw) or
   * `ERR_RINGBUS_REFUSED` (a publish middleware returned false). The same object
   * the last 'handler-error' event and the dead letter carry.
   */
  error: RingbusError;
  /** Attempts made (0: the handler never ran). */
  attempts: number;
}

/** Options of `publish`. @group Options */
export interface PublishOptions {
  /** @default 'normal' */
  priority?: Priority;
  sessionId?: string;
  /**
   * String headers carried with the event to every handler (`event.headers`),
   * into dead letters and across a transport. At most 16 KiB as JSON; a
   * non-string value is a TypeError naming the header.
   */
  headers?: Readonly<Record<string, string>>;
  /**
   * Deliver no earlier than this many ms from now: the event waits in the
   * scheduler (`scheduler.capacity`; durable with `scheduler.path`) and is
   * published when due. Not with `at`.
   * @default undefined (now)
   */
  delayMs?: number;
  /** Deliver no earlier than this time (a Date or epoch ms); a time past is now. Not with `delayMs`. */
  at?: Date | number;
}

/** Options of `publishAsync`. @group Options */
export interface PublishAsyncOptions extends PublishOptions {
  /**
   * How long to wait for room before failing with `BackpressureError`.
   * @default Infinity
   */
  timeoutMs?: number;
}

/** Options of `execute` (a command runs now: no `delayMs` or `at`). @group Options */
export type ExecuteOptions = Omit<PublishAsyncOptions, 'delayMs' | 'at'>;

/** Options of `registerEventHandler`. @group Handlers */
export interface EventHandlerOptions {
  /** Name in errors, metrics and circuit breakers. @default the export or function name */
  name?: string;
  /** @default 'normal' */
  priority?: Priority;
  /**
   * Runs on the main thread before each event is handed to this handler
   * (worker handlers included): false and the handler does not get it
   * (counted in `filtered`, neither processed nor failed). Ready-made ones:
   * `bySession`, `byHeader`, `byHeaders`, `byTopic`, `rateLimit`, composed
   * with `allOf`, `anyOf` and `not`.
   * A filter that throws counts as false and is logged (rate-limited).
   * @default undefined (every event)
   */
  filter?: EventFilter;
}

/** Options of `registerCommandHandler`. @group Handlers */
export interface CommandHandlerOptions {
  /** @default the export or function name */
  name?: string;
}

/** Options of `stop`. @group Options */
export interface StopOptions {
  /** Settle everything accepted before stopping. @default true */
  drain?: boolean;
  /** Most time to wait for the drain; what is still pending then is abandoned and counted. @default Infinity */
  timeoutMs?: number;
}

/** A handler failed one attempt at one delivery. @group Bus */
export interface HandlerErrorEvent {
  eventId: string;
  topic: string;
  handler: string;
  attempt: number;
  /**
   * The failure: a `HandlerFailedError`, `HandlerTimeoutError`,
   * `WorkerCrashedError`, `HandlerLoadError` or, with
   * `circuitBreaker.hold: false`, `CircuitOpenError`.
   */
  error: RingbusError;
}

/** The counters the bus keeps; `bus.stats()` returns a fresh copy. @group Metrics */
export interface BusStats {
  published: number;
  /** Successful deliveries (event × handler). */
  processed: number;
  /** Failed delivery attempts. */
  failed: number;
  dropped: number;
  rejected: number;
  /**
   * Deliveries (event × handler) a handler's filter refused, and publishes a
   * middleware refused (those are not counted as published).
   */
  filtered: number;
  /** Delayed events pending (not yet due: not counted as published, nor in `queueSize`). */
  scheduled: number;
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
  /**
   * Worker threads running handlers now (not parked): the pool's adapted
   * size, between 0 (idle) and `pool.maxThreads`. It grows while the backlog
   * holds more handler time than the running workers clear in a batch.
   */
  activeWorkers: number;
  backpressureActive: boolean;
}
