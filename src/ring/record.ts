import {
  REC_ATTEMPT, REC_BYTES, REC_FLAGS, REC_HANDLER_COUNT, REC_HEADER_BYTES, REC_PAYLOAD_BYTES,
  REC_ID_BYTES, REC_PUBLISHED_AT, REC_SEQ, REC_SESSION_BYTES, REC_TOPIC, RF_BINARY, RF_UNDEFINED, align8,
} from '../shared/layout.js';

/** Typed views over one buffer that holds records (a lane ring, or a standalone copy). */
export interface RecordView {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  /** For utf8 reads and writes. Careful: `Buffer#slice` is a view, not a copy; copy through `u8`. */
  readonly bytes: Buffer;
  readonly u8: Uint8Array;
}

export function viewOf(buffer: ArrayBufferLike, byteOffset = 0, byteLength = buffer.byteLength - byteOffset): RecordView {
  return {
    i32: new Int32Array(buffer, byteOffset, byteLength >> 2),
    f64: new Float64Array(buffer, byteOffset, byteLength >> 3),
    bytes: Buffer.from(buffer, byteOffset, byteLength),
    u8: new Uint8Array(buffer, byteOffset, byteLength),
  };
}

export interface EncodedPayload {
  readonly flags: number;
  readonly text: string | undefined;
  readonly binary: Uint8Array | undefined;
  readonly payloadBytes: number;
  readonly session: string | undefined;
  readonly sessionBytes: number;
}

/**
 * One event, encoded once. The dispatcher fills this reusable object instead
 * of allocating an argument bag per publish.
 */
export class PendingRecord {
  flags = 0;
  topicId = 0;
  attempt = 0;
  seq = 0;
  publishedAt = 0;
  handlerIds: ArrayLike<number> = [];
  session: string | undefined = undefined;
  sessionBytes = 0;
  /** An explicit event id (replays keep the original); otherwise workers derive it from `seq`. */
  id: string | undefined = undefined;
  idBytes = 0;
  text: string | undefined = undefined;
  binary: Uint8Array | undefined = undefined;
  payloadBytes = 0;

  get recordBytes(): number {
    return align8(REC_HEADER_BYTES + 4 * this.handlerIds.length + this.sessionBytes + this.idBytes + this.payloadBytes);
  }

  writeTo(view: RecordView, off: number): void {
    const { i32, f64, bytes } = view;
    const w = off >> 2;
    const n = this.handlerIds.length;
    i32[w + (REC_BYTES >> 2)] = this.recordBytes;
    i32[w + (REC_FLAGS >> 2)] = this.flags;
    i32[w + (REC_TOPIC >> 2)] = this.topicId;
    i32[w + (REC_ATTEMPT >> 2)] = this.attempt;
    f64[(off + REC_SEQ) >> 3] = this.seq;
    f64[(off + REC_PUBLISHED_AT) >> 3] = this.publishedAt;
    i32[w + (REC_HANDLER_COUNT >> 2)] = n;
    i32[w + (REC_PAYLOAD_BYTES >> 2)] = this.payloadBytes;
    i32[w + (REC_SESSION_BYTES >> 2)] = this.sessionBytes;
    i32[w + (REC_ID_BYTES >> 2)] = this.idBytes;
    const ids = w + (REC_HEADER_BYTES >> 2);
    for (let i = 0; i < n; i++) i32[ids + i] = this.handlerIds[i];
    let at = off + REC_HEADER_BYTES + 4 * n;
    if (this.session !== undefined) {
      bytes.write(this.session, at, 'utf8');
      at += this.sessionBytes;
    }
    if (this.id !== undefined) {
      bytes.write(this.id, at, 'utf8');
      at += this.idBytes;
    }
    if (this.text !== undefined) bytes.write(this.text, at, 'utf8');
    else if (this.binary !== undefined) bytes.set(this.binary, at);
  }

  /** A standalone copy, for records that wait outside the ring. */
  toStandalone(): Uint8Array {
    const out = new Uint8Array(this.recordBytes);
    this.writeTo(viewOf(out.buffer), 0);
    return out;
  }

  clear(): void {
    this.session = undefined;
    this.id = undefined;
    this.idBytes = 0;
    this.text = undefined;
    this.binary = undefined;
  }

  /** The encoded payload and session, kept while a producer waits (binary bytes copied: the caller may reuse them). */
  snapshot(): EncodedPayload {
    return {
      flags: this.flags, text: this.text, binary: this.binary?.slice(), payloadBytes: this.payloadBytes,
      session: this.session, sessionBytes: this.sessionBytes,
    };
  }

