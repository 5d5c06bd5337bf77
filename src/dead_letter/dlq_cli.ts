/**
 * `ringbus dlq list|count|replay`: the dead-letter file (or, with --jetstream,
 * the cluster's dead-letter stream) from the command line.
 * list and count only read (no lock, nothing written, safe while a bus runs);
 * replay owns the file like a bus (it takes the lock), with the same config
 * file and environment as the bus. Exit codes: 0 done, 1 some entries are
 * still dead after a replay, 2 usage error, 3 could not run (file locked,
 * configuration or handler module error).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load_config.js';
import { workerHandler } from '../handler_ref.js';
import type { Logger } from '../logger.js';
import { MessageBus } from '../message_bus.js';
import { DeadLetterQueue, type ReplayReport } from './dead_letter_queue.js';
import { DeadLetterFileMissing, readDeadLetterLog } from './dead_letter_reader.js';
import { FileLock } from './file_lock.js';
import { listSegments } from './segment_files.js';
import { BusCodec, encodeValue } from '../engine/payload_encoding.js';
import { JetStreamTransport } from '../jetstream/jetstream_transport.js';
import { resolveJetStreamOptions, type JetStreamOptions } from '../jetstream/options.js';
import type { BusOptions } from '../options.js';
import { resolveOptions } from '../resolve_options.js';

export const DLQ_HELP = `  dlq list --path FILE [--json]           dead letters still in a dead-letter file (read only: safe while a bus runs)
  dlq count --path FILE                   how many dead letters it holds
  dlq list|count|replay --jetstream [--servers URL] [--stream NAME] [--subject-prefix P] [--config PATH] [--json]
                                          the same over the cluster's dead-letter stream (the default when the
                                          config has transport.jetstream and no --path); replay hands each one
                                          back to the cluster, to run in a process that has its handler
  dlq replay --path FILE --handlers MODULE [--config PATH] [--timeout-ms N]
                                          replay them: MODULE exports each handler under the name it was
                                          registered with; the bus's config file and env apply (--config,
                                          RINGBUS_CONFIG, ./ringbus.config.json); --timeout-ms N is the handler
                                          timeout, and the replay gives up if no delivery ends for a while.
                                          Each success is marked at once; a failure stays, with its new attempts.
                                          Exit 0: all replayed, 1: some still dead, 2: usage, 3: could not run
                                          (e.g. a bus owns FILE). --path defaults to the config's deadLetter.path
`;

/** A mistake in how the command was called: one line, exit 2. */
class UsageError extends Error {}

/** Warnings and errors (corrupt lines, a stale lock taken over, replays that failed) as lines on stderr. */
const stderrLog: Logger = {
  debug() {},
  info() {},
  warn: (_obj: unknown, msg?: string) => void process.stderr.write(`ringbus: warning: ${msg ?? ''}\n`),
  error: (_obj: unknown, msg?: string) => void process.stderr.write(`ringbus: error: ${msg ?? ''}\n`),
};

