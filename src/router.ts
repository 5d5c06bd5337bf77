/**
 * Which handlers run for a topic: registrations per topic (or per wildcard
 * pattern, filters/topic_pattern.ts), and routes (stages in priority order) cached
 * per concrete topic until a registration changes them.
 *
 * A concrete topic reached only through patterns is counted in the first
 * matching pattern's metrics series and its records carry the topic as text
 * (the registry keeps the pattern's id): neither the shared registry nor
 * the metrics grow with how many concrete topics are published, only with
 * registrations. The route cache is bounded (MAX_CACHED_ROUTES).
 */
import { DuplicateCommandHandlerError } from './errors.js';
import type { WorkerHandlerRef } from './handler_ref.js';
import type { SharedRegistryWriter } from './protocol/registry.js';
import { MAX_WORKER_HANDLERS_PER_TOPIC } from './protocol/limits.js';
import { isWildcard, topicMatcher } from './filters/topic_pattern.js';
import { checkCarriedTopic } from './engine/validation.js';
import type { EventFilter } from './filters.js';
import type { Handler } from './types.js';
import type { TopicCounters } from './metrics/bus_metrics.js';

/** Routes kept at most (a pattern can match any number of topics); the oldest is dropped beyond. */
export const MAX_CACHED_ROUTES = 16_384;

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
  /** Runs before each delivery to this handler; false: the handler does not get the event. */
  readonly filter: EventFilter | undefined;
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
  /** The topic's metrics counters (a wildcard route's: its first pattern's; undefined on the shared empty route). */
  readonly counters: TopicCounters | undefined;
  /** Registry id of the topic, or of the pattern when `carriesTopic` (-1 when no stage runs in a worker). */
  readonly topicId: number;
  /** Records carry the topic as text: only patterns route it (topicId names the first). */
  readonly carriesTopic: boolean;
  /** Some handler has a filter: each event gets its own route of the handlers that take it. */
  readonly filtered: boolean;
  readonly stages: readonly Stage[];
}

const EMPTY: Route = Object.freeze({ topic: '', topicId: -1, stages: Object.freeze([]), counters: undefined, carriesTopic: false, filtered: false });

/** Which handlers run for a topic, cached per topic until a registration changes it. */
export class Router {
  readonly #registry: SharedRegistryWriter;
  readonly #countersFor: (topic: string, topicId: number) => TopicCounters;
  readonly #events = new Map<string, Registration[]>();
  readonly #commands = new Map<string, Registration>();
  readonly #routes = new Map<string, Route>();
  readonly #commandRoutes = new Map<string, Route>();
  /** Event registrations on wildcard patterns are in #events under the pattern too; these match topics. */
  readonly #patterns = new Map<string, (topic: string) => boolean>();
  /** Registration order, to break priority ties between a topic's own handlers and patterns' handlers. */
  readonly #order = new WeakMap<Registration, number>();
  #registered = 0;

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
    const pattern = patternOf(reg.topic);
    if (pattern !== undefined && !this.#patterns.has(reg.topic)) this.#patterns.set(reg.topic, pattern);
    this.#order.set(reg, ++this.#registered);
    const list = this.#events.get(reg.topic) ?? [];
    list.push(reg);
    // Stable: equal priorities keep registration order.
    list.sort((a, b) => a.priority - b.priority);
    this.#events.set(reg.topic, list);
    this.#invalidate(reg.topic, pattern !== undefined);
    return () => {
      const current = this.#events.get(reg.topic);
      const at = current?.indexOf(reg) ?? -1;
      if (current === undefined || at < 0) return;
      current.splice(at, 1);
      this.#invalidate(reg.topic, pattern !== undefined);
      if (current.length === 0) {
        this.#events.delete(reg.topic);
        this.#patterns.delete(reg.topic);
        if (!this.#commands.has(reg.topic)) this.#topicGone(reg.topic);
      }
    };
  }

  /** A pattern's registrations changed: any cached topic may route differently. */
  #invalidate(topic: string, pattern: boolean): void {
    if (pattern) this.#routes.clear();
    else this.#routes.delete(topic);
  }

