/**
 * The error classes ringbus raises, each with a stable `code`. A failed
 * delivery or command reaches the user as one of these objects, and the same
 * object reaches every place that reports it: the command's result, the
 * 'handler-error' event and the dead letter.
 */
import { circuitOpenMessage } from './protocol/breaker_words.js';

/**
 * Every `code` a {@link RingbusError} can carry; stable across versions.
 *
 * @group Errors
 */
export type RingbusErrorCode =
  | 'ERR_RINGBUS_NO_HANDLER' | 'ERR_RINGBUS_CIRCUIT_OPEN' | 'ERR_RINGBUS_HANDLER_TIMEOUT' | 'ERR_RINGBUS_BACKPRESSURE'
  | 'ERR_RINGBUS_HANDLER_FAILED' | 'ERR_RINGBUS_WORKER_CRASHED' | 'ERR_RINGBUS_BUS_STOPPED' | 'ERR_RINGBUS_NOT_STARTED'
  | 'ERR_RINGBUS_ALREADY_STOPPED' | 'ERR_RINGBUS_SESSION_CLOSED' | 'ERR_RINGBUS_HANDLER_LOAD'
  | 'ERR_RINGBUS_DUPLICATE_COMMAND_HANDLER' | 'ERR_RINGBUS_CONFIG' | 'ERR_RINGBUS_COMMAND_TIMEOUT'
  | 'ERR_RINGBUS_MIDDLEWARE' | 'ERR_RINGBUS_REFUSED';

/**
 * Errors the bus itself raised for a delivery (an inline handler's timeout):
 * told apart from what a handler threw by identity, never by `instanceof` on
 * a thrown value (which can throw, and which a handler rethrowing another
 * bus's error would pass).
 *
 * @internal
 */
export const RAISED_BY_BUS = new WeakSet<object>();

/**
 * Base of every error ringbus raises itself; branch on `code`, which is stable across versions.
 *
 * @group Errors
 */
