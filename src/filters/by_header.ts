/**
 * The filters on an event's headers: one header against a matcher, or
 * several that must all match.
 */
import { show, stringSet } from './check.js';
import type { EventFilter, FilterEvent } from './filter_event.js';

/**
 * What a header value is tested against: a value it must equal, values it
 * must be one of, a RegExp it must match, or a function of the value
 * (`undefined` when the header is missing). A missing header never matches
 * a string, a list or a RegExp; only a function can accept it.
 * @group Filters
 */
export type HeaderMatcher =
  | string
  | readonly string[]
  | ReadonlySet<string>
  | RegExp
  | ((value: string | undefined) => boolean);

type ValueTest = (value: string | undefined) => boolean;

/**
 * The header's value, or undefined when it is missing. A non-string (an
 * inherited `toString`, a value a JavaScript caller slipped in) counts as
 * missing.
 */
function headerValue(event: FilterEvent, name: string): string | undefined {
  const headers = event.headers;
  if (headers == null) return undefined;
  const value = headers[name];
  return typeof value === 'string' ? value : undefined;
}

function checkName(what: string, name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError(`${what} must be a non-empty string, got ${show(name)}`);
}

/** The test a matcher stands for, built once. */
function valueTest(what: string, match: unknown): ValueTest {
  if (typeof match === 'string') return (value) => value === match;
  if (typeof match === 'function') {
    const fn = match as ValueTest;
    return (value) => !!fn(value);
  }
  if (match instanceof RegExp) {
    // A copy: the caller's RegExp (its lastIndex) stays untouched. With `g` or
    // `y`, test() starts at lastIndex and moves it, so it is reset for each
    // value; `y` thus anchors at the start of the value.
    const re = new RegExp(match);
    if (!re.global && !re.sticky) return (value) => value !== undefined && re.test(value);
    return (value) => {
      if (value === undefined) return false;
      re.lastIndex = 0;
      return re.test(value);
    };
  }
  if (Array.isArray(match) || match instanceof Set) {
    const values = stringSet(what, match);
    if (values.size === 1) {
      const [only] = values;
      return (value) => value === only;
    }
    return (value) => value !== undefined && values.has(value);
  }
  throw new TypeError(`${what} must be a string, an array or Set of strings, a RegExp or a function, got ${show(match)}`);
}

/**
 * Passes events whose header `name` matches `match` (see
 * {@link HeaderMatcher}). Header names are exact: `X-Tenant` and `x-tenant`
 * are different headers.
 *
 * ```ts
 * byHeader('x-tenant', 'acme');
 * byHeader('x-region', ['eu-west', 'eu-central']);
 * byHeader('content-type', /^application\/json\b/);
 * byHeader('x-trace', (v) => v === undefined); // only events without the header
 * ```
 * @group Filters
 */
export function byHeader(name: string, match: HeaderMatcher): EventFilter {
  checkName('byHeader: name', name);
  const test = valueTest('byHeader: match', match);
  return (event) => test(headerValue(event, name));
}

/**
 * Passes events whose headers match every entry of `matchers` (header name →
 * {@link HeaderMatcher}), tested in the object's key order, stopping at the
 * first that fails.
 *
 * ```ts
 * byHeaders({ 'x-tenant': 'acme', 'x-version': /^2\./ });
 * ```
 * @group Filters
 */
export function byHeaders(matchers: Readonly<Record<string, HeaderMatcher>>): EventFilter {
  if (matchers === null || typeof matchers !== 'object' || Array.isArray(matchers) || matchers instanceof RegExp) {
    throw new TypeError(`byHeaders: matchers must be an object of header name → matcher, got ${show(matchers)}`);
  }
  const names = Object.keys(matchers);
  if (names.length === 0) throw new TypeError('byHeaders: matchers must name at least one header, got {}');
  const tests = names.map((name) => {
    checkName('byHeaders: a header name', name);
    return valueTest(`byHeaders: matchers['${name}']`, matchers[name]);
  });
  if (names.length === 1) {
    const [name] = names;
    const [test] = tests;
    return (event) => test(headerValue(event, name));
  }
  return (event) => {
    for (let i = 0; i < names.length; i++) {
      if (!tests[i](headerValue(event, names[i]))) return false;
    }
    return true;
  };
}
