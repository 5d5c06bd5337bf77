import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
let app: string;

// What a user gets from npm: pack the package (prepare builds dist/), install the
// tarball into a fresh project, and run it with plain node, no TypeScript tooling.
beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ringbus-pack-'));
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  await run(npm, ['pack', '--pack-destination', dir], { cwd: root });
  const tarball = (await readdir(dir)).find((f) => f.endsWith('.tgz'))!;
  app = join(dir, 'app');
  await run('mkdir', ['-p', app]);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  await run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, tarball)], { cwd: app, env: { ...process.env, npm_config_loglevel: 'error' } });
}, 240_000);
afterAll(async () => {
  if (app) await rm(join(app, '..'), { recursive: true, force: true });
});

describe('the packed package', () => {
  it('runs a .mjs worker handler under plain node: execute and publish', async () => {
    await writeFile(join(app, 'handlers.mjs'), 'export function square(e) { return e.payload * e.payload; }\nexport function note() {}\n');
    await writeFile(join(app, 'main.mjs'), `
      import { ResilientMessageBus, workerHandler } from 'ringbus';
      const bus = new ResilientMessageBus({ logger: { debug() {}, info() {}, warn() {}, error: console.error }, pool: { maxThreads: 1 } });
      bus.registerCommandHandler('square', workerHandler(new URL('./handlers.mjs', import.meta.url), 'square'));
      bus.registerEventHandler('note', workerHandler(new URL('./handlers.mjs', import.meta.url), 'note'));
      await bus.start();
      const r = await bus.execute('square', 12);
      for (let i = 0; i < 1000; i++) bus.publish('note', { i });
      await bus.drain();
      console.log(JSON.stringify({ r, processed: bus.stats().processed }));
      await bus.stop();
    `);
    const { stdout } = await run(process.execPath, ['main.mjs'], { cwd: app, env: { ...process.env, NODE_OPTIONS: '' } });
    expect(JSON.parse(stdout)).toEqual({ r: { success: true, result: 144, attempts: 1 }, processed: 1001 });
  });

  it('installs the ringbus command, the JSON Schema and type declarations', async () => {
    const { stdout } = await run(join(app, 'node_modules/.bin/ringbus'), ['config'], { cwd: app });
    expect(stdout).toMatch(/queue\.capacity\s+65536\s+default/);
    const files = await readdir(join(app, 'node_modules/ringbus'));
    expect(files).toEqual(expect.arrayContaining(['ringbus.config.schema.json', 'dist', 'README.md', 'package.json']));
    const dist = await readdir(join(app, 'node_modules/ringbus/dist/src'));
    expect(dist).toEqual(expect.arrayContaining(['index.js', 'index.d.ts', 'index.js.map']));
  });
});
