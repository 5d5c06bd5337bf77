/**
 * The worker runtime: the Piscina task function. A drain task does not carry
 * events; it holds a slot and keeps claiming spans of ring records, highest
 * lane first, until every lane stays empty for `lingerMs` (or the bus stops).
 * So while the producer publishes, the worker decodes and runs handlers at the
 * same time, and one Piscina round trip is paid per busy period, not per event.
 */
import { workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { LanePicker } from '../src/protocol/lane_picker.js';
import { LaneRingReader } from '../src/protocol/lane_ring.js';
import {
  FLUSH_REQUEST, POOL_GROW, SLEEPERS, SLOT_EPOCH, WORKERS_READY, SLOT_BUSY, SLOT_FLUSHED, SLOT_PROCESSED, SLOT_SETTLED, STOP, WAKE, WAKE_PENDING, slotWord,
  type SharedBusMemory,
} from '../src/protocol/layout.js';
import { OutcomeRingWriter } from '../src/protocol/outcome_ring.js';
import { SharedRegistryReader } from '../src/protocol/registry.js';
import type { DrainTask, ProbeResult, ProbeTask, RuntimeTask } from '../src/protocol/task.js';
import { errorMessage } from '../src/protocol/error_text.js';
import { loadCodec } from '../src/protocol/codec.js';
import { BatchRunner, type SlotCounters } from './batch_runner.js';
import { HandlerTable, enableTypeScript, loadHandler } from './handler_table.js';
import { MetricsRecorder } from './metrics_recorder.js';

/** Batches aim at about this much handler time, so slow handlers get small batches. */
const BATCH_TARGET_MS = 2;

const memory = workerData as SharedBusMemory;
const control = new Int32Array(memory.control);
const readers = memory.lanes.map((sab, lane) => new LaneRingReader(control, sab, lane));
const registry = new SharedRegistryReader(memory.registry);
const handlers = new HandlerTable(registry, memory.tsxEsmApi, memory.workerMiddleware);
const outcomeWriters = memory.outcomes.map((sab) => new OutcomeRingWriter(control, sab));
const runner = new BatchRunner(control, new Int32Array(memory.breakers), memory.breakerCounters.map((sab) => new Int32Array(sab)), registry,
  handlers, memory.idPrefix);
// The bus codec, imported once per worker (a custom module; 'json' and 'structured' are at hand), before the
// first batch or probe. A module that fails here fails every delivery that needs it, with its error.
let codecError: unknown;
const codecReady: Promise<void> = loadCodec(memory.codec, async (url) => {
  if (memory.tsxEsmApi !== undefined && /\.[cm]?ts$/.test(url)) await enableTypeScript(memory.tsxEsmApi);
  return (await import(url)) as Record<string, unknown>;
}).then(
  (codec) => runner.useCodec(memory.codec, memory.strictPayloads, codec, undefined),
  (err: unknown) => {
    codecError = err;
    runner.useCodec(memory.codec, memory.strictPayloads, undefined, err);
  },
);
const lanePicker = new LanePicker();
const laneHasRecords = (lane: number): boolean => readers[lane].waiting() > 0;
let msPerRecord = 0;

// Loaded: main's start() waits for every thread the pool keeps warm (the spare included), so their start-up
// is not paid during the first second of work.
Atomics.add(control, WORKERS_READY, 1);
Atomics.notify(control, WORKERS_READY);

export default async function run(task: RuntimeTask): Promise<ProbeResult | null> {
  return task.kind === 'probe' ? probe(task) : drain(task);
}

async function probe(task: ProbeTask): Promise<ProbeResult> {
  await codecReady;
  const errors: string[] = codecError === undefined ? [] : [errorMessage(codecError)];
  for (const h of task.handlers) {
    try {
      await loadHandler(h.module, h.exportName, memory.tsxEsmApi, h.kind);
    } catch (err) {
      errors.push(errorMessage(err));
    }
  }
  return { errors };
}

function pickLane(): number {
  return lanePicker.pick(laneHasRecords);
}

/**
 * The pool grows from inside: a worker that leaves more than a batch's worth
 * of handler time waiting after its claim (BATCH_TARGET_MS; any record while
 * the cost is unknown) wakes one parked peer. So noop handlers keep one
 * worker busy and leave the other core to the producer, and heavy handlers
 * wake every worker within a few records.
 */
function wakePeerIfBehind(waiting: number): void {
  if (waiting === 0 || Atomics.load(control, SLEEPERS) === 0 || Atomics.load(control, POOL_GROW) === 0) return;
  if (msPerRecord > 0 && waiting * msPerRecord <= BATCH_TARGET_MS) return;
  Atomics.add(control, WAKE, 1);
  Atomics.notify(control, WAKE, 1);
}

/**
 * Records to claim: about BATCH_TARGET_MS of handler time, at most maxBatch.
 * Until this worker has measured its handlers' cost, a share of what waits
 * (one per thread), so a first claim of heavy records leaves work for peers.
 * Afterwards the time bound spreads heavy records, and a worker with cheap
 * ones takes a full batch instead of splitting it with peers it would have
 * to wake (wakePeerIfBehind decides that).
 */
function batchTarget(waiting: number, task: DrainTask): number {
  const n = msPerRecord > 0 ? Math.max(1, Math.floor(BATCH_TARGET_MS / msPerRecord)) : Math.ceil(waiting / task.threads);
  return Math.max(1, Math.min(n, waiting, task.maxBatch));
}

/** Answers main's request for fresh metrics (it waits for them before drain() resolves). */
function answerFlush(slot: number, metrics: MetricsRecorder): void {
  const request = Atomics.load(control, FLUSH_REQUEST);
  if (Atomics.load(control, slotWord(slot, SLOT_FLUSHED)) === request) return;
  metrics.publish(performance.now());
  Atomics.store(control, slotWord(slot, SLOT_FLUSHED), request);
  runner.notifyMain();
}

async function drain(task: DrainTask): Promise<null> {
  await codecReady;
  const slot = task.slot;
  const out = outcomeWriters[slot];
  out.attach(slot);
  const counters: SlotCounters = { settled: 0, processed: 0 };
  // Successes per handler are always counted; `task.metrics` only decides whether calls are timed.
  const metrics = new MetricsRecorder(memory.metrics[slot], task.metrics, memory.topicSeries);
  let idleSince = -1;
  while (Atomics.load(control, STOP) === 0) {
    // Read before the checks below, not just before parking: a flush request or record whose wake lands after
    // them must make the park return at once (else a flush right after drain() waited for the whole linger).
    const seen = Atomics.load(control, WAKE);
    answerFlush(slot, metrics);
    const lane = pickLane();
    if (lane < 0) {
      const now = performance.now();
      if (idleSince < 0) idleSince = now;
      const remaining = task.lingerMs - (now - idleSince);
      if (remaining <= 0) break;
      metrics.maybePublish(now);
      Atomics.store(control, WAKE_PENDING, 0);
      Atomics.add(control, SLEEPERS, 1);
      // Park, but not past the moment unpublished metrics are due: an idle worker's figures are at most 50 ms old.
      const wait = Math.min(remaining, metrics.dueIn(now));
      if (!readers.some((r) => r.waiting() > 0) && Atomics.load(control, STOP) === 0) Atomics.wait(control, WAKE, seen, wait);
      Atomics.sub(control, SLEEPERS, 1);
      // Awake: the next record may wake a parked peer (main decides whether the pool may grow).
      Atomics.store(control, WAKE_PENDING, 0);
      continue;
    }
    idleSince = -1;
    if (Atomics.load(control, slotWord(slot, SLOT_EPOCH)) !== task.epoch) return null; // main ended this task already
    const reader = readers[lane];
    const n = reader.claim(slot, batchTarget(reader.waiting(), task));
    if (n === 0) continue;
    wakePeerIfBehind(reader.waiting());
    const t0 = performance.now();
    if (!(await runner.run(reader, slot, out, task, counters, metrics))) return null;
    const t1 = performance.now();
    const perRecord = (t1 - t0) / n;
    msPerRecord = msPerRecord === 0 ? perRecord : msPerRecord * 0.8 + perRecord * 0.2;
    // Metrics first: once main sees these events settled, what was measured of them is published or due.
    metrics.maybePublish(t1);
    Atomics.store(control, slotWord(slot, SLOT_SETTLED), counters.settled);
    Atomics.store(control, slotWord(slot, SLOT_PROCESSED), counters.processed);
    Atomics.store(control, slotWord(slot, SLOT_BUSY), 0);
    runner.batchEnded();
  }
  metrics.publish(performance.now());
  return null;
}
