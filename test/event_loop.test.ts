import { afterEach, describe, expect, it } from 'vitest';
import { MessageBus } from '../src/index.js';
import { spin } from './fixtures/handlers.js';
import { handler, quietLogger } from './helpers.js';

let bus: MessageBus | undefined;
afterEach(async () => {
  await bus?.stop({ drain: false });
});

/**
 * Runs `work` while a 1 ms interval timer counts its ticks. The timer runs at
 * most once per turn of the event loop, so the count says how many turns the
 * loop took during the work: a loop blocked by CPU-heavy work gets one turn
 * between two pieces of it, a free one a turn every millisecond or so.
 */
async function ticksDuring(work: () => Promise<void>): Promise<number> {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return ticks;
}

describe('main thread responsiveness', () => {
  it('keeps the event loop free while workers run CPU-heavy handlers', async () => {
    const events = 40;
    const costMs = 20; // each handler spins 20 ms of wall-clock time: at least 800 ms of work in all
    bus = new MessageBus({ logger: quietLogger(), pool: { minThreads: 1, maxThreads: 1 } });
    bus.registerEventHandler('heavy', handler('spin'));
    await bus.start();
    const b = bus;
    const offloaded = await ticksDuring(async () => {
      for (let i = 0; i < events; i++) b.publish('heavy', { ms: costMs });
      await b.drain();
    });
    // The same work inline: the loop gets a turn only between two handlers.
    const inline = await ticksDuring(async () => {
      for (let i = 0; i < events; i++) {
        spin({ payload: { ms: costMs } } as never);
        await new Promise((r) => setImmediate(r));
      }
    });
    expect(b.stats()).toMatchObject({ processed: events, queueSize: 0 });
    // Blocked, there is at most one tick per handler (and one more at the end): this is what the measure tells apart.
    expect(inline).toBeLessThanOrEqual(events + 2);
    // Offloaded, the loop kept turning while the worker ran the handlers: many ticks per handler. Three per
    // handler (one per ~7 ms, where a free loop gives one per ~1 ms) is what no blocked loop could give and
    // what any free one does, even on a loaded machine.
    expect(offloaded).toBeGreaterThan(3 * events);
  });
});
