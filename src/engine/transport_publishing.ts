/**
 * Publishing with a transport: the encoded event goes to the stream (the
 * transport's publish window) instead of a lane, and a command whose
 * handler is not in this process goes to one that has it. Events are
 * counted as published once the window took them.
 */
import { BackpressureError } from '../errors.js';
import type { RecordEncoder } from '../protocol/record.js';
import type { Transport } from '../transport.js';
import type { CommandResult } from '../types.js';
import type { EngineParts } from './parts.js';
import { PublishTally } from './publish_tally.js';

export class TransportPublishing {
  readonly #p: EngineParts;
  readonly #encoder: RecordEncoder;
  readonly #tally: PublishTally;
  /** The publisher's event numbering (ids are unique per bus). */
  readonly #nextSeq: () => number;

  constructor(p: EngineParts, encoder: RecordEncoder, nextSeq: () => number) {
    this.#p = p;
    this.#encoder = encoder;
    this.#tally = new PublishTally(p);
    this.#nextSeq = nextSeq;
  }

  /** The event in the encoder to the transport; false (counted as rejected when `count`) when its window is full or the bus stops. */
  offer(topic: string, lane: number, count: boolean, onStored?: () => void): boolean {
    const p = this.#p;
    const r = this.#encoder;
    if (!p.lifecycle.accepting) {
      r.clear();
      this.#tally.rejected(topic);
      return false;
    }
    const seq = this.#nextSeq();
    // A delayed event keeps the id bus.scheduled showed.
    if (!p.transport!.offer(topic, lane, r, r.id ?? p.memory.idPrefix + seq, performance.timeOrigin + performance.now(), onStored)) {
      if (count) {
        r.clear();
        this.#tally.rejected(topic);
      }
      return false;
    }
    r.clear();
    p.counters.published++;
    this.#tally.countersOf(topic).published++;
    return true;
  }

  /** A command whose handler is not here: sent to a process of the cluster that has it. */
  execute(t: Transport, topic: string, lane: number, timeoutMs: number): Promise<CommandResult> {
    const p = this.#p;
    const r = this.#encoder;
    if (!p.lifecycle.accepting) {
      r.clear();
      this.#tally.rejected(topic);
      return Promise.resolve({ success: false, error: p.lifecycle.stoppedError(), attempts: 0 });
    }
    // The transport copies the encoded command before it returns: the encoder is free again at once.
    const result = t.request(topic, lane, r, p.memory.idPrefix + this.#nextSeq(), performance.timeOrigin + performance.now(), timeoutMs);
    r.clear();
    return result;
  }

  /** publishAsync through a transport: waits (up to `timeoutMs`) while its publish window is full, e.g. while the server is unreachable. */
  async offerAsync(t: Transport, topic: string, lane: number, timeoutMs: number): Promise<boolean> {
    const p = this.#p;
    if (this.offer(topic, lane, false) || !p.lifecycle.accepting) return p.lifecycle.accepting;
    const encoded = this.#encoder.snapshot();
    this.#encoder.clear();
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const granted = await t.waitForRoom(Math.max(0, deadline - performance.now()));
      if (!p.lifecycle.accepting) {
        this.#tally.rejected(topic);
        return false;
      }
      if (!granted) {
        this.#tally.rejected(topic);
        throw new BackpressureError(topic, timeoutMs);
      }
      this.#encoder.restore(encoded);
      // Another producer may have taken the room first: then wait again.
      if (this.offer(topic, lane, false)) return true;
      this.#encoder.clear();
    }
  }
}
