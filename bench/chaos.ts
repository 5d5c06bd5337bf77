/**
 * The longer chaos benchmark: ≥ 50k events over three handlers with transient
 * and permanent failures, injected worker exits and hung handlers, through
 * ResilientMessageBus; then checks the accounting invariant exactly.
 *
 *   npx tsx bench/chaos.ts [--events 60000] [--transient 0.05] [--permanent-every 97] [--exit-every 20000] [--hang-every 30000]
 */
import { parseArgs } from 'node:util';
import { ResilientMessageBus, workerHandler } from '../src/index.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '60000' },
    transient: { type: 'string', default: '0.05' },
    'permanent-every': { type: 'string', default: '97' },
    'exit-every': { type: 'string', default: '20000' },
    'hang-every': { type: 'string', default: '30000' },
    threads: { type: 'string', default: '2' },
  },
});
const events = Number(args.events);
const module = new URL('./chaos_handlers.mjs', import.meta.url);
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

const bus = new ResilientMessageBus({
  logger: quiet,
  pool: { maxThreads: Number(args.threads), minThreads: Number(args.threads) },
  retry: { maxRetries: 2, initialDelayMs: 1, maxDelayMs: 20 },
  // On, but above the permanent-failure rate: a tripping breaker would turn most deliveries into refusals (tested in the suite).
  circuitBreaker: { failureThreshold: 5000, windowMs: 1000, recoveryTimeoutMs: 200, successThreshold: 3 },
  deadLetter: { capacity: events },
  handlerTimeoutMs: 300,
});
for (const name of ['transient', 'permanent', 'volatile']) bus.registerEventHandler('chaos', workerHandler(module, name), { name });
await bus.start();

const t0 = performance.now();
const payload = { transient: Number(args.transient), permanentEvery: Number(args['permanent-every']), exitEvery: Number(args['exit-every']), hangEvery: Number(args['hang-every']) };
for (let seed = 0; seed < events; seed++) {
  if (!bus.publish('chaos', { seed, ...payload })) await bus.publishAsync('chaos', { seed, ...payload });
  if (seed % 4096 === 0) await new Promise((r) => setImmediate(r));
}
await bus.drain();
const seconds = (performance.now() - t0) / 1000;
const s = bus.stats();
const deliveries = events * 3;
const pairs = new Set(bus.deadLetters.list().map((e) => `${e.event.id}/${e.handler}`));
const checks: [string, boolean][] = [
  ['published = events', s.published === events],
  ['processed + dead-lettered = deliveries (3 per event)', s.processed + s.deadLettered === deliveries],
  ['failed = retried + dead-lettered', s.failed === s.retried + s.deadLettered],
  ['each dead letter is a distinct delivery', pairs.size === s.deadLettered],
  ['nothing pending, dropped or abandoned', s.queueSize === 0 && s.dropped === 0 && s.abandoned === 0],
];
await bus.stop();
console.log(`chaos: ${events} events × 3 handlers in ${seconds.toFixed(1)} s (${Math.round(events / seconds)} events/s)`);
console.log(`  processed ${s.processed}, dead-lettered ${s.deadLettered}, failed attempts ${s.failed} (retried ${s.retried}), dropped ${s.dropped}, abandoned ${s.abandoned}`);
for (const [what, ok] of checks) console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${what}`);
process.exitCode = checks.every(([, ok]) => ok) ? 0 : 1;
