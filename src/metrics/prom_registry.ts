/**
 * The same families in a prom-client Registry, for apps that merge the bus's
 * metrics into their own /metrics (`Registry.merge`).
 */
import type { Registry } from 'prom-client';
import { FAMILIES, QUANTILES, type MetricsView } from './families.js';
import type { HandlerSeries, TopicSeries } from './series.js';

interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

type Series = TopicSeries & HandlerSeries;

/**
 * Registers each family as a prom-client metric computed when the registry
 * is read. `read()` returns one view per scrape: prom-client asks every
 * family within one turn of the event loop, and the view is read once per
 * turn, so all families of a scrape come from the same figures. The
 * transport's families are registered only on a bus with a transport.
 */
export function registerFamilies(registry: Registry, read: () => MetricsView, hasTransport: boolean): void {
  const add = (name: string, help: string, type: string, values: () => Sample[]): void => {
    // prom-client's metric interface is wider than what a Registry calls: name, get() and reset().
    registry.registerMetric({
      name, help, type, aggregator: 'sum',
      get: async () => ({ name, help, type, values: values(), aggregator: 'sum' }),
      reset() {},
    } as unknown as Parameters<Registry['registerMetric']>[0]);
  };
  const seriesOf = (view: MetricsView, label: 'topic' | 'handler'): Iterable<Series> =>
    (label === 'topic' ? view.topics() : view.handlers()) as Iterable<Series>;
  for (const f of FAMILIES) {
    switch (f.kind) {
      case 'series': {
        const { name, help, type, label, value } = f.family;
        add(name, help, type, () => [...seriesOf(read(), label)].map((s) => ({ labels: { [label]: s.name }, value: value(s) })));
        break;
      }
      case 'summary': {
        const { name, help, label, summary } = f.family;
        add(name, help, 'summary', () => {
          const values: Sample[] = [];
          for (const s of seriesOf(read(), label)) {
            const l = summary(s);
            const q = l.count === 0 ? [NaN, NaN, NaN] : [l.p50, l.p95, l.p99];
            QUANTILES.forEach((quantile, i) => values.push({ labels: { [label]: s.name, quantile }, value: q[i] }));
            values.push({ metricName: `${name}_sum`, labels: { [label]: s.name }, value: l.sum });
            values.push({ metricName: `${name}_count`, labels: { [label]: s.name }, value: l.count });
          }
          return values;
        });
        add(`${name}_max`, `Largest observation of ${name}.`, 'gauge',
          () => [...seriesOf(read(), label)].map((s) => ({ labels: { [label]: s.name }, value: summary(s).max })));
        break;
      }
      case 'scalar': {
        const { name, help, value, type = 'gauge', present } = f.family;
        if (present !== undefined && !hasTransport) break;
        add(name, help, type, () => [{ labels: {}, value: value(read()) }]);
        break;
      }
      case 'breakers':
        add(f.name, f.help, 'gauge', () => read().breakers().map(({ topic, handler, state }) => ({ labels: { topic, handler }, value: state })));
        break;
    }
  }
}
