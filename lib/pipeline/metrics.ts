/**
 * The metric names the pipeline reports and gates on. `binaryMetrics` (lib/ml/metrics.ts) computes
 * them; this module only renames them to the short names users write in gates (`auc`, `brier`).
 * Pure and workflow-safe.
 */
import type { CalibrationCurve, ConfusionMatrix } from '../ml/metrics.js';
import type { GateMetric } from '../schemas/training-pipeline.js';

export interface EvaluationMetrics {
  n: number;
  positives: number;
  threshold: number;
  auc: number;
  averagePrecision: number;
  logLoss: number;
  brier: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  confusionMatrix: ConfusionMatrix;
  calibration: CalibrationCurve;
}

export interface CvMetrics {
  folds: number;
  /** Test-fold AUC of each fold, in fold order. */
  aucs: number[];
  mean: number;
  /** Population standard deviation, as scikit-learn's cross_val_score(...).std(). */
  std: number;
}

/** Metrics where a smaller value is better. */
const LOWER_IS_BETTER: ReadonlySet<GateMetric> = new Set(['logLoss', 'brier']);

export function higherIsBetter(metric: GateMetric): boolean {
  return !LOWER_IS_BETTER.has(metric);
}

export function metricValue(metrics: EvaluationMetrics, metric: GateMetric): number {
  return metrics[metric];
}

export function cvSummary(aucs: readonly number[]): CvMetrics {
  const mean = aucs.reduce((sum, auc) => sum + auc, 0) / aucs.length;
  const variance = aucs.reduce((sum, auc) => sum + (auc - mean) ** 2, 0) / aucs.length;
  return { folds: aucs.length, aucs: [...aucs], mean, std: Math.sqrt(variance) };
}
