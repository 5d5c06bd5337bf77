import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MessageBus } from '../src/index.js';
import { ensureBuilt, RINGBUS_BIN } from './fixtures/built.js';
import { quietLogger } from './helpers.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
/** The command as installed (dist/, built from the current source), and from the source under tsx. */
const BUILT = [RINGBUS_BIN];
const SOURCE = [join(root, 'node_modules/tsx/dist/cli.mjs'), join(root, 'src/cli/bin.ts')];
let dir: string;

/** Runs `ringbus ...args` (built, unless `command` says otherwise); never rejects: resolves the exit code and both streams. */
async function ringbus(args: string[], env: Record<string, string> = {}, cwd = root, command = BUILT): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...command, ...args], { cwd, env: { ...process.env, ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ringbus-cli-'));
  await ensureBuilt();
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ringbus CLI', () => {
  it('prints usage with --help, and exits 2 on an unknown command in one line', async () => {
    const help = await ringbus(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/usage: ringbus <command>/);
    expect(help.stdout).toMatch(/dlq replay --path FILE --handlers MODULE/);
    const bad = await ringbus(['frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe("ringbus: unknown command 'frobnicate' (bench, config, dlq, dashboard; ringbus --help)\n");
  });

  it('bench --help and bad bench flags name the command as `npx ringbus bench`, never tsx', async () => {
    // From the source, under tsx: the case where tsx could show through.
    const help = await ringbus(['bench', '--help'], {}, root, SOURCE);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: npx ringbus bench \[flags\]\n/);
    expect(help.stdout).toMatch(/--phases VALUE +which phases to run .*sustained,max,cpu,idle,baselines/);
    expect(help.stdout).not.toMatch(/tsx/);
    for (const line of help.stdout.split('\n')) expect([...line].length, line).toBeLessThanOrEqual(120);
    const bad = await ringbus(['bench', '--phases', 'warp'], {}, root, SOURCE);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^--phases takes a subset of sustained,max,cpu,idle,baselines, got 'warp'\n\nusage: npx ringbus bench/);
  });

  it('config prints every option with its value and source', async () => {
    const file = join(dir, 'ringbus.config.json');
    await writeFile(file, JSON.stringify({ queue: { capacity: 123 } }));
    const r = await ringbus(['config'], { RINGBUS_MAX_BATCH: '99' }, dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`config file: ${file.replace(/[.]/g, '\\.')}`));
    expect(r.stdout).toMatch(/queue\.capacity\s+123\s+file \(/);
    expect(r.stdout).toMatch(/pool\.maxBatch\s+99\s+env \(RINGBUS_MAX_BATCH\)/);
    expect(r.stdout).toMatch(/pool\.lingerMs\s+20\s+default/);
    const json = JSON.parse((await ringbus(['config', '--json'], {}, dir)).stdout);
    expect(json.options['queue.capacity']).toMatchObject({ value: 123, source: 'file' });
  });

  it('config errors are one line naming the variable or file, exit 1', async () => {
    const r = await ringbus(['config'], { RINGBUS_QUEUE_CAPACITY: 'many' }, dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("ringbus: RINGBUS_QUEUE_CAPACITY: 'many' is not an integer (option queue.capacity)\n");
    const missing = await ringbus(['config', '--config', '/nope.json']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('ringbus: config file /nope.json (from --config) does not exist\n');
    const flag = await ringbus(['config', '--bogus']);
    expect(flag.code).toBe(2);
    expect(flag.stderr.split('\n')).toHaveLength(2);
  });

  it('lists, counts and replays a dead-letter file', async () => {
    const path = join(dir, 'dead.jsonl');
    // Inline handlers only: no worker thread to start.
    const bus = new MessageBus({ logger: quietLogger(), pool: { maxThreads: 1, minThreads: 0 }, deadLetter: { path } });
    bus.registerEventHandler('payments', () => {
      throw new Error('gateway down');
    }, { name: 'charge card' });
    await bus.start();
    bus.publish('payments', { id: 1 });
    bus.publish('payments', { id: 2, failAgain: true });
    await bus.drain();
    await bus.stop();

    expect((await ringbus(['dlq', 'count', '--path', path])).stdout).toBe('2\n');
    const list = await ringbus(['dlq', 'list', '--path', path]);
    expect(list.stdout).toMatch(/payments → charge card {2}attempts=1 {2}gateway down/);
    expect(list.stdout).toMatch(/2 dead letters\n$/);

    const replay = await ringbus(['dlq', 'replay', '--path', path, '--handlers', join(root, 'test/fixtures/replay_handlers.mjs')]);
    expect(replay.stdout).toMatch(/replayed 1 of 2; 1 failed again and is back in /);
    expect(replay.code).toBe(1);
    expect((await ringbus(['dlq', 'count', '--path', path])).stdout).toBe('1\n');

    const noFile = await ringbus(['dlq', 'list', '--path', join(dir, 'missing.jsonl')]);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toMatch(/^ringbus: dead-letter file .*missing\.jsonl does not exist\n$/);
    const noHandlers = await ringbus(['dlq', 'replay', '--path', path]);
    expect(noHandlers.stderr).toBe('ringbus: --handlers MODULE is required (the module exporting the handlers to replay to)\n');
  }, 60_000);
});
