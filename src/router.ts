/**
 * Which handlers run for a topic: registrations per topic, and routes (stages
 * in priority order) cached until a registration changes them.
 */
import { DuplicateCommandHandlerError } from './errors.js';
import type { WorkerHandlerRef } from './handler_ref.js';
import type { SharedRegistryWriter } from './protocol/registry.js';
import type { Handler } from './types.js';
import type { TopicCounters } from './metrics/bus_metrics.js';

/** One handler registered on one topic. */
export interface Registration {
  readonly topic: string;
  readonly name: string;
  /** Lane index: 0 critical … 3 low. */
  readonly priority: number;
  readonly command: boolean;
  /** Set for inline handlers. */
  readonly fn: Handler | undefined;
  /** Set for worker handlers. */
  readonly ref: WorkerHandlerRef | undefined;
  /** Registry id of a worker handler, -1 for inline. */
  readonly handlerId: number;
  /** Index of its circuit breaker (one per handler of each topic), -1 without breakers. */
  readonly breaker: number;
}

/**
 * A run of consecutive handlers (in priority order) of the same kind. An
 * event whose topic mixes inline and worker handlers goes through its stages
 * one after the other, so a higher-priority handler always finishes before a
 * lower-priority one starts, wherever each runs.
 */
export interface Stage {
  readonly inWorker: boolean;
  readonly handlerIds: Int32Array;
  readonly handlers: readonly Registration[];
}

export interface Route {
  readonly topic: string;
  /** The topic's metrics counters (undefined on the shared empty route). */
  readonly counters: TopicCounters | undefined;
  /** Registry id of the topic (-1 when no stage runs in a worker). */
  readonly topicId: number;
  readonly stages: readonly Stage[];
}

const EMPTY: Route = Object.freeze({ topic: '', topicId: -1, stages: Object.freeze([]), counters: undefined });

/** Which handlers run for a topic, cached per topic until a registration changes it. */
export class Router {
  readonly #registry: SharedRegistryWriter;
  readonly #countersFor: (topic: string, topicId: number) => TopicCounters;
  readonly #events = new Map<string, Registration[]>();
  readonly #commands = new Map<string, Registration>();
  readonly #routes = new Map<string, Route>();
  readonly #commandRoutes = new Map<string, Route>();

  readonly #topicGone: (topic: string) => void;

  /**
   * `countersFor`: the topic's metrics counters, asked when its first handler
   * is registered (so a topic has a series from then on) and again with its
   * registry id when a route to a worker is built. `topicGone`: the topic's
   * last handler (event or command) was unregistered.
   */
  constructor(registry: SharedRegistryWriter, countersFor: (topic: string, topicId: number) => TopicCounters,
    topicGone: (topic: string) => void) {
    this.#registry = registry;
    this.#countersFor = countersFor;
    this.#topicGone = topicGone;
  }

