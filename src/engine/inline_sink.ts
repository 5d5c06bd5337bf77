/**
 * What the engine does with each inline (main-thread) handler call the
 * inline runner reports: admission through the handler's circuit breaker,
 * held or refused deliveries, successes (counters, timing, breaker windows
 * and half-open trials), failures (the failure policy) and finished jobs.
 */
import { CircuitOpenError, RAISED_BY_BUS, type RingbusError } from '../errors.js';
import { errorMessage, errorName } from '../protocol/error_text.js';
import type { InlineJob, InlineSink } from '../inline_runner.js';
import type { Registration } from '../router.js';
import type { EngineParts } from './parts.js';
import { laneOf } from './validation.js';

export function inlineSink(p: EngineParts): InlineSink {
  const cb = p.options.circuitBreaker;
  const slowNs = cb && cb.slowCallMs !== undefined ? cb.slowCallMs * 1e6 : Infinity;
  const failed = (job: InlineJob, handler: Registration, error: unknown, ns: number, refused: boolean): void => {
    const raised = typeof error === 'object' && error !== null && RAISED_BY_BUS.has(error);
    p.failures.attemptFailed({
      seq: job.seq, lane: laneOf(job.event.priority), topic: job.event.topic, handler: handler.name, attempt: job.event.attempt,
      error: errorMessage(error), errorName: errorName(error) || undefined, refused, breaker: handler.breaker, job, reg: handler,
      errorCode: refused ? 'ERR_RINGBUS_CIRCUIT_OPEN' : raised ? 'ERR_RINGBUS_HANDLER_TIMEOUT' : 'ERR_RINGBUS_HANDLER_FAILED',
      // What the handler threw (whatever it is, another bus's CircuitOpenError included) reaches users as the
      // cause of a HandlerFailedError; the bus's own refusal and timeout as they are.
      ...(refused || raised ? { failure: error as RingbusError } : { thrown: error }),
    });
    if (!refused && p.options.metrics.timing) p.metrics.handler(handler.name).processing.record(ns);
  };
  return {
    admit: (_job, handler) => (handler.breaker < 0 ? 0 : p.breakers.admit(handler.breaker)),
    denied: (job, handler) => {
      if (p.lifecycle.terminated) return;
      if (p.breakers.holds) {
        p.failures.hold(job.seq, laneOf(job.event.priority), job.event.topic, { name: handler.name, breaker: handler.breaker, handlerId: -1 },
          job.event.attempt, undefined, job, handler, () => job.event.publishedAt);
      } else {
        failed(job, handler, new CircuitOpenError(handler.name), 0, true);
      }
    },
    failed: (job, handler, error, ns) => {
      if (!p.lifecycle.terminated) failed(job, handler, error, ns, false);
    },
    succeeded: (_job, handler, ns, admitted) => {
      if (p.lifecycle.terminated) return;
      p.counters.processedMain++;
      const counters = p.metrics.handler(handler.name);
      counters.succeeded++;
      if (p.options.metrics.timing) counters.processing.record(ns);
      p.breakers.onInlineSuccess(handler.breaker, ns >= slowNs, admitted);
    },
    awaiting: () => p.watchdog.inlineAwaiting(),
    done: (job, failures, result) => {
      // After stop() gave up on pending events, a late async handler's completion is already counted as abandoned.
      if (!p.lifecycle.terminated) p.inFlight.recordDone(job.seq, job.event.attempt, failures > 0, result, job.detached === true, job.event);
    },
  };
}

