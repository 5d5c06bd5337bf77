/**
 * resolveOptions(): the one place constructor options are merged over
 * DEFAULT_OPTIONS and validated, each error naming the option and echoing
 * the bad value (the options themselves are declared in options.ts).
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { defaultLogger, LOG_LEVELS, SILENT_LOGGER } from './logger.js';
import { CODECS, DEFAULT_OPTIONS, STRATEGIES, type BusOptions, type ResolvedOptions } from './options.js';
import type { CodecSpec } from './protocol/codec.js';
import { resolveJetStreamOptions } from './jetstream/options.js';
import { isTransport } from './transport.js';

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

/** A fraction in (0, 1]. */
function fraction(name: string, value: number): void {
  finite(name, value);
  if (!(value > 0 && value <= 1)) throw new RangeError(`${name} must be in (0, 1], got ${show(value)}`);
}

function finite(name: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new TypeError(`${name} must be a finite number, got ${show(value)}`);
  }
}

/**
 * A feature option: `false` is off, an object is on (merged over defaults),
 * absent is `resilientDefault` (on for ResilientMessageBus, off for MessageBus).
 */
function feature<T extends object>(name: string, value: unknown, defaults: T, resilientDefault: boolean): T | false {
  if (value === false) return false;
  if (value === undefined) return resilientDefault ? { ...defaults } : false;
  if (value === true) return { ...defaults };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${name} must be false or an object, got ${show(value)}`);
  }
  checkKeys(`${name}.`, value, Object.keys(defaults));
  return { ...defaults, ...value };
}

/**
 * The `codec` option as workers will get it: a name, or the module as a
 * file: URL (relative paths from the working directory, as workerHandler
 * does) that exists, and its export. Whether the export is a codec is
 * checked when start() imports it.
 */
function resolveCodec(value: unknown): CodecSpec {
  if (typeof value === 'string') {
    if ((CODECS as readonly string[]).includes(value)) return value as CodecSpec;
    throw new RangeError(`codec must be ${CODECS.map(show).join(' or ')}, or { module, export } (a custom codec module), got ${show(value)}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof URL) {
    throw new TypeError(`codec must be ${CODECS.map(show).join(' or ')}, or { module, export } (a custom codec module), got ${show(value)}`);
  }
  if ('encode' in value || 'decode' in value) {
    throw new TypeError('codec cannot be an { encode, decode } object: worker threads cannot receive functions. ' +
      "Export it from a module and pass { module: 'path/or/file-url', export: 'name' }");
  }
  checkKeys('codec.', value, ['module', 'export']);
  const { module, export: exportName = 'default' } = value as { module?: unknown; export?: unknown };
  let url: string | undefined;
  if (module instanceof URL) url = module.href;
  else if (typeof module === 'string' && module.length > 0) {
    // 'C:\\…' is a path; 'https://…' is a URL, and only file: URLs name a module a worker can import.
    if (module.startsWith('file:')) url = URL.canParse(module) ? new URL(module).href : undefined;
    else if (!/^[a-zA-Z][a-zA-Z0-9+.-]+:/.test(module)) url = pathToFileURL(resolve(module)).href;
  }
  if (url === undefined || !url.startsWith('file:')) {
    throw new TypeError(`codec.module must be a path or a file: URL (the module exporting encode and decode), got ${show(url ?? module)}`);
  }
  if (!existsSync(fileURLToPath(url))) throw new RangeError(`codec.module ${show(String(module))} does not exist (resolved: ${url})`);
  if (typeof exportName !== 'string' || exportName.length === 0) {
    throw new TypeError(`codec.export must be a non-empty string (the export holding { encode, decode }), got ${show(exportName)}`);
  }
  return Object.freeze({ module: url, export: exportName });
}

/** `metrics`: a boolean is shorthand for `{ timing }`; an object is merged over the defaults. */
function resolveMetrics(value: unknown): ResolvedOptions['metrics'] {
  if (value === undefined || typeof value === 'boolean') return { ...DEFAULT_OPTIONS.metrics, timing: value ?? DEFAULT_OPTIONS.metrics.timing };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`metrics must be a boolean or an object { timing, maxTopics }, got ${show(value)}`);
  }
  checkKeys('metrics.', value, Object.keys(DEFAULT_OPTIONS.metrics));
  const metrics = { ...DEFAULT_OPTIONS.metrics, ...value };
  if (typeof metrics.timing !== 'boolean') throw new TypeError(`metrics.timing must be a boolean, got ${show(metrics.timing)}`);
  integer('metrics.maxTopics', metrics.maxTopics, 0, 1_000_000);
  return metrics;
}

