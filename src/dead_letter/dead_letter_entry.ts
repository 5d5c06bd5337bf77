/**
 * The shape of a dead letter: the event as published, the handler, the error
 * and the attempts.
 */
import type { RingbusError } from '../errors.js';
import type { Priority } from '../protocol/task.js';

/** The event as it was published, kept with a dead letter. @group Dead letters */
export interface DeadEvent {
  /** The event's id (a replay keeps it, so handlers can deduplicate). */
  id: string;
  topic: string;
  /** As published: a Uint8Array for binary payloads. */
  payload: unknown;
  priority: Priority;
  sessionId: string | undefined;
  /** Epoch ms. */
  publishedAt: number;
  /** The event's headers, when it had any. */
  headers?: Readonly<Record<string, string>>;
}

/**
 * The kind of failure that ended a delivery: the handler threw or rejected,
 * ran past `handlerTimeoutMs`, or its worker died while running it. A
 * circuit refusal ends a delivery only with `circuitBreaker.hold: false`.
 */
export type DeadLetterErrorCode =
  | 'ERR_RINGBUS_HANDLER_FAILED' | 'ERR_RINGBUS_HANDLER_TIMEOUT' | 'ERR_RINGBUS_WORKER_CRASHED' | 'ERR_RINGBUS_CIRCUIT_OPEN'
  | 'ERR_RINGBUS_HANDLER_LOAD';

/** A delivery (event × handler) that exhausted its retries. @group Dead letters */
export interface DeadLetterEntry {
  /** Id of this entry (not the event's). */
  id: string;
  /** The event the delivery was for. */
  event: DeadEvent;
  /** The handler's name. */
  handler: string;
  /** The wildcard pattern the handler is registered on, when that (not the event's topic) routed the event to it. */
  subscription?: string;
  /** The handler's own last error: its message (never a circuit refusal). */
  error: string;
  /** The `name` of what the handler threw, when it was an Error (e.g. 'TypeError'). */
  errorName?: string;
  /** The kind of the last failure. */
  errorCode: DeadLetterErrorCode;
  /** Attempts made, the first included. */
  attempts: number;
  /** Epoch ms of the first and the last failed attempt. */
  firstAttemptAt: number;
  lastAttemptAt: number;
  /**
   * The last failure as an Error: the same object the command's result and
   * the last 'handler-error' event carried. Present on entries dead-lettered
   * by this process (not enumerable, so not written to the file); absent on
   * entries loaded from a file.
   */
  readonly failure?: RingbusError;
}
