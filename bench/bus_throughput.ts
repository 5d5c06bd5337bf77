/**
 * Throughput of the bus against the obvious alternative, in one run:
 * Piscina with one task per event, on the same no-op handler and payload.
 *
 *   npx tsx bench/bus_throughput.ts [--events 1000000] [--rounds 5] [--threads 1] [--binary] [--json]
 *   npx tsx bench/bus_throughput.ts --compare-resilience   (MessageBus vs ResilientMessageBus, no failures, alternating rounds)
 */
import { parseArgs } from 'node:util';
import { Piscina } from 'piscina';
import { MessageBus, ResilientMessageBus, workerHandler } from '../src/index.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    'baseline-events': { type: 'string', default: '40000' },
    rounds: { type: 'string', default: '5' },
    threads: { type: 'string', default: '1' },
    binary: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    'no-metrics': { type: 'boolean', default: false },
    'compare-resilience': { type: 'boolean', default: false },
  },
});
const events = Number(args.events);
const baselineEvents = Number(args['baseline-events']);
const rounds = Number(args.rounds);
const threads = Number(args.threads);

/** A ~100-byte event, as JSON. */
const payloadOf = (i: number): unknown => ({ id: i, type: 'order.created', user: 'user-12345', amount: 123.45, items: [1, 2, 3], ts: 1700000000000 });
const binaryPayload = new Uint8Array(100).fill(7);
const silent = { debug() {}, info() {}, warn() {}, error: console.error };
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

async function busRound(Bus: typeof MessageBus = MessageBus): Promise<number> {
  const bus = new Bus({ logger: silent, pool: { minThreads: threads, maxThreads: threads }, metrics: !args['no-metrics'] });
  bus.registerEventHandler('order.created', workerHandler(new URL('./handlers.mjs', import.meta.url), 'noop'));
  await bus.start();
  const t0 = performance.now();
  for (let i = 0; i < events; ) {
    // Publish in chunks and yield between them, as a real producer would, so completions flow.
    const chunkEnd = Math.min(events, i + 4096);
    for (; i < chunkEnd; i++) {
      if (!bus.publish('order.created', args.binary ? binaryPayload : payloadOf(i))) break;
    }
    await yieldToLoop();
  }
  await bus.drain();
  const seconds = (performance.now() - t0) / 1000;
  const { processed, failed } = bus.stats();
  if (processed !== events || failed !== 0) throw new Error(`bus processed ${processed}/${events}, ${failed} failed`);
  await bus.stop();
  return events / seconds;
}

async function piscinaRound(): Promise<number> {
  const pool = new Piscina({ filename: new URL('./piscina_task.mjs', import.meta.url).href, minThreads: threads, maxThreads: threads });
  await pool.run(undefined);
  const t0 = performance.now();
  const done: Promise<unknown>[] = [];
  for (let i = 0; i < baselineEvents; i++) done.push(pool.run(args.binary ? binaryPayload : payloadOf(i)));
  await Promise.all(done);
  const seconds = (performance.now() - t0) / 1000;
  await pool.destroy();
  return baselineEvents / seconds;
}

if (args['compare-resilience']) {
  // Resilience on (retry, breakers, dead letters, timeouts) vs off, with no failures: what the features cost when idle.
  const plain: number[] = [];
  const resilient: number[] = [];
  for (let r = 0; r < rounds; r++) {
    plain.push(await busRound(MessageBus));
    resilient.push(await busRound(ResilientMessageBus));
    console.log(`round ${r + 1}/${rounds}: MessageBus ${(plain[r] / 1e3).toFixed(0)}k/s, ResilientMessageBus ${(resilient[r] / 1e3).toFixed(0)}k/s`);
  }
  const ratio = median(resilient) / median(plain);
  console.log(`median of ${rounds}: MessageBus ${(median(plain) / 1e3).toFixed(0)}k/s, ResilientMessageBus ${(median(resilient) / 1e3).toFixed(0)}k/s ` +
    `(${((ratio - 1) * 100).toFixed(1)}%)`);
  process.exit(0);
}

const bus: number[] = [];
const piscina: number[] = [];
for (let r = 0; r < rounds; r++) {
  bus.push(await busRound());
  piscina.push(await piscinaRound());
  if (!args.json) {
    console.log(`round ${r + 1}/${rounds}: ringbus ${(bus[r] / 1e3).toFixed(0)}k/s, piscina per event ${(piscina[r] / 1e3).toFixed(1)}k/s`);
  }
}
const result = {
  payload: args.binary ? 'binary 100 B' : 'JSON ~100 B',
  threads,
  events,
  rounds,
  ringbusMedian: Math.round(median(bus)),
  piscinaPerEventMedian: Math.round(median(piscina)),
  ratio: Number((median(bus) / median(piscina)).toFixed(1)),
  ringbus: bus.map(Math.round),
  piscinaPerEvent: piscina.map(Math.round),
};
if (args.json) console.log(JSON.stringify(result));
else {
  console.log(
    `median of ${rounds}: ringbus ${(result.ringbusMedian / 1e3).toFixed(0)}k events/s, ` +
      `piscina one task per event ${(result.piscinaPerEventMedian / 1e3).toFixed(1)}k events/s, ratio ${result.ratio}x`,
  );
}
