import { describe, expect, it } from 'vitest';
import { BackpressureError, type BusOptions } from '../src/index.js';
import { busFixture, recorder, type BusUnderTest } from './helpers.js';

const setup = busFixture();
/** One worker, held busy by a first event that spins `blockMs`, so the test controls what is queued. */
async function blockedBus(queue: BusOptions['queue'], blockMs = 400): Promise<BusUnderTest> {
  const made = setup({ queue });
  made.bus.registerEventHandler('job', recorder('recordA'));
  await made.bus.start();
  made.bus.publish('job', made.rec.payload('blocker', { spinMs: blockMs }));
  await made.rec.waitFor(1, 'start');
  return made;
}

describe('capacity', () => {
  it('reject-new: publish returns false at capacity, counting the event in the worker', async () => {
    const { bus, rec } = await blockedBus({ capacity: 4, strategy: 'reject-new' });
    for (let i = 1; i < 4; i++) expect(bus.publish('job', rec.payload(`e${i}`))).toBe(true);
    expect(bus.stats().queueSize).toBe(4);
    expect(bus.publish('job', rec.payload('e4'))).toBe(false);
    expect(bus.publish('job', rec.payload('e5'), { priority: 'critical' })).toBe(false);
    expect(bus.stats()).toMatchObject({ published: 4, rejected: 2 });
    await bus.drain();
    await rec.waitFor(4);
    expect(rec.tags()).toEqual(['blocker', 'e1', 'e2', 'e3']);
    expect(bus.publish('job', rec.payload('after'))).toBe(true);
  });

  it('holds the bound while events sit in workers, not only in the lanes', async () => {
    const { bus, rec } = setup({ pool: { maxThreads: 1, maxBatch: 64 }, queue: { capacity: 4 } });
    bus.registerEventHandler('job', recorder('recordA'));
    // Queued before start, so the one worker claims all four as a single batch and runs them one by one.
    for (let i = 0; i < 4; i++) expect(bus.publish('job', rec.payload(`e${i}`, { spinMs: 300 }))).toBe(true);
    await bus.start();
    await rec.waitFor(1, 'start');
    // The lanes are empty: every event is in the worker, one running and three claimed. The bound still holds.
    expect(bus.laneDepths()).toEqual({ critical: 0, high: 0, normal: 0, low: 0 });
    expect(bus.stats().queueSize).toBe(4);
    expect(bus.publish('job', rec.payload('over'))).toBe(false);
    await bus.drain();
    expect(bus.stats()).toMatchObject({ processed: 4, rejected: 1, queueSize: 0 });
  });

  it('drop-oldest: drops the oldest event not yet handed to a worker and returns true', async () => {
    const { bus, rec } = await blockedBus({ capacity: 4, strategy: 'drop-oldest' });
    for (let i = 1; i < 4; i++) bus.publish('job', rec.payload(`e${i}`));
    expect(bus.publish('job', rec.payload('e4'))).toBe(true);
    expect(bus.stats()).toMatchObject({ published: 5, dropped: 1, queueSize: 4 });
    await bus.drain();
    await rec.waitFor(4);
    expect(rec.tags()).toEqual(['blocker', 'e2', 'e3', 'e4']);
  });

  it('drop-oldest: drops from the lowest lane first, and never a higher lane for a lower event', async () => {
    const { bus, rec } = await blockedBus({ capacity: 4, strategy: 'drop-oldest' });
    bus.publish('job', rec.payload('n1'));
    bus.publish('job', rec.payload('l1'), { priority: 'low' });
    bus.publish('job', rec.payload('h1'), { priority: 'high' });
    expect(bus.publish('job', rec.payload('c1'), { priority: 'critical' })).toBe(true); // drops l1
    expect(bus.publish('job', rec.payload('l2'), { priority: 'low' })).toBe(true); // nothing lower waits: l2 itself is dropped
    expect(bus.stats()).toMatchObject({ dropped: 2, queueSize: 4 });
    await bus.drain();
    await rec.waitFor(4);
    expect(rec.tags()).toEqual(['blocker', 'c1', 'h1', 'n1']);
  });

  it('drop-oldest resolves a dropped command as failed', async () => {
    const { bus, rec } = await blockedBus({ capacity: 2, strategy: 'drop-oldest' });
    bus.registerCommandHandler('cmd', recorder('recordB'));
    const pending = bus.execute('cmd', rec.payload('c'), { priority: 'low' });
    bus.publish('job', rec.payload('n'));
    expect(await pending).toEqual({ success: false, error: "command on topic 'cmd' was dropped (queue.strategy 'drop-oldest')", attempts: 0 });
  });

  it('publishAsync waits for room, and fails with BackpressureError after timeoutMs', async () => {
    const { bus, rec } = await blockedBus({ capacity: 2, strategy: 'reject-new' }, 300);
    bus.publish('job', rec.payload('e1'));
    const t0 = performance.now();
    await expect(bus.publishAsync('job', rec.payload('timeout'), { timeoutMs: 50 })).rejects.toBeInstanceOf(BackpressureError);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(45);
    const waited = bus.publishAsync('job', rec.payload('waited'));
    expect(bus.publish('job', rec.payload('cut-in'))).toBe(false); // room freed later goes to the waiter first
    expect(await waited).toBe(true);
    await bus.drain();
    await rec.waitFor(3);
    expect(rec.tags()).toEqual(['blocker', 'e1', 'waited']);
    expect(bus.stats()).toMatchObject({ published: 3, rejected: 2 });
  });

  it('adaptive-rate-limit: publishAsync is delayed more the fuller the queue; sync publish at capacity is false', async () => {
    const { bus, rec } = await blockedBus({ capacity: 20, strategy: 'adaptive-rate-limit', lowWaterMark: 0.2, highWaterMark: 0.9, maxDelayMs: 80 }, 1500);
    const timed = async (tag: string): Promise<number> => {
      const t0 = performance.now();
      await bus.publishAsync('job', rec.payload(tag));
      return performance.now() - t0;
    };
    const nearlyEmpty = await timed('a1'); // 2 of 20: below the low water mark, no delay
    for (let i = 0; i < 15; i++) bus.publish('job', rec.payload(`f${i}`));
    const nearlyFull = await timed('a2'); // 17 of 20: (17-4)/(20-4) = 0.81, delay 80 * 0.66 = 53 ms
    expect(nearlyEmpty).toBeLessThan(15);
    expect(nearlyFull).toBeGreaterThan(35);
    bus.publish('job', rec.payload('f16'));
    bus.publish('job', rec.payload('f17'));
    expect(bus.stats().queueSize).toBe(20);
    expect(bus.publish('job', rec.payload('full'))).toBe(false);
  });
});

describe('water marks', () => {
  it("emits 'backpressure' once on crossing the high mark and once on falling to the low one", async () => {
    const { bus, rec } = await blockedBus({ capacity: 10, highWaterMark: 0.8, lowWaterMark: 0.5 }, 200);
    const events: { active: boolean; size: number }[] = [];
    bus.on('backpressure', ({ active }) => events.push({ active, size: bus.stats().queueSize }));
    for (let i = 1; i < 7; i++) bus.publish('job', rec.payload(`e${i}`));
    expect(events).toEqual([]);
    expect(bus.stats().backpressureActive).toBe(false);
    bus.publish('job', rec.payload('e7')); // 8 of 10
    expect(events).toEqual([{ active: true, size: 8 }]);
    expect(bus.stats().backpressureActive).toBe(true);
    bus.publish('job', rec.payload('e8'));
    await bus.drain();
    expect(events).toHaveLength(2);
    expect(events[1].active).toBe(false);
    expect(events[1].size).toBeLessThanOrEqual(5);
    expect(bus.stats().backpressureActive).toBe(false);
  });
});
