/**
 * The schedule file, as its owning scheduler keeps it: one append-only JSON
 * Lines file at `path` (lines: schedule_line.ts), `path.lock` saying who owns
 * it (FileLock: one owner per path), `path.corrupt` keeping corrupt lines.
 *
 * Group commit: appends queued while a write is in flight (or in the same
 * tick) go out together, then one fdatasync; an add's promise resolves only
 * after that, so an acknowledged add is on disk. Marks (done, cancelled)
 * ride along with the next write; nobody waits for them, since losing one
 * only delivers an event again (at-least-once).
 *
 * When most of the file is garbage (added lines since marked, corrupt lines),
 * it is compacted: the live add lines are copied byte for byte, in file
 * order, into `path.compacting.<pid>.<random>`, fsynced, renamed over `path`
 * and the directory fsynced. Writes wait meanwhile (they go to the new file),
 * so a crash at any step leaves either the old file or the new one, each
 * loading to the same pending events. Nothing is rewritten in place (only
 * bytes of a write that failed, never acknowledged, are cut off), so a
 * reader without the lock sees a prefix of the log, or the whole old file
 * if it opened it before a rename: it never misses an acknowledged event.
 */
import { rm, rename, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { compactingFile } from '../dead_letter/compaction.js';
import { FileLock, LockHeldError } from '../dead_letter/file_lock.js';
import { readLines, Slicer, lineText } from '../dead_letter/line_reader.js';
import { fileMode, fsyncDir, removeStaleCompactions } from '../dead_letter/segment_files.js';
import type { Logger } from '../logger.js';
import type { ScheduledEvent } from './scheduled_event.js';
import { addLine, markLine, parseLine, type MarkOp } from './schedule_line.js';
import { loadScheduleFile } from './schedule_load.js';

export const DEFAULT_COMPACT_MIN_BYTES = 4 * 1024 * 1024;
/** Bytes per write call: a large batch goes out in pieces (awaited, so the loop runs between them), then one fsync. */
const WRITE_CHUNK = 1 << 20;
const IDS_PER_MARK = 1000;

export interface ScheduleFileOptions {
  log: Logger;
  /** The bus codec's name ('structured' or '<module URL>#<export>'), stored with RF_ENCODED payloads; undefined for 'json'. */
  codec: string | undefined;
  /** Compaction runs when garbage exceeds both the live bytes and this. @default 4 MiB */
  compactMinBytes?: number;
}

type Queued =
  | { kind: 'add'; id: string; buf: Buffer; resolve: () => void; reject: (err: Error) => void }
  | { kind: 'mark'; op: MarkOp; id: string };

interface Loc {
  offset: number;
  bytes: number;
}

/** The owner closed the file while it compacted. */
class Abandoned extends Error {}

export class ScheduleFile {
  readonly path: string;
  readonly #o: ScheduleFileOptions;
  readonly #compactMinBytes: number;
  #state: 'new' | 'open' | 'closing' | 'closed' = 'new';
  #lock: FileLock | undefined;
  #fh: FileHandle | undefined;
  /** Bytes of the file (what this owner wrote after what it loaded). */
  #size = 0;
  /** A write failed and could not be cut back: the next one starts with a newline, so the torn piece stays a line of its own. */
  #torn = false;
  readonly #live = new Map<string, Loc>();
  #liveBytes = 0;
  #queue: Queued[] = [];
  /** Marks whose write failed: retried with the next write, and at close. */
  #retryMarks: Queued[] = [];
  #writer: Promise<void> | undefined;
  #compactWanted = false;
  /** After a compaction failed, the next waits until there is this much garbage. */
  #compactAfterGarbage = 0;
  /** Why compaction is off for this owner (corrupt lines that could not be copied aside must stay). */
  #noCompact: string | undefined;

  constructor(path: string, options: ScheduleFileOptions) {
    this.path = path;
    this.#o = options;
    this.#compactMinBytes = options.compactMinBytes ?? DEFAULT_COMPACT_MIN_BYTES;
  }

  /** Bytes of the file, and of its live add lines. */
  get stats(): { bytes: number; liveBytes: number; live: number } {
    return { bytes: this.#size, liveBytes: this.#liveBytes, live: this.#live.size };
  }

  /**
   * Takes the lock, loads the file (in slices) and opens it for appends;
   * resolves the pending events, in file order. Writes queued before are
   * appended after what it holds. A failed open can be tried again.
   */
  async open(): Promise<ScheduledEvent[]> {
    if (this.#state !== 'new') throw new Error(`schedule file ${this.path} is ${this.#state === 'open' ? 'already open' : 'closed'}`);
    this.#lock = this.#acquire();
    try {
      await removeStaleCompactions(this.path); // compactions a crash cut short
      const loaded = await loadScheduleFile(this.path, this.#o.log, this.#o.codec);
      this.#fh = await open(this.path, 'a', 0o600);
      fsyncDir(dirname(this.path)); // a file just created must not vanish in a crash with what is fsynced in it
      this.#size = loaded.size;
      this.#live.clear();
      this.#liveBytes = 0;
      const events: ScheduledEvent[] = [];
      for (const [id, e] of loaded.live) {
        this.#live.set(id, { offset: e.offset, bytes: e.bytes });
        this.#liveBytes += e.bytes;
        if (e.event !== undefined) events.push(e.event);
      }
      if (!loaded.quarantined) this.#noCompact = `corrupt lines could not be copied to ${this.path}.corrupt`;
      this.#state = 'open';
      // Compacted at start when most of it is garbage, and so that corrupt lines are not reported again.
      if (loaded.corrupt > 0 || this.#worthCompacting()) this.#compactWanted = this.#noCompact === undefined;
      this.#kick();
      return events;
    } catch (err) {
      await this.#fh?.close().catch(() => {});
      this.#fh = undefined;
      this.#lock.release();
      this.#lock = undefined;
      throw err;
    }
  }

  /** Appends an add line; resolves once it is fsynced, rejects with the write error (naming the path). */
  add(e: ScheduledEvent): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') return Promise.reject(new Error(`schedule file ${this.path} is closed: event ${e.id} was not written`));
    const buf = Buffer.from(`${addLine(e, this.#o.codec)}\n`);
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ kind: 'add', id: e.id, buf, resolve, reject });
      this.#kick();
    });
  }

  /** Appends a mark with the next write (batched with others). */
  mark(op: MarkOp, id: string): void {
    if (this.#state === 'closed') return;
    this.#queue.push({ kind: 'mark', op, id });
    this.#kick();
  }

  /** Writes what is queued (fsynced), closes the file and releases the lock. Adds queued before an open are rejected. */
  async close(): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'closing') return;
    if (this.#state === 'new') {
      this.#state = 'closed';
      this.#rejectAdds(this.#queue.splice(0), new Error(`schedule file ${this.path} was closed before it was opened: not written`));
      return;
    }
    this.#state = 'closing';
    while (this.#writer !== undefined) await this.#writer;
    // What is left, and what comes meanwhile; marks that failed before get one more try.
    for (let last = [...this.#retryMarks.splice(0), ...this.#queue.splice(0)]; last.length > 0; last = this.#queue.splice(0)) {
      await this.#writeBatch(last);
    }
    if (this.#retryMarks.length > 0) {
      const n = this.#retryMarks.length;
      this.#o.log.error({ path: this.path, marks: n },
        `schedule file ${this.path}: ${n} done/cancelled mark${n === 1 ? '' : 's'} could not be written; those events will be delivered again by the next bus on this file`);
    }
    this.#state = 'closed';
    await this.#fh?.close().catch(() => {});
    this.#fh = undefined;
    this.#lock?.release();
    this.#lock = undefined;
  }

  #acquire(): FileLock {
    try {
      return FileLock.acquire(this.path, this.#o.log, 'schedule file');
    } catch (err) {
      if (err instanceof LockHeldError) throw err;
      throw new Error(`schedule file ${this.path}: could not take its lock file ${this.path}.lock (${(err as Error).message})`, { cause: err });
    }
  }

  /** Starts the writer (after the current tick, so what this tick queues goes in one write) unless it runs; close() writes the rest itself. */
  #kick(): void {
    if (this.#writer !== undefined || this.#state !== 'open') return;
    if (this.#queue.length === 0 && !this.#compactWanted) return;
    this.#writer = new Promise<void>((resolve) => queueMicrotask(resolve)).then(() => this.#drain()).finally(() => {
      this.#writer = undefined;
      if (this.#queue.length > 0 && this.#state === 'open') this.#kick();
    });
  }

  async #drain(): Promise<void> {
    for (;;) {
      if (this.#compactWanted && this.#state === 'open') {
        this.#compactWanted = false;
        await this.#compactOrSay();
        continue;
      }
      if (this.#queue.length === 0 || this.#state === 'closed') return;
      const batch = this.#retryMarks.length > 0 ? [...this.#retryMarks.splice(0), ...this.#queue] : this.#queue;
      this.#queue = [];
      await this.#writeBatch(batch);
    }
  }

  /** One group commit: the lines in order (consecutive marks of one kind in one line), one fdatasync, then the index. */
  async #writeBatch(batch: Queued[]): Promise<void> {
    const pieces: Buffer[] = [];
    const placed: { q: Queued; ids?: string[]; loc: Loc }[] = [];
    let at = this.#size;
    if (this.#torn) {
      pieces.push(Buffer.from('\n'));
      at++;
    }
    for (let i = 0; i < batch.length;) {
      const q = batch[i];
      if (q.kind === 'add') {
        pieces.push(q.buf);
        placed.push({ q, loc: { offset: at, bytes: q.buf.length } });
        at += q.buf.length;
        i++;
        continue;
      }
      const ids: string[] = [];
      for (; i < batch.length && ids.length < IDS_PER_MARK; i++) {
        const m = batch[i];
        if (m.kind !== 'mark' || m.op !== q.op) break;
        ids.push(m.id);
      }
      const buf = Buffer.from(`${markLine(q.op, ids)}\n`);
      pieces.push(buf);
      placed.push({ q, ids, loc: { offset: at, bytes: buf.length } });
      at += buf.length;
    }
    const fh = this.#fh!;
    let written = false;
    try {
      for (let p = 0; p < pieces.length;) {
        // Chunks of about WRITE_CHUNK bytes: a large batch never builds one huge buffer in one go.
        const chunk: Buffer[] = [];
        let bytes = 0;
        for (; p < pieces.length && (bytes === 0 || bytes + pieces[p].length <= WRITE_CHUNK); p++) {
          chunk.push(pieces[p]);
          bytes += pieces[p].length;
        }
        const buf = chunk.length === 1 ? chunk[0] : Buffer.concat(chunk, bytes);
        for (let done = 0; done < buf.length;) done += (await fh.write(buf, done, buf.length - done)).bytesWritten;
      }
      written = true;
      await fh.datasync();
    } catch (err) {
      await this.#failed(batch, placed.length, written, at, err as Error);
      return;
    }
    this.#torn = false;
    this.#size = at;
    this.#apply(placed);
    for (const p of placed) if (p.q.kind === 'add') p.q.resolve();
    if (this.#worthCompacting()) this.#compactWanted = true;
  }

  #apply(placed: readonly { q: Queued; ids?: string[]; loc: Loc }[]): void {
    for (const { q, ids, loc } of placed) {
      if (q.kind === 'add') {
        const old = this.#live.get(q.id);
        if (old !== undefined) this.#liveBytes -= old.bytes;
        this.#live.set(q.id, loc);
        this.#liveBytes += loc.bytes;
        continue;
      }
      for (const id of ids!) {
        const old = this.#live.get(id);
        if (old === undefined) continue;
        this.#live.delete(id);
        this.#liveBytes -= old.bytes;
      }
    }
  }

  /**
   * A write or fsync failed. Adds are rejected (not durable); marks are kept
   * for the next write. A write that failed is cut back off the file; if
   * that fails too, the next write starts on a fresh line.
   */
  async #failed(batch: Queued[], lines: number, written: boolean, end: number, err: Error): Promise<void> {
    const message = `schedule file ${this.path}: could not ${written ? 'fsync' : 'write'} ${lines} line${lines === 1 ? '' : 's'} (${err.message})`;
    this.#o.log.error({ path: this.path, err: err.message }, message);
    if (written) {
      // The lines may or may not be on disk: counted as there, so later offsets stay right.
      this.#size = end;
      this.#torn = false;
    } else {
      try {
        await this.#fh!.truncate(this.#size);
        this.#torn = false;
      } catch {
        this.#torn = true;
        try {
          this.#size = (await this.#fh!.stat()).size;
        } catch {
          // Offsets are unknown now: a compaction would check every line and fail, so none is tried.
          this.#noCompact = 'a failed write left the file size unknown';
        }
      }
    }
    this.#retryMarks.push(...batch.filter((q) => q.kind === 'mark'));
    this.#rejectAdds(batch, new Error(`${message}: not durable`, { cause: err }));
  }

  #rejectAdds(batch: readonly Queued[], err: Error): void {
    for (const q of batch) if (q.kind === 'add') q.reject(err);
  }

  #worthCompacting(): boolean {
    if (this.#noCompact !== undefined) return false;
    const garbage = this.#size - this.#liveBytes;
    return garbage > this.#liveBytes && garbage >= Math.max(this.#compactMinBytes, this.#compactAfterGarbage);
  }

  async #compactOrSay(): Promise<void> {
    try {
      await this.#compact();
    } catch (err) {
      if (err instanceof Abandoned) return;
      this.#compactAfterGarbage = 2 * (this.#size - this.#liveBytes);
      this.#o.log.error({ path: this.path, err: (err as Error).message },
        `schedule file ${this.path}: compaction failed (${(err as Error).message}); the file is unchanged, and tried again once its garbage doubles`);
    }
  }

  /** Copies the live add lines into a new file and renames it over the old one. Nothing is appended meanwhile. */
  async #compact(): Promise<void> {
    const path = this.path;
    const wanted = new Map<number, string>();
    for (const [id, loc] of this.#live) wanted.set(loc.offset, id);
    const tmp = compactingFile(path);
    const out = await open(tmp, 'wx', 0o600);
    const moved = new Map<string, Loc>();
    let size = 0;
    let renamed = false;
    try {
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const flush = async (): Promise<void> => {
        const buf = Buffer.concat(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
        for (let done = 0; done < buf.length;) done += (await out.write(buf, done, buf.length - done)).bytesWritten;
      };
      const newline = Buffer.from('\n');
      await readLines(path, { slicer: new Slicer() }, (line) => {
        if (this.#state !== 'open') throw new Abandoned();
        const id = wanted.get(line.offset);
        if (id === undefined) return;
        if (line.raw === undefined || !isAddOf(line.raw, id)) throw new Error(`line ${line.no} at byte ${line.offset} is no longer the add of event ${id}: the file was changed by another writer`);
        pending.push(Buffer.from(line.raw), newline);
        pendingBytes += line.raw.length + 1;
        moved.set(id, { offset: size, bytes: line.raw.length + 1 });
        size += line.raw.length + 1;
        return pendingBytes >= WRITE_CHUNK ? flush() : undefined;
      });
      if (this.#state !== 'open') throw new Abandoned();
      if (moved.size !== this.#live.size) throw new Error(`${this.#live.size - moved.size} live add lines were not found where they were written`);
      await flush();
      await out.sync();
      await out.chmod(fileMode(path) ?? 0o600);
      await out.close();
      await rename(tmp, path);
      renamed = true;
    } finally {
      if (!renamed) {
        await out.close().catch(() => {});
        await rm(tmp, { force: true });
      }
    }
    fsyncDir(dirname(path));
    const before = this.#size;
    // The old handle appends to the file that is gone now.
    await this.#fh!.close().catch(() => {});
    this.#fh = await open(path, 'a');
    this.#size = size;
    this.#torn = false;
    for (const [id, loc] of moved) this.#live.set(id, loc);
    this.#o.log.debug({ path, live: moved.size, bytes: size, before },
      `schedule file ${path} compacted: ${moved.size} pending events kept, ${before} bytes down to ${size}`);
  }
}

/** Whether a raw line is the add of event `id`: the prefix addLine writes, or (a line written by hand) its parse. */
function isAddOf(raw: Buffer, id: string): boolean {
  const prefix = `{"op":"add","id":${JSON.stringify(id)},`;
  if (raw.length > prefix.length && raw.toString('utf8', 0, Buffer.byteLength(prefix)) === prefix) return true;
  const op = parseLine(lineText(raw));
  return !('problem' in op) && op.op === 'add' && op.event.id === id;
}
