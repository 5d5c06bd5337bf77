// Benchmark handlers, plain JavaScript so they load the same under tsx and plain node.
export function noop() {}

export function burn(event) {
  const until = performance.now() + (event.payload?.costUs ?? 0) / 1000;
  let x = 0;
  while (performance.now() < until) x++;
  return x;
}
