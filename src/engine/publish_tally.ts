/**
 * What a publish counts outside its route's commit: rejections, drops and
 * refusals, in the bus's counters and in the topic's series. A topic that
 * only wildcard patterns route is counted in its first pattern's series, as
 * its route counts it (the router caches that route), so a topic's figures
 * never split between its pattern and "(no handler)".
 */
import type { TopicCounters } from '../metrics/series.js';
import type { EngineParts } from './parts.js';

export class PublishTally {
  readonly #p: EngineParts;

  constructor(p: EngineParts) {
    this.#p = p;
  }

  /** The series a topic is counted in: its own, its first pattern's, or the shared "(no handler)" one. */
  countersOf(topic: string): TopicCounters {
    const p = this.#p;
    if (!p.router.hasPatterns) return p.metrics.countersOf(topic);
    try {
      return p.router.eventRoute(topic).counters ?? p.metrics.countersOf(topic);
    } catch {
      // No route can be built for it (a topic too long to carry): it is counted without one.
      return p.metrics.countersOf(topic);
    }
  }

  rejected(topic: string): void {
    this.#p.counters.rejected++;
    this.countersOf(topic).rejected++;
  }

  dropped(topic: string): void {
    this.#p.counters.dropped++;
    this.countersOf(topic).dropped++;
  }

  /** The event being published is the one dropped: it was accepted and settles at once. */
  droppedAtPublish(topic: string): void {
    this.#p.counters.published++;
    this.countersOf(topic).published++;
    this.dropped(topic);
  }

  /** Deliveries a filter refused, or a publish a middleware refused. */
  filtered(topic: string, n: number, counters: TopicCounters = this.countersOf(topic)): void {
    this.#p.counters.filtered += n;
    counters.filtered += n;
  }
}
