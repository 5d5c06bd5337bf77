/**
 * The JetStream transport: connects (and keeps reconnecting), keeps what it
 * needs on the server (provisioning.ts: the stream, a consumer per registered
 * (topic, handler) for its events and one for its retries; made again when a
 * server lost them), sends retries and handed-back deliveries to a handler's
 * retry consumer, and wires the outbound envelopes, the inbound consumers,
 * commands and the dead-letter stream to the engine. See outbound.ts and
 * inbound.ts for the two directions, envelope.ts for the message format. The
 * NATS client is imported by start(), so a bus configured from a file
 * (`transport: { jetstream: {...} }`) loads it only when it starts.
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../logger.js';
import { errorMessage } from '../protocol/error_text.js';
import type { RecordEncoder } from '../protocol/record.js';
import type { Registration } from '../router.js';
import type { Transport, TransportHost, TransportStats } from '../transport.js';
import { Commands } from './commands.js';
import { DeadLetterStream } from './dead_letter_stream.js';
import { HandlerConsumer, Inbound } from './inbound.js';
import { RateLimitedLog } from '../rate_limited_log.js';
import type { CommandResult } from '../types.js';
import type { ResolvedJetStreamOptions } from './options.js';
import { Outbound } from './outbound.js';
import { consumerName, retryConsumerName, retrySubject, subscriptionSubject } from './subjects.js';
import { ClusterStatusBoard, processStatus, type ClusterStatus } from './cluster_status.js';
import { ensureEventStream, ensureHandlerConsumer } from './provisioning.js';
import { EnvelopeWriter } from './envelope.js';
import { FIRST_FAILURE_HEADER, NOT_BEFORE_HEADER, RUN_HEADER } from './inbound.js';
import { RecordEncoder as Encoder } from '../protocol/record.js';
import type { RemoteEvent } from '../transport.js';
import type { DeadLetterEntry } from '../dead_letter/dead_letter_entry.js';
import { EncodedPayload } from '../dead_letter/line_codec.js';
import { PRIORITY_NAMES } from '../protocol/task.js';

export class JetStreamTransport implements Transport {
  readonly kind = 'jetstream';
  readonly options: ResolvedJetStreamOptions;
  readonly deadLetterSink: DeadLetterStream;
  /** Consumers are made once the dead-letter queue is open (consume()). */
  #consuming = false;
  #outbound: Outbound | undefined;
  #inbound: Inbound | undefined;
  #host: TransportHost | undefined;
  #nc: NatsConnection | undefined;
  #js: JetStreamClient | undefined;
  #jsm: JetStreamManager | undefined;
  #log: Logger | undefined;
  #commands: Commands | undefined;
  #codecName = 'json';
  /** Resolves when start() connected (commands sent before wait for it); rejects if it failed. */
  #ready: Promise<void>;
  #readyResolve!: () => void;
  #readyReject!: (err: unknown) => void;
  #reconnects = 0;
  #recovering = false;
  #lastRecovery = -Infinity;
  readonly #consumerFigures = { at: -Infinity, pending: 0, ackPending: 0 };
  #headers: (() => { set(k: string, v: string): void }) | undefined;
  readonly #retryTimers = new Set<NodeJS.Timeout>();
  #syncing: Promise<void> = Promise.resolve();
  #closed = false;
  #cluster: ClusterStatusBoard | undefined;

  constructor(options: ResolvedJetStreamOptions) {
    this.options = options;
    this.deadLetterSink = new DeadLetterStream(options);
    this.#ready = new Promise((resolve, reject) => {
      this.#readyResolve = resolve;
      this.#readyReject = reject;
    });
    this.#ready.catch(() => undefined);
  }

  /** Made by the bus's constructor (codec and logger known); offer() works from then on. */
  bind(codecName: string, log: Logger): void {
    if (this.#outbound !== undefined) throw new TypeError('this jetstream() transport is already used by another bus; make one per bus');
    this.#log = log;
    this.#codecName = codecName;
    this.#outbound = new Outbound(this.options, codecName, log);
  }

  async start(host: TransportHost): Promise<void> {
    const o = this.options;
    this.#host = host;
    const [{ connect, headers }, { jetstream, jetstreamManager }] = await Promise.all([import('@nats-io/transport-node'), import('@nats-io/jetstream')]);
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: o.servers, name: o.name, token: o.token, user: o.user, pass: o.pass, timeout: o.connectTimeoutMs,
        // Never give up: publishes wait in the window and consumers resume once a server is back.
        maxReconnectAttempts: -1, reconnectTimeWait: 500, waitOnFirstConnect: false,
        // The client otherwise builds two Errors with stack traces per request (every batch published): 3.5% of a producer.
        noAsyncTraces: true,
      });
    } catch (err) {
      throw new Error(`cannot connect to NATS at ${o.servers.join(', ')} (transport.jetstream.servers): ${errorMessage(err)}`, { cause: err });
    }
    this.#nc = nc;
    void this.#watchStatus(nc);
    try {
      this.#jsm = await jetstreamManager(nc, { timeout: o.connectTimeoutMs });
      this.#js = jetstream(nc, { timeout: o.publishTimeoutMs });
      await ensureEventStream(this.#jsm!, this.options);
    } catch (err) {
      await nc.close().catch(() => undefined);
      this.#nc = undefined;
      throw err;
    }
    this.#headers = headers;
    const startedAt = Date.now();
    this.#cluster = new ClusterStatusBoard(nc, this.#jsm, o,
      () => processStatus(host.processId, o.name, startedAt, host.stats(), host.eventRegistrations().length));
    this.#cluster.start();
    this.deadLetterSink.attach({ nc, js: this.#js, jsm: this.#jsm, headers });
    // A dead-lettered delivery is acknowledged only once its dead letter is in the dead-letter stream.
    this.#inbound = new Inbound(o, host, host.log, () => this.deadLetterSink.stored(),
      (handler, events, msgID) => this.#toRetries(events, handler, Date.now(), msgID, true));
    this.#inbound.onTrouble = () => this.#recover();
    this.#outbound!.onFailure = () => this.#recover();
    this.#commands = new Commands(o, host, nc, new RateLimitedLog(host.log, 5000));
    const js = this.#js;
    this.#outbound!.attach(async (subject, data, msgID) => {
      await js.publish(subject, data, { msgID, timeout: o.publishTimeoutMs });
    }, nc.info?.max_payload ?? 1024 * 1024);
    await this.#sync();
    this.#readyResolve();
  }

  retryLater(event: RemoteEvent, handler: string, delayMs: number): Promise<boolean> {
    // One id per (delivery, run, attempt): a resend, or the same attempt failed again by a process that re-ran it
    // after another died, is stored once; a replayed dead letter's attempts (another run) are new messages.
    const consumer = consumerName(this.options.subjectPrefix, event.subscription ?? event.topic, handler);
    return this.#toRetries([event], handler, Date.now() + delayMs, `${event.id}:${consumer}:${event.attempt}:${event.run}`, false);
  }

  /**
   * Deliveries to `handler` into its retry subject, in one message, due at
   * `notBefore`; resolves true once stored. Sent again until stored, unless
   * `once` (at close: one try, the caller hands the original back if it fails).
   */
  #toRetries(events: RemoteEvent[], handler: string, notBefore: number, msgID: string, once: boolean): Promise<boolean> {
    if (events.length === 0) return Promise.resolve(true);
    const o = this.options;
    const topic = events[0].topic;
    const consumer = consumerName(o.subjectPrefix, events[0].subscription ?? topic, handler);
    const r = new Encoder();
    const w = new EnvelopeWriter(this.#codecName, topic, 256 + events.reduce((n, e) => n + e.payload.byteLength + 64, 0));
    for (const event of events) {
      r.clear();
      r.flags = event.payloadFlags;
      r.setSession(event.sessionId);
      r.setHeaders(event.headers);
      r.binary = event.payload;
      r.payloadBytes = event.payload.byteLength;
      w.add(r, event.lane, event.attempt, event.id, event.publishedAt);
    }
    const data = w.finish();
    return new Promise<boolean>((resolve) => {
      const send = (tries: number): void => {
        if ((this.#closed && !once) || this.#js === undefined) {
          resolve(false);
          return;
        }
        const h = this.#headers!();
        h.set(NOT_BEFORE_HEADER, String(notBefore));
        h.set(FIRST_FAILURE_HEADER, String(events[0].firstFailedAt));
        if (events[0].run !== '') h.set(RUN_HEADER, events[0].run);
        this.#js.publish(retrySubject(o.subjectPrefix, consumer), data, { msgID, headers: h as never, timeout: o.publishTimeoutMs }).then(
          () => resolve(true),
          (err: unknown) => {
            if (once) {
              resolve(false);
              return;
            }
            this.#log?.warn({ handler, topic, tries, err: errorMessage(err) }, 'a retry was not stored in JetStream yet; sending again');
            const t = setTimeout(() => {
              this.#retryTimers.delete(t);
              send(tries + 1);
            }, Math.min(2000, 100 * 2 ** Math.min(tries, 5)));
            this.#retryTimers.add(t);
          },
        );
      };
      send(1);
    });
  }

  /**
   * `ringbus dlq replay` against the stream: hands every live dead letter
   * back to the cluster as a fresh retry of its handler (attempt 0, due now),
   * which whichever process has that handler runs, then ends the entry. An
   * entry whose handler no process ever registered (no consumer to keep it)
   * is left dead, with the reason. `encode`: a payload as bytes under the
   * bus's codec.
   */
  async requeueDeadLetters(encode: (payload: unknown) => { flags: number; bytes: Uint8Array }):
    Promise<{ requeued: number; skipped: { id: string; reason: string }[] }> {
    const o = this.options;
    const sink = this.deadLetterSink;
    const entries: DeadLetterEntry[] = [];
    await sink.scan({}, (e) => void entries.push(e));
    const skipped: { id: string; reason: string }[] = [];
    const known = new Map<string, boolean>();
    let requeued = 0;
    for (const entry of entries) {
      const consumer = consumerName(o.subjectPrefix, entry.subscription ?? entry.event.topic, entry.handler);
      if (!known.has(consumer)) {
        known.set(consumer, await this.#jsm!.consumers.info(o.stream, retryConsumerName(consumer)).then(() => true, () => false));
      }
      if (!known.get(consumer)) {
        skipped.push({ id: entry.id, reason: `no process has registered handler '${entry.handler}' on topic '${entry.event.topic}'` });
        continue;
      }
      let payload: { flags: number; bytes: Uint8Array };
      try {
        if (entry.event.payload instanceof EncodedPayload) throw new Error(`its payload was stored by codec ${entry.event.payload.codec}, which this codec cannot decode`);
        payload = encode(entry.event.payload);
      } catch (err) {
        skipped.push({ id: entry.id, reason: errorMessage(err) });
        continue;
      }
      const e = entry.event;
      const kept = await this.#toRetries([{
        id: e.id, topic: e.topic, lane: PRIORITY_NAMES.indexOf(e.priority), sessionId: e.sessionId ?? undefined, attempt: 0,
        publishedAt: e.publishedAt, payloadFlags: payload.flags, payload: payload.bytes, firstFailedAt: 0, run: `r${entry.lastAttemptAt}`,
        headers: e.headers === undefined ? undefined : JSON.stringify(e.headers), subscription: entry.subscription,
      }], entry.handler, Date.now(), `replay:${entry.id}:${entry.lastAttemptAt}`, false);
      if (!kept) break;
      sink.mark('replayed', [entry.id]);
      requeued++;
    }
    await sink.stored();
    return { requeued, skipped };
  }

  async consume(): Promise<void> {
    this.#consuming = true;
    await this.#sync();
  }

  async request(topic: string, lane: number, r: RecordEncoder, id: string, publishedAt: number, timeoutMs: number): Promise<CommandResult> {
    const envelope = Commands.envelope(this.#codecName, topic, lane, r, id, publishedAt);
    await this.#ready;
    return this.#commands!.request(topic, envelope, timeoutMs);
  }

  offer(topic: string, lane: number, r: RecordEncoder, id: string, publishedAt: number, onStored?: () => void): boolean {
    return this.#outbound!.offer(topic, lane, r, id, publishedAt, onStored);
  }

  waitForRoom(timeoutMs: number): Promise<boolean> {
    return this.#outbound!.waitForRoom(timeoutMs);
  }

  handlersChanged(): void {
    if (this.#inbound === undefined || this.#closed) return;
    this.#syncing = this.#syncing.then(() => this.#sync()).catch((err: unknown) => {
      this.#log!.error({ err: errorMessage(err) }, 'could not create a JetStream consumer for a handler registered after start');
    });
  }

  async flushed(): Promise<void> {
    await this.#outbound?.flushed();
    await this.#inbound?.fed();
  }

  pause(): void {
    // Commands now go to the other members of the queue group; deliveries taken stay ours to finish.
    this.#commands?.close();
    this.#inbound?.pause();
  }

  async close(): Promise<number> {
    if (this.#closed) return 0;
    this.#closed = true;
    this.#readyReject(new Error('the bus stopped before its transport connected'));
    this.#commands?.close();
    this.#cluster?.close();
    for (const t of this.#retryTimers) clearTimeout(t);
    this.#retryTimers.clear();
    await this.#inbound?.handBack(() => this.#nc?.flush() ?? Promise.resolve());
    const unstored = this.#outbound?.pending ?? 0;
    this.#outbound?.detach();
    if (unstored > 0) {
      this.#log?.error({ events: unstored }, `${unstored} published events were not stored by JetStream before the bus stopped; ` +
        'they are lost (counted as abandoned)');
    }
    const nc = this.#nc;
    this.#nc = undefined;
    if (nc !== undefined) {
      // Acks and naks are plain publishes: flushed before the connection goes.
      await nc.flush().catch(() => undefined);
      await nc.close().catch(() => undefined);
    }
    return unstored;
  }

  /** The cluster as this process sees it: processes heard from, the event stream and its consumers. */
  clusterStatus(): Promise<ClusterStatus> {
    if (this.#cluster === undefined) return Promise.resolve({ processes: [], stream: undefined, consumers: [], error: 'the transport has not started' });
    return this.#cluster.status();
  }

  stats(): TransportStats {
    this.#refreshConsumerFigures();
    const out = this.#outbound;
    const inb = this.#inbound;
    return {
      publishPending: out?.pending ?? 0, publishStored: out?.stored ?? 0, publishRetries: out?.retries ?? 0,
      received: inb?.received ?? 0, handedBack: inb?.handedBack ?? 0, malformed: inb?.malformed ?? 0, redelivered: inb?.redelivered ?? 0, reconnects: this.#reconnects,
      consumerPending: this.#consumerFigures.pending, consumerAckPending: this.#consumerFigures.ackPending,
      publishAckP50Ms: out?.ackMs(50) ?? 0, publishAckP99Ms: out?.ackMs(99) ?? 0,
    };
  }

  /**
   * The consumers' backlog, from the server: asked at most once a second and
   * only when someone reads the stats (nothing is polled while nobody looks);
   * the figures of the previous answer meanwhile.
   */
  #refreshConsumerFigures(): void {
    const jsm = this.#jsm;
    const inbound = this.#inbound;
    if (jsm === undefined || inbound === undefined || this.#closed || performance.now() - this.#consumerFigures.at < 1000) return;
    this.#consumerFigures.at = performance.now();
    const names = [...inbound.consumers.keys()];
    void Promise.all(names.map((n) => jsm.consumers.info(this.options.stream, n).catch(() => undefined))).then((infos) => {
      let pending = 0;
      let ackPending = 0;
      for (const i of infos) {
        pending += i?.num_pending ?? 0;
        ackPending += i?.num_ack_pending ?? 0;
      }
      this.#consumerFigures.pending = pending;
      this.#consumerFigures.ackPending = ackPending;
    });
  }

  async #watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'reconnect') {
        this.#reconnects++;
        this.#log?.warn({ server: s.server }, 'reconnected to NATS');
        this.#recover();
      } else if (s.type === 'disconnect') {
        this.#log?.warn({ server: s.server }, 'disconnected from NATS; reconnecting');
      }
    }
  }

  /**
   * After a reconnect, or a publish or fetch that failed: makes sure the
   * streams and this process's consumers still exist, and makes them again if
   * the server lost them (memory storage, a lost store, an operator deleted
   * them). Publishing waits meanwhile, so nothing is stored before the
   * consumers that keep it exist. At most once a second; again later if the
   * server is still away.
   */
  #recover(): void {
    if (this.#closed || this.#jsm === undefined || this.#recovering) return;
    const wait = Math.max(0, this.#lastRecovery + 1000 - performance.now());
    this.#recovering = true;
    setTimeout(() => {
      void this.#recoverNow().finally(() => {
        this.#lastRecovery = performance.now();
        this.#recovering = false;
      });
    }, wait).unref();
  }

  async #recoverNow(): Promise<void> {
    if (this.#closed) return;
    const inbound = this.#inbound!;
    const out = this.#outbound!;
    out.suspend();
    try {
      await ensureEventStream(this.#jsm!, this.options);
      await this.deadLetterSink.recover();
      for (const c of [...inbound.consumers.values()]) {
        if (this.#closed) return;
        if (await ensureHandlerConsumer(this.#jsm!, this.options, c.name, c.reg.topic, c.reg.name, c.filter, c.retries)) {
          this.#log?.warn({ consumer: c.name }, `the consumer of handler '${c.reg.name}' on topic '${c.reg.topic}' was gone from the server; made again`);
          c.rebind(await this.#js!.consumers.get(this.options.stream, c.name));
        }
      }
    } catch (err) {
      // Still away (or refusing): the next failure or reconnect tries again.
      this.#log?.warn({ err: errorMessage(err) }, 'could not check the JetStream stream and consumers yet');
    } finally {
      out.resume();
    }
  }

  /** One consumer per registered (topic, handler), created or updated; consumers of unregistered handlers stop here (they stay on the server). */
  async #sync(): Promise<void> {
    const o = this.options;
    const inbound = this.#inbound!;
    const host = this.#host!;
    this.#commands!.sync();
    if (!this.#consuming) return;
    // Each handler has two consumers: its events, and its retries waiting for their backoff.
    const wanted = new Map<string, { reg: Registration; retries: boolean; filter: string }>();
    for (const reg of host.eventRegistrations()) {
      const name = consumerName(o.subjectPrefix, reg.topic, reg.name);
      wanted.set(name, { reg, retries: false, filter: subscriptionSubject(o.subjectPrefix, reg.topic) });
      wanted.set(retryConsumerName(name), { reg, retries: true, filter: retrySubject(o.subjectPrefix, name) });
    }
    for (const [name, c] of inbound.consumers) if (wanted.get(name)?.reg !== c.reg) inbound.remove(name);
    for (const [name, { reg, retries, filter }] of wanted) {
      if (inbound.consumers.has(name) || this.#closed) continue;
      await ensureHandlerConsumer(this.#jsm!, this.options, name, reg.topic, reg.name, filter, retries);
      if (this.#closed || host.eventRegistrations().indexOf(reg) < 0) continue;
      const consumer = await this.#js!.consumers.get(o.stream, name);
      inbound.consumers.set(name, new HandlerConsumer(inbound, name, reg, host.routeFor(reg), consumer, retries, filter));
    }
  }
}
