/**
 * The ready-made handler filters, on their own (no bus): topic patterns
 * against a plain reference implementation, the token bucket against its
 * bound on a fake clock, each filter and composition by example, and every
 * creation-time error message.
 */
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  allOf, anyOf, byHeader, byHeaders, bySession, byTopic, checkPattern, isWildcard, not, rateLimit, topicMatcher,
  type EventFilter, type FilterEvent,
} from '../src/filters.js';

function event(over: Partial<FilterEvent> = {}): FilterEvent {
  return { id: undefined, topic: 't', payload: null, priority: 'normal', sessionId: undefined, headers: undefined, ...over };
}

/** A clock the test moves by hand. */
function fakeClock(start = 0): { now: () => number; advance: (ms: number) => void; set: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => { t += ms; }, set: (ms) => { t = ms; } };
}

/** The obvious implementation of the token semantics, splitting everything. */
function referenceMatch(pattern: string, topic: string): boolean {
  const p = pattern.split('.');
  if (!p.includes('*') && !p.includes('>')) return topic === pattern;
  const t = topic.split('.');
  if (t.includes('')) return false;
  const tail = p[p.length - 1] === '>';
  const fixed = tail ? p.slice(0, -1) : p;
  if (tail ? t.length <= fixed.length : t.length !== fixed.length) return false;
  return fixed.every((token, i) => token === '*' || token === t[i]);
}

describe('topic patterns', () => {
  const pattern = fc.tuple(
    fc.array(fc.constantFrom('a', 'b', 'ab', '*', 'a*', '>b'), { minLength: 1, maxLength: 4 }),
    fc.boolean(),
  ).map(([tokens, tail]) => (tail ? [...tokens, '>'] : tokens).join('.'));
  const anyTopic = fc.array(fc.constantFrom('a', 'b', 'ab', 'ba', '*', '>', 'a*', '>b', ''), { maxLength: 6 }).map((t) => t.join('.'));
  // Topics built from the pattern, so that matches are frequent, with now and then an empty token.
  const instance = (p: string): fc.Arbitrary<string> => fc.tuple(
    ...p.split('.').map((token) => token === '*' ? fc.constantFrom('a', 'b', 'x', '')
      : token === '>' ? fc.array(fc.constantFrom('a', 'b', '', '*'), { minLength: 0, maxLength: 3 }).map((r) => r.join('.'))
        : fc.constant(token)),
  ).map((tokens) => tokens.join('.'));

  it('topicMatcher agrees with the reference implementation (NATS token semantics)', () => {
    const cases = pattern.chain((p) => fc.tuple(fc.constant(p), fc.oneof(anyTopic, instance(p))));
    fc.assert(fc.property(cases, ([p, topic]) => {
      expect(topicMatcher(p)(topic)).toBe(referenceMatch(p, topic));
    }), { numRuns: 3000 });
  });

  it('matches by example', () => {
    const m = topicMatcher('orders.*.created');
    expect([m('orders.eu.created'), m('orders.eu.west.created'), m('orders.created'), m('orders..created')]).toEqual([true, false, false, false]);
    const tail = topicMatcher('orders.>');
    expect([tail('orders'), tail('orders.eu'), tail('orders.eu.created'), tail('orders.'), tail('orders.eu..x'), tail('ordersx.a')])
      .toEqual([false, true, true, false, false, false]);
    const all = topicMatcher('>');
    expect([all('a'), all('a.b.c'), all(''), all('.a'), all('a.'), all('a..b')]).toEqual([true, true, false, false, false, false]);
    const one = topicMatcher('*');
    expect([one('a'), one('a.b'), one('')]).toEqual([true, false, false]);
    // A token with a wildcard character among others is a literal.
    const literal = topicMatcher('a*.>b');
    expect([literal('a*.>b'), literal('ax.>b'), literal('a*.b')]).toEqual([true, false, false]);
    // A literal pattern is a plain comparison: a topic's own '*' token is just text to it.
    expect(topicMatcher('a.b')('a.b')).toBe(true);
    expect(topicMatcher('a.*')('a.*')).toBe(true);
    expect(topicMatcher('a.*')(undefined as unknown as string)).toBe(false);
  });

  it('isWildcard: a token that is exactly * or >', () => {
    fc.assert(fc.property(fc.array(fc.constantFrom('a', '.', '*', '>'), { maxLength: 8 }).map((c) => c.join('')), (p) => {
      expect(isWildcard(p)).toBe(p.split('.').some((t) => t === '*' || t === '>'));
    }), { numRuns: 2000 });
    expect([isWildcard('orders.created'), isWildcard('a*'), isWildcard('a.*'), isWildcard('>'), isWildcard(5 as unknown as string)])
      .toEqual([false, false, true, true, false]);
  });

  it('checkPattern accepts exactly non-empty tokens with > only last', () => {
    fc.assert(fc.property(fc.array(fc.constantFrom('a', '.', '*', '>'), { minLength: 1, maxLength: 8 }).map((c) => c.join('')), (p) => {
      const tokens = p.split('.');
      const valid = !tokens.includes('') && tokens.slice(0, -1).every((t) => t !== '>');
      expect(() => checkPattern(p)).toSatisfy((f: () => void) => {
        try { f(); return valid; } catch (e) { return !valid && e instanceof TypeError; }
      });
    }), { numRuns: 2000 });
  });

  it('checkPattern, topicMatcher and byTopic errors name the argument and echo it', () => {
    expect(() => checkPattern('')).toThrow(new TypeError("pattern must be a non-empty string, got ''"));
    expect(() => checkPattern(42, 'topic')).toThrow(new TypeError('topic must be a non-empty string, got 42'));
    for (const bad of ['a..b', '.a', 'a.', '.']) {
      expect(() => checkPattern(bad)).toThrow(new TypeError(`pattern must be dot-separated non-empty tokens (no leading, trailing or double dot), got '${bad}'`));
    }
    expect(() => checkPattern('a.>.b')).toThrow(new TypeError("pattern may have '>' only as its last token, got 'a.>.b'"));
    expect(() => checkPattern('>.a')).toThrow(/'>' only as its last token, got '>.a'/);
    expect(() => topicMatcher('a..b')).toThrow(/^topicMatcher: pattern must be dot-separated .* got 'a..b'$/);
    expect(() => byTopic(undefined as unknown as string)).toThrow(new TypeError('byTopic: pattern must be a non-empty string, got undefined'));
  });

  it('byTopic filters on the event topic', () => {
    const f = byTopic('orders.*.created');
    expect(f(event({ topic: 'orders.eu.created' }))).toBe(true);
    expect(f(event({ topic: 'orders.eu.updated' }))).toBe(false);
    expect(byTopic('orders')(event({ topic: 'orders' }))).toBe(true);
  });
});

