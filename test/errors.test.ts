import { describe, expect, it } from 'vitest';
import {
  AlreadyStoppedError, BackpressureError, BusStoppedError, CircuitOpenError, ConfigError, DuplicateCommandHandlerError, HandlerFailedError,
  HandlerLoadError, HandlerTimeoutError, NoHandlerError, NotStartedError, RingbusError, SessionClosedError, WorkerCrashedError, loadConfig,
  workerHandler, type BusEvent,
} from '../src/index.js';
import { HANDLERS, INLINE_ONLY_POOL, busFixture, failedWith, handler, memoryLogger, nextEvent } from './helpers.js';

const setup = busFixture();
/** For buses whose handlers all run inline: no worker thread to start. */
const inline = busFixture({ pool: INLINE_ONLY_POOL });

/** What every ringbus error has: its class as name, a stable code, and RingbusError/Error as ancestors. */
function expectRingbusError(err: unknown, type: new (...args: never[]) => RingbusError, code: string): void {
  expect(err).toBeInstanceOf(type);
  expect(err).toBeInstanceOf(RingbusError);
  expect(err).toBeInstanceOf(Error);
  expect((err as RingbusError).code).toBe(code);
  expect((err as RingbusError).name).toBe(type.name);
}

describe('error codes, as the library raises them', () => {
  it('ERR_RINGBUS_BACKPRESSURE: publishAsync finds no room within timeoutMs', async () => {
    const { bus } = inline({ queue: { capacity: 1 } });
    let release: (() => void) | undefined;
    bus.registerEventHandler('hold', () => new Promise<void>((resolve) => (release = resolve))); // holds the only room
    await bus.start();
    bus.publish('hold', 0);
    const err = await bus.publishAsync('orders', 1, { timeoutMs: 20 }).catch((e: unknown) => e);
    expectRingbusError(err, BackpressureError, 'ERR_RINGBUS_BACKPRESSURE');
    expect(err).toMatchObject({ topic: 'orders', timeoutMs: 20, message: "no room in the queue for topic 'orders' within 20 ms" });
    release?.();
  });

  it('ERR_RINGBUS_HANDLER_LOAD: start() with a missing export, and a registration after start() with a missing module', async () => {
    const { bus } = setup();
    bus.registerEventHandler('t', workerHandler(HANDLERS, 'noSuchExport'));
    const err = await bus.start().catch((e: unknown) => e);
    expectRingbusError(err, HandlerLoadError, 'ERR_RINGBUS_HANDLER_LOAD');
    expect((err as Error).message).toMatch(/no function export 'noSuchExport'/);

    const running = setup().bus;
    await running.start();
    let thrown: unknown;
    try {
      running.registerEventHandler('t', workerHandler('/nonexistent/module.mjs', 'run'));
    } catch (e) {
      thrown = e;
    }
    expectRingbusError(thrown, HandlerLoadError, 'ERR_RINGBUS_HANDLER_LOAD');
    // A missing export found after start() comes as a 'registration-error' event, with the same error class.
    const reported = nextEvent(running, 'registration-error');
    running.registerEventHandler('t', workerHandler(HANDLERS, 'alsoMissing'), { name: 'late' });
    const { error, handler: name, topic } = await reported;
    expect({ name, topic }).toEqual({ name: 'late', topic: 't' });
    expectRingbusError(error, HandlerLoadError, 'ERR_RINGBUS_HANDLER_LOAD');
  });

  it('ERR_RINGBUS_DUPLICATE_COMMAND_HANDLER: a second command handler for a topic', () => {
    const { bus } = setup();
    bus.registerCommandHandler('price', handler('echo'));
    let thrown: unknown;
    try {
      bus.registerCommandHandler('price', () => 2);
    } catch (e) {
      thrown = e;
    }
    expectRingbusError(thrown, DuplicateCommandHandlerError, 'ERR_RINGBUS_DUPLICATE_COMMAND_HANDLER');
    expect(thrown).toMatchObject({ topic: 'price' });
  });

  it('ERR_RINGBUS_CONFIG: loadConfig with a bad variable or file', () => {
    let thrown: unknown;
    try {
      loadConfig({ env: { RINGBUS_QUEUE_CAPACITY: 'lots' } });
    } catch (e) {
      thrown = e;
    }
    expectRingbusError(thrown, ConfigError, 'ERR_RINGBUS_CONFIG');
    expect((thrown as Error).message).toMatch(/^RINGBUS_QUEUE_CAPACITY: /);
  });
});

/**
 * Every failure a caller can see is an Error with a stable code, through the
 * public API, for worker and inline handlers; the same object reaches the
 * command's result, the 'handler-error' event and the dead letter.
 */
