import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type BreakerSettings, type CircuitState } from '../src/breaker/circuit_breaker.js';
import { ExponentialBackoff } from '../src/retry/backoff.js';
import { RetryScheduler, type SchedulerClock } from '../src/retry/retry_scheduler.js';

/** A clock the test moves by hand. */
class FakeClock implements SchedulerClock {
  t = 0;
  timers: { at: number; fn: () => void; id: number }[] = [];
  #id = 0;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#id;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (next === undefined || next.at > until) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
    }
    this.t = until;
  }
}

describe('ExponentialBackoff', () => {
  it('doubles from the initial delay up to the cap without jitter', () => {
    const b = new ExponentialBackoff({ initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2, jitter: false });
    expect([1, 2, 3, 4, 5, 6].map((r) => b.delayMs(r))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('spreads delays uniformly over [0, computed] with full jitter', () => {
    let i = 0;
    const randoms = [0, 0.25, 0.5, 0.999];
    const b = new ExponentialBackoff({ initialDelayMs: 100, maxDelayMs: 10_000, multiplier: 2, jitter: true }, () => randoms[i++ % 4]);
    expect([3, 3, 3, 3].map((r) => b.delayMs(r))).toEqual([0, 100, 200, 399.6]);
    const real = new ExponentialBackoff({ initialDelayMs: 100, maxDelayMs: 10_000, multiplier: 2, jitter: true });
    const samples = Array.from({ length: 2000 }, () => real.delayMs(3));
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...samples)).toBeLessThanOrEqual(400);
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    expect(mean).toBeGreaterThan(170); // uniform on [0, 400]: mean 200, sd of the mean ~2.6
    expect(mean).toBeLessThan(230);
    expect(samples.filter((s) => s < 100).length).toBeGreaterThan(350); // ~25% in each quarter
  });
});

describe('RetryScheduler', () => {
  it('runs items in due order on one timer, ties in scheduling order', () => {
    const clock = new FakeClock();
    const ran: string[] = [];
    const s = new RetryScheduler<string>((x) => ran.push(x), clock);
    s.schedule(300, 'c');
    s.schedule(100, 'a1');
    s.schedule(200, 'b');
    s.schedule(100, 'a2');
    expect(clock.timers).toHaveLength(1);
    expect(s.size).toBe(4);
    clock.advance(150);
    expect(ran).toEqual(['a1', 'a2']);
    clock.advance(1000);
    expect(ran).toEqual(['a1', 'a2', 'b', 'c']);
    expect(s.size).toBe(0);
  });

  it('clear() hands back what was waiting', () => {
    const clock = new FakeClock();
    const s = new RetryScheduler<number>(() => {}, clock);
    for (let i = 0; i < 50; i++) s.schedule(1000 - i, i);
    expect(s.clear()).toHaveLength(50);
    expect(clock.timers).toHaveLength(0);
  });
});

describe('CircuitBreaker', () => {
  const rate: BreakerSettings = {
    failureRateThreshold: 0.5, minimumCalls: 10, windowMs: 1000, recoveryTimeoutMs: 5000, halfOpenMaxCalls: 1, successThreshold: 2,
    slowCallMs: undefined, slowCallRateThreshold: 1, hold: true, failureThreshold: undefined,
  };
  const failure = { message: 'boom', name: 'Error', code: 'ERR_RINGBUS_HANDLER_FAILED' };
  function breaker(options: Partial<BreakerSettings> = {}): { b: CircuitBreaker; clock: FakeClock; moves: string[] } {
    const clock = new FakeClock();
    const moves: string[] = [];
    const b = new CircuitBreaker('t', 'h', { ...rate, ...options }, clock, (from: CircuitState, to: CircuitState) => moves.push(`${from}->${to}`));
    return { b, clock, moves };
  }

  it('stays closed below minimumCalls, however many of them failed', () => {
    const { b } = breaker();
    for (let i = 0; i < 9; i++) b.recordFailure(failure);
    expect(b.state).toBe('closed');
    b.recordFailure(failure); // the 10th call: 100% failed
    expect(b.state).toBe('open');
  });

  it('opens at the failure rate over the window, not below it', () => {
    const { b, moves } = breaker();
    b.recordSuccesses(11, 0);
    for (let i = 0; i < 10; i++) b.recordFailure(failure); // 10 of 21 failed: 47.6%
    expect(b.state).toBe('closed');
    b.recordFailure(failure); // 11 of 22: 50%
    expect(b.state).toBe('open');
    expect(moves).toEqual(['closed->open']);
  });

  it('a 1% failure rate never opens it', () => {
    const { b, clock } = breaker();
    for (let i = 0; i < 10_000; i++) {
      b.recordSuccesses(99, 0);
      b.recordFailure(failure);
      clock.advance(1);
    }
    expect(b.state).toBe('closed');
  });

  it('forgets outcomes older than the window', () => {
    const { b, clock } = breaker();
    for (let i = 0; i < 9; i++) b.recordFailure(failure);
    clock.advance(1100); // every bucket of those 9 failures left the window
    b.recordSuccesses(9, 0);
    b.recordFailure(failure); // 1 of 10 in the window
    expect(b.state).toBe('closed');
  });

  it('goes half-open after recoveryTimeoutMs, closes after successThreshold trial successes', () => {
    const { b, clock, moves } = breaker();
    for (let i = 0; i < 10; i++) b.recordFailure(failure);
    clock.advance(4999);
    expect(b.state).toBe('open');
    clock.advance(1);
    expect(b.state).toBe('half_open');
    expect(b.trialSucceeded()).toBe(false);
    expect(b.state).toBe('half_open');
    expect(b.trialSucceeded()).toBe(true);
    expect(b.state).toBe('closed');
    expect(moves).toEqual(['closed->open', 'open->half_open', 'half_open->closed']);
    // Closed again with a clean window: 9 failures are below minimumCalls.
    for (let i = 0; i < 9; i++) b.recordFailure(failure);
    expect(b.state).toBe('closed');
  });

  it('reopens on any failure while half-open, with a fresh recovery timeout, and keeps the last failure', () => {
    const { b, clock, moves } = breaker();
    for (let i = 0; i < 10; i++) b.recordFailure(failure);
    clock.advance(5000);
    expect(b.trialSucceeded()).toBe(false);
    b.recordFailure({ ...failure, message: 'still down' });
    expect(b.state).toBe('open');
    expect(b.lastFailure?.message).toBe('still down');
    clock.advance(4999);
    expect(b.state).toBe('open');
    clock.advance(1);
    expect(b.state).toBe('half_open');
    expect(moves).toEqual(['closed->open', 'open->half_open', 'half_open->open', 'open->half_open']);
  });

  it('opens on the slow-call rate when a slow-call rule is set', () => {
    const { b } = breaker({ slowCallMs: 100, slowCallRateThreshold: 0.8 });
    b.recordSuccesses(10, 7);
    expect(b.state).toBe('closed');
    b.recordSuccesses(10, 10); // 17 of 20 slow: 85%
    expect(b.state).toBe('open');
  });

  it('with the deprecated failureThreshold, counts failures in the window whatever the rate', () => {
    const { b, clock } = breaker({ failureThreshold: 3 });
    b.recordSuccesses(1000, 0);
    b.recordFailure(failure);
    b.recordFailure(failure);
    clock.advance(1100); // both left the window
    b.recordFailure(failure);
    expect(b.state).toBe('closed');
    b.recordFailure(failure);
    b.recordFailure(failure);
    expect(b.state).toBe('open');
  });
});
