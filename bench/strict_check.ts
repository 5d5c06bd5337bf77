/**
 * What the strict JSON check (`strictPayloads`, codec 'json') costs a
 * publish of a ~100-byte plain JSON payload: `bus.publish()` timed with the
 * check on and off, in alternating rounds, medians reported.
 *
 * - "no handler": a topic nobody handles, so a publish is validate, encode,
 *   count and settle: publish's own work with nothing after it, the case
 *   where the check weighs most.
 * - "worker": a started bus with a no-op worker handler, 4096 publishes per
 *   chunk with a drain between chunks; only the publish loops are timed
 *   (the record written into the lane, the worker woken).
 * - the check alone (`jsonExact`) on the same payload.
 *
 *   npx tsx bench/strict_check.ts [--rounds 9] [--events 200000]
 */
import { parseArgs } from 'node:util';
import { MessageBus, workerHandler } from '../src/index.js';
import { jsonExact } from '../src/protocol/json_check.js';

const { values: args } = parseArgs({
  options: { rounds: { type: 'string', default: '9' }, events: { type: 'string', default: '200000' } },
});
const rounds = Number(args.rounds);
const events = Number(args.events);
const CHUNK = 4096;

/** The ~100-byte event of bench/micro.ts, a new object per publish as an application makes them. */
const payloadOf = (i: number): object => ({ id: i, type: 'order.created', user: 'user-12345', amount: 123.45, items: [1, 2, 3], ts: 1_700_000_000_000 });

const busOf = (strictPayloads: boolean): MessageBus =>
  new MessageBus({ logger: false, strictPayloads, metrics: false, pool: { maxThreads: 1 } });

/** ns per publish to a topic with no handler. */
function noHandlerRound(bus: MessageBus): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < events; i++) bus.publish('nobody', payloadOf(i));
  return Number(process.hrtime.bigint() - t0) / events;
}

/** ns per publish to a worker handler, the publish loops only. */
async function workerRound(bus: MessageBus): Promise<number> {
  let ns = 0;
  for (let done = 0; done < events; done += CHUNK) {
    const t0 = process.hrtime.bigint();
    for (let i = done; i < done + CHUNK; i++) bus.publish('orders', payloadOf(i));
    ns += Number(process.hrtime.bigint() - t0);
    await bus.drain();
  }
  return ns / (Math.ceil(events / CHUNK) * CHUNK);
}

function checkRound(): number {
  const payloads = Array.from({ length: 1024 }, (_, i) => payloadOf(i));
  let ok = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < events; i++) if (jsonExact(payloads[i & 1023])) ok++;
  const ns = Number(process.hrtime.bigint() - t0) / events;
  if (ok !== events) throw new Error('a plain payload failed the check');
  return ns;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (xs: number[]): string => `median ${median(xs).toFixed(1)} ns (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`;

const strict = busOf(true);
const loose = busOf(false);
for (const bus of [strict, loose]) {
  bus.registerEventHandler('orders', workerHandler(new URL('./handlers.mjs', import.meta.url), 'noop'));
  await bus.start();
}
const results = { noHandler: { on: [] as number[], off: [] as number[] }, worker: { on: [] as number[], off: [] as number[] } };
const check: number[] = [];
// Round 0 warms both up and is not counted; later rounds alternate which goes first (drift hits both alike).
for (let r = 0; r <= rounds; r++) {
  const order = r % 2 === 0 ? [true, false] : [false, true];
  for (const on of order) {
    const ns = noHandlerRound(on ? strict : loose);
    if (r > 0) results.noHandler[on ? 'on' : 'off'].push(ns);
  }
  for (const on of order) {
    const ns = await workerRound(on ? strict : loose);
    if (r > 0) results.worker[on ? 'on' : 'off'].push(ns);
  }
  if (r > 0) check.push(checkRound());
}
await Promise.all([strict.stop(), loose.stop()]);
console.log(`publish() of a ~100-byte JSON payload, ${events} events per round, ${rounds} rounds (medians; min, max)`);
for (const [name, { on, off }] of Object.entries(results)) {
  const diff = on.map((x, i) => x - off[i]);
  console.log(`  ${name}: strict ${fmt(on)} | not strict ${fmt(off)}`);
  console.log(`    difference per round: ${fmt(diff)}; ${((median(on) / median(off) - 1) * 100).toFixed(1)}% of publish`);
}
console.log(`  the check alone (jsonExact): ${fmt(check)}`);
