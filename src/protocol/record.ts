/**
 * The record codec: the one place that knows how an event is laid out in a
 * lane ring. The main thread encodes (`RecordEncoder`), workers decode
 * batches in place, and main decodes copies (crash recovery, retries, dead
 * letters) with the same `RecordHeader` reader.
 *
 *    +0  i32 recordBytes   whole record, multiple of 8
 *    +4  i32 flags         RF_* bits below; bits 8-9: the lane
 *    +8  i32 topicId       index in the shared registry
 *    +12 i32 attempt       0 on the first try
 *    +16 f64 seq           event number, unique per bus
 *    +24 f64 publishedAt   epoch ms
 *    +32 i32 handlerCount
 *    +36 i32 payloadBytes
 *    +40 i32 sessionBytes
 *    +44 i32 idBytes       > 0: the event id is given (a replayed dead letter keeps its id)
 *    +48 i32 headersBytes  > 0: the event has headers (a JSON object of strings)
 *    +52 i32 topicBytes    > 0: the topic is carried as text, and topicId names the
 *                          wildcard subscription that routed it (see router.ts)
 *    +56 i32[handlerCount] handler ids, in the order they must run
 *        utf8 session id, utf8 event id, utf8 topic, utf8 headers JSON, then payload
 *        bytes: JSON text, raw binary (RF_BINARY), or the bus codec's bytes
 *        (RF_ENCODED, see codec.ts)
 *
 * A PAD record (flags = RF_PAD, recordBytes = the rest of the ring) fills the
 * tail of a ring when the next record would not fit before the end: records
 * are never split across the wrap.
 */
import type { PayloadCodec } from './codec.js';
import { align8 } from './layout.js';

export const REC_BYTES = 0;
export const REC_FLAGS = 4;
export const REC_TOPIC = 8;
export const REC_ATTEMPT = 12;
export const REC_SEQ = 16;
export const REC_PUBLISHED_AT = 24;
export const REC_HANDLER_COUNT = 32;
export const REC_PAYLOAD_BYTES = 36;
export const REC_SESSION_BYTES = 40;
export const REC_ID_BYTES = 44;
export const REC_HEADERS_BYTES = 48;
export const REC_TOPIC_BYTES = 52;
export const REC_HEADER_BYTES = 56;

export const RF_PAD = 1 << 0;
/** Payload is raw bytes, handed to handlers as a Uint8Array. */
export const RF_BINARY = 1 << 1;
/** Payload was `undefined` (JSON has no encoding for it). */
export const RF_UNDEFINED = 1 << 2;
/** Main tracks this record: report success explicitly (commands, staged events, retries). */
export const RF_TRACKED = 1 << 3;
/** A command: report the handler's result. */
export const RF_COMMAND = 1 << 4;
/** Part of an event already under way (a retry, a later stage, what a crash left): drop-oldest never drops it. */
export const RF_CONTINUATION = 1 << 5;
/**
 * One delivery detached from the event's pass: a retry, or a delivery an
 * open circuit held. Its completion settles that delivery, not a stage.
 */
export const RF_DETACHED = 1 << 6;
/**
 * Payload bytes came from the bus's codec ('structured' or a custom one):
 * decode them with the same codec. Never set with codec 'json' (text), nor
 * for Uint8Array (RF_BINARY) or undefined (RF_UNDEFINED) payloads, which
 * travel the same under every codec.
 */
export const RF_ENCODED = 1 << 7;
export const RF_LANE_SHIFT = 8;
const RF_LANE_MASK = 3;

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

/** A standalone record's view (a copy outside any ring). */
export const standaloneView = (record: Uint8Array): RecordView => viewOf(record.buffer, record.byteOffset, record.byteLength);

// ------------------------------------------------------------------ writer

/** The encoded payload and session, kept aside while a producer waits for room. */
export interface EncodedPayload {
  readonly flags: number;
  readonly text: string | undefined;
  readonly binary: Uint8Array | undefined;
  readonly payloadBytes: number;
  readonly session: string | undefined;
  readonly sessionBytes: number;
  readonly headers: string | undefined;
  readonly headersBytes: number;
  readonly headerValues: Readonly<Record<string, string>> | undefined;
}

