/**
 * The JetStream transport's options, declared once with their defaults, and
 * their resolution (merge over the defaults, validate naming the option and
 * echoing the value). Pure: loading this file never loads the NATS client,
 * so the core can validate `transport: { jetstream: {...} }` at construction.
 */

/** `transport: jetstream({...})`: where the stream is and how events travel through it. @group Options */
export interface JetStreamOptions {
  /**
   * NATS server URL(s); the client fails over between them and reconnects by itself.
   * @default process.env.NATS_URL, else 'nats://127.0.0.1:4222'
   */
  servers?: string | string[];
  /** Token authentication. @default none */
  token?: string;
  /** User/password authentication (both or neither). @default none */
  user?: string;
  pass?: string;
  /**
   * The stream events go through. Created at start() when missing (Interest
   * retention: a message stays until every handler's consumer acknowledged
   * it); an existing stream must have Interest retention and take the subjects.
   * @default 'RINGBUS'
   */
  stream?: string;
  /**
   * First subject token: events of topic `t` are stored on `<prefix>.ev.<t>`.
   * Buses that share a prefix (and stream) form one cluster.
   * @default 'ringbus'
   */
  subjectPrefix?: string;
  /** Stream replicas when the stream is created (a JetStream cluster of ≥ that many servers). 1–5. @default 1 */
  replicas?: number;
  /** Stream storage when created. @default 'file' */
  storage?: 'file' | 'memory';
  /**
   * Messages older than this are removed even if a handler never took them
   * (a consumer whose processes are all gone); 0 keeps them until acknowledged.
   * @default 604800000 (7 days)
   */
  maxAgeMs?: number;
  /** Most bytes the stream stores (the oldest go first); -1 for no limit. @default -1 */
  maxBytes?: number;
  /**
   * The stream's de-duplication window: a publish retried within it (same
   * message id) is stored once.
   * @default 120000
   */
  duplicateWindowMs?: number;
  /**
   * How long a process may hold a batch of deliveries unacknowledged before
   * the server gives it to another process. Long handlers do not need a
   * longer one: a process signals progress (`working`) every ackWaitMs / 3.
   * After a process dies, its deliveries reach the survivors after this.
   * @default 30000
   */
  ackWaitMs?: number;
  /**
   * Batches (messages) one handler's consumer may have unacknowledged across
   * the cluster. At this limit the server delivers nothing more to that
   * handler, silently: keep it above processes × (queue.capacity / batchEvents + 4).
   * @default 1000
   */
  maxAckPending?: number;
  /**
   * Most events carried in one stream message. Bigger batches cost less per
   * event on both sides (one publish ack, one delivery, one ack each); 1 sends
   * one message per event (~30k/s per process at best). A batch is also sealed
   * at the end of each event-loop turn, so at low rates batches stay small.
   * @default 1024
   */
  batchEvents?: number;
  /** Most bytes of one stream message (also capped by the server's max_payload). @default 262144 */
  batchBytes?: number;
  /**
   * Events accepted by publish() and not yet stored by the server. Full:
   * `publish()` returns false and `publishAsync()` waits (up to its timeoutMs),
   * also while the server is unreachable.
   * @default 65536
   */
  publishWindow?: number;
  /** How long one publish waits for the server's acknowledgement before it is sent again (same id). @default 5000 */
  publishTimeoutMs?: number;
  /**
   * How long `execute()` waits for the reply of a command run by another
   * process when it gives no `timeoutMs` (then `CommandTimeoutError`).
   * @default 60000
   */
  commandTimeoutMs?: number;
  /** How long start() tries to reach a server before it fails. @default 10000 */
  connectTimeoutMs?: number;
  /** The connection's name, as the server's monitoring shows it. @default 'ringbus' */
  name?: string;
}

export interface ResolvedJetStreamOptions extends Required<Omit<JetStreamOptions, 'token' | 'user' | 'pass' | 'servers'>> {
  servers: string[];
  token: string | undefined;
  user: string | undefined;
  pass: string | undefined;
}

/** Defaults of JetStreamOptions (`servers` is read from NATS_URL when resolved). @group Options */
export const JETSTREAM_DEFAULTS = Object.freeze({
  stream: 'RINGBUS',
  subjectPrefix: 'ringbus',
  replicas: 1,
  storage: 'file' as 'file' | 'memory',
  maxAgeMs: 7 * 24 * 3600 * 1000,
  maxBytes: -1,
  duplicateWindowMs: 120_000,
  ackWaitMs: 30_000,
  maxAckPending: 1000,
  batchEvents: 1024,
  batchBytes: 256 * 1024,
  publishWindow: 65_536,
  publishTimeoutMs: 5000,
  commandTimeoutMs: 60_000,
  connectTimeoutMs: 10_000,
  name: 'ringbus',
});