describe('bySession', () => {
  const s = (sessionId?: string): FilterEvent => event({ sessionId });

  it('include: only the named sessions; no session is filtered unless allowed', () => {
    const f = bySession({ include: ['a', 'b'] });
    expect([f(s('a')), f(s('b')), f(s('c')), f(s())]).toEqual([true, true, false, false]);
    expect(bySession({ include: new Set(['a']), allowNoSession: true })(s())).toBe(true);
  });

  it('exclude: all but the named sessions; no session passes unless refused', () => {
    const f = bySession({ exclude: ['x'] });
    expect([f(s('a')), f(s('x')), f(s())]).toEqual([true, false, true]);
    expect(bySession({ exclude: ['x'], allowNoSession: false })(s())).toBe(false);
  });

  it('exclude wins over include; allowNoSession alone keeps only events with (or without) a session', () => {
    const f = bySession({ include: ['a', 'b'], exclude: ['b'] });
    expect([f(s('a')), f(s('b'))]).toEqual([true, false]);
    const withSession = bySession({ allowNoSession: false });
    expect([withSession(s('a')), withSession(s())]).toEqual([true, false]);
    const withoutSession = bySession({ allowNoSession: true });
    expect([withoutSession(s('a')), withoutSession(s())]).toEqual([true, true]);
    expect(bySession({ include: [] })(s('a'))).toBe(false);
  });

  it('copies its lists at creation', () => {
    const include = ['a'];
    const f = bySession({ include });
    include.push('b');
    expect(f(s('b'))).toBe(false);
  });

  it('errors', () => {
    expect(() => bySession(undefined as unknown as {})).toThrow(new TypeError('bySession: options must be an object, got undefined'));
    expect(() => bySession(['a'] as unknown as {})).toThrow(new TypeError('bySession: options must be an object, got ["a"]'));
    expect(() => bySession({})).toThrow(new TypeError('bySession: give include, exclude or allowNoSession, got none of them'));
    expect(() => bySession({ includes: ['a'] } as unknown as {}))
      .toThrow(new TypeError('bySession: includes is not an option (allowed: include, exclude, allowNoSession)'));
    expect(() => bySession({ include: 'a' as unknown as string[] })).toThrow(new TypeError("bySession: include must be an array or a Set of strings, got 'a'"));
    expect(() => bySession({ exclude: ['a', 2 as unknown as string] })).toThrow(new TypeError('bySession: exclude[1] must be a string, got 2'));
    expect(() => bySession({ include: ['a'], allowNoSession: 'yes' as unknown as boolean }))
      .toThrow(new TypeError("bySession: allowNoSession must be a boolean, got 'yes'"));
  });
});