describe('coded errors reach callers as Error objects', () => {
  it('ERR_RINGBUS_NO_HANDLER: execute() on a topic without a command handler', async () => {
    const { bus } = inline();
    await bus.start();
    const r = await bus.execute('nobody.home', 1);
    expectRingbusError(r.error, NoHandlerError, 'ERR_RINGBUS_NO_HANDLER');
    expect(r).toMatchObject({ success: false, attempts: 0, error: { topic: 'nobody.home' } });
  });

  it('ERR_RINGBUS_HANDLER_FAILED from a worker: the handler message, its name and its stack from the worker', async () => {
    const { bus } = setup();
    bus.registerCommandHandler('reserve', handler('failTyped'));
    const event = nextEvent(bus, 'handler-error');
    await bus.start();
    const r = await bus.execute('reserve', { sku: 'A-1' });
    expectRingbusError(r.error, HandlerFailedError, 'ERR_RINGBUS_HANDLER_FAILED');
    const err = r.error as HandlerFailedError;
    expect(err).toMatchObject({ message: 'out of stock: A-1', errorName: 'InventoryError', handler: 'failTyped', topic: 'reserve', attempt: 0 });
    expect(err.stack).toMatch(/^InventoryError: out of stock: A-1\n\s+at failTyped .*handlers\.ts/);
    expect(err.cause).toBeInstanceOf(Error);
    expect(err.cause).toMatchObject({ name: 'InventoryError', message: 'out of stock: A-1', stack: err.stack });
    expect((await event).error).toBe(err); // the same object
  });

  it('ERR_RINGBUS_HANDLER_FAILED from an inline handler: cause is what it threw; the dead letter carries the same object', async () => {
    const { bus } = inline({ retry: { maxRetries: 0 }, deadLetter: {} });
    const thrown = new SyntaxError('bad input');
    bus.registerCommandHandler('parse', () => {
      throw thrown;
    }, { name: 'parser' });
    const event = nextEvent(bus, 'handler-error');
    await bus.start();
    const r = await bus.execute('parse', 'x');
    expectRingbusError(r.error, HandlerFailedError, 'ERR_RINGBUS_HANDLER_FAILED');
    expect(r.error).toMatchObject({ message: 'bad input', errorName: 'SyntaxError', handler: 'parser' });
    expect(r.error?.cause).toBe(thrown);
    expect(r.error?.stack).toBe(thrown.stack);
    expect((await event).error).toBe(r.error);
    await bus.drain();
    const [entry] = bus.deadLetters.list();
    expect(entry).toMatchObject({ error: 'bad input', errorName: 'SyntaxError', errorCode: 'ERR_RINGBUS_HANDLER_FAILED' });
    expect(entry.failure).toBe(r.error);
    expect(Object.keys(entry)).not.toContain('failure'); // not written to a file, not in copies
  });

  it('ERR_RINGBUS_CIRCUIT_OPEN: execute() while the circuit is open; cause is the failure before it opened', async () => {
    const { bus } = setup({ circuitBreaker: { failureThreshold: 1, recoveryTimeoutMs: 60_000 } });
    bus.registerCommandHandler('cmd', handler('failTyped'), { name: 'svc' });
    await bus.start();
    const first = await bus.execute('cmd', { sku: 'B' });
    expect(first).toEqual(failedWith('ERR_RINGBUS_HANDLER_FAILED', 'out of stock: B', 1));
    expect(bus.circuitState('svc')).toBe('open');
    const r = await bus.execute('cmd', { sku: 'C' });
    expectRingbusError(r.error, CircuitOpenError, 'ERR_RINGBUS_CIRCUIT_OPEN');
    expect(r).toMatchObject({ attempts: 0, error: { handler: 'svc', message: "circuit for handler 'svc' is open" } });
    expect(r.error?.cause).toBe(first.error);
  });

  it('ERR_RINGBUS_HANDLER_TIMEOUT: an inline handler running past handlerTimeoutMs', async () => {
    const { bus } = inline({ handlerTimeoutMs: 50 });
    bus.registerCommandHandler('stuck', () => new Promise(() => {}), { name: 'stuck' }); // never settles
    const failed = nextEvent(bus, 'handler-error');
    await bus.start();
    const r = await bus.execute('stuck', 1);
    expectRingbusError(r.error, HandlerTimeoutError, 'ERR_RINGBUS_HANDLER_TIMEOUT');
    expect(r).toMatchObject({ attempts: 1, error: { handler: 'stuck', timeoutMs: 50, message: "handler 'stuck' timed out after 50 ms" } });
    expect((await failed).error).toBe(r.error);
    expect(bus.stats()).toMatchObject({ handlerTimeouts: 1, failed: 1 });
  });

  it('ERR_RINGBUS_HANDLER_TIMEOUT and ERR_RINGBUS_WORKER_CRASHED from worker handlers', async () => {
    const { bus } = setup({ handlerTimeoutMs: 300, pool: { maxThreads: 1 } });
    bus.registerCommandHandler('hang', handler('hang'));
    bus.registerCommandHandler('exit', handler('exit'));
    await bus.start();
    const hung = await bus.execute('hang', 1);
    expectRingbusError(hung.error, HandlerTimeoutError, 'ERR_RINGBUS_HANDLER_TIMEOUT');
    expect(hung).toMatchObject({ attempts: 1, error: { handler: 'hang', timeoutMs: 300 } });
    const crashed = await bus.execute('exit', 1);
    expectRingbusError(crashed.error, WorkerCrashedError, 'ERR_RINGBUS_WORKER_CRASHED');
    expect(crashed).toMatchObject({ attempts: 1, error: { handler: 'exit', message: expect.stringMatching(/^worker exited while running handler 'exit'/) } });
  });

  it('ERR_RINGBUS_BACKPRESSURE: execute() finds no room within timeoutMs, or drop-oldest drops the command', async () => {
    const { bus } = inline({ queue: { capacity: 1 } });
    let release: (() => void) | undefined;
    bus.registerEventHandler('hold', () => new Promise<void>((resolve) => (release = resolve))); // holds the only room
    bus.registerCommandHandler('cmd', () => 'ran');
    await bus.start();
    bus.publish('hold', 0);
    const r = await bus.execute('cmd', 1, { timeoutMs: 20 });
    expectRingbusError(r.error, BackpressureError, 'ERR_RINGBUS_BACKPRESSURE');
    expect(r).toMatchObject({ attempts: 0, error: { topic: 'cmd', timeoutMs: 20, reason: 'timeout' } });
    release?.();

    const dropping = inline({ queue: { capacity: 1, strategy: 'drop-oldest' } }).bus;
    dropping.registerCommandHandler('cmd', () => 'ran');
    const pending = dropping.execute('cmd', 'oldest'); // buffered before start: dropped by the next one
    dropping.publish('other', 1);
    const dropped = await pending;
    expectRingbusError(dropped.error, BackpressureError, 'ERR_RINGBUS_BACKPRESSURE');
    expect(dropped.error).toMatchObject({ topic: 'cmd', reason: 'dropped' });
  });

  it('ERR_RINGBUS_BUS_STOPPED: execute() on a stopped bus; publishAsync() resolves false', async () => {
    const { bus } = inline();
    bus.registerCommandHandler('cmd', () => 'ran');
    await bus.start();
    await bus.stop();
    const r = await bus.execute('cmd', 1);
    expectRingbusError(r.error, BusStoppedError, 'ERR_RINGBUS_BUS_STOPPED');
    expect(r.error?.message).toBe('the bus is stopped');
    expect(await bus.publishAsync('cmd', 1)).toBe(false);
  });
});

