import { existsSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { DuplicateCommandHandlerError, HandlerLoadError, MessageBus, ResilientMessageBus, workerHandler, type BusEvent } from '../src/index.js';
import { checksum } from './fixtures/recorder.js';
import { HANDLERS, INLINE_ONLY_POOL, Recording, failedWith, handler, memoryLogger, quietLogger, recorder } from './helpers.js';

const buses: MessageBus[] = [];
function bus(options: ConstructorParameters<typeof MessageBus>[0] = {}): MessageBus {
  const b = new MessageBus({ logger: quietLogger(), pool: { maxThreads: 1 }, ...options });
  buses.push(b);
  return b;
}
/** A bus whose handlers all run inline: no worker thread to start. */
const inlineBus = (options: ConstructorParameters<typeof MessageBus>[0] = {}): MessageBus => bus({ pool: INLINE_ONLY_POOL, ...options });
afterEach(async () => {
  await Promise.all(buses.splice(0).map((b) => b.stop({ drain: false })));
});

describe('commands', () => {
  it('returns the worker handler result, with the event it saw', async () => {
    const b = bus();
    b.registerCommandHandler('describe', handler('describe'));
    b.registerCommandHandler('echo', handler('echo'));
    await b.start();
    const r = await b.execute<Record<string, unknown>>('describe', { x: 1 }, { priority: 'high' });
    expect(r.success).toBe(true);
    expect(r.attempts).toBe(1);
    expect(r.result).toMatchObject({ topic: 'describe', priority: 'high', attempt: 0, payloadKind: 'object' });
    expect(typeof r.result!.id).toBe('string');
    expect(Math.abs((r.result!.publishedAt as number) - Date.now())).toBeLessThan(60_000);
    expect(await b.execute('echo', [1, 'two', { three: 3 }])).toEqual({ success: true, result: [1, 'two', { three: 3 }], attempts: 1 });
  });

  it('runs an inline command handler on the main thread, async or not', async () => {
    const b = inlineBus();
    b.registerCommandHandler('add', (e: BusEvent<[number, number]>) => e.payload[0] + e.payload[1]);
    b.registerCommandHandler('later', async (e: BusEvent<string>) => `later:${e.payload}`);
    await b.start();
    expect(await b.execute('add', [2, 3])).toEqual({ success: true, result: 5, attempts: 1 });
    expect(await b.execute('later', 'x')).toEqual({ success: true, result: 'later:x', attempts: 1 });
  });

  it('resolves success: false with the handler message, never rejects', async () => {
    const b = bus();
    b.registerCommandHandler('fail', handler('fail'));
    b.registerCommandHandler('failInline', () => {
      throw new Error('inline boom');
    });
    await b.start();
    expect(await b.execute('fail', { message: 'worker boom' })).toEqual(failedWith('ERR_RINGBUS_HANDLER_FAILED', 'worker boom', 1));
    expect(await b.execute('failInline', null)).toEqual(failedWith('ERR_RINGBUS_HANDLER_FAILED', 'inline boom', 1));
    expect(b.stats().failed).toBe(2);
  });

  it('names the topic when there is no command handler', async () => {
    const b = inlineBus();
    await b.start();
    expect(await b.execute('nobody.home', 1)).toEqual(failedWith('ERR_RINGBUS_NO_HANDLER', "no command handler registered for topic 'nobody.home'", 0));
  });

  it('allows one command handler per topic', () => {
    const b = bus();
    b.registerCommandHandler('cmd', () => 1);
    expect(() => b.registerCommandHandler('cmd', handler('echo'))).toThrow(DuplicateCommandHandlerError);
    expect(() => b.registerCommandHandler('cmd', () => 2)).toThrow(/topic 'cmd' already has a command handler/);
  });

  it('awaits async worker handlers', async () => {
    const b = bus();
    b.registerCommandHandler('double', handler('asyncDouble'));
    await b.start();
    const results = await Promise.all([1, 2, 3].map((n) => b.execute('double', n)));
    expect(results.map((r) => r.result)).toEqual([2, 4, 6]);
  });
});

describe('events', () => {
  it('fans out to every handler; each delivery succeeds or fails on its own', async () => {
    const b = bus();
    const seen: string[] = [];
    b.registerEventHandler('order', (e) => void seen.push(`inline:${e.payload}`), { name: 'glue' });
    b.registerEventHandler('order', handler('noop'), { priority: 'high' });
    b.registerEventHandler('order', handler('fail'), { priority: 'high' });
    const errors: unknown[] = [];
    b.on('handler-error', (e) => errors.push(e));
    await b.start();
    expect(b.publish('order', 7)).toBe(true);
    await b.drain();
    expect(seen).toEqual(['inline:7']);
    expect(b.stats()).toMatchObject({ published: 1, processed: 2, failed: 1, queueSize: 0 });
    expect(errors).toEqual([expect.objectContaining({ topic: 'order', handler: 'fail', attempt: 0, error: expect.objectContaining({ code: 'ERR_RINGBUS_HANDLER_FAILED', message: 'handler failed on purpose' }) })]);
  });

  it('accepts events with no handler and settles them at once', async () => {
    const b = inlineBus();
    await b.start();
    expect(b.publish('nobody', { a: 1 })).toBe(true);
    await b.drain();
    expect(b.stats()).toMatchObject({ published: 1, processed: 0, queueSize: 0 });
  });

  it('keeps events published before start and runs them after it', async () => {
    const b = bus();
    const rec = new Recording();
    b.registerEventHandler('early', recorder('recordA'));
    const inline: number[] = [];
    b.registerEventHandler('early.inline', (e: BusEvent<number>) => void inline.push(e.payload));
    for (let i = 0; i < 5; i++) {
      expect(b.publish('early', rec.payload(`e${i}`))).toBe(true);
      expect(b.publish('early.inline', i)).toBe(true);
    }
    await new Promise((r) => setImmediate(r)); // a turn in which inline handlers would have run
    expect(inline).toEqual([]);
    // The worker records wait, unclaimed, in their lane: there is no pool to claim them yet.
    expect(b.laneDepths()).toEqual({ critical: 0, high: 0, normal: 5, low: 0 });
    expect(b.stats()).toMatchObject({ queueSize: 10, processed: 0 });
    await b.start();
    await b.drain();
    await rec.waitFor(5);
    expect(rec.tags()).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
    expect(inline).toEqual([0, 1, 2, 3, 4]);
    rec.close();
  });

  it('unsubscribes', async () => {
    const b = inlineBus();
    const seen: number[] = [];
    const off = b.registerEventHandler('t', (e: BusEvent<number>) => void seen.push(e.payload));
    await b.start();
    b.publish('t', 1);
    await b.drain();
    off();
    off();
    b.publish('t', 2);
    await b.drain();
    expect(seen).toEqual([1]);
  });

  it('rounds queue.ringBytes up: a ring of 5000 bytes takes events near maxPayloadBytes, larger than half of it', async () => {
    // 5000 is not a power of two, and a 3900-byte record would not fit twice in it: the ring is rounded up
    // (to a power of two holding two of the largest records), so these run, wrapping around many times.
    const b = bus({ queue: { ringBytes: 5000, maxPayloadBytes: 4000 } });
    b.registerEventHandler('verify', recorder('verify'));
    b.registerCommandHandler('describe', handler('describe'));
    await b.start();
    const n = 200;
    for (let i = 0; i < n; i++) {
      const data = `${i}:`.padEnd(2600 + (i % 13) * 100, String.fromCharCode(97 + (i % 26))); // 2600..3800 characters
      expect(b.publish('verify', { tag: String(i), data, check: checksum(data) })).toBe(true);
    }
    await b.drain();
    expect(b.stats()).toMatchObject({ published: n, processed: n, failed: 0, queueSize: 0 });
    // Exactly maxPayloadBytes is accepted, one byte more is not.
    const largest = Uint8Array.from({ length: 4000 }, (_, i) => i % 251);
    expect(await b.execute('describe', largest)).toMatchObject({ success: true, result: { size: 4000, sum: largest.reduce((a, v) => a + v, 0) } });
    expect(() => b.publish('verify', new Uint8Array(4001))).toThrow(/is 4001 bytes, more than queue\.maxPayloadBytes \(4000\)/);
  });

  it('carries payloads intact through ring wrap-around, overflow and two workers', async () => {
    const b = bus({ pool: { maxThreads: 2 }, queue: { ringBytes: 4096, maxPayloadBytes: 1500 } });
    b.registerEventHandler('verify', recorder('verify'));
    await b.start();
    const n = 5000;
    for (let i = 0; i < n; i++) {
      const data = `${i}:`.padEnd(i % 1200, String.fromCharCode(97 + (i % 26)));
      expect(b.publish('verify', { tag: String(i), data, check: checksum(data) })).toBe(true);
    }
    await b.drain();
    expect(b.stats()).toMatchObject({ published: n, processed: n, failed: 0, queueSize: 0 });
  });
});

describe('payloads', () => {
  it('carries a Uint8Array as raw bytes and hands it over as a Uint8Array', async () => {
    const b = bus();
    b.registerCommandHandler('describe', handler('describe'));
    await b.start();
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const r = await b.execute<Record<string, unknown>>('describe', bytes);
    expect(r.result).toMatchObject({ payloadKind: 'Uint8Array', size: 256, sum: (255 * 256) / 2 });
  });

  it('carries 100 KB payloads, JSON and binary', async () => {
    const b = bus();
    b.registerCommandHandler('echo', handler('echo'));
    b.registerCommandHandler('describe', handler('describe'));
    await b.start();
    const text = 'é'.repeat(50 * 1024);
    expect((await b.execute('echo', { text })).result).toEqual({ text });
    const bytes = new Uint8Array(100 * 1024).fill(3);
    expect((await b.execute<Record<string, unknown>>('describe', bytes)).result).toMatchObject({ size: 100 * 1024, sum: 3 * 100 * 1024 });
  });

  it('passes undefined and null payloads through', async () => {
    const b = bus();
    b.registerCommandHandler('describe', handler('describe'));
    await b.start();
    expect((await b.execute<Record<string, unknown>>('describe', undefined)).result).toMatchObject({ payloadKind: 'undefined' });
    expect((await b.execute<Record<string, unknown>>('describe', null)).result).toMatchObject({ payloadKind: 'object' });
  });

  it('stays up after rejecting a bad payload', async () => {
    const b = bus();
    b.registerCommandHandler('echo', handler('echo'));
    await b.start();
    expect(() => b.publish('echo', { n: 1n })).toThrow(TypeError);
    expect(() => b.publish('echo', 'x'.repeat(2 * 1024 * 1024))).toThrow(RangeError);
    expect(await b.execute('echo', 'still here')).toEqual({ success: true, result: 'still here', attempts: 1 });
  });
});

describe('worker handler modules', () => {
  it('fails start() naming a missing module', async () => {
    const b = bus();
    b.registerEventHandler('t', workerHandler('/nonexistent/handlers.mjs', 'run'));
    const err = await b.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandlerLoadError);
    expect((err as Error).message).toMatch(/\/nonexistent\/handlers\.mjs.*'run'/);
  });

  it('fails start() naming a missing export and listing the ones there are', async () => {
    const b = bus();
    b.registerEventHandler('t', workerHandler(HANDLERS, 'nope'));
    const err = await b.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandlerLoadError);
    expect((err as Error).message).toMatch(/handlers\.ts has no function export 'nope' \(function exports: .*echo/);
    // The bus can start once the bad handler is gone.
    const ok = bus();
    ok.registerCommandHandler('echo', handler('echo'));
    await ok.start();
    expect(await ok.execute('echo', 1)).toEqual({ success: true, result: 1, attempts: 1 });
  });

  it('after start, throws for a missing module and reports a missing export', async () => {
    const log = memoryLogger();
    const b = bus({ logger: log });
    await b.start();
    expect(() => b.registerEventHandler('t', workerHandler('/nonexistent/x.js'))).toThrow(HandlerLoadError);
    expect(() => b.registerEventHandler('t', workerHandler('/nonexistent/x.js'))).toThrow(/\/nonexistent\/x\.js \(export 'default'\) does not exist/);
    const reported = new Promise<{ error: Error; handler: string }>((resolve) => b.once('registration-error', resolve));
    b.registerEventHandler('t', workerHandler(HANDLERS, 'missingExport'), { name: 'late' });
    const { error, handler: name } = await reported;
    expect(name).toBe('late');
    expect(error.message).toMatch(/no function export 'missingExport'/);
  });

  it('resolves a relative workerHandler path from the working directory', async () => {
    const plain = fileURLToPath(new URL('./fixtures/plain.mjs', import.meta.url));
    const fromCwd = relative(process.cwd(), plain); // e.g. test/fixtures/plain.mjs when vitest runs from the repo root
    expect(isAbsolute(fromCwd)).toBe(false);
    const ref = workerHandler(fromCwd, 'shout');
    expect(ref.module).toBe(pathToFileURL(resolve(process.cwd(), fromCwd)).href);
    expect(workerHandler(`./${fromCwd}`, 'shout').module).toBe(ref.module);
    const b = bus();
    b.registerCommandHandler('shout', ref);
    b.registerCommandHandler('ts', workerHandler(relative(process.cwd(), HANDLERS), 'echo'));
    await b.start();
    expect(await b.execute('shout', 'relative')).toEqual({ success: true, result: 'RELATIVE', attempts: 1 });
    expect(await b.execute('ts', 'too')).toEqual({ success: true, result: 'too', attempts: 1 });
  });

  it('does not resolve a relative workerHandler path from the calling file', async () => {
    // 'fixtures/plain.mjs' is there beside this file, but not under the working directory.
    expect(existsSync(resolve(process.cwd(), 'fixtures/plain.mjs'))).toBe(false);
    const b = bus();
    b.registerCommandHandler('shout', workerHandler('fixtures/plain.mjs', 'shout'));
    const err = await b.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandlerLoadError);
    expect((err as Error).message).toContain(pathToFileURL(resolve(process.cwd(), 'fixtures/plain.mjs')).href);
  });

  it('loads plain .mjs handler modules and default exports', async () => {
    const b = bus();
    b.registerCommandHandler('mjs', workerHandler(new URL('./fixtures/plain.mjs', import.meta.url), 'shout'));
    b.registerCommandHandler('dflt', workerHandler(HANDLERS));
    await b.start();
    expect(await b.execute('mjs', 'hi')).toEqual({ success: true, result: 'HI', attempts: 1 });
    expect(await b.execute('dflt', 0)).toEqual({ success: true, result: 'default:dflt', attempts: 1 });
  });
});

