/**
 * Phase "baselines", the same handler and payload without ringbus:
 *  - Piscina at its own defaults (no thread or queue options), one run() per
 *    event, with --piscina-in-flight (1,024) tasks kept outstanding: a sliding
 *    window, each finished task replaced by the next;
 *  - an EventEmitter calling the handler inline on the main thread.
 * Each runs a short warm-up, then --baseline-seconds measured.
 */
import { EventEmitter } from 'node:events';
import { Piscina } from 'piscina';
import { rateText } from '../report.js';
import type { BenchResult } from '../report_types.js';
import { HANDLERS, TOPIC, say, type BenchContext } from '../shared.js';

type Baselines = NonNullable<BenchResult['baselines']>;

async function piscinaBaseline(ctx: BenchContext): Promise<Baselines['piscina']> {
  const pool = new Piscina({ filename: new URL('../perf_piscina_task.mjs', import.meta.url).href });
  const inFlight = ctx.cfg.piscinaInFlight;
  /** `inFlight` lanes, each awaiting its task before running the next, until the deadline. */
  const window = async (seconds: number): Promise<{ events: number; seconds: number }> => {
    const t0 = performance.now();
    const deadline = t0 + seconds * 1000;
    let next = 0;
    const lane = async (): Promise<void> => {
      while (performance.now() < deadline) await pool.run(ctx.eventOf(next++));
    };
    await Promise.all(Array.from({ length: inFlight }, lane));
    return { events: next, seconds: (performance.now() - t0) / 1000 };
  };
  await window(Math.min(0.5, ctx.cfg.baselineSeconds)); // warm-up: threads started, JIT
  const r = await window(ctx.cfg.baselineSeconds);
  const threads = { minThreads: pool.minThreads, maxThreads: pool.maxThreads };
  await pool.destroy();
  return { events: r.events, rate: r.events / r.seconds, seconds: r.seconds, inFlight, ...threads };
}

async function inlineBaseline(ctx: BenchContext): Promise<Baselines['inline']> {
  const { work } = (await import(HANDLERS.href)) as { work: (event: unknown) => void };
  const emitter = new EventEmitter();
  emitter.on(TOPIC, work);
  const run = (seconds: number): { events: number; seconds: number } => {
    const t0 = performance.now();
    const deadline = t0 + seconds * 1000;
    let i = 0;
    while (performance.now() < deadline) {
      const end = i + 1000;
      for (; i < end; i++) emitter.emit(TOPIC, ctx.eventOf(i));
    }
    return { events: i, seconds: (performance.now() - t0) / 1000 };
  };
  run(Math.min(0.2, ctx.cfg.baselineSeconds)); // warm-up
  const r = run(ctx.cfg.baselineSeconds);
  return { events: r.events, rate: r.events / r.seconds, seconds: r.seconds };
}

/** `ringbusRate`: the max-rate phase's 'defaults' median, for the ratios (null without that phase). */
export async function baselinesPhase(ctx: BenchContext, ringbusRate: number | null): Promise<Baselines> {
  say(`baselines: Piscina at its defaults, ${ctx.cfg.piscinaInFlight.toLocaleString('en-US')} tasks in flight…`);
  const piscina = await piscinaBaseline(ctx);
  say(`baselines: Piscina ${rateText(piscina.rate)} (threads ${piscina.minThreads}–${piscina.maxThreads}); inline EventEmitter…`);
  const inline = await inlineBaseline(ctx);
  say(`baselines: inline EventEmitter ${rateText(inline.rate)}`);
  return {
    piscina,
    inline,
    ratioToPiscina: ringbusRate === null ? null : ringbusRate / piscina.rate,
    ratioToInline: ringbusRate === null ? null : ringbusRate / inline.rate,
  };
}
