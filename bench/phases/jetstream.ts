/**
 * Phase "jetstream" (`--transport jetstream`): ringbus across processes,
 * through a NATS JetStream server, at the library's default options. This
 * process publishes with the natural loop (`if (!bus.publish(t, p)) await
 * bus.publishAsync(t, p)`) on a ResilientMessageBus whose transport is
 * `jetstream({ servers, stream, subjectPrefix })` (where, nothing tuned); N
 * consumer processes (bench/jetstream_consumer.ts, forked) each run the same
 * bus with the bench's no-op worker handler, competing on one durable
 * consumer. Parts, each on a stream of its own (unique names; they and the
 * transport's `<stream>_DLQ` streams are deleted at the end, also after a
 * failure or Ctrl-C):
 *
 *  throughput  per consumer count (--consumers, 1,2): a warm-up round, then --js-rounds rounds of
 *              --js-events events: first publish → every consumer processed every event
 *              (their counters, pushed every 10 ms over IPC); also first publish → all stored
 *  latency     per consumer count: --js-rate events/s for --js-seconds after 1 s warm-up; the
 *              consumers' end-to-end histograms (publish → settled in the consumer: the bus's
 *              event_end_to_end_seconds, publishedAt carried in the envelope), merged
 *  kill        2 consumers at --js-rate (ackWaitMs --js-ack-wait-ms, labelled): one is SIGKILLed (it
 *              signals itself, right after writing its counters), then the time until every envelope
 *              delivered before the kill is acknowledged (the survivor processed what the dead one
 *              held), and until the survivor's first redelivery
 *  baseline    per-event JetStream messages from this process: js.publish of each event's payload,
 *              BASELINE_IN_FLIGHT awaited concurrently, --js-rounds rounds of --js-baseline-seconds, one
 *              after each throughput round of the first consumer count (the same load for both)
 *
 * Targets (a ~100 B payload, no-op handler): the median with the first consumer count ≥ 150k
 * events/s end to end, and that ÷ the per-event median ≥ 5×. The rest is reported unjudged.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { jetstream as jetstreamClient, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { decodeFromCompressedBase64, type Histogram } from 'hdr-histogram-js';
import { ResilientMessageBus, type MessageBus } from '../../src/index.js';
import { jetstream, JETSTREAM_DEFAULTS } from '../../src/jetstream/index.js';
import type { ConsumerArgs, ConsumerMessage, ConsumerStats, DeathNote, ParentMessage } from '../jetstream_consumer.js';
import { produceAtRate } from '../producers.js';
import { rateText } from '../report.js';
import type { AccountingCheck, BenchResult, JetStreamKill, JetStreamLatency, JetStreamThroughput } from '../report_types.js';
import { DRAIN_LIMIT_MS, TOPIC, newHistogram, percentiles, say, spread, type BenchContext } from '../shared.js';

type JetStreamBench = NonNullable<BenchResult['jetstream']>;

/** js.publish calls kept awaiting in the per-event baseline (JETSTREAM-NOTES measured 2k–10k). */
export const BASELINE_IN_FLIGHT = 4096;
/** A consumer process that is not ready (connected, stream and durable consumer made) after this is a failure. */
const START_LIMIT_MS = 30_000;
/** The latency part's warm-up at the same rate, not measured. */
const LATENCY_WARMUP_SECONDS = 1;
/** The kill part: seconds at the steady rate before the kill. */
const KILL_STEADY_SECONDS = 2;
/** How often the kill part asks the server about the durable consumer. */
const POLL_MS = 20;

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const consumersText = (n: number): string => `${n} consumer${n === 1 ? '' : 's'}`;

// ------------------------------------------------------------------ consumer processes

const EMPTY_STATS: ConsumerStats = {
  type: 'stats', processed: 0, failed: 0, queueSize: 0, received: 0, redelivered: 0, handedBack: 0, errors: 0, warnings: 0, cpuUs: 0,
};

/** One forked consumer process and the latest counters it pushed. */
class ConsumerProcess {
  readonly child: ChildProcess;
  stats: ConsumerStats = EMPTY_STATS;
  /** Stats messages received: `refresh()` waits for one more from each. */
  reports = 0;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  /** SIGKILLed on purpose: its exit is not a failure. */
  killed = false;
  failure: string | undefined;
  readonly #histograms: ((m: { base64: string }) => void)[] = [];

