import { describe, expect, it } from 'vitest';
import { ResilientMessageBus } from '../src/index.js';
import { INLINE_ONLY_POOL, busFixture, handler } from './helpers.js';

const setup = busFixture();
/** For buses whose handlers all run inline: no worker thread to start. */
const inline = busFixture({ pool: INLINE_ONLY_POOL });

describe('bounded state', () => {
  it('registers 40k topics with worker handlers and delivers to every one; drain() and stop() resolve', async () => {
    // Metrics timing off: per-topic latency series are issue #11's (metrics.maxTopics), not what this test is about.
    const { bus } = setup({ queue: { capacity: 1000 }, deadLetter: false, pool: { maxThreads: 2 }, metrics: false }, ResilientMessageBus);
    const noop = handler('noop');
    const topics = 40_000;
    for (let t = 0; t < topics; t++) bus.registerEventHandler(`tenant.${t}.created`, noop, { name: 'count' });
    await bus.start();
    let refused = 0;
    for (let t = 0; t < topics; t++) {
      // Capacity 1000: the natural producer loop waits for room.
      if (!bus.publish(`tenant.${t}.created`, t) && !(await bus.publishAsync(`tenant.${t}.created`, t))) refused++;
    }
    await bus.drain();
    expect(refused).toBe(0);
    expect(bus.stats()).toMatchObject({ published: topics, processed: topics, queueSize: 0 });
    await bus.stop();
  });

  it('refuses a publish the registry cannot hold before counting it, and keeps running', async () => {
    const { bus } = setup({ queue: { capacity: 10 } });
    const noop = handler('noop');
    // Topic names of 1 MiB: the registry (64 MiB at most) holds about 60 of them.
    const names = Array.from({ length: 70 }, (_, i) => `${String(i).padStart(3, '0')}${'x'.repeat(1 << 20)}`);
    for (const name of names) bus.registerEventHandler(name, noop);
    await bus.start();
    let accepted = 0;
    let error: unknown;
    for (const name of names) {
      try {
        if (!bus.publish(name, 1)) await bus.publishAsync(name, 1);
        accepted++;
      } catch (err) {
        error = err;
        break;
      }
    }
    expect(error).toBeInstanceOf(RangeError);
    expect(String((error as Error).message)).toMatch(/shared registry of topics and worker handlers is full \(67108864 bytes/);
    expect(accepted).toBeGreaterThan(30);
    await bus.drain(); // nothing half-counted keeps it waiting
    // Counted only as what it was: accepted and processed, or refused before anything was counted.
    expect(bus.stats()).toMatchObject({ published: accepted, processed: accepted, queueSize: 0 });
    // Topics already known still work.
    expect(bus.publish(names[0], 2)).toBe(true);
    await bus.drain();
    expect(bus.stats().processed).toBe(accepted + 1);
  });

  it('keeps no per-topic metrics for topics without handlers, and frees a topic\'s series when its last handler goes', async () => {
    const { bus } = inline();
    const off = bus.registerEventHandler('known', () => {});
    await bus.start();
    for (let i = 0; i < 1000; i++) bus.publish(`nobody.listens.${i}`, i);
    bus.publish('known', 1);
    await bus.drain();
    const byTopic = bus.metrics.snapshot().by_topic;
    expect(Object.keys(byTopic).sort()).toEqual(['(no handler)', 'known']);
    expect(byTopic['(no handler)'].published).toBe(1000);
    off();
    expect(Object.keys(bus.metrics.snapshot().by_topic)).toEqual(['(no handler)']);
  });

  it('frees the circuit breaker of an unregistered handler', async () => {
    const { bus } = inline({ circuitBreaker: { minimumCalls: 1, recoveryTimeoutMs: 60_000 }, retry: false });
    const off = bus.registerEventHandler('t', () => {
      throw new Error('down');
    }, { name: 'h' });
    await bus.start();
    bus.publish('t', 1);
    await bus.drain();
    expect(bus.circuitState('h', 't')).toBe('open');
    off();
    expect(bus.metrics.snapshot().circuit_breaker_state).toEqual({});
    // Registered again: a fresh, closed breaker.
    let ran = 0;
    bus.registerEventHandler('t', () => {
      ran++;
    }, { name: 'h' });
    bus.publish('t', 2);
    await bus.drain();
    expect(ran).toBe(1);
    expect(bus.circuitState('h', 't')).toBe('closed');
  });
});
