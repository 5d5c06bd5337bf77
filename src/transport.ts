/**
 * The seam between the bus and a transport that carries its events between
 * processes (ringbus/jetstream): what a transport does for the engine
 * (Transport) and what the engine offers a transport (TransportHost). The
 * core never imports a transport's client: a transport arrives as an object
 * made by its own entry point, or as the plain config form
 * `{ jetstream: {...} }`, which the engine imports at start().
 */
import type { DeadLetterSink } from './dead_letter/dead_letter_sink.js';
import type { Logger } from './logger.js';
import type { JetStreamOptions } from './jetstream/options.js';
import type { RecordEncoder } from './protocol/record.js';
import type { Registration, Route } from './router.js';
import type { BusStats, CommandResult, PublishOptions } from './types.js';
import type { ClusterStatus } from './jetstream/cluster_status.js';

/** One event as a transport brings it in: its payload still as the bus's codec wrote it. @internal */
export interface RemoteEvent {
  readonly id: string;
  readonly topic: string;
  readonly lane: number;
  readonly sessionId: string | undefined;
  /** Attempts this delivery already used (0: never ran). */
  readonly attempt: number;
  /** Epoch ms at publish (the publishing process's clock). */
  readonly publishedAt: number;
  /** RF_BINARY, RF_ENCODED, RF_UNDEFINED, or 0 for JSON text (UTF-8). */
  readonly payloadFlags: number;
  /** A view into the transport's message: copied into the lane ring, never kept. */
  readonly payload: Uint8Array;
  /** Epoch ms of the delivery's first failure (a retry that came through the stream), 0 for none. */
  firstFailedAt: number;
  /**
   * Which run of attempts this is: '' for an event as published, another
   * value for a dead letter handed back (ringbus dlq replay), carried by its
   * retries. Two processes re-running the same attempt of the same run make
   * one retry (the stream drops the second); a replay's attempts are new ones.
   */
  run: string;
  /** The registration topic that took it here, when a wildcard pattern did (its consumer is named after the pattern). */
  subscription?: string;
  /** The event's headers as JSON text, or undefined. */
  readonly headers: string | undefined;
}

/** What the engine offers a transport. @internal */
export interface TransportHost {
  readonly log: Logger;
  /** The bus's codec name: processes of one cluster must agree on it. */
  readonly codecName: string;
  /** `queue.capacity`: the most deliveries this process holds unsettled. */
  readonly capacity: number;
  /** Unique per bus (its event-id prefix): names this process to the others. */
  readonly processId: string;
  /** The bus's counters now (a process's heartbeat carries them). */
  stats(): BusStats;
  /** Event handler registrations now. */
  eventRegistrations(): Registration[];
  /** Topics with a command handler here: this process answers them for the cluster. */
  commandTopics(): string[];
  /** Runs a command here (the local path only), for another process. */
  executeLocal(topic: string, payload: unknown, options: PublishOptions): Promise<CommandResult>;
  /** Values (command payloads and results) as bytes under the bus's codec, and back. */
  readonly values: {
    encode(value: unknown): { flags: number; bytes: Uint8Array };
    decode(flags: number, bytes: Uint8Array): unknown;
  };
  /** A route that runs exactly `reg` (built once per registration, not per event). */
  routeFor(reg: Registration): Route;
  /**
   * Runs one delivery of a remote event to the route's one handler, counted
   * in the local queue until it settles. `settled()` is called once, when it
   * was processed, dead-lettered or finally failed; never when the bus
   * abandons it at stop (the transport then hands it back).
   */
  deliver(event: RemoteEvent, route: Route, settled: () => void): void;
}

