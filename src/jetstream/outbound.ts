/**
 * The publishing side: events offered by publish() are packed per topic into
 * envelopes (sealed at `batchEvents`, `batchBytes`, or the end of the
 * event-loop turn), each published once with its own message id and sent
 * again with the same id until the server stores it (the stream's
 * de-duplication window makes a resend a no-op). Owns the publish window:
 * events offered and not yet stored are bounded by `publishWindow`, so a
 * slow or unreachable server turns into `publish() === false` and waiting
 * `publishAsync()` callers, never into unbounded memory.
 */
import { randomBytes } from 'node:crypto';
import { build, type Histogram } from 'hdr-histogram-js';
import type { Logger } from '../logger.js';
import { errorMessage } from '../protocol/error_text.js';
import type { RecordEncoder } from '../protocol/record.js';
import { RateLimitedLog } from '../rate_limited_log.js';
import { EnvelopeWriter } from './envelope.js';
import type { ResolvedJetStreamOptions } from './options.js';
import { eventSubject } from './subjects.js';

/** Publishes one message and resolves once the server stored it (or already had that id). */
export type Sender = (subject: string, data: Uint8Array, msgID: string) => Promise<void>;

interface Sealed {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly msgID: string;
  readonly count: number;
  /** Told once the server stored it (a delayed event's done mark); never when the transport closes first. */
  readonly onStored: (() => void)[] | undefined;
  tries: number;
  /** performance.now() when last sent: for the publish-ack time. */
  sentAt: number;
}

interface Batch {
  readonly writer: EnvelopeWriter;
  readonly subject: string;
  onStored: (() => void)[] | undefined;
}

/** Resends back off from 100 ms to this. */
const MAX_RESEND_DELAY_MS = 2000;

export class Outbound {
  readonly #o: ResolvedJetStreamOptions;
  readonly #codecName: string;
  readonly #log: RateLimitedLog;
  readonly #batches = new Map<string, Batch>();
  /** Events offered and not yet stored. */
  #pending = 0;
  #stored = 0;
  #retries = 0;
  /** Publish-ack times in µs, since the start. */
  readonly #ackTimes: Histogram = build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 2 });
  #sender: Sender | undefined;
  /** While the transport makes the stream and consumers again: sealed envelopes wait (see suspend()). */
  #suspended = false;
  /** Told of a publish that failed (the transport checks the stream still exists). */
  onFailure: (() => void) | undefined;
  /** Envelopes sealed while there was no sender (before start, after close). */
  readonly #unsent: Sealed[] = [];
  readonly #resendTimers = new Set<NodeJS.Timeout>();
  #flushScheduled = false;
  #envelopeSeq = 0;
  /** Unique per bus: with the sequence, an envelope's message id. */
  readonly #producerId = randomBytes(9).toString('base64url');
  #maxBytes: number;
  readonly #roomWaiters: { resolve: (ok: boolean) => void; timer: NodeJS.Timeout | undefined }[] = [];
  readonly #flushWaiters: (() => void)[] = [];

  constructor(o: ResolvedJetStreamOptions, codecName: string, log: Logger) {
    this.#o = o;
    this.#codecName = codecName;
    this.#log = new RateLimitedLog(log, 5000);
    this.#maxBytes = o.batchBytes;
  }

  get pending(): number {
    return this.#pending;
  }

  get stored(): number {
    return this.#stored;
  }

  get retries(): number {
    return this.#retries;
  }

  /** Publish-ack time percentile, ms (0 before the first ack). */
  ackMs(percentile: number): number {
    return this.#ackTimes.totalCount === 0 ? 0 : this.#ackTimes.getValueAtPercentile(percentile) / 1000;
  }

