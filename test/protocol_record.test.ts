/**
 * Property tests of the record codec (src/protocol/record.ts): what main
 * encodes with RecordEncoder, workers and main read back with RecordHeader,
 * decodeRecord and rewriteRecord, for every payload kind and header value.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { align8 } from '../src/protocol/layout.js';
import {
  REC_HEADER_BYTES, RF_BINARY, RF_COMMAND, RF_CONTINUATION, RF_DETACHED, RF_LANE_SHIFT, RF_TRACKED, RF_UNDEFINED, RecordEncoder, RecordHeader,
  decodeRecord, recordFlags, recordLength, recordSeq, recordTopic, rewriteRecord, standaloneView, viewOf, type RecordView,
} from '../src/protocol/record.js';

// ------------------------------------------------------------------ arbitraries

/**
 * A failing property reports within seconds: shrinking a long operation list
 * can otherwise run for minutes. (Passing runs take well under a second.)
 */
const BOUNDED = { interruptAfterTimeLimit: 10_000 };
const RUNS = { numRuns: 200, ...BOUNDED };

/** Any UTF-16 code unit, lone surrogates included (JSON.stringify escapes those). */
const anyCodeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
/** Well-formed text of any code point: what survives a UTF-8 round trip unchanged. */
const unicodeText = (minLength: number, maxLength: number): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ unit: 'binary', minLength, maxLength, size: 'max' }),
    fc.string({ unit: 'grapheme', minLength, maxLength, size: 'max' }),
    fc.string({ unit: 'binary-ascii', minLength, maxLength, size: 'max' }),
  );

type PayloadSpec =
  | { kind: 'json'; value: unknown }
  | { kind: 'undefined' }
  | { kind: 'binary'; bytes: Uint8Array };

const jsonPayload: fc.Arbitrary<PayloadSpec> = fc
  .oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.jsonValue({ maxDepth: 2, stringUnit: 'binary' }),
    fc.string({ unit: anyCodeUnit, maxLength: 40, size: 'max' }),
    unicodeText(0, 60),
    fc.double(),
    fc.integer(),
    fc.constant(null),
    fc.array(fc.oneof(fc.string({ unit: 'grapheme' }), fc.integer(), fc.boolean(), fc.constant(null)), { maxLength: 10 }),
    fc.dictionary(fc.string({ unit: anyCodeUnit, maxLength: 8 }), fc.oneof(fc.string({ unit: 'binary' }), fc.double())),
  )
  .map((value) => ({ kind: 'json' as const, value }));

const payloadSpec: fc.Arbitrary<PayloadSpec> = fc.oneof(
  { arbitrary: jsonPayload, weight: 3 },
  { arbitrary: fc.constant({ kind: 'undefined' as const }), weight: 1 },
  { arbitrary: fc.uint8Array({ maxLength: 300, size: 'max' }).map((bytes) => ({ kind: 'binary' as const, bytes })), weight: 2 },
);

/** Flag bits besides the payload kind: tracked/command/continuation/detached, the lane, and arbitrary high bits. */
const extraFlags = fc
  .record({
    tracked: fc.boolean(),
    command: fc.boolean(),
    continuation: fc.boolean(),
    detached: fc.boolean(),
    lane: fc.integer({ min: 0, max: 3 }),
    high: fc.integer({ min: 0, max: (1 << 21) - 1 }),
  })
  .map((f) => (f.tracked ? RF_TRACKED : 0) | (f.command ? RF_COMMAND : 0) | (f.continuation ? RF_CONTINUATION : 0)
    | (f.detached ? RF_DETACHED : 0) | (f.lane << RF_LANE_SHIFT) | (f.high << 10));

const anyFloat = fc.oneof(fc.maxSafeNat(), fc.double());

interface RecordSpec {
  flags: number;
  topicId: number;
  attempt: number;
  seq: number;
  publishedAt: number;
  handlerIds: number[];
  session: string | undefined;
  id: string | undefined;
  payload: PayloadSpec;
}

