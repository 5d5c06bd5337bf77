/**
 * The second half of the dashboard page's script (page_script.ts has the
 * first, and its rules): the dead-letter list, detail and actions, and the
 * start. It runs inside the function page_script.ts opens, and closes it.
 */
export const PAGE_SCRIPT_DEAD_LETTERS = String.raw`
  // ---- dead letters ----
  function dlqQuery() {
    var q = new URLSearchParams();
    q.set('topic', $('dlq-filter-topic').value);
    q.set('handler', $('dlq-filter-handler').value);
    q.set('error', $('dlq-filter-error').value);
    q.set('limit', '100');
    return 'api/dead-letters?' + q.toString();
  }
  function scheduleDlqRefresh() {
    if (dlqTimer) return;
    dlqTimer = setTimeout(function () { dlqTimer = 0; loadDeadLetters(); }, 1000);
  }
  function loadDeadLetters() {
    return getJson(dlqQuery()).then(function (body) {
      var rows = Array.isArray(body && body.entries) ? body.entries : [];
      $('dlq-count').textContent = rows.length + ' shown of ' + fmt(body.total);
      var key = JSON.stringify(rows);
      if (key !== lastRowsKey) { lastRowsKey = key; renderRows(rows); }
      if (selectedId !== null && !rows.some(function (r) { return str(r.id) === selectedId; })) closeDetail();
    }, function (e) { $('dlq-count').textContent = '(could not load: ' + e.message + ')'; });
  }
  function renderRows(rows) {
    var tbody = $('dlq-rows').querySelector('tbody');
    clear(tbody);
    if (!rows.length) return emptyRow(tbody, 6, 'no dead letters');
    rows.forEach(function (r) {
      var tr = el('tr'), id = str(r.id);
      tr.setAttribute('data-id', id);
      tr.setAttribute('tabindex', '0');
      if (id === selectedId) tr.className = 'selected';
      tr.appendChild(cut(id));
      tr.appendChild(cut(str(r.topic)));
      tr.appendChild(cut(str(r.handler)));
      tr.appendChild(cut((r.errorCode ? '[' + str(r.errorCode) + '] ' : '') + str(r.error)));
      tr.appendChild(el('td', fmt(r.attempts), 'num'));
      tr.appendChild(el('td', dateTime(r.lastAttemptAt).slice(5), 'num'));
      tr.addEventListener('click', function () { openDetail(id); });
      tr.addEventListener('keydown', function (e) { if (e.key === 'Enter') openDetail(id); });
      tbody.appendChild(tr);
    });
  }
  function markSelected() {
    var trs = $('dlq-rows').querySelectorAll('tbody tr[data-id]');
    for (var i = 0; i < trs.length; i++) trs[i].classList.toggle('selected', trs[i].getAttribute('data-id') === selectedId);
  }
  function closeDetail() {
    selectedId = null;
    $('dlq-detail').hidden = true;
    markSelected(); renderActions();
  }
  function openDetail(id) {
    // Another entry: hide the panel until its detail is here (no stale fields shown meanwhile).
    if (id !== selectedId) $('dlq-detail').hidden = true;
    selectedId = id;
    markSelected(); renderActions();
    getJson('api/dead-letters/' + encodeURIComponent(id)).then(function (body) {
      if (selectedId !== id) return;
      showDetail(body && body.entry ? body.entry : {});
    }, function (e) { if (selectedId === id) setStatus('could not load ' + id + ': ' + e.message, false); });
  }
  function pretty(v) {
    try { var s = JSON.stringify(v, null, 2); return s === undefined ? String(v) : s; } catch (e) { return String(v); }
  }
  function showDetail(d) {
    var ev = d.event && typeof d.event === 'object' ? d.event : {};
    $('dlq-detail-id').textContent = str(d.id);
    kv($('dlq-fields'), [
      ['topic', str(d.topic)], ['handler', str(d.handler)], ['attempts', fmt(d.attempts)],
      ['first attempt', dateTime(d.firstAttemptAt)], ['last attempt', dateTime(d.lastAttemptAt)],
      ['event id', str(ev.id)], ['event topic', str(ev.topic)], ['priority', str(ev.priority)],
      ['session', str(ev.sessionId) || '–'], ['published', dateTime(ev.publishedAt)]
    ]);
    var head = [d.errorName, d.errorCode ? '[' + str(d.errorCode) + ']' : ''].filter(Boolean).map(str).join(' ');
    $('dlq-error').textContent = (head ? head + ': ' : '') + str(d.error);
    $('dlq-headers').textContent = ev.headers && Object.keys(ev.headers).length ? pretty(ev.headers) : '(none)';
    var payload = $('dlq-payload');
    var has = Object.prototype.hasOwnProperty.call(ev, 'payload');
    payload.textContent = has ? pretty(ev.payload) : state && state.showPayloads ? '(no payload)' : HIDDEN_NOTE;
    payload.classList.toggle('muted', !has);
    $('dlq-detail').hidden = false;
    renderActions();
  }

  // ---- actions ----
  function setStatus(text, ok, code) {
    var s = $('action-status');
    s.textContent = text;
    s.className = ok ? 'ok' : 'error';
    if (code !== undefined) s.setAttribute('data-status', String(code)); else s.removeAttribute('data-status');
  }
  function act(method, path, describe) {
    var headers = { Accept: 'application/json' };
    var token = $('token').value;
    if (token) headers.Authorization = 'Bearer ' + token;
    busy = true; renderActions();
    return fetch(url(path), { method: method, headers: headers, cache: 'no-store' }).then(function (r) {
      return r.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (r.ok) { setStatus(describe(body || {}), true, r.status); return true; }
        var err = body && body.error !== undefined ? str(body.error) : 'HTTP ' + r.status + (r.statusText ? ' ' + r.statusText : '');
        if (r.status === 401 && !/token/i.test(err)) err += ' (bearer token missing or wrong)';
        if (r.status === 403 && !/action/i.test(err)) err += ' (actions are off on the server)';
        setStatus(err, false, r.status);
        return false;
      });
    }, function (e) { setStatus('request failed: ' + e.message, false); return false; }).then(function (ok) {
      busy = false; renderActions();
      if (ok) return loadDeadLetters();
    });
  }
  $('replay-one').addEventListener('click', function () {
    if (selectedId === null) return;
    act('POST', 'api/dead-letters/' + encodeURIComponent(selectedId) + '/replay', function (b) { return 'replayed ' + fmt(b.replayed); });
  });
  $('delete-one').addEventListener('click', function () {
    if (selectedId === null) return;
    var id = selectedId;
    act('DELETE', 'api/dead-letters/' + encodeURIComponent(id), function (b) { return b.deleted ? 'deleted ' + id : 'not deleted (' + id + ' not found)'; });
  });
  $('replay-all').addEventListener('click', function () {
    act('POST', 'api/dead-letters/replay', function (b) { return 'replayed ' + fmt(b.replayed); });
  });
  $('dlq-refresh').addEventListener('click', function () { loadDeadLetters(); });
  var filterTimer = 0;
  ['dlq-filter-topic', 'dlq-filter-handler', 'dlq-filter-error'].forEach(function (id) {
    $(id).addEventListener('input', function () { clearTimeout(filterTimer); filterTimer = setTimeout(loadDeadLetters, 300); });
    $(id).addEventListener('keydown', function (e) { if (e.key === 'Enter') { clearTimeout(filterTimer); loadDeadLetters(); } });
  });

  // ---- start ----
  drawThroughput(); drawLatency(); renderActions();
  getJson('api/state').then(function (s) { if (!state && s && typeof s === 'object') render(s); }, function () {});
  getJson('api/history').then(function (b) { addPoints(b && b.points); }, function () {});
  loadDeadLetters();
  connect();
})();
`;
