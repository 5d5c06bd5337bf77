/**
 * What happens to a failed attempt at one delivery (event × handler),
 * wherever it ran: the breaker hears of it, listeners get 'handler-error',
 * and the delivery either runs again after its backoff (holding its place in
 * the capacity) or, out of attempts, is dead-lettered (or, with no
 * dead-letter queue, counted as a final failure). Also what happens to a
 * delivery an open circuit holds: it waits with its breaker, uses no
 * attempt, and runs again when the circuit lets it. Owns the retry timer heap.
 */
import { decodeRecord, rewriteRecord, RF_CONTINUATION, RF_DETACHED, RF_TRACKED } from '../protocol/record.js';
import type { RemoteEvent } from '../transport.js';
import { ExponentialBackoff } from '../retry/backoff.js';
import { RetryScheduler } from '../retry/retry_scheduler.js';
import type { DeadLetterErrorCode } from '../dead_letter/dead_letter_entry.js';
import { BusStoppedError, CircuitOpenError, HandlerFailedError, HandlerLoadError, type RingbusError } from '../errors.js';
import type { InlineJob } from '../inline_runner.js';
import type { Registration } from '../router.js';
import type { HandlerErrorEvent } from '../types.js';
import type { EngineParts } from './parts.js';

/** One failed attempt at one delivery. */
export interface FailedAttempt {
  seq: number;
  lane: number;
  topic: string;
  handler: string;
  attempt: number;
  /** The failure's message: the handler's own, or what the bus says (timeout, worker exit, circuit refusal). */
  error: string;
  /** The `name` of what the handler threw, when it was an Error. */
  errorName?: string;
  errorCode: DeadLetterErrorCode;
  /** A worker handler's stack, as the worker saw it. */
  stack?: string;
  /** What an inline handler threw (the key is present only for inline handler failures). */
  thrown?: unknown;
  /**
   * The failure as users see it: set by whoever reports a timeout, crash or
   * refusal; built from the fields above on first need otherwise, so a
   * retried failure nobody listens to costs no Error object.
   */
  failure?: RingbusError;
  /** An open circuit refused it (`hold: false`): a failed attempt for the retry policy, not a handler failure for the breaker. */
  refused: boolean;
  /** The handler's breaker index (-1: none). */
  breaker: number;
  /** A worker delivery: the record as it ran, and the handler's registry id. */
  record?: Uint8Array;
  handlerId?: number;
  /** An inline delivery: the job and the handler. */
  job?: InlineJob;
  reg?: Registration;
}

/** The one Error object for a failed attempt: the 'handler-error' event, the command's result and the dead letter all get this one. */
export function failureOf(f: FailedAttempt): RingbusError {
  if (f.failure !== undefined) return f.failure;
  // The handler's own stack replaces the bus's frames, so none are captured.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    f.failure = f.errorCode === 'ERR_RINGBUS_CIRCUIT_OPEN'
      ? new CircuitOpenError(f.handler)
      : f.errorCode === 'ERR_RINGBUS_HANDLER_LOAD'
        ? new HandlerLoadError(f.error)
        : new HandlerFailedError({
        handler: f.handler, topic: f.topic, attempt: f.attempt, message: f.error, errorName: f.errorName, stack: f.stack ?? stackOf(f.thrown),
        ...('thrown' in f ? { thrown: f.thrown } : {}),
      });
  } finally {
    Error.stackTraceLimit = limit;
  }
  return f.failure;
}

/** An inline handler's thrown Error's stack, read only when a failure is built (reading formats it); never throws. */
function stackOf(thrown: unknown): string | undefined {
  try {
    return thrown instanceof Error && typeof thrown.stack === 'string' ? thrown.stack : undefined;
  } catch {
    return undefined;
  }
}

/** A delivery waiting for its circuit: a detached single-handler copy of what did not run, at the same attempt. */
export interface HeldDelivery {
  seq: number;
  lane: number;
  topic: string;
  handler: string;
  attempt: number;
  record: Uint8Array | undefined;
  job: InlineJob | undefined;
}

/** A delivery waiting for its next attempt. */
interface RetryItem {
  lane: number;
  record: Uint8Array | undefined;
  job: InlineJob | undefined;
  /** The attempt that failed, and when the delivery first failed: for a dead letter if the bus stops first. */
  failure: FailedAttempt;
  firstAt: number;
}

/** A retry or a held delivery: one handler, reported back explicitly, never dropped by drop-oldest. */
const DETACHED_FLAGS = RF_TRACKED | RF_CONTINUATION | RF_DETACHED;

export class FailurePolicy {
  readonly #p: EngineParts;
  readonly #backoff: ExponentialBackoff | undefined;
  readonly #retries = new RetryScheduler<RetryItem>((item) => this.#runRetry(item));

