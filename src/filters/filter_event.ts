/**
 * What a handler filter is: the view of an event it judges, and its
 * signature.
 */

/**
 * What a filter sees of an event: the payload as published, before it is
 * encoded for the handler.
 * @group Filters
 */
export interface FilterEvent {
  /** May be undefined: a filter can run before the bus assigns the id. */
  readonly id: string | undefined;
  readonly topic: string;
  readonly payload: unknown;
  readonly priority: 'critical' | 'high' | 'normal' | 'low';
  readonly sessionId: string | undefined;
  /** Header names as published: lookups are exact (case-sensitive). */
  readonly headers: Readonly<Record<string, string>> | undefined;
}

/**
 * Decides, on the main thread, whether one handler gets one event (false: it
 * does not, and the delivery is counted as filtered). It runs once per
 * delivery (event × handler), so it should be cheap; one that throws counts
 * as false. Non-boolean answers are taken by truthiness (as `allOf`/`anyOf`
 * do).
 * @group Filters
 */
export type EventFilter = (event: FilterEvent) => boolean;
