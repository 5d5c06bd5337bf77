/**
 * The pool's slots on the main thread's side. A slot is what one drain task
 * holds (its gate words, outcome ring and metrics mailbox); at most
 * `maxThreads` tasks exist, one per worker, so events wait in the lanes and
 * never in Piscina's queue. Owns task submission, waking parked workers and
 * how many may run (the pool's adapted size, #growLimit), waiting for
 * PROGRESS without blocking (and how much of it main asks for), what happens
 * when a task ends, and the metrics flush handshake.
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { FLUSH_REQUEST, MAIN_WAITING, POOL_GROW, PROGRESS, SLEEPERS, SLOT_BUSY, SLOT_CURSOR, SLOT_EPOCH, SLOT_FLUSHED, SLOT_HANDLER_INDEX,
  SLOT_PROCESSED, SLOT_SETTLED, WAIT_BATCHES, WAIT_REPORTS, WAKE, WAKE_PENDING, slotWord } from '../protocol/layout.js';
import { errorMessage } from '../protocol/error_text.js';
import { readMailbox, resetMailbox, type WorkerMetricsReport } from '../protocol/metrics_mailbox.js';
import { resetOutcomes } from '../protocol/outcome_ring.js';
import type { DrainTask } from '../protocol/task.js';
import { recoverBatch } from './crash_recovery.js';
import { slotCount } from './shared_memory.js';
import type { EngineParts } from './parts.js';
import type { WorkerPool } from './worker_pool.js';

/** Records a producer that does not yield may publish while parked workers wait for the queued wake-up. */
const SYNC_WAKE_AFTER = 128;
/** How long a metrics read waits for workers to publish what they measured (see flushMetrics). */
export const FLUSH_WAIT_MS = 100;
/** Main's event loop busier than this (0–1) counts as saturated for pool sizing; read at most every ELU_EVERY_MS. */
const MAIN_BUSY = 0.9;
const ELU_EVERY_MS = 50;
const CORES = availableParallelism();
/** #growLimit reads the clock once in this many calls (a mask). */
const LIMIT_EVERY = 63;
/** How long main waits on PROGRESS before looking anyway (a safety net, not the normal path). */
const PROGRESS_POLL_MS = 1000;
/** Pause before submitting again after a task failed outside any batch (e.g. the runtime did not load). */
const TASK_FAILURE_BACKOFF_MS = 100;

export class SlotPool {
  readonly #p: EngineParts;
  readonly #control: Int32Array;
  readonly #freeSlots: number[];
  /** Slots whose task is running. */
  readonly active = new Set<number>();
  readonly #abort: (AbortController | undefined)[] = [];
  /** Per slot: the last worker report read whole (for a read that races a write). */
  readonly #lastReports: (WorkerMetricsReport | undefined)[] = [];
  readonly #flushWaiters: { request: number; resolve: () => void }[] = [];
  #pool: WorkerPool | undefined;
  #progressArmed = false;
  #progressSeen = 0;
  #taskBackoff: NodeJS.Timeout | undefined;

  constructor(p: EngineParts) {
    this.#p = p;
    this.#control = p.control;
    const slots = slotCount(p.options);
    this.#freeSlots = Array.from({ length: slots }, (_, i) => slots - 1 - i);
  }

  get pool(): WorkerPool | undefined {
    return this.#pool;
  }

  attach(pool: WorkerPool): void {
    this.#pool = pool;
  }

