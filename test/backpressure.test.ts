import { describe, expect, it } from 'vitest';
import { BackpressureError, type BusOptions } from '../src/index.js';
import { INLINE_ONLY_POOL, busFixture, failedWith, recorder, until, type BusUnderTest } from './helpers.js';

const setup = busFixture();
/** For buses whose handlers all run inline: no worker thread to start. */
const inline = busFixture({ pool: INLINE_ONLY_POOL });
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
    expect(await pending).toEqual(failedWith('ERR_RINGBUS_BACKPRESSURE', "command on topic 'cmd' was dropped to make room (queue.strategy 'drop-oldest')", 0));
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
    // 2 of 20: below the low water mark, no delay at all: the event is accepted within the call itself.
    const nearlyEmpty = bus.publishAsync('job', rec.payload('a1'));
    expect(bus.stats()).toMatchObject({ published: 2, queueSize: 2 });
    expect(await nearlyEmpty).toBe(true);
    for (let i = 0; i < 15; i++) bus.publish('job', rec.payload(`f${i}`));
    // 17 of 20: x = (17-4)/(20-4), delay = 80 * x^2 = 52.8 ms before it is accepted.
    const expectedDelay = 80 * ((17 - 4) / (20 - 4)) ** 2;
    const t0 = performance.now();
    const nearlyFull = bus.publishAsync('job', rec.payload('a2'));
    expect(bus.stats().published).toBe(17); // not yet
    expect(await nearlyFull).toBe(true);
    expect(bus.stats().published).toBe(18);
    // A timer never fires early (give or take the ~1 ms between the timer's clock and performance.now()).
    expect(performance.now() - t0).toBeGreaterThanOrEqual(expectedDelay - 2);
    bus.publish('job', rec.payload('f16'));
    bus.publish('job', rec.payload('f17'));
    expect(bus.stats().queueSize).toBe(20);
    expect(bus.publish('job', rec.payload('full'))).toBe(false);
  });
});

/**
 * A bus whose capacity is held by an inline handler that does not finish until
 * released: room is controlled by the test, with no worker and no timing.
 */
async function heldBus(capacity: number): Promise<{ bus: BusUnderTest['bus']; release: () => void; ran: string[] }> {
  const { bus } = inline({ queue: { capacity } });
  const ran: string[] = [];
  let release: (() => void) | undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  bus.registerEventHandler('hold', () => held);
  bus.registerCommandHandler('cmd', (e) => {
    ran.push(String(e.payload));
    return `ran ${String(e.payload)}`;
  });
  bus.registerEventHandler('job', (e) => void ran.push(String(e.payload)));
  await bus.start();
  for (let i = 0; i < capacity; i++) expect(bus.publish('hold', i)).toBe(true);
  return { bus, release: () => release!(), ran };
}

describe('waiting for room', () => {
  it('execute with timeoutMs and no room resolves a backpressure failure, without running the handler', async () => {
    const { bus, release, ran } = await heldBus(1);
    const t0 = performance.now();
    const r = await bus.execute('cmd', 'late', { timeoutMs: 50 });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(48); // it did wait that long for room
    expect(r).toEqual(failedWith('ERR_RINGBUS_BACKPRESSURE', new BackpressureError('cmd', 50).message, 0));
    expect(r.error).toBeInstanceOf(BackpressureError);
    expect(r.error).toMatchObject({ code: 'ERR_RINGBUS_BACKPRESSURE', reason: 'timeout', message: "no room in the queue for topic 'cmd' within 50 ms" });
    expect(ran).toEqual([]);
    expect(bus.stats()).toMatchObject({ published: 1, rejected: 1, queueSize: 1 });
    // With room again, the same call goes through.
    release();
    await bus.drain();
    expect(await bus.execute('cmd', 'now', { timeoutMs: 50 })).toEqual({ success: true, result: 'ran now', attempts: 1 });
    expect(ran).toEqual(['now']);
  });

  it('publishAsync resolves false, and a waiting execute fails, when the bus stops while they wait for room', async () => {
    const { bus, release, ran } = await heldBus(1);
    const waiting = bus.publishAsync('job', 'waiting'); // no timeoutMs: it would wait for ever
    const executing = bus.execute('cmd', 'waiting');
    let settled = false;
    void Promise.all([waiting, executing]).then(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false); // both are waiting for room
    expect(bus.stats()).toMatchObject({ published: 1, queueSize: 1 });
    await bus.stop({ drain: false });
    expect(await waiting).toBe(false);
    expect(await executing).toEqual(failedWith('ERR_RINGBUS_BUS_STOPPED', /^the bus is (stopping|stopped)$/, 0));
    expect(ran).toEqual([]);
    expect(bus.stats()).toMatchObject({ published: 1, rejected: 2, abandoned: 1, queueSize: 0 });
    // And after stop, at once.
    expect(await bus.publishAsync('job', 'after')).toBe(false);
    expect(await bus.execute('cmd', 'after')).toEqual(failedWith('ERR_RINGBUS_BUS_STOPPED', 'the bus is stopped', 0));
    release();
  });
});

