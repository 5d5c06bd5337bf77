/**
 * The summary of a `ringbus bench` run, from its BenchResult
 * (bench/report_types.ts): one list of rows, each with its target and ✓/✗,
 * printed as a text table that fits 120 columns, and a self-contained HTML
 * report (no network: the result inline as JSON, the charts drawn as inline
 * SVG by bench/report_charts.ts's drawCharts, inlined as source text).
 */
import { wrap } from './bench_flags.js';
import { drawCharts } from './report_charts.js';
import type { BenchResult, MaxRateMode, Percentiles } from './report_types.js';

export type { AccountingCheck, BenchResult, CpuPoint, LatencyPoint, MaxRateMode, Percentiles, Spread } from './report_types.js';

/** Every printed line fits this many columns. */
export const COLUMNS = 120;

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
/** A rate in three or four characters, for lists of rounds: 553k, 1.03M. */
const roundText = (n: number): string => (n >= 1e6 ? `${fix(n / 1e6, 2)}M` : n >= 1e3 ? `${fix(n / 1e3, 0)}k` : int(n));
const lat = (p: Percentiles, unit: string, d: number): string =>
  `p50 ${fix(p.p50, d)}  p95 ${fix(p.p95, d)}  p99 ${fix(p.p99, d)}  p99.9 ${fix(p.p999, d)}  max ${fix(p.max, d)} ${unit}`;
const signed = (n: number, d: number): string => `${n >= 0 ? '+' : ''}${fix(n, d)}`;

/** Targets of the issue-11 reference configuration (no-op handler, ~100 B payload). */
export const TARGETS = { json: 700_000, binary: 3_000_000, naturalToTuned: 0.85, piscina: 20, idlePct: 0.5, lowRatePct: 2 } as const;
/** Targets of `--transport jetstream`: end-to-end events/s with the first consumer count, and that ÷ per-event messages. */
export const JETSTREAM_TARGETS = { rate: 150_000, perEventRatio: 5 } as const;

const MODE_NAMES: Record<MaxRateMode['key'], (m: MaxRateMode) => string> = {
  defaults: () => 'defaults, natural loop',
  metricsOff: () => 'defaults + metrics off',
  tuned: (m) => `TUNED: ${m.options}, chunked`,
  binary: () => 'binary, defaults, natural loop',
};

