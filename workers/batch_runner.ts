/**
 * Runs one claimed span of a lane ring inside a worker: decodes every record
 * of the span first (with the shared record codec), then runs the handlers
 * back to back, reporting through the slot's counters (implicit successes)
 * and outcome ring (failures, refusals, command results, tracked completions).
 * The records stay gated in the ring until the batch ends, for crash
 * forensics and failure copies.
 */
import { performance } from 'node:perf_hooks';
import { ADMIT_DENY, ADMIT_RUN, ADMIT_TRIAL, admit, circuitOpenMessage, slowWord, successWord } from '../src/protocol/breaker_words.js';
import { codecName, unserializablePath, type CodecSpec, type PayloadCodec } from '../src/protocol/codec.js';
import { errorName, errorStack, errorText } from '../src/protocol/error_text.js';
import { jsonExact, jsonLoss } from '../src/protocol/json_check.js';
import {
  MAIN_WAITING, PROGRESS, SLOT_BUSY, WAIT_BATCHES, SLOT_CURSOR, SLOT_EPOCH, SLOT_HANDLER_INDEX, SLOT_PROCESSED, SLOT_SETTLED, slotWord,
} from '../src/protocol/layout.js';
import type { LaneRingReader } from '../src/protocol/lane_ring.js';
import {
  OUT_DONE, OUT_FAILED, OUT_HELD, OUT_REFUSED, OUT_SUCCEEDED, OUTF_DETACHED, OUTF_FAILED, OUTF_LOAD_FAILED, OUTF_RESULT_BINARY, OUTF_RESULT_BYTES, OUTF_TRIAL,
  type OutcomeRingWriter,
} from '../src/protocol/outcome_ring.js';
import { RF_BINARY, RF_COMMAND, RF_DETACHED, RF_ENCODED, RF_PAD, RF_TRACKED, RecordHeader } from '../src/protocol/record.js';
import { ENTRY_TOPIC, type SharedRegistryReader } from '../src/protocol/registry.js';
import { PRIORITY_NAMES, type DrainTask } from '../src/protocol/task.js';
import type { HandlerTable, LoadedHandler } from './handler_table.js';
import type { MetricsRecorder } from './metrics_recorder.js';

/** The event object a handler receives. */
interface HandlerEvent {
  id: string;
  topic: string;
  payload: unknown;
  priority: string;
  sessionId: string | undefined;
  attempt: number;
  publishedAt: number;
  headers: Readonly<Record<string, string>> | undefined;
}

/** One decoded record of the batch being run. */
interface BatchRecord {
  /** Ring position of the record and of the one after it. */
  pos: number;
  next: number;
  readonly header: RecordHeader;
  event: HandlerEvent;
  decodeError: unknown;
}

const EMPTY_EVENT: HandlerEvent = Object.freeze({
  id: '', topic: '', payload: undefined, priority: '', sessionId: undefined, attempt: 0, publishedAt: 0, headers: undefined,
}) as HandlerEvent;

export interface SlotCounters {
  settled: number;
  processed: number;
}

/** What a batch needs of its worker; one per worker, shared by every batch. */
export class BatchRunner {
  readonly #control: Int32Array;
  readonly #breakers: Int32Array;
  /** Per slot: this worker's success and slow-call counts per breaker. */
  readonly #breakerCounters: Int32Array[];
  readonly #registry: SharedRegistryReader;
  readonly #handlers: HandlerTable;
  readonly #idPrefix: string;
  readonly #topics: string[] = [];
  /** Reused across batches: the decoded records of the current one. */
  readonly #batch: BatchRecord[] = [];
  /** An outcome was written since main was last notified. */
  #reported = false;
  /** The bus codec ('structured' or custom; undefined for 'json'), set by `useCodec` before the first batch. */
  #codec: PayloadCodec | undefined;
  /** Its name for messages; undefined for 'json'. */
  #codecName: string | undefined;
  /** Why this worker could not import the codec module: every payload or result that needs it fails with it. */
  #codecError: unknown;
  /** Codec 'json' with strictPayloads: a command result JSON would change fails the command. */
  #strictResults = false;

