/**
 * Topic patterns with NATS token semantics: checking a pattern, telling a
 * wildcard from a literal topic, and matching topics against it.
 *
 * A topic is a string of tokens separated by dots (`orders.eu.created`). In a
 * pattern, a token that is exactly `*` matches any one token and a last token
 * that is exactly `>` matches one or more tokens. A token that merely
 * contains `*` or `>` among other characters (`a*`, `>b`) is a literal, as in
 * NATS. A topic with an empty token (a leading, trailing or double dot) is
 * matched by no wildcard pattern (NATS delivers no such subject), and no
 * literal pattern can name one since patterns refuse empty tokens.
 */
import { show } from './check.js';

const DOT = 46;
const STAR = 42;
const GT = 62;

/**
 * Throws unless `pattern` is a valid topic pattern: a non-empty string of
 * non-empty dot-separated tokens, with `>` (as a whole token) only last.
 * `what` names the argument in the error (default 'pattern').
 * @group Filters
 */
export function checkPattern(pattern: unknown, what = 'pattern'): asserts pattern is string {
  if (typeof pattern !== 'string' || pattern.length === 0) {
    throw new TypeError(`${what} must be a non-empty string, got ${show(pattern)}`);
  }
  const n = pattern.length;
  for (let at = 0; at <= n;) {
    let end = pattern.indexOf('.', at);
    if (end < 0) end = n;
    if (end === at) {
      throw new TypeError(`${what} must be dot-separated non-empty tokens (no leading, trailing or double dot), got ${show(pattern)}`);
    }
    if (end - at === 1 && pattern.charCodeAt(at) === GT && end !== n) {
      throw new TypeError(`${what} may have '>' only as its last token, got ${show(pattern)}`);
    }
    at = end + 1;
  }
}

/**
 * Whether `pattern` has a wildcard token (exactly `*`, or exactly `>`): a
 * literal topic matches only itself. It does not validate (see
 * {@link checkPattern}) and does not throw; it allocates nothing.
 * @group Filters
 */
export function isWildcard(pattern: string): boolean {
  if (typeof pattern !== 'string') return false;
  // Most topics have neither character: two native scans settle them.
  if (pattern.indexOf('*') < 0 && pattern.indexOf('>') < 0) return false;
  const n = pattern.length;
  for (let at = 0; at < n;) {
    let end = pattern.indexOf('.', at);
    if (end < 0) end = n;
    if (end - at === 1) {
      const c = pattern.charCodeAt(at);
      if (c === STAR || c === GT) return true;
    }
    at = end + 1;
  }
  return false;
}

/**
 * A test of topics against `pattern` (validated here, see
 * {@link checkPattern}). The pattern is split once; a test allocates
 * nothing: it walks the topic in place. A literal pattern is a string
 * comparison.
 *
 * ```ts
 * const m = topicMatcher('orders.*.created');
 * m('orders.eu.created'); // true
 * m('orders.eu.west.created'); // false: `*` is exactly one token
 * topicMatcher('orders.>')('orders'); // false: `>` needs at least one token
 * ```
 * @group Filters
 */
export function topicMatcher(pattern: string): (topic: string) => boolean {
  checkPattern(pattern, 'topicMatcher: pattern');
  if (!isWildcard(pattern)) return (topic) => topic === pattern;
  if (pattern === '>') return (topic) => typeof topic === 'string' && topic.length > 0 && tailTokensValid(topic, 0);
  const tokens = pattern.split('.');
  const tail = tokens[tokens.length - 1] === '>';
  const fixed = tail ? tokens.length - 1 : tokens.length;
  return (topic) => {
    if (typeof topic !== 'string') return false;
    const n = topic.length;
    let at = 0;
    for (let i = 0; i < fixed; i++) {
      if (at > n) return false; // the topic ran out of tokens
      let end = topic.indexOf('.', at);
      if (end < 0) end = n;
      if (end === at) return false; // an empty token matches nothing
      const token = tokens[i];
      if (token !== '*' && (end - at !== token.length || !topic.startsWith(token, at))) return false;
      at = end + 1;
    }
    // Without `>` the topic must end exactly where the pattern did (`at` is one past its end).
    return tail ? at < n && tailTokensValid(topic, at) : at === n + 1;
  };
}

/** Whether `topic` from `at` (the start of a token, not past the end) is one or more non-empty tokens. */
function tailTokensValid(topic: string, at: number): boolean {
  return topic.charCodeAt(at) !== DOT && topic.charCodeAt(topic.length - 1) !== DOT && topic.indexOf('..', at) < 0;
}

/**
 * Throws a TypeError when a topic given to publish or execute has a
 * wildcard token: wildcards subscribe, events go to concrete topics.
 * @internal
 */
export function checkConcrete(topic: string, what = 'topic'): void {
  if (isWildcard(topic)) {
    throw new TypeError(`${what} '${topic}' has a wildcard token ('*' or '>'): wildcards subscribe, events are published to concrete topics`);
  }
}
