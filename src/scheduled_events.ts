/**
 * What users see of pending delayed events (`bus.scheduled`): the types
 * only; src/engine/delayed.ts implements them.
 */
import type { Priority } from './protocol/task.js';

/** A pending delayed event as users see it (`bus.scheduled.list()`). @group Scheduling */
export interface ScheduledEventInfo {
  readonly id: string;
  readonly topic: string;
  readonly payload: unknown;
  readonly priority: Priority;
  readonly sessionId: string | undefined;
  readonly headers: Readonly<Record<string, string>> | undefined;
  /** Epoch ms it is due (delivered no earlier). */
  readonly dueAt: number;
  /** Epoch ms of the publish call. */
  readonly publishedAt: number;
}

/** The delayed events pending in a bus: `bus.scheduled`. @group Scheduling */
export interface ScheduledEvents {
  /** Pending ones in due order (`limit` default 1000, at most 10000), optionally of one topic. */
  list(options?: { topic?: string; limit?: number; offset?: number }): ScheduledEventInfo[];
  /** How many are pending (of one topic). */
  count(options?: { topic?: string }): number;
  /** One pending event, or undefined (unknown, or due and published already). */
  get(id: string): ScheduledEventInfo | undefined;
  /** Removes a pending event (with a mark in the schedule file); false if it is not pending. */
  cancel(id: string): boolean;
}
