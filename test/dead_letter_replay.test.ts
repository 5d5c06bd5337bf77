/**
 * Dead-letter replay and memory (issue 9): replay that reads entries only in
 * the file too, waits for room, marks each success at once and keeps a
 * failure with its new attempts; replay in slices; the in-memory bounds and
 * their warnings; `ringbus dlq replay` (exit codes, --timeout-ms, config).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DeadLetterEntry } from '../src/index.js';
import { escape, expectNoStall, failing, HANDLERS, loopWatch, poll, publishEach, ringbus, tempFiles, usesBuiltCli } from './fixtures/dlq_test_kit.js';
import { busFixture, INLINE_ONLY_POOL, memoryLogger } from './helpers.js';

const { fresh, dir } = tempFiles();

// Every handler here runs inline: no worker thread to start.
const setup = busFixture({ pool: INLINE_ONLY_POOL });
usesBuiltCli();

describe('dead-letter queue: memory and replay', () => {
  it('replays what is only in the file too, waiting for room, marks each success at once and keeps a failure with its new attempts', async () => {
    const path = fresh('replay');
    let healthy = false;
    const bus = setup({
      queue: { capacity: 16 }, retry: { maxRetries: 1, initialDelayMs: 1, maxDelayMs: 1, multiplier: 1, jitter: false },
      deadLetter: { path, capacity: 10 },
    }).bus;
    bus.registerEventHandler('t', (e) => {
      if (!healthy || (e.payload as { i: number }).i === 7) throw new Error(`no ${(e.payload as { i: number }).i}`);
    }, { name: 'h' });
    await bus.start();
    for (let i = 0; i < 200; i += 10) {
      for (let j = i; j < i + 10; j++) bus.publish('t', { i: j });
      await bus.drain();
    }
    expect(bus.stats().deadLettered).toBe(200);
    expect(bus.deadLetters.size).toBe(10); // the other 190 are only in the file
    const [first] = await Promise.all([ringbus(['dlq', 'list', '--path', path, '--json'])]);
    const seven = (JSON.parse(first.stdout) as DeadLetterEntry[]).find((e) => (e.event.payload as { i: number }).i === 7)!;
    expect(seven.attempts).toBe(2);
    healthy = true;
    expect(await bus.deadLetters.replay()).toBe(199); // 200 through a queue of 16: it waited for room
    expect(bus.deadLetters.list()).toEqual([expect.objectContaining({ id: seven.id, attempts: 2, event: expect.objectContaining({ id: seven.event.id }) })]);
    const again = bus.deadLetters.get(seven.id)!;
    expect(again.firstAttemptAt).toBeGreaterThan(seven.lastAttemptAt);
    await bus.stop();
    const text = await readFile(path, 'utf8');
    expect(text.match(/"op":"replayed"/g)).toHaveLength(199); // one mark per success, as it happened
    const restarted = setup({ deadLetter: { path } }).bus;
    await restarted.start();
    expect(restarted.deadLetters.list()).toEqual([again]);
  });

  it('replays 10k entries in slices without stalling the event loop', async () => {
    let healthy = false;
    const bus = setup({ retry: false, deadLetter: { capacity: 20_000 } }).bus;
    bus.registerEventHandler('t', () => {
      if (!healthy) throw new Error('down');
    }, { name: 'h' });
    await bus.start();
    for (let i = 0; i < 10_000; i += 500) {
      for (let j = i; j < i + 500; j++) bus.publish('t', j);
      await bus.drain();
    }
    expect(bus.deadLetters.size).toBe(10_000);
    healthy = true;
    const watch = loopWatch();
    expect(await bus.deadLetters.replay()).toBe(10_000);
    const loop = watch.stop();
    expect(bus.deadLetters.size).toBe(0);
    expectNoStall(loop);
  });

  it('bounds memory by entries and bytes, and reports evictions at warn at most once a second', async () => {
    const at: { t: number; evicted: number; msg: string }[] = [];
    const log = memoryLogger();
    const warn = log.warn;
    log.warn = (obj: unknown, msg?: string) => {
      warn(obj, msg);
      if (msg?.includes('evicted')) at.push({ t: performance.now(), evicted: (obj as { evicted: number }).evicted, msg });
    };
    const bus = setup({ logger: log, retry: false, deadLetter: { capacity: 5, maxBytes: 2048 } }).bus;
    bus.registerEventHandler('t', failing, { name: 'h' });
    await bus.start();
    await publishEach(bus, 50);
    expect(bus.deadLetters.size).toBeLessThan(5); // ~600 bytes each: the bytes bind before the count does
    expect(bus.deadLetters.size).toBeGreaterThan(1);
    expect(bus.deadLetters.size + bus.deadLetters.evicted).toBe(50);
    await poll(async () => at.reduce((n, a) => n + a.evicted, 0) === bus.deadLetters.evicted, 'every eviction is reported');
    for (let i = 1; i < at.length; i++) expect(at[i].t - at[i - 1].t).toBeGreaterThanOrEqual(990);
    expect(at[0].msg).toMatch(/^1 dead letter evicted from memory since the last report \(deadLetter\.capacity 5, deadLetter\.maxBytes 2048\); they are gone/);
  });
});

describe('ringbus dlq replay', () => {
  /** A dead-letter file of `payloads` on topic/handler, written by a bus whose handler always fails. */
  async function deadLetters(topic: string, handler: string, payloads: unknown[]): Promise<{ path: string; entries: DeadLetterEntry[] }> {
    const path = fresh(`cli-${handler}`);
    const bus = setup({ retry: false, deadLetter: { path } }).bus;
    bus.registerEventHandler(topic, failing, { name: handler });
    await bus.start();
    for (const p of payloads) bus.publish(topic, p);
    await bus.drain();
    const entries = bus.deadLetters.list();
    await bus.stop();
    return { path, entries };
  }
  const listFile = async (path: string): Promise<DeadLetterEntry[]> => JSON.parse((await ringbus(['dlq', 'list', '--path', path, '--json'])).stdout) as DeadLetterEntry[];

  it('marks each success, keeps a failure with its new attempts, and exits 1 only while some are still dead', async () => {
    const { path, entries } = await deadLetters('payments', 'charge', [{ n: 1 }, { n: 2, fail: true }, { n: 3 }]);
    const r = await ringbus(['dlq', 'replay', '--path', path, '--handlers', HANDLERS]);
    expect(r.stdout).toBe(`replayed 2 of 3; 1 failed again and is back in ${path}\n`);
    expect(r.code).toBe(1);
    const [left] = await listFile(path);
    expect(left).toMatchObject({ id: entries[1].id, error: 'still failing: 2', event: { id: entries[1].event.id } });
    expect(left.lastAttemptAt).toBeGreaterThan(entries[1].lastAttemptAt);
    const healed = await ringbus(['dlq', 'replay', '--path', path, '--handlers', HANDLERS], { DLQ_TEST_HEALED: '1' });
    expect([healed.code, healed.stdout]).toEqual([0, 'replayed 1 of 1\n']);
    expect((await ringbus(['dlq', 'count', '--path', path])).stdout).toBe('0\n');

    const usage = await ringbus(['dlq', 'replay', '--path', path, '--handlers', HANDLERS, '--timeout-ms', 'soon']);
    expect([usage.code, usage.stderr]).toEqual([2, "ringbus: --timeout-ms must be a positive integer (milliseconds), got 'soon'\n"]);
  }, 60_000);

  it('--timeout-ms ends a hanging handler; the successes around it stay marked', async () => {
    const { path, entries } = await deadLetters('shipping', 'ship', [{ n: 1 }, { n: 2, hang: true }, { n: 3 }]);
    const t0 = performance.now();
    const r = await ringbus(['dlq', 'replay', '--path', path, '--handlers', HANDLERS, '--timeout-ms', '300']);
    expect(r.stdout).toBe(`replayed 2 of 3; 1 failed again and is back in ${path}\n`);
    expect(r.code).toBe(1);
    expect(performance.now() - t0).toBeLessThan(20_000);
    expect(await listFile(path)).toEqual([expect.objectContaining({ id: entries[1].id, errorCode: 'ERR_RINGBUS_HANDLER_TIMEOUT' })]);
  }, 60_000);

  it('uses the config file and environment of the bus', async () => {
    const { path } = await deadLetters('shipping', 'ship', [{ n: 1, hang: true }, { n: 2, pad: 'z'.repeat(5000) }]);
    const config = join(dir(), 'replay.config.json');
    await writeFile(config, JSON.stringify({ handlerTimeoutMs: 300 }));
    const r = await ringbus(['dlq', 'replay', '--path', path, '--handlers', HANDLERS, '--config', config], { RINGBUS_MAX_PAYLOAD_BYTES: '1000' });
    expect(r.stdout).toMatch(new RegExp(`^replayed 0 of 2; 1 failed again and is back in ${escape(path)}; ` +
      `1 could not be sent \\(.*1000.*\\) and is still in ${escape(path)}\n$`));
    expect(r.code).toBe(1);
    expect(await listFile(path)).toHaveLength(2);
  }, 60_000);
});
