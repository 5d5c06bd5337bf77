/**
 * The sustained-load benchmark of ringbus, all through ResilientMessageBus with
 * every feature on (retry, circuit breaker, dead-letter queue, handler timeout):
 *
 *  1. sustained: a fixed offered rate for --duration s; publish() latency (HDR,
 *     coordinated-omission aware), lag against the schedule, end-to-end latency
 *     (the bus's own HDR histogram, CO-corrected), RSS/heap every 250 ms with the
 *     slope after warm-up, throughput per second, and whether it kept up;
 *  2. max rate, metrics on and off, alternating rounds: the cost of metrics;
 *  3. CPU per event at several rates (process.cpuUsage, workers included);
 *  4. chaos (--failure-rate, --crash-rate, --timeout-rate) in the sustained
 *     phase, ending with the accounting invariant on stats();
 *  5. baselines in the same run: Piscina with one run() per event, and an inline
 *     EventEmitter on the main thread, same handler and payload;
 *  6. with --handler-cost-us: efficiency against threads × 1e6 / cost.
 *
 *   npx tsx bench/bus_performance.ts [--rate 10000] [--duration 10] [--json] [--report report.html] ...
 *   npx tsx bench/bus_performance.ts --help
 */
import { EventEmitter } from 'node:events';
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { build, type Histogram } from 'hdr-histogram-js';
import { Piscina } from 'piscina';
import { DEFAULT_OPTIONS, ResilientMessageBus, workerHandler, type BusOptions, type BusStats, type MessageBus } from '../src/index.js';
import {
  rateText, renderReport, summaryText, type AccountingCheck, type BenchResult, type LatencyPoint, type Percentiles,
} from './report.js';

// ------------------------------------------------------------------ flags

const FLAGS = {
  rate: { type: 'string', default: '10000', help: "events/s offered in the sustained phase; 0 or 'max' = as fast as possible" },
  duration: { type: 'string', default: '10', help: 'seconds of the sustained phase (measured)' },
  warmup: { type: 'string', default: '1', help: 'seconds at the same rate before the sustained phase, not measured (JIT, pool)' },
  threads: { type: 'string', default: String(availableParallelism()), help: 'worker threads (pool min = max), also for Piscina' },
  'payload-bytes': { type: 'string', default: '100', help: 'payload size: JSON text length, or bytes with --binary' },
  binary: { type: 'boolean', default: false, help: 'publish a Uint8Array (raw bytes) instead of a JSON object' },
  'handler-cost-us': { type: 'string', default: '0', help: 'CPU each handler call burns, µs (0 = no-op); reports efficiency when > 0' },
  'failure-rate': { type: 'string', default: '0', help: 'chaos: fraction of attempts that throw (sustained phase)' },
  'crash-rate': { type: 'string', default: '0', help: 'chaos: fraction of first attempts that process.exit() their worker' },
  'timeout-rate': { type: 'string', default: '0', help: 'chaos: fraction of first attempts that hang past handlerTimeoutMs' },
  'handler-timeout-ms': { type: 'string', default: '200', help: 'handlerTimeoutMs when --timeout-rate > 0 (otherwise 30000)' },
  'max-seconds': { type: 'string', default: 'min(duration, 5)', help: 'max-rate phase: measured seconds per mode (metrics on / off), split into the rounds' },
  'max-rounds': { type: 'string', default: '5', help: 'max-rate phase: alternating rounds per mode (medians reported)' },
  'cpu-rates': { type: 'string', default: '5000,10000,20000,40000', help: 'CPU phase: comma-separated offered rates' },
  'cpu-seconds': { type: 'string', default: '2', help: 'CPU phase: measured seconds per rate' },
  'skip-baselines': { type: 'boolean', default: false, help: 'skip the Piscina and inline EventEmitter baselines' },
  phases: { type: 'string', default: 'sustained,max,cpu,baselines', help: 'which phases to run (comma-separated subset)' },
  json: { type: 'boolean', default: false, help: 'print one JSON result on stdout and nothing else (progress stays on stderr)' },
  report: { type: 'string', default: '', help: 'write a self-contained HTML report (charts inline) to this file' },
  help: { type: 'boolean', default: false, short: 'h', help: 'print this help' },
} as const;

function usage(): string {
  const lines = ['usage: npx tsx bench/bus_performance.ts [flags]   (also: npm run bench -- [flags])', ''];
  for (const [name, f] of Object.entries(FLAGS)) {
    const left = `  --${name}${f.type === 'string' ? ' VALUE' : ''}`;
    const def = f.type === 'boolean' ? '' : f.default === '' ? ' (default: none)' : ` (default: ${f.default})`;
    lines.push(`${left.padEnd(30)} ${f.help}${def}`);
  }
  return lines.join('\n');
}

