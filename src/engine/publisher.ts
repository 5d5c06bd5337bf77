/**
 * Publishing: publish, publishAsync and execute apply the capacity strategy
 * (reject, drop the oldest, wait for room) to an event already validated,
 * passed through middleware and encoded, then commit it: counted, given its
 * seq, routed (and filtered: route_filter.ts), and started on its first
 * stage (a record in its lane, or an inline job). Delayed events go to the
 * scheduler (delayed.ts) and come back through publishDue(); with a
 * transport, events go to the stream (transport_publishing.ts) and come back
 * through deliver(). Owns the reusable record every publish encodes into,
 * and event numbering.
 */
import { BackpressureError, BusStoppedError, CircuitOpenError, MiddlewareError, NoHandlerError, RefusedError } from '../errors.js';
import { LANE_COUNT } from '../protocol/layout.js';
import { RecordEncoder, RF_BINARY, RF_COMMAND, RF_CONTINUATION, RF_ENCODED, RF_LANE_SHIFT, RF_TRACKED, RF_UNDEFINED } from '../protocol/record.js';
import { PRIORITY_NAMES } from '../protocol/task.js';
import type { DeadLetterEntry } from '../dead_letter/dead_letter_entry.js';
import type { Registration, Route } from '../router.js';
import { PublishTally } from './publish_tally.js';
import { RouteFilter } from './route_filter.js';
import { TransportPublishing } from './transport_publishing.js';
import type { TopicCounters } from '../metrics/series.js';
import type { RemoteEvent, Transport } from '../transport.js';
import type { BusEvent, CommandResult, PublishAsyncOptions, PublishOptions } from '../types.js';
import type { RemoteDelivery, TrackedEvent } from './in_flight.js';
import type { EngineParts } from './parts.js';
import { decodeValue, encodePublish } from './payload_encoding.js';
import { dueTime } from './delayed.js';
import { checkRemoteHeaders } from './payload_encoding.js';
import type { ScheduledEvent } from '../scheduler/scheduled_event.js';
import { EXECUTE_OPTIONS, PUBLISH_ASYNC_OPTIONS, PUBLISH_OPTIONS, checkCarriedTopic, checkTimeout } from './validation.js';

type Reply = (result: CommandResult) => void;
type Replay = NonNullable<TrackedEvent['replay']>;
/** A delivery a transport brought: its attempts so far, its publish time, and who hears when it settles. */
interface Remote extends RemoteDelivery {
  readonly attempt: number;
  readonly publishedAt: number;
}

export class Publisher {
  readonly #p: EngineParts;
  /** The scratch record: one event at a time is encoded here, then written. */
  readonly encoder = new RecordEncoder();
  #seq = 0;
  /** The event the last commit accepted (see lastEventId). */
  #lastSeq = -1;
  #lastExplicitId: string | undefined = undefined;
  /** Counting of what is refused, dropped or filtered outside a commit. */
  readonly #tally: PublishTally;
  readonly #filter: RouteFilter;
  /** The publish paths with a transport: events go to the stream, not to a lane. */
  readonly #toTransport: TransportPublishing;

  constructor(p: EngineParts) {
    this.#p = p;
    this.#tally = new PublishTally(p);
    this.#filter = new RouteFilter(p);
    this.#toTransport = new TransportPublishing(p, this.encoder, () => ++this.#seq);
  }

  publish(topic: string, payload: unknown, options: PublishOptions | undefined, session: string | undefined): boolean {
    const p = this.#p;
    this.#lastSeq = -1; // set again only if this publish commits an event here
    // Checked before middleware runs: a middleware never sees a call that then throws.
    const dueAt = options !== undefined && (options.delayMs !== undefined || options.at !== undefined) ? dueTime(topic, options) : undefined;
    const lane = encodePublish(this.encoder, topic, payload, options, session, p.codec, PUBLISH_OPTIONS, p.middleware);
    if (lane < 0) return this.#refused(topic);
    if (dueAt !== undefined && dueAt > Date.now()) return p.lifecycle.accepting ? p.delayed.schedule(topic, lane, dueAt) : this.#publishEncoded(topic, payload, lane);
    if (p.transport !== undefined) return this.#toTransport.offer(topic, lane, true);
    return this.#publishEncoded(topic, payload, lane);
  }

