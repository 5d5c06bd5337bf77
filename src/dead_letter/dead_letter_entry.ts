import type { Priority } from '../shared/task.js';

/** The event as it was published, kept with a dead letter. */
export interface DeadEvent {
  id: string;
  topic: string;
  payload: unknown;
  priority: Priority;
  sessionId: string | undefined;
  publishedAt: number;
}

/** A delivery (event × handler) that exhausted its retries. */
export interface DeadLetterEntry {
  /** Id of this entry (not the event's). */
  id: string;
  event: DeadEvent;
  /** The handler's name. */
  handler: string;
  /** The last error's message. */
  error: string;
  attempts: number;
  /** Epoch ms of the first and the last failed attempt. */
  firstAttemptAt: number;
  lastAttemptAt: number;
}
