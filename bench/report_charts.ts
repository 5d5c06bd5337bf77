/// <reference lib="dom" />
/**
 * The charts of the HTML report (bench/report.ts), drawn in the page as
 * inline SVG: this one function is type-checked here and inlined into the
 * page as its source text (`drawCharts.toString()`), so it must be
 * self-contained: it may use only its parameters, the page's globals and
 * what it declares itself (no imports at runtime, no module-level values).
 * Each chart's figure is marked data-drawn="true" once it is drawn; a phase
 * that did not run draws "no data".
 */
import type { BenchResult } from './report_types.js';

/** Fills the report's figures (#chart-…) from the run's result. */
export function drawCharts(r: BenchResult, doc: Document): void {
  const NS = 'http://www.w3.org/2000/svg';
  const W = 1000;
  const H = 320;
  const L = 70;
  const R = 48;
  const T = 14;
  const B = 44;
  type Point = [number, number];
  interface Series { name: string; color: string; points: Point[]; dash?: string; dotsOnly?: boolean }
  interface Opts { xLabel: string; yLabel: string; yLog?: boolean; xTicks?: [number, string][]; xMin?: number; xMax?: number; yMin?: number }

  function el(name: string, attrs: Record<string, string | number>, parent?: Element, text?: string): Element {
    const e = doc.createElementNS(NS, name);
    for (const k of Object.keys(attrs)) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function fmt(v: number): string {
    const a = Math.abs(v);
    if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
    if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
    if (a >= 1 || a === 0) return String(+v.toPrecision(3));
    return String(+v.toPrecision(2));
  }
  function niceTicks(lo: number, hi: number, n: number): number[] {
    if (!(hi > lo)) hi = lo + 1;
    let step = 10 ** Math.floor(Math.log10((hi - lo) / n));
    const err = (hi - lo) / n / step;
    if (err >= 7.5) step *= 10;
    else if (err >= 3.5) step *= 5;
    else if (err >= 1.5) step *= 2;
    const out: number[] = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }
  function legendItem(fig: Element, name: string, color: string): void {
    const item = doc.createElement('span');
    const swatch = doc.createElement('i');
    swatch.style.background = color;
    item.appendChild(swatch);
    item.appendChild(doc.createTextNode(name));
    fig.querySelector('.legend')?.appendChild(item);
  }
  /** The figure's svg, or null (and the figure marked drawn) when there is nothing to draw. */
  function canvas(id: string, hasData: boolean): { fig: Element; svg: Element } | null {
    const fig = doc.getElementById(id);
    if (!fig) return null;
    const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': fig.querySelector('figcaption')?.textContent ?? id });
    fig.querySelector('.plot')?.appendChild(svg);
    if (!hasData) {
      el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, svg, 'no data (phase not run)');
      fig.setAttribute('data-drawn', 'true');
      return null;
    }
    return { fig, svg };
  }
  function axes(svg: Element, yTicks: number[], yPos: (t: number) => number, yText: (t: number) => string, o: Opts): Element {
    const grid = el('g', {}, svg);
    for (const t of yTicks) {
      el('line', { x1: L, x2: W - R, y1: yPos(t), y2: yPos(t), stroke: '#e4e7ee' }, grid);
      el('text', { x: L - 6, y: yPos(t) + 4, 'text-anchor': 'end' }, grid, yText(t));
    }
    el('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: '#9aa3b5' }, svg);
    el('line', { x1: L, x2: L, y1: T, y2: H - B, stroke: '#9aa3b5' }, svg);
    el('text', { x: (L + W - R) / 2, y: H - 6, 'text-anchor': 'middle' }, svg, o.xLabel);
    el('text', { x: 14, y: (T + H - B) / 2, 'text-anchor': 'middle', transform: `rotate(-90 14 ${(T + H - B) / 2})` }, svg, o.yLabel);
    return grid;
  }

  /** Lines (or dots) over a numeric x axis; y linear from yMin (or 0), or log10. */
  function lineChart(id: string, series: Series[], o: Opts): void {
    const keep = (p: Point): boolean => Number.isFinite(p[0]) && Number.isFinite(p[1]) && (!o.yLog || p[1] > 0);
    const pts = series.flatMap((s) => s.points.filter(keep));
    const c = canvas(id, pts.length > 0);
    if (!c) return;
    const xs = pts.map((p) => p[0]);
    const ys = pts.map((p) => p[1]);
    const x0 = o.xMin ?? Math.min(...xs);
    let x1 = o.xMax ?? Math.max(...xs);
    if (!(x1 > x0)) x1 = x0 + 1;
    let yLo: number;
    let yHi: number;
    let yTicks: number[];
    if (o.yLog) {
      yLo = Math.floor(Math.log10(Math.min(...ys)));
      yHi = Math.ceil(Math.log10(Math.max(...ys)));
      if (yHi <= yLo) yHi = yLo + 1;
      yTicks = [];
      for (let d = yLo; d <= yHi; d++) yTicks.push(d);
    } else {
      yLo = o.yMin ?? Math.min(0, ...ys);
      yHi = Math.max(...ys) * 1.08;
      if (!(yHi > yLo)) yHi = yLo + 1;
      yTicks = niceTicks(yLo, yHi, 6);
      yHi = Math.max(yHi, yTicks[yTicks.length - 1]);
    }
    const X = (v: number): number => L + ((v - x0) / (x1 - x0)) * (W - L - R);
    const U = (u: number): number => T + (1 - (u - yLo) / (yHi - yLo)) * (H - T - B);
    const Y = (v: number): number => U(o.yLog ? Math.log10(v) : v);
    const grid = axes(c.svg, yTicks, U, (t) => fmt(o.yLog ? 10 ** t : t), o);
    const xTicks = o.xTicks ?? niceTicks(x0, x1, 10).map((v): [number, string] => [v, fmt(v)]);
    for (const [v, label] of xTicks) {
      if (v < x0 - 1e-9 || v > x1 + 1e-9) continue;
      el('line', { x1: X(v), x2: X(v), y1: T, y2: H - B, stroke: '#f0f2f6' }, grid);
      el('text', { x: X(v), y: H - B + 16, 'text-anchor': 'middle' }, grid, label);
    }
    for (const s of series) {
      const good = s.points.filter(keep);
      if (good.length === 0) continue;
      if (!s.dotsOnly) {
        const d = good.map((p, i) => `${i ? 'L' : 'M'}${X(p[0]).toFixed(1)} ${Y(p[1]).toFixed(1)}`).join(' ');
        el('path', { d, fill: 'none', stroke: s.color, 'stroke-width': 2, 'stroke-dasharray': s.dash ?? '', class: 'series' }, c.svg);
      }
      if (good.length <= 60) for (const p of good) el('circle', { cx: X(p[0]), cy: Y(p[1]), r: s.dotsOnly ? 4 : 2.5, fill: s.color }, c.svg);
      legendItem(c.fig, s.name, s.color);
    }
    c.fig.setAttribute('data-drawn', 'true');
  }

  /** One bar per item, log10 y (the baselines differ by orders of magnitude), the value above each bar. */
  function barChart(id: string, bars: { name: string; value: number; color: string }[], yLabel: string): void {
    const good = bars.filter((b) => Number.isFinite(b.value) && b.value > 0);
    const c = canvas(id, good.length > 0);
    if (!c) return;
    const lo = Math.floor(Math.log10(Math.min(...good.map((b) => b.value))));
    let hi = Math.ceil(Math.log10(Math.max(...good.map((b) => b.value))));
    if (hi <= lo) hi = lo + 1;
    const U = (u: number): number => T + (1 - (u - lo) / (hi - lo)) * (H - T - B);
    const ticks: number[] = [];
    for (let d = lo; d <= hi; d++) ticks.push(d);
    axes(c.svg, ticks, U, (t) => fmt(10 ** t), { xLabel: '', yLabel });
    const slot = (W - L - R) / good.length;
    good.forEach((b, i) => {
      const x = L + i * slot + slot * 0.2;
      const y = U(Math.log10(b.value));
      el('rect', { x, y, width: slot * 0.6, height: Math.max(1, H - B - y), fill: b.color, class: 'bar' }, c.svg);
      el('text', { x: x + slot * 0.3, y: y - 4, 'text-anchor': 'middle' }, c.svg, `${fmt(b.value)}/s`);
      el('text', { x: x + slot * 0.3, y: H - B + 16, 'text-anchor': 'middle' }, c.svg, b.name);
    });
    c.fig.setAttribute('data-drawn', 'true');
  }

  // Sustained phase: throughput, latency percentiles, memory.
  const s = r.sustained;
  const thr: Series[] = s ? [
    { name: 'published (accepted by publish())', color: '#2b6cb0', points: s.series.throughput.map((p): Point => [p.t, p.published]) },
    { name: 'processed', color: '#dd6b20', points: s.series.throughput.map((p): Point => [p.t, p.processed]) },
  ] : [];
  if (s && s.offeredRate !== null) {
    const offered = s.offeredRate;
    thr.push({ name: 'offered', color: '#718096', dash: '6 4', points: s.series.throughput.map((p): Point => [p.t, offered]) });
  }
  lineChart('chart-throughput', thr, { xLabel: 'seconds', yLabel: 'events/s', xMin: 0 });

  // Percentiles on the classic HDR axis: x = log10(1 / (1 - p)), so 90%, 99%, 99.9% ... are evenly spaced.
  const px = (p: number): number => Math.log10(1 / (1 - Math.min(p, 99.9999) / 100));
  const lat = s ? s.series.latency : [];
  const latPts = (key: 'publishUs' | 'sendLagUs' | 'endToEndUs' | 'endToEndRawUs'): Point[] => lat.map((p): Point => [px(p.percentile), p[key]]);
  const maxX = lat.length ? px(lat[lat.length - 1].percentile) : 5;
  const pct: [number, string][] = [[0, '0%'], [px(50), '50%'], [1, '90%'], [2, '99%'], [3, '99.9%'], [4, '99.99%'], [5, '99.999%']];
  lineChart('chart-latency', [
    { name: 'publish() call', color: '#2b6cb0', points: latPts('publishUs') },
    { name: 'send lag vs schedule', color: '#805ad5', points: latPts('sendLagUs') },
    { name: 'end-to-end (CO-corrected)', color: '#dd6b20', points: latPts('endToEndUs') },
    { name: 'end-to-end (raw)', color: '#38a169', dash: '6 4', points: latPts('endToEndRawUs') },
  ], { xLabel: 'percentile', yLabel: 'µs', yLog: true, xTicks: pct.filter((t) => t[0] <= maxX + 1e-9), xMin: 0, xMax: maxX });

  const mem = s ? s.series.memory : [];
  lineChart('chart-rss', [
    { name: 'RSS (whole process, workers included)', color: '#c53030', points: mem.map((p): Point => [p.t, p.rssMb]) },
    { name: 'main heap used', color: '#3182ce', points: mem.map((p): Point => [p.t, p.heapMb]) },
  ], { xLabel: 'seconds', yLabel: 'MB', xMin: 0, yMin: 0 });

  // Max-rate phase: every round of every mode.
  const colors = ['#2b6cb0', '#718096', '#dd6b20', '#38a169', '#805ad5', '#c53030'];
  const modes = r.maxRate ? r.maxRate.modes : [];
  lineChart('chart-maxrate', modes.map((m, k): Series => ({
    name: `${m.label}: median ${fmt(m.spread.median)}/s`, color: colors[k % colors.length],
    points: m.rates.map((v, i): Point => [i + 1, v]), dash: m.key === 'tuned' ? '6 4' : undefined,
  })), {
    xLabel: 'round (a fresh bus each)', yLabel: 'events/s', yMin: 0, xMin: 0.8, xMax: Math.max(1, ...modes.map((m) => m.rates.length)) + 0.2,
    xTicks: (modes[0]?.rates ?? []).map((_, i): [number, string] => [i + 1, String(i + 1)]),
  });

  // Baselines: ringbus (defaults, and tuned when it ran) against Piscina and an inline EventEmitter.
  const bars: { name: string; value: number; color: string }[] = [];
  const b = r.baselines;
  if (b) {
    const mode = (key: string): number | undefined => modes.find((m) => m.key === key)?.spread.median;
    const natural = mode('defaults');
    const tuned = mode('tuned');
    if (natural !== undefined) bars.push({ name: 'ringbus, defaults', value: natural, color: '#2b6cb0' });
    if (tuned !== undefined) bars.push({ name: 'ringbus, tuned', value: tuned, color: '#dd6b20' });
    bars.push({ name: `Piscina, ${b.piscina.inFlight} in flight`, value: b.piscina.rate, color: '#718096' });
    bars.push({ name: 'inline EventEmitter', value: b.inline.rate, color: '#38a169' });
  }
  barChart('chart-baselines', bars, 'events/s (log)');

  // CPU against delivered rate: idle, the low rate, the CPU phase's points, and its fit.
  const cpuPts: Point[] = [];
  if (r.idle) cpuPts.push([0, r.idle.idle.cpuPctOfCore], [r.idle.lowRate.achieved, r.idle.lowRate.cpuPctOfCore]);
  if (r.cpu) for (const p of r.cpu.points) cpuPts.push([p.achieved, p.cpuPctOfCore]);
  cpuPts.sort((p, q) => p[0] - q[0]);
  const cpuSeries: Series[] = [{ name: 'measured (whole process, % of one core)', color: '#c53030', points: cpuPts }];
  const fit = r.cpu ? r.cpu.fit : null;
  if (fit && cpuPts.length > 0) {
    const xMax = cpuPts[cpuPts.length - 1][0];
    cpuSeries.push({
      name: `fit: ${fit.interceptPct.toFixed(1)} % + ${fit.usPerEvent.toFixed(2)} µs/event`, color: '#718096', dash: '6 4',
      points: [[0, fit.interceptPct], [xMax, fit.interceptPct + (fit.usPerEvent / 1e6) * xMax * 100]],
    });
  }
  lineChart('chart-cpu', cpuPts.length > 0 ? cpuSeries : [], { xLabel: 'events/s delivered', yLabel: '% of one core', xMin: 0, yMin: 0 });
}
