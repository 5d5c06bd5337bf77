import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DeadLetterEntry } from './dead_letter_entry.js';
import type { DeadLetterSink } from './dead_letter_sink.js';

type Line =
  | { op: 'add'; entry: DeadLetterEntry }
  | { op: 'replayed' | 'cleared'; ids: string[] | 'all' };

/** Binary payloads become `{ "$binary": base64 }` in the file and Uint8Arrays again on load. */
function replacer(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? { $binary: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') } : value;
}
function reviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && typeof (value as { $binary?: unknown }).$binary === 'string' && Object.keys(value).length === 1) {
    return new Uint8Array(Buffer.from((value as { $binary: string }).$binary, 'base64'));
  }
  return value;
}

/**
 * Dead letters in a JSON Lines file: one `add` line per entry, appended (one
 * write per batch) before the bus acknowledges it; replay and clear append
 * marks. `load` folds the file into what is still dead and rewrites it with
 * just that (write to a temporary file, then rename), so it does not grow
 * without bound across restarts. A torn last line (a crash mid-write) is skipped.
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
        line = JSON.parse(raw, reviver) as Line;
      } catch (err) {
        if (i === lines.length - 1 || (i === lines.length - 2 && lines[lines.length - 1] === '')) return; // torn tail
        throw new Error(`dead-letter file ${path} line ${i + 1} is not JSON: ${(err as Error).message}`);
      }
      if (line.op === 'add') live.set(line.entry.id, line.entry);
      else if (line.ids === 'all') live.clear();
      else for (const id of line.ids) live.delete(id);
    });
    return [...live.values()];
  }

  load(): DeadLetterEntry[] {
    if (!existsSync(this.path)) return [];
    const entries = JsonLinesDeadLetterSink.parse(readFileSync(this.path, 'utf8'), this.path);
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, entries.map((entry) => `${JSON.stringify({ op: 'add', entry }, replacer)}\n`).join(''));
    renameSync(tmp, this.path);
    return entries;
  }

  append(entries: readonly DeadLetterEntry[]): void {
    if (entries.length === 0) return;
    mkdirSync(dirname(this.path), { recursive: true });
    appendFileSync(this.path, entries.map((entry) => `${JSON.stringify({ op: 'add', entry }, replacer)}\n`).join(''));
  }

  mark(op: 'replayed' | 'cleared', ids: readonly string[] | 'all'): void {
    if (ids !== 'all' && ids.length === 0) return;
    mkdirSync(dirname(this.path), { recursive: true });
    appendFileSync(this.path, `${JSON.stringify({ op, ids })}\n`);
  }
}
