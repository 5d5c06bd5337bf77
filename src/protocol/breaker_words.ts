/**
 * Circuit states in shared memory: one Int32 word per breaker index, written
 * by main (BreakerBoard) whenever a circuit moves, read by workers right
 * before each call so a delivery already claimed is refused the moment its
 * circuit opens. The codes are also the `circuit_breaker_state` gauge values.
 *
 *   Int32 words:  [ breaker 0 | breaker 1 | … | breaker MAX_BREAKERS-1 ]
 */
import { MAX_BREAKERS } from './limits.js';

export const BREAKER_CLOSED = 0;
export const BREAKER_OPEN = 1;
export const BREAKER_HALF_OPEN = 2;

export const BREAKER_WORDS_BYTES = 4 * MAX_BREAKERS;

/** The refusal text of an open circuit, the same on both threads. */
export const circuitOpenMessage = (handler: string): string => `circuit for handler '${handler}' is open`;
