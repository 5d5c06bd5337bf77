/**
 * Worker handlers by registry id, imported once per worker, with load errors
 * that name module and export.
 */
import type { SharedRegistryReader } from '../src/protocol/registry.js';
import { ENTRY_HANDLER } from '../src/protocol/registry.js';
import { HandlerLoadError } from '../src/errors.js';
import { loadFailureMessage } from './load_error.js';
import { compose, type WorkerMiddlewareFn } from './middleware_chain.js';
import { traced } from './tracing.js';

export type LoadedHandler = (event: unknown) => unknown;

let typeScriptHooks: Promise<void> | undefined;

/** Registers tsx's ESM hooks in this worker (Node 20 workers do not inherit the main thread's); the codec module uses it too. */
export function enableTypeScript(tsxEsmApi: string): Promise<void> {
  typeScriptHooks ??= import(tsxEsmApi).then((api: { register: () => unknown }) => {
    api.register();
  });
  return typeScriptHooks;
}

/** Imports a handler module and picks the export, with an error that names both (and where a syntax error is). */
export async function loadHandler(module: string, exportName: string, tsxEsmApi?: string, what = 'worker handler'): Promise<LoadedHandler> {
  let mod: Record<string, unknown>;
  try {
    if (tsxEsmApi !== undefined && /\.[cm]?ts$/.test(module)) await enableTypeScript(tsxEsmApi);
    mod = (await import(module)) as Record<string, unknown>;
  } catch (err) {
    throw new HandlerLoadError(await loadFailureMessage(module, err, what));
  }
  const fn = mod[exportName];
  if (typeof fn !== 'function') {
    const found = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
    throw new HandlerLoadError(
      `${what} module ${module} has no function export '${exportName}'` +
        ` (function exports: ${found.length ? found.join(', ') : 'none'})`,
    );
  }
  return fn as LoadedHandler;
}

/**
 * Handlers by registry id, imported once per worker. A module that fails to
 * load is remembered as failed, so each delivery to it fails fast with the
 * same message instead of importing again.
 */
export class HandlerTable {
  readonly #registry: SharedRegistryReader;
  readonly #loaded: (LoadedHandler | undefined)[] = [];
  readonly #failed = new Map<number, Error>();
  /** By module#export: the same export registered on many topics (one id per topic) is imported once. */
  readonly #byExport = new Map<string, LoadedHandler>();
  readonly #breakers: number[] = [];
  /** Per id: the first id seen with the same handler name (metrics are per name, ids are per topic). */
  readonly #metricsKeys: number[] = [];
  readonly #firstIdOfName = new Map<string, number>();
  readonly #tsxEsmApi: string | undefined;
  /** The bus's worker middleware, imported once (before the first handler), in the order added. */
  readonly #middlewareRefs: readonly { module: string; exportName: string }[];
  #middleware: WorkerMiddlewareFn[] | undefined;
  #middlewareLoading: Promise<WorkerMiddlewareFn[]> | undefined;

  constructor(registry: SharedRegistryReader, tsxEsmApi: string | undefined, middleware: readonly { module: string; exportName: string }[] = []) {
    this.#registry = registry;
    this.#middlewareRefs = middleware;
    this.#tsxEsmApi = tsxEsmApi;
  }

  /** The loaded function, or undefined when `load(id)` must be awaited first. */
  get(id: number): LoadedHandler | undefined {
    const loaded = this.#loaded[id];
    if (loaded !== undefined || this.#byExport.size === 0) return loaded;
    // A new id of an export already imported (the same handler on another topic): no await needed.
    const entry = this.#registry.get(id);
    if (entry.kind !== ENTRY_HANDLER) return undefined;
    const known = this.#byExport.get(`${entry.module}#${entry.exportName}`);
    if (known === undefined || this.#middleware === undefined) return undefined;
    const fn = traced(compose(known, this.#middleware, { handler: entry.name }), entry.name);
    this.#loaded[id] = fn;
    return fn;
  }


  /** The handler's breaker index in the shared board (-1: none). */
  breaker(id: number): number {
    let b = this.#breakers[id];
    if (b === undefined) {
      const entry = this.#registry.get(id);
      b = entry.kind === ENTRY_HANDLER ? entry.breaker : -1;
      this.#breakers[id] = b;
    }
    return b;
  }

  /**
   * The id metrics are recorded under: one per handler name, so a handler
   * registered on many topics (one id per topic) keeps one series, not one
   * per topic. Main turns it back into the name.
   */
  metricsKey(id: number): number {
    let key = this.#metricsKeys[id];
    if (key === undefined) {
      const name = this.name(id);
      key = this.#firstIdOfName.get(name) ?? id;
      this.#firstIdOfName.set(name, key);
      this.#metricsKeys[id] = key;
    }
    return key;
  }

  name(id: number): string {
    const entry = this.#registry.get(id);
    return entry.kind === ENTRY_HANDLER ? entry.name : `#${id}`;
  }

  /** Whether `err` is this handler's load failure (what `load` threw), not something its code threw. */
  isLoadFailure(id: number, err: unknown): boolean {
    return this.#failed.get(id) === err;
  }

  async load(id: number): Promise<LoadedHandler> {
    const failed = this.#failed.get(id);
    if (failed) throw failed;
    const entry = this.#registry.get(id);
    if (entry.kind !== ENTRY_HANDLER) throw new Error(`ringbus: registry entry ${id} is not a handler`);
    try {
      this.#middlewareLoading ??= Promise.all(this.#middlewareRefs.map((m) => loadHandler(m.module, m.exportName, this.#tsxEsmApi, 'worker middleware')));
      this.#middleware = (await this.#middlewareLoading) as WorkerMiddlewareFn[];
      const raw = this.#byExport.get(`${entry.module}#${entry.exportName}`) ?? await loadHandler(entry.module, entry.exportName, this.#tsxEsmApi);
      const fn = traced(compose(raw, this.#middleware, { handler: entry.name }), entry.name);
      this.#loaded[id] = fn;
      this.#byExport.set(`${entry.module}#${entry.exportName}`, raw);
      return fn;
    } catch (err) {
      this.#failed.set(id, err as Error);
      throw err;
    }
  }
}
