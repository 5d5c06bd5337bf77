/**
 * Phase "cpu": CPU per event at the offered rates of --cpu-rates, one bus at
 * its defaults, whole process (process.cpuUsage() counts every thread: main
 * and every worker). Each rate is settled first, then measured for
 * --cpu-seconds including the drain; a least-squares fit gives the CPU per
 * event (slope) and the fixed cost (intercept).
 */
import { produceAtRate } from '../producers.js';
import type { BenchResult, CpuPoint } from '../report_types.js';
import { cpuOver, finishBus, linearFit, say, type BenchContext } from '../shared.js';

type Cpu = NonNullable<BenchResult['cpu']>;

export async function cpuPhase(ctx: BenchContext): Promise<Cpu> {
  const { cfg } = ctx;
  const bus = await ctx.startBus({ threads: cfg.threads, metrics: true, handler: 'work' });
  const points: CpuPoint[] = [];
  // Warm every thread's JIT at the highest rate first, so the first point is not the warm-up.
  await produceAtRate(bus, ctx.payloadOf, Math.max(...cfg.cpuRates), 1);
  await bus.drain();
  for (const rate of cfg.cpuRates) {
    await produceAtRate(bus, ctx.payloadOf, rate, Math.min(0.5, cfg.cpuSeconds)); // settle at this rate first
    await bus.drain();
    const before = bus.stats().processed;
    const m = await cpuOver(async () => {
      await produceAtRate(bus, ctx.payloadOf, rate, cfg.cpuSeconds);
      await bus.drain();
    });
    const events = bus.stats().processed - before;
    const point: CpuPoint = {
      rate,
      achieved: events / (m.wallMs / 1000),
      cpuUsPerEvent: events > 0 ? m.cpuUs / events : 0,
      cpuPctOfCore: m.pctOfCore,
      seconds: m.wallMs / 1000,
    };
    points.push(point);
    say(`cpu: ${rate.toLocaleString('en-US')}/s offered: ${point.cpuUsPerEvent.toFixed(2)} µs/event, ` +
      `${point.cpuPctOfCore.toFixed(1)} % of one core`);
  }
  await finishBus(ctx, 'cpu', bus);
  let fit: Cpu['fit'] = null;
  if (points.length >= 2) {
    const f = linearFit(points.map((p) => p.achieved), points.map((p) => p.cpuPctOfCore));
    fit = { usPerEvent: (f.b / 100) * 1e6, interceptPct: f.a, r2: f.r2 };
  }
  return { points, fit };
}