describe('byHeader and byHeaders', () => {
  const h = (headers?: Record<string, string>): FilterEvent => event({ headers });

  it('a value, a list or a Set of values', () => {
    const one = byHeader('x-tenant', 'acme');
    expect([one(h({ 'x-tenant': 'acme' })), one(h({ 'x-tenant': 'other' })), one(h({})), one(h())]).toEqual([true, false, false, false]);
    const list = byHeader('x-region', ['eu', 'us']);
    expect([list(h({ 'x-region': 'us' })), list(h({ 'x-region': 'ap' })), list(h())]).toEqual([true, false, false]);
    expect(byHeader('x-region', new Set(['eu']))(h({ 'x-region': 'eu' }))).toBe(true);
    expect(byHeader('x-region', [])(h({ 'x-region': 'eu' }))).toBe(false);
  });

  it('names are exact, and an inherited property is no header', () => {
    expect(byHeader('X-Tenant', 'acme')(h({ 'x-tenant': 'acme' }))).toBe(false);
    expect(byHeader('toString', /./)(h({}))).toBe(false);
    expect(byHeader('toString', (v) => v === undefined)(h({}))).toBe(true);
  });

  it('a RegExp, the same answer on every call even with g or y, the caller\'s RegExp untouched', () => {
    const re = /^eu-/g;
    const f = byHeader('x-region', re);
    const e = h({ 'x-region': 'eu-west' });
    expect([f(e), f(e), f(e), f(h({ 'x-region': 'us-east' })), f(h())]).toEqual([true, true, true, false, false]);
    expect(re.lastIndex).toBe(0);
    const sticky = byHeader('v', /b/y);
    expect([sticky(h({ v: 'b' })), sticky(h({ v: 'ab' })), sticky(h({ v: 'b' }))]).toEqual([true, false, true]);
  });

  it('a function sees the value, or undefined when it is missing; its answer is made a boolean', () => {
    const seen: (string | undefined)[] = [];
    const f = byHeader('x-n', (v) => { seen.push(v); return (v ?? '').length as unknown as boolean; });
    expect([f(h({ 'x-n': 'abc' })), f(h())]).toEqual([true, false]);
    expect(seen).toEqual(['abc', undefined]);
  });

  it('byHeaders: every header must match, in key order, stopping at the first that fails', () => {
    const later = vi.fn(() => true);
    const f = byHeaders({ 'x-tenant': 'acme', 'x-version': /^2\./, 'x-last': later });
    expect(f(h({ 'x-tenant': 'acme', 'x-version': '2.1' }))).toBe(true);
    expect(later).toHaveBeenCalledTimes(1);
    expect(f(h({ 'x-tenant': 'other', 'x-version': '2.1' }))).toBe(false);
    expect(f(h({ 'x-tenant': 'acme', 'x-version': '1.0' }))).toBe(false);
    expect(later).toHaveBeenCalledTimes(1);
    expect(byHeaders({ a: 'x' })(h({ a: 'x' }))).toBe(true);
    expect(byHeaders({ a: 'x' })(h())).toBe(false);
  });

  it('errors', () => {
    expect(() => byHeader('', 'x')).toThrow(new TypeError("byHeader: name must be a non-empty string, got ''"));
    expect(() => byHeader(7 as unknown as string, 'x')).toThrow(new TypeError('byHeader: name must be a non-empty string, got 7'));
    expect(() => byHeader('a', 5 as unknown as string))
      .toThrow(new TypeError('byHeader: match must be a string, an array or Set of strings, a RegExp or a function, got 5'));
    expect(() => byHeader('a', { v: 1 } as unknown as string)).toThrow(/^byHeader: match must be .* got \{"v":1\}$/);
    expect(() => byHeader('a', ['x', null as unknown as string])).toThrow(new TypeError('byHeader: match[1] must be a string, got null'));
    expect(() => byHeaders(null as unknown as {})).toThrow(new TypeError('byHeaders: matchers must be an object of header name → matcher, got null'));
    expect(() => byHeaders([] as unknown as {})).toThrow(/^byHeaders: matchers must be an object .* got \[\]$/);
    expect(() => byHeaders({})).toThrow(new TypeError('byHeaders: matchers must name at least one header, got {}'));
    expect(() => byHeaders({ '': 'x' })).toThrow(new TypeError("byHeaders: a header name must be a non-empty string, got ''"));
    expect(() => byHeaders({ ok: 'x', 'x-tenant': 3 as unknown as string }))
      .toThrow(new TypeError("byHeaders: matchers['x-tenant'] must be a string, an array or Set of strings, a RegExp or a function, got 3"));
  });
});

