/**
 * The shape of one benchmark result (`ringbus bench --json` prints exactly
 * this object; the HTML report embeds it): BenchResult and its parts. Every
 * field is documented here; `schema` changes when a field changes meaning or
 * goes away. Rates are events/s, CPU is in % of one core (100 = one core busy).
 */

/** Percentiles of one latency, in the unit its name says. */
export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
}

export interface AccountingCheck {
  /** Which bus: the phase, and the mode and round in the max-rate phase. */
  bus: string;
  pass: boolean;
  /** The stats() the check ran on. */
  stats: Record<string, number | boolean>;
  failures: string[];
}

export interface LatencyPoint {
  /** Percentile, 0–100. */
  percentile: number;
  publishUs: number;
  sendLagUs: number;
  endToEndUs: number;
  endToEndRawUs: number;
}

/** min / median / max of a list of rounds. */
export interface Spread {
  min: number;
  median: number;
  max: number;
}

/** One configuration of the max-rate phase, measured in every round. */
export interface MaxRateMode {
  /** 'defaults': the natural loop at default options (the headline); 'metricsOff', 'tuned', 'binary'. */
  key: 'defaults' | 'metricsOff' | 'tuned' | 'binary';
  /** What was run, e.g. "defaults, natural loop, JSON ~100 B". */
  label: string;
  /** The options given to ResilientMessageBus beyond its defaults ('none' at defaults). */
  options: string;
  /** 'natural': `if (!bus.publish(t, p)) await bus.publishAsync(t, p)`; 'chunked': 4,096 per turn, setImmediate when full. */
  loop: 'natural' | 'chunked';
  binary: boolean;
  /** Deliveries/s in the steady-state window of each round, in round order. */
  rates: number[];
  spread: Spread;
}

/** One point of CPU against rate: the whole process (main thread and every worker), from process.cpuUsage(). */
export interface CpuPoint {
  /** Offered events/s (0: idle). */
  rate: number;
  /** Delivered events/s over the measured window. */
  achieved: number;
  /** CPU time per delivered event, µs (0 when idle). */
  cpuUsPerEvent: number;
  cpuPctOfCore: number;
  seconds: number;
}

/** `--transport jetstream`: end-to-end throughput with one consumer count (a process each). */
export interface JetStreamThroughput {
  /** Consumer processes, each a bus at its defaults with the no-op worker handler, competing on one durable consumer. */
  consumers: number;
  eventsPerRound: number;
  /** Per round: events ÷ (first publish → every consumer processed every event), events/s. */
  rates: number[];
  spread: Spread;
  /** Per round: events ÷ (first publish → the server stored every event: the producer's drain), events/s. */
  storeRates: number[];
  storeSpread: Spread;
  /** Per round, the events each consumer process processed. */
  shares: number[][];
  /**
   * CPU time per event over a round (process.cpuUsage(): every thread), µs: this process (the producer bus and
   * the bench's bookkeeping), and all consumer processes together. The NATS server's is not counted. On C cores
   * the end-to-end rate cannot pass C × 10⁶ ÷ (their sum + the server's).
   */
  cpuUsPerEvent: { producer: Spread; consumers: Spread };
}

/** `--transport jetstream`: end-to-end latency at a paced rate with one consumer count. */
export interface JetStreamLatency {
  consumers: number;
  offeredRate: number;
  /** Measured seconds (after a 1 s warm-up at the same rate, left out of every figure). */
  seconds: number;
  accepted: number;
  achievedRate: number;
  /**
   * publish() in this process → settled in a consumer process, ms: the consumers' own
   * event_end_to_end_seconds histograms (publishedAt travels in the envelope), merged. Not CO-corrected:
   * events travel in envelopes, so one slow envelope is not a queue that delays the ones behind it;
   * `sendLagUs` shows whether the producer kept its schedule.
   */
  endToEndMs: Percentiles;
  perConsumerEndToEndMs: Percentiles[];
  /** publish() call time in this process, µs, coordinated-omission aware. */
  publishUs: Percentiles;
  /** How late each publish started against its schedule, µs. */
  sendLagUs: Percentiles;
}