describe('what a handler throws stays its own', () => {
  it('ERR_RINGBUS_CIRCUIT_OPEN for an inline handler: execute() while its circuit is open', async () => {
    const { bus } = inline({ circuitBreaker: { failureThreshold: 1, recoveryTimeoutMs: 60_000 } });
    bus.registerCommandHandler('cmd', () => {
      throw new RangeError('down');
    }, { name: 'glue' });
    await bus.start();
    const first = await bus.execute('cmd', 1);
    expect(first).toEqual(failedWith('ERR_RINGBUS_HANDLER_FAILED', 'down', 1));
    const r = await bus.execute('cmd', 2);
    expectRingbusError(r.error, CircuitOpenError, 'ERR_RINGBUS_CIRCUIT_OPEN');
    expect(r.error).toMatchObject({ handler: 'glue' });
    expect(r.error?.cause).toBe(first.error);
  });

  it("an inline handler rethrowing another bus's error, or throwing a revoked Proxy, fails as HANDLER_FAILED; the bus goes on", async () => {
    const { bus } = inline();
    const foreign = new CircuitOpenError('elsewhere');
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    bus.registerCommandHandler('rethrow', () => {
      throw foreign;
    });
    bus.registerCommandHandler('proxy', () => {
      throw proxy;
    });
    bus.registerCommandHandler('ok', () => 'fine');
    await bus.start();
    const rethrown = await bus.execute('rethrow', 1);
    expectRingbusError(rethrown.error, HandlerFailedError, 'ERR_RINGBUS_HANDLER_FAILED');
    expect(rethrown.error?.cause).toBe(foreign);
    const weird = await bus.execute('proxy', 1);
    expectRingbusError(weird.error, HandlerFailedError, 'ERR_RINGBUS_HANDLER_FAILED');
    expect(weird.error?.cause).toBe(proxy);
    expect(await bus.execute('ok', 1)).toMatchObject({ success: true, result: 'fine' });
  });

  it("a worker error named 'HandlerLoadError' is the handler's failure, not a load failure", async () => {
    const { bus } = setup();
    bus.registerCommandHandler('c', handler('fail'));
    await bus.start();
    const r = await bus.execute('c', { message: 'x', name: 'HandlerLoadError' });
    expect(r.error?.code).toBe('ERR_RINGBUS_HANDLER_FAILED');
  });

  it("a worker error's stack keeps its frames however long its message", async () => {
    const { bus } = setup();
    bus.registerCommandHandler('c', handler('fail'));
    await bus.start();
    const r = await bus.execute('c', { message: 'm'.repeat(20_000) });
    expect(r.error?.stack).toMatch(/^Error: m{100}.*…\n\s+at fail .*handlers\.ts/s);
  });

  it("a 'handler-error' listener that throws is logged; the command still resolves and drain() ends", async () => {
    const log = memoryLogger();
    const { bus } = inline({ logger: log });
    bus.on('handler-error', () => {
      throw new Error('listener bug');
    });
    bus.registerCommandHandler('c', () => {
      throw new Error('handler bug');
    });
    await bus.start();
    expect(await bus.execute('c', 1)).toEqual(failedWith('ERR_RINGBUS_HANDLER_FAILED', 'handler bug', 1));
    await bus.drain();
    expect(log.lines.some((l) => l.msg?.includes("a 'handler-error' listener threw"))).toBe(true);
  });
});

