/**
 * The dashboard's HTTP side: a request handler to mount on any Node HTTP
 * server or framework route (`dashboardHandler`), and its own server
 * (`startDashboard`, behind `bus.dashboard()`). It serves one page
 * (page.ts), the state and history as JSON, the live feed as server-sent
 * events, and the dead-letter queue; replay and delete need `actions: true`
 * and the bearer token. Every response says no caching and no framing, and
 * carries a Content-Security-Policy; every client address is rate-limited.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DeadLetterEntry } from '../dead_letter/dead_letter_entry.js';
import type { MessageBus } from '../message_bus.js';
import { errorMessage } from '../protocol/error_text.js';
import { resolveDashboardOptions, type DashboardOptions, type ResolvedDashboardOptions } from './options.js';
import { dashboardPage } from './page.js';
import { Sampler } from './sampler.js';
import type { DashboardState, DeadLetterRow, HistoryPoint } from './state.js';

/** A request handler for a Node HTTP server or a framework route; `close()` ends its live feeds. @group Dashboard */
export type DashboardHandler = ((req: IncomingMessage, res: ServerResponse) => void) & { close(): void };

/** The dashboard's own server. @group Dashboard */
export interface DashboardServer {
  /** Where the page is, e.g. `http://127.0.0.1:9465/`. */
  readonly url: string;
  close(): Promise<void>;
}

const SECURITY_HEADERS: Record<string, string> = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
};
/** Client addresses followed by the rate limiter at most (the least recently seen go first). */
const CLIENTS_KEPT = 1024;
const LIST_MAX = 500;

/**
 * What the handler serves: a bus's sampled state and dead letters, or (the
 * `ringbus dashboard --path` command) a dead-letter file's.
 * @internal
 */
export interface DashboardSource {
  state(): DashboardState;
  history(): HistoryPoint[];
  watch(listener: (state: DashboardState, point: HistoryPoint) => void): () => void;
  close(): void;
  /** Closes a circuit (undefined: this source has no bus). */
  resetCircuit?(handler: string, topic: string): boolean;
  readonly deadLetters: {
    list(): DeadLetterEntry[] | Promise<DeadLetterEntry[]>;
    get(id: string): DeadLetterEntry | undefined | Promise<DeadLetterEntry | undefined>;
    replay(id?: string): Promise<number>;
    delete(id: string): boolean | Promise<boolean>;
  };
}

/** The dashboard as a request handler; mount it where you like (it answers relative to where it is mounted). */
export function dashboardHandler(bus: MessageBus, options?: DashboardOptions): DashboardHandler {
  const o = resolveDashboardOptions(options);
  const sampler = new Sampler(bus, {
    sampleMs: o.sampleMs, historyPoints: Math.ceil((o.historySeconds * 1000) / o.sampleMs), actions: o.actions && o.token !== undefined,
    showPayloads: o.showPayloads, ...bus.dashboardFacts(),
  });
  return serveDashboard({
    state: () => sampler.state(), history: () => sampler.history(), watch: (l) => sampler.watch(l), close: () => sampler.close(),
    resetCircuit: (handler, topic) => bus.resetCircuit(handler, topic), deadLetters: bus.deadLetters,
  }, o);
}

/** @internal The handler over any source. */
export function serveDashboard(source: DashboardSource, o: ResolvedDashboardOptions): DashboardHandler {
  const dead = source.deadLetters;
  const limiter = new ClientLimiter(o.requestsPerSecond);
  const feeds = new Set<ServerResponse>();
  const handler = ((req: IncomingMessage, res: ServerResponse): void => {
    route(req, res).catch((err: unknown) => json(res, 500, { error: errorMessage(err) }));
  }) as DashboardHandler;
  handler.close = () => {
    for (const res of feeds) res.end();
    feeds.clear();
    source.close();
  };

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    if (!limiter.allow(req.socket.remoteAddress ?? '')) return json(res, 429, { error: 'too many requests: slow down' });
    // Nothing here reads a body: one that is announced (or sent) is refused, not buffered.
    if (Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined) {
      return json(res, 413, { error: 'request bodies are not accepted' });
    }
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (method === 'GET' && path === '/') {
      // Mounted at /prefix (no slash): the page's relative URLs need /prefix/.
      const original = (req as { originalUrl?: string }).originalUrl;
      if (original !== undefined && !new URL(original, 'http://x').pathname.endsWith('/')) {
        res.writeHead(301, { Location: `${new URL(original, 'http://x').pathname}/` }).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(dashboardPage());
      return;
    }
    if (method === 'GET' && path === '/events') return feed(req, res);
    if (method === 'GET' && path === '/api/state') return json(res, 200, source.state());
    if (method === 'GET' && path === '/api/history') return json(res, 200, { points: source.history() });
    if (method === 'GET' && path === '/api/dead-letters') return json(res, 200, listDeadLetters(await dead.list(), url.searchParams));
    if (method === 'POST' && path === '/api/circuits/reset') {
      const handler = url.searchParams.get('handler') ?? '';
      const topic = url.searchParams.get('topic') ?? '';
      if (source.resetCircuit === undefined) return json(res, 409, { error: 'no bus here: circuits belong to a running bus' });
      return act(req, res, () => Promise.resolve({ reset: source.resetCircuit!(handler, topic) }));
    }
    const m = /^\/api\/dead-letters\/([^/]+)(\/replay)?$/.exec(path);
    if (m !== null && m[1] === 'replay' && m[2] === undefined && method === 'POST') return act(req, res, () => dead.replay().then((n) => ({ replayed: n })));
    if (m !== null) {
      const id = decodeURIComponent(m[1]);
      if (method === 'GET' && m[2] === undefined) {
        const entry = await dead.get(id);
        return entry === undefined ? json(res, 404, { error: `no dead letter ${id}` }) : json(res, 200, { entry: detail(entry, o) });
      }
      if (method === 'POST' && m[2] !== undefined) return act(req, res, () => dead.replay(id).then((n) => ({ replayed: n })));
      if (method === 'DELETE' && m[2] === undefined) {
        return act(req, res, async () => ({ deleted: await dead.delete(id) }));
      }
    }
    json(res, 404, { error: `no ${method} ${path} here` });
  }

  function act(req: IncomingMessage, res: ServerResponse, run: () => Promise<object>): void {
    if (!o.actions) return json(res, 403, { error: 'actions are off on this dashboard (dashboard.actions)' });
    if (!authorized(req, o.token)) return json(res, 401, { error: 'a valid bearer token is needed for this action' });
    run().then((body) => json(res, 200, body), (err: unknown) => json(res, 409, { error: errorMessage(err) }));
  }

  function feed(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive' });
    res.write(': ringbus dashboard\n\n');
    feeds.add(res);
    const stop = source.watch((state, point) => {
      res.write(`event: state\ndata: ${JSON.stringify({ state, point })}\n\n`);
    });
    req.on('close', () => {
      stop();
      feeds.delete(res);
    });
  }

  return handler;
}