/** A transport's counters: `bus.transportStats()`. @group Metrics */
export interface TransportStats {
  /** Events accepted by publish() and not yet stored by the server. */
  publishPending: number;
  /** Events the server confirmed stored. */
  publishStored: number;
  /** Publish attempts that failed and were sent again (same message id: stored once). */
  publishRetries: number;
  /** Events taken from the stream (one per delivery to one local handler). */
  received: number;
  /** Deliveries handed back to the stream unsettled (at stop). */
  handedBack: number;
  /** Messages or events that could not be read (not a ringbus batch, or a payload the codec refuses): dropped, logged. */
  malformed: number;
  /** Envelopes redelivered to this process (another process died, or an ack_wait ran out). */
  redelivered: number;
  reconnects: number;
  /**
   * Over this process's handlers' consumers (cluster-wide figures of those
   * consumers): messages in the stream not yet delivered, and delivered but
   * not acknowledged (at `maxAckPending` the server delivers no more). Read
   * from the server at most once a second, when stats are read.
   */
  consumerPending: number;
  consumerAckPending: number;
  /** Time from sending a batch to the server's acknowledgement that it stored it (ms): median and 99th percentile. */
  publishAckP50Ms: number;
  publishAckP99Ms: number;
}

/** A transport: carries published events to the processes that handle them. @internal */
export interface Transport {
  readonly kind: string;
  /** Called once by the bus's constructor: a transport serves one bus. */
  bind(codecName: string, log: Logger): void;
  /** Where the bus's dead letters go (shared by the cluster), when the transport has such a store. */
  readonly deadLetterSink: DeadLetterSink | undefined;
  /** Connects, checks the streams and answers commands; `deadLetterSink` can open after it. */
  start(host: TransportHost): Promise<void>;
  /** Starts taking deliveries for the registered handlers (once the dead-letter queue is open). */
  consume(): Promise<void>;
  /**
   * Takes the event in `r` (payload and session encoded) for publishing; false
   * when the outbound window is full. Works before start(): the events wait
   * for the connection.
   */
  offer(topic: string, lane: number, r: RecordEncoder, id: string, publishedAt: number, onStored?: () => void): boolean;
  /**
   * Runs the command in `r` in a process of the cluster that registered its
   * handler (this one has none), waiting at most `timeoutMs` (Infinity: the
   * transport's default) for the reply; resolves with its result, never
   * rejects. Copies what it needs from `r` before it returns.
   */
  request(topic: string, lane: number, r: RecordEncoder, id: string, publishedAt: number, timeoutMs: number): Promise<CommandResult>;
  /**
   * A delivery of an event the transport brought failed and has attempts
   * left: the transport keeps it (durably) and any process with the handler
   * runs attempt `event.attempt` after `delayMs`. Resolves true once it is
   * kept (this process is then done with the delivery), false if it could
   * not be (the transport closed: the original delivery is handed back).
   */
  retryLater(event: RemoteEvent, handler: string, delayMs: number): Promise<boolean>;
  /** Resolves true once offer() has room, false after `timeoutMs`. */
  waitForRoom(timeoutMs: number): Promise<boolean>;
  /** Handlers (event or command) were registered or unregistered: consume and answer for the new set. */
  handlersChanged(): void;
  /** Resolves once every offered event is stored by the server, and every delivery taken is fed to the engine. */
  flushed(): Promise<void>;
  /** Stops taking new deliveries (stop() begins). */
  pause(): void;
  /**
   * Hands back what was taken and not settled, and disconnects. Resolves how
   * many published events the server never stored (lost: the bus counts them
   * as abandoned).
   */
  close(): Promise<number>;
  stats(): TransportStats;
  /** The cluster as this process sees it (the dashboard); undefined for a transport that cannot tell. */
  clusterStatus?(): Promise<ClusterStatus>;
}

/** The `transport` option: a transport object (`jetstream({...})` from 'ringbus/jetstream'), or its config-file form. @group Options */
export type TransportOption = Transport | { jetstream: JetStreamOptions | true };

export function isTransport(value: unknown): value is Transport {
  return typeof value === 'object' && value !== null && typeof (value as Transport).start === 'function' &&
    typeof (value as Transport).offer === 'function';
}
