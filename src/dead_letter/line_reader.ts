/**
 * Reads a file's lines in chunks (never the whole file as one string) and
 * yields to the event loop between slices of work, so loading a large
 * dead-letter file never blocks the loop for more than a few milliseconds.
 */
import { open, type FileHandle } from 'node:fs/promises';

/** Work done between two yields to the event loop. */
export const SLICE_MS = 5;
const CHUNK_BYTES = 1 << 20;
/**
 * Longer than any line ringbus writes (a 256 MiB payload is ~342 MiB of
 * base64), shorter than V8's longest string: a longer line is corrupt.
 */
export const MAX_LINE_BYTES = 400 * 1024 * 1024;

/** Yields (setImmediate) once the current slice of work has run its budget (SLICE_MS by default). */
export class Slicer {
  readonly #budgetMs: number;
  #start = performance.now();

  constructor(budgetMs = SLICE_MS) {
    this.#budgetMs = budgetMs;
  }

  /** True when the slice has run its time: then `await slicer.yield()`. */
  due(): boolean {
    return performance.now() - this.#start >= this.#budgetMs;
  }

  async yield(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.#start = performance.now();
  }

  async maybeYield(): Promise<void> {
    if (this.due()) await this.yield();
  }
}

export interface Line {
  /** 1-based line number in the file. */
  no: number;
  /** Byte offset of the line's first byte. */
  offset: number;
  /** Bytes of the line, its newline included. */
  bytes: number;
  /** The line's bytes (no newline), valid only during the callback; undefined for a line over the length limit. */
  raw: Buffer | undefined;
}

export interface ReadOptions {
  /** Where to start: a line boundary and the number of lines before it. @default start of file */
  from?: { offset: number; lines: number };
  /** Stop after this line number. */
  upToLine?: number;
  slicer: Slicer;
  maxLineBytes?: number;
}

export interface ReadResult {
  /** Offset just after the last complete line read. */
  end: number;
  /** Number of the last complete line read. */
  lines: number;
  /** Bytes after the last newline (a line being written, or torn by a crash), if any. */
  tail: { offset: number; bytes: number } | undefined;
  /** The file's inode, to tell a file replaced under the reader. */
  ino: number;
}

/** The text of a line: a leading byte-order mark and a trailing '\r' are tolerated. */
export function lineText(raw: Buffer): string {
  let start = 0;
  let end = raw.length;
  if (end >= 3 && raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf) start = 3;
  if (end > start && raw[end - 1] === 0x0d) end--;
  return raw.toString('utf8', start, end);
}

/**
 * Calls `onLine` for each complete line of `file` (a path, or a handle the
 * caller opened and closes; ENOENT and other errors propagate). A line over
 * `maxLineBytes` is reported with `raw` undefined, never held in memory.
 */
export async function readLines(file: string | FileHandle, o: ReadOptions, onLine: (line: Line) => void | Promise<void>): Promise<ReadResult> {
  const maxLine = o.maxLineBytes ?? MAX_LINE_BYTES;
  const fh = typeof file === 'string' ? await open(file, 'r') : file;
  try {
    const { ino } = await fh.stat();
    const buf = Buffer.allocUnsafe(CHUNK_BYTES);
    let pos = o.from?.offset ?? 0;
    let lineNo = o.from?.lines ?? 0;
    let lineStart = pos;
    let carry: Buffer[] = [];
    let carryBytes = 0;
    let overlong = false;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK_BYTES, pos);
      if (bytesRead === 0) break;
      let s = 0;
      while (s < bytesRead) {
        const nl = buf.indexOf(10, s);
        if (nl === -1 || nl >= bytesRead) {
          const piece = bytesRead - s;
          if (!overlong && carryBytes + piece > maxLine) {
            overlong = true;
            carry = [];
          }
          if (!overlong) carry.push(Buffer.from(buf.subarray(s, bytesRead)));
          carryBytes += piece;
          break;
        }
        const bytes = carryBytes + (nl - s) + 1;
        let raw: Buffer | undefined;
        if (!overlong && bytes - 1 > maxLine) overlong = true;
        if (!overlong) raw = carry.length === 0 ? buf.subarray(s, nl) : Buffer.concat([...carry, buf.subarray(s, nl)]);
        lineNo++;
        const pending = onLine({ no: lineNo, offset: lineStart, bytes, raw });
        if (pending !== undefined) await pending;
        lineStart += bytes;
        carry = [];
        carryBytes = 0;
        overlong = false;
        s = nl + 1;
        if (o.upToLine !== undefined && lineNo >= o.upToLine) return { end: lineStart, lines: lineNo, tail: undefined, ino };
        if (o.slicer.due()) await o.slicer.yield();
      }
      pos += bytesRead;
    }
    return { end: lineStart, lines: lineNo, tail: carryBytes > 0 ? { offset: lineStart, bytes: carryBytes } : undefined, ino };
  } finally {
    if (typeof file === 'string') await fh.close();
  }
}