/**
 * One event, encoded once. Main fills this reusable object instead of
 * allocating an argument bag per publish, then writes it into a ring (or a
 * standalone copy when the ring is full).
 */
export class RecordEncoder {
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
  /** The topic as text: set only when the route is a wildcard subscription's (topicId then names the pattern). */
  topic: string | undefined = undefined;
  topicBytes = 0;
  /** The event's headers as JSON text (validated and sized by the publisher). */
  headers: string | undefined = undefined;
  headersBytes = 0;
  /** The headers as a frozen object, made from `headers` when first asked for (inline handlers, filters): a worker-only route never needs it. */
  #headerValues: Readonly<Record<string, string>> | undefined = undefined;
  text: string | undefined = undefined;
  /** Raw payload bytes: a binary payload, or (for a rewrite) the payload bytes of another record as they are. */
  binary: Uint8Array | undefined = undefined;
  payloadBytes = 0;

  get recordBytes(): number {
    return align8(REC_HEADER_BYTES + 4 * this.handlerIds.length + this.sessionBytes + this.idBytes + this.topicBytes + this.headersBytes +
      this.payloadBytes);
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
    i32[w + (REC_HEADERS_BYTES >> 2)] = this.headersBytes;
    i32[w + (REC_TOPIC_BYTES >> 2)] = this.topicBytes;
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
    if (this.topic !== undefined) {
      bytes.write(this.topic, at, 'utf8');
      at += this.topicBytes;
    }
    if (this.headers !== undefined) {
      bytes.write(this.headers, at, 'utf8');
      at += this.headersBytes;
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
    this.sessionBytes = 0;
    this.id = undefined;
    this.idBytes = 0;
    this.topic = undefined;
    this.topicBytes = 0;
    this.headers = undefined;
    this.headersBytes = 0;
    this.#headerValues = undefined;
    this.text = undefined;
    this.binary = undefined;
  }

  setSession(session: string | undefined, sessionBytes = session === undefined ? 0 : Buffer.byteLength(session)): void {
    this.session = session;
    this.sessionBytes = sessionBytes;
  }

  setId(id: string | undefined): void {
    this.id = id;
    this.idBytes = id === undefined ? 0 : Buffer.byteLength(id);
  }

  /** The topic carried as text (a wildcard route's), or none. */
  setTopic(topic: string | undefined): void {
    this.topic = topic;
    this.topicBytes = topic === undefined ? 0 : Buffer.byteLength(topic);
  }

  /** Headers as JSON text (undefined: none); `headerValues` is made from it when asked for, unless set. */
  setHeaders(json: string | undefined, bytes = json === undefined ? 0 : Buffer.byteLength(json)): void {
    this.headers = json;
    this.headersBytes = bytes;
    this.#headerValues = undefined;
  }

  /** The encoded payload and session, kept while a producer waits (binary bytes copied: the caller may reuse them). */
  snapshot(): EncodedPayload {
    return {
      flags: this.flags, text: this.text, binary: this.binary?.slice(), payloadBytes: this.payloadBytes,
      session: this.session, sessionBytes: this.sessionBytes, headers: this.headers, headersBytes: this.headersBytes,
      headerValues: this.#headerValues,
    };
  }

  restore(s: EncodedPayload): void {
    this.flags = s.flags;
    this.text = s.text;
    this.binary = s.binary;
    this.payloadBytes = s.payloadBytes;
    this.session = s.session;
    this.sessionBytes = s.sessionBytes;
    this.headers = s.headers;
    this.headersBytes = s.headersBytes;
    this.#headerValues = s.headerValues;
  }

  get headerValues(): Readonly<Record<string, string>> | undefined {
    if (this.#headerValues === undefined && this.headers !== undefined) {
      this.#headerValues = Object.freeze(JSON.parse(this.headers) as Record<string, string>);
    }
    return this.#headerValues;
  }

  set headerValues(values: Readonly<Record<string, string>> | undefined) {
    this.#headerValues = values;
  }
}

// ------------------------------------------------------------------ reader

/**
 * A record's header and where its parts are, read once. Reusable: the worker
 * keeps one per position of its batch, so decoding allocates nothing but the
 * event itself.
 */
export class RecordHeader {
  /** Byte offset of the record in its view. */
  off = 0;
  recordBytes = 0;
  flags = 0;
  topicId = 0;
  attempt = 0;
  seq = 0;
  publishedAt = 0;
  handlerCount = 0;
  payloadBytes = 0;
  sessionBytes = 0;
  idBytes = 0;
  headersBytes = 0;
  topicBytes = 0;
  /** Int32 index of the first handler id. */
  handlersWord = 0;
  /** Byte offsets of the session id, the event id, the carried topic, the headers and the payload. */
  sessionAt = 0;
  idAt = 0;
  topicAt = 0;
  headersAt = 0;
  payloadAt = 0;

