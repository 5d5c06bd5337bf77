/**
 * Model-based and property tests of the shared-memory rings and the small
 * protocol pieces around them (src/protocol/): lane rings (one writer, many
 * readers, slot gates, PAD records, drop-oldest), outcome rings, the shared
 * registry, the metrics mailbox, error texts and the lane picker.
 *
 * The lane-ring tests run every operation against a model (a FIFO of the
 * records and PAD records between the claim and publish positions, and each
 * slot's gated batch) and check the shared memory against it after every
 * step. The "interleaved" property also runs worker and main operations in
 * the middle of another operation, at each Atomics call it makes on the
 * control block, the way another thread could.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { errorMessage, errorName, errorText } from '../src/protocol/error_text.js';
import { LaneRingReader, LaneRingWriter } from '../src/protocol/lane_ring.js';
import { LanePicker, STARVATION_LIMIT } from '../src/protocol/lane_picker.js';
import {
  LANE_COUNT, SLOT_BUSY, SLOT_END, SLOT_LANE, SLOT_OUT_READ, SLOT_OUT_WRITE, SLOT_START, align8, before, claimCountWord,
  claimPosWord, controlWords, publishCountWord, publishPosWord, slotWord,
} from '../src/protocol/layout.js';
import { MAX_ERROR_NAME_LENGTH, MAX_ERROR_TEXT_BYTES, MAX_REGISTRY_BYTES, REGISTRY_BYTES } from '../src/protocol/limits.js';
import {
  MAILBOX_BYTES, acknowledged, newMailbox, readMailbox, resetMailbox, writeMailbox, type WorkerMetricsReport,
} from '../src/protocol/metrics_mailbox.js';
import {
  OUT_BYTES, OUT_DONE, OUT_FAILED, OUT_HEADER_BYTES, OUT_HELD, OUT_KIND, OUT_REFUSED, OUT_SEQ, OUT_SUCCEEDED, OUTF_DETACHED,
  OUTF_FAILED, OUTF_TRIAL, OutcomeRingReader, OutcomeRingWriter, resetOutcomes, type Outcome,
} from '../src/protocol/outcome_ring.js';
import {
  REC_HEADER_BYTES, RF_BINARY, RF_CONTINUATION, RF_PAD, RecordEncoder, RecordHeader, decodeRecord, recordFlags, recordLength,
  recordSeq, viewOf, type RecordView,
} from '../src/protocol/record.js';
import { ENTRY_HANDLER, ENTRY_TOPIC, SharedRegistryReader, SharedRegistryWriter } from '../src/protocol/registry.js';

// ==================================================================== lane rings

/**
 * A failing property reports within seconds: shrinking a long operation list
 * can otherwise run for minutes. (Passing runs take well under a second.)
 */
const BOUNDED = { interruptAfterTimeLimit: 10_000 };

/** A record written into a lane ring, or a PAD record the writer put at the wrap. */
interface Item {
  pad: boolean;
  /** Ring position (grows forever; no test gets near 2^31) and length in bytes. */
  pos: number;
  len: number;
  seq: number;
  flags: number;
  /** The record as encoded outside the ring, and how many of its bytes carry data (the rest is alignment). */
  image: Uint8Array;
  meaningful: number;
}

interface LaneModel {
  pos: number;
  claimPos: number;
  count: number;
  claimCount: number;
  /** Published and not claimed yet, oldest first; PAD records included. */
  queue: Item[];
}

interface SlotModel {
  busy: boolean;
  lane: number;
  start: number;
  end: number;
  records: Item[];
}

/** A span that left the ring: claimed by a slot or dropped by takeOldest. */
interface Taken {
  lane: number;
  start: number;
  end: number;
  seqs: number[];
}

interface WriteSpec {
  lane: number;
  /** Raw payload size, reduced modulo what fits in half the ring (or a whole ring and more when oversize). */
  payload: number;
  oversize: boolean;
  handlers: number;
  session: string | undefined;
  json: boolean;
  continuation: boolean;
  /** writeEncoded (a standalone copy) instead of write (the encoder). */
  encoded: boolean;
}

type LaneOp =
  | { kind: 'write'; spec: WriteSpec }
  | { kind: 'claim'; slot: number; lane: number; max: number }
  | { kind: 'finish'; slot: number }
  | { kind: 'take'; lane: number; continuations: boolean }
  | { kind: 'copy'; slot: number; from: number };

/** Where a nested operation runs: before the at-th Atomics call the outer operation makes on the control block. */
interface Nested {
  at: number;
  op: LaneOp;
}

interface OuterOp {
  op: LaneOp;
  nested: Nested[];
}

/** What the model saw while an interleaved operation ran: what a linearizable result must agree with. */
interface History {
  /** Every publish position the lane had. */
  pubs: number[];
  /** Some state had nothing to claim; some state had nothing drop-oldest may take (empty, or a continuation first). */
  sawEmpty: boolean;
  sawUndroppable: boolean;
}

type AtomicsName = 'load' | 'store' | 'add' | 'compareExchange';
const ATOMICS = Atomics as unknown as Record<AtomicsName, (...args: unknown[]) => unknown>;

/** Cheap equality for the checks run after every step (expect() per word is slow). */
function same(actual: unknown, expected: unknown, what: string): void {
  if (!Object.is(actual, expected)) expect.fail(`${what}: got ${String(actual)}, expected ${String(expected)}`);
}

class LaneHarness {
  readonly control: Int32Array;
  readonly mask: number;
  readonly writers = new Map<number, LaneRingWriter>();
  /** readers[slot]: one reader per lane, as each worker attaches its own. */
  readonly readers: Map<number, LaneRingReader>[] = [];
  readonly lanes = new Map<number, LaneModel>();
  readonly slots: SlotModel[] = [];
  readonly written: (Item & { lane: number })[] = [];
  readonly taken: Taken[] = [];
  /** The slot whose claim runs interleaved: until its CAS, its gate is in the control block only. */
  inFlight = -1;
  /** Set while an operation runs interleaved: applies it to the model the moment it takes effect (its CAS or publish). */
  linearize: ((args: unknown[]) => boolean) | undefined;
  /** After that moment, the counter the operation has still to store: the control word may lag the model by this much. */
  lagging: { lane: number; claimCount: number; publishCount: number } | undefined;
  history: Map<number, History> | undefined;
  /**
   * A worker moved its slot's gate to another lane while an interleaved
   * write ran. The writer reads a gate's LANE, START and LANE again, so it
   * pairs this lane with another lane's START only if the gate went to
   * another lane and back between its loads, and then refuses a write it had
   * room for (see the regression test below). Never unsafe, so tolerated.
   */
  gateMovedLane = false;
  nextSeq = 1;
  nestedRan = 0;

  constructor(readonly size: number, readonly laneIds: number[], readonly slotCount: number) {
    this.control = new Int32Array(new SharedArrayBuffer(4 * controlWords(slotCount)));
    this.mask = size - 1;
    for (const lane of laneIds) {
      const sab = new SharedArrayBuffer(size);
      // Garbage everywhere: nothing may depend on a ring starting zeroed.
      new Uint8Array(sab).fill(0xee);
      this.writers.set(lane, new LaneRingWriter(this.control, sab, lane, slotCount));
      this.lanes.set(lane, { pos: 0, claimPos: 0, count: 0, claimCount: 0, queue: [] });
    }
    for (let s = 0; s < slotCount; s++) {
      const readers = new Map<number, LaneRingReader>();
      for (const lane of laneIds) {
        const sab = this.writers.get(lane)!.view.u8.buffer as SharedArrayBuffer;
        readers.set(lane, new LaneRingReader(this.control, sab, lane));
      }
      this.readers.push(readers);
      this.slots.push({ busy: false, lane: 0, start: 0, end: 0, records: [] });
    }
  }

  lane(l: number): LaneModel {
    return this.lanes.get(l)!;
  }

  /**
   * The writer's true read limit now: the claim position, or the oldest START
   * of a busy slot on the lane. With `staleGates`, also the gate of a claim in
   * flight whose START the claim position has already passed: that claim
   * fails its re-check and reads nothing there (another claim's gate covers
   * those records while they run), so a writer may pass it, or, having read
   * it when it refreshed its limit, refuse: either is correct.
   */
  trueLimit(lane: number, staleGates = true): number {
    const lm = this.lane(lane);
    let limit = lm.claimPos;
    for (const s of this.slots) if (s.busy && s.lane === lane && before(s.start, limit)) limit = s.start;
    const f = this.inFlight;
    if (f >= 0 && this.control[slotWord(f, SLOT_BUSY)] !== 0 && this.control[slotWord(f, SLOT_LANE)] === lane) {
      const start = this.control[slotWord(f, SLOT_START)];
      if (before(start, limit) && (staleGates || start === lm.claimPos)) limit = start;
    }
    return limit;
  }

