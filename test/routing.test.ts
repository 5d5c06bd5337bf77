/**
 * Wildcard subscriptions, headers, and publish and worker middleware,
 * through the public API (filters: filtering.test.ts).
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  HandlerLoadError, MessageBus, MiddlewareError, RefusedError, workerHandler, workerMiddleware, type BusEvent, type DeadLetterEntry,
} from '../src/index.js';
import { testBuses, until } from './helpers.js';
import { Reports } from './fixtures/reports.js';

const ROUTING = fileURLToPath(new URL('./fixtures/routing_handlers.mjs', import.meta.url));
const worker = (name: string) => workerHandler(ROUTING, name);

const channels: Reports[] = [];
const { bus, inlineBus, stopAll } = testBuses();
function reports(): Reports {
  const r = new Reports();
  channels.push(r);
  return r;
}
afterEach(async () => {
  await stopAll();
  for (const c of channels.splice(0)) c.close();
});

/** Inline handlers that note which one got which topic. */
function seen(): { log: string[]; on: (name: string) => (e: BusEvent) => void } {
  const log: string[] = [];
  return { log, on: (name) => (e) => void log.push(`${name}:${e.topic}`) };
}

describe('wildcard subscriptions', () => {
  it('match with NATS token semantics, each handler seeing the concrete topic', async () => {
    const b = inlineBus();
    const s = seen();
    b.registerEventHandler('orders.*', s.on('star'));
    b.registerEventHandler('orders.>', s.on('tail'));
    b.registerEventHandler('orders.created', s.on('exact'));
    b.registerEventHandler('*.*.shipped', s.on('mid'));
    await b.start();
    for (const topic of ['orders.created', 'orders.eu.created', 'orders', 'orders.', 'eu.orders.shipped', 'ordersX.created', 'orders.eu.shipped']) {
      b.publish(topic, null);
    }
    await b.drain();
    // 'orders.' has an empty last token: no wildcard matches it (NATS delivers no such subject).
    expect(s.log.sort()).toEqual([
      'exact:orders.created', 'mid:eu.orders.shipped', 'mid:orders.eu.shipped', 'star:orders.created',
      'tail:orders.created', 'tail:orders.eu.created', 'tail:orders.eu.shipped',
    ].sort());
  });

  it('run a topic\'s own handlers and its patterns\' in priority, then registration, order; unregistering takes a pattern out', async () => {
    const b = inlineBus();
    const s = seen();
    const offLow = b.registerEventHandler('a.*', s.on('patternLow'), { priority: 'low' });
    b.registerEventHandler('a.b', s.on('exact'));
    b.registerEventHandler('a.>', s.on('patternHigh'), { priority: 'high' });
    b.registerEventHandler('a.*', s.on('patternNormal'));
    await b.start();
    b.publish('a.b', 1);
    await b.drain();
    expect(s.log).toEqual(['patternHigh:a.b', 'exact:a.b', 'patternNormal:a.b', 'patternLow:a.b']);
    offLow();
    s.log.length = 0;
    b.publish('a.b', 2);
    b.publish('a.c', 3);
    await b.drain();
    expect(s.log).toEqual(['patternHigh:a.b', 'exact:a.b', 'patternNormal:a.b', 'patternHigh:a.c', 'patternNormal:a.c']);
  });

  it('count an event no pattern matches as having no handler, and a late pattern registration applies to topics already published', async () => {
    const b = inlineBus();
    const s = seen();
    b.registerEventHandler('x.*', s.on('x'));
    await b.start();
    expect(b.publish('y.z', 1)).toBe(true);
    await b.drain();
    expect(s.log).toEqual([]);
    b.registerEventHandler('y.*', s.on('y'));
    b.publish('y.z', 2);
    await b.drain();
    expect(s.log).toEqual(['y:y.z']);
    expect(b.stats()).toMatchObject({ published: 2, processed: 1 });
  });

  it('refuse wildcards where they make no sense, naming the topic', () => {
    const b = bus();
    expect(() => b.publish('orders.*', 1)).toThrow(/topic 'orders\.\*' has a wildcard token/);
    expect(() => b.registerEventHandler('orders.>.x', () => {})).toThrow(/topic pattern 'orders.>.x' may have '>' only as its last token/);
    expect(() => b.registerEventHandler('orders..*', () => {})).toThrow(/no leading, trailing or double dot/);
    expect(() => b.registerCommandHandler('orders.*', () => 1)).toThrow(/command topic 'orders\.\*' has a wildcard token/);
    // A token merely containing * or > is a literal, as in NATS.
    const s = seen();
    b.registerEventHandler('price>100', s.on('literal'));
    expect(b.publish('price>100', 1)).toBe(true);
    expect(b.stats().published).toBe(1);
  });

  it('deliver to worker handlers with the concrete topic, and dead-letter and replay through the pattern', async () => {
    const r = reports();
    const b = bus({ retry: { maxRetries: 0 }, deadLetter: {} });
    b.registerEventHandler('jobs.*', worker('report'));
    const offFail = b.registerEventHandler('jobs.>', worker('fail'), { name: 'failing' });
    await b.start();
    b.publish('jobs.a', { channel: r.channel }, { headers: { trace: 't1' } });
    b.publish('jobs.b', { channel: r.channel });
    await b.drain();
    await until(() => r.got.length === 2, 'both reports arrived');
    expect(r.got.map((g) => g.topic).sort()).toEqual(['jobs.a', 'jobs.b']);
    expect(r.got.find((g) => g.topic === 'jobs.a')!.headers).toEqual({ trace: 't1' });
    const dead = b.deadLetters.list();
    expect(dead.map((d) => [d.event.topic, d.handler, d.subscription]).sort()).toEqual([['jobs.a', 'failing', 'jobs.>'], ['jobs.b', 'failing', 'jobs.>']]);
    expect(dead.find((d) => d.event.topic === 'jobs.a')!.event.headers).toEqual({ trace: 't1' });
    // Replay goes to the pattern's handler: now one that succeeds under the same name.
    offFail();
    b.registerEventHandler('jobs.>', worker('report'), { name: 'failing' });
    expect(await b.deadLetters.replay()).toBe(2);
    await until(() => r.got.length === 4, 'the replayed deliveries ran');
    expect(r.got.slice(2).map((g) => g.topic).sort()).toEqual(['jobs.a', 'jobs.b']);
  });
});

