/**
 * MessageBus, the public class: a thin facade over the engine
 * (src/engine/engine.ts), and the events it emits.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Engine } from './engine/engine.js';
import type { WorkerHandlerRef, WorkerMiddlewareRef } from './handler_ref.js';
import type { PublishMiddleware } from './middleware.js';
import type { BusOptions } from './options.js';
import { resolveOptions } from './resolve_options.js';
import { BusSession } from './session.js';
import type {
  BusStats, CommandHandlerOptions, CommandResult, EventHandlerOptions, ExecuteOptions, Handler, HandlerErrorEvent,
  Priority, PublishAsyncOptions, PublishOptions, StopOptions,
} from './types.js';
import type { HandlerLoadError } from './errors.js';
import type { CircuitState } from './breaker/circuit_breaker.js';
import type { DeadLetterEntry } from './dead_letter/dead_letter_entry.js';
import type { DeadLetters } from './dead_letter/dead_letter_queue.js';
import type { BusMetrics } from './metrics/bus_metrics.js';
import type { TransportStats } from './transport.js';
import type { ClusterStatus } from './jetstream/cluster_status.js';
import type { ScheduledEvents } from './scheduled_events.js';
import { startDashboard, type DashboardServer } from './dashboard/dashboard.js';
import type { DashboardOptions } from './dashboard/options.js';

/** Events a bus emits; listen with `bus.on(name, listener)` (EventEmitter), typed by this map. @group Bus */
export interface MessageBusEvents {
  /** Unsettled events crossed the high water mark (`active: true`) or fell to the low one (`active: false`). */
  backpressure: [{ active: boolean }];
  /** One delivery attempt failed. */
  'handler-error': [HandlerErrorEvent];
  /** A worker handler registered after start() failed to load and was unregistered. */
  'registration-error': [{ topic: string; handler: string; error: HandlerLoadError }];
  /** A handler's circuit breaker (on one topic) changed state. */
  circuit: [{ topic: string; handler: string; from: CircuitState; to: CircuitState }];
  /** A delivery exhausted its retries; the entry is in `bus.deadLetters` (and its file, with a path). */
  'dead-letter': [DeadLetterEntry];
}

/**
 * A multi-threaded in-process message bus. Events are encoded once into a
 * SharedArrayBuffer ring per priority lane; a Piscina pool of workers claims
 * them in adaptive batches. Inline (function) handlers run on the main thread.
 * @see {@link MessageBusEvents}: the events it emits, with `on`/`once`/`off` of the EventEmitter it extends.
 * @group Bus
 */
export class MessageBus extends EventEmitter<MessageBusEvents> {
  /** Whether retry, circuit breakers, the dead-letter queue and handler timeouts are on when their option is absent. */
  protected static readonly resilientByDefault: boolean = false;
  readonly #engine: Engine;

  constructor(options?: BusOptions) {
    super();
    this.#engine = new Engine(resolveOptions(options, (new.target as typeof MessageBus).resilientByDefault), this);
  }

  /** Starts the pool and checks every worker handler loads. Events published before are kept and run now. */
  start(): Promise<void> {
    return this.#engine.start();
  }

  /** Stops the pool; by default after every accepted event settled. What is abandoned is logged and counted. */
  stop(options?: StopOptions): Promise<void> {
    return this.#engine.stop(options);
  }

  /** Resolves once every accepted event is settled. */
  drain(): Promise<void> {
    return this.#engine.drain();
  }

  /**
   * Adds middleware; returns a function that removes it. A function is
   * publish middleware: it runs on the main thread for every publish (and
   * execute), in the order added, and may add headers (`ctx.setHeader`) or
   * refuse the event (return false). `workerMiddleware(module, export)` wraps
   * every worker handler call in the workers (add it before `start()`).
   */
  use(middleware: PublishMiddleware | WorkerMiddlewareRef): () => void {
    return this.#engine.use(middleware);
  }

  /**
   * Subscribes a handler; every handler of a topic gets each event. `topic`
   * may be a wildcard pattern: `orders.*` (one token) or `orders.>` (one or
   * more trailing tokens); the handler sees each event's concrete topic.
   * Returns a function that unsubscribes.
   */
  registerEventHandler<P = unknown>(topic: string, handler: Handler<P> | WorkerHandlerRef, options?: EventHandlerOptions): () => void {
    return this.#engine.register(topic, handler as Handler, options, false);
  }

