/**
 * Dead letters of a cluster in one JetStream stream (`<stream>_DLQ`): the
 * DeadLetterSink the dead-letter queue writes through when the bus has the
 * JetStream transport, so every process sees, and can replay, what any
 * process dead-lettered.
 *
 * One subject per entry (`<prefix>.dlq.e.<entry id>`) with at most one
 * message per subject: a newer version of an entry (a replay that failed
 * again) replaces the older one, and a tombstone (an empty message with a
 * `Ringbus-Dead-Letter: replayed|cleared` header) replaces the entry when it
 * is replayed or cleared. The tombstone's writer deletes it a minute later,
 * and any process that opens the stream deletes older ones, so the stream
 * holds live entries plus the last minute's tombstones.
 *
 * Every process tails the stream (an ordered consumer) and tells its queue
 * of entries added or ended elsewhere. Appends are published at once and
 * confirmed asynchronously: `stored()` resolves once everything appended so
 * far is in the stream, and the transport acknowledges a delivery that was
 * dead-lettered only then (a dead letter is stored before its event leaves
 * the event stream).
 */
import type { JetStreamClient, JetStreamManager, StreamConfig } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { DeadLetterEntry } from '../dead_letter/dead_letter_entry.js';
import type { DeadLetterSink, DeadLetterWatcher, ScanPick } from '../dead_letter/dead_letter_sink.js';
import { parseLine, restoreEntry } from '../dead_letter/line_codec.js';
import type { Logger } from '../logger.js';
import { errorMessage } from '../protocol/error_text.js';
import { RateLimitedLog } from '../rate_limited_log.js';
import type { ResolvedJetStreamOptions } from './options.js';
import { topicSubject } from './subjects.js';

const TOMBSTONE_HEADER = 'Ringbus-Dead-Letter';
/** Sends of one dead letter (or tombstone) before it is given up (~3 s of backing off). */
const MAX_TRIES = 6;
/** How long a tombstone stays for processes tailing the stream (a process reconnecting later reloads at start). */
const TOMBSTONE_TTL_MS = 60_000;

interface Live {
  seq: number;
  bytes: number;
  /** Epoch ms of its last attempt: `newest` scans pick by it. */
  at: number;
}

interface Connection {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  headers: () => { set(k: string, v: string): void };
}

/**
 * The message id of a dead letter: the same for the same failure written by
 * two processes (one died after writing it, the other ran the last attempt
 * again), so a late copy cannot bring back an entry replayed meanwhile; a
 * replay that fails again starts a new first failure, so it is a new message.
 */
function dedupeId(id: string, line: string): string {
  const op = parseLine(line);
  return 'problem' in op || op.op !== 'add' ? id : `${id}:${op.stored.attempts}:${op.stored.firstAttemptAt}`;
}

export class DeadLetterStream implements DeadLetterSink {
  readonly path: string;
  readonly #o: ResolvedJetStreamOptions;
  readonly #stream: string;
  #c: Connection | undefined;
  #log: RateLimitedLog | undefined;
  #errors: Logger | undefined;
  readonly #live = new Map<string, Live>();
  /** Lines this process appended and has not seen come back through the tail yet: an echo is not news. */
  readonly #own = new Map<string, string>();
  #watcher: DeadLetterWatcher | undefined;
  #pending = 0;
  #storedWaiters: (() => void)[] = [];
  #tail: { close(): Promise<void | Error> } | undefined;
  readonly #tombstoneTimers = new Set<NodeJS.Timeout>();
  #closed = false;
  #opened = false;
  /** Dead letters (or tombstones) given up after MAX_TRIES sends. */
  unstored = 0;
  #tailEnded = false;

  constructor(o: ResolvedJetStreamOptions) {
    this.#o = o;
    this.#stream = `${o.stream}_DLQ`;
    this.path = `nats stream ${this.#stream}`;
  }

  /** The transport connected: the sink can open. */
  attach(c: Connection): void {
    this.#c = c;
  }

  get liveCount(): number {
    return this.#live.size;
  }

  has(id: string): boolean {
    return this.#live.has(id);
  }

