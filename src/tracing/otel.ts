/**
 * OpenTelemetry, when the application has it: `@opentelemetry/api` is an
 * optional peer dependency, loaded once (synchronously, from where ringbus
 * is installed) and used only when a tracer provider is registered. Without
 * either, tracing costs a bus one `undefined` check per publish and per
 * inline handler call, and nothing else.
 *
 * The attributes follow the OpenTelemetry messaging semantic conventions:
 * `messaging.system` ringbus, `messaging.destination.name` the topic,
 * `messaging.operation.type` send / process, `messaging.message.id` the
 * event id; ringbus adds `ringbus.handler` and `ringbus.attempt`.
 */
import { createRequire } from 'node:module';
import type * as OtelApi from '@opentelemetry/api';
import { parseTraceParent, type TraceParent } from './trace_context.js';

export type Api = typeof OtelApi;
export type Span = OtelApi.Span;
export type Tracer = OtelApi.Tracer;

let loaded: Api | null | undefined;

/** The application's `@opentelemetry/api`, or undefined when it is not installed. */
export function otelApi(): Api | undefined {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('@opentelemetry/api') as Api;
    } catch {
      loaded = null;
    }
  }
  return loaded ?? undefined;
}

/** The tracer of a registered provider, or undefined while none is registered (the global one is a no-op proxy until then). */
export function registeredTracer(api: Api, name: string, version: string): Tracer | undefined {
  const provider = api.trace.getTracerProvider() as { getDelegateTracer?: (name: string, version?: string) => Tracer | undefined };
  return typeof provider.getDelegateTracer === 'function' ? provider.getDelegateTracer(name, version) : api.trace.getTracer(name, version);
}

/** The remote parent a traceparent names, as a context to start a span in. */
export function parentContext(api: Api, parent: TraceParent, traceState: string | undefined): OtelApi.Context {
  return api.trace.setSpanContext(api.ROOT_CONTEXT, {
    traceId: parent.traceId, spanId: parent.spanId, traceFlags: parent.traceFlags, isRemote: true,
    traceState: traceState !== undefined ? api.createTraceState?.(traceState) : undefined,
  });
}

/** What a consumer span of one handler attempt is told. */
export interface ConsumedEvent {
  readonly id: string;
  readonly topic: string;
  readonly attempt: number;
  readonly headers: Readonly<Record<string, string>> | undefined;
}

/**
 * Runs `call` (a handler attempt) inside a CONSUMER span whose parent is
 * the event's traceparent, so spans the handler makes join the publisher's
 * trace; the span ends when the call (or its promise) does, with the error
 * recorded when it fails. Events without a traceparent run untouched.
 */
export function consume<T>(api: Api, tracer: Tracer, event: ConsumedEvent, handler: string, call: () => T): T {
  const parent = parseTraceParent(event.headers?.traceparent);
  if (parent === undefined) return call();
  const ctx = parentContext(api, parent, event.headers?.tracestate);
  const span = tracer.startSpan(`process ${event.topic}`, {
    kind: api.SpanKind.CONSUMER,
    attributes: {
      'messaging.system': 'ringbus', 'messaging.destination.name': event.topic, 'messaging.operation.type': 'process',
      'messaging.operation.name': 'process', 'messaging.message.id': event.id, 'ringbus.handler': handler, 'ringbus.attempt': event.attempt,
    },
  }, ctx);
  const failed = (err: unknown): void => {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: api.SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
    span.end();
  };
  let result: T;
  try {
    result = api.context.with(api.trace.setSpan(ctx, span), call);
  } catch (err) {
    failed(err);
    throw err;
  }
  const pending = result as unknown as PromiseLike<unknown> | null;
  if (pending !== null && typeof pending === 'object' && typeof pending.then === 'function') pending.then(() => span.end(), failed);
  else span.end();
  return result;
}
