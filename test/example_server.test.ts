import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const children: ChildProcess[] = [];

// The example imports the built package (as an app would): build it from the current source first.
beforeAll(async () => {
  await promisify(execFile)(process.execPath, [`${root}/node_modules/typescript/bin/tsc`, '-p', `${root}/tsconfig.build.json`]);
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
async function load(base: string): Promise<{ results: Record<string, unknown>[]; delay: { p99: number; max: number } }> {
  await json(`${base}/healthz/reset`);
  const results: Record<string, unknown>[] = [];
  for (let round = 0; round < 6; round++) {
    results.push(...(await Promise.all(Array.from({ length: 4 }, () => json(`${base}/render?size=250&iterations=600`)))));
  }
  const health = await json(`${base}/healthz`);
  return { results, delay: health.eventLoopDelayMs as { p99: number; max: number } };
}

describe('examples/http-cpu-heavy', () => {
  it('serves CPU-heavy renders through the bus with a free event loop, metrics and health', async () => {
    const base = await startServer({});
    const { results, delay } = await load(base);
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

    // The same load with the work on the main thread blocks the loop for a whole render at a time.
    const inline = await load(await startServer({ INLINE: '1' }));
    expect(inline.results.map((r) => r.checksum)).toEqual(results.map((r) => r.checksum));
    // Inline, the loop waits a whole render (~20 ms of CPU here) at a time; through the bus only for
    // the dispatcher's short turns. (p99, not max: one GC pause or a noisy neighbour can make any max.)
    expect(inline.delay.p99).toBeGreaterThanOrEqual(15);
    expect(delay.p99).toBeLessThan(Math.min(10, inline.delay.p99 / 2));
  }, 90_000);
});