  restore(s: EncodedPayload): void {
    this.flags = s.flags;
    this.text = s.text;
    this.binary = s.binary;
    this.payloadBytes = s.payloadBytes;
    this.session = s.session;
    this.sessionBytes = s.sessionBytes;
  }
}

/** Header fields the main thread needs back out of an encoded record. */
export function recordSeq(view: RecordView, off: number): number {
  return view.f64[(off + REC_SEQ) >> 3];
}
export function recordFlags(view: RecordView, off: number): number {
  return view.i32[(off + REC_FLAGS) >> 2];
}
export function recordLength(view: RecordView, off: number): number {
  return view.i32[(off + REC_BYTES) >> 2];
}

/**
 * A copy of an encoded record with another handler list (and attempt): what
 * remains of a batch after a worker died, or one delivery to retry.
 */
export function rewriteRecord(src: Uint8Array, handlerIds: ArrayLike<number>, attempt: number, addFlags = 0): Uint8Array {
  const view = viewOf(src.buffer, src.byteOffset, src.byteLength);
  const p = new PendingRecord();
  p.flags = view.i32[REC_FLAGS >> 2] | addFlags;
  p.topicId = view.i32[REC_TOPIC >> 2];
  p.attempt = attempt;
  p.seq = view.f64[REC_SEQ >> 3];
  p.publishedAt = view.f64[REC_PUBLISHED_AT >> 3];
  p.handlerIds = handlerIds;
  const oldHandlers = view.i32[REC_HANDLER_COUNT >> 2];
  const sessionBytes = view.i32[REC_SESSION_BYTES >> 2];
  const payloadBytes = view.i32[REC_PAYLOAD_BYTES >> 2];
  const idBytes = view.i32[REC_ID_BYTES >> 2];
  const sessionAt = REC_HEADER_BYTES + 4 * oldHandlers;
  if (sessionBytes > 0) {
    p.session = view.bytes.toString('utf8', sessionAt, sessionAt + sessionBytes);
    p.sessionBytes = sessionBytes;
  }
  const idAt = sessionAt + sessionBytes;
  if (idBytes > 0) {
    p.id = view.bytes.toString('utf8', idAt, idAt + idBytes);
    p.idBytes = idBytes;
  }
  // Payload bytes are copied as they are; the flags still say whether they are JSON or binary.
  p.binary = src.subarray(idAt + idBytes, idAt + idBytes + payloadBytes);
  p.payloadBytes = payloadBytes;
  return p.toStandalone();
}

/** Everything an encoded record says about its event, decoded (for dead letters and crash reports). */
export interface DecodedRecord {
  flags: number;
  topicId: number;
  attempt: number;
  seq: number;
  publishedAt: number;
  handlerIds: Int32Array;
  sessionId: string | undefined;
  id: string | undefined;
  payload: unknown;
}

export function decodeRecord(src: Uint8Array): DecodedRecord {
  const view = viewOf(src.buffer, src.byteOffset, src.byteLength);
  const i32 = view.i32;
  const n = i32[REC_HANDLER_COUNT >> 2];
  const sessionBytes = i32[REC_SESSION_BYTES >> 2];
  const idBytes = i32[REC_ID_BYTES >> 2];
  const payloadBytes = i32[REC_PAYLOAD_BYTES >> 2];
  const flags = i32[REC_FLAGS >> 2];
  let at = REC_HEADER_BYTES + 4 * n;
  const sessionId = sessionBytes > 0 ? view.bytes.toString('utf8', at, at + sessionBytes) : undefined;
  at += sessionBytes;
  const id = idBytes > 0 ? view.bytes.toString('utf8', at, at + idBytes) : undefined;
  at += idBytes;
  let payload: unknown;
  if (flags & RF_BINARY) payload = view.u8.slice(at, at + payloadBytes);
  else if (!(flags & RF_UNDEFINED)) payload = JSON.parse(view.bytes.toString('utf8', at, at + payloadBytes));
  return {
    flags, topicId: i32[REC_TOPIC >> 2], attempt: i32[REC_ATTEMPT >> 2], seq: view.f64[REC_SEQ >> 3],
    publishedAt: view.f64[REC_PUBLISHED_AT >> 3], handlerIds: i32.slice(REC_HEADER_BYTES >> 2, (REC_HEADER_BYTES >> 2) + n),
    sessionId, id, payload,
  };
}
