/**
 * The filter on an event's session: the sessions a handler serves, or those
 * it leaves alone.
 */
import { checkFilterOptions, show, stringSet } from './check.js';
import type { EventFilter } from './filter_event.js';

/** Options of {@link bySession}: at least one must be given. @group Filters */
export interface BySessionOptions {
  /** Only these sessions pass. Copied at creation: later changes to the array or Set do not reach the filter. */
  include?: readonly string[] | ReadonlySet<string>;
  /** These sessions never pass, even when also in `include`. Copied at creation. */
  exclude?: readonly string[] | ReadonlySet<string>;
  /**
   * Whether an event published without a session passes.
   * @default true without `include`, false with it (an allow-list admits only what it names)
   */
  allowNoSession?: boolean;
}

const OPTIONS: readonly string[] = ['include', 'exclude', 'allowNoSession'];

/**
 * Passes events by their `sessionId`: those in `include` (when given) and
 * not in `exclude`. An event without a session passes only when there is no
 * `include`, unless `allowNoSession` says otherwise.
 *
 * ```ts
 * bySession({ include: ['tenant-a', 'tenant-b'] }); // no-session events are filtered
 * bySession({ exclude: ['load-test'] }); // no-session events pass
 * bySession({ allowNoSession: false }); // only events with a session
 * ```
 * @group Filters
 */
export function bySession(options: BySessionOptions): EventFilter {
  checkFilterOptions('bySession', options, OPTIONS);
  const { include, exclude, allowNoSession } = options;
  if (include === undefined && exclude === undefined && allowNoSession === undefined) {
    throw new TypeError('bySession: give include, exclude or allowNoSession, got none of them');
  }
  if (allowNoSession !== undefined && typeof allowNoSession !== 'boolean') {
    throw new TypeError(`bySession: allowNoSession must be a boolean, got ${show(allowNoSession)}`);
  }
  const included = include === undefined ? undefined : stringSet('bySession: include', include);
  const excluded = exclude === undefined ? undefined : stringSet('bySession: exclude', exclude);
  const noSession = allowNoSession ?? included === undefined;
  return (event) => {
    const session = event.sessionId;
    if (session == null) return noSession;
    if (included !== undefined && !included.has(session)) return false;
    return excluded === undefined || !excluded.has(session);
  };
}
