/**
 * Shared-memory layout between the dispatcher (main thread) and the worker
 * runtime. Both sides import these constants; nothing else may hard-code an
 * offset.
 *
 * Three kinds of SharedArrayBuffer exist per bus:
 *
 * 1. CONTROL (Int32 words). Every word that one thread writes often and
 *    another reads sits on its own 64-byte cache line (16 words) so the
 *    producer and consumers do not false-share.
 *
 *    line  word                      writer        meaning
 *    ----  ------------------------  ------------  --------------------------------------
 *     0    STOP                      main          1 = workers return their task now
 *     0    SLEEPERS                  workers       workers parked in Atomics.wait on WAKE
 *     0    FLUSH_REQUEST             main          bumped (and WAKE notified) when main wants fresh metrics
 *     1    WAKE                      main          bumped + notified when a record lands
 *     1    WAKE_PENDING              main/workers  1 = a wake is on its way; a worker clears it before parking
 *     3    PROGRESS                  workers       bumped + notified after each batch
 *     3    MAIN_WAITING              main          1 while main awaits PROGRESS
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
 *
 *    Positions are byte counters that grow forever and wrap at 2^32; they are
 *    compared with serial-number arithmetic (`(a - b) | 0`), so a ring may be
 *    at most 1 GiB. `pos & mask` is the byte offset inside the ring.
 *
 * 2. LANE RINGS, one per priority lane, power-of-two bytes. Variable-length
 *    records, 8-byte aligned, never split across the end (a PAD record fills
 *    the tail instead):
 *
 *    +0  i32 recordBytes   whole record, multiple of 8
 *    +4  i32 flags         RF_* bits below
 *    +8  i32 topicId       index in the shared registry
 *    +12 i32 attempt       0 on the first try
 *    +16 f64 seq           event number, unique per bus
 *    +24 f64 publishedAt   epoch ms
 *    +32 i32 handlerCount
 *    +36 i32 payloadBytes
 *    +40 i32 sessionBytes
 *    +44 i32 idBytes       > 0: the event id is given (a replayed dead letter keeps its id)
 *    +48 i32[handlerCount] handler ids, in the order they must run
 *        utf8 session id, utf8 event id, then payload bytes (JSON text or raw binary)
 *
 *    A slot's [START, END) gates the producer: bytes from the oldest START of
 *    any busy slot onward are never overwritten, so a worker reads records in
 *    place and the main thread can still copy a batch back out after the
 *    worker running it crashed.
 *
 * 3. OUTCOME RINGS, one per slot, written by the worker holding that slot and
 *    read by main. They carry what success cannot imply: failures, command
 *    replies, completion of tracked records. Because they live in shared
 *    memory, a worker that dies leaves its reports behind.
 *
 *    +0  i32 entryBytes    multiple of 8 (PAD entries fill the tail)
 *    +4  i32 kind          OUT_* below
 *    +8  f64 seq
 *    +16 i32 handlerId     (-1 for whole-record outcomes)
 *    +20 i32 attempt
 *    +24 i32 textBytes     error message, or JSON of a command result
 *    +28 i32 recordBytes   copy of the record (for a retry), 0 if not kept
 *    +32 i32 topicId
 *    +36 i32 (reserved)
 *    +40 text, then record
 */

export const CACHE_LINE_WORDS = 16;

export const STOP = 0;
export const SLEEPERS = 1;
export const FLUSH_REQUEST = 2;
export const WAKE = 1 * CACHE_LINE_WORDS;
export const WAKE_PENDING = WAKE + 1;
export const PROGRESS = 3 * CACHE_LINE_WORDS;
export const MAIN_WAITING = PROGRESS + 1;

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
export const slotWord = (slot: number, field: number): number =>
  (FIRST_SLOT_LINE + slot) * CACHE_LINE_WORDS + field;

export const controlWords = (slots: number): number => (FIRST_SLOT_LINE + slots) * CACHE_LINE_WORDS;

// Record header (byte offsets; divide by 4 for Int32 index, by 8 for Float64 index).
export const REC_BYTES = 0;
export const REC_FLAGS = 4;
export const REC_TOPIC = 8;
export const REC_ATTEMPT = 12;
export const REC_SEQ = 16;
export const REC_PUBLISHED_AT = 24;
export const REC_HANDLER_COUNT = 32;
export const REC_PAYLOAD_BYTES = 36;
export const REC_SESSION_BYTES = 40;
export const REC_ID_BYTES = 44;
export const REC_HEADER_BYTES = 48;

export const RF_PAD = 1 << 0;
/** Payload is raw bytes, handed to handlers as a Uint8Array. */
export const RF_BINARY = 1 << 1;
/** Payload was `undefined` (JSON has no encoding for it). */
export const RF_UNDEFINED = 1 << 2;
/** Main tracks this record: report success explicitly (commands, staged events, retries). */
export const RF_TRACKED = 1 << 3;
/** A command: report the handler's result. */
export const RF_COMMAND = 1 << 4;
/** Part of an event already under way (a retry, a later stage, what a crash left): drop-oldest never drops it. */
export const RF_CONTINUATION = 1 << 5;
export const RF_LANE_SHIFT = 8;

// Outcome entries.
export const OUT_BYTES = 0;
export const OUT_KIND = 4;
export const OUT_SEQ = 8;
export const OUT_HANDLER = 16;
export const OUT_ATTEMPT = 20;
export const OUT_TEXT_BYTES = 24;
export const OUT_RECORD_BYTES = 28;
export const OUT_TOPIC = 32;
export const OUT_HEADER_BYTES = 40;

export const OUT_PAD = 0;
/** A handler threw (or its module failed to load); text is the message. */
export const OUT_FAILED = 1;
/** Every handler of the record ran (or was refused); text is a command's JSON result. */
export const OUT_DONE = 2;
/** An open circuit breaker refused the delivery: a failed attempt, but not a handler failure. */
export const OUT_REFUSED = 3;
/** A delivery succeeded while its breaker was half-open: a trial the breaker counts. */
export const OUT_SUCCEEDED = 4;

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
  /** Per slot: the worker's metrics mailbox (see metrics_mailbox.ts). */
  metrics: SharedArrayBuffer[];
  /** Circuit state per breaker index (Int32: 0 closed, 1 open, 2 half-open), written by main. */
  breakers: SharedArrayBuffer;
  /** file: URL of tsx's ESM API, when workers must import TypeScript handler modules. */
  tsxEsmApi?: string | undefined;
}
