/**
 * The engine's own counters, one plain object every module increments
 * directly (no emitter, no closure per event). Workers' shares are not here:
 * they are summed from their slots' words when read (see SlotPool).
 */
export class EngineCounters {
  published = 0;
  /** Successful deliveries of inline handlers. */
  processedMain = 0;
  failed = 0;
  dropped = 0;
  rejected = 0;
  /** Deliveries filters refused and publishes middleware refused. */
  filtered = 0;
  abandoned = 0;
  retried = 0;
  deadLettered = 0;
  workerCrashes = 0;
  handlerTimeouts = 0;
  /** What finished tasks' slots counted, added when each task ended. */
  retiredSettled = 0;
  retiredProcessed = 0;
}
