/**
 * The lock file beside a dead-letter file, `<path>.lock`: one owner (a bus,
 * or `ringbus dlq replay`) per path. Mode 0600, it holds the owner's pid,
 * host name and a random token, one per line; it is written in full beside
 * it, then hard-linked into place (atomic, and fails if a lock exists). A
 * lock whose process is not running on this host is stale (its owner
 * crashed): it is moved aside and taken over, with a warning.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync, fsyncSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Logger } from '../logger.js';
import { errnoCode } from './segment_files.js';

/** Another process (or another bus of this one) owns the dead-letter file. */
export class LockHeldError extends Error {
  readonly pid: number;
  constructor(message: string, pid: number) {
    super(message);
    this.name = 'LockHeldError';
    this.pid = pid;
  }
}

interface Holder {
  pid: number;
  host: string;
  token: string;
}

function parseHolder(text: string): Holder | undefined {
  const [pid, host, token] = text.split('\n');
  const n = Number(pid);
  return Number.isSafeInteger(n) && n > 0 ? { pid: n, host: host ?? '', token: token ?? '' } : undefined;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM'; // it exists, it is just not ours to signal
  }
}

function readHolder(file: string): { text: string; holder: Holder | undefined } | undefined {
  try {
    const text = readFileSync(file, 'utf8');
    return { text, holder: parseHolder(text) };
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

export class FileLock {
  readonly file: string;
  readonly #token: string;
  #held = true;

  private constructor(file: string, token: string) {
    this.file = file;
    this.#token = token;
  }

  /** Takes `<path>.lock` or throws LockHeldError naming the path (as `what`: the dead-letter file, the schedule file) and the holder's pid. */
  static acquire(path: string, log: Logger, what = 'dead-letter file'): FileLock {
    const file = `${path}.lock`;
    const token = randomBytes(8).toString('hex');
    const content = `${process.pid}\n${hostname()}\n${token}\n`;
    // Written in full beside it first, then hard-linked into place: a lock never appears half-written.
    const tmp = `${file}.${process.pid}-${token}.tmp`;
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      for (let attempt = 0; attempt < 10; attempt++) {
        try {
          linkSync(tmp, file);
          return new FileLock(file, token);
        } catch (err) {
          const code = errnoCode(err);
          if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS') {
            // A file system without hard links: create it exclusively and write it.
            if (FileLock.#createDirectly(file, content)) return new FileLock(file, token);
          } else if (code !== 'EEXIST') throw err;
          FileLock.#takeOverIfStale(path, file, log, what);
        }
      }
    } finally {
      unlinkSync(tmp);
    }
    throw new Error(`could not take the lock file ${file}: it keeps changing`);
  }

  /** O_EXCL create and write; false if a lock exists. */
  static #createDirectly(file: string, content: string): boolean {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o600);
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') return false;
      throw err;
    }
    try {
      writeSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return true;
  }

  /** Moves a stale lock aside (once, atomically) so the next link can win; throws if the holder runs. */
  static #takeOverIfStale(path: string, file: string, log: Logger, what: string): void {
    const seen = readHolder(file);
    if (seen === undefined) return; // released meanwhile: try again
    const h = seen.holder;
    if (h !== undefined) FileLock.#throwIfRunning(path, file, h, what);
    const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      renameSync(file, aside);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    const moved = readHolder(aside);
    if (moved !== undefined && moved.text !== seen.text) {
      // Someone else took it over between our read and our rename: put theirs back.
      try {
        linkSync(aside, file);
      } catch {
        // a third process holds it now: theirs stands
      }
    } else {
      log.warn({ path, lock: file, stalePid: h?.pid }, `${what} ${path}: took over the lock of process ${h?.pid ?? '(unreadable lock)'}, which is not running`);
    }
    try {
      unlinkSync(aside);
    } catch {
      // already gone
    }
  }

  /** Throws LockHeldError if a running owner holds the lock now (without taking it). */
  static assertFree(path: string): void {
    const seen = readHolder(`${path}.lock`);
    if (seen?.holder !== undefined) FileLock.#throwIfRunning(path, `${path}.lock`, seen.holder);
  }

  static #throwIfRunning(path: string, file: string, h: Holder, what = 'dead-letter file'): void {
    if (h.host !== hostname() || isRunning(h.pid)) {
      const who = h.pid === process.pid && h.host === hostname() ? `this process (${h.pid}: another bus in it)` : h.host === hostname() ? `process ${h.pid}` : `process ${h.pid} on host ${h.host}`;
      throw new LockHeldError(`${what} ${path} is in use by ${who} (lock file ${file}); ` +
        `one bus${what === 'dead-letter file' ? ' or `ringbus dlq replay`' : ''} at a time owns it: stop that one first`, h.pid);
    }
  }

  /** Removes the lock file if it is still ours. */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    const now = readHolder(this.file);
    if (now?.holder?.token !== this.#token) return;
    try {
      unlinkSync(this.file);
    } catch {
      // gone already
    }
  }
}
