/**
 * The dashboard over a dead-letter file, with no bus running (`ringbus
 * dashboard --path FILE`): the page lists and shows the file's dead letters,
 * read without a lock (safe while a bus owns the file), re-read at most once
 * a second. A delete takes the file's lock for the moment of its mark (a bus
 * that owns the file refuses it: use that bus's own dashboard); a replay
 * needs the handlers, which only a bus (or `ringbus dlq replay`) has.
 */
import type { DeadLetterEntry } from '../dead_letter/dead_letter_entry.js';
import { readDeadLetterLog } from '../dead_letter/dead_letter_reader.js';
import { JsonLinesDeadLetterSink } from '../dead_letter/json_lines_sink.js';
import type { Logger } from '../logger.js';
import type { DashboardSource } from './dashboard.js';
import type { ResolvedDashboardOptions } from './options.js';
import type { DashboardState, HistoryPoint } from './state.js';

const REREAD_MS = 1000;
const ZERO = Object.freeze({ p50: 0, p95: 0, p99: 0 });

export function deadLetterFileSource(path: string, o: ResolvedDashboardOptions, log: Logger): DashboardSource {
  let entries: DeadLetterEntry[] = [];
  let readAt = -Infinity;
  let reading: Promise<DeadLetterEntry[]> | undefined;
  const timers = new Set<NodeJS.Timeout>();
  const read = (): Promise<DeadLetterEntry[]> => {
    if (performance.now() - readAt < REREAD_MS) return Promise.resolve(entries);
    reading ??= (async () => {
      const fresh: DeadLetterEntry[] = [];
      await readDeadLetterLog(path, log, (e) => void fresh.push(e));
      entries = fresh;
      readAt = performance.now();
      return entries;
    })().finally(() => {
      reading = undefined;
    });
    return reading;
  };
  const state = (): DashboardState => ({
    t: Date.now(), sampleMs: o.sampleMs, rates: { published: 0, processed: 0, failed: 0, retried: 0, deadLettered: 0, filtered: 0 },
    endToEnd: ZERO, processing: ZERO,
    totals: { published: 0, processed: 0, failed: 0, retried: 0, deadLettered: 0, dropped: 0, rejected: 0, filtered: 0, abandoned: 0, scheduled: 0 },
    queue: { size: 0, capacity: 0, highWaterMark: 0, lowWaterMark: 0, backpressure: false, lanes: { critical: 0, high: 0, normal: 0, low: 0 } },
    pool: { activeWorkers: 0, maxThreads: 0, workerCrashes: 0, handlerTimeouts: 0 },
    circuits: [], handlers: [], deadLetters: { size: entries.length }, transport: undefined,
    actions: o.actions && o.token !== undefined, showPayloads: o.showPayloads,
  });
  return {
    state,
    history: (): HistoryPoint[] => [],
    watch(listener) {
      const timer = setInterval(() => {
        void read().then(() => {
          const s = state();
          listener(s, { t: s.t, rates: s.rates, endToEnd: ZERO, processing: ZERO, queueSize: 0 });
        }, () => {});
      }, o.sampleMs);
      timers.add(timer);
      return () => {
        clearInterval(timer);
        timers.delete(timer);
      };
    },
    close() {
      for (const t of timers) clearInterval(t);
      timers.clear();
    },
    deadLetters: {
      list: read,
      get: async (id) => (await read()).find((e) => e.id === id),
      replay: () => Promise.reject(new Error('replay needs the handlers: a bus does it (its own dashboard), or `ringbus dlq replay --path FILE --handlers MODULE`')),
      async delete(id) {
        if ((await read()).find((e) => e.id === id) === undefined) return false;
        // Owned for the moment of the mark: a bus that owns the file refuses (LockHeldError names it).
        const sink = new JsonLinesDeadLetterSink(path);
        await sink.open(log);
        try {
          sink.mark('cleared', [id]); // appended before mark() returns
        } finally {
          sink.close();
        }
        readAt = -Infinity;
        return true;
      },
    },
  };
}