/** `--transport jetstream`: two consumers at a steady rate, one SIGKILLed. */
export interface JetStreamKill {
  /** transport.jetstream.ackWaitMs of both consumers in this part (the library's default is 30,000). */
  ackWaitMs: number;
  ackWaitIsDefault: boolean;
  /** Events/s offered throughout, before and after the kill. */
  rate: number;
  /**
   * SIGKILL → the survivor received its first redelivered envelope, ms (its counters reach this process every
   * 10 ms while they change); null: none came. The consumer SIGKILLs itself on a word from the bench, right after
   * writing its counters to a file in the same turn: the time of death is its own clock's.
   */
  firstRedeliveryMs: number | null;
  /**
   * SIGKILL → every envelope stored by 250 ms after it is acknowledged (the durable consumer's ack floor
   * reached that sequence): the survivor processed what the dead process held. Polled every 20 ms; null: not
   * within 2 × ackWaitMs + 30 s.
   */
  recoveredMs: number | null;
  /** Envelopes the durable consumer had delivered and not seen acknowledged, 250 ms after the kill (the dead one's and a few in flight). */
  unackedAtKill: number;
  /** Envelopes the survivor received again (transportStats().redelivered). */
  redeliveredEnvelopes: number;
  published: number;
  /** Events the survivor processed during the part. */
  survivorProcessed: number;
  /** Events the killed process processed during the part: its counters, written in the turn it died. */
  deadProcessed: number;
  /** survivor + dead − published: events processed twice (the dead one ran them and never acknowledged their envelope). */
  duplicates: number;
}

