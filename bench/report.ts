/**
 * The result of bench/bus_performance.ts, its summary table (text and HTML)
 * and the self-contained HTML report: no network, the data inline as JSON and
 * the three charts drawn as inline SVG by an inline script, which marks each
 * chart element data-drawn="true" once it is drawn.
 */

/** Percentiles of one latency, in the unit its name says. */
export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
}

export interface AccountingCheck {
  bus: string;
  pass: boolean;
  /** The stats() the check ran on. */
  stats: Record<string, number | boolean>;
  failures: string[];
}

export interface LatencyPoint {
  /** Percentile, 0–100. */
  percentile: number;
  publishUs: number;
  sendLagUs: number;
  endToEndUs: number;
  endToEndRawUs: number;
}

export interface BenchResult {
  meta: {
    command: string;
    startedAt: string;
    wallSeconds: number;
    node: string;
    platform: string;
    cpuModel: string;
    cores: number;
    /** os.loadavg() when the run started: other work on the machine shows up in every figure. */
    loadAvg: number[];
  };
  config: {
    /** Events/s offered in the sustained phase; null = as fast as possible. */
    rate: number | null;
    duration: number;
    /** Seconds at the same rate before the measured phase, excluded from its figures. */
    warmup: number;
    threads: number;
    payload: string;
    payloadBytes: number;
    binary: boolean;
    handlerCostUs: number;
    failureRate: number;
    crashRate: number;
    timeoutRate: number;
    handlerTimeoutMs: number;
    retry: { maxRetries: number; initialDelayMs: number; maxDelayMs: number };
    breaker: { failureRateThreshold: number; minimumCalls: number; windowMs: number; recoveryTimeoutMs: number };
    queueCapacity: number;
    maxSeconds: number;
    maxRounds: number;
    cpuRates: number[];
    cpuSeconds: number;
    skipBaselines: boolean;
  };
  sustained: {
    offeredRate: number | null;
    seconds: number;
    attempted: number;
    accepted: number;
    rejected: number;
    achievedRate: number;
    /** null when the rate was 'max' (nothing to keep up with). */
    keptUp: boolean | null;
    /** How long after the last publish the queue was empty; null if not within the wait. */
    drainMs: number | null;
    /** publish() call time, µs; coordinated-omission aware at fixed rates (recordValueWithExpectedInterval). */
    publishUs: Percentiles;
    /** The same calls, one sample each (no CO correction). */
    publishRawUs: Percentiles;
    /** How long one bus.metrics.snapshot() blocks the main thread after the phase (median of 3), ms. */
    metricsSnapshotMs: number;
    /** The main thread's event-loop delay over the phase (perf_hooks.monitorEventLoopDelay), ms. */
    eventLoopDelayMs: Percentiles;
    /** How late each publish started against its schedule, µs. */
    sendLagUs: Percentiles;
    /** Publish → settled, ms: the bus's histogram, CO-corrected at fixed rates. */
    endToEndMs: Percentiles;
    /** The same, uncorrected. */
    endToEndRawMs: Percentiles;
    memory: {
      peakRssMb: number;
      peakHeapMb: number;
      /** Linear regression over the samples after the first 20% of the run. */
      rssSlopeMbPerMin: number;
      heapSlopeMbPerMin: number;
      warmupSeconds: number;
      samples: number;
      /** Main thread's heapUsed right after a full GC: before the phase, and after it drained. */
      liveHeapStartMb: number;
      liveHeapEndMb: number;
    };
    stats: Record<string, number | boolean>;
    series: {
      /** Per second: events accepted by publish() and events processed. */
      throughput: { t: number; published: number; processed: number }[];
      /** Every 250 ms. */
      memory: { t: number; rssMb: number; heapMb: number }[];
      latency: LatencyPoint[];
    };
  } | null;
  maxRate: {
    roundSeconds: number;
    rounds: number;
    metricsOn: number[];
    metricsOff: number[];
    medianOn: number;
    medianOff: number;
    /** (off − on) / off, in %: what timing every attempt and every event costs. */
    metricsCostPct: number;
  } | null;
  cpu: {
    points: { rate: number; achieved: number; cpuUsPerEvent: number; cpuPctOfCore: number; seconds: number }[];
    /** CPU (% of one core) = intercept + slope × rate, least squares over the points. */
    fit: { usPerEvent: number; interceptPct: number; r2: number } | null;
  } | null;
  baselines: {
    piscina: { events: number; rate: number; seconds: number };
    inline: { events: number; rate: number; seconds: number };
    /** ringbus max rate (metrics on) ÷ the baseline; null without the max-rate phase. */
    ratioToPiscina: number | null;
    ratioToInline: number | null;
  } | null;
  efficiency: { costUs: number; threads: number; idealRate: number; achievedRate: number; pct: number } | null;
  chaos: {
    enabled: boolean;
    published: number;
    processed: number;
    failed: number;
    retried: number;
    deadLettered: number;
    dropped: number;
    abandoned: number;
    pass: boolean;
    failures: string[];
  };
  accounting: AccountingCheck[];
  errorLogs: number;
  ok: boolean;
}

