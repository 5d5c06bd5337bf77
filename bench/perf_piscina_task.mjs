// The Piscina baseline of bench/bus_performance.ts: one pool.run(event) per event,
// running the same handler (and the same RINGBUS_BENCH_HANDLER settings) as the bus.
import { work } from './perf_handlers.mjs';

export default function handle(event) {
  if (event !== undefined) work(event);
  return 0;
}
