/**
 * The ready-made handler filters (the `filter` of `registerEventHandler`)
 * and the topic patterns they and the router share.
 */
export type { EventFilter, FilterEvent } from './filters/filter_event.js';
export { checkPattern, isWildcard, topicMatcher } from './filters/topic_pattern.js';
export { byTopic } from './filters/by_topic.js';
export { bySession, type BySessionOptions } from './filters/by_session.js';
export { byHeader, byHeaders, type HeaderMatcher } from './filters/by_header.js';
export { rateLimit, type RateLimitOptions } from './filters/rate_limit.js';
export { allOf, anyOf, not } from './filters/composite.js';
