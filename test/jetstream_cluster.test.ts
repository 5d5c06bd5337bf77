/**
 * The JetStream transport across real processes: one producer and three
 * consumer processes (each a MessageBus with the same four worker handlers,
 * two per topic, competing on the handlers' durable consumers), against the
 * shared server (127.0.0.1:4222). One consumer is SIGKILLed mid-stream: what
 * it held unacknowledged reaches the survivors after ackWaitMs, so every
 * (event, handler) delivery is processed at least once, and the only
 * duplicates are deliveries the killed process had taken.
 *
 * Each handler appends `<handler> <n> <event id> <attempt>` to a file per
 * process (and worker thread) before it returns, so a delivery is on disk
 * before its envelope can be acknowledged, and the killed process's records
 * survive it (see test/fixtures/jetstream_cluster_kit.ts for the processes and
 * the ledger). Dead letters across processes: test/jetstream_cluster_dlq.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import type { BusStats, TransportStats } from '../src/index.js';
import { consumerName } from '../src/jetstream/subjects.js';
import { natsConnection, StreamNames, until } from './fixtures/jetstream_kit.js';
import { Ledger, Proc, waitUntil } from './fixtures/jetstream_cluster_kit.js';
import { TOPICS, topicOf } from './fixtures/jetstream_cluster_node.js';

const EVENTS = 20_000;
const BATCH_EVENTS = 32;
const CAPACITY = 64;
const ACK_WAIT_MS = 3000;
/** The victim is killed once it processed this many deliveries (of ~13k it would have). */
const KILL_AFTER = 1000;
const TOPIC_OF_HANDLER = new Map(Object.entries(TOPICS).flatMap(([topic, hs]) => hs.map((h) => [h, topic] as const)));

interface Done {
  stats: BusStats;
  transport: TransportStats;
}

const names = new StreamNames();
const procs: Proc[] = [];
let dir: string | undefined;