/** The rows of the summary table: one source for the text table and the HTML one. */
export function summaryRows(r: BenchResult): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const add = (section: string, metric: string, value: string, target = '', ok?: boolean): void => {
    rows.push({ section, metric, value, target, ok });
  };
  const c = r.config;
  const noCost = c.handlerCostUs === 0;
  const reference = noCost && c.payloadBytes === 100;
  const s = r.sustained;
  if (s) {
    const fixed = s.offeredRate !== null;
    const sec = `sustained @ ${fixed ? `${int(s.offeredRate!)}/s` : 'max (natural loop)'}: ${fix(s.seconds, 1)} s after ${c.warmup} s warm-up`;
    add(sec, 'achieved rate', `${int(s.achievedRate)} ev/s (${int(s.accepted)} accepted, ${int(s.rejected)} rejected)`,
      fixed ? `≥ ${int(0.98 * s.offeredRate!)}` : '', fixed ? s.achievedRate >= 0.98 * s.offeredRate! : undefined);
    if (fixed) {
      add(sec, 'kept up', `${s.keptUp ? 'yes' : 'NO'}; queue drained ${s.drainMs === null ? 'NOT within 1 s' : `${fix(s.drainMs, 0)} ms`} ` +
        'after the last publish', 'rate ≥ 98%, drained ≤ 1 s', s.keptUp ?? undefined);
    }
    const at10k = fixed && s.offeredRate! <= 10_000;
    add(sec, `publish() µs${fixed ? ' (CO-aware)' : ''}`, lat(s.publishUs, 'µs', 1), 'p99 < 50 µs at ≤ 10k/s', at10k ? s.publishUs.p99 < 50 : undefined);
    if (fixed) add(sec, 'publish() µs (raw)', lat(s.publishRawUs, 'µs', 1));
    if (fixed) add(sec, 'send lag µs (vs schedule)', lat(s.sendLagUs, 'µs', 0));
    // An empty histogram would pass any latency target: it fails instead, and says so.
    const e2eEmpty = s.endToEndMs.count === 0;
    add(sec, `end-to-end ms${fixed ? ' (CO-corrected)' : ''}`, e2eEmpty ? 'no samples: the bus\'s end-to-end histogram is empty'
      : lat(s.endToEndMs, 'ms', 2), r.chaos.enabled ? 'none under chaos: retries wait their backoff' : 'p99 < 5 ms at ≤ 10k/s',
      at10k && !r.chaos.enabled ? !e2eEmpty && s.endToEndMs.p99 < 5 : undefined);
    if (fixed) add(sec, 'end-to-end ms (raw)', lat(s.endToEndRawMs, 'ms', 2));
    add(sec, 'main event-loop delay ms', lat(s.eventLoopDelayMs, 'ms', 2));
    add(sec, 'metrics.snapshot() call', `${fix(s.metricsSnapshotMs, 1)} ms of the main thread (median of 3, after the phase)`);
    add(sec, 'memory', `peak RSS ${fix(s.memory.peakRssMb, 0)} MB, peak heap ${fix(s.memory.peakHeapMb, 0)} MB; main live heap ` +
      `(after a full GC) ${fix(s.memory.liveHeapStartMb, 1)} MB before → ${fix(s.memory.liveHeapEndMb, 1)} MB after`);
    const m = s.memory;
    add(sec, 'RSS slope after warm-up', m.rssSlopeMbPerMin === null ? 'n/a (< 30 s)'
      : `${signed(m.rssSlopeMbPerMin, 2)} MB/min (heap ${signed(m.heapSlopeMbPerMin ?? 0, 2)} MB/min, ${m.samples} samples ` +
        `after ${fix(m.warmupSeconds, 1)} s)`,
    '|slope| < 1 MB/min, runs ≥ 30 s', m.rssSlopeMbPerMin === null ? undefined : Math.abs(m.rssSlopeMbPerMin) < 1);
  }

  const mx = r.maxRate;
  if (mx) {
    const sec = `max rate: deliveries/s, ${mx.rounds} rounds × ${fix(mx.roundSeconds, 2)} s per mode, a fresh bus each round`;
    for (const mode of mx.modes) {
      const sp = mode.spread;
      let target = '';
      let ok: boolean | undefined;
      if (reference && (mode.key === 'defaults' || mode.key === 'binary')) {
        const goal = mode.binary ? TARGETS.binary : TARGETS.json;
        target = `≥ ${goal >= 1e6 ? `${goal / 1e6}M` : `${goal / 1e3}k`}/s (${mode.binary ? 'binary' : 'JSON'}, no-op)`;
        ok = sp.median >= goal;
      }
      add(sec, MODE_NAMES[mode.key](mode), `median ${rateText(sp.median)} (min ${rateText(sp.min)}, max ${rateText(sp.max)}); ` +
        `rounds ${mode.rates.map(roundText).join(' ')}`, target, ok);
    }
    if (mx.naturalToTuned !== null) {
      add(sec, 'defaults ÷ tuned (medians)', `${fix(mx.naturalToTuned, 2)}×`, `≥ ${TARGETS.naturalToTuned}×`,
        mx.naturalToTuned >= TARGETS.naturalToTuned);
    }
    if (mx.metricsCostPct !== null) add(sec, 'metrics cost (medians)', `${fix(mx.metricsCostPct, 1)} %`, '< 5 %', mx.metricsCostPct < 5);
  }

  if (r.baselines) {
    const b = r.baselines;
    const sec = 'baselines: the same handler and payload without ringbus';
    add(sec, `Piscina, ${int(b.piscina.inFlight)} in flight`, `${int(b.piscina.rate)} ev/s (${int(b.piscina.events)} events; its defaults: ` +
      `threads ${b.piscina.minThreads}–${b.piscina.maxThreads})`);
    add(sec, 'inline EventEmitter (main)', `${int(b.inline.rate)} ev/s (${int(b.inline.events)} events)`);
    add(sec, 'ringbus defaults ÷ Piscina', b.ratioToPiscina === null ? 'n/a (no max-rate phase)' : `${fix(b.ratioToPiscina, 1)}×`,
      noCost ? `≥ ${TARGETS.piscina}× (no-op handler)` : '', b.ratioToPiscina === null || !noCost ? undefined : b.ratioToPiscina >= TARGETS.piscina);
    add(sec, 'ringbus defaults ÷ inline', b.ratioToInline === null ? 'n/a (no max-rate phase)' : `${fix(b.ratioToInline, 3)}×`);
  }
  if (r.jetstream) jetstreamRows(r, add, reference);
  if (r.efficiency) {
    const e = r.efficiency;
    add('CPU-heavy handler', `efficiency (${e.costUs} µs × ${e.threads} thr)`,
      `${fix(e.pct, 1)} % (${int(e.achievedRate)} of ideal ${int(e.idealRate)} ev/s)`, '≥ 85 %', e.pct >= 85);
  }
  if (r.cpu) {
    const sec = 'CPU per event: whole process, workers included';
    for (const p of r.cpu.points) {
      add(sec, `@ ${int(p.rate)}/s offered`, `${fix(p.cpuUsPerEvent, 2)} µs/event, ${fix(p.cpuPctOfCore, 1)} % of one core ` +
        `(achieved ${int(p.achieved)}/s)`);
    }
    if (r.cpu.fit) {
      const f = r.cpu.fit;
      add(sec, 'fit: CPU % = a + b × rate', `b = ${fix(f.usPerEvent, 2)} µs/event, a = ${fix(f.interceptPct, 1)} % of a core, ` +
        `R² ${fix(f.r2, 3)}`, 'linear (R² ≥ 0.95)', r.cpu.points.length >= 3 ? f.r2 >= 0.95 : undefined);
    }
  }
  if (r.idle) {
    const { idle, lowRate } = r.idle;
    const sec = 'idle cost: a started bus, whole process';
    add(sec, 'idle', `${fix(idle.cpuPctOfCore, 2)} % of one core over ${fix(idle.seconds, 1)} s`, `< ${TARGETS.idlePct} %`,
      idle.cpuPctOfCore < TARGETS.idlePct);
    add(sec, `@ ${int(lowRate.rate)}/s`, `${fix(lowRate.cpuPctOfCore, 2)} % of one core (${fix(lowRate.cpuUsPerEvent, 0)} µs of CPU ` +
      `per event, achieved ${fix(lowRate.achieved, 1)}/s)`,
    lowRate.rate <= 100 && noCost ? `< ${TARGETS.lowRatePct} %` : '',
    lowRate.rate <= 100 && noCost ? lowRate.cpuPctOfCore < TARGETS.lowRatePct : undefined);
  }
  if (r.chaos.enabled) {
    const ch = r.chaos;
    const sec = 'chaos (sustained phase)';
    add(sec, 'injected', `failure ${c.failureRate}, crash ${c.crashRate}, timeout ${c.timeoutRate} (handlerTimeoutMs ${c.handlerTimeoutMs})`);
    add(sec, 'outcome', `published ${int(ch.published)}: processed ${int(ch.processed)}, dead-lettered ${int(ch.deadLettered)}, ` +
      `dropped ${int(ch.dropped)}, abandoned ${int(ch.abandoned)}; failed ${int(ch.failed)}, retried ${int(ch.retried)}`);
    add(sec, 'accounting invariant', ch.pass ? 'PASS' : `FAIL: ${ch.failures.join('; ')}`,
      'processed+dead+dropped+abandoned = published; failed = retried+dead', ch.pass);
  }
  const bad = r.accounting.filter((a) => !a.pass);
  add('accounting', `stats() of every bus (${r.accounting.length})`,
    bad.length === 0 ? 'PASS' : `FAIL: ${bad.map((a) => `${a.bus}: ${a.failures.join(', ')}`).join('; ')}`, 'invariant holds', bad.length === 0);
  if (r.errorLogs > 0) add('accounting', 'error logs from the bus', `${r.errorLogs} (the first ones are on stderr)`);
  return rows;
}

