/**
 * The priority lanes on the main thread's side: one shared ring per lane and,
 * behind each, an overflow list for records that did not fit (still within
 * `queue.capacity`), kept in FIFO order with the ring. Owns writing records,
 * dropping the oldest for drop-oldest, and the lanes' depths.
 */
import { Fifo } from '../fifo.js';
import { LaneRingWriter } from '../protocol/lane_ring.js';
import { LANE_COUNT } from '../protocol/layout.js';
import {
  RF_CONTINUATION, RF_TRACKED, recordFlags, recordLength, recordSeq, recordTopic, standaloneView, type RecordEncoder,
} from '../protocol/record.js';
import type { Priority } from '../protocol/task.js';
import { slotCount } from './shared_memory.js';
import type { EngineParts } from './parts.js';

/** Continuations drop-oldest moves behind, at most, looking for a record it may drop. */
const MAX_SKIPPED = 64;

/** What `takeOldest` took, reused (drop-oldest may drop on every publish at capacity). */
export interface TakenRecord {
  topicId: number;
  seq: number;
  tracked: boolean;
}

export class Lanes {
  readonly #p: EngineParts;
  readonly #writers: LaneRingWriter[];
  readonly #overflow = Array.from({ length: LANE_COUNT }, () => new Fifo<Uint8Array>());
  readonly taken: TakenRecord = { topicId: 0, seq: 0, tracked: false };

  constructor(p: EngineParts) {
    this.#p = p;
    this.#writers = p.memory.lanes.map((sab, lane) => new LaneRingWriter(p.control, sab, lane, slotCount(p.options)));
  }

  /** Writes the encoded record into its lane (or behind the lane's overflow, keeping FIFO order) and signals the workers. */
  write(lane: number, record: RecordEncoder): void {
    const overflow = this.#overflow[lane];
    // Room may have appeared since the last collection: a producer that never yields still drains the overflow,
    // instead of copying every record twice (into the list, later into the ring).
    if (overflow.length > 0) this.#flushLane(lane);
    if (overflow.length > 0 || !this.#writers[lane].write(record)) this.#overflow1(lane, record.toStandalone());
    this.#p.slots.signalWork();
  }

  /** Same for a standalone record; the caller signals (or pumps) once it has written what it has. */
  writeEncoded(lane: number, record: Uint8Array): void {
    const overflow = this.#overflow[lane];
    if (overflow.length > 0 || !this.#writers[lane].writeEncoded(record)) this.#overflow1(lane, record);
  }

  #overflow1(lane: number, record: Uint8Array): void {
    const overflow = this.#overflow[lane];
    // While records wait in an overflow list, main must hear of every batch that frees ring space.
    if (overflow.length === 0) this.#p.slots.wantProgress();
    overflow.push(record);
  }

  get overflowing(): boolean {
    for (const overflow of this.#overflow) if (overflow.length > 0) return true;
    return false;
  }

  /** Moves overflowed records into their rings as room appears. */
  flushOverflow(): void {
    let wrote = false;
    for (let lane = 0; lane < LANE_COUNT; lane++) wrote = this.#flushLane(lane) || wrote;
    if (wrote) this.#p.slots.signalWork();
  }

  /** Moves what fits of one lane's overflow into its ring; true if it moved any. */
  #flushLane(lane: number): boolean {
    const overflow = this.#overflow[lane];
    let wrote = false;
    for (let head = overflow.peek(); head !== undefined; head = overflow.peek()) {
      if (!this.#writers[lane].writeEncoded(head)) break;
      overflow.shift();
      wrote = true;
    }
    return wrote;
  }

  /**
   * Takes the oldest record of a lane that no worker claimed and that does
   * not continue an event under way, into `taken`; false if there is none.
   * Continuations in front of it (retries, later stages) are never dropped:
   * they are taken out and written back behind, keeping their order.
   */
  takeOldest(lane: number): boolean {
    const writer = this.#writers[lane];
    const taken = this.taken;
    let found = false;
    let skipped: Uint8Array[] | undefined;
    // A bounded look past continuations: a lane full of retries costs drop-oldest at most this many moves per drop.
    for (let n = 0, off = writer.takeOldest(true); off >= 0; off = ++n < MAX_SKIPPED ? writer.takeOldest(true) : -1) {
      const flags = recordFlags(writer.view, off);
      if (flags & RF_CONTINUATION) {
        (skipped ??= []).push(writer.view.u8.slice(off, off + recordLength(writer.view, off)));
        continue;
      }
      taken.topicId = recordTopic(writer.view, off);
      taken.seq = recordSeq(writer.view, off);
      taken.tracked = (flags & RF_TRACKED) !== 0;
      found = true;
      break;
    }
    if (!found) {
      const head = this.#overflow[lane].removeFirst((r) => !(recordFlags(standaloneView(r), 0) & RF_CONTINUATION));
      if (head !== undefined) {
        const view = standaloneView(head);
        taken.topicId = recordTopic(view, 0);
        taken.seq = recordSeq(view, 0);
        taken.tracked = (recordFlags(view, 0) & RF_TRACKED) !== 0;
        found = true;
      }
    }
    if (skipped !== undefined) {
      // Behind everything still waiting in the lane: the ring's tail, or its overflow.
      for (const record of skipped) this.writeEncoded(lane, record);
      this.#p.slots.signalWork();
    }
    return found;
  }

  /** Copies of the records in [from, to) of a lane: a span a crashed worker's slot still gates. */
  copyRange(lane: number, from: number, to: number): Uint8Array[] {
    return this.#writers[lane].copyRange(from, to);
  }

  /** Records waiting for a worker, all lanes. */
  backlog(): number {
    let n = 0;
    for (let lane = 0; lane < LANE_COUNT; lane++) n += this.depth(lane);
    return n;
  }

  depth(lane: number): number {
    return this.#writers[lane].waiting + this.#overflow[lane].length;
  }

  depths(): Record<Priority, number> {
    return { critical: this.depth(0), high: this.depth(1), normal: this.depth(2), low: this.depth(3) };
  }

  /** Forgets overflowed records (the bus stopped; they are counted as abandoned). */
  clearOverflow(): void {
    for (const overflow of this.#overflow) overflow.clear();
  }
}