const recordSpec: fc.Arbitrary<RecordSpec> = fc.record({
  flags: extraFlags,
  topicId: fc.integer(),
  attempt: fc.oneof(fc.nat(10), fc.integer()),
  seq: anyFloat,
  publishedAt: anyFloat,
  handlerIds: fc.array(fc.integer(), { maxLength: 24, size: 'max' }),
  // The bus refuses an empty session id; the codec must handle absent and any non-empty one.
  session: fc.option(unicodeText(1, 40), { nil: undefined }),
  id: fc.option(unicodeText(1, 30), { nil: undefined }),
  payload: payloadSpec,
});

// ------------------------------------------------------------------ helpers

/** Bytes equal (vitest's deep equality walks typed arrays element by element: slow in properties). */
function expectSameBytes(actual: unknown, expected: Uint8Array): void {
  expect(actual).toBeInstanceOf(Uint8Array);
  const a = actual as Uint8Array;
  if (!Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength))) {
    expect(a).toEqual(expected); // for the diff
  }
}

function expectPayload(actual: unknown, p: PayloadSpec): void {
  if (p.kind === 'binary') expectSameBytes(actual, p.bytes);
  else expect(actual).toEqual(expectedPayload(p));
}

/** Fills an encoder the way the publisher does (payload_encoding.ts, in_flight.ts). */
function encoderFor(s: RecordSpec, e = new RecordEncoder()): RecordEncoder {
  e.clear();
  e.topicId = s.topicId;
  e.attempt = s.attempt;
  e.seq = s.seq;
  e.publishedAt = s.publishedAt;
  e.handlerIds = s.handlerIds;
  e.setSession(s.session);
  e.setId(s.id);
  const p = s.payload;
  if (p.kind === 'binary') {
    e.flags = s.flags | RF_BINARY;
    e.binary = p.bytes;
    e.payloadBytes = p.bytes.byteLength;
  } else if (p.kind === 'undefined') {
    e.flags = s.flags | RF_UNDEFINED;
    e.payloadBytes = 0;
  } else {
    const text = JSON.stringify(p.value);
    e.flags = s.flags;
    e.text = text;
    e.payloadBytes = Buffer.byteLength(text);
  }
  return e;
}

/** The payload a reader must see: JSON values as JSON.parse(JSON.stringify(v)) gives them (-0 becomes 0, …). */
function expectedPayload(p: PayloadSpec): unknown {
  if (p.kind === 'binary') return p.bytes;
  if (p.kind === 'undefined') return undefined;
  return JSON.parse(JSON.stringify(p.value));
}

const expectedFlags = (s: RecordSpec): number =>
  s.flags | (s.payload.kind === 'binary' ? RF_BINARY : s.payload.kind === 'undefined' ? RF_UNDEFINED : 0);

const utf8 = (s: string | undefined): number => (s === undefined ? 0 : Buffer.byteLength(s));

function expectedRecordBytes(s: RecordSpec): number {
  const payload = s.payload.kind === 'binary' ? s.payload.bytes.byteLength
    : s.payload.kind === 'undefined' ? 0 : Buffer.byteLength(JSON.stringify(s.payload.value));
  return align8(REC_HEADER_BYTES + 4 * s.handlerIds.length + utf8(s.session) + utf8(s.id) + payload);
}

/** Reads every field of the record at `off` with RecordHeader, the way a worker does. */
function readAt(view: RecordView, off: number) {
  const h = new RecordHeader().read(view, off);
  const handlerIds: number[] = [];
  for (let i = 0; i < h.handlerCount; i++) handlerIds.push(view.i32[h.handlersWord + i]);
  return {
    h,
    handlerIds,
    sessionId: h.sessionId(view),
    id: h.id(view),
    payload: h.flags & RF_BINARY ? h.payloadView(view).slice() : h.jsonPayload(view),
  };
}

