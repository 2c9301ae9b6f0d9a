import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { InvalidInput } from '../../lib/errors.js';
import {
  accuracy,
  averagePrecision,
  binaryMetrics,
  brierScore,
  calibrationCurve,
  confusionMatrix,
  f1,
  logLoss,
  precision,
  recall,
  rocAuc,
} from '../../lib/ml/metrics.js';
import type { CalibrationCurve, CalibrationStrategy, ConfusionMatrix } from '../../lib/ml/metrics.js';

interface ThresholdExpectation {
  threshold: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  confusionMatrix: ConfusionMatrix;
}

interface MetricCase {
  name: string;
  y: number[];
  p: number[];
  sampleWeight: number[] | null;
  expected: {
    rocAuc: number;
    averagePrecision: number;
    logLoss: number;
    brierScore: number;
    thresholds: ThresholdExpectation[];
    calibration: Array<Omit<CalibrationCurve, 'strategy'> & { strategy: CalibrationStrategy }>;
  };
}

const fixtures = JSON.parse(readFileSync(new URL('../fixtures/sklearn/metrics.json', import.meta.url), 'utf8')) as {
  sklearn: string;
  metricCases: MetricCase[];
};

// Agreement with sklearn: |ours - sklearn| <= 1e-9 × max(1, |sklearn|), i.e. absolute 1e-9 for
// values up to 1 (every metric but log loss) and relative 1e-9 above.
const TOLERANCE = 1e-9;

function close(actual: number, expected: number, what: string): void {
  const bound = TOLERANCE * Math.max(1, Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= bound, `${what}: got ${actual}, sklearn ${expected} (diff ${actual - expected})`);
}

function closeAll(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) close(actual[i]!, expected[i]!, `${what}[${i}]`);
}

function inputs(c: MetricCase) {
  return {
    y: Uint8Array.from(c.y),
    p: Float64Array.from(c.p),
    w: c.sampleWeight ? Float64Array.from(c.sampleWeight) : undefined,
  };
}

function throwsInvalid(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof InvalidInput, `expected InvalidInput, got ${String(error)}`);
    assert.match(error.message, message);
    return true;
  });
}

describe(`metrics match scikit-learn ${fixtures.sklearn}`, () => {
  assert.ok(fixtures.metricCases.length >= 10);
  for (const c of fixtures.metricCases) {
    describe(c.name, () => {
      const { y, p, w } = inputs(c);
      const e = c.expected;

      it('ROC AUC, average precision, log loss, Brier score', () => {
        close(rocAuc(y, p, w), e.rocAuc, 'rocAuc');
        close(averagePrecision(y, p, w), e.averagePrecision, 'averagePrecision');
        close(logLoss(y, p, w), e.logLoss, 'logLoss');
        close(brierScore(y, p, w), e.brierScore, 'brierScore');
      });

      it('accuracy, precision, recall, F1 and confusion matrix at each threshold', () => {
        assert.ok(e.thresholds.length >= 5);
        for (const t of e.thresholds) {
          const at = `threshold ${t.threshold}`;
          close(accuracy(y, p, t.threshold, w), t.accuracy, `${at} accuracy`);
          close(precision(y, p, t.threshold, w), t.precision, `${at} precision`);
          close(recall(y, p, t.threshold, w), t.recall, `${at} recall`);
          close(f1(y, p, t.threshold, w), t.f1, `${at} f1`);
          const cm = confusionMatrix(y, p, t.threshold, w);
          for (const cell of ['tn', 'fp', 'fn', 'tp'] as const) close(cm[cell], t.confusionMatrix[cell], `${at} ${cell}`);
        }
      });

      if (!w) {
        it('calibration curves (uniform and quantile bins)', () => {
          assert.equal(e.calibration.length, 4);
          for (const expected of e.calibration) {
            const what = `${expected.strategy} ${expected.bins}`;
            const curve = calibrationCurve(y, p, { bins: expected.bins, strategy: expected.strategy });
            // Edges are computed bit for bit as numpy does: values on an edge must land in the same bin.
            assert.deepEqual(curve.edges, expected.edges, `${what} edges`);
            assert.deepEqual(curve.count, expected.count, `${what} counts`);
            closeAll(curve.meanPredicted, expected.meanPredicted, `${what} mean predicted`);
            closeAll(curve.fractionPositive, expected.fractionPositive, `${what} fraction positive`);
          }
        });
      }

      it('binaryMetrics at 0.5 agrees and survives JSON', () => {
        const m = binaryMetrics(y, p, 0.5, { sampleWeight: w });
        const t = e.thresholds.find((x) => x.threshold === 0.5)!;
        close(m.rocAuc, e.rocAuc, 'rocAuc');
        close(m.averagePrecision, e.averagePrecision, 'averagePrecision');
        close(m.logLoss, e.logLoss, 'logLoss');
        close(m.brierScore, e.brierScore, 'brierScore');
        close(m.accuracy, t.accuracy, 'accuracy');
        close(m.precision, t.precision, 'precision');
        close(m.recall, t.recall, 'recall');
        close(m.f1, t.f1, 'f1');
        for (const cell of ['tn', 'fp', 'fn', 'tp'] as const) close(m.confusionMatrix[cell], t.confusionMatrix[cell], cell);
        assert.equal(m.n, c.y.length);
        assert.equal(m.positives, c.y.filter((v) => v === 1).length);
        assert.equal(m.sampleWeighted, w !== undefined);
        if (!w) {
          for (const strategy of ['uniform', 'quantile'] as const) {
            const expected = e.calibration.find((x) => x.strategy === strategy && x.bins === 10)!;
            assert.deepEqual(m.calibration[strategy].count, expected.count);
            closeAll(m.calibration[strategy].meanPredicted, expected.meanPredicted, `${strategy} mean predicted`);
            closeAll(m.calibration[strategy].fractionPositive, expected.fractionPositive, `${strategy} fraction positive`);
          }
        }
        assert.deepEqual(JSON.parse(JSON.stringify(m)), m);
      });
    });
  }
});

