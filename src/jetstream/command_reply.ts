/**
 * A command's result as it travels back from the process that ran it: the
 * CommandResult contract across processes. A success carries the handler's
 * result in the bus's codec (raw bytes stay raw); a failure carries the
 * error's code and fields, and the caller rebuilds the same error class, so
 * `error.code` and `instanceof` work as for a local command.
 *
 *   +0  u8   1 success, 0 failure
 *   +1  u8   result kind: record flags RF_BINARY / RF_ENCODED / RF_UNDEFINED, or 0 (JSON text)
 *   +2  u16  reserved (0)
 *   +4  u32  attempts
 *   +8  ...  success: the result bytes; failure: JSON { code, message, name, stack, ...fields }
 */
import {
  BackpressureError, BusStoppedError, CircuitOpenError, HandlerFailedError, HandlerLoadError, HandlerTimeoutError, NoHandlerError,
  RingbusError, WorkerCrashedError, type RingbusErrorCode,
} from '../errors.js';
import type { CommandResult } from '../types.js';

/** How a value becomes bytes and back under the bus's codec. */
export interface ValueCodec {
  encode(value: unknown): { flags: number; bytes: Uint8Array };
  decode(flags: number, bytes: Uint8Array): unknown;
}

const HEADER = 8;

export function encodeReply(result: CommandResult, codec: ValueCodec): Uint8Array {
  if (result.success) {
    let encoded: { flags: number; bytes: Uint8Array };
    try {
      encoded = codec.encode(result.result);
    } catch (err) {
      return encodeReply({ success: false, attempts: result.attempts, error: new RingbusError('ERR_RINGBUS_HANDLER_FAILED',
        `the command's result cannot be sent back: ${(err as Error)?.message ?? String(err)}`) }, codec);
    }
    const out = Buffer.allocUnsafe(HEADER + encoded.bytes.byteLength);
    out.writeUInt32LE(0, 0);
    out[0] = 1;
    out[1] = encoded.flags;
    out.writeUInt32LE(result.attempts, 4);
    out.set(encoded.bytes, HEADER);
    return out;
  }
  const e = result.error as RingbusError & Record<string, unknown>;
  const fields: Record<string, unknown> = { code: e.code, message: e.message, name: e.name, stack: e.stack };
  for (const k of ['handler', 'topic', 'attempt', 'errorName', 'timeoutMs', 'reason']) if (e[k] !== undefined) fields[k] = e[k];
  const json = Buffer.from(JSON.stringify(fields));
  const out = Buffer.allocUnsafe(HEADER + json.byteLength);
  out.writeUInt32LE(0, 0);
  out.writeUInt32LE(result.attempts, 4);
  out.set(json, HEADER);
  return out;
}

export function decodeReply(data: Uint8Array, codec: ValueCodec): CommandResult {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b.length < HEADER) throw new Error(`not a ringbus command reply: ${b.length} bytes`);
  const attempts = b.readUInt32LE(4);
  const body = data.subarray(HEADER);
  if (b[0] === 1) return { success: true, result: codec.decode(b[1], body), attempts };
  const f = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8')) as Record<string, string | number | undefined>;
  return { success: false, error: rebuild(f), attempts };
}

/** The error class its code names, with the remote message and stack. */
function rebuild(f: Record<string, string | number | undefined>): RingbusError {
  const code = f.code as RingbusErrorCode;
  const s = (k: string): string => String(f[k] ?? '');
  let e: RingbusError;
  switch (code) {
    case 'ERR_RINGBUS_HANDLER_FAILED':
      e = new HandlerFailedError({ handler: s('handler'), topic: s('topic'), attempt: Number(f.attempt ?? 0), message: s('message'),
        errorName: f.errorName === undefined ? undefined : s('errorName'), stack: f.stack === undefined ? undefined : s('stack') });
      break;
    case 'ERR_RINGBUS_NO_HANDLER': e = new NoHandlerError(s('topic')); break;
    case 'ERR_RINGBUS_CIRCUIT_OPEN': e = new CircuitOpenError(s('handler')); break;
    case 'ERR_RINGBUS_HANDLER_TIMEOUT': e = new HandlerTimeoutError(s('handler'), Number(f.timeoutMs ?? 0)); break;
    case 'ERR_RINGBUS_BACKPRESSURE': e = new BackpressureError(s('topic'), Number(f.timeoutMs ?? 0), f.reason === 'dropped' ? 'dropped' : 'timeout'); break;
    case 'ERR_RINGBUS_WORKER_CRASHED': e = new WorkerCrashedError(s('handler'), ''); break;
    case 'ERR_RINGBUS_HANDLER_LOAD': e = new HandlerLoadError(s('message')); break;
    case 'ERR_RINGBUS_BUS_STOPPED': e = new BusStoppedError(s('message')); break;
    default: e = new RingbusError(code, s('message'));
  }
  // The remote words and frames: they say what happened where it happened.
  e.message = s('message');
  if (f.stack !== undefined) e.stack = s('stack');
  return e;
}

