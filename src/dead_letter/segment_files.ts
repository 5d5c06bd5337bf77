/**
 * The files of one dead-letter log: segment naming and listing (`<path>`,
 * `<path>.1`, `<path>.2`, … oldest first), and the two streaming passes that
 * both the owning bus and readers make over them: indexing every line, then
 * reading back the current lines of chosen entries.
 */
import { closeSync, fsyncSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { readdir, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { DeadLetterEntry } from './dead_letter_entry.js';
import { parseLine, restoreEntry } from './line_codec.js';
import { lineText, readLines, type Line, type ReadResult, type Slicer } from './line_reader.js';
import type { LogIndex } from './log_index.js';

/** Segment 0 is the configured path itself; segment n > 0 is `<path>.n`. */
export function segmentFile(path: string, no: number): string {
  return no === 0 ? path : `${path}.${no}`;
}

/** Segment numbers present beside `path`, oldest first. */
export async function listSegments(path: string): Promise<number[]> {
  const base = basename(path);
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  const found: number[] = [];
  for (const name of names) {
    if (name === base) found.push(0);
    else if (name.startsWith(`${base}.`) && /^[1-9][0-9]{0,8}$/.test(name.slice(base.length + 1))) found.push(Number(name.slice(base.length + 1)));
  }
  return found.sort((a, b) => a - b);
}

/** Removes `<path>.compacting.*` files: compactions a crash (or a closing owner) left behind. Only the owner calls it. */
export async function removeStaleCompactions(path: string): Promise<void> {
  const base = `${basename(path)}.compacting`;
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return;
  }
  for (const name of names) if (name === base || name.startsWith(`${base}.`)) rmSync(join(dirname(path), name), { force: true });
}

/** Permission bits of a file, or undefined if it does not exist. */
export function fileMode(file: string): number | undefined {
  try {
    return statSync(file).mode & 0o7777;
  } catch {
    return undefined;
  }
}

/** Makes a rename or unlink in `dir` durable (best effort: not every platform can fsync a directory). */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // e.g. EISDIR/EPERM on platforms that cannot open a directory
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Bytes [offset, offset + bytes) of a file (fewer at its end). */
export function readRange(file: string, offset: number, bytes: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    let got = 0;
    while (got < bytes) {
      const n = readSync(fd, buf, got, bytes - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

export const errnoCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException)?.code;

/** A line that is not a dead-letter record. */
export interface BadLine {
  file: string;
  line: Line;
  problem: string;
}

/** Thrown when the oldest segment's first line shows the file is not a dead-letter file at all. */
export class NotADeadLetterFile extends Error {}

/**
 * Pass 1 over one segment: every line into `index`; lines that are not
 * records go to `onBad`. If this is the log's first segment and its first
 * non-blank line is not JSON (and not one of ours, torn), the file is not a
 * dead-letter file: NotADeadLetterFile, before anything else happens.
 */
export async function indexSegment(
  file: string, no: number, index: LogIndex, slicer: Slicer, first: boolean,
  onBad: (bad: BadLine) => void, from?: { offset: number; lines: number },
): Promise<ReadResult> {
  let seenRecord = !first;
  return readLines(file, { slicer, from }, (line) => {
    index.grow(no, line.bytes);
    if (line.raw === undefined) {
      seenRecord = true;
      onBad({ file, line, problem: 'longer than any dead-letter line' });
      return;
    }
    const text = lineText(line.raw);
    if (text.trim() === '') return;
    const op = parseLine(text);
    if ('problem' in op) {
      if (!seenRecord && op.problem.startsWith('not JSON') && !text.startsWith('{"op":')) {
        throw new NotADeadLetterFile(`${file} is not a dead-letter file: line ${line.no} is ${op.problem}; it was left as it is`);
      }
      seenRecord = true;
      onBad({ file, line, problem: op.problem });
      return;
    }
    seenRecord = true;
    index.apply(op, no, line.no, line.bytes);
  });
}

/**
 * Pass 2 over one segment: the entries at the wanted line numbers (line →
 * entry id), in file order. A wanted line that is not that entry's add means
 * the file changed under the reader (FileChanged).
 */
export async function readWanted(
  file: string, handle: FileHandle | undefined, wanted: ReadonlyMap<number, string>, slicer: Slicer,
  onEntry: (entry: DeadLetterEntry, line: Line) => void | Promise<void>,
): Promise<void> {
  let last = 0;
  for (const n of wanted.keys()) last = Math.max(last, n);
  if (last === 0) return;
  const result = await readLines(handle ?? file, { slicer, upToLine: last }, (line) => {
    const id = wanted.get(line.no);
    if (id === undefined || line.raw === undefined) return;
    const op = parseLine(lineText(line.raw));
    if ('problem' in op || op.op !== 'add' || op.id !== id) throw new FileChanged(`${file} line ${line.no} is no longer dead letter ${id}`);
    return onEntry(restoreEntry(op.stored), line);
  });
  if (result.lines < last) throw new FileChanged(`${file} has ${result.lines} lines, fewer than ${last}`);
}

/** The owner rewrote or deleted a segment while a reader read it: the reader starts over. */
export class FileChanged extends Error {}

/** Groups entry locations by segment: segment → (line → id). */
export function bySegment(locs: Iterable<[string, { seg: number; line: number }]>): Map<number, Map<number, string>> {
  const out = new Map<number, Map<number, string>>();
  for (const [id, loc] of locs) {
    let m = out.get(loc.seg);
    if (m === undefined) out.set(loc.seg, (m = new Map()));
    m.set(loc.line, id);
  }
  return out;
}
