/**
 * One line of the dead-letter file: how a DeadLetterEntry becomes a JSON line
 * and back, and the validation that tells a dead-letter line from a corrupt
 * one (not JSON, `null`, an `add` without its entry, fields of the wrong type).
 *
 * Lines:
 *   {"op":"add","entry":{id, handler, error, errorName?, errorCode, attempts, firstAttemptAt,
 *                        lastAttemptAt, event:{id, topic, priority, sessionId?, publishedAt},
 *                        payload:{"json":…}|{"base64":"…"}|{"undefined":true}
 *                                |{"encoded":"…","codec":"structured"|"<module URL>#<export>"}}}
 *   {"op":"replayed","ids":["…",…]}   {"op":"cleared","ids":["…",…]|"all"}
 * A later `add` with the same entry id supersedes the earlier one (a replay
 * that failed again, with its new attempts); a mark ends an entry for good.
 *
 * `encoded`: a payload of a bus whose codec is 'structured' or a custom
 * module, stored as that codec's bytes (JSON cannot hold a Map or a BigInt).
 * A line is read back without any codec: such a payload comes back as an
 * EncodedPayload, which the dead-letter queue decodes with its bus's codec.
 */
import type { DeadEvent, DeadLetterEntry, DeadLetterErrorCode } from './dead_letter_entry.js';

type StoredPayload = { json: unknown } | { base64: string } | { undefined: true } | { encoded: string; codec: string };

/** The bus codec, as the dead-letter file needs it (absent with codec 'json': payloads are stored as JSON). */
export interface StoredPayloadCodec {
  /** 'structured', or `<module URL>#<export>` for a custom codec. */
  readonly name: string;
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}

/**
 * A payload stored as codec bytes and not decoded (yet): what `restoreEntry`
 * gives, and what stays in an entry when this bus's codec cannot decode it
 * (its codec is another). Such an entry cannot be replayed; it is written
 * back as it was read, and prints as `{ encoded, codec }`.
 */
export class EncodedPayload {
  constructor(readonly codec: string, readonly bytes: Uint8Array) {}

  /** Whether `codec` can decode it: 'structured' by 'structured', a custom codec's by a custom codec (its module may have moved). */
  decodableBy(codec: StoredPayloadCodec | undefined): boolean {
    if (codec === undefined) return false;
    return this.codec === 'structured' ? codec.name === 'structured' : codec.name !== 'structured';
  }

  toJSON(): { encoded: string; codec: string } {
    return { encoded: base64(this.bytes), codec: this.codec };
  }
}

const base64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

/** An entry as stored: the payload kept apart with its encoding. */
export type StoredEntry = Omit<DeadLetterEntry, 'event' | 'errorCode'> & {
  errorCode?: DeadLetterErrorCode;
  event: Omit<DeadEvent, 'payload'> & { payload?: unknown };
  payload?: StoredPayload;
};

export type MarkOp = 'replayed' | 'cleared';

/** A line that passed validation; `add` keeps the stored entry, decoded only when needed. */
export type Op = { op: 'add'; id: string; stored: StoredEntry } | { op: MarkOp; ids: readonly string[] | 'all' };

/** What an entry from a line written before `errorCode` existed gets. */
export const DEFAULT_ERROR_CODE: DeadLetterErrorCode = 'ERR_RINGBUS_HANDLER_FAILED';

const PRIORITIES = new Set(['critical', 'high', 'normal', 'low']);

/**
 * A dead letter as one line (no newline). The payload is kept apart with its
 * encoding, so a binary payload (any Uint8Array, Buffers included) comes back
 * as bytes and a JSON payload that merely looks like an encoded one comes
 * back as it was. With a `codec` (the bus's, when it is not 'json'), other
 * payloads are stored as the codec's bytes.
 */
export function addLine(entry: DeadLetterEntry, codec?: StoredPayloadCodec): string {
  const { payload, ...event } = entry.event;
  let stored: StoredPayload;
  if (payload instanceof Uint8Array) stored = { base64: base64(payload) };
  else if (payload === undefined) stored = { undefined: true };
  else if (payload instanceof EncodedPayload) stored = payload.toJSON();
  else if (codec !== undefined) stored = { encoded: base64(codec.encode(payload)), codec: codec.name };
  else stored = { json: payload };
  return JSON.stringify({ op: 'add', entry: { ...entry, event, payload: stored } });
}

