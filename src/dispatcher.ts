import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { BoundedEventQueue } from './bounded_event_queue.js';
import { BreakerBoard } from './breaker/breaker_board.js';
import type { CircuitState } from './breaker/circuit_breaker.js';
import type { DeadEvent, DeadLetterEntry } from './dead_letter/dead_letter_entry.js';
import { DeadLetterQueue, type DeadLetters } from './dead_letter/dead_letter_queue.js';
import { JsonLinesDeadLetterSink } from './dead_letter/json_lines_sink.js';
import { BackpressureError, BusStoppedError, CircuitOpenError, HandlerLoadError, HandlerTimeoutError } from './errors.js';
import { ExponentialBackoff } from './retry/backoff.js';
import { RetryScheduler } from './retry/retry_scheduler.js';
import { RateLimitedLog } from './rate_limited_log.js';
import { BusMetrics } from './metrics/bus_metrics.js';
import { MAILBOX_BYTES, readMailbox, resetMailbox, type WorkerMetricsReport } from './shared/metrics_mailbox.js';
import { Fifo } from './fifo.js';
import {
  assertModuleExists, defaultWorkerHandlerName, isTypeScriptModule, isWorkerHandlerRef, type WorkerHandlerRef,
} from './handler_ref.js';
import { InlineRunner, type InlineJob } from './inline_runner.js';
import { defaultLogger, type Logger } from './logger.js';
import type { ResolvedOptions } from './options.js';
import { LaneRingWriter } from './ring/lane_ring_writer.js';
import { PendingRecord, decodeRecord, recordFlags, recordSeq, rewriteRecord, viewOf } from './ring/record.js';
import { Router, type Registration, type Route } from './router.js';
import {
  FLUSH_REQUEST, RF_CONTINUATION, LANE_COUNT, MAIN_WAITING, SLOT_FLUSHED, WAKE_PENDING, OUT_DONE, OUT_FAILED, OUT_REFUSED, OUT_SUCCEEDED, PROGRESS, RF_BINARY, RF_COMMAND, RF_LANE_SHIFT,
  RF_TRACKED, RF_UNDEFINED, SLEEPERS, SLOT_BUSY, SLOT_CURSOR, SLOT_END, SLOT_HANDLER_INDEX, SLOT_LANE,
  SLOT_PROCESSED, SLOT_SETTLED, STOP, WAKE, align8, controlWords, slotWord, type SharedBusMemory,
} from './shared/layout.js';
import { errorMessage } from './shared/error_message.js';
import { OutcomeRingReader, resetOutcomes, type Outcome } from './shared/outcome_ring.js';
import { ENTRY_HANDLER, SharedRegistryWriter } from './shared/registry.js';
import { PRIORITY_NAMES, type DrainTask, type Priority, type ProbeResult, type RuntimeTask } from './shared/task.js';
import type {
  BusEvent, BusStats, CommandResult, EventHandlerOptions, Handler, HandlerErrorEvent, PublishAsyncOptions,
  PublishOptions, StopOptions,
} from './types.js';

const REGISTRY_BYTES = 1 << 20;
/**
 * A record is header + handler ids + session id + payload. Rings and outcome
 * rings leave 4 KiB beside the largest payload for the first three, which
 * these two bounds keep within.
 */
const MAX_SESSION_BYTES = 1024;
const MAX_WORKER_HANDLERS_PER_TOPIC = 512;
/** Error text kept per outcome; outcome rings are sized to hold one largest record plus this. */
const OUTCOME_TEXT_BYTES = 4096;
/** How long main waits on PROGRESS before looking anyway (a safety net, not the normal path). */
const PROGRESS_POLL_MS = 1000;
/** Pause before submitting again after a task failed outside any batch (e.g. the runtime did not load). */
const TASK_FAILURE_BACKOFF_MS = 100;

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/** An event main follows through its stages: commands, and events whose topic mixes inline and worker handlers. */
interface Tracked {
  readonly seq: number;
  readonly topic: string;
  readonly payload: unknown;
  readonly payloadFlags: number;
  readonly text: string | undefined;
  readonly payloadBytes: number;
  readonly lane: number;
  readonly sessionId: string | undefined;
  readonly publishedAt: number;
  readonly route: Route;
  stage: number;
  readonly resolveCommand: ((result: CommandResult) => void) | undefined;
  commandResolved: boolean;
}

/** The failed deliveries of one event, while any is waiting to run again or to be dead-lettered. */
interface Ledger {
  /** Retries scheduled or running, and dead letters not yet persisted. */
  outstanding: number;
  /** The event's first pass (every stage) finished. */
  baseDone: boolean;
  /** Attempt number of the last failure, to tell a retry's success from its failure. */
  failedAttempt: number;
  /** Epoch ms of each failing delivery's first failure, by handler name. */
  firstFailureAt: Map<string, number>;
  /** For the end-to-end time when the event settles. */
  topic: string;
  publishedAt: number;
}

/** One failed attempt at one delivery, wherever it ran. */
interface FailedAttempt {
  seq: number;
  lane: number;
  topic: string;
  handler: string;
  attempt: number;
  error: string;
  /** An open circuit refused it: a failed attempt for the retry policy, not a handler failure for the breaker. */
  refused: boolean;
  /** A worker delivery: the record as it ran, and the handler's registry id. */
  record?: Uint8Array;
  handlerId?: number;
  /** An inline delivery: the job and the handler. */
  job?: InlineJob;
  reg?: Registration;
}

/** A delivery waiting for its next attempt. */
interface RetryItem {
  lane: number;
  record: Uint8Array | undefined;
  job: InlineJob | undefined;
  /** The attempt that failed, and when the delivery first failed: for a dead letter if the bus stops first. */
  failure: FailedAttempt;
  firstAt: number;
}

const LANE_OF: Record<string, number> = { critical: 0, high: 1, normal: 2, low: 3 };

function laneOf(priority: unknown, what = 'priority'): number {
  if (priority === undefined) return 2;
  const lane = typeof priority === 'string' ? LANE_OF[priority] : undefined;
  if (lane === undefined) {
    throw new TypeError(`${what} must be one of 'critical', 'high', 'normal', 'low', got ${JSON.stringify(priority) ?? String(priority)}`);
  }
  return lane;
}

function checkTopic(topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new TypeError(`topic must be a non-empty string, got ${typeof topic === 'string' ? "''" : String(topic)}`);
  }
}

function nextPowerOfTwo(n: number): number {
  return 2 ** Math.ceil(Math.log2(n));
}

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
function runtimeLocation(typeScriptHandlers: boolean): { filename: string; tsxEsmApi: string | undefined } {
  const fromSource = import.meta.url.endsWith('.ts');
  const filename = new URL(`../workers/${fromSource ? 'typescript_entry.mjs' : 'runtime.js'}`, import.meta.url).href;
  if (!fromSource && !typeScriptHandlers) return { filename, tsxEsmApi: undefined };
  const tsx = resolveTsx();
  if (tsx === undefined) {
    throw new HandlerLoadError('TypeScript worker handler modules need tsx: install it (npm i -D tsx) or build the handlers to .js');
  }
  return { filename, tsxEsmApi: tsx };
}

/**
 * The engine behind MessageBus: owns the shared memory, the lanes, the pool,
 * the accounting. Public classes hold one of these in a private field.
 */
