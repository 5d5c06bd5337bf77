/**
 * Dead-lettering: turns a delivery out of attempts into a DeadLetterEntry,
 * persists the entries of one event-loop turn in one write before
 * acknowledging them (settling their events), and publishes entries again
 * when users replay them. Owns the dead-letter queue and its file sink.
 */
import { DeadLetterQueue, type DeadLetters } from '../dead_letter/dead_letter_queue.js';
import type { DeadEvent, DeadLetterEntry } from '../dead_letter/dead_letter_entry.js';
import { JsonLinesDeadLetterSink } from '../dead_letter/json_lines_sink.js';
import type { DeadLetterSink } from '../dead_letter/dead_letter_sink.js';
import { errorMessage } from '../protocol/error_text.js';
import { MAX_EVENT_ID_BYTES } from '../protocol/limits.js';
import { decodeRecord } from '../protocol/record.js';
import { PRIORITY_NAMES } from '../protocol/task.js';
import { RateLimitedLog } from '../rate_limited_log.js';
import type { Registration } from '../router.js';
import { failureOf, type FailedAttempt } from './failure_policy.js';
import { createHash } from 'node:crypto';

/** The dead-letter id of one delivery (event × handler), the same in every process. */
function deliveryEntryId(eventId: string, topic: string, handler: string, run: string): string {
  return `dl-${createHash('sha256').update(`${eventId}\0${topic}\0${handler}\0${run}`).digest('base64url').slice(0, 22)}`;
}
import type { EngineParts } from './parts.js';

export class DeadLettering {
  readonly #p: EngineParts;
  /** Always there (empty when the feature is off), so `bus.deadLetters` needs no check. */
  readonly queue: DeadLetterQueue;
  readonly enabled: boolean;
  readonly #sink: DeadLetterSink | undefined;
  #batch: { entry: DeadLetterEntry; seq: number; replayDone: ((ok: boolean) => void) | undefined }[] = [];
  #entrySeq = 0;
  readonly #log: RateLimitedLog;

