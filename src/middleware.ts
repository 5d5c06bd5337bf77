/**
 * Publish middleware (`bus.use(fn)`): functions that run on the main thread
 * for every publish, in registration order, before the event is encoded.
 * Each may add headers or refuse the event. The context object is one per
 * bus, reused for every publish: a publish with no middleware costs one
 * length check.
 */
import { MiddlewareError } from './errors.js';
import type { Priority } from './protocol/task.js';

/** What a publish middleware sees, valid during its call only (the object is reused). @group Middleware */
export interface PublishContext {
  readonly topic: string;
  readonly payload: unknown;
  readonly priority: Priority;
  readonly sessionId: string | undefined;
  /** 'command' for `execute`, 'event' for `publish`/`publishAsync` (delayed ones included). */
  readonly kind: 'event' | 'command';
  /** Headers so far: the publish's own and those earlier middleware set. Read-only; add with `setHeader`. */
  readonly headers: Readonly<Record<string, string>> | undefined;
  /** Adds or replaces a header of this event (a string value; checked with the rest when the event is encoded). */
  setHeader(name: string, value: string): void;
}

/**
 * A publish middleware: return false to refuse the event (counted as
 * filtered; `publish` returns false, `execute` resolves with a
 * `RefusedError`); anything else lets it through. It must not be async: a
 * publish is synchronous. What it throws reaches the publisher as a
 * `MiddlewareError`.
 * @group Middleware
 */
export type PublishMiddleware = (context: PublishContext) => boolean | void;

class Context implements PublishContext {
  topic = '';
  payload: unknown = undefined;
  priority: Priority = 'normal';
  sessionId: string | undefined = undefined;
  kind: 'event' | 'command' = 'event';
  headers: Readonly<Record<string, string>> | undefined = undefined;
  /** headers is a copy this chain made (safe to add to), not the caller's object. */
  owned = false;

  setHeader(name: string, value: string): void {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError(`setHeader: name must be a non-empty string, got ${String(name)}`);
    if (typeof value !== 'string') throw new TypeError(`setHeader: value of header '${name}' must be a string, got ${typeof value}`);
    if (!this.owned) {
      this.headers = { ...this.headers };
      this.owned = true;
    }
    (this.headers as Record<string, string>)[name] = value;
  }
}

/** What `run` returns when a middleware refused the event (`refusedBy` names it). */
export const REFUSED = Symbol('refused');

export class PublishMiddlewareChain {
  /** Replaced, never changed in place: a publish runs the chain as it was when it began (copy on write, no copy per publish). */
  #chain: readonly { readonly fn: PublishMiddleware; readonly name: string }[] = [];
  readonly #context = new Context();
  /** After `run` returned REFUSED: the middleware that refused. */
  refusedBy = '';

  get active(): boolean {
    return this.#chain.length > 0;
  }

  /** Adds one; returns a function that removes it. */
  use(fn: PublishMiddleware): () => void {
    if (typeof fn !== 'function') throw new TypeError(`bus.use: middleware must be a function or workerMiddleware(module, export), got ${String(fn)}`);
    const link = { fn, name: fn.name !== '' ? fn.name : `#${this.#chain.length + 1}` };
    this.#chain = [...this.#chain, link];
    return () => {
      this.#chain = this.#chain.filter((l) => l !== link);
    };
  }

  /**
   * Runs every middleware in order: the headers to encode, or REFUSED.
   * Throws a MiddlewareError naming the one that threw.
   */
  run(topic: string, payload: unknown, priority: Priority, sessionId: string | undefined, kind: 'event' | 'command',
    headers: Readonly<Record<string, string>> | undefined): Readonly<Record<string, string>> | undefined | typeof REFUSED {
    const c = this.#context;
    c.topic = topic;
    c.payload = payload;
    c.priority = priority;
    c.sessionId = sessionId;
    c.kind = kind;
    c.headers = headers;
    c.owned = false;
    try {
      // A middleware that removes itself (or adds one) changes the next publish's chain, not this one's.
      const chain = this.#chain;
      for (let i = 0; i < chain.length; i++) {
        let verdict: boolean | void;
        try {
          verdict = chain[i].fn(c);
        } catch (err) {
          throw new MiddlewareError(topic, chain[i].name, err);
        }
        const maybe = verdict as unknown as PromiseLike<unknown> | null | undefined;
        if (maybe !== null && typeof maybe === 'object' && typeof maybe.then === 'function') {
          // Its outcome would come after the publish: refused outright, and a rejection of it is not left unhandled.
          maybe.then(undefined, () => {});
          throw new MiddlewareError(topic, chain[i].name,
            new TypeError('it returned a promise: publish middleware must be synchronous (a publish is)'));
        }
        if (verdict === false) {
          this.refusedBy = chain[i].name;
          return REFUSED;
        }
      }
      return c.headers;
    } finally {
      c.payload = undefined;
      c.headers = undefined;
    }
  }
}