const KEYS = ['servers', 'token', 'user', 'pass', ...Object.keys(JETSTREAM_DEFAULTS)];
const show = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : Array.isArray(v) ? JSON.stringify(v) : String(v));

function int(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`transport.jetstream.${name} must be an integer, got ${show(v)}`);
  if (v < min || v > max) throw new RangeError(`transport.jetstream.${name} must be in [${min}, ${max}], got ${show(v)}`);
  return v;
}

function str(name: string, v: unknown, pattern?: RegExp, what?: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new TypeError(`transport.jetstream.${name} must be a non-empty string, got ${show(v)}`);
  if (pattern !== undefined && !pattern.test(v)) throw new RangeError(`transport.jetstream.${name} ${what}, got ${show(v)}`);
  return v;
}

/** Merges over the defaults and validates; every error names the option and echoes the value. */
export function resolveJetStreamOptions(options: JetStreamOptions | true | undefined, env: NodeJS.ProcessEnv = process.env): ResolvedJetStreamOptions {
  const o = options === true || options === undefined ? {} : options;
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new TypeError(`transport.jetstream must be an object or true, got ${show(o)}`);
  for (const key of Object.keys(o)) {
    if (!KEYS.includes(key)) throw new TypeError(`transport.jetstream.${key} is not an option (allowed: ${KEYS.join(', ')})`);
  }
  const m = { ...JETSTREAM_DEFAULTS, ...(o as object) } as JetStreamOptions & typeof JETSTREAM_DEFAULTS;
  const given = m.servers ?? env.NATS_URL ?? 'nats://127.0.0.1:4222';
  const servers = (typeof given === 'string' ? given.split(',').map((s) => s.trim()) : given) as unknown;
  if (!Array.isArray(servers) || servers.length === 0 || servers.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new TypeError(`transport.jetstream.servers must be a URL or a non-empty array of URLs, got ${show(m.servers)}`);
  }
  // NATS names: no whitespace, dots, wildcards or path separators.
  str('stream', m.stream, /^[A-Za-z0-9_-]{1,200}$/, 'may hold only letters, digits, _ and - (at most 200)');
  str('subjectPrefix', m.subjectPrefix, /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'must be dot-separated tokens of letters, digits, _ and -');
  int('replicas', m.replicas, 1, 5);
  if (m.storage !== 'file' && m.storage !== 'memory') throw new RangeError(`transport.jetstream.storage must be 'file' or 'memory', got ${show(m.storage)}`);
  int('maxAgeMs', m.maxAgeMs, 0, 2 ** 52);
  if (m.maxBytes !== -1) int('maxBytes', m.maxBytes, 1024, 2 ** 52);
  int('duplicateWindowMs', m.duplicateWindowMs, 100, 2 ** 40);
  int('ackWaitMs', m.ackWaitMs, 1000, 86_400_000);
  int('maxAckPending', m.maxAckPending, 1, 1_000_000);
  int('batchEvents', m.batchEvents, 1, 65_536);
  int('batchBytes', m.batchBytes, 1024, 64 * 1024 * 1024);
  int('publishWindow', m.publishWindow, 1, 1 << 30);
  int('publishTimeoutMs', m.publishTimeoutMs, 100, 600_000);
  int('connectTimeoutMs', m.connectTimeoutMs, 100, 600_000);
  int('commandTimeoutMs', m.commandTimeoutMs, 1, 86_400_000);
  str('name', m.name);
  for (const k of ['token', 'user', 'pass'] as const) if (m[k] !== undefined) str(k, m[k]);
  if ((m.user === undefined) !== (m.pass === undefined)) throw new TypeError('transport.jetstream.user and transport.jetstream.pass go together; one is missing');
  if (m.maxAgeMs !== 0 && m.maxAgeMs < m.duplicateWindowMs) {
    throw new RangeError(`transport.jetstream.duplicateWindowMs (${m.duplicateWindowMs}) must not exceed maxAgeMs (${m.maxAgeMs})`);
  }
  return Object.freeze({ ...m, servers: servers as string[], token: m.token, user: m.user, pass: m.pass });
}
