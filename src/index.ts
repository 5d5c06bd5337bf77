export { MessageBus, type MessageBusEvents } from './message_bus.js';
export { ResilientMessageBus } from './resilient_message_bus.js';
export { BusSession } from './session.js';
export { workerHandler, type WorkerHandlerRef } from './handler_ref.js';
export { BackpressureError, BusStoppedError, DuplicateCommandHandlerError, HandlerLoadError, RingbusError } from './errors.js';
export { DEFAULT_OPTIONS, type BackpressureStrategy, type BusOptions, type PoolOptions, type QueueOptions } from './options.js';
export type { Logger } from './logger.js';
export type {
  BusEvent, BusStats, CommandHandlerOptions, CommandResult, EventHandlerOptions, ExecuteOptions, Handler,
  HandlerErrorEvent, Priority, PublishAsyncOptions, PublishOptions, StopOptions,
} from './types.js';