/** Merges the user's options over the defaults once, and validates every field. */
export function resolveOptions(options: BusOptions | undefined, resilient = false): ResolvedOptions {
  checkObject('options', options);
  const o = options ?? {};
  checkKeys('options.', o, [
    'pool', 'queue', 'logger', 'logLevel', 'retry', 'circuitBreaker', 'deadLetter', 'handlerTimeoutMs', 'metrics', 'codec', 'strictPayloads',
    'transport', 'scheduler',
  ]);
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

  const logLevel = o.logLevel ?? DEFAULT_OPTIONS.logLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new RangeError(`logLevel must be one of ${LOG_LEVELS.map(show).join(', ')}, got ${show(logLevel)}`);
  const given = o.logger;
  if (given !== undefined && given !== false) {
    const logger = given;
    for (const level of ['debug', 'info', 'warn', 'error'] as const) {
      if (logger === null || typeof (logger as unknown as Record<string, unknown>)[level] !== 'function') {
        throw new TypeError(`logger must have debug, info, warn and error methods (pino-compatible); logger.${level} is missing`);
      }
    }
  }
  const retry = feature('retry', o.retry, DEFAULT_OPTIONS.retry, resilient);
  if (retry) {
    integer('retry.maxRetries', retry.maxRetries, 0, 1000);
    integer('retry.initialDelayMs', retry.initialDelayMs, 0, 86_400_000);
    integer('retry.maxDelayMs', retry.maxDelayMs, retry.initialDelayMs, 86_400_000);
    finite('retry.multiplier', retry.multiplier);
    if (retry.multiplier < 1) throw new RangeError(`retry.multiplier must be >= 1, got ${show(retry.multiplier)}`);
    if (typeof retry.jitter !== 'boolean') throw new TypeError(`retry.jitter must be a boolean, got ${show(retry.jitter)}`);
  }
  const circuitBreaker = feature('circuitBreaker', o.circuitBreaker, DEFAULT_OPTIONS.circuitBreaker, resilient);
  if (circuitBreaker) {
    fraction('circuitBreaker.failureRateThreshold', circuitBreaker.failureRateThreshold);
    integer('circuitBreaker.minimumCalls', circuitBreaker.minimumCalls, 1, 1_000_000);
    integer('circuitBreaker.windowMs', circuitBreaker.windowMs, 10, 86_400_000);
    integer('circuitBreaker.recoveryTimeoutMs', circuitBreaker.recoveryTimeoutMs, 1, 86_400_000);
    integer('circuitBreaker.halfOpenMaxCalls', circuitBreaker.halfOpenMaxCalls, 1, 1024);
    integer('circuitBreaker.successThreshold', circuitBreaker.successThreshold, 1, 100_000);
    if (circuitBreaker.slowCallMs !== undefined) integer('circuitBreaker.slowCallMs', circuitBreaker.slowCallMs, 1, 86_400_000);
    fraction('circuitBreaker.slowCallRateThreshold', circuitBreaker.slowCallRateThreshold);
    if (typeof circuitBreaker.hold !== 'boolean') throw new TypeError(`circuitBreaker.hold must be a boolean, got ${show(circuitBreaker.hold)}`);
    if (circuitBreaker.failureThreshold !== undefined) {
      integer('circuitBreaker.failureThreshold', circuitBreaker.failureThreshold, 1, 100_000);
    }
  }
  const deadLetter = feature('deadLetter', o.deadLetter, DEFAULT_OPTIONS.deadLetter, resilient);
  if (deadLetter) {
    integer('deadLetter.capacity', deadLetter.capacity, 1, 10_000_000);
    integer('deadLetter.maxBytes', deadLetter.maxBytes, 1024, 2 ** 40);
    integer('deadLetter.maxFileBytes', deadLetter.maxFileBytes, 4096, 2 ** 40);
    if (deadLetter.path !== undefined && (typeof deadLetter.path !== 'string' || deadLetter.path.length === 0)) {
      throw new TypeError(`deadLetter.path must be a non-empty string (a JSON Lines file), got ${show(deadLetter.path)}`);
    }
    if (deadLetter.path !== undefined) {
      const file = resolve(deadLetter.path);
      if (!existsSync(dirname(file)) || !statSync(dirname(file)).isDirectory()) {
        throw new RangeError(`deadLetter.path ${deadLetter.path}: its directory does not exist`);
      }
      if (existsSync(file) && !statSync(file).isFile()) throw new RangeError(`deadLetter.path ${deadLetter.path} is not a file`);
    }
  }
  let handlerTimeoutMs: number | false;
  if (o.handlerTimeoutMs === undefined) handlerTimeoutMs = resilient ? DEFAULT_OPTIONS.handlerTimeoutMs : false;
  else if (o.handlerTimeoutMs === false) handlerTimeoutMs = false;
  else {
    integer('handlerTimeoutMs', o.handlerTimeoutMs, 1, 86_400_000);
    handlerTimeoutMs = o.handlerTimeoutMs;
  }
  if (pool.resourceLimits !== undefined) {
    checkObject('pool.resourceLimits', pool.resourceLimits);
    checkKeys('pool.resourceLimits.', pool.resourceLimits, ['maxOldGenerationSizeMb', 'maxYoungGenerationSizeMb', 'codeRangeSizeMb', 'stackSizeMb']);
    for (const [k, v] of Object.entries(pool.resourceLimits)) {
      if (v !== undefined && (typeof v !== 'number' || !(v > 0))) throw new RangeError(`pool.resourceLimits.${k} must be a number > 0, got ${show(v)}`);
    }
  }
  const metrics = resolveMetrics(o.metrics);
  const codec = resolveCodec(o.codec ?? DEFAULT_OPTIONS.codec);
  const strictPayloads = o.strictPayloads ?? DEFAULT_OPTIONS.strictPayloads;
  if (typeof strictPayloads !== 'boolean') throw new TypeError(`strictPayloads must be a boolean, got ${show(strictPayloads)}`);
  const logger = given === false ? SILENT_LOGGER : given ?? defaultLogger(logLevel);
  const transport = resolveTransport(o.transport);
  if (transport !== undefined && deadLetter && deadLetter.path !== undefined) {
    throw new RangeError(`deadLetter.path cannot be used with a transport: the cluster's dead letters go to its dead-letter stream (got ${show(deadLetter.path)})`);
  }
  if (transport !== undefined && queue.strategy === 'drop-oldest') {
    throw new RangeError("queue.strategy 'drop-oldest' cannot be used with a transport: an event already in the stream cannot be dropped " +
      "for a newer one. Use 'reject-new' (publish() returns false while the publish window is full) or 'adaptive-rate-limit'");
  }
  const scheduler = resolveScheduler(o.scheduler);
  return { pool, queue, logger, retry, circuitBreaker, deadLetter, scheduler, handlerTimeoutMs, metrics, codec, strictPayloads, transport };
}

