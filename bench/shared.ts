/**
 * What every phase of `ringbus bench` shares: the run's context (config,
 * payloads, the counting logger, the accounting checks), the one place buses
 * are built (ResilientMessageBus at its defaults, plus only the overrides a
 * setup names), and small statistics helpers.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { build, type Histogram } from 'hdr-histogram-js';
import { ResilientMessageBus, workerHandler, type BusOptions, type BusStats, type Logger, type MessageBus } from '../src/index.js';
import { wrap, type BenchConfig } from './bench_flags.js';
import type { AccountingCheck, Percentiles, Spread } from './report_types.js';

export const TOPIC = 'order.created';
export const HANDLERS = new URL('./perf_handlers.mjs', import.meta.url);
/** Wait this long for a drain before declaring the bus stuck. */
export const DRAIN_LIMIT_MS = 60_000;

/** Progress on stderr (stdout carries only the result), wrapped at 120 columns. */
export const say = (line: string): void => {
  const [first, ...rest] = [...line].length <= 120 ? [line] : wrap(line, 120);
  const tail = rest.length > 0 ? wrap(rest.join(' '), 116).map((l) => `    ${l}`) : [];
  process.stderr.write(`${[first, ...tail].join('\n')}\n`);
};

export type PayloadOf = (i: number) => unknown;

/** The event a handler receives, for the baselines (the bus builds the same in its workers). */
export interface BenchEvent {
  id: string;
  topic: string;
  payload: unknown;
  priority: string;
  sessionId: undefined;
  attempt: number;
  publishedAt: number;
}

/** A bus configuration: ResilientMessageBus defaults plus exactly these. */
export interface BusSetup {
  /** Pool min = max threads; null = the library's default pool. */
  threads: number | null;
  metrics: boolean;
  handler: 'work' | 'chaos';
}

export interface BenchContext {
  cfg: BenchConfig;
  /** The run's payload (JSON object or bytes, per --binary), event i. */
  payloadOf: PayloadOf;
  /** `binary 100 B` or `JSON ~100 B`. */
  payloadText: string;
  eventOf: (i: number) => BenchEvent;
  accounting: AccountingCheck[];
  errorLogs: () => number;
  /** The logger every bus of the run gets: counts errors (the first five on stderr), ignores the rest. */
  logger: Logger;
  /** Starts a bus of this setup with the benchmark's handler on TOPIC. */
  startBus: (setup: BusSetup) => Promise<MessageBus>;
  /** The options a setup adds to the defaults, as text ('none'). */
  describe: (setup: BusSetup) => string;
}

/** Payload i: a JSON object whose text is about `bytes` long, or `bytes` raw bytes (one buffer, reused: publish copies it). */
export function payloads(binary: boolean, bytes: number): { payloadOf: PayloadOf; text: string } {
  if (binary) {
    const buf = new Uint8Array(bytes).fill(7);
    const view = new DataView(buf.buffer);
    return {
      payloadOf: (i) => {
        if (bytes >= 4) view.setUint32(0, i >>> 0);
        return buf;
      },
      text: `binary ${bytes} B`,
    };
  }
  const base = { id: 100_000, type: TOPIC, user: 'user-12345', amount: 123.45, pad: '' };
  const pad = 'x'.repeat(Math.max(0, bytes - JSON.stringify(base).length));
  const payloadOf: PayloadOf = (i) => ({ id: i, type: TOPIC, user: 'user-12345', amount: 123.45, pad });
  return { payloadOf, text: `JSON ~${JSON.stringify(payloadOf(123_456)).length} B` };
}

export function createContext(cfg: BenchConfig): BenchContext {
  let errors = 0;
  // The one option every bus gets besides its setup: a logger that counts errors (the first five on stderr).
  const logger = {
    debug() {},
    info() {},
    warn() {},
    error(obj: unknown, msg?: string) {
      if (++errors <= 5) console.error('[ringbus error]', msg ?? '', obj);
      else if (errors === 6) console.error('[ringbus error] further error logs are counted, not printed');
    },
  };
  // Handler settings for every thread (bench/perf_handlers.mjs reads them at load):
  // set before any pool exists, since workers copy process.env when they start.
  process.env.RINGBUS_BENCH_HANDLER = JSON.stringify({
    costUs: cfg.costUs, failureRate: cfg.failureRate, crashRate: cfg.crashRate, timeoutRate: cfg.timeoutRate,
    hangMs: Math.max(1000, 5 * (cfg.handlerTimeoutMs ?? 200)),
  });
  const options = (setup: BusSetup): BusOptions => ({
    logger,
    ...(setup.threads === null ? {} : { pool: { minThreads: setup.threads, maxThreads: setup.threads } }),
    ...(setup.metrics ? {} : { metrics: false }),
    ...(cfg.handlerTimeoutMs === null ? {} : { handlerTimeoutMs: cfg.handlerTimeoutMs }),
  });
  const { payloadOf, text } = payloads(cfg.binary, cfg.payloadBytes);
  return {
    cfg,
    payloadOf,
    payloadText: text,
    eventOf: (i) => ({ id: `bench-${i}`, topic: TOPIC, payload: payloadOf(i), priority: 'normal', sessionId: undefined, attempt: 0, publishedAt: Date.now() }),
    accounting: [],
    errorLogs: () => errors,
    logger,
    async startBus(setup) {
      const bus = new ResilientMessageBus(options(setup));
      bus.registerEventHandler(TOPIC, workerHandler(HANDLERS, setup.handler));
      await bus.start();
      return bus;
    },
    describe(setup) {
      const parts: string[] = [];
      if (setup.threads !== null) parts.push(`pool threads ${setup.threads}`);
      if (!setup.metrics) parts.push('metrics off');
      if (cfg.handlerTimeoutMs !== null) parts.push(`handlerTimeoutMs ${cfg.handlerTimeoutMs}`);
      return parts.length === 0 ? 'none' : parts.join(', ');
    },
  };
}

