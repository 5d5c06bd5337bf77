/**
 * loadConfig(): options from code, environment and a JSON file merged in that
 * order, with errors naming their source.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import type { BusOptions, ResolvedOptions } from '../options.js';
import { resolveOptions } from '../resolve_options.js';
import { BOOLEAN_SHORTHANDS, OPTION_TABLE, type OptionSpec } from './option_table.js';

/** The file `loadConfig` reads from `cwd` when neither `configPath` nor `RINGBUS_CONFIG` names one. @group Config */
export const CONFIG_FILE_NAME = 'ringbus.config.json';

/** Where an option's effective value came from. @group Config */
export type ConfigSource = 'code' | 'env' | 'file' | 'default';

/** What `loadConfig` reads, and from where. @group Config */
export interface LoadConfigOptions {
  /** Options given in code: they win over everything. */
  options?: BusOptions;
  /** A config file; else `RINGBUS_CONFIG`; else `ringbus.config.json` in `cwd` if there is one. */
  configPath?: string;
  /** @default process.env */
  env?: Record<string, string | undefined>;
  /** @default process.cwd() */
  cwd?: string;
  /** Resolve defaults as ResilientMessageBus does (features on), for `effective`. @default false */
  resilient?: boolean;
}

/** One option's effective value and its source. @group Config */
export interface ConfigValue {
  value: unknown;
  source: ConfigSource;
  /** The file path or environment variable it came from. */
  where?: string;
}

/** What `loadConfig` returns. @group Config */
export interface LoadedConfig {
  /** Pass to `new MessageBus(options)` / `new ResilientMessageBus(options)`. */
  options: BusOptions;
  /** The config file read, if any. */
  file: string | undefined;
  /** Every option in OPTION_TABLE: its effective value and where it came from. */
  effective: Record<string, ConfigValue>;
}

type Layer = Record<string, unknown>;

function getPath(obj: unknown, path: string): unknown {
  let at: unknown = obj;
  for (const key of path.split('.')) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Layer)[key];
  }
  return at;
}

function setPath(obj: Layer, path: string, value: unknown): void {
  const keys = path.split('.');
  let at = obj;
  for (const key of keys.slice(0, -1)) {
    if (at[key] === null || typeof at[key] !== 'object') at[key] = {};
    at = at[key] as Layer;
  }
  at[keys[keys.length - 1]] = value;
}

/** Options whose object value is one thing (a codec module and its export), replaced whole, never merged key by key. */
const ATOMIC_OPTIONS = new Set(['codec']);

/** `metrics: false` as `metrics: { timing: false }` (see BOOLEAN_SHORTHANDS), so it merges field by field. */
function expandShorthands(layer: Layer): Layer {
  const out = { ...layer };
  for (const [option, field] of Object.entries(BOOLEAN_SHORTHANDS)) {
    if (typeof out[option] === 'boolean') out[option] = { [field]: out[option] };
  }
  return out;
}

/** Later layers win; an object over `false` turns a feature back on, `false` over an object turns it off. */
function merge(...layers: Layer[]): Layer {
  const out: Layer = {};
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) {
      if (value === undefined) continue;
      const current = out[key];
      if (ATOMIC_OPTIONS.has(key)) {
        out[key] = value;
      } else if (value !== null && typeof value === 'object' && !Array.isArray(value) && current !== null && typeof current === 'object' && !Array.isArray(current)) {
        out[key] = merge(current as Layer, value as Layer);
      } else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        out[key] = merge(value as Layer);
      } else {
        out[key] = value;
      }
    }
  }
  return out;
}

function parseEnv(spec: OptionSpec, raw: string): unknown {
  const fail = (what: string): never => {
    const allowed = spec.type === 'enum' ? `one of ${spec.values!.join(', ')}` : what;
    throw new ConfigError(`${spec.env}: '${raw}' is not ${allowed} (option ${spec.path})`);
  };
  const text = raw.trim();
  switch (spec.type) {
    case 'integer':
      if (spec.path === 'handlerTimeoutMs' && text === 'false') return false;
      if (!/^-?\d+$/.test(text)) fail('an integer');
      return Number(text);
    case 'number':
      // Decimal only: Number() would also take '0x1', '0b0' or ''.
      if (!/^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(text)) fail('a decimal number');
      return Number(text);
    case 'boolean':
      if (text !== 'true' && text !== 'false') fail("'true' or 'false'");
      return text === 'true';
    case 'feature':
      if (text !== 'true' && text !== 'false') fail("'true' or 'false'");
      return text === 'true' ? {} : false;
    case 'enum':
      if (!spec.values!.includes(text)) fail('');
      return text;
    case 'string':
      return raw;
  }
}