  constructor(child: ChildProcess, changed: () => void) {
    this.child = child;
    child.on('message', (m: ConsumerMessage) => {
      if (m.type === 'stats') {
        this.stats = m;
        this.reports++;
      } else if (m.type === 'histogram') this.#histograms.shift()?.(m);
      else if (m.type === 'failed') this.failure = m.message;
      changed();
    });
    child.on('exit', (code, signal) => {
      this.exit = { code, signal };
      changed();
    });
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  send(m: ParentMessage): void {
    if (this.exit === null && this.child.connected) this.child.send(m);
  }

  histogram(): Promise<Histogram> {
    return new Promise((resolve) => {
      this.#histograms.push((m) => resolve(decodeFromCompressedBase64(m.base64, 64)));
      this.send({ type: 'histogram' });
    });
  }

  kill(): void {
    this.killed = true;
    this.child.kill('SIGKILL');
  }

  /** Has it write its counters to `file` and SIGKILL itself; resolves with them once it is gone. */
  async die(file: string): Promise<DeathNote> {
    this.killed = true;
    const exited = this.exit !== null ? Promise.resolve() : new Promise((resolve) => this.child.once('exit', resolve));
    this.send({ type: 'die', file });
    await exited;
    if (this.exit?.signal !== 'SIGKILL') throw new Error(`consumer process ${this.pid} did not die of SIGKILL (${this.exit?.code ?? this.exit?.signal})`);
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as DeathNote;
    } finally {
      rmSync(file, { force: true });
    }
  }
}

/** The consumer processes of one part: started together, watched together, stopped together. */
class Fleet {
  readonly procs: ConsumerProcess[] = [];
  readonly #waiters = new Set<() => void>();

