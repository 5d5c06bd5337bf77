/**
 * Limits both threads depend on. A record, an outcome and a registry entry
 * are sized from these, so they live in one place: change one here and every
 * buffer that must hold it grows with it.
 */
import { REC_HEADER_BYTES } from './record.js';
import { OUT_HEADER_BYTES } from './outcome_ring.js';
import { align8 } from './layout.js';

/** Error text a worker reports per failure, in UTF-8 bytes (longer messages are cut); its name adds at most 3 × 128 more. */
export const MAX_ERROR_TEXT_BYTES = 4096;
/** A thrown error's stack a worker reports, in UTF-8 bytes (longer stacks are cut). */
export const MAX_ERROR_STACK_BYTES = 8192;
/** Characters of a thrown error's `name` kept. */
export const MAX_ERROR_NAME_LENGTH = 128;
const MAX_ERROR_NAME_BYTES = 3 * MAX_ERROR_NAME_LENGTH;
/** A session id, in UTF-8 bytes. */
export const MAX_SESSION_BYTES = 1024;
/** An explicit event id (a replayed dead letter keeps its id), in UTF-8 bytes. */
export const MAX_EVENT_ID_BYTES = 256;
/** An event's headers, as JSON text in UTF-8 bytes. */
export const MAX_HEADERS_BYTES = 16 * 1024;
/** A topic routed only by wildcard subscriptions, in UTF-8 bytes: its records carry it as text. */
export const MAX_CARRIED_TOPIC_BYTES = 1024;
/** Worker handlers one topic may have: their ids travel in every record of the topic. */
export const MAX_WORKER_HANDLERS_PER_TOPIC = 512;
/** Handlers with a circuit breaker on one bus, one per handler of each topic (unregistering frees them). */
export const MAX_BREAKERS = 1 << 20;
/** Initial size of the shared registry of topic names and worker-handler modules; it doubles as needed. */
export const REGISTRY_BYTES = 1 << 20;
/** The registry's largest size (about a million topics of 40 characters). */
export const MAX_REGISTRY_BYTES = 64 << 20;

/** Everything in a record besides the payload, at most. */
export const MAX_RECORD_OVERHEAD_BYTES =
  REC_HEADER_BYTES + 4 * MAX_WORKER_HANDLERS_PER_TOPIC + MAX_SESSION_BYTES + MAX_EVENT_ID_BYTES + MAX_CARRIED_TOPIC_BYTES + MAX_HEADERS_BYTES;

/** The largest record a lane ring must hold, for a given `queue.maxPayloadBytes`. */
export const largestRecordBytes = (maxPayloadBytes: number): number => align8(MAX_RECORD_OVERHEAD_BYTES + maxPayloadBytes);

/** The largest outcome entry: a failure carrying its error text and a copy of the largest record. */
export const largestOutcomeBytes = (maxPayloadBytes: number): number =>
  align8(OUT_HEADER_BYTES + MAX_ERROR_NAME_BYTES + MAX_ERROR_TEXT_BYTES + MAX_ERROR_STACK_BYTES + largestRecordBytes(maxPayloadBytes));
