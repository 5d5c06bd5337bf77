import { fileURLToPath } from 'node:url';
import { BroadcastChannel } from 'node:worker_threads';
import { randomUUID } from 'node:crypto';
import { afterEach, expect } from 'vitest';
import { MessageBus, workerHandler, type BusOptions, type Logger, type MessageBusEvents, type WorkerHandlerRef } from '../src/index.js';
import type { RecordMessage } from './fixtures/recorder.js';

export const HANDLERS = fileURLToPath(new URL('./fixtures/handlers.ts', import.meta.url));
export const RECORDER = fileURLToPath(new URL('./fixtures/recorder.ts', import.meta.url));

export const handler = (name: string): WorkerHandlerRef => workerHandler(HANDLERS, name);
export const recorder = (name: string): WorkerHandlerRef => workerHandler(RECORDER, name);

export interface LogLine {
  level: string;
  obj: unknown;
  msg: string | undefined;
}

/** A logger that keeps what it is told, for assertions. */
export function memoryLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (obj: unknown, msg?: string) => {
    lines.push({ level, obj, msg });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Listens to what recorder handlers report. */
export class Recording {
  readonly channel = `ringbus-test-${randomUUID()}`;
  readonly messages: RecordMessage[] = [];
  readonly #bc = new BroadcastChannel(this.channel);
  #waiters: { n: number; phase: string; resolve: () => void }[] = [];

  constructor() {
    this.#bc.onmessage = (m) => {
      this.messages.push((m as { data: RecordMessage }).data);
      this.#waiters = this.#waiters.filter((w) => {
        if (this.ended(w.phase).length >= w.n) w.resolve();
        return this.ended(w.phase).length < w.n;
      });
    };
  }

  ended(phase = 'end'): RecordMessage[] {
    return this.messages.filter((m) => m.phase === phase);
  }

  tags(): string[] {
    return this.ended().map((m) => m.tag);
  }

  /** Resolves when `n` messages of `phase` arrived; fails after 20 s (far beyond any test's need). */
  waitFor(n: number, phase: 'start' | 'end' = 'end'): Promise<void> {
    if (this.ended(phase).length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${this.ended(phase).length}/${n} '${phase}' reports`)), 20_000);
      this.#waiters.push({ n, phase, resolve: () => { clearTimeout(timer); resolve(); } });
    });
  }

  payload(tag: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { channel: this.channel, tag, ...extra };
  }

  /** Lets a `gated` recorder handler waiting on `tag` go on (see test/fixtures/recorder.ts). */
  release(tag: string): void {
    this.#bc.postMessage({ release: tag });
  }

  close(): void {
    this.#bc.close();
  }
}

export const quietLogger = (): Logger => memoryLogger();

/** How long the waiting helpers below wait before failing: a hang guard, far beyond what any wait needs. */
const HANG_GUARD_MS = 20_000;

/**
 * Resolves with the first `name` event the bus emits that `match` accepts. Call
 * it before the action that causes the event, so the event cannot come first.
 */
export function nextEvent<K extends keyof MessageBusEvents>(
  bus: MessageBus, name: K, match: (event: MessageBusEvents[K][0]) => boolean = () => true,
): Promise<MessageBusEvents[K][0]> {
  const emitter = bus as unknown as {
    on(name: string, fn: (event: MessageBusEvents[K][0]) => void): void;
    off(name: string, fn: (event: MessageBusEvents[K][0]) => void): void;
  };
  return new Promise((resolve, reject) => {
    const listener = (event: MessageBusEvents[K][0]): void => {
      if (!match(event)) return;
      clearTimeout(timer);
      emitter.off(name, listener);
      resolve(event);
    };
    const timer = setTimeout(() => {
      emitter.off(name, listener);
      reject(new Error(`no matching '${name}' event within ${HANG_GUARD_MS} ms`));
    }, HANG_GUARD_MS);
    emitter.on(name, listener);
  });
}

/**
 * Resolves once `condition()` holds, looking every 2 ms: for states the bus
 * announces with no event (e.g. a retry landing in its lane). Not a sleep: it
 * returns as soon as the state is there, and fails (naming `what`) only as a
 * hang guard.
 */
export async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + HANG_GUARD_MS;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export interface BusUnderTest {
  bus: MessageBus;
  rec: Recording;
}

/**
 * The pool of a bus whose handlers all run inline (on the main thread): no
 * worker is started for it (a worker's start under tsx costs ~0.5 s of CPU).
 */
export const INLINE_ONLY_POOL = { maxThreads: 1, minThreads: 0 } as const;

/**
 * Buses a test file makes: `bus()` with a quiet logger and one worker unless
 * the options say otherwise, `inlineBus()` with no worker thread (handlers all
 * inline); the file's afterEach calls `stopAll()` where its order needs it.
 */
export function testBuses(): { bus(options?: BusOptions): MessageBus; inlineBus(options?: BusOptions): MessageBus; stopAll(): Promise<void> } {
  const made: MessageBus[] = [];
  const bus = (options: BusOptions = {}): MessageBus => {
    const b = new MessageBus({ logger: quietLogger(), pool: { maxThreads: 1 }, ...options });
    made.push(b);
    return b;
  };
  return {
    bus,
    inlineBus: (options: BusOptions = {}) => bus({ pool: INLINE_ONLY_POOL, ...options }),
    stopAll: async () => {
      await Promise.all(made.splice(0).map((b) => b.stop({ drain: false })));
    },
  };
}

/**
 * Buses (and recordings) a test file creates, stopped and closed after each
 * test. `setup(options)` makes one with a quiet logger and one worker unless
 * the options (or the file's `defaults`) say otherwise.
 */
export function busFixture(defaults: BusOptions = {}): (options?: BusOptions, Bus?: typeof MessageBus) => BusUnderTest {
  const made: BusUnderTest[] = [];
  afterEach(async () => {
    const done = made.splice(0);
    await Promise.all(done.map(({ bus }) => bus.stop({ drain: false })));
    for (const { rec } of done) rec.close();
  });
  return (options = {}, Bus = MessageBus) => {
    const bus = new Bus({ logger: quietLogger(), pool: { maxThreads: 1 }, ...defaults, ...options });
    const made1 = { bus, rec: new Recording() };
    made.push(made1);
    return made1;
  };
}

/** Matches a failed CommandResult: its error is a RingbusError with this code and message (a RegExp matches it). */
export function failedWith(code: string, message: string | RegExp, attempts: number): unknown {
  return {
    success: false,
    attempts,
    error: expect.objectContaining({ code, message: typeof message === 'string' ? message : expect.stringMatching(message) }),
  };
}