/** `bus.dashboard()`: the handler on its own HTTP server. */
export function startDashboard(bus: MessageBus, options?: DashboardOptions): Promise<DashboardServer> {
  const o = resolveDashboardOptions(options);
  return listen(dashboardHandler(bus, o), o);
}

/** @internal A handler on its own HTTP server, at `o.host`:`o.port`. */
export async function listen(handler: DashboardHandler, o: ResolvedDashboardOptions): Promise<DashboardServer> {
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    url: `http://${host}:${port}/`,
    close: () => new Promise<void>((resolve) => {
      handler.close();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
}

/** Constant-time comparison of the request's bearer token with the configured one. */
function authorized(req: IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return false;
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  if (m === null) return false;
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(m[1]), digest(token));
}

function listDeadLetters(all: DeadLetterEntry[], q: URLSearchParams): { total: number; entries: DeadLetterRow[] } {
  const topic = q.get('topic') ?? '';
  const handler = q.get('handler') ?? '';
  const error = q.get('error') ?? '';
  const limit = Math.min(Math.max(1, Number(q.get('limit') ?? 100) || 100), LIST_MAX);
  const rows: DeadLetterRow[] = [];
  let total = 0;
  for (let i = all.length - 1; i >= 0; i--) {
    const e = all[i];
    if (!e.event.topic.includes(topic) || !e.handler.includes(handler) || !e.error.includes(error)) continue;
    total++;
    if (rows.length < limit) {
      rows.push({
        id: e.id, topic: e.event.topic, handler: e.handler, error: e.error, errorCode: e.errorCode, attempts: e.attempts, lastAttemptAt: e.lastAttemptAt,
        eventId: e.event.id,
      });
    }
  }
  return { total, entries: rows };
}

function detail(e: DeadLetterEntry, o: ResolvedDashboardOptions): object {
  const { payload, ...event } = e.event;
  const shown = payload instanceof Uint8Array ? { bytes: payload.byteLength, base64: Buffer.from(payload).toString('base64') } : payload;
  return {
    id: e.id, topic: e.event.topic, handler: e.handler, error: e.error, errorName: e.errorName, errorCode: e.errorCode, attempts: e.attempts,
    firstAttemptAt: e.firstAttemptAt, lastAttemptAt: e.lastAttemptAt, eventId: e.event.id, subscription: e.subscription,
    event: o.showPayloads ? { ...event, payload: shown } : event,
  };
}

/** A token bucket per client address (requestsPerSecond, burst twice that), the map bounded (least recently seen dropped). */
class ClientLimiter {
  readonly #rate: number;
  readonly #clients = new Map<string, { tokens: number; at: number }>();

  constructor(rate: number) {
    this.#rate = rate;
  }

  allow(client: string): boolean {
    const now = performance.now();
    let b = this.#clients.get(client);
    if (b === undefined) {
      if (this.#clients.size >= CLIENTS_KEPT) this.#clients.delete(this.#clients.keys().next().value!);
      b = { tokens: 2 * this.#rate, at: now };
    } else this.#clients.delete(client); // re-inserted below: the map's order is recency
    this.#clients.set(client, b);
    b.tokens = Math.min(2 * this.#rate, b.tokens + ((now - b.at) / 1000) * this.#rate);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens--;
    return true;
  }
}
