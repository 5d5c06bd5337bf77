/**
 * The dead-letter queue users see (`bus.deadLetters`): entries in memory,
 * bounded by count and bytes (the oldest evicted, counted and reported at
 * warn at most once a second), the file behind it, replay and clear.
 */
import { BusStoppedError, NotStartedError } from '../errors.js';
import type { DeadLetterEntry } from './dead_letter_entry.js';
import type { DeadLetterSink } from './dead_letter_sink.js';
import { addLine, EncodedPayload, type StoredPayloadCodec } from './line_codec.js';
import { Slicer } from './line_reader.js';
import type { Logger } from '../logger.js';

/** @internal */
export interface DeadLetterQueueOptions {
  /** Entries kept in memory; the oldest is evicted (and counted) beyond it. */
  capacity: number;
  /** Bytes of entries kept in memory; the oldest are evicted beyond it. */
  maxBytes: number;
  sink: DeadLetterSink | undefined;
  /** For evictions (warn, rate-limited) and corrupt lines. */
  log: Logger;
  /**
   * The bus's codec when it is 'structured' or a custom one: payloads are
   * stored in the file as its bytes, and decoded with it when read back.
   */
  codec?: StoredPayloadCodec | undefined;
  /** Throws a RangeError naming the entry when it cannot be replayed (its handler is not registered, its id is too long). */
  checkReplayable: (entry: DeadLetterEntry) => void;
  /**
   * Publishes one entry again, to its handler only, with fresh attempts and
   * its event id; false when the bus has no room now (or is stopping).
   * `done(true)` is called once that delivery succeeded. If it fails for
   * good, the bus adds a dead letter with the same entry id and the new
   * attempts (it supersedes this one), then calls `done(false)`.
   */
  republish: (entry: DeadLetterEntry, done: (ok: boolean) => void) => boolean;
}

/**
 * `bus.deadLetters`: what users see of the dead-letter queue.
 *
 * @group Dead letters
 */
export interface DeadLetters {
  /** Entries in memory. */
  readonly size: number;
  /** Entries pushed out of memory by newer ones, or left in the file at start (still in the file, with a path). */
  readonly evicted: number;
  /** The entries in memory, oldest first (with a path, `ringbus dlq list` reads them all from the file). */
  list(): DeadLetterEntry[];
  /** One entry in memory by its id. */
  get(id: string): DeadLetterEntry | undefined;
  /**
   * Publishes one entry (or all: those in memory and, with a path, those
   * only in the file) again to its handler only, with fresh attempts and the
   * original event id, and waits for each delivery's outcome. Resolves how
   * many succeeded: each is marked replayed (in the file too) as soon as it
   * succeeds; one that fails again stays, with its new attempts. Rejects
   * (sending nothing) if an entry's handler is not registered.
   */
  replay(id?: string): Promise<number>;
  /** Forgets every entry (marked cleared in the file too). */
  clear(): void;
  /** Forgets one entry in memory (marked cleared in the file too); false when there is none with that id. */
  delete(id: string): boolean;
}

/** What a replay did with the entries it picked. @internal */
export interface ReplayReport {
  picked: number;
  /** Delivered successfully: no longer dead. */
  replayed: number;
  /** Failed again: dead-lettered again under the same id, with the new attempts. */
  failed: number;
  /** Sent, but the bus stopped before the delivery ended: still dead. */
  unfinished: number;
  /** Could not be sent (e.g. a payload over this bus's limit): still dead. */
  skipped: { id: string; reason: string }[];
}

type Outcome = 'replayed' | 'failed' | 'unfinished' | 'skipped';
const EVICTION_REPORT_MS = 1000;
const MAX_ROOM_WAIT_MS = 50;
const REPLAY_SLICE_MS = 2;

/**
 * Deliveries that exhausted their retries. Dead letters never re-enter the
 * bus by themselves: only `replay` sends them back.
 */
export class DeadLetterQueue implements DeadLetters {
  readonly #o: DeadLetterQueueOptions;
  readonly #memory = new Map<string, { entry: DeadLetterEntry; bytes: number }>();
  #bytes = 0;
  #evicted = 0;
  #unreported = 0;
  #lastReport = -Infinity;
  #reportTimer: NodeJS.Timeout | undefined;
  #state: 'new' | 'running' | 'stopped' = 'new';
  /** Replayed entries whose delivery has not ended: entry id → its outcome. */
  readonly #pending = new Map<string, { outcome: Promise<Outcome>; settle: (o: Outcome) => void }>();

  /** @internal The engine builds one per bus. */
  constructor(options: DeadLetterQueueOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#memory.size;
  }

  get evicted(): number {
    return this.#evicted;
  }