export class Dispatcher {
  readonly #options: ResolvedOptions;
  readonly #emitter: EventEmitter;
  readonly #log: Logger;
  readonly #memory: SharedBusMemory;
  readonly #control: Int32Array;
  readonly #writers: LaneRingWriter[];
  readonly #outcomeReaders: OutcomeRingReader[];
  readonly #overflow = Array.from({ length: LANE_COUNT }, () => new Fifo<Uint8Array>());
  readonly #registry: SharedRegistryWriter;
  readonly #router: Router;
  readonly #inline: InlineRunner;
  readonly #queue: BoundedEventQueue;
  readonly #pending = new PendingRecord();
  readonly #tracked = new Map<number, Tracked>();
  readonly #slots: number;
  readonly #freeSlots: number[];
  readonly #activeSlots = new Set<number>();
  readonly #drainWaiters: (() => void)[] = [];
  /** Worker handlers registered while start() was probing: checked once the pool runs. */
  readonly #lateProbes: (() => void)[] = [];
  #pool: Piscina<RuntimeTask, ProbeResult | null> | undefined;
  #state: State = 'new';
  #stopping: Promise<void> | undefined;
  #seq = 0;
  #progressArmed = false;
  #progressSeen = 0;
  #terminating = false;
  #taskBackoff: NodeJS.Timeout | undefined;
  // Counters kept on main; workers' shares are summed from slot words.
  #published = 0;
  #processedMain = 0;
  #failed = 0;
  #dropped = 0;
  #rejected = 0;
  #abandoned = 0;
  #retiredSettled = 0;
  #retiredProcessed = 0;
  #retried = 0;
  #deadLettered = 0;
  #workerCrashes = 0;
  #handlerTimeouts = 0;
  readonly #breakers: BreakerBoard;
  readonly #metrics: BusMetrics;
  readonly #flushWaiters: { request: number; resolve: () => void }[] = [];
  /** Per slot: the last worker report read whole (for a read that races a write). */
  readonly #lastReports: (WorkerMetricsReport | undefined)[] = [];
  readonly #backoff: ExponentialBackoff | undefined;
  readonly #retries = new RetryScheduler<RetryItem>((item) => this.#runRetry(item));
  readonly #ledger = new Map<number, Ledger>();
  /** Always there (empty when the feature is off), so `bus.deadLetters` needs no check. */
  readonly #deadLetterQueue: DeadLetterQueue;
  /** The same queue when dead-lettering is on. */
  readonly #deadLetters: DeadLetterQueue | undefined;
  readonly #deadLetterSink: JsonLinesDeadLetterSink | undefined;
  #deadLetterBatch: { entry: DeadLetterEntry; seq: number }[] = [];
  #deadLetterSeq = 0;
  readonly #deadLetterLog: RateLimitedLog;
  /** Per slot: the AbortController of its task, and what the watchdog last saw running there. */
  readonly #abort: (AbortController | undefined)[] = [];
  readonly #watched: { cursor: number; handler: number; since: number }[] = [];
  readonly #timedOut = new Set<number>();
  #watchdog: NodeJS.Timeout | undefined;

