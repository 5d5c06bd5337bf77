import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { JSDOM } from 'jsdom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
let dir: string;
let stdout: string;
let html: string;

// A short run of the benchmark through the CLI (the full 10-second default run is in PERFORMANCE.md).
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ringbus-report-'));
  const report = join(dir, 'report.html');
  ({ stdout } = await promisify(execFile)(process.execPath, [
    join(root, 'node_modules/tsx/dist/cli.mjs'), join(root, 'src/cli/bin.ts'), 'bench',
    '--duration', '2', '--warmup', '0.5', '--rate', '5000', '--phases', 'sustained,max', '--max-seconds', '1', '--max-rounds', '1',
    '--threads', '1', '--report', report,
  ], { cwd: root, timeout: 120_000 }));
  html = await readFile(report, 'utf8');
}, 150_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ringbus bench', () => {
  it('prints the sustained and max-rate results and the accounting check', () => {
    expect(stdout).toMatch(/sustained @ 5,000\/s/);
    expect(stdout).toMatch(/end-to-end ms \(CO-corrected\)\s+p50 [\d.]+ {2}p95/);
    expect(stdout).toMatch(/metrics on \(median\)\s+[\d,]+ ev\/s/);
    expect(stdout).toMatch(/result: OK \(accounting holds\)/);
  });

  it('writes a self-contained HTML report whose three charts draw in a headless DOM', async () => {
    expect(html).not.toMatch(/\b(?:src|href)=["']?(?:https?:)?\/\//); // nothing fetched from the network
    const dom = new JSDOM(html, { runScripts: 'dangerously', pretendToBeVisual: true });
    await new Promise((resolve) => dom.window.addEventListener('load', resolve));
    const doc = dom.window.document;
    for (const id of ['chart-throughput', 'chart-latency', 'chart-rss']) {
      const figure = doc.getElementById(id);
      expect(figure, id).not.toBeNull();
      expect(figure!.getAttribute('data-drawn'), id).toBe('true');
      const svg = figure!.querySelector('svg');
      expect(svg, id).not.toBeNull();
      expect(svg!.querySelectorAll('path, polyline, line, circle, rect').length, id).toBeGreaterThan(3);
    }
    dom.window.close();
  });
});