afterEach(async () => {
  for (const p of procs.splice(0)) {
    if (p.alive) p.child.kill('SIGKILL');
    await p.exited;
  }
  await names.cleanup();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('JetStream transport across processes', () => {
  it('runs every (event, handler) delivery at least once when a consumer process is SIGKILLed mid-stream; the only duplicates are what it held', async () => {
    const where = names.next();
    dir = mkdtempSync(join(tmpdir(), 'rb-js-cluster-'));
    const ledger = new Ledger(dir);
    const transport = { ...where, ackWaitMs: ACK_WAIT_MS, batchEvents: BATCH_EVENTS };
    const labels = ['c0', 'c1', 'c2'];
    const consumers = labels.map((label) => new Proc(label, 'consumer', { transport, capacity: CAPACITY, threads: 1 }, { RB_CLUSTER_OUT: join(dir!, label) }));
    procs.push(...consumers);
    // Consumers exist before the first publish (deliver policy 'new'; Interest retention keeps nothing nobody is interested in).
    await Promise.all(consumers.map((c) => c.waitFor('ready', 'its consumers are in place')));

    // Published much faster than three consumer processes on two cores take it: a backlog builds, so each process
    // holds all the envelopes it may (queue.capacity fed, and a fetch ahead per handler) when the victim dies.
    const producer = new Proc('producer', 'producer', { transport, events: EVENTS, perTick: 1000, tickMs: 1 });
    procs.push(producer);
    const [victim, ...survivors] = consumers;
    await waitUntil(() => ledger.refresh().of(victim.label).length >= KILL_AFTER, `${victim.label} processed ${KILL_AFTER} deliveries`,
      () => `${ledger.of(victim.label).length} so far; ${victim.stderr}${producer.stderr}`, 20_000, 10);
    victim.child.kill('SIGKILL');
    await victim.exited;
    const victimTook = ledger.refresh().of(victim.label).length;
    const processedAtKill = ledger.total;
    // Long before the end: most deliveries were still to come.
    expect(processedAtKill).toBeLessThan(EVENTS * 2 * 0.5);

    const produced = await producer.waitFor('done', 'every event was stored') as unknown as Done;
    // Every (handler, n) pair recorded by some process; the victim's share only after ackWaitMs.
    const pairs = (): number => {
      const seen = new Set<string>();
      for (const recs of ledger.refresh().byLabel.values()) for (const r of recs) seen.add(`${r.handler} ${r.n}`);
      return seen.size;
    };
    let covered = 0;
    await waitUntil(() => (covered = pairs()) === EVENTS * 2, 'every delivery was processed', () => `${covered} of ${EVENTS * 2} pairs`, 20_000, 100);
    // The victim may have recorded every delivery of the batches it held and died before acknowledging them: those
    // reach a survivor only after ackWaitMs. Stop the survivors once they did (nothing left unacknowledged).
    const probe = await natsConnection();
    try {
      const jsm = await jetstreamManager(probe);
      await until(async () => {
        for (const [handler, topic] of TOPIC_OF_HANDLER) {
          const info = await jsm.consumers.info(where.stream!, consumerName(where.subjectPrefix!, topic, handler));
          if (info.num_pending !== 0 || info.num_ack_pending !== 0) return false;
        }
        return true;
      }, 'the survivors took and acknowledged what the victim held', 20_000);
    } finally {
      await probe.close();
    }
    for (const s of survivors) s.send('stop');
    const reports = await Promise.all(survivors.map(async (s) => (await s.waitFor('done', 'it stopped')) as unknown as Done));
    await Promise.all(survivors.map((s) => s.exited));
    ledger.refresh();
    // The killed process recorded nothing after its kill (a worker thread cannot outlive it).
    expect(ledger.of(victim.label).length).toBe(victimTook);

    // The producer: every event accepted and stored once.
    expect(produced.stats).toMatchObject({ published: EVENTS, rejected: 0 });
    expect(produced.transport).toMatchObject({ publishPending: 0, publishStored: EVENTS });

    // Who processed each (handler, n), and the event ids: one id per n, EVENTS distinct.
    const who = new Map<string, string[]>();
    const idOf = new Map<number, string>();
    const perHandler = new Map<string, Set<number>>();
    const wrong: string[] = [];
    for (const [label, recs] of ledger.byLabel) {
      for (const r of recs) {
        // A handler runs only for its topic's events, and an event keeps its id everywhere.
        if (TOPIC_OF_HANDLER.get(r.handler) !== topicOf(r.n) || r.n >= EVENTS) wrong.push(`${label}: ${r.handler} ran event ${r.n}`);
        if (idOf.get(r.n) === undefined) idOf.set(r.n, r.id);
        else if (idOf.get(r.n) !== r.id) wrong.push(`${label}: event ${r.n} has ids ${idOf.get(r.n)} and ${r.id}`);
        const key = `${r.handler} ${r.n}`;
        const ls = who.get(key);
        if (ls === undefined) who.set(key, [label]);
        else ls.push(label);
        let set = perHandler.get(r.handler);
        if (set === undefined) perHandler.set(r.handler, (set = new Set()));
        set.add(r.n);
      }
    }
    expect(wrong.slice(0, 10)).toEqual([]);
    expect(idOf.size).toBe(produced.stats.published);
    expect(new Set(idOf.values()).size).toBe(EVENTS);
    // Per handler, distinct processed = published for its topic.
    for (const [handler, topic] of TOPIC_OF_HANDLER) {
      const published = Array.from({ length: EVENTS }, (_, n) => n).filter((n) => topicOf(n) === topic).length;
      expect(perHandler.get(handler)?.size, handler).toBe(published);
    }
    expect(who.size).toBe(EVENTS * 2);

    // Duplicates: each is one run in the victim (which died before acknowledging its envelope) and one in a survivor.
    const duplicates = [...who].filter(([, ls]) => ls.length > 1);
    const badDuplicates = duplicates.filter(([, ls]) => ls.length !== 2 || ls.filter((l) => l === victim.label).length !== 1);
    expect(badDuplicates.slice(0, 10)).toEqual([]);
    // Bounded by what the victim took, and by what the survivors got redelivered (whole envelopes of at most BATCH_EVENTS).
    const redelivered = reports.reduce((sum, r) => sum + r.transport.redelivered, 0);
    expect(duplicates.length).toBeLessThanOrEqual(victimTook);
    expect(duplicates.length).toBeLessThanOrEqual(redelivered * BATCH_EVENTS);
    // The victim held envelopes when it died (there was a backlog): the survivors got them, after ackWaitMs.
    expect(redelivered).toBeGreaterThan(0);

    // Survivors: each delivery they took ran once, none failed, none was handed back at their (draining) stop.
    for (const [k, r] of reports.entries()) {
      const recorded = ledger.of(survivors[k].label).length;
      expect(r.transport).toMatchObject({ received: recorded, handedBack: 0 });
      expect(r.stats).toMatchObject({ processed: recorded, failed: 0, queueSize: 0 });
    }
    const total = ledger.total;
    expect(total).toBe(EVENTS * 2 + duplicates.length);

    // Nothing is left on the server: every handler's consumer acknowledged everything, so Interest retention emptied
    // the stream (the server applies acks and removals asynchronously: polled).
    const nc = await natsConnection();
    try {
      const jsm = await jetstreamManager(nc);
      let left = '';
      await until(async () => {
        const states: string[] = [];
        for (const [handler, topic] of TOPIC_OF_HANDLER) {
          const info = await jsm.consumers.info(where.stream!, consumerName(where.subjectPrefix!, topic, handler));
          if (info.num_pending !== 0 || info.num_ack_pending !== 0) states.push(`${handler}: ${info.num_pending} pending, ${info.num_ack_pending} unacknowledged`);
        }
        const messages = (await jsm.streams.info(where.stream!)).state.messages;
        if (messages !== 0) states.push(`${messages} messages in the stream`);
        left = states.join('; ');
        return left === '';
      }, 'the server holds nothing', 10_000).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}: ${left}`);
      });
    } finally {
      await nc.close();
    }
    if (process.env.RINGBUS_TEST_JETSTREAM_STATS) console.log(JSON.stringify({ victimTook, processedAtKill, duplicates: duplicates.length, redelivered, total }));
  }, 60_000); // ~10 s here; four processes starting on two cores take much longer when the machine is busy
});