describe('rateLimit', () => {
  it('never passes more than burst + perSecond × elapsed per key (fake clock)', () => {
    const steps = fc.array(fc.record({ dt: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 2000, noNaN: true })), key: fc.constantFrom('a', 'b', 'c') }),
      { minLength: 1, maxLength: 300 });
    fc.assert(fc.property(fc.double({ min: 0.1, max: 1000, noNaN: true }), fc.option(fc.double({ min: 1, max: 50, noNaN: true })), steps,
      (perSecond, burst, calls) => {
        const clock = fakeClock(1_000);
        const f = rateLimit({ perSecond, burst: burst ?? undefined, clock: clock.now });
        const seen = new Map<string, { first: number; passed: number }>();
        for (const { dt, key } of calls) {
          clock.advance(dt);
          const s = seen.get(key) ?? { first: clock.now(), passed: 0 };
          seen.set(key, s);
          if (f(event({ topic: key }))) s.passed++;
          const bound = (burst ?? Math.max(1, perSecond)) + perSecond * (clock.now() - s.first) / 1000;
          expect(s.passed).toBeLessThanOrEqual(bound + 1e-6);
        }
      }), { numRuns: 300 });
  });

  it('after a quiet spell long enough to fill the bucket, exactly floor(burst) pass at once (up to rounding)', () => {
    fc.assert(fc.property(fc.double({ min: 0.1, max: 1000, noNaN: true }), fc.double({ min: 1, max: 50, noNaN: true }),
      fc.array(fc.double({ min: 0, max: 500, noNaN: true }), { maxLength: 30 }), (perSecond, burst, before) => {
        const clock = fakeClock();
        const f = rateLimit({ perSecond, burst, clock: clock.now });
        for (const dt of before) { clock.advance(dt); f(event()); }
        clock.advance((burst / perSecond) * 1000 * 1.01 + 1);
        let passed = 0;
        while (f(event()) && passed <= burst) passed++;
        // The limiter lets a token short by a rounding error (1e-9) pass.
        expect(passed).toBe(Math.floor(burst + 1e-9));
      }), { numRuns: 300 });
  });

  it('a burst, then one per refill; tokens refill continuously', () => {
    const clock = fakeClock();
    const f = rateLimit({ perSecond: 2, burst: 3, clock: clock.now });
    expect([f(event()), f(event()), f(event()), f(event())]).toEqual([true, true, true, false]);
    clock.advance(250); // half a token
    expect(f(event())).toBe(false);
    clock.advance(250); // the other half: one whole token
    expect([f(event()), f(event())]).toEqual([true, false]);
    clock.advance(60_000); // full again, and no more than full
    expect([f(event()), f(event()), f(event()), f(event())]).toEqual([true, true, true, false]);
  });

  it('burst defaults to perSecond, and to 1 below one a second', () => {
    const clock = fakeClock();
    const five = rateLimit({ perSecond: 5, clock: clock.now });
    expect(Array.from({ length: 6 }, () => five(event()))).toEqual([true, true, true, true, true, false]);
    const slow = rateLimit({ perSecond: 0.5, clock: clock.now });
    expect([slow(event()), slow(event())]).toEqual([true, false]);
    clock.advance(1999);
    expect(slow(event())).toBe(false);
    clock.advance(1);
    expect(slow(event())).toBe(true);
  });

  it("keys: by topic (default), by session (no session is the key ''), by a function", () => {
    const clock = fakeClock();
    const byTopicKey = rateLimit({ perSecond: 1, clock: clock.now });
    expect([byTopicKey(event({ topic: 'a' })), byTopicKey(event({ topic: 'a' })), byTopicKey(event({ topic: 'b' }))]).toEqual([true, false, true]);
    const bySessionKey = rateLimit({ perSecond: 1, by: 'session', clock: clock.now });
    expect([bySessionKey(event({ sessionId: 's', topic: 'a' })), bySessionKey(event({ sessionId: 's', topic: 'b' }))]).toEqual([true, false]);
    expect([bySessionKey(event()), bySessionKey(event({ sessionId: '' })), bySessionKey(event({ sessionId: 't' }))]).toEqual([true, false, true]);
    const byTenant = rateLimit({ perSecond: 1, by: (e) => e.headers?.tenant ?? '?', clock: clock.now });
    expect([byTenant(event({ headers: { tenant: 'x' } })), byTenant(event({ headers: { tenant: 'x' } })), byTenant(event())]).toEqual([true, false, true]);
  });

  it('keeps at most maxKeys buckets, dropping the least recently used; a dropped key starts full again', () => {
    const clock = fakeClock();
    const f = rateLimit({ perSecond: 1, maxKeys: 2, clock: clock.now });
    const t = (topic: string): boolean => f(event({ topic }));
    expect([t('a'), t('b'), t('a')]).toEqual([true, true, false]); // a is now the most recent
    expect(t('c')).toBe(true); // drops b, the least recently used
    expect(t('a')).toBe(false); // a was kept: still empty
    expect(t('b')).toBe(true); // b was dropped: full again (and drops c)
    expect(t('c')).toBe(true);
  });

  it('a clock that goes back refills nothing', () => {
    const clock = fakeClock(10_000);
    const f = rateLimit({ perSecond: 1, clock: clock.now });
    expect([f(event()), f(event())]).toEqual([true, false]);
    clock.set(0);
    expect(f(event())).toBe(false);
    clock.set(999);
    expect(f(event())).toBe(false);
    clock.set(1000); // a second after the reading it went back to
    expect(f(event())).toBe(true);
  });

  it('runs on performance.now without a clock', () => {
    const f = rateLimit({ perSecond: 0.001, burst: 2 }); // a token takes 1000 s to come back
    expect([f(event()), f(event()), f(event())]).toEqual([true, true, false]);
  });

  it('errors', () => {
    const bad = (options: unknown): (() => unknown) => () => rateLimit(options as { perSecond: number });
    expect(bad(undefined)).toThrow(new TypeError('rateLimit: options must be an object, got undefined'));
    expect(bad({ perSecnd: 5 })).toThrow(new TypeError('rateLimit: perSecnd is not an option (allowed: perSecond, burst, by, maxKeys, clock)'));
    expect(bad({ perSecond: -1 })).toThrow(new RangeError('rateLimit: perSecond must be a number > 0, got -1'));
    expect(bad({})).toThrow(new RangeError('rateLimit: perSecond must be a number > 0, got undefined'));
    expect(bad({ perSecond: 0 })).toThrow(new RangeError('rateLimit: perSecond must be a number > 0, got 0'));
    expect(bad({ perSecond: NaN })).toThrow(new RangeError('rateLimit: perSecond must be a number > 0, got NaN'));
    expect(bad({ perSecond: '5' })).toThrow(new RangeError("rateLimit: perSecond must be a number > 0, got '5'"));
    expect(bad({ perSecond: Infinity })).toThrow(new RangeError('rateLimit: perSecond must be finite, got Infinity'));
    expect(bad({ perSecond: 1, burst: 0.5 })).toThrow(new RangeError('rateLimit: burst must be a finite number >= 1 (an event takes a whole token), got 0.5'));
    expect(bad({ perSecond: 1, burst: Infinity })).toThrow(/burst must be a finite number >= 1 .* got Infinity$/);
    expect(bad({ perSecond: 1, maxKeys: 0 })).toThrow(new RangeError('rateLimit: maxKeys must be an integer >= 1, got 0'));
    expect(bad({ perSecond: 1, maxKeys: 1.5 })).toThrow(new RangeError('rateLimit: maxKeys must be an integer >= 1, got 1.5'));
    expect(bad({ perSecond: 1, by: 'user' })).toThrow(new TypeError("rateLimit: by must be 'topic', 'session' or a function (event) => string, got 'user'"));
    expect(bad({ perSecond: 1, clock: 5 })).toThrow(new TypeError('rateLimit: clock must be a function () => milliseconds, got 5'));
    expect(bad({ perSecond: 1, clock: () => 1n })).toThrow(new TypeError('rateLimit: clock must return a finite number of milliseconds, got 1n'));
    expect(bad({ perSecond: 1, clock: () => NaN })).toThrow(new TypeError('rateLimit: clock must return a finite number of milliseconds, got NaN'));
    // The classic slip: an unbound method.
    expect(bad({ perSecond: 1, clock: performance.now })).toThrow(/^rateLimit: clock threw when called \(.*\); pass it bound \(\(\) => performance\.now\(\)\)$/);
  });
});

