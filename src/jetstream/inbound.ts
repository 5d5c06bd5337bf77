/**
 * The consuming side: one durable pull consumer per (topic, handler) this
 * process registered, so every process with that handler competes for that
 * handler's deliveries and a process without it never sees them. Envelopes
 * are fetched only while this process has room (`queue.capacity` deliveries
 * unsettled at most: the rest of a fetched envelope waits here, unacked),
 * fed to the engine one delivery at a time, and acknowledged once every
 * delivery in them settled (processed, dead-lettered or finally failed).
 * While any is unsettled the envelope's ack deadline is pushed back
 * (`working()`), so long handlers keep their deliveries; a process that
 * dies stops doing that, and the server gives them to a survivor.
 */
import type { Consumer, JsMsg } from '@nats-io/jetstream';
import type { Logger } from '../logger.js';
import { errorMessage } from '../protocol/error_text.js';
import { RateLimitedLog } from '../rate_limited_log.js';
import type { Registration, Route } from '../router.js';
import type { RemoteEvent, TransportHost } from '../transport.js';
import { readEnvelope } from './envelope.js';
import type { ResolvedJetStreamOptions } from './options.js';

/** Sends events of one handler to its retry consumer in one message; true once stored. */
type Requeue = (handler: string, events: RemoteEvent[], msgID: string) => Promise<boolean>;

/** A fetched envelope: fed to the engine from `next`, acknowledged when nothing is open and all were fed. */
interface Held {
  readonly msg: JsMsg;
  readonly events: RemoteEvent[];
  next: number;
  /** Fed and not settled. */
  open: number;
  readonly consumer: HandlerConsumer;
  /** Handed back (nak): deliveries of it that settle later must not acknowledge it. */
  gone: boolean;
  /** 1 for each event whose delivery settled here. */
  readonly settled: Uint8Array;
}

/** On a retry: epoch ms before which its next attempt must not run. */
export const NOT_BEFORE_HEADER = 'Ringbus-Not-Before';
/** On a retry: epoch ms of the delivery's first failure (for its dead letter, should it come to that). */
export const FIRST_FAILURE_HEADER = 'Ringbus-First-Failure';
/** On a retry: its run of attempts (RemoteEvent.run), absent for an event as published. */
export const RUN_HEADER = 'Ringbus-Run';

/** Envelopes one consumer keeps fetched ahead of feeding them. */
const FETCH_AHEAD = 2;
/**
 * A fetch waits this long for envelopes before it is sent again (a long
 * poll; the client's least). Short, because stop() waits for the fetches in
 * flight to end before it disconnects: a fetch cannot be taken back, and
 * what server 2.9 sends to the fetch of a connection that is gone waits
 * ackWaitMs before another process gets it.
 */
export const FETCH_EXPIRES_MS = 1000;

/** One handler's durable consumer in this process. */
export class HandlerConsumer {
  readonly name: string;
  readonly reg: Registration;
  readonly route: Route;
  readonly #in: Inbound;
  #consumer: Consumer;
  /** The subject its consumer takes (to make it again after a server lost it). */
  readonly filter: string;
  /** Fetched envelopes not fully fed yet, oldest first. */
  readonly waiting: Held[] = [];
  #stopped = false;
  #fetch: { close(): Promise<void | Error> } | undefined;
  /** When the fetch in flight ends on the server (performance.now() ms). */
  fetchEndsAt = 0;
  #wake: (() => void) | undefined;
  readonly done: Promise<void>;

  /** The handler's retries consumer: messages wait (nak with delay) until their not-before time. */
  readonly retries: boolean;

  constructor(inbound: Inbound, name: string, reg: Registration, route: Route, consumer: Consumer, retries: boolean, filter: string) {
    this.#in = inbound;
    this.name = name;
    this.filter = filter;
    this.retries = retries;
    this.reg = reg;
    this.route = route;
    this.#consumer = consumer;
    this.done = this.#run();
  }

  /** The consumer was made again on the server (after it lost it): fetch from the new one. */
  rebind(consumer: Consumer): void {
    this.#consumer = consumer;
    this.poke();
  }

