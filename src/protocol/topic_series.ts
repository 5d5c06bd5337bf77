/**
 * Which metrics series a worker counts a topic's end-to-end times in: one
 * Int32 word per registry id, written by main, read by workers per event.
 *
 *   word[topic id] = 0 (SERIES_NONE)      the topic has no series: its handlers were unregistered
 *                  = 1 (SERIES_OTHER)     the topic is one of those beyond metrics.maxTopics,
 *                                         counted together under topic="other"
 *                  = 2 (SERIES_UNROUTED)  the series of topics without handlers, which a topic
 *                                         literally named "(no handler)" shares
 *                  = k >= 3               the topic's own series, a key never reused: a topic
 *                                         unregistered and registered again gets a new one
 *
 * Main writes a topic's word before the topic's first record can reach a
 * worker (when its route is built), so a worker never has to ask. A worker
 * keeps a series only while some topic's word still names it: this is how a
 * worker's state follows unregistrations without a message per topic. The
 * buffer is growable (registry ids grow with the topics ever routed to
 * workers), up to one word per smallest possible registry entry.
 */
import { MAX_REGISTRY_BYTES } from './limits.js';

export const SERIES_NONE = 0;
export const SERIES_OTHER = 1;
export const SERIES_UNROUTED = 2;
/** The first key of a topic's own series; the keys below are shared series, never dropped. */
export const FIRST_SERIES_KEY = 3;

const INITIAL_BYTES = 16 << 10;
/** A registry entry takes at least 16 bytes (8 of header and `{"topic":""}`), so there are at most this many ids. */
const MAX_BYTES = 4 * (MAX_REGISTRY_BYTES / 16);

export function newTopicSeriesBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(INITIAL_BYTES, { maxByteLength: MAX_BYTES });
}

/** Main's side: sets a topic id's series, growing the buffer as ids grow. */
export class TopicSeriesWriter {
  readonly #sab: SharedArrayBuffer;
  readonly #words: Int32Array;

  constructor(sab: SharedArrayBuffer) {
    this.#sab = sab;
    this.#words = new Int32Array(sab); // tracks the buffer's length as it grows
  }

  set(topicId: number, key: number): void {
    if (topicId >= this.#words.length) {
      this.#sab.grow(Math.min(this.#sab.maxByteLength, 2 ** Math.ceil(Math.log2(4 * (topicId + 1)))));
    }
    Atomics.store(this.#words, topicId, key);
  }

  get(topicId: number): number {
    return topicId < this.#words.length ? Atomics.load(this.#words, topicId) : SERIES_NONE;
  }
}
