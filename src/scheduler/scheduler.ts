/**
 * The scheduler of delayed events (`publish(…, { delayMs | at })`): pending
 * events in one min-heap by due time, one timer for the earliest, and the
 * hand-over of due events to the bus in due order, never before their time,
 * in slices that yield. Bounded by `capacity` (callers wait for room FIFO);
 * with a `path`, durable in the schedule file (schedule_file.ts).
 *
 * An event counts as scheduled until it is handed over (`due()` accepted
 * it); from then on it is the bus's. With a path, it stays in the file until
 * the bus says it settled (`settled(id)`, a done mark): a crash before that
 * delivers it again (at-least-once), so only those ids are tracked.
 */
import { Slicer } from '../dead_letter/line_reader.js';
import type { Logger } from '../logger.js';
import { MAX_TIMER_MS, systemClock, type SchedulerClock } from './clock.js';
import { RoomWaiters } from './room_waiters.js';
import { ScheduleFile } from './schedule_file.js';
import { checkEvent, type ScheduledEvent } from './scheduled_event.js';
import { TimerHeap } from './timer_heap.js';

export interface SchedulerOptions {
  /** Pending (not yet handed over) events at most. */
  capacity: number;
  /** The schedule file: pending events are durable when set. */
  path?: string;
  clock?: SchedulerClock;
  log: Logger;
  /**
   * The bus codec's name ('structured' or '<module URL>#<export>') when it is
   * not 'json': stored with RF_ENCODED payloads, and compared when a file is
   * loaded (events another codec stored stay in the file, not delivered).
   */
  codec?: string;
  /** @internal Compaction threshold of the schedule file (tests). @default 4 MiB */
  compactMinBytes?: number;
  /**
   * A due event for the bus; false when the bus has no room now (the
   * scheduler then awaits whenRoom() and tries the same event again; order by
   * dueAt is kept). If it throws, the event is kept and tried again the same
   * way, after a backoff.
   */
  due: (e: ScheduledEvent) => boolean;
  whenRoom: () => Promise<void>;
}

/** `list()` gives at most this many unless told otherwise. */
export const DEFAULT_LIST_LIMIT = 1000;
export const MAX_LIST_LIMIT = 10_000;
const RETRY_MIN_MS = 10;
const RETRY_MAX_MS = 1000;

type State = 'new' | 'starting' | 'running' | 'stopped';