  /** Room or a need for envelopes may have appeared. */
  poke(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /**
   * No new fetches. The current one stays open until it ends (`done`):
   * closing it would drop what the server sends it, which would then wait
   * ackWaitMs; what arrives now is handed back instead (see Inbound.take).
   */
  pause(): void {
    this.#stopped = true;
    this.poke();
  }

  get stopping(): boolean {
    return this.#stopped;
  }

  /** Ends the current fetch (after pause(), once what was on its way arrived). */
  close(): void {
    this.pause();
    void this.#fetch?.close();
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      const room = this.#in.fetchRoom();
      if (room <= 0 || this.waiting.length >= FETCH_AHEAD) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        continue;
      }
      const batch = Math.max(1, Math.min(FETCH_AHEAD - this.waiting.length, Math.ceil(room / this.#in.options.batchEvents)));
      try {
        this.fetchEndsAt = performance.now() + FETCH_EXPIRES_MS;
        const messages = await this.#consumer.fetch({ max_messages: batch, expires: FETCH_EXPIRES_MS });
        this.#fetch = messages;
        for await (const m of messages) this.#in.take(this, m);
        this.#fetch = undefined;
        failures = 0;
      } catch (err) {
        this.#fetch = undefined;
        if (this.#stopped) break;
        failures++;
        this.#in.onTrouble?.();
        this.#in.log.warn({ consumer: this.name, err: errorMessage(err) }, 'fetching from JetStream failed; trying again');
        await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 100 * 2 ** Math.min(failures, 5))));
      }
    }
  }
}

export class Inbound {
  readonly options: ResolvedJetStreamOptions;
  readonly #host: TransportHost;
  readonly log: RateLimitedLog;
  readonly consumers = new Map<string, HandlerConsumer>();
  /** Deliveries fed to the engine and not settled. */
  #open = 0;
  /** Events fetched and not fed yet. */
  #unfed = 0;
  /** Envelopes taken and not acknowledged. */
  readonly #unacked = new Set<Held>();
  #pumpScheduled = false;
  readonly #workingTimer: NodeJS.Timeout;
  readonly #fedWaiters: (() => void)[] = [];
  /** Told when a fetch fails (the transport checks the stream and consumers still exist). */
  onTrouble: (() => void) | undefined;
  received = 0;
  redelivered = 0;
  handedBack = 0;
  malformed = 0;

  readonly #durable: () => Promise<void> | undefined;
  readonly #requeue: Requeue;

