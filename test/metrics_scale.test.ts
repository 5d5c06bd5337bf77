import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { build } from 'hdr-histogram-js';
import { Registry } from 'prom-client';
import { MessageBus, loadConfig } from '../src/index.js';
import { LatencyAccumulator } from '../src/metrics/latency_accumulator.js';
import { summarize } from '../src/metrics/latency_summary.js';
import { acknowledged, newMailbox, readMailbox } from '../src/protocol/metrics_mailbox.js';
import { SERIES_NONE, SERIES_OTHER, TopicSeriesWriter, newTopicSeriesBuffer } from '../src/protocol/topic_series.js';
import { MetricsRecorder } from '../workers/metrics_recorder.js';
import { busFixture, handler } from './helpers.js';

const setup = busFixture();

/** Every sample of a Prometheus text exposition, NaN spelled either way (prom-client writes `Nan`). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+(?:\{.*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample: ${line}`);
    if (out.has(m[1])) throw new Error(`duplicate series: ${m[1]}`);
    out.set(m[1], m[2].toLowerCase() === 'nan' ? NaN : Number(m[2]));
  }
  return out;
}

/** The topic labels of a text's samples. */
const topicsIn = (text: string): Set<string> =>
  new Set(text.split('\n').filter((l) => !l.startsWith('#')).flatMap((l) => [...l.matchAll(/topic="([^"]*)"/g)].map((m) => m[1])));

describe('per-topic series', () => {
  it('exist only for topics with handlers: others are counted under "(no handler)", whatever their number', async () => {
    const { bus } = setup();
    bus.registerEventHandler('worker.topic', handler('noop'), { name: 'w' });
    bus.registerEventHandler('inline.topic', () => {}, { name: 'i' });
    bus.registerCommandHandler('command.topic', () => 1, { name: 'c' });
    bus.registerEventHandler('quiet.topic', handler('noop'), { name: 'q' }); // registered, never published
    await bus.start();
    for (let i = 0; i < 500; i++) bus.publish(`nobody.${i}`, i);
    bus.publish('worker.topic', 1);
    bus.publish('inline.topic', 1);
    await bus.execute('command.topic', 1);
    await bus.drain();
    const s = bus.metrics.snapshot();
    expect(Object.keys(s.by_topic).sort()).toEqual(['(no handler)', 'command.topic', 'inline.topic', 'quiet.topic', 'worker.topic']);
    expect(s.by_topic['(no handler)'].published).toBe(500);
    // A topic has its series from its first registration: a dashboard sees 0, not nothing.
    expect(s.by_topic['quiet.topic']).toMatchObject({ published: 0, end_to_end_seconds: { count: 0 } });
    expect(s.by_topic['worker.topic'].end_to_end_seconds.count).toBe(1);
    expect(topicsIn(await bus.metrics.prometheus())).toEqual(new Set(Object.keys(s.by_topic)));
  });

  it('are freed on unregister, and a topic registered again starts a new series (a worker task that lives on included)', async () => {
    // One worker whose task outlives the whole test: its per-topic state must follow the unregistrations.
    const { bus } = setup({ pool: { maxThreads: 1, lingerMs: 60_000 } });
    const offs = Array.from({ length: 30 }, (_, i) => bus.registerEventHandler(`old.${i}`, handler('noop'), { name: 'noop' }));
    await bus.start();
    for (let i = 0; i < 30; i++) bus.publish(`old.${i}`, i);
    await bus.drain();
    expect(Object.keys(bus.metrics.snapshot().by_topic)).toHaveLength(30);
    for (const off of offs) off();
    expect(bus.metrics.snapshot().by_topic).toEqual({});
    expect(topicsIn(await bus.metrics.prometheus())).toEqual(new Set());

    bus.registerEventHandler('old.0', handler('noop'), { name: 'noop' });
    for (let i = 0; i < 30; i++) bus.registerEventHandler(`new.${i}`, handler('noop'), { name: 'noop' });
    for (let i = 0; i < 30; i++) bus.publish(`new.${i}`, i);
    bus.publish('old.0', 1);
    bus.publish('old.0', 2);
    await bus.drain();
    const s = bus.metrics.snapshot();
    expect(Object.keys(s.by_topic)).toHaveLength(31);
    // The old incarnation's counts and latencies (still in the worker task) do not come back.
    expect(s.by_topic['old.0']).toMatchObject({ published: 2, end_to_end_seconds: { count: 2 } });
    expect(s.by_handler.noop.processed).toBe(62);
    expect(s.event_end_to_end_seconds.count).toBe(62); // bus-wide: every event ever settled
    expect(bus.metrics.liveTasks).toBe(1);
  });

  it('are folded into topic="other" beyond metrics.maxTopics, counted, and an unregistered topic frees its place', async () => {
    const { bus } = setup({ metrics: { maxTopics: 3 }, circuitBreaker: {} });
    const offs = new Map<string, () => void>();
    for (const t of ['a', 'b', 'c', 'd', 'e']) offs.set(t, bus.registerEventHandler(t, handler('noop'), { name: `h-${t}` }));
    await bus.start();
    for (const t of ['a', 'b', 'c', 'd', 'e']) for (let i = 0; i < 2; i++) bus.publish(t, i);
    await bus.drain();
    const s = bus.metrics.snapshot();
    expect(Object.keys(s.by_topic)).toEqual(['a', 'b', 'c', 'other']);
    expect(s.metrics_folded_topics).toBe(2);
    // Counted in the worker under the shared series too: published, and end to end.
    expect(s.by_topic.other).toMatchObject({ published: 4, end_to_end_seconds: { count: 4 } });
    const text = await bus.metrics.prometheus();
    const v = samples(text);
    expect(v.get('events_published_total{topic="other"}')).toBe(4);
    expect(v.get('event_end_to_end_seconds_count{topic="other"}')).toBe(4);
    expect(v.get('metrics_folded_topics')).toBe(2);
    // Breaker states of folded topics appear under "other" too (one row per handler).
    expect(v.get('circuit_breaker_state{topic="other",handler="h-d"}')).toBe(0);
    expect(topicsIn(text)).toEqual(new Set(['a', 'b', 'c', 'other']));

    offs.get('e')!();
    expect(bus.metrics.snapshot().metrics_folded_topics).toBe(1);
    offs.get('a')!(); // frees a place: the next topic registered gets its own series
    bus.registerEventHandler('f', handler('noop'), { name: 'h-f' });
    bus.publish('f', 1);
    await bus.drain();
    const after = bus.metrics.snapshot();
    expect(Object.keys(after.by_topic)).toEqual(['b', 'c', 'other', 'f']);
    expect(after.by_topic.f).toMatchObject({ published: 1, end_to_end_seconds: { count: 1 } });
    expect(after.by_topic.other.published).toBe(4); // a series does not go backwards when a folded topic leaves
  });

  it('never gives two series one label, whatever the topics are called', async () => {
    const { bus } = setup({ metrics: { maxTopics: 1 } });
    bus.registerEventHandler('mine', handler('noop'));
    bus.registerEventHandler('other', handler('noop')); // named like the shared series: shares it
    bus.registerEventHandler('(no handler)', () => {});
    bus.registerEventHandler('beyond', handler('noop'));
    await bus.start();
    for (const t of ['mine', 'other', '(no handler)', 'beyond', 'unknown']) bus.publish(t, 1);
    await bus.drain();
    const s = bus.metrics.snapshot();
    expect(s.by_topic.other.published).toBe(2);
    expect(s.by_topic['(no handler)'].published).toBe(2);
    expect(s.metrics_folded_topics).toBe(1); // 'beyond' only: 'other' shares its namesake by name, not for lack of room
    samples(await bus.metrics.prometheus()); // throws on a duplicate series
  });
});

describe('reading the metrics', () => {
  it('redoes no work when nothing changed, and only the changed series\' work when something did', async () => {
    const { bus } = setup({ pool: { maxThreads: 1, lingerMs: 60_000 } });
    for (let i = 0; i < 40; i++) bus.registerEventHandler(`t.${i}`, handler('noop'), { name: 'noop' });
    await bus.start();
    for (let i = 0; i < 40; i++) bus.publish(`t.${i}`, i);
    await bus.drain();
    const first = await bus.metrics.prometheus();
    bus.metrics.snapshot();
    const work = { ...bus.metrics.work };
    // Nothing new: no summary recomputed, no worker entry applied, no line formatted; the same text (but for
    // active_workers, a gauge read live: a worker may park between the two reads).
    const live = (text: string): string => text.replace(/^active_workers \d+$/m, 'active_workers _');
    expect(live(await bus.metrics.prometheus())).toBe(live(first));
    bus.metrics.snapshot();
    expect(bus.metrics.work).toEqual(work);

    bus.publish('t.7', 1);
    await bus.drain();
    const second = await bus.metrics.prometheus();
    bus.metrics.snapshot();
    // One topic and its handler changed: their summaries (and the bus-wide ones, read by snapshot) and nothing else.
    expect(bus.metrics.work.summaries - work.summaries).toBeLessThanOrEqual(4);
    // The worker reported what changed since main's last read: the topic and the handler (successes, processing time).
    expect(bus.metrics.work.reportEntries - work.reportEntries).toBe(3);
    expect(samples(second).get('events_published_total{topic="t.7"}')).toBe(2);
    expect(samples(second).get('event_end_to_end_seconds_count{topic="t.7"}')).toBe(2);
  });

  it('gives the same figures in snapshot(), prometheus() and the prom-client registry', async () => {
    const { bus } = setup({ pool: { maxThreads: 2 }, metrics: { maxTopics: 2 }, circuitBreaker: {} });
    for (const t of ['x', 'y', 'z']) bus.registerEventHandler(t, handler('noop'), { name: `on-${t}` });
    bus.registerEventHandler('x', () => {}, { name: 'inline "x"' });
    await bus.start();
    for (let i = 0; i < 30; i++) bus.publish(['x', 'y', 'z'][i % 3], i);
    await bus.drain();
    const text = await bus.metrics.prometheus();
    const s = bus.metrics.snapshot();
    const v = samples(text);
    for (const [topic, t] of Object.entries(s.by_topic)) {
      expect(v.get(`events_published_total{topic="${topic}"}`)).toBe(t.published);
      expect(v.get(`event_end_to_end_seconds_count{topic="${topic}"}`)).toBe(t.end_to_end_seconds.count);
      expect(v.get(`event_end_to_end_seconds{topic="${topic}",quantile="0.99"}`)).toBe(t.end_to_end_seconds.p99);
      expect(v.get(`event_end_to_end_seconds_max{topic="${topic}"}`)).toBe(t.end_to_end_seconds.max);
    }
    expect(v.get('events_processed_total{handler="inline \\"x\\""}')).toBe(10);
    // The registry an app merges into its own /metrics says the same, sample for sample.
    const merged = samples(await Registry.merge([new Registry(), bus.metrics.registry]).metrics());
    expect([...merged.keys()].sort()).toEqual([...v.keys()].sort());
    // active_workers is live: a worker may park between the two reads, so it is only bounded.
    for (const [k, n] of v) {
      if (k === 'active_workers') expect(merged.get(k)).toBeLessThanOrEqual(2);
      else expect(merged.get(k), k).toEqual(n);
    }
  });
});

describe('a worker\'s metrics recorder', () => {
  const ns = 1_000_000;

  it('reports only what changed since main\'s last read, and repeats what main has not read yet', () => {
    const mailbox = newMailbox();
    const words = newTopicSeriesBuffer();
    const series = new TopicSeriesWriter(words);
    for (let id = 0; id < 10; id++) series.set(id, 100 + id);
    const rec = new MetricsRecorder(mailbox, true, words);
    for (let id = 0; id < 10; id++) rec.endToEnd(id, ns);
    rec.succeeded(3);
    rec.publish(0);
    const first = readMailbox(mailbox)!;
    expect(first.endToEnd.map((s) => s.key).sort()).toEqual([100, 101, 102, 103, 104, 105, 106, 107, 108, 109]);
    expect(acknowledged(mailbox)).toBe(first.seq);

    rec.endToEnd(4, ns);
    rec.publish(1);
    rec.endToEnd(5, ns); // main does not read the report in between: the next one must carry topic 4 again
    rec.publish(2);
    const third = readMailbox(mailbox)!;
    expect(third.endToEnd.map((s) => s.key).sort()).toEqual([104, 105]);
    expect(third.endToEnd.find((s) => s.key === 104)!.pairs[1]).toBe(2); // cumulative for the task
    expect(third.succeeded).toEqual([]);
    rec.publish(3);
    expect(readMailbox(mailbox)).toBe(third); // nothing new: nothing written
  });

  it('drops a topic\'s series once main says the topic is gone, so its state follows the topics registered now', () => {
    const mailbox = newMailbox();
    const words = newTopicSeriesBuffer();
    const series = new TopicSeriesWriter(words);
    const rec = new MetricsRecorder(mailbox, true, words);
    let key = 10;
    for (let round = 0; round < 20; round++) {
      // 50 topics registered, measured, then unregistered; new topic ids each round.
      const ids = Array.from({ length: 50 }, (_, i) => round * 50 + i);
      for (const id of ids) series.set(id, key++);
      for (const id of ids) rec.endToEnd(id, ns);
      rec.publish(round);
      readMailbox(mailbox);
      for (const id of ids) series.set(id, SERIES_NONE);
      rec.endToEnd(ids[0], ns); // an event of a topic unregistered meanwhile: not counted
    }
    rec.publish(99);
    expect(rec.topicSeriesCount).toBe(0);
    // Topics beyond maxTopics share one series, however many there are.
    for (let id = 5000; id < 5100; id++) series.set(id, SERIES_OTHER);
    for (let id = 5000; id < 5100; id++) rec.endToEnd(id, ns);
    rec.publish(100);
    expect(rec.topicSeriesCount).toBe(1);
    expect(readMailbox(mailbox)!.endToEnd).toEqual([{ key: SERIES_OTHER, pairs: expect.any(Array) }]);
  });
});

describe('latency summaries', () => {
  it('are exactly what an HDR histogram (3 digits) filled from the same buckets reports', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1e12, noNaN: true }), { minLength: 1, maxLength: 300 }), (values) => {
        const acc = new LatencyAccumulator();
        for (const v of values) acc.record(v);
        const h = build({ numberOfSignificantValueDigits: 3, bitBucketSize: 64 });
        acc.into(h);
        const s = summarize(acc);
        expect(s.count).toBe(h.totalCount);
        for (const [p, got] of [[50, s.p50], [95, s.p95], [99, s.p99], [100, s.max]]) expect(got).toBe(h.getValueAtPercentile(p) / 1e9);
      }),
      { numRuns: 300 },
    );
  });
});