export interface BenchResult {
  /** 2: this shape (1 was the single-file bench before the phases were split). */
  schema: 2;
  meta: {
    /** The command that reproduces this run (`npx ringbus bench …` when run through the CLI). */
    command: string;
    startedAt: string;
    wallSeconds: number;
    node: string;
    platform: string;
    cpuModel: string;
    cores: number;
    /** os.loadavg() when the run started: other work on the machine shows up in every figure. */
    loadAvg: number[];
  };
  config: {
    /** Every bus is a ResilientMessageBus; only the options in `overrides` differ from its defaults. */
    bus: 'ResilientMessageBus';
    /** Options given to every bus except the max-rate phase's modes (each says its own); 'none' at defaults. */
    overrides: string;
    /** --threads: pool min = max threads for every bus but 'tuned'; null = the library's default pool. */
    threads: number | null;
    /** The pool's default maxThreads on this machine (DEFAULT_OPTIONS.pool.maxThreads). */
    defaultMaxThreads: number;
    phases: string[];
    /** Events/s offered in the sustained phase; null = as fast as possible (the natural loop). */
    rate: number | null;
    duration: number;
    /** Seconds at the same rate before the sustained phase, excluded from its figures. */
    warmup: number;
    payload: string;
    payloadBytes: number;
    binary: boolean;
    handlerCostUs: number;
    failureRate: number;
    crashRate: number;
    timeoutRate: number;
    /** handlerTimeoutMs in effect (ResilientMessageBus's default unless --timeout-rate is given). */
    handlerTimeoutMs: number;
    retry: { maxRetries: number; initialDelayMs: number; maxDelayMs: number };
    breaker: { failureRateThreshold: number; minimumCalls: number; windowMs: number; recoveryTimeoutMs: number };
    queueCapacity: number;
    maxSeconds: number;
    maxRounds: number;
    tunedThreads: number;
    cpuRates: number[];
    cpuSeconds: number;
    idleSeconds: number;
    idleRate: number;
    baselineSeconds: number;
    piscinaInFlight: number;
    /** 'local': the in-process phases; 'jetstream': only the JetStream phase (`jetstream` below). */
    transport: 'local' | 'jetstream';
    /** The JetStream phase's flags; null with the local transport. */
    jetstreamFlags: {
      servers: string; consumers: number[]; parts: string[]; rounds: number; events: number; rate: number; seconds: number;
      ackWaitMs: number; baselineSeconds: number;
    } | null;
  };
  sustained: {
    offeredRate: number | null;
    seconds: number;
    attempted: number;
    accepted: number;
    rejected: number;
    achievedRate: number;
    /** null when the rate was 'max' (nothing to keep up with). */
    keptUp: boolean | null;
    /** How long after the last publish the queue was empty; null if not within the wait. */
    drainMs: number | null;
    /** publish() call time, µs; coordinated-omission aware at fixed rates (recordValueWithExpectedInterval). */
    publishUs: Percentiles;
    /** The same calls, one sample each (no CO correction). */
    publishRawUs: Percentiles;
    /** How long one bus.metrics.snapshot() blocks the main thread after the phase (median of 3), ms. */
    metricsSnapshotMs: number;
    /** The main thread's event-loop delay over the phase (perf_hooks.monitorEventLoopDelay), ms. */
    eventLoopDelayMs: Percentiles;
    /** How late each publish started against its schedule, µs. */
    sendLagUs: Percentiles;
    /** Publish → settled, ms: the bus's histogram, CO-corrected at fixed rates. */
    endToEndMs: Percentiles;
    /** The same, uncorrected. */
    endToEndRawMs: Percentiles;
    memory: {
      peakRssMb: number;
      peakHeapMb: number;
      /** Linear regression over the samples after the first 20% of the run; null for runs under 30 s (too short to judge). */
      rssSlopeMbPerMin: number | null;
      heapSlopeMbPerMin: number | null;
      warmupSeconds: number;
      samples: number;
      /** Main thread's heapUsed right after a full GC: before the phase, and after it drained. */
      liveHeapStartMb: number;
      liveHeapEndMb: number;
    };
    stats: Record<string, number | boolean>;
    series: {
      /** Per second: events accepted by publish() and events processed. */
      throughput: { t: number; published: number; processed: number }[];
      /** Every 250 ms. */
      memory: { t: number; rssMb: number; heapMb: number }[];
      latency: LatencyPoint[];
    };
  } | null;
  maxRate: {
    /** Seconds of each round's steady-state window (a fresh bus per round and mode, ramps excluded). */
    roundSeconds: number;
    rounds: number;
    modes: MaxRateMode[];
    /** Median of 'defaults' ÷ median of 'tuned'. */
    naturalToTuned: number | null;
    /** (metricsOff − defaults) / metricsOff of the medians, in %: what timing every attempt and every event costs. */
    metricsCostPct: number | null;
  } | null;
  cpu: {
    points: CpuPoint[];
    /** CPU (% of one core) = intercept + slope × rate, least squares over the points. */
    fit: { usPerEvent: number; interceptPct: number; r2: number } | null;
  } | null;
  idle: {
    /** A started bus with nothing to do, after it ran a few events and settled. */
    idle: CpuPoint;
    /** The same bus at a low fixed rate (--idle-rate, default 100/s). */
    lowRate: CpuPoint;
  } | null;
  baselines: {
    /** Piscina at its own defaults, one run() per event, `inFlight` tasks kept outstanding. */
    piscina: { events: number; rate: number; seconds: number; inFlight: number; minThreads: number; maxThreads: number };
    /** The handler called by an EventEmitter on the main thread. */
    inline: { events: number; rate: number; seconds: number };
    /** The max-rate phase's 'defaults' median ÷ the baseline; null without the max-rate phase. */
    ratioToPiscina: number | null;
    ratioToInline: number | null;
  } | null;
  efficiency: { costUs: number; threads: number; idealRate: number; achievedRate: number; pct: number } | null;
  /** `--transport jetstream` (null otherwise): ringbus across processes through NATS JetStream, default options. */
  jetstream: {
    servers: string;
    serverVersion: string;
    consumerCounts: number[];
    /** What the buses were given beyond the defaults: where the stream is (a unique stream and subject prefix per part). */
    options: string;
    /** The transport's defaults, in effect everywhere but the kill part's ackWaitMs. */
    transportDefaults: Record<string, string | number>;
    /** Which parts ran (--js-parts). */
    parts: string[];
    throughput: JetStreamThroughput[];
    latency: JetStreamLatency[];
    kill: JetStreamKill | null;
    /**
     * One JetStream message per event from this process: js.publish, `inFlight` awaited at once, no msgID, on a
     * stream of its own (file storage). `interleaved`: its rounds ran one after each throughput round of the
     * first consumer count (the same load for both); otherwise one after another at the end.
     */
    baseline: { inFlight: number; seconds: number; msgId: boolean; interleaved: boolean; rates: number[]; spread: Spread } | null;
    /** Median end-to-end events/s with the first consumer count ÷ the per-event median. */
    ratioToPerEvent: number | null;
    producerWarnings: number;
    /** Warnings and errors the consumer processes logged (the first ones are on stderr). */
    consumerWarnings: number;
    consumerErrors: number;
    /** os.loadavg() at the end of the phase. */
    loadAvgEnd: number[];
    seconds: number;
  } | null;
  chaos: {
    enabled: boolean;
    published: number;
    processed: number;
    failed: number;
    retried: number;
    deadLettered: number;
    dropped: number;
    abandoned: number;
    pass: boolean;
    failures: string[];
  };
  accounting: AccountingCheck[];
  errorLogs: number;
  /** Every row of the summary that has a target, and whether it was met. */
  targets: { section: string; metric: string; value: string; target: string; pass: boolean }[];
  /** Every target met and the accounting invariant holds on every bus. */
  ok: boolean;
}