  constructor(p: EngineParts) {
    this.#p = p;
    this.#backoff = p.options.retry ? new ExponentialBackoff(p.options.retry) : undefined;
  }

  attemptFailed(f: FailedAttempt): void {
    const p = this.#p;
    p.counters.failed++;
    const handlerCounters = p.metrics.handler(f.handler);
    handlerCounters.failed++;
    if (!f.refused && f.breaker >= 0) p.breakers.onFailure(f.breaker, { message: f.error, name: f.errorName, code: f.errorCode, error: () => failureOf(f) });
    if (p.emitter.listenerCount('handler-error') > 0) {
      const eventId = f.job?.event.id ?? (f.record ? decodeRecord(f.record).id : undefined) ?? p.memory.idPrefix + f.seq;
      const event: HandlerErrorEvent = { eventId, topic: f.topic, handler: f.handler, attempt: f.attempt, error: failureOf(f) };
      p.emitter.emit('handler-error', event);
    }
    const ledger = p.inFlight.ledger(f.seq, f.topic, () => f.job?.event.publishedAt ?? (f.record ? decodeRecord(f.record).publishedAt : 0));
    if (!f.refused) ledger.lastOwnFailure.set(f.handler, f);
    const now = Date.now();
    const tracked = p.inFlight.get(f.seq);
    const remote = tracked?.kind === 'tracked' ? tracked.remote : undefined;
    // A retry another process sent on: its first failure happened there.
    const firstAt = ledger.firstFailureAt.get(f.handler) ?? (remote !== undefined && remote.firstFailedAt > 0 ? remote.firstFailedAt : now);
    const retry = p.options.retry;
    const canRetry = retry && !p.lifecycle.terminated && f.attempt < retry.maxRetries &&
      (f.job !== undefined || (f.record !== undefined && f.handlerId !== undefined));
    if (canRetry) {
      ledger.firstFailureAt.set(f.handler, firstAt);
      ledger.outstanding++;
      p.counters.retried++;
      handlerCounters.retried++;
      const next = f.attempt + 1;
      if (remote !== undefined && p.transport !== undefined) {
        this.#retryThroughTransport(f, remote.event, next, firstAt);
        return;
      }
      this.#retries.schedule(this.#backoff!.delayMs(next), {
        lane: f.lane,
        record: f.record && f.handlerId !== undefined ? rewriteRecord(f.record, [f.handlerId], next, DETACHED_FLAGS) : undefined,
        job: f.job && f.reg ? { seq: f.seq, event: { ...f.job.event, attempt: next }, handlers: [f.reg], continuation: true, detached: true } : undefined,
        failure: f,
        firstAt,
      });
      return;
    }
    ledger.firstFailureAt.delete(f.handler);
    const own = f.refused ? ledger.lastOwnFailure.get(f.handler) : undefined;
    ledger.lastOwnFailure.delete(f.handler);
    // A delivery refused by its circuit (hold: false) is dead-lettered with the handler's own last error, if it ever ran.
    if (own !== undefined) {
      f = { ...f, error: own.error, errorName: own.errorName, errorCode: own.errorCode, stack: own.stack, failure: failureOf(own) };
    }
    p.inFlight.reply(f.seq, { success: false, error: failureOf(f), attempts: f.attempt + 1 });
    if (p.deadLetters.enabled) {
      ledger.outstanding++;
      p.deadLetters.add(f, firstAt, now);
    }
  }

  /**
   * A delivery the transport brought retries through it: kept in the stream
   * with its attempt count and first failure, it runs after its backoff in
   * whichever process has the handler (this one included), and survives this
   * process dying meanwhile. This process is done with it once it is kept.
   */
  #retryThroughTransport(f: FailedAttempt, came: RemoteEvent, next: number, firstAt: number): void {
    const p = this.#p;
    // The payload as it came, copied (the message it is a view of is acknowledged before the retry runs).
    const event: RemoteEvent = { ...came, payload: new Uint8Array(came.payload), attempt: next, firstFailedAt: firstAt };
    p.transport!.retryLater(event, f.handler, this.#backoff!.delayMs(next)).then((kept) => {
      // Not kept: the transport closed, and the original delivery goes back to the stream with the rest.
      if (kept) p.inFlight.outstandingDone(f.seq);
    }, (err: unknown) => p.log.error({ topic: f.topic, handler: f.handler, err: String(err) }, 'could not hand a retry to the transport'));
  }

  /**
   * A delivery its open circuit did not let run: it waits with the breaker
   * (still counted in the capacity), uses no attempt, and is released when
   * the circuit closes or a half-open permit is free.
   */
  hold(seq: number, lane: number, topic: string, reg: { name: string; breaker: number; handlerId: number }, attempt: number,
    record: Uint8Array | undefined, job: InlineJob | undefined, registration: Registration | undefined, publishedAt: () => number): void {
    const p = this.#p;
    p.inFlight.holdStarted(seq, topic, publishedAt);
    p.breakers.hold(reg.breaker, {
      seq, lane, topic, handler: reg.name, attempt,
      record: record !== undefined ? rewriteRecord(record, [reg.handlerId], attempt, DETACHED_FLAGS) : undefined,
      job: job !== undefined && registration !== undefined
        ? { seq, event: job.event, handlers: [registration], continuation: true, detached: true } : undefined,
    });
    // Only now: the breaker may have released it at once (its circuit closed meanwhile).
    p.inFlight.checkDrainWaiters();
  }

  /** Held deliveries may run again. */
  release(items: HeldDelivery[]): void {
    const p = this.#p;
    let wrote = false;
    for (const h of items) {
      p.inFlight.holdEnded(h.seq);
      if (p.lifecycle.terminated) {
        // The bus is stopping: what a circuit let go now is dead-lettered as stop() would have.
        this.#deadLetterHeld(h, Date.now());
        continue;
      }
      if (h.record !== undefined) {
        p.lanes.writeEncoded(h.lane, h.record);
        wrote = true;
      } else if (h.job !== undefined) p.inline.enqueue(h.lane, h.job);
    }
    if (wrote) p.slots.signalWork();
  }

  #runRetry(item: RetryItem): void {
    const p = this.#p;
    if (p.lifecycle.terminated) return;
    if (item.record !== undefined) {
      p.lanes.writeEncoded(item.lane, item.record);
      p.slots.signalWork();
    } else if (item.job !== undefined) {
      p.inline.enqueue(item.lane, item.job);
    }
  }

  /**
   * The bus stopped: deliveries still waiting for a retry, or held by an open
   * circuit, are dead-lettered (when there is a dead-letter queue; otherwise
   * their events are counted as abandoned), not dropped into thin air. A held
   * delivery's dead letter carries the handler's own last error.
   */
  stop(): void {
    const p = this.#p;
    const now = Date.now();
    for (const item of this.#retries.clear()) {
      if (!p.deadLetters.enabled) continue;
      const last = failureOf(item.failure);
      const f = { ...item.failure, error: `${item.failure.error} (not retried: the bus stopped)` };
      p.inFlight.reply(f.seq, { success: false, error: new BusStoppedError('the bus stopped before the command was retried', last), attempts: f.attempt + 1 });
      p.deadLetters.add(f, item.firstAt, now);
    }
    for (const h of p.breakers.takeHeld()) {
      p.inFlight.holdEnded(h.seq);
      // From a transport: not dead, only not run here. Abandoned, it goes back to the stream for another process.
      const e = p.inFlight.get(h.seq);
      if (e?.kind === 'tracked' && e.remote !== undefined) continue;
      this.#deadLetterHeld(h, now);
    }
  }

  /**
   * A held delivery the bus stops before it ran: dead-lettered (with a
   * dead-letter queue; otherwise its event is counted as abandoned) with the
   * delivery's own last failure if it had one, else its handler's.
   */
  #deadLetterHeld(h: HeldDelivery, now: number): void {
    const p = this.#p;
    if (!p.deadLetters.enabled) return;
    const breaker = h.job?.handlers[0].breaker ?? (h.record ? p.registry.breakerOf(decodeRecord(h.record).handlerIds[0]) : -1);
    const ledger = p.inFlight.get(h.seq)?.failures;
    const own = ledger?.lastOwnFailure.get(h.handler);
    const b = own === undefined ? p.breakers.lastFailure(breaker) : undefined;
    const last = own ?? (b && { error: b.message, errorName: b.name, errorCode: b.code as FailedAttempt['errorCode'], stack: undefined });
    const f: FailedAttempt = {
      seq: h.seq, lane: h.lane, topic: h.topic, handler: h.handler, attempt: h.attempt - 1, breaker, refused: false,
      error: `${last?.error ?? `circuit for handler '${h.handler}' was open`} (not delivered: its circuit was open when the bus stopped)`,
      errorName: last?.errorName, errorCode: last?.errorCode ?? 'ERR_RINGBUS_CIRCUIT_OPEN', stack: last?.stack,
      failure: own !== undefined ? failureOf(own) : new CircuitOpenError(h.handler, b?.error?.()),
      record: h.record, job: h.job,
    };
    p.inFlight.reply(f.seq, {
      success: false, error: new BusStoppedError('the bus stopped while the command waited for its circuit', f.failure), attempts: h.attempt,
    });
    p.deadLetters.add(f, ledger?.firstFailureAt.get(h.handler) ?? now, now);
  }
}
