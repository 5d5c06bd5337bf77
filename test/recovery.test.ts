import { describe, expect, it } from 'vitest';
import type { HandlerErrorEvent } from '../src/index.js';
import { INLINE_ONLY_POOL, busFixture, failedWith, handler, memoryLogger, recorder } from './helpers.js';

const setup = busFixture();
/** For buses whose handlers all run inline: no worker thread to start. */
const inline = busFixture({ pool: INLINE_ONLY_POOL });

describe('a worker that dies', () => {
  it('mid-batch: the running delivery fails, the rest of its batch runs again once, and the pool recovers', async () => {
    const log = memoryLogger();
    const { bus, rec } = setup({ logger: log });
    bus.registerEventHandler('job', recorder('exitOrRecord'));
    const errors: HandlerErrorEvent[] = [];
    bus.on('handler-error', (e) => errors.push(e));
    // Queue everything before start, so the worker takes it as one batch.
    for (let i = 0; i < 50; i++) bus.publish('job', rec.payload(`e${i}`, { exit: i === 10 }));
    await bus.start();
    await bus.drain();
    await rec.waitFor(49);
    const tags = rec.tags();
    expect(new Set(tags).size).toBe(49); // every other event ran exactly once
    expect(tags).not.toContain('e10');
    expect(bus.stats()).toMatchObject({ published: 50, processed: 49, failed: 1, queueSize: 0, workerCrashes: 1, handlerTimeouts: 0 });
    expect(errors).toHaveLength(1);
    expect(errors[0].handler).toBe('exitOrRecord');
    expect(errors[0].error).toMatchObject({ code: 'ERR_RINGBUS_WORKER_CRASHED', message: expect.stringMatching(/worker exited while running handler 'exitOrRecord'/) });
    // Logged at warn, rate-limited (one line a second in a crash storm): a replaced worker is handled, not an error of the bus.
    expect(log.lines.some((l) => l.level === 'warn' && /worker died mid-batch/.test(String(l.msg)))).toBe(true);
    // The pool replaced the worker.
    bus.publish('job', rec.payload('after'));
    await bus.drain();
    await rec.waitFor(50);
    expect(rec.tags()).toContain('after');
  });

  it('after finishing a record: nothing is charged or run twice', async () => {
    const { bus, rec } = setup();
    bus.registerEventHandler('job', recorder('recordThenExit'));
    for (let i = 0; i < 20; i++) bus.publish('job', rec.payload(`e${i}`, { exit: i === 5 }));
    await bus.start();
    await bus.drain();
    await rec.waitFor(20);
    expect(rec.tags().sort()).toEqual(Array.from({ length: 20 }, (_, i) => `e${i}`).sort());
    expect(bus.stats()).toMatchObject({ processed: 20, failed: 0, queueSize: 0, workerCrashes: 1 });
  });

  it('running a command: execute resolves with the failure', async () => {
    const { bus } = setup();
    bus.registerCommandHandler('die', handler('exit'));
    bus.registerCommandHandler('echo', handler('echo'));
    await bus.start();
    const r = await bus.execute('die', null);
    expect(r).toEqual(failedWith('ERR_RINGBUS_WORKER_CRASHED', /^worker exited while running handler 'exit'/, 1));
    expect(await bus.execute('echo', 'alive')).toEqual({ success: true, result: 'alive', attempts: 1 });
    expect(bus.stats()).toMatchObject({ workerCrashes: 1, failed: 1, processed: 1 });
  });
});

describe('command results', () => {
  it('fails a result larger than queue.maxPayloadBytes instead of wedging the worker', async () => {
    const { bus } = setup({ queue: { maxPayloadBytes: 1024 } });
    bus.registerCommandHandler('big', handler('bigResult'));
    await bus.start();
    expect(await bus.execute('big', 100)).toEqual({ success: true, result: 'x'.repeat(100), attempts: 1 });
    const r = await bus.execute('big', 200_000);
    expect(r).toEqual(failedWith('ERR_RINGBUS_HANDLER_FAILED', 'command result is 200002 bytes, more than queue.maxPayloadBytes (1024)', 1));
    expect(await bus.execute('big', 10)).toEqual({ success: true, result: 'x'.repeat(10), attempts: 1 });
  });
});

