/**
 * The package's public entry point: everything users import from 'ringbus'.
 * @module ringbus
 */
export { MessageBus, type MessageBusEvents } from './message_bus.js';
export { ResilientMessageBus } from './resilient_message_bus.js';
export { BusSession } from './session.js';
export {
  workerHandler, workerMiddleware, type WorkerHandlerRef, type WorkerMiddlewareFn, type WorkerMiddlewareInfo, type WorkerMiddlewareRef,
} from './handler_ref.js';
export type { PublishContext, PublishMiddleware } from './middleware.js';
export type { ScheduledEventInfo, ScheduledEvents } from './scheduled_events.js';
export { dashboardHandler, type DashboardHandler, type DashboardServer } from './dashboard/dashboard.js';
export type { DashboardOptions } from './dashboard/options.js';
export {
  allOf, anyOf, byHeader, byHeaders, bySession, byTopic, checkPattern, isWildcard, not, rateLimit, topicMatcher,
  type BySessionOptions, type EventFilter, type FilterEvent, type HeaderMatcher, type RateLimitOptions,
} from './filters.js';
export {
  AlreadyStoppedError, BackpressureError, BusStoppedError, CircuitOpenError, CommandTimeoutError, ConfigError, DuplicateCommandHandlerError, HandlerFailedError,
  HandlerLoadError, HandlerTimeoutError, MiddlewareError, NoHandlerError, NotStartedError, RefusedError, RingbusError, SessionClosedError, WorkerCrashedError,
  type RingbusErrorCode,
} from './errors.js';
export type { CircuitState } from './breaker/circuit_breaker.js';
export type { DeadEvent, DeadLetterEntry } from './dead_letter/dead_letter_entry.js';
export type { DeadLetters } from './dead_letter/dead_letter_queue.js';
export {
  DEFAULT_OPTIONS, type BackpressureStrategy, type BusOptions, type CircuitBreakerOptions, type CodecModule, type CodecOption,
  type DeadLetterOptions, type MetricsOptions, type SchedulerOptions, type PoolOptions, type QueueOptions, type RetryOptions,
} from './options.js';
export type { PayloadCodec } from './protocol/codec.js';
export type { TransportOption, TransportStats } from './transport.js';
export type { ClusterStatus, ProcessStatus } from './jetstream/cluster_status.js';
export type { Logger } from './logger.js';
export type {
  BusEvent, BusStats, CommandFailed, CommandHandlerOptions, CommandResult, CommandSucceeded, EventHandlerOptions, ExecuteOptions, Handler,
  HandlerErrorEvent, Priority, PublishAsyncOptions, PublishOptions, StopOptions,
} from './types.js';
export type { BusMetrics, LatencySummary, MetricsSnapshot } from './metrics/bus_metrics.js';
export { loadConfig, CONFIG_FILE_NAME, type LoadConfigOptions, type LoadedConfig, type ConfigSource, type ConfigValue } from './config/load_config.js';
export { OPTION_TABLE, type OptionSpec } from './config/option_table.js';
