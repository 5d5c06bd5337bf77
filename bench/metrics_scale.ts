/**
 * What reading the metrics costs as topics grow: `snapshot()` and
 * `prometheus()` with 10 and 10,000 topics (each with a worker handler and
 * some traffic), medians of several calls, both with no traffic between
 * calls (what a cached read costs) and after one event per topic (every
 * series changed: the worst case); the longest event-loop delay seen while
 * the calls ran (1 ms resolution; a GC pause counts too); and the heap kept
 * after publishing to 200k distinct topics that have no handler (PERFORMANCE.md,
 * "Metrics at scale").
 *
 *   npx tsx bench/metrics_scale.ts [--topics 10,10000] [--runs 7] [--unrouted 200000] [--max-topics N]
 *
 * By default every topic gets its own series (`metrics.maxTopics` is raised
 * to the topic count), the worst case; `--max-topics 1000` measures the
 * default bound instead.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MessageBus, workerHandler, type BusOptions } from '../src/index.js';

const { values: args } = parseArgs({
  options: {
    topics: { type: 'string', default: '10,10000' },
    runs: { type: 'string', default: '7' },
    unrouted: { type: 'string', default: '200000' },
    'max-topics': { type: 'string' },
    help: { type: 'boolean', default: false, short: 'h' },
  },
});
if (args.help) {
  console.log('usage: npx tsx bench/metrics_scale.ts [--topics 10,10000] [--runs 7] [--unrouted 200000] [--max-topics N]');
  process.exit(0);
}
const RUNS = Number(args.runs);
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const noop = workerHandler(new URL('./handlers.mjs', import.meta.url), 'noop');

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ms = (n: number): string => (n < 10 ? n.toFixed(2) : n.toFixed(0));

function newBus(maxTopics: number): MessageBus {
  const options: BusOptions = { logger: false };
  try {
    return new MessageBus({ ...options, metrics: { maxTopics } });
  } catch {
    return new MessageBus(options); // an older version, without metrics.maxTopics: measures the "before"
  }
}

async function publishAll(bus: MessageBus, topics: string[]): Promise<void> {
  for (const t of topics) if (!bus.publish(t, 1)) await bus.publishAsync(t, 1);
  await bus.drain();
}

/** Calls `f` `RUNS` times (after `between`), returns the median and max wall time and the longest event-loop block. */
async function time(f: () => unknown, between: () => Promise<void>): Promise<{ median: number; max: number; blocked: number }> {
  const walls: number[] = [];
  let blocked = 0;
  for (let i = 0; i < RUNS; i++) {
    await between();
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    // A block is seen from the histogram's second tick on: let it start first.
    await new Promise((r) => setTimeout(r, 5));
    const t0 = performance.now();
    await f();
    walls.push(performance.now() - t0);
    // Let the histogram see the last block end.
    await new Promise((r) => setTimeout(r, 5));
    delay.disable();
    blocked = Math.max(blocked, delay.max / 1e6);
  }
  return { median: median(walls), max: Math.max(...walls), blocked };
}

async function scale(n: number): Promise<void> {
  const bus = newBus(args['max-topics'] !== undefined ? Number(args['max-topics']) : Math.max(n, 1000));
  const topics = Array.from({ length: n }, (_, i) => `tenant.${i}.created`);
  for (const t of topics) bus.registerEventHandler(t, noop, { name: 'noop' });
  await bus.start();
  for (let i = 0; i < 3; i++) await publishAll(bus, topics);
  bus.metrics.snapshot();
  const text = await bus.metrics.prometheus();
  const idle = async (): Promise<void> => {};
  const traffic = (): Promise<void> => publishAll(bus, topics);
  const snapIdle = await time(() => bus.metrics.snapshot(), idle);
  const promIdle = await time(() => bus.metrics.prometheus(), idle);
  const snapChanged = await time(() => bus.metrics.snapshot(), traffic);
  const promChanged = await time(() => bus.metrics.prometheus(), traffic);
  console.log(`${n} topics (prometheus text ${(text.length / 1e6).toFixed(2)} MB, ${Object.keys(bus.metrics.snapshot().by_topic).length} topic series):`);
  const row = (name: string, r: { median: number; max: number; blocked: number }): void =>
    console.log(`  ${name.padEnd(34)} median ${ms(r.median).padStart(6)} ms   max ${ms(r.max).padStart(6)} ms   event loop blocked ≤ ${ms(r.blocked)} ms`);
  row('snapshot(), no traffic between', snapIdle);
  row('prometheus(), no traffic between', promIdle);
  row('snapshot(), 1 event/topic between', snapChanged);
  row('prometheus(), 1 event/topic between', promChanged);
  await bus.stop();
}

async function unrouted(n: number): Promise<void> {
  const bus = newBus(1000);
  bus.registerEventHandler('known', noop);
  await bus.start();
  await publishAll(bus, ['known']);
  await bus.metrics.prometheus();
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < n; i += 10_000) await publishAll(bus, Array.from({ length: 10_000 }, (_, k) => `nobody.listens.${i + k}`));
  const text = await bus.metrics.prometheus();
  bus.metrics.snapshot();
  gc();
  const after = process.memoryUsage().heapUsed;
  console.log(`${n} distinct topics without handlers: heap +${((after - before) / 1e6).toFixed(1)} MB after a full GC; ` +
    `prometheus text ${(text.length / 1e3).toFixed(1)} kB`);
  await bus.stop();
}

console.log(`node ${process.version}, ${RUNS} runs per figure`);
for (const n of args.topics.split(',').map(Number)) await scale(n);
if (Number(args.unrouted) > 0) await unrouted(Number(args.unrouted));
