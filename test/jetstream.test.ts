/**
 * The JetStream transport against the server every machine of this project
 * runs (127.0.0.1:4222): buses in one process stand for processes of a
 * cluster (each bus has its own connection, consumers and pool).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { jetstream as jetstreamClient } from '@nats-io/jetstream';
import {
  BackpressureError, CircuitOpenError, CommandTimeoutError, HandlerFailedError, MessageBus, NoHandlerError, ResilientMessageBus, type BusEvent,
} from '../src/index.js';
import { jetstream } from '../src/jetstream/index.js';
import { Outbound } from '../src/jetstream/outbound.js';
import { resolveJetStreamOptions } from '../src/jetstream/options.js';
import { RecordEncoder } from '../src/protocol/record.js';
import { SILENT_LOGGER } from '../src/logger.js';
import { memoryLogger, recorder, Recording } from './helpers.js';
import { natsConnection, StreamNames, until } from './fixtures/jetstream_kit.js';
import { ringbus, usesBuiltCli } from './fixtures/dlq_test_kit.js';

const names = new StreamNames();
usesBuiltCli();
const buses: MessageBus[] = [];
// No warm worker thread: most buses here run inline handlers only, and a worker's start (under tsx) costs ~1.5 s.
const LEAN = { minThreads: 0 } as const;
const bus = (options: ConstructorParameters<typeof MessageBus>[0]): MessageBus => {
  const b = new MessageBus({ logger: false, pool: LEAN, ...options });
  buses.push(b);
  return b;
};

afterEach(async () => {
  await Promise.all(buses.splice(0).map((b) => b.stop({ drain: false }).catch(() => undefined)));
  await names.cleanup();
});

/** Opens and closes: a gate inline handlers wait on. */
function gate(): { wait: () => Promise<void>; open: () => void } {
  let open!: () => void;
  const p = new Promise<void>((resolve) => (open = resolve));
  return { wait: () => p, open };
}

