import { availableParallelism } from 'node:os';
import type { Logger } from './logger.js';

/** What happens to a publish when `queue.capacity` events are unsettled. */
export type BackpressureStrategy = 'reject-new' | 'drop-oldest' | 'adaptive-rate-limit';

export interface PoolOptions {
  /**
   * Worker threads kept alive even when idle.
   * @default 1
   */
  minThreads?: number;
  /**
   * Most worker threads. The dispatcher never has more drain tasks in flight
   * than this, so events wait in the priority lanes, not in Piscina's queue.
   * @default os.availableParallelism()
   */
  maxThreads?: number;
  /**
   * An idle worker above `minThreads` is ended after this long.
   * @default 10000
   */
  idleTimeoutMs?: number;
  /**
   * Most records a worker claims at once. Workers claim fewer when the lanes
   * are short (latency) or handlers are slow (fairness between workers).
   * @default 1024
   */
  maxBatch?: number;
  /**
   * How long a worker with nothing to do parks for new records before it
   * returns its task. Parked workers cost no CPU; a new record wakes one.
   * @default 20
   */
  lingerMs?: number;
}

export interface QueueOptions {
  /**
   * Most events accepted and not yet settled: queued, in a worker, or waiting
   * for a retry. Bounds the bus's memory.
   * @default 65536
   */
  capacity?: number;
  /**
   * Fraction of capacity at which `backpressure` turns on.
   * @default 0.8
   */
  highWaterMark?: number;
  /**
   * Fraction of capacity at which `backpressure` turns off again.
   * @default 0.5
   */
  lowWaterMark?: number;
  /**
   * Largest encoded payload (JSON text or binary bytes).
   * @default 1048576
   */
  maxPayloadBytes?: number;
  /**
   * Bytes of each priority lane's shared ring (rounded up to a power of two,
   * at least large enough for two of the largest records). Records that do
   * not fit wait in an overflow list on the main thread, still within
   * `capacity`.
   * @default 4194304
   */
  ringBytes?: number;
  /**
   * What happens at capacity.
   * @default 'reject-new'
   */
  strategy?: BackpressureStrategy;
  /**
   * With `adaptive-rate-limit`: the delay `publishAsync` adds just below
   * capacity. The delay grows with the square of how far the queue is past
   * `lowWaterMark`.
   * @default 10
   */
  maxDelayMs?: number;
}

export interface BusOptions {
  pool?: PoolOptions;
  queue?: QueueOptions;
  /**
   * Any pino-compatible logger. Only state changes are logged, never events.
   * @default pino at level 'info'
   */
  logger?: Logger;
}

export interface ResolvedOptions {
  pool: Required<PoolOptions>;
  queue: Required<QueueOptions>;
  logger: Logger | undefined;
}

export const DEFAULT_OPTIONS: Readonly<{ pool: Required<PoolOptions>; queue: Required<QueueOptions> }> = Object.freeze({
  pool: Object.freeze({
    minThreads: 1,
    maxThreads: availableParallelism(),
    idleTimeoutMs: 10_000,
    maxBatch: 1024,
    lingerMs: 20,
  }),
  queue: Object.freeze({
    capacity: 65_536,
    highWaterMark: 0.8,
    lowWaterMark: 0.5,
    maxPayloadBytes: 1024 * 1024,
    ringBytes: 4 * 1024 * 1024,
    strategy: 'reject-new' as BackpressureStrategy,
    maxDelayMs: 10,
  }),
});

export const STRATEGIES: readonly BackpressureStrategy[] = ['reject-new', 'drop-oldest', 'adaptive-rate-limit'];

const show = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : typeof v === 'bigint' ? `${v}n` : String(v));

function checkKeys(where: string, value: object, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`${where}${key} is not an option (allowed: ${allowed.join(', ')})`);
    }
  }
}

function checkObject(name: string, value: unknown): void {
  if (value !== undefined && (value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw new TypeError(`${name} must be an object, got ${show(value)}`);
  }
}

function integer(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer, got ${show(value)}`);
  }
  if (value < min || value > max) {
    throw new RangeError(`${name} must be in [${min}, ${max}], got ${show(value)}`);
  }
}

function finite(name: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new TypeError(`${name} must be a finite number, got ${show(value)}`);
  }
}

/** Merges the user's options over the defaults once, and validates every field. */
export function resolveOptions(options: BusOptions | undefined): ResolvedOptions {
  checkObject('options', options);
  const o = options ?? {};
  checkKeys('options.', o, ['pool', 'queue', 'logger']);
  checkObject('pool', o.pool);
  checkObject('queue', o.queue);
  checkKeys('pool.', o.pool ?? {}, Object.keys(DEFAULT_OPTIONS.pool));
  checkKeys('queue.', o.queue ?? {}, Object.keys(DEFAULT_OPTIONS.queue));

  const pool = { ...DEFAULT_OPTIONS.pool, ...o.pool };
  const queue = { ...DEFAULT_OPTIONS.queue, ...o.queue };
  // Only maxThreads was given: keep minThreads within it rather than fail on a default.
  if (o.pool?.minThreads === undefined && typeof pool.maxThreads === 'number') {
    pool.minThreads = Math.min(pool.minThreads, pool.maxThreads);
  }

  integer('pool.maxThreads', pool.maxThreads, 1, 1024);
  integer('pool.minThreads', pool.minThreads, 0, pool.maxThreads);
  integer('pool.idleTimeoutMs', pool.idleTimeoutMs, 0);
  integer('pool.maxBatch', pool.maxBatch, 1, 1 << 20);
  integer('pool.lingerMs', pool.lingerMs, 0, 60_000);

  integer('queue.capacity', queue.capacity, 1, 1 << 30);
  finite('queue.lowWaterMark', queue.lowWaterMark);
  finite('queue.highWaterMark', queue.highWaterMark);
  if (queue.lowWaterMark < 0 || queue.lowWaterMark >= 1) {
    throw new RangeError(`queue.lowWaterMark must be in [0, 1), got ${show(queue.lowWaterMark)}`);
  }
  if (queue.highWaterMark <= queue.lowWaterMark || queue.highWaterMark > 1) {
    throw new RangeError(
      `queue.highWaterMark must be in (lowWaterMark, 1] = (${queue.lowWaterMark}, 1], got ${show(queue.highWaterMark)}`,
    );
  }
  integer('queue.maxPayloadBytes', queue.maxPayloadBytes, 1, 256 * 1024 * 1024);
  integer('queue.ringBytes', queue.ringBytes, 4096, 1 << 30);
  if (!STRATEGIES.includes(queue.strategy)) {
    throw new RangeError(`queue.strategy must be one of ${STRATEGIES.map(show).join(', ')}, got ${show(queue.strategy)}`);
  }
  finite('queue.maxDelayMs', queue.maxDelayMs);
  if (queue.maxDelayMs < 0) throw new RangeError(`queue.maxDelayMs must be >= 0, got ${show(queue.maxDelayMs)}`);

  const logger = o.logger;
  if (logger !== undefined) {
    for (const level of ['debug', 'info', 'warn', 'error'] as const) {
      if (logger === null || typeof (logger as unknown as Record<string, unknown>)[level] !== 'function') {
        throw new TypeError(`logger must have debug, info, warn and error methods (pino-compatible); logger.${level} is missing`);
      }
    }
  }
  return { pool, queue, logger };
}
