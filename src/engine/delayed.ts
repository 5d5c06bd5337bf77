/**
 * Delayed events on the engine's side: a publish with `delayMs` or `at`
 * goes to the scheduler (src/scheduler/) instead of a lane, and comes back
 * as a publish when due. Owns the glue both ways (the encoded event into a
 * ScheduledEvent, a due one back into the publisher's record), the
 * at-least-once bookkeeping with a schedule file (a done mark once the
 * event settled), and `bus.scheduled`, what users see of pending ones.
 *
 * A delayed event counts as scheduled until due; then it is published
 * (counted then, its `publishedAt` the due time) and handled like any other.
 */
import { BackpressureError } from '../errors.js';
import { RF_BINARY, RF_ENCODED, RF_UNDEFINED } from '../protocol/record.js';
import { PRIORITY_NAMES } from '../protocol/task.js';
import { Scheduler } from '../scheduler/scheduler.js';
import type { ScheduledEvent } from '../scheduler/scheduled_event.js';
import type { EngineParts } from './parts.js';
import type { ScheduledEventInfo, ScheduledEvents } from '../scheduled_events.js';
import { decodeValue } from './payload_encoding.js';
import { checkCarriedTopic } from './validation.js';
import { errorMessage } from '../protocol/error_text.js';
import { RateLimitedLog } from '../rate_limited_log.js';

/** The due time of a publish's `delayMs` / `at`, or undefined for an immediate publish. */
export function dueTime(topic: string, options: { delayMs?: unknown; at?: unknown } | undefined): number | undefined {
  if (options === undefined) return undefined;
  const { delayMs, at } = options;
  if (delayMs === undefined && at === undefined) return undefined;
  if (delayMs !== undefined && at !== undefined) throw new TypeError(`publish options for topic '${topic}': give delayMs or at, not both`);
  if (delayMs !== undefined) {
    if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0) {
      throw new RangeError(`delayMs for topic '${topic}' must be a finite number >= 0, got ${String(delayMs)}`);
    }
    return Date.now() + delayMs;
  }
  const ms = at instanceof Date ? at.getTime() : at;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw new TypeError(`at for topic '${topic}' must be a Date or epoch milliseconds, got ${at instanceof Date ? 'an invalid Date' : String(at)}`);
  }
  return ms;
}

export class Delayed {
  readonly #p: EngineParts;
  readonly scheduler: Scheduler;
  readonly durable: boolean;
  readonly public: ScheduledEvents;
  #seq = 0;
  /** Due events that could not be published: one line a second at most. */
  readonly #log: RateLimitedLog;

  constructor(p: EngineParts) {
    this.#p = p;
    this.#log = new RateLimitedLog(p.log, 1000);
    const o = p.options.scheduler;
    this.durable = o.path !== undefined;
    this.scheduler = new Scheduler({
      capacity: o.capacity, path: o.path, log: p.log, codec: p.codec.isJson ? undefined : p.codec.name,
      due: (e) => this.#due(e),
      whenRoom: () => this.#whenRoom(),
    });
    const info = (e: ScheduledEvent): ScheduledEventInfo => ({
      id: e.id, topic: e.topic, payload: decodeValue(e.payloadFlags, e.payload, p.codec), priority: e.priority, sessionId: e.sessionId,
      headers: e.headers, dueAt: e.dueAt, publishedAt: e.publishedAt,
    });
    this.public = Object.freeze({
      list: (options?: { topic?: string; limit?: number; offset?: number }) => this.scheduler.list(options).map(info),
      count: (options?: { topic?: string }) => this.scheduler.count(options),
      get: (id: string) => {
        const e = this.scheduler.get(id);
        return e === undefined ? undefined : info(e);
      },
      cancel: (id: string) => this.scheduler.cancel(id),
    });
  }

  get size(): number {
    return this.scheduler.size;
  }

  /** The event in the publisher's encoder, due at `dueAt`: kept by the scheduler; false (counted as rejected) when it is full. */
  schedule(topic: string, lane: number, dueAt: number): boolean {
    const e = this.#event(topic, lane, dueAt);
    if (!this.scheduler.add(e)) return this.#rejected(topic);
    return true;
  }