  /** The handlers of a concrete topic (publish refused wildcards): its own, and those of every pattern matching it. */
  eventRoute(topic: string): Route {
    let route = this.#routes.get(topic);
    if (route === undefined) {
      const own = this.#events.get(topic);
      if (this.#patterns.size === 0) {
        if (own === undefined) return EMPTY;
        route = this.#build(topic, own, undefined);
      } else {
        let regs: Registration[] | undefined;
        let firstPattern: string | undefined;
        for (const [key, matches] of this.#patterns) {
          if (!matches(topic)) continue;
          firstPattern ??= key;
          (regs ??= own ? own.slice() : []).push(...this.#events.get(key)!);
        }
        if (regs === undefined) route = own ? this.#build(topic, own, undefined) : EMPTY;
        else {
          regs.sort((a, b) => a.priority - b.priority || this.#order.get(a)! - this.#order.get(b)!);
          route = this.#build(topic, regs, own ? undefined : firstPattern);
        }
      }
      // Bounded: a pattern matches any number of topics; the oldest cached route goes (it is rebuilt if needed).
      if (this.#routes.size >= MAX_CACHED_ROUTES) this.#routes.delete(this.#routes.keys().next().value!);
      this.#routes.set(topic, route);
    }
    return route;
  }

  /** Whether `topic` matches the registered pattern `pattern` (false when no handler is registered on it). */
  patternMatches(pattern: string, topic: string): boolean {
    return this.#patterns.get(pattern)?.(topic) === true;
  }

  /** Whether any event handler is registered on a pattern. */
  get hasPatterns(): boolean {
    return this.#patterns.size > 0;
  }

  commandRoute(topic: string): Route | undefined {
    let route = this.#commandRoutes.get(topic);
    if (route === undefined) {
      const reg = this.#commands.get(topic);
      if (reg === undefined) return undefined;
      route = this.#build(topic, [reg], undefined);
      this.#commandRoutes.set(topic, route);
    }
    return route;
  }

  workerHandlerCount(topic: string): number {
    return (this.#events.get(topic) ?? []).filter((r) => r.ref !== undefined).length;
  }

  /** The handler named `name` registered on exactly `topic` (a pattern is its own topic here): event handlers first, then the command handler. */
  find(topic: string, name: string): Registration | undefined {
    const reg = this.#events.get(topic)?.find((r) => r.name === name);
    if (reg !== undefined) return reg;
    const command = this.#commands.get(topic);
    return command?.name === name ? command : undefined;
  }

  /** The handler named `name` that gets events of the concrete `topic`: its own, or a matching pattern's (a replayed dead letter). */
  target(topic: string, name: string): Registration | undefined {
    const own = this.find(topic, name);
    if (own !== undefined) return own;
    for (const [key, matches] of this.#patterns) {
      if (!matches(topic)) continue;
      const reg = this.#events.get(key)?.find((r) => r.name === name);
      if (reg !== undefined) return reg;
    }
    return undefined;
  }

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

  /**
   * A route to one handler only, for events of `topic` (a replayed dead
   * letter goes to the handler it failed in; a transport's consumer delivers
   * to its handler). On a pattern's handler, records carry their topic.
   */
  single(reg: Registration, topic: string = reg.topic): Route {
    return this.#build(topic, [reg], this.#patterns.has(reg.topic) ? reg.topic : undefined);
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

  /** `pattern`: only patterns route the topic, this one first (records carry the topic; metrics count under the pattern). */
  #build(topic: string, regs: readonly Registration[], pattern: string | undefined): Route {
    if (pattern !== undefined && topic !== pattern) checkCarriedTopic(topic);
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
    for (const s of stages) {
      if (s.inWorker && s.handlers.length > MAX_WORKER_HANDLERS_PER_TOPIC) {
        throw new RangeError(`topic '${topic}' has ${s.handlers.length} worker handlers in a row (its own and its patterns'); the most is ${MAX_WORKER_HANDLERS_PER_TOPIC}`);
      }
    }
    const seriesTopic = pattern ?? topic;
    const topicId = stages.some((s) => s.inWorker) ? this.#registry.topicId(seriesTopic) : -1;
    return Object.freeze({
      topic, topicId, stages: Object.freeze(stages), counters: this.#countersFor(seriesTopic, topicId),
      carriesTopic: pattern !== undefined, filtered: regs.some((r) => r.filter !== undefined),
    });
  }

  /** A copy of `route` with only the handlers `keep` says yes to (per event, for filtered routes). */
  static narrowed(route: Route, keep: (reg: Registration) => boolean): Route {
    const stages: Stage[] = [];
    for (const s of route.stages) {
      const handlers = s.handlers.filter(keep);
      if (handlers.length === s.handlers.length) stages.push(s);
      else if (handlers.length > 0) stages.push(stage(handlers));
    }
    // Stages of one kind that met around a removed stage stay two: each still runs in order.
    return { ...route, stages, filtered: false };
  }
}

const patternOf = (topic: string): ((topic: string) => boolean) | undefined => (isWildcard(topic) ? topicMatcher(topic) : undefined);

function stage(handlers: Registration[]): Stage {
  const inWorker = handlers[0].ref !== undefined;
  return Object.freeze({
    inWorker,
    handlerIds: Int32Array.from(handlers, (h) => h.handlerId),
    handlers: Object.freeze(handlers.slice()),
  });
}