  encode(spec: WriteSpec, seq: number): RecordEncoder {
    const e = new RecordEncoder();
    e.seq = seq;
    e.topicId = seq % 997;
    e.attempt = seq % 3;
    e.publishedAt = 1.7e12 + seq / 8;
    e.handlerIds = Array.from({ length: spec.handlers }, (_, i) => seq * 16 + i);
    e.setSession(spec.session);
    const overhead = REC_HEADER_BYTES + 4 * spec.handlers + e.sessionBytes;
    const cap = spec.oversize ? this.size + 64 : Math.max(0, this.size / 2 - overhead);
    const len = spec.payload % (cap + 1);
    const lane = (spec.lane & 3) << 8;
    const cont = spec.continuation ? RF_CONTINUATION : 0;
    if (spec.json && len >= 16) {
      let k = len >> 1;
      for (;;) {
        e.text = JSON.stringify({ s: seq, p: 'ü'.repeat(k) });
        e.payloadBytes = Buffer.byteLength(e.text);
        if (spec.oversize || e.recordBytes <= this.size / 2 || k === 0) break;
        k--;
      }
      e.flags = lane | cont;
    } else {
      e.binary = Uint8Array.from({ length: len }, (_, i) => (seq * 7 + i * 13) & 0xff);
      e.payloadBytes = len;
      e.flags = RF_BINARY | lane | cont;
    }
    return e;
  }

