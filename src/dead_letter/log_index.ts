/**
 * What a dead-letter log holds, without the entries themselves: for each
 * entry still dead, where its current line is (segment, line number, bytes);
 * for each segment, its size and how much of it is still live. The owner
 * uses it to append, mark, delete dead segments and compact; readers use it
 * to count and to find the lines to print.
 */
import type { Op } from './line_codec.js';

/** Where an entry's current `add` line is. */
export interface Loc {
  readonly seg: number;
  readonly line: number;
  readonly bytes: number;
}

export interface SegmentStats {
  readonly no: number;
  /** Bytes of complete lines (the file's size, once a torn tail is cut). */
  bytes: number;
  /** Complete lines, blank and corrupt ones included. */
  lines: number;
  /** Entries whose current line is in this segment. */
  live: number;
  liveBytes: number;
}

export class LogIndex {
  /**
   * Entry id → slot, in the order of the entries' current lines in the log.
   * A slot's location lives in typed arrays, so a large log's index is one
   * string and one map entry per entry: little for the GC to copy.
   */
  readonly #slots = new Map<string, number>();
  #segOf = new Int32Array(1024);
  #lineOf = new Float64Array(1024);
  #bytesOf = new Float64Array(1024);
  readonly #free: number[] = [];
  #used = 0;
  readonly #segs = new Map<number, SegmentStats>();
  #liveBytes = 0;

  /** Entries still dead. */
  get liveCount(): number {
    return this.#slots.size;
  }

  get liveBytes(): number {
    return this.#liveBytes;
  }

  get totalBytes(): number {
    let total = 0;
    for (const s of this.#segs.values()) total += s.bytes;
    return total;
  }

  /** Bytes no live entry needs: replaced or ended entries, marks, blank and corrupt lines. */
  get garbageBytes(): number {
    return Math.max(0, this.totalBytes - this.#liveBytes);
  }

  has(id: string): boolean {
    return this.#slots.has(id);
  }

  get(id: string): Loc | undefined {
    const slot = this.#slots.get(id);
    return slot === undefined ? undefined : this.#loc(slot);
  }

  /** Live entries and their current lines, in log order. */
  *entries(): IterableIterator<[string, Loc]> {
    for (const [id, slot] of this.#slots) yield [id, this.#loc(slot)];
  }

  /** Segment numbers, oldest first. */
  segments(): number[] {
    return [...this.#segs.keys()].sort((a, b) => a - b);
  }

  seg(no: number): SegmentStats {
    let s = this.#segs.get(no);
    if (s === undefined) this.#segs.set(no, (s = { no, bytes: 0, lines: 0, live: 0, liveBytes: 0 }));
    return s;
  }

  hasSeg(no: number): boolean {
    return this.#segs.has(no);
  }

  /** A line was read or written at the end of segment `no` (whatever it holds). */
  grow(no: number, bytes: number, lines = 1): void {
    const s = this.seg(no);
    s.bytes += bytes;
    s.lines += lines;
  }

  /** Applies a validated line at (seg, line). */
  apply(op: Op, seg: number, line: number, bytes: number): void {
    if (op.op === 'add') this.add(op.id, { seg, line, bytes });
    else this.end(op.ids);
  }

  /** An entry's (new) current line: a later add with the same id supersedes the earlier one. */
  add(id: string, loc: Loc): void {
    let slot = this.#slots.get(id);
    if (slot !== undefined) {
      this.#unlink(slot);
      this.#slots.delete(id); // re-inserted last: the map keeps the order of current lines
    } else slot = this.#alloc();
    this.#slots.set(id, slot);
    this.#place(slot, loc);
  }

  /** Entries replayed or cleared (all of them for 'all'). */
  end(ids: readonly string[] | 'all'): void {
    if (ids === 'all') {
      this.#slots.clear();
      this.#free.length = 0;
      this.#used = 0;
      this.#liveBytes = 0;
      for (const s of this.#segs.values()) s.live = s.liveBytes = 0;
      return;
    }
    for (const id of ids) {
      const slot = this.#slots.get(id);
      if (slot === undefined) continue;
      this.#unlink(slot);
      this.#slots.delete(id);
      this.#free.push(slot);
    }
  }

  /** A segment is gone (deleted, or folded into a compacted one). */
  dropSeg(no: number): void {
    this.#segs.delete(no);
  }

  /**
   * Segments were compacted into segment 0 (`bytes`, `lines`): each moved
   * entry still current at its old line now lives at its new line.
   */
  compacted(removed: readonly number[], bytes: number, lines: number, moves: readonly { id: string; from: Loc; to: Loc }[]): void {
    for (const no of removed) this.#segs.delete(no);
    const s0 = this.seg(0);
    s0.bytes = bytes;
    s0.lines = lines;
    s0.live = s0.liveBytes = 0;
    for (const { id, from, to } of moves) {
      const slot = this.#slots.get(id);
      if (slot === undefined || this.#segOf[slot] !== from.seg || this.#lineOf[slot] !== from.line) continue;
      this.#liveBytes -= this.#bytesOf[slot];
      this.#place(slot, to);
    }
  }

  #loc(slot: number): Loc {
    return { seg: this.#segOf[slot], line: this.#lineOf[slot], bytes: this.#bytesOf[slot] };
  }

  #place(slot: number, loc: Loc): void {
    this.#segOf[slot] = loc.seg;
    this.#lineOf[slot] = loc.line;
    this.#bytesOf[slot] = loc.bytes;
    const s = this.seg(loc.seg);
    s.live++;
    s.liveBytes += loc.bytes;
    this.#liveBytes += loc.bytes;
  }

  #alloc(): number {
    const free = this.#free.pop();
    if (free !== undefined) return free;
    if (this.#used === this.#segOf.length) {
      const grow = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
        const b = make(a.length * 2);
        b.set(a);
        return b;
      };
      this.#segOf = grow(this.#segOf, (n) => new Int32Array(n));
      this.#lineOf = grow(this.#lineOf, (n) => new Float64Array(n));
      this.#bytesOf = grow(this.#bytesOf, (n) => new Float64Array(n));
    }
    return this.#used++;
  }

  #unlink(slot: number): void {
    const s = this.#segs.get(this.#segOf[slot]);
    if (s !== undefined) {
      s.live--;
      s.liveBytes -= this.#bytesOf[slot];
    }
    this.#liveBytes -= this.#bytesOf[slot];
  }
}
