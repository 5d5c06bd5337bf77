/**
 * Phase "idle": what a started bus at its defaults costs when there is little
 * or nothing to do. The bus runs a few events (so its workers exist and have
 * run, as in an app), drains and settles for 1 s; then the whole process's CPU
 * (process.cpuUsage(): main and every worker thread) is measured over
 * --idle-seconds with nothing published, and over as long again at
 * --idle-rate events/s (100 by default). The producer sleeps until each event
 * is due, so the benchmark itself adds no wake-ups. Targets: idle < 0.5 % of
 * a core, 100 events/s < 2 %.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { produceAtRate } from '../producers.js';
import type { BenchResult, CpuPoint } from '../report_types.js';
import { cpuOver, finishBus, fullGc, say, type BenchContext } from '../shared.js';

type Idle = NonNullable<BenchResult['idle']>;

export async function idlePhase(ctx: BenchContext): Promise<Idle> {
  const { cfg } = ctx;
  const bus = await ctx.startBus({ threads: cfg.threads, metrics: true, handler: 'work' });
  await produceAtRate(bus, ctx.payloadOf, 2000, 0.5);
  await bus.drain();
  fullGc(); // the garbage of earlier phases is not the idle bus's
  await sleep(1000);
  say(`idle: a started bus, idle for ${cfg.idleSeconds} s, then ${cfg.idleRate}/s for ${cfg.idleSeconds} s`);

  const idle = await cpuOver(() => sleep(cfg.idleSeconds * 1000));
  const before = bus.stats().processed;
  const low = await cpuOver(async () => {
    await produceAtRate(bus, ctx.payloadOf, cfg.idleRate, cfg.idleSeconds);
    await bus.drain();
  });
  const events = bus.stats().processed - before;
  await finishBus(ctx, 'idle', bus);
  const idlePoint: CpuPoint = { rate: 0, achieved: 0, cpuUsPerEvent: 0, cpuPctOfCore: idle.pctOfCore, seconds: idle.wallMs / 1000 };
  const lowPoint: CpuPoint = {
    rate: cfg.idleRate,
    achieved: events / (low.wallMs / 1000),
    cpuUsPerEvent: events > 0 ? low.cpuUs / events : 0,
    cpuPctOfCore: low.pctOfCore,
    seconds: low.wallMs / 1000,
  };
  say(`idle: ${idlePoint.cpuPctOfCore.toFixed(2)} % of one core idle, ${lowPoint.cpuPctOfCore.toFixed(2)} % at ` +
    `${cfg.idleRate}/s (${lowPoint.cpuUsPerEvent.toFixed(0)} µs of CPU per event)`);
  return { idle: idlePoint, lowRate: lowPoint };
}
