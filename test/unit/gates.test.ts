import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allGatesPassed, evaluateGates } from '../../lib/pipeline/gates.js';
import type { EvaluationMetrics } from '../../lib/pipeline/metrics.js';
import { cvSummary } from '../../lib/pipeline/metrics.js';
import { gatesSchema } from '../../lib/schemas/training-pipeline.js';

function metrics(overrides: Partial<EvaluationMetrics>): EvaluationMetrics {
  return {
    n: 1000, positives: 200, threshold: 0.5, auc: 0.8, averagePrecision: 0.5, logLoss: 0.4, brier: 0.12,
    accuracy: 0.85, precision: 0.6, recall: 0.5, f1: 0.55, confusionMatrix: { tn: 750, fp: 50, fn: 100, tp: 100 },
    calibration: { strategy: 'uniform', bins: 10, edges: [], meanPredicted: [], fractionPositive: [], count: [] },
    ...overrides,
  };
}

describe('validation gates', () => {
  const defaults = gatesSchema.parse({});

  it('pass with a good model, no champion and a stable CV; the table names value, threshold and baseline', () => {
    const results = evaluateGates(defaults, { test: metrics({ auc: 0.8 }), cv: cvSummary([0.79, 0.8, 0.81]), champion: null });
    assert.deepEqual(results.map((r) => [r.gate, r.passed]), [['min_auc', true], ['max_cv_std', true], ['max_cv_test_gap', true], ['champion_auc_gain', true]]);
    assert.equal(results[0]!.threshold, 0.6);
    assert.match(results[3]!.detail, /no champion/);
    assert.ok(allGatesPassed(results));
  });

  it('fail on a low AUC, an unstable CV and a CV/test disagreement', () => {
    const results = evaluateGates(defaults, { test: metrics({ auc: 0.55 }), cv: cvSummary([0.6, 0.8]), champion: null });
    const failed = results.filter((r) => !r.passed).map((r) => r.gate);
    assert.deepEqual(failed, ['min_auc', 'max_cv_std', 'max_cv_test_gap']);
    assert.ok(Math.abs(results.find((r) => r.gate === 'max_cv_std')!.value! - 0.1) < 1e-12);
    assert.ok(Math.abs(results.find((r) => r.gate === 'max_cv_test_gap')!.value! - 0.15) < 1e-12);
    assert.equal(allGatesPassed(results), false);
  });

  it('compare with the champion on the same holdout: must beat it by at least the minimum gain', () => {
    const config = gatesSchema.parse({ minAucGainOverChampion: 0.01 });
    const close = evaluateGates(config, { test: metrics({ auc: 0.805 }), cv: null, champion: metrics({ auc: 0.8 }) });
    const gain = close.find((r) => r.gate === 'champion_auc_gain')!;
    assert.equal(gain.baseline, 0.8);
    assert.equal(gain.passed, false);
    const better = evaluateGates(config, { test: metrics({ auc: 0.82 }), cv: null, champion: metrics({ auc: 0.8 }) });
    assert.equal(better.find((r) => r.gate === 'champion_auc_gain')!.passed, true);
  });

  it('custom thresholds know that lower log loss is better, and relative change is against |baseline|', () => {
    const config = gatesSchema.parse({
      minAuc: null, maxCvStd: null, maxCvTestGap: null, minAucGainOverChampion: null,
      thresholds: [{ metric: 'logLoss', threshold: 0.5, minRelativeChange: 0.05 }, { metric: 'recall', minAbsoluteChange: 0 }],
    });
    const results = evaluateGates(config, { test: metrics({ logLoss: 0.38, recall: 0.49 }), cv: null, champion: metrics({ logLoss: 0.4, recall: 0.5 }) });
    assert.deepEqual(results.map((r) => [r.gate, r.passed]), [['logLoss_threshold', true], ['logLoss_min_relative_change', true], ['recall_min_absolute_change', false]]);
    const worse = evaluateGates(config, { test: metrics({ logLoss: 0.39 }), cv: null, champion: metrics({ logLoss: 0.4 }) });
    assert.equal(worse.find((r) => r.gate === 'logLoss_min_relative_change')!.passed, false, '2.5 % better is less than 5 %');
  });

  it('CV gates are reported as not evaluated when cross-validation is off', () => {
    const results = evaluateGates(defaults, { test: metrics({}), cv: null, champion: null });
    const cvGates = results.filter((r) => r.gate.startsWith('max_cv'));
    assert.ok(cvGates.every((r) => r.passed && r.value === null && /cvFolds = 0/.test(r.detail)));
  });
});
