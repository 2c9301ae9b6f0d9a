/**
 * Binary classification metrics, matching scikit-learn 1.2.1 to rounding (see
 * test/fixtures/sklearn/make_metrics_fixtures.py). Labels are 0/1 bytes, scores and probabilities
 * float64, optional sample weights float64 wherever sklearn accepts them. Bad input throws
 * `InvalidInput` naming the metric and the problem.
 */
import { InvalidInput } from '../errors.js';
import { quantileSorted } from '../data/profile.js';
import type { Labels } from './types.js';

export interface ConfusionMatrix {
  tn: number;
  fp: number;
  fn: number;
  tp: number;
}

export type CalibrationStrategy = 'uniform' | 'quantile';

/** sklearn.calibration.calibration_curve, plus the per-bin counts and edges it uses internally. */
export interface CalibrationCurve {
  strategy: CalibrationStrategy;
  bins: number;
  /** The bins + 1 edges (quantile edges may repeat; the bins between repeats are empty). */
  edges: number[];
  /** Per non-empty bin, in increasing order: */
  meanPredicted: number[];
  fractionPositive: number[];
  count: number[];
}

/** What the pipeline stores as metrics.json: plain numbers and arrays only. */
export interface BinaryMetrics {
  n: number;
  positives: number;
  threshold: number;
  sampleWeighted: boolean;
  rocAuc: number;
  averagePrecision: number;
  logLoss: number;
  brierScore: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  confusionMatrix: ConfusionMatrix;
  calibration: { uniform: CalibrationCurve; quantile: CalibrationCurve };
}

/** np.finfo(np.float64).eps: log_loss's default eps="auto" in sklearn 1.2 for float64 input. */
const LOG_LOSS_EPS = 2.220446049250313e-16;

// ---- validation -------------------------------------------------------------------------------

interface Checked {
  /** Total weight (row count when unweighted) of each class. */
  negatives: number;
  positives: number;
}

function check(
  metric: string,
  y: Labels,
  p: Float64Array,
  sampleWeight: Float64Array | undefined,
  probabilities: boolean,
): Checked {
  const n = y.length;
  if (n === 0) throw new InvalidInput(`${metric}: y is empty`, 'y');
  if (p.length !== n) throw new InvalidInput(`${metric}: y has ${n} labels but ${p.length} scores`, 'p');
  if (sampleWeight && sampleWeight.length !== n) {
    throw new InvalidInput(`${metric}: y has ${n} labels but ${sampleWeight.length} sample weights`, 'sampleWeight');
  }
  let negatives = 0;
  let positives = 0;
  for (let i = 0; i < n; i++) {
    const label = y[i]!;
    if (label > 1) throw new InvalidInput(`${metric}: y[${i}] is ${label}; labels must be 0 or 1`, 'y');
    const v = p[i]!;
    if (Number.isNaN(v)) throw new InvalidInput(`${metric}: score p[${i}] is NaN`, 'p');
    if (!Number.isFinite(v)) throw new InvalidInput(`${metric}: score p[${i}] is ${v}; scores must be finite`, 'p');
    if (probabilities && (v < 0 || v > 1)) {
      throw new InvalidInput(`${metric}: probability p[${i}] = ${v} is outside [0, 1]`, 'p');
    }
    let w = 1;
    if (sampleWeight) {
      w = sampleWeight[i]!;
      if (!(w >= 0) || !Number.isFinite(w)) {
        throw new InvalidInput(`${metric}: sampleWeight[${i}] = ${w}; weights must be finite and >= 0`, 'sampleWeight');
      }
    }
    if (label === 1) positives += w;
    else negatives += w;
  }
  if (negatives + positives <= 0) throw new InvalidInput(`${metric}: all sample weights are 0`, 'sampleWeight');
  return { negatives, positives };
}

function checkThreshold(metric: string, threshold: number): void {
  if (typeof threshold !== 'number' || Number.isNaN(threshold)) {
    throw new InvalidInput(`${metric}: threshold must be a number, got ${String(threshold)}`, 'threshold');
  }
}

function singleClassError(metric: string, missing: 'positive' | 'negative', weighted: boolean): InvalidInput {
  const why = weighted ? `the ${missing} class has zero total sample weight` : `y has no ${missing} labels`;
  return new InvalidInput(`${metric} is undefined when y has a single class: ${why}`, 'y');
}

// ---- ranking metrics --------------------------------------------------------------------------

/**
 * Cumulative (fp, tp) weights at each distinct score, highest score first: sklearn's
 * _binary_clf_curve. Tied scores form one threshold, so ties count as half-ordered pairs in ROC AUC.
 */
