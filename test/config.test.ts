import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, MessageBus, OPTION_TABLE, loadConfig } from '../src/index.js';
import { configJsonSchema } from '../src/config/json_schema.js';
import { quietLogger } from './helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ringbus-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function configFile(name: string, content: unknown): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

describe('loadConfig precedence', () => {
  it('takes code over env over file over defaults, and says where each value came from', async () => {
    const file = await configFile('p.json', { pool: { maxThreads: 3, maxBatch: 64 }, queue: { capacity: 100, strategy: 'drop-oldest' } });
    const loaded = loadConfig({
      configPath: file,
      env: { RINGBUS_MAX_BATCH: '128', RINGBUS_QUEUE_CAPACITY: '200', HOME: '/x' },
      options: { queue: { capacity: 300 } },
    });
    expect(loaded.file).toBe(file);
    expect(loaded.options).toMatchObject({ pool: { maxThreads: 3, maxBatch: 128 }, queue: { capacity: 300, strategy: 'drop-oldest' } });
    expect(loaded.effective['pool.maxThreads']).toEqual({ value: 3, source: 'file', where: file });
    expect(loaded.effective['pool.maxBatch']).toEqual({ value: 128, source: 'env', where: 'RINGBUS_MAX_BATCH' });
    expect(loaded.effective['queue.capacity']).toEqual({ value: 300, source: 'code', where: undefined });
    expect(loaded.effective['pool.idleTimeoutMs']).toEqual({ value: 10_000, source: 'default', where: undefined });
    expect(Object.keys(loaded.effective)).toEqual(OPTION_TABLE.map((s) => s.path));
    // The result goes straight into the constructor.
    expect(() => new MessageBus({ ...loaded.options, logger: quietLogger() })).not.toThrow();
  });

  it('finds ringbus.config.json in the working directory, or the file RINGBUS_CONFIG names', async () => {
    const cwd = await mkdtemp(join(dir, 'cwd-'));
    await writeFile(join(cwd, 'ringbus.config.json'), JSON.stringify({ $schema: './ringbus.config.schema.json', queue: { capacity: 7 } }));
    expect(loadConfig({ cwd, env: {} }).options.queue?.capacity).toBe(7);
    const other = await configFile('other.json', { queue: { capacity: 9 } });
    expect(loadConfig({ cwd, env: { RINGBUS_CONFIG: other } }).options.queue?.capacity).toBe(9);
    expect(loadConfig({ cwd: dir, env: {} }).file).toBeUndefined();
  });

  it('parses every kind of variable and turns features on and off', () => {
    const loaded = loadConfig({
      cwd: dir,
      env: {
        RINGBUS_RETRY: 'false', RINGBUS_CIRCUIT_BREAKER: 'true', RINGBUS_CIRCUIT_FAILURE_THRESHOLD: '9',
        RINGBUS_HIGH_WATER_MARK: '0.9', RINGBUS_QUEUE_STRATEGY: 'adaptive-rate-limit', RINGBUS_METRICS: 'false',
        RINGBUS_DEAD_LETTER_PATH: '/tmp/dead.jsonl', RINGBUS_HANDLER_TIMEOUT_MS: 'false', RINGBUS_CODEC: 'structured',
        RINGBUS_STRICT_PAYLOADS: 'false',
      },
    });
    expect(loaded.options).toMatchObject({
      retry: false, circuitBreaker: { failureThreshold: 9 }, queue: { highWaterMark: 0.9, strategy: 'adaptive-rate-limit' },
      metrics: { timing: false }, deadLetter: { path: '/tmp/dead.jsonl' }, handlerTimeoutMs: false, codec: 'structured', strictPayloads: false,
    });
  });

  it('takes a custom codec module from the file, replaced whole (not merged key by key) by a codec given in code', async () => {
    const codec = fileURLToPath(new URL('./fixtures/codec_module.mjs', import.meta.url));
    const file = await configFile('codec.json', { codec: { module: codec, export: 'taggedJson' } });
    const loaded = loadConfig({ configPath: file, env: {} });
    expect(loaded.options.codec).toEqual({ module: codec, export: 'taggedJson' });
    expect(loaded.effective.codec).toEqual({ value: { module: pathToFileURL(codec).href, export: 'taggedJson' }, source: 'file', where: file });
    expect(loadConfig({ configPath: file, env: {}, options: { codec: 'structured' } }).options.codec).toBe('structured');
    expect(loadConfig({ configPath: file, env: {}, options: { codec: { module: codec } } }).options.codec).toEqual({ module: codec });
    expect(loadConfig({ configPath: file, env: { RINGBUS_CODEC: 'json' } }).effective.codec).toEqual({ value: 'json', source: 'env', where: 'RINGBUS_CODEC' });
  });
});