describe('headers', () => {
  it('reach inline and worker handlers, frozen, and commands carry them too', async () => {
    const b = bus();
    let inline: BusEvent | undefined;
    b.registerEventHandler('h', (e) => {
      inline = e;
    });
    b.registerCommandHandler('describe', worker('describe'));
    await b.start();
    b.publish('h', 1, { headers: { a: '1', 'content-type': 'text/plain' } });
    await b.drain();
    expect(inline!.headers).toEqual({ a: '1', 'content-type': 'text/plain' });
    expect(Object.isFrozen(inline!.headers)).toBe(true);
    const res = await b.execute<{ headers: unknown }>('describe', null, { headers: { b: 'two' } });
    expect(res.result!.headers).toEqual({ b: 'two' });
    const none = await b.execute<{ headers: unknown }>('describe', null);
    expect(none.result!.headers).toBeNull();
  });

  it('go into dead letters of inline handlers and stay through a staged topic', async () => {
    const b = bus({ retry: { maxRetries: 0 }, deadLetter: {} });
    const r = reports();
    b.registerEventHandler('s', () => {
      throw new Error('no');
    }, { name: 'inlineFails', priority: 'high' });
    b.registerEventHandler('s', worker('report'));
    await b.start();
    b.publish('s', { channel: r.channel }, { headers: { k: 'v' } });
    await b.drain();
    await until(() => r.got.length === 1, 'the worker stage ran');
    expect(r.got[0].headers).toEqual({ k: 'v' });
    expect(b.deadLetters.list().map((d: DeadLetterEntry) => d.event.headers)).toEqual([{ k: 'v' }]);
  });

  it('are checked: strings only, bounded, and the bus stays up', async () => {
    const b = inlineBus();
    b.registerEventHandler('t', () => {});
    await b.start();
    expect(() => b.publish('t', 1, { headers: { n: 5 as unknown as string } })).toThrow(/headers for topic 't': header 'n' must be a string, got number/);
    expect(() => b.publish('t', 1, { headers: ['x'] as unknown as Record<string, string> })).toThrow(/must be an object of strings, got an array/);
    expect(() => b.publish('t', 1, { headers: { big: 'x'.repeat(20_000) } })).toThrow(/headers for topic 't' are \d+ bytes as JSON; the most is 16384/);
    expect(b.publish('t', 1, { headers: { ok: 'yes' } })).toBe(true);
    expect(b.stats()).toMatchObject({ published: 1, rejected: 0 });
  });
});

