/**
 * Payloads say what they carry (issue 10): the `codec` option ('json',
 * 'structured', a custom module) for payloads and worker command results,
 * through worker and inline handlers, staged, retried and dead-lettered
 * events and the dead-letter file; the strict JSON check and
 * `strictPayloads: false`.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MessageBus, workerHandler, type BusOptions, type CommandResult } from '../src/index.js';
import { jsonExact, jsonLoss } from '../src/protocol/json_check.js';
import { kinds, Posts } from './fixtures/codec_kit.js';
import { INLINE_ONLY_POOL, busFixture, quietLogger } from './helpers.js';

const CODEC_HANDLERS = fileURLToPath(new URL('./fixtures/codec_handlers.mjs', import.meta.url));
const CODEC_MODULE = fileURLToPath(new URL('./fixtures/codec_module.mjs', import.meta.url));
const codecHandler = (name: string) => workerHandler(CODEC_HANDLERS, name);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ringbus-codec-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const setup = busFixture();
/** For buses whose handlers all run inline: no worker thread to start. */
const inline = busFixture({ pool: INLINE_ONLY_POOL });

const message = (r: CommandResult): string => String((r.error as Error | undefined)?.message ?? r.error);

describe("codec 'structured'", () => {
  it('round-trips every payload kind through a worker command handler and back as its result', async () => {
    const { bus } = setup({ codec: 'structured' });
    bus.registerCommandHandler('echo', codecHandler('echo'));
    bus.registerCommandHandler('shape', codecHandler('shapeOf'));
    await bus.start();
    for (const k of kinds()) {
      const seen = await bus.execute('shape', k.value);
      expect(seen, k.name).toEqual({ success: true, result: k.shape, attempts: 1 });
      const back = await bus.execute('echo', k.value);
      expect(back.success, k.name).toBe(true);
      expect(back.result, k.name).toEqual(k.value);
    }
    const cyclic = (await bus.execute('echo', kinds().find((k) => k.name === 'cycle')!.value)).result as Record<string, unknown>;
    expect(cyclic.self).toBe(cyclic);
  });

  it('delivers every payload kind to a worker event handler, published with publish and publishAsync', async () => {
    const posts = new Posts();
    try {
      const { bus } = setup({ codec: 'structured' });
      bus.registerEventHandler('seen', codecHandler('post'));
      await bus.start();
      for (const k of kinds()) {
        bus.publish('seen', posts.payload(k.name, k.value));
        expect(await bus.publishAsync('seen', posts.payload(`${k.name} async`, k.value))).toBe(true);
      }
      for (const k of kinds()) {
        for (const tag of [k.name, `${k.name} async`]) {
          const got = await posts.get(tag);
          expect(got.shape, tag).toEqual(k.shape);
          expect(got.value, tag).toEqual(k.value);
        }
      }
    } finally {
      posts.close();
    }
  });

  it('hands inline handlers the published object itself, and returns inline results as they are', async () => {
    const { bus } = inline({ codec: 'structured' });
    const seen: unknown[] = [];
    const result = new Map([['r', 1]]);
    bus.registerEventHandler('inline', (e) => void seen.push(e.payload));
    bus.registerCommandHandler('inline.cmd', (e) => {
      seen.push(e.payload);
      return result;
    });
    await bus.start();
    const payloads = kinds().map((k) => k.value);
    for (const p of payloads) bus.publish('inline', p);
    await bus.drain();
    const sent = new Set([1]);
    const r = await bus.execute('inline.cmd', sent);
    expect(r.result).toBe(result);
    expect(seen).toHaveLength(payloads.length + 1);
    seen.forEach((p, i) => expect(p).toBe(i < payloads.length ? payloads[i] : sent));
  });

  it('refuses functions and symbols, in payloads and worker results, naming the path', async () => {
    const { bus } = setup({ codec: 'structured' });
    bus.registerCommandHandler('lossy', codecHandler('lossyResult'));
    await bus.start();
    expect(() => bus.publish('t', { items: [{ f() {} }] })).toThrow(TypeError);
    expect(() => bus.publish('t', { items: [{ f() {} }] })).toThrow(/payload for topic 't' cannot be encoded with codec structured: payload\.items\[0\]\.f is a function/);
    expect(() => bus.publish('t', new Map([['k', Symbol('s')]]))).toThrow(/payload\.get\("k"\) is a symbol/);
    await expect(bus.execute('lossy', { s: Symbol('s') })).rejects.toThrow(/payload\.s is a symbol/);
    const r = await bus.execute('lossy', 'function');
    expect(r.success).toBe(false);
    expect(message(r)).toMatch(/command result cannot be encoded with codec structured: result\.items\[3\]\.f is a function/);
    // What JSON would change, v8 carries: the result of 'map' and 'instance' come back (the instance as a plain object).
    expect((await bus.execute('lossy', 'map')).result).toEqual({ m: new Map([[1, 2]]) });
    expect((await bus.execute('lossy', 'instance')).result).toEqual({ p: { x: 1 } });
  });

  it('sends a worker command result Map back as a Map', async () => {
    const { bus } = setup({ codec: 'structured' });
    bus.registerCommandHandler('map', codecHandler('mapResult'));
    await bus.start();
    const r = await bus.execute('map', null);
    expect(r.result).toBeInstanceOf(Map);
    expect(r.result).toEqual(new Map<string, unknown>([['a', 1], ['b', new Set([2n])]]));
  });

  it('keeps the payload as published for later stages and retries', async () => {
    const posts = new Posts();
    try {
      const { bus } = setup({ codec: 'structured', retry: { maxRetries: 2, initialDelayMs: 1, maxDelayMs: 1, multiplier: 1, jitter: false } });
      // A topic mixing inline and worker handlers runs in stages: the worker stage is written from the bytes kept at publish.
      bus.registerEventHandler('staged', (e) => {
        ((e.payload as { value: Map<string, unknown> }).value).set('changed by the inline stage', true);
      }, { priority: 'high', name: 'first' });
      bus.registerEventHandler('staged', codecHandler('post'), { name: 'second' });
      bus.registerEventHandler('retried', codecHandler('postOnRetry'));
      await bus.start();
      bus.publish('staged', posts.payload('staged', new Map([['k', 1n]])));
      bus.publish('retried', posts.payload('retried', new Set([new Date(7)])));
      await bus.drain();
      expect((await posts.get('staged')).value).toEqual(new Map([['k', 1n]]));
      expect(await posts.get('retried')).toMatchObject({ attempt: 1, value: new Set([new Date(7)]) });
      expect(bus.stats()).toMatchObject({ retried: 1, deadLettered: 0 });
    } finally {
      posts.close();
    }
  });

  it('keeps a dead letter as published in memory, stores codec bytes in the file, and loads and replays it as published', async () => {
    const path = join(dir, 'structured.jsonl');
    const payload = { items: new Map([['sku', { qty: 2n, at: new Date(3) }]]), tags: new Set(['a']) };
    const first = setup({ codec: 'structured', deadLetter: { path }, retry: false }).bus;
    first.registerEventHandler('orders', codecHandler('alwaysFail'), { name: 'orderHandler' });
    await first.start();
    first.publish('orders', payload);
    await first.drain();
    expect(first.deadLetters.list()).toEqual([expect.objectContaining({ handler: 'orderHandler', event: expect.objectContaining({ payload }) })]);
    await first.stop();
    const line = JSON.parse((await readFile(path, 'utf8')).split('\n')[0]) as { entry: { payload: Record<string, unknown> } };
    expect(line.entry.payload).toEqual({ encoded: expect.any(String), codec: 'structured' });

    // A JSON bus cannot decode it: listed as the stored bytes, never replayed (it stays in the file).
    const json = inline({ deadLetter: { path } }).bus;
    json.registerEventHandler('orders', () => {}, { name: 'orderHandler' });
    await json.start();
    expect(JSON.parse(JSON.stringify(json.deadLetters.list()[0].event.payload))).toEqual(line.entry.payload);
    expect(await json.deadLetters.replay()).toBe(0);
    await json.stop();

    const second = inline({ codec: 'structured', deadLetter: { path } }).bus;
    const seen: unknown[] = [];
    second.registerEventHandler('orders', (e) => void seen.push(e.payload), { name: 'orderHandler' });
    await second.start();
    expect(second.deadLetters.list()[0].event.payload).toEqual(payload);
    expect(await second.deadLetters.replay()).toBe(1);
    expect(seen).toEqual([payload]);
    expect(second.deadLetters.size).toBe(0);
  });
});

