/**
 * The dashboard page's script (inlined by page.ts), as plain browser
 * JavaScript. Rules it keeps: every value from the server is untrusted, so
 * the DOM is built with createElement + textContent/setAttribute only (no
 * innerHTML and friends); URLs are relative (`new URL('api/…', location.href)`);
 * the bearer token lives only in its input (no storage, cookie or URL).
 * It must not contain a backtick, a dollar-brace or a closing script tag.
 * Its second half (the dead letters and the actions) is in
 * page_script_dead_letters.ts: page.ts puts one after the other, inside the
 * same function.
 */
export const PAGE_SCRIPT = String.raw`
'use strict';
(function () {
  var NS = 'http://www.w3.org/2000/svg';
  var MAX_POINTS = 300;
  var HIDDEN_NOTE = 'payloads hidden (showPayloads is off)';
  var $ = function (id) { return document.getElementById(id); };
  var points = [];
  var state = null;
  var lastMessageAt = 0;
  var selectedId = null;
  var lastRowsKey = '';
  var lastDlqSize = -1;
  var dlqTimer = 0;
  var busy = false;

  function url(path) { return new URL(path, location.href).toString(); }
  function num(v) { var n = Number(v); return isFinite(n) ? n : 0; }
  function str(v) { return v === undefined || v === null ? '' : String(v); }
  function fmt(v) {
    v = num(v);
    var a = Math.abs(v);
    if (a >= 1e9) return +(v / 1e9).toPrecision(3) + 'G';
    if (a >= 1e6) return +(v / 1e6).toPrecision(3) + 'M';
    if (a >= 1e4) return +(v / 1e3).toPrecision(3) + 'k';
    if (a >= 100 || a === 0 || Number.isInteger(v)) return String(Math.round(v));
    return String(+v.toPrecision(3));
  }
  function ms(seconds) { return fmt(num(seconds) * 1000); }
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function clock(t) {
    t = num(t);
    if (!t) return '–';
    var d = new Date(t);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function dateTime(t) {
    t = num(t);
    if (!t) return '–';
    var d = new Date(t);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + clock(t);
  }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  /** A cell cut to one line, its full text in the tooltip. */
  function cut(text) {
    var td = el('td', text, 'cut');
    td.setAttribute('title', text);
    return td;
  }
  function svgEl(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    if (parent) parent.appendChild(e);
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function kv(dl, pairs) {
    clear(dl);
    pairs.forEach(function (p) { dl.appendChild(el('dt', p[0])); dl.appendChild(el('dd', p[1])); });
  }
  function pct(part, whole) {
    whole = num(whole);
    return whole > 0 ? Math.max(0, Math.min(100, num(part) / whole * 100)) : 0;
  }

  // ---- charts ----
  var W = 640, H = 220, L = 52, R = 10, T = 10, B = 24;
  function makeChart(id, series, pick) {
    var section = $(id), svg = section.querySelector('svg'), legend = section.querySelector('.legend');
    var values = {};
    [0.25, 0.5, 0.75, 1].forEach(function (f) {
      var y = T + (H - T - B) * (1 - f);
      svgEl('line', { x1: L, x2: W - R, y1: y, y2: y, 'class': 'grid' }, svg);
    });
    svgEl('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: '#9ca3af' }, svg);
    var yMax = svgEl('text', { x: L - 6, y: T + 4, 'text-anchor': 'end', 'class': 'axis' }, svg);
    var yMid = svgEl('text', { x: L - 6, y: T + (H - T - B) / 2 + 4, 'text-anchor': 'end', 'class': 'axis' }, svg);
    svgEl('text', { x: L - 6, y: H - B + 4, 'text-anchor': 'end', 'class': 'axis' }, svg).textContent = '0';
    var x0 = svgEl('text', { x: L, y: H - 6, 'class': 'axis' }, svg);
    var x1 = svgEl('text', { x: W - R, y: H - 6, 'text-anchor': 'end', 'class': 'axis' }, svg);
    var lines = series.map(function (s) {
      var item = el('span');
      var sw = el('i'); sw.style.background = s.color;
      item.appendChild(sw); item.appendChild(document.createTextNode(s.label));
      values[s.key] = el('b', '–'); item.appendChild(values[s.key]);
      legend.appendChild(item);
      var pl = svgEl('polyline', { 'data-series': s.key, 'data-points': 0, points: '', stroke: s.color }, svg);
      if (s.dash) pl.setAttribute('stroke-dasharray', s.dash);
      return pl;
    });
    return function draw() {
      var max = 0;
      var data = series.map(function (s) {
        return points.map(function (p) { var v = num(pick(p, s.key)); if (v > max) max = v; return v; });
      });
      var top = niceMax(max);
      yMax.textContent = fmt(top); yMid.textContent = fmt(top / 2);
      var tFirst = points.length ? num(points[0].t) : 0, tLast = points.length ? num(points[points.length - 1].t) : 0;
      var span = tLast - tFirst || 1;
      x0.textContent = points.length ? clock(tFirst) : '';
      x1.textContent = points.length ? clock(tLast) : '';
      series.forEach(function (s, i) {
        var coords = data[i].map(function (v, j) {
          var x = points.length === 1 ? W - R : L + (W - L - R) * (num(points[j].t) - tFirst) / span;
          var y = T + (H - T - B) * (1 - v / top);
          return x.toFixed(1) + ',' + y.toFixed(1);
        });
        lines[i].setAttribute('points', coords.join(' '));
        lines[i].setAttribute('data-points', String(coords.length));
        var last = data[i].length ? data[i][data[i].length - 1] : null;
        values[s.key].textContent = last === null ? '–' : fmt(last);
      });
    };
  }
  function niceMax(v) {
    if (!(v > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return +(steps[i] * p).toPrecision(6);
    return 10 * p;
  }
  var drawThroughput = makeChart('throughput', [
    { key: 'published', label: 'published', color: '#2563eb' },
    { key: 'processed', label: 'processed', color: '#16a34a' },
    { key: 'failed', label: 'failed', color: '#dc2626' },
    { key: 'retried', label: 'retried', color: '#d97706' },
    { key: 'deadLettered', label: 'dead-lettered', color: '#7c3aed' }
  ], function (p, key) { return p.rates ? p.rates[key] : 0; });
  var drawLatency = makeChart('latency', [
    { key: 'endToEnd.p50', label: 'end-to-end p50', color: '#1d4ed8' },
    { key: 'endToEnd.p95', label: 'end-to-end p95', color: '#3b82f6', dash: '6 3' },
    { key: 'endToEnd.p99', label: 'end-to-end p99', color: '#60a5fa', dash: '2 3' },
    { key: 'processing.p50', label: 'processing p50', color: '#047857' },
    { key: 'processing.p95', label: 'processing p95', color: '#10b981', dash: '6 3' },
    { key: 'processing.p99', label: 'processing p99', color: '#34d399', dash: '2 3' }
  ], function (p, key) {
    var parts = key.split('.'), group = p[parts[0]];
    return group ? num(group[parts[1]]) * 1000 : 0;
  });
  function addPoints(list) {
    if (!Array.isArray(list) || !list.length) return;
    var all = points.concat(list.filter(function (p) { return p && typeof p === 'object'; }));
    all.sort(function (a, b) { return num(a.t) - num(b.t); });
    points = all.filter(function (p, i) { return i === 0 || num(p.t) !== num(all[i - 1].t); }).slice(-MAX_POINTS);
    drawThroughput(); drawLatency();
  }

  // ---- live state ----
  function setLive(live) {
    var b = $('live');
    var text = live ? 'live' : 'disconnected';
    if (b.textContent !== text) { b.textContent = text; b.className = 'badge ' + text; }
  }
  function render(s) {
    state = s;
    $('updated').textContent = clock(s.t);
    $('sample-ms').textContent = s.sampleMs ? fmt(s.sampleMs) + ' ms' : '–';
    renderQueue(s.queue || {});
    renderPool(s.pool || {}, s.deadLetters || {});
    var t = s.totals || {};
    kv($('totals-list'), ['published', 'processed', 'failed', 'retried', 'deadLettered', 'dropped', 'rejected', 'filtered', 'abandoned', 'scheduled']
      .map(function (k) { return [k === 'deadLettered' ? 'dead-lettered' : k, fmt(t[k])]; }));
    renderHandlers(Array.isArray(s.handlers) ? s.handlers : []);
    renderCircuits(Array.isArray(s.circuits) ? s.circuits : []);
    renderTransport(s.transport);
    renderCluster(s.cluster);
    renderActions();
    var size = num(s.deadLetters && s.deadLetters.size);
    if (lastDlqSize !== -1 && size !== lastDlqSize) scheduleDlqRefresh();
    lastDlqSize = size;
  }
  function renderQueue(q) {
    $('queue-size').textContent = String(num(q.size));
    $('queue-capacity').textContent = String(num(q.capacity));
    $('queue-low').textContent = String(num(q.lowWaterMark));
    $('queue-high').textContent = String(num(q.highWaterMark));
    var bp = $('queue-backpressure');
    bp.textContent = q.backpressure ? 'on' : 'off';
    bp.className = q.backpressure ? 'on' : 'off';
    var bar = $('queue-bar');
    bar.classList.toggle('pressure', !!q.backpressure);
    bar.querySelector('.fill').style.width = pct(q.size, q.capacity) + '%';
    bar.querySelector('.mark.low').style.left = pct(q.lowWaterMark, q.capacity) + '%';
    bar.querySelector('.mark.high').style.left = pct(q.highWaterMark, q.capacity) + '%';
    var lanes = q.lanes || {}, box = $('lanes');
    clear(box);
    var total = 0;
    ['critical', 'high', 'normal', 'low'].forEach(function (k) { total += num(lanes[k]); });
    var dl = el('dl', null, 'kv');
    ['critical', 'high', 'normal', 'low'].forEach(function (k) {
      dl.appendChild(el('dt', 'lane ' + k));
      dl.appendChild(el('dd', fmt(lanes[k])));
    });
    box.appendChild(dl);
    box.setAttribute('title', 'lane depths (' + total + ' queued)');
  }
  function renderPool(p, d) {
    $('pool-active').textContent = String(num(p.activeWorkers));
    $('pool-max').textContent = String(num(p.maxThreads));
    $('pool-bar').querySelector('.fill').style.width = pct(p.activeWorkers, p.maxThreads) + '%';
    $('pool-crashes').textContent = fmt(p.workerCrashes);
    $('pool-timeouts').textContent = fmt(p.handlerTimeouts);
    $('dlq-size').textContent = fmt(d.size);
  }
  function emptyRow(tbody, cols, text) {
    var tr = el('tr'), td = el('td', text, 'empty');
    td.setAttribute('colspan', String(cols));
    tr.appendChild(td); tbody.appendChild(tr);
  }
  function renderHandlers(list) {
    var tbody = $('handlers').querySelector('tbody');
    clear(tbody);
    if (!list.length) return emptyRow(tbody, 7, 'no handler activity yet');
    list.forEach(function (h) {
      var tr = el('tr'), p = h.processing || {};
      tr.setAttribute('data-handler', str(h.handler));
      tr.appendChild(cut(str(h.handler)));
      tr.appendChild(el('td', fmt(h.processedPerSecond), 'num'));
      tr.appendChild(el('td', fmt(h.failedPerSecond), 'num'));
      var fr = num(h.failureRate) * 100;
      tr.appendChild(el('td', (fr === 0 ? '0' : +fr.toPrecision(3)) + '%', 'num' + (fr >= 50 ? ' on' : '')));
      tr.appendChild(el('td', ms(p.p50), 'num'));
      tr.appendChild(el('td', ms(p.p95), 'num'));
      tr.appendChild(el('td', ms(p.p99), 'num'));
      tbody.appendChild(tr);
    });
  }
  function renderCircuits(list) {
    var tbody = $('circuits').querySelector('tbody');
    clear(tbody);
    if (!list.length) return emptyRow(tbody, 5, 'no circuit breakers');
    list.forEach(function (c) {
      var tr = el('tr'), st = str(c.circuit);
      tr.setAttribute('data-topic', str(c.topic));
      tr.setAttribute('data-handler', str(c.handler));
      if (st === 'open' || st === 'half_open') tr.className = 'circuit-' + st;
      tr.appendChild(cut(str(c.topic)));
      tr.appendChild(cut(str(c.handler)));
      tr.appendChild(el('td', st, 'state'));
      var trans = Array.isArray(c.transitions) ? c.transitions.slice(-3).reverse() : [];
      var td = el('td', null, 'transitions');
      trans.forEach(function (x, i) {
        if (i) td.appendChild(el('br'));
        td.appendChild(document.createTextNode(clock(x.at) + ' ' + str(x.from) + ' \u2192 ' + str(x.to)));
      });
      if (!trans.length) td.textContent = '–';
      tr.appendChild(td);
      var cell = el('td', null, 'reset');
      if (st !== 'closed') {
        var b = el('button', 'Reset');
        b.className = 'reset-circuit';
        b.title = 'close this circuit now (needs the token)';
        b.disabled = !actionsAllowed();
        b.addEventListener('click', function () {
          act('POST', 'api/circuits/reset?handler=' + encodeURIComponent(str(c.handler)) + '&topic=' + encodeURIComponent(str(c.topic)),
            function (r) { return r.reset ? 'circuit reset' : 'circuit was not open'; });
        });
        cell.appendChild(b);
      }
      tr.appendChild(cell);
      tbody.appendChild(tr);
    });
  }
  function renderCluster(c) {
    var section = $('cluster');
    if (!c || typeof c !== 'object') { section.hidden = true; return; }
    section.hidden = false;
    $('cluster-stream').textContent = c.stream ? 'stream ' + str(c.stream.name) + ': ' + fmt(c.stream.messages) + ' messages, ' +
      fmt(c.stream.consumers) + ' consumers' : '';
    var procs = $('cluster-processes').querySelector('tbody');
    clear(procs);
    (Array.isArray(c.processes) ? c.processes : []).forEach(function (p) {
      var tr = el('tr');
      tr.setAttribute('data-process-id', str(p.id));
      tr.appendChild(cut(str(p.name) + ' ' + str(p.id)));
      tr.appendChild(cut(str(p.host)));
      tr.appendChild(el('td', str(p.pid)));
      ['published', 'processed', 'failed', 'queueSize', 'activeWorkers', 'handlers'].forEach(function (k) { tr.appendChild(el('td', fmt(p[k]), 'num')); });
      tr.appendChild(el('td', clock(p.t)));
      procs.appendChild(tr);
    });
    var cons = $('cluster-consumers').querySelector('tbody');
    clear(cons);
    (Array.isArray(c.consumers) ? c.consumers : []).forEach(function (x) {
      var tr = el('tr');
      tr.setAttribute('data-consumer', str(x.name));
      tr.appendChild(cut(str(x.name)));
      tr.appendChild(cut(str(x.description)));
      tr.appendChild(el('td', fmt(x.pending), 'num'));
      tr.appendChild(el('td', fmt(x.ackPending), 'num'));
      tr.appendChild(el('td', fmt(x.redelivered), 'num'));
      cons.appendChild(tr);
    });
    var e = $('cluster-error');
    e.hidden = !c.error;
    e.textContent = c.error ? 'server: ' + str(c.error) : '';
  }
  function renderTransport(t) {
    var section = $('transport');
    if (!t || typeof t !== 'object') { section.hidden = true; return; }
    section.hidden = false;
    kv($('transport-list'), Object.keys(t).sort().map(function (k) { return [k, fmt(t[k])]; }));
  }
  function actionsAllowed() { return !!(state && state.actions) && !busy; }
  function renderActions() {
    var on = !!(state && state.actions);
    $('actions-note').hidden = on;
    $('token').disabled = !on;
    $('replay-all').disabled = !on || busy;
    $('replay-one').disabled = !on || busy || selectedId === null;
    $('delete-one').disabled = !on || busy || selectedId === null;
  }
  function onMessage(ev) {
    var msg;
    try { msg = JSON.parse(ev.data); } catch (e) { return; }
    lastMessageAt = Date.now();
    setLive(true);
    if (msg && msg.state) render(msg.state);
    if (msg && msg.point) addPoints([msg.point]);
  }
  var source = null;
  function connect() {
    try { source = new EventSource(url('events')); } catch (e) { setLive(false); setTimeout(connect, 5000); return; }
    source.addEventListener('state', onMessage);
    source.onopen = function () { lastMessageAt = Date.now(); setLive(true); };
    source.onerror = function () {
      setLive(false);
      // EventSource retries by itself while CONNECTING; once CLOSED (a non-stream answer) retry here.
      if (source.readyState === 2) { source = null; setTimeout(connect, 5000); }
    };
  }
  setInterval(function () {
    var staleAfter = Math.max(5000, 5 * num(state && state.sampleMs));
    if (lastMessageAt && Date.now() - lastMessageAt > staleAfter) setLive(false);
  }, 1000);

  function getJson(path) {
    return fetch(url(path), { headers: { Accept: 'application/json' }, cache: 'no-store' }).then(function (r) {
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.json();
    });
  }

`;