  /** schedule(), waiting up to `timeoutMs` for room, and resolving once the event is in the schedule file (with a path). */
  async scheduleAsync(topic: string, lane: number, dueAt: number, timeoutMs: number): Promise<boolean> {
    const p = this.#p;
    const e = this.#event(topic, lane, dueAt);
    while (!this.scheduler.add(e)) {
      if (!p.lifecycle.accepting) return this.#rejected(topic);
      if (!(await this.scheduler.waitForRoom(timeoutMs))) {
        this.#rejected(topic);
        if (!p.lifecycle.accepting) return false;
        throw new BackpressureError(topic, timeoutMs, 'timeout', `no room among the scheduler's delayed events for topic '${topic}' within ${timeoutMs} ms`);
      }
    }
    try {
      await this.scheduler.durable(e.id);
    } catch (err) {
      // Not on disk: the caller hears so, and the event is not kept half-promised.
      this.scheduler.cancel(e.id);
      throw err;
    }
    return true;
  }

  /** The encoder's event as a ScheduledEvent (its payload bytes copied: the caller may reuse a Uint8Array). */
  #event(topic: string, lane: number, dueAt: number): ScheduledEvent {
    const p = this.#p;
    const r = p.publisher.encoder;
    // What an immediate publish would refuse now is refused now, not when due (a wildcard-routed topic's length).
    if (p.router.hasPatterns && p.router.eventRoute(topic).carriesTopic) checkCarriedTopic(topic);
    const flags = r.flags & (RF_BINARY | RF_ENCODED | RF_UNDEFINED);
    const payload = r.text !== undefined ? Buffer.from(r.text, 'utf8') : r.binary !== undefined ? r.binary.slice() : new Uint8Array(0);
    const e: ScheduledEvent = {
      id: `${p.memory.idPrefix}d${++this.#seq}`, topic, dueAt, publishedAt: Date.now(), priority: PRIORITY_NAMES[lane], sessionId: r.session,
      headers: r.headerValues, payloadFlags: flags, payload,
    };
    r.clear();
    return e;
  }

  #rejected(topic: string): false {
    const p = this.#p;
    p.publisher.encoder.clear();
    p.counters.rejected++;
    p.publisher.countersOf(topic).rejected++;
    return false;
  }

  /**
   * A due event, published now; false when there is no room (the scheduler
   * waits for `#whenRoom` and tries again). One that cannot be published at
   * all (its route or message refuses it: a RangeError, a TypeError) would
   * hold up every later one: it is counted as rejected, logged, and taken
   * out (from the file too).
   */
  #due(e: ScheduledEvent): boolean {
    const p = this.#p;
    if (!p.lifecycle.accepting) return false;
    const settled = this.durable ? (): void => this.scheduler.settled(e.id) : undefined;
    try {
      return p.publisher.publishDue(e, settled);
    } catch (err) {
      p.publisher.encoder.clear();
      p.counters.rejected++;
      p.publisher.countersOf(e.topic).rejected++;
      this.#log.warn({ topic: e.topic.length > 64 ? `${e.topic.slice(0, 64)}…` : e.topic, eventId: e.id, err: errorMessage(err) },
        'a due delayed event could not be published; rejected');
      settled?.();
      return true;
    }
  }

  /** Resolves when a due event may find room: in the queue, or in the transport's publish window. */
  #whenRoom(): Promise<void> {
    const p = this.#p;
    if (!p.lifecycle.accepting) return new Promise<void>(() => {}); // the scheduler's stop() ends the wait
    if (p.transport !== undefined) return p.transport.waitForRoom(Infinity).then(() => undefined);
    const waiting = p.queue.waitForRoom(Infinity);
    p.slots.wantProgress(); // room appears as batches end: main must hear of each
    // The room is not kept for this caller: the scheduler's next try takes it (or waits again).
    return waiting.then((granted) => {
      if (granted) p.queue.release();
    });
  }

  /** At stop, after everything handed over settled or was abandoned: without a file, what is pending is dropped and counted. */
  async stop(): Promise<void> {
    if (!this.durable) this.#p.counters.abandoned += this.scheduler.size;
    await this.scheduler.stop();
  }
}
