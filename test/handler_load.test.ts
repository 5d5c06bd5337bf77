import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { HandlerLoadError, workerHandler } from '../src/index.js';
import { loadFailureMessage, locationInEsbuildText, locationInNodeText } from '../workers/load_error.js';
import { busFixture, nextEvent, quietLogger } from './helpers.js';

const setup = busFixture();

/** test/fixtures/syntax_error.mjs: a ')' where an expression must start, on line 7, column 34. */
const SYNTAX_ERROR = fileURLToPath(new URL('./fixtures/syntax_error.mjs', import.meta.url));
const SYNTAX_ERROR_TEXT = `worker handler module ${SYNTAX_ERROR} has a syntax error at line 7, column 34: Unexpected token ')'`;

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

describe('a worker handler module with a syntax error', () => {
  it('fails start() naming file, line and column', async () => {
    const { bus } = setup();
    bus.registerEventHandler('t', workerHandler(SYNTAX_ERROR, 'fine'));
    const err = await bus.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandlerLoadError);
    expect(messageOf(err)).toBe(SYNTAX_ERROR_TEXT);
  });

  it('registered after start(): the registration-error names file, line and column', async () => {
    const { bus } = setup();
    await bus.start();
    const reported = nextEvent(bus, 'registration-error');
    bus.registerEventHandler('t', workerHandler(SYNTAX_ERROR, 'fine'), { name: 'late' });
    const { error, handler } = await reported;
    expect(handler).toBe('late');
    expect(error).toBeInstanceOf(HandlerLoadError);
    expect(error.message).toBe(SYNTAX_ERROR_TEXT);
  });

  it('a delivery to it fails with the same text', async () => {
    const { bus } = setup();
    await bus.start();
    const unreported = nextEvent(bus, 'registration-error');
    bus.registerCommandHandler('c', workerHandler(SYNTAX_ERROR, 'fine'));
    // Executed while the handler is still registered (the load check runs in a worker, so it cannot have
    // unregistered it yet): the worker loads the module for this delivery and fails it.
    const result = await bus.execute('c', 1);
    expect(result.success).toBe(false);
    expect(messageOf(result.error)).toBe(SYNTAX_ERROR_TEXT);
    expect(result.error).toBeInstanceOf(HandlerLoadError);
    expect(result.error?.code).toBe('ERR_RINGBUS_HANDLER_LOAD');
    await unreported;
  });

  describe('in TypeScript (tsx reports it)', () => {
    let dir: string;
    let file: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'ringbus-load-'));
      await writeFile(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
      file = join(dir, 'broken.ts');
      // Line 2, column 22: the ';' where the right operand must be.
      await writeFile(file, 'export function fine(e: { payload: number }): number {\n  return e.payload * ;\n}\n');
    });
    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('fails start() naming file, line and column', async () => {
      const { bus } = setup();
      bus.registerEventHandler('t', workerHandler(file, 'fine'));
      const err = await bus.start().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HandlerLoadError);
      expect(messageOf(err)).toBe(`worker handler module ${file} has a syntax error at line 2, column 22: Unexpected ";"`);
    });
  });
});

describe('a TypeScript worker handler module without tsx', () => {
  it('start() names the file', async () => {
    vi.resetModules();
    vi.doMock('node:module', async (importOriginal) => {
      const real = await importOriginal<typeof import('node:module')>();
      const createRequire = (base: string | URL): NodeJS.Require => {
        const require = real.createRequire(base);
        const resolve = ((id: string, options?: { paths?: string[] }) => {
          if (id.startsWith('tsx/')) throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
          return require.resolve(id, options);
        }) as NodeJS.RequireResolve;
        return Object.assign((id: string) => require(id) as unknown, require, { resolve }) as NodeJS.Require;
      };
      return { ...real, createRequire, default: { ...real, createRequire } };
    });
    try {
      const fresh = await import('../src/index.js');
      const ts = fileURLToPath(new URL('./fixtures/handlers.ts', import.meta.url));
      const bus = new fresh.MessageBus({ logger: quietLogger(), pool: { maxThreads: 1 } });
      bus.registerEventHandler('t', fresh.workerHandler(ts, 'echo'));
      const err = await bus.start().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(fresh.HandlerLoadError);
      expect(messageOf(err)).toBe(`TypeScript worker handler module ${ts} needs tsx: install it (npm i -D tsx) or build the handlers to .js`);
      await bus.stop({ drain: false });
    } finally {
      vi.doUnmock('node:module');
      vi.resetModules();
    }
  });

  it('a worker that cannot import it (no tsx there) names the file', async () => {
    // What Node 20's import() rejects with for a .ts file when no loader handles it.
    const file = '/app/handlers/price.ts';
    const err = Object.assign(new TypeError(`Unknown file extension ".ts" for ${file}`), { code: 'ERR_UNKNOWN_FILE_EXTENSION' });
    expect(await loadFailureMessage(pathToFileURL(file).href, err))
      .toBe(`TypeScript worker handler module ${file} needs tsx: install it (npm i -D tsx) or build the handlers to .js`);
  });
});

describe('reading a syntax error location', () => {
  it("from Node's layout, with a file: URL (ES module stacks of newer Nodes) or a path (CommonJS, node --check)", () => {
    const esm = "file:///x/h.mjs:3\n  foo(\n      ^\n\nSyntaxError: Unexpected token ')'\n    at compileSourceTextModule (node:internal/modules/esm/utils:338:16)";
    expect(locationInNodeText(esm)).toEqual({ file: '/x/h.mjs', line: 3, column: 7, message: "Unexpected token ')'" });
    const cjs = "/x/h.cjs:2\n\treturn e +;\n\t          ^\n\nSyntaxError: Unexpected token ';'\n    at wrapSafe (node:internal/modules/cjs/loader:1464:18)";
    expect(locationInNodeText(cjs)).toEqual({ file: '/x/h.cjs', line: 2, column: 12, message: "Unexpected token ';'" });
    expect(locationInNodeText("SyntaxError: Unexpected token ';'\n    at compileSourceTextModule (node:internal/modules/esm/utils:346:16)"))
      .toBeUndefined();
  });

  it("from esbuild's layout (tsx), whose column counts from 0", () => {
    expect(locationInEsbuildText('Transform failed with 1 error:\n/x/h.ts:2:12: ERROR: Unexpected ";"'))
      .toEqual({ file: '/x/h.ts', line: 2, column: 13, message: 'Unexpected ";"' });
  });

  it('keeps the original text when the module itself parses (a missing named export)', async () => {
    const err = new SyntaxError("The requested module './dep.mjs' does not provide an export named 'x'");
    const module = pathToFileURL(fileURLToPath(new URL('./fixtures/plain.mjs', import.meta.url))).href;
    expect(await loadFailureMessage(module, err)).toBe(`cannot load worker handler module ${module}: ${err.message}`);
  });
});
