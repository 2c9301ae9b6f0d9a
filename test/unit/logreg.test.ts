import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { InvalidInput } from '../../lib/errors.js';
import { fitLogisticRegression, loadLogisticRegression } from '../../lib/ml/logreg.js';
import type { LogisticRegressionParams } from '../../lib/ml/logreg.js';
import type { Matrix } from '../../lib/ml/types.js';

/** One dataset and scikit-learn's fit on it (test/fixtures/sklearn/make_logreg_fixtures.py). */
interface SklearnCase {
  name: string;
  params: LogisticRegressionParams;
  rows: number;
  cols: number;
  x: Array<number | null>;
  y: number[];
  coef: number[];
  intercept: number;
  proba: number[];
  lbfgs: { coef: number[]; intercept: number };
}

const fixtures = JSON.parse(
  readFileSync(new URL('../fixtures/sklearn/logreg.json', import.meta.url), 'utf8'),
) as { cases: SklearnCase[] };

function caseData(c: SklearnCase): { x: Matrix; y: Uint8Array } {
  return {
    // JSON has no NaN: the generator writes a missing value as null.
    x: {
      data: Float64Array.from(c.x, (v) => (v === null ? NaN : v)),
      rows: c.rows,
      cols: c.cols,
      names: Array.from({ length: c.cols }, (_, j) => `feature_${j}`),
    },
    y: Uint8Array.from(c.y),
  };
}

function findCase(name: string): SklearnCase {
  const found = fixtures.cases.find((c) => c.name === name);
  assert.ok(found, `fixture case ${name}`);
  return found;
}

/** |a − b| relative to max(1, |b|): raw-scale coefficients of near-constant features are large. */
function relativeDifference(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(1, Math.abs(b));
}

function assertInvalid(fn: () => unknown, message: RegExp, field?: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof InvalidInput, `expected InvalidInput, got ${String(error)}`);
    assert.match(error.message, message);
    if (field !== undefined) assert.equal(error.field, field);
    return true;
  });
}

describe('logreg matches scikit-learn', () => {
  assert.ok(fixtures.cases.length >= 8);
  for (const c of fixtures.cases) {
    it(`${c.name} (${c.rows} × ${c.cols}, ${JSON.stringify(c.params)})`, () => {
      const { x, y } = caseData(c);
      const model = fitLogisticRegression(x, y, c.params);
      assert.ok(model.training.converged, `converged (gradient ${model.training.gradientNorm})`);
      for (let j = 0; j < c.cols; j++) {
        const diff = relativeDifference(model.coefficients[j]!, c.coef[j]!);
        assert.ok(diff <= 1e-6, `coefficient ${j}: ${model.coefficients[j]} vs ${c.coef[j]}`);
      }
      assert.ok(relativeDifference(model.intercept, c.intercept) <= 1e-6, `intercept ${model.intercept} vs ${c.intercept}`);
      const proba = model.predictProba(x);
      for (let i = 0; i < c.rows; i++) {
        assert.ok(Math.abs(proba[i]! - c.proba[i]!) <= 1e-6, `row ${i}: ${proba[i]} vs ${c.proba[i]}`);
      }
      // sklearn's lbfgs stops on scipy's default ftol, so it is only close (see the generator).
      for (let j = 0; j < c.cols; j++) {
        const ours = model.coefficients[j]! * model.scales[j]!;
        const lbfgs = c.lbfgs.coef[j]! * model.scales[j]!;
        assert.ok(Math.abs(ours - lbfgs) <= 1e-4, `lbfgs coefficient ${j}: ${ours} vs ${lbfgs}`);
      }
    });
  }

  it('gives a constant feature a zero coefficient and zero importance', () => {
    const c = findCase('dict_weights_constant_feature');
    const { x, y } = caseData(c);
    const model = fitLogisticRegression(x, y, c.params);
    assert.equal(model.scales[2], 1);
    assert.equal(model.coefficients[2], 0);
    const importance = model.featureImportance();
    assert.equal(importance.length, c.cols);
    assert.equal(importance[2], 0);
    for (let j = 0; j < c.cols; j++) {
      assert.ok(Math.abs(importance[j]! - Math.abs(c.coef[j]! * model.scales[j]!)) <= 1e-6);
    }
  });
});