  constructor(options: ResolvedOptions, emitter: EventEmitter) {
    this.#options = options;
    this.#emitter = emitter;
    this.#log = options.logger ?? defaultLogger();
    const { pool, queue } = options;
    this.#slots = pool.maxThreads;
    this.#freeSlots = Array.from({ length: this.#slots }, (_, i) => this.#slots - 1 - i);
    const largestRecord = align8(64 + queue.maxPayloadBytes + 4096);
    const ringBytes = nextPowerOfTwo(Math.max(queue.ringBytes, 2 * largestRecord));
    const outcomeBytes = nextPowerOfTwo(Math.max(64 * 1024, 2 * (largestRecord + OUTCOME_TEXT_BYTES + 64)));
    this.#registry = new SharedRegistryWriter(REGISTRY_BYTES);
    this.#memory = {
      control: new SharedArrayBuffer(4 * controlWords(this.#slots)),
      lanes: Array.from({ length: LANE_COUNT }, () => new SharedArrayBuffer(ringBytes)),
      outcomes: Array.from({ length: this.#slots }, () => new SharedArrayBuffer(outcomeBytes)),
      registry: this.#registry.sab,
      breakers: new SharedArrayBuffer(4),
      metrics: Array.from({ length: this.#slots }, () => new SharedArrayBuffer(MAILBOX_BYTES)),
      idPrefix: `${randomBytes(6).toString('base64url')}-`,
    };
    this.#control = new Int32Array(this.#memory.control);
    this.#writers = this.#memory.lanes.map((sab, lane) => new LaneRingWriter(this.#control, sab, lane, this.#slots));
    this.#outcomeReaders = this.#memory.outcomes.map((sab, slot) => new OutcomeRingReader(this.#control, sab, slot));
    this.#metrics = new BusMetrics({
      stats: () => this.stats(),
      liveReports: () => this.#liveReports(),
      handlerName: (id) => this.#handlerName(id),
      topicName: (id) => this.#topicName(id),
      breakerStates: () => this.#breakers.snapshot(),
      deadLetterSize: () => this.#deadLetterQueue.size,
      flush: () => this.#flushMetrics(),
    });
    this.#router = new Router(this.#registry, (topic) => this.#metrics.topic(topic));
    this.#inline = new InlineRunner({
      refusal: (_job, handler) => (this.#breakers.allows(handler.name) ? undefined : new CircuitOpenError(handler.name).message),
      failed: (job, handler, error, refused, ns) => {
        if (this.#terminating) return;
        if (!refused && this.#options.metrics) this.#metrics.handler(handler.name).processing.record(ns);
        this.#attemptFailed({
          seq: job.seq, lane: LANE_OF[job.event.priority], topic: job.event.topic, handler: handler.name,
          attempt: job.event.attempt, error: errorMessage(error), refused, job, reg: handler,
        });
      },
      succeeded: (_job, handler, ns) => {
        if (this.#terminating) return;
        this.#processedMain++;
        const counters = this.#metrics.handler(handler.name);
        counters.succeeded++;
        if (this.#options.metrics) counters.processing.record(ns);
        this.#breakers.onSuccess(handler.name);
      },
      done: (job, failures, result) => {
        // After stop() gave up on pending events, a late async handler's completion is already counted as abandoned.
        if (!this.#terminating) this.#recordDone(job.seq, job.event.attempt, failures > 0, result, job.event);
      },
    }, options.metrics);
    this.#queue = new BoundedEventQueue(queue, () => this.#workerSettled());
    this.#breakers = new BreakerBoard(options.circuitBreaker, (handler, from, to) => this.#circuitMoved(handler, from, to));
    this.#memory.breakers = this.#breakers.sab;
    this.#backoff = options.retry ? new ExponentialBackoff(options.retry) : undefined;
    const deadLetter = options.deadLetter;
    this.#deadLetterSink = deadLetter && deadLetter.path !== undefined ? new JsonLinesDeadLetterSink(deadLetter.path) : undefined;
    this.#deadLetterQueue = new DeadLetterQueue({
      capacity: deadLetter ? deadLetter.capacity : 1,
      sink: this.#deadLetterSink,
      republish: (entries) => this.#republish(entries),
    });
    this.#deadLetters = deadLetter ? this.#deadLetterQueue : undefined;
    this.#deadLetterLog = new RateLimitedLog(this.#log, 1000);
    for (let s = 0; s < this.#slots; s++) this.#watched.push({ cursor: 0, handler: -1, since: 0 });
  }

  #closed(): boolean {
    return this.#state === 'stopping' || this.#state === 'stopped';
  }

  // ---------------------------------------------------------------- registration

  register(topic: string, handler: Handler | WorkerHandlerRef, options: EventHandlerOptions | undefined, command: boolean): () => void {
    checkTopic(topic);
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw new TypeError(`handler options for topic '${topic}' must be an object, got ${String(options)}`);
    }
    const priority = command ? 2 : laneOf(options?.priority, `priority of the handler for topic '${topic}'`);
    if (options?.name !== undefined && (typeof options.name !== 'string' || options.name.length === 0)) {
      throw new TypeError(`name of the handler for topic '${topic}' must be a non-empty string, got ${String(options.name)}`);
    }
    let reg: Registration;
    if (typeof handler === 'function') {
      const name = options?.name ?? (handler.name || 'anonymous');
      this.#breakers.index(name);
      reg = { topic, name, priority, command, fn: handler, ref: undefined, handlerId: -1 };
    } else if (isWorkerHandlerRef(handler)) {
      if (this.#state === 'running' || this.#state === 'starting') assertModuleExists(handler);
      const name = options?.name ?? defaultWorkerHandlerName(handler);
      const handlerId = this.#registry.handlerId(handler.module, handler.exportName, name, this.#breakers.index(name));
      reg = { topic, name, priority, command, fn: undefined, ref: handler, handlerId };
    } else {
      throw new TypeError(`handler for topic '${topic}' must be a function or workerHandler(module, export), got ${String(handler)}`);
    }
    if (this.#router.find(topic, reg.name) !== undefined && !command) {
      if (typeof handler === 'function' && options?.name === undefined) {
        // An unnamed function: number it, so breakers, metrics and dead letters can tell it apart.
        let n = 2;
        while (this.#router.find(topic, `${reg.name}-${n}`) !== undefined) n++;
        reg = { ...reg, name: `${reg.name}-${n}` };
        this.#breakers.index(reg.name);
      } else {
        throw new TypeError(`topic '${topic}' already has a handler named '${reg.name}'; give this one another name (option name)`);
      }
    }
    if (reg.ref && this.#router.workerHandlerCount(topic) >= MAX_WORKER_HANDLERS_PER_TOPIC) {
      throw new RangeError(`topic '${topic}' already has ${MAX_WORKER_HANDLERS_PER_TOPIC} worker handlers, the most one topic may have`);
    }
    const remove = this.#router.add(reg);
    if (reg.ref && this.#state === 'running') this.#probeLate(reg, remove);
    else if (reg.ref && this.#state === 'starting') this.#lateProbes.push(() => this.#probeLate(reg, remove));
    return remove;
  }

  #probeLate(reg: Registration, remove: () => void): void {
    const ref = reg.ref!;
    this.#pool!.run({ kind: 'probe', handlers: [{ module: ref.module, exportName: ref.exportName }] }).then(
      (result) => {
        const message = result?.errors[0];
        if (message === undefined) return;
        remove();
        const error = new HandlerLoadError(message);
        this.#log.error({ topic: reg.topic, handler: reg.name, err: message }, 'worker handler failed to load; unregistered');
        this.#emitter.emit('registration-error', { topic: reg.topic, handler: reg.name, error });
      },
      (err: unknown) => this.#log.error({ err: errorMessage(err) }, 'worker handler probe failed'),
    );
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<void> {
    if (this.#state === 'running') return;
    if (this.#state !== 'new') throw new Error(`cannot start a bus that is ${this.#state}`);
    this.#state = 'starting';
    const refs = this.#router.workerRefs();
    try {
      for (const ref of refs) assertModuleExists(ref);
      const { pool } = this.#options;
      const where = runtimeLocation(refs.some(isTypeScriptModule));
      this.#pool = new Piscina<RuntimeTask, ProbeResult | null>({
        filename: where.filename,
        minThreads: pool.minThreads,
        maxThreads: pool.maxThreads,
        idleTimeout: pool.idleTimeoutMs,
        concurrentTasksPerWorker: 1,
        resourceLimits: pool.resourceLimits,
        workerData: { ...this.#memory, tsxEsmApi: where.tsxEsmApi } satisfies SharedBusMemory,
      });
      this.#pool.on('error', (err: unknown) => this.#log.error({ err: errorMessage(err) }, 'worker error outside a task'));
      if (refs.length > 0) {
        const unique = [...new Map(refs.map((r) => [`${r.module}#${r.exportName}`, r])).values()];
        const result = await this.#pool.run({
          kind: 'probe',
          handlers: unique.map((r) => ({ module: r.module, exportName: r.exportName })),
        });
        if (result && result.errors.length > 0) throw new HandlerLoadError(result.errors.join('; '));
      }
    } catch (err) {
      const pool = this.#pool;
      this.#pool = undefined;
      this.#state = 'new';
      await pool?.destroy();
      throw err;
    }
    if (this.#deadLetterSink !== undefined) {
      try {
        this.#deadLetters!.restore(this.#deadLetterSink.load());
      } catch (err) {
        const pool = this.#pool;
        this.#pool = undefined;
        this.#state = 'new';
        await pool?.destroy();
        throw new Error(`cannot load dead letters from deadLetter.path ${this.#deadLetterSink.path}: ${errorMessage(err)}`);
      }
    }
    this.#state = 'running';
    this.#startWatchdog();
    for (const probe of this.#lateProbes.splice(0)) probe();
    this.#log.info({ threads: this.#options.pool.maxThreads, queued: this.#queue.size }, 'bus started');
    this.#inline.enable();
    this.#pump();
  }

  stop(options: StopOptions | undefined): Promise<void> {
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw new TypeError(`stop options must be an object, got ${String(options)}`);
    }
    const drain = options?.drain ?? true;
    const timeoutMs = options?.timeoutMs ?? Infinity;
    if (typeof drain !== 'boolean') throw new TypeError(`stop option drain must be a boolean, got ${String(drain)}`);
    if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
      throw new RangeError(`stop option timeoutMs must be a number >= 0, got ${String(timeoutMs)}`);
    }
    this.#stopping ??= this.#stop(drain && this.#state === 'running', timeoutMs);
    return this.#stopping;
  }

  async #stop(drain: boolean, timeoutMs: number): Promise<void> {
    this.#state = 'stopping';
    this.#queue.rejectWaiters();
    if (drain && this.#queue.size > 0) {
      this.#log.info({ pending: this.#queue.size, timeoutMs }, 'stopping: draining pending events');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => {
        if (timeoutMs !== Infinity) timer = setTimeout(resolve, timeoutMs);
      });
      await Promise.race([this.drain(), timedOut]);
      clearTimeout(timer);
    }
    this.#inline.disable();
    Atomics.store(this.#control, STOP, 1);
    Atomics.add(this.#control, WAKE, 1);
    Atomics.notify(this.#control, WAKE);
    clearTimeout(this.#taskBackoff);
    clearInterval(this.#watchdog);
    // From here a task that ends mid-batch was terminated by us: its events are abandoned, not failed,
    // and a failed delivery is not retried any more.
    this.#terminating = true;
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.destroy();
    // Workers are gone: whatever their slots recorded is final now.
    this.#collect();
    // Failed deliveries still waiting for a retry go to the dead-letter queue (if there is one), not into thin air.
    for (const item of this.#retries.clear()) {
      if (this.#deadLetters === undefined) continue;
      const f = { ...item.failure, error: `${item.failure.error} (not retried: the bus stopped)` };
      const tracked = this.#tracked.get(f.seq);
      if (tracked?.resolveCommand && !tracked.commandResolved) {
        tracked.commandResolved = true;
        tracked.resolveCommand({ success: false, error: f.error, attempts: f.attempt + 1 });
      }
      this.#deadLetterBatch.push({ entry: this.#deadLetterEntry(f, item.firstAt, Date.now()), seq: f.seq });
    }
    this.#flushDeadLetters();
    this.#deadLetterLog.flush('deliveries dead-lettered');
    this.#breakers.stop();
    const abandoned = this.#queue.size;
    if (abandoned > 0) {
      this.#abandoned += abandoned;
      this.#queue.settle(abandoned);
      this.#inline.clear();
      for (const lane of this.#overflow) lane.clear();
      for (const t of this.#tracked.values()) {
        if (!t.commandResolved) t.resolveCommand?.({ success: false, error: 'the bus stopped before the command finished', attempts: 0 });
      }
      this.#tracked.clear();
      this.#ledger.clear();
      this.#log.warn({ abandoned }, 'bus stopped with events still pending; they were abandoned');
      this.#afterSettle();
    }
    this.#state = 'stopped';
    this.#resolveDrainWaiters();
    for (const { resolve } of this.#flushWaiters.splice(0)) resolve();
    this.#log.info(this.stats(), 'bus stopped');
  }

  drain(): Promise<void> {
    const settled = this.#queue.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
    return settled.then(() => this.#flushMetrics());
  }

  get metrics(): BusMetrics {
    return this.#metrics;
  }

  // ---------------------------------------------------------------- publishing

  publish(topic: string, payload: unknown, options: PublishOptions | undefined, session: string | undefined): boolean {
    return this.#publishPrepared(topic, payload, this.#prepare(topic, payload, options, session));
  }

  /** The scratch record holds the encoded event: apply the capacity strategy and commit. */
  #publishPrepared(topic: string, payload: unknown, lane: number): boolean {
    if (this.#closed()) {
      this.#reject(topic);
      return false;
    }
    if (!this.#queue.hasRoom()) {
      if (this.#options.queue.strategy !== 'drop-oldest') {
        this.#reject(topic);
        return false;
      }
      if (!this.#dropOldest(lane)) {
        // Everything waiting outranks this event: it is the one dropped.
        this.#published++;
        this.#metrics.topic(topic).published++;
        this.#drop(topic);
        return true;
      }
    }
    this.#commit(topic, payload, lane, false, undefined);
    return true;
  }

  async publishAsync(topic: string, payload: unknown, options: PublishAsyncOptions | undefined, session: string | undefined): Promise<boolean> {
    const timeoutMs = checkTimeout(options?.timeoutMs);
    const lane = this.#prepare(topic, payload, options, session);
    const strategy = this.#options.queue.strategy;
    if (strategy === 'drop-oldest' || this.#closed()) return this.#publishPrepared(topic, payload, lane);
    if (strategy === 'adaptive-rate-limit') {
      const paced = this.#queue.pace();
      if (paced) {
        const encoded = this.#pending.snapshot();
        await paced;
        this.#pending.restore(encoded);
      }
    }
    try {
      return await this.#withRoom(topic, timeoutMs, (reserved) => {
        this.#commit(topic, payload, lane, reserved, undefined);
        return true;
      });
    } catch (err) {
      if (err instanceof BusStoppedError) return false;
      throw err;
    }
  }

  async execute(topic: string, payload: unknown, options: PublishAsyncOptions | undefined, session: string | undefined): Promise<CommandResult> {
    const timeoutMs = checkTimeout(options?.timeoutMs);
    const lane = this.#prepare(topic, payload, options, session);
    const route = this.#router.commandRoute(topic);
    if (route === undefined) {
      return { success: false, error: `no command handler registered for topic '${topic}'`, attempts: 0 };
    }
    const handler = route.stages[0].handlers[0].name;
    if (!this.#breakers.allows(handler)) return { success: false, error: new CircuitOpenError(handler).message, attempts: 0 };
    if (this.#options.queue.strategy === 'drop-oldest' && !this.#closed() && !this.#queue.hasRoom() && !this.#dropOldest(lane)) {
      this.#published++;
      this.#metrics.topic(topic).published++;
      this.#drop(topic);
      return { success: false, error: `command on topic '${topic}' was dropped: the queue is full of higher-priority events`, attempts: 0 };
    }
    try {
      return await this.#withRoom(topic, timeoutMs, (reserved) =>
        new Promise<CommandResult>((resolve) => this.#commit(topic, payload, lane, reserved, resolve)),
      );
    } catch (err) {
      if (err instanceof BackpressureError || err instanceof BusStoppedError) return { success: false, error: err.message, attempts: 0 };
      throw err;
    }
  }

  /**
   * With the event in the scratch record: commits at once when there is room
   * and nobody waits (so publishAsync and execute keep their call order with
   * publish); otherwise keeps the encoded event aside, waits for room reserved
   * for this caller, and commits it.
   */
  async #withRoom<T>(topic: string, timeoutMs: number, commit: (reserved: boolean) => T): Promise<T> {
    if (this.#closed()) {
      this.#reject(topic);
      throw new BusStoppedError(this.#state);
    }
    if (this.#queue.waiting === 0 && this.#queue.hasRoom()) return commit(false);
    const encoded = this.#pending.snapshot();
    this.#pending.clear();
    const granted = await this.#queue.waitForRoom(timeoutMs);
    if (!granted) {
      this.#reject(topic);
      if (this.#closed()) throw new BusStoppedError(this.#state);
      throw new BackpressureError(topic, timeoutMs);
    }
    if (this.#closed()) {
      this.#queue.release();
      this.#reject(topic);
      throw new BusStoppedError(this.#state);
    }
    this.#pending.restore(encoded);
    return commit(true);
  }

  /** Validates and encodes into the scratch record; throws on bad input before anything is counted. */
  #prepare(topic: string, payload: unknown, options: PublishOptions | undefined, session: string | undefined): number {
    checkTopic(topic);
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw new TypeError(`publish options for topic '${topic}' must be an object, got ${String(options)}`);
    }
    const lane = laneOf(options?.priority);
    const sessionId = options?.sessionId ?? session;
    if (sessionId !== undefined && typeof sessionId !== 'string') {
      throw new TypeError(`sessionId for topic '${topic}' must be a string, got ${String(sessionId)}`);
    }
    const p = this.#pending;
    p.clear();
    p.session = sessionId;
    p.sessionBytes = sessionId === undefined ? 0 : Buffer.byteLength(sessionId);
    if (p.sessionBytes > MAX_SESSION_BYTES) {
      throw new RangeError(`sessionId for topic '${topic}' is ${p.sessionBytes} bytes; the most is ${MAX_SESSION_BYTES}`);
    }
    if (payload instanceof Uint8Array) {
      p.flags = RF_BINARY;
      p.binary = payload;
      p.payloadBytes = payload.byteLength;
    } else {
      let text: string | undefined;
      try {
        text = JSON.stringify(payload);
      } catch (err) {
        throw new TypeError(`payload for topic '${topic}' cannot be encoded as JSON: ${errorMessage(err)}`);
      }
      if (text === undefined) {
        if (payload !== undefined) {
          throw new TypeError(`payload for topic '${topic}' cannot be encoded as JSON (a ${typeof payload})`);
        }
        p.flags = RF_UNDEFINED;
        p.payloadBytes = 0;
      } else {
        p.flags = 0;
        p.text = text;
        p.payloadBytes = Buffer.byteLength(text);
      }
    }
    if (p.payloadBytes > this.#options.queue.maxPayloadBytes) {
      throw new RangeError(
        `payload for topic '${topic}' is ${p.payloadBytes} bytes, more than queue.maxPayloadBytes (${this.#options.queue.maxPayloadBytes})`,
      );
    }
    return lane;
  }

  /** Accepts the event in the scratch record and starts its first stage. */
  #commit(topic: string, payload: unknown, lane: number, reserved: boolean, resolveCommand: ((r: CommandResult) => void) | undefined,
    routeOverride?: Route, idOverride?: string): void {
    const backpressureOn = this.#queue.accept(reserved);
    this.#published++;
    const seq = ++this.#seq;
    // Epoch ms with sub-ms precision, comparable across threads (each thread's timeOrigin + now()).
    const publishedAt = performance.timeOrigin + performance.now();
    const route = routeOverride ?? (resolveCommand ? this.#router.commandRoute(topic) : this.#router.eventRoute(topic));
    (route?.counters ?? this.#metrics.topic(topic)).published++;
    if (route === undefined || route.stages.length === 0) {
      // No handler (or the command handler went away while waiting for room).
      resolveCommand?.({ success: false, error: `no command handler registered for topic '${topic}'`, attempts: 0 });
      this.#pending.clear();
      if (backpressureOn) this.#backpressureChanged(true);
      this.#settle(1);
      return;
    }
    const p = this.#pending;
    let tracked: Tracked | undefined;
    if (resolveCommand !== undefined || route.stages.length > 1) {
      tracked = {
        seq, topic, payload, payloadFlags: p.flags, text: p.text, payloadBytes: p.payloadBytes, lane,
        sessionId: p.session, publishedAt, route, stage: 0, resolveCommand, commandResolved: false,
      };
      this.#tracked.set(seq, tracked);
    }
    const stage = route.stages[0];
    if (stage.inWorker) {
      p.flags |= (lane << RF_LANE_SHIFT) | (tracked ? RF_TRACKED : 0) | (resolveCommand ? RF_COMMAND : 0);
      p.topicId = route.topicId;
      p.attempt = 0;
      p.seq = seq;
      p.publishedAt = publishedAt;
      p.handlerIds = stage.handlerIds;
      this.#writeRecord(lane);
    } else {
      const event = this.#event(seq, topic, payload, lane, p.session, publishedAt);
      if (idOverride !== undefined) event.id = idOverride;
      this.#inline.enqueue(lane, { seq, event, handlers: stage.handlers });
    }
    p.clear();
    // Only now, with the event written: a listener may publish in turn.
    if (backpressureOn) this.#backpressureChanged(true);
  }

  #backpressureChanged(active: boolean): void {
    this.#log.info({ active, queueSize: this.#queue.size, capacity: this.#options.queue.capacity }, active ? 'backpressure on' : 'backpressure off');
    this.#emitter.emit('backpressure', { active });
  }

  #event(seq: number, topic: string, payload: unknown, lane: number, sessionId: string | undefined, publishedAt: number): { -readonly [K in keyof BusEvent]: BusEvent[K] } {
    return { id: this.#memory.idPrefix + seq, topic, payload, priority: PRIORITY_NAMES[lane], sessionId, attempt: 0, publishedAt };
  }

  /** Writes the scratch record into its lane, or behind the lane's overflow to keep FIFO order. */
  #writeRecord(lane: number): void {
    const overflow = this.#overflow[lane];
    if (overflow.length > 0 || !this.#writers[lane].write(this.#pending)) overflow.push(this.#pending.toStandalone());
    this.#signalWork();
  }

  #writeEncoded(lane: number, record: Uint8Array): void {
    const overflow = this.#overflow[lane];
    if (overflow.length > 0 || !this.#writers[lane].writeEncoded(record)) overflow.push(record);
  }

  /** Drops the oldest waiting event of the lowest lane at or below `lane`; false if there is none. */
  #dropOldest(lane: number): boolean {
    for (let l = LANE_COUNT - 1; l >= lane; l--) {
      const writer = this.#writers[l];
      const off = writer.takeOldest();
      if (off >= 0) {
        this.#drop(this.#topicName(writer.view.i32[(off >> 2) + 2]));
        this.#droppedEvent(recordSeq(writer.view, off), (recordFlags(writer.view, off) & RF_TRACKED) !== 0);
        return true;
      }
      const head = this.#overflow[l].peek();
      if (head && !(recordFlags(viewOf(head.buffer, head.byteOffset, head.byteLength), 0) & RF_CONTINUATION)) {
        this.#overflow[l].shift();
        const d = decodeRecord(head);
        this.#drop(this.#topicName(d.topicId));
        this.#droppedEvent(d.seq, (d.flags & RF_TRACKED) !== 0);
        return true;
      }
      const job = this.#inline.takeOldest(l);
      if (job) {
        this.#drop(job.event.topic);
        this.#droppedEvent(job.seq, this.#tracked.has(job.seq));
        return true;
      }
    }
    return false;
  }

  #drop(topic: string): void {
    this.#dropped++;
    this.#metrics.topic(topic).dropped++;
  }

  #reject(topic: string): void {
    this.#rejected++;
    this.#metrics.topic(topic).rejected++;
  }

  #droppedEvent(seq: number, tracked: boolean): void {
    if (tracked) {
      const t = this.#tracked.get(seq);
      this.#tracked.delete(seq);
      t?.resolveCommand?.({ success: false, error: `command on topic '${t.topic}' was dropped (queue.strategy 'drop-oldest')`, attempts: 0 });
    }
    this.#settle(1);
  }

  // ---------------------------------------------------------------- the pool

  /** Workers may be given work: running, or stopping while the drain still needs them. */
  #dispatching(): boolean {
    return (this.#state === 'running' || this.#state === 'stopping') && !this.#terminating && this.#pool !== undefined;
  }

  /**
   * A record landed: wake a parked worker, or start a task. The wake (a futex
   * system call, 15–45 µs here) happens once per parking and after the
   * publishing code's turn (a microtask), so no publish() call pays for it.
   */
  #signalWork(): void {
    if (!this.#dispatching()) return;
    if (Atomics.load(this.#control, SLEEPERS) > 0) {
      if (Atomics.compareExchange(this.#control, WAKE_PENDING, 0, 1) === 0) queueMicrotask(this.#wakeOne);
    } else if (this.#freeSlots.length > 0 && this.#taskBackoff === undefined) {
      this.#submit();
    }
  }

  readonly #wakeOne = (): void => this.#wake(1);

  #wake(count: number): void {
    Atomics.add(this.#control, WAKE, 1);
    Atomics.notify(this.#control, WAKE, count);
  }

  #pump(): void {
    this.#flushOverflow();
    if (!this.#dispatching()) return;
    while (this.#freeSlots.length > 0 && this.#taskBackoff === undefined && this.#workerBacklog() > this.#activeSlots.size - this.#sleepers()) {
      this.#submit();
    }
    if (this.#workerBacklog() > 0 && this.#sleepers() > 0) this.#wake(Infinity);
  }

  #sleepers(): number {
    return Atomics.load(this.#control, SLEEPERS);
  }

  #workerBacklog(): number {
    let n = 0;
    for (let lane = 0; lane < LANE_COUNT; lane++) n += this.#writers[lane].waiting + this.#overflow[lane].length;
    return n;
  }

  #submit(): void {
    const slot = this.#freeSlots.pop();
    if (slot === undefined || this.#pool === undefined) return;
    const c = this.#control;
    for (const field of [SLOT_BUSY, SLOT_SETTLED, SLOT_PROCESSED, SLOT_CURSOR]) Atomics.store(c, slotWord(slot, field), 0);
    Atomics.store(c, slotWord(slot, SLOT_HANDLER_INDEX), -1);
    // A new task has answered no flush request yet.
    Atomics.store(c, slotWord(slot, SLOT_FLUSHED), Atomics.load(c, FLUSH_REQUEST) - 1);
    resetMailbox(this.#memory.metrics[slot]);
    resetOutcomes(c, slot);
    this.#activeSlots.add(slot);
    const { maxBatch, maxThreads, lingerMs } = this.#options.pool;
    const task: DrainTask = {
      kind: 'drain', slot, maxBatch, threads: maxThreads, lingerMs,
      keepFailedRecords: this.#options.retry !== false || this.#options.deadLetter !== false,
      maxResultBytes: this.#options.queue.maxPayloadBytes,
      metrics: this.#options.metrics,
    };
    const abort = new AbortController();
    this.#abort[slot] = abort;
    this.#watched[slot].handler = -1;
    this.#pool.run(task, { signal: abort.signal }).then(
      () => this.#taskEnded(slot, undefined),
      (err: unknown) => this.#taskEnded(slot, err),
    );
    this.#armProgress();
    this.#startWatchdog();
  }

  /**
   * Handler timeouts without any cost in the worker (one timer while the bus
   * runs, also for async inline handlers): it samples each busy
   * slot's (cursor, handler index); if the same handler of the same record is
   * still running `handlerTimeoutMs` after it was first seen, the task is
   * aborted, which makes Piscina terminate that worker (the only way to stop a
   * synchronous infinite loop) and start a new one.
   */
  #startWatchdog(): void {
    const timeoutMs = this.#options.handlerTimeoutMs;
    if (timeoutMs === false || this.#watchdog !== undefined) return;
    this.#watchdog = setInterval(() => {
      const now = performance.now();
      const c = this.#control;
      // Async inline handlers: their promise cannot be stopped, but the delivery fails on time.
      this.#inline.expire(timeoutMs, (h) => {
        this.#handlerTimeouts++;
        return new HandlerTimeoutError(h.name, timeoutMs);
      });
      for (const slot of this.#activeSlots) {
        const seen = this.#watched[slot];
        const handler = Atomics.load(c, slotWord(slot, SLOT_BUSY)) === 1 ? Atomics.load(c, slotWord(slot, SLOT_HANDLER_INDEX)) : -1;
        const cursor = Atomics.load(c, slotWord(slot, SLOT_CURSOR));
        if (handler < 0 || handler !== seen.handler || cursor !== seen.cursor) {
          seen.handler = handler;
          seen.cursor = cursor;
          seen.since = now;
        } else if (now - seen.since >= timeoutMs && !this.#timedOut.has(slot)) {
          this.#timedOut.add(slot);
          this.#abort[slot]?.abort(new HandlerTimeoutError(this.#handlerName(handler), timeoutMs));
        }
      }
    }, Math.max(5, Math.min(1000, Math.floor(timeoutMs / 4))));
    this.#watchdog.unref();
  }

  #taskEnded(slot: number, err: unknown): void {
    const c = this.#control;
    this.#abort[slot] = undefined;
    const timedOut = this.#timedOut.delete(slot);
    this.#drainSlot(slot);
    const crashedMidBatch = err !== undefined && Atomics.load(c, slotWord(slot, SLOT_BUSY)) === 1;
    if (err !== undefined && !this.#terminating) {
      if (timedOut) this.#handlerTimeouts++;
      else this.#workerCrashes++;
    }
    if (crashedMidBatch && !this.#terminating) this.#recoverBatch(slot, err, timedOut);
    this.#retiredSettled += Atomics.load(c, slotWord(slot, SLOT_SETTLED));
    this.#retiredProcessed += Atomics.load(c, slotWord(slot, SLOT_PROCESSED));
    const report = readMailbox(this.#memory.metrics[slot]) ?? this.#lastReports[slot];
    if (report !== undefined) this.#metrics.retire(report);
    this.#lastReports[slot] = undefined;
    resetMailbox(this.#memory.metrics[slot]);
    for (const field of [SLOT_BUSY, SLOT_SETTLED, SLOT_PROCESSED]) Atomics.store(c, slotWord(slot, field), 0);
    this.#activeSlots.delete(slot);
    this.#freeSlots.push(slot);
    if (err !== undefined && !crashedMidBatch && this.#state === 'running') {
      this.#log.error({ err: errorMessage(err) }, 'worker task failed outside a batch; retrying shortly');
      this.#taskBackoff = setTimeout(() => {
        this.#taskBackoff = undefined;
        this.#pump();
      }, TASK_FAILURE_BACKOFF_MS);
    }
    this.#collect();
    this.#pump();
    this.#checkFlushes();
  }

  /**
   * A worker died inside a batch (it crashed, or the watchdog ended it for a
   * handler timeout). Records before the cursor are accounted for: implicit
   * successes in the slot's counters, the rest in its outcome ring. The running
   * handler's delivery failed; the handlers after it on that record and every
   * later record of the batch run again, uncharged.
   */
  #recoverBatch(slot: number, err: unknown, timedOut: boolean): void {
    const c = this.#control;
    const lane = Atomics.load(c, slotWord(slot, SLOT_LANE));
    const cursor = Atomics.load(c, slotWord(slot, SLOT_CURSOR));
    const end = Atomics.load(c, slotWord(slot, SLOT_END));
    const handlerIndex = Atomics.load(c, slotWord(slot, SLOT_HANDLER_INDEX));
    const records = this.#writers[lane].copyRange(cursor, end);
    // A handler was running (index >= 0): its delivery failed. Otherwise the worker died between records.
    const crashed = handlerIndex >= 0 ? records.shift() : undefined;
    this.#log.error({ err: errorMessage(err), requeued: records.length, timedOut }, 'worker died mid-batch; replacing it and re-running the rest of its batch');
    if (crashed !== undefined) {
      const d = decodeRecord(crashed);
      const handlerId = d.handlerIds[Math.min(handlerIndex, d.handlerIds.length - 1)];
      const name = this.#handlerName(handlerId);
      const error = timedOut
        ? new HandlerTimeoutError(name, this.#options.handlerTimeoutMs || 0).message
        : `worker exited while running handler '${name}': ${errorMessage(err)}`;
      this.#attemptFailed({
        seq: d.seq, lane, topic: this.#topicName(d.topicId), handler: name, attempt: d.attempt, error, refused: false,
        record: crashed, handlerId,
      });
      const remaining = d.handlerIds.subarray(handlerIndex + 1);
      // What is left of the record reports back explicitly, so main sees its pass end.
      if (remaining.length > 0) this.#writeEncoded(lane, rewriteRecord(crashed, remaining, d.attempt, RF_TRACKED | RF_CONTINUATION));
      else this.#recordDone(d.seq, d.attempt, true, undefined);
    }
    for (const record of records) this.#writeEncoded(lane, record);
    Atomics.store(c, slotWord(slot, SLOT_BUSY), 0);
  }

  #handlerName(handlerId: number): string {
    const entry = this.#registry.entry(handlerId);
    return entry.kind === ENTRY_HANDLER ? entry.name : `#${handlerId}`;
  }

  #topicName(topicId: number): string {
    const entry = this.#registry.entry(topicId);
    return entry.kind === ENTRY_HANDLER ? `#${topicId}` : entry.topic;
  }

  /**
   * Main waits for PROGRESS without blocking: Atomics.waitAsync on the value
   * PROGRESS had when main last started collecting. Any batch finished since
   * then makes the wait return at once, so no report waits for the poll.
   */
  #armProgress(): void {
    if (this.#progressArmed) return;
    if (this.#activeSlots.size === 0) {
      Atomics.store(this.#control, MAIN_WAITING, 0);
      return;
    }
    this.#progressArmed = true;
    Atomics.store(this.#control, MAIN_WAITING, 1);
    const wait = Atomics.waitAsync(this.#control, PROGRESS, this.#progressSeen, PROGRESS_POLL_MS);
    if (wait.async) void wait.value.then(this.#onProgress);
    else queueMicrotask(this.#onProgress);
  }

  readonly #onProgress = (): void => {
    this.#progressArmed = false;
    // Read before collecting: a batch ending during the collection bumps PROGRESS past this value.
    this.#progressSeen = Atomics.load(this.#control, PROGRESS);
    this.#collect();
    this.#pump();
    this.#checkFlushes();
    this.#armProgress();
  };

  #liveReports(): WorkerMetricsReport[] {
    const reports: WorkerMetricsReport[] = [];
    for (const slot of this.#activeSlots) {
      // A read that races the worker's write falls back to the last good one: counters never go backwards.
      const report = readMailbox(this.#memory.metrics[slot]) ?? this.#lastReports[slot];
      this.#lastReports[slot] = report;
      if (report !== undefined) reports.push(report);
    }
    return reports;
  }

  /**
   * Asks every running worker to publish its metrics now, and resolves once
   * each has (or its task ended, which publishes too): so the numbers read
   * after drain() include every settled event.
   */
  #flushMetrics(): Promise<void> {
    if (!this.#options.metrics || this.#activeSlots.size === 0) return Promise.resolve();
    const request = Atomics.add(this.#control, FLUSH_REQUEST, 1) + 1;
    this.#wake(Infinity);
    return new Promise((resolve) => {
      this.#flushWaiters.push({ request, resolve });
      this.#checkFlushes();
    });
  }

  #checkFlushes(): void {
    if (this.#flushWaiters.length === 0) return;
    for (let i = this.#flushWaiters.length - 1; i >= 0; i--) {
      const { request, resolve } = this.#flushWaiters[i];
      let answered = true;
      for (const slot of this.#activeSlots) {
        if (((Atomics.load(this.#control, slotWord(slot, SLOT_FLUSHED)) - request) | 0) < 0) answered = false;
      }
      if (answered) {
        this.#flushWaiters.splice(i, 1);
        resolve();
      }
    }
  }

  #collect(): void {
    for (const slot of this.#activeSlots) this.#drainSlot(slot);
    this.#flushOverflow();
    this.#afterSettle();
  }

  #drainSlot(slot: number): void {
    this.#outcomeReaders[slot].drain(this.#onOutcome);
  }

  readonly #onOutcome = (o: Outcome): void => {
    switch (o.kind) {
      case OUT_FAILED:
      case OUT_REFUSED:
        this.#attemptFailed({
          seq: o.seq, lane: o.record ? (recordFlags(viewOf(o.record.buffer, o.record.byteOffset, o.record.byteLength), 0) >> RF_LANE_SHIFT) & 3 : this.#tracked.get(o.seq)?.lane ?? 2,
          topic: this.#topicName(o.topicId), handler: this.#handlerName(o.handlerId), attempt: o.attempt, error: o.text,
          refused: o.kind === OUT_REFUSED, record: o.record, handlerId: o.handlerId,
        });
        break;
      case OUT_SUCCEEDED:
        this.#breakers.onSuccess(this.#handlerName(o.handlerId));
        break;
      case OUT_DONE: {
        const failed = this.#ledger.get(o.seq)?.failedAttempt === o.attempt;
        let result: unknown;
        if (!failed && o.text !== '' && this.#tracked.get(o.seq)?.resolveCommand) {
          try {
            result = JSON.parse(o.text);
          } catch {
            result = undefined;
          }
        }
        this.#recordDone(o.seq, o.attempt, failed, result);
        break;
      }
    }
  };

  #flushOverflow(): void {
    let wrote = false;
    for (let lane = 0; lane < LANE_COUNT; lane++) {
      const overflow = this.#overflow[lane];
      for (let head = overflow.peek(); head !== undefined; head = overflow.peek()) {
        if (!this.#writers[lane].writeEncoded(head)) break;
        overflow.shift();
        wrote = true;
      }
    }
    if (wrote) this.#signalWork();
  }

  // ---------------------------------------------------------------- failures, retries, dead letters

  /**
   * One attempt at one delivery failed. With attempts left it runs again
   * after the backoff (holding its place in the capacity); otherwise it is
   * dead-lettered, or with no dead-letter queue counted as a final failure.
   */
  #attemptFailed(f: FailedAttempt): void {
    this.#failed++;
    const counters = this.#metrics.handler(f.handler);
    counters.failed++;
    if (!f.refused) this.#breakers.onFailure(f.handler);
    if (this.#emitter.listenerCount('handler-error') > 0) {
      const eventId = f.job?.event.id ?? (f.record ? decodeRecord(f.record).id : undefined) ?? this.#memory.idPrefix + f.seq;
      const event: HandlerErrorEvent = { eventId, topic: f.topic, handler: f.handler, attempt: f.attempt, error: f.error };
      this.#emitter.emit('handler-error', event);
    }
    let ledger = this.#ledger.get(f.seq);
    if (ledger === undefined) {
      const publishedAt = f.job?.event.publishedAt ?? this.#tracked.get(f.seq)?.publishedAt ?? (f.record ? decodeRecord(f.record).publishedAt : 0);
      ledger = { outstanding: 0, baseDone: false, failedAttempt: -1, firstFailureAt: new Map(), topic: f.topic, publishedAt };
      this.#ledger.set(f.seq, ledger);
    }
    ledger.failedAttempt = f.attempt;
    const now = Date.now();
    const firstAt = ledger.firstFailureAt.get(f.handler) ?? now;
    const retry = this.#options.retry;
    const canRetry = retry && !this.#terminating && f.attempt < retry.maxRetries &&
      (f.job !== undefined || (f.record !== undefined && f.handlerId !== undefined));
    if (canRetry) {
      ledger.firstFailureAt.set(f.handler, firstAt);
      ledger.outstanding++;
      this.#retried++;
      counters.retried++;
      const next = f.attempt + 1;
      const item: RetryItem = {
        lane: f.lane,
        record: f.record && f.handlerId !== undefined ? rewriteRecord(f.record, [f.handlerId], next, RF_TRACKED | RF_CONTINUATION) : undefined,
        job: f.job && f.reg ? { seq: f.seq, event: { ...f.job.event, attempt: next }, handlers: [f.reg], continuation: true } : undefined,
        failure: f,
        firstAt,
      };
      this.#retries.schedule(this.#backoff!.delayMs(next), item);
      return;
    }
    ledger.firstFailureAt.delete(f.handler);
    const tracked = this.#tracked.get(f.seq);
    if (tracked?.resolveCommand && !tracked.commandResolved) {
      tracked.commandResolved = true;
      tracked.resolveCommand({ success: false, error: f.error, attempts: f.attempt + 1 });
    }
    if (this.#deadLetters !== undefined) {
      ledger.outstanding++;
      this.#deadLetterBatch.push({ entry: this.#deadLetterEntry(f, firstAt, now), seq: f.seq });
      if (this.#deadLetterBatch.length === 1) queueMicrotask(this.#flushDeadLetters);
    }
  }

  #runRetry(item: RetryItem): void {
    if (this.#terminating) return;
    if (item.record !== undefined) {
      this.#writeEncoded(item.lane, item.record);
      this.#signalWork();
    } else if (item.job !== undefined) {
      this.#inline.enqueue(item.lane, item.job);
    }
  }

  /**
   * A record or inline job finished: attempt 0 is a stage of the event's
   * first pass, a higher attempt is one retried delivery.
   */
  #recordDone(seq: number, attempt: number, failed: boolean, result: unknown, origin?: BusEvent): void {
    const t = this.#tracked.get(seq);
    if (t?.resolveCommand && !failed && !t.commandResolved) {
      t.commandResolved = true;
      t.resolveCommand({ success: true, result, attempts: attempt + 1 });
    }
    if (attempt > 0) {
      const ledger = this.#ledger.get(seq);
      if (ledger !== undefined && --ledger.outstanding === 0 && ledger.baseDone) this.#finish(seq, undefined);
      return;
    }
    if (t !== undefined && !t.resolveCommand && ++t.stage < t.route.stages.length) {
      this.#startStage(t);
      return;
    }
    const ledger = this.#ledger.get(seq);
    if (ledger !== undefined && ledger.outstanding > 0) ledger.baseDone = true;
    else this.#finish(seq, origin);
  }

  /**
   * Every delivery of the event is processed, dead-lettered or finally
   * failed. Events settled here (not implicitly by a worker) get their
   * end-to-end time measured here.
   */
  #finish(seq: number, origin: { topic: string; publishedAt: number } | undefined): void {
    if (this.#options.metrics) {
      const known = this.#tracked.get(seq) ?? this.#ledger.get(seq) ?? origin;
      if (known !== undefined && known.publishedAt > 0) {
        this.#metrics.topic(known.topic).endToEnd.record((performance.timeOrigin + performance.now() - known.publishedAt) * 1e6);
      }
    }
    this.#ledger.delete(seq);
    this.#tracked.delete(seq);
    this.#settle(1);
  }

  #startStage(t: Tracked): void {
    const stage = t.route.stages[t.stage];
    if (stage.inWorker) {
      const p = this.#pending;
      p.clear();
      p.flags = t.payloadFlags | (t.lane << RF_LANE_SHIFT) | RF_TRACKED | RF_CONTINUATION;
      p.topicId = t.route.topicId;
      p.attempt = 0;
      p.seq = t.seq;
      p.publishedAt = t.publishedAt;
      p.handlerIds = stage.handlerIds;
      p.session = t.sessionId;
      p.sessionBytes = t.sessionId === undefined ? 0 : Buffer.byteLength(t.sessionId);
      p.text = t.text;
      if (t.payloadFlags & RF_BINARY) p.binary = t.payload as Uint8Array;
      p.payloadBytes = t.payloadBytes;
      this.#writeRecord(t.lane);
      p.clear();
    } else {
      this.#inline.enqueue(t.lane, {
        seq: t.seq, event: this.#event(t.seq, t.topic, t.payload, t.lane, t.sessionId, t.publishedAt), handlers: stage.handlers, continuation: true,
      });
    }
  }

  #deadLetterEntry(f: FailedAttempt, firstAttemptAt: number, lastAttemptAt: number): DeadLetterEntry {
    let event: DeadEvent;
    if (f.job !== undefined) {
      const e = f.job.event;
      event = { id: e.id, topic: e.topic, payload: e.payload, priority: e.priority, sessionId: e.sessionId, publishedAt: e.publishedAt };
    } else {
      const d = f.record ? decodeRecord(f.record) : undefined;
      const t = this.#tracked.get(f.seq);
      event = {
        id: d?.id ?? this.#memory.idPrefix + f.seq, topic: f.topic, payload: d ? d.payload : t?.payload,
        priority: PRIORITY_NAMES[f.lane], sessionId: d ? d.sessionId : t?.sessionId, publishedAt: d?.publishedAt ?? t?.publishedAt ?? 0,
      };
    }
    return {
      id: `${this.#memory.idPrefix}dl${++this.#deadLetterSeq}`, event, handler: f.handler, error: f.error,
      attempts: f.attempt + 1, firstAttemptAt, lastAttemptAt,
    };
  }