export interface SummaryRow {
  section: string;
  metric: string;
  value: string;
  target: string;
  /** undefined: no target for this configuration. */
  ok: boolean | undefined;
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const fix = (n: number, d: number): string => (Number.isFinite(n) ? n.toFixed(d) : String(n));
export const rateText = (n: number): string =>
  n >= 1e6 ? `${fix(n / 1e6, 2)}M/s` : n >= 1e4 ? `${fix(n / 1e3, 1)}k/s` : `${int(n)}/s`;
const lat = (p: Percentiles, unit: string, d: number): string =>
  `p50 ${fix(p.p50, d)}  p95 ${fix(p.p95, d)}  p99 ${fix(p.p99, d)}  p99.9 ${fix(p.p999, d)}  max ${fix(p.max, d)} ${unit}`;

/** The rows of the summary table: one source for the text table and the HTML one. */
export function summaryRows(r: BenchResult): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const add = (section: string, metric: string, value: string, target = '', ok?: boolean): void => {
    rows.push({ section, metric, value, target, ok });
  };
  const s = r.sustained;
  if (s) {
    const fixed = s.offeredRate !== null;
    const sec = `sustained @ ${fixed ? `${int(s.offeredRate!)}/s` : 'max'}, ${fix(s.seconds, 1)} s measured after ${r.config.warmup} s warm-up`;
    add(sec, 'achieved rate', `${int(s.achievedRate)} ev/s (${int(s.accepted)} accepted, ${int(s.rejected)} rejected)`,
      fixed ? `≥ ${int(0.98 * s.offeredRate!)}` : '', fixed ? s.achievedRate >= 0.98 * s.offeredRate! : undefined);
    if (fixed) {
      add(sec, 'kept up', `${s.keptUp ? 'yes' : 'NO'}; queue drained ${s.drainMs === null ? 'NOT within 1 s' : `${fix(s.drainMs, 0)} ms`} after the last publish`,
        'rate ≥ 98% and drained ≤ 1 s', s.keptUp ?? undefined);
    }
    const at10k = fixed && s.offeredRate! <= 10_000;
    add(sec, `publish() µs${fixed ? ' (CO-aware)' : ''}`, lat(s.publishUs, 'µs', 1), 'p99 < 50 µs at 10k/s',
      at10k ? s.publishUs.p99 < 50 : undefined);
    if (fixed) add(sec, 'publish() µs (raw, one sample per call)', lat(s.publishRawUs, 'µs', 1));
    if (fixed) add(sec, 'send lag µs (vs schedule, 1 ms timer)', lat(s.sendLagUs, 'µs', 0));
    add(sec, `end-to-end ms${fixed ? ' (CO-corrected)' : ''}`, lat(s.endToEndMs, 'ms', 2), 'p99 < 5 ms at 10k/s',
      at10k ? s.endToEndMs.p99 < 5 : undefined);
    if (fixed) add(sec, 'end-to-end ms (raw)', lat(s.endToEndRawMs, 'ms', 2));
    add(sec, 'main event-loop delay ms', lat(s.eventLoopDelayMs, 'ms', 2));
    add(sec, 'bus.metrics.snapshot() call', `${fix(s.metricsSnapshotMs, 1)} ms of the main thread (median of 3, after the phase)`);
    add(sec, 'memory', `peak RSS ${fix(s.memory.peakRssMb, 0)} MB, peak heap ${fix(s.memory.peakHeapMb, 0)} MB; ` +
      `main live heap (after a full GC) ${fix(s.memory.liveHeapStartMb, 1)} MB before → ${fix(s.memory.liveHeapEndMb, 1)} MB after`);
    const longEnough = r.config.duration >= 30;
    add(sec, 'RSS slope after warm-up', `${s.memory.rssSlopeMbPerMin >= 0 ? '+' : ''}${fix(s.memory.rssSlopeMbPerMin, 2)} MB/min ` +
      `(heap ${s.memory.heapSlopeMbPerMin >= 0 ? '+' : ''}${fix(s.memory.heapSlopeMbPerMin, 2)} MB/min, ${s.memory.samples} samples after ${fix(s.memory.warmupSeconds, 1)} s)`,
    longEnough ? '≈ 0 (|slope| < 1 MB/min)' : '≈ 0: judged on runs ≥ 30 s', longEnough ? Math.abs(s.memory.rssSlopeMbPerMin) < 1 : undefined);
  }