  constructor(control: Int32Array, breakers: Int32Array, breakerCounters: Int32Array[], registry: SharedRegistryReader,
    handlers: HandlerTable, idPrefix: string) {
    this.#control = control;
    this.#breakers = breakers;
    this.#breakerCounters = breakerCounters;
    this.#registry = registry;
    this.#handlers = handlers;
    this.#idPrefix = idPrefix;
  }

  /** The bus codec as this worker loaded it (or the error importing it raised). */
  useCodec(spec: CodecSpec, strictPayloads: boolean, codec: PayloadCodec | undefined, error: unknown): void {
    this.#codecName = spec === 'json' ? undefined : codecName(spec);
    this.#codec = codec;
    this.#codecError = error;
    this.#strictResults = spec === 'json' && strictPayloads;
  }

  /** Tells main that an outcome is waiting, or a flush was answered (it awaits PROGRESS only while MAIN_WAITING). */
  notifyMain(): void {
    this.#reported = false;
    Atomics.add(this.#control, PROGRESS, 1);
    if (Atomics.load(this.#control, MAIN_WAITING) !== 0) Atomics.notify(this.#control, PROGRESS);
  }

  /**
   * A batch ended: main hears of it if it wrote outcomes main has not been
   * told of, or if main asked for every batch (WAIT_BATCHES: someone waits
   * for room, for drain(), or for overflowed records to move).
   */
  batchEnded(): void {
    if (this.#reported || Atomics.load(this.#control, MAIN_WAITING) === WAIT_BATCHES) this.notifyMain();
    else Atomics.add(this.#control, PROGRESS, 1);
  }

  /**
   * Runs the span `reader` just claimed for `slot`. False if main ended this
   * task meanwhile (the slot's EPOCH moved on): main has recovered the rest of
   * the batch, so this worker must stop at once and touch the slot no more.
   */
  async run(reader: LaneRingReader, slot: number, out: OutcomeRingWriter, task: DrainTask, counters: SlotCounters,
    metrics: MetricsRecorder): Promise<boolean> {
    const n = this.#decode(reader);
    const batch = this.#batch;
    const handlers = this.#handlers;
    const breakers = this.#breakers;
    const breakerCounters = this.#breakerCounters[slot];
    const control = this.#control;
    const { i32, u8 } = reader.view;
    const cursorWord = slotWord(slot, SLOT_CURSOR);
    const handlerWord = slotWord(slot, SLOT_HANDLER_INDEX);
    // Plain per-record writes (published with Atomics.store per batch): if this
    // worker dies mid-batch, main reads exactly how far it got.
    const settledWord = slotWord(slot, SLOT_SETTLED);
    const epochWord = slotWord(slot, SLOT_EPOCH);
    const processedWord = slotWord(slot, SLOT_PROCESSED);
    // CURSOR: the first record not fully accounted for; HANDLER_INDEX: the handler
    // running on it, -1 between records. Main reads both if this worker dies.
    control[cursorWord] = reader.start;
    control[handlerWord] = -1;
    const timeOrigin = performance.timeOrigin;
    // One clock read per handler call (~50 ns): each attempt's own duration, outliers included.
    const timed = metrics.timed;
    // The slow-call rule needs each call's duration even with metrics off.
    const clocked = timed || task.slowCallMs > 0;
    let t = clocked ? performance.now() : 0;
    for (let k = 0; k < n; k++) {
      if (Atomics.load(control, epochWord) !== task.epoch) return false;
      const r = batch[k];
      const h = r.header;
      const { off, recordBytes: len, flags, seq, topicId, attempt } = h;
      const event = r.event;
      control[cursorWord] = r.pos;
      let failed = 0;
      let result: unknown;
      for (let i = 0; i < h.handlerCount; i++) {
        const handlerId = i32[h.handlersWord + i];
        control[handlerWord] = i;
        // The breaker is checked right before the call: deliveries already claimed are held (or refused) too.
        const breaker = task.breakers ? handlers.breaker(handlerId) : -1;
        const admitted = breaker >= 0 ? admit(breakers, breaker) : ADMIT_RUN;
        if (admitted === ADMIT_DENY) {
          failed++;
          const record = u8.subarray(off, off + len);
          if (task.holdOpenCircuits) this.#report(out, slot, OUT_HELD, seq, topicId, handlerId, attempt, '', record);
          else {
            this.#report(out, slot, OUT_REFUSED, seq, topicId, handlerId, attempt, circuitOpenMessage(handlers.name(handlerId)),
              task.keepFailedRecords || h.topicBytes > 0 ? record : undefined);
          }
          if (clocked) t = performance.now();
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
          metrics.succeeded(handlers.metricsKey(handlerId));
          let ms = 0;
          if (clocked) {
            const t2 = performance.now();
            ms = t2 - t;
            if (timed) {
              metrics.processing(handlers.metricsKey(handlerId), ms * 1e6);
              metrics.maybePublish(t2); // a long batch still publishes every 50 ms
            }
            t = t2;
          }
          if (breaker >= 0) {
            // Plain stores: this slot's counters have one writer; main folds them into the breaker's window.
            breakerCounters[successWord(breaker)]++;
            if (task.slowCallMs > 0 && ms >= task.slowCallMs) breakerCounters[slowWord(breaker)]++;
            if (admitted === ADMIT_TRIAL) this.#report(out, slot, OUT_SUCCEEDED, seq, topicId, handlerId, attempt, '', undefined);
          }
        } catch (err) {
          failed++;
          if (clocked) {
            const t2 = performance.now();
            if (timed) metrics.processing(handlers.metricsKey(handlerId), (t2 - t) * 1e6);
            t = t2;
          }
          // A record that carries its topic goes back too: main names the failure's topic from it.
          const record = task.keepFailedRecords || h.topicBytes > 0 ? u8.subarray(off, off + len) : undefined;
          this.#report(out, slot, OUT_FAILED, seq, topicId, handlerId, attempt, errorText(err), record, errorName(err),
            (admitted === ADMIT_TRIAL ? OUTF_TRIAL : 0) | (handlers.isLoadFailure(handlerId, err) ? OUTF_LOAD_FAILED : 0), errorStack(err));
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
      let resultBytes: Uint8Array | undefined;
      let binaryResult = false;
      if (failed === 0 && flags & RF_COMMAND && result !== undefined) {
        // A result goes back as JSON text or, with a structured or custom codec, as the codec's bytes.
        let problem: string | undefined;
        try {
          let size: number;
          if (result instanceof Uint8Array) {
            resultBytes = result;
            binaryResult = true;
            size = result.byteLength;
          } else if (this.#codecName === undefined) {
            text = JSON.stringify(result) ?? '';
            const loss = this.#strictResults && !jsonExact(result) ? jsonLoss(result, 'result') : undefined;
            if (loss !== undefined) problem = `command result cannot be sent back as JSON: ${loss}`;
            size = Buffer.byteLength(text);
          } else {
            if (this.#codec === undefined) throw this.#codecError;
            resultBytes = this.#codec.encode(result);
            size = resultBytes.byteLength;
          }
          if (problem === undefined && size > task.maxResultBytes) {
            problem = `command result is ${size} bytes, more than queue.maxPayloadBytes (${task.maxResultBytes})`;
          }
        } catch (err) {
          problem = this.#codecName === undefined
            ? `command result cannot be sent back as JSON: ${jsonLoss(result, 'result') ?? errorText(err)}`
            : `command result cannot be encoded with codec ${this.#codecName}: ${
              (this.#codecName === 'structured' ? unserializablePath(result, 'result') : undefined) ?? errorText(err)}`;
        }
        if (problem !== undefined) {
          text = '';
          resultBytes = undefined;
          const handlerId = i32[h.handlersWord];
          metrics.retractSuccess(handlers.metricsKey(handlerId));
          counters.processed--;
          control[processedWord] = counters.processed;
          this.#report(out, slot, OUT_FAILED, seq, topicId, handlerId, attempt, problem, undefined);
        }
      }
      this.#report(out, slot, OUT_DONE, seq, topicId, -1, attempt, text, resultBytes, '',
        (failed > 0 ? OUTF_FAILED : 0) | (flags & RF_DETACHED ? OUTF_DETACHED : 0) | (resultBytes !== undefined ? OUTF_RESULT_BYTES : 0) |
        (binaryResult && resultBytes !== undefined ? OUTF_RESULT_BINARY : 0));
      control[cursorWord] = r.next;
      control[handlerWord] = -1;
    }
    control[cursorWord] = reader.end; // pad records at the end, if any
    return true;
  }

  /** Writes an outcome, waiting for main to make room if the outcome ring is full. */
  #report(out: OutcomeRingWriter, slot: number, kind: number, seq: number, topicId: number,
    handlerId: number, attempt: number, text: string, record: Uint8Array | undefined, name = '', outFlags = 0, stack = ''): void {
    this.#reported = true;
    while (!out.tryWrite(kind, seq, topicId, handlerId, attempt, text, record, name, outFlags, stack)) {
      this.notifyMain();
      Atomics.wait(this.#control, slotWord(slot, SLOT_BUSY), 1, 5);
    }
    // Failures are rare and main must see them at once: its circuit breaker may
    // need to open before this worker reaches the rest of the batch.
    if (kind === OUT_FAILED) this.notifyMain();
  }

  #topicName(id: number): string {
    let name = this.#topics[id];
    if (name === undefined) {
      const entry = this.#registry.get(id);
      name = entry.kind === ENTRY_TOPIC ? entry.topic : `#${id}`;
      this.#topics[id] = name;
    }
    return name;
  }

  /** Decodes the claimed span into the batch; returns how many records (pad records skipped). */
  #decode(reader: LaneRingReader): number {
    const view = reader.view;
    const mask = reader.mask;
    const priority = PRIORITY_NAMES[reader.lane];
    // Binary payloads are copied out of the ring into one buffer per batch:
    // one ArrayBuffer allocation per batch instead of one per event. (A handler
    // that keeps a payload keeps that batch's buffer alive; it is bounded by
    // the batch's size in the ring.)
    let arena: Uint8Array | undefined;
    let arenaAt = 0;
    let n = 0;
    for (let pos = reader.start; pos !== reader.end; ) {
      let r = this.#batch[n];
      if (r === undefined) {
        r = { pos: 0, next: 0, header: new RecordHeader(), event: EMPTY_EVENT, decodeError: undefined };
        this.#batch[n] = r;
      }
      const h = r.header.read(view, pos & mask);
      const start = pos;
      pos = (pos + h.recordBytes) | 0;
      if (h.flags & RF_PAD) continue;
      let payload: unknown;
      let decodeError: unknown;
      try {
        if (h.flags & RF_BINARY) {
          arena ??= new Uint8Array((reader.end - reader.start) | 0);
          arena.set(h.payloadView(view), arenaAt);
          payload = arena.subarray(arenaAt, arenaAt + h.payloadBytes);
          arenaAt = (arenaAt + h.payloadBytes + 7) & ~7; // 8-aligned, so typed-array views over a payload work
        } else if (h.flags & RF_ENCODED) {
          if (this.#codec === undefined) throw this.#codecError ?? new Error('ringbus: a codec-encoded payload reached a worker with no codec');
          // Copied out of the ring per event: v8.deserialize (and a custom decoder may) returns typed arrays that
          // are views into the bytes it is given, which must be neither the ring nor another event's payload.
          payload = this.#codec.decode(h.payloadView(view).slice());
        } else {
          payload = h.jsonPayload(view);
        }
      } catch (err) {
        // Said as what it is: the payload did not decode, the handler never ran.
        decodeError = new Error(`payload for topic '${h.topic(view) ?? this.#topicName(h.topicId)}' could not be decoded with codec ${
          this.#codecName ?? 'json'} in the worker: ${errorText(err)}`, { cause: err });
        (decodeError as Error).name = 'PayloadDecodeError';
      }
      r.pos = start;
      r.next = pos;
      r.decodeError = decodeError;
      r.event = {
        id: h.id(view) ?? this.#idPrefix + h.seq, topic: h.topicBytes > 0 ? h.topic(view)! : this.#topicName(h.topicId), payload, priority,
        sessionId: h.sessionId(view), attempt: h.attempt, publishedAt: h.publishedAt,
        headers: h.headersBytes > 0 ? Object.freeze(h.headers(view)!) : undefined,
      };
      n++;
    }
    return n;
  }
}
