/**
 * The worker runtime: the Piscina task function. A drain task does not carry
 * events; it holds a slot and keeps claiming spans of ring records, highest
 * lane first, until every lane stays empty for `lingerMs` (or the bus stops).
 * So while the producer publishes, the worker decodes and runs handlers at the
 * same time, and one Piscina round trip is paid per busy period, not per event.
 */
import { workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import {
  MAIN_WAITING, OUT_DONE, OUT_FAILED, PROGRESS, REC_ATTEMPT, REC_BYTES, REC_FLAGS,
  OUT_REFUSED, OUT_SUCCEEDED, REC_HANDLER_COUNT, REC_HEADER_BYTES, REC_ID_BYTES, REC_PAYLOAD_BYTES, REC_PUBLISHED_AT, REC_SEQ, REC_SESSION_BYTES,
  REC_TOPIC, RF_BINARY, RF_COMMAND, RF_PAD, RF_TRACKED, RF_UNDEFINED, SLEEPERS, SLOT_BUSY, SLOT_CURSOR,
  FLUSH_REQUEST, SLOT_FLUSHED, SLOT_HANDLER_INDEX, SLOT_PROCESSED, SLOT_SETTLED, STOP, WAKE, WAKE_PENDING, slotWord, type SharedBusMemory,
} from '../src/shared/layout.js';
import { errorMessage } from '../src/shared/error_message.js';
import { LanePicker } from '../src/shared/lane_picker.js';
import { OutcomeRingWriter } from '../src/shared/outcome_ring.js';
import { MetricsRecorder } from './metrics_recorder.js';
import { ENTRY_TOPIC, SharedRegistryReader } from '../src/shared/registry.js';
import { PRIORITY_NAMES, type DrainTask, type ProbeResult, type ProbeTask, type RuntimeTask } from '../src/shared/task.js';
import { HandlerTable, loadHandler, type LoadedHandler } from './handler_table.js';
import { LaneRingReader } from './lane_ring_reader.js';

/** Batches aim at about this much handler time, so slow handlers get small batches. */
const BATCH_TARGET_MS = 2;
const MAX_ERROR_TEXT = 4096;

const memory = workerData as SharedBusMemory;
const control = new Int32Array(memory.control);
const readers = memory.lanes.map((sab, lane) => new LaneRingReader(control, sab, lane));
const registry = new SharedRegistryReader(memory.registry);
const handlers = new HandlerTable(registry, memory.tsxEsmApi);
const outcomeWriters = memory.outcomes.map((sab) => new OutcomeRingWriter(control, sab));
const breakers = new Int32Array(memory.breakers);
const BREAKER_OPEN = 1;
const BREAKER_HALF_OPEN = 2;
const topics: string[] = [];
const lanePicker = new LanePicker();
const laneHasRecords = (lane: number): boolean => readers[lane].waiting() > 0;
let msPerRecord = 0;

export default async function run(task: RuntimeTask): Promise<ProbeResult | null> {
  return task.kind === 'probe' ? probe(task) : drain(task);
}

async function probe(task: ProbeTask): Promise<ProbeResult> {
  const errors: string[] = [];
  for (const h of task.handlers) {
    try {
      await loadHandler(h.module, h.exportName, memory.tsxEsmApi);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  return { errors };
}

function pickLane(): number {
  return lanePicker.pick(laneHasRecords);
}

function batchTarget(waiting: number, task: DrainTask): number {
  let n = Math.ceil(waiting / task.threads);
  if (msPerRecord > 0) n = Math.min(n, Math.max(1, Math.floor(BATCH_TARGET_MS / msPerRecord)));
  return Math.max(1, Math.min(n, task.maxBatch));
}

/** Answers main's request for fresh metrics (it waits for them before drain() resolves). */
function answerFlush(slot: number, metrics: MetricsRecorder): void {
  const request = Atomics.load(control, FLUSH_REQUEST);
  if (Atomics.load(control, slotWord(slot, SLOT_FLUSHED)) === request) return;
  metrics.publish(performance.now());
  Atomics.store(control, slotWord(slot, SLOT_FLUSHED), request);
  notifyMain();
}

async function drain(task: DrainTask): Promise<null> {
  const slot = task.slot;
  const out = outcomeWriters[slot];
  out.attach(slot);
  const counters = { settled: 0, processed: 0 };
  // Successes per handler are always counted; `task.metrics` only decides whether calls are timed.
  const metrics = new MetricsRecorder(memory.metrics[slot], task.metrics);
  let idleSince = -1;
  while (Atomics.load(control, STOP) === 0) {
    answerFlush(slot, metrics);
    const lane = pickLane();
    if (lane < 0) {
      const now = performance.now();
      if (idleSince < 0) idleSince = now;
      const remaining = task.lingerMs - (now - idleSince);
      if (remaining <= 0) break;
      metrics.maybePublish(now);
      const seen = Atomics.load(control, WAKE);
      Atomics.store(control, WAKE_PENDING, 0);
      Atomics.add(control, SLEEPERS, 1);
      // Park, but not past the moment unpublished metrics are due: an idle worker's figures are at most 50 ms old.
      const wait = Math.min(remaining, metrics.dueIn(now));
      if (!readers.some((r) => r.waiting() > 0) && Atomics.load(control, STOP) === 0) Atomics.wait(control, WAKE, seen, wait);
      Atomics.sub(control, SLEEPERS, 1);
      continue;
    }
    idleSince = -1;
    const reader = readers[lane];
    const n = reader.claim(slot, batchTarget(reader.waiting(), task));
    if (n === 0) continue;
    const t0 = performance.now();
    await runBatch(reader, slot, out, task, counters, metrics);
    const t1 = performance.now();
    const perRecord = (t1 - t0) / n;
    msPerRecord = msPerRecord === 0 ? perRecord : msPerRecord * 0.8 + perRecord * 0.2;
    // Metrics first: once main sees these events settled, what was measured of them is published or due.
    metrics.maybePublish(t1);
    Atomics.store(control, slotWord(slot, SLOT_SETTLED), counters.settled);
    Atomics.store(control, slotWord(slot, SLOT_PROCESSED), counters.processed);
    Atomics.store(control, slotWord(slot, SLOT_BUSY), 0);
    notifyMain();
  }
  metrics.publish(performance.now());
  return null;
}

function topicName(id: number): string {
  let name = topics[id];
  if (name === undefined) {
    const entry = registry.get(id);
    name = entry.kind === ENTRY_TOPIC ? entry.topic : `#${id}`;
    topics[id] = name;
  }
  return name;
}

function errorText(err: unknown): string {
  const text = errorMessage(err);
  return text.length > MAX_ERROR_TEXT ? text.slice(0, MAX_ERROR_TEXT) : text;
}

/** Writes an outcome, waiting for main to make room if the outcome ring is full. */
function report(out: OutcomeRingWriter, slot: number, kind: number, seq: number, topicId: number,
  handlerId: number, attempt: number, text: string, record: Uint8Array | undefined): void {
  while (!out.tryWrite(kind, seq, topicId, handlerId, attempt, text, record)) {
    notifyMain();
    Atomics.wait(control, slotWord(slot, SLOT_BUSY), 1, 5);
  }
  // Failures are rare and main must see them at once: its circuit breaker may
  // need to open before this worker reaches the rest of the batch.
  if (kind === OUT_FAILED) notifyMain();
}

function notifyMain(): void {
  Atomics.add(control, PROGRESS, 1);
  if (Atomics.load(control, MAIN_WAITING) !== 0) Atomics.notify(control, PROGRESS);
}

/** One decoded record of the batch being run. */
interface BatchRecord {
  pos: number;
  next: number;
  off: number;
  len: number;
  flags: number;
  handlerCount: number;
  idsAt: number;
  topicId: number;
  seq: number;
  attempt: number;
  event: { id: string; topic: string; payload: unknown; priority: string; sessionId: string | undefined; attempt: number; publishedAt: number };
  decodeError: unknown;
}

/** Reused across batches: the decoded records of the current one. */
const batch: BatchRecord[] = [];


/**
 * Decodes every record of the claimed span first, then runs the handlers back
 * to back. So a handler's measured time is its own (one clock read per
 * handler call, no decoding inside it), and the records stay gated in the
 * ring until the batch ends, for crash forensics and failure copies.
 */
async function runBatch(reader: LaneRingReader, slot: number, out: OutcomeRingWriter, task: DrainTask,
  counters: { settled: number; processed: number }, metrics: MetricsRecorder): Promise<void> {
  const n = decodeBatch(reader);
  const { i32, u8 } = reader;
  const cursorWord = slotWord(slot, SLOT_CURSOR);
  const handlerWord = slotWord(slot, SLOT_HANDLER_INDEX);
  // Plain per-record writes (published with Atomics.store per batch): if this
  // worker dies mid-batch, main reads exactly how far it got.
  const settledWord = slotWord(slot, SLOT_SETTLED);
  const processedWord = slotWord(slot, SLOT_PROCESSED);
  // CURSOR: the first record not fully accounted for; HANDLER_INDEX: the handler
  // running on it, -1 between records. Main reads both if this worker dies.
  control[cursorWord] = reader.start;
  control[handlerWord] = -1;
  const timeOrigin = performance.timeOrigin;
  // One clock read per handler call (~50 ns): each attempt's own duration, outliers included.
  const timed = metrics.timed;
  let t = timed ? performance.now() : 0;
  for (let k = 0; k < n; k++) {
    const r = batch[k];
    const { off, len, flags, seq, topicId, attempt, event } = r;
    control[cursorWord] = r.pos;
    let failed = 0;
    let result: unknown;
    for (let h = 0; h < r.handlerCount; h++) {
      const handlerId = i32[r.idsAt + h];
      control[handlerWord] = h;
      // The breaker is checked right before the call: deliveries already claimed are refused too.
      const breaker = handlers.breaker(handlerId);
      if (breaker >= 0 && Atomics.load(breakers, breaker) === BREAKER_OPEN) {
        failed++;
        const record = task.keepFailedRecords ? u8.subarray(off, off + len) : undefined;
        report(out, slot, OUT_REFUSED, seq, topicId, handlerId, attempt, `circuit for handler '${handlers.name(handlerId)}' is open`, record);
        if (timed) t = performance.now();
        continue;
      }
      try {
        if (r.decodeError !== undefined) throw r.decodeError;
        const fn: LoadedHandler = handlers.get(handlerId) ?? (await handlers.load(handlerId));
        result = fn(event);
        if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
          result = await result;
        }
        control[processedWord] = ++counters.processed; // per delivery: a crash on a later handler must not lose it
        metrics.succeeded(handlerId);
        if (timed) {
          const t2 = performance.now();
          metrics.processing(handlerId, (t2 - t) * 1e6);
          t = t2;
          metrics.maybePublish(t2); // a long batch still publishes every 50 ms
        }
        if (breaker >= 0 && Atomics.load(breakers, breaker) === BREAKER_HALF_OPEN) {
          report(out, slot, OUT_SUCCEEDED, seq, topicId, handlerId, attempt, '', undefined);
        }
      } catch (err) {
        failed++;
        if (timed) {
          const t2 = performance.now();
          metrics.processing(handlerId, (t2 - t) * 1e6);
          t = t2;
        }
        const record = task.keepFailedRecords ? u8.subarray(off, off + len) : undefined;
        report(out, slot, OUT_FAILED, seq, topicId, handlerId, attempt, errorText(err), record);
      }
    }
    r.event = EMPTY_EVENT; // let the payload go once its handlers are done
    if (failed === 0 && !(flags & RF_TRACKED)) {
      // Settled here: its end-to-end time ends here too. (Main measures the events it settles itself.)
      if (timed) metrics.endToEnd(topicId, (timeOrigin + t - event.publishedAt) * 1e6);
      control[settledWord] = ++counters.settled;
      control[processedWord] = counters.processed;
      control[cursorWord] = r.next; // fully accounted: a crash from here on does not touch it
      control[handlerWord] = -1;
      continue;
    }
    control[processedWord] = counters.processed;
    // With neither retry nor dead letters, a failure is final here and main has no record to time it by.
    if (timed && !task.keepFailedRecords && !(flags & RF_TRACKED)) metrics.endToEnd(topicId, (timeOrigin + t - event.publishedAt) * 1e6);
    let text = '';
    if (failed === 0 && flags & RF_COMMAND && result !== undefined) {
      let problem: string | undefined;
      try {
        text = JSON.stringify(result) ?? '';
        const size = Buffer.byteLength(text);
        if (size > task.maxResultBytes) {
          problem = `command result is ${size} bytes, more than queue.maxPayloadBytes (${task.maxResultBytes})`;
        }
      } catch (err) {
        problem = `command result cannot be sent back as JSON: ${errorText(err)}`;
      }
      if (problem !== undefined) {
        text = '';
        metrics.retractSuccess(i32[r.idsAt]);
        counters.processed--;
        control[processedWord] = counters.processed;
        report(out, slot, OUT_FAILED, seq, topicId, i32[r.idsAt], attempt, problem, undefined);
      }
    }
    report(out, slot, OUT_DONE, seq, topicId, -1, attempt, text, undefined);
    control[cursorWord] = r.next;
    control[handlerWord] = -1;
  }
  control[cursorWord] = reader.end; // pad records at the end, if any
}

const EMPTY_EVENT: BatchRecord['event'] = Object.freeze({
  id: '', topic: '', payload: undefined, priority: '', sessionId: undefined, attempt: 0, publishedAt: 0,
}) as BatchRecord['event'];

/** Decodes the claimed span into `batch`; returns how many records (pad records skipped). */
function decodeBatch(reader: LaneRingReader): number {
  const { i32, f64, u8, bytes, mask } = reader;
  const priority = PRIORITY_NAMES[reader.lane];
  // Binary payloads are copied out of the ring into one buffer per batch:
  // one ArrayBuffer allocation per batch instead of one per event. (A handler
  // that keeps a payload keeps that batch's buffer alive; it is bounded by
  // the batch's size in the ring.)
  let arena: Uint8Array | undefined;
  let arenaAt = 0;
  let n = 0;
  for (let pos = reader.start; pos !== reader.end; ) {
    const off = pos & mask;
    const w = off >> 2;
    const len = i32[w + (REC_BYTES >> 2)];
    const flags = i32[w + (REC_FLAGS >> 2)];
    const start = pos;
    pos = (pos + len) | 0;
    if (flags & RF_PAD) continue;
    const handlerCount = i32[w + (REC_HANDLER_COUNT >> 2)];
    const payloadBytes = i32[w + (REC_PAYLOAD_BYTES >> 2)];
    const sessionBytes = i32[w + (REC_SESSION_BYTES >> 2)];
    const attempt = i32[w + (REC_ATTEMPT >> 2)];
    const seq = f64[(off + REC_SEQ) >> 3];
    const topicId = i32[w + (REC_TOPIC >> 2)];
    let at = off + REC_HEADER_BYTES + 4 * handlerCount;
    const sessionId = sessionBytes > 0 ? bytes.toString('utf8', at, at + sessionBytes) : undefined;
    at += sessionBytes;
    const idBytes = i32[w + (REC_ID_BYTES >> 2)];
    const id = idBytes > 0 ? bytes.toString('utf8', at, at + idBytes) : memory.idPrefix + seq;
    at += idBytes;
    let payload: unknown;
    let decodeError: unknown;
    try {
      if (flags & RF_BINARY) {
        arena ??= new Uint8Array((reader.end - reader.start) | 0);
        arena.set(u8.subarray(at, at + payloadBytes), arenaAt);
        payload = arena.subarray(arenaAt, arenaAt + payloadBytes);
        arenaAt = (arenaAt + payloadBytes + 7) & ~7; // 8-aligned, so typed-array views over a payload work
      } else if (!(flags & RF_UNDEFINED)) {
        payload = JSON.parse(bytes.toString('utf8', at, at + payloadBytes));
      }
    } catch (err) {
      decodeError = err;
    }
    const event = { id, topic: topicName(topicId), payload, priority, sessionId, attempt, publishedAt: f64[(off + REC_PUBLISHED_AT) >> 3] };
    const r = batch[n];
    if (r === undefined) {
      batch[n] = { pos: start, next: pos, off, len, flags, handlerCount, idsAt: w + (REC_HEADER_BYTES >> 2), topicId, seq, attempt, event, decodeError };
    } else {
      r.pos = start;
      r.next = pos;
      r.off = off;
      r.len = len;
      r.flags = flags;
      r.handlerCount = handlerCount;
      r.idsAt = w + (REC_HEADER_BYTES >> 2);
      r.topicId = topicId;
      r.seq = seq;
      r.attempt = attempt;
      r.event = event;
      r.decodeError = decodeError;
    }
    n++;
  }
  return n;
}
