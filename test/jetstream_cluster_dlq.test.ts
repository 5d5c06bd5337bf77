/**
 * Dead letters of the JetStream transport across real processes, against the
 * shared server (127.0.0.1:4222): permanent failures end in the dead-letter
 * stream (`<stream>_DLQ`) exactly once each, even when a consumer process is
 * SIGKILLed mid-stream, and are replayed from a process that did not fail
 * them, also when a process dies between storing a dead letter and
 * acknowledging its delivery (the second test does that on purpose).
 *
 * Three consumer processes (ResilientMessageBus, the four worker handlers of
 * test/fixtures/jetstream_cluster_handlers.mjs, maxRetries 2) compete for the
 * deliveries; handlers ship, index and archive fail on every attempt for the
 * events whose n is a multiple of 25, everything else succeeds (bill never
 * fails: an event can fail for one handler and not for another). Retries go
 * through the stream, so a delivery's attempts run in whichever process
 * fetches them; one consumer is SIGKILLed mid-stream and what it held reaches
 * the survivors after ackWaitMs. The dead-letter stream is then read
 * directly; a process that ran none of the deliveries (started after the
 * kill, its handlers registered only to replay, without the failure rule)
 * replays every dead letter, and a process started afterwards finds none.
 * See test/fixtures/jetstream_cluster_kit.ts for the processes and the
 * ledger of handler runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { MessageBus, type BusStats, type TransportStats } from '../src/index.js';
import type { DeadLetterEntry } from '../src/dead_letter/dead_letter_entry.js';
import { jetstream } from '../src/jetstream/index.js';
import { topicSubject } from '../src/jetstream/subjects.js';
import { natsConnection, StreamNames, until } from './fixtures/jetstream_kit.js';
import { Ledger, Proc, readStream, waitUntil, type StoredMessage } from './fixtures/jetstream_cluster_kit.js';
import { TOPICS, topicOf } from './fixtures/jetstream_cluster_node.js';

const EVENTS = 3000;
const BATCH_EVENTS = 32;
const CAPACITY = 64;
const ACK_WAIT_MS = 3000;
const RETRY = { maxRetries: 2, initialDelayMs: 20, jitter: false };
const FAIL = { every: 25, handlers: ['ship', 'index', 'archive'] };
/** The victim is killed once its handlers ran this many times (of ~2.1k it would have). */
const KILL_AFTER = 300;
const TOMBSTONE_HEADER = 'Ringbus-Dead-Letter';

const TOPIC_OF_HANDLER = new Map(Object.entries(TOPICS).flatMap(([topic, hs]) => hs.map((h) => [h, topic] as const)));
/** `<handler> <n>`: one delivery. */
const key = (handler: string, n: number): string => `${handler} ${n}`;
const fails = (handler: string, n: number): boolean => FAIL.handlers.includes(handler) && n % FAIL.every === 0;
/** Every delivery that fails for good. */
const FAILING = new Set(Array.from({ length: EVENTS }, (_, n) => n).flatMap((n) => TOPICS[topicOf(n)].filter((h) => fails(h, n)).map((h) => key(h, n))));

interface Done {
  stats: BusStats;
  transport: TransportStats;
  deadLetters: number;
}

/** A dead letter as the test reads it from the dead-letter stream. */
interface Stored {
  subject: string;
  entry: DeadLetterEntry;
}

/** The dead-letter stream's messages: live entries (`add` lines) and tombstones (the header, no body). */
function deadLetterState(prefix: string, messages: StoredMessage[]): { live: Stored[]; tombstones: StoredMessage[]; bad: string[] } {
  const live: Stored[] = [];
  const tombstones: StoredMessage[] = [];
  const bad: string[] = [];
  const perSubject = new Map<string, number>();
  for (const m of messages) {
    perSubject.set(m.subject, (perSubject.get(m.subject) ?? 0) + 1);
    if (m.headers[TOMBSTONE_HEADER] !== undefined) {
      if (m.data !== '') bad.push(`tombstone ${m.seq} has a body`);
      tombstones.push(m);
      continue;
    }
    const line = JSON.parse(m.data) as { op: string; entry: DeadLetterEntry & { payload: { json: unknown } } };
    if (line.op !== 'add') bad.push(`message ${m.seq} is a ${line.op}`);
    // One subject per entry: `<prefix>.dlq.e.<entry id>`.
    if (m.subject !== `${prefix}.dlq.e.${topicSubject(line.entry.id)}`) bad.push(`entry ${line.entry.id} is on subject ${m.subject}`);
    live.push({ subject: m.subject, entry: { ...line.entry, event: { ...line.entry.event, payload: line.entry.payload.json } } });
  }
  // At most one message per subject (max_msgs_per_subject 1: a tombstone replaces its entry).
  for (const [subject, count] of perSubject) if (count > 1) bad.push(`${count} messages on ${subject}`);
  return { live, tombstones, bad };
}

