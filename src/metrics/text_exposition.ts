/**
 * The Prometheus text exposition (format 0.0.4) of the families, formatted
 * here rather than by prom-client, cached by groups of series so a scrape
 * formats again only the groups where something moved, in slices that let
 * the event loop run.
 */
import { FAMILIES, QUANTILES, formatValue, type MetricsView, type ScalarFamily } from './families.js';
import { reportedSeconds, type BucketedSummary } from './latency_summary.js';
import { escapeLabel, type HandlerSeries, type MetricsWork, type TopicSeries } from './series.js';

type Series = TopicSeries & HandlerSeries;

/**
 * One block of the text: a family's HELP, TYPE and lines. A series block
 * has a line (a summary: five) per series, made of the series' fixed
 * prefixes (`name{topic="…"} `, built once per series) and its values.
 */
type SeriesBlock = {
  kind: 'series'; name: string; help: string; type: string; label: 'topic' | 'handler';
  /** Index of the series' prefixes for this block (Series.prefixes). */
  slot: number;
  /** What the block's line(s) of a series show: a number, or a summary (compared by identity: it is replaced when it changes). */
  key: (s: Series) => unknown;
  prefixes: (s: Series) => string[];
  format: (key: never, prefixes: string[]) => string;
};
type Block = SeriesBlock | ({ kind: 'scalar' } & ScalarFamily) | { kind: 'breakers'; name: string; help: string };

/**
 * Quantiles and maxima take one of a few thousand values (one per bucket:
 * see latency_summary.ts), so their text is kept per bucket: formatting a
 * double costs ~0.3 µs, and a scrape of 10,000 changed series writes 40,000 of them.
 */
const bucketTexts: (string | undefined)[] = [];
const bucketText = (bucket: number): string => (bucketTexts[bucket] ??= formatValue(reportedSeconds(bucket)));

const escapeHelp = (text: string): string => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

/** The blocks of the text, in order: a summary family is two (the summary, then its `_max` gauge). */
const BLOCKS: readonly Block[] = FAMILIES.flatMap((f): Block[] => {
  switch (f.kind) {
    case 'series': {
      const { name, help, type, label, slot, value } = f.family;
      return [{
        kind: 'series', name, help, type, label, slot, key: value,
        prefixes: (s) => [`${name}{${s.label}} `],
        format: (v: number, [prefix]) => prefix + formatValue(v),
      }];
    }
    case 'summary': {
      const { name, help, label, slot, summary } = f.family;
      return [
        {
          kind: 'series', name, help, type: 'summary', label, slot, key: summary,
          prefixes: (s) => [
            ...QUANTILES.map((q, i) => `${i > 0 ? '\n' : ''}${name}{${s.label},quantile="${q}"} `),
            `\n${name}_sum{${s.label}} `, `\n${name}_count{${s.label}} `,
          ],
          format: (l: BucketedSummary, p) => {
            // No observation: no quantile (NaN, as Prometheus clients expose it), not 0.
            if (l.count === 0) return `${p[0]}NaN${p[1]}NaN${p[2]}NaN${p[3]}0${p[4]}0`;
            const b = l.buckets;
            return p[0] + bucketText(b[0]) + p[1] + bucketText(b[1]) + p[2] + bucketText(b[2]) + p[3] + formatValue(l.sum) + p[4] + formatValue(l.count);
          },
        },
        {
          kind: 'series', name: `${name}_max`, help: `Largest observation of ${name}.`, type: 'gauge', label, slot: slot + 1, key: summary,
          prefixes: (s) => [`${name}_max{${s.label}} `],
          format: (l: BucketedSummary, [prefix]) => prefix + (l.count === 0 ? '0' : bucketText(l.buckets[3])),
        },
      ];
    }
    case 'scalar':
      return [{ kind: 'scalar', ...f.family }];
    case 'breakers':
      return [{ kind: 'breakers', name: f.name, help: f.help }];
  }
});

const HEADS = BLOCKS.map((b) => `# HELP ${b.name} ${escapeHelp(b.help)}\n# TYPE ${b.name} ${b.kind === 'breakers' ? 'gauge' : b.type ?? 'gauge'}`);

/**
 * Series per cached group. Large enough that a group of summaries (~300
 * bytes a series) is allocated as a large object, which the garbage
 * collector never copies; small enough that one changed series costs the
 * formatting of a few hundred, not of every series.
 */
