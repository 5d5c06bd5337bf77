/**
 * Circuit breakers in shared memory: main (BreakerBoard) writes each
 * breaker's state and its half-open permits; a worker reads the state right
 * before each call, takes a permit for a half-open trial, and counts its
 * successful (and slow) calls per breaker in its slot's own buffer, which main
 * sums into each breaker's sliding window. Both halves of the protocol are
 * here: `admit` (worker and main) and the counters.
 *
 *   breakers (one growable buffer, Int32 words)    counters, one growable buffer per slot s
 *   +----------+------------+----------+-----       +--------------+---------+--------------+-----
 *   | STATE[0] | PERMITS[0] | STATE[1] | ...        | SUCCESSES[0] | SLOW[0] | SUCCESSES[1] | ...
 *   +----------+------------+----------+-----       +--------------+---------+--------------+-----
 *     main writes; workers and main take             the worker holding slot s writes (plain
 *     permits (CAS)                                  stores: one writer); main reads
 *
 * Every buffer starts with room for BREAKERS_INITIAL breakers and main grows
 * them all (doubling, up to MAX_BREAKERS) before it hands out a larger index;
 * an Int32Array over a growable SharedArrayBuffer tracks its length, so
 * workers see the new words without being told. A slot's counters only grow
 * (they outlive the tasks that use the slot), so main keeps the last sum it
 * saw per breaker and adds the difference.
 */
export const BREAKER_CLOSED = 0;
export const BREAKER_OPEN = 1;
export const BREAKER_HALF_OPEN = 2;

/** Breakers the buffers hold before they first grow. */
export const BREAKERS_INITIAL = 1024;

/** Bytes the buffers need for `breakers` breakers (both layouts use two words per breaker). */
export const breakerBytes = (breakers: number): number => 8 * breakers;

export const stateWord = (breaker: number): number => 2 * breaker;
export const permitWord = (breaker: number): number => 2 * breaker + 1;
export const successWord = (breaker: number): number => 2 * breaker;
export const slowWord = (breaker: number): number => 2 * breaker + 1;

/** What `admit` decided for one call. */
export const ADMIT_RUN = 0;
/** Half-open: this call holds one of the permits; its outcome is a trial. */
export const ADMIT_TRIAL = 1;
/** Open (or half-open with no permit left): the call must not run now. */
export const ADMIT_DENY = 2;

/** Whether a call to breaker `b` may run now; takes a half-open permit when it does. */
export function admit(words: Int32Array, b: number): number {
  const state = Atomics.load(words, stateWord(b));
  if (state === BREAKER_CLOSED) return ADMIT_RUN;
  if (state === BREAKER_OPEN) return ADMIT_DENY;
  const at = permitWord(b);
  for (let permits = Atomics.load(words, at); permits > 0; permits = Atomics.load(words, at)) {
    if (Atomics.compareExchange(words, at, permits, permits - 1) === permits) return ADMIT_TRIAL;
  }
  return ADMIT_DENY;
}

/** The refusal text of an open circuit (with `hold: false`), the same on both threads. */
export const circuitOpenMessage = (handler: string): string => `circuit for handler '${handler}' is open`;