describe('metrics on hand-checked inputs', () => {
  const y = Uint8Array.from([0, 0, 1, 1]);

  it('ties count as half-ordered pairs in ROC AUC', () => {
    assert.equal(rocAuc(Uint8Array.from([0, 1]), Float64Array.from([0.5, 0.5])), 0.5);
    // Pairs (neg, pos): (0.1, 0.4) right, (0.1, 0.8) right, (0.4, 0.4) tie, (0.4, 0.8) right.
    assert.equal(rocAuc(y, Float64Array.from([0.1, 0.4, 0.4, 0.8])), 3.5 / 4);
    // Scores need not be probabilities.
    assert.equal(rocAuc(y, Float64Array.from([-3, 10, -1, 20])), 0.75);
  });

  it('average precision steps without interpolation, ties forming one threshold', () => {
    // Thresholds 0.8 (P 1, R 0.5) then 0.4 (P 2/3, R 1).
    close(averagePrecision(y, Float64Array.from([0.1, 0.4, 0.4, 0.8])), 0.5 * 1 + 0.5 * (2 / 3), 'ap');
    assert.equal(averagePrecision(Uint8Array.from([1, 1]), Float64Array.from([0.2, 0.3])), 1);
  });

  it('log loss clips 0 and 1 at float64 epsilon, as sklearn 1.2.1 defaults to', () => {
    const ln = -Math.log(2.220446049250313e-16);
    close(logLoss(Uint8Array.from([1]), Float64Array.from([0])), ln, 'p=0, y=1');
    close(logLoss(Uint8Array.from([0]), Float64Array.from([1])), ln, 'p=1, y=0');
    close(logLoss(Uint8Array.from([1, 0]), Float64Array.from([1, 0])), -Math.log(1 - 2.220446049250313e-16), 'perfect');
    // One class is fine for log loss (sklearn with labels=[0, 1]).
    close(logLoss(Uint8Array.from([0, 0]), Float64Array.from([0.5, 0.2])), -(Math.log(0.5) + Math.log(0.8)) / 2, 'one class');
  });

  it('weights scale each row', () => {
    const p = Float64Array.from([0.1, 0.6, 0.4, 0.8]);
    const w = Float64Array.from([1, 3, 2, 0]);
    close(brierScore(y, p, w), (0.01 * 1 + 0.36 * 3 + 0.36 * 2) / 6, 'brier');
    assert.deepEqual(confusionMatrix(y, p, 0.5, w), { tn: 1, fp: 3, fn: 2, tp: 0 });
    assert.equal(accuracy(y, p, 0.5, w), 1 / 6);
  });

  it('predicts 1 at p >= threshold, and 0/0 gives 0 as sklearn zero_division="warn"', () => {
    const p = Float64Array.from([0.2, 0.5, 0.5, 0.7]);
    assert.deepEqual(confusionMatrix(y, p, 0.5), { tn: 1, fp: 1, fn: 0, tp: 2 });
    assert.equal(precision(y, p, 0.5), 2 / 3);
    assert.equal(recall(y, p, 0.5), 1);
    close(f1(y, p, 0.5), 0.8, 'f1');
    // Nothing predicted positive: precision and F1 are 0/0 -> 0.
    assert.equal(precision(y, p, 0.9), 0);
    assert.equal(f1(y, p, 0.9), 0);
    // No positive labels: recall is 0/0 -> 0.
    assert.equal(recall(Uint8Array.from([0, 0]), Float64Array.from([0.9, 0.1])), 0);
  });

  it('calibration puts values on an inner edge in the lower bin and drops empty bins', () => {
    const curve = calibrationCurve(Uint8Array.from([0, 1, 1, 0, 1]), Float64Array.from([0.5, 0.5, 0.9, 0.1, 1]), { bins: 2 });
    assert.deepEqual(curve.edges, [0, 0.5, 1]);
    assert.deepEqual(curve.count, [3, 2]);
    assert.deepEqual(curve.fractionPositive, [1 / 3, 1]);
    close(curve.meanPredicted[0]!, 1.1 / 3, 'mean');
    const ties = calibrationCurve(Uint8Array.from([0, 1, 1, 1]), Float64Array.from([0.3, 0.3, 0.3, 0.3]), { bins: 4, strategy: 'quantile' });
    assert.deepEqual(ties.count, [4]);
    assert.deepEqual(ties.fractionPositive, [0.75]);
  });
});

