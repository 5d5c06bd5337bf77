/**
 * One consumer process of `ringbus bench --transport jetstream`
 * (bench/phases/jetstream.ts forks it): a ResilientMessageBus at its default
 * options with a JetStream transport (only where the stream is, plus
 * ackWaitMs when the parent names one) and the bench's no-op worker handler
 * (bench/perf_handlers.mjs `work`) on the bench topic. It talks to its
 * parent over the IPC channel only (stdout stays quiet):
 *
 *   child → parent  { type: 'ready' }                  started: its durable consumer exists
 *                   { type: 'stats', ... }              its counters, pushed every REPORT_MS while they change
 *                   { type: 'histogram', base64 }       reply to 'histogram'
 *                   { type: 'failed', message }         could not start (then it exits 1)
 *   parent → child  { type: 'mark' }                    end-to-end samples so far are the warm-up's: left out of 'histogram'
 *                   { type: 'histogram' }               the end-to-end histogram (ns) since the mark, HDR compressed base64
 *                   { type: 'stats' }                   push the counters now
 *                   { type: 'stop' }                    drain, stop, exit 0
 *                   { type: 'die', file }               write the counters and the time (epoch ms) to `file`, synchronously,
 *                                                       then SIGKILL itself in the same turn: no clean-up, no hand-back, and
 *                                                       a count of what it processed (acknowledged) that is exact when it died
 *
 * The parent dying closes the channel: the process then exits by itself.
 *
 *   node dist/bench/jetstream_consumer.js '{"servers":"nats://127.0.0.1:4222","stream":"S","subjectPrefix":"p","ackWaitMs":null}'
 */
import { writeFileSync } from 'node:fs';
import { encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';
import { ResilientMessageBus, workerHandler } from '../src/index.js';
import { jetstream, type JetStreamOptions } from '../src/jetstream/index.js';
import { HANDLERS, TOPIC } from './shared.js';

/** What the parent passes as the one argument (JSON). */
export interface ConsumerArgs {
  servers: string;
  stream: string;
  subjectPrefix: string;
  /** transport.jetstream.ackWaitMs; null: the default. */
  ackWaitMs: number | null;
}

/** The counters a consumer pushes to its parent. */
export interface ConsumerStats {
  type: 'stats';
  /** bus.stats(): deliveries processed, failed, in the local queue. */
  processed: number;
  failed: number;
  queueSize: number;
  /** bus.transportStats(): deliveries taken from the stream, envelopes redelivered, deliveries handed back. */
  received: number;
  redelivered: number;
  handedBack: number;
  /** Logs at error and warn level (the first few also go to stderr). */
  errors: number;
  warnings: number;
  /** CPU time of the whole process (main thread and workers: process.cpuUsage()), µs. */
  cpuUs: number;
}

export type ConsumerMessage =
  | { type: 'ready' }
  | ConsumerStats
  | { type: 'histogram'; base64: string; count: number }
  | { type: 'failed'; message: string };

export type ParentMessage = { type: 'mark' | 'histogram' | 'stats' | 'stop' } | { type: 'die'; file: string };

/** What a consumer writes to the 'die' file: its counters, and when (epoch ms, this machine's clock). */
export interface DeathNote extends ConsumerStats {
  at: number;
}

/** How often the counters are pushed while they change: the parent's resolution on "all processed". */
const REPORT_MS = 10;

const cpuUs = (): number => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

const send = (m: ConsumerMessage): void => {
  if (process.connected) process.send!(m);
};

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as ConsumerArgs;
  let errors = 0;
  let warnings = 0;
  const tell = (level: string, obj: unknown, msg?: string): void => {
    if (errors + warnings <= 5) process.stderr.write(`[consumer ${process.pid} ${level}] ${msg ?? ''} ${JSON.stringify(obj)}\n`);
  };
  const logger = {
    debug() {},
    info() {},
    warn(obj: unknown, msg?: string) {
      warnings++;
      tell('warn', obj, msg);
    },
    error(obj: unknown, msg?: string) {
      errors++;
      tell('error', obj, msg);
    },
  };
  const where: JetStreamOptions = { servers: args.servers, stream: args.stream, subjectPrefix: args.subjectPrefix };
  if (args.ackWaitMs !== null) where.ackWaitMs = args.ackWaitMs;
  // Defaults everywhere else: the bus's options, and the transport's (batchEvents, maxAckPending, ...).
  const bus = new ResilientMessageBus({ logger, transport: jetstream(where) });
  bus.registerEventHandler(TOPIC, workerHandler(HANDLERS, 'work'));
  try {
    await bus.start();
  } catch (err) {
    send({ type: 'failed', message: (err as Error).message });
    process.exit(1);
  }

  let warmup: Histogram | undefined;
  let last = '';
  const counters = (): ConsumerStats => {
    const s = bus.stats();
    const t = bus.transportStats()!;
    return {
      type: 'stats', processed: s.processed, failed: s.failed, queueSize: s.queueSize,
      received: t.received, redelivered: t.redelivered, handedBack: t.handedBack, errors, warnings, cpuUs: cpuUs(),
    };
  };
  const stats = (force: boolean): void => {
    const m = counters();
    const key = `${m.processed} ${m.received} ${m.redelivered} ${m.queueSize} ${m.errors} ${m.warnings}`;
    if (force || key !== last) send(m);
    last = key;
  };
  const timer = setInterval(() => stats(false), REPORT_MS);
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'stats') stats(true);
    else if (m.type === 'mark') warmup = bus.metrics.histogram('event_end_to_end_seconds');
    else if (m.type === 'histogram') {
      const h = bus.metrics.histogram('event_end_to_end_seconds');
      try {
        if (warmup !== undefined) h.subtract(warmup);
      } catch (err) {
        process.stderr.write(`[consumer ${process.pid}] could not take the warm-up out of the histogram: ${(err as Error).message}\n`);
      }
      send({ type: 'histogram', base64: encodeIntoCompressedBase64(h), count: h.totalCount });
    } else if (m.type === 'die') {
      const note: DeathNote = { ...counters(), at: performance.timeOrigin + performance.now() };
      writeFileSync(m.file, JSON.stringify(note));
      process.kill(process.pid, 'SIGKILL');
    } else if (m.type === 'stop') {
      clearInterval(timer);
      void bus.stop().then(() => {
        stats(true);
        process.disconnect();
        process.exit(0);
      });
    }
  });
  // The parent is gone (killed, crashed): nobody reads this process's figures any more.
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready' });
  stats(true);
}

void main();