  /** Persists the dead letters of this turn in one write, then acknowledges them. */
  readonly #flushDeadLetters = (): void => {
    const batch = this.#deadLetterBatch;
    if (batch.length === 0 || this.#deadLetters === undefined) return;
    this.#deadLetterBatch = [];
    try {
      this.#deadLetters.add(batch.map((b) => b.entry));
    } catch (err) {
      this.#log.error({ err: errorMessage(err), path: this.#deadLetterSink?.path, entries: batch.length },
        'could not write dead letters to their file; kept in memory only');
      this.#deadLetters.restore(batch.map((b) => b.entry));
    }
    for (const { entry, seq } of batch) {
      this.#deadLettered++;
      this.#metrics.handler(entry.handler).deadLettered++;
      this.#deadLetterLog.warn({ handler: entry.handler, topic: entry.event.topic, eventId: entry.event.id, error: entry.error, attempts: entry.attempts }, 'delivery dead-lettered');
      this.#emitter.emit('dead-letter', entry);
      const ledger = this.#ledger.get(seq);
      if (ledger !== undefined && --ledger.outstanding === 0 && ledger.baseDone) this.#finish(seq, undefined);
    }
  };

  /** Publishes dead letters again, each to its own handler only, with fresh attempts and its original event id. */
  #republish(entries: DeadLetterEntry[]): number {
    // Every entry's handler must exist before any is published again: all or nothing.
    const regs = entries.map((entry) => {
      const reg = this.#router.find(entry.event.topic, entry.handler);
      if (reg === undefined) {
        throw new RangeError(`cannot replay dead letter ${entry.id}: no handler '${entry.handler}' on topic '${entry.event.topic}'`);
      }
      return reg;
    });
    let accepted = 0;
    for (const [i, entry] of entries.entries()) {
      const reg = regs[i];
      if (this.#closed() || !this.#queue.hasRoom()) break;
      const lane = this.#prepare(entry.event.topic, entry.event.payload, { priority: entry.event.priority }, entry.event.sessionId);
      this.#pending.id = entry.event.id;
      this.#pending.idBytes = Buffer.byteLength(entry.event.id);
      this.#commit(entry.event.topic, entry.event.payload, lane, false, undefined, this.#router.single(reg), entry.event.id);
      accepted++;
    }
    return accepted;
  }

  #circuitMoved(handler: string, from: CircuitState, to: CircuitState): void {
    this.#log.info({ handler, from, to }, `circuit ${to === 'half_open' ? 'half-open' : to}`);
    this.#emitter.emit('circuit', { handler, from, to });
  }

  circuitState(handler: string): CircuitState {
    return this.#breakers.state(handler);
  }

  get deadLetters(): DeadLetters {
    return this.#deadLetterQueue;
  }

  #settle(count: number): void {
    this.#queue.settle(count);
    this.#afterSettle();
  }

  #afterSettle(): void {
    if (this.#queue.observe()) this.#backpressureChanged(false);
    if (this.#drainWaiters.length > 0 && this.#queue.size === 0) this.#resolveDrainWaiters();
  }

  #resolveDrainWaiters(): void {
    for (const resolve of this.#drainWaiters.splice(0)) resolve();
  }

  #workerSettled(): number {
    let n = this.#retiredSettled;
    for (const slot of this.#activeSlots) n += Atomics.load(this.#control, slotWord(slot, SLOT_SETTLED));
    return n;
  }

  stats(): BusStats {
    let processed = this.#processedMain + this.#retiredProcessed;
    for (const slot of this.#activeSlots) processed += Atomics.load(this.#control, slotWord(slot, SLOT_PROCESSED));
    return {
      published: this.#published,
      processed,
      failed: this.#failed,
      dropped: this.#dropped,
      rejected: this.#rejected,
      abandoned: this.#abandoned,
      retried: this.#retried,
      deadLettered: this.#deadLettered,
      workerCrashes: this.#workerCrashes,
      handlerTimeouts: this.#handlerTimeouts,
      queueSize: this.#queue.size,
      backpressureActive: this.#queue.backpressureActive,
    };
  }

  /** Records in the lanes not yet claimed by a worker (for tests and metrics). */
  laneDepths(): Record<Priority, number> {
    const depth = (lane: number): number => this.#writers[lane].waiting + this.#overflow[lane].length;
    return { critical: depth(0), high: depth(1), normal: depth(2), low: depth(3) };
  }
}

function checkTimeout(timeoutMs: unknown): number {
  if (timeoutMs === undefined) return Infinity;
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw new RangeError(`timeoutMs must be a number >= 0, got ${String(timeoutMs)}`);
  }
  return timeoutMs;
}