function thresholdCurve(y: Labels, score: Float64Array, sampleWeight: Float64Array | undefined) {
  const n = y.length;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => score[b]! - score[a]!);
  const fps = new Float64Array(n);
  const tps = new Float64Array(n);
  let fp = 0;
  let tp = 0;
  let points = 0;
  for (let k = 0; k < n; k++) {
    const i = order[k]!;
    const w = sampleWeight ? sampleWeight[i]! : 1;
    if (y[i] === 1) tp += w;
    else fp += w;
    // Close a threshold at the last row of each run of equal scores.
    if (k === n - 1 || score[order[k + 1]!] !== score[i]) {
      fps[points] = fp;
      tps[points] = tp;
      points++;
    }
  }
  return { fps: fps.subarray(0, points), tps: tps.subarray(0, points) };
}

/** Area under the ROC curve: the trapezoid rule over the distinct thresholds, from (0, 0) to (1, 1). */
function rocAucOf(curve: { fps: Float64Array; tps: Float64Array }): number {
  const { fps, tps } = curve;
  const last = fps.length - 1;
  const fpTotal = fps[last]!;
  const tpTotal = tps[last]!;
  let area = 0;
  let prevFpr = 0;
  let prevTpr = 0;
  for (let k = 0; k <= last; k++) {
    const fpr = fps[k]! / fpTotal;
    const tpr = tps[k]! / tpTotal;
    area += ((fpr - prevFpr) * (tpr + prevTpr)) / 2;
    prevFpr = fpr;
    prevTpr = tpr;
  }
  return area;
}

/** sklearn's average_precision_score: sum over thresholds of (recall step) × precision, no interpolation. */
function averagePrecisionOf(curve: { fps: Float64Array; tps: Float64Array }): number {
  const { fps, tps } = curve;
  const tpTotal = tps[tps.length - 1]!;
  let ap = 0;
  let prevRecall = 0;
  for (let k = 0; k < tps.length; k++) {
    const tp = tps[k]!;
    const predicted = tp + fps[k]!;
    const recall = tp / tpTotal;
    // sklearn sets precision to 0 where nothing is predicted (only reachable through zero weights).
    ap += (recall - prevRecall) * (predicted === 0 ? 0 : tp / predicted);
    prevRecall = recall;
  }
  return ap;
}

/**
 * ROC AUC as sklearn's roc_auc_score. Scores may be any finite numbers (probabilities, logits).
 * Undefined, and rejected, when either class is absent (or has zero total weight).
 */
export function rocAuc(y: Labels, score: Float64Array, sampleWeight?: Float64Array): number {
  const totals = check('ROC AUC', y, score, sampleWeight, false);
  if (totals.positives <= 0) throw singleClassError('ROC AUC', 'positive', !!sampleWeight);
  if (totals.negatives <= 0) throw singleClassError('ROC AUC', 'negative', !!sampleWeight);
  return rocAucOf(thresholdCurve(y, score, sampleWeight));
}

/**
 * Average precision as sklearn's average_precision_score (step-wise, no interpolation). Undefined,
 * and rejected, without positives (sklearn returns 0 there with a warning; recall is 0/0).
 */
export function averagePrecision(y: Labels, score: Float64Array, sampleWeight?: Float64Array): number {
  const totals = check('average precision', y, score, sampleWeight, false);
  if (totals.positives <= 0) throw singleClassError('average precision', 'positive', !!sampleWeight);
  return averagePrecisionOf(thresholdCurve(y, score, sampleWeight));
}

// ---- probability metrics ----------------------------------------------------------------------

/**
 * Mean log loss as sklearn 1.2.1's log_loss(y, p, labels=[0, 1]) with its default eps="auto": p is
 * clipped to [eps, 1 - eps] with eps = 2.22e-16 (float64 machine epsilon), the pair (1 - p, p) is
 * renormalised by its sum, and a row costs -log of its label's share. A single class is fine here.
 */
export function logLoss(y: Labels, p: Float64Array, sampleWeight?: Float64Array): number {
  check('log loss', y, p, sampleWeight, true);
  return logLossOf(y, p, sampleWeight);
}

function logLossOf(y: Labels, p: Float64Array, sampleWeight: Float64Array | undefined): number {
  let total = 0;
  let weightTotal = 0;
  for (let i = 0; i < y.length; i++) {
    const clipped = Math.min(Math.max(p[i]!, LOG_LOSS_EPS), 1 - LOG_LOSS_EPS);
    const complement = 1 - clipped;
    const sum = complement + clipped;
    const loss = -Math.log((y[i] === 1 ? clipped : complement) / sum);
    const w = sampleWeight ? sampleWeight[i]! : 1;
    total += loss * w;
    weightTotal += w;
  }
  return total / weightTotal;
}