  read(view: RecordView, off: number): this {
    const { i32, f64 } = view;
    const w = off >> 2;
    this.off = off;
    this.recordBytes = i32[w + (REC_BYTES >> 2)];
    this.flags = i32[w + (REC_FLAGS >> 2)];
    this.topicId = i32[w + (REC_TOPIC >> 2)];
    this.attempt = i32[w + (REC_ATTEMPT >> 2)];
    this.seq = f64[(off + REC_SEQ) >> 3];
    this.publishedAt = f64[(off + REC_PUBLISHED_AT) >> 3];
    this.handlerCount = i32[w + (REC_HANDLER_COUNT >> 2)];
    this.payloadBytes = i32[w + (REC_PAYLOAD_BYTES >> 2)];
    this.sessionBytes = i32[w + (REC_SESSION_BYTES >> 2)];
    this.idBytes = i32[w + (REC_ID_BYTES >> 2)];
    this.headersBytes = i32[w + (REC_HEADERS_BYTES >> 2)];
    this.topicBytes = i32[w + (REC_TOPIC_BYTES >> 2)];
    this.handlersWord = w + (REC_HEADER_BYTES >> 2);
    this.sessionAt = off + REC_HEADER_BYTES + 4 * this.handlerCount;
    this.idAt = this.sessionAt + this.sessionBytes;
    this.topicAt = this.idAt + this.idBytes;
    this.headersAt = this.topicAt + this.topicBytes;
    this.payloadAt = this.headersAt + this.headersBytes;
    return this;
  }

  get lane(): number {
    return (this.flags >> RF_LANE_SHIFT) & RF_LANE_MASK;
  }

  sessionId(view: RecordView): string | undefined {
    return this.sessionBytes > 0 ? view.bytes.toString('utf8', this.sessionAt, this.sessionAt + this.sessionBytes) : undefined;
  }

  /** The explicit event id, or undefined when it is derived from the bus's prefix and `seq`. */
  id(view: RecordView): string | undefined {
    return this.idBytes > 0 ? view.bytes.toString('utf8', this.idAt, this.idAt + this.idBytes) : undefined;
  }

  /** The carried topic (a wildcard route's), or undefined when topicId names it. */
  topic(view: RecordView): string | undefined {
    return this.topicBytes > 0 ? view.bytes.toString('utf8', this.topicAt, this.topicAt + this.topicBytes) : undefined;
  }

  /** The headers' JSON text, or undefined. */
  headersText(view: RecordView): string | undefined {
    return this.headersBytes > 0 ? view.bytes.toString('utf8', this.headersAt, this.headersAt + this.headersBytes) : undefined;
  }

  /** The headers, decoded (a fresh object per call), or undefined. */
  headers(view: RecordView): Record<string, string> | undefined {
    return this.headersBytes > 0 ? JSON.parse(this.headersText(view)!) as Record<string, string> : undefined;
  }

