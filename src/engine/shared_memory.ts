/**
 * Allocates a bus's shared memory (see protocol/layout.ts for the kinds of
 * buffer) and sizes each from the options and the protocol limits.
 */
import { randomBytes } from 'node:crypto';
import { LANE_COUNT, POOL_GROW, controlWords, type SharedBusMemory } from '../protocol/layout.js';
import { largestOutcomeBytes, largestRecordBytes } from '../protocol/limits.js';
import { newMailbox } from '../protocol/metrics_mailbox.js';
import { newTopicSeriesBuffer } from '../protocol/topic_series.js';
import type { ResolvedOptions } from '../options.js';

const MIN_OUTCOME_RING_BYTES = 64 * 1024;

/** Slots: one per drain task that may run at once, `maxThreads` (the spare thread of worker_pool.ts only replaces a lost one). */
export const slotCount = (options: ResolvedOptions): number => options.pool.maxThreads;

const nextPowerOfTwo = (n: number): number => 2 ** Math.ceil(Math.log2(n));

/** A lane ring's size: `queue.ringBytes` rounded up to a power of two, and at least two of the largest records. */
export const laneRingBytes = (queue: ResolvedOptions['queue']): number =>
  nextPowerOfTwo(Math.max(queue.ringBytes, 2 * largestRecordBytes(queue.maxPayloadBytes)));

/** An outcome ring's size: at least two of the largest outcomes, so one always fits once main has read. */
export const outcomeRingBytes = (queue: ResolvedOptions['queue']): number =>
  nextPowerOfTwo(Math.max(MIN_OUTCOME_RING_BYTES, 2 * largestOutcomeBytes(queue.maxPayloadBytes)));

export function allocateSharedMemory(options: ResolvedOptions, registry: SharedArrayBuffer, breakers: SharedArrayBuffer,
  breakerCounters: SharedArrayBuffer[]): SharedBusMemory {
  const slots = slotCount(options);
  const ringBytes = laneRingBytes(options.queue);
  const outcomeBytes = outcomeRingBytes(options.queue);
  const control = new SharedArrayBuffer(4 * controlWords(slots));
  new Int32Array(control)[POOL_GROW] = 1; // workers may wake peers until main finds itself saturated
  return {
    control,
    lanes: Array.from({ length: LANE_COUNT }, () => new SharedArrayBuffer(ringBytes)),
    outcomes: Array.from({ length: slots }, () => new SharedArrayBuffer(outcomeBytes)),
    registry,
    breakers,
    breakerCounters,
    metrics: Array.from({ length: slots }, () => newMailbox()),
    topicSeries: newTopicSeriesBuffer(),
    // Event ids are this prefix + the event's seq: unique across buses and restarts.
    idPrefix: `${randomBytes(6).toString('base64url')}-`,
    codec: options.codec,
    strictPayloads: options.codec === 'json' && options.strictPayloads,
  };
}
