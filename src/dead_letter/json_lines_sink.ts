/**
 * The dead-letter file: an append-only JSON Lines log of add/replayed/cleared
 * operations, compacted on load.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DeadLetterEntry } from './dead_letter_entry.js';
import type { DeadLetterSink } from './dead_letter_sink.js';

/**
 * A dead letter as a line. The payload is kept apart with its encoding, so a
 * binary payload (any Uint8Array, Buffers included) comes back as bytes and a
 * JSON payload that merely looks like an encoded one comes back as it was.
 */
type StoredEntry = Omit<DeadLetterEntry, 'event'> & {
  event: Omit<DeadLetterEntry['event'], 'payload'>;
  payload: { json: unknown } | { base64: string } | { undefined: true };
};
type Line = { op: 'add'; entry: StoredEntry } | { op: 'replayed' | 'cleared'; ids: readonly string[] | 'all' };

function store(entry: DeadLetterEntry): StoredEntry {
  const { payload, ...event } = entry.event;
  const stored =
    payload instanceof Uint8Array
      ? { base64: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64') }
      : payload === undefined
        ? { undefined: true as const }
        : { json: payload };
  return { ...entry, event, payload: stored };
}

function restore(stored: StoredEntry): DeadLetterEntry {
  const { payload, event, ...rest } = stored;
  if (payload === undefined || payload === null || typeof payload !== 'object') return stored as unknown as DeadLetterEntry;
  const value = 'base64' in payload ? new Uint8Array(Buffer.from(payload.base64, 'base64')) : 'json' in payload ? payload.json : undefined;
  return { ...rest, event: { ...event, payload: value } };
}

/** Lines as appended: each starts on a fresh line, so a write torn by a crash cannot swallow the next one. */
function addLines(entries: readonly DeadLetterEntry[]): string {
  return entries.map((entry) => `\n${JSON.stringify({ op: 'add', entry: store(entry) } satisfies Line)}`).join('') + '\n';
}

/**
 * Dead letters in a JSON Lines file: one `add` line per entry, appended (one
 * write per batch) before the bus acknowledges it; replay and clear append
 * marks. `load` folds the file into what is still dead and rewrites it with
 * just that (write to a temporary file, then rename), so it does not grow
 * without bound across restarts. A line torn by a crash mid-write (ours:
 * it starts like one of our lines) is skipped; any other line that is not
 * JSON means the path is not a dead-letter file, and loading fails rather
 * than rewrite it. One bus (one process) per file.
 */
export class JsonLinesDeadLetterSink implements DeadLetterSink {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  static parse(text: string, path: string): DeadLetterEntry[] {
    const live = new Map<string, DeadLetterEntry>();
    const lines = text.split('\n');
    lines.forEach((raw, i) => {
      if (raw.trim() === '') return;
      let line: Line;
      try {
        line = JSON.parse(raw) as Line;
      } catch (err) {
        if (raw.startsWith('{"op":')) return; // one of ours, torn by a crash mid-write
        throw new Error(`dead-letter file ${path} line ${i + 1} is not JSON: ${(err as Error).message}`);
      }
      if (line.op === 'add') live.set(line.entry.id, restore(line.entry));
      else if (line.ids === 'all') live.clear();
      else for (const id of line.ids) live.delete(id);
    });
    return [...live.values()];
  }

  load(): DeadLetterEntry[] {
    if (!existsSync(this.path)) return [];
    const entries = JsonLinesDeadLetterSink.parse(readFileSync(this.path, 'utf8'), this.path);
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, addLines(entries));
    renameSync(tmp, this.path);
    return entries;
  }

  append(entries: readonly DeadLetterEntry[]): void {
    if (entries.length === 0) return;
    mkdirSync(dirname(this.path), { recursive: true });
    appendFileSync(this.path, addLines(entries));
  }

  mark(op: 'replayed' | 'cleared', ids: readonly string[] | 'all'): void {
    if (ids !== 'all' && ids.length === 0) return;
    mkdirSync(dirname(this.path), { recursive: true });
    appendFileSync(this.path, `\n${JSON.stringify({ op, ids } satisfies Line)}\n`);
  }
}
