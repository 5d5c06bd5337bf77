/**
 * Every constructor option, declared once with its default (TSDoc `@default`,
 * ranges and interactions), and DEFAULT_OPTIONS. Merging and validation live
 * in resolve_options.ts.
 */
import { availableParallelism } from 'node:os';
import type { Logger, LogLevel } from './logger.js';
import type { CodecSpec } from './protocol/codec.js';
import type { Transport, TransportOption } from './transport.js';
import type { ResolvedJetStreamOptions } from './jetstream/options.js';
import type { SchedulerOptions } from './scheduler/scheduler_options.js';

export type { SchedulerOptions } from './scheduler/scheduler_options.js';

/** What happens to a publish when `queue.capacity` events are unsettled. @group Options */
export type BackpressureStrategy = 'reject-new' | 'drop-oldest' | 'adaptive-rate-limit';

/** `pool`: the worker threads. @group Options */
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
  /**
   * Heap limits per worker (Node's `resourceLimits`). A worker that exceeds
   * them dies and is replaced; the delivery it was running fails.
   * @default undefined (Node's defaults)
   */
  resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number; codeRangeSizeMb?: number; stackSizeMb?: number };
}

/** `queue`: the priority lanes events wait in. @group Options */
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

/**
 * A custom payload codec: a module, and the export in it that holds
 * `{ encode(value): Uint8Array, decode(bytes: Uint8Array): unknown }`.
 * @group Options
 */
export interface CodecModule {
  /** A path (relative paths resolve from the working directory) or a file: URL; `.ts` loads under tsx. */
  module: string | URL;
  /**
   * The export that holds the codec.
   * @default 'default'
   */
  export?: string;
}

/** How payloads and worker command results travel: see `BusOptions.codec`. @group Options */
export type CodecOption = 'json' | 'structured' | CodecModule;

/** Retry of a failed delivery (event × handler), with exponential backoff. @group Options */
export interface RetryOptions {
  /**
   * Retries after the first attempt; a delivery runs at most `maxRetries + 1` times.
   * @default 3
   */
  maxRetries?: number;
  /** @default 100 */
  initialDelayMs?: number;
  /** @default 10000 */
  maxDelayMs?: number;
  /** @default 2 */
  multiplier?: number;
  /**
   * Full jitter: each delay is uniform in [0, computed delay].
   * @default true
   */
  jitter?: boolean;
}

/**
 * A circuit breaker per handler of each topic (keyed by topic and handler
 * name). It opens when, within the sliding `windowMs`, at least `minimumCalls`
 * attempts ran and the fraction that failed reached `failureRateThreshold`
 * (or, with `slowCallMs`, the fraction of slow successes reached
 * `slowCallRateThreshold`). While open, the
 * handler's deliveries are held (with `hold`, the default): they wait, still
 * counted in `queue.capacity`, use up no attempt and are never dead-lettered
 * because of the circuit. After `recoveryTimeoutMs` it is half-open:
 * `halfOpenMaxCalls` trial deliveries run at once across all workers;
 * `successThreshold` successful trials close it, a failed one reopens it.
 * @group Options
 */
export interface CircuitBreakerOptions {
  /**
   * Fraction of failed attempts in the window that opens the circuit, in (0, 1].
   * @default 0.5
   */
  failureRateThreshold?: number;
  /**
   * Attempts the window must hold before the rate is judged (a handler that
   * ran 3 times and failed twice is not 67% broken).
   * @default 20
   */
  minimumCalls?: number;
  /**
   * The sliding window, in ms (kept as 10 time buckets).
   * @default 10000
   */
  windowMs?: number;
  /**
   * How long an open circuit holds deliveries before letting trials through.
   * @default 30000
   */
  recoveryTimeoutMs?: number;
  /**
   * Trial deliveries running at once while half-open, across all workers.
   * @default 1
   */
  halfOpenMaxCalls?: number;
  /**
   * Successful trials that close a half-open circuit (at most
   * `halfOpenMaxCalls` run at a time; more trials follow as each succeeds).
   * @default 1
   */
  successThreshold?: number;
  /**
   * A successful attempt slower than this counts as a slow call: the
   * circuit also opens when slow calls reach `slowCallRateThreshold` of the
   * window's attempts (retry does not see them). Off unless given.
   * @default undefined (off)
   */
  slowCallMs?: number;
  /**
   * With `slowCallMs`: the fraction of slow calls in the window that opens
   * the circuit, in (0, 1].
   * @default 1
   */
  slowCallRateThreshold?: number;
  /**
   * `true`: deliveries of an open circuit wait (MassTransit's kill switch).
   * `false`: they fail at once as an attempt, go through retry and end
   * dead-lettered if the circuit stays open (the 0.1 behaviour).
   * @default true
   */
  hold?: boolean;
  /**
   * Deprecated (0.1): opens after this many failures within `windowMs`,
   * whatever the rate. When given, it replaces the rate rule.
   * @default undefined
   */
  failureThreshold?: number;
}

