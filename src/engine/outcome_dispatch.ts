/**
 * Reads the slots' outcome rings and hands each outcome to the part that
 * owns what it means: failures and refusals to the failure policy, half-open
 * trial successes to the breakers, finished tracked records (and command
 * results) to the in-flight records.
 */
import { OutcomeRingReader, OUT_DONE, OUT_FAILED, OUT_REFUSED, OUT_SUCCEEDED, type Outcome } from '../protocol/outcome_ring.js';
import { RecordHeader, standaloneView } from '../protocol/record.js';
import type { EngineParts } from './parts.js';

export class OutcomeDispatch {
  readonly #p: EngineParts;
  readonly #readers: OutcomeRingReader[];
  readonly #header = new RecordHeader();

  constructor(p: EngineParts) {
    this.#p = p;
    this.#readers = p.memory.outcomes.map((sab, slot) => new OutcomeRingReader(p.control, sab, slot));
  }

  /** Everything the slot's worker reported so far. */
  drainSlot(slot: number): void {
    this.#readers[slot].drain(this.#onOutcome);
  }

  readonly #onOutcome = (o: Outcome): void => {
    const p = this.#p;
    switch (o.kind) {
      case OUT_FAILED:
      case OUT_REFUSED: {
        const tracked = p.inFlight.get(o.seq);
        const lane = o.record ? this.#header.read(standaloneView(o.record), 0).lane : tracked?.kind === 'tracked' ? tracked.lane : 2;
        p.failures.attemptFailed({
          seq: o.seq, lane, topic: p.registrar.topicName(o.topicId), handler: p.registrar.handlerName(o.handlerId), attempt: o.attempt,
          error: o.text, refused: o.kind === OUT_REFUSED, record: o.record, handlerId: o.handlerId,
        });
        break;
      }
      case OUT_SUCCEEDED:
        p.breakers.onSuccess(p.registrar.handlerName(o.handlerId));
        break;
      case OUT_DONE: {
        const failed = p.inFlight.get(o.seq)?.failures?.failedAttempt === o.attempt;
        let result: unknown;
        if (!failed && o.text !== '' && p.inFlight.command(o.seq) !== undefined) {
          try {
            result = JSON.parse(o.text);
          } catch {
            result = undefined;
          }
        }
        p.inFlight.recordDone(o.seq, o.attempt, failed, result);
        break;
      }
    }
  };
}
