import {
  RF_CONTINUATION, RF_PAD, REC_BYTES, REC_FLAGS, SLOT_BUSY, SLOT_LANE, SLOT_START, before, claimCountWord, claimPosWord,
  publishCountWord, publishPosWord, slotWord,
} from '../shared/layout.js';
import { recordFlags, recordLength, viewOf, type PendingRecord, type RecordView } from './record.js';

/**
 * The producer side of one priority lane's ring. Only the main thread writes;
 * workers claim spans of records with a CAS on CLAIM_POS (see
 * workers/lane_ring_reader.ts). Space is reclaimed lazily: the writer caches
 * the read limit and recomputes it from the claim cursor and the busy slots'
 * START only when a record would not fit under the cached value.
 */
export class LaneRingWriter {
  readonly lane: number;
  readonly view: RecordView;
  readonly #control: Int32Array;
  readonly #size: number;
  readonly #mask: number;
  readonly #slots: number;
  #pos = 0;
  #limit = 0;
  #count = 0;

  constructor(control: Int32Array, sab: SharedArrayBuffer, lane: number, slots: number) {
    this.lane = lane;
    this.view = viewOf(sab);
    this.#control = control;
    this.#size = sab.byteLength;
    this.#mask = this.#size - 1;
    this.#slots = slots;
  }

  /** Records published and not yet claimed by a worker (or dropped). */
  get waiting(): number {
    return (this.#count - Atomics.load(this.#control, claimCountWord(this.lane))) | 0;
  }

  /** Writes the record and publishes it; false when the ring has no room now. */
  write(record: PendingRecord): boolean {
    const off = this.#reserve(record.recordBytes);
    if (off < 0) return false;
    record.writeTo(this.view, off);
    this.#commit(record.recordBytes);
    return true;
  }

  /** Same as write, for a record already encoded outside the ring. */
  writeEncoded(encoded: Uint8Array): boolean {
    const off = this.#reserve(encoded.byteLength);
    if (off < 0) return false;
    this.view.bytes.set(encoded, off);
    this.#commit(encoded.byteLength);
    return true;
  }

  /**
   * Removes the oldest record nobody has claimed, as drop-oldest needs.
   * Competes with workers through the same CAS they use, so a record is
   * either dropped here or run there, never both. Returns its offset in the
   * ring (still readable until the next write) or -1 if there is none, or if
   * the oldest continues an event already under way (those are never dropped).
   */
  takeOldest(): number {
    const c = this.#control;
    const claimAt = claimPosWord(this.lane);
    for (;;) {
      const claim = Atomics.load(c, claimAt);
      const published = Atomics.load(c, publishPosWord(this.lane));
      let pos = claim;
      let off = pos & this.#mask;
      if (pos === published) return -1;
      if (recordFlags(this.view, off) & RF_PAD) {
        pos = (pos + recordLength(this.view, off)) | 0;
        off = pos & this.#mask;
        if (pos === published) return -1;
      }
      if (recordFlags(this.view, off) & RF_CONTINUATION) return -1;
      const next = (pos + recordLength(this.view, off)) | 0;
      if (Atomics.compareExchange(c, claimAt, claim, next) === claim) {
        Atomics.add(c, claimCountWord(this.lane), 1);
        return off;
      }
    }
  }

  /** Copies (not views) the records in [from, to), a span a slot still gates. */
  copyRange(from: number, to: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let pos = from; before(pos, to); ) {
      const off = pos & this.#mask;
      const len = recordLength(this.view, off);
      if (!(recordFlags(this.view, off) & RF_PAD)) out.push(this.view.u8.slice(off, off + len));
      pos = (pos + len) | 0;
    }
    return out;
  }

  #reserve(bytes: number): number {
    let off = this.#pos & this.#mask;
    const toEnd = this.#size - off;
    const need = bytes > toEnd ? toEnd + bytes : bytes;
    if (need > this.#free()) {
      this.#refreshLimit();
      if (need > this.#free()) return -1;
    }
    if (bytes > toEnd) {
      // Records never wrap: a pad record covers the tail and the record starts at 0.
      this.view.i32[(off + REC_BYTES) >> 2] = toEnd;
      this.view.i32[(off + REC_FLAGS) >> 2] = RF_PAD;
      this.#pos = (this.#pos + toEnd) | 0;
      off = 0;
    }
    return off;
  }

  #commit(bytes: number): void {
    this.#pos = (this.#pos + bytes) | 0;
    Atomics.store(this.#control, publishPosWord(this.lane), this.#pos);
    Atomics.store(this.#control, publishCountWord(this.lane), ++this.#count);
  }

  #free(): number {
    return this.#size - ((this.#pos - this.#limit) | 0);
  }

  #refreshLimit(): void {
    const c = this.#control;
    let limit = Atomics.load(c, claimPosWord(this.lane));
    for (let s = 0; s < this.#slots; s++) {
      if (Atomics.load(c, slotWord(s, SLOT_BUSY)) === 0) continue;
      if (Atomics.load(c, slotWord(s, SLOT_LANE)) !== this.lane) continue;
      const start = Atomics.load(c, slotWord(s, SLOT_START));
      if (before(start, limit)) limit = start;
    }
    this.#limit = limit;
  }
}
