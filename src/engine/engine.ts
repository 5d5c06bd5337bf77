/**
 * The engine behind MessageBus: builds the parts (see parts.ts), wires the
 * inline runner and the metrics to them, and runs the lifecycle: start()
 * (pool, handler probe, dead letters from their file) and stop() (drain,
 * stop the workers, dead-letter what waits for a retry, abandon the rest).
 *
 * One event's life, file by file: publisher.ts (validate, encode, count,
 * route) → lanes.ts (a record in its lane ring) → slot_pool.ts (wake or
 * start a worker) → workers/runtime.ts + workers/batch_runner.ts (claim, run,
 * report) → slot_pool.ts (PROGRESS) → outcome_dispatch.ts → failure_policy.ts
 * (retry or dead_lettering.ts) / in_flight.ts (stages, command replies, the
 * one settle exit). Inline handlers go publisher.ts → inline_runner.ts → the
 * same failure policy and in-flight records.
 */
import type { EventEmitter } from 'node:events';
import { BoundedEventQueue } from '../bounded_event_queue.js';
import { BreakerBoard } from '../breaker/breaker_board.js';
import type { CircuitState } from '../breaker/circuit_breaker.js';
import type { DeadLetters } from '../dead_letter/dead_letter_queue.js';
import { AlreadyStoppedError, HandlerLoadError, NotStartedError } from '../errors.js';
import { assertModuleExists, isWorkerMiddlewareRef, type WorkerHandlerRef, type WorkerMiddlewareRef } from '../handler_ref.js';
import { PublishMiddlewareChain, type PublishMiddleware } from '../middleware.js';
import { InlineRunner } from '../inline_runner.js';
import { inlineSink } from './inline_sink.js';
import type { HeldDelivery } from './failure_policy.js';
import { BusMetrics } from '../metrics/bus_metrics.js';
import type { ResolvedOptions } from '../options.js';
import { errorMessage } from '../protocol/error_text.js';
import { STOP, WAKE } from '../protocol/layout.js';
import { SharedRegistryWriter } from '../protocol/registry.js';
import type { Priority } from '../protocol/task.js';
import { RateLimitedLog } from '../rate_limited_log.js';
import { Router } from '../router.js';
import type { BusStats, CommandResult, EventHandlerOptions, Handler, PublishAsyncOptions, PublishOptions, StopOptions } from '../types.js';
import { EngineCounters } from './counters.js';
import { DeadLettering } from './dead_lettering.js';
import { Delayed } from './delayed.js';
import type { ScheduledEvents } from '../scheduled_events.js';
import { BusTracing } from '../tracing/bus_tracing.js';
import { FailurePolicy } from './failure_policy.js';
import { InFlight } from './in_flight.js';
import { Lanes } from './lanes.js';
import { Lifecycle } from './lifecycle.js';
import { OutcomeDispatch } from './outcome_dispatch.js';
import type { EngineParts } from './parts.js';
import { BusCodec, decodeValue, encodeValue } from './payload_encoding.js';
import { Publisher } from './publisher.js';
import { Registrar } from './registrar.js';
import { allocateSharedMemory, slotCount } from './shared_memory.js';
import { FLUSH_WAIT_MS, SlotPool } from './slot_pool.js';
import { STOP_OPTIONS, checkOptionsObject } from './validation.js';
import { Watchdog } from './watchdog.js';
import { JetStreamTransport } from '../jetstream/jetstream_transport.js';
import { isTransport, type TransportHost, type TransportStats } from '../transport.js';
import type { ClusterStatus } from '../jetstream/cluster_status.js';
import { createWorkerPool, probeHandlers, warmThreads, workersReady } from './worker_pool.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** How long start() waits for the pool's warm threads to load before it goes on anyway. */
const WORKERS_READY_TIMEOUT_MS = 10_000;

export class Engine {
  readonly #p: EngineParts;
  #stopping: Promise<void> | undefined;
  #starting: Promise<void> | undefined;