const GROUP = 512;
/** Longest stretch a scrape works before it lets the event loop run. */
const SLICE_MS = 8;
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A group's text and what it was formatted from. */
interface Group {
  series: Series[];
  keys: unknown[];
  text: string;
}

/**
 * As prom-client formats it, except NaN, written `NaN` (prom-client writes
 * `Nan`). At 10,000 topics prom-client's own formatting took ~100 ms per
 * scrape here.
 *
 * Each series is read at one instant (its counters and its summary
 * together); the reading and the formatting yield to the event loop every
 * SLICE_MS, so a scrape where thousands of series changed runs in several
 * short turns. A group whose series and values are those it was last
 * formatted from is reused as it is, and so is the whole text when no group
 * or gauge changed.
 */
export class TextExposition {
  readonly #work: MetricsWork;
  /** Per series block (by index in BLOCKS), its groups as last formatted. */
  readonly #groups: Group[][] = BLOCKS.map(() => []);
  #last: { parts: string[]; text: string } = { parts: [], text: '' };

  constructor(work: MetricsWork) {
    this.#work = work;
  }

  /** `started`: when this turn of the event loop began working on the scrape (reading the workers' reports counts). */
  async render(view: MetricsView, started = performance.now()): Promise<string> {
    let deadline = started + SLICE_MS;
    const pause = async (): Promise<void> => {
      if (performance.now() < deadline) return;
      await nextTurn();
      deadline = performance.now() + SLICE_MS;
    };
    // Read every series once, at one instant each: its keys for every block of its label.
    const lists = { topic: [...view.topics()] as Series[], handler: [...view.handlers()] as Series[] };
    const keys = BLOCKS.map((b) => (b.kind === 'series' ? new Array<unknown>(lists[b.label].length) : []));
    for (const label of ['topic', 'handler'] as const) {
      const blocks = BLOCKS.flatMap((b, i) => (b.kind === 'series' && b.label === label ? [i] : []));
      const list = lists[label];
      for (let i = 0; i < list.length; i++) {
        for (const k of blocks) keys[k][i] = (BLOCKS[k] as SeriesBlock).key(list[i]);
        if ((i & 127) === 127) await pause();
      }
    }
    const parts: string[] = [];
    for (let k = 0; k < BLOCKS.length; k++) {
      const b = BLOCKS[k];
      // A family this bus does not have (the transport's, without one): not even its help line.
      if (b.kind === 'scalar' && b.present !== undefined && !b.present(view)) continue;
      if (k > 0) parts.push('');
      parts.push(HEADS[k]);
      switch (b.kind) {
        case 'series': {
          const list = lists[b.label];
          const groups = this.#groups[k];
          groups.length = Math.ceil(list.length / GROUP);
          for (let g = 0; g < groups.length; g++) {
            const from = g * GROUP;
            const to = Math.min(list.length, from + GROUP);
            if (!unchanged(groups[g], list, keys[k], from, to)) {
              groups[g] = this.#format(b, list, keys[k], from, to);
              await pause();
            }
            parts.push(groups[g].text);
          }
          break;
        }
        case 'scalar':
          parts.push(`${b.name} ${formatValue(b.value(view))}`);
          break;
        case 'breakers':
          for (const { topic, handler, state } of view.breakers()) {
            parts.push(`${b.name}{topic="${escapeLabel(topic)}",handler="${escapeLabel(handler)}"} ${state}`);
          }
          break;
      }
    }
    // Nothing moved since the last scrape: the same text, not another copy of it.
    if (!samePieces(parts, this.#last.parts)) this.#last = { parts, text: `${parts.join('\n')}\n` };
    return this.#last.text;
  }

  #format(b: SeriesBlock, list: Series[], keys: unknown[], from: number, to: number): Group {
    const lines: string[] = [];
    for (let i = from; i < to; i++) {
      const s = list[i];
      lines.push(b.format(keys[i] as never, (s.prefixes[b.slot] ??= b.prefixes(s))));
    }
    this.#work.lines += to - from;
    return { series: list.slice(from, to), keys: keys.slice(from, to), text: lines.join('\n') };
  }
}

/** Whether a group was formatted from these series with these values. */
function unchanged(group: Group | undefined, list: Series[], keys: unknown[], from: number, to: number): boolean {
  if (group === undefined || group.series.length !== to - from) return false;
  for (let i = from; i < to; i++) {
    if (group.series[i - from] !== list[i] || !Object.is(group.keys[i - from], keys[i])) return false;
  }
  return true;
}

function samePieces(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
