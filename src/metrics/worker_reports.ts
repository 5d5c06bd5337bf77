/**
 * Folds workers' metrics reports into the series: per running task, what was
 * last applied of each series, so a report (cumulative per task, changed
 * series only) adds just the growth since then.
 */
import type { WorkerMetricsReport } from '../protocol/metrics_mailbox.js';
import type { HandlerSeries, MetricsWork, TopicSeries } from './series.js';

/** What has been applied of one running task's figures. */
interface TaskFigures {
  seq: number;
  succeeded: Map<number, number>;
  processing: Map<number, ArrayLike<number>>;
  endToEnd: Map<number, ArrayLike<number>>;
}

/** Where a report's keys are counted. */
export interface ReportTargets {
  /** The series of a handler key (a registry id standing for its handler name). */
  handler(key: number): HandlerSeries;
  /** The series of a topic series key; undefined once it was dropped (its topic unregistered). */
  topic(key: number): TopicSeries | undefined;
}

/**
 * A series' total is what main measured plus, per task, the latest
 * cumulative figures that task reported: each report replaces the task's
 * previous figures for the series it carries (their growth is added to the
 * series, and through it to the bus-wide totals). So applying a report costs
 * the series that changed in it; applying the same report twice, or only the
 * latest of several, adds the same.
 */
export class WorkerReports {
  readonly #targets: ReportTargets;
  readonly #work: MetricsWork;
  readonly #tasks = new Map<number, TaskFigures>();

  constructor(targets: ReportTargets, work: MetricsWork) {
    this.#targets = targets;
    this.#work = work;
  }

  apply(report: WorkerMetricsReport): void {
    let task = this.#tasks.get(report.task);
    if (task === undefined) {
      task = { seq: 0, succeeded: new Map(), processing: new Map(), endToEnd: new Map() };
      this.#tasks.set(report.task, task);
    }
    // Read again (the mailbox is unchanged, or a racing read fell back to the last report): nothing new.
    if (report.seq <= task.seq) return;
    task.seq = report.seq;
    for (const { key, count } of report.succeeded) {
      this.#targets.handler(key).workerSucceeded += count - (task.succeeded.get(key) ?? 0);
      task.succeeded.set(key, count);
    }
    for (const { key, pairs } of report.processing) {
      this.#targets.handler(key).processing.addGrowth(pairs, task.processing.get(key));
      task.processing.set(key, pairs);
    }
    for (const { key, pairs } of report.endToEnd) {
      const series = this.#targets.topic(key);
      // Dropped (its topic was unregistered): the worker drops it too at its next report.
      if (series === undefined) task.endToEnd.delete(key);
      else {
        series.endToEnd.addGrowth(pairs, task.endToEnd.get(key));
        task.endToEnd.set(key, pairs);
      }
    }
    this.#work.reportEntries += report.succeeded.length + report.processing.length + report.endToEnd.length;
  }

  /** A task ended: its final report is applied, and what it reported stays counted in the series. */
  retire(report: WorkerMetricsReport): void {
    this.apply(report);
    this.#tasks.delete(report.task);
  }

  /**
   * A topic series was dropped: no task keeps its figures any more. A later
   * report still carrying it (sent before the worker saw the change) is
   * ignored, not counted again from zero.
   */
  forgetTopic(key: number): void {
    for (const task of this.#tasks.values()) task.endToEnd.delete(key);
  }

  /** Running tasks whose figures are held (tests). */
  get tasks(): number {
    return this.#tasks.size;
  }
}
