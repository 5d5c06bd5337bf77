/**
 * The JetStream transport when its server goes away and comes back: a
 * nats-server of this test's own (free port, file storage in a temp dir) is
 * SIGKILLed mid-stream while a producer bus keeps publishing, then restarted
 * on the same port and store. While it is down, publishes wait in the publish
 * window and fail visibly once it is full (publish() false, publishAsync()
 * rejecting with BackpressureError); every publish that was accepted is
 * processed once the server is back, with no help from the application.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BackpressureError, MessageBus, type BusEvent } from '../src/index.js';
import { jetstream } from '../src/jetstream/index.js';
import { OwnNatsServer } from './fixtures/jetstream_server.js';

const PUBLISH_WINDOW = 2000;
const ACK_WAIT_MS = 2000;

let server: OwnNatsServer | undefined;
const buses: MessageBus[] = [];

afterEach(async () => {
  await Promise.all(buses.splice(0).map((b) => b.stop({ drain: false }).catch(() => undefined)));
  await server?.dispose();
  server = undefined;
});

// Inline handlers only: no worker thread to start (minThreads: 0).
const make = (options: Parameters<typeof jetstream>[0], capacity = 65_536): MessageBus => {
  const b = new MessageBus({ logger: false, transport: jetstream(options), queue: { capacity }, pool: { minThreads: 0 } });
  buses.push(b);
  return b;
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 20 ms until it holds; fails naming `what` (and `detail()`) after `ms`, far beyond any run's need. */
async function waitUntil(check: () => boolean, what: string, detail: () => string = () => '', ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}${detail() === '' ? '' : `: ${detail()}`}`);
    await sleep(20);
  }
}

describe('JetStream transport across a server restart', () => {
  it('keeps every accepted publish through a server kill and restart, fails the rest visibly, and resumes consuming by itself', async () => {
    server = new OwnNatsServer();
    await server.start();
    const where = { servers: server.url, stream: 'RESTART', subjectPrefix: 'restart', storage: 'file' as const, ackWaitMs: ACK_WAIT_MS };
    const consumer = make({ ...where, batchEvents: 64 }, 256);
    const runs = new Map<number, number>();
    // From `holding` on, deliveries wait for the gate (opened once the server is back): the consumer holds them through the outage.
    let holding = false;
    let held = 0;
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    consumer.registerEventHandler('ticks', async (e: BusEvent<{ n: number }>) => {
      if (holding) {
        held++;
        await gate;
      }
      runs.set(e.payload.n, (runs.get(e.payload.n) ?? 0) + 1);
    }, { name: 'count' });
    await consumer.start();
    const producer = make({ ...where, publishWindow: PUBLISH_WINDOW, publishTimeoutMs: 1000 });
    await producer.start();

    const accepted = new Set<number>();
    const refused = new Set<number>();
    const otherErrors: unknown[] = [];
    let n = 0;
    /** One tick: `count` events through publish(), and one through publishAsync() (waiting up to `asyncTimeoutMs`). */
    const tick = async (count: number, asyncTimeoutMs: number): Promise<{ falses: number; timeouts: number }> => {
      let falses = 0;
      let timeouts = 0;
      for (let i = 0; i < count; i++) {
        const k = n++;
        if (producer.publish('ticks', { n: k })) accepted.add(k);
        else {
          refused.add(k);
          falses++;
        }
      }
      const k = n++;
      try {
        expect(await producer.publishAsync('ticks', { n: k }, { timeoutMs: asyncTimeoutMs })).toBe(true);
        accepted.add(k);
      } catch (err) {
        refused.add(k);
        if (err instanceof BackpressureError && err.topic === 'ticks') timeouts++;
        else otherErrors.push(err);
      }
      return { falses, timeouts };
    };
    const processed = (): number => [...accepted].filter((k) => runs.has(k)).length;

    // Before: a steady stream, consumed as it comes.
    const deadline = Date.now() + 20_000;
    while (accepted.size < 3000 || runs.size < 1000) {
      if (Date.now() > deadline) throw new Error(`no steady stream: ${accepted.size} accepted, ${runs.size} processed`);
      await tick(50, 5000);
      await sleep(5);
    }
    // Mid-stream: the consumer holds deliveries, and the producer has envelopes sent and not yet acknowledged.
    holding = true;
    await tick(200, 5000);
    await waitUntil(() => held > 0, 'the consumer holds deliveries');
    await tick(200, 5000);
    await new Promise((r) => setImmediate(r));
    const atKill = { held, pending: producer.transportStats()!.publishPending, open: consumer.stats().queueSize };
    await server.kill('SIGKILL');
    expect(atKill.pending).toBeGreaterThan(0);
    const acceptedBefore = accepted.size;

    // Down: publishing goes on; the window fills, then publishes are refused, visibly.
    let falses = 0;
    let timeouts = 0;
    const downUntil = Date.now() + 1500;
    while (Date.now() < downUntil) {
      const r = await tick(50, 50);
      falses += r.falses;
      timeouts += r.timeouts;
      expect(producer.transportStats()!.publishPending).toBeLessThanOrEqual(PUBLISH_WINDOW);
      await sleep(5);
    }
    expect(otherErrors).toEqual([]);
    expect(falses).toBeGreaterThan(0);
    expect(timeouts).toBeGreaterThan(0);
    // What was accepted while down waits in the window: nothing was stored, nothing dropped.
    const acceptedDown = accepted.size - acceptedBefore;
    expect(acceptedDown).toBeGreaterThan(0);
    expect(acceptedDown).toBeLessThanOrEqual(PUBLISH_WINDOW);
    expect(producer.stats()).toMatchObject({ published: accepted.size, rejected: refused.size });
    // Every accepted event is stored or still waiting, and those accepted while down are all waiting.
    const down = producer.transportStats()!;
    expect(down.publishStored + down.publishPending).toBe(accepted.size);
    expect(down.publishPending).toBeGreaterThanOrEqual(acceptedDown);

    // A publishAsync given time waits for room through the outage (not settled while the server is down).
    const waiter = n++;
    let waited: boolean | Error | undefined;
    const waiting = producer.publishAsync('ticks', { n: waiter }, { timeoutMs: 20_000 }).then((ok) => (waited = ok), (err: Error) => (waited = err));
    await sleep(100);
    expect(waited).toBeUndefined();

    // Back on the same port and store: the buses reconnect by themselves, the window empties, consuming resumes.
    await server.start();
    openGate();
    await waiting;
    expect(waited).toBe(true);
    accepted.add(waiter);
    // More publishAsync callers wait for room (the window stays full for a while) and are accepted.
    const after = Date.now();
    for (let i = 0; i < 20; i++) await tick(50, 15_000);
    await producer.drain();
    expect(producer.stats()).toMatchObject({ published: accepted.size, rejected: refused.size });
    expect(producer.transportStats()).toMatchObject({ publishPending: 0, publishStored: accepted.size });
    await waitUntil(() => processed() === accepted.size, 'every accepted event was processed',
      () => `${processed()} of ${accepted.size}; consumer ${JSON.stringify(consumer.transportStats())}`);
    // Refused publishes went nowhere.
    expect([...runs.keys()].filter((k) => !accepted.has(k))).toEqual([]);
    expect(otherErrors).toEqual([]);
    expect(producer.transportStats()!.reconnects).toBeGreaterThanOrEqual(1);
    expect(consumer.transportStats()!.reconnects).toBeGreaterThanOrEqual(1);
    const dups = [...runs.values()].filter((c) => c > 1).length;
    if (process.env.RINGBUS_TEST_JETSTREAM_STATS) console.log(JSON.stringify({ atKill, accepted: accepted.size, refused: refused.size, acceptedBefore, acceptedDown, falses, timeouts, dups, resumeMs: Date.now() - after, producer: producer.transportStats(), consumer: consumer.transportStats() }));
  });

  /*
   * A server that comes back without the stream and the handlers' consumers (storage 'memory', a lost store, a
   * stream or consumer deleted by an operator): after the reconnect the transport makes them again, holding
   * publishes back until the consumers exist (Interest retention would drop what is stored before them).
   */
  it('makes the stream and its consumers again when the server comes back without them (storage: memory)', async () => {
    server = new OwnNatsServer();
    await server.start();
    const where = { servers: server.url, stream: 'RESTART_MEM', subjectPrefix: 'restart_mem', storage: 'memory' as const, ackWaitMs: ACK_WAIT_MS };
    // One bus both publishes and consumes (its events go through the stream like any other process's).
    const bus = make({ ...where, publishTimeoutMs: 500 });
    const got = new Set<number>();
    bus.registerEventHandler('ticks', (e: BusEvent<number>) => {
      got.add(e.payload);
    }, { name: 'count' });
    await bus.start();
    bus.publish('ticks', -1);
    await waitUntil(() => got.has(-1), 'the first event was processed');
    await server.kill('SIGTERM');
    await server.start();
    // Events published once it is back (a new one every 200 ms, as the stream and the consumer may come back in either order): one gets through.
    let n = 0;
    const deadline = Date.now() + 5000;
    while (![...got].some((k) => k >= 0)) {
      if (Date.now() > deadline) throw new Error(`nothing published after the restart was processed: ${JSON.stringify(bus.transportStats())}`);
      bus.publish('ticks', n++);
      await sleep(200);
    }
    expect(bus.transportStats()!.reconnects).toBeGreaterThanOrEqual(1);
  });
});
