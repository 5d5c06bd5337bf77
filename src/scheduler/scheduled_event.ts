/**
 * The shape of a scheduled (delayed) event as the scheduler keeps it: the
 * event already encoded for a record (its payload bytes and flags), plus
 * when it is due; and the check that tells a well-formed one from a bug in
 * the caller.
 */
import { RF_BINARY, RF_ENCODED, RF_UNDEFINED } from '../protocol/record.js';

export type ScheduledPriority = 'critical' | 'high' | 'normal' | 'low';
export const PRIORITIES: ReadonlySet<string> = new Set<ScheduledPriority>(['critical', 'high', 'normal', 'low']);

/** A published event waiting for its due time. */
export interface ScheduledEvent {
  /** The event id, assigned at publish. */
  readonly id: string;
  readonly topic: string;
  /** Epoch ms (wall clock): it is handed to the bus no earlier than this. */
  readonly dueAt: number;
  /** Epoch ms. */
  readonly publishedAt: number;
  readonly priority: ScheduledPriority;
  readonly sessionId: string | undefined;
  readonly headers: Readonly<Record<string, string>> | undefined;
  /** 0 (JSON text bytes), RF_BINARY, RF_UNDEFINED or RF_ENCODED. */
  readonly payloadFlags: number;
  /** The payload bytes exactly as encoded for a record (empty for RF_UNDEFINED). */
  readonly payload: Uint8Array;
}

/** The payload encodings a scheduled event may carry: one of these values, never a combination. */
export const PAYLOAD_FLAGS: readonly number[] = [0, RF_BINARY, RF_UNDEFINED, RF_ENCODED];

const show = (v: unknown): string => {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === undefined || v === null) return String(v);
  return Object.prototype.toString.call(v);
};

/**
 * Throws a TypeError naming the field and echoing its value when `e` is not
 * a well-formed scheduled event (a bug in the caller: the bus builds them).
 * `codec` is the bus codec's name; an RF_ENCODED payload needs one.
 */
export function checkEvent(e: ScheduledEvent, codec: string | undefined): void {
  const bad = (what: string, v: unknown): never => {
    throw new TypeError(`scheduled event ${show((e as { id?: unknown })?.id)}: ${what} (got ${show(v)})`);
  };
  if (typeof e !== 'object' || e === null) bad('it is not an object', e);
  if (typeof e.id !== 'string' || e.id === '') bad('id is not a non-empty string', e.id);
  if (typeof e.topic !== 'string' || e.topic === '') bad('topic is not a non-empty string', e.topic);
  if (!Number.isFinite(e.dueAt)) bad('dueAt is not a finite epoch-ms number', e.dueAt);
  if (!Number.isFinite(e.publishedAt)) bad('publishedAt is not a finite epoch-ms number', e.publishedAt);
  if (!PRIORITIES.has(e.priority)) bad("priority is not 'critical', 'high', 'normal' or 'low'", e.priority);
  if (e.sessionId !== undefined && typeof e.sessionId !== 'string') bad('sessionId is neither a string nor undefined', e.sessionId);
  if (e.headers !== undefined) {
    if (typeof e.headers !== 'object' || e.headers === null || Array.isArray(e.headers)) bad('headers is not an object', e.headers);
    for (const [k, v] of Object.entries(e.headers)) if (typeof v !== 'string') bad(`header ${JSON.stringify(k)} is not a string`, v);
  }
  if (!PAYLOAD_FLAGS.includes(e.payloadFlags)) bad('payloadFlags is not 0, RF_BINARY, RF_UNDEFINED or RF_ENCODED', e.payloadFlags);
  if (!(e.payload instanceof Uint8Array)) bad('payload is not a Uint8Array', e.payload);
  if (e.payloadFlags === RF_UNDEFINED && e.payload.length !== 0) bad('an RF_UNDEFINED payload has bytes', `${e.payload.length} bytes`);
  if (e.payloadFlags === RF_ENCODED && codec === undefined) bad("an RF_ENCODED payload, but the scheduler was given no codec name (options.codec)", e.payloadFlags);
}
