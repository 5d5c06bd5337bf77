/**
 * The error classes ringbus raises, each with a stable `code`.
 */
import { circuitOpenMessage } from './protocol/breaker_words.js';

/** Base of every error ringbus raises itself; `code` is stable across versions. */
export class RingbusError extends Error {
  /** Stable machine-readable code, e.g. `ERR_RINGBUS_BACKPRESSURE`. */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** `publishAsync` (or `execute`) found no room in the queue within its `timeoutMs`. */
export class BackpressureError extends RingbusError {
  /** The topic that found no room. */
  readonly topic: string;
  /** How long it waited. */
  readonly timeoutMs: number;
  constructor(topic: string, timeoutMs: number) {
    super('ERR_RINGBUS_BACKPRESSURE', `no room in the queue for topic '${topic}' within ${timeoutMs} ms`);
    this.topic = topic;
    this.timeoutMs = timeoutMs;
  }
}

/** A worker handler's module or export cannot be loaded. */
export class HandlerLoadError extends RingbusError {
  constructor(message: string) {
    super('ERR_RINGBUS_HANDLER_LOAD', message);
  }
}

/** A second command handler for a topic that already has one. */
export class DuplicateCommandHandlerError extends RingbusError {
  /** The command topic that already has its handler. */
  readonly topic: string;
  constructor(topic: string) {
    super('ERR_RINGBUS_DUPLICATE_COMMAND_HANDLER', `topic '${topic}' already has a command handler`);
    this.topic = topic;
  }
}

/** The bus is stopping or stopped and takes no new events. */
export class BusStoppedError extends RingbusError {
  constructor(state: string) {
    super('ERR_RINGBUS_STOPPED', `the bus is ${state}`);
  }
}

/** A worker handler ran longer than `handlerTimeoutMs`; its worker was replaced. */
export class HandlerTimeoutError extends RingbusError {
  /** The handler's name. */
  readonly handler: string;
  /** The `handlerTimeoutMs` it ran past. */
  readonly timeoutMs: number;
  constructor(handler: string, timeoutMs: number) {
    super('ERR_RINGBUS_HANDLER_TIMEOUT', `handler '${handler}' timed out after ${timeoutMs} ms`);
    this.handler = handler;
    this.timeoutMs = timeoutMs;
  }
}

/** An open circuit breaker refused a delivery. */
export class CircuitOpenError extends RingbusError {
  /** The handler whose circuit is open. */
  readonly handler: string;
  constructor(handler: string) {
    super('ERR_RINGBUS_CIRCUIT_OPEN', circuitOpenMessage(handler));
    this.handler = handler;
  }
}

/** A configuration file or environment variable is wrong; the message names which, and the allowed values. */
export class ConfigError extends RingbusError {
  constructor(message: string) {
    super('ERR_RINGBUS_CONFIG', message);
  }
}