  add(reg: Registration): () => void {
    if (!this.#events.has(reg.topic) && !this.#commands.has(reg.topic)) this.#countersFor(reg.topic, -1);
    if (reg.command) {
      if (this.#commands.has(reg.topic)) throw new DuplicateCommandHandlerError(reg.topic);
      this.#commands.set(reg.topic, reg);
      this.#commandRoutes.delete(reg.topic);
      return () => {
        if (this.#commands.get(reg.topic) === reg) {
          this.#commands.delete(reg.topic);
          this.#commandRoutes.delete(reg.topic);
          if (!this.#events.has(reg.topic)) this.#topicGone(reg.topic);
        }
      };
    }
    const list = this.#events.get(reg.topic) ?? [];
    list.push(reg);
    // Stable: equal priorities keep registration order.
    list.sort((a, b) => a.priority - b.priority);
    this.#events.set(reg.topic, list);
    this.#routes.delete(reg.topic);
    return () => {
      const current = this.#events.get(reg.topic);
      const at = current?.indexOf(reg) ?? -1;
      if (current === undefined || at < 0) return;
      current.splice(at, 1);
      this.#routes.delete(reg.topic);
      if (current.length === 0) {
        this.#events.delete(reg.topic);
        if (!this.#commands.has(reg.topic)) this.#topicGone(reg.topic);
      }
    };
  }

  eventRoute(topic: string): Route {
    let route = this.#routes.get(topic);
    if (route === undefined) {
      const regs = this.#events.get(topic);
      route = regs ? this.#build(topic, regs) : EMPTY;
      if (regs) this.#routes.set(topic, route);
    }
    return route;
  }

  commandRoute(topic: string): Route | undefined {
    let route = this.#commandRoutes.get(topic);
    if (route === undefined) {
      const reg = this.#commands.get(topic);
      if (reg === undefined) return undefined;
      route = this.#build(topic, [reg]);
      this.#commandRoutes.set(topic, route);
    }
    return route;
  }

  workerHandlerCount(topic: string): number {
    return (this.#events.get(topic) ?? []).filter((r) => r.ref !== undefined).length;
  }

  /** The handler named `name` on a topic (event handlers first, then the command handler). */
  find(topic: string, name: string): Registration | undefined {
    const reg = this.#events.get(topic)?.find((r) => r.name === name);
    if (reg !== undefined) return reg;
    const command = this.#commands.get(topic);
    return command?.name === name ? command : undefined;
  }

  /** A route to one handler only (a replayed dead letter goes to the handler it failed in). */
  /** Topics with a command handler. */
  commandTopics(): string[] {
    return [...this.#commands.keys()];
  }

  /** Every event handler registration, of every topic. */
  eventRegistrations(): Registration[] {
    const out: Registration[] = [];
    for (const list of this.#events.values()) out.push(...list);
    return out;
  }

  single(reg: Registration): Route {
    return this.#build(reg.topic, [reg]);
  }

  /** Names of the registered handlers (on `topic`, or on any topic), at most `limit` of them. */
  handlerNames(topic: string | undefined, limit: number): Set<string> {
    const names = new Set<string>();
    const add = (r: Registration | undefined): boolean => {
      if (r !== undefined && (topic === undefined || r.topic === topic)) names.add(r.name);
      return names.size >= limit;
    };
    for (const list of topic === undefined ? this.#events.values() : [this.#events.get(topic) ?? []]) {
      for (const r of list) if (add(r)) return names;
    }
    if (topic === undefined) {
      for (const r of this.#commands.values()) if (add(r)) return names;
    } else add(this.#commands.get(topic));
    return names;
  }

  /** Whether a handler of that name is registered (on `topic`, or on any topic). */
  hasHandler(name: string, topic?: string): boolean {
    if (topic !== undefined) return this.find(topic, name) !== undefined;
    for (const list of this.#events.values()) for (const r of list) if (r.name === name) return true;
    for (const r of this.#commands.values()) if (r.name === name) return true;
    return false;
  }

  /** Every registered worker handler, for the start-up probe. */
  workerRefs(): WorkerHandlerRef[] {
    const refs: WorkerHandlerRef[] = [];
    for (const list of this.#events.values()) for (const r of list) if (r.ref) refs.push(r.ref);
    for (const r of this.#commands.values()) if (r.ref) refs.push(r.ref);
    return refs;
  }

  #build(topic: string, regs: readonly Registration[]): Route {
    const stages: Stage[] = [];
    let run: Registration[] = [];
    for (const reg of regs) {
      if (run.length > 0 && (run[0].ref !== undefined) !== (reg.ref !== undefined)) {
        stages.push(stage(run));
        run = [];
      }
      run.push(reg);
    }
    if (run.length > 0) stages.push(stage(run));
    const topicId = stages.some((s) => s.inWorker) ? this.#registry.topicId(topic) : -1;
    return Object.freeze({ topic, topicId, stages: Object.freeze(stages), counters: this.#countersFor(topic, topicId) });
  }
}

function stage(handlers: Registration[]): Stage {
  const inWorker = handlers[0].ref !== undefined;
  return Object.freeze({
    inWorker,
    handlerIds: Int32Array.from(handlers, (h) => h.handlerId),
    handlers: Object.freeze(handlers.slice()),
  });
}
