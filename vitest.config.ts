import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests start worker pools and some measure timing: on a 2-core machine,
    // files running side by side would only make each other's numbers noisy.
    fileParallelism: false,
  },
});
