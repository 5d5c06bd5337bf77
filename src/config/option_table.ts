/**
 * The option table: one row per option (path, type, range, env variable) that
 * drives env parsing, the schema and the README table.
 */
import { LOG_LEVELS } from '../logger.js';
import { CODECS, DEFAULT_OPTIONS, STRATEGIES } from '../options.js';
import { JETSTREAM_DEFAULTS as js } from '../jetstream/options.js';

export type OptionType = 'integer' | 'number' | 'boolean' | 'string' | 'enum' | 'feature';

/** One configurable scalar: where it lives in BusOptions, its environment variable, its type. @group Config */
export interface OptionSpec {
  /** Dotted path in BusOptions, e.g. 'queue.capacity'. */
  readonly path: string;
  readonly env: string;
  readonly type: OptionType;
  readonly values?: readonly string[];
  readonly description: string;
  readonly default: unknown;
  /** Bounds for the JSON Schema (the constructor checks the exact ones). */
  readonly minimum?: number;
  readonly maximum?: number;
}

const d = DEFAULT_OPTIONS;

/**
 * Every option that can come from a file or the environment, in one place:
 * the config loader, the `ringbus config` command, the JSON Schema and the
 * README's table are all derived from it. (`logger` is code-only.)
 * @group Config
 */
export const OPTION_TABLE: readonly OptionSpec[] = [
  { path: 'pool.minThreads', env: 'RINGBUS_MIN_THREADS', type: 'integer', minimum: 0, default: d.pool.minThreads, description: 'Workers kept alive when idle.' },
  { path: 'pool.maxThreads', env: 'RINGBUS_MAX_THREADS', type: 'integer', minimum: 1, default: 'os.availableParallelism()', description: 'Most worker threads.' },
  { path: 'pool.idleTimeoutMs', env: 'RINGBUS_IDLE_TIMEOUT_MS', type: 'integer', default: d.pool.idleTimeoutMs, description: 'An idle worker above minThreads ends after this.' },
  { path: 'pool.maxBatch', env: 'RINGBUS_MAX_BATCH', type: 'integer', minimum: 1, default: d.pool.maxBatch, description: 'Most records a worker claims at once.' },
  { path: 'pool.lingerMs', env: 'RINGBUS_LINGER_MS', type: 'integer', default: d.pool.lingerMs, description: 'How long an idle worker parks for new records before returning its task.' },
  { path: 'queue.capacity', env: 'RINGBUS_QUEUE_CAPACITY', type: 'integer', minimum: 1, default: d.queue.capacity, description: 'Most unsettled events.' },
  { path: 'queue.highWaterMark', env: 'RINGBUS_HIGH_WATER_MARK', type: 'number', minimum: 0, maximum: 1, default: d.queue.highWaterMark, description: 'Fraction of capacity that turns backpressure on.' },
  { path: 'queue.lowWaterMark', env: 'RINGBUS_LOW_WATER_MARK', type: 'number', minimum: 0, maximum: 1, default: d.queue.lowWaterMark, description: 'Fraction of capacity that turns backpressure off.' },
  { path: 'queue.maxPayloadBytes', env: 'RINGBUS_MAX_PAYLOAD_BYTES', type: 'integer', minimum: 1, default: d.queue.maxPayloadBytes, description: 'Largest encoded payload or command result.' },
  { path: 'queue.ringBytes', env: 'RINGBUS_RING_BYTES', type: 'integer', minimum: 4096, default: d.queue.ringBytes, description: "Bytes of each priority lane's shared ring." },
  { path: 'queue.strategy', env: 'RINGBUS_QUEUE_STRATEGY', type: 'enum', values: STRATEGIES, default: d.queue.strategy, description: 'What happens at capacity.' },
  { path: 'queue.maxDelayMs', env: 'RINGBUS_MAX_DELAY_MS', type: 'number', default: d.queue.maxDelayMs, description: 'Largest adaptive-rate-limit delay.' },
  { path: 'retry', env: 'RINGBUS_RETRY', type: 'feature', default: 'off on MessageBus, on on ResilientMessageBus', description: "'false' turns retries off, 'true' on with defaults." },
  { path: 'retry.maxRetries', env: 'RINGBUS_RETRY_MAX_RETRIES', type: 'integer', default: d.retry.maxRetries, description: 'Retries after the first attempt.' },
  { path: 'retry.initialDelayMs', env: 'RINGBUS_RETRY_INITIAL_DELAY_MS', type: 'integer', default: d.retry.initialDelayMs, description: 'Delay before the first retry.' },
  { path: 'retry.maxDelayMs', env: 'RINGBUS_RETRY_MAX_DELAY_MS', type: 'integer', default: d.retry.maxDelayMs, description: 'Longest delay between retries.' },
  { path: 'retry.multiplier', env: 'RINGBUS_RETRY_MULTIPLIER', type: 'number', minimum: 1, default: d.retry.multiplier, description: 'Growth of the delay per retry.' },
  { path: 'retry.jitter', env: 'RINGBUS_RETRY_JITTER', type: 'boolean', default: d.retry.jitter, description: 'Full jitter on retry delays.' },
  { path: 'circuitBreaker', env: 'RINGBUS_CIRCUIT_BREAKER', type: 'feature', default: 'off on MessageBus, on on ResilientMessageBus', description: "'false' turns circuit breakers off, 'true' on with defaults." },
  { path: 'circuitBreaker.failureRateThreshold', env: 'RINGBUS_CIRCUIT_FAILURE_RATE_THRESHOLD', type: 'number', minimum: 0, maximum: 1, default: d.circuitBreaker.failureRateThreshold, description: 'Fraction of failed attempts in the window that opens a circuit.' },
  { path: 'circuitBreaker.minimumCalls', env: 'RINGBUS_CIRCUIT_MINIMUM_CALLS', type: 'integer', minimum: 1, default: d.circuitBreaker.minimumCalls, description: 'Attempts in the window before the failure rate is judged.' },
  { path: 'circuitBreaker.windowMs', env: 'RINGBUS_CIRCUIT_WINDOW_MS', type: 'integer', minimum: 10, default: d.circuitBreaker.windowMs, description: 'The sliding window of attempts.' },
  { path: 'circuitBreaker.recoveryTimeoutMs', env: 'RINGBUS_CIRCUIT_RECOVERY_TIMEOUT_MS', type: 'integer', minimum: 1, default: d.circuitBreaker.recoveryTimeoutMs, description: 'How long a circuit stays open before trials.' },
  { path: 'circuitBreaker.halfOpenMaxCalls', env: 'RINGBUS_CIRCUIT_HALF_OPEN_MAX_CALLS', type: 'integer', minimum: 1, default: d.circuitBreaker.halfOpenMaxCalls, description: 'Trial deliveries at once while half-open, across workers.' },
  { path: 'circuitBreaker.successThreshold', env: 'RINGBUS_CIRCUIT_SUCCESS_THRESHOLD', type: 'integer', minimum: 1, default: d.circuitBreaker.successThreshold, description: 'Successful trials that close a half-open circuit.' },
  { path: 'circuitBreaker.slowCallMs', env: 'RINGBUS_CIRCUIT_SLOW_CALL_MS', type: 'integer', minimum: 1, default: 'off', description: 'A success slower than this is a slow call for the breaker (see slowCallRateThreshold).' },
  { path: 'circuitBreaker.slowCallRateThreshold', env: 'RINGBUS_CIRCUIT_SLOW_CALL_RATE_THRESHOLD', type: 'number', minimum: 0, maximum: 1, default: d.circuitBreaker.slowCallRateThreshold, description: 'Fraction of slow calls in the window that opens a circuit.' },
  { path: 'circuitBreaker.hold', env: 'RINGBUS_CIRCUIT_HOLD', type: 'boolean', default: d.circuitBreaker.hold, description: "An open circuit holds its deliveries ('false': they fail at once, as in 0.1)." },
  { path: 'circuitBreaker.failureThreshold', env: 'RINGBUS_CIRCUIT_FAILURE_THRESHOLD', type: 'integer', minimum: 1, default: 'none', description: 'Deprecated: a failure count within windowMs that opens a circuit (replaces the rate rule).' },
  { path: 'deadLetter', env: 'RINGBUS_DEAD_LETTER', type: 'feature', default: 'off on MessageBus, on on ResilientMessageBus', description: "'false' turns the dead-letter queue off, 'true' on with defaults." },
  { path: 'deadLetter.capacity', env: 'RINGBUS_DEAD_LETTER_CAPACITY', type: 'integer', minimum: 1, default: d.deadLetter.capacity, description: 'Dead letters kept in memory.' },
  { path: 'deadLetter.maxBytes', env: 'RINGBUS_DEAD_LETTER_MAX_BYTES', type: 'integer', minimum: 1024, default: d.deadLetter.maxBytes, description: 'Bytes of dead letters kept in memory.' },
  { path: 'deadLetter.path', env: 'RINGBUS_DEAD_LETTER_PATH', type: 'string', default: 'none (memory only)', description: 'Dead-letter file that keeps dead letters across restarts.' },
  { path: 'deadLetter.maxFileBytes', env: 'RINGBUS_DEAD_LETTER_MAX_FILE_BYTES', type: 'integer', minimum: 4096, default: d.deadLetter.maxFileBytes, description: 'Size at which the dead-letter file rotates to a new segment.' },
  { path: 'handlerTimeoutMs', env: 'RINGBUS_HANDLER_TIMEOUT_MS', type: 'integer', default: 'off on MessageBus, 30000 on ResilientMessageBus', description: "A worker handler running longer fails and its worker is replaced ('false': off)." },
  { path: 'logLevel', env: 'RINGBUS_LOG_LEVEL', type: 'enum', values: LOG_LEVELS, default: d.logLevel, description: "What the default logger (stderr) says; 'info' adds state changes, 'silent' nothing." },
  { path: 'codec', env: 'RINGBUS_CODEC', type: 'enum', values: CODECS, default: d.codec, description: "How payloads and worker command results travel: 'json', 'structured' (v8 serialization), or { module, export } (a custom codec; file or code only)." },
  { path: 'strictPayloads', env: 'RINGBUS_STRICT_PAYLOADS', type: 'boolean', default: d.strictPayloads, description: "With codec 'json': a payload or worker command result that JSON would change is a TypeError naming the path ('false': JSON changes it)." },
  { path: 'scheduler.capacity', env: 'RINGBUS_SCHEDULER_CAPACITY', type: 'integer', minimum: 1, default: d.scheduler.capacity, description: 'Delayed events pending (not yet due) at most.' },
  { path: 'scheduler.path', env: 'RINGBUS_SCHEDULER_PATH', type: 'string', default: 'none (memory only)', description: 'File that keeps pending delayed events across restarts.' },
  { path: 'metrics.timing', env: 'RINGBUS_METRICS', type: 'boolean', default: d.metrics.timing, description: "Time handler attempts and events end to end ('false': counters only; `metrics: false` is short for it)." },
  { path: 'metrics.maxTopics', env: 'RINGBUS_METRICS_MAX_TOPICS', type: 'integer', minimum: 0, maximum: 1_000_000, default: d.metrics.maxTopics, description: 'Topics with metrics series of their own; further topics are counted together under topic="other".' },
  { path: 'transport.jetstream', env: 'RINGBUS_JETSTREAM', type: 'feature', default: 'off', description: "'true' carries events through NATS JetStream with defaults (README: Scaling out); an object sets its options." },
  { path: 'transport.jetstream.servers', env: 'RINGBUS_JETSTREAM_SERVERS', type: 'string', default: 'NATS_URL, else nats://127.0.0.1:4222', description: 'NATS server URLs, comma-separated in the environment.' },
  { path: 'transport.jetstream.stream', env: 'RINGBUS_JETSTREAM_STREAM', type: 'string', default: js.stream, description: 'The stream events go through (created with Interest retention when missing).' },
  { path: 'transport.jetstream.subjectPrefix', env: 'RINGBUS_JETSTREAM_SUBJECT_PREFIX', type: 'string', default: js.subjectPrefix, description: 'First subject token; buses sharing it form one cluster.' },
  { path: 'transport.jetstream.replicas', env: 'RINGBUS_JETSTREAM_REPLICAS', type: 'integer', minimum: 1, maximum: 5, default: js.replicas, description: 'Stream replicas when the stream is created.' },
  { path: 'transport.jetstream.storage', env: 'RINGBUS_JETSTREAM_STORAGE', type: 'enum', values: ['file', 'memory'], default: js.storage, description: 'Stream storage when the stream is created.' },
  { path: 'transport.jetstream.maxAgeMs', env: 'RINGBUS_JETSTREAM_MAX_AGE_MS', type: 'integer', default: js.maxAgeMs, description: 'Messages older than this leave the stream even if unhandled (0: kept until acknowledged).' },
  { path: 'transport.jetstream.maxBytes', env: 'RINGBUS_JETSTREAM_MAX_BYTES', type: 'integer', minimum: -1, default: js.maxBytes, description: 'Most bytes the stream stores (-1: no limit).' },
  { path: 'transport.jetstream.duplicateWindowMs', env: 'RINGBUS_JETSTREAM_DUPLICATE_WINDOW_MS', type: 'integer', minimum: 100, default: js.duplicateWindowMs, description: 'A publish sent again within this window is stored once.' },
  { path: 'transport.jetstream.ackWaitMs', env: 'RINGBUS_JETSTREAM_ACK_WAIT_MS', type: 'integer', minimum: 1000, default: js.ackWaitMs, description: "How long a dead process's deliveries wait before a survivor gets them." },
  { path: 'transport.jetstream.maxAckPending', env: 'RINGBUS_JETSTREAM_MAX_ACK_PENDING', type: 'integer', minimum: 1, default: js.maxAckPending, description: "Batches one handler's consumer may hold unacknowledged across the cluster." },
  { path: 'transport.jetstream.batchEvents', env: 'RINGBUS_JETSTREAM_BATCH_EVENTS', type: 'integer', minimum: 1, maximum: 65_536, default: js.batchEvents, description: 'Most events in one stream message.' },
  { path: 'transport.jetstream.batchBytes', env: 'RINGBUS_JETSTREAM_BATCH_BYTES', type: 'integer', minimum: 1024, default: js.batchBytes, description: "Most bytes of one stream message (also capped by the server's max_payload)." },
  { path: 'transport.jetstream.publishWindow', env: 'RINGBUS_JETSTREAM_PUBLISH_WINDOW', type: 'integer', minimum: 1, default: js.publishWindow, description: 'Events published and not yet stored by the server; full: publish() returns false.' },
  { path: 'transport.jetstream.publishTimeoutMs', env: 'RINGBUS_JETSTREAM_PUBLISH_TIMEOUT_MS', type: 'integer', minimum: 100, default: js.publishTimeoutMs, description: 'How long one publish waits for its acknowledgement before it is sent again.' },
  { path: 'transport.jetstream.commandTimeoutMs', env: 'RINGBUS_JETSTREAM_COMMAND_TIMEOUT_MS', type: 'integer', minimum: 1, default: js.commandTimeoutMs, description: "How long execute() waits for another process's reply when it gives no timeoutMs." },
  { path: 'transport.jetstream.connectTimeoutMs', env: 'RINGBUS_JETSTREAM_CONNECT_TIMEOUT_MS', type: 'integer', minimum: 100, default: js.connectTimeoutMs, description: 'How long start() tries to reach a server.' },
  { path: 'transport.jetstream.name', env: 'RINGBUS_JETSTREAM_NAME', type: 'string', default: js.name, description: "The connection's name in the server's monitoring." },
];

/**
 * Options that also take a boolean standing for one of their fields
 * (`metrics: false` is `metrics: { timing: false }`): expanded before layers
 * merge, so an object in a later layer keeps that field instead of turning it back on.
 * @group Config
 */
export const BOOLEAN_SHORTHANDS: Readonly<Record<string, string>> = { metrics: 'timing' };
