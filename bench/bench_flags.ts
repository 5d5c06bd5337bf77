/**
 * The flags of `ringbus bench` (bench/bus_performance.ts): their table, the
 * usage text, the command line that reproduces a run, and parsing into a
 * BenchConfig. Nothing is parsed at import: main() calls parseBenchFlags().
 */
import { relative } from 'node:path';
import { parseArgs } from 'node:util';

export const PHASES = ['sustained', 'max', 'cpu', 'idle', 'baselines'] as const;
export type Phase = (typeof PHASES)[number];
/** The parts of the JetStream phase (`--transport jetstream`, bench/phases/jetstream.ts). */
export const JS_PARTS = ['throughput', 'latency', 'kill', 'baseline'] as const;
export type JsPart = (typeof JS_PARTS)[number];

/** Everything a run is configured by, parsed and checked. */
export interface BenchConfig {
  /** Events/s offered in the sustained phase; null = as fast as possible. */
  rate: number | null;
  duration: number;
  warmup: number;
  /** Pool min = max threads for every bus but 'tuned'; null = the library's default pool. */
  threads: number | null;
  tunedThreads: number;
  payloadBytes: number;
  binary: boolean;
  costUs: number;
  failureRate: number;
  crashRate: number;
  timeoutRate: number;
  chaos: boolean;
  /** handlerTimeoutMs to give the buses; null = ResilientMessageBus's default. */
  handlerTimeoutMs: number | null;
  maxSeconds: number;
  maxRounds: number;
  cpuRates: number[];
  cpuSeconds: number;
  idleSeconds: number;
  idleRate: number;
  baselineSeconds: number;
  piscinaInFlight: number;
  phases: Set<Phase>;
  /** 'jetstream': only the JetStream phase runs (phases is then empty). */
  transport: 'local' | 'jetstream';
  /** NATS server URL(s), comma-separated. */
  servers: string;
  /** Consumer process counts of the JetStream throughput and latency parts, in order. */
  consumers: number[];
  jsParts: Set<JsPart>;
  jsRounds: number;
  jsEvents: number;
  jsRate: number;
  jsSeconds: number;
  jsAckWaitMs: number;
  jsBaselineSeconds: number;
  json: boolean;
  report: string;
  /** The command that reproduces this run, with its flags. */
  command: string;
}

/** A mistake on the command line: printed with the usage, exit code 2. */
export class FlagError extends Error {}

interface FlagSpec {
  type: 'string' | 'boolean';
  default?: string;
  help: string;
  short?: string;
}

const FLAGS = {
  rate: { type: 'string', default: '10000', help: "sustained phase: events/s offered; 0 or 'max' = as fast as possible" },
  duration: { type: 'string', default: '10', help: 'sustained phase: measured seconds (its RSS slope is judged on runs ≥ 30 s)' },
  warmup: { type: 'string', default: '1', help: 'sustained phase: seconds at the same rate before it, not measured' },
  threads: { type: 'string', help: "pool min = max threads for every bus but 'tuned' (default: the library's own pool)" },
  'payload-bytes': { type: 'string', default: '100', help: 'payload size: JSON text length, or bytes with --binary' },
  binary: { type: 'boolean', help: 'publish a Uint8Array (raw bytes) instead of a JSON object in every phase' },
  'handler-cost-us': { type: 'string', default: '0', help: 'CPU each handler call burns, µs (0 = no-op); reports efficiency' },
  'failure-rate': { type: 'string', default: '0', help: 'chaos (sustained phase): fraction of attempts that throw' },
  'crash-rate': { type: 'string', default: '0', help: 'chaos: fraction of first attempts that process.exit() their worker' },
  'timeout-rate': { type: 'string', default: '0', help: 'chaos: fraction of first attempts that hang past handlerTimeoutMs' },
  'handler-timeout-ms': { type: 'string', default: '200', help: 'chaos: handlerTimeoutMs, given only with --timeout-rate > 0' },
  'max-seconds': { type: 'string', default: '5', help: 'max-rate phase: measured seconds per mode, split into the rounds' },
  'max-rounds': { type: 'string', default: '5', help: 'max-rate phase: rounds per mode, a fresh bus each (min/median/max)' },
  'tuned-threads': { type: 'string', default: '1', help: "max-rate phase: pool threads of the 'tuned' mode" },
  'cpu-rates': { type: 'string', default: '1000,5000,10000,40000', help: 'CPU phase: comma-separated offered rates' },
  'cpu-seconds': { type: 'string', default: '1.5', help: 'CPU phase: measured seconds per rate' },
  'idle-seconds': { type: 'string', default: '3', help: 'idle phase: measured seconds idle, then as long at --idle-rate' },
  'idle-rate': { type: 'string', default: '100', help: 'idle phase: the low rate, events/s' },
  'baseline-seconds': { type: 'string', default: '2', help: 'baselines: measured seconds of Piscina and of the inline emitter' },
  'piscina-in-flight': { type: 'string', default: '1024', help: 'baselines: Piscina tasks kept outstanding' },
  phases: { type: 'string', default: PHASES.join(','), help: 'which phases to run (comma-separated subset)' },
  'skip-baselines': { type: 'boolean', help: 'leave out the baselines phase (same as --phases without it)' },
  transport: { type: 'string', default: 'local', help: "'jetstream': instead of the phases above, ringbus across processes through " +
    'NATS JetStream (consumer processes, throughput, latency, the cost of a SIGKILL, per-event messages); the flags below' },
  servers: { type: 'string', help: 'jetstream: NATS server URL(s), comma-separated (default: NATS_URL, else nats://127.0.0.1:4222)' },
  consumers: { type: 'string', default: '1,2', help: 'jetstream: consumer process counts, comma-separated: throughput and latency run ' +
    'with each; the first is judged' },
  'js-parts': { type: 'string', default: JS_PARTS.join(','), help: 'jetstream: which parts to run (comma-separated subset)' },
  'js-rounds': { type: 'string', default: '5', help: 'jetstream: rounds of throughput per consumer count, and of the per-event baseline' },
  'js-events': { type: 'string', default: '300000', help: 'jetstream: events per throughput round' },
  'js-rate': { type: 'string', default: '10000', help: 'jetstream: events/s offered in the latency and kill parts' },
  'js-seconds': { type: 'string', default: '5', help: 'jetstream: measured seconds of the latency part (after 1 s warm-up)' },
  'js-ack-wait-ms': { type: 'string', default: '5000', help: "jetstream: the consumers' ackWaitMs in the kill part only " +
    '(the library default is 30000; labelled in the report)' },
  'js-baseline-seconds': { type: 'string', default: '2', help: 'jetstream: seconds per round of per-event js.publish' },
  json: { type: 'boolean', help: 'print the result as one JSON object (BenchResult, bench/report_types.ts) on stdout' },
  report: { type: 'string', default: '', help: 'write a self-contained HTML report (charts inline) to this file' },
  help: { type: 'boolean', short: 'h', help: 'print this help' },
} satisfies Record<string, FlagSpec>;
type FlagName = keyof typeof FLAGS;

