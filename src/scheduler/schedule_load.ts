/**
 * Loading the schedule file when its owner opens it: every line read in
 * slices that yield (readLines + Slicer), so a file of a million lines never
 * blocks the event loop; what is still pending is what it gives back.
 *
 * A corrupt line (not JSON, not one of ours, too long) is copied to
 * `<path>.corrupt` (JSON Lines: {file, line, offset, bytes, problem,
 * quarantinedAt, text | base64}), warned about naming the file and line
 * (the first ten one by one, the rest in one summary) and skipped; the
 * owner's compaction then drops it. A torn last line (a write cut short by a
 * crash: never acknowledged) is quarantined the same way and cut off, so the
 * next append starts on a fresh line. A file whose first line is not JSON at
 * all is not a schedule file: the open fails and leaves it as it is.
 */
import { closeSync, fsyncSync, openSync, truncateSync, writeSync } from 'node:fs';
import { lineText, readLines, Slicer, type Line } from '../dead_letter/line_reader.js';
import { errnoCode, readRange } from '../dead_letter/segment_files.js';
import type { Logger } from '../logger.js';
import type { ScheduledEvent } from './scheduled_event.js';
import { parseLine, type ScheduleOp } from './schedule_line.js';

/** An entry whose add line is live: where that line is, and its event (undefined: stored by a codec this bus cannot decode). */
export interface LiveEntry {
  offset: number;
  bytes: number;
  event: ScheduledEvent | undefined;
}

export interface Loaded {
  /** Live entries in file order. */
  live: Map<string, LiveEntry>;
  /** Bytes of the file as loaded (a torn tail cut off). */
  size: number;
  corrupt: number;
  /** False when a corrupt line could not be copied aside: it must then stay in the file (no compaction). */
  quarantined: boolean;
  /** Live entries stored by a codec this bus cannot decode (kept in the file, not delivered). */
  foreign: number;
}

const WARN_EACH = 10;
const TAIL_READ_MAX = 1 << 20;

/**
 * Whether a payload stored by codec `stored` can be decoded by the bus's
 * codec `ours`: 'structured' by 'structured'; a custom one by a custom one
 * (its module may have moved), as the dead-letter file judges it.
 */
export const decodable = (stored: string, ours: string | undefined): boolean =>
  stored === 'structured' ? ours === 'structured' : ours !== undefined && ours !== 'structured';

export async function loadScheduleFile(path: string, log: Logger, codec: string | undefined): Promise<Loaded> {
  const out: Loaded = { live: new Map(), size: 0, corrupt: 0, quarantined: true, foreign: 0 };
  const side = `${path}.corrupt`;
  let sideFd: number | undefined;
  const quarantine = (line: number, offset: number, bytes: number, problem: string, raw: Buffer | undefined): void => {
    out.corrupt++;
    let copied = false;
    try {
      sideFd ??= openSync(side, 'a', 0o600);
      const head = { file: path, line, offset, bytes, problem, quarantinedAt: new Date().toISOString() };
      const body = raw ?? (bytes <= TAIL_READ_MAX ? readRange(path, offset, bytes) : undefined);
      const text = body?.toString('utf8');
      const record = body === undefined ? head : Buffer.from(text!).equals(body) ? { ...head, text } : { ...head, base64: body.toString('base64') };
      writeSync(sideFd, `${JSON.stringify(record)}\n`);
      copied = true;
    } catch (err) {
      out.quarantined = false;
      log.error({ path, line, quarantine: side, err: (err as Error).message },
        `schedule file ${path}: could not copy corrupt line ${line} to ${side} (${(err as Error).message}); it stays in the file`);
    }
    if (out.corrupt <= WARN_EACH) {
      log.warn({ path, line, problem, quarantine: copied ? side : undefined },
        `schedule file ${path} line ${line} skipped: ${problem}${copied ? ` (copied to ${side})` : ''}`);
    }
  };
  const apply = (op: ScheduleOp, offset: number, bytes: number): void => {
    if (op.op !== 'add') {
      for (const id of op.ids) out.live.delete(id);
      return;
    }
    const id = op.event.id;
    out.live.delete(id); // a later add supersedes: it takes its place in file order
    const ours = op.codec === undefined || decodable(op.codec, codec);
    out.live.set(id, { offset, bytes, event: ours ? op.event : undefined });
  };

  let seenRecord = false;
  let result;
  try {
    result = await readLines(path, { slicer: new Slicer() }, (line: Line) => {
      if (line.raw === undefined) {
        seenRecord = true;
        quarantine(line.no, line.offset, line.bytes, 'longer than any schedule line', undefined);
        return;
      }
      const text = lineText(line.raw);
      if (text.trim() === '') return;
      const op = parseLine(text);
      if ('problem' in op) {
        if (!seenRecord && op.problem.startsWith('not JSON') && !text.startsWith('{"op":')) {
          throw new Error(`${path} is not a schedule file: line ${line.no} is ${op.problem}; it was left as it is`);
        }
        seenRecord = true;
        quarantine(line.no, line.offset, line.bytes, op.problem, line.raw);
        return;
      }
      seenRecord = true;
      apply(op, line.offset, line.bytes);
    });
  } catch (err) {
    if (sideFd !== undefined) closeSync(sideFd);
    if (errnoCode(err) === 'ENOENT') return out;
    throw err;
  }
  out.size = result.end;
  const tail = result.tail;
  if (tail !== undefined) {
    const bytes = tail.bytes <= TAIL_READ_MAX ? readRange(path, tail.offset, tail.bytes) : undefined;
    const op = bytes === undefined ? undefined : parseLine(lineText(bytes));
    if (op !== undefined && !('problem' in op)) {
      // A whole line that only lacks its newline (written by hand, or the newline was what a crash cut): kept, and ended.
      apply(op, tail.offset, tail.bytes + 1);
      const fd = openSync(path, 'a');
      try {
        writeSync(fd, '\n');
      } finally {
        closeSync(fd);
      }
      out.size = tail.offset + tail.bytes + 1;
    } else {
      quarantine(result.lines + 1, tail.offset, tail.bytes, 'an incomplete last line (a write cut short)', bytes);
      // Cut off even when it could not be copied: our next append would otherwise join it into one corrupt line.
      truncateSync(path, result.end);
    }
  }
  if (sideFd !== undefined) {
    fsyncSync(sideFd);
    closeSync(sideFd);
  }
  if (out.corrupt > WARN_EACH) {
    const more = out.corrupt - WARN_EACH;
    log.warn({ path, corrupt: out.corrupt, quarantine: side },
      `schedule file ${path}: ${more} more corrupt line${more === 1 ? '' : 's'} skipped (${out.corrupt} in all), copied to ${side}`);
  }
  for (const e of out.live.values()) if (e.event === undefined) out.foreign++;
  if (out.foreign > 0) {
    log.warn({ path, entries: out.foreign, codec: codec ?? 'json' },
      `schedule file ${path}: ${out.foreign} pending event${out.foreign === 1 ? ' was' : 's were'} stored by a codec this bus's codec ` +
      `(${codec ?? 'json'}) cannot decode; ${out.foreign === 1 ? 'it stays' : 'they stay'} in the file, not delivered, until a bus with that codec starts`);
  }
  return out;
}
