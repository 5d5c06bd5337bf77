/**
 * Trace context through the bus with the OpenTelemetry SDK's in-memory
 * exporter: a PRODUCER span per publish, a CONSUMER span per handler
 * attempt (inline, and in a worker, where the worker registered its own
 * provider), and the handler's own spans in the publisher's trace.
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { BroadcastChannel } from 'node:worker_threads';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MessageBus, workerHandler, type BusEvent } from '../src/index.js';
import { testBuses, until } from './helpers.js';

const TRACING = fileURLToPath(new URL('./fixtures/tracing_handlers.mjs', import.meta.url));

interface WorkerSpan { name: string; kind: number; traceId: string; spanId: string; parentSpanId: string | undefined; attributes: Record<string, unknown>; status: number }

const exporter = new InMemorySpanExporter();
const workerSpans: WorkerSpan[] = [];
let channel: BroadcastChannel;
beforeAll(() => {
  process.env.RINGBUS_TRACE_CHANNEL = `ringbus-trace-${randomUUID()}`;
  channel = new BroadcastChannel(process.env.RINGBUS_TRACE_CHANNEL);
  channel.onmessage = (m) => void workerSpans.push((m as { data: WorkerSpan }).data);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
});
afterAll(() => {
  channel.close();
  trace.disable();
  context.disable();
});

const { bus, inlineBus, stopAll } = testBuses();
afterEach(async () => {
  await stopAll();
  exporter.reset();
  workerSpans.length = 0;
});

const named = (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.name === name);

describe('trace context', () => {
  it('a worker handler\'s span is a child of the delivery\'s CONSUMER span, itself a child of the publish\'s PRODUCER span', async () => {
    const b = bus();
    b.registerEventHandler('orders.created', workerHandler(TRACING, 'work'));
    let inline: BusEvent | undefined;
    b.registerEventHandler('orders.created', async (e) => {
      inline = e;
      await new Promise((r) => setImmediate(r));
      trace.getTracer('test').startActiveSpan('inline work', (s) => s.end());
    }, { name: 'inlineHandler' });
    await b.start();
    const root = trace.getTracer('test').startSpan('http request');
    context.with(trace.setSpan(context.active(), root), () => b.publish('orders.created', { n: 1 }));
    root.end();
    await b.drain();
    await until(() => workerSpans.length >= 2, 'the worker exported its spans');

    const [producer] = named('publish orders.created');
    expect(producer.kind).toBe(SpanKind.PRODUCER);
    expect(producer.spanContext().traceId).toBe(root.spanContext().traceId);
    expect(producer.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
    expect(producer.attributes).toMatchObject({
      'messaging.system': 'ringbus', 'messaging.destination.name': 'orders.created', 'messaging.operation.type': 'send', 'messaging.message.id': inline!.id,
    });
    // The event carries the PRODUCER span's context.
    expect(inline!.headers?.traceparent).toBe(`00-${producer.spanContext().traceId}-${producer.spanContext().spanId}-01`);

    const consumer = workerSpans.find((s) => s.name === 'process orders.created')!;
    expect(consumer).toMatchObject({
      kind: SpanKind.CONSUMER, traceId: producer.spanContext().traceId, parentSpanId: producer.spanContext().spanId,
      attributes: { 'messaging.system': 'ringbus', 'messaging.message.id': inline!.id, 'ringbus.handler': 'work', 'ringbus.attempt': 0 },
    });
    const work = workerSpans.find((s) => s.name === 'work')!;
    expect(work).toMatchObject({ traceId: producer.spanContext().traceId, parentSpanId: consumer.spanId });

    // Inline: the same, on the main thread.
    const [inlineConsumer] = named('process orders.created');
    expect(inlineConsumer.kind).toBe(SpanKind.CONSUMER);
    expect(inlineConsumer.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
    expect(inlineConsumer.attributes['ringbus.handler']).toBe('inlineHandler');
    expect(named('inline work')[0].parentSpanContext?.spanId).toBe(inlineConsumer.spanContext().spanId);
  });

  it('each attempt has its own CONSUMER span; a failed one records the error', async () => {
    const b = bus({ retry: { maxRetries: 1, initialDelayMs: 1 } });
    b.registerCommandHandler('flaky', workerHandler(TRACING, 'fail'));
    await b.start();
    const r = await b.execute('flaky', null);
    expect(r).toMatchObject({ success: false, attempts: 2 });
    await until(() => workerSpans.filter((s) => s.name === 'process flaky').length === 2, 'both attempts exported');
    const attempts = workerSpans.filter((s) => s.name === 'process flaky');
    expect(attempts.map((s) => s.attributes['ringbus.attempt']).sort()).toEqual([0, 1]);
    expect(attempts.every((s) => s.status === SpanStatusCode.ERROR)).toBe(true);
    const [producer] = named('execute flaky');
    expect(producer.status.code).toBe(SpanStatusCode.ERROR);
    expect(attempts.every((s) => s.parentSpanId === producer.spanContext().spanId)).toBe(true);
  });

  it('without a registered tracer provider, events carry no trace headers', async () => {
    trace.disable();
    try {
      const b = inlineBus();
      let got: BusEvent | undefined;
      b.registerEventHandler('t', (e) => {
        got = e;
      });
      await b.start();
      b.publish('t', 1);
      await b.drain();
      expect(got!.headers).toBeUndefined();
      expect(exporter.getFinishedSpans()).toEqual([]);
    } finally {
      trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
    }
  });
});
