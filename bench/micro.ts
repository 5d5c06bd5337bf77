/**
 * tinybench micro-benchmarks of ringbus's hot parts, on the project's own
 * modules: the lane ring (write + claim), the record codec (JSON vs binary),
 * the circuit-breaker check (main's BreakerBoard vs a worker's shared
 * Int32Array read) and latency recording (LatencyAccumulator vs
 * hdr-histogram-js).
 *
 * Each task runs its operation INNER times per call so the timer's own cost
 * (~30–50 ns a read) does not swamp operations of a few ns; the table shows
 * the time of one operation.
 *
 *   npx tsx bench/micro.ts [--time 500] [--json] [--filter ring]
 */
import { parseArgs } from 'node:util';
import { build } from 'hdr-histogram-js';
import { Bench } from 'tinybench';
import { BreakerBoard } from '../src/breaker/breaker_board.js';
import { admit } from '../src/protocol/breaker_words.js';
import { DEFAULT_OPTIONS } from '../src/options.js';
import { LatencyAccumulator } from '../src/metrics/latency_accumulator.js';
import { LaneRingReader, LaneRingWriter } from '../src/protocol/lane_ring.js';
import { RecordEncoder as PendingRecord, RF_BINARY, viewOf } from '../src/protocol/record.js';
import { SLOT_BUSY, controlWords, slotWord } from '../src/protocol/layout.js';


const { values: args } = parseArgs({
  options: {
    time: { type: 'string', default: '500' },
    json: { type: 'boolean', default: false },
    filter: { type: 'string', default: '' },
    help: { type: 'boolean', default: false, short: 'h' },
  },
});
if (args.help) {
  console.log('usage: npx tsx bench/micro.ts [--time MS per task (default 500)] [--json] [--filter SUBSTRING]');
  process.exit(0);
}

/** Operations per task call. */
const INNER = 1000;
let sink = 0;

const bench = new Bench({ time: Number(args.time), warmupTime: 100 });
const add = (name: string, fn: () => void): void => {
  if (args.filter && !name.includes(args.filter)) return;
  bench.add(name, fn);
};

// ---------------------------------------------------------------- lane ring: write + claim

/** A ~100-byte event, as the dispatcher would encode it for one worker handler. */
const payload = { id: 123_456, type: 'order.created', user: 'user-12345', amount: 123.45, items: [1, 2, 3], ts: 1_700_000_000_000 };
const payloadText = JSON.stringify(payload);
const binary = new Uint8Array(100).fill(7);

function record(binaryPayload: boolean): PendingRecord {
  const p = new PendingRecord();
  p.flags = binaryPayload ? RF_BINARY : 0;
  p.topicId = 1;
  p.attempt = 0;
  p.seq = 1;
  p.publishedAt = Date.now();
  p.handlerIds = [0];
  if (binaryPayload) p.binary = binary;
  else p.text = payloadText;
  p.payloadBytes = binaryPayload ? binary.byteLength : Buffer.byteLength(payloadText);
  return p;
}

/** One lane ring with one slot, a writer (main's side) and a reader (a worker's side). */
function ring(): { writer: LaneRingWriter; reader: LaneRingReader; release: () => void } {
  const control = new Int32Array(new SharedArrayBuffer(4 * controlWords(1)));
  const lane = new SharedArrayBuffer(1 << 20);
  const writer = new LaneRingWriter(control, lane, 2, 1);
  const reader = new LaneRingReader(control, lane, 2);
  // What a worker does after running a batch: its slot no longer gates the producer.
  const release = (): void => {
    Atomics.store(control, slotWord(0, SLOT_BUSY), 0);
  };
  return { writer, reader, release };
}

for (const batch of [1, 64]) {
  const { writer, reader, release } = ring();
  const rec = record(false);
  add(`ring: write + claim, batches of ${batch} (per record)`, () => {
    for (let i = 0; i < INNER; i += batch) {
      for (let k = 0; k < batch; k++) {
        rec.seq++;
        if (!writer.write(rec)) throw new Error('ring full');
      }
      let claimed = 0;
      while (claimed < batch) claimed += reader.claim(0, batch - claimed);
      release();
    }
  });
}

