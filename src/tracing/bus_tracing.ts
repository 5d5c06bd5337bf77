/**
 * A bus's tracing on the main thread: a PRODUCER span per publish or
 * execute (a child of the caller's active context), whose context goes into
 * the event's `traceparent` (and `tracestate`) headers; and a CONSUMER span
 * per inline handler attempt (worker attempts: workers/tracing.ts). Made
 * only when `@opentelemetry/api` is installed and a tracer provider is
 * registered when the bus is made or started.
 */
import { formatTraceParent } from './trace_context.js';
import { consume, otelApi, registeredTracer, type Api, type ConsumedEvent, type Span, type Tracer } from './otel.js';

export const TRACER_NAME = 'ringbus';

export class BusTracing {
  readonly #api: Api;
  readonly #tracer: Tracer;

  private constructor(api: Api, tracer: Tracer) {
    this.#api = api;
    this.#tracer = tracer;
  }

  /** Tracing for a bus, or undefined without the API package or a registered provider. */
  static create(): BusTracing | undefined {
    const api = otelApi();
    if (api === undefined) return undefined;
    const tracer = registeredTracer(api, TRACER_NAME, '');
    return tracer === undefined ? undefined : new BusTracing(api, tracer);
  }

  /** A PRODUCER span for sending `topic`, in the caller's active context. */
  start(topic: string, operation: 'publish' | 'execute'): Span {
    const api = this.#api;
    return this.#tracer.startSpan(`${operation} ${topic}`, {
      kind: api.SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'ringbus', 'messaging.destination.name': topic, 'messaging.operation.type': 'send', 'messaging.operation.name': operation,
      },
    }, api.context.active());
  }

  /** The publish options with the span's context in their headers (the caller's object is not changed). */
  inject<O extends { headers?: Readonly<Record<string, string>> }>(span: Span, options: O | undefined): O {
    const sc = span.spanContext();
    const headers: Record<string, string> = { ...options?.headers, traceparent: formatTraceParent(sc.traceId, sc.spanId, sc.traceFlags) };
    const state = sc.traceState?.serialize();
    if (state) headers.tracestate = state;
    return { ...options, headers } as O;
  }

  /** Ends a PRODUCER span: the event's id once it was accepted, an error status when it was not. */
  end(span: Span, accepted: boolean, eventId: string | undefined, error?: unknown): void {
    if (eventId !== undefined) span.setAttribute('messaging.message.id', eventId);
    if (error !== undefined) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: this.#api.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    } else if (!accepted) span.setStatus({ code: this.#api.SpanStatusCode.ERROR, message: 'not accepted (queue full, refused or stopping)' });
    span.end();
  }

  /** A synchronous publish inside its PRODUCER span; `eventId` names the event it accepted. */
  publish<O extends { headers?: Readonly<Record<string, string>>; delayMs?: number; at?: Date | number }>(topic: string, options: O | undefined,
    call: (options: O) => boolean, eventId: () => string | undefined): boolean {
    const span = this.start(topic, 'publish');
    try {
      const ok = call(this.inject(span, options));
      // Named when this call committed the event here (not a delayed one, nor one sent to a transport).
      this.end(span, ok, ok ? eventId() : undefined);
      return ok;
    } catch (err) {
      this.end(span, false, undefined, err);
      throw err;
    }
  }

  /** publishAsync inside its PRODUCER span, ended when it settles. */
  publishAsync<O extends { headers?: Readonly<Record<string, string>> }>(topic: string, options: O | undefined,
    call: (options: O) => Promise<boolean>): Promise<boolean> {
    const span = this.start(topic, 'publish');
    return call(this.inject(span, options)).then((ok) => {
      this.end(span, ok, undefined);
      return ok;
    }, (err: unknown) => {
      this.end(span, false, undefined, err);
      throw err;
    });
  }

  /** execute inside its PRODUCER span: an error status when the command failed. */
  execute<O extends { headers?: Readonly<Record<string, string>> }, R extends { success: boolean; error?: unknown }>(topic: string,
    options: O | undefined, call: (options: O) => Promise<R>): Promise<R> {
    const span = this.start(topic, 'execute');
    return call(this.inject(span, options)).then((r) => {
      this.end(span, r.success, undefined, r.success ? undefined : r.error);
      return r;
    }, (err: unknown) => {
      this.end(span, false, undefined, err);
      throw err;
    });
  }

  /** Runs an inline handler attempt inside its CONSUMER span (see consume()). */
  consume<T>(event: ConsumedEvent, handler: string, call: () => T): T {
    return consume(this.#api, this.#tracer, event, handler, call);
  }
}