function expectMatches(s: RecordSpec, got: ReturnType<typeof readAt>, off: number): void {
  const { h } = got;
  expect(h.off).toBe(off);
  expect(h.recordBytes).toBe(expectedRecordBytes(s));
  expect(h.recordBytes % 8).toBe(0);
  expect(h.flags).toBe(expectedFlags(s));
  expect(h.lane).toBe((s.flags >> RF_LANE_SHIFT) & 3);
  expect(h.topicId).toBe(s.topicId);
  expect(h.attempt).toBe(s.attempt);
  expect(Object.is(h.seq, s.seq)).toBe(true);
  expect(Object.is(h.publishedAt, s.publishedAt)).toBe(true);
  expect(h.handlerCount).toBe(s.handlerIds.length);
  expect(got.handlerIds).toEqual(s.handlerIds);
  expect(h.sessionBytes).toBe(utf8(s.session));
  expect(h.idBytes).toBe(utf8(s.id));
  expect(got.sessionId).toBe(s.session);
  expect(got.id).toBe(s.id);
  expectPayload(got.payload, s.payload);
  // Every part lies inside the record.
  expect(h.payloadAt + h.payloadBytes).toBeLessThanOrEqual(off + h.recordBytes);
}

function expectDecoded(s: RecordSpec, d: ReturnType<typeof decodeRecord>): void {
  expect(d.flags).toBe(expectedFlags(s));
  expect(d.lane).toBe((s.flags >> RF_LANE_SHIFT) & 3);
  expect(d.topicId).toBe(s.topicId);
  expect(d.attempt).toBe(s.attempt);
  expect(Object.is(d.seq, s.seq)).toBe(true);
  expect(Object.is(d.publishedAt, s.publishedAt)).toBe(true);
  expect(d.handlerIds).toBeInstanceOf(Int32Array);
  expect(Array.from(d.handlerIds)).toEqual(s.handlerIds);
  expect(d.sessionId).toBe(s.session);
  expect(d.id).toBe(s.id);
  expectPayload(d.payload, s.payload);
}

// ------------------------------------------------------------------ tests

