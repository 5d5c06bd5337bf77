/**
 * The JSON Schema of the config file, generated from the option table.
 */
import { BOOLEAN_SHORTHANDS, OPTION_TABLE, type OptionSpec } from './option_table.js';

type Schema = Record<string, unknown>;

function leaf(spec: OptionSpec): Schema {
  const base: Schema = { description: `${spec.description} Default: ${String(spec.default)}. Env: ${spec.env}.` };
  switch (spec.type) {
    case 'integer':
      return spec.path === 'handlerTimeoutMs'
        ? { ...base, oneOf: [{ type: 'integer', minimum: 1 }, { const: false }] }
        : { ...base, type: 'integer', minimum: spec.minimum ?? 0, ...(spec.maximum !== undefined ? { maximum: spec.maximum } : {}) };
    case 'number':
      return { ...base, type: 'number', minimum: spec.minimum ?? 0, ...(spec.maximum !== undefined ? { maximum: spec.maximum } : {}) };
    case 'boolean':
      return { ...base, type: 'boolean' };
    case 'string':
      // Servers: one URL (comma-separated ones in the environment) or a list.
      return spec.path === 'transport.jetstream.servers'
        ? { ...base, oneOf: [{ type: 'string', minLength: 1 }, { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } }] }
        : { ...base, type: 'string', minLength: 1 };
    case 'enum':
      // A custom codec is an object in the file: { "module": "./codec.mjs", "export": "codec" }.
      return spec.path === 'codec'
        ? {
          ...base,
          oneOf: [
            { enum: [...spec.values!] },
            {
              type: 'object', additionalProperties: false, required: ['module'],
              properties: { module: { type: 'string', minLength: 1 }, export: { type: 'string', minLength: 1 } },
            },
          ],
        }
        : { ...base, enum: [...spec.values!] };
    case 'feature':
      return base;
  }
}

/** The JSON Schema of ringbus.config.json, derived from the option table (so editors complete it). */
export function configJsonSchema(): Schema {
  const properties: Record<string, Schema> = { $schema: { type: 'string' } };
  // Groups by dotted path ('pool', 'transport', 'transport.jetstream'): each an object of its keys.
  const groups = new Map<string, Record<string, Schema>>();
  const groupOf = (path: string): Record<string, Schema> => {
    let g = groups.get(path);
    if (g === undefined) groups.set(path, (g = {}));
    return g;
  };
  for (const spec of OPTION_TABLE) {
    const keys = spec.path.split('.');
    if (spec.type === 'feature') {
      groupOf(spec.path);
      for (let i = 1; i < keys.length; i++) groupOf(keys.slice(0, i).join('.'));
      continue;
    }
    const leafKey = keys.pop()!;
    for (let i = 1; i <= keys.length; i++) groupOf(keys.slice(0, i).join('.'));
    (keys.length === 0 ? properties : groupOf(keys.join('.')))[leafKey] = leaf(spec);
  }
  // Code or file only (no environment variables): Node's per-worker heap limits.
  const mb = { type: 'number', exclusiveMinimum: 0 };
  groupOf('pool').resourceLimits = {
    description: "Heap limits per worker (Node's resourceLimits); a worker over them dies and is replaced. File or code only.",
    type: 'object', additionalProperties: false,
    properties: { maxOldGenerationSizeMb: mb, maxYoungGenerationSizeMb: mb, codeRangeSizeMb: mb, stackSizeMb: mb },
  };
  // Deepest first, so a group's object holds its subgroups when it is built.
  for (const path of [...groups.keys()].sort((a, b) => b.split('.').length - a.split('.').length)) {
    const object: Schema = { type: 'object', additionalProperties: false, properties: groups.get(path)! };
    const feature = OPTION_TABLE.find((s) => s.path === path && s.type === 'feature');
    const shorthand = BOOLEAN_SHORTHANDS[path];
    const schema = feature ? { description: feature.description, oneOf: [{ const: false }, { const: true }, object] }
      : shorthand ? { description: `A boolean is short for { "${shorthand}": that boolean }.`, oneOf: [{ type: 'boolean' }, object] }
        : object;
    const keys = path.split('.');
    const key = keys.pop()!;
    (keys.length === 0 ? properties : groupOf(keys.join('.')))[key] = schema;
  }
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'ringbus configuration (ringbus.config.json)',
    type: 'object',
    additionalProperties: false,
    properties,
  };
}