  /** Sets the one handler of a command topic; a second one throws. Returns a function that unregisters. */
  registerCommandHandler<P = unknown, R = unknown>(topic: string, handler: Handler<P, R> | WorkerHandlerRef,
    options?: CommandHandlerOptions): () => void {
    return this.#engine.register(topic, handler as Handler, options, true);
  }

  /** Publishes an event; false when the queue is full (reject-new, adaptive-rate-limit) or the bus is stopping. */
  publish(topic: string, payload: unknown, options?: PublishOptions): boolean {
    return this.#engine.publish(topic, payload, options, undefined);
  }

  /** Publishes, waiting for room; rejects with BackpressureError after `timeoutMs`. */
  publishAsync(topic: string, payload: unknown, options?: PublishAsyncOptions): Promise<boolean> {
    return this.#engine.publishAsync(topic, payload, options, undefined);
  }

  /** Runs a command's handler and resolves with its result; never rejects for a handler failure. */
  execute<R = unknown>(topic: string, payload: unknown, options?: ExecuteOptions): Promise<CommandResult<R>> {
    return this.#engine.execute(topic, payload, options, undefined) as Promise<CommandResult<R>>;
  }

  /** A scope whose events carry its id and whose handlers go away on close(). */
  session(id: string = randomUUID()): BusSession {
    if (typeof id !== 'string' || id.length === 0) throw new TypeError(`session id must be a non-empty string, got ${String(id)}`);
    return new BusSession(this, id);
  }

  /** Counters and the queue's state, as plain numbers. */
  stats(): BusStats {
    return this.#engine.stats();
  }

  /** Counters, HDR latency percentiles and the Prometheus exposition: `metrics.snapshot()`, `metrics.prometheus()`, `metrics.registry`. */
  get metrics(): BusMetrics {
    return this.#engine.metrics;
  }

  /**
   * The state of a handler's circuit breaker on `topic` (each handler of each
   * topic has its own). Without `topic`: the least healthy of the handler's
   * circuits over every topic it is on. 'closed' for a handler without one.
   */
  circuitState(handler: string, topic?: string): CircuitState {
    return this.#engine.circuitState(handler, topic);
  }

  /** Delayed events not yet due (`publish(…, { delayMs | at })`): list, count and cancel them. */
  get scheduled(): ScheduledEvents {
    return this.#engine.scheduled;
  }

  /**
   * Closes a handler's circuit on `topic` now, as an operator does once the
   * dependency is back: what it held runs, its failure window starts empty.
   * False when the handler has no breaker there or it is closed already.
   */
  resetCircuit(handler: string, topic: string): boolean {
    return this.#engine.resetCircuit(handler, topic);
  }

  /** Deliveries that exhausted their retries (empty when the dead-letter queue is off). */
  get deadLetters(): DeadLetters {
    return this.#engine.deadLetters;
  }

  /**
   * With a transport (`transport: jetstream({...})`): its publish window
   * (events not yet stored by the server), what this process took from the
   * stream, handed back and had redelivered, and reconnects. Undefined without one.
   */
  transportStats(): TransportStats | undefined {
    return this.#engine.transportStats();
  }

  /**
   * Starts the dashboard on its own HTTP server (127.0.0.1:9465 by default):
   * the bus's figures live in a browser, its dead letters and circuits. To
   * mount it on an existing server instead: `dashboardHandler(bus, options)`.
   */
  dashboard(options?: DashboardOptions): Promise<DashboardServer> {
    return startDashboard(this, options);
  }

  /** @internal What the dashboard shows of the options: the pool's and the queue's bounds. */
  dashboardFacts(): { maxThreads: number; capacity: number; highWaterMark: number; lowWaterMark: number } {
    return this.#engine.dashboardFacts();
  }

  /**
   * With a transport: the cluster as this process sees it, every process
   * (heard from in the last few seconds) with its figures, the event stream
   * and its consumers' backlog. Undefined without one.
   */
  clusterStatus(): Promise<ClusterStatus | undefined> {
    return this.#engine.clusterStatus();
  }

  /** Records waiting in each lane for a worker. */
  laneDepths(): Record<Priority, number> {
    return this.#engine.laneDepths();
  }
}