  /** Takes the pool away (to destroy it): no task is submitted from here on. */
  detach(): WorkerPool | undefined {
    const pool = this.#pool;
    this.#pool = undefined;
    clearTimeout(this.#taskBackoff);
    clearTimeout(this.#regrow);
    return pool;
  }

  /**
   * A record landed: wake a parked worker, or start a task, as far as the
   * pool may grow (#growLimit). The wake (a futex system call, 15–45 µs here)
   * happens once per parking, after the publishing code's turn (a
   * microtask), so a burst published in one turn wakes a worker once and no
   * publish() call pays for it. But a producer loop that never yields
   * (`for (…) bus.publish(…)`) would keep its microtask from running, and
   * parked workers asleep, for the whole loop: after SYNC_WAKE_AFTER records
   * with a wake still pending, publish wakes a worker itself. A woken worker
   * clears WAKE_PENDING, so the next record may wake another (a worker busy
   * with a long handler must not keep cheap records from idle peers).
   */
  signalWork(): void {
    if (!this.#p.lifecycle.dispatching || this.#pool === undefined) return;
    if (Atomics.load(this.#control, SLEEPERS) > 0) {
      if (Atomics.compareExchange(this.#control, WAKE_PENDING, 0, 1) === 0) {
        this.#sincePending = 0;
        // Capped with a worker awake: it takes the record; WAKE_PENDING stays set until a worker parks or wakes.
        if (this.#awake() === 0 || this.#awake() < this.#growLimit()) queueMicrotask(this.#wakeOne);
      } else if (++this.#sincePending >= SYNC_WAKE_AFTER) {
        this.#sincePending = 0;
        if (this.#awake() === 0 || this.#awake() < this.#growLimit()) this.wake(1);
      }
    } else if (this.#mayStartTask()) {
      // No worker parked: start one when none runs, or one more while records wait and the pool may grow.
      if (this.active.size === 0 || (this.#awake() < this.#growLimit() && this.#p.lanes.backlog() > this.#awake())) this.#submit();
    }
  }

  /** Workers running a task and not parked: the pool's size right now, as stats() shows it. */
  #awake(): number {
    return Math.max(0, this.active.size - this.#sleepers());
  }

  get activeWorkers(): number {
    return this.#awake();
  }

  /**
   * The most workers worth running now: `pool.maxThreads`, except while the
   * main thread is itself saturated (its event loop more than MAIN_BUSY busy,
   * e.g. a producer publishing flat out to cheap handlers) and a worker per
   * core would leave it no core of its own: another worker would then only
   * slow the producer, so the pool stays at cores − 1. A maxThreads above the
   * core count (handlers that block rather than compute) is never capped.
   * Workers read the same decision from POOL_GROW before they wake a peer.
   */
  #growLimit(): number {
    const max = this.#p.options.pool.maxThreads;
    // Cheap on the publish path: the clock is read once in LIMIT_EVERY calls (a capped pool also re-reads on a timer).
    if ((++this.#limitCalls & LIMIT_EVERY) !== 0 && this.#limit !== Infinity) return this.#limit;
    const now = performance.now();
    if (now - this.#eluAt >= ELU_EVERY_MS) {
      const elu = performance.eventLoopUtilization(this.#elu);
      this.#elu = performance.eventLoopUtilization();
      this.#eluAt = now;
      this.#limit = max === CORES && elu.utilization > MAIN_BUSY ? Math.max(1, CORES - 1) : max;
      Atomics.store(this.#control, POOL_GROW, this.#limit < max ? 0 : 1);
      // Capped: look again soon even if main hears of nothing (no publish, no batch it waits for), so a backlog
      // left by a burst gets every core once the producer rests.
      if (this.#limit < max && this.#regrow === undefined) {
        this.#regrow = setTimeout(() => {
          this.#regrow = undefined;
          this.#limitCalls = LIMIT_EVERY; // the next call reads the clock
          this.pump();
        }, 2 * ELU_EVERY_MS).unref();
      }
    }
    return this.#limit;
  }

  #regrow: NodeJS.Timeout | undefined;
  #limitCalls = 0;

  #elu = performance.eventLoopUtilization();
  #eluAt = 0;
  #limit = Infinity;

  /** Records signalled since the pending wake was queued. */
  #sincePending = 0;

  /** Room for one more drain task: a free slot (at most `maxThreads` tasks), and no back-off after a failed task. */
  #mayStartTask(): boolean {
    return this.#freeSlots.length > 0 && this.#taskBackoff === undefined;
  }

  readonly #wakeOne = (): void => this.wake(1);

  wake(count: number): void {
    Atomics.add(this.#control, WAKE, 1);
    Atomics.notify(this.#control, WAKE, count);
  }

  /** Moves overflow into the rings, and makes sure enough workers run for what waits. */
  pump(): void {
    const p = this.#p;
    p.lanes.flushOverflow();
    if (!p.lifecycle.dispatching || this.#pool === undefined) return;
    const backlog = p.lanes.backlog();
    if (backlog === 0) return;
    const limit = this.#growLimit();
    while (this.#mayStartTask() && this.#sleepers() === 0 && this.#awake() < limit && backlog > this.#awake()) this.#submit();
    const more = Math.min(this.#sleepers(), limit - this.#awake());
    if (more > 0) this.wake(more);
  }

  /** Aborts a slot's task: Piscina terminates its worker (the only way to stop a synchronous infinite loop). */
  abort(slot: number, reason: unknown): void {
    this.#abort[slot]?.abort(reason);
  }

  /** Events the running tasks settled implicitly, plus those of tasks that ended. */
  workerSettled(): number {
    let n = this.#p.counters.retiredSettled;
    for (const slot of this.active) n += Atomics.load(this.#control, slotWord(slot, SLOT_SETTLED));
    return n;
  }

  workerProcessed(): number {
    let n = this.#p.counters.retiredProcessed;
    for (const slot of this.active) n += Atomics.load(this.#control, slotWord(slot, SLOT_PROCESSED));
    return n;
  }

  /** The latest metrics report of every running task. */
  liveReports(): WorkerMetricsReport[] {
    const reports: WorkerMetricsReport[] = [];
    for (const slot of this.active) {
      // A read that races the worker's write falls back to the last good one: counters never go backwards.
      const report = readMailbox(this.#p.memory.metrics[slot]) ?? this.#lastReports[slot];
      this.#lastReports[slot] = report;
      if (report !== undefined) reports.push(report);
    }
    return reports;
  }

  /**
   * Asks every running worker to publish its metrics now, and resolves once
   * each has (or its task ended, which publishes too): so the numbers read
   * after drain() include every settled event.
   */
  flushMetrics(waitMs = Infinity): Promise<void> {
    // Also with timing off: per-handler success counts travel the same way.
    if (this.active.size === 0) return Promise.resolve();
    const request = Atomics.add(this.#control, FLUSH_REQUEST, 1) + 1;
    this.wantProgress();
    this.wake(Infinity);
    return new Promise((resolve) => {
      // A worker answers between batches: one inside a long handler would hold a scrape for as long. A metrics
      // read waits at most FLUSH_WAIT_MS and goes on with what workers published (their running batch is missing).
      const timer = waitMs === Infinity ? undefined : setTimeout(() => {
        const at = this.#flushWaiters.findIndex((w) => w.resolve === done);
        if (at >= 0) this.#flushWaiters.splice(at, 1);
        resolve();
      }, waitMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.#flushWaiters.push({ request, resolve: done });
      this.#checkFlushes();
    });
  }

  /** The pool is gone: nobody will answer a flush any more. */
  releaseFlushWaiters(): void {
    for (const { resolve } of this.#flushWaiters.splice(0)) resolve();
  }

  #sleepers(): number {
    return Atomics.load(this.#control, SLEEPERS);
  }

  #submit(): void {
    const slot = this.#freeSlots.pop();
    if (slot === undefined || this.#pool === undefined) return;
    const p = this.#p;
    const c = this.#control;
    for (const field of [SLOT_BUSY, SLOT_SETTLED, SLOT_PROCESSED, SLOT_CURSOR]) Atomics.store(c, slotWord(slot, field), 0);
    Atomics.store(c, slotWord(slot, SLOT_HANDLER_INDEX), -1);
    // A new task has answered no flush request yet.
    Atomics.store(c, slotWord(slot, SLOT_FLUSHED), Atomics.load(c, FLUSH_REQUEST) - 1);
    resetMailbox(p.memory.metrics[slot]);
    resetOutcomes(c, slot);
    this.active.add(slot);
    const { maxBatch, maxThreads, lingerMs } = p.options.pool;
    const task: DrainTask = {
      kind: 'drain', slot, epoch: Atomics.load(c, slotWord(slot, SLOT_EPOCH)), maxBatch, threads: maxThreads, lingerMs,
      keepFailedRecords: p.options.retry !== false || p.options.deadLetter !== false,
      maxResultBytes: p.options.queue.maxPayloadBytes,
      metrics: p.options.metrics.timing,
      breakers: p.breakers.enabled,
      holdOpenCircuits: p.breakers.holds,
      slowCallMs: (p.options.circuitBreaker && p.options.circuitBreaker.slowCallMs) || 0,
    };
    const abort = new AbortController();
    this.#abort[slot] = abort;
    p.watchdog.taskStarted(slot);
    this.#pool.run(task, { signal: abort.signal }).then(
      () => this.#taskEnded(slot, undefined),
      (err: unknown) => this.#taskEnded(slot, err),
    );
    this.#armProgress();
    p.watchdog.start();
  }

  #taskEnded(slot: number, err: unknown): void {
    const p = this.#p;
    const c = this.#control;
    this.#abort[slot] = undefined;
    const timedOut = p.watchdog.takeTimedOut(slot);
    // From here the task's worker, if Piscina has not stopped it yet (an aborted task is rejected before its
    // thread ends), must not claim, run or report any more: it checks EPOCH before each claim and record.
    Atomics.add(c, slotWord(slot, SLOT_EPOCH), 1);
    p.outcomes.drainSlot(slot);
    const crashedMidBatch = err !== undefined && Atomics.load(c, slotWord(slot, SLOT_BUSY)) === 1;
    const ours = p.lifecycle.terminated; // we destroyed the pool: not a crash
    if (err !== undefined && !ours && timedOut === undefined) p.counters.workerCrashes++;
    if (crashedMidBatch && !ours) recoverBatch(p, slot, err, timedOut);
    p.counters.retiredSettled += Atomics.load(c, slotWord(slot, SLOT_SETTLED));
    p.counters.retiredProcessed += Atomics.load(c, slotWord(slot, SLOT_PROCESSED));
    const report = readMailbox(p.memory.metrics[slot]) ?? this.#lastReports[slot];
    if (report !== undefined) p.metrics.retire(report);
    this.#lastReports[slot] = undefined;
    resetMailbox(p.memory.metrics[slot]);
    for (const field of [SLOT_BUSY, SLOT_SETTLED, SLOT_PROCESSED]) Atomics.store(c, slotWord(slot, field), 0);
    this.active.delete(slot);
    this.#freeSlots.push(slot);
    if (err !== undefined && !crashedMidBatch && p.lifecycle.running) {
      p.log.error({ err: errorMessage(err) }, 'worker task failed outside a batch; retrying shortly');
      this.#taskBackoff = setTimeout(() => {
        this.#taskBackoff = undefined;
        this.pump();
      }, TASK_FAILURE_BACKOFF_MS);
    }
    this.#afterProgress();
  }

  /**
   * Main waits for PROGRESS without blocking: Atomics.waitAsync on the value
   * PROGRESS had when main last started collecting. Any batch finished since
   * then makes the wait return at once, so no report waits for the poll.
   */
  #armProgress(): void {
    if (this.#progressArmed) return;
    if (this.active.size === 0) {
      Atomics.store(this.#control, MAIN_WAITING, 0);
      return;
    }
    this.#progressArmed = true;
    Atomics.store(this.#control, MAIN_WAITING, this.#wantsEveryBatch() ? WAIT_BATCHES : WAIT_REPORTS);
    const wait = Atomics.waitAsync(this.#control, PROGRESS, this.#progressSeen, PROGRESS_POLL_MS);
    if (wait.async) void wait.value.then(this.#onProgress);
    else queueMicrotask(this.#onProgress);
  }

  /**
   * Main must hear of every batch while someone waits on what batches free:
   * producers waiting for room, backpressure waiting to turn off, drain() or
   * stop(), metrics flushes, records waiting in an overflow list.
   */
  #wantsEveryBatch(): boolean {
    const p = this.#p;
    return p.queue.waiting > 0 || p.queue.backpressureActive || p.inFlight.hasDrainWaiters || this.#flushWaiters.length > 0 ||
      p.lanes.overflowing || !p.lifecycle.running;
  }

  /**
   * One of the reasons to hear of every batch just began: workers are told,
   * and what they finished unannounced is collected now.
   */
  wantProgress(): void {
    if (!this.#progressArmed || Atomics.load(this.#control, MAIN_WAITING) === WAIT_BATCHES) return;
    Atomics.store(this.#control, MAIN_WAITING, WAIT_BATCHES);
    if (!this.#collectQueued) {
      this.#collectQueued = true;
      queueMicrotask(this.#collectNow);
    }
  }

  #collectQueued = false;
  readonly #collectNow = (): void => {
    this.#collectQueued = false;
    this.#afterProgress();
  };

  readonly #onProgress = (): void => {
    this.#progressArmed = false;
    // Read before collecting: a batch ending during the collection bumps PROGRESS past this value.
    this.#progressSeen = Atomics.load(this.#control, PROGRESS);
    this.#afterProgress();
    this.#armProgress();
  };

  /** Workers made progress (or a task ended): read their outcomes, refill the rings, answer flushes. */
  #afterProgress(): void {
    this.collect();
    this.pump();
    this.#checkFlushes();
  }

  /** Reads every running slot's outcomes and settles what they finished. */
  collect(): void {
    for (const slot of this.active) this.#p.outcomes.drainSlot(slot);
    this.#p.lanes.flushOverflow();
    this.#p.inFlight.afterSettle();
  }

  #checkFlushes(): void {
    if (this.#flushWaiters.length === 0) return;
    for (let i = this.#flushWaiters.length - 1; i >= 0; i--) {
      const { request, resolve } = this.#flushWaiters[i];
      let answered = true;
      for (const slot of this.active) {
        if (((Atomics.load(this.#control, slotWord(slot, SLOT_FLUSHED)) - request) | 0) < 0) answered = false;
      }
      if (answered) {
        this.#flushWaiters.splice(i, 1);
        resolve();
      }
    }
  }
}
