import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BroadcastChannel } from 'node:worker_threads';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { workerHandler, type DeadLetterEntry } from '../src/index.js';
import { INLINE_ONLY_POOL, busFixture, nextEvent, until } from './helpers.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/breaker_handlers.mjs', import.meta.url));
const dependent = workerHandler(FIXTURE, 'dependent');
const onePercent = workerHandler(FIXTURE, 'onePercent');

const setup = busFixture();
/** For buses whose handlers all run inline: no worker thread to start. */
const inline = busFixture({ pool: INLINE_ONLY_POOL });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A flag file: the dependency is down while it exists. */
function downFlag(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringbus-breaker-'));
  dirs.push(dir);
  const flag = join(dir, 'down');
  writeFileSync(flag, '');
  return flag;
}

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

describe('circuit breaker v2: failure rate, hold, half-open permits', () => {
  it('stays closed at a 1% permanent failure rate, and dead-letters exactly the failing deliveries', async () => {
    const { bus } = setup({ retry: { maxRetries: 0 }, circuitBreaker: {}, deadLetter: {}, pool: { maxThreads: 2 } });
    const moves: string[] = [];
    bus.on('circuit', (e) => moves.push(e.to));
    bus.registerEventHandler('records', onePercent, { name: 'ingest' });
    await bus.start();
    for (let i = 0; i < 3000; i++) if (!bus.publish('records', { i })) await bus.publishAsync('records', { i });
    await bus.drain();
    expect(moves).toEqual([]);
    expect(bus.circuitState('ingest')).toBe('closed');
    const s = bus.stats();
    expect(s).toMatchObject({ processed: 2970, failed: 30, deadLettered: 30, held: 0 });
    const failedIds = bus.deadLetters.list().map((e) => (e.event.payload as { i: number }).i).sort((a, b) => a - b);
    expect(failedIds).toEqual(Array.from({ length: 30 }, (_, k) => k * 100));
  });

  it('holds the deliveries of an open circuit (capacity applies) and runs every one after recovery, dead-lettering none', async () => {
    const flag = downFlag();
    const { bus } = setup({
      queue: { capacity: 60 },
      retry: { maxRetries: 5, initialDelayMs: 5, maxDelayMs: 20 },
      circuitBreaker: { minimumCalls: 5, recoveryTimeoutMs: 150 },
      deadLetter: {},
    });
    bus.registerEventHandler('orders', dependent, { name: 'charge' });
    await bus.start();
    const opened = nextEvent(bus, 'circuit', (e) => e.to === 'open');
    let accepted = 0;
    for (let i = 0; i < 60; i++) if (bus.publish('orders', { i, flag })) accepted++;
    expect(accepted).toBe(60);
    await opened;
    // Every event is still unsettled: held by the circuit or waiting to be held, none dead-lettered.
    await until(() => bus.stats().held > 0, 'deliveries are held');
    expect(bus.publish('orders', { i: 60, flag })).toBe(false); // capacity counts held events
    expect(bus.stats()).toMatchObject({ deadLettered: 0, queueSize: 60, rejected: 1 });
    const closed = nextEvent(bus, 'circuit', (e) => e.to === 'closed');
    rmSync(flag); // the dependency is back
    await closed;
    await bus.drain();
    const s = bus.stats();
    expect(s).toMatchObject({ processed: 60, deadLettered: 0, held: 0, queueSize: 0 });
    // The failures before the circuit opened: at least minimumCalls attempts failed, and only those.
    expect(s.failed).toBeGreaterThanOrEqual(5);
    expect(s.retried).toBe(s.failed); // each failed attempt was retried (none ran out), none dead-lettered
  });

  it('admits at most halfOpenMaxCalls trials at once across workers, and successThreshold of them before closing', async () => {
    const flag = downFlag();
    const channel = `breaker-${randomUUID()}`;
    const runs: { start: number; end: number; threadId: number }[] = [];
    const bc = new BroadcastChannel(channel);
    bc.onmessage = (m) => runs.push((m as { data: { start: number; end: number; threadId: number } }).data);
    try {
      const { bus } = setup({
        pool: { maxThreads: 2, minThreads: 2 },
        retry: false,
        deadLetter: false,
        circuitBreaker: { minimumCalls: 4, recoveryTimeoutMs: 100, halfOpenMaxCalls: 2, successThreshold: 3 },
      });
      bus.registerEventHandler('jobs', dependent, { name: 'render' });
      await bus.start();
      const opened = nextEvent(bus, 'circuit', (e) => e.to === 'open');
      for (let i = 0; i < 4; i++) bus.publish('jobs', { i, flag });
      await opened;
      rmSync(flag);
      for (let i = 4; i < 40; i++) bus.publish('jobs', { i, flag, channel, spinMs: 30 }); // held: the circuit is open
      await until(() => bus.stats().held === 36, 'the 36 deliveries are held');
      let closedAt = Infinity;
      // Read synchronously in the listener: held deliveries are released right after it returns.
      bus.on('circuit', (e) => {
        if (e.to === 'closed') closedAt = nowMs();
      });
      const halfOpen = nextEvent(bus, 'circuit', (e) => e.to === 'half_open');
      const closed = nextEvent(bus, 'circuit', (e) => e.to === 'closed');
      await halfOpen;
      await closed;
      await bus.drain();
      await until(() => runs.length === 36, 'every run reported');
      const trials = runs.filter((r) => r.start < closedAt);
      // Each success frees its permit for the next trial: successThreshold successes close the circuit,
      // by which time at most halfOpenMaxCalls - 1 further trials may have started.
      expect(trials.length).toBeGreaterThanOrEqual(3);
      expect(trials.length).toBeLessThanOrEqual(3 + 2 - 1);
      // Most trials running at one instant: at each trial's start, how many had started and not ended.
      let most = 0;
      for (const r of trials) most = Math.max(most, trials.filter((o) => o.start <= r.start && r.start < o.end).length);
      expect(most).toBeLessThanOrEqual(2);
      expect(bus.stats()).toMatchObject({ processed: 36, failed: 4, held: 0 });
    } finally {
      bc.close();
    }
  });

  it('keeps a breaker per handler of each topic: an unnamed failing handler does not open another topic\'s', async () => {
    const { bus } = inline({ retry: false, deadLetter: {}, circuitBreaker: { minimumCalls: 3, recoveryTimeoutMs: 60_000 } });
    let audited = 0;
    bus.registerEventHandler('payments.charge', () => {
      throw new Error('card declined');
    });
    bus.registerEventHandler('audit.log', () => {
      audited++;
    });
    await bus.start();
    const opened = nextEvent(bus, 'circuit', (e) => e.to === 'open');
    for (let i = 0; i < 3; i++) bus.publish('payments.charge', { i });
    expect(await opened).toMatchObject({ topic: 'payments.charge', handler: 'anonymous' });
    for (let i = 0; i < 50; i++) bus.publish('audit.log', { i });
    await until(() => audited === 50, 'audit.log ran every event');
    expect(bus.circuitState('anonymous', 'payments.charge')).toBe('open');
    expect(bus.circuitState('anonymous', 'audit.log')).toBe('closed');
  });

  it('dead-letters with the handler\'s own error, also for deliveries refused after the circuit opened (hold: false)', async () => {
    const flag = downFlag();
    const { bus } = setup({
      retry: { maxRetries: 2, initialDelayMs: 1, maxDelayMs: 2 },
      circuitBreaker: { minimumCalls: 3, recoveryTimeoutMs: 60_000, hold: false },
      deadLetter: {},
    });
    bus.registerEventHandler('sync', dependent, { name: 'push' });
    await bus.start();
    for (let i = 0; i < 10; i++) bus.publish('sync', { i, flag });
    await bus.drain();
    expect(bus.circuitState('push')).toBe('open');
    const entries = bus.deadLetters.list();
    expect(entries).toHaveLength(10);
    const byCode = (code: DeadLetterEntry['errorCode']): DeadLetterEntry[] => entries.filter((e) => e.errorCode === code);
    // Deliveries that ran at least once keep the handler's own error, never the circuit's refusal.
    for (const e of byCode('ERR_RINGBUS_HANDLER_FAILED')) {
      expect(e.error).toMatch(/^service down \(event \d+\)$/);
      expect(e.errorName).toBe('ServiceDownError');
    }
    expect(byCode('ERR_RINGBUS_HANDLER_FAILED').length).toBeGreaterThanOrEqual(3);
    // Only a delivery that never ran says what stopped it: the open circuit.
    for (const e of byCode('ERR_RINGBUS_CIRCUIT_OPEN')) expect(e.error).toBe("circuit for handler 'push' is open");
    expect(byCode('ERR_RINGBUS_HANDLER_FAILED').length + byCode('ERR_RINGBUS_CIRCUIT_OPEN').length).toBe(10);
  });

  it('stop() does not wait for an open circuit: held deliveries are dead-lettered with the handler\'s last error', async () => {
    const flag = downFlag();
    const { bus } = setup({
      retry: { maxRetries: 0 },
      circuitBreaker: { minimumCalls: 2, recoveryTimeoutMs: 60_000 },
      deadLetter: {},
    });
    bus.registerEventHandler('mail', dependent, { name: 'send' });
    await bus.start();
    const opened = nextEvent(bus, 'circuit', (e) => e.to === 'open');
    for (let i = 0; i < 20; i++) bus.publish('mail', { i, flag });
    await opened;
    await until(() => bus.stats().held + bus.stats().deadLettered === 20, 'every delivery is held or dead-lettered');
    await bus.stop();
    const s = bus.stats();
    expect(s).toMatchObject({ deadLettered: 20, held: 0, queueSize: 0, abandoned: 0 });
    const heldOnes = bus.deadLetters.list().filter((e) => e.error.endsWith('(not delivered: its circuit was open when the bus stopped)'));
    expect(heldOnes.length).toBe(20 - s.failed);
    for (const e of heldOnes) {
      expect(e.error).toMatch(/^service down \(event \d+\) \(not delivered/);
      expect(e).toMatchObject({ errorName: 'ServiceDownError', errorCode: 'ERR_RINGBUS_HANDLER_FAILED', attempts: 0 });
    }
  });

  it('stop() waits for the parts of an event that are not held (a held stage does not make the whole event held)', async () => {
    const { bus } = setup({ retry: { maxRetries: 0 }, deadLetter: {}, circuitBreaker: { minimumCalls: 2, recoveryTimeoutMs: 60_000 } });
    bus.registerEventHandler('t', () => {
      throw new Error('a fails');
    }, { name: 'a', priority: 'critical' });
    bus.registerEventHandler('t', workerHandler(FIXTURE, 'slow'), { name: 'b', priority: 'normal' });
    await bus.start();
    const opened = nextEvent(bus, 'circuit', (e) => e.to === 'open');
    bus.publish('t', { i: 1, slowMs: 50 });
    bus.publish('t', { i: 2, slowMs: 50 });
    await opened;
    bus.publish('t', { i: 3, slowMs: 300 }); // 'a' is held; 'b' runs for 300 ms
    await until(() => bus.stats().held === 1, "event 3's 'a' is held");
    await bus.stop();
    // 'b' ran all three events to the end; only the held 'a' of event 3 is dead-lettered, nothing abandoned.
    expect(bus.stats()).toMatchObject({ processed: 3, abandoned: 0, deadLettered: 3, held: 0, queueSize: 0 });
  });

  it('a breaker freed by unregistering is not reused while deliveries that name it are in flight', async () => {
    const flag = downFlag();
    const { bus } = setup({ retry: false, deadLetter: {}, circuitBreaker: { minimumCalls: 3, recoveryTimeoutMs: 60_000 } });
    const moves: string[] = [];
    bus.on('circuit', (e) => moves.push(`${e.topic}/${e.handler}:${e.to}`));
    const off = bus.registerEventHandler('x', dependent, { name: 'a' });
    await bus.start();
    const opened = nextEvent(bus, 'circuit', (e) => e.to === 'open');
    for (let i = 0; i < 10; i++) bus.publish('x', { i, flag });
    await opened;
    off(); // what 'a' held is released (and fails: the flag is still there)
    bus.registerEventHandler('y', workerHandler(FIXTURE, 'onePercent'), { name: 'b' });
    for (let i = 1; i < 6; i++) bus.publish('y', { i });
    await bus.drain();
    expect(moves).toEqual(['x/a:open']); // b's circuit never heard of a's failures
    expect(bus.circuitState('b', 'y')).toBe('closed');
    const s = bus.stats();
    expect(s.processed + s.deadLettered).toBe(15);
    expect(s).toMatchObject({ held: 0, queueSize: 0 });
  });
});
