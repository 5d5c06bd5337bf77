/**
 * The Piscina tasks main sends to the worker runtime (one per busy period or
 * probe, never one per event), their replies, and the priority names.
 */
export interface DrainTask {
  kind: 'drain';
  /** The slot this task holds: its gate words and its outcome ring. */
  slot: number;
  /** The slot's EPOCH when the task was submitted: once main bumps it, this task must stop touching the slot. */
  epoch: number;
  maxBatch: number;
  /** Pool size, to split waiting records fairly between workers. */
  threads: number;
  /** How long an idle worker parks waiting for new records before it returns the task. */
  lingerMs: number;
  /** Copy a failed (or held) record into its outcome, so main can retry it. */
  keepFailedRecords: boolean;
  /** Largest command result (JSON bytes): results travel back like payloads, with the same limit. */
  maxResultBytes: number;
  /** Time handlers and events (off only to measure what metrics cost). */
  metrics: boolean;
  /** Circuit breakers on: count successes per breaker, check the state before each call. */
  breakers: boolean;
  /** An open circuit holds a claimed delivery (OUT_HELD) rather than refusing it (OUT_REFUSED). */
  holdOpenCircuits: boolean;
  /** A success slower than this (ms) counts as a slow call for its breaker; 0: off. */
  slowCallMs: number;
}

export interface ProbeTask {
  kind: 'probe';
  /** `kind` names it in a load error: 'worker handler' (the default) or 'worker middleware'. */
  handlers: { module: string; exportName: string; kind?: string }[];
}

export type RuntimeTask = DrainTask | ProbeTask;

/** One message per handler that failed to load, naming module and export. */
export interface ProbeResult {
  errors: string[];
}

export const PRIORITY_NAMES = ['critical', 'high', 'normal', 'low'] as const;
/**
 * An event's (or a handler's) priority lane, highest first: workers serve the highest lane with work,
 * and a starved lower lane still gets a turn.
 *
 * @group Options
 */
export type Priority = (typeof PRIORITY_NAMES)[number];
