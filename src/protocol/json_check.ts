/**
 * The strict JSON check (`strictPayloads`, codec 'json'), shared by both
 * threads: does JSON carry a value exactly, and if not, where inside it and
 * why not. Main checks payloads; workers check command results.
 *
 * JSON changes a value silently when it holds, at any depth: a function or a
 * symbol (dropped, or null in an array), a Map or Set (sent as `{}`), an
 * instance of a class with no `toJSON` (its prototype is lost: a RegExp, an
 * Error, a typed array nested in an object), `undefined` or a hole in an
 * array (null), or NaN / ±Infinity (null). `undefined` as an object's
 * property value passes: JSON drops the key, and reading it still gives
 * undefined. An object with `toJSON` (Date, Buffer) is trusted: it says
 * itself what it becomes. Symbol-keyed and non-enumerable properties are not
 * looked at (JSON skips them, and so does a reader that walks the object).
 *
 * Cost: `jsonExact` is a prefilter run after JSON.stringify succeeded (so
 * there is no cycle to guard against): one constructor read per object and
 * one typeof per value, no allocation (~30 ns alone on a ~100-byte payload,
 * 30-90 ns inside publish: see PERFORMANCE.md). It
 * may say no to what is fine (a plain object with its own toJSON, a Number
 * object, an Array subclass); `jsonLoss`, the slow walk that names the path,
 * then has the last word. So a plain payload costs one cheap pass, and only
 * a refused one pays for the message.
 */

const OBJECT_PROTO = Object.prototype;

/** False when JSON may change `v`; true only when it carries `v` exactly. Only after JSON.stringify(v) succeeded. */
export function jsonExact(v: unknown): boolean {
  if (typeof v === 'object') return v === null || objectExact(v);
  if (typeof v === 'number') return Number.isFinite(v);
  return typeof v === 'string' || typeof v === 'boolean';
}

function objectExact(o: object): boolean {
  // One property read tells the common kinds apart (an inline-cached load); the prototype check that follows
  // catches Object.create(template), whose inherited values JSON would drop.
  const c: unknown = (o as { constructor?: unknown }).constructor;
  if (c === Object) return Object.getPrototypeOf(o) === OBJECT_PROTO && propertiesExact(o);
  if (c === Array) {
    const a = o as unknown[];
    for (let i = 0; i < a.length; i++) {
      const e = a[i];
      if (typeof e === 'object') {
        if (e !== null && !objectExact(e)) return false;
      } else if (typeof e === 'number') {
        if (!Number.isFinite(e)) return false;
      } else if (typeof e !== 'string' && typeof e !== 'boolean') return false; // undefined, a hole: null in JSON
    }
    return true;
  }
  // Date, Buffer: they say what they become. Anything else but a null-prototype object: the slow walk decides.
  if (typeof (o as { toJSON?: unknown }).toJSON === 'function') return true;
  return c === undefined && Object.getPrototypeOf(o) === null && propertiesExact(o);
}

/** A plain object's values (`undefined` passes: JSON drops the key, and reading it gives undefined all the same). */
function propertiesExact(o: object): boolean {
  for (const k in o) {
    const e: unknown = (o as Record<string, unknown>)[k];
    if (typeof e === 'object') {
      if (e !== null && !objectExact(e)) return false;
    } else if (typeof e === 'number') {
      if (!Number.isFinite(e)) return false;
    } else if (typeof e !== 'string' && typeof e !== 'boolean' && e !== undefined) return false;
  }
  return true;
}

/** JSON unwraps `new Number(1)`, `new String('x')` and `new Boolean(true)`. */
const isBoxedPrimitive = (o: object): boolean => o instanceof Number || o instanceof String || o instanceof Boolean;

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
/** `path.key`, or `path["odd key"]`, as messages name a place inside a payload. */
export const member = (path: string, key: string): string => (IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`);

/**
 * Why JSON would change (or cannot carry) `value`, naming the path from
 * `root`: "payload.items[3].f is a function (…)". Undefined when JSON
 * carries it exactly. Safe on cycles (it names the first one it meets) and
 * BigInts, so it also explains what JSON.stringify threw.
 */
export function jsonLoss(value: unknown, root: string): string | undefined {
  return lossAt(value, root, [], false);
}

function lossAt(v: unknown, path: string, parents: object[], inArray: boolean): string | undefined {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(v) ? undefined : `${path} is ${v} (JSON sends null; use codec 'structured')`;
    case 'bigint':
      return `${path} is a BigInt (JSON cannot carry it; use codec 'structured', or send it as a string)`;
    case 'function':
      return `${path} is a function (no codec carries functions; JSON would drop it)`;
    case 'symbol':
      return `${path} is a symbol (no codec carries symbols; JSON would drop it)`;
    case 'undefined':
      return inArray ? `${path} is undefined (JSON sends null; use null, or codec 'structured')` : undefined;
  }
  const o = v as object | null;
  if (o === null || typeof (o as { toJSON?: unknown }).toJSON === 'function') return undefined;
  if (parents.includes(o)) {
    return `${path} is a cycle: it refers back to an object that contains it (JSON cannot carry cycles; use codec 'structured')`;
  }
  if (Array.isArray(o)) {
    parents.push(o);
    for (let i = 0; i < o.length; i++) {
      const loss = lossAt(o[i], `${path}[${i}]`, parents, true);
      if (loss !== undefined) return loss;
    }
    parents.pop();
    return undefined;
  }
  const proto: unknown = Object.getPrototypeOf(o);
  if (proto !== OBJECT_PROTO && proto !== null) {
    if (isBoxedPrimitive(o)) return undefined;
    if (o instanceof Map) return `${path} is a Map (JSON sends {}; use codec 'structured', or send Object.fromEntries(map))`;
    if (o instanceof Set) return `${path} is a Set (JSON sends {}; use codec 'structured', or send [...set])`;
    const name = className(o);
    // 'structured' would not help: v8 too sends an instance's own properties as a plain object.
    return `${path} is ${name} instance with no toJSON (JSON sends its own enumerable properties as a plain object; ` +
      'send a plain object, or add toJSON)';
  }
  parents.push(o);
  for (const k in o) {
    const loss = lossAt((o as Record<string, unknown>)[k], member(path, k), parents, false);
    if (loss !== undefined) return loss;
  }
  parents.pop();
  return undefined;
}

/** "a Foo" / "an Error" for messages; never throws. */
function className(o: object): string {
  let name = 'an object';
  try {
    const ctor = (o as { constructor?: { name?: unknown } }).constructor;
    if (typeof ctor?.name === 'string' && ctor.name !== '') name = ctor.name;
  } catch {
    // a proxy or a getter that throws: keep the generic name
  }
  return name === 'an object' ? name : `${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name}`;
}