const plural = (n: number, what: string): string => `${int(n)} ${what}${n === 1 ? '' : 's'}`;
const consumersText = (n: number): string => plural(n, 'consumer');

/** The JetStream phase's rows (`--transport jetstream`): targets judged on the reference configuration only. */
function jetstreamRows(r: BenchResult, add: (section: string, metric: string, value: string, target?: string, ok?: boolean) => void,
  reference: boolean): void {
  const j = r.jetstream!;
  const counts = j.consumerCounts;
  const sec = `jetstream: ${counts.join(' and ')} consumer process${counts.length === 1 && counts[0] === 1 ? '' : 'es'} through NATS ` +
    `${j.serverVersion}, default options`;
  j.throughput.forEach((t, k) => {
    const first = k === 0;
    const total = t.shares.reduce((acc, round) => round.map((x, i) => (acc[i] ?? 0) + x), [] as number[]);
    const sum = total.reduce((a, b) => a + b, 0);
    const split = t.consumers > 1 && sum > 0 ? `; split ${total.map((x) => `${fix((100 * x) / sum, 0)}%`).join('/')}` : '';
    add(sec, `events/s end to end, ${consumersText(t.consumers)}`, `median ${rateText(t.spread.median)} (min ${rateText(t.spread.min)}, ` +
      `max ${rateText(t.spread.max)}); rounds ${t.rates.map(roundText).join(' ')} of ${int(t.eventsPerRound)} events${split}`,
    first && reference ? `≥ ${JETSTREAM_TARGETS.rate / 1e3}k/s (no-op, ~100 B)` : '', first && reference ? t.spread.median >= JETSTREAM_TARGETS.rate : undefined);
    add(sec, `stored/s, ${consumersText(t.consumers)}`, `median ${rateText(t.storeSpread.median)} (min ${rateText(t.storeSpread.min)}, ` +
      `max ${rateText(t.storeSpread.max)}): first publish → the server stored the last event`);
    const cpu = t.cpuUsPerEvent;
    add(sec, `CPU µs/event, ${consumersText(t.consumers)}`, `producer process ${fix(cpu.producer.median, 1)} (${fix(cpu.producer.min, 1)}–` +
      `${fix(cpu.producer.max, 1)}), consumer processes together ${fix(cpu.consumers.median, 1)} (${fix(cpu.consumers.min, 1)}–` +
      `${fix(cpu.consumers.max, 1)}); the NATS server's not counted`);
  });
  for (const l of j.latency) {
    const n = consumersText(l.consumers);
    add(sec, `e2e ms @ ${roundText(l.offeredRate)}/s, ${n}`, l.endToEndMs.count === 0 ? 'no samples: the consumers\' histograms are empty'
      : `${lat(l.endToEndMs, 'ms', 2)} (publish → settled in the consumer, ${int(l.endToEndMs.count)} events)`);
    add(sec, `producer @ ${roundText(l.offeredRate)}/s, ${n}`, `achieved ${int(l.achievedRate)}/s; publish() p99 ${fix(l.publishUs.p99, 1)} µs ` +
      `(CO-aware); send lag vs schedule p50 ${fix(l.sendLagUs.p50, 0)} µs, p99 ${fix(l.sendLagUs.p99, 0)} µs`);
  }
  const k = j.kill;
  if (k) {
    const ack = `ackWaitMs ${int(k.ackWaitMs)}${k.ackWaitIsDefault ? ' (the default)' : ` (this part only; the default is ${int(30_000)})`}`;
    const sec2 = (ms: number | null): string => (ms === null ? 'never' : `${fix(ms / 1000, 2)} s`);
    add(sec, 'SIGKILL 1 of 2 consumers', `the survivor had processed what the dead one held ${sec2(k.recoveredMs)} after the kill ` +
      `(first redelivery after ${sec2(k.firstRedeliveryMs)}); ${ack}; at ${int(k.rate)}/s; the dead one had processed ` +
      `${int(k.deadProcessed)} events, the survivor ${int(k.survivorProcessed)}; ${plural(k.unackedAtKill, 'envelope')} ` +
      `unacknowledged 250 ms after the kill, ${int(k.redeliveredEnvelopes)} redelivered; ${plural(k.duplicates, 'event')} ran twice`,
    '≈ ackWaitMs');
  }
  const b = j.baseline;
  if (b) {
    add(sec, 'per-event messages, js.publish', `median ${rateText(b.spread.median)} (min ${rateText(b.spread.min)}, ` +
      `max ${rateText(b.spread.max)}); rounds ${b.rates.map(roundText).join(' ')} of ${fix(b.seconds, 1)} s; one message per event, ` +
      `${int(b.inFlight)} awaited at once, ${b.msgId ? 'msgID each' : 'no msgID'}, publishing only (no consumer)` +
      `${b.interleaved ? `; each round right after a throughput round with ${consumersText(j.consumerCounts[0])}` : ''}`);
  }
  if (j.ratioToPerEvent !== null) {
    add(sec, 'ringbus ÷ per-event (medians)', `${fix(j.ratioToPerEvent, 1)}× (end to end with ${consumersText(j.consumerCounts[0])} ` +
      '÷ per-event publishing alone)', reference ? `≥ ${JETSTREAM_TARGETS.perEventRatio}×` : '',
    reference ? j.ratioToPerEvent >= JETSTREAM_TARGETS.perEventRatio : undefined);
  }
  add(sec, 'logged', `producer ${j.producerWarnings} warnings; consumer processes ${j.consumerWarnings} warnings, ${j.consumerErrors} errors; ` +
    `load average ${r.meta.loadAvg.map((l) => fix(l, 2)).join(' ')} at start, ${j.loadAvgEnd.map((l) => fix(l, 2)).join(' ')} at the end`);
}

