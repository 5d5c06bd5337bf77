/**
 * Handler filters at publish: which handlers of a filtered route take one
 * event. Each filter runs once per delivery (a rate limit spends one token),
 * on the main thread, before the event is encoded for its handler.
 */
import type { FilterEvent } from '../filters.js';
import { errorMessage } from '../protocol/error_text.js';
import type { RecordEncoder } from '../protocol/record.js';
import { PRIORITY_NAMES } from '../protocol/task.js';
import { RateLimitedLog } from '../rate_limited_log.js';
import { Router, type Registration, type Route } from '../router.js';
import type { EngineParts } from './parts.js';
import { PublishTally } from './publish_tally.js';

export class RouteFilter {
  readonly #tally: PublishTally;
  /** Filters that threw (each counts as a refusal): one line a second at most. */
  readonly #log: RateLimitedLog;

  constructor(p: EngineParts) {
    this.#tally = new PublishTally(p);
    this.#log = new RateLimitedLog(p.log, 1000);
  }

  /**
   * The route itself when every filter says yes, else a narrowed copy (with
   * no stages when none does). Each refusal is counted; a filter that throws
   * refuses (logged). `r` holds the encoded event (session, headers).
   */
  apply(route: Route, topic: string, payload: unknown, lane: number, id: string, r: RecordEncoder): Route {
    let event: FilterEvent | undefined;
    let refused: Set<Registration> | undefined;
    for (const s of route.stages) {
      for (const reg of s.handlers) {
        if (reg.filter === undefined) continue;
        event ??= { id, topic, payload, priority: PRIORITY_NAMES[lane], sessionId: r.session, headers: r.headerValues };
        let yes = false;
        try {
          yes = Boolean(reg.filter(event));
        } catch (err) {
          this.#log.warn({ topic, handler: reg.name, err: errorMessage(err) }, 'a handler filter threw; the handler does not get the event');
        }
        if (!yes) (refused ??= new Set()).add(reg);
      }
    }
    if (refused === undefined) return route;
    this.#tally.filtered(topic, refused.size, route.counters ?? this.#tally.countersOf(topic));
    return Router.narrowed(route, (reg) => !refused.has(reg));
  }
}