describe('loadConfig errors name the source and the allowed values', () => {
  it.each([
    [{ RINGBUS_QUEUE_CAPACITY: 'lots' }, /^RINGBUS_QUEUE_CAPACITY: 'lots' is not an integer \(option queue\.capacity\)$/],
    [{ RINGBUS_QUEUE_CAPACITY: '0' }, /^RINGBUS_QUEUE_CAPACITY: queue\.capacity must be in \[1, 1073741824\], got 0$/],
    [{ RINGBUS_HIGH_WATER_MARK: 'high' }, /^RINGBUS_HIGH_WATER_MARK: 'high' is not a decimal number/],
    [{ RINGBUS_RETRY_JITTER: 'yes' }, /^RINGBUS_RETRY_JITTER: 'yes' is not 'true' or 'false'/],
    [{ RINGBUS_QUEUE_STRATEGY: 'drop-newest' }, /^RINGBUS_QUEUE_STRATEGY: 'drop-newest' is not one of reject-new, drop-oldest, adaptive-rate-limit/],
    [{ RINGBUS_CODEC: 'v8' }, /^RINGBUS_CODEC: 'v8' is not one of json, structured \(option codec\)$/],
    [{ RINGBUS_STRICT_PAYLOADS: 'no' }, /^RINGBUS_STRICT_PAYLOADS: 'no' is not 'true' or 'false' \(option strictPayloads\)$/],
    [{ RINGBUS_MAX_THREDS: '2' }, /^RINGBUS_MAX_THREDS is not a ringbus setting \(known: RINGBUS_CONFIG, RINGBUS_DEBUG, RINGBUS_MIN_THREADS, RINGBUS_MAX_THREADS/],
    [{ RINGBUS_RETRY: 'false', RINGBUS_RETRY_MAX_RETRIES: '5' }, /^RINGBUS_RETRY=false turns retry off, but RINGBUS_RETRY_MAX_RETRIES configures it$/],
    [{ RINGBUS_DEAD_LETTER_PATH: '/nonexistent/dir/dead.jsonl' }, /^RINGBUS_DEAD_LETTER_PATH: deadLetter\.path \/nonexistent\/dir\/dead\.jsonl: its directory does not exist$/],
    [{ RINGBUS_CONFIG: '/nonexistent/ringbus.json' }, /^config file \/nonexistent\/ringbus\.json \(from RINGBUS_CONFIG\) does not exist$/],
  ])('env %j', (env, message) => {
    expect(() => loadConfig({ cwd: dir, env })).toThrow(ConfigError);
    expect(() => loadConfig({ cwd: dir, env })).toThrow(message);
  });

  it.each([
    ['unknown.json', { queue: { size: 3 } }, /unknown\.json: queue\.size is not an option \(allowed: capacity, highWaterMark/],
    ['toplevel.json', { threads: 3 }, /toplevel\.json: options\.threads is not an option \(allowed: pool, queue/],
    ['type.json', { pool: { maxThreads: 'two' } }, /type\.json: pool\.maxThreads must be an integer, got 'two'/],
    ['range.json', { queue: { lowWaterMark: 0.9 } }, /range\.json: queue\.highWaterMark must be in \(lowWaterMark, 1\] = \(0\.9, 1\], got 0\.8/],
    ['feature.json', { retry: 'sometimes' }, /feature\.json: retry must be false or an object, got 'sometimes'/],
    ['logger.json', { logger: {} }, /logger\.json: logger can only be given in code/],
    ['codec.json', { codec: { module: './no-such-codec.mjs' } }, /codec\.json: codec\.module '\.\/no-such-codec\.mjs' does not exist/],
    ['codecname.json', { codec: 'yaml' }, /codecname\.json: codec must be 'json' or 'structured', or \{ module, export \}/],
    ['codeckey.json', { codec: { module: './x.mjs', exportName: 'x' } }, /codeckey\.json: codec\.exportName is not an option \(allowed: module, export\)/],
    ['notjson.json', '{ queue: ', /config file .*notjson\.json is not valid JSON/],
    ['array.json', [1, 2], /config file .*array\.json must hold a JSON object/],
  ])('file %s', async (name, content, message) => {
    const path = await configFile(name, content);
    expect(() => loadConfig({ configPath: path, env: {} })).toThrow(ConfigError);
    expect(() => loadConfig({ configPath: path, env: {} })).toThrow(message);
  });

  it('names --config for a missing explicit file', () => {
    expect(() => loadConfig({ configPath: '/nonexistent.json', env: {} })).toThrow(/config file \/nonexistent\.json \(from --config\) does not exist/);
  });

  it('reports a bad value given in code as the constructor does', () => {
    expect(() => loadConfig({ cwd: dir, env: {}, options: { queue: { capacity: -1 } } })).toThrow(RangeError);
  });
});

describe('the JSON Schema', () => {
  it('ships current (npm run schema regenerates it) and covers every option in the table', async () => {
    const shipped = JSON.parse(await readFile(new URL('../ringbus.config.schema.json', import.meta.url), 'utf8'));
    expect(shipped).toEqual(configJsonSchema());
    const props = shipped.properties as Record<string, { properties?: Record<string, unknown>; oneOf?: { properties?: Record<string, unknown> }[] }>;
    for (const { path } of OPTION_TABLE) {
      const [group, key] = path.split('.');
      expect(props[group], path).toBeDefined();
      if (key !== undefined) {
        const inner = props[group].properties ?? props[group].oneOf?.find((s) => s.properties)?.properties;
        expect(inner?.[key], path).toBeDefined();
      }
    }
  });
});

describe('the README', () => {
  it('documents every option and its environment variable', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    for (const spec of OPTION_TABLE) {
      expect(readme, spec.path).toContain(`| \`${spec.path}\` | \`${spec.env}\` |`);
    }
  });
});

describe('strict inputs', () => {
  it('takes decimal numbers only from the environment', () => {
    for (const raw of ['0x1', '0b0', '', ' ', '1e', 'Infinity']) {
      expect(() => loadConfig({ env: { RINGBUS_HIGH_WATER_MARK: raw }, configPath: undefined }), raw)
        .toThrow(/RINGBUS_HIGH_WATER_MARK: '.*' is not a decimal number \(option queue\.highWaterMark\)/);
    }
    expect(loadConfig({ env: { RINGBUS_HIGH_WATER_MARK: '0.75' } }).options).toMatchObject({ queue: { highWaterMark: 0.75 } });
    expect(loadConfig({ env: { RINGBUS_HIGH_WATER_MARK: '.9' } }).options).toMatchObject({ queue: { highWaterMark: 0.9 } });
  });

  it('refuses __proto__, constructor and prototype keys in a config file, naming the key', async () => {
    const proto = await configFile('proto.json', '{ "queue": { "__proto__": { "capacity": 5 } } }');
    expect(() => loadConfig({ configPath: proto, env: {} })).toThrow(ConfigError);
    expect(() => loadConfig({ configPath: proto, env: {} })).toThrow(/proto\.json: key queue\.__proto__ is not allowed/);
    const ctor = await configFile('ctor.json', { constructor: { x: 1 } });
    expect(() => loadConfig({ configPath: ctor, env: {} })).toThrow(/ctor\.json: key constructor is not allowed/);
  });

  it('refuses unknown keys in per-call options, listing the allowed ones, before anything is counted', async () => {
    const bus = new MessageBus({ logger: quietLogger(), pool: { maxThreads: 1 } });
    bus.registerEventHandler('t', () => {});
    expect(() => bus.publish('t', 1, { delay: 250 } as never)).toThrow(/publish options for topic 't': delay is not an option \(allowed: priority, sessionId, headers, delayMs, at\)/);
    await expect(bus.publishAsync('t', 1, { timeout: 5 } as never)).rejects.toThrow(/timeout is not an option \(allowed: priority, sessionId, headers, delayMs, at, timeoutMs\)/);
    await expect(bus.execute('t', 1, { prio: 'high' } as never)).rejects.toThrow(/prio is not an option \(allowed: priority, sessionId, headers, timeoutMs\)/);
    expect(() => bus.stop({ drian: true } as never)).toThrow(/stop options: drian is not an option \(allowed: drain, timeoutMs\)/);
    expect(bus.stats()).toMatchObject({ published: 0, rejected: 0 });
    await bus.stop();
  });
});
