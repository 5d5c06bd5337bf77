/**
 * One priority lane's ring: the producer side (main thread) and the consumer
 * side (any worker), side by side. Records are laid out as record.ts says.
 *
 *        CLAIM_POS                     PUBLISH_POS
 *            │                              │
 *   ─────────┼──────────────────────────────┼──────────── positions grow →
 *    claimed │ published, not yet claimed  │ free (up to the read limit + size)
 *   (gated by│                              │
 *   busy     │                              │
 *   slots)   │                              │
 *
 * Single producer: only main advances PUBLISH_POS/PUBLISH_COUNT. Many
 * consumers: a worker claims a span of whole records with a CAS on CLAIM_POS
 * (main competes through the same CAS to drop the oldest record). Before
 * claiming, the worker raises its slot's gate (BUSY, LANE, START): the
 * producer never overwrites bytes from the oldest START of a busy slot on, so
 * a worker reads records in place, and main can copy a batch back out after
 * the worker running it died. Space is reclaimed lazily: the writer caches
 * its read limit and recomputes it only when a record would not fit.
 */
import {
  SLOT_BUSY, SLOT_END, SLOT_LANE, SLOT_START, before, claimCountWord, claimPosWord, publishCountWord, publishPosWord,
  slotWord,
} from './layout.js';
import {
  REC_BYTES, REC_FLAGS, RF_CONTINUATION, RF_PAD, recordFlags, recordLength, viewOf, type RecordEncoder, type RecordView,
} from './record.js';

// ------------------------------------------------------------------ writer (main thread)

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
  write(record: RecordEncoder): boolean {
    const bytes = record.recordBytes;
    const off = this.#reserve(bytes);
    if (off < 0) return false;
    record.writeTo(this.view, off);
    this.#commit(bytes);
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
   * either taken here or run there, never both. Returns its offset in the
   * ring (still readable until the next write) or -1 if there is none, or,
   * unless `continuations`, if the oldest continues an event already under
   * way (the caller may take those too, to write them back behind).
   */
  takeOldest(continuations = false): number {
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
      if (!continuations && recordFlags(this.view, off) & RF_CONTINUATION) return -1;
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
      // The worker may have moved its gate to another lane between the two loads: that START is not ours.
      if (Atomics.load(c, slotWord(s, SLOT_LANE)) !== this.lane) continue;
      if (before(start, limit)) limit = start;
    }
    this.#limit = limit;
  }
}

// ------------------------------------------------------------------ reader (workers)

export class LaneRingReader {
  readonly lane: number;
  readonly view: RecordView;
  readonly mask: number;
  /** The span claimed by the last successful `claim`. */
  start = 0;
  end = 0;
  readonly #control: Int32Array;
  readonly #size: number;

  constructor(control: Int32Array, sab: SharedArrayBuffer, lane: number) {
    this.lane = lane;
    this.#control = control;
    this.view = viewOf(sab);
    this.#size = sab.byteLength;
    this.mask = this.#size - 1;
  }

  /** Records published and not claimed yet (a hint: it may be stale by a batch). */
  waiting(): number {
    const c = this.#control;
    return (Atomics.load(c, publishCountWord(this.lane)) - Atomics.load(c, claimCountWord(this.lane))) | 0;
  }

  /**
   * Claims up to `max` records for `slot`; returns how many (0: the lane is
   * empty, and the slot's gate is lowered). On success the slot's gate covers
   * [start, end) until the worker stores BUSY = 0.
   */
  claim(slot: number, max: number): number {
    const c = this.#control;
    const claimAt = claimPosWord(this.lane);
    const i32 = this.view.i32;
    for (;;) {
      const from = Atomics.load(c, claimAt);
      const published = Atomics.load(c, publishPosWord(this.lane));
      if (from === published) {
        Atomics.store(c, slotWord(slot, SLOT_BUSY), 0);
        return 0;
      }
      Atomics.store(c, slotWord(slot, SLOT_LANE), this.lane);
      Atomics.store(c, slotWord(slot, SLOT_START), from);
      Atomics.store(c, slotWord(slot, SLOT_BUSY), 1);
      // Re-check after raising the gate: if nobody moved the cursor, the producer
      // has either seen our START or computed its limit from a cursor <= from.
      if (Atomics.load(c, claimAt) !== from) continue;
      let pos = from;
      let n = 0;
      while (pos !== published && n < max) {
        const off = pos & this.mask;
        const len = i32[(off + REC_BYTES) >> 2];
        if (len <= 0 || len > this.#size) break; // a torn read from a lost race; the CAS below fails
        if (!(i32[(off + REC_FLAGS) >> 2] & RF_PAD)) n++;
        pos = (pos + len) | 0;
      }
      if (pos === from) continue;
      if (Atomics.compareExchange(c, claimAt, from, pos) !== from) continue;
      if (n === 0) continue; // claimed only a pad record
      Atomics.add(c, claimCountWord(this.lane), n);
      Atomics.store(c, slotWord(slot, SLOT_END), pos);
      this.start = from;
      this.end = pos;
      return n;
    }
  }
}
