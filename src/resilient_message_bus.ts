/**
 * ResilientMessageBus: MessageBus with every resilience feature on unless
 * turned off.
 */
import { MessageBus } from './message_bus.js';

/**
 * MessageBus with every resilience feature on unless its option is `false`:
 * retries with exponential backoff, a circuit breaker per handler, the
 * dead-letter queue and handler timeouts. (On MessageBus each is off unless
 * its option is given.)
 *
 * @group Bus
 */
export class ResilientMessageBus extends MessageBus {
  protected static override readonly resilientByDefault: boolean = true;
}
