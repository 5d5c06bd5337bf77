/**
 * A slot's outcome ring: the worker holding the slot writes, main reads; both
 * halves are here. It carries what success cannot imply: failures, command
 * replies, completion of tracked records. Because it lives in shared memory,
 * a worker that dies leaves its reports behind.
 *
 *    +0  i32 entryBytes    multiple of 8 (PAD entries fill the tail; entries never wrap)
 *    +4  i32 kind          OUT_* below
 *    +8  f64 seq
 *    +16 i32 handlerId     (-1 for whole-record outcomes)
 *    +20 i32 attempt
 *    +24 i32 textBytes     error message, or JSON of a command result
 *    +28 i32 recordBytes   copy of the record (for a retry), 0 if not kept; with
 *                          OUTF_RESULT_BYTES: a command result's codec bytes instead
 *    +32 i32 topicId
 *    +36 i32 nameBytes     the first nameBytes of the text are the thrown error's `name`
 *    +40 i32 flags         OUTF_* below
 *    +44 i32 stackBytes    the last stackBytes of the text are the thrown error's stack
 *    +48 text (name, then message, then stack), then record
 *
 * Cursors: the slot's OUT_WRITE (worker) and OUT_READ (main) words in the
 * control block. Sized by the engine to hold at least two of the largest
 * entries (limits.ts), so one entry always fits once main has read the rest.
 */
import { SLOT_OUT_READ, SLOT_OUT_WRITE, align8, slotWord } from './layout.js';

export const OUT_BYTES = 0;
export const OUT_KIND = 4;
export const OUT_SEQ = 8;
export const OUT_HANDLER = 16;
export const OUT_ATTEMPT = 20;
export const OUT_TEXT_BYTES = 24;
export const OUT_RECORD_BYTES = 28;
export const OUT_TOPIC = 32;
export const OUT_NAME_BYTES = 36;
export const OUT_FLAGS = 40;
export const OUT_STACK_BYTES = 44;
export const OUT_HEADER_BYTES = 48;

export const OUT_PAD = 0;
/** A handler threw (or its module failed to load); text is the message. */
export const OUT_FAILED = 1;
/** Every handler of the record ran (or was refused); text is a command's JSON result. */
export const OUT_DONE = 2;
/** An open circuit breaker refused the delivery: a failed attempt, but not a handler failure. */
export const OUT_REFUSED = 3;
/** A half-open trial delivery succeeded (the worker held one of the breaker's permits). */
export const OUT_SUCCEEDED = 4;
/** The delivery's circuit is open: it did not run, and waits on main until the circuit lets it (a record copy comes with it). */
export const OUT_HELD = 5;

/** OUT_DONE: some handler of the record failed or was held (the record did not succeed as a whole). */
export const OUTF_FAILED = 1 << 0;
/** OUT_DONE: the record was a detached delivery (a retry or a released held delivery), not a stage of the event's pass. */
export const OUTF_DETACHED = 1 << 1;
/** OUT_FAILED: the delivery was a half-open trial. */
export const OUTF_TRIAL = 1 << 2;
/** OUT_FAILED: the handler's module or export did not load (the text says why); not something the handler threw. */
export const OUTF_LOAD_FAILED = 1 << 5;
/**
 * OUT_DONE: the record section holds the command result encoded by the bus
 * codec ('structured' or custom), not a record copy; without it a result
 * travels as JSON text.
 */
export const OUTF_RESULT_BYTES = 1 << 3;
/** OUT_DONE with OUTF_RESULT_BYTES: the result was a Uint8Array, sent as its raw bytes (like a binary payload, under every codec). */
export const OUTF_RESULT_BINARY = 1 << 4;

/** One report from a worker that success alone could not imply. */
export interface Outcome {
  kind: number;
  seq: number;
  topicId: number;
  handlerId: number;
  attempt: number;
  text: string;
  /** The `name` of the thrown error (failures only; '' when it was not an Error). */
  name: string;
  /** The thrown error's stack (failures only; '' when it had none). */
  stack: string;
  /** OUTF_* bits. */
  flags: number;
  /** The record as it was run, when the bus keeps failed records for a retry. */
  record: Uint8Array | undefined;
}

/**
 * Worker side of a slot's outcome ring (single producer: the worker holding
 * the slot; single consumer: main). `tryWrite` returns false when the ring is
 * full; the worker then wakes main and waits for it to read (see the runtime's
 * `report`).
 */
export class OutcomeRingWriter {
  readonly #control: Int32Array;
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;
  readonly #bytes: Buffer;
  readonly #size: number;
  #slot = 0;

  constructor(control: Int32Array, sab: SharedArrayBuffer) {
    this.#control = control;
    this.#i32 = new Int32Array(sab);
    this.#f64 = new Float64Array(sab);
    this.#bytes = Buffer.from(sab);
    this.#size = sab.byteLength;
  }

  attach(slot: number): void {
    this.#slot = slot;
  }

