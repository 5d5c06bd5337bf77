/**
 * What routing features cost per event: the delivery rate with default
 * options (ResilientMessageBus, the bench's worker handler 'work', JSON
 * payloads of ~100 B) and the natural producer loop, for a plain topic and
 * for the same traffic with one feature in use. Rounds rotate the modes, a
 * fresh bus each; the cost of a feature is 1/rate − 1/rate(plain) per event,
 * from the medians of the same run.
 *
 *   npm run build && node dist/bench/routing_cost.js [--rounds 5] [--seconds 1] [--json]
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { ResilientMessageBus, workerHandler, type BusOptions, type MessageBus, type PublishOptions } from '../src/index.js';
import { payloads } from './shared.js';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';

const HANDLERS = fileURLToPath(new URL('./perf_handlers.mjs', import.meta.url));
const RAMP_SECONDS = 0.3;

interface Mode {
  key: string;
  label: string;
  /** Registers the handler (and what the mode adds); returns the topic to publish to. */
  setup: (bus: MessageBus) => string;
  /** Before the bus is made, and after it stopped (a global tracer provider). */
  before?: () => void;
  after?: () => void;
  /** Once the bus started (a dashboard); what it returns runs before the bus stops. */
  started?: (bus: MessageBus) => Promise<() => Promise<void>>;
  /** Per-publish options, made per call as a user's code would. */
  options?: () => PublishOptions;
}

const MODES: Mode[] = [
  { key: 'plain', label: 'plain topic (no wildcard, filter, middleware or headers)', setup: plain },
  {
    key: 'patternsElsewhere', label: 'plain topic, with a wildcard subscription on other topics',
    setup: (bus) => {
      bus.registerEventHandler('audit.>', () => {});
      return plain(bus);
    },
  },
  {
    key: 'wildcard', label: "handler on 'order.*', published to 'order.created'",
    setup: (bus) => {
      bus.registerEventHandler('order.*', workerHandler(HANDLERS, 'work'));
      return 'order.created';
    },
  },
  {
    key: 'filter', label: 'one filter on the handler (always true)',
    setup: (bus) => {
      bus.registerEventHandler('order.created', workerHandler(HANDLERS, 'work'), { filter: (e) => e.sessionId === undefined });
      return 'order.created';
    },
  },
  {
    key: 'middleware', label: 'one publish middleware (reads the topic)',
    setup: (bus) => {
      let n = 0;
      bus.use((ctx) => {
        if (ctx.topic.length > 0) n++;
      });
      void n;
      return plain(bus);
    },
  },
  { key: 'headers', label: "one header per event ({ headers: { tenant: 'acme' } })", setup: plain, options: () => ({ headers: { tenant: 'acme' } }) },
  {
    key: 'tracing', label: 'OpenTelemetry SDK registered on main (every span sampled, batch processor, no-op exporter)', setup: plain,
    before: () => {
      const exporter: SpanExporter = { export: (_spans, done) => done({ code: 0 }), shutdown: () => Promise.resolve() };
      trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] }));
    },
    after: () => trace.disable(),
  },
  {
    key: 'dashboardIdle', label: 'bus.dashboard() started, no page open', setup: plain,
    started: async (bus) => {
      const d = await bus.dashboard({ port: 0 });
      return () => d.close();
    },
  },
  {
    key: 'dashboardWatched', label: 'bus.dashboard() with one page open (its live feed read, 1 sample/s)', setup: plain,
    started: async (bus) => {
      const d = await bus.dashboard({ port: 0 });
      const feed = await fetch(new URL('events', d.url));
      const reader = feed.body!.getReader();
      let reading = true;
      const drain = (async () => {
        while (reading) if ((await reader.read()).done) break;
      })();
      return async () => {
        reading = false;
        await reader.cancel();
        await drain;
        await d.close();
      };
    },
  },
];

function plain(bus: MessageBus): string {
  bus.registerEventHandler('order.created', workerHandler(HANDLERS, 'work'));
  return 'order.created';
}

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' }, seconds: { type: 'string', default: '1' }, json: { type: 'boolean', default: false },
    // Some modes only (comma-separated), beside the plain baseline: for profiling one (node --cpu-prof), or a shorter run.
    only: { type: 'string' },
  },
});
if (values.only !== undefined) {
  const wanted = values.only.split(',');
  const keep = MODES.filter((m) => m.key === 'plain' || wanted.includes(m.key));
  if (keep.length !== wanted.filter((k) => k !== 'plain').length + 1) {
    throw new Error(`--only takes a comma-separated list of ${MODES.map((m) => m.key).join(', ')}, got ${values.only}`);
  }
  MODES.splice(0, MODES.length, ...keep);
}
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const { payloadOf } = payloads(false, 100);
const quiet: BusOptions['logger'] = { debug() {}, info() {}, warn() {}, error() {} };

/** One round: a fresh bus, the natural loop for RAMP + seconds, the delivery rate after the ramp. */
async function round(mode: Mode): Promise<number> {
  mode.before?.();
  const bus = new ResilientMessageBus({ logger: quiet });
  const topic = mode.setup(bus);
  await bus.start();
  const stopExtra = await mode.started?.(bus);
  const opts = mode.options;
  const t0 = performance.now();
  const open = t0 + RAMP_SECONDS * 1000;
  const close = open + seconds * 1000;
  let at0 = -1;
  let p0 = 0;
  let i = 0;
  for (let now = t0; now < close; now = performance.now()) {
    if (at0 < 0 && now >= open) {
      at0 = now;
      p0 = bus.stats().processed;
    }
    for (const end = i + 1024; i < end; i++) {
      const p = payloadOf(i);
      const o = opts === undefined ? undefined : opts();
      if (!bus.publish(topic, p, o)) await bus.publishAsync(topic, p, o);
    }
  }
  const rate = (bus.stats().processed - p0) / ((performance.now() - at0) / 1000);
  await stopExtra?.();
  await bus.stop();
  mode.after?.();
  return rate;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const rates = new Map<string, number[]>(MODES.map((m) => [m.key, []]));
for (const m of MODES) await round({ ...m }); // warm-up of each mode's path, not counted
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < MODES.length; k++) {
    const m = MODES[(k + r) % MODES.length];
    rates.get(m.key)!.push(await round(m));
  }
  process.stderr.write(`round ${r + 1}/${rounds}: ${MODES.map((m) => `${m.key} ${(rates.get(m.key)![r] / 1e3).toFixed(0)}k`).join('  ')}\n`);
}
const base = median(rates.get('plain')!);
const rows = MODES.map((m) => {
  const xs = rates.get(m.key)!;
  const med = median(xs);
  return {
    key: m.key, label: m.label, median: med, min: Math.min(...xs), max: Math.max(...xs), ratio: med / base,
    nsPerEvent: m.key === 'plain' ? 0 : 1e9 / med - 1e9 / base,
  };
});
if (values.json) console.log(JSON.stringify(rows, null, 2));
else {
  console.log(`| mode | events/s median (min–max), ${rounds} rounds of ${seconds} s | ÷ plain | cost per event |`);
  console.log('|---|---|---|---|');
  for (const r of rows) {
    const f = (x: number): string => `${(x / 1e3).toFixed(0)}k`;
    console.log(`| ${r.label} | ${f(r.median)} (${f(r.min)}–${f(r.max)}) | ${r.ratio.toFixed(2)}× | ${r.key === 'plain' ? '—' : `${r.nsPerEvent.toFixed(0)} ns`} |`);
  }
}
