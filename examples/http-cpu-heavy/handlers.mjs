// The CPU-heavy work: a Mandelbrot render in plain JavaScript. It runs in the
// bus's worker threads (or, with INLINE=1, on the main thread, to compare).

/** Renders a size × size Mandelbrot tile and returns a checksum and the share of points inside the set. */
export function render(event) {
  const { size = 200, iterations = 500 } = event.payload ?? {};
  let inside = 0;
  let checksum = 0;
  for (let py = 0; py < size; py++) {
    const y0 = (py / size) * 2.4 - 1.2;
    for (let px = 0; px < size; px++) {
      const x0 = (px / size) * 3.2 - 2.2;
      let x = 0;
      let y = 0;
      let i = 0;
      while (x * x + y * y <= 4 && i < iterations) {
        const t = x * x - y * y + x0;
        y = 2 * x * y + y0;
        x = t;
        i++;
      }
      if (i === iterations) inside++;
      checksum = (checksum * 31 + i) | 0;
    }
  }
  return { size, iterations, inside: inside / (size * size), checksum };
}