/** Deliveries that exhausted their retries. @group Options */
export interface DeadLetterOptions {
  /**
   * Entries kept in memory; beyond it the oldest is evicted (counted, and
   * logged at warn, rate-limited). With `path`, evicted entries stay in the file.
   * @default 1000
   */
  capacity?: number;
  /**
   * Bytes of entries kept in memory (payloads and errors, as encoded);
   * beyond it the oldest are evicted, as with `capacity`.
   * @default 67108864 (64 MiB)
   */
  maxBytes?: number;
  /**
   * A dead-letter file (JSON Lines): every entry is appended before it is
   * acknowledged, and a new bus with the same path loads what is still dead
   * on `start()`. One bus owns a path at a time (a lock file beside it).
   * @default undefined (memory only)
   */
  path?: string;
  /**
   * With `path`: the file is rotated into a new segment past this size;
   * segments whose entries are all replayed or cleared are removed.
   * @default 67108864 (64 MiB)
   */
  maxFileBytes?: number;
}

/**
 * `metrics`: what the bus times, and how many topics get series of their
 * own. `metrics: true` is every default; `metrics: false` is
 * `{ timing: false }` (counters are kept either way).
 * @group Options
 */
export interface MetricsOptions {
  /**
   * Time every handler attempt and every event end to end (the latency
   * summaries of `bus.metrics`). Counters are kept either way; turn timing
   * off only to measure what it costs.
   * @default true
   */
  timing?: boolean;
  /**
   * Topics with series of their own (the `topic` label of the counters and
   * end-to-end times), in [0, 1000000]. A topic gets one when its first
   * handler is registered and keeps it until its last handler is
   * unregistered, which frees it; topics without handlers never get one
   * (they are counted together under `topic="(no handler)"`). Beyond this
   * many, further topics with handlers are counted together under
   * `topic="other"`, and the gauge `metrics_folded_topics` says how many
   * are. The bound keeps memory and scrapes in proportion: each series
   * costs a few kB and about 0.6 kB of Prometheus text per scrape.
   * @default 1000
   */
  maxTopics?: number;
}

/** What `new MessageBus(options)` takes; every field is optional (see each one's `@default`). @group Options */
export interface BusOptions {
  pool?: PoolOptions;
  queue?: QueueOptions;
  /**
   * Retries with backoff. On `MessageBus` off unless given; on `ResilientMessageBus` on unless `false`.
   * @default MessageBus: false; ResilientMessageBus: the RetryOptions defaults
   */
  retry?: false | RetryOptions;
  /**
   * Per-handler circuit breakers. Same on/off rule as `retry`.
   * @default MessageBus: false; ResilientMessageBus: the CircuitBreakerOptions defaults
   */
  circuitBreaker?: false | CircuitBreakerOptions;
  /**
   * The dead-letter queue. Same on/off rule as `retry`.
   * @default MessageBus: false; ResilientMessageBus: the DeadLetterOptions defaults
   */
  deadLetter?: false | DeadLetterOptions;
  /** Delayed events: their bound, and the file that keeps them across restarts. */
  scheduler?: SchedulerOptions;
  /**
   * A worker handler running longer fails with HandlerTimeoutError and its
   * worker is replaced. `false` turns it off.
   * @default MessageBus: false; ResilientMessageBus: 30000
   */
  handlerTimeoutMs?: number | false;
  /**
   * Any pino-compatible logger (it is used as given, whatever `logLevel`
   * says), or `false` for none. Only state changes are logged, never events.
   * Without it, ringbus logs to stderr at `logLevel`.
   * @default pino on stderr at `logLevel` ('warn')
   */
  logger?: Logger | false;
  /**
   * How much the default logger (stderr) says: warnings and errors only by
   * default (worker crashes, dead-letter storms, events abandoned at stop,
   * all rate-limited). `'info'` adds state changes (start, stop, circuits,
   * backpressure). Ignored when `logger` is given.
   * @default 'warn'
   */
  logLevel?: LogLevel;
  /**
   * How payloads travel to worker handlers, and command results back from
   * them. A `Uint8Array` payload always travels as raw bytes and `undefined`
   * as itself, whatever the codec; inline handlers get the published object
   * itself, and inline command results are returned as they are.
   *
   * - `'json'`: JSON text. With `strictPayloads` (the default), a payload or
   *   worker command result that JSON would change is a TypeError naming the
   *   path inside it.
   * - `'structured'`: v8 serialization (`node:v8`): Map, Set, Date, BigInt,
   *   RegExp, typed arrays, Errors and cycles survive; class instances arrive
   *   as plain objects; a function or symbol is a TypeError at publish.
   * - `{ module, export }`: your own codec, an export holding
   *   `{ encode(value): Uint8Array, decode(bytes: Uint8Array): unknown }`.
   *   It is a module reference rather than a pair of functions because
   *   worker threads cannot receive functions: each worker imports the
   *   module itself, and main imports it in `start()`, which fails naming
   *   the module and export when it does not load or lacks encode/decode.
   *   Publishing a payload that needs the codec before `start()` has loaded
   *   it throws `ERR_RINGBUS_NOT_STARTED`. `encode` must return a new
   *   Uint8Array each call (the bus keeps it for retries).
   *
   * Dead letters keep the payload as published in memory; in the dead-letter
   * file a payload encoded by a structured or custom codec is stored as its
   * codec bytes (base64) and decoded again when the file is loaded.
   * @default 'json'
   */
  codec?: CodecOption;
  /**
   * With codec `'json'`: a payload (at publish, publishAsync and execute) or
   * a worker command result that JSON would silently change is a TypeError
   * naming the topic and the path inside it (`payload.items[3].f is a
   * function`): a function or symbol at any depth, a Map or Set, an instance
   * of a class with no `toJSON`, `undefined` or a hole in an array (JSON
   * sends null), NaN or ±Infinity (null). A property whose value is
   * `undefined` passes (JSON drops the key; reading it still gives
   * undefined), and so does anything with `toJSON` (Date). `false` lets JSON
   * change them, as in 0.2, and saves the check's walk over each payload
   * (30–90 ns on a ~100-byte payload, PERFORMANCE.md). Ignored with other codecs.
   * @default true
   */
  strictPayloads?: boolean;
  /**
   * What `bus.metrics` measures: `false` turns timing off (counters are kept
   * either way), an object sets `timing` and `maxTopics` (see MetricsOptions).
   * @default true (timing on, maxTopics 1000)
   */
  metrics?: boolean | MetricsOptions;
  /**
   * Carry events between processes: `jetstream({...})` from
   * 'ringbus/jetstream' (or, in a config file, `{ jetstream: {...} }`).
   * Events then go through the stream: each (event, handler) delivery runs
   * once in the cluster, in a process that registered that handler; commands
   * run where their handler is registered (this process first). Needs
   * `queue.strategy` 'reject-new' or 'adaptive-rate-limit' (an event already
   * in the stream cannot be dropped for a newer one). README "Scaling out".
   * @default undefined (events stay in this process)
   */
  transport?: TransportOption;
}

