/**
 * The dashboard's HTTP side through fetch: the page and its headers, the
 * state and the live feed, dead letters with and without the token, limits.
 * (The page in a browser: dashboard_browser.test.ts.)
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, dashboardHandler, MessageBus, type DashboardServer } from '../src/index.js';
import { quietLogger } from './helpers.js';

const TOKEN = 'a-token-of-enough-length';
const buses: MessageBus[] = [];
const servers: { close(): Promise<void> | void }[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  await Promise.all(buses.splice(0).map((b) => b.stop({ drain: false })));
});

async function failingBus(): Promise<MessageBus> {
  const b = new MessageBus({ logger: quietLogger(), pool: { minThreads: 0 }, retry: { maxRetries: 0 }, deadLetter: {} });
  buses.push(b);
  b.registerEventHandler('orders', (e) => {
    if ((e.payload as { fail?: boolean }).fail) throw new Error('<b>boom</b>');
  }, { name: 'book' });
  await b.start();
  return b;
}

async function open(b: MessageBus, options: Parameters<MessageBus['dashboard']>[0] = {}): Promise<DashboardServer> {
  const d = await b.dashboard({ port: 0, sampleMs: 100, ...options });
  servers.push(d);
  return d;
}

describe('dashboard over HTTP', () => {
  it('serves its page on 127.0.0.1 with no-cache, no-framing and a content security policy', async () => {
    const b = await failingBus();
    const d = await open(b);
    expect(d.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const res = await fetch(d.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    expect(await res.text()).toMatch(/<html/i);
    expect((await fetch(new URL('nope', d.url))).status).toBe(404);
  });

  it('gives the state, with rates of the last interval, and feeds it live to a page', async () => {
    const b = await failingBus();
    const d = await open(b);
    const first = (await (await fetch(new URL('api/state', d.url))).json()) as { totals: { published: number } };
    expect(first.totals.published).toBe(0);
    const feed = await fetch(new URL('events', d.url));
    expect(feed.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = feed.body!.getReader();
    for (let i = 0; i < 500; i++) b.publish('orders', { i });
    let text = '';
    while (!/"published":500/.test(text)) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const event = /event: state\ndata: (.*)\n/.exec(text.slice(text.lastIndexOf('event: state')))!;
    const { state, point } = JSON.parse(event[1]) as { state: { totals: Record<string, number>; queue: { capacity: number } }; point: { t: number } };
    expect(state.totals).toMatchObject({ published: 500, processed: 500 });
    expect(state.queue.capacity).toBe(65_536);
    expect(point.t).toBeGreaterThan(0);
    const history = (await (await fetch(new URL('api/history', d.url))).json()) as { points: unknown[] };
    expect(history.points.length).toBeGreaterThan(0);
  });

  it('lists dead letters with filters, hides payloads unless showPayloads, and refuses actions without the token', async () => {
    const b = await failingBus();
    const d = await open(b, { token: TOKEN, actions: true });
    b.publish('orders', { fail: true, note: '<script>alert(1)</script>' });
    await b.drain();
    const list = (await (await fetch(new URL('api/dead-letters?handler=boo', d.url))).json()) as { total: number; entries: { id: string; error: string }[] };
    expect(list.total).toBe(1);
    expect(list.entries[0].error).toBe('<b>boom</b>');
    expect((await (await fetch(new URL('api/dead-letters?topic=nothing', d.url))).json())).toEqual({ total: 0, entries: [] });
    const id = encodeURIComponent(list.entries[0].id);
    const one = (await (await fetch(new URL(`api/dead-letters/${id}`, d.url))).json()) as { entry: { event: Record<string, unknown> } };
    expect(one.entry.event.topic).toBe('orders');
    expect('payload' in one.entry.event).toBe(false);

    const replay = (auth?: string): Promise<Response> =>
      fetch(new URL(`api/dead-letters/${id}/replay`, d.url), { method: 'POST', headers: auth ? { authorization: auth } : {} });
    expect((await replay()).status).toBe(401);
    expect((await replay('Bearer wrong-token-of-some-length')).status).toBe(401);
    expect(b.deadLetters.size).toBe(1);
    const ok = await replay(`Bearer ${TOKEN}`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ replayed: 0 }); // it failed again: still dead, with its new attempts
    const del = await fetch(new URL(`api/dead-letters/${id}`, d.url), { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(await del.json()).toEqual({ deleted: true });
    expect(b.deadLetters.size).toBe(0);
  });

  it('keeps actions off unless enabled, with a token; shows payloads only with showPayloads', async () => {
    const b = await failingBus();
    expect(() => dashboardHandler(b, { actions: true })).toThrow(ConfigError);
    expect(() => dashboardHandler(b, { token: 'short' })).toThrow(/at least 16 characters/);
    expect(() => dashboardHandler(b, { ports: 1 } as never)).toThrow(/dashboard\.ports is not an option/);
    const d = await open(b, { token: TOKEN, showPayloads: true });
    b.publish('orders', { fail: true, note: '<script>x</script>' });
    await b.drain();
    const [entry] = b.deadLetters.list();
    const res = await fetch(new URL(`api/dead-letters/${encodeURIComponent(entry.id)}/replay`, d.url), {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(403);
    const one = (await (await fetch(new URL(`api/dead-letters/${encodeURIComponent(entry.id)}`, d.url))).json()) as { entry: { event: { payload: unknown } } };
    expect(one.entry.event.payload).toEqual({ fail: true, note: '<script>x</script>' });
  });

  it('resets an open circuit with the token (an operator closes it), and bus.resetCircuit says whether it did', async () => {
    const b = new MessageBus({
      logger: quietLogger(), pool: { minThreads: 0 }, retry: { maxRetries: 0 },
      circuitBreaker: { minimumCalls: 5, failureRateThreshold: 0.5, recoveryTimeoutMs: 60_000, hold: false },
    });
    buses.push(b);
    b.registerEventHandler('payments', () => {
      throw new Error('gateway down');
    }, { name: 'charge' });
    await b.start();
    for (let i = 0; i < 10; i++) b.publish('payments', i);
    await b.drain();
    expect(b.circuitState('charge', 'payments')).toBe('open');
    const d = await open(b, { token: TOKEN, actions: true });
    const state = (await (await fetch(new URL('api/state', d.url))).json()) as { circuits: { handler: string; circuit: string }[] };
    expect(state.circuits).toEqual([expect.objectContaining({ topic: 'payments', handler: 'charge', circuit: 'open' })]);
    const reset = (auth?: string): Promise<Response> =>
      fetch(new URL('api/circuits/reset?handler=charge&topic=payments', d.url), { method: 'POST', headers: auth ? { authorization: auth } : {} });
    expect((await reset()).status).toBe(401);
    expect(await (await reset(`Bearer ${TOKEN}`)).json()).toEqual({ reset: true });
    expect(b.circuitState('charge', 'payments')).toBe('closed');
    expect(b.resetCircuit('charge', 'payments')).toBe(false);
    expect(b.resetCircuit('nobody', 'payments')).toBe(false);
  });

  it('rate-limits each client and refuses request bodies', async () => {
    const b = await failingBus();
    const d = await open(b, { requestsPerSecond: 5 });
    const statuses: number[] = [];
    for (let i = 0; i < 15; i++) statuses.push((await fetch(new URL('api/state', d.url))).status);
    expect(statuses.slice(0, 10).every((s) => s === 200)).toBe(true); // the burst: twice the rate
    expect(statuses).toContain(429);
    const d2 = await open(b);
    const big = await fetch(new URL('api/state', d2.url), { method: 'POST', body: 'x'.repeat(100) });
    expect(big.status).toBe(413);
  });

  it('mounts on an existing server under a prefix', async () => {
    const b = await failingBus();
    const handler = dashboardHandler(b, { sampleMs: 100 });
    const server = createServer((req, res) => {
      if (req.url?.startsWith('/ops/bus')) {
        (req as { originalUrl?: string }).originalUrl = req.url;
        req.url = req.url.slice('/ops/bus'.length) || '/';
        handler(req, res);
      } else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push({ close: () => new Promise<void>((r) => { handler.close(); server.closeAllConnections(); server.close(() => r()); }) });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const redirect = await fetch(`${base}/ops/bus`, { redirect: 'manual' });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe('/ops/bus/');
    expect((await fetch(`${base}/ops/bus/`)).status).toBe(200);
    expect((await fetch(`${base}/ops/bus/api/state`)).status).toBe(200);
  });
});

describe('ringbus dashboard --path (a dead-letter file, no bus)', () => {
  it('lists and shows the file\'s dead letters, deletes one with the token, refuses a replay, and refuses a delete while a bus owns the file', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { deadLetterFileSource } = await import('../src/dashboard/file_source.js');
    const { listen, serveDashboard } = await import('../src/dashboard/dashboard.js');
    const { resolveDashboardOptions } = await import('../src/dashboard/options.js');
    const dir = mkdtempSync(join(tmpdir(), 'ringbus-dash-file-'));
    try {
      const path = join(dir, 'dead.jsonl');
      const b = new MessageBus({ logger: quietLogger(), pool: { minThreads: 0 }, retry: { maxRetries: 0 }, deadLetter: { path } });
      b.registerEventHandler('orders', () => {
        throw new Error('no stock');
      }, { name: 'book' });
      await b.start();
      b.publish('orders', { n: 1 });
      b.publish('orders', { n: 2 });
      await b.drain();
      await b.stop();
      const o = resolveDashboardOptions({ port: 0, token: TOKEN, actions: true, sampleMs: 100 });
      const d = await listen(serveDashboard(deadLetterFileSource(path, o, quietLogger()), o), o);
      servers.push(d);
      const list = (await (await fetch(new URL('api/dead-letters', d.url))).json()) as { total: number; entries: { id: string }[] };
      expect(list.total).toBe(2);
      const id = encodeURIComponent(list.entries[0].id);
      expect(((await (await fetch(new URL(`api/dead-letters/${id}`, d.url))).json()) as { entry: { handler: string } }).entry.handler).toBe('book');
      const auth = { authorization: `Bearer ${TOKEN}` };
      const replay = await fetch(new URL(`api/dead-letters/${id}/replay`, d.url), { method: 'POST', headers: auth });
      expect(replay.status).toBe(409);
      expect(((await replay.json()) as { error: string }).error).toMatch(/replay needs the handlers/);
      expect((await fetch(new URL(`api/dead-letters/${id}`, d.url), { method: 'DELETE' })).status).toBe(401);
      expect(await (await fetch(new URL(`api/dead-letters/${id}`, d.url), { method: 'DELETE', headers: auth })).json()).toEqual({ deleted: true });
      expect(((await (await fetch(new URL('api/dead-letters', d.url))).json()) as { total: number }).total).toBe(1);
      // A bus owns the file again: a delete is refused, naming the owner; listing still works (no lock).
      const owner = new MessageBus({ logger: quietLogger(), pool: { minThreads: 0 }, deadLetter: { path } });
      buses.push(owner);
      await owner.start();
      const other = list.entries[1].id;
      const refused = await fetch(new URL(`api/dead-letters/${encodeURIComponent(other)}`, d.url), { method: 'DELETE', headers: auth });
      expect(refused.status).toBe(409);
      expect(((await refused.json()) as { error: string }).error).toMatch(/is in use by this process/);
      expect(((await (await fetch(new URL('api/dead-letters', d.url))).json()) as { total: number }).total).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
