/**
 * Every circuit breaker of a bus, one per handler of each topic, with their
 * shared-memory words (protocol/breaker_words.ts), the deliveries each holds
 * while open, and the one timer that moves open circuits to half-open on
 * time and folds the workers' success counts into the breakers' windows.
 * Only main changes states.
 */
import { Fifo } from '../fifo.js';
import { ADMIT_TRIAL, BREAKERS_INITIAL, admit, breakerBytes, permitWord, slowWord, stateWord, successWord } from '../protocol/breaker_words.js';
import { MAX_BREAKERS } from '../protocol/limits.js';
import { CIRCUIT_CODE, CircuitBreaker, type BreakerSettings, type CircuitState, type Clock, type LastFailure } from './circuit_breaker.js';

const realClock: Clock = { now: () => performance.now() };

export interface BreakerHooks<H> {
  /**
   * Nothing is in flight (no record, retry or held delivery can still name a
   * breaker index): a freed index may be handed out again only then.
   */
  idle(): boolean;
  /** A circuit moved. */
  moved(topic: string, handler: string, from: CircuitState, to: CircuitState): void;
  /** Held deliveries may run again (the circuit closed, or a half-open permit is free). */
  release(items: H[]): void;
}

interface Entry<H> {
  readonly breaker: CircuitBreaker;
  readonly index: number;
  readonly held: Fifo<H>;
  /** Sums of the slots' success and slow counters last folded into the window. */
  successesSeen: number;
  slowSeen: number;
  /** While open: fires when trials are due. Keeps the process alive only while deliveries are held. */
  timer: NodeJS.Timeout | undefined;
}

