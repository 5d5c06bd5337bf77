/**
 * One line of the schedule file: how a ScheduledEvent becomes a JSON line and
 * back (its payload bytes exactly), the done/cancelled marks, and the
 * validation that tells a schedule line from a corrupt one.
 *
 * Lines (JSON Lines, one op each):
 *   {"op":"add","id":"…","topic":"…","dueAt":<ms>,"publishedAt":<ms>,"priority":"normal",
 *    "sessionId"?:"…","headers"?:{"k":"v",…},"payload":P}
 *   {"op":"done","ids":["…",…]}        handed to the bus and settled: never delivered again
 *   {"op":"cancelled","ids":["…",…]}   cancelled while pending
 *   P = {"json":<value>}               JSON text (flags 0) that parse + stringify gives back byte for byte
 *     | {"jsonBase64":"…"}             other JSON text (flags 0), its bytes
 *     | {"base64":"…"}                 raw bytes (RF_BINARY)
 *     | {"undefined":true}             undefined (RF_UNDEFINED), no bytes
 *     | {"encoded":"…","codec":"…"}    the bus codec's bytes (RF_ENCODED), and that codec's name
 * A later add with the same id supersedes the earlier one; a mark for an id
 * the file does not hold is ignored.
 */
import { RF_BINARY, RF_ENCODED, RF_UNDEFINED } from '../protocol/record.js';
import { PRIORITIES, type ScheduledEvent, type ScheduledPriority } from './scheduled_event.js';

export type MarkOp = 'done' | 'cancelled';

/** A line that passed validation. `codec` is the name stored with an RF_ENCODED payload. */
export type ScheduleOp = { op: 'add'; event: ScheduledEvent; codec: string | undefined } | { op: MarkOp; ids: readonly string[] };

type StoredPayload = { json: unknown } | { jsonBase64: string } | { base64: string } | { undefined: true } | { encoded: string; codec: string };

const base64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
const fromBase64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

/** JSON text bytes as `{json}` when that gives them back exactly, else as their bytes. */
function storedJson(bytes: Uint8Array): StoredPayload {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = buf.toString('utf8');
  try {
    // Exact round trip only: integer-like keys reorder, "1.0" becomes "1", spacing is lost, …
    if (Buffer.byteLength(text) === buf.length) {
      const value: unknown = JSON.parse(text);
      if (JSON.stringify(value) === text) return { json: value };
    }
  } catch {
    // not JSON: kept as bytes
  }
  return { jsonBase64: buf.toString('base64') };
}

/** An event as one line (no newline). `codec`: the bus codec's name, stored with an RF_ENCODED payload. */
export function addLine(e: ScheduledEvent, codec: string | undefined): string {
  let payload: StoredPayload;
  if (e.payloadFlags === RF_BINARY) payload = { base64: base64(e.payload) };
  else if (e.payloadFlags === RF_UNDEFINED) payload = { undefined: true };
  else if (e.payloadFlags === RF_ENCODED) payload = { encoded: base64(e.payload), codec: codec ?? '' };
  else payload = storedJson(e.payload);
  return JSON.stringify({
    op: 'add', id: e.id, topic: e.topic, dueAt: e.dueAt, publishedAt: e.publishedAt, priority: e.priority,
    sessionId: e.sessionId, headers: e.headers, payload,
  });
}

export function markLine(op: MarkOp, ids: readonly string[]): string {
  return JSON.stringify({ op, ids });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function restorePayload(p: unknown): { flags: number; bytes: Uint8Array; codec?: string } | string {
  if (!isObject(p)) return 'payload is not an object';
  if ('json' in p) return { flags: 0, bytes: new Uint8Array(Buffer.from(JSON.stringify(p.json) ?? 'null')) };
  if ('jsonBase64' in p) return typeof p.jsonBase64 === 'string' ? { flags: 0, bytes: fromBase64(p.jsonBase64) } : 'payload.jsonBase64 is not a string';
  if ('base64' in p) return typeof p.base64 === 'string' ? { flags: RF_BINARY, bytes: fromBase64(p.base64) } : 'payload.base64 is not a string';
  if (p.undefined === true) return { flags: RF_UNDEFINED, bytes: new Uint8Array(0) };
  if ('encoded' in p) {
    if (typeof p.encoded !== 'string') return 'payload.encoded is not a string';
    if (typeof p.codec !== 'string' || p.codec === '') return 'payload.codec is not a codec name';
    return { flags: RF_ENCODED, bytes: fromBase64(p.encoded), codec: p.codec };
  }
  return 'payload has neither json, jsonBase64, base64, undefined nor encoded';
}

function restoreAdd(v: Record<string, unknown>): ScheduleOp | string {
  if (typeof v.id !== 'string' || v.id === '') return 'id is not a non-empty string';
  if (typeof v.topic !== 'string' || v.topic === '') return 'topic is not a non-empty string';
  for (const key of ['dueAt', 'publishedAt'] as const) if (typeof v[key] !== 'number' || !Number.isFinite(v[key])) return `${key} is not a number`;
  if (typeof v.priority !== 'string' || !PRIORITIES.has(v.priority)) return 'priority is not a priority';
  if (v.sessionId !== undefined && typeof v.sessionId !== 'string') return 'sessionId is not a string';
  if (v.headers !== undefined) {
    if (!isObject(v.headers)) return 'headers is not an object';
    for (const h of Object.values(v.headers)) if (typeof h !== 'string') return 'a header value is not a string';
  }
  const payload = restorePayload(v.payload);
  if (typeof payload === 'string') return payload;
  const event: ScheduledEvent = {
    id: v.id, topic: v.topic, dueAt: v.dueAt as number, publishedAt: v.publishedAt as number, priority: v.priority as ScheduledPriority,
    sessionId: v.sessionId as string | undefined, headers: v.headers as Record<string, string> | undefined,
    payloadFlags: payload.flags, payload: payload.bytes,
  };
  return { op: 'add', event, codec: payload.codec };
}

/** A line's text (no newline) as an op, or why it is not one. */
export function parseLine(text: string): ScheduleOp | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { problem: `not JSON (${(err as Error).message})` };
  }
  if (!isObject(value)) return { problem: `not a schedule record (${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value})` };
  if (value.op === 'add') {
    const op = restoreAdd(value);
    return typeof op === 'string' ? { problem: `an add whose ${op}` } : op;
  }
  if (value.op === 'done' || value.op === 'cancelled') {
    const ids = value.ids;
    if (Array.isArray(ids) && ids.every((id) => typeof id === 'string')) return { op: value.op, ids };
    return { problem: `a ${value.op} mark whose ids are not a list of strings` };
  }
  return { problem: `op ${JSON.stringify(value.op) ?? 'missing'} is not add, done or cancelled` };
}