  /**
   * A delayed event that is due: published now, if there is room (false:
   * none, the scheduler waits and tries again). `settled` hears when it
   * settles (with a schedule file, its done mark).
   */
  publishDue(e: ScheduledEvent, settled: (() => void) | undefined): boolean {
    const p = this.#p;
    const lane = PRIORITY_NAMES.indexOf(e.priority);
    if (p.transport === undefined && !p.queue.hasRoom()) return false;
    const r = this.encoder;
    r.clear();
    r.setSession(e.sessionId);
    if (e.headers !== undefined) {
      r.setHeaders(JSON.stringify(e.headers));
      r.headerValues = e.headers;
    }
    r.flags = e.payloadFlags;
    r.binary = e.payload;
    r.payloadBytes = e.payload.byteLength;
    r.setId(e.id);
    // Settled for this process once the stream stored it (another process handles it from there); never if it closed first.
    if (p.transport !== undefined) return this.#toTransport.offer(e.topic, lane, false, settled);
    const payload = decodeValue(e.payloadFlags, e.payload, p.codec);
    this.#commit(e.topic, payload, lane, false, undefined, undefined, undefined, undefined, settled);
    return true;
  }

  async publishAsync(topic: string, payload: unknown, options: PublishAsyncOptions | undefined, session: string | undefined): Promise<boolean> {
    const p = this.#p;
    const timeoutMs = checkTimeout(options?.timeoutMs);
    const dueAt = options !== undefined && (options.delayMs !== undefined || options.at !== undefined) ? dueTime(topic, options) : undefined;
    const lane = encodePublish(this.encoder, topic, payload, options, session, p.codec, PUBLISH_ASYNC_OPTIONS, p.middleware);
    if (lane < 0) return this.#refused(topic);
    if (dueAt !== undefined && dueAt > Date.now() && p.lifecycle.accepting) return p.delayed.scheduleAsync(topic, lane, dueAt, timeoutMs);
    const strategy = p.options.queue.strategy;
    if (p.transport !== undefined) return this.#toTransport.offerAsync(p.transport, topic, lane, timeoutMs);
    if (strategy === 'drop-oldest' || !p.lifecycle.accepting) return this.#publishEncoded(topic, payload, lane);
    if (strategy === 'adaptive-rate-limit') {
      const paced = p.queue.pace();
      if (paced) {
        const encoded = this.encoder.snapshot();
        await paced;
        this.encoder.restore(encoded);
      }
    }
    try {
      return await this.#withRoom(topic, timeoutMs, (reserved) => {
        this.#commit(topic, payload, lane, reserved, undefined);
        return true;
      });
    } catch (err) {
      if (err instanceof BusStoppedError) return false;
      throw err;
    }
  }

  /** `localOnly`: a command another process sent here (it must not travel on). */
  async execute(topic: string, payload: unknown, options: PublishAsyncOptions | undefined, session: string | undefined,
    localOnly = false): Promise<CommandResult> {
    const p = this.#p;
    const timeoutMs = checkTimeout(options?.timeoutMs);
    let lane: number;
    try {
      lane = encodePublish(this.encoder, topic, payload, options, session, p.codec, EXECUTE_OPTIONS, localOnly ? undefined : p.middleware, 'command');
    } catch (err) {
      if (err instanceof MiddlewareError) return { success: false, error: err, attempts: 0 };
      throw err;
    }
    if (lane < 0) {
      this.#refused(topic);
      return { success: false, error: new RefusedError(topic, p.middleware.refusedBy), attempts: 0 };
    }
    const route = p.router.commandRoute(topic);
    if (route === undefined && p.transport !== undefined && !localOnly) return this.#toTransport.execute(p.transport, topic, lane, timeoutMs);
    if (route === undefined) return { success: false, error: new NoHandlerError(topic), attempts: 0 };
    const handler = route.stages[0].handlers[0];
    if (!p.breakers.allows(handler.breaker)) {
      return { success: false, error: new CircuitOpenError(handler.name, p.breakers.lastFailure(handler.breaker)?.error?.()), attempts: 0 };
    }
    if (p.options.queue.strategy === 'drop-oldest' && p.lifecycle.accepting && !p.queue.hasRoom() && !this.#dropOldest(lane)) {
      this.#tally.droppedAtPublish(topic);
      const message = `command on topic '${topic}' was dropped: the queue is full of higher-priority events`;
      return { success: false, error: new BackpressureError(topic, 0, 'dropped', message), attempts: 0 };
    }
    try {
      return await this.#withRoom(topic, timeoutMs, (reserved) =>
        new Promise<CommandResult>((resolve) => this.#commit(topic, payload, lane, reserved, resolve)),
      );
    } catch (err) {
      if (err instanceof BackpressureError || err instanceof BusStoppedError) return { success: false, error: err, attempts: 0 };
      throw err;
    }
  }

  /**
   * A dead letter again, to its handler only, with fresh attempts and its
   * event id; false when there is no room. `done` hears how that delivery ended.
   */
  republish(entry: DeadLetterEntry, reg: Registration, done: (ok: boolean) => void): boolean {
    const p = this.#p;
    if (!p.lifecycle.accepting || !p.queue.hasRoom()) return false;
    const { event } = entry;
    const lane = encodePublish(this.encoder, event.topic, event.payload, { priority: event.priority, headers: event.headers }, event.sessionId, p.codec);
    this.encoder.setId(event.id);
    this.#commit(event.topic, event.payload, lane, false, undefined, p.router.single(reg, event.topic), { entryId: entry.id, eventId: event.id, done });
    return true;
  }

  /**
   * A delivery a transport brought, to the route's one handler, at the
   * attempt it reached elsewhere; counted in the queue until it settles
   * (`settled` is told then). The payload is copied out of the transport's
   * message: into the lane ring for a worker handler, decoded for an inline one.
   */
  deliver(ev: RemoteEvent, route: Route, settled: () => void): void {
    const p = this.#p;
    if (route.carriesTopic) {
      // A pattern consumer takes topics other processes published: bounded before anything is counted (a throw: malformed).
      checkCarriedTopic(ev.topic);
      // NATS matches an empty token (written '~') where a pattern here matches none: such an event is not this handler's.
      if (!p.router.patternMatches(route.stages[0].handlers[0].topic, ev.topic)) {
        this.#tally.filtered(ev.topic, 1);
        settled();
        return;
      }
    }
    const r = this.encoder;
    r.clear();
    r.setSession(ev.sessionId);
    if (ev.headers !== undefined) {
      // Another process wrote them: checked here (shape and size) before anything is counted; a throw: malformed.
      r.setHeaders(ev.headers);
      r.headerValues = checkRemoteHeaders(ev.headers, r.headersBytes);
    }
    r.flags = ev.payloadFlags;
    r.payloadBytes = ev.payload.byteLength;
    let payload: unknown;
    if (route.stages[0].inWorker) {
      // The bytes as published (JSON text, codec bytes or raw): workers decode them from the record.
      if (!(ev.payloadFlags & RF_UNDEFINED)) r.binary = ev.payload;
      // A filter sees the payload as published: decoded here only for it.
      if (route.filtered) payload = decodeValue(ev.payloadFlags, ev.payload, p.codec);
    } else {
      payload = decodeValue(ev.payloadFlags, ev.payload, p.codec);
    }
    r.setId(ev.id);
    this.#commit(ev.topic, payload, ev.lane, false, undefined, route, undefined,
      { attempt: ev.attempt, publishedAt: ev.publishedAt, settled, firstFailedAt: ev.firstFailedAt, event: ev });
  }

  /** The id of the event the last publish accepted (for its span; read right after the publish). */
  get lastEventId(): string | undefined {
    if (this.#lastSeq < 0) return undefined;
    return this.#lastExplicitId ?? this.#p.memory.idPrefix + this.#lastSeq;
  }

  backpressureChanged(active: boolean): void {
    const p = this.#p;
    p.log.info({ active, queueSize: p.queue.size, capacity: p.options.queue.capacity }, active ? 'backpressure on' : 'backpressure off');
    // Backpressure turns off as batches end: main must hear of each while it is on.
    if (active) p.slots.wantProgress();
    p.emitter.emit('backpressure', { active });
  }

  /** The event is in the encoder: apply the capacity strategy and commit. */
  #publishEncoded(topic: string, payload: unknown, lane: number): boolean {
    const p = this.#p;
    if (!p.lifecycle.accepting) {
      this.#tally.rejected(topic);
      return false;
    }
    if (!p.queue.hasRoom()) {
      if (p.options.queue.strategy !== 'drop-oldest') {
        this.#tally.rejected(topic);
        return false;
      }
      if (!this.#dropOldest(lane)) {
        // Everything waiting outranks this event: it is the one dropped.
        this.#tally.droppedAtPublish(topic);
        return true;
      }
    }
    this.#commit(topic, payload, lane, false, undefined);
    return true;
  }

  /**
   * With the event in the encoder: commits at once when there is room and
   * nobody waits (so publishAsync and execute keep their call order with
   * publish); otherwise keeps the encoded event aside, waits for room
   * reserved for this caller, and commits it.
   */
  async #withRoom<T>(topic: string, timeoutMs: number, commit: (reserved: boolean) => T): Promise<T> {
    const p = this.#p;
    if (!p.lifecycle.accepting) {
      this.#tally.rejected(topic);
      throw p.lifecycle.stoppedError();
    }
    if (p.queue.waiting === 0 && p.queue.hasRoom()) return commit(false);
    const encoded = this.encoder.snapshot();
    this.encoder.clear();
    const waiting = p.queue.waitForRoom(timeoutMs);
    p.slots.wantProgress(); // room appears as batches end: main must hear of each
    const granted = await waiting;
    if (!granted) {
      this.#tally.rejected(topic);
      if (!p.lifecycle.accepting) throw p.lifecycle.stoppedError();
      throw new BackpressureError(topic, timeoutMs);
    }
    if (!p.lifecycle.accepting) {
      p.queue.release();
      this.#tally.rejected(topic);
      throw p.lifecycle.stoppedError();
    }
    this.encoder.restore(encoded);
    try {
      return commit(true);
    } catch (err) {
      // Nothing was counted (routing failed before): give the reserved room back.
      p.queue.release();
      throw err;
    }
  }

  /**
   * Accepts the event in the encoder and starts its first stage. The route is
   * resolved first: if that throws (a full registry), nothing was counted.
   */
  #commit(topic: string, payload: unknown, lane: number, reserved: boolean, reply: Reply | undefined,
    routeOverride?: Route, replay?: Replay, remote?: Remote, onSettled?: () => void): void {
    const p = this.#p;
    let route = routeOverride ?? (reply ? p.router.commandRoute(topic) : p.router.eventRoute(topic));
    const backpressureOn = p.queue.accept(reserved);
    const seq = ++this.#seq;
    // For the publish's span (no string made here: lastEventId makes it when asked).
    this.#lastSeq = seq;
    this.#lastExplicitId = replay?.eventId ?? this.encoder.id;
    // Epoch ms with sub-ms precision, comparable across threads (each thread's timeOrigin + now()); a remote
    // event keeps its publisher's, so its end-to-end time spans the cluster.
    const publishedAt = remote?.publishedAt ?? performance.timeOrigin + performance.now();
    if (remote === undefined) {
      // A remote event was counted as published by the process that published it.
      p.counters.published++;
      (route?.counters ?? p.metrics.countersOf(topic)).published++;
    }
    const attempt = remote?.attempt ?? 0;
    const r = this.encoder;
    // A replayed dead letter goes to its handler whatever the handler's filter would say now; so does a retry
    // that came back through a transport (the filter let its first attempt through).
    if (route?.filtered === true && replay === undefined && (remote === undefined || remote.attempt === 0)) {
      route = this.#filter.apply(route, topic, payload, lane, r.id ?? p.memory.idPrefix + seq, r);
    }
    if (route === undefined || route.stages.length === 0) {
      // No handler (or the command handler went away while waiting for room), or every filter said no.
      reply?.({ success: false, error: new NoHandlerError(topic), attempts: 0 });
      r.clear();
      if (backpressureOn) this.backpressureChanged(true);
      p.inFlight.settle(1);
      remote?.settled();
      onSettled?.();
      return;
    }
    const tracked = reply !== undefined || replay !== undefined || remote !== undefined || onSettled !== undefined || route.stages.length > 1;
    if (tracked) {
      p.inFlight.track({
        kind: 'tracked', seq, topic, publishedAt, lane, payload, payloadFlags: r.flags, text: r.text, payloadBytes: r.payloadBytes,
        // Bytes to write again for a later worker stage: codec bytes, or JSON bytes that came as bytes (a due event).
        encoded: r.text === undefined && !(r.flags & RF_BINARY) ? r.binary : undefined,
        sessionId: r.session, headers: r.headers, headerValues: r.headerValues, id: replay?.eventId ?? r.id, route, stage: 0, reply, replied: false, replay,
        remote: remote === undefined ? undefined : { settled: remote.settled, firstFailedAt: remote.firstFailedAt, event: remote.event },
        onSettled, failures: undefined,
      });
    }
    const stage = route.stages[0];
    if (stage.inWorker) {
      // A remote delivery is a continuation: it was accepted by the cluster, drop-oldest never takes it.
      r.flags |= (lane << RF_LANE_SHIFT) | (tracked ? RF_TRACKED : 0) | (reply ? RF_COMMAND : 0) | (remote ? RF_CONTINUATION : 0);
      r.topicId = route.topicId;
      if (route.carriesTopic) r.setTopic(topic);
      r.attempt = attempt;
      r.seq = seq;
      r.publishedAt = publishedAt;
      r.handlerIds = stage.handlerIds;
      p.lanes.write(lane, r);
    } else {
      const event: BusEvent = {
        id: replay?.eventId ?? r.id ?? p.memory.idPrefix + seq, topic, payload, priority: PRIORITY_NAMES[lane], sessionId: r.session, attempt, publishedAt,
        headers: r.headerValues,
      };
      p.inline.enqueue(lane, { seq, event, handlers: stage.handlers });
    }
    r.clear();
    // Only now, with the event written: a listener may publish in turn.
    if (backpressureOn) this.backpressureChanged(true);
  }

  /** Drops the oldest waiting event of the lowest lane at or below `lane`; false if there is none. */
  #dropOldest(lane: number): boolean {
    const p = this.#p;
    for (let l = LANE_COUNT - 1; l >= lane; l--) {
      if (p.lanes.takeOldest(l)) {
        const taken = p.lanes.taken;
        this.#tally.dropped(p.registrar.topicName(taken.topicId));
        p.inFlight.dropped(taken.seq, taken.tracked);
        return true;
      }
      const job = p.inline.takeOldest(l);
      if (job) {
        this.#tally.dropped(job.event.topic);
        p.inFlight.dropped(job.seq, p.inFlight.get(job.seq) !== undefined);
        return true;
      }
    }
    return false;
  }

  /** A middleware refused the publish: not accepted, counted as filtered. */
  #refused(topic: string): false {
    this.encoder.clear();
    this.#tally.filtered(topic, 1);
    return false;
  }

  /** The series a topic is counted in outside its route's commit (see PublishTally). */
  countersOf(topic: string): TopicCounters {
    return this.#tally.countersOf(topic);
  }
}
