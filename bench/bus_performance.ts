/**
 * `ringbus bench`: what an app gets from ringbus, measured. Every bus is a
 * ResilientMessageBus (retry, circuit breakers, dead letters, handler timeout,
 * metrics: what the README tells users to use) at its DEFAULT options; the
 * one tuned configuration is labelled as such. Phases (--phases), one module
 * each in bench/phases/:
 *
 *  sustained  a fixed offered rate: publish and end-to-end latency, memory, throughput, chaos
 *  max        the natural producer loop at defaults, metrics off, tuned, binary: ≥ 5 rounds each
 *  cpu        CPU per event at several rates (whole process, workers included)
 *  idle       CPU of a started, idle bus, and at 100 events/s
 *  baselines  Piscina at its defaults (1,024 in flight) and an inline EventEmitter
 *
 * With --transport jetstream none of these runs, but bench/phases/jetstream.ts: the same bus across
 * processes through NATS JetStream (consumer processes, throughput, latency, a SIGKILL, per-event messages).
 *
 * The summary (bench/report.ts) marks every target ✓ or ✗ and ends with
 * `result: OK` only when all are met; --json prints BenchResult
 * (bench/report_types.ts), --report writes an HTML report with charts.
 *
 *   npx ringbus bench [--rate 10000] [--duration 10] [--json] [--report report.html] ...
 *   npx tsx bench/bus_performance.ts --help      (from a checkout; also npm run bench -- --help)
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { DEFAULT_OPTIONS } from '../src/index.js';
import { FlagError, parseBenchFlags, usage, type BenchConfig, type Phase } from './bench_flags.js';
import { baselinesPhase } from './phases/baselines.js';
import { cpuPhase } from './phases/cpu.js';
import { idlePhase } from './phases/idle.js';
import { jetstreamPhase } from './phases/jetstream.js';
import { maxRatePhase } from './phases/max_rate.js';
import { sustainedPhase } from './phases/sustained.js';
import { renderReport, summaryRows, summaryText } from './report.js';
import type { BenchResult } from './report_types.js';
import { createContext, say } from './shared.js';

async function run(cfg: BenchConfig): Promise<BenchResult> {
  const ctx = createContext(cfg);
  const startedAt = new Date();
  const loadAvg = loadavg();
  const wall0 = performance.now();
  let sustained: BenchResult['sustained'] = null;
  let chaos: BenchResult['chaos'] = {
    enabled: false, published: 0, processed: 0, failed: 0, retried: 0, deadLettered: 0, dropped: 0, abandoned: 0, pass: true, failures: [],
  };
  /** Runs a phase if it was asked for, and says how long it took. */
  const phase = async <T>(name: Phase, fn: () => Promise<T>): Promise<T | null> => {
    if (!cfg.phases.has(name)) return null;
    const t0 = performance.now();
    const value = await fn();
    say(`${name}: phase done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return value;
  };
  const sustainedRun = await phase('sustained', () => sustainedPhase(ctx));
  if (sustainedRun) ({ result: sustained, chaos } = sustainedRun);
  const maxRate = await phase('max', () => maxRatePhase(ctx));
  const cpu = await phase('cpu', () => cpuPhase(ctx));
  const idle = await phase('idle', () => idlePhase(ctx));
  const natural = maxRate?.modes.find((m) => m.key === 'defaults')?.spread.median ?? null;
  const baselines = await phase('baselines', () => baselinesPhase(ctx, natural));
  let jetstream: BenchResult['jetstream'] = null;
  if (cfg.transport === 'jetstream') {
    const t0 = performance.now();
    jetstream = await jetstreamPhase(ctx);
    say(`jetstream: phase done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const threads = cfg.threads ?? DEFAULT_OPTIONS.pool.maxThreads;
  const efficiency: BenchResult['efficiency'] = cfg.costUs > 0 && natural !== null
    ? { costUs: cfg.costUs, threads, idealRate: (threads * 1e6) / cfg.costUs, achievedRate: natural, pct: (natural / ((threads * 1e6) / cfg.costUs)) * 100 }
    : null;
  const cpuInfo = cpus();
  const result: BenchResult = {
    schema: 2,
    meta: {
      command: cfg.command,
      startedAt: startedAt.toISOString(),
      wallSeconds: (performance.now() - wall0) / 1000,
      node: `node ${process.version}`,
      platform: `${process.platform} ${process.arch}`,
      cpuModel: cpuInfo[0]?.model.trim() ?? 'unknown',
      cores: availableParallelism(),
      loadAvg,
    },
    config: {
      bus: 'ResilientMessageBus',
      overrides: ctx.describe({ threads: cfg.threads, metrics: true, handler: 'work' }),
      threads: cfg.threads,
      defaultMaxThreads: DEFAULT_OPTIONS.pool.maxThreads,
      phases: cfg.transport === 'jetstream' ? ['jetstream'] : [...cfg.phases],
      rate: cfg.rate,
      duration: cfg.duration,
      warmup: cfg.warmup,
      payload: ctx.payloadText,
      payloadBytes: cfg.payloadBytes,
      binary: cfg.binary,
      handlerCostUs: cfg.costUs,
      failureRate: cfg.failureRate,
      crashRate: cfg.crashRate,
      timeoutRate: cfg.timeoutRate,
      handlerTimeoutMs: cfg.handlerTimeoutMs ?? DEFAULT_OPTIONS.handlerTimeoutMs,
      retry: { ...DEFAULT_OPTIONS.retry },
      breaker: { ...DEFAULT_OPTIONS.circuitBreaker },
      queueCapacity: DEFAULT_OPTIONS.queue.capacity,
      maxSeconds: cfg.maxSeconds,
      maxRounds: cfg.maxRounds,
      tunedThreads: cfg.tunedThreads,
      cpuRates: cfg.cpuRates,
      cpuSeconds: cfg.cpuSeconds,
      idleSeconds: cfg.idleSeconds,
      idleRate: cfg.idleRate,
      baselineSeconds: cfg.baselineSeconds,
      piscinaInFlight: cfg.piscinaInFlight,
      transport: cfg.transport,
      jetstreamFlags: cfg.transport === 'jetstream' ? {
        servers: cfg.servers, consumers: cfg.consumers, parts: [...cfg.jsParts], rounds: cfg.jsRounds, events: cfg.jsEvents, rate: cfg.jsRate,
        seconds: cfg.jsSeconds, ackWaitMs: cfg.jsAckWaitMs, baselineSeconds: cfg.jsBaselineSeconds,
      } : null,
    },
    sustained, maxRate, cpu, idle, baselines, efficiency, jetstream, chaos,
    accounting: ctx.accounting,
    errorLogs: ctx.errorLogs(),
    targets: [],
    ok: false,
  };
  result.targets = summaryRows(result).filter((r) => r.ok !== undefined)
    .map((r) => ({ section: r.section, metric: r.metric, value: r.value, target: r.target, pass: r.ok === true }));
  result.ok = result.targets.every((t) => t.pass) && result.accounting.every((a) => a.pass);
  return result;
}

/** Exit code: 0 all targets met, 1 accounting broken or an error, 2 bad flags, 3 a performance target missed. */
async function main(argv: string[]): Promise<number> {
  let cfg: BenchConfig | null;
  try {
    cfg = parseBenchFlags(argv);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    process.stderr.write(`${err.message}\n\n${usage()}\n`);
    return 2;
  }
  if (cfg === null) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  // Find out now, not after a long run, if the report cannot be written.
  if (cfg.report) {
    try {
      writeFileSync(cfg.report, '');
    } catch (err) {
      process.stderr.write(`ringbus bench: cannot write the report to ${cfg.report}: ${(err as Error).message}\n`);
      return 2;
    }
  }
  const result = await run(cfg);
  if (cfg.report) {
    writeFileSync(cfg.report, renderReport(result));
    say(`report written to ${cfg.report}`);
  }
  const out = cfg.json ? `${JSON.stringify(result)}\n` : `\n${summaryText(result)}\n`;
  await new Promise<void>((resolve) => process.stdout.write(out, () => resolve()));
  if (!result.accounting.every((a) => a.pass)) return 1;
  return result.ok ? 0 : 3;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
