/**
 * Corrupt lines of a dead-letter file: each is copied to `<path>.corrupt`
 * (mode 0600, never rewritten) before the owner drops it from the log, and
 * reported at warn naming the file and line number: the first ten one by
 * one, the rest in one summary line.
 *
 * `<path>.corrupt` is JSON Lines, one record per quarantined line:
 * `{"file","line","offset","bytes","problem","quarantinedAt", "text" | "base64"}`
 * (`text` when the line is valid UTF-8, else its bytes in `base64`).
 */
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { readRange } from './segment_files.js';
import type { Logger } from '../logger.js';

const WARN_EACH = 10;
/** Multiple of 3, so base64 pieces concatenate into one valid base64 text. */
const COPY_CHUNK = 3 * 349_525;

export class Quarantine {
  readonly file: string;
  readonly #log: Logger;
  readonly #copy: boolean;
  #reported = 0;
  #fd: number | undefined;

  /** `copy` false (readers): warn only; the owner quarantines when it next starts. */
  constructor(path: string, log: Logger, copy: boolean) {
    this.file = `${path}.corrupt`;
    this.#log = log;
    this.#copy = copy;
  }

  get count(): number {
    return this.#reported;
  }

  /**
   * Copies bytes [offset, offset + bytes) of `from` (a line, its newline
   * included, or a torn tail) to the side file and warns. Throws if the copy
   * cannot be written: then the line must stay where it is.
   */
  line(from: string, lineNo: number, offset: number, bytes: number, problem: string, raw?: Buffer): void {
    if (this.#copy) this.#write(from, lineNo, offset, bytes, problem, raw);
    this.#reported++;
    if (this.#reported > WARN_EACH) return;
    const where = this.#copy ? `copied to ${this.file}` : 'left in place';
    this.#log.warn({ file: from, line: lineNo, problem, quarantine: this.#copy ? this.file : undefined },
      `dead-letter file ${from} line ${lineNo} skipped: ${problem} (${where})`);
  }

  /** The summary of what was not reported line by line; closes the side file. */
  finish(path: string): void {
    if (this.#fd !== undefined) {
      fsyncSync(this.#fd);
      closeSync(this.#fd);
      this.#fd = undefined;
    }
    if (this.#reported > WARN_EACH) {
      const more = this.#reported - WARN_EACH;
      this.#log.warn({ path, corrupt: this.#reported, quarantine: this.#copy ? this.file : undefined },
        `dead-letter file ${path}: ${more} more corrupt line${more === 1 ? '' : 's'} skipped (${this.#reported} in all)${this.#copy ? `, copied to ${this.file}` : ''}`);
    }
  }

  #write(from: string, lineNo: number, offset: number, bytes: number, problem: string, raw: Buffer | undefined): void {
    this.#fd ??= openSync(this.file, 'a', 0o600);
    const fd = this.#fd;
    const head = { file: from, line: lineNo, offset, bytes, problem, quarantinedAt: new Date().toISOString() };
    const body = raw ?? (bytes <= COPY_CHUNK ? readRange(from, offset, bytes) : undefined);
    if (body !== undefined) {
      const line = body[body.length - 1] === 0x0a ? body.subarray(0, -1) : body;
      const text = line.toString('utf8');
      const exact = Buffer.byteLength(text) === line.length && Buffer.from(text).equals(line);
      writeSync(fd, `${JSON.stringify(exact ? { ...head, text } : { ...head, base64: line.toString('base64') })}\n`);
      return;
    }
    // A line too long to hold: streamed as base64, piece by piece.
    writeSync(fd, `${JSON.stringify(head).slice(0, -1)},"base64":"`);
    const src = openSync(from, 'r');
    try {
      const buf = Buffer.allocUnsafe(COPY_CHUNK);
      for (let done = 0; done < bytes;) {
        const n = readSync(src, buf, 0, Math.min(COPY_CHUNK, bytes - done), offset + done);
        if (n === 0) break;
        writeSync(fd, buf.subarray(0, n).toString('base64'));
        done += n;
      }
    } finally {
      closeSync(src);
    }
    writeSync(fd, '"}\n');
  }
}