  tryWrite(kind: number, seq: number, topicId: number, handlerId: number, attempt: number, text: string, record: Uint8Array | undefined,
    name = '', flags = 0, stack = ''): boolean {
    const c = this.#control;
    const nameBytes = name === '' ? 0 : Buffer.byteLength(name);
    const stackBytes = stack === '' ? 0 : Buffer.byteLength(stack);
    const messageBytes = Buffer.byteLength(text);
    const textBytes = nameBytes + messageBytes + stackBytes;
    const recordBytes = record === undefined ? 0 : record.byteLength;
    const bytes = align8(OUT_HEADER_BYTES + textBytes + recordBytes);
    const write = Atomics.load(c, slotWord(this.#slot, SLOT_OUT_WRITE));
    const read = Atomics.load(c, slotWord(this.#slot, SLOT_OUT_READ));
    let off = write & (this.#size - 1);
    const toEnd = this.#size - off;
    const need = bytes > toEnd ? toEnd + bytes : bytes;
    if (need > this.#size - ((write - read) | 0)) return false;
    let pos = write;
    if (bytes > toEnd) {
      this.#i32[(off + OUT_BYTES) >> 2] = toEnd;
      this.#i32[(off + OUT_KIND) >> 2] = OUT_PAD;
      pos = (pos + toEnd) | 0;
      off = 0;
    }
    this.#i32[(off + OUT_BYTES) >> 2] = bytes;
    this.#i32[(off + OUT_KIND) >> 2] = kind;
    this.#f64[(off + OUT_SEQ) >> 3] = seq;
    this.#i32[(off + OUT_TOPIC) >> 2] = topicId;
    this.#i32[(off + OUT_HANDLER) >> 2] = handlerId;
    this.#i32[(off + OUT_ATTEMPT) >> 2] = attempt;
    this.#i32[(off + OUT_TEXT_BYTES) >> 2] = textBytes;
    this.#i32[(off + OUT_RECORD_BYTES) >> 2] = recordBytes;
    this.#i32[(off + OUT_NAME_BYTES) >> 2] = nameBytes;
    this.#i32[(off + OUT_FLAGS) >> 2] = flags;
    this.#i32[(off + OUT_STACK_BYTES) >> 2] = stackBytes;
    if (nameBytes > 0) this.#bytes.write(name, off + OUT_HEADER_BYTES, 'utf8');
    this.#bytes.write(text, off + OUT_HEADER_BYTES + nameBytes, 'utf8');
    if (stackBytes > 0) this.#bytes.write(stack, off + OUT_HEADER_BYTES + nameBytes + messageBytes, 'utf8');
    if (record !== undefined) this.#bytes.set(record, off + OUT_HEADER_BYTES + textBytes);
    Atomics.store(c, slotWord(this.#slot, SLOT_OUT_WRITE), (pos + bytes) | 0);
    return true;
  }
}

/** Main side of a slot's outcome ring. */
export class OutcomeRingReader {
  readonly #control: Int32Array;
  readonly #slot: number;
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;
  readonly #bytes: Buffer;
  readonly #u8: Uint8Array;

  constructor(control: Int32Array, sab: SharedArrayBuffer, slot: number) {
    this.#control = control;
    this.#slot = slot;
    this.#i32 = new Int32Array(sab);
    this.#f64 = new Float64Array(sab);
    this.#bytes = Buffer.from(sab);
    this.#u8 = new Uint8Array(sab);
  }

  /** Hands every entry the worker has published so far to `sink`, oldest first. */
  drain(sink: (o: Outcome) => void): void {
    drainOutcomes(this.#control, this.#i32, this.#f64, this.#bytes, this.#u8, this.#slot, sink);
  }
}

function drainOutcomes(control: Int32Array, i32: Int32Array, f64: Float64Array, bytes: Buffer, u8: Uint8Array, slot: number,
  sink: (o: Outcome) => void): void {
  const size = u8.byteLength;
  const write = Atomics.load(control, slotWord(slot, SLOT_OUT_WRITE));
  let read = Atomics.load(control, slotWord(slot, SLOT_OUT_READ));
  while (read !== write) {
    const off = read & (size - 1);
    const len = i32[(off + OUT_BYTES) >> 2];
    const kind = i32[(off + OUT_KIND) >> 2];
    if (kind !== OUT_PAD) {
      const textBytes = i32[(off + OUT_TEXT_BYTES) >> 2];
      const recordBytes = i32[(off + OUT_RECORD_BYTES) >> 2];
      const textAt = off + OUT_HEADER_BYTES;
      const nameBytes = i32[(off + OUT_NAME_BYTES) >> 2];
      const stackBytes = i32[(off + OUT_STACK_BYTES) >> 2];
      const textEnd = textAt + textBytes - stackBytes;
      sink({
        kind,
        seq: f64[(off + OUT_SEQ) >> 3],
        topicId: i32[(off + OUT_TOPIC) >> 2],
        handlerId: i32[(off + OUT_HANDLER) >> 2],
        attempt: i32[(off + OUT_ATTEMPT) >> 2],
        text: bytes.toString('utf8', textAt + nameBytes, textEnd),
        name: nameBytes > 0 ? bytes.toString('utf8', textAt, textAt + nameBytes) : '',
        stack: stackBytes > 0 ? bytes.toString('utf8', textEnd, textAt + textBytes) : '',
        flags: i32[(off + OUT_FLAGS) >> 2],
        record: recordBytes > 0 ? u8.slice(textAt + textBytes, textAt + textBytes + recordBytes) : undefined,
      });
    }
    read = (read + len) | 0;
  }
  Atomics.store(control, slotWord(slot, SLOT_OUT_READ), read);
}

/** Resets a slot's outcome cursors before a new task uses it. */
export function resetOutcomes(control: Int32Array, slot: number): void {
  Atomics.store(control, slotWord(slot, SLOT_OUT_WRITE), 0);
  Atomics.store(control, slotWord(slot, SLOT_OUT_READ), 0);
}