  const m = r.maxRate;
  const noCost = r.config.handlerCostUs === 0;
  if (m) {
    const mx = `max rate (deliveries/s in steady state), ${m.rounds}×${fix(m.roundSeconds, 2)} s per mode, alternating on/off`;
    const targetMax = r.config.binary ? 2e6 : 5e5;
    add(mx, 'metrics on (median)', `${int(m.medianOn)} ev/s  [${m.metricsOn.map(rateText).join(', ')}]`,
      `≥ ${rateText(targetMax)} (${r.config.binary ? 'binary' : 'JSON'}, no-op handler)`, noCost ? m.medianOn >= targetMax : undefined);
    add(mx, 'metrics off (median)', `${int(m.medianOff)} ev/s  [${m.metricsOff.map(rateText).join(', ')}]`);
    add(mx, 'metrics cost', `${fix(m.metricsCostPct, 1)} %`, '< 5 %', m.metricsCostPct < 5);
  }

  if (r.baselines) {
    const b = r.baselines;
    const sec = 'baselines (same handler and payload)';
    add(sec, 'Piscina, one run() per event', `${int(b.piscina.rate)} ev/s (${int(b.piscina.events)} events)`);
    add(sec, 'inline EventEmitter (main thread)', `${int(b.inline.rate)} ev/s (${int(b.inline.events)} events)`);
    add(sec, 'ringbus ÷ Piscina per event', b.ratioToPiscina === null ? 'n/a (no max-rate phase)' : `${fix(b.ratioToPiscina, 1)}×`,
      noCost ? '≥ 20× (no-op handler)' : '', b.ratioToPiscina === null || !noCost ? undefined : b.ratioToPiscina >= 20);
    add(sec, 'ringbus ÷ inline EventEmitter', b.ratioToInline === null ? 'n/a (no max-rate phase)' : `${fix(b.ratioToInline, 3)}×`);
  }
  if (r.efficiency) {
    const e = r.efficiency;
    add('CPU-heavy handler', `efficiency (${e.costUs} µs × ${e.threads} threads)`,
      `${fix(e.pct, 1)} % (${int(e.achievedRate)} of ideal ${int(e.idealRate)} ev/s)`, '≥ 85 %', e.pct >= 85);
  }
  if (r.cpu) {
    for (const p of r.cpu.points) {
      add('CPU per event (whole process, workers included)', `@ ${int(p.rate)}/s offered`,
        `${fix(p.cpuUsPerEvent, 2)} µs/event, ${fix(p.cpuPctOfCore, 1)} % of one core (achieved ${int(p.achieved)}/s)`);
    }
    if (r.cpu.fit) {
      const f = r.cpu.fit;
      add('CPU per event (whole process, workers included)', 'linear fit: CPU % = a + b × rate',
        `b = ${fix(f.usPerEvent, 2)} µs/event, a = ${fix(f.interceptPct, 1)} % of a core, R² ${fix(f.r2, 3)}`,
        'linear (R² ≥ 0.95)', r.cpu.points.length >= 3 ? f.r2 >= 0.95 : undefined);
    }
  }
  if (r.chaos.enabled) {
    const c = r.chaos;
    add('chaos (sustained phase)', 'injected', `failure ${r.config.failureRate}, crash ${r.config.crashRate}, timeout ${r.config.timeoutRate} (handlerTimeoutMs ${r.config.handlerTimeoutMs})`);
    add('chaos (sustained phase)', 'outcome', `published ${int(c.published)}: processed ${int(c.processed)}, dead-lettered ${int(c.deadLettered)}, ` +
      `dropped ${int(c.dropped)}, abandoned ${int(c.abandoned)}; failed ${int(c.failed)}, retried ${int(c.retried)}`);
    add('chaos (sustained phase)', 'accounting invariant', c.pass ? 'PASS' : `FAIL: ${c.failures.join('; ')}`,
      'processed+dead+dropped+abandoned = published; failed = retried+dead', c.pass);
  }
  const bad = r.accounting.filter((a) => !a.pass);
  add('accounting', `stats() of every bus (${r.accounting.length})`, bad.length === 0 ? 'PASS' : `FAIL: ${bad.map((a) => `${a.bus}: ${a.failures.join(', ')}`).join('; ')}`,
    'invariant holds', bad.length === 0);
  if (r.errorLogs > 0) add('accounting', 'error logs from the bus', `${r.errorLogs} (the first ones are on stderr)`);
  return rows;
}

