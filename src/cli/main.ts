/**
 * The `ringbus` command: `bench`, `config`, `dlq list|count|replay`, `dashboard --path`.
 * A user mistake is one line on stderr and a non-zero exit code, never a stack trace.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load_config.js';
import { OPTION_TABLE } from '../config/option_table.js';
import { DLQ_HELP, dlqCommand } from '../dead_letter/dlq_cli.js';
import { DASHBOARD_HELP, dashboardCommand } from '../dashboard/dashboard_cli.js';
import { RingbusError } from '../errors.js';

/** A mistake in how the command was called: printed as one line, exit code 2. */
class UsageError extends Error {}

const HELP = `usage: ringbus <command> [options]

commands:
  bench [options]                         the benchmark, at default options (ringbus bench --help lists its flags)
  config [--config PATH] [--json]         the effective configuration and where each value came from
${DLQ_HELP}${DASHBOARD_HELP}
configuration comes from code > environment (RINGBUS_*) > file (--config, RINGBUS_CONFIG or ./ringbus.config.json) > defaults
`;

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
  // The benchmark names itself after how it was started: its usage and `command:` lines then read `npx ringbus bench …`.
  const env = { ...process.env, RINGBUS_BENCH_COMMAND: 'npx ringbus bench' };
  const child = spawn(process.execPath, [...process.execArgv, script, ...args], { stdio: 'inherit', env });
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

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case 'bench':
        return await bench(args);
      case 'config':
        return config(args);
      case 'dlq':
        return await dlqCommand(args);
      case 'dashboard':
        return await dashboardCommand(args);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${command}' (bench, config, dlq, dashboard; ringbus --help)`);
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