  list(): DeadLetterEntry[] {
    return [...this.#memory.values()].map((h) => h.entry);
  }

  get(id: string): DeadLetterEntry | undefined {
    return this.#memory.get(id)?.entry;
  }

  async replay(id?: string): Promise<number> {
    return (await this.replayWithReport(id)).replayed;
  }

  /** @internal `replay`, saying what became of every entry picked. */
  async replayWithReport(id?: string): Promise<ReplayReport> {
    if (this.#state === 'new') throw new NotStartedError('deadLetters.replay()');
    if (this.#state !== 'running') throw new BusStoppedError('cannot replay dead letters: the bus is stopped');
    const report: ReplayReport = { picked: 0, replayed: 0, failed: 0, unfinished: 0, skipped: [] };
    const outcomes: Promise<Outcome>[] = [];
    // Short slices: the bus runs the replayed deliveries in its own slices between them.
    const slicer = new Slicer(REPLAY_SLICE_MS);
    const send = async (entry: DeadLetterEntry): Promise<void> => {
      report.picked++;
      outcomes.push(this.#pending.get(entry.id)?.outcome ?? (await this.#send(entry, report)).outcome);
      if (slicer.due()) await slicer.yield();
    };
    const sink = this.#o.sink;
    if (id !== undefined) {
      let entry = this.#memory.get(id)?.entry;
      if (entry === undefined && sink?.has(id)) await sink.scan({ ids: [id] }, (e) => void (entry = this.#decoded(e)));
      if (entry === undefined) throw new RangeError(`no dead letter with id '${id}'`);
      this.#o.checkReplayable(entry);
      await send(entry);
    } else {
      const picked = this.list();
      const inFile = sink === undefined ? 0 : picked.reduce((n, e) => n + (sink.has(e.id) ? 1 : 0), 0);
      // All or nothing: every entry is checked (in slices) before any is sent.
      for (const e of picked) {
        this.#o.checkReplayable(e);
        if (slicer.due()) await slicer.yield();
      }
      if (sink === undefined || sink.liveCount === inFile) {
        for (const e of picked) await send(e); // everything is in memory
      } else {
        // Some are only in the file: read them (streaming) to check them too, then send.
        const ids: string[] = [];
        await sink.scan({}, (e) => {
          if (!this.#memory.has(e.id)) this.#o.checkReplayable(e);
          ids.push(e.id);
        });
        for (const e of picked) if (!sink.has(e.id)) await send(e);
        await sink.scan({ ids }, (e) => send(this.#decoded(e)));
      }
    }
    for (const o of await Promise.all(outcomes)) if (o !== 'skipped') report[o]++;
    return report;
  }

  /** Sends one entry once the bus has room; resolves when it is sent (or given up), with its outcome to come. */
  async #send(entry: DeadLetterEntry, report: ReplayReport): Promise<{ outcome: Promise<Outcome> }> {
    let settle!: (o: Outcome) => void;
    const outcome = new Promise<Outcome>((resolve) => (settle = resolve));
    this.#pending.set(entry.id, { outcome, settle });
    const end = (o: Outcome): void => {
      if (this.#pending.get(entry.id)?.outcome !== outcome) return;
      this.#pending.delete(entry.id);
      settle(o);
    };
    const done = (ok: boolean): void => {
      if (ok) this.#replayed(entry);
      end(ok ? 'replayed' : 'failed');
    };
    for (let waitMs = 1; ;) {
      if (this.#state !== 'running') {
        end('unfinished');
        break;
      }
      let accepted: boolean;
      try {
        const payload = entry.event.payload;
        if (payload instanceof EncodedPayload) {
          const ours = this.#o.codec?.name ?? 'json';
          throw new Error(`its payload was stored by codec ${payload.codec}, which this bus's codec (${ours}) cannot decode`);
        }
        accepted = this.#o.republish(entry, done);
      } catch (err) {
        const reason = (err as Error)?.message ?? String(err);
        report.skipped.push({ id: entry.id, reason });
        this.#o.log.warn({ id: entry.id, err: reason }, `dead letter ${entry.id} could not be replayed: ${reason}`);
        end('skipped');
        break;
      }
      if (accepted) break;
      // No room now: wait (backing off) for the bus to drain some.
      await new Promise((resolve) => setTimeout(resolve, waitMs));
      waitMs = Math.min(waitMs * 2, MAX_ROOM_WAIT_MS);
    }
    return { outcome };
  }

  /** Its delivery succeeded: marked replayed in the file at once, and forgotten. */
  #replayed(entry: DeadLetterEntry): void {
    try {
      if (this.#state === 'running') this.#o.sink?.mark('replayed', [entry.id]);
    } catch (err) {
      this.#o.log.error({ id: entry.id, path: this.#o.sink?.path, err: (err as Error).message },
        `could not mark dead letter ${entry.id} as replayed in ${this.#o.sink?.path}; it will be replayed again after a restart`);
    }
    this.#forget(entry.id);
  }

  delete(id: string): boolean {
    if (!this.#memory.has(id)) return false;
    if (this.#state === 'running') this.#o.sink?.mark('cleared', [id]);
    this.#forget(id);
    return true;
  }

  clear(): void {
    if (this.#state === 'running') this.#o.sink?.mark('cleared', 'all');
    this.#memory.clear();
    this.#bytes = 0;
  }

  /** @internal The bus starts: opens the sink and loads the newest entries still dead that fit in memory. */
  async start(): Promise<void> {
    const sink = this.#o.sink;
    if (sink !== undefined) {
      await sink.open(this.#o.log);
      // Shared by a cluster: what other processes add or end from now on is kept or forgotten here too.
      sink.watch?.({
        added: (e, bytes) => {
          if (this.#state !== 'stopped') this.#keep(this.#decoded(e), bytes, false);
        },
        removed: (id) => this.#forget(id),
      });
      try {
        await sink.scan({ newest: { count: this.#o.capacity, bytes: this.#o.maxBytes } }, (e, bytes) => this.#keep(this.#decoded(e), bytes, true));
      } catch (err) {
        sink.close();
        this.#memory.clear();
        this.#bytes = 0;
        throw err;
      }
      const left = sink.liveCount - this.#memory.size;
      this.#evicted += left;
      if (left > 0) {
        this.#o.log.info({ path: sink.path, loaded: this.#memory.size, inFileOnly: left },
          `${sink.liveCount} dead letters in ${sink.path}; the newest ${this.#memory.size} are in memory (deadLetter.capacity, deadLetter.maxBytes)`);
      }
    }
    this.#state = 'running';
  }

  /** @internal The bus stopped: replays still waiting end unfinished, the sink is closed. */
  stop(): void {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    for (const p of [...this.#pending.values()]) p.settle('unfinished');
    this.#pending.clear();
    clearTimeout(this.#reportTimer);
    this.#reportEvictions();
    this.#o.sink?.close();
  }

  /** @internal Entries kept in memory only (their file could not be written). */
  restore(entries: readonly DeadLetterEntry[]): void {
    for (const e of entries) this.#keep(e, addLine(e, this.#o.codec).length + 1, false);
  }

  /** @internal Persists (if there is a sink) and keeps new entries; throws if persisting fails. */
  add(entries: readonly DeadLetterEntry[]): void {
    const lines = entries.map((entry) => ({ id: entry.id, line: addLine(entry, this.#o.codec) }));
    if (this.#o.sink !== undefined && this.#state !== 'new') this.#o.sink.append(lines);
    entries.forEach((e, i) => this.#keep(e, lines[i].line.length + 1, false));
  }

  /**
   * An entry read from the file with its payload as published again: codec
   * bytes decoded with this bus's codec. One it cannot decode (another codec,
   * or bytes its codec refuses) keeps the EncodedPayload: listed, kept in
   * the file, not replayable.
   */
  #decoded(entry: DeadLetterEntry): DeadLetterEntry {
    const payload = entry.event.payload;
    const codec = this.#o.codec;
    if (!(payload instanceof EncodedPayload) || !payload.decodableBy(codec)) return entry;
    try {
      return { ...entry, event: { ...entry.event, payload: codec!.decode(payload.bytes) } };
    } catch (err) {
      this.#o.log.warn({ id: entry.id, codec: payload.codec, err: (err as Error)?.message ?? String(err) },
        `dead letter ${entry.id}: its payload could not be decoded with codec ${codec!.name}; it stays encoded`);
      return entry;
    }
  }

  #forget(id: string): void {
    const held = this.#memory.get(id);
    if (held === undefined) return;
    this.#memory.delete(id);
    this.#bytes -= held.bytes;
  }

  #keep(entry: DeadLetterEntry, bytes: number, loading: boolean): void {
    this.#forget(entry.id); // a replay that failed again: the new entry replaces it, as the newest
    this.#memory.set(entry.id, { entry, bytes });
    this.#bytes += bytes;
    let evicted = 0;
    while (this.#memory.size > 1 && (this.#memory.size > this.#o.capacity || this.#bytes > this.#o.maxBytes)) {
      this.#forget(this.#memory.keys().next().value as string);
      evicted++;
    }
    if (evicted === 0 || loading) return;
    this.#evicted += evicted;
    this.#unreported += evicted;
    const wait = this.#lastReport + EVICTION_REPORT_MS - performance.now();
    if (wait <= 0) this.#reportEvictions();
    else this.#reportTimer ??= setTimeout(() => {
      this.#reportTimer = undefined;
      this.#reportEvictions();
    }, wait).unref();
  }

  #reportEvictions(): void {
    const n = this.#unreported;
    if (n === 0) return;
    this.#unreported = 0;
    this.#lastReport = performance.now();
    const path = this.#o.sink?.path;
    this.#o.log.warn({ evicted: n, evictedTotal: this.#evicted, capacity: this.#o.capacity, maxBytes: this.#o.maxBytes, path },
      `${n} dead letter${n === 1 ? '' : 's'} evicted from memory since the last report (deadLetter.capacity ${this.#o.capacity}, ` +
      `deadLetter.maxBytes ${this.#o.maxBytes}); ${path === undefined ? 'they are gone (set deadLetter.path to keep them)' : `they are still in ${path}`}`);
  }
}