describe('allOf, anyOf, not', () => {
  const yes: EventFilter = () => true;
  const no: EventFilter = () => false;

  it('combine by truth table, with boolean answers', () => {
    const e = event();
    expect([allOf(yes, yes)(e), allOf(yes, no)(e), allOf(yes)(e), allOf(no)(e)]).toEqual([true, false, true, false]);
    expect([anyOf(no, no)(e), anyOf(no, yes)(e), anyOf(yes)(e)]).toEqual([false, true, true]);
    expect([not(yes)(e), not(no)(e)]).toEqual([false, true]);
    const truthy = (() => 1) as unknown as EventFilter;
    expect([allOf(truthy)(e), anyOf(truthy)(e), not(truthy)(e)]).toEqual([true, true, false]);
    expect(allOf(anyOf(no, not(no)), not(allOf(yes, no)))(e)).toBe(true);
  });

  it('short-circuit in order: a rate limit placed last spends a token only when the others passed', () => {
    const clock = fakeClock();
    const limit = rateLimit({ perSecond: 1, burst: 2, clock: clock.now });
    const f = allOf(bySession({ include: ['vip'] }), limit);
    expect(f(event({ sessionId: 'other' }))).toBe(false);
    expect(f(event({ sessionId: 'other' }))).toBe(false);
    expect([f(event({ sessionId: 'vip' })), f(event({ sessionId: 'vip' })), f(event({ sessionId: 'vip' }))]).toEqual([true, true, false]);

    // Placed first, it spends tokens on events the session filter then refuses.
    const early = allOf(rateLimit({ perSecond: 1, burst: 2, clock: clock.now }), bySession({ include: ['vip'] }));
    early(event({ sessionId: 'other' }));
    early(event({ sessionId: 'other' }));
    expect(early(event({ sessionId: 'vip' }))).toBe(false);

    const after = vi.fn(() => true);
    expect(anyOf(yes, after)(event())).toBe(true);
    expect(allOf(no, after)(event())).toBe(false);
    expect(after).not.toHaveBeenCalled();
  });

  it('copy their list of filters', () => {
    const list: EventFilter[] = [yes];
    const f = allOf(...list);
    list.push(no);
    expect(f(event())).toBe(true);
  });

  it('errors', () => {
    expect(() => allOf()).toThrow(new TypeError('allOf: give at least one filter, got none'));
    expect(() => anyOf()).toThrow(new TypeError('anyOf: give at least one filter, got none'));
    expect(() => allOf(yes, undefined as unknown as EventFilter)).toThrow(new TypeError('allOf: filters[1] must be a function (event) => boolean, got undefined'));
    expect(() => anyOf([yes, no] as unknown as EventFilter))
      .toThrow(new TypeError('anyOf: filters[0] is an array; pass the filters as arguments (anyOf(...filters)), got ["[function yes]","[function no]"]'));
    expect(() => not('x' as unknown as EventFilter)).toThrow(new TypeError("not: filter must be a function (event) => boolean, got 'x'"));
  });
});
