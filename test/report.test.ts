import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { JSDOM } from 'jsdom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchResult } from '../bench/report_types.js';
import { ensureBuilt, RINGBUS_BIN } from './fixtures/built.js';

const root = fileURLToPath(new URL('..', import.meta.url));
let dir: string;
let stdout: string;
let stderr: string;
let code: number;
let html: string;

const FLAGS = [
  '--duration', '2', '--warmup', '0.5', '--rate', '5000', '--max-seconds', '0.2', '--max-rounds', '2', '--cpu-rates', '2000,8000',
  '--cpu-seconds', '0.3', '--idle-seconds', '0.3', '--baseline-seconds', '0.5',
];

// A short run of every phase through the CLI as installed (dist/, built from the current source: the bench's many
// fresh buses start their workers without tsx), at default options (the full default run is in PERFORMANCE.md).
beforeAll(async () => {
  await ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'ringbus-report-'));
  const report = join(dir, 'report.html');
  try {
    ({ stdout, stderr } = await promisify(execFile)(process.execPath, [RINGBUS_BIN, 'bench', ...FLAGS, '--report', report],
      { cwd: root, timeout: 150_000 }));
    code = 0;
  } catch (err) {
    // Exit code 3: a performance target was missed (this machine may be busy); the output is still complete.
    ({ stdout, stderr, code } = err as { stdout: string; stderr: string; code: number });
  }
  html = await readFile(report, 'utf8');
}, 180_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ringbus bench', () => {
  it('prints every phase, the command as run through the CLI, and a verdict that agrees with the marks', () => {
    expect([0, 3], stderr).toContain(code);
    expect(stdout).toContain(`command: npx ringbus bench ${FLAGS.slice(0, 4).join(' ')}`);
    expect(stdout).not.toMatch(/npx tsx/);
    expect(stdout).toMatch(/ResilientMessageBus at its default options \(overrides: none\)/);
    expect(stdout).toMatch(/sustained @ 5,000\/s/);
    expect(stdout).toMatch(/end-to-end ms \(CO-corrected\)\s+p50 [\d.]+ {2}p95/);
    expect(stdout).toMatch(/RSS slope after warm-up\s+n\/a \(< 30 s\)/);
    expect(stdout).toMatch(/defaults, natural loop\s+median [\d.]+[kM]?\/s \(min [\d.]+[kM]?\/s, max [\d.]+[kM]?\/s\); rounds \S+ \S+/);
    expect(stdout).toMatch(/TUNED: pool threads 1, chunked\s+median/);
    expect(stdout).toMatch(/binary, defaults, natural loop\s+median/);
    expect(stdout).toMatch(/defaults ÷ tuned \(medians\)\s+[\d.]+×/);
    expect(stdout).toMatch(/Piscina, 1,024 in flight\s+[\d,]+ ev\/s/);
    expect(stdout).toMatch(/ringbus defaults ÷ Piscina\s+[\d.]+×/);
    expect(stdout).toMatch(/idle\s+[\d.]+ % of one core/);
    expect(stdout).toMatch(/stats\(\) of every bus \(\d+\)\s+PASS/);
    const missed = stdout.split('\n').filter((l) => l.startsWith('✗')).length;
    if (missed === 0) expect(stdout).toMatch(/result: OK \(all \d+ targets? met; accounting holds\)/);
    else expect(stdout).toMatch(new RegExp(`result: FAIL \\(${missed} of \\d+ targets? missed: `));
    expect(code).toBe(missed === 0 ? 0 : 3);
  });

  it('prints no line wider than 120 columns, on stdout or stderr', () => {
    for (const line of `${stdout}\n${stderr}`.split('\n')) expect([...line].length, line).toBeLessThanOrEqual(120);
  });

  it('writes a self-contained HTML report whose six charts draw in a headless DOM', async () => {
    expect(html).not.toMatch(/\b(?:src|href)=["']?(?:https?:)?\/\//); // nothing fetched from the network
    const errors: string[] = [];
    const dom = new JSDOM(html, { runScripts: 'dangerously', pretendToBeVisual: true });
    dom.window.addEventListener('error', (e) => errors.push(e.message));
    await new Promise((resolve) => dom.window.addEventListener('load', resolve));
    expect(errors).toEqual([]);
    const doc = dom.window.document;
    const ids = ['chart-throughput', 'chart-latency', 'chart-rss', 'chart-maxrate', 'chart-baselines', 'chart-cpu'];
    for (const id of ids) {
      const figure = doc.getElementById(id);
      expect(figure, id).not.toBeNull();
      expect(figure!.getAttribute('data-drawn'), id).toBe('true');
      const svg = figure!.querySelector('svg');
      expect(svg, id).not.toBeNull();
      expect(svg!.textContent, id).not.toMatch(/no data/);
      expect(svg!.querySelectorAll('path, polyline, line, circle, rect').length, id).toBeGreaterThan(3);
    }
    const result = JSON.parse(doc.getElementById('bench-data')!.textContent!) as BenchResult;
    expect(result.schema).toBe(2);
    // One line (and a legend entry) per max-rate mode, a dot per round.
    const modes = result.maxRate!.modes;
    expect(modes.map((m) => m.key)).toEqual(['defaults', 'metricsOff', 'tuned', 'binary']);
    for (const m of modes) expect(m.rates).toHaveLength(2);
    const maxrate = doc.getElementById('chart-maxrate')!;
    expect(maxrate.querySelectorAll('.legend span')).toHaveLength(4);
    expect(maxrate.querySelectorAll('svg circle')).toHaveLength(8);
    // ringbus defaults, tuned, Piscina, inline: four bars.
    expect(doc.querySelectorAll('#chart-baselines svg rect.bar')).toHaveLength(4);
    // CPU: idle, the low rate and both CPU-phase rates as dots, and the fit line.
    const cpu = doc.getElementById('chart-cpu')!;
    expect(cpu.querySelectorAll('svg circle').length).toBeGreaterThanOrEqual(4);
    expect(cpu.querySelectorAll('svg path.series')).toHaveLength(2);
    expect(doc.querySelector('.verdict')!.textContent).toMatch(result.ok ? /^OK: all/ : /^FAIL: \d+ of/);
    dom.window.close();
  });
});