  constructor(p: EngineParts) {
    this.#p = p;
    const options = p.options.deadLetter;
    this.enabled = options !== false;
    // With a transport, the cluster's dead-letter stream; else the file, when there is a path.
    this.#sink = !options ? undefined : p.transport?.deadLetterSink ??
      (options.path !== undefined ? new JsonLinesDeadLetterSink(options.path, { maxFileBytes: options.maxFileBytes }) : undefined);
    this.queue = new DeadLetterQueue({
      capacity: options ? options.capacity : 1,
      maxBytes: options ? options.maxBytes : 1024,
      sink: this.#sink,
      log: p.log,
      // Payloads of a structured or custom codec are stored in the file as its bytes (JSON cannot hold a Map).
      codec: p.codec.isJson ? undefined : p.codec,
      checkReplayable: (entry) => this.#registration(entry),
      republish: (entry, done) => p.publisher.republish(entry, this.#registration(entry), done),
    });
    this.#log = new RateLimitedLog(p.log, 1000);
  }

  get public(): DeadLetters {
    return this.queue;
  }

  /** Opens the file and loads what is still dead (at start); throws naming the path. */
  async start(): Promise<void> {
    try {
      await this.queue.start();
    } catch (err) {
      const where = this.#sink?.path.startsWith('nats ') ? this.#sink.path : `deadLetter.path ${this.#sink?.path}`;
      throw new Error(`cannot load dead letters from ${where}: ${errorMessage(err)}`);
    }
  }

  /** Queues the dead letter of a delivery out of attempts; written with the rest of this turn's. */
  add(f: FailedAttempt, firstAttemptAt: number, lastAttemptAt: number): void {
    const e = this.#p.inFlight.get(f.seq);
    const replay = e?.kind === 'tracked' ? e.replay : undefined;
    // A delivery from a transport: the same id in whichever process dead-letters it, so a process that dies
    // after storing its dead letter (and before acknowledging the delivery) and the one that runs the last
    // attempt again write one entry, not two. A dead letter handed back (another run) that fails again is a new
    // entry: the hand-back ends the old one, possibly after this one is written.
    const tracked = e?.kind === 'tracked' ? e : undefined;
    const remote = tracked?.remote;
    const id = replay?.entryId ??
      (remote !== undefined && tracked!.id !== undefined ? deliveryEntryId(tracked!.id, f.topic, f.handler, remote.event.run) : undefined);
    const entry = this.#entry(f, firstAttemptAt, lastAttemptAt, id);
    this.#batch.push({ entry, seq: f.seq, replayDone: replay?.done });
    if (this.#batch.length === 1) queueMicrotask(this.flush);
  }

  /** Persists the dead letters of this turn in one write, then acknowledges them. */
  readonly flush = (): void => {
    const batch = this.#batch;
    if (batch.length === 0) return;
    this.#batch = [];
    const p = this.#p;
    try {
      this.queue.add(batch.map((b) => b.entry));
    } catch (err) {
      p.log.error({ err: errorMessage(err), path: this.#sink?.path, entries: batch.length },
        'could not write dead letters to their file; kept in memory only');
      this.queue.restore(batch.map((b) => b.entry));
    }
    for (const { entry, seq, replayDone } of batch) {
      p.counters.deadLettered++;
      p.metrics.handler(entry.handler).deadLettered++;
      this.#log.warn({ handler: entry.handler, topic: entry.event.topic, eventId: entry.event.id, error: entry.error, attempts: entry.attempts },
        'delivery dead-lettered');
      p.emitter.emit('dead-letter', entry);
      // A replayed entry that failed again: its new attempts are persisted under the same id first.
      replayDone?.(false);
      p.inFlight.outstandingDone(seq);
    }
  };

  /** At stop: what is pending is written, the file closed, and the end of a storm reported. */
  stop(): void {
    this.flush();
    this.queue.stop();
    this.#log.flush('deliveries dead-lettered');
  }

  #entry(f: FailedAttempt, firstAttemptAt: number, lastAttemptAt: number, id: string | undefined): DeadLetterEntry {
    const p = this.#p;
    let event: DeadEvent;
    if (f.job !== undefined) {
      const e = f.job.event;
      event = { id: e.id, topic: e.topic, payload: e.payload, priority: e.priority, sessionId: e.sessionId, publishedAt: e.publishedAt };
      if (e.headers !== undefined) event.headers = e.headers;
    } else {
      const d = f.record ? decodeRecord(f.record, p.codec.codec) : undefined;
      const t = p.inFlight.get(f.seq);
      const tracked = t?.kind === 'tracked' ? t : undefined;
      event = {
        id: d?.id ?? tracked?.id ?? p.memory.idPrefix + f.seq, topic: f.topic, payload: d ? d.payload : tracked?.payload,
        priority: PRIORITY_NAMES[f.lane], sessionId: d ? d.sessionId : tracked?.sessionId, publishedAt: d?.publishedAt ?? t?.publishedAt ?? 0,
      };
      const headers = d ? d.headers : tracked?.headerValues;
      if (headers !== undefined) event.headers = headers;
    }
    const via = p.router.target(event.topic, f.handler)?.topic;
    const entry: DeadLetterEntry = {
      id: id ?? `${p.memory.idPrefix}dl${++this.#entrySeq}`, event, handler: f.handler, ...(via !== undefined && via !== event.topic ? { subscription: via } : {}),
      error: f.error,
      ...(f.errorName ? { errorName: f.errorName } : {}), errorCode: f.errorCode, attempts: f.attempt + 1, firstAttemptAt, lastAttemptAt,
    };
    // Not enumerable: the file and copies keep the plain fields; this process's users get the very Error object.
    Object.defineProperty(entry, 'failure', { value: failureOf(f), enumerable: false });
    return entry;
  }

  /** The handler a dead letter goes back to; throws a RangeError naming the entry when it cannot be replayed. */
  #registration(entry: DeadLetterEntry): Registration {
    const reg = this.#p.router.target(entry.event.topic, entry.handler);
    if (reg === undefined) {
      throw new RangeError(`cannot replay dead letter ${entry.id}: no handler '${entry.handler}' on topic '${entry.event.topic}'`);
    }
    if (Buffer.byteLength(entry.event.id) > MAX_EVENT_ID_BYTES) {
      throw new RangeError(`cannot replay dead letter ${entry.id}: its event id is longer than ${MAX_EVENT_ID_BYTES} bytes`);
    }
    return reg;
  }
}