const names = new StreamNames();
const procs: Proc[] = [];
const buses: MessageBus[] = [];
let dir: string | undefined;

afterEach(async () => {
  for (const p of procs.splice(0)) {
    if (p.alive) p.child.kill('SIGKILL');
    await p.exited;
  }
  await Promise.all(buses.splice(0).map((b) => b.stop({ drain: false }).catch(() => undefined)));
  await names.cleanup();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('JetStream dead letters across processes', () => {
  it('dead-letters each permanent failure once when a consumer process is SIGKILLed mid-stream, and replays them all from another process', async () => {
    const t0 = Date.now();
    const phases: Record<string, number> = {};
    const where = names.next();
    const prefix = where.subjectPrefix!;
    const dlqStream = `${where.stream}_DLQ`;
    dir = mkdtempSync(join(tmpdir(), 'rb-js-dlq-'));
    const ledger = new Ledger(dir);
    const transport = { ...where, ackWaitMs: ACK_WAIT_MS, batchEvents: BATCH_EVENTS };
    const settings = { transport, capacity: CAPACITY, threads: 1, retry: RETRY };
    const labels = ['c0', 'c1', 'c2'];
    const consumers = labels.map((label) => new Proc(label, 'consumer', settings, { RB_CLUSTER_OUT: join(dir!, label), RB_CLUSTER_FAIL: JSON.stringify(FAIL) }));
    procs.push(...consumers);
    // Consumers exist before the first publish (deliver policy 'new'; Interest retention keeps nothing nobody is interested in).
    const ready = await Promise.all(consumers.map((c) => c.waitFor('ready', 'its consumers are in place')));
    expect(ready.map((r) => r.deadLetters)).toEqual([0, 0, 0]);
    phases.started = Date.now() - t0;

    // Published faster than three processes on two cores take it: a backlog builds, and the victim holds what it may when it dies.
    const producer = new Proc('producer', 'producer', { transport, events: EVENTS, perTick: 500, tickMs: 1 });
    procs.push(producer);
    const [victim, ...survivors] = consumers;
    await waitUntil(() => ledger.refresh().of(victim.label).length >= KILL_AFTER, `${victim.label} ran ${KILL_AFTER} deliveries`,
      () => `${ledger.of(victim.label).length} so far; ${victim.stderr}${producer.stderr}`, 20_000, 10);
    const killedAt = Date.now();
    victim.child.kill('SIGKILL');
    await victim.exited;
    phases.killed = Date.now() - t0;
    const victimRan = ledger.refresh().of(victim.label).length;
    const runsAtKill = ledger.total;
    // Mid-stream: a good part of the runs was still to come (the victim's share may lag: the processes do not start
    // their pools equally fast).
    expect(runsAtKill).toBeLessThan((EVENTS * 2 + FAILING.size * RETRY.maxRetries) * 0.75);
    // The process that will replay the dead letters: started now (its start overlaps the survivors' wait for what the
    // victim held), with the same handlers registered only when it is to replay, so it runs none of the deliveries
    // (without the failure rule, it would succeed them). It loads the dead letters stored so far at start and hears
    // of the others through its tail of the dead-letter stream.
    const replayer = new Proc('r', 'consumer', { ...settings, handlers: false }, { RB_CLUSTER_OUT: join(dir, 'r') });
    procs.push(replayer);

    const produced = await producer.waitFor('done', 'every event was stored') as unknown as Done;
    expect(produced.stats).toMatchObject({ published: EVENTS, rejected: 0 });
    expect(produced.transport).toMatchObject({ publishPending: 0, publishStored: EVENTS });

    // The end of the work: every delivery ran, and the failing ones their last attempt; then the event stream
    // empties, since an envelope (a batch, or a retry) is acknowledged only once its deliveries settled, a retry
    // is stored before the attempt that made it is acknowledged, and a dead letter before its delivery's envelope
    // is. The victim's unacknowledged envelopes stay in it until survivors got them (after ackWaitMs) and settled them.
    const nc = await natsConnection();
    try {
      const jsm = await jetstreamManager(nc);
      const progress = (): string => {
        const firstRuns = new Set<string>();
        const lastRuns = new Set<string>();
        for (const recs of ledger.refresh().byLabel.values()) {
          for (const r of recs) {
            if (r.attempt === 0) firstRuns.add(key(r.handler, r.n));
            if (r.attempt === RETRY.maxRetries) lastRuns.add(key(r.handler, r.n));
          }
        }
        return `${firstRuns.size} of ${EVENTS * 2} deliveries ran, ${lastRuns.size} of ${FAILING.size} failing ones ran their last attempt`;
      };
      const complete = `${EVENTS * 2} of ${EVENTS * 2} deliveries ran, ${FAILING.size} of ${FAILING.size} failing ones ran their last attempt`;
      let seen = '';
      await waitUntil(() => (seen = progress()) === complete, 'every delivery ran', () => seen, 30_000, 100);
      let left = -1;
      await until(async () => (left = (await jsm.streams.info(where.stream!)).state.messages) === 0, 'the event stream is empty', 20_000)
        .catch((err: unknown) => {
          throw new Error(`${(err as Error).message}: ${left} messages left`);
        });
      phases.settled = Date.now() - t0;

      // Who ran what (before the replay, only c0..c2 ran anything); an event keeps its id everywhere.
      const idOf = new Map<number, string>();
      /** `<handler> <n> <attempt>` → the processes that ran it. */
      const ranBy = new Map<string, string[]>();
      const wrong: string[] = [];
      for (const [label, recs] of ledger.refresh().byLabel) {
        for (const r of recs) {
          if (TOPIC_OF_HANDLER.get(r.handler) !== topicOf(r.n) || r.n >= EVENTS) wrong.push(`${label}: ${r.handler} ran event ${r.n}`);
          if (idOf.get(r.n) === undefined) idOf.set(r.n, r.id);
          else if (idOf.get(r.n) !== r.id) wrong.push(`${label}: event ${r.n} has ids ${idOf.get(r.n)} and ${r.id}`);
          // Succeeding deliveries are never retried; failing ones stop at their last attempt.
          if (r.attempt > (fails(r.handler, r.n) ? RETRY.maxRetries : 0)) wrong.push(`${label}: ${r.handler} ran event ${r.n} at attempt ${r.attempt}`);
          const k = `${key(r.handler, r.n)} ${r.attempt}`;
          ranBy.set(k, [...(ranBy.get(k) ?? []), label]);
        }
      }
      expect(wrong.slice(0, 10)).toEqual([]);
      expect(ledger.of(replayer.label)).toEqual([]);
      expect(new Set(idOf.values()).size).toBe(EVENTS);
      // Every attempt of every failing delivery ran (so each one ran at least maxRetries + 1 times). An attempt ran
      // more than once only when the victim ran it and died before acknowledging it: once there, once in a survivor.
      const missing = [...FAILING].flatMap((k) => Array.from({ length: RETRY.maxRetries + 1 }, (_, a) => `${k} ${a}`)).filter((k) => !ranBy.has(k));
      expect(missing).toEqual([]);
      const reruns = [...ranBy].filter(([, ls]) => ls.length > 1);
      expect(reruns.filter(([, ls]) => ls.length !== 2 || ls.filter((l) => l === victim.label).length !== 1).slice(0, 10)).toEqual([]);
      const lastRanBy = (handler: string, n: number): string[] => ranBy.get(`${key(handler, n)} ${RETRY.maxRetries}`) ?? [];

      // Which process dead-lettered each entry (each prints its entry ids, the victim up to its death).
      const writer = new Map<string, string[]>();
      for (const c of consumers) {
        for (const l of c.all('deadLetter')) {
          const d = l.deadLetter as { id: string };
          writer.set(d.id, [...(writer.get(d.id) ?? []), c.label]);
        }
      }
      const writerOf = (id: string): string => (writer.get(id) ?? []).join('+');

      // The dead-letter stream, read directly: entries only (nothing replayed yet), one message per subject.
      const before = deadLetterState(prefix, await readStream(nc, dlqStream));
      expect(before.bad).toEqual([]);
      expect(before.tombstones).toEqual([]);
      const nOf = (entry: DeadLetterEntry): number => (entry.event.payload as { n: number }).n;
      const byDelivery = new Map<string, DeadLetterEntry[]>();
      for (const { entry } of before.live) {
        const k = `${entry.event.id} ${key(entry.handler, nOf(entry))}`;
        byDelivery.set(k, [...(byDelivery.get(k) ?? []), entry]);
      }
      // A dead letter for every failing (event, handler) delivery, none for a succeeding one.
      expect(new Set(before.live.map(({ entry }) => key(entry.handler, nOf(entry))))).toEqual(FAILING);
      // Exactly one each. The victim may have stored the dead letter of a last attempt and died before acknowledging
      // that attempt's message; a survivor, given the message after ackWaitMs, ran the last attempt again and wrote
      // the dead letter again: under the same id (derived from the delivery), so on the same subject, which keeps one.
      const show = ([k, es]: [string, DeadLetterEntry[]]): string => `${k}: ${es.length} (${es.map((e) => `${e.id} by ${writerOf(e.id) || '?'} ` +
        `at kill${e.lastAttemptAt >= killedAt ? '+' : ''}${e.lastAttemptAt - killedAt}ms`).join(', ')}; last attempt ran in ${lastRanBy(es[0].handler, nOf(es[0])).join(', ')})`;
      expect([...byDelivery].filter(([, es]) => es.length !== 1).map(show)).toEqual([]);
      const live = before.live.length;
      expect(live).toBe(FAILING.size);

      // Each dead letter, as stored:
      // - attempts is exactly maxRetries + 1. The attempt number travels with the delivery (in the retry message),
      //   not with the runs: a run the victim made and never acknowledged is run again by a survivor at the same
      //   attempt number, so the kill adds runs (reruns, above) but never an attempt. What a dead letter cannot
      //   say is how many times its handler ran: at least maxRetries + 1.
      // - its first and last failure are at least the two backoffs apart (20 + 40 ms, each due at most 5 ms early),
      //   also when its attempts ran in different processes: the first failure's time travels with the retries.
      // - it was written by a process that ran the last attempt: one, or two when the victim wrote it, died before
      //   acknowledging, and a survivor ran that last attempt again (and wrote the same entry again).
      const badEntries: string[] = [];
      for (const { entry } of before.live) {
        const n = nOf(entry);
        const what = `${key(entry.handler, n)} (${entry.id})`;
        if (entry.attempts !== RETRY.maxRetries + 1) badEntries.push(`${what}: attempts ${entry.attempts}`);
        if (entry.event.id !== idOf.get(n) || entry.event.topic !== topicOf(n)) badEntries.push(`${what}: event ${JSON.stringify(entry.event)}`);
        if (entry.errorCode !== 'ERR_RINGBUS_HANDLER_FAILED' || entry.error !== `${entry.handler} refuses event ${n}`) badEntries.push(`${what}: error ${entry.errorCode} ${entry.error}`);
        if (entry.lastAttemptAt - entry.firstAttemptAt < 50) badEntries.push(`${what}: failed first at ${entry.firstAttemptAt}, last at ${entry.lastAttemptAt}`);
        const by = writer.get(entry.id) ?? [];
        const ranLast = lastRanBy(entry.handler, n);
        const rewritten = by.length === 2 && by.includes(victim.label) && by.every((l) => ranLast.includes(l));
        if (!(by.length === 1 && ranLast.includes(by[0])) && !rewritten) badEntries.push(`${what}: written by ${by.join(', ')}`);
      }
      expect(badEntries.slice(0, 10)).toEqual([]);
      // The failures crossed processes: deliveries whose attempts ran in more than one, dead letters from more than one.
      const failingIn = (k: string): Set<string> => new Set(Array.from({ length: RETRY.maxRetries + 1 }, (_, a) => ranBy.get(`${k} ${a}`) ?? []).flat());
      const crossed = [...FAILING].filter((k) => failingIn(k).size > 1).length;
      expect(crossed).toBeGreaterThan(0);
      const writers = new Set(before.live.map(({ entry }) => writer.get(entry.id)!.at(-1)));
      expect(writers.size).toBeGreaterThan(1);
      // The victim took part: it ran attempts of failing deliveries before it died, and survivors took them over from
      // there to their dead letters (attempt count and first failure carried by the stream).
      const victimFailed = ledger.of(victim.label).filter((r) => fails(r.handler, r.n)).length;
      expect(victimFailed).toBeGreaterThan(0);
      const takenOver = before.live.filter(({ entry }) => failingIn(key(entry.handler, nOf(entry))).has(victim.label) &&
        writer.get(entry.id)!.at(-1) !== victim.label).length;
      expect(takenOver).toBeGreaterThan(0);

      // Every process sees the cluster's dead letters: the survivors, and the replayer (it never failed any).
      // The tails apply what they read asynchronously: polled.
      const sees = async (p: Proc, size: number): Promise<void> => {
        let status: unknown;
        await until(async () => ((status = (await p.ask('status', 'status')).status) as { deadLetters: number }).deadLetters === size,
          `${p.label} sees ${size} dead letters`, 10_000).catch((err: unknown) => {
          throw new Error(`${(err as Error).message}: ${JSON.stringify(status)}`);
        });
      };
      await replayer.waitFor('ready', 'its consumers are in place');
      for (const p of [...survivors, replayer]) await sees(p, live);
      phases.replayerReady = Date.now() - t0;

      // Replay from the process that did not fail them, with the same handlers (names, topics), which now succeed.
      await replayer.ask('register', 'registered');
      const replayed = await replayer.ask('replay', 'replayed');
      phases.replayed = Date.now() - t0;
      expect(replayed).toEqual({ replayed: live, deadLetters: 0 });
      // It ran each of them once, at attempt 0 with the event's own id, and nothing else.
      const replayRuns = ledger.refresh().of(replayer.label);
      expect(replayRuns.length).toBe(live);
      expect(new Set(replayRuns.map((r) => key(r.handler, r.n)))).toEqual(FAILING);
      expect(replayRuns.filter((r) => r.attempt !== 0 || r.id !== idOf.get(r.n))).toEqual([]);
      expect(replayer.all('deadLetter')).toEqual([]);

      // The dead-letter stream holds tombstones only: one per replayed entry, on its subject (the replay's marks are
      // published as each delivery succeeds and confirmed asynchronously: polled).
      let after = deadLetterState(prefix, []);
      await until(async () => {
        after = deadLetterState(prefix, await readStream(nc, dlqStream));
        return after.live.length === 0 && after.tombstones.length === live;
      }, 'the dead-letter stream holds tombstones only', 10_000).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}: ${after.live.length} live, ${after.tombstones.length} tombstones`);
      });
      expect(after.bad).toEqual([]);
      expect(after.tombstones.every((m) => m.headers[TOMBSTONE_HEADER] === 'replayed')).toBe(true);
      expect(new Set(after.tombstones.map((m) => m.subject))).toEqual(new Set(before.live.map((x) => x.subject)));

      // The survivors heard of it (through their tails), and a process that starts now finds none.
      for (const s of survivors) await sees(s, 0);
      const late = new Proc('late', 'consumer', { ...settings, threads: 0, handlers: false });
      procs.push(late);
      expect((await late.waitFor('ready', 'it started')).deadLetters).toBe(0);
      phases.lateStarted = Date.now() - t0;

      // Their counters: the replayer ran the replays only (nothing came from the event stream); the survivors'
      // failures and dead letters are what they ran and printed.
      const rest = [...survivors, replayer, late];
      for (const p of rest) p.send('stop');
      const reports = await Promise.all(rest.map(async (p) => (await p.waitFor('done', 'it stopped')) as unknown as Done));
      await Promise.all(rest.map((p) => p.exited));
      const [replayerDone, lateDone] = reports.slice(survivors.length);
      expect(replayerDone.stats).toMatchObject({ processed: live, failed: 0, deadLettered: 0, queueSize: 0 });
      expect(replayerDone.transport.received).toBe(0);
      expect(lateDone.deadLetters).toBe(0);
      for (const [k, s] of survivors.entries()) {
        const recs = ledger.refresh().of(s.label);
        const failed = recs.filter((r) => fails(r.handler, r.n)).length;
        expect(reports[k].stats).toMatchObject({ processed: recs.length - failed, failed, deadLettered: s.all('deadLetter').length, queueSize: 0 });
        expect(reports[k].deadLetters).toBe(0);
      }
      phases.done = Date.now() - t0;
      if (process.env.RINGBUS_TEST_JETSTREAM_STATS) {
        console.log(JSON.stringify({
          victimRan, runsAtKill, victimFailed, takenOver, reruns: reruns.length, crossed, writers: [...writers], 
          victimWrote: before.live.filter(({ entry }) => writer.get(entry.id)![0] === victim.label).length,
          redelivered: reports.slice(0, survivors.length).reduce((sum, r) => sum + r.transport.redelivered, 0), phases,
        }));
      }
    } finally {
      await nc.close();
    }
  }, 90_000); // ~20 s here (much longer when the machine is busy: five processes starting on two cores)

  // A process that dies between storing a dead letter and acknowledging its delivery (inbound.ts #ack waits for the
  // sink's stored()) leaves the dead letter stored and the delivery unacknowledged; after ackWaitMs another process
  // runs the same last attempt again and fails it again. Its dead letter has the same id (derived from the delivery:
  // dead_lettering.ts deliveryEntryId), so the same subject, which keeps one message. Here the process kills itself
  // right inside that window.
  it('dead-letters a delivery once when the process that dead-lettered it dies before acknowledging it', async () => {
    const where = names.next();
    const prefix = where.subjectPrefix!;
    dir = mkdtempSync(join(tmpdir(), 'rb-js-dlq-'));
    const transport = { ...where, ackWaitMs: 1000, batchEvents: BATCH_EVENTS };
    const settings = { transport, capacity: CAPACITY, threads: 1, retry: { maxRetries: 1, initialDelayMs: 20, jitter: false } };
    // 'ship' fails every event, on every attempt, in both processes.
    const env = (label: string): Record<string, string> => ({ RB_CLUSTER_OUT: join(dir!, label), RB_CLUSTER_FAIL: JSON.stringify({ every: 1, handlers: ['ship'] }) });
    const first = new Proc('d0', 'consumer', { ...settings, dieAfterDeadLetterStored: true }, env('d0'));
    // The second process starts meanwhile, and registers the handler only once the first is dead.
    const second = new Proc('d1', 'consumer', { ...settings, handlers: false }, env('d1'));
    procs.push(first, second);
    await Promise.all([first.waitFor('ready', 'its consumers are in place'), second.waitFor('ready', 'it started')]);
    const producer = new MessageBus({ logger: false, pool: { minThreads: 0 }, transport: jetstream(where) });
    buses.push(producer);
    await producer.start();
    producer.publish('orders', { n: 0 });
    await producer.drain();
    // It ran both attempts, stored the dead letter, and died before acknowledging the last attempt's message.
    await first.exited;
    expect(first.child.signalCode).toBe('SIGKILL');
    expect(first.all('deadLetter')).toHaveLength(1);
    const nc = await natsConnection();
    try {
      expect(deadLetterState(prefix, await readStream(nc, `${where.stream}_DLQ`)).live).toHaveLength(1);
      // The other process, with the same handler, gets that message after ackWaitMs and runs the last attempt again.
      await second.ask('register', 'registered');
      await second.waitFor('deadLetter', 'it dead-lettered the delivery again');
      const jsm = await jetstreamManager(nc);
      await until(async () => (await jsm.streams.info(where.stream!)).state.messages === 0, 'the event stream is empty');
      const { live } = deadLetterState(prefix, await readStream(nc, `${where.stream}_DLQ`));
      expect(live.map(({ entry }) => `${entry.handler} ${entry.event.id} attempts ${entry.attempts}`)).toHaveLength(1);
    } finally {
      await nc.close();
    }
  }, 60_000);
});
