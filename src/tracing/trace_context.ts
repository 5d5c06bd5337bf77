/**
 * W3C Trace Context (`traceparent`, https://www.w3.org/TR/trace-context/):
 * the header an event carries so that a handler (on the main thread, in a
 * worker, in another process) continues its publisher's trace. Written and
 * read here, side by side, with no dependency: the publishing and the
 * handling side each turn it into an OpenTelemetry span context.
 *
 *   traceparent: 00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>
 */

/** A span context as traceparent carries it. */
export interface TraceParent {
  readonly traceId: string;
  readonly spanId: string;
  readonly traceFlags: number;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';

export function formatTraceParent(traceId: string, spanId: string, traceFlags: number): string {
  return `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/** The span context in a traceparent value, or undefined when it is not a valid version-00 one (it is then ignored). */
export function parseTraceParent(value: string | undefined): TraceParent | undefined {
  if (value === undefined || value.length !== 55) return undefined;
  const m = TRACEPARENT.exec(value);
  if (m === null || m[1] === ZERO_TRACE || m[2] === ZERO_SPAN) return undefined;
  return { traceId: m[1], spanId: m[2], traceFlags: parseInt(m[3], 16) };
}