let parsed: ReturnType<typeof parseFlags>;
function parseFlags() {
  const options = Object.fromEntries(Object.entries(FLAGS).map(([k, f]) => [k, 'short' in f ? { type: f.type, short: f.short } : { type: f.type }])) as {
    [K in keyof typeof FLAGS]: { type: (typeof FLAGS)[K]['type'] };
  };
  return parseArgs({ options, strict: true, allowPositionals: false }).values;
}
try {
  parsed = parseFlags();
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n\n${usage()}\n`);
  process.exit(2);
}
if (parsed.help) {
  process.stdout.write(`${usage()}\n`);
  process.exit(0);
}

function flag(name: keyof typeof FLAGS): string {
  const v = (parsed as Record<string, unknown>)[name];
  return typeof v === 'string' ? v : String(FLAGS[name].default);
}
function num(name: keyof typeof FLAGS, { min = 0, max = Infinity, integer = false } = {}): number {
  const v = Number(flag(name));
  if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    process.stderr.write(`--${name} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got '${flag(name)}'\n`);
    process.exit(2);
  }
  return v;
}

const rateFlag = flag('rate').trim().toLowerCase();
/** Events/s offered in the sustained phase; null = as fast as possible. */
const RATE: number | null = rateFlag === 'max' || rateFlag === '0' ? null : num('rate', { min: 1 });
const DURATION = num('duration', { min: 0.5 });
const WARMUP = num('warmup', { min: 0, max: 600 });
const THREADS = num('threads', { min: 1, max: 256, integer: true });
const PAYLOAD_BYTES = num('payload-bytes', { min: 1, max: 1 << 20, integer: true });
const BINARY = parsed.binary === true;
const COST_US = num('handler-cost-us', { min: 0, max: 1e6 });
const FAILURE_RATE = num('failure-rate', { max: 1 });
const CRASH_RATE = num('crash-rate', { max: 1 });
const TIMEOUT_RATE = num('timeout-rate', { max: 1 });
const CHAOS = FAILURE_RATE > 0 || CRASH_RATE > 0 || TIMEOUT_RATE > 0;
const HANDLER_TIMEOUT_MS = TIMEOUT_RATE > 0 ? num('handler-timeout-ms', { min: 1, integer: true }) : 30_000;
const MAX_SECONDS = flag('max-seconds') === FLAGS['max-seconds'].default ? Math.min(DURATION, 5) : num('max-seconds', { min: 0.2 });
const MAX_ROUNDS = num('max-rounds', { min: 1, max: 100, integer: true });
const CPU_RATES = flag('cpu-rates').split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
if (CPU_RATES.some((r) => !Number.isFinite(r) || r <= 0)) {
  process.stderr.write(`--cpu-rates must be a comma-separated list of rates > 0, got '${flag('cpu-rates')}'\n`);
  process.exit(2);
}
const CPU_SECONDS = num('cpu-seconds', { min: 0.2 });
const PHASES = new Set(flag('phases').split(',').map((s) => s.trim()).filter((s) => s.length > 0));
for (const p of PHASES) {
  if (!['sustained', 'max', 'cpu', 'baselines'].includes(p)) {
    process.stderr.write(`--phases takes a subset of sustained,max,cpu,baselines, got '${p}'\n`);
    process.exit(2);
  }
}
const SKIP_BASELINES = parsed['skip-baselines'] === true || !PHASES.has('baselines');
const JSON_OUT = parsed.json === true;
const REPORT = flag('report');
// Find out now, not after a long run, if the report cannot be written.
if (REPORT) {
  try {
    writeFileSync(REPORT, '');
  } catch (err) {
    process.stderr.write(`ringbus bench: cannot write the report to ${REPORT}: ${(err as Error).message}\n`);
    process.exit(2);
  }
}

// ------------------------------------------------------------------ shared setup

const TOPIC = 'order.created';
const HANDLERS = new URL('./perf_handlers.mjs', import.meta.url);
const QUEUE_CAPACITY = 65_536;
/** Retry and circuit breakers at ResilientMessageBus's defaults: what users get (a 50% failure rate opens a circuit). */
const RETRY = { ...DEFAULT_OPTIONS.retry };
const BREAKER = { ...DEFAULT_OPTIONS.circuitBreaker };
/** Wait this long for a drain before declaring the bus stuck. */
const DRAIN_LIMIT_MS = 60_000;

// Handler settings for every thread (bench/perf_handlers.mjs reads them at load):
// set before any pool exists, since workers copy process.env when they start.
process.env.RINGBUS_BENCH_HANDLER = JSON.stringify({
  costUs: COST_US, failureRate: FAILURE_RATE, crashRate: CRASH_RATE, timeoutRate: TIMEOUT_RATE, hangMs: Math.max(1000, 5 * HANDLER_TIMEOUT_MS),
});

let errorLogs = 0;
const logger = {
  debug() {},
  info() {},
  warn() {},
  error(obj: unknown, msg?: string) {
    if (++errorLogs <= 5) console.error('[ringbus error]', msg ?? '', obj);
    else if (errorLogs === 6) console.error('[ringbus error] further error logs are counted, not printed');
  },
};

function busOptions(metrics: boolean): BusOptions {
  return {
    logger,
    metrics,
    pool: { minThreads: THREADS, maxThreads: THREADS },
    queue: { capacity: QUEUE_CAPACITY, strategy: 'reject-new' },
    retry: RETRY,
    circuitBreaker: BREAKER,
    deadLetter: { capacity: 100_000 },
    handlerTimeoutMs: HANDLER_TIMEOUT_MS,
  };
}

async function startBus(metrics: boolean, handler: 'work' | 'chaos'): Promise<MessageBus> {
  const bus = new ResilientMessageBus(busOptions(metrics));
  bus.registerEventHandler(TOPIC, workerHandler(HANDLERS, handler));
  await bus.start();
  return bus;
}

// Payloads: a JSON object whose text is about --payload-bytes long, or raw bytes.
const JSON_BASE = { id: 0, type: TOPIC, user: 'user-12345', amount: 123.45, pad: '' };
const PAD = 'x'.repeat(Math.max(0, PAYLOAD_BYTES - JSON.stringify({ ...JSON_BASE, id: 100_000 }).length));
const binaryPayload = new Uint8Array(PAYLOAD_BYTES).fill(7);
const binaryView = new DataView(binaryPayload.buffer);
function payloadOf(i: number): unknown {
  if (BINARY) {
    if (PAYLOAD_BYTES >= 4) binaryView.setUint32(0, i >>> 0);
    return binaryPayload; // publish() copies the bytes: reusing the buffer is safe
  }
  return { id: i, type: TOPIC, user: 'user-12345', amount: 123.45, pad: PAD };
}
const PAYLOAD_TEXT = BINARY ? `binary ${PAYLOAD_BYTES} B` : `JSON ~${JSON.stringify(payloadOf(123_456)).length} B`;

/** What a handler receives, for the baselines (the bus builds the same in its workers). */
function eventOf(i: number): { id: string; topic: string; payload: unknown; priority: string; sessionId: undefined; attempt: number; publishedAt: number } {
  return { id: `bench-${i}`, topic: TOPIC, payload: payloadOf(i), priority: 'normal', sessionId: undefined, attempt: 0, publishedAt: Date.now() };
}

const say = (line: string): void => void process.stderr.write(`${line}\n`);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ns = (ms: number): number => (ms > 0 ? Math.round(ms * 1e6) : 0);
const newHistogram = (): Histogram => build({ numberOfSignificantValueDigits: 3, bitBucketSize: 64 });

function percentiles(h: Histogram, scale: number): Percentiles {
  if (h.totalCount === 0) return { count: 0, p50: 0, p95: 0, p99: 0, p999: 0, max: 0 };
  return {
    count: h.totalCount,
    p50: h.getValueAtPercentile(50) / scale,
    p95: h.getValueAtPercentile(95) / scale,
    p99: h.getValueAtPercentile(99) / scale,
    p999: h.getValueAtPercentile(99.9) / scale,
    max: h.maxValue / scale,
  };
}

/** Least squares y = a + b·x; r² of the fit. */
function linearFit(xs: number[], ys: number[]): { a: number; b: number; r2: number } {
  const n = xs.length;
  if (n < 2) return { a: ys[0] ?? 0, b: 0, r2: 0 };
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  const b = sxx === 0 ? 0 : sxy / sxx;
  return { a: my - b * mx, b, r2: sxx === 0 || syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

/**
 * A full garbage collection of the main thread's heap, without --expose-gc on
 * the command line: what heapUsed then reports is live data, not garbage
 * waiting for the next major GC. Used only outside measured windows.
 */
setFlagsFromString('--expose-gc');
const fullGc = runInNewContext('gc') as () => void;
function liveHeapMb(): number {
  fullGc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/** Resolves true once the bus is drained, false after `ms`. */
async function drainedWithin(bus: MessageBus, ms: number): Promise<boolean> {
  const ac = new AbortController();
  const drained = bus.drain().then(() => true);
  const timedOut = sleep(ms, false, { signal: ac.signal }).catch(() => false);
  const ok = await Promise.race([drained, timedOut]);
  ac.abort();
  return ok;
}

// ------------------------------------------------------------------ accounting

const accounting: AccountingCheck[] = [];

/** The single-handler invariant: every accepted event is settled exactly once, every failure retried or dead-lettered. */
function checkAccounting(name: string, s: BusStats): AccountingCheck {
  const failures: string[] = [];
  const settled = s.processed + s.deadLettered + s.dropped + s.abandoned;
  if (settled !== s.published) {
    failures.push(`processed ${s.processed} + deadLettered ${s.deadLettered} + dropped ${s.dropped} + abandoned ${s.abandoned} = ${settled} ≠ published ${s.published}`);
  }
  if (s.failed !== s.retried + s.deadLettered) {
    failures.push(`failed ${s.failed} ≠ retried ${s.retried} + deadLettered ${s.deadLettered} = ${s.retried + s.deadLettered}`);
  }
  if (s.queueSize !== 0) failures.push(`queueSize ${s.queueSize} ≠ 0 after drain`);
  const check = { bus: name, pass: failures.length === 0, stats: { ...s }, failures };
  accounting.push(check);
  if (!check.pass) say(`ACCOUNTING FAIL on ${name}: ${failures.join('; ')}`);
  return check;
}

/** Drains (or gives up and stops without draining, so what is stuck is counted as abandoned), stops, checks. */
async function finishBus(name: string, bus: MessageBus): Promise<AccountingCheck> {
  const drained = await drainedWithin(bus, DRAIN_LIMIT_MS);
  if (!drained) say(`${name}: not drained after ${DRAIN_LIMIT_MS / 1000} s (queue ${bus.stats().queueSize}); stopping without drain`);
  await bus.stop(drained ? undefined : { drain: false });
  return checkAccounting(name, bus.stats());
}

// ------------------------------------------------------------------ producers

interface Produced {
  attempted: number;
  accepted: number;
  rejected: number;
  ms: number;
}

/** Publishing at most this many events per turn of the event loop at a fixed rate. */
const RATE_CHUNK = 512;

/**
 * Publishes `rate` events/s for `seconds` on schedule: event i is due at
 * t0 + i/rate. A timer loop publishes what is due in small chunks and yields,
 * so the event loop (the bus's completions, the sampler) never waits long.
 * With `rec`, each publish() call is timed into an HDR histogram (with the
 * expected interval, coordinated-omission aware), and its lag behind schedule.
 */
function produceAtRate(bus: MessageBus, rate: number, seconds: number,
  rec?: { publish: Histogram; publishRaw: Histogram; lag: Histogram; intervalNs: number }): Promise<Produced> {
  const total = Math.max(1, Math.round(rate * seconds));
  const periodMs = 1000 / rate;
  let i = 0;
  let accepted = 0;
  const t0 = performance.now();
  return new Promise((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor((performance.now() - t0) / periodMs) + 1);
      const end = Math.min(due, i + RATE_CHUNK);
      if (rec !== undefined) {
        const { publish, publishRaw, lag, intervalNs } = rec;
        for (; i < end; i++) {
          const a = performance.now();
          const ok = bus.publish(TOPIC, payloadOf(i));
          const b = performance.now();
          publish.recordValueWithExpectedInterval(ns(b - a), intervalNs);
          publishRaw.recordValue(ns(b - a));
          lag.recordValue(ns(a - (t0 + i * periodMs)));
          if (ok) accepted++;
        }
      } else {
        for (; i < end; i++) if (bus.publish(TOPIC, payloadOf(i))) accepted++;
      }
      if (i >= total) {
        resolve({ attempted: total, accepted, rejected: total - accepted, ms: performance.now() - t0 });
      } else if (i < due) {
        setImmediate(tick); // behind schedule: go on after one turn of the loop
      } else {
        setTimeout(tick, 1);
      }
    };
    tick();
  });
}

/**
 * As fast as possible for `seconds`: chunks of 4096 with a setImmediate yield
 * between them; when publish() returns false (the queue is full) the producer
 * waits for room with publishAsync, as a real one would, instead of spinning
 * on the core the workers need. Optionally times each publish() call.
 */
async function produceMax(bus: MessageBus, seconds: number, rec?: { publish: Histogram }): Promise<Produced> {
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  let i = 0;
  let refused = 0;
  while (performance.now() < deadline) {
    const end = i + 4096;
    if (rec !== undefined) {
      while (i < end) {
        const a = performance.now();
        const ok = bus.publish(TOPIC, payloadOf(i));
        rec.publish.recordValue(ns(performance.now() - a));
        if (!ok) {
          refused++;
          await bus.publishAsync(TOPIC, payloadOf(i));
        }
        i++;
      }
    } else {
      while (i < end) {
        if (!bus.publish(TOPIC, payloadOf(i))) {
          refused++;
          await bus.publishAsync(TOPIC, payloadOf(i));
        }
        i++;
      }
    }
    await yieldToLoop();
  }
  // A refused publish() was followed by a publishAsync that got in: `refused` counts the waits.
  return { attempted: i + refused, accepted: i, rejected: refused, ms: performance.now() - t0 };
}

// ------------------------------------------------------------------ 1. sustained

async function sustainedPhase(): Promise<{ result: NonNullable<BenchResult['sustained']>; chaos: BenchResult['chaos'] }> {
  const bus = await startBus(true, CHAOS ? 'chaos' : 'work');
  const intervalNs = RATE === null ? 0 : 1e9 / RATE;
  const publish = newHistogram();
  const publishRaw = newHistogram();
  const lag = newHistogram();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const memory: { t: number; rssMb: number; heapMb: number }[] = [];
  const throughput: { t: number; published: number; processed: number }[] = [];
  say(`sustained: ${RATE === null ? 'max rate' : `${RATE.toLocaleString('en-US')} events/s`} for ${DURATION} s after ${WARMUP} s of warm-up, ${THREADS} threads, ` +
    `${PAYLOAD_TEXT}, handler ${COST_US > 0 ? `${COST_US} µs` : 'no-op'}${CHAOS ? `, chaos: failure ${FAILURE_RATE} crash ${CRASH_RATE} timeout ${TIMEOUT_RATE}` : ''}`);

  if (WARMUP > 0) {
    if (RATE === null) await produceMax(bus, WARMUP);
    else await produceAtRate(bus, RATE, WARMUP);
  }
  // What the bus measured so far is the warm-up's: subtracted from the phase's figures below.
  const e2eWarmup = bus.metrics.histogram('event_end_to_end_seconds');
  const liveHeapStart = liveHeapMb();
  const t0 = performance.now();
  const start = bus.stats();
  let last = { t: 0, published: start.published, processed: start.processed };
  let ticks = 0;
  const sample = (): void => {
    const t = (performance.now() - t0) / 1000;
    const mem = process.memoryUsage();
    memory.push({ t, rssMb: mem.rss / 2 ** 20, heapMb: mem.heapUsed / 2 ** 20 });
    if (++ticks % 4 !== 0) return;
    const s = bus.stats();
    const dt = t - last.t;
    const point = { t, published: (s.published - last.published) / dt, processed: (s.processed - last.processed) / dt };
    throughput.push(point);
    last = { t, published: s.published, processed: s.processed };
    // The bus's merged end-to-end histogram (ns). Not metrics.snapshot(): that takes 10–40 ms of the main
    // thread (it computes hdr-histogram-js's `mean`, a slow iteration), which would stall the producer
    // every second and show up in the very latencies measured here. Its cost is measured once, below.
    const e2eP99Ms = bus.metrics.histogram('event_end_to_end_seconds').getValueAtPercentile(99) / 1e6;
    say(`  ${t.toFixed(1).padStart(5)} s  in ${Math.round(point.published).toLocaleString('en-US').padStart(9)} ev/s  ` +
      `out ${Math.round(point.processed).toLocaleString('en-US').padStart(9)} ev/s  ` +
      `p99 publish ${(publish.getValueAtPercentile(99) / 1e3).toFixed(1)} µs  p99 e2e ${e2eP99Ms.toFixed(2)} ms  ` +
      `queue ${s.queueSize}  rss ${(mem.rss / 2 ** 20).toFixed(0)} MB${CHAOS ? `  failed ${s.failed} dead ${s.deadLettered}` : ''}`);
  };
  const sampler = setInterval(sample, 250);
  sample();
  loop.enable();

  const produced = RATE === null
    ? await produceMax(bus, DURATION, { publish })
    : await produceAtRate(bus, RATE, DURATION, { publish, publishRaw, lag, intervalNs });
  const tEnd = performance.now();
  loop.disable();
  const drainedFast = await drainedWithin(bus, 1000);
  const drainMs = drainedFast ? performance.now() - tEnd : null;
  if (!drainedFast) say(`  queue not drained 1 s after the last publish (queue ${bus.stats().queueSize}); waiting up to ${DRAIN_LIMIT_MS / 1000} s`);
  const drained = drainedFast || (await drainedWithin(bus, DRAIN_LIMIT_MS));
  clearInterval(sampler);

  const e2eRaw = bus.metrics.histogram('event_end_to_end_seconds');
  try {
    e2eRaw.subtract(e2eWarmup);
  } catch (err) {
    say(`  could not take the warm-up out of the end-to-end histogram (${(err as Error).message}); it includes the warm-up`);
  }
  const liveHeapEnd = liveHeapMb();
  const snapshotTimes: number[] = [];
  for (let k = 0; k < 3; k++) {
    const a = performance.now();
    bus.metrics.snapshot();
    snapshotTimes.push(performance.now() - a);
  }
  const e2e = RATE === null ? e2eRaw : e2eRaw.copyCorrectedForCoordinatedOmission(intervalNs);
  if (!drained) say(`  not drained after ${DRAIN_LIMIT_MS / 1000} s; stopping without drain`);
  await bus.stop(drained ? undefined : { drain: false });
  const check = checkAccounting('sustained', bus.stats());
  const stats = bus.stats();

  const seconds = produced.ms / 1000;
  const achievedRate = produced.accepted / seconds;
  const warmup = 0.2 * DURATION;
  const after = memory.filter((m) => m.t >= warmup && m.t <= DURATION);
  const rssFit = linearFit(after.map((m) => m.t / 60), after.map((m) => m.rssMb));
  const heapFit = linearFit(after.map((m) => m.t / 60), after.map((m) => m.heapMb));
  const latency: LatencyPoint[] = [];
  for (let k = 0; k <= 50; k++) {
    const p = k === 0 ? 0 : 100 * (1 - 10 ** (-k / 10));
    if (p > 0 && p >= 100 * (1 - 1 / Math.max(10, e2e.totalCount))) break; // no more resolution than samples
    latency.push({
      percentile: p,
      publishUs: publish.getValueAtPercentile(p) / 1e3,
      sendLagUs: lag.getValueAtPercentile(p) / 1e3,
      endToEndUs: e2e.getValueAtPercentile(p) / 1e3,
      endToEndRawUs: e2eRaw.getValueAtPercentile(p) / 1e3,
    });
  }
  const result: NonNullable<BenchResult['sustained']> = {
    offeredRate: RATE,
    seconds,
    attempted: produced.attempted,
    accepted: produced.accepted,
    rejected: produced.rejected,
    achievedRate,
    keptUp: RATE === null ? null : achievedRate >= 0.98 * RATE && drainedFast,
    drainMs,
    publishUs: percentiles(publish, 1e3),
    publishRawUs: percentiles(RATE === null ? publish : publishRaw, 1e3),
    eventLoopDelayMs: {
      count: loop.count, p50: loop.percentile(50) / 1e6, p95: loop.percentile(95) / 1e6, p99: loop.percentile(99) / 1e6,
      p999: loop.percentile(99.9) / 1e6, max: loop.max / 1e6,
    },
    sendLagUs: percentiles(lag, 1e3),
    endToEndMs: percentiles(e2e, 1e6),
    endToEndRawMs: percentiles(e2eRaw, 1e6),
    metricsSnapshotMs: median(snapshotTimes),
    memory: {
      peakRssMb: Math.max(...memory.map((m) => m.rssMb)),
      peakHeapMb: Math.max(...memory.map((m) => m.heapMb)),
      rssSlopeMbPerMin: rssFit.b,
      heapSlopeMbPerMin: heapFit.b,
      warmupSeconds: warmup,
      samples: after.length,
      liveHeapStartMb: liveHeapStart,
      liveHeapEndMb: liveHeapEnd,
    },
    stats: { ...stats },
    series: { throughput, memory, latency },
  };
  const chaos: BenchResult['chaos'] = {
    enabled: CHAOS,
    published: stats.published,
    processed: stats.processed,
    failed: stats.failed,
    retried: stats.retried,
    deadLettered: stats.deadLettered,
    dropped: stats.dropped,
    abandoned: stats.abandoned,
    pass: check.pass,
    failures: check.failures,
  };
  say(`sustained: achieved ${Math.round(achievedRate).toLocaleString('en-US')} ev/s, p99 publish ${result.publishUs.p99.toFixed(1)} µs, ` +
    `p99 e2e ${result.endToEndMs.p99.toFixed(2)} ms${RATE === null ? '' : ' (CO-corrected)'}`);
  return { result, chaos };
}

// ------------------------------------------------------------------ 2. max rate, metrics on / off

async function maxRatePhase(): Promise<NonNullable<BenchResult['maxRate']>> {
  const roundSeconds = MAX_SECONDS / MAX_ROUNDS;
  // One bus per mode, kept for every round: rounds measure publishing, not pool start-up.
  const on = await startBus(true, 'work');
  const off = await startBus(false, 'work');
  /**
   * Steady state: the producer keeps the queue full for ramp + seconds + ramp;
   * the rate is the events processed (delivered) between the two ramps, so
   * neither the start (empty queue) nor the final drain of up to
   * queue.capacity events weighs on it. The producer yields every 4096
   * events, so the two timers fire on time.
   */
  const ramp = 0.2;
  const round = async (bus: MessageBus, seconds: number): Promise<number> => {
    const producing = produceMax(bus, ramp + seconds + ramp);
    await sleep(ramp * 1000);
    const p0 = bus.stats().processed;
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const p1 = bus.stats().processed;
    const t1 = performance.now();
    await producing;
    await bus.drain();
    return (p1 - p0) / ((t1 - t0) / 1000);
  };
  // Warm-up (JIT, worker start) for both, not counted.
  const warm = Math.min(0.5, roundSeconds);
  await round(on, warm);
  await round(off, warm);
  const rates = { on: [] as number[], off: [] as number[] };
  for (let r = 0; r < MAX_ROUNDS; r++) {
    // ABBA order, so a drift of the machine over time weighs on both modes alike.
    const order: ('on' | 'off')[] = r % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
    for (const mode of order) {
      const rate = await round(mode === 'on' ? on : off, roundSeconds);
      rates[mode].push(rate);
      say(`max rate: round ${r + 1}/${MAX_ROUNDS} metrics ${mode.padEnd(3)} ${rateText(rate)}`);
    }
  }
  await finishBus('max-rate metrics on', on);
  await finishBus('max-rate metrics off', off);
  const medianOn = median(rates.on);
  const medianOff = median(rates.off);
  return {
    roundSeconds,
    rounds: MAX_ROUNDS,
    metricsOn: rates.on,
    metricsOff: rates.off,
    medianOn,
    medianOff,
    metricsCostPct: medianOff > 0 ? ((medianOff - medianOn) / medianOff) * 100 : 0,
  };
}

// ------------------------------------------------------------------ 3. CPU per event

async function cpuPhase(): Promise<NonNullable<BenchResult['cpu']>> {
  const bus = await startBus(true, 'work');
  const points: NonNullable<BenchResult['cpu']>['points'] = [];
  // Warm every thread's JIT at the highest rate first, so the first point is not the warm-up.
  await produceAtRate(bus, Math.max(...CPU_RATES), 1);
  await bus.drain();
  for (const rate of CPU_RATES) {
    await produceAtRate(bus, rate, Math.min(0.5, CPU_SECONDS)); // settle at this rate first
    await bus.drain();
    const before = bus.stats().processed;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await produceAtRate(bus, rate, CPU_SECONDS);
    await bus.drain();
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const events = bus.stats().processed - before;
    const cpuUs = cpu.user + cpu.system;
    const point = {
      rate,
      achieved: events / (wallMs / 1000),
      cpuUsPerEvent: events > 0 ? cpuUs / events : 0,
      cpuPctOfCore: (cpuUs / 1000 / wallMs) * 100,
      seconds: wallMs / 1000,
    };
    points.push(point);
    say(`cpu: ${rate.toLocaleString('en-US')}/s offered: ${point.cpuUsPerEvent.toFixed(2)} µs/event, ${point.cpuPctOfCore.toFixed(1)} % of one core`);
  }
  await finishBus('cpu', bus);
  let fit: NonNullable<BenchResult['cpu']>['fit'] = null;
  if (points.length >= 2) {
    const f = linearFit(points.map((p) => p.achieved), points.map((p) => p.cpuPctOfCore));
    fit = { usPerEvent: (f.b / 100) * 1e6, interceptPct: f.a, r2: f.r2 };
  }
  return { points, fit };
}

// ------------------------------------------------------------------ 5. baselines

async function piscinaBaseline(): Promise<{ events: number; rate: number; seconds: number }> {
  const pool = new Piscina({ filename: new URL('./perf_piscina_task.mjs', import.meta.url).href, minThreads: THREADS, maxThreads: THREADS });
  const batch = async (n: number): Promise<number> => {
    const t0 = performance.now();
    const done: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) done.push(pool.run(eventOf(i)));
    await Promise.all(done);
    return (performance.now() - t0) / 1000;
  };
  // Warm-up, calibration, then enough events for about 2 s.
  await batch(2000);
  const calibration = 4000;
  const estimate = calibration / (await batch(calibration));
  const events = Math.max(2000, Math.min(400_000, Math.round(estimate * 2)));
  const seconds = await batch(events);
  await pool.destroy();
  return { events, rate: events / seconds, seconds };
}

async function inlineBaseline(): Promise<{ events: number; rate: number; seconds: number }> {
  const { work } = (await import(HANDLERS.href)) as { work: (event: unknown) => void };
  const emitter = new EventEmitter();
  emitter.on(TOPIC, work);
  const run = (seconds: number): { events: number; seconds: number } => {
    const t0 = performance.now();
    const deadline = t0 + seconds * 1000;
    let i = 0;
    while (performance.now() < deadline) {
      const end = i + 1000;
      for (; i < end; i++) emitter.emit(TOPIC, eventOf(i));
    }
    return { events: i, seconds: (performance.now() - t0) / 1000 };
  };
  run(0.2); // warm-up
  const r = run(1);
  return { events: r.events, rate: r.events / r.seconds, seconds: r.seconds };
}

// ------------------------------------------------------------------ main

async function main(): Promise<number> {
  const startedAt = new Date();
  const loadAvg = loadavg();
  const wall0 = performance.now();
  let sustained: BenchResult['sustained'] = null;
  let chaos: BenchResult['chaos'] = {
    enabled: false, published: 0, processed: 0, failed: 0, retried: 0, deadLettered: 0, dropped: 0, abandoned: 0, pass: true, failures: [],
  };
  if (PHASES.has('sustained')) ({ result: sustained, chaos } = await sustainedPhase());
  const maxRate = PHASES.has('max') ? await maxRatePhase() : null;
  const cpu = PHASES.has('cpu') && CPU_RATES.length > 0 ? await cpuPhase() : null;
  let baselines: BenchResult['baselines'] = null;
  if (!SKIP_BASELINES) {
    say('baselines: Piscina one run() per event…');
    const piscina = await piscinaBaseline();
    say(`baselines: Piscina per event ${rateText(piscina.rate)}; inline EventEmitter…`);
    const inline = await inlineBaseline();
    say(`baselines: inline EventEmitter ${rateText(inline.rate)}`);
    baselines = {
      piscina, inline, ratioToPiscina: maxRate ? maxRate.medianOn / piscina.rate : null, ratioToInline: maxRate ? maxRate.medianOn / inline.rate : null,
    };
  }
  const efficiency: BenchResult['efficiency'] = COST_US > 0 && maxRate
    ? {
      costUs: COST_US, threads: THREADS, idealRate: (THREADS * 1e6) / COST_US, achievedRate: maxRate.medianOn,
      pct: (maxRate.medianOn / ((THREADS * 1e6) / COST_US)) * 100,
    }
    : null;
  const ok = accounting.every((a) => a.pass);
  const cpuInfo = cpus();
  const result: BenchResult = {
    meta: {
      command: `npx tsx bench/bus_performance.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
      startedAt: startedAt.toISOString(),
      wallSeconds: (performance.now() - wall0) / 1000,
      node: `node ${process.version}`,
      platform: `${process.platform} ${process.arch}`,
      cpuModel: cpuInfo[0]?.model.trim() ?? 'unknown',
      cores: availableParallelism(),
      loadAvg,
    },
    config: {
      rate: RATE, duration: DURATION, warmup: WARMUP, threads: THREADS, payload: PAYLOAD_TEXT, payloadBytes: PAYLOAD_BYTES, binary: BINARY,
      handlerCostUs: COST_US, failureRate: FAILURE_RATE, crashRate: CRASH_RATE, timeoutRate: TIMEOUT_RATE,
      handlerTimeoutMs: HANDLER_TIMEOUT_MS, retry: RETRY, breaker: BREAKER, queueCapacity: QUEUE_CAPACITY,
      maxSeconds: MAX_SECONDS, maxRounds: MAX_ROUNDS, cpuRates: CPU_RATES, cpuSeconds: CPU_SECONDS, skipBaselines: SKIP_BASELINES,
    },
    sustained, maxRate, cpu, baselines, efficiency, chaos, accounting, errorLogs, ok,
  };
  if (REPORT) {
    writeFileSync(REPORT, renderReport(result));
    say(`report written to ${REPORT}`);
  }
  const out = JSON_OUT ? `${JSON.stringify(result)}\n` : `\n${summaryText(result)}\n`;
  await new Promise<void>((resolve) => process.stdout.write(out, () => resolve()));
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