/** Options from RINGBUS_* variables, and which variable set which option. */
function fromEnv(env: Record<string, string | undefined>): { layer: Layer; where: Map<string, string> } {
  const layer: Layer = {};
  const where = new Map<string, string>();
  const known = new Map(OPTION_TABLE.map((s) => [s.env, s]));
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('RINGBUS_') || name === 'RINGBUS_CONFIG' || name === 'RINGBUS_DEBUG' || raw === undefined) continue;
    const spec = known.get(name);
    if (spec === undefined) {
      throw new ConfigError(`${name} is not a ringbus setting (known: RINGBUS_CONFIG, RINGBUS_DEBUG, ${[...known.keys()].join(', ')})`);
    }
    setPath(layer, spec.path, parseEnv(spec, raw));
    where.set(spec.path, name);
  }
  // RINGBUS_RETRY=false with RINGBUS_RETRY_MAX_RETRIES=5 says two things: refuse rather than guess.
  for (const feature of OPTION_TABLE.filter((s) => s.type === 'feature')) {
    if (env[feature.env]?.trim() !== 'false') continue;
    const settings = [...where].filter(([path]) => path.startsWith(`${feature.path}.`)).map(([, variable]) => variable);
    if (settings.length > 0) throw new ConfigError(`${feature.env}=false turns ${feature.path} off, but ${settings.join(', ')} configure${settings.length === 1 ? 's' : ''} it`);
  }
  return { layer, where };
}

function fromFile(path: string): Layer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${path} cannot be read: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${path} must hold a JSON object`);
  }
  const { $schema: _schema, ...options } = parsed as Layer;
  if ('logger' in options) throw new ConfigError(`${path}: logger can only be given in code`);
  checkNoPrototypeKeys(options, path, '');
  return options;
}

/** `__proto__`, `constructor` and `prototype` are never options: a file that holds one is refused, not half-read. */
function checkNoPrototypeKeys(value: unknown, path: string, at: string): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
  for (const key of Object.keys(value)) {
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
      throw new ConfigError(`${path}: key ${at}${key} is not allowed`);
    }
    checkNoPrototypeKeys((value as Layer)[key], path, `${at}${key}.`);
  }
}

/** The option an error message is about: messages start with its path ("queue.capacity must …"). */
function optionOf(message: string): string | undefined {
  const m = /^(?:options\.)?([a-zA-Z]+(?:\.[a-zA-Z]+)*)/.exec(message);
  return m?.[1];
}

/**
 * Reads the configuration from code, environment and file, with precedence
 * code > env > file > defaults, and validates it exactly as the constructor
 * does. A wrong value is a ConfigError naming where it came from (the file
 * and key, or the variable) and what is allowed.
 * @group Config
 */
export function loadConfig(o: LoadConfigOptions = {}): LoadedConfig {
  const env = o.env ?? process.env;
  const cwd = o.cwd ?? process.cwd();
  let file: string | undefined;
  if (o.configPath !== undefined || env.RINGBUS_CONFIG !== undefined) {
    file = resolve(cwd, (o.configPath ?? env.RINGBUS_CONFIG)!);
    if (!existsSync(file)) {
      const from = o.configPath !== undefined ? '--config' : 'RINGBUS_CONFIG';
      throw new ConfigError(`config file ${file} (from ${from}) does not exist`);
    }
  } else if (existsSync(resolve(cwd, CONFIG_FILE_NAME))) {
    file = resolve(cwd, CONFIG_FILE_NAME);
  }
  const fileLayer = expandShorthands(file === undefined ? {} : fromFile(file));
  const { layer: envLayer, where: envWhere } = fromEnv(env);
  const { logger, ...given } = (o.options ?? {}) as BusOptions & Layer;
  const code = expandShorthands(given);
  const merged = merge(fileLayer, envLayer, code as Layer) as BusOptions;

  const sourceOf = (path: string): ConfigValue['source'] => {
    if (getPath(code, path) !== undefined) return 'code';
    if (envWhere.has(path)) return 'env';
    if (getPath(fileLayer, path) !== undefined) return 'file';
    return 'default';
  };
  let resolved: ResolvedOptions;
  try {
    resolved = resolveOptions({ ...merged, logger }, o.resilient ?? false);
  } catch (err) {
    // Name where the offending option came from: the most specific path any layer set, code > env > file.
    const message = (err as Error).message;
    for (let path = optionOf(message); path; path = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '') {
      if (getPath(code, path) !== undefined) break;
      const variable = envWhere.get(path);
      if (variable !== undefined) throw new ConfigError(`${variable}: ${message}`);
      if (getPath(fileLayer, path) !== undefined) throw new ConfigError(`${file}: ${message}`);
    }
    throw err;
  }
  const effective: Record<string, ConfigValue> = {};
  for (const spec of OPTION_TABLE) {
    const source = sourceOf(spec.path);
    let value = getPath(resolved, spec.path);
    if (spec.type === 'feature') value = value === false ? false : 'on';
    effective[spec.path] = {
      value: value === undefined ? null : value,
      source,
      where: source === 'file' ? file : source === 'env' ? envWhere.get(spec.path) : undefined,
    };
  }
  return { options: { ...merged, ...(logger !== undefined ? { logger } : {}) }, file, effective };
}
