/**
 * The producer loops of `ringbus bench`:
 *  - produceAtRate: a fixed rate on schedule (event i due at t0 + i/rate), timer-driven, sleeping until the
 *    next event is due, so a low rate costs the benchmark no idle wake-ups;
 *  - produceNatural: the loop a user writes, `if (!bus.publish(t, p)) await bus.publishAsync(t, p)`, with no
 *    other yield, so it measures what an app gets;
 *  - produceChunked: the tuned loop, 4,096 publishes per turn of the event loop and setImmediate while full.
 * The two max loops can take marks: bus.stats().processed at given offsets, read from inside the loop (every
 * 1,024 events), so a steady-state window needs no timer (the natural loop may not yield for a whole round).
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Histogram } from 'hdr-histogram-js';
import type { MessageBus } from '../src/index.js';
import { TOPIC, ns, type PayloadOf } from './shared.js';

export interface Produced {
  attempted: number;
  accepted: number;
  rejected: number;
  ms: number;
}

/** Publishing at most this many events per turn of the event loop at a fixed rate. */
const RATE_CHUNK = 512;

/**
 * Publishes `rate` events/s for `seconds` on schedule. A timer loop publishes
 * what is due in small chunks and yields, so the event loop (the bus's
 * completions, the sampler) never waits long. With `rec`, each publish() call
 * is timed into an HDR histogram (with the expected interval, coordinated-
 * omission aware), and its lag behind schedule.
 */
export function produceAtRate(bus: MessageBus, payloadOf: PayloadOf, rate: number, seconds: number,
  rec?: { publish: Histogram; publishRaw: Histogram; lag: Histogram; intervalNs: number }): Promise<Produced> {
  const total = Math.max(1, Math.round(rate * seconds));
  const periodMs = 1000 / rate;
  let i = 0;
  let accepted = 0;
  const t0 = performance.now();
  return new Promise((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor((performance.now() - t0) / periodMs) + 1);
      const end = Math.min(due, i + RATE_CHUNK);
      if (rec !== undefined) {
        const { publish, publishRaw, lag, intervalNs } = rec;
        for (; i < end; i++) {
          const a = performance.now();
          const ok = bus.publish(TOPIC, payloadOf(i));
          const b = performance.now();
          publish.recordValueWithExpectedInterval(ns(b - a), intervalNs);
          publishRaw.recordValue(ns(b - a));
          lag.recordValue(ns(a - (t0 + i * periodMs)));
          if (ok) accepted++;
        }
      } else {
        for (; i < end; i++) if (bus.publish(TOPIC, payloadOf(i))) accepted++;
      }
      if (i >= total) {
        resolve({ attempted: total, accepted, rejected: total - accepted, ms: performance.now() - t0 });
      } else if (i < due) {
        setImmediate(tick); // behind schedule: go on after one turn of the loop
      } else {
        setTimeout(tick, Math.max(1, t0 + i * periodMs - performance.now())); // until event i is due
      }
    };
    tick();
  });
}

/** bus.stats().processed at a moment, read inside a producer loop. */
export interface Mark {
  t: number;
  processed: number;
}

export interface MaxProduced extends Produced {
  /** One per requested offset, in order (a mark not reached is taken at the end). */
  marks: Mark[];
}

/** Records the marks whose offset (s after t0) has passed. */
function marker(bus: MessageBus, t0: number, offsets: number[]): { check: (now: number) => void; finish: () => void; marks: Mark[] } {
  const marks: Mark[] = [];
  return {
    marks,
    check(now) {
      while (marks.length < offsets.length && now >= t0 + offsets[marks.length] * 1000) {
        marks.push({ t: now, processed: bus.stats().processed });
      }
    },
    finish() {
      while (marks.length < offsets.length) marks.push({ t: performance.now(), processed: bus.stats().processed });
    },
  };
}

/**
 * The natural producer loop, as fast as possible for `seconds`: publish, and
 * only when publish() refuses (the queue is full) await publishAsync. With
 * `rec`, each publish() call is timed.
 */
export async function produceNatural(bus: MessageBus, payloadOf: PayloadOf, seconds: number,
  opts: { marks?: number[]; publish?: Histogram } = {}): Promise<MaxProduced> {
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const mark = marker(bus, t0, opts.marks ?? []);
  const rec = opts.publish;
  let i = 0;
  let waits = 0;
  for (let now = t0; now < deadline; now = performance.now()) {
    mark.check(now);
    const end = i + 1024;
    for (; i < end; i++) {
      const p = payloadOf(i);
      if (rec === undefined) {
        if (!bus.publish(TOPIC, p)) {
          waits++;
          await bus.publishAsync(TOPIC, p);
        }
      } else {
        const a = performance.now();
        const ok = bus.publish(TOPIC, p);
        rec.recordValue(ns(performance.now() - a));
        if (!ok) {
          waits++;
          await bus.publishAsync(TOPIC, p);
        }
      }
    }
  }
  mark.finish();
  // A refused publish() was followed by a publishAsync that got in: `rejected` counts the waits.
  return { attempted: i + waits, accepted: i, rejected: waits, ms: performance.now() - t0, marks: mark.marks };
}

/** The tuned loop: 4,096 publishes per turn of the event loop, setImmediate while the queue is full. */
export async function produceChunked(bus: MessageBus, payloadOf: PayloadOf, seconds: number,
  opts: { marks?: number[] } = {}): Promise<MaxProduced> {
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const mark = marker(bus, t0, opts.marks ?? []);
  let i = 0;
  let refused = 0;
  for (let now = t0; now < deadline; now = performance.now()) {
    mark.check(now);
    const end = i + 4096;
    while (i < end) {
      if (bus.publish(TOPIC, payloadOf(i))) {
        i++;
        if ((i & 1023) === 0) mark.check(performance.now());
      } else {
        refused++;
        await yieldToLoop();
      }
    }
    await yieldToLoop();
  }
  mark.finish();
  return { attempted: i + refused, accepted: i, rejected: refused, ms: performance.now() - t0, marks: mark.marks };
}
