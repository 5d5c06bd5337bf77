import { fileURLToPath } from 'node:url';
import { BroadcastChannel } from 'node:worker_threads';
import { randomUUID } from 'node:crypto';
import { afterEach } from 'vitest';
import { MessageBus, workerHandler, type BusOptions, type Logger, type WorkerHandlerRef } from '../src/index.js';
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

  close(): void {
    this.#bc.close();
  }
}

export const quietLogger = (): Logger => memoryLogger();

export interface BusUnderTest {
  bus: MessageBus;
  rec: Recording;
}

/**
 * Buses (and recordings) a test file creates, stopped and closed after each
 * test. `setup(options)` makes one with a quiet logger and one worker unless
 * the options say otherwise.
 */
export function busFixture(): (options?: BusOptions, Bus?: typeof MessageBus) => BusUnderTest {
  const made: BusUnderTest[] = [];
  afterEach(async () => {
    const done = made.splice(0);
    await Promise.all(done.map(({ bus }) => bus.stop({ drain: false })));
    for (const { rec } of done) rec.close();
  });
  return (options = {}, Bus = MessageBus) => {
    const bus = new Bus({ logger: quietLogger(), pool: { maxThreads: 1 }, ...options });
    const made1 = { bus, rec: new Recording() };
    made.push(made1);
    return made1;
  };
}