/** `scheduler`: merged over the defaults; the path's directory must exist. */
function resolveScheduler(value: unknown): ResolvedOptions['scheduler'] {
  checkObject('scheduler', value);
  checkKeys('scheduler.', value ?? {}, Object.keys(DEFAULT_OPTIONS.scheduler));
  const s = { ...DEFAULT_OPTIONS.scheduler, ...(value as object | undefined) };
  integer('scheduler.capacity', s.capacity, 1, 100_000_000);
  if (s.path !== undefined) {
    if (typeof s.path !== 'string' || s.path.length === 0) throw new TypeError(`scheduler.path must be a non-empty string (a JSON Lines file), got ${show(s.path)}`);
    const file = resolve(s.path);
    if (!existsSync(dirname(file)) || !statSync(dirname(file)).isDirectory()) throw new RangeError(`scheduler.path ${s.path}: its directory does not exist`);
    if (existsSync(file) && !statSync(file).isFile()) throw new RangeError(`scheduler.path ${s.path} is not a file`);
  }
  return s;
}

/** `transport`: a transport object (jetstream({...})) as it is, or the config form `{ jetstream: {...} | true }` resolved. */
function resolveTransport(value: unknown): ResolvedOptions['transport'] {
  if (value === undefined) return undefined;
  if (isTransport(value)) return value;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`transport must be jetstream({...}) from 'ringbus/jetstream', or { jetstream: {...} }, got ${show(value)}`);
  }
  checkKeys('transport.', value, ['jetstream']);
  const js = (value as { jetstream?: unknown }).jetstream;
  if (js === undefined || js === false) return undefined;
  return { jetstream: resolveJetStreamOptions(js as Parameters<typeof resolveJetStreamOptions>[0]) };
}
