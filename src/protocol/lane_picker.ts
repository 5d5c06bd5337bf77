/**
 * Which lane a consumer serves next: strict priority with a starvation guard
 * (used by workers and the inline runner).
 */
import { LANE_COUNT } from './layout.js';

/**
 * After this many picks in which a lane had work but a higher lane was served
 * instead, the starved lane is served next. So under saturation every lower
 * lane still gets at least one batch in STARVATION_LIMIT + LANE_COUNT - lane
 * picks (lanes starved at once take turns; about 5%), while a critical event
 * never waits behind more than a few lower-lane batches.
 */
export const STARVATION_LIMIT = 16;

/** Strict priority between lanes, with the starvation guard above. */
export class LanePicker {
  readonly #passedOver = new Int32Array(LANE_COUNT);

  /** The lane to serve next, or -1 when `hasWork` is false for every lane. */
  pick(hasWork: (lane: number) => boolean): number {
    let pick = -1;
    for (let lane = 0; lane < LANE_COUNT; lane++) {
      if (!hasWork(lane)) continue;
      if (pick < 0) pick = lane;
      else if (++this.#passedOver[lane] > STARVATION_LIMIT) pick = lane;
    }
    if (pick >= 0) this.#passedOver[pick] = 0;
    return pick;
  }
}
