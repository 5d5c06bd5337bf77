/**
 * Reading a dead-letter log without owning it (`ringbus dlq list|count`, any
 * other process): no lock taken, nothing written, corrupt lines only warned
 * about (the owner quarantines them when it next starts).
 *
 * The view is consistent while a bus writes: segments are read oldest first,
 * each up to its end at that moment, then the directory is listed again and
 * newer segments are read too (the last one finished first), so what is read
 * is a prefix of the log. If the owner deleted or replaced a segment
 * meanwhile (ENOENT, another inode), the read starts over.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { DeadLetterEntry } from './dead_letter_entry.js';
import { Slicer, type ReadResult } from './line_reader.js';
import { LogIndex } from './log_index.js';
import { Quarantine } from './quarantine.js';
import { bySegment, errnoCode, FileChanged, indexSegment, listSegments, readWanted, segmentFile } from './segment_files.js';
import type { Logger } from '../logger.js';

const ATTEMPTS = 20;

/** No segment of the log exists. */
export class DeadLetterFileMissing extends Error {}

export interface LogSummary {
  /** Entries still dead. */
  live: number;
  /** Lines that are not dead-letter records. */
  corrupt: number;
  segments: number;
  bytes: number;
}

/**
 * Counts the entries still dead in the log at `path` and, with `onEntry`,
 * reads each one back (its current version, oldest first).
 */
export async function readDeadLetterLog(path: string, log: Logger, onEntry?: (entry: DeadLetterEntry) => void | Promise<void>): Promise<LogSummary> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await readOnce(path, log, onEntry);
    } catch (err) {
      const changed = err instanceof FileChanged || errnoCode(err) === 'ENOENT';
      if (!changed || err instanceof DeadLetterFileMissing) throw err;
      if (attempt >= ATTEMPTS) throw new Error(`dead-letter file ${path} kept changing while it was read (${ATTEMPTS} attempts)`);
    }
  }
}

async function readOnce(path: string, log: Logger, onEntry?: (entry: DeadLetterEntry) => void | Promise<void>): Promise<LogSummary> {
  const segs = await listSegments(path);
  if (segs.length === 0) throw new DeadLetterFileMissing(`dead-letter file ${path} does not exist`);
  const index = new LogIndex();
  const slicer = new Slicer();
  const quarantine = new Quarantine(path, log, false);
  const seen = new Map<number, ReadResult>();
  const warnBad = (file: string, r: ReadResult): void => {
    if (r.tail !== undefined) quarantine.line(file, r.lines + 1, r.tail.offset, r.tail.bytes, 'an incomplete last line (a write cut short)');
  };
  for (let k = 0; ;) {
    for (; k < segs.length; k++) {
      const no = segs[k];
      const file = segmentFile(path, no);
      const prev = seen.get(no);
      const r = await indexSegment(file, no, index, slicer, k === 0 && prev === undefined,
        (bad) => quarantine.line(bad.file, bad.line.no, bad.line.offset, bad.line.bytes, bad.problem),
        prev === undefined ? undefined : { offset: prev.end, lines: prev.lines });
      if (prev !== undefined && prev.ino !== r.ino) throw new FileChanged(`${file} was replaced while it was read`);
      seen.set(no, r);
      if (k < segs.length - 1) warnBad(file, r);
    }
    const last = segs[segs.length - 1];
    const newer = (await listSegments(path)).filter((no) => no > last);
    if (newer.length === 0) break;
    k = segs.length - 1; // the last one was sealed meanwhile: read the rest of it first
    segs.push(...newer);
  }
  quarantine.finish(path);

  if (onEntry !== undefined && index.liveCount > 0) {
    // Every segment needed is opened first: once open, nothing the owner does changes what they hold.
    const groups = [...bySegment(index.entries())].sort((a, b) => a[0] - b[0]);
    const handles = new Map<number, FileHandle>();
    try {
      for (const [no] of groups) {
        const fh = await open(segmentFile(path, no), 'r');
        handles.set(no, fh);
        if ((await fh.stat()).ino !== seen.get(no)?.ino) throw new FileChanged(`${segmentFile(path, no)} was replaced`);
      }
      for (const [no, wanted] of groups) await readWanted(segmentFile(path, no), handles.get(no), wanted, slicer, (e) => onEntry(e));
    } finally {
      await Promise.all([...handles.values()].map((fh) => fh.close()));
    }
  }
  return { live: index.liveCount, corrupt: quarantine.count, segments: segs.length, bytes: index.totalBytes };
}
