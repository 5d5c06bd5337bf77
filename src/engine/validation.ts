/**
 * Checks of per-call arguments (topics, priorities, timeouts) shared by
 * registration and publishing: each error names the argument and echoes it.
 */
import { MAX_CARRIED_TOPIC_BYTES } from '../protocol/limits.js';

const LANE_OF: Readonly<Record<string, number>> = { critical: 0, high: 1, normal: 2, low: 3 };

/** The lane index of a priority name (default 'normal'). */
export function laneOf(priority: unknown, what = 'priority'): number {
  if (priority === undefined) return 2;
  const lane = typeof priority === 'string' ? LANE_OF[priority] : undefined;
  if (lane === undefined) {
    throw new TypeError(`${what} must be one of 'critical', 'high', 'normal', 'low', got ${JSON.stringify(priority) ?? String(priority)}`);
  }
  return lane;
}

export function checkTopic(topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new TypeError(`topic must be a non-empty string, got ${typeof topic === 'string' ? "''" : String(topic)}`);
  }
}

/** A topic routed only by wildcard patterns travels in its records as text: bounded (a UTF-16 unit is at most 3 UTF-8 bytes). */
export function checkCarriedTopic(topic: string): void {
  if (topic.length > MAX_CARRIED_TOPIC_BYTES / 3 && Buffer.byteLength(topic) > MAX_CARRIED_TOPIC_BYTES) {
    throw new RangeError(`topic '${topic.slice(0, 48)}…' is ${Buffer.byteLength(topic)} bytes; a topic routed by a wildcard pattern may have at most ${
      MAX_CARRIED_TOPIC_BYTES}`);
  }
}

/**
 * Per-call options: an object whose keys are all in `allowed`. A typo or an
 * option this version does not have (`{ delay: 250 }`) is an error, not
 * silently ignored.
 */
export function checkOptionsObject(what: string, options: unknown, allowed?: readonly string[]): void {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object') throw new TypeError(`${what} must be an object, got ${String(options)}`);
  if (allowed === undefined) return;
  for (const key in options) {
    if (!allowed.includes(key)) throw new TypeError(`${what}: ${key} is not an option (allowed: ${allowed.join(', ')})`);
  }
}

export const PUBLISH_OPTIONS: readonly string[] = ['priority', 'sessionId', 'headers', 'delayMs', 'at'];
export const PUBLISH_ASYNC_OPTIONS: readonly string[] = [...PUBLISH_OPTIONS, 'timeoutMs'];
export const EXECUTE_OPTIONS: readonly string[] = ['priority', 'sessionId', 'headers', 'timeoutMs'];
export const EVENT_HANDLER_OPTIONS: readonly string[] = ['name', 'priority', 'filter'];
export const COMMAND_HANDLER_OPTIONS: readonly string[] = ['name'];
export const STOP_OPTIONS: readonly string[] = ['drain', 'timeoutMs'];

/** `timeoutMs` of publishAsync/execute: Infinity when absent. */
export function checkTimeout(timeoutMs: unknown, what = 'timeoutMs'): number {
  if (timeoutMs === undefined) return Infinity;
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw new RangeError(`${what} must be a number >= 0, got ${String(timeoutMs)}`);
  }
  return timeoutMs;
}
