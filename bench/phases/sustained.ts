/**
 * Phase "sustained": one bus at its defaults, a fixed offered rate (or the
 * natural loop with --rate max) for --duration s after --warmup s. Measures
 * publish() latency (HDR, coordinated-omission aware), lag against the
 * schedule, end-to-end latency (the bus's own histogram, CO-corrected, the
 * warm-up subtracted), event-loop delay, RSS/heap every 250 ms with the slope
 * after warm-up (runs of 30 s or more), throughput per second, whether it
 * kept up, and, with --failure-rate/--crash-rate/--timeout-rate, the chaos
 * outcome and the accounting invariant.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { BenchResult } from '../report_types.js';
import { produceAtRate, produceNatural } from '../producers.js';
import {
  DRAIN_LIMIT_MS, checkAccounting, drainedWithin, linearFit, liveHeapMb, median, newHistogram, percentiles, say, type BenchContext,
} from '../shared.js';

type Sustained = NonNullable<BenchResult['sustained']>;

/** Runs shorter than this report no RSS slope: a few seconds of samples fit allocation noise, not a leak. */
export const SLOPE_MIN_SECONDS = 30;

const int = (n: number): string => Math.round(n).toLocaleString('en-US');

export async function sustainedPhase(ctx: BenchContext): Promise<{ result: Sustained; chaos: BenchResult['chaos'] }> {
  const { cfg } = ctx;
  const rate = cfg.rate;
  const bus = await ctx.startBus({ threads: cfg.threads, metrics: true, handler: cfg.chaos ? 'chaos' : 'work' });
  const intervalNs = rate === null ? 0 : 1e9 / rate;
  const publish = newHistogram();
  const publishRaw = newHistogram();
  const lag = newHistogram();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const memory: { t: number; rssMb: number; heapMb: number }[] = [];
  const throughput: { t: number; published: number; processed: number }[] = [];
  say(`sustained: ${rate === null ? 'max rate (natural loop)' : `${int(rate)} events/s`} for ${cfg.duration} s after ` +
    `${cfg.warmup} s warm-up, ${ctx.payloadText}, handler ${cfg.costUs > 0 ? `${cfg.costUs} µs` : 'no-op'}` +
    `${cfg.chaos ? `, chaos: failure ${cfg.failureRate} crash ${cfg.crashRate} timeout ${cfg.timeoutRate}` : ''}`);

  if (cfg.warmup > 0) {
    if (rate === null) await produceNatural(bus, ctx.payloadOf, cfg.warmup);
    else await produceAtRate(bus, ctx.payloadOf, rate, cfg.warmup);
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
    // The bus's merged end-to-end histogram (ns), not metrics.snapshot(): a snapshot takes milliseconds of
    // the main thread, which would stall the producer every second and show up in the latencies measured.
    const e2eP99Ms = bus.metrics.histogram('event_end_to_end_seconds').getValueAtPercentile(99) / 1e6;
    say(`  ${t.toFixed(1).padStart(5)} s  in ${int(point.published).padStart(9)}/s  out ${int(point.processed).padStart(9)}/s  ` +
      `p99 publish ${(publish.getValueAtPercentile(99) / 1e3).toFixed(1)} µs, e2e ${e2eP99Ms.toFixed(2)} ms  ` +
      `queue ${s.queueSize}  rss ${(mem.rss / 2 ** 20).toFixed(0)} MB${cfg.chaos ? `  failed ${s.failed} dead ${s.deadLettered}` : ''}`);
  };
  const sampler = setInterval(sample, 250);
  sample();
  loop.enable();

  const produced = rate === null
    ? await produceNatural(bus, ctx.payloadOf, cfg.duration, { publish })
    : await produceAtRate(bus, ctx.payloadOf, rate, cfg.duration, { publish, publishRaw, lag, intervalNs });
  const tEnd = performance.now();
  loop.disable();
  const drainedFast = await drainedWithin(bus, 1000);
  const drainMs = drainedFast ? performance.now() - tEnd : null;
  if (!drainedFast) say(`  not drained 1 s after the last publish (queue ${bus.stats().queueSize}); waiting up to ${DRAIN_LIMIT_MS / 1000} s`);
  const drained = drainedFast || (await drainedWithin(bus, DRAIN_LIMIT_MS));
  clearInterval(sampler);

  const e2eRaw = bus.metrics.histogram('event_end_to_end_seconds');
  try {
    e2eRaw.subtract(e2eWarmup);
  } catch (err) {
    say(`  could not take the warm-up out of the end-to-end histogram (${(err as Error).message}); it includes it`);
  }
  const liveHeapEnd = liveHeapMb();
  const snapshotTimes: number[] = [];
  for (let k = 0; k < 3; k++) {
    const a = performance.now();
    bus.metrics.snapshot();
    snapshotTimes.push(performance.now() - a);
  }
  const e2e = rate === null ? e2eRaw : e2eRaw.copyCorrectedForCoordinatedOmission(intervalNs);
  if (!drained) say(`  not drained after ${DRAIN_LIMIT_MS / 1000} s; stopping without drain`);
  await bus.stop(drained ? undefined : { drain: false });
  const check = checkAccounting(ctx, 'sustained', bus.stats());
  const stats = bus.stats();

  const seconds = produced.ms / 1000;
  const achievedRate = produced.accepted / seconds;
  const warmup = 0.2 * cfg.duration;
  const after = memory.filter((m) => m.t >= warmup && m.t <= cfg.duration);
  const judged = cfg.duration >= SLOPE_MIN_SECONDS;
  const rssFit = linearFit(after.map((m) => m.t / 60), after.map((m) => m.rssMb));
  const heapFit = linearFit(after.map((m) => m.t / 60), after.map((m) => m.heapMb));
  const latency: Sustained['series']['latency'] = [];
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
  const result: Sustained = {
    offeredRate: rate,
    seconds,
    attempted: produced.attempted,
    accepted: produced.accepted,
    rejected: produced.rejected,
    achievedRate,
    keptUp: rate === null ? null : achievedRate >= 0.98 * rate && drainedFast,
    drainMs,
    publishUs: percentiles(publish, 1e3),
    publishRawUs: percentiles(rate === null ? publish : publishRaw, 1e3),
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
      rssSlopeMbPerMin: judged ? rssFit.b : null,
      heapSlopeMbPerMin: judged ? heapFit.b : null,
      warmupSeconds: warmup,
      samples: after.length,
      liveHeapStartMb: liveHeapStart,
      liveHeapEndMb: liveHeapEnd,
    },
    stats: { ...stats },
    series: { throughput, memory, latency },
  };
  const chaos: BenchResult['chaos'] = {
    enabled: cfg.chaos,
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
  say(`sustained: achieved ${int(achievedRate)} ev/s, p99 publish ${result.publishUs.p99.toFixed(1)} µs, ` +
    `p99 e2e ${result.endToEndMs.p99.toFixed(2)} ms${rate === null ? '' : ' (CO-corrected)'}`);
  return { result, chaos };
}
