/**
 * Two figures PERFORMANCE.md quotes beside the main bench, at default
 * options (MessageBus, no-op worker handler, ~100-byte JSON payload):
 *
 *  - producer loops: the natural loop (`if (!publish()) await publishAsync()`)
 *    and `await publishAsync()` on every event, each against the spin loop
 *    (`while (!publish()) await setImmediate`), alternating rounds, medians;
 *  - heavy handlers: 4,000 events of a 500 µs busy-wait handler published
 *    with the natural loop, as parallel efficiency on every worker thread.
 *
 *   npx tsx bench/loops.ts [--events 600000] [--rounds 3] [--heavy-rounds 3]
 */
import { availableParallelism } from 'node:os';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { DEFAULT_OPTIONS, MessageBus, workerHandler } from '../src/index.js';

const COST_US = 500;

function options(): { events: number; rounds: number; heavyRounds: number } {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '600000' },
      rounds: { type: 'string', default: '3' },
      'heavy-rounds': { type: 'string', default: '3' },
    },
  });
  return { events: Number(values.events), rounds: Number(values.rounds), heavyRounds: Number(values['heavy-rounds']) };
}

const payloadOf = (i: number): unknown => ({ id: i, type: 'order.created', user: 'user-12345', amount: 123.45, items: [1, 2, 3], ts: 1700000000000 });
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
type Loop = 'spin' | 'natural' | 'await';

async function loopRound(loop: Loop, events: number): Promise<number> {
  const bus = new MessageBus();
  bus.registerEventHandler('t', workerHandler(new URL('./handlers.mjs', import.meta.url), 'noop'));
  await bus.start();
  const t0 = performance.now();
  for (let i = 0; i < events; i++) {
    if (loop === 'natural') {
      if (!bus.publish('t', payloadOf(i))) await bus.publishAsync('t', payloadOf(i));
    } else if (loop === 'await') {
      await bus.publishAsync('t', payloadOf(i));
    } else {
      while (!bus.publish('t', payloadOf(i))) await yieldToLoop();
    }
  }
  await bus.drain();
  const rate = events / ((performance.now() - t0) / 1000);
  const { processed } = bus.stats();
  await bus.stop();
  if (processed !== events) throw new Error(`${loop}: processed ${processed} of ${events}`);
  return rate;
}

async function heavyRound(): Promise<number> {
  process.env.RINGBUS_BENCH_HANDLER = JSON.stringify({ costUs: COST_US });
  const bus = new MessageBus();
  bus.registerEventHandler('t', workerHandler(new URL('./perf_handlers.mjs', import.meta.url), 'work'));
  await bus.start();
  const events = 4000;
  const t0 = performance.now();
  for (let i = 0; i < events; i++) if (!bus.publish('t', i)) await bus.publishAsync('t', i);
  await bus.drain();
  const seconds = (performance.now() - t0) / 1000;
  await bus.stop();
  const threads = Math.min(availableParallelism(), DEFAULT_OPTIONS.pool.maxThreads);
  return (events * COST_US) / 1e6 / seconds / threads;
}

async function main(): Promise<void> {
  const { events, rounds, heavyRounds } = options();
  const rates: Record<Loop, number[]> = { spin: [], natural: [], await: [] };
  for (let r = 0; r < rounds; r++) for (const loop of ['spin', 'natural', 'await'] as const) rates[loop].push(await loopRound(loop, events));
  const k = (x: number): string => `${(x / 1e3).toFixed(0)}k/s`;
  const spin = median(rates.spin);
  for (const loop of ['spin', 'natural', 'await'] as const) {
    const m = median(rates[loop]);
    console.log(`${loop.padEnd(8)} median ${k(m)} (${rates[loop].map(k).join(' ')}) ÷ spin ${(m / spin).toFixed(2)}×`);
  }
  const efficiency: number[] = [];
  for (let r = 0; r < heavyRounds; r++) efficiency.push(await heavyRound());
  console.log(`heavy (${COST_US} µs handlers, every core) efficiency ${efficiency.map((e) => `${(e * 100).toFixed(0)}%`).join(' ')}`);
}

await main();