describe('the metrics option', () => {
  it('takes a boolean (timing on or off) or { timing, maxTopics }, and names what is wrong', () => {
    for (const [options, error] of [
      [{ metrics: { maxTopics: -1 } }, /metrics\.maxTopics must be in \[0, 1000000\], got -1/],
      [{ metrics: { maxTopics: 1.5 } }, /metrics\.maxTopics must be an integer, got 1\.5/],
      [{ metrics: { timing: 'yes' } }, /metrics\.timing must be a boolean, got 'yes'/],
      [{ metrics: { maxTopic: 5 } }, /metrics\.maxTopic is not an option \(allowed: timing, maxTopics\)/],
      [{ metrics: 'on' }, /metrics must be a boolean or an object \{ timing, maxTopics \}, got 'on'/],
    ] as const) {
      expect(() => new MessageBus({ ...options, logger: false } as never)).toThrow(error);
    }
    expect(() => new MessageBus({ metrics: false, logger: false })).not.toThrow();
    expect(() => new MessageBus({ metrics: { maxTopics: 0 }, logger: false })).not.toThrow();
  });

  it('comes from the environment and the file; metrics: false in a file keeps timing off under an env maxTopics', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringbus-metrics-'));
    const file = join(dir, 'ringbus.config.json');
    writeFileSync(file, JSON.stringify({ metrics: false }));
    const loaded = loadConfig({ env: { RINGBUS_METRICS_MAX_TOPICS: '50' }, configPath: file });
    expect(loaded.options.metrics).toEqual({ timing: false, maxTopics: 50 });
    expect(loaded.effective['metrics.timing']).toEqual({ value: false, source: 'file', where: file });
    expect(loaded.effective['metrics.maxTopics']).toEqual({ value: 50, source: 'env', where: 'RINGBUS_METRICS_MAX_TOPICS' });
    expect(loadConfig({ env: { RINGBUS_METRICS: 'false' }, cwd: dir }).options.metrics).toEqual({ timing: false });
    rmSync(dir, { recursive: true });
    expect(() => loadConfig({ env: { RINGBUS_METRICS_MAX_TOPICS: 'many' }, cwd: '/' }))
      .toThrow(/RINGBUS_METRICS_MAX_TOPICS: 'many' is not an integer \(option metrics\.maxTopics\)/);
  });

  it('times nothing with timing off, and still keeps the per-topic counts within maxTopics', async () => {
    const { bus } = setup({ metrics: { timing: false, maxTopics: 1 } });
    bus.registerEventHandler('a', handler('noop'));
    bus.registerEventHandler('b', handler('noop'));
    await bus.start();
    bus.publish('a', 1);
    bus.publish('b', 1);
    await bus.drain();
    const s = bus.metrics.snapshot();
    expect(s.by_topic.a).toMatchObject({ published: 1, end_to_end_seconds: { count: 0 } });
    expect(s.by_topic.other.published).toBe(1);
    expect(s.event_end_to_end_seconds.count).toBe(0);
  });
});