/** Why the run is OK or FAIL, e.g. "all 12 targets met; accounting holds". */
function verdictDetail(r: BenchResult): string {
  const missed = r.targets.filter((t) => !t.pass);
  const n = `${r.targets.length} target${r.targets.length === 1 ? '' : 's'}`;
  if (r.ok) return `all ${n} met; accounting holds`;
  return `${missed.length} of ${n} missed: ${missed.map((t) => t.metric).join('; ')}`;
}

/** The closing line: OK only when every target is met and the accounting holds. */
export function verdict(r: BenchResult): string {
  return `result: ${r.ok ? 'OK' : 'FAIL'} (${verdictDetail(r)})`;
}

/** What was run, in lines of at most COLUMNS. */
function header(r: BenchResult): string[] {
  const c = r.config;
  const j = r.jetstream;
  if (j) {
    const d = j.transportDefaults;
    const kill = j.kill && !j.kill.ackWaitIsDefault ? ` (the kill part: ${j.kill.ackWaitMs}, labelled)` : '';
    return [
      ...wrap(`ringbus bench --transport jetstream: ${c.bus} at its default options in every process, transport ` +
        `jetstream({ servers, stream, subjectPrefix }): where only, a unique stream per part, deleted after. The transport's ` +
        `defaults: batchEvents ${d.batchEvents}, batchBytes ${d.batchBytes}, publishWindow ${d.publishWindow}, maxAckPending ` +
        `${d.maxAckPending}, ackWaitMs ${d.ackWaitMs}${kill}, storage ${d.storage}, replicas ${d.replicas}. Producer: this process, ` +
        `the natural loop; consumers: separate processes, each with the no-op worker handler` +
        `${c.handlerCostUs > 0 ? ` (${c.handlerCostUs} µs of CPU)` : ''}; ${c.payload}; NATS at ${j.servers}.`, COLUMNS),
      ...wrap(`${r.meta.node} on ${r.meta.cores} cores (${r.meta.cpuModel}), load average ${r.meta.loadAvg.map((l) => fix(l, 2)).join(' ')} ` +
        `at start, ${fix(r.meta.wallSeconds, 1)} s wall; producer, consumers and the NATS server share the machine`, COLUMNS),
      ...wrap(`command: ${r.meta.command}`, COLUMNS),
    ];
  }
  const pool = c.threads === null ? `the library's default (maxThreads ${c.defaultMaxThreads} on this machine)` : `${c.threads} threads (--threads)`;
  return [
    ...wrap(`ringbus bench: ${c.bus} at its default options (overrides: ${c.overrides}), ${c.payload}, handler ` +
      `${c.handlerCostUs > 0 ? `${c.handlerCostUs} µs of CPU` : 'no-op'}; pool: ${pool}. Only the TUNED mode is tuned.`, COLUMNS),
    ...wrap(`${r.meta.node} on ${r.meta.cores} cores (${r.meta.cpuModel}), load average ${r.meta.loadAvg.map((l) => fix(l, 2)).join(' ')} ` +
      `at start, ${fix(r.meta.wallSeconds, 1)} s wall`, COLUMNS),
    ...wrap(`command: ${r.meta.command}`, COLUMNS),
  ];
}

