/**
 * What a process can see of its cluster: every process says, every
 * HEARTBEAT_MS on core NATS (`<prefix>.proc.<id>`, never stored), who it is
 * and its figures; a process asked for the cluster's status (the dashboard)
 * listens to them from then on, and reads the event stream's and its
 * consumers' state from the server. Processes not heard from for three
 * heartbeats are gone from the list.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { hostname } from 'node:os';
import { errorMessage } from '../protocol/error_text.js';
import type { ResolvedJetStreamOptions } from './options.js';

export const HEARTBEAT_MS = 2000;
/** Processes and consumers listed at most. */
const PROCESSES_KEPT = 1000;
const CONSUMERS_LISTED = 200;

/** One process of the cluster, as it last said. @group Transport */
export interface ProcessStatus {
  id: string;
  /** The connection's name (transport.jetstream.name), host and pid. */
  name: string;
  host: string;
  pid: number;
  /** Epoch ms: when it started, and when it said this. */
  startedAt: number;
  t: number;
  published: number;
  processed: number;
  failed: number;
  deadLettered: number;
  queueSize: number;
  activeWorkers: number;
  /** Event handler registrations. */
  handlers: number;
}

/** The cluster's processes, its event stream and the stream's consumers. @group Transport */
export interface ClusterStatus {
  processes: ProcessStatus[];
  stream: { name: string; messages: number; bytes: number; consumers: number } | undefined;
  /** The stream's consumers (one per handler of each topic, and one per handler for its retries): what waits and what is out. */
  consumers: { name: string; description: string; pending: number; ackPending: number; redelivered: number }[];
  /** Why the server's part is missing (unreachable, say). */
  error?: string;
}

export class ClusterStatusBoard {
  readonly #nc: NatsConnection;
  readonly #jsm: JetStreamManager;
  readonly #o: ResolvedJetStreamOptions;
  readonly #self: () => ProcessStatus;
  readonly #heard = new Map<string, ProcessStatus & { seenAt: number }>();
  #timer: NodeJS.Timeout | undefined;
  #sub: Subscription | undefined;

  constructor(nc: NatsConnection, jsm: JetStreamManager, o: ResolvedJetStreamOptions, self: () => ProcessStatus) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#o = o;
    this.#self = self;
  }

  start(): void {
    const say = (): void => {
      try {
        const me = this.#self();
        this.#nc.publish(`${this.#o.subjectPrefix}.proc.${me.id}`, JSON.stringify(me));
      } catch {
        // Closed or reconnecting: the next heartbeat says it.
      }
    };
    say();
    this.#timer = setInterval(say, HEARTBEAT_MS);
    this.#timer.unref();
  }

  async status(): Promise<ClusterStatus> {
    this.#listen();
    const now = Date.now();
    const me = this.#self();
    this.#heard.set(me.id, { ...me, seenAt: now });
    for (const [id, p] of this.#heard) if (now - p.seenAt > 3 * HEARTBEAT_MS) this.#heard.delete(id);
    const processes = [...this.#heard.values()].map(({ seenAt: _, ...p }) => p).sort((a, b) => a.startedAt - b.startedAt);
    try {
      const info = await this.#jsm.streams.info(this.#o.stream);
      const consumers: ClusterStatus['consumers'] = [];
      for await (const c of this.#jsm.consumers.list(this.#o.stream)) {
        consumers.push({
          name: c.name, description: c.config.description ?? '', pending: c.num_pending, ackPending: c.num_ack_pending, redelivered: c.num_redelivered,
        });
        if (consumers.length >= CONSUMERS_LISTED) break;
      }
      return {
        processes, consumers,
        stream: { name: this.#o.stream, messages: info.state.messages, bytes: info.state.bytes, consumers: info.state.consumer_count },
      };
    } catch (err) {
      return { processes, stream: undefined, consumers: [], error: errorMessage(err) };
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#sub?.unsubscribe();
    this.#sub = undefined;
  }

  /** From the first status() on: every process's heartbeat is heard. */
  #listen(): void {
    if (this.#sub !== undefined) return;
    this.#sub = this.#nc.subscribe(`${this.#o.subjectPrefix}.proc.*`, {
      callback: (err, msg) => {
        if (err !== null) return;
        try {
          const p = JSON.parse(msg.string()) as ProcessStatus;
          if (typeof p.id !== 'string') return;
          if (!this.#heard.has(p.id) && this.#heard.size >= PROCESSES_KEPT) return;
          this.#heard.set(p.id, { ...p, seenAt: Date.now() });
        } catch {
          // Not a ringbus heartbeat: ignored.
        }
      },
    });
  }
}

/** This process's status line, from its bus's figures. */
export function processStatus(id: string, name: string, startedAt: number,
  s: { published: number; processed: number; failed: number; deadLettered: number; queueSize: number; activeWorkers: number }, handlers: number): ProcessStatus {
  return {
    id, name, host: hostname(), pid: process.pid, startedAt, t: Date.now(), published: s.published, processed: s.processed, failed: s.failed,
    deadLettered: s.deadLettered, queueSize: s.queueSize, activeWorkers: s.activeWorkers, handlers,
  };
}