describe('drop-oldest and events already under way', () => {
  it('never drops a retry waiting in its lane: the oldest other event is dropped instead', async () => {
    const { bus, rec } = setup({ queue: { capacity: 4, strategy: 'drop-oldest' }, retry: { maxRetries: 1, initialDelayMs: 1, jitter: false } });
    bus.registerEventHandler('job', recorder('flaky'));
    // Queued before start, so the one worker claims both as one batch: r fails at once and its retry lands in
    // the low lane (main retries after 1 ms) while the blocker still holds the worker for 800 ms.
    bus.publish('job', rec.payload('r', { failUntil: 1 }), { priority: 'low' });
    bus.publish('job', rec.payload('blocker', { failUntil: 0, spinMs: 800 }), { priority: 'low' });
    await bus.start();
    await rec.waitFor(1, 'start'); // the blocker runs
    await until(() => bus.laneDepths().low === 1, 'the retry waits in the low lane');
    expect(rec.ended().map((m) => `${m.tag}@${m.attempt}`)).toEqual(['r@0']);
    bus.publish('job', rec.payload('x', { failUntil: 0 }));
    bus.publish('job', rec.payload('y', { failUntil: 0 }));
    expect(bus.stats()).toMatchObject({ queueSize: 4, dropped: 0 });
    // Full. The oldest waiting event of the lowest lane is the retry, which is never dropped: x goes.
    expect(bus.publish('job', rec.payload('z', { failUntil: 0 }))).toBe(true);
    expect(bus.stats()).toMatchObject({ queueSize: 4, dropped: 1 });
    expect(bus.laneDepths()).toMatchObject({ low: 1, normal: 2 });
    await bus.drain();
    await rec.waitFor(5);
    expect(rec.ended().map((m) => `${m.tag}@${m.attempt}`).sort()).toEqual(['blocker@0', 'r@0', 'r@1', 'y@0', 'z@0']);
    expect(bus.stats()).toMatchObject({ published: 5, processed: 4, failed: 1, retried: 1, dropped: 1, queueSize: 0 });
  });

  it('behind a waiting retry, still drops from the lowest lane first, never a higher lane for a lower event', async () => {
    const { bus, rec } = setup({ queue: { capacity: 4, strategy: 'drop-oldest' }, retry: { maxRetries: 1, initialDelayMs: 1, jitter: false } });
    bus.registerEventHandler('job', recorder('flaky'));
    // As above: r's retry waits at the head of the low lane while the blocker holds the worker.
    bus.publish('job', rec.payload('r', { failUntil: 1 }), { priority: 'low' });
    bus.publish('job', rec.payload('blocker', { failUntil: 0, spinMs: 800 }), { priority: 'low' });
    await bus.start();
    await rec.waitFor(1, 'start');
    await until(() => bus.laneDepths().low === 1, 'the retry waits in the low lane');
    bus.publish('job', rec.payload('low', { failUntil: 0 }), { priority: 'low' }); // behind the retry
    bus.publish('job', rec.payload('normal', { failUntil: 0 }));
    expect(bus.stats()).toMatchObject({ queueSize: 4, dropped: 0 });
    // Full. The README: the oldest waiting event of the lowest lane goes, never a retry. That is 'low'
    // (the retry before it stays), not 'normal', which outranks it.
    expect(bus.publish('job', rec.payload('new', { failUntil: 0 }))).toBe(true);
    expect(bus.stats()).toMatchObject({ queueSize: 4, dropped: 1 });
    await bus.drain();
    await rec.waitFor(5);
    expect(rec.ended().map((m) => `${m.tag}@${m.attempt}`).sort()).toEqual(['blocker@0', 'new@0', 'normal@0', 'r@0', 'r@1']);
  });

  it('never drops the later stage of an event whose first stage ran: the oldest other event is dropped instead', async () => {
    const { bus, rec } = setup({ queue: { capacity: 4, strategy: 'drop-oldest' } });
    bus.registerEventHandler('job', recorder('recordA'));
    // Two stages: the inline handler first (critical), then the worker handler (low), in the event's lane.
    const firstStage: string[] = [];
    bus.registerEventHandler('staged', (e) => void firstStage.push((e.payload as { tag: string }).tag), { priority: 'critical' });
    bus.registerEventHandler('staged', recorder('recordC'), { priority: 'low' });
    await bus.start();
    bus.publish('job', rec.payload('blocker', { spinMs: 800 }));
    await rec.waitFor(1, 'start'); // the only worker is busy
    bus.publish('staged', rec.payload('s'), { priority: 'low' });
    await until(() => bus.laneDepths().low === 1, 'the second stage waits in the low lane');
    expect(firstStage).toEqual(['s']);
    bus.publish('job', rec.payload('x'));
    bus.publish('job', rec.payload('y'));
    expect(bus.stats()).toMatchObject({ queueSize: 4, dropped: 0 });
    expect(bus.publish('job', rec.payload('z'))).toBe(true);
    expect(bus.stats()).toMatchObject({ queueSize: 4, dropped: 1 });
    await bus.drain();
    await rec.waitFor(4);
    expect(rec.ended().map((m) => `${m.handler}:${m.tag}`).sort()).toEqual(['A:blocker', 'A:y', 'A:z', 'C:s']);
    expect(bus.stats()).toMatchObject({ published: 5, processed: 5, dropped: 1, queueSize: 0 });
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
