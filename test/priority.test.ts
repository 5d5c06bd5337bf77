import { describe, expect, it } from 'vitest';
import type { Priority } from '../src/index.js';
import { STARVATION_LIMIT } from '../src/protocol/lane_picker.js';
import { LanePicker } from '../src/protocol/lane_picker.js';
import { busFixture, recorder, type BusUnderTest } from './helpers.js';

const fixture = busFixture();
const setup = (maxThreads = 1): BusUnderTest => fixture({ pool: { maxThreads } });

describe('priority lanes', () => {
  it('dispatches higher lanes first when the only worker frees up', async () => {
    const { bus, rec } = setup(1);
    bus.registerEventHandler('job', recorder('recordA'));
    await bus.start();
    bus.publish('job', rec.payload('blocker', { spinMs: 250 }));
    await rec.waitFor(1, 'start');
    // Published in the worst order while the worker is busy.
    const order: Priority[] = ['low', 'normal', 'high', 'critical', 'low', 'critical'];
    order.forEach((priority, i) => bus.publish('job', rec.payload(`${priority}-${i}`), { priority }));
    expect(bus.laneDepths()).toEqual({ critical: 2, high: 1, normal: 1, low: 2 });
    await bus.drain();
    await rec.waitFor(7);
    expect(rec.tags()).toEqual(['blocker', 'critical-3', 'critical-5', 'high-2', 'normal-1', 'low-0', 'low-4']);
  });

  it('never lets a waiting lower lane starve (the guard serves it after STARVATION_LIMIT passes)', () => {
    const picker = new LanePicker();
    const served: number[] = [];
    const busy = [true, false, false, true]; // critical always has work, and so does low
    for (let i = 0; i < 100; i++) served.push(picker.pick((lane) => busy[lane]));
    const lowTurns = served.flatMap((lane, i) => (lane === 3 ? [i] : []));
    expect(lowTurns.length).toBeGreaterThanOrEqual(Math.floor(100 / (STARVATION_LIMIT + 1)));
    for (let i = 1; i < lowTurns.length; i++) expect(lowTurns[i] - lowTurns[i - 1]).toBe(STARVATION_LIMIT + 1);
    expect(picker.pick(() => false)).toBe(-1);
  });
});

describe('handler priority within one event', () => {
  it('runs worker handlers of one event in priority order, one finishing before the next starts', async () => {
    const { bus, rec } = setup(2);
    bus.registerEventHandler('multi', recorder('recordC'), { priority: 'low' });
    bus.registerEventHandler('multi', recorder('recordA'), { priority: 'critical' });
    bus.registerEventHandler('multi', recorder('recordB'), { priority: 'normal' });
    await bus.start();
    bus.publish('multi', rec.payload('m', { spinMs: 5 }));
    await bus.drain();
    await rec.waitFor(3);
    const ended = rec.ended();
    expect(ended.map((m) => m.handler)).toEqual(['A', 'B', 'C']);
    for (let i = 1; i < ended.length; i++) expect(ended[i].start).toBeGreaterThanOrEqual(ended[i - 1].end);
  });

  it('orders inline and worker handlers of one event across threads', async () => {
    const { bus, rec } = setup(2);
    const inline: { start: number; end: number }[] = [];
    const now = (): number => Number(process.hrtime.bigint()) / 1e6;
    bus.registerEventHandler('mixed', recorder('recordC'), { priority: 'low' });
    bus.registerEventHandler('mixed', () => {
      const start = now();
      while (now() - start < 5);
      inline.push({ start, end: now() });
    }, { priority: 'high' });
    bus.registerEventHandler('mixed', recorder('recordA'), { priority: 'critical' });
    await bus.start();
    bus.publish('mixed', rec.payload('x', { spinMs: 5 }));
    await bus.drain();
    await rec.waitFor(2);
    const [a, c] = rec.ended();
    expect([a.handler, c.handler]).toEqual(['A', 'C']);
    expect(inline).toHaveLength(1);
    expect(inline[0].start).toBeGreaterThanOrEqual(a.end);
    expect(c.start).toBeGreaterThanOrEqual(inline[0].end);
    expect(bus.stats()).toMatchObject({ processed: 3, queueSize: 0 });
  });
});