  /** A JSON (or undefined) payload, decoded. Throws what JSON.parse throws. Not for RF_BINARY or RF_ENCODED records. */
  jsonPayload(view: RecordView): unknown {
    if (this.flags & RF_UNDEFINED) return undefined;
    return JSON.parse(view.bytes.toString('utf8', this.payloadAt, this.payloadAt + this.payloadBytes));
  }

  /** The payload bytes as they are in the view (JSON text or binary): a view, not a copy. */
  payloadView(view: RecordView): Uint8Array {
    return view.u8.subarray(this.payloadAt, this.payloadAt + this.payloadBytes);
  }
}

/** Header fields the main thread needs of a record in place. */
export const recordFlags = (view: RecordView, off: number): number => view.i32[(off + REC_FLAGS) >> 2];
export const recordLength = (view: RecordView, off: number): number => view.i32[(off + REC_BYTES) >> 2];
export const recordSeq = (view: RecordView, off: number): number => view.f64[(off + REC_SEQ) >> 3];
export const recordTopic = (view: RecordView, off: number): number => view.i32[(off + REC_TOPIC) >> 2];

/** Everything a standalone record says about its event, decoded (dead letters, crash reports, handler-error events). */
export interface DecodedRecord {
  flags: number;
  lane: number;
  topicId: number;
  attempt: number;
  seq: number;
  publishedAt: number;
  handlerIds: Int32Array;
  sessionId: string | undefined;
  id: string | undefined;
  /** The carried topic (a wildcard route's), or undefined when topicId names it. */
  topic: string | undefined;
  headers: Record<string, string> | undefined;
  /** Decoded when read (most callers want only the header): a copy, never a view into `src`. */
  readonly payload: unknown;
}

/**
 * A standalone record, decoded. The payload is decoded only if `payload` is
 * read; an RF_ENCODED payload needs the bus's `codec` then (reading it
 * without one throws).
 */
export function decodeRecord(src: Uint8Array, codec?: PayloadCodec): DecodedRecord {
  const view = standaloneView(src);
  const h = new RecordHeader().read(view, 0);
  let decoded = false;
  let payload: unknown;
  return {
    flags: h.flags, lane: h.lane, topicId: h.topicId, attempt: h.attempt, seq: h.seq, publishedAt: h.publishedAt,
    handlerIds: view.i32.slice(h.handlersWord, h.handlersWord + h.handlerCount),
    sessionId: h.sessionId(view), id: h.id(view), topic: h.topic(view), headers: h.headers(view),
    // Decoded on first read only (most callers need the header), then kept: every read sees the same value.
    get payload(): unknown {
      if (decoded) return payload;
      if (h.flags & RF_BINARY) payload = h.payloadView(view).slice();
      else if (!(h.flags & RF_ENCODED)) payload = h.jsonPayload(view);
      else if (codec === undefined) throw new Error('ringbus: an RF_ENCODED payload needs the bus codec to be decoded');
      // A copy: v8.deserialize returns typed arrays that are views into the bytes it is given.
      else payload = codec.decode(h.payloadView(view).slice());
      decoded = true;
      return payload;
    },
  };
}

/**
 * A copy of a standalone record with another handler list and attempt: what
 * remains of a batch after a worker died, or one delivery to retry. The
 * payload bytes are copied as they are; the flags still say what they hold.
 */
export function rewriteRecord(src: Uint8Array, handlerIds: ArrayLike<number>, attempt: number, addFlags = 0): Uint8Array {
  const view = standaloneView(src);
  const h = new RecordHeader().read(view, 0);
  const e = new RecordEncoder();
  e.flags = h.flags | addFlags;
  e.topicId = h.topicId;
  e.attempt = attempt;
  e.seq = h.seq;
  e.publishedAt = h.publishedAt;
  e.handlerIds = handlerIds;
  e.setSession(h.sessionId(view), h.sessionBytes);
  e.setId(h.id(view));
  e.setTopic(h.topic(view));
  e.setHeaders(h.headersText(view), h.headersBytes);
  e.binary = h.payloadView(view);
  e.payloadBytes = h.payloadBytes;
  return e.toStandalone();
}
