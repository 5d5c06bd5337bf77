/**
 * Validates one publish's arguments and encodes its payload and session into
 * the publisher's reusable record, before anything is counted: a bad
 * argument throws and leaves no trace. Owns the bus's codec on the main
 * thread (BusCodec): payloads out, worker command results and dead letters
 * back in, and the strict JSON check.
 */
import { NotStartedError } from '../errors.js';
import { STRUCTURED_CODEC, codecName, loadCodec, unserializablePath, type CodecSpec, type PayloadCodec } from '../protocol/codec.js';
import { errorMessage } from '../protocol/error_text.js';
import { jsonExact, jsonLoss } from '../protocol/json_check.js';
import { MAX_HEADERS_BYTES, MAX_SESSION_BYTES } from '../protocol/limits.js';
import { REFUSED, type PublishMiddlewareChain } from '../middleware.js';
import { checkConcrete } from '../filters/topic_pattern.js';
import { PRIORITY_NAMES } from '../protocol/task.js';
import { RF_BINARY, RF_ENCODED, RF_UNDEFINED, type RecordEncoder } from '../protocol/record.js';
import type { ResolvedOptions } from '../options.js';
import type { PublishOptions } from '../types.js';
import { PUBLISH_OPTIONS, checkOptionsObject, checkTopic, laneOf } from './validation.js';

/**
 * The bus's codec on main. 'json' needs nothing loaded; 'structured' is
 * ready at once; a custom codec module is imported by `load()` (start()),
 * so until then only payloads that do not need it (Uint8Array, undefined)
 * can be published.
 */
export class BusCodec {
  readonly spec: CodecSpec;
  /** Codec 'json' with `strictPayloads`: payloads and worker command results JSON would change are refused. */
  readonly strict: boolean;
  readonly maxPayloadBytes: number;
  /** Undefined for 'json', and for a custom codec until `load()` has imported it. */
  #codec: PayloadCodec | undefined;
  #loading: Promise<void> | undefined;

  constructor(options: Pick<ResolvedOptions, 'codec' | 'strictPayloads' | 'queue'>) {
    this.spec = options.codec;
    this.strict = options.codec === 'json' && options.strictPayloads;
    this.maxPayloadBytes = options.queue.maxPayloadBytes;
    if (options.codec === 'structured') this.#codec = STRUCTURED_CODEC;
  }

  get isJson(): boolean {
    return this.spec === 'json';
  }

  get name(): string {
    return codecName(this.spec);
  }

  /** The loaded codec (structured or custom); undefined for 'json' or before `load()`. */
  get codec(): PayloadCodec | undefined {
    return this.#codec;
  }