describe('misuse is loud', () => {
  it('ERR_RINGBUS_NOT_STARTED: drain() on a bus never started rejects; events buffered before start() still run', async () => {
    const { bus } = inline();
    const seen: number[] = [];
    bus.registerEventHandler('t', (e: BusEvent<number>) => void seen.push(e.payload));
    expect(bus.publish('t', 1)).toBe(true);
    const err = await bus.drain().catch((e: unknown) => e);
    expectRingbusError(err, NotStartedError, 'ERR_RINGBUS_NOT_STARTED');
    expect((err as Error).message).toBe('drain() on a bus that was never started: call start() first');
    const starting = bus.start();
    await bus.drain(); // starting: waits for the buffered event
    await starting;
    expect(seen).toEqual([1]);
  });

  it('ERR_RINGBUS_ALREADY_STOPPED: start() after stop(); a second start() while starting waits for the first', async () => {
    const { bus } = inline();
    const a = bus.start();
    const b = bus.start();
    await Promise.all([a, b]);
    await bus.stop();
    const err = await bus.start().catch((e: unknown) => e);
    expectRingbusError(err, AlreadyStoppedError, 'ERR_RINGBUS_ALREADY_STOPPED');
    expect((err as Error).message).toBe('cannot start a bus that is stopped: a bus runs once; create a new one');
  });

  it('deadLetters.replay() before start() and after stop() rejects with a code', async () => {
    const { bus } = inline({ deadLetter: {} });
    await expect(bus.deadLetters.replay()).rejects.toMatchObject({ code: 'ERR_RINGBUS_NOT_STARTED' });
    await bus.start();
    await bus.stop();
    await expect(bus.deadLetters.replay()).rejects.toMatchObject({ code: 'ERR_RINGBUS_BUS_STOPPED' });
  });

  it('ERR_RINGBUS_SESSION_CLOSED: a closed session publishes and registers nothing', async () => {
    const { bus } = inline();
    await bus.start();
    const session = bus.session('s-1');
    session.close();
    const calls = [() => session.publish('t', 1), () => session.registerEventHandler('t', () => {})];
    for (const call of calls) {
      let thrown: unknown;
      try {
        call();
      } catch (e) {
        thrown = e;
      }
      expectRingbusError(thrown, SessionClosedError, 'ERR_RINGBUS_SESSION_CLOSED');
      expect(thrown).toMatchObject({ sessionId: 's-1', message: 'session s-1 is closed' });
    }
    // The promise-returning calls reject instead of throwing.
    await expect(session.execute('t', 1)).rejects.toMatchObject({ code: 'ERR_RINGBUS_SESSION_CLOSED' });
    await expect(session.publishAsync('t', 1)).rejects.toMatchObject({ code: 'ERR_RINGBUS_SESSION_CLOSED' });
  });

  it('circuitState() of a name no handler has is a TypeError listing the known ones', async () => {
    const { bus } = setup({ circuitBreaker: { failureThreshold: 1 } });
    bus.registerEventHandler('orders', () => {}, { name: 'ship' });
    bus.registerCommandHandler('price', () => 1, { name: 'quote' });
    expect(bus.circuitState('ship')).toBe('closed');
    expect(() => bus.circuitState('shipp')).toThrow(new TypeError("circuitState: no handler named 'shipp' (registered: 'ship', 'quote')"));
    expect(() => bus.circuitState('ship', 'price')).toThrow(/no handler named 'ship' on topic 'price' \(registered: 'quote'\)/);
    expect(() => bus.circuitState('orders')).toThrow(TypeError); // a topic is not a handler
  });
});