describe('sessions', () => {
  it('tags events with the session id and removes its handlers on close', async () => {
    const b = bus();
    await b.start();
    const seen: (string | undefined)[] = [];
    const s = b.session('sess-1');
    s.registerEventHandler('t', (e) => void seen.push(e.sessionId));
    s.registerCommandHandler('who', handler('describe'));
    s.publish('t', 1);
    b.publish('t', 2);
    await b.drain();
    expect(seen).toEqual(['sess-1', undefined]);
    expect((await s.execute<Record<string, unknown>>('who', 1)).result).toMatchObject({ sessionId: 'sess-1' });
    s.close();
    expect(s.closed).toBe(true);
    b.publish('t', 3);
    await b.drain();
    expect(seen).toHaveLength(2);
    expect(await b.execute('who', 1)).toEqual(failedWith('ERR_RINGBUS_NO_HANDLER', "no command handler registered for topic 'who'", 0));
    expect(() => s.publish('t', 4)).toThrow(/session sess-1 is closed/);
  });

  it('closes with await using (Symbol.asyncDispose)', async () => {
    const b = inlineBus();
    await b.start();
    {
      await using s = b.session();
      s.registerCommandHandler('scoped', () => 'in scope');
      expect((await b.execute('scoped', 0)).result).toBe('in scope');
    }
    expect(await b.execute('scoped', 0)).toEqual(failedWith('ERR_RINGBUS_NO_HANDLER', "no command handler registered for topic 'scoped'", 0));
  });
});