describe('record codec', () => {
  it('recordBytes is a multiple of 8 and counts header, handler ids, session, id and payload', () => {
    fc.assert(
      fc.property(recordSpec, (s) => {
        const e = encoderFor(s);
        expect(e.recordBytes % 8).toBe(0);
        expect(e.recordBytes).toBe(expectedRecordBytes(s));
        expect(e.recordBytes - (REC_HEADER_BYTES + 4 * s.handlerIds.length + e.sessionBytes + e.idBytes + e.payloadBytes))
          .toBeLessThan(8);
      }),
      RUNS,
    );
  });

  it('writeTo at an 8-aligned offset inside a bigger buffer round-trips through RecordHeader and touches nothing else', () => {
    fc.assert(
      fc.property(
        recordSpec,
        fc.nat(40).map((n) => n * 8),
        fc.nat(64),
        fc.boolean(),
        fc.constantFrom(0, 8, 64),
        (s, off, tail, shared, viewOffset) => {
          const e = encoderFor(s);
          const total = viewOffset + off + e.recordBytes + tail;
          const buffer = shared ? new SharedArrayBuffer(total) : new ArrayBuffer(total);
          const raw = new Uint8Array(buffer);
          raw.fill(0xa5);
          const view = viewOf(buffer, viewOffset);
          e.writeTo(view, off);
          // Nothing outside [off, off + recordBytes) of the view changed.
          const start = viewOffset + off;
          for (let i = 0; i < start; i++) if (raw[i] !== 0xa5) expect.fail(`byte ${i} before the record changed`);
          for (let i = start + e.recordBytes; i < total; i++) if (raw[i] !== 0xa5) expect.fail(`byte ${i} after the record changed`);
          const got = readAt(view, off);
          expectMatches(s, got, off);
          expect(got.h.recordBytes).toBe(e.recordBytes);
          // The header accessors main uses on records in place agree.
          expect(recordLength(view, off)).toBe(e.recordBytes);
          expect(recordFlags(view, off)).toBe(expectedFlags(s));
          expect(recordTopic(view, off)).toBe(s.topicId);
          expect(Object.is(recordSeq(view, off), s.seq)).toBe(true);
        },
      ),
      RUNS,
    );
  });

  it('one reused encoder writes records back to back that each read back intact', () => {
    fc.assert(
      fc.property(fc.array(recordSpec, { minLength: 1, maxLength: 6 }), (specs) => {
        const e = new RecordEncoder();
        const sizes = specs.map((s) => encoderFor(s, e).recordBytes);
        const buffer = new SharedArrayBuffer(sizes.reduce((a, b) => a + b, 0));
        new Uint8Array(buffer).fill(0xff);
        const view = viewOf(buffer);
        let off = 0;
        for (const s of specs) {
          encoderFor(s, e).writeTo(view, off);
          off += e.recordBytes;
        }
        off = 0;
        for (const s of specs) {
          const got = readAt(view, off);
          expectMatches(s, got, off);
          off += got.h.recordBytes;
        }
        expect(off).toBe(buffer.byteLength);
      }),
      RUNS,
    );
  });

  it('toStandalone + decodeRecord matches the input', () => {
    fc.assert(
      fc.property(recordSpec, (s) => {
        const e = encoderFor(s);
        const copy = e.toStandalone();
        expect(copy.byteLength).toBe(e.recordBytes);
        const d = decodeRecord(copy);
        expectDecoded(s, d);
        // A binary payload is a copy, not a view of the record.
        if (s.payload.kind === 'binary' && s.payload.bytes.byteLength > 0) {
          const before = (d.payload as Uint8Array)[0];
          copy.fill(before ^ 0xff);
          expect((d.payload as Uint8Array)[0]).toBe(before);
        }
      }),
      RUNS,
    );
  });

  it('decodeRecord reads a record inside a bigger buffer (8-aligned subarray)', () => {
    fc.assert(
      fc.property(recordSpec, fc.nat(16).map((n) => n * 8), (s, at) => {
        const copy = encoderFor(s).toStandalone();
        const big = new Uint8Array(at + copy.byteLength + 24).fill(0x5a);
        big.set(copy, at);
        expectDecoded(s, decodeRecord(big.subarray(at, at + copy.byteLength)));
        const h = new RecordHeader().read(standaloneView(big.subarray(at)), 0);
        expect(h.recordBytes).toBe(copy.byteLength);
      }),
      RUNS,
    );
  });

  it('rewriteRecord keeps everything but the handler ids, the attempt and the added flags', () => {
    fc.assert(
      fc.property(
        recordSpec,
        fc.array(fc.integer(), { maxLength: 24, size: 'max' }),
        fc.integer(),
        fc.constantFrom(0, RF_TRACKED, RF_CONTINUATION, RF_TRACKED | RF_CONTINUATION, RF_TRACKED | RF_CONTINUATION | RF_DETACHED),
        fc.nat(8).map((n) => n * 8),
        (s, handlerIds, attempt, addFlags, at) => {
          const original = encoderFor(s).toStandalone();
          // The source may sit inside a bigger buffer, as long as it is 8-aligned.
          const holder = new Uint8Array(at + original.byteLength);
          holder.set(original, at);
          const src = holder.subarray(at);
          const rewritten = rewriteRecord(src, Int32Array.from(handlerIds), attempt, addFlags);
          const d = decodeRecord(rewritten);
          expectDecoded({ ...s, handlerIds, attempt, flags: s.flags | addFlags }, d);
          expect(rewritten.byteLength).toBe(expectedRecordBytes({ ...s, handlerIds }));
          expect(rewritten.byteLength % 8).toBe(0);
          // The source is left as it was.
          expectSameBytes(holder.subarray(at), original);
          // Rewriting back restores the handler ids and attempt (flags are only ever added).
          expectDecoded({ ...s, flags: s.flags | addFlags }, decodeRecord(rewriteRecord(rewritten, s.handlerIds, s.attempt)));
        },
      ),
      RUNS,
    );
  });

  it('rewriteRecord accepts a plain number array and an empty handler list', () => {
    fc.assert(
      fc.property(recordSpec, (s) => {
        const d = decodeRecord(rewriteRecord(encoderFor(s).toStandalone(), [], 0));
        expectDecoded({ ...s, handlerIds: [], attempt: 0 }, d);
      }),
      { numRuns: 50, ...BOUNDED },
    );
  });

  it('snapshot/restore keeps the payload even when the caller reuses its bytes', () => {
    fc.assert(
      fc.property(recordSpec, (s) => {
        const e = encoderFor(s);
        const snap = e.snapshot();
        if (s.payload.kind === 'binary') s.payload.bytes.fill(0x42);
        const expected = s.payload.kind === 'binary' ? { ...s, payload: { kind: 'binary' as const, bytes: snap.binary! } } : s;
        // Another publish reuses the encoder in between.
        encoderFor({ ...s, session: 'other', payload: { kind: 'json', value: 'x' } }, e);
        e.restore(snap);
        expectPayload(decodeRecord(e.toStandalone()).payload, expected.payload);
        expect(decodeRecord(e.toStandalone()).sessionId).toBe(s.session);
      }),
      { numRuns: 100, ...BOUNDED },
    );
  });

  it('handles the limits: 512 handler ids, long multi-byte session and id, large binary', () => {
    const e = encoderFor({
      flags: RF_TRACKED | (3 << RF_LANE_SHIFT), topicId: 2 ** 31 - 1, attempt: 2 ** 31 - 1, seq: Number.MAX_SAFE_INTEGER,
      publishedAt: -0, handlerIds: Array.from({ length: 512 }, (_, i) => i * 7919 - 1_000_000),
      session: '😀'.repeat(256), id: 'é'.repeat(128),
      payload: { kind: 'binary', bytes: Uint8Array.from({ length: 70_001 }, (_, i) => i * 31) },
    });
    expect(e.sessionBytes).toBe(1024);
    expect(e.idBytes).toBe(256);
    const d = decodeRecord(e.toStandalone());
    expect(d.handlerIds.length).toBe(512);
    expect(d.handlerIds[511]).toBe(511 * 7919 - 1_000_000);
    expect(d.sessionId).toBe('😀'.repeat(256));
    expect(d.id).toBe('é'.repeat(128));
    expect(Object.is(d.publishedAt, -0)).toBe(true);
    expect((d.payload as Uint8Array).byteLength).toBe(70_001);
    expect((d.payload as Uint8Array)[70_000]).toBe((70_000 * 31) & 0xff);
    expect(d.lane).toBe(3);
  });

  it('an empty binary payload and an undefined payload are told apart', () => {
    const base: RecordSpec = {
      flags: 0, topicId: 1, attempt: 0, seq: 1, publishedAt: 1, handlerIds: [], session: undefined, id: undefined,
      payload: { kind: 'binary', bytes: new Uint8Array(0) },
    };
    const bin = decodeRecord(encoderFor(base).toStandalone());
    expect(bin.payload).toEqual(new Uint8Array(0));
    const undef = decodeRecord(encoderFor({ ...base, payload: { kind: 'undefined' } }).toStandalone());
    expect(undef.payload).toBeUndefined();
    expect(undef.flags & RF_UNDEFINED).toBe(RF_UNDEFINED);
    expect(encoderFor(base).recordBytes).toBe(REC_HEADER_BYTES);
  });
});