  constructor(options: ResolvedOptions, emitter: EventEmitter) {
    const p = { options, log: options.logger, counters: new EngineCounters(), lifecycle: new Lifecycle() } as Mutable<EngineParts>;
    this.#p = p;
    p.crashLog = new RateLimitedLog(p.log, 1000);
    const listenerLog = new RateLimitedLog(p.log, 1000);
    // Events are emitted from the middle of the engine's bookkeeping: a listener that throws must not leave a
    // command unanswered or a drain() hanging. It is logged (rate-limited) and the engine goes on.
    p.emitter = {
      emit: (name: string | symbol, ...args: unknown[]): boolean => {
        try {
          return emitter.emit(name, ...args);
        } catch (err) {
          listenerLog.warn({ event: String(name), err: errorMessage(err) }, `a '${String(name)}' listener threw; the bus goes on`);
          return true;
        }
      },
      listenerCount: (name: string | symbol): number => emitter.listenerCount(name),
    };
    p.codec = new BusCodec(options);
    p.tracing = BusTracing.create();
    p.middleware = new PublishMiddlewareChain();
    p.workerMiddleware = [];
    // Before the dead-letter queue: with a transport, dead letters go to its stream.
    const t = options.transport;
    p.transport = t === undefined ? undefined : isTransport(t) ? t : new JetStreamTransport(t.jetstream);
    p.transport?.bind(p.codec.name, p.log);
    p.registry = new SharedRegistryWriter();
    p.breakers = new BreakerBoard<HeldDelivery>(options.circuitBreaker, slotCount(options), {
      idle: () => p.queue.size === 0,
      moved: (topic, handler, from, to) => this.#circuitMoved(topic, handler, from, to),
      release: (items) => p.failures.release(items),
    });
    p.memory = allocateSharedMemory(options, p.registry.sab, p.breakers.sab, p.breakers.counterSabs);
    p.control = new Int32Array(p.memory.control);
    p.metrics = new BusMetrics({
      stats: () => this.stats(),
      liveReports: () => p.slots.liveReports(),
      handlerName: (id) => p.registrar.handlerName(id),
      breakerStates: () => p.breakers.snapshot(),
      deadLetterSize: () => p.deadLetters.queue.size,
      flush: () => p.slots.flushMetrics(FLUSH_WAIT_MS),
      transport: () => p.transport?.stats(),
    }, { maxTopics: options.metrics.maxTopics, topicSeries: p.memory.topicSeries, transport: p.transport !== undefined });
    p.router = new Router(p.registry, (topic, topicId) => p.metrics.topic(topic, topicId), (topic) => p.metrics.forgetTopic(topic));
    p.queue = new BoundedEventQueue(options.queue, () => p.slots.workerSettled());
    p.lanes = new Lanes(p);
    p.slots = new SlotPool(p);
    p.outcomes = new OutcomeDispatch(p);
    p.watchdog = new Watchdog(p);
    p.registrar = new Registrar(p);
    p.publisher = new Publisher(p);
    p.inFlight = new InFlight(p);
    p.failures = new FailurePolicy(p);
    p.deadLetters = new DeadLettering(p);
    p.delayed = new Delayed(p);
    const cb = options.circuitBreaker;
    p.inline = new InlineRunner(inlineSink(p), options.metrics.timing || (cb !== false && cb.slowCallMs !== undefined), () => p.tracing);
  }

  /** Publish middleware (a function) or worker middleware (before start()); returns a function that removes it. */
  use(middleware: PublishMiddleware | WorkerMiddlewareRef): () => void {
    const p = this.#p;
    if (!isWorkerMiddlewareRef(middleware)) return p.middleware.use(middleware as PublishMiddleware);
    if (p.lifecycle.state !== 'new') {
      throw new TypeError(`bus.use: worker middleware ${middleware.module}#${middleware.exportName} must be added before start() (workers load it when they start)`);
    }
    assertModuleExists(middleware, 'worker middleware');
    p.workerMiddleware.push(middleware);
    return () => {
      if (p.lifecycle.state !== 'new') throw new TypeError('bus.use: worker middleware cannot be removed once the bus started');
      const at = p.workerMiddleware.indexOf(middleware);
      if (at >= 0) p.workerMiddleware.splice(at, 1);
    };
  }

