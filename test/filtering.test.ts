/**
 * Handler filters on a bus (the filters themselves: filters.test.ts):
 * each ready-made kind and their composition, on inline and worker
 * handlers, with what is counted.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { allOf, anyOf, byHeader, bySession, MessageBus, not, rateLimit, workerHandler, type BusEvent } from '../src/index.js';
import { memoryLogger, testBuses } from './helpers.js';

const ROUTING = fileURLToPath(new URL('./fixtures/routing_handlers.mjs', import.meta.url));

const { bus, inlineBus, stopAll } = testBuses();
afterEach(async () => {
  await stopAll();
});

describe('handler filters', () => {
  it('by session and by header decide per handler; a filtered delivery is neither processed nor failed', async () => {
    const b = inlineBus();
    const got: string[] = [];
    const note = (name: string) => (e: BusEvent<number>) => void got.push(`${name}:${e.payload}`);
    b.registerEventHandler('t', note('all'));
    b.registerEventHandler('t', note('alice'), { filter: bySession({ include: ['alice'] }), name: 'alice' });
    b.registerEventHandler('t', note('notBob'), { filter: bySession({ exclude: ['bob'], allowNoSession: false }), name: 'notBob' });
    b.registerEventHandler('t', note('eu'), { filter: byHeader('region', ['eu-west', 'eu-north']), name: 'eu' });
    await b.start();
    b.publish('t', 1, { sessionId: 'alice', headers: { region: 'eu-west' } });
    b.publish('t', 2, { sessionId: 'bob', headers: { region: 'us-east' } });
    b.publish('t', 3);
    await b.drain();
    expect(got.sort()).toEqual(['alice:1', 'all:1', 'all:2', 'all:3', 'eu:1', 'notBob:1'].sort());
    const stats = b.stats();
    expect(stats).toMatchObject({ published: 3, processed: 6, failed: 0, filtered: 6, queueSize: 0 });
    const snap = b.metrics.snapshot();
    expect(snap.events_filtered_total).toBe(6);
    expect(snap.by_topic.t.filtered).toBe(6);
    expect(await b.metrics.prometheus()).toMatch(/^events_filtered_total\{topic="t"\} 6$/m);
  });

  it('compose with allOf, anyOf and not; a rate limit placed last spends tokens only on what passed before it', async () => {
    const b = inlineBus();
    let now = 0;
    const limit = rateLimit({ perSecond: 1, burst: 2, by: 'session', clock: () => now });
    const got: number[] = [];
    b.registerEventHandler('t', (e: BusEvent<number>) => void got.push(e.payload), {
      filter: allOf(anyOf(byHeader('tier', 'gold'), not(bySession({ include: ['anon'] }))), limit),
    });
    await b.start();
    for (let i = 0; i < 5; i++) b.publish('t', i, { sessionId: 'anon' }); // refused before the limit: no tokens spent
    for (let i = 10; i < 14; i++) b.publish('t', i, { sessionId: 'u1' }); // burst 2: 10, 11
    b.publish('t', 20, { sessionId: 'anon', headers: { tier: 'gold' } }); // anon's own bucket: full
    now = 1000; // one token back for u1
    b.publish('t', 15, { sessionId: 'u1' });
    b.publish('t', 16, { sessionId: 'u1' });
    await b.drain();
    expect(got).toEqual([10, 11, 20, 15]);
    expect(b.stats().filtered).toBe(5 + 2 + 1);
  });

  it('run on the main thread for worker handlers too, before the event is encoded for them', async () => {
    const b = bus();
    const seenByFilter: unknown[] = [];
    b.registerCommandHandler('check', workerHandler(ROUTING, 'describe'));
    b.registerEventHandler('w', workerHandler(ROUTING, 'report'), {
      filter: (e) => {
        seenByFilter.push([e.topic, e.payload, e.headers?.h]);
        return false;
      },
    });
    await b.start();
    b.publish('w', { channel: 'unused', n: 1 }, { headers: { h: 'x' } });
    await b.drain();
    expect(seenByFilter).toEqual([['w', { channel: 'unused', n: 1 }, 'x']]);
    expect(b.stats()).toMatchObject({ published: 1, processed: 0, filtered: 1, queueSize: 0 });
  });

  it('that throws refuses the delivery, is logged (rate-limited) and the bus goes on', async () => {
    const log = memoryLogger();
    const b = inlineBus({ logger: log });
    let ran = 0;
    b.registerEventHandler('t', () => void ran++, {
      name: 'picky',
      filter: () => {
        throw new Error('filter bug');
      },
    });
    b.registerEventHandler('t', () => void ran++, { name: 'plain' });
    await b.start();
    for (let i = 0; i < 50; i++) b.publish('t', i);
    await b.drain();
    expect(ran).toBe(50);
    expect(b.stats().filtered).toBe(50);
    const lines = log.lines.filter((l) => l.msg?.startsWith('a handler filter threw'));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThan(5);
    expect(lines[0].obj).toMatchObject({ topic: 't', handler: 'picky', err: 'filter bug' });
  });

  it('is checked at registration', () => {
    const b = bus();
    expect(() => b.registerEventHandler('t', () => {}, { filter: 'yes' as never })).toThrow(/filter of the handler for topic 't' must be a function/);
  });
});