describe('logreg class weights', () => {
  const c = findCase('imbalanced_balanced');
  const { x, y } = caseData(c);
  const positives = y.reduce((sum, v) => sum + v, 0);

  it("'balanced' is n / (2·n_class), as scikit-learn computes it", () => {
    const balanced = fitLogisticRegression(x, y, { classWeight: 'balanced' });
    const explicit = fitLogisticRegression(x, y, {
      classWeight: { 0: c.rows / (2 * (c.rows - positives)), 1: c.rows / (2 * positives) },
    });
    assert.deepEqual(balanced.training.classWeights, explicit.training.classWeights);
    assert.deepEqual(balanced.toOnnx(), explicit.toOnnx());
  });

  it('weighting the rare class raises its probabilities and moves the fit away from the unweighted one', () => {
    const unweighted = fitLogisticRegression(x, y, {});
    const balanced = fitLogisticRegression(x, y, { classWeight: 'balanced' });
    const mean = (p: Float64Array) => p.reduce((sum, v) => sum + v, 0) / p.length;
    assert.ok(balanced.intercept - unweighted.intercept > 1, `intercepts ${balanced.intercept} vs ${unweighted.intercept}`);
    assert.ok(mean(balanced.predictProba(x)) > 2 * mean(unweighted.predictProba(x)));
    // The unweighted fit is far from sklearn's balanced fit, the balanced one matches it.
    assert.ok(relativeDifference(unweighted.intercept, c.intercept) > 0.1);
    assert.ok(relativeDifference(balanced.intercept, c.intercept) <= 1e-6);
  });

  it('scaling both class weights by k is the same as multiplying C by k', () => {
    const weighted = fitLogisticRegression(x, y, { C: 0.5, classWeight: { 0: 2, 1: 2 } });
    const plain = fitLogisticRegression(x, y, { C: 1 });
    for (let j = 0; j < c.cols; j++) assert.ok(relativeDifference(weighted.coefficients[j]!, plain.coefficients[j]!) <= 1e-9);
    assert.ok(relativeDifference(weighted.intercept, plain.intercept) <= 1e-9);
  });

  it('equal weights of 1 are no weights', () => {
    const ones = fitLogisticRegression(x, y, { classWeight: { 0: 1, 1: 1 } });
    const none = fitLogisticRegression(x, y);
    assert.deepEqual(ones.coefficients, none.coefficients);
    assert.deepEqual(ones.toOnnx(), none.toOnnx());
  });
});

describe('logreg model', () => {
  const c = findCase('missing_values');
  const { x, y } = caseData(c);

  it('fits deterministically: the same ONNX bytes and JSON twice', () => {
    const first = fitLogisticRegression(x, y, c.params);
    const second = fitLogisticRegression(x, y, c.params);
    assert.ok(Buffer.from(first.toOnnx()).equals(Buffer.from(second.toOnnx())));
    assert.deepEqual(first.toJSON(), second.toJSON());
  });

  it('round-trips through JSON exactly', () => {
    const model = fitLogisticRegression(x, y, { ...c.params, classWeight: 'balanced' });
    const loaded = loadLogisticRegression(JSON.parse(JSON.stringify(model.toJSON())));
    assert.deepEqual(loaded.toJSON(), model.toJSON());
    assert.deepEqual(loaded.predictProba(x), model.predictProba(x));
    assert.deepEqual(loaded.featureImportance(), model.featureImportance());
    assert.equal(loaded.intercept, model.intercept);
    assert.ok(Buffer.from(loaded.toOnnx()).equals(Buffer.from(model.toOnnx())));
    assert.deepEqual(loaded.featureNames, x.names);
    assert.equal(loaded.kind, 'logreg');
  });

  it('imputes a missing value with the training mean', () => {
    const model = fitLogisticRegression(x, y, c.params);
    const row = Array.from(x.data.subarray(0, c.cols));
    row[2] = NaN;
    const filled = [...row];
    filled[2] = model.means[2]!;
    const [pMissing, pFilled] = model.predictProba({ data: Float64Array.from([...row, ...filled]), rows: 2, cols: c.cols, names: x.names });
    assert.ok(Math.abs(pMissing! - pFilled!) <= 1e-15);
    // The training mean of a column with missing values is the mean of the present ones.
    let sum = 0;
    let count = 0;
    for (let i = 0; i < c.rows; i++) {
      const v = x.data[i * c.cols + 2]!;
      if (!Number.isNaN(v)) {
        sum += v;
        count++;
      }
    }
    assert.ok(count < c.rows);
    assert.ok(Math.abs(model.means[2]! - sum / count) <= 1e-12);
  });

  it('gives a column with no values at all a zero coefficient, as if it were dropped', () => {
    const cols = c.cols + 1;
    const data = new Float64Array(c.rows * cols).fill(NaN);
    for (let i = 0; i < c.rows; i++) data.set(x.data.subarray(i * c.cols, (i + 1) * c.cols), i * cols);
    const withEmpty = fitLogisticRegression({ data, rows: c.rows, cols, names: [...x.names, 'empty'] }, y, c.params);
    const without = fitLogisticRegression(x, y, c.params);
    assert.equal(withEmpty.coefficients[c.cols], 0);
    assert.equal(withEmpty.featureImportance()[c.cols], 0);
    for (let j = 0; j < c.cols; j++) assert.equal(withEmpty.coefficients[j], without.coefficients[j]);
  });

  it('reports progress per Newton iteration', () => {
    const seen: number[] = [];
    const model = fitLogisticRegression(x, y, c.params, ({ done, total }) => {
      assert.equal(total, 100);
      seen.push(done);
    });
    assert.deepEqual(seen, Array.from({ length: model.training.iterations }, (_, i) => i + 1));
  });

  it('stops at maxIter and says it did not converge', () => {
    const model = fitLogisticRegression(x, y, { ...c.params, maxIter: 1 });
    assert.equal(model.training.iterations, 1);
    assert.equal(model.training.converged, false);
  });
});