export interface ResolvedOptions {
  pool: Required<Omit<PoolOptions, 'resourceLimits'>> & Pick<PoolOptions, 'resourceLimits'>;
  queue: Required<QueueOptions>;
  /** The logger to use: the user's, the default one at `logLevel`, or a silent one. */
  logger: Logger;
  retry: Required<RetryOptions> | false;
  circuitBreaker: (Required<Omit<CircuitBreakerOptions, 'slowCallMs' | 'failureThreshold'>> &
    Pick<CircuitBreakerOptions, 'slowCallMs' | 'failureThreshold'>) | false;
  deadLetter: (Required<Omit<DeadLetterOptions, 'path'>> & Pick<DeadLetterOptions, 'path'>) | false;
  scheduler: Required<Omit<SchedulerOptions, 'path'>> & Pick<SchedulerOptions, 'path'>;
  handlerTimeoutMs: number | false;
  metrics: Required<MetricsOptions>;
  /** The codec, its module resolved to a file: URL and its export named. */
  codec: CodecSpec;
  strictPayloads: boolean;
  /** A transport object, or the JetStream options of the config form (the engine makes its transport). */
  transport: Transport | { jetstream: ResolvedJetStreamOptions } | undefined;
}

/** Every option's default, merged under what the user gives (see each option's `@default`). @group Options */
export const DEFAULT_OPTIONS = Object.freeze({
  pool: Object.freeze({
    minThreads: 1,
    maxThreads: availableParallelism(),
    idleTimeoutMs: 10_000,
    maxBatch: 1024,
    lingerMs: 20,
    resourceLimits: undefined as PoolOptions['resourceLimits'],
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
  retry: Object.freeze({ maxRetries: 3, initialDelayMs: 100, maxDelayMs: 10_000, multiplier: 2, jitter: true }),
  circuitBreaker: Object.freeze({
    failureRateThreshold: 0.5,
    minimumCalls: 20,
    windowMs: 10_000,
    recoveryTimeoutMs: 30_000,
    halfOpenMaxCalls: 1,
    successThreshold: 1,
    slowCallMs: undefined as number | undefined,
    slowCallRateThreshold: 1,
    hold: true,
    failureThreshold: undefined as number | undefined,
  }),
  deadLetter: Object.freeze({ capacity: 1000, maxBytes: 64 * 1024 * 1024, path: undefined as string | undefined, maxFileBytes: 64 * 1024 * 1024 }),
  scheduler: Object.freeze({ capacity: 100_000, path: undefined as string | undefined }),
  logLevel: 'warn' as LogLevel,
  metrics: Object.freeze({ timing: true, maxTopics: 1000 }),
  codec: 'json' as CodecOption,
  strictPayloads: true,
  /** What ResilientMessageBus uses when `handlerTimeoutMs` is not given. */
  handlerTimeoutMs: 30_000,
});

export const STRATEGIES: readonly BackpressureStrategy[] = ['reject-new', 'drop-oldest', 'adaptive-rate-limit'];
/** The codecs named by a string (a custom codec is `{ module, export }`). */
export const CODECS = ['json', 'structured'] as const;
