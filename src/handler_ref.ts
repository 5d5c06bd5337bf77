/**
 * Worker handler references (`workerHandler(module, export)`): how a module
 * is named, resolved and checked before a pool loads it.
 */
import { existsSync } from 'node:fs';
import { basename, extname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HandlerLoadError } from './errors.js';

const WORKER_HANDLER = Symbol.for('ringbus.workerHandler');
const WORKER_MIDDLEWARE = Symbol.for('ringbus.workerMiddleware');

/**
 * A handler that runs in the worker pool: a module and one of its exports.
 *
 * @group Handlers
 */
export interface WorkerHandlerRef {
  readonly [WORKER_HANDLER]: true;
  /** The module as a file: URL. */
  readonly module: string;
  /** The export to call ('default' for the default export). */
  readonly exportName: string;
}

/**
 * Names a handler that runs in the worker pool. `module` is a path (relative
 * to the working directory) or a file: URL; `.ts` modules load when tsx
 * is installed (the workers register its hooks themselves).
 *
 * @group Handlers
 */
export function workerHandler(module: string | URL, exportName = 'default'): WorkerHandlerRef {
  let url: string;
  if (module instanceof URL) url = module.href;
  else if (typeof module === 'string' && module.length > 0) {
    url = module.startsWith('file:') ? new URL(module).href : pathToFileURL(resolve(module)).href;
  } else {
    throw new TypeError(`workerHandler: module must be a path or file: URL, got ${String(module)}`);
  }
  if (!url.startsWith('file:')) throw new TypeError(`workerHandler: module must be a file, got ${url}`);
  if (typeof exportName !== 'string' || exportName.length === 0) {
    throw new TypeError(`workerHandler: exportName must be a non-empty string, got ${String(exportName)}`);
  }
  return Object.freeze({ [WORKER_HANDLER]: true as const, module: url, exportName });
}

/**
 * Middleware that runs in the workers around every worker handler call:
 * `bus.use(workerMiddleware(module, export))`, before `start()`. The export
 * is `(event, next, { handler }) => result`: it calls `next()` to run
 * the rest of the chain and the handler, and returns (or awaits) what
 * `next()` returns. What it throws fails that delivery like a handler's
 * error. Added first, outermost.
 *
 * @group Middleware
 */
export interface WorkerMiddlewareRef {
  readonly [WORKER_MIDDLEWARE]: true;
  /** The module as a file: URL. */
  readonly module: string;
  readonly exportName: string;
}

/** What a worker middleware is told of the handler it wraps. @group Middleware */
export interface WorkerMiddlewareInfo {
  /** The handler's name (the event says its topic). */
  readonly handler: string;
}

/**
 * What a worker middleware module exports: call `next()` to run the rest of
 * the chain and the handler, and return (or await) what it returns.
 * @group Middleware
 */
export type WorkerMiddlewareFn<E = import('./types.js').BusEvent> = (event: E, next: () => unknown, info: WorkerMiddlewareInfo) => unknown;

/** Names a worker middleware: a module (path or file: URL) and its export. @group Middleware */
export function workerMiddleware(module: string | URL, exportName = 'default'): WorkerMiddlewareRef {
  const ref = workerHandler(module, exportName);
  return Object.freeze({ [WORKER_MIDDLEWARE]: true as const, module: ref.module, exportName: ref.exportName });
}

export function isWorkerMiddlewareRef(value: unknown): value is WorkerMiddlewareRef {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[WORKER_MIDDLEWARE] === true;
}

export function isWorkerHandlerRef(value: unknown): value is WorkerHandlerRef {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[WORKER_HANDLER] === true;
}

/** The name a handler is known by (circuit breakers, metrics, errors) when none is given. */
export function defaultWorkerHandlerName(ref: WorkerHandlerRef): string {
  if (ref.exportName !== 'default') return ref.exportName;
  const file = basename(fileURLToPath(ref.module));
  return file.slice(0, file.length - extname(file).length);
}

/** Fails fast, before any event, when the module file is not there. */
export function assertModuleExists(ref: { readonly module: string; readonly exportName: string }, kind = 'worker handler'): void {
  if (!existsSync(fileURLToPath(ref.module))) {
    throw new HandlerLoadError(`${kind} module ${ref.module} (export '${ref.exportName}') does not exist`);
  }
}

export function isTypeScriptModule(ref: { readonly module: string }): boolean {
  return /\.[cm]?ts$/.test(ref.module);
}

/** The error text for a TypeScript handler module that cannot load because tsx is not there; names the file. */
export function tsxMissingMessage(module: string): string {
  const file = module.startsWith('file:') ? fileURLToPath(module) : module;
  return `TypeScript worker handler module ${file} needs tsx: install it (npm i -D tsx) or build the handlers to .js`;
}