describe('logreg rejects bad input with InvalidInput', () => {
  const c = findCase('basic');
  const { x, y } = caseData(c);
  const small: Matrix = { data: Float64Array.from([0, 1, 1, 0, 2, 2, 3, 1]), rows: 4, cols: 2, names: ['a', 'b'] };
  const smallY = Uint8Array.from([0, 1, 0, 1]);

  it('rows and labels of different lengths', () => {
    assertInvalid(() => fitLogisticRegression(x, y.subarray(1)), /999 labels for 1000 rows/, 'y');
  });

  it('one class only', () => {
    assertInvalid(() => fitLogisticRegression(small, new Uint8Array(4)), /only class 0.*both classes/, 'y');
    assertInvalid(() => fitLogisticRegression(small, new Uint8Array(4).fill(1)), /only class 1/, 'y');
  });

  it('a label that is not 0 or 1', () => {
    assertInvalid(() => fitLogisticRegression(small, Uint8Array.from([0, 1, 2, 1])), /y\[2\] is 2/, 'y');
  });

  it('an infinite value (NaN means missing, Infinity is an error)', () => {
    const data = Float64Array.from(small.data);
    data[5] = -Infinity;
    assertInvalid(() => fitLogisticRegression({ ...small, data }, smallY), /-Infinity in row 2, feature "b"/, 'x');
    const model = fitLogisticRegression(small, smallY);
    assertInvalid(() => model.predictProba({ ...small, data }), /-Infinity in row 2, feature "b"/, 'x');
  });

  it('C <= 0 and other bad params', () => {
    assertInvalid(() => fitLogisticRegression(small, smallY, { C: 0 }), /C/, 'C');
    assertInvalid(() => fitLogisticRegression(small, smallY, { C: -1 }), /C/, 'C');
    assertInvalid(() => fitLogisticRegression(small, smallY, { C: Infinity }), /C/, 'C');
    assertInvalid(() => fitLogisticRegression(small, smallY, { classWeight: { 0: 1, 1: -2 } }), /classWeight/);
    assertInvalid(() => fitLogisticRegression(small, smallY, { maxIter: 0 }), /maxIter/, 'maxIter');
  });

  it('a matrix whose shape does not match its data, names or the model', () => {
    assertInvalid(() => fitLogisticRegression({ ...small, rows: 5 }, Uint8Array.from([0, 1, 0, 1, 0])), /holds 8 values/, 'x');
    assertInvalid(() => fitLogisticRegression({ ...small, names: ['a'] }, smallY), /names 1 features/, 'x.names');
    assertInvalid(() => fitLogisticRegression({ data: new Float64Array(0), rows: 0, cols: 2, names: ['a', 'b'] }, new Uint8Array(0)), /no rows/, 'x');
    const model = fitLogisticRegression(small, smallY);
    assertInvalid(() => model.predictProba({ data: new Float64Array(3), rows: 1, cols: 3, names: ['a', 'b', 'c'] }), /3 features; the model takes 2/, 'x');
  });

  it('JSON that is not a logreg model', () => {
    const json = fitLogisticRegression(small, smallY).toJSON();
    assertInvalid(() => loadLogisticRegression({ ...json, kind: 'gbdt' }), /not a logreg model/, 'kind');
    assertInvalid(() => loadLogisticRegression({ ...json, coefficients: [1] }), /coefficients has 1 values for 2 features/, 'coefficients');
    assertInvalid(() => loadLogisticRegression(null), /not a logreg model/);
  });
});
