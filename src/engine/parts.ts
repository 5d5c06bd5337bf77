/**
 * The engine's parts, as each module sees the others. The engine builds one
 * of these and hands it to every part: calls between parts are direct method
 * calls on concrete classes (the hot path has no emitters, closures or
 * indirection through callbacks).
 */
import type { EventEmitter } from 'node:events';
import type { BoundedEventQueue } from '../bounded_event_queue.js';
import type { BreakerBoard } from '../breaker/breaker_board.js';
import type { InlineRunner } from '../inline_runner.js';
import type { Logger } from '../logger.js';
import type { RateLimitedLog } from '../rate_limited_log.js';
import type { BusMetrics } from '../metrics/bus_metrics.js';
import type { ResolvedOptions } from '../options.js';
import type { SharedBusMemory } from '../protocol/layout.js';
import type { SharedRegistryWriter } from '../protocol/registry.js';
import type { Router } from '../router.js';
import type { PublishMiddlewareChain } from '../middleware.js';
import type { WorkerMiddlewareRef } from '../handler_ref.js';
import type { Transport } from '../transport.js';
import type { EngineCounters } from './counters.js';
import type { DeadLettering } from './dead_lettering.js';
import type { Delayed } from './delayed.js';
import type { BusTracing } from '../tracing/bus_tracing.js';
import type { FailurePolicy, HeldDelivery } from './failure_policy.js';
import type { InFlight } from './in_flight.js';
import type { Lanes } from './lanes.js';
import type { Lifecycle } from './lifecycle.js';
import type { OutcomeDispatch } from './outcome_dispatch.js';
import type { BusCodec } from './payload_encoding.js';
import type { Publisher } from './publisher.js';
import type { Registrar } from './registrar.js';
import type { SlotPool } from './slot_pool.js';
import type { Watchdog } from './watchdog.js';

export interface EngineParts {
  readonly options: ResolvedOptions;
  readonly log: Logger;
  /** For storms of worker crashes and timeouts: one line a second, with the count. */
  readonly crashLog: RateLimitedLog;
  /** The public bus: every event users listen to is emitted on it. */
  /** The bus's events; a listener that throws is logged, never thrown into the engine (see engine.ts). */
  readonly emitter: Pick<EventEmitter, 'emit' | 'listenerCount'>;
  readonly memory: SharedBusMemory;
  readonly control: Int32Array;
  readonly counters: EngineCounters;
  /** The payload codec on main (encode at publish, decode results and dead letters) and the strict JSON check. */
  readonly codec: BusCodec;
  readonly lifecycle: Lifecycle;
  readonly queue: BoundedEventQueue;
  readonly registry: SharedRegistryWriter;
  readonly router: Router;
  readonly registrar: Registrar;
  readonly breakers: BreakerBoard<HeldDelivery>;
  readonly metrics: BusMetrics;
  readonly lanes: Lanes;
  readonly inline: InlineRunner;
  readonly publisher: Publisher;
  readonly inFlight: InFlight;
  readonly failures: FailurePolicy;
  readonly deadLetters: DeadLettering;
  readonly slots: SlotPool;
  readonly outcomes: OutcomeDispatch;
  readonly watchdog: Watchdog;
  /** Publish middleware (`bus.use(fn)`), run by every publish. */
  readonly middleware: PublishMiddlewareChain;
  /** Worker middleware (`bus.use(workerMiddleware(…))`), fixed when the pool starts. */
  readonly workerMiddleware: WorkerMiddlewareRef[];
  /** Spans and trace context, when @opentelemetry/api is installed and a provider registered (else undefined: no cost). */
  tracing: BusTracing | undefined;
  /** Delayed events: the scheduler and `bus.scheduled`. */
  readonly delayed: Delayed;
  /** Carries events between processes (undefined: events stay in this process). */
  readonly transport: Transport | undefined;
}
