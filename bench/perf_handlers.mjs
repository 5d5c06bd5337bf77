// Handlers for bench/bus_performance.ts: plain JavaScript, so they load the same in
// the bus's workers, in Piscina's workers (bench/perf_piscina_task.mjs) and on the
// main thread (the inline EventEmitter baseline).
//
// Their settings come from the environment variable RINGBUS_BENCH_HANDLER (JSON),
// which the benchmark sets before it starts any pool: worker threads get a copy
// of process.env when they are created, so every copy of this module in every
// thread sees the same settings without touching the payload.
//
//   costUs       busy-wait this many microseconds of CPU per call (0: no-op)
//   failureRate  fraction of attempts (any attempt) that throw
//   crashRate    fraction of first attempts that process.exit() their worker
//   timeoutRate  fraction of first attempts that hang for hangMs (longer than the bus's handlerTimeoutMs)
//   hangMs       how long a hanging attempt spins before giving up by itself

const settings = JSON.parse(process.env.RINGBUS_BENCH_HANDLER ?? '{}');
const costUs = Number(settings.costUs ?? 0);
const failureRate = Number(settings.failureRate ?? 0);
const crashRate = Number(settings.crashRate ?? 0);
const timeoutRate = Number(settings.timeoutRate ?? 0);
const hangMs = Number(settings.hangMs ?? 1000);

let sink = 0;

/** Spins for `us` microseconds of wall time on this thread. */
function burn(us) {
  const until = performance.now() + us / 1000;
  let x = 0;
  while (performance.now() < until) x++;
  sink += x;
}

/** The benchmark's handler: costUs of CPU, nothing else. */
export function work(_event) {
  if (costUs > 0) burn(costUs);
}

/** Same as work, with the configured failures, worker crashes and hangs injected. */
export function chaos(event) {
  if (event.attempt === 0) {
    const r = Math.random();
    if (r < crashRate) process.exit(86);
    if (r < crashRate + timeoutRate) burn(hangMs * 1000);
  }
  if (failureRate > 0 && Math.random() < failureRate) throw new Error('injected failure (bench --failure-rate)');
  if (costUs > 0) burn(costUs);
}

/** Keeps the spin loops observable so no engine can drop them. */
export function spun() {
  return sink;
}
