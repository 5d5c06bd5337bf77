/**
 * A worker's latest metrics, published for main as one JSON document in a
 * per-slot SharedArrayBuffer under a seqlock: the writer makes VERSION odd,
 * writes, makes it even; the reader retries while it is odd or changed.
 *
 *   Int32 words          bytes from BODY_START
 *   +---------+--------+----------------------------------+
 *   | VERSION | LENGTH | utf8 JSON (WorkerMetricsReport)  |
 *   +---------+--------+----------------------------------+
 */
const VERSION = 0;
const LENGTH = 1;
const BODY_START = 8;
export const MAILBOX_BYTES = 4 << 20;

/** What a worker has measured since its task began (cumulative). */
export interface WorkerMetricsReport {
  /** Processing time per handler attempt: handler id → sparse buckets [index, count, …] (ns). */
  processing: Record<number, number[]>;
  /** Publish → settled, for events this worker settled: topic id → sparse buckets (ns). */
  endToEnd: Record<number, number[]>;
  /** Successful deliveries per handler id. */
  succeeded: Record<number, number>;
}

export function writeMailbox(sab: SharedArrayBuffer, report: WorkerMetricsReport): boolean {
  const i32 = new Int32Array(sab, 0, 2);
  const json = JSON.stringify(report);
  const bytes = Buffer.byteLength(json);
  if (BODY_START + bytes > sab.byteLength) return false;
  Atomics.add(i32, VERSION, 1);
  Buffer.from(sab).write(json, BODY_START, 'utf8');
  Atomics.store(i32, LENGTH, bytes);
  Atomics.add(i32, VERSION, 1);
  return true;
}

export function readMailbox(sab: SharedArrayBuffer): WorkerMetricsReport | undefined {
  const i32 = new Int32Array(sab, 0, 2);
  const buf = Buffer.from(sab);
  for (let tries = 0; tries < 100; tries++) {
    const before = Atomics.load(i32, VERSION);
    if (before === 0) return undefined;
    if (before & 1) continue;
    const length = Atomics.load(i32, LENGTH);
    const json = buf.toString('utf8', BODY_START, BODY_START + length);
    if (Atomics.load(i32, VERSION) === before) return JSON.parse(json) as WorkerMetricsReport;
  }
  return undefined;
}

export function resetMailbox(sab: SharedArrayBuffer): void {
  Atomics.store(new Int32Array(sab, 0, 2), VERSION, 0);
}