describe('publish middleware', () => {
  it('runs in order for every publish and execute, may add headers, and may be removed', async () => {
    const b = inlineBus();
    const order: string[] = [];
    let got: BusEvent | undefined;
    b.registerEventHandler('m', (e) => {
      got = e;
    });
    b.registerCommandHandler('c', (e) => e.headers);
    const off = b.use(function first(ctx) {
      order.push(`first:${ctx.kind}:${ctx.topic}`);
      ctx.setHeader('tenant', 'acme');
    });
    b.use((ctx) => {
      order.push(`second:${ctx.headers?.tenant}`);
      ctx.setHeader('seen', 'yes');
    });
    await b.start();
    b.publish('m', 1, { headers: { own: 'o' } });
    await b.drain();
    expect(got!.headers).toEqual({ own: 'o', tenant: 'acme', seen: 'yes' });
    expect(await b.execute('c', null)).toMatchObject({ success: true, result: { tenant: 'acme', seen: 'yes' } });
    expect(order).toEqual(['first:event:m', 'second:acme', 'first:command:c', 'second:acme']);
    off();
    b.publish('m', 2);
    await b.drain();
    expect(got!.headers).toEqual({ seen: 'yes' });
  });

  it('refuses with false: publish returns false, execute fails with RefusedError, and both count as filtered', async () => {
    const b = inlineBus();
    let handled = 0;
    b.registerEventHandler('m', () => void handled++);
    b.registerCommandHandler('c', () => 1);
    b.use(function onlyVip(ctx) {
      return ctx.headers?.vip === 'yes';
    });
    await b.start();
    expect(b.publish('m', 1)).toBe(false);
    expect(await b.publishAsync('m', 1)).toBe(false);
    expect(b.publish('m', 1, { headers: { vip: 'yes' } })).toBe(true);
    const refused = await b.execute('c', null);
    expect(refused.success).toBe(false);
    expect(refused.error).toBeInstanceOf(RefusedError);
    expect(refused.error).toMatchObject({ code: 'ERR_RINGBUS_REFUSED', middleware: 'onlyVip', topic: 'c' });
    await b.drain();
    expect(handled).toBe(1);
    expect(b.stats()).toMatchObject({ published: 1, filtered: 3 });
    expect(b.metrics.snapshot().by_topic.m.filtered).toBe(2);
  });

  it('that throws fails the publish with a MiddlewareError (execute resolves with it); nothing is accepted', async () => {
    const b = inlineBus();
    b.registerEventHandler('m', () => {});
    b.registerCommandHandler('c', () => 1);
    b.use(function broken() {
      throw new Error('kaput');
    });
    await b.start();
    expect(() => b.publish('m', 1)).toThrow(MiddlewareError);
    await expect(b.publishAsync('m', 1)).rejects.toThrow(/publish middleware 'broken' threw on topic 'm': kaput/);
    const r = await b.execute('c', null);
    expect(r).toMatchObject({ success: false, attempts: 0, error: { code: 'ERR_RINGBUS_MIDDLEWARE', middleware: 'broken' } });
    expect((r.error!.cause as Error).message).toBe('kaput');
    expect(b.stats()).toMatchObject({ published: 0, queueSize: 0 });
  });

  it('must be synchronous: one returning a promise fails the publish, and its rejection is not left unhandled', async () => {
    const b = inlineBus();
    b.registerEventHandler('m', () => {});
    // Not allowed by the types; a JavaScript caller (or a cast) can still do it.
    b.use((async function lookup() {
      throw new Error('too late');
    }) as never);
    await b.start();
    expect(() => b.publish('m', 1)).toThrow(/publish middleware 'lookup' threw on topic 'm': it returned a promise: publish middleware must be synchronous/);
    expect(b.stats().published).toBe(0);
  });
});

describe('worker middleware', () => {
  it('wraps every worker handler call, first added outermost, told the handler', async () => {
    const b = bus();
    b.use(workerMiddleware(ROUTING, 'outer'));
    b.use(workerMiddleware(ROUTING, 'inner'));
    b.registerCommandHandler('describe', worker('describe'));
    await b.start();
    const r = await b.execute<{ trail: string[] }>('describe', null);
    expect(r.result!.trail).toEqual(['handler', 'inner', 'outer(describe@describe)']);
  });

  it('that throws fails the delivery like a handler error', async () => {
    const b = bus({ retry: { maxRetries: 1, initialDelayMs: 1 } });
    b.use(workerMiddleware(ROUTING, 'validate'));
    b.registerCommandHandler('describe', worker('describe'));
    await b.start();
    const bad = await b.execute('describe', null, { headers: { 'x-invalid': 'nope' } });
    expect(bad).toMatchObject({ success: false, attempts: 2, error: { code: 'ERR_RINGBUS_HANDLER_FAILED', message: 'invalid: nope' } });
    expect((await b.execute('describe', null)).success).toBe(true);
  });

  it('is checked: before start() only, an existing module, a function export (start() names it)', async () => {
    const b = bus();
    expect(() => b.use(workerMiddleware('/nowhere/mw.mjs', 'x'))).toThrow(HandlerLoadError);
    b.use(workerMiddleware(ROUTING, 'notAFunction'));
    b.registerEventHandler('t', worker('report'));
    await expect(b.start()).rejects.toThrow(/worker middleware module .*routing_handlers\.mjs has no function export 'notAFunction'/);
    const ok = inlineBus();
    await ok.start();
    expect(() => ok.use(workerMiddleware(ROUTING, 'outer'))).toThrow(/must be added before start\(\)/);
  });
});
