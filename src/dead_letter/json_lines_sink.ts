/**
 * The dead-letter file, as its owning bus (or `ringbus dlq replay`) keeps it:
 * an append-only JSON Lines log (see line_codec.ts) split into segments.
 *
 * Files, all beside `path` and created 0600 (or with the mode `path` already
 * had): `path` is segment 0, `path.1`, `path.2`, … later segments; a line's
 * place in the log is (segment number, line number). Appends go to the
 * newest segment; past `maxFileBytes` the next append starts a new one.
 * Segments are never renamed or rewritten in place, so readers (which take
 * no lock) see a prefix of the log, or notice a deletion and start over.
 * `path.lock` says who owns the log; `path.corrupt` keeps corrupt lines.
 *
 * Only the owner removes data: a sealed segment at the head of the log
 * whose entries are all replayed, cleared or superseded is deleted (segment
 * 0 is replaced by an empty file); and when most of the log is garbage it
 * compacts: the newest segment is sealed, the live lines of every segment are
 * copied into a new `path.compacting.*` file, fsynced, renamed over `path`, and the other
 * old segments deleted, oldest first. A crash at any step leaves a log that
 * loads to the same entries.
 */
import {
  closeSync, constants, existsSync, fchmodSync, fstatSync, fsyncSync, ftruncateSync, openSync, rmSync, renameSync, statSync, truncateSync, unlinkSync, writeSync,
  type Stats,
} from 'node:fs';
import { dirname } from 'node:path';
import type { DeadLetterEntry } from './dead_letter_entry.js';
import type { DeadLetterSink, ScanPick } from './dead_letter_sink.js';
import { FileLock } from './file_lock.js';
import { markLine, parseLine } from './line_codec.js';
import { compactingFile, writeCompacted, type Move } from './compaction.js';
import { lineText, Slicer } from './line_reader.js';
import { LogIndex, type Loc } from './log_index.js';
import { Quarantine } from './quarantine.js';
import {
  bySegment, errnoCode, fileMode, fsyncDir, indexSegment, listSegments, readRange, readWanted, removeStaleCompactions, segmentFile,
} from './segment_files.js';
import type { Logger } from '../logger.js';

export const DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024;
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export interface JsonLinesSinkOptions {
  /** A segment past this size is sealed and the next append starts a new one. @default 64 MiB */
  maxFileBytes?: number;
}

export class JsonLinesDeadLetterSink implements DeadLetterSink {
  readonly path: string;
  readonly #maxFileBytes: number;
  #log: Logger = quiet;
  #index = new LogIndex();
  /** The segment appends go to (created on the first one). */
  #active = 0;
  #fd: number | undefined;
  #mode = 0o600;
  #lock: FileLock | undefined;
  #state: 'new' | 'open' | 'closed' = 'new';
  /** Scans and compactions run one at a time, in order. */
  #exclusive: Promise<void> = Promise.resolve();
  /** While a scan or compaction runs, no segment is deleted (a deferred tidy runs after). */
  #busy = 0;
  #tidyPending = false;
  #compactQueued = false;

