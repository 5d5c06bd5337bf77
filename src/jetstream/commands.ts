/**
 * Commands across processes: a process that registered a command handler
 * answers requests for it on `<prefix>.cmd.<topic>` in one queue group (so
 * one member of the cluster runs each command); `execute()` in a process
 * without the handler sends the command there (core NATS request/reply: a
 * command's caller waits for it, so it needs no stream) and gets the same
 * CommandResult contract back: no responder is NoHandlerError, no reply in
 * time CommandTimeoutError, an open circuit CircuitOpenError.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { BusStoppedError, CommandTimeoutError, NoHandlerError, RingbusError } from '../errors.js';
import { errorMessage } from '../protocol/error_text.js';
import type { RecordEncoder } from '../protocol/record.js';
import { PRIORITY_NAMES } from '../protocol/task.js';
import type { RateLimitedLog } from '../rate_limited_log.js';
import type { TransportHost } from '../transport.js';
import type { CommandResult } from '../types.js';
import { decodeReply, encodeReply } from './command_reply.js';
import { EnvelopeWriter, readEnvelope } from './envelope.js';
import type { ResolvedJetStreamOptions } from './options.js';
import { topicSubject } from './subjects.js';

export class Commands {
  readonly #o: ResolvedJetStreamOptions;
  readonly #host: TransportHost;
  readonly #nc: NatsConnection;
  readonly #log: RateLimitedLog;
  readonly #subs = new Map<string, Subscription>();

  constructor(o: ResolvedJetStreamOptions, host: TransportHost, nc: NatsConnection, log: RateLimitedLog) {
    this.#o = o;
    this.#host = host;
    this.#nc = nc;
    this.#log = log;
  }

  #subject(topic: string): string {
    return `${this.#o.subjectPrefix}.cmd.${topicSubject(topic)}`;
  }

  /** Answers for every command topic registered here, and no other. */
  sync(): void {
    const wanted = new Set(this.#host.commandTopics());
    for (const [topic, sub] of this.#subs) {
      if (wanted.has(topic)) continue;
      sub.unsubscribe();
      this.#subs.delete(topic);
    }
    for (const topic of wanted) {
      if (this.#subs.has(topic)) continue;
      this.#subs.set(topic, this.#nc.subscribe(this.#subject(topic), {
        queue: `${this.#o.subjectPrefix}.cmd`,
        callback: (err, msg) => {
          if (err !== null) {
            this.#log.warn({ topic, err: errorMessage(err) }, 'command subscription failed');
            return;
          }
          void this.#serve(topic, msg.data).then((reply) => msg.respond(reply));
        },
      }));
    }
  }

  /** Runs a request here, as a local execute(), and encodes its result. */
  async #serve(topic: string, data: Uint8Array): Promise<Uint8Array> {
    const host = this.#host;
    let result: CommandResult;
    try {
      const ev = readEnvelope(data).events[0];
      const payload = host.values.decode(ev.payloadFlags, ev.payload);
      result = await host.executeLocal(topic, payload, {
        priority: PRIORITY_NAMES[ev.lane], sessionId: ev.sessionId, headers: ev.headers === undefined ? undefined : JSON.parse(ev.headers) as Record<string, string>,
      });
    } catch (err) {
      result = { success: false, attempts: 0, error: err instanceof RingbusError ? err : new RingbusError('ERR_RINGBUS_HANDLER_FAILED', errorMessage(err)) };
    }
    return encodeReply(result, host.values);
  }

  /** Sends a command (`commandEnvelope()`) to a process that has its handler; resolves with its result, never rejects. */
  async request(topic: string, envelope: Uint8Array, timeoutMs: number): Promise<CommandResult> {
    const timeout = timeoutMs === Infinity ? this.#o.commandTimeoutMs : timeoutMs;
    try {
      const reply = await this.#nc.request(this.#subject(topic), envelope, { timeout });
      return decodeReply(reply.data, this.#host.values);
    } catch (err) {
      const e = err as { name?: string; isNoResponders?: () => boolean; cause?: { name?: string } };
      if (e.isNoResponders?.() === true || e.cause?.name === 'NoRespondersError') {
        return { success: false, error: new NoHandlerError(topic), attempts: 0 };
      }
      if (e.name === 'TimeoutError' || e.cause?.name === 'TimeoutError') {
        return { success: false, error: new CommandTimeoutError(topic, timeout), attempts: 0 };
      }
      return { success: false, error: new BusStoppedError(`command '${topic}' could not be sent: ${errorMessage(err)}`, err), attempts: 0 };
    }
  }

  /** The command in `r` as a one-event envelope (copied now: the caller reuses `r`). */
  static envelope(codecName: string, topic: string, lane: number, r: RecordEncoder, id: string, publishedAt: number): Uint8Array {
    const w = new EnvelopeWriter(codecName, topic, 256 + r.payloadBytes);
    w.add(r, lane, 0, id, publishedAt);
    return w.finish();
  }

  close(): void {
    for (const sub of this.#subs.values()) sub.unsubscribe();
    this.#subs.clear();
  }
}