export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #clock: SchedulerClock;
  readonly #heap = new TimerHeap<ScheduledEvent>();
  readonly #file: ScheduleFile | undefined;
  readonly #waiters: RoomWaiters;
  /** Handed over, not settled yet (durable only: their done mark is still to be written). */
  readonly #unsettled = new Set<string>();
  /** Adds whose fsync is in flight, or failed (kept while the event is ours, for durable()). */
  readonly #writes = new Map<string, Promise<void>>();
  #state: State = 'new';
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #timer: unknown;
  #timerAt = Infinity;
  #immediate: NodeJS.Immediate | undefined;
  #recheck: NodeJS.Immediate | undefined;
  /** idle: the timer (or nothing) is armed; running: handing events over; blocked: waiting for room or a backoff. */
  #pump: 'idle' | 'running' | 'blocked' = 'idle';
  /** Ends a backoff wait early (at stop). */
  #unblock: (() => void) | undefined;

  constructor(o: SchedulerOptions) {
    if (!Number.isSafeInteger(o.capacity) || o.capacity < 1) throw new RangeError(`scheduler capacity must be a positive integer (got ${String(o.capacity)})`);
    if (typeof o.due !== 'function') throw new TypeError(`scheduler option due must be a function (got ${typeof o.due})`);
    if (typeof o.whenRoom !== 'function') throw new TypeError(`scheduler option whenRoom must be a function (got ${typeof o.whenRoom})`);
    if (o.path !== undefined && (typeof o.path !== 'string' || o.path === '')) throw new TypeError(`scheduler path must be a non-empty string (got ${JSON.stringify(o.path)})`);
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.#waiters = new RoomWaiters(this.#clock);
    this.#file = o.path === undefined ? undefined : new ScheduleFile(o.path, { log: o.log, codec: o.codec, compactMinBytes: o.compactMinBytes });
  }

  /** Pending: not yet handed to the bus. */
  get size(): number {
    return this.#heap.size;
  }

  /** Handed to the bus and not settled yet (tracked with a path only). */
  get unsettled(): number {
    return this.#unsettled.size;
  }

  get path(): string | undefined {
    return this.#file?.path;
  }

  /**
   * Opens, locks and loads the file (in slices; events already due are
   * handed over at once, in due order), then arms the timer. Events added
   * before are kept. A start that failed (the file is locked) can be tried again.
   */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`the scheduler ${this.#state === 'stopped' ? 'is stopped: it cannot start again' : 'is started already'}`);
    this.#state = 'starting';
    this.#starting = this.#start();
    await this.#starting;
  }

  async #start(): Promise<void> {
    const file = this.#file;
    if (file !== undefined) {
      let events: ScheduledEvent[];
      try {
        events = await file.open();
      } catch (err) {
        if (this.#is('starting')) this.#state = 'new';
        throw err;
      }
      const slicer = new Slicer();
      let late = 0;
      const now = this.#clock.now();
      for (const e of events) {
        if (this.#is('stopped')) return;
        if (this.#heap.has(e.id)) continue; // added again before start: that add is later in the file too
        this.#heap.push(e);
        if (e.dueAt <= now) late++;
        if (slicer.due()) await slicer.yield();
      }
      if (events.length > 0) {
        this.#o.log.info({ path: file.path, pending: events.length, late, capacity: this.#o.capacity },
          `schedule file ${file.path}: ${events.length} pending event${events.length === 1 ? '' : 's'} loaded` +
          `${late > 0 ? `, ${late} already due (handed over now)` : ''}` +
          `${this.#heap.size > this.#o.capacity ? `; more than scheduler.capacity ${this.#o.capacity}: no room for new ones until they are due` : ''}`);
      }
    }
    if (!this.#is('starting')) return;
    this.#state = 'running';
    this.#arm();
  }

  /** Whether an add() now would be kept. */
  hasRoom(): boolean {
    return this.#state !== 'stopped' && this.#heap.size < this.#o.capacity;
  }

  /** Resolves true when there is room (first come, first served), false after `timeoutMs` or when the scheduler stops. */
  waitForRoom(timeoutMs: number): Promise<boolean> {
    if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
      throw new RangeError(`waitForRoom timeoutMs must be a number >= 0 or Infinity (got ${String(timeoutMs)})`);
    }
    if (this.#state === 'stopped') return Promise.resolve(false);
    if (this.hasRoom() && this.#waiters.length === 0) return Promise.resolve(true);
    if (timeoutMs === 0) return Promise.resolve(false);
    const waiting = this.#waiters.wait(timeoutMs);
    if (this.hasRoom()) this.#wakeSoon(); // room, but earlier callers are first in line
    return waiting;
  }

  /**
   * Keeps `e` until it is due; false (nothing kept) when full or stopped.
   * With a path, its durable write starts now (see durable()). Throws a
   * TypeError for a malformed event and a RangeError for an id already pending.
   */
  add(e: ScheduledEvent): boolean {
    checkEvent(e, this.#o.codec);
    if (this.#state === 'stopped' || this.#heap.size >= this.#o.capacity) return false;
    if (this.#heap.has(e.id)) throw new RangeError(`scheduled event ${JSON.stringify(e.id)} is pending already: event ids are unique`);
    this.#heap.push(e);
    if (this.#file !== undefined) {
      const id = e.id;
      const written = this.#file.add(e);
      this.#writes.set(id, written);
      written.then(() => {
        if (this.#writes.get(id) === written) this.#writes.delete(id);
      }, () => {}); // kept, rejected, for durable(); the file logged the error
    }
    this.#arm();
    return true;
  }

  /** Resolves once e's add line is fsynced (at once without a path, or for an id not being written); rejects with the write error. */
  durable(id: string): Promise<void> {
    return this.#writes.get(id) ?? Promise.resolve();
  }

  /** The bus settled an event handed over (processed, dead-lettered or dropped): with a path, a done mark follows (batched). */
  settled(id: string): void {
    if (this.#file === undefined || !this.#unsettled.delete(id)) return;
    this.#writes.delete(id);
    this.#file.mark('done', id);
  }

  /** Removes a pending event (with a cancel mark in the file); false if it is unknown or already handed over. */
  cancel(id: string): boolean {
    if (this.#state === 'stopped' || this.#heap.remove(id) === undefined) return false;
    this.#writes.delete(id);
    this.#file?.mark('cancelled', id);
    this.#roomFreed();
    return true; // the timer, if armed for it, fires early and re-arms
  }

  get(id: string): ScheduledEvent | undefined {
    return this.#heap.get(id);
  }

  /**
   * Pending events in due order: `limit` (default 1000, at most 10 000) of
   * them after the first `offset`, of `topic` if given. Work is
   * O((offset + limit) log) without a topic, one pass over the pending ones with it.
   */
  list(o: { topic?: string; limit?: number; offset?: number } = {}): ScheduledEvent[] {
    const limit = o.limit ?? DEFAULT_LIST_LIMIT;
    const offset = o.offset ?? 0;
    if (!Number.isSafeInteger(limit) || limit < 0 || limit > MAX_LIST_LIMIT) throw new RangeError(`list limit must be an integer from 0 to ${MAX_LIST_LIMIT} (got ${String(o.limit)})`);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`list offset must be an integer >= 0 (got ${String(o.offset)})`);
    const topic = o.topic;
    const first = this.#heap.first(offset + limit, topic === undefined ? undefined : (e) => e.topic === topic);
    return first.slice(offset);
  }

  /** Pending events (of `topic`, if given: one pass over them). */
  count(o: { topic?: string } = {}): number {
    if (o.topic === undefined) return this.#heap.size;
    let n = 0;
    for (const e of this.#heap.values()) if (e.topic === o.topic) n++;
    return n;
  }

  /**
   * Stops handing events over: the timer is cleared, waiters get false,
   * marks are flushed and fsynced, the lock released. Pending events stay in
   * the file (without a path they are dropped, with a warning).
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#state = 'stopped';
    this.#disarm();
    clearImmediate(this.#recheck);
    this.#unblock?.();
    this.#waiters.dropAll();
    await this.#starting?.catch(() => {});
    const pending = this.#heap.size;
    this.#heap.clear();
    this.#writes.clear();
    if (this.#file === undefined) {
      if (pending > 0) {
        this.#o.log.warn({ pending }, `scheduler stopped with ${pending} delayed event${pending === 1 ? '' : 's'} not yet due: dropped (set scheduler.path to keep them across restarts)`);
      }
      return;
    }
    await this.#file.close();
    this.#unsettled.clear();
  }

  #is(s: State): boolean {
    return this.#state === s;
  }

  /** One timer for the earliest event; an event already due is handed over on the next turn of the loop. */
  #arm(): void {
    if (this.#state !== 'running' || this.#pump !== 'idle') return;
    const head = this.#heap.peek();
    if (head === undefined) return this.#disarm();
    const wait = head.dueAt - this.#clock.now();
    if (wait <= 0) {
      this.#disarm();
      this.#immediate = setImmediate(() => {
        this.#immediate = undefined;
        void this.#run();
      });
      return;
    }
    if (this.#timer !== undefined && this.#timerAt <= head.dueAt) return; // firing for it or earlier: it re-arms then
    this.#disarm();
    this.#timerAt = head.dueAt;
    // Capped: a wait beyond a Node timer's range is armed in steps (each firing early re-arms).
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      void this.#run();
    }, Math.min(Math.ceil(wait), MAX_TIMER_MS));
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    clearImmediate(this.#immediate);
    this.#immediate = undefined;
  }

  /** Hands due events over in due order, in slices that yield; waits for room when the bus has none. */
  async #run(): Promise<void> {
    if (this.#state !== 'running' || this.#pump !== 'idle') return;
    this.#pump = 'running';
    this.#disarm();
    let failures = 0;
    try {
      const slicer = new Slicer();
      for (;;) {
        if (!this.#is('running')) return;
        const e = this.#heap.peek();
        // The clock is asked for every event: a timer that fired early finds its event not due, and re-arms.
        if (e === undefined || e.dueAt > this.#clock.now()) return;
        let taken = false;
        let threw = false;
        // Unsettled before the hand-over: the bus may settle it within due() (no handler, every filter said no).
        const tracked = this.#file !== undefined;
        if (tracked) this.#unsettled.add(e.id);
        try {
          taken = this.#o.due(e);
        } catch (err) {
          threw = true;
          const delay = Math.min(RETRY_MIN_MS * 2 ** failures++, RETRY_MAX_MS);
          const topic = e.topic.length > 64 ? `${e.topic.slice(0, 64)}…` : e.topic;
          this.#o.log.error({ id: e.id, topic, err: (err as Error)?.message ?? String(err) },
            `scheduled event ${e.id} (topic '${topic}'): handing it to the bus threw (${(err as Error)?.message ?? String(err)}); kept, tried again in ${delay} ms`);
        }
        if (taken !== true && tracked) this.#unsettled.delete(e.id);
        if (taken === true) {
          failures = 0;
          if (this.#heap.remove(e.id) === undefined || !tracked) this.#writes.delete(e.id);
          this.#roomFreed();
          if (slicer.due()) await slicer.yield();
          continue;
        }
        this.#pump = 'blocked';
        await this.#waitForBus(threw ? Math.min(RETRY_MIN_MS * 2 ** (failures - 1), RETRY_MAX_MS) : 0);
        this.#pump = 'running';
        await slicer.yield(); // a whenRoom() that resolves at once must not spin without letting the loop run
      }
    } finally {
      this.#pump = 'idle';
      this.#arm();
    }
  }

  /** Until the bus says it has room, then (after a failure) a backoff on the clock; both end at stop. */
  async #waitForBus(backoffMs: number): Promise<void> {
    const stopped = new Promise<void>((resolve) => (this.#unblock = resolve));
    try {
      await Promise.race([stopped, Promise.resolve().then(() => this.#o.whenRoom()).catch((err: unknown) => {
        this.#o.log.warn({ err: (err as Error)?.message ?? String(err) }, `scheduler: waiting for room in the bus failed (${(err as Error)?.message ?? String(err)}); trying again`);
        backoffMs = Math.max(backoffMs, RETRY_MIN_MS);
      })]);
      if (backoffMs > 0 && this.#is('running')) {
        let timer: unknown;
        await Promise.race([stopped, new Promise<void>((resolve) => (timer = this.#clock.setTimer(resolve, backoffMs)))]);
        this.#clock.clearTimer(timer);
      }
    } finally {
      this.#unblock = undefined;
    }
  }

  /** An event left the heap: the first waiters in line get its room. */
  #roomFreed(): void {
    if (this.#waiters.length === 0) return;
    this.#waiters.wake(this.#o.capacity - this.#heap.size);
    this.#wakeSoon();
  }

  /** Once the woken ones have had their turn, room nobody took goes to the next in line. */
  #wakeSoon(): void {
    if (this.#recheck !== undefined || this.#waiters.length === 0) return;
    this.#recheck = setImmediate(() => {
      this.#recheck = undefined;
      if (this.hasRoom() && this.#waiters.length > 0) this.#roomFreed();
    });
  }
}
