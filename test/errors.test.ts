import { describe, expect, it } from 'vitest';
import {
  BackpressureError, BusStoppedError, CircuitOpenError, ConfigError, DuplicateCommandHandlerError, HandlerLoadError, HandlerTimeoutError,
  RingbusError, loadConfig, workerHandler,
} from '../src/index.js';
import { HANDLERS, busFixture, handler, nextEvent } from './helpers.js';

const setup = busFixture();

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
    const { bus } = setup({ queue: { capacity: 1 } });
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
 * These three never reach the caller as objects: execute() resolves and
 * handler-error events carry the error's message. What users can rely on is
 * that message, which the exported classes produce, and the classes' codes.
 */
describe('errors that reach users as their message', () => {
  it('ERR_RINGBUS_STOPPED: execute() on a stopped bus', async () => {
    const { bus } = setup();
    bus.registerCommandHandler('cmd', () => 'ran');
    await bus.start();
    await bus.stop();
    const stopped = new BusStoppedError('stopped');
    expectRingbusError(stopped, BusStoppedError, 'ERR_RINGBUS_STOPPED');
    expect(await bus.execute('cmd', 1)).toEqual({ success: false, error: stopped.message, attempts: 0 });
    expect(await bus.publishAsync('cmd', 1)).toBe(false);
  });

  it('ERR_RINGBUS_CIRCUIT_OPEN: execute() while the circuit is open', async () => {
    const { bus } = setup({ circuitBreaker: { failureThreshold: 1, recoveryTimeoutMs: 60_000 } });
    bus.registerCommandHandler('cmd', () => {
      throw new Error('down');
    }, { name: 'svc' });
    await bus.start();
    expect(await bus.execute('cmd', 1)).toEqual({ success: false, error: 'down', attempts: 1 });
    expect(bus.circuitState('svc')).toBe('open');
    const open = new CircuitOpenError('svc');
    expectRingbusError(open, CircuitOpenError, 'ERR_RINGBUS_CIRCUIT_OPEN');
    expect(open.handler).toBe('svc');
    expect(await bus.execute('cmd', 2)).toEqual({ success: false, error: open.message, attempts: 0 });
  });

  it('ERR_RINGBUS_HANDLER_TIMEOUT: a handler running past handlerTimeoutMs', async () => {
    const { bus } = setup({ handlerTimeoutMs: 50 });
    bus.registerCommandHandler('stuck', () => new Promise(() => {}), { name: 'stuck' }); // never settles
    const failed = nextEvent(bus, 'handler-error');
    await bus.start();
    const r = await bus.execute('stuck', 1);
    const timeout = new HandlerTimeoutError('stuck', 50);
    expectRingbusError(timeout, HandlerTimeoutError, 'ERR_RINGBUS_HANDLER_TIMEOUT');
    expect(timeout).toMatchObject({ handler: 'stuck', timeoutMs: 50 });
    expect(r).toEqual({ success: false, error: timeout.message, attempts: 1 });
    expect((await failed).error).toBe(timeout.message);
    expect(bus.stats()).toMatchObject({ handlerTimeouts: 1, failed: 1 });
  });
});