function parse(args: string[], options: NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>): Record<string, unknown> {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Writes to stdout, waiting when its buffer is full (a long list piped into a slow reader). */
async function out(text: string): Promise<void> {
  if (!process.stdout.write(text)) await new Promise((r) => process.stdout.once('drain', r));
}

const binaryAsBase64 = (_k: string, x: unknown): unknown => (x instanceof Uint8Array ? { $binary: Buffer.from(x).toString('base64') } : x);

function filePath(given: unknown, configPath: unknown): string {
  if (typeof given === 'string') return resolve(given);
  const { options } = loadConfig({ configPath: configPath as string | undefined });
  const path = typeof options.deadLetter === 'object' ? options.deadLetter.path : undefined;
  if (path === undefined) throw new UsageError('--path FILE is required (a dead-letter file; or set deadLetter.path in the config)');
  return resolve(path);
}

const STREAM_OPTIONS = {
  jetstream: { type: 'boolean' }, servers: { type: 'string' }, stream: { type: 'string' }, 'subject-prefix': { type: 'string' },
} as const;

/** The JetStream options of the config file and environment, with the command line's over them; undefined when the stream is not the source. */
function streamSource(v: Record<string, unknown>): { options: BusOptions; jetstream: JetStreamOptions } | undefined {
  const streamFlags = v.jetstream === true || v.servers !== undefined || v.stream !== undefined || v['subject-prefix'] !== undefined;
  if (v.path !== undefined) {
    if (streamFlags) throw new UsageError('--path (a dead-letter file) and --jetstream/--servers/--stream/--subject-prefix (the stream) do not go together');
    return undefined;
  }
  const { options } = loadConfig({ configPath: v.config as string | undefined });
  const configured = typeof options.transport === 'object' && 'jetstream' in options.transport ? options.transport.jetstream : undefined;
  if (!streamFlags && configured === undefined) return undefined;
  return {
    options,
    jetstream: {
      ...(typeof configured === 'object' ? configured : {}),
      ...(v.servers !== undefined ? { servers: v.servers as string } : {}),
      ...(v.stream !== undefined ? { stream: v.stream as string } : {}),
      ...(v['subject-prefix'] !== undefined ? { subjectPrefix: v['subject-prefix'] as string } : {}),
    },
  };
}

/** A bus with no handlers on the cluster's stream (it takes no deliveries), for the dead-letter commands. */
async function withStream<T>(source: { options: BusOptions; jetstream: JetStreamOptions },
  run: (t: JetStreamTransport, codec: BusCodec) => Promise<T>): Promise<T> {
  const t = new JetStreamTransport(resolveJetStreamOptions(source.jetstream));
  const dl = typeof source.options.deadLetter === 'object' ? { ...source.options.deadLetter, path: undefined } : {};
  const options: BusOptions = { ...source.options, transport: t, logger: stderrLog, pool: { minThreads: 0, maxThreads: 1 }, deadLetter: dl };
  const codec = new BusCodec(resolveOptions(options));
  await codec.load();
  const bus = new MessageBus(options);
  await bus.start();
  try {
    return await run(t, codec);
  } finally {
    await bus.stop();
  }
}

async function listOrCount(action: 'list' | 'count', args: string[]): Promise<number> {
  const v = parse(args, { path: { type: 'string' }, config: { type: 'string' }, json: { type: 'boolean' }, ...STREAM_OPTIONS });
  const source = streamSource(v);
  let n = 0;
  const onEntry = action === 'count' ? undefined : v.json
    ? (e: unknown) => out(`${n++ === 0 ? '[\n' : ',\n'}${JSON.stringify(e, binaryAsBase64, 2).replace(/^/gm, '  ')}`)
    : (e: import('./dead_letter_entry.js').DeadLetterEntry) => {
      n++;
      return out(`${e.id}  ${new Date(e.lastAttemptAt).toISOString()}  ${e.event.topic} → ${e.handler}  attempts=${e.attempts}  ${e.error}\n`);
    };
  const summary = source !== undefined
    ? await withStream(source, async (t) => {
      if (onEntry !== undefined) await t.deadLetterSink.scan({}, onEntry as (e: unknown) => Promise<void>);
      return { live: t.deadLetterSink.liveCount };
    })
    : await readDeadLetterLog(filePath(v.path, v.config), stderrLog, onEntry as ((e: unknown) => Promise<void>) | undefined);
  if (action === 'count') await out(`${summary.live}\n`);
  else if (v.json) await out(n === 0 ? '[]\n' : '\n]\n');
  else await out(`${summary.live} dead letter${summary.live === 1 ? '' : 's'}\n`);
  return 0;
}

/** Gives up a replay when no delivery ends for `stallMs`: a hanging handler cannot hang the command. */
function stallGuard(bus: MessageBus, stallMs: number, onStall: () => void): () => void {
  const progress = (): number => {
    const s = bus.stats();
    return s.processed + s.failed + s.deadLettered;
  };
  let last = progress();
  let lastAt = performance.now();
  const timer = setInterval(() => {
    const now = progress();
    if (now !== last) {
      last = now;
      lastAt = performance.now();
    } else if (performance.now() - lastAt > stallMs) {
      clearInterval(timer);
      onStall();
    }
  }, Math.min(250, stallMs));
  return () => clearInterval(timer);
}

/** Replay over the stream: every dead letter back to the cluster, as a fresh retry of its handler. */
async function requeue(source: { options: BusOptions; jetstream: JetStreamOptions }): Promise<number> {
  const report = await withStream(source, (t, codec) => t.requeueDeadLetters((payload) => encodeValue(payload, codec, 'payload')));
  const parts = [`handed ${report.requeued} dead letter${report.requeued === 1 ? '' : 's'} back to the cluster`];
  if (report.skipped.length > 0) parts.push(`${report.skipped.length} stay dead (${report.skipped[0].reason})`);
  await out(`${parts.join('; ')}\n`);
  return report.skipped.length > 0 ? 1 : 0;
}

async function replay(args: string[]): Promise<number> {
  const v = parse(args, {
    path: { type: 'string' }, handlers: { type: 'string' }, config: { type: 'string' }, 'timeout-ms': { type: 'string' }, ...STREAM_OPTIONS,
  });
  const source = streamSource(v);
  if (source !== undefined) return requeue(source);
  let timeoutMs: number | undefined;
  if (v['timeout-ms'] !== undefined) {
    timeoutMs = Number(v['timeout-ms']);
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) throw new UsageError(`--timeout-ms must be a positive integer (milliseconds), got '${String(v['timeout-ms'])}'`);
  }
  const file = filePath(v.path, v.config);
  if ((await listSegments(file)).length === 0) throw new UsageError(`dead-letter file ${file} does not exist`);
  FileLock.assertFree(file); // before anything else: a bus owning the file is the first thing to know
  if (v.handlers === undefined) throw new UsageError('--handlers MODULE is required (the module exporting the handlers to replay to)');
  const module = resolve(v.handlers as string);
  if (!existsSync(module)) throw new UsageError(`handler module ${module} does not exist`);
  const { options } = loadConfig({ configPath: v.config as string | undefined });

  const pairs = new Map<string, { topic: string; handler: string }>();
  const { live } = await readDeadLetterLog(file, stderrLog, (e) => void pairs.set(`${e.event.topic}\u0000${e.handler}`, { topic: e.event.topic, handler: e.handler }));
  if (live === 0) {
    await out(`nothing to replay: no dead letters in ${file}\n`);
    return 0;
  }
  const handlerTimeoutMs = timeoutMs ?? (typeof options.handlerTimeoutMs === 'number' ? options.handlerTimeoutMs : 30_000);
  const dl = typeof options.deadLetter === 'object' ? options.deadLetter : {};
  const bus = new MessageBus({ ...options, logger: stderrLog, handlerTimeoutMs, deadLetter: { ...dl, path: file } });
  for (const { topic, handler } of pairs.values()) bus.registerEventHandler(topic, workerHandler(pathToFileURL(module), handler), { name: handler });
  await bus.start();
  let report: ReplayReport;
  let stalled = false;
  const retry = typeof options.retry === 'object' ? options.retry : undefined;
  const stallMs = handlerTimeoutMs * ((retry?.maxRetries ?? 0) + 1) + (retry?.maxDelayMs ?? 0) + 5000;
  const stopGuard = stallGuard(bus, stallMs, () => {
    stalled = true;
    void bus.stop({ drain: false });
  });
  try {
    const queue = bus.deadLetters;
    if (!(queue instanceof DeadLetterQueue)) throw new Error('this bus has no dead-letter queue');
    report = await queue.replayWithReport();
  } finally {
    stopGuard();
    await bus.stop({ drain: !stalled });
  }
  const still = report.picked - report.replayed;
  const is = (n: number): string => (n === 1 ? 'is' : 'are');
  const parts = [`replayed ${report.replayed} of ${report.picked}`];
  if (report.failed > 0) parts.push(`${report.failed} failed again and ${is(report.failed)} back in ${file}`);
  if (report.unfinished > 0) {
    parts.push(`${report.unfinished} did not finish${stalled ? ` (nothing ended for ${stallMs} ms)` : ''} and ${is(report.unfinished)} still in ${file}`);
  }
  if (report.skipped.length > 0) parts.push(`${report.skipped.length} could not be sent (${report.skipped[0].reason}) and ${is(report.skipped.length)} still in ${file}`);
  await out(`${parts.join('; ')}\n`);
  return still > 0 ? 1 : 0;
}

/** `ringbus dlq …`: resolves the exit code; errors are one line on stderr. */
export async function dlqCommand(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action === undefined || action === '--help' || action === '-h' || rest.includes('--help')) {
    process.stdout.write(`usage: ringbus dlq <action> [options]\n\n${DLQ_HELP}`);
    return action === undefined ? 2 : 0;
  }
  try {
    if (action === 'list' || action === 'count') return await listOrCount(action, rest);
    if (action === 'replay') return await replay(rest);
    throw new UsageError(`unknown dlq action '${action}' (list, count, replay)`);
  } catch (err) {
    const usage = err instanceof UsageError || err instanceof DeadLetterFileMissing;
    process.stderr.write(`ringbus: ${(err as Error)?.message ?? String(err)}\n`);
    if (!usage && process.env.RINGBUS_DEBUG) process.stderr.write(`${(err as Error)?.stack}\n`);
    return usage ? 2 : action === 'replay' ? 3 : 1;
  }
}
