import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from './fixtures/built.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const children: ChildProcess[] = [];

// The example imports the built package (as an app would): build it from the current source first (unless dist/ is
// already newer than every source file, as right after `npm ci`).
beforeAll(async () => {
  await ensureBuilt();
}, 120_000);
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGTERM');
});

/** Starts the example server on a free loopback port; resolves its base URL. */
function startServer(env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, [`${root}/examples/http-cpu-heavy/server.mjs`], {
    cwd: root, env: { ...process.env, PORT: '0', RINGBUS_MAX_THREADS: '1', ...env }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start within 20 s')), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(chunk.toString());
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

async function json(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

/** 24 renders of ~20 ms CPU each, 4 at a time: a bounded load. */
async function load(base: string): Promise<Record<string, unknown>[]> {
  const results: Record<string, unknown>[] = [];
  for (let round = 0; round < 6; round++) {
    results.push(...(await Promise.all(Array.from({ length: 4 }, () => json(`${base}/render?size=250&iterations=600`)))));
  }
  return results;
}

const RENDERS = 8;

/**
 * Sends RENDERS heavier renders (~40 ms of CPU each) at once and, until they
 * have all answered, asks /healthz again and again, one request after the
 * other. Resolves how many health answers came while renders were pending.
 */
async function healthAnswersDuringRenders(base: string): Promise<{ answers: number; checksums: unknown[] }> {
  let pending = true;
  const renders = Promise.all(Array.from({ length: RENDERS }, () => json(`${base}/render?size=250&iterations=1200`)));
  void renders.finally(() => (pending = false));
  let answers = 0;
  while (pending) {
    await json(`${base}/healthz`);
    if (pending) answers++;
  }
  return { answers, checksums: (await renders).map((r) => r.checksum) };
}

describe('examples/http-cpu-heavy', () => {
  it('serves CPU-heavy renders through the bus with a free event loop, metrics and health', async () => {
    const base = await startServer({});
    const results = await load(base);
    expect(results).toHaveLength(24);
    expect(new Set(results.map((r) => r.checksum)).size).toBe(1);
    expect(results[0]).toMatchObject({ size: 250, iterations: 600 });
    const health = await json(`${base}/healthz`);
    expect(health).toMatchObject({ status: 'ok', mode: 'workers', queueSize: 0 });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^events_published_total\{topic="image\.render"\} 24$/m);
    expect(metrics).toMatch(/^events_processed_total\{handler="render"\} 24$/m);
    expect(metrics).toMatch(/^event_processing_duration_seconds_count\{handler="render"\} 24$/m);
    expect((await fetch(`${base}/render?size=-1`)).status).toBe(400);

    // The server stays responsive while its worker renders: health requests are answered one after another
    // the whole time. With the work on the main thread, the loop gets a turn only between two renders, so
    // at most about one health answer per render (RENDERS + 1); through the bus the loop is free, and many more
    // come (a health round trip takes a millisecond or two, a render tens). Twice the blocked count is the bar:
    // beyond any blocked loop, and far below what a free one gives even on a loaded machine.
    const blockedAtMost = RENDERS + 1;
    const offloaded = await healthAnswersDuringRenders(base);
    const inlineBase = await startServer({ INLINE: '1' });
    const inline = await healthAnswersDuringRenders(inlineBase);
    expect(inline.checksums).toEqual(offloaded.checksums); // the same work either way
    expect(inline.answers).toBeLessThanOrEqual(2 * blockedAtMost); // what the measure shows for a blocked loop
    expect(offloaded.answers).toBeGreaterThan(2 * blockedAtMost);
    // And the same 24-render load inline gives the same results.
    expect((await load(inlineBase)).map((r) => r.checksum)).toEqual(results.map((r) => r.checksum));
  }, 90_000);
});
