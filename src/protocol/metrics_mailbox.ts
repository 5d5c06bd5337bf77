/**
 * A worker's metrics, published for main in a per-slot SharedArrayBuffer
 * under a seqlock (the writer makes VERSION odd, writes, makes it even; the
 * reader copies the body and retries while VERSION is odd or changed).
 *
 * A report carries only the series that changed since the report main last
 * acknowledged (ACK, written by main when it reads a report), each with its
 * cumulative value since the task began. So a scrape costs what changed, not
 * what exists; and a report is a set of replacements, not increments, so
 * applying one twice, or reading only the latest of several, loses nothing.
 *
 *   Int32 words                       Float64 words from BODY_START (LENGTH of them)
 *   +---------+--------+-----+---+    +------+-----+-----------+------------+----------+
 *   | VERSION | LENGTH | ACK | - |    | task | seq | succeeded | processing | endToEnd |
 *   +---------+--------+-----+---+    +------+-----+-----------+------------+----------+
 *
 *   succeeded:  n, then n × (handler key, count)
 *   processing: n, then n × (handler key, pairs, pairs × (bucket, count))
 *   endToEnd:   n, then n × (topic series key, pairs, pairs × (bucket, count))
 *
 * Binary rather than JSON: a report of 10,000 changed series encodes and
 * decodes as a copy of numbers, several times faster than JSON.stringify/parse.
 * The buffer is growable: it starts at MAILBOX_BYTES and the worker grows it
 * (up to MAX_MAILBOX_BYTES) when a report does not fit.
 */
const VERSION = 0;
const LENGTH = 1;
const ACK = 2;
const BODY_START = 16;
export const MAILBOX_BYTES = 64 << 10;
export const MAX_MAILBOX_BYTES = 64 << 20;

/** One latency series of a report: its key and its non-empty buckets [bucket, count, …] (ns, cumulative for the task). */
export interface ReportedSeries {
  key: number;
  pairs: ArrayLike<number>;
}

/** What changed in a worker's measurements since the report main acknowledged. */
export interface WorkerMetricsReport {
  /** The drain task (unique in the process): its figures are cumulative from its start. */
  task: number;
  /** 1, 2, … within the task. */
  seq: number;
  /** Successful deliveries per handler key (see HandlerTable.metricsKey). */
  succeeded: { key: number; count: number }[];
  /** Processing time per handler attempt, per handler key. */
  processing: ReportedSeries[];
  /** Publish → settled, for events this worker settled, per topic series key (see topic_series.ts). */
  endToEnd: ReportedSeries[];
}

export function newMailbox(): SharedArrayBuffer {
  return new SharedArrayBuffer(MAILBOX_BYTES, { maxByteLength: MAX_MAILBOX_BYTES });
}

function wordsOf(report: WorkerMetricsReport): number {
  let n = 2 + 3 + 2 * report.succeeded.length;
  for (const s of report.processing) n += 2 + s.pairs.length;
  for (const s of report.endToEnd) n += 2 + s.pairs.length;
  return n;
}

/** Writes a report (worker side); false if it does not fit even after growing the buffer (the last report stays). */
export function writeMailbox(sab: SharedArrayBuffer, report: WorkerMetricsReport): boolean {
  const words = wordsOf(report);
  const bytes = BODY_START + 8 * words;
  if (bytes > sab.byteLength) {
    if (!sab.growable || bytes > sab.maxByteLength) return false;
    sab.grow(Math.min(sab.maxByteLength, 2 ** Math.ceil(Math.log2(bytes))));
  }
  const i32 = new Int32Array(sab, 0, 4);
  const body = new Float64Array(sab, BODY_START, words);
  let at = 0;
  const series = (list: ReportedSeries[]): void => {
    body[at++] = list.length;
    for (const { key, pairs } of list) {
      body[at++] = key;
      body[at++] = pairs.length / 2;
      body.set(pairs, at);
      at += pairs.length;
    }
  };
  Atomics.add(i32, VERSION, 1);
  body[at++] = report.task;
  body[at++] = report.seq;
  body[at++] = report.succeeded.length;
  for (const { key, count } of report.succeeded) {
    body[at++] = key;
    body[at++] = count;
  }
  series(report.processing);
  series(report.endToEnd);
  Atomics.store(i32, LENGTH, words);
  Atomics.add(i32, VERSION, 1);
  return true;
}

/** The seq of the last report main read (worker side: what the next report may leave out). */
export function acknowledged(sab: SharedArrayBuffer): number {
  return Atomics.load(new Int32Array(sab, 0, 4), ACK);
}

/** The report last read from each mailbox, returned again while the mailbox has not changed (no decoding). */
const lastRead = new WeakMap<SharedArrayBuffer, { version: number; report: WorkerMetricsReport }>();

/**
 * The latest report (main side), and acknowledges it: the worker's next
 * report leaves out what this one holds and has not changed since, so the
 * caller must apply every report it gets. Undefined if none was written, or
 * if a write stayed in progress through every retry.
 */
export function readMailbox(sab: SharedArrayBuffer): WorkerMetricsReport | undefined {
  const i32 = new Int32Array(sab, 0, 4);
  for (let tries = 0; tries < 100; tries++) {
    const before = Atomics.load(i32, VERSION);
    if (before === 0) return undefined;
    if (before & 1) continue;
    const cached = lastRead.get(sab);
    if (cached?.version === before) return cached.report;
    const words = Atomics.load(i32, LENGTH);
    if (BODY_START + 8 * words > sab.byteLength) continue; // a torn read of LENGTH: retry
    const body = new Float64Array(sab, BODY_START, words).slice();
    if (Atomics.load(i32, VERSION) !== before) continue;
    const report = decode(body);
    lastRead.set(sab, { version: before, report });
    Atomics.store(i32, ACK, report.seq);
    return report;
  }
  return undefined;
}

function decode(body: Float64Array): WorkerMetricsReport {
  let at = 0;
  const series = (): ReportedSeries[] => {
    const list: ReportedSeries[] = [];
    for (let n = body[at++]; n > 0; n--) {
      const key = body[at++];
      const length = 2 * body[at++];
      // A copy, not a view of `body`: main keeps it until the series changes again, and a view would keep all of `body` alive.
      const pairs: number[] = [];
      for (const end = at + length; at < end; at++) pairs.push(body[at]);
      list.push({ key, pairs });
    }
    return list;
  };
  const task = body[at++];
  const seq = body[at++];
  const succeeded: WorkerMetricsReport['succeeded'] = [];
  for (let n = body[at++]; n > 0; n--) {
    succeeded.push({ key: body[at], count: body[at + 1] });
    at += 2;
  }
  const processing = series();
  return { task, seq, succeeded, processing, endToEnd: series() };
}

export function resetMailbox(sab: SharedArrayBuffer): void {
  const i32 = new Int32Array(sab, 0, 4);
  Atomics.store(i32, VERSION, 0);
  Atomics.store(i32, ACK, 0);
  lastRead.delete(sab);
}
