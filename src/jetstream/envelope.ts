/**
 * The envelope: many events of one topic in one stream message, so the
 * cluster path pays JetStream's per-message cost (publish ack, delivery,
 * ack) once per batch, not once per event. Writer and reader side by side.
 *
 *   header
 *   +0   u8   ENVELOPE_VERSION
 *   +1   u8   codec name bytes (c); processes of one cluster must agree on the codec
 *   +2   u16  topic bytes (t)
 *   +4   u32  event count
 *   +8   c    codec name (ASCII), then t: topic (UTF-8)
 *
 *   then per event, packed
 *   +0   u8   payload kind: the record flags RF_BINARY / RF_ENCODED / RF_UNDEFINED, or 0 (JSON text)
 *   +1   u8   lane (0 critical … 3 low)
 *   +2   u16  attempts already used (0: never ran)
 *   +4   f64  publishedAt, epoch ms (unaligned: read with DataView-free Buffer methods)
 *   +12  u16  id bytes (n)
 *   +14  u16  session bytes + 1 (0: no session)
 *   +16  u32  payload bytes (p)
 *   +20  u16  headers bytes (h; version 2 on)
 *   +22  n id (UTF-8), s session (UTF-8), h headers (JSON text, UTF-8), p payload
 *
 * Version 1 (ringbus 0.4) had no headers field (events started at +20): it
 * is still read, so a cluster can be upgraded one process at a time.
 */
import { RF_BINARY, RF_ENCODED, RF_UNDEFINED, type RecordEncoder } from '../protocol/record.js';
import type { RemoteEvent } from '../transport.js';

export const ENVELOPE_VERSION = 2;
const HEADER_BYTES = 8;
const EVENT_HEADER_BYTES = 22;
const EVENT_HEADER_BYTES_V1 = 20;
const PAYLOAD_KINDS = RF_BINARY | RF_ENCODED | RF_UNDEFINED;

/** One topic's batch being filled: a growing buffer, sealed by `finish()`. */
export class EnvelopeWriter {
  #buf: Buffer;
  #at = 0;
  count = 0;

  constructor(codecName: string, topic: string, initialBytes = 4096) {
    const codec = Buffer.from(codecName, 'latin1');
    const t = Buffer.from(topic, 'utf8');
    this.#buf = Buffer.allocUnsafe(Math.max(initialBytes, HEADER_BYTES + codec.length + t.length + 256));
    this.#buf[0] = ENVELOPE_VERSION;
    this.#buf[1] = codec.length;
    this.#buf.writeUInt16LE(t.length, 2);
    codec.copy(this.#buf, HEADER_BYTES);
    t.copy(this.#buf, HEADER_BYTES + codec.length);
    this.#at = HEADER_BYTES + codec.length + t.length;
  }

  get bytes(): number {
    return this.#at;
  }

  /** Appends the event encoded in `r` (payload and session), with its id and publish time. */
  add(r: RecordEncoder, lane: number, attempt: number, id: string, publishedAt: number): void {
    const idBytes = Buffer.byteLength(id);
    const need = EVENT_HEADER_BYTES + idBytes + r.sessionBytes + r.headersBytes + r.payloadBytes;
    if (this.#at + need > this.#buf.length) this.#grow(this.#at + need);
    const b = this.#buf;
    let at = this.#at;
    b[at] = r.flags & PAYLOAD_KINDS;
    b[at + 1] = lane;
    b.writeUInt16LE(Math.min(attempt, 0xffff), at + 2);
    b.writeDoubleLE(publishedAt, at + 4);
    b.writeUInt16LE(idBytes, at + 12);
    b.writeUInt16LE(r.session === undefined ? 0 : r.sessionBytes + 1, at + 14);
    b.writeUInt32LE(r.payloadBytes, at + 16);
    b.writeUInt16LE(r.headersBytes, at + 20);
    at += EVENT_HEADER_BYTES;
    at += b.write(id, at, 'utf8');
    if (r.session !== undefined) at += b.write(r.session, at, 'utf8');
    if (r.headers !== undefined) at += b.write(r.headers, at, 'utf8');
    if (r.text !== undefined) at += b.write(r.text, at, 'utf8');
    else if (r.binary !== undefined) {
      b.set(r.binary, at);
      at += r.binary.byteLength;
    }
    this.#at = at;
    this.count++;
  }

  /** The sealed message: a copy of exactly the bytes written (kept until the server stored it). */
  finish(): Uint8Array {
    this.#buf.writeUInt32LE(this.count, 4);
    return Uint8Array.prototype.slice.call(this.#buf, 0, this.#at);
  }

  #grow(min: number): void {
    const next = Buffer.allocUnsafe(Math.max(min, this.#buf.length * 2));
    this.#buf.copy(next, 0, 0, this.#at);
    this.#buf = next;
  }
}

/** What an envelope holds, read once; events view into the message's bytes. */
export interface Envelope {
  readonly codec: string;
  readonly topic: string;
  readonly events: RemoteEvent[];
}

/** Reads an envelope; throws an Error saying what is wrong with a message that is not one. */
export function readEnvelope(data: Uint8Array): Envelope {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b.length < HEADER_BYTES) throw new Error(`not a ringbus envelope: ${b.length} bytes`);
  const version = b[0];
  if (version !== ENVELOPE_VERSION && version !== 1) throw new Error(`ringbus envelope version ${version} (this version reads 1 and ${ENVELOPE_VERSION})`);
  const eventHeaderBytes = version === 1 ? EVENT_HEADER_BYTES_V1 : EVENT_HEADER_BYTES;
  const codecBytes = b[1];
  const topicBytes = b.readUInt16LE(2);
  const count = b.readUInt32LE(4);
  let at = HEADER_BYTES;
  const codec = b.toString('latin1', at, at + codecBytes);
  at += codecBytes;
  const topic = b.toString('utf8', at, at + topicBytes);
  at += topicBytes;
  const events: RemoteEvent[] = new Array(count);
  for (let i = 0; i < count; i++) {
    if (at + eventHeaderBytes > b.length) throw new Error(`truncated ringbus envelope: event ${i} of ${count}`);
    const payloadFlags = b[at];
    const lane = b[at + 1] & 3;
    const attempt = b.readUInt16LE(at + 2);
    const publishedAt = b.readDoubleLE(at + 4);
    const idBytes = b.readUInt16LE(at + 12);
    const sessionField = b.readUInt16LE(at + 14);
    const payloadBytes = b.readUInt32LE(at + 16);
    const headersBytes = version === 1 ? 0 : b.readUInt16LE(at + 20);
    at += eventHeaderBytes;
    const sessionBytes = sessionField === 0 ? 0 : sessionField - 1;
    if (at + idBytes + sessionBytes + headersBytes + payloadBytes > b.length) throw new Error(`truncated ringbus envelope: event ${i} of ${count}`);
    const id = b.toString('utf8', at, at + idBytes);
    at += idBytes;
    const sessionId = sessionField === 0 ? undefined : b.toString('utf8', at, at + sessionBytes);
    at += sessionBytes;
    const headers = headersBytes === 0 ? undefined : b.toString('utf8', at, at + headersBytes);
    at += headersBytes;
    events[i] = {
      id, topic, lane, sessionId, attempt, publishedAt, payloadFlags, payload: data.subarray(at, at + payloadBytes), firstFailedAt: 0, run: '', headers,
    };
    at += payloadBytes;
  }
  return { codec, topic, events };
}
