/**
 * Registration of event and command handlers: checks the arguments, gives
 * each handler a name unique on its topic and a breaker, interns worker
 * handlers in the shared registry, and checks a worker handler registered
 * after start() loads (asynchronously: a failure unregisters it and is
 * reported as 'registration-error'). Also turns registry ids back into names.
 */
import { HandlerLoadError } from '../errors.js';
import { assertModuleExists, defaultWorkerHandlerName, isWorkerHandlerRef, type WorkerHandlerRef } from '../handler_ref.js';
import { errorMessage } from '../protocol/error_text.js';
import { MAX_WORKER_HANDLERS_PER_TOPIC } from '../protocol/limits.js';
import { ENTRY_HANDLER } from '../protocol/registry.js';
import type { Registration } from '../router.js';
import type { EventHandlerOptions, Handler } from '../types.js';
import type { EngineParts } from './parts.js';
import { probeHandlers } from './worker_pool.js';
import { COMMAND_HANDLER_OPTIONS, EVENT_HANDLER_OPTIONS, checkOptionsObject, checkTopic, laneOf } from './validation.js';
import { checkPattern, isWildcard } from '../filters/topic_pattern.js';

export class Registrar {
  readonly #p: EngineParts;
  /** Worker handlers registered while start() was probing: checked once the pool runs. */
  readonly #lateProbes: Registration[] = [];
  readonly #removers = new Map<Registration, () => void>();

  constructor(p: EngineParts) {
    this.#p = p;
  }

  register(topic: string, handler: Handler | WorkerHandlerRef, options: EventHandlerOptions | undefined, command: boolean): () => void {
    const p = this.#p;
    checkTopic(topic);
    checkOptionsObject(`handler options for topic '${topic}'`, options, command ? COMMAND_HANDLER_OPTIONS : EVENT_HANDLER_OPTIONS);
    if (isWildcard(topic)) {
      if (command) throw new TypeError(`command topic '${topic}' has a wildcard token ('*' or '>'): a command has one handler per concrete topic`);
      checkPattern(topic, `topic pattern '${topic}'`);
    }
    const filter = command ? undefined : options?.filter;
    if (filter !== undefined && typeof filter !== 'function') {
      throw new TypeError(`filter of the handler for topic '${topic}' must be a function (event) => boolean, got ${String(filter)}`);
    }
    const priority = command ? 2 : laneOf(options?.priority, `priority of the handler for topic '${topic}'`);
    if (options?.name !== undefined && (typeof options.name !== 'string' || options.name.length === 0)) {
      throw new TypeError(`name of the handler for topic '${topic}' must be a non-empty string, got ${String(options.name)}`);
    }
    let name: string;
    let ref: WorkerHandlerRef | undefined;
    if (typeof handler === 'function') {
      name = options?.name ?? (handler.name || 'anonymous');
    } else if (isWorkerHandlerRef(handler)) {
      if (p.lifecycle.running || p.lifecycle.poolStarting) assertModuleExists(handler);
      name = options?.name ?? defaultWorkerHandlerName(handler);
      ref = handler;
    } else {
      throw new TypeError(`handler for topic '${topic}' must be a function or workerHandler(module, export), got ${String(handler)}`);
    }
    if (p.router.find(topic, name) !== undefined && !command) {
      if (typeof handler === 'function' && options?.name === undefined) {
        // An unnamed function: number it, so breakers, metrics and dead letters can tell it apart.
        let n = 2;
        while (p.router.find(topic, `${name}-${n}`) !== undefined) n++;
        name = `${name}-${n}`;
      } else {
        throw new TypeError(`topic '${topic}' already has a handler named '${name}'; give this one another name (option name)`);
      }
    }
    if (ref !== undefined && p.router.workerHandlerCount(topic) >= MAX_WORKER_HANDLERS_PER_TOPIC) {
      throw new RangeError(`topic '${topic}' already has ${MAX_WORKER_HANDLERS_PER_TOPIC} worker handlers, the most one topic may have`);
    }
    const breakerExisted = p.breakers.has(topic, name);
    const breaker = p.breakers.index(topic, name);
    let remove: () => void;
    let reg: Registration;
    try {
      reg = ref === undefined
        ? { topic, name, priority, command, fn: handler as Handler, ref: undefined, handlerId: -1, breaker, filter }
        : {
          topic, name, priority, command, fn: undefined, ref, handlerId: p.registry.handlerId(topic, ref.module, ref.exportName, name, breaker), breaker, filter,
        };
      remove = p.router.add(reg);
    } catch (err) {
      if (!breakerExisted) p.breakers.free(topic, name);
      throw err;
    }
    let removed = false;
    const unregister = (): void => {
      if (removed) return;
      removed = true;
      this.#removers.delete(reg);
      remove();
      p.breakers.free(topic, reg.name);
      p.transport?.handlersChanged();
    };
    p.transport?.handlersChanged();
    if (reg.ref !== undefined) {
      this.#removers.set(reg, unregister);
      if (p.lifecycle.running) this.#probeLate(reg);
      else if (p.lifecycle.poolStarting) this.#lateProbes.push(reg);
    }
    return unregister;
  }

  /** Every registered worker handler, for the start-up probe. */
  workerRefs(): WorkerHandlerRef[] {
    return this.#p.router.workerRefs();
  }

  /** The pool runs: check what was registered while it started. */
  probeLateRegistrations(): void {
    for (const reg of this.#lateProbes.splice(0)) this.#probeLate(reg);
  }

  handlerName(handlerId: number): string {
    const entry = this.#p.registry.entry(handlerId);
    return entry.kind === ENTRY_HANDLER ? entry.name : `#${handlerId}`;
  }

  topicName(topicId: number): string {
    const entry = this.#p.registry.entry(topicId);
    return entry.kind === ENTRY_HANDLER ? `#${topicId}` : entry.topic;
  }

  #probeLate(reg: Registration): void {
    const p = this.#p;
    const pool = p.slots.pool;
    if (pool === undefined) return;
    probeHandlers(pool, [reg.ref!]).then(
      (errors) => {
        const message = errors[0];
        if (message === undefined) return;
        this.#removers.get(reg)?.();
        const error = new HandlerLoadError(message);
        p.log.error({ topic: reg.topic, handler: reg.name, err: message }, 'worker handler failed to load; unregistered');
        p.emitter.emit('registration-error', { topic: reg.topic, handler: reg.name, error });
      },
      (err: unknown) => p.log.error({ err: errorMessage(err) }, 'worker handler probe failed'),
    );
  }
}