describe('lifecycle', () => {
  it('stop({ drain: false }) abandons what is pending and says how many', async () => {
    const log = memoryLogger();
    const b = bus({ logger: log });
    const rec = new Recording();
    b.registerEventHandler('slow', recorder('recordA'));
    await b.start();
    b.publish('slow', rec.payload('blocker', { spinMs: 300 }));
    await rec.waitFor(1, 'start');
    for (let i = 0; i < 4; i++) b.publish('slow', rec.payload(`q${i}`));
    await b.stop({ drain: false });
    expect(b.stats()).toMatchObject({ published: 5, abandoned: 5, queueSize: 0 });
    expect(log.lines).toContainEqual(expect.objectContaining({ level: 'warn', obj: { abandoned: 5 } }));
    expect(b.publish('slow', 1)).toBe(false);
    expect(b.stats().rejected).toBe(1);
    rec.close();
  });

  it('stop() drains by default', async () => {
    const b = bus();
    const rec = new Recording();
    b.registerEventHandler('t', recorder('recordA'));
    await b.start();
    for (let i = 0; i < 20; i++) b.publish('t', rec.payload(`t${i}`, { spinMs: 2 }));
    await b.stop();
    expect(b.stats()).toMatchObject({ processed: 20, abandoned: 0 });
    rec.close();
  });

  it('stop({ timeoutMs }) abandons what the drain did not finish', async () => {
    const log = memoryLogger();
    const b = bus({ logger: log });
    const rec = new Recording();
    b.registerEventHandler('t', recorder('recordA'));
    await b.start();
    b.publish('t', rec.payload('quick'));
    // The second holds the only worker for 5 s, far past the stop timeout: the drain cannot finish in time.
    for (let i = 1; i < 10; i++) b.publish('t', rec.payload(`t${i}`, { spinMs: i === 1 ? 5000 : 0 }));
    await rec.waitFor(1); // 'quick' is done
    await rec.waitFor(1, 'start'); // t1 runs
    const t0 = performance.now();
    await b.stop({ timeoutMs: 100 });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(98); // it did give the drain its time
    expect(b.stats()).toMatchObject({ published: 10, processed: 1, abandoned: 9, queueSize: 0 });
    expect(log.lines).toContainEqual(expect.objectContaining({ level: 'warn', obj: { abandoned: 9 } }));
    expect(rec.tags()).toEqual(['quick']);
    rec.close();
  });

  it('gives events ids unique across buses, and across a stop and a new bus', async () => {
    const ids: string[] = [];
    const run = async (b: MessageBus): Promise<void> => {
      b.registerEventHandler('t', (e) => void ids.push(e.id));
      b.registerCommandHandler('describe', handler('describe')); // a worker sees the same ids
      await b.start();
      for (let i = 0; i < 20; i++) b.publish('t', i);
      const r = await b.execute<{ id: string }>('describe', null);
      ids.push(r.result!.id);
      await b.drain();
    };
    const first = bus();
    const second = bus();
    await Promise.all([run(first), run(second)]); // side by side: each numbers its events from 1
    await first.stop();
    await run(bus()); // as after a restart
    expect(ids).toHaveLength(63);
    expect(new Set(ids).size).toBe(63);
  });

  it('keeps buses independent', async () => {
    const a = inlineBus();
    const b = inlineBus();
    a.registerCommandHandler('who', () => 'a');
    b.registerCommandHandler('who', () => 'b');
    await Promise.all([a.start(), b.start()]);
    expect((await a.execute('who', 0)).result).toBe('a');
    expect((await b.execute('who', 0)).result).toBe('b');
    await a.stop();
    expect((await b.execute('who', 0)).result).toBe('b');
  });

  it('ResilientMessageBus is a MessageBus', async () => {
    const r = new ResilientMessageBus({ logger: quietLogger(), pool: { maxThreads: 1 } });
    buses.push(r);
    expect(r).toBeInstanceOf(MessageBus);
    r.registerCommandHandler('echo', handler('echo'));
    await r.start();
    expect((await r.execute('echo', 5)).result).toBe(5);
  });
});
