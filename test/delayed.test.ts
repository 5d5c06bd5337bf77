/**
 * Delayed and scheduled events through the public API: never early,
 * cancel, capacity, and durable across a stop and a new bus on the same
 * schedule file (the scheduler itself: scheduler.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { BackpressureError, MessageBus, workerHandler, type BusEvent } from '../src/index.js';
import { memoryLogger, testBuses, until } from './helpers.js';
import { Reports } from './fixtures/reports.js';

const ROUTING = fileURLToPath(new URL('./fixtures/routing_handlers.mjs', import.meta.url));

const dirs: string[] = [];
const { bus, inlineBus, stopAll } = testBuses();
function scheduleFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringbus-delayed-'));
  dirs.push(dir);
  return join(dir, 'scheduled.jsonl');
}
afterEach(async () => {
  await stopAll();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Inline handler that notes when (wall clock, like the due time) each event arrived. */
function arrivals(): { got: { payload: unknown; at: number; event: BusEvent }[]; handler: (e: BusEvent) => void } {
  const got: { payload: unknown; at: number; event: BusEvent }[] = [];
  return { got, handler: (e) => void got.push({ payload: e.payload, at: Date.now(), event: e }) };
}

describe('delayed events', () => {
  it('are delivered no earlier than due, counted as scheduled until then and as published after', async () => {
    const b = inlineBus();
    const a = arrivals();
    b.registerEventHandler('later', a.handler);
    await b.start();
    const calledAt = Date.now();
    expect(b.publish('later', 'in150', { delayMs: 150, headers: { h: '1' } })).toBe(true);
    expect(b.publish('later', 'at80', { at: new Date(calledAt + 80) })).toBe(true);
    expect(b.publish('later', 'now', { at: calledAt - 1000 })).toBe(true); // a time past: now
    expect(b.stats()).toMatchObject({ scheduled: 2, published: 1 });
    await until(() => a.got.length === 3, 'all three arrived');
    expect(a.got.map((g) => g.payload)).toEqual(['now', 'at80', 'in150']);
    expect(a.got[1].at).toBeGreaterThanOrEqual(calledAt + 80);
    expect(a.got[2].at).toBeGreaterThanOrEqual(calledAt + 150);
    // Published when due: its publishedAt is the due time, not the call's.
    expect(a.got[2].event.publishedAt).toBeGreaterThanOrEqual(calledAt + 150);
    expect(a.got[2].event.headers).toEqual({ h: '1' });
    expect(b.stats()).toMatchObject({ scheduled: 0, published: 3, processed: 3 });
    expect(b.metrics.snapshot().scheduled_events).toBe(0);
  });

  it('reach worker handlers and wildcard subscriptions when due', async () => {
    const b = bus();
    b.registerCommandHandler('probe', workerHandler(ROUTING, 'describe'));
    const seen: string[] = [];
    b.registerEventHandler('jobs.*', (e) => void seen.push(e.topic));
    await b.start();
    b.publish('jobs.nightly', null, { delayMs: 30 });
    await until(() => seen.length === 1, 'the delayed event ran');
    expect(seen).toEqual(['jobs.nightly']);
  });

  it('carry their payload to every stage of a topic with inline and worker handlers', async () => {
    const b = bus();
    const inline: unknown[] = [];
    b.registerEventHandler('mixed', (e) => void inline.push(e.payload), { priority: 'high' });
    const worker = workerHandler(ROUTING, 'report');
    const r = new Reports();
    try {
      b.registerEventHandler('mixed', worker, { priority: 'low' });
      await b.start();
      b.publish('mixed', { channel: r.channel, n: 'delayed' }, { delayMs: 20, headers: { h: 'v' } });
      await until(() => r.got.length === 1, 'the worker stage ran');
      expect(inline).toEqual([{ channel: r.channel, n: 'delayed' }]);
      expect(r.got[0]).toMatchObject({ topic: 'mixed', headers: { h: 'v' } });
      await b.drain();
      expect(b.stats()).toMatchObject({ failed: 0, processed: 2 });
    } finally {
      r.close();
    }
  });

  it('one that cannot be published when due is rejected and logged, and does not hold up the next', async () => {
    const log = memoryLogger();
    const b = inlineBus({ logger: log });
    const seen: string[] = [];
    b.registerEventHandler('a.>', (e) => void seen.push(e.topic));
    await b.start();
    b.publish('a.one', 1, { delayMs: 10 });
    // What an immediate publish refuses is refused at once.
    expect(() => b.publish(`a.${'x'.repeat(2000)}`, 1, { delayMs: 10 })).toThrow(/a topic routed by a wildcard pattern may have at most 1024/);
    b.publish(`b.${'y'.repeat(2000)}`, 2, { delayMs: 15 }); // no pattern routes it when published
    b.registerEventHandler('b.>', () => {}); // now one does, and the topic is too long to carry
    b.publish('a.two', 3, { delayMs: 30 });
    await until(() => seen.length === 2, 'both a.* events ran');
    expect(seen).toEqual(['a.one', 'a.two']);
    expect(b.stats()).toMatchObject({ scheduled: 0, rejected: 1 });
    expect(log.lines.some((l) => l.msg === 'a due delayed event could not be published; rejected')).toBe(true);
  });

  it('can be listed and cancelled while pending; bus.scheduled shows the payload as published', async () => {
    const b = inlineBus();
    const a = arrivals();
    b.registerEventHandler('t', a.handler);
    await b.start();
    b.publish('t', { n: 1 }, { delayMs: 60_000, sessionId: 's1' });
    b.publish('t', new Uint8Array([1, 2]), { delayMs: 30_000, priority: 'high' });
    b.publish('u', 'other', { delayMs: 45_000 });
    const list = b.scheduled.list();
    expect(list.map((e) => e.topic)).toEqual(['t', 'u', 't']); // due order
    expect(list[0]).toMatchObject({ payload: new Uint8Array([1, 2]), priority: 'high' });
    expect(list[2]).toMatchObject({ payload: { n: 1 }, sessionId: 's1' });
    expect(b.scheduled.count({ topic: 't' })).toBe(2);
    expect(b.scheduled.cancel(list[2].id)).toBe(true);
    expect(b.scheduled.cancel(list[2].id)).toBe(false);
    expect(b.scheduled.get(list[0].id)?.topic).toBe('t');
    expect(b.stats().scheduled).toBe(2);
  });

  it('are bounded by scheduler.capacity with the usual backpressure answer', async () => {
    const b = inlineBus({ scheduler: { capacity: 2 } });
    b.registerEventHandler('t', () => {});
    await b.start();
    expect(b.publish('t', 1, { delayMs: 60_000 })).toBe(true);
    expect(b.publish('t', 2, { delayMs: 60_000 })).toBe(true);
    expect(b.publish('t', 3, { delayMs: 60_000 })).toBe(false);
    await expect(b.publishAsync('t', 4, { delayMs: 60_000, timeoutMs: 20 })).rejects.toThrow(BackpressureError);
    const waiting = b.publishAsync('t', 5, { delayMs: 60_000 });
    b.scheduled.cancel(b.scheduled.list()[0].id);
    expect(await waiting).toBe(true);
    expect(b.stats()).toMatchObject({ scheduled: 2, rejected: 2, published: 0 });
  });

  it('are checked: delayMs or at, valid values, and not on commands', async () => {
    const b = bus();
    expect(() => b.publish('t', 1, { delayMs: -1 })).toThrow(/delayMs for topic 't' must be a finite number >= 0, got -1/);
    expect(() => b.publish('t', 1, { delayMs: 5, at: Date.now() })).toThrow(/give delayMs or at, not both/);
    expect(() => b.publish('t', 1, { at: new Date('nope') })).toThrow(/at for topic 't' must be a Date or epoch milliseconds, got an invalid Date/);
    expect(() => b.publish('t.*', 1, { delayMs: 5 })).toThrow(/has a wildcard token/);
    await expect(b.execute('t', 1, { delayMs: 5 } as never)).rejects.toThrow(/delayMs is not an option/);
  });

  it('without a file, are dropped at stop and counted as abandoned', async () => {
    const b = inlineBus();
    await b.start();
    b.publish('t', 1, { delayMs: 60_000 });
    await b.stop();
    expect(b.stats()).toMatchObject({ scheduled: 0, abandoned: 1 });
  });
});

