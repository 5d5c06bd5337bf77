/**
 * Validates one publish's arguments and encodes its payload and session into
 * the publisher's reusable record, before anything is counted: a bad
 * argument throws and leaves no trace.
 */
import { errorMessage } from '../protocol/error_text.js';
import { MAX_SESSION_BYTES } from '../protocol/limits.js';
import { RF_BINARY, RF_UNDEFINED, type RecordEncoder } from '../protocol/record.js';
import type { PublishOptions } from '../types.js';
import { PUBLISH_OPTIONS, checkOptionsObject, checkTopic, laneOf } from './validation.js';

/** Fills `r` with the payload and session; returns the event's lane. */
export function encodePublish(r: RecordEncoder, topic: string, payload: unknown, options: PublishOptions | undefined,
  session: string | undefined, maxPayloadBytes: number, allowed: readonly string[] = PUBLISH_OPTIONS): number {
  checkTopic(topic);
  checkOptionsObject(`publish options for topic '${topic}'`, options, allowed);
  const lane = laneOf(options?.priority);
  const sessionId = options?.sessionId ?? session;
  if (sessionId !== undefined && typeof sessionId !== 'string') {
    throw new TypeError(`sessionId for topic '${topic}' must be a string, got ${String(sessionId)}`);
  }
  r.clear();
  r.setSession(sessionId);
  if (r.sessionBytes > MAX_SESSION_BYTES) {
    throw new RangeError(`sessionId for topic '${topic}' is ${r.sessionBytes} bytes; the most is ${MAX_SESSION_BYTES}`);
  }
  if (payload instanceof Uint8Array) {
    r.flags = RF_BINARY;
    r.binary = payload;
    r.payloadBytes = payload.byteLength;
  } else {
    let text: string | undefined;
    try {
      text = JSON.stringify(payload);
    } catch (err) {
      throw new TypeError(`payload for topic '${topic}' cannot be encoded as JSON: ${errorMessage(err)}`);
    }
    if (text === undefined) {
      if (payload !== undefined) throw new TypeError(`payload for topic '${topic}' cannot be encoded as JSON (a ${typeof payload})`);
      r.flags = RF_UNDEFINED;
      r.payloadBytes = 0;
    } else {
      r.flags = 0;
      r.text = text;
      r.payloadBytes = Buffer.byteLength(text);
    }
  }
  if (r.payloadBytes > maxPayloadBytes) {
    throw new RangeError(`payload for topic '${topic}' is ${r.payloadBytes} bytes, more than queue.maxPayloadBytes (${maxPayloadBytes})`);
  }
  return lane;
}
