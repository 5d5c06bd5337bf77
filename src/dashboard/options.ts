/**
 * The dashboard's options (`bus.dashboard(options)`, `dashboardHandler(bus,
 * options)`), declared once with their defaults, and their check.
 */
import { ConfigError } from '../errors.js';

/** @group Dashboard */
export interface DashboardOptions {
  /** Port of the dashboard's own server (`bus.dashboard()`); 0 picks a free one. @default 9465 */
  port?: number;
  /** Address it listens on. Anything but loopback exposes the bus's figures to the network: put it behind a proxy with TLS. @default '127.0.0.1' */
  host?: string;
  /**
   * Bearer token that actions (replay, delete) need, sent by the page as
   * `Authorization: Bearer <token>`. At least 16 characters.
   * @default process.env.RINGBUS_DASHBOARD_TOKEN
   */
  token?: string;
  /** Allow actions that change state (replay and delete dead letters); they need `token` too. @default false */
  actions?: boolean;
  /** Show event payloads of dead letters (untrusted data: the page shows them as text). @default false */
  showPayloads?: boolean;
  /** How often the page's figures are sampled (only while a page is open). @default 1000 */
  sampleMs?: number;
  /** Seconds of history the charts keep. @default 300 */
  historySeconds?: number;
  /** Requests per second one client address may make (burst: twice that); beyond, 429. @default 20 */
  requestsPerSecond?: number;
}

export type ResolvedDashboardOptions = Required<Omit<DashboardOptions, 'token'>> & { token: string | undefined };

export const DASHBOARD_DEFAULTS = Object.freeze({
  port: 9465, host: '127.0.0.1', actions: false, showPayloads: false, sampleMs: 1000, historySeconds: 300, requestsPerSecond: 20,
});

const KEYS = ['port', 'host', 'token', 'actions', 'showPayloads', 'sampleMs', 'historySeconds', 'requestsPerSecond'];

/** Merges over the defaults and checks; a ConfigError names the option and echoes the value. */
export function resolveDashboardOptions(o: DashboardOptions = {}): ResolvedDashboardOptions {
  if (o === null || typeof o !== 'object') throw new ConfigError(`dashboard options must be an object, got ${String(o)}`);
  for (const key of Object.keys(o)) {
    if (!KEYS.includes(key)) throw new ConfigError(`dashboard.${key} is not an option (allowed: ${KEYS.join(', ')})`);
  }
  const r: ResolvedDashboardOptions = { ...DASHBOARD_DEFAULTS, ...o, token: o.token ?? process.env.RINGBUS_DASHBOARD_TOKEN };
  const int = (name: keyof ResolvedDashboardOptions, min: number, max: number): void => {
    const v = r[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new ConfigError(`dashboard.${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
    }
  };
  int('port', 0, 65535);
  int('sampleMs', 100, 60_000);
  int('historySeconds', 10, 86_400);
  int('requestsPerSecond', 1, 10_000);
  if (typeof r.host !== 'string' || r.host.length === 0) throw new ConfigError(`dashboard.host must be a non-empty string, got ${JSON.stringify(r.host)}`);
  for (const name of ['actions', 'showPayloads'] as const) {
    if (typeof r[name] !== 'boolean') throw new ConfigError(`dashboard.${name} must be a boolean, got ${JSON.stringify(r[name])}`);
  }
  if (r.token !== undefined && (typeof r.token !== 'string' || r.token.length < 16)) {
    throw new ConfigError('dashboard.token must be a string of at least 16 characters (or RINGBUS_DASHBOARD_TOKEN)');
  }
  if (r.actions && r.token === undefined) {
    throw new ConfigError('dashboard.actions needs dashboard.token (or RINGBUS_DASHBOARD_TOKEN): actions that change state are never open');
  }
  return r;
}