/** The summary as a plain-text table. */
export function summaryText(r: BenchResult): string {
  const rows = summaryRows(r);
  const c = r.config;
  const head =
    `ringbus sustained-load benchmark: ResilientMessageBus (retry, circuit breaker, dead letters, handler timeout), ` +
    `${c.threads} threads, ${c.payload}, handler ${c.handlerCostUs > 0 ? `${c.handlerCostUs} µs CPU` : 'no-op'}\n` +
    `${r.meta.node} on ${r.meta.cores} cores (${r.meta.cpuModel}), load average ${r.meta.loadAvg.map((l) => fix(l, 2)).join(' ')} at start, ` +
    `${fix(r.meta.wallSeconds, 1)} s wall\n` +
    `command: ${r.meta.command}`;
  const w1 = Math.max(...rows.map((x) => x.metric.length), 6);
  const w2 = Math.min(100, Math.max(...rows.map((x) => x.value.length), 5));
  const lines: string[] = [head];
  let section = '';
  for (const row of rows) {
    if (row.section !== section) {
      section = row.section;
      lines.push('', `── ${section} ${'─'.repeat(Math.max(2, w1 + w2 - section.length))}`);
    }
    const mark = row.ok === undefined ? '' : row.ok ? '  ✓' : '  ✗';
    const target = row.target ? `  [${row.target}]` : '';
    lines.push(`  ${row.metric.padEnd(w1)}  ${row.value.padEnd(w2)}${target}${mark}`);
  }
  lines.push('', r.ok ? 'result: OK (accounting holds)' : 'result: FAIL (see accounting above)');
  return lines.join('\n');
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** A self-contained HTML page: no external resource of any kind. */
export function renderReport(r: BenchResult): string {
  const rows = summaryRows(r);
  const table = rows.map((row, i) => {
    const first = i === 0 || rows[i - 1].section !== row.section;
    const mark = row.ok === undefined ? '' : row.ok ? '<span class="ok">✓</span>' : '<span class="bad">✗</span>';
    return `${first ? `<tr class="sec"><th colspan="4">${esc(row.section)}</th></tr>` : ''}` +
      `<tr><td>${esc(row.metric)}</td><td>${esc(row.value)}</td><td class="tgt">${esc(row.target)}</td><td>${mark}</td></tr>`;
  }).join('\n');
  // JSON inside a script element: '<' escaped so no '</script>' can end it early.
  const series = r.sustained?.series ?? { throughput: [], memory: [], latency: [] };
  const data = JSON.stringify({ sustained: series, offered: r.sustained?.offeredRate ?? null }).replace(/</g, '\\u003c');
  const c = r.config;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ringbus benchmark: ${esc(r.meta.startedAt)}</title>
<style>
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1100px; color: #1d2330; padding: 0 16px; }
  h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
  .meta { color: #5b6475; font-size: 13px; } code { font-size: 12.5px; background: #f1f3f7; padding: 1px 4px; border-radius: 3px; }
  table { border-collapse: collapse; width: 100%; font-size: 13px; }
  td, th { padding: 4px 8px; border-bottom: 1px solid #e4e7ee; text-align: left; vertical-align: top; }
  tr.sec th { background: #f1f3f7; font-weight: 600; padding-top: 8px; }
  td.tgt { color: #5b6475; } .ok { color: #17803d; font-weight: 700; } .bad { color: #c62828; font-weight: 700; }
  .verdict { font-weight: 600; margin: 12px 0; } .charts { display: grid; grid-template-columns: 1fr; gap: 18px; }
  figure { margin: 0; border: 1px solid #e4e7ee; border-radius: 6px; padding: 10px 12px; }
  figcaption { font-weight: 600; margin-bottom: 6px; } svg { width: 100%; height: auto; display: block; }
  svg text { font: 11px system-ui, sans-serif; fill: #5b6475; } .legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
  .legend i { display: inline-block; width: 14px; height: 3px; vertical-align: middle; margin-right: 5px; }
</style>
</head>
<body>
<h1>ringbus sustained-load benchmark</h1>
<div class="meta">${esc(r.meta.startedAt)} · ${esc(r.meta.node)} · ${r.meta.cores} cores (${esc(r.meta.cpuModel)}), load average ${r.meta.loadAvg.map((l) => fix(l, 2)).join(' ')} at start · ${fix(r.meta.wallSeconds, 1)} s wall<br>
<code>${esc(r.meta.command)}</code><br>
ResilientMessageBus with retry (${c.retry.maxRetries} retries, ${c.retry.initialDelayMs}–${c.retry.maxDelayMs} ms), circuit breaker
(opens at ${c.breaker.failureRateThreshold * 100}% of ≥ ${c.breaker.minimumCalls} calls in ${c.breaker.windowMs} ms), dead-letter queue, handler timeout ${c.handlerTimeoutMs} ms ·
${c.threads} threads · ${esc(c.payload)} · handler ${c.handlerCostUs > 0 ? `${c.handlerCostUs} µs of CPU` : 'no-op'} · queue capacity ${int(c.queueCapacity)}</div>
<p class="verdict">${r.ok ? '<span class="ok">OK</span>: the accounting invariant holds on every bus.' : '<span class="bad">FAIL</span>: the accounting invariant is broken (see below).'}</p>

<h2>Summary</h2>
<table>
<tr><th>metric</th><th>value</th><th>target</th><th></th></tr>
${table}
</table>

<h2>Sustained phase</h2>
<div class="charts">
<figure id="chart-throughput" data-drawn="false"><figcaption>Throughput over time (events/s, per second)</figcaption><div class="legend"></div><div class="plot"></div></figure>
<figure id="chart-latency" data-drawn="false"><figcaption>Latency percentile distribution (µs, log scale)</figcaption><div class="legend"></div><div class="plot"></div></figure>
<figure id="chart-rss" data-drawn="false"><figcaption>Memory over time (MB, every 250 ms)</figcaption><div class="legend"></div><div class="plot"></div></figure>
</div>
<noscript><p>The charts are drawn by the page's own inline script; enable JavaScript to see them.</p></noscript>

<script id="bench-data" type="application/json">${data}</script>
<script>
(function () {
  'use strict';
  var DATA = JSON.parse(document.getElementById('bench-data').textContent);
  var NS = 'http://www.w3.org/2000/svg';
  var W = 1000, H = 320, L = 70, R = 48, T = 14, B = 44;

  function el(name, attrs, parent, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function fmt(v) {
    var a = Math.abs(v);
    if (a >= 1e6) return +(v / 1e6).toPrecision(3) + 'M';
    if (a >= 1e3) return +(v / 1e3).toPrecision(3) + 'k';
    if (a >= 1 || a === 0) return String(+v.toPrecision(3));
    return String(+v.toPrecision(2));
  }
  function niceTicks(lo, hi, n) {
    if (!(hi > lo)) { hi = lo + 1; }
    var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n)));
    var err = (hi - lo) / n / step;
    if (err >= 7.5) step *= 10; else if (err >= 3.5) step *= 5; else if (err >= 1.5) step *= 2;
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }
  /**
   * series: [{ name, color, points: [[x, y], ...] }]
   * opts: { xLabel, yLabel, yLog, xTicks: [[x, label]], xMin, xMax, yMin }
   */
  function chart(id, series, opts) {
    var fig = document.getElementById(id);
    var legend = fig.querySelector('.legend');
    var plot = fig.querySelector('.plot');
    var svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': fig.querySelector('figcaption').textContent });
    plot.appendChild(svg);
    var pts = [];
    series.forEach(function (s) { s.points.forEach(function (p) { if (isFinite(p[1]) && (!opts.yLog || p[1] > 0)) pts.push(p); }); });
    if (pts.length === 0) {
      el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, svg, 'no data');
      fig.setAttribute('data-drawn', 'true');
      return;
    }
    var xs = pts.map(function (p) { return p[0]; }), ys = pts.map(function (p) { return p[1]; });
    var x0 = opts.xMin !== undefined ? opts.xMin : Math.min.apply(null, xs);
    var x1 = opts.xMax !== undefined ? opts.xMax : Math.max.apply(null, xs);
    if (!(x1 > x0)) x1 = x0 + 1;
    var yLo, yHi, yTicks;
    if (opts.yLog) {
      yLo = Math.floor(Math.log10(Math.min.apply(null, ys)));
      yHi = Math.ceil(Math.log10(Math.max.apply(null, ys)));
      if (yHi <= yLo) yHi = yLo + 1;
      yTicks = [];
      for (var d = yLo; d <= yHi; d++) yTicks.push(d);
    } else {
      yLo = opts.yMin !== undefined ? opts.yMin : Math.min(0, Math.min.apply(null, ys));
      yHi = Math.max.apply(null, ys) * 1.08;
      if (!(yHi > yLo)) yHi = yLo + 1;
      yTicks = niceTicks(yLo, yHi, 6);
      yHi = Math.max(yHi, yTicks[yTicks.length - 1]);
    }
    function X(v) { return L + (v - x0) / (x1 - x0) * (W - L - R); }
    function Y(v) { var u = opts.yLog ? Math.log10(v) : v; return T + (1 - (u - yLo) / (yHi - yLo)) * (H - T - B); }
    var grid = el('g', {}, svg);
    yTicks.forEach(function (t) {
      var y = opts.yLog ? T + (1 - (t - yLo) / (yHi - yLo)) * (H - T - B) : Y(t);
      el('line', { x1: L, x2: W - R, y1: y, y2: y, stroke: '#e4e7ee' }, grid);
      el('text', { x: L - 6, y: y + 4, 'text-anchor': 'end' }, grid, fmt(opts.yLog ? Math.pow(10, t) : t));
    });
    var xTicks = opts.xTicks || niceTicks(x0, x1, 10).map(function (v) { return [v, fmt(v)]; });
    xTicks.forEach(function (t) {
      if (t[0] < x0 - 1e-9 || t[0] > x1 + 1e-9) return;
      el('line', { x1: X(t[0]), x2: X(t[0]), y1: T, y2: H - B, stroke: '#f0f2f6' }, grid);
      el('text', { x: X(t[0]), y: H - B + 16, 'text-anchor': 'middle' }, grid, t[1]);
    });
    el('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: '#9aa3b5' }, svg);
    el('line', { x1: L, x2: L, y1: T, y2: H - B, stroke: '#9aa3b5' }, svg);
    el('text', { x: (L + W - R) / 2, y: H - 6, 'text-anchor': 'middle' }, svg, opts.xLabel);
    el('text', { x: 14, y: (T + H - B) / 2, 'text-anchor': 'middle', transform: 'rotate(-90 14 ' + (T + H - B) / 2 + ')' }, svg, opts.yLabel);
    series.forEach(function (s) {
      var good = s.points.filter(function (p) { return isFinite(p[1]) && (!opts.yLog || p[1] > 0); });
      if (good.length === 0) return;
      var d = good.map(function (p, i) { return (i ? 'L' : 'M') + X(p[0]).toFixed(1) + ' ' + Y(p[1]).toFixed(1); }).join(' ');
      el('path', { d: d, fill: 'none', stroke: s.color, 'stroke-width': 2, 'stroke-dasharray': s.dash || '' , 'class': 'series' }, svg);
      if (good.length <= 60) good.forEach(function (p) { el('circle', { cx: X(p[0]), cy: Y(p[1]), r: 2.5, fill: s.color }, svg); });
      var item = document.createElement('span');
      var sw = document.createElement('i');
      sw.style.background = s.color;
      item.appendChild(sw);
      item.appendChild(document.createTextNode(s.name));
      legend.appendChild(item);
    });
    fig.setAttribute('data-drawn', 'true');
  }

  var s = DATA.sustained;
  var thr = [
    { name: 'published (accepted by publish())', color: '#2b6cb0', points: s.throughput.map(function (p) { return [p.t, p.published]; }) },
    { name: 'processed', color: '#dd6b20', points: s.throughput.map(function (p) { return [p.t, p.processed]; }) }
  ];
  if (DATA.offered) thr.push({ name: 'offered', color: '#718096', dash: '6 4', points: s.throughput.map(function (p) { return [p.t, DATA.offered]; }) });
  chart('chart-throughput', thr, { xLabel: 'seconds', yLabel: 'events/s', xMin: 0 });

  // Percentiles on the classic HDR axis: x = log10(1 / (1 - p)), so 90%, 99%, 99.9% ... are evenly spaced.
  function px(p) { return Math.log10(1 / (1 - Math.min(p, 99.9999) / 100)); }
  var pct = [[0, '0%'], [px(50), '50%'], [1, '90%'], [2, '99%'], [3, '99.9%'], [4, '99.99%'], [5, '99.999%']];
  var latPts = function (key) { return s.latency.map(function (p) { return [px(p.percentile), p[key]]; }); };
  var maxX = s.latency.length ? px(s.latency[s.latency.length - 1].percentile) : 5;
  chart('chart-latency', [
    { name: 'publish() call', color: '#2b6cb0', points: latPts('publishUs') },
    { name: 'send lag vs schedule', color: '#805ad5', points: latPts('sendLagUs') },
    { name: 'end-to-end (CO-corrected)', color: '#dd6b20', points: latPts('endToEndUs') },
    { name: 'end-to-end (raw)', color: '#38a169', dash: '6 4', points: latPts('endToEndRawUs') }
  ], { xLabel: 'percentile', yLabel: 'µs', yLog: true, xTicks: pct.filter(function (t) { return t[0] <= maxX + 1e-9; }), xMin: 0, xMax: maxX });

  chart('chart-rss', [
    { name: 'RSS (whole process, workers included)', color: '#c53030', points: s.memory.map(function (p) { return [p.t, p.rssMb]; }) },
    { name: 'main heap used', color: '#3182ce', points: s.memory.map(function (p) { return [p.t, p.heapMb]; }) }
  ], { xLabel: 'seconds', yLabel: 'MB', xMin: 0, yMin: 0 });
})();
</script>
</body>
</html>
`;
}
