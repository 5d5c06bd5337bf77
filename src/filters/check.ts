/**
 * Checks of the filter factories' arguments, run once at creation so that a
 * filter never validates per delivery: each error names the filter and the
 * argument and echoes the bad value.
 */

/** A bad value as an error message echoes it. */
export function show(value: unknown): string {
  switch (typeof value) {
    case 'string': return `'${value.length > 80 ? `${value.slice(0, 80)}…` : value}'`;
    case 'function': return `function ${value.name || '(anonymous)'}`;
    case 'object': {
      if (value === null) return 'null';
      if (value instanceof RegExp) return String(value);
      if (value instanceof Set) return `a Set of ${value.size}`;
      let json: string | undefined;
      try {
        json = JSON.stringify(value, (_key, v: unknown) =>
          typeof v === 'function' ? `[function ${v.name || '(anonymous)'}]` : typeof v === 'bigint' ? `${v}n` : v);
      } catch {
        // Cyclic: the constructor's name still says what it was.
      }
      if (json === undefined) return `a ${value.constructor?.name ?? 'object'}`;
      return json.length > 80 ? `${json.slice(0, 80)}…` : json;
    }
    case 'bigint': return `${value}n`;
    default: return String(value);
  }
}

/**
 * `options` is an object whose keys are all in `allowed`: a typo
 * (`{ perSecnd: 5 }`) is an error, not an option silently left at its default.
 */
export function checkFilterOptions(filter: string, options: unknown, allowed: readonly string[]): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${filter}: options must be an object, got ${show(options)}`);
  }
  for (const key in options) {
    if (!allowed.includes(key)) throw new TypeError(`${filter}: ${key} is not an option (allowed: ${allowed.join(', ')})`);
  }
}

/**
 * A list of strings given as an array or a Set, copied into a Set of its own:
 * the filter does not change when the caller's collection does later.
 */
export function stringSet(what: string, values: unknown): Set<string> {
  const list: unknown[] | undefined = Array.isArray(values) ? values : values instanceof Set ? [...values] : undefined;
  if (list === undefined) throw new TypeError(`${what} must be an array or a Set of strings, got ${show(values)}`);
  for (let i = 0; i < list.length; i++) {
    if (typeof list[i] !== 'string') throw new TypeError(`${what}[${i}] must be a string, got ${show(list[i])}`);
  }
  return new Set(list as string[]);
}
