/**
 * BusSession: a scope whose events carry its id and whose handlers are
 * unregistered on close().
 */
import { SessionClosedError } from './errors.js';
import type { WorkerHandlerRef } from './handler_ref.js';
import type { MessageBus } from './message_bus.js';
import type {
  CommandHandlerOptions, CommandResult, EventHandlerOptions, ExecuteOptions, Handler, PublishAsyncOptions, PublishOptions,
} from './types.js';

/**
 * A scope on a bus, like a session of the Python bus: what it publishes
 * carries its `sessionId`, and `close()` removes every handler it registered.
 * @group Bus
 */
export class BusSession {
  /** Carried as `sessionId` by every event this session publishes. */
  readonly id: string;
  readonly #bus: MessageBus;
  readonly #unsubscribers = new Set<() => void>();
  #closed = false;

  constructor(bus: MessageBus, id: string) {
    this.#bus = bus;
    this.id = id;
  }

  /** True once `close()` ran: the session registers and publishes nothing more. */
  get closed(): boolean {
    return this.#closed;
  }

  /** As MessageBus.registerEventHandler; `close()` removes the handler. */
  registerEventHandler<P = unknown>(topic: string, handler: Handler<P> | WorkerHandlerRef, options?: EventHandlerOptions): () => void {
    this.#assertOpen();
    return this.#track(this.#bus.registerEventHandler(topic, handler, options));
  }

  /** As MessageBus.registerCommandHandler; `close()` removes the handler. */
  registerCommandHandler<P = unknown, R = unknown>(topic: string, handler: Handler<P, R> | WorkerHandlerRef,
    options?: CommandHandlerOptions): () => void {
    this.#assertOpen();
    return this.#track(this.#bus.registerCommandHandler(topic, handler, options));
  }

  /** As MessageBus.publish, with this session's id. */
  publish(topic: string, payload: unknown, options?: PublishOptions): boolean {
    this.#assertOpen();
    return this.#bus.publish(topic, payload, { ...options, sessionId: this.id });
  }

  /** As MessageBus.publishAsync, with this session's id. */
  publishAsync(topic: string, payload: unknown, options?: PublishAsyncOptions): Promise<boolean> {
    // A promise-returning call rejects, like the bus's own, rather than throwing.
    if (this.#closed) return Promise.reject(new SessionClosedError(this.id));
    return this.#bus.publishAsync(topic, payload, { ...options, sessionId: this.id });
  }

  /** As MessageBus.execute, with this session's id. */
  execute<R = unknown>(topic: string, payload: unknown, options?: ExecuteOptions): Promise<CommandResult<R>> {
    if (this.#closed) return Promise.reject(new SessionClosedError(this.id));
    return this.#bus.execute<R>(topic, payload, { ...options, sessionId: this.id });
  }

  /** Removes every handler this session registered. Events already accepted still run. */
  close(): void {
    this.#closed = true;
    for (const off of this.#unsubscribers) off();
    this.#unsubscribers.clear();
  }

  /** `await using s = bus.session()` closes it at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  #track(off: () => void): () => void {
    const once = (): void => {
      this.#unsubscribers.delete(once);
      off();
    };
    this.#unsubscribers.add(once);
    return once;
  }

  #assertOpen(): void {
    if (this.#closed) throw new SessionClosedError(this.id);
  }
}
