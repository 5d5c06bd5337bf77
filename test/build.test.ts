import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
let out: string;

// The compiled package must run under plain node, with no TypeScript tooling:
// the dispatcher must find the compiled worker runtime beside it.
beforeAll(async () => {
  // Inside node_modules so the compiled files resolve piscina and pino like an installed package would.
  out = await mkdtemp(join(root, 'node_modules', '.ringbus-build-'));
  await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', out]);
}, 120_000);
afterAll(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

describe('the built package', () => {
  it('runs a .mjs worker handler under plain node', async () => {
    const script = join(out, 'smoke.mjs');
    await writeFile(script, `
      import { MessageBus, workerHandler } from './src/index.js';
      const bus = new MessageBus({ logger: { debug() {}, info() {}, warn() {}, error: console.error }, pool: { maxThreads: 1 } });
      bus.registerCommandHandler('shout', workerHandler(${JSON.stringify(join(root, 'test/fixtures/plain.mjs'))}, 'shout'));
      bus.registerEventHandler('note', workerHandler(${JSON.stringify(join(root, 'test/fixtures/plain.mjs'))}, 'shout'));
      await bus.start();
      const r = await bus.execute('shout', 'built');
      for (let i = 0; i < 1000; i++) bus.publish('note', i);
      await bus.drain();
      console.log(JSON.stringify({ r, processed: bus.stats().processed }));
      await bus.stop();
    `);
    const { stdout } = await run(process.execPath, [script], { env: { ...process.env, NODE_OPTIONS: '' } });
    expect(JSON.parse(stdout)).toEqual({ r: { success: true, result: 'BUILT', attempts: 1 }, processed: 1001 });
  }, 60_000);
});