  /** Runs `call` with `apply` as the linearization hook (interleaved), or applies nothing itself (sequential). */
  #interleaved<T>(concurrent: boolean, apply: (args: unknown[]) => boolean, call: () => T): T {
    if (!concurrent) return call();
    this.linearize = apply;
    try {
      return call();
    } finally {
      this.linearize = undefined;
      this.lagging = undefined;
    }
  }

  // ------------------------------------------------------------ operations

  write(spec: WriteSpec, concurrent = false): void {
    const lane = spec.lane;
    const lm = this.lane(lane);
    const seq = this.nextSeq;
    const e = this.encode(spec, seq);
    const bytes = e.recordBytes;
    const image = e.toStandalone();
    const off = lm.pos & this.mask;
    const toEnd = this.size - off;
    const pad = bytes > toEnd;
    const need = pad ? toEnd + bytes : bytes;
    const room = need <= this.size - ((lm.pos - this.trueLimit(lane)) | 0);
    // Room also counts if only a stale gate of a claim in flight is in the way (see trueLimit).
    const roomPastStale = need <= this.size - ((lm.pos - this.trueLimit(lane, false)) | 0);
    const writer = this.writers.get(lane)!;
    let applied = false;
    const apply = (): boolean => {
      applied = true;
      this.nextSeq++;
      if (pad) {
        lm.queue.push({ pad: true, pos: lm.pos, len: toEnd, seq: -1, flags: RF_PAD, image: new Uint8Array(0), meaningful: 0 });
        lm.pos += toEnd;
      }
      const meaningful = REC_HEADER_BYTES + 4 * spec.handlers + e.sessionBytes + e.idBytes + e.payloadBytes;
      const item: Item = { pad: false, pos: lm.pos, len: bytes, seq, flags: e.flags, image, meaningful };
      lm.queue.push(item);
      this.written.push({ ...item, lane });
      lm.pos += bytes;
      lm.count++;
      // PUBLISH_POS is out; PUBLISH_COUNT follows.
      if (concurrent) this.lagging = { lane, claimCount: 0, publishCount: 1 };
      return true;
    };
    const ok = this.#interleaved(concurrent, apply, () => (spec.encoded ? writer.writeEncoded(image) : writer.write(e)));
    if (bytes > this.size) same(ok, false, 'a record bigger than the ring is refused');
    if (!concurrent) {
      if (ok !== room && !(ok && roomPastStale)) {
        expect.fail(`write of ${bytes} B at position ${lm.pos} (need ${need}, limit ${this.trueLimit(lane)}, ring ${this.size}) returned ${ok}, expected ${room}`);
      }
      if (ok) apply();
      return;
    }
    same(applied, ok, 'an interleaved write published exactly when it returned true');
    // Workers claiming and finishing meanwhile only make room.
    if (room && !this.gateMovedLane) same(ok, true, `write of ${bytes} B had room when it began`);
  }

  /** The worker side: finish a batch (the runtime stores BUSY = 0 after each one). */
  finish(slot: number): void {
    Atomics.store(this.control, slotWord(slot, SLOT_BUSY), 0);
    this.slots[slot].busy = false;
  }

  claim(slot: number, lane: number, max: number, concurrent = false): void {
    // A worker ends its batch before it claims the next one.
    if (this.slots[slot].busy) this.finish(slot);
    const lm = this.lane(lane);
    const reader = this.readers[slot].get(lane)!;
    // What a claim from this state takes: leading PAD records, then up to max records.
    let expectN = 0;
    let expectEnd = lm.claimPos;
    for (let i = 0; i < lm.queue.length && expectN < max; i++) {
      const item = lm.queue[i];
      if (!item.pad) expectN++;
      expectEnd = item.pos + item.len;
    }
    let span: { start: number; end: number; n: number } | undefined;
    /** Moves [from, to) from the lane's queue to the slot; returns the records it holds (0: only a PAD, the claim goes on). */
    const apply = (from: number, to: number): number => {
      same(from, lm.claimPos, 'a claim starts at the claim position');
      let j = 0;
      let n = 0;
      for (let at = from; at !== to; ) {
        if (j >= lm.queue.length) expect.fail(`claimed span [${from}, ${to}) runs past the published records`);
        const item = lm.queue[j++];
        same(item.pos, at, 'a claim ends on a record boundary');
        if (!item.pad) n++;
        at = item.pos + item.len;
      }
      const items = lm.queue.splice(0, j);
      lm.claimPos = to;
      if (n === 0) return 0;
      const records = items.filter((it) => !it.pad);
      lm.claimCount += n;
      this.slots[slot] = { busy: true, lane, start: from, end: to, records };
      this.taken.push({ lane, start: from, end: to, seqs: records.map((r) => r.seq) });
      span = { start: from, end: to, n };
      // CLAIM_COUNT and END follow.
      if (concurrent) this.lagging = { lane, claimCount: n, publishCount: 0 };
      return n;
    };
    if (concurrent) this.inFlight = slot;
    let got: number;
    try {
      got = this.#interleaved(concurrent, (args) => apply(args[2] as number, args[3] as number) > 0, () => reader.claim(slot, max));
    } finally {
      if (concurrent) this.inFlight = -1;
    }
    if (!concurrent) {
      same(got, expectN, 'records claimed');
      if (got > 0) {
        same(reader.start, lm.claimPos, 'claim start');
        same(reader.end, expectEnd, 'claim end');
        apply(reader.start, reader.end);
      }
    } else if (span === undefined) {
      same(got, 0, 'an interleaved claim that took nothing returns 0');
      same(this.history!.get(lane)!.sawEmpty, true, 'a claim returns 0 only if the lane was empty at some point');
    } else {
      const s: { start: number; end: number; n: number } = span;
      same(got, s.n, 'records claimed');
      same(reader.start, s.start, 'claim start');
      same(reader.end, s.end, 'claim end');
      expect(got).toBeLessThanOrEqual(max);
      // Fewer than max only when it reached what was published when it looked.
      if (got < max) expect(this.history!.get(lane)!.pubs).toContain(reader.end);
    }
    if (got === 0) {
      same(this.control[slotWord(slot, SLOT_BUSY)], 0, 'an empty claim lowers the gate');
      return;
    }
    // Decode the span the way batch_runner does: in place, PAD records skipped.
    const records = this.slots[slot].records;
    const view = reader.view;
    const header = new RecordHeader();
    let k = 0;
    for (let pos = reader.start; pos !== reader.end; ) {
      header.read(view, pos & reader.mask);
      if (!(header.flags & RF_PAD)) {
        same(header.seq, records[k].seq, 'claimed record seq');
        this.expectRecordAt(view, pos & reader.mask, records[k++]);
      }
      pos = (pos + header.recordBytes) | 0;
    }
    same(k, got, 'records decoded from the claimed span');
  }

  /** Drop-oldest; with `continuations`, a record that continues an event may be taken too (to be written back behind). */
  take(lane: number, continuations: boolean, concurrent = false): void {
    const lm = this.lane(lane);
    const writer = this.writers.get(lane)!;
    let dropped: Item | undefined;
    const apply = (from: number, to: number): boolean => {
      same(from, lm.claimPos, 'takeOldest starts at the claim position');
      const first = lm.queue[0];
      const head = first?.pad ? lm.queue[1] : first;
      if (head === undefined) expect.fail('takeOldest took from an empty lane');
      same(head.pos + head.len, to, 'takeOldest takes one record');
      if (!continuations) same(head.flags & RF_CONTINUATION, 0, 'takeOldest() never takes a continuation');
      lm.queue.splice(0, first === head ? 1 : 2);
      lm.claimPos = to;
      lm.claimCount++;
      this.taken.push({ lane, start: from, end: to, seqs: [head.seq] });
      dropped = head;
      if (concurrent) this.lagging = { lane, claimCount: 1, publishCount: 0 };
      return true;
    };
    const off = this.#interleaved(concurrent, (args) => apply(args[2] as number, args[3] as number), () => writer.takeOldest(continuations));
    if (!concurrent) {
      const first = lm.queue[0];
      const head = first?.pad ? lm.queue[1] : first;
      if (head === undefined || (!continuations && (head.flags & RF_CONTINUATION) !== 0)) {
        same(off, -1, 'takeOldest with nothing droppable');
        return;
      }
      if (off < 0) expect.fail(`takeOldest returned -1 with record seq ${head.seq} droppable`);
      apply(lm.claimPos, head.pos + head.len);
    } else if (off < 0) {
      same(dropped, undefined, 'takeOldest returned -1 after its CAS');
      const h = this.history!.get(lane)!;
      same(continuations ? h.sawEmpty : h.sawUndroppable, true, 'takeOldest returns -1 only if nothing was droppable at some point');
      return;
    }
    if (dropped === undefined) expect.fail(`takeOldest returned ${off} without taking a record`);
    const d: Item = dropped;
    same(off, d.pos & this.mask, 'takeOldest offset');
    // Still readable until the next write: what drop-oldest reports of it.
    same(recordSeq(writer.view, off), d.seq, 'dropped record seq');
    same(recordFlags(writer.view, off) & RF_PAD, 0, 'takeOldest never returns a PAD record');
  }

  /** Main copies a busy slot's batch back out (crash recovery), from one of its records (the slot's cursor) to END. */
  copy(slot: number, fromIndex: number): void {
    const s = this.slots[slot];
    if (!s.busy) return;
    const c = this.control;
    same(c[slotWord(slot, SLOT_BUSY)], 1, 'BUSY of a slot to copy');
    const j = fromIndex % (s.records.length + 1);
    const from = j === s.records.length ? s.end : j === 0 ? c[slotWord(slot, SLOT_START)] : s.records[j].pos;
    const copies = this.writers.get(s.lane)!.copyRange(from, c[slotWord(slot, SLOT_END)]);
    const expected = s.records.slice(j);
    same(copies.length, expected.length, 'records copied');
    copies.forEach((copy, k) => {
      same(recordFlags(viewOf(copy.buffer), 0) & RF_PAD, 0, 'copyRange never returns a PAD record');
      same(copy.byteLength, expected[k].len, 'copied record length');
      this.expectRecordAt(viewOf(copy.buffer), 0, expected[k]);
      same(decodeRecord(copy).seq, expected[k].seq, 'copied record seq');
    });
  }

  run(op: LaneOp, concurrent = false): void {
    switch (op.kind) {
      case 'write': return this.write(op.spec, concurrent);
      case 'claim': return this.claim(op.slot, op.lane, op.max, concurrent);
      case 'finish': return this.finish(op.slot);
      case 'take': return this.take(op.lane, op.continuations, concurrent);
      case 'copy': return this.copy(op.slot, op.from);
    }
  }

  // ------------------------------------------------------------ interleaving

  /**
   * Runs `outer` and, right before the at-th Atomics call it makes on the
   * control block, each nested operation (then checks every invariant).
   * The model takes the outer operation's effect when it happens: at its
   * successful CAS on CLAIM_POS, or its store of PUBLISH_POS. Only what
   * another thread could do meanwhile runs inside: workers claim and finish
   * batches on other slots at any time; main writes, drops and copies only
   * while a worker claims. The rest runs afterwards, one after the other.
   */
  runInterleaved(outer: LaneOp, nested: Nested[]): void {
    const mainOp = outer.kind === 'write' || outer.kind === 'take' || outer.kind === 'copy';
    const legal = (op: LaneOp): boolean => {
      if (outer.kind === 'claim' && op.kind !== 'write' && op.kind !== 'take' && op.slot === outer.slot) return false;
      return op.kind === 'claim' || op.kind === 'finish' || !mainOp;
    };
    const lane = outer.kind === 'write' ? outer.spec.lane : outer.kind === 'claim' || outer.kind === 'take' ? outer.lane : -1;
    const pending = [...nested].sort((a, b) => a.at - b.at);
    const later: LaneOp[] = [];
    const c = this.control;
    const history = new Map<number, History>();
    const note = (): void => {
      for (const [l, lm] of this.lanes) {
        let h = history.get(l);
        if (h === undefined) history.set(l, (h = { pubs: [], sawEmpty: false, sawUndroppable: false }));
        h.pubs.push(lm.pos);
        const first = lm.queue[0];
        const head = first?.pad ? lm.queue[1] : first;
        if (head === undefined) h.sawEmpty = true;
        if (head === undefined || (head.flags & RF_CONTINUATION) !== 0) h.sawUndroppable = true;
      }
    };
    note();
    let calls = 0;
    let inside = false;
    let linearized = false;
    // An operation that never ends (a claim spinning on bytes that never change) fails instead of hanging.
    let spin = 0;
    const SPIN_LIMIT = 100_000;
    // (Atomics' methods are not enumerable: copy them by name.)
    const saved = { load: ATOMICS.load, store: ATOMICS.store, add: ATOMICS.add, compareExchange: ATOMICS.compareExchange };
    const hook = (name: AtomicsName) =>
      (...args: unknown[]): unknown => {
        const [ta, index] = args as [unknown, number];
        if (ta === c && ++spin > SPIN_LIMIT) throw new Error(`an operation spins: over ${SPIN_LIMIT} Atomics calls on the control block`);
        if (ta !== c || inside) return saved[name].apply(Atomics, args);
        while (pending.length > 0 && pending[0].at <= calls) {
          const { op } = pending.shift()!;
          if (!legal(op)) {
            later.push(op);
            continue;
          }
          inside = true;
          const outerSpin = spin;
          spin = 0;
          try {
            const laneBefore = op.kind === 'claim' ? c[slotWord(op.slot, SLOT_LANE)] : 0;
            this.run(op);
            if (op.kind === 'claim' && outer.kind === 'write' && c[slotWord(op.slot, SLOT_LANE)] !== laneBefore) this.gateMovedLane = true;
            this.nestedRan++;
            note();
            this.check();
          } finally {
            inside = false;
            spin = outerSpin;
          }
        }
        calls++;
        const result = saved[name].apply(Atomics, args);
        if (!linearized) {
          const cas = name === 'compareExchange' && index === claimPosWord(lane) && result === args[2];
          const publish = name === 'store' && outer.kind === 'write' && index === publishPosWord(lane);
          if ((cas || publish) && this.linearize !== undefined) {
            inside = true;
            try {
              linearized = this.linearize(args);
            } finally {
              inside = false;
            }
          }
        }
        return result;
      };
    this.gateMovedLane = false;
    ATOMICS.load = hook('load');
    ATOMICS.store = hook('store');
    ATOMICS.add = hook('add');
    ATOMICS.compareExchange = hook('compareExchange');
    this.history = history;
    try {
      this.run(outer, true);
    } finally {
      ATOMICS.load = saved.load;
      ATOMICS.store = saved.store;
      ATOMICS.add = saved.add;
      ATOMICS.compareExchange = saved.compareExchange;
      this.history = undefined;
    }
    this.check();
    for (const op of [...pending.map((p) => p.op), ...later]) {
      this.run(op);
      this.check();
    }
  }

  // ------------------------------------------------------------ invariants

  expectRecordAt(view: RecordView, off: number, item: Item): void {
    const got = view.u8.subarray(off, off + item.meaningful);
    if (!Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(item.image.buffer, 0, item.meaningful))) {
      const h = new RecordHeader().read(view, off);
      expect.fail(`record seq ${item.seq} (${item.len} B) at offset ${off} was overwritten: it now reads seq ${h.seq}, ${h.recordBytes} B`);
    }
    same(recordLength(view, off), item.len, 'record length');
  }

  /** The shared memory agrees with the model: counters, gates, and every record still to be run or gated. */
  check(): void {
    const c = this.control;
    for (const [lane, lm] of this.lanes) {
      const lag = this.lagging?.lane === lane ? this.lagging : undefined;
      same(c[publishPosWord(lane)], lm.pos, `PUBLISH_POS of lane ${lane}`);
      same(c[claimPosWord(lane)], lm.claimPos, `CLAIM_POS of lane ${lane}`);
      const waiting = lm.queue.filter((it) => !it.pad).length;
      same(lm.count - lm.claimCount, waiting, 'model waiting');
      if (lag === undefined) {
        same(c[publishCountWord(lane)], lm.count, `PUBLISH_COUNT of lane ${lane}`);
        same(c[claimCountWord(lane)], lm.claimCount, `CLAIM_COUNT of lane ${lane}`);
        same(this.writers.get(lane)!.waiting, waiting, 'writer.waiting');
        for (const readers of this.readers) same(readers.get(lane)!.waiting(), waiting, 'reader.waiting()');
      } else {
        // The operation that took effect has one counter store to go.
        const pc = c[publishCountWord(lane)];
        const cc = c[claimCountWord(lane)];
        if (pc !== lm.count && pc !== lm.count - lag.publishCount) expect.fail(`PUBLISH_COUNT ${pc}, model ${lm.count}`);
        if (cc !== lm.claimCount && cc !== lm.claimCount - lag.claimCount) expect.fail(`CLAIM_COUNT ${cc}, model ${lm.claimCount}`);
      }
      // Records published and not claimed are intact, and the queue is contiguous.
      const view = this.writers.get(lane)!.view;
      let at = lm.claimPos;
      for (const item of lm.queue) {
        same(item.pos, at, 'queue position');
        const off = item.pos & this.mask;
        if (item.pad) {
          same(recordFlags(view, off), RF_PAD, 'PAD flags');
          same(recordLength(view, off), item.len, 'PAD length');
          same(off + item.len, this.size, 'a PAD runs to the end of the ring');
        } else {
          this.expectRecordAt(view, off, item);
        }
        at = item.pos + item.len;
      }
      same(at, lm.pos, 'queue end');
    }
    // Every busy slot's gated batch is intact: the writer never wrote over it.
    this.slots.forEach((s, slot) => {
      const inFlight = slot === this.inFlight;
      // A claim under way: its gate words are its own business until its CAS; END follows the CAS.
      if (inFlight && !s.busy) return;
      same(c[slotWord(slot, SLOT_BUSY)], s.busy ? 1 : 0, `BUSY of slot ${slot}`);
      if (!s.busy) return;
      same(c[slotWord(slot, SLOT_LANE)], s.lane, `LANE of slot ${slot}`);
      same(c[slotWord(slot, SLOT_START)], s.start, `START of slot ${slot}`);
      if (!inFlight) same(c[slotWord(slot, SLOT_END)], s.end, `END of slot ${slot}`);
      const view = this.writers.get(s.lane)!.view;
      for (const r of s.records) this.expectRecordAt(view, r.pos & this.mask, r);
    });
  }

  /** Ends every batch, claims what is left, and checks that each record left the ring exactly once, in FIFO order. */
  drainAndCheck(): void {
    for (let s = 0; s < this.slotCount; s++) this.finish(s);
    for (const lane of this.laneIds) {
      while (this.lane(lane).queue.length > 0) this.claim(0, lane, 1 + (this.lane(lane).queue.length >> 1));
      this.finish(0);
      this.check();
      const lm = this.lane(lane);
      expect(this.writers.get(lane)!.waiting).toBe(0);
      expect(this.writers.get(lane)!.takeOldest()).toBe(-1);
      expect(this.writers.get(lane)!.takeOldest(true)).toBe(-1);
      expect(this.readers[0].get(lane)!.claim(0, 1)).toBe(0);
      const spans = this.taken.filter((t) => t.lane === lane).sort((a, b) => a.start - b.start);
      let at = 0;
      for (const t of spans) {
        // Claimed spans are consecutive and disjoint: each begins where the one before ended.
        expect(t.start).toBe(at);
        at = t.end;
      }
      expect(at).toBe(lm.pos);
      const seqs = spans.flatMap((t) => t.seqs);
      expect(seqs).toEqual(this.written.filter((w) => w.lane === lane).map((w) => w.seq));
      expect(new Set(seqs).size).toBe(seqs.length);
    }
  }
}