  register(topic: string, handler: Handler | WorkerHandlerRef, options: EventHandlerOptions | undefined, command: boolean): () => void {
    return this.#p.registrar.register(topic, handler, options, command);
  }

  // With tracing, each goes through its PRODUCER span (tracing/bus_tracing.ts); without, straight to the publisher.
  publish(topic: string, payload: unknown, options: PublishOptions | undefined, session: string | undefined): boolean {
    const p = this.#p;
    if (p.tracing === undefined) return p.publisher.publish(topic, payload, options, session);
    return p.tracing.publish(topic, options, (o) => p.publisher.publish(topic, payload, o, session), () => p.publisher.lastEventId);
  }

  publishAsync(topic: string, payload: unknown, options: PublishAsyncOptions | undefined, session: string | undefined): Promise<boolean> {
    const p = this.#p;
    if (p.tracing === undefined) return p.publisher.publishAsync(topic, payload, options, session);
    return p.tracing.publishAsync(topic, options, (o) => p.publisher.publishAsync(topic, payload, o, session));
  }

  execute(topic: string, payload: unknown, options: PublishAsyncOptions | undefined, session: string | undefined): Promise<CommandResult> {
    const p = this.#p;
    if (p.tracing === undefined) return p.publisher.execute(topic, payload, options, session);
    return p.tracing.execute(topic, options, (o) => p.publisher.execute(topic, payload, o, session));
  }

