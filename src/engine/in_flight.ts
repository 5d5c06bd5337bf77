/**
 * Events main follows until they settle, one record per event, and the one
 * exit every settled event goes through (`settle`). Most events are never
 * here: a worker settles them implicitly. Main keeps a record only for
 *
 * - a tracked event: a command (its caller waits for a reply) or an event
 *   whose topic mixes inline and worker handlers (main starts each stage);
 * - a failing event: one whose delivery failed, while a retry waits or a dead
 *   letter is being written. A tracked event that fails gets the same
 *   failure ledger.
 *
 * A command is replied to exactly once (`reply`), whatever settles it first.
 * Deliveries an open circuit holds are outstanding in the event's failure
 * ledger too (created for them if needed): the event settles once they ran.
 */
import { BackpressureError, BusStoppedError } from '../errors.js';
import type { Route } from '../router.js';
import { RF_BINARY, RF_CONTINUATION, RF_ENCODED, RF_LANE_SHIFT, RF_TRACKED } from '../protocol/record.js';
import { PRIORITY_NAMES } from '../protocol/task.js';
import type { BusEvent, CommandResult } from '../types.js';
import type { FailedAttempt } from './failure_policy.js';
import type { RemoteEvent } from '../transport.js';
import type { EngineParts } from './parts.js';

/** The failed deliveries of one event, while any waits to run again or to be dead-lettered. */
export interface FailureLedger {
  /** Detached deliveries not done yet: retries scheduled or running, held deliveries, dead letters not yet persisted. */
  outstanding: number;
  /** The event's first pass (every stage) finished. */
  baseDone: boolean;
  /** Epoch ms of each failing delivery's first failure, by handler name. */
  readonly firstFailureAt: Map<string, number>;
  /** Each failing delivery's last failure that ran the handler (a refusal is not the handler's error), by handler name. */
  readonly lastOwnFailure: Map<string, FailedAttempt>;
  /** Deliveries of the event an open circuit holds now. */
  held: number;
  /** Counted in `heldEvents`: the pass ended and every outstanding delivery is held. */
  onlyHeld: boolean;
}

interface InFlightBase {
  readonly seq: number;
  readonly topic: string;
  /** Epoch ms (0 when unknown): for the end-to-end time when the event settles. */
  readonly publishedAt: number;
  failures: FailureLedger | undefined;
}

/** A command, or an event with several stages: main drives it, so it keeps what it needs to encode each stage. */
export interface TrackedEvent extends InFlightBase {
  readonly kind: 'tracked';
  readonly lane: number;
  readonly payload: unknown;
  /** RF_BINARY / RF_UNDEFINED / RF_ENCODED, and the encoded payload to write again for each worker stage. */
  readonly payloadFlags: number;
  readonly text: string | undefined;
  /** The payload's bytes when they are not `text` (RF_ENCODED: the codec's; a due event's JSON), kept so a later stage carries them as they were. */
  readonly encoded?: Uint8Array | undefined;
  readonly payloadBytes: number;
  readonly sessionId: string | undefined;
  /** Headers as JSON text (for a worker stage's record) and as the frozen object (inline stages, dead letters). */
  readonly headers: string | undefined;
  readonly headerValues: Readonly<Record<string, string>> | undefined;
  /** A replayed dead letter keeps its id. */
  readonly id: string | undefined;
  readonly route: Route;
  stage: number;
  /** Set for commands: resolves the caller's promise. */
  readonly reply: ((result: CommandResult) => void) | undefined;
  replied: boolean;
  /**
   * Set for a replayed dead letter: its entry id (a new failure supersedes
   * the entry under the same id) and who hears how the delivery ended.
   */
  readonly replay: { readonly entryId: string; readonly eventId: string; readonly done: (ok: boolean) => void } | undefined;
  /** Set for a delivery a transport brought. */
  readonly remote: RemoteDelivery | undefined;
  /** Told once when the event settles (a delayed event's done mark in its schedule file); never when stop() abandons it. */
  readonly onSettled?: (() => void) | undefined;
}

/** A delivery a transport brought: whom to tell when it settles, and when it first failed (a retry from another process). */
export interface RemoteDelivery {
  /** Told once, when the event settles (never when stop() abandons it: the transport hands it back). */
  readonly settled: () => void;
  /** Epoch ms of the delivery's first failure, 0 when this is its first attempt. */
  readonly firstFailedAt: number;
  /** The event as it came (its payload as published): what a retry sends on, whatever the handler did to its copy. */
  readonly event: RemoteEvent;
}

/** An event main learned of only through a failed delivery. */
export interface FailingEvent extends InFlightBase {
  readonly kind: 'failing';
}