  /** Imports a custom codec module (once); rejects naming the module and export. */
  load(): Promise<void> {
    if (this.#codec !== undefined || this.isJson) return Promise.resolve();
    this.#loading ??= loadCodec(this.spec).then((c) => {
      this.#codec = c;
    }, (err: unknown) => {
      this.#loading = undefined; // a later start() (once the module is fixed) imports it again
      throw err;
    });
    return this.#loading;
  }

  /** Bytes of a payload under a structured or custom codec; a TypeError naming the topic if it cannot encode. */
  encodePayload(topic: string, payload: unknown): Uint8Array {
    const c = this.#codec;
    if (c === undefined) {
      throw new NotStartedError('publish()', `cannot publish to topic '${topic}' yet: codec module ${this.name} is loaded by start(), ` +
        'which has not finished (await bus.start() before publishing with a custom codec)');
    }
    try {
      return c.encode(payload);
    } catch (err) {
      const where = this.spec === 'structured' ? unserializablePath(payload, 'payload') : undefined;
      throw new TypeError(`payload for topic '${topic}' cannot be encoded with codec ${this.name}: ${where ?? errorMessage(err)}`, { cause: err });
    }
  }

  /** Any value's bytes (a dead letter's payload for the file); the codec must be loaded. */
  encode(value: unknown): Uint8Array {
    if (this.#codec === undefined) throw new Error(`ringbus: codec ${this.name} is not loaded`);
    return this.#codec.encode(value);
  }

  /** Bytes the codec made (a worker command result, a record's payload, a dead letter) back to a value. */
  decode(bytes: Uint8Array): unknown {
    if (this.#codec === undefined) throw new Error(`ringbus: codec ${this.name} is not loaded`);
    return this.#codec.decode(bytes);
  }
}

/** Any value as bytes under the bus's codec (a command's result for another process); a TypeError when it cannot be. */
export function encodeValue(value: unknown, codec: BusCodec, what = 'result'): { flags: number; bytes: Uint8Array } {
  if (value === undefined) return { flags: RF_UNDEFINED, bytes: new Uint8Array(0) };
  if (value instanceof Uint8Array) return { flags: RF_BINARY, bytes: value };
  if (!codec.isJson) return { flags: RF_ENCODED, bytes: codec.encode(value) };
  if (codec.strict && !jsonExact(value)) {
    const why = jsonLoss(value, what);
    if (why !== undefined) throw new TypeError(`cannot be sent as JSON: ${why}`);
  }
  return { flags: 0, bytes: Buffer.from(JSON.stringify(value) ?? 'null') };
}

/** Bytes `encodeValue` (or a publish) made, as a value again: raw bytes are copied out of the message, into a plain Uint8Array. */
export function decodeValue(flags: number, bytes: Uint8Array, codec: BusCodec): unknown {
  if (flags & RF_UNDEFINED) return undefined;
  // Not bytes.slice(): on a Buffer that is a view of the whole message.
  if (flags & RF_BINARY) return new Uint8Array(bytes);
  if (flags & RF_ENCODED) return codec.decode(bytes);
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
}

/** The last topic found concrete (checkConcrete): most producers publish to one topic again and again. */
let lastConcrete = '';

/**
 * Fills `r` with the payload, session and headers; returns the event's lane,
 * or -1 when a publish middleware refused it (`middleware.refusedBy` says which).
 */
export function encodePublish(r: RecordEncoder, topic: string, payload: unknown, options: PublishOptions | undefined,
  session: string | undefined, codec: BusCodec, allowed: readonly string[] = PUBLISH_OPTIONS,
  middleware?: PublishMiddlewareChain, kind: 'event' | 'command' = 'event'): number {
  checkTopic(topic);
  // A wildcard is refused before anything else; the topic a producer repeats is checked once (an identity compare).
  if (topic !== lastConcrete) {
    checkConcrete(topic);
    lastConcrete = topic;
  }
  checkOptionsObject(`publish options for topic '${topic}'`, options, allowed);
  const lane = laneOf(options?.priority);
  const sessionId = options?.sessionId ?? session;
  if (sessionId !== undefined && typeof sessionId !== 'string') {
    throw new TypeError(`sessionId for topic '${topic}' must be a string, got ${String(sessionId)}`);
  }
  let headers = options?.headers;
  if (middleware !== undefined && middleware.active) {
    const out = middleware.run(topic, payload, PRIORITY_NAMES[lane], sessionId, kind, headers);
    if (out === REFUSED) return -1;
    headers = out;
  }
  r.clear();
  r.setSession(sessionId);
  if (r.sessionBytes > MAX_SESSION_BYTES) {
    throw new RangeError(`sessionId for topic '${topic}' is ${r.sessionBytes} bytes; the most is ${MAX_SESSION_BYTES}`);
  }
  if (headers !== undefined) encodeHeaders(r, topic, headers);
  if (payload instanceof Uint8Array) {
    // Raw bytes under every codec: the fastest path stays the fastest.
    r.flags = RF_BINARY;
    r.binary = payload;
    r.payloadBytes = payload.byteLength;
  } else if (payload === undefined) {
    r.flags = RF_UNDEFINED;
    r.payloadBytes = 0;
  } else if (!codec.isJson) {
    const bytes = codec.encodePayload(topic, payload);
    r.flags = RF_ENCODED;
    r.binary = bytes;
    r.payloadBytes = bytes.byteLength;
  } else {
    const text = jsonText(topic, payload, codec.strict);
    r.flags = 0;
    r.text = text;
    r.payloadBytes = Buffer.byteLength(text);
  }
  if (r.payloadBytes > codec.maxPayloadBytes) {
    throw new RangeError(`payload for topic '${topic}' is ${r.payloadBytes} bytes, more than queue.maxPayloadBytes (${codec.maxPayloadBytes})`);
  }
  return lane;
}

/**
 * Checks the headers (an object of strings, at most MAX_HEADERS_BYTES as
 * JSON) and puts their JSON text in `r`. A plain object is stringified as it
 * is (its own enumerable keys, just checked); anything else is copied first.
 */
function encodeHeaders(r: RecordEncoder, topic: string, headers: unknown): void {
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
    throw new TypeError(`headers for topic '${topic}' must be an object of strings, got ${Array.isArray(headers) ? 'an array' : String(headers)}`);
  }
  let n = 0;
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue;
    const value = (headers as Record<string, unknown>)[name];
    if (name.length === 0) throw new TypeError(`headers for topic '${topic}': a header name is empty`);
    if (typeof value !== 'string') {
      throw new TypeError(`headers for topic '${topic}': header '${name}' must be a string, got ${typeof value === 'object' ? String(value) : typeof value}`);
    }
    n++;
  }
  if (n === 0) return;
  const proto = Object.getPrototypeOf(headers) as unknown;
  // Another prototype may hold a toJSON or getters JSON.stringify would follow: only the own strings go.
  const json = JSON.stringify(proto === Object.prototype || proto === null ? headers : { ...headers });
  const bytes = Buffer.byteLength(json);
  if (bytes > MAX_HEADERS_BYTES) {
    throw new RangeError(`headers for topic '${topic}' are ${bytes} bytes as JSON; the most is ${MAX_HEADERS_BYTES}`);
  }
  r.setHeaders(json, bytes);
}

/** Headers another process sent (JSON text): their frozen object, or a TypeError/RangeError saying what is wrong. */
export function checkRemoteHeaders(json: string, bytes: number): Readonly<Record<string, string>> {
  if (bytes > MAX_HEADERS_BYTES) throw new RangeError(`headers are ${bytes} bytes as JSON; the most is ${MAX_HEADERS_BYTES}`);
  const value = JSON.parse(json) as unknown;
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    throw new TypeError('headers are not an object of strings');
  }
  return Object.freeze(value as Record<string, string>);
}

/**
 * A payload as JSON text. What JSON cannot encode (a cycle, a BigInt, a
 * function alone) is a TypeError naming the path; with `strict`, so is
 * what it would silently change. The check runs after stringify succeeded,
 * and costs one cheap walk (see json_check.ts).
 */
function jsonText(topic: string, payload: unknown, strict: boolean): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(payload);
  } catch (err) {
    const why = jsonLoss(payload, 'payload') ?? errorMessage(err);
    throw new TypeError(`payload for topic '${topic}' cannot be encoded as JSON: ${why}`, { cause: err });
  }
  if (strict && !jsonExact(payload)) {
    // The prefilter said maybe: the full walk decides, and names the path.
    const why = jsonLoss(payload, 'payload');
    if (why !== undefined) throw new TypeError(`payload for topic '${topic}' cannot be sent as JSON: ${why}`);
  }
  if (text === undefined) throw new TypeError(`payload for topic '${topic}' cannot be encoded as JSON (a ${typeof payload})`);
  return text;
}
