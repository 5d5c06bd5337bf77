/**
 * Where dead letters are persisted: the interface a file (or other store)
 * implements.
 */
import type { DeadLetterEntry } from './dead_letter_entry.js';

/** Where dead letters are kept beyond memory. */
export interface DeadLetterSink {
  /** Entries still dead (added, neither replayed nor cleared), oldest first. */
  load(): DeadLetterEntry[];
  /** Durably records new entries before the bus acknowledges them. */
  append(entries: readonly DeadLetterEntry[]): void;
  /** Marks entries as no longer dead: replayed, or cleared (all of them when `ids` is 'all'). */
  mark(op: 'replayed' | 'cleared', ids: readonly string[] | 'all'): void;
}
