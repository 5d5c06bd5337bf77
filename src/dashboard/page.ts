/**
 * The dashboard's one page: a complete HTML document with inline CSS and
 * inline JS (page_script.ts), no build step and nothing loaded from outside.
 * It reads only what state.ts describes, from relative URLs (`events`,
 * `api/history`, `api/state`, `api/dead-letters…`), so it works wherever the
 * server mounts it as long as the page's own URL ends with a slash.
 *
 * Every value from the server is untrusted: the script builds the DOM with
 * createElement + textContent (never innerHTML), and the document carries a
 * restrictive Content-Security-Policy of its own.
 *
 * Stable hooks for the end-to-end tests: #live, #throughput svg, #latency svg
 * (polyline[data-series][data-points]), #queue-size, #circuits tbody
 * tr[data-handler][data-topic] td.state, #dlq-rows tbody tr[data-id],
 * #dlq-detail, #dlq-payload, #token, #replay-one, #delete-one, #replay-all,
 * #action-status, #dlq-filter-topic, #dlq-filter-handler, #dlq-filter-error,
 * #dlq-refresh.
 */
import { PAGE_SCRIPT } from './page_script.js';
import { PAGE_SCRIPT_DEAD_LETTERS } from './page_script_dead_letters.js';

const CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:";

const STYLE = `
:root {
  --bg: #f3f4f6; --card: #ffffff; --ink: #111827; --muted: #5b6472; --line: #d9dde3;
  --accent: #2563eb; --ok: #15803d; --warn: #b45309; --bad: #b91c1c;
  --warn-bg: #fef3c7; --bad-bg: #fee2e2; --ok-bg: #dcfce7;
}
* { box-sizing: border-box; }
html, body { margin: 0; background: var(--bg); color: var(--ink); }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; }
header { display: flex; align-items: center; gap: 12px; padding: 10px 20px; background: #111827; color: #f9fafb; }
header h1 { margin: 0; font-size: 18px; font-weight: 650; letter-spacing: .02em; }
header .spacer { flex: 1; }
header .meta { color: #cbd5e1; font-size: 13px; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px; font-weight: 600; }
#live.live { background: var(--ok-bg); color: var(--ok); }
#live.disconnected { background: var(--bad-bg); color: var(--bad); }
main { display: grid; grid-template-columns: repeat(12, minmax(0, 1fr)); gap: 12px; padding: 12px 20px 24px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 0; }
.card h2 { margin: 0 0 8px; font-size: 13px; font-weight: 650; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
.card h2 .count { text-transform: none; letter-spacing: 0; font-weight: 500; }
.w6 { grid-column: span 6; } .w4 { grid-column: span 4; } .w12 { grid-column: span 12; }
@media (max-width: 900px) { .w6, .w4 { grid-column: span 12; } }
.chart svg { display: block; width: 100%; height: auto; }
.chart .axis { font-size: 11px; fill: var(--muted); }
.chart .grid { stroke: #e5e7eb; stroke-width: 1; }
.chart polyline { fill: none; stroke-width: 1.6; stroke-linejoin: round; vector-effect: non-scaling-stroke; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 12px; font-size: 12px; color: var(--muted); margin-bottom: 4px; }
.legend i { display: inline-block; width: 12px; height: 3px; margin-right: 5px; vertical-align: middle; border-radius: 2px; }
.legend b { color: var(--ink); font-weight: 600; margin-left: 4px; font-variant-numeric: tabular-nums; }
dl.kv { display: grid; grid-template-columns: auto 1fr; gap: 3px 12px; margin: 0; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.bar { position: relative; height: 18px; background: #e5e7eb; border-radius: 4px; margin: 6px 0 4px; }
.bar .fill { position: absolute; left: 0; top: 0; bottom: 0; width: 0; background: var(--accent); border-radius: 4px; transition: width .3s; }
.bar.pressure .fill { background: var(--bad); }
.bar .mark { position: absolute; top: -3px; bottom: -3px; width: 2px; }
.bar .mark.high { background: var(--bad); } .bar .mark.low { background: var(--warn); }
.bar.small { height: 8px; margin: 2px 0 6px; }
.big { font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; }
.muted { color: var(--muted); }
.marks { display: flex; gap: 14px; font-size: 12px; color: var(--muted); margin-bottom: 8px; }
.marks i { display: inline-block; width: 2px; height: 10px; margin-right: 4px; vertical-align: middle; }
.on { color: var(--bad); font-weight: 600; } .off { color: var(--ok); font-weight: 600; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eceef1; vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; background: #f9fafb; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
td.empty { color: var(--muted); text-align: center; padding: 10px; }
tr.circuit-open td { background: var(--bad-bg); } tr.circuit-open td.state { color: var(--bad); font-weight: 700; }
tr.circuit-half_open td { background: var(--warn-bg); } tr.circuit-half_open td.state { color: var(--warn); font-weight: 700; }
td.transitions { font-size: 12px; color: var(--muted); }
.scroll { max-height: 320px; overflow: auto; }
#dlq-rows tbody tr { cursor: pointer; }
#dlq-rows tbody tr:hover td { background: #f1f5f9; }
#dlq-rows tbody tr.selected td { background: #dbeafe; }
table.fixed { table-layout: fixed; }
table.fixed td.cut { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.transitions { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.toolbar { display: flex; flex-wrap: wrap; align-items: end; gap: 8px 10px; margin-bottom: 8px; }
.toolbar label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 2px; }
input { font: inherit; padding: 4px 7px; border: 1px solid #b8bec8; border-radius: 5px; background: #fff; color: var(--ink); min-width: 140px; }
button { font: inherit; padding: 4px 12px; border: 1px solid #9aa3af; border-radius: 5px; background: #f9fafb; color: var(--ink); cursor: pointer; }
button:hover:not(:disabled) { background: #eef2f7; }
button.danger { border-color: #dc9a9a; color: var(--bad); }
button:disabled, input:disabled { opacity: .5; cursor: not-allowed; }
#action-status { font-size: 13px; min-height: 1.4em; }
#action-status:empty { min-height: 0; }
#action-status.ok { color: var(--ok); } #action-status.error { color: var(--bad); }
.note { font-size: 12px; color: var(--muted); }
.dlq-layout { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 12px; }
@media (max-width: 1000px) { .dlq-layout { grid-template-columns: minmax(0, 1fr); } }
#dlq-detail { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; background: #fbfcfd; min-width: 0; }
#dlq-detail h3 { margin: 0 0 6px; font-size: 13px; }
#dlq-detail h4 { margin: 10px 0 4px; font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .05em; }
pre { margin: 0; padding: 6px 8px; background: #f3f4f6; border-radius: 5px; font: 12px/1.45 ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 260px; overflow: auto; }
#dlq-detail .buttons { display: flex; gap: 8px; margin-top: 10px; }
`;

