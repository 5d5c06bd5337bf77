/**
 * Tracing in a worker: each worker handler attempt whose event carries a
 * `traceparent` runs inside a CONSUMER span (src/tracing/otel.ts), so spans
 * the handler makes join the publisher's trace. The worker has its own
 * OpenTelemetry globals: spans are recorded once a tracer provider is
 * registered in the worker (a module the workers import does it: a worker
 * middleware module, or the handler module). Until then, or without
 * `@opentelemetry/api`, handlers run untouched.
 */
import { consume, otelApi, registeredTracer, type Tracer } from '../src/tracing/otel.js';
import { TRACER_NAME } from '../src/tracing/bus_tracing.js';
import type { LoadedHandler } from './handler_table.js';

const api = otelApi();
let tracer: Tracer | undefined;

/** The worker's tracer, once a provider is registered here (looked up per traced call until then: a property read). */
function currentTracer(): Tracer | undefined {
  if (tracer === undefined && api !== undefined) tracer = registeredTracer(api, TRACER_NAME, '');
  return tracer;
}

/** `fn` wrapped so that each traced attempt runs inside its CONSUMER span; `fn` itself without the API package. */
export function traced(fn: LoadedHandler, handler: string): LoadedHandler {
  if (api === undefined) return fn;
  return (event: unknown): unknown => {
    const e = event as { id: string; topic: string; attempt: number; headers: Readonly<Record<string, string>> | undefined };
    if (e.headers?.traceparent === undefined) return fn(event);
    const t = currentTracer();
    return t === undefined ? fn(event) : consume(api, t, e, handler, () => fn(event));
  };
}