export function markLine(op: MarkOp, ids: readonly string[] | 'all'): string {
  return JSON.stringify({ op, ids });
}

/**
 * The entry a validated `add` line holds (old lines: errorCode defaults to
 * handler-failed). A codec-encoded payload comes back as an EncodedPayload.
 */
export function restoreEntry(stored: StoredEntry): DeadLetterEntry {
  const { payload, event, errorCode, ...rest } = stored;
  const { payload: inEvent, ...eventFields } = event;
  let value: unknown = inEvent;
  if (payload !== undefined) {
    if ('base64' in payload) value = new Uint8Array(Buffer.from(payload.base64, 'base64'));
    else if ('encoded' in payload) value = new EncodedPayload(payload.codec, new Uint8Array(Buffer.from(payload.encoded, 'base64')));
    else value = 'json' in payload ? payload.json : undefined;
  }
  return { ...rest, errorCode: errorCode ?? DEFAULT_ERROR_CODE, event: { ...eventFields, payload: value } };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function entryProblem(e: unknown): string | undefined {
  if (!isObject(e)) return 'its entry is not an object';
  if (typeof e.id !== 'string' || e.id === '') return 'entry.id is not a non-empty string';
  for (const key of ['handler', 'error'] as const) if (typeof e[key] !== 'string') return `entry.${key} is not a string`;
  for (const key of ['attempts', 'firstAttemptAt', 'lastAttemptAt'] as const) if (!isNumber(e[key])) return `entry.${key} is not a number`;
  if (e.errorName !== undefined && typeof e.errorName !== 'string') return 'entry.errorName is not a string';
  if (e.subscription !== undefined && typeof e.subscription !== 'string') return 'entry.subscription is not a string';
  if (e.errorCode !== undefined && typeof e.errorCode !== 'string') return 'entry.errorCode is not a string';
  const ev = e.event;
  if (!isObject(ev)) return 'entry.event is not an object';
  if (typeof ev.id !== 'string') return 'entry.event.id is not a string';
  if (typeof ev.topic !== 'string') return 'entry.event.topic is not a string';
  if (typeof ev.priority !== 'string' || !PRIORITIES.has(ev.priority)) return 'entry.event.priority is not a priority';
  if (!isNumber(ev.publishedAt)) return 'entry.event.publishedAt is not a number';
  if (ev.sessionId !== undefined && ev.sessionId !== null && typeof ev.sessionId !== 'string') return 'entry.event.sessionId is not a string';
  if (ev.headers !== undefined && (!isObject(ev.headers) || Object.values(ev.headers).some((v) => typeof v !== 'string'))) {
    return 'entry.event.headers is not an object of strings';
  }
  const p = e.payload;
  if (p === undefined) return undefined;
  if (!isObject(p)) return 'entry.payload is not an object';
  if ('base64' in p) return typeof p.base64 === 'string' ? undefined : 'entry.payload.base64 is not a string';
  if ('encoded' in p) {
    if (typeof p.encoded !== 'string') return 'entry.payload.encoded is not a string';
    return typeof p.codec === 'string' ? undefined : 'entry.payload.codec is not a string';
  }
  if ('json' in p || p.undefined === true) return undefined;
  return 'entry.payload has neither json, base64, encoded nor undefined';
}

/** A line's text (see lineText: no newline, BOM and '\r' removed) as an op, or why it is not one. */
export function parseLine(text: string): Op | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { problem: `not JSON (${(err as Error).message})` };
  }
  if (!isObject(value)) return { problem: `not a dead-letter record (${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value})` };
  if (value.op === 'add') {
    const problem = entryProblem(value.entry);
    if (problem !== undefined) return { problem: `an add whose ${problem.replace(/^its /, '')}` };
    const stored = value.entry as StoredEntry;
    return { op: 'add', id: stored.id, stored };
  }
  if (value.op === 'replayed' || value.op === 'cleared') {
    const ids = value.ids;
    if (ids === 'all' || (Array.isArray(ids) && ids.every((id) => typeof id === 'string'))) return { op: value.op, ids: ids as string[] | 'all' };
    return { problem: `a ${value.op} mark whose ids are not a list of strings or "all"` };
  }
  return { problem: `op ${JSON.stringify(value.op) ?? 'missing'} is not add, replayed or cleared` };
}