// ------------------------------------------------------------------ arbitraries

interface LaneConfig {
  size: number;
  lanes: number[];
  slots: number;
}

const laneConfig: fc.Arbitrary<LaneConfig> = fc.record({
  size: fc.constantFrom(256, 512, 1024, 2048, 4096),
  lanes: fc.shuffledSubarray([0, 1, 2, 3], { minLength: 1, maxLength: 2 }),
  slots: fc.integer({ min: 1, max: 4 }),
});

const shortSession = fc.option(fc.string({ unit: 'binary', minLength: 1, maxLength: 10 }), { nil: undefined, freq: 3 });

const writeSpec = (cfg: LaneConfig): fc.Arbitrary<WriteSpec> =>
  fc.record({
    lane: fc.constantFrom(...cfg.lanes),
    payload: fc.nat(5000),
    // One write in eight may be up to a whole ring and more: refused, or taken only where it fits.
    oversize: fc.nat(7).map((n) => n === 0),
    handlers: fc.nat(4),
    session: shortSession,
    json: fc.boolean(),
    continuation: fc.nat(4).map((n) => n === 0),
    encoded: fc.boolean(),
  });

const laneOp = (cfg: LaneConfig): fc.Arbitrary<LaneOp> =>
  fc.oneof(
    { weight: 6, arbitrary: writeSpec(cfg).map((spec) => ({ kind: 'write' as const, spec })) },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('claim' as const),
        slot: fc.nat(cfg.slots - 1),
        lane: fc.constantFrom(...cfg.lanes),
        max: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 40 })),
      }),
    },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('finish' as const), slot: fc.nat(cfg.slots - 1) }) },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('take' as const), lane: fc.constantFrom(...cfg.lanes), continuations: fc.nat(3).map((n) => n === 0) }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('copy' as const), slot: fc.nat(cfg.slots - 1), from: fc.nat(20) }) },
  );

