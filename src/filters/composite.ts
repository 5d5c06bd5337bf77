/**
 * Filters made of filters: all of them, any of them, the opposite of one.
 * Each runs its filters in the order given and stops at the first that
 * decides, so a filter with a side effect (a rate limit spends a token) runs
 * only when the ones before it did not decide already.
 */
import { show } from './check.js';
import type { EventFilter } from './filter_event.js';

/** The filters as given, checked and copied (a later change to the caller's array does not reach the filter). */
function checkFilters(what: string, filters: readonly unknown[]): EventFilter[] {
  if (filters.length === 0) throw new TypeError(`${what}: give at least one filter, got none`);
  for (let i = 0; i < filters.length; i++) {
    const f = filters[i];
    if (Array.isArray(f)) {
      throw new TypeError(`${what}: filters[${i}] is an array; pass the filters as arguments (${what}(...filters)), got ${show(f)}`);
    }
    if (typeof f !== 'function') throw new TypeError(`${what}: filters[${i}] must be a function (event) => boolean, got ${show(f)}`);
  }
  return [...filters] as EventFilter[];
}

/**
 * Passes an event when every filter passes it: they run in order and the
 * first that refuses ends it. Put a {@link rateLimit} last, so that only
 * events the others passed spend its tokens.
 *
 * ```ts
 * allOf(bySession({ include: tenants }), byHeader('x-kind', 'order'), rateLimit({ perSecond: 100 }));
 * ```
 * @group Filters
 */
export function allOf(...filters: EventFilter[]): EventFilter {
  const list = checkFilters('allOf', filters);
  return (event) => {
    for (let i = 0; i < list.length; i++) {
      if (!list[i](event)) return false;
    }
    return true;
  };
}

/**
 * Passes an event when any filter passes it: they run in order and the first
 * that passes ends it (a {@link rateLimit} placed after it spends nothing).
 * @group Filters
 */
export function anyOf(...filters: EventFilter[]): EventFilter {
  const list = checkFilters('anyOf', filters);
  return (event) => {
    for (let i = 0; i < list.length; i++) {
      if (list[i](event)) return true;
    }
    return false;
  };
}

/**
 * Passes exactly the events `filter` refuses. (`not(rateLimit(...))` still
 * spends a token on each event it refuses.)
 * @group Filters
 */
export function not(filter: EventFilter): EventFilter {
  if (typeof filter !== 'function') throw new TypeError(`not: filter must be a function (event) => boolean, got ${show(filter)}`);
  const f = filter;
  return (event) => !f(event);
}