// ------------------------------------------------------------------ accounting

/** The single-handler invariant: every accepted event is settled exactly once, every failure retried or dead-lettered. */
export function checkAccounting(ctx: BenchContext, name: string, s: BusStats): AccountingCheck {
  const failures: string[] = [];
  const settled = s.processed + s.deadLettered + s.dropped + s.abandoned;
  if (settled !== s.published) {
    failures.push(`processed ${s.processed} + deadLettered ${s.deadLettered} + dropped ${s.dropped} + abandoned ${s.abandoned} ` +
      `= ${settled} ≠ published ${s.published}`);
  }
  if (s.failed !== s.retried + s.deadLettered) {
    failures.push(`failed ${s.failed} ≠ retried ${s.retried} + deadLettered ${s.deadLettered} = ${s.retried + s.deadLettered}`);
  }
  if (s.queueSize !== 0) failures.push(`queueSize ${s.queueSize} ≠ 0 after drain`);
  const check = { bus: name, pass: failures.length === 0, stats: { ...s }, failures };
  ctx.accounting.push(check);
  if (!check.pass) say(`ACCOUNTING FAIL on ${name}: ${failures.join('; ')}`);
  return check;
}

/** Resolves true once the bus is drained, false after `ms`. */
export async function drainedWithin(bus: MessageBus, ms: number): Promise<boolean> {
  const ac = new AbortController();
  const drained = bus.drain().then(() => true);
  const timedOut = sleep(ms, false, { signal: ac.signal }).catch(() => false);
  const ok = await Promise.race([drained, timedOut]);
  ac.abort();
  return ok;
}

/** Drains (or gives up and stops without draining, so what is stuck is counted as abandoned), stops, checks. */
export async function finishBus(ctx: BenchContext, name: string, bus: MessageBus): Promise<AccountingCheck> {
  const drained = await drainedWithin(bus, DRAIN_LIMIT_MS);
  if (!drained) say(`${name}: not drained after ${DRAIN_LIMIT_MS / 1000} s (queue ${bus.stats().queueSize}); stopping without drain`);
  await bus.stop(drained ? undefined : { drain: false });
  return checkAccounting(ctx, name, bus.stats());
}

// ------------------------------------------------------------------ statistics

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
export const spread = (xs: number[]): Spread => ({
  min: xs.length ? Math.min(...xs) : 0, median: median(xs), max: xs.length ? Math.max(...xs) : 0,
});
export const ns = (ms: number): number => (ms > 0 ? Math.round(ms * 1e6) : 0);
export const newHistogram = (): Histogram => build({ numberOfSignificantValueDigits: 3, bitBucketSize: 64 });

export function percentiles(h: Histogram, scale: number): Percentiles {
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
export function linearFit(xs: number[], ys: number[]): { a: number; b: number; r2: number } {
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

let gc: (() => void) | undefined;
/**
 * A full garbage collection of the main thread's heap, without --expose-gc on
 * the command line: what heapUsed then reports is live data, not garbage
 * waiting for the next major GC. Used only outside measured windows.
 */
export function fullGc(): void {
  if (gc === undefined) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}

export function liveHeapMb(): number {
  fullGc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/** Whole-process CPU (every thread) over `fn`, as % of one core, with its wall time. */
export async function cpuOver<T>(fn: () => Promise<T>): Promise<{ value: T; cpuUs: number; wallMs: number; pctOfCore: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuUs = cpu.user + cpu.system;
  return { value, cpuUs, wallMs, pctOfCore: wallMs > 0 ? (cpuUs / 1000 / wallMs) * 100 : 0 };
}