const BODY = `
<header>
  <h1>ringbus</h1>
  <span id="live" class="badge disconnected">disconnected</span>
  <span class="spacer"></span>
  <span class="meta">last update <span id="updated">never</span></span>
</header>
<main>
  <section class="card chart w6" id="throughput">
    <h2>Throughput <span class="count muted">events/s</span></h2>
    <div class="legend"></div>
    <svg viewBox="0 0 640 220" role="img" aria-label="throughput per second over time"></svg>
  </section>
  <section class="card chart w6" id="latency">
    <h2>Latency <span class="count muted">ms</span></h2>
    <div class="legend"></div>
    <svg viewBox="0 0 640 220" role="img" aria-label="latency percentiles over time"></svg>
  </section>

  <section class="card w4" id="queue">
    <h2>Queue</h2>
    <div><span class="big" id="queue-size">0</span> <span class="muted">/ <span id="queue-capacity">0</span></span>
      <span class="muted" style="float:right">backpressure <span id="queue-backpressure" class="off">off</span></span></div>
    <div class="bar" id="queue-bar"><div class="fill"></div><div class="mark low"></div><div class="mark high"></div></div>
    <div class="marks"><span><i style="background:var(--warn)"></i>low <span id="queue-low">0</span></span><span><i style="background:var(--bad)"></i>high <span id="queue-high">0</span></span></div>
    <div id="lanes"></div>
  </section>
  <section class="card w4" id="pool">
    <h2>Pool</h2>
    <div><span class="big" id="pool-active">0</span> <span class="muted">/ <span id="pool-max">0</span> threads active</span></div>
    <div class="bar small" id="pool-bar"><div class="fill"></div></div>
    <dl class="kv">
      <dt>worker crashes</dt><dd id="pool-crashes">0</dd>
      <dt>handler timeouts</dt><dd id="pool-timeouts">0</dd>
      <dt>dead letters stored</dt><dd id="dlq-size">0</dd>
      <dt>sample interval</dt><dd id="sample-ms">–</dd>
    </dl>
  </section>
  <section class="card w4" id="totals">
    <h2>Totals</h2>
    <dl class="kv" id="totals-list"></dl>
  </section>

  <section class="card w6" id="handlers">
    <h2>Handlers</h2>
    <div class="scroll"><table class="fixed">
      <colgroup><col style="width:26%"><col style="width:14%"><col style="width:12%"><col style="width:12%"><col><col><col></colgroup>
      <thead><tr><th>Handler</th><th class="num">processed/s</th><th class="num">failed/s</th><th class="num">failure</th><th class="num">p50 ms</th><th class="num">p95 ms</th><th class="num">p99 ms</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
  <section class="card w6" id="circuits">
    <h2>Circuits</h2>
    <div class="scroll"><table class="fixed">
      <colgroup><col style="width:27%"><col style="width:25%"><col style="width:13%"><col style="width:35%"></colgroup>
      <thead><tr><th>Topic</th><th>Handler</th><th>State</th><th>Last transitions (newest first)</th><th></th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>

  <section class="card w12" id="transport" hidden>
    <h2>Transport</h2>
    <dl class="kv" id="transport-list"></dl>
  </section>
  <section class="card w12" id="cluster" hidden>
    <h2>Cluster <span class="sub" id="cluster-stream"></span></h2>
    <table id="cluster-processes"><thead><tr><th>Process</th><th>Host</th><th>pid</th><th class="num">published</th><th class="num">processed</th><th class="num">failed</th><th class="num">queue</th><th class="num">workers</th><th class="num">handlers</th><th>last heard</th></tr></thead><tbody></tbody></table>
    <table id="cluster-consumers"><thead><tr><th>Consumer</th><th>For</th><th class="num">pending</th><th class="num">ack pending</th><th class="num">redelivered</th></tr></thead><tbody></tbody></table>
    <p class="note" id="cluster-error" hidden></p>
  </section>

  <section class="card w12" id="dlq">
    <h2>Dead letters <span class="count muted" id="dlq-count"></span></h2>
    <div class="toolbar">
      <label>topic<input id="dlq-filter-topic" type="search" autocomplete="off" spellcheck="false"></label>
      <label>handler<input id="dlq-filter-handler" type="search" autocomplete="off" spellcheck="false"></label>
      <label>error<input id="dlq-filter-error" type="search" autocomplete="off" spellcheck="false"></label>
      <button id="dlq-refresh" type="button">Refresh</button>
      <span class="spacer" style="flex:1"></span>
      <label>bearer token (kept in this page only)<input id="token" type="password" autocomplete="off" spellcheck="false"></label>
      <button id="replay-all" type="button" title="replays every dead letter, not only the filtered ones" disabled>Replay all</button>
    </div>
    <div id="action-status" role="status" aria-live="polite"></div>
    <div class="note" id="actions-note">Actions are off on the server.</div>
    <div class="dlq-layout">
      <div class="scroll" style="max-height:420px"><table id="dlq-rows" class="fixed">
        <colgroup><col style="width:12%"><col style="width:17%"><col style="width:15%"><col><col style="width:10%"><col style="width:16%"></colgroup>
        <thead><tr><th>Id</th><th>Topic</th><th>Handler</th><th>Error</th><th class="num">Attempts</th><th class="num">Last attempt</th></tr></thead>
        <tbody></tbody>
      </table></div>
      <div id="dlq-detail" hidden>
        <h3>Dead letter <span id="dlq-detail-id"></span></h3>
        <dl class="kv" id="dlq-fields"></dl>
        <h4>Error</h4><pre id="dlq-error"></pre>
        <h4>Headers</h4><pre id="dlq-headers"></pre>
        <h4>Payload</h4><pre id="dlq-payload"></pre>
        <div class="buttons">
          <button id="replay-one" type="button" disabled>Replay</button>
          <button id="delete-one" type="button" class="danger" disabled>Delete</button>
        </div>
      </div>
    </div>
  </section>
</main>
`;

/** The dashboard's page: one self-contained HTML document. */
export function dashboardPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>ringbus dashboard</title>
<style>${STYLE}</style>
</head>
<body>${BODY}
<script>
${PAGE_SCRIPT}${PAGE_SCRIPT_DEAD_LETTERS}
</script>
</body>
</html>
`;
}
