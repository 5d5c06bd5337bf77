/**
 * What main does when a worker dies inside a batch (it crashed, or the
 * watchdog ended it for a handler timeout). Records before the slot's cursor
 * are accounted for: implicit successes in the slot's counters, the rest in
 * its outcome ring (read before this runs). The running handler's delivery
 * failed; the handlers after it on that record and every later record of the
 * batch run again, uncharged. A timeout is charged only to the delivery that
 * ran past it: if that handler finished between the abort and the end of the
 * worker, nothing is charged.
 */
import { HandlerTimeoutError, WorkerCrashedError } from '../errors.js';
import { errorMessage } from '../protocol/error_text.js';
import { SLOT_BUSY, SLOT_CURSOR, SLOT_END, SLOT_HANDLER_INDEX, SLOT_LANE, slotWord } from '../protocol/layout.js';
import { decodeRecord, rewriteRecord, RF_CONTINUATION, RF_DETACHED, RF_TRACKED } from '../protocol/record.js';
import type { EngineParts } from './parts.js';

export function recoverBatch(p: EngineParts, slot: number, err: unknown, timedOut: { cursor: number; handler: number } | undefined): void {
  const c = p.control;
  const lane = Atomics.load(c, slotWord(slot, SLOT_LANE));
  const cursor = Atomics.load(c, slotWord(slot, SLOT_CURSOR));
  const end = Atomics.load(c, slotWord(slot, SLOT_END));
  const handlerIndex = Atomics.load(c, slotWord(slot, SLOT_HANDLER_INDEX));
  const records = p.lanes.copyRange(lane, cursor, end);
  // The watchdog aborted the task for a handler that then finished before the worker was ended: what runs
  // now did not time out. It and the rest of the batch run again, uncharged, and no timeout is counted.
  const raced = timedOut !== undefined && (timedOut.cursor !== cursor || timedOut.handler !== handlerIndex);
  if (timedOut !== undefined && !raced) p.counters.handlerTimeouts++;
  if (raced && handlerIndex >= 0 && records.length > 0) {
    const d = decodeRecord(records[0]);
    records[0] = rewriteRecord(records[0], d.handlerIds.subarray(handlerIndex), d.attempt, RF_TRACKED | RF_CONTINUATION);
  }
  // A handler was running (index >= 0): its delivery failed. Otherwise the worker died between records.
  const crashed = handlerIndex >= 0 && !raced ? records.shift() : undefined;
  p.crashLog.warn({ err: errorMessage(err), requeued: records.length, timedOut: timedOut !== undefined && !raced },
    'worker died mid-batch; replacing it and re-running the rest of its batch');
  if (crashed !== undefined) {
    const d = decodeRecord(crashed);
    const handlerId = d.handlerIds[Math.min(handlerIndex, d.handlerIds.length - 1)];
    const name = p.registrar.handlerName(handlerId);
    const failure = timedOut !== undefined
      ? new HandlerTimeoutError(name, p.options.handlerTimeoutMs || 0)
      : new WorkerCrashedError(name, errorMessage(err));
    p.failures.attemptFailed({
      seq: d.seq, lane, topic: d.topic ?? p.registrar.topicName(d.topicId), handler: name, attempt: d.attempt, error: failure.message, failure, refused: false,
      errorCode: timedOut !== undefined ? 'ERR_RINGBUS_HANDLER_TIMEOUT' : 'ERR_RINGBUS_WORKER_CRASHED', record: crashed, handlerId,
      breaker: p.registry.breakerOf(handlerId),
    });
    const remaining = d.handlerIds.subarray(handlerIndex + 1);
    // What is left of the record reports back explicitly, so main sees its pass end.
    if (remaining.length > 0) p.lanes.writeEncoded(lane, rewriteRecord(crashed, remaining, d.attempt, RF_TRACKED | RF_CONTINUATION));
    else p.inFlight.recordDone(d.seq, d.attempt, true, undefined, (d.flags & RF_DETACHED) !== 0);
  }
  for (const record of records) p.lanes.writeEncoded(lane, record);
  Atomics.store(c, slotWord(slot, SLOT_BUSY), 0);
}
