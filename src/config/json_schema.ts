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
      return { ...base, type: 'string', minLength: 1 };
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
  const groups = new Map<string, Record<string, Schema>>();
  for (const spec of OPTION_TABLE) {
    const [group, key] = spec.path.split('.');
    if (key === undefined) {
      if (spec.type !== 'feature') properties[group] = leaf(spec);
      continue;
    }
    if (!groups.has(group)) groups.set(group, {});
    groups.get(group)![key] = leaf(spec);
  }
  // Code or file only (no environment variables): Node's per-worker heap limits.
  const mb = { type: 'number', exclusiveMinimum: 0 };
  groups.get('pool')!.resourceLimits = {
    description: "Heap limits per worker (Node's resourceLimits); a worker over them dies and is replaced. File or code only.",
    type: 'object', additionalProperties: false,
    properties: { maxOldGenerationSizeMb: mb, maxYoungGenerationSizeMb: mb, codeRangeSizeMb: mb, stackSizeMb: mb },
  };
  for (const [group, props] of groups) {
    const object: Schema = { type: 'object', additionalProperties: false, properties: props };
    const feature = OPTION_TABLE.find((s) => s.path === group && s.type === 'feature');
    const shorthand = BOOLEAN_SHORTHANDS[group];
    if (feature) properties[group] = { description: feature.description, oneOf: [{ const: false }, { const: true }, object] };
    else if (shorthand) properties[group] = { description: `A boolean is short for { "${shorthand}": that boolean }.`, oneOf: [{ type: 'boolean' }, object] };
    else properties[group] = object;
  }
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'ringbus configuration (ringbus.config.json)',
    type: 'object',
    additionalProperties: false,
    properties,
  };
}