export type InFlightEvent = TrackedEvent | FailingEvent;

export class InFlight {
  readonly #p: EngineParts;
  readonly #events = new Map<number, InFlightEvent>();
  readonly #drainWaiters: { resolve: () => void; exceptHeld: boolean }[] = [];
  /** Events that wait for nothing but deliveries held by open circuits (stop() does not wait for those). */
  #heldEvents = 0;

  constructor(p: EngineParts) {
    this.#p = p;
  }

  track(event: TrackedEvent): void {
    this.#events.set(event.seq, event);
  }

  get(seq: number): InFlightEvent | undefined {
    return this.#events.get(seq);
  }

  /** The tracked command with this seq, if it still waits for its reply. */
  command(seq: number): TrackedEvent | undefined {
    const e = this.#events.get(seq);
    return e?.kind === 'tracked' && e.reply !== undefined && !e.replied ? e : undefined;
  }

  /** The event's failure ledger, created at its first failure. */
  ledger(seq: number, topic: string, publishedAt: () => number): FailureLedger {
    let e = this.#events.get(seq);
    if (e === undefined) {
      e = { kind: 'failing', seq, topic, publishedAt: publishedAt(), failures: undefined };
      this.#events.set(seq, e);
    }
    e.failures ??= { outstanding: 0, baseDone: false, firstFailureAt: new Map(), lastOwnFailure: new Map(), held: 0, onlyHeld: false };
    return e.failures;
  }

  /** Replies to a command once; later replies (a retry succeeding after the bus gave up on it) are ignored. */
  reply(seq: number, result: CommandResult): void {
    const e = this.command(seq);
    if (e === undefined) return;
    e.replied = true;
    e.reply!(result);
  }

  /**
   * A delivery of the event is held by its open circuit (it counts as
   * outstanding until it ran). The caller hands it to its breaker, then calls
   * `checkDrainWaiters()`: the breaker may release it at once.
   */
  holdStarted(seq: number, topic: string, publishedAt: () => number): void {
    const ledger = this.ledger(seq, topic, publishedAt);
    ledger.outstanding++;
    ledger.held++;
    this.#recountHeld(ledger);
  }

  /** A held delivery was released (it runs again), or taken away because the bus stops. */
  holdEnded(seq: number): void {
    const ledger = this.#events.get(seq)?.failures;
    if (ledger === undefined) return;
    ledger.held--;
    this.#recountHeld(ledger);
  }

