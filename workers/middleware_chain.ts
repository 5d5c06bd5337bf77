/**
 * Worker middleware (`bus.use(workerMiddleware(module, export))`): each
 * worker imports the modules once and wraps every worker handler in them,
 * first added outermost. The chain is built once per handler, not per call:
 * `next` is a fixed function per layer that reads the event being handled
 * from the chain, which is safe because a worker runs one handler call at a
 * time (the batch runner awaits each before the next).
 */
import type { LoadedHandler } from './handler_table.js';
import type { WorkerMiddlewareFn as PublicWorkerMiddlewareFn, WorkerMiddlewareInfo } from '../src/handler_ref.js';

/** As the worker runs it: the event is the decoded one, whatever its declared type. */
export type WorkerMiddlewareFn = PublicWorkerMiddlewareFn<unknown>;

/** `handler` wrapped in `middleware` (outermost first); the handler itself when there is none. */
export function compose(handler: LoadedHandler, middleware: readonly WorkerMiddlewareFn[], info: WorkerMiddlewareInfo): LoadedHandler {
  if (middleware.length === 0) return handler;
  let current: unknown;
  let next: () => unknown = () => handler(current);
  for (let i = middleware.length - 1; i >= 0; i--) {
    const mw = middleware[i];
    const inner = next;
    next = () => mw(current, inner, info);
  }
  const outer = next;
  return (event: unknown): unknown => {
    current = event;
    return outer();
  };
}
