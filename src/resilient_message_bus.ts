import { MessageBus } from './message_bus.js';
import type { BusOptions } from './options.js';

/**
 * MessageBus with the resilience features on by default (retry with backoff,
 * circuit breakers, dead-letter queue). Until those land it behaves exactly
 * as MessageBus; code written against it keeps working as they arrive.
 */
export class ResilientMessageBus extends MessageBus {
  constructor(options?: BusOptions) {
    super(options);
  }
}
