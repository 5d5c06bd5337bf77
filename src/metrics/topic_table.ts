/**
 * Which series each topic is counted in: its own for the first
 * `metrics.maxTopics` topics with handlers, the shared topic="other" one
 * beyond, the shared "(no handler)" one for topics without handlers; and the
 * topic-series words that tell workers the same (topic_series.ts).
 */
import type { LatencyAccumulator } from './latency_accumulator.js';
import { TopicSeries, type MetricsWork } from './series.js';
import { FIRST_SERIES_KEY, SERIES_NONE, SERIES_OTHER, SERIES_UNROUTED, TopicSeriesWriter } from '../protocol/topic_series.js';

/** The `topic` label under which events of topics without any handler are counted together. */
export const UNROUTED_TOPIC = '(no handler)';
/** The `topic` label under which topics beyond `metrics.maxTopics` are counted together. */
export const OTHER_TOPIC = 'other';

interface Entry {
  readonly series: TopicSeries;
  /** Registry id once the topic is routed to a worker, else -1. */
  topicId: number;
  /** Counted in "other" because maxTopics topics had their own series already. */
  readonly folded: boolean;
}

/**
 * Series exist only for topics with handlers (registered, not yet
 * unregistered) plus the two shared ones, so publishing to any number of
 * topics without handlers keeps no state per topic. A topic keeps the series
 * it was given until its last handler goes; a topic folded into "other"
 * stays there until then, even if own series are freed meanwhile (moving it
 * would split its history between two series).
 */
export class TopicTable {
  readonly #maxTopics: number;
  readonly #words: TopicSeriesWriter;
  readonly #all: LatencyAccumulator;
  readonly #work: MetricsWork;
  /** Every topic with handlers. */
  readonly #topics = new Map<string, Entry>();
  /** Every series by key, in the order created (the exposition's order). */
  readonly #series = new Map<number, TopicSeries>();
  #own = 0;
  #folded = 0;
  #nextKey = FIRST_SERIES_KEY;

  constructor(maxTopics: number, words: SharedArrayBuffer, all: LatencyAccumulator, work: MetricsWork) {
    this.#maxTopics = maxTopics;
    this.#words = new TopicSeriesWriter(words);
    this.#all = all;
    this.#work = work;
  }

  /** Topics with handlers counted in "other" because of maxTopics. */
  get folded(): number {
    return this.#folded;
  }

  /** Every series: own ones, then the shared ones, in the order created. */
  series(): IterableIterator<TopicSeries> {
    return this.#series.values();
  }

  byKey(key: number): TopicSeries | undefined {
    return this.#series.get(key);
  }

  /**
   * The series of a topic with handlers, given one when its first handler is
   * registered; `topicId` (its registry id, once routed to a worker) tells
   * workers where to count it.
   */
  seriesOf(name: string, topicId = -1): TopicSeries {
    let entry = this.#topics.get(name);
    if (entry === undefined) {
      entry = this.#newEntry(name);
      this.#topics.set(name, entry);
    }
    if (topicId >= 0 && entry.topicId !== topicId) {
      entry.topicId = topicId;
      this.#words.set(topicId, entry.series.key);
    }
    return entry.series;
  }

  /** A topic's series if it has handlers, else the one shared by every topic without a handler. */
  countersOf(name: string): TopicSeries {
    return this.#topics.get(name)?.series ?? this.#shared(SERIES_UNROUTED, UNROUTED_TOPIC);
  }

  /** The `topic` label a topic's figures appear under (its own name, or a shared series' name). */
  labelOf(name: string): string {
    return this.#topics.get(name)?.series.name ?? name;
  }

  /**
   * The topic's last handler went: its own series is dropped (counts
   * included: the series ends) and workers stop counting it. Returns the
   * dropped series' key, if it had its own.
   */
  forget(name: string): number | undefined {
    const entry = this.#topics.get(name);
    if (entry === undefined) return undefined;
    this.#topics.delete(name);
    if (entry.topicId >= 0) this.#words.set(entry.topicId, SERIES_NONE);
    if (entry.folded) this.#folded--;
    const key = entry.series.key;
    if (key < FIRST_SERIES_KEY) return undefined;
    this.#series.delete(key);
    this.#own--;
    return key;
  }

  #newEntry(name: string): Entry {
    // A topic named like a shared series shares it: two series with one label would make the exposition invalid.
    if (name === UNROUTED_TOPIC) return { series: this.#shared(SERIES_UNROUTED, UNROUTED_TOPIC), topicId: -1, folded: false };
    if (name === OTHER_TOPIC) return { series: this.#shared(SERIES_OTHER, OTHER_TOPIC), topicId: -1, folded: false };
    if (this.#own >= this.#maxTopics) {
      this.#folded++;
      return { series: this.#shared(SERIES_OTHER, OTHER_TOPIC), topicId: -1, folded: true };
    }
    const series = new TopicSeries(name, this.#nextKey++, this.#all, this.#work);
    this.#series.set(series.key, series);
    this.#own++;
    return { series, topicId: -1, folded: false };
  }

  #shared(key: number, name: string): TopicSeries {
    let series = this.#series.get(key);
    if (series === undefined) {
      series = new TopicSeries(name, key, this.#all, this.#work);
      this.#series.set(key, series);
    }
    return series;
  }
}
