/**
 * Compaction of a dead-letter log, the copying half: the current lines of
 * live entries in the given (sealed) segments, copied byte for byte in log
 * order into a new `<path>.compacting.*` file, fsynced and given the log's mode. The owner
 * then renames it over segment 0 and deletes the other segments
 * (json_lines_sink.ts).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { readLines, Slicer } from './line_reader.js';
import type { Loc, LogIndex } from './log_index.js';
import { bySegment, segmentFile } from './segment_files.js';

/** The owner closed the log while it compacted. */
class Abandoned extends Error {}

/**
 * A new file for a compacted segment 0, named `<path>.compacting.<pid>.<random>`:
 * unique, so an owner that is closing never removes its successor's.
 */
export function compactingFile(path: string): string {
  return `${path}.compacting.${process.pid}.${randomBytes(4).toString('hex')}`;
}

/** An entry copied: where its current line was, and where it is in the compacted file. */
export interface Move {
  id: string;
  from: Loc;
  to: Loc;
}

export interface Compacted {
  tmp: string;
  bytes: number;
  lines: number;
  moves: Move[];
}

/**
 * Writes the compacted file; undefined if `stillWanted()` turned false on the
 * way (the owner closed the log). Entries ended or superseded while it runs
 * are left out, or moved only if still current (LogIndex.compacted checks).
 */
export async function writeCompacted(path: string, index: LogIndex, sealed: readonly number[], mode: number, stillWanted: () => boolean): Promise<Compacted | undefined> {
  const inSealed = new Set(sealed);
  const wanted = bySegment([...index.entries()].filter(([, loc]) => inSealed.has(loc.seg)));
  const tmp = compactingFile(path);
  const fd = openSync(tmp, 'wx', 0o600);
  let done = false;
  try {
    const moves: Move[] = [];
    let lines = 0;
    let bytes = 0;
    const slicer = new Slicer();
    const pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = (): void => {
      const buf = Buffer.concat(pending);
      for (let n = 0; n < buf.length;) n += writeSync(fd, buf, n, buf.length - n);
      pending.length = pendingBytes = 0;
    };
    for (const no of sealed) {
      const want = wanted.get(no);
      if (want === undefined) continue;
      let upToLine = 0;
      for (const n of want.keys()) upToLine = Math.max(upToLine, n);
      await readLines(segmentFile(path, no), { slicer, upToLine }, (line) => {
        if (!stillWanted()) throw new Abandoned();
        const id = want.get(line.no);
        const from = id === undefined ? undefined : index.get(id);
        if (from === undefined || from.seg !== no || from.line !== line.no || line.raw === undefined) return; // ended or superseded meanwhile
        pending.push(Buffer.from(line.raw), Buffer.from('\n'));
        pendingBytes += line.raw.length + 1;
        bytes += line.raw.length + 1;
        moves.push({ id: id!, from, to: { seg: 0, line: ++lines, bytes: from.bytes } });
        if (pendingBytes >= 1 << 20) flush();
      });
      if (!stillWanted()) return undefined;
    }
    flush();
    fsyncSync(fd);
    fchmodSync(fd, mode);
    done = stillWanted();
    return done ? { tmp, bytes, lines, moves } : undefined;
  } catch (err) {
    if (err instanceof Abandoned) return undefined;
    throw err;
  } finally {
    closeSync(fd);
    if (!done) rmSync(tmp, { force: true });
  }
}