  constructor(path: string, options: JsonLinesSinkOptions = {}) {
    this.path = path;
    this.#maxFileBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  }

  get liveCount(): number {
    return this.#index.liveCount;
  }

  has(id: string): boolean {
    return this.#index.has(id);
  }

  async open(log: Logger): Promise<void> {
    if (this.#state === 'open') throw new Error(`dead-letter file ${this.path} is already open`);
    // Also after a close: a start that failed (another owner held the lock, say) can be tried again.
    this.#state = 'new';
    this.#index = new LogIndex();
    this.#active = 0;
    this.#log = log;
    this.#lock = FileLock.acquire(this.path, log);
    try {
      await this.#load();
      this.#state = 'open';
      this.#tidy();
    } catch (err) {
      this.close();
      throw err;
    }
  }

  append(entries: readonly { id: string; line: string }[]): void {
    this.#checkOpen();
    if (entries.length === 0) return;
    let text = '';
    for (const e of entries) text += `${e.line}\n`;
    const first = this.#index.seg(this.#active).lines + 1;
    this.#write(Buffer.from(text), entries.length);
    const seg = this.#active;
    entries.forEach((e, i) => this.#index.add(e.id, { seg, line: first + i, bytes: e.line.length + 1 }));
    this.#afterWrite();
  }

  mark(op: 'replayed' | 'cleared', ids: readonly string[] | 'all'): void {
    this.#checkOpen();
    if (ids !== 'all' && ids.length === 0) return;
    this.#write(Buffer.from(`${markLine(op, ids)}\n`), 1);
    this.#index.end(ids);
    this.#afterWrite();
  }

  async scan(pick: ScanPick, onEntry: (entry: DeadLetterEntry, bytes: number) => void | Promise<void>): Promise<void> {
    await this.#run(async () => {
      const index = this.#index;
      const chosen: [string, Loc][] = [];
      if (pick.ids !== undefined) {
        for (const id of pick.ids) {
          const loc = index.get(id);
          if (loc !== undefined) chosen.push([id, loc]);
        }
        chosen.sort((a, b) => a[1].seg - b[1].seg || a[1].line - b[1].line);
      } else {
        let count = index.liveCount;
        let bytes = index.liveBytes;
        const max = pick.newest ?? { count: Infinity, bytes: Infinity };
        for (const e of index.entries()) {
          if (count > 1 && (count > max.count || bytes > max.bytes)) {
            count--;
            bytes -= e[1].bytes;
          } else chosen.push(e);
        }
      }
      const sizes = new Map(chosen.map(([id, loc]) => [id, loc.bytes]));
      const slicer = new Slicer();
      for (const [no, wanted] of [...bySegment(chosen)].sort((a, b) => a[0] - b[0])) {
        if (this.#state === 'closed') return;
        await readWanted(segmentFile(this.path, no), undefined, wanted, slicer, (entry) => onEntry(entry, sizes.get(entry.id) ?? 0));
      }
    });
  }

  close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#closeFd();
    this.#lock?.release();
  }

  #checkOpen(): void {
    if (this.#state !== 'open') throw new Error(`dead-letter file ${this.path} is ${this.#state === 'new' ? 'not open yet' : 'closed'}`);
  }

  /** Runs `fn` after every scan or compaction queued before it; no segment is deleted meanwhile. */
  #run(fn: () => Promise<void>): Promise<void> {
    const run = this.#exclusive.then(async () => {
      this.#busy++;
      try {
        await fn();
      } finally {
        if (--this.#busy === 0 && this.#tidyPending && this.#state === 'open') {
          this.#tidyPending = false;
          this.#tidy();
        }
      }
    });
    this.#exclusive = run.catch(() => {});
    return run;
  }

  async #load(): Promise<void> {
    const path = this.path;
    const segs = await listSegments(path);
    this.#mode = fileMode(path) ?? (segs.length > 0 ? fileMode(segmentFile(path, segs[segs.length - 1])) : undefined) ?? 0o600;
    await removeStaleCompactions(path); // compactions cut short by a crash
    const slicer = new Slicer();
    const quarantine = new Quarantine(path, this.#log, true);
    let corrupt = false;
    for (let i = 0; i < segs.length; i++) {
      const no = segs[i];
      const file = segmentFile(path, no);
      this.#index.seg(no);
      const res = await indexSegment(file, no, this.#index, slicer, i === 0, (bad) => {
        quarantine.line(bad.file, bad.line.no, bad.line.offset, bad.line.bytes, bad.problem, bad.line.raw);
        corrupt = true;
      });
      if (res.tail === undefined) continue;
      const last = i === segs.length - 1;
      const tail = res.tail.bytes <= 1 << 20 ? readRange(file, res.tail.offset, res.tail.bytes) : undefined;
      const op = tail === undefined ? undefined : parseLine(lineText(tail));
      if (op !== undefined && !('problem' in op)) {
        // A whole line that merely lacks its newline (written by hand): keep it, and end it.
        this.#index.grow(no, res.tail.bytes + 1);
        this.#index.apply(op, no, res.lines + 1, res.tail.bytes + 1);
        if (last) this.#appendRaw(file, '\n');
        else corrupt = true; // rewritten by the compaction below
        continue;
      }
      quarantine.line(file, res.lines + 1, res.tail.offset, res.tail.bytes, 'an incomplete last line (a write cut short)');
      if (last) truncateSync(file, res.end);
      else {
        this.#index.grow(no, res.tail.bytes);
        corrupt = true;
      }
    }
    quarantine.finish(path);
    this.#active = segs.length > 0 ? segs[segs.length - 1] : 0;
    // Compacted at start when most of it is garbage, and so that quarantined lines are not reported again.
    if (corrupt || this.#index.garbageBytes > this.#index.liveBytes) await this.#compact();
  }

  #appendRaw(file: string, text: string): void {
    const fd = openSync(file, 'a');
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
  }

  #openActive(): number {
    if (this.#fd !== undefined) return this.#fd;
    const file = segmentFile(this.path, this.#active);
    try {
      this.#fd = openSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_EXCL, 0o600);
      fchmodSync(this.#fd, this.#mode); // exactly that mode, whatever the umask
      this.#index.seg(this.#active);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      this.#fd = openSync(file, 'a');
    }
    return this.#fd;
  }

  /**
   * The newest segment must be as this owner left it. If another writer
   * appended to it (a torn line would swallow our next one), truncated,
   * replaced or deleted it, later lines go to a new segment instead.
   */
  #checkActive(fd: number): number {
    const file = segmentFile(this.path, this.#active);
    const seg = this.#index.seg(this.#active);
    const own = fstatSync(fd);
    let now: Stats | undefined;
    try {
      now = statSync(file);
    } catch {
      now = undefined;
    }
    if (now !== undefined && now.ino === own.ino && now.dev === own.dev && own.size === seg.bytes) return fd;
    this.#closeFd();
    const was = this.#active;
    this.#active = this.#nextSegment();
    let lost = 0;
    if (now === undefined || now.ino !== own.ino) {
      const gone = [...this.#index.entries()].filter(([, loc]) => loc.seg === was).map(([id]) => id);
      lost = gone.length;
      this.#index.end(gone);
      this.#index.dropSeg(was);
    }
    this.#log.warn({ file, expectedBytes: seg.bytes, bytes: own.size, lost },
      `dead-letter file ${file} was changed by another writer while this bus owns it` +
      `${lost > 0 ? ` (${lost} entries in it are no longer there)` : ''}; new entries go to ${segmentFile(this.path, this.#active)}`);
    return this.#openActive();
  }

  /** Appends whole lines; on failure cuts what was written, so the next line starts on a fresh line. */
  #write(buf: Buffer, lines: number): void {
    const fd = this.#checkActive(this.#openActive());
    const seg = this.#index.seg(this.#active);
    try {
      for (let done = 0; done < buf.length;) done += writeSync(fd, buf, done, buf.length - done);
    } catch (err) {
      try {
        ftruncateSync(fd, seg.bytes);
      } catch {
        this.#active = this.#nextSegment(); // cannot cut the partial line: the next one goes to a fresh segment
      }
      this.#closeFd();
      throw err;
    }
    this.#index.grow(this.#active, buf.length, lines);
  }

  #afterWrite(): void {
    if (this.#index.seg(this.#active).bytes >= this.#maxFileBytes) {
      this.#closeFd();
      this.#mode = fileMode(this.path) ?? this.#mode;
      this.#active = this.#nextSegment();
    }
    this.#tidy();
  }

  #nextSegment(): number {
    return Math.max(this.#active, ...this.#index.segments()) + 1;
  }

  #closeFd(): void {
    if (this.#fd === undefined) return;
    try {
      closeSync(this.#fd);
    } catch {
      // nothing more to do with it
    }
    this.#fd = undefined;
  }

  /** Deletes dead segments at the head of the log; starts a compaction when it is worth it. */
  #tidy(): void {
    if (this.#state !== 'open') return;
    if (this.#busy > 0) {
      this.#tidyPending = true;
      return;
    }
    const index = this.#index;
    try {
      for (const no of index.segments()) {
        const s = index.seg(no);
        if (no === this.#active || s.live > 0) break;
        if (no > 0) {
          unlinkSync(segmentFile(this.path, no));
          index.dropSeg(no);
        } else if (s.bytes > 0) this.#replaceSegment0([], 0, 0, []);
      }
    } catch (err) {
      this.#log.error({ path: this.path, err: (err as Error).message }, `dead-letter file ${this.path}: could not delete a dead segment`);
    }
    const worth = index.liveCount === 0 ? index.totalBytes > 0 : index.garbageBytes > Math.max(index.liveBytes, this.#maxFileBytes);
    if (worth && !this.#compactQueued) {
      this.#compactQueued = true;
      this.#run(async () => {
        this.#compactQueued = false;
        if (this.#state === 'open') await this.#compact();
      }).catch((err: unknown) => {
        this.#log.error({ path: this.path, err: (err as Error).message }, `dead-letter file ${this.path}: compaction failed; the log is unchanged`);
      });
    }
  }

  /** Seals the newest segment and folds every segment's live lines into a new segment 0. */
  async #compact(): Promise<void> {
    const sealed = this.#index.segments();
    this.#closeFd();
    this.#active = this.#nextSegment();
    const done = await writeCompacted(this.path, this.#index, sealed, fileMode(this.path) ?? this.#mode, () => this.#state !== 'closed');
    if (done === undefined) return;
    const removed = sealed.filter((no) => no > 0);
    try {
      this.#replaceSegment0(removed, done.bytes, done.lines, done.moves, done.tmp);
    } catch (err) {
      rmSync(done.tmp, { force: true });
      throw err;
    }
    this.#log.debug({ path: this.path, live: done.lines, bytes: done.bytes, removedSegments: removed.length },
      `dead-letter file ${this.path} compacted: ${done.lines} live entries kept, ${removed.length} other segments removed`);
    if (!existsSync(segmentFile(this.path, this.#active)) && this.#index.segments().every((no) => no === 0 || no === this.#active)) {
      this.#index.dropSeg(this.#active);
      this.#active = 0; // nothing was appended meanwhile: appends go on in the compacted file
    }
  }

  /** Renames `tmp` (or an empty file) over segment 0, then deletes `removed`, oldest first. */
  #replaceSegment0(removed: readonly number[], bytes: number, lines: number, moves: readonly Move[], tmp?: string): void {
    if (tmp === undefined) {
      tmp = compactingFile(this.path);
      const fd = openSync(tmp, 'wx', 0o600);
      try {
        fchmodSync(fd, fileMode(this.path) ?? this.#mode);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    renameSync(tmp, this.path);
    fsyncDir(dirname(this.path));
    for (const no of removed) {
      try {
        unlinkSync(segmentFile(this.path, no));
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
      }
    }
    this.#index.compacted([0, ...removed], bytes, lines, moves);
  }
}