  static async start(n: number, args: ConsumerArgs): Promise<Fleet> {
    const fleet = new Fleet();
    const script = fileURLToPath(new URL(`../jetstream_consumer.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));
    for (let k = 0; k < n; k++) {
      // Its own process: execArgv (tsx's loader from source; --cpu-prof when profiling) and the environment
      // (RINGBUS_BENCH_HANDLER) as this one's. stdout ignored: this process's stdout carries the result.
      const child = fork(script, [JSON.stringify(args)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      fleet.procs.push(new ConsumerProcess(child, fleet.#changed));
    }
    try {
      await fleet.waitFor(() => fleet.procs.every((p) => p.reports > 0), 'every consumer process started', START_LIMIT_MS);
    } catch (err) {
      fleet.killAll();
      throw err;
    }
    return fleet;
  }

  readonly #changed = (): void => {
    for (const check of [...this.#waiters]) check();
  };

  get live(): ConsumerProcess[] {
    return this.procs.filter((p) => !p.killed);
  }

  processed(): number {
    return this.procs.reduce((s, p) => s + p.stats.processed, 0);
  }

  /** Resolves with performance.now() once `holds` (checked at each report), rejects after `ms` or if a process died. */
  waitFor(holds: () => boolean, what: string, ms = DRAIN_LIMIT_MS): Promise<number> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      const check = (): void => {
        const bad = this.procs.find((p) => p.failure !== undefined || (p.exit !== null && !p.killed));
        if (bad !== undefined) {
          done();
          reject(new Error(`consumer process ${bad.pid} ${bad.failure !== undefined ? `failed: ${bad.failure}`
            : `exited (${bad.exit!.code ?? bad.exit!.signal})`} while waiting until ${what}`));
        } else if (holds()) {
          done();
          resolve(performance.now());
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`waited ${ms / 1000} s until ${what}; it did not happen (processed ${int(this.processed())})`));
      }, ms);
      this.#waiters.add(check);
      check();
    });
  }

  /** Every live process reported its counters once more (so `stats` are current). */
  async refresh(): Promise<void> {
    const live = this.live;
    const before = live.map((p) => p.reports);
    for (const p of live) p.send({ type: 'stats' });
    await this.waitFor(() => live.every((p, k) => p.reports > before[k]), 'the consumers reported', 10_000);
  }

  send(m: ParentMessage): void {
    for (const p of this.live) p.send(m);
  }

  /** Drains and stops every live process (each exits by itself); SIGKILL after 20 s. */
  async stop(): Promise<void> {
    const live = this.procs.filter((p) => p.exit === null);
    for (const p of live) p.send({ type: 'stop' });
    const exited = Promise.all(live.map((p) => (p.exit !== null ? undefined : new Promise((r) => p.child.once('exit', r)))));
    const ac = new AbortController();
    const late = await Promise.race([exited.then(() => false), sleep(20_000, true, { signal: ac.signal }).catch(() => false)]);
    ac.abort();
    if (late) {
      say('jetstream: a consumer process did not stop within 20 s; killed');
      this.killAll();
    }
  }

  killAll(): void {
    for (const p of this.procs) if (p.exit === null) p.kill();
  }
}

// ------------------------------------------------------------------ streams and the producer

/**
 * Unique stream names on the shared server. `cleanup()` deletes every stream whose name starts with this
 * run's prefix: the parts' streams, and those the transport makes beside them (`<stream>_DLQ`, dead letters).
 */
class Streams {
  readonly #prefix = `RBBENCH_${process.pid}_${Date.now().toString(36)}_`;
  #n = 0;

  next(part: string): { stream: string; subjectPrefix: string } {
    const tag = `${++this.#n}_${part}`;
    return { stream: `${this.#prefix}${tag}`, subjectPrefix: `${this.#prefix.toLowerCase()}${tag}` };
  }

  async cleanup(jsm: JetStreamManager): Promise<number> {
    if (this.#n === 0) return 0;
    const ours: string[] = [];
    for await (const s of jsm.streams.list()) if (s.config.name.startsWith(this.#prefix)) ours.push(s.config.name);
    let deleted = 0;
    for (const s of ours) if (await jsm.streams.delete(s).catch(() => false)) deleted++;
    return deleted;
  }
}

interface Where {
  servers: string;
  stream: string;
  subjectPrefix: string;
}

/** The publishing process's bus: defaults, the transport told only where the stream is; warnings counted. */
async function startProducer(ctx: BenchContext, where: Where, warnings: { n: number }): Promise<MessageBus> {
  const logger = {
    ...ctx.logger,
    warn(obj: unknown, msg?: string) {
      if (++warnings.n <= 3) say(`[producer warn] ${msg ?? ''} ${JSON.stringify(obj)}`);
    },
  };
  const bus = new ResilientMessageBus({ logger, transport: jetstream(where) });
  await bus.start();
  return bus;
}

/** The producer's accounting: every event published was stored by the server, none is pending. */
function producerCheck(ctx: BenchContext, name: string, bus: MessageBus, published: number): AccountingCheck {
  const s = bus.stats();
  const t = bus.transportStats()!;
  const failures: string[] = [];
  if (s.published !== published) failures.push(`published ${s.published} ≠ ${published} the loop got in`);
  if (t.publishStored !== s.published) failures.push(`publishStored ${t.publishStored} ≠ published ${s.published}`);
  if (t.publishPending !== 0) failures.push(`publishPending ${t.publishPending} ≠ 0 after drain`);
  const check: AccountingCheck = { bus: name, pass: failures.length === 0, stats: { ...s, ...prefixed('transport', t) }, failures };
  ctx.accounting.push(check);
  if (!check.pass) say(`ACCOUNTING FAIL on ${name}: ${failures.join('; ')}`);
  return check;
}

/** The consumers' accounting for `events` published since `before`: each processed once (none lost, none failed). */
function consumersCheck(ctx: BenchContext, name: string, fleet: Fleet, before: ConsumerStats[], events: number,
  allowDuplicates: boolean): AccountingCheck {
  const failures: string[] = [];
  const delta = (k: keyof ConsumerStats): number => fleet.procs.reduce((s, p, i) => s + (p.stats[k] as number) - (before[i][k] as number), 0);
  const processed = delta('processed');
  if (processed < events) failures.push(`processed ${processed} < ${events} published: ${events - processed} lost`);
  if (processed > events && !allowDuplicates) failures.push(`processed ${processed} > ${events} published (duplicates with no process dying)`);
  if (delta('failed') !== 0) failures.push(`failed ${delta('failed')} ≠ 0 (a no-op handler)`);
  const stats: Record<string, number> = { published: events, processed, failed: delta('failed'), received: delta('received'),
    redelivered: delta('redelivered'), handedBack: delta('handedBack') };
  fleet.procs.forEach((p, i) => (stats[`processed_${i + 1}`] = p.stats.processed - before[i].processed));
  const check: AccountingCheck = { bus: name, pass: failures.length === 0, stats, failures };
  ctx.accounting.push(check);
  if (!check.pass) say(`ACCOUNTING FAIL on ${name}: ${failures.join('; ')}`);
  return check;
}

const prefixed = (p: string, o: object): Record<string, number> =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [`${p}.${k}`, v as number]));

// ------------------------------------------------------------------ parts

/** One throughput round: `events` events with the natural loop on a fresh producer bus. */
async function throughputRound(ctx: BenchContext, fleet: Fleet, where: Where, events: number, name: string,
  warnings: { n: number }): Promise<{ rate: number; storeRate: number; shares: number[]; producerCpu: number; consumersCpu: number }> {
  const bus = await startProducer(ctx, where, warnings);
  await fleet.refresh();
  const before = fleet.procs.map((p) => p.stats);
  const target = fleet.processed() + events;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < events; i++) {
    const p = ctx.payloadOf(i);
    if (!bus.publish(TOPIC, p)) await bus.publishAsync(TOPIC, p);
  }
  const allProcessed = fleet.waitFor(() => fleet.processed() >= target, `${name}: every event processed`);
  allProcessed.catch(() => undefined); // awaited below
  await bus.drain(); // resolves once the server stored every event
  const tStored = performance.now();
  const tDone = await allProcessed;
  const cpu = process.cpuUsage(cpu0);
  await bus.stop();
  producerCheck(ctx, `${name} (producer)`, bus, events);
  await sleep(30); // a duplicate would show up in the next reports
  await fleet.refresh();
  consumersCheck(ctx, `${name} (consumers)`, fleet, before, events, false);
  return {
    rate: events / ((tDone - t0) / 1000),
    storeRate: events / ((tStored - t0) / 1000),
    shares: fleet.procs.map((p, i) => p.stats.processed - before[i].processed),
    // Consumers: from the round's start to their report after it (their idle cost over the few ms after is noise).
    producerCpu: (cpu.user + cpu.system) / events,
    consumersCpu: fleet.procs.reduce((s, p, i) => s + p.stats.cpuUs - before[i].cpuUs, 0) / events,
  };
}

async function throughputPart(ctx: BenchContext, fleet: Fleet, where: Where, n: number, warnings: { n: number },
  perEvent: PerEventBaseline | null): Promise<JetStreamThroughput> {
  const { cfg } = ctx;
  const label = consumersText(n);
  say(`jetstream throughput, ${label}: a warm-up round, then ${cfg.jsRounds} rounds of ${int(cfg.jsEvents)} events` +
    `${perEvent ? `, each followed by ${cfg.jsBaselineSeconds} s of per-event js.publish (${int(BASELINE_IN_FLIGHT)} in flight)` : ''}`);
  const warm = await throughputRound(ctx, fleet, where, Math.min(cfg.jsEvents, 100_000), `jetstream ${label} warm-up`, warnings);
  say(`  warm-up ${rateText(warm.rate)} end to end`);
  const rates: number[] = [];
  const storeRates: number[] = [];
  const shares: number[][] = [];
  const producerCpu: number[] = [];
  const consumersCpu: number[] = [];
  for (let r = 0; r < cfg.jsRounds; r++) {
    const x = await throughputRound(ctx, fleet, where, cfg.jsEvents, `jetstream ${label} round ${r + 1}`, warnings);
    rates.push(x.rate);
    storeRates.push(x.storeRate);
    shares.push(x.shares);
    producerCpu.push(x.producerCpu);
    consumersCpu.push(x.consumersCpu);
    say(`  round ${r + 1}/${cfg.jsRounds}: ${rateText(x.rate)} end to end, stored at ${rateText(x.storeRate)}; CPU µs/event ` +
      `producer ${x.producerCpu.toFixed(1)}, consumers ${x.consumersCpu.toFixed(1)}${n > 1 ? ` (${x.shares.map(int).join('/')})` : ''}` +
      `; load ${loadavg()[0].toFixed(2)}`);
    await perEvent?.round();
  }
  return {
    consumers: n, eventsPerRound: cfg.jsEvents, rates, spread: spread(rates), storeRates, storeSpread: spread(storeRates), shares,
    cpuUsPerEvent: { producer: spread(producerCpu), consumers: spread(consumersCpu) },
  };
}

async function latencyPart(ctx: BenchContext, fleet: Fleet, where: Where, n: number, warnings: { n: number }): Promise<JetStreamLatency> {
  const { cfg } = ctx;
  const rate = cfg.jsRate;
  const label = consumersText(n);
  say(`jetstream latency, ${label}: ${int(rate)} events/s for ${cfg.jsSeconds} s after ${LATENCY_WARMUP_SECONDS} s warm-up`);
  const bus = await startProducer(ctx, where, warnings);
  await fleet.refresh();
  const before = fleet.procs.map((p) => p.stats);
  const base = fleet.processed();
  const warm = await produceAtRate(bus, ctx.payloadOf, rate, LATENCY_WARMUP_SECONDS);
  await bus.drain();
  await fleet.waitFor(() => fleet.processed() >= base + warm.accepted, `latency ${label}: the warm-up processed`);
  fleet.send({ type: 'mark' });
  const intervalNs = 1e9 / rate;
  const publish = newHistogram();
  const publishRaw = newHistogram();
  const lag = newHistogram();
  const produced = await produceAtRate(bus, ctx.payloadOf, rate, cfg.jsSeconds, { publish, publishRaw, lag, intervalNs });
  await bus.drain();
  const total = warm.accepted + produced.accepted;
  await fleet.waitFor(() => fleet.processed() >= base + total, `latency ${label}: every event processed`);
  await bus.stop();
  producerCheck(ctx, `jetstream latency ${label} (producer)`, bus, total);
  await fleet.refresh();
  consumersCheck(ctx, `jetstream latency ${label} (consumers)`, fleet, before, total, false);
  const histograms = await Promise.all(fleet.live.map((p) => p.histogram()));
  const merged = newHistogram();
  for (const h of histograms) merged.add(h);
  const result: JetStreamLatency = {
    consumers: n,
    offeredRate: rate,
    seconds: produced.ms / 1000,
    accepted: produced.accepted,
    achievedRate: produced.accepted / (produced.ms / 1000),
    endToEndMs: percentiles(merged, 1e6),
    perConsumerEndToEndMs: histograms.map((h) => percentiles(h, 1e6)),
    publishUs: percentiles(publish, 1e3),
    sendLagUs: percentiles(lag, 1e3),
  };
  say(`  end to end p50 ${result.endToEndMs.p50.toFixed(2)} ms, p99 ${result.endToEndMs.p99.toFixed(2)} ms, ` +
    `max ${result.endToEndMs.max.toFixed(1)} ms (${int(merged.totalCount)} events); send lag p99 ${result.sendLagUs.p99.toFixed(0)} µs`);
  return result;
}

/**
 * Two consumers at the steady rate; the second SIGKILLs itself (on a word from here, right after writing its
 * counters to a file in the same turn, so what it processed is known exactly). Recovered: the durable
 * consumer's ack floor reached the stream's last sequence as of 250 ms after the kill (by then the server has
 * seen the connection close, so no later message went to the dead process): everything delivered before, the
 * dead one's included, is acknowledged. The producer keeps its rate throughout, and 0.5 s beyond.
 */
async function killPart(ctx: BenchContext, jsm: JetStreamManager, fleet: Fleet, where: Where,
  warnings: { n: number }): Promise<JetStreamKill> {
  const { cfg } = ctx;
  const rate = cfg.jsRate;
  const ackWaitMs = cfg.jsAckWaitMs;
  say(`jetstream kill: 2 consumers (ackWaitMs ${int(ackWaitMs)}${ackWaitMs === JETSTREAM_DEFAULTS.ackWaitMs ? ', the default'
    : `, not the default ${int(JETSTREAM_DEFAULTS.ackWaitMs)}`}) at ${int(rate)} events/s; SIGKILL one after ${KILL_STEADY_SECONDS} s`);
  const bus = await startProducer(ctx, where, warnings);
  await fleet.refresh();
  const before = fleet.procs.map((p) => p.stats);
  let producing = true;
  let published = 0;
  const producer = (async () => {
    while (producing) published += (await produceAtRate(bus, ctx.payloadOf, rate, 0.25)).accepted;
  })();
  await sleep(KILL_STEADY_SECONDS * 1000);
  const [survivor, victim] = fleet.procs;
  await fleet.refresh();
  const survivorBefore = survivor.stats;
  const consumer = (await jsm.consumers.list(where.stream).next())[0]?.name;
  if (consumer === undefined) throw new Error(`no durable consumer on stream ${where.stream}`);

  // The survivor's counters arrive every 10 ms while they change: its first redelivered envelope.
  let firstRedeliveryAt: number | null = null;
  const firstRedelivery = fleet.waitFor(() => survivor.stats.redelivered > survivorBefore.redelivered,
    'the survivor got a redelivered envelope', ackWaitMs * 2 + 60_000).then((t) => (firstRedeliveryAt = t), () => undefined);
  const note = await victim.die(join(tmpdir(), `ringbus-bench-${process.pid}-${victim.pid}.json`));
  // Its clock and ours are the machine's: its epoch time of death on our performance.now() scale.
  const tKill = note.at - performance.timeOrigin;
  const limit = tKill + ackWaitMs * 2 + 30_000;
  await sleep(Math.max(0, tKill + 250 - performance.now()));
  const lastSeq = (await jsm.streams.info(where.stream)).state.last_seq;
  const atKill = await jsm.consumers.info(where.stream, consumer);
  let recoveredMs: number | null = null;
  while (performance.now() < limit) {
    const ci = await jsm.consumers.info(where.stream, consumer);
    if (ci.ack_floor.stream_seq >= lastSeq) {
      recoveredMs = performance.now() - tKill;
      break;
    }
    if (survivor.exit !== null) throw new Error(`the surviving consumer process exited (${survivor.exit.code ?? survivor.exit.signal})`);
    await sleep(POLL_MS);
  }
  if (recoveredMs === null) say(`  NOT recovered: the ack floor did not reach sequence ${lastSeq} within ${((limit - tKill) / 1000).toFixed(0)} s`);
  await sleep(500);
  producing = false;
  await producer;
  await bus.drain();
  // Now everything published must be acknowledged: nothing pending, nothing waiting for an ack.
  const drainLimit = performance.now() + DRAIN_LIMIT_MS;
  let ci = await jsm.consumers.info(where.stream, consumer);
  while ((ci.num_pending > 0 || ci.num_ack_pending > 0) && performance.now() < drainLimit) {
    await sleep(POLL_MS);
    ci = await jsm.consumers.info(where.stream, consumer);
  }
  const last = (await jsm.streams.info(where.stream)).state.last_seq;
  await bus.stop();
  producerCheck(ctx, 'jetstream kill (producer)', bus, published);
  await fleet.refresh();
  if (firstRedeliveryAt === null && survivor.stats.redelivered > survivorBefore.redelivered) await firstRedelivery;
  const firstRedeliveryMs = firstRedeliveryAt === null ? null : firstRedeliveryAt - tKill;

  const failures: string[] = [];
  if (ci.num_pending > 0 || ci.num_ack_pending > 0 || ci.ack_floor.stream_seq < last) {
    failures.push(`not all acknowledged: ${ci.num_pending} pending, ${ci.num_ack_pending} awaiting an ack, ack floor ` +
      `${ci.ack_floor.stream_seq} < last sequence ${last}`);
  }
  const survived = survivor.stats.processed - before[0].processed;
  // Exact: written in the turn it died, and an envelope is acknowledged only after its deliveries were counted.
  const died = note.processed - before[1].processed;
  if (survived + died < published) failures.push(`survivor ${survived} + dead ${died} < published ${published}: events lost`);
  if (survivor.stats.failed !== before[0].failed) failures.push(`the survivor's handler failed ${survivor.stats.failed - before[0].failed} times`);
  const redeliveredEnvelopes = survivor.stats.redelivered - survivorBefore.redelivered;
  const check: AccountingCheck = {
    bus: 'jetstream kill (stream and survivor)', pass: failures.length === 0, failures,
    stats: { published, survivorProcessed: survived, deadProcessed: died, numPending: ci.num_pending,
      numAckPending: ci.num_ack_pending, ackFloor: ci.ack_floor.stream_seq, lastSeq: last, survivorRedelivered: redeliveredEnvelopes },
  };
  ctx.accounting.push(check);
  if (!check.pass) say(`ACCOUNTING FAIL on ${check.bus}: ${failures.join('; ')}`);
  const result: JetStreamKill = {
    ackWaitMs,
    ackWaitIsDefault: ackWaitMs === JETSTREAM_DEFAULTS.ackWaitMs,
    rate,
    firstRedeliveryMs,
    recoveredMs,
    unackedAtKill: atKill.num_ack_pending,
    redeliveredEnvelopes,
    published,
    survivorProcessed: survived,
    deadProcessed: died,
    duplicates: Math.max(0, survived + died - published),
  };
  say(`  recovered ${recoveredMs === null ? 'NOT' : `${(recoveredMs / 1000).toFixed(2)} s`} after the SIGKILL (first redelivery ` +
    `${firstRedeliveryMs === null ? 'none' : `${(firstRedeliveryMs / 1000).toFixed(2)} s`})`);
  say(`  ${result.unackedAtKill} envelope(s) unacknowledged 250 ms after it, ${redeliveredEnvelopes} redelivered to the survivor; ` +
    `${int(result.duplicates)} event(s) ran twice`);
  return result;
}

/**
 * Per-event messages: each event's payload its own js.publish, BASELINE_IN_FLIGHT awaited at once, on a plain
 * stream of its own. Its rounds run between the first consumer count's throughput rounds (one after each), so
 * the ratio compares rounds measured under the same load; without the throughput part, one after another.
 */
class PerEventBaseline {
  readonly rates: number[] = [];
  readonly #window: (seconds: number) => Promise<number>;
  readonly #seconds: number;

  private constructor(window: (seconds: number) => Promise<number>, seconds: number) {
    this.#window = window;
    this.#seconds = seconds;
  }

  /** Makes the stream and warms up (0.5 s, not counted). */
  static async start(ctx: BenchContext, nc: NatsConnection, jsm: JetStreamManager, streams: Streams): Promise<PerEventBaseline> {
    const { stream, subjectPrefix } = streams.next('perevent');
    const subject = `${subjectPrefix}.events`;
    // Like the transport's stream: file storage, one replica; limits retention (no consumer needed to keep them).
    await jsm.streams.add({ name: stream, subjects: [subject], storage: 'file' as never, num_replicas: 1 });
    const js = jetstreamClient(nc);
    const encoder = new TextEncoder();
    const bytesOf = (i: number): Uint8Array => {
      const p = ctx.payloadOf(i);
      return p instanceof Uint8Array ? p : encoder.encode(JSON.stringify(p));
    };
    const window = async (seconds: number): Promise<number> => {
      const t0 = performance.now();
      const deadline = t0 + seconds * 1000;
      let next = 0;
      const lane = async (): Promise<void> => {
        while (performance.now() < deadline) await js.publish(subject, bytesOf(next++));
      };
      await Promise.all(Array.from({ length: BASELINE_IN_FLIGHT }, lane));
      return next / ((performance.now() - t0) / 1000);
    };
    await window(Math.min(0.5, ctx.cfg.jsBaselineSeconds));
    return new PerEventBaseline(window, ctx.cfg.jsBaselineSeconds);
  }

  async round(): Promise<number> {
    const rate = await this.#window(this.#seconds);
    this.rates.push(rate);
    say(`  per-event js.publish round ${this.rates.length}: ${rateText(rate)}; load ${loadavg()[0].toFixed(2)}`);
    return rate;
  }

  result(interleaved: boolean): NonNullable<JetStreamBench['baseline']> {
    return { inFlight: BASELINE_IN_FLIGHT, seconds: this.#seconds, msgId: false, interleaved, rates: this.rates, spread: spread(this.rates) };
  }
}

// ------------------------------------------------------------------ the phase

export async function jetstreamPhase(ctx: BenchContext): Promise<JetStreamBench> {
  const { cfg } = ctx;
  const servers = cfg.servers;
  const t0 = performance.now();
  let nc: NatsConnection;
  try {
    nc = await connect({ servers: servers.split(',').map((s) => s.trim()), name: 'ringbus-bench', timeout: 10_000 });
  } catch (err) {
    throw new Error(`cannot reach NATS at ${servers} (--servers): ${(err as Error).message}`, { cause: err });
  }
  const jsm = await jetstreamManager(nc);
  const serverVersion = nc.info?.version ?? 'unknown';
  const streams = new Streams();
  const fleets = new Set<Fleet>();
  // Ctrl-C: the consumer processes get the signal too; the streams would stay behind on the shared server.
  const onSigint = (): void => {
    say('jetstream: interrupted; deleting the bench\'s streams');
    for (const f of fleets) f.killAll();
    void streams.cleanup(jsm).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSigint);
  const warnings = { n: 0 };
  const tally = { warnings: 0, errors: 0 };
  /** Stops a part's consumer processes and adds up what they logged. */
  const retire = async (fleet: Fleet): Promise<void> => {
    await fleet.stop();
    fleets.delete(fleet);
    for (const p of fleet.procs) {
      tally.warnings += p.stats.warnings;
      tally.errors += p.stats.errors;
    }
  };
  const parts = cfg.jsParts;
  say(`jetstream: NATS ${serverVersion} at ${servers}; consumer processes ${cfg.consumers.join(', ')}; ${ctx.payloadText}, ` +
    `handler ${cfg.costUs > 0 ? `${cfg.costUs} µs` : 'no-op'}; parts ${[...parts].join(', ')}; load ` +
    `${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  try {
    const throughput: JetStreamThroughput[] = [];
    const latency: JetStreamLatency[] = [];
    const perEvent = parts.has('baseline') ? await PerEventBaseline.start(ctx, nc, jsm, streams) : null;
    if (parts.has('throughput') || parts.has('latency')) {
      for (const [k, n] of cfg.consumers.entries()) {
        const where: Where = { servers, ...streams.next(`c${n}`) };
        const fleet = await Fleet.start(n, { ...where, ackWaitMs: null });
        fleets.add(fleet);
        try {
          if (parts.has('throughput')) throughput.push(await throughputPart(ctx, fleet, where, n, warnings, k === 0 ? perEvent : null));
          if (parts.has('latency')) latency.push(await latencyPart(ctx, fleet, where, n, warnings));
        } finally {
          await retire(fleet);
        }
      }
    }
    let kill: JetStreamKill | null = null;
    if (parts.has('kill')) {
      const where: Where = { servers, ...streams.next('kill') };
      const fleet = await Fleet.start(2, { ...where, ackWaitMs: cfg.jsAckWaitMs });
      fleets.add(fleet);
      try {
        kill = await killPart(ctx, jsm, fleet, where, warnings);
      } finally {
        await retire(fleet);
      }
    }
    const interleaved = parts.has('throughput');
    if (perEvent !== null && !interleaved) {
      say(`jetstream baseline: per-event js.publish, ${int(BASELINE_IN_FLIGHT)} in flight, ${cfg.jsRounds} rounds of ${cfg.jsBaselineSeconds} s`);
      for (let r = 0; r < cfg.jsRounds; r++) await perEvent.round();
    }
    const baseline = perEvent?.result(interleaved) ?? null;
    const headline = throughput[0]?.spread.median;
    return {
      servers,
      serverVersion,
      consumerCounts: cfg.consumers,
      options: 'none beyond where: jetstream({ servers, stream, subjectPrefix }), a unique stream and prefix per part',
      transportDefaults: { ...JETSTREAM_DEFAULTS },
      parts: [...parts],
      throughput,
      latency,
      kill,
      baseline,
      ratioToPerEvent: headline === undefined || baseline === null || baseline.spread.median === 0 ? null : headline / baseline.spread.median,
      producerWarnings: warnings.n,
      consumerWarnings: tally.warnings,
      consumerErrors: tally.errors,
      loadAvgEnd: loadavg(),
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    for (const f of fleets) f.killAll();
    const deleted = await streams.cleanup(jsm);
    process.removeListener('SIGINT', onSigint);
    await nc.close();
    say(`jetstream: ${deleted} stream${deleted === 1 ? '' : 's'} deleted`);
  }
}

