/**
 * Validation gates, MLflow's model: per metric an absolute threshold and a minimum absolute or
 * relative change against the current champion evaluated on the same holdout, plus limits on the
 * cross-validation spread. Pure and deterministic: the workflow evaluates them itself.
 */
import type { GatesConfig, GateMetric } from '../schemas/training-pipeline.js';
import type { CvMetrics, EvaluationMetrics } from './metrics.js';
import { higherIsBetter, metricValue } from './metrics.js';

export interface GateResult {
  /** A stable name: `min_auc`, `max_cv_std`, `max_cv_test_gap`, `champion_auc_gain`, `auc_threshold`, `auc_min_relative_change`, … */
  gate: string;
  metric: string;
  value: number | null;
  threshold: number;
  /** The champion's value on the same holdout, for gates that compare with it. */
  baseline: number | null;
  passed: boolean;
  /** Why a gate passed without a comparison (no champion yet) or failed. */
  detail: string;
}

export interface GateInputs {
  test: EvaluationMetrics;
  cv: CvMetrics | null;
  /** The champion's metrics on the same holdout; null when there is no champion (first model). */
  champion: EvaluationMetrics | null;
}

const round = (x: number) => Number(x.toPrecision(6));

export function evaluateGates(config: GatesConfig, inputs: GateInputs): GateResult[] {
  const results: GateResult[] = [];
  const { test, cv, champion } = inputs;

  if (config.minAuc !== null) {
    const passed = test.auc >= config.minAuc;
    results.push({
      gate: 'min_auc', metric: 'auc', value: test.auc, threshold: config.minAuc, baseline: null, passed,
      detail: passed ? `test AUC ${round(test.auc)} >= ${config.minAuc}` : `test AUC ${round(test.auc)} is below the minimum ${config.minAuc}`,
    });
  }
  if (config.maxCvStd !== null) {
    results.push(cv
      ? {
          gate: 'max_cv_std', metric: 'cv_auc_std', value: cv.std, threshold: config.maxCvStd, baseline: null, passed: cv.std <= config.maxCvStd,
          detail: cv.std <= config.maxCvStd ? `CV AUC std ${round(cv.std)} <= ${config.maxCvStd}` : `CV AUC std ${round(cv.std)} exceeds ${config.maxCvStd}: the model is unstable across folds`,
        }
      : skipped('max_cv_std', 'cv_auc_std', config.maxCvStd, 'cross-validation is off (cvFolds = 0)'));
  }
  if (config.maxCvTestGap !== null) {
    const gap = cv ? Math.abs(cv.mean - test.auc) : null;
    results.push(gap !== null
      ? {
          gate: 'max_cv_test_gap', metric: 'abs_cv_mean_minus_test_auc', value: gap, threshold: config.maxCvTestGap, baseline: null,
          passed: gap <= config.maxCvTestGap,
          detail: gap <= config.maxCvTestGap
            ? `|CV mean ${round(cv!.mean)} − test ${round(test.auc)}| = ${round(gap)} <= ${config.maxCvTestGap}`
            : `|CV mean ${round(cv!.mean)} − test ${round(test.auc)}| = ${round(gap)} exceeds ${config.maxCvTestGap}: the holdout disagrees with cross-validation`,
        }
      : skipped('max_cv_test_gap', 'abs_cv_mean_minus_test_auc', config.maxCvTestGap, 'cross-validation is off (cvFolds = 0)'));
  }
  if (config.minAucGainOverChampion !== null) {
    results.push(changeGate('champion_auc_gain', 'auc', test, champion, config.minAucGainOverChampion, 'absolute', true));
  }
  for (const t of config.thresholds) {
    const better = t.higherIsBetter ?? higherIsBetter(t.metric);
    if (t.threshold !== undefined) {
      const value = metricValue(test, t.metric);
      const passed = better ? value >= t.threshold : value <= t.threshold;
      results.push({
        gate: `${t.metric}_threshold`, metric: t.metric, value, threshold: t.threshold, baseline: null, passed,
        detail: `${t.metric} ${round(value)} ${passed ? 'meets' : 'misses'} the threshold ${better ? '>=' : '<='} ${t.threshold}`,
      });
    }
    if (t.minAbsoluteChange !== undefined) results.push(changeGate(`${t.metric}_min_absolute_change`, t.metric, test, champion, t.minAbsoluteChange, 'absolute', better));
    if (t.minRelativeChange !== undefined) results.push(changeGate(`${t.metric}_min_relative_change`, t.metric, test, champion, t.minRelativeChange, 'relative', better));
  }
  return results;
}

function skipped(gate: string, metric: string, threshold: number, why: string): GateResult {
  return { gate, metric, value: null, threshold, baseline: null, passed: true, detail: `not evaluated: ${why}` };
}

/** value − baseline (or its relative form), sign-flipped when lower is better, must reach `minChange`. */
function changeGate(
  gate: string,
  metric: GateMetric,
  test: EvaluationMetrics,
  champion: EvaluationMetrics | null,
  minChange: number,
  kind: 'absolute' | 'relative',
  better: boolean,
): GateResult {
  const value = metricValue(test, metric);
  if (!champion) {
    return { gate, metric, value, threshold: minChange, baseline: null, passed: true, detail: 'no champion yet: nothing to beat' };
  }
  const baseline = metricValue(champion, metric);
  const delta = better ? value - baseline : baseline - value;
  const change = kind === 'absolute' ? delta : baseline === 0 ? (delta > 0 ? Infinity : 0) : delta / Math.abs(baseline);
  const passed = change >= minChange;
  const shown = kind === 'absolute' ? round(change) : `${round(change * 100)}%`;
  const wanted = kind === 'absolute' ? minChange : `${minChange * 100}%`;
  return {
    gate, metric, value, threshold: minChange, baseline, passed,
    detail: `${metric} ${round(value)} vs champion ${round(baseline)}: ${kind} improvement ${shown} ${passed ? '>=' : '<'} ${wanted}`,
  };
}

export function allGatesPassed(results: readonly GateResult[]): boolean {
  return results.every((r) => r.passed);
}
