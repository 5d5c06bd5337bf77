import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { workerHandler } from '../src/index.js';
import { busFixture, nextEvent, until } from './helpers.js';

const H = '/tmp/review/h.mjs';
const dep = workerHandler(H, 'dep');
const slow = workerHandler(H, 'slow');
const ok = workerHandler(H, 'ok');
const setup = busFixture();
const flagFile = (name = 'down'): string => { const d = mkdtempSync(join(tmpdir(), 'rv-')); const f = join(d, name); writeFileSync(f, ''); return f; };
const show = (label: string, s: object) => console.log(label, JSON.stringify(s));

describe('review', () => {
  it('S1 stop() with a partly held event (inline stage held, worker stage running)', async () => {
    const { bus } = setup({ retry: { maxRetries: 0 }, deadLetter: {}, circuitBreaker: { minimumCalls: 2, recoveryTimeoutMs: 60_000 } });
    bus.registerEventHandler('t', () => { throw new Error('a fails'); }, { name: 'a', priority: 'critical' });
    bus.registerEventHandler('t', slow, { name: 'b', priority: 'normal' });
    await bus.start();
    const opened = nextEvent(bus, 'circuit', (e) => e.to === 'open');
    bus.publish('t', { i: 1, slowMs: 300 });
    bus.publish('t', { i: 2, slowMs: 300 });
    await opened;
    bus.publish('t', { i: 3, slowMs: 300 });
    await until(() => bus.stats().held === 1, 'held');
    const t0 = Date.now();
    await bus.stop();
    const s = bus.stats();
    show(`S1 stop took ${Date.now() - t0}ms`, s);
  }, 30_000);

  it('S2 commands whose circuit opens mid-flight', async () => {
    const flag = flagFile();
    const { bus } = setup({ pool: { maxThreads: 2 }, retry: { maxRetries: 5, initialDelayMs: 5, maxDelayMs: 10 }, deadLetter: {}, circuitBreaker: { minimumCalls: 2, recoveryTimeoutMs: 300 } });
    bus.registerCommandHandler('cmd', dep, { name: 'c' });
    await bus.start();
    const opened = nextEvent(bus, 'circuit', (e) => e.to === 'open');
    const resolved: number[] = [];
    const ps = Array.from({ length: 6 }, (_, i) => bus.execute('cmd', { i, flag }).then((r) => { resolved.push(i); return r; }));
    await opened;
    const t0 = Date.now();
    rmSync(flag);
    const rs = await Promise.all(ps);
    show(`S2 after ${Date.now() - t0}ms results`, rs);
    await bus.drain();
    show('S2 stats', bus.stats());
    expect(resolved.length).toBe(6);
  }, 30_000);

  it('S2b command held at stop with no DLQ', async () => {
    const flag = flagFile();
    const { bus } = setup({ retry: false, deadLetter: false, circuitBreaker: { minimumCalls: 2, recoveryTimeoutMs: 60_000 } });
    bus.registerCommandHandler('cmd', dep, { name: 'c' });
    await bus.start();
    const opened = nextEvent(bus, 'circuit', (e) => e.to === 'open');
    const ps = Array.from({ length: 6 }, (_, i) => bus.execute('cmd', { i, flag }));
    await opened;
    await until(() => bus.stats().held + bus.stats().failed >= 6, 'held');
    show('S2b before stop', bus.stats());
    await bus.stop();
    show('S2b results', await Promise.all(ps));
    show('S2b stats', bus.stats());
  }, 30_000);

  it('S3 held + drop-oldest at capacity', async () => {
    const flag = flagFile();
    const { bus } = setup({ queue: { capacity: 20, strategy: 'drop-oldest' }, retry: { maxRetries: 2, initialDelayMs: 5, maxDelayMs: 10 }, deadLetter: { capacity: 10000 },
      circuitBreaker: { minimumCalls: 3, recoveryTimeoutMs: 200 } });
    bus.registerEventHandler('t', dep, { name: 'd' });
    await bus.start();
    const opened = nextEvent(bus, 'circuit', (e) => e.to === 'open');
    for (let i = 0; i < 20; i++) bus.publish('t', { i, flag });
    await opened;
    for (let i = 20; i < 400; i++) bus.publish('t', { i, flag, spinMs: 0 });
    rmSync(flag);
    for (let i = 400; i < 600; i++) { bus.publish('t', { i }); if (i % 20 === 0) await new Promise((r) => setTimeout(r, 1)); }
    await bus.drain();
    const s = bus.stats();
    show('S3', s);
    expect(s.processed + s.deadLettered + s.dropped + s.abandoned).toBe(s.published);
    expect(s.failed).toBe(s.retried + s.deadLettered);
  }, 30_000);

  it('S4 unregister while held, then another handler reuses the breaker index', async () => {
    const flag = flagFile();
    const { bus } = setup({ retry: { maxRetries: 1, initialDelayMs: 5, maxDelayMs: 5 }, deadLetter: {}, circuitBreaker: { minimumCalls: 3, recoveryTimeoutMs: 60_000 } });
    const moves: string[] = [];
    bus.on('circuit', (e) => moves.push(`${e.topic}/${e.handler}:${e.to}`));
    const off = bus.registerEventHandler('x', dep, { name: 'a' });
    await bus.start();
    const opened = nextEvent(bus, 'circuit', (e) => e.to === 'open');
    for (let i = 0; i < 10; i++) bus.publish('x', { i, flag });
    await opened;
    await until(() => bus.stats().held > 0 && bus.stats().queueSize === bus.stats().held, 'all held');
    show('S4 before unregister', bus.stats());
    off();
    bus.registerEventHandler('y', ok, { name: 'b' });
    for (let i = 0; i < 5; i++) bus.publish('y', { i });
    await bus.drain();
    show('S4 after drain', bus.stats());
    console.log('S4 moves', moves, 'y/b state', bus.circuitState('b', 'y'));
    const s = bus.stats();
    expect(s.processed + s.deadLettered + s.dropped + s.abandoned).toBe(s.published);
  }, 30_000);

  it('S5 held-then-released trial crashes its worker', async () => {
    const flag = flagFile();
    const crash = flagFile('crash');
    const { bus } = setup({ pool: { maxThreads: 2 }, retry: { maxRetries: 3, initialDelayMs: 5, maxDelayMs: 10 }, deadLetter: {}, circuitBreaker: { minimumCalls: 3, recoveryTimeoutMs: 150 } });
    const moves: string[] = [];
    bus.on('circuit', (e) => moves.push(e.to));
    bus.registerEventHandler('t', dep, { name: 'd' });
    await bus.start();
    const opened = nextEvent(bus, 'circuit', (e) => e.to === 'open');
    for (let i = 0; i < 3; i++) bus.publish('t', { i, flag });
    await opened;
    for (let i = 3; i < 30; i++) bus.publish('t', { i, flag, crash });
    await until(() => bus.stats().held === 27, 'held');
    rmSync(flag);
    await bus.drain();
    const s = bus.stats();
    show('S5', s); console.log('S5 moves', moves, existsSync(crash));
    expect(s.processed + s.deadLettered).toBe(30);
  }, 30_000);

  it('S6 replay a dead letter while its circuit is open', async () => {
    const flag = flagFile();
    const { bus } = setup({ retry: { maxRetries: 0 }, deadLetter: {}, circuitBreaker: { minimumCalls: 3, recoveryTimeoutMs: 300 } });
    bus.registerEventHandler('t', dep, { name: 'd' });
    await bus.start();
    const opened = nextEvent(bus, 'circuit', (e) => e.to === 'open');
    for (let i = 0; i < 3; i++) bus.publish('t', { i, flag });
    await opened;
    await bus.drain();
    const t0 = Date.now();
    const rp = bus.deadLetters.replay();
    await until(() => bus.stats().held === 3, 'held');
    rmSync(flag);
    const n = await rp;
    await bus.drain();
    show(`S6 replayed ${n} after ${Date.now() - t0}ms; dl left ${bus.deadLetters.size}`, bus.stats());
  }, 30_000);

  it('S6b replay while open, then stop', async () => {
    const flag = flagFile();
    const { bus } = setup({ retry: { maxRetries: 0 }, deadLetter: {}, circuitBreaker: { minimumCalls: 3, recoveryTimeoutMs: 60_000 } });
    bus.registerEventHandler('t', dep, { name: 'd' });
    await bus.start();
    const opened = nextEvent(bus, 'circuit', (e) => e.to === 'open');
    for (let i = 0; i < 3; i++) bus.publish('t', { i, flag });
    await opened;
    await bus.drain();
    const before = bus.deadLetters.list().map((e) => ({ id: e.id, attempts: e.attempts, error: e.error }));
    const rp = bus.deadLetters.replay();
    await until(() => bus.stats().held === 3, 'held');
    await bus.stop();
    const n = await rp;
    show(`S6b replayed ${n}`, bus.stats());
    console.log('S6b before', before, 'after', bus.deadLetters.list().map((e) => ({ id: e.id, attempts: e.attempts, error: e.error })));
  }, 30_000);

  it('S7 stop() with held deliveries and no DLQ', async () => {
    const flag = flagFile();
    const { bus } = setup({ retry: { maxRetries: 1, initialDelayMs: 5, maxDelayMs: 5 }, deadLetter: false, circuitBreaker: { minimumCalls: 2, recoveryTimeoutMs: 60_000 } });
    bus.registerEventHandler('t', dep, { name: 'd' });
    await bus.start();
    const opened = nextEvent(bus, 'circuit', (e) => e.to === 'open');
    for (let i = 0; i < 10; i++) bus.publish('t', { i, flag });
    await opened;
    await until(() => bus.stats().held > 0 && bus.stats().queueSize === bus.stats().held, 'all held');
    show('S7 before', bus.stats());
    await bus.stop();
    show('S7 after', bus.stats());
  }, 30_000);
});