describe('a custom codec module', () => {
  it('carries payloads and results through workers with the module loaded on main and in each worker', async () => {
    const { bus } = setup({ codec: { module: CODEC_MODULE, export: 'taggedJson' } });
    bus.registerCommandHandler('echo', codecHandler('echo'));
    bus.registerCommandHandler('calls', codecHandler('codecCalls'));
    bus.registerCommandHandler('shape', codecHandler('shapeOf'));
    await bus.start();
    const payload = { n: 12345678901234567890n, when: new Date(42), list: [1, 'two'] };
    expect(await bus.execute('echo', payload)).toMatchObject({ success: true, result: payload });
    expect((await bus.execute('shape', payload)).result).toEqual({ n: 'bigint', when: '[object Date]', list: '[object Array]' });
    // The worker decoded each payload and encoded each result with its own copy of the module.
    const calls = (await bus.execute('calls', {})).result as { encode: number; decode: number };
    expect(calls.decode).toBeGreaterThanOrEqual(3);
    expect(calls.encode).toBeGreaterThanOrEqual(2);
    // Binary payloads stay raw bytes under every codec.
    expect((await bus.execute('shape', new Uint8Array([1, 2]))).result).toBe('[object Uint8Array]');
  });

  it('takes a file: URL and the default export', async () => {
    const { bus } = setup({ codec: { module: new URL('./fixtures/codec_module.mjs', import.meta.url) } });
    bus.registerCommandHandler('echo', codecHandler('echo'));
    await bus.start();
    expect((await bus.execute('echo', { n: 1n })).result).toEqual({ n: 1n });
  });

  it('names the module and export when the export is missing or is not a codec', async () => {
    const cases: [string, RegExp][] = [
      ['nope', /codec module file:\/\/.*codec_module\.mjs has no export 'nope' \(exports: calls, default, halfCodec, notAnObject, taggedJson\)/],
      ['halfCodec', /codec module file:\/\/.*codec_module\.mjs: export 'halfCodec' must be an object with encode\(value\) and decode\(bytes\) functions; decode is missing/],
      ['notAnObject', /export 'notAnObject' must be an object with encode\(value\) and decode\(bytes\) functions; encode and decode are missing/],
    ];
    for (const [exportName, expected] of cases) {
      const { bus } = setup({ codec: { module: CODEC_MODULE, export: exportName } });
      bus.registerEventHandler('t', codecHandler('post'));
      await expect(bus.start()).rejects.toThrow(expected);
      await expect(bus.start(), 'a failed start may be retried').rejects.toThrow(TypeError);
    }
  });

  it('names the module when it does not load, and refuses a payload that needs it before start() loaded it', async () => {
    const { bus } = setup({ codec: { module: fileURLToPath(new URL('./fixtures/codec_throws.mjs', import.meta.url)) } });
    await expect(bus.start()).rejects.toThrow(/cannot load codec module file:\/\/.*codec_throws\.mjs: this codec module fails to load on purpose/);

    const early = setup({ codec: { module: CODEC_MODULE } }).bus;
    early.registerEventHandler('t', codecHandler('echo'));
    expect(() => early.publish('t', { a: 1 })).toThrow(expect.objectContaining({ code: 'ERR_RINGBUS_NOT_STARTED' }));
    expect(() => early.publish('t', { a: 1 })).toThrow(/cannot publish to topic 't' yet: codec module file:.*codec_module\.mjs#default is loaded by start\(\), which has not finished/);
    // Bytes and undefined need no codec: buffered until start() as always.
    expect(early.publish('t', new Uint8Array([1]))).toBe(true);
    expect(early.publish('t', undefined)).toBe(true);
    expect(early.stats().published).toBe(2);
  });
});

describe('the strict JSON check (codec json, strictPayloads on by default)', () => {
  class Point {
    x = 1;
  }
  const lossy: [string, unknown, RegExp][] = [
    ['a function at depth', { items: [0, 1, 2, { f() {} }] }, /payload\.items\[3\]\.f is a function/],
    ['a symbol', { s: Symbol('s') }, /payload\.s is a symbol/],
    ['a Map', { m: new Map() }, /payload\.m is a Map \(JSON sends \{\}; use codec 'structured'/],
    ['a Set', [new Set([1])], /payload\[0\] is a Set/],
    ['a class instance', { 'odd key': new Point() }, /payload\["odd key"\] is a Point instance with no toJSON/],
    ['undefined in an array', { a: [1, undefined] }, /payload\.a\[1\] is undefined \(JSON sends null/],
    ['a hole in an array', [1, , 3], /payload\[1\] is undefined/],
    ['NaN', { x: NaN }, /payload\.x is NaN \(JSON sends null/],
    ['an object with a prototype of its own', { o: Object.create({ inherited: 1 }) }, /payload\.o is an Object instance with no toJSON/],
    ['a top-level function', () => 1, /payload is a function/],
  ];

  it.each(lossy)('refuses %s at publish, publishAsync and execute, naming the topic and the path', async (_name, payload, path) => {
    const bus = new MessageBus({ logger: quietLogger(), pool: { maxThreads: 1 } });
    bus.registerEventHandler('orders', () => {});
    bus.registerCommandHandler('orders.cmd', () => 1);
    const sent = /payload for topic 'orders(\.cmd)?' cannot be sent as JSON: /;
    expect(() => bus.publish('orders', payload)).toThrow(TypeError);
    expect(() => bus.publish('orders', payload)).toThrow(sent);
    expect(() => bus.publish('orders', payload)).toThrow(path);
    await expect(bus.publishAsync('orders', payload)).rejects.toThrow(path);
    await expect(bus.execute('orders.cmd', payload)).rejects.toThrow(path);
    expect(bus.stats()).toMatchObject({ published: 0, rejected: 0 });
    await bus.stop();
  });

  it('lets JSON change them with strictPayloads: false, as before', async () => {
    const { bus } = setup({ strictPayloads: false });
    bus.registerCommandHandler('echo', codecHandler('echo'));
    await bus.start();
    for (const [name, payload] of lossy.filter(([n]) => n !== 'a top-level function')) {
      expect((await bus.execute('echo', payload)).success, name).toBe(true);
    }
    expect((await bus.execute('echo', { m: new Map([[1, 2]]), a: [undefined, NaN] })).result).toEqual({ m: {}, a: [null, null] });
    // A function alone has no JSON at all, strict or not.
    expect(() => bus.publish('echo', () => 1)).toThrow(/cannot be encoded as JSON \(a function\)/);
  });

  it('passes what JSON carries exactly: Date, toJSON, undefined properties, null-prototype objects, boxed primitives', async () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    const payloads = [
      { d: new Date(0), j: { toJSON: () => 'x' }, u: undefined, bare, n: null, s: 'é', b: [true, 0, -1.5] },
      [new Number(1), new String('s'), new Boolean(false)], 'text', 42, null, [], {},
    ];
    const bus = new MessageBus({ logger: quietLogger(), pool: { maxThreads: 1 } });
    bus.registerEventHandler('t', () => {});
    for (const p of payloads) expect(bus.publish('t', p)).toBe(true);
    await bus.stop({ drain: false });
  });

  it('has a prefilter that never passes what the full check refuses, and passes every JSON value', () => {
    const anything = fc.anything({
      withMap: true, withSet: true, withDate: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true,
      withBoxedValues: true, withObjectString: true,
    });
    fc.assert(fc.property(anything, (v) => {
      try {
        JSON.stringify(v);
      } catch {
        return; // the prefilter runs only after stringify succeeded
      }
      if (jsonExact(v)) expect(jsonLoss(v, 'payload')).toBeUndefined();
    }), { numRuns: 2000 });
    fc.assert(fc.property(fc.jsonValue(), (v) => jsonExact(v) && jsonLoss(v, 'payload') === undefined), { numRuns: 2000 });
  });

  it('names the path of a cycle and of a BigInt, strict or not', () => {
    const bus = new MessageBus({ logger: quietLogger(), pool: { maxThreads: 1 }, strictPayloads: false });
    const cyclic: Record<string, unknown> = { a: { b: {} } };
    (cyclic.a as { b: Record<string, unknown> }).b.up = cyclic;
    expect(() => bus.publish('t', cyclic)).toThrow(/payload for topic 't' cannot be encoded as JSON: payload\.a\.b\.up is a cycle/);
    expect(() => bus.publish('t', { list: [1n] })).toThrow(/cannot be encoded as JSON: payload\.list\[0\] is a BigInt \(JSON cannot carry it; use codec 'structured'/);
  });

  it('fails a worker command whose result JSON would change, naming the path; strictPayloads: false returns it changed', async () => {
    const strict = setup({}).bus;
    strict.registerCommandHandler('lossy', codecHandler('lossyResult'));
    await strict.start();
    const cases: [string, RegExp][] = [
      ['function', /command result cannot be sent back as JSON: result\.items\[3\]\.f is a function/],
      ['map', /result\.m is a Map/],
      ['set', /result\[0\] is a Set/],
      ['symbol', /result\.s is a symbol/],
      ['instance', /result\.p is a Point instance with no toJSON/],
    ];
    for (const [kind, expected] of cases) {
      const r = await strict.execute('lossy', kind);
      expect(r.success, kind).toBe(false);
      expect(message(r), kind).toMatch(expected);
    }
    expect(await strict.execute('lossy', 'fine')).toEqual({ success: true, result: { fine: new Date(0).toJSON(), nested: [null, 'x'] }, attempts: 1 });
    // A Uint8Array result comes back as its raw bytes, like a binary payload, under every codec.
    strict.registerCommandHandler('echo', codecHandler('echo'));
    const bytes = await strict.execute('echo', new Uint8Array([1, 2, 255]));
    expect(bytes.result).toBeInstanceOf(Uint8Array);
    expect([...(bytes.result as Uint8Array)]).toEqual([1, 2, 255]);

    const loose = setup({ strictPayloads: false }).bus;
    loose.registerCommandHandler('lossy', codecHandler('lossyResult'));
    await loose.start();
    expect(await loose.execute('lossy', 'map')).toMatchObject({ success: true, result: { m: {} } });
  });
});

describe('codec options', () => {
  const make = (options: unknown): MessageBus => new MessageBus({ logger: quietLogger(), ...(options as BusOptions) });
  it.each([
    [{ codec: 'yaml' }, RangeError, /codec must be 'json' or 'structured', or \{ module, export \} \(a custom codec module\), got 'yaml'/],
    [{ codec: 7 }, TypeError, /codec must be 'json' or 'structured', or \{ module, export \}.*got 7/],
    [{ codec: { encode: () => new Uint8Array(), decode: () => 1 } }, TypeError, /codec cannot be an \{ encode, decode \} object: worker threads cannot receive functions/],
    [{ codec: { module: '' } }, TypeError, /codec\.module must be a path or a file: URL .*got ''/],
    [{ codec: { module: './no/such/codec.mjs' } }, RangeError, /codec\.module '\.\/no\/such\/codec\.mjs' does not exist \(resolved: file:\/\/.*no\/such\/codec\.mjs\)/],
    [{ codec: { module: 'https://example.com/codec.mjs' } }, TypeError, /codec\.module must be a path or a file: URL .*got 'https:\/\/example\.com\/codec\.mjs'/],
    [{ codec: { module: new URL('https://example.com/codec.mjs') } }, TypeError, /codec\.module must be a path or a file: URL .*got 'https:\/\/example\.com\/codec\.mjs'/],
    [{ codec: { module: CODEC_MODULE, name: 'x' } }, TypeError, /codec\.name is not an option \(allowed: module, export\)/],
    [{ codec: { module: CODEC_MODULE, export: '' } }, TypeError, /codec\.export must be a non-empty string/],
    [{ strictPayloads: 'yes' }, TypeError, /strictPayloads must be a boolean, got 'yes'/],
  ])('rejects %j', (options, type, expected) => {
    expect(() => make(options)).toThrow(type);
    expect(() => make(options)).toThrow(expected);
  });
});