describe('JetStream transport', () => {
  it('publishes a durable delayed event to the stream when due, under the id bus.scheduled showed, and marks it done once stored', async () => {
    const where = names.next();
    const dir = mkdtempSync(join(tmpdir(), 'ringbus-js-delayed-'));
    try {
      const consumer = bus({ transport: jetstream(where) });
      const got: string[] = [];
      consumer.registerEventHandler('later', (e) => void got.push(e.id));
      await consumer.start();
      const path = join(dir, 'scheduled.jsonl');
      const producer = bus({ transport: jetstream(where), scheduler: { path } });
      await producer.start();
      expect(await producer.publishAsync('later', 1, { delayMs: 30 })).toBe(true);
      const [pending] = producer.scheduled.list();
      await until(() => got.length === 1, 'the consumer ran it');
      expect(got).toEqual([pending.id]);
      await producer.stop();
      const again = bus({ transport: jetstream(where), scheduler: { path } });
      await again.start();
      expect(again.scheduled.count()).toBe(0);
      await again.drain();
      expect(again.stats().published).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tells each process of the cluster, the stream and its consumers (clusterStatus, and the dashboard\'s state)', async () => {
    const where = names.next();
    const worker = bus({ transport: jetstream({ ...where, name: 'worker-proc' }) });
    worker.registerEventHandler('jobs', () => {}, { name: 'run' });
    await worker.start();
    const producer = bus({ transport: jetstream({ ...where, name: 'producer-proc' }) });
    await producer.start();
    for (let i = 0; i < 10; i++) producer.publish('jobs', i);
    await producer.drain();
    const deadline = Date.now() + 10_000;
    let status = await worker.clusterStatus();
    // Heartbeats come every 2 s: the producer's next one reaches the worker, which listens from its first read.
    while (status!.processes.length < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      status = await worker.clusterStatus();
    }
    expect(status!.processes.map((p) => p.name).sort()).toEqual(['producer-proc', 'worker-proc']);
    expect(status!.processes.find((p) => p.name === 'producer-proc')).toMatchObject({ published: 10, pid: process.pid, handlers: 0 });
    expect(status!.stream).toMatchObject({ name: where.stream });
    expect(status!.consumers.some((c) => c.description.includes("handler 'run' on topic 'jobs'"))).toBe(true);
    const d = await worker.dashboard({ port: 0, sampleMs: 100 });
    try {
      let state = (await (await fetch(new URL('api/state', d.url))).json()) as { cluster?: { processes: unknown[] } };
      for (let i = 0; i < 50 && state.cluster === undefined; i++) {
        await new Promise((r) => setTimeout(r, 100));
        state = (await (await fetch(new URL('api/state', d.url))).json()) as typeof state;
      }
      expect(state.cluster!.processes.length).toBe(2);
    } finally {
      await d.close();
    }
    expect(await bus({}).clusterStatus()).toBeUndefined();
  });

  it('carries headers, delivers to wildcard subscriptions with the concrete topic, runs filters where the handler is, and retries through the pattern', async () => {
    const where = names.next();
    const consumer = bus({ transport: jetstream(where), retry: { maxRetries: 1, initialDelayMs: 1 }, deadLetter: {} });
    const got: { topic: string; headers: unknown; attempt: number }[] = [];
    consumer.registerEventHandler('orders.*', (e) => {
      got.push({ topic: e.topic, headers: e.headers, attempt: e.attempt });
      if (e.headers?.fail === 'yes') throw new Error('no');
    }, { name: 'star', filter: (e) => e.headers?.skip !== 'yes' });
    await consumer.start();
    const producer = bus({ transport: jetstream(where) });
    await producer.start();
    producer.publish('orders.eu', 1, { headers: { tenant: 'acme' } });
    producer.publish('orders.us', 2, { headers: { skip: 'yes' } });
    producer.publish('orders.', 3); // an empty token: no wildcard matches it (NATS would)
    producer.publish('orders.eu.west', 4); // two tokens after 'orders': not '*'
    producer.publish('orders.fr', 5, { headers: { fail: 'yes' } });
    await producer.drain();
    await until(() => consumer.deadLetters.list().length === 1 && consumer.stats().filtered === 2, 'the failing one dead-lettered, two filtered');
    expect(got.map((g) => [g.topic, g.attempt])).toEqual([['orders.eu', 0], ['orders.fr', 0], ['orders.fr', 1]]);
    expect(got[0].headers).toEqual({ tenant: 'acme' });
    const [dead] = consumer.deadLetters.list();
    expect(dead).toMatchObject({ handler: 'star', subscription: 'orders.*', attempts: 2, event: { topic: 'orders.fr', headers: { fail: 'yes' } } });
  });

  it('runs each (event, handler) delivery once, only in the processes that registered the handler', async () => {
    const where = names.next();
    const recording = new Recording();
    // The config-file form and the factory form reach the same cluster.
    const orders = bus({ transport: { jetstream: where } });
    const seen: string[] = [];
    orders.registerEventHandler('orders.created', (e: BusEvent<{ n: number }>) => {
      seen.push(e.id);
    }, { name: 'book' });
    orders.registerEventHandler('orders.created', recorder('recordA'), { name: 'record' });
    const audit = bus({ transport: jetstream(where) });
    const audited: string[] = [];
    audit.registerEventHandler('audit', (e) => {
      audited.push(e.topic);
    });
    await Promise.all([orders.start(), audit.start()]);
    const producer = bus({ transport: jetstream(where) });
    await producer.start();
    for (let i = 0; i < 600; i++) {
      const payload = { channel: recording.channel, tag: `o${i}`, n: i };
      if (!producer.publish('orders.created', payload, { sessionId: 's1' })) await producer.publishAsync('orders.created', payload);
    }
    for (let i = 0; i < 200; i++) producer.publish('audit', { i });
    await producer.drain();
    expect(producer.stats().published).toBe(800);
    expect(producer.transportStats()).toMatchObject({ publishPending: 0, publishStored: 800 });

    await recording.waitFor(600);
    await until(() => seen.length === 600 && audited.length === 200, 'every delivery ran');
    expect(new Set(seen).size).toBe(600);
    // The worker handler saw what was published: topic, session, attempt 0, and the publisher's event ids.
    const ended = recording.ended();
    expect(new Set(ended.map((m) => m.tag)).size).toBe(600);
    expect(new Set(ended.map((m) => m.id))).toEqual(new Set(seen));
    expect(ended.every((m) => m.topic === 'orders.created' && m.sessionId === 's1' && m.attempt === 0)).toBe(true);
    // The audit process never received an order, and the orders process never an audit event.
    expect(audited.every((t) => t === 'audit')).toBe(true);
    expect(audit.transportStats()!.received).toBe(200);
    expect(orders.transportStats()!.received).toBe(1200);
    await orders.drain();
    expect(orders.stats()).toMatchObject({ processed: 1200, failed: 0, queueSize: 0 });

    // The transport's figures, in the snapshot and the exposition (and only on a bus with a transport).
    const snap = producer.metrics.snapshot();
    expect(snap.transport).toMatchObject({ publishStored: 800, publishPending: 0, publishRetries: 0 });
    expect(snap.transport!.publishAckP99Ms).toBeGreaterThan(0);
    expect(snap.transport!.publishAckP99Ms).toBeGreaterThanOrEqual(snap.transport!.publishAckP50Ms);
    const text = await orders.metrics.prometheus();
    expect(text).toMatch(/^transport_received_total 1200$/m);
    expect(text).toMatch(/^# TYPE transport_received_total counter$/m);
    expect(text).toMatch(/^transport_consumer_ack_pending \d+$/m);
    const plain = new MessageBus({ logger: false, pool: LEAN });
    expect(await plain.metrics.prometheus()).not.toMatch(/transport_/);
    expect(plain.metrics.snapshot().transport).toBeUndefined();
  });

  it('lets processes with the same handler compete: every delivery runs once across them', async () => {
    const where = names.next();
    const ran = new Map<string, number>();
    const perBus = [0, 0];
    const consumers = [0, 1].map((k) => {
      const b = bus({ transport: jetstream({ ...where, batchEvents: 16 }) });
      b.registerEventHandler('jobs', async (e) => {
        ran.set(e.id, (ran.get(e.id) ?? 0) + 1);
        perBus[k]++;
        await new Promise((r) => setImmediate(r));
      }, { name: 'work' });
      return b;
    });
    await Promise.all(consumers.map((b) => b.start()));
    const producer = bus({ transport: jetstream({ ...where, batchEvents: 16 }) });
    await producer.start();
    for (let i = 0; i < 2000; i++) if (!producer.publish('jobs', i)) await producer.publishAsync('jobs', i);
    await producer.drain();
    await until(() => ran.size === 2000, 'every job ran');
    await Promise.all(consumers.map((b) => b.drain()));
    expect([...ran.values()].every((n) => n === 1)).toBe(true);
    expect(perBus[0] + perBus[1]).toBe(2000);
  });

  it('takes no more deliveries than queue.capacity while its handler is slow, and catches up after', async () => {
    const where = names.next();
    const slow = bus({ transport: jetstream({ ...where, batchEvents: 50 }), queue: { capacity: 8 } });
    const g = gate();
    let done = 0;
    let maxQueue = 0;
    slow.registerEventHandler('slow', async () => {
      maxQueue = Math.max(maxQueue, slow.stats().queueSize);
      await g.wait();
      done++;
    });
    await slow.start();
    const producer = bus({ transport: jetstream(where) });
    await producer.start();
    for (let i = 0; i < 500; i++) producer.publish('slow', i);
    await producer.drain();
    await until(() => slow.transportStats()!.received === 8, 'the slow process took its capacity');
    // Time for more to arrive, were the transport not bounded: none does.
    await new Promise((r) => setTimeout(r, 200));
    expect(slow.transportStats()!.received).toBe(8);
    expect(slow.stats().queueSize).toBe(8);
    g.open();
    await until(() => done === 500, 'every event ran once room came back');
    expect(maxQueue).toBeLessThanOrEqual(8);
    expect(slow.transportStats()!.received).toBe(500);
  });

  it('bounds what waits to be stored: publish() returns false and publishAsync() times out when the window is full', async () => {
    // Never started: nothing is sent, so the window fills.
    const b = bus({ transport: jetstream({ ...names.next(), publishWindow: 10 }) });
    let accepted = 0;
    for (let i = 0; i < 25; i++) if (b.publish('t', i)) accepted++;
    expect(accepted).toBe(10);
    expect(b.stats()).toMatchObject({ published: 10, rejected: 15 });
    expect(b.transportStats()!.publishPending).toBe(10);
    const err = await b.publishAsync('t', 'late', { timeoutMs: 30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackpressureError);
    expect((err as BackpressureError).topic).toBe('t');
    expect(b.stats().rejected).toBe(16);
  });

  it('hands back what a stopping process took and did not settle: another process runs it at once', async () => {
    const where = names.next();
    const first = bus({ transport: jetstream({ ...where, batchEvents: 10 }), queue: { capacity: 20 } });
    const g = gate();
    first.registerEventHandler('jobs', () => g.wait(), { name: 'work' });
    await first.start();
    const producer = bus({ transport: jetstream(where) });
    await producer.start();
    for (let i = 0; i < 100; i++) producer.publish('jobs', { i });
    await producer.drain();
    await until(() => first.transportStats()!.received === 20, 'the first process holds 20');
    await first.stop({ drain: false });
    expect(first.transportStats()!.handedBack).toBeGreaterThanOrEqual(20);
    g.open();

    const second = bus({ transport: jetstream(where) });
    const ran = new Set<number>();
    second.registerEventHandler('jobs', (e: BusEvent<{ i: number }>) => {
      ran.add(e.payload.i);
    }, { name: 'work' });
    const started = performance.now();
    await second.start();
    await until(() => ran.size === 100, 'the second process ran every job');
    // Handed back: not after ackWaitMs (30 s), at once.
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(second.transportStats()!.received).toBe(100);
  });

  it('stores an envelope once when its publish is sent again after a lost acknowledgement', async () => {
    const where = names.next();
    const consumer = bus({ transport: jetstream(where) });
    const got: number[] = [];
    consumer.registerEventHandler('dup', (e: BusEvent<number>) => {
      got.push(e.payload);
    });
    await consumer.start();
    const nc = await natsConnection();
    try {
      const js = jetstreamClient(nc);
      const options = resolveJetStreamOptions({ ...where, batchEvents: 5 });
      const out = new Outbound(options, 'json', SILENT_LOGGER);
      let calls = 0;
      let duplicates = 0;
      out.attach(async (subject, data, msgID) => {
        const ack = await js.publish(subject, data, { msgID });
        if (ack.duplicate) duplicates++;
        // The first envelope is stored, but its acknowledgement "never arrives".
        if (++calls === 1) throw new Error('ack lost');
      }, 1 << 20);
      const r = new RecordEncoder();
      for (let i = 0; i < 10; i++) {
        r.clear();
        r.flags = 0;
        r.text = String(i);
        r.payloadBytes = r.text.length;
        expect(out.offer('dup', 2, r, `e${i}`, Date.now())).toBe(true);
      }
      await out.flushed();
      expect(calls).toBe(3);
      expect(duplicates).toBe(1);
      expect(out.retries).toBe(1);
    } finally {
      await nc.close();
    }
    await until(() => got.length >= 10, 'the consumer got the events');
    await new Promise((r) => setTimeout(r, 200));
    expect(got.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('runs a command in the process that has its handler, with the CommandResult contract', async () => {
    const where = names.next();
    const server = bus({ transport: jetstream(where) });
    server.registerCommandHandler('square', (e: BusEvent<number>) => e.payload * e.payload);
    server.registerCommandHandler('bytes', (e: BusEvent<Uint8Array>) => e.payload.map((b) => b + 1));
    server.registerCommandHandler('who', () => 'server');
    server.registerCommandHandler('slow', () => new Promise((r) => setTimeout(() => r('late'), 500)));
    server.registerCommandHandler('fails', () => {
      throw new RangeError('out of stock');
    }, { name: 'reserve' });
    const breaker = new ResilientMessageBus({
      logger: false, pool: LEAN, transport: jetstream(where), retry: false, circuitBreaker: { minimumCalls: 1, failureRateThreshold: 0.5, recoveryTimeoutMs: 60_000 },
    });
    buses.push(breaker);
    breaker.registerCommandHandler('guarded', () => {
      throw new Error('down');
    }, { name: 'guard' });
    await Promise.all([server.start(), breaker.start()]);
    const caller = bus({ transport: jetstream(where) });
    caller.registerCommandHandler('who', () => 'caller');
    await caller.start();

    expect(await caller.execute('square', 12)).toEqual({ success: true, result: 144, attempts: 1 });
    const bytes = await caller.execute('bytes', new Uint8Array([1, 2, 3]));
    expect(bytes.result).toEqual(new Uint8Array([2, 3, 4]));
    // Its own handler first: the local fast path.
    expect((await caller.execute('who', null)).result).toBe('caller');

    const failed = await caller.execute('fails', {});
    expect(failed.success).toBe(false);
    expect(failed.error).toBeInstanceOf(HandlerFailedError);
    expect(failed.error).toMatchObject({ code: 'ERR_RINGBUS_HANDLER_FAILED', message: 'out of stock', handler: 'reserve', errorName: 'RangeError' });
    expect(failed.error!.stack).toMatch(/RangeError: out of stock/);

    const nobody = await caller.execute('nobody.home', 1);
    expect(nobody.error).toBeInstanceOf(NoHandlerError);
    expect(nobody.error!.message).toMatch(/nobody\.home/);

    const late = await caller.execute('slow', 1, { timeoutMs: 100 });
    expect(late.error).toBeInstanceOf(CommandTimeoutError);
    expect(late.error).toMatchObject({ code: 'ERR_RINGBUS_COMMAND_TIMEOUT', topic: 'slow', timeoutMs: 100 });

    expect((await caller.execute('guarded', 1)).error?.code).toBe('ERR_RINGBUS_HANDLER_FAILED');
    const open = await caller.execute('guarded', 1);
    expect(open.error).toBeInstanceOf(CircuitOpenError);
    expect(open.error).toMatchObject({ code: 'ERR_RINGBUS_CIRCUIT_OPEN', handler: 'guard' });
  });

  it('dead-letters into the cluster\'s dead-letter stream: visible in every process, replayed from another one', async () => {
    const where = names.next();
    const resilient = (extra: object = {}): MessageBus => {
      const b = new ResilientMessageBus({ logger: false, pool: LEAN, transport: jetstream(where), retry: { maxRetries: 1, initialDelayMs: 1, jitter: false }, ...extra });
      buses.push(b);
      return b;
    };
    const failing = resilient();
    failing.registerEventHandler('charge', (e: BusEvent<{ n: number }>) => {
      if (e.payload.n % 3 === 0) throw new Error(`card ${e.payload.n} declined`);
    }, { name: 'charger' });
    const deadLettered: string[] = [];
    failing.on('dead-letter', (entry) => deadLettered.push(entry.id));
    const healthy = resilient();
    const charged: number[] = [];
    // Another process with the same handler, which stays out of the competition until it replays (another topic).
    healthy.registerEventHandler('charge.other', () => undefined, { name: 'charger' });
    await Promise.all([failing.start(), healthy.start()]);
    const producer = bus({ transport: jetstream(where) });
    await producer.start();
    for (let n = 0; n < 30; n++) producer.publish('charge', { n });
    await producer.drain();
    await until(() => deadLettered.length === 10, 'ten deliveries dead-lettered');
    await failing.drain();
    expect(failing.stats()).toMatchObject({ deadLettered: 10, processed: 20 });
    // The other process sees them, as they are.
    await until(() => healthy.deadLetters.size === 10, 'the other process sees the ten dead letters');
    const seen = healthy.deadLetters.list();
    expect(seen.map((e) => e.id).sort()).toEqual([...deadLettered].sort());
    expect(seen[0]).toMatchObject({ handler: 'charger', attempts: 2, errorCode: 'ERR_RINGBUS_HANDLER_FAILED', event: { topic: 'charge' } });
    expect(seen.map((e) => (e.event.payload as { n: number }).n).sort((a, b) => a - b)).toEqual([0, 3, 6, 9, 12, 15, 18, 21, 24, 27]);

    // Replayed from the healthy process: its handler for topic 'charge' now runs them.
    healthy.registerEventHandler('charge', (e: BusEvent<{ n: number }>) => {
      charged.push(e.payload.n);
    }, { name: 'charger' });
    expect(await healthy.deadLetters.replay()).toBe(10);
    expect(charged.sort((a, b) => a - b)).toEqual([0, 3, 6, 9, 12, 15, 18, 21, 24, 27]);
    expect(healthy.deadLetters.size).toBe(0);
    await until(() => failing.deadLetters.size === 0, 'the failing process hears they were replayed');
    // A process that starts now finds none.
    const late = resilient();
    await late.start();
    expect(late.deadLetters.size).toBe(0);
  });

  it('keeps a retry in the stream: its attempt count, backoff and first failure survive the process that failed it', async () => {
    const where = names.next();
    const first = new ResilientMessageBus({ logger: false, pool: LEAN, transport: jetstream(where), retry: { maxRetries: 3, initialDelayMs: 400, jitter: false } });
    buses.push(first);
    const failedAt = new Map<string, number>();
    first.registerEventHandler('jobs', (e) => {
      failedAt.set(e.id, Date.now());
      throw new Error('first process cannot');
    }, { name: 'work' });
    await first.start();
    const producer = bus({ transport: jetstream(where) });
    await producer.start();
    for (let n = 0; n < 6; n++) producer.publish('jobs', { n });
    await producer.drain();
    await until(() => failedAt.size === 6, 'the first process failed every job once');
    // Its part is done once the retries are in the stream: it stops without waiting for them.
    await first.stop();
    expect(first.stats()).toMatchObject({ failed: 6, retried: 6, processed: 0, deadLettered: 0, abandoned: 0 });

    const second = new ResilientMessageBus({ logger: false, pool: LEAN, transport: jetstream(where), retry: { maxRetries: 1, initialDelayMs: 1, jitter: false } });
    buses.push(second);
    const ran: { id: string; attempt: number; at: number }[] = [];
    second.registerEventHandler('jobs', (e: BusEvent<{ n: number }>) => {
      ran.push({ id: e.id, attempt: e.attempt, at: Date.now() });
      if (e.payload.n % 2 === 0) throw new Error('second process cannot either');
    }, { name: 'work' });
    const dead: { id: string; attempts: number; firstAttemptAt: number }[] = [];
    second.on('dead-letter', (entry) => dead.push({ id: entry.event.id, attempts: entry.attempts, firstAttemptAt: entry.firstAttemptAt }));
    await second.start();
    await until(() => ran.length === 6 && dead.length === 3, 'the second process ran every retry');
    // Attempt 1 (the second try), no earlier than its backoff after the first failure.
    expect(ran.every((r) => r.attempt === 1)).toBe(true);
    expect(new Set(ran.map((r) => r.id))).toEqual(new Set(failedAt.keys()));
    for (const r of ran) expect(r.at - failedAt.get(r.id)!).toBeGreaterThanOrEqual(395);
    // Out of attempts in the second process: dead-lettered with both processes' attempts and the first failure's time.
    for (const d of dead) {
      expect(d.attempts).toBe(2);
      expect(Math.abs(d.firstAttemptAt - failedAt.get(d.id)!)).toBeLessThan(50);
    }
  });

  it('ringbus dlq list, count and replay work on the dead-letter stream: replay hands them back to the cluster', async () => {
    const where = names.next();
    const cli = (action: string, ...more: string[]): ReturnType<typeof ringbus> =>
      ringbus(['dlq', action, '--jetstream', '--stream', where.stream!, '--subject-prefix', where.subjectPrefix!, ...more]);
    let healthy = false;
    const ran: number[] = [];
    const attempts: number[] = [];
    const worker = new ResilientMessageBus({ logger: false, pool: LEAN, transport: jetstream(where), retry: { maxRetries: 1, initialDelayMs: 1 } });
    buses.push(worker);
    worker.registerEventHandler('mail', (e: BusEvent<{ n: number }>) => {
      attempts.push(e.attempt);
      if (!healthy) throw new Error(`smtp down for ${e.payload.n}`);
      ran.push(e.payload.n);
    }, { name: 'send' });
    await worker.start();
    for (let n = 0; n < 3; n++) worker.publish('mail', { n });
    await until(() => worker.stats().deadLettered === 3, 'three dead letters');
    await worker.drain();

    expect((await cli('count')).stdout).toBe('3\n');
    const list = await cli('list');
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/mail → send {2}attempts=2 {2}smtp down for 0/);
    expect(list.stdout).toMatch(/^3 dead letters$/m);
    const json = JSON.parse((await cli('list', '--json')).stdout) as { event: { payload: { n: number } } }[];
    expect(json.map((e) => e.event.payload.n).sort()).toEqual([0, 1, 2]);

    // Handed back while still failing: each runs both its attempts again (a new run, not mistaken for the first
    // one's retries), and is dead-lettered again.
    attempts.length = 0;
    expect((await cli('replay')).stdout).toBe('handed 3 dead letters back to the cluster\n');
    await until(() => attempts.length === 6 && worker.deadLetters.size === 3, 'the replayed ones failed both attempts again');
    expect(attempts.sort()).toEqual([0, 0, 0, 1, 1, 1]);

    healthy = true;
    const replayed = await cli('replay');
    expect(replayed.stdout).toBe('handed 3 dead letters back to the cluster\n');
    expect(replayed.code).toBe(0);
    await until(() => ran.length === 3, 'the running process ran them again');
    expect(ran.sort()).toEqual([0, 1, 2]);
    await until(() => worker.deadLetters.size === 0, 'the running process heard they were replayed');
  });

  it('a stopping process hands back, for each handler of a topic, only the deliveries it did not settle', async () => {
    const where = names.next();
    const first = bus({ transport: jetstream(where) });
    const g = gate();
    const settledFirst = { a: new Set<number>(), b: new Set<number>() };
    for (const h of ['a', 'b'] as const) {
      first.registerEventHandler('jobs', async (e: BusEvent<number>) => {
        // Each handler settles its first 40 deliveries here and holds the rest.
        if (e.payload >= 40) await g.wait();
        else settledFirst[h].add(e.payload);
      }, { name: h });
    }
    await first.start();
    const producer = bus({ transport: jetstream(where) });
    await producer.start();
    for (let n = 0; n < 100; n++) producer.publish('jobs', n);
    await producer.drain();
    await until(() => settledFirst.a.size === 40 && settledFirst.b.size === 40 && first.stats().queueSize === 120, 'each handler settled 40 and holds 60');
    await first.stop({ drain: false });
    g.open();

    const second = bus({ transport: jetstream(where) });
    const ran = { a: [] as number[], b: [] as number[] };
    for (const h of ['a', 'b'] as const) second.registerEventHandler('jobs', (e: BusEvent<number>) => void ran[h].push(e.payload), { name: h });
    await second.start();
    await until(() => ran.a.length === 60 && ran.b.length === 60, 'the second process ran the 60 of each handler');
    await second.drain();
    // Each handler's rest came back: none lost, none settled here run again.
    for (const h of ['a', 'b'] as const) expect(ran[h].sort((x, y) => x - y)).toEqual(Array.from({ length: 60 }, (_, i) => i + 40));
    expect(second.transportStats()!.received).toBe(120);
  });

  it('stops without waiting for deliveries its open circuit holds: they go back to the stream for another process', async () => {
    const where = names.next();
    const tripped = new ResilientMessageBus({
      logger: false, pool: LEAN, transport: jetstream(where), retry: false,
      circuitBreaker: { minimumCalls: 1, failureRateThreshold: 0.5, recoveryTimeoutMs: 60_000 },
    });
    buses.push(tripped);
    tripped.registerEventHandler('jobs', () => {
      throw new Error('dependency down');
    }, { name: 'work' });
    await tripped.start();
    const producer = bus({ transport: jetstream(where) });
    await producer.start();
    for (let n = 0; n < 5; n++) producer.publish('jobs', n);
    await producer.drain();
    await until(() => tripped.stats().held === 4 && tripped.stats().deadLettered === 1, 'one dead letter, four held by the open circuit');
    const stopping = performance.now();
    await tripped.stop();
    expect(performance.now() - stopping).toBeLessThan(5000);
    expect(tripped.stats()).toMatchObject({ deadLettered: 1, abandoned: 4 });

    const healthy = bus({ transport: jetstream(where) });
    const ran: number[] = [];
    healthy.registerEventHandler('jobs', (e: BusEvent<number>) => {
      ran.push(e.payload);
    }, { name: 'work' });
    await healthy.start();
    await until(() => ran.length === 4, 'another process ran the four held ones');
    // Only those: the delivery that settled (dead-lettered) in the stopped process does not run again.
    await healthy.drain();
    expect(healthy.transportStats()!.received).toBe(4);
    expect(new Set(ran).size).toBe(4);
    expect(tripped.transportStats()!.handedBack).toBe(4);
  });

  it('fails start() naming the servers when none answers, and the bus can be stopped', async () => {
    const log = memoryLogger();
    const b = bus({ transport: jetstream({ servers: 'nats://127.0.0.1:1', connectTimeoutMs: 300 }), logger: log });
    await expect(b.start()).rejects.toThrow(/cannot connect to NATS at nats:\/\/127\.0\.0\.1:1 \(transport\.jetstream\.servers\)/);
    await b.stop();
  });

  it('checks its options, naming the option and echoing the value', () => {
    expect(() => jetstream({ batchEvents: 0 })).toThrow(/transport\.jetstream\.batchEvents must be in \[1, 65536\], got 0/);
    expect(() => jetstream({ stream: 'a.b' })).toThrow(/transport\.jetstream\.stream may hold only letters.*got 'a\.b'/);
    expect(() => jetstream({ bogus: 1 } as never)).toThrow(/transport\.jetstream\.bogus is not an option/);
    expect(() => jetstream({ user: 'u' })).toThrow(/user and transport\.jetstream\.pass go together/);
    expect(() => new MessageBus({ transport: jetstream(), queue: { strategy: 'drop-oldest' } }))
      .toThrow(/queue\.strategy 'drop-oldest' cannot be used with a transport/);
    expect(() => new MessageBus({ transport: { kafka: {} } as never })).toThrow(/transport\.kafka is not an option \(allowed: jetstream\)/);
    const t = jetstream();
    new MessageBus({ transport: t, logger: false });
    expect(() => new MessageBus({ transport: t, logger: false })).toThrow(/already used by another bus/);
  });
});