describe('lane ring', () => {
  it('model: writes, claims, finishes, drops and copies keep every record intact and hand each out once, in order', () => {
    fc.assert(
      fc.property(
        laneConfig.chain((cfg) => fc.tuple(fc.constant(cfg), fc.array(laneOp(cfg), { minLength: 1, maxLength: 80, size: 'max' }))),
        ([cfg, ops]) => {
          const h = new LaneHarness(cfg.size, cfg.lanes, cfg.slots);
          for (const op of ops) {
            h.run(op);
            h.check();
          }
          h.drainAndCheck();
        },
      ),
      { numRuns: 200, ...BOUNDED },
    );
  });

  /** Outer operations, each with operations run inside it at its Atomics calls; `onNested` hears how many nested ones ran. */
  const interleavedProperty = (onNested: (n: number) => void) => fc.property(
    laneConfig
      .filter((cfg) => cfg.slots > 1)
      .chain((cfg) => {
        const nested = fc.array(fc.record({ at: fc.nat(12), op: laneOp(cfg) }), { maxLength: 4 });
        return fc.tuple(fc.constant(cfg), fc.array(fc.record({ op: laneOp(cfg), nested }), { minLength: 1, maxLength: 40, size: 'max' }));
      }),
    ([cfg, ops]: [LaneConfig, OuterOp[]]) => {
      const h = new LaneHarness(cfg.size, cfg.lanes, cfg.slots);
      for (const { op, nested } of ops) h.runInterleaved(op, nested);
      h.drainAndCheck();
      onNested(h.nestedRan);
    },
  );

  it('interleaved: other workers and main act in the middle of a claim, a drop or a write', () => {
    let nestedRan = 0;
    fc.assert(interleavedProperty((n) => (nestedRan += n)), { numRuns: 150, ...BOUNDED });
    // The hooks really ran operations inside others.
    expect(nestedRan).toBeGreaterThan(300);
  });

  // A random run found this: main's write passed the gate a worker had raised for a claim whose start the claim
  // position had already passed (the claim fails its re-check and retries; other gates cover those records).
  // The model counted that stale gate; the writer, correctly, need not.
  it('a write may pass the stale gate of a claim in flight that the claim position has passed (fast-check seed 1920758387)', () => {
    let nestedRan = 0;
    fc.assert(interleavedProperty((n) => (nestedRan += n)), { ...BOUNDED, seed: 1920758387, path: '139', endOnFailure: true });
    expect(nestedRan).toBeGreaterThan(0);
  });

  it('a claim raced by another worker after it loaded the cursor retries and takes the next records', () => {
    const h = new LaneHarness(256, [0], 2);
    const spec = (payload: number): WriteSpec => ({
      lane: 0, payload, oversize: false, handlers: 1, session: undefined, json: false, continuation: false, encoded: false,
    });
    for (let i = 0; i < 4; i++) h.write(spec(8));
    h.check();
    // Slot 1 claims two records right after slot 0 loaded CLAIM_POS (call 0), then the writer wraps.
    h.runInterleaved({ kind: 'claim', slot: 0, lane: 0, max: 2 }, [
      { at: 1, op: { kind: 'claim', slot: 1, lane: 0, max: 2 } },
      { at: 1, op: { kind: 'finish', slot: 1 } },
      { at: 2, op: { kind: 'write', spec: spec(40) } },
      { at: 2, op: { kind: 'write', spec: spec(40) } },
    ]);
    expect(h.taken.map((t) => t.seqs)).toEqual([[1, 2], [3, 4]]);
    h.drainAndCheck();
  });

  it('takeOldest(true) also takes a continuation; takeOldest() stops at one', () => {
    const h = new LaneHarness(512, [1], 1);
    const spec = (continuation: boolean): WriteSpec => ({
      lane: 1, payload: 8, oversize: false, handlers: 1, session: undefined, json: false, continuation, encoded: false,
    });
    h.write(spec(true));
    h.write(spec(false));
    h.take(1, false);
    expect(h.taken).toEqual([]);
    h.take(1, true);
    h.take(1, false);
    expect(h.taken.map((t) => t.seqs)).toEqual([[1], [2]]);
    h.drainAndCheck();
  });

  // Regression: the writer loads a slot's BUSY, LANE and START one at a time. When the slot's worker ends its
  // batch on this lane and claims one on another lane between the LANE and START loads, the writer took the
  // other lane's START for a gate on this lane and refused a write that fits (refreshLimit now loads LANE again).
  it('a write is not refused when a worker moves its gate to another lane during the limit refresh', () => {
    const h = new LaneHarness(256, [0, 1], 2);
    const bytes = (n: number, lane = 0): WriteSpec => ({
      lane, payload: n - REC_HEADER_BYTES, oversize: false, handlers: 0, session: undefined, json: false, continuation: false,
      encoded: false,
    });
    h.write(bytes(64)); // [0, 64)
    h.write(bytes(64)); // [64, 128)
    h.write(bytes(64, 1)); // lane 1: [0, 64)
    h.claim(0, 0, 1);
    h.finish(0);
    h.claim(1, 0, 1); // slot 1 gates lane 0 from 64
    h.write(bytes(112)); // [128, 240): the writer's cached limit (0) still covers it
    h.check();
    // 56 more bytes (the smallest record) need a PAD over the last 16: 72 bytes, which fit behind the gate at 64. The writer
    // refreshes its limit: CLAIM_POS (call 0), BUSY[0] (1), BUSY[1] (2), LANE[1] (3), START[1] (4). Right
    // before START[1], slot 1 ends its batch and claims lane 1's record: START[1] becomes 0, in lane 1.
    const before = h.written.length;
    h.runInterleaved({ kind: 'write', spec: bytes(REC_HEADER_BYTES) }, [{ at: 4, op: { kind: 'claim', slot: 1, lane: 1, max: 1 } }]);
    expect(h.written.length).toBe(before + 1);
  });

  it('an empty ring takes a record of half its size at every write offset (the engine sizes rings to two records)', () => {
    const binary = (bytes: number): WriteSpec => ({
      lane: 2, payload: bytes - REC_HEADER_BYTES, oversize: false, handlers: 0, session: undefined, json: false,
      continuation: false, encoded: true,
    });
    for (const size of [256, 1024]) {
      // A record is at least REC_HEADER_BYTES and never wraps, so it can end at offset 0 or REC_HEADER_BYTES and up.
      for (let p = 0; p < size; p += 8) {
        if (p > 0 && p < REC_HEADER_BYTES) continue;
        const h = new LaneHarness(size, [2], 1);
        for (let rest = p; rest > 0; ) {
          const chunk = rest <= size / 2 ? rest : Math.min(size / 2, rest - REC_HEADER_BYTES);
          h.write(binary(chunk));
          h.claim(0, 2, 1);
          h.finish(0);
          rest -= chunk;
        }
        expect(h.lane(2).pos).toBe(p);
        const before = h.written.length;
        h.write(binary(size / 2));
        expect(h.written.length).toBe(before + 1);
        h.check();
        h.drainAndCheck();
      }
    }
  });
});

// ==================================================================== outcome rings

interface OutcomeSpec {
  slot: number;
  kind: number;
  seq: number;
  topicId: number;
  handlerId: number;
  attempt: number;
  text: string;
  /** The thrown error's name ('' when none). */
  name: string;
  flags: number;
  record: Uint8Array | undefined;
}

type OutcomeOp = { kind: 'write'; spec: OutcomeSpec; retry: boolean } | { kind: 'drain'; slot: number };

const outcomeSpec = (slots: number): fc.Arbitrary<OutcomeSpec> =>
  fc.record({
    slot: fc.nat(slots - 1),
    kind: fc.constantFrom(OUT_FAILED, OUT_DONE, OUT_REFUSED, OUT_SUCCEEDED, OUT_HELD),
    seq: fc.oneof(fc.maxSafeNat(), fc.double()),
    topicId: fc.integer(),
    handlerId: fc.oneof(fc.constant(-1), fc.integer()),
    attempt: fc.oneof(fc.nat(5), fc.integer()),
    text: fc.oneof(
      fc.constant(''),
      fc.string({ unit: 'binary', maxLength: 60, size: 'max' }),
      fc.string({ unit: 'grapheme', maxLength: 120, size: 'max' }),
      fc.string({ unit: 'binary-ascii', maxLength: 400, size: 'max' }),
    ),
    name: fc.oneof(fc.constant(''), fc.constantFrom('Error', 'TypeError', 'HandlerTimeoutError'), fc.string({ unit: 'binary', maxLength: 20 })),
    flags: fc.oneof(fc.constantFrom(0, OUTF_FAILED, OUTF_DETACHED, OUTF_TRIAL, OUTF_FAILED | OUTF_DETACHED), fc.integer()),
    // Record copies from a length (their bytes only travel): they shrink by length, not byte by byte.
    record: fc.option(fc.integer({ min: 1, max: 400 }).map((n) => Uint8Array.from({ length: n }, (_, i) => (i * 29 + n) & 0xff)), { nil: undefined }),
  });

const utf8Bytes = (s: string): number => Buffer.byteLength(s);

