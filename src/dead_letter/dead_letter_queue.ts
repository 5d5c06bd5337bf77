/**
 * The dead-letter queue users see (`bus.deadLetters`): entries in memory,
 * eviction, replay and clear.
 */
import type { DeadLetterEntry } from './dead_letter_entry.js';
import type { DeadLetterSink } from './dead_letter_sink.js';

/** @internal */
export interface DeadLetterQueueOptions {
  /** Entries kept in memory; the oldest is evicted (and counted) beyond it. */
  capacity: number;
  sink: DeadLetterSink | undefined;
  /** Publishes entries again, to their handler only, with fresh attempts; resolves how many were accepted. */
  republish: (entries: DeadLetterEntry[]) => number;
}

/** `bus.deadLetters`: what users see of the dead-letter queue. */
export interface DeadLetters {
  /** Entries in memory. */
  readonly size: number;
  /** Entries pushed out of memory by newer ones (still in the file, with a path). */
  readonly evicted: number;
  /** Oldest first. */
  list(): DeadLetterEntry[];
  /** One entry by its id. */
  get(id: string): DeadLetterEntry | undefined;
  /** Publishes one entry (or all) again to its handler only, with fresh attempts and the original event id; resolves how many. */
  replay(id?: string): Promise<number>;
  /** Forgets every entry (marked cleared in the file too). */
  clear(): void;
}

/**
 * Deliveries that exhausted their retries. Dead letters never re-enter the
 * bus by themselves: only `replay` sends them back.
 */
export class DeadLetterQueue implements DeadLetters {
  readonly #o: DeadLetterQueueOptions;
  readonly #entries = new Map<string, DeadLetterEntry>();
  #evicted = 0;

  /** @internal The engine builds one per bus. */
  constructor(options: DeadLetterQueueOptions) {
    this.#o = options;
  }

  /** Entries in memory. */
  get size(): number {
    return this.#entries.size;
  }

  /** Entries pushed out of memory by newer ones (still in the file, with a path). */
  get evicted(): number {
    return this.#evicted;
  }

  /** Oldest first. */
  list(): DeadLetterEntry[] {
    return [...this.#entries.values()];
  }

  get(id: string): DeadLetterEntry | undefined {
    return this.#entries.get(id);
  }

  /** Publishes one entry (or all) again to its handler, with fresh attempts; resolves how many were re-published. */
  async replay(id?: string): Promise<number> {
    let picked: DeadLetterEntry[];
    if (id === undefined) picked = this.list();
    else {
      const entry = this.#entries.get(id);
      if (entry === undefined) throw new RangeError(`no dead letter with id '${id}'`);
      picked = [entry];
    }
    const accepted = this.#o.republish(picked);
    const done = picked.slice(0, accepted);
    this.#o.sink?.mark('replayed', done.map((e) => e.id));
    for (const e of done) this.#entries.delete(e.id);
    return done.length;
  }

  /** Forgets every entry (marked cleared in the file too). */
  clear(): void {
    this.#o.sink?.mark('cleared', 'all');
    this.#entries.clear();
  }

  /** @internal Entries loaded from the sink at start. */
  restore(entries: readonly DeadLetterEntry[]): void {
    for (const e of entries) this.#keep(e);
  }

  /** @internal Persists (if there is a sink) and keeps new entries; throws if persisting fails. */
  add(entries: readonly DeadLetterEntry[]): void {
    this.#o.sink?.append(entries);
    for (const e of entries) this.#keep(e);
  }

  #keep(entry: DeadLetterEntry): void {
    this.#entries.set(entry.id, entry);
    while (this.#entries.size > this.#o.capacity) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
      this.#evicted++;
    }
  }
}
