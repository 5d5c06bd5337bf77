/**
 * Phase "max": the highest delivery rate, in --max-rounds rounds per mode,
 * each round a fresh bus (so the spread shows how much identical runs
 * differ), the modes in a rotating order within each round (a drift of the
 * machine weighs on every mode alike). Modes:
 *  - defaults:   ResilientMessageBus at its defaults, the natural loop (the headline figure);
 *  - metricsOff: the same with `metrics: false` (what timing costs);
 *  - tuned:      pool threads --tuned-threads (1) and chunked publishing, labelled as tuned;
 *  - binary:     defaults and the natural loop with a Uint8Array payload (left out with --binary,
 *                where every mode is binary already).
 * With --handler-cost-us only 'defaults' runs (a full queue of slow events takes long to drain).
 * A round's rate is the events delivered in a steady-state window: after a ramp that fills the
 * queue, read from inside the producer loop, so the final drain does not weigh on it.
 */
import type { MessageBus } from '../../src/index.js';
import { produceChunked, produceNatural, type MaxProduced } from '../producers.js';
import { rateText } from '../report.js';
import type { BenchResult, MaxRateMode } from '../report_types.js';
import { finishBus, payloads, say, spread, type BenchContext, type BusSetup, type PayloadOf } from '../shared.js';

type MaxRate = NonNullable<BenchResult['maxRate']>;

/** Seconds of producing before the window opens: the queue fills and the pool reaches its size. */
const RAMP_SECONDS = 0.3;

interface ModePlan {
  key: MaxRateMode['key'];
  label: string;
  setup: BusSetup;
  loop: MaxRateMode['loop'];
  binary: boolean;
  payloadOf: PayloadOf;
}

function plans(ctx: BenchContext): ModePlan[] {
  const { cfg } = ctx;
  const main = { binary: cfg.binary, payloadOf: ctx.payloadOf };
  const list: ModePlan[] = [
    { key: 'defaults', label: `defaults, natural loop, ${ctx.payloadText}`, setup: { threads: cfg.threads, metrics: true, handler: 'work' },
      loop: 'natural', ...main },
  ];
  if (cfg.costUs > 0) return list;
  list.push(
    { key: 'metricsOff', label: 'defaults + metrics off, natural loop', setup: { threads: cfg.threads, metrics: false, handler: 'work' },
      loop: 'natural', ...main },
    { key: 'tuned', label: `TUNED: pool threads ${cfg.tunedThreads}, chunked publishing`,
      setup: { threads: cfg.tunedThreads, metrics: true, handler: 'work' }, loop: 'chunked', ...main },
  );
  if (!cfg.binary) {
    const bin = payloads(true, cfg.payloadBytes);
    list.push({ key: 'binary', label: `defaults, natural loop, ${bin.text}`, setup: { threads: cfg.threads, metrics: true, handler: 'work' },
      loop: 'natural', binary: true, payloadOf: bin.payloadOf });
  }
  return list;
}

/** One round of one mode on a fresh bus: events delivered per second in the window after the ramp. */
async function round(ctx: BenchContext, plan: ModePlan, seconds: number, name: string): Promise<number> {
  const bus: MessageBus = await ctx.startBus(plan.setup);
  const marks = [RAMP_SECONDS, RAMP_SECONDS + seconds];
  const total = RAMP_SECONDS + seconds + 0.05;
  const produced: MaxProduced = plan.loop === 'natural'
    ? await produceNatural(bus, plan.payloadOf, total, { marks })
    : await produceChunked(bus, plan.payloadOf, total, { marks });
  await finishBus(ctx, name, bus);
  const [a, b] = produced.marks;
  return b.t > a.t ? (b.processed - a.processed) / ((b.t - a.t) / 1000) : 0;
}

export async function maxRatePhase(ctx: BenchContext): Promise<MaxRate> {
  const { cfg } = ctx;
  const roundSeconds = cfg.maxSeconds / cfg.maxRounds;
  const modes = plans(ctx);
  const setupText = (p: ModePlan): string => ctx.describe(p.setup);
  say(`max rate: ${modes.length} modes × ${cfg.maxRounds} rounds of ${roundSeconds.toFixed(2)} s, a fresh bus each`);
  // Warm-up of the main thread's JIT, not counted: once per payload kind (the modes share the publish path).
  for (const plan of modes.filter((m) => m.key === 'defaults' || m.key === 'binary')) {
    await round(ctx, plan, Math.min(0.3, roundSeconds), `max-rate ${plan.key} warm-up`);
  }
  const rates = new Map<ModePlan['key'], number[]>(modes.map((m) => [m.key, []]));
  for (let r = 0; r < cfg.maxRounds; r++) {
    const order = modes.map((_, k) => modes[(k + r) % modes.length]);
    for (const plan of order) rates.get(plan.key)!.push(await round(ctx, plan, roundSeconds, `max-rate ${plan.key} round ${r + 1}`));
    say(`max rate: round ${r + 1}/${cfg.maxRounds}  ${modes.map((m) => `${m.key} ${rateText(rates.get(m.key)![r])}`).join('  ')}`);
  }
  const result: MaxRateMode[] = modes.map((m) => ({
    key: m.key, label: m.label, options: setupText(m), loop: m.loop, binary: m.binary, rates: rates.get(m.key)!, spread: spread(rates.get(m.key)!),
  }));
  const med = (key: MaxRateMode['key']): number | undefined => result.find((m) => m.key === key)?.spread.median;
  const defaults = med('defaults')!;
  const tuned = med('tuned');
  const off = med('metricsOff');
  return {
    roundSeconds,
    rounds: cfg.maxRounds,
    modes: result,
    naturalToTuned: tuned ? defaults / tuned : null,
    metricsCostPct: off ? ((off - defaults) / off) * 100 : null,
  };
}
