import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ringbus-quiet-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The README's `// name` code block, as written there. */
async function readmeBlock(name: string): Promise<string> {
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  const block = readme.split('```js\n').map((b) => b.slice(0, b.indexOf('```'))).find((b) => b.startsWith(`// ${name}`));
  if (block === undefined) throw new Error(`README has no code block starting with // ${name}`);
  return block;
}

function run(script: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', script], { cwd: root, env: { ...process.env, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

describe('a library is quiet by default', () => {
  it('the README example prints only its own line on stdout and nothing on stderr', async () => {
    await writeFile(join(dir, 'handlers.mjs'), await readmeBlock('handlers.mjs'));
    const app = (await readmeBlock('app.mjs')).replace("from 'ringbus'", `from '${pathToFileURL(join(root, 'src/index.ts')).href}'`);
    await writeFile(join(dir, 'app.mjs'), app);
    const { code, stdout, stderr } = await run(join(dir, 'app.mjs'));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    // `console.log(success ? result : error, attempts, audit.length)`: the price object, 1 attempt, events audited so far.
    expect(stdout).toMatch(/^\{ sku: 'C-3', price: \d+ \} 1 [0-2]\n$/);
  });

  it('says state changes on stderr with logLevel info, and nothing with logger: false', async () => {
    const script = (options: string): string => `
      import { MessageBus } from '${pathToFileURL(join(root, 'src/index.ts')).href}';
      const bus = new MessageBus(${options});
      bus.registerEventHandler('t', () => {});
      await bus.start();
      bus.publish('t', 1);
      await bus.stop();
      console.log('done');`;
    await writeFile(join(dir, 'info.mjs'), script("{ logLevel: 'info' }"));
    await writeFile(join(dir, 'off.mjs'), script('{ logger: false, logLevel: "debug" }'));
    const info = await run(join(dir, 'info.mjs'));
    expect(info.stdout).toBe('done\n');
    const lines = info.stderr.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; level: number });
    const said = lines.map((l) => l.msg);
    expect(said[0]).toBe('bus started');
    expect(said.at(-1)).toBe('bus stopped');
    const off = await run(join(dir, 'off.mjs'));
    expect(off).toEqual({ code: 0, stdout: 'done\n', stderr: '' });
    // RINGBUS_LOG_LEVEL reaches the constructor only through loadConfig(): the constructor reads what it is given.
  });
});