describe('outcome ring', () => {
  it('every entry is read once, in order, with identical fields; tryWrite is false only when the entry does not fit', () => {
    fc.assert(
      fc.property(
        fc.record({ size: fc.constantFrom(512, 1024, 2048, 4096), slots: fc.integer({ min: 1, max: 3 }) }).chain((cfg) =>
          fc.tuple(
            fc.constant(cfg),
            fc.array(
              fc.oneof(
                { weight: 4, arbitrary: fc.record({ kind: fc.constant('write' as const), spec: outcomeSpec(cfg.slots), retry: fc.boolean() }) },
                { weight: 1, arbitrary: fc.record({ kind: fc.constant('drain' as const), slot: fc.nat(cfg.slots - 1) }) },
              ),
              { minLength: 1, maxLength: 60, size: 'max' },
            ),
          )),
        ([cfg, ops]: [{ size: number; slots: number }, OutcomeOp[]]) => {
          const { size, slots } = cfg;
          const control = new Int32Array(new SharedArrayBuffer(4 * controlWords(slots)));
          const sabs = Array.from({ length: slots }, () => new SharedArrayBuffer(size));
          const writers = sabs.map((sab, s) => {
            new Uint8Array(sab).fill(0xcd);
            const w = new OutcomeRingWriter(control, sab);
            w.attach(s);
            return w;
          });
          const readers = sabs.map((sab, s) => new OutcomeRingReader(control, sab, s));
          // Model per slot: the cursors and the entries written, not read yet (with where they are).
          const model = Array.from({ length: slots }, () => ({ write: 0, read: 0, pending: [] as (OutcomeSpec & { off: number; bytes: number })[] }));
          const words = sabs.map((sab) => ({ i32: new Int32Array(sab), f64: new Float64Array(sab) }));
          /** Entries main has not read are intact: a write never lands on them (drain would read garbage, or spin). */
          const checkUnread = (): void => {
            model.forEach((m, slot) => {
              const { i32, f64 } = words[slot];
              for (const e of m.pending) {
                same(i32[(e.off + OUT_BYTES) >> 2], e.bytes, `unread entry seq ${e.seq}: length`);
                same(i32[(e.off + OUT_KIND) >> 2], e.kind, `unread entry seq ${e.seq}: kind`);
                same(f64[(e.off + OUT_SEQ) >> 3], e.seq, `unread entry seq ${e.seq}: seq`);
              }
            });
          };
          const drain = (slot: number): void => {
            const got: Outcome[] = [];
            readers[slot].drain((o) => got.push(o));
            const m = model[slot];
            same(got.length, m.pending.length, 'entries drained');
            got.forEach((o, i) => {
              const e = m.pending[i];
              same(o.kind, e.kind, 'kind');
              same(o.seq, e.seq, 'seq');
              same(o.topicId, e.topicId, 'topicId');
              same(o.handlerId, e.handlerId, 'handlerId');
              same(o.attempt, e.attempt, 'attempt');
              same(o.text, e.text, 'text');
              same(o.name, e.name, 'name');
              same(o.flags, e.flags, 'flags');
              if (e.record === undefined) same(o.record, undefined, 'record');
              else if (o.record === undefined || !Buffer.from(o.record).equals(Buffer.from(e.record))) expect(o.record).toEqual(e.record);
            });
            m.pending = [];
            m.read = m.write;
            same(control[slotWord(slot, SLOT_OUT_READ)], m.read, 'OUT_READ');
          };
          for (const op of ops) {
            if (op.kind === 'drain') {
              drain(op.slot);
              continue;
            }
            const e = { ...op.spec };
            // Keep entries below half the ring (the engine sizes it to two of the largest).
            const budget = size / 2 - OUT_HEADER_BYTES - 8;
            if (e.record !== undefined && e.record.byteLength > budget / 2) e.record = e.record.subarray(0, budget >> 1);
            while (utf8Bytes(e.name) + utf8Bytes(e.text) + (e.record?.byteLength ?? 0) > budget) e.text = e.text.slice(0, Math.floor(e.text.length / 2));
            if (/[\uD800-\uDBFF]$/.test(e.text)) e.text = e.text.slice(0, -1);
            const m = model[e.slot];
            const bytes = align8(OUT_HEADER_BYTES + utf8Bytes(e.name) + utf8Bytes(e.text) + (e.record?.byteLength ?? 0));
            if (bytes >= size / 2) expect.fail(`entry of ${bytes} B in a ring of ${size}`);
            const off = m.write & (size - 1);
            const toEnd = size - off;
            const need = bytes > toEnd ? toEnd + bytes : bytes;
            const fits = need <= size - (m.write - m.read);
            const write = (): boolean => writers[e.slot].tryWrite(e.kind, e.seq, e.topicId, e.handlerId, e.attempt, e.text, e.record, e.name, e.flags);
            let ok = write();
            same(ok, fits, `tryWrite of ${bytes} B (need ${need}) at ${m.write} with ${m.write - m.read} unread`);
            if (!ok && op.retry) {
              // What a worker does when the ring is full: wait for main to read, then write again.
              drain(e.slot);
              ok = write();
              same(ok, true, 'tryWrite after main read everything');
            }
            if (!ok) continue;
            const start = m.write & (size - 1);
            const padded = bytes > size - start;
            m.write += padded ? size - start + bytes : bytes;
            m.pending.push({ ...e, record: e.record?.slice(), off: padded ? 0 : start, bytes });
            checkUnread();
            same(control[slotWord(e.slot, SLOT_OUT_WRITE)], m.write, 'OUT_WRITE');
          }
          for (let s = 0; s < slots; s++) drain(s);
          // Nothing is read twice.
          for (let s = 0; s < slots; s++) {
            let n = 0;
            readers[s].drain(() => n++);
            expect(n).toBe(0);
          }
        },
      ),
      { numRuns: 150, ...BOUNDED },
    );
  });

  it('wraps with a PAD entry when the next entry does not fit before the end, and resets', () => {
    const size = 512;
    const control = new Int32Array(new SharedArrayBuffer(4 * controlWords(1)));
    const sab = new SharedArrayBuffer(size);
    const w = new OutcomeRingWriter(control, sab);
    const r = new OutcomeRingReader(control, sab, 0);
    const got: Outcome[] = [];
    const text = 'é'.repeat(52);
    const entry = align8(OUT_HEADER_BYTES + utf8Bytes('TypeError') + 104);
    const fit = Math.floor(size / entry);
    expect(size % entry).toBeGreaterThan(0); // the tail left over is too short for the next entry
    for (let i = 0; i < fit; i++) expect(w.tryWrite(OUT_FAILED, i, 1, 2, 0, text, undefined, 'TypeError', OUTF_TRIAL)).toBe(true);
    expect(w.tryWrite(OUT_FAILED, fit, 1, 2, 0, text, undefined, 'TypeError')).toBe(false);
    r.drain((o) => got.push(o));
    // Read: now it fits, at offset 0 behind a PAD over the tail.
    expect(w.tryWrite(OUT_FAILED, fit, 1, 2, 0, text, new Uint8Array([1, 2, 3]), 'TypeError')).toBe(true);
    expect(control[slotWord(0, SLOT_OUT_WRITE)]).toBe(size + align8(OUT_HEADER_BYTES + utf8Bytes('TypeError') + 104 + 3));
    r.drain((o) => got.push(o));
    expect(got.map((o) => o.seq)).toEqual(Array.from({ length: fit + 1 }, (_, i) => i));
    expect(got.every((o) => o.text === text && o.name === 'TypeError')).toBe(true);
    expect(got[0].flags).toBe(OUTF_TRIAL);
    expect(got[fit].flags).toBe(0);
    expect(got[fit].record).toEqual(new Uint8Array([1, 2, 3]));
    resetOutcomes(control, 0);
    expect(control[slotWord(0, SLOT_OUT_WRITE)]).toBe(0);
    expect(control[slotWord(0, SLOT_OUT_READ)]).toBe(0);
    r.drain(() => expect.fail('a reset ring is empty'));
  });

  it('an empty record copy reads back as no record', () => {
    const control = new Int32Array(new SharedArrayBuffer(4 * controlWords(1)));
    const sab = new SharedArrayBuffer(512);
    expect(new OutcomeRingWriter(control, sab).tryWrite(OUT_FAILED, 1, 1, 1, 0, 'x', new Uint8Array(0))).toBe(true);
    const got: Outcome[] = [];
    new OutcomeRingReader(control, sab, 0).drain((o) => got.push(o));
    expect(got[0].record).toBeUndefined();
  });
});

// ==================================================================== registry

type RegOp =
  | { kind: 'topic'; topic: string }
  | { kind: 'handler'; topic: string; module: string; exportName: string; name: string; breaker: number };

const topicName = fc.oneof(fc.constantFrom('a', 'b', 'orders.created'), fc.string({ unit: 'binary', maxLength: 12 }));

/** Strings rich in the characters a joined key would trip on. */
const keyPart = (maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.oneof(fc.constantFrom('#', '\u0000', ':', '"', '\\', '/'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), maxLength });

