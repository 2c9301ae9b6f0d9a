import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** A registry per gateway app, with Node process metrics under `keel_gateway_`. */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'keel_gateway_' });
  return registry;
}

/** The serving series DESIGN.md lists, on one registry. */
export interface GatewayMetrics {
  readonly registry: Registry;
  /** Rows answered (live), by model, version and variant: add with `countPredictions`. */
  readonly predictions: Counter<'model' | 'version' | 'variant'>;
  /**
   * Adds answered rows to `predictions`. Tallied in a plain number per label set and handed to
   * prom-client when the counter is read (a scrape): its label hashing per call was a visible
   * share of a prediction's CPU.
   */
  countPredictions(model: string, version: number, variant: string, rows: number): void;
  /** Rows scored by shadow versions after the answer (never returned). */
  readonly shadowPredictions: Counter<'model' | 'version' | 'variant'>;
  /** Shadow scorings that failed (logged, never seen by the caller). */
  readonly shadowErrors: Counter<'model' | 'version'>;
  /** Request latency of successful prediction requests, by model and protocol. */
  readonly latency: Histogram<'model' | 'protocol'>;
  /** Prediction requests answered with an error, by error code (`InvalidInput`, `NotFound`, …). */
  readonly errors: Counter<'code'>;
}

export interface GatewayMetricsOptions {
  /** Records waiting in the prediction log (memory queue + spill), read at scrape time. */
  logQueueDepth?: () => number;
}

/**
 * Latency buckets from 0.5 ms: a scored row takes well under a millisecond, so the default
 * prom-client buckets (5 ms up) would put every request in the first one.
 */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Registers the gateway's serving metrics on `registry` (once per registry). */
export function createGatewayMetrics(registry: Registry, options: GatewayMetricsOptions = {}): GatewayMetrics {
  const existing = registered.get(registry);
  if (existing) return existing;
  const tallies = new Map<string, { labels: { model: string; version: string; variant: string }; rows: number }>();
  const predictions = new Counter({
    name: 'keel_predictions_total',
    help: 'Predictions answered by live versions, one per row',
    labelNames: ['model', 'version', 'variant'] as const,
    registers: [registry],
    collect() {
      for (const tally of tallies.values()) {
        if (tally.rows === 0) continue;
        this.inc(tally.labels, tally.rows);
        tally.rows = 0;
      }
    },
  });
  const countPredictions = (model: string, version: number, variant: string, rows: number) => {
    const key = `${model}\u0000${version}\u0000${variant}`;
    let tally = tallies.get(key);
    if (!tally) tallies.set(key, (tally = { labels: { model, version: String(version), variant }, rows: 0 }));
    tally.rows += rows;
  };
  const shadowPredictions = new Counter({
    name: 'keel_shadow_predictions_total',
    help: 'Rows scored by shadow versions after the answer was sent (logged, never returned)',
    labelNames: ['model', 'version', 'variant'] as const,
    registers: [registry],
  });
  const shadowErrors = new Counter({
    name: 'keel_shadow_errors_total',
    help: 'Shadow scorings that failed (the caller never sees them)',
    labelNames: ['model', 'version'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'keel_prediction_latency_seconds',
    help: 'Time from a prediction request to its answer (validation, enrichment, scoring), in seconds',
    labelNames: ['model', 'protocol'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const errors = new Counter({
    name: 'keel_prediction_errors_total',
    help: 'Prediction requests answered with an error, by error code',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  const depth = options.logQueueDepth;
  new Gauge({
    name: 'keel_prediction_log_queue_depth',
    help: 'Prediction records waiting to be written to Postgres (memory and spill file)',
    registers: [registry],
    collect() {
      this.set(depth ? safeDepth(depth) : 0);
    },
  });
  const metrics = { registry, predictions, countPredictions, shadowPredictions, shadowErrors, latency, errors };
  registered.set(registry, metrics);
  return metrics;
}

const registered = new WeakMap<Registry, GatewayMetrics>();

function safeDepth(depth: () => number): number {
  try {
    const value = depth();
    return Number.isFinite(value) ? value : 0;
  } catch {
    return 0;
  }
}