  #subject(id: string): string {
    return `${this.#o.subjectPrefix}.dlq.e.${topicSubject(id)}`;
  }

  /** Makes sure the stream exists, reads what is live in it, and starts tailing it. */
  async open(log: Logger): Promise<void> {
    if (this.#c === undefined) throw new Error('the JetStream transport is not connected');
    this.#log = new RateLimitedLog(log, 5000);
    this.#errors = log;
    await this.#ensureStream();
    await this.#startTail();
    this.#opened = true;
  }

  /** After the server came back: the stream again if it lost it, and the tail again if it ended. */
  async recover(): Promise<void> {
    if (!this.#opened || this.#closed) return;
    await this.#ensureStream();
    if (this.#tailEnded) await this.#startTail();
  }

  async #ensureStream(): Promise<void> {
    const c = this.#c!;
    const o = this.#o;
    const subjects = [`${o.subjectPrefix}.dlq.>`];
    let config: StreamConfig | undefined;
    try {
      config = (await c.jsm.streams.info(this.#stream)).config;
    } catch {
      await c.jsm.streams.add({
        name: this.#stream, subjects, storage: o.storage as StreamConfig['storage'], num_replicas: o.replicas, max_msgs_per_subject: 1,
        retention: 'limits' as StreamConfig['retention'], discard: 'old' as StreamConfig['discard'],
      }).catch(async (err: unknown) => {
        // Another process made it meanwhile.
        config = (await c.jsm.streams.info(this.#stream).catch(() => { throw err; })).config;
      });
    }
    if (config !== undefined && (config.max_msgs_per_subject !== 1 || !subjects.every((s) => config!.subjects?.includes(s)))) {
      throw new Error(`dead-letter stream '${this.#stream}' exists with other settings (subjects ${JSON.stringify(config.subjects)}, ` +
        `max_msgs_per_subject ${config.max_msgs_per_subject}); it needs ${JSON.stringify(subjects)} and 1`);
    }
  }

  /** Reads the stream from its start; resolves once caught up, then keeps applying what others write. */
  async #startTail(): Promise<void> {
    const c = this.#c!;
    const info = await c.jsm.streams.info(this.#stream);
    const last = info.state.last_seq;
    let caughtUp!: () => void;
    const ready = new Promise<void>((resolve) => (caughtUp = resolve));
    if (info.state.messages === 0) caughtUp();
    // An ordered consumer: from the first message, in order, recreated by the client after a reconnect.
    const consumer = await c.js.consumers.get(this.#stream);
    const messages = await consumer.consume();
    this.#tail = messages;
    this.#tailEnded = false;
    void (async () => {
      try {
        for await (const m of messages) {
          this.#apply(m.subject, m.seq, m.headers?.get(TOMBSTONE_HEADER) ?? '', m.data, m.info.timestampNanos / 1e6);
          if (m.seq >= last || m.info.pending === 0) caughtUp();
        }
      } catch (err) {
        if (!this.#closed) this.#log?.warn({ stream: this.#stream, err: errorMessage(err) }, 'dead-letter stream tail ended');
      }
      this.#tailEnded = true;
      caughtUp();
    })();
    await ready;
  }

  #apply(subject: string, seq: number, tombstone: string, data: Uint8Array, writtenAt: number): void {
    if (tombstone !== '') {
      const id = this.#idOf(subject);
      if (Date.now() - writtenAt > TOMBSTONE_TTL_MS) void this.#c?.jsm.streams.deleteMessage(this.#stream, seq, false).catch(() => undefined);
      if (id !== undefined && this.#live.delete(id)) this.#watcher?.removed(id);
      return;
    }
    const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
    const op = parseLine(text);
    if ('problem' in op || op.op !== 'add') {
      this.#log?.warn({ stream: this.#stream, seq, problem: 'problem' in op ? op.problem : op.op }, 'a message in the dead-letter stream is not a dead letter; skipped');
      return;
    }
    this.#live.set(op.id, { seq, bytes: data.byteLength, at: op.stored.lastAttemptAt });
    if (this.#own.get(op.id) === text) {
      this.#own.delete(op.id);
      return;
    }
    this.#watcher?.added(restoreEntry(op.stored), data.byteLength);
  }

  #idOf(subject: string): string | undefined {
    const prefix = `${this.#o.subjectPrefix}.dlq.e.`;
    if (!subject.startsWith(prefix)) return undefined;
    return subject.slice(prefix.length).split('.').map((t) => (t === '~' ? '' : t.replace(/~([0-9A-F]{2})/g, '%$1'))).map(decodeURIComponent).join('.');
  }

  watch(watcher: DeadLetterWatcher): void {
    this.#watcher = watcher;
  }

  /** Publishes the entries now; `stored()` says when they are in the stream. */
  append(entries: readonly { id: string; line: string }[]): void {
    for (const { id, line } of entries) {
      this.#own.set(id, line);
      this.#publish(this.#subject(id), Buffer.from(line), undefined, 0, dedupeId(id, line));
    }
  }

  mark(op: 'replayed' | 'cleared', ids: readonly string[] | 'all'): void {
    const list = ids === 'all' ? [...this.#live.keys()] : ids;
    for (const id of list) {
      this.#live.delete(id);
      this.#publish(this.#subject(id), new Uint8Array(0), op);
    }
  }

  /** Resolves once everything appended or marked so far is in the stream. */
  stored(): Promise<void> | undefined {
    if (this.#pending === 0) return undefined;
    return new Promise((resolve) => this.#storedWaiters.push(resolve));
  }

  #publish(subject: string, data: Uint8Array, tombstone: string | undefined, tries = 0, msgID?: string): void {
    const c = this.#c;
    if (c === undefined || this.#closed) return;
    if (tries === 0) this.#pending++;
    const headers = tombstone === undefined ? undefined : c.headers();
    headers?.set(TOMBSTONE_HEADER, tombstone!);
    c.js.publish(subject, data, { headers: headers as never, timeout: this.#o.publishTimeoutMs, ...(msgID ? { msgID } : {}) }).then((ack) => {
      if (tombstone !== undefined) this.#expire(ack.seq);
      if (--this.#pending === 0) for (const resolve of this.#storedWaiters.splice(0)) resolve();
    }, (err: unknown) => {
      if (tries + 1 >= MAX_TRIES) {
        // Not storable (too big for the server, no stream): the acknowledgements waiting for it go on, and the entry
        // stays in this process's memory only, as with a dead-letter file that cannot be written.
        this.#errors?.error({ subject, tries: tries + 1, err: errorMessage(err) }, 'could not store a dead letter in JetStream; kept in memory only');
        this.unstored++;
        if (--this.#pending === 0) for (const resolve of this.#storedWaiters.splice(0)) resolve();
        return;
      }
      this.#log?.warn({ subject, tries: tries + 1, err: errorMessage(err) }, 'dead letter not stored in JetStream yet; sending again');
      const t = setTimeout(() => {
        this.#tombstoneTimers.delete(t);
        this.#publish(subject, data, tombstone, tries + 1, msgID);
      }, Math.min(2000, 100 * 2 ** Math.min(tries, 5)));
      this.#tombstoneTimers.add(t);
    });
  }

  /** A tombstone goes once every live process had time to hear of it. */
  #expire(seq: number): void {
    const t = setTimeout(() => {
      this.#tombstoneTimers.delete(t);
      void this.#c?.jsm.streams.deleteMessage(this.#stream, seq, false).catch(() => undefined);
    }, TOMBSTONE_TTL_MS);
    t.unref();
    this.#tombstoneTimers.add(t);
  }

  async scan(pick: ScanPick, onEntry: (entry: DeadLetterEntry, bytes: number) => void | Promise<void>): Promise<void> {
    let chosen: [string, Live][];
    if (pick.ids !== undefined) {
      chosen = [];
      for (const id of pick.ids) {
        const l = this.#live.get(id);
        if (l !== undefined) chosen.push([id, l]);
      }
    } else {
      chosen = [...this.#live].sort((a, b) => a[1].seq - b[1].seq);
      if (pick.newest !== undefined) {
        let count = 0;
        let bytes = 0;
        let from = chosen.length;
        while (from > 0 && (count === 0 || (count < pick.newest.count && bytes + chosen[from - 1][1].bytes <= pick.newest.bytes))) {
          from--;
          count++;
          bytes += chosen[from][1].bytes;
        }
        chosen = chosen.slice(from);
      }
    }
    for (const [id, l] of chosen) {
      const m = await this.#c!.jsm.streams.getMessage(this.#stream, { seq: l.seq }).catch(() => null);
      if (m === null || m === undefined || m.data.byteLength === 0) continue;
      const op = parseLine(Buffer.from(m.data).toString('utf8'));
      if ('problem' in op || op.op !== 'add' || op.id !== id) continue;
      await onEntry(restoreEntry(op.stored), m.data.byteLength);
    }
  }

  close(): void {
    this.#closed = true;
    void this.#tail?.close();
    for (const t of this.#tombstoneTimers) clearTimeout(t);
    this.#tombstoneTimers.clear();
    this.#watcher = undefined;
    for (const resolve of this.#storedWaiters.splice(0)) resolve();
  }
}