describe('shared registry', () => {
  it('interned ids are stable, deduplicated and seen by readers attached to the same (growing) buffer', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('topic' as const), topic: topicName }),
            fc.record({
              kind: fc.constant('handler' as const),
              topic: topicName,
              module: fc.oneof(fc.constantFrom('file:///h.js', 'file:///h.js#v2', 'file:///w/é.mjs'), keyPart(12).map((s) => `file:///${s}`)),
              exportName: fc.oneof(fc.constantFrom('default', 'v2#run', 'run'), keyPart(6)),
              name: fc.oneof(fc.constantFrom('h', 'x#y', 'run#h'), keyPart(8)),
              breaker: fc.oneof(fc.constantFrom(-1, 0, 1), fc.integer({ min: -1, max: 4095 })),
            }),
          ),
          { maxLength: 40, size: 'max' },
        ),
        fc.constantFrom(128, 256, 4096),
        (ops: RegOp[], initialBytes) => {
          // A small start: the buffer grows while readers hold views of it.
          const w = new SharedRegistryWriter(initialBytes, 1 << 20);
          // A reader attached before anything is written catches up lazily, across growths.
          const early = new SharedRegistryReader(w.sab);
          const keys = new Map<string, number>();
          for (const op of ops) {
            const key = op.kind === 'topic' ? JSON.stringify(['t', op.topic])
              : JSON.stringify(['h', op.topic, op.module, op.exportName, op.name, op.breaker]);
            const id = op.kind === 'topic' ? w.topicId(op.topic) : w.handlerId(op.topic, op.module, op.exportName, op.name, op.breaker);
            const known = keys.get(key);
            if (known === undefined) {
              // New entries get the next id.
              same(id, keys.size, 'a new entry gets the next id');
              keys.set(key, id);
            } else {
              same(id, known, 'an entry interned again keeps its id');
            }
            const entry = early.get(id);
            if (op.kind === 'topic') expect(entry).toEqual({ kind: ENTRY_TOPIC, topic: op.topic });
            else {
              expect(entry).toEqual({ kind: ENTRY_HANDLER, module: op.module, exportName: op.exportName, name: op.name, breaker: op.breaker });
            }
            expect(w.entry(id)).toEqual(entry);
            same(w.breakerOf(id), op.kind === 'topic' ? -1 : op.breaker, 'breakerOf');
          }
          const late = new SharedRegistryReader(w.sab);
          for (let id = keys.size - 1; id >= 0; id--) expect(late.get(id)).toEqual(early.get(id));
          expect(() => late.get(keys.size)).toThrow(/no entry/);
        },
      ),
      { numRuns: 150, ...BOUNDED },
    );
  });

  it('starts at REGISTRY_BYTES and may grow to MAX_REGISTRY_BYTES', () => {
    const w = new SharedRegistryWriter();
    expect(w.sab.byteLength).toBe(REGISTRY_BYTES);
    expect(w.sab.growable).toBe(true);
    expect(w.sab.maxByteLength).toBe(MAX_REGISTRY_BYTES);
  });

  it('a topic and a handler never share an id', () => {
    const w = new SharedRegistryWriter(4096);
    expect(w.topicId('file:///h.js#default#h')).toBe(0);
    expect(w.handlerId('file:///h.js', 'default', 'h', 'x', -1)).toBe(1);
    expect(w.entry(0)).toEqual({ kind: ENTRY_TOPIC, topic: 'file:///h.js#default#h' });
  });

  it('a full registry throws a RangeError naming its size, and keeps what it holds', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 8, max: 64 }).map((n) => 8 * n),
        fc.integer({ min: 0, max: 256 }).map((n) => 8 * n),
        fc.array(fc.string({ unit: 'binary', maxLength: 30, size: 'medium' }), { minLength: 1, maxLength: 80, size: 'max' }),
        (initial, extra, topics) => {
          const max = initial + extra;
          const w = new SharedRegistryWriter(initial, max);
          let used = 64;
          const ids: [string, number][] = [];
          for (const topic of new Set(topics)) {
            const need = align8(8 + utf8Bytes(JSON.stringify({ topic })));
            if (used + need > max) {
              let err: unknown;
              try {
                w.topicId(topic);
              } catch (e) {
                err = e;
              }
              expect(err).toBeInstanceOf(RangeError);
              expect((err as RangeError).message).toContain(`(${max} bytes, ${ids.length} entries)`);
              continue;
            }
            used += need;
            ids.push([topic, w.topicId(topic)]);
            expect(w.sab.byteLength).toBeGreaterThanOrEqual(used);
            expect(w.sab.byteLength).toBeLessThanOrEqual(max);
          }
          const reader = new SharedRegistryReader(w.sab);
          ids.forEach(([topic, id], i) => {
            same(id, i, 'id');
            expect(reader.get(id)).toEqual({ kind: ENTRY_TOPIC, topic });
            same(w.topicId(topic), id, 'id of a known topic');
          });
        },
      ),
      { numRuns: 150, ...BOUNDED },
    );
  });

  // A key joined with '#' once gave these two handlers one id (the second ran the first one's code).
  it('distinct handlers get distinct ids even when module or export name hold a #', () => {
    const w = new SharedRegistryWriter(4096);
    const a = w.handlerId('t', 'file:///h.js#v2', 'run', 'h', -1);
    const b = w.handlerId('t', 'file:///h.js', 'v2#run', 'h', -1);
    const c = w.handlerId('t', 'file:///h.js', 'v2', 'run#h', -1);
    expect(new Set([a, b, c]).size).toBe(3);
    expect(w.entry(b)).toEqual({ kind: ENTRY_HANDLER, module: 'file:///h.js', exportName: 'v2#run', name: 'h', breaker: -1 });
  });
});

// ==================================================================== metrics mailbox

const reportedSeries = fc.array(
  fc.record({ key: fc.nat(600), pairs: fc.array(fc.tuple(fc.nat(4863), fc.nat({ max: 2 ** 40 })), { maxLength: 6 }) }), { maxLength: 8 },
).map((list) => list.map(({ key, pairs }) => ({ key, pairs: pairs.flat() })));
const report: fc.Arbitrary<WorkerMetricsReport> = fc.record({
  task: fc.nat(),
  seq: fc.integer({ min: 1, max: 2 ** 30 }),
  succeeded: fc.array(fc.record({ key: fc.nat(600), count: fc.nat() }), { maxLength: 8 }),
  processing: reportedSeries,
  endToEnd: reportedSeries,
});
const emptyReport = (seq: number): WorkerMetricsReport => ({ task: 1, seq, succeeded: [], processing: [], endToEnd: [] });

describe('metrics mailbox', () => {
  it('reads back the last report written; reset makes it read undefined', () => {
    fc.assert(
      fc.property(fc.array(report, { minLength: 1, maxLength: 5 }), (reports) => {
        const sab = new SharedArrayBuffer(8 * 1024);
        expect(readMailbox(sab)).toBeUndefined();
        for (const r of reports) {
          expect(writeMailbox(sab, r)).toBe(true);
          expect(readMailbox(sab)).toEqual(r);
        }
        resetMailbox(sab);
        expect(readMailbox(sab)).toBeUndefined();
        expect(writeMailbox(sab, reports[0])).toBe(true);
        expect(readMailbox(sab)).toEqual(reports[0]);
      }),
      { numRuns: 100, ...BOUNDED },
    );
  });

  it('acknowledges what main read, and returns the same report without decoding while nothing new was written', () => {
    const sab = newMailbox();
    expect(acknowledged(sab)).toBe(0);
    writeMailbox(sab, { ...emptyReport(3), succeeded: [{ key: 7, count: 2 }] });
    expect(acknowledged(sab)).toBe(0); // written, not read yet
    const first = readMailbox(sab);
    expect(first?.seq).toBe(3);
    expect(acknowledged(sab)).toBe(3);
    expect(readMailbox(sab)).toBe(first);
    writeMailbox(sab, emptyReport(4));
    expect(readMailbox(sab)?.seq).toBe(4);
    resetMailbox(sab);
    expect(acknowledged(sab)).toBe(0);
  });

  it('grows to hold a large report, and refuses one larger than it can grow (keeping the last one)', () => {
    const sab = newMailbox();
    const big: WorkerMetricsReport = { ...emptyReport(1), endToEnd: [{ key: 3, pairs: Array.from({ length: 40_000 }, (_, i) => i) }] };
    expect(writeMailbox(sab, big)).toBe(true);
    expect(sab.byteLength).toBeGreaterThan(MAILBOX_BYTES);
    expect(readMailbox(sab)).toEqual(big);

    const fixed = new SharedArrayBuffer(128);
    const small: WorkerMetricsReport = { ...emptyReport(1), succeeded: [{ key: 1, count: 2 }] };
    expect(writeMailbox(fixed, small)).toBe(true);
    expect(writeMailbox(fixed, { ...emptyReport(2), processing: [{ key: 1, pairs: new Float64Array(100) }] })).toBe(false);
    expect(readMailbox(fixed)).toEqual(small);
  });

  it('gives up (undefined) rather than spin when a write never completes', () => {
    const sab = new SharedArrayBuffer(128);
    writeMailbox(sab, emptyReport(1));
    Atomics.store(new Int32Array(sab), 0, 3); // a writer that died mid-write: VERSION stays odd
    expect(readMailbox(sab)).toBeUndefined();
  });
});

