/**
 * The filter on an event's topic, for a handler under a wildcard
 * subscription that wants only part of what it covers.
 */
import type { EventFilter } from './filter_event.js';
import { checkPattern, topicMatcher } from './topic_pattern.js';

/**
 * Passes events whose topic matches `pattern` (NATS token semantics, see
 * {@link topicMatcher}: `*` is exactly one token, a last `>` one or more).
 *
 * ```ts
 * bus.registerEventHandler('orders.>', audit, { filter: byTopic('orders.*.created') });
 * ```
 * @group Filters
 */
export function byTopic(pattern: string): EventFilter {
  checkPattern(pattern, 'byTopic: pattern');
  const matches = topicMatcher(pattern);
  return (event) => matches(event.topic);
}
