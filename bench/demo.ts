/**
 * A short sustained-load demo: the main job of ringbus in five seconds.
 * A producer publishes order events at a fixed rate; a worker handler does
 * CPU work on each; an inline handler counts them on the main thread; a
 * command runs a heavier computation in the pool. Every second it prints the
 * rate, the queue and the main thread's event-loop delay.
 *
 *   npm run demo            (npx tsx bench/demo.ts [--rate 50000] [--seconds 5])
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ResilientMessageBus, workerHandler } from '../src/index.js';

const { values: args } = parseArgs({
  options: { rate: { type: 'string', default: '50000' }, seconds: { type: 'string', default: '5' } },
});
const rate = Number(args.rate);
const seconds = Number(args.seconds);
const handlers = new URL('./handlers.mjs', import.meta.url);
const silent = { debug() {}, info() {}, warn() {}, error: console.error };

const bus = new ResilientMessageBus({ logger: silent });
bus.registerEventHandler('order.created', workerHandler(handlers, 'burn'), { name: 'price-order' });
let seenInline = 0;
bus.registerEventHandler('order.created', () => void seenInline++, { name: 'count-orders', priority: 'low' });
bus.registerCommandHandler('report.build', workerHandler(handlers, 'burn'));
bus.on('backpressure', ({ active }) => console.log(`  backpressure ${active ? 'ON' : 'off'}`));
await bus.start();

const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
const window = monitorEventLoopDelay({ resolution: 1 });
window.enable();
console.log(`ringbus demo: ${rate} events/s for ${seconds} s; each event has 2 handlers: a worker (2 µs of CPU) and an inline counter`);
const t0 = performance.now();
let sent = 0;
let refused = 0;
let lastProcessed = 0;
let nextReport = 1;
while (performance.now() - t0 < seconds * 1000) {
  // Publish what the schedule says is due, then yield: the dispatcher never blocks the loop.
  const due = Math.floor(((performance.now() - t0) / 1000) * rate);
  for (; sent < due; sent++) {
    if (!bus.publish('order.created', { orderId: sent, sku: 'SKU-1234', quantity: 2, costUs: 2 })) refused++;
  }
  const elapsed = (performance.now() - t0) / 1000;
  if (elapsed >= nextReport) {
    const { processed, queueSize } = bus.stats();
    console.log(
      `  t=${elapsed.toFixed(1)}s  events/s ${((processed - lastProcessed) / 2).toLocaleString()}  queue ${queueSize}` +
        `  event-loop p99 ${(window.percentile(99) / 1e6).toFixed(2)} ms`,
    );
    lastProcessed = processed;
    nextReport++;
    window.reset(); // each line: that second's event-loop delay
  }
  await new Promise((r) => setTimeout(r, 1));
}
await bus.drain();
const report = await bus.execute<number>('report.build', { costUs: 20_000 }, { priority: 'high' });
loop.disable();
const stats = bus.stats();
await bus.stop();
console.log(
  `done: ${sent.toLocaleString()} events published (${refused} refused); ${seenInline.toLocaleString()} handled inline and ` +
    `${(stats.processed - seenInline - 1).toLocaleString()} in workers, ${stats.failed} failed; ` +
    `a 20 ms command ran in a worker: success=${report.success}; ` +
    `event-loop delay p99 ${(loop.percentile(99) / 1e6).toFixed(2)} ms, max ${(loop.max / 1e6).toFixed(1)} ms`,
);
