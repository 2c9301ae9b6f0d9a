/**
 * Seeded paired bootstrap: rows are resampled with replacement as whole pairs (same request, both
 * variants' scores and its label), so the difference of a metric keeps the pairing. Reproducible
 * through lib/ml/random.ts's seeded generator.
 */
import { Random } from '../ml/random.js';
import { quantileSorted } from './quantile.js';

export interface BootstrapResult {
  /** The statistic on the original rows. */
  estimate: number;
  /** Percentile interval at `confidence` (np.quantile 'linear' of the replicates). */
  interval: [number, number];
  confidence: number;
  /** Two-sided p-value for "the statistic is 0": 2 · min(share <= 0, share >= 0), at most 1. */
  pValue: number;
  /** Replicates used (those where the statistic was NaN, e.g. a resample with one class, are skipped). */
  replicates: number;
  skipped: number;
}

export interface BootstrapOptions {
  iterations?: number;
  seed?: number;
  confidence?: number;
}

/**
 * Bootstraps `statistic(rows)` over `n` paired rows: `rows` holds the indices of one resample. The
 * index buffer is reused between replicates: the callback must not keep it.
 */
export function pairedBootstrap(n: number, statistic: (rows: Uint32Array) => number, options: BootstrapOptions = {}): BootstrapResult {
  const iterations = options.iterations ?? 1000;
  const confidence = options.confidence ?? 0.95;
  const random = new Random(options.seed ?? 0);
  const identity = new Uint32Array(n);
  for (let i = 0; i < n; i++) identity[i] = i;
  const estimate = statistic(identity);
  const rows = new Uint32Array(n);
  const replicates = new Float64Array(iterations);
  let used = 0;
  let atMostZero = 0;
  let atLeastZero = 0;
  for (let b = 0; b < iterations; b++) {
    for (let i = 0; i < n; i++) rows[i] = random.int(n);
    const value = statistic(rows);
    if (Number.isNaN(value)) continue;
    replicates[used++] = value;
    if (value <= 0) atMostZero++;
    if (value >= 0) atLeastZero++;
  }
  const sorted = replicates.subarray(0, used).sort();
  const tail = (1 - confidence) / 2;
  const interval: [number, number] = used > 0 ? [quantileSorted(sorted, tail), quantileSorted(sorted, 1 - tail)] : [Number.NaN, Number.NaN];
  const pValue = used > 0 ? Math.min(1, (2 * Math.min(atMostZero, atLeastZero)) / used) : Number.NaN;
  return { estimate, interval, confidence, pValue, replicates: used, skipped: iterations - used };
}