export class RingbusError extends Error {
  /** Stable machine-readable code, e.g. `ERR_RINGBUS_BACKPRESSURE`. */
  readonly code: RingbusErrorCode;
  constructor(code: RingbusErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * `publishAsync` or `execute` found no room in the queue within its
 * `timeoutMs`, or (queue.strategy 'drop-oldest') a command was dropped to
 * make room for newer or higher-priority events.
 *
 * @group Errors
 */
export class BackpressureError extends RingbusError {
  /** The topic that found no room. */
  readonly topic: string;
  /** How long it waited (0 when it was dropped). */
  readonly timeoutMs: number;
  /** `'timeout'`: no room within `timeoutMs`; `'dropped'`: the queue's drop-oldest strategy dropped it. */
  readonly reason: 'timeout' | 'dropped';
  constructor(topic: string, timeoutMs: number, reason: 'timeout' | 'dropped' = 'timeout', message?: string) {
    super('ERR_RINGBUS_BACKPRESSURE', message ?? `no room in the queue for topic '${topic}' within ${timeoutMs} ms`);
    this.topic = topic;
    this.timeoutMs = timeoutMs;
    this.reason = reason;
  }
}

/**
 * A command was executed on a topic that has no command handler.
 *
 * @group Errors
 */
export class NoHandlerError extends RingbusError {
  /** The topic without a command handler. */
  readonly topic: string;
  constructor(topic: string) {
    super('ERR_RINGBUS_NO_HANDLER', `no command handler registered for topic '${topic}'`);
    this.topic = topic;
  }
}

/** What a failing handler's error is built from (worker failures arrive as text). */
export interface HandlerFailure {
  handler: string;
  topic: string;
  /** The attempt that failed (0 on the first try). */
  attempt: number;
  /** The handler's own message. */
  message: string;
  /** The `name` of what it threw, when that was an Error. */
  errorName: string | undefined;
  /** Its stack, when it had one (a worker handler's comes from the worker). */
  stack: string | undefined;
  /** What an inline handler threw, as it was thrown. */
  thrown?: unknown;
}

/**
 * A handler threw or rejected. The message is the handler's own; `errorName`
 * and `stack` are those of what it threw (for worker handlers too: they come
 * from the worker), and `cause` is what it threw: the very value for inline
 * handlers, an `Error` rebuilt with its name, message and stack for worker
 * handlers.
 *
 * @group Errors
 */
export class HandlerFailedError extends RingbusError {
  /** The handler's name. */
  readonly handler: string;
  /** The event's topic. */
  readonly topic: string;
  /** The attempt that failed (0 on the first try). */
  readonly attempt: number;
  /** The `name` of what the handler threw (e.g. 'TypeError'); undefined when it threw something that is not an Error. */
  readonly errorName: string | undefined;
  constructor(f: HandlerFailure) {
    super('ERR_RINGBUS_HANDLER_FAILED', f.message, { cause: 'thrown' in f ? f.thrown : rebuilt(f) });
    this.handler = f.handler;
    this.topic = f.topic;
    this.attempt = f.attempt;
    this.errorName = f.errorName;
    // The handler's stack says where it failed; the bus's own frames would not.
    if (f.stack !== undefined) this.stack = f.stack;
  }
}

/** A worker handler's error as an Error again: its name, message and stack as the worker saw them. */
function rebuilt(f: HandlerFailure): Error {
  const e = new Error(f.message);
  if (f.errorName !== undefined) e.name = f.errorName;
  e.stack = f.stack ?? `${f.errorName ?? 'Error'}: ${f.message}`;
  return e;
}

/**
 * A worker died (crash, `process.exit`, out of memory) while it ran a handler; the worker was replaced.
 *
 * @group Errors
 */
export class WorkerCrashedError extends RingbusError {
  /** The handler that was running. */
  readonly handler: string;
  constructor(handler: string, detail: string) {
    super('ERR_RINGBUS_WORKER_CRASHED', `worker exited while running handler '${handler}': ${detail}`);
    this.handler = handler;
  }
}

/**
 * The bus is stopping or stopped: it takes no new events, or it stopped
 * before a command finished (`cause`: the command's last failure, if it had
 * one).
 *
 * @group Errors
 */
export class BusStoppedError extends RingbusError {
  constructor(message: string, cause?: unknown) {
    super('ERR_RINGBUS_BUS_STOPPED', message, cause === undefined ? undefined : { cause });
  }
}

/**
 * `drain()` (or another call that needs a running bus) on a bus that was never started.
 *
 * @group Errors
 */
export class NotStartedError extends RingbusError {
  /** `what`: the call (e.g. 'drain()'); or, with `message`, the whole message. */
  constructor(what: string, message?: string) {
    super('ERR_RINGBUS_NOT_STARTED', message ?? `${what} on a bus that was never started: call start() first`);
  }
}

/**
 * `start()` on a bus that is stopping or stopped: a bus runs once; make a new one.
 *
 * @group Errors
 */
export class AlreadyStoppedError extends RingbusError {
  constructor(state: string) {
    super('ERR_RINGBUS_ALREADY_STOPPED', `cannot start a bus that is ${state}: a bus runs once; create a new one`);
  }
}

/**
 * A call on a session after `close()`.
 *
 * @group Errors
 */
export class SessionClosedError extends RingbusError {
  /** The session's id. */
  readonly sessionId: string;
  constructor(sessionId: string) {
    super('ERR_RINGBUS_SESSION_CLOSED', `session ${sessionId} is closed`);
    this.sessionId = sessionId;
  }
}

/**
 * A worker handler's module or export cannot be loaded.
 *
 * @group Errors
 */
export class HandlerLoadError extends RingbusError {
  constructor(message: string) {
    super('ERR_RINGBUS_HANDLER_LOAD', message);
  }
}

/**
 * A second command handler for a topic that already has one.
 *
 * @group Errors
 */
export class DuplicateCommandHandlerError extends RingbusError {
  /** The command topic that already has its handler. */
  readonly topic: string;
  constructor(topic: string) {
    super('ERR_RINGBUS_DUPLICATE_COMMAND_HANDLER', `topic '${topic}' already has a command handler`);
    this.topic = topic;
  }
}

/**
 * A handler ran longer than `handlerTimeoutMs` (a worker handler's worker was replaced).
 *
 * @group Errors
 */
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

/**
 * An open circuit breaker refused a delivery or a command (`cause`: the
 * handler's last failure before the circuit opened, when known).
 *
 * @group Errors
 */
export class CircuitOpenError extends RingbusError {
  /** The handler whose circuit is open. */
  readonly handler: string;
  constructor(handler: string, cause?: unknown) {
    super('ERR_RINGBUS_CIRCUIT_OPEN', circuitOpenMessage(handler), cause === undefined ? undefined : { cause });
    this.handler = handler;
  }
}

/**
 * A configuration file or environment variable is wrong; the message names which, and the allowed values.
 *
 * @group Errors
 */
export class ConfigError extends RingbusError {
  constructor(message: string) {
    super('ERR_RINGBUS_CONFIG', message);
  }
}

/**
 * With a transport: a command ran in another process of the cluster, and
 * no reply came back within its timeout (`execute`'s `timeoutMs`, else
 * `transport.jetstream.commandTimeoutMs`). The command may still have run.
 *
 * @group Errors
 */
export class CommandTimeoutError extends RingbusError {
  /** The command's topic. */
  readonly topic: string;
  /** How long the caller waited for the reply. */
  readonly timeoutMs: number;
  constructor(topic: string, timeoutMs: number) {
    super('ERR_RINGBUS_COMMAND_TIMEOUT', `no reply within ${timeoutMs} ms from the process running command '${topic}' (it may still have run)`);
    this.topic = topic;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A publish middleware (`bus.use(fn)`) threw: `publish` and `publishAsync`
 * throw it, `execute` resolves with it; nothing was accepted. `cause` is
 * what the middleware threw.
 *
 * @group Errors
 */
export class MiddlewareError extends RingbusError {
  /** The topic being published. */
  readonly topic: string;
  /** The middleware's name (its function name, or `#n`: its place in the chain). */
  readonly middleware: string;
  constructor(topic: string, middleware: string, cause: unknown) {
    super('ERR_RINGBUS_MIDDLEWARE', `publish middleware '${middleware}' threw on topic '${topic}': ${
      cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.topic = topic;
    this.middleware = middleware;
  }
}

/**
 * A publish middleware returned false for a command: `execute` resolves
 * with it (a refused event makes `publish` return false instead).
 *
 * @group Errors
 */
export class RefusedError extends RingbusError {
  readonly topic: string;
  /** The middleware that refused. */
  readonly middleware: string;
  constructor(topic: string, middleware: string) {
    super('ERR_RINGBUS_REFUSED', `publish middleware '${middleware}' refused the command on topic '${topic}'`);
    this.topic = topic;
    this.middleware = middleware;
  }
}
