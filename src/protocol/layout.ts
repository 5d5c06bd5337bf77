/**
 * The control block shared between the main thread and the worker runtime,
 * and the list of every SharedArrayBuffer a bus shares. Both sides import
 * these constants; nothing else may hard-code an offset.
 *
 * Eight kinds of SharedArrayBuffer exist per bus (`SharedBusMemory` below):
 *
 *   kind          count        layout in                written by    read by
 *   ------------  -----------  -----------------------  ------------  ------------
 *   control       1            this file                both          both
 *   lanes         LANE_COUNT   record.ts, lane_ring.ts  main          workers
 *   outcomes      1 per slot   outcome_ring.ts          the slot's    main
 *                                                       worker
 *   registry      1            registry.ts              main          workers
 *   metrics       1 per slot   metrics_mailbox.ts       the slot's    main
 *                                                       worker
 *   topic series  1            topic_series.ts          main          workers
 *   breakers      1            breaker_words.ts         main          workers
 *   breaker       1 per slot   breaker_words.ts         the slot's    main
 *   counters                                            worker
 *
 * CONTROL (Int32 words). Every word that one thread writes often and another
 * reads sits on its own 64-byte cache line (16 words), so the producer and
 * the consumers do not false-share.
 *
 *    line  word                      writer        meaning
 *    ----  ------------------------  ------------  --------------------------------------
 *     0    STOP                      main          1 = workers return their task now
 *     0    SLEEPERS                  workers       workers parked in Atomics.wait on WAKE
 *     0    FLUSH_REQUEST             main          bumped (and WAKE notified) when main wants fresh metrics
 *     0    WORKERS_READY             workers       bumped + notified once by each worker when its runtime loaded
 *     0    POOL_GROW                 main          1 = a worker may wake a parked peer; 0 while the producer
 *                                                  needs its core (slot_pool.ts, pool sizing)
 *     1    WAKE                      main          bumped + notified when a record lands
 *     1    WAKE_PENDING              main/workers  1 = a wake is on its way; a worker clears it before parking and on waking
 *     3    PROGRESS                  workers       bumped after each batch; notified as MAIN_WAITING asks
 *     3    MAIN_WAITING              main          0: not waiting; WAIT_REPORTS: wake main for outcomes only;
 *                                                  WAIT_BATCHES: wake main after every batch
 *     4+2L PUBLISH_POS[L]            main          byte position after the last record
 *     4+2L PUBLISH_COUNT[L]          main          records ever published to lane L
 *     5+2L CLAIM_POS[L]              workers/main  byte position after the last claimed record
 *     5+2L CLAIM_COUNT[L]            workers/main  records ever claimed from lane L
 *     12+s SLOT[s], one line per pool slot (a running task holds one slot):
 *          BUSY, LANE, START, END    the batch being run: gates the producer
 *          CURSOR, HANDLER_INDEX     the record and handler running now (crash forensics)
 *          OUT_WRITE, OUT_READ       cursors of the slot's outcome ring
 *          SETTLED, PROCESSED        records settled implicitly / successful deliveries,
 *                                    single-writer counters main sums without contention
 *          FLUSHED                   the last FLUSH_REQUEST this slot's worker answered
 *          EPOCH                     bumped by main when a task on the slot ended: a worker whose
 *                                    task's epoch is older (its task was aborted, and Piscina had
 *                                    not stopped the thread yet) stops before it claims or runs more
 *
 * Positions are byte counters that grow forever and wrap at 2^32; they are
 * compared with serial-number arithmetic (`(a - b) | 0`), so a ring may be at
 * most 1 GiB. `pos & mask` is the byte offset inside the ring.
 */

import type { CodecSpec } from './codec.js';

export const CACHE_LINE_WORDS = 16;

export const STOP = 0;
export const SLEEPERS = 1;
export const FLUSH_REQUEST = 2;
export const WORKERS_READY = 3;
export const POOL_GROW = 4;
export const WAKE = 1 * CACHE_LINE_WORDS;
export const WAKE_PENDING = WAKE + 1;
export const PROGRESS = 3 * CACHE_LINE_WORDS;
export const MAIN_WAITING = PROGRESS + 1;
/**
 * MAIN_WAITING values. With nobody waiting for room, for drain() or for
 * overflowed records, main needs to hear only of outcomes (failures, command
 * results, tracked records): capacity is read from the slots' counters when
 * a publish needs it. Skipping the wake-up after every batch saves main a
 * futex wake and a turn of its event loop per batch, at every rate.
 */
export const WAIT_REPORTS = 1;
export const WAIT_BATCHES = 2;

export const LANE_COUNT = 4;
export const publishPosWord = (lane: number): number => (4 + 2 * lane) * CACHE_LINE_WORDS;
export const publishCountWord = (lane: number): number => publishPosWord(lane) + 1;
export const claimPosWord = (lane: number): number => (5 + 2 * lane) * CACHE_LINE_WORDS;
export const claimCountWord = (lane: number): number => claimPosWord(lane) + 1;

const FIRST_SLOT_LINE = 4 + 2 * LANE_COUNT;
export const SLOT_BUSY = 0;
export const SLOT_LANE = 1;
export const SLOT_START = 2;
export const SLOT_END = 3;
export const SLOT_CURSOR = 4;
export const SLOT_OUT_WRITE = 5;
export const SLOT_OUT_READ = 6;
export const SLOT_SETTLED = 7;
export const SLOT_PROCESSED = 8;
export const SLOT_HANDLER_INDEX = 9;
export const SLOT_FLUSHED = 10;
export const SLOT_EPOCH = 11;
export const slotWord = (slot: number, field: number): number =>
  (FIRST_SLOT_LINE + slot) * CACHE_LINE_WORDS + field;

export const controlWords = (slots: number): number => (FIRST_SLOT_LINE + slots) * CACHE_LINE_WORDS;

export const align8 = (n: number): number => (n + 7) & ~7;

/** `a` is before `b` in wrapped position space. */
export const before = (a: number, b: number): boolean => ((a - b) | 0) < 0;

/** Everything a worker needs to attach to a bus; passed once as Piscina `workerData`. */
export interface SharedBusMemory {
  control: SharedArrayBuffer;
  lanes: SharedArrayBuffer[];
  outcomes: SharedArrayBuffer[];
  registry: SharedArrayBuffer;
  /** Per-bus prefix of event ids, so ids stay unique across restarts. */
  idPrefix: string;
  /** Per slot: the worker's metrics mailbox (see metrics_mailbox.ts). Growable. */
  metrics: SharedArrayBuffer[];
  /** Per topic id: the metrics series workers count its end-to-end times in (see topic_series.ts). Growable. */
  topicSeries: SharedArrayBuffer;
  /** Circuit breakers' states and half-open permits (see breaker_words.ts), written by main. Growable. */
  breakers: SharedArrayBuffer;
  /** Per slot: the worker's success and slow-call counts per breaker (see breaker_words.ts). Growable. */
  breakerCounters: SharedArrayBuffer[];
  /** file: URL of tsx's ESM API, when workers must import TypeScript handler modules. */
  tsxEsmApi?: string | undefined;
  /** Worker middleware (module URL and export), outermost first: wraps every worker handler. Set when the pool starts. */
  workerMiddleware?: { module: string; exportName: string }[];
  /** The payload codec: each worker decodes payloads and encodes command results with it (a module: imported once per worker). */
  codec: CodecSpec;
  /** Codec 'json': a command result JSON would change fails the command (`strictPayloads`). */
  strictPayloads: boolean;
}