  /** The connection is up: `maxPayload` is the server's limit on one message. Sends what waited. */
  attach(sender: Sender, maxPayload: number): void {
    this.#sender = sender;
    // Room for NATS headers (the message id) under the server's limit.
    this.#maxBytes = Math.min(this.#o.batchBytes, maxPayload - 1024);
    for (const s of this.#unsent.splice(0)) this.#send(s);
  }

  /**
   * Holds sends back until resume(): after a server came back without the
   * stream, an event stored before its handlers' consumers exist again would
   * be dropped (Interest retention keeps messages only for consumers).
   */
  suspend(): void {
    this.#suspended = true;
  }

  resume(): void {
    this.#suspended = false;
    for (const s of this.#unsent.splice(0)) this.#send(s);
  }

  /** No more sends: what is not stored yet stays counted as pending (the caller reports it). */
  detach(): void {
    this.#sender = undefined;
    for (const t of this.#resendTimers) clearTimeout(t);
    this.#resendTimers.clear();
    for (const w of this.#roomWaiters.splice(0)) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
    for (const resolve of this.#flushWaiters.splice(0)) resolve();
  }

  /**
   * Throws a RangeError naming the topic when one event could never fit in a
   * message. `onStored` (optional) hears when this event's message is stored.
   */
  offer(topic: string, lane: number, r: RecordEncoder, id: string, publishedAt: number, onStored?: () => void): boolean {
    if (this.#pending >= this.#o.publishWindow) return false;
    let b = this.#batches.get(topic);
    if (b === undefined) {
      const single = 64 + Buffer.byteLength(id) + r.sessionBytes + r.headersBytes + r.payloadBytes + 3 * topic.length;
      if (single > this.#maxBytes) {
        throw new RangeError(`event for topic '${topic}' is about ${single} bytes; a stream message holds at most ${this.#maxBytes} ` +
          '(transport.jetstream.batchBytes, and the server\'s max_payload)');
      }
      b = { writer: new EnvelopeWriter(this.#codecName, topic), subject: eventSubject(this.#o.subjectPrefix, topic), onStored: undefined };
      this.#batches.set(topic, b);
    } else if (b.writer.bytes + 64 + r.payloadBytes + r.sessionBytes + r.headersBytes + id.length * 3 > this.#maxBytes) {
      this.#seal(topic, b);
      return this.offer(topic, lane, r, id, publishedAt, onStored);
    }
    b.writer.add(r, lane, 0, id, publishedAt);
    if (onStored !== undefined) (b.onStored ??= []).push(onStored);
    this.#pending++;
    if (b.writer.count >= this.#o.batchEvents) this.#seal(topic, b);
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#sealAll);
    }
    return true;
  }

  /** Resolves true once offer() may succeed, false after `timeoutMs` (or when the transport closes). */
  waitForRoom(timeoutMs: number): Promise<boolean> {
    if (this.#pending < this.#o.publishWindow && this.#roomWaiters.length === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w: { resolve: (ok: boolean) => void; timer: NodeJS.Timeout | undefined } = { resolve, timer: undefined };
      if (timeoutMs !== Infinity) {
        w.timer = setTimeout(() => {
          const i = this.#roomWaiters.indexOf(w);
          if (i >= 0) this.#roomWaiters.splice(i, 1);
          resolve(false);
        }, timeoutMs);
      }
      this.#roomWaiters.push(w);
    });
  }

  /** Seals what is batched now and resolves once every offered event is stored (or the transport closed). */
  flushed(): Promise<void> {
    this.#sealAll();
    if (this.#pending === 0 || this.#sender === undefined) return Promise.resolve();
    return new Promise((resolve) => this.#flushWaiters.push(resolve));
  }

  readonly #sealAll = (): void => {
    this.#flushScheduled = false;
    for (const [topic, b] of this.#batches) this.#seal(topic, b);
  };

  #seal(topic: string, b: Batch): void {
    this.#batches.delete(topic);
    if (b.writer.count === 0) return;
    const s: Sealed = { subject: b.subject, data: b.writer.finish(), msgID: `${this.#producerId}.${++this.#envelopeSeq}`, count: b.writer.count,
      onStored: b.onStored, tries: 0, sentAt: 0 };
    if (this.#sender === undefined) this.#unsent.push(s);
    else this.#send(s);
  }

  #send(s: Sealed): void {
    const sender = this.#sender;
    if (sender === undefined || this.#suspended) {
      this.#unsent.push(s);
      return;
    }
    s.tries++;
    s.sentAt = performance.now();
    sender(s.subject, s.data, s.msgID).then(() => this.#storedEnvelope(s), (err: unknown) => this.#failed(s, err));
  }

  #storedEnvelope(s: Sealed): void {
    this.#ackTimes.recordValue(Math.max(1, Math.round((performance.now() - s.sentAt) * 1000)));
    this.#pending -= s.count;
    this.#stored += s.count;
    if (s.onStored !== undefined) for (const stored of s.onStored) stored();
    while (this.#roomWaiters.length > 0 && this.#pending < this.#o.publishWindow) {
      const w = this.#roomWaiters.shift()!;
      clearTimeout(w.timer);
      w.resolve(true);
    }
    if (this.#pending === 0) for (const resolve of this.#flushWaiters.splice(0)) resolve();
  }

  /** Not stored (timeout, server unreachable, no stream): sent again with the same id, backing off. */
  #failed(s: Sealed, err: unknown): void {
    this.#retries++;
    this.onFailure?.();
    this.#log.warn({ subject: s.subject, events: s.count, tries: s.tries, err: errorMessage(err) },
      'publish to JetStream not acknowledged; sending again (same message id: stored once)');
    if (this.#sender === undefined) {
      this.#unsent.push(s);
      return;
    }
    const timer = setTimeout(() => {
      this.#resendTimers.delete(timer);
      this.#send(s);
    }, Math.min(MAX_RESEND_DELAY_MS, 100 * 2 ** Math.min(s.tries - 1, 5)));
    this.#resendTimers.add(timer);
  }
}
