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
 * with traffic. Its size is REGISTRY_BYTES (limits.ts).
 */
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
  /** Index of the handler's circuit breaker in the shared board, -1 without breakers. */
  breaker: number;
}
export interface TopicEntry {
  kind: typeof ENTRY_TOPIC;
  topic: string;
}
export type RegistryEntry = HandlerEntry | TopicEntry;

export class SharedRegistryReader {
  readonly #i32: Int32Array;
  readonly #bytes: Buffer;
  readonly #entries: RegistryEntry[] = [];
  #offset = REG_ENTRIES_START;

  constructor(sab: SharedArrayBuffer) {
    this.#i32 = new Int32Array(sab);
    this.#bytes = Buffer.from(sab);
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
      const json = this.#bytes.toString('utf8', this.#offset + 8, this.#offset + 8 + len);
      this.#entries.push({ kind, ...JSON.parse(json) } as RegistryEntry);
      this.#offset += (8 + len + 7) & ~7;
    }
  }
}

export class SharedRegistryWriter {
  readonly sab: SharedArrayBuffer;
  readonly #i32: Int32Array;
  readonly #bytes: Buffer;
  readonly #ids = new Map<string, number>();
  readonly #reader: SharedRegistryReader;
  #offset = REG_ENTRIES_START;
  #count = 0;

  constructor(bytes: number) {
    this.sab = new SharedArrayBuffer(bytes);
    this.#i32 = new Int32Array(this.sab);
    this.#bytes = Buffer.from(this.sab);
    this.#reader = new SharedRegistryReader(this.sab);
  }

  topicId(topic: string): number {
    return this.#intern(`t:${topic}`, ENTRY_TOPIC, { topic });
  }

  handlerId(module: string, exportName: string, name: string, breaker: number): number {
    return this.#intern(`h:${module}#${exportName}#${name}`, ENTRY_HANDLER, { module, exportName, name, breaker });
  }

  entry(id: number): RegistryEntry {
    return this.#reader.get(id);
  }

  #intern(key: string, kind: number, body: object): number {
    const known = this.#ids.get(key);
    if (known !== undefined) return known;
    const json = JSON.stringify(body);
    const len = Buffer.byteLength(json);
    const need = (8 + len + 7) & ~7;
    if (this.#offset + need > this.sab.byteLength) {
      throw new RangeError(
        `ringbus: the shared registry of topics and worker handlers is full (${this.sab.byteLength} bytes, ` +
          `${this.#count} entries): it holds one entry per topic routed to a worker and per worker handler, and entries are never freed`,
      );
    }
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
}