describe('durable delayed events (scheduler.path)', () => {
  it('survive a stop: a new bus on the same file delivers them, late ones at once, and what was delivered is not delivered again', async () => {
    const path = scheduleFile();
    const first = inlineBus({ scheduler: { path } });
    const a1 = arrivals();
    first.registerEventHandler('t', a1.handler);
    await first.start();
    const t0 = Date.now();
    expect(await first.publishAsync('t', 'soon', { delayMs: 20 })).toBe(true);
    // Settled as soon as it is due (no handler): its done mark is written all the same.
    expect(await first.publishAsync('nobody', 'unheard', { delayMs: 20 })).toBe(true);
    expect(await first.publishAsync('t', 'lateAfterRestart', { at: t0 + 400 })).toBe(true);
    expect(await first.publishAsync('t', 'future', { delayMs: 60_000, headers: { k: 'v' } })).toBe(true);
    await until(() => a1.got.length === 1 && first.stats().published === 2, 'the first two were published');
    await first.stop();
    expect(first.stats()).toMatchObject({ abandoned: 0 });
    // Past the second one's due time before any bus owns the file again.
    await until(() => Date.now() > t0 + 450, 'the second event is overdue');
    const second = inlineBus({ scheduler: { path } });
    const a2 = arrivals();
    second.registerEventHandler('t', a2.handler);
    await second.start();
    await until(() => a2.got.length === 1, 'the overdue one ran');
    expect(a2.got.map((g) => g.payload)).toEqual(['lateAfterRestart']);
    expect(second.stats().published).toBe(1);
    expect(second.scheduled.list()).toEqual([expect.objectContaining({ payload: 'future', headers: { k: 'v' } })]);
    await second.stop();
    const third = inlineBus({ scheduler: { path } });
    await third.start();
    expect(third.scheduled.list().map((e) => e.payload)).toEqual(['future']);
  });

  it('a cancel is durable, and one owner per file', async () => {
    const path = scheduleFile();
    const first = inlineBus({ scheduler: { path } });
    await first.start();
    await first.publishAsync('t', 'keep', { delayMs: 60_000 });
    await first.publishAsync('t', 'drop', { delayMs: 60_000 });
    const drop = first.scheduled.list().find((e) => e.payload === 'drop')!;
    expect(first.scheduled.cancel(drop.id)).toBe(true);
    const rival = inlineBus({ scheduler: { path } });
    await expect(rival.start()).rejects.toThrow(/schedule file .* is in use by this process/);
    await first.stop();
    const second = inlineBus({ scheduler: { path } });
    await second.start();
    expect(second.scheduled.list().map((e) => e.payload)).toEqual(['keep']);
  });
});
