/**
 * What happens to a failed attempt at one delivery (event × handler),
 * wherever it ran: the breaker hears of it, listeners get 'handler-error',
 * and the delivery either runs again after its backoff (holding its place in
 * the capacity) or, out of attempts, is dead-lettered (or, with no
 * dead-letter queue, counted as a final failure). Owns the retry timer heap.
 */
import { decodeRecord, rewriteRecord, RF_CONTINUATION, RF_TRACKED } from '../protocol/record.js';
import { ExponentialBackoff } from '../retry/backoff.js';
import { RetryScheduler } from '../retry/retry_scheduler.js';
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
  error: string;
  /** An open circuit refused it: a failed attempt for the retry policy, not a handler failure for the breaker. */
  refused: boolean;
  /** A worker delivery: the record as it ran, and the handler's registry id. */
  record?: Uint8Array;
  handlerId?: number;
  /** An inline delivery: the job and the handler. */
  job?: InlineJob;
  reg?: Registration;
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
    if (!f.refused) p.breakers.onFailure(f.handler);
    if (p.emitter.listenerCount('handler-error') > 0) {
      const eventId = f.job?.event.id ?? (f.record ? decodeRecord(f.record).id : undefined) ?? p.memory.idPrefix + f.seq;
      const event: HandlerErrorEvent = { eventId, topic: f.topic, handler: f.handler, attempt: f.attempt, error: f.error };
      p.emitter.emit('handler-error', event);
    }
    const ledger = p.inFlight.ledger(f.seq, f.topic, () => f.job?.event.publishedAt ?? (f.record ? decodeRecord(f.record).publishedAt : 0));
    ledger.failedAttempt = f.attempt;
    const now = Date.now();
    const firstAt = ledger.firstFailureAt.get(f.handler) ?? now;
    const retry = p.options.retry;
    const canRetry = retry && !p.lifecycle.terminated && f.attempt < retry.maxRetries &&
      (f.job !== undefined || (f.record !== undefined && f.handlerId !== undefined));
    if (canRetry) {
      ledger.firstFailureAt.set(f.handler, firstAt);
      ledger.outstanding++;
      p.counters.retried++;
      handlerCounters.retried++;
      const next = f.attempt + 1;
      this.#retries.schedule(this.#backoff!.delayMs(next), {
        lane: f.lane,
        record: f.record && f.handlerId !== undefined ? rewriteRecord(f.record, [f.handlerId], next, RF_TRACKED | RF_CONTINUATION) : undefined,
        job: f.job && f.reg ? { seq: f.seq, event: { ...f.job.event, attempt: next }, handlers: [f.reg], continuation: true } : undefined,
        failure: f,
        firstAt,
      });
      return;
    }
    ledger.firstFailureAt.delete(f.handler);
    p.inFlight.reply(f.seq, { success: false, error: f.error, attempts: f.attempt + 1 });
    if (p.deadLetters.enabled) {
      ledger.outstanding++;
      p.deadLetters.add(f, firstAt, now);
    }
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
   * The bus stopped: deliveries still waiting for a retry are dead-lettered
   * (when there is a dead-letter queue), not dropped into thin air.
   */
  stop(): void {
    const p = this.#p;
    for (const item of this.#retries.clear()) {
      if (!p.deadLetters.enabled) continue;
      const f = { ...item.failure, error: `${item.failure.error} (not retried: the bus stopped)` };
      p.inFlight.reply(f.seq, { success: false, error: f.error, attempts: f.attempt + 1 });
      p.deadLetters.add(f, item.firstAt, Date.now());
    }
  }
}