  /**
   * `durable`: resolves once what this process dead-lettered so far is stored
   * (undefined: it is). `requeue`: at close, a batch's unsettled deliveries as
   * one message for their handler's retry consumer (due at once), so the
   * batch can be acknowledged and what settled here does not run again.
   */
  constructor(options: ResolvedJetStreamOptions, host: TransportHost, log: Logger, durable: () => Promise<void> | undefined, requeue: Requeue) {
    this.options = options;
    this.#durable = durable;
    this.#requeue = requeue;
    this.#host = host;
    this.log = new RateLimitedLog(log, 5000);
    this.#workingTimer = setInterval(() => {
      for (const h of this.#unacked) h.msg.working();
    }, Math.max(250, Math.floor(options.ackWaitMs / 3)));
    this.#workingTimer.unref();
  }

  /** Deliveries this process may still feed to its engine. */
  room(): number {
    return this.#host.capacity - this.#open;
  }

  /**
   * Events this process may still fetch: room minus what it holds fetched and
   * not fed. A fetch brings whole batches, so a process holds at most one
   * batch per handler beyond its capacity.
   */
  fetchRoom(): number {
    return this.#host.capacity - this.#open - this.#unfed;
  }

  get open(): number {
    return this.#open;
  }

  /** A fetched message: read it, keep it, feed what fits. */
  take(c: HandlerConsumer, msg: JsMsg): void {
    let events: RemoteEvent[];
    try {
      const env = readEnvelope(msg.data);
      if (env.codec !== this.#host.codecName) {
        // Another process of the cluster runs another codec: its payloads cannot be read here.
        this.log.warn({ consumer: c.name, codec: env.codec, ours: this.#host.codecName },
          `a batch for handler '${c.reg.name}' was written with codec ${env.codec}, this bus uses ${this.#host.codecName}; left for another process`);
        msg.nak(this.options.ackWaitMs);
        return;
      }
      events = env.events;
    } catch (err) {
      this.malformed++;
      this.log.warn({ consumer: c.name, subject: msg.subject, err: errorMessage(err) }, 'a message in the stream is not a ringbus batch; dropped (term)');
      msg.term();
      return;
    }
    if (c.stopping) {
      // Arrived after stop() began: for another process, once this one's fetch (which the server would
      // otherwise hand it straight back to) has ended.
      this.handedBack += events.length;
      msg.nak(Math.max(1, Math.ceil(c.fetchEndsAt - performance.now())) + 50);
      return;
    }
    if (c.retries) {
      const due = Number(msg.headers?.get(NOT_BEFORE_HEADER) ?? 0) - Date.now();
      // Early: back to the server until its backoff is over (it holds it, not this process).
      if (due > 5) {
        msg.nak(due);
        return;
      }
      const firstFailedAt = Number(msg.headers?.get(FIRST_FAILURE_HEADER) ?? 0);
      const run = msg.headers?.get(RUN_HEADER) ?? '';
      for (const e of events) {
        e.firstFailedAt = firstFailedAt;
        e.run = run;
      }
    } else if (msg.redelivered) this.redelivered++;
    const h: Held = { msg, events, next: 0, open: 0, consumer: c, gone: false, settled: new Uint8Array(events.length) };
    this.#unacked.add(h);
    if (events.length === 0) {
      this.#ack(h);
      return;
    }
    c.waiting.push(h);
    this.#unfed += events.length;
    this.#pump();
  }

  /** Feeds waiting deliveries to the engine while there is room, taking envelopes in turn from each consumer. */
  #pump(): void {
    let fed = true;
    while (fed && this.room() > 0) {
      fed = false;
      for (const c of this.consumers.values()) {
        const h = c.waiting[0];
        if (h === undefined || this.room() <= 0) continue;
        // A slice of one envelope per consumer per round: no handler starves another.
        const slice = Math.min(h.events.length - h.next, this.room(), 64);
        for (let i = 0; i < slice; i++) this.#feed(h);
        if (h.next === h.events.length) c.waiting.shift();
        fed = true;
      }
    }
    for (const c of this.consumers.values()) if (c.waiting.length < FETCH_AHEAD && this.room() > 0) c.poke();
  }

  #feed(h: Held): void {
    const i = h.next;
    const event = h.events[h.next++];
    this.#unfed--;
    h.open++;
    this.#open++;
    this.received++;
    // A pattern's consumer: its retries and dead letters are named after the pattern, not the event's topic.
    if (h.consumer.reg.topic !== event.topic) event.subscription = h.consumer.reg.topic;
    try {
      this.#host.deliver(event, h.consumer.route, () => this.#settled(h, i));
    } catch (err) {
      // Its payload cannot be read here (corrupt, or a codec that refuses it): not a delivery that can run anywhere.
      this.malformed++;
      this.log.warn({ consumer: h.consumer.name, eventId: event.id, err: errorMessage(err) },
        `event ${event.id} for handler '${h.consumer.reg.name}' cannot be decoded; dropped`);
      this.#settled(h, i);
    }
  }

  #settled(h: Held, i: number): void {
    h.settled[i] = 1;
    h.open--;
    this.#open--;
    if (h.open === 0 && h.next === h.events.length) this.#ack(h);
    if (!this.#pumpScheduled) {
      this.#pumpScheduled = true;
      queueMicrotask(() => {
        this.#pumpScheduled = false;
        this.#pump();
      });
    }
    this.#checkFed();
  }

  #ack(h: Held): void {
    if (h.gone) return;
    const durable = this.#durable();
    if (durable !== undefined) {
      // Some of its deliveries may have been dead-lettered: their dead letters are stored first.
      void durable.then(() => this.#ack(h));
      return;
    }
    this.#unacked.delete(h);
    h.msg.ack();
  }

  /** Back to the stream at once, for another process. Deliveries that settled here run again there: at-least-once, as when a process dies. */
  #handBack(h: Held): void {
    h.gone = true;
    this.#unacked.delete(h);
    this.#unfed -= h.events.length - h.next;
    this.handedBack += h.events.length - (h.next - h.open);
    h.msg.nak();
  }

  /** Stops fetching; what was fetched is still fed (it is this process's to finish). */
  pause(): void {
    for (const c of this.consumers.values()) c.pause();
  }

  /** A handler was unregistered: its consumer stops, and what it fetched and did not feed goes back to the stream. */
  remove(name: string): void {
    const c = this.consumers.get(name);
    if (c === undefined) return;
    this.consumers.delete(name);
    c.close();
    // Partly fed ones too: the deliveries fed already may run again elsewhere (at-least-once).
    for (const h of c.waiting.splice(0)) this.#handBack(h);
    this.#checkFed();
  }

  /**
   * Resolves once everything fetched was fed to the engine (which then
   * settles it: a delivery an open circuit holds may never, and stop() does
   * not wait for those: they are handed back).
   */
  fed(): Promise<void> {
    if (this.#allFed()) return Promise.resolve();
    return new Promise((resolve) => this.#fedWaiters.push(resolve));
  }

  #allFed(): boolean {
    for (const c of this.consumers.values()) if (c.waiting.length > 0) return false;
    return true;
  }

  #checkFed(): void {
    if (this.#fedWaiters.length === 0 || !this.#allFed()) return;
    for (const resolve of this.#fedWaiters.splice(0)) resolve();
  }

  /**
   * At close: envelopes not fully settled go back to the stream at once, for
   * another process. `roundTrip` (a flush to the server) first lets whatever
   * the server sent before it arrive and be handed back too.
   */
  async handBack(roundTrip: () => Promise<void>): Promise<void> {
    clearInterval(this.#workingTimer);
    this.pause();
    // The fetches in flight end on the server within FETCH_EXPIRES_MS; what they bring meanwhile is handed back.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.consumers.values()].map((c) => c.done)),
      new Promise((resolve) => (timer = setTimeout(resolve, FETCH_EXPIRES_MS + 500))),
    ]);
    clearTimeout(timer);
    await roundTrip().catch(() => undefined);
    for (const c of this.consumers.values()) c.close();
    // Batches whose deliveries all settled wait only for dead letters to be stored: a little longer, then they
    // are acknowledged, or (not stored) handed back whole: their last attempts run again elsewhere and dead-letter
    // under the same ids.
    const durable = this.#durable();
    let stored = durable === undefined;
    if (!stored) {
      let wait: NodeJS.Timeout | undefined;
      stored = await Promise.race([durable!.then(() => true), new Promise<boolean>((r) => (wait = setTimeout(r, this.options.publishTimeoutMs, false)))]);
      clearTimeout(wait);
    }
    const requeued: Promise<void>[] = [];
    for (const h of [...this.#unacked]) {
      const settledHere = h.settled.reduce((n, s) => n + s, 0);
      // Part of it settled here: only the rest goes back (as one retry message), so that part does not run again.
      if (settledHere === 0) this.#handBack(h);
      else if (settledHere === h.events.length) {
        if (stored) this.#ackSettled(h);
        else this.#handBack(h);
      }
      else requeued.push(this.#handBackRest(h, settledHere));
    }
    await Promise.all(requeued);
    for (const resolve of this.#fedWaiters.splice(0)) resolve();
  }

  /** Every delivery of it settled; only its acknowledgement waited (for dead letters to be stored): acknowledged now. */
  #ackSettled(h: Held): void {
    h.gone = true;
    this.#unacked.delete(h);
    h.msg.ack();
  }

  async #handBackRest(h: Held, settledHere: number): Promise<void> {
    h.gone = true;
    this.#unacked.delete(h);
    const rest = h.events.filter((_, i) => h.settled[i] === 0);
    // Every handler of the topic got this message: the id names the consumer too, or the stream would keep one handler's rest only.
    const msgID = `${h.msg.info.stream}:${h.msg.info.streamSequence}:${h.consumer.name}:${h.msg.info.deliveryCount}:rest`;
    if (await this.#requeue(h.consumer.reg.name, rest, msgID)) {
      this.handedBack += rest.length;
      h.msg.ack();
    } else {
      this.handedBack += h.events.length;
      this.log.warn({ consumer: h.consumer.name, settled: settledHere }, 'could not hand back a partly settled batch on its own; handed back whole');
      h.msg.nak();
    }
  }
}
