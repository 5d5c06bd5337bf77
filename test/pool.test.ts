import { describe, expect, it } from 'vitest';
import type { PoolOptions } from '../src/index.js';
import { busFixture, handler, recorder, until, type BusUnderTest } from './helpers.js';

const setup = busFixture();

/**
 * How long the pool is left idle. The behaviour under test is about time
 * passing (an idle timeout), so the test has to let time pass: 600 ms is 12
 * times `idleTimeoutMs` (50) and 10 times smaller than the lingering bus's
 * `lingerMs` (60 s), so which side of each bound the pause falls on does not
 * depend on how loaded the machine is.
 */
const PAUSE_MS = 600;

/** A one-worker bus whose handler reports the threadId it ran on. */
async function poolBus(pool: PoolOptions): Promise<BusUnderTest> {
  const made = setup({ pool: { maxThreads: 1, ...pool } });
  made.bus.registerEventHandler('job', recorder('recordA'));
  await made.bus.start();
  return made;
}

/** Runs one event before and one after an idle pause; resolves the two threadIds. */
async function threadsAcrossPause({ bus, rec }: BusUnderTest, pause: Promise<void>): Promise<[number, number]> {
  bus.publish('job', rec.payload('before'));
  await rec.waitFor(1);
  await pause;
  bus.publish('job', rec.payload('after'));
  await rec.waitFor(2);
  await bus.drain();
  const [before, after] = rec.ended();
  expect([before.tag, after.tag]).toEqual(['before', 'after']);
  return [before.threadId, after.threadId];
}

describe('pool options', () => {
  it('minThreads, idleTimeoutMs and lingerMs decide whether an idle worker survives a pause', async () => {
    const [idle, kept, lingering] = await Promise.all([
      // The task returns at once when idle (lingerMs 0), the worker is idle, above minThreads 0: it ends after 50 ms.
      poolBus({ minThreads: 0, idleTimeoutMs: 50, lingerMs: 0 }),
      // The same, but minThreads 1 keeps the one worker however long it idles.
      poolBus({ minThreads: 1, idleTimeoutMs: 50, lingerMs: 0 }),
      // minThreads 0 again, but the task parks for new records for 60 s: its worker is never idle, so it stays.
      poolBus({ minThreads: 0, idleTimeoutMs: 50, lingerMs: 60_000 }),
    ]);
    // One pause for the three buses, started once each has run its first event.
    let startPause!: () => void;
    const firstRan = new Promise<void>((resolve) => (startPause = resolve));
    const pause = firstRan.then(() => new Promise<void>((resolve) => setTimeout(resolve, PAUSE_MS)));
    const runs = [idle, kept, lingering].map((made) => threadsAcrossPause(made, pause));
    await Promise.all([idle, kept, lingering].map(({ rec }) => rec.waitFor(1)));
    startPause();
    const [[idleBefore, idleAfter], [keptBefore, keptAfter], [lingerBefore, lingerAfter]] = await Promise.all(runs);
    expect(idleAfter).not.toBe(idleBefore); // a new worker
    expect(keptAfter).toBe(keptBefore);
    expect(lingerAfter).toBe(lingerBefore);
    for (const { bus } of [idle, kept, lingering]) expect(bus.stats()).toMatchObject({ processed: 2, workerCrashes: 0, queueSize: 0 });
  });
});

describe('pool sizing', () => {
  it('runs every worker for heavy handlers, and parks them all once the work is done', async () => {
    const { bus } = setup({ pool: { maxThreads: 2, lingerMs: 20 } });
    bus.registerEventHandler('heavy', handler('spin'));
    await bus.start();
    // 40 × 5 ms of CPU: far more than one batch's worth (2 ms) waits behind the first worker, which wakes a peer.
    for (let i = 0; i < 40; i++) bus.publish('heavy', { ms: 5 });
    let most = 0;
    while (bus.stats().queueSize > 0) {
      most = Math.max(most, bus.stats().activeWorkers);
      await new Promise((r) => setTimeout(r, 2));
    }
    await bus.drain();
    expect(most).toBe(2);
    expect(bus.stats().processed).toBe(40);
    // Idle: the tasks park, then end after lingerMs; nothing runs.
    await until(() => bus.stats().activeWorkers === 0, 'workers parked');
  });
});

describe('a long handler', () => {
  it('does not keep cheap events from an idle worker', async () => {
    const { bus } = setup({ pool: { maxThreads: 2 } });
    bus.registerEventHandler('report', handler('spin'));
    bus.registerEventHandler('click', handler('noop'));
    await bus.start();
    bus.publish('report', { ms: 2_000 });
    await until(() => bus.stats().activeWorkers >= 1, 'the long handler runs');
    for (let i = 0; i < 10; i++) {
      bus.publish('click', i);
      await new Promise((r) => setTimeout(r, 10));
    }
    // 2 s is the margin: the clicks need milliseconds on the other worker, not the long handler's end.
    await until(() => bus.stats().processed >= 10, 'the clicks ran');
    expect(bus.stats().queueSize).toBe(1); // only the long one is still running
    await bus.drain();
  });

  it('does not hold a metrics read for as long as it runs', async () => {
    const { bus } = setup({ pool: { maxThreads: 1 } });
    bus.registerEventHandler('report', handler('spin'));
    await bus.start();
    bus.publish('report', { ms: 2_000 });
    await until(() => bus.stats().activeWorkers >= 1, 'the long handler runs');
    const text = await bus.metrics.prometheus();
    expect(text).toContain('events_published_total');
    expect(bus.stats().queueSize).toBe(1); // read while the handler still runs, not after it
    await bus.drain();
  });
});