/** Brier score as sklearn's brier_score_loss: the (weighted) mean of (y - p)². */
export function brierScore(y: Labels, p: Float64Array, sampleWeight?: Float64Array): number {
  check('Brier score', y, p, sampleWeight, true);
  return brierScoreOf(y, p, sampleWeight);
}

function brierScoreOf(y: Labels, p: Float64Array, sampleWeight: Float64Array | undefined): number {
  let total = 0;
  let weightTotal = 0;
  for (let i = 0; i < y.length; i++) {
    const d = y[i]! - p[i]!;
    const w = sampleWeight ? sampleWeight[i]! : 1;
    total += d * d * w;
    weightTotal += w;
  }
  return total / weightTotal;
}

// ---- threshold metrics ------------------------------------------------------------------------

function confusionOf(y: Labels, p: Float64Array, threshold: number, sampleWeight: Float64Array | undefined): ConfusionMatrix {
  let tn = 0;
  let fp = 0;
  let fn = 0;
  let tp = 0;
  for (let i = 0; i < y.length; i++) {
    const w = sampleWeight ? sampleWeight[i]! : 1;
    const predicted = p[i]! >= threshold;
    if (y[i] === 1) {
      if (predicted) tp += w;
      else fn += w;
    } else if (predicted) fp += w;
    else tn += w;
  }
  return { tn, fp, fn, tp };
}

/**
 * Confusion matrix of the predictions `p >= threshold`, as sklearn's confusion_matrix(labels=[0, 1])
 * .ravel(); with sample weights each cell is a total weight rather than a row count.
 */
export function confusionMatrix(y: Labels, p: Float64Array, threshold = 0.5, sampleWeight?: Float64Array): ConfusionMatrix {
  check('confusion matrix', y, p, sampleWeight, false);
  checkThreshold('confusion matrix', threshold);
  return confusionOf(y, p, threshold, sampleWeight);
}

// sklearn's zero_division="warn" default returns 0 (plus a warning) for 0/0: mirrored by safeRatio.
function safeRatio(numerator: number, denominator: number): number {
  return denominator === 0 ? 0 : numerator / denominator;
}

function accuracyOf(c: ConfusionMatrix): number {
  return (c.tp + c.tn) / (c.tp + c.tn + c.fp + c.fn);
}

function precisionOf(c: ConfusionMatrix): number {
  return safeRatio(c.tp, c.tp + c.fp);
}

function recallOf(c: ConfusionMatrix): number {
  return safeRatio(c.tp, c.tp + c.fn);
}

/** F1 from precision and recall, as sklearn 1.2.1 computes it (0 when both are 0). */
function f1Of(c: ConfusionMatrix): number {
  const precision = precisionOf(c);
  const recall = recallOf(c);
  return safeRatio(2 * precision * recall, precision + recall);
}

/** Accuracy of `p >= threshold`, as sklearn's accuracy_score. */
export function accuracy(y: Labels, p: Float64Array, threshold = 0.5, sampleWeight?: Float64Array): number {
  return accuracyOf(confusionMatrix(y, p, threshold, sampleWeight));
}

/** Precision of `p >= threshold`; 0 when nothing is predicted positive (sklearn's zero_division default). */
export function precision(y: Labels, p: Float64Array, threshold = 0.5, sampleWeight?: Float64Array): number {
  return precisionOf(confusionMatrix(y, p, threshold, sampleWeight));
}

/** Recall of `p >= threshold`; 0 when y has no positives (sklearn's zero_division default). */
export function recall(y: Labels, p: Float64Array, threshold = 0.5, sampleWeight?: Float64Array): number {
  return recallOf(confusionMatrix(y, p, threshold, sampleWeight));
}

/** F1 of `p >= threshold`; 0 when precision and recall are both 0 (sklearn's zero_division default). */
export function f1(y: Labels, p: Float64Array, threshold = 0.5, sampleWeight?: Float64Array): number {
  return f1Of(confusionMatrix(y, p, threshold, sampleWeight));
}

// ---- calibration ------------------------------------------------------------------------------

/** np.linspace(0, 1, bins + 1): i × (1 / bins), with the last edge exactly 1. */
function uniformEdges(bins: number): Float64Array {
  const edges = new Float64Array(bins + 1);
  const step = 1 / bins;
  for (let i = 0; i < bins; i++) edges[i] = i * step;
  edges[bins] = 1;
  return edges;
}