/** The summary as a plain-text table, every line at most COLUMNS wide: ✓/✗ first, the target in brackets. */
export function summaryText(r: BenchResult): string {
  const rows = summaryRows(r);
  const w1 = Math.min(32, Math.max(...rows.map((x) => x.metric.length), 6));
  const indent = ' '.repeat(2 + w1 + 2);
  const width = COLUMNS - indent.length;
  const lines: string[] = header(r);
  let section = '';
  for (const row of rows) {
    if (row.section !== section) {
      section = row.section;
      const title = `── ${section} `;
      lines.push('', title.length < COLUMNS ? title.padEnd(COLUMNS, '─') : title);
    }
    const mark = row.ok === undefined ? ' ' : row.ok ? '✓' : '✗';
    const body = wrap(row.value, width);
    if (row.target) {
      const target = `[${row.target}]`;
      const last = body.length - 1;
      if ([...body[last]].length + 2 + [...target].length <= width) body[last] = `${body[last]}  ${target}`;
      else body.push(...wrap(target, width));
    }
    const metric = row.metric.length > w1 ? `${row.metric.slice(0, w1 - 1)}…` : row.metric.padEnd(w1);
    lines.push(`${mark} ${metric}  ${body[0]}`, ...body.slice(1).map((l) => `${indent}${l}`));
  }
  lines.push('', ...wrap(verdict(r), COLUMNS));
  return lines.join('\n');
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** The page's stylesheet. */
const STYLE = `
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
  .legend i { display: inline-block; width: 14px; height: 3px; vertical-align: middle; margin-right: 5px; }`;

const figure = (id: string, caption: string): string =>
  `<figure id="${id}" data-drawn="false"><figcaption>${esc(caption)}</figcaption><div class="legend"></div><div class="plot"></div></figure>`;

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
  const data = JSON.stringify(r).replace(/</g, '\\u003c');
  const c = r.config;
  const idle = r.idle ? `idle, and ${int(r.idle.lowRate.rate)}/s, ` : '';
  // --transport jetstream runs none of the in-process phases: its figures are all in the summary table.
  const charts = r.jetstream ? '' : `<h2>Sustained phase</h2>
<div class="charts">
${figure('chart-throughput', 'Throughput over time (events/s, per second)')}
${figure('chart-latency', 'Latency percentile distribution (µs, log scale)')}
${figure('chart-rss', 'Memory over time (MB, every 250 ms)')}
</div>

<h2>Max rate, baselines and CPU</h2>
<div class="charts">
${figure('chart-maxrate', 'Max rate: events/s delivered in each round, per mode (a fresh bus per round)')}
${figure('chart-baselines', 'ringbus against Piscina (its defaults) and an inline EventEmitter (events/s, log scale)')}
${figure('chart-cpu', `CPU against rate: ${idle}the CPU phase's rates (% of one core, whole process)`)}
</div>
`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ringbus benchmark: ${esc(r.meta.startedAt)}</title>
<style>${STYLE}
</style>
</head>
<body>
<h1>ringbus benchmark</h1>
<div class="meta">${esc(r.meta.startedAt)} · ${esc(r.meta.node)} · ${r.meta.cores} cores (${esc(r.meta.cpuModel)}), load average
${r.meta.loadAvg.map((l) => fix(l, 2)).join(' ')} at start · ${fix(r.meta.wallSeconds, 1)} s wall<br>
<code>${esc(r.meta.command)}</code><br>
${c.bus} at its default options (overrides: ${esc(c.overrides)}): retry (${c.retry.maxRetries} retries,
${c.retry.initialDelayMs}–${c.retry.maxDelayMs} ms), circuit breaker (opens at ${c.breaker.failureRateThreshold * 100}% of
≥ ${c.breaker.minimumCalls} calls in ${c.breaker.windowMs} ms), dead-letter queue, handler timeout ${c.handlerTimeoutMs} ms,
pool ${c.threads === null ? `default (maxThreads ${c.defaultMaxThreads})` : `${c.threads} threads`} · ${esc(c.payload)} ·
handler ${c.handlerCostUs > 0 ? `${c.handlerCostUs} µs of CPU` : 'no-op'} · queue capacity ${int(c.queueCapacity)}.
${r.jetstream ? `Transport: jetstream({ servers, stream, subjectPrefix }), the transport's defaults otherwise (NATS at
${esc(r.jetstream.servers)}); consumers in separate processes.` : 'Only the mode labelled TUNED is tuned.'}</div>
<p class="verdict">${r.ok ? '<span class="ok">OK</span>' : '<span class="bad">FAIL</span>'}: ${esc(verdictDetail(r))}</p>

<h2>Summary</h2>
<table>
<tr><th>metric</th><th>value</th><th>target</th><th></th></tr>
${table}
</table>

${charts}<noscript><p>The charts are drawn by the page's own inline script; enable JavaScript to see them.</p></noscript>

<script id="bench-data" type="application/json">${data}</script>
<script>
// bench/report_charts.ts's drawCharts, as its source text. __name: a helper tsx's compiler inserts, a no-op here.
var __name = function (f) { return f; };
(${drawCharts.toString()})(JSON.parse(document.getElementById('bench-data').textContent), document);
</script>
</body>
</html>
`;
}
