/**
 * The Piscina pool behind the slots: where the worker runtime is, how a pool
 * is created for a bus's shared memory, and the probe that checks worker
 * handler modules load before any event reaches them.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { HandlerLoadError } from '../errors.js';
import { isTypeScriptModule, tsxMissingMessage, type WorkerHandlerRef, type WorkerMiddlewareRef } from '../handler_ref.js';
import { WORKERS_READY, type SharedBusMemory } from '../protocol/layout.js';
import type { ProbeResult, RuntimeTask } from '../protocol/task.js';
import type { ResolvedOptions } from '../options.js';

export type WorkerPool = Piscina<RuntimeTask, ProbeResult | null>;

/** Finds tsx's ESM API the way the application would (from the working directory), else beside ringbus. */
function resolveTsx(): string | undefined {
  for (const base of [`${process.cwd()}/`, import.meta.url]) {
    try {
      const pkg = createRequire(base).resolve('tsx/package.json');
      return pathToFileURL(join(dirname(pkg), 'dist/esm/api/index.mjs')).href;
    } catch {
      // try the next base
    }
  }
  return undefined;
}

/**
 * Where the worker runtime is, and what a worker needs to load it and the
 * handlers. From source (tsx, vitest) workers start from a small .mjs entry
 * that registers tsx's ESM hooks and imports the TypeScript runtime; built,
 * they load runtime.js directly and need tsx only for .ts handler modules.
 */
function runtimeLocation(refs: readonly { readonly module: string }[]): { filename: string; tsxEsmApi: string | undefined } {
  const fromSource = import.meta.url.endsWith('.ts');
  const filename = new URL(`../../workers/${fromSource ? 'typescript_entry.mjs' : 'runtime.js'}`, import.meta.url).href;
  const typeScript = refs.find(isTypeScriptModule);
  // Looked up even with no TypeScript handler yet, so one registered after start() loads too (workers
  // import tsx only for a .ts module).
  const tsx = resolveTsx();
  if (tsx === undefined && typeScript !== undefined) throw new HandlerLoadError(tsxMissingMessage(typeScript.module));
  if (tsx === undefined && fromSource) {
    throw new HandlerLoadError(`ringbus runs from its TypeScript source (${fileURLToPath(filename)}) and needs tsx: install it (npm i -D tsx)`);
  }
  return { filename, tsxEsmApi: tsx };
}

/**
 * One more thread than slots: at most `maxThreads` drain tasks run, so one
 * started worker is always idle, and the task that replaces a crashed or
 * timed-out worker starts on it at once instead of waiting 100–300 ms for a
 * new thread to load. (With `minThreads: 0` the spare is not kept warm.)
 */
export function createWorkerPool(options: ResolvedOptions, memory: SharedBusMemory, refs: readonly WorkerHandlerRef[],
  middleware: readonly WorkerMiddlewareRef[] = []): WorkerPool {
  const { pool } = options;
  const where = runtimeLocation([...refs, ...middleware]);
  return new Piscina<RuntimeTask, ProbeResult | null>({
    filename: where.filename,
    minThreads: warmThreads(options),
    maxThreads: pool.maxThreads + 1,
    idleTimeout: pool.idleTimeoutMs,
    concurrentTasksPerWorker: 1,
    resourceLimits: pool.resourceLimits,
    workerData: {
      ...memory, tsxEsmApi: where.tsxEsmApi, workerMiddleware: middleware.map((m) => ({ module: m.module, exportName: m.exportName })),
    } satisfies SharedBusMemory,
  });
}

/** Threads the pool keeps started: `minThreads` and the spare (none with `minThreads: 0`). */
export const warmThreads = (options: ResolvedOptions): number => (options.pool.minThreads === 0 ? 0 : options.pool.minThreads + 1);

/**
 * Resolves once `count` workers have loaded the runtime (each bumps
 * WORKERS_READY), or after `timeoutMs` (start-up is slow, not broken: the
 * bus runs either way).
 */
export async function workersReady(control: Int32Array, count: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (let seen = Atomics.load(control, WORKERS_READY); seen < count; seen = Atomics.load(control, WORKERS_READY)) {
    const left = deadline - performance.now();
    if (left <= 0) return;
    const wait = Atomics.waitAsync(control, WORKERS_READY, seen, left);
    if (wait.async) await wait.value;
  }
}

/** Loads each distinct module#export in a worker; one message per handler that failed, naming module and export. */
export async function probeHandlers(pool: WorkerPool, refs: readonly WorkerHandlerRef[], middleware: readonly WorkerMiddlewareRef[] = []): Promise<string[]> {
  if (refs.length === 0 && middleware.length === 0) return [];
  const unique = [...new Map(refs.map((r) => [`${r.module}#${r.exportName}`, r])).values()];
  const result = await pool.run({
    kind: 'probe',
    handlers: [
      ...middleware.map((m) => ({ module: m.module, exportName: m.exportName, kind: 'worker middleware' })),
      ...unique.map((r) => ({ module: r.module, exportName: r.exportName })),
    ],
  });
  return result?.errors ?? [];
}
