// Three handlers for the chaos runs (bench/chaos.ts and the suite's chaos test). Every
// decision is a pure function of (seed, attempt), so a run is reproducible.

function chance(seed, attempt, salt) {
  const x = Math.sin(seed * 12.9898 + attempt * 78.233 + salt * 37.719) * 43758.5453;
  return x - Math.floor(x);
}

/** Transient failures: a first attempt fails with probability `transient`; retries succeed. */
export function transient(event) {
  const { seed, transient: p } = event.payload;
  if (event.attempt === 0 && chance(seed, 0, 1) < p) throw new Error(`transient failure of ${seed}`);
  return seed;
}

/** Permanent failures: every attempt fails for one event in `permanentEvery`. */
export function permanent(event) {
  const { seed, permanentEvery } = event.payload;
  if (seed % permanentEvery === 0) throw new Error(`permanent failure of ${seed}`);
  return seed;
}

/** Kills its worker (first attempt of one event in `exitEvery`) or hangs past the timeout (one in `hangEvery`). */
export function volatile(event) {
  const { seed, exitEvery, hangEvery } = event.payload;
  if (event.attempt === 0 && exitEvery > 0 && seed % exitEvery === 11) process.exit(7);
  if (event.attempt === 0 && hangEvery > 0 && seed % hangEvery === 13) for (;;);
  return seed;
}
