/**
 * The `ringbus` command: `bench`, `config`, `dlq list|count|replay`.
 * A user mistake is one line on stderr and a non-zero exit code, never a stack trace.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { loadConfig } from '../config/load_config.js';
import { OPTION_TABLE } from '../config/option_table.js';
import { JsonLinesDeadLetterSink } from '../dead_letter/json_lines_sink.js';
import { RingbusError } from '../errors.js';
import { workerHandler } from '../handler_ref.js';
import { MessageBus } from '../message_bus.js';

/** A mistake in how the command was called: printed as one line, exit code 2. */
class UsageError extends Error {}

const HELP = `usage: ringbus <command> [options]

commands:
  bench [options]                         the sustained-load benchmark (ringbus bench --help lists its flags)
  config [--config PATH] [--json]         the effective configuration and where each value came from
  dlq list --path FILE [--json]           dead letters still in a dead-letter file
  dlq count --path FILE                   how many dead letters a file holds
  dlq replay --path FILE --handlers MODULE
                                          replay them: MODULE exports each handler under the name it was
                                          registered with; deliveries that fail again are dead-lettered again

configuration comes from code > environment (RINGBUS_*) > file (--config, RINGBUS_CONFIG or ./ringbus.config.json) > defaults
`;

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

function parse(args: string[], options: NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>): Record<string, unknown> {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

async function bench(args: string[]): Promise<number> {
  const here = fileURLToPath(import.meta.url);
  const fromSource = here.endsWith('.ts');
  const script = fileURLToPath(new URL(`../../bench/bus_performance.${fromSource ? 'ts' : 'js'}`, import.meta.url));
  if (!existsSync(script)) throw new UsageError(`the benchmark is not installed (${script} is missing)`);
  const child = spawn(process.execPath, [...process.execArgv, script, ...args], { stdio: 'inherit' });
  return new Promise((done) => child.on('exit', (code, signal) => done(code ?? (signal ? 1 : 0))));
}

function config(args: string[]): number {
  const v = parse(args, { config: { type: 'string' }, json: { type: 'boolean' }, resilient: { type: 'boolean' }, help: { type: 'boolean' } });
  if (v.help) {
    process.stdout.write('usage: ringbus config [--config PATH] [--json] [--resilient]\n  defaults are MessageBus\'s; --resilient shows ResilientMessageBus\'s (resilience features on)\n');
    return 0;
  }
  const loaded = loadConfig({ configPath: v.config as string | undefined, resilient: Boolean(v.resilient) });
  if (v.json) {
    console.log(JSON.stringify({ file: loaded.file ?? null, options: loaded.effective }, null, 2));
    return 0;
  }
  console.log(`config file: ${loaded.file ?? 'none'}; defaults as ${v.resilient ? 'ResilientMessageBus' : 'MessageBus (--resilient: as ResilientMessageBus)'}`);
  const rows = OPTION_TABLE.map((spec) => {
    const e = loaded.effective[spec.path];
    return [spec.path, JSON.stringify(e.value), e.where ? `${e.source} (${e.where})` : e.source];
  });
  const width = [0, 1].map((i) => Math.max(...rows.map((r) => r[i].length)));
  for (const [path, value, source] of rows) console.log(`${path.padEnd(width[0])}  ${value.padEnd(width[1])}  ${source}`);
  return 0;
}

function readDeadLetters(path: string | undefined): { file: string; entries: ReturnType<typeof JsonLinesDeadLetterSink.parse> } {
  if (path === undefined) throw new UsageError('--path FILE is required (a dead-letter JSON Lines file)');
  const file = resolve(path);
  if (!existsSync(file)) throw new UsageError(`dead-letter file ${file} does not exist`);
  return { file, entries: new JsonLinesDeadLetterSink(file).load() };
}

async function dlq(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action === undefined || action === '--help' || rest.includes('--help')) {
    process.stdout.write(HELP.split('\n').filter((l) => l.includes('dlq') || l.startsWith('    ')).join('\n') + '\n');
    return action === undefined ? 2 : 0;
  }
  if (action === 'list' || action === 'count') {
    const v = parse(rest, { path: { type: 'string' }, json: { type: 'boolean' } });
    const { entries } = readDeadLetters(v.path as string | undefined);
    if (action === 'count') console.log(entries.length);
    else if (v.json) console.log(JSON.stringify(entries, (_k, x: unknown) => (x instanceof Uint8Array ? { $binary: Buffer.from(x).toString('base64') } : x), 2));
    else {
      for (const e of entries) {
        console.log(`${e.id}  ${new Date(e.lastAttemptAt).toISOString()}  ${e.event.topic} → ${e.handler}  attempts=${e.attempts}  ${e.error}`);
      }
      console.log(`${entries.length} dead letter${entries.length === 1 ? '' : 's'}`);
    }
    return 0;
  }
  if (action === 'replay') {
    const v = parse(rest, { path: { type: 'string' }, handlers: { type: 'string' } });
    const { file, entries } = readDeadLetters(v.path as string | undefined);
    if (v.handlers === undefined) throw new UsageError('--handlers MODULE is required (the module exporting the handlers to replay to)');
    const module = resolve(v.handlers as string);
    if (!existsSync(module)) throw new UsageError(`handler module ${module} does not exist`);
    const bus = new MessageBus({ logger: quiet, deadLetter: { path: file, capacity: Math.max(1, entries.length) } });
    const seen = new Set<string>();
    for (const e of entries) {
      const key = `${e.event.topic}\u0000${e.handler}`;
      if (seen.has(key)) continue;
      seen.add(key);
      bus.registerEventHandler(e.event.topic, workerHandler(pathToFileURL(module), e.handler), { name: e.handler });
    }
    await bus.start();
    try {
      const replayed = await bus.deadLetters.replay();
      await bus.drain();
      const again = bus.deadLetters.size;
      console.log(`replayed ${replayed} of ${entries.length}; ${again} failed again and ${again === 1 ? 'is' : 'are'} back in ${file}`);
      return again > 0 ? 1 : 0;
    } finally {
      await bus.stop();
    }
  }
  throw new UsageError(`unknown dlq action '${action ?? ''}' (list, count, replay)`);
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case 'bench':
        return await bench(args);
      case 'config':
        return config(args);
      case 'dlq':
        return await dlq(args);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${command}' (bench, config, dlq; ringbus --help)`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof RingbusError || err instanceof TypeError || err instanceof RangeError) {
      process.stderr.write(`ringbus: ${err.message}\n`);
      return err instanceof UsageError ? 2 : 1;
    }
    process.stderr.write(`ringbus: ${(err as Error)?.message ?? String(err)}\n`);
    if (process.env.RINGBUS_DEBUG) process.stderr.write(`${(err as Error)?.stack}\n`);
    return 1;
  }
}
