/**
 * Append-only registry in shared memory: topic names and worker-handler
 * modules, each given a small integer id that records carry instead of
 * strings. Workers learn new entries lazily, when a record names an id they
 * have not read yet, so registration never has to reach every worker by
 * message (Piscina cannot address one worker).
 *
 *   Int32 words                     bytes from ENTRIES_START
 *   +---------+------------+------  +------------+----------+---------------+--
 *   | COUNT   | USED_BYTES | ...    | entryBytes | kind     | utf8 JSON ... | ...
 *   +---------+------------+------  +------------+----------+---------------+--
 *
 * Entries are written first and COUNT is published after, with Atomics.store.
 * Ids are deduplicated on the main thread (one per topic routed to a worker,
 * one per module#export#name), so the registry grows with the code base, not
 * with traffic. The buffer is a growable SharedArrayBuffer: it starts at
 * REGISTRY_BYTES and doubles as needed up to MAX_REGISTRY_BYTES (limits.ts);
 * a reader re-creates its byte view when an entry lies past it (an Int32Array
 * over a growable buffer tracks its length by itself).
 */
import { MAX_REGISTRY_BYTES, REGISTRY_BYTES } from './limits.js';

export const REG_COUNT = 0;
export const REG_USED = 1;
export const REG_ENTRIES_START = 64;

export const ENTRY_TOPIC = 1;
export const ENTRY_HANDLER = 2;

export interface HandlerEntry {
  kind: typeof ENTRY_HANDLER;
  module: string;
  exportName: string;
  name: string;
  /** Index of the handler's circuit breaker (its topic's) in the shared words, -1 without breakers. */
  breaker: number;
}
export interface TopicEntry {
  kind: typeof ENTRY_TOPIC;
  topic: string;
}
export type RegistryEntry = HandlerEntry | TopicEntry;

export class SharedRegistryReader {
  readonly #sab: SharedArrayBuffer;
  readonly #i32: Int32Array;
  #bytes: Buffer;
  readonly #entries: RegistryEntry[] = [];
  #offset = REG_ENTRIES_START;

  constructor(sab: SharedArrayBuffer) {
    this.#sab = sab;
    this.#i32 = new Int32Array(sab);
    this.#bytes = Buffer.from(sab, 0, sab.byteLength);
  }

  get(id: number): RegistryEntry {
    if (id >= this.#entries.length) this.#catchUp();
    const entry = this.#entries[id];
    if (entry === undefined) throw new Error(`ringbus: registry has no entry ${id}`);
    return entry;
  }

  #catchUp(): void {
    const count = Atomics.load(this.#i32, REG_COUNT);
    while (this.#entries.length < count) {
      const len = this.#i32[this.#offset >> 2];
      const kind = this.#i32[(this.#offset >> 2) + 1];
      if (this.#offset + 8 + len > this.#bytes.length) this.#bytes = Buffer.from(this.#sab, 0, this.#sab.byteLength);
      const json = this.#bytes.toString('utf8', this.#offset + 8, this.#offset + 8 + len);
      this.#entries.push({ kind, ...JSON.parse(json) } as RegistryEntry);
      this.#offset += (8 + len + 7) & ~7;
    }
  }
}

export class SharedRegistryWriter {
  readonly sab: SharedArrayBuffer;
  readonly #i32: Int32Array;
  #bytes: Buffer;
  readonly #maxBytes: number;
  readonly #ids = new Map<string, number>();
  readonly #reader: SharedRegistryReader;
  #offset = REG_ENTRIES_START;
  #count = 0;

  constructor(bytes = REGISTRY_BYTES, maxBytes = MAX_REGISTRY_BYTES) {
    this.sab = new SharedArrayBuffer(bytes, { maxByteLength: Math.max(bytes, maxBytes) });
    this.#maxBytes = Math.max(bytes, maxBytes);
    this.#i32 = new Int32Array(this.sab);
    this.#bytes = Buffer.from(this.sab, 0, this.sab.byteLength);
    this.#reader = new SharedRegistryReader(this.sab);
  }

  topicId(topic: string): number {
    return this.#intern(`t:${topic}`, ENTRY_TOPIC, { topic });
  }

  /** A worker handler's id: one per handler of each topic (each has its own breaker). */
  handlerId(topic: string, module: string, exportName: string, name: string, breaker: number): number {
    // The breaker index is part of the key: a handler registered again after its breaker was freed gets a fresh entry.
    // JSON, not a joined string: a module URL or an export name may hold any separator.
    return this.#intern(`h:${JSON.stringify([topic, module, exportName, name, breaker])}`, ENTRY_HANDLER, { module, exportName, name, breaker });
  }

  entry(id: number): RegistryEntry {
    return this.#reader.get(id);
  }

  /** The breaker index of a worker handler id (-1 for anything else). */
  breakerOf(id: number): number {
    const entry = this.#reader.get(id);
    return entry.kind === ENTRY_HANDLER ? entry.breaker : -1;
  }

  #intern(key: string, kind: number, body: object): number {
    const known = this.#ids.get(key);
    if (known !== undefined) return known;
    const json = JSON.stringify(body);
    const len = Buffer.byteLength(json);
    const need = (8 + len + 7) & ~7;
    if (this.#offset + need > this.sab.byteLength) this.#grow(this.#offset + need);
    this.#i32[this.#offset >> 2] = len;
    this.#i32[(this.#offset >> 2) + 1] = kind;
    this.#bytes.write(json, this.#offset + 8, 'utf8');
    this.#offset += need;
    const id = this.#count++;
    Atomics.store(this.#i32, REG_USED, this.#offset);
    Atomics.store(this.#i32, REG_COUNT, this.#count);
    this.#ids.set(key, id);
    return id;
  }

  #grow(atLeast: number): void {
    if (atLeast > this.#maxBytes) {
      throw new RangeError(
        `ringbus: the shared registry of topics and worker handlers is full (${this.#maxBytes} bytes, ${this.#count} entries): ` +
          'it holds one entry per topic routed to a worker handler and per worker handler of each topic, and entries are never freed',
      );
    }
    let size = this.sab.byteLength;
    while (size < atLeast) size *= 2;
    this.sab.grow(Math.min(size, this.#maxBytes));
    this.#bytes = Buffer.from(this.sab, 0, this.sab.byteLength);
  }
}
