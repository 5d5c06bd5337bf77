import {
  RF_PAD, REC_BYTES, REC_FLAGS, SLOT_BUSY, SLOT_END, SLOT_LANE, SLOT_START, claimCountWord, claimPosWord,
  publishCountWord, publishPosWord, slotWord,
} from '../src/shared/layout.js';

/**
 * The consumer side of one priority lane's ring (see src/shared/layout.ts).
 * Any worker may claim; a claim is a CAS on CLAIM_POS over a span of whole
 * records. Before claiming, the worker sets its slot's START so the producer
 * cannot reuse the span until the worker clears BUSY after running it.
 */
export class LaneRingReader {
  readonly lane: number;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly u8: Uint8Array;
  readonly bytes: Buffer;
  readonly mask: number;
  /** The span claimed by the last successful `claim`. */
  start = 0;
  end = 0;
  readonly #control: Int32Array;
  readonly #size: number;

  constructor(control: Int32Array, sab: SharedArrayBuffer, lane: number) {
    this.lane = lane;
    this.#control = control;
    this.i32 = new Int32Array(sab);
    this.f64 = new Float64Array(sab);
    this.u8 = new Uint8Array(sab);
    this.bytes = Buffer.from(sab);
    this.#size = sab.byteLength;
    this.mask = this.#size - 1;
  }

  /** Records published and not claimed yet (a hint: it may be stale by a batch). */
  waiting(): number {
    const c = this.#control;
    return (Atomics.load(c, publishCountWord(this.lane)) - Atomics.load(c, claimCountWord(this.lane))) | 0;
  }

  /** Claims up to `max` records for `slot`; returns how many (0: the lane is empty). */
  claim(slot: number, max: number): number {
    const c = this.#control;
    const claimAt = claimPosWord(this.lane);
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
        const len = this.i32[(off + REC_BYTES) >> 2];
        if (len <= 0 || len > this.#size) break; // a torn read from a lost race; the CAS below fails
        if (!(this.i32[(off + REC_FLAGS) >> 2] & RF_PAD)) n++;
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