  #recountHeld(ledger: FailureLedger): void {
    const onlyHeld = ledger.held > 0 && ledger.baseDone && ledger.outstanding === ledger.held;
    if (onlyHeld === ledger.onlyHeld) return;
    ledger.onlyHeld = onlyHeld;
    this.#heldEvents += onlyHeld ? 1 : -1;
  }

  /**
   * A record or inline job finished. A detached one is a single delivery (a
   * retry or a released held delivery); otherwise it is a stage of the
   * event's pass. `origin` is the event of an inline job, for its end-to-end
   * time when nothing tracks it.
   */
  recordDone(seq: number, attempt: number, failed: boolean, result: unknown, detached: boolean, origin?: BusEvent): void {
    const e = this.#events.get(seq);
    if (!failed) {
      this.reply(seq, { success: true, result, attempts: attempt + 1 });
      if (e?.kind === 'tracked') e.replay?.done(true);
    }
    const ledger = e?.failures;
    if (detached) {
      this.outstandingDone(seq);
      return;
    }
    if (e?.kind === 'tracked' && e.reply === undefined && ++e.stage < e.route.stages.length) {
      this.#startStage(e);
      return;
    }
    if (ledger !== undefined && ledger.outstanding > 0) {
      ledger.baseDone = true;
      this.#recountHeld(ledger);
      this.checkDrainWaiters();
    } else this.#finish(seq, e ?? origin);
  }

  /** A retry or dead letter of the event is done; the event settles once nothing else is outstanding. */
  outstandingDone(seq: number): void {
    const e = this.#events.get(seq);
    const ledger = e?.failures;
    if (ledger === undefined) return;
    --ledger.outstanding;
    this.#recountHeld(ledger);
    if (ledger.outstanding === 0 && ledger.baseDone) this.#finish(seq, e);
    else this.checkDrainWaiters();
  }

  /** drop-oldest took the event before anything ran: it settles as dropped. */
  dropped(seq: number, tracked: boolean): void {
    if (tracked) {
      const e = this.#events.get(seq);
      const topic = e?.topic ?? '';
      this.reply(seq, {
        success: false, attempts: 0,
        error: new BackpressureError(topic, 0, 'dropped', `command on topic '${topic}' was dropped to make room (queue.strategy 'drop-oldest')`),
      });
      if (e?.kind === 'tracked') {
        e.replay?.done(false); // a replayed dead letter that was dropped is still dead
        e.remote?.settled();
        e.onSettled?.();
      }
      this.#events.delete(seq);
    }
    this.settle(1);
  }

  /** The bus stopped with events pending: every waiting command gets its reply, and nothing is followed any more. */
  abandonAll(): void {
    for (const e of this.#events.values()) {
      if (e.kind === 'tracked' && e.reply !== undefined && !e.replied) {
        this.reply(e.seq, { success: false, error: new BusStoppedError('the bus stopped before the command finished'), attempts: 0 });
      }
    }
    this.#events.clear();
    this.#heldEvents = 0;
  }

  /**
   * Every delivery of the event is processed, dead-lettered or finally
   * failed. Events settled here (not implicitly by a worker) get their
   * end-to-end time measured here.
   */
  #finish(seq: number, known: { topic: string; publishedAt: number } | undefined): void {
    if (this.#p.options.metrics.timing && known !== undefined && known.publishedAt > 0) {
      this.#p.metrics.countersOf(known.topic).endToEnd.record((performance.timeOrigin + performance.now() - known.publishedAt) * 1e6);
    }
    this.#events.delete(seq);
    this.settle(1);
    if (known !== undefined && 'remote' in known) {
      (known as TrackedEvent).remote?.settled();
      (known as TrackedEvent).onSettled?.();
    }
  }

  /** The one exit: `count` accepted events settled on the main thread. */
  settle(count: number): void {
    this.#p.queue.settle(count);
    this.afterSettle();
  }

  /** Room may have appeared (here, or in workers' counters): wake producers, lower backpressure, resolve drain(). */
  afterSettle(): void {
    if (this.#p.queue.observe()) this.#p.publisher.backpressureChanged(false);
    this.checkDrainWaiters();
  }

  /**
   * Resolves once no accepted event is unsettled; with `exceptHeld`, once
   * the only unsettled events are those an open circuit holds (stop() does
   * not wait for a circuit to recover).
   */
  settled(exceptHeld = false): Promise<void> {
    if (this.#drained(exceptHeld)) return Promise.resolve();
    const settled = new Promise<void>((resolve) => this.#drainWaiters.push({ resolve, exceptHeld }));
    this.#p.slots.wantProgress();
    return settled;
  }

  get hasDrainWaiters(): boolean {
    return this.#drainWaiters.length > 0;
  }

  resolveDrainWaiters(): void {
    for (const { resolve } of this.#drainWaiters.splice(0)) resolve();
  }

  #drained(exceptHeld: boolean): boolean {
    const size = this.#p.queue.size;
    return size === 0 || (exceptHeld && size <= this.#heldEvents);
  }

  checkDrainWaiters(): void {
    if (this.#drainWaiters.length === 0) return;
    for (let i = this.#drainWaiters.length - 1; i >= 0; i--) {
      const w = this.#drainWaiters[i];
      if (!this.#drained(w.exceptHeld)) continue;
      this.#drainWaiters.splice(i, 1);
      w.resolve();
    }
  }

  /** Starts the tracked event's current stage: a record for the workers, or a job for the inline runner. */
  #startStage(e: TrackedEvent): void {
    const stage = e.route.stages[e.stage];
    if (stage.inWorker) {
      const r = this.#p.publisher.encoder;
      r.clear();
      r.flags = e.payloadFlags | (e.lane << RF_LANE_SHIFT) | RF_TRACKED | RF_CONTINUATION;
      r.topicId = e.route.topicId;
      r.attempt = 0;
      r.seq = e.seq;
      r.publishedAt = e.publishedAt;
      r.handlerIds = stage.handlerIds;
      r.setSession(e.sessionId);
      r.setId(e.id);
      r.setHeaders(e.headers);
      if (e.route.carriesTopic) r.setTopic(e.topic);
      r.text = e.text;
      if (e.payloadFlags & RF_BINARY) r.binary = e.payload as Uint8Array;
      else if (e.encoded !== undefined) r.binary = e.encoded;
      r.payloadBytes = e.payloadBytes;
      this.#p.lanes.write(e.lane, r);
      r.clear();
    } else {
      const event: BusEvent = {
        id: e.id ?? this.#p.memory.idPrefix + e.seq, topic: e.topic, payload: e.payload, priority: PRIORITY_NAMES[e.lane],
        sessionId: e.sessionId, attempt: 0, publishedAt: e.publishedAt, headers: e.headerValues,
      };
      this.#p.inline.enqueue(e.lane, { seq: e.seq, event, handlers: stage.handlers, continuation: true });
    }
  }
}
