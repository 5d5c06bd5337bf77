/**
 * The shape of a dead letter: the event as published, the handler, the error
 * and the attempts.
 */
import type { Priority } from '../protocol/task.js';

/** The event as it was published, kept with a dead letter. */
export interface DeadEvent {
  /** The event's id (a replay keeps it, so handlers can deduplicate). */
  id: string;
  topic: string;
  /** As published: a Uint8Array for binary payloads. */
  payload: unknown;
  priority: Priority;
  sessionId: string | undefined;
  /** Epoch ms. */
  publishedAt: number;
}

/** A delivery (event × handler) that exhausted its retries. */
export interface DeadLetterEntry {
  /** Id of this entry (not the event's). */
  id: string;
  /** The event the delivery was for. */
  event: DeadEvent;
  /** The handler's name. */
  handler: string;
  /** The last error's message. */
  error: string;
  /** Attempts made, the first included. */
  attempts: number;
  /** Epoch ms of the first and the last failed attempt. */
  firstAttemptAt: number;
  lastAttemptAt: number;
}