describe('metrics reject bad input', () => {
  const y = Uint8Array.from([0, 1, 1]);
  const p = Float64Array.from([0.2, 0.6, 0.9]);

  it('length mismatch and empty input', () => {
    throwsInvalid(() => rocAuc(y, Float64Array.from([0.1, 0.2])), /ROC AUC: y has 3 labels but 2 scores/);
    throwsInvalid(() => logLoss(y, p, Float64Array.from([1])), /log loss: y has 3 labels but 1 sample weights/);
    throwsInvalid(() => brierScore(new Uint8Array(0), new Float64Array(0)), /Brier score: y is empty/);
    throwsInvalid(() => binaryMetrics(new Uint8Array(0), new Float64Array(0)), /y is empty/);
  });

  it('labels other than 0/1', () => {
    throwsInvalid(() => accuracy(Uint8Array.from([0, 2, 1]), p), /y\[1\] is 2; labels must be 0 or 1/);
  });

  it('NaN or out-of-range probabilities', () => {
    throwsInvalid(() => averagePrecision(y, Float64Array.from([0.2, Number.NaN, 0.9])), /p\[1\] is NaN/);
    throwsInvalid(() => binaryMetrics(y, Float64Array.from([0.2, 0.5, Number.NaN])), /p\[2\] is NaN/);
    throwsInvalid(() => logLoss(y, Float64Array.from([0.2, 1.5, 0.9])), /log loss: probability p\[1\] = 1.5 is outside \[0, 1\]/);
    throwsInvalid(() => calibrationCurve(y, Float64Array.from([-0.1, 0.5, 0.9])), /outside \[0, 1\]/);
  });

  it('a single class where the metric is undefined, naming the metric', () => {
    const ones = Uint8Array.from([1, 1, 1]);
    throwsInvalid(() => rocAuc(ones, p), /ROC AUC is undefined when y has a single class: y has no negative labels/);
    throwsInvalid(() => rocAuc(Uint8Array.from([0, 0, 0]), p), /ROC AUC is undefined .* no positive labels/);
    throwsInvalid(() => averagePrecision(Uint8Array.from([0, 0, 0]), p), /average precision is undefined .* no positive labels/);
    throwsInvalid(() => binaryMetrics(ones, p), /ROC AUC is undefined/);
    // Zero weight on every positive is a single class too.
    throwsInvalid(() => rocAuc(y, p, Float64Array.from([1, 0, 0])), /ROC AUC .* positive class has zero total sample weight/);
  });

  it('bad weights, thresholds and bins', () => {
    throwsInvalid(() => brierScore(y, p, Float64Array.from([1, -1, 1])), /sampleWeight\[1\] = -1/);
    throwsInvalid(() => brierScore(y, p, Float64Array.from([0, 0, 0])), /all sample weights are 0/);
    throwsInvalid(() => precision(y, p, Number.NaN), /threshold must be a number/);
    throwsInvalid(() => calibrationCurve(y, p, { bins: 0 }), /bins must be an integer >= 1/);
  });
});
