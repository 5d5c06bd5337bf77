/**
 * Reads the slots' outcome rings and hands each outcome to the part that
 * owns what it means: failures, refusals and held deliveries to the failure
 * policy, half-open trial successes to the breakers, finished tracked
 * records (and command results) to the in-flight records.
 */
import {
  OutcomeRingReader, OUT_DONE, OUT_FAILED, OUT_HELD, OUT_REFUSED, OUT_SUCCEEDED, OUTF_DETACHED, OUTF_FAILED, OUTF_LOAD_FAILED, OUTF_RESULT_BINARY, OUTF_RESULT_BYTES,
  type Outcome,
} from '../protocol/outcome_ring.js';
import { HandlerFailedError } from '../errors.js';
import { errorMessage } from '../protocol/error_text.js';
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

  /** The lane of the record an outcome is about. */
  #lane(o: Outcome): number {
    if (o.record !== undefined) return this.#header.read(standaloneView(o.record), 0).lane;
    const e = this.#p.inFlight.get(o.seq);
    return e?.kind === 'tracked' ? e.lane : 2;
  }

  /** The topic of the record an outcome is about: carried in it (a wildcard route's), or named by its id. */
  #topic(o: Outcome): string {
    if (o.record !== undefined) {
      const view = standaloneView(o.record);
      const topic = this.#header.read(view, 0).topic(view);
      if (topic !== undefined) return topic;
    }
    return this.#p.registrar.topicName(o.topicId);
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
        p.failures.attemptFailed({
          seq: o.seq, lane: this.#lane(o), topic: this.#topic(o), handler: p.registrar.handlerName(o.handlerId),
          attempt: o.attempt, error: o.text, errorName: o.name || undefined, stack: o.stack || undefined,
          errorCode: o.kind === OUT_REFUSED ? 'ERR_RINGBUS_CIRCUIT_OPEN' : o.flags & OUTF_LOAD_FAILED ? 'ERR_RINGBUS_HANDLER_LOAD' : 'ERR_RINGBUS_HANDLER_FAILED',
          refused: o.kind === OUT_REFUSED, record: o.record, handlerId: o.handlerId, breaker: p.registry.breakerOf(o.handlerId),
        });
        break;
      }
      case OUT_HELD: {
        const breaker = p.registry.breakerOf(o.handlerId);
        const record = o.record!;
        p.failures.hold(o.seq, this.#lane(o), this.#topic(o),
          { name: p.registrar.handlerName(o.handlerId), breaker, handlerId: o.handlerId }, o.attempt, record, undefined, undefined,
          () => this.#header.read(standaloneView(record), 0).publishedAt);
        break;
      }
      case OUT_SUCCEEDED:
        p.breakers.onTrialSuccess(p.registry.breakerOf(o.handlerId));
        break;
      case OUT_DONE: {
        const failed = (o.flags & OUTF_FAILED) !== 0;
        let result: unknown;
        if (!failed && p.inFlight.command(o.seq) !== undefined) {
          if (o.flags & OUTF_RESULT_BINARY) {
            result = o.record ?? new Uint8Array(0); // already this entry's own copy
          } else if (o.flags & OUTF_RESULT_BYTES) {
            // A structured or custom codec's bytes (the record section is this entry's own copy).
            try {
              result = p.codec.decode(o.record ?? new Uint8Array(0));
            } catch (err) {
              // The handler ran, but its caller cannot have the result: the command fails, saying why.
              const command = p.inFlight.command(o.seq)!;
              const handler = command.route.stages[0]?.handlers[0]?.name ?? '';
              p.inFlight.reply(o.seq, {
                success: false, attempts: o.attempt + 1,
                error: new HandlerFailedError({
                  handler, topic: command.topic, attempt: o.attempt, errorName: 'PayloadDecodeError', stack: undefined, thrown: err,
                  message: `the result of command '${command.topic}' could not be decoded with codec ${p.codec.name}: ${errorMessage(err)}`,
                }),
              });
            }
          } else if (o.text !== '') {
            try {
              result = JSON.parse(o.text);
            } catch {
              result = undefined;
            }
          }
        }
        p.inFlight.recordDone(o.seq, o.attempt, failed, result, (o.flags & OUTF_DETACHED) !== 0);
        break;
      }
    }
  };
}
