import { describe, expect, it } from 'vitest';
import { MessageBus, DEFAULT_OPTIONS, type BusOptions } from '../src/index.js';
import { INLINE_ONLY_POOL, busFixture, quietLogger } from './helpers.js';

const make = (options: unknown): MessageBus => new MessageBus(options as BusOptions);

describe('option validation', () => {
  it('accepts no options and documents its defaults', () => {
    expect(() => new MessageBus()).not.toThrow();
    expect(DEFAULT_OPTIONS.queue).toMatchObject({ capacity: 65536, highWaterMark: 0.8, lowWaterMark: 0.5, maxPayloadBytes: 1048576, strategy: 'reject-new' });
    expect(DEFAULT_OPTIONS.pool.maxBatch).toBe(1024);
    expect(DEFAULT_OPTIONS).toMatchObject({ codec: 'json', strictPayloads: true });
  });

  it.each([
    [null, TypeError, /options must be an object, got null/],
    [{ bogus: 1 }, TypeError, /options\.bogus is not an option \(allowed: pool, queue, logger, logLevel, retry, circuitBreaker, deadLetter, handlerTimeoutMs, metrics, codec, strictPayloads, transport, scheduler\)/],
    [{ logLevel: 'loud' }, RangeError, /logLevel must be one of 'debug', 'info', 'warn', 'error', 'silent', got 'loud'/],
    [{ pool: 3 }, TypeError, /pool must be an object, got 3/],
    [{ queue: [] }, TypeError, /queue must be an object/],
    [{ pool: { threads: 2 } }, TypeError, /pool\.threads is not an option \(allowed: minThreads, maxThreads/],
    [{ queue: { size: 2 } }, TypeError, /queue\.size is not an option/],
    [{ pool: { maxThreads: 0 } }, RangeError, /pool\.maxThreads must be in \[1, 1024\], got 0/],
    [{ pool: { maxThreads: 1.5 } }, TypeError, /pool\.maxThreads must be an integer, got 1\.5/],
    [{ pool: { maxThreads: '2' } }, TypeError, /pool\.maxThreads must be an integer, got '2'/],
    [{ pool: { minThreads: 3, maxThreads: 2 } }, RangeError, /pool\.minThreads must be in \[0, 2\], got 3/],
    [{ pool: { minThreads: -1 } }, RangeError, /pool\.minThreads must be in \[0, /],
    [{ pool: { idleTimeoutMs: -5 } }, RangeError, /pool\.idleTimeoutMs must be in \[0, .*\], got -5/],
    [{ pool: { maxBatch: 0 } }, RangeError, /pool\.maxBatch must be in \[1, 1048576\], got 0/],
    [{ pool: { lingerMs: 1e9 } }, RangeError, /pool\.lingerMs must be in \[0, 60000\], got 1000000000/],
    [{ queue: { capacity: 0 } }, RangeError, /queue\.capacity must be in \[1, 1073741824\], got 0/],
    [{ queue: { capacity: NaN } }, TypeError, /queue\.capacity must be an integer, got NaN/],
    [{ queue: { highWaterMark: 0.4, lowWaterMark: 0.5 } }, RangeError, /queue\.highWaterMark must be in \(lowWaterMark, 1\] = \(0\.5, 1\], got 0\.4/],
    [{ queue: { highWaterMark: 1.2 } }, RangeError, /queue\.highWaterMark must be in \(lowWaterMark, 1\]/],
    [{ queue: { lowWaterMark: 1 } }, RangeError, /queue\.lowWaterMark must be in \[0, 1\), got 1/],
    [{ queue: { lowWaterMark: 'low' } }, TypeError, /queue\.lowWaterMark must be a finite number, got 'low'/],
    [{ queue: { maxPayloadBytes: 0 } }, RangeError, /queue\.maxPayloadBytes must be in \[1, /],
    [{ queue: { ringBytes: 100 } }, RangeError, /queue\.ringBytes must be in \[4096, /],
    [{ queue: { strategy: 'drop-newest' } }, RangeError, /queue\.strategy must be one of 'reject-new', 'drop-oldest', 'adaptive-rate-limit', got 'drop-newest'/],
    [{ queue: { maxDelayMs: -1 } }, RangeError, /queue\.maxDelayMs must be >= 0, got -1/],
    [{ logger: {} }, TypeError, /logger must have debug, info, warn and error methods \(pino-compatible\); logger\.debug is missing/],
    [{ logger: { debug() {}, info() {}, warn() {} } }, TypeError, /logger\.error is missing/],
    [{ pool: { resourceLimits: { maxOldGenerationSizeMb: 0 } } }, RangeError, /pool\.resourceLimits\.maxOldGenerationSizeMb must be a number > 0, got 0/],
    [{ pool: { resourceLimits: { heap: 1 } } }, TypeError, /pool\.resourceLimits\.heap is not an option/],
    [{ retry: 3 }, TypeError, /retry must be false or an object, got 3/],
    [{ retry: { tries: 3 } }, TypeError, /retry\.tries is not an option \(allowed: maxRetries, initialDelayMs, maxDelayMs, multiplier, jitter\)/],
    [{ retry: { maxRetries: -1 } }, RangeError, /retry\.maxRetries must be in \[0, 1000\], got -1/],
    [{ retry: { maxRetries: 1.5 } }, TypeError, /retry\.maxRetries must be an integer, got 1\.5/],
    [{ retry: { initialDelayMs: -1 } }, RangeError, /retry\.initialDelayMs must be in \[0, 86400000\], got -1/],
    [{ retry: { initialDelayMs: 500, maxDelayMs: 100 } }, RangeError, /retry\.maxDelayMs must be in \[500, 86400000\], got 100/],
    [{ retry: { multiplier: 0.5 } }, RangeError, /retry\.multiplier must be >= 1, got 0\.5/],
    [{ retry: { multiplier: Infinity } }, TypeError, /retry\.multiplier must be a finite number/],
    [{ retry: { jitter: 'yes' } }, TypeError, /retry\.jitter must be a boolean, got 'yes'/],
    [{ circuitBreaker: 'on' }, TypeError, /circuitBreaker must be false or an object, got 'on'/],
    [{ circuitBreaker: { threshold: 1 } }, TypeError, /circuitBreaker\.threshold is not an option \(allowed: failureRateThreshold, minimumCalls, windowMs, recoveryTimeoutMs, halfOpenMaxCalls, successThreshold, slowCallMs, slowCallRateThreshold, hold, failureThreshold\)/],
    [{ circuitBreaker: { failureThreshold: 0 } }, RangeError, /circuitBreaker\.failureThreshold must be in \[1, 100000\], got 0/],
    [{ circuitBreaker: { windowMs: 0 } }, RangeError, /circuitBreaker\.windowMs must be in \[10, /],
    [{ circuitBreaker: { failureRateThreshold: 0 } }, RangeError, /circuitBreaker\.failureRateThreshold must be in \(0, 1\], got 0/],
    [{ circuitBreaker: { failureRateThreshold: 1.5 } }, RangeError, /circuitBreaker\.failureRateThreshold must be in \(0, 1\], got 1\.5/],
    [{ circuitBreaker: { minimumCalls: 0 } }, RangeError, /circuitBreaker\.minimumCalls must be in \[1, /],
    [{ circuitBreaker: { halfOpenMaxCalls: 0 } }, RangeError, /circuitBreaker\.halfOpenMaxCalls must be in \[1, 1024\], got 0/],
    [{ circuitBreaker: { slowCallMs: -1 } }, RangeError, /circuitBreaker\.slowCallMs must be in \[1, /],
    [{ circuitBreaker: { hold: 'yes' } }, TypeError, /circuitBreaker\.hold must be a boolean, got 'yes'/],
    [{ deadLetter: { maxBytes: 10 } }, RangeError, /deadLetter\.maxBytes must be in \[1024, /],
    [{ circuitBreaker: { recoveryTimeoutMs: 'soon' } }, TypeError, /circuitBreaker\.recoveryTimeoutMs must be an integer, got 'soon'/],
    [{ circuitBreaker: { successThreshold: 0 } }, RangeError, /circuitBreaker\.successThreshold must be in \[1, /],
    [{ deadLetter: [] }, TypeError, /deadLetter must be false or an object/],
    [{ deadLetter: { file: 'x' } }, TypeError, /deadLetter\.file is not an option \(allowed: capacity, maxBytes, path, maxFileBytes\)/],
    [{ deadLetter: { capacity: 0 } }, RangeError, /deadLetter\.capacity must be in \[1, 10000000\], got 0/],
    [{ deadLetter: { path: '' } }, TypeError, /deadLetter\.path must be a non-empty string \(a JSON Lines file\), got ''/],
    [{ deadLetter: { path: 42 } }, TypeError, /deadLetter\.path must be a non-empty string/],
    [{ handlerTimeoutMs: 0 }, RangeError, /handlerTimeoutMs must be in \[1, 86400000\], got 0/],
    [{ handlerTimeoutMs: '5s' }, TypeError, /handlerTimeoutMs must be an integer, got '5s'/],
    // More codec cases in codec.test.ts.
    [{ codec: 'v8' }, RangeError, /codec must be 'json' or 'structured', or \{ module, export \} \(a custom codec module\), got 'v8'/],
    [{ codec: { module: './missing-codec.mjs' } }, RangeError, /codec\.module '\.\/missing-codec\.mjs' does not exist/],
    [{ strictPayloads: 1 }, TypeError, /strictPayloads must be a boolean, got 1/],
  ])('rejects %j', (options, type, message) => {
    expect(() => make(options)).toThrow(type);
    expect(() => make(options)).toThrow(message);
  });

  // Its buses run inline handlers only: no worker thread to start.
  const setup = busFixture({ pool: INLINE_ONLY_POOL });

  it('takes true for a feature with its defaults, and false to turn it off', async () => {
    // `true` is what RINGBUS_RETRY=true etc. give; the type only admits false or an object, hence the cast.
    const { bus } = setup({ retry: true, circuitBreaker: true, deadLetter: true, handlerTimeoutMs: false } as unknown as BusOptions);
    bus.registerEventHandler('t', () => {
      throw new Error('always');
    }, { name: 'broken' });
    await bus.start();
    bus.publish('t', 1);
    await bus.drain();
    // retry: true is maxRetries 3 (four attempts; delays of at most 100 + 200 + 400 ms, jittered),
    // then deadLetter: true takes the delivery.
    expect(bus.stats()).toMatchObject({ failed: 4, retried: 3, deadLettered: 1 });
    expect(bus.deadLetters.list()).toEqual([expect.objectContaining({ handler: 'broken', attempts: 4, error: 'always' })]);
    // circuitBreaker: true is a 50% failure rate over at least 20 calls in 10 s: four failed calls leave it closed.
    expect(bus.circuitState('broken')).toBe('closed');
    for (let i = 0; i < 4; i++) bus.publish('t', 2 + i);
    await bus.drain();
    // 20 failed attempts now: the twentieth opened it (the last delivery's final attempt was that one).
    expect(bus.stats()).toMatchObject({ failed: 20, retried: 15, deadLettered: 5, held: 0 });
    expect(bus.circuitState('broken')).toBe('open');
    expect(bus.deadLetters.list()[4]).toMatchObject({ attempts: 4, error: 'always', errorCode: 'ERR_RINGBUS_HANDLER_FAILED' });

    const off = setup({ retry: false, circuitBreaker: false, deadLetter: false, handlerTimeoutMs: false }).bus;
    off.registerEventHandler('t', () => {
      throw new Error('always');
    }, { name: 'broken' });
    await off.start();
    for (let i = 0; i < 6; i++) off.publish('t', i);
    await off.drain();
    expect(off.stats()).toMatchObject({ failed: 6, retried: 0, deadLettered: 0 });
    expect(off.circuitState('broken')).toBe('closed');
    expect(off.deadLetters.size).toBe(0);
  });

  it('keeps the default minThreads within a smaller maxThreads', () => {
    expect(() => make({ pool: { maxThreads: 1 }, logger: quietLogger() })).not.toThrow();
  });
});

describe('call validation', () => {
  const bus = new MessageBus({ logger: quietLogger(), pool: { maxThreads: 1 } });

  it('names the bad topic, priority, handler and option', () => {
    expect(() => bus.publish('', 1)).toThrow(/topic must be a non-empty string, got ''/);
    expect(() => bus.publish(42 as unknown as string, 1)).toThrow(TypeError);
    expect(() => bus.publish('t', 1, { priority: 'urgent' as never })).toThrow(
      /priority must be one of 'critical', 'high', 'normal', 'low', got "urgent"/,
    );
    expect(() => bus.publish('t', 1, { sessionId: 5 as never })).toThrow(/sessionId for topic 't' must be a string, got 5/);
    expect(() => bus.registerEventHandler('t', 'not a handler' as never)).toThrow(
      /handler for topic 't' must be a function or workerHandler\(module, export\)/,
    );
    expect(() => bus.registerEventHandler('t', () => {}, { priority: 'top' as never })).toThrow(
      /priority of the handler for topic 't' must be one of/,
    );
    expect(() => bus.registerEventHandler('t', () => {}, { name: '' })).toThrow(/name of the handler for topic 't' must be a non-empty string/);
    expect(() => bus.session('')).toThrow(/session id must be a non-empty string/);
    expect(() => bus.stop({ timeoutMs: -1 })).toThrow(/stop option timeoutMs must be a number >= 0, got -1/);
    expect(() => bus.stop({ drain: 'yes' as never })).toThrow(/stop option drain must be a boolean/);
  });

  it('rejects payloads JSON cannot carry, naming the topic', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => bus.publish('orders.created', cyclic)).toThrow(TypeError);
    expect(() => bus.publish('orders.created', cyclic)).toThrow(/payload for topic 'orders\.created' cannot be encoded as JSON/);
    expect(() => bus.publish('orders.created', { n: 10n })).toThrow(/payload for topic 'orders\.created' cannot be encoded as JSON: .*BigInt/);
    expect(() => bus.publish('orders.created', () => 1)).toThrow(/payload for topic 'orders\.created' cannot be sent as JSON: payload is a function/);
    const stats = bus.stats();
    expect(stats.published).toBe(0);
    expect(stats.rejected).toBe(0);
  });

  it('rejects payloads over queue.maxPayloadBytes with a RangeError', () => {
    const small = new MessageBus({ logger: quietLogger(), pool: { maxThreads: 1 }, queue: { maxPayloadBytes: 1000 } });
    expect(() => small.publish('big', 'x'.repeat(1000))).toThrow(RangeError);
    expect(() => small.publish('big', 'x'.repeat(1000))).toThrow(
      /payload for topic 'big' is 1002 bytes, more than queue\.maxPayloadBytes \(1000\)/,
    );
    expect(() => small.publish('big', new Uint8Array(1001))).toThrow(/is 1001 bytes/);
    expect(small.publish('big', 'x'.repeat(990))).toBe(true);
  });

  it('rejects async calls with bad input as rejected promises', async () => {
    await expect(bus.publishAsync('t', 1, { timeoutMs: -2 })).rejects.toThrow(/timeoutMs must be a number >= 0, got -2/);
    await expect(bus.execute('', 1)).rejects.toThrow(/topic must be a non-empty string/);
  });
});