/**
 * How this script was started, for the usage and `command:` lines: the CLI
 * says so in RINGBUS_BENCH_COMMAND ('npx ringbus bench'); from source it is
 * tsx; from dist/ without the CLI, plain node on the script.
 */
export function commandName(): string {
  const fromCli = process.env.RINGBUS_BENCH_COMMAND;
  if (fromCli) return fromCli;
  if (import.meta.url.endsWith('.ts')) return 'npx tsx bench/bus_performance.ts';
  const script = process.argv[1] ?? 'bus_performance.js';
  return `node ${relative(process.cwd(), script) || script}`;
}

/** Splits `text` into lines of at most `width` characters, at spaces (a longer word is cut). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  const words = text.split(' ').flatMap((w) => {
    const chars = [...w];
    if (chars.length <= width) return [w];
    return Array.from({ length: Math.ceil(chars.length / width) }, (_, k) => chars.slice(k * width, (k + 1) * width).join(''));
  });
  for (const word of words) {
    if (line.length > 0 && [...line].length + 1 + [...word].length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line.length > 0 ? `${line} ${word}` : word;
    }
  }
  lines.push(line);
  return lines;
}

export function usage(): string {
  const name = commandName();
  const lines = [`usage: ${name} [flags]${name.includes('tsx') ? '   (also: npm run bench -- [flags])' : ''}`, '',
    'Runs ResilientMessageBus at its default options (what an app gets), then a tuned configuration, labelled,',
    'and Piscina and an inline EventEmitter as baselines. With --transport jetstream: the same bus across processes',
    'through NATS JetStream instead (the --js-* flags). Exit code: 0 every target met, 1 accounting broken',
    'or the bench failed, 2 bad flags, 3 a performance target missed.', ''];
  for (const [flagName, f] of Object.entries(FLAGS) as [FlagName, FlagSpec][]) {
    const left = `  --${flagName}${f.short ? `, -${f.short}` : ''}${f.type === 'string' ? ' VALUE' : ''}`;
    const def = f.type === 'boolean' || f.default === undefined ? '' : f.default === '' ? '' : ` (default: ${f.default})`;
    const text = wrap(`${f.help}${def}`, 120 - 32);
    lines.push(`${left.padEnd(31)} ${text[0]}`, ...text.slice(1).map((t) => `${' '.repeat(32)}${t}`));
  }
  return lines.join('\n');
}

/** Parses the command line; throws FlagError on a mistake. `null`: --help was asked for. */
export function parseBenchFlags(argv: string[]): BenchConfig | null {
  const options = Object.fromEntries(Object.entries(FLAGS).map(([k, f]: [string, FlagSpec]) =>
    [k, f.short ? { type: f.type, short: f.short } : { type: f.type }]));
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as typeof values;
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
  if (values.help === true) return null;
  const text = (name: FlagName): string => {
    const v = values[name];
    return typeof v === 'string' ? v : ((FLAGS[name] as FlagSpec).default ?? '');
  };
  const num = (name: FlagName, { min = 0, max = Infinity, integer = false } = {}): number => {
    const v = Number(text(name));
    if (text(name).trim() === '' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      throw new FlagError(`--${name} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got '${text(name)}'`);
    }
    return v;
  };
  const rates = (name: FlagName): number[] => {
    const list = text(name).split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
    if (list.some((r) => !Number.isFinite(r) || r <= 0)) throw new FlagError(`--${name} takes rates > 0, comma-separated, got '${text(name)}'`);
    return list;
  };
  const phases = new Set<Phase>();
  for (const p of text('phases').split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    if (!(PHASES as readonly string[]).includes(p)) throw new FlagError(`--phases takes a subset of ${PHASES.join(',')}, got '${p}'`);
    phases.add(p as Phase);
  }
  if (values['skip-baselines'] === true) phases.delete('baselines');
  const transport = text('transport').trim() as BenchConfig['transport'];
  if (transport !== 'local' && transport !== 'jetstream') throw new FlagError(`--transport takes local or jetstream, got '${transport}'`);
  if (transport === 'jetstream') {
    if (values.phases !== undefined || values['skip-baselines'] === true) {
      throw new FlagError(`--phases and --skip-baselines choose among the in-process phases; --transport jetstream runs its own parts ` +
        `(--js-parts ${JS_PARTS.join(',')})`);
    }
    phases.clear();
  }
  const jsParts = new Set<JsPart>();
  for (const p of text('js-parts').split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    if (!(JS_PARTS as readonly string[]).includes(p)) throw new FlagError(`--js-parts takes a subset of ${JS_PARTS.join(',')}, got '${p}'`);
    jsParts.add(p as JsPart);
  }
  if (transport === 'jetstream' && jsParts.size === 0) throw new FlagError(`no part left to run (--js-parts ${text('js-parts')})`);
  const consumers = text('consumers').split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  if (consumers.length === 0 || consumers.some((n) => !Number.isInteger(n) || n < 1 || n > 16)) {
    throw new FlagError(`--consumers takes process counts from 1 to 16, comma-separated, got '${text('consumers')}'`);
  }
  const servers = typeof values.servers === 'string' ? values.servers.trim() : (process.env.NATS_URL ?? 'nats://127.0.0.1:4222');
  if (servers.length === 0) throw new FlagError("--servers takes NATS URL(s), got ''");
  const rateText = text('rate').trim().toLowerCase();
  const failureRate = num('failure-rate', { max: 1 });
  const crashRate = num('crash-rate', { max: 1 });
  const timeoutRate = num('timeout-rate', { max: 1 });
  const cpuRates = rates('cpu-rates');
  if (cpuRates.length === 0) phases.delete('cpu');
  // A run that measures nothing must not report every target met.
  if (phases.size === 0 && transport === 'local') throw new FlagError(`no phase left to run (--phases ${text('phases')}${values['skip-baselines'] === true ? ' with --skip-baselines' : ''})`);
  return {
    rate: rateText === 'max' || rateText === '0' ? null : num('rate', { min: 1 }),
    duration: num('duration', { min: 0.5 }),
    warmup: num('warmup', { max: 600 }),
    threads: values.threads === undefined ? null : num('threads', { min: 1, max: 256, integer: true }),
    tunedThreads: num('tuned-threads', { min: 1, max: 256, integer: true }),
    payloadBytes: num('payload-bytes', { min: 1, max: 1 << 20, integer: true }),
    binary: values.binary === true,
    costUs: num('handler-cost-us', { max: 1e6 }),
    failureRate,
    crashRate,
    timeoutRate,
    chaos: failureRate > 0 || crashRate > 0 || timeoutRate > 0,
    handlerTimeoutMs: timeoutRate > 0 ? num('handler-timeout-ms', { min: 1, integer: true }) : null,
    maxSeconds: num('max-seconds', { min: 0.2 }),
    maxRounds: num('max-rounds', { min: 1, max: 100, integer: true }),
    cpuRates,
    cpuSeconds: num('cpu-seconds', { min: 0.2 }),
    idleSeconds: num('idle-seconds', { min: 0.2, max: 600 }),
    idleRate: num('idle-rate', { min: 1 }),
    baselineSeconds: num('baseline-seconds', { min: 0.2, max: 600 }),
    piscinaInFlight: num('piscina-in-flight', { min: 1, max: 1e6, integer: true }),
    phases,
    transport,
    servers,
    consumers,
    jsParts,
    jsRounds: num('js-rounds', { min: 1, max: 100, integer: true }),
    jsEvents: num('js-events', { min: 1000, max: 1e9, integer: true }),
    jsRate: num('js-rate', { min: 1, max: 1e7 }),
    jsSeconds: num('js-seconds', { min: 0.5, max: 3600 }),
    jsAckWaitMs: num('js-ack-wait-ms', { min: 1000, max: 86_400_000, integer: true }),
    jsBaselineSeconds: num('js-baseline-seconds', { min: 0.2, max: 600 }),
    json: values.json === true,
    report: text('report'),
    command: [commandName(), ...argv].join(' '),
  };
}