// ---------------------------------------------------------------- record codec

{
  const view = viewOf(new ArrayBuffer(4096));
  const json = record(false);
  add('codec: JSON.stringify + byteLength + writeTo (~100 B JSON)', () => {
    for (let i = 0; i < INNER; i++) {
      payload.id = i;
      const text = JSON.stringify(payload);
      json.text = text;
      json.payloadBytes = Buffer.byteLength(text);
      json.writeTo(view, 0);
    }
  });
  add('codec: writeTo only (JSON text already encoded)', () => {
    for (let i = 0; i < INNER; i++) json.writeTo(view, 0);
  });
  const bin = record(true);
  add('codec: writeTo (100 B binary)', () => {
    for (let i = 0; i < INNER; i++) {
      bin.seq = i;
      bin.writeTo(view, 0);
    }
  });
}

// ---------------------------------------------------------------- circuit-breaker check

{
  const board = new BreakerBoard({ ...DEFAULT_OPTIONS.circuitBreaker }, 1, { idle: () => true, moved() {}, release() {} });
  const index = board.index('orders', 'price-order');
  const words = new Int32Array(board.sab);
  add('breaker: BreakerBoard.admit(index) (main thread)', () => {
    let n = 0;
    for (let i = 0; i < INNER; i++) if (board.admit(index) === 0) n++;
    sink += n;
  });
  add('breaker: admit(shared words, index) (worker side)', () => {
    let n = 0;
    for (let i = 0; i < INNER; i++) if (admit(words, index) === 0) n++;
    sink += n;
  });
}

// ---------------------------------------------------------------- latency recording

{
  // Latencies like a bus's: 20 µs – 5 ms, in ns, varied so no branch predictor learns one bucket.
  const values = Float64Array.from({ length: 4096 }, (_, i) => 20_000 + ((i * 7919) % 4096) * 1200);
  const acc = new LatencyAccumulator();
  add('histogram: LatencyAccumulator.record(ns)', () => {
    for (let i = 0; i < INNER; i++) acc.record(values[i & 4095]);
  });
  const hdr = build({ numberOfSignificantValueDigits: 3, bitBucketSize: 64 });
  add('histogram: hdr-histogram-js recordValue(ns) (64-bit buckets, as BusMetrics)', () => {
    for (let i = 0; i < INNER; i++) hdr.recordValue(values[i & 4095]);
  });
  const hdr32 = build({ numberOfSignificantValueDigits: 3 });
  add('histogram: hdr-histogram-js recordValue(ns) (default 32-bit buckets)', () => {
    for (let i = 0; i < INNER; i++) hdr32.recordValue(values[i & 4095]);
  });
  add('clock: performance.now() (what each timing costs on top)', () => {
    let t = 0;
    for (let i = 0; i < INNER; i++) t += performance.now();
    sink += t;
  });
}

await bench.run();

const rows = bench.tasks.map((task) => {
  const r = task.result;
  if (r.state !== 'completed') return { task: task.name, 'ns/op': NaN, 'Mops/s': NaN, '±%': NaN, samples: 0, state: r.state };
  const nsPerOp = (r.latency.mean * 1e6) / INNER;
  return {
    task: task.name,
    'ns/op': Number(nsPerOp.toFixed(nsPerOp < 10 ? 2 : 1)),
    'Mops/s': Number((1e3 / nsPerOp).toFixed(2)),
    '±%': Number(r.latency.rme.toFixed(1)),
    samples: r.latency.samplesCount,
  };
});
if (args.json) console.log(JSON.stringify({ node: process.version, inner: INNER, rows }));
else {
  console.log(`ringbus micro-benchmarks (tinybench; ${INNER} operations per sample; node ${process.version})`);
  console.table(rows);
}
if (sink === -1) console.log(sink); // keeps the loops' results alive
