/**
 * Payload codecs, shared by both threads: the form the `codec` option takes
 * once resolved (it travels to workers in workerData, so it is data, not
 * functions), the structured codec (v8 serialization), and loading a custom
 * codec module with errors that name the module and the export.
 *
 * Main encodes payloads and decodes worker command results with the bus's
 * codec; workers decode payloads and encode command results with their own
 * copy, loaded from the same module. 'json' is not a PayloadCodec: JSON
 * payloads stay UTF-8 text in records (no RF_ENCODED flag), as before codecs
 * existed.
 */
import { deserialize, serialize } from 'node:v8';
import { errorMessage } from './error_text.js';
import { member } from './json_check.js';

/** What a custom codec module exports (under `codec.export`): bytes out of any payload, and the payload back. @group Options */
export interface PayloadCodec {
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}

/** The `codec` option resolved: a name, or a module (a file: URL) and its export. */
export type CodecSpec = 'json' | 'structured' | { readonly module: string; readonly export: string };

/**
 * v8's structured serialization: Map, Set, Date, BigInt, RegExp, typed
 * arrays, Errors and cycles survive; class instances arrive as plain objects;
 * functions and symbols cannot be encoded.
 */
export const STRUCTURED_CODEC: PayloadCodec = Object.freeze({
  encode: (value: unknown): Uint8Array => serialize(value),
  decode: (bytes: Uint8Array): unknown => deserialize(bytes),
});

/**
 * Where v8 serialization fails inside `value` ("payload.items[0].f is a
 * function"), for the message of a failed structured encode; undefined if
 * no function or symbol is found. Only on the error path: it allocates.
 */
export function unserializablePath(value: unknown, root: string): string | undefined {
  const seen = new Set<object>();
  const visit = (v: unknown, path: string): string | undefined => {
    if (typeof v === 'function') return `${path} is a function`;
    if (typeof v === 'symbol') return `${path} is a symbol`;
    if (v === null || typeof v !== 'object' || seen.has(v)) return undefined;
    seen.add(v);
    if (v instanceof Map) {
      let i = 0;
      for (const [k, x] of v) {
        const found = visit(k, `${path} (a Map) key #${i}`) ?? visit(x, `${path}.get(${typeof k === 'string' ? JSON.stringify(k) : `key #${i}`})`);
        if (found !== undefined) return found;
        i++;
      }
      return undefined;
    }
    if (v instanceof Set) {
      let i = 0;
      for (const x of v) {
        const found = visit(x, `${path} (a Set) item #${i++}`);
        if (found !== undefined) return found;
      }
      return undefined;
    }
    for (const k of Object.keys(v)) {
      const found = visit((v as Record<string, unknown>)[k], Array.isArray(v) ? `${path}[${k}]` : member(path, k));
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return visit(value, root);
}

/** How messages name a codec: 'json', 'structured' or module#export. */
export const codecName = (spec: CodecSpec): string => (typeof spec === 'string' ? spec : `${spec.module}#${spec.export}`);

/** Imports a module by file: URL (workers pass one that registers tsx's hooks first for .ts modules). */
export type ModuleImporter = (url: string) => Promise<Record<string, unknown>>;

const plainImport: ModuleImporter = (url) => import(url) as Promise<Record<string, unknown>>;

/**
 * The codec a spec names; a module is imported and its export checked. The
 * errors name the module and the export: an Error when the module does not
 * load, a TypeError when the export is missing or lacks encode/decode.
 */
export async function loadCodec(spec: CodecSpec, importModule: ModuleImporter = plainImport): Promise<PayloadCodec | undefined> {
  if (spec === 'json') return undefined;
  if (spec === 'structured') return STRUCTURED_CODEC;
  let mod: Record<string, unknown>;
  try {
    mod = await importModule(spec.module);
  } catch (err) {
    throw new Error(`cannot load codec module ${spec.module}: ${errorMessage(err)}`, { cause: err });
  }
  const where = `codec module ${spec.module}`;
  if (!(spec.export in mod)) {
    const found = Object.keys(mod).sort();
    throw new TypeError(`${where} has no export '${spec.export}' (exports: ${found.length ? found.join(', ') : 'none'})`);
  }
  const c = mod[spec.export] as Partial<PayloadCodec> | null;
  const missing = ['encode', 'decode'].filter((m) => c === null || (typeof c !== 'object' && typeof c !== 'function') ||
    typeof (c as Record<string, unknown>)[m] !== 'function');
  if (missing.length > 0) {
    throw new TypeError(`${where}: export '${spec.export}' must be an object with encode(value) and decode(bytes) functions; ` +
      `${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} missing`);
  }
  const codec = c as PayloadCodec;
  const name = codecName(spec);
  // Called as methods (a codec may keep state on `this`); what encode returns is checked once here, for every caller.
  return Object.freeze({
    encode(value: unknown): Uint8Array {
      const bytes = codec.encode(value);
      if (!(bytes instanceof Uint8Array)) {
        throw new TypeError(`codec ${name}: encode() must return a Uint8Array, got ${bytes === null ? 'null' : typeof bytes}`);
      }
      return bytes;
    },
    decode: (bytes: Uint8Array): unknown => codec.decode(bytes),
  });
}
