/**
 * Where dead letters are persisted: the interface the dead-letter file (or
 * another store) implements for the dead-letter queue.
 */
import type { DeadLetterEntry } from './dead_letter_entry.js';
import type { Logger } from '../logger.js';

/** Which live entries a scan reads back, oldest first. */
export interface ScanPick {
  /** Just these (ids not live are skipped). */
  ids?: Iterable<string>;
  /** The newest entries that fit both bounds (at least one). */
  newest?: { count: number; bytes: number };
}

/** Told of entries another process added or ended (a sink shared by a cluster). */
export interface DeadLetterWatcher {
  added(entry: DeadLetterEntry, bytes: number): void;
  removed(id: string): void;
}

/** Where dead letters are kept beyond memory. */
export interface DeadLetterSink {
  readonly path: string;
  /** Takes ownership (the lock), loads what is still dead, quarantines corrupt lines; throws naming the file and line. */
  open(log: Logger): Promise<void>;
  /** Entries still dead (added, neither replayed nor cleared). */
  readonly liveCount: number;
  has(id: string): boolean;
  /** Durably (against a process crash) records new entries, one encoded line each, before the bus acknowledges them; throws if it cannot. */
  append(entries: readonly { id: string; line: string }[]): void;
  /** Marks entries as no longer dead: replayed, or cleared (all of them when `ids` is 'all'); throws if it cannot. */
  mark(op: 'replayed' | 'cleared', ids: readonly string[] | 'all'): void;
  /** Reads live entries back (current versions, oldest first); `bytes` is the entry's size estimate. */
  scan(pick: ScanPick, onEntry: (entry: DeadLetterEntry, bytes: number) => void | Promise<void>): Promise<void>;
  /** Releases the file (and the lock); scans and compaction in progress stop. */
  close(): void;
  /** A sink others write too (a stream): tells `watcher` of their changes from now on. */
  watch?(watcher: DeadLetterWatcher): void;
}
