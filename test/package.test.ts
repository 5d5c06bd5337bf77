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

  it('carries events through JetStream with ringbus/jetstream, and import \'ringbus\' alone never loads the NATS client', async () => {
    const stream = `RBPKG_${process.pid}_${Date.now().toString(36)}`;
    // A resolve hook that reports every @nats-io module a program loads.
    await writeFile(join(app, 'hooks.mjs'), `
      export async function resolve(specifier, context, next) {
        if (specifier.startsWith('@nats-io/')) process.stderr.write('loaded ' + specifier + '\\n');
        return next(specifier, context);
      }`);
    await writeFile(join(app, 'register.mjs'), "import { register } from 'node:module'; register('./hooks.mjs', import.meta.url);\n");
    await writeFile(join(app, 'core.mjs'), `
      import { MessageBus } from 'ringbus';
      const bus = new MessageBus({ pool: { maxThreads: 1 } });
      await bus.start(); await bus.stop();
      console.log('ok');
    `);
    const core = await run(process.execPath, ['--import', './register.mjs', 'core.mjs'], { cwd: app, env: { ...process.env, NODE_OPTIONS: '' } });
    expect(core.stdout.trim()).toBe('ok');
    expect(core.stderr).not.toMatch(/loaded @nats-io/);
    await writeFile(join(app, 'cluster.mjs'), `
      import { MessageBus, workerHandler } from 'ringbus';
      import { jetstream } from 'ringbus/jetstream';
      const where = { stream: '${stream}', subjectPrefix: '${stream.toLowerCase()}' };
      const consumer = new MessageBus({ transport: jetstream(where), pool: { maxThreads: 1 } });
      consumer.registerEventHandler('note', workerHandler(new URL('./handlers.mjs', import.meta.url), 'note'));
      await consumer.start();
      const producer = new MessageBus({ transport: jetstream(where) });
      await producer.start();
      for (let i = 0; i < 1000; i++) if (!producer.publish('note', { i })) await producer.publishAsync('note', { i });
      await producer.drain();
      while (consumer.stats().processed < 1000) await new Promise((r) => setTimeout(r, 20));
      await producer.stop(); await consumer.stop();
      const { connect } = await import('@nats-io/transport-node');
      const { jetstreamManager } = await import('@nats-io/jetstream');
      const nc = await connect({ servers: process.env.NATS_URL ?? '127.0.0.1:4222' });
      await (await jetstreamManager(nc)).streams.delete('${stream}');
      await nc.close();
      console.log(JSON.stringify({ processed: consumer.stats().processed }));
    `);
    const { stdout, stderr } = await run(process.execPath, ['--import', './register.mjs', 'cluster.mjs'], { cwd: app, env: { ...process.env, NODE_OPTIONS: '' } });
    expect(stderr).toMatch(/loaded @nats-io\/transport-node/);
    expect(JSON.parse(stdout)).toEqual({ processed: 1000 });
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
