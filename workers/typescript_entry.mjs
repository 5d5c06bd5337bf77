// Piscina entry when ringbus runs from its TypeScript source (tsx, vitest).
// Node 20 workers do not inherit the main thread's module hooks, and Piscina
// would otherwise require() the runtime through tsx's CommonJS transform,
// where every imported constant becomes a getter call in the hot loop.
// Registering tsx's ESM hooks here loads the runtime as a real ES module.
import { workerData } from 'node:worker_threads';

const tsx = await import(workerData.tsxEsmApi);
tsx.register();
const { default: run } = await import('./runtime.ts');
export default run;