/** np.percentile(p, linspace(0, 1, bins + 1) * 100) with numpy's default 'linear' method, bit for bit. */
function quantileEdges(p: Float64Array, bins: number): Float64Array {
  const sorted = Float64Array.from(p).sort();
  const fractions = uniformEdges(bins);
  const edges = new Float64Array(bins + 1);
  // numpy scales to percent and back, which can move q by one ulp.
  for (let e = 0; e <= bins; e++) edges[e] = quantileSorted(sorted, (fractions[e]! * 100) / 100);
  return edges;
}

/** np.searchsorted(edges[1:-1], v, side='left'): how many inner edges are strictly below v. */
function binOf(edges: Float64Array, v: number): number {
  let lo = 1;
  let hi = edges.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

function calibrationOf(y: Labels, p: Float64Array, bins: number, strategy: CalibrationStrategy): CalibrationCurve {
  const edges = strategy === 'uniform' ? uniformEdges(bins) : quantileEdges(p, bins);
  const sums = new Float64Array(bins);
  const positives = new Float64Array(bins);
  const counts = new Float64Array(bins);
  for (let i = 0; i < y.length; i++) {
    const b = binOf(edges, p[i]!);
    sums[b]! += p[i]!;
    positives[b]! += y[i]!;
    counts[b]!++;
  }
  const curve: CalibrationCurve = { strategy, bins, edges: Array.from(edges), meanPredicted: [], fractionPositive: [], count: [] };
  for (let b = 0; b < bins; b++) {
    const count = counts[b]!;
    if (count === 0) continue;
    curve.meanPredicted.push(sums[b]! / count);
    curve.fractionPositive.push(positives[b]! / count);
    curve.count.push(count);
  }
  return curve;
}

/**
 * Reliability curve as sklearn.calibration.calibration_curve(y, p, n_bins=bins, strategy): edges
 * are linspace(0, 1) ('uniform') or percentiles of p ('quantile'); a value on an inner edge falls
 * in the lower bin; empty bins are dropped. Unweighted, like sklearn 1.2.1.
 */
export function calibrationCurve(
  y: Labels,
  p: Float64Array,
  options: { bins?: number; strategy?: CalibrationStrategy } = {},
): CalibrationCurve {
  const bins = options.bins ?? 5;
  const strategy = options.strategy ?? 'uniform';
  check('calibration curve', y, p, undefined, true);
  if (!Number.isInteger(bins) || bins < 1) {
    throw new InvalidInput(`calibration curve: bins must be an integer >= 1, got ${bins}`, 'bins');
  }
  if (strategy !== 'uniform' && strategy !== 'quantile') {
    throw new InvalidInput(`calibration curve: strategy must be 'uniform' or 'quantile', got ${String(strategy)}`, 'strategy');
  }
  return calibrationOf(y, p, bins, strategy);
}

// ---- everything at once -----------------------------------------------------------------------

/**
 * Every metric above for one set of predictions: what the pipeline writes as metrics.json. Both
 * classes must be present (ROC AUC needs them). Calibration uses `calibrationBins` (default 10) and
 * ignores sample weights, as sklearn's calibration_curve does.
 */
export function binaryMetrics(
  y: Labels,
  p: Float64Array,
  threshold = 0.5,
  options: { sampleWeight?: Float64Array; calibrationBins?: number } = {},
): BinaryMetrics {
  const { sampleWeight } = options;
  const bins = options.calibrationBins ?? 10;
  const totals = check('binary metrics', y, p, sampleWeight, true);
  checkThreshold('binary metrics', threshold);
  if (!Number.isInteger(bins) || bins < 1) {
    throw new InvalidInput(`binary metrics: calibrationBins must be an integer >= 1, got ${bins}`, 'calibrationBins');
  }
  if (totals.positives <= 0) throw singleClassError('ROC AUC', 'positive', !!sampleWeight);
  if (totals.negatives <= 0) throw singleClassError('ROC AUC', 'negative', !!sampleWeight);
  const curve = thresholdCurve(y, p, sampleWeight);
  const confusion = confusionOf(y, p, threshold, sampleWeight);
  let positives = 0;
  for (let i = 0; i < y.length; i++) positives += y[i]!;
  return {
    n: y.length,
    positives,
    threshold,
    sampleWeighted: sampleWeight !== undefined,
    rocAuc: rocAucOf(curve),
    averagePrecision: averagePrecisionOf(curve),
    logLoss: logLossOf(y, p, sampleWeight),
    brierScore: brierScoreOf(y, p, sampleWeight),
    accuracy: accuracyOf(confusion),
    precision: precisionOf(confusion),
    recall: recallOf(confusion),
    f1: f1Of(confusion),
    confusionMatrix: confusion,
    calibration: {
      uniform: calibrationOf(y, p, bins, 'uniform'),
      quantile: calibrationOf(y, p, bins, 'quantile'),
    },
  };
}