  start(): Promise<void> {
    const p = this.#p;
    if (p.lifecycle.running) return Promise.resolve();
    // A second start() while the first runs waits for the same outcome.
    if (p.lifecycle.poolStarting && this.#starting !== undefined) return this.#starting;
    if (p.lifecycle.state !== 'new') return Promise.reject(new AlreadyStoppedError(p.lifecycle.publicState));
    this.#starting = this.#start().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  async #start(): Promise<void> {
    const p = this.#p;
    p.lifecycle.move('starting');
    // A tracer provider registered after the bus was made (and before start) is used from now on.
    p.tracing ??= BusTracing.create();
    const refs = p.registrar.workerRefs();
    try {
      for (const ref of refs) assertModuleExists(ref);
      // A custom codec module: main needs it before any payload is encoded (and before dead letters load).
      await p.codec.load();
      for (const m of p.workerMiddleware) assertModuleExists(m, 'worker middleware');
      p.slots.attach(createWorkerPool(p.options, p.memory, refs, p.workerMiddleware));
      p.slots.pool!.on('error', (err: unknown) => {
        const message = errorMessage(err);
        // Piscina's report of a result that arrived for a task it had already ended (aborted, or ended by stop()): a
        // race main has already accounted for (the slot's EPOCH), not a fault.
        if (message.startsWith('Unexpected message from Worker')) p.log.debug({ err: message }, 'late result of an ended task ignored');
        else p.log.error({ err: message }, 'worker error outside a task');
      });
      const errors = await probeHandlers(p.slots.pool!, refs, p.workerMiddleware);
      if (errors.length > 0) throw new HandlerLoadError(errors.join('; '));
      await workersReady(p.control, warmThreads(p.options), WORKERS_READY_TIMEOUT_MS);
      await p.transport?.start(this.#transportHost());
      await p.deadLetters.start();
      await p.delayed.scheduler.start();
      await p.transport?.consume();
    } catch (err) {
      await p.transport?.close().catch(() => 0);
      await p.slots.detach()?.destroy();
      if (p.lifecycle.poolStarting) p.lifecycle.move('new');
      throw err;
    }
    if (!p.lifecycle.poolStarting) {
      // stop() was called while the pool started: it owns the rest.
      throw p.lifecycle.stoppedError();
    }
    p.lifecycle.move('running');
    p.breakers.start();
    p.registrar.probeLateRegistrations();
    p.log.info({ threads: p.options.pool.maxThreads, queued: p.queue.size }, 'bus started');
    p.inline.enable();
    p.slots.pump();
  }

  stop(options: StopOptions | undefined): Promise<void> {
    checkOptionsObject('stop options', options, STOP_OPTIONS);
    const drain = options?.drain ?? true;
    const timeoutMs = options?.timeoutMs ?? Infinity;
    if (typeof drain !== 'boolean') throw new TypeError(`stop option drain must be a boolean, got ${String(drain)}`);
    if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
      throw new RangeError(`stop option timeoutMs must be a number >= 0, got ${String(timeoutMs)}`);
    }
    this.#stopping ??= this.#stop(drain && this.#p.lifecycle.running, timeoutMs);
    return this.#stopping;
  }

  async #stop(drain: boolean, timeoutMs: number): Promise<void> {
    const p = this.#p;
    p.lifecycle.move('draining');
    p.queue.rejectWaiters();
    if (p.transport !== undefined) await this.#drainTransport(drain, timeoutMs);
    if (drain && p.queue.size > 0) {
      p.log.info({ pending: p.queue.size, timeoutMs }, 'stopping: draining pending events');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => {
        if (timeoutMs !== Infinity) timer = setTimeout(resolve, timeoutMs);
      });
      // Deliveries an open circuit holds are not waited for: they are dead-lettered (or abandoned) below.
      await Promise.race([p.inFlight.settled(true), timedOut]);
      clearTimeout(timer);
    }
    p.inline.disable();
    Atomics.store(p.control, STOP, 1);
    Atomics.add(p.control, WAKE, 1);
    Atomics.notify(p.control, WAKE);
    p.watchdog.stop();
    p.lifecycle.move('terminating');
    // Deliveries taken from the stream and not settled go back to it now, for another process. Published events the
    // server never stored are lost: counted as abandoned. A transport that fails to close must not stop the rest.
    if (p.transport !== undefined) {
      p.counters.abandoned += await p.transport.close().catch((err: unknown) => {
        p.log.error({ err: errorMessage(err) }, 'the transport did not close cleanly');
        return 0;
      });
    }
    await p.slots.detach()?.destroy();
    // Workers are gone: whatever their slots recorded is final now.
    p.slots.collect();
    p.failures.stop();
    p.deadLetters.stop();
    p.crashLog.flush('workers died mid-batch');
    p.breakers.stop();
    const abandoned = p.queue.size;
    if (abandoned > 0) {
      p.counters.abandoned += abandoned;
      p.inline.clear();
      p.lanes.clearOverflow();
      p.inFlight.abandonAll();
      p.log.warn({ abandoned }, 'bus stopped with events still pending; they were abandoned');
      p.inFlight.settle(abandoned);
    }
    // After every event it handed over settled or was abandoned: the settled ones' done marks are written.
    await p.delayed.stop();
    p.lifecycle.move('stopped');
    p.inFlight.resolveDrainWaiters();
    p.slots.releaseFlushWaiters();
    p.log.info(this.stats(), 'bus stopped');
  }

  drain(): Promise<void> {
    // Events published before start() wait for it: a drain before start() would never end.
    if (this.#p.lifecycle.state === 'new') return Promise.reject(new NotStartedError('drain()'));
    const transport = this.#p.transport;
    const published = transport === undefined ? Promise.resolve() : transport.flushed();
    return published.then(() => this.#p.inFlight.settled()).then(() => this.#p.slots.flushMetrics());
  }

  /**
   * stop() with a transport: no new deliveries are taken; with `drain`, what
   * this process published is stored and what it took is fed (the caller
   * then waits for it to settle), within `timeoutMs`.
   */
  async #drainTransport(drain: boolean, timeoutMs: number): Promise<void> {
    const t = this.#p.transport!;
    t.pause();
    if (!drain) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      if (timeoutMs !== Infinity) timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([t.flushed(), timedOut]);
    clearTimeout(timer);
  }

  /** What the transport may ask of the engine. */
  #transportHost(): TransportHost {
    const p = this.#p;
    return {
      log: p.log,
      codecName: p.codec.name,
      capacity: p.options.queue.capacity,
      processId: p.memory.idPrefix,
      stats: () => this.stats(),
      eventRegistrations: () => p.router.eventRegistrations(),
      commandTopics: () => p.router.commandTopics(),
      executeLocal: (topic, payload, options) => p.publisher.execute(topic, payload, options, undefined, true),
      values: {
        encode: (value) => encodeValue(value, p.codec),
        decode: (flags, bytes) => decodeValue(flags, bytes, p.codec),
      },
      routeFor: (reg) => p.router.single(reg),
      deliver: (event, route, settled) => p.publisher.deliver(event, route, settled),
    };
  }

  get metrics(): BusMetrics {
    return this.#p.metrics;
  }

  /**
   * A handler's circuit on a topic; without a topic, the least healthy over
   * its topics ('closed' when it has no breaker). A name no registered handler
   * has is a TypeError: a typo must not read as a healthy circuit.
   */
  circuitState(handler: string, topic?: string): CircuitState {
    const p = this.#p;
    if (typeof handler !== 'string') throw new TypeError(`circuitState(handler): handler must be a string, got ${String(handler)}`);
    if (topic !== undefined && typeof topic !== 'string') throw new TypeError(`circuitState(handler, topic): topic must be a string, got ${String(topic)}`);
    const state = p.breakers.state(handler, topic);
    if (state !== undefined) return state;
    if (p.router.hasHandler(handler, topic)) return 'closed';
    const where = topic === undefined ? '' : ` on topic '${topic}'`;
    const known = [...p.router.handlerNames(topic, 11)];
    const list = known.length === 0 ? 'none is registered' : known.length <= 10 ? `registered: ${known.map((n) => `'${n}'`).join(', ')}` : 'more than 10 are registered';
    throw new TypeError(`circuitState: no handler named '${handler}'${where} (${list})`);
  }

  get deadLetters(): DeadLetters {
    return this.#p.deadLetters.public;
  }

  resetCircuit(handler: string, topic: string): boolean {
    const reset = this.#p.breakers.reset(topic, handler);
    if (reset) this.#p.log.warn({ topic, handler }, 'circuit reset by an operator');
    return reset;
  }

  dashboardFacts(): { maxThreads: number; capacity: number; highWaterMark: number; lowWaterMark: number } {
    const { pool, queue } = this.#p.options;
    return { maxThreads: pool.maxThreads, capacity: queue.capacity, highWaterMark: queue.highWaterMark, lowWaterMark: queue.lowWaterMark };
  }

  get scheduled(): ScheduledEvents {
    return this.#p.delayed.public;
  }

  stats(): BusStats {
    const { counters: c, queue, slots } = this.#p;
    return {
      published: c.published,
      processed: c.processedMain + slots.workerProcessed(),
      failed: c.failed,
      dropped: c.dropped,
      rejected: c.rejected,
      filtered: c.filtered,
      scheduled: this.#p.delayed.size,
      abandoned: c.abandoned,
      retried: c.retried,
      deadLettered: c.deadLettered,
      workerCrashes: c.workerCrashes,
      handlerTimeouts: c.handlerTimeouts,
      held: this.#p.breakers.heldCount,
      queueSize: queue.size,
      activeWorkers: slots.activeWorkers,
      backpressureActive: queue.backpressureActive,
    };
  }

  clusterStatus(): Promise<ClusterStatus | undefined> {
    return this.#p.transport?.clusterStatus?.() ?? Promise.resolve(undefined);
  }

  transportStats(): TransportStats | undefined {
    return this.#p.transport?.stats();
  }

  /** Records in the lanes not yet claimed by a worker (for tests and metrics). */
  laneDepths(): Record<Priority, number> {
    return this.#p.lanes.depths();
  }

  #circuitMoved(topic: string, handler: string, from: CircuitState, to: CircuitState): void {
    this.#p.log.info({ topic, handler, from, to }, `circuit ${to === 'half_open' ? 'half-open' : to}`);
    this.#p.emitter.emit('circuit', { topic, handler, from, to });
  }
}