export class BreakerBoard<H = unknown> {
  /** States and permits (protocol/breaker_words.ts). */
  readonly sab: SharedArrayBuffer;
  /** Per slot: the worker's success and slow-call counts per breaker. */
  readonly counterSabs: SharedArrayBuffer[];
  readonly #words: Int32Array;
  readonly #counters: Int32Array[];
  readonly #options: BreakerSettings | false;
  readonly #clock: Clock;
  readonly #hooks: BreakerHooks<H>;
  readonly #byKey = new Map<string, Entry<H>>();
  /** Live breakers by index; a freed index is undefined until reused. */
  readonly #byIndex: (Entry<H> | undefined)[] = [];
  readonly #freeIndexes: number[] = [];
  #heldCount = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: BreakerSettings | false, slots: number, hooks: BreakerHooks<H>, clock: Clock = realClock) {
    this.#options = options;
    this.#hooks = hooks;
    this.#clock = clock;
    const growable = (): SharedArrayBuffer =>
      options === false ? new SharedArrayBuffer(8) : new SharedArrayBuffer(breakerBytes(BREAKERS_INITIAL), { maxByteLength: breakerBytes(MAX_BREAKERS) });
    this.sab = growable();
    this.counterSabs = Array.from({ length: slots }, growable);
    // Length-tracking views: they see the buffers grow.
    this.#words = new Int32Array(this.sab);
    this.#counters = this.counterSabs.map((sab) => new Int32Array(sab));
  }

  get enabled(): boolean {
    return this.#options !== false;
  }

  /** Whether an open circuit holds its deliveries (true) or refuses them as failed attempts. */
  get holds(): boolean {
    return this.#options !== false && this.#options.hold;
  }

  /** Deliveries held by open circuits now. */
  get heldCount(): number {
    return this.#heldCount;
  }

  /** The shared index of the breaker of a handler on a topic (created on first use); -1 when breakers are off. */
  index(topic: string, name: string): number {
    if (this.#options === false) return -1;
    const key = `${topic}\u0000${name}`;
    let entry = this.#byKey.get(key);
    if (entry === undefined) {
      // A freed index is reused only while nothing is in flight: a record or outcome of the unregistered
      // handler still names it, and must not count for (or be held by) the new one.
      const index = this.#freeIndexes.length > 0 && this.#hooks.idle() ? this.#freeIndexes.pop()! : this.#byIndex.length;
      if (index >= MAX_BREAKERS) {
        throw new RangeError(
          `more than ${MAX_BREAKERS} handlers with circuit breakers registered on one bus (one per handler of each topic; ` +
            'unregistering frees them), registering a handler on topic \'' + topic + '\'',
        );
      }
      if (stateWord(index) >= this.#words.length) this.#grow(index);
      const breaker = new CircuitBreaker(topic, name, this.#options, this.#clock, (from, to) => this.#moved(entry!, from, to));
      entry = { breaker, index, held: new Fifo<H>(), successesSeen: 0, slowSeen: 0, timer: undefined };
      // A reused index: its words start closed, and its slots' counters from where they are.
      Atomics.store(this.#words, stateWord(index), 0);
      Atomics.store(this.#words, permitWord(index), 0);
      this.#sums(entry);
      this.#byKey.set(key, entry);
      this.#byIndex[index] = entry;
    }
    return entry.index;
  }

  has(topic: string, name: string): boolean {
    return this.#byKey.has(`${topic}\u0000${name}`);
  }

  /** The handler was unregistered: its breaker is freed (what it still holds is released to run, or be dropped). */
  free(topic: string, name: string): void {
    const key = `${topic}\u0000${name}`;
    const entry = this.#byKey.get(key);
    if (entry === undefined) return;
    this.#byKey.delete(key);
    this.#byIndex[entry.index] = undefined;
    this.#freeIndexes.push(entry.index);
    clearTimeout(entry.timer);
    Atomics.store(this.#words, stateWord(entry.index), 0);
    this.#releaseHeld(entry, Infinity);
  }

  /**
   * The state of a handler's circuit. Without `topic`, over every topic the
   * handler is on: the least healthy (open, then half-open, then closed).
   * Undefined when no handler of that name has a breaker.
   */
  state(name: string, topic?: string): CircuitState | undefined {
    if (topic !== undefined) return this.#byKey.get(`${topic}\u0000${name}`)?.breaker.state;
    let worst: CircuitState | undefined;
    for (const entry of this.#byIndex) {
      const breaker = entry?.breaker;
      if (breaker === undefined || breaker.name !== name) continue;
      const s = breaker.state;
      if (s === 'open' || worst === undefined || (s === 'half_open' && worst === 'closed')) worst = s;
    }
    return worst;
  }

  /** Main-side admission (inline handlers): ADMIT_RUN, ADMIT_TRIAL (a permit taken) or ADMIT_DENY. */
  admit(index: number): number {
    const entry = index < 0 ? undefined : this.#byIndex[index];
    if (entry === undefined) return 0;
    void entry.breaker.state; // moves a due open circuit to half-open first
    return admit(this.#words, index);
  }

  /** Whether a new command may be sent: not while the circuit is open. */
  allows(index: number): boolean {
    return index < 0 || this.#byIndex[index]?.breaker.state !== 'open';
  }

  /** An inline call succeeded (workers' successes are counted in shared memory instead). */
  onInlineSuccess(index: number, slow: boolean, admitted: number): void {
    if (index < 0) return;
    if (admitted === ADMIT_TRIAL) this.onTrialSuccess(index);
    else this.#byIndex[index]?.breaker.recordSuccesses(1, slow ? 1 : 0);
  }

  /** A half-open trial succeeded (a worker's, or an inline one): close, or let the next trial through. */
  onTrialSuccess(index: number): void {
    const entry = index < 0 ? undefined : this.#byIndex[index];
    if (entry === undefined) return;
    if (entry.breaker.trialSucceeded()) return; // closed: #moved released what was held
    if (entry.breaker.state === 'half_open') {
      Atomics.add(this.#words, permitWord(index), 1);
      this.#releaseHeld(entry, 1);
    }
  }

  onFailure(index: number, failure: LastFailure): void {
    const entry = index < 0 ? undefined : this.#byIndex[index];
    if (entry === undefined) return;
    this.#fold(entry);
    entry.breaker.recordFailure(failure);
  }

  /** Closes the circuit of `name` on `topic` now (what it held runs); false when it has none or it is closed. */
  reset(topic: string, name: string): boolean {
    const entry = this.#byKey.get(`${topic}\u0000${name}`);
    if (entry === undefined) return false;
    this.#fold(entry);
    return entry.breaker.reset();
  }

  /** Keeps a delivery until its circuit lets it run; releases it at once if it already does. */
  hold(index: number, item: H): void {
    const entry = this.#byIndex[index];
    if (entry === undefined) {
      this.#hooks.release([item]); // unregistered meanwhile: nothing to wait for
      return;
    }
    entry.held.push(item);
    this.#heldCount++;
    entry.timer?.ref(); // held work is pending work: the process waits for the trials
    const state = entry.breaker.state;
    if (state === 'closed') this.#releaseHeld(entry, Infinity);
    else if (state === 'half_open' && Atomics.load(this.#words, permitWord(index)) > 0) this.#releaseHeld(entry, 1);
  }

  /** Takes every held delivery (the bus stops). */
  takeHeld(): H[] {
    const all: H[] = [];
    for (const entry of this.#byIndex) if (entry) all.push(...entry.held.clear());
    this.#heldCount = 0;
    return all;
  }

  /** The handler's last own failure (for a held delivery's dead letter). */
  lastFailure(index: number): LastFailure | undefined {
    return index < 0 ? undefined : this.#byIndex[index]?.breaker.lastFailure;
  }

  /** Every breaker's state code (0 closed, 1 open, 2 half-open), by topic and handler. */
  snapshot(): { topic: string; handler: string; state: number }[] {
    const out: { topic: string; handler: string; state: number }[] = [];
    for (const e of this.#byIndex) if (e) out.push({ topic: e.breaker.topic, handler: e.breaker.name, state: CIRCUIT_CODE[e.breaker.state] });
    return out;
  }

  /** Starts the timer that keeps windows current and opens half-open on time (one per bus, unref'd). */
  start(): void {
    if (this.#options === false || this.#timer !== undefined) return;
    const tickMs = Math.max(10, Math.min(1000, Math.floor(this.#options.windowMs / 10)));
    this.#timer = setInterval(() => this.tick(), tickMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const entry of this.#byIndex) clearTimeout(entry?.timer);
  }

  /** Folds workers' successes into every window, expires old buckets, moves due circuits to half-open. */
  tick(): void {
    for (const entry of this.#byIndex) {
      if (entry === undefined) continue;
      this.#fold(entry);
      entry.breaker.expire();
      void entry.breaker.state;
    }
  }

  /** Folds the successes workers counted since the last fold into the breaker's window. */
  #fold(entry: Entry<H>): void {
    const seen = entry.successesSeen;
    const slowSeen = entry.slowSeen;
    this.#sums(entry);
    entry.breaker.recordSuccesses(entry.successesSeen - seen, entry.slowSeen - slowSeen);
  }

  #sums(entry: Entry<H>): void {
    let successes = 0;
    let slow = 0;
    for (const counters of this.#counters) {
      successes += Atomics.load(counters, successWord(entry.index));
      slow += Atomics.load(counters, slowWord(entry.index));
    }
    entry.successesSeen = successes;
    entry.slowSeen = slow;
  }

  #moved(entry: Entry<H>, from: CircuitState, to: CircuitState): void {
    const i = entry.index;
    // Permits first: a worker that sees HALF_OPEN must find them there.
    Atomics.store(this.#words, permitWord(i), to === 'half_open' && this.#options ? this.#options.halfOpenMaxCalls : 0);
    Atomics.store(this.#words, stateWord(i), CIRCUIT_CODE[to]);
    clearTimeout(entry.timer);
    entry.timer = undefined;
    if (to === 'open') this.#wakeWhenDue(entry);
    this.#hooks.moved(entry.breaker.topic, entry.breaker.name, from, to);
    if (to === 'closed') this.#releaseHeld(entry, Infinity);
    else if (to === 'half_open' && this.#options) this.#releaseHeld(entry, this.#options.halfOpenMaxCalls);
  }

  /** Doubles every buffer until `index` fits: before any thread can see that index. */
  #grow(index: number): void {
    let bytes = this.sab.byteLength;
    while (bytes < breakerBytes(index + 1)) bytes *= 2;
    bytes = Math.min(bytes, breakerBytes(MAX_BREAKERS));
    this.sab.grow(bytes);
    for (const sab of this.counterSabs) sab.grow(bytes);
  }

  /** Reads an open breaker's state when its recovery time is due, which moves it to half-open. */
  #wakeWhenDue(entry: Entry<H>): void {
    const dueIn = (entry.breaker.reopensAt ?? 0) - this.#clock.now();
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      // Timers run on a coarser clock and may fire a fraction of a millisecond early: look again then.
      if (entry.breaker.state === 'open') this.#wakeWhenDue(entry);
    }, Math.max(1, Math.ceil(dueIn)));
    if (entry.held.length === 0) entry.timer.unref();
  }

  #releaseHeld(entry: Entry<H>, max: number): void {
    const items: H[] = [];
    while (items.length < max && entry.held.length > 0) items.push(entry.held.shift()!);
    if (items.length === 0) return;
    this.#heldCount -= items.length;
    this.#hooks.release(items);
  }
}