describe('re-entrancy and odd inputs', () => {
  it("lets a 'backpressure' listener publish without corrupting the event being published", async () => {
    const { bus } = setup({ queue: { capacity: 10, highWaterMark: 0.5, lowWaterMark: 0.1 } });
    bus.registerCommandHandler('describe', handler('describe'));
    bus.registerEventHandler('note', handler('noop'));
    bus.on('backpressure', ({ active }) => {
      if (active) bus.publish('note', { from: 'listener' });
    });
    for (let i = 0; i < 4; i++) bus.publish('note', i);
    const pending = bus.execute<Record<string, unknown>>('describe', { nested: 'intact' }, { sessionId: 's' }); // crosses the mark
    await bus.start();
    const r = await pending;
    expect(r.success).toBe(true);
    expect(r.result).toMatchObject({ sessionId: 's', payloadKind: 'object' });
    await bus.drain();
    expect(bus.stats()).toMatchObject({ failed: 0, queueSize: 0 });
  });

  it('survives an inline handler that throws a value String() cannot convert', async () => {
    const { bus } = inline();
    bus.registerEventHandler('odd', () => {
      throw Object.create(null);
    });
    const errors: string[] = [];
    bus.on('handler-error', (e) => errors.push(e.error.message));
    await bus.start();
    bus.publish('odd', 1);
    await bus.drain();
    expect(errors).toEqual(['non-error value thrown: [object Object]']);
    expect(bus.stats()).toMatchObject({ failed: 1, queueSize: 0 });
  });

  it('publishAsync sends the payload as it was when called, and a failed wait keeps no room', async () => {
    const { bus, rec } = setup({ queue: { capacity: 2 } });
    bus.registerEventHandler('job', recorder('recordA'));
    await bus.start();
    bus.publish('job', rec.payload('blocker', { spinMs: 150 }));
    await rec.waitFor(1, 'start');
    bus.publish('job', rec.payload('second'));
    const payload = rec.payload('waited');
    const waiting = bus.publishAsync('job', payload);
    payload.tag = 'mutated';
    expect(await waiting).toBe(true);
    await bus.drain();
    await rec.waitFor(3);
    expect(rec.tags()).toEqual(['blocker', 'second', 'waited']);
    expect(bus.publish('job', rec.payload('x'))).toBe(true);
    expect(bus.publish('job', rec.payload('y'))).toBe(true);
  });

  it('runs async inline handlers of different events concurrently, each event in order', async () => {
    const { bus } = inline();
    let concurrent = 0;
    let peak = 0;
    let started = 0;
    let startedWhenFirstDone = -1;
    const order: string[] = [];
    bus.registerEventHandler('io', async (e) => {
      started++;
      concurrent++;
      peak = Math.max(peak, concurrent);
      await new Promise((r) => setTimeout(r, 20));
      if (startedWhenFirstDone < 0) startedWhenFirstDone = started;
      concurrent--;
      order.push(`first:${e.payload}`);
    }, { priority: 'high' });
    bus.registerEventHandler('io', (e) => void order.push(`second:${e.payload}`), { priority: 'low' });
    await bus.start();
    for (let i = 0; i < 10; i++) bus.publish('io', i);
    await bus.drain();
    // Concurrent: every event's first handler had started before any of them finished (serially: one at a time).
    expect(peak).toBe(10);
    expect(startedWhenFirstDone).toBe(10);
    // Each event in order: its second handler only after its first one finished.
    expect(order).toHaveLength(20);
    for (let i = 0; i < 10; i++) expect(order.indexOf(`first:${i}`)).toBeLessThan(order.indexOf(`second:${i}`));
    expect(bus.stats()).toMatchObject({ processed: 20, queueSize: 0 });
  });

  it('rejects session ids over 1 KiB and refuses registration through a closed session', async () => {
    const { bus } = inline();
    expect(() => bus.publish('t', 1, { sessionId: 'x'.repeat(2000) })).toThrow(/sessionId for topic 't' is 2000 bytes; the most is 1024/);
    const s = bus.session('s1');
    s.close();
    expect(() => s.registerCommandHandler('c', () => 1)).toThrow(/session s1 is closed/);
    await bus.start();
    expect(await bus.execute('c', 0)).toEqual(failedWith('ERR_RINGBUS_NO_HANDLER', "no command handler registered for topic 'c'", 0));
  });
});

describe('a waiting retry', () => {
  it('keeps the process alive until it runs: drain() resolves in a script with nothing else pending', async () => {
    const root = new URL('..', import.meta.url).pathname;
    const script = `
      import { MessageBus } from ${JSON.stringify(`${root}src/index.ts`)};
      const bus = new MessageBus({ logger: { debug() {}, info() {}, warn() {}, error() {} }, pool: { maxThreads: 1 },
        retry: { maxRetries: 1, initialDelayMs: 300, jitter: false } });
      bus.registerEventHandler('t', (e) => { if (e.attempt === 0) throw new Error('first try fails'); });
      await bus.start();
      bus.publish('t', 1);
      await bus.drain();
      console.log(JSON.stringify(bus.stats()));
      await bus.stop();
    `;
    const stdout = await runScript(script);
    expect(JSON.parse(stdout)).toMatchObject({ processed: 1, failed: 1, retried: 1, queueSize: 0 });
  });

  it("keeps the process alive for an inline handler's timeout: execute() resolves in a script with nothing else pending", async () => {
    const root = new URL('..', import.meta.url).pathname;
    const script = `
      import { MessageBus } from ${JSON.stringify(`${root}src/index.ts`)};
      const bus = new MessageBus({ logger: false, pool: { maxThreads: 1 }, handlerTimeoutMs: 200 });
      bus.registerCommandHandler('stuck', () => new Promise(() => {})); // never settles
      await bus.start();
      const r = await bus.execute('stuck', 1);
      console.log(JSON.stringify({ code: r.error?.code }));
      await bus.stop({ drain: false });
    `;
    const stdout = await runScript(script);
    expect(JSON.parse(stdout)).toEqual({ code: 'ERR_RINGBUS_HANDLER_TIMEOUT' });
  });
});

/** Runs a TypeScript script in a child process (nothing else keeps it alive) and returns its stdout. */
async function runScript(script: string): Promise<string> {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const root = new URL('..', import.meta.url).pathname;
  const dir = await mkdtemp(`${(await import('node:os')).tmpdir()}/ringbus-alive-`);
  try {
    await writeFile(`${dir}/script.mts`, script);
    const { stdout } = await promisify(execFile)(process.execPath, [`${root}node_modules/tsx/dist/cli.mjs`, `${dir}/script.mts`], {
      cwd: root, timeout: 30_000,
    });
    return stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