// ==================================================================== error text

const LONE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function oddThrownValues(): [string, unknown][] {
  const revocable = Proxy.revocable({}, {});
  revocable.revoke();
  const revocableError = Proxy.revocable(new Error('x'), {});
  revocableError.revoke();
  const throwing = (): never => {
    throw new Error('no');
  };
  const trapAll = new Proxy({}, { get: throwing, getPrototypeOf: throwing, has: throwing, ownKeys: throwing, getOwnPropertyDescriptor: throwing });
  const errWithObjectMessage = new Error('x');
  Object.defineProperty(errWithObjectMessage, 'message', { value: { toString: throwing } });
  const errWithSymbolMessage = new Error('x');
  Object.defineProperty(errWithSymbolMessage, 'message', { value: Symbol('m') });
  const errWithNumberMessage = new Error('x');
  Object.defineProperty(errWithNumberMessage, 'message', { value: 42 });
  const errWithThrowingGetter = new Error('x');
  Object.defineProperty(errWithThrowingGetter, 'message', { get: throwing });
  const tagThrows = { get [Symbol.toStringTag](): string { return throwing(); }, toString: throwing };
  return [
    ['null', null],
    ['undefined', undefined],
    ['symbol', Symbol('s')],
    ['symbol without description', Symbol()],
    ['bigint', 10n],
    ['function', function named() {}],
    ['object with throwing toString', { toString: throwing }],
    ['object with throwing toPrimitive', { [Symbol.toPrimitive]: throwing }],
    ['null-prototype object', Object.create(null)],
    ['object whose toStringTag and toString throw', tagThrows],
    ['error with an object message whose toString throws', errWithObjectMessage],
    ['error with a symbol message', errWithSymbolMessage],
    ['error with a number message', errWithNumberMessage],
    ['error whose message getter throws', errWithThrowingGetter],
    ['revoked proxy', revocable.proxy],
    ['revoked proxy of an error', revocableError.proxy],
    ['proxy whose traps all throw', trapAll],
    ['huge string', '😀'.repeat(10_000)],
  ];
}

describe('errorText', () => {
  it('never throws for odd thrown values, and returns a string within the limit', () => {
    for (const [what, value] of oddThrownValues()) {
      let text: unknown;
      expect(() => (text = errorText(value)), what).not.toThrow();
      expect(typeof text, what).toBe('string');
      expect(utf8Bytes(text as string), what).toBeLessThanOrEqual(MAX_ERROR_TEXT_BYTES);
      expect(typeof errorMessage(value), what).toBe('string');
    }
    const revocable = Proxy.revocable({}, {});
    revocable.revoke();
    expect(errorText(revocable.proxy)).toBe('non-error value thrown');
    expect(errorText(Object.create(null))).toBe('non-error value thrown: [object Object]');
    const numberMessage = new Error('x');
    Object.defineProperty(numberMessage, 'message', { value: 42 });
    expect(errorText(numberMessage)).toBe('42');
    expect(errorText(Symbol('s'))).toBe('Symbol(s)');
  });

  it('never throws for anything', () => {
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withMap: true, withSet: true, withNullPrototype: true, withBoxedValues: true, withTypedArray: true }), (value) => {
        const text = errorText(value);
        expect(typeof text).toBe('string');
        expect(utf8Bytes(text)).toBeLessThanOrEqual(MAX_ERROR_TEXT_BYTES);
      }),
      { numRuns: 200, ...BOUNDED },
    );
  });

  it('caps the message at MAX_ERROR_TEXT_BYTES of UTF-8 without splitting a surrogate pair', () => {
    const piece = fc.oneof(
      fc.nat(3000).map((n) => 'a'.repeat(n)),
      fc.nat(1500).map((n) => 'é'.repeat(n)),
      fc.nat(1500).map((n) => '€'.repeat(n)),
      fc.nat(1500).map((n) => '😀'.repeat(n)),
      fc.string({ unit: 'binary', maxLength: 200 }),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 6 }), fc.boolean(), (pieces, asError) => {
        const message = pieces.join('');
        const text = errorText(asError ? new Error(message) : message);
        const bytes = utf8Bytes(text);
        expect(bytes).toBeLessThanOrEqual(MAX_ERROR_TEXT_BYTES);
        expect(message.startsWith(text)).toBe(true);
        expect(LONE.test(text)).toBe(false);
        if (utf8Bytes(message) <= MAX_ERROR_TEXT_BYTES) expect(text).toBe(message);
        // Cut, not gutted.
        else expect(bytes).toBeGreaterThan(MAX_ERROR_TEXT_BYTES / 2);
      }),
      { numRuns: 200, ...BOUNDED },
    );
  });

  it('errorName: the name of a thrown Error, cut to MAX_ERROR_NAME_LENGTH; never throws', () => {
    for (const [what, value] of oddThrownValues()) {
      let name: unknown;
      expect(() => (name = errorName(value)), what).not.toThrow();
      expect(typeof name, what).toBe('string');
    }
    expect(errorName(new TypeError('x'))).toBe('TypeError');
    expect(errorName('TypeError')).toBe('');
    expect(errorName({ name: 'Error', message: 'x' })).toBe('');
    const long = new Error('x');
    long.name = 'N'.repeat(1000);
    expect(errorName(long)).toBe('N'.repeat(MAX_ERROR_NAME_LENGTH));
    const odd = new Error('x');
    Object.defineProperty(odd, 'name', { value: 42 });
    expect(errorName(odd)).toBe('');
    const getter = new Error('x');
    Object.defineProperty(getter, 'name', { get: () => { throw new Error('no'); } });
    expect(errorName(getter)).toBe('');
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withNullPrototype: true }), (value) => {
        expect(typeof errorName(value)).toBe('string');
      }),
      { numRuns: 100, ...BOUNDED },
    );
  });

  it('drops the high half of a pair the cut would split, at every cut position around the limit', () => {
    for (let lead = 0; lead < 12; lead++) {
      const message = 'a'.repeat(MAX_ERROR_TEXT_BYTES - 6 + lead) + '😀'.repeat(4);
      const text = errorText(message);
      expect(LONE.test(text)).toBe(false);
      expect(utf8Bytes(text)).toBeLessThanOrEqual(MAX_ERROR_TEXT_BYTES);
      expect(message.startsWith(text)).toBe(true);
    }
  });
});

// ==================================================================== lane picker

describe('lane picker', () => {
  it('picks a lane with work (-1 when none has), the highest one unless a lower one starved', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.boolean(), { minLength: LANE_COUNT, maxLength: LANE_COUNT }), { maxLength: 200 }), (rounds) => {
        const picker = new LanePicker();
        const passedOver = new Array<number>(LANE_COUNT).fill(0);
        for (const work of rounds) {
          const lane = picker.pick((l) => work[l]);
          const highest = work.indexOf(true);
          if (highest < 0) {
            expect(lane).toBe(-1);
            continue;
          }
          expect(work[lane]).toBe(true);
          // A lower lane than the highest with work is picked only once it was passed over more than STARVATION_LIMIT times.
          for (let l = highest + 1; l < LANE_COUNT; l++) if (work[l]) passedOver[l]++;
          if (lane !== highest) expect(passedOver[lane]).toBeGreaterThan(STARVATION_LIMIT);
          passedOver[lane] = 0;
        }
      }),
      { numRuns: 150, ...BOUNDED },
    );
  });

  it('under saturation every lane is served; lane L at least once in STARVATION_LIMIT + LANE_COUNT - L picks', () => {
    const picker = new LanePicker();
    const last = new Array<number>(LANE_COUNT).fill(0);
    const gap = new Array<number>(LANE_COUNT).fill(0);
    for (let i = 1; i <= 50 * (STARVATION_LIMIT + LANE_COUNT); i++) {
      const lane = picker.pick(() => true);
      gap[lane] = Math.max(gap[lane], i - last[lane]);
      last[lane] = i;
    }
    for (let lane = 1; lane < LANE_COUNT; lane++) expect(gap[lane]).toBeLessThanOrEqual(STARVATION_LIMIT + LANE_COUNT - lane);
    expect(gap[0]).toBeLessThanOrEqual(LANE_COUNT);
  });
});
